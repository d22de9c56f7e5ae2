//! The keyspace: databases of 16 shards, each a hash table plus a heap of expiry deadlines.
//!
//! A key's shard is chosen by the top bits of its hash, and the same hash indexes the shard's
//! table, so each key is hashed once per command. Shards are guarded by blocking
//! reader-writer locks ([`ShardLock`]) whose readers write no shared cache line: no `.await`
//! ever happens while one is held, critical sections are short, and a blocking lock is far
//! cheaper than an async one. Multi-key commands lock the shards they touch in ascending index
//! order, which makes them atomic with respect to other clients and cannot deadlock.
//! Multi-key reads take read guards in the same order, so every thread, reader or writer,
//! holds only shards below the one it waits for (a writer waiting for readers to leave holds
//! that shard's lock word, and readers waiting on it hold only lower shards): waits cannot
//! form a cycle.
//!
//! Writers start loading the key's bucket before they take the lock, from a per-shard hint of
//! where the bucket array is ([`hint`]), so the wait for the lock and the wait for memory
//! overlap; multi-key readers do the same for all their keys at once, so their misses
//! overlap.
//!
//! Time is a parameter: every operation takes `now_ms` (Unix milliseconds) from its caller,
//! so tests and loom models use fixed instants.
//!
//! A command that changes a shard propagates the change through it ([`Shard::propagate`])
//! while it still holds the lock; the shard hands the effect to the write stream
//! ([`crate::propagate`]) when one is attached ([`attach_stream`]), and to nobody otherwise.

mod capture;
mod hint;
mod key;
pub mod lazyfree;
mod lock;
mod nodes;
mod shard;
mod table;
pub mod value;
pub mod waiters;
pub mod watch;

use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};

use hint::BucketHint;

use crate::propagate::{Feed, WriteStream};
use crate::sync::Arc;

pub use capture::{CapturedEntry, SnapshotBatch};
pub use key::Key;
pub use lazyfree::LazyFree;
pub use lock::{Hold, ReadCounts, ReadGuard, Section, ShardLock, WriteGuard};
pub use shard::{Entry, Lookup, Shard, ShardStats, SweepResult};
pub use table::Table;
pub use value::{EncodingLimits, Hash, Limits, Value, ValueRef, WrongType};

/// Shards per database. A power of two: the shard is the top `SHARD_BITS` bits of the hash.
pub const SHARDS: usize = 16;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// Pads a shard to its own cache lines so that two cores working on neighbouring shards do
/// not invalidate each other's lines.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

/// The hasher of every table. foldhash's `RandomState` is seeded per process, which keeps
/// adversarial keys from being precomputed to collide.
#[derive(Clone)]
pub struct KeyHasher(Seeds);

#[cfg(not(kv_loom))]
type Seeds = foldhash::fast::RandomState;
/// loom replays every schedule many times: a seed that changed between replays would move
/// keys to other shards, and with them which locks contend.
#[cfg(kv_loom)]
type Seeds = foldhash::fast::FixedState;

impl KeyHasher {
    /// A hasher with a fresh random seed (a fixed one under loom).
    pub fn new() -> Self {
        #[cfg(not(kv_loom))]
        let seeds = foldhash::fast::RandomState::default();
        #[cfg(kv_loom)]
        let seeds = foldhash::fast::FixedState::with_seed(0x6b76_7374_6f72_6521);
        KeyHasher(seeds)
    }

    /// Hashes a key; shard and bucket both derive from this value.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.0.hash_one(key)
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Index of the shard that owns a key hash.
#[inline]
pub fn shard_of(hash: u64) -> usize {
    (hash >> (u64::BITS - SHARD_BITS)) as usize
}

/// `take(index)` for every shard in `mask`, in ascending index order: the one lock order
/// every multi-shard guard follows.
fn in_shard_order<G>(mask: u32, mut take: impl FnMut(usize) -> G) -> [Option<G>; SHARDS] {
    // `from_fn` documents that it calls `f` "while walking forward through the array".
    std::array::from_fn(|index| (mask & (1 << index) != 0).then(|| take(index)))
}

/// Exclusive access to one shard. Releasing it settles what changed under it
/// ([`Shard::settle_changes`]): the debug check's view, and WATCH's pending in-place writes.
pub struct ShardGuard<'a>(WriteGuard<'a, Shard>);

impl Deref for ShardGuard<'_> {
    type Target = Shard;

    #[inline]
    fn deref(&self) -> &Shard {
        &self.0
    }
}

impl DerefMut for ShardGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Shard {
        &mut self.0
    }
}

impl Drop for ShardGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.settle_changes();
    }
}

/// Shared access to one shard.
pub type ShardReadGuard<'a> = ReadGuard<'a, Shard>;

/// One logical database (`SELECT n`): 16 independently locked shards.
pub struct Db {
    shards: Box<[Padded<ShardLock<Shard>>]>,
    hasher: KeyHasher,
    /// Each shard's bucket array, readable without its lock, for prefetching.
    hints: [BucketHint; SHARDS],
}

impl Db {
    /// An empty database hashing keys with `hasher`, freeing removed values inline.
    pub fn new(hasher: KeyHasher) -> Self {
        Db::with_lazyfree(hasher, &LazyFree::default())
    }

    /// An empty database hashing keys with `hasher`, whose shards free large removed values
    /// through `lazyfree` (off their locks).
    pub fn with_lazyfree(hasher: KeyHasher, lazyfree: &LazyFree) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                let mut shard = Shard::default();
                shard.set_lazyfree(lazyfree.clone());
                Padded(ShardLock::new(shard))
            })
            .collect();
        Db {
            shards,
            hasher,
            hints: Default::default(),
        }
    }

    /// Hashes a key with this database's hasher.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash(key)
    }

    /// Locks the shard owning `key` for writing; returns the guard and the key's hash.
    #[inline]
    pub fn lock(&self, key: &[u8]) -> (ShardGuard<'_>, u64) {
        let hash = self.hash(key);
        let index = shard_of(hash);
        self.hints[index].prefetch(hash);
        (self.write_shard(index), hash)
    }

    /// Write-locks shard `index` and refreshes its bucket hint, so that the next writer's
    /// prefetch finds the array this writer may have resized.
    #[inline]
    fn write_shard(&self, index: usize) -> ShardGuard<'_> {
        let guard = self.shards[index].0.write();
        self.hints[index].refresh(guard.bucket_hint());
        ShardGuard(guard)
    }

    /// Index of the shard that owns `key`.
    #[inline]
    pub fn shard_index(&self, key: &[u8]) -> usize {
        shard_of(self.hash(key))
    }

    /// Locks the shard owning `key` for reading; returns the guard and the key's hash.
    #[inline]
    pub fn read(&self, key: &[u8]) -> (ShardReadGuard<'_>, u64) {
        let hash = self.hash(key);
        (self.shards[shard_of(hash)].0.read(), hash)
    }

    /// Runs `read` on the live entry of `key` (`None` if there is none) and counts a keyspace
    /// hit or miss, under a read lock of its shard. Only a key found expired takes the write
    /// lock, to delete it (lazy expiry) before `read` sees it as absent.
    #[inline]
    pub fn with_live<R>(
        &self,
        key: &[u8],
        now_ms: u64,
        read: impl FnOnce(Option<&Entry>) -> R,
    ) -> R {
        self.with_live_reporting(key, now_ms, true, read)
    }

    /// [`Db::with_live`] without a `keymiss` notification for a missing key (OBJECT, as in
    /// Redis); the miss still counts.
    pub fn with_live_unnoticed<R>(
        &self,
        key: &[u8],
        now_ms: u64,
        read: impl FnOnce(Option<&Entry>) -> R,
    ) -> R {
        self.with_live_reporting(key, now_ms, false, read)
    }

    #[inline]
    fn with_live_reporting<R>(
        &self,
        key: &[u8],
        now_ms: u64,
        report_miss: bool,
        read: impl FnOnce(Option<&Entry>) -> R,
    ) -> R {
        let (shard, hash) = self.read(key);
        match shard.lookup(hash, key, now_ms) {
            Lookup::Live(entry) => {
                shard.count_hit();
                return read(Some(entry));
            }
            Lookup::Absent => {
                shard.count_miss();
                if report_miss {
                    shard.note_missed(key);
                }
                return read(None);
            }
            Lookup::Expired => {}
        }
        drop(shard);
        let (mut shard, hash) = self.lock(key);
        if report_miss {
            read(shard.get_read(hash, key, now_ms))
        } else {
            read(shard.get_read_unnoticed(hash, key, now_ms))
        }
    }

    /// Runs one bounded step of a snapshot walk on shard `index`; see [`Shard::snapshot_step`].
    pub fn snapshot_step(
        &self,
        index: usize,
        out: &mut SnapshotBatch,
        budget: usize,
    ) -> (u64, bool) {
        self.shards[index].0.write().snapshot_step(out, budget)
    }

    /// Locks shard number `index` (0..SHARDS).
    pub fn lock_shard(&self, index: usize) -> ShardGuard<'_> {
        self.write_shard(index)
    }

    /// Locks every shard that owns one of `keys`, in ascending shard order, so a multi-key
    /// command runs atomically with respect to other clients.
    #[inline]
    pub fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> MultiLock<'_> {
        self.lock_mask(self.shards_of(keys))
    }

    /// Read-locks every shard that owns one of `keys`, in ascending shard order, for
    /// multi-key reads (MGET, EXISTS): one consistent view across shards, as under
    /// [`Db::lock_keys`], without excluding other readers.
    pub fn read_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> MultiRead<'_> {
        MultiRead {
            guards: in_shard_order(self.shards_of(keys), |index| self.shards[index].0.read()),
            hasher: &self.hasher,
        }
    }

    /// The set of shards owning `keys`, as a bit mask; starts loading each key's bucket on
    /// the way, so that the misses overlap with each other and with the locking.
    #[inline]
    fn shards_of<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> u32 {
        let mut mask = 0u32;
        for key in keys {
            let hash = self.hash(key);
            let index = shard_of(hash);
            self.hints[index].prefetch(hash);
            mask |= 1 << index;
        }
        mask
    }

    /// Deletes each of `keys` whose deadline has passed by `now_ms`: the lazy expiry a read
    /// under shared locks could not do when it found them expired (one that was rewritten
    /// since is left alone).
    pub fn expire_if_due<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>, now_ms: u64) {
        for key in keys {
            let (mut shard, hash) = self.lock(key);
            shard.expire_if_due(hash, key, now_ms);
        }
    }

    /// Locks all shards in order (FLUSHDB, consistent whole-database views).
    pub fn lock_all(&self) -> MultiLock<'_> {
        self.lock_mask(u32::MAX)
    }

    fn lock_mask(&self, mask: u32) -> MultiLock<'_> {
        MultiLock {
            guards: in_shard_order(mask, |index| self.write_shard(index)),
            hasher: &self.hasher,
        }
    }

    /// Number of keys (expired keys not yet swept included, as Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.read().len()).sum()
    }

    /// True when the database holds no key.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.0.read().is_empty())
    }

    /// Keys and keys-with-TTL, for INFO keyspace.
    pub fn counts(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(keys, volatile), s| {
            let shard = s.0.read();
            (keys + shard.len(), volatile + shard.volatile_len())
        })
    }

    /// Sum of the shards' counters, those kept under the write lock and those readers keep.
    pub fn stats(&self) -> ShardStats {
        self.shards.iter().fold(ShardStats::default(), |acc, s| {
            let st = s.0.read().stats();
            let read = s.0.read_counts();
            ShardStats {
                hits: acc.hits + st.hits + read.hits,
                misses: acc.misses + st.misses + read.misses,
                expired: acc.expired + st.expired,
            }
        })
    }

    /// Zeroes the shards' counters (CONFIG RESETSTAT).
    pub fn reset_stats(&self) {
        for shard in self.shards.iter() {
            shard.0.write().reset_stats();
            shard.0.reset_read_counts();
        }
    }

    /// One bounded active-expiry pass over every shard; see [`Shard::sweep_expired`]. Shards
    /// with nothing due are only read-locked. A shard another thread holds is passed over
    /// until the next tick: the sweep never queues behind a transaction or a long script
    /// (and does not spin on it either).
    pub fn sweep_expired(&self, now_ms: u64, budget_per_shard: usize) -> SweepResult {
        let mut total = SweepResult::default();
        for shard in self.shards.iter() {
            let Some(due) = shard.0.try_read().map(|shard| shard.sweep_due(now_ms)) else {
                continue;
            };
            if !due {
                continue;
            }
            let Some(mut guard) = shard.0.try_write() else {
                continue;
            };
            let result = guard.sweep_expired(now_ms, budget_per_shard);
            drop(guard);
            total.expired += result.expired;
            total.more_due |= result.more_due;
        }
        total
    }

    /// Empties the database (propagating a FLUSHDB) and returns the old tables so that the
    /// caller decides where the memory is freed.
    pub fn take_all(&self) -> Vec<Table<Entry>> {
        let mut all = self.lock_all();
        all.propagate(&[b"FLUSHDB"]);
        all.guards
            .iter_mut()
            .flatten()
            .map(|guard| guard.take_all())
            .collect()
    }
}

/// Shards of one database read-locked together; see [`Db::read_keys`].
pub struct MultiRead<'a> {
    guards: [Option<ShardReadGuard<'a>>; SHARDS],
    hasher: &'a KeyHasher,
}

/// How many keys ahead of the one being read [`MultiRead::lookups`] loads values, and twice
/// that, entries: enough misses in flight to keep the memory system busy (a core tracks
/// 16-48 at once), few enough that what was loaded is still in cache when its turn comes.
/// 8 was 6% faster than 4 on ten-key MGETs.
const VALUES_AHEAD: usize = 8;
const ENTRIES_AHEAD: usize = 2 * VALUES_AHEAD;

impl<'a> MultiRead<'a> {
    /// Looks `keys` up in order, as [`Self::lookup`] does, while loading the entries and the
    /// values of the keys a few places ahead. One key's lookup is a chain of dependent cache
    /// misses (bucket, entry, value); across keys they are independent, and this lets them
    /// overlap: ten-key MGETs on a million keys took a quarter less time than looking up one
    /// key after the other, a third less with two threads (`store/mget10`).
    pub fn lookups<'r, 'k, I>(&'r self, keys: I, now_ms: u64) -> Lookups<'r, 'a, I>
    where
        I: Iterator<Item = &'k [u8]> + Clone,
    {
        let mut entries_ahead = keys.clone();
        for key in entries_ahead.by_ref().take(ENTRIES_AHEAD) {
            self.prefetch_entry(key);
        }
        let mut values_ahead = keys.clone();
        for key in values_ahead.by_ref().take(VALUES_AHEAD) {
            self.prefetch_value(key);
        }
        Lookups {
            read: self,
            keys,
            entries_ahead,
            values_ahead,
            now_ms,
        }
    }

    /// The read guard of `key`'s shard and the key's hash; `None` only for a key the caller
    /// did not lock (a bug in the caller).
    #[inline]
    fn guard(&self, key: &[u8]) -> Option<(&ShardReadGuard<'a>, u64)> {
        let hash = self.hasher.hash(key);
        let guard = self.guards[shard_of(hash)].as_ref();
        debug_assert!(guard.is_some(), "read of a key whose shard was not locked");
        Some((guard?, hash))
    }

    /// Starts loading the first entry of `key`'s chain.
    #[inline]
    fn prefetch_entry(&self, key: &[u8]) {
        if let Some((guard, hash)) = self.guard(key) {
            guard.prefetch_entry(hash);
        }
    }

    /// Starts loading `key`'s value (its entry should be in cache by now).
    #[inline]
    fn prefetch_value(&self, key: &[u8]) {
        // Any deadline passes for a prefetch: the real lookup decides.
        if let Some((guard, hash)) = self.guard(key) {
            if let Lookup::Live(entry) = guard.lookup(hash, key, 0) {
                if let Ok(value) = entry.value.as_string() {
                    hint::prefetch_line(value.as_ptr() as usize);
                }
            }
        }
    }

    /// What `key` holds, counting a keyspace hit (live) or miss (absent or expired). An
    /// expired key stays until the caller, after dropping this, calls [`Db::expire_if_due`].
    /// A key the caller did not lock reads as absent.
    pub fn lookup(&self, key: &[u8], now_ms: u64) -> Lookup<'_> {
        let Some((guard, hash)) = self.guard(key) else {
            return Lookup::Absent;
        };
        let found = guard.lookup(hash, key, now_ms);
        match found {
            Lookup::Live(_) => guard.count_hit(),
            Lookup::Expired | Lookup::Absent => {
                guard.count_miss();
                guard.note_missed(key);
            }
        }
        found
    }
}

/// The iterator of [`MultiRead::lookups`].
pub struct Lookups<'r, 'a, I> {
    read: &'r MultiRead<'a>,
    keys: I,
    entries_ahead: I,
    values_ahead: I,
    now_ms: u64,
}

impl<'r, 'k, I: Iterator<Item = &'k [u8]>> Iterator for Lookups<'r, '_, I> {
    type Item = Lookup<'r>;

    fn next(&mut self) -> Option<Lookup<'r>> {
        if let Some(key) = self.entries_ahead.next() {
            self.read.prefetch_entry(key);
        }
        if let Some(key) = self.values_ahead.next() {
            self.read.prefetch_value(key);
        }
        let key = self.keys.next()?;
        Some(self.read.lookup(key, self.now_ms))
    }
}

/// Shards of one database locked together; see [`Db::lock_keys`].
pub struct MultiLock<'a> {
    guards: [Option<ShardGuard<'a>>; SHARDS],
    hasher: &'a KeyHasher,
}

impl MultiLock<'_> {
    /// Starts loading the entries of the first [`ENTRIES_AHEAD`] `keys` (their buckets were
    /// loaded before locking), so that a multi-key write's lookups overlap their misses and
    /// the shards are held for less time.
    #[inline]
    pub fn prefetch_entries<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) {
        for key in keys.into_iter().take(ENTRIES_AHEAD) {
            let hash = self.hasher.hash(key);
            if let Some(guard) = self.guards[shard_of(hash)].as_ref() {
                guard.prefetch_entry(hash);
            }
        }
    }

    /// The locked shard owning `key`, with the key's hash. `None` only if the caller asks for
    /// a key it did not lock, which is a bug in the caller.
    #[inline]
    pub fn shard(&mut self, key: &[u8]) -> Option<(&mut Shard, u64)> {
        let hash = self.hasher.hash(key);
        let guard = self.guards[shard_of(hash)].as_mut()?;
        Some((&mut **guard, hash))
    }
}

impl MultiLock<'_> {
    /// The first locked shard: the one a multi-shard command propagates through. All are
    /// locked, so its effect is ordered against every change to any of them.
    fn first(&self) -> Option<&Shard> {
        self.guards.iter().flatten().next().map(|guard| &**guard)
    }

    /// Propagates a command that changed the locked shards (see [`Shard::propagate`]).
    pub fn propagate(&self, args: &[&[u8]]) {
        if let Some(shard) = self.first() {
            shard.propagate(args);
        }
    }

    /// Propagates the command `name rest...` that changed the locked shards (see
    /// [`Shard::propagate_named`]).
    pub fn propagate_named<'a>(&self, name: &[u8], rest: impl ExactSizeIterator<Item = &'a [u8]>) {
        if let Some(shard) = self.first() {
            shard.propagate_named(name, rest);
        }
    }
}

/// Attaches every shard of `shards` (all shards of a store, database by database, as
/// [`Store::with_all_locked`] gives them) to `stream`, or detaches them all. Inside
/// `with_all_locked`, the stream starts at one instant of the whole store's history, the
/// same instant as a snapshot begun there. A shard appends to the lane of its index within
/// its database when the writing thread has no lane of its own.
pub fn attach_stream(shards: &mut [(u32, &mut Shard)], stream: Option<&Arc<WriteStream>>) {
    let mut index_in_db = 0;
    let mut current_db = u32::MAX;
    for (db, shard) in shards.iter_mut() {
        if *db != current_db {
            current_db = *db;
            index_in_db = 0;
        }
        shard.set_feed(stream.map(|stream| Feed::new(Arc::clone(stream), *db, index_in_db)));
        index_in_db += 1;
    }
}

/// What the store tells the server about keys as it meets them (keyspace notifications):
/// removed on its own (expiry, lazy or by the active cycle), created, or looked up by a read
/// and not found. Called with the key's shard locked: it must not take a shard lock.
pub trait KeyEvents: Send + Sync {
    /// `key` of database `db` expired and was removed.
    fn expired(&self, db: usize, key: &[u8]);
    /// `key` of database `db` was created (it did not exist before this write).
    fn created(&self, db: usize, key: &[u8]);
    /// A read looked `key` of database `db` up and did not find it (a keyspace miss).
    fn missed(&self, db: usize, key: &[u8]);
}

/// All databases of a server.
pub struct Store {
    dbs: Box<[Db]>,
    limits: EncodingLimits,
    lazyfree: LazyFree,
    blocking: Arc<waiters::Blocking>,
    /// Function libraries (FUNCTION LOAD): part of the data set, saved in snapshots.
    functions: crate::script::FunctionLibraries,
    /// The libraries as they were when the snapshot in progress began ([`Store::begin`]
    /// of `persist::snapshot`), for its writer.
    snapshot_functions: crate::sync::Mutex<Option<bytes::Bytes>>,
}

impl Store {
    /// A store with `databases` empty databases sharing one random hash seed, and Redis's
    /// default encoding thresholds.
    pub fn new(databases: usize) -> Self {
        Store::with_limits(databases, Limits::DEFAULT)
    }

    /// A store with `databases` empty databases and the encoding thresholds `limits`.
    pub fn with_limits(databases: usize, limits: Limits) -> Self {
        let hasher = KeyHasher::new();
        let lazyfree = LazyFree::new();
        let dbs = (0..databases.max(1))
            .map(|_| Db::with_lazyfree(hasher.clone(), &lazyfree))
            .collect();
        Store {
            dbs,
            limits: EncodingLimits::new(limits),
            lazyfree,
            blocking: Arc::new(waiters::Blocking::default()),
            functions: crate::script::FunctionLibraries::new(),
            snapshot_functions: crate::sync::Mutex::new(None),
        }
    }

    /// The function libraries. A change to them must hold shard 0 of database 0 while it is
    /// made and propagated, so that a snapshot (which captures them with every shard locked)
    /// and the log agree on which changes it contains.
    pub fn functions(&self) -> &crate::script::FunctionLibraries {
        &self.functions
    }

    /// Captures the libraries for the snapshot that begins now (call with every shard locked).
    pub fn capture_functions_for_snapshot(&self) {
        let payload = (self.functions.counts().0 > 0).then(|| self.functions.dump());
        *self.snapshot_functions.lock() = payload;
    }

    /// The libraries captured when the snapshot in progress began, if there were any.
    pub fn take_snapshot_functions(&self) -> Option<bytes::Bytes> {
        self.snapshot_functions.lock().take()
    }

    /// The queue that frees this store's large removed values off the shard locks
    /// (DEL, UNLINK, overwrites, expiry, FLUSHDB/FLUSHALL ASYNC).
    pub fn lazyfree(&self) -> &LazyFree {
        &self.lazyfree
    }

    /// Clients blocked on keys of this store and keys made ready for them
    /// (see [`waiters`]).
    pub fn blocking(&self) -> &Arc<waiters::Blocking> {
        &self.blocking
    }

    /// The compact-encoding thresholds (CONFIG SET `hash-max-listpack-entries` and the
    /// others) that writes to this store's collections follow.
    pub fn limits(&self) -> &EncodingLimits {
        &self.limits
    }

    /// Number of databases.
    pub fn db_count(&self) -> usize {
        self.dbs.len()
    }

    /// Database `index`, if it exists.
    pub fn db(&self, index: usize) -> Option<&Db> {
        self.dbs.get(index)
    }

    /// Every database, in order.
    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }

    /// Runs `f` with every shard of every database locked (in the one global order, database
    /// then shard, which multi-key and cross-database commands also follow): a single instant
    /// in the history of the whole store. `f` gets each shard with its database index.
    /// Used to start snapshots and to attach or detach the write stream.
    pub fn with_all_locked<R>(&self, f: impl FnOnce(&mut [(u32, &mut Shard)]) -> R) -> R {
        let mut guards: Vec<(u32, ShardGuard<'_>)> = Vec::with_capacity(self.dbs.len() * SHARDS);
        for (index, db) in self.dbs.iter().enumerate() {
            for shard in db.shards.iter() {
                guards.push((index as u32, ShardGuard(shard.0.write())));
            }
        }
        let mut shards: Vec<(u32, &mut Shard)> = guards
            .iter_mut()
            .map(|(db, guard)| (*db, &mut **guard))
            .collect();
        f(&mut shards)
    }

    /// Opens an atomic section on the calling thread holding the shards in `masks` (one bit
    /// mask per database; missing databases hold nothing), taken in the one global order
    /// (database, then shard). Until it is dropped, handlers on this thread re-enter those
    /// shards, so a sequence of commands runs as one unit with respect to other clients.
    pub fn hold_shards(&self, masks: &[u32]) -> HeldShards<'_> {
        let section = Section::enter();
        let mut holds = Vec::with_capacity(masks.iter().map(|m| m.count_ones() as usize).sum());
        for (db, &mask) in self.dbs.iter().zip(masks) {
            let mut rest = mask;
            while rest != 0 {
                let index = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if let Some(shard) = db.shards.get(index) {
                    holds.push(shard.0.hold());
                }
            }
        }
        let mut held = masks.to_vec();
        held.resize(self.dbs.len(), 0);
        HeldShards {
            holds,
            masks: held,
            store: self,
            _section: section,
        }
    }

    /// Attaches every shard to `stream` (or detaches them) at one instant; see
    /// [`attach_stream`].
    pub fn attach_stream(&self, stream: Option<&Arc<WriteStream>>) {
        self.with_all_locked(|shards| attach_stream(shards, stream));
    }

    /// Tells every shard where client-side caching learns of changed keys.
    pub fn attach_tracking(&self, tracking: &std::sync::Arc<crate::tracking::Tracking>) {
        self.with_all_locked(|shards| {
            for (_, shard) in shards.iter_mut() {
                shard.set_tracking(std::sync::Arc::clone(tracking));
            }
        });
    }

    /// Tells every shard who hears of the keys it expires.
    pub fn attach_key_events(&self, events: std::sync::Arc<dyn KeyEvents>) {
        self.with_all_locked(|shards| {
            for (db, shard) in shards.iter_mut() {
                shard.set_key_events(*db as usize, std::sync::Arc::clone(&events));
            }
        });
    }
}

/// The shards an atomic section holds ([`Store::hold_shards`]); dropping it releases them
/// and closes the section.
pub struct HeldShards<'a> {
    // Fields drop in order: the locks are released before the section closes.
    holds: Vec<Hold<'a, Shard>>,
    /// Held shards per database, as bit masks.
    masks: Vec<u32>,
    store: &'a Store,
    _section: Section,
}

impl HeldShards<'_> {
    /// True if the section holds shard `shard` of database `db`.
    pub fn holds(&self, db: usize, shard: usize) -> bool {
        self.masks
            .get(db)
            .is_some_and(|mask| mask & (1 << shard) != 0)
    }

    /// True if the section holds every shard of `mask` in database `db`.
    pub fn holds_all(&self, db: usize, mask: u32) -> bool {
        self.masks.get(db).is_some_and(|held| held & mask == mask)
    }

    /// Adds the shards of `mask` in database `db` without waiting: false, having added what
    /// was free, if another thread holds one of them. Waiting there could deadlock (this
    /// section already holds shards out of order); the caller starts over holding more.
    pub fn try_add(&mut self, db: usize, mask: u32) -> bool {
        let Some(database) = self.store.dbs.get(db) else {
            return false;
        };
        for (index, shard) in database.shards.iter().enumerate() {
            let bit = 1 << index;
            if mask & bit == 0 || self.masks[db] & bit != 0 {
                continue;
            }
            match shard.0.try_hold() {
                Some(hold) => {
                    self.holds.push(hold);
                    self.masks[db] |= bit;
                }
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hint follows the bucket array through resizes: after a write through `Db::lock`,
    /// it names the array the table has now.
    #[test]
    fn writers_keep_the_bucket_hint_current() {
        let db = Db::new(KeyHasher::new());
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000u32 {
            let key = format!("key:{i}");
            let (mut shard, hash) = db.lock(key.as_bytes());
            shard.set(hash, key.as_bytes(), Value::Str(b"v".to_vec()), None, 0);
            drop(shard);
            let index = shard_of(hash);
            let current = db.lock_shard(index).bucket_hint();
            assert_ne!(current.0, 0);
            assert_eq!(db.hints[index].get(), current);
            seen.insert(current.0);
        }
        assert!(seen.len() > SHARDS, "the tables must have resized");
    }

    /// `lookups` (which loads keys ahead) answers exactly as `lookup` one key at a time, in
    /// order, for lists shorter and longer than its look-ahead, with absent, expired and
    /// repeated keys; and counts each key once.
    #[test]
    fn pipelined_lookups_match_single_lookups() {
        let db = Db::new(KeyHasher::new());
        for i in 0..100 {
            let key = format!("key:{i}");
            let (mut shard, hash) = db.lock(key.as_bytes());
            let deadline = (i % 3 == 0).then_some(1_000);
            let value = Value::Str(format!("value {i}").into_bytes());
            shard.set(hash, key.as_bytes(), value, deadline, 0);
        }
        // Present, expired, absent (key:100..), and repeated keys.
        let keys: Vec<Vec<u8>> = (0..70)
            .map(|i| format!("key:{}", (i * 7) % 130).into_bytes())
            .collect();
        let read = db.read_keys(keys.iter().map(Vec::as_slice));
        let describe = |found: Lookup<'_>| match found {
            Lookup::Live(entry) => entry.value.as_string().ok().map(<[u8]>::to_vec),
            Lookup::Expired => Some(b"(expired)".to_vec()),
            Lookup::Absent => None,
        };
        for len in [0, 1, 3, 8, 9, 16, 17, 70] {
            let keys = &keys[..len];
            let one_by_one: Vec<_> = keys
                .iter()
                .map(|key| describe(read.lookup(key, 1_000)))
                .collect();
            let before = db.stats();
            let pipelined: Vec<_> = read
                .lookups(keys.iter().map(Vec::as_slice), 1_000)
                .map(describe)
                .collect();
            assert_eq!(pipelined, one_by_one, "{len} keys");
            let after = db.stats();
            let counted = (after.hits + after.misses) - (before.hits + before.misses);
            assert_eq!(counted, len as u64, "{len} keys counted once each");
        }
    }

    /// The debug check's keyspace-change signal: inserts, replacements, deadline changes,
    /// removals (lazy expiry included) and writes through `get_mut` that really changed the
    /// value count; lookups, a `get_mut` that changed nothing, an unchanged deadline and a
    /// failed removal do not.
    #[cfg(debug_assertions)]
    #[test]
    fn shard_changes_are_counted_for_the_propagation_check() {
        use crate::propagate::debug::Tally;
        let db = Db::new(KeyHasher::new());
        let changed = |f: &dyn Fn()| {
            let before = Tally::now();
            f();
            before.since().changed
        };
        let key = &b"k"[..];
        assert!(changed(&|| {
            let (mut shard, hash) = db.lock(key);
            shard.set(hash, key, Value::Str(b"1".to_vec()), None, 0);
        }));
        assert!(
            changed(&|| {
                let (mut shard, hash) = db.lock(key);
                shard.set(hash, key, Value::Str(b"1".to_vec()), None, 0);
            }),
            "a replacement counts even with the same value"
        );
        assert!(
            !changed(&|| {
                let (mut shard, hash) = db.lock(key);
                assert!(shard.get_mut(hash, key, 0).is_some());
                assert!(shard.contains(hash, key, 0));
                assert!(shard.get_read(hash, key, 0).is_some());
            }),
            "looking, even through get_mut, is no change"
        );
        assert!(!changed(
            &|| db.with_live(key, 0, |entry| assert!(entry.is_some()))
        ));
        assert!(
            changed(&|| {
                let (mut shard, hash) = db.lock(key);
                if let Some(Ok(bytes)) = shard
                    .get_mut(hash, key, 0)
                    .map(|entry| entry.value.as_string_mut())
                {
                    bytes.push(b'2');
                }
            }),
            "a write through get_mut counts when the lock is released"
        );
        assert!(changed(&|| {
            let (mut shard, hash) = db.lock(key);
            assert!(shard.set_expiry(hash, key, Some(100), 0));
        }));
        assert!(
            !changed(&|| {
                let (mut shard, hash) = db.lock(key);
                assert!(shard.set_expiry(hash, key, Some(100), 0));
            }),
            "the same deadline again is no change"
        );
        assert!(
            changed(&|| {
                let (mut shard, hash) = db.lock(key);
                assert!(shard.get_read(hash, key, 100).is_none());
            }),
            "lazy expiry deletes the key"
        );
        assert!(!changed(&|| {
            let (mut shard, hash) = db.lock(key);
            assert!(shard.remove(hash, key, 100).is_none());
        }));
        assert!(
            !changed(&|| drop(db.take_all())),
            "emptying an empty database"
        );
    }

    /// A shard attached to a stream appends what it propagates, with its database; a
    /// detached one appends nothing.
    #[test]
    fn attached_shards_feed_the_stream() {
        use crate::propagate::{DrainScratch, Effect, WriteStream};
        let store = Store::new(2);
        let stream = Arc::new(WriteStream::new());
        store.attach_stream(Some(&stream));
        let db1 = store.db(1).expect("database 1");
        let (shard, _) = db1.lock(b"k");
        shard.propagate(&[b"SET", b"k", b"v"]);
        drop(shard);
        let locked = db1.lock_keys([&b"a"[..], b"b"]);
        locked.propagate_named(b"DEL", [&b"a"[..], b"b"].into_iter());
        drop(locked);
        drop(db1.take_all());
        store.attach_stream(None);
        let (shard, _) = db1.lock(b"k");
        shard.propagate(&[b"SET", b"k", b"w"]);
        drop(shard);
        let mut seen = Vec::new();
        stream.drain(
            stream.horizon(),
            &mut DrainScratch::default(),
            &mut |e: Effect<'_>| seen.push((e.db, String::from_utf8_lossy(e.bytes).into_owned())),
        );
        let expected = [
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
            "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n",
            "*1\r\n$7\r\nFLUSHDB\r\n",
        ];
        assert_eq!(seen, expected.map(|text| (1, text.to_owned())).to_vec(),);
    }

    /// Reads under shared locks count hits and misses, see an expired key as expired without
    /// deleting it, and `expire_if_due` then deletes it (and only if it is still due).
    #[test]
    fn multi_key_reads_leave_expiry_to_the_caller() {
        let db = Db::new(KeyHasher::new());
        let keys: Vec<Vec<u8>> = (0..64).map(|i| format!("key:{i}").into_bytes()).collect();
        for (i, key) in keys.iter().enumerate() {
            let (mut shard, hash) = db.lock(key);
            let deadline = (i % 2 == 0).then_some(1_000);
            shard.set(hash, key, Value::Str(b"v".to_vec()), deadline, 0);
        }
        let read = db.read_keys(keys.iter().map(Vec::as_slice));
        let mut expired = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match read.lookup(key, 1_000) {
                Lookup::Live(entry) => {
                    assert!(i % 2 == 1);
                    assert_eq!(entry.value, Value::Str(b"v".to_vec()));
                }
                Lookup::Expired => expired.push(key),
                Lookup::Absent => panic!("key {i} is missing"),
            }
        }
        drop(read);
        assert_eq!(expired.len(), 32);
        assert_eq!(db.len(), 64, "a shared read deletes nothing");
        // A key rewritten between the read and the deletion is not deleted.
        let (mut shard, hash) = db.lock(expired[0]);
        shard.set(hash, expired[0], Value::Str(b"new".to_vec()), None, 1_000);
        drop(shard);
        db.expire_if_due(expired.iter().map(|key| key.as_slice()), 1_000);
        assert_eq!(db.len(), 33);
        let stats = db.stats();
        assert_eq!((stats.hits, stats.misses, stats.expired), (32, 32, 31));
    }
}
