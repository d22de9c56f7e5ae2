//! Criterion benchmarks of the lists structure (issue 16): filled in with the structure.

use criterion::{criterion_group, criterion_main, Criterion};

fn none(_c: &mut Criterion) {}

criterion_group!(benches, none);
criterion_main!(benches);
