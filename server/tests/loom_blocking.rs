//! Loom models of the blocking commands' wake-up path (`store::waiters`): registration
//! under the shard lock against a racing push, claim against timeout and cancellation.
//!
//! Run with: `RUSTFLAGS="--cfg kv_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom
//! cargo test -p kvserver --test loom_blocking --release`. The models drive the real shard
//! locks, waiter registry, ready list and serving loop; a client's wait is the loom build's
//! [`Signal`](kvserver::store::waiters::Signal), so a wake-up that never comes is a deadlock
//! loom reports.
#![cfg(kv_loom)]

use kvserver::store::value::list::{End, Fill};
use kvserver::store::value::List;
use kvserver::store::waiters::{
    self, BlockOp, Outcome, Waiter, CANCELLED, SERVED, TIMED_OUT, WAITING,
};
use kvserver::store::{Db, Store, Value};
use loom::sync::Arc;
use loom::thread;

const NOW: u64 = 1_000_000;
const KEY: &[u8] = b"queue";
const POP: BlockOp = BlockOp::ListPop {
    end: End::Head,
    count: None,
};

fn db(store: &Store) -> &Db {
    store.db(0).expect("database 0 exists")
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// What BLPOP does: under the key's lock, pops if the list has an element, else registers a
/// waiter (in the same critical section).
fn pop_or_register(store: &Store) -> Result<Vec<u8>, Arc<Waiter>> {
    let mut locked = db(store).lock_keys([KEY]);
    let (shard, hash) = locked.shard(KEY).expect("locked");
    if shard.get_mut(hash, KEY, NOW).is_some() {
        return match waiters::pop_now(&mut locked, KEY, &POP, Fill::DEFAULT, NOW) {
            Outcome::Popped { mut items, .. } => Ok(items.remove(0)),
            other => panic!("unexpected {other:?}"),
        };
    }
    let waiter = Arc::new(Waiter::new(0, [KEY], POP));
    shard.add_waiter(KEY, &waiter, store.blocking());
    Err(waiter)
}

/// What RPUSH does, then what the dispatcher does after a write: serve the ready keys.
fn push_and_serve(store: &Store, element: &[u8]) {
    push_to_and_serve(store, KEY, element);
}

/// [`push_and_serve`] onto `key`.
fn push_to_and_serve(store: &Store, key: &[u8], element: &[u8]) {
    {
        let (mut shard, hash) = db(store).lock(key);
        match shard.get_mut(hash, key, NOW) {
            Some(entry) => {
                entry
                    .value
                    .as_list_mut()
                    .expect("a list")
                    .push(End::Tail, element, Fill::DEFAULT)
            }
            None => {
                let mut list = List::new();
                list.push(End::Tail, element, Fill::DEFAULT);
                shard.set(hash, key, Value::list(list), None, NOW);
            }
        }
    }
    if store.blocking().pending() {
        waiters::serve_ready(store, NOW);
    }
}

/// The elements left in the list.
fn remaining(store: &Store) -> Vec<Vec<u8>> {
    remaining_in(store, KEY)
}

/// The elements left in the list at `key`.
fn remaining_in(store: &Store, key: &[u8]) -> Vec<Vec<u8>> {
    let (mut shard, hash) = db(store).lock(key);
    match shard.get_mut(hash, key, NOW) {
        Some(entry) => entry
            .value
            .as_list()
            .expect("a list")
            .iter()
            .map(|element| element.to_vec())
            .collect(),
        None => Vec::new(),
    }
}

/// The element a served waiter received.
fn received(waiter: &Waiter) -> Option<Vec<u8>> {
    match waiter.take_outcome()? {
        Outcome::Popped { mut items, .. } => Some(items.remove(0)),
        other => panic!("unexpected {other:?}"),
    }
}

/// A push racing a BLPOP: the client either pops the element itself or is woken and
/// served; it never sleeps forever beside an element (loom would report the deadlock), and
/// the element ends up with it exactly once.
#[test]
fn a_push_racing_a_block_is_never_missed() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let pusher = {
            let store = Arc::clone(&store);
            thread::spawn(move || push_and_serve(&store, b"x"))
        };
        let got = match pop_or_register(&store) {
            Ok(element) => element,
            Err(waiter) => {
                while waiter.state() == WAITING {
                    waiter.signal.wait();
                }
                assert_eq!(waiter.state(), SERVED);
                let got = loop {
                    if let Some(element) = received(&waiter) {
                        break element;
                    }
                    waiter.signal.wait();
                };
                waiters::unregister(db(&store), &waiter);
                got
            }
        };
        pusher.join().expect("pusher finished");
        assert_eq!(got, b"x");
        assert!(remaining(&store).is_empty());
        assert!(!store.blocking().pending());
    });
}

/// Two pushers serve one waiter while its timeout fires: the waiter gets at most one
/// element, no element is delivered twice or lost, and a timed-out waiter gets none.
#[test]
fn no_element_is_delivered_twice() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let waiter = pop_or_register(&store).expect_err("the list is empty");
        let pushers: Vec<_> = [&b"a"[..], b"b"]
            .into_iter()
            .map(|element| {
                let store = Arc::clone(&store);
                thread::spawn(move || push_and_serve(&store, element))
            })
            .collect();
        let timed_out = waiter.end(TIMED_OUT);
        for pusher in pushers {
            pusher.join().expect("pusher finished");
        }
        waiters::unregister(db(&store), &waiter);
        let mut all = remaining(&store);
        match received(&waiter) {
            Some(element) => {
                assert!(!timed_out);
                assert_eq!(waiter.state(), SERVED);
                all.push(element);
            }
            None => {
                assert!(timed_out);
                assert_eq!(waiter.state(), TIMED_OUT);
            }
        }
        all.sort();
        assert_eq!(all, [b"a".to_vec(), b"b".to_vec()]);
    });
}

/// The first of two waiters disconnects while a push serves: the element goes to it only
/// if it was claimed before the cancellation (it was live then); otherwise the second
/// waiter gets it. It is never lost, never delivered to both.
#[test]
fn a_cancelled_waiter_loses_no_element() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let first = pop_or_register(&store).expect_err("the list is empty");
        let second = pop_or_register(&store).expect_err("the list is empty");
        let pusher = {
            let store = Arc::clone(&store);
            thread::spawn(move || push_and_serve(&store, b"x"))
        };
        // The first client disconnects: its connection ends the wait and unregisters.
        let cancelled = first.end(CANCELLED);
        waiters::unregister(db(&store), &first);
        pusher.join().expect("pusher finished");
        let to_first = received(&first);
        let to_second = received(&second);
        if cancelled {
            assert_eq!(first.state(), CANCELLED);
            assert_eq!(to_first, None, "a cancelled waiter is skipped");
            assert_eq!(
                to_second.as_deref(),
                Some(&b"x"[..]),
                "the next waiter gets it"
            );
        } else {
            assert_eq!(first.state(), SERVED);
            assert_eq!(to_first.as_deref(), Some(&b"x"[..]));
            assert_eq!(to_second, None);
            assert_eq!(second.state(), WAITING);
        }
        assert!(remaining(&store).is_empty());
        waiters::unregister(db(&store), &second);
    });
}

/// A client blocked on two keys of different shards while both get an element from two
/// threads: serving locks both shards (no deadlock between the two servers), the client gets
/// exactly one element, and the other stays in its list.
#[test]
fn a_client_blocked_on_two_shards_gets_one_element() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let (a, b) = keys_in_two_shards(db(&store));
        let waiter = {
            let mut locked = db(&store).lock_keys([&a[..], &b[..]]);
            let waiter = Arc::new(Waiter::new(0, [&a[..], &b[..]], POP));
            for key in [&a, &b] {
                let (shard, _) = locked.shard(key).expect("locked");
                shard.add_waiter(key, &waiter, store.blocking());
            }
            waiter
        };
        let pushers: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|key| {
                let store = Arc::clone(&store);
                thread::spawn(move || push_to_and_serve(&store, &key, b"e"))
            })
            .collect();
        for pusher in pushers {
            pusher.join().expect("pusher finished");
        }
        assert_eq!(waiter.state(), SERVED);
        let got = match waiter.take_outcome() {
            Some(Outcome::Popped { key, items }) => (key.to_vec(), items),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(got.1, [b"e".to_vec()]);
        let left = remaining_in(&store, &a).len() + remaining_in(&store, &b).len();
        assert_eq!(left, 1, "one element served, one left");
        let other = if got.0 == a { &b } else { &a };
        assert_eq!(remaining_in(&store, other), [b"e".to_vec()]);
        waiters::unregister(db(&store), &waiter);
    });
}

/// Two keys owned by different shards of `db`.
fn keys_in_two_shards(db: &Db) -> (Vec<u8>, Vec<u8>) {
    let first = b"key:0".to_vec();
    let first_shard = kvserver::store::shard_of(db.hash(&first));
    let second = (1..)
        .map(|i| format!("key:{i}").into_bytes())
        .find(|k| kvserver::store::shard_of(db.hash(k)) != first_shard)
        .expect("some key lands in another shard");
    (first, second)
}
