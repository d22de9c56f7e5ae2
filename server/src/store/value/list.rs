//! Lists: a sequence of byte strings packed into contiguous byte buffers.
//!
//! # Packs
//!
//! Elements are stored back to back in a *pack* (`Vec<u8>`): each element's payload (its
//! bytes, or an integer in binary) with one *link* byte between neighbours and at both ends.
//! An element's *code* (one byte) tells what its payload is and how long; a link holds the
//! XOR of the codes of the two elements it separates (0 standing for "none" at the ends).
//! Walking forwards the previous code is known, so a link gives the next one; walking
//! backwards, the next code is known, so the same link gives the previous one (layout and
//! codes above `SMALL_INT`). Both ends of a pack are reached in O(1), and an index in it by
//! walking from the nearer end.
//!
//! A string of up to 127 bytes so costs its length plus one byte, one byte less than in
//! Redis's listpack (whose entries carry a header and a back-length each); an element that is
//! the canonical decimal text of an `i64` is stored as that integer in as few bytes as it
//! needs (0 for 0..=63) and reads back as the same text ([`Element`]).
//!
//! # Two forms
//!
//! - **Compact** (OBJECT ENCODING `listpack`): a list that fits in one pack under
//!   `list-max-listpack-size` ([`Fill`]) is that one pack, sized to its contents, plus its
//!   element count: a 10-element list of `element:N` strings takes the 32-byte `List` and
//!   one 101-byte allocation (112 in jemalloc's size classes). Cloning copies it (it is
//!   small).
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

// Pack layout: one code byte per element, and the payloads.
//
//   pack := link(0, c0) payload0 link(c0, c1) payload1 ... payload(n-1) link(c(n-1), 0)
//
// where `ci` is element i's *code* and `link(a, b) = a ^ b`. A code says what the payload
// is and so how long it is:
//
//   0..=127      a string of that many bytes
//   128..=191    the integer code - 128 (0..=63), no payload
//   192..=199    an integer in code - 191 bytes, little-endian two's complement
//   255          a longer string: varint(len) bytes reversed-varint(len)
//
// Walking forwards, the code of the element before is known, so a link gives the next
// element's code; walking backwards, the code of the element after is known, so a link gives
// the previous one's. An element thus costs one byte besides its payload (a string of up to
// 127 bytes: its length plus one), and a pack one byte more; an empty pack has no byte.

const SMALL_INT: u8 = 128;
const WIDE_INT: u8 = 191;
const LONG_STRING: u8 = 255;

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

/// The code of `element`.
fn code_of(element: Element<'_>) -> u8 {
    match element {
        Element::Bytes(bytes) if bytes.len() < 128 => bytes.len() as u8,
        Element::Bytes(_) => LONG_STRING,
        Element::Int(n) if (0..64).contains(&n) => SMALL_INT + n as u8,
        Element::Int(n) => WIDE_INT + int_width(n) as u8,
    }
}

/// Length of `element`'s payload.
fn payload_len(element: Element<'_>) -> usize {
    match element {
        Element::Bytes(bytes) if bytes.len() < 128 => bytes.len(),
        Element::Bytes(bytes) => bytes.len() + 2 * varint_len(bytes.len()),
        Element::Int(n) if (0..64).contains(&n) => 0,
        Element::Int(n) => int_width(n),
    }
}

/// Bytes `element` adds to a pack: its payload and one link.
fn entry_size(element: Element<'_>) -> usize {
    1 + payload_len(element)
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

/// Writes `element`'s payload into `out` (exactly `payload_len(element)` bytes).
fn write_payload(out: &mut [u8], element: Element<'_>) {
    match element {
        Element::Bytes(bytes) if bytes.len() < 128 => out.copy_from_slice(bytes),
        Element::Bytes(bytes) => {
            let n = put_varint(out, bytes.len());
            out[n..n + bytes.len()].copy_from_slice(bytes);
            let tail = &mut out[n + bytes.len()..];
            put_varint(tail, bytes.len());
            tail.reverse();
        }
        Element::Int(n) if (0..64).contains(&n) => {}
        Element::Int(n) => out.copy_from_slice(&n.to_le_bytes()[..out.len()]),
    }
}

/// The element with `code` whose payload starts at `at`, and where the payload ends.
#[inline]
fn read_payload(pack: &[u8], at: usize, code: u8) -> (Element<'_>, usize) {
    match code {
        0..=127 => {
            let end = at + usize::from(code);
            (Element::Bytes(&pack[at..end]), end)
        }
        SMALL_INT..=WIDE_INT => (Element::Int(i64::from(code - SMALL_INT)), at),
        LONG_STRING => {
            let (mut len, mut shift, mut i) = (0usize, 0u32, at);
            loop {
                let byte = pack[i];
                i += 1;
                len |= usize::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            (Element::Bytes(&pack[i..i + len]), i + len + (i - at))
        }
        _ => {
            let width = usize::from(code - WIDE_INT).min(8);
            let mut bytes = [0u8; 8];
            bytes[..width].copy_from_slice(&pack[at..at + width]);
            // Sign-extend from the top byte stored.
            let shift = 64 - 8 * width as u32;
            (
                Element::Int((i64::from_le_bytes(bytes) << shift) >> shift),
                at + width,
            )
        }
    }
}

/// Where the payload with `code` that ends at `end` starts.
#[inline]
fn payload_start(pack: &[u8], end: usize, code: u8) -> usize {
    match code {
        0..=127 => end - usize::from(code),
        SMALL_INT..=WIDE_INT => end,
        LONG_STRING => {
            let (mut len, mut shift, mut i) = (0usize, 0u32, end);
            loop {
                i -= 1;
                let byte = pack[i];
                len |= usize::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            i - len - (end - i)
        }
        _ => end - usize::from(code - WIDE_INT).min(8),
    }
}

/// A place between two elements of a pack: the offset of the link there, and the code of the
/// element before it (0 at the start).
#[derive(Debug, Clone, Copy)]
struct Gap {
    link: usize,
    before: u8,
}

/// The gap before element `index` of a pack of `count` elements (`index == count`: the one
/// after the last), walking from the nearer end. The pack must not be empty.
fn gap_before(pack: &[u8], count: usize, index: usize) -> Gap {
    if index <= count / 2 {
        let mut gap = Gap { link: 0, before: 0 };
        for _ in 0..index {
            let code = pack[gap.link] ^ gap.before;
            let (_, end) = read_payload(pack, gap.link + 1, code);
            gap = Gap {
                link: end,
                before: code,
            };
        }
        gap
    } else {
        // Backwards: the code after the gap is known; the one before comes from its link.
        let (mut link, mut after) = (pack.len() - 1, 0u8);
        for _ in index..count {
            let code = pack[link] ^ after;
            link = payload_start(pack, link, code) - 1;
            after = code;
        }
        Gap {
            link,
            before: pack[link] ^ after,
        }
    }
}

/// The code of the element after `gap` (0 at the end).
#[inline]
fn code_after(pack: &[u8], gap: Gap) -> u8 {
    pack[gap.link] ^ gap.before
}

/// Replaces `pack[range]` by `link(before, element) payload link(element, after)`.
fn splice_element(
    pack: &mut Vec<u8>,
    range: Range<usize>,
    before: u8,
    element: Element<'_>,
    after: u8,
) {
    let code = code_of(element);
    let size = payload_len(element) + 2;
    let old = pack.len();
    let new_len = old - range.len() + size;
    if size > range.len() {
        pack.resize(new_len, 0);
        pack.copy_within(range.end..old, range.start + size);
    } else {
        pack.copy_within(range.end..old, range.start + size);
        pack.truncate(new_len);
    }
    let at = range.start;
    pack[at] = before ^ code;
    write_payload(&mut pack[at + 1..at + size - 1], element);
    pack[at + size - 1] = code ^ after;
}

/// Inserts `element` before element `index` of a pack of `count` (`index == count`: after
/// the last).
fn pack_insert(pack: &mut Vec<u8>, count: usize, index: usize, element: Element<'_>) {
    if pack.is_empty() {
        splice_element(pack, 0..0, 0, element, 0);
        return;
    }
    let gap = gap_before(pack, count, index);
    let after = code_after(pack, gap);
    splice_element(pack, gap.link..gap.link + 1, gap.before, element, after);
}

/// Pushes `element` at `end` of a pack of `count` elements.
fn pack_push(pack: &mut Vec<u8>, count: usize, end: End, element: Element<'_>) {
    match end {
        End::Head => pack_insert(pack, count, 0, element),
        End::Tail => pack_insert(pack, count, count, element),
    }
}

/// The element `index` (< count) starts after `gap`: its code, payload end and the code of
/// the element after it (0 if none).
fn element_at_gap(pack: &[u8], gap: Gap) -> (Element<'_>, u8, usize, u8) {
    let code = code_after(pack, gap);
    let (element, end) = read_payload(pack, gap.link + 1, code);
    (element, code, end, pack[end] ^ code)
}

/// The element `index` (< count) of a pack.
fn pack_get(pack: &[u8], count: usize, index: usize) -> Element<'_> {
    let gap = gap_before(pack, count, index);
    element_at_gap(pack, gap).0
}

/// Removes element `index` (< count) and returns it.
fn pack_remove(pack: &mut Vec<u8>, count: usize, index: usize) -> Vec<u8> {
    let gap = gap_before(pack, count, index);
    let (element, _, end, after) = element_at_gap(pack, gap);
    let element = element.to_vec();
    if count == 1 {
        pack.clear();
        return element;
    }
    // The element and the links on both sides become one link.
    pack[end] = gap.before ^ after;
    pack.drain(gap.link..end);
    element
}

/// Pops the element at `end` of a pack of `count` (> 0) elements.
fn pack_pop(pack: &mut Vec<u8>, count: usize, end: End) -> Vec<u8> {
    match end {
        End::Head => pack_remove(pack, count, 0),
        End::Tail => pack_remove(pack, count, count - 1),
    }
}

/// Replaces element `index` (< count) by `element`.
fn pack_replace(pack: &mut Vec<u8>, count: usize, index: usize, element: Element<'_>) {
    let gap = gap_before(pack, count, index);
    let (_, _, end, after) = element_at_gap(pack, gap);
    splice_element(pack, gap.link..end + 1, gap.before, element, after);
}

/// Splits a pack of `count` elements before element `index`: `pack` keeps the elements
/// before it, the rest is returned.
fn pack_split_off(pack: &mut Vec<u8>, count: usize, index: usize) -> Vec<u8> {
    if index == 0 {
        return std::mem::take(pack);
    }
    if index >= count {
        return Vec::new();
    }
    let gap = gap_before(pack, count, index);
    let after = code_after(pack, gap);
    let mut rest = Vec::with_capacity(pack.len() - gap.link);
    rest.push(after);
    rest.extend_from_slice(&pack[gap.link + 1..]);
    pack.truncate(gap.link);
    pack.push(gap.before);
    rest
}

/// Appends the elements of `other` to `pack`.
fn pack_append(pack: &mut Vec<u8>, other: &[u8]) {
    let (Some(&last), Some((&first, rest))) = (pack.last(), other.split_first()) else {
        pack.extend_from_slice(other);
        return;
    };
    // `last` is link(c, 0) = c and `first` link(0, d) = d: the joint is link(c, d).
    let joint = pack.len() - 1;
    pack[joint] = last ^ first;
    pack.extend_from_slice(rest);
}

/// The elements of one pack, from both ends.
#[derive(Clone)]
struct PackIter<'a> {
    pack: &'a [u8],
    /// The gap before the next element from the front.
    front: Gap,
    /// The link after the next element from the back, and the code after that link.
    back: usize,
    back_after: u8,
}

impl<'a> PackIter<'a> {
    fn new(pack: &'a [u8]) -> Self {
        PackIter {
            pack,
            front: Gap { link: 0, before: 0 },
            back: pack.len().saturating_sub(1),
            back_after: 0,
        }
    }

    /// The elements from `index` on, in a pack of `count`.
    fn from_index(pack: &'a [u8], count: usize, index: usize) -> Self {
        let mut iter = PackIter::new(pack);
        if index >= count {
            iter.front.link = iter.back;
        } else if index > 0 {
            iter.front = gap_before(pack, count, index);
        }
        iter
    }
}

impl<'a> Iterator for PackIter<'a> {
    type Item = Element<'a>;

    #[inline]
    fn next(&mut self) -> Option<Element<'a>> {
        if self.front.link >= self.back {
            return None;
        }
        let code = self.pack[self.front.link] ^ self.front.before;
        let (element, end) = read_payload(self.pack, self.front.link + 1, code);
        self.front = Gap {
            link: end,
            before: code,
        };
        Some(element)
    }
}

impl<'a> DoubleEndedIterator for PackIter<'a> {
    #[inline]
    fn next_back(&mut self) -> Option<Element<'a>> {
        if self.front.link >= self.back {
            return None;
        }
        let code = self.pack[self.back] ^ self.back_after;
        let start = payload_start(self.pack, self.back, code);
        let (element, _) = read_payload(self.pack, start, code);
        self.back = start - 1;
        self.back_after = code;
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
                let count = slot.count();
                pack_push(Arc::make_mut(&mut slot.pack), count, end, element);
                slot.len += 1;
            }
            _ => {
                let mut pack = Vec::with_capacity(end_pack_capacity(size + 1));
                pack_push(&mut pack, 0, End::Tail, element);
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
            let element = pack_get(&slot.pack, 1, 0).to_vec();
            match end {
                End::Head => self.slots.pop_front(),
                End::Tail => self.slots.pop_back(),
            };
            element
        } else {
            let count = slot.count();
            slot.len -= 1;
            pack_pop(Arc::make_mut(&mut slot.pack), count, end)
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
        pack_append(Arc::make_mut(&mut a.pack), &b.pack);
        a.len += b.len;
        true
    }

    fn set(&mut self, index: usize, element: Element<'_>, fill: Fill) {
        let (i, local) = self.locate(index);
        let slot = &mut self.slots[i];
        let count = slot.count();
        pack_replace(Arc::make_mut(&mut slot.pack), count, local, element);
        self.settle(i, fill);
    }

    /// Inserts before element `index` (< len).
    fn insert(&mut self, index: usize, element: Element<'_>, fill: Fill) {
        let (i, local) = self.locate(index);
        let slot = &mut self.slots[i];
        let count = slot.count();
        pack_insert(Arc::make_mut(&mut slot.pack), count, local, element);
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
            let found = without_matches(&slot.pack, slot.count(), element, from, limit - removed);
            if let Some((pack, gone)) = found {
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
                let count = first.count();
                let pack = Arc::make_mut(&mut first.pack);
                *pack = pack_split_off(pack, count, drop_front);
                first.len -= drop_front as u32;
            }
        }
        if drop_back > 0 {
            if let Some(last) = self.slots.back_mut() {
                let keep = last.count() - drop_back;
                let count = last.count();
                pack_split_off(Arc::make_mut(&mut last.pack), count, keep);
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
    for element in PackIter::new(pack) {
        if count > 0 && !fill.fits(current.len() + entry_size(element), count + 1) {
            pieces.push((std::mem::take(&mut current), count));
            count = 0;
        }
        pack_push(&mut current, count, End::Tail, element);
        count += 1;
    }
    if count > 0 {
        pieces.push((current, count));
    }
    pieces
}

/// `pack` (of `count` elements) without the first `limit` elements equal to `needle`
/// counting `from` one end, and how many that removed; `None` if it holds none (so an
/// untouched pack is not copied).
fn without_matches(
    pack: &[u8],
    count: usize,
    needle: &Needle<'_>,
    from: End,
    limit: usize,
) -> Option<(Vec<u8>, usize)> {
    // Positions of the matches to remove, in pack order.
    let mut matches: Vec<usize> = match from {
        End::Head => PackIter::new(pack)
            .enumerate()
            .filter(|(_, e)| e.matches(needle))
            .map(|(i, _)| i)
            .take(limit)
            .collect(),
        End::Tail => PackIter::new(pack)
            .rev()
            .enumerate()
            .filter(|(_, e)| e.matches(needle))
            .map(|(i, _)| count - 1 - i)
            .take(limit)
            .collect(),
    };
    if matches.is_empty() {
        return None;
    }
    matches.sort_unstable();
    let mut kept = Vec::with_capacity(pack.len());
    let mut kept_count = 0;
    let mut next_match = matches.iter().peekable();
    for (i, element) in PackIter::new(pack).enumerate() {
        if next_match.peek() == Some(&&i) {
            next_match.next();
            continue;
        }
        pack_push(&mut kept, kept_count, End::Tail, element);
        kept_count += 1;
    }
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
                    pack.reserve_exact(size + usize::from(pack.is_empty()));
                    pack_push(pack, *len as usize, end, element);
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
                let element = pack_pop(pack, *len as usize, end);
                *len -= 1;
                Some(element)
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
        Some(pack_get(pack, count, local))
    }

    /// Replaces the element at `index` (< len; LSET).
    pub fn set(&mut self, index: usize, element: &[u8], fill: Fill) {
        if index >= self.len() {
            return;
        }
        let element = Element::classify(element);
        match &mut self.repr {
            Repr::Compact { pack, len } => {
                pack_replace(pack, *len as usize, index, element);
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
                pack_insert(pack, *len as usize, index, element);
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
            Repr::Compact { pack, len } => {
                match without_matches(pack, *len as usize, element, from, limit) {
                    Some((mut kept, removed)) => {
                        kept.shrink_to_fit();
                        *pack = kept;
                        *len -= removed as u32;
                        removed
                    }
                    None => 0,
                }
            }
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
                let mut kept = pack_split_off(pack, *count as usize, range.start);
                pack_split_off(&mut kept, *count as usize - range.start, range.len());
                kept.shrink_to_fit();
                *pack = kept;
                *count = range.len() as u32;
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
            Repr::Compact { pack, len } => PackIter::from_index(pack, *len as usize, start)
                .chain(EMPTY_SLOTS.iter().flat_map(slot_iter)),
            Repr::Chunked(chunked) if start < chunked.len => {
                let (i, local) = chunked.locate(start);
                let slot = &chunked.slots[i];
                PackIter::from_index(&slot.pack, slot.count(), local)
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
                let forward = PackIter::new(pack).count();
                assert_eq!(PackIter::new(pack).rev().count(), forward);
                let bytes: usize = PackIter::new(pack).map(entry_size).sum();
                assert_eq!(
                    pack.len(),
                    bytes + usize::from(forward > 0),
                    "no stray byte"
                );
                // The first link is the first code, the last one the last code.
                if let (Some(first), Some(last)) =
                    (PackIter::new(pack).next(), PackIter::new(pack).next_back())
                {
                    assert_eq!(pack[0], code_of(first));
                    assert_eq!(pack[pack.len() - 1], code_of(last));
                }
                forward
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
        for (i, &element) in elements.iter().enumerate() {
            pack_push(&mut pack, i, End::Tail, element);
        }
        let total: usize = elements.iter().map(|&e| entry_size(e)).sum();
        assert_eq!(pack.len(), total + 1);
        assert!(PackIter::new(&pack).eq(elements.iter().copied()));
        assert!(PackIter::new(&pack)
            .rev()
            .eq(elements.iter().rev().copied()));
        let n = elements.len();
        for i in 0..n {
            assert_eq!(pack_get(&pack, n, i), elements[i]);
            assert!(PackIter::from_index(&pack, n, i).eq(elements[i..].iter().copied()));
        }
        // Built from the head, the same bytes.
        let mut from_head = Vec::new();
        for (i, &element) in elements.iter().rev().enumerate() {
            pack_push(&mut from_head, i, End::Head, element);
        }
        assert_eq!(from_head, pack);
        // Split anywhere and joined again, the same bytes.
        for i in 0..=n {
            let mut left = pack.clone();
            let right = pack_split_off(&mut left, n, i);
            assert!(PackIter::new(&left).eq(elements[..i].iter().copied()));
            assert!(PackIter::new(&right).eq(elements[i..].iter().copied()));
            pack_append(&mut left, &right);
            assert_eq!(left, pack);
        }
        // Sizes: a short string costs 1 byte more than itself, small integers 1 to 3.
        assert_eq!(entry_size(Element::Bytes(b"abc")), 4);
        assert_eq!(entry_size(Element::Int(5)), 1);
        assert_eq!(entry_size(Element::Int(100)), 2);
        assert_eq!(entry_size(Element::Int(123_456)), 4);
        assert_eq!(entry_size(Element::Int(i64::MIN)), 9);
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
        // 100-byte elements take 101 bytes: 81 fit in 8 KiB.
        let big = [b'x'; 100];
        let mut list = List::new();
        for _ in 0..81 {
            list.push_back(big);
        }
        assert_eq!(list.encoding(), "listpack");
        list.push_back(big);
        assert_eq!(list.encoding(), "quicklist");
        assert_eq!(list.chunk_count(), 2);
        // Down to one pack of 60 elements (6061 bytes, over half): still chunked.
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
        assert!(packs >= 100_000 * 12 / 8192, "{packs}");
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
        // 10 entries of 10 bytes and a link (101 bytes, a 112-byte class), and the 32-byte
        // List. (Redis 7.0: 256 bytes by MEMORY USAGE.)
        assert_eq!(small.heap_bytes(), 144);
        let short: List = (0..10).map(|i| format!("v{i}")).collect();
        assert!(short.heap_bytes() <= 80, "{}", short.heap_bytes());
        let numbers: List = (0..1_000_000).map(|i: u32| i.to_string()).collect();
        // Mostly 3-byte integers and a link: 4 bytes each (Redis 7.0: 5.0 by MEMORY USAGE).
        let per_number = numbers.heap_bytes() as f64 / 1e6;
        assert!(per_number < 4.1, "{per_number:.2} bytes per element");
        let big: List = (0..1_000_000).map(element).collect();
        // "element:N" takes 9 to 14 bytes, 15 at most with its link (Redis 7.0: 16.0 bytes
        // per element by MEMORY USAGE).
        let data: usize = (0..1_000_000)
            .map(|i| entry_size(Element::classify(&element(i))))
            .sum();
        let per_element = big.heap_bytes() as f64 / 1e6;
        let overhead = big.heap_bytes() as f64 / data as f64;
        assert!(per_element < 15.2, "{per_element:.2} bytes per element");
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
                    let bytes: usize =
                        1 + model.iter().map(|e| entry_size(Element::classify(e))).sum::<usize>();
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
