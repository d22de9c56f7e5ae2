//! TTL commands: EXPIRE family (with NX/XX/GT/LT), TTL family, PERSIST.

use protocol::Argv;

use protocol::IntText;

use super::{arg_i64, is, CmdError, Ctx};
use crate::notify;
use crate::store::Shard;

/// Condition flags of EXPIRE and friends (Redis 7).
#[derive(Default)]
struct Condition {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Condition {
    fn parse(args: Argv<'_>) -> Result<Self, CmdError> {
        let mut c = Condition::default();
        for arg in args {
            if is(arg, "NX") {
                c.nx = true;
            } else if is(arg, "XX") {
                c.xx = true;
            } else if is(arg, "GT") {
                c.gt = true;
            } else if is(arg, "LT") {
                c.lt = true;
            } else {
                return Err(CmdError::owned(format!(
                    "ERR Unsupported option {}",
                    super::printable(arg, 128)
                )));
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::new(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(CmdError::new(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether a key with `current` deadline (None: persistent) may get `new`.
    /// A persistent key counts as an infinite TTL for GT/LT, as in Redis.
    fn allows(&self, current: Option<u64>, new: i64) -> bool {
        if self.nx && current.is_some() || self.xx && current.is_none() {
            return false;
        }
        match current.map(|c| i64::try_from(c).unwrap_or(i64::MAX)) {
            None => !self.gt,
            Some(current) => !(self.gt && new <= current || self.lt && new >= current),
        }
    }
}

/// Propagates a TTL change of an existing key as replayable: `PEXPIREAT key at`
/// (absolute), `DEL` for a deadline already past (the key was deleted), `PERSIST` for `None`.
pub fn propagate_expiry(shard: &Shard, key: &[u8], deadline: Option<u64>, now_ms: u64) {
    if !shard.wants_effects() {
        return;
    }
    match deadline {
        Some(at) if at <= now_ms => shard.propagate(&[b"DEL", key]),
        Some(at) => shard.propagate(&[b"PEXPIREAT", key, IntText::new(at as i64).as_bytes()]),
        None => shard.propagate(&[b"PERSIST", key]),
    }
}

fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: Argv<'_>,
    unit_ms: i64,
    absolute: bool,
    name: &str,
) -> Result<(), CmdError> {
    let amount = arg_i64(&args[2])?;
    let condition = Condition::parse(args.slice(3..))?;
    let now = ctx.now_ms;
    // As Redis: negative and past times are allowed (they delete the key), overflow is not.
    let invalid = || CmdError::owned(format!("ERR invalid expire time in '{name}' command"));
    let base = if absolute {
        0
    } else {
        i64::try_from(now).map_err(|_| invalid())?
    };
    let deadline = amount
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(base))
        .ok_or_else(invalid)?;
    let key = &args[1];
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let current = entry.expires_at();
    let applied = condition.allows(current, deadline);
    if applied {
        // A deadline at or before now deletes the key.
        let deadline = Some(u64::try_from(deadline).unwrap_or(0));
        shard.set_expiry(hash, key, deadline, now);
        propagate_expiry(&shard, key, deadline, now);
    }
    drop(shard);
    if applied {
        // A deadline already past deleted the key: that is what subscribers hear.
        let deleted = u64::try_from(deadline).unwrap_or(0) <= now;
        let event = if deleted { "del" } else { "expire" };
        ctx.notify(notify::GENERIC, event, key);
    }
    ctx.out.int(i64::from(applied));
    Ok(())
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub fn expire(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, 1000, false, "expire")
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub fn pexpire(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, 1, false, "pexpire")
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
pub fn expireat(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, 1000, true, "expireat")
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
pub fn pexpireat(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// What the TTL family reports.
#[derive(Clone, Copy)]
enum TtlReport {
    RemainingSeconds,
    RemainingMillis,
    AbsoluteSeconds,
    AbsoluteMillis,
}

fn ttl_generic(ctx: &mut Ctx<'_>, args: Argv<'_>, report: TtlReport) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let reply = ctx.db().with_live(&args[1], now, |entry| match entry {
        None => -2,
        Some(entry) => match entry.expires_at() {
            None => -1,
            Some(at) => {
                // In i128: a deadline near i64::MAX (PEXPIREAT k 9223372036854775807) must
                // not overflow when rounded.
                let at = i128::from(at);
                let remaining = (at - i128::from(now)).max(0);
                // Redis rounds seconds to the nearest whole second.
                let reply = match report {
                    TtlReport::RemainingSeconds => (remaining + 500) / 1000,
                    TtlReport::RemainingMillis => remaining,
                    TtlReport::AbsoluteSeconds => (at + 500) / 1000,
                    TtlReport::AbsoluteMillis => at,
                };
                i64::try_from(reply).unwrap_or(i64::MAX)
            }
        },
    });
    ctx.out.int(reply);
    Ok(())
}

/// TTL key
pub fn ttl(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, args, TtlReport::RemainingSeconds)
}

/// PTTL key
pub fn pttl(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, args, TtlReport::RemainingMillis)
}

/// EXPIRETIME key
pub fn expiretime(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, args, TtlReport::AbsoluteSeconds)
}

/// PEXPIRETIME key
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, args, TtlReport::AbsoluteMillis)
}

/// PERSIST key: 1 if a TTL was removed.
pub fn persist(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let (mut shard, hash) = ctx.db().lock(&args[1]);
    let had_ttl = shard
        .get_mut(hash, &args[1], now)
        .is_some_and(|entry| entry.expires_at().is_some());
    if had_ttl {
        shard.set_expiry(hash, &args[1], None, now);
        shard.propagate(&[b"PERSIST", &args[1]]);
    }
    drop(shard);
    if had_ttl {
        ctx.notify(notify::GENERIC, "persist", &args[1]);
    }
    ctx.out.int(i64::from(had_ttl));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Condition;

    #[test]
    fn conditions_follow_redis() {
        let gt = Condition {
            gt: true,
            ..Condition::default()
        };
        assert!(!gt.allows(None, 10), "GT on a persistent key never applies");
        assert!(gt.allows(Some(5), 10));
        assert!(!gt.allows(Some(10), 10));
        let lt = Condition {
            lt: true,
            ..Condition::default()
        };
        assert!(lt.allows(None, 10), "LT on a persistent key always applies");
        assert!(!lt.allows(Some(5), 10));
        let nx = Condition {
            nx: true,
            ..Condition::default()
        };
        assert!(nx.allows(None, 1));
        assert!(!nx.allows(Some(1), 2));
        let xx = Condition {
            xx: true,
            ..Condition::default()
        };
        assert!(!xx.allows(None, 1));
        assert!(xx.allows(Some(1), 2));
    }
}
