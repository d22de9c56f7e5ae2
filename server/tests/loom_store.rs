//! Loom models of the store's concurrency-critical core.
//!
//! Run with: `RUSTFLAGS="--cfg kv_loom" cargo test -p kvserver --test loom_store --release`
//! (CI sets `LOOM_MAX_PREEMPTIONS=2`). Under that cfg `kvserver::sync` re-exports loom's
//! primitives, so every shard lock below is explored by loom. Time is a parameter of the
//! store, so each model uses fixed instants instead of a clock.
#![cfg(kv_loom)]

use kvserver::cmd::string::incr_by;
use kvserver::store::{shard_of, Db, Lookup, ShardLock, Store, Value};
use loom::sync::Arc;
use loom::thread;

const NOW: u64 = 1_000_000;
const DEADLINE: u64 = NOW + 10;
const AFTER: u64 = DEADLINE + 1;

fn db(store: &Store) -> &Db {
    store.db(0).expect("database 0 exists")
}

fn value_of(db: &Db, key: &[u8], now: u64) -> Option<Vec<u8>> {
    let (mut shard, hash) = db.lock(key);
    shard.get_mut(hash, key, now).map(|entry| {
        entry
            .value
            .as_string()
            .expect("only strings are stored")
            .to_vec()
    })
}

/// A value read the way GET reads it: under the shard's read lock.
fn read_value(db: &Db, key: &[u8], now: u64) -> Option<Vec<u8>> {
    db.with_live(key, now, |entry| {
        entry.map(|entry| {
            entry
                .value
                .as_string()
                .expect("only strings are stored")
                .to_vec()
        })
    })
}

fn set(db: &Db, key: &[u8], value: &[u8], expires_at: Option<u64>, now: u64) {
    let (mut shard, hash) = db.lock(key);
    shard.set(hash, key, Value::Str(value.to_vec()), expires_at, now);
}

fn deadlines_consistent(db: &Db, key: &[u8]) -> bool {
    let (shard, _) = db.lock(key);
    shard.deadlines_consistent()
}

/// Sets both keys to `value` in one multi-key write, as MSET does.
fn set_both(db: &Db, a: &[u8], b: &[u8], value: &[u8]) {
    let mut locked = db.lock_keys([a, b]);
    for key in [a, b] {
        let (shard, hash) = locked.shard(key).expect("key was locked");
        shard.set(hash, key, Value::Str(value.to_vec()), None, NOW);
    }
}

/// Two keys owned by different shards of `db` (the hash seed is random per store).
fn keys_in_two_shards(db: &Db) -> (Vec<u8>, Vec<u8>) {
    let first = b"key:0".to_vec();
    let first_shard = shard_of(db.hash(&first));
    let second = (1..)
        .map(|i| format!("key:{i}").into_bytes())
        .find(|k| shard_of(db.hash(k)) != first_shard)
        .expect("some key lands in another shard");
    (first, second)
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

#[test]
fn concurrent_incr_gives_the_exact_sum() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let store = Arc::clone(&store);
                thread::spawn(move || {
                    incr_by(db(&store), b"counter", 1, NOW).expect("counter is an integer");
                })
            })
            .collect();
        incr_by(db(&store), b"counter", 5, NOW).expect("counter is an integer");
        for worker in workers {
            worker.join().expect("worker finished");
        }
        assert_eq!(value_of(db(&store), b"counter", NOW), Some(b"7".to_vec()));
    });
}

#[test]
fn set_with_ttl_vs_get_vs_sweep_never_yields_an_expired_value() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let writer = {
            let store = Arc::clone(&store);
            thread::spawn(move || set(db(&store), b"k", b"v", Some(DEADLINE), NOW))
        };
        let reader = {
            let store = Arc::clone(&store);
            // Reads after the deadline: whatever the interleaving, the value must not appear.
            thread::spawn(move || value_of(db(&store), b"k", AFTER))
        };
        let swept = db(&store).sweep_expired(AFTER, 16);
        writer.join().expect("writer finished");
        let read = reader.join().expect("reader finished");
        assert_eq!(read, None, "an expired value was returned");
        assert!(deadlines_consistent(db(&store), b"k"));
        // Either the key is still there with its deadline, or exactly one of the sweep and the
        // reader's lazy expiry removed it.
        let expired = db(&store).stats().expired;
        match value_of(db(&store), b"k", NOW) {
            Some(value) => {
                assert_eq!(value, b"v");
                assert_eq!(expired, 0);
            }
            None => assert_eq!(expired, 1),
        }
        assert!(expired >= swept.expired as u64);
        assert_eq!(value_of(db(&store), b"k", AFTER), None);
    });
}

#[test]
fn overwrite_without_ttl_survives_a_stale_heap_entry() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let writer = {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                set(db(&store), b"k", b"old", Some(DEADLINE), NOW);
                // SET without options clears the TTL; the heap entry for DEADLINE goes stale.
                set(db(&store), b"k", b"new", None, NOW);
            })
        };
        db(&store).sweep_expired(AFTER, 16);
        writer.join().expect("writer finished");
        db(&store).sweep_expired(AFTER, 16);
        assert_eq!(value_of(db(&store), b"k", AFTER), Some(b"new".to_vec()));
        assert!(deadlines_consistent(db(&store), b"k"));
    });
}

#[test]
fn del_racing_expiry_claims_the_key_exactly_once() {
    model(|| {
        let store = Arc::new(Store::new(1));
        set(db(&store), b"k", b"v", Some(DEADLINE), NOW);
        let deleter = {
            let store = Arc::clone(&store);
            // DEL just before the deadline, racing a sweep that runs after it.
            thread::spawn(move || {
                let (mut shard, hash) = db(&store).lock(b"k");
                shard.remove(hash, b"k", DEADLINE - 1).is_some()
            })
        };
        let swept = db(&store).sweep_expired(AFTER, 16);
        let deleted = deleter.join().expect("deleter finished");
        let expired = db(&store).stats().expired;
        assert!(
            deleted ^ (expired == 1),
            "exactly one of DEL and expiry must claim the key (deleted={deleted}, expired={expired})"
        );
        assert_eq!(swept.expired as u64, expired);
        assert_eq!(value_of(db(&store), b"k", NOW), None);
        assert!(deadlines_consistent(db(&store), b"k"));
    });
}

#[test]
fn multi_key_writes_are_atomic_across_shards() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let (a, b) = keys_in_two_shards(db(&store));
        let writers: Vec<_> = [b"1", b"2"]
            .into_iter()
            .map(|value| {
                let store = Arc::clone(&store);
                let (a, b) = (a.clone(), b.clone());
                thread::spawn(move || set_both(db(&store), &a, &b, value))
            })
            .collect();
        let snapshot: Vec<Option<Vec<u8>>> = {
            let mut locked = db(&store).lock_keys([&a[..], &b[..]]);
            [&a, &b]
                .into_iter()
                .map(|key| {
                    let (shard, hash) = locked.shard(key).expect("key was locked");
                    shard.get_mut(hash, key, NOW).map(|e| {
                        e.value
                            .as_string()
                            .expect("only strings are stored")
                            .to_vec()
                    })
                })
                .collect()
        };
        for writer in writers {
            writer.join().expect("writer finished");
        }
        assert_eq!(
            snapshot[0], snapshot[1],
            "a reader saw half of a multi-key write"
        );
        assert_eq!(value_of(db(&store), &a, NOW), value_of(db(&store), &b, NOW));
    });
}

/// MGET's path: read guards on several shards, taken in shard order like a multi-key
/// writer's. Two such readers (sharing a reader slot under loom's two slots, or not) and a
/// writer of both keys: each reader sees the write whole or not at all, and nobody
/// deadlocks (loom fails a model whose threads all block).
#[test]
fn multi_key_reads_see_multi_key_writes_whole() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let (a, b) = keys_in_two_shards(db(&store));
        for key in [&a, &b] {
            set(db(&store), key, b"0", None, NOW);
        }
        let snapshot = |store: &Store, a: &[u8], b: &[u8]| -> Vec<Option<Vec<u8>>> {
            let read = db(store).read_keys([a, b]);
            [a, b]
                .into_iter()
                .map(|key| match read.lookup(key, NOW) {
                    Lookup::Live(entry) => Some(
                        entry
                            .value
                            .as_string()
                            .expect("only strings are stored")
                            .to_vec(),
                    ),
                    Lookup::Expired | Lookup::Absent => None,
                })
                .collect()
        };
        let writer = {
            let store = Arc::clone(&store);
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || set_both(db(&store), &a, &b, b"1"))
        };
        let reader = {
            let store = Arc::clone(&store);
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || snapshot(&store, &a, &b))
        };
        let mine = snapshot(&store, &a, &b);
        let theirs = reader.join().expect("reader finished");
        writer.join().expect("writer finished");
        for seen in [mine, theirs] {
            assert!(seen[0].is_some(), "the keys always exist");
            assert_eq!(seen[0], seen[1], "a reader saw half of a multi-key write");
        }
        assert_eq!(value_of(db(&store), &a, NOW), Some(b"1".to_vec()));
    });
}

/// The shard lock excludes: two writers (which contend, so one may sleep on the lock) and a
/// reader sharing a reader slot with one of them (three threads, two slots under loom). loom's
/// cell tracking fails the model on any access that overlaps a write; the pair's halves also
/// show any half-done write, and the final count any lost one.
#[test]
fn shard_lock_readers_and_writers_exclude() {
    model(|| {
        let lock = Arc::new(ShardLock::new((0u64, 0u64)));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    let mut pair = lock.write();
                    pair.0 += 1;
                    thread::yield_now();
                    pair.1 += 1;
                })
            })
            .collect();
        let seen = {
            let pair = lock.read();
            pair.count_hit();
            // A reader may be preempted inside: a writer must wait (spin, then sleep) for it.
            thread::yield_now();
            assert_eq!(pair.0, pair.1, "a reader saw half of a write");
            pair.0
        };
        for writer in writers {
            writer.join().expect("writer finished");
        }
        let pair = lock.read();
        assert!(seen <= pair.0);
        assert_eq!(*pair, (2, 2), "a write was lost");
        assert_eq!(lock.read_counts().hits, 1);
    });
}

/// GET's read path against writers: a reader never sees a value older than one it already
/// saw, nor a value past its deadline, and the one lazy deletion it may make is counted once.
#[test]
fn reads_under_the_read_lock_race_writes_and_expiry() {
    model(|| {
        let store = Arc::new(Store::new(1));
        set(db(&store), b"k", b"1", None, NOW);
        let writer = {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                set(db(&store), b"k", b"2", None, NOW);
                set(db(&store), b"k", b"3", Some(DEADLINE), NOW);
            })
        };
        let reader = {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                // The history of k is "1", "2", "3", then gone (the late read below deletes
                // it once "3" has expired): reads must follow that order.
                let rank = |value: Option<Vec<u8>>| value.map_or(4, |v| v[0] - b'0');
                let first = rank(read_value(db(&store), b"k", NOW));
                let second = rank(read_value(db(&store), b"k", NOW));
                assert!(first <= second, "read state {second} after {first}");
            })
        };
        // After the deadline: the old values are gone for good once "3" is in.
        let late = read_value(db(&store), b"k", AFTER);
        assert!(matches!(late.as_deref(), None | Some(b"1") | Some(b"2")));
        writer.join().expect("writer finished");
        reader.join().expect("reader finished");
        assert_eq!(read_value(db(&store), b"k", AFTER), None);
        let stats = db(&store).stats();
        assert_eq!(stats.expired, 1, "the expired key was deleted exactly once");
        assert!(deadlines_consistent(db(&store), b"k"));
    });
}

/// The models have teeth: an INCR that reads and writes under two separate lock
/// acquisitions loses an update in some interleaving, and loom finds it.
#[test]
fn loom_catches_a_non_atomic_increment() {
    let outcome = std::panic::catch_unwind(|| {
        model(|| {
            let store = Arc::new(Store::new(1));
            let racy_incr = |store: &Store| {
                let current = value_of(db(store), b"n", NOW).map_or(0, |v| {
                    String::from_utf8_lossy(&v).parse::<i64>().unwrap_or(0)
                });
                set(
                    db(store),
                    b"n",
                    (current + 1).to_string().as_bytes(),
                    None,
                    NOW,
                );
            };
            let other = {
                let store = Arc::clone(&store);
                thread::spawn(move || racy_incr(&store))
            };
            racy_incr(&store);
            other.join().expect("worker finished");
            assert_eq!(value_of(db(&store), b"n", NOW), Some(b"2".to_vec()));
        });
    });
    assert!(outcome.is_err(), "loom did not find the lost update");
}

/// The write stream's merge is gap-free: a drain racing two appending threads hands its
/// consumer exactly the effects numbered below its horizon, in order, and a later drain the
/// rest; an effect appended after another by the same thread (in another lane) never comes
/// out first.
#[test]
fn write_stream_lanes_merge_without_gaps() {
    use kvserver::propagate::{DrainScratch, Effect, WriteStream};
    loom::model(|| {
        let stream = Arc::new(WriteStream::with_lanes(2));
        let appenders: Vec<_> = (0..2u8)
            .map(|t| {
                let stream = Arc::clone(&stream);
                thread::spawn(move || {
                    // Lane 0 then lane 1: the second effect depends on the first.
                    stream.append(0, 0, &[b"SET", &[b'a' + t]]);
                    stream.append(1, 0, &[b"SET", &[b'A' + t]]);
                })
            })
            .collect();
        let mut scratch = DrainScratch::default();
        let mut seen: Vec<(u64, Vec<u8>)> = Vec::new();
        let horizon = stream.horizon();
        stream.drain(horizon, &mut scratch, &mut |effect: Effect<'_>| {
            seen.push((effect.seq, effect.bytes.to_vec()))
        });
        let first: Vec<u64> = seen.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(
            first,
            (0..horizon).collect::<Vec<_>>(),
            "first drain is a gap-free prefix"
        );
        for appender in appenders {
            appender.join().expect("appender");
        }
        let horizon = stream.horizon();
        assert_eq!(horizon, 4);
        stream.drain(horizon, &mut scratch, &mut |effect: Effect<'_>| {
            seen.push((effect.seq, effect.bytes.to_vec()))
        });
        let all: Vec<u64> = seen.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(all, vec![0, 1, 2, 3], "every effect exactly once, in order");
        for t in 0..2u8 {
            let position = |name: u8| {
                seen.iter()
                    .position(|(_, bytes)| bytes.ends_with(&[name, b'\r', b'\n']))
                    .expect("effect present")
            };
            assert!(
                position(b'a' + t) < position(b'A' + t),
                "program order kept"
            );
        }
    });
}

/// The bit of `key`'s shard, for [`Store::hold_shards`] masks.
fn shard_bit(db: &Db, key: &[u8]) -> u32 {
    1 << shard_of(db.hash(key))
}

/// An atomic section (EXEC, a script) holds both shards up front, then runs "handlers" that
/// lock them again the ordinary way (write and read paths) and re-enter. Racing a plain
/// multi-key writer and a multi-key reader: nobody deadlocks, the reader sees each write
/// whole, and the section's writes are not interleaved with the other writer's.
#[test]
fn sections_hold_their_shards_and_handlers_reenter_them() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let (a, b) = keys_in_two_shards(db(&store));
        let section = {
            let store = Arc::clone(&store);
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                let db = db(&store);
                let held = store.hold_shards(&[shard_bit(db, &a) | shard_bit(db, &b)]);
                set(db, &a, b"1", None, NOW);
                // The read path re-enters too, and sees the section's own write.
                assert_eq!(read_value(db, &a, NOW), Some(b"1".to_vec()));
                set(db, &b, b"1", None, NOW);
                drop(held);
            })
        };
        let writer = {
            let store = Arc::clone(&store);
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || set_both(db(&store), &a, &b, b"2"))
        };
        let seen: Vec<Option<Vec<u8>>> = {
            let read = db(&store).read_keys([&a[..], &b[..]]);
            [&a, &b]
                .into_iter()
                .map(|key| match read.lookup(key, NOW) {
                    Lookup::Live(entry) => entry.value.as_string().ok().map(<[u8]>::to_vec),
                    Lookup::Expired | Lookup::Absent => None,
                })
                .collect()
        };
        section.join().expect("section finished");
        writer.join().expect("writer finished");
        assert_eq!(seen[0], seen[1], "a reader saw half of a section or write");
        assert_eq!(value_of(db(&store), &a, NOW), value_of(db(&store), &b, NOW));
    });
}

/// A section that finds it needs a shard it does not hold adds it with `try_add`, which
/// never waits: racing a multi-key writer that holds the lower shard and waits for the one
/// the section holds, the section gets it or is told no, and nobody deadlocks.
#[test]
fn adding_a_shard_to_a_section_never_waits() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let (a, b) = keys_in_two_shards(db(&store));
        let (low, high) = if shard_of(db(&store).hash(&a)) < shard_of(db(&store).hash(&b)) {
            (a, b)
        } else {
            (b, a)
        };
        let section = {
            let store = Arc::clone(&store);
            let (low, high) = (low.clone(), high.clone());
            thread::spawn(move || {
                let db = db(&store);
                let mut held = store.hold_shards(&[shard_bit(db, &high)]);
                set(db, &high, b"s", None, NOW);
                let added = held.try_add(0, shard_bit(db, &low));
                if added {
                    set(db, &low, b"s", None, NOW);
                }
                added
            })
        };
        let writer = {
            let store = Arc::clone(&store);
            let (low, high) = (low.clone(), high.clone());
            thread::spawn(move || set_both(db(&store), &low, &high, b"w"))
        };
        let added = section.join().expect("section finished");
        writer.join().expect("writer finished");
        let (low_value, high_value) = (
            value_of(db(&store), &low, NOW),
            value_of(db(&store), &high, NOW),
        );
        if added {
            // Both orders are possible, but never a mix of the section's and the writer's.
            assert_eq!(low_value, high_value);
        } else {
            assert_eq!(low_value, Some(b"w".to_vec()));
        }
    });
}

/// As above with a multi-shard *reader* (MGET's path) holding the lower shard's read lock
/// while it waits for the shard the section holds: `try_add` must not wait for that reader
/// to leave, or neither would ever move.
#[test]
fn adding_a_shard_never_waits_for_a_reader_inside() {
    model(|| {
        let store = Arc::new(Store::new(1));
        let (a, b) = keys_in_two_shards(db(&store));
        let (low, high) = if shard_of(db(&store).hash(&a)) < shard_of(db(&store).hash(&b)) {
            (a, b)
        } else {
            (b, a)
        };
        let section = {
            let store = Arc::clone(&store);
            let (low, high) = (low.clone(), high.clone());
            thread::spawn(move || {
                let db = db(&store);
                let mut held = store.hold_shards(&[shard_bit(db, &high)]);
                set(db, &high, b"s", None, NOW);
                if held.try_add(0, shard_bit(db, &low)) {
                    set(db, &low, b"s", None, NOW);
                }
            })
        };
        let reader = {
            let store = Arc::clone(&store);
            let (low, high) = (low.clone(), high.clone());
            thread::spawn(move || {
                let read = db(&store).read_keys([&low[..], &high[..]]);
                [&low, &high]
                    .into_iter()
                    .map(|key| matches!(read.lookup(key, NOW), Lookup::Live(_)))
                    .collect::<Vec<bool>>()
            })
        };
        section.join().expect("section finished");
        let seen = reader.join().expect("reader finished");
        // The reader saw the section whole or not at all (or only its write to `high`,
        // when the section could not add `low`, which it then never writes).
        assert!(
            !(seen[0] && !seen[1]),
            "the reader saw low without high: {seen:?}"
        );
    });
}
