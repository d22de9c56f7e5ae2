//! Command introspection: COMMAND and its subcommands (COUNT, INFO, DOCS, LIST, GETKEYS),
//! read by redis-cli and kvcli for hints and by client libraries for key positions.

use protocol::Argv;

use super::docs::{arguments, Arg};
use super::table::{lookup, CommandSpec, COMMANDS};
use super::{errors, is, reply_help, CmdError, Ctx, Reply};
use crate::glob::glob_match;

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
