//! The Rust half of the sandbox: `rawset`, `setmetatable` and `load` as scripts see them.
//!
//! `sandbox.lua` makes every shared table a read-only proxy; these three functions are the
//! raw ways around a proxy's metatable, so they refuse the proxies (Redis's `Attempt to modify
//! a readonly table`), and `load` binds what it compiles to the script environment and
//! refuses binary chunks. They are Rust (C) functions on purpose: a Lua wrapper called in tail
//! position would drop the caller's frame, and errors would lose their `user_script:<line>`.

use bytes::BytesMut;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::engine::reply_error;

/// Redis's error for writing to a protected table through `rawset`/`setmetatable`.
const READONLY: &str = "ERR Attempt to modify a readonly table";

/// Installs `rawset`, `setmetatable` and `load` into the script globals (`env`). `protected`
/// maps each read-only proxy to the table it guards; `env_proxy` is the environment
/// compiled chunks get.
pub(crate) fn install(
    lua: &Lua,
    env: &Table,
    protected: Table,
    env_proxy: Table,
) -> mlua::Result<()> {
    let guarded = protected.clone();
    env.raw_set(
        "rawset",
        lua.create_function(move |lua, (t, k, v): (Value, Value, Value)| {
            let table = table_arg(lua, &t, 1, "rawset")?;
            if guarded.contains_key(&t)? {
                return Err(reply_error(READONLY));
            }
            table.raw_set(k, v)?;
            Ok(t)
        })?,
    )?;
    env.raw_set(
        "setmetatable",
        lua.create_function(move |lua, (t, mt): (Value, Value)| {
            let table = table_arg(lua, &t, 1, "setmetatable")?;
            if protected.contains_key(&t)? {
                return Err(reply_error(READONLY));
            }
            let mt = match mt {
                Value::Nil => None,
                Value::Table(mt) => Some(mt),
                other => {
                    return Err(bad_argument(lua, 2, "setmetatable", "nil or table", &other));
                }
            };
            if let Some(current) = table.metatable() {
                if !matches!(current.raw_get::<Value>("__metatable")?, Value::Nil) {
                    return Err(reply_error(format!(
                        "ERR {}cannot change a protected metatable",
                        where_prefix(lua)
                    )));
                }
            }
            table.set_metatable(mt);
            Ok(t)
        })?,
    )?;
    env.raw_set(
        "load",
        lua.create_function(move |lua, (reader, name): (Value, Option<mlua::String>)| {
            load(lua, &env_proxy, reader, name)
        })?,
    )?;
    Ok(())
}

/// Lua 5.1's `load(reader [, chunkname])`: compiles what the reader returns, piece by piece.
fn load(
    lua: &Lua,
    env: &Table,
    reader: Value,
    name: Option<mlua::String>,
) -> mlua::Result<MultiValue> {
    let Value::Function(reader) = reader else {
        return Err(bad_argument(lua, 1, "load", "function", &reader));
    };
    let name = name.map_or_else(|| "=(load)".to_string(), |n| n.to_string_lossy());
    let failed = |message: String| -> mlua::Result<MultiValue> {
        Ok(MultiValue::from_vec(vec![
            Value::Nil,
            Value::String(lua.create_string(message)?),
        ]))
    };
    let mut chunk = BytesMut::new();
    loop {
        match reader.call::<Value>(())? {
            Value::Nil => break,
            Value::String(piece) if piece.as_bytes().is_empty() => break,
            Value::String(piece) => chunk.extend_from_slice(&piece.as_bytes()),
            _ => return failed("reader function must return a string".to_string()),
        }
    }
    let shown = name.strip_prefix(['=', '@']).unwrap_or(&name).to_string();
    if chunk.first() == Some(&27) {
        // What Redis's Lua answers for bytecode: it only parses text.
        return failed(format!("{shown}:1: unexpected symbol near 'char(27)'"));
    }
    let compiled: mlua::Result<Function> = lua
        .load(&chunk[..])
        .set_name(name)
        .set_environment(env.clone())
        .into_function();
    match compiled {
        Ok(f) => Ok(MultiValue::from_vec(vec![Value::Function(f)])),
        Err(mlua::Error::SyntaxError { message, .. }) => failed(message),
        Err(e) => Err(e),
    }
}

/// The table argument of a base function, or Lua's `bad argument` error.
fn table_arg(lua: &Lua, value: &Value, position: usize, function: &str) -> mlua::Result<Table> {
    match value {
        Value::Table(t) => Ok(t.clone()),
        other => Err(bad_argument(lua, position, function, "table", other)),
    }
}

/// Lua's `bad argument #n to 'f' (x expected, got y)`, with the caller's position.
fn bad_argument(
    lua: &Lua,
    position: usize,
    function: &str,
    expected: &str,
    got: &Value,
) -> mlua::Error {
    let got = got.type_name();
    reply_error(format!(
        "ERR {}bad argument #{position} to '{function}' ({expected} expected, got {got})",
        where_prefix(lua)
    ))
}

/// `chunk:line: ` of the Lua code calling the current Rust function (as `luaL_where(L, 1)`),
/// or nothing when the caller is not Lua code.
pub(crate) fn where_prefix(lua: &Lua) -> String {
    let Some(caller) = lua.inspect_stack(1) else {
        return String::new();
    };
    let line = caller.curr_line();
    let source = caller.source();
    match source.short_src {
        Some(src) if line > 0 => format!("{src}:{line}: "),
        _ => String::new(),
    }
}
