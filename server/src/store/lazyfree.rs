//! Lazy freeing: large values are dropped on a background thread, not under a shard lock.
//!
//! Dropping a collection frees every element's allocation: a million-field hash takes tens of
//! milliseconds, and a shard's clients would wait that long if DEL, an overwrite or an expiry
//! dropped it under the lock. So whatever removes a value from a shard hands it to
//! [`LazyFree::dispose`]: a value whose [`Value::free_effort`] (about one per allocation) is
//! above [`LAZYFREE_THRESHOLD`] is moved to a queue, which one thread per store drains; a
//! string or a small collection is dropped on the spot, which is cheaper than the hand-over
//! (Redis's lazyfree makes the same call, with the same threshold of 64). FLUSHDB and
//! FLUSHALL ASYNC hand over whole tables the same way ([`LazyFree::dispose_tables`]).
//!
//! The queue is bounded ([`QUEUE_JOBS`]): when it is full the value is freed inline rather
//! than queued without limit, so a flood of deletions degrades to Redis's synchronous
//! behaviour instead of to unbounded memory. The thread is started by the first value that
//! needs it, ends when the store is dropped (with the queue's last sender), and
//! [`LazyFree::drain`] waits for everything queued before it (server shutdown).
//!
//! INFO reports `lazyfree_pending_objects` (queued, not yet freed) and `lazyfreed_objects`
//! (freed by the thread since the start or CONFIG RESETSTAT), counting a flushed table as
//! its number of keys, as Redis does.
//!
//! The thread is plain `std` (not `crate::sync`): the freeing it does is invisible to the
//! store's synchronisation, and loom models free inline (no thread is ever started under
//! `kv_loom`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use super::shard::Entry;
use super::table::Table;
use super::value::Value;

/// Values whose free effort is above this go to the freeing thread (Redis's
/// `LAZYFREE_THRESHOLD`): below it, freeing inline costs about what the hand-over does.
pub const LAZYFREE_THRESHOLD: usize = 64;

/// Most jobs waiting for the freeing thread; past it values are freed inline.
pub const QUEUE_JOBS: usize = 1024;

/// What the freeing thread drops.
#[allow(dead_code, reason = "held only to be dropped on the freeing thread")]
enum Garbage {
    /// One value removed from a shard.
    Value(Value),
    /// Whole tables taken out of their shards (FLUSHDB / FLUSHALL ASYNC).
    Tables(Vec<Table<Entry>>),
}

/// One message to the freeing thread.
enum Job {
    /// Drop `garbage`, which counts as `objects` objects.
    Free { garbage: Garbage, objects: usize },
    /// Acknowledge: everything queued before has been freed.
    Drained(SyncSender<()>),
}

/// What INFO reports, shared with the thread.
#[derive(Default)]
struct Counters {
    pending: AtomicUsize,
    freed: AtomicU64,
    /// Test hook: runs on the freeing thread before each job is dropped.
    before_free: std::sync::Mutex<Option<Box<dyn Fn() + Send>>>,
}

struct Inner {
    /// The queue's sending end, once the thread is started (`None` inside if it could not
    /// be: every value is then freed inline).
    queue: OnceLock<Option<SyncSender<Job>>>,
    counters: Arc<Counters>,
}

/// A store's lazy-free queue; see the module documentation. Cloned into every shard. The
/// default one frees everything inline (shards and databases built outside a store).
#[derive(Clone, Default)]
pub struct LazyFree(Option<Arc<Inner>>);

impl LazyFree {
    /// A queue with its own freeing thread, started on first use (inline under loom).
    pub fn new() -> Self {
        if cfg!(kv_loom) {
            return LazyFree(None);
        }
        LazyFree(Some(Arc::new(Inner {
            queue: OnceLock::new(),
            counters: Arc::new(Counters::default()),
        })))
    }

    /// Frees `value`: on the spot if it is a string or small, else on the freeing thread.
    /// Call it instead of dropping a value removed under a shard lock.
    #[inline]
    pub fn dispose(&self, value: Value) {
        if let Value::Str(bytes) = value {
            drop(bytes);
            return;
        }
        self.dispose_collection(value);
    }

    /// [`LazyFree::dispose`] for a collection: out of line, so that callers' string paths
    /// stay small.
    #[cold]
    #[inline(never)]
    fn dispose_collection(&self, value: Value) {
        if value.free_effort() <= LAZYFREE_THRESHOLD {
            drop(value);
            return;
        }
        if let Err(garbage) = self.queue(Garbage::Value(value), 1) {
            drop(garbage);
        }
    }

    /// Frees tables taken out of their shards (FLUSHDB / FLUSHALL ASYNC) on the freeing
    /// thread, or here if it cannot take them. Call with no lock held.
    pub fn dispose_tables(&self, tables: Vec<Table<Entry>>) {
        let objects = tables.iter().map(Table::len).sum();
        if objects == 0 {
            return;
        }
        if let Err(garbage) = self.queue(Garbage::Tables(tables), objects) {
            drop(garbage);
        }
    }

    /// Queues `garbage` for the thread; gives it back if there is no thread or no room.
    fn queue(&self, garbage: Garbage, objects: usize) -> Result<(), Garbage> {
        let Some(inner) = &self.0 else {
            return Err(garbage);
        };
        let Some(queue) = inner.queue.get_or_init(|| start(&inner.counters)) else {
            return Err(garbage);
        };
        inner.counters.pending.fetch_add(objects, Ordering::Relaxed);
        match queue.try_send(Job::Free { garbage, objects }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                inner.counters.pending.fetch_sub(objects, Ordering::Relaxed);
                match job {
                    Job::Free { garbage, .. } => Err(garbage),
                    Job::Drained(_) => Ok(()),
                }
            }
        }
    }

    /// Waits until everything queued so far has been freed (at shutdown, so that the
    /// process ends with its memory accounted for).
    pub fn drain(&self) {
        let Some(inner) = &self.0 else {
            return;
        };
        let Some(Some(queue)) = inner.queue.get() else {
            return;
        };
        let (ack, done) = sync_channel(1);
        if queue.send(Job::Drained(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// Objects queued and not yet freed (INFO `lazyfree_pending_objects`).
    pub fn pending(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |inner| inner.counters.pending.load(Ordering::Relaxed))
    }

    /// Objects the thread has freed (INFO `lazyfreed_objects`).
    pub fn freed(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |inner| inner.counters.freed.load(Ordering::Relaxed))
    }

    /// Zeroes the freed count (CONFIG RESETSTAT).
    pub fn reset_stats(&self) {
        if let Some(inner) = &self.0 {
            inner.counters.freed.store(0, Ordering::Relaxed);
        }
    }

    /// Installs a hook that the freeing thread runs before dropping each job: for tests
    /// that hold a free in progress (a slow drop) and check what else can run meanwhile.
    /// No effect on a queue that frees inline.
    #[doc(hidden)]
    pub fn set_before_free(&self, hook: impl Fn() + Send + 'static) {
        if let Some(inner) = &self.0 {
            let mut slot = inner
                .counters
                .before_free
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *slot = Some(Box::new(hook));
        }
    }
}

/// Starts the freeing thread; `None` (free inline) if the system refuses a thread.
fn start(counters: &Arc<Counters>) -> Option<SyncSender<Job>> {
    let (queue, jobs) = sync_channel(QUEUE_JOBS);
    let counters = Arc::clone(counters);
    let spawned = std::thread::Builder::new()
        .name("kv-lazyfree".to_owned())
        .spawn(move || free_jobs(&jobs, &counters));
    match spawned {
        Ok(_) => Some(queue),
        Err(err) => {
            tracing::warn!("could not start the lazy-free thread ({err}); freeing inline");
            None
        }
    }
}

/// The freeing thread: drops what it receives until every sender is gone.
fn free_jobs(jobs: &Receiver<Job>, counters: &Counters) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Free { garbage, objects } => {
                if let Some(hook) = counters
                    .before_free
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .as_ref()
                {
                    hook();
                }
                drop(garbage);
                counters.pending.fetch_sub(objects, Ordering::Relaxed);
                counters.freed.fetch_add(objects as u64, Ordering::Relaxed);
            }
            Job::Drained(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::value::{Hash, List};
    use crate::store::{shard_of, Store};
    use std::sync::mpsc::channel;
    use std::time::Duration;

    /// A hash of `fields` fields, a table once past the compact threshold.
    fn hash_of(fields: usize) -> Value {
        let hash: Hash = (0..fields).map(|i| (format!("field:{i}"), "v")).collect();
        Value::hash(hash)
    }

    /// A list of `elements` elements of 4000 bytes: two to a packed chunk, so its free
    /// effort is about half its length.
    fn list_of(elements: usize) -> Value {
        let list: List = (0..elements)
            .map(|i| format!("e{i:03999}").into_bytes())
            .collect();
        Value::list(list)
    }

    /// Holds every free on the thread until the returned sender is dropped (or sent to);
    /// the receiver hears when a free starts.
    fn hold_frees(
        lazyfree: &LazyFree,
    ) -> (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>) {
        let (release, released) = channel::<()>();
        let (started, starts) = channel::<()>();
        let released = std::sync::Mutex::new(released);
        lazyfree.set_before_free(move || {
            let _ = started.send(());
            // Returns when the test sends or drops `release`.
            let _ = released.lock().map(|r| r.recv());
        });
        (release, starts)
    }

    #[test]
    fn strings_and_small_values_are_freed_inline() {
        let lazyfree = LazyFree::new();
        lazyfree.dispose(Value::Str(vec![0; 1 << 20]));
        lazyfree.dispose(hash_of(LAZYFREE_THRESHOLD));
        let list = list_of(LAZYFREE_THRESHOLD);
        assert!(list.free_effort() <= LAZYFREE_THRESHOLD);
        lazyfree.dispose(list);
        // A compact hash is one buffer, whatever its field count.
        let compact = hash_of(100);
        assert_eq!(compact.free_effort(), 1);
        lazyfree.dispose(compact);
        lazyfree.dispose_tables(Vec::new());
        lazyfree.drain();
        assert_eq!((lazyfree.pending(), lazyfree.freed()), (0, 0));
        let Some(inner) = &lazyfree.0 else {
            panic!("a store's queue");
        };
        assert!(inner.queue.get().is_none(), "no thread was started");
    }

    #[test]
    fn large_values_are_freed_on_the_thread() {
        let lazyfree = LazyFree::new();
        let (release, starts) = hold_frees(&lazyfree);
        lazyfree.dispose(hash_of(1000));
        let list = list_of(2 * LAZYFREE_THRESHOLD + 4);
        assert!(list.free_effort() > LAZYFREE_THRESHOLD);
        lazyfree.dispose(list);
        starts
            .recv_timeout(Duration::from_secs(30))
            .expect("the first free starts");
        assert_eq!(lazyfree.pending(), 2);
        assert_eq!(lazyfree.freed(), 0);
        drop(release);
        lazyfree.drain();
        assert_eq!((lazyfree.pending(), lazyfree.freed()), (0, 2));
        lazyfree.reset_stats();
        assert_eq!(lazyfree.freed(), 0);
        // Inline everywhere when the handle is the default one.
        let inline = LazyFree::default();
        inline.dispose(hash_of(1000));
        inline.drain();
        assert_eq!((inline.pending(), inline.freed()), (0, 0));
    }

    /// `drain` returns only once everything queued before it is freed.
    #[test]
    fn drain_waits_for_what_is_queued() {
        let lazyfree = LazyFree::new();
        let (release, starts) = hold_frees(&lazyfree);
        for _ in 0..3 {
            lazyfree.dispose(hash_of(500));
        }
        starts
            .recv_timeout(Duration::from_secs(30))
            .expect("the first free starts");
        let (done, finished) = channel();
        let draining = lazyfree.clone();
        let drainer = std::thread::spawn(move || {
            draining.drain();
            let _ = done.send(draining.freed());
        });
        // Held inside the first free: the drain cannot have finished.
        assert!(finished.try_recv().is_err());
        drop(release);
        let freed = finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the drain ends once the frees are released");
        assert_eq!(freed, 3, "everything queued before the drain was freed");
        drainer.join().expect("the drainer ends");
    }

    /// With the thread stuck, the queue fills up and further values are freed inline: what
    /// waits is bounded.
    #[test]
    fn a_full_queue_frees_inline() {
        let lazyfree = LazyFree::new();
        let (release, starts) = hold_frees(&lazyfree);
        lazyfree.dispose(list_of(200));
        starts
            .recv_timeout(Duration::from_secs(30))
            .expect("the first free starts");
        for _ in 0..QUEUE_JOBS + 10 {
            lazyfree.dispose(list_of(200));
        }
        let queued = lazyfree.pending();
        assert_eq!(queued, QUEUE_JOBS + 1, "one being freed, a full queue");
        drop(release);
        lazyfree.drain();
        assert_eq!(lazyfree.pending(), 0);
        assert_eq!(lazyfree.freed(), queued as u64);
    }

    /// DEL, an overwrite, an expiry and a flush of large values leave the shard's lock free
    /// while the values are being freed: a reader of another key in the same shard gets
    /// through while the freeing thread is held inside the free.
    #[test]
    fn the_shard_lock_is_not_held_while_freeing() {
        let store = Store::new(1);
        let db = store.db(0).expect("db 0");
        let lazyfree = store.lazyfree();
        let (release, starts) = hold_frees(lazyfree);
        let big = b"big".as_slice();
        let shard = shard_of(db.hash(big));
        let neighbour = (0..)
            .map(|i| format!("neighbour:{i}").into_bytes())
            .find(|key| shard_of(db.hash(key)) == shard)
            .expect("a key in the same shard");
        let (mut guard, hash) = db.lock(&neighbour);
        guard.set(hash, &neighbour, Value::Str(b"here".to_vec()), None, 0);
        drop(guard);
        let read_neighbour = || {
            let db = store.db(0).expect("db 0");
            db.with_live(&neighbour, 0, |entry| {
                entry.and_then(|e| e.value.as_string().ok().map(<[u8]>::to_vec))
            })
        };

        // DEL: the free is held on the thread; the shard is free meanwhile.
        let (mut guard, hash) = db.lock(big);
        guard.set(hash, big, hash_of(10_000), None, 0);
        assert!(guard.delete(hash, big, 0));
        drop(guard);
        starts
            .recv_timeout(Duration::from_secs(30))
            .expect("the free starts");
        assert_eq!(read_neighbour(), Some(b"here".to_vec()));
        assert_eq!(lazyfree.pending(), 1);

        // An overwrite and an expiry queue behind it, and the shard stays free.
        let (mut guard, hash) = db.lock(big);
        guard.set(hash, big, list_of(1000), None, 0);
        guard.set(hash, big, Value::Str(b"small".to_vec()), None, 0);
        guard.set(hash, big, hash_of(1000), Some(10), 0);
        guard.expire_if_due(hash, big, 10);
        drop(guard);
        assert_eq!(read_neighbour(), Some(b"here".to_vec()));
        assert_eq!(lazyfree.pending(), 3);

        // FLUSHDB ASYNC: the table counts as its keys.
        lazyfree.dispose_tables(db.take_all());
        assert_eq!(lazyfree.pending(), 4);
        assert_eq!(read_neighbour(), None);
        drop(release);
        lazyfree.drain();
        assert_eq!((lazyfree.pending(), lazyfree.freed()), (0, 4));
    }
}
