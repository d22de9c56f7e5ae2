//! Active-expiry micro-benchmarks: what [`Db::sweep_expired`] costs per expired key, and what
//! a sweep costs when nothing is due.
//!
//! - `expiry/drain_1m`: a database of one million keys (`key:000000123456`, 32-byte values)
//!   whose deadlines are spread over the 1000 s before `T`, in an order unrelated to insertion
//!   order (as real TTLs are), is emptied by calls to `sweep_expired(T + 1, 64)` until none
//!   reports more due. 64 is the server cron's per-shard budget. One iteration drains the whole
//!   database; building it is not timed (each iteration builds a fresh one, outside the
//!   timed region of `iter_custom`). Throughput is one million elements, so criterion's element
//!   rate is expired keys per second, and the time per iteration divided by 10^6 is the time
//!   per expired key. It includes everything the sweep does per key: heap pop, table lookup
//!   and unlink, freeing the key and value, and the table and heap shrinking as they empty.
//! - `expiry/nothing_due`: one sweep when no deadline has passed, on a database of one million
//!   keys with future TTLs and on an empty one. It should cost about the same for both: a lock
//!   and a heap peek per shard, independent of the number of keys.
//!
//! Why: the cron sweeps every database `hz` times a second whether or not anything expires,
//! so an idle sweep must be cheap, and a mass expiry must be paid for in bounded steps at a
//! per-key cost comparable to a DEL.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use kvserver::store::{Db, KeyHasher, Value, SHARDS};

/// Keys in each database.
const KEYS: usize = 1_000_000;
/// Bytes per value.
const VALUE: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
/// When the keys are written (Unix ms).
const T0: u64 = 1_700_000_000_000;
/// Every deadline of `drain_1m` is at or before `T` and after `T0`.
const T: u64 = T0 + 2 * KEYS as u64;
/// The server cron's `SWEEP_BUDGET`: heap entries examined per shard per call.
const BUDGET: usize = 64;
/// A prime, so `i * SPREAD % KEYS` permutes the key indices.
const SPREAD: usize = 611_953;

/// A database of `KEYS` keys whose key `i` expires at `deadline(i)`; built by two threads.
fn build_db(deadline: impl Fn(usize) -> u64 + Sync) -> Db {
    let db = Db::new(KeyHasher::new());
    thread::scope(|scope| {
        for t in 0..2 {
            let (db, deadline) = (&db, &deadline);
            scope.spawn(move || {
                for i in (t..KEYS).step_by(2) {
                    let key = format!("key:{i:012}");
                    let (mut shard, hash) = db.lock(key.as_bytes());
                    let value = Value::Str(VALUE.to_vec());
                    shard.set(hash, key.as_bytes(), value, Some(deadline(i)), T0);
                }
            });
        }
    });
    assert_eq!(db.counts(), (KEYS, KEYS));
    db
}

/// Deadlines at or before `T`, spread over `KEYS` ms in a permuted order.
fn due_by_t(i: usize) -> u64 {
    T - (i * SPREAD % KEYS) as u64
}

fn drain(c: &mut Criterion) {
    let mut group = c.benchmark_group("expiry");
    // Each iteration takes about a second on the 2-core reference machine, plus as much again
    // for the untimed build: ten samples of one iteration (more on a faster machine; the
    // builds keep the wall-clock time near twice the measurement time either way).
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(KEYS as u64));
    group.bench_function("drain_1m", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let db = build_db(due_by_t);
                let start = Instant::now();
                let mut expired = 0;
                loop {
                    let result = db.sweep_expired(black_box(T + 1), BUDGET);
                    expired += result.expired;
                    if !result.more_due {
                        break;
                    }
                }
                elapsed += start.elapsed();
                assert_eq!(expired, KEYS);
                assert!(db.is_empty());
            }
            elapsed
        });
    });
    group.finish();
}

fn nothing_due(c: &mut Criterion) {
    let mut group = c.benchmark_group("expiry/nothing_due");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(SHARDS as u64));

    let empty = Db::new(KeyHasher::new());
    group.bench_function("empty_db", |b| {
        b.iter(|| black_box(empty.sweep_expired(black_box(T), BUDGET)));
    });

    // Deadlines after `T`: every heap is full and none is due.
    let full = build_db(|i| T + 1 + (i * SPREAD % KEYS) as u64);
    group.bench_function("1m_keys_with_future_ttls", |b| {
        b.iter(|| black_box(full.sweep_expired(black_box(T), BUDGET)));
    });
    assert_eq!(full.len(), KEYS);
    group.finish();
}

criterion_group!(benches, drain, nothing_due);
criterion_main!(benches);
