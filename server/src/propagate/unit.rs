//! Units: several commands that propagate as one effect, so that a transaction or a script
//! reaches every consumer whole or not at all.
//!
//! A [`Unit`] collects commands (each with its database) and is appended with
//! [`super::WriteStream::append_unit`]: one sequence number, one contiguous record. Its
//! encoding is what Redis propagates for a transaction: `MULTI`, the commands, `EXEC`, with a
//! `SELECT` before a command whose database differs from the one before it, and a final
//! `SELECT` back to the unit's first database before `EXEC`, so a consumer that tracks the
//! current database from [`super::Effect::db`] stays right. A unit of one command is just that
//! command, as Redis does not wrap a lone command either.
//!
//! [`capture`] redirects the effects the calling thread propagates through its shards into
//! a unit, and appends the unit when the capture ends: this is how MULTI/EXEC and EVAL will
//! propagate their commands as one without touching a single handler.

use std::cell::RefCell;

use super::encode::{encode_command, encode_named, encode_select};
use super::{Feed, WriteStream};
use crate::sync::Arc;

/// Commands that propagate as one effect.
#[derive(Debug, Default, Clone)]
pub struct Unit {
    /// The commands, encoded, with `SELECT`s between databases.
    body: Vec<u8>,
    commands: usize,
    /// Database of the first command.
    first_db: Option<u32>,
    /// Database of the last command.
    last_db: u32,
}

impl Unit {
    /// An empty unit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the command `args` for database `db`.
    pub fn push(&mut self, db: u32, args: &[&[u8]]) {
        self.select(db);
        encode_command(&mut self.body, args);
    }

    /// Adds the command `name rest...` for database `db`.
    pub fn push_named<'a>(
        &mut self,
        db: u32,
        name: &[u8],
        rest: impl ExactSizeIterator<Item = &'a [u8]>,
    ) {
        self.select(db);
        encode_named(&mut self.body, name, rest);
    }

    /// Counts a new command for `db`, switching database first if needed.
    fn select(&mut self, db: u32) {
        match self.first_db {
            None => self.first_db = Some(db),
            Some(_) if db != self.last_db => encode_select(&mut self.body, db),
            Some(_) => {}
        }
        self.last_db = db;
        self.commands += 1;
    }

    /// Number of commands added.
    pub fn len(&self) -> usize {
        self.commands
    }

    /// True when no command was added.
    pub fn is_empty(&self) -> bool {
        self.commands == 0
    }

    /// The database the unit's effect applies to (that of its first command), if it has one.
    pub fn db(&self) -> Option<u32> {
        self.first_db
    }

    /// Empties the unit, keeping its buffer.
    pub fn clear(&mut self) {
        self.body.clear();
        self.commands = 0;
        self.first_db = None;
        self.last_db = 0;
    }

    /// Appends the unit's record to `out`: the lone command as it is, or `MULTI` ... `EXEC`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let Some(first_db) = self.first_db else {
            return;
        };
        if self.commands == 1 {
            out.extend_from_slice(&self.body);
            return;
        }
        encode_command(out, &[b"MULTI"]);
        out.extend_from_slice(&self.body);
        if self.last_db != first_db {
            encode_select(out, first_db);
        }
        encode_command(out, &[b"EXEC"]);
    }
}

/// What the calling thread is capturing.
#[derive(Default)]
struct Captured {
    unit: Unit,
    /// The stream and lane the effects were headed to (the first one's).
    target: Option<(Arc<WriteStream>, usize)>,
    /// Nested captures (EVAL inside MULTI): only the outermost appends.
    depth: u32,
    /// The route of the thread before the capture began.
    saved_route: usize,
}

thread_local! {
    static CAPTURED: RefCell<Captured> = RefCell::new(Captured::default());
}

/// An open capture; see [`capture`]. Ends when dropped (or with [`Capture::finish`]).
#[must_use = "a capture ends, and appends its unit, when dropped"]
pub struct Capture {
    /// Not `Send`: the capture belongs to the thread whose effects it collects.
    _thread_bound: std::marker::PhantomData<*const ()>,
}

/// From now until the returned [`Capture`] ends, every write effect this thread propagates
/// through a shard is collected into one [`Unit`] instead of being appended; when the
/// capture ends, the unit is appended as one effect. Captures nest: an inner one joins the
/// outer one's unit.
///
/// Ordering: end the capture while still holding the lock of every shard the captured
/// commands changed (declare it after the guards, so it drops first). Then no other write
/// to those keys can come between the captured changes and the unit's place in the stream.
pub fn capture() -> Capture {
    CAPTURED.with(|captured| {
        let mut captured = captured.borrow_mut();
        if captured.depth == 0 {
            captured.saved_route = super::route::begin_capture();
        }
        captured.depth += 1;
    });
    Capture {
        _thread_bound: std::marker::PhantomData,
    }
}

impl Capture {
    /// Ends the capture now; returns the sequence number of the appended unit, or `None` if
    /// there was nothing to append (no effect, no stream attached, or an inner capture).
    pub fn finish(self) -> Option<u64> {
        let appended = end_capture();
        std::mem::forget(self);
        appended
    }
}

impl Capture {
    /// Ends the capture, dropping what it collected instead of appending it: for a script
    /// whose changes were undone to run it again (`cmd::scripting`). Only the outermost
    /// capture can abandon; an inner one just ends (its effects stay with the outer one).
    pub fn abandon(self) {
        CAPTURED.with(|captured| {
            let mut captured = captured.borrow_mut();
            if captured.depth == 1 {
                captured.unit.clear();
                captured.target = None;
            }
        });
        end_capture();
        std::mem::forget(self);
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // The changes are made: their effects must not be lost, even on an early return.
        end_capture();
    }
}

fn end_capture() -> Option<u64> {
    CAPTURED.with(|captured| {
        let mut captured = captured.borrow_mut();
        captured.depth = captured.depth.saturating_sub(1);
        if captured.depth > 0 {
            return None;
        }
        super::route::end_capture(captured.saved_route);
        let target = captured.target.take();
        let appended = target.and_then(|(stream, lane)| stream.append_unit(lane, &captured.unit));
        captured.unit.clear();
        appended
    })
}

/// Adds an effect to the calling thread's capture (the route said one is open).
#[cold]
pub(super) fn capture_effect(feed: &Feed, add: impl FnOnce(&mut Unit, u32)) {
    CAPTURED.with(|captured| {
        let mut captured = captured.borrow_mut();
        let captured = &mut *captured;
        match &captured.target {
            None => {
                let lane = super::route::lane_for(captured.saved_route, feed.lane);
                captured.target = Some((Arc::clone(&feed.stream), lane));
            }
            Some((stream, _)) if !Arc::ptr_eq(stream, &feed.stream) => {
                // Streams change only with every shard locked, which a capture holding the
                // shards it changed rules out; should it happen, the effect goes straight to
                // its own stream, still in order for its keys (their shard is locked).
                let mut single = Unit::new();
                add(&mut single, feed.db);
                let lane = super::route::lane_for(captured.saved_route, feed.lane);
                feed.stream.append_unit(lane, &single);
                return;
            }
            Some(_) => {}
        }
        add(&mut captured.unit, feed.db);
    });
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;
    use crate::propagate::{DrainScratch, Effect};

    fn encoded(commands: &[&[&[u8]]]) -> Vec<u8> {
        let mut out = Vec::new();
        for args in commands {
            encode_command(&mut out, args);
        }
        out
    }

    fn drain_all(stream: &WriteStream) -> Vec<(u64, u32, Vec<u8>)> {
        let mut seen = Vec::new();
        let mut scratch = DrainScratch::default();
        stream.drain(stream.horizon(), &mut scratch, &mut |e: Effect<'_>| {
            seen.push((e.seq, e.db, e.bytes.to_vec()))
        });
        seen
    }

    /// Several commands become one effect: one sequence number, MULTI ... EXEC around them,
    /// SELECTs where the database changes and back to the first database before EXEC.
    #[test]
    fn a_unit_is_one_effect_wrapped_in_multi_exec() {
        let stream = WriteStream::with_lanes(2);
        stream.append(0, 0, &[b"SET", b"before", b"1"]);
        let mut unit = Unit::new();
        unit.push(3, &[b"SET", b"a", b"1"]);
        unit.push_named(3, b"DEL", [&b"b"[..], b"c"].into_iter());
        unit.push(5, &[b"INCRBY", b"n", b"2"]);
        assert_eq!(unit.len(), 3);
        assert_eq!(stream.append_unit(1, &unit), Some(1));
        stream.append(0, 0, &[b"SET", b"after", b"1"]);
        let seen = drain_all(&stream);
        assert_eq!(seen.len(), 3, "the unit is one effect");
        assert_eq!((seen[1].0, seen[1].1), (1, 3));
        let expected = encoded(&[
            &[b"MULTI"],
            &[b"SET", b"a", b"1"],
            &[b"DEL", b"b", b"c"],
            &[b"SELECT", b"5"],
            &[b"INCRBY", b"n", b"2"],
            &[b"SELECT", b"3"],
            &[b"EXEC"],
        ]);
        assert_eq!(seen[1].2, expected);
    }

    /// A unit of one command is that command; an empty unit appends nothing.
    #[test]
    fn lone_and_empty_units() {
        let stream = WriteStream::with_lanes(1);
        let mut unit = Unit::new();
        assert_eq!(stream.append_unit(0, &unit), None);
        assert_eq!(stream.horizon(), 0, "no number spent on nothing");
        unit.push(2, &[b"SET", b"k", b"v"]);
        assert_eq!(stream.append_unit(0, &unit), Some(0));
        let seen = drain_all(&stream);
        assert_eq!(seen, vec![(0, 2, encoded(&[&[b"SET", b"k", b"v"]]))]);
        unit.clear();
        assert!(unit.is_empty());
        assert_eq!(unit.db(), None);
    }

    /// Effects propagated through feeds while a capture is open become one unit, appended
    /// when the outermost capture ends; outside a capture, effects append one by one again.
    #[test]
    fn a_capture_turns_effects_into_one_unit() {
        let stream = Arc::new(WriteStream::with_lanes(2));
        let db0 = Feed::new(Arc::clone(&stream), 0, 0);
        let db1 = Feed::new(Arc::clone(&stream), 1, 1);
        db0.emit(&[b"SET", b"x", b"1"]);
        let outer = capture();
        db0.emit(&[b"SET", b"a", b"1"]);
        {
            let inner = capture();
            db1.emit_named(b"DEL", [&b"b"[..]].into_iter());
            assert_eq!(inner.finish(), None, "an inner capture joins the outer one");
        }
        db0.emit(&[b"SET", b"c", b"1"]);
        assert_eq!(stream.horizon(), 1, "nothing appended while capturing");
        assert_eq!(outer.finish(), Some(1));
        db1.emit(&[b"SET", b"y", b"1"]);
        let seen = drain_all(&stream);
        let unit = encoded(&[
            &[b"MULTI"],
            &[b"SET", b"a", b"1"],
            &[b"SELECT", b"1"],
            &[b"DEL", b"b"],
            &[b"SELECT", b"0"],
            &[b"SET", b"c", b"1"],
            &[b"EXEC"],
        ]);
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1], (1, 0, unit));
        assert_eq!(seen[2], (2, 1, encoded(&[&[b"SET", b"y", b"1"]])));
        // A capture that saw nothing appends nothing, and a dropped one still appends.
        assert_eq!(capture().finish(), None);
        {
            let _dropped = capture();
            db0.emit(&[b"SET", b"z", b"1"]);
        }
        assert_eq!(stream.horizon(), 4);
    }
}
