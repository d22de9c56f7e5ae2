//! The compact form of a small hash: every field and value in one exact-size byte buffer.
//!
//! ```text
//! buffer := pair*                  in insertion order
//! pair   := entry(field) entry(value)
//! entry  := varint(len) bytes      unsigned LEB128: one byte below 128
//! ```
//!
//! One allocation holds the whole hash, with one or two bytes of overhead per string where a
//! table pays a node, two boxes and their allocator rounding per field. Lookups are a linear
//! scan (lengths are compared before bytes), which is as fast as hashing for the few dozen
//! fields a compact hash holds. A field set again keeps its place; a new field goes at the
//! end, so the order of HGETALL is the order fields were first set, as Redis's listpack.
//!
//! The buffer is exact-size: a write that changes its length reallocates it (in place when
//! the allocator's size class does not change), as a listpack does. Nothing here checks the
//! encoding thresholds: the caller (`Hash`) converts to a table before a write would cross
//! them.

/// A hash in its compact form; see the module documentation.
#[derive(Clone, Default)]
pub(super) struct Packed {
    bytes: Box<[u8]>,
}

/// Where a field's pair lies in the buffer.
struct Found {
    /// Start of the field's entry.
    pair: usize,
    /// Start of the value's entry (its length prefix).
    value: usize,
    /// End of the value's entry.
    end: usize,
}

/// Number of bytes of `len`'s length prefix.
fn prefix_len(len: usize) -> usize {
    let mut len = len as u64 >> 7;
    let mut bytes = 1;
    while len != 0 {
        len >>= 7;
        bytes += 1;
    }
    bytes
}

/// Appends `len`'s length prefix.
fn put_prefix(out: &mut Vec<u8>, len: usize) {
    let mut len = len as u64;
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

/// Writes `len`'s length prefix into `out`, which is exactly [`prefix_len`] bytes long.
fn write_prefix(out: &mut [u8], len: usize) {
    let mut len = len as u64;
    for byte in out.iter_mut() {
        *byte = (len as u8 & 0x7F) | if len >= 0x80 { 0x80 } else { 0 };
        len >>= 7;
    }
}

/// The entry starting at `at`: its bytes and where the next entry starts. `None` at the end
/// of the buffer (or on a malformed prefix, which this module never writes).
#[inline]
fn entry_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let first = *bytes.get(at)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), at + 1)
    } else {
        let mut len = 0u64;
        let mut pos = at;
        let mut shift = 0;
        loop {
            let byte = *bytes.get(pos)?;
            pos += 1;
            len |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        (usize::try_from(len).ok()?, pos)
    };
    let end = start.checked_add(len)?;
    Some((bytes.get(start..end)?, end))
}

impl Packed {
    /// Bytes of the buffer (what the hash allocates).
    pub(super) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// True when there is no field.
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of fields (a scan of the buffer).
    pub(super) fn len(&self) -> usize {
        self.iter().count()
    }

    /// True if the hash holds more than `limit` fields. Each pair takes at least two bytes,
    /// so a buffer of up to `2 * limit` bytes answers without a scan.
    pub(super) fn len_exceeds(&self, limit: usize) -> bool {
        self.bytes.len() / 2 > limit && self.iter().nth(limit).is_some()
    }

    /// Every field and its value, in insertion order.
    pub(super) fn iter(&self) -> Pairs<'_> {
        Pairs {
            bytes: &self.bytes,
            at: 0,
        }
    }

    /// Finds `field`'s pair; also returns how many pairs precede where the scan stopped (all
    /// of them when the field is absent).
    fn find(&self, field: &[u8]) -> (Option<Found>, usize) {
        let bytes = &self.bytes[..];
        let mut at = 0;
        let mut pairs = 0;
        while let Some((name, value_at)) = entry_at(bytes, at) {
            let Some((_, end)) = entry_at(bytes, value_at) else {
                break;
            };
            // Names often share a prefix (`field:1`, `field:2`): the last byte rejects most
            // mismatches of equal length without a full comparison.
            if name.len() == field.len() && name.last() == field.last() && name == field {
                let found = Found {
                    pair: at,
                    value: value_at,
                    end,
                };
                return (Some(found), pairs);
            }
            pairs += 1;
            at = end;
        }
        (None, pairs)
    }

    /// The value of `field`.
    pub(super) fn get(&self, field: &[u8]) -> Option<&[u8]> {
        let (found, _) = self.find(field);
        let found = found?;
        entry_at(&self.bytes, found.value).map(|(value, _)| value)
    }

    /// Sets `field` to `value`: in place if the field exists (it keeps its position), at the
    /// end otherwise. Returns the number of fields after the insertion, or `None` if the
    /// field existed.
    pub(super) fn set(&mut self, field: &[u8], value: &[u8]) -> Option<usize> {
        let (found, pairs) = self.find(field);
        let entry_len = prefix_len(value.len()) + value.len();
        match found {
            Some(found) if found.end - found.value == entry_len => {
                // Same length, so the same prefix: overwrite the bytes.
                self.bytes[found.end - value.len()..found.end].copy_from_slice(value);
                None
            }
            Some(found) => {
                let old_len = self.bytes.len();
                let new_len = old_len - (found.end - found.value) + entry_len;
                let mut bytes = std::mem::take(&mut self.bytes).into_vec();
                let tail = found.end..old_len;
                let new_end = found.value + entry_len;
                if new_len > old_len {
                    bytes.reserve_exact(new_len - old_len);
                    bytes.resize(new_len, 0);
                    bytes.copy_within(tail, new_end);
                } else {
                    bytes.copy_within(tail, new_end);
                    bytes.truncate(new_len);
                }
                let prefix = found.value + entry_len - value.len();
                write_prefix(&mut bytes[found.value..prefix], value.len());
                bytes[prefix..new_end].copy_from_slice(value);
                self.bytes = bytes.into_boxed_slice();
                None
            }
            None => {
                self.push(field, value);
                Some(pairs + 1)
            }
        }
    }

    /// Appends a pair without looking for the field (the caller knows it is absent).
    pub(super) fn push(&mut self, field: &[u8], value: &[u8]) {
        let added = prefix_len(field.len()) + field.len() + prefix_len(value.len()) + value.len();
        let mut bytes = std::mem::take(&mut self.bytes).into_vec();
        bytes.reserve_exact(added);
        put_prefix(&mut bytes, field.len());
        bytes.extend_from_slice(field);
        put_prefix(&mut bytes, value.len());
        bytes.extend_from_slice(value);
        self.bytes = bytes.into_boxed_slice();
    }

    /// True if `field` exists.
    pub(super) fn contains(&self, field: &[u8]) -> bool {
        self.find(field).0.is_some()
    }

    /// Removes `field`; true if it existed.
    pub(super) fn remove(&mut self, field: &[u8]) -> bool {
        let Some(found) = self.find(field).0 else {
            return false;
        };
        let mut bytes = std::mem::take(&mut self.bytes).into_vec();
        bytes.drain(found.pair..found.end);
        self.bytes = bytes.into_boxed_slice();
        true
    }
}

/// The pairs of a [`Packed`] hash, in order.
#[derive(Clone)]
pub(super) struct Pairs<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (field, value_at) = entry_at(self.bytes, self.at)?;
        let (value, end) = entry_at(self.bytes, value_at)?;
        self.at = end;
        Some((field, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against a Vec of pairs in insertion order, with strings long enough for one-,
        /// two- and three-byte length prefixes, so that in-place overwrites and resizes of
        /// every kind happen.
        #[test]
        fn behaves_as_an_ordered_list_of_pairs(ops in prop::collection::vec(
            (0u8..12, prop_oneof![Just(0usize), 1usize..130, 16_380usize..16_390], any::<bool>()),
            0..120,
        )) {
            let mut packed = Packed::default();
            let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for (i, (f, len, set)) in ops.into_iter().enumerate() {
                let field = vec![b'f'; usize::from(f)];
                if set {
                    let value = vec![i as u8; len];
                    let new = match model.iter_mut().find(|(name, _)| *name == field) {
                        Some(pair) => {
                            pair.1 = value.clone();
                            false
                        }
                        None => {
                            model.push((field.clone(), value.clone()));
                            true
                        }
                    };
                    prop_assert_eq!(packed.set(&field, &value), new.then_some(model.len()));
                } else {
                    let existed = model.iter().any(|(name, _)| *name == field);
                    model.retain(|(name, _)| *name != field);
                    prop_assert_eq!(packed.remove(&field), existed);
                }
                let listed: Vec<(Vec<u8>, Vec<u8>)> =
                    packed.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                prop_assert_eq!(&listed, &model);
                let size: usize = model
                    .iter()
                    .map(|(f, v)| prefix_len(f.len()) + f.len() + prefix_len(v.len()) + v.len())
                    .sum();
                prop_assert_eq!(packed.byte_len(), size, "the buffer is exact");
            }
        }
    }

    #[test]
    fn long_strings_take_longer_prefixes() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 70_000] {
            let mut out = Vec::new();
            put_prefix(&mut out, len);
            assert_eq!(out.len(), prefix_len(len), "{len}");
            out.resize(out.len() + len, b'x');
            let mut written = vec![0; prefix_len(len)];
            write_prefix(&mut written, len);
            assert_eq!(written, out[..written.len()]);
            let (bytes, end) = entry_at(&out, 0).expect("an entry");
            assert_eq!((bytes.len(), end), (len, out.len()));
        }
        // A truncated or endless prefix reads as the end, never as a panic.
        assert!(entry_at(&[0x80], 0).is_none());
        assert!(entry_at(&[0xFF; 12], 0).is_none());
        assert!(entry_at(&[5, b'a'], 0).is_none());
    }

    #[test]
    fn updates_keep_positions_and_resize_the_buffer_exactly() {
        let mut packed = Packed::default();
        assert_eq!(packed.set(b"a", b"1"), Some(1));
        assert_eq!(packed.set(b"b", b"2"), Some(2));
        assert_eq!(packed.set(b"c", b"3"), Some(3));
        assert_eq!(packed.byte_len(), 12);
        let long = vec![b'x'; 200];
        assert_eq!(packed.set(b"b", &long), None);
        assert_eq!(packed.byte_len(), 12 - 2 + 2 + 200);
        assert_eq!(packed.get(b"b"), Some(&long[..]));
        assert_eq!(packed.set(b"b", b""), None);
        assert_eq!(packed.byte_len(), 11);
        let order: Vec<_> = packed.iter().map(|(f, _)| f.to_vec()).collect();
        assert_eq!(order, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert!(packed.remove(b"a"));
        assert!(!packed.remove(b"a"));
        assert_eq!(packed.set(b"a", b"9"), Some(3));
        let order: Vec<_> = packed
            .iter()
            .map(|(f, v)| (f.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(
            order,
            [
                (b"b".to_vec(), b"".to_vec()),
                (b"c".to_vec(), b"3".to_vec()),
                (b"a".to_vec(), b"9".to_vec())
            ]
        );
        assert_eq!(packed.len(), 3);
        assert!(packed.len_exceeds(2) && !packed.len_exceeds(3));
    }
}
