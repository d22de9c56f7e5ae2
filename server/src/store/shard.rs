//! One shard of a database: its keys and a min-heap of their expiry deadlines.
//!
//! The heap uses lazy deletion: EXPIRE, PERSIST, SET and DEL never search it. A heap entry is
//! a deadline and the table index of the node it was set on (16 bytes, no copy of the key).
//! An entry popped by the active expiry sweep acts only if the node at that index carries
//! exactly that deadline, which is then due, so whatever key lives there now has expired;
//! any other popped entry is stale and is dropped. When stale entries outnumber live deadlines,
//! or the table compacts its nodes (indices change), the heap is rebuilt from the table, so a
//! client re-arming the same TTL in a loop cannot grow it without bound.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;

use bytes::Bytes;

use super::capture::SnapshotBatch;
use super::lazyfree::LazyFree;
use super::table::Table;
use super::value::Value;
use super::waiters::ShardWaiters;
use super::watch::WatchedKeys;
use crate::propagate::{debug, Feed};

/// A stored value and its absolute expiry time.
pub struct Entry {
    /// The value itself.
    pub value: Value,
    /// Bits 0..63: Unix time in milliseconds at which the key expires (0: persistent key).
    /// Bit 63: the snapshot mark (see [`Shard::snapshot_begin`]). Private so that every change
    /// goes through [`Shard`], which keeps the heap and the snapshot in step.
    meta: u64,
}

/// A value and its deadline: 32 bytes, which with the key and the chain links fills the
/// table's one-cache-line node (`store::table`).
const _: () = assert!(std::mem::size_of::<Entry>() == 32);

/// Bit of [`Entry::meta`] that holds the snapshot mark.
const MARK_BIT: u64 = 1 << 63;
/// Most bytes of keys and strings one snapshot step copies under the lock, beside its entry
/// budget (a single larger string is still copied whole, in a step of its own).
const STEP_BYTES: usize = 256 * 1024;
/// Most collection parts one snapshot step clones under the lock (pointer copies; a single
/// collection with more is still cloned whole, in a step of its own).
const STEP_PARTS: usize = 4096;
/// Buckets of a resize in progress that each cron visit moves (tens of microseconds).
const CRON_REHASH_BUCKETS: usize = 4096;

impl Entry {
    /// Unix time in milliseconds at which the key expires, if it has a TTL.
    #[inline]
    pub fn expires_at(&self) -> Option<u64> {
        let at = self.meta & !MARK_BIT;
        (at != 0).then_some(at)
    }

    #[inline]
    fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at().is_some_and(|at| at <= now_ms)
    }

    #[inline]
    fn mark(&self) -> bool {
        self.meta & MARK_BIT != 0
    }

    #[inline]
    fn set_mark(&mut self, mark: bool) {
        self.meta = (self.meta & !MARK_BIT) | if mark { MARK_BIT } else { 0 };
    }

    /// Replaces the deadline (clamped into 63 bits), keeping the mark.
    #[inline]
    fn set_expires_at(&mut self, at: Option<u64>) {
        let at = at.map_or(0, |at| at.clamp(1, !MARK_BIT));
        self.meta = (self.meta & MARK_BIT) | at;
    }
}

/// A deadline in the heap: when, and the table index of the node it belongs to. Ordered by
/// time only.
struct Deadline {
    at: u64,
    index: u32,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Deadline {}
impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.at.cmp(&other.at)
    }
}

/// Counters kept under the shard lock (so they cost no shared cache line on the hot path).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Keys removed because their TTL passed (lazily or by the sweep).
    pub expired: u64,
}

/// A point-in-time snapshot being walked through this shard (see [`Shard::snapshot_begin`]).
struct SnapshotWalk {
    /// Next node slot to visit.
    cursor: usize,
    /// Table layout the cursor refers to; a compaction restarts the walk (marks prevent
    /// entries from being taken twice).
    layout: u64,
    /// Entries as they were when the snapshot began, captured by writes that reached them
    /// before the walk did.
    preimages: SnapshotBatch,
}

/// Keys of one shard and the heap of their deadlines.
#[derive(Default)]
pub struct Shard {
    table: Table<Entry>,
    deadlines: BinaryHeap<Reverse<Deadline>>,
    /// The table layout the heap's indices refer to.
    heap_layout: u64,
    /// Number of keys that carry a deadline (the `expires=` of INFO keyspace).
    volatile: usize,
    stats: ShardStats,
    /// Where this shard's write effects go, while a stream is attached.
    feed: Option<Feed>,
    /// Who hears of keys the server removes itself (expiry), and this shard's database.
    key_events: Option<(usize, std::sync::Arc<dyn super::KeyEvents>)>,
    /// Client-side caching: told of the keys each write effect changes, while it is
    /// interested (see `crate::tracking`).
    tracking: Option<std::sync::Arc<crate::tracking::Tracking>>,
    /// Mark of entries already captured by the current snapshot; outside a snapshot every
    /// entry carries it.
    mark: bool,
    /// The snapshot in progress, if any.
    snapshot: Option<Box<SnapshotWalk>>,
    /// Where removed values go to be freed: large ones off this shard's lock.
    lazyfree: LazyFree,
    /// Clients blocked on keys of this shard (BLPOP...): `None` unless some are, so that
    /// storing a value tests one word when nobody is blocked (see `store::waiters`).
    pub(super) waiters: Option<Box<ShardWaiters>>,
    /// Keys of this shard that clients WATCH: `None` unless some are, so that a write tests
    /// one word when nobody watches (see `store::watch`).
    pub(super) watched: Option<Box<WatchedKeys>>,
    /// Entries handed out by [`Shard::get_mut`] under the current lock, with a fingerprint
    /// of their value then, for the debug check that changes propagate (settled when the
    /// lock is released: [`Shard::settle_changes`]).
    #[cfg(debug_assertions)]
    handed_out: Vec<HandedOut>,
}

/// An entry [`Shard::get_mut`] handed out: where it was and what its value looked like.
#[cfg(debug_assertions)]
struct HandedOut {
    index: u32,
    layout: u64,
    fingerprint: u64,
}

impl SnapshotWalk {
    /// Saves an entry as the snapshot must see it (a copy of a string, a clone sharing a
    /// collection's parts: see [`SnapshotBatch`]).
    fn save(&mut self, key: &[u8], entry: &Entry) {
        self.preimages
            .capture(key, &entry.value, entry.expires_at());
    }

    /// Moves the saved entries to `out`; returns how many there were.
    fn take_saved(&mut self, out: &mut SnapshotBatch) -> u64 {
        let saved = self.preimages.len() as u64;
        out.append(&mut self.preimages);
        saved
    }
}

/// What a read-only lookup found.
pub enum Lookup<'a> {
    /// The key, alive.
    Live(&'a Entry),
    /// The key, past its deadline: it must be deleted (under the write lock) and then counts
    /// as absent.
    Expired,
    /// No such key.
    Absent,
}

/// Outcome of one bounded pass of active expiry over a shard.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepResult {
    /// Keys deleted because they expired.
    pub expired: usize,
    /// True if due deadlines remain (the budget ran out).
    pub more_due: bool,
}

impl Shard {
    /// Number of keys, including expired keys not yet removed.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when the shard holds no key.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Number of keys with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    /// Counters for INFO.
    pub fn stats(&self) -> ShardStats {
        self.stats
    }

    /// Zeroes the counters.
    pub fn reset_stats(&mut self) {
        self.stats = ShardStats::default();
    }

    /// Allocated node capacity, for memory tests.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Finds a live key for writing. An expired key is deleted first, so callers never see it.
    ///
    /// In debug builds the entry's value is fingerprinted, and compared again when the shard's
    /// lock is released, so that a change made through the reference counts as a keyspace
    /// change for the dispatch check (see [`crate::propagate::debug`]).
    pub fn get_mut(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let index = self.live_index(hash, key, now_ms)?;
        self.preserve(index);
        #[cfg(debug_assertions)]
        self.note_handed_out(index);
        if let Some(watched) = self.watched.as_deref_mut() {
            watched.note_pending(key);
        }
        self.table.get_at_mut(index)
    }

    /// Address and mask of the table's current bucket array (see [`Table::bucket_hint`]).
    #[inline]
    pub fn bucket_hint(&self) -> (usize, u64) {
        self.table.bucket_hint()
    }

    /// See [`Table::prefetch_entry`].
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        self.table.prefetch_entry(hash);
    }

    /// Looks a key up without changing anything (no lazy expiry, no counting), for readers
    /// that hold the shard shared; see [`crate::store::Db::with_live`].
    #[inline]
    pub fn lookup(&self, hash: u64, key: &[u8], now_ms: u64) -> Lookup<'_> {
        match self.table.find_value(hash, key) {
            None => Lookup::Absent,
            Some((_, entry)) if entry.is_expired(now_ms) => Lookup::Expired,
            Some((_, entry)) => Lookup::Live(entry),
        }
    }

    /// Finds a live key for reading and counts a keyspace hit or miss.
    pub fn get_read(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.read_counted(hash, key, now_ms, true)
    }

    /// [`Shard::get_read`] that reports a miss to nobody (no `keymiss` event: OBJECT, as
    /// Redis); the miss still counts.
    pub fn get_read_unnoticed(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.read_counted(hash, key, now_ms, false)
    }

    fn read_counted(
        &mut self,
        hash: u64,
        key: &[u8],
        now_ms: u64,
        report_miss: bool,
    ) -> Option<&Entry> {
        match self.live_index(hash, key, now_ms) {
            Some(index) => {
                self.stats.hits += 1;
                self.table.get_at(index).map(|(_, entry)| entry)
            }
            None => {
                self.stats.misses += 1;
                if report_miss {
                    self.note_missed(key);
                }
                None
            }
        }
    }

    /// The node index of a live key: one table lookup, and an expired key is deleted on the
    /// way (lazy expiry), so no caller ever sees it.
    fn live_index(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<u32> {
        let (index, entry) = self.table.find_value(hash, key)?;
        let expired = entry.is_expired(now_ms);
        if expired {
            if let Some(watched) = self.watched.as_deref() {
                watched.touch_expired(key);
            }
            self.propagate_key_deleted(index);
            self.note_expired(key);
            self.delete_at(index);
            self.stats.expired += 1;
            return None;
        }
        Some(index)
    }

    /// Deletes `key` if it has expired (lazy expiry without a read; no hit/miss accounting).
    pub fn expire_if_due(&mut self, hash: u64, key: &[u8], now_ms: u64) {
        self.live_index(hash, key, now_ms);
    }

    /// True if a live key exists (no hit/miss accounting).
    pub fn contains(&mut self, hash: u64, key: &[u8], now_ms: u64) -> bool {
        self.get_mut(hash, key, now_ms).is_some()
    }

    /// Stores `value` under `key` with the given absolute deadline (`None`: no TTL), replacing
    /// any previous value and deadline. A deadline already in the past deletes the key.
    pub fn set(
        &mut self,
        hash: u64,
        key: &[u8],
        value: Value,
        expires_at: Option<u64>,
        now_ms: u64,
    ) {
        if expires_at.is_some_and(|at| at <= now_ms) {
            self.remove(hash, key, now_ms);
            return;
        }
        // A list or sorted set stored under a key clients are blocked on makes it ready.
        let servable = self.waiters.is_some() && matches!(value, Value::List(_) | Value::ZSet(_));
        let index = match self.table.find(hash, key) {
            Some(index) => {
                if self.snapshot.is_some() {
                    self.replace_during_snapshot(index, value);
                } else if let Some(entry) = self.table.get_at_mut(index) {
                    if let Some(old) = entry.value.replace(value) {
                        self.lazyfree.dispose(old);
                    }
                }
                index
            }
            None => {
                let mut entry = Entry { value, meta: 0 };
                entry.set_mark(self.mark);
                if let Some((db, events)) = &self.key_events {
                    events.created(*db, key);
                }
                self.table.insert_new(hash, key, entry)
            }
        };
        debug::note_change();
        if let Some(watched) = self.watched.as_deref() {
            watched.touch(key);
        }
        self.set_deadline_at(index, expires_at);
        if servable {
            if let Some(waiters) = self.waiters.as_deref() {
                waiters.value_stored(key);
            }
        }
    }

    /// Changes the deadline of a live key (`None` = PERSIST). A deadline at or before `now_ms`
    /// deletes the key, as Redis does for EXPIRE with a past time. Returns false if the key
    /// does not exist.
    pub fn set_expiry(
        &mut self,
        hash: u64,
        key: &[u8],
        expires_at: Option<u64>,
        now_ms: u64,
    ) -> bool {
        if self.get_mut(hash, key, now_ms).is_none() {
            return false;
        }
        if expires_at.is_some_and(|at| at <= now_ms) {
            self.remove(hash, key, now_ms);
        } else if let Some(index) = self.table.find(hash, key) {
            if self.set_deadline_at(index, expires_at) {
                if let Some(watched) = self.watched.as_deref() {
                    watched.touch(key);
                }
            }
        }
        true
    }

    /// Sets the deadline of the entry at `index`; returns true if it changed.
    fn set_deadline_at(&mut self, index: u32, expires_at: Option<u64>) -> bool {
        let Some(entry) = self.table.get_at_mut(index) else {
            return false;
        };
        let old = entry.expires_at();
        entry.set_expires_at(expires_at);
        let new = entry.expires_at();
        if old == new {
            return false;
        }
        debug::note_change();
        match (old.is_some(), new.is_some()) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
        // A later deadline keeps the key's earlier heap entry: when that entry comes due, the
        // sweep re-arms it at the key's current deadline. So refreshing a TTL (SET EX, EXPIRE
        // on a live key: what caches do all day) pushes nothing, the heap stays at about one
        // entry per key, and the O(n) rebuild below (a stall of milliseconds per shard at
        // millions of keys) is left to keys whose deadlines keep moving earlier.
        if let Some(at) = new {
            if old.is_none_or(|old| at < old) {
                self.deadlines.push(Reverse(Deadline { at, index }));
                self.compact_deadlines_if_stale();
            }
        }
        true
    }

    /// Removes a live key and returns its entry; an expired key counts as absent. For a
    /// caller that keeps the value (RENAME, GETDEL); one that drops it calls
    /// [`Shard::delete`].
    pub fn remove(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<Entry> {
        let index = self.live_index(hash, key, now_ms)?;
        if let Some(watched) = self.watched.as_deref() {
            watched.touch(key);
        }
        self.remove_at(index)
    }

    /// Deletes a live key (DEL, UNLINK, a collection emptied or overwritten by an empty
    /// result); false if there was none. A large value is freed off the lock
    /// (`store::lazyfree`), a small one here.
    pub fn delete(&mut self, hash: u64, key: &[u8], now_ms: u64) -> bool {
        match self.live_index(hash, key, now_ms) {
            Some(index) => {
                if let Some(watched) = self.watched.as_deref() {
                    watched.touch(key);
                }
                self.delete_at(index)
            }
            None => false,
        }
    }

    /// Sets where this shard's removed values are freed (the store's queue).
    pub fn set_lazyfree(&mut self, lazyfree: LazyFree) {
        self.lazyfree = lazyfree;
    }

    /// Removes the entry at `index` and frees its value (large ones off the lock).
    fn delete_at(&mut self, index: u32) -> bool {
        match self.remove_at(index) {
            Some(entry) => {
                self.lazyfree.dispose(entry.value);
                true
            }
            None => false,
        }
    }

    fn remove_at(&mut self, index: u32) -> Option<Entry> {
        self.preserve(index);
        let entry = self.table.remove_at(index)?;
        debug::note_change();
        if entry.expires_at().is_some() {
            self.volatile -= 1;
        }
        if self.table.is_empty() {
            // Everything is gone: release the heap's memory along with its stale entries.
            self.deadlines = BinaryHeap::new();
            self.heap_layout = self.table.layout_version();
        } else if self.table.layout_version() != self.heap_layout {
            // The table compacted its nodes: heap indices are stale.
            self.rebuild_deadlines();
        }
        Some(entry)
    }

    /// Active expiry: pops due deadlines, deleting keys whose deadline has passed and
    /// re-arming entries whose key's deadline moved later, and stops after `budget` heap
    /// entries so one call holds the lock for bounded time.
    ///
    /// The same visit also moves a bounded part of a table resize in progress, so that a shard
    /// that stops receiving writes still finishes it and frees the old bucket array.
    pub fn sweep_expired(&mut self, now_ms: u64, budget: usize) -> SweepResult {
        self.table.rehash_step(CRON_REHASH_BUCKETS);
        let mut result = SweepResult::default();
        for _ in 0..budget {
            match self.deadlines.peek() {
                Some(Reverse(due)) if due.at <= now_ms => {}
                _ => return result,
            }
            let Some(Reverse(due)) = self.deadlines.pop() else {
                return result;
            };
            let current = self
                .table
                .get_at(due.index)
                .and_then(|(_, entry)| entry.expires_at());
            match current {
                Some(at) if at <= now_ms => {
                    if let (Some(watched), Some((key, _))) =
                        (self.watched.as_deref(), self.table.get_at(due.index))
                    {
                        watched.touch_expired(key);
                    }
                    self.propagate_key_deleted(due.index);
                    if let (Some((db, events)), Some((key, _))) =
                        (&self.key_events, self.table.get_at(due.index))
                    {
                        events.expired(*db, key);
                    }
                    self.delete_at(due.index);
                    self.stats.expired += 1;
                    result.expired += 1;
                }
                // The key's deadline moved later since this entry was pushed (or the slot
                // now holds another key): keep it tracked at its current deadline. Every
                // key with a deadline has a heap entry at or before it.
                Some(at) if at > due.at => self.deadlines.push(Reverse(Deadline {
                    at,
                    index: due.index,
                })),
                _ => {}
            }
        }
        result.more_due = self
            .deadlines
            .peek()
            .is_some_and(|Reverse(due)| due.at <= now_ms);
        // Give memory back once most deadlines are gone, as the table does for its nodes.
        if self.deadlines.capacity() > 64 && self.deadlines.len() * 4 < self.deadlines.capacity() {
            self.deadlines.shrink_to(self.deadlines.len() * 2);
        }
        result
    }

    /// True if [`Shard::sweep_expired`] has work here at `now_ms`: a deadline due or a resize
    /// in progress. Checked under the read lock, so an idle shard's readers keep their cached
    /// copy of the lock.
    pub fn sweep_due(&self, now_ms: u64) -> bool {
        self.table.is_rehashing() || self.next_deadline().is_some_and(|at| at <= now_ms)
    }

    /// Earliest deadline in the heap (possibly stale), for tests and scheduling.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.peek().map(|Reverse(due)| due.at)
    }

    fn compact_deadlines_if_stale(&mut self) {
        if self.deadlines.len() > 2 * self.volatile + 64 {
            self.rebuild_deadlines();
        }
    }

    /// Rebuilds the heap from the table's live deadlines (O(n)).
    fn rebuild_deadlines(&mut self) {
        self.deadlines = self
            .table
            .iter_indexed()
            .filter_map(|(index, entry)| {
                let at = entry.expires_at()?;
                Some(Reverse(Deadline { at, index }))
            })
            .collect();
        self.heap_layout = self.table.layout_version();
    }

    /// Visits one table bucket for SCAN; see [`Table::scan_bucket`].
    pub fn scan_bucket(&self, cursor: u64, visit: impl FnMut(&[u8], &Entry)) -> u64 {
        self.table.scan_bucket(cursor, visit)
    }

    /// Every key with its entry (including expired ones not yet removed: callers filter).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.table.iter()
    }

    /// A random live key, trying a bounded number of times to avoid expired ones.
    pub fn random_key(&self, now_ms: u64, mut random: impl FnMut() -> u64) -> Option<Bytes> {
        for _ in 0..32 {
            let (key, entry) = self.table.random_entry(&mut random)?;
            if !entry.is_expired(now_ms) {
                return Some(Bytes::copy_from_slice(key));
            }
        }
        None
    }

    /// Removes every key; returns the old table so that the caller may drop it elsewhere
    /// (FLUSHALL ASYNC frees memory off the request path). During a snapshot, the values the
    /// snapshot has not reached yet move to it, and their places in the returned table hold
    /// empty strings.
    pub fn take_all(&mut self) -> Table<Entry> {
        if let Some(walk) = self.snapshot.as_deref_mut() {
            // A snapshot in progress still needs every entry it has not reached: it gets
            // them whole, without a copy, since the table is going anyway.
            for index in 0..self.table.slot_count() {
                if let Some((key, entry)) = self.table.get_at_key_mut(index as u32) {
                    if entry.mark() != self.mark {
                        let value = std::mem::replace(&mut entry.value, Value::Str(Vec::new()));
                        walk.preimages.hold(key, value, entry.expires_at());
                    }
                }
            }
        }
        if !self.table.is_empty() {
            debug::note_change();
        }
        if let Some(watched) = self.watched.as_deref() {
            let table = &self.table;
            watched.touch_existing(|hash, key| table.find_value(hash, key).is_some());
        }
        self.volatile = 0;
        self.deadlines = BinaryHeap::new();
        let taken = self.table.take();
        self.heap_layout = self.table.layout_version();
        taken
    }

    /// Attaches this shard to a write stream (`Some`) or detaches it. Call with every shard
    /// of the store locked, so that the stream starts at one point in the history of all of
    /// them (see [`crate::store::attach_stream`]).
    /// Sets who hears of keys this shard (of database `db`) expires.
    pub fn set_key_events(&mut self, db: usize, events: std::sync::Arc<dyn super::KeyEvents>) {
        self.key_events = Some((db, events));
    }

    /// A write command's read of `key` found nothing: counts a keyspace miss and reports it
    /// (SET ... GET, COPY's source, the sources of SINTERSTORE...).
    pub fn record_miss(&mut self, key: &[u8]) {
        self.stats.misses += 1;
        self.note_missed(key);
    }

    /// A read did not find `key` (a keyspace miss, for `keymiss` notifications).
    #[inline]
    pub fn note_missed(&self, key: &[u8]) {
        if let Some((db, events)) = &self.key_events {
            events.missed(*db, key);
        }
    }

    fn note_expired(&self, key: &[u8]) {
        if let Some((db, events)) = &self.key_events {
            events.expired(*db, key);
        }
    }

    pub fn set_feed(&mut self, feed: Option<Feed>) {
        self.feed = feed;
    }

    /// Whether a caller should build a write effect that costs something to build (a
    /// formatted number): false only in release builds with no stream attached. Debug builds
    /// always say yes, so that every change reaches [`Shard::propagate`], where the dispatch
    /// check counts it.
    #[inline]
    pub fn wants_effects(&self) -> bool {
        cfg!(debug_assertions)
            || self.feed.is_some()
            || self.watched.as_deref().is_some_and(|w| w.has_pending())
            || self.tracking_interested().is_some()
    }

    /// The tracking table, if some client could care about a change now.
    #[inline]
    fn tracking_interested(&self) -> Option<&crate::tracking::Tracking> {
        self.tracking
            .as_deref()
            .filter(|tracking| tracking.is_interested())
    }

    /// Sets the client-side caching table told of this shard's changes.
    pub fn set_tracking(&mut self, tracking: std::sync::Arc<crate::tracking::Tracking>) {
        self.tracking = Some(tracking);
    }

    /// Propagates a command that changed this shard, in the form that replays it exactly
    /// (absolute deadlines, results instead of floating-point arithmetic). Does nothing when
    /// no stream is attached. Call while the shard is still locked, right after the change.
    #[inline]
    pub fn propagate(&self, args: &[&[u8]]) {
        self.watched_effect();
        debug::note_effect();
        // Client-side caching finds an effect's keys from its catalogue row.
        debug_assert!(
            args.first()
                .is_some_and(|name| crate::cmd::lookup(name).is_some()),
            "effect {:?} is not a catalogue command",
            args.first().map(|name| String::from_utf8_lossy(name))
        );
        if let Some(tracking) = self.tracking_interested() {
            tracking.effect(args);
        }
        if let Some(feed) = &self.feed {
            feed.emit(args);
        }
    }

    /// [`Shard::propagate`] for the command `name rest...`, e.g. `DEL` and the keys as sent,
    /// without collecting them into a slice first.
    #[inline]
    pub fn propagate_named<'a>(&self, name: &[u8], rest: impl ExactSizeIterator<Item = &'a [u8]>) {
        if self.tracking_interested().is_some() {
            // Rare (some client caches keys): the effect is collected once for both.
            let args: Vec<&[u8]> = std::iter::once(name)
                .chain(rest.map(|arg| -> &[u8] { arg }))
                .collect();
            return self.propagate(&args);
        }
        self.watched_effect();
        debug::note_effect();
        if let Some(feed) = &self.feed {
            feed.emit_named(name, rest);
        }
    }

    /// An effect was propagated: watched keys handed out for in-place writes under this lock
    /// did change (see `store::watch`).
    #[inline]
    fn watched_effect(&self) {
        if let Some(watched) = self.watched.as_deref() {
            watched.pending_changed();
        }
    }

    /// Registers `flag` as watching `key` (hash `hash`) of this shard; see `store::watch`.
    pub fn watch(
        &mut self,
        hash: u64,
        key: &[u8],
        flag: &crate::sync::Arc<super::watch::WatchFlag>,
        now_ms: u64,
    ) {
        let expired_at_watch = matches!(self.lookup(hash, key, now_ms), Lookup::Expired);
        self.watched
            .get_or_insert_with(Default::default)
            .add(hash, key, flag, expired_at_watch);
    }

    /// True if some client watches `key`.
    pub fn is_watched(&self, key: &[u8]) -> bool {
        self.watched
            .as_deref()
            .is_some_and(|watched| watched.watches(key))
    }

    /// True if `flag` watches `key` and saw it alive (or absent) when the watch began.
    pub fn watch_saw_alive(
        &self,
        key: &[u8],
        flag: &crate::sync::Arc<super::watch::WatchFlag>,
    ) -> bool {
        self.watched
            .as_deref()
            .is_some_and(|watched| watched.saw_alive(key, flag))
    }

    /// Removes `flag`'s watch of `key`.
    pub fn unwatch(&mut self, key: &[u8], flag: &crate::sync::Arc<super::watch::WatchFlag>) {
        if let Some(watched) = self.watched.as_deref_mut() {
            if watched.remove(key, flag) {
                self.watched = None;
            }
        }
    }

    /// Propagates the deletion of the key at `index` that the server itself performs
    /// (expiry).
    fn propagate_key_deleted(&self, index: u32) {
        if let Some((key, _)) = self.table.get_at(index) {
            self.propagate(&[b"DEL", key]);
        }
    }

    /// Records an entry handed out for writing (debug builds).
    #[cfg(debug_assertions)]
    fn note_handed_out(&mut self, index: u32) {
        if let Some((_, entry)) = self.table.get_at(index) {
            let handed_out = HandedOut {
                index,
                layout: self.table.layout_version(),
                fingerprint: fingerprint(&entry.value),
            };
            self.handed_out.push(handed_out);
        }
    }

    /// Called as the shard's lock is released: forgets WATCH's pending in-place writes (those
    /// that propagated nothing changed nothing), and in debug builds counts, as a keyspace
    /// change of the calling thread, every entry handed out by [`Shard::get_mut`] whose value
    /// differs now (an entry that is gone, or moved by a compaction, was removed, which
    /// counted already).
    #[inline]
    pub fn settle_changes(&mut self) {
        if let Some(watched) = self.watched.as_deref_mut() {
            watched.forget_pending();
        }
        #[cfg(debug_assertions)]
        for handed_out in self.handed_out.drain(..) {
            if handed_out.layout != self.table.layout_version() {
                continue;
            }
            if let Some((_, entry)) = self.table.get_at(handed_out.index) {
                if fingerprint(&entry.value) != handed_out.fingerprint {
                    debug::note_change();
                }
            }
        }
    }

    /// Before an entry changes during a snapshot, saves it as it was when the snapshot began
    /// (once: the mark records that the snapshot has it). A collection is saved as a clone
    /// sharing its parts, so this costs a pointer copy per part, and the write that follows
    /// copies only the part it changes.
    #[inline]
    fn preserve(&mut self, index: u32) {
        let Some(walk) = self.snapshot.as_deref_mut() else {
            return;
        };
        if let Some((key, entry)) = self.table.get_at_key_mut(index) {
            if entry.mark() != self.mark {
                walk.save(key, entry);
                entry.set_mark(self.mark);
            }
        }
    }

    /// Replaces the value at `index` while a snapshot runs: an entry the snapshot has not
    /// captured yet hands it its old value (moved, not copied).
    fn replace_during_snapshot(&mut self, index: u32, value: Value) {
        let mark = self.mark;
        let Some(walk) = self.snapshot.as_deref_mut() else {
            return;
        };
        if let Some((key, entry)) = self.table.get_at_key_mut(index) {
            if entry.mark() == mark {
                if let Some(old) = entry.value.replace(value) {
                    self.lazyfree.dispose(old);
                }
            } else {
                let old = std::mem::replace(&mut entry.value, value);
                walk.preimages.hold(key, old, entry.expires_at());
                entry.set_mark(mark);
            }
        }
    }

    /// Starts a point-in-time snapshot of this shard: from now on the snapshot sees every entry
    /// as it is at this instant, whatever later writes do. Flipping the mark makes every entry
    /// "not yet captured" at once; writes capture an entry before changing it, the walk
    /// ([`Shard::snapshot_step`]) captures the others, and new keys are born captured. Begin
    /// every shard of the store under one lock of them all for a store-wide point in time.
    pub fn snapshot_begin(&mut self) {
        if self.snapshot.is_some() {
            return;
        }
        self.mark = !self.mark;
        self.snapshot = Some(Box::new(SnapshotWalk {
            cursor: 0,
            layout: self.table.layout_version(),
            preimages: SnapshotBatch::new(),
        }));
    }

    /// Appends to `out` the saved pre-images and up to `budget` entries not yet captured
    /// (fewer once the step has copied `STEP_BYTES` or cloned `STEP_PARTS` collection
    /// parts), so one lock hold stays short: strings are copied, collections cloned sharing
    /// their parts, and `out` is encoded after the lock is released. Returns the number of
    /// entries appended and whether this shard's part of the snapshot is complete (the shard
    /// then leaves snapshot mode).
    pub fn snapshot_step(&mut self, out: &mut SnapshotBatch, budget: usize) -> (u64, bool) {
        let mark = self.mark;
        let Some(walk) = self.snapshot.as_deref_mut() else {
            return (0, true);
        };
        let mut taken = walk.take_saved(out);
        if walk.layout != self.table.layout_version() {
            walk.cursor = 0;
            walk.layout = self.table.layout_version();
        }
        let slots = self.table.slot_count();
        let mut examined = 0;
        let (bytes_before, parts_before) = (out.byte_len(), out.parts());
        while walk.cursor < slots
            && examined < budget.saturating_mul(4)
            && taken < budget as u64
            && out.byte_len() - bytes_before < STEP_BYTES
            && out.parts() - parts_before < STEP_PARTS
        {
            if let Some((key, entry)) = self.table.get_at_key_mut(walk.cursor as u32) {
                if entry.mark() != mark {
                    out.capture(key, &entry.value, entry.expires_at());
                    entry.set_mark(mark);
                    taken += 1;
                }
            }
            walk.cursor += 1;
            examined += 1;
        }
        if walk.cursor < slots {
            return (taken, false);
        }
        taken += walk.take_saved(out);
        self.snapshot = None;
        (taken, true)
    }

    /// Abandons a snapshot (write error): every entry gets the current mark back, so the
    /// next snapshot starts from a clean state.
    pub fn snapshot_abort(&mut self) {
        if self.snapshot.take().is_some() {
            let mark = self.mark;
            for index in 0..self.table.slot_count() {
                if let Some((_, entry)) = self.table.get_at_key_mut(index as u32) {
                    entry.set_mark(mark);
                }
            }
        }
    }

    /// True while a snapshot walk is in progress on this shard.
    pub fn snapshot_active(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Checks the heap invariant: every key with a deadline has a heap entry for its slot due
    /// at or before that deadline (the sweep re-arms entries whose key's deadline moved
    /// later). For tests and loom models.
    pub fn deadlines_consistent(&self) -> bool {
        let volatile = self
            .table
            .iter()
            .filter(|(_, entry)| entry.expires_at().is_some())
            .count();
        volatile == self.volatile
            && self.heap_layout == self.table.layout_version()
            && self
                .table
                .iter_indexed()
                .all(|(index, entry)| match entry.expires_at() {
                    None => true,
                    Some(at) => self
                        .deadlines
                        .iter()
                        .any(|Reverse(d)| d.at <= at && d.index == index),
                })
    }
}

/// Largest set or hash the debug fingerprint reads whole (larger ones: a bounded prefix of
/// their debug form).
#[cfg(debug_assertions)]
const UNORDERED_FINGERPRINT_MAX: usize = 1 << 16;

/// A hash of a value, to tell whether a write through [`Shard::get_mut`] changed it.
/// Strings are hashed whole, sets and hashes by content; other types by their `Debug` text,
/// up to a bound (a change past it goes unseen by the debug check, which then only checks
/// less).
#[cfg(debug_assertions)]
#[allow(unreachable_patterns)]
fn fingerprint(value: &Value) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    // Sets and hashes by content, in no particular order: their tables may reorder or
    // restructure themselves on a write that changes nothing (an existing member added),
    // which is no change.
    let unordered =
        |items: &mut dyn Iterator<Item = u64>| items.fold(0u64, |acc, item| acc.wrapping_add(item));
    let hash_of = |parts: &[&[u8]]| {
        let mut item = std::collections::hash_map::DefaultHasher::new();
        for part in parts {
            item.write_usize(part.len());
            item.write(part);
        }
        item.finish()
    };
    match value {
        Value::Str(bytes) => hasher.write(bytes),
        Value::Set(set) if set.len() <= UNORDERED_FINGERPRINT_MAX => {
            hasher.write_u64(unordered(&mut set.iter().map(|m| hash_of(&[&m]))));
            hasher.write_usize(set.len());
        }
        Value::Hash(hash) if hash.len() <= UNORDERED_FINGERPRINT_MAX => {
            hasher.write_u64(unordered(&mut hash.iter().map(|(f, v)| hash_of(&[f, v]))));
            hasher.write_usize(hash.len());
        }
        other => {
            /// Feeds formatted text to the hasher, stopping after a bound.
            struct Text<'h>(&'h mut std::collections::hash_map::DefaultHasher, usize);
            impl std::fmt::Write for Text<'_> {
                fn write_str(&mut self, text: &str) -> std::fmt::Result {
                    let take = text.len().min(self.1);
                    self.0.write(&text.as_bytes()[..take]);
                    self.1 -= take;
                    if self.1 == 0 {
                        return Err(std::fmt::Error);
                    }
                    Ok(())
                }
            }
            // An error here only means the bound was reached.
            let _ = std::fmt::write(&mut Text(&mut hasher, 1 << 20), format_args!("{other:?}"));
        }
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyHasher;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i:012}").into_bytes()
    }

    #[test]
    fn expiry_survives_compaction_of_the_table() {
        let hasher = KeyHasher::new();
        let mut shard = Shard::default();
        let now = 1_000;
        for i in 0..2000 {
            let k = key(i);
            let value = Value::Str(b"v".to_vec());
            shard.set(
                hasher.hash(&k),
                &k,
                value,
                Some(now + 10 + i as u64 % 5),
                now,
            );
        }
        // Deleting most keys compacts the node array, which moves the survivors.
        for i in 0..1900 {
            let k = key(i);
            assert!(shard.remove(hasher.hash(&k), &k, now).is_some());
        }
        assert!(shard.deadlines_consistent());
        assert!(shard.capacity() < 1000, "node memory follows deletions");
        let swept = shard.sweep_expired(now + 100, 10_000);
        assert_eq!(swept.expired, 100);
        assert!(shard.is_empty());
        assert_eq!(shard.stats().expired, 100);
    }

    #[test]
    fn rearming_a_ttl_does_not_grow_the_heap() {
        let hasher = KeyHasher::new();
        let mut shard = Shard::default();
        let k = key(1);
        let h = hasher.hash(&k);
        shard.set(h, &k, Value::Str(b"v".to_vec()), None, 0);
        for at in 1..10_000 {
            assert!(shard.set_expiry(h, &k, Some(1_000_000 + at), 0));
        }
        // Later deadlines reuse the first heap entry: nothing was pushed after it.
        assert_eq!(shard.deadlines.len(), 1);
        assert!(shard.deadlines_consistent());
        // Only the last deadline acts; the first entry's turn re-arms it.
        assert_eq!(shard.sweep_expired(1_000_000 + 9_998, 100_000).expired, 0);
        assert!(shard.deadlines_consistent());
        assert_eq!(shard.deadlines.len(), 1);
        assert_eq!(shard.sweep_expired(1_000_000 + 9_999, 100_000).expired, 1);
        assert!(shard.deadlines.is_empty());
    }

    #[test]
    fn earlier_deadlines_are_pushed_and_stale_ones_dropped() {
        let hasher = KeyHasher::new();
        let mut shard = Shard::default();
        let k = key(1);
        let h = hasher.hash(&k);
        shard.set(h, &k, Value::Str(b"v".to_vec()), Some(1_000), 0);
        assert!(shard.set_expiry(h, &k, Some(500), 0));
        assert_eq!(shard.deadlines.len(), 2);
        assert!(shard.deadlines_consistent());
        // Later again: no push; the entry at 500 re-arms at 2000 when it comes due.
        assert!(shard.set_expiry(h, &k, Some(2_000), 0));
        assert_eq!(shard.deadlines.len(), 2);
        assert_eq!(shard.sweep_expired(600, 100).expired, 0);
        assert!(shard.contains(h, &k, 600));
        // The entry at 1000 is stale but re-arms too (a duplicate; harmless).
        assert_eq!(shard.sweep_expired(1_500, 100).expired, 0);
        assert!(shard.deadlines_consistent());
        assert_eq!(shard.sweep_expired(2_000, 100).expired, 1);
        assert!(!shard.contains(h, &k, 2_000));
        assert_eq!(shard.sweep_expired(3_000, 100).expired, 0);
        assert!(shard.deadlines.is_empty());
        // A key made persistent leaves its entry behind, dropped when it comes due.
        shard.set(h, &k, Value::Str(b"v".to_vec()), Some(5_000), 0);
        assert!(shard.set_expiry(h, &k, None, 0));
        assert_eq!(shard.sweep_expired(6_000, 100).expired, 0);
        assert!(shard.contains(h, &k, 6_000));
        assert!(shard.deadlines.is_empty());
    }

    /// Runs a snapshot of `shard` to its end, one step of `budget` at a time; the batches.
    fn walk(shard: &mut Shard, budget: usize) -> Vec<SnapshotBatch> {
        let mut batches = Vec::new();
        loop {
            let mut out = SnapshotBatch::new();
            let (taken, done) = shard.snapshot_step(&mut out, budget);
            assert_eq!(taken, out.len() as u64);
            batches.push(out);
            if done {
                return batches;
            }
        }
    }

    /// The walk captures a collection by cloning it: no element is copied under the lock,
    /// only one pointer per chunk; and a step stops once it has cloned [`STEP_PARTS`] parts.
    #[test]
    fn the_walk_clones_collections_without_copying_elements() {
        use crate::store::value::List;
        let hasher = KeyHasher::new();
        let mut shard = Shard::default();
        // Each list alone is under a step's part budget, two together are over it.
        // An 8-byte string takes 9 bytes of a pack (and a pack 1 more), so 910 fill a default
        // 8 KiB pack.
        let elements = (STEP_PARTS / 2 + 10) * 910;
        for name in [&b"list:a"[..], b"list:b", b"list:c"] {
            // Not digits: stored as strings, not integers.
            let list: List = (0..elements)
                .map(|i| [b'x', i as u8, 0, 0, 0, 0, 0, 0])
                .collect();
            shard.set(hasher.hash(name), name, Value::list(list), None, 0);
        }
        shard.snapshot_begin();
        let batches = walk(&mut shard, 256);
        let sizes: Vec<usize> = batches.iter().map(SnapshotBatch::len).collect();
        assert_eq!(sizes, [2, 1]);
        for batch in &batches {
            let keys: usize = batch.iter().map(|e| e.key.len()).sum();
            assert_eq!(batch.byte_len(), keys, "only keys were copied");
            assert_eq!(batch.parts(), batch.len() * (STEP_PARTS / 2 + 10));
        }
    }

    /// A SET over a key the snapshot has not reached hands the old value to the snapshot
    /// (the same allocation: nothing copied); a write in place (APPEND) copies it once.
    #[test]
    fn a_replaced_value_moves_to_the_snapshot() {
        let hasher = KeyHasher::new();
        let mut shard = Shard::default();
        let (a, b) = (key(1), key(2));
        let big = vec![7u8; 1 << 20];
        let address = big.as_ptr();
        shard.set(hasher.hash(&a), &a, Value::Str(big), None, 0);
        shard.set(hasher.hash(&b), &b, Value::Str(b"old".to_vec()), None, 0);
        shard.snapshot_begin();
        shard.set(hasher.hash(&a), &a, Value::Str(b"new".to_vec()), None, 0);
        let entry = shard.get_mut(hasher.hash(&b), &b, 0).expect("present");
        entry.value.as_string_mut().expect("a string").push(b'!');
        let batches = walk(&mut shard, 256);
        let captured: Vec<_> = batches.iter().flat_map(SnapshotBatch::iter).collect();
        assert_eq!(captured.len(), 2);
        for entry in captured {
            match entry.value {
                crate::store::ValueRef::Str(bytes) if entry.key == a => {
                    assert_eq!(bytes.as_ptr(), address, "moved, not copied");
                    assert_eq!(bytes.len(), 1 << 20);
                }
                crate::store::ValueRef::Str(bytes) => assert_eq!(bytes, b"old"),
                other => panic!("{other:?}"),
            }
        }
    }

    /// Emptying a shard during a snapshot moves the values the snapshot has not reached to
    /// it, without copying them.
    #[test]
    fn take_all_during_a_snapshot_moves_values_to_it() {
        let hasher = KeyHasher::new();
        let mut shard = Shard::default();
        let mut addresses = std::collections::BTreeMap::new();
        for i in 0..100 {
            let k = key(i);
            let value = format!("value:{i}").into_bytes();
            addresses.insert(k.clone(), value.as_ptr() as usize);
            shard.set(hasher.hash(&k), &k, Value::Str(value), None, 0);
        }
        shard.snapshot_begin();
        let mut first = SnapshotBatch::new();
        shard.snapshot_step(&mut first, 10);
        drop(shard.take_all());
        let batches = walk(&mut shard, 256);
        let mut seen = 0;
        for entry in first
            .iter()
            .chain(batches.iter().flat_map(SnapshotBatch::iter))
        {
            let crate::store::ValueRef::Str(bytes) = entry.value else {
                panic!("a string");
            };
            let moved = addresses[entry.key] == bytes.as_ptr() as usize;
            assert_eq!(moved, seen >= 10, "entry {seen}");
            seen += 1;
        }
        assert_eq!(seen, 100);
    }

    #[test]
    fn stale_entry_on_a_reused_slot_does_not_delete_a_fresh_key() {
        let hasher = KeyHasher::new();
        let mut shard = Shard::default();
        let (a, b) = (key(1), key(2));
        shard.set(hasher.hash(&a), &a, Value::Str(b"a".to_vec()), Some(100), 0);
        shard.remove(hasher.hash(&a), &a, 0);
        // b probably reuses a's slot; its own deadline is later.
        shard.set(hasher.hash(&b), &b, Value::Str(b"b".to_vec()), Some(500), 0);
        assert_eq!(shard.sweep_expired(200, 100).expired, 0);
        assert!(shard.contains(hasher.hash(&b), &b, 200));
        assert_eq!(shard.sweep_expired(500, 100).expired, 1);
    }
}
