//! Criterion benchmarks of the sorted-set structure (issue 16): kvstore's big encoding
//! (sorted `Arc`'d chunks with a Fenwick tree of their lengths, plus a segmented member
//! index) against crossbeam-skiplist (a `SkipMap` ordered by (score, member) beside a
//! member-to-score `HashMap`, since a sorted set needs both), on ZADD, ZRANK and ZRANGE by
//! rank at 100k members, and the heap bytes per member of each (printed once, measured with
//! the allocator's statistics). Run: `cargo bench -p kvstore --bench zsets -- --quick`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_skiplist::SkipMap;
use kvserver::memory::allocated_bytes;
use kvserver::store::value::Score;
use kvserver::store::value::ZSet;
use kvserver::store::Limits;

const MEMBERS: u64 = 100_000;

/// A score that orders like the f64 (no NaN here).
#[derive(Clone, Copy, PartialEq)]
struct Ordered(f64);
impl Eq for Ordered {}
impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The skiplist candidate.
#[derive(Default)]
struct Skip {
    order: SkipMap<(Ordered, Vec<u8>), ()>,
    scores: HashMap<Vec<u8>, f64>,
}

impl Skip {
    fn add(&mut self, member: &[u8], score: f64) {
        if let Some(old) = self.scores.insert(member.to_vec(), score) {
            self.order.remove(&(Ordered(old), member.to_vec()));
        }
        self.order.insert((Ordered(score), member.to_vec()), ());
    }

    /// No rank support: a walk from the start.
    fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = *self.scores.get(member)?;
        let key = (Ordered(score), member.to_vec());
        Some(self.order.range(..key).count())
    }

    fn range(&self, start: usize, len: usize) -> usize {
        self.order.iter().skip(start).take(len).count()
    }
}

/// Member names in a scattered order with scattered scores.
fn member(i: u64) -> (Vec<u8>, f64) {
    let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (format!("member:{i}").into_bytes(), (mixed >> 40) as f64)
}

fn big_limits() -> Limits {
    Limits {
        zset_max_listpack_entries: 0,
        ..Limits::DEFAULT
    }
}

fn build_zset(n: u64) -> ZSet {
    let limits = big_limits();
    let mut zset = ZSet::new();
    for i in 0..n {
        let (m, s) = member(i);
        zset.add(
            &m,
            Score::new(s).unwrap_or(Score::new(0.0).unwrap()),
            &limits,
        );
    }
    zset
}

fn build_skip(n: u64) -> Skip {
    let mut skip = Skip::default();
    for i in 0..n {
        let (m, s) = member(i);
        skip.add(&m, s);
    }
    skip
}

/// Heap bytes per member of each candidate, printed once.
fn report_memory() {
    let before = allocated_bytes();
    let zset = build_zset(MEMBERS);
    let zset_bytes = allocated_bytes().saturating_sub(before);
    let before = allocated_bytes();
    let skip = build_skip(MEMBERS);
    let skip_bytes = allocated_bytes().saturating_sub(before);
    eprintln!(
        "bytes per member at {MEMBERS}: kvstore {:.1}, crossbeam-skiplist {:.1}",
        zset_bytes as f64 / MEMBERS as f64,
        skip_bytes as f64 / MEMBERS as f64
    );
    drop((zset, skip));
}

fn bench(c: &mut Criterion) {
    report_memory();
    let zset = build_zset(MEMBERS);
    let skip = build_skip(MEMBERS);
    let mut group = c.benchmark_group("zset_100k");
    group.sample_size(10);
    // ZADD: 1000 new members into a 100k set.
    group.bench_function("zadd_1000/kvstore", |b| {
        let mut z = build_zset(MEMBERS);
        let limits = big_limits();
        let mut next = MEMBERS;
        b.iter(|| {
            for _ in 0..1000 {
                let (m, s) = member(next);
                z.add(
                    &m,
                    Score::new(s).unwrap_or(Score::new(0.0).unwrap()),
                    &limits,
                );
                next += 1;
            }
        })
    });
    group.bench_function("zadd_1000/crossbeam", |b| {
        let mut skip = build_skip(MEMBERS);
        let mut next = MEMBERS;
        b.iter(|| {
            for _ in 0..1000 {
                let (m, s) = member(next);
                skip.add(&m, s);
                next += 1;
            }
        })
    });
    let probes: Vec<Vec<u8>> = (0..1000).map(|i| member(i * 97 % MEMBERS).0).collect();
    group.bench_function("zrank/kvstore", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(zset.rank(&probes[i]))
        })
    });
    group.bench_function("zrank/crossbeam", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(skip.rank(&probes[i]))
        })
    });
    group.bench_function("zrange_mid_10/kvstore", |b| {
        b.iter(|| black_box(zset.range(50_000, 50_010).len()))
    });
    group.bench_function("zrange_mid_10/crossbeam", |b| {
        b.iter(|| black_box(skip.range(50_000, 10)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
