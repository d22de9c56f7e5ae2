//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET,
//! LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH and LMPOP.
//!
//! Reads run under the shard's read lock ([`Db::with_live`]); writes under its write lock (both
//! keys' shards for LMOVE and RPOPLPUSH, every key's for LMPOP), validating every argument
//! and the key's type before they change anything. A list is created by its first push and
//! deleted with its last element, as in Redis. Writes propagate as sent, when they changed
//! something, except LMPOP, which propagates as `LPOP key n` / `RPOP key n` with the number
//! of elements it popped (as Redis 7 does).
//!
//! # API for the blocking commands (`cmd::blocking`)
//!
//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP do what their non-blocking forms do once a
//! key is ready, so this module exposes the parts they share:
//!
//! - [`End`] (`LEFT`/`RIGHT`, `End::parse` with Redis's syntax error) and `MultiPop`,
//!   `parse_multi_pop`: LMPOP's `numkeys key [key ...] LEFT|RIGHT [COUNT n]` tail, from
//!   the position of `numkeys` (2 for BLMPOP, whose timeout comes first).
//! - `pop_elements(shard, hash, key, now, end, count, fill)`: pops up to `count` elements
//!   from one end of the list at a key on a locked shard (`WRONGTYPE` for another type, no
//!   element for a missing key), deleting the key when it empties (and saying so, for the
//!   `del` event); no propagation and no keyspace event (the caller decides what to emit,
//!   e.g. `propagate_pop(shard, key, end, None)` for BLPOP's `LPOP key`). `fill(ctx)` gives the current `list-max-listpack-size` bounds.
//! - `multi_pop`: LMPOP's whole operation (first non-empty key in argument order,
//!   `WRONGTYPE` on the first list of another type met before it), propagated as
//!   `LPOP|RPOP key popped`, with its keyspace events; `Ok(None)` when every key is missing
//!   or empty.
//! - `move_element`: LMOVE's whole operation, propagated as the caller's `propagate_as`
//!   (the command as sent for LMOVE/RPOPLPUSH; `LMOVE ...` / `RPOPLPUSH ...` for the
//!   blocking forms).
//! - `reply_multi_pop`: LMPOP's reply, `[key, [elements]]`.
//! - `pushed`: called after every push onto a key (LPUSH, RPUSH, LPUSHX, RPUSHX, LINSERT,
//!   and the destination of a move), with the shard still locked: the hook where clients
//!   blocked on that key are to be woken.

use protocol::Argv;

use super::{arg_i64, errors, is, CmdError, Ctx, Reply};
use crate::notify;
use crate::store::value::list::{Element, End, Fill, Needle};
use crate::store::value::List;
use crate::store::{Db, Shard, Value};

/// LPOP/RPOP's error for a count that is not a non-negative integer.
const COUNT_NOT_POSITIVE: CmdError = CmdError::new("ERR value is out of range, must be positive");
/// LSET's error for an index outside the list.
const INDEX_OUT_OF_RANGE: CmdError = CmdError::new("ERR index out of range");

impl End {
    /// Parses `LEFT` or `RIGHT` (any case); anything else is a syntax error.
    pub(crate) fn parse(arg: &[u8]) -> Result<End, CmdError> {
        if is(arg, "LEFT") {
            Ok(End::Head)
        } else if is(arg, "RIGHT") {
            Ok(End::Tail)
        } else {
            Err(errors::SYNTAX)
        }
    }

    /// The pop command that takes elements from this end: what LMPOP propagates as.
    fn pop_command(self) -> &'static [u8] {
        match self {
            End::Head => b"LPOP",
            End::Tail => b"RPOP",
        }
    }

    /// The keyspace event of a push onto this end: `lpush` or `rpush`.
    pub(crate) fn push_event(self) -> &'static str {
        match self {
            End::Head => "lpush",
            End::Tail => "rpush",
        }
    }

    /// The keyspace event of a pop from this end: `lpop` or `rpop`.
    pub(crate) fn pop_event(self) -> &'static str {
        match self {
            End::Head => "lpop",
            End::Tail => "rpop",
        }
    }
}

/// Writes one element as a bulk string (an integer element in its decimal form).
#[inline]
fn reply_element(out: &mut Reply, element: Element<'_>) {
    match element {
        Element::Bytes(bytes) => out.bulk(bytes),
        Element::Int(n) => out.bulk_int(n),
    }
}

/// The chunk bounds a write follows: `list-max-listpack-size`, read for each command.
pub(crate) fn fill(ctx: &Ctx<'_>) -> Fill {
    Fill::from_limits(&ctx.shared.store.limits().get())
}

/// Called after elements were pushed onto the list at `key` (the shard owning it is still
/// locked): where clients blocked on the key are to be woken (see the module documentation).
#[inline]
pub(crate) fn pushed(_ctx: &Ctx<'_>, _key: &[u8]) {}

/// LPUSH, RPUSH, LPUSHX and RPUSHX: pushes `args[2..]` one by one at `end` and replies with
/// the new length. With `only_existing`, a missing key is left alone and the reply is 0.
fn push(ctx: &mut Ctx<'_>, args: Argv<'_>, end: End, only_existing: bool) -> Result<(), CmdError> {
    let (key, now, fill) = (&args[1], ctx.now_ms, fill(ctx));
    let (mut shard, hash) = ctx.db().lock(key);
    let elements = args.slice(2..);
    let len = match shard.get_mut(hash, key, now) {
        Some(entry) => {
            let list = entry.value.as_list_mut()?;
            for element in elements.iter() {
                list.push(end, element, fill);
            }
            list.len()
        }
        None if only_existing => {
            drop(shard);
            ctx.out.int(0);
            return Ok(());
        }
        None => {
            let mut list = List::new();
            for element in elements.iter() {
                list.push(end, element, fill);
            }
            let len = list.len();
            shard.set(hash, key, Value::list(list), None, now);
            len
        }
    };
    shard.propagate_named(&args[0], args.slice(1..).iter());
    pushed(ctx, key);
    drop(shard);
    ctx.notify(notify::LIST, end.push_event(), key);
    ctx.out.count(len);
    Ok(())
}

/// LPUSH key element [element ...]
pub fn lpush(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    push(ctx, args, End::Head, false)
}

/// RPUSH key element [element ...]
pub fn rpush(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    push(ctx, args, End::Tail, false)
}

/// LPUSHX key element [element ...]
pub fn lpushx(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    push(ctx, args, End::Head, true)
}

/// RPUSHX key element [element ...]
pub fn rpushx(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    push(ctx, args, End::Tail, true)
}

/// Pops up to `count` elements from `end` of the list at `key` in a locked shard, deleting
/// the key if that empties it (the `bool`: true when it did). A missing key gives no
/// element; a key of another type is `WRONGTYPE`. Propagates and notifies nothing: the
/// caller emits the command that replays the pop and the events.
pub(crate) fn pop_elements(
    shard: &mut Shard,
    hash: u64,
    key: &[u8],
    now_ms: u64,
    end: End,
    count: usize,
    fill: Fill,
) -> Result<(Vec<Vec<u8>>, bool), CmdError> {
    let Some(entry) = shard.get_mut(hash, key, now_ms) else {
        return Ok((Vec::new(), false));
    };
    let list = entry.value.as_list_mut()?;
    let take = count.min(list.len());
    let mut popped = Vec::with_capacity(take);
    for _ in 0..take {
        match list.pop(end, fill) {
            Some(element) => popped.push(element),
            None => break,
        }
    }
    let emptied = list.is_empty();
    if emptied {
        shard.delete(hash, key, now_ms);
    }
    Ok((popped, emptied))
}

/// Propagates `LPOP key [count]` (or RPOP): how a pop served to a client is replayed.
pub(crate) fn propagate_pop(shard: &Shard, key: &[u8], end: End, count: Option<usize>) {
    match count {
        Some(count) => {
            let count = protocol::IntText::new(i64::try_from(count).unwrap_or(i64::MAX));
            shard.propagate(&[end.pop_command(), key, count.as_bytes()]);
        }
        None => shard.propagate(&[end.pop_command(), key]),
    }
}

/// LPOP and RPOP: `key [count]`. Without a count, one element or nil; with one, an array of
/// up to `count` elements (an empty array for 0 on an existing list, a null array for a
/// missing key), as Redis 7. The count is checked before the key.
fn pop(ctx: &mut Ctx<'_>, args: Argv<'_>, end: End) -> Result<(), CmdError> {
    let count = match args.len() {
        2 => None,
        3 => Some(
            super::parse_i64(&args[2])
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(COUNT_NOT_POSITIVE)?,
        ),
        _ => {
            return Err(CmdError::owned(format!(
                "ERR wrong number of arguments for '{}' command",
                String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
            )))
        }
    };
    let (key, now, fill) = (&args[1], ctx.now_ms, fill(ctx));
    let (mut shard, hash) = ctx.db().lock(key);
    let exists = match shard.get_mut(hash, key, now) {
        Some(entry) => {
            entry.value.as_list()?;
            true
        }
        None => false,
    };
    if !exists {
        drop(shard);
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let (popped, emptied) =
        pop_elements(&mut shard, hash, key, now, end, count.unwrap_or(1), fill)?;
    if !popped.is_empty() {
        shard.propagate_named(&args[0], args.slice(1..).iter());
    }
    drop(shard);
    if !popped.is_empty() {
        notify_popped(ctx, key, end, emptied);
    }
    match count {
        Some(_) => {
            ctx.out.array(popped.len());
            for element in &popped {
                ctx.out.bulk(element);
            }
        }
        None => match popped.first() {
            Some(element) => ctx.out.bulk(element),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

/// Publishes the events of a pop from `end` of `key`: `lpop`/`rpop`, then `del` if it
/// emptied (and so deleted) the list, as Redis does.
pub(crate) fn notify_popped(ctx: &Ctx<'_>, key: &[u8], end: End, emptied: bool) {
    ctx.notify(notify::LIST, end.pop_event(), key);
    if emptied {
        ctx.notify(notify::GENERIC, "del", key);
    }
}

/// LPOP key [count]
pub fn lpop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    pop(ctx, args, End::Head)
}

/// RPOP key [count]
pub fn rpop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    pop(ctx, args, End::Tail)
}

/// Runs `read` on the list at `key` (`None` if the key does not exist), under a read lock;
/// another type is `WRONGTYPE`.
fn with_list<R>(
    db: &Db,
    key: &[u8],
    now_ms: u64,
    read: impl FnOnce(Option<&List>) -> R,
) -> Result<R, CmdError> {
    db.with_live(key, now_ms, |entry| match entry {
        Some(entry) => Ok(read(Some(entry.value.as_list()?))),
        None => Ok(read(None)),
    })
}

/// LLEN key: the number of elements (0 for a missing key).
pub fn llen(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let len = with_list(ctx.db(), &args[1], ctx.now_ms, |list| {
        list.map_or(0, List::len)
    })?;
    ctx.out.count(len);
    Ok(())
}

/// Redis's index range: `start` and `stop` inclusive, negative from the tail, clamped to the
/// list; `None` when the range is empty.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return None;
    }
    // Both are in 0..len here.
    Some((start as usize, stop as usize))
}

/// LRANGE key start stop: the elements from `start` to `stop`, inclusive.
pub fn lrange(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let start = arg_i64(&args[2])?;
    let stop = arg_i64(&args[3])?;
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_list(db, &args[1], now, |list| {
        let range = list.and_then(|list| Some((list, clamp_range(start, stop, list.len())?)));
        let Some((list, (first, last))) = range else {
            out.array(0);
            return;
        };
        out.array(last - first + 1);
        for element in list.range(first, last + 1) {
            reply_element(out, element);
        }
    })
}

/// An index argument (LINDEX, LSET) resolved against a list of `len` elements: negative
/// counts from the tail; `None` when it falls outside.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let index = if index < 0 {
        index.checked_add(len)?
    } else {
        index
    };
    (0..len).contains(&index).then_some(index as usize)
}

/// LINDEX key index: the element at `index`, or nil. As in Redis the key is looked up (and
/// its type checked) before the index is parsed.
pub fn lindex(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_list(db, &args[1], now, |list| {
        let Some(list) = list else {
            out.null();
            return Ok(());
        };
        let index = arg_i64(&args[2])?;
        match resolve_index(index, list.len()).and_then(|i| list.get(i)) {
            Some(element) => reply_element(out, element),
            None => out.null(),
        }
        Ok(())
    })?
}

/// LSET key index element: replaces the element at `index`. A missing key is `ERR no such
/// key`, an index outside the list `ERR index out of range`.
pub fn lset(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (key, now, fill) = (&args[1], ctx.now_ms, fill(ctx));
    let (mut shard, hash) = ctx.db().lock(key);
    let entry = shard.get_mut(hash, key, now).ok_or(errors::NO_SUCH_KEY)?;
    let list = entry.value.as_list_mut()?;
    let index = arg_i64(&args[2])?;
    let index = resolve_index(index, list.len()).ok_or(INDEX_OUT_OF_RANGE)?;
    list.set(index, &args[3], fill);
    shard.propagate_named(b"LSET", args.slice(1..).iter());
    drop(shard);
    ctx.notify(notify::LIST, "lset", key);
    ctx.out.ok();
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element: inserts next to the first occurrence of `pivot`
/// (from the head); replies with the new length, -1 if there is no pivot, 0 for a missing
/// key.
pub fn linsert(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let after = if is(&args[2], "AFTER") {
        true
    } else if is(&args[2], "BEFORE") {
        false
    } else {
        return Err(errors::SYNTAX);
    };
    let (key, pivot, element) = (&args[1], &args[3], &args[4]);
    let (now, fill) = (ctx.now_ms, fill(ctx));
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let list = entry.value.as_list_mut()?;
    let Some(position) = list.position(pivot) else {
        drop(shard);
        ctx.out.int(-1);
        return Ok(());
    };
    list.insert(position + usize::from(after), element, fill);
    let len = list.len();
    shard.propagate_named(b"LINSERT", args.slice(1..).iter());
    pushed(ctx, key);
    drop(shard);
    ctx.notify(notify::LIST, "linsert", key);
    ctx.out.count(len);
    Ok(())
}

/// LREM key count element: removes the first `count` occurrences of `element` from the head
/// (`count` > 0), the last `-count` from the tail (< 0), or all (0); replies how many.
pub fn lrem(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let count = arg_i64(&args[2])?;
    let (key, element, now, fill) = (&args[1], &args[3], ctx.now_ms, fill(ctx));
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let list = entry.value.as_list_mut()?;
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let limit = if limit == 0 { usize::MAX } else { limit };
    let end = if count < 0 { End::Tail } else { End::Head };
    let removed = list.remove_matching(element, end, limit, fill);
    let emptied = list.is_empty();
    if emptied {
        shard.delete(hash, key, now);
    }
    if removed > 0 {
        shard.propagate_named(b"LREM", args.slice(1..).iter());
    }
    drop(shard);
    if removed > 0 {
        ctx.notify(notify::LIST, "lrem", key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.out.count(removed);
    Ok(())
}

/// LTRIM key start stop: keeps only the elements from `start` to `stop` (inclusive); a
/// range that keeps nothing deletes the key.
pub fn ltrim(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let start = arg_i64(&args[2])?;
    let stop = arg_i64(&args[3])?;
    let (key, now, fill) = (&args[1], ctx.now_ms, fill(ctx));
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        ctx.out.ok();
        return Ok(());
    };
    let list = entry.value.as_list_mut()?;
    let len = list.len();
    let (changed, emptied) = match clamp_range(start, stop, len) {
        Some((first, last)) => {
            list.retain_range(first..last + 1, fill);
            (list.len() != len, false)
        }
        None => {
            shard.delete(hash, key, now);
            (true, true)
        }
    };
    if changed {
        shard.propagate_named(b"LTRIM", args.slice(1..).iter());
    }
    drop(shard);
    // As Redis: `ltrim` for any trim of an existing list, even one that keeps everything.
    ctx.notify(notify::LIST, "ltrim", key);
    if emptied {
        ctx.notify(notify::GENERIC, "del", key);
    }
    ctx.out.ok();
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
///
/// The index of the `rank`-th match (negative: counting from the tail), or with COUNT an
/// array of up to `num-matches` indexes (0: all); MAXLEN bounds how many elements are
/// compared. Indexes always count from the head. The options are checked before the key.
pub fn lpos(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let non_negative = |arg: &[u8], error: &'static str| {
        super::parse_i64(arg)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(CmdError::new(error))
    };
    let mut i = 3;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(errors::SYNTAX)?;
        if is(&args[i], "RANK") {
            rank = arg_i64(value)?;
            if rank == i64::MIN {
                return Err(CmdError::new(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            if rank == 0 {
                return Err(CmdError::new(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(&args[i], "COUNT") {
            count = Some(non_negative(value, "ERR COUNT can't be negative")?);
        } else if is(&args[i], "MAXLEN") {
            maxlen = non_negative(value, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    let needle = Needle::new(&args[2]);
    with_list(db, &args[1], now, |list| {
        let Some(list) = list else {
            match count {
                Some(_) => out.array(0),
                None => out.null(),
            }
            return;
        };
        let len = list.len();
        let skip = usize::try_from(rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
        let wanted = match count {
            Some(0) => usize::MAX,
            Some(n) => n,
            None => 1,
        };
        let scanned = if maxlen == 0 { len } else { maxlen.min(len) };
        let found: Vec<usize> = if rank > 0 {
            list.iter()
                .take(scanned)
                .enumerate()
                .filter(|(_, e)| e.matches(&needle))
                .map(|(i, _)| i)
                .skip(skip)
                .take(wanted)
                .collect()
        } else {
            list.iter()
                .rev()
                .take(scanned)
                .enumerate()
                .filter(|(_, e)| e.matches(&needle))
                .map(|(i, _)| len - 1 - i)
                .skip(skip)
                .take(wanted)
                .collect()
        };
        match count {
            Some(_) => {
                out.array(found.len());
                for index in found {
                    out.count(index);
                }
            }
            None => match found.first() {
                Some(&index) => out.count(index),
                None => out.null(),
            },
        }
    })
}

/// Moves one element from `from` of the list at `src` to `to` of the list at `dst` (LMOVE's
/// whole operation), creating `dst` if needed and deleting `src` if emptied; returns the
/// element, or `None` when `src` does not exist. `WRONGTYPE` if `src`, or (when `src`
/// exists) `dst`, holds another type. Propagates `propagate_as` and publishes the events
/// (the push onto `dst`, then the pop from `src` and its `del`, as Redis) when it moved
/// something.
pub(crate) fn move_element(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    propagate_as: &[&[u8]],
) -> Result<Option<Vec<u8>>, CmdError> {
    let Some((element, emptied)) = move_locked(ctx, src, dst, from, to, propagate_as)? else {
        return Ok(None);
    };
    ctx.notify(notify::LIST, to.push_event(), dst);
    notify_popped(ctx, src, from, emptied);
    Ok(Some(element))
}

/// [`move_element`]'s work under the locks of both keys: the element moved and whether
/// `src` was emptied (and deleted).
fn move_locked(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    propagate_as: &[&[u8]],
) -> Result<Option<(Vec<u8>, bool)>, CmdError> {
    let (now, fill) = (ctx.now_ms, fill(ctx));
    let mut locked = ctx.db().lock_keys([src, dst]);
    let Some((shard, src_hash)) = locked.shard(src) else {
        return Ok(None);
    };
    let Some(entry) = shard.get_mut(src_hash, src, now) else {
        return Ok(None);
    };
    let source = entry.value.as_list_mut()?;
    if src == dst {
        // A rotation (or nothing, for one element on the same end): the key stays.
        let Some(element) = source.pop(from, fill) else {
            return Ok(None);
        };
        source.push(to, &element, fill);
        shard.propagate(propagate_as);
        pushed(ctx, dst);
        return Ok(Some((element, false)));
    }
    if source.is_empty() {
        return Ok(None);
    }
    // The destination's type is checked before anything changes.
    {
        let Some((dshard, dst_hash)) = locked.shard(dst) else {
            return Ok(None);
        };
        if let Some(entry) = dshard.get_mut(dst_hash, dst, now) {
            entry.value.as_list()?;
        }
    }
    let Some((shard, src_hash)) = locked.shard(src) else {
        return Ok(None);
    };
    let (mut popped, emptied) = pop_elements(shard, src_hash, src, now, from, 1, fill)?;
    let Some(element) = popped.pop() else {
        return Ok(None);
    };
    let Some((dshard, dst_hash)) = locked.shard(dst) else {
        return Ok(None);
    };
    match dshard.get_mut(dst_hash, dst, now) {
        Some(entry) => entry.value.as_list_mut()?.push(to, &element, fill),
        None => {
            let mut list = List::new();
            list.push(to, &element, fill);
            dshard.set(dst_hash, dst, Value::list(list), None, now);
        }
    }
    dshard.propagate(propagate_as);
    pushed(ctx, dst);
    Ok(Some((element, emptied)))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT: the element moved, or nil.
pub fn lmove(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let from = End::parse(&args[3])?;
    let to = End::parse(&args[4])?;
    let as_sent: Vec<&[u8]> = args.iter().collect();
    let moved = move_element(ctx, &args[1], &args[2], from, to, &as_sent)?;
    match moved {
        Some(element) => ctx.out.bulk(&element),
        None => ctx.out.null(),
    }
    Ok(())
}

/// RPOPLPUSH source destination: LMOVE source destination RIGHT LEFT.
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let as_sent: Vec<&[u8]> = args.iter().collect();
    let moved = move_element(ctx, &args[1], &args[2], End::Tail, End::Head, &as_sent)?;
    match moved {
        Some(element) => ctx.out.bulk(&element),
        None => ctx.out.null(),
    }
    Ok(())
}

/// What a multi-key pop took: the key and its elements, in pop order.
pub(crate) type Popped<'k> = (&'k [u8], Vec<Vec<u8>>);

/// LMPOP's arguments after `numkeys`: the keys, the end and the count.
pub(crate) struct MultiPop<'a> {
    /// The keys, in argument order.
    pub keys: Argv<'a>,
    /// Which end to pop from.
    pub end: End,
    /// Most elements to pop (1 without COUNT).
    pub count: usize,
}

/// Parses `numkeys key [key ...] LEFT|RIGHT [COUNT count]` starting at `args[numkeys_at]`
/// (1 for LMPOP, 2 for BLMPOP), with Redis's errors and their order.
pub(crate) fn parse_multi_pop(args: Argv<'_>, numkeys_at: usize) -> Result<MultiPop<'_>, CmdError> {
    let numkeys = super::parse_i64(&args[numkeys_at])
        .filter(|&n| n > 0)
        .ok_or(CmdError::new("ERR numkeys should be greater than 0"))?;
    let end_at = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_at + 1))
        .filter(|&at| at < args.len())
        .ok_or(errors::SYNTAX)?;
    let end = End::parse(&args[end_at])?;
    let mut count = None;
    let mut i = end_at + 1;
    while i < args.len() {
        match args.get(i + 1) {
            Some(value) if count.is_none() && is(&args[i], "COUNT") => {
                count = Some(
                    super::parse_i64(value)
                        .filter(|&n| n > 0)
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or(CmdError::new("ERR count should be greater than 0"))?,
                );
            }
            _ => return Err(errors::SYNTAX),
        }
        i += 2;
    }
    Ok(MultiPop {
        keys: args.slice(numkeys_at + 1..end_at),
        end,
        count: count.unwrap_or(1),
    })
}

/// LMPOP's operation: pops up to `pop.count` elements from `pop.end` of the first key in
/// `pop.keys` holding a non-empty list, propagates `LPOP|RPOP key popped` and publishes
/// the pop's events. `WRONGTYPE` for a key of another type met before it; `Ok(None)` when
/// there is no such key.
pub(crate) fn multi_pop<'k>(
    ctx: &mut Ctx<'_>,
    pop: &MultiPop<'k>,
) -> Result<Option<Popped<'k>>, CmdError> {
    let (now, fill) = (ctx.now_ms, fill(ctx));
    let mut locked = ctx.db().lock_keys(pop.keys.iter());
    for key in pop.keys.iter() {
        let Some((shard, hash)) = locked.shard(key) else {
            continue;
        };
        let (popped, emptied) = pop_elements(shard, hash, key, now, pop.end, pop.count, fill)?;
        if !popped.is_empty() {
            propagate_pop(shard, key, pop.end, Some(popped.len()));
            drop(locked);
            notify_popped(ctx, key, pop.end, emptied);
            return Ok(Some((key, popped)));
        }
    }
    Ok(None)
}

/// Writes LMPOP's reply: `[key, [element ...]]`, or a null array.
pub(crate) fn reply_multi_pop(ctx: &mut Ctx<'_>, popped: Option<Popped<'_>>) {
    match popped {
        Some((key, elements)) => {
            ctx.out.array(2);
            ctx.out.bulk(key);
            ctx.out.array(elements.len());
            for element in &elements {
                ctx.out.bulk(element);
            }
        }
        None => ctx.out.null_array(),
    }
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let pop = parse_multi_pop(args, 1)?;
    let popped = multi_pop(ctx, &pop)?;
    reply_multi_pop(ctx, popped);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clamp_as_redis() {
        assert_eq!(clamp_range(0, -1, 3), Some((0, 2)));
        assert_eq!(clamp_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(2, 1, 3), None);
        assert_eq!(clamp_range(3, 5, 3), None);
        assert_eq!(clamp_range(-1, -1, 3), Some((2, 2)));
        assert_eq!(clamp_range(0, -4, 3), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(-4, 3), None);
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(resolve_index(i64::MIN, 3), None);
    }
}
