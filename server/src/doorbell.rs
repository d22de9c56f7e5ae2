//! A wake-up for one connection that is polled in place rather than awaited, so that the
//! connection's task keeps no future for it while idle (a `Notify`'s `Notified` is 64 bytes
//! of every idle connection). A ring before the wait is kept, as a `Notify` permit. Each
//! client's mailbox has one: Pub/Sub messages, invalidations and the shutdown ring it.

#[cfg(not(kv_loom))]
use crate::sync::Mutex;

/// A wake-up polled in place (see the module docs).
#[cfg(not(kv_loom))]
#[derive(Debug, Default)]
pub struct Doorbell {
    rung: std::sync::atomic::AtomicBool,
    waker: Mutex<Option<std::task::Waker>>,
}

#[cfg(not(kv_loom))]
impl Doorbell {
    /// A doorbell nobody rang yet.
    pub fn new() -> Self {
        Doorbell::default()
    }

    /// Rings: wakes the waiting connection, or the next poll finds it rung.
    pub fn ring(&self) {
        self.rung.store(true, std::sync::atomic::Ordering::SeqCst);
        let waker = self.waker.lock().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ready (and lowered) if it rang; else the task of `cx` is woken by the next ring.
    pub fn poll_rung(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.rung.swap(false, SeqCst) {
            return std::task::Poll::Ready(());
        }
        {
            let mut waker = self.waker.lock();
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        // A ring between the first look and the registration found no waker to wake.
        if self.rung.swap(false, SeqCst) {
            return std::task::Poll::Ready(());
        }
        std::task::Poll::Pending
    }
}

/// Under loom the doorbell is the blocked commands' [`Signal`](crate::store::waiters::Signal)
/// (a flag and a condition variable): the models sleep on it with `wait`.
#[cfg(kv_loom)]
pub type Doorbell = crate::store::waiters::Signal;

#[cfg(kv_loom)]
impl crate::store::waiters::Signal {
    /// As `notify_one`.
    pub fn ring(&self) {
        self.notify_one();
    }

    /// Ready (and lowered) if raised; never registers a wake-up (the models do not poll).
    pub fn poll_rung(&self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.take_raised() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}
