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
//! - [`aof_error`]: the error those three return.
//! - [`disk`]: the file-system seam, and the simulated faulty disk of the tests.
//! - [`fsutil`]: atomic file replacement.
//! - [`health`]: whether the disk lets the server accept writes (Redis's `MISCONF`).
//!
//! [`Persistence`] ties them together: configuration, INFO state, the background jobs.

pub mod aof;
pub mod aof_check;
pub mod aof_error;
pub mod aof_manifest;
pub mod aof_replay;
pub mod disk;
pub mod fsutil;
pub mod health;
pub mod snapshot;
pub mod snapshot_format;

use protocol::Argv;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tracing::{error, info, warn};

use self::aof::Aof;
use self::aof_manifest::{base_name, incr_name, FileKind, Manifest, ManifestEntry};
use self::aof_replay::{log_limits, replay_log_with_limits};
use self::disk::{Disk, DiskFile};
use self::health::DiskHealth;
use crate::clock::unix_ms;
use crate::config::{Config, FsyncPolicy, SaveRules};
use crate::propagate::WriteStream;
use crate::store::{attach_stream, Store};
use std::sync::Arc;

use crate::sync::Arc as SyncArc;

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

    /// Loads data at start-up: with the log on, the manifest's base and incremental files
    /// (or, without a manifest, the snapshot file, from which a first base is made); with it
    /// off, the snapshot file. Then starts the log if configured. `apply` runs one logged
    /// command against the store. Errors name the file and byte offset; the server must not
    /// start on them.
    pub fn start(
        &self,
        store: &Store,
        appendonly: bool,
        apply: &mut dyn FnMut(Argv<'_>) -> Result<(), String>,
    ) -> anyhow::Result<()> {
        self.loading.store(true, Ordering::SeqCst);
        let result = self.load_and_start(store, appendonly, apply);
        self.loading.store(false, Ordering::SeqCst);
        result
    }

    fn load_and_start(
        &self,
        store: &Store,
        appendonly: bool,
        apply: &mut dyn FnMut(Argv<'_>) -> Result<(), String>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let now = unix_ms();
        let aof_dir = self.aof_dir();
        for dir in [&self.dir(), &aof_dir] {
            match fsutil::remove_stale_temp_files(dir) {
                Ok(0) => {}
                Ok(removed) => {
                    info!(dir = %dir.display(), removed, "removed temporary files of an interrupted save")
                }
                Err(err) => warn!(dir = %dir.display(), "could not clean temporary files: {err}"),
            }
        }
        let manifest = if appendonly {
            Manifest::load(&aof_dir, &self.aof_prefix).map_err(|err| anyhow::anyhow!("{err}"))?
        } else {
            None
        };
        match manifest {
            Some(manifest) => {
                let incr_bytes = self.load_log(store, &aof_dir, &manifest, apply)?;
                let incr = manifest.incrs.last().cloned();
                *lock(&self.manifest) = Some(manifest);
                match incr {
                    Some(incr) => self.resume_aof(store, &aof_dir, &incr.name, incr_bytes)?,
                    None => self.create_aof(store)?,
                }
            }
            None => {
                let snapshot = self.snapshot_path();
                if snapshot.exists() {
                    let stats =
                        snapshot::load(store, &snapshot, Some(now)).map_err(anyhow::Error::msg)?;
                    info!(keys = stats.entries, "data loaded from the snapshot file");
                }
                if appendonly {
                    self.create_aof(store)?;
                }
            }
        }
        info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "start-up loading done"
        );
        Ok(())
    }

    /// Replays the base and incremental files of `manifest`. Returns the total size of the
    /// incremental files.
    fn load_log(
        &self,
        store: &Store,
        aof_dir: &Path,
        manifest: &Manifest,
        apply: &mut dyn FnMut(Argv<'_>) -> Result<(), String>,
    ) -> anyhow::Result<u64> {
        if let Some(base) = &manifest.base {
            let path = aof_dir.join(&base.name);
            let stats = snapshot::load(store, &path, None).map_err(anyhow::Error::msg)?;
            self.base_file_bytes.store(stats.bytes, Ordering::Relaxed);
        }
        // Only the last non-empty log can have a torn tail: earlier ones were complete and
        // synced before the next one received anything.
        let sizes: Vec<u64> = manifest
            .incrs
            .iter()
            .map(|incr| fs::metadata(aof_dir.join(&incr.name)).map_or(0, |m| m.len()))
            .collect();
        let last_nonempty = sizes.iter().rposition(|&size| size > 0);
        let mut total = 0;
        for (index, incr) in manifest.incrs.iter().enumerate() {
            let path = aof_dir.join(&incr.name);
            if !path.exists() {
                anyhow::bail!("{}: listed in the manifest but missing", path.display());
            }
            let may_truncate = Some(index) == last_nonempty;
            // replay_log warns about a truncated torn tail itself.
            let stats = replay_log_with_limits(&path, self.log_limits, may_truncate, &mut *apply)
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            info!(file = %incr.name, commands = stats.commands, "log replayed");
            total += fs::metadata(&path).map_or(0, |m| m.len());
        }
        self.aof_base_size.store(
            self.base_file_bytes.load(Ordering::Relaxed) + total,
            Ordering::Relaxed,
        );
        Ok(total)
    }

    /// Starts logging into an existing incremental file (after a load).
    fn resume_aof(
        &self,
        store: &Store,
        aof_dir: &Path,
        incr: &str,
        incr_bytes: u64,
    ) -> anyhow::Result<()> {
        let path = aof_dir.join(incr);
        let opened = self
            .disk
            .open_append(&path)
            .and_then(|file| Ok((file, fs::metadata(&path)?.len())));
        let (file, file_len) =
            opened.map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
        let stream = SyncArc::new(WriteStream::new());
        let policy = self.fsync_policy();
        let health = Arc::clone(&self.health);
        let aof = Aof::start(
            SyncArc::clone(&stream),
            file,
            file_len,
            incr_bytes,
            policy,
            health,
        )?;
        store.attach_stream(Some(&stream));
        *lock(&self.aof) = Some(aof);
        self.aof_generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Turns the log on from the current state: a new base (a snapshot) and an empty
    /// incremental file, then the manifest naming them. Runs in the caller's thread.
    pub fn create_aof(&self, store: &Store) -> anyhow::Result<()> {
        let _job = lock(&self.job);
        if self.aof_enabled() {
            return Ok(());
        }
        let aof_dir = self.aof_dir();
        fs::create_dir_all(&aof_dir)?;
        let previous =
            Manifest::load(&aof_dir, &self.aof_prefix).map_err(|err| anyhow::anyhow!("{err}"))?;
        let (base_seq, incr_seq) = previous
            .as_ref()
            .map_or((1, 1), |m| (m.next_base_seq(), m.next_incr_seq()));
        let incr = incr_name(&self.aof_prefix, incr_seq);
        let file = create_empty(&*self.disk, &aof_dir, &incr)?;
        let stream = SyncArc::new(WriteStream::new());
        let policy = self.fsync_policy();
        let health = Arc::clone(&self.health);
        let aof = Aof::start(SyncArc::clone(&stream), file, 0, 0, policy, health)?;
        snapshot::begin(store, |shards| attach_stream(shards, Some(&stream)));
        *lock(&self.aof) = Some(Arc::clone(&aof));
        self.aof_generation.fetch_add(1, Ordering::SeqCst);
        self.rewrite_in_progress.store(true, Ordering::SeqCst);
        let base = base_name(&self.aof_prefix, base_seq);
        let result = snapshot::write(&*self.disk, store, &aof_dir, &base, unix_ms());
        self.rewrite_in_progress.store(false, Ordering::SeqCst);
        let stats = match result {
            Ok(stats) => stats,
            Err(err) => {
                self.last_rewrite_ok.store(false, Ordering::SeqCst);
                anyhow::bail!("could not write the first base of the append-only file: {err}");
            }
        };
        let manifest = base_and_incr(base, base_seq, incr, incr_seq);
        manifest
            .store(&*self.disk, &aof_dir, &self.aof_prefix)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        if let Some(previous) = previous {
            remove_files(&*self.disk, &aof_dir, &previous, &manifest);
        }
        *lock(&self.manifest) = Some(manifest);
        self.base_file_bytes.store(stats.bytes, Ordering::Relaxed);
        self.aof_base_size.store(stats.bytes, Ordering::Relaxed);
        self.last_rewrite_ok.store(true, Ordering::SeqCst);
        info!(keys = stats.entries, "append-only file created");
        Ok(())
    }

    /// Turns the log off (CONFIG SET appendonly no): detaches the store from the write
    /// stream, then flushes and syncs.
    pub fn disable_aof(&self, store: &Store) {
        let _job = lock(&self.job);
        let Some(aof) = lock(&self.aof).take() else {
            return;
        };
        store.attach_stream(None);
        self.aof_generation.fetch_add(1, Ordering::SeqCst);
        aof.stop();
        // Without the log, its failures no longer refuse writes (as in Redis).
        self.health.clear_aof_error();
        self.health.set_unsynced_since(None);
    }

    /// Compacts the log: a new base from a point-in-time snapshot, a new incremental file
    /// from that point on, and a manifest switched over only once both are complete. A crash
    /// at any step leaves a manifest whose files hold every acknowledged write.
    pub fn rewrite(&self, store: &Store) -> anyhow::Result<()> {
        let _job = lock(&self.job);
        let Some(aof) = self.aof() else {
            anyhow::bail!("the append-only file is off");
        };
        self.rewrite_in_progress.store(true, Ordering::SeqCst);
        let result = self.rewrite_locked(store, &aof);
        self.rewrite_in_progress.store(false, Ordering::SeqCst);
        self.last_rewrite_ok.store(result.is_ok(), Ordering::SeqCst);
        if let Err(err) = &result {
            error!("append-only file rewrite failed: {err:#}");
        }
        result
    }

    fn rewrite_locked(&self, store: &Store, aof: &Aof) -> anyhow::Result<()> {
        let started = Instant::now();
        let aof_dir = self.aof_dir();
        let Some(old) = lock(&self.manifest).clone() else {
            anyhow::bail!("no manifest loaded");
        };
        // 1. A new, empty incremental file, listed in the manifest *before* any record goes
        //    to it: from now on the old base + all incremental files replay everything.
        let incr_seq = old.next_incr_seq();
        let incr = incr_name(&self.aof_prefix, incr_seq);
        let file = create_empty(&*self.disk, &aof_dir, &incr)?;
        let mut during = old.clone();
        during.incrs.push(ManifestEntry {
            name: incr.clone(),
            seq: incr_seq,
            kind: FileKind::Incr,
        });
        during
            .store(&*self.disk, &aof_dir, &self.aof_prefix)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        *lock(&self.manifest) = Some(during);
        // 2. At one instant: the snapshot begins and records from then on go to the new file.
        let mut switched = None;
        snapshot::begin(store, |_| switched = Some(aof.switch_file(file)));
        // 3. The new base.
        let base_seq = old.next_base_seq();
        let base = base_name(&self.aof_prefix, base_seq);
        let stats = snapshot::write(&*self.disk, store, &aof_dir, &base, unix_ms())?;
        let generation = match switched {
            Some(switched) => switched.wait()?,
            None => anyhow::bail!("the snapshot did not switch the log to the new file"),
        };
        // 4. Switch the manifest over, then delete what it no longer names.
        let new = base_and_incr(base, base_seq, incr, incr_seq);
        new.store(&*self.disk, &aof_dir, &self.aof_prefix)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        // Everything before the switch is in the durable base: a failure in an older file is
        // over.
        aof.superseded(generation);
        remove_files(&*self.disk, &aof_dir, &old, &new);
        *lock(&self.manifest) = Some(new);
        self.base_file_bytes.store(stats.bytes, Ordering::Relaxed);
        self.aof_base_size.store(
            stats.bytes + aof.incr_bytes.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        info!(
            keys = stats.entries,
            base_bytes = stats.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "append-only file rewritten"
        );
        Ok(())
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

    /// Starts a background rewrite, or schedules it after a running snapshot. Returns the
    /// status line for the client.
    pub fn bgrewriteaof(self: &Arc<Self>, store: &Arc<Store>) -> Result<&'static str, String> {
        if !self.aof_enabled() {
            return Err(
                "ERR the append-only file is off (CONFIG SET appendonly yes turns it on)"
                    .to_owned(),
            );
        }
        if self.rewrite_in_progress.load(Ordering::SeqCst) {
            return Err("ERR Background append only file rewriting already in progress".to_owned());
        }
        if self.bgsave_in_progress.load(Ordering::SeqCst) {
            self.rewrite_scheduled.store(true, Ordering::SeqCst);
            return Ok("Background append only file rewriting scheduled");
        }
        self.spawn_rewrite(store);
        Ok("Background append only file rewriting started")
    }

    fn spawn_rewrite(self: &Arc<Self>, store: &Arc<Store>) {
        self.rewrite_in_progress.store(true, Ordering::SeqCst);
        let (persist, store) = (Arc::clone(self), Arc::clone(store));
        let spawned = std::thread::Builder::new()
            .name("kv-aof-rewrite".to_owned())
            .spawn(move || {
                info!("background append only file rewriting started");
                let _ = persist.rewrite(&store);
            });
        if let Err(err) = spawned {
            self.rewrite_in_progress.store(false, Ordering::SeqCst);
            error!("could not start the rewrite thread: {err}");
        }
    }

    /// Turns the log on at run time (CONFIG SET appendonly yes), building its first base in
    /// the background.
    pub fn enable_aof_in_background(self: &Arc<Self>, store: &Arc<Store>) -> Result<(), String> {
        if self.aof_enabled() {
            return Ok(());
        }
        if self.bgsave_in_progress.load(Ordering::SeqCst)
            || self.rewrite_in_progress.swap(true, Ordering::SeqCst)
        {
            return Err("ERR a snapshot or rewrite is in progress; try again later".to_owned());
        }
        let (persist, store) = (Arc::clone(self), Arc::clone(store));
        let spawned = std::thread::Builder::new()
            .name("kv-aof-create".to_owned())
            .spawn(move || {
                if let Err(err) = persist.create_aof(&store) {
                    error!("turning the append-only file on failed: {err:#}");
                }
                persist.rewrite_in_progress.store(false, Ordering::SeqCst);
            });
        spawned.map(|_| ()).map_err(|err| {
            self.rewrite_in_progress.store(false, Ordering::SeqCst);
            format!("ERR could not start the append-only file: {err}")
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
        if self.aof().is_some_and(|aof| aof.needs_rewrite()) {
            // The log's last file failed: one last try to leave a log that holds everything.
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

/// The manifest of a freshly written base and the one incremental file that follows it.
fn base_and_incr(base: String, base_seq: u64, incr: String, incr_seq: u64) -> Manifest {
    Manifest {
        base: Some(ManifestEntry {
            name: base,
            seq: base_seq,
            kind: FileKind::Base,
        }),
        incrs: vec![ManifestEntry {
            name: incr,
            seq: incr_seq,
            kind: FileKind::Incr,
        }],
        history: Vec::new(),
    }
}

/// Creates an empty file to append to and makes its directory entry durable.
fn create_empty(disk: &dyn Disk, dir: &Path, name: &str) -> std::io::Result<Box<dyn DiskFile>> {
    let mut file = disk.create(&dir.join(name))?;
    file.sync_all()?;
    disk.sync_dir(dir)?;
    Ok(file)
}

/// Deletes the files of `old` that `new` does not name.
fn remove_files(disk: &dyn Disk, dir: &Path, old: &Manifest, new: &Manifest) {
    let keep: Vec<&str> = new
        .base
        .iter()
        .chain(new.incrs.iter())
        .map(|entry| entry.name.as_str())
        .collect();
    for entry in old
        .base
        .iter()
        .chain(old.incrs.iter())
        .chain(old.history.iter())
    {
        if !keep.contains(&entry.name.as_str()) {
            if let Err(err) = disk.remove_file(&dir.join(&entry.name)) {
                warn!(file = %entry.name, "could not remove an old log file: {err}");
            }
        }
    }
    if let Err(err) = disk.sync_dir(dir) {
        warn!(dir = %dir.display(), "could not sync the directory after removing old log files: {err}");
    }
}
