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
