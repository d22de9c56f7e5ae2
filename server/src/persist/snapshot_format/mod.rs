//! The snapshot file format: the dump files written by SAVE/BGSAVE and the base file of the
//! append-only log. Compact, versioned and checksummed; written and read as a stream so that
//! neither side ever holds the whole keyspace in a second copy.
//!
//! This module is the file's framing: header, records, varints, checksum, error offsets
//! (`writer`, `reader`, `error`). The payload of each value type lives with the type, in
//! `store::value`, behind the `PayloadWrite`/`PayloadRead` seam that the writer and reader
//! implement here.
//!
//! # Byte layout
//!
//! All fixed-width integers are little-endian. `varint` is unsigned LEB128 of a `u64`: seven
//! bits per byte, least significant group first, the high bit set on every byte but the last;
//! at most 10 bytes, and the 10th byte may only be `0x00` or `0x01` (anything longer or
//! overflowing 64 bits is rejected). `bytes` is `varint(len)` followed by that many bytes.
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
//!           | 0xFB bytes(payload)                FUNCTIONS: the function libraries, as FUNCTION
//!                                               DUMP writes them (before the first database)
//!           | entry
//! entry    := [0xFC u64(expires_at_ms)] value   EXPIRE_MS applies to the entry it prefixes
//!                                               only: an absolute Unix time in milliseconds
//! value    := tag bytes(key) payload            tag 0x00..=0x7F: reserved for value types
//!
//! tag 0x00 STRING      payload := bytes(value)
//! tag 0x01 LIST        payload := varint(n) bytes(element)*n            head to tail
//! tag 0x02 HASH        payload := varint(n) (bytes(field) bytes(value))*n
//! tag 0x03 SET         payload := varint(n) bytes(member)*n
//! tag 0x04 ZSET        payload := varint(n) (bytes(member) f64(score))*n
//!                                               ascending (score, member); f64 is the
//!                                               IEEE-754 bits as a u64, never NaN
//! tags 0x05..=0x7F     reserved for value types to come
//!
//! eof      := 0xFF u32(crc)                     EOF. `crc` is the CRC-32 (IEEE, as computed
//!                                               by crc32fast) of every byte of the file from
//!                                               the first byte of the magic up to and
//!                                               including this 0xFF
//! ```
//!
//! Entries before the first SELECT_DB belong to database 0. A file must end exactly after the
//! checksum: a file that stops earlier is truncated, and bytes after it are an error (trailing
//! data). An EXPIRE_MS that is not immediately followed by a value record is an error. Within a
//! hash, set or sorted set a field or member appears once; a repeated one, or a NaN score, is
//! an error. Key uniqueness and the database count are the loader's business, not the
//! format's. Version 1 files written before lists, hashes, sets and sorted sets existed hold
//! only tag 0x00 and read exactly as they always did: the tags were reserved from the start.
//!
//! The reader never trusts a length or a count: a key or value length only preallocates a
//! bounded amount (or, when the file size is known, is checked against the bytes left), and
//! so does a collection's element count, so a corrupt length fails with an error instead of
//! an attempt to allocate gigabytes.
// Reads files that may be corrupt or hostile: no unwrap, expect or panic outside tests. The
// reader's indexing of its own buffer is bounded by its fill logic; the `snapshot_load` fuzz
// target in fuzz/ exercises it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{FormatError, FormatErrorKind};
pub use reader::{verify_file, Item, SnapshotReader, VerifySummary};
pub use writer::SnapshotWriter;

use crate::store::value::codec::{PayloadRead, PayloadWrite};
use crate::store::value::tag;
use crate::store::{Value, ValueRef};

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
const OP_FUNCTIONS: u8 = 0xFB;

/// Largest length field the reader accepts: the most a `Vec` can hold on this platform.
const MAX_LEN: u64 = isize::MAX as u64;

/// The reader's buffer. Every read from the source fills as much of it as it can.
const READ_BUF: usize = 64 * 1024;

/// Most that a key or value of unknown provenance preallocates; larger ones grow as their
/// bytes actually arrive, so a corrupt length cannot allocate more than the file holds.
const PREALLOC_CAP: usize = 64 * 1024;

/// A varint in a fixed buffer: the one encoder of the format's varints.
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

/// True for the type tags this build reads (the others up to [`tag::LAST_RESERVED`] are
/// reserved, and unknown).
fn is_known_tag(op: u8) -> bool {
    matches!(op, tag::STRING..=tag::ZSET)
}

/// The bytes of an entry before its key: optional EXPIRE_MS, the type tag, the key length.
/// Kept on the stack so that writing an entry copies the key exactly once.
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

/// A buffer of encoded records, as a payload sink.
struct EncodeBuf<'a>(&'a mut Vec<u8>);

impl PayloadWrite for EncodeBuf<'_> {
    type Error = std::convert::Infallible;

    fn put_raw(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn put_varint(&mut self, value: u64) -> Result<(), Self::Error> {
        self.put_raw(Varint::new(value).as_bytes())
    }
}

/// Appends one encoded entry record (EXPIRE_MS prefix if `expires_at_ms` is `Some`, then the
/// type tag, key and payload) to `buf`; it allocates nothing beyond growing `buf`. A batch of
/// these is written with [`SnapshotWriter::write_encoded`], producing the same bytes as
/// [`SnapshotWriter::write_entry`].
pub fn encode_entry(buf: &mut Vec<u8>, key: &[u8], value: &Value, expires_at_ms: Option<u64>) {
    encode_value_entry(buf, key, value.as_value_ref(), expires_at_ms);
}

/// [`encode_entry`] for a borrowed value.
fn encode_value_entry(
    buf: &mut Vec<u8>,
    key: &[u8],
    value: ValueRef<'_>,
    expires_at_ms: Option<u64>,
) {
    let head = EntryHead::new(value.type_tag(), key.len(), expires_at_ms);
    buf.extend_from_slice(head.as_bytes());
    buf.extend_from_slice(key);
    let Ok(()) = value.encode(&mut EncodeBuf(buf));
}

/// A payload source over a byte slice: for walking a batch of encoded records.
struct SliceSource<'a>(&'a [u8]);

impl SliceSource<'_> {
    fn take(&mut self, n: u64) -> Option<&[u8]> {
        let n = usize::try_from(n).ok()?;
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
}

impl PayloadRead for SliceSource<'_> {
    type Error = ();

    fn read_varint(&mut self) -> Result<u64, ()> {
        let (value, used) = decode_varint(self.0).ok_or(())?;
        self.take(used as u64).ok_or(())?;
        Ok(value)
    }

    fn read_bytes(&mut self) -> Result<Vec<u8>, ()> {
        let len = self.read_varint()?;
        self.take(len).map(<[u8]>::to_vec).ok_or(())
    }

    fn read_f64(&mut self) -> Result<f64, ()> {
        let bytes = self.take(8).ok_or(())?;
        let mut bits = [0u8; 8];
        bits.copy_from_slice(bytes);
        Ok(f64::from_bits(u64::from_le_bytes(bits)))
    }

    fn read_count(&mut self) -> Result<u64, ()> {
        let count = self.read_varint()?;
        if count > self.0.len() as u64 {
            return Err(());
        }
        Ok(count)
    }

    fn invalid(&self, _what: &'static str) {}
}

/// Walks a batch produced by [`encode_entry`] and counts its entries; `None` if the bytes are
/// not a whole number of well-formed entry records.
fn count_encoded_entries(records: &[u8]) -> Option<u64> {
    let mut src = SliceSource(records);
    let mut entries = 0u64;
    while let Some((&first, rest)) = src.0.split_first() {
        let (tag, rest) = if first == OP_EXPIRE_MS {
            let rest = rest.get(8..)?;
            let (&tag, rest) = rest.split_first()?;
            (tag, rest)
        } else {
            (first, rest)
        };
        if !is_known_tag(tag) {
            return None;
        }
        src.0 = rest;
        let key_len = src.read_varint().ok()?;
        src.take(key_len)?;
        if tag == tag::STRING {
            // Skipped, not copied: batches are mostly strings.
            let len = src.read_varint().ok()?;
            src.take(len)?;
        } else {
            Value::decode(tag, &mut src)?.ok()?;
        }
        entries += 1;
    }
    Some(entries)
}
