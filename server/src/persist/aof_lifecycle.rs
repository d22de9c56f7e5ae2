//! The append-only file's life: turning it on (a first base), rewriting it into a new base
//! and incremental file (also how a log whose fsync failed is re-established), and turning
//! it off.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tracing::{error, info, warn};

use super::aof::Aof;
use super::aof_manifest::{base_name, incr_name, FileKind, Manifest, ManifestEntry};
use super::disk::{Disk, DiskFile};
use super::{lock, snapshot, Persistence};
use crate::clock::unix_ms;
use crate::propagate::WriteStream;
use crate::store::{attach_stream, Store};
use crate::sync::Arc as SyncArc;

impl Persistence {
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

    pub(super) fn spawn_rewrite(self: &Arc<Self>, store: &Arc<Store>) {
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
