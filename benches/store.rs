//! In-process store micro-benchmarks: GET, SET, SET with TTL, INCR and DEL on a database of
//! one million keys (`key:000000123456`, 32-byte values), on one thread and on two, next to a
//! single `std::sync::Mutex<HashMap<Vec<u8>, Vec<u8>>>` doing the same operations.
//!
//! Why: the issue sets targets for the store alone (GET under 60 ns single-threaded, two
//! threads at least 1.7x one) and the sharded design is only worth its complexity if it beats
//! one big lock when threads contend. The baseline shows what that lock costs.
//!
//! What one operation includes, as the command implementations do it (`cmd/string.rs`,
//! `cmd/keys.rs`): hashing the key and locking its shard ([`Db::lock`]; DEL goes through
//! [`Db::lock_keys`] as the DEL command does), the lookup with passive-expiry check, and:
//! - GET: copying the value into a reused output buffer (the reply buffer) under the lock;
//! - SET: the existence lookup SET makes for its NX/XX/GET options, then `Shard::set` with a
//!   freshly allocated copy of the value (the argument bytes belong to the read buffer);
//! - SET with TTL: the same with a deadline one hour ahead, on a database whose keys all carry
//!   TTLs already, so each SET replaces a deadline with a later one (which, since session 5,
//!   pushes nothing onto the shard's heap: the key's earlier entry is re-armed when it comes
//!   due). The baseline has no TTLs, so it has no such case;
//! - INCR: [`incr_by`], the server's own function (parse, add, format in place);
//! - MGET (`store/mget10`): ten keys (the operation's key with its last digit 0..9) under
//!   read guards of their shards, each value copied into the reply buffer; next to it the
//!   same under write locks, as MGET ran before session 7;
//! - MSET (`store/mset10`): the same ten keys set under write locks of their shards;
//! - DEL: removing the key and dropping its entry. Deleted keys are put back between chunks
//!   of 128K operations, outside the timed region, so every DEL finds its key. `del/kvstore` puts them back on the thread that deleted them, so each
//!   thread frees values it allocated itself; `del/kvstore_crossed/2t` has each thread put
//!   back the other's, so every free returns memory to the other thread's arena.
//!
//! Not included: RESP decoding and encoding (see `codec.rs`) and argument parsing.
//!
//! Keys are visited with a large prime stride over the key space, so consecutive operations
//! touch unrelated cache lines, as independent clients would; each thread keeps its position
//! between samples so a sample never re-reads what the previous one left in cache. With a
//! million keys nearly every operation then waits on several dependent cache misses (bucket,
//! node, key bytes, value), so these numbers are mostly memory latency. `store/get_hot` runs
//! the same GETs over 1024 keys of the same database, whose working set stays in cache: that
//! is mostly the cost of the code path, plus TLB misses (the hot keys still sit on pages
//! spread over a large heap). `store/get_small_db` does the same on a database of only 1024
//! keys: the floor, with nothing but the code path left. Formatting the key costs a few ns
//! per operation; `store/harness` measures that loop alone so it can be subtracted.
//!
//! Two threads split each sample's operations and start together at a barrier; the time is
//! the wall-clock time until both finish, so the reported time is the amortised time per
//! operation, and criterion's element rate is operations per second across both threads.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use kvserver::cmd::parse_i64;
use kvserver::cmd::string::incr_by;
use kvserver::store::{Db, KeyHasher, Lookup, Value};
use protocol::IntText;

/// Keys in each database.
const KEYS: usize = 1_000_000;
/// Bytes per value.
const VALUE: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
/// Step between the keys one thread visits: a prime, hence coprime with `KEYS`, so a thread
/// visits every key once per `KEYS` operations.
const STRIDE: usize = 611_953;
/// The machine has two cores.
const THREADS: [usize; 2] = [1, 2];
/// "Now" at the start of a run (Unix ms, 2023-11-14).
const T0: u64 = 1_700_000_000_000;
/// Operations per simulated millisecond: the clock the store sees advances at about the
/// rate it would if each operation took 60 ns.
const OPS_PER_MS: u64 = 16_384;
/// TTL given by SET with TTL (`PX 3600000`).
const TTL_MS: u64 = 3_600_000;
/// Keys of the `get_hot` working set: few enough that their table nodes, keys and values
/// stay in cache, so the time is the code path's rather than DRAM latency's.
const HOT_KEYS: usize = 1024;
/// DEL deletes this many keys between refills.
const DEL_CHUNK: u64 = 128 * 1024;

/// `key:` and 12 decimal digits, rewritten in place for each operation.
struct KeyBuf([u8; 16]);

impl KeyBuf {
    fn new() -> Self {
        KeyBuf(*b"key:000000000000")
    }

    /// Writes index `i` (below 10^6, so the six leading digits stay `0`), two digits at a
    /// time.
    #[inline]
    fn set(&mut self, i: usize) -> &[u8] {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let pair = |n: usize| [PAIRS[2 * n], PAIRS[2 * n + 1]];
        let [a, b] = pair(i / 10_000 % 100);
        let [c, d] = pair(i / 100 % 100);
        let [e, f] = pair(i % 100);
        self.0[10..].copy_from_slice(&[a, b, c, d, e, f]);
        &self.0
    }
}

const _: () = assert!(KEYS <= 1_000_000, "KeyBuf::set writes six digits");

/// Where one thread is in the key sequence (over keys `0..span`) and in (simulated) time;
/// kept across samples.
#[derive(Clone, Copy)]
struct Cursor {
    index: usize,
    seq: u64,
    span: usize,
    step: usize,
}

impl Cursor {
    /// Cursors for `threads` threads over keys `0..span`, spaced evenly along the stride
    /// sequence so that their windows never overlap within a DEL chunk.
    fn spread(threads: usize, span: usize) -> Vec<Cursor> {
        let step = STRIDE % span;
        (0..threads)
            .map(|t| Cursor {
                index: (t * (span / threads)) * step % span,
                seq: 0,
                span,
                step,
            })
            .collect()
    }

    /// The current key index, then steps to the next one.
    #[inline]
    fn advance(&mut self) -> (usize, u64) {
        let (index, seq) = (self.index, self.seq);
        self.index += self.step;
        if self.index >= self.span {
            self.index -= self.span;
        }
        self.seq += 1;
        (index, seq)
    }
}

/// The store's clock at operation number `seq` of a thread.
#[inline]
fn now_at(seq: u64) -> u64 {
    T0 + seq / OPS_PER_MS
}

/// One operation: the key, the store's `now`, and a reused output buffer (the reply buffer).
/// Returns whether it found / changed what it should (counted, and checked by the caller).
trait Op: Fn(&[u8], u64, &mut Vec<u8>) -> bool + Sync {}
impl<F: Fn(&[u8], u64, &mut Vec<u8>) -> bool + Sync> Op for F {}

/// Runs `ops` operations from `cursor` on the current thread; returns how many succeeded.
fn worker(cursor: &mut Cursor, ops: u64, op: &impl Op) -> u64 {
    // A local copy: the threads' cursors share a cache line in the caller's slice, and
    // writing them on every operation would make the harness itself bounce that line.
    let mut local = *cursor;
    let mut key = KeyBuf::new();
    let mut out = Vec::with_capacity(1024);
    let mut ok = 0;
    for _ in 0..ops {
        let (index, seq) = local.advance();
        let key = black_box(key.set(index));
        ok += u64::from(op(key, now_at(seq), &mut out));
    }
    *cursor = local;
    ok
}

/// Runs `total` operations split across one thread per cursor (the calling thread alone when
/// there is one) and returns the wall-clock time and how many operations succeeded.
fn run(cursors: &mut [Cursor], total: u64, op: &impl Op) -> (Duration, u64) {
    if let [cursor] = cursors {
        let start = Instant::now();
        let ok = worker(cursor, total, op);
        return (start.elapsed(), ok);
    }
    let threads = cursors.len() as u64;
    let barrier = Barrier::new(cursors.len() + 1);
    thread::scope(|scope| {
        let handles: Vec<_> = cursors
            .iter_mut()
            .enumerate()
            .map(|(t, cursor)| {
                let share = total / threads + u64::from((t as u64) < total % threads);
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    worker(cursor, share, op)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let ok = handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .sum();
        (start.elapsed(), ok)
    })
}

/// Registers `name/{1t,2t}`: `op` on all keys, timed with `iter_custom`, checking every
/// operation succeeded.
fn bench_threads(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, op: &impl Op) {
    bench_threads_over(group, name, KEYS, op);
}

/// [`bench_threads`] on keys `0..span` only.
fn bench_threads_over(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    span: usize,
    op: &impl Op,
) {
    for threads in THREADS {
        let mut cursors = Cursor::spread(threads, span);
        group.bench_function(format!("{name}/{threads}t"), |b| {
            b.iter_custom(|iters| {
                let (elapsed, ok) = run(&mut cursors, iters, op);
                assert_eq!(ok, iters, "every operation must hit");
                elapsed
            });
        });
    }
}

fn configure<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    group
}

// ---------------------------------------------------------------------------------------------
// Building the databases (once per group, not timed).

/// A database of `keys` keys, `value(i)` under key `i`, with `deadline(i)`; built by two
/// threads to halve the wait.
fn build_db(
    keys: usize,
    value: impl Fn(usize) -> Vec<u8> + Sync,
    deadline: impl Fn(usize) -> Option<u64> + Sync,
) -> Db {
    let db = Db::new(KeyHasher::new());
    thread::scope(|scope| {
        for t in 0..2 {
            let (db, value, deadline) = (&db, &value, &deadline);
            scope.spawn(move || {
                let mut key = KeyBuf::new();
                for i in (t..keys).step_by(2) {
                    let key = key.set(i);
                    let (mut shard, hash) = db.lock(key);
                    shard.set(hash, key, Value::Str(value(i)), deadline(i), T0);
                }
            });
        }
    });
    assert_eq!(db.len(), keys);
    db
}

type Baseline = Mutex<HashMap<Vec<u8>, Vec<u8>>>;

fn build_baseline(keys: usize, value: impl Fn(usize) -> Vec<u8>) -> Baseline {
    let mut map = HashMap::new();
    let mut key = KeyBuf::new();
    for i in 0..keys {
        map.insert(key.set(i).to_vec(), value(i));
    }
    Mutex::new(map)
}

fn lock(map: &Baseline) -> MutexGuard<'_, HashMap<Vec<u8>, Vec<u8>>> {
    map.lock().expect("baseline lock poisoned")
}

// ---------------------------------------------------------------------------------------------
// The operations.

/// GET: copy the value into the reply buffer under the shard's read lock, as
/// `cmd::string::get`.
fn store_get(db: &Db) -> impl Op + '_ {
    move |key, now, out| {
        let found = db.with_live(key, now, |entry| match entry {
            Some(entry) => {
                let Ok(value) = entry.value.as_string() else {
                    return false;
                };
                out.clear();
                out.extend_from_slice(value);
                true
            }
            None => false,
        });
        black_box(&out);
        found
    }
}

fn baseline_get(map: &Baseline) -> impl Op + '_ {
    move |key, _now, out| {
        let map = lock(map);
        let found = match map.get(key) {
            Some(value) => {
                out.clear();
                out.extend_from_slice(value);
                true
            }
            None => false,
        };
        drop(map);
        black_box(&out);
        found
    }
}

/// Keys per MGET.
const MGET_KEYS: usize = 10;

/// The keys of one MGET: `key` with its last digit replaced by 0..9 (ten keys, spread over
/// the shards by their hashes).
fn mget_keys(key: &[u8]) -> [[u8; 16]; MGET_KEYS] {
    let mut keys = [[0u8; 16]; MGET_KEYS];
    for (digit, out) in keys.iter_mut().enumerate() {
        out.copy_from_slice(key);
        out[15] = b'0' + digit as u8;
    }
    keys
}

/// MGET of ten keys as `cmd::string::mget` runs it: read guards on their shards, each value
/// copied into the reply buffer.
fn store_mget(db: &Db) -> impl Op + '_ {
    move |key, now, out| {
        let keys = mget_keys(key);
        let read = db.read_keys(keys.iter().map(|k| &k[..]));
        out.clear();
        let mut found = 0;
        for lookup in read.lookups(keys.iter().map(|k| &k[..]), now) {
            if let Lookup::Live(entry) = lookup {
                let Ok(value) = entry.value.as_string() else {
                    continue;
                };
                out.extend_from_slice(value);
                found += 1;
            }
        }
        drop(read);
        black_box(&out);
        found == MGET_KEYS
    }
}

/// The same MGET under write locks of its shards ([`Db::lock_keys`]), as MGET ran before
/// session 7: the contrast shows what sharing the shard locks buys.
fn store_mget_exclusive(db: &Db) -> impl Op + '_ {
    move |key, now, out| {
        let keys = mget_keys(key);
        let mut locked = db.lock_keys(keys.iter().map(|k| &k[..]));
        out.clear();
        let mut found = 0;
        for key in &keys {
            let entry = locked
                .shard(key)
                .and_then(|(shard, hash)| shard.get_read(hash, key, now));
            if let Some(entry) = entry {
                let Ok(value) = entry.value.as_string() else {
                    continue;
                };
                out.extend_from_slice(value);
                found += 1;
            }
        }
        drop(locked);
        black_box(&out);
        found == MGET_KEYS
    }
}

/// MSET of ten keys as `cmd::string::mset` runs it: write locks on their shards, the keys'
/// entries prefetched, each value copied.
fn store_mset(db: &Db) -> impl Op + '_ {
    move |key, now, _out| {
        let keys = mget_keys(key);
        let mut locked = db.lock_keys(keys.iter().map(|k| &k[..]));
        locked.prefetch_entries(keys.iter().map(|k| &k[..]));
        for key in &keys {
            if let Some((shard, hash)) = locked.shard(key) {
                shard.set(hash, key, Value::Str(black_box(&VALUE).to_vec()), None, now);
            }
        }
        true
    }
}

/// SET key value [PX ttl]: the lookup `cmd::string::set` makes for its options, then the
/// write of a fresh copy of the value.
fn store_set(db: &Db, ttl: Option<u64>) -> impl Op + '_ {
    move |key, now, _out| {
        let value = black_box(&VALUE);
        let deadline = ttl.map(|ttl| now + ttl);
        let (mut shard, hash) = db.lock(key);
        let existed = shard.get_mut(hash, key, now).is_some();
        shard.set(hash, key, Value::Str(value.to_vec()), deadline, now);
        black_box(existed);
        true
    }
}

fn baseline_set(map: &Baseline) -> impl Op + '_ {
    move |key, _now, _out| {
        let value = black_box(&VALUE);
        let mut map = lock(map);
        match map.get_mut(key) {
            Some(slot) => *slot = value.to_vec(),
            None => {
                map.insert(key.to_vec(), value.to_vec());
            }
        }
        true
    }
}

fn store_incr(db: &Db) -> impl Op + '_ {
    move |key, now, _out| black_box(incr_by(db, key, 1, now)).is_ok()
}

/// The same steps as `incr_by`: parse, checked add, format in place.
fn baseline_incr(map: &Baseline) -> impl Op + '_ {
    move |key, _now, _out| {
        let mut map = lock(map);
        let result = match map.get_mut(key) {
            Some(current) => {
                let new = parse_i64(current).and_then(|n| n.checked_add(1));
                if let Some(n) = new {
                    current.clear();
                    current.extend_from_slice(IntText::new(n).as_bytes());
                }
                new
            }
            None => {
                map.insert(key.to_vec(), IntText::new(1).as_bytes().to_vec());
                Some(1)
            }
        };
        black_box(result).is_some()
    }
}

/// DEL key, through the multi-key locking the DEL command uses.
fn store_del(db: &Db) -> impl Op + '_ {
    move |key, now, _out| {
        let mut locked = db.lock_keys(std::iter::once(key));
        let removed = locked
            .shard(key)
            .is_some_and(|(shard, hash)| shard.delete(hash, key, now));
        drop(locked);
        black_box(removed)
    }
}

fn baseline_del(map: &Baseline) -> impl Op + '_ {
    move |key, _now, _out| black_box(lock(map).remove(key)).is_some()
}

/// Which thread puts back the keys a DEL chunk deleted, and so which thread allocated the
/// values the next chunk frees.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refill {
    /// Each thread rewrites the keys it deleted: it frees what it allocated (clients deleting
    /// keys written on their own connection thread).
    Own,
    /// Each thread rewrites the keys the next thread deleted: every value is freed by a
    /// thread other than the one that allocated it (keys written through another connection
    /// thread), which sends the memory back to the allocating thread's arena.
    Crossed,
}

/// Registers `name/{1t,2t}` for DEL (with [`Refill::Crossed`], `name/2t` only): chunks of at
/// most `DEL_CHUNK` deletions, timed, each followed by an untimed `refill` of the deleted keys
/// on the same long-lived threads.
fn bench_del(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    op: &impl Op,
    refill: &impl Op,
    mode: Refill,
) {
    for threads in THREADS {
        if mode == Refill::Crossed && threads == 1 {
            continue;
        }
        let mut cursors = Cursor::spread(threads, KEYS);
        group.bench_function(format!("{name}/{threads}t"), |b| {
            b.iter_custom(|iters| run_del(&mut cursors, iters, op, refill, mode));
        });
    }
}

/// Runs `total` deletions in chunks, one long-lived thread per cursor; returns the time spent
/// deleting (from all threads starting a chunk together to the last one finishing it).
fn run_del(
    cursors: &mut [Cursor],
    total: u64,
    op: &impl Op,
    refill: &impl Op,
    mode: Refill,
) -> Duration {
    let threads = cursors.len();
    // Deletions of thread `t` in a chunk of `chunk`.
    let share = |chunk: u64, t: usize| {
        chunk / threads as u64 + u64::from((t as u64) < chunk % threads as u64)
    };
    // Each thread's cursor at the start of the current chunk, for the refills.
    let starts: Vec<Mutex<Cursor>> = cursors.iter().map(|c| Mutex::new(*c)).collect();
    // Start of a chunk, its end, and the end of its refill.
    let barrier = Barrier::new(threads + 1);
    let chunks = || {
        let mut left = total;
        std::iter::from_fn(move || {
            let chunk = left.min(DEL_CHUNK);
            left -= chunk;
            (chunk > 0).then_some(chunk)
        })
    };
    thread::scope(|scope| {
        for (t, cursor) in cursors.iter_mut().enumerate() {
            let (barrier, starts, chunks) = (&barrier, &starts, &chunks);
            scope.spawn(move || {
                for chunk in chunks() {
                    *starts[t].lock().expect("bench lock") = *cursor;
                    barrier.wait();
                    let deleted = worker(cursor, share(chunk, t), op);
                    assert_eq!(deleted, share(chunk, t), "every DEL must find its key");
                    barrier.wait();
                    let source = match mode {
                        Refill::Own => t,
                        Refill::Crossed => (t + 1) % threads,
                    };
                    let mut replay = *starts[source].lock().expect("bench lock");
                    let count = share(chunk, source);
                    assert_eq!(worker(&mut replay, count, refill), count);
                    barrier.wait();
                }
            });
        }
        let mut elapsed = Duration::ZERO;
        for _ in chunks() {
            barrier.wait();
            let start = Instant::now();
            barrier.wait();
            elapsed += start.elapsed();
            barrier.wait();
        }
        elapsed
    })
}

// ---------------------------------------------------------------------------------------------
// Groups.

/// The loop, key formatting and thread start-up without any store operation.
fn harness(c: &mut Criterion) {
    let mut group = configure(c, "store/harness");
    bench_threads(
        &mut group,
        "keygen_only",
        &|key: &[u8], now, _out: &mut Vec<u8>| {
            black_box((key, now));
            true
        },
    );
    group.finish();
}

/// GET, SET and DEL share one database of 32-byte values (SET writes values of the same
/// size; DEL puts back what it deleted) and one baseline map.
fn plain(c: &mut Criterion) {
    let db = build_db(KEYS, |_| VALUE.to_vec(), |_| None);
    let map = build_baseline(KEYS, |_| VALUE.to_vec());

    let mut group = configure(c, "store/get");
    bench_threads(&mut group, "kvstore", &store_get(&db));
    bench_threads(&mut group, "mutex_hashmap", &baseline_get(&map));
    group.finish();

    let mut group = configure(c, "store/get_hot");
    bench_threads_over(&mut group, "kvstore", HOT_KEYS, &store_get(&db));
    bench_threads_over(&mut group, "mutex_hashmap", HOT_KEYS, &baseline_get(&map));
    group.finish();

    let small_db = build_db(HOT_KEYS, |_| VALUE.to_vec(), |_| None);
    let small_map = build_baseline(HOT_KEYS, |_| VALUE.to_vec());
    let mut group = configure(c, "store/get_small_db");
    bench_threads_over(&mut group, "kvstore", HOT_KEYS, &store_get(&small_db));
    bench_threads_over(
        &mut group,
        "mutex_hashmap",
        HOT_KEYS,
        &baseline_get(&small_map),
    );
    group.finish();
    drop((small_db, small_map));

    let mut group = configure(c, "store/mget10");
    bench_threads(&mut group, "kvstore", &store_mget(&db));
    bench_threads(&mut group, "exclusive_locks", &store_mget_exclusive(&db));
    group.finish();

    let mut group = configure(c, "store/mset10");
    bench_threads(&mut group, "kvstore", &store_mset(&db));
    group.finish();

    let mut group = configure(c, "store/set");
    bench_threads(&mut group, "kvstore", &store_set(&db, None));
    bench_threads(&mut group, "mutex_hashmap", &baseline_set(&map));
    group.finish();

    let mut group = configure(c, "store/del");
    let (del, refill) = (store_del(&db), store_set(&db, None));
    bench_del(&mut group, "kvstore", &del, &refill, Refill::Own);
    bench_del(
        &mut group,
        "kvstore_crossed",
        &del,
        &refill,
        Refill::Crossed,
    );
    let (del, refill) = (baseline_del(&map), baseline_set(&map));
    bench_del(&mut group, "mutex_hashmap", &del, &refill, Refill::Own);
    group.finish();
    assert_eq!(db.len(), KEYS);
    assert_eq!(lock(&map).len(), KEYS);
}

/// SET with TTL on a database whose keys all have TTLs (deadlines spread over a second).
fn set_with_ttl(c: &mut Criterion) {
    let db = build_db(
        KEYS,
        |_| VALUE.to_vec(),
        |i| Some(T0 + TTL_MS / 2 + (i % 1000) as u64),
    );
    let mut group = configure(c, "store/set_px");
    bench_threads(&mut group, "kvstore", &store_set(&db, Some(TTL_MS)));
    group.finish();
}

/// INCR on counters (the values must parse as integers).
fn incr(c: &mut Criterion) {
    let counter = |i: usize| IntText::new(i as i64).as_bytes().to_vec();
    let db = build_db(KEYS, counter, |_| None);
    let map = build_baseline(KEYS, counter);
    let mut group = configure(c, "store/incr");
    bench_threads(&mut group, "kvstore", &store_incr(&db));
    bench_threads(&mut group, "mutex_hashmap", &baseline_incr(&map));
    group.finish();
}

criterion_group!(benches, harness, plain, set_with_ttl, incr);
criterion_main!(benches);
