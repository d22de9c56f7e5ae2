//! The shard lock: readers that never write a cache line another core reads, one writer at a
//! time.
//!
//! A mutex makes every reader write the lock word, so two cores reading the same shards pass
//! its cache line back and forth on every command (about 70 ns a GET on the development
//! machine: the whole gap between one thread and two). Here a reader announces itself in a
//! counter on a cache line of its own (one of a few slots, chosen by thread) and then checks
//! that the lock's state word has no writer; while nobody writes, that word's line stays
//! shared by every core. A writer sets `LOCKED` in the state word (one compare-and-swap, as a
//! mutex would) and then waits until every reader slot is empty. A reader that finds `LOCKED`
//! steps back out of its slot and takes the lock as a writer would, reading under it: readers
//! cannot starve behind a stream of writers.
//!
//! The handshake is Dekker's: the reader's increment then state load, and the writer's state
//! update then counter loads, are all `SeqCst`, so in their single total order at least one
//! side sees the other (the reader sees `LOCKED`, or the writer sees the reader's count). The
//! same pattern, with `DRAINING`, tells a leaving reader that a writer sleeps waiting for it.
//! loom models `SeqCst` accesses as acquire/release only, so under loom a `SeqCst` fence sits
//! between the two steps on every side, which loom does model.
//!
//! Waiting is a short spin (10 µs), then sleep on a condition variable (held long by
//! SAVE-sized work or a reader copying a large value, the lock must not burn a core).
//! Uncontended, a writer pays what a mutex costs plus one load per reader slot (cache hits
//! while nobody reads that shard), a reader two atomic operations on its own line and a load
//! of the shared word.
//! Threads map to slots modulo their number; threads sharing a slot stay correct (it is a
//! count) and only lose the private line.
//!
//! Atomic sections (MULTI/EXEC, scripts) take every shard they will touch up front, in the
//! global lock order, with [`ShardLock::hold`], and then run ordinary handlers, which lock
//! the same shards again. A held lock records the section's token (one per thread, see
//! [`Section`]); a thread whose section holds the lock re-enters it instead of waiting for
//! itself. Only the slow paths look at the owner (a held lock always has `LOCKED` set, so
//! the fast paths fail over to them), so commands outside sections pay nothing for it.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use crate::sync::{
    thread_number, AtomicU32, AtomicU64, AtomicUsize, Condvar, ConstPtr, MutPtr, Mutex, Ordering,
    UnsafeCell,
};

/// State bit: a writer (or a reader queued as one) holds the lock.
const LOCKED: u32 = 1;
/// State bit: threads sleep on `parked` waiting for `LOCKED` to clear.
const PARKED: u32 = 2;
/// State bit: the holder sleeps on `parked` waiting for readers to leave.
const DRAINING: u32 = 4;

/// How long a waiter busy-waits before it sleeps: longer than a multi-key command holds its
/// shards (ten cache misses, a few microseconds), much shorter than what sleeping costs. A
/// sleep and wake-up cost microseconds of system calls and an inter-processor interrupt on
/// both sides; with the earlier budget of 100 turns (1 µs here), two threads running ten-key
/// MSETs slept so often that they were 2.2x slower than one thread (0.78x with this budget).
#[cfg(not(kv_loom))]
const SPIN_FOR: std::time::Duration = std::time::Duration::from_micros(10);

/// A reader slot: its count of readers inside, and the keyspace hit/miss counters those
/// readers bump (on the same private line, instead of a shared one).
#[repr(align(128))]
#[derive(Default)]
struct ReaderSlot {
    readers: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Hit and miss counts recorded by readers, summed over the slots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadCounts {
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
}

/// A reader-writer lock whose readers do not share a written cache line; see the module docs.
pub struct ShardLock<T> {
    /// `LOCKED`, `PARKED` and `DRAINING` bits.
    state: AtomicU32,
    /// Only taken by threads about to sleep and by those that wake them.
    parking: Mutex<()>,
    parked: Condvar,
    slots: Box<[ReaderSlot]>,
    /// Token of the atomic section holding the lock ([`ShardLock::hold`]), 0 if none. Written
    /// only by the holder while it has `LOCKED`; another thread can never read its own token
    /// here unless its own section holds the lock.
    owner: AtomicUsize,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&T` to any number of threads only while no `&mut T` exists, and
// `&mut T` to one thread at a time: the contract of `std::sync::RwLock`, which is `Sync` for
// `T: Send + Sync`.
#[allow(unsafe_code)]
unsafe impl<T: Send + Sync> Sync for ShardLock<T> {}
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for ShardLock<T> {}

/// Reader slots per lock: the number of cores rounded up to a power of two, 2 to 64 (2 under
/// loom, so that models with three threads also exercise a shared slot).
fn slot_count() -> usize {
    if cfg!(kv_loom) {
        return 2;
    }
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(2, |cores| cores.get())
            .next_power_of_two()
            .clamp(2, 64)
    })
}

/// Orders a Dekker handshake's store before its load for loom and Miri, which do not model
/// the total order of `SeqCst` accesses (but do model `SeqCst` fences): without it Miri's
/// weak-memory emulation reports a race the `SeqCst` order rules out (rust-lang/miri#2301).
/// Nothing otherwise: the accesses themselves are `SeqCst`.
#[inline]
fn handshake_fence() {
    #[cfg(any(kv_loom, miri))]
    crate::sync::fence(Ordering::SeqCst);
}

/// A waiter's busy-waiting budget: [`SPIN_FOR`] of pauses, checked every few turns (a
/// single turn under loom, a yield, which is how loom learns the loop waits; the models then
/// explore sleeping).
struct Spin {
    turns: u32,
    #[cfg(not(kv_loom))]
    started: std::time::Instant,
}

impl Spin {
    fn new() -> Self {
        Spin {
            turns: 0,
            #[cfg(not(kv_loom))]
            started: std::time::Instant::now(),
        }
    }

    /// Pauses once and returns true while the budget lasts; false once it is spent.
    #[inline]
    fn again(&mut self) -> bool {
        self.turns += 1;
        #[cfg(kv_loom)]
        {
            if self.turns > 1 {
                return false;
            }
            loom::thread::yield_now();
            true
        }
        #[cfg(not(kv_loom))]
        {
            // A pause takes 10-40 ns depending on the CPU: read the clock every 32 turns.
            if self.turns.is_multiple_of(32) && self.started.elapsed() >= SPIN_FOR {
                return false;
            }
            std::hint::spin_loop();
            true
        }
    }
}

impl<T: Default> Default for ShardLock<T> {
    fn default() -> Self {
        ShardLock::new(T::default())
    }
}

impl<T> ShardLock<T> {
    /// An unlocked lock around `value`.
    pub fn new(value: T) -> Self {
        ShardLock {
            state: AtomicU32::new(0),
            parking: Mutex::new(()),
            parked: Condvar::new(),
            slots: (0..slot_count()).map(|_| ReaderSlot::default()).collect(),
            owner: AtomicUsize::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Shared access, concurrent with other readers; waits while a writer is active.
    #[inline]
    pub fn read(&self) -> ReadGuard<'_, T> {
        let slot = &self.slots[thread_number() & (self.slots.len() - 1)];
        slot.readers.fetch_add(1, Ordering::SeqCst);
        handshake_fence();
        if self.state.load(Ordering::SeqCst) & LOCKED == 0 {
            return ReadGuard {
                value: self.value.get(),
                slot,
                _held: Held::Shared(self, slot),
            };
        }
        // A writer is active or arriving (or this thread's section holds the lock): step
        // back so it can proceed, then queue as one.
        self.leave(slot);
        let held = match self.lock_exclusive() {
            Some(exclusive) => Held::Exclusive { _lock: exclusive },
            None => Held::Reentered,
        };
        ReadGuard {
            value: self.value.get(),
            slot,
            _held: held,
        }
    }

    /// Shared access if no writer holds the lock now; `None` instead of waiting (for
    /// background work that must not queue behind a long holder, such as a script).
    pub fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        let slot = &self.slots[thread_number() & (self.slots.len() - 1)];
        slot.readers.fetch_add(1, Ordering::SeqCst);
        handshake_fence();
        if self.state.load(Ordering::SeqCst) & LOCKED == 0 {
            return Some(ReadGuard {
                value: self.value.get(),
                slot,
                _held: Held::Shared(self, slot),
            });
        }
        self.leave(slot);
        None
    }

    /// Exclusive access if nobody holds the lock now, readers included; `None` instead of
    /// waiting.
    pub fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        let exclusive = self.try_exclusive()?;
        Some(WriteGuard {
            value: self.value.get_mut(),
            _exclusive: Some(exclusive),
        })
    }

    /// Exclusive access: waits for the previous writer, then for the readers inside.
    #[inline]
    pub fn write(&self) -> WriteGuard<'_, T> {
        let exclusive = self.lock_exclusive();
        WriteGuard {
            value: self.value.get_mut(),
            _exclusive: exclusive,
        }
    }

    /// Hits and misses counted by readers (see [`ReadGuard::count_hit`]).
    pub fn read_counts(&self) -> ReadCounts {
        self.slots
            .iter()
            .fold(ReadCounts::default(), |acc, slot| ReadCounts {
                hits: acc.hits + slot.hits.load(Ordering::Relaxed),
                misses: acc.misses + slot.misses.load(Ordering::Relaxed),
            })
    }

    /// Zeroes the readers' counters.
    pub fn reset_read_counts(&self) {
        for slot in self.slots.iter() {
            slot.hits.store(0, Ordering::Relaxed);
            slot.misses.store(0, Ordering::Relaxed);
        }
    }

    /// Exclusive access for an atomic section: waits like [`ShardLock::write`], then records
    /// the calling thread's section as the owner, so that its handlers re-enter the lock. The
    /// caller must be inside a [`Section`] and take its locks in the global order.
    pub fn hold(&self) -> Hold<'_, T> {
        let exclusive = self.acquire();
        self.owner.store(Section::token(), Ordering::Relaxed);
        Hold {
            _exclusive: exclusive,
        }
    }

    /// [`ShardLock::hold`] if nobody holds the lock now, readers included; `None` otherwise.
    /// For sections that find a shard they did not plan for: waiting there could deadlock
    /// (even for readers: a multi-shard reader inside may be waiting for a shard this section
    /// holds), trying cannot.
    pub fn try_hold(&self) -> Option<Hold<'_, T>> {
        let exclusive = self.try_exclusive()?;
        self.owner.store(Section::token(), Ordering::Relaxed);
        Some(Hold {
            _exclusive: exclusive,
        })
    }

    /// Sets `LOCKED` if it is clear and no reader is inside; `None`, with the lock as it was,
    /// otherwise. Never waits.
    fn try_exclusive(&self) -> Option<Exclusive<'_, T>> {
        self.state
            .compare_exchange(0, LOCKED, Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        handshake_fence();
        // Dekker's handshake as in `lock_exclusive`: a reader that arrived before `LOCKED`
        // is seen here; one that arrives after sees `LOCKED` and queues.
        if self
            .slots
            .iter()
            .any(|slot| slot.readers.load(Ordering::SeqCst) != 0)
        {
            // Back out; readers that saw `LOCKED` meanwhile and queued are woken.
            self.unlock();
            return None;
        }
        Some(Exclusive { lock: self })
    }

    /// True if the calling thread's atomic section holds this lock.
    #[inline]
    fn held_by_this_section(&self) -> bool {
        let owner = self.owner.load(Ordering::Relaxed);
        owner != 0 && owner == Section::token()
    }

    /// Takes the lock exclusively, or re-enters it (`None`) if this thread's section holds it.
    #[inline]
    fn lock_exclusive(&self) -> Option<Exclusive<'_, T>> {
        let free = self
            .state
            .compare_exchange(0, LOCKED, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        if !free && self.held_by_this_section() {
            return None;
        }
        Self::check_outside_section();
        if !free {
            self.lock_contended();
        }
        Some(self.drain_readers())
    }

    /// Takes the lock exclusively, as the first step of a hold.
    fn acquire(&self) -> Exclusive<'_, T> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        self.drain_readers()
    }

    /// Debug builds: a thread inside an atomic section must only take locks its section
    /// holds; anything else could deadlock against another section (the section's plan of
    /// what to hold was incomplete).
    #[inline]
    fn check_outside_section() {
        debug_assert!(
            Section::token() == 0,
            "an atomic section took a shard lock it did not hold"
        );
    }

    /// With `LOCKED` set, waits for the readers inside to leave.
    #[inline]
    fn drain_readers(&self) -> Exclusive<'_, T> {
        handshake_fence();
        for slot in self.slots.iter() {
            if slot.readers.load(Ordering::SeqCst) != 0 {
                self.drain(slot);
            }
        }
        Exclusive { lock: self }
    }

    /// Waits for `LOCKED` to clear and sets it.
    #[cold]
    fn lock_contended(&self) {
        let mut spin = Spin::new();
        loop {
            let state = self.state.load(Ordering::Relaxed);
            if state & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange(state, state | LOCKED, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if spin.again() {
                continue;
            }
            // Sleep, unless the holder leaves before PARKED is set (the unlock's swap and this
            // compare-and-swap are ordered on the state word; the holder then notifies under
            // `parking`, which this thread holds until it sleeps).
            let parking = self.parking.lock();
            let state = self.state.load(Ordering::Relaxed);
            if state & LOCKED != 0
                && (state & PARKED != 0
                    || self
                        .state
                        .compare_exchange(
                            state,
                            state | PARKED,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok())
            {
                #[cfg(not(kv_loom))]
                if crate::sync::busy_wait::enabled() {
                    // Nap, so that a busy script elsewhere can make this wait give up.
                    drop(
                        self.parked
                            .wait_timeout(parking, std::time::Duration::from_millis(10)),
                    );
                    crate::sync::busy_wait::check();
                    continue;
                }
                drop(self.parked.wait(parking));
            }
        }
    }

    /// With `LOCKED` held, waits for the readers of `slot` to leave.
    #[cold]
    fn drain(&self, slot: &ReaderSlot) {
        let mut spin = Spin::new();
        while slot.readers.load(Ordering::SeqCst) != 0 {
            if spin.again() {
                continue;
            }
            let parking = self.parking.lock();
            self.state.fetch_or(DRAINING, Ordering::SeqCst);
            handshake_fence();
            // A reader leaving after this load sees DRAINING and notifies under `parking`.
            if slot.readers.load(Ordering::SeqCst) != 0 {
                drop(self.parked.wait(parking));
            }
        }
    }

    /// Takes a reader out of its slot, waking a writer that sleeps waiting for readers.
    #[inline]
    fn leave(&self, slot: &ReaderSlot) {
        // SeqCst (so also release): the writer that sees the count drop sees this reader done.
        slot.readers.fetch_sub(1, Ordering::SeqCst);
        handshake_fence();
        if self.state.load(Ordering::SeqCst) & DRAINING != 0 {
            let _parking = self.parking.lock();
            self.parked.notify_all();
        }
    }

    #[inline]
    fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) & PARKED != 0 {
            let _parking = self.parking.lock();
            self.parked.notify_all();
        }
    }
}

/// The lock held exclusively (`LOCKED` set, readers drained); released on drop.
struct Exclusive<'a, T> {
    lock: &'a ShardLock<T>,
}

impl<T> Drop for Exclusive<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

/// An atomic section's exclusive hold of a lock ([`ShardLock::hold`]). It gives no access
/// itself: the section's handlers lock again and re-enter. Dropping it clears the owner and
/// releases the lock.
pub struct Hold<'a, T> {
    _exclusive: Exclusive<'a, T>,
}

impl<T> Drop for Hold<'_, T> {
    fn drop(&mut self) {
        // Before the release (the field drops after this body): nobody may find this thread's
        // token on a lock it no longer holds.
        self._exclusive.lock.owner.store(0, Ordering::Relaxed);
    }
}

/// How a reader holds the lock.
enum Held<'a, T> {
    /// Counted in its slot.
    Shared(&'a ShardLock<T>, &'a ReaderSlot),
    /// Exclusively, because a writer was active when it arrived.
    Exclusive { _lock: Exclusive<'a, T> },
    /// Through the calling thread's section, which holds the lock and releases it.
    Reentered,
}

impl<T> Drop for Held<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Held::Shared(lock, slot) = self {
            lock.leave(slot);
        }
    }
}

/// Shared access to a [`ShardLock`]'s value.
pub struct ReadGuard<'a, T> {
    // Fields drop in order: the access ends before the lock is released.
    value: ConstPtr<T>,
    slot: &'a ReaderSlot,
    _held: Held<'a, T>,
}

impl<T> ReadGuard<'_, T> {
    /// Counts a keyspace hit on this reader's own line.
    #[inline]
    pub fn count_hit(&self) {
        self.slot.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a keyspace miss on this reader's own line.
    #[inline]
    pub fn count_miss(&self) {
        self.slot.misses.fetch_add(1, Ordering::Relaxed);
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this reader is counted in its slot (writers wait for the count to drop) or
        // holds the lock exclusively, so no `&mut T` exists while the guard lives.
        #[allow(unsafe_code)]
        unsafe {
            self.value.deref()
        }
    }
}

/// Exclusive access to a [`ShardLock`]'s value.
pub struct WriteGuard<'a, T> {
    // Fields drop in order: the access ends before the lock is released.
    value: MutPtr<T>,
    /// `None` when re-entered through the calling thread's section.
    _exclusive: Option<Exclusive<'a, T>>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the lock is held exclusively: `LOCKED` is set by this thread and every
        // reader slot was empty after it was; new readers see it and queue.
        #[allow(unsafe_code)]
        unsafe {
            self.value.deref()
        }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this the only reference handed out.
        #[allow(unsafe_code)]
        unsafe {
            self.value.deref()
        }
    }
}

/// An atomic section on the calling thread (EXEC, a script): while it lives, the locks the
/// thread takes with [`ShardLock::hold`] carry its token, and the thread re-enters them.
/// Sections do not nest.
pub struct Section {
    _not_send: std::marker::PhantomData<*const ()>,
}

#[cfg(not(kv_loom))]
std::thread_local! {
    static SECTION_TOKEN: Cell<usize> = const { Cell::new(0) };
}
#[cfg(kv_loom)]
loom::thread_local! {
    static SECTION_TOKEN: Cell<usize> = Cell::new(0);
}

impl Section {
    /// Opens the calling thread's section; hold its locks after this.
    pub fn enter() -> Section {
        SECTION_TOKEN.with(|token| {
            debug_assert_eq!(token.get(), 0, "atomic sections do not nest");
            token.set(thread_number() + 1);
        });
        Section {
            _not_send: std::marker::PhantomData,
        }
    }

    /// The calling thread's section token, 0 outside a section.
    #[inline]
    pub fn token() -> usize {
        SECTION_TOKEN.with(Cell::get)
    }

    /// True while the calling thread runs inside a section.
    pub fn active() -> bool {
        Self::token() != 0
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        SECTION_TOKEN.with(|token| token.set(0));
    }
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn readers_and_writers_exclude_each_other() {
        // Writers keep the two halves equal; a reader that ever sees them differ saw a write
        // in progress.
        let lock = Arc::new(ShardLock::new((0u64, 0u64)));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if t % 2 == 0 {
                            let mut pair = lock.write();
                            pair.0 += 1;
                            std::hint::black_box(&mut *pair);
                            pair.1 += 1;
                        } else {
                            let pair = lock.read();
                            assert_eq!(pair.0, pair.1, "a reader saw a half-done write");
                            pair.count_hit();
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no thread panicked");
        }
        assert_eq!(*lock.read(), (40_000, 40_000));
        assert_eq!(lock.read_counts().hits, 40_000);
        lock.reset_read_counts();
        assert_eq!(lock.read_counts(), ReadCounts::default());
    }

    #[test]
    fn a_reader_can_wait_behind_a_writer() {
        let lock = Arc::new(ShardLock::new(0u64));
        let writer = lock.write();
        let reader = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || *lock.read())
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(writer);
        assert_eq!(reader.join().expect("reader finished"), 0);
    }
}
