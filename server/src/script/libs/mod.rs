//! The libraries Redis 7 makes available to scripts: `cjson`, `cmsgpack`, `bit` and `struct`.
//!
//! Each library is written in Rust from its documented behaviour and from what Redis 7.0.15
//! returns (the unit tests hold the outputs observed on the real server). [`install`] sets the
//! four globals in a Lua state; the engine calls it once when it builds a state.
//!
//! Errors: a library function fails the way a C library's `luaL_error`/`luaL_argerror` does,
//! with the caller's `chunk:line: ` prefix and Redis's text, raised as
//! [`mlua::Error::RuntimeError`]. mlua carries a Rust callback's error through Lua as a
//! userdata wrapping that error; [`error_text`] digs the text back out (for error replies, and
//! for a `pcall` that should hand the script a string, as Redis's does; such a `pcall` should
//! pass only the error value through Rust, see "Numbers" below and `test_support::state`).
//!
//! Bounded resources: nothing here recurses with the input's nesting except `cmsgpack.pack`
//! (at most 16 levels, by definition); the decoders and `cjson.encode` walk iteratively. No
//! code holds more than a bounded number of mlua handles (`Value::String`, `Table`, ...) at
//! once: mlua keeps each in a slot of an auxiliary Lua stack limited to about 8000 slots and
//! panics when it runs out, so containers in progress live in a Lua table (`NestStack`) and
//! a call returns at most `MAX_RESULTS` values. Declared lengths in binary input are only
//! believed once the bytes are there.
//!
//! Protection: in Redis 7 the library tables are read-only (assigning `cjson.encode`, or
//! `rawset`/`setmetatable` on them, fails with "Attempt to modify a readonly table"), through
//! the same mechanism that protects every table reachable from the globals (`string`, `math`,
//! ...). Stock Lua 5.1 has no read-only tables, so [`install`] creates plain tables and leaves
//! the protection to the engine, which must apply one scheme to all global tables alike.
//! Tables returned by `cjson.new()` are writable, as in Redis.
//!
//! Numbers: mlua hands a Rust function a Lua number as `Value::Integer` when it is within
//! `f64::EPSILON` of an integer, so -0 and numbers of magnitude below 2.2e-16 arrive as the
//! integer 0. Inside tables the libraries read such values again as exact doubles (a raw get
//! as `f64`), so `cjson.encode({1e-300})` is right; a bare argument cannot be re-read, so
//! `cjson.encode(1e-300)`, `cmsgpack.pack(-0.0)` or `struct.pack('d', 1e-300)` see 0.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structs;

use mlua::{Lua, MultiValue, Value};

/// The global names [`install`] sets, in the order it sets them.
pub const LIBRARY_NAMES: [&str; 4] = ["cjson", "cmsgpack", "bit", "struct"];

/// Most values one library call may return at once. Redis 7.0.15 fails beyond 7999 (the Lua
/// 5.1 stack of a C call holds 8000 slots). We stop at half that: every string or table handed
/// back through mlua holds a slot of mlua's auxiliary handle stack, which has the same bound
/// and panics (rather than failing with an error) when exhausted, and the engine holds some
/// slots too.
pub(crate) const MAX_RESULTS: usize = 4000;

/// A stack of Lua values kept in a Lua table, so that walking or building deeply nested data
/// holds one mlua handle however deep it goes (see "Bounded resources" above).
pub(crate) struct NestStack {
    slots: mlua::Table,
    depth: usize,
}

impl NestStack {
    /// An empty stack.
    pub(crate) fn new(lua: &Lua) -> mlua::Result<Self> {
        Ok(NestStack {
            slots: lua.create_table()?,
            depth: 0,
        })
    }

    /// Saves `value` on top of the stack.
    pub(crate) fn push(&mut self, value: Value) -> mlua::Result<()> {
        self.depth += 1;
        self.slots.raw_set(self.depth, value)
    }

    /// Removes the top value and returns it (nil when empty).
    pub(crate) fn pop(&mut self) -> mlua::Result<Value> {
        if self.depth == 0 {
            return Ok(Value::Nil);
        }
        let value: Value = self.slots.raw_get(self.depth)?;
        self.slots.raw_set(self.depth, Value::Nil)?;
        self.depth -= 1;
        Ok(value)
    }

    /// The top value, left in place (nil when empty).
    pub(crate) fn top(&self) -> mlua::Result<Value> {
        if self.depth == 0 {
            return Ok(Value::Nil);
        }
        self.slots.raw_get(self.depth)
    }
}

/// A number read from `table[key]` exactly: mlua turns numbers within `f64::EPSILON` of an
/// integer into `Value::Integer` (so -0 and tiny numbers become 0); reading the slot again as
/// a double recovers the value Lua holds.
pub(crate) fn exact_number(
    table: &mlua::Table,
    key: &Value,
    value: &Value,
) -> mlua::Result<Option<f64>> {
    match value {
        Value::Integer(0) => table.raw_get::<f64>(key.clone()).map(Some),
        Value::Integer(i) => Ok(Some(*i as f64)),
        Value::Number(n) => Ok(Some(*n)),
        _ => Ok(None),
    }
}

/// Sets the globals `cjson`, `cmsgpack`, `bit` and `struct` in `lua`, each a fresh table of
/// functions behaving as the library of the same name does in Redis 7.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.raw_set("cjson", cjson::create(lua)?)?;
    globals.raw_set("cmsgpack", cmsgpack::create(lua)?)?;
    globals.raw_set("bit", bit::create(lua)?)?;
    globals.raw_set("struct", structs::create(lua)?)?;
    Ok(())
}

/// The message a script (or an error reply) should see for `err`: the text of the innermost
/// cause, without mlua's wrapping or traceback.
pub fn error_text(err: &mlua::Error) -> String {
    match err {
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::WithContext { cause, .. } => error_text(cause),
        mlua::Error::RuntimeError(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `chunk:line: ` of the Lua code that called the running library function, as `luaL_where`
/// gives it (empty when the caller is not Lua code, e.g. `pcall(cjson.decode, s)`).
fn caller_location(lua: &Lua) -> String {
    let Some(frame) = lua.inspect_stack(1) else {
        return String::new();
    };
    let line = frame.curr_line();
    if line <= 0 {
        return String::new();
    }
    let source = frame.source();
    match source.short_src {
        Some(src) => format!("{src}:{line}: "),
        None => String::new(),
    }
}

/// An error raised as `luaL_error` would: the caller's location, then `message`.
pub(crate) fn raise(lua: &Lua, message: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}{message}", caller_location(lua)))
}

/// Lua's name for the type of `value` (`lua_typename`; light userdata is "userdata").
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// The arguments of one library call, with `luaL_check*`-style accessors whose errors read
/// exactly as the C libraries' do ("bad argument #2 to 'pack' (number expected, got nil)").
pub(crate) struct Args<'a> {
    lua: &'a Lua,
    values: Vec<Value>,
}

impl<'a> Args<'a> {
    /// Wraps the arguments `lua` passed to a library function.
    pub(crate) fn new(lua: &'a Lua, args: MultiValue) -> Self {
        Args {
            lua,
            values: args.into_vec(),
        }
    }

    /// How many arguments the call passed (`lua_gettop`).
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Argument `n` (1-based); `None` past the last one ("no value").
    pub(crate) fn get(&self, n: usize) -> Option<&Value> {
        n.checked_sub(1).and_then(|i| self.values.get(i))
    }

    /// Whether argument `n` is absent or nil (`lua_isnoneornil`).
    pub(crate) fn is_none_or_nil(&self, n: usize) -> bool {
        matches!(self.get(n), None | Some(Value::Nil))
    }

    /// The type name `luaL_typename` gives argument `n`: "no value" past the last one.
    pub(crate) fn type_name(&self, n: usize) -> &'static str {
        self.get(n).map_or("no value", type_name)
    }

    /// `luaL_argerror`: "bad argument #n to 'name' (message)", naming the function as the
    /// caller spelled it (`?` when unknown), with the caller's location in front.
    pub(crate) fn arg_error(&self, n: usize, message: impl std::fmt::Display) -> mlua::Error {
        let (name, is_method) = match self.lua.inspect_stack(0) {
            Some(frame) => {
                let names = frame.names();
                (
                    names.name.map(|n| n.into_owned()),
                    names.name_what == Some("method"),
                )
            }
            None => (None, false),
        };
        let name = name.unwrap_or_else(|| "?".to_string());
        if is_method {
            if n == 1 {
                return raise(
                    self.lua,
                    format_args!("calling '{name}' on bad self ({message})"),
                );
            }
            return raise(
                self.lua,
                format_args!("bad argument #{} to '{name}' ({message})", n - 1),
            );
        }
        raise(
            self.lua,
            format_args!("bad argument #{n} to '{name}' ({message})"),
        )
    }

    /// `luaL_typerror`: "<expected> expected, got <type>".
    pub(crate) fn type_error(&self, n: usize, expected: &str) -> mlua::Error {
        self.arg_error(
            n,
            format_args!("{expected} expected, got {}", self.type_name(n)),
        )
    }

    /// `luaL_checknumber`: a number, or a string Lua converts to one.
    pub(crate) fn number(&self, n: usize) -> mlua::Result<f64> {
        match self.get(n) {
            Some(value) => match to_number(self.lua, value)? {
                Some(number) => Ok(number),
                None => Err(self.type_error(n, "number")),
            },
            None => Err(self.type_error(n, "number")),
        }
    }

    /// `luaL_checkinteger`: a number truncated towards zero to a C `ptrdiff_t`.
    pub(crate) fn integer(&self, n: usize) -> mlua::Result<i64> {
        self.number(n).map(c_double_to_i64)
    }

    /// `luaL_optinteger`: `default` when the argument is absent or nil.
    pub(crate) fn opt_integer(&self, n: usize, default: i64) -> mlua::Result<i64> {
        if self.is_none_or_nil(n) {
            Ok(default)
        } else {
            self.integer(n)
        }
    }

    /// `luaL_checklstring`: the bytes of a string, or of a number's string form.
    pub(crate) fn bytes(&self, n: usize) -> mlua::Result<mlua::String> {
        match self.get(n) {
            Some(value) => match to_lua_string(self.lua, value)? {
                Some(s) => Ok(s),
                None => Err(self.type_error(n, "string")),
            },
            None => Err(self.type_error(n, "string")),
        }
    }
}

/// `lua_tonumber`: numbers as they are, strings Lua can read as numbers, else `None`.
pub(crate) fn to_number(lua: &Lua, value: &Value) -> mlua::Result<Option<f64>> {
    match value {
        Value::Integer(i) => Ok(Some(*i as f64)),
        Value::Number(n) => Ok(Some(*n)),
        Value::String(_) => lua.coerce_number(value.clone()),
        _ => Ok(None),
    }
}

/// `lua_tolstring`: strings as they are, numbers in Lua's `%.14g` form, else `None`.
pub(crate) fn to_lua_string(lua: &Lua, value: &Value) -> mlua::Result<Option<mlua::String>> {
    match value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Integer(_) | Value::Number(_) => lua.coerce_string(value.clone()),
        _ => Ok(None),
    }
}

/// A C cast of a double to a 64-bit signed integer on x86-64 (what Lua 5.1's
/// `lua_tointeger` does): truncation towards zero, and the "integer indefinite" value
/// `i64::MIN` for NaN and for anything out of range.
pub(crate) fn c_double_to_i64(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// A C cast of a double to a 64-bit unsigned integer as GCC compiles it for x86-64: below 2^63
/// (or NaN) the signed conversion, else the signed conversion of `n - 2^63` with the top bit
/// flipped. Negative numbers wrap, huge ones come out as 0.
pub(crate) fn c_double_to_u64(n: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n >= TWO_63 {
        (c_double_to_i64(n - TWO_63) as u64) ^ (1 << 63)
    } else {
        c_double_to_i64(n) as u64
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the libraries' unit tests: a state with the libraries installed, and
    //! running a chunk named as Redis names script bodies, so error locations read the same.

    use mlua::Lua;

    /// A fresh Lua state with the four libraries installed, and a `pcall` that hands the
    /// script an error raised by Rust code as its text (as the engine must, so that scripts
    /// see strings as in Redis; mlua alone gives them a userdata). Only the error value goes
    /// through Rust: results must stay in Lua, or mlua's number conversion turns -0 and tiny
    /// numbers into 0 (see the module documentation).
    pub(crate) fn state() -> Lua {
        let lua = Lua::new();
        super::install(&lua).expect("install libraries");
        let raw_pcall: mlua::Function = lua.globals().get("pcall").expect("pcall");
        let error_to_text = lua
            .create_function(|lua, error: mlua::Value| match error {
                mlua::Value::Error(err) => Ok(mlua::Value::String(
                    lua.create_string(super::error_text(&err))?,
                )),
                other => Ok(other),
            })
            .expect("pcall wrapper");
        let pcall: mlua::Function = lua
            .load(
                "local raw, error_to_text = ...
                 local function finish(ok, ...)
                   if ok then return true, ... end
                   return false, error_to_text((...))
                 end
                 return function(...) return finish(raw(...)) end",
            )
            .call((raw_pcall, error_to_text))
            .expect("pcall wrapper");
        lua.globals().set("pcall", pcall).expect("set pcall");
        lua
    }

    /// Runs `code` as the body of a script (chunk name `@user_script`, as Redis names it) and
    /// returns its results, or the error text a script would see.
    pub(crate) fn run(lua: &Lua, code: &str) -> Result<mlua::MultiValue, String> {
        lua.load(code)
            .set_name("@user_script")
            .call::<mlua::MultiValue>(())
            .map_err(|e| super::error_text(&e))
    }

    /// Runs `code` and returns its single result converted to a string with Lua's `tostring`
    /// semantics for strings and numbers (the way the tests compare with redis-cli output),
    /// or `ERR:<text>` for an error.
    pub(crate) fn eval(lua: &Lua, code: &str) -> String {
        match run(lua, code) {
            Ok(values) => match values.into_iter().next() {
                Some(mlua::Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                Some(mlua::Value::Error(e)) => format!("ERR:{}", super::error_text(&e)),
                Some(mlua::Value::Boolean(b)) => b.to_string(),
                Some(mlua::Value::Nil) => "nil".to_string(),
                Some(other) => lua
                    .coerce_string(other.clone())
                    .ok()
                    .flatten()
                    .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned())
                    .unwrap_or_else(|| format!("{other:?}")),
                None => "<none>".to_string(),
            },
            Err(text) => format!("ERR:{text}"),
        }
    }
}
