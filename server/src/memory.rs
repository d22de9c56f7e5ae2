//! Process memory and CPU figures for INFO, read from the allocator and from `/proc`.

/// The server allocates through jemalloc, as Redis does. With glibc's malloc, memory freed
/// by deleting a million keys stayed resident (25-64 MB in a connection thread's arena, which
/// `malloc_trim` does not release), and two threads deleting keys did not scale (1.0x; 1.35x
/// with jemalloc). Declared in the library so that in-process tests and benchmarks measure
/// the same allocator as the binary (the library's own unit tests count allocations on top of
/// it, see [`counting`]). Not under the fuzzer (`cfg(fuzzing)`), whose address sanitizer
/// only sees the system allocator's heap, nor under Miri, which cannot call into C.
#[cfg(all(not(target_env = "msvc"), not(test), not(fuzzing), not(miri)))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(not(target_env = "msvc"), test))]
#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// For the library's unit tests: jemalloc, plus a count of the allocations each thread
/// makes, so a test can check that a code path does not allocate per request. Per thread,
/// so tests running in parallel do not disturb each other's counts.
#[cfg(all(not(target_env = "msvc"), test))]
pub(crate) mod counting {
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::Cell;

    // Under Miri, which cannot call into C, the counts are taken over the system allocator.
    #[cfg(miri)]
    use std::alloc::System as Jemalloc;
    #[cfg(not(miri))]
    use tikv_jemallocator::Jemalloc;

    thread_local! {
        // `const`, without a destructor: safe to touch from inside the allocator.
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    /// Allocations (and reallocations) made so far by the calling thread.
    pub(crate) fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    fn count() {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }

    /// jemalloc, counting.
    pub(crate) struct Counting;

    // SAFETY: every method forwards its arguments unchanged to `Jemalloc`, which upholds the
    // `GlobalAlloc` contract; counting touches only a thread-local integer and never
    // allocates.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: forwarded as received.
            unsafe { Jemalloc.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: forwarded as received.
            unsafe { Jemalloc.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded as received.
            unsafe { Jemalloc.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            // SAFETY: forwarded as received.
            unsafe { Jemalloc.realloc(ptr, layout, new_size) }
        }
    }
}

/// The allocator's name and version for INFO `mem_allocator`, as Redis reports it.
#[cfg(not(target_env = "msvc"))]
pub const ALLOCATOR_NAME: &str = "jemalloc-5.3.0";
/// The allocator's name for INFO `mem_allocator`.
#[cfg(target_env = "msvc")]
pub const ALLOCATOR_NAME: &str = "libc";

/// Turns on jemalloc's background purging thread (Redis's `jemalloc-bg-thread yes`), so freed
/// memory goes back to the OS over jemalloc's decay time even when the server then sits
/// idle; without it, jemalloc only purges while the process allocates. Idempotent.
#[cfg(not(target_env = "msvc"))]
pub fn configure_allocator() {
    if let Err(err) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!("jemalloc background thread not started: {err}");
    }
}

/// Allocator settings (nothing to set with this allocator).
#[cfg(target_env = "msvc")]
pub fn configure_allocator() {}

/// Bytes currently allocated (INFO `used_memory`): jemalloc's own count, as Redis reports.
#[cfg(not(target_env = "msvc"))]
pub fn allocated_bytes() -> u64 {
    // jemalloc caches its statistics; advancing the epoch refreshes them.
    if tikv_jemalloc_ctl::epoch::advance().is_err() {
        return 0;
    }
    tikv_jemalloc_ctl::stats::allocated::read().map_or(0, |bytes| bytes as u64)
}

/// Bytes currently allocated (unknown with this allocator).
#[cfg(target_env = "msvc")]
pub fn allocated_bytes() -> u64 {
    0
}

/// Returns freed memory to the operating system now, so that the resident size follows the
/// dataset down after mass deletions (FLUSHALL, expiry of many keys). jemalloc also does this
/// on its own, but only over ~10 s and only while the process keeps allocating.
#[cfg(not(target_env = "msvc"))]
pub fn release_free_memory() {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages.
    const PURGE_ALL: &std::ffi::CStr = c"arena.4096.purge";
    // SAFETY: a NUL-terminated control name; this control reads and writes nothing, so
    // every pointer is null and the length 0, as jemalloc's mallctl contract requires.
    #[allow(unsafe_code)]
    let result = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if result != 0 {
        tracing::debug!(result, "jemalloc purge failed");
    }
}

/// Returns freed memory to the operating system (nothing to do with this allocator).
#[cfg(target_env = "msvc")]
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
