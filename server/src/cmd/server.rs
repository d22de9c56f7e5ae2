//! Server commands: COMMAND, CONFIG, INFO, DBSIZE, FLUSHDB/FLUSHALL, TIME, SHUTDOWN.

use protocol::Argv;
use std::fmt::Write as _;

use super::docs::{arguments, Arg};
use super::table::{lookup, CommandSpec, COMMANDS};
use super::{errors, is, printable, CmdError, Ctx, Reply};
use crate::config::{
    parse_memory, parse_save_rules, parse_yes_no, FsyncPolicy, LogLevel, SaveRules,
};
use crate::glob::glob_match;
use crate::server::unix_ms;
use crate::store::Db;
use crate::sync::Ordering;
use crate::VERSION_FOR_CLIENTS;

/// Writes Redis's HELP reply: a usage line, the given lines, and the HELP entry.
pub fn reply_help(ctx: &mut Ctx<'_>, command: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for line in lines {
        ctx.out.simple(line);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Print this help.");
}

// ----- COMMAND -------------------------------------------------------------------------------

fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS.iter()
}

/// ACL categories, derived from the group and flags as Redis assigns them.
fn acl_categories(spec: &CommandSpec) -> Vec<&'static str> {
    let mut categories = Vec::new();
    if spec.flags.contains(&"write") {
        categories.push("@write");
    }
    if spec.flags.contains(&"readonly") {
        categories.push("@read");
    }
    match spec.group {
        "string" => categories.push("@string"),
        "generic" => categories.push("@keyspace"),
        "connection" => categories.push("@connection"),
        _ => {}
    }
    if spec.flags.contains(&"admin") {
        categories.extend(["@admin", "@dangerous"]);
    }
    categories.push(if spec.flags.contains(&"fast") {
        "@fast"
    } else {
        "@slow"
    });
    categories
}

fn write_command_info(out: &mut Reply, spec: &CommandSpec) {
    out.array(10);
    out.bulk(spec.name.as_bytes());
    out.int(i64::from(spec.arity));
    out.set(spec.flags.len());
    for flag in spec.flags {
        out.simple(flag);
    }
    out.int(i64::from(spec.first_key));
    out.int(i64::from(spec.last_key));
    out.int(i64::from(spec.key_step));
    let categories = acl_categories(spec);
    out.set(categories.len());
    for category in categories {
        out.simple(category);
    }
    out.set(0); // tips
    if spec.first_key > 0 {
        out.array(1);
        out.map(3);
        out.bulk(b"flags");
        let access: &[&str] = if spec.is_write() {
            &["RW", "update"]
        } else {
            &["RO", "access"]
        };
        out.set(access.len());
        for flag in access {
            out.simple(flag);
        }
        out.bulk(b"begin_search");
        out.map(2);
        out.bulk(b"type");
        out.bulk(b"index");
        out.bulk(b"spec");
        out.map(1);
        out.bulk(b"index");
        out.int(i64::from(spec.first_key));
        out.bulk(b"find_keys");
        out.map(2);
        out.bulk(b"type");
        out.bulk(b"range");
        out.bulk(b"spec");
        out.map(3);
        out.bulk(b"lastkey");
        let last = if spec.last_key < 0 {
            spec.last_key
        } else {
            spec.last_key - spec.first_key
        };
        out.int(i64::from(last));
        out.bulk(b"keystep");
        out.int(i64::from(spec.key_step));
        out.bulk(b"limit");
        out.int(0);
    } else {
        out.array(0);
    }
    out.array(spec.subcommands.len());
    for sub in spec.subcommands {
        write_command_info(out, sub);
    }
}

/// COMMAND: information about every command.
pub fn command_all(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    ctx.out.array(COMMANDS.len());
    for spec in all_specs() {
        write_command_info(ctx.out, spec);
    }
    Ok(())
}

/// COMMAND COUNT
pub fn command_count(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    ctx.out.count(COMMANDS.len());
    Ok(())
}

/// Finds `name` or `container|sub`.
fn lookup_full(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        None => lookup(name),
        Some(bar) => lookup(&name[..bar])?.subcommands.iter().find(|sub| {
            sub.sub_name()
                .as_bytes()
                .eq_ignore_ascii_case(&name[bar + 1..])
        }),
    }
}

/// COMMAND INFO [command-name ...]: nil for unknown names.
pub fn command_info(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    if args.len() == 2 {
        return command_all(ctx, args);
    }
    ctx.out.array(args.len() - 2);
    for name in args.slice(2..) {
        match lookup_full(name) {
            Some(spec) => write_command_info(ctx.out, spec),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn write_args(out: &mut Reply, args: &[Arg]) {
    out.array(args.len());
    for arg in args {
        let mut flags = Vec::new();
        if arg.optional {
            flags.push("optional");
        }
        if arg.multiple {
            flags.push("multiple");
        }
        let fields = 3
            + usize::from(arg.token.is_some())
            + usize::from(!flags.is_empty())
            + usize::from(!arg.children.is_empty());
        out.map(fields);
        out.bulk(b"name");
        out.bulk(arg.name.as_bytes());
        out.bulk(b"type");
        out.bulk(arg.kind.as_bytes());
        out.bulk(b"display_text");
        out.bulk(arg.name.as_bytes());
        if let Some(token) = &arg.token {
            out.bulk(b"token");
            out.bulk(token.as_bytes());
        }
        if !flags.is_empty() {
            out.bulk(b"flags");
            out.set(flags.len());
            for flag in flags {
                out.simple(flag);
            }
        }
        if !arg.children.is_empty() {
            out.bulk(b"arguments");
            write_args(out, &arg.children);
        }
    }
}

fn write_command_docs(out: &mut Reply, spec: &CommandSpec) {
    let args = arguments(spec.syntax);
    let fields = 4 + usize::from(!args.is_empty()) + usize::from(!spec.subcommands.is_empty());
    out.map(fields);
    out.bulk(b"summary");
    out.bulk(spec.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(spec.since.as_bytes());
    out.bulk(b"group");
    out.bulk(spec.group.as_bytes());
    out.bulk(b"complexity");
    out.bulk(spec.complexity.as_bytes());
    if !args.is_empty() {
        out.bulk(b"arguments");
        write_args(out, &args);
    }
    if !spec.subcommands.is_empty() {
        out.bulk(b"subcommands");
        out.map(spec.subcommands.len());
        for sub in spec.subcommands {
            out.bulk(sub.name.as_bytes());
            write_command_docs(out, sub);
        }
    }
}

/// COMMAND DOCS [command-name ...]: a map from name to documentation.
pub fn command_docs(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let specs: Vec<&CommandSpec> = if args.len() == 2 {
        all_specs().collect()
    } else {
        args.slice(2..)
            .iter()
            .filter_map(|name| lookup_full(name))
            .collect()
    };
    ctx.out.map(specs.len());
    for spec in specs {
        ctx.out.bulk(spec.name.as_bytes());
        write_command_docs(ctx.out, spec);
    }
    Ok(())
}

/// COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p]
pub fn command_list(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let names: Vec<&str> = match args.len() {
        2 => all_specs().map(|s| s.name).collect(),
        5 if is(&args[2], "FILTERBY") => {
            let value = &args[4];
            if is(&args[3], "MODULE") {
                Vec::new()
            } else if is(&args[3], "ACLCAT") {
                all_specs()
                    .filter(|s| {
                        acl_categories(s)
                            .iter()
                            .any(|c| c.as_bytes()[1..].eq_ignore_ascii_case(value))
                    })
                    .map(|s| s.name)
                    .collect()
            } else if is(&args[3], "PATTERN") {
                let pattern = value.to_ascii_lowercase();
                all_specs()
                    .flat_map(|s| std::iter::once(s).chain(s.subcommands.iter()))
                    .filter(|s| glob_match(&pattern, s.name.as_bytes()))
                    .map(|s| s.name)
                    .collect()
            } else {
                return Err(errors::SYNTAX);
            }
        }
        _ => return Err(errors::SYNTAX),
    };
    ctx.out.array(names.len());
    for name in names {
        ctx.out.bulk(name.as_bytes());
    }
    Ok(())
}

/// COMMAND GETKEYS command [arg ...]
pub fn command_getkeys(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let target = args.slice(2..);
    let mut spec = lookup(&target[0]).ok_or(CmdError::new("ERR Invalid command specified"))?;
    if !spec.subcommands.is_empty() {
        if let Some(sub) = target.get(1) {
            if let Some(found) = spec
                .subcommands
                .iter()
                .find(|s| s.sub_name().as_bytes().eq_ignore_ascii_case(sub))
            {
                spec = found;
            }
        }
    }
    if !spec.arity_ok(target.len()) {
        return Err(CmdError::new(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let keys: Vec<usize> = spec.key_positions(target.len()).collect();
    if keys.is_empty() {
        return Err(CmdError::new("ERR The command has no key arguments"));
    }
    ctx.out.array(keys.len());
    for position in keys {
        ctx.out.bulk(&target[position]);
    }
    Ok(())
}

/// COMMAND HELP
pub fn command_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    reply_help(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
        ],
    );
    Ok(())
}

// ----- CONFIG --------------------------------------------------------------------------------

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

// ----- INFO and friends ------------------------------------------------------------------------

/// Sections INFO prints by default, in Redis's order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
];

/// INFO [section ...]
pub fn info(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let wanted: Vec<String> = args
        .slice(1..)
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let everything = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let mut text = String::new();
    for section in DEFAULT_SECTIONS {
        if everything || wanted.iter().any(|w| w == section) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            write_info_section(ctx, section, &mut text);
        }
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

fn write_info_section(ctx: &Ctx<'_>, section: &str, text: &mut String) {
    let shared = ctx.shared;
    let stats = &shared.stats;
    let load = |c: &crate::sync::AtomicU64| c.load(Ordering::Relaxed);
    let uptime = shared.started.elapsed().as_secs();
    // `write!` into a String cannot fail.
    match section {
        "server" => {
            let _ = write!(
                text,
                "# Server\r\nredis_version:{VERSION_FOR_CLIENTS}\r\nkvstore_version:{}\r\n\
                 redis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\n\
                 redis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nmultiplexing_api:tokio\r\n\
                 process_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\n\
                 uptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nexecutable:{}\r\nconfig_file:\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                shared.port,
                unix_ms() * 1000,
                uptime / 86_400,
                shared.hz.load(Ordering::Relaxed),
                shared.config.hz,
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        "clients" => {
            let _ = write!(
                text,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n\
                 tracking_clients:0\r\n",
                shared.clients.len(),
                shared.maxclients.load(Ordering::Relaxed),
            );
        }
        "memory" => {
            let used = crate::memory::allocated_bytes();
            let rss = crate::memory::resident_bytes();
            let ratio = if used > 0 {
                rss as f64 / used as f64
            } else {
                0.0
            };
            let _ = write!(
                text,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\n\
                 used_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nmaxmemory:0\r\n\
                 maxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
                 mem_fragmentation_ratio:{ratio:.2}\r\nmem_allocator:{allocator}\r\n",
                human_bytes(used),
                human_bytes(rss),
                allocator = crate::memory::ALLOCATOR_NAME,
            );
        }
        "persistence" => {
            let p = &shared.persist;
            let flag = |b: &std::sync::atomic::AtomicBool| u8::from(b.load(Ordering::Relaxed));
            let status = |b: &std::sync::atomic::AtomicBool| {
                if b.load(Ordering::Relaxed) {
                    "ok"
                } else {
                    "err"
                }
            };
            let aof = p.aof();
            let aof_write_ok = aof
                .as_ref()
                .is_none_or(|aof| !aof.write_failed.load(Ordering::Relaxed));
            let _ = write!(
                text,
                "# Persistence\r\nloading:{}\r\nasync_loading:0\r\n\
                 rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\n\
                 rdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\n\
                 aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\n\
                 aof_last_bgrewrite_status:{}\r\naof_last_write_status:{}\r\n",
                flag(&p.loading),
                p.dirty.load(Ordering::Relaxed),
                flag(&p.bgsave_in_progress),
                p.last_save_secs.load(Ordering::Relaxed),
                status(&p.last_bgsave_ok),
                u8::from(aof.is_some()),
                flag(&p.rewrite_in_progress),
                flag(&p.rewrite_scheduled),
                status(&p.last_rewrite_ok),
                if aof_write_ok { "ok" } else { "err" },
            );
            if let Some(aof) = &aof {
                let _ = write!(
                    text,
                    "aof_current_size:{}\r\naof_base_size:{}\r\naof_fsync_policy:{}\r\n",
                    p.aof_current_size(),
                    p.aof_base_size.load(Ordering::Relaxed),
                    aof.policy().name(),
                );
            }
        }
        "stats" => {
            let keyspace = shared
                .store
                .dbs()
                .iter()
                .map(Db::stats)
                .fold((0, 0, 0), |acc, s| {
                    (acc.0 + s.hits, acc.1 + s.misses, acc.2 + s.expired)
                });
            let _ = write!(
                text,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 instantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\n\
                 total_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\n\
                 evicted_keys:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\n",
                load(&stats.connections_received),
                load(&stats.commands_processed),
                load(&stats.ops_per_sec),
                load(&stats.net_input_bytes),
                load(&stats.net_output_bytes),
                load(&stats.rejected_connections),
                keyspace.2,
                keyspace.0,
                keyspace.1,
            );
        }
        "replication" => {
            text.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        }
        "cpu" => {
            let (user, system) = crate::memory::cpu_seconds();
            let _ = write!(
                text,
                "# CPU\r\nused_cpu_sys:{system:.6}\r\nused_cpu_user:{user:.6}\r\n"
            );
        }
        "keyspace" => {
            text.push_str("# Keyspace\r\n");
            for (index, db) in shared.store.dbs().iter().enumerate() {
                let (keys, volatile) = db.counts();
                if keys > 0 {
                    let _ = write!(
                        text,
                        "db{index}:keys={keys},expires={volatile},avg_ttl=0\r\n"
                    );
                }
            }
        }
        _ => {}
    }
}

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

/// Empties `dbs`; with `asynchronous` the memory is freed on a background thread.
fn flush_dbs<'a>(dbs: impl Iterator<Item = &'a Db>, asynchronous: bool) {
    let tables: Vec<_> = dbs.flat_map(Db::take_all).collect();
    if asynchronous {
        let spawned = std::thread::Builder::new()
            .name("kv-lazyfree".to_owned())
            .spawn(move || {
                drop(tables);
                crate::memory::release_free_memory();
            });
        if let Err(err) = spawned {
            tracing::warn!("could not start the lazy-free thread ({err}); freeing inline");
        }
    }
}

/// FLUSHDB [ASYNC | SYNC]
pub fn flushdb(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let asynchronous = flush_mode(args)?;
    flush_dbs(std::iter::once(ctx.db()), asynchronous);
    ctx.out.ok();
    Ok(())
}

/// FLUSHALL [ASYNC | SYNC]
pub fn flushall(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let asynchronous = flush_mode(args)?;
    flush_dbs(ctx.shared.store.dbs().iter(), asynchronous);
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

// ----- Persistence ---------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.00K");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.50M");
    }
}
