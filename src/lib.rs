//! Root package of the kvstore workspace: it exists to own the end-to-end tests in `tests/` and the benchmarks in `benches/`.
