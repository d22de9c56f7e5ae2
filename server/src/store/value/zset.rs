//! Sorted sets: distinct byte-string members, each with a score, ordered by score.
//!
//! Two structures share each member (one `Arc<[u8]>` allocation, as Redis shares one string
//! between its dict and its skiplist):
//! - member to score, a segmented map (`store::value::segmented`): ZSCORE, and finding a
//!   member's place to move or remove it;
//! - score order, a sequence of sorted chunks of at most [`ORDER_CHUNK`] entries, ordered by
//!   (score, member bytes) as Redis orders ties. A member's chunk is found by binary search
//!   over the chunks' last entries, its place by binary search inside the chunk; a full chunk
//!   splits in two, a chunk below a quarter full merges with its successor when they fit.
//!
//! Both are made of `Arc`'d parts, so cloning a sorted set (what a snapshot does under the
//! shard lock) copies one pointer per segment and per chunk, and a write after that copies the
//! segment and the chunk it changes: pointers and scores, never member bytes. Ranks (ZRANK,
//! ZRANGE by index) walk chunk lengths, O(n / ORDER_CHUNK); a per-chunk count index can make
//! them logarithmic when those commands arrive.
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
//! order, as written, each goes at the end at no search cost.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

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

/// A member as both structures hold it.
type Member = Arc<[u8]>;

/// One entry of the score order.
type Ranked = (f64, Member);

/// Redis's order: by score, ties by member bytes. Scores are never NaN, so the comparison of
/// doubles is total here (and -0 equals 0, as in Redis).
fn order(score: f64, member: &[u8], other: &Ranked) -> Ordering {
    score
        .partial_cmp(&other.0)
        .unwrap_or(Ordering::Equal)
        .then_with(|| member.cmp(&other.1))
}

/// The score order: sorted, non-empty chunks, each behind an `Arc`.
#[derive(Clone, Default)]
struct ScoreOrder {
    chunks: Vec<Arc<Vec<Ranked>>>,
}

impl ScoreOrder {
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
            return;
        }
        let chunk = Arc::make_mut(chunk);
        chunk.insert(at, (score, member));
        if chunk.len() > ORDER_CHUNK {
            let upper = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(index + 1, Arc::new(upper));
        }
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
        } else if len < ORDER_CHUNK / 4
            && self
                .chunks
                .get(index + 1)
                .is_some_and(|next| len + next.len() <= ORDER_CHUNK)
        {
            let next = self.chunks.remove(index + 1);
            let next = Arc::try_unwrap(next).unwrap_or_else(|shared| (*shared).clone());
            Arc::make_mut(&mut self.chunks[index]).extend(next);
        }
        true
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &Ranked> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// The chunk holding rank `rank` and the rank of its first entry.
    fn locate(&self, rank: usize) -> Option<(usize, usize)> {
        let mut before = 0;
        for (index, chunk) in self.chunks.iter().enumerate() {
            if rank < before + chunk.len() {
                return Some((index, before));
            }
            before += chunk.len();
        }
        None
    }

    /// How many leading entries satisfy `below` (which must hold for a prefix of the order
    /// and not after it).
    fn count_leading(&self, below: impl Fn(&Ranked) -> bool) -> usize {
        let full = self
            .chunks
            .partition_point(|chunk| chunk.last().is_some_and(&below));
        let before: usize = self.chunks[..full].iter().map(|c| c.len()).sum();
        before
            + self
                .chunks
                .get(full)
                .map_or(0, |chunk| chunk.partition_point(&below))
    }

    /// Entries of ranks `start..end` (clamped to the order).
    fn range(&self, start: usize, end: usize) -> impl DoubleEndedIterator<Item = &Ranked> + '_ {
        let (first, before) = self.locate(start).unwrap_or((self.chunks.len(), start));
        let skip = start - before;
        let take = end.saturating_sub(start);
        RankRange {
            chunks: &self.chunks[first.min(self.chunks.len())..],
            front: (0, skip),
            front_left: take,
        }
    }
}

/// Iterator over a rank range of a [`ScoreOrder`] (both ends).
struct RankRange<'a> {
    chunks: &'a [Arc<Vec<Ranked>>],
    front: (usize, usize),
    front_left: usize,
}

impl<'a> Iterator for RankRange<'a> {
    type Item = &'a Ranked;

    fn next(&mut self) -> Option<&'a Ranked> {
        if self.front_left == 0 {
            return None;
        }
        loop {
            let (chunk, offset) = self.front;
            let entries = self.chunks.get(chunk)?;
            if let Some(entry) = entries.get(offset) {
                self.front.1 += 1;
                self.front_left -= 1;
                return Some(entry);
            }
            self.front = (chunk + 1, 0);
        }
    }
}

impl<'a> DoubleEndedIterator for RankRange<'a> {
    fn next_back(&mut self) -> Option<&'a Ranked> {
        if self.front_left == 0 {
            return None;
        }
        // The back end: the entry `front_left - 1` places after the front.
        let (mut chunk, mut offset) = self.front;
        let mut left = self.front_left - 1;
        loop {
            let entries = self.chunks.get(chunk)?;
            let room = entries.len().saturating_sub(offset);
            if left < room {
                self.front_left -= 1;
                return entries.get(offset + left);
            }
            left -= room;
            chunk += 1;
            offset = 0;
        }
    }
}

/// A sorted set value; see the module documentation.
#[derive(Clone, Default)]
pub struct ZSet {
    scores: SegMap<Member, f64>,
    order: ScoreOrder,
}

impl ZSet {
    /// The name OBJECT ENCODING reports for this zset's representation.
    pub fn encoding(&self) -> &'static str {
        "skiplist"
    }

    /// An empty sorted set.
    pub fn new() -> Self {
        ZSet::default()
    }

    /// Number of members (ZCARD).
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when the sorted set has no member.
    pub fn is_empty(&self) -> bool {
        self.scores.len() == 0
    }

    /// Number of `Arc`'d parts (segments and order chunks): what cloning copies, one
    /// pointer each.
    pub fn part_count(&self) -> usize {
        self.scores.segment_count() + self.order.chunks.len()
    }

    /// Parts (segments and order chunks) not shared with a clone: those written since it was
    /// cloned.
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        let chunks = self.order.chunks.iter();
        self.scores.unshared_parts() + chunks.filter(|c| Arc::strong_count(c) == 1).count()
    }

    /// The score of `member` (ZSCORE).
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Adds `member` with `score`, or moves it to `score` (ZADD); returns its old score.
    pub fn insert(&mut self, member: &[u8], score: Score) -> Option<f64> {
        let score = score.get();
        if let Some((stored, &old)) = self.scores.get_key_value(member) {
            if old != score {
                let stored = Arc::clone(stored);
                self.order.remove(old, &stored);
                self.order.insert(score, stored);
                if let Some(slot) = self.scores.get_mut(member) {
                    *slot = score;
                }
            }
            return Some(old);
        }
        let member: Member = Arc::from(member);
        self.scores.insert(Arc::clone(&member), score);
        self.order.insert(score, member);
        None
    }

    /// Adds `member` with `score`, or moves it to `score` (ZADD), converting the encoding
    /// when `limits` say the sorted set outgrew the compact one; returns its old score.
    pub fn add(&mut self, member: &[u8], score: Score, limits: &Limits) -> Option<f64> {
        let _ = limits;
        // The compact encoding keeps an integral score as an integer, so -0 reads back as 0.
        self.insert(member, Score(score.0 + 0.0))
    }

    /// Removes `member` (ZREM); returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (stored, score) = self.scores.remove(member)?;
        self.order.remove(score, &stored);
        Some(score)
    }

    /// Every member and its score, by ascending score, ties by member bytes (ZRANGE).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + '_ {
        self.order.iter().map(|(score, member)| (&**member, *score))
    }

    /// The 0-based ascending rank of `member` and its score (ZRANK).
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let score = self.score(member)?;
        let rank = self
            .order
            .count_leading(|entry| order(score, member, entry) == Ordering::Greater);
        Some((rank, score))
    }

    /// The member at ascending rank `rank` and its score.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.range(rank, rank + 1).next()
    }

    /// Members of ascending ranks `start..end` (clamped), in ascending order; reversible.
    pub fn range(
        &self,
        start: usize,
        end: usize,
    ) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + '_ {
        let end = end.min(self.len());
        self.order
            .range(start.min(end), end)
            .map(|(score, member)| (&**member, *score))
    }

    /// How many leading members (in ascending order) satisfy `below`, which must hold for
    /// a prefix of the order and for nothing after it: the rank where a score or lex range
    /// starts or ends.
    pub fn count_leading(&self, below: impl Fn(&[u8], f64) -> bool) -> usize {
        if self.is_empty() {
            return 0;
        }
        self.order
            .count_leading(|(score, member)| below(member, *score))
    }

    /// Removes and returns the lowest (`max` false) or highest member with its score.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let (member, score) = if max {
            self.iter().next_back()
        } else {
            self.iter().next()
        }
        .map(|(member, score)| (member.to_vec(), score))?;
        self.remove(&member);
        Some((member, score))
    }

    /// Removes the members of ascending ranks `start..end` (clamped); returns how many.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let doomed: Vec<Vec<u8>> = self
            .range(start, end)
            .map(|(member, _)| member.to_vec())
            .collect();
        for member in &doomed {
            self.remove(member);
        }
        doomed.len()
    }

    /// One step of ZSCAN: visits the members of one segment of the member index and
    /// returns the next cursor (0 when done); see `SegMap::scan_segment` for the guarantee.
    pub fn scan<'a>(&'a self, cursor: u64, mut visit: impl FnMut(&'a [u8], f64)) -> u64 {
        self.scores
            .scan_segment(cursor, |member, score| visit(member, *score))
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

/// Same members with the same scores (compared as doubles: -0 equals 0).
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

    /// Checks that chunks are sorted across their boundaries, non-empty and not over size.
    fn assert_ordered(zset: &ZSet) {
        let entries: Vec<_> = zset.order.iter().collect();
        assert!(entries
            .windows(2)
            .all(|w| order(w[0].0, &w[0].1, w[1]) == Ordering::Less));
        assert!(zset
            .order
            .chunks
            .iter()
            .all(|c| !c.is_empty() && c.len() <= ORDER_CHUNK));
        assert_eq!(entries.len(), zset.len());
    }

    #[test]
    fn ties_order_by_member_and_scores_move() {
        let mut zset = ZSet::new();
        assert_eq!(zset.insert(b"b", score(1.0)), None);
        assert_eq!(zset.insert(b"a", score(1.0)), None);
        assert_eq!(zset.insert(b"c", score(-0.0)), None);
        assert_eq!(zset.insert(b"0", score(0.0)), None);
        assert_eq!(zset.insert(b"z", score(f64::NEG_INFINITY)), None);
        let members: Vec<&[u8]> = zset.iter().map(|(m, _)| m).collect();
        assert_eq!(members, [&b"z"[..], b"0", b"c", b"a", b"b"]);
        assert_eq!(
            zset.insert(b"z", score(f64::INFINITY)),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(zset.iter().last(), Some((&b"z"[..], f64::INFINITY)));
        assert_eq!(zset.score(b"a"), Some(1.0));
        assert_eq!(zset.remove(b"a"), Some(1.0));
        assert_eq!(zset.remove(b"a"), None);
        assert_eq!(zset.len(), 4);
        assert!(Score::new(f64::NAN).is_none());
    }

    /// A clone shares every segment and chunk; changing one member's score afterwards copies
    /// only its segment, the chunk it leaves and the chunk it joins.
    #[test]
    fn a_write_after_a_clone_copies_few_parts() {
        let mut zset: ZSet = (0..100_000)
            .map(|i| (format!("m{i}"), score(f64::from(i))))
            .collect();
        assert_ordered(&zset);
        let snapshot = zset.clone();
        let shared = |zset: &ZSet| {
            let segments = zset
                .scores
                .segments()
                .iter()
                .zip(snapshot.scores.segments())
                .filter(|(a, b)| Arc::ptr_eq(a, b))
                .count();
            let chunks = zset
                .order
                .chunks
                .iter()
                .filter(|c| snapshot.order.chunks.iter().any(|s| Arc::ptr_eq(c, s)))
                .count();
            segments + chunks
        };
        let parts = zset.part_count();
        assert_eq!(shared(&zset), parts);
        zset.insert(b"m500", score(99_999.5));
        assert!(shared(&zset) >= parts - 3, "{} of {parts}", shared(&zset));
        assert_eq!(snapshot.score(b"m500"), Some(500.0));
        assert_eq!(zset.iter().next_back(), Some((&b"m500"[..], 99_999.5)));
        assert_ordered(&zset);
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
        /// Against a model, through chunk splits and merges.
        #[test]
        fn behaves_as_a_sorted_map(ops in prop::collection::vec(
            (0u16..800, prop_oneof![Just(None), (-50i32..50).prop_map(|s| Some(f64::from(s) / 4.0))]),
            0..3000,
        )) {
            let mut zset = ZSet::new();
            let mut model = BTreeMap::new();
            for (member, change) in ops {
                let member = format!("member:{member}").into_bytes();
                match change {
                    Some(value) => prop_assert_eq!(
                        zset.insert(&member, score(value)),
                        model.insert(member, value)
                    ),
                    None => prop_assert_eq!(zset.remove(&member), model.remove(&member)),
                }
            }
            assert_ordered(&zset);
            prop_assert_eq!(contents(&zset), sorted(&model));
        }

        #[test]
        fn payload_round_trips(entries in prop::collection::btree_map(
            prop::collection::vec(any::<u8>(), 0..12),
            any::<f64>().prop_filter("not NaN", |s| !s.is_nan()),
            0..600,
        )) {
            let zset: ZSet = entries.iter().map(|(m, s)| (m, score(*s))).collect();
            let mut bytes = Vec::new();
            let Ok(()) = encode(&zset, &mut bytes);
            let mut src = SliceReader(&bytes);
            let decoded = decode(&mut src).unwrap();
            prop_assert!(src.0.is_empty());
            // Exact bits, -0 included.
            let bits = |z: &ZSet| z.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&decoded), bits(&zset));
            prop_assert_eq!(contents(&decoded), sorted(&entries));
        }
    }
}
