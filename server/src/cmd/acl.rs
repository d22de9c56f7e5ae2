//! ACL commands: SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI, CAT, GENPASS, DRYRUN, LOG,
//! SAVE, LOAD, HELP. The rules and checks are in [`crate::acl`].

use protocol::catalogue;
use protocol::Argv;
use tracing::{info, warn};

use super::{arg_i64, is, lookup, reply_help, resolve_subcommand, CmdError, Ctx};
use crate::acl::{self, Denial, LogValue, Rules};

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may \
     want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE \
     (assuming you have a Redis configuration file set) in order to store users in the Redis \
     configuration.";

/// ACL SETUSER username [rule ...]
pub fn acl_setuser(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let name = &args[2];
    if name.iter().any(|&b| b == b' ' || b == 0) {
        return Err(CmdError::new(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    let rules = acl::merge_selector_args(args.iter().skip(3)).map_err(|start| {
        CmdError::owned(format!(
            "ERR Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(&start)
        ))
    })?;
    let (old, new) = ctx
        .shared
        .acl
        .set_user(name, &rules)
        .map_err(CmdError::owned)?;
    if old
        .as_ref()
        .is_some_and(|old| new.user.narrows_channels_of(&old.user))
    {
        // Subscribers of the user may have lost channels: disconnected, as Redis does.
        let me = ctx.session.client.info().id;
        let killed = ctx.session.client.registry().kill(me, |client| {
            client.is_user(name) && client.is_subscribed() && client.id != me
        });
        if killed > 0 {
            info!(
                user = %String::from_utf8_lossy(name),
                killed, "ACL SETUSER narrowed the user's channels: subscribers disconnected"
            );
        }
    }
    ctx.out.ok();
    Ok(())
}

/// ACL DELUSER username [username ...]
pub fn acl_deluser(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let names: Vec<&[u8]> = args.iter().skip(2).collect();
    if names.contains(&acl::DEFAULT_USER) {
        return Err(CmdError::new("ERR The 'default' user cannot be removed"));
    }
    let deleted = ctx.shared.acl.delete_users(&names);
    disconnect_users(ctx, &names);
    ctx.out.count(deleted);
    Ok(())
}

/// Disconnects every client logged in as one of `names` (this one after its reply).
fn disconnect_users(ctx: &mut Ctx<'_>, names: &[&[u8]]) {
    let me = ctx.session.client.info().id;
    let mut me_too = false;
    ctx.session.client.registry().kill(me, |client| {
        let hit = names.iter().any(|name| client.is_user(name));
        me_too |= hit && client.id == me;
        hit
    });
    if me_too {
        ctx.session.closing = true;
    }
}

/// ACL GETUSER username
pub fn acl_getuser(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let Some(rules) = ctx.shared.acl.rules(&args[2]) else {
        ctx.out.null();
        return Ok(());
    };
    let user = &rules.user;
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk(b"flags");
    let flags = user.flags();
    out.array(flags.len());
    for flag in flags {
        out.bulk(flag.as_bytes());
    }
    out.bulk(b"passwords");
    let passwords = user.password_hexes();
    out.array(passwords.len());
    for hex in passwords {
        out.bulk(hex.as_bytes());
    }
    out.bulk(b"commands");
    out.bulk(&user.root.describe_commands());
    out.bulk(b"keys");
    out.bulk(&user.root.describe_keys());
    out.bulk(b"channels");
    out.bulk(&user.root.describe_channels());
    out.bulk(b"selectors");
    out.array(user.selectors.len());
    for selector in &user.selectors {
        out.map(3);
        out.bulk(b"commands");
        out.bulk(&selector.describe_commands());
        out.bulk(b"keys");
        out.bulk(&selector.describe_keys());
        out.bulk(b"channels");
        out.bulk(&selector.describe_channels());
    }
    Ok(())
}

/// ACL USERS
pub fn acl_users(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let users = ctx.shared.acl.users();
    ctx.out.array(users.len());
    for rules in users {
        ctx.out.bulk(&rules.name);
    }
    Ok(())
}

/// ACL LIST
pub fn acl_list(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let lines = ctx.shared.acl.list();
    ctx.out.array(lines.len());
    for line in lines {
        ctx.out.bulk(&line);
    }
    Ok(())
}

/// ACL WHOAMI
pub fn acl_whoami(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let name = ctx.session.login.user_name().to_vec();
    ctx.out.bulk(&name);
    Ok(())
}

/// ACL CAT [category]
pub fn acl_cat(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let Some(name) = args.get(2) else {
        ctx.out.array(acl::CATEGORIES.len());
        for (name, _) in acl::CATEGORIES {
            ctx.out.bulk(name.as_bytes());
        }
        return Ok(());
    };
    let category = acl::category(name).ok_or_else(|| {
        CmdError::owned(format!(
            "ERR Unknown category '{}'",
            super::printable(name, 64)
        ))
    })?;
    let names: Vec<&str> = catalogue::all()
        .filter(|spec| spec.acl_categories.contains(category))
        .map(|spec| spec.name)
        .collect();
    ctx.out.array(names.len());
    for name in names {
        ctx.out.bulk(name.as_bytes());
    }
    Ok(())
}

/// ACL GENPASS [bits]
pub fn acl_genpass(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let bits = match args.get(2) {
        None => 256,
        Some(arg) => {
            let bits = arg_i64(arg)?;
            usize::try_from(bits)
                .ok()
                .filter(|&b| (1..=4096).contains(&b))
                .ok_or(CmdError::new(
                    "ERR ACL GENPASS argument must be the number of bits for the output \
                     password, a positive number up to 4096",
                ))?
        }
    };
    ctx.out.bulk(acl::generate_password(bits).as_bytes());
    Ok(())
}

/// ACL DRYRUN username command [arg ...]
pub fn acl_dryrun(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let rules: Rules = ctx.shared.acl.rules(&args[2]).ok_or_else(|| {
        CmdError::owned(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(&args[2])
        ))
    })?;
    let command_args = args.slice(3..);
    let command = lookup(&args[3]).ok_or_else(|| {
        CmdError::owned(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&args[3])
        ))
    })?;
    let command = resolve_subcommand(command, command_args)?;
    if !command.arity_ok(command_args.len()) {
        return Err(CmdError::owned(format!(
            "ERR wrong number of arguments for '{}' command",
            command.full_name()
        )));
    }
    match rules.check(command, command_args) {
        Ok(()) => ctx.out.ok(),
        Err(denial) => {
            let text = match denial {
                Denial::Command => format!(
                    "This user has no permissions to run the '{}' command",
                    command.full_name()
                ),
                Denial::Key(position) => format!(
                    "This user has no permissions to access the '{}' key",
                    String::from_utf8_lossy(&command_args[position])
                ),
                Denial::Channel(position) => format!(
                    "This user has no permissions to access the '{}' channel",
                    String::from_utf8_lossy(&command_args[position])
                ),
            };
            ctx.out.bulk(text.as_bytes());
        }
    }
    Ok(())
}

/// ACL LOG [count | RESET]
pub fn acl_log(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let count = match args.get(2) {
        // As Redis: the ten newest unless told otherwise.
        None => Some(10),
        Some(arg) if is(arg, "RESET") => {
            ctx.shared.acl.log.reset();
            ctx.out.ok();
            return Ok(());
        }
        Some(arg) => {
            let count = arg_i64(arg)?;
            Some(
                usize::try_from(count)
                    .map_err(|_| CmdError::new("ERR value is out of range, must be positive"))?,
            )
        }
    };
    let entries = ctx.shared.acl.log.newest(count);
    ctx.out.array(entries.len());
    for entry in entries {
        let fields = entry.fields(ctx.now_ms);
        ctx.out.map(fields.len());
        for (name, value) in fields {
            ctx.out.bulk(name.as_bytes());
            match value {
                LogValue::Int(n) => ctx.out.int(n),
                LogValue::Double(x) => ctx.out.double(x),
                LogValue::Text(text) => ctx.out.bulk(&text),
            }
        }
    }
    Ok(())
}

/// The `--aclfile` path, or Redis's error when there is none.
fn acl_file(ctx: &Ctx<'_>) -> Result<std::path::PathBuf, CmdError> {
    ctx.shared
        .config
        .aclfile
        .clone()
        .ok_or(CmdError::new(NO_ACL_FILE))
}

/// ACL SAVE: writes ACL LIST to the ACL file (a temporary file renamed over it).
pub fn acl_save(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let path = acl_file(ctx)?;
    let mut text = Vec::new();
    for line in ctx.shared.acl.list() {
        text.extend_from_slice(&line);
        text.push(b'\n');
    }
    let temp = path.with_extension("tmp-save");
    let written = std::fs::write(&temp, &text)
        .and_then(|()| std::fs::File::open(&temp).and_then(|f| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(err) = written {
        warn!(path = %path.display(), "ACL SAVE failed: {err}");
        let _ = std::fs::remove_file(&temp);
        return Err(CmdError::new(
            "ERR There was an error trying to save the ACLs. Please check the server logs for \
             more information",
        ));
    }
    info!(path = %path.display(), "ACL file saved");
    ctx.out.ok();
    Ok(())
}

/// ACL LOAD: replaces every user with the ACL file's (all or nothing). Clients of users
/// that no longer exist are disconnected; the others pick their new rules up.
pub fn acl_load(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let path = acl_file(ctx)?;
    let users = load_acl_file(&path).map_err(|e| CmdError::owned(format!("ERR {e}")))?;
    let gone: Vec<Vec<u8>> = ctx
        .shared
        .acl
        .users()
        .iter()
        .map(|rules| rules.name.to_vec())
        .filter(|name| !users.contains_key(name) && name.as_slice() != acl::DEFAULT_USER)
        .collect();
    ctx.shared.acl.replace_all(users);
    let gone: Vec<&[u8]> = gone.iter().map(Vec::as_slice).collect();
    disconnect_users(ctx, &gone);
    info!(path = %path.display(), "ACL file loaded");
    ctx.out.ok();
    Ok(())
}

/// Reads and parses the ACL file at `path`.
pub fn load_acl_file(
    path: &std::path::Path,
) -> Result<std::collections::BTreeMap<Vec<u8>, acl::User>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
    acl::parse_acl_file(&text, &path.display().to_string())
}

/// ACL HELP
pub fn acl_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    reply_help(
        ctx,
        "ACL",
        &[
            "CAT [<category>]",
            "    List the categories, or the commands of one category.",
            "DELUSER <username> [<username> ...]",
            "    Delete users and disconnect their clients.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Tell whether the user could run the command with these arguments.",
            "GETUSER <username>",
            "    Show the user's flags, passwords and permissions.",
            "GENPASS [<bits>]",
            "    Make a random password of <bits> bits (256 by default).",
            "LIST",
            "    Show every user as the rules that would recreate it.",
            "LOAD",
            "    Replace the users with those of the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the latest refusals, or clear the log.",
            "SAVE",
            "    Write the users to the ACL file.",
            "SETUSER <username> <rule> [<rule> ...]",
            "    Create the user or change its rules.",
            "USERS",
            "    List the user names.",
            "WHOAMI",
            "    Name the user of this connection.",
        ],
    );
    Ok(())
}
