//! The write stream: lanes that writers append to without a global lock, one sequence
//! counter that orders them, and the drain that merges them back into one ordered sequence
//! for the consumers.
//!
//! Why the merge is gap-free: an effect's sequence number is taken *inside* its lane's
//! critical section. The drain first reads the counter (the horizon `H`), then locks every
//! lane in turn and takes its effects. Any effect numbered below `H` had its number taken
//! before the drain read the counter, inside a lane critical section that had begun by then;
//! locking that lane waits for the section to end, so the effect is in hand. Effects numbered
//! `H` or above that happen to be taken too are carried over to the next round. Hence a round
//! hands its consumers exactly the effects `< H`, in order, and every later round continues
//! where the previous one stopped. `server/tests/loom_store.rs` model-checks this.

use std::ops::Range;

use super::encode::{encode_command, encode_named};
use super::unit::Unit;
use crate::sync::{AtomicU64, Mutex, Ordering};

/// Default number of lanes: one per shard of a database, which is also how many connection
/// threads usually run.
pub const LANES: usize = 16;

/// One appended effect: its place in the global order, its database, where its bytes are.
#[derive(Debug, Clone)]
struct EffectRef {
    seq: u64,
    db: u32,
    bytes: Range<usize>,
}

/// Effects appended to one lane since the drain last took them.
#[derive(Debug, Default)]
pub struct LaneBuf {
    bytes: Vec<u8>,
    effects: Vec<EffectRef>,
}

impl LaneBuf {
    fn push(&mut self, seq: u64, db: u32, encode: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        encode(&mut self.bytes);
        let end = self.bytes.len();
        self.effects.push(EffectRef {
            seq,
            db,
            bytes: start..end,
        });
    }

    fn clear(&mut self) {
        // Keep capacity for the steady state, but give back what a burst left behind.
        if self.bytes.capacity() > 4 << 20 && self.bytes.len() < 1 << 20 {
            self.bytes = Vec::new();
            self.effects = Vec::new();
        } else {
            self.bytes.clear();
            self.effects.clear();
        }
    }
}

/// Pads a lane to its own cache lines: two cores appending to different lanes must not share
/// one.
#[repr(align(128))]
#[derive(Default)]
struct PaddedLane(Mutex<LaneBuf>);

/// The sequence counter on a cache line of its own: it is the one line every write touches,
/// and sharing it with the lane table made each append miss on the table pointer.
#[repr(align(128))]
struct PaddedCounter(AtomicU64);

/// One write effect as a consumer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect<'a> {
    /// Its place in the stream's order (gap-free from 0).
    pub seq: u64,
    /// The database it applies to.
    pub db: u32,
    /// Its RESP encoding: one command, or a unit wrapped in `MULTI` ... `EXEC`.
    pub bytes: &'a [u8],
}

/// The effects one drain round took, in sequence order: every effect numbered from where
/// the previous round stopped up to (not including) [`Batch::horizon`].
pub struct Batch<'a> {
    horizon: u64,
    order: &'a [(u64, u32, u32)],
    lanes: &'a [LaneBuf],
    carry: &'a LaneBuf,
}

impl<'a> Batch<'a> {
    /// Every effect below this number has now been handed out.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// Number of effects in the batch.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when the round found nothing new.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The effects, in sequence order.
    pub fn iter(&self) -> impl Iterator<Item = Effect<'a>> + '_ {
        self.order.iter().map(|&(seq, lane, index)| {
            let buf = self.lanes.get(lane as usize).unwrap_or(self.carry);
            let effect = &buf.effects[index as usize];
            Effect {
                seq,
                db: effect.db,
                bytes: &buf.bytes[effect.bytes.clone()],
            }
        })
    }

    /// The part of the batch numbered `first` or above (a consumer that joined the stream at
    /// `first` skips what came before).
    pub fn since(&self, first: u64) -> Batch<'a> {
        let skip = self.order.partition_point(|&(seq, _, _)| seq < first);
        Batch {
            horizon: self.horizon,
            order: &self.order[skip..],
            lanes: self.lanes,
            carry: self.carry,
        }
    }
}

/// A receiver of the write stream: the append-only file today; replica links, keyspace
/// notifications and client-side-caching invalidation later.
pub trait Consumer {
    /// Takes one drain round's effects, in sequence order (the batch may be empty). Runs on
    /// the draining thread, the append-only file writer, between its drain and its write: it
    /// must not block, or it delays every `appendfsync always` reply. Copy what is needed
    /// and return.
    fn consume(&mut self, batch: &Batch<'_>);
}

impl<F: FnMut(Effect<'_>)> Consumer for F {
    fn consume(&mut self, batch: &Batch<'_>) {
        for effect in batch.iter() {
            self(effect);
        }
    }
}

/// Identifies a consumer added with [`WriteStream::add_tap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapId(u64);

/// A consumer that receives every round after the draining one.
struct Tap {
    id: TapId,
    first: u64,
    consumer: Box<dyn Consumer + Send>,
}

/// The stream of write effects: lanes plus the sequence counter, and the consumers that
/// read it besides the one that drains it.
pub struct WriteStream {
    next_seq: PaddedCounter,
    lanes: Box<[PaddedLane]>,
    /// Taken once per drain round by the draining thread and when a tap comes or goes, never
    /// on the write path. A std mutex: it is no part of the merge the loom model checks.
    taps: std::sync::Mutex<Vec<Tap>>,
    next_tap: std::sync::atomic::AtomicU64,
}

impl Default for WriteStream {
    fn default() -> Self {
        Self::new()
    }
}

impl WriteStream {
    /// An empty stream whose first effect will be number 0.
    pub fn new() -> Self {
        Self::with_lanes(LANES)
    }

    /// An empty stream with `lanes` lanes (loom models use few, to keep the state space
    /// small).
    pub fn with_lanes(lanes: usize) -> Self {
        WriteStream {
            next_seq: PaddedCounter(AtomicU64::new(0)),
            lanes: (0..lanes.max(1)).map(|_| PaddedLane::default()).collect(),
            taps: std::sync::Mutex::new(Vec::new()),
            next_tap: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Appends one effect for database `db` to lane `lane` (modulo the lane count) and
    /// returns its sequence number. Call it while holding the lock of every shard the command
    /// changed.
    #[inline]
    pub fn append(&self, lane: usize, db: u32, args: &[&[u8]]) -> u64 {
        self.append_encoded(lane, db, |out| encode_command(out, args))
    }

    /// [`WriteStream::append`] for the command `name rest...`.
    #[inline]
    pub fn append_named<'a>(
        &self,
        lane: usize,
        db: u32,
        name: &[u8],
        rest: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> u64 {
        self.append_encoded(lane, db, |out| encode_named(out, name, rest))
    }

    /// Appends the commands of `unit` as one effect (one sequence number, contiguous bytes;
    /// see [`Unit`]) and returns its number, or appends nothing for an empty unit. Call it
    /// while holding the lock of every shard the unit changed.
    pub fn append_unit(&self, lane: usize, unit: &Unit) -> Option<u64> {
        let db = unit.db()?;
        Some(self.append_encoded(lane, db, |out| unit.encode_into(out)))
    }

    #[inline]
    fn append_encoded(&self, lane: usize, db: u32, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let mut buf = self.lanes[lane % self.lanes.len()].0.lock();
        let seq = self.next_seq.0.fetch_add(1, Ordering::SeqCst);
        buf.push(seq, db, encode);
        seq
    }

    /// The number the next effect will get: every effect below it has been appended (or is
    /// being appended under a lane lock that the drain will wait for).
    pub fn horizon(&self) -> u64 {
        self.next_seq.0.load(Ordering::SeqCst)
    }

    /// Adds a consumer that receives, on the draining thread and after the draining consumer,
    /// every effect numbered `first` or above. To join at a point in time (a replica's full
    /// synchronisation), read [`WriteStream::horizon`] with every shard locked, at the same
    /// instant as the snapshot begins, and pass it as `first`: nothing before it has been
    /// drained to a tap yet that it would miss, since a round hands taps only what it took.
    pub fn add_tap(&self, first: u64, consumer: Box<dyn Consumer + Send>) -> TapId {
        let id = TapId(
            self.next_tap
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        self.taps_locked().push(Tap {
            id,
            first,
            consumer,
        });
        id
    }

    /// Removes a tap; returns its consumer, or `None` if it was not there.
    pub fn remove_tap(&self, id: TapId) -> Option<Box<dyn Consumer + Send>> {
        let mut taps = self.taps_locked();
        let position = taps.iter().position(|tap| tap.id == id)?;
        Some(taps.remove(position).consumer)
    }

    fn taps_locked(&self) -> std::sync::MutexGuard<'_, Vec<Tap>> {
        self.taps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes every effect numbered below `horizon` (a value [`WriteStream::horizon`]
    /// returned) and hands them in sequence order to `consumer`, then to every tap. After
    /// this call, every effect below `horizon` has been handed out exactly once over all
    /// calls; later ones wait for a later call. Only one thread drains a stream.
    pub fn drain<C: Consumer + ?Sized>(
        &self,
        horizon: u64,
        scratch: &mut DrainScratch,
        consumer: &mut C,
    ) -> u64 {
        if scratch.lanes.len() != self.lanes.len() {
            scratch
                .lanes
                .resize_with(self.lanes.len(), LaneBuf::default);
        }
        for (lane, taken) in self.lanes.iter().zip(scratch.lanes.iter_mut()) {
            let mut guard = lane.0.lock();
            std::mem::swap(&mut *guard, taken);
        }
        scratch.order.clear();
        for (lane_index, lane) in scratch
            .lanes
            .iter()
            .chain(std::iter::once(&scratch.carry))
            .enumerate()
        {
            for (index, effect) in lane.effects.iter().enumerate() {
                scratch
                    .order
                    .push((effect.seq, lane_index as u32, index as u32));
            }
        }
        scratch.order.sort_unstable_by_key(|&(seq, _, _)| seq);
        let due = scratch.order.partition_point(|&(seq, _, _)| seq < horizon);
        let batch = Batch {
            horizon,
            order: &scratch.order[..due],
            lanes: &scratch.lanes,
            carry: &scratch.carry,
        };
        consumer.consume(&batch);
        for tap in self.taps_locked().iter_mut() {
            tap.consumer.consume(&batch.since(tap.first));
        }
        let later = Batch {
            order: &scratch.order[due..],
            ..batch
        };
        let mut next_carry = std::mem::take(&mut scratch.spare);
        next_carry.clear();
        for effect in later.iter() {
            next_carry.push(effect.seq, effect.db, |out| {
                out.extend_from_slice(effect.bytes)
            });
        }
        for lane in &mut scratch.lanes {
            lane.clear();
        }
        scratch.spare = std::mem::replace(&mut scratch.carry, next_carry);
        horizon
    }
}

/// The drain's reusable buffers, so that a steady stream of effects costs no allocation.
#[derive(Default)]
pub struct DrainScratch {
    lanes: Vec<LaneBuf>,
    carry: LaneBuf,
    spare: LaneBuf,
    order: Vec<(u64, u32, u32)>,
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;
    use crate::sync::Arc;

    /// The key of a `SET key value` effect.
    fn key_of(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes).into_owned();
        text.split("\r\n").nth(4).unwrap_or_default().to_owned()
    }

    #[test]
    fn drain_merges_lanes_in_sequence_order() {
        let stream = WriteStream::new();
        let mut expected = Vec::new();
        for i in 0..100u32 {
            let key = format!("k{i}");
            stream.append((i * 7) as usize, i % 3, &[b"SET", key.as_bytes(), b"v"]);
            expected.push((i % 3, key));
        }
        let mut scratch = DrainScratch::default();
        let mut seen = Vec::new();
        let horizon = stream.drain(stream.horizon(), &mut scratch, &mut |e: Effect<'_>| {
            seen.push((e.db, key_of(e.bytes)));
        });
        assert_eq!(horizon, 100);
        assert_eq!(seen, expected);
        let mut again = 0;
        stream.drain(stream.horizon(), &mut scratch, &mut |_: Effect<'_>| {
            again += 1
        });
        assert_eq!(again, 0);
    }

    /// Effects at or above the horizon wait for a later round, and come out then, in order.
    #[test]
    fn effects_past_the_horizon_are_carried_to_the_next_round() {
        let stream = WriteStream::with_lanes(3);
        for i in 0..10u8 {
            stream.append(usize::from(i), 0, &[b"SET", &[b'a' + i], b"v"]);
        }
        let mut scratch = DrainScratch::default();
        let mut seen = Vec::new();
        stream.drain(4, &mut scratch, &mut |e: Effect<'_>| seen.push(e.seq));
        assert_eq!(seen, vec![0, 1, 2, 3]);
        stream.append(0, 0, &[b"SET", b"z", b"v"]);
        stream.drain(stream.horizon(), &mut scratch, &mut |e: Effect<'_>| {
            seen.push(e.seq)
        });
        assert_eq!(seen, (0..11).collect::<Vec<_>>());
    }

    /// An effect as a test keeps it: sequence number, database, bytes.
    type Kept = (u64, u32, Vec<u8>);

    /// Records what it is handed, for the tap tests.
    struct Recorder(Arc<std::sync::Mutex<Vec<Kept>>>);

    impl Consumer for Recorder {
        fn consume(&mut self, batch: &Batch<'_>) {
            let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
            seen.extend(batch.iter().map(|e| (e.seq, e.db, e.bytes.to_vec())));
        }
    }

    /// A second consumer sees exactly what the draining one sees from the point it joined,
    /// in the same order, and nothing once removed.
    #[test]
    fn taps_see_the_same_ordered_effects_from_where_they_joined() {
        let stream = WriteStream::with_lanes(4);
        let mut scratch = DrainScratch::default();
        let mut drained = Vec::new();
        stream.append(1, 0, &[b"SET", b"before", b"v"]);
        let joined_at = stream.horizon();
        let tapped = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tap = stream.add_tap(joined_at, Box::new(Recorder(Arc::clone(&tapped))));
        for i in 0..20u8 {
            stream.append(
                usize::from(i),
                u32::from(i % 2),
                &[b"SET", &[b'a' + i], b"v"],
            );
            if i % 7 == 0 {
                stream.drain(stream.horizon(), &mut scratch, &mut |e: Effect<'_>| {
                    drained.push((e.seq, e.db, e.bytes.to_vec()))
                });
            }
        }
        stream.drain(stream.horizon(), &mut scratch, &mut |e: Effect<'_>| {
            drained.push((e.seq, e.db, e.bytes.to_vec()))
        });
        assert_eq!(drained.len(), 21);
        let tapped_now = tapped.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            tapped_now,
            drained[1..].to_vec(),
            "everything from joined_at"
        );
        assert!(stream.remove_tap(tap).is_some());
        assert!(stream.remove_tap(tap).is_none());
        stream.append(0, 0, &[b"SET", b"after", b"v"]);
        stream.drain(stream.horizon(), &mut scratch, &mut |_: Effect<'_>| {});
        assert_eq!(tapped.lock().unwrap_or_else(|e| e.into_inner()).len(), 20);
    }
}
