//! MULTI, EXEC, DISCARD, WATCH, UNWATCH: transactions that run as one unit across shards.
//!
//! Between MULTI and EXEC the dispatcher queues commands instead of running them
//! ([`queue`]); a command it rejects while queuing (unknown, wrong arity, not allowed in a
//! transaction) dooms the transaction, and EXEC then only replies `EXECABORT`.
//!
//! EXEC first works out every shard the queued commands can touch, from the catalogue's key
//! positions (following SELECTs in the queue), plus the shards of the watched keys; a command
//! that names no keys but reads or writes the keyspace (FLUSHALL, KEYS, DBSIZE...) needs every
//! shard of every database. It holds those shards in the global lock order
//! ([`crate::store::Store::hold_shards`]) and runs the queue with ordinary handlers, which
//! re-enter the held shards. So no other client sees part of a transaction, and clients
//! working on other shards carry on meanwhile. Effects are captured into one unit, appended
//! before the shards are released, so the append-only file gets `MULTI ... EXEC` whole.
//!
//! WATCH registers the client on each key's shard (`store::watch`); any change to the key
//! marks the client's flag, and EXEC, holding the shards, returns a null array if the flag is
//! set or a watched key has expired since.

use std::collections::HashSet;

use bytes::Bytes;
use protocol::catalogue::Group;
use protocol::{Argv, OwnedArgv};

use super::{run_tracked, CmdError, Command, Ctx};
use crate::propagate;
use crate::store::watch::WatchFlag;
use crate::store::{Lookup, Store, SHARDS};
use crate::sync::Arc;

/// The commands queued since MULTI.
#[derive(Default)]
pub struct Multi {
    /// Each command with its arguments as sent.
    queued: Vec<(&'static Command, OwnedArgv)>,
    /// Set when a command was rejected while queuing: EXEC will abort.
    doomed: bool,
}

impl Multi {
    /// Marks the transaction as failed (a command was rejected while queuing).
    pub fn doom(&mut self) {
        self.doomed = true;
    }
}

/// The keys a client watches, and the flag their changes set. Dropping it unregisters them.
pub struct Watching {
    store: std::sync::Arc<Store>,
    flag: Arc<WatchFlag>,
    /// Database and name of each watched key (a set: a client may WATCH many keys, and the
    /// same ones again).
    keys: HashSet<(usize, Bytes)>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        for (db, key) in &self.keys {
            if let Some(db) = self.store.db(*db) {
                let (mut shard, _) = db.lock(key);
                shard.unwatch(key, &self.flag);
            }
        }
    }
}

/// Error text for a command refused between MULTI and EXEC.
const NOT_IN_MULTI: CmdError = CmdError::new("ERR Command not allowed inside a transaction");

/// True for the commands that act on the transaction itself and so run while queuing.
pub fn runs_while_queuing(command: &Command) -> bool {
    matches!(
        command.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Queues `command` for EXEC (the dispatcher calls this between MULTI and EXEC), or dooms the
/// transaction if the command may not run in one.
pub fn queue(ctx: &mut Ctx<'_>, command: &'static Command, args: Argv<'_>) {
    let Some(multi) = ctx.session.multi.as_deref_mut() else {
        return;
    };
    if command
        .spec
        .flags
        .contains(protocol::catalogue::CommandFlags::NO_MULTI)
    {
        multi.doom();
        ctx.out.error(NOT_IN_MULTI.text());
        return;
    }
    multi.queued.push((command, OwnedArgv::from_argv(args)));
    ctx.out.simple("QUEUED");
}

/// MULTI
pub fn multi(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    if ctx.session.multi.is_some() {
        return Err(CmdError::new("ERR MULTI calls can not be nested"));
    }
    ctx.session.multi = Some(Box::default());
    ctx.out.ok();
    Ok(())
}

/// DISCARD
pub fn discard(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    if ctx.session.multi.take().is_none() {
        return Err(CmdError::new("ERR DISCARD without MULTI"));
    }
    ctx.session.watching = None;
    ctx.out.ok();
    Ok(())
}

/// WATCH key [key ...]
pub fn watch(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    if ctx.session.multi.is_some() {
        return Err(CmdError::new("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.db();
    let store = &ctx.shared.store;
    let watching = ctx.session.watching.get_or_insert_with(|| {
        Box::new(Watching {
            store: std::sync::Arc::clone(store),
            flag: WatchFlag::new(),
            keys: HashSet::new(),
        })
    });
    let db_index = ctx.session.db;
    for key in args.slice(1..) {
        if !watching
            .keys
            .insert((db_index, Bytes::copy_from_slice(key)))
        {
            continue;
        }
        let (mut shard, hash) = db.lock(key);
        shard.watch(hash, key, &watching.flag, ctx.now_ms);
    }
    ctx.out.ok();
    Ok(())
}

/// UNWATCH
pub fn unwatch(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    ctx.session.watching = None;
    ctx.out.ok();
    Ok(())
}

/// EXEC
pub fn exec(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let Some(multi) = ctx.session.multi.take() else {
        return Err(CmdError::new("ERR EXEC without MULTI"));
    };
    // Whatever happens now, the watches end with this EXEC.
    let watching = ctx.session.watching.take();
    if multi.doomed {
        return Err(CmdError::new(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let has_writes = multi.queued.iter().any(|(command, _)| command.is_write());
    if has_writes {
        if let Some(refusal) = ctx.shared.persist.health.write_refusal(ctx.now_ms) {
            let reason = refusal.strip_prefix('-').unwrap_or(&refusal).to_owned();
            return Err(CmdError::owned(format!(
                "EXECABORT Transaction discarded because of: {reason}"
            )));
        }
    }
    if multi.queued.is_empty() {
        // Nothing to hold; a watched key that changed still fails the transaction.
        if watching.as_ref().is_some_and(|w| w.flag.is_dirty()) {
            ctx.out.null_array();
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    }
    let masks = plan(ctx, &multi, watching.as_deref());
    let store = std::sync::Arc::clone(&ctx.shared.store);
    let held = store.hold_shards(&masks);
    if watching
        .as_deref()
        .is_some_and(|w| watched_key_changed(&store, w, ctx.now_ms))
    {
        drop(held);
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(multi.queued.len());
    let saved_deny = std::mem::replace(&mut ctx.session.deny_blocking, true);
    // Declared after `held`, so it ends (appending the unit) before the shards are released.
    let capture = propagate::capture();
    for (command, args) in &multi.queued {
        // Permissions may have changed since the command was queued: checked again, as Redis.
        if let Some(denial) = super::acl_denial(ctx, command, args.argv(), "multi") {
            ctx.out.error(&crate::acl::noperm_text(denial, command));
            continue;
        }
        // Queued as resolved (a container's subcommand) by the dispatcher.
        run_tracked(ctx, command, args.argv(), true);
    }
    capture.finish();
    ctx.session.deny_blocking = saved_deny;
    drop(held);
    ctx.session.committed_watched = watching.is_some();
    drop(watching);
    // Keys the transaction made ready for blocked clients are served now, as after any write.
    if has_writes {
        super::serve_blocked_clients(ctx);
    }
    Ok(())
}

/// True if a watched key changed since WATCH: its flag, or a key alive then that has expired.
fn watched_key_changed(store: &Store, watching: &Watching, now_ms: u64) -> bool {
    if watching.flag.is_dirty() {
        return true;
    }
    watching.keys.iter().any(|(db, key)| {
        store.db(*db).is_some_and(|db| {
            let (shard, hash) = db.read(key);
            // A key already expired at WATCH time is registered as such and its later
            // removal does not count; one that has expired since does.
            matches!(shard.lookup(hash, key, now_ms), Lookup::Expired)
                && shard.watch_saw_alive(key, &watching.flag)
        })
    })
}

/// The shards EXEC must hold, one bit mask per database: those of every key the queued
/// commands name (in the database selected when each runs) and of every watched key; all of
/// them for a command that uses the keyspace without naming keys.
fn plan(ctx: &Ctx<'_>, multi: &Multi, watching: Option<&Watching>) -> Vec<u32> {
    let store = &ctx.shared.store;
    let mut masks = vec![0u32; store.db_count()];
    if let Some(watching) = watching {
        for (watched_db, key) in &watching.keys {
            if let Some(database) = store.db(*watched_db) {
                masks[*watched_db] |= 1 << database.shard_index(key);
            }
        }
    }
    let mut db = ctx.session.db;
    for (command, args) in &multi.queued {
        if add_command_shards(store, &mut db, command, args.argv(), &mut masks) {
            break;
        }
    }
    masks
}

/// Every shard of a database, as a mask.
pub const EVERY_SHARD: u32 = if SHARDS == 32 {
    u32::MAX
} else {
    (1u32 << SHARDS) - 1
};

/// Adds to `masks` (one per database) the shards `command` can touch when run in database
/// `*db`, following SELECT (which changes `*db`). Returns true, with every mask full, for a
/// command that uses the keyspace without naming keys. Shared by EXEC, which plans a whole
/// queue, and by scripts, which check each call.
pub fn add_command_shards(
    store: &Store,
    db: &mut usize,
    command: &Command,
    args: Argv<'_>,
    masks: &mut [u32],
) -> bool {
    match command.name {
        "select" => {
            if let Some(index) = args
                .get(1)
                .and_then(|arg| std::str::from_utf8(arg).ok()?.parse::<usize>().ok())
                .filter(|&index| index < masks.len())
            {
                *db = index;
            }
            return false;
        }
        // COPY ... DB n writes another database: its keys' shards in every database.
        "copy" => {
            command.spec.for_each_key_position(args, |position| {
                for (index, mask) in masks.iter_mut().enumerate() {
                    if let (Some(database), Some(key)) = (store.db(index), args.get(position)) {
                        *mask |= 1 << database.shard_index(key);
                    }
                }
            });
            return false;
        }
        _ => {}
    }
    // A script may touch keys beyond its KEYS, in any database: inside a transaction, where
    // it cannot add shards as it goes, it needs them all.
    if command.spec.group == Group::Scripting && command.spec.key_specs.len() == 1 {
        masks.iter_mut().for_each(|mask| *mask = EVERY_SHARD);
        return true;
    }
    if !command.spec.key_specs.is_empty() {
        if let (Some(database), Some(mask)) = (store.db(*db), masks.get_mut(*db)) {
            command.spec.for_each_key_position(args, |position| {
                if let Some(key) = args.get(position) {
                    *mask |= 1 << database.shard_index(key);
                }
            });
        }
        false
    } else if touches_keyspace(command) {
        masks.iter_mut().for_each(|mask| *mask = EVERY_SHARD);
        true
    } else {
        false
    }
}

/// True unless a command without keys is known to leave the keyspace alone (PING, ECHO,
/// SELECT, the connection's own settings...): anything else gets every shard.
fn touches_keyspace(command: &Command) -> bool {
    let connection_only = matches!(command.spec.group, Group::Connection | Group::Transactions)
        && !matches!(
            command.name,
            "client|kill" | "client|unblock" | "client|list"
        );
    !(connection_only
        || matches!(
            command.name,
            "time"
                | "lastsave"
                | "command"
                | "command|count"
                | "command|docs"
                | "command|info"
                | "command|list"
                | "command|getkeys"
                | "config|get"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keyspace_free_commands_skip_the_full_hold() {
        let named = |name: &str| {
            crate::cmd::table::all_bound()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name} is bound"))
        };
        for name in [
            "ping",
            "echo",
            "select",
            "time",
            "client|setname",
            "config|get",
        ] {
            assert!(!touches_keyspace(named(name)), "{name}");
        }
        for name in [
            "flushall",
            "flushdb",
            "keys",
            "scan",
            "dbsize",
            "randomkey",
            "info",
        ] {
            assert!(touches_keyspace(named(name)), "{name}");
        }
    }
}
