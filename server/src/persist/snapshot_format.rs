//! The snapshot file format: the dump files written by SAVE/BGSAVE and the base file of the
//! append-only log. Compact, versioned and checksummed; written and read as a stream so that
//! neither side ever holds the whole keyspace in a second copy.
//!
//! # Byte layout
//!
//! All fixed-width integers are little-endian. `varint` is unsigned LEB128 of a `u64`: seven
//! bits per byte, least significant group first, the high bit set on every byte but the last;
//! at most 10 bytes, and the 10th byte may only be `0x00` or `0x01` (anything longer or
//! overflowing 64 bits is rejected).
//!
//! ```text
//! header   := magic version created_ms
//! magic    := "KVSNAP\r\n"                      8 bytes
//! version  := u16                               currently 1
//! created  := u64                               creation time, Unix milliseconds
//!
//! body     := record* eof
//! record   := 0xFE varint(db)                   SELECT_DB: following entries belong to `db`
//!                                               (at most u32::MAX)
//!           | 0xFD varint(keys) varint(ttl)     DB_SIZE_HINT: optional, how many entries (and
//!                                               how many of them with a TTL) the current
//!                                               database is about to receive, so the loader
//!                                               can pre-size; advisory and untrusted
//!           | entry
//! entry    := [0xFC u64(expires_at_ms)] value   EXPIRE_MS applies to the entry it prefixes
//!                                               only: an absolute Unix time in milliseconds
//! value    := 0x00 varint(keylen) key varint(vallen) bytes
//!                                               STRING. Type tags 0x00..=0x7F are reserved
//!                                               for value types; only 0x00 exists so far
//! eof      := 0xFF u32(crc)                     EOF. `crc` is the CRC-32 (IEEE, as computed
//!                                               by crc32fast) of every byte of the file from
//!                                               the first byte of the magic up to and
//!                                               including this 0xFF
//! ```
//!
//! Entries before the first SELECT_DB belong to database 0. A file must end exactly after the
//! checksum: a file that stops earlier is truncated, and bytes after it are an error (trailing
//! data). An EXPIRE_MS that is not immediately followed by a value record is an error. Key
//! uniqueness and the database count are the loader's business, not the format's.
//!
//! The reader never trusts a length: a key or value length only preallocates a bounded amount
//! (or, when the file size is known, is checked against the bytes left), so a corrupt length
//! fails with an error instead of an attempt to allocate gigabytes.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crc32fast::Hasher;

use crate::store::Value;

/// The eight bytes every snapshot starts with. The `\r\n` catches files mangled by
/// line-ending conversion, and makes a snapshot distinguishable from a RESP command log.
pub const MAGIC: &[u8; 8] = b"KVSNAP\r\n";

/// The format version this build writes, and the only one it reads.
pub const VERSION: u16 = 1;

/// Bytes of the header: magic, version, creation time.
const HEADER_LEN: usize = 8 + 2 + 8;

const OP_EOF: u8 = 0xFF;
const OP_SELECT_DB: u8 = 0xFE;
const OP_SIZE_HINT: u8 = 0xFD;
const OP_EXPIRE_MS: u8 = 0xFC;
const TYPE_STRING: u8 = 0x00;

/// Largest length field the reader accepts: the most a `Vec` can hold on this platform.
const MAX_LEN: u64 = isize::MAX as u64;

/// The reader's buffer. Every read from the source fills as much of it as it can.
const READ_BUF: usize = 64 * 1024;

/// Most that a key or value of unknown provenance preallocates; larger ones grow as their
/// bytes actually arrive, so a corrupt length cannot allocate more than the file holds.
const PREALLOC_CAP: usize = 64 * 1024;

/// A varint in a fixed buffer: the encoding shared by the writer and [`encode_entry`].
struct Varint {
    buf: [u8; 10],
    len: usize,
}

impl Varint {
    fn new(mut value: u64) -> Self {
        let mut buf = [0u8; 10];
        let mut len = 0;
        while value >= 0x80 {
            buf[len] = (value as u8) | 0x80;
            value >>= 7;
            len += 1;
        }
        buf[len] = value as u8;
        Varint { buf, len: len + 1 }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The bytes of an entry before its key: optional EXPIRE_MS, the type tag, the key length.
/// Kept on the stack so that writing an entry copies the key and value exactly once.
struct EntryHead {
    buf: [u8; 1 + 8 + 1 + 10],
    len: usize,
}

impl EntryHead {
    fn new(type_tag: u8, key_len: usize, expires_at_ms: Option<u64>) -> Self {
        let mut buf = [0u8; 20];
        let mut len = 0;
        if let Some(at) = expires_at_ms {
            buf[0] = OP_EXPIRE_MS;
            buf[1..9].copy_from_slice(&at.to_le_bytes());
            len = 9;
        }
        buf[len] = type_tag;
        len += 1;
        let varint = Varint::new(key_len as u64);
        buf[len..len + varint.len].copy_from_slice(varint.as_bytes());
        len += varint.len;
        EntryHead { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The type tag and payload of a value as stored in a snapshot.
fn value_parts(value: &Value) -> (u8, &[u8]) {
    match value {
        Value::Str(bytes) => (TYPE_STRING, bytes),
    }
}

/// Appends one encoded entry record (EXPIRE_MS prefix if `expires_at_ms` is `Some`, then the
/// type opcode, key and value) to `buf`. Meant to be called under a shard lock to copy a batch
/// out cheaply: it allocates nothing beyond growing `buf`. The batch is later written with
/// [`SnapshotWriter::write_encoded`], producing the same bytes as
/// [`SnapshotWriter::write_entry`].
pub fn encode_entry(buf: &mut Vec<u8>, key: &[u8], value: &Value, expires_at_ms: Option<u64>) {
    let (tag, payload) = value_parts(value);
    let head = EntryHead::new(tag, key.len(), expires_at_ms);
    let payload_len = Varint::new(payload.len() as u64);
    buf.reserve(head.len + key.len() + payload_len.len + payload.len());
    buf.extend_from_slice(head.as_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(payload_len.as_bytes());
    buf.extend_from_slice(payload);
}

/// Walks a batch produced by [`encode_entry`] and counts its entries; `None` if the bytes are
/// not a whole number of well-formed entry records.
fn count_encoded_entries(mut records: &[u8]) -> Option<u64> {
    fn skip_bytes(records: &mut &[u8]) -> Option<()> {
        let (len, used) = decode_varint(records)?;
        let rest = records.get(used..)?;
        let len = usize::try_from(len).ok()?;
        *records = rest.get(len..)?;
        Some(())
    }
    let mut entries = 0u64;
    while let Some((&first, rest)) = records.split_first() {
        let (tag, rest) = if first == OP_EXPIRE_MS {
            let rest = rest.get(8..)?;
            let (&tag, rest) = rest.split_first()?;
            (tag, rest)
        } else {
            (first, rest)
        };
        if tag != TYPE_STRING {
            return None;
        }
        records = rest;
        skip_bytes(&mut records)?;
        skip_bytes(&mut records)?;
        entries += 1;
    }
    Some(entries)
}

/// Decodes a varint from the start of `bytes`: the value and the bytes it used, or `None` if
/// it is malformed or incomplete.
fn decode_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().take(10).enumerate() {
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Streams a snapshot to any writer, checksumming as it goes. Every call writes through to
/// `inner`, so give it a buffered writer (such as the one [`super::fsutil::write_atomically`]
/// provides). After an I/O error the writer refuses further calls, since the stream and the
/// running checksum may disagree.
pub struct SnapshotWriter<W: Write> {
    inner: W,
    hasher: Hasher,
    bytes_written: u64,
    entries_written: u64,
    failed: bool,
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a snapshot: writes the header (magic, version, `created_ms`) to `inner`.
    pub fn new(inner: W, created_ms: u64) -> io::Result<Self> {
        let mut writer = SnapshotWriter {
            inner,
            hasher: Hasher::new(),
            bytes_written: 0,
            entries_written: 0,
            failed: false,
        };
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8..10].copy_from_slice(&VERSION.to_le_bytes());
        header[10..].copy_from_slice(&created_ms.to_le_bytes());
        writer.put(&header)?;
        Ok(writer)
    }

    /// Writes a SELECT_DB record: the entries that follow belong to database `db`.
    pub fn select_db(&mut self, db: u32) -> io::Result<()> {
        self.check()?;
        self.put(&[OP_SELECT_DB])?;
        self.put(Varint::new(u64::from(db)).as_bytes())
    }

    /// Writes a DB_SIZE_HINT record for the current database: how many entries follow, and
    /// how many of them carry a TTL, so that the loader can size its tables up front.
    pub fn size_hint(&mut self, keys: u64, keys_with_ttl: u64) -> io::Result<()> {
        self.check()?;
        self.put(&[OP_SIZE_HINT])?;
        self.put(Varint::new(keys).as_bytes())?;
        self.put(Varint::new(keys_with_ttl).as_bytes())
    }

    /// Writes one entry: EXPIRE_MS if `expires_at_ms` is `Some`, then the value record.
    pub fn write_entry(
        &mut self,
        key: &[u8],
        value: &Value,
        expires_at_ms: Option<u64>,
    ) -> io::Result<()> {
        self.check()?;
        let (tag, payload) = value_parts(value);
        self.put(EntryHead::new(tag, key.len(), expires_at_ms).as_bytes())?;
        self.put(key)?;
        self.put(Varint::new(payload.len() as u64).as_bytes())?;
        self.put(payload)?;
        self.entries_written += 1;
        Ok(())
    }

    /// Writes records already encoded by [`encode_entry`] (a batch copied out under a lock).
    /// The batch is checked to consist of whole entry records first (a cheap walk over the
    /// length fields); anything else is an `InvalidInput` error and nothing is written.
    pub fn write_encoded(&mut self, records: &[u8]) -> io::Result<()> {
        self.check()?;
        let entries = count_encoded_entries(records).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "write_encoded: not a sequence of records from encode_entry",
            )
        })?;
        self.put(records)?;
        self.entries_written += entries;
        Ok(())
    }

    /// Entries written so far, through either [`Self::write_entry`] or
    /// [`Self::write_encoded`]: what SAVE reports and the loader should find.
    pub fn entries_written(&self) -> u64 {
        self.entries_written
    }

    /// Bytes handed to the inner writer so far, header included.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Ends the snapshot with EOF and the checksum, and returns the inner writer. The caller
    /// flushes and fsyncs it.
    pub fn finish(mut self) -> io::Result<W> {
        self.check()?;
        self.put(&[OP_EOF])?;
        let crc = self.hasher.clone().finalize();
        self.put(&crc.to_le_bytes())?;
        Ok(self.inner)
    }

    fn check(&self) -> io::Result<()> {
        if self.failed {
            Err(io::Error::other(
                "snapshot writer failed earlier; the snapshot is incomplete",
            ))
        } else {
            Ok(())
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Err(err) = self.inner.write_all(bytes) {
            self.failed = true;
            return Err(err);
        }
        self.hasher.update(bytes);
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }
}

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
            if expires_at_ms.is_some() && op != TYPE_STRING {
                // EXPIRE_MS must prefix a value record.
                return Err(FormatError::new(op_offset, FormatErrorKind::BadOpcode(op)));
            }
            match op {
                TYPE_STRING => {
                    let key = self.read_bytes()?;
                    let value = Value::Str(self.read_bytes()?);
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
            Some(file_len) => {
                if len > file_len.saturating_sub(self.offset()) {
                    return Err(FormatError::new(file_len, FormatErrorKind::Truncated));
                }
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
    fn new(offset: u64, kind: FormatErrorKind) -> Self {
        FormatError { offset, kind }
    }
}

/// The ways a snapshot can be unreadable.
#[derive(Debug)]
pub enum FormatErrorKind {
    /// Reading the source failed.
    Io(io::Error),
    /// The file does not start with [`MAGIC`]: not a snapshot.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes `items` with `write_entry` and friends.
    fn write_items(items: &[Item], created_ms: u64) -> Vec<u8> {
        let mut writer = SnapshotWriter::new(Vec::new(), created_ms).unwrap();
        for item in items {
            match item {
                Item::SelectDb(db) => writer.select_db(*db).unwrap(),
                Item::SizeHint {
                    keys,
                    keys_with_ttl,
                } => writer.size_hint(*keys, *keys_with_ttl).unwrap(),
                Item::Entry {
                    key,
                    value,
                    expires_at_ms,
                } => writer.write_entry(key, value, *expires_at_ms).unwrap(),
            }
        }
        let entries = items
            .iter()
            .filter(|item| matches!(item, Item::Entry { .. }))
            .count() as u64;
        assert_eq!(writer.entries_written(), entries);
        let bytes_before_eof = writer.bytes_written();
        let out = writer.finish().unwrap();
        assert_eq!(out.len() as u64, bytes_before_eof + 5);
        out
    }

    /// Writes `items` with runs of entries batched through `encode_entry` + `write_encoded`.
    fn write_items_encoded(items: &[Item], created_ms: u64) -> Vec<u8> {
        let mut writer = SnapshotWriter::new(Vec::new(), created_ms).unwrap();
        let mut batch = Vec::new();
        for item in items {
            if !matches!(item, Item::Entry { .. }) {
                writer.write_encoded(&batch).unwrap();
                batch.clear();
            }
            match item {
                Item::SelectDb(db) => writer.select_db(*db).unwrap(),
                Item::SizeHint {
                    keys,
                    keys_with_ttl,
                } => writer.size_hint(*keys, *keys_with_ttl).unwrap(),
                Item::Entry {
                    key,
                    value,
                    expires_at_ms,
                } => encode_entry(&mut batch, key, value, *expires_at_ms),
            }
        }
        writer.write_encoded(&batch).unwrap();
        let entries = items
            .iter()
            .filter(|item| matches!(item, Item::Entry { .. }))
            .count() as u64;
        assert_eq!(writer.entries_written(), entries);
        writer.finish().unwrap()
    }

    /// Reads a whole snapshot; the created time and the items.
    fn read_all(bytes: &[u8]) -> Result<(u64, Vec<Item>), FormatError> {
        let mut reader = SnapshotReader::new(bytes)?;
        let mut items = Vec::new();
        while let Some(item) = reader.next_item()? {
            items.push(item);
        }
        assert_eq!(reader.offset(), bytes.len() as u64);
        // Fused: stays at the end.
        assert!(reader.next_item()?.is_none());
        Ok((reader.created_ms(), items))
    }

    /// Like `read_all`, through `with_file_len`, returning only the outcome.
    fn read_all_with_len(bytes: &[u8]) -> Result<usize, FormatError> {
        let mut reader = SnapshotReader::with_file_len(bytes, bytes.len() as u64)?;
        let mut count = 0;
        while reader.next_item()?.is_some() {
            count += 1;
        }
        Ok(count)
    }

    fn entry(key: &[u8], value: &[u8], expires_at_ms: Option<u64>) -> Item {
        Item::Entry {
            key: key.to_vec(),
            value: Value::Str(value.to_vec()),
            expires_at_ms,
        }
    }

    fn small_items() -> Vec<Item> {
        vec![
            entry(b"before-select", b"db0", None),
            Item::SelectDb(0),
            Item::SizeHint {
                keys: 3,
                keys_with_ttl: 1,
            },
            entry(b"a", b"1", None),
            entry(b"", b"", Some(1_700_000_000_000)),
            entry(b"\x00\xff\r\n", &[0xFF; 200], None),
            Item::SelectDb(300),
            entry(b"k", b"v", Some(u64::MAX)),
        ]
    }

    fn small_snapshot() -> Vec<u8> {
        write_items(&small_items(), 1_234_567)
    }

    /// A header followed by `body`, then EOF and a correct checksum.
    fn with_body(body: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&42u64.to_le_bytes());
        bytes.extend_from_slice(body);
        bytes.push(OP_EOF);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn item_strategy() -> impl Strategy<Value = Item> {
        let key = prop::collection::vec(any::<u8>(), 0..24);
        let value = prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..64),
            1 => prop::collection::vec(any::<u8>(), 0..4096),
        ];
        let ttl = prop::option::of(any::<u64>());
        (key, value, ttl).prop_map(|(key, value, expires_at_ms)| Item::Entry {
            key,
            value: Value::Str(value),
            expires_at_ms,
        })
    }

    fn items_strategy() -> impl Strategy<Value = Vec<Item>> {
        let db = prop_oneof![0u32..16, any::<u32>()];
        let hint = prop::option::of((any::<u64>(), any::<u64>()));
        let database = (db, hint, prop::collection::vec(item_strategy(), 0..12));
        prop::collection::vec(database, 0..5).prop_map(|dbs| {
            let mut items = Vec::new();
            for (db, hint, entries) in dbs {
                items.push(Item::SelectDb(db));
                if let Some((keys, keys_with_ttl)) = hint {
                    items.push(Item::SizeHint {
                        keys,
                        keys_with_ttl,
                    });
                }
                items.extend(entries);
            }
            items
        })
    }

    proptest! {
        #[test]
        fn roundtrip_preserves_every_item(items in items_strategy(), created in any::<u64>()) {
            let bytes = write_items(&items, created);
            let (read_created, read_items) = read_all(&bytes).unwrap();
            prop_assert_eq!(read_created, created);
            prop_assert_eq!(&read_items, &items);
            prop_assert_eq!(read_all_with_len(&bytes).unwrap(), items.len());
        }

        #[test]
        fn encoded_batches_write_identical_bytes(items in items_strategy(), created in any::<u64>()) {
            prop_assert_eq!(write_items_encoded(&items, created), write_items(&items, created));
        }

        #[test]
        fn varints_roundtrip(value in any::<u64>()) {
            let varint = Varint::new(value);
            prop_assert_eq!(decode_varint(varint.as_bytes()), Some((value, varint.len)));
            // And through the reader's byte-at-a-time path, at the end of the input.
            let mut body = vec![OP_SIZE_HINT];
            body.extend_from_slice(varint.as_bytes());
            body.extend_from_slice(varint.as_bytes());
            let (_, items) = read_all(&with_body(&body)).unwrap();
            prop_assert_eq!(items, vec![Item::SizeHint { keys: value, keys_with_ttl: value }]);
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
            let bytes = with_body(&body);
            let _ = read_all(&bytes);
            let _ = read_all_with_len(&bytes);
        }
    }

    #[test]
    fn small_snapshot_roundtrips() {
        let bytes = small_snapshot();
        let (created, items) = read_all(&bytes).unwrap();
        assert_eq!(created, 1_234_567);
        assert_eq!(items, small_items());
    }

    #[test]
    fn empty_snapshot_is_header_eof_and_checksum() {
        let bytes = write_items(&[], 7);
        assert_eq!(bytes.len(), HEADER_LEN + 1 + 4);
        assert_eq!(&bytes[..8], MAGIC);
        let mut expected = Vec::new();
        expected.extend_from_slice(MAGIC);
        expected.extend_from_slice(&VERSION.to_le_bytes());
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.push(OP_EOF);
        let crc = crc32fast::hash(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(read_all(&bytes).unwrap(), (7, vec![]));
    }

    #[test]
    fn layout_matches_the_spec() {
        let mut writer = SnapshotWriter::new(Vec::new(), 0x0102).unwrap();
        writer.select_db(300).unwrap();
        writer.size_hint(1, 1).unwrap();
        writer
            .write_entry(b"ab", &Value::Str(b"xyz".to_vec()), Some(5))
            .unwrap();
        let bytes = writer.finish().unwrap();
        let mut expected = b"KVSNAP\r\n".to_vec();
        expected.extend_from_slice(&[1, 0]);
        expected.extend_from_slice(&[0x02, 0x01, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0xFE, 0xAC, 0x02]); // varint(300)
        expected.extend_from_slice(&[0xFD, 1, 1]);
        expected.extend_from_slice(&[0xFC, 5, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0x00, 2, b'a', b'b', 3, b'x', b'y', b'z']);
        expected.push(0xFF);
        let crc = crc32fast::hash(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        let bytes = small_snapshot();
        for cut in 0..bytes.len() {
            let short = &bytes[..cut];
            let err = read_all(short).unwrap_err();
            assert!(
                matches!(err.kind, FormatErrorKind::Truncated),
                "cut at {cut}: {err}"
            );
            assert_eq!(err.offset, cut as u64, "cut at {cut}: {err}");
            let err = read_all_with_len(short).unwrap_err();
            assert!(
                matches!(err.kind, FormatErrorKind::Truncated),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn any_single_byte_change_is_an_error() {
        let bytes = small_snapshot();
        for at in 0..bytes.len() {
            for flip in 1..=255u8 {
                let mut bad = bytes.clone();
                bad[at] ^= flip;
                assert!(read_all(&bad).is_err(), "byte {at} ^ {flip:#x} accepted");
                assert!(
                    read_all_with_len(&bad).is_err(),
                    "byte {at} ^ {flip:#x} accepted"
                );
            }
        }
    }

    #[test]
    fn a_changed_payload_byte_is_a_checksum_mismatch() {
        let mut bytes = small_snapshot();
        let at = bytes.len() - 6; // the last value, "v"
        bytes[at] ^= 0x20;
        let err = read_all(&bytes).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::ChecksumMismatch { .. }),
            "{err}"
        );
        assert_eq!(err.offset, bytes.len() as u64 - 4);
        assert!(err.to_string().starts_with(&format!(
            "checksum mismatch at byte {} (stored 0x",
            bytes.len() - 4
        )));
    }

    #[test]
    fn trailing_data_is_an_error() {
        let mut bytes = small_snapshot();
        let len = bytes.len() as u64;
        bytes.push(0);
        let err = read_all(&bytes).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::TrailingData), "{err}");
        assert_eq!(err.offset, len);
        let err = read_all_with_len(&bytes).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::TrailingData), "{err}");
    }

    #[test]
    fn bad_magic_is_an_error() {
        let mut bytes = small_snapshot();
        bytes[0] = b'R';
        let err = read_all(&bytes).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::BadMagic), "{err}");
        assert_eq!(err.offset, 0);
        // A short file that is not a prefix of the magic is bad magic, not truncation.
        let err = read_all(b"*1\r\n").unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::BadMagic), "{err}");
        let err = read_all(b"KVSN").unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let mut bytes = small_snapshot();
        bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
        let err = read_all(&bytes).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::UnsupportedVersion(2)),
            "{err}"
        );
        assert_eq!(err.offset, 8);
        assert_eq!(
            err.to_string(),
            "unsupported snapshot format version 2 at byte 8 (this build reads version 1)"
        );
    }

    #[test]
    fn huge_lengths_fail_fast_without_allocating() {
        // A key length of 2^40 (1 TiB) in a tiny file, with a valid checksum.
        let mut body = vec![OP_SELECT_DB, 0, TYPE_STRING];
        body.extend_from_slice(Varint::new(1 << 40).as_bytes());
        body.extend_from_slice(b"abc");
        let bytes = with_body(&body);
        let err = read_all(&bytes).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");
        assert_eq!(err.offset, bytes.len() as u64);
        let err = read_all_with_len(&bytes).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");

        // The same for a value length.
        let mut body = vec![TYPE_STRING, 1, b'k'];
        body.extend_from_slice(Varint::new(1 << 40).as_bytes());
        let err = read_all(&with_body(&body)).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");

        // Beyond what any Vec can hold: rejected before reading on.
        let mut body = vec![TYPE_STRING];
        body.extend_from_slice(Varint::new(u64::MAX).as_bytes());
        let err = read_all(&with_body(&body)).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::TooLarge(u64::MAX)),
            "{err}"
        );
        assert_eq!(err.offset, HEADER_LEN as u64 + 1);
    }

    #[test]
    fn malformed_varints_are_errors() {
        // Eleven bytes.
        let mut body = vec![OP_SELECT_DB];
        body.extend_from_slice(&[0x80; 10]);
        body.push(0);
        let err = read_all(&with_body(&body)).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::BadVarint), "{err}");
        assert_eq!(err.offset, HEADER_LEN as u64 + 1);
        // Ten bytes overflowing 64 bits.
        let mut body = vec![OP_SIZE_HINT];
        body.extend_from_slice(&[0xFF; 9]);
        body.push(0x02);
        body.push(0);
        let err = read_all(&with_body(&body)).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::BadVarint), "{err}");
        assert_eq!(decode_varint(&body[1..]), None);
        // The same through the byte-at-a-time path: the varint ends the input.
        let mut bytes = with_body(&[]);
        bytes.truncate(HEADER_LEN);
        bytes.push(OP_SIZE_HINT);
        bytes.extend_from_slice(&[0xFF; 9]);
        bytes.push(0x02);
        let err = read_all(&bytes).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::BadVarint), "{err}");
    }

    #[test]
    fn database_index_above_u32_is_an_error() {
        let mut body = vec![OP_SELECT_DB];
        body.extend_from_slice(Varint::new(1 << 32).as_bytes());
        let err = read_all(&with_body(&body)).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::DbOutOfRange(0x1_0000_0000)),
            "{err}"
        );
        assert_eq!(err.offset, HEADER_LEN as u64 + 1);
    }

    #[test]
    fn expire_must_prefix_a_value() {
        for next in [OP_SELECT_DB, OP_SIZE_HINT, OP_EXPIRE_MS, OP_EOF, 0x01, 0x7F] {
            let mut body = vec![OP_EXPIRE_MS];
            body.extend_from_slice(&9u64.to_le_bytes());
            body.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0, 0]);
            let err = read_all(&with_body(&body)).unwrap_err();
            assert!(
                matches!(err.kind, FormatErrorKind::BadOpcode(op) if op == next),
                "{next:#x}: {err}"
            );
            assert_eq!(err.offset, HEADER_LEN as u64 + 9);
        }
    }

    #[test]
    fn unknown_opcodes_are_errors() {
        for op in [0x01, 0x7F, 0x80, 0xFB] {
            let err = read_all(&with_body(&[op, 0, 0])).unwrap_err();
            assert!(
                matches!(err.kind, FormatErrorKind::BadOpcode(got) if got == op),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!("unexpected opcode 0x{op:02X} at byte {HEADER_LEN}")
            );
        }
    }

    #[test]
    fn the_reader_stays_failed_after_an_error() {
        let mut bytes = small_snapshot();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let mut reader = SnapshotReader::new(&bytes[..]).unwrap();
        let err = loop {
            match reader.next_item() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("corrupt snapshot accepted"),
                Err(err) => break err,
            }
        };
        assert!(matches!(err.kind, FormatErrorKind::ChecksumMismatch { .. }));
        assert!(reader.next_item().is_err());
        assert!(reader.next_item().is_err());
    }

    #[test]
    fn write_encoded_rejects_what_encode_entry_did_not_produce() {
        let mut writer = SnapshotWriter::new(Vec::new(), 0).unwrap();
        let mut batch = Vec::new();
        encode_entry(&mut batch, b"key", &Value::Str(b"value".to_vec()), Some(1));
        encode_entry(&mut batch, b"k2", &Value::Str(Vec::new()), None);
        for bad in [
            &batch[..batch.len() - 1],
            &[OP_SELECT_DB, 0][..],
            &[OP_EXPIRE_MS, 0, 0][..],
            &[TYPE_STRING, 5, b'a'][..],
        ] {
            let err = writer.write_encoded(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        let before = writer.bytes_written();
        writer.write_encoded(&batch).unwrap();
        writer.write_encoded(&[]).unwrap();
        assert_eq!(writer.entries_written(), 2);
        assert_eq!(writer.bytes_written(), before + batch.len() as u64);
        let bytes = writer.finish().unwrap();
        let (_, items) = read_all(&bytes).unwrap();
        assert_eq!(
            items,
            vec![entry(b"key", b"value", Some(1)), entry(b"k2", b"", None)]
        );
    }

    #[test]
    fn a_failed_write_poisons_the_writer() {
        /// Accepts `left` bytes, then fails.
        struct Failing {
            left: usize,
        }
        impl Write for Failing {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.left == 0 {
                    return Err(io::Error::other("disk full"));
                }
                let n = buf.len().min(self.left);
                self.left -= n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(SnapshotWriter::new(Failing { left: 5 }, 0).is_err());
        let mut writer = SnapshotWriter::new(
            Failing {
                left: HEADER_LEN + 3,
            },
            0,
        )
        .unwrap();
        let value = Value::Str(vec![1; 10]);
        assert!(writer.write_entry(b"key", &value, None).is_err());
        assert!(writer.select_db(1).is_err());
        assert!(writer.finish().is_err());
    }

    #[test]
    fn large_values_cross_buffer_boundaries() {
        let big = (0..3 * READ_BUF + 17)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>();
        let items = vec![
            Item::SelectDb(1),
            entry(&big[..READ_BUF + 3], &big, Some(3)),
            entry(b"after", &big[..READ_BUF - 5], None),
        ];
        let bytes = write_items(&items, 0);
        assert_eq!(read_all(&bytes).unwrap().1, items);
        assert_eq!(read_all_with_len(&bytes).unwrap(), items.len());
        // Read one byte per call, the worst case for the buffering.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match (self.0.split_first(), buf.first_mut()) {
                    (Some((&byte, rest)), Some(slot)) => {
                        *slot = byte;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let mut reader = SnapshotReader::new(Trickle(&bytes)).unwrap();
        let mut read = Vec::new();
        while let Some(item) = reader.next_item().unwrap() {
            read.push(item);
        }
        assert_eq!(read, items);
    }

    #[test]
    fn verify_file_checks_a_file_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let items = small_items();
        let mut entries = 0;
        let len = crate::persist::fsutil::write_atomically(
            &crate::persist::disk::OsDisk,
            dir.path(),
            "dump.kvs",
            |w| {
                let mut writer = SnapshotWriter::new(w, 99)?;
                for item in &items {
                    match item {
                        Item::SelectDb(db) => writer.select_db(*db)?,
                        Item::SizeHint {
                            keys,
                            keys_with_ttl,
                        } => writer.size_hint(*keys, *keys_with_ttl)?,
                        Item::Entry {
                            key,
                            value,
                            expires_at_ms,
                        } => writer.write_entry(key, value, *expires_at_ms)?,
                    }
                }
                entries = writer.entries_written();
                writer.finish()?;
                Ok(())
            },
        )
        .unwrap();
        let path = dir.path().join("dump.kvs");
        let summary = verify_file(&path).unwrap();
        assert_eq!(
            summary,
            VerifySummary {
                entries,
                bytes: len,
                created_ms: 99,
            }
        );
        assert_eq!(entries, 5);

        // A truncated copy fails, with the offset where the data ends.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = verify_file(&path).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");
        assert_eq!(err.offset, len - 3);

        let err = verify_file(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::Io(_)), "{err}");
    }

    /// `cargo test --release -p kvserver --lib snapshot_format -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release"]
    fn reads_a_million_entries_quickly() {
        let mut writer = SnapshotWriter::new(Vec::new(), 0).unwrap();
        writer.select_db(0).unwrap();
        writer.size_hint(1_000_000, 0).unwrap();
        for i in 0..1_000_000u64 {
            let key = format!("key:{i:012}");
            let value = Value::Str(format!("value-{i:024}").into_bytes());
            let ttl = (i % 4 == 0).then_some(1_700_000_000_000 + i);
            writer.write_entry(key.as_bytes(), &value, ttl).unwrap();
        }
        let bytes = writer.finish().unwrap();
        let start = std::time::Instant::now();
        let mut reader = SnapshotReader::new(&bytes[..]).unwrap();
        let mut entries = 0u64;
        while let Some(item) = reader.next_item().unwrap() {
            if let Item::Entry { .. } = item {
                entries += 1;
            }
        }
        let elapsed = start.elapsed();
        println!(
            "read {entries} entries ({} bytes) in {elapsed:?}",
            bytes.len()
        );
        assert_eq!(entries, 1_000_000);
    }
}
