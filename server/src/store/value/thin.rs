//! Byte strings behind thin pointers: one allocation holds one or more length-prefixed byte
//! strings (`varint(len) bytes`, LEB128 lengths) back to back, and its owner is one 8-byte
//! pointer where a `Box<[u8]>` is 16 (and two boxes 32 plus a second allocation).
//!
//! - [`ThinBytes`]: one byte string (a large set's long members).
//! - [`ThinPair`]: two, a large hash's field and its value, so a field costs one allocation
//!   and an 8-byte slot in its table; it hashes, compares and borrows as its field alone,
//!   so the table is probed with the field's `&[u8]`.
//!
//! The only unsafe code of the value types, all of it in [`Parts`]: every read walks back
//! exactly the headers and bytes [`Parts::new`] wrote, and the allocation is never written
//! after construction.
#![allow(unsafe_code)]

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ptr::NonNull;

use super::Shown;

/// An owned allocation holding `N` length-prefixed byte strings back to back; see the
/// module documentation.
struct Parts<const N: usize>(NonNull<u8>);

// SAFETY: `Parts` owns its allocation exclusively and never mutates it after construction,
// as a `Box<[u8]>` would; sending it to another thread is as safe as for one.
unsafe impl<const N: usize> Send for Parts<N> {}
// SAFETY: as above: `&Parts` only reads.
unsafe impl<const N: usize> Sync for Parts<N> {}

/// Bytes of the LEB128 encoding of `len`.
fn header_size(len: usize) -> usize {
    let mut size = 1;
    let mut rest = len >> 7;
    while rest > 0 {
        size += 1;
        rest >>= 7;
    }
    size
}

/// The layout of an allocation of `size` bytes (at least 1: a header).
fn layout(size: usize) -> Layout {
    // A size that does not fit a layout (over isize::MAX) cannot come from slices that exist;
    // treat it as the allocation failure it would be.
    Layout::array::<u8>(size).unwrap_or_else(|_| handle_alloc_error(Layout::new::<u8>()))
}

impl<const N: usize> Parts<N> {
    /// One allocation holding copies of `parts`, in order.
    fn new(parts: [&[u8]; N]) -> Self {
        const { assert!(N > 0, "at least one part: the allocation is never empty") };
        let size = parts
            .iter()
            .try_fold(0usize, |size, part| {
                size.checked_add(header_size(part.len()))?
                    .checked_add(part.len())
            })
            .unwrap_or_else(|| handle_alloc_error(Layout::new::<u8>()));
        let layout = layout(size);
        // SAFETY: the layout's size is at least 1 (N > 0 parts, each with a header byte).
        let raw = unsafe { alloc(layout) };
        let Some(start) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        let mut at = 0;
        for part in parts {
            let header = header_size(part.len());
            let mut len = part.len();
            for index in 0..header {
                let mut byte = (len & 0x7F) as u8;
                len >>= 7;
                if index + 1 < header {
                    byte |= 0x80;
                }
                // SAFETY: `at < size`: the sizes of every part's header and bytes sum to
                // `size`, and this byte belongs to this part's header.
                unsafe { start.as_ptr().add(at).write(byte) };
                at += 1;
            }
            // SAFETY: the allocation has `part.len()` bytes for this part after its header
            // (counted in `size`), and a fresh allocation cannot overlap `part`.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), start.as_ptr().add(at), part.len());
            }
            at += part.len();
        }
        debug_assert_eq!(at, size);
        Parts(start)
    }

    /// The part that starts at byte `at` of the allocation (at its header), and the
    /// offset just past it. `at` must be where `new` wrote a part's header.
    #[inline]
    fn part_at(&self, mut at: usize) -> (&[u8], usize) {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            // SAFETY: `new` wrote a complete LEB128 header at `at` (callers only pass the
            // start of the allocation or the end of a previous part); this reads it back
            // byte by byte and stops at its last byte, inside the allocation.
            let byte = unsafe { self.0.as_ptr().add(at).read() };
            len |= usize::from(byte & 0x7F) << shift;
            shift += 7;
            at += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        // SAFETY: `new` copied exactly `len` bytes right after that header, in the same
        // allocation, which lives as long as `self` and is never written again.
        let bytes = unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(at), len) };
        (bytes, at + len)
    }

    /// The parts, in the order `new` was given them, and the allocation's size.
    #[inline]
    fn parts(&self) -> ([&[u8]; N], usize) {
        let mut at = 0;
        let parts = std::array::from_fn(|_| {
            let (part, next) = self.part_at(at);
            at = next;
            part
        });
        (parts, at)
    }

    /// The first part (without walking the others).
    #[inline]
    fn first(&self) -> &[u8] {
        self.part_at(0).0
    }
}

impl<const N: usize> Clone for Parts<N> {
    fn clone(&self) -> Self {
        Parts::new(self.parts().0)
    }
}

impl<const N: usize> Drop for Parts<N> {
    fn drop(&mut self) {
        let (_, size) = self.parts();
        // SAFETY: allocated by `new` with exactly this layout (its size is what walking
        // every part it wrote gives back), and not freed before: `Parts` owns it.
        unsafe { dealloc(self.0.as_ptr(), layout(size)) };
    }
}

/// An owned byte string behind one thin pointer; see the module documentation.
#[derive(Clone)]
pub(super) struct ThinBytes(Parts<1>);

impl ThinBytes {
    /// A copy of `bytes`.
    pub(super) fn new(bytes: &[u8]) -> Self {
        ThinBytes(Parts::new([bytes]))
    }

    /// The bytes.
    #[inline]
    pub(super) fn as_bytes(&self) -> &[u8] {
        self.0.first()
    }
}

/// A field and its value in one allocation behind one thin pointer, for a large hash's
/// table; see the module documentation. Hashes, compares and borrows as the field only (the
/// value rides along), so two pairs with the same field are equal.
#[derive(Clone)]
pub(super) struct ThinPair(Parts<2>);

impl ThinPair {
    /// A copy of `field` and `value`.
    pub(super) fn new(field: &[u8], value: &[u8]) -> Self {
        ThinPair(Parts::new([field, value]))
    }

    /// The field.
    #[inline]
    pub(super) fn field(&self) -> &[u8] {
        self.0.first()
    }

    /// The value.
    #[inline]
    pub(super) fn value(&self) -> &[u8] {
        self.0.parts().0[1]
    }

    /// The field and the value.
    #[inline]
    pub(super) fn pair(&self) -> (&[u8], &[u8]) {
        let ([field, value], _) = self.0.parts();
        (field, value)
    }
}

impl Borrow<[u8]> for ThinPair {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.field()
    }
}

impl PartialEq for ThinPair {
    /// Same field (the value is not compared, as `Borrow<[u8]>` requires).
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.field() == other.field()
    }
}

impl Eq for ThinPair {}

impl Hash for ThinPair {
    /// As the field's bytes hash, as `Borrow<[u8]>` requires.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.field().hash(state);
    }
}

impl fmt::Debug for ThinPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (field, value) = self.pair();
        write!(f, "{:?}: {:?}", Shown(field), Shown(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Lengths whose LEB128 headers are 1, 2 and 3 bytes, at and around each boundary.
    #[cfg(not(miri))]
    const LENGTHS: &[usize] = &[0, 1, 15, 127, 128, 300, 16_383, 16_384, 70_000];
    /// The same boundaries, without the longest value, which Miri copies too slowly.
    #[cfg(miri)]
    const LENGTHS: &[usize] = &[0, 1, 127, 128, 16_383, 16_384];

    fn bytes(len: usize, salt: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
    }

    #[test]
    fn bytes_round_trip_every_header_size() {
        for &len in LENGTHS {
            let raw = bytes(len, 0);
            let thin = ThinBytes::new(&raw);
            assert_eq!(thin.as_bytes(), &raw[..]);
            let copy = thin.clone();
            drop(thin);
            assert_eq!(copy.as_bytes(), &raw[..]);
        }
        assert_eq!(std::mem::size_of::<ThinBytes>(), 8);
        assert_eq!(std::mem::size_of::<Option<ThinBytes>>(), 8);
    }

    /// Every combination of header sizes for the field and the value: both read back, from
    /// the original and from a clone that outlives it (each frees its own allocation).
    #[test]
    fn pairs_round_trip_every_header_size() {
        for &field_len in LENGTHS {
            for &value_len in LENGTHS {
                let (field, value) = (bytes(field_len, 1), bytes(value_len, 2));
                let pair = ThinPair::new(&field, &value);
                assert_eq!(pair.field(), &field[..]);
                assert_eq!(pair.value(), &value[..]);
                assert_eq!(pair.pair(), (&field[..], &value[..]));
                assert_eq!(
                    pair.0.parts().1,
                    header_size(field_len) + field_len + header_size(value_len) + value_len
                );
                let copy = pair.clone();
                drop(pair);
                assert_eq!(copy.pair(), (&field[..], &value[..]));
            }
        }
        assert_eq!(std::mem::size_of::<ThinPair>(), 8);
    }

    #[test]
    fn a_pair_is_one_allocation() {
        let before = crate::memory::counting::allocations();
        let pair = ThinPair::new(b"member:00000001", b"1");
        let copy = pair.clone();
        assert_eq!(crate::memory::counting::allocations() - before, 2);
        drop((pair, copy));
    }

    /// Equality, hashing and borrowing look at the field alone, consistently, so a table
    /// of pairs is probed with a field's bytes.
    #[test]
    fn a_pair_is_keyed_by_its_field() {
        let a = ThinPair::new(b"field", b"one");
        let b = ThinPair::new(b"field", b"two");
        let c = ThinPair::new(b"other", b"one");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let state = foldhash::fast::RandomState::default();
        assert_eq!(state.hash_one(&a), state.hash_one(&b));
        assert_eq!(state.hash_one(&a), state.hash_one(&b"field"[..]));
        let mut set = std::collections::HashSet::new();
        assert!(set.insert(a));
        assert!(!set.insert(b));
        assert_eq!(
            set.get(&b"field"[..]).map(ThinPair::value),
            Some(&b"one"[..])
        );
        assert!(!set.contains(&b"other"[..]) && set.len() == 1);
    }

    #[test]
    fn headers_have_the_leb128_size() {
        for (len, size) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (usize::MAX, 10),
        ] {
            assert_eq!(header_size(len), size, "{len}");
        }
    }
}
