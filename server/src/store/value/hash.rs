//! Hashes: a map from field to value, both byte strings, in hash-chosen segments.
//!
//! Stored as a segmented map (`store::value::segmented`): a write during a snapshot copies
//! one segment of about 128 fields, and a snapshot clones one pointer per segment. Field
//! lookup is one hash and one probe of a small table. The segment directory is indexable,
//! which is what HSCAN's cursor will walk.
//!
//! # Snapshot payload (type tag `0x02`)
//!
//! ```text
//! payload := varint(count) pair*count         in no particular order
//! pair    := varint(len) field varint(len) value
//! ```
//!
//! A field may appear only once; a payload that repeats one is rejected as corrupt.

use std::fmt;

use super::codec::{PayloadRead, PayloadWrite};
use super::segmented::SegMap;
use super::Shown;

/// A hash value; see the module documentation.
#[derive(Clone, Default, PartialEq)]
pub struct Hash {
    fields: SegMap<Box<[u8]>, Box<[u8]>>,
}

impl Eq for Hash {}

impl Hash {
    /// The name OBJECT ENCODING reports for this hash's representation.
    pub fn encoding(&self) -> &'static str {
        "hashtable"
    }

    /// An empty hash.
    pub fn new() -> Self {
        Hash::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the hash has no field.
    pub fn is_empty(&self) -> bool {
        self.fields.len() == 0
    }

    /// Number of segments: what cloning the hash copies (one pointer each).
    pub fn segment_count(&self) -> usize {
        self.fields.segment_count()
    }

    /// The value of `field` (HGET).
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.fields.get(field).map(|value| &**value)
    }

    /// True if `field` exists (HEXISTS).
    pub fn contains(&self, field: &[u8]) -> bool {
        self.fields.get(field).is_some()
    }

    /// Sets `field` to `value` (HSET); returns the value it replaced, if any.
    pub fn insert(
        &mut self,
        field: impl Into<Box<[u8]>>,
        value: impl Into<Box<[u8]>>,
    ) -> Option<Box<[u8]>> {
        self.fields.insert(field.into(), value.into())
    }

    /// Sets `field` to `value` (HSET, HINCRBY); returns true if the field is new. Allocates
    /// only what it stores: an existing field keeps its name's allocation, and a value of
    /// the same length is overwritten in place.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Some(stored) = self.fields.get_mut(field) {
            if stored.len() == value.len() {
                stored.copy_from_slice(value);
            } else {
                *stored = value.into();
            }
            return false;
        }
        self.fields.insert(field.into(), value.into());
        true
    }

    /// Removes `field` (HDEL); returns its value.
    pub fn remove(&mut self, field: &[u8]) -> Option<Box<[u8]>> {
        self.fields.remove(field).map(|(_, value)| value)
    }

    /// Every field and its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .map(|(field, value)| (&**field, &**value))
    }

    /// One step of HSCAN: visits the fields of one segment and returns the next cursor (0
    /// when done). Every field present for the whole walk is visited at least once, however
    /// the hash grows or shrinks between steps (see `SegMap::scan_segment`); a hash of one
    /// segment (up to about 128 fields) is visited whole in one step.
    pub fn scan<'a>(&'a self, cursor: u64, mut visit: impl FnMut(&'a [u8], &'a [u8])) -> u64 {
        self.fields
            .scan_segment(cursor, |field, value| visit(field, value))
    }

    /// Random access to the fields by position (0 to `len() - 1`, in [`Hash::iter`]'s
    /// order), for HRANDFIELD. `picks` is how many positions the caller will ask for: when
    /// that is more than about one per segment's worth of fields, the fields are listed once
    /// (O(len) time and memory) and each pick is O(1); otherwise each pick finds its segment
    /// by binary search and walks it (O(log segments + segment size)).
    pub fn sampler(&self, picks: usize) -> Sampler<'_> {
        if picks.saturating_mul(256) > self.len() {
            Sampler {
                hash: self,
                listed: self.iter().collect(),
                starts: Vec::new(),
            }
        } else {
            let starts = self
                .fields
                .segment_lens()
                .scan(0, |start, len| {
                    let this = *start;
                    *start += len;
                    Some(this)
                })
                .collect();
            Sampler {
                hash: self,
                listed: Vec::new(),
                starts,
            }
        }
    }

    /// Segments not shared with a clone: those written since it was cloned.
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        self.fields.unshared_parts()
    }
}

/// Random access to a hash's fields by position; see [`Hash::sampler`].
pub struct Sampler<'a> {
    hash: &'a Hash,
    /// Every field, when the caller asks for many.
    listed: Vec<(&'a [u8], &'a [u8])>,
    /// Otherwise, the position of each segment's first field.
    starts: Vec<usize>,
}

impl<'a> Sampler<'a> {
    /// The field and value at `position`; `None` past the end.
    pub fn get(&self, position: usize) -> Option<(&'a [u8], &'a [u8])> {
        if position >= self.hash.len() {
            return None;
        }
        if !self.listed.is_empty() {
            return self.listed.get(position).copied();
        }
        let segment = self.starts.partition_point(|&start| start <= position);
        let segment = segment.checked_sub(1)?;
        let start = self.starts.get(segment)?;
        let (field, value) = self.hash.fields.segment_nth(segment, position - start)?;
        Some((&**field, &**value))
    }
}

impl<F: Into<Box<[u8]>>, V: Into<Box<[u8]>>> FromIterator<(F, V)> for Hash {
    fn from_iter<I: IntoIterator<Item = (F, V)>>(pairs: I) -> Self {
        let mut hash = Hash::new();
        for (field, value) in pairs {
            hash.insert(field, value);
        }
        hash
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (Shown(k), Shown(v))))
            .finish()
    }
}

/// Writes a hash's payload.
pub fn encode<W: PayloadWrite>(hash: &Hash, out: &mut W) -> Result<(), W::Error> {
    out.put_count(hash.len())?;
    for (field, value) in hash.iter() {
        out.put_bytes(field)?;
        out.put_bytes(value)?;
    }
    Ok(())
}

/// Reads a hash's payload; a repeated field is an error.
pub fn decode<R: PayloadRead>(src: &mut R) -> Result<Hash, R::Error> {
    let count = src.read_count()?;
    let mut hash = Hash::new();
    for _ in 0..count {
        let field = src.read_bytes()?;
        let value = src.read_bytes()?;
        if hash.insert(field, value).is_some() {
            return Err(src.invalid("a hash field appears twice"));
        }
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::super::codec::testing::SliceReader;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn fields_are_set_read_and_removed() {
        let mut hash = Hash::new();
        assert_eq!(hash.insert(&b"f"[..], &b"1"[..]), None);
        assert_eq!(
            hash.insert(&b"f"[..], &b"2"[..]).as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(hash.get(b"f"), Some(&b"2"[..]));
        assert!(hash.contains(b"f") && !hash.contains(b"g"));
        assert_eq!(hash.len(), 1);
        assert_eq!(hash.remove(b"f").as_deref(), Some(&b"2"[..]));
        assert!(hash.is_empty());
        assert_eq!(hash.remove(b"f"), None);
    }

    #[test]
    fn a_scan_visits_every_field_once_without_changes() {
        let hash: Hash = (0..1000)
            .map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes()))
            .collect();
        let mut seen = BTreeMap::new();
        let mut cursor = 0;
        loop {
            cursor = hash.scan(cursor, |field, value| {
                assert!(seen.insert(field.to_vec(), value.to_vec()).is_none());
            });
            if cursor == 0 {
                break;
            }
        }
        let all: BTreeMap<Vec<u8>, Vec<u8>> =
            hash.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn a_sampler_reaches_every_position_in_iteration_order() {
        let hash: Hash = (0..5000)
            .map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes()))
            .collect();
        let in_order: Vec<_> = hash.iter().collect();
        // Both ways of locating a position: listing everything, and per segment.
        for picks in [1, 5000] {
            let sampler = hash.sampler(picks);
            for (position, pair) in in_order.iter().enumerate() {
                assert_eq!(sampler.get(position), Some(*pair), "position {position}");
            }
            assert_eq!(sampler.get(5000), None);
        }
        assert_eq!(Hash::new().sampler(1).get(0), None);
    }

    #[test]
    fn set_overwrites_in_place_or_replaces() {
        let mut hash = Hash::new();
        assert!(hash.set(b"f", b"12"));
        assert!(!hash.set(b"f", b"34"));
        assert_eq!(hash.get(b"f"), Some(&b"34"[..]));
        assert!(!hash.set(b"f", b"longer"));
        assert_eq!(hash.get(b"f"), Some(&b"longer"[..]));
        assert!(!hash.set(b"f", b""));
        assert_eq!(hash.get(b"f"), Some(&b""[..]));
        assert_eq!(hash.len(), 1);
        // A clone (a snapshot) keeps its value when the original is overwritten in place.
        let snapshot = hash.clone();
        assert!(!hash.set(b"f", b""));
        assert!(!hash.set(b"f", b"x"));
        assert_eq!(snapshot.get(b"f"), Some(&b""[..]));
        let before = hash.clone();
        assert!(!hash.set(b"f", b"y"));
        assert_eq!(before.get(b"f"), Some(&b"x"[..]));
        assert_eq!(hash.get(b"f"), Some(&b"y"[..]));
    }

    #[test]
    fn a_repeated_field_is_rejected() {
        let mut bytes = Vec::new();
        let Ok(()) = bytes.put_count(2);
        for _ in 0..2 {
            let Ok(()) = bytes.put_bytes(b"f");
            let Ok(()) = bytes.put_bytes(b"v");
        }
        assert!(decode(&mut SliceReader(&bytes)).is_err());
    }

    proptest! {
        #[test]
        fn payload_round_trips(pairs in prop::collection::btree_map(
            prop::collection::vec(any::<u8>(), 0..12),
            prop::collection::vec(any::<u8>(), 0..12),
            0..600,
        )) {
            let hash: Hash = pairs.iter().map(|(f, v)| (f.as_slice(), v.as_slice())).collect();
            let mut bytes = Vec::new();
            let Ok(()) = encode(&hash, &mut bytes);
            let mut src = SliceReader(&bytes);
            let decoded = decode(&mut src).unwrap();
            prop_assert!(src.0.is_empty());
            let read: BTreeMap<Vec<u8>, Vec<u8>> =
                decoded.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(read, pairs);
            prop_assert_eq!(decoded, hash);
        }
    }
}
