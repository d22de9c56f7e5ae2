//! Reading a snapshot: a streaming, checksumming reader that trusts no length.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crc32fast::Hasher;

use super::VERSION;
use super::{decode_varint, is_known_tag, FormatError, FormatErrorKind, HEADER_LEN, MAGIC};
use super::{MAX_LEN, OP_EOF, OP_EXPIRE_MS, OP_FUNCTIONS, OP_SELECT_DB, OP_SIZE_HINT};
use super::{PREALLOC_CAP, READ_BUF};
use crate::store::value::codec::PayloadRead;
use crate::store::Value;

/// One item read back from a snapshot. EXPIRE_MS is folded into the entry it applies to, and
/// EOF is not an item: [`SnapshotReader::next_item`] returns `Ok(None)` there instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The entries that follow belong to this database.
    SelectDb(u32),
    /// The current database is about to receive about `keys` entries, `keys_with_ttl` of them
    /// with a TTL. Read from the file, hence untrusted: cap it before reserving memory.
    SizeHint {
        /// Entries announced.
        keys: u64,
        /// Of which with an expiry time.
        keys_with_ttl: u64,
    },
    /// The function libraries, as a FUNCTION DUMP payload (checked when restored).
    Functions(Vec<u8>),
    /// A key, its value and its absolute expiry time (Unix ms), if any.
    Entry {
        /// The key, binary-safe.
        key: Vec<u8>,
        /// The value.
        value: Value,
        /// Absolute expiry time in Unix milliseconds; `None` for no TTL.
        expires_at_ms: Option<u64>,
    },
}

/// Where a [`SnapshotReader`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Items,
    Done,
    Failed,
}

/// A streaming snapshot reader over any source. It buffers internally (reading 64 KiB at a
/// time), so an unbuffered `File` is fine, and checksums as it goes; at EOF it verifies the
/// checksum and that nothing follows it. Once it has returned an error it returns an error on
/// every later call.
pub struct SnapshotReader<R: Read> {
    inner: R,
    buf: Box<[u8]>,
    /// Next unread byte of `buf`.
    pos: usize,
    /// End of the valid bytes of `buf`.
    end: usize,
    /// `buf[..hashed]` has been fed to `hasher`; `hashed <= pos`.
    hashed: usize,
    /// File offset of `buf[0]`.
    base: u64,
    hasher: Hasher,
    /// The file's size, when the caller knows it: lengths are checked against what is left.
    file_len: Option<u64>,
    created_ms: u64,
    state: ReadState,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and validates the header: bad magic, an unsupported version or a file too short
    /// to hold a header are errors.
    pub fn new(inner: R) -> Result<Self, FormatError> {
        Self::open(inner, None)
    }

    /// Like [`Self::new`], for a source known to hold exactly `file_len` bytes (a file's
    /// size from its metadata). Every key or value length is then checked against the bytes
    /// left before anything is allocated, so a corrupt length fails at once (as
    /// [`FormatErrorKind::Truncated`], at `file_len`), even in a large file.
    pub fn with_file_len(inner: R, file_len: u64) -> Result<Self, FormatError> {
        Self::open(inner, Some(file_len))
    }

    fn open(inner: R, file_len: Option<u64>) -> Result<Self, FormatError> {
        let mut reader = SnapshotReader {
            inner,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
            hashed: 0,
            base: 0,
            hasher: Hasher::new(),
            file_len,
            created_ms: 0,
            state: ReadState::Items,
        };
        let available = reader.fill(HEADER_LEN)?;
        let head = &reader.buf[..available];
        let magic_len = available.min(MAGIC.len());
        if head[..magic_len] != MAGIC[..magic_len] {
            return Err(FormatError::new(0, FormatErrorKind::BadMagic));
        }
        if available < HEADER_LEN {
            return Err(reader.truncated());
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version != VERSION {
            return Err(FormatError::new(
                8,
                FormatErrorKind::UnsupportedVersion(version),
            ));
        }
        let mut created = [0u8; 8];
        created.copy_from_slice(&head[10..HEADER_LEN]);
        reader.created_ms = u64::from_le_bytes(created);
        reader.pos = HEADER_LEN;
        Ok(reader)
    }

    /// The creation time recorded in the header, Unix milliseconds.
    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// Reads the next item. Returns `Ok(None)` once EOF has been reached, the checksum
    /// matched and no trailing data follows; only then is the snapshot known to be intact, so
    /// a loader should not make what it read visible before.
    pub fn next_item(&mut self) -> Result<Option<Item>, FormatError> {
        match self.state {
            ReadState::Done => return Ok(None),
            ReadState::Failed => {
                return Err(FormatError::new(
                    self.offset(),
                    FormatErrorKind::Io(io::Error::other("the snapshot reader already failed")),
                ))
            }
            ReadState::Items => {}
        }
        let result = self.read_item();
        self.state = match &result {
            Ok(Some(_)) => ReadState::Items,
            Ok(None) => ReadState::Done,
            Err(_) => ReadState::Failed,
        };
        result
    }

    /// Bytes consumed so far, from the start of the file: after `Ok(None)`, the file's size.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn read_item(&mut self) -> Result<Option<Item>, FormatError> {
        let mut expires_at_ms = None;
        loop {
            let op_offset = self.offset();
            let op = self.read_u8()?;
            if expires_at_ms.is_some() && !is_known_tag(op) {
                // EXPIRE_MS must prefix a value record.
                return Err(FormatError::new(op_offset, FormatErrorKind::BadOpcode(op)));
            }
            match op {
                op if is_known_tag(op) => {
                    let key = self.read_bytes()?;
                    let Some(value) = Value::decode(op, &mut Payload(self)) else {
                        return Err(FormatError::new(op_offset, FormatErrorKind::BadOpcode(op)));
                    };
                    let value = value?;
                    return Ok(Some(Item::Entry {
                        key,
                        value,
                        expires_at_ms,
                    }));
                }
                OP_EXPIRE_MS => {
                    expires_at_ms = Some(self.read_u64()?);
                }
                OP_SELECT_DB => {
                    let db_offset = self.offset();
                    let db = self.read_varint()?;
                    let db = u32::try_from(db).map_err(|_| {
                        FormatError::new(db_offset, FormatErrorKind::DbOutOfRange(db))
                    })?;
                    return Ok(Some(Item::SelectDb(db)));
                }
                OP_FUNCTIONS => {
                    return Ok(Some(Item::Functions(self.read_bytes()?)));
                }
                OP_SIZE_HINT => {
                    let keys = self.read_varint()?;
                    let keys_with_ttl = self.read_varint()?;
                    return Ok(Some(Item::SizeHint {
                        keys,
                        keys_with_ttl,
                    }));
                }
                OP_EOF => {
                    self.read_eof()?;
                    return Ok(None);
                }
                _ => return Err(FormatError::new(op_offset, FormatErrorKind::BadOpcode(op))),
            }
        }
    }

    /// After the EOF opcode: the checksum, then nothing.
    fn read_eof(&mut self) -> Result<(), FormatError> {
        self.hash_consumed();
        let computed = std::mem::take(&mut self.hasher).finalize();
        let crc_offset = self.offset();
        self.require(4)?;
        let stored = u32::from_le_bytes([
            self.buf[self.pos],
            self.buf[self.pos + 1],
            self.buf[self.pos + 2],
            self.buf[self.pos + 3],
        ]);
        if stored != computed {
            return Err(FormatError::new(
                crc_offset,
                FormatErrorKind::ChecksumMismatch { stored, computed },
            ));
        }
        self.pos += 4;
        self.hashed = self.pos;
        if self.fill(1)? > 0 {
            return Err(FormatError::new(
                self.offset(),
                FormatErrorKind::TrailingData,
            ));
        }
        Ok(())
    }

    #[inline]
    fn read_u8(&mut self) -> Result<u8, FormatError> {
        if self.pos == self.end {
            self.require(1)?;
        }
        let byte = self.buf[self.pos];
        self.pos += 1;
        Ok(byte)
    }

    fn read_u64(&mut self) -> Result<u64, FormatError> {
        self.require(8)?;
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        Ok(u64::from_le_bytes(bytes))
    }

    fn read_varint(&mut self) -> Result<u64, FormatError> {
        let start = self.offset();
        if self.end - self.pos >= 10 {
            // Fast path: the whole varint is buffered.
            return match decode_varint(&self.buf[self.pos..self.end]) {
                Some((value, used)) => {
                    self.pos += used;
                    Ok(value)
                }
                None => Err(FormatError::new(start, FormatErrorKind::BadVarint)),
            };
        }
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.read_u8()?;
            if i == 9 && byte > 1 {
                break;
            }
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(FormatError::new(start, FormatErrorKind::BadVarint))
    }

    /// A length-prefixed byte string (a key or a value payload).
    fn read_bytes(&mut self) -> Result<Vec<u8>, FormatError> {
        let len_offset = self.offset();
        let len = self.read_varint()?;
        if len > MAX_LEN {
            return Err(FormatError::new(len_offset, FormatErrorKind::TooLarge(len)));
        }
        let prealloc = match self.file_len {
            Some(_) => {
                self.check_left(len)?;
                len
            }
            None => len.min(PREALLOC_CAP as u64),
        };
        // Both conversions hold: `len <= MAX_LEN` and `prealloc <= len`.
        let mut remaining = usize::try_from(len)
            .map_err(|_| FormatError::new(len_offset, FormatErrorKind::TooLarge(len)))?;
        let mut out = Vec::with_capacity(usize::try_from(prealloc).unwrap_or(PREALLOC_CAP));
        loop {
            let take = (self.end - self.pos).min(remaining);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            remaining -= take;
            if remaining == 0 {
                return Ok(out);
            }
            self.require(1)?;
        }
    }

    /// When the file's size is known, fails with Truncated (at the end of the file) unless
    /// at least `n` bytes are left after the current position.
    fn check_left(&self, n: u64) -> Result<(), FormatError> {
        match self.file_len {
            Some(file_len) if n > file_len.saturating_sub(self.offset()) => {
                Err(FormatError::new(file_len, FormatErrorKind::Truncated))
            }
            _ => Ok(()),
        }
    }

    /// Ensures `n` bytes (at most the buffer's size) are buffered, or fails with Truncated.
    fn require(&mut self, n: usize) -> Result<(), FormatError> {
        if self.fill(n)? < n {
            return Err(self.truncated());
        }
        Ok(())
    }

    /// Tries to buffer `n` bytes (at most the buffer's size) after `pos`, reading from the
    /// source as needed; returns how many are buffered, fewer than `n` only at end of input.
    fn fill(&mut self, n: usize) -> Result<usize, FormatError> {
        if self.end - self.pos >= n {
            return Ok(self.end - self.pos);
        }
        // Make room: checksum the consumed bytes and move the unread ones to the front.
        self.hash_consumed();
        self.buf.copy_within(self.pos..self.end, 0);
        self.base += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        self.hashed = 0;
        while self.end < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                // `min` guards against a reader claiming more than the buffer it was given.
                Ok(read) => self.end = self.end.saturating_add(read).min(self.buf.len()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    return Err(FormatError::new(
                        self.base + self.end as u64,
                        FormatErrorKind::Io(err),
                    ))
                }
            }
        }
        Ok(self.end - self.pos)
    }

    /// Feeds the bytes consumed since the last call to the checksum.
    fn hash_consumed(&mut self) {
        self.hasher.update(&self.buf[self.hashed..self.pos]);
        self.hashed = self.pos;
    }

    /// The error for input that ended early: at the end of what the source delivered.
    fn truncated(&self) -> FormatError {
        FormatError::new(self.base + self.end as u64, FormatErrorKind::Truncated)
    }
}

/// What [`verify_file`] found in an intact snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySummary {
    /// Entries (keys) in the file, over all databases.
    pub entries: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// The creation time from the header, Unix milliseconds.
    pub created_ms: u64,
}

/// Reads a whole snapshot file and checks every record and the checksum, without keeping
/// anything: for check-aof and tests. Returns the number of entries and the file size.
pub fn verify_file(path: &Path) -> Result<VerifySummary, FormatError> {
    let io_err = |err| FormatError::new(0, FormatErrorKind::Io(err));
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut reader = SnapshotReader::with_file_len(file, file_len)?;
    let mut entries = 0u64;
    while let Some(item) = reader.next_item()? {
        if let Item::Entry { .. } = item {
            entries += 1;
        }
    }
    Ok(VerifySummary {
        entries,
        bytes: reader.offset(),
        created_ms: reader.created_ms(),
    })
}

/// The reader as a source for a value's payload, with the reader's bounds and offsets.
struct Payload<'a, R: Read>(&'a mut SnapshotReader<R>);

impl<R: Read> PayloadRead for Payload<'_, R> {
    type Error = FormatError;

    fn read_varint(&mut self) -> Result<u64, FormatError> {
        self.0.read_varint()
    }

    fn read_bytes(&mut self) -> Result<Vec<u8>, FormatError> {
        self.0.read_bytes()
    }

    fn read_f64(&mut self) -> Result<f64, FormatError> {
        Ok(f64::from_bits(self.0.read_u64()?))
    }

    /// Every element takes at least one byte: a count beyond the bytes left is truncation.
    fn read_count(&mut self) -> Result<u64, FormatError> {
        let count_offset = self.0.offset();
        let count = self.0.read_varint()?;
        if count > MAX_LEN {
            return Err(FormatError::new(
                count_offset,
                FormatErrorKind::TooLarge(count),
            ));
        }
        self.0.check_left(count)?;
        Ok(count)
    }

    fn invalid(&self, what: &'static str) -> FormatError {
        FormatError::new(self.0.offset(), FormatErrorKind::BadValue(what))
    }
}
