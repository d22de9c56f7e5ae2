//! Criterion benchmarks of the hash structure (`kvserver::store::value::hash`), in-process:
//!
//! - `hashes/hset` and `hashes/hget`: one field written (an update in place, alternating with
//!   a new field and its removal) or read, on a 10-field hash in each form (`listpack`, the
//!   compact buffer; `hashtable`, the segmented table, forced with a threshold of 0) and on a
//!   100k-field table.
//! - `hashes/hgetall`: every pair of a 1,000-field table (and of a 100-field compact hash)
//!   framed as RESP bulk strings into a reused buffer, as HGETALL's reply.
//! - `hashes/memory` (printed, not timed): allocator bytes per key and per field of 100k keys
//!   each holding a 10-field hash, in a real database (keys, table nodes and values), in each
//!   form; and per field of one 1M-field hash. The allocator is jemalloc, whose count
//!   includes size-class rounding, as Redis's `used_memory` does.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use kvserver::store::value::Limits;
use kvserver::store::{Db, Hash, KeyHasher, Value};
use protocol::IntText;

/// Redis's default thresholds, and thresholds that force the table form.
const COMPACT: Limits = Limits::DEFAULT;
const TABLE: Limits = Limits {
    hash_max_listpack_entries: 0,
    ..Limits::DEFAULT
};

fn configure<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    group
}

fn field(i: usize) -> Vec<u8> {
    format!("field:{i}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("{i:08}").into_bytes()
}

/// A hash of `n` fields built under `limits`.
fn hash_of(n: usize, limits: &Limits) -> Hash {
    let mut hash = Hash::new();
    for i in 0..n {
        hash.set(&field(i), &value(i), limits);
    }
    hash
}

/// The hashes the per-field benches run on: name, hash, thresholds to write under.
fn subjects() -> Vec<(&'static str, Hash, Limits)> {
    vec![
        ("listpack_10", hash_of(10, &COMPACT), COMPACT),
        ("hashtable_10", hash_of(10, &TABLE), TABLE),
        ("hashtable_100k", hash_of(100_000, &TABLE), TABLE),
    ]
}

fn bench_hset(c: &mut Criterion) {
    let mut group = configure(c, "hashes/hset");
    for (name, mut hash, limits) in subjects() {
        let len = hash.len();
        let fields: Vec<Vec<u8>> = (0..len.min(1024)).map(field).collect();
        let values: Vec<Vec<u8>> = (0..7).map(value).collect();
        group.bench_function(format!("{name}/update"), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i += 1;
                let f = &fields[i % fields.len()];
                black_box(hash.set(f, &values[i % values.len()], &limits))
            })
        });
        // A field added and removed again (the size stays put).
        group.bench_function(format!("{name}/add_remove"), |b| {
            let extra = b"field:new";
            b.iter(|| {
                black_box(hash.set(extra, b"12345678", &limits));
                black_box(hash.remove(extra))
            })
        });
        assert_eq!(hash.len(), len);
    }
    group.finish();
}

fn bench_hget(c: &mut Criterion) {
    let mut group = configure(c, "hashes/hget");
    for (name, hash, _) in subjects() {
        let fields: Vec<Vec<u8>> = (0..hash.len().min(1024)).map(field).collect();
        group.bench_function(format!("{name}/hit"), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i += 1;
                black_box(hash.get(&fields[i % fields.len()]))
            })
        });
        group.bench_function(format!("{name}/miss"), |b| {
            b.iter(|| black_box(hash.get(b"field:absent")))
        });
    }
    group.finish();
}

/// Appends RESP bulk `bytes` to `out`, as a reply buffer does.
fn put_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(IntText::new(bytes.len() as i64).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn bench_hgetall(c: &mut Criterion) {
    let mut group = configure(c, "hashes/hgetall");
    for (name, hash) in [
        ("hashtable_1k", hash_of(1000, &TABLE)),
        ("listpack_100", hash_of(100, &COMPACT)),
    ] {
        group.throughput(Throughput::Elements(hash.len() as u64));
        let mut out = Vec::with_capacity(64 * 1024);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for (field, value) in hash.iter() {
                    put_bulk(&mut out, field);
                    put_bulk(&mut out, value);
                }
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// Bytes the allocator holds now.
fn allocated() -> u64 {
    kvserver::memory::allocated_bytes()
}

/// Prints bytes per key and per field of 100k 10-field hashes in a database, in each form,
/// and per field of one 1M-field table.
fn report_memory(_c: &mut Criterion) {
    const KEYS: usize = 100_000;
    const FIELDS: usize = 10;
    for (name, limits) in [("listpack", COMPACT), ("hashtable", TABLE)] {
        let before = allocated();
        let db = Db::new(KeyHasher::new());
        for k in 0..KEYS {
            let key = format!("key:{k:012}");
            let mut hash = Hash::new();
            for f in 0..FIELDS {
                hash.set(&field(f), &value(k), &limits);
            }
            let (mut shard, h) = db.lock(key.as_bytes());
            shard.set(h, key.as_bytes(), Value::hash(hash), None, 0);
        }
        let used = allocated().saturating_sub(before);
        println!(
            "hashes/memory/{KEYS}x{FIELDS}_{name}: {:.1} bytes per key, {:.1} per field \
             (keys of 16 bytes, fields of 7, values of 8)",
            used as f64 / KEYS as f64,
            used as f64 / (KEYS * FIELDS) as f64,
        );
        drop(db);
    }
    let before = allocated();
    let big = hash_of(1_000_000, &TABLE);
    let used = allocated().saturating_sub(before);
    println!(
        "hashes/memory/1M_fields_hashtable: {:.1} bytes per field",
        used as f64 / big.len() as f64
    );
}

criterion_group!(
    benches,
    report_memory,
    bench_hset,
    bench_hget,
    bench_hgetall
);
criterion_main!(benches);
