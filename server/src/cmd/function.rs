//! FCALL, FCALL_RO and FUNCTION: Redis 7 functions, libraries of named Lua functions loaded
//! once and called by name. A call runs exactly as a script does (`cmd::scripting`: the same
//! atomic section, conversions, BUSY); the libraries live in the store
//! ([`crate::store::Store::functions`]), as part of the data set that snapshots and the log
//! keep.

use protocol::Argv;

use super::scripting::{keys_and_args, run_target, with_engine, Target};
use super::{is, reply_help, CmdError, Ctx};
use crate::script::RestorePolicy;

/// FCALL function numkeys [key ...] [arg ...]
pub fn fcall(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    call_function(ctx, args, false)
}

/// FCALL_RO function numkeys [key ...] [arg ...]
pub fn fcall_ro(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    call_function(ctx, args, true)
}

fn call_function(ctx: &mut Ctx<'_>, args: Argv<'_>, read_only: bool) -> Result<(), CmdError> {
    let (keys, argv) = keys_and_args(args)?;
    let name = &args[1];
    let flags = ctx
        .shared
        .store
        .functions()
        .function_flags(name)
        .ok_or(CmdError::new("ERR Function not found"))?;
    run_target(ctx, Target::Function(name), flags, keys, argv, read_only)
}

/// Makes a change to the function libraries (FUNCTION LOAD, DELETE, FLUSH, RESTORE) and,
/// if it succeeds, propagates the command as sent. The change touches no key; it is made and
/// propagated holding shard 0 of database 0, which a snapshot also holds when it captures the
/// libraries, so a snapshot and the log agree on which changes it contains.
fn change_functions<R>(
    ctx: &Ctx<'_>,
    args: Argv<'_>,
    change: impl FnOnce(&crate::script::FunctionLibraries) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let store = &ctx.shared.store;
    let db = store.db(0).ok_or(CmdError::new("ERR no database 0"))?;
    let shard = db.lock_shard(0);
    let result = change(store.functions())?;
    let args: Vec<&[u8]> = args.iter().collect();
    shard.propagate(&args);
    Ok(result)
}

/// FUNCTION LOAD [REPLACE] function-code
pub fn function_load(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (replace, code) = match args.len() {
        3 => (false, &args[2]),
        4 if is(&args[2], "replace") => (true, &args[3]),
        4 => {
            return Err(CmdError::owned(format!(
                "ERR Unknown option given: {}",
                super::printable(&args[2], 128)
            )))
        }
        _ => return Err(super::errors::SYNTAX),
    };
    let name = change_functions(ctx, args, |functions| {
        with_engine(|engine| engine.function_load(functions, code, replace))?
            .map_err(CmdError::owned)
    })?;
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

/// FUNCTION DELETE library-name
pub fn function_delete(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    change_functions(ctx, args, |functions| {
        functions.delete(&args[2]).map_err(CmdError::owned)
    })?;
    ctx.out.ok();
    Ok(())
}

/// FUNCTION FLUSH [ASYNC | SYNC]
pub fn function_flush(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    match args.get(2) {
        None => {}
        Some(mode) if args.len() == 3 && (is(mode, "async") || is(mode, "sync")) => {}
        Some(_) => {
            return Err(CmdError::new(
                "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
            ))
        }
    }
    change_functions(ctx, args, |functions| {
        functions.flush();
        Ok(())
    })?;
    ctx.out.ok();
    Ok(())
}

/// FUNCTION DUMP
pub fn function_dump(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let payload = ctx.shared.store.functions().dump();
    ctx.out.bulk(&payload);
    Ok(())
}

/// FUNCTION RESTORE serialized-value [FLUSH | APPEND | REPLACE]
pub fn function_restore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let policy =
        match args.get(3) {
            None => RestorePolicy::Append,
            Some(p) if args.len() == 4 && is(p, "flush") => RestorePolicy::Flush,
            Some(p) if args.len() == 4 && is(p, "append") => RestorePolicy::Append,
            Some(p) if args.len() == 4 && is(p, "replace") => RestorePolicy::Replace,
            Some(_) => return Err(CmdError::new(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
        };
    change_functions(ctx, args, |functions| {
        with_engine(|engine| engine.function_restore(functions, &args[2], policy))?
            .map_err(CmdError::owned)
    })?;
    ctx.out.ok();
    Ok(())
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
pub fn function_list(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let mut pattern: Option<&[u8]> = None;
    let mut with_code = false;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "withcode") && !with_code {
            with_code = true;
            i += 1;
        } else if is(&args[i], "libraryname") && pattern.is_none() {
            pattern = Some(
                args.get(i + 1)
                    .ok_or(CmdError::new("ERR library name argument was not given"))?,
            );
            i += 2;
        } else {
            return Err(CmdError::owned(format!(
                "ERR Unknown argument {}",
                super::printable(&args[i], 128)
            )));
        }
    }
    let libraries: Vec<_> = ctx
        .shared
        .store
        .functions()
        .libraries()
        .into_iter()
        .filter(|library| {
            pattern.is_none_or(|p| crate::glob::glob_match(p, library.name.as_bytes()))
        })
        .collect();
    let out = &mut *ctx.out;
    out.array(libraries.len());
    for library in libraries {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(library.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(library.functions.len());
        for function in &library.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(function.name.as_bytes());
            out.bulk(b"description");
            match &function.description {
                Some(text) => out.bulk(text.as_bytes()),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names = function.flags.names();
            out.set(names.len());
            for name in names {
                out.bulk(name.as_bytes());
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&library.code);
        }
    }
    Ok(())
}

/// FUNCTION STATS
pub fn function_stats(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let (libraries, functions) = ctx.shared.store.functions().counts();
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    out.null();
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.count(libraries);
    out.bulk(b"functions_count");
    out.count(functions);
    Ok(())
}

/// FUNCTION HELP
pub fn function_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    reply_help(
        ctx,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Load a library from its code; REPLACE swaps out a library of the same name.",
            "DELETE <LIBRARY NAME>",
            "    Delete a library and its functions.",
            "KILL",
            "    Stop a function that runs past the busy threshold and has not written.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete every library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Describe the libraries (and their code).",
            "STATS",
            "    The running function, and how many libraries and functions are loaded.",
            "DUMP",
            "    Serialize every library into one payload.",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Load the libraries of a DUMP payload.",
        ],
    );
    Ok(())
}
