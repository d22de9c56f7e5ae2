//! Writing a snapshot: header, records and checksum, streamed.

use std::io::{self, Write};

use crc32fast::Hasher;

use super::{count_encoded_entries, encode_value_entry, EntryHead, Varint, HEADER_LEN, MAGIC};
use super::{OP_EOF, OP_FUNCTIONS, OP_SELECT_DB, OP_SIZE_HINT, VERSION};
use crate::store::value::codec::PayloadWrite;
use crate::store::{CapturedEntry, Value, ValueRef};

/// [`SnapshotWriter::write_captured`] gathers strings into a buffer of about this size before
/// writing it, so that the checksum and the inner writer see few large writes.
const GATHER: usize = 64 * 1024;

/// [`GATHER`], for tests.
#[cfg(test)]
pub(super) const GATHER_FOR_TESTS: usize = GATHER;

/// Streams a snapshot to any writer, checksumming as it goes. Every call writes through to
/// `inner`, so give it a buffered writer (such as the one [`crate::persist::fsutil::write_atomically`]
/// provides). After an I/O error the writer refuses further calls, since the stream and the
/// running checksum may disagree.
pub struct SnapshotWriter<W: Write> {
    inner: W,
    hasher: Hasher,
    bytes_written: u64,
    entries_written: u64,
    failed: bool,
    /// Encoded strings gathered by [`Self::write_captured`].
    gathered: Vec<u8>,
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
            gathered: Vec::new(),
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

    /// Writes a FUNCTIONS record: the function libraries as a FUNCTION DUMP payload.
    pub fn functions(&mut self, payload: &[u8]) -> io::Result<()> {
        self.check()?;
        self.put(&[OP_FUNCTIONS])?;
        self.put(Varint::new(payload.len() as u64).as_bytes())?;
        self.put(payload)
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
        self.write_value(key, value.as_value_ref(), expires_at_ms)
    }

    /// Writes one entry from a borrowed value (what a snapshot captured): EXPIRE_MS if
    /// `expires_at_ms` is `Some`, then the type tag, the key and the type's payload, which is
    /// streamed: a large collection is never encoded into memory first.
    pub fn write_value(
        &mut self,
        key: &[u8],
        value: ValueRef<'_>,
        expires_at_ms: Option<u64>,
    ) -> io::Result<()> {
        self.check()?;
        self.put(EntryHead::new(value.type_tag(), key.len(), expires_at_ms).as_bytes())?;
        self.put(key)?;
        value.encode(&mut Payload(self))?;
        self.entries_written += 1;
        Ok(())
    }

    /// Writes the entries a snapshot captured (see [`crate::store::SnapshotBatch`]), with the
    /// same bytes as [`Self::write_value`] for each: strings are gathered and written a buffer
    /// at a time, collections are streamed.
    pub fn write_captured<'a>(
        &mut self,
        entries: impl IntoIterator<Item = CapturedEntry<'a>>,
    ) -> io::Result<()> {
        self.check()?;
        let mut gathered = std::mem::take(&mut self.gathered);
        gathered.clear();
        let result = self.gather(&mut gathered, entries);
        self.gathered = gathered;
        result
    }

    fn gather<'a>(
        &mut self,
        gathered: &mut Vec<u8>,
        entries: impl IntoIterator<Item = CapturedEntry<'a>>,
    ) -> io::Result<()> {
        for entry in entries {
            match entry.value {
                ValueRef::Str(bytes) if bytes.len() < GATHER => {
                    encode_value_entry(gathered, entry.key, entry.value, entry.expires_at);
                    self.entries_written += 1;
                    if gathered.len() >= GATHER {
                        self.put(gathered)?;
                        gathered.clear();
                    }
                }
                value => {
                    self.put(gathered)?;
                    gathered.clear();
                    self.write_value(entry.key, value, entry.expires_at)?;
                }
            }
        }
        self.put(gathered)
    }

    /// Writes records already encoded by [`super::encode_entry`].
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

/// The writer as a sink for a value's payload (kept private: the writer's own methods are
/// the only way to put whole records into the stream).
struct Payload<'a, W: Write>(&'a mut SnapshotWriter<W>);

impl<W: Write> PayloadWrite for Payload<'_, W> {
    type Error = io::Error;

    fn put_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.put(bytes)
    }

    fn put_varint(&mut self, value: u64) -> io::Result<()> {
        self.0.put(Varint::new(value).as_bytes())
    }
}
