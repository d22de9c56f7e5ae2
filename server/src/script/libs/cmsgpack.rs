//! `cmsgpack`: MessagePack encoding of Lua values (the lua-cmsgpack 0.4.0 API Redis scripts get).
//!
//! Packing: nil, booleans, numbers (integral ones that fit an int64 as the smallest integer
//! type; others as float32 when that is exact, else float64), strings (always the `str` types,
//! never `bin`), and tables: a table whose keys are exactly 1..n is an array, anything else a
//! map (in `next` order). Functions, userdata and threads pack as nil, and so does a table
//! nested more than 16 levels deep (a self-referencing table packs as 16 arrays around a nil).
//!
//! Unpacking accepts what 0.4.0 accepts: the types above plus `str` of any width. `bin`, `ext`
//! and the reserved byte are "Bad data format in input."; data that ends inside a value is
//! "Missing bytes in input.". Declared lengths are only believed once the bytes are there, so a
//! hostile header cannot make us allocate. Nesting is limited to 3999 containers, where Redis
//! runs out of Lua stack, and containers under construction live in a Lua table (see
//! `NestStack`), so neither Rust's stack nor mlua's handles grow with the input.

use mlua::{Lua, MultiValue, Table, Value};

use super::{exact_number, raise, Args, NestStack, MAX_RESULTS};

/// Tables nested deeper than this pack as nil (lua-cmsgpack's `LUACMSGPACK_MAX_NESTING`).
const MAX_PACK_NESTING: usize = 16;
/// Most containers open at once while unpacking; Redis 7.0.15 overflows its Lua stack at 4000.
const MAX_UNPACK_NESTING: usize = 3999;

const TRUNCATED: &str = "Missing bytes in input.";
const BAD_FORMAT: &str = "Bad data format in input.";
const TOO_MANY_RESULTS: &str =
    "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";
const ARRAY_TOO_DEEP: &str = "stack overflow (in function mp_decode_to_lua_array)";

/// Builds the `cmsgpack` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.raw_set("_NAME", "cmsgpack")?;
    table.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    table.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    table.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    table.raw_set("pack", lua.create_function(pack)?)?;
    table.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let args = Args::new(lua, args);
            let data = args.bytes(1)?;
            unpack_from(lua, &data.as_bytes(), 0, 0)
        })?,
    )?;
    table.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let args = Args::new(lua, args);
            let data = args.bytes(1)?;
            let offset = args.opt_integer(2, 0)?;
            unpack_from(lua, &data.as_bytes(), 1, offset)
        })?,
    )?;
    table.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let args = Args::new(lua, args);
            let data = args.bytes(1)?;
            let limit = args.integer(2)?;
            let offset = args.opt_integer(3, 0)?;
            unpack_from(lua, &data.as_bytes(), limit, offset)
        })?,
    )?;
    Ok(table)
}

/// `cmsgpack.pack(...)`: the encodings of all arguments, concatenated.
fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let args = Args::new(lua, args);
    if args.len() == 0 {
        return Err(args.arg_error(0, "MessagePack pack needs input."));
    }
    let mut out = Vec::new();
    for value in args.values.iter() {
        let number = match value {
            Value::Integer(i) => Some(*i as f64),
            Value::Number(n) => Some(*n),
            _ => None,
        };
        encode_value(lua, &mut out, value, number, 0)?;
    }
    lua.create_string(&out)
}

/// Appends the encoding of `value` (`number` is its exact value when it is a number) at
/// nesting `level`. Recursion is bounded by [`MAX_PACK_NESTING`].
fn encode_value(
    lua: &Lua,
    out: &mut Vec<u8>,
    value: &Value,
    number: Option<f64>,
    level: usize,
) -> mlua::Result<()> {
    match value {
        Value::Boolean(true) => out.push(0xc3),
        Value::Boolean(false) => out.push(0xc2),
        Value::Integer(_) | Value::Number(_) => encode_number(out, number.unwrap_or(0.0)),
        Value::String(s) => encode_string(lua, out, &s.as_bytes())?,
        Value::Table(t) if level < MAX_PACK_NESTING => encode_table(lua, out, t, level)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

/// Integers (numbers equal to their int64 truncation) in the smallest integer type, other
/// numbers as float32 when exact, else float64.
fn encode_number(out: &mut Vec<u8>, n: f64) {
    let i = super::c_double_to_i64(n);
    if i as f64 == n {
        encode_integer(out, i);
    } else if f64::from(n as f32) == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_integer(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        if i <= 0x7f {
            out.push(i as u8);
        } else if i <= 0xff {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn encode_string(lua: &Lua, out: &mut Vec<u8>, bytes: &[u8]) -> mlua::Result<()> {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        let Ok(len) = u32::try_from(len) else {
            return Err(raise(lua, "string too long for MessagePack"));
        };
        out.push(0xdb);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// Writes a container header: `fix` (0x90 or 0x80) with the count when it fits 4 bits, else
/// the 16- or 32-bit form (`wide`: 0xdc or 0xde, the 32-bit byte follows it).
fn encode_header(
    lua: &Lua,
    out: &mut Vec<u8>,
    fix: u8,
    wide: u8,
    count: usize,
) -> mlua::Result<()> {
    if count <= 15 {
        out.push(fix | count as u8);
    } else if count <= 0xffff {
        out.push(wide);
        out.extend_from_slice(&(count as u16).to_be_bytes());
    } else {
        let Ok(count) = u32::try_from(count) else {
            return Err(raise(lua, "table too large for MessagePack"));
        };
        out.push(wide + 1);
        out.extend_from_slice(&count.to_be_bytes());
    }
    Ok(())
}

/// A table whose keys are exactly the integers 1..n packs as an array, anything else as a map.
fn encode_table(lua: &Lua, out: &mut Vec<u8>, table: &Table, level: usize) -> mlua::Result<()> {
    let mut count: usize = 0;
    let mut max: f64 = 0.0;
    let mut is_array = true;
    table.for_each(|key: Value, _: Value| {
        count += 1;
        if is_array {
            let index = match key {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                _ => -1.0,
            };
            if index >= 1.0 && index.fract() == 0.0 {
                max = max.max(index);
            } else {
                is_array = false;
            }
        }
        Ok(())
    })?;
    if is_array && max == count as f64 {
        encode_header(lua, out, 0x90, 0xdc, count)?;
        for index in 1..=count {
            let key = Value::Integer(index as i64);
            let value: Value = table.raw_get(key.clone())?;
            let number = exact_number(table, &key, &value)?;
            encode_value(lua, out, &value, number, level + 1)?;
        }
    } else {
        encode_header(lua, out, 0x80, 0xde, count)?;
        table.for_each(|key: Value, value: Value| {
            let key_number = match key {
                Value::Integer(i) => Some(i as f64),
                Value::Number(n) => Some(n),
                _ => None,
            };
            encode_value(lua, out, &key, key_number, level + 1)?;
            let number = exact_number(table, &key, &value)?;
            encode_value(lua, out, &value, number, level + 1)
        })?;
    }
    Ok(())
}

/// What one header byte (and its length fields) announces.
enum Item {
    Scalar(Value),
    Str(usize),
    Array(usize),
    Map(usize),
}

/// A cursor over the input, failing with "Missing bytes in input." past its end.
struct Reader<'d> {
    data: &'d [u8],
    pos: usize,
}

impl<'d> Reader<'d> {
    fn take(&mut self, lua: &Lua, n: usize) -> mlua::Result<&'d [u8]> {
        let data: &'d [u8] = self.data;
        match data.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(raise(lua, TRUNCATED)),
        }
    }

    fn array<const N: usize>(&mut self, lua: &Lua) -> mlua::Result<[u8; N]> {
        let mut raw = [0u8; N];
        raw.copy_from_slice(self.take(lua, N)?);
        Ok(raw)
    }

    fn u8(&mut self, lua: &Lua) -> mlua::Result<u8> {
        Ok(self.array::<1>(lua)?[0])
    }

    fn u16(&mut self, lua: &Lua) -> mlua::Result<usize> {
        Ok(usize::from(u16::from_be_bytes(self.array(lua)?)))
    }

    fn u32(&mut self, lua: &Lua) -> mlua::Result<usize> {
        Ok(u32::from_be_bytes(self.array(lua)?) as usize)
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Reads one header.
    fn item(&mut self, lua: &Lua) -> mlua::Result<Item> {
        let byte = self.u8(lua)?;
        let number = |n: f64| Ok(Item::Scalar(Value::Number(n)));
        match byte {
            0x00..=0x7f => number(f64::from(byte)),
            0x80..=0x8f => Ok(Item::Map(usize::from(byte & 0x0f))),
            0x90..=0x9f => Ok(Item::Array(usize::from(byte & 0x0f))),
            0xa0..=0xbf => Ok(Item::Str(usize::from(byte & 0x1f))),
            0xc0 => Ok(Item::Scalar(Value::Nil)),
            0xc2 => Ok(Item::Scalar(Value::Boolean(false))),
            0xc3 => Ok(Item::Scalar(Value::Boolean(true))),
            0xca => number(f64::from(f32::from_be_bytes(self.array(lua)?))),
            0xcb => number(f64::from_be_bytes(self.array(lua)?)),
            0xcc => number(f64::from(self.u8(lua)?)),
            0xcd => number(self.u16(lua)? as f64),
            0xce => number(self.u32(lua)? as f64),
            // uint64 is handed to Lua as a signed 64-bit integer, as lua-cmsgpack does.
            0xcf => number(i64::from_be_bytes(self.array(lua)?) as f64),
            0xd0 => number(f64::from(i8::from_be_bytes(self.array(lua)?))),
            0xd1 => number(f64::from(i16::from_be_bytes(self.array(lua)?))),
            0xd2 => number(f64::from(i32::from_be_bytes(self.array(lua)?))),
            0xd3 => number(i64::from_be_bytes(self.array(lua)?) as f64),
            0xd9 => Ok(Item::Str(usize::from(self.u8(lua)?))),
            0xda => Ok(Item::Str(self.u16(lua)?)),
            0xdb => Ok(Item::Str(self.u32(lua)?)),
            0xdc => Ok(Item::Array(self.u16(lua)?)),
            0xdd => Ok(Item::Array(self.u32(lua)?)),
            0xde => Ok(Item::Map(self.u16(lua)?)),
            0xdf => Ok(Item::Map(self.u32(lua)?)),
            0xe0..=0xff => number(f64::from(byte as i8)),
            // 0xc1 (never used), bin 0xc4-0xc6, ext 0xc7-0xc9 and fixext 0xd4-0xd8.
            _ => Err(raise(lua, BAD_FORMAT)),
        }
    }
}

/// A container being filled while unpacking (its table is the decoder's `current` one, or on
/// its stack of ancestors).
struct Open {
    /// Values still to read (a map's keys and values both count).
    remaining: usize,
    is_map: bool,
    /// Next array index.
    next_index: i64,
    /// A map key was read and is on the decoder's key stack.
    key_pending: bool,
}

/// Decodes one complete value at the reader's position.
fn decode_one(lua: &Lua, reader: &mut Reader) -> mlua::Result<Value> {
    let mut open: Vec<Open> = Vec::new();
    // The innermost open container, its ancestors, and the keys of map entries being read.
    let mut current: Option<Table> = None;
    let mut ancestors = NestStack::new(lua)?;
    let mut keys = NestStack::new(lua)?;
    loop {
        let (len, is_map) = match reader.item(lua)? {
            Item::Array(len) if len > 0 => (len, false),
            Item::Map(len) if len > 0 => (len, true),
            item => {
                let value = match item {
                    Item::Scalar(value) => value,
                    Item::Str(len) => Value::String(lua.create_string(reader.take(lua, len)?)?),
                    _ => Value::Table(lua.create_table()?),
                };
                match store(&mut open, &mut current, &mut ancestors, &mut keys, value)? {
                    Some(done) => return Ok(done),
                    None => continue,
                }
            }
        };
        if open.len() >= MAX_UNPACK_NESTING {
            return Err(raise(
                lua,
                if is_map {
                    TOO_MANY_RESULTS
                } else {
                    ARRAY_TOO_DEEP
                },
            ));
        }
        // Never reserve more than the input could fill: at least one byte per element.
        let table = if is_map {
            lua.create_table_with_capacity(0, len.min(reader.remaining() / 2).min(1 << 16))?
        } else {
            lua.create_table_with_capacity(len.min(reader.remaining()).min(1 << 16), 0)?
        };
        if let Some(parent) = current.replace(table) {
            ancestors.push(Value::Table(parent))?;
        }
        open.push(Open {
            remaining: if is_map { len.saturating_mul(2) } else { len },
            is_map,
            next_index: 1,
            key_pending: false,
        });
    }
}

/// Hands a finished value to the innermost open container, closing every container it
/// completes; returns the value itself when no container is open (it is the result).
fn store(
    open: &mut Vec<Open>,
    current: &mut Option<Table>,
    ancestors: &mut NestStack,
    keys: &mut NestStack,
    mut value: Value,
) -> mlua::Result<Option<Value>> {
    loop {
        let (Some(top), Some(table)) = (open.last_mut(), current.as_ref()) else {
            return Ok(Some(value));
        };
        if top.is_map && !top.key_pending {
            keys.push(value)?;
            top.key_pending = true;
            top.remaining -= 1;
            return Ok(None);
        }
        if top.is_map {
            top.key_pending = false;
            table.raw_set(keys.pop()?, value)?;
        } else {
            table.raw_set(top.next_index, value)?;
            top.next_index += 1;
        }
        top.remaining -= 1;
        if top.remaining > 0 {
            return Ok(None);
        }
        open.pop();
        value = current.take().map_or(Value::Nil, Value::Table);
        *current = match ancestors.pop()? {
            Value::Table(parent) => Some(parent),
            _ => None,
        };
    }
}

/// `unpack` (limit 0 and offset 0: every value, no offset returned), `unpack_one` (limit 1)
/// and `unpack_limit`: otherwise at most `limit` values are read (none when the limit is 0),
/// preceded by the offset after them, or -1 when the input is used up.
fn unpack_from(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let len = data.len();
    if offset < 0 || limit < 0 {
        return Err(raise(
            lua,
            format_args!("Invalid request to unpack with offset of {offset} and limit of {len}."),
        ));
    }
    if offset as u64 > len as u64 {
        return Err(raise(
            lua,
            format_args!("Start offset {offset} greater than input length {len}."),
        ));
    }
    let mut reader = Reader {
        data,
        pos: offset as usize,
    };
    let decode_all = limit == 0 && offset == 0;
    let mut values: Vec<Value> = Vec::new();
    if !decode_all {
        values.push(Value::Nil); // the offset, filled in below
    }
    let mut decoded: i64 = 0;
    while reader.remaining() > 0 && (decode_all || decoded < limit) {
        if values.len() >= MAX_RESULTS {
            return Err(raise(lua, TOO_MANY_RESULTS));
        }
        values.push(decode_one(lua, &mut reader)?);
        decoded += 1;
    }
    if !decode_all {
        let next = if reader.remaining() == 0 {
            -1
        } else {
            reader.pos as i64
        };
        values[0] = Value::Integer(next);
    }
    Ok(MultiValue::from_vec(values))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, state};
    use proptest::prelude::*;

    const HEX: &str = "local function hx(s) local h={} for i=1,#s do \
                       h[i]=string.format('%02x', s:byte(i)) end return table.concat(h) end \
                       local function hexs(h) return (h:gsub('..', function(x) \
                       return string.char(tonumber(x, 16)) end)) end ";

    /// A serialiser for unpacked values (keys sorted), as used to record Redis's answers.
    const SHOW: &str = r#"
        local function ser(v, d)
          d = d or 0
          if d > 40 then return '...' end
          local t = type(v)
          if t == 'table' then
            local keys = {}
            for k in pairs(v) do keys[#keys+1] = k end
            table.sort(keys, function(a,b) return tostring(a) < tostring(b) end)
            local parts = {}
            for _, k in ipairs(keys) do parts[#parts+1] = ser(k, d+1) .. '=' .. ser(v[k], d+1) end
            return '{' .. table.concat(parts, ',') .. '}'
          elseif t == 'string' then return string.format('%q', v)
          else return tostring(v) end
        end
        local function show(...)
          local r = {pcall(...)}
          local out = {}
          for i = 1, table.maxn(r) do out[#out+1] = ser(r[i]) end
          return table.concat(out, ' ')
        end
    "#;

    /// `pack` cases: the call, and the hex Redis 7.0.15 returned.
    const PACK: &[(&str, &str)] = &[
        ("cmsgpack.pack(1)", "01"),
        ("cmsgpack.pack(-1)", "ff"),
        ("cmsgpack.pack(127)", "7f"),
        ("cmsgpack.pack(128)", "cc80"),
        ("cmsgpack.pack(255)", "ccff"),
        ("cmsgpack.pack(256)", "cd0100"),
        ("cmsgpack.pack(65535)", "cdffff"),
        ("cmsgpack.pack(65536)", "ce00010000"),
        ("cmsgpack.pack(2^32-1)", "ceffffffff"),
        ("cmsgpack.pack(2^32)", "cf0000000100000000"),
        ("cmsgpack.pack(2^53)", "cf0020000000000000"),
        ("cmsgpack.pack(2^63)", "ca5f000000"),
        ("cmsgpack.pack(2^64)", "ca5f800000"),
        ("cmsgpack.pack(-32)", "e0"),
        ("cmsgpack.pack(-33)", "d0df"),
        ("cmsgpack.pack(-128)", "d080"),
        ("cmsgpack.pack(-129)", "d1ff7f"),
        ("cmsgpack.pack(-32768)", "d18000"),
        ("cmsgpack.pack(-32769)", "d2ffff7fff"),
        ("cmsgpack.pack(-2^31)", "d280000000"),
        ("cmsgpack.pack(-2^31-1)", "d3ffffffff7fffffff"),
        ("cmsgpack.pack(-2^63)", "d38000000000000000"),
        ("cmsgpack.pack(-2^64)", "cadf800000"),
        ("cmsgpack.pack(1.5)", "ca3fc00000"),
        ("cmsgpack.pack(0.1)", "cb3fb999999999999a"),
        ("cmsgpack.pack(-0)", "00"),
        ("cmsgpack.pack(1/0)", "ca7f800000"),
        ("cmsgpack.pack(1e300)", "cb7e37e43c8800759c"),
        ("cmsgpack.pack(3.4028234663852886e38)", "ca7f7fffff"),
        ("cmsgpack.pack(1e39)", "cb48078287f49c4a1d"),
        ("cmsgpack.pack({1e-45})", "91cb3696d601ad376ab9"),
        ("cmsgpack.pack(nil)", "c0"),
        ("cmsgpack.pack(true)", "c3"),
        ("cmsgpack.pack(false)", "c2"),
        ("cmsgpack.pack('')", "a0"),
        ("cmsgpack.pack('abc')", "a3616263"),
        ("cmsgpack.pack(string.rep('a',31)):sub(1,2)", "bf61"),
        ("cmsgpack.pack(string.rep('a',32)):sub(1,3)", "d92061"),
        ("cmsgpack.pack(string.rep('a',255)):sub(1,3)", "d9ff61"),
        ("cmsgpack.pack(string.rep('a',256)):sub(1,4)", "da010061"),
        ("cmsgpack.pack(string.rep('a',65536)):sub(1,6)", "db0001000061"),
        ("cmsgpack.pack('\\255')", "a1ff"),
        ("cmsgpack.pack({})", "90"),
        ("cmsgpack.pack({1,2})", "920102"),
        ("cmsgpack.pack({a=1})", "81a16101"),
        ("cmsgpack.pack({1,nil,3})", "8201010303"),
        ("cmsgpack.pack({[1]=1,[3]=3})", "8201010303"),
        ("cmsgpack.pack({[2]=2})", "810202"),
        ("cmsgpack.pack({[0]=1})", "810001"),
        ("cmsgpack.pack({[1.5]=1})", "81ca3fc0000001"),
        ("cmsgpack.pack({1, a=1})", "820101a16101"),
        ("cmsgpack.pack(1,2,'a')", "0102a161"),
        ("cmsgpack.pack(function() end)", "c0"),
        ("cmsgpack.pack({f=function() end})", "81a166c0"),
        ("cmsgpack.pack({[true]=1})", "81c301"),
        ("cmsgpack.pack({[{}]=1})", "819001"),
        (
            "cmsgpack.pack((function() local t={} t[1]=t return t end)())",
            "91919191919191919191919191919191c0",
        ),
        (
            "cmsgpack.pack((function() local t={} local c=t for i=1,20 do c[1]={} c=c[1] end return t end)())",
            "91919191919191919191919191919191c0",
        ),
        (
            "cmsgpack.pack((function() local t={} t.a=t return t end)())",
            "81a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a161c0",
        ),
        (
            "cmsgpack.pack((function() local t={} local c=t for i=1,20 do c[{}]=1 c=next(c) end return t end)())",
            "81818181818181818181818181818181c001010101010101010101010101010101",
        ),
    ];

    /// `unpack*` cases: the call, and Redis 7.0.15's answer through `show` (pcall status first).
    const UNPACK: &[(&str, &str)] = &[
        ("cmsgpack.unpack, hexs('c0')", "true"),
        ("cmsgpack.unpack, hexs('c3c2')", "true true false"),
        (
            "cmsgpack.unpack, hexs('01ff7fcc80cd0100ce00010000cf0000000100000000')",
            "true 1 -1 127 128 256 65536 4294967296",
        ),
        ("cmsgpack.unpack, hexs('cfffffffffffffffff')", "true -1"),
        (
            "cmsgpack.unpack, hexs('cf8000000000000000')",
            "true -9.2233720368548e+18",
        ),
        (
            "cmsgpack.unpack, hexs('d38000000000000000d0dfd1ff7fd2ffff7fff')",
            "true -9.2233720368548e+18 -33 -129 -32769",
        ),
        (
            "cmsgpack.unpack, hexs('ca3fc00000cb3fb999999999999a')",
            "true 1.5 0.1",
        ),
        (
            "cmsgpack.unpack, hexs('a3616263d90161da000162db0000000163')",
            "true \"abc\" \"a\" \"b\" \"c\"",
        ),
        (
            "cmsgpack.unpack, hexs('c40161c5000162c60000000163')",
            "false \"Bad data format in input.\"",
        ),
        ("cmsgpack.unpack, hexs('920102')", "true {1=1,2=2}"),
        ("cmsgpack.unpack, hexs('81a16101')", "true {\"a\"=1}"),
        (
            "cmsgpack.unpack, hexs('82c001a16102')",
            "false \"table index is nil\"",
        ),
        ("cmsgpack.unpack, hexs('8101c0')", "true {}"),
        ("cmsgpack.unpack, hexs('92c001')", "true {2=1}"),
        (
            "cmsgpack.unpack, hexs('dc00020102dd000000020102')",
            "true {1=1,2=2} {1=1,2=2}",
        ),
        (
            "cmsgpack.unpack, hexs('c1')",
            "false \"Bad data format in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('d40161')",
            "false \"Bad data format in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('c7016162')",
            "false \"Bad data format in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('d5016162')",
            "false \"Bad data format in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('c801')",
            "false \"Bad data format in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('cc')",
            "false \"Missing bytes in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('a5616263')",
            "false \"Missing bytes in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('dbffffffff61')",
            "false \"Missing bytes in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('ddffffffff')",
            "false \"Missing bytes in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('dfffffffff')",
            "false \"Missing bytes in input.\"",
        ),
        (
            "cmsgpack.unpack, hexs('92')",
            "false \"Missing bytes in input.\"",
        ),
        ("cmsgpack.unpack, ''", "true"),
        ("cmsgpack.unpack, 1", "true 49"),
        ("cmsgpack.unpack, hexs('0102'), 5", "true 1 2"),
        ("cmsgpack.unpack_one, hexs('010203')", "true 1 1"),
        ("cmsgpack.unpack_one, hexs('010203'), 1", "true 2 2"),
        ("cmsgpack.unpack_one, hexs('010203'), 2", "true -1 3"),
        ("cmsgpack.unpack_one, hexs('010203'), 3", "true -1"),
        (
            "cmsgpack.unpack_one, hexs('010203'), 4",
            "false \"Start offset 4 greater than input length 3.\"",
        ),
        (
            "cmsgpack.unpack_one, hexs('010203'), -1",
            "false \"Invalid request to unpack with offset of -1 and limit of 3.\"",
        ),
        ("cmsgpack.unpack_one, ''", "true -1"),
        ("cmsgpack.unpack_limit, hexs('010203'), 2", "true 2 1 2"),
        ("cmsgpack.unpack_limit, hexs('010203'), 2, 2", "true -1 3"),
        ("cmsgpack.unpack_limit, hexs('010203'), 0", "true 1 2 3"),
        (
            "cmsgpack.unpack_limit, hexs('010203'), -1",
            "false \"Invalid request to unpack with offset of 0 and limit of 3.\"",
        ),
        ("cmsgpack.unpack_limit, hexs('010203'), 5", "true -1 1 2 3"),
        ("cmsgpack.unpack_limit, hexs('010203'), 1, 3", "true -1"),
        (
            "cmsgpack.unpack_limit, hexs('010203'), 1, 5",
            "false \"Start offset 5 greater than input length 3.\"",
        ),
        ("cmsgpack.unpack_one, hexs('010203'), 1.5", "true 2 2"),
        ("cmsgpack.unpack_limit, hexs('7fa0'), 0, 1", "true 1"),
        ("cmsgpack.unpack_limit, hexs('dc'), 0, 1", "true -1"),
    ];

    #[test]
    fn pack_matches_redis() {
        let lua = state();
        for (call, expected) in PACK {
            let got = eval(&lua, &format!("{HEX} return hx({call})"));
            assert_eq!(&got, expected, "{call}");
        }
    }

    #[test]
    fn unpack_matches_redis() {
        let lua = state();
        for (call, expected) in UNPACK {
            let got = eval(&lua, &format!("{HEX} {SHOW} return show({call})"));
            assert_eq!(&got, expected, "{call}");
        }
    }

    #[test]
    fn argument_errors_match_redis() {
        let lua = state();
        let cases = [
            (
                "cmsgpack.pack()",
                "ERR:user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)",
            ),
            (
                "cmsgpack.unpack()",
                "ERR:user_script:1: bad argument #1 to 'unpack' (string expected, got no value)",
            ),
            (
                "cmsgpack.unpack({})",
                "ERR:user_script:1: bad argument #1 to 'unpack' (string expected, got table)",
            ),
            (
                "cmsgpack.unpack_limit('\\1')",
                "ERR:user_script:1: bad argument #2 to 'unpack_limit' (number expected, got no value)",
            ),
            (
                "cmsgpack.unpack_one('\\1', 'x')",
                "ERR:user_script:1: bad argument #2 to 'unpack_one' (number expected, got string)",
            ),
            (
                "cmsgpack.unpack('\\204')",
                "ERR:user_script:1: Missing bytes in input.",
            ),
            ("cmsgpack._VERSION", "lua-cmsgpack 0.4.0"),
            ("cmsgpack._NAME", "cmsgpack"),
            ("cmsgpack._COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo"),
            ("cmsgpack._DESCRIPTION", "MessagePack C implementation for Lua"),
        ];
        for (call, expected) in cases {
            assert_eq!(eval(&lua, &format!("return {call}")), expected, "{call}");
        }
    }

    #[test]
    fn nesting_limits_match_redis() {
        let lua = state();
        // Redis 7.0.15: 3999 nested arrays unpack, 4000 overflow its Lua stack.
        let depth = |n: usize, header: &str| {
            format!(
                "local s = string.rep({header}, {n}) .. string.char(1) \
                 local t = cmsgpack.unpack(s) local d = 0 \
                 while type(t) == 'table' do d = d + 1 t = t[1] or t.a end return d"
            )
        };
        assert_eq!(eval(&lua, &depth(3999, "string.char(0x91)")), "3999");
        assert_eq!(
            eval(&lua, &depth(4000, "string.char(0x91)")),
            "ERR:user_script:1: stack overflow (in function mp_decode_to_lua_array)"
        );
        assert_eq!(
            eval(&lua, &depth(3999, "string.char(0x81, 0xa1, 0x61)")),
            "3999"
        );
        assert_eq!(
            eval(&lua, &depth(4000, "string.char(0x81, 0xa1, 0x61)")),
            "ERR:user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
        );
        // Far deeper hostile input fails the same way, without recursion.
        assert_eq!(
            eval(&lua, &depth(1_000_000, "string.char(0x91)")),
            "ERR:user_script:1: stack overflow (in function mp_decode_to_lua_array)"
        );
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        let lua = state();
        // Declared 4 GB string, array and map in a few bytes.
        for input in [
            "'\\219\\255\\255\\255\\255abc'",
            "'\\221\\255\\255\\255\\255\\1'",
            "'\\223\\255\\255\\255\\255\\1\\1'",
            "string.rep('\\221\\255\\255\\255\\255', 3000)",
        ] {
            assert_eq!(
                eval(&lua, &format!("return cmsgpack.unpack({input})")),
                "ERR:user_script:1: Missing bytes in input.",
                "{input}"
            );
        }
    }

    #[test]
    fn too_many_results() {
        let lua = state();
        assert_eq!(
            eval(
                &lua,
                "return select('#', cmsgpack.unpack(string.rep('\\1', 4000)))"
            ),
            "4000"
        );
        // Redis fails at 8000 values with this message; we stop at MAX_RESULTS (see mod.rs).
        assert_eq!(
            eval(&lua, "return select('#', cmsgpack.unpack(string.rep('\\1', 4001)))"),
            "ERR:user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
        );
        // Many strings inside one table are fine: they are stored as they are decoded.
        assert_eq!(
            eval(
                &lua,
                "local t = {} for i = 1, 20000 do t[i] = 's' .. i end \
                 return #cmsgpack.unpack(cmsgpack.pack(t))"
            ),
            "20000"
        );
    }

    /// A Lua literal for a generated value, and the same value as Lua code that checks a
    /// candidate `v` for equality.
    fn lua_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("nil".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|i| format!("{i}")),
            any::<f64>()
                .prop_filter("finite, not tiny (see libs/mod.rs)", |x| {
                    x.is_finite() && (x.abs() >= 1e-15 || *x == 0.0)
                })
                .prop_map(|x| format!("{x:e}")),
            "[a-z0-9 ]{0,40}".prop_map(|s| format!("'{s}'")),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(|items| {
                    // Arrays of non-nil items (nil would turn them into maps).
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|s| if s == "nil" { "0".to_string() } else { s })
                        .collect();
                    format!("{{{}}}", items.join(","))
                }),
                prop::collection::vec(("[a-z]{1,5}", inner), 0..6).prop_map(|pairs| {
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
        fn pack_then_unpack_gives_equal_values(a in lua_value(), b in lua_value()) {
            let lua = state();
            let code = format!(r#"
                local function same(x, y)
                  if type(x) ~= type(y) then return false end
                  if type(x) ~= 'table' then return x == y end
                  for k, v in pairs(x) do if not same(v, y[k]) then return false end end
                  for k in pairs(y) do if x[k] == nil then return false end end
                  return true
                end
                local a, b = {a}, {b}
                local packed = cmsgpack.pack(a, b)
                local a2, b2 = cmsgpack.unpack(packed)
                local off, a3 = cmsgpack.unpack_one(packed)
                return same(a, a2) and same(b, b2) and same(a, a3)
                  and select('#', cmsgpack.unpack(packed)) == 2
            "#);
            prop_assert_eq!(eval(&lua, &code), "true");
        }

        #[test]
        fn truncated_input_errors_never_panic(a in lua_value(), cut in 0usize..200) {
            let lua = state();
            let code = format!(
                "local s = cmsgpack.pack({a}) local ok, e = pcall(cmsgpack.unpack, s:sub(1, {cut})) \
                 return ok or tostring(e)"
            );
            let got = eval(&lua, &code);
            prop_assert!(got == "true" || got.contains("Missing bytes in input."), "{}", got);
        }
    }
}
