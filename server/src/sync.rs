//! The one place that names synchronisation primitives for shared state.
//!
//! Normally these are `std`'s; under `RUSTFLAGS="--cfg kv_loom"` they are loom's, so the
//! store's concurrency-critical core can be model-checked (tokio does not build under a global
//! `--cfg loom`, hence a project-specific cfg). The mutex wrapper is poison-free: a panic while
//! holding a shard lock must not take the whole keyspace down with it.

#[cfg(not(kv_loom))]
pub use std::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(kv_loom))]
pub use std::sync::Arc;

#[cfg(kv_loom)]
pub use loom::cell::{ConstPtr, MutPtr, UnsafeCell};
#[cfg(kv_loom)]
pub use loom::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
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

    /// [`Condvar::wait`] for at most `timeout` (std only: loom models do not time out).
    #[cfg(not(kv_loom))]
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        match self.0.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

/// Under loom nothing gives up: lock waits are what the models explore.
#[cfg(kv_loom)]
pub mod busy_wait {
    /// Never produced under loom.
    pub struct WaitAborted;

    /// Runs `f`.
    #[inline]
    pub fn abortable<R>(f: impl FnOnce() -> R) -> Result<R, WaitAborted> {
        Ok(f())
    }

    /// Nothing to watch under loom.
    pub fn set_busy_source(_busy: std::sync::Arc<std::sync::atomic::AtomicUsize>) {}
}

/// Lock waits that give up while a script is busy.
///
/// A connection thread waiting for a shard that a script holds past `busy-reply-threshold`
/// would otherwise stay stuck, with every connection it serves, until the script ends: no
/// `-BUSY` replies, and no way to reach SCRIPT KILL through it. While the dispatcher runs a
/// handler ([`abortable`]) on a thread whose server is known ([`set_busy_source`]), a lock
/// wait checks every few milliseconds whether a script is busy and, if so, unwinds out of
/// the handler with [`WaitAborted`]; the dispatcher then replies `-BUSY`. Handlers take all
/// their locks before changing anything, so an abandoned wait leaves nothing half done.
#[cfg(not(kv_loom))]
pub mod busy_wait {
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The unwinding payload of an abandoned lock wait.
    pub struct WaitAborted;

    std::thread_local! {
        static SOURCE: RefCell<Option<std::sync::Arc<AtomicUsize>>> = const { RefCell::new(None) };
        static ABORTABLE: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes the calling thread's abortable waits watch `busy` (a count of busy scripts).
    pub fn set_busy_source(busy: std::sync::Arc<AtomicUsize>) {
        SOURCE.with(|source| *source.borrow_mut() = Some(busy));
    }

    /// Runs `f` with lock waits abortable; `Err(WaitAborted)` if one was abandoned. Other
    /// panics go on unwinding.
    #[inline]
    pub fn abortable<R>(f: impl FnOnce() -> R) -> Result<R, WaitAborted> {
        let before = ABORTABLE.with(|flag| flag.replace(true));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        ABORTABLE.with(|flag| flag.set(before));
        match outcome {
            Ok(value) => Ok(value),
            Err(payload) if payload.is::<WaitAborted>() => Err(WaitAborted),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Called by a lock wait between naps: unwinds if the wait may give up and a script is
    /// busy.
    pub fn check() {
        if !ABORTABLE.with(Cell::get) {
            return;
        }
        let busy = SOURCE.with(|source| {
            source
                .borrow()
                .as_ref()
                .is_some_and(|busy| busy.load(Ordering::Relaxed) != 0)
        });
        if busy {
            ABORTABLE.with(|flag| flag.set(false));
            std::panic::resume_unwind(Box::new(WaitAborted));
        }
    }

    /// True if lock waits on this thread may give up (they then nap instead of sleeping).
    pub fn enabled() -> bool {
        ABORTABLE.with(Cell::get) && SOURCE.with(|source| source.borrow().is_some())
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
