//! The RESP value type shared by the parser and the encoder, and the protocol version a
//! connection speaks (chosen with `HELLO`), which decides how RESP3-only types are written.

// Bytes from the network or disk: no indexing that could panic on them.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use bytes::Bytes;

/// One RESP2 or RESP3 value.
///
/// Payloads are [`Bytes`] so that decoded frames can share the read buffer (zero copy) and
/// stay binary safe. Nesting is unbounded in the type itself; the decoders enforce
/// [`Limits::max_depth`](crate::Limits::max_depth), which also bounds the recursion of `Drop`.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+text`: a short status reply such as `OK`; must not contain CR or LF.
    Simple(Bytes),
    /// `-ERR text` (or RESP3 blob error `!`): an error reply, including its prefix (`ERR`, `WRONGTYPE`, ...).
    Error(Bytes),
    /// `:n`: a signed 64-bit integer.
    Integer(i64),
    /// `$len`: a binary-safe string.
    Bulk(Bytes),
    /// The absent value: RESP2 `$-1` and `*-1` both decode to this; RESP3 `_`.
    Null,
    /// `*n`: an ordered sequence of frames.
    Array(Vec<Frame>),
    /// RESP3 `%n`: key/value pairs, in wire order (RESP2: a flat array of `2n` frames).
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~n`: an unordered collection (RESP2: an array).
    Set(Vec<Frame>),
    /// RESP3 `,`: a floating-point number (RESP2: a bulk string holding its text).
    Double(f64),
    /// RESP3 `#t` / `#f` (RESP2: the integer 1 or 0).
    Boolean(bool),
    /// RESP3 `(`: an integer of arbitrary size, as its decimal digits with an optional `-`.
    BigNumber(Bytes),
    /// RESP3 `=`: a string tagged with a three-byte format such as `txt` or `mkd`.
    Verbatim {
        /// The format tag, e.g. `*b"txt"`.
        format: [u8; 3],
        /// The text, without the `fmt:` prefix.
        text: Bytes,
    },
    /// RESP3 `>n`: an out-of-band message such as a pub/sub delivery (RESP2: an array).
    Push(Vec<Frame>),
}

/// The protocol version of a connection: decides how replies with RESP3-only types are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// RESP2, what every connection starts with: RESP3 types are downgraded when encoding.
    #[default]
    Resp2,
    /// RESP3, selected by `HELLO 3`: every frame type is written as itself.
    Resp3,
}
