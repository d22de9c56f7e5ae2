//! A hash map kept in segments behind `Arc`s: the storage of hashes, sets and the
//! member-to-score side of sorted sets.
//!
//! Members are spread over segments (each a small `HashMap`) by bits of their hash, and the
//! segments grow by linear hashing: when the map holds more than [`SEGMENT`] entries per
//! segment on average, one segment (the next in a round-robin order) is split in two by one
//! more hash bit; when it holds fewer than a quarter of that, the last segment is merged back
//! into its sibling. So no insertion or removal ever moves more than about two segments'
//! worth of entries, however large the map, and there is no whole-map rehash to stall on.
//!
//! Every segment is behind its own `Arc`: cloning the map (what a snapshot does under the
//! shard lock) copies one pointer per segment, and a write after that copies only the segment
//! it changes (`Arc::make_mut`). A lookup never copies; a write that finds nothing to change
//! (removing an absent member) does not copy either.
//!
//! One per-map random hash seed (foldhash, as the keyspace uses) both picks the segment and
//! hashes inside it, so adversarial members cannot be precomputed to collide. The segment is
//! chosen from middle bits of the hash ([`SEGMENT_SHIFT`] up), which the segment's own table
//! does not use: it indexes buckets by the low bits and tags them with the top seven.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use foldhash::fast::RandomState;

/// Average entries per segment above which the map splits one: what a write copies, about,
/// when a snapshot shares the segment; and a snapshot clones one pointer per this many
/// entries.
pub const SEGMENT: usize = 128;
/// Average entries per segment below which the map merges one.
const MERGE_BELOW: usize = SEGMENT / 4;
/// Lowest hash bit used to choose a segment: the bits below index the segment's own buckets
/// (a segment never has 2^24 of them), and the top seven are its tags.
const SEGMENT_SHIFT: u32 = 24;
/// Most `level`s: 2^40 segments is far beyond any map that fits in memory.
const MAX_LEVEL: u32 = 40;

/// One segment.
type Segment<K, V> = HashMap<K, V, RandomState>;

/// A segmented hash map from byte-string keys to `V`; see the module documentation.
#[derive(Clone)]
pub struct SegMap<K, V> {
    hasher: RandomState,
    /// `2^level + split` segments once the first entry arrives; none before.
    segments: Vec<Arc<Segment<K, V>>>,
    /// Segments below `split` (and those from `2^level` on) are addressed by `level + 1`
    /// hash bits, the others by `level`.
    level: u32,
    /// The next segment to split.
    split: usize,
    len: usize,
}

impl<K, V> Default for SegMap<K, V> {
    fn default() -> Self {
        SegMap {
            hasher: RandomState::default(),
            segments: Vec::new(),
            level: 0,
            split: 0,
            len: 0,
        }
    }
}

impl<K, V> SegMap<K, V>
where
    K: Borrow<[u8]> + Hash + Eq + Clone,
    V: Clone,
{
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of segments: what cloning the map copies (one pointer each).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn hash_of(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The segment a hash belongs to (linear hashing's address function).
    fn segment_of(&self, hash: u64) -> usize {
        self.segment_of_bits(hash >> SEGMENT_SHIFT)
    }

    /// The segment of the entries whose segment-choosing hash bits (the hash shifted right by
    /// [`SEGMENT_SHIFT`]) are `bits`.
    fn segment_of_bits(&self, bits: u64) -> usize {
        let low = bits & ((1u64 << self.level) - 1);
        if (low as usize) < self.split {
            (bits & ((1u64 << (self.level + 1)) - 1)) as usize
        } else {
            low as usize
        }
    }

    fn segment(&self, key: &[u8]) -> Option<&Segment<K, V>> {
        let index = self.segment_of(self.hash_of(key));
        self.segments.get(index).map(|segment| &**segment)
    }

    /// The value stored for `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.segment(key)?.get(key)
    }

    /// The stored key equal to `key`, and its value.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&K, &V)> {
        self.segment(key)?.get_key_value(key)
    }

    /// The value stored for `key`, mutably; copies the key's segment if a clone shares it,
    /// but only when the key is there.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let index = self.segment_of(self.hash_of(key));
        let segment = self.segments.get_mut(index)?;
        if !segment.contains_key(key) {
            return None;
        }
        Arc::make_mut(segment).get_mut(key)
    }

    /// Stores `value` under `key`; returns the value it replaced, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.segments.is_empty() {
            self.segments
                .push(Arc::new(Segment::with_hasher(self.hasher)));
        }
        let index = self.segment_of(self.hash_of(key.borrow()));
        let old = Arc::make_mut(&mut self.segments[index]).insert(key, value);
        if old.is_none() {
            self.len += 1;
            if self.len > SEGMENT * self.segments.len() && self.level < MAX_LEVEL {
                self.split_one();
            }
        }
        old
    }

    /// Puts `key` in place of the stored key equal to it, keeping its value, and returns
    /// the key it replaced; gives `key` back as `Err` (and stores nothing) if no key equals
    /// it. For keys that carry more than what they compare by (a hash's field with its
    /// value); copies the key's segment if a clone shares it, but only when the key is
    /// there, and never splits or merges.
    pub fn replace_key(&mut self, key: K) -> Result<K, K> {
        let index = self.segment_of(self.hash_of(key.borrow()));
        let Some(segment) = self.segments.get_mut(index) else {
            return Err(key);
        };
        if !segment.contains_key(key.borrow()) {
            return Err(key);
        }
        let segment = Arc::make_mut(segment);
        let Some((old, value)) = segment.remove_entry(key.borrow()) else {
            return Err(key);
        };
        segment.insert(key, value);
        Ok(old)
    }

    /// Removes `key`; returns the stored key and its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<(K, V)> {
        let index = self.segment_of(self.hash_of(key));
        let segment = self.segments.get_mut(index)?;
        if !segment.contains_key(key) {
            return None;
        }
        let removed = Arc::make_mut(segment).remove_entry(key)?;
        self.len -= 1;
        if self.len == 0 {
            *self = SegMap {
                hasher: self.hasher,
                ..SegMap::default()
            };
        } else if self.segments.len() > 1 && self.len < MERGE_BELOW * self.segments.len() {
            self.merge_one();
        }
        Some(removed)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.segments.iter().flat_map(|segment| segment.iter())
    }

    /// One step of a scan: visits every entry of the segment that cursor `cursor` addresses
    /// and returns the next cursor (0 when the walk is complete; start with 0).
    ///
    /// The cursor holds segment-choosing hash bits, incremented in reverse bit order at the
    /// depth (number of bits) of the segment just visited, as Redis's `dictScan` does for a
    /// table of that size. A segment of depth `d` holds exactly the entries whose low `d`
    /// bits equal its index, so a step visits the whole subtree of hash patterns below the
    /// cursor's low `d` bits, and the patterns walked so far are always those reverse-ordered
    /// before the cursor, whatever splits and merges happen between steps. So every entry
    /// present for the whole walk is visited at least once (an entry may be visited twice
    /// after a merge).
    pub fn scan_segment<'a>(&'a self, cursor: u64, mut visit: impl FnMut(&'a K, &'a V)) -> u64 {
        if self.segments.is_empty() {
            return 0;
        }
        let index = self.segment_of_bits(cursor);
        let Some(segment) = self.segments.get(index) else {
            return 0;
        };
        for (key, value) in segment.iter() {
            visit(key, value);
        }
        let split = index < self.split || index >= 1usize << self.level;
        let depth = self.level + u32::from(split);
        let mask = (1u64 << depth) - 1;
        (cursor | !mask)
            .reverse_bits()
            .wrapping_add(1)
            .reverse_bits()
    }

    /// The number of entries of each segment, in segment order (what `iter` walks).
    pub fn segment_lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.segments.iter().map(|segment| segment.len())
    }

    /// The `n`th entry of segment `segment` in its iteration order (O(segment size)).
    pub fn segment_nth(&self, segment: usize, n: usize) -> Option<(&K, &V)> {
        self.segments.get(segment)?.iter().nth(n)
    }

    /// Takes segment `index` out for rebuilding: moved if this map owns it alone, else
    /// cloned (a snapshot keeps the original).
    fn take_segment(&mut self, index: usize) -> Segment<K, V> {
        let empty = Arc::new(Segment::with_hasher(self.hasher));
        let taken = std::mem::replace(&mut self.segments[index], empty);
        Arc::try_unwrap(taken).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Splits segment `split` by hash bit `level`: its entries with the bit set move to a new
    /// last segment. Touches one segment's entries.
    fn split_one(&mut self) {
        let source = self.split;
        let old = self.take_segment(source);
        let mut stay = Segment::with_capacity_and_hasher(old.len() / 2 + 1, self.hasher);
        let mut moved = Segment::with_capacity_and_hasher(old.len() / 2 + 1, self.hasher);
        for (key, value) in old {
            let bits = self.hash_of(key.borrow()) >> SEGMENT_SHIFT;
            if (bits >> self.level) & 1 == 1 {
                moved.insert(key, value);
            } else {
                stay.insert(key, value);
            }
        }
        self.segments[source] = Arc::new(stay);
        self.segments.push(Arc::new(moved));
        self.split += 1;
        if self.split == 1 << self.level {
            self.level += 1;
            self.split = 0;
        }
    }

    /// Undoes the last split: merges the last segment back into its sibling.
    fn merge_one(&mut self) {
        if self.split == 0 {
            self.level -= 1;
            self.split = 1 << self.level;
        }
        self.split -= 1;
        let Some(last) = self.segments.pop() else {
            return;
        };
        let last = Arc::try_unwrap(last).unwrap_or_else(|shared| (*shared).clone());
        let into = Arc::make_mut(&mut self.segments[self.split]);
        into.reserve(last.len());
        into.extend(last);
    }

    /// Segments this map does not share with a clone: those written since it was cloned.
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| Arc::strong_count(s) == 1)
            .count()
    }

    /// The segments, for tests that check what a clone shares.
    #[cfg(test)]
    pub(super) fn segments(&self) -> &[Arc<Segment<K, V>>] {
        &self.segments
    }
}

impl<K, V> PartialEq for SegMap<K, V>
where
    K: Borrow<[u8]> + Hash + Eq + Clone,
    V: Clone + PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .iter()
                .all(|(key, value)| other.get(key.borrow()) == Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn member(i: usize) -> Box<[u8]> {
        format!("member:{i}").into_bytes().into()
    }

    /// Checks the linear-hashing invariants: segment count, every entry in the segment its
    /// hash addresses, the count.
    fn assert_consistent<V: Clone>(map: &SegMap<Box<[u8]>, V>) {
        if map.len == 0 {
            assert!(map.segments.is_empty());
            return;
        }
        assert_eq!(map.segments.len(), (1 << map.level) + map.split);
        let mut total = 0;
        for (index, segment) in map.segments.iter().enumerate() {
            for key in segment.keys() {
                assert_eq!(map.segment_of(map.hash_of(key)), index);
            }
            total += segment.len();
        }
        assert_eq!(total, map.len);
    }

    #[test]
    fn grows_and_shrinks_one_segment_at_a_time() {
        let mut map = SegMap::default();
        for i in 0..50_000 {
            let segments = map.segment_count();
            assert_eq!(map.insert(member(i), i), None);
            assert!(map.segment_count() <= segments.max(1) + 1);
        }
        assert_consistent(&map);
        assert!(map.segment_count() >= 50_000 / SEGMENT);
        assert_eq!(map.insert(member(7), 70), Some(7));
        for i in 0..50_000 {
            assert_eq!(map.get(&member(i)), Some(&if i == 7 { 70 } else { i }));
        }
        assert_eq!(map.get(b"absent"), None);
        for i in 0..49_990 {
            let segments = map.segment_count();
            assert!(map.remove(&member(i)).is_some());
            assert!(map.segment_count() + 1 >= segments);
        }
        assert_consistent(&map);
        assert_eq!(map.segment_count(), 1);
        assert_eq!(map.remove(&member(0)), None);
        for i in 49_990..50_000 {
            assert!(map.remove(&member(i)).is_some());
        }
        assert_eq!(map.len(), 0);
        assert_eq!(map.segment_count(), 0);
    }

    /// A clone shares every segment; one insert, update or removal afterwards copies only
    /// the segment it changes, and the clone keeps the old contents. Looking up or removing
    /// an absent member copies nothing.
    #[test]
    fn a_write_after_a_clone_copies_one_segment() {
        let mut map: SegMap<Box<[u8]>, usize> = SegMap::default();
        for i in 0..100_000 {
            map.insert(member(i), i);
        }
        let shared_with = |map: &SegMap<Box<[u8]>, usize>, other: &SegMap<Box<[u8]>, usize>| {
            map.segments()
                .iter()
                .zip(other.segments())
                .filter(|(a, b)| Arc::ptr_eq(a, b))
                .count()
        };
        let segments = map.segment_count();
        let snapshot = map.clone();
        assert_eq!(shared_with(&map, &snapshot), segments);
        assert_eq!(map.remove(b"absent"), None);
        assert!(map.get_mut(b"absent").is_none());
        assert_eq!(shared_with(&map, &snapshot), segments);
        *map.get_mut(&member(5)).unwrap() = 0;
        assert_eq!(shared_with(&map, &snapshot), segments - 1);
        map.remove(&member(5));
        assert_eq!(shared_with(&map, &snapshot), segments - 1);
        assert_eq!(snapshot.get(&member(5)), Some(&5));
        assert_eq!(snapshot.len(), 100_000);
    }

    /// A key that compares by its first byte only, carrying the rest.
    #[derive(Clone, Debug)]
    struct Tagged(Box<[u8]>);

    impl Borrow<[u8]> for Tagged {
        fn borrow(&self) -> &[u8] {
            &self.0[..1]
        }
    }

    impl PartialEq for Tagged {
        fn eq(&self, other: &Self) -> bool {
            self.0[..1] == other.0[..1]
        }
    }

    impl Eq for Tagged {}

    impl Hash for Tagged {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.0[..1].hash(state);
        }
    }

    /// `replace_key` swaps the stored key of an equal one and keeps the value; an absent key
    /// comes back untouched, copying nothing a clone shares; a present one copies its segment
    /// only.
    #[test]
    fn replace_key_swaps_the_stored_key() {
        let mut map: SegMap<Tagged, usize> = SegMap::default();
        let key = |first: u8, rest: &[u8]| Tagged([&[first][..], rest].concat().into());
        assert!(map.replace_key(key(0, b"x")).is_err());
        for first in 0..=255u8 {
            map.insert(key(first, b"old"), first.into());
        }
        let segments = map.segment_count();
        assert!(segments > 1);
        let snapshot = map.clone();
        let absent = SegMap::<Tagged, usize>::default().replace_key(key(7, b"new"));
        assert_eq!(absent.map_err(|k| k.0), Err(key(7, b"new").0));
        let old = map.replace_key(key(7, b"new")).map(|k| k.0);
        assert_eq!(old, Ok(key(7, b"old").0));
        assert_eq!(
            map.get_key_value(&[7]).map(|(k, v)| (&*k.0, *v)),
            Some((&b"\x07new"[..], 7))
        );
        assert_eq!(map.len(), 256);
        assert_eq!(map.segment_count(), segments);
        assert_eq!(map.unshared_parts(), 1);
        assert_eq!(
            snapshot.get_key_value(&[7]).map(|(k, _)| &*k.0),
            Some(&b"\x07old"[..])
        );
        let mut other = map.clone();
        other.remove(&[9]);
        let before = other.unshared_parts();
        assert!(other.replace_key(key(9, b"gone")).is_err());
        assert_eq!(
            other.unshared_parts(),
            before,
            "an absent key copies nothing"
        );
    }

    /// Scans `map` to the end, calling `between` after each step; returns every key visited.
    fn scan_all(
        map: &mut SegMap<Box<[u8]>, usize>,
        mut between: impl FnMut(&mut SegMap<Box<[u8]>, usize>, usize),
    ) -> std::collections::HashSet<Box<[u8]>> {
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        for step in 0.. {
            cursor = map.scan_segment(cursor, |key, _| {
                seen.insert(key.clone());
            });
            if cursor == 0 {
                break;
            }
            assert!(step < 1_000_000, "the scan ends");
            between(map, step);
        }
        seen
    }

    #[test]
    fn a_scan_visits_everything_once_when_nothing_changes() {
        let mut map = SegMap::default();
        assert!(scan_all(&mut map, |_, _| {}).is_empty());
        for i in 0..20_000 {
            map.insert(member(i), i);
        }
        let mut visits = 0;
        let mut cursor = 0;
        loop {
            cursor = map.scan_segment(cursor, |_, _| visits += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(visits, 20_000);
        // A small map is one segment: one step, cursor 0 (as a Redis listpack).
        let mut small = SegMap::default();
        small.insert(member(1), 1);
        assert_eq!(small.scan_segment(0, |_, _| {}), 0);
    }

    proptest! {
        /// Every entry present for the whole scan is visited, while other entries are added
        /// (splitting segments) or removed (merging them) between steps.
        #[test]
        fn a_scan_visits_every_stable_entry_across_splits_and_merges(
            start in 0usize..6000,
            grow in 0usize..40,
            shrink in 0usize..40,
        ) {
            let mut map = SegMap::default();
            for i in 0..start {
                map.insert(member(i), i);
            }
            // Stable: the even members below `start`; the odd ones are removed on the way,
            // and new members are added.
            let mut next = 1_000_000;
            let seen = scan_all(&mut map, |map, step| {
                for _ in 0..grow {
                    map.insert(member(next), next);
                    next += 1;
                }
                for k in 0..shrink {
                    let odd = (step * shrink + k) * 2 + 1;
                    map.remove(&member(odd));
                }
            });
            for i in (0..start).step_by(2) {
                prop_assert!(seen.contains(&member(i)), "member {} missed", i);
            }
        }

        /// Shrinking a large map to a small one during a scan (many merges) loses nothing
        /// that stays.
        #[test]
        fn a_scan_survives_heavy_shrinking(start in 2000usize..20_000, keep_every in 2usize..50) {
            let mut map = SegMap::default();
            for i in 0..start {
                map.insert(member(i), i);
            }
            let mut doomed = (0..start).filter(|i| i % keep_every != 0);
            let seen = scan_all(&mut map, |map, _| {
                for i in doomed.by_ref().take(500) {
                    map.remove(&member(i));
                }
            });
            for i in (0..start).step_by(keep_every) {
                prop_assert!(seen.contains(&member(i)), "member {} missed", i);
            }
        }

        /// Against a BTreeMap, through splits and merges.
        #[test]
        fn behaves_as_a_map(ops in prop::collection::vec((0u16..3000, any::<bool>()), 0..8000)) {
            let mut map = SegMap::default();
            let mut model = BTreeMap::new();
            for (i, (key, insert)) in ops.into_iter().enumerate() {
                let key = member(key.into());
                if insert {
                    prop_assert_eq!(map.insert(key.clone(), i), model.insert(key, i));
                } else {
                    prop_assert_eq!(map.remove(&key).map(|(_, v)| v), model.remove(&key));
                }
            }
            assert_consistent(&map);
            let mut entries: Vec<_> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
            entries.sort();
            prop_assert_eq!(entries, model.into_iter().collect::<Vec<_>>());
        }
    }
}
