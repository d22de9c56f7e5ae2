//! Taking and loading snapshots of the whole store.
//!
//! A snapshot is point-in-time: it starts with every shard of every database locked at once
//! (microseconds), which flips each shard into snapshot mode (see
//! [`crate::store::Shard::snapshot_begin`]); the walk then copies entries out a few hundred
//! at a time under each shard's lock, while writes that reach an entry first save its old
//! version. Clients are never blocked for longer than one such step.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::time::Instant;

use tracing::info;

use super::fsutil::write_atomically;
use super::snapshot_format::{Item, SnapshotReader, SnapshotWriter};
use crate::store::{Shard, Store, SHARDS};

/// Entries copied per lock hold of a shard.
const STEP_ENTRIES: usize = 256;
/// Progress is logged every this many entries.
const PROGRESS_EVERY: u64 = 1_000_000;

/// What a finished snapshot wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotStats {
    /// Keys written.
    pub entries: u64,
    /// File size.
    pub bytes: u64,
}

/// Starts a point-in-time snapshot: locks every shard, begins the snapshot on each, and runs
/// `at_instant` while all are still locked (to switch the log at exactly that point).
pub fn begin(store: &Store, at_instant: impl FnOnce(&mut [(u32, &mut Shard)])) {
    store.with_all_locked(|shards| {
        for (_, shard) in shards.iter_mut() {
            shard.snapshot_begin();
        }
        at_instant(shards);
    });
}

/// Abandons a begun snapshot on every shard (after a write error).
pub fn abort(store: &Store) {
    for db in store.dbs() {
        for index in 0..SHARDS {
            db.lock_shard(index).snapshot_abort();
        }
    }
}

/// Walks a begun snapshot into `dir/file_name` (written atomically). On error the snapshot
/// is abandoned and the old file, if any, stays.
pub fn write(
    store: &Store,
    dir: &Path,
    file_name: &str,
    created_ms: u64,
) -> io::Result<SnapshotStats> {
    let started = Instant::now();
    let mut entries = 0u64;
    let result = write_atomically(dir, file_name, |file| {
        let mut writer = SnapshotWriter::new(&mut *file, created_ms)?;
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut next_progress = PROGRESS_EVERY;
        for (db_index, db) in store.dbs().iter().enumerate() {
            let mut selected = false;
            for shard in 0..SHARDS {
                loop {
                    let (taken, done) = db.snapshot_step(shard, &mut buf, STEP_ENTRIES);
                    if !buf.is_empty() {
                        if !selected {
                            writer.select_db(db_index as u32)?;
                            selected = true;
                        }
                        writer.write_encoded(&buf)?;
                        buf.clear();
                    }
                    entries += taken;
                    if entries >= next_progress {
                        info!(entries, "snapshot in progress");
                        next_progress += PROGRESS_EVERY;
                    }
                    if done {
                        break;
                    }
                }
            }
        }
        writer.finish()?.flush()
    });
    match result {
        Ok(bytes) => {
            info!(
                entries,
                bytes,
                elapsed_ms = started.elapsed().as_millis() as u64,
                file = file_name,
                "snapshot written"
            );
            Ok(SnapshotStats { entries, bytes })
        }
        Err(err) => {
            abort(store);
            Err(err)
        }
    }
}

/// Loads a snapshot file into `store` (which should be empty). Keys whose deadline is at or
/// before `now_ms` are dropped. Errors name the byte offset.
pub fn load(store: &Store, path: &Path, now_ms: u64) -> Result<SnapshotStats, String> {
    let started = Instant::now();
    let file = File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut reader = SnapshotReader::new(BufReader::with_capacity(1 << 20, file))
        .map_err(|err| format!("{}: {err}", path.display()))?;
    let mut db = store.db(0);
    let mut stats = SnapshotStats::default();
    let mut expired = 0u64;
    let mut next_progress = PROGRESS_EVERY;
    loop {
        let item = reader
            .next_item()
            .map_err(|err| format!("{}: {err}", path.display()))?;
        match item {
            None => break,
            Some(Item::SelectDb(index)) => {
                db = store.db(index as usize);
                if db.is_none() {
                    return Err(format!(
                        "{}: database {index} at byte {} does not exist (--databases is {})",
                        path.display(),
                        reader.offset(),
                        store.db_count()
                    ));
                }
            }
            Some(Item::SizeHint { .. }) => {}
            Some(Item::Entry {
                key,
                value,
                expires_at_ms,
            }) => {
                if expires_at_ms.is_some_and(|at| at <= now_ms) {
                    expired += 1;
                    continue;
                }
                let Some(db) = db else {
                    continue;
                };
                let (mut shard, hash) = db.lock(&key);
                shard.set(hash, &key, value, expires_at_ms, now_ms);
                stats.entries += 1;
                if stats.entries >= next_progress {
                    info!(keys = stats.entries, "loading snapshot");
                    next_progress += PROGRESS_EVERY;
                }
            }
        }
    }
    stats.bytes = reader.offset();
    info!(
        keys = stats.entries,
        expired_dropped = expired,
        bytes = stats.bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        file = %path.display(),
        "snapshot loaded"
    );
    Ok(stats)
}
