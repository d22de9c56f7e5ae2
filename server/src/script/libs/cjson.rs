//! `cjson`: JSON encoding and decoding for scripts (the lua-cjson 2.1.0 API Redis ships).
//!
//! Encoding: `nil` and `cjson.null` become `null`; numbers are written with `%.14g` (the
//! precision is configurable); strings are escaped (`"`, `\`, `/`, control characters and DEL;
//! other bytes pass through untouched); a table whose keys are all positive integers is an
//! array (holes become `null`) unless it is "excessively sparse", an empty table is `{}`, any
//! other table is an object whose keys must be strings or numbers, written in `next` order.
//!
//! Decoding: objects and arrays become tables, `null` becomes `cjson.null`, numbers are read as
//! C's `strtod` reads them (so hex, `inf` and `nan` are accepted unless
//! `decode_invalid_numbers(false)`), `\u` escapes (surrogate pairs included) become UTF-8.
//! Errors name what was expected, what was found and where, in lua-cjson's words.
//!
//! Nesting is limited both ways (`encode_max_depth`, `decode_max_depth`, default 1000). Both
//! directions walk iteratively, keeping the tables in progress in a Lua table (`NestStack`),
//! so neither Rust's stack nor mlua's handles grow with the depth; on top of the configurable
//! limits a hard bound of [`HARD_MAX_DEPTH`] applies.

use std::sync::{Arc, Mutex};

use mlua::{Lua, MultiValue, Table, Value};

use super::{exact_number, raise, type_name, Args, NestStack};

/// The deepest nesting either direction accepts whatever the configuration says; reported with
/// the same errors as the configured limits.
pub const HARD_MAX_DEPTH: usize = 100_000;

/// Largest text `encode` produces (Redis's largest string). Only reachable by asking for
/// arrays with huge holes (`encode_sparse_array(false, 0)` and a key like 2^31-1), where Redis
/// itself runs out of memory and dies. (Unit tests use 1 MiB to exercise the bound quickly.)
pub const MAX_ENCODED_LEN: usize = if cfg!(test) { 1 << 20 } else { 512 << 20 };

/// One instance's settings (`cjson` itself and each `cjson.new()` have their own).
#[derive(Clone, Copy, Debug)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    number_precision: usize,
    keep_buffer: bool,
    encode_invalid_numbers: InvalidNumbers,
    decode_invalid_numbers: bool,
}

/// What `encode` does with NaN and infinities.
#[derive(Clone, Copy, Debug, PartialEq)]
enum InvalidNumbers {
    Refuse,
    Allow,
    AsNull,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            number_precision: 14,
            keep_buffer: true,
            encode_invalid_numbers: InvalidNumbers::Refuse,
            decode_invalid_numbers: true,
        }
    }
}

type SharedConfig = Arc<Mutex<Config>>;

fn read(config: &SharedConfig) -> Config {
    *config
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn update(config: &SharedConfig, change: impl FnOnce(&mut Config)) {
    change(
        &mut config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
}

/// Adds the integer setting `name` (`encode_max_depth`, ...) to `table`: called with an
/// argument in `min..=max` it changes the setting; it always returns the current value.
#[allow(clippy::too_many_arguments)]
fn integer_setting(
    lua: &Lua,
    table: &Table,
    config: &SharedConfig,
    name: &str,
    min: i64,
    max: i64,
    get: fn(&Config) -> i64,
    set: fn(&mut Config, i64),
) -> mlua::Result<()> {
    let cfg = config.clone();
    table.raw_set(
        name,
        lua.create_function(move |lua, args: MultiValue| {
            let args = Args::new(lua, args);
            check_arg_count(&args, 1)?;
            if let Some(value) = integer_option(&args, 1, min, max)? {
                update(&cfg, |c| set(c, value));
            }
            Ok(get(&read(&cfg)))
        })?,
    )
}

/// Builds a `cjson` table with default settings (also what `cjson.new()` returns).
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let config: SharedConfig = Arc::new(Mutex::new(Config::default()));
    let table = lua.create_table()?;
    table.raw_set("_NAME", "cjson")?;
    table.raw_set("_VERSION", "2.1.0")?;
    table.raw_set("null", Value::NULL)?;
    table.raw_set(
        "new",
        lua.create_function(|lua, _: MultiValue| create(lua))?,
    )?;

    let cfg = config.clone();
    table.raw_set(
        "encode",
        lua.create_function(move |lua, args: MultiValue| {
            let args = Args::new(lua, args);
            if args.len() != 1 {
                return Err(args.arg_error(1, "expected 1 argument"));
            }
            let value = args.get(1).cloned().unwrap_or(Value::Nil);
            let json = encode(lua, &read(&cfg), value)?;
            lua.create_string(&json)
        })?,
    )?;
    let cfg = config.clone();
    table.raw_set(
        "decode",
        lua.create_function(move |lua, args: MultiValue| {
            let args = Args::new(lua, args);
            if args.len() != 1 {
                return Err(args.arg_error(1, "expected 1 argument"));
            }
            let text = args.bytes(1)?;
            decode(lua, &read(&cfg), &text.as_bytes())
        })?,
    )?;

    let cfg = config.clone();
    table.raw_set(
        "encode_sparse_array",
        lua.create_function(move |lua, args: MultiValue| {
            let args = Args::new(lua, args);
            check_arg_count(&args, 3)?;
            let convert = enum_option(&args, 1, &["off", "on"])?;
            let ratio = integer_option(&args, 2, 0, i32::MAX as i64)?;
            let safe = integer_option(&args, 3, 0, i32::MAX as i64)?;
            update(&cfg, |c| {
                if let Some(convert) = convert {
                    c.sparse_convert = convert == 1;
                }
                if let Some(ratio) = ratio {
                    c.sparse_ratio = ratio;
                }
                if let Some(safe) = safe {
                    c.sparse_safe = safe;
                }
            });
            let c = read(&cfg);
            Ok((c.sparse_convert, c.sparse_ratio, c.sparse_safe))
        })?,
    )?;
    integer_setting(
        lua,
        &table,
        &config,
        "encode_max_depth",
        1,
        i32::MAX as i64,
        |c| c.encode_max_depth,
        |c, depth| c.encode_max_depth = depth,
    )?;
    integer_setting(
        lua,
        &table,
        &config,
        "decode_max_depth",
        1,
        i32::MAX as i64,
        |c| c.decode_max_depth,
        |c, depth| c.decode_max_depth = depth,
    )?;
    integer_setting(
        lua,
        &table,
        &config,
        "encode_number_precision",
        1,
        14,
        |c| c.number_precision as i64,
        |c, precision| c.number_precision = precision as usize,
    )?;
    let cfg = config.clone();
    table.raw_set(
        "encode_keep_buffer",
        lua.create_function(move |lua, args: MultiValue| {
            let args = Args::new(lua, args);
            check_arg_count(&args, 1)?;
            if let Some(keep) = enum_option(&args, 1, &["off", "on"])? {
                update(&cfg, |c| c.keep_buffer = keep == 1);
            }
            Ok(read(&cfg).keep_buffer)
        })?,
    )?;
    let cfg = config.clone();
    table.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: MultiValue| {
            let args = Args::new(lua, args);
            check_arg_count(&args, 1)?;
            if let Some(choice) = enum_option(&args, 1, &["off", "on", "null"])? {
                let setting = match choice {
                    0 => InvalidNumbers::Refuse,
                    1 => InvalidNumbers::Allow,
                    _ => InvalidNumbers::AsNull,
                };
                update(&cfg, |c| c.encode_invalid_numbers = setting);
            }
            Ok(match read(&cfg).encode_invalid_numbers {
                InvalidNumbers::Refuse => Value::Boolean(false),
                InvalidNumbers::Allow => Value::Boolean(true),
                InvalidNumbers::AsNull => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    let cfg = config;
    table.raw_set(
        "decode_invalid_numbers",
        lua.create_function(move |lua, args: MultiValue| {
            let args = Args::new(lua, args);
            check_arg_count(&args, 1)?;
            if let Some(allow) = enum_option(&args, 1, &["off", "on"])? {
                update(&cfg, |c| c.decode_invalid_numbers = allow == 1);
            }
            Ok(read(&cfg).decode_invalid_numbers)
        })?,
    )?;
    Ok(table)
}

/// Settings functions take at most `max` arguments.
fn check_arg_count(args: &Args, max: usize) -> mlua::Result<()> {
    if args.len() > max {
        return Err(args.arg_error(max + 1, "found too many arguments"));
    }
    Ok(())
}

/// A switch argument: absent/nil is "no change"; `true`/`false` pick options 1/0; a string picks
/// the option of that name.
fn enum_option(args: &Args, n: usize, options: &[&str]) -> mlua::Result<Option<usize>> {
    match args.get(n) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(usize::from(*b))),
        Some(value) => {
            let text = match super::to_lua_string(args.lua, value)? {
                Some(s) => s.to_string_lossy(),
                None => type_name(value).to_string(),
            };
            match options.iter().position(|option| *option == text) {
                Some(index) => Ok(Some(index)),
                None => Err(args.arg_error(n, format_args!("invalid option '{text}'"))),
            }
        }
    }
}

/// A numeric setting within `min..=max`; absent/nil is "no change". lua-cjson reports a value
/// out of range as argument #1 whichever argument it was; kept, as clients may match on it.
fn integer_option(args: &Args, n: usize, min: i64, max: i64) -> mlua::Result<Option<i64>> {
    if args.is_none_or_nil(n) {
        return Ok(None);
    }
    let value = args.integer(n)?;
    if value < min || value > max {
        return Err(args.arg_error(1, format_args!("expected integer between {min} and {max}")));
    }
    Ok(Some(value))
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Writes `n` as C's `printf("%.<precision>g")` does.
fn format_g(out: &mut Vec<u8>, n: f64, precision: usize) {
    let precision = precision.max(1);
    if n == 0.0 {
        out.extend_from_slice(if n.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // Scientific form rounded to `precision` significant digits gives the decimal exponent.
    let sci = format!("{:.*e}", precision - 1, n);
    let Some((mantissa, exponent)) = sci.split_once('e') else {
        out.extend_from_slice(sci.as_bytes());
        return;
    };
    let exponent: i64 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i64 {
        out.extend_from_slice(strip_fraction_zeros(mantissa).as_bytes());
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        let digits = exponent.unsigned_abs();
        if digits < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(digits.to_string().as_bytes());
    } else {
        let decimals = (precision as i64 - 1 - exponent).max(0) as usize;
        let fixed = format!("{n:.decimals$}");
        out.extend_from_slice(strip_fraction_zeros(&fixed).as_bytes());
    }
}

/// `%g` drops trailing zeros of the fraction, and the point when nothing is left after it.
fn strip_fraction_zeros(text: &str) -> &str {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.')
}

/// Appends a number, applying the invalid-number policy to NaN and infinities.
fn encode_number(lua: &Lua, config: &Config, out: &mut Vec<u8>, n: f64) -> mlua::Result<()> {
    if n.is_finite() {
        format_g(out, n, config.number_precision);
        return Ok(());
    }
    match config.encode_invalid_numbers {
        InvalidNumbers::Refuse => Err(raise(
            lua,
            "Cannot serialise number: must not be NaN or Inf",
        )),
        InvalidNumbers::AsNull => {
            out.extend_from_slice(b"null");
            Ok(())
        }
        InvalidNumbers::Allow => {
            let text: &[u8] = if n.is_nan() {
                b"nan"
            } else if n > 0.0 {
                b"inf"
            } else {
                b"-inf"
            };
            out.extend_from_slice(text);
            Ok(())
        }
    }
}

/// Appends `bytes` as a JSON string.
fn encode_string(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0x0f)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// How to find an object member again once the key pass is over.
enum MemberKey {
    Text(Vec<u8>),
    Number(f64),
    /// A key JSON cannot have (the Lua type's name); an error once the member's turn comes,
    /// so earlier members fail first, as in lua-cjson.
    Invalid(&'static str),
}

/// A table being written.
enum Open {
    Array { next: i64, len: i64 },
    Object { keys: Vec<MemberKey>, next: usize },
}

/// What the key pass found out about a table.
enum Shape {
    /// Keys 1..=len (with holes allowed), written as an array.
    Array(i64),
    Object,
}

/// Decides array or object the way lua-cjson (as built into Redis) does: all keys integers
/// in 1..=2^31-1, and not too sparse, makes an array; an empty table is an object.
fn table_shape(lua: &Lua, config: &Config, table: &Table) -> mlua::Result<Shape> {
    let mut max: f64 = 0.0;
    let mut items: f64 = 0.0;
    let mut all_indices = true;
    table
        .for_each(|key: Value, _: Value| {
            let index = match key {
                Value::Integer(i) => Some(i as f64),
                Value::Number(n) => Some(n),
                _ => None,
            };
            match index {
                // Indices go up to C's INT_MAX; larger integer keys make an object.
                Some(k) if k >= 1.0 && k.floor() == k && k <= i32::MAX as f64 => {
                    max = max.max(k);
                    items += 1.0;
                    Ok(())
                }
                _ => {
                    all_indices = false;
                    // Stop early: lua_next order no longer matters for the decision.
                    Err(mlua::Error::RuntimeError(String::new()))
                }
            }
        })
        .or_else(|err| if all_indices { Err(err) } else { Ok(()) })?;
    if !all_indices || max == 0.0 {
        return Ok(Shape::Object);
    }
    let ratio = config.sparse_ratio as f64;
    if config.sparse_ratio > 0 && max > items * ratio && max > config.sparse_safe as f64 {
        if config.sparse_convert {
            return Ok(Shape::Object);
        }
        return Err(raise(
            lua,
            "Cannot serialise table: excessively sparse array",
        ));
    }
    Ok(Shape::Array(max as i64))
}

/// The keys of an object in `next` order.
fn object_keys(table: &Table) -> mlua::Result<Vec<MemberKey>> {
    let mut keys = Vec::new();
    table.for_each(|key: Value, _: Value| {
        keys.push(match key {
            Value::String(s) => MemberKey::Text(s.as_bytes().to_vec()),
            Value::Integer(i) => MemberKey::Number(i as f64),
            Value::Number(n) => MemberKey::Number(n),
            other => MemberKey::Invalid(type_name(&other)),
        });
        Ok(())
    })?;
    Ok(keys)
}

/// `cjson.encode(value)`.
fn encode(lua: &Lua, config: &Config, value: Value) -> mlua::Result<Vec<u8>> {
    let max_depth = (config.encode_max_depth.max(1) as usize).min(HARD_MAX_DEPTH);
    let mut out = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut nest = NestStack::new(lua)?;
    // The table of the innermost open container (also on `nest`).
    let mut current: Option<Table> = None;
    let top_number = match value {
        Value::Integer(i) => Some(i as f64),
        Value::Number(n) => Some(n),
        _ => None,
    };
    let mut pending = Some((value, top_number));
    loop {
        if let Some((value, number)) = pending.take() {
            match value {
                Value::Nil => out.extend_from_slice(b"null"),
                Value::Boolean(true) => out.extend_from_slice(b"true"),
                Value::Boolean(false) => out.extend_from_slice(b"false"),
                Value::Integer(_) | Value::Number(_) => {
                    encode_number(lua, config, &mut out, number.unwrap_or(0.0))?
                }
                Value::String(s) => encode_string(&mut out, &s.as_bytes()),
                Value::LightUserData(ud) if ud.0.is_null() => out.extend_from_slice(b"null"),
                Value::Table(table) => {
                    let depth = open.len() + 1;
                    if depth > max_depth {
                        return Err(raise(
                            lua,
                            format_args!("Cannot serialise, excessive nesting ({depth})"),
                        ));
                    }
                    match table_shape(lua, config, &table)? {
                        Shape::Array(len) => {
                            out.push(b'[');
                            open.push(Open::Array { next: 1, len });
                        }
                        Shape::Object => {
                            let keys = object_keys(&table)?;
                            out.push(b'{');
                            open.push(Open::Object { keys, next: 0 });
                        }
                    }
                    nest.push(Value::Table(table.clone()))?;
                    current = Some(table);
                }
                other => {
                    return Err(raise(
                        lua,
                        format_args!("Cannot serialise {}: type not supported", type_name(&other)),
                    ))
                }
            }
        }
        if out.len() > MAX_ENCODED_LEN {
            return Err(raise(
                lua,
                format_args!("Cannot serialise, output longer than {MAX_ENCODED_LEN} bytes"),
            ));
        }
        // Find the next member of the innermost open container, closing finished ones.
        let Some(top) = open.last_mut() else {
            return Ok(out);
        };
        let Some(table) = current.clone() else {
            return Ok(out);
        };
        match top {
            Open::Array { next, len } => {
                if *next > *len {
                    out.push(b']');
                } else {
                    if *next > 1 {
                        out.push(b',');
                    }
                    let key = Value::Integer(*next);
                    *next += 1;
                    let value: Value = table.raw_get(key.clone())?;
                    let number = exact_number(&table, &key, &value)?;
                    pending = Some((value, number));
                    continue;
                }
            }
            Open::Object { keys, next } => {
                if let Some(key) = keys.get(*next) {
                    if *next > 0 {
                        out.push(b',');
                    }
                    *next += 1;
                    let lookup = match key {
                        MemberKey::Text(text) => {
                            encode_string(&mut out, text);
                            Value::String(lua.create_string(text)?)
                        }
                        MemberKey::Number(n) => {
                            out.push(b'"');
                            encode_number(lua, config, &mut out, *n)?;
                            out.push(b'"');
                            Value::Number(*n)
                        }
                        MemberKey::Invalid(type_name) => {
                            return Err(raise(
                                lua,
                                format_args!(
                                    "Cannot serialise {type_name}: table key must be a number or string"
                                ),
                            ))
                        }
                    };
                    out.push(b':');
                    let value: Value = table.raw_get(lookup.clone())?;
                    let number = exact_number(&table, &lookup, &value)?;
                    pending = Some((value, number));
                    continue;
                }
                out.push(b'}');
            }
        }
        // The innermost container is complete.
        open.pop();
        nest.pop()?;
        current = match nest.top()? {
            Value::Table(t) => Some(t),
            _ => None,
        };
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A lexical token of JSON text.
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    /// A lexical error: its description ("invalid token", ...).
    Error(&'static str),
}

impl Token {
    /// How error messages name what was found.
    fn describe(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(what) => what,
        }
    }
}

struct Lexer<'d> {
    data: &'d [u8],
    pos: usize,
    allow_invalid_numbers: bool,
}

impl Lexer<'_> {
    fn byte(&self, at: usize) -> u8 {
        self.data.get(at).copied().unwrap_or(0)
    }

    /// The next token and the offset it starts at (for an error token: where the error is).
    fn next(&mut self) -> (Token, usize) {
        while matches!(self.byte(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let start = self.pos;
        let single = |token| (token, start);
        match self.byte(start) {
            // The end of the text, or a NUL byte, ends the input.
            0 => single(Token::End),
            b'{' => {
                self.pos += 1;
                single(Token::ObjBegin)
            }
            b'}' => {
                self.pos += 1;
                single(Token::ObjEnd)
            }
            b'[' => {
                self.pos += 1;
                single(Token::ArrBegin)
            }
            b']' => {
                self.pos += 1;
                single(Token::ArrEnd)
            }
            b':' => {
                self.pos += 1;
                single(Token::Colon)
            }
            b',' => {
                self.pos += 1;
                single(Token::Comma)
            }
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                if !self.allow_invalid_numbers && self.is_invalid_number() {
                    return single(Token::Error("invalid number"));
                }
                self.number()
            }
            _ if self.allow_invalid_numbers && self.is_invalid_number() => self.number(),
            b't' if self.data[start..].starts_with(b"true") => {
                self.pos += 4;
                single(Token::Boolean(true))
            }
            b'f' if self.data[start..].starts_with(b"false") => {
                self.pos += 5;
                single(Token::Boolean(false))
            }
            b'n' if self.data[start..].starts_with(b"null") => {
                self.pos += 4;
                single(Token::Null)
            }
            _ => single(Token::Error("invalid token")),
        }
    }

    /// Numbers JSON does not allow but `strtod` reads: a leading `+`, hex, leading zeros,
    /// infinities and NaN.
    fn is_invalid_number(&self) -> bool {
        let mut at = self.pos;
        match self.byte(at) {
            b'+' => return true,
            b'-' => at += 1,
            _ => {}
        }
        match self.byte(at) {
            b'0' => {
                let next = self.byte(at + 1);
                next == b'x' || next == b'X' || next.is_ascii_digit()
            }
            c if c <= b'9' => false,
            _ => {
                let rest = self.data.get(at..at + 3).unwrap_or(&[]);
                rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"nan")
            }
        }
    }

    fn number(&mut self) -> (Token, usize) {
        let start = self.pos;
        match parse_c_number(&self.data[start..]) {
            Some((value, used)) => {
                self.pos += used;
                (Token::Number(value), start)
            }
            None => (Token::Error("invalid number"), start),
        }
    }

    fn string(&mut self) -> (Token, usize) {
        let start = self.pos;
        let mut text = Vec::new();
        let mut at = start + 1;
        loop {
            match self.byte(at) {
                0 => return (Token::Error("unexpected end of string"), at),
                b'"' => break,
                b'\\' => {
                    let escape_at = at;
                    let decoded = match self.byte(at + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => match self.unicode_escape(at) {
                            Some((code, used)) => {
                                let mut buf = [0u8; 4];
                                text.extend_from_slice(code.encode_utf8(&mut buf).as_bytes());
                                at += used;
                                continue;
                            }
                            None => {
                                return (Token::Error("invalid unicode escape code"), escape_at)
                            }
                        },
                        _ => return (Token::Error("invalid escape code"), escape_at),
                    };
                    text.push(decoded);
                    at += 2;
                }
                other => {
                    text.push(other);
                    at += 1;
                }
            }
        }
        self.pos = at + 1;
        (Token::Str(text), start)
    }

    /// The 4 hex digits of `\uXXXX` at `at + 2`.
    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.data.get(at + 2..at + 6)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    }

    /// A `\u` escape at `at` (a surrogate pair takes two): the character and the bytes used.
    fn unicode_escape(&self, at: usize) -> Option<(char, usize)> {
        let first = self.hex4(at)?;
        match first {
            0xd800..=0xdbff => {
                if self.byte(at + 6) != b'\\' || self.byte(at + 7) != b'u' {
                    return None;
                }
                let second = self.hex4(at + 6)?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return None;
                }
                let code = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
                Some((char::from_u32(code)?, 12))
            }
            0xdc00..=0xdfff => None,
            _ => Some((char::from_u32(first)?, 6)),
        }
    }
}

/// Reads a number at the start of `text` as C's `strtod` does in the C locale: optional sign,
/// then decimal (with fraction and exponent), hex (`0x`, with fraction and `p` exponent),
/// `inf`/`infinity` or `nan`/`nan(chars)`. Returns the value and the bytes used, or `None`
/// when no number starts here.
fn parse_c_number(text: &[u8]) -> Option<(f64, usize)> {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    let mut i = 0;
    let negative = match at(0) {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let signed = |v: f64| if negative { -v } else { v };
    let rest = &text[i.min(text.len())..];
    if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"inf") {
        let used = if rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"infinity") {
            8
        } else {
            3
        };
        return Some((signed(f64::INFINITY), i + used));
    }
    if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"nan") {
        let mut used = 3;
        if rest.get(3) == Some(&b'(') {
            let inner = rest[4..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            if rest.get(4 + inner) == Some(&b')') {
                used = 4 + inner + 1;
            }
        }
        return Some((signed(f64::NAN), i + used));
    }
    if at(i) == b'0' && (at(i + 1) == b'x' || at(i + 1) == b'X') {
        if let Some((value, used)) = parse_hex_float(&text[i + 2..]) {
            return Some((signed(value), i + 2 + used));
        }
        // "0x" without hex digits: only the 0 is a number.
        return Some((signed(0.0), i + 1));
    }
    // Decimal: digits, optional fraction, at least one digit overall, optional exponent.
    let mut j = i;
    let int_digits = text[j..].iter().take_while(|b| b.is_ascii_digit()).count();
    j += int_digits;
    let mut frac_digits = 0;
    if at(j) == b'.' {
        frac_digits = text[j + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if int_digits + frac_digits > 0 {
            j += 1 + frac_digits;
        }
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if at(j) == b'e' || at(j) == b'E' {
        let mut k = j + 1;
        if at(k) == b'+' || at(k) == b'-' {
            k += 1;
        }
        let exp_digits = text[k..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp_digits > 0 {
            j = k + exp_digits;
        }
    }
    let literal = std::str::from_utf8(&text[i..j]).ok()?;
    // Rust's parser wants a digit on both sides of the point.
    let mut normalised = String::with_capacity(literal.len() + 2);
    if literal.starts_with('.') {
        normalised.push('0');
    }
    for (index, c) in literal.char_indices() {
        normalised.push(c);
        if c == '.' && !literal[index + 1..].starts_with(|d: char| d.is_ascii_digit()) {
            normalised.push('0');
        }
    }
    let value: f64 = normalised.parse().ok()?;
    Some((signed(value), j))
}

/// The hex digits (with optional fraction and binary exponent) after `0x`; `None` without any
/// hex digit.
fn parse_hex_float(text: &[u8]) -> Option<(f64, usize)> {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut digits = 0;
    let mut i = 0;
    let mut seen_point = false;
    loop {
        let c = at(i);
        if c == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        digits += 1;
        if mantissa >> 60 == 0 {
            mantissa = (mantissa << 4) | u64::from(d);
            if seen_point {
                exponent -= 4;
            }
        } else if !seen_point {
            // Too many digits to keep: count their weight (the dropped bits only round).
            exponent += 4;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if at(i) == b'p' || at(i) == b'P' {
        let mut k = i + 1;
        let negative = at(k) == b'-';
        if at(k) == b'+' || at(k) == b'-' {
            k += 1;
        }
        let exp_digits = text[k..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp_digits > 0 {
            let mut e: i64 = 0;
            for &b in &text[k..k + exp_digits] {
                e = (e * 10 + i64::from(b - b'0')).min(100_000);
            }
            exponent += if negative { -e } else { e };
            i = k + exp_digits;
        }
    }
    let mut value = mantissa as f64;
    // Scale in steps so intermediate powers neither overflow nor underflow early.
    let mut remaining = exponent.clamp(-5000, 5000);
    while remaining != 0 && value != 0.0 && value.is_finite() {
        let step = remaining.clamp(-1000, 1000);
        value *= 2f64.powi(step as i32);
        remaining -= step;
    }
    Some((value, i))
}

/// A container being filled while decoding (its table is the decoder's `current` one, or on
/// its stack of ancestors).
enum Filling {
    Array {
        next: i64,
    },
    /// The member's key is on the decoder's key stack.
    Object,
}

/// `cjson.decode(text)`.
fn decode(lua: &Lua, config: &Config, data: &[u8]) -> mlua::Result<Value> {
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(raise(lua, "JSON parser does not support UTF-16 or UTF-32"));
    }
    let max_depth = (config.decode_max_depth.max(1) as usize).min(HARD_MAX_DEPTH);
    let mut lexer = Lexer {
        data,
        pos: 0,
        allow_invalid_numbers: config.decode_invalid_numbers,
    };
    let expected = |what: &str, token: &Token, at: usize| {
        raise(
            lua,
            format_args!(
                "Expected {what} but found {} at character {}",
                token.describe(),
                at + 1
            ),
        )
    };
    let mut filling: Vec<Filling> = Vec::new();
    // The innermost open container, its ancestors, and the keys of the members being read.
    let mut current: Option<Table> = None;
    let mut ancestors = NestStack::new(lua)?;
    let mut keys = NestStack::new(lua)?;
    let mut token = lexer.next();
    loop {
        // `token` starts a value.
        let (kind, at) = token;
        let mut value = match kind {
            Token::Str(text) => Value::String(lua.create_string(&text)?),
            Token::Number(n) => Value::Number(n),
            Token::Boolean(b) => Value::Boolean(b),
            Token::Null => Value::NULL,
            Token::ObjBegin | Token::ArrBegin => {
                let depth = filling.len() + 1;
                if depth > max_depth {
                    return Err(raise(
                        lua,
                        format_args!(
                            "Found too many nested data structures ({depth}) at character {}",
                            at + 1
                        ),
                    ));
                }
                let table = lua.create_table()?;
                let (next, next_at) = lexer.next();
                let is_array = matches!(kind, Token::ArrBegin);
                let empty = if is_array {
                    matches!(next, Token::ArrEnd)
                } else {
                    matches!(next, Token::ObjEnd)
                };
                if empty {
                    Value::Table(table)
                } else {
                    if let Some(parent) = current.replace(table) {
                        ancestors.push(Value::Table(parent))?;
                    }
                    if is_array {
                        filling.push(Filling::Array { next: 1 });
                        token = (next, next_at);
                    } else {
                        filling.push(Filling::Object);
                        token = object_member_start(lua, &mut lexer, &mut keys, (next, next_at))?;
                    }
                    continue;
                }
            }
            other => return Err(expected("value", &other, at)),
        };
        // Store the value in its container, closing every container it completes.
        loop {
            let (Some(container), Some(table)) = (filling.last_mut(), current.as_ref()) else {
                let (next, next_at) = lexer.next();
                if !matches!(next, Token::End) {
                    return Err(expected("the end", &next, next_at));
                }
                return Ok(value);
            };
            match container {
                Filling::Array { next } => {
                    table.raw_set(*next, value)?;
                    *next += 1;
                    let (after, after_at) = lexer.next();
                    match after {
                        Token::Comma => {
                            token = lexer.next();
                            break;
                        }
                        Token::ArrEnd => {}
                        other => return Err(expected("comma or array end", &other, after_at)),
                    }
                }
                Filling::Object => {
                    table.raw_set(keys.pop()?, value)?;
                    let (after, after_at) = lexer.next();
                    match after {
                        Token::Comma => {
                            let next = lexer.next();
                            token = object_member_start(lua, &mut lexer, &mut keys, next)?;
                            break;
                        }
                        Token::ObjEnd => {}
                        other => return Err(expected("comma or object end", &other, after_at)),
                    }
                }
            }
            // The container is complete: it is the value to store one level up.
            filling.pop();
            value = current.take().map_or(Value::Nil, Value::Table);
            current = match ancestors.pop()? {
                Value::Table(parent) => Some(parent),
                _ => None,
            };
        }
    }
}

/// Reads `"key" :` of an object member starting at `token`, leaves the key on `keys` and
/// returns the token that starts the member's value.
fn object_member_start(
    lua: &Lua,
    lexer: &mut Lexer,
    keys: &mut NestStack,
    token: (Token, usize),
) -> mlua::Result<(Token, usize)> {
    let expected = |what: &str, token: &Token, at: usize| {
        raise(
            lua,
            format_args!(
                "Expected {what} but found {} at character {}",
                token.describe(),
                at + 1
            ),
        )
    };
    let (key, key_at) = token;
    let Token::Str(key) = key else {
        return Err(expected("object key string", &key, key_at));
    };
    keys.push(Value::String(lua.create_string(&key)?))?;
    let (colon, colon_at) = lexer.next();
    if !matches!(colon, Token::Colon) {
        return Err(expected("colon", &colon, colon_at));
    }
    Ok(lexer.next())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, state};
    use proptest::prelude::*;

    /// `cjson.encode(<expr>)` and what Redis 7.0.15 returned (`ERR:` + the error text).
    const ENCODE: &[(&str, &str)] = &[
        ("{1,2,{a=1}}", "[1,2,{\"a\":1}]"),
        ("{}", "{}"),
        ("0.1", "0.1"),
        ("1e100", "1e+100"),
        ("1", "1"),
        ("3.14159265358979", "3.1415926535898"),
        ("123456789012345678", "1.2345678901235e+17"),
        ("2^53", "9.007199254741e+15"),
        ("2^63", "9.2233720368548e+18"),
        ("1e15", "1e+15"),
        ("1e14", "1e+14"),
        ("1e-5", "1e-05"),
        ("0.0001", "0.0001"),
        ("1e21", "1e+21"),
        ("123456.789", "123456.789"),
        ("-1.5", "-1.5"),
        ("{-0.0}", "[-0]"),
        ("'a/b'", "\"a\\/b\""),
        ("'\\0\\1\\31\\127'", "\"\\u0000\\u0001\\u001f\\u007f\""),
        ("'\"\\\\\\b\\f\\n\\r\\t'", "\"\\\"\\\\\\b\\f\\n\\r\\t\""),
        ("'h\\195\\169llo'", "\"h\u{e9}llo\""),
        ("true", "true"),
        ("false", "false"),
        ("nil", "null"),
        ("cjson.null", "null"),
        ("{cjson.null}", "[null]"),
        ("{[1]=1,[3]=3}", "[1,null,3]"),
        ("{[1]=1,[2]=2,[4]=4}", "[1,2,null,4]"),
        ("{[2]=1}", "[null,1]"),
        ("{a=1,[1]=2}", "{\"a\":1,\"1\":2}"),
        ("{[1.5]=1}", "{\"1.5\":1}"),
        ("{[-1]=1}", "{\"-1\":1}"),
        ("{[0]=1}", "{\"0\":1}"),
        ("{x={}}", "{\"x\":{}}"),
        ("{{}}", "[{}]"),
        ("{[1e20]=1}", "{\"1e+20\":1}"),
        ("{[2^31]=1}", "{\"2147483648\":1}"),
        ("{[2^53]=1}", "{\"9.007199254741e+15\":1}"),
        (
            "{[2^31-1]=1}",
            "ERR:user_script:1: Cannot serialise table: excessively sparse array",
        ),
        ("{1,nil,3}", "[1,null,3]"),
        ("{[1]=1, [2.5]=2}", "{\"1\":1,\"2.5\":2}"),
        (
            "{1,2,3,x=cjson.null}",
            "{\"1\":1,\"2\":2,\"3\":3,\"x\":null}",
        ),
        ("{[''] = 1}", "{\"\":1}"),
        (
            "{0.1, 1/3, 2/3, 100, 1e-7, 123456789012, 1234567890123456, -1e-10, 5e-324, \
             1.7976931348623157e308, 0.000123456789012345}",
            "[0.1,0.33333333333333,0.66666666666667,100,1e-07,123456789012,\
             1.2345678901235e+15,-1e-10,4.9406564584125e-324,1.7976931348623e+308,\
             0.00012345678901234]",
        ),
        (
            "1/0",
            "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf",
        ),
        (
            "-1/0",
            "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf",
        ),
        (
            "0/0",
            "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf",
        ),
        (
            "{n=1/0}",
            "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf",
        ),
        (
            "{[1]=1,[11]=1}",
            "ERR:user_script:1: Cannot serialise table: excessively sparse array",
        ),
        (
            "{[20]=1}",
            "ERR:user_script:1: Cannot serialise table: excessively sparse array",
        ),
        (
            "{[true]=true,['']=0/0}",
            "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf",
        ),
        (
            "{[true]=1}",
            "ERR:user_script:1: Cannot serialise boolean: table key must be a number or string",
        ),
        (
            "function() end",
            "ERR:user_script:1: Cannot serialise function: type not supported",
        ),
        (
            "{f=function() end}",
            "ERR:user_script:1: Cannot serialise function: type not supported",
        ),
        (
            "(function() local t={} t[1]=t return t end)()",
            "ERR:user_script:1: Cannot serialise, excessive nesting (1001)",
        ),
        (
            "(function() local t={} t.a=t return t end)()",
            "ERR:user_script:1: Cannot serialise, excessive nesting (1001)",
        ),
    ];

    /// `pcall(cjson.decode, <input>)` and what Redis 7.0.15 gave: the error text, or
    /// `cjson.encode({value})` of the result.
    const DECODE: &[(&str, &str)] = &[
        (
            "'{'",
            "Expected object key string but found T_END at character 2",
        ),
        ("''", "Expected value but found T_END at character 1"),
        ("' '", "Expected value but found T_END at character 2"),
        (
            "'x'",
            "Expected value but found invalid token at character 1",
        ),
        (
            "'[1,2'",
            "Expected comma or array end but found T_END at character 5",
        ),
        (
            "'[1,]'",
            "Expected value but found T_ARR_END at character 4",
        ),
        (
            "'{\"a\":}'",
            "Expected value but found T_OBJ_END at character 6",
        ),
        (
            "'{\"a\" 1}'",
            "Expected colon but found T_NUMBER at character 6",
        ),
        (
            "'{1:2}'",
            "Expected object key string but found T_NUMBER at character 2",
        ),
        (
            "'\"abc'",
            "Expected value but found unexpected end of string at character 5",
        ),
        (
            "'\"\\\\x\"'",
            "Expected value but found invalid escape code at character 2",
        ),
        (
            "'\"\\\\u12\"'",
            "Expected value but found invalid unicode escape code at character 2",
        ),
        (
            "'\"\\\\ud800\"'",
            "Expected value but found invalid unicode escape code at character 2",
        ),
        (
            "'\"\\\\ud800\\\\u0041\"'",
            "Expected value but found invalid unicode escape code at character 2",
        ),
        (
            "'\"\\\\udc00\"'",
            "Expected value but found invalid unicode escape code at character 2",
        ),
        (
            "'nul'",
            "Expected value but found invalid token at character 1",
        ),
        (
            "'truex'",
            "Expected the end but found invalid token at character 5",
        ),
        (
            "'1 2'",
            "Expected the end but found T_NUMBER at character 3",
        ),
        (
            "'[1] x'",
            "Expected the end but found invalid token at character 5",
        ),
        ("'01'", "[1]"),
        (
            "'-'",
            "Expected value but found invalid number at character 1",
        ),
        ("'1.'", "[1]"),
        (
            "'.5'",
            "Expected value but found invalid token at character 1",
        ),
        (
            "'1e'",
            "Expected the end but found invalid token at character 2",
        ),
        ("'0x10'", "[16]"),
        ("'+1'", "[1]"),
        ("'\"a\\tb\"'", "[\"a\\tb\"]"),
        ("'\"\\1\"'", "[\"\\u0001\"]"),
        (
            "'[1,2'..string.rep(' ',3)",
            "Expected comma or array end but found T_END at character 8",
        ),
        (
            "'{\"a\":1,}'",
            "Expected object key string but found T_OBJ_END at character 8",
        ),
        (
            "'{\"a\":1 \"b\":2}'",
            "Expected comma or object end but found T_STRING at character 8",
        ),
        (
            "'[1 2]'",
            "Expected comma or array end but found T_NUMBER at character 4",
        ),
        ("'\\0['", "JSON parser does not support UTF-16 or UTF-32"),
        ("'[\\0'", "JSON parser does not support UTF-16 or UTF-32"),
        ("'[1,\\0]'", "Expected value but found T_END at character 4"),
        (
            "'\"a\\0b\"'",
            "Expected value but found unexpected end of string at character 3",
        ),
        (
            "'\"ab\\\\x\"'",
            "Expected value but found invalid escape code at character 4",
        ),
        (
            "'\"ab\\\\'",
            "Expected value but found invalid escape code at character 4",
        ),
        (
            "'\"\\\\u00'",
            "Expected value but found invalid unicode escape code at character 2",
        ),
        (
            "'{\"a\\\\x\":1}'",
            "Expected object key string but found invalid escape code at character 4",
        ),
        (
            "'[1,\"ab'",
            "Expected value but found unexpected end of string at character 7",
        ),
        (
            "'\\t\\r\\n[1]\\f'",
            "Expected the end but found invalid token at character 7",
        ),
        (
            "'\"\\\\u0041\\\\u00\"'",
            "Expected value but found invalid unicode escape code at character 8",
        ),
        ("'{\"a\":1,\"a\":2}'", "[{\"a\":2}]"),
        ("'[]'", "[{}]"),
        ("'[null]'", "[[null]]"),
        ("'{\"a\":null}'", "[{\"a\":null}]"),
        (
            "'\"\\\\/\\\\b\\\\f\\\\n\\\\r\\\\t\\\\\"\\\\\\\\\"'",
            "[\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"]",
        ),
        (
            "string.rep('[',1001)..string.rep(']',1001)",
            "user_script:1: Found too many nested data structures (1001) at character 1001",
        ),
        (
            "string.rep('{\"a\":',1001)..'1'..string.rep('}',1001)",
            "user_script:1: Found too many nested data structures (1001) at character 5001",
        ),
        (
            "string.rep('[',100000)",
            "user_script:1: Found too many nested data structures (1001) at character 1001",
        ),
    ];

    /// Numbers as `cjson.decode` reads them, with decoding of invalid numbers on (the default)
    /// and off; what Redis 7.0.15 returned (`tostring` of the number, or the error text).
    const NUMBERS: &[(&str, &str, &str)] = &[
        (
            "Inf",
            "inf",
            "Expected value but found invalid token at character 1",
        ),
        (
            "INF",
            "inf",
            "Expected value but found invalid token at character 1",
        ),
        (
            "infinity",
            "inf",
            "Expected value but found invalid token at character 1",
        ),
        (
            "Infinity",
            "inf",
            "Expected value but found invalid token at character 1",
        ),
        (
            "infinit",
            "Expected the end but found invalid token at character 4",
            "Expected value but found invalid token at character 1",
        ),
        (
            "-Infinity",
            "-inf",
            "Expected value but found invalid number at character 1",
        ),
        (
            "-inf",
            "-inf",
            "Expected value but found invalid number at character 1",
        ),
        (
            "+inf",
            "inf",
            "Expected value but found invalid token at character 1",
        ),
        (
            "-nan",
            "-nan",
            "Expected value but found invalid number at character 1",
        ),
        (
            "nan(12)",
            "nan",
            "Expected value but found invalid token at character 1",
        ),
        (
            "NAN",
            "nan",
            "Expected value but found invalid token at character 1",
        ),
        (
            "0x1p3",
            "8",
            "Expected value but found invalid number at character 1",
        ),
        (
            "0X1A",
            "26",
            "Expected value but found invalid number at character 1",
        ),
        (
            "-0x10",
            "-16",
            "Expected value but found invalid number at character 1",
        ),
        (
            "0x",
            "Expected the end but found invalid token at character 2",
            "Expected value but found invalid number at character 1",
        ),
        ("1e5", "100000", "100000"),
        ("1E+5", "100000", "100000"),
        ("1.5e-3", "0.0015", "0.0015"),
        ("-0", "-0", "-0"),
        ("-0.0", "-0", "-0"),
        ("1e400", "inf", "inf"),
        ("-1e400", "-inf", "-inf"),
        ("1e-400", "0", "0"),
        (
            "123456789012345678901234567890",
            "1.2345678901235e+29",
            "1.2345678901235e+29",
        ),
        ("0.1e1", "1", "1"),
        (
            "00.5",
            "0.5",
            "Expected value but found invalid number at character 1",
        ),
        (
            "1.2.3",
            "Expected the end but found invalid token at character 4",
            "Expected the end but found invalid token at character 4",
        ),
        (
            "--1",
            "Expected value but found invalid number at character 1",
            "Expected value but found invalid number at character 1",
        ),
        (
            "+-1",
            "Expected value but found invalid number at character 1",
            "Expected value but found invalid token at character 1",
        ),
        (
            "+",
            "Expected value but found invalid number at character 1",
            "Expected value but found invalid token at character 1",
        ),
        (
            "0x1.8",
            "1.5",
            "Expected value but found invalid number at character 1",
        ),
        ("-.5", "-0.5", "-0.5"),
        (
            "false1",
            "Expected the end but found T_NUMBER at character 6",
            "Expected the end but found T_NUMBER at character 6",
        ),
        (
            "1_000",
            "Expected the end but found invalid token at character 2",
            "Expected the end but found invalid token at character 2",
        ),
    ];

    #[test]
    fn encode_matches_redis() {
        let lua = state();
        for (expr, expected) in ENCODE {
            let got = eval(&lua, &format!("return cjson.encode({expr})"));
            assert_eq!(&got, expected, "{expr}");
        }
    }

    #[test]
    fn decode_matches_redis() {
        let lua = state();
        for (input, expected) in DECODE {
            let code = format!(
                "local ok, e = pcall(function() return cjson.decode({input}) end) \
                 if ok then return cjson.encode({{e}}) end return e"
            );
            let got = eval(&lua, &code);
            // Errors raised inside the pcall'd function carry its location; strip it for the
            // table entries recorded through `pcall(cjson.decode, ...)`.
            let got = if expected.starts_with("user_script") {
                got
            } else {
                got.trim_start_matches("user_script:1: ").to_string()
            };
            assert_eq!(&got, expected, "{input}");
        }
    }

    #[test]
    fn numbers_decode_as_in_redis() {
        let lua = state();
        for (text, lenient, strict) in NUMBERS {
            let code = format!(
                "local c = cjson.new() local ok, e = pcall(c.decode, '{text}') \
                 if ok then return tostring(e) end return e"
            );
            assert_eq!(&eval(&lua, &code), lenient, "{text}");
            let code = format!(
                "local c = cjson.new() c.decode_invalid_numbers(false) \
                 local ok, e = pcall(c.decode, '{text}') if ok then return tostring(e) end return e"
            );
            assert_eq!(&eval(&lua, &code), strict, "{text} (strict)");
        }
    }

    #[test]
    fn unicode_escapes_decode_to_utf8() {
        let lua = state();
        let hex = |input: &str| {
            eval(
                &lua,
                &format!(
                    "local e = cjson.decode('{input}') local h = {{}} \
                     for i = 1, #e do h[i] = string.format('%02x', e:byte(i)) end \
                     return table.concat(h, ' ')"
                ),
            )
        };
        // Redis 7.0.15's bytes for each.
        assert_eq!(hex(r#""\\u00e9""#), "c3 a9");
        assert_eq!(hex(r#""\\u0000x""#), "00 78");
        assert_eq!(hex(r#""\\ud83d\\ude00""#), "f0 9f 98 80");
        assert_eq!(hex(r#""\\uD83D\\uDE00""#), "f0 9f 98 80");
        assert_eq!(hex(r#""\\u20ac""#), "e2 82 ac");
        assert_eq!(hex(r#""\\u007f""#), "7f");
        assert_eq!(hex(r#""\\uDBFF\\uDFFF""#), "f4 8f bf bf");
        assert_eq!(hex("\"\\195\\169\""), "c3 a9");
    }

    #[test]
    fn library_fields_and_null_match_redis() {
        let lua = state();
        assert_eq!(eval(&lua, "return type(cjson.null)"), "userdata");
        assert_eq!(eval(&lua, "return tostring(cjson.null)"), "userdata: (nil)");
        assert_eq!(eval(&lua, "return cjson._VERSION"), "2.1.0");
        assert_eq!(eval(&lua, "return cjson._NAME"), "cjson");
        assert_eq!(
            eval(&lua, "return rawequal(cjson.null, cjson.new().null)"),
            "true"
        );
        assert_eq!(
            eval(&lua, "return rawequal(cjson.decode('null'), cjson.null)"),
            "true"
        );
        assert_eq!(
            eval(
                &lua,
                "local t = {} for k, v in pairs(cjson.new()) do t[#t+1] = k .. ':' .. type(v) end \
                 table.sort(t) return table.concat(t, ' ')"
            ),
            "_NAME:string _VERSION:string decode:function decode_invalid_numbers:function \
             decode_max_depth:function encode:function encode_invalid_numbers:function \
             encode_keep_buffer:function encode_max_depth:function \
             encode_number_precision:function encode_sparse_array:function new:function \
             null:userdata"
        );
        // Decoded tables have no metatable; arrays have a length.
        assert_eq!(
            eval(
                &lua,
                "local e = cjson.decode('[1,2]') return #e == 2 and getmetatable(e) == nil"
            ),
            "true"
        );
    }

    #[test]
    fn settings_match_redis() {
        let lua = state();
        let cases: &[(&str, &str)] = &[
            (
                "cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision(), \
                 cjson.encode_keep_buffer(), cjson.encode_invalid_numbers(), cjson.decode_invalid_numbers()",
                "true 1000 1000 14 true false true",
            ),
            ("cjson.encode_sparse_array()", "true false 2 10"),
            ("c.encode_keep_buffer('on')", "true true"),
            (
                "c.encode_keep_buffer(1)",
                "false user_script:1: bad argument #1 to 'encode_keep_buffer' (invalid option '1')",
            ),
            ("c.encode_keep_buffer(false)", "true false"),
            ("c.encode_invalid_numbers('null')", "true null"),
            ("c.encode_invalid_numbers('on')", "true true"),
            ("c.encode_invalid_numbers('off')", "true false"),
            (
                "c.encode_invalid_numbers('x')",
                "false user_script:1: bad argument #1 to 'encode_invalid_numbers' (invalid option 'x')",
            ),
            ("c.decode_invalid_numbers('on')", "true true"),
            (
                "c.decode_invalid_numbers('null')",
                "false user_script:1: bad argument #1 to 'decode_invalid_numbers' (invalid option 'null')",
            ),
            (
                "c.encode_max_depth(0)",
                "false user_script:1: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)",
            ),
            (
                "c.encode_max_depth(2^31)",
                "false user_script:1: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)",
            ),
            ("c.encode_max_depth(2^31-1)", "true 2147483647"),
            (
                "c.decode_max_depth(0)",
                "false user_script:1: bad argument #1 to 'decode_max_depth' (expected integer between 1 and 2147483647)",
            ),
            (
                "c.encode_sparse_array(true, -1)",
                "false user_script:1: bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)",
            ),
            (
                "c.encode_sparse_array(true, 0, -1)",
                "false user_script:1: bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)",
            ),
            ("c.encode_sparse_array('on', 3, 0)", "true true 3 0"),
            (
                "c.encode_sparse_array(1)",
                "false user_script:1: bad argument #1 to 'encode_sparse_array' (invalid option '1')",
            ),
            (
                "c.encode_max_depth(5, 6)",
                "false user_script:1: bad argument #2 to 'encode_max_depth' (found too many arguments)",
            ),
            ("c.encode_number_precision(1.5)", "true 1"),
            ("c.encode_number_precision('3')", "true 3"),
            (
                "c.encode_number_precision(15)",
                "false user_script:1: bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)",
            ),
            (
                "c.encode_number_precision('x')",
                "false user_script:1: bad argument #1 to 'encode_number_precision' (number expected, got string)",
            ),
        ];
        for (call, expected) in cases {
            let code = format!(
                "local c = cjson.new() local r = {{pcall(function() return {call} end)}} \
                 for i = 1, #r do r[i] = tostring(r[i]) end return table.concat(r, ' ')"
            );
            assert_eq!(&eval(&lua, &code), expected, "{call}");
        }
        // Through pcall directly the function has no name, as in Redis.
        assert_eq!(
            eval(
                &lua,
                "local ok, e = pcall(cjson.new().encode_number_precision, 0) return e"
            ),
            "bad argument #1 to '?' (expected integer between 1 and 14)"
        );
    }

    #[test]
    fn settings_change_encoding_as_in_redis() {
        let lua = state();
        let cases: &[(&str, &str)] = &[
            (
                "c.encode_invalid_numbers(true) return c.encode({1/0,-1/0,0/0, -(0/0), [5]=1})",
                "[inf,-inf,nan,nan,1]",
            ),
            (
                "c.encode_invalid_numbers('null') return c.encode({1/0,-1/0,0/0})",
                "[null,null,null]",
            ),
            (
                "c.encode_sparse_array(true) return c.encode({[1]=1,[20]=2})",
                "{\"1\":1,\"20\":2}",
            ),
            (
                "c.encode_sparse_array(false, 0) return c.encode({[1]=1,[20]=2})",
                "[1,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,2]",
            ),
            (
                "c.encode_sparse_array(false, 1, 0) return c.encode({[1]=1,[3]=2})",
                "ERR:user_script:1: Cannot serialise table: excessively sparse array",
            ),
            (
                "c.encode_sparse_array(false, 1, 0) return c.encode({[1]=1,[2]=2})",
                "[1,2]",
            ),
            (
                "c.encode_sparse_array(true, 1, 0) return c.encode({[1]=1,[3]=2})",
                "{\"1\":1,\"3\":2}",
            ),
            (
                "c.encode_number_precision(3) return c.encode({1234.5678, 0.00012345, 100, 1e3})",
                "[1.23e+03,0.000123,100,1e+03]",
            ),
            (
                "c.encode_number_precision(1) return c.encode({0.15, 0.25, 9.5, 95, 0.001})",
                "[0.1,0.2,1e+01,1e+02,0.001]",
            ),
            ("c.encode_max_depth(2) return c.encode({{1}})", "[[1]]"),
            (
                "c.encode_max_depth(2) return c.encode({{{1}}})",
                "ERR:user_script:1: Cannot serialise, excessive nesting (3)",
            ),
            (
                "c.decode_max_depth(2) return c.decode('[[[1]]]')",
                "ERR:user_script:1: Found too many nested data structures (3) at character 3",
            ),
            // Each instance has its own settings.
            (
                "c.encode_number_precision(3) return cjson.encode(1234.5678)",
                "1234.5678",
            ),
        ];
        for (body, expected) in cases {
            let code = format!("local c = cjson.new() {body}");
            assert_eq!(&eval(&lua, &code), expected, "{body}");
        }
    }

    #[test]
    fn argument_errors_match_redis() {
        let lua = state();
        let cases: &[(&str, &str)] = &[
            (
                "cjson.encode()",
                "ERR:user_script:1: bad argument #1 to 'encode' (expected 1 argument)",
            ),
            (
                "cjson.encode(1,2)",
                "ERR:user_script:1: bad argument #1 to 'encode' (expected 1 argument)",
            ),
            (
                "cjson.decode()",
                "ERR:user_script:1: bad argument #1 to 'decode' (expected 1 argument)",
            ),
            ("cjson.decode(12)", "12"),
            (
                "cjson.decode({})",
                "ERR:user_script:1: bad argument #1 to 'decode' (string expected, got table)",
            ),
            (
                "cjson.decode('1', 2)",
                "ERR:user_script:1: bad argument #1 to 'decode' (expected 1 argument)",
            ),
            (
                "cjson.decode('{')",
                "ERR:user_script:1: Expected object key string but found T_END at character 2",
            ),
        ];
        for (call, expected) in cases {
            assert_eq!(&eval(&lua, &format!("return {call}")), expected, "{call}");
        }
        // pcall calling encode itself: no location, as in Redis.
        assert_eq!(
            eval(
                &lua,
                "local ok, e = pcall(cjson.encode, function() end) return e"
            ),
            "Cannot serialise function: type not supported"
        );
    }

    #[test]
    fn key_order_follows_lua_next_as_in_redis() {
        let lua = state();
        assert_eq!(
            eval(
                &lua,
                "return cjson.encode({a=1,b=2,c=3,d=4,e=5,foo='bar',[1]=1,[2]=2})"
            ),
            "{\"a\":1,\"2\":2,\"c\":3,\"b\":2,\"e\":5,\"d\":4,\"1\":1,\"foo\":\"bar\"}"
        );
        assert_eq!(
            eval(
                &lua,
                "return cjson.encode({name='x', list={1,2,{}}, nested={a={b={c={}}}}})"
            ),
            "{\"nested\":{\"a\":{\"b\":{\"c\":{}}}},\"name\":\"x\",\"list\":[1,2,{}]}"
        );
        assert_eq!(
            eval(
                &lua,
                "return cjson.encode(cjson.decode('{\"b\":1,\"a\":2,\"c\":[1,2,3],\"d\":{\"x\":null}}'))"
            ),
            "{\"a\":2,\"d\":{\"x\":null},\"c\":[1,2,3],\"b\":1}"
        );
    }

    #[test]
    fn depth_limits_match_redis() {
        let lua = state();
        assert_eq!(
            eval(
                &lua,
                "return #cjson.decode(string.rep('[',1000)..string.rep(']',1000))"
            ),
            "1"
        );
        assert_eq!(
            eval(
                &lua,
                "local t={} local c=t for i=1,999 do c[1]={} c=c[1] end return #cjson.encode(t)"
            ),
            "2000"
        );
        assert_eq!(
            eval(
                &lua,
                "local t={} local c=t for i=1,1000 do c[1]={} c=c[1] end return #cjson.encode(t)"
            ),
            "ERR:user_script:1: Cannot serialise, excessive nesting (1001)"
        );
        // Raised limits stop at the hard bound instead of exhausting memory or the stack.
        assert_eq!(
            eval(
                &lua,
                "local c = cjson.new() c.encode_max_depth(2^31-1) \
                 local t={} t[1]=t return c.encode(t)"
            ),
            format!(
                "ERR:user_script:1: Cannot serialise, excessive nesting ({})",
                super::HARD_MAX_DEPTH + 1
            )
        );
        assert_eq!(
            eval(
                &lua,
                "local c = cjson.new() c.decode_max_depth(2^31-1) \
                 return c.decode(string.rep('[', 200000))"
            ),
            format!(
                "ERR:user_script:1: Found too many nested data structures ({}) at character {}",
                super::HARD_MAX_DEPTH + 1,
                super::HARD_MAX_DEPTH + 1
            )
        );
        // Deep but allowed input decodes without recursion.
        assert_eq!(
            eval(
                &lua,
                "local c = cjson.new() c.decode_max_depth(50000) \
                 local t = c.decode(string.rep('[', 50000) .. string.rep(']', 50000)) \
                 local d = 0 while type(t) == 'table' do d = d + 1 t = t[1] end return d"
            ),
            "50000"
        );
    }

    #[test]
    fn huge_holes_stop_at_the_output_bound() {
        let lua = state();
        // Redis 7.0.15 runs out of memory on this; we stop at MAX_ENCODED_LEN.
        assert_eq!(
            eval(
                &lua,
                "local c = cjson.new() c.encode_sparse_array(false, 0) return c.encode({[2^31-1]=1})"
            ),
            format!(
                "ERR:user_script:1: Cannot serialise, output longer than {} bytes",
                super::MAX_ENCODED_LEN
            )
        );
    }

    #[test]
    fn big_flat_values_round_trip() {
        let lua = state();
        // Far more strings than mlua has handle slots: nothing may hold them all at once.
        assert_eq!(
            eval(
                &lua,
                "local l, t = {}, {} for i = 1, 20000 do l[i] = 's' .. i t['k' .. i] = 'v' .. i end \
                 local d = cjson.decode(cjson.encode({list = l, map = t})) \
                 return #d.list .. ' ' .. d.map.k20000"
            ),
            "20000 v20000"
        );
    }

    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("cjson.null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            (-1_000_000_000_000i64..1_000_000_000_000).prop_map(|i| i.to_string()),
            (-1e6f64..1e6).prop_map(|x| format!("{x:.6}")),
            prop::collection::vec(any::<u8>(), 0..16).prop_map(|bytes| {
                let escaped: String = bytes.iter().map(|b| format!("\\{b}")).collect();
                format!("'{escaped}'")
            }),
            "\\PC{0,8}".prop_map(|s| {
                let escaped: String = s.bytes().map(|b| format!("\\{b}")).collect();
                format!("'{escaped}'")
            }),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..6)
                    .prop_map(|items| format!("{{{}}}", items.join(","))),
                prop::collection::vec(("[a-z]{1,6}", inner), 1..6).prop_map(|pairs| {
                    let fields: Vec<String> = pairs
                        .into_iter()
                        .map(|(k, v)| format!("[\"{k}\"]={v}"))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn decode_of_encode_gives_equal_values(v in json_value()) {
            let lua = state();
            let code = format!(r#"
                local function same(x, y)
                  if type(x) ~= type(y) then return false end
                  if type(x) == 'number' then
                    return x == y or math.abs(x - y) <= 1e-13 * math.max(math.abs(x), math.abs(y))
                  end
                  if type(x) ~= 'table' then return x == y end
                  for k, v in pairs(x) do if not same(v, y[k]) then return false end end
                  for k in pairs(y) do if x[k] == nil then return false end end
                  return true
                end
                local v = {v}
                local json = cjson.encode(v)
                return same(v, cjson.decode(json))
            "#);
            prop_assert_eq!(eval(&lua, &code), "true");
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let lua = state();
            let escaped: String = bytes.iter().map(|b| format!("\\{b}")).collect();
            let code = format!(
                "local ok, e = pcall(cjson.decode, '{escaped}') return ok or type(e) == 'string'"
            );
            prop_assert_eq!(eval(&lua, &code), "true");
        }
    }
}
