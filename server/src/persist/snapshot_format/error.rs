//! What can be wrong with a snapshot, and where.

use std::fmt;
use std::io;

use super::VERSION;

/// A malformed or unreadable snapshot: what went wrong and where (a byte offset from the
/// start of the file), so that check-aof and the startup log can point at the damage.
#[derive(Debug)]
pub struct FormatError {
    /// Byte offset from the start of the file of the offending field (or of the end of the
    /// input, for [`FormatErrorKind::Truncated`]).
    pub offset: u64,
    /// What went wrong.
    pub kind: FormatErrorKind,
}

impl FormatError {
    pub(super) fn new(offset: u64, kind: FormatErrorKind) -> Self {
        FormatError { offset, kind }
    }
}

/// The ways a snapshot can be unreadable.
#[derive(Debug)]
pub enum FormatErrorKind {
    /// Reading the source failed.
    Io(io::Error),
    /// The file does not start with [`super::MAGIC`]: not a snapshot.
    BadMagic,
    /// A snapshot of a format version this build cannot read.
    UnsupportedVersion(u16),
    /// The input ended before the EOF record and its checksum.
    Truncated,
    /// An unknown opcode or type tag, or one where it is not allowed (EXPIRE_MS not followed
    /// by a value record).
    BadOpcode(u8),
    /// A varint longer than 10 bytes or overflowing 64 bits.
    BadVarint,
    /// The CRC-32 stored after EOF does not match the file's contents.
    ChecksumMismatch {
        /// The checksum found in the file.
        stored: u32,
        /// The checksum of the bytes actually read.
        computed: u32,
    },
    /// Bytes follow the checksum.
    TrailingData,
    /// A length field beyond anything this platform can hold in memory.
    TooLarge(u64),
    /// A SELECT_DB index above `u32::MAX`.
    DbOutOfRange(u64),
    /// A value payload that is well-formed bytes but no valid value: what is wrong with it
    /// (a repeated hash field or set member, a NaN score).
    BadValue(&'static str),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.kind {
            FormatErrorKind::Io(err) => write!(f, "I/O error at byte {at}: {err}"),
            FormatErrorKind::BadMagic => write!(f, "not a snapshot file (bad magic) at byte {at}"),
            FormatErrorKind::UnsupportedVersion(version) => write!(
                f,
                "unsupported snapshot format version {version} at byte {at} \
                 (this build reads version {VERSION})"
            ),
            FormatErrorKind::Truncated => write!(f, "snapshot truncated at byte {at}"),
            FormatErrorKind::BadOpcode(op) => {
                write!(f, "unexpected opcode 0x{op:02X} at byte {at}")
            }
            FormatErrorKind::BadVarint => write!(f, "malformed varint at byte {at}"),
            FormatErrorKind::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch at byte {at} (stored 0x{stored:08x}, computed 0x{computed:08x})"
            ),
            FormatErrorKind::TrailingData => {
                write!(f, "trailing data after the checksum at byte {at}")
            }
            FormatErrorKind::TooLarge(len) => write!(f, "length {len} too large at byte {at}"),
            FormatErrorKind::DbOutOfRange(db) => {
                write!(f, "database index {db} out of range at byte {at}")
            }
            FormatErrorKind::BadValue(what) => write!(f, "invalid value at byte {at}: {what}"),
        }
    }
}

impl std::error::Error for FormatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            FormatErrorKind::Io(err) => Some(err),
            _ => None,
        }
    }
}
