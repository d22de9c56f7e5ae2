//! Set commands: SADD, SREM, SCARD, SISMEMBER, SMISMEMBER, SMEMBERS, SRANDMEMBER, SPOP,
//! SMOVE, SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE, SSCAN.
//!
//! Single-key reads run under the shard's read lock ([`Db::with_live`]) and writes under its
//! write lock, validating every argument and the key's type before changing anything. The
//! multi-key commands lock every shard they name together ([`Db::read_keys`] to read,
//! [`Db::lock_keys`] to store or move), so each runs atomically across shards, and they check
//! the type of every key named, as Redis does, before replying. A set is created by its first
//! member and deleted with its last; a *STORE with an empty result deletes its destination.
//!
//! Propagation mirrors Redis: SADD, SREM, SMOVE and the *STORE commands as sent (their
//! effect is deterministic); SPOP, which picks at random, as the SREM of the members it
//! popped, or a DEL when it took them all.
//!
//! Keyspace notifications are Redis's, sent after the locks are dropped and only when
//! something changed: `sadd`, `srem`, `spop` and the store commands' own names (class `s`),
//! then `del` (class `g`) when a command empties a key and so removes it.

use std::collections::HashSet;

use protocol::Argv;

use super::collection::{reply_empty_scan, Random, ScanOptions, MAX_REPEATED_PICKS};
use super::{errors, is, parse_cursor, parse_i64, CmdError, Ctx};
use crate::glob::glob_match;
use crate::notify;
use crate::store::value::set::{Member, Set};
use crate::store::{Db, Lookup, MultiLock, Value};

/// A key a multi-key command did not lock: a bug in the command, reported, never a panic.
const NOT_LOCKED: CmdError = CmdError::new("ERR internal error: a key was not locked");

/// Runs `read` on the set at `key` (`None` if the key does not exist), under a read lock;
/// another type is `WRONGTYPE`.
fn with_set<R>(
    db: &Db,
    key: &[u8],
    now_ms: u64,
    read: impl FnOnce(Option<&Set>) -> R,
) -> Result<R, CmdError> {
    db.with_live(key, now_ms, |entry| match entry {
        Some(entry) => Ok(read(Some(entry.value.as_set()?))),
        None => Ok(read(None)),
    })
}

/// SADD key member [member ...]: replies with the number of new members.
///
/// As Redis 7.2, the number of members named picks the encoding up front: a new key is
/// created in the encoding that many members fit, and an existing compact set goes to a
/// hashtable if they would not fit it.
pub fn sadd(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let limits = ctx.shared.store.limits().get();
    let (key, now) = (&args[1], ctx.now_ms);
    let members = args.slice(2..);
    let (mut shard, hash) = ctx.db().lock(key);
    let (added, converted) = match shard.get_mut(hash, key, now) {
        Some(entry) => {
            let set = entry.value.as_set_mut()?;
            let before = set.encoding();
            set.prepare_for(members.len(), &limits);
            let converted = set.encoding() != before;
            let added = members.iter().filter(|m| set.add(*m, &limits)).count();
            (added, converted)
        }
        None => {
            let mut set = Set::for_members(&args[2], members.len(), &limits);
            let added = members.iter().filter(|m| set.add(*m, &limits)).count();
            shard.set(hash, key, Value::set(set), None, now);
            (added, false)
        }
    };
    // A set converted by the member count alone (every member already there) changed its
    // representation: propagating it (a no-op on replay) keeps the debug check honest.
    if added > 0 || converted {
        shard.propagate_named(b"SADD", args.slice(1..).iter());
    }
    drop(shard);
    if added > 0 {
        ctx.notify(notify::SET, "sadd", key);
    }
    ctx.out.count(added);
    Ok(())
}

/// SREM key member [member ...]: replies with how many members existed; deletes the key
/// with its last member.
pub fn srem(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (key, now) = (&args[1], ctx.now_ms);
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let set = entry.value.as_set_mut()?;
    let mut removed = 0usize;
    for member in args.slice(2..).iter() {
        removed += usize::from(set.remove(member));
        if set.is_empty() {
            break;
        }
    }
    let emptied = set.is_empty();
    if emptied {
        shard.delete(hash, key, now);
    }
    if removed > 0 {
        shard.propagate_named(b"SREM", args.slice(1..).iter());
    }
    drop(shard);
    if removed > 0 {
        ctx.notify(notify::SET, "srem", key);
    }
    if emptied {
        ctx.notify(notify::GENERIC, "del", key);
    }
    ctx.out.count(removed);
    Ok(())
}

/// SCARD key: the number of members (0 for a missing key).
pub fn scard(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let len = with_set(ctx.db(), &args[1], ctx.now_ms, |set| {
        set.map_or(0, Set::len)
    })?;
    ctx.out.count(len);
    Ok(())
}

/// SISMEMBER key member: 1 or 0.
pub fn sismember(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let found = with_set(ctx.db(), &args[1], ctx.now_ms, |set| {
        set.is_some_and(|set| set.contains(&args[2]))
    })?;
    ctx.out.int(i64::from(found));
    Ok(())
}

/// SMISMEMBER key member [member ...]: an array of 1 or 0, one per member.
pub fn smismember(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_set(db, &args[1], now, |set| {
        let members = args.slice(2..);
        out.array(members.len());
        for member in members.iter() {
            out.int(i64::from(set.is_some_and(|set| set.contains(member))));
        }
    })
}

/// SMEMBERS key: every member (a RESP3 set; an empty one for a missing key).
pub fn smembers(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_set(db, &args[1], now, |set| {
        out.set(set.map_or(0, Set::len));
        for member in set.into_iter().flat_map(Set::iter) {
            out.bulk(&member);
        }
    })
}

/// Members per SREM that SPOP propagates: one command in all but enormous pops (a replayed
/// command's arguments stay well inside the protocol's aggregate limit).
const POPS_PER_EFFECT: usize = 1 << 20;

/// `wanted` distinct random positions below `len` (`wanted < len`), in the order drawn:
/// a partial shuffle of every position when that is most of them, else draws that skip
/// repeats.
fn distinct_positions(wanted: usize, len: usize, random: &mut Random) -> Vec<usize> {
    if wanted.saturating_mul(3) > len {
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..wanted {
            let j = i + random.below(len - i);
            all.swap(i, j);
        }
        all.truncate(wanted);
        all
    } else {
        let mut chosen = HashSet::with_capacity(wanted);
        let mut order = Vec::with_capacity(wanted);
        while order.len() < wanted {
            let position = random.below(len);
            if chosen.insert(position) {
                order.push(position);
            }
        }
        order
    }
}

/// SRANDMEMBER key [count]
///
/// Without a count: one random member, or nil. With a count `n > 0`: `min(n, len)` distinct
/// members; `n < 0`: `|n|` members drawn independently (repeats possible); 0: none. The
/// count is checked before the key (as Redis); a missing key gives an empty array. The
/// reply is an array in RESP3 too, as in Redis.
pub fn srandmember(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    if args.len() == 2 {
        let out = &mut *ctx.out;
        return with_set(db, &args[1], now, |set| {
            let picked = set.and_then(|set| {
                let position = Random::new().below(set.len());
                set.sampler(1).get(position)
            });
            match picked {
                Some(member) => out.bulk(&member),
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
    if count < 0 && count.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(CmdError::new("ERR value is out of range"));
    }
    let out = &mut *ctx.out;
    with_set(db, &args[1], now, |set| {
        let Some(set) = set else {
            out.array(0);
            return;
        };
        let len = set.len();
        // Bounded: |count| <= MAX_REPEATED_PICKS when negative; at most len replied when not.
        let wanted = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let mut random = Random::new();
        if count < 0 {
            out.array(wanted);
            let sampler = set.sampler(wanted);
            for _ in 0..wanted {
                if let Some(member) = sampler.get(random.below(len)) {
                    out.bulk(&member);
                }
            }
        } else if wanted >= len {
            out.array(len);
            set.iter().for_each(|member| out.bulk(&member));
        } else {
            out.array(wanted);
            let sampler = set.sampler(wanted);
            for position in distinct_positions(wanted, len, &mut random) {
                if let Some(member) = sampler.get(position) {
                    out.bulk(&member);
                }
            }
        }
    })
}

/// SPOP key [count]
///
/// Without a count: removes and replies one random member (nil for a missing key),
/// propagated as `SREM key member`. With a count (a non-negative integer, checked before
/// the key): removes `min(count, len)` distinct random members and replies them as a set
/// (RESP3 `~`, as Redis); taking every member deletes the key and propagates `DEL key`,
/// taking fewer propagates `SREM key member...`.
pub fn spop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    let count = match args.get(2) {
        Some(text) => Some(
            parse_i64(text)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(CmdError::new("ERR value is out of range, must be positive"))?,
        ),
        None => None,
    };
    let (key, now) = (&args[1], ctx.now_ms);
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        match count {
            Some(_) => ctx.out.set(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let set = entry.value.as_set_mut()?;
    let len = set.len();
    let mut random = Random::new();
    let Some(count) = count else {
        let picked: Option<Box<[u8]>> = set
            .sampler(1)
            .get(random.below(len))
            .map(|member| Box::from(&*member));
        let Some(member) = picked else {
            drop(shard);
            ctx.out.null();
            return Ok(());
        };
        set.remove(&member);
        let emptied = set.is_empty();
        if emptied {
            shard.delete(hash, key, now);
        }
        shard.propagate(&[b"SREM", key, &member]);
        drop(shard);
        notify_spop(ctx, key, emptied);
        ctx.out.bulk(&member);
        return Ok(());
    };
    if count == 0 {
        drop(shard);
        ctx.out.set(0);
        return Ok(());
    }
    if count >= len {
        // Everything: reply the members and delete the key.
        let Some(taken) = shard.remove(hash, key, now) else {
            return Err(NOT_LOCKED);
        };
        shard.propagate(&[b"DEL", key]);
        drop(shard);
        notify_spop(ctx, key, true);
        let set = taken.value.as_set()?;
        ctx.out.set(set.len());
        for member in set.iter() {
            ctx.out.bulk(&member);
        }
        return Ok(());
    }
    let popped: Vec<Box<[u8]>> = {
        let sampler = set.sampler(count);
        distinct_positions(count, len, &mut random)
            .into_iter()
            .filter_map(|position| sampler.get(position).map(|member| Box::from(&*member)))
            .collect()
    };
    for member in &popped {
        set.remove(member);
    }
    for batch in popped.chunks(POPS_PER_EFFECT) {
        let mut effect: Vec<&[u8]> = Vec::with_capacity(batch.len() + 2);
        effect.extend([&b"SREM"[..], key]);
        effect.extend(batch.iter().map(|member| &**member));
        shard.propagate(&effect);
    }
    drop(shard);
    notify_spop(ctx, key, false);
    ctx.out.set(popped.len());
    for member in &popped {
        ctx.out.bulk(member);
    }
    Ok(())
}

/// SPOP's notifications: `spop`, then `del` if it took the last member.
fn notify_spop(ctx: &Ctx<'_>, key: &[u8], emptied: bool) {
    ctx.notify(notify::SET, "spop", key);
    if emptied {
        ctx.notify(notify::GENERIC, "del", key);
    }
}

/// SMOVE source destination member: moves `member` between sets atomically; 1 if it moved
/// (or, when source and destination are the same key, if it is there), 0 if not.
///
/// Redis's order: a missing source replies 0 before the destination's type is checked;
/// otherwise both types are checked before anything changes.
pub fn smove(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let limits = ctx.shared.store.limits().get();
    let (src, dst, member, now) = (&args[1], &args[2], &args[3], ctx.now_ms);
    let mut locked = ctx.db().lock_keys([src, dst]);
    let (shard, hash) = locked.shard(src).ok_or(NOT_LOCKED)?;
    let Some(entry) = shard.get_mut(hash, src, now) else {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    };
    let present = entry.value.as_set()?.contains(member);
    let (dshard, dhash) = locked.shard(dst).ok_or(NOT_LOCKED)?;
    if let Some(entry) = dshard.get_mut(dhash, dst, now) {
        entry.value.as_set()?;
    }
    if src == dst || !present {
        drop(locked);
        ctx.out.int(i64::from(present));
        return Ok(());
    }
    let (shard, hash) = locked.shard(src).ok_or(NOT_LOCKED)?;
    let mut emptied = false;
    if let Some(entry) = shard.get_mut(hash, src, now) {
        let set = entry.value.as_set_mut()?;
        set.remove(member);
        emptied = set.is_empty();
        if emptied {
            shard.delete(hash, src, now);
        }
    }
    let (dshard, dhash) = locked.shard(dst).ok_or(NOT_LOCKED)?;
    let added = match dshard.get_mut(dhash, dst, now) {
        Some(entry) => entry.value.as_set_mut()?.add(member, &limits),
        None => {
            let mut set = Set::for_members(member, 1, &limits);
            set.add(member, &limits);
            dshard.set(dhash, dst, Value::set(set), None, now);
            true
        }
    };
    locked.propagate_named(b"SMOVE", args.slice(1..).iter());
    drop(locked);
    // As Redis: the source's events, then `sadd` only if the destination did not have it.
    ctx.notify(notify::SET, "srem", src);
    if emptied {
        ctx.notify(notify::GENERIC, "del", src);
    }
    if added {
        ctx.notify(notify::SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

/// Visits the members of the intersection of `sets` (a missing key is an empty set), in the
/// smallest set's order, until `visit` returns false. Iterates the smallest set and probes
/// the others, smallest first, as Redis does.
fn intersect_each<'a>(sets: &[Option<&'a Set>], mut visit: impl FnMut(Member<'a>) -> bool) {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
        return;
    };
    sets.sort_by_key(|set| set.len());
    let Some((smallest, others)) = sets.split_first() else {
        return;
    };
    for member in smallest.iter() {
        if others.iter().all(|set| set.contains_member(&member)) && !visit(member) {
            return;
        }
    }
}

/// Members of the intersection of `sets` (a missing key is an empty set), in the smallest
/// set's order: what SINTER replies and SINTERSTORE stores.
pub fn intersection<'a>(sets: &[Option<&'a Set>]) -> Vec<Member<'a>> {
    let mut found = Vec::new();
    intersect_each(sets, |member| {
        found.push(member);
        true
    });
    found
}

/// Members of the union of `sets`, each once, in the order first met: what SUNION replies.
pub fn union<'a>(sets: &[Option<&'a Set>]) -> Vec<Member<'a>> {
    let total: usize = sets.iter().flatten().map(|set| set.len()).sum();
    let mut seen: HashSet<Member<'a>, foldhash::fast::RandomState> =
        HashSet::with_capacity_and_hasher(total, foldhash::fast::RandomState::default());
    let mut found = Vec::with_capacity(total);
    for member in sets.iter().flatten().flat_map(|set| set.iter()) {
        if seen.insert(member) {
            found.push(member);
        }
    }
    found
}

/// Members of the first of `sets` in none of the others, in the first set's order: what
/// SDIFF replies.
///
/// As Redis, picks the cheaper of two ways: probing every other set for each member of the
/// first (about `len(first) * others / 2` probes), or collecting the first set and striking
/// out every member of the others (about the sum of their sizes).
pub fn difference<'a>(sets: &[Option<&'a Set>]) -> Vec<Member<'a>> {
    let Some((Some(first), rest)) = sets.split_first() else {
        return Vec::new();
    };
    let others: Vec<&Set> = rest.iter().flatten().copied().collect();
    let probing = first.len().saturating_mul(others.len()) / 2;
    let striking = first.len() + others.iter().map(|set| set.len()).sum::<usize>();
    if probing <= striking {
        first
            .iter()
            .filter(|member| !others.iter().any(|set| set.contains_member(member)))
            .collect()
    } else {
        let mut left: HashSet<Member<'a>, foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(first.len(), foldhash::fast::RandomState::default());
        left.extend(first.iter());
        for member in others.iter().flat_map(|set| set.iter()) {
            left.remove(&member);
            if left.is_empty() {
                break;
            }
        }
        first
            .iter()
            .filter(|member| left.contains(member))
            .collect()
    }
}

/// Runs `read` on the sets at `keys` (`None` for a missing key), all read-locked together;
/// `WRONGTYPE` if any key holds another type. Keys found expired are deleted afterwards.
fn with_sets<R>(
    ctx: &mut Ctx<'_>,
    keys: Argv<'_>,
    read: impl FnOnce(&mut Ctx<'_>, &[Option<&Set>]) -> R,
) -> Result<R, CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let guard = db.read_keys(keys.iter());
    let mut expired = Vec::new();
    let mut sets = Vec::with_capacity(keys.len());
    let mut wrong_type = false;
    for (key, found) in keys.iter().zip(guard.lookups(keys.iter(), now)) {
        match found {
            Lookup::Live(entry) => match entry.value.as_set() {
                Ok(set) => sets.push(Some(set)),
                Err(_) => wrong_type = true,
            },
            Lookup::Expired => {
                expired.push(key);
                sets.push(None);
            }
            Lookup::Absent => sets.push(None),
        }
    }
    let result = if wrong_type {
        Err(errors::WRONGTYPE)
    } else {
        Ok(read(ctx, &sets))
    };
    drop(sets);
    drop(guard);
    db.expire_if_due(expired, now);
    result
}

/// Replies `members` as a set (an array in RESP2).
fn reply_members(ctx: &mut Ctx<'_>, members: &[Member<'_>]) {
    ctx.out.set(members.len());
    for member in members {
        ctx.out.bulk(member);
    }
}

/// SINTER key [key ...]
pub fn sinter(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    with_sets(ctx, args.slice(1..), |ctx, sets| {
        reply_members(ctx, &intersection(sets));
    })
}

/// SUNION key [key ...]
pub fn sunion(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    with_sets(ctx, args.slice(1..), |ctx, sets| {
        reply_members(ctx, &union(sets));
    })
}

/// SDIFF key [key ...]
pub fn sdiff(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    with_sets(ctx, args.slice(1..), |ctx, sets| {
        reply_members(ctx, &difference(sets));
    })
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]: the size of the intersection, counting
/// no further than `limit` (0: no limit). Options are checked before any key.
pub fn sintercard(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let numkeys = parse_i64(&args[1])
        .filter(|&n| n >= 1)
        .ok_or(CmdError::new("ERR numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - 2 {
        return Err(CmdError::new(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if is(&args[i], "LIMIT") && i + 1 < args.len() {
            limit = parse_i64(&args[i + 1])
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(CmdError::new("ERR LIMIT can't be negative"))?;
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let count = with_sets(ctx, args.slice(2..2 + numkeys), |_, sets| {
        let mut count = 0usize;
        intersect_each(sets, |_| {
            count += 1;
            limit == 0 || count < limit
        });
        count
    })?;
    ctx.out.count(count);
    Ok(())
}

/// The sets at `keys` in a locked group, cloned (a clone copies one pointer per segment of
/// a large set, and a small set's few bytes), so that a result can be computed from them
/// side by side before the destination is written. `WRONGTYPE` if any key holds another
/// type.
fn locked_sets(
    locked: &mut MultiLock<'_>,
    keys: Argv<'_>,
    now: u64,
) -> Result<Vec<Option<Set>>, CmdError> {
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys.iter() {
        let (shard, hash) = locked.shard(key).ok_or(NOT_LOCKED)?;
        match shard.get_mut(hash, key, now) {
            Some(entry) => sets.push(Some(entry.value.as_set()?.clone())),
            None => {
                shard.record_miss(key);
                sets.push(None);
            }
        }
    }
    Ok(sets)
}

/// SINTERSTORE, SUNIONSTORE and SDIFFSTORE: stores what `compute` makes of the sets at
/// `args[2..]` in `args[1]` (replacing any value and TTL there; an empty result deletes it)
/// and replies with its size. Propagated as sent when the destination changed; notified
/// as `event`, or as `del` when an empty result removed the destination.
fn store(
    ctx: &mut Ctx<'_>,
    args: Argv<'_>,
    name: &[u8],
    event: &str,
    compute: for<'a> fn(&[Option<&'a Set>]) -> Vec<Member<'a>>,
) -> Result<(), CmdError> {
    let limits = ctx.shared.store.limits().get();
    let (dst, sources, now) = (&args[1], args.slice(2..), ctx.now_ms);
    let mut locked = ctx.db().lock_keys(args.slice(1..).iter());
    let sets = locked_sets(&mut locked, sources, now)?;
    let result = {
        let views: Vec<Option<&Set>> = sets.iter().map(Option::as_ref).collect();
        let mut result = Set::new();
        for member in compute(&views) {
            result.add(&*member, &limits);
        }
        result
    };
    drop(sets);
    let size = result.len();
    let (shard, hash) = locked.shard(dst).ok_or(NOT_LOCKED)?;
    let changed = if size == 0 {
        shard.delete(hash, dst, now)
    } else {
        shard.set(hash, dst, Value::set(result), None, now);
        true
    };
    if changed {
        locked.propagate_named(name, args.slice(1..).iter());
    }
    drop(locked);
    if size > 0 {
        ctx.notify(notify::SET, event, dst);
    } else if changed {
        ctx.notify(notify::GENERIC, "del", dst);
    }
    ctx.out.count(size);
    Ok(())
}

/// SINTERSTORE destination key [key ...]
pub fn sinterstore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    store(ctx, args, b"SINTERSTORE", "sinterstore", intersection)
}

/// SUNIONSTORE destination key [key ...]
pub fn sunionstore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    store(ctx, args, b"SUNIONSTORE", "sunionstore", union)
}

/// SDIFFSTORE destination key [key ...]
pub fn sdiffstore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    store(ctx, args, b"SDIFFSTORE", "sdiffstore", difference)
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]: `[next cursor, [member, ...]]`.
///
/// As in Redis, the cursor is checked first, then a missing key replies an empty batch and
/// a key of another type `WRONGTYPE`, then the options. A compact set comes back whole
/// with cursor 0; a hashtable a segment per step ([`Set::scan`]), steps going on until
/// `count` members were visited (matching or not) or `10 * count` steps were taken.
pub fn sscan(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let cursor = parse_cursor(&args[2])?;
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_set(db, &args[1], now, |set| {
        let Some(set) = set else {
            reply_empty_scan(out);
            return Ok(());
        };
        let ScanOptions { pattern, count } = ScanOptions::parse(args)?;
        let mut found: Vec<Member<'_>> = Vec::new();
        let (mut visited, mut steps) = (0usize, 0usize);
        let max_steps = count.saturating_mul(10);
        let mut next = cursor;
        loop {
            next = set.scan(next, |member| {
                visited += 1;
                if pattern.is_none_or(|p| glob_match(p, &member)) {
                    found.push(member);
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
        out.array(found.len());
        for member in found {
            out.bulk(&member);
        }
        Ok(())
    })?
}
