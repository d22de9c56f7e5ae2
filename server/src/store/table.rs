//! A chained hash table with Redis-style reverse-binary SCAN cursors and incremental resizing.
//!
//! Why not `std::collections::HashMap`: SCAN must return every key that is present for the
//! whole iteration even while the table grows or shrinks between calls. Redis gets that from
//! power-of-two bucket arrays where a key's bucket is `hash & mask`, iterated with a cursor
//! whose *reversed* bits are incremented (`dict.c`, `dictScan`). Open addressing tables move
//! entries away from their home bucket, so the guarantee does not hold for them. Here each
//! bucket heads a chain of nodes that live in a chunked slab ([`Nodes`]: no allocation per
//! key in the steady state, and growing never moves a node).
//!
//! Resizing is incremental, as in Redis: a resize allocates the new bucket array and then
//! every insertion and removal moves a few buckets of the old array into it (and the cron
//! moves more, through [`Table::rehash_step`]), so no single operation relinks the whole
//! table. A shard's 1M-node relink took milliseconds, and a database's 16 shards resize
//! within milliseconds of each other. While a resize is in progress a key lives in exactly
//! one array: in the old one if its old bucket has not been moved yet, else in the new one.
//!
//! A node's index is stable until the table compacts its node array (after mass deletions);
//! [`Table::layout_version`] changes when that happens, so that the shard's TTL heap, which
//! refers to nodes by index, knows to rebuild.

use super::key::Key;
use super::nodes::Nodes;

/// Marks the end of a chain / an empty bucket.
const NIL: u32 = u32::MAX;
/// Smallest bucket array once the table holds anything.
const MIN_BUCKETS: usize = 8;
/// Below this many keys a resize relinks every node at once, walking the node array in
/// order (under a millisecond); from it on, resizes are incremental. Moving chains bucket by
/// bucket visits nodes in random order, which cost 7.6% of the server's CPU during a 10M-key
/// load (the one-time relink cost 1%; prefetching the chains' first nodes did not help): the
/// price of never stalling for a whole table.
/// (Unit tests lower it so that small tables go through incremental resizes.)
const INCREMENTAL_FROM: usize = if cfg!(test) { 64 } else { 64 * 1024 };
/// Old buckets moved per insertion or removal while a resize is in progress. With at least
/// one per insertion, a growth finishes before the table fills the new array.
const REHASH_STEP: usize = 1;
/// Empty old buckets skipped per step, on top of the moved ones (bounds a step's time when
/// the old array is sparse, as Redis's `empty_visits`).
const REHASH_EMPTY_VISITS: usize = 10 * REHASH_STEP;

/// A stored key. The hash is kept (its low 32 bits: buckets are indexed by low bits) so that
/// resizing never rehashes and most mismatches are rejected without comparing keys.
///
/// Aligned to a cache line: a string entry is exactly 64 bytes, so each lookup touches one
/// line of the node array instead of straddling two (the array's allocation is otherwise only
/// 16-byte aligned). With a million keys that is one DRAM miss fewer per lookup.
#[repr(align(64))]
struct Node<V> {
    hash: u32,
    next: u32,
    key: Key,
    value: V,
}

/// A string key's node, in its slot, is one cache line (key, value and links; see [`Node`]):
/// value types that need more go behind a `Box` (see `store::value`).
const _: () = assert!(super::nodes::slot_size::<Node<super::Entry>>() == 64);

/// The bucket array being emptied into the current one.
struct Rehash {
    old: Vec<u32>,
    /// Old buckets below this have been moved (and are empty).
    next: usize,
}

/// Hash table from binary keys to `V`, keyed by a caller-supplied 64-bit hash.
///
/// The caller hashes each key once (it also picks the shard from the same hash) and passes the
/// hash to every operation, so the table never hashes.
pub struct Table<V> {
    nodes: Nodes<Node<V>>,
    /// The current bucket array (the destination of a resize in progress).
    buckets: Vec<u32>,
    rehash: Option<Box<Rehash>>,
    layout_version: u64,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            nodes: Nodes::default(),
            buckets: Vec::new(),
            rehash: None,
            layout_version: 0,
        }
    }
}

/// The bucket of a key hash in an array of `mask + 1` buckets: its low 32 bits, masked (the
/// shard is chosen by the top bits).
#[inline]
pub(super) fn bucket_index(hash: u64, mask: u64) -> usize {
    (hash & u64::from(u32::MAX) & mask) as usize
}

/// Where a chain's head is stored.
#[derive(Clone, Copy)]
enum Head {
    Current(usize),
    Old(usize),
}

impl<V> Table<V> {
    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn mask(&self) -> u64 {
        (self.buckets.len() as u64).wrapping_sub(1)
    }

    /// The bucket whose chain holds (or would hold) `hash`.
    #[inline]
    fn head_of(&self, hash: u32) -> Head {
        if let Some(rehash) = &self.rehash {
            let old = bucket_index(u64::from(hash), rehash.old.len() as u64 - 1);
            if old >= rehash.next {
                return Head::Old(old);
            }
        }
        Head::Current(bucket_index(u64::from(hash), self.mask()))
    }

    /// Address of the current bucket array (0 when there is none) and its index mask, for
    /// prefetching a key's bucket before taking the shard's lock (see `store::hint`).
    #[inline]
    pub fn bucket_hint(&self) -> (usize, u64) {
        if self.buckets.is_empty() {
            return (0, 0);
        }
        (self.buckets.as_ptr() as usize, self.mask())
    }

    #[inline]
    fn head(&self, head: Head) -> u32 {
        match (head, &self.rehash) {
            (Head::Current(bucket), _) => self.buckets[bucket],
            (Head::Old(bucket), Some(rehash)) => rehash.old[bucket],
            (Head::Old(_), None) => NIL,
        }
    }

    #[inline]
    fn head_mut(&mut self, head: Head) -> &mut u32 {
        match (head, &mut self.rehash) {
            (Head::Old(bucket), Some(rehash)) => &mut rehash.old[bucket],
            (Head::Current(bucket), _) | (Head::Old(bucket), None) => &mut self.buckets[bucket],
        }
    }

    /// The node index of `key`, stable until [`Table::layout_version`] changes.
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.find_value(hash, key).map(|(index, _)| index)
    }

    /// The node index of `key` with its value (one lookup where a caller needs both).
    #[inline]
    pub fn find_value(&self, hash: u64, key: &[u8]) -> Option<(u32, &V)> {
        if self.buckets.is_empty() {
            return None;
        }
        let hash = hash as u32;
        let mut index = self.head(self.head_of(hash));
        while index != NIL {
            let node = &self.nodes[index];
            if node.hash == hash && node.key.as_bytes() == key {
                return Some((index, &node.value));
            }
            index = node.next;
        }
        None
    }

    /// Starts loading the first node of `hash`'s chain (reads its bucket, which should have
    /// been prefetched already), so that lookups of several keys overlap their misses.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        if self.buckets.is_empty() {
            return;
        }
        let head = self.head(self.head_of(hash as u32));
        if let Some(address) = self.nodes.slot_address(head) {
            super::hint::prefetch_line(address);
        }
    }

    /// Changes whenever node indices change (compaction).
    pub fn layout_version(&self) -> u64 {
        self.layout_version
    }

    /// The key and value at a node index, if a node lives there.
    pub fn get_at(&self, index: u32) -> Option<(&[u8], &V)> {
        self.nodes
            .get(index)
            .map(|node| (node.key.as_bytes(), &node.value))
    }

    /// Mutable access to the value at a node index.
    pub fn get_at_mut(&mut self, index: u32) -> Option<&mut V> {
        self.nodes.get_mut(index).map(|node| &mut node.value)
    }

    /// The value stored under `key`.
    pub fn get(&self, hash: u64, key: &[u8]) -> Option<&V> {
        self.find(hash, key).map(|index| &self.nodes[index].value)
    }

    /// Mutable access to the value stored under `key`.
    pub fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut V> {
        let index = self.find(hash, key)?;
        Some(&mut self.nodes[index].value)
    }

    /// Inserts a key known to be absent; returns its node index.
    ///
    /// The caller must have checked with [`Table::find`] first; inserting a present key would
    /// shadow it.
    pub fn insert_new(&mut self, hash: u64, key: &[u8], value: V) -> u32 {
        debug_assert!(self.find(hash, key).is_none());
        if self.rehash.is_some() {
            self.rehash_step(REHASH_STEP);
        } else if self.nodes.len() >= self.buckets.len() {
            self.start_resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let hash = hash as u32;
        let head = self.head_of(hash);
        let next = self.head(head);
        // Indices are u32 to keep nodes small: four billion keys per shard is far beyond the
        // memory of any machine this runs on.
        let index = self.nodes.insert(Node {
            hash,
            next,
            key: Key::new(key),
            value,
        });
        *self.head_mut(head) = index;
        index
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<V> {
        let index = self.find(hash, key)?;
        self.remove_at(index)
    }

    /// Removes the node at `index`, returning its value.
    pub fn remove_at(&mut self, index: u32) -> Option<V> {
        let head = self.head_of(self.nodes.get(index)?.hash);
        let mut prev = NIL;
        let mut probe = self.head(head);
        while probe != index {
            if probe == NIL {
                return None;
            }
            prev = probe;
            probe = self.nodes[probe].next;
        }
        let node = self.nodes.remove(index)?;
        if prev == NIL {
            *self.head_mut(head) = node.next;
        } else {
            self.nodes[prev].next = node.next;
        }
        if self.rehash.is_some() {
            self.rehash_step(REHASH_STEP);
        }
        self.maybe_shrink();
        Some(node.value)
    }

    /// The key and a mutable value at `index` (the key stays immutable: it positions the node).
    pub fn get_at_key_mut(&mut self, index: u32) -> Option<(&[u8], &mut V)> {
        self.nodes
            .get_mut(index)
            .map(|node| (node.key.as_bytes(), &mut node.value))
    }

    /// One past the highest node index that may be in use: walks by index stop here.
    pub fn slot_count(&self) -> usize {
        self.nodes.slot_count()
    }

    /// Removes every key and releases the memory.
    pub fn clear(&mut self) {
        let version = self.layout_version + 1;
        *self = Table::default();
        self.layout_version = version;
    }

    /// Takes the whole content out, leaving an empty table (used to free it elsewhere).
    pub fn take(&mut self) -> Table<V> {
        let version = self.layout_version + 1;
        let taken = std::mem::take(self);
        self.layout_version = version;
        taken
    }

    /// Iterates over every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.nodes
            .iter()
            .map(|(_, node)| (node.key.as_bytes(), &node.value))
    }

    /// Every node index with its value.
    pub fn iter_indexed(&self) -> impl Iterator<Item = (u32, &V)> {
        self.nodes.iter().map(|(index, node)| (index, &node.value))
    }

    /// Visits the chain starting at `index`.
    fn visit_chain(&self, mut index: u32, visit: &mut impl FnMut(&[u8], &V)) {
        while index != NIL {
            let node = &self.nodes[index];
            visit(node.key.as_bytes(), &node.value);
            index = node.next;
        }
    }

    /// Visits one bucket of a SCAN and returns the cursor of the next one (0 when done).
    ///
    /// Redis's algorithm: the cursor's bits are incremented from the most significant masked
    /// bit down, so buckets already visited before a resize map onto buckets visited after it;
    /// a key present for the whole scan is reported at least once (possibly more than once if
    /// the table shrank). During a resize, the bucket of the smaller array and every bucket of
    /// the larger one that it expands to are visited together (`dictScan`).
    pub fn scan_bucket(&self, cursor: u64, mut visit: impl FnMut(&[u8], &V)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let Some(rehash) = &self.rehash else {
            let mask = self.mask();
            self.visit_chain(self.buckets[(cursor & mask) as usize], &mut visit);
            return (cursor | !mask)
                .reverse_bits()
                .wrapping_add(1)
                .reverse_bits();
        };
        let (small, large) = if rehash.old.len() <= self.buckets.len() {
            (&rehash.old, &self.buckets)
        } else {
            (&self.buckets, &rehash.old)
        };
        let small_mask = small.len() as u64 - 1;
        let large_mask = large.len() as u64 - 1;
        let mut cursor = cursor;
        self.visit_chain(small[(cursor & small_mask) as usize], &mut visit);
        loop {
            self.visit_chain(large[(cursor & large_mask) as usize], &mut visit);
            // Increment the reversed cursor in the bits the smaller mask does not cover.
            cursor = (cursor | !large_mask)
                .reverse_bits()
                .wrapping_add(1)
                .reverse_bits();
            if cursor & (small_mask ^ large_mask) == 0 {
                return cursor;
            }
        }
    }

    /// A uniformly chosen non-empty bucket's chain, picked with `random` as the source of
    /// randomness; then a random element of that chain (as Redis's `dictGetFairRandomKey` is
    /// approximately fair).
    pub fn random_entry(&self, mut random: impl FnMut() -> u64) -> Option<(&[u8], &V)> {
        if self.nodes.is_empty() {
            return None;
        }
        let old: &[u32] = self.rehash.as_ref().map_or(&[], |rehash| &rehash.old);
        let total = (old.len() + self.buckets.len()) as u64;
        // Load factor is at least 1/8 after shrinking, so this finds a chain quickly.
        loop {
            let pick = (random() % total) as usize;
            let mut index = match pick.checked_sub(old.len()) {
                None => old[pick],
                Some(current) => self.buckets[current],
            };
            if index == NIL {
                continue;
            }
            let mut chain_len = 0u64;
            let mut probe = index;
            while probe != NIL {
                chain_len += 1;
                probe = self.nodes[probe].next;
            }
            let mut skip = random() % chain_len;
            while skip > 0 {
                index = self.nodes[index].next;
                skip -= 1;
            }
            let node = &self.nodes[index];
            return Some((node.key.as_bytes(), &node.value));
        }
    }

    /// Capacity actually reserved, for memory reporting and tests.
    pub fn capacity(&self) -> usize {
        self.nodes.capacity()
    }

    /// True while a resize is in progress.
    pub fn is_rehashing(&self) -> bool {
        self.rehash.is_some()
    }

    /// Moves up to `buckets` buckets of a resize in progress (plus a bounded number of empty
    /// ones) into the current array. Inserts and removals call it; the cron calls it so that a
    /// table that stops changing still finishes its resize and frees the old array.
    pub fn rehash_step(&mut self, buckets: usize) {
        let Some(rehash) = self.rehash.as_deref_mut() else {
            return;
        };
        let mask = self.buckets.len() as u64 - 1;
        let mut moved = 0;
        let mut empty_visits = REHASH_EMPTY_VISITS.max(buckets);
        while moved < buckets && rehash.next < rehash.old.len() {
            let mut index = std::mem::replace(&mut rehash.old[rehash.next], NIL);
            rehash.next += 1;
            if index == NIL {
                empty_visits -= 1;
                if empty_visits == 0 {
                    break;
                }
                continue;
            }
            while index != NIL {
                let node = &mut self.nodes[index];
                let next = node.next;
                let bucket = (u64::from(node.hash) & mask) as usize;
                node.next = self.buckets[bucket];
                self.buckets[bucket] = index;
                index = next;
            }
            moved += 1;
        }
        if rehash.next == rehash.old.len() {
            self.rehash = None;
        }
    }

    /// Resizes the bucket array to `size` (a power of two): at once for a small table,
    /// else by starting to move chains to the new array.
    fn start_resize(&mut self, size: usize) {
        debug_assert!(size.is_power_of_two());
        debug_assert!(self.rehash.is_none());
        if self.nodes.len() < INCREMENTAL_FROM {
            self.relink_all(size);
            return;
        }
        let old = std::mem::replace(&mut self.buckets, vec![NIL; size]);
        self.rehash = Some(Box::new(Rehash { old, next: 0 }));
    }

    /// Rebuilds every chain in a new array of `size` buckets, walking the nodes in order.
    fn relink_all(&mut self, size: usize) {
        self.rehash = None;
        self.buckets = vec![NIL; size];
        let mask = (size - 1) as u64;
        for (index, node) in self.nodes.iter_mut() {
            let bucket = (u64::from(node.hash) & mask) as usize;
            node.next = self.buckets[bucket];
            self.buckets[bucket] = index;
        }
    }

    fn maybe_shrink(&mut self) {
        let len = self.nodes.len();
        if len == 0 {
            self.clear();
            return;
        }
        // Compact the node array once three quarters of it is holes, and shrink the bucket
        // array below a load factor of 1/8, so memory follows deletions.
        if self.nodes.capacity() > 64 && len * 4 < self.nodes.capacity() {
            self.compact();
        } else if self.rehash.is_none()
            && self.buckets.len() > MIN_BUCKETS
            && len * 8 < self.buckets.len()
        {
            self.start_resize((len.next_power_of_two() * 2).max(MIN_BUCKETS));
        }
    }

    /// Moves every node into a fresh node array (dropping the holes) and relinks them all
    /// at once. Runs only after three quarters of the nodes were deleted.
    fn compact(&mut self) {
        let len = self.nodes.len();
        let old = std::mem::take(&mut self.nodes);
        for node in old.into_values() {
            self.nodes.insert(node);
        }
        self.layout_version += 1;
        self.relink_all((len.next_power_of_two() * 2).max(MIN_BUCKETS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash(key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(7).hash_one(key)
    }

    fn insert(table: &mut Table<u32>, key: &str, value: u32) {
        let h = hash(key.as_bytes());
        if let Some(slot) = table.get_mut(h, key.as_bytes()) {
            *slot = value;
        } else {
            table.insert_new(h, key.as_bytes(), value);
        }
    }

    #[test]
    fn insert_get_remove() {
        let mut table = Table::default();
        for i in 0..1000 {
            insert(&mut table, &format!("k{i}"), i);
        }
        assert_eq!(table.len(), 1000);
        for i in 0..1000u32 {
            let key = format!("k{i}");
            assert_eq!(table.get(hash(key.as_bytes()), key.as_bytes()), Some(&i));
        }
        for i in 0..990u32 {
            let key = format!("k{i}");
            let v = table.remove(hash(key.as_bytes()), key.as_bytes()).unwrap();
            assert_eq!(v, i);
        }
        assert_eq!(table.len(), 10);
        assert!(table.capacity() < 100, "memory follows deletions");
        for i in 990..1000u32 {
            let key = format!("k{i}");
            assert_eq!(table.get(hash(key.as_bytes()), key.as_bytes()), Some(&i));
        }
        assert!(table.remove(hash(b"k0"), b"k0").is_none());
    }

    #[test]
    fn scan_reports_every_stable_key_across_resizes() {
        let mut table = Table::default();
        for i in 0..500 {
            insert(&mut table, &format!("stable{i}"), i);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0u32;
        loop {
            cursor = table.scan_bucket(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            // Grow and shrink the table while the scan is in progress.
            step += 1;
            if step.is_multiple_of(3) {
                for j in 0..200 {
                    insert(&mut table, &format!("churn{step}-{j}"), 0);
                }
            } else if step % 3 == 1 {
                let churn: Vec<Vec<u8>> = table
                    .iter()
                    .filter(|(k, _)| k.starts_with(b"churn"))
                    .map(|(k, _)| k.to_vec())
                    .collect();
                for k in churn {
                    table.remove(hash(&k), &k);
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(
                seen.contains(format!("stable{i}").as_bytes()),
                "missed stable{i}"
            );
        }
    }

    #[test]
    fn a_string_entry_node_is_one_cache_line() {
        assert_eq!(
            super::super::nodes::slot_size::<Node<crate::store::Entry>>(),
            64
        );
    }

    /// Grows through several resizes, checking every key stays reachable while a resize is
    /// in progress, then deletes down through the shrinks.
    #[test]
    fn keys_stay_reachable_through_incremental_resizes() {
        let mut table = Table::default();
        let mut saw_rehash = false;
        for i in 0..20_000u32 {
            insert(&mut table, &format!("k{i}"), i);
            saw_rehash |= table.is_rehashing();
            if i.is_multiple_of(997) {
                for j in 0..=i {
                    let key = format!("k{j}");
                    assert_eq!(table.get(hash(key.as_bytes()), key.as_bytes()), Some(&j));
                }
            }
        }
        assert!(saw_rehash, "growth went through incremental resizes");
        assert_eq!(table.len(), 20_000);
        assert!(
            table.buckets.len() >= 16_384,
            "grew: {}",
            table.buckets.len()
        );
        let mut saw_shrink = false;
        for i in 0..19_990u32 {
            let key = format!("k{i}");
            assert_eq!(table.remove(hash(key.as_bytes()), key.as_bytes()), Some(i));
            saw_shrink |= table
                .rehash
                .as_ref()
                .is_some_and(|r| r.old.len() > table.buckets.len());
            if i % 1999 == 0 {
                for j in i + 1..20_000 {
                    let key = format!("k{j}");
                    assert_eq!(table.get(hash(key.as_bytes()), key.as_bytes()), Some(&j));
                }
            }
        }
        assert!(saw_shrink || table.capacity() < 100, "shrank");
        // The cron finishes what is left without further writes.
        for _ in 0..100 {
            table.rehash_step(4096);
        }
        assert!(!table.is_rehashing());
        assert!(table.buckets.len() <= 64, "{}", table.buckets.len());
        for j in 19_990..20_000u32 {
            let key = format!("k{j}");
            assert_eq!(table.get(hash(key.as_bytes()), key.as_bytes()), Some(&j));
        }
    }

    #[test]
    fn scan_during_a_resize_reports_every_key() {
        let mut table = Table::default();
        let mut i = 0u32;
        // Stop right after a growth starts.
        loop {
            insert(&mut table, &format!("k{i}"), i);
            i += 1;
            if table.is_rehashing() && table.len() > 1000 {
                break;
            }
        }
        let present = table.len();
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = table.scan_bucket(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert!(table.is_rehashing(), "the scan ran during the resize");
        assert_eq!(seen.len(), present);
        // A random entry can come from either array.
        let mut state = 3u64;
        for _ in 0..100 {
            let (k, _) = table
                .random_entry(|| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    state >> 11
                })
                .unwrap();
            assert!(seen.contains(k));
        }
    }

    proptest::proptest! {
        /// Any sequence of inserts and removes (with resizes in flight) agrees with a
        /// `HashMap`, and every SCAN, with writes between its calls, reports each of the keys
        /// present throughout.
        #[test]
        fn matches_a_hashmap(ops in proptest::collection::vec((0u8..3, 0u16..1500), 1..4000)) {
            let mut table = Table::default();
            let mut model = std::collections::HashMap::new();
            for i in 0..200u32 {
                insert(&mut table, &format!("stable{i}"), i);
                model.insert(format!("stable{i}"), i);
            }
            let mut cursor = 0u64;
            let mut scanned = HashSet::new();
            for (n, (op, k)) in ops.into_iter().enumerate() {
                let key = format!("key{k}");
                let h = hash(key.as_bytes());
                match op {
                    0 => {
                        insert(&mut table, &key, n as u32);
                        model.insert(key, n as u32);
                    }
                    1 => {
                        let removed = table.remove(h, key.as_bytes());
                        proptest::prop_assert_eq!(removed, model.remove(&key));
                    }
                    _ => {
                        cursor = table.scan_bucket(cursor, |k, _| {
                            scanned.insert(k.to_vec());
                        });
                        if cursor == 0 {
                            for i in 0..200 {
                                let stable = format!("stable{i}");
                                proptest::prop_assert!(scanned.contains(stable.as_bytes()));
                            }
                            scanned.clear();
                        }
                    }
                }
                proptest::prop_assert_eq!(table.len(), model.len());
            }
            for (key, value) in &model {
                let found = table.get(hash(key.as_bytes()), key.as_bytes());
                proptest::prop_assert_eq!(found, Some(value));
            }
            proptest::prop_assert_eq!(table.iter().count(), model.len());
        }
    }

    #[test]
    fn random_entry_finds_keys() {
        let mut table = Table::default();
        assert!(table.random_entry(|| 1).is_none());
        insert(&mut table, "only", 1);
        let mut state = 1u64;
        let (k, _) = table
            .random_entry(|| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                state >> 11
            })
            .unwrap();
        assert_eq!(k, b"only");
    }
}
