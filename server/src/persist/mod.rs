//! Persistence: snapshots (SAVE/BGSAVE, and the base of the append-only file), the
//! append-only log with its rewrite, and recovery at start-up.
//!
//! - [`snapshot_format`]: the versioned, checksummed snapshot file format.
//! - [`snapshot`]: point-in-time snapshots of the live store, and loading them.
//! - [`aof`]: the writer thread, the consumer that drains the write stream
//!   ([`crate::propagate`]) into the log (group commit, fsync policies, file switch at
//!   rewrite).
//! - [`aof_manifest`]: the AOF directory's file names and its manifest.
//! - [`aof_replay`]: reading logs back at start-up, torn tails versus corruption.
//! - [`aof_check`]: `check-aof`, the offline check and repair of the AOF files.
//! - `aof_lifecycle`: turning the log on, rewriting it (also to recover from a failed fsync),
//!   turning it off.
//! - `startup`: loading the data at start-up and resuming the log.
//! - [`aof_error`]: the error those three return.
//! - [`disk`]: the file-system seam, and the simulated faulty disk of the tests.
//! - [`fsutil`]: atomic file replacement.
//! - [`health`]: whether the disk lets the server accept writes (Redis's `MISCONF`).
//!
//! [`Persistence`] ties them together: configuration, INFO state, the background jobs.

pub mod aof;
pub mod aof_check;
pub mod aof_error;
mod aof_lifecycle;
pub mod aof_manifest;
pub mod aof_replay;
pub mod disk;
pub mod fsutil;
pub mod health;
pub mod snapshot;
pub mod snapshot_format;
mod startup;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use tracing::{error, info, warn};

use self::aof::Aof;
use self::aof_manifest::Manifest;
use self::aof_replay::log_limits;
use self::disk::Disk;
use self::health::DiskHealth;
use crate::clock::unix_ms;
use crate::config::{Config, FsyncPolicy, SaveRules};
use crate::store::Store;
use std::sync::Arc;

/// Redis waits this long before retrying a failed automatic BGSAVE.
const BGSAVE_RETRY_DELAY_MS: u64 = 5_000;

/// How often a log whose fsync failed is rewritten into new files while it keeps failing.
const RECOVERY_RETRY_MS: u64 = 1_000;

/// Server-wide persistence state and configuration.
pub struct Persistence {
    /// Every write, fsync, rename and directory fsync goes through this (faults are injected
    /// here in tests).
    disk: Arc<dyn Disk>,
    /// Whether the disk lets writes be accepted (read by dispatch on every write).
    pub health: Arc<DiskHealth>,
    /// `stop-writes-on-bgsave-error`.
    stop_writes_on_bgsave_error: AtomicBool,
    /// When the last rewrite to re-establish a failed log started (Unix ms).
    last_recovery_try_ms: AtomicU64,
    /// `--dir` (CONFIG SET dir while the log is off).
    dir: Mutex<PathBuf>,
    /// `--dbfilename` (CONFIG SET dbfilename).
    dbfilename: Mutex<String>,
    /// `--appendfilename`: prefix of the log's file names.
    pub aof_prefix: String,
    /// `--appenddirname`.
    pub aof_dirname: String,
    /// Snapshot rules (CONFIG SET save).
    save_rules: Mutex<SaveRules>,
    /// Parser limits for replaying the log: the server's own `proto-max-bulk-len`, so every
    /// record it accepted from a client can be read back.
    log_limits: protocol::parse::Limits,
    /// `appendfsync`.
    fsync: Mutex<FsyncPolicy>,
    /// `auto-aof-rewrite-percentage`.
    pub auto_rewrite_percentage: AtomicU64,
    /// `auto-aof-rewrite-min-size`.
    pub auto_rewrite_min_size: AtomicU64,
    aof: Mutex<Option<Arc<Aof>>>,
    /// Writes since the last successful snapshot (`rdb_changes_since_last_save`).
    pub dirty: AtomicU64,
    /// Unix seconds of the last successful snapshot (LASTSAVE).
    pub last_save_secs: AtomicU64,
    last_bgsave_try_ms: AtomicU64,
    /// Outcome of the last snapshot.
    pub last_bgsave_ok: AtomicBool,
    /// A background snapshot is being written.
    pub bgsave_in_progress: AtomicBool,
    /// A log rewrite is running.
    pub rewrite_in_progress: AtomicBool,
    /// A rewrite was asked for while a snapshot ran; the cron starts it afterwards.
    pub rewrite_scheduled: AtomicBool,
    /// Outcome of the last rewrite.
    pub last_rewrite_ok: AtomicBool,
    /// Set while data is loaded at start-up.
    pub loading: AtomicBool,
    /// Size of the log right after the last rewrite (`aof_base_size`).
    pub aof_base_size: AtomicU64,
    /// Size of the current base file.
    base_file_bytes: AtomicU64,
    /// Serialises snapshot walks: one BGSAVE, SAVE or rewrite at a time.
    job: Mutex<()>,
    manifest: Mutex<Option<Manifest>>,
    /// Bumped whenever the log is turned on or off, so connections can cache [`Self::aof`].
    pub aof_generation: AtomicU64,
    /// Set once SHUTDOWN has dealt with the final snapshot (saved it, or NOSAVE).
    pub final_snapshot_handled: AtomicBool,
}

/// Locks a std mutex, ignoring poisoning (every critical section here leaves its data
/// consistent). Shared by the persistence modules.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Persistence {
    /// State for `config` (nothing is loaded or started yet; see [`Persistence::start`]).
    pub fn new(config: &Config, disk: Arc<dyn Disk>) -> Self {
        Persistence {
            disk,
            health: Arc::new(DiskHealth::default()),
            stop_writes_on_bgsave_error: AtomicBool::new(config.stop_writes_on_bgsave_error),
            last_recovery_try_ms: AtomicU64::new(0),
            dir: Mutex::new(config.dir.clone()),
            dbfilename: Mutex::new(config.dbfilename.clone()),
            aof_prefix: config.appendfilename.clone(),
            aof_dirname: config.appenddirname.clone(),
            save_rules: Mutex::new(config.save.clone()),
            log_limits: protocol::parse::Limits {
                max_bulk_len: config.proto_max_bulk_len.max(log_limits().max_bulk_len),
                ..log_limits()
            },
            fsync: Mutex::new(config.appendfsync),
            auto_rewrite_percentage: AtomicU64::new(config.auto_aof_rewrite_percentage),
            auto_rewrite_min_size: AtomicU64::new(config.auto_aof_rewrite_min_size),
            aof: Mutex::new(None),
            dirty: AtomicU64::new(0),
            last_save_secs: AtomicU64::new(unix_ms() / 1000),
            last_bgsave_try_ms: AtomicU64::new(0),
            last_bgsave_ok: AtomicBool::new(true),
            bgsave_in_progress: AtomicBool::new(false),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            last_rewrite_ok: AtomicBool::new(true),
            loading: AtomicBool::new(false),
            aof_base_size: AtomicU64::new(0),
            base_file_bytes: AtomicU64::new(0),
            job: Mutex::new(()),
            manifest: Mutex::new(None),
            aof_generation: AtomicU64::new(0),
            final_snapshot_handled: AtomicBool::new(false),
        }
    }

    /// The data directory (`dir`).
    pub fn dir(&self) -> PathBuf {
        lock(&self.dir).clone()
    }

    /// The snapshot file name (`dbfilename`).
    pub fn dbfilename(&self) -> String {
        lock(&self.dbfilename).clone()
    }

    /// CONFIG SET dir: the directory must exist; refused while the log is on, whose files
    /// live there (Redis reopens them; we keep one place for one log).
    pub fn set_dir(&self, dir: PathBuf) -> Result<(), String> {
        if !dir.is_dir() {
            return Err(format!("No such directory: {}", dir.display()));
        }
        if self.aof_enabled() {
            return Err("dir can't be changed while appendonly is yes".to_owned());
        }
        *lock(&self.dir) = dir;
        Ok(())
    }

    /// CONFIG SET dbfilename: a plain file name, as Redis requires.
    pub fn set_dbfilename(&self, name: String) -> Result<(), String> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err("dbfilename can't be a path, just a filename".to_owned());
        }
        *lock(&self.dbfilename) = name;
        Ok(())
    }

    /// The directory of the log's files.
    pub fn aof_dir(&self) -> PathBuf {
        self.dir().join(&self.aof_dirname)
    }

    /// Path of the snapshot file.
    pub fn snapshot_path(&self) -> PathBuf {
        self.dir().join(self.dbfilename())
    }

    /// The running log, if the append-only file is on.
    pub fn aof(&self) -> Option<Arc<Aof>> {
        lock(&self.aof).clone()
    }

    /// True while the append-only file is on.
    pub fn aof_enabled(&self) -> bool {
        lock(&self.aof).is_some()
    }

    /// Current snapshot rules.
    pub fn save_rules(&self) -> SaveRules {
        lock(&self.save_rules).clone()
    }

    /// CONFIG SET save.
    pub fn set_save_rules(&self, rules: SaveRules) {
        *lock(&self.save_rules) = rules;
        self.refresh_snapshot_gate();
    }

    /// `stop-writes-on-bgsave-error`.
    pub fn stop_writes_on_bgsave_error(&self) -> bool {
        self.stop_writes_on_bgsave_error.load(Ordering::SeqCst)
    }

    /// CONFIG SET stop-writes-on-bgsave-error.
    pub fn set_stop_writes_on_bgsave_error(&self, on: bool) {
        self.stop_writes_on_bgsave_error.store(on, Ordering::SeqCst);
        self.refresh_snapshot_gate();
    }

    /// Refuses writes while the last snapshot failed, if `stop-writes-on-bgsave-error` is on
    /// and save rules exist (Redis refuses only then).
    fn refresh_snapshot_gate(&self) {
        let refuses = !self.last_bgsave_ok.load(Ordering::SeqCst)
            && self.stop_writes_on_bgsave_error()
            && !lock(&self.save_rules).0.is_empty();
        self.health.set_snapshot_refuses(refuses);
    }

    /// Current `appendfsync`.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        *lock(&self.fsync)
    }

    /// CONFIG SET appendfsync.
    pub fn set_fsync_policy(&self, policy: FsyncPolicy) {
        *lock(&self.fsync) = policy;
        if let Some(aof) = self.aof() {
            aof.set_policy(policy);
        }
    }

    /// Total size of the log files (base + incremental), for INFO and automatic rewrites.
    pub fn aof_current_size(&self) -> u64 {
        self.aof().map_or(0, |aof| {
            self.base_file_bytes.load(Ordering::Relaxed) + aof.incr_bytes.load(Ordering::Relaxed)
        })
    }

    /// Writes a point-in-time snapshot to the snapshot file (SAVE, BGSAVE, shutdown).
    /// `Err` with Redis's text when another snapshot is running.
    pub fn save(&self, store: &Store) -> Result<(), String> {
        let Ok(_job) = self.job.try_lock() else {
            return Err("ERR Background save already in progress".to_owned());
        };
        self.save_locked(store)
    }

    fn save_locked(&self, store: &Store) -> Result<(), String> {
        let dirty_before = self.dirty.load(Ordering::SeqCst);
        let started_ms = unix_ms();
        self.last_bgsave_try_ms.store(started_ms, Ordering::Relaxed);
        snapshot::begin(store, |_| {});
        match snapshot::write(
            &*self.disk,
            store,
            &self.dir(),
            &self.dbfilename(),
            started_ms,
        ) {
            Ok(_) => {
                self.dirty.fetch_sub(
                    dirty_before.min(self.dirty.load(Ordering::SeqCst)),
                    Ordering::SeqCst,
                );
                self.last_save_secs
                    .store(started_ms / 1000, Ordering::SeqCst);
                self.last_bgsave_ok.store(true, Ordering::SeqCst);
                self.refresh_snapshot_gate();
                Ok(())
            }
            Err(err) => {
                self.last_bgsave_ok.store(false, Ordering::SeqCst);
                self.refresh_snapshot_gate();
                error!("snapshot failed: {err}");
                Err(format!("ERR snapshot failed: {err}"))
            }
        }
    }

    /// Starts a background snapshot; `Err` with Redis's text if one is already running.
    pub fn bgsave(self: &Arc<Self>, store: &Arc<Store>) -> Result<(), String> {
        if self.bgsave_in_progress.swap(true, Ordering::SeqCst) {
            return Err("ERR Background save already in progress".to_owned());
        }
        if self.rewrite_in_progress.load(Ordering::SeqCst) {
            self.bgsave_in_progress.store(false, Ordering::SeqCst);
            return Err("ERR Background append only file rewriting in progress".to_owned());
        }
        let (persist, store) = (Arc::clone(self), Arc::clone(store));
        let spawned = std::thread::Builder::new()
            .name("kv-bgsave".to_owned())
            .spawn(move || {
                info!("background saving started");
                let _job = lock(&persist.job);
                let result = persist.save_locked(&store);
                persist.bgsave_in_progress.store(false, Ordering::SeqCst);
                if result.is_ok() {
                    info!("background saving terminated with success");
                }
            });
        spawned.map(|_| ()).map_err(|err| {
            self.bgsave_in_progress.store(false, Ordering::SeqCst);
            format!("ERR could not start a background save: {err}")
        })
    }

    /// Background duties, about once a second: snapshot rules, scheduled and automatic
    /// rewrites.
    pub fn cron(self: &Arc<Self>, store: &Arc<Store>) {
        if self.loading.load(Ordering::Relaxed) {
            return;
        }
        let now = unix_ms();
        let busy = self.bgsave_in_progress.load(Ordering::SeqCst)
            || self.rewrite_in_progress.load(Ordering::SeqCst);
        if busy {
            return;
        }
        if self.rewrite_scheduled.swap(false, Ordering::SeqCst) && self.aof_enabled() {
            self.spawn_rewrite(store);
            return;
        }
        if self.aof().is_some_and(|aof| aof.needs_rewrite())
            && now.saturating_sub(self.last_recovery_try_ms.load(Ordering::Relaxed))
                >= RECOVERY_RETRY_MS
        {
            // The log failed (an fsync, or a write that could not be taken back): rewrite it
            // into new files from memory, on a steady cadence until that works.
            self.last_recovery_try_ms.store(now, Ordering::Relaxed);
            warn!("re-establishing the append-only file in new files after a failure");
            self.spawn_rewrite(store);
            return;
        }
        let dirty = self.dirty.load(Ordering::Relaxed);
        let since_save = now / 1000 - self.last_save_secs.load(Ordering::Relaxed).min(now / 1000);
        let retry_ok = self.last_bgsave_ok.load(Ordering::Relaxed)
            || now.saturating_sub(self.last_bgsave_try_ms.load(Ordering::Relaxed))
                > BGSAVE_RETRY_DELAY_MS;
        let rule_met = lock(&self.save_rules)
            .0
            .iter()
            .any(|&(seconds, changes)| dirty >= changes && since_save >= seconds);
        if rule_met && retry_ok {
            info!(changes = dirty, "save rule met: background saving");
            if let Err(err) = self.bgsave(store) {
                warn!("{err}");
            }
            return;
        }
        let percentage = self.auto_rewrite_percentage.load(Ordering::Relaxed);
        if percentage > 0 && self.aof_enabled() {
            let current = self.aof_current_size();
            let base = self.aof_base_size.load(Ordering::Relaxed).max(1);
            let min = self.auto_rewrite_min_size.load(Ordering::Relaxed);
            let growth = current.saturating_sub(base) * 100 / base;
            if current >= min && growth >= percentage {
                info!(
                    size = current,
                    base, growth, "automatic append-only file rewrite"
                );
                self.spawn_rewrite(store);
            }
        }
    }

    /// The last step of a shutdown, once clients are gone: flushes and syncs the log, and
    /// saves a snapshot if save rules exist (unless SHUTDOWN already handled that), as Redis
    /// does on SIGTERM.
    pub fn shutdown(&self, store: &Store) -> Result<(), String> {
        if self
            .aof()
            .is_some_and(|aof| aof.needs_rewrite() || aof.write_failed.load(Ordering::SeqCst))
        {
            // The log failed (an fsync, or writes still waiting for a retry): one last try to
            // leave a log that holds everything, rewritten from memory.
            info!("rewriting the append-only file before exiting, after a failure");
            if let Err(err) = self.rewrite(store) {
                error!("the append-only file could not be re-established before exiting: {err:#}");
            }
        }
        if let Some(aof) = lock(&self.aof).take() {
            store.attach_stream(None);
            aof.stop();
        }
        let save = !self.final_snapshot_handled.load(Ordering::SeqCst)
            && !lock(&self.save_rules).0.is_empty();
        if save {
            info!("saving the final snapshot before exiting");
            let _job = lock(&self.job);
            self.save_locked(store)?;
        }
        Ok(())
    }

    /// A blocking SAVE that waits for a running background snapshot instead of failing
    /// (SHUTDOWN SAVE).
    pub fn save_waiting(&self, store: &Store) -> Result<(), String> {
        let _job = lock(&self.job);
        self.save_locked(store)
    }
}
