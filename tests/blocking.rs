//! Blocking commands end to end (issue 16).
