//! The libraries Redis makes available to scripts (placeholder: being written).
