//! Hash commands: HSET and HSETNX, HGET and HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS,
//! HVALS, HGETALL, HINCRBY, HINCRBYFLOAT, HSCAN and HRANDFIELD.
//!
//! Reads run under the shard's read lock ([`Db::with_live`]); writes under its write lock,
//! validating every argument and the key's type before they change anything. A hash is
//! created by the first field written to it and deleted with its last field, as in Redis.
//! Writes are propagated as sent, except HMSET (as the equivalent HSET) and HINCRBYFLOAT
//! (as `HSET key field result`, so that replay never redoes floating-point arithmetic).
//!
//! Every write that stores a field or value reads the encoding thresholds once, before
//! locking (`hash-max-listpack-*`, [`crate::store::Limits`]), and passes them to
//! [`Hash::set`], which turns a compact hash into a table when the write would cross them.
//! Emptied hashes are deleted with [`crate::store::Shard::delete`], which frees large values
//! off the lock.

use protocol::{Argv, IntText, Version};

use super::collection::{reply_empty_scan, Random, ScanOptions, MAX_REPEATED_PICKS};
use super::string::float_result;
use super::{arg_i64, errors, is, parse_cursor, parse_f64, parse_i64, CmdError, Ctx};
use crate::glob::glob_match;
use crate::notify;
use crate::store::{Db, Hash, Value};

/// A stored field value that HINCRBY cannot read as a 64-bit integer.
const NOT_INTEGER_FIELD: CmdError = CmdError::new("ERR hash value is not an integer");
/// A stored field value that HINCRBYFLOAT cannot read as a float.
const NOT_FLOAT_FIELD: CmdError = CmdError::new("ERR hash value is not a float");

/// The `field value` pairs of `args` from index 2.
fn pairs<'a>(args: Argv<'a>) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    (2..args.len().saturating_sub(1))
        .step_by(2)
        .map(move |i| (args.arg(i), args.arg(i + 1)))
}

/// Sets every `field value` pair of `args` (HSET, HMSET), propagates them as one HSET and
/// publishes `hset` (even when no value changed, as Redis); returns how many fields were new. Rejects an odd pair list with `command`'s arity error.
fn set_pairs(ctx: &mut Ctx<'_>, args: Argv<'_>, command: &str) -> Result<usize, CmdError> {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::owned(format!(
            "ERR wrong number of arguments for '{command}' command"
        )));
    }
    let (key, now) = (&args[1], ctx.now_ms);
    let limits = ctx.shared.store.limits().get();
    let (mut shard, hash) = ctx.db().lock(key);
    let added = match shard.get_mut(hash, key, now) {
        Some(entry) => {
            let fields = entry.value.as_hash_mut()?;
            pairs(args)
                .filter(|&(field, value)| fields.set(field, value, &limits))
                .count()
        }
        None => {
            let mut fields = Hash::new();
            let added = pairs(args)
                .filter(|&(field, value)| fields.set(field, value, &limits))
                .count();
            shard.set(hash, key, Value::hash(fields), None, now);
            added
        }
    };
    shard.propagate_named(b"HSET", args.slice(1..).iter());
    drop(shard);
    ctx.notify(notify::HASH, "hset", key);
    Ok(added)
}

/// HSET key field value [field value ...]: replies with the number of new fields.
pub fn hset(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let added = set_pairs(ctx, args, "hset")?;
    ctx.out.count(added);
    Ok(())
}

/// HMSET key field value [field value ...]: HSET replying `OK`.
pub fn hmset(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_pairs(ctx, args, "hmset")?;
    ctx.out.ok();
    Ok(())
}

/// HSETNX key field value: 1 if the field was set, 0 if it existed (nothing changes).
pub fn hsetnx(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (key, field, value) = (&args[1], &args[2], &args[3]);
    let now = ctx.now_ms;
    let limits = ctx.shared.store.limits().get();
    let (mut shard, hash) = ctx.db().lock(key);
    let created = match shard.get_mut(hash, key, now) {
        Some(entry) => {
            let fields = entry.value.as_hash_mut()?;
            let absent = !fields.contains(field);
            if absent {
                fields.set(field, value, &limits);
            }
            absent
        }
        None => {
            let mut fields = Hash::new();
            fields.set(field, value, &limits);
            shard.set(hash, key, Value::hash(fields), None, now);
            true
        }
    };
    if created {
        shard.propagate_named(b"HSETNX", args.slice(1..).iter());
    }
    drop(shard);
    if created {
        ctx.notify(notify::HASH, "hset", key);
    }
    ctx.out.int(i64::from(created));
    Ok(())
}

/// Runs `read` on the hash at `key` (`None` if the key does not exist), under a read lock;
/// another type is `WRONGTYPE`.
fn with_hash<R>(
    db: &Db,
    key: &[u8],
    now_ms: u64,
    read: impl FnOnce(Option<&Hash>) -> R,
) -> Result<R, CmdError> {
    db.with_live(key, now_ms, |entry| match entry {
        Some(entry) => Ok(read(Some(entry.value.as_hash()?))),
        None => Ok(read(None)),
    })
}

/// HGET key field: the value, or nil.
pub fn hget(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_hash(db, &args[1], now, |fields| {
        match fields.and_then(|fields| fields.get(&args[2])) {
            Some(value) => out.bulk(value),
            None => out.null(),
        }
    })
}

/// HMGET key field [field ...]: one value or nil per field, in order.
pub fn hmget(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_hash(db, &args[1], now, |fields| {
        let wanted = args.slice(2..);
        out.array(wanted.len());
        for field in wanted.iter() {
            match fields.and_then(|fields| fields.get(field)) {
                Some(value) => out.bulk(value),
                None => out.null(),
            }
        }
    })
}

/// HDEL key field [field ...]: replies with how many fields existed; deletes the key with
/// its last field.
pub fn hdel(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (key, now) = (&args[1], ctx.now_ms);
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let fields = entry.value.as_hash_mut()?;
    let mut removed = 0usize;
    for field in args.slice(2..).iter() {
        removed += usize::from(fields.remove(field));
        if fields.is_empty() {
            break;
        }
    }
    let emptied = fields.is_empty();
    if emptied {
        shard.delete(hash, key, now);
    }
    if removed > 0 {
        shard.propagate_named(b"HDEL", args.slice(1..).iter());
    }
    drop(shard);
    if removed > 0 {
        ctx.notify(notify::HASH, "hdel", key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.out.count(removed);
    Ok(())
}

/// HLEN key: the number of fields (0 for a missing key).
pub fn hlen(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let len = with_hash(ctx.db(), &args[1], ctx.now_ms, |fields| {
        fields.map_or(0, Hash::len)
    })?;
    ctx.out.count(len);
    Ok(())
}

/// HSTRLEN key field: the length of the field's value (0 if there is none).
pub fn hstrlen(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let len = with_hash(ctx.db(), &args[1], ctx.now_ms, |fields| {
        fields.and_then(|f| f.get(&args[2])).map_or(0, <[u8]>::len)
    })?;
    ctx.out.count(len);
    Ok(())
}

/// HEXISTS key field: 1 or 0.
pub fn hexists(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let found = with_hash(ctx.db(), &args[1], ctx.now_ms, |fields| {
        fields.is_some_and(|f| f.contains(&args[2]))
    })?;
    ctx.out.int(i64::from(found));
    Ok(())
}

/// What [`list`] replies with for each field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    Fields,
    Values,
    Both,
}

/// HKEYS, HVALS and HGETALL: every field, value or pair, in the hash's own order (an empty
/// array or map for a missing key). HGETALL is a map in RESP3, a flat array in RESP2.
fn list(ctx: &mut Ctx<'_>, args: Argv<'_>, listing: Listing) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_hash(db, &args[1], now, |fields| {
        let len = fields.map_or(0, Hash::len);
        match listing {
            Listing::Both => out.map(len),
            Listing::Fields | Listing::Values => out.array(len),
        }
        for (field, value) in fields.into_iter().flat_map(Hash::iter) {
            if listing != Listing::Values {
                out.bulk(field);
            }
            if listing != Listing::Fields {
                out.bulk(value);
            }
        }
    })
}

/// HKEYS key
pub fn hkeys(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    list(ctx, args, Listing::Fields)
}

/// HVALS key
pub fn hvals(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    list(ctx, args, Listing::Values)
}

/// HGETALL key
pub fn hgetall(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    list(ctx, args, Listing::Both)
}

/// HINCRBY key field increment: adds to the field's integer (a missing field counts as 0)
/// and replies with the result.
pub fn hincrby(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let delta = arg_i64(&args[3])?;
    let (key, field, now) = (&args[1], &args[2], ctx.now_ms);
    let limits = ctx.shared.store.limits().get();
    let (mut shard, hash) = ctx.db().lock(key);
    let result = match shard.get_mut(hash, key, now) {
        Some(entry) => {
            let fields = entry.value.as_hash_mut()?;
            let current = match fields.get(field) {
                Some(stored) => parse_i64(stored).ok_or(NOT_INTEGER_FIELD)?,
                None => 0,
            };
            let result = current.checked_add(delta).ok_or(errors::OVERFLOW)?;
            fields.set(field, IntText::new(result).as_bytes(), &limits);
            result
        }
        None => {
            let mut fields = Hash::new();
            fields.set(field, IntText::new(delta).as_bytes(), &limits);
            shard.set(hash, key, Value::hash(fields), None, now);
            delta
        }
    };
    shard.propagate_named(b"HINCRBY", args.slice(1..).iter());
    drop(shard);
    ctx.notify(notify::HASH, "hincrby", key);
    ctx.out.int(result);
    Ok(())
}

/// HINCRBYFLOAT key field increment: adds to the field's number (a missing field counts as
/// 0) and replies with the result as text, formatted as INCRBYFLOAT does.
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let delta = parse_f64(&args[3]).ok_or(errors::NOT_FLOAT)?;
    if delta.is_infinite() {
        return Err(CmdError::new("ERR value is NaN or Infinity"));
    }
    let (key, field, now) = (&args[1], &args[2], ctx.now_ms);
    let limits = ctx.shared.store.limits().get();
    let (mut shard, hash) = ctx.db().lock(key);
    let text = match shard.get_mut(hash, key, now) {
        Some(entry) => {
            let fields = entry.value.as_hash_mut()?;
            let current = match fields.get(field) {
                Some(stored) => parse_f64(stored).ok_or(NOT_FLOAT_FIELD)?,
                None => 0.0,
            };
            let text = float_result(current + delta)?;
            fields.set(field, text.as_bytes(), &limits);
            text
        }
        None => {
            let text = float_result(delta)?;
            let mut fields = Hash::new();
            fields.set(field, text.as_bytes(), &limits);
            shard.set(hash, key, Value::hash(fields), None, now);
            text
        }
    };
    // Propagated as its result, so replay never depends on floating-point rounding.
    shard.propagate(&[b"HSET", key, field, text.as_bytes()]);
    drop(shard);
    ctx.notify(notify::HASH, "hincrbyfloat", key);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]: `[next cursor, [field, value, ...]]`.
///
/// As in Redis, a missing key replies an empty batch and a key of another type `WRONGTYPE`
/// before the options are checked. A compact hash comes back whole with cursor 0, whatever
/// the cursor, as a Redis listpack does. For a table, a step visits one segment
/// ([`Hash::scan`]); steps go on until `count` fields were visited (matching or not) or
/// `10 * count` steps were taken.
pub fn hscan(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let cursor = parse_cursor(&args[2])?;
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_hash(db, &args[1], now, |fields| {
        let Some(fields) = fields else {
            reply_empty_scan(out);
            return Ok(());
        };
        let ScanOptions { pattern, count } = ScanOptions::parse(args)?;
        let mut found: Vec<(&[u8], &[u8])> = Vec::new();
        let (mut visited, mut steps) = (0usize, 0usize);
        let max_steps = count.saturating_mul(10);
        let mut next = cursor;
        loop {
            next = fields.scan(next, |field, value| {
                visited += 1;
                if pattern.is_none_or(|p| glob_match(p, field)) {
                    found.push((field, value));
                }
            });
            steps += 1;
            if next == 0 || visited >= count || steps >= max_steps {
                break;
            }
        }
        // A cursor holds at most 41 bits (see `SegMap::scan_segment`), so it fits an i64.
        out.array(2);
        out.bulk_int(i64::try_from(next).unwrap_or(0));
        out.array(found.len() * 2);
        for (field, value) in found {
            out.bulk(field);
            out.bulk(value);
        }
        Ok(())
    })?
}

/// HRANDFIELD key [count [WITHVALUES]]
///
/// Without a count: one random field, or nil. With a count `n > 0`: `min(n, len)` distinct
/// fields; `n < 0`: `|n|` fields drawn independently (repeats possible); 0: none. The count
/// and option are checked before the key (as Redis); a missing key gives an empty array.
/// WITHVALUES replies a flat field/value array in RESP2 and an array of `[field, value]`
/// pairs in RESP3, as Redis 7.2.
pub fn hrandfield(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    if args.len() == 2 {
        let out = &mut *ctx.out;
        return with_hash(db, &args[1], now, |fields| {
            let picked = fields.and_then(|fields| {
                let position = Random::new().below(fields.len());
                fields.sampler(1).get(position)
            });
            match picked {
                Some((field, _)) => out.bulk(field),
                None => out.null(),
            }
        });
    }
    let count = parse_i64(&args[2]).ok_or(errors::NOT_INTEGER)?;
    if count == i64::MIN {
        return Err(CmdError::new(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let with_values = match args.len() {
        3 => false,
        4 if is(&args[3], "WITHVALUES") => true,
        _ => return Err(errors::SYNTAX),
    };
    let out_of_range = CmdError::new("ERR value is out of range");
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(out_of_range);
    }
    if count < 0 && count.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(out_of_range);
    }
    let pairs_nested = with_values && ctx.out.version == Version::Resp3;
    let per_pick = if with_values && !pairs_nested { 2 } else { 1 };
    let out = &mut *ctx.out;
    with_hash(db, &args[1], now, |fields| {
        let Some(fields) = fields else {
            out.array(0);
            return;
        };
        let len = fields.len();
        // Bounded: |count| <= MAX_REPEATED_PICKS when negative; at most len replied when not.
        let wanted = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let replied = if count < 0 { wanted } else { wanted.min(len) };
        out.array(replied * per_pick);
        let mut emit = |(field, value): (&[u8], &[u8])| {
            if pairs_nested {
                out.array(2);
            }
            out.bulk(field);
            if with_values {
                out.bulk(value);
            }
        };
        let mut random = Random::new();
        if count < 0 {
            let sampler = fields.sampler(wanted);
            for _ in 0..wanted {
                if let Some(pair) = sampler.get(random.below(len)) {
                    emit(pair);
                }
            }
        } else if wanted >= len {
            fields.iter().for_each(emit);
        } else if wanted.saturating_mul(3) > len {
            // Most of the hash: a partial shuffle of every field.
            let mut all: Vec<(&[u8], &[u8])> = fields.iter().collect();
            for i in 0..wanted {
                let j = i + random.below(len - i);
                all.swap(i, j);
                emit(all[i]);
            }
        } else {
            // A small part: distinct random positions.
            let sampler = fields.sampler(wanted);
            let mut chosen = std::collections::HashSet::with_capacity(wanted);
            while chosen.len() < wanted {
                let position = random.below(len);
                if chosen.insert(position) {
                    if let Some(pair) = sampler.get(position) {
                        emit(pair);
                    }
                }
            }
        }
    })
}
