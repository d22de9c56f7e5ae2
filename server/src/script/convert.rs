//! Conversions between Lua values and RESP frames, as Redis 7 does them.
//!
//! Script → client ([`lua_to_frame`]): numbers are truncated to integers, `true` is `1` and
//! `false` null (or booleans after `redis.setresp(3)`), tables are arrays up to their first
//! nil unless they carry one of the special fields (`err`, `ok`, `double`, `big_number`,
//! `map`, `set`, `verbatim_string`). Command reply → script ([`frame_to_lua`]): the reverse
//! mapping, with null as `false` in RESP2 and `nil` in RESP3. Both directions stop at
//! [`MAX_DEPTH`] levels of nesting so hostile values cannot exhaust the stack.

use bytes::Bytes;
use mlua::{Lua, Table, Value};
use protocol::Frame;

/// The deepest nesting converted. Past it a script's reply carries the error element
/// `ERR reached lua stack limit` where Redis gives the same (Redis reaches it at about 8000
/// levels, bounded by Lua's C stack; we stop earlier so the server's recursive encoder and
/// drop stay well inside a thread's stack).
pub const MAX_DEPTH: usize = 1000;

/// The error element that replaces values nested deeper than [`MAX_DEPTH`].
const DEPTH_ERROR: &str = "ERR reached lua stack limit";

/// Converts a script's return value (or a value inside it) to the reply frame. `resp3` is
/// the protocol the script selected with `redis.setresp` (it decides how booleans come out).
///
/// Works with an explicit stack rather than recursion, so deep tables cost heap, not stack.
pub fn lua_to_frame(value: &Value, resp3: bool) -> Frame {
    lua_to_frame_bounded(value, resp3, MAX_ELEMENTS)
}

/// The most values one reply may hold. A table referenced many times is converted each
/// time, so a few kilobytes of Lua (`t = {t, t}` thirty times) could otherwise ask for
/// billions of frames; past this the script gets [`TOO_LARGE`] instead.
pub const MAX_ELEMENTS: usize = 1 << 25;

/// The reply to a script whose reply would exceed [`MAX_ELEMENTS`] values.
pub const TOO_LARGE: &str = "ERR script reply is too large";

fn lua_to_frame_bounded(value: &Value, resp3: bool, max_elements: usize) -> Frame {
    let mut stack: Vec<Pending> = Vec::new();
    let mut next = convert_one(value, resp3, &mut stack);
    let mut elements = 1usize;
    loop {
        if elements > max_elements {
            return Frame::Error(Bytes::from_static(TOO_LARGE.as_bytes()));
        }
        // `next` is a finished frame: hand it to the innermost open container, or return it.
        let frame = match next {
            Step::Done(frame) => frame,
            Step::Opened => match stack.last_mut().and_then(Pending::next_child) {
                Some(child) => {
                    elements += 1;
                    next = convert_one(&child, resp3, &mut stack);
                    continue;
                }
                None => match stack.pop() {
                    Some(done) => done.finish(),
                    None => return Frame::Null,
                },
            },
        };
        let Some(parent) = stack.last_mut() else {
            return frame;
        };
        parent.done.push(frame);
        next = Step::Opened;
    }
}

/// The result of looking at one value: a finished frame, or a container pushed on the stack.
enum Step {
    Done(Frame),
    Opened,
}

/// What kind of reply an open container becomes.
#[derive(Clone, Copy)]
enum Shape {
    Array,
    Map,
    Set,
}

/// A table being converted: its child values (map keys and values alternate) and the frames
/// of those already converted.
struct Pending {
    shape: Shape,
    children: std::vec::IntoIter<Value>,
    done: Vec<Frame>,
}

impl Pending {
    fn next_child(&mut self) -> Option<Value> {
        self.children.next()
    }

    fn finish(self) -> Frame {
        match self.shape {
            Shape::Array => Frame::Array(self.done),
            Shape::Set => Frame::Set(self.done),
            Shape::Map => {
                let mut pairs = Vec::with_capacity(self.done.len() / 2);
                let mut frames = self.done.into_iter();
                while let (Some(k), Some(v)) = (frames.next(), frames.next()) {
                    pairs.push((k, v));
                }
                Frame::Map(pairs)
            }
        }
    }
}

fn convert_one(value: &Value, resp3: bool, stack: &mut Vec<Pending>) -> Step {
    Step::Done(match value {
        Value::Nil => Frame::Null,
        Value::Boolean(b) if resp3 => Frame::Boolean(*b),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) => Frame::Null,
        Value::Integer(i) => Frame::Integer(*i),
        Value::Number(n) => Frame::Integer(truncate(*n)),
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(_) if stack.len() >= MAX_DEPTH => {
            Frame::Error(Bytes::from_static(DEPTH_ERROR.as_bytes()))
        }
        Value::Table(t) => match open_table(t) {
            Ok(frame) => frame,
            Err(pending) => {
                stack.push(pending);
                return Step::Opened;
            }
        },
        // Functions, userdata, threads and the like have no RESP form: Redis sends null.
        _ => Frame::Null,
    })
}

/// Converts a Lua number to an integer reply as Redis's C cast does on x86-64: toward zero,
/// and `i64::MIN` for NaN and anything out of range.
pub fn truncate(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// A table's reply: a frame when it is a scalar special table (`err`, `ok`, `double`, ...),
/// else the container to fill from its children.
fn open_table(t: &Table) -> Result<Frame, Pending> {
    let container = |shape, children: Vec<Value>| Pending {
        shape,
        done: Vec::with_capacity(children.len()),
        children: children.into_iter(),
    };
    // Special fields are read raw (metatables are ignored), in Redis's order.
    if let Ok(Value::String(s)) = t.raw_get::<Value>("err") {
        return Ok(Frame::Error(single_line(&s.as_bytes())));
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        return Ok(Frame::Simple(single_line(&s.as_bytes())));
    }
    match t.raw_get::<Value>("double") {
        Ok(Value::Number(n)) => return Ok(Frame::Double(n)),
        Ok(Value::Integer(i)) => return Ok(Frame::Double(i as f64)),
        _ => {}
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        return Ok(Frame::BigNumber(single_line(&s.as_bytes())));
    }
    if let Ok(Value::Table(map)) = t.raw_get::<Value>("map") {
        let mut children = Vec::new();
        for (k, v) in map.pairs::<Value, Value>().flatten() {
            children.push(k);
            children.push(v);
        }
        return Err(container(Shape::Map, children));
    }
    if let Ok(Value::Table(set)) = t.raw_get::<Value>("set") {
        let children = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        return Err(container(Shape::Set, children));
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(format)), Ok(Value::String(text))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            // Redis takes exactly three bytes of the format; a shorter one shows as spaces.
            let mut tag = [b' '; 3];
            for (slot, byte) in tag.iter_mut().zip(format.as_bytes().iter()) {
                *slot = *byte;
            }
            return Ok(Frame::Verbatim {
                format: tag,
                text: Bytes::copy_from_slice(&text.as_bytes()),
            });
        }
    }
    let mut children = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => children.push(v),
        }
    }
    Err(container(Shape::Array, children))
}

/// Status and error texts must stay on one line: Redis turns CR and LF into spaces.
fn single_line(text: &[u8]) -> Bytes {
    text.iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect::<Vec<u8>>()
        .into()
}

/// Converts a command's reply to the Lua value `redis.call` returns. `resp3` is the protocol
/// the script selected; an error reply becomes `{err=...}` (the caller decides whether to
/// raise it).
pub fn frame_to_lua(lua: &Lua, frame: &Frame, resp3: bool) -> mlua::Result<Value> {
    from_frame(lua, frame, resp3, 0)
}

fn from_frame(lua: &Lua, frame: &Frame, resp3: bool, depth: usize) -> mlua::Result<Value> {
    if depth >= MAX_DEPTH {
        return field_table(lua, "err", Value::String(lua.create_string(DEPTH_ERROR)?));
    }
    let string =
        |bytes: &[u8]| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(bytes)?)) };
    Ok(match frame {
        Frame::Simple(s) => field_table(lua, "ok", string(s)?)?,
        Frame::Error(e) => field_table(lua, "err", string(e)?)?,
        Frame::Integer(i) => Value::Number(*i as f64),
        Frame::Bulk(b) => string(b)?,
        Frame::Null if resp3 => Value::Nil,
        Frame::Null => Value::Boolean(false),
        Frame::Array(items) | Frame::Push(items) => sequence(lua, items, resp3, depth)?,
        Frame::Set(items) if resp3 => {
            let set = lua.create_table_with_capacity(0, items.len())?;
            for item in items {
                set.raw_set(from_frame(lua, item, resp3, depth + 1)?, true)?;
            }
            field_table(lua, "set", Value::Table(set))?
        }
        Frame::Set(items) => sequence(lua, items, resp3, depth)?,
        Frame::Map(pairs) if resp3 => {
            let map = lua.create_table_with_capacity(0, pairs.len())?;
            for (k, v) in pairs {
                map.raw_set(
                    from_frame(lua, k, resp3, depth + 1)?,
                    from_frame(lua, v, resp3, depth + 1)?,
                )?;
            }
            field_table(lua, "map", Value::Table(map))?
        }
        Frame::Map(pairs) => {
            let flat = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                flat.raw_set(2 * i + 1, from_frame(lua, k, resp3, depth + 1)?)?;
                flat.raw_set(2 * i + 2, from_frame(lua, v, resp3, depth + 1)?)?;
            }
            Value::Table(flat)
        }
        Frame::Double(d) if resp3 => field_table(lua, "double", Value::Number(*d))?,
        Frame::Double(d) => string(resp2_double(*d).as_bytes())?,
        Frame::Boolean(b) if resp3 => Value::Boolean(*b),
        Frame::Boolean(b) => Value::Number(f64::from(u8::from(*b))),
        Frame::BigNumber(n) if resp3 => field_table(lua, "big_number", string(n)?)?,
        Frame::BigNumber(n) => string(n)?,
        Frame::Verbatim { format, text } if resp3 => {
            let inner = lua.create_table_with_capacity(0, 2)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            inner.raw_set("string", lua.create_string(text)?)?;
            field_table(lua, "verbatim_string", Value::Table(inner))?
        }
        Frame::Verbatim { text, .. } => string(text)?,
    })
}

/// An array reply as a Lua sequence (a RESP3 null element leaves a hole, as in Redis).
fn sequence(lua: &Lua, items: &[Frame], resp3: bool, depth: usize) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_set(i + 1, from_frame(lua, item, resp3, depth + 1)?)?;
    }
    Ok(Value::Table(table))
}

/// `{name = value}`: how errors, statuses and RESP3 types reach a script.
fn field_table(lua: &Lua, name: &str, value: Value) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(0, 1)?;
    table.raw_set(name, value)?;
    Ok(Value::Table(table))
}

/// A double as RESP2 carries it (a bulk string): the text the protocol crate writes.
fn resp2_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, code: &str) -> Value {
        lua.load(code).eval::<Value>().unwrap()
    }

    fn reply(code: &str, resp3: bool) -> Frame {
        let lua = Lua::new();
        lua_to_frame(&eval(&lua, code), resp3)
    }

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn err(s: &str) -> Frame {
        Frame::Error(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn numbers_truncate_like_redis() {
        // Redis 7.0.15: `return 3.99` -> :3, `-3.99` -> :-3, `1e30`, `2^63`, `0/0` -> i64::MIN.
        assert_eq!(reply("return 3.99", false), Frame::Integer(3));
        assert_eq!(reply("return -3.99", false), Frame::Integer(-3));
        assert_eq!(reply("return 1e30", false), Frame::Integer(i64::MIN));
        assert_eq!(reply("return 2^63", false), Frame::Integer(i64::MIN));
        assert_eq!(reply("return 0/0", false), Frame::Integer(i64::MIN));
        assert_eq!(reply("return 2^62", false), Frame::Integer(1 << 62));
        assert_eq!(
            reply("return {1.5, -2.5, 0.5}", false),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Integer(-2),
                Frame::Integer(0)
            ])
        );
    }

    #[test]
    fn booleans_and_nil_follow_the_scripts_protocol() {
        // RESP2 (default): true -> :1, false -> $-1; after setresp(3): #t / #f.
        assert_eq!(reply("return true", false), Frame::Integer(1));
        assert_eq!(reply("return false", false), Frame::Null);
        assert_eq!(reply("return true", true), Frame::Boolean(true));
        assert_eq!(reply("return false", true), Frame::Boolean(false));
        assert_eq!(reply("return nil", false), Frame::Null);
    }

    #[test]
    fn arrays_stop_at_the_first_nil() {
        // Redis: `return {1,2,3.5,"x",nil,4}` -> *4 :1 :2 :3 $x
        assert_eq!(
            reply("return {1,2,3.5,'x',nil,4}", false),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Integer(2),
                Frame::Integer(3),
                bulk("x")
            ])
        );
        assert_eq!(reply("return {a=1}", false), Frame::Array(vec![]));
        assert_eq!(
            reply("return {{err='x'}, {ok='y'}}", false),
            Frame::Array(vec![err("x"), Frame::Simple(Bytes::from_static(b"y"))])
        );
    }

    #[test]
    fn special_tables() {
        assert_eq!(reply("return {err='My Error'}", false), err("My Error"));
        assert_eq!(reply("return {err='-x'}", false), err("-x"));
        assert_eq!(reply("return {err='x\\r\\ny'}", false), err("x  y"));
        assert_eq!(
            reply("return {ok='a\\r\\nb'}", false),
            Frame::Simple(Bytes::from_static(b"a  b"))
        );
        // Non-string err/ok, non-number double, non-string big_number: plain (empty) arrays.
        for code in [
            "return {err=3}",
            "return {err={}}",
            "return {ok=5}",
            "return {double='abc'}",
            "return {big_number=12}",
            "return {verbatim_string={string='hi'}}",
        ] {
            assert_eq!(reply(code, false), Frame::Array(vec![]), "{code}");
        }
        assert_eq!(reply("return {double=2.5}", false), Frame::Double(2.5));
        assert_eq!(
            reply("return {big_number='123'}", false),
            Frame::BigNumber(Bytes::from_static(b"123"))
        );
        assert_eq!(
            reply("return {map={a=1}}", false),
            Frame::Map(vec![(bulk("a"), Frame::Integer(1))])
        );
        assert_eq!(
            reply("return {set={a=true}}", false),
            Frame::Set(vec![bulk("a")])
        );
        assert_eq!(
            reply("return {verbatim_string={format='txt',string='hi'}}", true),
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"hi")
            }
        );
        // Redis 7.0.15 with format 'tx': `=6\r\ntx :hi`.
        assert_eq!(
            reply("return {verbatim_string={format='tx',string='hi'}}", true),
            Frame::Verbatim {
                format: *b"tx ",
                text: Bytes::from_static(b"hi")
            }
        );
        // Metatables are ignored: Redis returns *0 for this.
        assert_eq!(
            reply(
                "return setmetatable({}, {__index=function(t,k) if k == 'err' then return 'E x' end end})",
                false
            ),
            Frame::Array(vec![])
        );
    }

    #[test]
    fn map_values_follow_the_scripts_protocol() {
        // Redis (RESP2 script): {map={[true]=false}} -> key :1, value null.
        assert_eq!(
            reply("return {map={[true]=false}}", false),
            Frame::Map(vec![(Frame::Integer(1), Frame::Null)])
        );
    }

    #[test]
    fn shared_tables_cannot_blow_up_a_reply() {
        let lua = Lua::new();
        // 2^40 leaves from a few hundred bytes of Lua.
        let value = eval(
            &lua,
            "local t = {} for i = 1, 40 do t = {t, t} end return t",
        );
        assert_eq!(lua_to_frame_bounded(&value, false, 1000), err(TOO_LARGE));
        // Within the bound, sharing is fine: 8 leaves, 23 values (tables and numbers) in all.
        let value = eval(
            &lua,
            "local t = {1} for i = 1, 3 do t = {t, t} end return t",
        );
        assert!(matches!(
            lua_to_frame_bounded(&value, false, 23),
            Frame::Array(_)
        ));
        assert_eq!(lua_to_frame_bounded(&value, false, 22), err(TOO_LARGE));
    }

    #[test]
    fn nesting_is_bounded() {
        // A table containing itself: Redis nests until its stack limit, then the error element.
        let frame = reply("local t = {}; t[1] = t; return t", false);
        let mut depth = 0;
        let mut cur = &frame;
        while let Frame::Array(items) = cur {
            depth += 1;
            cur = &items[0];
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(cur, &err("ERR reached lua stack limit"));
        // 100 levels convert in full.
        let frame = reply(
            "local t = {}; local c = t; for i=1,100 do c[1] = {}; c = c[1] end; return t",
            false,
        );
        let mut depth = 0;
        let mut cur = &frame;
        while let Frame::Array(items) = cur {
            depth += 1;
            match items.first() {
                Some(next) => cur = next,
                None => break,
            }
        }
        assert_eq!(depth, 101);
    }

    fn lua_of(frame: &Frame, resp3: bool, probe: &str) -> Frame {
        let lua = Lua::new();
        let value = frame_to_lua(&lua, frame, resp3).unwrap();
        let f: mlua::Function = lua.load(probe).eval().unwrap();
        lua_to_frame(&f.call::<Value>(value).unwrap(), false)
    }

    #[test]
    fn replies_reach_lua_as_redis_hands_them() {
        let probe = "return function(r) return {type(r), tostring(r)} end";
        // RESP2 null -> false; RESP3 null -> nil.
        assert_eq!(
            lua_of(&Frame::Null, false, probe),
            Frame::Array(vec![bulk("boolean"), bulk("false")])
        );
        assert_eq!(
            lua_of(&Frame::Null, true, probe),
            Frame::Array(vec![bulk("nil"), bulk("nil")])
        );
        // Status -> {ok=...}, error -> {err=...}.
        let fields = "return function(r) return {r.ok or '', r.err or ''} end";
        assert_eq!(
            lua_of(&Frame::Simple(Bytes::from_static(b"PONG")), false, fields),
            Frame::Array(vec![bulk("PONG"), bulk("")])
        );
        assert_eq!(
            lua_of(&err("ERR bad"), false, fields),
            Frame::Array(vec![bulk(""), bulk("ERR bad")])
        );
        // RESP3 double -> {double=n}; RESP2 double -> string (ZSCORE 1.5 -> "1.5").
        let double =
            "return function(r) return {type(r), type(r) == 'table' and r.double * 2 or r} end";
        assert_eq!(
            lua_of(&Frame::Double(1.5), true, double),
            Frame::Array(vec![bulk("table"), Frame::Integer(3)])
        );
        assert_eq!(
            lua_of(&Frame::Double(1.5), false, double),
            Frame::Array(vec![bulk("string"), bulk("1.5")])
        );
        // RESP3 map -> {map={...}}; RESP2 map -> flat array.
        let map = Frame::Map(vec![(bulk("a"), bulk("1"))]);
        assert_eq!(
            lua_of(&map, true, "return function(r) return r.map.a end"),
            bulk("1")
        );
        assert_eq!(
            lua_of(&map, false, "return function(r) return r end"),
            Frame::Array(vec![bulk("a"), bulk("1")])
        );
        // RESP3 set -> {set={member=true}}.
        assert_eq!(
            lua_of(
                &Frame::Set(vec![bulk("a")]),
                true,
                "return function(r) return tostring(r.set.a) end"
            ),
            bulk("true")
        );
        // Integers are numbers; nested arrays keep their shape.
        assert_eq!(
            lua_of(
                &Frame::Array(vec![Frame::Integer(7), Frame::Array(vec![bulk("x")])]),
                false,
                "return function(r) return r end"
            ),
            Frame::Array(vec![Frame::Integer(7), Frame::Array(vec![bulk("x")])])
        );
    }
}
