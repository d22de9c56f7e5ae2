//! Taking and loading snapshots of the whole store.
//!
//! A snapshot is point-in-time: it starts with every shard of every database locked at once
//! (microseconds), which flips each shard into snapshot mode (see
//! [`crate::store::Shard::snapshot_begin`]); the walk then captures entries a few hundred at
//! a time under each shard's lock, while writes that reach an entry first save its old
//! version. Capturing copies strings and clones collections by sharing their parts (see
//! [`crate::store::value`]); this thread encodes what was captured after the lock is released,
//! so a client is never blocked for longer than one step's copying, whatever the size of the
//! collections being saved.
// Reads files that may be corrupt or hostile: no unwrap, expect, panic or unchecked indexing
// outside tests (the fuzz targets in fuzz/ check it).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::time::Instant;

use tracing::info;

use super::disk::Disk;
use super::fsutil::write_atomically;
use super::snapshot_format::{Item, SnapshotReader, SnapshotWriter};
use crate::store::{Shard, SnapshotBatch, Store, SHARDS};

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
        store.capture_functions_for_snapshot();
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
        if let Some(payload) = store.take_snapshot_functions() {
            writer.functions(&payload)?;
        }
        let mut batch = SnapshotBatch::new();
        let mut next_progress = PROGRESS_EVERY;
        for (db_index, db) in store.dbs().iter().enumerate() {
            let mut selected = false;
            for shard in 0..SHARDS {
                loop {
                    let (taken, done) = db.snapshot_step(shard, &mut batch, STEP_ENTRIES);
                    if !batch.is_empty() {
                        if !selected {
                            writer.select_db(db_index as u32)?;
                            selected = true;
                        }
                        writer.write_captured(batch.iter())?;
                        // Outside the lock: drops the batch's share of collection parts.
                        batch.clear();
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
    let file = File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    load_from(store, BufReader::with_capacity(1 << 20, file), path, now_ms)
}

/// [`load`] from any source; `path` only names it in errors and log lines (the fuzz target
/// loads bytes held in memory).
pub(crate) fn load_from(
    store: &Store,
    source: impl Read,
    path: &Path,
    now_ms: Option<u64>,
) -> Result<SnapshotStats, String> {
    let drop_before = now_ms.unwrap_or(0);
    let started = Instant::now();
    let mut reader =
        SnapshotReader::new(source).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut db = store.db(0);
    // Values are decoded under the default encoding thresholds; the store's may differ.
    let limits = store.limits().get();
    let refit = limits != crate::store::Limits::DEFAULT;
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
            Some(Item::Functions(payload)) => {
                let mut engine = crate::script::Engine::new()
                    .map_err(|err| format!("{}: cannot start Lua: {err}", path.display()))?;
                engine
                    .function_restore(
                        store.functions(),
                        &payload,
                        crate::script::RestorePolicy::Replace,
                    )
                    .map_err(|err| format!("{}: function libraries: {err}", path.display()))?;
                info!(
                    libraries = store.functions().counts().0,
                    "function libraries loaded"
                );
            }
            Some(Item::Entry {
                key,
                mut value,
                expires_at_ms,
            }) => {
                if refit {
                    value.fit_limits(&limits);
                }
                if expires_at_ms.is_some_and(|at| at <= drop_before) {
                    expired += 1;
                    continue;
                }
                if value.as_value_ref().is_empty_collection() {
                    // A key holding an empty collection does not exist.
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
    use crate::store::value::{Hash, List, Score, Set, WrongType, ZSet};
    use crate::store::Value;

    /// Every (db, key) -> (value, deadline) of a store, read with all shards locked.
    type State = BTreeMap<(u32, Vec<u8>), (Value, Option<u64>)>;

    fn state_of(shards: &[(u32, &mut Shard)]) -> State {
        let mut state = State::new();
        for (db, shard) in shards {
            for (key, entry) in shard.iter() {
                state.insert(
                    (*db, key.to_vec()),
                    (entry.value.clone(), entry.expires_at()),
                );
            }
        }
        state
    }

    /// A value written out in full, in a canonical order (hashes and sets sorted).
    fn canonical(value: &Value) -> String {
        match value {
            Value::Str(bytes) => format!("string {bytes:?}"),
            Value::List(list) => format!("list {:?}", list.iter().collect::<Vec<_>>()),
            Value::Hash(hash) => format!("hash {:?}", hash.iter().collect::<BTreeMap<_, _>>()),
            Value::Set(set) => format!(
                "set {:?}",
                set.iter().collect::<std::collections::BTreeSet<_>>()
            ),
            Value::ZSet(zset) => {
                let entries: Vec<_> = zset.iter().map(|(m, s)| (m, s.to_bits())).collect();
                format!("zset {entries:?}")
            }
        }
    }

    /// A deep copy of a state: what it holds now, whatever later writes do to the parts its
    /// collections share with the store (so a test checks the store's copy-on-write instead
    /// of relying on it).
    type Deep = BTreeMap<(u32, Vec<u8>), (String, Option<u64>)>;

    fn deep(state: &State) -> Deep {
        state
            .iter()
            .map(|(key, (value, at))| (key.clone(), (canonical(value), *at)))
            .collect()
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
        /// A change to a collection (creating it if absent, deleting the key once empty).
        Change(u32, u16, Change),
    }

    /// What the collection commands will do, done through the store's API.
    #[derive(Debug, Clone)]
    enum Change {
        Push {
            front: bool,
            element: Vec<u8>,
        },
        Pop {
            front: bool,
        },
        HashSet(u8, Vec<u8>),
        HashDel(u8),
        SetAdd(u8),
        SetRem(u8),
        ZAdd(u8, i16),
        ZRem(u8),
        /// Replaces the key with a collection of that many elements (of kind 0..4): large
        /// enough to span many chunks and segments.
        Fill(u8, u16),
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

    /// The same mix with changes to lists, hashes, sets and sorted sets on the same keys.
    fn op_with_collections() -> impl Strategy<Value = Op> {
        let member = 0u8..40;
        let element = proptest::collection::vec(any::<u8>(), 0..8);
        let change = prop_oneof![
            3 => (any::<bool>(), element.clone()).prop_map(|(front, element)| Change::Push { front, element }),
            1 => any::<bool>().prop_map(|front| Change::Pop { front }),
            3 => (member.clone(), element).prop_map(|(f, v)| Change::HashSet(f, v)),
            1 => member.clone().prop_map(Change::HashDel),
            3 => member.clone().prop_map(Change::SetAdd),
            1 => member.clone().prop_map(Change::SetRem),
            3 => (member.clone(), any::<i16>()).prop_map(|(m, s)| Change::ZAdd(m, s)),
            1 => member.prop_map(Change::ZRem),
            1 => (0u8..4, 0u16..700).prop_map(|(kind, n)| Change::Fill(kind, n)),
        ];
        prop_oneof![
            1 => op(),
            1 => (0u32..3, 0u16..200, change).prop_map(|(d, k, c)| Op::Change(d, k, c)),
        ]
    }

    fn member_name(member: u8) -> Vec<u8> {
        format!("member:{member}").into_bytes()
    }

    fn filled(kind: u8, n: u16) -> Value {
        let elements = (0..n).map(|i| format!("fill:{i}").into_bytes());
        match kind {
            0 => Value::list(elements.collect()),
            1 => Value::hash(elements.map(|e| (e.clone(), e)).collect()),
            2 => Value::set(elements.collect()),
            _ => Value::zset(
                elements
                    .zip(0..)
                    .map(|(e, i)| (e, Score::new(f64::from(i % 50)).expect("not NaN")))
                    .collect(),
            ),
        }
    }

    /// Applies `change` to `value`; WRONGTYPE if the key holds another type.
    fn change_value(value: &mut Value, change: &Change) -> Result<(), WrongType> {
        match change {
            Change::Push { front, element } => {
                let list = value.as_list_mut()?;
                if *front {
                    list.push_front(&element[..]);
                } else {
                    list.push_back(&element[..]);
                }
            }
            Change::Pop { front } => {
                let list = value.as_list_mut()?;
                if *front {
                    list.pop_front();
                } else {
                    list.pop_back();
                }
            }
            Change::HashSet(f, v) => {
                value.as_hash_mut()?.insert(member_name(*f), &v[..]);
            }
            Change::HashDel(f) => {
                value.as_hash_mut()?.remove(&member_name(*f));
            }
            Change::SetAdd(m) => {
                value.as_set_mut()?.insert(member_name(*m));
            }
            Change::SetRem(m) => {
                value.as_set_mut()?.remove(&member_name(*m));
            }
            Change::ZAdd(m, score) => {
                let score = Score::new(f64::from(*score)).expect("not NaN");
                value.as_zset_mut()?.insert(&member_name(*m), score);
            }
            Change::ZRem(m) => {
                value.as_zset_mut()?.remove(&member_name(*m));
            }
            Change::Fill(..) => {}
        }
        Ok(())
    }

    /// An empty collection of the kind `change` adds to, if it adds.
    fn empty_for(change: &Change) -> Option<Value> {
        match change {
            Change::Push { .. } => Some(Value::list(List::new())),
            Change::HashSet(..) => Some(Value::hash(Hash::new())),
            Change::SetAdd(_) => Some(Value::set(Set::new())),
            Change::ZAdd(..) => Some(Value::zset(ZSet::new())),
            _ => None,
        }
    }

    fn apply_change(store: &Store, d: u32, k: u16, change: &Change) {
        let key = key_name(k);
        let db = store.db(d as usize).expect("db exists");
        let (mut shard, hash) = db.lock(&key);
        if let Change::Fill(kind, n) = change {
            if *n > 0 {
                shard.set(hash, &key, filled(*kind, *n), None, NOW);
            }
            return;
        }
        let emptied = match shard.get_mut(hash, &key, NOW) {
            Some(entry) => {
                change_value(&mut entry.value, change).is_ok()
                    && entry.value.as_value_ref().is_empty_collection()
            }
            None => {
                if let Some(mut value) = empty_for(change) {
                    change_value(&mut value, change).expect("the right type");
                    shard.set(hash, &key, value, None, NOW);
                }
                false
            }
        };
        if emptied {
            shard.remove(hash, &key, NOW);
        }
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
                    if let Ok(current) = entry.value.as_string_mut() {
                        current.extend_from_slice(v);
                    }
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
            Op::Change(d, k, change) => apply_change(store, *d, *k, change),
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// The same with lists, hashes, sets and sorted sets (some spanning many chunks or
        /// segments) on the same keys: the file holds every collection as it was when the
        /// snapshot began, whether the walk captured it or a write did first, and although
        /// writes change the parts the snapshot shares.
        #[test]
        fn snapshot_of_collections_is_point_in_time_under_concurrent_writes(
            before in proptest::collection::vec(op_with_collections(), 0..300),
            during in proptest::collection::vec(op_with_collections(), 1..300),
        ) {
            let store = Arc::new(Store::new(3));
            for op in &before {
                apply(&store, op);
            }
            let mut expected = Deep::new();
            begin(&store, |shards| expected = deep(&state_of(shards)));
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
            prop_assert_eq!(deep(&reload(dir.path(), "dump.kvs")), expected);
            let now_state = deep(&current_state(&store));
            begin(&store, |_| {});
            write(&OsDisk, &store, dir.path(), "again.kvs", NOW).expect("second snapshot");
            prop_assert_eq!(deep(&reload(dir.path(), "again.kvs")), now_state);
        }
    }

    /// A collection of `n` elements of kind 0..4 (list, hash, set, sorted set).
    fn large(kind: u8, n: u32) -> Value {
        let elements = (0..n).map(|i| format!("element:{i}").into_bytes());
        match kind {
            0 => Value::list(elements.collect()),
            1 => Value::hash(elements.map(|e| (e.clone(), e)).collect()),
            2 => Value::set(elements.collect()),
            _ => Value::zset(
                elements
                    .zip(0..)
                    .map(|(e, i)| (e, Score::new(f64::from(i)).expect("not NaN")))
                    .collect(),
            ),
        }
    }

    /// A write to a 100,000-element collection during a snapshot, before the walk reached
    /// it: the snapshot takes a clone that shares every part, the write copies the one part
    /// it changes (a sorted set: its member's segment and the order chunks it moves between), and the
    /// file written by the real snapshot writer holds the collection as it was before.
    #[test]
    fn a_write_during_a_snapshot_copies_one_part_of_a_large_collection() {
        let store = Store::new(1);
        let db = store.db(0).expect("db 0");
        let keys: Vec<Vec<u8>> = (0..4)
            .map(|kind| format!("large:{kind}").into_bytes())
            .collect();
        for (kind, key) in keys.iter().enumerate() {
            let (mut shard, hash) = db.lock(key);
            shard.set(hash, key, large(kind as u8, 100_000), None, NOW);
        }
        let before = deep(&current_state(&store));
        begin(&store, |_| {});
        for key in &keys {
            let (mut shard, hash) = db.lock(key);
            // The first write access saves the entry for the snapshot: a clone.
            let entry = shard.get_mut(hash, key, NOW).expect("present");
            let value = &mut entry.value;
            // At most 256 elements per part, or 8 KiB of list elements (~550 of these).
            assert!(
                value.part_count() >= 100_000 / 1024,
                "{}",
                value.type_name()
            );
            assert_eq!(value.unshared_parts(), 0, "the snapshot shares every part");
            let copied_at_most = match value {
                Value::List(list) => {
                    list.pop_front();
                    1
                }
                Value::Hash(hash) => {
                    hash.insert(&b"element:7"[..], &b"changed"[..]);
                    1
                }
                Value::Set(set) => {
                    set.remove(b"element:7");
                    1
                }
                Value::ZSet(zset) => {
                    zset.insert(b"element:7", Score::new(50_000.5).expect("not NaN"));
                    // Its segment, the chunk it leaves, the chunk it joins and, as that one
                    // was full, the half split off it.
                    4
                }
                Value::Str(_) => unreachable!("a collection"),
            };
            let copied = value.unshared_parts();
            assert!(
                (1..=copied_at_most).contains(&copied),
                "{}: {copied} parts copied",
                value.type_name()
            );
        }
        let after = deep(&current_state(&store));
        assert!(keys
            .iter()
            .all(|key| after[&(0, key.clone())] != before[&(0, key.clone())]));
        let dir = tempfile::tempdir().expect("tempdir");
        write(&OsDisk, &store, dir.path(), "dump.kvs", NOW).expect("snapshot written");
        assert_eq!(deep(&reload(dir.path(), "dump.kvs")), before);
        // The snapshot has let go of its clones: nothing is shared any more.
        store.with_all_locked(|shards| {
            for (_, shard) in shards.iter() {
                for (_, entry) in shard.iter() {
                    assert_eq!(entry.value.unshared_parts(), entry.value.part_count());
                }
            }
        });
    }

    /// A key holding an empty collection is not loaded: it would not exist.
    #[test]
    fn empty_collections_are_not_loaded() {
        let store = Store::new(1);
        let db = store.db(0).expect("db 0");
        for (key, value) in [
            (&b"list"[..], Value::list(List::new())),
            (b"string", Value::Str(Vec::new())),
        ] {
            let (mut shard, hash) = db.lock(key);
            shard.set(hash, key, value, None, NOW);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        begin(&store, |_| {});
        write(&OsDisk, &store, dir.path(), "dump.kvs", NOW).expect("snapshot written");
        let state = reload(dir.path(), "dump.kvs");
        assert_eq!(state.keys().collect::<Vec<_>>(), [&(0, b"string".to_vec())]);
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
            Some(&(Value::Str(b"kept".to_vec()), Some(NOW + 50)))
        );
        // As the base of the log, nothing is dropped.
        let base = Store::new(1);
        let stats = load(&base, &dir.path().join("dump.kvs"), None).expect("loads");
        assert_eq!(stats.entries, 2);
    }
}
