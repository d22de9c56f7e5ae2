//! The snapshot file format. (in progress)
