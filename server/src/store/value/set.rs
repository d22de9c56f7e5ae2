//! Sets: distinct byte-string members, in hash-chosen segments.
//!
//! Stored as a segmented map without values (`store::value::segmented`): a write during a
//! snapshot copies one segment of about 128 members, and a snapshot clones one pointer per
//! segment. Membership is one hash and one probe of a small table.
//!
//! # Snapshot payload (type tag `0x03`)
//!
//! ```text
//! payload := varint(count) member*count       in no particular order
//! member  := varint(len) bytes
//! ```
//!
//! A member may appear only once; a payload that repeats one is rejected as corrupt.

use std::fmt;

use super::codec::{PayloadRead, PayloadWrite};
use super::segmented::SegMap;
use super::Shown;

/// A set value; see the module documentation.
#[derive(Clone, Default, PartialEq)]
pub struct Set {
    members: SegMap<Box<[u8]>, ()>,
}

impl Eq for Set {}

impl Set {
    /// The name OBJECT ENCODING reports for this set's representation.
    pub fn encoding(&self) -> &'static str {
        "hashtable"
    }

    /// An empty set.
    pub fn new() -> Self {
        Set::default()
    }

    /// Number of members (SCARD).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the set has no member.
    pub fn is_empty(&self) -> bool {
        self.members.len() == 0
    }

    /// Number of segments: what cloning the set copies (one pointer each).
    pub fn segment_count(&self) -> usize {
        self.members.segment_count()
    }

    /// True if `member` is in the set (SISMEMBER).
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.get(member).is_some()
    }

    /// Adds `member` (SADD); false if it was already there.
    pub fn insert(&mut self, member: impl Into<Box<[u8]>>) -> bool {
        self.members.insert(member.into(), ()).is_none()
    }

    /// Removes `member` (SREM); false if it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.members.remove(member).is_some()
    }

    /// Every member, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.members.iter().map(|(member, ())| &**member)
    }

    /// Segments not shared with a clone: those written since it was cloned.
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        self.members.unshared_parts()
    }
}

impl<M: Into<Box<[u8]>>> FromIterator<M> for Set {
    fn from_iter<I: IntoIterator<Item = M>>(members: I) -> Self {
        let mut set = Set::new();
        for member in members {
            set.insert(member);
        }
        set
    }
}

impl fmt::Debug for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Shown)).finish()
    }
}

/// Writes a set's payload.
pub fn encode<W: PayloadWrite>(set: &Set, out: &mut W) -> Result<(), W::Error> {
    out.put_count(set.len())?;
    for member in set.iter() {
        out.put_bytes(member)?;
    }
    Ok(())
}

/// Reads a set's payload; a repeated member is an error.
pub fn decode<R: PayloadRead>(src: &mut R) -> Result<Set, R::Error> {
    let count = src.read_count()?;
    let mut set = Set::new();
    for _ in 0..count {
        if !set.insert(src.read_bytes()?) {
            return Err(src.invalid("a set member appears twice"));
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::super::codec::testing::SliceReader;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn members_are_added_tested_and_removed() {
        let mut set = Set::new();
        assert!(set.insert(&b"a"[..]));
        assert!(!set.insert(&b"a"[..]));
        assert!(set.contains(b"a") && !set.contains(b"b"));
        assert!(set.remove(b"a"));
        assert!(!set.remove(b"a"));
        assert!(set.is_empty());
    }

    #[test]
    fn a_repeated_member_is_rejected() {
        let mut bytes = Vec::new();
        let Ok(()) = bytes.put_count(2);
        let Ok(()) = bytes.put_bytes(b"m");
        let Ok(()) = bytes.put_bytes(b"m");
        assert!(decode(&mut SliceReader(&bytes)).is_err());
    }

    proptest! {
        #[test]
        fn payload_round_trips(members in prop::collection::btree_set(
            prop::collection::vec(any::<u8>(), 0..12),
            0..600,
        )) {
            let set: Set = members.iter().map(Vec::as_slice).collect();
            let mut bytes = Vec::new();
            let Ok(()) = encode(&set, &mut bytes);
            let mut src = SliceReader(&bytes);
            let decoded = decode(&mut src).unwrap();
            prop_assert!(src.0.is_empty());
            let read: BTreeSet<Vec<u8>> = decoded.iter().map(<[u8]>::to_vec).collect();
            prop_assert_eq!(read, members);
            prop_assert_eq!(decoded, set);
        }
    }
}
