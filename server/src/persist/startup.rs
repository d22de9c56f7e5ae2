//! Start-up: loading the snapshot or the append-only file's base and logs into the store, and
//! resuming the log where it stopped.

use protocol::Argv;
use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::aof::Aof;
use super::aof_manifest::Manifest;
use super::aof_replay::replay_log_with_limits;
use super::{fsutil, lock, snapshot, Persistence};
use crate::clock::unix_ms;
use crate::propagate::WriteStream;
use crate::store::Store;
use crate::sync::Arc as SyncArc;

impl Persistence {
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
}
