//! The error every reader of the append-only file's files returns: which file, the byte
//! offset of the bad record when there is one, and what is wrong. Shared by the manifest
//! ([`super::aof_manifest`]), log replay ([`super::aof_replay`]) and `check-aof`
//! ([`super::aof_check`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why an AOF file could not be read: the file, where in it (for a bad record), and what.
#[derive(Debug)]
pub struct AofError {
    /// The file concerned (empty for
    /// [`Manifest::parse`](super::aof_manifest::Manifest::parse), which has no file).
    pub path: PathBuf,
    /// Byte offset of the start of the bad record, for errors inside a log file.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl AofError {
    pub(super) fn new(path: &Path, offset: Option<u64>, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            offset,
            message: message.into(),
        }
    }

    pub(super) fn io(path: &Path, err: &io::Error) -> Self {
        Self::new(path, None, err.to_string())
    }
}

impl fmt::Display for AofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if !self.path.as_os_str().is_empty() {
            write!(f, "{}", self.path.display())?;
            sep = ": ";
        }
        if let Some(offset) = self.offset {
            write!(f, "{sep}bad record at byte {offset}")?;
            sep = ": ";
        }
        write!(f, "{sep}{}", self.message)
    }
}

impl std::error::Error for AofError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display() {
        let err = AofError::new(Path::new("appendonly.aof.3.incr.aof"), Some(1234), "what");
        assert_eq!(
            err.to_string(),
            "appendonly.aof.3.incr.aof: bad record at byte 1234: what"
        );
        let err = AofError::new(Path::new("x"), None, "gone");
        assert_eq!(err.to_string(), "x: gone");
        let err = AofError::new(Path::new(""), None, "empty manifest");
        assert_eq!(err.to_string(), "empty manifest");
    }
}
