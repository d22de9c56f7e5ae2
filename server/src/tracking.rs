//! Client-side caching (CLIENT TRACKING): which clients may hold which keys in a local cache,
//! and the invalidation messages that tell them to drop one.
//!
//! **Default mode.** A tracking client's read-only commands record their keys in the table
//! (key -> readers). The next change of a key sends each reader one `invalidate` message and
//! forgets the key, as in Redis: a client is told once per read. The table is bounded
//! (`tracking-table-max-keys`): past the bound, keys are dropped from it and their readers are
//! told to drop them too. **BCAST mode.** No table: every change of a key under one of the
//! client's prefixes is sent to it.
//!
//! Keys are names across databases, as in Redis: a write to `k` in database 1 invalidates a
//! client that read `k` in database 0. Changes are learnt from the store's write effects
//! (`Shard::propagate`, under the lock of the shard that changed), so every change that reaches
//! the append-only file reaches the caches too: writes, expiry, evictions from the tracking
//! table, blocked pops, scripts. Flushes are reported by FLUSHDB/FLUSHALL themselves
//! ([`Tracking::flushed`]): one null invalidation per client, as Redis sends.
//!
//! **Reads race with changes** on other threads. Redis records a read's keys in the same
//! single-threaded step as the read. Here a reader records its keys *before* it reads them,
//! tagged with the sequence number of its command, and publishes the number of each command
//! it finishes. A change that finds the reader's command unfinished sends the invalidation but
//! keeps the entry, so every change after the read is reported, as with Redis. (Forgetting
//! the entry at once would let a change between the recording and the read take it; on a
//! REDIRECT connection that invalidation can overtake the reply, and the value read would
//! then be cached with nobody left to invalidate it. `server/tests/loom_tracking.rs`.)
//!
//! Lock order: store shard, then a table shard, then the prefix list, then a tracker's
//! settings, then a mailbox.

use std::cell::Cell;
use std::collections::HashMap;

use bytes::BytesMut;
use protocol::encode::{
    write_array_header, write_bulk, write_integer, write_null, write_push_header,
};
use protocol::{OwnedArgv, Version};

use crate::clients::{ClientInfo, Registry};
use crate::pubsub::{Delivery, PubSub};
use crate::sync::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Shards of the key table: readers and writers of different keys rarely meet on one lock.
const TABLE_SHARDS: usize = 16;

/// Redis's default `tracking-table-max-keys`.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The channel RESP2 clients receive invalidations on (through a redirect).
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

thread_local! {
    /// The client whose command this thread is running (0: none), for NOLOOP.
    static CURRENT_CLIENT: Cell<u64> = const { Cell::new(0) };
}

/// Notes which client's command the thread runs from now on (0 when it ends), so that a
/// change can skip the NOLOOP client that made it.
#[inline]
pub fn set_current_client(id: u64) {
    CURRENT_CLIENT.with(|current| current.set(id));
}

fn current_client() -> u64 {
    CURRENT_CLIENT.with(Cell::get)
}

/// A client's CLIENT TRACKING options.
#[derive(Default, Clone)]
pub struct Settings {
    /// Tracking is on.
    pub on: bool,
    /// BCAST mode: every change under `prefixes`, no table.
    pub bcast: bool,
    /// Only reads after CLIENT CACHING YES are tracked.
    pub optin: bool,
    /// Reads after CLIENT CACHING NO are not tracked.
    pub optout: bool,
    /// No invalidations for the client's own changes.
    pub noloop: bool,
    /// The client invalidations go to instead of this one.
    pub redirect: Option<Arc<ClientInfo>>,
    /// The redirect target has gone (reported with `tracking-redir-broken`).
    pub broken: bool,
    /// BCAST prefixes (the empty prefix when none was given).
    pub prefixes: Vec<Box<[u8]>>,
}

impl Settings {
    /// CLIENT GETREDIR: -1 off, 0 no redirect, else the target's id.
    pub fn redirect_id(&self) -> i64 {
        match (&self.redirect, self.on) {
            (_, false) => -1,
            (None, true) => 0,
            (Some(target), true) => i64::try_from(target.id).unwrap_or(i64::MAX),
        }
    }
}

/// One client's tracking state, shared with the table entries of the keys it read.
pub struct Tracker {
    client: Arc<ClientInfo>,
    settings: Mutex<Settings>,
    /// Sequence number of the client's last finished command (see the module docs).
    finished: AtomicU64,
}

impl Tracker {
    /// A tracker for `client`, off.
    pub fn new(client: Arc<ClientInfo>) -> Arc<Tracker> {
        Arc::new(Tracker {
            client,
            settings: Mutex::new(Settings::default()),
            finished: AtomicU64::new(0),
        })
    }

    /// A copy of the current options.
    pub fn settings(&self) -> Settings {
        self.settings.lock().clone()
    }

    /// The command numbered `seq` has finished reading.
    #[inline]
    pub fn finish(&self, seq: u64) {
        self.finished.store(seq, Ordering::Release);
    }

    fn client_id(&self) -> u64 {
        self.client.id
    }
}

/// One reader of a key: the tracker, and the command that recorded the read.
struct Reader {
    tracker: Arc<Tracker>,
    seq: u64,
}

type KeyTable = HashMap<Box<[u8]>, Vec<Reader>, foldhash::fast::FixedState>;

/// BCAST clients of one prefix.
struct Prefix {
    prefix: Box<[u8]>,
    trackers: Vec<Arc<Tracker>>,
}

/// What an invalidation says.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// These keys changed.
    Keys(&'a [&'a [u8]]),
    /// Everything changed (a flush).
    Everything,
}

/// Every client's tracking: the key table, the BCAST prefixes, the clients with tracking on.
pub struct Tracking {
    table: [Mutex<KeyTable>; TABLE_SHARDS],
    /// Keys in the table (INFO `tracking_total_keys`).
    keys: AtomicUsize,
    /// Reader entries in the table (INFO `tracking_total_items`).
    items: AtomicUsize,
    /// `tracking-table-max-keys` (0: no bound).
    max_keys: AtomicUsize,
    /// BCAST prefixes, each with its clients.
    prefixes: Mutex<Vec<Prefix>>,
    /// `prefixes.len()`, read without the lock: changes skip the list while it is 0.
    prefix_count: AtomicUsize,
    /// Clients with tracking on, by id (flushes, INFO `tracking_clients`).
    trackers: Mutex<std::collections::BTreeMap<u64, Arc<Tracker>>>,
    /// Output limits of the receiving clients.
    pubsub: Arc<PubSub>,
    /// Where a client past its output limit is disconnected.
    clients: Arc<Registry>,
}

impl Tracking {
    /// No client tracks anything.
    pub fn new(pubsub: Arc<PubSub>, clients: Arc<Registry>) -> Tracking {
        Tracking {
            table: std::array::from_fn(|_| Mutex::new(KeyTable::default())),
            keys: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
            max_keys: AtomicUsize::new(DEFAULT_MAX_KEYS),
            prefixes: Mutex::new(Vec::new()),
            prefix_count: AtomicUsize::new(0),
            trackers: Mutex::new(std::collections::BTreeMap::new()),
            pubsub,
            clients,
        }
    }

    /// True while some change could concern a client: a key is in the table or a BCAST
    /// prefix exists. Writes test this (two relaxed loads) and nothing else otherwise.
    #[inline]
    pub fn is_interested(&self) -> bool {
        self.keys.load(Ordering::Relaxed) > 0 || self.prefix_count.load(Ordering::Relaxed) > 0
    }

    /// `tracking-table-max-keys`.
    pub fn max_keys(&self) -> usize {
        self.max_keys.load(Ordering::Relaxed)
    }

    /// Sets `tracking-table-max-keys` (0: unbounded), dropping keys past a lowered bound.
    pub fn set_max_keys(&self, max: usize) {
        self.max_keys.store(max, Ordering::Relaxed);
        self.enforce_bound(0);
    }

    /// (clients with tracking on, keys, reader entries, prefixes) for INFO.
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        (
            self.trackers.lock().len(),
            self.keys.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
            self.prefix_count.load(Ordering::Relaxed),
        )
    }

    /// Turns tracking on (or changes its options) for `tracker`. The caller checked the
    /// options (CLIENT TRACKING's errors); BCAST prefixes add to the ones already there.
    pub fn enable(&self, tracker: &Arc<Tracker>, mut settings: Settings) {
        let was_on;
        {
            let mut current = tracker.settings.lock();
            was_on = current.on;
            if settings.bcast {
                let mut prefixes = std::mem::take(&mut current.prefixes);
                if settings.prefixes.is_empty() && prefixes.is_empty() {
                    settings.prefixes.push(Box::default());
                }
                for prefix in std::mem::take(&mut settings.prefixes) {
                    if !prefixes.contains(&prefix) {
                        prefixes.push(prefix);
                    }
                }
                settings.prefixes = prefixes;
            }
            settings.on = true;
            settings.broken = false;
            *current = settings.clone();
        }
        if settings.bcast {
            let mut all = self.prefixes.lock();
            for prefix in &settings.prefixes {
                match all.iter_mut().find(|p| p.prefix == *prefix) {
                    Some(entry) => {
                        if !entry.trackers.iter().any(|t| Arc::ptr_eq(t, tracker)) {
                            entry.trackers.push(Arc::clone(tracker));
                        }
                    }
                    None => all.push(Prefix {
                        prefix: prefix.clone(),
                        trackers: vec![Arc::clone(tracker)],
                    }),
                }
            }
            self.prefix_count.store(all.len(), Ordering::Relaxed);
        }
        if !was_on {
            self.trackers
                .lock()
                .insert(tracker.client_id(), Arc::clone(tracker));
        }
        tracker.client.set_tracking(&settings);
    }

    /// Turns tracking off for `tracker` (CLIENT TRACKING OFF, RESET, disconnection). Keys it
    /// read stay in the table until they change, as in Redis, and are skipped then.
    pub fn disable(&self, tracker: &Arc<Tracker>) {
        let prefixes = {
            let mut settings = tracker.settings.lock();
            if !settings.on {
                return;
            }
            let prefixes = std::mem::take(&mut settings.prefixes);
            *settings = Settings::default();
            prefixes
        };
        if !prefixes.is_empty() {
            let mut all = self.prefixes.lock();
            for entry in all.iter_mut() {
                entry.trackers.retain(|t| !Arc::ptr_eq(t, tracker));
            }
            all.retain(|entry| !entry.trackers.is_empty());
            self.prefix_count.store(all.len(), Ordering::Relaxed);
        }
        self.trackers.lock().remove(&tracker.client_id());
        tracker.client.set_tracking(&Settings::default());
    }

    /// Records that `tracker`'s command `seq` is about to read `key` (default mode).
    pub fn remember(&self, tracker: &Arc<Tracker>, seq: u64, key: &[u8]) {
        let mut table = self.table[table_shard(key)].lock();
        match table.get_mut(key) {
            Some(readers) => match readers
                .iter_mut()
                .find(|r| Arc::ptr_eq(&r.tracker, tracker))
            {
                Some(reader) => reader.seq = seq,
                None => {
                    readers.push(Reader {
                        tracker: Arc::clone(tracker),
                        seq,
                    });
                    self.items.fetch_add(1, Ordering::Relaxed);
                }
            },
            None => {
                table.insert(
                    key.into(),
                    vec![Reader {
                        tracker: Arc::clone(tracker),
                        seq,
                    }],
                );
                self.keys.fetch_add(1, Ordering::Relaxed);
                self.items.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(table);
        self.enforce_bound(table_shard(key));
    }

    /// Past `tracking-table-max-keys`, drops keys (telling their readers to drop them too),
    /// starting with table shard `first`, until the table is within the bound. Called after
    /// every insertion and when the bound is lowered, so the table never stays above it.
    /// One table shard is locked at a time.
    fn enforce_bound(&self, first: usize) {
        let max = self.max_keys();
        if max == 0 {
            return;
        }
        for shard in (0..TABLE_SHARDS).map(|i| (first + i) % TABLE_SHARDS) {
            let mut table = self.table[shard].lock();
            let excess = self.keys.load(Ordering::Relaxed).saturating_sub(max);
            // Arbitrary keys (the map's order), collected in one pass.
            let victims: Vec<Box<[u8]>> = table.keys().take(excess).cloned().collect();
            for key in victims {
                let Some(readers) = table.remove(&key) else {
                    continue;
                };
                self.forget(readers.len());
                for reader in readers {
                    let mut settings = reader.tracker.settings.lock();
                    if settings.on && !settings.bcast {
                        self.deliver(&reader.tracker, &mut settings, Payload::Keys(&[&key]));
                    }
                }
            }
            if self.keys.load(Ordering::Relaxed) <= max {
                return;
            }
        }
    }

    fn forget(&self, readers: usize) {
        self.keys.fetch_sub(1, Ordering::Relaxed);
        self.items.fetch_sub(readers, Ordering::Relaxed);
    }

    /// A write effect was propagated (`args`: the command as the append-only file gets it):
    /// its written keys changed. Flushes are not taken from here (see [`Self::flushed`]).
    pub fn effect(&self, args: &[&[u8]]) {
        let Some(name) = args.first() else {
            return;
        };
        if name.eq_ignore_ascii_case(b"FLUSHDB") || name.eq_ignore_ascii_case(b"FLUSHALL") {
            return;
        }
        let Some(command) = crate::cmd::lookup(name) else {
            return;
        };
        let argv = OwnedArgv::new(args);
        let argv = argv.argv();
        let mut keys: Vec<&[u8]> = Vec::new();
        command.spec.for_each_written_key_position(argv, |at| {
            if let Some(key) = argv.get(at) {
                keys.push(key);
            }
        });
        self.changed(&keys);
    }

    /// `keys` changed, by the client running on this thread (if any).
    pub fn changed(&self, keys: &[&[u8]]) {
        let writer = current_client();
        if self.keys.load(Ordering::Relaxed) > 0 {
            for key in keys {
                self.key_changed(key, writer);
            }
        }
        if self.prefix_count.load(Ordering::Relaxed) > 0 {
            self.broadcast(keys, writer);
        }
    }

    /// Default mode: tells `key`'s readers and forgets them, except readers whose reading
    /// command has not finished (see the module docs).
    fn key_changed(&self, key: &[u8], writer: u64) {
        let mut table = self.table[table_shard(key)].lock();
        let Some(readers) = table.get_mut(key) else {
            return;
        };
        let before = readers.len();
        readers.retain(|reader| {
            let tracker = &reader.tracker;
            let mut settings = tracker.settings.lock();
            if !settings.on || settings.bcast {
                return false;
            }
            if !(settings.noloop && tracker.client_id() == writer) {
                self.deliver(tracker, &mut settings, Payload::Keys(&[key]));
            }
            reader.seq > tracker.finished.load(Ordering::Acquire)
        });
        let after = readers.len();
        self.items.fetch_sub(before - after, Ordering::Relaxed);
        if after == 0 {
            table.remove(key);
            self.keys.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// BCAST mode: each client with a prefix of some of `keys` gets those keys, one message
    /// per prefix, sorted and without repeats (as Redis groups them).
    fn broadcast(&self, keys: &[&[u8]], writer: u64) {
        let prefixes = self.prefixes.lock();
        let mut matching: Vec<&[u8]> = Vec::new();
        for entry in prefixes.iter() {
            matching.clear();
            matching.extend(keys.iter().filter(|key| key.starts_with(&entry.prefix)));
            if matching.is_empty() {
                continue;
            }
            matching.sort_unstable();
            matching.dedup();
            for tracker in &entry.trackers {
                let mut settings = tracker.settings.lock();
                if settings.on && !(settings.noloop && tracker.client_id() == writer) {
                    self.deliver(tracker, &mut settings, Payload::Keys(&matching));
                }
            }
        }
    }

    /// FLUSHDB / FLUSHALL: every tracking client gets a null invalidation (drop everything)
    /// and the table is emptied.
    pub fn flushed(&self) {
        let trackers: Vec<Arc<Tracker>> = self.trackers.lock().values().cloned().collect();
        for tracker in &trackers {
            let mut settings = tracker.settings.lock();
            if settings.on {
                self.deliver(tracker, &mut settings, Payload::Everything);
            }
        }
        if self.keys.load(Ordering::Relaxed) == 0 {
            return;
        }
        for shard in &self.table {
            let mut table = shard.lock();
            for readers in table.values() {
                self.forget(readers.len());
            }
            table.clear();
        }
    }

    /// Sends one invalidation for `tracker` (whose settings are locked): to its redirect
    /// target if it has one, else to itself; RESP3 clients get a push, a RESP2 redirect
    /// target in Pub/Sub mode a message on `__redis__:invalidate`, others nothing (as Redis).
    fn deliver(&self, tracker: &Tracker, settings: &mut Settings, payload: Payload<'_>) {
        let own = &tracker.client;
        let mut frame = BytesMut::new();
        let target = match &settings.redirect {
            Some(target) if target.is_gone() => {
                settings.broken = true;
                own.set_tracking(settings);
                if own.mailbox.version() == Version::Resp3 {
                    write_push_header(&mut frame, 2, Version::Resp3);
                    write_bulk(&mut frame, b"tracking-redir-broken");
                    write_integer(&mut frame, i64::try_from(target.id).unwrap_or(i64::MAX));
                    self.post(own, &frame);
                }
                return;
            }
            Some(target) => target,
            None => own,
        };
        if target.mailbox.version() == Version::Resp3 {
            write_push_header(&mut frame, 2, Version::Resp3);
            write_bulk(&mut frame, b"invalidate");
        } else if settings.redirect.is_some() && target.is_subscribed() {
            write_array_header(&mut frame, 3);
            write_bulk(&mut frame, b"message");
            write_bulk(&mut frame, INVALIDATE_CHANNEL);
        } else {
            return;
        }
        match payload {
            Payload::Keys(keys) => {
                write_array_header(&mut frame, keys.len());
                for key in keys {
                    write_bulk(&mut frame, key);
                }
            }
            // The null is in the tracking client's protocol, even when it goes to a
            // redirect target speaking the other one (as Redis does).
            Payload::Everything => write_null(&mut frame, own.mailbox.version()),
        }
        self.post(target, &frame);
    }

    /// Appends `frame` to `client`'s mailbox, disconnecting it past its output limit: the
    /// `pubsub` class's for a subscribed client, else the `normal` class's, or the `pubsub`
    /// one while `normal` is unlimited (Redis's default), so that a BCAST client that never
    /// reads cannot grow the server's memory without bound.
    fn post(&self, client: &ClientInfo, frame: &[u8]) {
        let limit = if client.is_subscribed() {
            // Read without a lock, as every Pub/Sub delivery reads it.
            self.pubsub.output_limit()
        } else {
            let limits = self.pubsub.output_limits();
            let unlimited = limits.normal.hard == 0 && limits.normal.soft == 0;
            if unlimited {
                limits.pubsub
            } else {
                limits.normal
            }
        };
        let now_ms = crate::clock::unix_ms();
        if let Delivery::Overflowed { first: true } =
            client.mailbox.deliver_encoded(frame, limit, now_ms)
        {
            let id = client.id;
            self.clients.kill(0, |c| c.id == id);
        }
    }
}

/// The table shard of `key`.
fn table_shard(key: &[u8]) -> usize {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(0).hash_one(key) as usize) % TABLE_SHARDS
}
