//! The file-descriptor budget for `maxclients`: the open-files limit raised to fit it (as
//! Redis does), and the kernel's descriptor table grown to that size at start-up.
//!
//! Why grow the table up front: Linux grows a process's descriptor table by doubling when a
//! new descriptor does not fit, and in a multi-threaded process each growth waits for an RCU
//! grace period inside the `accept4` that needed it. Measured (benches/connstorm.py,
//! `tests/storm.rs`): a fresh server, Redis as well, taking 3,000 connects in a row stalled
//! at about 750, 1,500 and 2,500 connections, long enough each time for the 511-entry accept
//! queue to overflow; three clients then waited a second for a SYN retransmission. A second
//! burst on the same server, whose table had grown, had none. The table costs 8 bytes per
//! slot (80 KB for the default 10,000 clients), allocated once.

use tracing::{info, warn};

/// Descriptors kept beside the clients' for the server's own files (logs, snapshots,
/// listening sockets), as Redis's `CONFIG_MIN_RESERVED_FDS`.
pub const RESERVED_FDS: u64 = 32;

/// Raises the soft open-files limit to `maxclients` plus [`RESERVED_FDS`] if it is lower (as
/// far as the hard limit allows) and returns how many clients the limit fits: `maxclients`,
/// or fewer, with Redis's warning.
pub fn fit_open_files_limit(maxclients: usize) -> usize {
    let wanted = (maxclients as u64).saturating_add(RESERVED_FDS);
    let Some((soft, hard)) = open_files_limit() else {
        return maxclients;
    };
    if soft >= wanted {
        return maxclients;
    }
    let target = wanted.min(hard);
    if target > soft && set_open_files_limit(target, hard) {
        info!(
            "Increased maximum number of open files to {target} (it was originally set to {soft})."
        );
        if target >= wanted {
            return maxclients;
        }
    }
    let limit = target.max(soft);
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(1);
    warn!(
        "You requested maxclients of {maxclients} requiring at least {wanted} max file \
         descriptors. Current maximum open files is {limit}. maxclients has been reduced to \
         {fits} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
    fits
}

/// Grows this process's descriptor table to hold `count` descriptors (at most the soft
/// open-files limit), so that accepting a client never has to grow it.
pub fn reserve_descriptor_table(count: u64) {
    let Some((soft, _)) = open_files_limit() else {
        return;
    };
    let highest = count.min(soft).saturating_sub(1);
    let Ok(highest) = i32::try_from(highest) else {
        return;
    };
    if highest < 3 {
        return;
    }
    match std::fs::File::open("/dev/null") {
        Ok(file) => dup_at_or_above(&file, highest),
        Err(err) => warn!("could not reserve the descriptor table: {err}"),
    }
}

/// The soft and hard `RLIMIT_NOFILE`.
#[cfg(unix)]
#[allow(unsafe_code)]
fn open_files_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the limit into the struct it is given, which lives for the
    // call.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (result == 0).then_some((limit.rlim_cur, limit.rlim_max))
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<(u64, u64)> {
    None
}

/// Sets the soft `RLIMIT_NOFILE` to `soft` (keeping `hard`); false if refused.
#[cfg(unix)]
#[allow(unsafe_code)]
fn set_open_files_limit(soft: u64, hard: u64) -> bool {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `setrlimit` only reads the struct it is given, which lives for the call.
    let result = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    if result != 0 {
        let err = std::io::Error::last_os_error();
        warn!("Server can't set maximum open files to {soft} because of OS error: {err}.");
    }
    result == 0
}

#[cfg(not(unix))]
fn set_open_files_limit(_soft: u64, _hard: u64) -> bool {
    false
}

/// Duplicates `file` onto the lowest free descriptor at or above `at` and closes the copy:
/// the kernel grows the table to hold it and keeps it that size.
#[cfg(unix)]
#[allow(unsafe_code)]
fn dup_at_or_above(file: &std::fs::File, at: i32) {
    use std::os::fd::AsRawFd as _;
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor `file` keeps open for the call creates a new
    // descriptor that nothing else knows of; it is closed at once.
    unsafe {
        let copy = libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, at);
        if copy >= 0 {
            libc::close(copy);
        }
    }
}

#[cfg(not(unix))]
fn dup_at_or_above(_file: &std::fs::File, _at: i32) {}

#[cfg(all(test, unix, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_limit_that_fits_is_left_alone() {
        let (soft, _) = open_files_limit().expect("getrlimit");
        let fits = usize::try_from(soft - RESERVED_FDS).expect("fits usize");
        assert_eq!(fit_open_files_limit(fits), fits);
        assert_eq!(open_files_limit().expect("getrlimit").0, soft);
    }

    #[test]
    fn maxclients_is_reduced_to_what_the_hard_limit_allows() {
        let (_, hard) = open_files_limit().expect("getrlimit");
        if hard == libc::RLIM_INFINITY || hard > u64::from(u32::MAX) {
            return;
        }
        let asked = usize::try_from(hard).expect("fits usize") + 1000;
        let fits = fit_open_files_limit(asked);
        assert_eq!(fits as u64, hard - RESERVED_FDS);
        assert_eq!(open_files_limit().expect("getrlimit").0, hard);
    }

    #[test]
    fn reserving_grows_the_table_once() {
        let (soft, _) = open_files_limit().expect("getrlimit");
        let wanted = soft.min(4096);
        reserve_descriptor_table(wanted);
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let size: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("FDSize:"))
            .and_then(|size| size.trim().parse().ok())
            .expect("FDSize");
        assert!(size >= wanted, "table of {size} slots, wanted {wanted}");
    }
}
