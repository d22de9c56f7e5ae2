//! A chained hash table with Redis-style reverse-binary SCAN cursors.
//!
//! Why not `std::collections::HashMap`: SCAN must return every key that is present for the
//! whole iteration even while the table grows or shrinks between calls. Redis gets that from
//! power-of-two bucket arrays where a key's bucket is `hash & mask`, iterated with a cursor
//! whose *reversed* bits are incremented (`dict.c`, `dictScan`). Open addressing tables move
//! entries away from their home bucket, so the guarantee does not hold for them. Here each
//! bucket heads a chain of nodes that live in a [`Slab`] (contiguous, no allocation per key
//! in the steady state), and a node's bucket is always `hash & mask`.
//!
//! Resizing is done at once (not incrementally as in Redis): a shard holds 1/16th of a
//! database, and relinking touches only the node array and the bucket heads.
//!
//! A node's index in the slab is stable until the table compacts its node array (after mass
//! deletions); [`Table::layout_version`] changes when that happens, so that the shard's TTL
//! heap, which refers to nodes by index, knows to rebuild.

use slab::Slab;

use super::key::Key;

/// Marks the end of a chain / an empty bucket.
const NIL: u32 = u32::MAX;
/// Smallest bucket array once the table holds anything.
const MIN_BUCKETS: usize = 8;

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

/// Hash table from binary keys to `V`, keyed by a caller-supplied 64-bit hash.
///
/// The caller hashes each key once (it also picks the shard from the same hash) and passes the
/// hash to every operation, so the table never hashes.
pub struct Table<V> {
    nodes: Slab<Node<V>>,
    buckets: Vec<u32>,
    layout_version: u64,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            nodes: Slab::new(),
            buckets: Vec::new(),
            layout_version: 0,
        }
    }
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

    fn bucket_of(&self, hash: u32) -> usize {
        (u64::from(hash) & self.mask()) as usize
    }

    /// The node index of `key`, stable until [`Table::layout_version`] changes.
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let hash = hash as u32;
        let mut index = self.buckets[self.bucket_of(hash)];
        while index != NIL {
            let node = &self.nodes[index as usize];
            if node.hash == hash && node.key.as_bytes() == key {
                return Some(index);
            }
            index = node.next;
        }
        None
    }

    /// Changes whenever node indices change (compaction).
    pub fn layout_version(&self) -> u64 {
        self.layout_version
    }

    /// The key and value at a node index, if a node lives there.
    pub fn get_at(&self, index: u32) -> Option<(&[u8], &V)> {
        self.nodes
            .get(index as usize)
            .map(|node| (node.key.as_bytes(), &node.value))
    }

    /// Mutable access to the value at a node index.
    pub fn get_at_mut(&mut self, index: u32) -> Option<&mut V> {
        self.nodes
            .get_mut(index as usize)
            .map(|node| &mut node.value)
    }

    /// The value stored under `key`.
    pub fn get(&self, hash: u64, key: &[u8]) -> Option<&V> {
        self.find(hash, key)
            .map(|index| &self.nodes[index as usize].value)
    }

    /// Mutable access to the value stored under `key`.
    pub fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut V> {
        let index = self.find(hash, key)?;
        Some(&mut self.nodes[index as usize].value)
    }

    /// Inserts a key known to be absent; returns its node index.
    ///
    /// The caller must have checked with [`Table::find`] first; inserting a present key would
    /// shadow it.
    pub fn insert_new(&mut self, hash: u64, key: &[u8], value: V) -> u32 {
        debug_assert!(self.find(hash, key).is_none());
        if self.nodes.len() >= self.buckets.len() {
            self.resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let hash = hash as u32;
        let bucket = self.bucket_of(hash);
        let index = self.nodes.insert(Node {
            hash,
            next: self.buckets[bucket],
            key: Key::new(key),
            value,
        });
        // Indices are u32 to keep nodes small: four billion keys per shard is far beyond the
        // memory of any machine this runs on.
        debug_assert!(index < NIL as usize);
        self.buckets[bucket] = index as u32;
        index as u32
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<V> {
        let index = self.find(hash, key)?;
        self.remove_at(index)
    }

    /// Removes the node at `index`, returning its value.
    pub fn remove_at(&mut self, index: u32) -> Option<V> {
        let hash = self.nodes.get(index as usize)?.hash;
        let bucket = self.bucket_of(hash);
        let mut prev = NIL;
        let mut probe = self.buckets[bucket];
        while probe != index {
            if probe == NIL {
                return None;
            }
            prev = probe;
            probe = self.nodes[probe as usize].next;
        }
        let node = self.nodes.remove(index as usize);
        if prev == NIL {
            self.buckets[bucket] = node.next;
        } else {
            self.nodes[prev as usize].next = node.next;
        }
        self.maybe_shrink();
        Some(node.value)
    }

    /// The key and a mutable value at `index` (the key stays immutable: it positions the node).
    pub fn get_at_key_mut(&mut self, index: u32) -> Option<(&[u8], &mut V)> {
        self.nodes
            .get_mut(index as usize)
            .map(|node| (node.key.as_bytes(), &mut node.value))
    }

    /// One past the highest node index that may be in use: walks by index stop here.
    pub fn slot_count(&self) -> usize {
        self.nodes.capacity()
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
        self.nodes
            .iter()
            .map(|(index, node)| (index as u32, &node.value))
    }

    /// Visits one bucket of a SCAN and returns the cursor of the next one (0 when done).
    ///
    /// Redis's algorithm: the cursor's bits are incremented from the most significant masked
    /// bit down, so buckets already visited before a resize map onto buckets visited after it;
    /// a key present for the whole scan is reported at least once (possibly more than once if
    /// the table shrank).
    pub fn scan_bucket(&self, cursor: u64, mut visit: impl FnMut(&[u8], &V)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = self.mask();
        let mut index = self.buckets[(cursor & mask) as usize];
        while index != NIL {
            let node = &self.nodes[index as usize];
            visit(node.key.as_bytes(), &node.value);
            index = node.next;
        }
        let mut next = cursor | !mask;
        next = next.reverse_bits().wrapping_add(1).reverse_bits();
        next
    }

    /// A uniformly chosen non-empty bucket's chain, picked with `random` as the source of
    /// randomness; then a random element of that chain (as Redis's `dictGetFairRandomKey` is
    /// approximately fair).
    pub fn random_entry(&self, mut random: impl FnMut() -> u64) -> Option<(&[u8], &V)> {
        if self.nodes.is_empty() {
            return None;
        }
        // Load factor is at least 1/8 after shrinking, so this finds a chain quickly.
        loop {
            let bucket = (random() & self.mask()) as usize;
            let mut index = self.buckets[bucket];
            if index == NIL {
                continue;
            }
            let mut chain_len = 0u64;
            let mut probe = index;
            while probe != NIL {
                chain_len += 1;
                probe = self.nodes[probe as usize].next;
            }
            let mut skip = random() % chain_len;
            while skip > 0 {
                index = self.nodes[index as usize].next;
                skip -= 1;
            }
            let node = &self.nodes[index as usize];
            return Some((node.key.as_bytes(), &node.value));
        }
    }

    /// Capacity actually reserved, for memory reporting and tests.
    pub fn capacity(&self) -> usize {
        self.nodes.capacity()
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
        } else if self.buckets.len() > MIN_BUCKETS && len * 8 < self.buckets.len() {
            self.resize((len.next_power_of_two() * 2).max(MIN_BUCKETS));
        }
    }

    /// Rebuilds the bucket array with `size` (a power of two) buckets.
    fn resize(&mut self, size: usize) {
        debug_assert!(size.is_power_of_two());
        self.buckets.clear();
        self.buckets.resize(size, NIL);
        self.buckets.shrink_to(size);
        let mask = (size - 1) as u64;
        for (index, node) in self.nodes.iter_mut() {
            let bucket = (u64::from(node.hash) & mask) as usize;
            node.next = self.buckets[bucket];
            self.buckets[bucket] = index as u32;
        }
    }

    /// Moves every node into a right-sized node array (dropping the holes) and relinks.
    fn compact(&mut self) {
        let len = self.nodes.len();
        let old = std::mem::replace(&mut self.nodes, Slab::with_capacity(len * 2));
        for (_, node) in old {
            self.nodes.insert(node);
        }
        self.layout_version += 1;
        self.resize((len.next_power_of_two() * 2).max(MIN_BUCKETS));
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
