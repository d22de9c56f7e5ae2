//! The one place that names synchronisation primitives for shared state.
//!
//! Normally these are `std`'s; under `RUSTFLAGS="--cfg kv_loom"` they are loom's, so the
//! store's concurrency-critical core can be model-checked (tokio does not build under a global
//! `--cfg loom`, hence a project-specific cfg). The mutex wrapper is poison-free: a panic while
//! holding a shard lock must not take the whole keyspace down with it.

#[cfg(not(kv_loom))]
pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(kv_loom))]
pub use std::sync::Arc;

#[cfg(kv_loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(kv_loom)]
pub use loom::sync::Arc;

#[cfg(not(kv_loom))]
use std::sync as imp;

#[cfg(kv_loom)]
use loom::sync as imp;

/// Guard returned by [`Mutex::lock`].
pub type MutexGuard<'a, T> = imp::MutexGuard<'a, T>;

/// A mutual-exclusion lock whose `lock` never fails: poisoning is ignored, because every
/// critical section in the store leaves its data consistent before anything can panic.
#[derive(Debug)]
pub struct Mutex<T>(imp::Mutex<T>);

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> Mutex<T> {
    /// Creates a new unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex(imp::Mutex::new(value))
    }

    /// Blocks until the lock is held and returns its guard.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
