//! CONFIG GET / SET / RESETSTAT / REWRITE: the runtime-changeable parameters.

use protocol::Argv;

use super::{printable, reply_help, CmdError, Ctx};
use crate::config::{
    parse_memory, parse_save_rules, parse_yes_no, FsyncPolicy, LogLevel, SaveRules,
};
use crate::glob::glob_match;
use crate::sync::Ordering;

/// Parameters CONFIG GET knows, in the order it reports them.
const PARAMETERS: &[&str] = &[
    "bind",
    "port",
    "databases",
    "maxclients",
    "loglevel",
    "hz",
    "proto-max-bulk-len",
    "save",
    "appendonly",
    "appendfsync",
    "dir",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
];

fn parameter_value(ctx: &Ctx<'_>, name: &str) -> String {
    let shared = ctx.shared;
    match name {
        "bind" => shared.config.bind.join(" "),
        "port" => shared.port.to_string(),
        "databases" => shared.config.databases.to_string(),
        "maxclients" => shared.maxclients.load(Ordering::Relaxed).to_string(),
        "loglevel" => shared.loglevel.lock().name().to_owned(),
        "hz" => shared.hz.load(Ordering::Relaxed).to_string(),
        "proto-max-bulk-len" => shared.config.proto_max_bulk_len.to_string(),
        "save" => shared.persist.save_rules().to_text(),
        "appendonly" => yes_no(shared.persist.aof_enabled()).to_owned(),
        "appendfsync" => shared.persist.fsync_policy().name().to_owned(),
        "dir" => {
            let dir = shared.persist.dir();
            std::fs::canonicalize(&dir)
                .unwrap_or(dir)
                .display()
                .to_string()
        }
        "dbfilename" => shared.persist.dbfilename(),
        "appendfilename" => shared.persist.aof_prefix.clone(),
        "appenddirname" => shared.persist.aof_dirname.clone(),
        "auto-aof-rewrite-percentage" => shared
            .persist
            .auto_rewrite_percentage
            .load(Ordering::Relaxed)
            .to_string(),
        "auto-aof-rewrite-min-size" => shared
            .persist
            .auto_rewrite_min_size
            .load(Ordering::Relaxed)
            .to_string(),
        _ => String::new(),
    }
}

/// CONFIG GET parameter [parameter ...]: glob patterns, each parameter reported once.
pub fn config_get(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let patterns: Vec<Vec<u8>> = args
        .slice(2..)
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let matched: Vec<&str> = PARAMETERS
        .iter()
        .copied()
        .filter(|name| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
        .collect();
    let values: Vec<String> = matched.iter().map(|n| parameter_value(ctx, n)).collect();
    ctx.out.map(matched.len());
    for (name, value) in matched.iter().zip(&values) {
        ctx.out.bulk(name.as_bytes());
        ctx.out.bulk(value.as_bytes());
    }
    Ok(())
}

/// A validated CONFIG SET change, applied only once every pair has been checked.
enum Change {
    MaxClients(usize),
    LogLevel(LogLevel),
    Hz(u32),
    Save(SaveRules),
    AppendOnly(bool),
    AppendFsync(FsyncPolicy),
    RewritePercentage(u64),
    RewriteMinSize(u64),
    Dir(std::path::PathBuf),
    DbFilename(String),
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

fn config_set_error(name: &str, reason: &str) -> CmdError {
    CmdError::owned(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

fn parse_change(name: &str, value: &[u8]) -> Result<Change, CmdError> {
    let integer = || {
        super::parse_i64(value)
            .ok_or_else(|| config_set_error(name, "argument couldn't be parsed into an integer"))
    };
    match name {
        "maxclients" => {
            let n = integer()?;
            usize::try_from(n)
                .ok()
                .filter(|&n| n >= 1 && u32::try_from(n).is_ok())
                .map(Change::MaxClients)
                .ok_or_else(|| config_set_error(name, "argument must be between 1 and 4294967295 inclusive"))
        }
        // As Redis: any int is accepted and clamped to 1..=500 (its `updateHZ`).
        "hz" => {
            let n = integer()?;
            u32::try_from(n)
                .ok()
                .filter(|&n| i32::try_from(n).is_ok())
                .map(|n| Change::Hz(n.clamp(1, 500)))
                .ok_or_else(|| config_set_error(name, "argument must be between 0 and 2147483647 inclusive"))
        }
        "loglevel" => LogLevel::parse(value)
            .map(Change::LogLevel)
            .ok_or_else(|| config_set_error(name, "argument(s) must be one of the following: debug, verbose, notice, warning, nothing")),
        "save" => std::str::from_utf8(value)
            .map_err(|_| config_set_error(name, "Invalid save parameters"))
            .and_then(|text| {
                parse_save_rules(text).map_err(|_| config_set_error(name, "Invalid save parameters"))
            })
            .map(Change::Save),
        "appendonly" => std::str::from_utf8(value)
            .ok()
            .and_then(|text| parse_yes_no(text).ok())
            .map(Change::AppendOnly)
            .ok_or_else(|| config_set_error(name, "argument must be 'yes' or 'no'")),
        "appendfsync" => FsyncPolicy::parse(value)
            .map(Change::AppendFsync)
            .ok_or_else(|| config_set_error(name, "argument(s) must be one of the following: always, everysec, no")),
        "auto-aof-rewrite-percentage" => {
            let n = integer()?;
            u64::try_from(n)
                .ok()
                .filter(|&n| i32::try_from(n).is_ok())
                .map(Change::RewritePercentage)
                .ok_or_else(|| config_set_error(name, "argument must be between 0 and 2147483647 inclusive"))
        }
        "dir" => std::str::from_utf8(value)
            .ok()
            .filter(|text| std::path::Path::new(text).is_dir())
            .map(|text| Change::Dir(text.into()))
            .ok_or_else(|| config_set_error(name, "No such directory")),
        "dbfilename" => std::str::from_utf8(value)
            .ok()
            .filter(|text| !text.is_empty() && !text.contains('/') && *text != "." && *text != "..")
            .map(|text| Change::DbFilename(text.to_owned()))
            .ok_or_else(|| config_set_error(name, "dbfilename can't be a path, just a filename")),
        "auto-aof-rewrite-min-size" => std::str::from_utf8(value)
            .ok()
            .and_then(|text| parse_memory(text).ok())
            .map(Change::RewriteMinSize)
            .ok_or_else(|| config_set_error(name, "argument must be a memory value")),
        _ => Err(config_set_error(name, "can't set immutable config")),
    }
}

/// CONFIG SET parameter value [parameter value ...]: all or nothing.
pub fn config_set(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::new(
            "ERR wrong number of arguments for 'config|set' command",
        ));
    }
    let mut changes = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for pair in args.slice(2..).pairs() {
        let Some(name) = PARAMETERS
            .iter()
            .copied()
            .find(|p| p.as_bytes().eq_ignore_ascii_case(pair[0]))
        else {
            return Err(CmdError::owned(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                printable(pair[0], 128)
            )));
        };
        if seen.contains(&name) {
            return Err(config_set_error(name, "duplicate parameter"));
        }
        seen.push(name);
        changes.push(parse_change(name, pair[1])?);
    }
    for change in changes {
        match change {
            Change::MaxClients(n) => ctx.shared.maxclients.store(n, Ordering::Relaxed),
            Change::Hz(n) => ctx.shared.hz.store(n, Ordering::Relaxed),
            Change::LogLevel(level) => ctx
                .shared
                .set_loglevel(level)
                .map_err(|reason| config_set_error("loglevel", &reason))?,
            Change::Save(rules) => ctx.shared.persist.set_save_rules(rules),
            Change::AppendFsync(policy) => ctx.shared.persist.set_fsync_policy(policy),
            Change::RewritePercentage(n) => ctx
                .shared
                .persist
                .auto_rewrite_percentage
                .store(n, Ordering::Relaxed),
            Change::RewriteMinSize(n) => ctx
                .shared
                .persist
                .auto_rewrite_min_size
                .store(n, Ordering::Relaxed),
            Change::AppendOnly(true) => ctx
                .shared
                .persist
                .enable_aof_in_background(&ctx.shared.store)
                .map_err(|reason| config_set_error("appendonly", &reason))?,
            Change::AppendOnly(false) => ctx.shared.persist.disable_aof(&ctx.shared.store),
            Change::Dir(dir) => ctx
                .shared
                .persist
                .set_dir(dir)
                .map_err(|reason| config_set_error("dir", &reason))?,
            Change::DbFilename(name) => ctx
                .shared
                .persist
                .set_dbfilename(name)
                .map_err(|reason| config_set_error("dbfilename", &reason))?,
        }
    }
    ctx.out.ok();
    Ok(())
}

/// CONFIG RESETSTAT: zeroes the INFO stats counters.
pub fn config_resetstat(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let stats = &ctx.shared.stats;
    for counter in [
        &stats.connections_received,
        &stats.rejected_connections,
        &stats.commands_processed,
        &stats.net_input_bytes,
        &stats.net_output_bytes,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    for db in ctx.shared.store.dbs() {
        db.reset_stats();
    }
    ctx.out.ok();
    Ok(())
}

/// CONFIG REWRITE: there is no configuration file to rewrite.
pub fn config_rewrite(_ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    Err(CmdError::new(
        "ERR The server is running without a config file",
    ))
}

/// CONFIG HELP
pub fn config_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    reply_help(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}
