//! Command introspection: COMMAND and its subcommands (COUNT, INFO, DOCS, LIST, GETKEYS),
//! read by redis-cli and kvcli for hints and by client libraries for key positions.

use protocol::catalogue::{
    self, AclCategories, ArgSpec, BeginSearch, CommandFlags, CommandSpec, FindKeys, KeySpec,
};
use protocol::Argv;

use super::{errors, is, reply_help, CmdError, Ctx, Reply};
use crate::glob::glob_match;

fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    catalogue::COMMANDS.iter()
}

/// A set of names as simple strings, each with `prefix` (`@` for ACL categories).
fn write_names(out: &mut Reply, names: &[&str], prefix: &str) {
    out.set(names.len());
    for name in names {
        if prefix.is_empty() {
            out.simple(name);
        } else {
            out.simple(&format!("{prefix}{name}"));
        }
    }
}

/// One key spec in Redis 7's shape: `flags`, `begin_search`, `find_keys`.
fn write_key_spec(out: &mut Reply, spec: &KeySpec) {
    out.map(3);
    out.bulk(b"flags");
    write_names(out, &spec.flags.names().collect::<Vec<_>>(), "");
    out.bulk(b"begin_search");
    out.map(2);
    out.bulk(b"type");
    match spec.begin_search {
        BeginSearch::Index(index) => {
            out.bulk(b"index");
            out.bulk(b"spec");
            out.map(1);
            out.bulk(b"index");
            out.int(i64::from(index));
        }
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => {
            out.bulk(b"keyword");
            out.bulk(b"spec");
            out.map(2);
            out.bulk(b"keyword");
            out.bulk(keyword.as_bytes());
            out.bulk(b"startfrom");
            out.int(i64::from(start_from));
        }
    }
    out.bulk(b"find_keys");
    out.map(2);
    out.bulk(b"type");
    match spec.find_keys {
        FindKeys::Range {
            last_key,
            key_step,
            limit,
        } => {
            out.bulk(b"range");
            out.bulk(b"spec");
            out.map(3);
            out.bulk(b"lastkey");
            out.int(i64::from(last_key));
            out.bulk(b"keystep");
            out.int(i64::from(key_step));
            out.bulk(b"limit");
            out.int(i64::from(limit));
        }
        FindKeys::KeyNum {
            key_num_index,
            first_key,
            key_step,
        } => {
            out.bulk(b"keynum");
            out.bulk(b"spec");
            out.map(3);
            out.bulk(b"keynumidx");
            out.int(i64::from(key_num_index));
            out.bulk(b"firstkey");
            out.int(i64::from(first_key));
            out.bulk(b"keystep");
            out.int(i64::from(key_step));
        }
    }
}

/// One `COMMAND INFO` entry: Redis's ten fields.
fn write_command_info(out: &mut Reply, spec: &CommandSpec) {
    let keys = spec.legacy_range();
    let mut flags = spec.flags;
    if keys.movable {
        flags = flags.union(CommandFlags::MOVABLEKEYS);
    }
    out.array(10);
    out.bulk(spec.name.as_bytes());
    out.int(i64::from(spec.arity));
    write_names(out, &flags.names().collect::<Vec<_>>(), "");
    out.int(i64::from(keys.first));
    out.int(i64::from(keys.last));
    out.int(i64::from(keys.step));
    let categories: Vec<&str> = spec.acl_categories.names().collect();
    write_names(out, &categories, "@");
    out.set(0); // tips
    out.array(spec.key_specs.len());
    for key_spec in spec.key_specs {
        write_key_spec(out, key_spec);
    }
    out.array(spec.subcommands.len());
    for sub in spec.subcommands {
        write_command_info(out, sub);
    }
}

/// COMMAND: information about every command.
pub fn command_all(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    ctx.out.array(catalogue::COMMANDS.len());
    for spec in all_specs() {
        write_command_info(ctx.out, spec);
    }
    Ok(())
}

/// COMMAND COUNT
pub fn command_count(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    ctx.out.count(catalogue::COMMANDS.len());
    Ok(())
}

/// COMMAND INFO [command-name ...]: nil for unknown names.
pub fn command_info(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    if args.len() == 2 {
        return command_all(ctx, args);
    }
    ctx.out.array(args.len() - 2);
    for name in args.slice(2..) {
        match catalogue::find_full(name) {
            Some(spec) => write_command_info(ctx.out, spec),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn write_args(out: &mut Reply, args: &[ArgSpec]) {
    out.array(args.len());
    for arg in args {
        let flags: Vec<&str> = [
            (arg.optional, "optional"),
            (arg.multiple, "multiple"),
            (arg.multiple_token, "multiple_token"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        let fields = 3
            + usize::from(arg.token.is_some())
            + usize::from(!flags.is_empty())
            + usize::from(!arg.children.is_empty());
        out.map(fields);
        out.bulk(b"name");
        out.bulk(arg.name.as_bytes());
        out.bulk(b"type");
        out.bulk(arg.kind.as_str().as_bytes());
        out.bulk(b"display_text");
        out.bulk(arg.label().as_bytes());
        if let Some(token) = &arg.token {
            out.bulk(b"token");
            out.bulk(token.as_bytes());
        }
        if !flags.is_empty() {
            out.bulk(b"flags");
            write_names(out, &flags, "");
        }
        if !arg.children.is_empty() {
            out.bulk(b"arguments");
            write_args(out, &arg.children);
        }
    }
}

fn write_command_docs(out: &mut Reply, spec: &CommandSpec) {
    let args = spec.arguments();
    let fields = 4 + usize::from(!args.is_empty()) + usize::from(!spec.subcommands.is_empty());
    out.map(fields);
    out.bulk(b"summary");
    out.bulk(spec.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(spec.since.as_bytes());
    out.bulk(b"group");
    out.bulk(spec.group.as_str().as_bytes());
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
            .filter_map(catalogue::find_full)
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
                match AclCategories::from_name(value) {
                    Some(category) => all_specs()
                        .filter(|s| s.acl_categories.contains(category))
                        .map(|s| s.name)
                        .collect(),
                    None => Vec::new(),
                }
            } else if is(&args[3], "PATTERN") {
                let pattern = value.to_ascii_lowercase();
                catalogue::all()
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
    let mut spec =
        catalogue::find(&target[0]).ok_or(CmdError::new("ERR Invalid command specified"))?;
    if let Some(sub) = target.get(1).and_then(|sub| spec.subcommand(sub)) {
        spec = sub;
    }
    if !spec.arity_ok(target.len()) {
        return Err(CmdError::new(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let keys = spec.key_positions(target);
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
