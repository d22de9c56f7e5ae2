//! Server commands: DBSIZE, FLUSHDB/FLUSHALL, TIME, SHUTDOWN.

use protocol::Argv;

use super::{errors, is, CmdError, Ctx};
use crate::store::{Db, LazyFree};

/// DBSIZE
pub fn dbsize(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let n = ctx.db().len();
    ctx.out.count(n);
    Ok(())
}

/// Parses the optional ASYNC | SYNC of FLUSHDB / FLUSHALL; true for ASYNC.
fn flush_mode(args: Argv<'_>) -> Result<bool, CmdError> {
    match args.get(1) {
        None => Ok(false),
        Some(mode) if args.len() == 2 && is(mode, "ASYNC") => Ok(true),
        Some(mode) if args.len() == 2 && is(mode, "SYNC") => Ok(false),
        Some(_) => Err(errors::SYNTAX),
    }
}

/// Empties `dbs`. The old tables are freed after the locks are released: with
/// `asynchronous` by the store's lazy-free thread (the client gets its reply at once), else
/// here before the reply, as Redis's SYNC.
fn flush_dbs<'a>(dbs: impl Iterator<Item = &'a Db>, lazyfree: &LazyFree, asynchronous: bool) {
    let tables: Vec<_> = dbs.flat_map(Db::take_all).collect();
    if asynchronous {
        lazyfree.dispose_tables(tables);
    }
}

/// FLUSHDB [ASYNC | SYNC]
pub fn flushdb(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let asynchronous = flush_mode(args)?;
    flush_dbs(
        std::iter::once(ctx.db()),
        ctx.shared.store.lazyfree(),
        asynchronous,
    );
    ctx.shared.tracking.flushed();
    ctx.out.ok();
    Ok(())
}

/// FLUSHALL [ASYNC | SYNC]
pub fn flushall(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let asynchronous = flush_mode(args)?;
    let store = &ctx.shared.store;
    flush_dbs(store.dbs().iter(), store.lazyfree(), asynchronous);
    ctx.shared.tracking.flushed();
    ctx.out.ok();
    Ok(())
}

/// TIME: seconds and microseconds, as bulk strings.
pub fn time(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out
        .bulk_int(i64::try_from(now.as_secs()).unwrap_or(i64::MAX));
    ctx.out.bulk_int(i64::from(now.subsec_micros()));
    Ok(())
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]: a graceful stop. The snapshot (with SAVE, or
/// by default when save rules exist) is written before the server stops; if it fails the
/// server keeps running and the client gets an error, as in Redis. The log is always flushed
/// and synced on the way out.
pub fn shutdown(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    // As Redis: every flag is parsed first, then illegal combinations are a syntax error.
    let (mut save, mut nosave, mut abort, mut other) = (false, false, false, false);
    for arg in args.slice(1..) {
        if is(arg, "SAVE") {
            save = true;
        } else if is(arg, "NOSAVE") {
            nosave = true;
        } else if is(arg, "ABORT") {
            abort = true;
        } else if is(arg, "NOW") || is(arg, "FORCE") {
            other = true;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    if abort && (save || nosave || other) || save && nosave {
        return Err(errors::SYNTAX);
    }
    if abort {
        return Err(CmdError::new("ERR No shutdown in progress."));
    }
    let persist = &ctx.shared.persist;
    let rules_exist = !persist.save_rules().0.is_empty();
    if save || (rules_exist && !nosave) {
        if let Err(err) = persist.save_waiting(&ctx.shared.store) {
            tracing::error!("SHUTDOWN: saving failed ({err}); not shutting down");
            return Err(CmdError::new("ERR Errors trying to SHUTDOWN. Check logs."));
        }
    }
    persist
        .final_snapshot_handled
        .store(true, std::sync::atomic::Ordering::SeqCst);
    tracing::warn!("SHUTDOWN requested by a client");
    ctx.shared.shutdown.start();
    // As Redis: no reply; the connection closes.
    ctx.session.closing = true;
    Ok(())
}
