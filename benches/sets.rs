//! Set benchmarks (issue 16): the structure (`store::value::set`) and the intersection the
//! SINTER command runs (`cmd::set::intersection`), in process, without RESP or locking.
//!
//! - `sets/sadd`: adding new members one at a time to an intset (up to its 512 limit), a
//!   listpack (up to 128 short strings) and a hashtable growing to a million members (the
//!   sets are rebuilt between batches, outside the timed region except for their growth);
//! - `sets/sismember`: hits and misses on an intset of 512, a listpack of 128 and a
//!   hashtable of 100k members, visiting members in a scattered order;
//! - `sets/sinter`: the intersection of two 100k-member hashtables that share half their
//!   members (the "SINTER of two 100k sets"), and of a 100-member set with a 100k one
//!   (iterating the smaller, as SINTER does);
//! - bytes per member (printed, not timed): jemalloc's allocated bytes for 100k sets of 10
//!   integers, 100k sets of 10 short strings, and sets of a million members, each divided by
//!   the members stored, the value's 24 bytes in its table node included. For comparison,
//!   Redis 7.0.15's `used_memory` grew by 72 bytes per member for a million `member:%08d`
//!   strings and by 48 for a million integers (its key's overhead aside); a small set there
//!   is a 16-byte object plus its intset or listpack.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kvserver::cmd::set::intersection;
use kvserver::memory::allocated_bytes;
use kvserver::store::value::set::Set;
use kvserver::store::{Limits, Value};

const LIMITS: Limits = Limits::DEFAULT;

fn string_member(i: usize) -> Vec<u8> {
    format!("member:{i:08}").into_bytes()
}

fn int_member(i: usize) -> Vec<u8> {
    i.to_string().into_bytes()
}

/// A set of `members`, added under the default limits.
fn set_of(members: impl Iterator<Item = Vec<u8>>) -> Set {
    let mut set = Set::new();
    for member in members {
        set.add(member, &LIMITS);
    }
    set
}

/// Times adding `per_set` new members to fresh sets, `iters` adds in all.
fn time_adds(iters: u64, per_set: usize, members: &[Vec<u8>]) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(per_set);
        let mut set = Set::new();
        let start = Instant::now();
        for member in &members[..n] {
            black_box(set.add(member.as_slice(), &LIMITS));
        }
        total += start.elapsed();
        drop(set);
        left -= n;
    }
    total
}

fn sadd(c: &mut Criterion) {
    let mut group = c.benchmark_group("sets/sadd");
    group.throughput(Throughput::Elements(1));
    let ints: Vec<Vec<u8>> = (0..512).map(|i| int_member(i * 7919 % 100_000)).collect();
    group.bench_function("intset", |b| {
        b.iter_custom(|iters| time_adds(iters, 512, &ints))
    });
    let strings: Vec<Vec<u8>> = (0..128).map(string_member).collect();
    group.bench_function("listpack", |b| {
        b.iter_custom(|iters| time_adds(iters, 128, &strings))
    });
    let many: Vec<Vec<u8>> = (0..1_000_000).map(string_member).collect();
    group.bench_function("hashtable", |b| {
        b.iter_custom(|iters| time_adds(iters, 1_000_000, &many))
    });
    group.finish();
}

fn sismember(c: &mut Criterion) {
    let mut group = c.benchmark_group("sets/sismember");
    group.throughput(Throughput::Elements(1));
    let cases: [(&str, Set, Vec<Vec<u8>>); 3] = [
        (
            "intset_512",
            set_of((0..512).map(int_member)),
            (0..1024).map(int_member).collect(),
        ),
        (
            "listpack_128",
            set_of((0..128).map(string_member)),
            (0..256).map(string_member).collect(),
        ),
        (
            "hashtable_100k",
            set_of((0..100_000).map(string_member)),
            (0..200_000).map(string_member).collect(),
        ),
    ];
    for (name, set, probes) in &cases {
        // Half the probes are members (hits), half are not (misses); visited with a prime
        // stride so consecutive probes touch unrelated memory.
        let mut i = 0usize;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 7919) % probes.len();
                black_box(set.contains(&probes[i]))
            })
        });
    }
    group.finish();
}

fn sinter(c: &mut Criterion) {
    let mut group = c.benchmark_group("sets/sinter");
    let a = set_of((0..100_000).map(string_member));
    let b = set_of((50_000..150_000).map(string_member));
    let small = set_of((0..100).map(|i| string_member(i * 1000)));
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("two_100k", |bench| {
        bench.iter(|| black_box(intersection(&[Some(&a), Some(&b)]).len()))
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("100_with_100k", |bench| {
        bench.iter(|| black_box(intersection(&[Some(&a), Some(&small)]).len()))
    });
    group.finish();
}

/// Prints jemalloc's allocated bytes per member (and per set) for the memory targets of the
/// issue; not a timing.
fn bytes_per_member(_c: &mut Criterion) {
    // Each set as the store holds it: a `Value` (24 bytes, in the key's table node) boxing
    // the set's 24-byte header, which points at its buffer or segments. Counted: all three.
    let measure = |what: &str, members: usize, build: &dyn Fn() -> Vec<Value>| {
        let before = allocated_bytes();
        let sets = build();
        let after = allocated_bytes();
        let bytes = after.saturating_sub(before) as f64;
        println!(
            "sets/bytes_per_member/{what}: {:.1} bytes per member, {:.1} per set",
            bytes / members as f64,
            bytes / sets.len() as f64,
        );
        drop(black_box(sets));
    };
    measure("100k_sets_of_10_ints", 1_000_000, &|| {
        (0..100_000)
            .map(|k| Value::set(set_of((0..10).map(|i| int_member(k * 10 + i)))))
            .collect()
    });
    measure("100k_sets_of_10_strings", 1_000_000, &|| {
        (0..100_000)
            .map(|k| Value::set(set_of((0..10).map(|i| string_member(k * 10 + i)))))
            .collect()
    });
    measure("1M_strings", 1_000_000, &|| {
        vec![Value::set(set_of((0..1_000_000).map(string_member)))]
    });
    measure("1M_ints", 1_000_000, &|| {
        vec![Value::set(set_of((0..1_000_000).map(int_member)))]
    });
}

criterion_group!(benches, bytes_per_member, sadd, sismember, sinter);
criterion_main!(benches);
