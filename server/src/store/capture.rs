//! What a snapshot takes out of a shard under its lock, for the snapshot thread to encode
//! after the lock is released.
//!
//! Capturing is cheap by design, so that no client waits for it: a key and a string are
//! copied into one shared buffer (no allocation per entry), a collection is cloned (one
//! pointer copy per `Arc`'d part of it: see [`super::value`]), and a value a write is about
//! to replace outright is moved in, not copied. The store knows nothing of the file format:
//! `persist::snapshot` encodes the batch, outside the lock, and clearing it there also drops
//! the batch's references to collection parts that writers have since replaced.

use super::value::{Value, ValueRef};

/// A batch that ends up holding more than this many bytes is not kept for reuse: one huge
/// string should not pin its size for the rest of the snapshot.
const KEEP_CAPACITY: usize = 4 << 20;

/// Entries captured for a snapshot; see the module documentation.
#[derive(Default)]
pub struct SnapshotBatch {
    /// Keys, each followed by its value's bytes when the value is a copied string.
    bytes: Vec<u8>,
    entries: Vec<Captured>,
    /// `Arc`'d parts of collections cloned into this batch.
    parts: usize,
}

/// One captured entry.
struct Captured {
    /// Where the key starts in `bytes`.
    start: usize,
    key_len: usize,
    value: CapturedValue,
    expires_at: Option<u64>,
}

/// How a captured entry's value is kept.
enum CapturedValue {
    /// A string copied into `bytes` right after the key: its length.
    Copied(usize),
    /// A value the batch owns: a clone of a collection (sharing its parts), or a value a
    /// write replaced and handed over.
    Held(Value),
}

/// One entry of a [`SnapshotBatch`], as the snapshot writer encodes it.
#[derive(Debug, Clone, Copy)]
pub struct CapturedEntry<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value as it was when the snapshot began.
    pub value: ValueRef<'a>,
    /// Its absolute deadline then (Unix ms), if it had one.
    pub expires_at: Option<u64>,
}

impl SnapshotBatch {
    /// An empty batch.
    pub fn new() -> Self {
        SnapshotBatch::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the batch holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of keys and strings copied in.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// `Arc`'d parts of collections cloned in (pointer copies).
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// Empties the batch, dropping what it holds. Call it with no lock held: dropping a
    /// collection's clone may free parts that writers have replaced since.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.parts = 0;
        if self.bytes.capacity() > KEEP_CAPACITY {
            self.bytes = Vec::new();
        } else {
            self.bytes.clear();
        }
    }

    /// The captured entries, in the order they were captured.
    pub fn iter(&self) -> impl Iterator<Item = CapturedEntry<'_>> + '_ {
        self.entries.iter().map(|entry| {
            let key_end = entry.start + entry.key_len;
            let value = match &entry.value {
                CapturedValue::Copied(len) => ValueRef::Str(&self.bytes[key_end..key_end + len]),
                CapturedValue::Held(value) => value.as_value_ref(),
            };
            CapturedEntry {
                key: &self.bytes[entry.start..key_end],
                value,
                expires_at: entry.expires_at,
            }
        })
    }

    /// Captures `value` as it is now: a string's bytes are copied, a collection is cloned
    /// (its parts shared, not copied).
    pub(super) fn capture(&mut self, key: &[u8], value: &Value, expires_at: Option<u64>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let value = match value.as_string() {
            Ok(bytes) => {
                self.bytes.extend_from_slice(bytes);
                CapturedValue::Copied(bytes.len())
            }
            Err(_) => {
                self.parts += value.part_count();
                CapturedValue::Held(value.clone())
            }
        };
        self.entries.push(Captured {
            start,
            key_len: key.len(),
            value,
            expires_at,
        });
    }

    /// Captures a value that its key no longer holds (a write replaced it, or the shard is
    /// being emptied): moved in, nothing copied but the key.
    pub(super) fn hold(&mut self, key: &[u8], value: Value, expires_at: Option<u64>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.entries.push(Captured {
            start,
            key_len: key.len(),
            value: CapturedValue::Held(value),
            expires_at,
        });
    }

    /// Moves every entry of `other` to the end of this batch, leaving `other` empty.
    pub(super) fn append(&mut self, other: &mut SnapshotBatch) {
        if self.is_empty() && self.bytes.is_empty() {
            std::mem::swap(self, other);
            return;
        }
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.entries
            .extend(other.entries.drain(..).map(|entry| Captured {
                start: entry.start + base,
                ..entry
            }));
        self.parts += other.parts;
        other.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::value::List;

    #[test]
    fn entries_come_back_as_captured_across_appends() {
        let list: List = [&b"x"[..], b"y"].into_iter().collect();
        let mut first = SnapshotBatch::new();
        first.capture(b"k1", &Value::Str(b"one".to_vec()), Some(5));
        let mut second = SnapshotBatch::new();
        second.capture(b"k2", &Value::list(list.clone()), None);
        second.hold(b"k3", Value::Str(b"three".to_vec()), Some(7));
        second.capture(b"", &Value::Str(Vec::new()), None);
        let mut out = SnapshotBatch::new();
        out.append(&mut first);
        out.append(&mut second);
        assert!(first.is_empty() && second.is_empty());
        assert_eq!(out.len(), 4);
        assert_eq!(out.parts(), list.chunk_count());
        let seen: Vec<_> = out
            .iter()
            .map(|e| (e.key.to_vec(), format!("{:?}", e.value), e.expires_at))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    b"k1".to_vec(),
                    format!("{:?}", ValueRef::Str(b"one")),
                    Some(5)
                ),
                (b"k2".to_vec(), format!("{:?}", ValueRef::List(&list)), None),
                (
                    b"k3".to_vec(),
                    format!("{:?}", ValueRef::Str(b"three")),
                    Some(7)
                ),
                (Vec::new(), format!("{:?}", ValueRef::Str(b"")), None),
            ]
        );
        out.clear();
        assert!(out.is_empty() && out.byte_len() == 0 && out.parts() == 0);
    }
}
