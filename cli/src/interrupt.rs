//! Ctrl-C for the modes that run until the user stops them: the shell's listening mode
//! (after `SUBSCRIBE`) and `kvcli watch`. There the signal ends the mode, not the process.
//!
//! Once [`install`]ed, a thread receives the signals through tokio's signal support (so no
//! `unsafe` here). While a [`Guard`] is alive, a signal marks it interrupted and shuts down
//! the sockets it was given: the blocking read waiting on one of them returns at once, and
//! its caller asks the guard whether that was the user's doing. Without a guard, the
//! process exits with status 1, as redis-cli's shell does when Ctrl-C interrupts a command.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;

/// Which signals end a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// Ctrl-C (SIGINT) only; other signals keep their default action (the shell).
    Interrupt,
    /// Ctrl-C, and also SIGTERM and SIGHUP (`kvcli watch`, which must undo its
    /// configuration change however it is stopped).
    InterruptAndTermination,
}

/// The installed signal handling (one per process).
#[derive(Debug)]
pub struct Interrupts {
    armed: Mutex<Option<Armed>>,
}

/// What a signal acts on while a [`Guard`] is alive.
#[derive(Debug)]
struct Armed {
    interrupted: Arc<AtomicBool>,
    streams: Vec<TcpStream>,
}

static INSTALLED: OnceLock<Interrupts> = OnceLock::new();

/// Starts handling `signals` for the rest of the process (the first call decides which).
///
/// # Errors
///
/// If the signal handlers or their thread cannot be set up; the signals then keep their
/// default action (they end the process).
pub fn install(signals: Signals) -> io::Result<&'static Interrupts> {
    if let Some(installed) = INSTALLED.get() {
        return Ok(installed);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Registered here, before returning, so that no signal sent after `install` is missed.
    let receivers = {
        let _context = runtime.enter();
        Receivers::register(signals)?
    };
    let interrupts = INSTALLED.get_or_init(|| Interrupts {
        armed: Mutex::new(None),
    });
    thread::Builder::new()
        .name("kvcli-signals".to_owned())
        .spawn(move || runtime.block_on(receivers.serve(interrupts)))?;
    Ok(interrupts)
}

/// The registered signal streams.
#[cfg(unix)]
struct Receivers {
    interrupt: tokio::signal::unix::Signal,
    terminate: Option<tokio::signal::unix::Signal>,
    hang_up: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Receivers {
    fn register(signals: Signals) -> io::Result<Receivers> {
        use tokio::signal::unix::{signal, SignalKind};
        let with_termination = signals == Signals::InterruptAndTermination;
        Ok(Receivers {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: with_termination
                .then(|| signal(SignalKind::terminate()))
                .transpose()?,
            hang_up: with_termination
                .then(|| signal(SignalKind::hangup()))
                .transpose()?,
        })
    }

    async fn serve(mut self, interrupts: &'static Interrupts) {
        async fn next(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
            match signal {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        }
        loop {
            let received = tokio::select! {
                received = self.interrupt.recv() => received,
                received = next(&mut self.terminate) => received,
                received = next(&mut self.hang_up) => received,
            };
            if received.is_none() {
                return;
            }
            interrupts.fire();
        }
    }
}

/// Elsewhere only Ctrl-C is known.
#[cfg(not(unix))]
struct Receivers;

#[cfg(not(unix))]
impl Receivers {
    fn register(_signals: Signals) -> io::Result<Receivers> {
        Ok(Receivers)
    }

    async fn serve(self, interrupts: &'static Interrupts) {
        while tokio::signal::ctrl_c().await.is_ok() {
            interrupts.fire();
        }
    }
}

impl Interrupts {
    /// Until the returned guard is dropped, a signal interrupts the caller: it marks the
    /// guard and shuts down `streams` (clones of the sockets the caller blocks on).
    pub fn arm(&'static self, streams: Vec<TcpStream>) -> Guard {
        let interrupted = Arc::new(AtomicBool::new(false));
        *self.lock() = Some(Armed {
            interrupted: Arc::clone(&interrupted),
            streams,
        });
        Guard {
            interrupts: self,
            interrupted,
        }
    }

    /// A signal arrived.
    fn fire(&self) {
        let armed = self.lock();
        match armed.as_ref() {
            Some(armed) => {
                armed.interrupted.store(true, Ordering::SeqCst);
                for stream in &armed.streams {
                    // A socket that is already closed needs no waking.
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            None => std::process::exit(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Armed>> {
        // The data stays consistent even if a holder panicked: it is replaced whole.
        self.armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An armed interruption (see [`Interrupts::arm`]); disarmed on drop.
#[derive(Debug)]
pub struct Guard {
    interrupts: &'static Interrupts,
    interrupted: Arc<AtomicBool>,
}

impl Guard {
    /// Whether a signal arrived since the guard was armed.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut armed = self.interrupts.lock();
        // Only disarm what this guard armed (a newer guard may have replaced it).
        if armed
            .as_ref()
            .is_some_and(|a| Arc::ptr_eq(&a.interrupted, &self.interrupted))
        {
            *armed = None;
        }
    }
}
