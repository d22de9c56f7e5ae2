//! Root package of the kvstore workspace: it exists to own the benchmarks in `benches/`. The
//! end-to-end tests in `tests/` belong to the server package (see server/Cargo.toml), so that
//! they run the `kvserver` binary cargo built for them.
