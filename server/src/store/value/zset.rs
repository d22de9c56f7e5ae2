//! Sorted sets: distinct byte-string members, each with a score, ordered by score (ties by
//! member bytes, as Redis orders them).
//!
//! Two encodings, as in Redis (OBJECT ENCODING names them `listpack` and `skiplist`):
//!
//! - **Packed** (`listpack`), for at most `zset-max-listpack-entries` members of at most
//!   `zset-max-listpack-value` bytes each: one byte buffer of `(member, score)` entries in
//!   order, `varint(len) member score`, where a score that is an integer of magnitude below
//!   2^53 takes one varint (zigzag, shifted left, low bit 0: most scores fit one or two bytes)
//!   and any other a marker byte `1` and its 8 IEEE-754 bytes. Every operation is a linear
//!   walk of at most a few kilobytes. An integral score is stored as an integer, so `-0` reads
//!   back as `0`, as from Redis's listpack.
//! - **Big** (`skiplist`), past either threshold (a one-way conversion, as in Redis):
//!   - member to score, a segmented map (`store::value::segmented`), for ZSCORE and to find a
//!     member's place;
//!   - the score order, sorted chunks of at most [`ORDER_CHUNK`] entries behind `Arc`s, with
//!     a Fenwick tree over the chunk lengths: finding a member's chunk is a binary search over
//!     the chunks' last entries, its rank a prefix sum, and the member at a rank a descent of
//!     the tree, so ZRANK, ZRANGE by rank and score/lex range bounds are O(log n). A full chunk
//!     splits in two and a chunk under a quarter full merges with its successor; either
//!     rebuilds the tree (O(n / ORDER_CHUNK), once per ~64 insertions at worst).
//!
//!   Both halves share each member (one reference-counted allocation behind a thin pointer,
//!   8 bytes in each), as Redis shares one string between its dict and its skiplist. The structure was measured against crossbeam-skiplist
//!   (benches/zsets.rs; numbers in SPEC.md 6.9).
//!
//! Cloning a big sorted set (what a snapshot does under the shard lock) copies one pointer
//! per segment and per chunk plus the Fenwick tree (one word per chunk); a write afterwards
//! copies the segment and the chunk it changes. A packed one is small and cloned whole.
//!
//! # Snapshot payload (type tag `0x04`)
//!
//! ```text
//! payload := varint(count) entry*count        ascending (score, member) order
//! entry   := varint(len) member f64(score)
//! f64     := IEEE-754 bits, 8 bytes little-endian
//! ```
//!
//! A member may appear only once and no score may be NaN; a payload that breaks either is
//! rejected as corrupt. Entries out of order are accepted (each is inserted in its place); in
//! order, as written, each goes at the end at no search cost. A loaded sorted set takes the
//! packed encoding when it fits the default thresholds.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use triomphe::ThinArc;

use super::codec::{PayloadRead, PayloadWrite};
use super::segmented::SegMap;
use super::{Limits, Shown};

/// Most entries in one score-order chunk.
pub const ORDER_CHUNK: usize = 128;

/// A sorted-set score: any double but NaN, which has no place in an order.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Score(f64);

impl Score {
    /// The score `value`, or `None` for NaN.
    pub fn new(value: f64) -> Option<Score> {
        (!value.is_nan()).then_some(Score(value))
    }

    /// The double.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A member as both big structures hold it: one allocation (reference count, length and
/// bytes, as `Arc<[u8]>` would take) behind a thin pointer, so that the member index and the
/// score order each spend 8 bytes per member on it rather than 16.
#[derive(Clone)]
struct Member(ThinArc<(), u8>);

impl Member {
    fn new(bytes: &[u8]) -> Member {
        Member(ThinArc::from_header_and_slice((), bytes))
    }
}

impl std::ops::Deref for Member {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0.slice
    }
}

impl Borrow<[u8]> for Member {
    fn borrow(&self) -> &[u8] {
        self
    }
}

/// Hashes as the bytes do, so that lookups by `&[u8]` find it.
impl Hash for Member {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Member {}

/// One entry of the score order.
type Ranked = (f64, Member);

/// Redis's order of (score, member) against (other score, other member). Scores are never
/// NaN, so the comparison of doubles is total here (and -0 equals 0, as in Redis).
fn cmp_entries(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> Ordering {
    score
        .partial_cmp(&other_score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| member.cmp(other_member))
}

/// [`cmp_entries`] against a stored entry.
fn order(score: f64, member: &[u8], other: &Ranked) -> Ordering {
    cmp_entries(score, member, other.0, &other.1)
}

// ---------------------------------------------------------------------------------------
// The packed encoding.

/// Largest magnitude of a score kept as an integer in the packed encoding (exact in f64).
const PACKED_INT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Reads a varint at `*at` (the buffer is our own, so it is well formed; a short buffer
/// reads as 0 rather than panicking).
fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    while let Some(&byte) = bytes.get(*at) {
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            break;
        }
    }
    value
}

/// Writes a varint into `out` (10 bytes hold any u64); returns its length.
fn put_varint_into(out: &mut [u8; 10], mut value: u64) -> usize {
    let mut len = 0;
    while value >= 0x80 {
        out[len] = (value as u8) | 0x80;
        value >>= 7;
        len += 1;
    }
    out[len] = value as u8;
    len + 1
}

/// Writes a packed score into `out`; returns its length: an integer below 2^53 as one
/// varint (zigzag, shifted left, low bit 0), anything else as `1` and 8 IEEE-754 bytes.
fn put_score_into(out: &mut [u8; 10], score: f64) -> usize {
    if score.fract() == 0.0 && score.abs() < PACKED_INT_LIMIT {
        let int = score as i64;
        let zigzag = ((int << 1) ^ (int >> 63)) as u64;
        put_varint_into(out, zigzag << 1)
    } else {
        out[0] = 1;
        out[1..9].copy_from_slice(&score.to_le_bytes());
        9
    }
}

/// Walks a packed buffer: yields each member, its score and the entry's byte range start.
#[derive(Clone)]
struct PackedIter<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> PackedIter<'a> {
    /// The next entry and the offset where it starts.
    fn next_entry(&mut self) -> Option<(usize, &'a [u8], f64)> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let start = self.at;
        let len = usize::try_from(get_varint(self.bytes, &mut self.at)).unwrap_or(0);
        let member_end = (self.at + len).min(self.bytes.len());
        let member = &self.bytes[self.at..member_end];
        self.at = member_end;
        let tag = get_varint(self.bytes, &mut self.at);
        let score = if tag & 1 == 1 {
            let end = (self.at + 8).min(self.bytes.len());
            let mut raw = [0u8; 8];
            raw[..end - self.at].copy_from_slice(&self.bytes[self.at..end]);
            self.at = end;
            f64::from_le_bytes(raw)
        } else {
            let zigzag = tag >> 1;
            let int = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
            int as f64
        };
        Some((start, member, score))
    }
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        self.next_entry().map(|(_, member, score)| (member, score))
    }
}

/// The packed encoding: entries in order, in one exactly sized buffer (a boxed slice, so
/// that [`ZSet`] is two words and held in the value without a box of its own).
#[derive(Clone, Default)]
struct Packed {
    bytes: Box<[u8]>,
}

impl Packed {
    /// Number of entries: a walk of at most `zset-max-listpack-entries` of them.
    fn len(&self) -> usize {
        let mut walk = self.iter();
        let mut count = 0;
        while walk.next_entry().is_some() {
            count += 1;
        }
        count
    }

    /// Runs `change` on the buffer as a `Vec` and stores it back exactly sized.
    fn edit(&mut self, change: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = std::mem::take(&mut self.bytes).into_vec();
        change(&mut bytes);
        self.bytes = bytes.into_boxed_slice();
    }

    fn iter(&self) -> PackedIter<'_> {
        PackedIter {
            bytes: &self.bytes,
            at: 0,
        }
    }

    /// The byte range of `member`'s entry and its score.
    fn find(&self, member: &[u8]) -> Option<(std::ops::Range<usize>, f64)> {
        let mut walk = self.iter();
        while let Some((start, found, score)) = walk.next_entry() {
            if found == member {
                return Some((start..walk.at, score));
            }
        }
        None
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (range, score) = self.find(member)?;
        self.edit(|bytes| {
            bytes.drain(range);
        });
        Some(score)
    }

    /// Inserts a member known to be absent, in its place.
    fn insert_new(&mut self, member: &[u8], score: f64) {
        let mut walk = self.iter();
        let mut at = self.bytes.len();
        while let Some((start, found, found_score)) = walk.next_entry() {
            if cmp_entries(score, member, found_score, found) == Ordering::Less {
                at = start;
                break;
            }
        }
        // Length and score encoded on the stack; one memmove makes room for the entry.
        let mut head = [0u8; 10];
        let head_len = put_varint_into(&mut head, member.len() as u64);
        let mut tail = [0u8; 10];
        let tail_len = put_score_into(&mut tail, score);
        let entry = head[..head_len]
            .iter()
            .chain(member)
            .chain(&tail[..tail_len])
            .copied();
        self.edit(|bytes| {
            bytes.reserve_exact(head_len + member.len() + tail_len);
            bytes.splice(at..at, entry);
        });
    }
}

// ---------------------------------------------------------------------------------------
// The big encoding.

/// The score order: sorted, non-empty chunks behind `Arc`s, and a Fenwick tree of their
/// lengths.
#[derive(Clone, Default)]
struct ScoreOrder {
    chunks: Vec<Arc<Vec<Ranked>>>,
    /// Fenwick tree (1-based, stored from index 0) over `chunks[i].len()`.
    counts: Vec<usize>,
}

impl ScoreOrder {
    /// Rebuilds the Fenwick tree after chunks were added or removed (O(chunks)).
    fn rebuild(&mut self) {
        let n = self.chunks.len();
        self.counts.clear();
        self.counts.extend(self.chunks.iter().map(|c| c.len()));
        for i in 0..n {
            let parent = i | (i + 1);
            if parent < n {
                self.counts[parent] += self.counts[i];
            }
        }
    }

    /// Adds `delta` (±1) to chunk `index`'s count.
    fn bump(&mut self, mut index: usize, grow: bool) {
        while index < self.counts.len() {
            if grow {
                self.counts[index] += 1;
            } else {
                self.counts[index] -= 1;
            }
            index |= index + 1;
        }
    }

    /// Entries in chunks `0..index`.
    fn before(&self, index: usize) -> usize {
        let mut sum = 0;
        let mut i = index;
        while i > 0 {
            sum += self.counts[i - 1];
            i &= i - 1;
        }
        sum
    }

    /// The chunk holding rank `rank` and the offset in it.
    fn locate(&self, rank: usize) -> Option<(usize, usize)> {
        let n = self.counts.len();
        let mut position = 0;
        let mut left = rank;
        let mut step = n.checked_next_power_of_two()?;
        while step > 0 {
            let next = position + step;
            if next <= n && self.counts[next - 1] <= left {
                position = next;
                left -= self.counts[next - 1];
            }
            step >>= 1;
        }
        let chunk = self.chunks.get(position)?;
        (left < chunk.len()).then_some((position, left))
    }

    /// The first chunk whose last entry is not below (score, member); the last chunk if all
    /// are below. Only for a non-empty order.
    fn chunk_for(&self, score: f64, member: &[u8]) -> usize {
        let first_not_below = self.chunks.partition_point(|chunk| {
            chunk
                .last()
                .is_some_and(|last| order(score, member, last) == Ordering::Greater)
        });
        first_not_below.min(self.chunks.len() - 1)
    }

    fn insert(&mut self, score: f64, member: Member) {
        if self.chunks.is_empty() {
            self.chunks.push(Arc::new(vec![(score, member)]));
            self.rebuild();
            return;
        }
        let index = self.chunk_for(score, &member);
        let is_last = index + 1 == self.chunks.len();
        let chunk = &mut self.chunks[index];
        let at = chunk.partition_point(|entry| order(score, &member, entry) == Ordering::Greater);
        if is_last && at == chunk.len() && chunk.len() >= ORDER_CHUNK {
            // Appending past a full last chunk (a load in order): start a new one, so that
            // chunks built in order are full.
            self.chunks.push(Arc::new(vec![(score, member)]));
            self.rebuild();
            return;
        }
        let chunk = Arc::make_mut(chunk);
        if chunk.len() >= ORDER_CHUNK {
            // Split first, so that no chunk's buffer ever grows past ORDER_CHUNK entries.
            let half = chunk.len() / 2;
            let mut upper = chunk.split_off(half);
            chunk.shrink_to_fit();
            if at > half {
                upper.insert(at - half, (score, member));
            } else {
                chunk.insert(at, (score, member));
            }
            self.chunks.insert(index + 1, Arc::new(upper));
            self.rebuild();
            return;
        }
        if chunk.len() == chunk.capacity() {
            // Grow by doubling, but never past one chunk's worth.
            let target = (chunk.len().max(4) * 2).min(ORDER_CHUNK);
            chunk.reserve_exact(target - chunk.len());
        }
        chunk.insert(at, (score, member));
        self.bump(index, true);
    }

    /// Removes the entry (score, member); false if there is none.
    fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let index = self.chunk_for(score, member);
        let chunk = &mut self.chunks[index];
        let at = chunk.partition_point(|entry| order(score, member, entry) == Ordering::Greater);
        if chunk
            .get(at)
            .is_none_or(|entry| order(score, member, entry) != Ordering::Equal)
        {
            return false;
        }
        Arc::make_mut(chunk).remove(at);
        let len = chunk.len();
        if len == 0 {
            self.chunks.remove(index);
            self.rebuild();
        } else if len < ORDER_CHUNK / 4
            && self
                .chunks
                .get(index + 1)
                .is_some_and(|next| len + next.len() <= ORDER_CHUNK)
        {
            let next = self.chunks.remove(index + 1);
            let next = Arc::try_unwrap(next).unwrap_or_else(|shared| (*shared).clone());
            let merged = Arc::make_mut(&mut self.chunks[index]);
            merged.reserve_exact(next.len());
            merged.extend(next);
            self.rebuild();
        } else {
            self.bump(index, false);
        }
        true
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &Ranked> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// The rank of (score, member), present or not: how many entries are below it.
    fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        self.count_leading(|entry| order(score, member, entry) == Ordering::Greater)
    }

    /// How many leading entries satisfy `below` (true for a prefix of the order only).
    fn count_leading(&self, below: impl Fn(&Ranked) -> bool) -> usize {
        let full = self
            .chunks
            .partition_point(|chunk| chunk.last().is_some_and(&below));
        self.before(full)
            + self
                .chunks
                .get(full)
                .map_or(0, |chunk| chunk.partition_point(&below))
    }

    /// Entries of ranks `start..end`, in order.
    fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &Ranked> + '_ {
        let (chunk, offset) = self.locate(start).unwrap_or((self.chunks.len(), 0));
        self.chunks[chunk.min(self.chunks.len())..]
            .iter()
            .flat_map(|chunk| chunk.iter())
            .skip(offset)
            .take(end.saturating_sub(start))
    }
}

/// The big encoding; see the module documentation.
#[derive(Clone, Default)]
struct Big {
    scores: SegMap<Member, f64>,
    order: ScoreOrder,
}

impl Big {
    fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        if let Some((stored, &old)) = self.scores.get_key_value(member) {
            if old != score {
                let stored = stored.clone();
                self.order.remove(old, &stored);
                self.order.insert(score, stored);
                if let Some(slot) = self.scores.get_mut(member) {
                    *slot = score;
                }
            }
            return Some(old);
        }
        let member = Member::new(member);
        self.scores.insert(member.clone(), score);
        self.order.insert(score, member);
        None
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (stored, score) = self.scores.remove(member)?;
        self.order.remove(score, &stored);
        Some(score)
    }

    /// Removes ranks `start..end` (within bounds); returns how many.
    fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        let Some((mut chunk, mut offset)) = self.order.locate(start) else {
            return 0;
        };
        let mut left = end - start;
        while left > 0 {
            let Some(shared) = self.order.chunks.get_mut(chunk) else {
                break;
            };
            let entries = Arc::make_mut(shared);
            let take = left.min(entries.len() - offset);
            for (_, member) in entries.drain(offset..offset + take) {
                self.scores.remove(&member);
            }
            left -= take;
            chunk += 1;
            offset = 0;
        }
        self.order.chunks.retain(|c| !c.is_empty());
        self.order.rebuild();
        end - start - left
    }
}

/// The two encodings.
#[derive(Clone)]
enum Repr {
    Packed(Packed),
    Big(Box<Big>),
}

/// A sorted set value; see the module documentation.
#[derive(Clone)]
pub struct ZSet {
    repr: Repr,
}

/// Two words (the packed buffer's pointer and length, or a null pointer beside the big
/// encoding's box): held in the value directly, a small sorted set is one allocation.
const _: () = assert!(std::mem::size_of::<ZSet>() == 16);

impl Default for ZSet {
    fn default() -> Self {
        ZSet {
            repr: Repr::Packed(Packed::default()),
        }
    }
}

/// Iterator over a sorted set in ascending order.
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Packed(PackedIter<'a>),
    Big(Box<dyn Iterator<Item = &'a Ranked> + 'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        match &mut self.0 {
            IterRepr::Packed(walk) => walk.next(),
            IterRepr::Big(walk) => walk.next().map(|(score, member)| (&**member, *score)),
        }
    }
}

impl ZSet {
    /// The name OBJECT ENCODING reports for this zset's representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Big(_) => "skiplist",
        }
    }

    /// An empty sorted set (packed).
    pub fn new() -> Self {
        ZSet::default()
    }

    /// Number of members (ZCARD).
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.len(),
            Repr::Big(big) => big.scores.len(),
        }
    }

    /// True when the sorted set has no member.
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            // No walk of the entries: an empty packed set has no bytes.
            Repr::Packed(packed) => packed.bytes.is_empty(),
            Repr::Big(_) => self.len() == 0,
        }
    }

    /// Number of `Arc`'d parts (segments and order chunks): what cloning copies, one
    /// pointer each (0 for a packed one, cloned whole).
    pub fn part_count(&self) -> usize {
        match &self.repr {
            Repr::Packed(_) => 0,
            Repr::Big(big) => big.scores.segment_count() + big.order.chunks.len(),
        }
    }

    /// Parts (segments and order chunks) not shared with a clone: those written since it was
    /// cloned.
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        match &self.repr {
            Repr::Packed(_) => 0,
            Repr::Big(big) => {
                let chunks = big.order.chunks.iter();
                big.scores.unshared_parts() + chunks.filter(|c| Arc::strong_count(c) == 1).count()
            }
        }
    }

    /// The score of `member` (ZSCORE).
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Packed(packed) => packed.find(member).map(|(_, score)| score),
            Repr::Big(big) => big.scores.get(member).copied(),
        }
    }

    /// Converts to the big encoding (one way).
    fn convert_to_big(&mut self) {
        if let Repr::Packed(packed) = &self.repr {
            let mut big = Big::default();
            for (member, score) in packed.iter() {
                big.insert(member, score);
            }
            self.repr = Repr::Big(Box::new(big));
        }
    }

    /// Adds `member` with `score`, or moves it to `score` (ZADD), converting to the big
    /// encoding when the sorted set outgrows `limits`; returns its old score.
    pub fn add(&mut self, member: &[u8], score: Score, limits: &Limits) -> Option<f64> {
        let score = score.get();
        if let Repr::Packed(packed) = &mut self.repr {
            let old = packed.remove(member);
            // As in Redis, only a new member is measured against the thresholds (an update
            // stays packed even if the thresholds were lowered since).
            let fits = old.is_some()
                || (member.len() <= limits.zset_max_listpack_value
                    && packed.len() < limits.zset_max_listpack_entries);
            if fits {
                packed.insert_new(member, score);
                return old;
            }
            self.convert_to_big();
        }
        match &mut self.repr {
            Repr::Big(big) => big.insert(member, score),
            Repr::Packed(_) => None,
        }
    }

    /// Adds or moves `member` under the default thresholds (snapshot loading, tests).
    pub fn insert(&mut self, member: &[u8], score: Score) -> Option<f64> {
        self.add(member, score, &Limits::DEFAULT)
    }

    /// Removes `member` (ZREM); returns its score. The encoding stays (as in Redis).
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Packed(packed) => packed.remove(member),
            Repr::Big(big) => big.remove(member),
        }
    }

    /// Every member and its score, by ascending score, ties by member bytes (ZRANGE).
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(packed) => Iter(IterRepr::Packed(packed.iter())),
            Repr::Big(big) => Iter(IterRepr::Big(Box::new(big.order.iter()))),
        }
    }

    /// The 0-based ascending rank of `member` and its score (ZRANK): O(log n) when big.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.repr {
            Repr::Packed(packed) => packed
                .iter()
                .enumerate()
                .find(|(_, (found, _))| *found == member)
                .map(|(rank, (_, score))| (rank, score)),
            Repr::Big(big) => {
                let score = *big.scores.get(member)?;
                Some((big.order.rank_of(score, member), score))
            }
        }
    }

    /// The member at ascending rank `rank` and its score: O(log n) when big.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Packed(packed) => packed.iter().nth(rank),
            Repr::Big(big) => {
                let (chunk, offset) = big.order.locate(rank)?;
                big.order.chunks[chunk]
                    .get(offset)
                    .map(|(score, member)| (&**member, *score))
            }
        }
    }

    /// Members of ascending ranks `start..end` (clamped), in ascending order: O(log n + m)
    /// when big.
    pub fn range(&self, start: usize, end: usize) -> Vec<(&[u8], f64)> {
        let end = end.min(self.len());
        if start >= end {
            return Vec::new();
        }
        match &self.repr {
            Repr::Packed(packed) => packed.iter().skip(start).take(end - start).collect(),
            Repr::Big(big) => big
                .order
                .range(start, end)
                .map(|(score, member)| (&**member, *score))
                .collect(),
        }
    }

    /// How many leading members (in ascending order) satisfy `below`, which must hold for
    /// a prefix of the order and for nothing after it: the rank where a score or lex range
    /// starts or ends. O(log n) when big.
    pub fn count_leading(&self, below: impl Fn(&[u8], f64) -> bool) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.iter().take_while(|(m, s)| below(m, *s)).count(),
            Repr::Big(big) => {
                if big.order.chunks.is_empty() {
                    return 0;
                }
                big.order
                    .count_leading(|(score, member)| below(member, *score))
            }
        }
    }

    /// Removes and returns the lowest (`max` false) or highest member with its score.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let len = self.len();
        let rank = if max { len.checked_sub(1)? } else { 0 };
        let (member, score) = self
            .get_by_rank(rank)
            .map(|(member, score)| (member.to_vec(), score))?;
        self.remove(&member);
        Some((member, score))
    }

    /// Removes the members of ascending ranks `start..end` (clamped); returns how many. On
    /// the big encoding the chunks are drained in place (O(log n + m)), each member leaving
    /// the index by one hash removal.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match &mut self.repr {
            Repr::Packed(packed) => {
                // Ranks are contiguous entries: one drain of their bytes.
                let mut walk = packed.iter();
                let (mut from, mut to) = (packed.bytes.len(), packed.bytes.len());
                for rank in 0..=end {
                    if rank == start {
                        from = walk.at;
                    }
                    if rank == end {
                        to = walk.at;
                        break;
                    }
                    if walk.next_entry().is_none() {
                        break;
                    }
                }
                packed.edit(|bytes| {
                    bytes.drain(from..to);
                });
                end - start
            }
            Repr::Big(big) => big.remove_ranks(start, end),
        }
    }

    /// One step of ZSCAN: visits members and returns the next cursor (0 when done). A packed
    /// sorted set is visited whole, in order; a big one a segment of its member index per
    /// step, every member present for the whole walk visited at least once however the set
    /// grows or shrinks between steps (see `SegMap::scan_segment`).
    pub fn scan<'a>(&'a self, cursor: u64, mut visit: impl FnMut(&'a [u8], f64)) -> u64 {
        match &self.repr {
            Repr::Packed(packed) => {
                packed.iter().for_each(|(m, s)| visit(m, s));
                0
            }
            Repr::Big(big) => big
                .scores
                .scan_segment(cursor, |member, score| visit(member, *score)),
        }
    }
}

impl<M: AsRef<[u8]>> FromIterator<(M, Score)> for ZSet {
    fn from_iter<I: IntoIterator<Item = (M, Score)>>(entries: I) -> Self {
        let mut zset = ZSet::new();
        for (member, score) in entries {
            zset.insert(member.as_ref(), score);
        }
        zset
    }
}

/// Same members with the same scores (compared as doubles: -0 equals 0), whatever the
/// encodings.
impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

/// Scores are never NaN, so equality is an equivalence.
impl Eq for ZSet {}

impl fmt::Debug for ZSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(member, score)| (Shown(member), score)))
            .finish()
    }
}

/// Writes a sorted set's payload, in score order.
pub fn encode<W: PayloadWrite>(zset: &ZSet, out: &mut W) -> Result<(), W::Error> {
    out.put_count(zset.len())?;
    for (member, score) in zset.iter() {
        out.put_bytes(member)?;
        out.put_f64(score)?;
    }
    Ok(())
}

/// Reads a sorted set's payload; a NaN score or a repeated member is an error.
pub fn decode<R: PayloadRead>(src: &mut R) -> Result<ZSet, R::Error> {
    let count = src.read_count()?;
    let mut zset = ZSet::new();
    for _ in 0..count {
        let member = src.read_bytes()?;
        let score = Score::new(src.read_f64()?).ok_or_else(|| src.invalid("a NaN score"))?;
        if zset.insert(&member, score).is_some() {
            return Err(src.invalid("a sorted set member appears twice"));
        }
    }
    Ok(zset)
}

#[cfg(test)]
mod tests {
    use super::super::codec::testing::SliceReader;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn score(value: f64) -> Score {
        Score::new(value).unwrap()
    }

    /// The order a model computes: by score, then member.
    fn sorted(model: &BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
        let mut entries: Vec<_> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        entries.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        entries
    }

    fn contents(zset: &ZSet) -> Vec<(Vec<u8>, f64)> {
        zset.iter().map(|(m, s)| (m.to_vec(), s)).collect()
    }

    fn big(zset: &ZSet) -> &Big {
        match &zset.repr {
            Repr::Big(big) => big,
            Repr::Packed(_) => panic!("expected the big encoding"),
        }
    }

    /// Checks that a big set's chunks are sorted across their boundaries, non-empty, not over
    /// size, and that the Fenwick tree agrees with them.
    fn assert_consistent(zset: &ZSet) {
        let Repr::Big(big) = &zset.repr else {
            return;
        };
        let entries: Vec<_> = big.order.iter().collect();
        assert!(entries
            .windows(2)
            .all(|w| order(w[0].0, &w[0].1, w[1]) == Ordering::Less));
        assert!(big
            .order
            .chunks
            .iter()
            .all(|c| !c.is_empty() && c.len() <= ORDER_CHUNK));
        assert_eq!(entries.len(), zset.len());
        let mut sum = 0;
        for (i, chunk) in big.order.chunks.iter().enumerate() {
            assert_eq!(big.order.before(i), sum);
            sum += chunk.len();
        }
    }

    #[test]
    fn ties_order_by_member_and_scores_move() {
        for limits in [
            Limits::DEFAULT,
            Limits {
                zset_max_listpack_entries: 0,
                ..Limits::DEFAULT
            },
        ] {
            let mut zset = ZSet::new();
            assert_eq!(zset.add(b"b", score(1.0), &limits), None);
            assert_eq!(zset.add(b"a", score(1.0), &limits), None);
            assert_eq!(zset.add(b"c", score(-0.5), &limits), None);
            assert_eq!(zset.add(b"0", score(0.0), &limits), None);
            assert_eq!(zset.add(b"z", score(f64::NEG_INFINITY), &limits), None);
            let members: Vec<&[u8]> = zset.iter().map(|(m, _)| m).collect();
            assert_eq!(members, [&b"z"[..], b"c", b"0", b"a", b"b"]);
            assert_eq!(
                zset.add(b"z", score(f64::INFINITY), &limits),
                Some(f64::NEG_INFINITY)
            );
            assert_eq!(zset.iter().last(), Some((&b"z"[..], f64::INFINITY)));
            assert_eq!(zset.score(b"a"), Some(1.0));
            assert_eq!(zset.rank(b"a"), Some((2, 1.0)));
            assert_eq!(zset.get_by_rank(4), Some((&b"z"[..], f64::INFINITY)));
            assert_eq!(zset.remove(b"a"), Some(1.0));
            assert_eq!(zset.remove(b"a"), None);
            assert_eq!(zset.len(), 4);
            assert_eq!(zset.pop(true), Some((b"z".to_vec(), f64::INFINITY)));
            assert_eq!(zset.pop(false), Some((b"c".to_vec(), -0.5)));
        }
        assert!(Score::new(f64::NAN).is_none());
    }

    #[test]
    fn packed_scores_round_trip_exactly() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e20,
            -1e20,
            2.5e-310,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            -9_007_199_254_740_993.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            123_456.789,
        ];
        for value in values {
            let mut zset = ZSet::new();
            zset.insert(b"m", score(value));
            assert_eq!(zset.encoding(), "listpack");
            let stored = zset.score(b"m").unwrap();
            // -0 is kept as the integer 0, as Redis's listpack does.
            let expected = if value == 0.0 { 0.0 } else { value };
            assert_eq!(stored.to_bits(), expected.to_bits(), "{value}");
        }
    }

    #[test]
    fn the_encoding_converts_past_either_threshold() {
        let limits = Limits {
            zset_max_listpack_entries: 4,
            zset_max_listpack_value: 8,
            ..Limits::DEFAULT
        };
        let mut zset = ZSet::new();
        for i in 0..4 {
            zset.add(format!("m{i}").as_bytes(), score(f64::from(i)), &limits);
        }
        assert_eq!(zset.encoding(), "listpack");
        // Updating a member of a full packed set keeps it packed.
        zset.add(b"m0", score(10.0), &limits);
        assert_eq!(zset.encoding(), "listpack");
        zset.add(b"m4", score(4.0), &limits);
        assert_eq!(zset.encoding(), "skiplist");
        // No way back on removal.
        for i in 0..5 {
            zset.remove(format!("m{i}").as_bytes());
        }
        assert_eq!(zset.encoding(), "skiplist");
        let mut long = ZSet::new();
        long.add(b"12345678", score(1.0), &limits);
        assert_eq!(long.encoding(), "listpack");
        long.add(b"123456789", score(1.0), &limits);
        assert_eq!(long.encoding(), "skiplist");
        assert_eq!(long.len(), 2);
    }

    /// A clone shares every segment and chunk; changing one member's score afterwards copies
    /// only its segment, the chunk it leaves and the chunk it joins.
    #[test]
    fn a_write_after_a_clone_copies_few_parts() {
        let mut zset: ZSet = (0..100_000)
            .map(|i| (format!("m{i}"), score(f64::from(i))))
            .collect();
        assert_consistent(&zset);
        let snapshot = zset.clone();
        let shared = |zset: &ZSet| {
            let (now, then) = (big(zset), big(&snapshot));
            let segments = now
                .scores
                .segments()
                .iter()
                .zip(then.scores.segments())
                .filter(|(a, b)| Arc::ptr_eq(a, b))
                .count();
            let chunks = now
                .order
                .chunks
                .iter()
                .filter(|c| then.order.chunks.iter().any(|s| Arc::ptr_eq(c, s)))
                .count();
            segments + chunks
        };
        let parts = zset.part_count();
        assert_eq!(shared(&zset), parts);
        zset.insert(b"m500", score(99_999.5));
        assert!(shared(&zset) >= parts - 3, "{} of {parts}", shared(&zset));
        assert_eq!(snapshot.score(b"m500"), Some(500.0));
        assert_eq!(zset.get_by_rank(99_999), Some((&b"m500"[..], 99_999.5)));
        assert_eq!(zset.rank(b"m501"), Some((500, 501.0)));
        assert_consistent(&zset);
    }

    #[test]
    fn a_nan_score_or_a_repeated_member_is_rejected() {
        let mut nan = Vec::new();
        let Ok(()) = nan.put_count(1);
        let Ok(()) = nan.put_bytes(b"m");
        let Ok(()) = nan.put_f64(f64::NAN);
        assert!(decode(&mut SliceReader(&nan)).is_err());
        let mut twice = Vec::new();
        let Ok(()) = twice.put_count(2);
        for value in [1.0, 2.0] {
            let Ok(()) = twice.put_bytes(b"m");
            let Ok(()) = twice.put_f64(value);
        }
        assert!(decode(&mut SliceReader(&twice)).is_err());
    }

    proptest! {
        /// Against a model, through conversions, chunk splits and merges: contents, ranks,
        /// rank ranges, score and lex range bounds, pops.
        #[test]
        fn behaves_as_a_sorted_map(
            ops in prop::collection::vec(
                (0u16..800, prop_oneof![
                    2 => Just(None),
                    5 => (-50i32..50).prop_map(|s| Some(f64::from(s) / 4.0)),
                ]),
                0..2500,
            ),
            max_entries in prop_oneof![Just(0usize), Just(16), Just(128), Just(10_000)],
            probes in prop::collection::vec((0usize..900, -60i32..60, 0u16..800), 8),
        ) {
            let limits = Limits { zset_max_listpack_entries: max_entries, ..Limits::DEFAULT };
            let mut zset = ZSet::new();
            let mut model = BTreeMap::new();
            for (member, change) in ops {
                let member = format!("member:{member}").into_bytes();
                match change {
                    Some(value) => prop_assert_eq!(
                        zset.add(&member, score(value), &limits),
                        model.insert(member, value)
                    ),
                    None => prop_assert_eq!(zset.remove(&member), model.remove(&member)),
                }
            }
            assert_consistent(&zset);
            let expected = sorted(&model);
            prop_assert_eq!(contents(&zset), expected.clone());
            prop_assert_eq!(zset.len(), expected.len());
            if model.len() > max_entries {
                prop_assert_eq!(zset.encoding(), "skiplist");
            }
            for (rank, (member, value)) in expected.iter().enumerate() {
                prop_assert_eq!(zset.rank(member), Some((rank, *value)));
                prop_assert_eq!(zset.get_by_rank(rank), Some((&member[..], *value)));
            }
            for &(start, bound, lex) in &probes {
                let end = start + 37;
                let range: Vec<_> = zset.range(start, end).into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                let model_range: Vec<_> = expected.iter().skip(start).take(37).cloned().collect();
                prop_assert_eq!(range, model_range);
                let bound = f64::from(bound) / 4.0;
                let below = zset.count_leading(|_, s| s < bound);
                prop_assert_eq!(below, expected.iter().filter(|(_, s)| *s < bound).count());
                let lex = format!("member:{lex}").into_bytes();
                let same_score: Vec<_> = expected.iter().filter(|(_, s)| *s == expected.first().map_or(0.0, |e| e.1)).collect();
                if same_score.len() == expected.len() {
                    let lex_below = zset.count_leading(|m, _| m < &lex[..]);
                    prop_assert_eq!(lex_below, expected.iter().filter(|(m, _)| m < &lex).count());
                }
            }
            // A rank range removed in bulk.
            let mut trimmed = zset.clone();
            let (cut_start, cut_end) = (probes[0].0 % (expected.len() + 1), probes[0].0 % (expected.len() + 1) + usize::from(probes[1].2));
            let removed = trimmed.remove_range(cut_start, cut_end);
            let mut left = expected.clone();
            let cut_end = cut_end.min(left.len());
            left.drain(cut_start.min(cut_end)..cut_end);
            prop_assert_eq!(removed, expected.len() - left.len());
            prop_assert_eq!(contents(&trimmed), left.clone());
            assert_consistent(&trimmed);
            for (member, _) in &left {
                prop_assert!(trimmed.score(member).is_some());
            }
            prop_assert_eq!(trimmed.len(), left.len());
            let mut popped = Vec::new();
            while let Some(entry) = zset.pop(popped.len() % 2 == 1) {
                popped.push(entry);
            }
            prop_assert_eq!(popped.len(), expected.len());
            prop_assert!(zset.is_empty());
        }

        #[test]
        fn payload_round_trips(entries in prop::collection::btree_map(
            prop::collection::vec(any::<u8>(), 0..12),
            any::<f64>().prop_filter("not NaN", |s| !s.is_nan()),
            0..600,
        )) {
            let limits = Limits { zset_max_listpack_entries: 0, ..Limits::DEFAULT };
            let mut zset = ZSet::new();
            for (m, s) in &entries {
                zset.add(m, score(*s), &limits);
            }
            let mut bytes = Vec::new();
            let Ok(()) = encode(&zset, &mut bytes);
            let mut src = SliceReader(&bytes);
            let decoded = decode(&mut src).unwrap();
            prop_assert!(src.0.is_empty());
            // Exact bits, except that a packed result keeps -0 as 0.
            let bits = |z: &ZSet| z.iter().map(|(m, s)| (m.to_vec(), (s + 0.0).to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&decoded), bits(&zset));
            prop_assert_eq!(contents(&decoded), sorted(&entries));
        }
    }
}
