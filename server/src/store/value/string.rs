//! Strings: a binary-safe byte string, stored as a `Vec<u8>` directly in [`super::Value`].
//!
//! A `Vec` (not `Bytes`) so that APPEND and SETRANGE grow it in place with amortised
//! doubling, and so that a stored value never pins a connection's read buffer. Strings are
//! the hot path: GET and SET reach the bytes through one match on the enum, nothing else.
//!
//! # Snapshot payload (type tag `0x00`)
//!
//! ```text
//! payload := varint(len) bytes
//! ```
//!
//! A snapshot copies a string whole: the walk copies it under the shard lock, and so does
//! the first write to it while a snapshot runs (unless that write replaces it, in which case
//! the old value is moved to the snapshot, not copied). Only a single very large string is
//! therefore ever copied in one lock hold; collections are copied chunk by chunk (see
//! [`super`]).

use super::codec::{PayloadRead, PayloadWrite};

/// Writes a string's payload.
pub fn encode<W: PayloadWrite>(bytes: &[u8], out: &mut W) -> Result<(), W::Error> {
    out.put_bytes(bytes)
}

/// Reads a string's payload.
pub fn decode<R: PayloadRead>(src: &mut R) -> Result<Vec<u8>, R::Error> {
    src.read_bytes()
}

/// OBJECT ENCODING's name for a string with these bytes, as Redis would choose it for a
/// string written whole: `int` for a canonical 64-bit integer, `embstr` up to 44 bytes,
/// `raw` beyond. (kvstore stores all three alike; the name is for clients that look.)
pub fn encoding(bytes: &[u8]) -> &'static str {
    if parse_i64(bytes).is_some() {
        "int"
    } else if bytes.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// Parses a signed 64-bit integer exactly as Redis's `string2ll`: optional `-`, no `+`, no
/// spaces, no leading zeros, no overflow.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] => return if negative { None } else { Some(0) },
        [b'0', ..] => return None,
        _ => {}
    }
    if digits.len() > 19 {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if magnitude == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}
