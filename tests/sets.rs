//! Sets end to end (issue 16).
