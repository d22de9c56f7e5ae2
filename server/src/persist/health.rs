//! The disk's verdict on writes: whether the server may accept a write now, given what the
//! append-only file and the last snapshot managed to make durable (Redis's `-MISCONF`).
//!
//! Three conditions refuse writes, checked on every write command with a few relaxed loads:
//! - the append-only file cannot be written, or an fsync of it failed and the log has not yet
//!   been re-established in fresh files ([`DiskHealth::set_aof_error`]);
//! - under `appendfsync everysec`, acknowledged writes have waited for their fsync longer
//!   than [`EVERYSEC_MAX_LAG_MS`] (a stalled disk): a crash now would lose more than the
//!   policy promises ([`DiskHealth::set_unsynced_since`]);
//! - the last snapshot failed, `stop-writes-on-bgsave-error` is on and save rules exist, as in
//!   Redis ([`DiskHealth::set_snapshot_refuses`]).
//!
//! Reads are never refused. PING is, as in Redis, so that a health check notices.

use std::borrow::Cow;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

/// Longest time an acknowledged write may wait for its fsync under `everysec` before further
/// writes are refused: Redis's own bound on what `everysec` may lose.
pub const EVERYSEC_MAX_LAG_MS: u64 = 2_000;

/// Redis's reply to writes while the last snapshot failed (`stop-writes-on-bgsave-error`).
pub const MISCONF_SNAPSHOT: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// The prefix of Redis's reply to writes while the append-only file cannot be written.
const MISCONF_AOF: &str = "MISCONF Errors writing to the AOF file: ";

/// Stand-in errno for "the log fell behind" (not an OS error).
const BEHIND: i32 = -1;

/// Whether the disk lets the server accept writes; shared by the persistence threads (which
/// set it) and dispatch (which reads it).
#[derive(Debug, Default)]
pub struct DiskHealth {
    /// OS error of the append-only file failure that refuses writes; 0 when the log is fine.
    aof_errno: AtomicI32,
    /// Unix milliseconds since when acknowledged writes wait for their fsync under
    /// `everysec`; 0 when none do (or under another policy).
    unsynced_since_ms: AtomicU64,
    /// The last snapshot failed and the configuration says to refuse writes for it.
    snapshot_refuses: AtomicBool,
}

impl DiskHealth {
    /// The error line to refuse a write with at `now_ms`, or `None` if writes are accepted.
    #[inline]
    pub fn write_refusal(&self, now_ms: u64) -> Option<Cow<'static, str>> {
        let errno = self.aof_errno.load(Ordering::Relaxed);
        let since = self.unsynced_since_ms.load(Ordering::Relaxed);
        let snapshot = self.snapshot_refuses.load(Ordering::Relaxed);
        if errno == 0 && since == 0 && !snapshot {
            return None;
        }
        if errno != 0 {
            return Some(Cow::Owned(format!("{MISCONF_AOF}{}", describe(errno))));
        }
        if since != 0 && now_ms.saturating_sub(since) > EVERYSEC_MAX_LAG_MS {
            return Some(Cow::Owned(format!("{MISCONF_AOF}{}", describe(BEHIND))));
        }
        snapshot.then_some(Cow::Borrowed(MISCONF_SNAPSHOT))
    }

    /// Refuses writes because the append-only file failed with `err`.
    pub fn set_aof_error(&self, err: &io::Error) {
        self.aof_errno
            .store(err.raw_os_error().unwrap_or(libc::EIO), Ordering::Relaxed);
    }

    /// The append-only file takes writes again.
    pub fn clear_aof_error(&self) {
        self.aof_errno.store(0, Ordering::Relaxed);
    }

    /// True while an append-only file failure refuses writes (INFO `aof_last_write_status`).
    pub fn aof_failing(&self) -> bool {
        self.aof_errno.load(Ordering::Relaxed) != 0
    }

    /// Records since when acknowledged writes wait for an fsync (`None`: none wait).
    pub fn set_unsynced_since(&self, since_ms: Option<u64>) {
        // 0 means "none", so a real time of 0 is stored as 1.
        let stored = since_ms.map_or(0, |ms| ms.max(1));
        self.unsynced_since_ms.store(stored, Ordering::Relaxed);
    }

    /// Since when acknowledged writes wait for an fsync, if they do.
    pub fn unsynced_since(&self) -> Option<u64> {
        let since = self.unsynced_since_ms.load(Ordering::Relaxed);
        (since != 0).then_some(since)
    }

    /// Refuses (or stops refusing) writes because of the last snapshot.
    pub fn set_snapshot_refuses(&self, refuses: bool) {
        self.snapshot_refuses.store(refuses, Ordering::Relaxed);
    }
}

/// `strerror` of `errno` as Redis prints it in MISCONF (without Rust's "(os error N)").
fn describe(errno: i32) -> String {
    if errno == BEHIND {
        return format!("fsync has not completed for more than {EVERYSEC_MAX_LAG_MS} ms");
    }
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_disk_refuses_nothing() {
        let health = DiskHealth::default();
        assert_eq!(health.write_refusal(1_000), None);
    }

    #[test]
    fn an_aof_error_refuses_with_redis_text_until_cleared() {
        let health = DiskHealth::default();
        health.set_aof_error(&io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(
            health.write_refusal(0).as_deref(),
            Some("MISCONF Errors writing to the AOF file: No space left on device")
        );
        assert!(health.aof_failing());
        health.clear_aof_error();
        assert_eq!(health.write_refusal(0), None);
    }

    #[test]
    fn writes_waiting_for_fsync_refuse_only_past_the_everysec_bound() {
        let health = DiskHealth::default();
        health.set_unsynced_since(Some(10_000));
        assert_eq!(health.write_refusal(10_000 + EVERYSEC_MAX_LAG_MS), None);
        let refusal = health.write_refusal(10_001 + EVERYSEC_MAX_LAG_MS);
        assert!(
            refusal.is_some_and(|text| text.starts_with("MISCONF Errors writing to the AOF file"))
        );
        health.set_unsynced_since(None);
        assert_eq!(health.write_refusal(u64::MAX), None);
    }

    #[test]
    fn a_failed_snapshot_refuses_with_redis_text() {
        let health = DiskHealth::default();
        health.set_snapshot_refuses(true);
        assert_eq!(health.write_refusal(0).as_deref(), Some(MISCONF_SNAPSHOT));
        health.set_snapshot_refuses(false);
        assert_eq!(health.write_refusal(0), None);
    }
}
