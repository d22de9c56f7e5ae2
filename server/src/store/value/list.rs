//! Lists: a sequence of byte strings kept in fixed-size chunks behind `Arc`s.
//!
//! A list is a deque of chunks of at most [`CHUNK`] elements each, every chunk behind its own
//! `Arc`. Cloning a list (what a snapshot does under the shard lock, and what COPY does)
//! copies the chunk pointers only, and a later write copies the one chunk it changes
//! (`Arc::make_mut`): a write during a snapshot costs one chunk, never the whole list.
//!
//! Pushes and pops at either end touch only the end chunk; a push opens a new chunk when the
//! end one is full, and a pop drops a chunk it empties. Indexing walks chunk lengths from the
//! nearer end (O(n / CHUNK)); insertion and removal in the middle (LINSERT, LREM, LSET) will
//! split and merge chunks in the same way.
//!
//! # Snapshot payload (type tag `0x01`)
//!
//! ```text
//! payload := varint(count) element*count      head to tail
//! element := varint(len) bytes
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use super::codec::{PayloadRead, PayloadWrite};
use super::Shown;

/// Most elements in one chunk: what a write copies, at most, when a snapshot shares the
/// chunk; and a snapshot clones one pointer per this many elements.
pub const CHUNK: usize = 128;

/// One chunk of consecutive elements.
type Chunk = VecDeque<Box<[u8]>>;

/// A list value; see the module documentation.
#[derive(Clone, Default)]
pub struct List {
    /// Never holds an empty chunk.
    chunks: VecDeque<Arc<Chunk>>,
    len: usize,
}

impl List {
    /// The name OBJECT ENCODING reports for this list's representation.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// An empty list.
    pub fn new() -> Self {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the list has no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of chunks: what cloning the list copies (one pointer each).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Chunks this list does not share with a clone: those written since it was cloned.
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        self.chunks
            .iter()
            .filter(|c| Arc::strong_count(c) == 1)
            .count()
    }

    /// A new chunk for one end. A list that already has a full chunk is likely to keep
    /// growing, so its new chunks are allocated whole; a short list's chunk grows as needed.
    fn new_chunk(&self, element: Box<[u8]>) -> Arc<Chunk> {
        let capacity = if self.chunks.is_empty() { 1 } else { CHUNK };
        let mut chunk = Chunk::with_capacity(capacity);
        chunk.push_back(element);
        Arc::new(chunk)
    }

    /// Appends an element at the tail (RPUSH).
    pub fn push_back(&mut self, element: impl Into<Box<[u8]>>) {
        let element = element.into();
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push_back(element),
            _ => {
                let chunk = self.new_chunk(element);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    /// Prepends an element at the head (LPUSH).
    pub fn push_front(&mut self, element: impl Into<Box<[u8]>>) {
        let element = element.into();
        match self.chunks.front_mut() {
            Some(first) if first.len() < CHUNK => Arc::make_mut(first).push_front(element),
            _ => {
                let chunk = self.new_chunk(element);
                self.chunks.push_front(chunk);
            }
        }
        self.len += 1;
    }

    /// Removes and returns the tail element (RPOP).
    pub fn pop_back(&mut self) -> Option<Box<[u8]>> {
        let last = self.chunks.back_mut()?;
        let element = Arc::make_mut(last).pop_back();
        if last.is_empty() {
            self.chunks.pop_back();
        }
        self.len -= usize::from(element.is_some());
        element
    }

    /// Removes and returns the head element (LPOP).
    pub fn pop_front(&mut self) -> Option<Box<[u8]>> {
        let first = self.chunks.front_mut()?;
        let element = Arc::make_mut(first).pop_front();
        if first.is_empty() {
            self.chunks.pop_front();
        }
        self.len -= usize::from(element.is_some());
        element
    }

    /// The element at `index` from the head (LINDEX with a non-negative index), walking the
    /// chunks from whichever end is nearer.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        if index >= self.len {
            return None;
        }
        if index < self.len / 2 {
            let mut skipped = 0;
            for chunk in &self.chunks {
                if index < skipped + chunk.len() {
                    return chunk.get(index - skipped).map(|e| &**e);
                }
                skipped += chunk.len();
            }
        } else {
            let mut from_tail = self.len - 1 - index;
            for chunk in self.chunks.iter().rev() {
                if from_tail < chunk.len() {
                    return chunk.get(chunk.len() - 1 - from_tail).map(|e| &**e);
                }
                from_tail -= chunk.len();
            }
        }
        None
    }

    /// The elements from head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter().map(|element| &**element))
    }
}

impl<E: Into<Box<[u8]>>> FromIterator<E> for List {
    fn from_iter<I: IntoIterator<Item = E>>(elements: I) -> Self {
        let mut list = List::new();
        for element in elements {
            list.push_back(element);
        }
        list
    }
}

impl PartialEq for List {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(Shown)).finish()
    }
}

/// Writes a list's payload.
pub fn encode<W: PayloadWrite>(list: &List, out: &mut W) -> Result<(), W::Error> {
    out.put_count(list.len())?;
    for element in list.iter() {
        out.put_bytes(element)?;
    }
    Ok(())
}

/// Reads a list's payload. Chunks fill as elements arrive, so a corrupt count allocates
/// nothing ahead of the data.
pub fn decode<R: PayloadRead>(src: &mut R) -> Result<List, R::Error> {
    let count = src.read_count()?;
    let mut list = List::new();
    for _ in 0..count {
        list.push_back(src.read_bytes()?);
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::super::codec::testing::SliceReader;
    use super::*;
    use proptest::prelude::*;

    fn element(i: usize) -> Vec<u8> {
        format!("element:{i}").into_bytes()
    }

    #[test]
    fn pushes_pops_and_indexes_at_both_ends() {
        let mut list = List::new();
        let mut model = VecDeque::new();
        for i in 0..1000 {
            if i % 3 == 0 {
                list.push_front(element(i));
                model.push_front(element(i));
            } else {
                list.push_back(element(i));
                model.push_back(element(i));
            }
        }
        assert_eq!(list.len(), 1000);
        for (i, expected) in model.iter().enumerate() {
            assert_eq!(list.get(i), Some(&expected[..]), "index {i}");
        }
        assert_eq!(list.get(1000), None);
        assert!(list.iter().eq(model.iter().map(Vec::as_slice)));
        assert!(list.iter().rev().eq(model.iter().rev().map(Vec::as_slice)));
        for _ in 0..400 {
            assert_eq!(list.pop_front().as_deref(), model.pop_front().as_deref());
            assert_eq!(list.pop_back().as_deref(), model.pop_back().as_deref());
        }
        assert_eq!(list.len(), 200);
        while let Some(e) = list.pop_back() {
            assert_eq!(Some(&*e), model.pop_back().as_deref());
        }
        assert!(list.is_empty() && model.is_empty());
        assert_eq!(list.chunk_count(), 0, "emptied chunks are dropped");
        assert_eq!(list.pop_front(), None);
    }

    /// A clone shares every chunk; a push or pop afterwards copies only the chunk it
    /// touches, and the clone still sees the old contents.
    #[test]
    fn a_write_after_a_clone_copies_one_chunk() {
        let mut list: List = (0..100_000).map(element).collect();
        let chunks = list.chunk_count();
        assert_eq!(chunks, 100_000usize.div_ceil(CHUNK));
        let snapshot = list.clone();
        assert!(list
            .chunks
            .iter()
            .zip(&snapshot.chunks)
            .all(|(a, b)| Arc::ptr_eq(a, b)));
        list.pop_back();
        list.push_front(b"new".to_vec());
        let shared = list
            .chunks
            .iter()
            .skip(1)
            .zip(snapshot.chunks.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        // The new head chunk is new; the old last chunk was copied; the rest is shared.
        assert_eq!(shared, chunks - 1);
        assert_eq!(snapshot.len(), 100_000);
        assert!(snapshot.iter().eq((0..100_000)
            .map(element)
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice)));
        assert_eq!(list.get(0), Some(&b"new"[..]));
    }

    proptest! {
        #[test]
        fn payload_round_trips(elements in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..600)) {
            let list: List = elements.iter().map(|e| e.as_slice()).collect();
            let mut bytes = Vec::new();
            let Ok(()) = encode(&list, &mut bytes);
            let mut src = SliceReader(&bytes);
            prop_assert_eq!(decode(&mut src).unwrap(), list);
            prop_assert!(src.0.is_empty());
        }
    }
}
