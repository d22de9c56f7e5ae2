//! Blocking commands (issue 16): BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX and BZMPOP, and the connection's side of a blocked client.
//!
//! A handler validates its arguments, then locks the shards of all its keys (and of BLMOVE's
//! destination) at once and looks at the keys in argument order: the first that holds
//! elements is popped right away, exactly as the non-blocking command would (and propagated
//! as Redis does: BLPOP as `LPOP key`, BLMOVE as `LMOVE`...); a key of another type is
//! `WRONGTYPE`. If every key is empty, it registers a [`Waiter`] on each of them under the
//! same locks (no push can slip between the check and the registration) and leaves the
//! waiter in [`Session::blocked`](super::Session::blocked). The connection then flushes the
//! replies before it and runs [`wait`]: it sleeps until the waiter is served, its timeout
//! passes, CLIENT UNBLOCK interrupts it or its socket closes, and writes the reply. Serving,
//! registration and the no-lost-wake-up argument are in `store::waiters`.
//!
//! Inside MULTI (issue 17, not implemented yet) these commands must not block: they will
//! answer as if their timeout had passed at once, as Redis does.

use std::time::Duration;

use bytes::BytesMut;
use protocol::Argv;
use tokio::io::AsyncReadExt;

use super::list::parse_multi_pop;
use super::zset::{write_key_member_score, write_mpop_reply, MpopArgs, Side};
use super::{errors, is, CmdError, Ctx, Reply, Session};
use crate::clients::ClientInfo;
use crate::notify;
use crate::shared::Shared;
use crate::store::value::list::{End, Fill};
use crate::store::waiters::{
    self, BlockOp, Outcome, Waiter, CANCELLED, SERVED, TIMED_OUT, UNBLOCKED_ERROR,
    UNBLOCKED_TIMEOUT, WAITING,
};
use crate::sync::{Arc, Ordering};

/// The reply CLIENT UNBLOCK ... ERROR gives the blocked client.
pub const UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// How a served command's reply looks (one per command family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// BLPOP, BRPOP: `[key, element]`.
    KeyElement,
    /// BLMOVE, BRPOPLPUSH: the element.
    Element,
    /// BLMPOP: `[key, [element ...]]`.
    KeyElements,
    /// BZPOPMIN, BZPOPMAX: `[key, member, score]`.
    KeyMemberScore,
    /// BZMPOP: `[key, [[member, score] ...]]`.
    KeyPairs,
}

/// A command that blocked: what the connection waits for.
#[derive(Debug)]
pub struct Blocked {
    /// The waiter registered on the command's keys.
    pub waiter: Arc<Waiter>,
    /// How to reply once it is served.
    pub shape: Shape,
    /// Milliseconds to wait; 0 waits forever.
    pub timeout_ms: u64,
}

/// Parses a blocking timeout as Redis 7.2 does: decimal seconds (a long double there, an f64
/// here), rounded up to whole milliseconds; 0 waits forever.
pub fn parse_timeout(arg: &[u8], now_ms: u64) -> Result<u64, CmdError> {
    let not_float = CmdError::new("ERR timeout is not a float or out of range");
    let text = std::str::from_utf8(arg).map_err(|_| not_float.clone())?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return Err(not_float);
    }
    let seconds: f64 = text.parse().map_err(|_| not_float.clone())?;
    if seconds.is_nan() {
        return Err(not_float);
    }
    let ms = seconds * 1000.0;
    if ms > i64::MAX as f64 {
        return Err(CmdError::new("ERR timeout is out of range"));
    }
    // Rounded up first, as Redis does, so -0.0001 (-0.1 ms) is 0: wait for ever.
    let mut ms = ms.ceil();
    if ms == 0.0 && !text.starts_with('-') && underflowed(text) {
        // A positive value too small for a double (1e-400) is one a long double still holds,
        // and Redis rounds it up to 1 ms.
        ms = 1.0;
    }
    // `as` saturates: -inf becomes i64::MIN, which is negative.
    let ms = ms as i64;
    if ms < 0 {
        return Err(CmdError::new("ERR timeout is negative"));
    }
    let ms = ms as u64;
    if ms > 0 && ms > i64::MAX as u64 - now_ms {
        return Err(CmdError::new("ERR timeout is out of range"));
    }
    Ok(ms)
}

/// True if the number `text` (which parsed as 0) has a non-zero digit in its mantissa.
fn underflowed(text: &str) -> bool {
    text.split(['e', 'E'])
        .next()
        .is_some_and(|mantissa| mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)))
}

/// Pops from the first of `keys` that has elements, or blocks on all of them.
fn pop_or_block(
    ctx: &mut Ctx<'_>,
    keys: Argv<'_>,
    op: BlockOp,
    shape: Shape,
    timeout_ms: u64,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let db = ctx.db();
    let dst: Option<&[u8]> = match &op {
        BlockOp::ListMove { dst, .. } => Some(dst),
        _ => None,
    };
    let mut locked = db.lock_keys(keys.iter().chain(dst));
    for key in keys.iter() {
        let Some((shard, hash)) = locked.shard(key) else {
            continue;
        };
        let Some(entry) = shard.get_mut(hash, key, now) else {
            continue;
        };
        if !op.served_by(&entry.value) {
            return Err(errors::WRONGTYPE);
        }
        // Collections are deleted when emptied, so a live key has elements.
        if let Some(dst) = dst {
            if dst != key {
                let wrong = locked.shard(dst).is_some_and(|(shard, hash)| {
                    shard
                        .get_mut(hash, dst, now)
                        .is_some_and(|entry| entry.value.as_list().is_err())
                });
                if wrong {
                    return Err(errors::WRONGTYPE);
                }
            }
        }
        let fill = Fill::from_limits(&ctx.shared.store.limits().get());
        let (outcome, emptied) = waiters::pop_now_reporting(&mut locked, key, &op, fill, now);
        drop(locked);
        if !matches!(outcome, Outcome::Failed(_)) {
            notify_served(ctx.shared, ctx.session.db, &op, key, emptied, now);
        }
        write_outcome(ctx.out, shape, outcome);
        return Ok(());
    }
    if ctx.session.deny_blocking {
        // Inside EXEC or a script nothing may wait: reply as a timeout would, as Redis does.
        drop(locked);
        ctx.out.null_array();
        return Ok(());
    }
    let waiter = Arc::new(Waiter::new(
        u32::try_from(ctx.session.db).unwrap_or(u32::MAX),
        keys.iter(),
        op,
    ));
    let blocking = ctx.shared.store.blocking();
    for key in &waiter.keys {
        if let Some((shard, _)) = locked.shard(key) {
            shard.add_waiter(key, &waiter, blocking);
        }
    }
    drop(locked);
    blocking.blocked();
    ctx.session.client.set_blocked(Some(Arc::clone(&waiter)));
    ctx.session.blocked = Some(Box::new(Blocked {
        waiter,
        shape,
        timeout_ms,
    }));
    Ok(())
}

/// Publishes the keyspace events of a pop done for a blocking command, at once or when a
/// write served it later, as its non-blocking twin does: a move's push onto its
/// destination first, then the pop (`lpop`, `rpop`, `zpopmin`, `zpopmax`), then `del` if
/// it emptied the key.
fn notify_served(shared: &Shared, db: usize, op: &BlockOp, key: &[u8], emptied: bool, now_ms: u64) {
    let (class, event) = match op {
        BlockOp::ListPop { end, .. } => (notify::LIST, end.pop_event()),
        BlockOp::ListMove { from, to, dst, .. } => {
            shared.notify(notify::LIST, to.push_event(), db, dst, now_ms);
            (notify::LIST, from.pop_event())
        }
        BlockOp::ZPop { max: true, .. } => (notify::ZSET, "zpopmax"),
        BlockOp::ZPop { max: false, .. } => (notify::ZSET, "zpopmin"),
    };
    shared.notify(class, event, db, key, now_ms);
    if emptied {
        shared.notify(notify::GENERIC, "del", db, key, now_ms);
    }
}

/// Serves the clients blocked on keys that writes made ready ([`waiters::serve_ready`]) and
/// publishes the events of their pops, after the events of the write that served them (as
/// Redis orders them). Call with no shard lock held.
pub(crate) fn serve_ready(shared: &Shared, now_ms: u64) {
    waiters::serve_ready_reporting(&shared.store, now_ms, &mut |served| {
        notify_served(
            shared,
            served.db,
            served.op,
            served.key,
            served.emptied,
            now_ms,
        );
    });
}

/// BLPOP key [key ...] timeout / BRPOP: `[key, element]`, or a null array on timeout.
fn bpop(ctx: &mut Ctx<'_>, args: Argv<'_>, end: End) -> Result<(), CmdError> {
    let timeout = parse_timeout(&args[args.len() - 1], ctx.now_ms)?;
    let keys = args.slice(1..args.len() - 1);
    let op = BlockOp::ListPop { end, count: None };
    pop_or_block(ctx, keys, op, Shape::KeyElement, timeout)
}

/// BLPOP key [key ...] timeout
pub fn blpop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    bpop(ctx, args, End::Head)
}

/// BRPOP key [key ...] timeout
pub fn brpop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    bpop(ctx, args, End::Tail)
}

/// Pops from `src` onto `dst`, blocking while `src` is empty.
fn bmove(
    ctx: &mut Ctx<'_>,
    args: Argv<'_>,
    from: End,
    to: End,
    timeout: u64,
    rpoplpush: bool,
) -> Result<(), CmdError> {
    let op = BlockOp::ListMove {
        from,
        to,
        dst: args[2].into(),
        rpoplpush,
    };
    pop_or_block(ctx, args.slice(1..2), op, Shape::Element, timeout)
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn blmove(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let from = End::parse(&args[3])?;
    let to = End::parse(&args[4])?;
    let timeout = parse_timeout(&args[5], ctx.now_ms)?;
    bmove(ctx, args, from, to, timeout, false)
}

/// BRPOPLPUSH source destination timeout
pub fn brpoplpush(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let timeout = parse_timeout(&args[3], ctx.now_ms)?;
    bmove(ctx, args, End::Tail, End::Head, timeout, true)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn blmpop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let pop = parse_multi_pop(args, 2)?;
    let timeout = parse_timeout(&args[1], ctx.now_ms)?;
    let op = BlockOp::ListPop {
        end: pop.end,
        count: Some(pop.count),
    };
    pop_or_block(ctx, pop.keys, op, Shape::KeyElements, timeout)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn bzmpop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let parsed = MpopArgs::parse(args, 2)?;
    let timeout = parse_timeout(&args[1], ctx.now_ms)?;
    let op = BlockOp::ZPop {
        max: parsed.side == Side::Max,
        count: Some(parsed.count),
    };
    let keys = args.slice(parsed.first_key..parsed.first_key + parsed.numkeys);
    pop_or_block(ctx, keys, op, Shape::KeyPairs, timeout)
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout
fn bzpop(ctx: &mut Ctx<'_>, args: Argv<'_>, max: bool) -> Result<(), CmdError> {
    let timeout = parse_timeout(&args[args.len() - 1], ctx.now_ms)?;
    let keys = args.slice(1..args.len() - 1);
    let op = BlockOp::ZPop { max, count: None };
    pop_or_block(ctx, keys, op, Shape::KeyMemberScore, timeout)
}

/// BZPOPMIN key [key ...] timeout
pub fn bzpopmin(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    bzpop(ctx, args, false)
}

/// BZPOPMAX key [key ...] timeout
pub fn bzpopmax(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    bzpop(ctx, args, true)
}

/// Writes the reply of a served (or immediately answered) blocking command.
fn write_outcome(out: &mut Reply, shape: Shape, outcome: Outcome) {
    match outcome {
        Outcome::Failed(text) => out.error(text),
        Outcome::Popped { key, items } => match shape {
            Shape::Element => match items.first() {
                Some(item) => out.bulk(item),
                None => out.null_array(),
            },
            Shape::KeyElements => {
                out.array(2);
                out.bulk(&key);
                out.array(items.len());
                for item in &items {
                    out.bulk(item);
                }
            }
            _ => {
                out.array(2);
                out.bulk(&key);
                match items.first() {
                    Some(item) => out.bulk(item),
                    None => out.null(),
                }
            }
        },
        Outcome::ZPopped { key, items } => match shape {
            Shape::KeyPairs => write_mpop_reply(out, &key, &items),
            _ => match items.first() {
                Some((member, score)) => write_key_member_score(out, &key, member, *score),
                None => out.null_array(),
            },
        },
    }
}

/// Ends a wait however it ends (reply, timeout, disconnect, or the connection's task being
/// dropped at shutdown): the waiter is marked ended if nobody served it, its registrations
/// are removed, and it stops counting as blocked.
struct Registration<'a> {
    waiter: Arc<Waiter>,
    shared: &'a Shared,
    client: Arc<ClientInfo>,
    /// The task that ends the wait when the timeout passes.
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        self.waiter.end(CANCELLED);
        let store = &self.shared.store;
        if let Some(db) = store.db(self.waiter.db as usize) {
            waiters::unregister(db, &self.waiter);
        }
        store.blocking().unblocked();
        self.client.set_blocked(None);
    }
}

/// Releases the blocked command in `session.blocked` when its connection closes before it
/// could wait (its earlier replies could not be written): as a disconnect during the wait.
pub fn abandon(session: &mut Session, shared: &Shared) {
    let Some(blocked) = session.blocked.take() else {
        return;
    };
    drop(Registration {
        waiter: blocked.waiter,
        shared,
        client: session.client.shared_info(),
        timer: None,
    });
}

/// Waits for the outcome of the blocked command in `session.blocked` (taken from it) and
/// writes its reply into `reply`: served, timed out (a null array: `*-1` in RESP2, `_` in
/// RESP3), or unblocked by CLIENT UNBLOCK. Reads the socket meanwhile, only to notice a
/// disconnect (what it reads is kept in `input` for after the wait, not run). Returns false
/// if the connection must close (the client left, or the server is shutting down).
pub async fn wait(
    session: &mut Session,
    reply: &mut Reply,
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    input: &mut BytesMut,
    shared: &Shared,
) -> bool {
    let Some(blocked) = session.blocked.take() else {
        return true;
    };
    let Blocked {
        waiter,
        shape,
        timeout_ms,
    } = *blocked;
    // The connection threads run no timer (see `accept`): the timeout sleeps on the
    // server's main runtime, and ends the wait as CLIENT UNBLOCK would.
    let timer = (timeout_ms > 0).then(|| {
        let waiter = Arc::clone(&waiter);
        shared.timers.spawn(async move {
            tokio::time::sleep(Duration::from_millis(timeout_ms)).await;
            waiter.interrupt(TIMED_OUT);
        })
    });
    let registration = Registration {
        waiter,
        shared,
        client: session.client.shared_info(),
        timer,
    };
    let waiter = &registration.waiter;
    let ended = loop {
        let state = waiter.state();
        if state != WAITING {
            break state;
        }
        tokio::select! {
            () = waiter.signal.notified() => {}
            read = stream.read_buf(input) => match read {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    shared.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            },
            () = shared.shutdown.started() => return false,
        }
    };
    let start = reply.buf.len();
    match ended {
        SERVED => {
            // The server claims the waiter, then pops and hands the outcome over under the
            // same locks: wait for the hand-over if the claim was seen first.
            let outcome = loop {
                if let Some(outcome) = waiter.take_outcome() {
                    break outcome;
                }
                waiter.signal.notified().await;
            };
            write_outcome(reply, shape, outcome);
            drop(registration);
            // The pop it answers is a write: count it, and under appendfsync always let the
            // reply wait for the log as any write's does.
            session.writes += 1;
            if session.track_write_replies {
                session.write_replies.push(start..reply.buf.len());
            }
            return true;
        }
        TIMED_OUT | UNBLOCKED_TIMEOUT => reply.null_array(),
        UNBLOCKED_ERROR => reply.error(UNBLOCKED),
        _ => return false,
    }
    true
}

/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]: 1 if that client was blocked and now is not.
pub fn client_unblock(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    if args.len() > 4 {
        return Err(CmdError::owned(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            super::printable(&args[1], 128)
        )));
    }
    let reason = match args.get(3) {
        None => UNBLOCKED_TIMEOUT,
        Some(arg) if is(arg, "TIMEOUT") => UNBLOCKED_TIMEOUT,
        Some(arg) if is(arg, "ERROR") => UNBLOCKED_ERROR,
        Some(_) => {
            return Err(CmdError::new(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let id = super::arg_i64(&args[2])?;
    let waiter = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.session.client.registry().blocked_waiter(id));
    let unblocked = waiter.is_some_and(|waiter| waiter.interrupt(reason));
    ctx.out.int(i64::from(unblocked));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_redis_7_2() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_timeout(b"0", now), Ok(0));
        assert_eq!(parse_timeout(b"1", now), Ok(1000));
        assert_eq!(parse_timeout(b"0.1", now), Ok(100));
        assert_eq!(parse_timeout(b"1.5e-3", now), Ok(2), "rounded up");
        assert_eq!(parse_timeout(b".5", now), Ok(500));
        assert_eq!(parse_timeout(b"-0", now), Ok(0));
        assert_eq!(
            parse_timeout(b"-0.0001", now),
            Ok(0),
            "rounds up to 0: for ever"
        );
        assert_eq!(parse_timeout(b"1e-400", now), Ok(1), "a long double's 1 ms");
        assert_eq!(parse_timeout(b"-1e-400", now), Ok(0));
        let negative = Err(CmdError::new("ERR timeout is negative"));
        assert_eq!(parse_timeout(b"-1", now), negative);
        assert_eq!(parse_timeout(b"-inf", now), negative);
        let not_float = Err(CmdError::new("ERR timeout is not a float or out of range"));
        for bad in [&b"abc"[..], b"", b" 1", b"1 ", b"nan", b"1x"] {
            assert_eq!(parse_timeout(bad, now), not_float, "{bad:?}");
        }
        let range = Err(CmdError::new("ERR timeout is out of range"));
        assert_eq!(parse_timeout(b"inf", now), range);
        assert_eq!(parse_timeout(b"1e400", now), range);
        assert_eq!(parse_timeout(b"99999999999999999", now), range);
        assert_eq!(
            parse_timeout(b"9223372036854775", now),
            range,
            "now + timeout"
        );
    }
}
