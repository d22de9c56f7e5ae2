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

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::disk::DiskFile;
use super::health::DiskHealth;
use super::lock;
use crate::clock::unix_ms;
use crate::config::FsyncPolicy;
use crate::propagate::{encode_select, Batch, Consumer, DrainScratch, WriteStream};
use std::sync::Arc;

use crate::sync::Arc as SyncArc;

/// Least time between two writes under `everysec`/`no`: coalesces effects into fewer
/// `write` calls (Redis writes once per event-loop iteration for the same reason).
const WRITE_INTERVAL: Duration = Duration::from_millis(1);
/// Longest the writer sleeps with nothing to do (effects of lazy expiry do not wake it).
const IDLE_WAKE: Duration = Duration::from_millis(100);
/// How often a failed write is tried again: a steady cadence, so the server takes writes
/// again within this long of the disk having room.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// A request to move to a new incremental file from sequence number `at_seq` on (rewrite).
struct Switch {
    at_seq: u64,
    file: Box<dyn DiskFile>,
    done: std::sync::mpsc::Sender<io::Result<u64>>,
}

#[derive(Default)]
struct Signal {
    pending: bool,
    stop: bool,
    switch: Option<Switch>,
}

/// What connections waiting for their writes see of the writer's progress.
#[derive(Debug, Clone, Copy, Default)]
struct Durability {
    /// Every effect numbered below this is as durable as the policy promises.
    durable: u64,
    /// Bumped at every failed write or fsync: the writes waiting then are not acknowledged.
    failures: u64,
    /// A failure is not over yet (a write to retry, or a log to re-establish).
    failing: bool,
}

/// Why a batch of writes was not acknowledged: the MISCONF line to reply with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDurable(pub String);

/// No file generation is poisoned.
const NOT_POISONED: u64 = u64::MAX;

/// The running append-only file: what connections and commands talk to.
pub struct Aof {
    /// The write stream the store's shards feed while the file is on.
    pub stream: SyncArc<WriteStream>,
    policy: AtomicU8,
    durable: watch::Sender<Durability>,
    signal: Mutex<Signal>,
    wake: Condvar,
    writer_sleeping: AtomicBool,
    /// Bytes in the incremental files written since the last rewrite (plus those found at
    /// start-up), for INFO and automatic rewrites.
    pub incr_bytes: AtomicU64,
    /// Set while the last write or fsync failed and the log has not recovered from it (INFO
    /// aof_last_write_status).
    pub write_failed: AtomicBool,
    /// Generation of the newest file whose fsync failed ([`NOT_POISONED`]: none). Its unsynced
    /// effects may be gone whatever a later fsync says, so the log is trusted again only
    /// once a rewrite has moved to a later file ([`Aof::superseded`]).
    poisoned_generation: AtomicU64,
    health: Arc<DiskHealth>,
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
    /// Starts the writer on `file`, positioned at its end after `file_len` bytes;
    /// `incr_bytes` is the size of every incremental file so far (INFO, automatic rewrites).
    pub fn start(
        stream: SyncArc<WriteStream>,
        file: Box<dyn DiskFile>,
        file_len: u64,
        incr_bytes: u64,
        policy: FsyncPolicy,
        health: Arc<DiskHealth>,
    ) -> io::Result<Arc<Aof>> {
        let horizon = stream.horizon();
        let (durable, _) = watch::channel(Durability {
            durable: horizon,
            ..Durability::default()
        });
        let aof = Arc::new(Aof {
            stream,
            policy: AtomicU8::new(policy_code(policy)),
            durable,
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            writer_sleeping: AtomicBool::new(false),
            incr_bytes: AtomicU64::new(incr_bytes),
            write_failed: AtomicBool::new(false),
            poisoned_generation: AtomicU64::new(NOT_POISONED),
            health,
            thread: Mutex::new(None),
        });
        let writer = Writer {
            aof: Arc::clone(&aof),
            file,
            file_len,
            generation: 0,
            file_poisoned: false,
            write_error: false,
            retry_at: None,
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
        if policy != FsyncPolicy::Everysec {
            self.health.set_unsynced_since(None);
        }
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
    /// Connections await this before sending the replies of a batch that wrote. `Err` when
    /// a write or fsync failed before they were: the batch's writes must not be acknowledged.
    pub async fn wait_durable(&self) -> Result<(), NotDurable> {
        let target = self.stream.horizon();
        let start = *self.durable.borrow();
        if start.durable >= target {
            return Ok(());
        }
        if start.failing {
            return Err(self.not_durable());
        }
        let mut receiver = self.durable.subscribe();
        self.notify();
        // The sender lives as long as `self`; an error cannot happen while we borrow it.
        let outcome = receiver
            .wait_for(|now| now.durable >= target || now.failures != start.failures)
            .await
            .map(|now| *now);
        match outcome {
            Ok(now) if now.durable >= target => Ok(()),
            _ => Err(self.not_durable()),
        }
    }

    fn not_durable(&self) -> NotDurable {
        let text = self.health.write_refusal(unix_ms()).map_or_else(
            || "MISCONF Errors writing to the AOF file".to_owned(),
            |text| text.into_owned(),
        );
        NotDurable(text)
    }

    /// Asks the writer to put every effect numbered from the current horizon on into `file`.
    /// Call with every shard locked (inside [`crate::store::Store::with_all_locked`]), so that
    /// the horizon is exactly the point in time of a snapshot. Wait on the returned
    /// [`SwitchDone`] (after releasing the locks) for the old file to be finished.
    pub fn switch_file(&self, file: Box<dyn DiskFile>) -> SwitchDone {
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

    /// True while a failed fsync (or an unfinished file left behind by a switch) means the
    /// log must be rewritten into fresh files before it is trusted again.
    pub fn needs_rewrite(&self) -> bool {
        self.poisoned_generation.load(Ordering::SeqCst) != NOT_POISONED
    }

    /// A rewrite whose switch moved the log to file `generation` is complete and durable
    /// (its base fsynced, the manifest naming only it and later files): effects of earlier
    /// files no longer matter, so a failure in one of them is over.
    pub fn superseded(&self, generation: u64) {
        let poisoned = self.poisoned_generation.load(Ordering::SeqCst);
        if poisoned != NOT_POISONED
            && poisoned < generation
            && self
                .poisoned_generation
                .compare_exchange(poisoned, NOT_POISONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            warn!("the append-only file was re-established in new files: accepting writes again");
            {
                let mut signal = lock(&self.signal);
                signal.pending = true;
                self.wake.notify_one();
            }
        }
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
pub struct SwitchDone(std::sync::mpsc::Receiver<io::Result<u64>>);

impl SwitchDone {
    /// Blocks until the writer has moved to the new file; returns the new file's generation
    /// (for [`Aof::superseded`]). The old file is complete and synced unless it failed, in
    /// which case [`Aof::needs_rewrite`] says so until the rewrite completes.
    pub fn wait(self) -> io::Result<u64> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the append-only file writer stopped")))
    }
}

/// The writer thread's own state.
struct Writer {
    aof: Arc<Aof>,
    file: Box<dyn DiskFile>,
    /// Bytes of the current file written whole: a failed append is cut back to this.
    file_len: u64,
    /// Generation of the current file (each switch moves to the next).
    generation: u64,
    /// The current file's fsync failed: nothing more is written to it.
    file_poisoned: bool,
    /// The last write failed; `out` waits for [`Writer::retry_at`].
    write_error: bool,
    /// When a failed write is tried again.
    retry_at: Option<Instant>,
    /// Database the file's last effect applies to (`None`: emit SELECT before the next).
    file_db: Option<u32>,
    /// Every effect below this has been drained from the stream.
    written: u64,
    last_fsync: Instant,
    /// Bytes were written since the last fsync.
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
            self.written = horizon;
            if stop {
                // A last try for a write that failed, whatever the retry cadence says.
                self.retry_at = None;
            }
            let policy = self.aof.policy();
            if policy == FsyncPolicy::Everysec
                && (!self.out.is_empty() || !self.next_out.is_empty())
                && self.aof.health.unsynced_since().is_none()
            {
                self.aof.health.set_unsynced_since(Some(unix_ms()));
            }
            self.write_out();
            if let Some(switch) = switch {
                let generation = self.switch_to(switch.file, next_db);
                let _ = switch.done.send(Ok(generation));
            }
            let due = match policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::Everysec => self.last_fsync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::No => false,
            };
            if self.unsynced && (due || stop) && !self.file_poisoned {
                self.fsync();
            }
            self.publish(horizon, policy);
            if stop {
                if self.out.is_empty() && !self.aof.needs_rewrite() {
                    info!("append-only file flushed and synced");
                } else {
                    error!("stopping with append-only file effects that could not be made durable");
                }
                return;
            }
            if policy != FsyncPolicy::Always {
                if let Some(rest) = WRITE_INTERVAL.checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        }
    }

    /// Tells waiting connections how far the log is durable, and the write gate whether the
    /// log is healthy.
    fn publish(&mut self, horizon: u64, policy: FsyncPolicy) {
        let failing = self.write_error || self.aof.needs_rewrite();
        if !failing {
            if self.aof.write_failed.swap(false, Ordering::SeqCst) {
                warn!("append-only file writes recovered: accepting writes again");
            }
            self.aof.health.clear_aof_error();
        }
        let complete = !failing && self.out.is_empty();
        if complete && !self.unsynced {
            self.aof.health.set_unsynced_since(None);
        }
        let durable = complete && (!self.unsynced || policy != FsyncPolicy::Always);
        self.aof.durable.send_if_modified(|now| {
            let before = *now;
            now.failing = failing;
            if durable {
                now.durable = horizon;
            }
            before.durable != now.durable || before.failing != now.failing
        });
    }

    /// Records a failed write or fsync: writes are refused and the connections waiting for
    /// theirs are told they failed.
    fn fail(&mut self, err: &io::Error) {
        self.aof.write_failed.store(true, Ordering::SeqCst);
        self.aof.health.set_aof_error(err);
        self.aof.durable.send_modify(|now| {
            now.failures += 1;
            now.failing = true;
        });
    }

    /// Gives up on the current file: its fsync failed (or it misses effects), so only a
    /// rewrite into fresh files can make the log trustworthy again. What it would still have
    /// received is in memory, and the rewrite's base will hold it.
    fn poison(&mut self, err: &io::Error) {
        self.file_poisoned = true;
        self.unsynced = false;
        self.write_error = false;
        self.retry_at = None;
        self.out.clear();
        self.aof
            .poisoned_generation
            .store(self.generation, Ordering::SeqCst);
        self.fail(err);
    }

    /// Sleeps until there is something to do; returns true when asked to stop.
    fn wait(&mut self) -> bool {
        let mut signal = lock(&self.aof.signal);
        loop {
            if signal.stop || signal.switch.is_some() || signal.pending {
                break;
            }
            if self.retry_at.is_some_and(|at| Instant::now() >= at) {
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
            let mut timeout = if self.unsynced {
                Duration::from_secs(1)
                    .saturating_sub(self.last_fsync.elapsed())
                    .max(Duration::from_millis(1))
            } else {
                IDLE_WAKE
            };
            if let Some(at) = self.retry_at {
                timeout = timeout.min(at.saturating_duration_since(Instant::now()));
            }
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

    /// Appends `self.out` to the file. A failed or short write is cut back off the file and
    /// retried whole on a steady cadence ([`RETRY_INTERVAL`]); meanwhile writes are refused.
    /// If the cut fails too, the file is given up ([`Writer::poison`]).
    fn write_out(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if self.file_poisoned {
            self.out.clear();
            return;
        }
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        match self.file.write_all(&self.out) {
            Ok(()) => {
                let written = self.out.len() as u64;
                self.file_len += written;
                self.aof.incr_bytes.fetch_add(written, Ordering::Relaxed);
                self.unsynced = true;
                self.out.clear();
                self.retry_at = None;
                self.write_error = false;
            }
            Err(err) => {
                if let Err(cut) = self.file.truncate(self.file_len) {
                    error!(
                        "writing the append-only file failed ({err}) and cutting the partial \
                         write back off failed too ({cut}): the log will be rewritten"
                    );
                    self.poison(&cut);
                    return;
                }
                if !self.write_error {
                    error!(
                        "writing the append-only file failed: {err}; writes are refused until \
                         it works again (retrying every {} ms)",
                        RETRY_INTERVAL.as_millis()
                    );
                }
                self.write_error = true;
                self.retry_at = Some(Instant::now() + RETRY_INTERVAL);
                self.fail(&err);
            }
        }
    }

    /// Fsyncs the current file. A failure is never retried on this file: Linux may have
    /// dropped the dirty pages it could not write and marked them clean, so a later success
    /// would say nothing about them (PostgreSQL's "fsyncgate").
    fn fsync(&mut self) {
        match self.file.sync_data() {
            Ok(()) => {
                self.last_fsync = Instant::now();
                self.unsynced = false;
            }
            Err(err) => {
                error!(
                    "fsync of the append-only file failed: {err}; the file is no longer trusted, \
                     and writes are refused until the log is rewritten into new files"
                );
                self.poison(&err);
            }
        }
    }

    /// Finishes the old file (fsync) and continues in `file` with the effects already routed
    /// to it. Returns the new file's generation. An old file that failed, or that still
    /// misses effects a failed write left in `out`, stays poisoned: the rewrite's base (which
    /// holds every effect before the switch) supersedes it once complete.
    fn switch_to(&mut self, file: Box<dyn DiskFile>, next_db: Option<u32>) -> u64 {
        if !self.file_poisoned && !self.out.is_empty() {
            let err = io::Error::other("effects not yet written when the file was switched");
            warn!("{err}: they are in the rewrite's base");
            self.poison(&err);
        }
        if self.unsynced && !self.file_poisoned {
            self.fsync();
        }
        self.out.clear();
        self.file = file;
        self.file_len = 0;
        self.generation += 1;
        self.file_poisoned = false;
        self.write_error = false;
        self.retry_at = None;
        self.unsynced = false;
        self.file_db = next_db;
        self.aof.incr_bytes.store(0, Ordering::Relaxed);
        std::mem::swap(&mut self.out, &mut self.next_out);
        self.write_out();
        self.generation
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
