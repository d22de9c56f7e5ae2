//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN...): who waits for which key, how a write
//! that creates a key makes it ready, and how ready keys are served.
//!
//! # Design
//!
//! - **Registration lives in the key's shard.** A shard keeps a map from key to the FIFO of
//!   [`Waiter`]s blocked on it, under the shard's own lock. A blocking command checks its keys
//!   and registers on them under one multi-key lock of their shards, and every write that
//!   stores a value goes through [`Shard::set`](super::Shard::set) under the same lock, so a
//!   push and a registration cannot miss each other: either the command sees the element, or
//!   the push sees the waiter. No wake-up is lost.
//! - **Making ready costs nothing when nobody waits.** `Shard::set` tests one `Option` (empty
//!   unless a client is blocked on a key of that shard); only then does it look the key up,
//!   and, if the new value is a list or a sorted set, append `(db, key)` to the store-wide
//!   [`Blocking`] ready list and raise its flag. GET and SET never touch anything else.
//! - **Serving happens after the command, by the writer.** Once a write command has returned
//!   (no lock held), the dispatcher tests the ready flag (one relaxed load of a line that is
//!   written only when keys become ready) and calls [`serve_ready`]. For each ready key it
//!   takes the waiters in FIFO order; for each it locks the shards of all the waiter's keys
//!   (and of BLMOVE's destination, in the global order) and *claims* it (`WAITING -> SERVED`,
//!   a compare-and-swap that fails for a waiter that timed out, was unblocked or
//!   disconnected: it is dropped from the queue and the element stays). Then it pops from
//!   the first of the waiter's keys that has elements (what Redis 7.2's re-run of the
//!   command does), propagates the pop as Redis does (BLPOP as `LPOP key`, BLMOVE as
//!   `LMOVE`...), and hands the result to the waiter, which encodes its own reply (it knows
//!   its protocol version). A BLMOVE's push may make its destination ready: it is appended
//!   to the ready list and served in the same loop (the chain Redis has). Serving stops when
//!   the key is empty or has no waiter of its type left.
//! - **The waiter never polls.** Its connection awaits a [`Signal`] (a `tokio::sync::Notify`,
//!   which keeps a wake-up that arrives before the wait) and its socket; its deadline is a
//!   timer task on the server's main runtime (connection threads have no timer driver). A
//!   timeout, disconnect or CLIENT UNBLOCK ends the wait with the reverse compare-and-swap
//!   (`WAITING -> TIMED_OUT`...); if that fails the waiter was served, and it takes the result
//!   (waiting for it if the server is between its claim and its hand-over). Then it removes
//!   its registrations from every key it blocked on.
//!
//! Every way a key gets a list or sorted set (LPUSH, ZADD, LMOVE's destination, RENAME, COPY,
//! MOVE, a BLMOVE served here...) stores it through `Shard::set`, which is why the list
//! commands' `pushed` hook (`cmd::list::pushed`) has nothing to do: a push onto a list that
//! already exists cannot concern a waiter (a client blocks only while all its keys are
//! empty, and a key with waiters that got elements is already on the ready list).
//!
//! Any thread may serve any ready key (the flag is store-wide), so a key made ready by one
//! thread's write is never left for a thread that does not come back; the writer itself
//! always looks after its own command.
//!
//! Everything here uses `crate::sync`, so the loom models (`tests/loom_blocking.rs`) explore
//! registration, serving, timeouts and cancellation against the real shard locks.

use std::collections::{HashMap, VecDeque};

use super::value::list::{End, Fill};
use super::{Db, MultiLock, Shard, Store, Value};
use crate::sync::{Arc, AtomicBool, AtomicU32, AtomicUsize, Mutex, Ordering};

/// What a blocked command does once one of its keys is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOp {
    /// BLPOP / BRPOP (`count` None: one element, propagated as `LPOP key`), BLMPOP (`count`
    /// Some: up to that many, propagated as `LPOP key n`).
    ListPop {
        /// The end popped from.
        end: End,
        /// BLMPOP's COUNT (1 without the option).
        count: Option<usize>,
    },
    /// BLMOVE / BRPOPLPUSH: pop from the ready key, push onto `dst`.
    ListMove {
        /// The end popped from.
        from: End,
        /// The end of `dst` pushed to.
        to: End,
        /// The destination list.
        dst: Box<[u8]>,
        /// Propagate as `RPOPLPUSH src dst` (BRPOPLPUSH) instead of `LMOVE src dst from to`.
        rpoplpush: bool,
    },
    /// BZPOPMIN / BZPOPMAX (`count` None) and BZMPOP (`count` Some).
    ZPop {
        /// Pop the highest scores (BZPOPMAX, MAX) instead of the lowest.
        max: bool,
        /// BZMPOP's COUNT (1 without the option).
        count: Option<usize>,
    },
}

/// The types of value a blocked command can be served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    ZSet,
}

impl Kind {
    /// The kind of `value`, if a blocked command can be served from it.
    fn of(value: &Value) -> Option<Kind> {
        match value {
            Value::List(_) => Some(Kind::List),
            Value::ZSet(_) => Some(Kind::ZSet),
            _ => None,
        }
    }
}

impl BlockOp {
    /// The type of value that serves this operation.
    fn wants(&self) -> Kind {
        match self {
            BlockOp::ListPop { .. } | BlockOp::ListMove { .. } => Kind::List,
            BlockOp::ZPop { .. } => Kind::ZSet,
        }
    }

    /// True if `value` can serve the operation.
    pub fn served_by(&self, value: &Value) -> bool {
        Kind::of(value) == Some(self.wants())
    }
}

/// What a served waiter receives: the structured result, encoded by its own connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Elements popped from the list at `key` (one for BLPOP and BLMOVE).
    Popped {
        /// The key served from.
        key: Box<[u8]>,
        /// The elements, in pop order.
        items: Vec<Vec<u8>>,
    },
    /// Members and scores popped from the sorted set at `key`.
    ZPopped {
        /// The key served from.
        key: Box<[u8]>,
        /// The members and their scores, in pop order.
        items: Vec<(Vec<u8>, f64)>,
    },
    /// The command failed when served (a BLMOVE whose destination now holds another type):
    /// the error line.
    Failed(&'static str),
}

/// A waiter that is still waiting.
pub const WAITING: u32 = 0;
/// Claimed by a server: its outcome is (or is about to be) in the slot.
pub const SERVED: u32 = 1;
/// Its timeout passed first.
pub const TIMED_OUT: u32 = 2;
/// Its client disconnected (or the server is shutting down).
pub const CANCELLED: u32 = 3;
/// CLIENT UNBLOCK ... TIMEOUT: answers as a timeout.
pub const UNBLOCKED_TIMEOUT: u32 = 4;
/// CLIENT UNBLOCK ... ERROR: answers with the UNBLOCKED error.
pub const UNBLOCKED_ERROR: u32 = 5;

/// How a server wakes a waiter. In the server, a `tokio::sync::Notify` (a wake-up that comes
/// before the wait is kept as a permit, so none is lost); under loom, a flag and a condition
/// variable the model's thread sleeps on.
#[cfg(not(kv_loom))]
pub type Signal = tokio::sync::Notify;

/// How a server wakes a waiter (loom models: a flag and a condition variable).
#[cfg(kv_loom)]
#[derive(Debug, Default)]
pub struct Signal {
    woken: Mutex<bool>,
    condvar: crate::sync::Condvar,
}

#[cfg(kv_loom)]
impl Signal {
    /// A signal nobody raised yet.
    pub fn new() -> Self {
        Signal::default()
    }

    /// Raises the signal (kept until a wait consumes it).
    pub fn notify_one(&self) {
        *self.woken.lock() = true;
        self.condvar.notify_all();
    }

    /// The server's await point, for the code to compile under loom (the models call
    /// [`Signal::wait`] from their threads instead).
    pub async fn notified(&self) {
        self.wait();
    }

    /// Lowers the signal; true if it was raised.
    pub(crate) fn take_raised(&self) -> bool {
        std::mem::take(&mut *self.woken.lock())
    }

    /// Sleeps until the signal is raised, and lowers it.
    pub fn wait(&self) {
        let mut woken = self.woken.lock();
        while !*woken {
            woken = self.condvar.wait(woken);
        }
        *woken = false;
    }
}

/// One blocked command: what it waits for, its state, and where its result goes.
#[derive(Debug)]
pub struct Waiter {
    /// [`WAITING`], then exactly one of the final states.
    state: AtomicU32,
    outcome: Mutex<Option<Outcome>>,
    /// Raised when the state leaves [`WAITING`] by someone else's hand (served, unblocked).
    pub signal: Signal,
    /// The database of its keys.
    pub db: u32,
    /// The keys it blocks on, in argument order, without duplicates.
    pub keys: Vec<Box<[u8]>>,
    /// What serving it does.
    pub op: BlockOp,
}

impl Waiter {
    /// A waiter for `keys` (duplicates are dropped, the first place kept) of database `db`.
    pub fn new<'k>(db: u32, keys: impl IntoIterator<Item = &'k [u8]>, op: BlockOp) -> Self {
        let mut unique: Vec<Box<[u8]>> = Vec::new();
        for key in keys {
            if !unique.iter().any(|k| &**k == key) {
                unique.push(key.into());
            }
        }
        Waiter {
            state: AtomicU32::new(WAITING),
            outcome: Mutex::new(None),
            signal: Signal::new(),
            db,
            keys: unique,
            op,
        }
    }

    /// The current state.
    pub fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// A server takes this waiter: true if it was still waiting (the caller must then
    /// [`deliver`](Self::deliver)), false if it is no longer (skip it).
    fn claim(&self) -> bool {
        self.state
            .compare_exchange(WAITING, SERVED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Hands the outcome to a claimed waiter and wakes it.
    fn deliver(&self, outcome: Outcome) {
        *self.outcome.lock() = Some(outcome);
        self.signal.notify_one();
    }

    /// Ends the wait for `reason` ([`TIMED_OUT`], [`CANCELLED`], [`UNBLOCKED_TIMEOUT`],
    /// [`UNBLOCKED_ERROR`]) if it is still waiting: true if this call ended it. False if it
    /// had ended already: served (take the outcome) or ended for another reason.
    pub fn end(&self, reason: u32) -> bool {
        self.state
            .compare_exchange(WAITING, reason, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// [`end`](Self::end) by another client (CLIENT UNBLOCK), waking the waiter.
    pub fn interrupt(&self, reason: u32) -> bool {
        let ended = self.end(reason);
        if ended {
            self.signal.notify_one();
        }
        ended
    }

    /// The outcome of a served waiter, once delivered (`None` before, and after it was taken).
    pub fn take_outcome(&self) -> Option<Outcome> {
        self.outcome.lock().take()
    }
}

/// The store-wide state of blocking: keys made ready and not yet served, and the number of
/// blocked clients (INFO `blocked_clients`).
#[derive(Debug, Default)]
pub struct Blocking {
    /// Raised when `ready` has keys: what the dispatcher tests after each write.
    pending: AtomicBool,
    ready: Mutex<Vec<(u32, Box<[u8]>)>>,
    blocked: AtomicUsize,
}

impl Blocking {
    /// True if some key was made ready and is not served yet (one relaxed load: the writer
    /// that made it ready sees its own store; other threads may see it a little later).
    #[inline]
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    fn mark_ready(&self, db: u32, key: &[u8]) {
        let mut ready = self.ready.lock();
        if !ready.iter().any(|(d, k)| *d == db && &**k == key) {
            ready.push((db, key.into()));
        }
        self.pending.store(true, Ordering::Relaxed);
    }

    fn take_ready(&self) -> Vec<(u32, Box<[u8]>)> {
        let mut ready = self.ready.lock();
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut *ready)
    }

    /// Clients blocked right now.
    pub fn blocked_clients(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Counts a client that starts blocking (see [`Self::unblocked`]).
    pub fn blocked(&self) {
        self.blocked.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client that stops blocking.
    pub fn unblocked(&self) {
        self.blocked.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The waiters of one shard's keys (boxed in the shard only while there are some).
#[derive(Debug)]
pub struct ShardWaiters {
    queues: HashMap<Box<[u8]>, VecDeque<Arc<Waiter>>>,
    blocking: Arc<Blocking>,
    /// The database of the shard (each shard belongs to one).
    db: u32,
}

impl ShardWaiters {
    /// Called by `Shard::set` for a key just given a list or sorted-set value.
    #[inline]
    pub(super) fn value_stored(&self, key: &[u8]) {
        if self.queues.contains_key(key) {
            self.blocking.mark_ready(self.db, key);
        }
    }
}

impl Shard {
    /// Registers `waiter` on `key` (behind the waiters already there). Call under the same
    /// lock as the check that found the key empty.
    pub fn add_waiter(&mut self, key: &[u8], waiter: &Arc<Waiter>, blocking: &Arc<Blocking>) {
        let waiters = self.waiters.get_or_insert_with(|| {
            Box::new(ShardWaiters {
                queues: HashMap::new(),
                blocking: Arc::clone(blocking),
                db: waiter.db,
            })
        });
        waiters
            .queues
            .entry(key.into())
            .or_default()
            .push_back(Arc::clone(waiter));
    }

    /// Removes `waiter`'s registration on `key`, if it is still there.
    pub fn remove_waiter(&mut self, key: &[u8], waiter: &Arc<Waiter>) {
        let Some(waiters) = self.waiters.as_deref_mut() else {
            return;
        };
        if let Some(queue) = waiters.queues.get_mut(key) {
            queue.retain(|w| !Arc::ptr_eq(w, waiter));
            if queue.is_empty() {
                waiters.queues.remove(key);
            }
        }
        if waiters.queues.is_empty() {
            self.waiters = None;
        }
    }

    /// Number of waiters registered on `key` (including ones that ended and have not
    /// removed themselves yet), for tests.
    pub fn waiter_count(&self, key: &[u8]) -> usize {
        self.waiters
            .as_deref()
            .and_then(|w| w.queues.get(key))
            .map_or(0, VecDeque::len)
    }

    /// The first waiter on `key` that is still waiting and that `value` can serve; waiters
    /// ahead of it that have ended are dropped from the queue (they would be skipped
    /// anyway), those waiting for another type stay.
    fn next_waiter(
        &mut self,
        key: &[u8],
        value_is: impl Fn(&BlockOp) -> bool,
    ) -> Option<Arc<Waiter>> {
        let waiters = self.waiters.as_deref_mut()?;
        let queue = waiters.queues.get_mut(key)?;
        queue.retain(|w| w.state() == WAITING);
        let found = queue.iter().find(|w| value_is(&w.op)).cloned();
        if queue.is_empty() {
            waiters.queues.remove(key);
            if waiters.queues.is_empty() {
                self.waiters = None;
            }
        }
        found
    }
}

/// Serves every ready key (see the module documentation); returns how many waiters were
/// served. Call with no shard lock held.
pub fn serve_ready(store: &Store, now_ms: u64) -> usize {
    serve_ready_reporting(store, now_ms, &mut |_| {})
}

/// A pop served to a blocked client, as reported to [`serve_ready_reporting`]'s caller
/// (which publishes its keyspace events).
#[derive(Debug, Clone, Copy)]
pub struct ServedPop<'a> {
    /// The database of the key.
    pub db: usize,
    /// The key popped from.
    pub key: &'a [u8],
    /// What was done (for a move, the destination pushed onto).
    pub op: &'a BlockOp,
    /// True if the pop emptied the key, which was deleted.
    pub emptied: bool,
}

/// [`serve_ready`], calling `on_served` for each pop it served (in order, with no shard lock
/// held; a waiter that failed with an error took nothing and is not reported).
pub fn serve_ready_reporting(
    store: &Store,
    now_ms: u64,
    on_served: &mut dyn FnMut(ServedPop<'_>),
) -> usize {
    let blocking = store.blocking();
    let fill = Fill::from_limits(&store.limits().get());
    let mut served = 0;
    while blocking.pending() {
        for (db_index, key) in blocking.take_ready() {
            if let Some(db) = store.db(db_index as usize) {
                served += serve_key(db, db_index as usize, &key, fill, now_ms, on_served);
            }
        }
    }
    served
}

/// What one attempt to serve the first waiter of a key did.
enum Step {
    /// A waiter was served (or failed: `None`); look for the next. `Some((index, emptied))`:
    /// it popped from its key at `index` in [`Waiter::keys`], and emptied it or not.
    Served(Option<(usize, bool)>),
    /// The waiter could not be served after all (it ended meanwhile, or the key changed
    /// between the two locks): look again.
    Retry,
    /// Nothing more to serve on this key.
    Done,
}

/// Serves the waiters of `key` (in database `db_index`) in FIFO order while it has elements;
/// returns how many.
fn serve_key(
    db: &Db,
    db_index: usize,
    key: &[u8],
    fill: Fill,
    now_ms: u64,
    on_served: &mut dyn FnMut(ServedPop<'_>),
) -> usize {
    let mut served = 0;
    loop {
        let waiter = {
            let (mut shard, hash) = db.lock(key);
            let Some(entry) = shard.get_mut(hash, key, now_ms) else {
                return served;
            };
            let Some(kind) = Kind::of(&entry.value) else {
                return served;
            };
            match shard.next_waiter(key, |op| op.wants() == kind) {
                Some(waiter) => waiter,
                None => return served,
            }
        };
        // All of the waiter's keys (and a move's destination) are locked: it is served from
        // the first of its keys that has elements, in argument order, as Redis 7.2's re-run
        // of the command would be, not necessarily from the key that became ready.
        let dst = match &waiter.op {
            BlockOp::ListMove { dst, .. } => Some(&**dst),
            _ => None,
        };
        let mut locked = db.lock_keys(waiter.keys.iter().map(|k| &**k).chain(dst));
        let step = serve_one(&mut locked, key, &waiter, fill, now_ms);
        drop(locked);
        match step {
            Step::Served(popped) => {
                served += 1;
                if let Some((index, emptied)) = popped {
                    if let Some(key) = waiter.keys.get(index) {
                        on_served(ServedPop {
                            db: db_index,
                            key,
                            op: &waiter.op,
                            emptied,
                        });
                    }
                }
            }
            Step::Retry => {}
            Step::Done => return served,
        }
    }
}

/// Serves `waiter`, found on the queue of the `ready` key, under `locked` (the shards of all
/// its keys and, for a move, of its destination): claims it, pops, propagates, pushes,
/// delivers.
fn serve_one(
    locked: &mut MultiLock<'_>,
    ready: &[u8],
    waiter: &Arc<Waiter>,
    fill: Fill,
    now_ms: u64,
) -> Step {
    // Between the two locks the ready key may have been emptied or retyped, and the waiter
    // may have ended: check both again.
    {
        let Some((shard, hash)) = locked.shard(ready) else {
            return Step::Done;
        };
        match shard.get_mut(hash, ready, now_ms) {
            Some(entry) if waiter.op.served_by(&entry.value) => {}
            _ => return Step::Done,
        }
    }
    if waiter.state() != WAITING {
        return Step::Retry;
    }
    // The first of its keys with elements of its type (the ready key at the latest, which
    // is one of its keys: it is on that key's queue).
    let mut key = ready;
    let mut key_index = waiter.keys.iter().position(|k| **k == *ready);
    for (index, candidate) in waiter.keys.iter().enumerate() {
        let Some((shard, hash)) = locked.shard(candidate) else {
            continue;
        };
        let found = shard
            .get_mut(hash, candidate, now_ms)
            .is_some_and(|entry| waiter.op.served_by(&entry.value));
        if found {
            key = candidate;
            key_index = Some(index);
            break;
        }
    }
    // A BLMOVE whose destination now holds another type fails with WRONGTYPE and takes
    // nothing, as Redis's re-run of the command does.
    if let BlockOp::ListMove { dst, .. } = &waiter.op {
        if &**dst != key {
            let Some((shard, hash)) = locked.shard(dst) else {
                return Step::Done;
            };
            let wrong = shard
                .get_mut(hash, dst, now_ms)
                .is_some_and(|entry| entry.value.as_list().is_err());
            if wrong {
                if waiter.claim() {
                    forget(locked, key, waiter);
                    waiter.deliver(Outcome::Failed(
                        "WRONGTYPE Operation against a key holding the wrong kind of value",
                    ));
                    return Step::Served(None);
                }
                return Step::Retry;
            }
        }
    }
    if !waiter.claim() {
        return Step::Retry;
    }
    forget(locked, key, waiter);
    let (outcome, emptied) = pop_for(locked, key, &waiter.op, fill, now_ms);
    let popped = match outcome {
        Outcome::Failed(_) => None,
        _ => key_index.map(|index| (index, emptied)),
    };
    waiter.deliver(outcome);
    Step::Served(popped)
}

/// Pops for a command that found `key` non-empty when it ran (the non-blocking path of a
/// blocking command, `locked` holding the shards of the key and of a move's destination,
/// whose type the caller checked): pops, pushes, and propagates as a served waiter would.
pub fn pop_now(
    locked: &mut MultiLock<'_>,
    key: &[u8],
    op: &BlockOp,
    fill: Fill,
    now_ms: u64,
) -> Outcome {
    pop_for(locked, key, op, fill, now_ms).0
}

/// [`pop_now`], also telling whether the pop emptied the key (which it then deleted): what
/// the keyspace events of the pop depend on.
pub fn pop_now_reporting(
    locked: &mut MultiLock<'_>,
    key: &[u8],
    op: &BlockOp,
    fill: Fill,
    now_ms: u64,
) -> (Outcome, bool) {
    pop_for(locked, key, op, fill, now_ms)
}

/// Drops a served waiter's registration on the key it was served from (its other keys'
/// registrations are removed by its own connection, or skipped when met).
fn forget(locked: &mut MultiLock<'_>, key: &[u8], waiter: &Arc<Waiter>) {
    if let Some((shard, _)) = locked.shard(key) {
        shard.remove_waiter(key, waiter);
    }
}

/// Performs `op` on the (non-empty, right-typed) value at `key`, deletes the key if that
/// emptied it, pushes to a move's destination, and propagates what Redis propagates for a
/// served blocking command. The `bool`: true if the key was emptied (and deleted).
fn pop_for(
    locked: &mut MultiLock<'_>,
    key: &[u8],
    op: &BlockOp,
    fill: Fill,
    now_ms: u64,
) -> (Outcome, bool) {
    let Some((shard, hash)) = locked.shard(key) else {
        return (Outcome::Failed("ERR internal error: key not locked"), false);
    };
    let Some(entry) = shard.get_mut(hash, key, now_ms) else {
        return (Outcome::Failed("ERR internal error: key vanished"), false);
    };
    let outcome = match (op, &mut entry.value) {
        (BlockOp::ListPop { end, count }, Value::List(list)) => {
            let wanted = count.unwrap_or(1).max(1);
            let mut items = Vec::with_capacity(wanted.min(list.len()));
            while items.len() < wanted {
                match list.pop(*end, fill) {
                    Some(item) => items.push(item),
                    None => break,
                }
            }
            Outcome::Popped {
                key: key.into(),
                items,
            }
        }
        (BlockOp::ListMove { from, to, dst, .. }, Value::List(list)) => {
            let Some(item) = list.pop(*from, fill) else {
                return (Outcome::Failed("ERR internal error: empty list"), false);
            };
            if &**dst == key {
                list.push(*to, &item, fill);
            }
            Outcome::Popped {
                key: key.into(),
                items: vec![item],
            }
        }
        (BlockOp::ZPop { max, count }, Value::ZSet(zset)) => {
            let wanted = count.unwrap_or(1).max(1);
            let mut items = Vec::with_capacity(wanted.min(zset.len()));
            while items.len() < wanted {
                match zset.pop(*max) {
                    Some(pair) => items.push(pair),
                    None => break,
                }
            }
            Outcome::ZPopped {
                key: key.into(),
                items,
            }
        }
        _ => return (Outcome::Failed("ERR internal error: wrong type"), false),
    };
    let emptied = match &entry.value {
        Value::List(list) => list.is_empty(),
        Value::ZSet(zset) => zset.is_empty(),
        _ => false,
    };
    if emptied {
        shard.remove(hash, key, now_ms);
    }
    propagate(locked, key, op, &outcome);
    if let (BlockOp::ListMove { to, dst, .. }, Outcome::Popped { items, .. }) = (op, &outcome) {
        if &**dst != key {
            if let (Some((shard, hash)), Some(item)) = (locked.shard(dst), items.first()) {
                push_onto(shard, hash, dst, *to, item, fill, now_ms);
            }
        }
    }
    (outcome, emptied)
}

/// Pushes `item` onto the list at `key` (creating it, which may make it ready for its own
/// waiters: the BLMOVE chain). The caller checked that `key` holds no other type.
fn push_onto(
    shard: &mut Shard,
    hash: u64,
    key: &[u8],
    to: End,
    item: &[u8],
    fill: Fill,
    now_ms: u64,
) {
    if let Some(entry) = shard.get_mut(hash, key, now_ms) {
        if let Ok(list) = entry.value.as_list_mut() {
            list.push(to, item, fill);
        }
        return;
    }
    let mut list = super::value::List::new();
    list.push(to, item, fill);
    shard.set(hash, key, Value::list(list), None, now_ms);
}

/// Propagates a served pop as Redis does: BLPOP/BRPOP as `LPOP key` / `RPOP key`, BLMPOP as
/// `LPOP key n` (n: the number popped), BLMOVE as `LMOVE src dst from to`, BRPOPLPUSH as
/// `RPOPLPUSH src dst`, BZPOPMIN/MAX as `ZPOPMIN key`, BZMPOP as `ZPOPMIN key n`.
fn propagate(locked: &MultiLock<'_>, key: &[u8], op: &BlockOp, outcome: &Outcome) {
    let side = |end: &End| -> &'static [u8] {
        match end {
            End::Head => b"LEFT",
            End::Tail => b"RIGHT",
        }
    };
    let popped = match outcome {
        Outcome::Popped { items, .. } => items.len(),
        Outcome::ZPopped { items, .. } => items.len(),
        Outcome::Failed(_) => return,
    };
    let popped = count_text(popped);
    match op {
        BlockOp::ListPop { end, count: None } => {
            let name: &[u8] = if *end == End::Head { b"LPOP" } else { b"RPOP" };
            locked.propagate(&[name, key]);
        }
        BlockOp::ListPop {
            end,
            count: Some(_),
        } => {
            let name: &[u8] = if *end == End::Head { b"LPOP" } else { b"RPOP" };
            locked.propagate(&[name, key, popped.as_bytes()]);
        }
        BlockOp::ListMove {
            dst,
            rpoplpush: true,
            ..
        } => locked.propagate(&[b"RPOPLPUSH", key, dst]),
        BlockOp::ListMove { from, to, dst, .. } => {
            locked.propagate(&[b"LMOVE", key, dst, side(from), side(to)]);
        }
        BlockOp::ZPop { max, count } => {
            let name: &[u8] = if *max { b"ZPOPMAX" } else { b"ZPOPMIN" };
            match count {
                None => locked.propagate(&[name, key]),
                Some(_) => locked.propagate(&[name, key, popped.as_bytes()]),
            }
        }
    }
}

/// `n` as the decimal text of a propagated count.
fn count_text(n: usize) -> protocol::IntText {
    protocol::IntText::new(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Removes `waiter`'s registrations on all its keys (after its wait ended, whatever ended
/// it), one shard lock at a time.
pub fn unregister(db: &Db, waiter: &Arc<Waiter>) {
    for key in &waiter.keys {
        let (mut shard, _) = db.lock(key);
        shard.remove_waiter(key, waiter);
    }
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;
    use crate::store::value::List;

    const NOW: u64 = 1_000;

    fn list_of(items: &[&str]) -> Value {
        let mut list = List::new();
        for item in items {
            list.push(End::Tail, item.as_bytes(), Fill::DEFAULT);
        }
        Value::list(list)
    }

    fn register(store: &Store, keys: &[&str], op: BlockOp) -> Arc<Waiter> {
        let db = store.db(0).expect("db 0");
        let waiter = Arc::new(Waiter::new(0, keys.iter().map(|k| k.as_bytes()), op));
        let mut locked = db.lock_keys(waiter.keys.iter().map(|k| &**k));
        for key in &waiter.keys {
            let (shard, _) = locked.shard(key).expect("locked");
            shard.add_waiter(key, &waiter, store.blocking());
        }
        waiter
    }

    fn store_value(store: &Store, key: &str, value: Value) {
        let (mut shard, hash) = store.db(0).expect("db 0").lock(key.as_bytes());
        shard.set(hash, key.as_bytes(), value, None, NOW);
    }

    fn popped(waiter: &Waiter) -> Option<(String, Vec<String>)> {
        match waiter.take_outcome()? {
            Outcome::Popped { key, items } => Some((
                String::from_utf8_lossy(&key).into_owned(),
                items
                    .iter()
                    .map(|i| String::from_utf8_lossy(i).into_owned())
                    .collect(),
            )),
            other => panic!("{other:?}"),
        }
    }

    const BLPOP: BlockOp = BlockOp::ListPop {
        end: End::Head,
        count: None,
    };

    /// Two of a waiter's keys ready at once: it takes the first in argument order, whichever
    /// became ready first; the other key stays for the next waiter.
    #[test]
    fn a_waiter_is_served_from_its_first_key_with_elements() {
        let store = Store::new(1);
        let first = register(&store, &["a", "b"], BLPOP);
        let second = register(&store, &["b"], BLPOP);
        store_value(&store, "b", list_of(&["from-b"]));
        store_value(&store, "a", list_of(&["from-a"]));
        assert!(store.blocking().pending());
        assert_eq!(serve_ready(&store, NOW), 2);
        assert_eq!(popped(&first), Some(("a".into(), vec!["from-a".into()])));
        assert_eq!(popped(&second), Some(("b".into(), vec!["from-b".into()])));
        assert!(!store.blocking().pending());
        unregister(store.db(0).expect("db 0"), &first);
        let (shard, _) = store.db(0).expect("db 0").lock(b"a");
        assert_eq!(shard.waiter_count(b"a"), 0);
    }

    /// Ended waiters are skipped, waiters of another type stay queued, a string stored under
    /// a key makes nothing ready, and serving stops when the list is empty.
    #[test]
    fn serving_skips_ended_and_other_type_waiters() {
        let store = Store::new(1);
        let zpop = register(
            &store,
            &["k"],
            BlockOp::ZPop {
                max: false,
                count: None,
            },
        );
        let timed_out = register(&store, &["k"], BLPOP);
        let live = register(&store, &["k"], BLPOP);
        let later = register(&store, &["k"], BLPOP);
        assert!(timed_out.end(TIMED_OUT));
        store_value(&store, "k", Value::Str(b"string".to_vec()));
        assert!(!store.blocking().pending(), "a string serves nobody");
        store_value(&store, "k", list_of(&["x"]));
        assert_eq!(serve_ready(&store, NOW), 1);
        assert_eq!(popped(&live), Some(("k".into(), vec!["x".into()])));
        assert_eq!(popped(&timed_out), None);
        assert_eq!(later.state(), WAITING);
        assert_eq!(zpop.state(), WAITING);
        let (shard, _) = store.db(0).expect("db 0").lock(b"k");
        assert_eq!(
            shard.waiter_count(b"k"),
            2,
            "the sorted-set waiter and the last one"
        );
    }
}
