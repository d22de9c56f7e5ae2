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

use super::disk::Disk;
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
    disk: &dyn Disk,
    store: &Store,
    dir: &Path,
    file_name: &str,
    created_ms: u64,
) -> io::Result<SnapshotStats> {
    let started = Instant::now();
    let mut entries = 0u64;
    let result = write_atomically(disk, dir, file_name, |file| {
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

/// Loads a snapshot file into `store` (which should be empty). With `now_ms` set, keys whose
/// deadline is at or before it are dropped; `None` keeps them all with their deadlines (the
/// base of the log: the commands replayed after it may still touch such keys, as they did
/// when the keys were alive, and expiry removes them once loading is done). Errors name the
/// byte offset.
pub fn load(store: &Store, path: &Path, now_ms: Option<u64>) -> Result<SnapshotStats, String> {
    let drop_before = now_ms.unwrap_or(0);
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
                if expires_at_ms.is_some_and(|at| at <= drop_before) {
                    expired += 1;
                    continue;
                }
                let Some(db) = db else {
                    continue;
                };
                let (mut shard, hash) = db.lock(&key);
                shard.set(hash, &key, value, expires_at_ms, drop_before);
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

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::persist::disk::OsDisk;
    use crate::store::Value;

    /// Every (db, key) -> (value, deadline) of a store, read with all shards locked.
    type State = BTreeMap<(u32, Vec<u8>), (Vec<u8>, Option<u64>)>;

    fn state_of(shards: &[(u32, &mut Shard)]) -> State {
        let mut state = State::new();
        for (db, shard) in shards {
            for (key, entry) in shard.iter() {
                let Value::Str(value) = &entry.value;
                state.insert((*db, key.to_vec()), (value.clone(), entry.expires_at()));
            }
        }
        state
    }

    fn current_state(store: &Store) -> State {
        store.with_all_locked(|shards| state_of(shards))
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u32, u16, Vec<u8>, Option<u64>),
        Append(u32, u16, Vec<u8>),
        Del(u32, u16),
        Expire(u32, u16, Option<u64>),
        FlushDb(u32),
    }

    const NOW: u64 = 1_000_000;

    fn op() -> impl Strategy<Value = Op> {
        let db = 0u32..3;
        let key = 0u16..200;
        let value = proptest::collection::vec(any::<u8>(), 0..40);
        let deadline = proptest::option::of(NOW + 1..NOW + 10_000_000);
        prop_oneof![
            8 => (db.clone(), key.clone(), value.clone(), deadline.clone())
                .prop_map(|(d, k, v, t)| Op::Set(d, k, v, t)),
            2 => (db.clone(), key.clone(), value).prop_map(|(d, k, v)| Op::Append(d, k, v)),
            3 => (db.clone(), key.clone()).prop_map(|(d, k)| Op::Del(d, k)),
            2 => (db.clone(), key, deadline).prop_map(|(d, k, t)| Op::Expire(d, k, t)),
            1 => db.prop_map(Op::FlushDb),
        ]
    }

    fn key_name(key: u16) -> Vec<u8> {
        format!("key:{key}").into_bytes()
    }

    fn apply(store: &Store, op: &Op) {
        let db_of = |d: &u32| store.db(*d as usize).expect("db exists");
        match op {
            Op::Set(d, k, v, t) => {
                let key = key_name(*k);
                let (mut shard, hash) = db_of(d).lock(&key);
                shard.set(hash, &key, Value::Str(v.clone()), *t, NOW);
            }
            Op::Append(d, k, v) => {
                let key = key_name(*k);
                let (mut shard, hash) = db_of(d).lock(&key);
                if let Some(entry) = shard.get_mut(hash, &key, NOW) {
                    let Value::Str(current) = &mut entry.value;
                    current.extend_from_slice(v);
                }
            }
            Op::Del(d, k) => {
                let key = key_name(*k);
                let (mut shard, hash) = db_of(d).lock(&key);
                shard.remove(hash, &key, NOW);
            }
            Op::Expire(d, k, t) => {
                let key = key_name(*k);
                let (mut shard, hash) = db_of(d).lock(&key);
                shard.set_expiry(hash, &key, *t, NOW);
            }
            Op::FlushDb(d) => drop(db_of(d).take_all()),
        }
    }

    fn reload(dir: &Path, name: &str) -> State {
        let loaded = Store::new(3);
        load(&loaded, &dir.join(name), Some(NOW)).expect("snapshot loads");
        current_state(&loaded)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Random state -> snapshot -> load gives the same keys, values and deadlines.
        #[test]
        fn snapshot_round_trips_the_state(ops in proptest::collection::vec(op(), 0..400)) {
            let store = Store::new(3);
            for op in &ops {
                apply(&store, op);
            }
            let dir = tempfile::tempdir().expect("tempdir");
            begin(&store, |_| {});
            write(&OsDisk, &store, dir.path(), "dump.kvs", NOW).expect("snapshot written");
            prop_assert_eq!(reload(dir.path(), "dump.kvs"), current_state(&store));
        }

        /// The snapshot is the state at the instant it began, although writes (sets,
        /// appends, deletes, TTL changes, FLUSHDB) keep changing the store during the walk.
        #[test]
        fn snapshot_is_point_in_time_under_concurrent_writes(
            before in proptest::collection::vec(op(), 0..600),
            during in proptest::collection::vec(op(), 1..600),
        ) {
            let store = Arc::new(Store::new(3));
            for op in &before {
                apply(&store, op);
            }
            let mut expected = State::new();
            begin(&store, |shards| expected = state_of(shards));
            let writer = {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for op in &during {
                        apply(&store, op);
                    }
                })
            };
            let dir = tempfile::tempdir().expect("tempdir");
            write(&OsDisk, &store, dir.path(), "dump.kvs", NOW).expect("snapshot written");
            writer.join().expect("writer thread");
            prop_assert_eq!(reload(dir.path(), "dump.kvs"), expected);
            // And a second snapshot starts clean (marks consistent after the first).
            let now_state = current_state(&store);
            begin(&store, |_| {});
            write(&OsDisk, &store, dir.path(), "again.kvs", NOW).expect("second snapshot");
            prop_assert_eq!(reload(dir.path(), "again.kvs"), now_state);
        }
    }

    #[test]
    fn expired_keys_are_dropped_at_load() {
        let store = Store::new(1);
        apply(&store, &Op::Set(0, 1, b"gone".to_vec(), Some(NOW + 5)));
        apply(&store, &Op::Set(0, 2, b"kept".to_vec(), Some(NOW + 50)));
        let dir = tempfile::tempdir().expect("tempdir");
        begin(&store, |_| {});
        write(&OsDisk, &store, dir.path(), "dump.kvs", NOW).expect("snapshot written");
        let loaded = Store::new(1);
        let stats = load(&loaded, &dir.path().join("dump.kvs"), Some(NOW + 10)).expect("loads");
        assert_eq!(stats.entries, 1);
        let state = current_state(&loaded);
        assert_eq!(
            state.get(&(0, key_name(2))),
            Some(&(b"kept".to_vec(), Some(NOW + 50)))
        );
        // As the base of the log, nothing is dropped.
        let base = Store::new(1);
        let stats = load(&base, &dir.path().join("dump.kvs"), None).expect("loads");
        assert_eq!(stats.entries, 2);
    }
}
