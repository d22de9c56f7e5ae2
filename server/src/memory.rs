//! Process memory and CPU figures for INFO, read from the allocator and from `/proc`.

/// Bytes currently allocated through the C allocator (INFO `used_memory`).
///
/// glibc's `mallinfo2` sums in-use chunks over all arenas plus mmapped blocks; it is the
/// allocator's own count, as Redis reports jemalloc's. Other platforms report 0.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn allocated_bytes() -> u64 {
    // SAFETY: `mallinfo2` takes no arguments, only reads allocator statistics under the
    // allocator's own locks, and returns a plain struct by value.
    #[allow(unsafe_code)]
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

/// Bytes currently allocated (unknown on this platform).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn allocated_bytes() -> u64 {
    0
}

/// Returns freed memory to the operating system, so that the resident size follows the
/// dataset down after mass deletions (FLUSHALL, expiry of many keys). glibc keeps freed small
/// chunks in its arenas otherwise; jemalloc, which Redis uses, purges on its own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    // SAFETY: `malloc_trim` only walks the allocator's own free lists under its locks; the
    // argument is the padding to keep at the top of the heap.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns freed memory to the operating system (nothing to do on this platform).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

/// Resident set size in bytes (INFO `used_memory_rss`), from `/proc/self/statm`.
pub fn resident_bytes() -> u64 {
    const PAGE: u64 = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * PAGE)
}

/// User and system CPU seconds used by the process, from `/proc/self/stat`.
pub fn cpu_seconds() -> (f64, f64) {
    // Linux reports these in USER_HZ ticks, which the kernel ABI fixes at 100 per second.
    const TICKS_PER_SECOND: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return (0.0, 0.0);
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) / TICKS_PER_SECOND, ticks(12) / TICKS_PER_SECOND)
}
