//! Criterion benchmarks of the list structure (`store::value::list`), in process, without
//! the protocol or locking:
//!
//! - `lists/queue/{lpush_rpop,rpush_lpop}`: one push at one end and one pop at the other of a
//!   100,000-element list (chunked), the steady state of a queue;
//! - `lists/push_pop/compact`: the same on a 10-element list (one compact pack);
//! - `lists/range100`: reading the first 100 elements (LRANGE 0 99) of that list;
//! - `lists/index_middle_1m`: the element in the middle of a 1,000,000-element list
//!   (LINDEX 500000): the walk over per-pack counts, then within the pack;
//! - `lists/set_middle_1m`: LSET at the same place (rewrites one pack).
//!
//! Before the timed runs it prints the heap bytes per element of a 1,000,000-element list of
//! `element:N` strings, of the numbers 0..1M (stored as integers), and per 10-element list (jemalloc's `stats.allocated`), the figures
//! the memory targets are about.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kvserver::memory::allocated_bytes;
use kvserver::store::value::list::{End, Fill};
use kvserver::store::value::List;

fn element(i: usize) -> Vec<u8> {
    format!("element:{i}").into_bytes()
}

/// Heap bytes taken by what `build` returns, measured around it.
fn heap_of<T>(build: impl FnOnce() -> T) -> (T, u64) {
    let before = allocated_bytes();
    let value = build();
    let after = allocated_bytes();
    (value, after.saturating_sub(before))
}

fn report_memory() {
    let (big, bytes) = heap_of(|| Box::new((0..1_000_000).map(element).collect::<List>()));
    println!(
        "lists/memory: 1M-element list: {:.2} bytes per element ({} packs)",
        bytes as f64 / 1e6,
        big.chunk_count()
    );
    drop(big);
    let (numbers, bytes) =
        heap_of(|| Box::new((0..1_000_000).map(|i| i.to_string()).collect::<List>()));
    println!(
        "lists/memory: 1M-element list of the numbers 0..1M: {:.2} bytes per element",
        bytes as f64 / 1e6
    );
    drop(numbers);
    let (small, bytes) = heap_of(|| {
        (0..100_000)
            .map(|_| Box::new((0..10).map(element).collect::<List>()))
            .collect::<Vec<_>>()
    });
    // The Vec of boxes takes 8 bytes per list.
    println!(
        "lists/memory: 10-element lists: {:.1} bytes per list",
        bytes as f64 / 1e5 - 8.0
    );
    drop(small);
}

fn bench_lists(c: &mut Criterion) {
    report_memory();
    let mut group = c.benchmark_group("lists");
    group.throughput(Throughput::Elements(1));
    let fill = Fill::DEFAULT;
    let mut list: List = (0..100_000).map(element).collect();
    // A queue either way: packs fill at one end and drain at the other.
    for (name, push, pop) in [
        ("lpush_rpop", End::Head, End::Tail),
        ("rpush_lpop", End::Tail, End::Head),
    ] {
        group.bench_function(format!("queue/{name}"), |b| {
            b.iter(|| {
                list.push(push, black_box(b"value:12345"), fill);
                black_box(list.pop(pop, fill))
            })
        });
    }
    let mut small: List = (0..10).map(element).collect();
    group.bench_function("push_pop/compact", |b| {
        b.iter(|| {
            small.push(End::Head, black_box(b"value:12345"), fill);
            black_box(small.pop(End::Tail, fill))
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("range100", |b| {
        b.iter(|| list.range(0, 100).map(black_box).count())
    });
    group.throughput(Throughput::Elements(1));
    let mut big: List = (0..1_000_000).map(element).collect();
    group.bench_function("index_middle_1m", |b| {
        b.iter(|| big.get(black_box(500_000)).map(black_box).is_some())
    });
    group.bench_function("set_middle_1m", |b| {
        b.iter(|| big.set(black_box(500_000), b"element:500000", fill))
    });
    group.finish();
}

criterion_group!(benches, bench_lists);
criterion_main!(benches);
