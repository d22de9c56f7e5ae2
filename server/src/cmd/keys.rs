//! Generic key commands: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, RANDOMKEY...

use protocol::Argv;
use std::hash::BuildHasher;

use bytes::Bytes;

use super::string::propagate_set;
use super::{arg_i64, errors, is, parse_cursor, CmdError, Ctx};
use crate::glob::glob_match;
use crate::notify;
use crate::store::{Db, Entry, Lookup, MultiLock, SHARDS};

fn keys_of(args: Argv<'_>) -> impl Iterator<Item = &[u8]> + Clone {
    args.slice(1..).iter()
}

/// DEL key [key ...]: atomic across shards; returns how many keys existed. A large value is
/// freed off the shard lock, by the store's lazy-free thread (`store::lazyfree`).
pub fn del(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut locked = ctx.db().lock_keys(keys_of(args));
    locked.prefetch_entries(keys_of(args));
    // The removed keys are collected only when someone listens for `del` events.
    let listening = ctx.shared.notifications.wants(notify::GENERIC) != 0;
    let mut removed_keys: Vec<&[u8]> = Vec::new();
    let removed = args
        .slice(1..)
        .iter()
        .filter(|key| {
            let removed = locked
                .shard(key)
                .is_some_and(|(shard, hash)| shard.delete(hash, key, now));
            if removed && listening {
                removed_keys.push(key);
            }
            removed
        })
        .count();
    if removed > 0 {
        locked.propagate_named(b"DEL", args.slice(1..).iter());
    }
    drop(locked);
    for key in removed_keys {
        ctx.notify(notify::GENERIC, "del", key);
    }
    ctx.out.count(removed);
    Ok(())
}

/// UNLINK key [key ...]: DEL, which already frees large values off the lock and small ones
/// inline (where that is cheaper than a hand-over), so the two are the same command.
pub fn unlink(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    del(ctx, args)
}

/// How many of the keys exist (a key named twice counts twice), under shared locks; keys
/// found expired are deleted afterwards.
fn count_existing(ctx: &mut Ctx<'_>, args: Argv<'_>) -> usize {
    let now = ctx.now_ms;
    let db = ctx.db();
    let read = db.read_keys(keys_of(args));
    let mut existing = 0;
    let mut expired = Vec::new();
    for (key, found) in keys_of(args).zip(read.lookups(keys_of(args), now)) {
        match found {
            Lookup::Live(_) => existing += 1,
            Lookup::Expired => expired.push(key),
            Lookup::Absent => {}
        }
    }
    drop(read);
    db.expire_if_due(expired, now);
    existing
}

/// EXISTS key [key ...]: a key named twice counts twice, as in Redis.
pub fn exists(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let n = count_existing(ctx, args);
    ctx.out.count(n);
    Ok(())
}

/// TOUCH key [key ...]: number of existing keys (there is no LRU clock to update yet).
pub fn touch(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let n = count_existing(ctx, args);
    ctx.out.count(n);
    Ok(())
}

/// TYPE key
pub fn key_type(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    let name = shard
        .get_read(hash, &args[1], ctx.now_ms)
        .map_or("none", |entry| entry.value.type_name());
    drop(shard);
    ctx.out.simple(name);
    Ok(())
}

/// KEYS pattern: every live key matching the glob, shard by shard.
pub fn keys(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let pattern = &args[1];
    let now = ctx.now_ms;
    let db = ctx.db();
    let match_all = pattern == b"*";
    let mut found: Vec<Bytes> = Vec::new();
    for index in 0..SHARDS {
        let shard = db.lock_shard(index);
        found.extend(
            shard
                .iter()
                .filter(|(key, entry)| {
                    is_live(entry, now) && (match_all || glob_match(pattern, key))
                })
                .map(|(key, _)| Bytes::copy_from_slice(key)),
        );
    }
    ctx.out.array(found.len());
    for key in &found {
        ctx.out.bulk(key);
    }
    Ok(())
}

fn is_live(entry: &Entry, now_ms: u64) -> bool {
    entry.expires_at().is_none_or(|at| at > now_ms)
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
///
/// The cursor packs the shard index in its low 4 bits and the shard table's reverse-binary
/// bucket cursor above them, so a full iteration walks shard 0's buckets, then shard 1's...
/// and inherits Redis's guarantee per table: every key present for the whole iteration is
/// returned at least once, whatever is added, deleted or resized meanwhile.
pub fn scan(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let cursor = parse_cursor(&args[1])?;
    let mut pattern: Option<&[u8]> = None;
    let mut count: usize = 10;
    let mut type_filter: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(errors::SYNTAX)?;
        if is(&args[i], "MATCH") {
            pattern = Some(value).filter(|p| *p != b"*");
        } else if is(&args[i], "COUNT") {
            let n = arg_i64(value)?;
            count = usize::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or(errors::SYNTAX)?;
        } else if is(&args[i], "TYPE") {
            type_filter = Some(value);
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }

    let now = ctx.now_ms;
    let db = ctx.db();
    let mut shard_index = (cursor % SHARDS as u64) as usize;
    let mut bucket_cursor = cursor / SHARDS as u64;
    let mut visited = 0usize;
    let mut found: Vec<Bytes> = Vec::new();
    // As Redis: stop after `count` elements or after visiting 10 * count buckets.
    let max_buckets = count.saturating_mul(10);
    let mut buckets = 0usize;
    let next_cursor = loop {
        let shard = db.lock_shard(shard_index);
        loop {
            bucket_cursor = shard.scan_bucket(bucket_cursor, |key, entry| {
                visited += 1;
                let wanted = is_live(entry, now)
                    && pattern.is_none_or(|p| glob_match(p, key))
                    && type_filter.is_none_or(|t| is(t, entry.value.type_name()));
                if wanted {
                    found.push(Bytes::copy_from_slice(key));
                }
            });
            buckets += 1;
            if bucket_cursor == 0 || visited >= count || buckets >= max_buckets {
                break;
            }
        }
        drop(shard);
        if bucket_cursor == 0 {
            shard_index += 1;
            if shard_index == SHARDS {
                break 0;
            }
        }
        if visited >= count || buckets >= max_buckets {
            break bucket_cursor
                .saturating_mul(SHARDS as u64)
                .saturating_add(shard_index as u64);
        }
    };
    ctx.out.array(2);
    ctx.out.bulk_int(i64::try_from(next_cursor).unwrap_or(0));
    ctx.out.array(found.len());
    for key in &found {
        ctx.out.bulk(key);
    }
    Ok(())
}

/// Moves `src` to `dst` inside one locked set of shards; `Ok(false)` if `only_if_absent` and
/// `dst` exists.
fn rename_locked(
    locked: &mut MultiLock<'_>,
    src: &[u8],
    dst: &[u8],
    only_if_absent: bool,
    now: u64,
) -> Result<bool, CmdError> {
    let (shard, hash) = locked.shard(src).ok_or(errors::NO_SUCH_KEY)?;
    if shard.get_mut(hash, src, now).is_none() {
        return Err(errors::NO_SUCH_KEY);
    }
    if src == dst {
        return Ok(!only_if_absent);
    }
    if only_if_absent {
        let (dshard, dhash) = locked.shard(dst).ok_or(errors::NO_SUCH_KEY)?;
        if dshard.contains(dhash, dst, now) {
            return Ok(false);
        }
    }
    let (shard, hash) = locked.shard(src).ok_or(errors::NO_SUCH_KEY)?;
    let entry = shard.remove(hash, src, now).ok_or(errors::NO_SUCH_KEY)?;
    let deadline = entry.expires_at();
    let (dshard, dhash) = locked.shard(dst).ok_or(errors::NO_SUCH_KEY)?;
    dshard.set(dhash, dst, entry.value, deadline, now);
    locked.propagate(&[b"RENAME", src, dst]);
    Ok(true)
}

/// The events of a rename (none when a key is renamed to itself, as in Redis).
fn notify_renamed(ctx: &Ctx<'_>, src: &[u8], dst: &[u8]) {
    if src != dst {
        ctx.notify(notify::GENERIC, "rename_from", src);
        ctx.notify(notify::GENERIC, "rename_to", dst);
    }
}

/// RENAME key newkey: keeps the TTL; atomic across shards.
pub fn rename(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut locked = ctx.db().lock_keys(keys_of(args));
    rename_locked(&mut locked, &args[1], &args[2], false, now)?;
    drop(locked);
    notify_renamed(ctx, &args[1], &args[2]);
    ctx.out.ok();
    Ok(())
}

/// RENAMENX key newkey
pub fn renamenx(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut locked = ctx.db().lock_keys(keys_of(args));
    let renamed = rename_locked(&mut locked, &args[1], &args[2], true, now)?;
    drop(locked);
    if renamed {
        notify_renamed(ctx, &args[1], &args[2]);
    }
    ctx.out.int(i64::from(renamed));
    Ok(())
}

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (src, dst) = (&args[1], &args[2]);
    let mut target_db = ctx.session.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "REPLACE") {
            replace = true;
        } else if is(&args[i], "DB") && i + 1 < args.len() {
            let index = arg_i64(&args[i + 1])?;
            target_db = usize::try_from(index)
                .ok()
                .filter(|&n| n < ctx.shared.store.db_count())
                .ok_or(errors::DB_OUT_OF_RANGE)?;
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    if target_db == ctx.session.db && src == dst {
        return Err(CmdError::new(
            "ERR source and destination objects are the same",
        ));
    }
    let now = ctx.now_ms;
    let source_db = ctx.db();
    let Some(dest_db) = ctx.shared.store.db(target_db) else {
        return Err(errors::DB_OUT_OF_RANGE);
    };
    let copied = if target_db == ctx.session.db {
        let mut locked = source_db.lock_keys([src, dst]);
        copy_between(&mut locked, None, src, dst, replace, now, args)
    } else {
        // Lock the databases in index order so two crossing COPYs cannot deadlock.
        let (mut source_lock, mut dest_lock) = if ctx.session.db < target_db {
            let source_lock = source_db.lock_keys([src]);
            (source_lock, dest_db.lock_keys([dst]))
        } else {
            let dest_lock = dest_db.lock_keys([dst]);
            (source_db.lock_keys([src]), dest_lock)
        };
        copy_between(
            &mut source_lock,
            Some(&mut dest_lock),
            src,
            dst,
            replace,
            now,
            args,
        )
    };
    if copied {
        ctx.shared
            .notify(notify::GENERIC, "copy_to", target_db, dst, now);
    }
    ctx.out.int(i64::from(copied));
    Ok(())
}

/// Copies `src` to `dst` (in `dest`'s database when given, else in `source`'s), with its
/// TTL; false if there is no `src`, or `dst` exists and `replace` is not set.
///
/// A string is propagated as the resulting SET in the destination's database. Any other
/// value is propagated as the command as sent (`args`), through the source's database (where
/// `COPY` names its keys): replaying it finds the same source and copies the same value.
fn copy_between<'a>(
    source: &mut MultiLock<'a>,
    dest: Option<&mut MultiLock<'a>>,
    src: &[u8],
    dst: &[u8],
    replace: bool,
    now: u64,
    args: Argv<'_>,
) -> bool {
    let Some((shard, hash)) = source.shard(src) else {
        return false;
    };
    let Some(entry) = shard.get_mut(hash, src, now) else {
        shard.record_miss(src);
        return false;
    };
    let (value, deadline) = (entry.value.clone(), entry.expires_at());
    let is_string = value.as_string().is_ok();
    {
        let dest = match dest {
            Some(dest) => dest,
            None => &mut *source,
        };
        let Some((dshard, dhash)) = dest.shard(dst) else {
            return false;
        };
        if !replace && dshard.contains(dhash, dst, now) {
            return false;
        }
        if let Ok(bytes) = value.as_string() {
            propagate_set(dshard, dst, bytes, deadline, now);
        }
        dshard.set(dhash, dst, value, deadline, now);
    }
    if !is_string {
        source.propagate_named(b"COPY", args.slice(1..).iter());
    }
    true
}

/// RANDOMKEY: a random live key, or nil.
pub fn randomkey(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let db = ctx.db();
    let found = random_key(db, now);
    match found {
        Some(key) => ctx.out.bulk(&key),
        None => ctx.out.null(),
    }
    Ok(())
}

fn random_key(db: &Db, now: u64) -> Option<Bytes> {
    let seeds = foldhash::fast::RandomState::default();
    let mut counter = now;
    let mut random = move || {
        counter = counter.wrapping_add(1);
        seeds.hash_one(counter)
    };
    let start = (random() % SHARDS as u64) as usize;
    (0..SHARDS)
        .map(|offset| (start + offset) % SHARDS)
        .find_map(|index| db.lock_shard(index).random_key(now, &mut random))
}

/// OBJECT ENCODING key: the name Redis gives the value's representation (`listpack`,
/// `hashtable`, `intset`, `skiplist`, `quicklist`, `int`, `embstr`, `raw`); null if the key
/// does not exist.
pub fn object_encoding(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let name = ctx.db().with_live_unnoticed(&args[2], ctx.now_ms, |entry| {
        entry.map(|e| e.value.encoding())
    });
    match name {
        Some(name) => ctx.out.bulk(name.as_bytes()),
        None => ctx.out.null(),
    }
    Ok(())
}

/// OBJECT REFCOUNT key: 1 for every value (values are never shared between keys); null if
/// the key does not exist.
pub fn object_refcount(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let exists = ctx
        .db()
        .with_live_unnoticed(&args[2], ctx.now_ms, |entry| entry.is_some());
    if exists {
        ctx.out.int(1);
    } else {
        ctx.out.null();
    }
    Ok(())
}

/// OBJECT FREQ key: access frequencies are tracked only under an LFU eviction policy, and
/// kvstore has none, so this is Redis's error for that case (null for a missing key).
pub fn object_freq(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let exists = ctx
        .db()
        .with_live_unnoticed(&args[2], ctx.now_ms, |entry| entry.is_some());
    if !exists {
        ctx.out.null();
        return Ok(());
    }
    Err(CmdError::new(
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
    ))
}

/// OBJECT HELP
pub fn object_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    super::reply_help(
        ctx,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Name the representation the value of <key> is stored in.",
            "FREQ <key>",
            "    Access frequency of <key>, tracked only under an LFU eviction policy.",
            "REFCOUNT <key>",
            "    How many references the value of <key> has (always 1 here).",
        ],
    );
    Ok(())
}
