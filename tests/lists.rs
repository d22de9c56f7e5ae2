//! Lists end to end (issue 16).
