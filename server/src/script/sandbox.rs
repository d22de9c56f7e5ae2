//! The Rust half of the sandbox: `rawget`, `rawset`, `setmetatable`, `load`, `loadstring` and
//! `collectgarbage` as scripts see them.
//!
//! `sandbox.lua` makes every shared table a read-only proxy; these functions are the raw ways
//! around a proxy's metatable, so writes refuse the proxies (Redis's `Attempt to modify a
//! readonly table`) and `rawget` reads what a proxy guards; `load`/`loadstring` bind what
//! they compile to the script environment and refuse bytecode. They are Rust (C) functions on purpose: a Lua wrapper called in tail
//! position would drop the caller's frame, and errors would lose their `user_script:<line>`.

use bytes::BytesMut;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::engine::{lua_string_error, reply_error};

/// Redis's error for writing to a protected table through `rawset`/`setmetatable`.
const READONLY: &str = "ERR Attempt to modify a readonly table";

/// Installs `rawget`, `rawset`, `setmetatable`, `load` and `loadstring` into the script globals (`env`). `protected`
/// maps each read-only proxy to the table it guards; `env_proxy` is the environment
/// compiled chunks get.
pub(crate) fn install(
    lua: &Lua,
    env: &Table,
    protected: Table,
    env_proxy: Table,
    on_gc_stop: impl Fn() + 'static,
) -> mlua::Result<()> {
    // The engine restarts a collector a script stopped, and must know when: restarting a
    // running collector makes it work at once, a cost on every run.
    let collect: Function = env.raw_get("collectgarbage")?;
    env.raw_set(
        "collectgarbage",
        lua.create_function(move |lua, args: MultiValue| {
            if matches!(args.front(), Some(Value::String(option)) if option.as_bytes() == b"stop") {
                on_gc_stop();
            }
            collect.call::<MultiValue>(args).map_err(|error| {
                // Called from Rust, the real function cannot tell its name or the caller's line.
                let message = match error {
                    mlua::Error::RuntimeError(message) => {
                        // mlua appends a traceback.
                        let message = message.split("\nstack traceback:").next().unwrap_or("");
                        message.replacen("'?'", "'collectgarbage'", 1)
                    }
                    other => other.to_string(),
                };
                lua_string_error(format!("{}{message}", where_prefix(lua)))
            })
        })?,
    )?;
    let guarded = protected.clone();
    let backing = protected.clone();
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
    let load_env = env_proxy.clone();
    env.raw_set(
        "load",
        lua.create_function(move |lua, (reader, name): (Value, Option<mlua::String>)| {
            load(lua, &load_env, reader, name)
        })?,
    )?;
    env.raw_set(
        "loadstring",
        lua.create_function(move |lua, (text, name): (Value, Option<mlua::String>)| {
            loadstring(lua, &env_proxy, text, name)
        })?,
    )?;
    env.raw_set(
        "rawget",
        lua.create_function(move |lua, (t, k): (Value, Value)| {
            let table = table_arg(lua, &t, 1, "rawget")?;
            match backing.raw_get::<Value>(t)? {
                Value::Table(guarded) => guarded.raw_get::<Value>(k),
                _ => table.raw_get::<Value>(k),
            }
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
    let mut chunk = BytesMut::new();
    loop {
        match reader.call::<Value>(())? {
            Value::Nil => break,
            Value::String(piece) if piece.as_bytes().is_empty() => break,
            Value::String(piece) => chunk.extend_from_slice(&piece.as_bytes()),
            _ => return failure(lua, "reader function must return a string".to_string()),
        }
    }
    let name = name.map_or_else(|| b"=(load)".to_vec(), |n| n.as_bytes().to_vec());
    compile(lua, env, &chunk, &name)
}

/// Lua 5.1's `loadstring(text [, chunkname])`.
fn loadstring(
    lua: &Lua,
    env: &Table,
    text: Value,
    name: Option<mlua::String>,
) -> mlua::Result<MultiValue> {
    let Some(text) = lua.coerce_string(text.clone())? else {
        return Err(bad_argument(lua, 1, "loadstring", "string", &text));
    };
    let text = text.as_bytes().to_vec();
    let name = name.map_or_else(|| text.clone(), |n| n.as_bytes().to_vec());
    compile(lua, env, &text, &name)
}

/// Compiles `chunk` as text into a function bound to the script environment: the function,
/// or `nil` and Lua's message. Bytecode is parsed as text too, so it fails the way it does
/// in Redis's Lua.
fn compile(lua: &Lua, env: &Table, chunk: &[u8], name: &[u8]) -> mlua::Result<MultiValue> {
    if chunk.first() == Some(&27) {
        return failure(
            lua,
            format!("{}:1: unexpected symbol near 'char(27)'", chunk_id(name)),
        );
    }
    let compiled: mlua::Result<Function> = lua
        .load(chunk)
        .set_name(String::from_utf8_lossy(name).into_owned())
        .set_environment(env.clone())
        .into_function();
    match compiled {
        Ok(f) => Ok(MultiValue::from_vec(vec![Value::Function(f)])),
        Err(mlua::Error::SyntaxError { message, .. }) => failure(lua, message),
        Err(e) => Err(e),
    }
}

/// `nil, message`: how load and loadstring report a chunk that does not compile.
fn failure(lua: &Lua, message: String) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        Value::String(lua.create_string(message)?),
    ]))
}

/// How Lua 5.1 names a chunk in messages: `=name` → `name`, `@file` → `file`, any other
/// source → `[string "its first line"]` (cut at a newline or NUL, shortened with `...`).
fn chunk_id(source: &[u8]) -> String {
    const ID_SIZE: usize = 60;
    if let Some(name) = source.strip_prefix(b"=") {
        return String::from_utf8_lossy(&name[..name.len().min(ID_SIZE - 1)]).into_owned();
    }
    if let Some(file) = source.strip_prefix(b"@") {
        let room = ID_SIZE - 4;
        return if file.len() > room {
            format!("...{}", String::from_utf8_lossy(&file[file.len() - room..]))
        } else {
            String::from_utf8_lossy(file).into_owned()
        };
    }
    let text = source.split(|&b| b == 0).next().unwrap_or_default();
    let line_end = text
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(text.len());
    let room = ID_SIZE - " [string \"...\"] ".len() - 1;
    let len = line_end.min(room);
    let shown = String::from_utf8_lossy(&text[..len]);
    if len < text.len() {
        format!("[string \"{shown}...\"]")
    } else {
        format!("[string \"{shown}\"]")
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
