//! The `redis` table scripts see (apart from `call`/`pcall`/`acl_check_cmd`, which need the
//! host and are installed per run by the engine) and Redis's `math.random` generator.
//!
//! Argument errors are the texts Redis raises (`ERR redis.log() requires two arguments or
//! more.`, ...); `error_reply`/`status_reply` return, rather than raise, their argument error
//! as Redis does.

use mlua::{Lua, MultiValue, Table, Value};

use super::engine::{redis_version_num, reply_error, sha1_hex, RunState, REDIS_VERSION};
use super::sandbox::where_prefix;

/// Builds the `redis` table's permanent contents (call/pcall are added for each run).
pub(crate) fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
    redis.raw_set("REDIS_VERSION_NUM", redis_version_num())?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.raw_set(name, level)?;
    }
    for (name, flags) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, flags)?;
    }
    redis.raw_set("error_reply", lua.create_function(error_reply)?)?;
    redis.raw_set("status_reply", lua.create_function(status_reply)?)?;
    redis.raw_set("sha1hex", lua.create_function(sha1hex)?)?;
    redis.raw_set("log", lua.create_function(log)?)?;
    redis.raw_set("setresp", lua.create_function(setresp)?)?;
    redis.raw_set("set_repl", lua.create_function(set_repl)?)?;
    redis.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    redis.raw_set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    Ok(redis)
}

/// The single string argument of `error_reply`/`status_reply`.
fn single_string(args: &MultiValue) -> Option<mlua::String> {
    match args.iter().collect::<Vec<_>>().as_slice() {
        [Value::String(s)] => Some(s.clone()),
        _ => None,
    }
}

/// What `error_reply`/`status_reply` return for bad arguments: Redis returns (does not
/// raise) this error table.
fn bad_reply_arguments(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", "ERR wrong number or type of arguments")?;
    Ok(t)
}

/// `redis.error_reply(text)`: `{err=...}`. A text starting with `-CODE ` keeps its code;
/// anything else gets `ERR ` (as Redis 7: `"x"` and `"-x"` both become `ERR x`).
fn error_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Table> {
    let Some(text) = single_string(&args) else {
        return bad_reply_arguments(lua);
    };
    let bytes = text.as_bytes();
    let body = bytes.strip_prefix(b"-").unwrap_or(&bytes);
    let mut err = Vec::with_capacity(body.len() + 4);
    if !body.contains(&b' ') {
        err.extend_from_slice(b"ERR ");
    }
    err.extend_from_slice(body);
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", lua.create_string(err)?)?;
    Ok(t)
}

/// `redis.status_reply(text)`: `{ok=text}`.
fn status_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Table> {
    let Some(text) = single_string(&args) else {
        return bad_reply_arguments(lua);
    };
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("ok", text)?;
    Ok(t)
}

/// `redis.sha1hex(value)`: the hex SHA-1 of a string (numbers in their text form; other
/// values hash as the empty string, as in Redis).
fn sha1hex(lua: &Lua, args: MultiValue) -> mlua::Result<String> {
    if args.len() != 1 {
        return Err(reply_error("ERR wrong number of arguments"));
    }
    let text = args
        .into_iter()
        .next()
        .map(|v| lua.coerce_string(v))
        .transpose()?
        .flatten();
    Ok(match text {
        Some(s) => sha1_hex(&s.as_bytes()),
        None => sha1_hex(b""),
    })
}

/// A Lua number argument as Lua 5.1 reads one (numbers, and strings holding numbers).
fn number_arg(lua: &Lua, value: &Value) -> mlua::Result<Option<f64>> {
    Ok(match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(_) => lua.coerce_number(value.clone())?,
        _ => None,
    })
}

/// `redis.log(level, message, ...)`: writes the arguments, space-separated, to the server log.
fn log(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return Err(reply_error(
            "ERR redis.log() requires two arguments or more.",
        ));
    }
    let mut args = args.into_iter();
    let level = args.next().unwrap_or(Value::Nil);
    let Some(level) = number_arg(lua, &level)? else {
        return Err(reply_error(
            "ERR First argument must be a number (log level).",
        ));
    };
    let level = level as i64;
    if !(0..=3).contains(&level) {
        return Err(reply_error("ERR Invalid debug level."));
    }
    let mut message = String::new();
    for (i, arg) in args.enumerate() {
        if let Some(text) = lua.coerce_string(arg)? {
            if i > 0 {
                message.push(' ');
            }
            message.push_str(&text.to_string_lossy());
        }
    }
    match level {
        0 => tracing::debug!(target: "script", "{message}"),
        1 => tracing::debug!(target: "script", "{message}"),
        2 => tracing::info!(target: "script", "{message}"),
        _ => tracing::warn!(target: "script", "{message}"),
    }
    Ok(())
}

/// `redis.setresp(2|3)`: the protocol of the replies `redis.call` hands the script, and of
/// booleans in the script's own reply.
fn setresp(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() != 1 {
        return Err(reply_error("ERR redis.setresp() requires one argument."));
    }
    let version = match args.iter().next() {
        Some(v) => number_arg(lua, v)?,
        None => None,
    };
    let resp3 = match version {
        Some(2.0) => false,
        Some(3.0) => true,
        _ => return Err(reply_error("ERR RESP version must be 2 or 3.")),
    };
    if let Some(mut state) = lua.app_data_mut::<RunState>() {
        state.resp3 = resp3;
    }
    Ok(())
}

/// `redis.set_repl(flags)`: checked and accepted; Redis 7 always replicates effects.
fn set_repl(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() != 1 {
        return Err(reply_error("ERR redis.set_repl() requires two arguments."));
    }
    let flags = match args.iter().next() {
        Some(v) => number_arg(lua, v)?.unwrap_or(0.0) as i64,
        None => 0,
    };
    if flags & !3 != 0 {
        return Err(reply_error(
            "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        ));
    }
    Ok(())
}

const RNG_MASK: u64 = (1 << 48) - 1;
const RNG_MAX: u64 = i32::MAX as u64;

/// The generator state `srand48(seed)` sets.
pub(crate) fn seed_state(seed: u32) -> u64 {
    ((u64::from(seed) << 16) | 0x330E) & RNG_MASK
}

/// The next `lrand48()` value (31 bits) of the 48-bit linear congruential generator.
fn next_random(state: &mut u64) -> u64 {
    *state = (state.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & RNG_MASK;
    *state >> 17
}

/// `math.random([m [, n]])` with Redis's generator (Lua 5.1's argument rules).
pub(crate) fn math_random(lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let draw = match lua.app_data_mut::<RunState>() {
        Some(mut state) => next_random(&mut state.rng),
        None => 0,
    };
    let r = (draw % RNG_MAX) as f64 / RNG_MAX as f64;
    let int_arg = |i: usize, v: &Value| -> mlua::Result<f64> {
        match number_arg(lua, v)? {
            Some(n) => Ok(n.trunc()),
            None => Err(reply_error(format!(
                "ERR {}bad argument #{i} to 'random' (number expected, got {})",
                where_prefix(lua),
                v.type_name()
            ))),
        }
    };
    let args: Vec<Value> = args.into_iter().collect();
    match args.as_slice() {
        [] => Ok(r),
        [m] => {
            let m = int_arg(1, m)?;
            if m < 1.0 {
                return Err(reply_error(format!(
                    "ERR {}bad argument #1 to 'random' (interval is empty)",
                    where_prefix(lua)
                )));
            }
            Ok((r * m).floor() + 1.0)
        }
        [l, u] => {
            let (l, u) = (int_arg(1, l)?, int_arg(2, u)?);
            if l > u {
                return Err(reply_error(format!(
                    "ERR {}bad argument #2 to 'random' (interval is empty)",
                    where_prefix(lua)
                )));
            }
            Ok((r * (u - l + 1.0)).floor() + l)
        }
        _ => Err(reply_error("ERR wrong number of arguments")),
    }
}

/// `math.randomseed(n)`: restarts Redis's generator from `n`.
pub(crate) fn math_randomseed(lua: &Lua, seed: Value) -> mlua::Result<()> {
    let Some(seed) = number_arg(lua, &seed)? else {
        return Err(reply_error(format!(
            "ERR {}bad argument #1 to 'randomseed' (number expected, got {})",
            where_prefix(lua),
            seed.type_name()
        )));
    };
    if let Some(mut state) = lua.app_data_mut::<RunState>() {
        state.rng = seed_state(seed as i64 as u32);
    }
    Ok(())
}
