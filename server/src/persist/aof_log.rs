//! The in-memory side of the append-only log: where the request path leaves its records.
//!
//! A write appends its record while it still holds the lock of the shard it changed, so two
//! records about the same key are always in the order their changes happened. There is no
//! global lock: records go into one of [`LANES`] lanes, each behind its own small mutex, and
//! carry a sequence number from one atomic counter. The writer thread merges the lanes back
//! into sequence order. Which lane a record uses does not matter for correctness; each
//! connection thread has its own ([`set_thread_lane`]), so a lane's lock and buffer stay in
//! that core's cache (only the writer visits them, once per round), and other threads use the
//! shard's index.
//!
//! Why the merge is gap-free: a record's sequence number is taken *inside* its lane's critical
//! section. The writer first reads the counter (the horizon `H`), then locks every lane in
//! turn and takes its records. Any record numbered below `H` had its number taken before the
//! writer read the counter, inside a lane critical section that had begun by then; locking
//! that lane waits for the section to end, so the record is in hand. Records numbered `H` or
//! above that happen to be taken too are carried over to the next round. Hence the writer
//! emits exactly the records `< H`, in order, and every later round continues where the
//! previous one stopped. `loom_store.rs` model-checks this.

use std::cell::Cell;
use std::ops::Range;

use crate::sync::{AtomicU64, Mutex, Ordering};
use protocol::IntText;

/// Number of lanes; a shard `i` of any database uses lane `i % LANES`.
pub const LANES: usize = crate::store::SHARDS;

/// One logged command: its place in the global order, its database, where its bytes are.
#[derive(Debug, Clone)]
struct RecordRef {
    seq: u64,
    db: u32,
    bytes: Range<usize>,
}

/// Records appended to one lane since the writer last took them.
#[derive(Debug, Default)]
pub struct LaneBuf {
    bytes: Vec<u8>,
    records: Vec<RecordRef>,
}

impl LaneBuf {
    fn push(&mut self, seq: u64, db: u32, encoded: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        encoded(&mut self.bytes);
        let end = self.bytes.len();
        self.records.push(RecordRef {
            seq,
            db,
            bytes: start..end,
        });
    }

    fn clear(&mut self) {
        // Keep capacity for the steady state, but give back what a burst left behind.
        if self.bytes.capacity() > 4 << 20 && self.bytes.len() < 1 << 20 {
            self.bytes = Vec::new();
            self.records = Vec::new();
        } else {
            self.bytes.clear();
            self.records.clear();
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

/// The request path's side of the log: lanes plus the sequence counter.
pub struct AofLog {
    next_seq: PaddedCounter,
    lanes: Box<[PaddedLane]>,
}

thread_local! {
    /// The lane of the current thread, when it has one of its own.
    static THREAD_LANE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Gives the calling thread its own lane for every record it appends (connection threads call
/// this once at start).
pub fn set_thread_lane(lane: usize) {
    THREAD_LANE.with(|own| own.set(Some(lane)));
}

impl Default for AofLog {
    fn default() -> Self {
        Self::new()
    }
}

impl AofLog {
    /// An empty log whose first record will be number 0.
    pub fn new() -> Self {
        Self::with_lanes(LANES)
    }

    /// An empty log with `lanes` lanes (loom models use few, to keep the state space small).
    pub fn with_lanes(lanes: usize) -> Self {
        AofLog {
            next_seq: PaddedCounter(AtomicU64::new(0)),
            lanes: (0..lanes.max(1)).map(|_| PaddedLane::default()).collect(),
        }
    }

    /// Appends a record for database `db` and returns its sequence number: to the calling
    /// thread's own lane if it has one, else to lane `lane`. `args` is encoded as a RESP array
    /// of bulk strings, exactly what a client would send. Call it while holding the lock of
    /// every shard the command changed.
    pub fn append(&self, lane: usize, db: u32, args: &[&[u8]]) -> u64 {
        let lane = THREAD_LANE.with(Cell::get).unwrap_or(lane);
        let mut buf = self.lanes[lane % self.lanes.len()].0.lock();
        let seq = self.next_seq.0.fetch_add(1, Ordering::SeqCst);
        buf.push(seq, db, |out| encode_command(out, args));
        seq
    }

    /// The number the next record will get: every record below it has been appended (or is
    /// being appended under a lock that the writer will wait for).
    pub fn horizon(&self) -> u64 {
        self.next_seq.0.load(Ordering::SeqCst)
    }

    /// Takes every record numbered below `horizon` (a value [`AofLog::horizon`] returned),
    /// passing them to `emit` in sequence order as (sequence number, database, encoded
    /// command). After this call, every record below `horizon` has been emitted exactly once
    /// over all calls; later ones wait for a later call.
    pub fn drain(
        &self,
        horizon: u64,
        scratch: &mut DrainScratch,
        mut emit: impl FnMut(u64, u32, &[u8]),
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
        let carry_index = scratch.lanes.len();
        for (lane_index, lane) in scratch
            .lanes
            .iter()
            .chain(std::iter::once(&scratch.carry))
            .enumerate()
        {
            for (record_index, record) in lane.records.iter().enumerate() {
                scratch
                    .order
                    .push((record.seq, lane_index as u32, record_index as u32));
            }
        }
        scratch.order.sort_unstable_by_key(|&(seq, _, _)| seq);
        let mut next_carry = std::mem::take(&mut scratch.spare);
        next_carry.clear();
        for &(seq, lane_index, record_index) in &scratch.order {
            let lane = if lane_index as usize == carry_index {
                &scratch.carry
            } else {
                &scratch.lanes[lane_index as usize]
            };
            let record = &lane.records[record_index as usize];
            let bytes = &lane.bytes[record.bytes.clone()];
            if seq < horizon {
                emit(seq, record.db, bytes);
            } else {
                next_carry.push(seq, record.db, |out| out.extend_from_slice(bytes));
            }
        }
        for lane in &mut scratch.lanes {
            lane.clear();
        }
        scratch.spare = std::mem::replace(&mut scratch.carry, next_carry);
        horizon
    }
}

/// The writer's reusable buffers for [`AofLog::drain`], so that a steady stream of records
/// costs no allocation.
#[derive(Default)]
pub struct DrainScratch {
    lanes: Vec<LaneBuf>,
    carry: LaneBuf,
    spare: LaneBuf,
    order: Vec<(u64, u32, u32)>,
}

/// Encodes `args` as a RESP array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let count = |n: usize| IntText::new(i64::try_from(n).unwrap_or(i64::MAX));
    out.push(b'*');
    out.extend_from_slice(count(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(count(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_a_client() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn drain_merges_lanes_in_sequence_order() {
        let log = AofLog::new();
        let mut expected = Vec::new();
        for i in 0..100u32 {
            let key = format!("k{i}");
            log.append((i * 7) as usize, i % 3, &[b"SET", key.as_bytes(), b"v"]);
            expected.push((i % 3, key));
        }
        let mut scratch = DrainScratch::default();
        let mut seen = Vec::new();
        let horizon = log.drain(log.horizon(), &mut scratch, |_, db, bytes| {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let key = text.split("\r\n").nth(4).unwrap_or_default().to_owned();
            seen.push((db, key));
        });
        assert_eq!(horizon, 100);
        assert_eq!(seen, expected);
        let mut again = 0;
        log.drain(log.horizon(), &mut scratch, |_, _, _| again += 1);
        assert_eq!(again, 0);
    }
}
