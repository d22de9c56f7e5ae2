//! The wall clock, read in one place: the request path takes `now` once per command and
//! passes it down, so the keyspace itself never reads a clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current Unix time in milliseconds: the one clock the request path reads.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
