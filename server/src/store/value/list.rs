//! Lists: a sequence of byte strings packed into contiguous byte buffers.
//!
//! # Packs
//!
//! Elements are stored back to back in a *pack* (`Vec<u8>`), each as
//!
//! ```text
//! entry := header payload reversed-varint(len(header payload))
//! ```
//!
//! where the header says whether the payload is a string (and its length) or an integer, and
//! the trailing LEB128 varint has its bytes in reverse order, so that an entry can be read from
//! its first byte forwards or from its last byte backwards (layout at `write_entry`). An
//! element that is the canonical decimal text of an `i64` is stored as that integer in as few
//! bytes as it needs, and reads back as the same text ([`Element`]). A string of up to 126
//! bytes costs its length plus two, as in Redis's listpack; both ends of a pack are reached in
//! O(1) and an index in it by walking from the nearer end.
//!
//! # Two forms
//!
//! - **Compact** (OBJECT ENCODING `listpack`): a list that fits in one pack under
//!   `list-max-listpack-size` ([`Fill`]) is that one pack, sized to its contents, plus its
//!   element count: a 10-element list of short strings takes the 32-byte `List` and one
//!   allocation of about 12 bytes per element. Cloning copies it (it is small).
//! - **Chunked** (`quicklist`): a deque of packs, each behind its own `Arc` and within the
//!   fill bounds, with each pack's element count kept in the deque. Pushes and pops touch
//!   only the end pack; an index is found by walking the per-pack counts from the nearer
//!   end (O(packs)), then the pack. Cloning (what a snapshot does under the shard lock, and
//!   COPY) copies one pointer per pack, and a later write copies the one pack it changes
//!   (`Arc::make_mut`): a write during a snapshot costs at most one pack (8 KiB by default).
//!
//! A list becomes chunked when its pack would outgrow the bounds, and compact again when it
//! is down to one pack of at most half the bounds (the margin avoids converting back and
//! forth), as Redis 7.2 does with listpack and quicklist. Middle operations (insert, set,
//! remove, trim) rewrite only the packs they touch; a pack pushed over the bounds is split,
//! and neighbours that fit together after a removal are merged.
//!
//! # Snapshot payload (type tag `0x01`)
//!
//! ```text
//! payload := varint(count) element*count      head to tail
//! element := varint(len) bytes
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use protocol::IntText;

use super::codec::{PayloadRead, PayloadWrite};
use super::limits::Limits;
use super::string::parse_i64;
use super::Shown;

/// One end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The first element (LEFT, LPUSH).
    Head,
    /// The last element (RIGHT, RPUSH).
    Tail,
}

/// The bounds of one pack, from `list-max-listpack-size`: at most `max_bytes` bytes and
/// `max_count` elements. A single element larger than `max_bytes` gets a pack of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    max_bytes: usize,
    max_count: usize,
}

/// The byte bound of a pack whose bound is an element count (Redis's safety limit).
const COUNTED_PACK_BYTES: usize = 8192;

impl Fill {
    /// The default, `list-max-listpack-size -2`: 8 KiB per pack.
    pub const DEFAULT: Fill = Fill {
        max_bytes: 8192,
        max_count: usize::MAX,
    };

    /// The bounds `limits` set: -1 to -5 bound bytes (4 to 64 KiB), a positive number
    /// bounds elements (0 counts as 1, as in Redis) within 8 KiB.
    pub fn from_limits(limits: &Limits) -> Fill {
        match limits.list_chunk_bytes() {
            Some(bytes) => Fill {
                max_bytes: bytes,
                max_count: usize::MAX,
            },
            None => Fill {
                max_bytes: COUNTED_PACK_BYTES,
                max_count: usize::try_from(limits.list_max_listpack_size)
                    .unwrap_or(1)
                    .clamp(1, u32::MAX as usize),
            },
        }
    }

    /// True if a pack of `bytes` bytes holding `count` elements is within the bounds.
    fn fits(self, bytes: usize, count: usize) -> bool {
        bytes <= self.max_bytes && count <= self.max_count
    }

    /// True if a single pack this small may become the whole (compact) list again.
    fn fits_half(self, bytes: usize, count: usize) -> bool {
        bytes <= self.max_bytes / 2 && count <= (self.max_count / 2).max(1)
    }
}

impl Default for Fill {
    fn default() -> Self {
        Fill::DEFAULT
    }
}

// ---------------------------------------------------------------------------------------
// Pack encoding.

/// One element as a pack holds it: bytes, or an integer kept in binary (an element that is
/// the canonical decimal text of an `i64`, which it reads back as).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element<'a> {
    /// A string element.
    Bytes(&'a [u8]),
    /// An element whose text is this integer's decimal form.
    Int(i64),
}

impl<'a> Element<'a> {
    /// How `bytes` is stored: as an integer when it is one in canonical form (Redis's
    /// `string2ll` rules: no sign but `-`, no leading zero, no spaces), else as bytes.
    pub fn classify(bytes: &'a [u8]) -> Element<'a> {
        match bytes.first() {
            Some(b'-' | b'0'..=b'9') if bytes.len() <= 20 => {
                parse_i64(bytes).map_or(Element::Bytes(bytes), Element::Int)
            }
            _ => Element::Bytes(bytes),
        }
    }

    /// Runs `f` on the element's bytes (an integer formatted on the stack).
    #[inline]
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Element::Bytes(bytes) => f(bytes),
            Element::Int(n) => f(IntText::new(n).as_bytes()),
        }
    }

    /// The element's bytes, copied.
    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(<[u8]>::to_vec)
    }

    /// True if the element equals `needle`.
    #[inline]
    pub fn matches(self, needle: &Needle<'_>) -> bool {
        match self {
            Element::Bytes(bytes) => needle.int.is_none() && bytes == needle.bytes,
            Element::Int(n) => needle.int == Some(n),
        }
    }
}

/// A value searched for in a list (LPOS, LREM, LINSERT's pivot), classified once so that
/// each comparison is a plain comparison.
#[derive(Debug, Clone, Copy)]
pub struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    /// The needle for `bytes`.
    pub fn new(bytes: &'a [u8]) -> Needle<'a> {
        let int = match Element::classify(bytes) {
            Element::Int(n) => Some(n),
            Element::Bytes(_) => None,
        };
        Needle { bytes, int }
    }
}

// Entry layout: `header payload backlen`. The first header byte says what follows:
//
//   0xxxxxxx            a string of 0..=127 bytes (x), then the bytes
//   10xxxxxx            an integer 0..=63 (x), no payload
//   11000nnn            an integer in n + 1 bytes, little-endian two's complement
//   11100000 varint     a string of the varint's length, then the bytes
//
// and `backlen` is the length of `header payload` as a LEB128 varint with its bytes reversed,
// so that the entry can be found from its end. A string of up to 126 bytes costs 2 bytes
// more than itself; an integer 2 to 10 bytes in all.

const SMALL_INT: u8 = 0x80;
const WIDE_INT: u8 = 0xC0;
const LONG_STRING: u8 = 0xE0;

/// Bytes LEB128 takes for `n`.
fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Bytes of the smallest two's complement form of `n`.
fn int_width(n: i64) -> usize {
    let significant = if n < 0 {
        64 - n.leading_ones()
    } else {
        64 - n.leading_zeros()
    };
    (significant as usize + 1).div_ceil(8).clamp(1, 8)
}

/// Length of an entry's header and payload.
fn body_len(element: Element<'_>) -> usize {
    match element {
        Element::Bytes(bytes) if bytes.len() < 128 => 1 + bytes.len(),
        Element::Bytes(bytes) => 1 + varint_len(bytes.len()) + bytes.len(),
        Element::Int(n) if (0..64).contains(&n) => 1,
        Element::Int(n) => 1 + int_width(n),
    }
}

/// Bytes the entry for `element` takes.
fn entry_size(element: Element<'_>) -> usize {
    let body = body_len(element);
    body + varint_len(body)
}

/// Writes `n` as LEB128 into `out`, returning the bytes written.
fn put_varint(out: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out[i] = low;
            return i + 1;
        }
        out[i] = low | 0x80;
        i += 1;
    }
}

/// Writes the entry for `element` into `out` (exactly `entry_size(element)` bytes); see the
/// layout above `SMALL_INT`.
fn write_entry(out: &mut [u8], element: Element<'_>) {
    let body = match element {
        Element::Bytes(bytes) if bytes.len() < 128 => {
            out[0] = bytes.len() as u8;
            out[1..=bytes.len()].copy_from_slice(bytes);
            1 + bytes.len()
        }
        Element::Bytes(bytes) => {
            out[0] = LONG_STRING;
            let at = 1 + put_varint(&mut out[1..], bytes.len());
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at + bytes.len()
        }
        Element::Int(n) if (0..64).contains(&n) => {
            out[0] = SMALL_INT | n as u8;
            1
        }
        Element::Int(n) => {
            let width = int_width(n);
            out[0] = WIDE_INT | (width - 1) as u8;
            out[1..=width].copy_from_slice(&n.to_le_bytes()[..width]);
            1 + width
        }
    };
    let tail = &mut out[body..];
    let n = put_varint(tail, body);
    tail[..n].reverse();
}

/// Appends the entry for `element` to `pack`.
fn append_entry(pack: &mut Vec<u8>, element: Element<'_>) {
    let at = pack.len();
    pack.resize(at + entry_size(element), 0);
    write_entry(&mut pack[at..], element);
}

/// Inserts the entry for `element` at byte `offset` of `pack`.
fn insert_entry(pack: &mut Vec<u8>, offset: usize, element: Element<'_>) {
    let size = entry_size(element);
    let old = pack.len();
    pack.resize(old + size, 0);
    pack.copy_within(offset..old, offset + size);
    write_entry(&mut pack[offset..offset + size], element);
}

/// The element of the entry starting at `offset`, and the offset of the next entry.
#[inline]
fn entry_at(pack: &[u8], offset: usize) -> (Element<'_>, usize) {
    let first = pack[offset];
    let (element, body) = match first {
        0..=0x7f => {
            let len = usize::from(first);
            let start = offset + 1;
            (Element::Bytes(&pack[start..start + len]), 1 + len)
        }
        0x80..=0xbf => (Element::Int(i64::from(first & 0x3f)), 1),
        0xc0..=0xc7 => {
            let width = usize::from(first & 0x07) + 1;
            let mut bytes = [0u8; 8];
            bytes[..width].copy_from_slice(&pack[offset + 1..offset + 1 + width]);
            // Sign-extend from the top byte written.
            let shift = 64 - 8 * width as u32;
            let n = (i64::from_le_bytes(bytes) << shift) >> shift;
            (Element::Int(n), 1 + width)
        }
        _ => {
            let (mut len, mut shift, mut at) = (0usize, 0u32, offset + 1);
            loop {
                let byte = pack[at];
                at += 1;
                len |= usize::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            (Element::Bytes(&pack[at..at + len]), at + len - offset)
        }
    };
    (element, offset + body + varint_len(body))
}

/// The offset where the entry ending at `end` starts.
#[inline]
fn entry_start_before(pack: &[u8], end: usize) -> usize {
    let (mut body, mut shift, mut at) = (0usize, 0u32, end);
    loop {
        at -= 1;
        let byte = pack[at];
        body |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    at - body
}

/// The element of the entry ending at `end`, and the offset where that entry starts.
#[inline]
fn entry_before(pack: &[u8], end: usize) -> (Element<'_>, usize) {
    let start = entry_start_before(pack, end);
    (entry_at(pack, start).0, start)
}

/// Byte offset of entry `index` in a pack of `count` entries (`index == count`: the end),
/// walking from the nearer end.
fn offset_of(pack: &[u8], count: usize, index: usize) -> usize {
    if index <= count / 2 {
        let mut offset = 0;
        for _ in 0..index {
            offset = entry_at(pack, offset).1;
        }
        offset
    } else {
        let mut offset = pack.len();
        for _ in index..count {
            offset = entry_start_before(pack, offset);
        }
        offset
    }
}

/// Removes the entry at byte `offset` and returns its element.
fn remove_entry(pack: &mut Vec<u8>, offset: usize) -> Vec<u8> {
    let (element, next) = entry_at(pack, offset);
    let element = element.to_vec();
    pack.drain(offset..next);
    element
}

/// Removes the last entry and returns its element.
fn remove_last_entry(pack: &mut Vec<u8>) -> Vec<u8> {
    let (element, start) = entry_before(pack, pack.len());
    let element = element.to_vec();
    pack.truncate(start);
    element
}

/// Replaces the entry at byte `offset` by one for `element`.
fn replace_entry(pack: &mut Vec<u8>, offset: usize, element: Element<'_>) {
    let (_, next) = entry_at(pack, offset);
    let size = entry_size(element);
    if size == next - offset {
        write_entry(&mut pack[offset..next], element);
        return;
    }
    pack.drain(offset..next);
    insert_entry(pack, offset, element);
}

/// The entries of one pack, from both ends.
#[derive(Clone)]
struct PackIter<'a> {
    pack: &'a [u8],
    front: usize,
    back: usize,
}

impl<'a> PackIter<'a> {
    fn new(pack: &'a [u8]) -> Self {
        PackIter {
            pack,
            front: 0,
            back: pack.len(),
        }
    }

    fn from_offset(pack: &'a [u8], offset: usize) -> Self {
        PackIter {
            pack,
            front: offset,
            back: pack.len(),
        }
    }
}

impl<'a> Iterator for PackIter<'a> {
    type Item = Element<'a>;

    #[inline]
    fn next(&mut self) -> Option<Element<'a>> {
        if self.front >= self.back {
            return None;
        }
        let (element, next) = entry_at(self.pack, self.front);
        self.front = next;
        Some(element)
    }
}

impl<'a> DoubleEndedIterator for PackIter<'a> {
    #[inline]
    fn next_back(&mut self) -> Option<Element<'a>> {
        if self.front >= self.back {
            return None;
        }
        let (element, start) = entry_before(self.pack, self.back);
        self.back = start;
        Some(element)
    }
}

// ---------------------------------------------------------------------------------------
// The chunked form.

/// One pack of a chunked list and its element count.
#[derive(Clone)]
struct Slot {
    pack: Arc<Vec<u8>>,
    len: u32,
}

impl Slot {
    fn new(pack: Vec<u8>, len: usize) -> Slot {
        Slot {
            pack: Arc::new(pack),
            len: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    fn count(&self) -> usize {
        self.len as usize
    }
}

/// A list of several packs; see the module documentation.
#[derive(Clone, Default)]
struct Chunked {
    /// Never holds an empty pack.
    slots: VecDeque<Slot>,
    len: usize,
}

/// A new end pack's starting capacity for an entry of `size` bytes: a power of two, so that
/// doubling ends exactly at a power-of-two byte bound (an exact allocator size class).
fn end_pack_capacity(size: usize) -> usize {
    size.next_power_of_two().max(64)
}

impl Chunked {
    /// The slot holding element `index` (< len) and the index within it, walking the counts
    /// from the nearer end.
    fn locate(&self, index: usize) -> (usize, usize) {
        if index < self.len / 2 {
            let mut skipped = 0;
            for (i, slot) in self.slots.iter().enumerate() {
                if index < skipped + slot.count() {
                    return (i, index - skipped);
                }
                skipped += slot.count();
            }
        } else {
            let mut after = self.len;
            for (i, slot) in self.slots.iter().enumerate().rev() {
                after -= slot.count();
                if index >= after {
                    return (i, index - after);
                }
            }
        }
        (0, 0)
    }

    fn push(&mut self, end: End, element: Element<'_>, fill: Fill) {
        let size = entry_size(element);
        let slot = match end {
            End::Head => self.slots.front_mut(),
            End::Tail => self.slots.back_mut(),
        };
        match slot {
            Some(slot) if fill.fits(slot.pack.len() + size, slot.count() + 1) => {
                let pack = Arc::make_mut(&mut slot.pack);
                match end {
                    End::Head => insert_entry(pack, 0, element),
                    End::Tail => append_entry(pack, element),
                }
                slot.len += 1;
            }
            _ => {
                let mut pack = Vec::with_capacity(end_pack_capacity(size));
                append_entry(&mut pack, element);
                let slot = Slot::new(pack, 1);
                match end {
                    End::Head => self.slots.push_front(slot),
                    End::Tail => self.slots.push_back(slot),
                }
            }
        }
        self.len += 1;
    }

    fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let slot = match end {
            End::Head => self.slots.front_mut()?,
            End::Tail => self.slots.back_mut()?,
        };
        let element = if slot.len == 1 {
            let element = entry_at(&slot.pack, 0).0.to_vec();
            match end {
                End::Head => self.slots.pop_front(),
                End::Tail => self.slots.pop_back(),
            };
            element
        } else {
            let pack = Arc::make_mut(&mut slot.pack);
            slot.len -= 1;
            match end {
                End::Head => remove_entry(pack, 0),
                End::Tail => remove_last_entry(pack),
            }
        };
        self.len -= 1;
        Some(element)
    }

    /// Brings slot `i`, just rewritten, back within the bounds: drops it if empty, splits it
    /// if over, or merges it into a neighbour when both fit in one pack.
    fn settle(&mut self, i: usize, fill: Fill) {
        let Some(slot) = self.slots.get(i) else {
            return;
        };
        if slot.len == 0 {
            self.slots.remove(i);
            return;
        }
        if !fill.fits(slot.pack.len(), slot.count()) {
            if slot.len > 1 {
                let pieces = split(&slot.pack, fill);
                self.slots.remove(i);
                for (k, (pack, len)) in pieces.into_iter().enumerate() {
                    self.slots.insert(i + k, Slot::new(pack, len));
                }
            }
            return;
        }
        if i + 1 < self.slots.len() && self.merge_if_fits(i, fill) {
            return;
        }
        if i > 0 {
            self.merge_if_fits(i - 1, fill);
        }
    }

    /// Merges slot `i + 1` into slot `i` if the two fit in one pack; true if it did.
    fn merge_if_fits(&mut self, i: usize, fill: Fill) -> bool {
        let (Some(a), Some(b)) = (self.slots.get(i), self.slots.get(i + 1)) else {
            return false;
        };
        if !fill.fits(a.pack.len() + b.pack.len(), a.count() + b.count()) {
            return false;
        }
        let Some(b) = self.slots.remove(i + 1) else {
            return false;
        };
        let a = &mut self.slots[i];
        Arc::make_mut(&mut a.pack).extend_from_slice(&b.pack);
        a.len += b.len;
        true
    }

    fn set(&mut self, index: usize, element: Element<'_>, fill: Fill) {
        let (i, local) = self.locate(index);
        let slot = &mut self.slots[i];
        let offset = offset_of(&slot.pack, slot.count(), local);
        replace_entry(Arc::make_mut(&mut slot.pack), offset, element);
        self.settle(i, fill);
    }

    /// Inserts before element `index` (< len).
    fn insert(&mut self, index: usize, element: Element<'_>, fill: Fill) {
        let (i, local) = self.locate(index);
        let slot = &mut self.slots[i];
        let offset = offset_of(&slot.pack, slot.count(), local);
        insert_entry(Arc::make_mut(&mut slot.pack), offset, element);
        slot.len += 1;
        self.len += 1;
        self.settle(i, fill);
    }

    fn remove_matching(
        &mut self,
        element: &Needle<'_>,
        from: End,
        limit: usize,
        fill: Fill,
    ) -> usize {
        let mut removed = 0;
        let order: Vec<usize> = match from {
            End::Head => (0..self.slots.len()).collect(),
            End::Tail => (0..self.slots.len()).rev().collect(),
        };
        let mut touched = Vec::new();
        for i in order {
            if removed >= limit {
                break;
            }
            let slot = &mut self.slots[i];
            if let Some((pack, gone)) = without_matches(&slot.pack, element, from, limit - removed)
            {
                slot.pack = Arc::new(pack);
                slot.len -= u32::try_from(gone).unwrap_or(slot.len);
                removed += gone;
                touched.push(i);
            }
        }
        self.len -= removed;
        // Settle from the highest index down, so that earlier indexes stay valid.
        touched.sort_unstable();
        for &i in touched.iter().rev() {
            self.settle(i, fill);
        }
        removed
    }

    /// Keeps elements `range` only.
    fn retain_range(&mut self, range: Range<usize>, fill: Fill) {
        let mut drop_front = range.start;
        while let Some(first) = self.slots.front() {
            if first.count() > drop_front {
                break;
            }
            drop_front -= first.count();
            self.slots.pop_front();
        }
        let mut drop_back = self.len - range.end;
        while let Some(last) = self.slots.back() {
            if last.count() > drop_back {
                break;
            }
            drop_back -= last.count();
            self.slots.pop_back();
        }
        self.len = range.len();
        if drop_front > 0 {
            if let Some(first) = self.slots.front_mut() {
                let cut = offset_of(&first.pack, first.count(), drop_front);
                Arc::make_mut(&mut first.pack).drain(..cut);
                first.len -= drop_front as u32;
            }
        }
        if drop_back > 0 {
            if let Some(last) = self.slots.back_mut() {
                let keep = last.count() - drop_back;
                let cut = offset_of(&last.pack, last.count(), keep);
                Arc::make_mut(&mut last.pack).truncate(cut);
                last.len = keep as u32;
            }
        }
        if self.slots.len() > 1 {
            self.settle(self.slots.len() - 1, fill);
        }
        self.settle(0, fill);
    }
}

/// Splits `pack` into packs within `fill` (greedily, in order), with their counts.
fn split(pack: &[u8], fill: Fill) -> Vec<(Vec<u8>, usize)> {
    let mut pieces: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut current = Vec::new();
    let mut count = 0;
    let mut offset = 0;
    while offset < pack.len() {
        let (_, next) = entry_at(pack, offset);
        let entry = &pack[offset..next];
        if count > 0 && !fill.fits(current.len() + entry.len(), count + 1) {
            pieces.push((std::mem::take(&mut current), count));
            count = 0;
        }
        current.extend_from_slice(entry);
        count += 1;
        offset = next;
    }
    if count > 0 {
        pieces.push((current, count));
    }
    pieces
}

/// `pack` without the first `limit` entries equal to `element` counting `from` one end, and
/// how many that removed; `None` if it holds none (so an untouched pack is not copied).
fn without_matches(
    pack: &[u8],
    element: &Needle<'_>,
    from: End,
    limit: usize,
) -> Option<(Vec<u8>, usize)> {
    // Byte ranges of the matching entries, in pack order.
    let mut matches: Vec<Range<usize>> = Vec::new();
    match from {
        End::Head => {
            let mut offset = 0;
            while offset < pack.len() && matches.len() < limit {
                let (found, next) = entry_at(pack, offset);
                if found.matches(element) {
                    matches.push(offset..next);
                }
                offset = next;
            }
        }
        End::Tail => {
            let mut end = pack.len();
            while end > 0 && matches.len() < limit {
                let (found, start) = entry_before(pack, end);
                if found.matches(element) {
                    matches.push(start..end);
                }
                end = start;
            }
            matches.reverse();
        }
    }
    if matches.is_empty() {
        return None;
    }
    let removed_bytes: usize = matches.iter().map(|r| r.len()).sum();
    let mut kept = Vec::with_capacity(pack.len() - removed_bytes);
    let mut at = 0;
    for range in &matches {
        kept.extend_from_slice(&pack[at..range.start]);
        at = range.end;
    }
    kept.extend_from_slice(&pack[at..]);
    Some((kept, matches.len()))
}

// ---------------------------------------------------------------------------------------
// The list.

#[derive(Clone)]
enum Repr {
    /// One pack sized to its contents, with its element count.
    Compact { pack: Vec<u8>, len: u32 },
    /// Several packs (or one too large to be compact).
    Chunked(Box<Chunked>),
}

/// A list value; see the module documentation.
#[derive(Clone)]
pub struct List {
    repr: Repr,
}

impl Default for List {
    fn default() -> Self {
        List::new()
    }
}

/// The elements of a list from head to tail, double-ended.
pub struct Iter<'a>(IterInner<'a>);

type IterInner<'a> = std::iter::Chain<
    PackIter<'a>,
    std::iter::FlatMap<
        std::collections::vec_deque::Iter<'a, Slot>,
        PackIter<'a>,
        fn(&'a Slot) -> PackIter<'a>,
    >,
>;

impl<'a> Iterator for Iter<'a> {
    type Item = Element<'a>;

    #[inline]
    fn next(&mut self) -> Option<Element<'a>> {
        self.0.next()
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    #[inline]
    fn next_back(&mut self) -> Option<Element<'a>> {
        self.0.next_back()
    }
}

fn slot_iter(slot: &Slot) -> PackIter<'_> {
    PackIter::new(&slot.pack)
}

impl List {
    /// An empty list.
    pub const fn new() -> Self {
        List {
            repr: Repr::Compact {
                pack: Vec::new(),
                len: 0,
            },
        }
    }

    /// The name OBJECT ENCODING reports for this list's representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Compact { .. } => "listpack",
            Repr::Chunked(_) => "quicklist",
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Compact { len, .. } => *len as usize,
            Repr::Chunked(chunked) => chunked.len,
        }
    }

    /// True when the list has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of packs: what cloning the list copies (one pointer each when chunked).
    pub fn chunk_count(&self) -> usize {
        match &self.repr {
            Repr::Compact { len, .. } => usize::from(*len > 0),
            Repr::Chunked(chunked) => chunked.slots.len(),
        }
    }

    /// Packs this list does not share with a clone: those written since it was cloned (a
    /// compact list is copied by a clone, so it counts as one).
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        match &self.repr {
            Repr::Compact { len, .. } => usize::from(*len > 0),
            Repr::Chunked(chunked) => chunked
                .slots
                .iter()
                .filter(|slot| Arc::strong_count(&slot.pack) == 1)
                .count(),
        }
    }

    /// The chunked form, converting a compact list into it (its pack becomes the first).
    fn chunked_mut(&mut self) -> &mut Chunked {
        if let Repr::Compact { pack, len } = &mut self.repr {
            let mut chunked = Chunked::default();
            if *len > 0 {
                chunked.slots.push_back(Slot {
                    pack: Arc::new(std::mem::take(pack)),
                    len: *len,
                });
                chunked.len = *len as usize;
            }
            self.repr = Repr::Chunked(Box::new(chunked));
        }
        match &mut self.repr {
            Repr::Chunked(chunked) => chunked,
            Repr::Compact { .. } => unreachable!("converted above"),
        }
    }

    /// After a removal: a chunked list down to one small pack becomes compact again.
    fn settle_shrunk(&mut self, fill: Fill) {
        let Repr::Chunked(chunked) = &mut self.repr else {
            return;
        };
        if chunked.slots.len() > 1 {
            return;
        }
        let Some(slot) = chunked.slots.pop_front() else {
            self.repr = Repr::Compact {
                pack: Vec::new(),
                len: 0,
            };
            return;
        };
        if !fill.fits_half(slot.pack.len(), slot.count()) {
            chunked.slots.push_front(slot);
            return;
        }
        let mut pack = Arc::try_unwrap(slot.pack).unwrap_or_else(|shared| (*shared).clone());
        pack.shrink_to_fit();
        self.repr = Repr::Compact {
            pack,
            len: slot.len,
        };
    }

    /// After a write to a compact list: one that outgrew `fill` becomes chunked.
    fn settle_grown(&mut self, fill: Fill) {
        if let Repr::Compact { pack, len } = &self.repr {
            if !fill.fits(pack.len(), *len as usize) {
                self.chunked_mut().settle(0, fill);
            }
        }
    }

    /// Pushes `element` at `end` (LPUSH, RPUSH), within the pack bounds `fill`.
    pub fn push(&mut self, end: End, element: &[u8], fill: Fill) {
        let element = Element::classify(element);
        match &mut self.repr {
            Repr::Compact { pack, len } => {
                let size = entry_size(element);
                if fill.fits(pack.len() + size, *len as usize + 1) {
                    // Sized to the contents: growth within an allocator size class is
                    // in place, and the classes grow geometrically.
                    pack.reserve_exact(size);
                    match end {
                        End::Head => insert_entry(pack, 0, element),
                        End::Tail => append_entry(pack, element),
                    }
                    *len += 1;
                } else {
                    self.chunked_mut().push(end, element, fill);
                }
            }
            Repr::Chunked(chunked) => chunked.push(end, element, fill),
        }
    }

    /// Appends an element at the tail, within the default bounds.
    pub fn push_back(&mut self, element: impl AsRef<[u8]>) {
        self.push(End::Tail, element.as_ref(), Fill::DEFAULT);
    }

    /// Prepends an element at the head, within the default bounds.
    pub fn push_front(&mut self, element: impl AsRef<[u8]>) {
        self.push(End::Head, element.as_ref(), Fill::DEFAULT);
    }

    /// Removes and returns the element at `end` (LPOP, RPOP); `fill` decides whether a
    /// chunked list that shrank becomes compact.
    pub fn pop(&mut self, end: End, fill: Fill) -> Option<Vec<u8>> {
        match &mut self.repr {
            Repr::Compact { pack, len } => {
                if *len == 0 {
                    return None;
                }
                *len -= 1;
                Some(match end {
                    End::Head => remove_entry(pack, 0),
                    End::Tail => remove_last_entry(pack),
                })
            }
            Repr::Chunked(chunked) => {
                let element = chunked.pop(end);
                if chunked.slots.len() <= 1 {
                    self.settle_shrunk(fill);
                }
                element
            }
        }
    }

    /// Removes and returns the tail element.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        self.pop(End::Tail, Fill::DEFAULT)
    }

    /// Removes and returns the head element.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        self.pop(End::Head, Fill::DEFAULT)
    }

    /// The element at `index` from the head (LINDEX).
    pub fn get(&self, index: usize) -> Option<Element<'_>> {
        if index >= self.len() {
            return None;
        }
        let (pack, count, local) = match &self.repr {
            Repr::Compact { pack, len } => (&pack[..], *len as usize, index),
            Repr::Chunked(chunked) => {
                let (i, local) = chunked.locate(index);
                let slot = chunked.slots.get(i)?;
                (&slot.pack[..], slot.count(), local)
            }
        };
        let offset = offset_of(pack, count, local);
        Some(entry_at(pack, offset).0)
    }

    /// Replaces the element at `index` (< len; LSET).
    pub fn set(&mut self, index: usize, element: &[u8], fill: Fill) {
        if index >= self.len() {
            return;
        }
        let element = Element::classify(element);
        match &mut self.repr {
            Repr::Compact { pack, len } => {
                let offset = offset_of(pack, *len as usize, index);
                replace_entry(pack, offset, element);
                self.settle_grown(fill);
            }
            Repr::Chunked(chunked) => chunked.set(index, element, fill),
        }
    }

    /// Inserts `element` before position `index` (`index == len` appends; LINSERT).
    pub fn insert(&mut self, index: usize, element: &[u8], fill: Fill) {
        let len = self.len();
        if index >= len {
            self.push(End::Tail, element, fill);
            return;
        }
        if index == 0 {
            self.push(End::Head, element, fill);
            return;
        }
        let element = Element::classify(element);
        match &mut self.repr {
            Repr::Compact { pack, len } => {
                let offset = offset_of(pack, *len as usize, index);
                insert_entry(pack, offset, element);
                *len += 1;
                self.settle_grown(fill);
            }
            Repr::Chunked(chunked) => chunked.insert(index, element, fill),
        }
    }

    /// The position of the first element equal to `element`, from the head.
    pub fn position(&self, element: &[u8]) -> Option<usize> {
        let needle = Needle::new(element);
        self.iter().position(|e| e.matches(&needle))
    }

    /// Removes up to `limit` elements equal to `element`, counting `from` one end (LREM);
    /// returns how many it removed.
    pub fn remove_matching(
        &mut self,
        element: &[u8],
        from: End,
        limit: usize,
        fill: Fill,
    ) -> usize {
        if limit == 0 {
            return 0;
        }
        let needle = Needle::new(element);
        let element = &needle;
        let removed = match &mut self.repr {
            Repr::Compact { pack, len } => match without_matches(pack, element, from, limit) {
                Some((mut kept, removed)) => {
                    kept.shrink_to_fit();
                    *pack = kept;
                    *len -= removed as u32;
                    removed
                }
                None => 0,
            },
            Repr::Chunked(chunked) => chunked.remove_matching(element, from, limit, fill),
        };
        self.settle_shrunk(fill);
        removed
    }

    /// Keeps only the elements in `range` (LTRIM); `range` must lie within the list.
    pub fn retain_range(&mut self, range: Range<usize>, fill: Fill) {
        let len = self.len();
        if range.start >= range.end || range.end > len {
            *self = List::new();
            return;
        }
        match &mut self.repr {
            Repr::Compact { pack, len: count } => {
                let end = offset_of(pack, *count as usize, range.end);
                pack.truncate(end);
                let start = offset_of(pack, range.end, range.start);
                pack.drain(..start);
                *count = range.len() as u32;
                pack.shrink_to_fit();
            }
            Repr::Chunked(chunked) => chunked.retain_range(range, fill),
        }
        self.settle_shrunk(fill);
    }

    /// The elements from head to tail.
    pub fn iter(&self) -> Iter<'_> {
        let slot_iter: fn(&Slot) -> PackIter<'_> = slot_iter;
        Iter(match &self.repr {
            Repr::Compact { pack, .. } => {
                PackIter::new(pack).chain(EMPTY_SLOTS.iter().flat_map(slot_iter))
            }
            Repr::Chunked(chunked) => {
                PackIter::new(&[]).chain(chunked.slots.iter().flat_map(slot_iter))
            }
        })
    }

    /// The elements at positions `start..end` (clamped to the list), found by walking from
    /// the nearer end to `start` (LRANGE).
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = Element<'_>> + '_ {
        let end = end.min(self.len());
        let start = start.min(end);
        let slot_iter: fn(&Slot) -> PackIter<'_> = slot_iter;
        let iter = match &self.repr {
            Repr::Compact { pack, len } => {
                let offset = offset_of(pack, *len as usize, start);
                PackIter::from_offset(pack, offset).chain(EMPTY_SLOTS.iter().flat_map(slot_iter))
            }
            Repr::Chunked(chunked) if start < chunked.len => {
                let (i, local) = chunked.locate(start);
                let slot = &chunked.slots[i];
                let offset = offset_of(&slot.pack, slot.count(), local);
                PackIter::from_offset(&slot.pack, offset)
                    .chain(chunked.slots.range(i + 1..).flat_map(slot_iter))
            }
            Repr::Chunked(_) => PackIter::new(&[]).chain(EMPTY_SLOTS.iter().flat_map(slot_iter)),
        };
        iter.take(end - start)
    }
}

/// An empty slot deque, for iterators over a compact list.
static EMPTY_SLOTS: VecDeque<Slot> = VecDeque::new();

impl<E: AsRef<[u8]>> FromIterator<E> for List {
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
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(ShownElement))
            .finish()
    }
}

/// An element shown as [`Shown`] shows bytes.
struct ShownElement<'a>(Element<'a>);

impl fmt::Debug for ShownElement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.with_bytes(|bytes| fmt::Debug::fmt(&Shown(bytes), f))
    }
}

/// Writes a list's payload.
pub fn encode<W: PayloadWrite>(list: &List, out: &mut W) -> Result<(), W::Error> {
    out.put_count(list.len())?;
    for element in list.iter() {
        element.with_bytes(|bytes| out.put_bytes(bytes))?;
    }
    Ok(())
}

/// Reads a list's payload. Packs fill as elements arrive, so a corrupt count allocates
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

    /// Small bounds, so that a few elements already split and merge packs.
    fn tiny(max_bytes: usize, max_count: usize) -> Fill {
        Fill {
            max_bytes,
            max_count,
        }
    }

    impl List {
        /// Checks the representation's invariants under `fill`.
        fn check(&self, fill: Fill) {
            let count_entries = |pack: &[u8]| {
                let mut offset = 0;
                let mut n = 0;
                while offset < pack.len() {
                    offset = entry_at(pack, offset).1;
                    n += 1;
                }
                assert_eq!(offset, pack.len(), "entries end at the pack's end");
                n
            };
            match &self.repr {
                Repr::Compact { pack, len } => {
                    assert_eq!(count_entries(pack), *len as usize);
                    assert!(fill.fits(pack.len(), *len as usize) || *len == 1);
                }
                Repr::Chunked(chunked) => {
                    let mut total = 0;
                    for slot in &chunked.slots {
                        assert!(slot.len > 0, "no empty pack");
                        assert_eq!(count_entries(&slot.pack), slot.count());
                        assert!(
                            fill.fits(slot.pack.len(), slot.count()) || slot.len == 1,
                            "pack of {} bytes, {} elements over {fill:?}",
                            slot.pack.len(),
                            slot.len
                        );
                        total += slot.count();
                    }
                    assert_eq!(total, chunked.len);
                }
            }
        }

        /// Bytes this list holds on the heap, the `Box<List>` a `Value` keeps it in
        /// included, in jemalloc's size classes.
        #[allow(unsafe_code)]
        fn heap_bytes(&self) -> usize {
            // SAFETY: nallocx only computes the size class of a request; it allocates
            // nothing and reads no memory of ours.
            let class = |size: usize| {
                if size == 0 {
                    0
                } else {
                    unsafe { tikv_jemalloc_sys::nallocx(size, 0) }
                }
            };
            let own = class(std::mem::size_of::<List>());
            own + match &self.repr {
                Repr::Compact { pack, .. } => class(pack.capacity()),
                Repr::Chunked(chunked) => {
                    class(std::mem::size_of::<Chunked>())
                        + class(chunked.slots.capacity() * std::mem::size_of::<Slot>())
                        + chunked
                            .slots
                            .iter()
                            .map(|slot| {
                                class(std::mem::size_of::<Vec<u8>>() + 16)
                                    + class(slot.pack.capacity())
                            })
                            .sum::<usize>()
                }
            }
        }
    }

    #[test]
    fn entries_read_both_ways_at_every_length_class() {
        let long: Vec<Vec<u8>> = [
            0usize, 1, 63, 64, 125, 126, 127, 128, 200, 16_383, 16_384, 70_000,
        ]
        .iter()
        .map(|&len| (0..len).map(|i| b'a' + (i % 26) as u8).collect())
        .collect();
        let ints = [
            0,
            1,
            63,
            64,
            127,
            128,
            255,
            -1,
            -64,
            -128,
            -129,
            32_767,
            -32_768,
            1 << 40,
            -(1 << 40),
            i64::MAX,
            i64::MIN,
        ];
        let mut elements: Vec<Element<'_>> = long.iter().map(|e| Element::Bytes(e)).collect();
        elements.extend(ints.iter().map(|&n| Element::Int(n)));
        let mut pack = Vec::new();
        for &element in &elements {
            append_entry(&mut pack, element);
        }
        let total: usize = elements.iter().map(|&e| entry_size(e)).sum();
        assert_eq!(pack.len(), total);
        assert!(PackIter::new(&pack).eq(elements.iter().copied()));
        assert!(PackIter::new(&pack)
            .rev()
            .eq(elements.iter().rev().copied()));
        // Sizes: a short string costs 2 bytes more, small integers 2 or 3 bytes in all.
        assert_eq!(entry_size(Element::Bytes(b"abc")), 5);
        assert_eq!(entry_size(Element::Int(5)), 2);
        assert_eq!(entry_size(Element::Int(100)), 3);
        assert_eq!(entry_size(Element::Int(123_456)), 5);
        assert_eq!(entry_size(Element::Int(i64::MIN)), 10);
    }

    #[test]
    fn only_canonical_integers_are_stored_as_integers() {
        for text in [
            "0",
            "-1",
            "123",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            let element = Element::classify(text.as_bytes());
            assert!(matches!(element, Element::Int(_)), "{text}");
            assert_eq!(element.to_vec(), text.as_bytes());
        }
        for text in [
            "",
            "-0",
            "007",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "9223372036854775808",
            "abc",
            "-",
        ] {
            assert_eq!(
                Element::classify(text.as_bytes()),
                Element::Bytes(text.as_bytes())
            );
        }
        let needle = Needle::new(b"12");
        assert!(Element::Int(12).matches(&needle));
        assert!(!Element::Bytes(b"12").matches(&Needle::new(b"012")));
        assert!(Element::Bytes(b"012").matches(&Needle::new(b"012")));
        assert!(!Element::Int(12).matches(&Needle::new(b"012")));
    }

    #[test]
    fn pushes_pops_and_indexes_at_both_ends() {
        let mut list = List::new();
        let mut model = VecDeque::new();
        for i in 0..5000 {
            if i % 3 == 0 {
                list.push_front(element(i));
                model.push_front(element(i));
            } else {
                list.push_back(element(i));
                model.push_back(element(i));
            }
        }
        list.check(Fill::DEFAULT);
        assert_eq!(list.encoding(), "quicklist");
        assert_eq!(list.len(), 5000);
        for (i, expected) in model.iter().enumerate() {
            assert_eq!(
                list.get(i).map(Element::to_vec).as_ref(),
                Some(expected),
                "index {i}"
            );
        }
        assert_eq!(list.get(5000), None);
        assert!(list.iter().map(Element::to_vec).eq(model.iter().cloned()));
        assert!(list
            .iter()
            .rev()
            .map(Element::to_vec)
            .eq(model.iter().rev().cloned()));
        for _ in 0..2000 {
            assert_eq!(list.pop_front(), model.pop_front());
            assert_eq!(list.pop_back(), model.pop_back());
        }
        list.check(Fill::DEFAULT);
        assert_eq!(list.len(), 1000);
        while let Some(e) = list.pop_back() {
            assert_eq!(Some(e), model.pop_back());
        }
        assert!(list.is_empty() && model.is_empty());
        assert_eq!(list.chunk_count(), 0);
        assert_eq!(list.encoding(), "listpack");
        assert_eq!(list.pop_front(), None);
    }

    /// Small lists are one pack sized to its contents; past 8 KiB a list is chunked, and it
    /// becomes compact again once it is down to half of that.
    #[test]
    fn encodings_follow_the_fill_bounds() {
        let mut list = List::new();
        list.push_back(b"a");
        assert_eq!(list.encoding(), "listpack");
        // 100-byte elements take 102 bytes: 80 fit in 8 KiB.
        let big = [b'x'; 100];
        let mut list = List::new();
        for _ in 0..80 {
            list.push_back(big);
        }
        assert_eq!(list.encoding(), "listpack");
        list.push_back(big);
        assert_eq!(list.encoding(), "quicklist");
        assert_eq!(list.chunk_count(), 2);
        // Down to one pack of 59 elements (6018 bytes, over half): still chunked.
        for _ in 0..21 {
            list.pop(End::Head, Fill::DEFAULT);
        }
        assert_eq!(list.chunk_count(), 2);
        list.pop(End::Tail, Fill::DEFAULT);
        assert_eq!((list.encoding(), list.chunk_count()), ("quicklist", 1));
        for _ in 0..20 {
            list.pop(End::Head, Fill::DEFAULT);
        }
        assert_eq!(list.encoding(), "listpack");
        list.check(Fill::DEFAULT);
        // A count bound.
        let three = tiny(8192, 3);
        let mut list = List::new();
        for i in 0..3 {
            list.push(End::Tail, &element(i), three);
        }
        assert_eq!(list.encoding(), "listpack");
        list.push(End::Tail, b"x", three);
        assert_eq!((list.encoding(), list.chunk_count()), ("quicklist", 2));
        // An element over the byte bound gets a pack of its own.
        let mut list = List::new();
        list.push_back(vec![b'y'; 10_000]);
        assert_eq!(list.encoding(), "quicklist");
        list.push_back(b"a");
        list.push_front(b"b");
        assert_eq!(list.chunk_count(), 3);
        list.check(Fill::DEFAULT);
    }

    /// A clone shares every pack; a push or pop afterwards copies only the pack it touches,
    /// and the clone still sees the old contents.
    #[test]
    fn a_write_after_a_clone_copies_one_pack() {
        let mut list: List = (0..100_000).map(element).collect();
        let packs = list.chunk_count();
        assert!(packs > 100_000 * 14 / 8192, "{packs}");
        let snapshot = list.clone();
        assert_eq!(list.unshared_parts(), 0);
        list.pop_back();
        assert_eq!(list.unshared_parts(), 1);
        list.push_front(b"new");
        assert!(list.unshared_parts() <= 2);
        list.set(50_000, b"changed", Fill::DEFAULT);
        assert!(list.unshared_parts() <= 3);
        assert_eq!(snapshot.len(), 100_000);
        assert!(snapshot
            .iter()
            .map(Element::to_vec)
            .eq((0..100_000).map(element)));
        assert_eq!(list.get(0), Some(Element::Bytes(b"new")));
        assert_eq!(list.get(50_000), Some(Element::Bytes(b"changed")));
    }

    /// What lists cost on the heap (in allocator size classes): a 10-element list of short
    /// strings, and the bytes per element of a 1M-element list.
    #[test]
    fn memory_per_list_and_per_element() {
        let small: List = (0..10).map(element).collect();
        assert_eq!(small.encoding(), "listpack");
        // 10 entries of 11 bytes in a 112-byte class, and the 32-byte List.
        assert!(small.heap_bytes() <= 150, "{}", small.heap_bytes());
        let short: List = (0..10).map(|i| format!("v{i}")).collect();
        assert!(short.heap_bytes() <= 80, "{}", short.heap_bytes());
        let big: List = (0..1_000_000).map(element).collect();
        // "element:N" takes 9 to 14 bytes, 16 at most with its lengths.
        let data: usize = (0..1_000_000)
            .map(|i| entry_size(Element::classify(&element(i))))
            .sum();
        let per_element = big.heap_bytes() as f64 / 1e6;
        let overhead = big.heap_bytes() as f64 / data as f64;
        assert!(
            overhead < 1.02,
            "{per_element:.2} bytes/element, {overhead:.3}x the entries"
        );
    }

    /// Operations a property test applies to a list and to its model.
    #[derive(Debug, Clone)]
    enum Op {
        Push(bool, Vec<u8>),
        Pop(bool),
        Set(usize, Vec<u8>),
        Insert(usize, Vec<u8>),
        Remove(Vec<u8>, bool, usize),
        Trim(usize, usize),
        Clone,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct short values (so that removals match), some long ones.
        let value = prop_oneof![
            4 => (0u8..6).prop_map(|v| vec![b'a' + v]),
            2 => prop_oneof![Just(0i64), Just(-1), Just(64), Just(i64::MIN), any::<i64>()]
                .prop_map(|n| n.to_string().into_bytes()),
            1 => prop_oneof![Just("-0"), Just("07"), Just("9223372036854775808")]
                .prop_map(|text| text.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..40),
            1 => (100usize..300).prop_map(|n| vec![b'z'; n]),
        ];
        prop_oneof![
            6 => (any::<bool>(), value.clone()).prop_map(|(f, v)| Op::Push(f, v)),
            3 => any::<bool>().prop_map(Op::Pop),
            2 => (any::<usize>(), value.clone()).prop_map(|(i, v)| Op::Set(i, v)),
            2 => (any::<usize>(), value.clone()).prop_map(|(i, v)| Op::Insert(i, v)),
            1 => (value, any::<bool>(), 0usize..4).prop_map(|(v, f, n)| Op::Remove(v, f, n)),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Trim(a, b)),
            1 => Just(Op::Clone),
        ]
    }

    fn end(front: bool) -> End {
        if front {
            End::Head
        } else {
            End::Tail
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every operation agrees with a VecDeque, under bounds that split and merge packs
        /// often and move lists between the two forms; clones taken along the way keep
        /// their contents.
        #[test]
        fn behaves_like_a_deque(
            ops in prop::collection::vec(op(), 1..400),
            max_bytes in 16usize..400,
            max_count in prop_oneof![Just(usize::MAX), 1usize..8],
        ) {
            let fill = tiny(max_bytes, max_count);
            let mut list = List::new();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut clones: Vec<(List, VecDeque<Vec<u8>>)> = Vec::new();
            for op in ops {
                let shrank = matches!(op, Op::Pop(_) | Op::Remove(..) | Op::Trim(..));
                match op {
                    Op::Push(front, v) => {
                        list.push(end(front), &v, fill);
                        if front { model.push_front(v) } else { model.push_back(v) }
                    }
                    Op::Pop(front) => {
                        let expected = if front { model.pop_front() } else { model.pop_back() };
                        prop_assert_eq!(list.pop(end(front), fill), expected);
                    }
                    Op::Set(i, v) => {
                        if !model.is_empty() {
                            let i = i % model.len();
                            list.set(i, &v, fill);
                            model[i] = v;
                        }
                    }
                    Op::Insert(i, v) => {
                        let i = i % (model.len() + 1);
                        list.insert(i, &v, fill);
                        model.insert(i, v);
                    }
                    Op::Remove(v, front, n) => {
                        let limit = if n == 0 { usize::MAX } else { n };
                        let removed = list.remove_matching(&v, end(front), limit, fill);
                        let mut expected = 0;
                        let mut kept = VecDeque::new();
                        if front {
                            for e in model.drain(..) {
                                if e == v && expected < limit { expected += 1 } else { kept.push_back(e) }
                            }
                        } else {
                            for e in model.drain(..).rev() {
                                if e == v && expected < limit { expected += 1 } else { kept.push_front(e) }
                            }
                        }
                        model = kept;
                        prop_assert_eq!(removed, expected);
                    }
                    Op::Trim(a, b) => {
                        if !model.is_empty() {
                            let (a, b) = (a % model.len(), b % (model.len() + 1));
                            list.retain_range(a..b, fill);
                            model = if a < b { model.range(a..b).cloned().collect() } else { VecDeque::new() };
                        }
                    }
                    Op::Clone => clones.push((list.clone(), model.clone())),
                }
                list.check(fill);
                prop_assert_eq!(list.len(), model.len());
                if shrank && list.chunk_count() == 1 && list.encoding() == "quicklist" {
                    // Chunked with one pack only while that pack is over half the bounds.
                    let bytes: usize = model.iter().map(|e| entry_size(Element::classify(e))).sum();
                    prop_assert!(!fill.fits_half(bytes, model.len()));
                }
            }
            prop_assert!(list.iter().map(Element::to_vec).eq(model.iter().cloned()));
            prop_assert!(list.iter().rev().map(Element::to_vec).eq(model.iter().rev().cloned()));
            for (i, e) in model.iter().enumerate() {
                prop_assert_eq!(list.get(i).map(Element::to_vec), Some(e.clone()));
            }
            for start in 0..=model.len().min(50) {
                let got: Vec<Vec<u8>> = list.range(start, start + 7).map(Element::to_vec).collect();
                let want: Vec<Vec<u8>> = model.iter().skip(start).take(7).cloned().collect();
                prop_assert_eq!(got, want);
            }
            for (clone, expected) in clones {
                prop_assert!(clone.iter().map(Element::to_vec).eq(expected.iter().cloned()));
            }
            // Searches find integers by their text.
            for probe in [&b"a"[..], b"0", b"-1", b"07"] {
                let expected = model.iter().position(|e| e.as_slice() == probe);
                prop_assert_eq!(list.position(probe), expected);
            }
        }

        #[test]
        fn payload_round_trips(elements in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..600)) {
            let list: List = elements.iter().map(|e| e.as_slice()).collect();
            let mut bytes = Vec::new();
            let Ok(()) = encode(&list, &mut bytes);
            let mut src = SliceReader(&bytes);
            let decoded = decode(&mut src).unwrap();
            decoded.check(Fill::DEFAULT);
            prop_assert_eq!(decoded, list);
            prop_assert!(src.0.is_empty());
        }
    }
}
