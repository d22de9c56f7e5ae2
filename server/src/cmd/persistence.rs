//! Persistence commands: SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF.

use protocol::Argv;

use super::{errors, is, CmdError, Ctx};

/// SAVE: a snapshot written before replying (other clients keep being served meanwhile).
pub fn save(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    ctx.shared
        .persist
        .save(&ctx.shared.store)
        .map_err(CmdError::owned)?;
    ctx.out.ok();
    Ok(())
}

/// BGSAVE [SCHEDULE]: a snapshot written by a background thread.
pub fn bgsave(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let schedule = match args.get(1) {
        None => false,
        Some(arg) if args.len() == 2 && is(arg, "SCHEDULE") => true,
        Some(_) => return Err(errors::SYNTAX),
    };
    let persist = &ctx.shared.persist;
    if persist
        .rewrite_in_progress
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        if schedule {
            // Redis schedules it; our cron's save rules pick it up after the rewrite.
            ctx.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::new(
            "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ));
    }
    persist.bgsave(&ctx.shared.store).map_err(CmdError::owned)?;
    ctx.out.simple("Background saving started");
    Ok(())
}

/// LASTSAVE: Unix time of the last successful snapshot.
pub fn lastsave(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let secs = ctx
        .shared
        .persist
        .last_save_secs
        .load(std::sync::atomic::Ordering::SeqCst);
    ctx.out.int(i64::try_from(secs).unwrap_or(i64::MAX));
    Ok(())
}

/// BGREWRITEAOF: compacts the append-only file in the background.
pub fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let status = ctx
        .shared
        .persist
        .bgrewriteaof(&ctx.shared.store)
        .map_err(CmdError::owned)?;
    ctx.out.simple(status);
    Ok(())
}
