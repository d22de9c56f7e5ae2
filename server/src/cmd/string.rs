//! String commands: GET, SET and its variants, MGET/MSET, counters, ranges.
//!
//! Read-modify-write commands (INCR, APPEND, SETRANGE, GETSET...) run entirely under their
//! shard's lock, which is what makes them atomic; [`incr_by`] is the same function the loom
//! models exercise.

use protocol::Argv;

use protocol::IntText;

use super::{arg_i64, errors, format_f64, is, parse_f64, parse_i64, CmdError, Ctx, Reply};
use crate::notify;
use crate::store::{Db, Lookup, Shard, Value};

/// Redis's default `proto-max-bulk-len`. APPEND and SETRANGE enforce the server's configured
/// value ([`crate::Config::proto_max_bulk_len`]), as Redis's `checkStringLength` does.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

/// How a write sets the key's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Remove any TTL (plain SET).
    Clear,
    /// Keep the key's current TTL (KEEPTTL).
    Keep,
    /// Expire at this Unix time in milliseconds.
    At(u64),
}

/// Converts a relative or absolute expire argument to an absolute deadline in milliseconds,
/// rejecting non-positive values and overflow as Redis does ("invalid expire time in '...'").
pub fn deadline_from(
    amount: i64,
    unit_ms: i64,
    absolute: bool,
    now_ms: u64,
    command: &str,
) -> Result<u64, CmdError> {
    let invalid = || CmdError::owned(format!("ERR invalid expire time in '{command}' command"));
    if amount <= 0 {
        return Err(invalid());
    }
    let ms = amount.checked_mul(unit_ms).ok_or_else(invalid)?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(i64::try_from(now_ms).map_err(|_| invalid())?)
            .ok_or_else(invalid)?
    };
    u64::try_from(at).map_err(|_| invalid())
}

/// Which expire option was given, with its unit and whether it is absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    fn parse(option: &[u8]) -> Option<Self> {
        [
            (ExpireKind::Ex, "EX"),
            (ExpireKind::Px, "PX"),
            (ExpireKind::ExAt, "EXAT"),
            (ExpireKind::PxAt, "PXAT"),
        ]
        .into_iter()
        .find(|(_, name)| is(option, name))
        .map(|(kind, _)| kind)
    }

    /// Milliseconds per unit and whether the amount is a Unix time.
    fn unit(self) -> (i64, bool) {
        match self {
            ExpireKind::Ex => (1000, false),
            ExpireKind::Px => (1, false),
            ExpireKind::ExAt => (1000, true),
            ExpireKind::PxAt => (1, true),
        }
    }
}

/// Which command's options [`parse_string_options`] accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptionsOf {
    Set,
    Getex,
}

/// Options of SET and GETEX, parsed as Redis's `parseExtendedStringArgumentsOrReply` does:
/// an option may be repeated (the last expire amount wins), conflicting options are a syntax
/// error, and the expire amount is only validated later, by [`StringOptions::deadline`] (GETEX
/// of a missing key replies nil whatever the amount).
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a [u8])>,
}

fn parse_string_options<'a>(
    args: Argv<'a>,
    start: usize,
    kind: OptionsOf,
) -> Result<StringOptions<'a>, CmdError> {
    let mut o = StringOptions {
        nx: false,
        xx: false,
        get: false,
        keepttl: false,
        persist: false,
        expire: None,
    };
    let set = kind == OptionsOf::Set;
    let mut i = start;
    while i < args.len() {
        let arg = &args[i];
        let given = o.expire.map(|(k, _)| k);
        if set && is(arg, "NX") && !o.xx {
            o.nx = true;
        } else if set && is(arg, "XX") && !o.nx {
            o.xx = true;
        } else if set && is(arg, "GET") {
            o.get = true;
        } else if set && is(arg, "KEEPTTL") && given.is_none() {
            o.keepttl = true;
        } else if !set && is(arg, "PERSIST") && given.is_none() {
            o.persist = true;
        } else if let Some(option) = ExpireKind::parse(arg)
            .filter(|&k| !o.keepttl && !o.persist && given.is_none_or(|g| g == k))
            .filter(|_| i + 1 < args.len())
        {
            o.expire = Some((option, args.arg(i + 1)));
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    Ok(o)
}

impl StringOptions<'_> {
    /// The absolute deadline of the expire option, if any, validated as Redis's
    /// `getExpireMillisecondsOrReply`.
    fn deadline(&self, now_ms: u64, command: &str) -> Result<Option<u64>, CmdError> {
        let Some((kind, amount)) = self.expire else {
            return Ok(None);
        };
        let amount = arg_i64(amount)?;
        let (unit, absolute) = kind.unit();
        deadline_from(amount, unit, absolute, now_ms, command).map(Some)
    }
}

/// Propagates the effect of a store of `value` with `deadline`: `SET key value [PXAT at]`,
/// or `DEL` when the deadline has already passed (the store deleted the key instead).
pub fn propagate_set(shard: &Shard, key: &[u8], value: &[u8], deadline: Option<u64>, now_ms: u64) {
    if !shard.wants_effects() {
        return;
    }
    match deadline {
        Some(at) if at <= now_ms => shard.propagate(&[b"DEL", key]),
        Some(at) => shard.propagate(&[
            b"SET",
            key,
            value,
            b"PXAT",
            IntText::new(at as i64).as_bytes(),
        ]),
        None => shard.propagate(&[b"SET", key, value]),
    }
}

/// GET key: under the shard's read lock, so GETs on other cores run alongside.
pub fn get(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    db.with_live(&args[1], now, |entry| {
        match entry {
            Some(entry) => out.bulk(entry.value.as_string()?),
            None => out.null(),
        }
        Ok(())
    })
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
pub fn set(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let options = parse_string_options(args, 3, OptionsOf::Set)?;
    let ttl = match options.deadline(ctx.now_ms, "set")? {
        Some(at) => Ttl::At(at),
        None if options.keepttl => Ttl::Keep,
        None => Ttl::Clear,
    };
    let (key, value) = (&args[1], &args[2]);
    let now = ctx.now_ms;
    let (mut shard, hash) = ctx.db().lock(key);
    let existing = shard.get_mut(hash, key, now);
    let exists = existing.is_some();
    let old_deadline = existing.as_ref().and_then(|e| e.expires_at());
    let old_value = match (&existing, options.get) {
        (Some(entry), true) => Some(entry.value.as_string()?.to_vec()),
        _ => None,
    };
    if options.get && !exists {
        // SET ... GET reads the old value: a keyspace miss, as in Redis.
        shard.record_miss(key);
    }
    let allowed = !(options.nx && exists || options.xx && !exists);
    if allowed {
        let deadline = match ttl {
            Ttl::Clear => None,
            Ttl::Keep => old_deadline,
            Ttl::At(at) => Some(at),
        };
        shard.set(hash, key, Value::Str(value.to_vec()), deadline, now);
        propagate_set(&shard, key, value, deadline, now);
    }
    drop(shard);
    if allowed {
        ctx.notify(notify::STRING, "set", key);
        if let Ttl::At(_) = ttl {
            ctx.notify(notify::GENERIC, "expire", key);
        }
    }
    if options.get {
        match old_value {
            Some(old) => ctx.out.bulk(&old),
            None => ctx.out.null(),
        }
    } else if allowed {
        ctx.out.ok();
    } else {
        ctx.out.null();
    }
    Ok(())
}

/// SETNX key value
pub fn setnx(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    let created = !shard.contains(hash, &args[1], now);
    if created {
        shard.set(hash, &args[1], Value::Str(args[2].to_vec()), None, now);
        propagate_set(&shard, &args[1], &args[2], None, now);
    }
    drop(shard);
    if created {
        ctx.notify(notify::STRING, "set", &args[1]);
    }
    ctx.out.int(i64::from(created));
    Ok(())
}

fn set_with_ttl(
    ctx: &mut Ctx<'_>,
    args: Argv<'_>,
    unit_ms: i64,
    name: &str,
) -> Result<(), CmdError> {
    let amount = arg_i64(&args[2])?;
    let deadline = deadline_from(amount, unit_ms, false, ctx.now_ms, name)?;
    let now = ctx.now_ms;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    shard.set(
        hash,
        &args[1],
        Value::Str(args[3].to_vec()),
        Some(deadline),
        now,
    );
    propagate_set(&shard, &args[1], &args[3], Some(deadline), now);
    drop(shard);
    ctx.notify(notify::STRING, "set", &args[1]);
    ctx.notify(notify::GENERIC, "expire", &args[1]);
    ctx.out.ok();
    Ok(())
}

/// SETEX key seconds value
pub fn setex(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_with_ttl(ctx, args, 1000, "setex")
}

/// PSETEX key milliseconds value
pub fn psetex(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_with_ttl(ctx, args, 1, "psetex")
}

/// MGET key [key ...]: one consistent snapshot across shards, under shared locks, so MGETs
/// and GETs on other connection threads run alongside.
pub fn mget(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let keys = args.slice(1..);
    let now = ctx.now_ms;
    let db = ctx.db();
    let read = db.read_keys(keys.iter());
    let mut expired = Vec::new();
    ctx.out.array(keys.len());
    for (key, found) in keys.iter().zip(read.lookups(keys.iter(), now)) {
        match found {
            Lookup::Live(entry) => match entry.value.as_string() {
                Ok(s) => ctx.out.bulk(s),
                Err(_) => ctx.out.null(),
            },
            Lookup::Expired => {
                expired.push(key);
                ctx.out.null();
            }
            Lookup::Absent => ctx.out.null(),
        }
    }
    drop(read);
    db.expire_if_due(expired, now);
    Ok(())
}

fn mset_generic(
    ctx: &mut Ctx<'_>,
    args: Argv<'_>,
    only_if_none_exist: bool,
) -> Result<bool, CmdError> {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::owned(format!(
            "ERR wrong number of arguments for '{}' command",
            if only_if_none_exist { "msetnx" } else { "mset" }
        )));
    }
    let pairs = args.slice(1..);
    let now = ctx.now_ms;
    let db = ctx.db();
    let mut locked = db.lock_keys(pairs.iter().step_by(2));
    locked.prefetch_entries(pairs.iter().step_by(2));
    if only_if_none_exist {
        for key in pairs.iter().step_by(2) {
            if let Some((shard, hash)) = locked.shard(key) {
                if shard.contains(hash, key, now) {
                    return Ok(false);
                }
            }
        }
    }
    for pair in pairs.pairs() {
        if let Some((shard, hash)) = locked.shard(pair[0]) {
            shard.set(hash, pair[0], Value::Str(pair[1].to_vec()), None, now);
        }
    }
    locked.propagate_named(b"MSET", pairs.iter());
    drop(locked);
    for key in pairs.iter().step_by(2) {
        ctx.notify(notify::STRING, "set", key);
    }
    Ok(true)
}

/// MSET key value [key value ...]: atomic across shards.
pub fn mset(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    mset_generic(ctx, args, false)?;
    ctx.out.ok();
    Ok(())
}

/// MSETNX key value [key value ...]: all or nothing.
pub fn msetnx(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let done = mset_generic(ctx, args, true)?;
    ctx.out.int(i64::from(done));
    Ok(())
}

/// GETSET key value: SET that returns the old value and clears the TTL.
pub fn getset(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    let old = match shard.get_read(hash, &args[1], now) {
        Some(entry) => Some(entry.value.as_string()?.to_vec()),
        None => None,
    };
    shard.set(hash, &args[1], Value::Str(args[2].to_vec()), None, now);
    propagate_set(&shard, &args[1], &args[2], None, now);
    drop(shard);
    ctx.notify(notify::STRING, "set", &args[1]);
    match old {
        Some(old) => ctx.out.bulk(&old),
        None => ctx.out.null(),
    }
    Ok(())
}

/// GETDEL key
pub fn getdel(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    match shard.get_read(hash, &args[1], now) {
        None => ctx.out.null(),
        Some(entry) => {
            entry.value.as_string()?;
            if let Some(entry) = shard.remove(hash, &args[1], now) {
                shard.propagate(&[b"DEL", &args[1]]);
                drop(shard);
                ctx.notify(notify::GENERIC, "del", &args[1]);
                ctx.out.bulk(entry.value.as_string()?);
            }
        }
    }
    Ok(())
}

/// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]
pub fn getex(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let options = parse_string_options(args, 2, OptionsOf::Getex)?;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    let (value, had_ttl) = match shard.get_read(hash, &args[1], now) {
        None => {
            drop(shard);
            ctx.out.null();
            return Ok(());
        }
        Some(entry) => (
            entry.value.as_string()?.to_vec(),
            entry.expires_at().is_some(),
        ),
    };
    // As Redis: the amount is validated only once the key is known to exist.
    // None: leave the TTL alone; Some(None): PERSIST; Some(Some(at)): new deadline.
    let change: Option<Option<u64>> = match options.deadline(now, "getex")? {
        Some(at) => Some(Some(at)),
        None if options.persist => Some(None),
        None => None,
    };
    if let Some(deadline) = change {
        shard.set_expiry(hash, &args[1], deadline, now);
        super::expire::propagate_expiry(&shard, &args[1], deadline, now);
    }
    drop(shard);
    match change {
        Some(Some(at)) if at <= now => ctx.notify(notify::GENERIC, "del", &args[1]),
        Some(Some(_)) => ctx.notify(notify::GENERIC, "expire", &args[1]),
        Some(None) if had_ttl => ctx.notify(notify::GENERIC, "persist", &args[1]),
        _ => {}
    }
    ctx.out.bulk(&value);
    Ok(())
}

/// APPEND key value: returns the new length.
pub fn append(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let max_len = ctx.shared.config.proto_max_bulk_len;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    let new_len = match shard.get_mut(hash, &args[1], now) {
        Some(entry) => {
            let current = entry.value.as_string_mut()?;
            if current.len() + args[2].len() > max_len {
                return Err(CmdError::new(
                    "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                ));
            }
            current.extend_from_slice(&args[2]);
            current.len()
        }
        None => {
            shard.set(hash, &args[1], Value::Str(args[2].to_vec()), None, now);
            args[2].len()
        }
    };
    shard.propagate(&[b"APPEND", &args[1], &args[2]]);
    drop(shard);
    ctx.notify(notify::STRING, "append", &args[1]);
    ctx.out.count(new_len);
    Ok(())
}

/// STRLEN key
pub fn strlen(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let len = ctx
        .db()
        .with_live(&args[1], ctx.now_ms, |entry| match entry {
            Some(entry) => entry.value.as_string().map(<[u8]>::len),
            None => Ok(0),
        })?;
    ctx.out.count(len);
    Ok(())
}

/// GETRANGE key start end: inclusive, negative offsets from the end.
pub fn getrange(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let start = arg_i64(&args[2])?;
    let end = arg_i64(&args[3])?;
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    db.with_live(&args[1], now, |entry| match entry {
        Some(entry) => range_of(entry.value.as_string()?, start, end, out),
        None => {
            out.bulk(b"");
            Ok(())
        }
    })
}

/// Writes the GETRANGE reply for `value`.
fn range_of(value: &[u8], start: i64, end: i64, out: &mut Reply) -> Result<(), CmdError> {
    let len = i64::try_from(value.len()).unwrap_or(i64::MAX);
    // Redis 7 semantics: a negative start past the beginning clamps to 0; start > end or an
    // empty string gives "".
    if start < 0 && end < 0 && start > end {
        out.bulk(b"");
        return Ok(());
    }
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    start = start.max(0);
    end = end.max(0);
    end = end.min(len - 1);
    if len == 0 || start > end {
        out.bulk(b"");
    } else {
        out.bulk(&value[start as usize..=end as usize]);
    }
    Ok(())
}

/// SETRANGE key offset value: zero-pads, returns the new length.
pub fn setrange(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let offset = arg_i64(&args[2])?;
    let offset =
        usize::try_from(offset).map_err(|_| CmdError::new("ERR offset is out of range"))?;
    let patch = &args[3];
    let too_big = CmdError::new("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    let max_len = ctx.shared.config.proto_max_bulk_len;
    let now = ctx.now_ms;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    let new_len = match shard.get_mut(hash, &args[1], now) {
        Some(entry) => {
            let current = entry.value.as_string_mut()?;
            if patch.is_empty() {
                current.len()
            } else {
                let end = offset.checked_add(patch.len()).filter(|&e| e <= max_len);
                let end = end.ok_or(too_big)?;
                if current.len() < end {
                    current.resize(end, 0);
                }
                current[offset..end].copy_from_slice(patch);
                current.len()
            }
        }
        None if patch.is_empty() => 0,
        None => {
            let end = offset.checked_add(patch.len()).filter(|&e| e <= max_len);
            let end = end.ok_or(too_big)?;
            let mut value = vec![0; end];
            value[offset..].copy_from_slice(patch);
            shard.set(hash, &args[1], Value::Str(value), None, now);
            end
        }
    };
    if !patch.is_empty() {
        shard.propagate(&[b"SETRANGE", &args[1], &args[2], patch]);
    }
    drop(shard);
    if !patch.is_empty() {
        ctx.notify(notify::STRING, "setrange", &args[1]);
    }
    ctx.out.count(new_len);
    Ok(())
}

/// Adds `delta` to the integer stored at `key` (0 if absent) under the shard lock; keeps the
/// TTL, as Redis does. Shared by the INCR family and the loom models.
pub fn incr_by(db: &Db, key: &[u8], delta: i64, now_ms: u64) -> Result<i64, CmdError> {
    let (mut shard, hash) = db.lock(key);
    match shard.get_mut(hash, key, now_ms) {
        Some(entry) => {
            let current = entry.value.as_string_mut()?;
            let value = parse_i64(current).ok_or(errors::NOT_INTEGER)?;
            let new = value.checked_add(delta).ok_or(errors::OVERFLOW)?;
            current.clear();
            current.extend_from_slice(IntText::new(new).as_bytes());
            shard.propagate(&[b"INCRBY", key, IntText::new(delta).as_bytes()]);
            Ok(new)
        }
        None => {
            let text = IntText::new(delta).as_bytes().to_vec();
            shard.set(hash, key, Value::Str(text), None, now_ms);
            shard.propagate(&[b"INCRBY", key, IntText::new(delta).as_bytes()]);
            Ok(delta)
        }
    }
}

fn reply_incr(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> Result<(), CmdError> {
    let value = incr_by(ctx.db(), key, delta, ctx.now_ms)?;
    ctx.notify(notify::STRING, "incrby", key);
    ctx.out.int(value);
    Ok(())
}

/// INCR key
pub fn incr(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    reply_incr(ctx, &args[1], 1)
}

/// DECR key
pub fn decr(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    reply_incr(ctx, &args[1], -1)
}

/// INCRBY key increment
pub fn incrby(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let delta = arg_i64(&args[2])?;
    reply_incr(ctx, &args[1], delta)
}

/// DECRBY key decrement
pub fn decrby(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let delta = arg_i64(&args[2])?;
    let delta = delta
        .checked_neg()
        .ok_or(CmdError::new("ERR decrement would overflow"))?;
    reply_incr(ctx, &args[1], delta)
}

/// INCRBYFLOAT key increment: 64-bit floats (Redis uses long double; see SPEC.md).
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let delta = parse_f64(&args[2]).ok_or(errors::NOT_FLOAT)?;
    let now = ctx.now_ms;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    // One lookup: the stored string is parsed and then overwritten in place.
    match shard.get_mut(hash, &args[1], now) {
        Some(entry) => {
            let stored = entry.value.as_string_mut()?;
            let current = parse_f64(stored).ok_or(errors::NOT_FLOAT)?;
            let text = float_result(current + delta)?;
            stored.clear();
            stored.extend_from_slice(text.as_bytes());
            // Propagated as its result, so replay never depends on floating-point rounding.
            shard.propagate(&[b"SET", &args[1], text.as_bytes(), b"KEEPTTL"]);
            drop(shard);
            ctx.out.bulk(text.as_bytes());
        }
        None => {
            let text = float_result(delta)?;
            shard.set(
                hash,
                &args[1],
                Value::Str(text.as_bytes().to_vec()),
                None,
                now,
            );
            shard.propagate(&[b"SET", &args[1], text.as_bytes(), b"KEEPTTL"]);
            drop(shard);
            ctx.out.bulk(text.as_bytes());
        }
    }
    ctx.notify(notify::STRING, "incrbyfloat", &args[1]);
    Ok(())
}

/// The text INCRBYFLOAT stores and replies, or its error for a non-finite result.
pub(super) fn float_result(value: f64) -> Result<String, CmdError> {
    if value.is_finite() {
        Ok(format_f64(value))
    } else {
        Err(CmdError::new("ERR increment would produce NaN or Infinity"))
    }
}
