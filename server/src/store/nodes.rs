//! Node storage for [`Table`](super::Table): a slab kept in fixed-size chunks.
//!
//! Why not one growable array (`slab::Slab`): doubling a vector copies every node into a new
//! array and faults that array in, all while the shard is locked. At 10M keys (630K per
//! shard) that took milliseconds per shard, and since a database's 16 shards fill at the same
//! pace they all doubled within a few milliseconds of each other: one connection thread
//! stalled ~100 ms (redis-benchmark's max latency; Redis's was 17 ms). Here the first chunk
//! grows by doubling up to [`CHUNK`] slots (a copy of at most 2 MiB), and every later chunk is
//! allocated at full size once: a node never moves, and growing costs one allocation whose
//! pages are touched as slots are used.
//!
//! Indices are `u32` (the table's links are) and stay valid until the slot is freed; freed
//! slots are reused last-in first-out.

use std::ops::{Index, IndexMut};

/// Slots per chunk: 2 MiB of 64-byte nodes.
const CHUNK_BITS: u32 = 15;
const CHUNK: usize = 1 << CHUNK_BITS;
/// End of the free list.
const NONE: u32 = u32::MAX;

enum Slot<T> {
    Occupied(T),
    /// A freed slot and the next free one.
    Vacant(u32),
}

/// A slab of `T` in chunks of [`CHUNK`] slots; see the module documentation.
pub struct Nodes<T> {
    chunks: Vec<Vec<Slot<T>>>,
    /// Most recently freed slot, or [`NONE`].
    free: u32,
    len: usize,
}

impl<T> Default for Nodes<T> {
    fn default() -> Self {
        Nodes {
            chunks: Vec::new(),
            free: NONE,
            len: 0,
        }
    }
}

#[inline]
fn split(index: u32) -> (usize, usize) {
    let index = index as usize;
    (index >> CHUNK_BITS, index & (CHUNK - 1))
}

impl<T> Nodes<T> {
    /// Occupied slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no slot is occupied.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots allocated (occupied, free, or reserved and not yet used).
    pub fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    /// One past the highest index ever handed out: walks by index stop here.
    pub fn slot_count(&self) -> usize {
        match self.chunks.last() {
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.len(),
            None => 0,
        }
    }

    /// Stores `value` and returns its index.
    pub fn insert(&mut self, value: T) -> u32 {
        self.len += 1;
        if self.free != NONE {
            let index = self.free;
            let (chunk, offset) = split(index);
            let slot = &mut self.chunks[chunk][offset];
            if let Slot::Vacant(next) = *slot {
                self.free = next;
            } else {
                unreachable!("the free list points at an occupied slot");
            }
            *slot = Slot::Occupied(value);
            return index;
        }
        let full = self.chunks.last().is_none_or(|last| last.len() == CHUNK);
        if full {
            // The first chunk grows by doubling (small tables stay small); later ones are
            // allocated whole, so they never reallocate.
            let capacity = if self.chunks.is_empty() { 0 } else { CHUNK };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        let chunk = self.chunks.len() - 1;
        let last = &mut self.chunks[chunk];
        let index = chunk * CHUNK + last.len();
        last.push(Slot::Occupied(value));
        assert!(
            index < NONE as usize,
            "more than 2^32 - 1 nodes in one table"
        );
        index as u32
    }

    /// Frees the slot at `index` and returns its value (`None` if it was not occupied).
    pub fn remove(&mut self, index: u32) -> Option<T> {
        let (chunk, offset) = split(index);
        let slot = self.chunks.get_mut(chunk)?.get_mut(offset)?;
        if let Slot::Vacant(_) = slot {
            return None;
        }
        let Slot::Occupied(value) = std::mem::replace(slot, Slot::Vacant(self.free)) else {
            unreachable!("checked occupied above");
        };
        self.free = index;
        self.len -= 1;
        Some(value)
    }

    /// Address of the slot at `index` (without reading it), for prefetching.
    #[inline]
    pub fn slot_address(&self, index: u32) -> Option<usize> {
        let (chunk, offset) = split(index);
        let chunk = self.chunks.get(chunk)?;
        (offset < chunk.len()).then(|| chunk.as_ptr().wrapping_add(offset) as usize)
    }

    /// The value at `index`, if the slot is occupied.
    #[inline]
    pub fn get(&self, index: u32) -> Option<&T> {
        let (chunk, offset) = split(index);
        match self.chunks.get(chunk)?.get(offset)? {
            Slot::Occupied(value) => Some(value),
            Slot::Vacant(_) => None,
        }
    }

    /// The value at `index`, mutably, if the slot is occupied.
    #[inline]
    pub fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        let (chunk, offset) = split(index);
        match self.chunks.get_mut(chunk)?.get_mut(offset)? {
            Slot::Occupied(value) => Some(value),
            Slot::Vacant(_) => None,
        }
    }

    /// Every occupied slot with its index, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.chunks.iter().enumerate().flat_map(|(chunk, slots)| {
            slots
                .iter()
                .enumerate()
                .filter_map(move |(offset, slot)| match slot {
                    Slot::Occupied(value) => Some(((chunk * CHUNK + offset) as u32, value)),
                    Slot::Vacant(_) => None,
                })
        })
    }

    /// Every occupied slot with its index, mutably, in index order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.chunks
            .iter_mut()
            .enumerate()
            .flat_map(|(chunk, slots)| {
                slots
                    .iter_mut()
                    .enumerate()
                    .filter_map(move |(offset, slot)| match slot {
                        Slot::Occupied(value) => Some(((chunk * CHUNK + offset) as u32, value)),
                        Slot::Vacant(_) => None,
                    })
            })
    }

    /// Consumes the storage, yielding every value in index order.
    pub fn into_values(self) -> impl Iterator<Item = T> {
        self.chunks
            .into_iter()
            .flatten()
            .filter_map(|slot| match slot {
                Slot::Occupied(value) => Some(value),
                Slot::Vacant(_) => None,
            })
    }
}

/// Bytes one slot holding a `T` takes (the table checks its nodes stay one cache line).
pub(super) const fn slot_size<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

/// Access by an index the caller knows to be occupied (a link of the table's chains).
impl<T> Index<u32> for Nodes<T> {
    type Output = T;

    #[inline]
    fn index(&self, index: u32) -> &T {
        match self.get(index) {
            Some(value) => value,
            None => panic!("node {index} is not occupied"),
        }
    }
}

impl<T> IndexMut<u32> for Nodes<T> {
    #[inline]
    fn index_mut(&mut self, index: u32) -> &mut T {
        match self.get_mut(index) {
            Some(value) => value,
            None => panic!("node {index} is not occupied"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_stable_across_chunks_and_freed_slots_are_reused() {
        let mut nodes = Nodes::default();
        let count = CHUNK * 2 + 10;
        let indices: Vec<u32> = (0..count).map(|i| nodes.insert(i)).collect();
        assert_eq!(indices, (0..count as u32).collect::<Vec<_>>());
        assert_eq!(nodes.len(), count);
        assert_eq!(nodes.slot_count(), count);
        assert_eq!(nodes.chunks.len(), 3);
        for (index, value) in nodes.iter() {
            assert_eq!(index as usize, *value);
        }
        // Free slots in two chunks; they come back last-in first-out.
        assert_eq!(nodes.remove(5), Some(5));
        assert_eq!(nodes.remove(CHUNK as u32 + 1), Some(CHUNK + 1));
        assert_eq!(nodes.remove(5), None, "already free");
        assert_eq!(nodes.get(5), None);
        assert_eq!(nodes.len(), count - 2);
        assert_eq!(nodes.insert(1000), CHUNK as u32 + 1);
        assert_eq!(nodes.insert(1001), 5);
        assert_eq!(nodes.insert(1002), count as u32, "then the end");
        assert_eq!(nodes[5], 1001);
        nodes[5] = 7;
        assert_eq!(nodes.get(5), Some(&7));
        assert_eq!(nodes.get(u32::MAX - 1), None, "out of range");
        assert_eq!(nodes.remove(u32::MAX - 1), None);
        let values: Vec<usize> = nodes.into_values().collect();
        assert_eq!(values.len(), count + 1);
    }

    #[test]
    fn later_chunks_never_reallocate() {
        let mut nodes = Nodes::default();
        for i in 0..CHUNK + 1 {
            nodes.insert(i);
        }
        let second = nodes.chunks[1].as_ptr();
        for i in 0..CHUNK - 1 {
            nodes.insert(i);
        }
        assert_eq!(nodes.chunks[1].as_ptr(), second);
        assert_eq!(nodes.chunks.len(), 2);
        assert_eq!(nodes.capacity(), 2 * CHUNK);
    }
}
