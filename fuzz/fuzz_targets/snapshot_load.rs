//! The snapshot loader (the `dump.kvs` / AOF base reader and the store it fills) on
//! arbitrary files. Checks that no file makes it panic, overflow or allocate without bound
//! (libFuzzer's `-rss_limit_mb` and `-malloc_limit_mb` catch the last).
//!
//! The committed seeds are real snapshots written by the server: mutating them reaches
//! every value type's decoder, since entries are decoded before the checksum at the end of
//! the file is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A fixed "now" in 2023: seeds' entries with deadlines before it are dropped, the
    // others kept, so both paths run.
    let _ = kvserver::fuzzing::load_snapshot(data, 1_700_000_000_000);
});
