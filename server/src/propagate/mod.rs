//! Propagation: the stream of write effects, from the commands that change the keyspace to
//! the consumers that must see those changes in order.
//!
//! A *write effect* is a command, RESP-encoded as a client would send it, that reproduces a
//! change exactly when replayed: absolute deadlines instead of relative ones, results instead
//! of floating-point arithmetic, `DEL` for a key the server expired. Commands emit effects
//! through their shard (`store::Shard::propagate`, which holds a [`Feed`]); the append-only
//! file writer (`persist::aof`) drains them today, and replica links, keyspace notifications
//! and client-side-caching invalidation are meant to join as further [`Consumer`]s
//! ([`WriteStream::add_tap`]) without touching the store or any handler.
//!
//! The contract:
//! - **Per-key order.** An effect is appended while its command still holds the lock of
//!   every shard it changed, so two effects about the same key are in the order their
//!   changes happened. Effects of unrelated keys are ordered by their sequence numbers.
//! - **Gap-free sequence.** Every effect gets a number from one counter, from 0 without gaps;
//!   a drain hands its consumers every effect below the horizon it read, exactly once, in
//!   order (see [`stream`] for why; `server/tests/loom_store.rs` model-checks it).
//! - **No global lock on the write path.** Effects go into one of [`LANES`] lanes, each
//!   behind its own small mutex on its own cache line; connection threads have their own
//!   lane ([`set_thread_lane`]), so a lane's lock and buffer stay in that core's cache. The
//!   steady state allocates nothing (lane buffers keep their capacity).
//! - **Units.** Several commands that must propagate as one (a transaction, a script) form a
//!   [`Unit`]: one sequence number, one contiguous record, encoded as `MULTI` ... `EXEC` as
//!   Redis propagates them. A consumer must apply a unit whole or not at all: the
//!   append-only file's loader, which does not read `MULTI` yet, must learn to, and to drop a
//!   unit whose `EXEC` a crash cut off, before anything appends a unit of two or more
//!   commands. [`capture`] turns what a thread propagates until it ends into one unit, for
//!   MULTI/EXEC and EVAL.
//! - **Drain.** One thread drains a stream: the append-only file writer, whose group commit
//!   depends on knowing exactly which effects a write and fsync covered. Consumers run on
//!   that thread and must not block.
//! - **Checked.** In debug builds `dispatch` asserts that a write command which changed the
//!   keyspace propagated something ([`debug`]).
//!
//! The stream exists while the append-only file is on (its writer is the only drain); a
//! consumer that must run without it will need a drain thread of its own.

pub mod debug;
pub mod encode;
pub mod stream;
pub mod unit;

pub use encode::{encode_command, encode_named, encode_select};
pub use stream::{Batch, Consumer, DrainScratch, Effect, TapId, WriteStream, LANES};
pub use unit::{capture, Capture, Unit};

use crate::sync::Arc;

/// Where one shard's effects go: the stream, the shard's database, and the lane used when
/// the calling thread has none of its own. The store holds one per shard while a stream is
/// attached.
#[derive(Clone)]
pub struct Feed {
    stream: Arc<WriteStream>,
    db: u32,
    lane: usize,
}

impl Feed {
    /// A feed into `stream` for database `db`, using `lane` for threads without their own.
    pub fn new(stream: Arc<WriteStream>, db: u32, lane: usize) -> Self {
        Feed { stream, db, lane }
    }

    /// Propagates the command `args`: appends it to the stream, or to the thread's unit while
    /// a [`capture`] is open. Call while holding the lock of every shard the command changed.
    #[inline]
    pub fn emit(&self, args: &[&[u8]]) {
        match route::current() {
            route::Route::Capturing => unit::capture_effect(self, |unit, db| unit.push(db, args)),
            route::Route::Lane(lane) => {
                self.stream.append(lane.unwrap_or(self.lane), self.db, args);
            }
        }
    }

    /// [`Feed::emit`] for the command `name rest...` (no slice of arguments to build).
    #[inline]
    pub fn emit_named<'a>(&self, name: &[u8], rest: impl ExactSizeIterator<Item = &'a [u8]>) {
        match route::current() {
            route::Route::Capturing => {
                unit::capture_effect(self, |unit, db| unit.push_named(db, name, rest))
            }
            route::Route::Lane(lane) => {
                self.stream
                    .append_named(lane.unwrap_or(self.lane), self.db, name, rest);
            }
        }
    }
}

/// Gives the calling thread its own lane for every effect it propagates (connection threads
/// call this once at start, before any capture).
pub fn set_thread_lane(lane: usize) {
    route::set_lane(lane);
}

/// The calling thread's route for effects, in one thread-local word read once per effect:
/// its own lane, none (use the shard's), or an open capture.
mod route {
    use std::cell::Cell;

    const NO_LANE: usize = usize::MAX;
    const CAPTURING: usize = usize::MAX - 1;

    thread_local! {
        static ROUTE: Cell<usize> = const { Cell::new(NO_LANE) };
    }

    /// Where the calling thread's next effect goes.
    pub(super) enum Route {
        /// To a lane: the thread's own, or (`None`) the shard's.
        Lane(Option<usize>),
        /// Into the thread's capture.
        Capturing,
    }

    #[inline]
    pub(super) fn current() -> Route {
        match ROUTE.with(Cell::get) {
            CAPTURING => Route::Capturing,
            NO_LANE => Route::Lane(None),
            lane => Route::Lane(Some(lane)),
        }
    }

    pub(super) fn set_lane(lane: usize) {
        ROUTE.with(|route| route.set(lane.min(CAPTURING - 1)));
    }

    /// Starts capturing; returns the route to restore afterwards.
    pub(super) fn begin_capture() -> usize {
        ROUTE.with(|route| route.replace(CAPTURING))
    }

    /// Restores the route [`begin_capture`] returned.
    pub(super) fn end_capture(saved: usize) {
        ROUTE.with(|route| route.set(saved));
    }

    /// The lane for an effect of a shard whose lane is `shard_lane`, given a saved route.
    pub(super) fn lane_for(saved: usize, shard_lane: usize) -> usize {
        if saved >= CAPTURING {
            shard_lane
        } else {
            saved
        }
    }
}
