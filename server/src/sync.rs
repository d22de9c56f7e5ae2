//! The one place that names synchronisation primitives for shared state.
//!
//! Normally these are `std`'s; under `RUSTFLAGS="--cfg kv_loom"` they are loom's, so the
//! store's concurrency-critical core can be model-checked (tokio does not build under a global
//! `--cfg loom`, hence a project-specific cfg). The mutex wrapper is poison-free: a panic while
//! holding a shard lock must not take the whole keyspace down with it.

#[cfg(not(kv_loom))]
pub use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(kv_loom))]
pub use std::sync::Arc;

#[cfg(kv_loom)]
pub use loom::cell::{ConstPtr, MutPtr, UnsafeCell};
#[cfg(kv_loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
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

/// A condition variable whose `wait` never fails (poisoning ignored, as for [`Mutex`]).
#[derive(Debug, Default)]
pub struct Condvar(imp::Condvar);

impl Condvar {
    /// A condition variable nobody waits on.
    pub fn new() -> Self {
        Condvar(imp::Condvar::new())
    }

    /// Releases `guard`, sleeps until notified (or spuriously woken), and locks again.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        match self.0.wait(guard) {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// Interior mutability with loom's API: access goes through pointers whose lifetime loom
/// tracks, so a model reports any access that races with another.
#[cfg(not(kv_loom))]
#[derive(Debug, Default)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(kv_loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// A pointer for shared access.
    pub fn get(&self) -> ConstPtr<T> {
        ConstPtr(self.0.get())
    }

    /// A pointer for exclusive access.
    pub fn get_mut(&self) -> MutPtr<T> {
        MutPtr(self.0.get())
    }
}

/// Shared access to an [`UnsafeCell`]'s value.
#[cfg(not(kv_loom))]
#[derive(Debug)]
pub struct ConstPtr<T>(*const T);

#[cfg(not(kv_loom))]
impl<T> ConstPtr<T> {
    /// # Safety
    /// No exclusive access to the value may exist while the reference lives.
    #[allow(unsafe_code)]
    pub unsafe fn deref(&self) -> &T {
        // SAFETY: the pointer comes from a live `UnsafeCell`; the caller rules out writers.
        unsafe { &*self.0 }
    }
}

/// Exclusive access to an [`UnsafeCell`]'s value.
#[cfg(not(kv_loom))]
#[derive(Debug)]
pub struct MutPtr<T>(*mut T);

#[cfg(not(kv_loom))]
impl<T> MutPtr<T> {
    /// # Safety
    /// No other access to the value may exist while the reference lives.
    #[allow(unsafe_code, clippy::mut_from_ref)]
    pub unsafe fn deref(&self) -> &mut T {
        // SAFETY: the pointer comes from a live `UnsafeCell`; the caller rules out any other
        // access.
        unsafe { &mut *self.0 }
    }
}

/// A small number for the calling thread, given out in the order threads first ask for one,
/// so that threads started together get different numbers.
pub fn thread_number() -> usize {
    #[cfg(not(kv_loom))]
    {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        std::thread_local! {
            static NUMBER: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        NUMBER.with(|number| *number)
    }
    #[cfg(kv_loom)]
    {
        // loom numbers its threads per execution (the model's thread is 0), so every replay
        // of a schedule assigns the same numbers; `Debug` is the one place it shows them.
        let id = format!("{:?}", loom::thread::current().id());
        id.trim_start_matches("ThreadId(")
            .trim_end_matches(')')
            .parse()
            .unwrap_or(0)
    }
}
