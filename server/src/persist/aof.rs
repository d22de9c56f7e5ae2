//! The append-only file writer: the thread that drains the write stream
//! ([`crate::propagate`]), hands each round's effects to the stream's consumers (itself
//! first: it routes them to the current incremental file), writes them and fsyncs according
//! to `appendfsync`.
//!
//! Group commit: under `always`, a connection that ran writes waits (asynchronously) until
//! the writer reports that everything up to the stream's horizon at the end of its batch is
//! on disk; the writer syncs once for all the effects that arrived meanwhile, from every
//! connection. Each connection still writes its replies in order, after its own effects are
//! durable. Under `everysec` and `no` nobody waits: the writer writes about every
//! millisecond and fsyncs once a second (`everysec`) or never (`no`).

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info};

use super::lock;
use crate::config::FsyncPolicy;
use crate::propagate::{encode_select, Batch, Consumer, DrainScratch, WriteStream};
use std::sync::Arc;

use crate::sync::Arc as SyncArc;

/// Least time between two writes under `everysec`/`no`: coalesces effects into fewer
/// `write` calls (Redis writes once per event-loop iteration for the same reason).
const WRITE_INTERVAL: Duration = Duration::from_millis(1);
/// Longest the writer sleeps with nothing to do (effects of lazy expiry do not wake it).
const IDLE_WAKE: Duration = Duration::from_millis(100);

/// A request to move to a new incremental file from sequence number `at_seq` on (rewrite).
struct Switch {
    at_seq: u64,
    file: File,
    done: std::sync::mpsc::Sender<io::Result<()>>,
}

#[derive(Default)]
struct Signal {
    pending: bool,
    stop: bool,
    switch: Option<Switch>,
}

/// The running append-only file: what connections and commands talk to.
pub struct Aof {
    /// The write stream the store's shards feed while the file is on.
    pub stream: SyncArc<WriteStream>,
    policy: AtomicU8,
    durable: watch::Sender<u64>,
    signal: Mutex<Signal>,
    wake: Condvar,
    writer_sleeping: AtomicBool,
    /// Bytes in the incremental files written since the last rewrite (plus those found at
    /// start-up), for INFO and automatic rewrites.
    pub incr_bytes: AtomicU64,
    /// Set while the last write or fsync failed (INFO aof_last_write_status).
    pub write_failed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn policy_code(policy: FsyncPolicy) -> u8 {
    match policy {
        FsyncPolicy::Always => 0,
        FsyncPolicy::Everysec => 1,
        FsyncPolicy::No => 2,
    }
}

impl Aof {
    /// Starts the writer on `file` (opened for appending; `existing_bytes` already in it).
    pub fn start(
        stream: SyncArc<WriteStream>,
        file: File,
        existing_bytes: u64,
        policy: FsyncPolicy,
    ) -> io::Result<Arc<Aof>> {
        let horizon = stream.horizon();
        let (durable, _) = watch::channel(horizon);
        let aof = Arc::new(Aof {
            stream,
            policy: AtomicU8::new(policy_code(policy)),
            durable,
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            writer_sleeping: AtomicBool::new(false),
            incr_bytes: AtomicU64::new(existing_bytes),
            write_failed: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let writer = Writer {
            aof: Arc::clone(&aof),
            file,
            file_db: None,
            written: horizon,
            last_fsync: Instant::now(),
            unsynced: false,
            scratch: DrainScratch::default(),
            out: Vec::new(),
            next_out: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("kv-aof".to_owned())
            .spawn(move || writer.run())?;
        *lock(&aof.thread) = Some(handle);
        Ok(aof)
    }

    /// The fsync policy in force.
    pub fn policy(&self) -> FsyncPolicy {
        match self.policy.load(Ordering::Relaxed) {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::Everysec,
            _ => FsyncPolicy::No,
        }
    }

    /// Changes the fsync policy (CONFIG SET appendfsync).
    pub fn set_policy(&self, policy: FsyncPolicy) {
        self.policy.store(policy_code(policy), Ordering::Relaxed);
        self.notify();
    }

    /// Tells the writer there is something to write; cheap when it is already busy.
    pub fn notify(&self) {
        if self.writer_sleeping.load(Ordering::SeqCst) {
            let mut signal = lock(&self.signal);
            signal.pending = true;
            self.wake.notify_one();
        }
    }

    /// Waits until every effect appended so far is written (and, under `always`, synced).
    /// Connections await this before sending the replies of a batch that wrote.
    pub async fn wait_durable(&self) {
        let target = self.stream.horizon();
        if *self.durable.borrow() >= target {
            return;
        }
        let mut receiver = self.durable.subscribe();
        self.notify();
        // The sender lives as long as `self`; an error cannot happen while we borrow it.
        let _ = receiver.wait_for(|&durable| durable >= target).await;
    }

    /// Asks the writer to put every effect numbered from the current horizon on into `file`.
    /// Call with every shard locked (inside [`crate::store::Store::with_all_locked`]), so that
    /// the horizon is exactly the point in time of a snapshot. Wait on the returned
    /// [`SwitchDone`] (after releasing the locks) for the old file to be complete and synced.
    pub fn switch_file(&self, file: File) -> SwitchDone {
        let (done, result) = std::sync::mpsc::channel();
        let mut signal = lock(&self.signal);
        // The writer reads the horizon and takes a switch under this same mutex, so every
        // drain it starts either predates the switch (and so only holds earlier effects) or
        // routes by sequence number.
        let at_seq = self.stream.horizon();
        signal.switch = Some(Switch { at_seq, file, done });
        self.wake.notify_one();
        SwitchDone(result)
    }

    /// Writes and fsyncs everything appended so far, then stops the writer thread. Call after
    /// the store was detached from the stream (no more appends can come).
    pub fn stop(&self) {
        {
            let mut signal = lock(&self.signal);
            signal.stop = true;
            self.wake.notify_one();
        }
        if let Some(handle) = lock(&self.thread).take() {
            if handle.join().is_err() {
                error!("the append-only file writer panicked");
            }
        }
    }
}

/// Completion of a [`Aof::switch_file`].
pub struct SwitchDone(std::sync::mpsc::Receiver<io::Result<()>>);

impl SwitchDone {
    /// Blocks until the old file holds every effect before the switch and is fsynced.
    pub fn wait(self) -> io::Result<()> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the append-only file writer stopped")))
    }
}

/// The writer thread's own state.
struct Writer {
    aof: Arc<Aof>,
    file: File,
    /// Database the file's last effect applies to (`None`: emit SELECT before the next).
    file_db: Option<u32>,
    /// Every effect below this is written.
    written: u64,
    last_fsync: Instant,
    unsynced: bool,
    scratch: DrainScratch,
    out: Vec<u8>,
    next_out: Vec<u8>,
}

impl Writer {
    fn run(mut self) {
        loop {
            let stop = self.wait();
            let started = Instant::now();
            let (switch, horizon) = {
                let mut signal = lock(&self.aof.signal);
                (signal.switch.take(), self.aof.stream.horizon())
            };
            let mut files = FileRouter {
                at_seq: switch.as_ref().map_or(u64::MAX, |s| s.at_seq),
                out: &mut self.out,
                file_db: &mut self.file_db,
                next_out: &mut self.next_out,
                next_db: None,
            };
            self.aof
                .stream
                .drain(horizon, &mut self.scratch, &mut files);
            let next_db = files.next_db;
            self.write_out();
            if let Some(switch) = switch {
                self.switch_to(switch.file, next_db);
                let _ = switch.done.send(Ok(()));
            }
            let policy = self.aof.policy();
            let due = match policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::Everysec => self.last_fsync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::No => false,
            };
            if self.unsynced && (due || stop) {
                self.fsync();
            }
            if !self.unsynced || policy != FsyncPolicy::Always {
                self.written = horizon;
                self.aof.durable.send_replace(horizon);
            }
            if stop {
                info!("append-only file flushed and synced");
                return;
            }
            if policy != FsyncPolicy::Always {
                if let Some(rest) = WRITE_INTERVAL.checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        }
    }

    /// Sleeps until there is something to do; returns true when asked to stop.
    fn wait(&mut self) -> bool {
        let mut signal = lock(&self.aof.signal);
        loop {
            if signal.stop || signal.switch.is_some() || signal.pending {
                break;
            }
            if self.aof.stream.horizon() != self.written {
                break;
            }
            self.aof.writer_sleeping.store(true, Ordering::SeqCst);
            if self.aof.stream.horizon() != self.written {
                self.aof.writer_sleeping.store(false, Ordering::SeqCst);
                break;
            }
            let timeout = if self.unsynced {
                Duration::from_secs(1)
                    .saturating_sub(self.last_fsync.elapsed())
                    .max(Duration::from_millis(1))
            } else {
                IDLE_WAKE
            };
            let (guard, timed_out) = self
                .aof
                .wake
                .wait_timeout(signal, timeout)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            signal = guard;
            self.aof.writer_sleeping.store(false, Ordering::SeqCst);
            if timed_out.timed_out() {
                break;
            }
        }
        signal.pending = false;
        signal.stop
    }

    /// Writes `self.out` to the file, retrying once a second on errors: effects are never
    /// dropped, and (under `always`) no client is told its write succeeded meanwhile.
    fn write_out(&mut self) {
        if self.out.is_empty() {
            return;
        }
        loop {
            match self.file.write_all(&self.out) {
                Ok(()) => break,
                Err(err) => {
                    if !self.aof.write_failed.swap(true, Ordering::Relaxed) {
                        error!("writing the append-only file failed: {err}; retrying");
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        if self.aof.write_failed.swap(false, Ordering::Relaxed) {
            info!("append-only file writes work again");
        }
        self.aof
            .incr_bytes
            .fetch_add(self.out.len() as u64, Ordering::Relaxed);
        self.unsynced = true;
        self.out.clear();
    }

    fn fsync(&mut self) {
        loop {
            match self.file.sync_data() {
                Ok(()) => break,
                Err(err) => {
                    if !self.aof.write_failed.swap(true, Ordering::Relaxed) {
                        error!("fsync of the append-only file failed: {err}; retrying");
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        self.last_fsync = Instant::now();
        self.unsynced = false;
    }

    /// Finishes the old file (fsync) and continues in `file` with the effects already routed
    /// to it.
    fn switch_to(&mut self, file: File, next_db: Option<u32>) {
        if self.unsynced {
            self.fsync();
        }
        self.file = file;
        self.file_db = next_db;
        self.aof.incr_bytes.store(0, Ordering::Relaxed);
        std::mem::swap(&mut self.out, &mut self.next_out);
        self.write_out();
    }
}

/// The writer's own consumer of a drain round: routes each effect to the current file's
/// buffer, or, from the sequence number of a pending switch on, to the next file's, with a
/// `SELECT` wherever the database changes within a file.
struct FileRouter<'a> {
    at_seq: u64,
    out: &'a mut Vec<u8>,
    file_db: &'a mut Option<u32>,
    next_out: &'a mut Vec<u8>,
    next_db: Option<u32>,
}

impl Consumer for FileRouter<'_> {
    fn consume(&mut self, batch: &Batch<'_>) {
        for effect in batch.iter() {
            let (buffer, current) = if effect.seq < self.at_seq {
                (&mut *self.out, &mut *self.file_db)
            } else {
                (&mut *self.next_out, &mut self.next_db)
            };
            if *current != Some(effect.db) {
                encode_select(buffer, effect.db);
                *current = Some(effect.db);
            }
            buffer.extend_from_slice(effect.bytes);
        }
    }
}
