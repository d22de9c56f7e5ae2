//! Where each shard's bucket array lives, published outside the shard's lock so that a thread
//! can start loading a key's bucket before it has the lock.
//!
//! Why: a write on a million-key table waits for its shard's lock word, which the other
//! core wrote last about half the time (a cache-line transfer), and then for the key's
//! bucket, a DRAM miss. A locked instruction lets no later load start before it completes,
//! so without a hint the two waits add up. A prefetch issued before the lock overlaps them.
//!
//! A hint is only ever used as a prefetch address: a stale or torn one (the table resized in
//! between, or the two words read from different resizes) costs a useless prefetch and never
//! a wrong answer, because a prefetch does not read memory as far as the program can tell
//! and cannot fault. Hence relaxed atomics, and no need for the lock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::table::bucket_index;

/// One shard's bucket array address and index mask, as last seen by a writer.
#[derive(Default)]
pub(super) struct BucketHint {
    base: AtomicUsize,
    mask: AtomicU64,
}

impl BucketHint {
    /// Records `(base, mask)` of the shard's current bucket array if it changed. Called with
    /// the shard write-locked; stores only after a resize, so the hint's cache line stays
    /// shared between cores.
    #[inline]
    pub(super) fn refresh(&self, (base, mask): (usize, u64)) {
        if self.base.load(Ordering::Relaxed) != base {
            self.base.store(base, Ordering::Relaxed);
        }
        if self.mask.load(Ordering::Relaxed) != mask {
            self.mask.store(mask, Ordering::Relaxed);
        }
    }

    /// The published `(base, mask)`.
    #[cfg(test)]
    pub(super) fn get(&self) -> (usize, u64) {
        (
            self.base.load(Ordering::Relaxed),
            self.mask.load(Ordering::Relaxed),
        )
    }

    /// Starts loading the bucket of `hash` into the cache, if the shard has a bucket array.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        let base = self.base.load(Ordering::Relaxed);
        if base == 0 {
            return;
        }
        let index = bucket_index(hash, self.mask.load(Ordering::Relaxed));
        let address = base.wrapping_add(index.wrapping_mul(std::mem::size_of::<u32>()));
        prefetch_line(address);
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn prefetch_line(address: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: PREFETCHT0 is a hint with no architectural effect: it never faults, whatever
    // the address (unmapped, freed or misaligned), and reads nothing the program observes.
    // The intrinsic is `unsafe` only because it takes a raw pointer.
    #[allow(unsafe_code)]
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn prefetch_line(_address: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hint may name memory that was freed and unmapped since, or never mapped: prefetching
    /// it must neither fault nor matter.
    #[test]
    fn prefetching_a_stale_or_wild_hint_is_harmless() {
        let hint = BucketHint::default();
        hint.prefetch(42); // no bucket array yet: nothing to do
        let freed = vec![0u32; 1 << 20];
        hint.refresh((freed.as_ptr() as usize, (1 << 20) - 1));
        drop(freed); // 4 MiB: jemalloc/glibc return it to the kernel
        for hash in [0, 1 << 19, u64::MAX] {
            hint.prefetch(hash);
        }
        hint.refresh((usize::MAX - 64, u64::MAX));
        hint.prefetch(u64::MAX);
        hint.refresh((0x1000, 0));
        hint.prefetch(7);
    }
}
