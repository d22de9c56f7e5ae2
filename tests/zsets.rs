//! Sorted sets end to end (issue 16).
