//! `bit`: 32-bit bitwise operations on Lua numbers (the LuaBitOp API Redis scripts get).
//!
//! Every operand is first normalised to a 32-bit integer the way LuaBitOp does it: the double
//! is added to 2^52 + 2^51, which moves its integer part (rounded half to even) into the low
//! bits of the mantissa, and those low 32 bits are taken. So 1.5 becomes 2, 2.5 becomes 2,
//! 2^32 + 1 becomes 1 and infinities or NaN become 0. Results are signed 32-bit numbers.

use mlua::{Lua, MultiValue, Table, Value};

use super::Args;

/// Builds the `bit` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.raw_set(
        "tobit",
        lua.create_function(|lua, args: MultiValue| {
            let args = Args::new(lua, args);
            Ok(result(operand(&args, 1)?))
        })?,
    )?;
    table.raw_set("tohex", lua.create_function(tohex)?)?;
    table.raw_set(
        "bnot",
        lua.create_function(|lua, args: MultiValue| {
            let args = Args::new(lua, args);
            Ok(result(!operand(&args, 1)?))
        })?,
    )?;
    table.raw_set("band", fold_function(lua, |a, b| a & b)?)?;
    table.raw_set("bor", fold_function(lua, |a, b| a | b)?)?;
    table.raw_set("bxor", fold_function(lua, |a, b| a ^ b)?)?;
    table.raw_set("lshift", shift_function(lua, |x, n| x << n)?)?;
    table.raw_set("rshift", shift_function(lua, |x, n| x >> n)?)?;
    table.raw_set(
        "arshift",
        shift_function(lua, |x, n| ((x as i32) >> n) as u32)?,
    )?;
    table.raw_set("rol", shift_function(lua, |x, n| x.rotate_left(n))?)?;
    table.raw_set("ror", shift_function(lua, |x, n| x.rotate_right(n))?)?;
    table.raw_set(
        "bswap",
        lua.create_function(|lua, args: MultiValue| {
            let args = Args::new(lua, args);
            Ok(result(operand(&args, 1)?.swap_bytes()))
        })?,
    )?;
    Ok(table)
}

/// The low 32 bits of `n` as LuaBitOp normalises a number (see the module documentation).
pub fn normalise(n: f64) -> u32 {
    // 2^52 + 2^51: adding it leaves the integer part, rounded to even, in the low mantissa bits.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    (n + SHIFTER).to_bits() as u32
}

/// Argument `n` as a 32-bit operand ("number expected" errors as `luaL_checknumber`).
fn operand(args: &Args, n: usize) -> mlua::Result<u32> {
    args.number(n).map(normalise)
}

/// A result as LuaBitOp returns it: the bits read as a signed 32-bit integer.
fn result(bits: u32) -> f64 {
    f64::from(bits as i32)
}

/// `band`/`bor`/`bxor`: the first operand combined with every other one. As LuaBitOp does, the
/// operands after the first are read from the last one down, so a bad argument reports the
/// highest bad position.
fn fold_function(lua: &Lua, combine: fn(u32, u32) -> u32) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let args = Args::new(lua, args);
        let mut acc = operand(&args, 1)?;
        for n in (2..=args.len()).rev() {
            acc = combine(acc, operand(&args, n)?);
        }
        Ok(result(acc))
    })
}

/// `lshift`/`rshift`/`arshift`/`rol`/`ror`: the shift count is normalised too and taken
/// modulo 32.
fn shift_function(lua: &Lua, shift: fn(u32, u32) -> u32) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let args = Args::new(lua, args);
        let value = operand(&args, 1)?;
        let count = operand(&args, 2)? & 31;
        Ok(result(shift(value, count)))
    })
}

/// `bit.tohex(x [, n])`: the low `|n|` hex digits of `x` (default 8, at most 8), upper case when
/// `n` is negative.
fn tohex(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    let args = Args::new(lua, args);
    let value = operand(&args, 1)?;
    // Only an absent count means 8: an explicit nil is a bad argument.
    let requested = if args.get(2).is_none() {
        8
    } else {
        i64::from(operand(&args, 2)? as i32)
    };
    let upper = requested < 0;
    let digits = requested.unsigned_abs().min(8) as usize;
    let text = if upper {
        format!("{value:08X}")
    } else {
        format!("{value:08x}")
    };
    let start = 8 - digits;
    Ok(Value::String(lua.create_string(&text[start..])?))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, state};
    use super::normalise;
    use proptest::prelude::*;

    /// Each case: the expression, and `tostring` of what Redis 7.0.15 returned for it.
    const CASES: &[(&str, &str)] = &[
        ("bit.tobit(0xffffffff)", "-1"),
        ("bit.tobit(2^32)", "0"),
        ("bit.tobit(2^32+1)", "1"),
        ("bit.tobit(-1)", "-1"),
        ("bit.tobit(1.5)", "2"),
        ("bit.tobit(2.5)", "2"),
        ("bit.tobit(-1.5)", "-2"),
        ("bit.tobit(-2.5)", "-2"),
        ("bit.tobit(0.5)", "0"),
        ("bit.tobit(3.5)", "4"),
        ("bit.tobit(-0.5)", "0"),
        ("bit.tobit(1e20)", "2025163840"),
        ("bit.tobit(2^52)", "0"),
        ("bit.tobit(2^52+2^31)", "1073741824"),
        ("bit.tobit(2^53+3)", "2"),
        ("bit.tobit(1/0)", "0"),
        ("bit.tobit(0/0)", "0"),
        ("bit.tobit(-1/0)", "0"),
        ("bit.tobit(-2^31)", "-2147483648"),
        ("bit.tobit(2^31)", "-2147483648"),
        ("bit.tobit(2^31+0.5)", "-2147483648"),
        ("bit.tobit('0x10')", "16"),
        ("bit.tobit(' 12 ')", "12"),
        ("bit.tobit(1e300)", "-2013235812"),
        ("bit.tobit(-1e-300)", "0"),
        ("bit.tobit(4294967295.5)", "0"),
        ("bit.tobit(2^51+0.5)", "0"),
        ("bit.tohex(255)", "000000ff"),
        ("bit.tohex(-1)", "ffffffff"),
        ("bit.tohex(255, 2)", "ff"),
        ("bit.tohex(255, -2)", "FF"),
        ("bit.tohex(255, 0)", ""),
        ("bit.tohex(255, 9)", "000000ff"),
        ("bit.tohex(255, -9)", "000000FF"),
        ("bit.tohex(0x12345678, 4)", "5678"),
        ("bit.tohex(255, 8.7)", "000000ff"),
        ("bit.tohex(255, -2^31)", "000000FF"),
        ("bit.tohex(255, 2^31)", "000000FF"),
        ("bit.tohex(255, 2^32+3)", "0ff"),
        ("bit.tohex(255, 1/0)", ""),
        ("bit.tohex(1.5)", "00000002"),
        (
            "bit.tohex(2^32+7, nil)",
            "ERR:user_script:1: bad argument #2 to 'tohex' (number expected, got nil)",
        ),
        ("bit.bnot(0)", "-1"),
        ("bit.band(0xff, 0x0f, 0x3)", "3"),
        ("bit.band(5)", "5"),
        ("bit.bor(1,2,4,8)", "15"),
        ("bit.bxor(1,3)", "2"),
        ("bit.lshift(1, 31)", "-2147483648"),
        ("bit.lshift(1, 32)", "1"),
        ("bit.lshift(1, 33)", "2"),
        ("bit.lshift(1, -1)", "-2147483648"),
        ("bit.rshift(-1, 28)", "15"),
        ("bit.arshift(-256, 4)", "-16"),
        ("bit.arshift(0x80000000, 31)", "-1"),
        ("bit.rol(0x12345678, 12)", "1164411171"),
        ("bit.ror(0x12345678, 12)", "1736516421"),
        ("bit.rol(1, -1)", "-2147483648"),
        ("bit.bswap(0x12345678)", "2018915346"),
        ("bit.bswap(-1)", "-1"),
        ("bit.lshift(1, 2^32+1)", "2"),
        ("bit.lshift(1, 1.5)", "4"),
        (
            "bit.band()",
            "ERR:user_script:1: bad argument #1 to 'band' (number expected, got no value)",
        ),
        (
            "bit.lshift(1)",
            "ERR:user_script:1: bad argument #2 to 'lshift' (number expected, got no value)",
        ),
        (
            "bit.tobit()",
            "ERR:user_script:1: bad argument #1 to 'tobit' (number expected, got no value)",
        ),
        (
            "bit.tobit('x')",
            "ERR:user_script:1: bad argument #1 to 'tobit' (number expected, got string)",
        ),
        (
            "bit.tohex()",
            "ERR:user_script:1: bad argument #1 to 'tohex' (number expected, got no value)",
        ),
        (
            "bit.band({})",
            "ERR:user_script:1: bad argument #1 to 'band' (number expected, got table)",
        ),
    ];

    #[test]
    fn matches_redis() {
        let lua = state();
        for (expr, expected) in CASES {
            let got = eval(&lua, &format!("return {expr}"));
            assert_eq!(&got, expected, "{expr}");
        }
    }

    #[test]
    fn error_names_the_function_as_called() {
        let lua = state();
        // pcall calls the function itself: no caller location and no name, as in Redis.
        assert_eq!(
            eval(&lua, "local ok, e = pcall(bit.band, 'x') return e"),
            "bad argument #1 to '?' (number expected, got string)"
        );
        assert_eq!(
            eval(&lua, "local f = bit.bor\nreturn f(1, {})"),
            "ERR:user_script:2: bad argument #2 to 'f' (number expected, got table)"
        );
    }

    proptest! {
        #[test]
        fn normalise_matches_integer_wrapping(x in any::<i32>(), k in -1000i64..1000) {
            // Integers anywhere below 2^51 in magnitude wrap modulo 2^32.
            let n = i64::from(x) + k * (1i64 << 32);
            prop_assert_eq!(normalise(n as f64), x as u32);
        }
    }
}
