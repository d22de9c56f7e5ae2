//! RESP writers.
//!
//! The `write_*` functions append one reply element straight into an output buffer, so the
//! server can answer without building a [`Frame`] first; [`encode`] writes a whole frame
//! with them. Each writer takes the connection's [`Version`] where the two protocols differ:
//! for RESP2, RESP3-only types are downgraded the way Redis does it.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{Frame, Version};

/// The RESP line terminator.
const CRLF: &[u8] = b"\r\n";

/// Digits in the longest decimal `u64` (`18446744073709551615`).
const MAX_U64_DIGITS: usize = 20;

/// Writes a simple string: `+s\r\n`.
///
/// The caller should pass text without CR or LF; any there are replaced by spaces so the
/// stream stays well framed.
pub fn write_simple(buf: &mut BytesMut, s: &[u8]) {
    buf.reserve(s.len() + 3);
    buf.put_u8(b'+');
    put_single_line(buf, s);
    buf.put_slice(CRLF);
}

/// Writes an error: `-msg\r\n`, where `msg` includes its prefix (`ERR ...`, `WRONGTYPE ...`).
///
/// CR and LF in `msg` are replaced by spaces, as Redis does, so a message built from user
/// input cannot break the framing.
pub fn write_error(buf: &mut BytesMut, msg: &[u8]) {
    buf.reserve(msg.len() + 3);
    buf.put_u8(b'-');
    put_single_line(buf, msg);
    buf.put_slice(CRLF);
}

/// Writes an integer: `:n\r\n`, formatted without allocating.
pub fn write_integer(buf: &mut BytesMut, n: i64) {
    let mut digits = [0; MAX_U64_DIGITS];
    let digits = format_u64(n.unsigned_abs(), &mut digits);
    buf.reserve(digits.len() + 4);
    buf.put_u8(b':');
    if n < 0 {
        buf.put_u8(b'-');
    }
    buf.put_slice(digits);
    buf.put_slice(CRLF);
}

/// Writes a bulk string: `$len\r\ndata\r\n`.
pub fn write_bulk(buf: &mut BytesMut, data: &[u8]) {
    // Small values (the common case) are assembled on the stack and copied once: each
    // `put_slice` is a `memmove` call, whose fixed cost dominated small replies.
    const SMALL: usize = 48;
    if data.len() <= SMALL {
        let mut reply = [0u8; SMALL + 8];
        reply[0] = b'$';
        let mut at = 1;
        if data.len() >= 10 {
            reply[at] = b'0' + (data.len() / 10) as u8;
            at += 1;
        }
        reply[at] = b'0' + (data.len() % 10) as u8;
        reply[at + 1..at + 3].copy_from_slice(CRLF);
        at += 3;
        reply[at..at + data.len()].copy_from_slice(data);
        at += data.len();
        reply[at..at + 2].copy_from_slice(CRLF);
        buf.put_slice(&reply[..at + 2]);
        return;
    }
    buf.reserve(data.len() + MAX_U64_DIGITS + 5);
    put_header(buf, b'$', data.len());
    buf.put_slice(data);
    buf.put_slice(CRLF);
}

/// Writes the null reply to a single-value command: RESP2 `$-1\r\n`, RESP3 `_\r\n`.
pub fn write_null(buf: &mut BytesMut, v: Version) {
    buf.put_slice(match v {
        Version::Resp2 => b"$-1\r\n",
        Version::Resp3 => b"_\r\n",
    });
}

/// Writes the null reply to a multi-value command: RESP2 `*-1\r\n`, RESP3 `_\r\n`.
pub fn write_null_array(buf: &mut BytesMut, v: Version) {
    buf.put_slice(match v {
        Version::Resp2 => b"*-1\r\n",
        Version::Resp3 => b"_\r\n",
    });
}

/// Writes an array header `*len\r\n`; the caller then writes `len` elements.
pub fn write_array_header(buf: &mut BytesMut, len: usize) {
    put_header(buf, b'*', len);
}

/// Writes a map header: RESP3 `%pairs\r\n`; RESP2 `*{2*pairs}\r\n` (a flat key, value, ... array).
/// The caller then writes `2 * pairs` elements.
pub fn write_map_header(buf: &mut BytesMut, pairs: usize, v: Version) {
    match v {
        Version::Resp2 => put_header(buf, b'*', pairs.saturating_mul(2)),
        Version::Resp3 => put_header(buf, b'%', pairs),
    }
}

/// Writes a set header: RESP3 `~len\r\n`, RESP2 `*len\r\n`.
pub fn write_set_header(buf: &mut BytesMut, len: usize, v: Version) {
    match v {
        Version::Resp2 => put_header(buf, b'*', len),
        Version::Resp3 => put_header(buf, b'~', len),
    }
}

/// Writes a push header: RESP3 `>len\r\n`, RESP2 `*len\r\n` (how pub/sub messages look in RESP2).
pub fn write_push_header(buf: &mut BytesMut, len: usize, v: Version) {
    match v {
        Version::Resp2 => put_header(buf, b'*', len),
        Version::Resp3 => put_header(buf, b'>', len),
    }
}

/// Writes a double: RESP3 `,<repr>\r\n`; RESP2 a bulk string of the same text.
///
/// The text is Rust's shortest round-trip `Display` (`1.5`, `3`, `0.1`), or `inf`, `-inf`,
/// `nan` for non-finite values as Redis writes them.
pub fn write_double(buf: &mut BytesMut, d: f64, v: Version) {
    let special = non_finite_repr(d);
    match v {
        Version::Resp2 => {
            let len = special.map_or_else(|| display_len(d), <[u8]>::len);
            put_header(buf, b'$', len);
        }
        Version::Resp3 => buf.put_u8(b','),
    }
    match special {
        Some(text) => buf.put_slice(text),
        None => put_display(buf, d),
    }
    buf.put_slice(CRLF);
}

/// Writes a boolean: RESP3 `#t\r\n` / `#f\r\n`; RESP2 the integer 1 or 0.
pub fn write_boolean(buf: &mut BytesMut, b: bool, v: Version) {
    match v {
        Version::Resp2 => write_integer(buf, i64::from(b)),
        Version::Resp3 => buf.put_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
    }
}

/// Writes a big number: RESP3 `(digits\r\n`; RESP2 a bulk string of the digits.
pub fn write_big_number(buf: &mut BytesMut, digits: &[u8], v: Version) {
    match v {
        Version::Resp2 => write_bulk(buf, digits),
        Version::Resp3 => {
            buf.reserve(digits.len() + 3);
            buf.put_u8(b'(');
            buf.put_slice(digits);
            buf.put_slice(CRLF);
        }
    }
}

/// Writes a verbatim string: RESP3 `=len\r\nfmt:text\r\n` (`len` counts `fmt:`); RESP2 a bulk
/// string of `text` alone.
pub fn write_verbatim(buf: &mut BytesMut, format: [u8; 3], text: &[u8], v: Version) {
    match v {
        Version::Resp2 => write_bulk(buf, text),
        Version::Resp3 => {
            buf.reserve(text.len() + MAX_U64_DIGITS + 9);
            put_header(buf, b'=', text.len().saturating_add(4));
            buf.put_slice(&format);
            buf.put_u8(b':');
            buf.put_slice(text);
            buf.put_slice(CRLF);
        }
    }
}

/// Writes a whole frame, downgrading RESP3-only types when `v` is RESP2 (see the `write_*`
/// functions; a map becomes a flat array of `2n` elements).
///
/// An error containing CR or LF is written as a RESP3 blob error (`!len\r\nmsg\r\n`), or in
/// RESP2 as a simple error with those bytes replaced by spaces.
pub fn encode(frame: &Frame, buf: &mut BytesMut, v: Version) {
    match frame {
        Frame::Simple(s) => write_simple(buf, s),
        Frame::Error(msg) if v == Version::Resp3 && has_line_break(msg) => {
            buf.reserve(msg.len() + MAX_U64_DIGITS + 5);
            put_header(buf, b'!', msg.len());
            buf.put_slice(msg);
            buf.put_slice(CRLF);
        }
        Frame::Error(msg) => write_error(buf, msg),
        Frame::Integer(n) => write_integer(buf, *n),
        Frame::Bulk(data) => write_bulk(buf, data),
        Frame::Null => write_null(buf, v),
        Frame::Array(items) => {
            write_array_header(buf, items.len());
            encode_all(items, buf, v);
        }
        Frame::Map(pairs) => {
            write_map_header(buf, pairs.len(), v);
            for (key, value) in pairs {
                encode(key, buf, v);
                encode(value, buf, v);
            }
        }
        Frame::Set(items) => {
            write_set_header(buf, items.len(), v);
            encode_all(items, buf, v);
        }
        Frame::Push(items) => {
            write_push_header(buf, items.len(), v);
            encode_all(items, buf, v);
        }
        Frame::Double(d) => write_double(buf, *d, v),
        Frame::Boolean(b) => write_boolean(buf, *b, v),
        Frame::BigNumber(digits) => write_big_number(buf, digits, v),
        Frame::Verbatim { format, text } => write_verbatim(buf, *format, text, v),
    }
}

/// Writes a request as clients send it: an array of bulk strings (`*n\r\n$len\r\narg\r\n...`).
pub fn encode_command(args: &[&[u8]], buf: &mut BytesMut) {
    write_array_header(buf, args.len());
    for arg in args {
        write_bulk(buf, arg);
    }
}

/// [`encode_command`] for arguments already held as [`Bytes`].
pub fn encode_command_bytes(args: &[Bytes], buf: &mut BytesMut) {
    write_array_header(buf, args.len());
    for arg in args {
        write_bulk(buf, arg);
    }
}

fn encode_all(items: &[Frame], buf: &mut BytesMut, v: Version) {
    for item in items {
        encode(item, buf, v);
    }
}

/// Writes `prefix`, the decimal `len` and CRLF: the header of every length-prefixed type.
fn put_header(buf: &mut BytesMut, prefix: u8, len: usize) {
    let mut digits = [0; MAX_U64_DIGITS];
    // usize is at most 64 bits on every supported target, so this never saturates.
    let digits = format_u64(u64::try_from(len).unwrap_or(u64::MAX), &mut digits);
    buf.reserve(digits.len() + 3);
    buf.put_u8(prefix);
    buf.put_slice(digits);
    buf.put_slice(CRLF);
}

/// Formats `n` in decimal into the tail of `out` and returns the digits (itoa without a crate).
fn format_u64(mut n: u64, out: &mut [u8; MAX_U64_DIGITS]) -> &[u8] {
    let mut start = out.len();
    for slot in out.iter_mut().rev() {
        // `n % 10` is a single digit, so the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.get(start..).unwrap_or_default()
}

fn has_line_break(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'\r' || b == b'\n')
}

/// Appends `s` with CR and LF replaced by spaces (copied as is when it has none).
fn put_single_line(buf: &mut BytesMut, s: &[u8]) {
    if has_line_break(s) {
        buf.extend(
            s.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        buf.put_slice(s);
    }
}

/// Redis's spelling of the non-finite doubles; `None` for finite values.
fn non_finite_repr(d: f64) -> Option<&'static [u8]> {
    if d.is_nan() {
        Some(b"nan")
    } else if d.is_infinite() {
        Some(if d > 0.0 { b"inf" } else { b"-inf" })
    } else {
        None
    }
}

/// Writes `value`'s `Display` text into `buf` without an intermediate `String`.
fn put_display(buf: &mut BytesMut, value: impl fmt::Display) {
    struct Sink<'a>(&'a mut BytesMut);
    impl fmt::Write for Sink<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.put_slice(s.as_bytes());
            Ok(())
        }
    }
    // Cannot fail: `Sink` never returns an error, and `Display` impls of std types only
    // propagate errors from the writer.
    let _ = fmt::write(&mut Sink(buf), format_args!("{value}"));
}

/// Length of `value`'s `Display` text, measured without allocating (needed for RESP2's
/// length prefix before the text is written).
fn display_len(value: impl fmt::Display) -> usize {
    struct Counter(usize);
    impl fmt::Write for Counter {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Cannot fail, as in `put_display`.
    let _ = fmt::write(&mut counter, format_args!("{value}"));
    counter.0
}

/// Decimal text of an `i64` in a stack buffer: formatting a counter allocates nothing.
pub struct IntText {
    bytes: [u8; 20],
    start: usize,
}

impl IntText {
    /// Formats `n`.
    pub fn new(n: i64) -> Self {
        let mut text = IntText {
            bytes: [0; 20],
            start: 20,
        };
        let mut magnitude = n.unsigned_abs();
        loop {
            text.start -= 1;
            text.bytes[text.start] = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        if n < 0 {
            text.start -= 1;
            text.bytes[text.start] = b'-';
        }
        text
    }

    /// The digits.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn int_text_formats_extremes() {
        for n in [0, 7, -7, 10, i64::MAX, i64::MIN] {
            assert_eq!(IntText::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn bulk_of_every_small_length_is_framed_exactly() {
        for len in 0..=100usize {
            let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut buf = BytesMut::new();
            write_bulk(&mut buf, &data);
            let mut expected = format!("${len}\r\n").into_bytes();
            expected.extend_from_slice(&data);
            expected.extend_from_slice(b"\r\n");
            assert_eq!(&buf[..], &expected[..], "length {len}");
        }
    }

    use super::*;

    fn written(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        f(&mut buf);
        buf.to_vec()
    }

    fn encoded(frame: &Frame, v: Version) -> Vec<u8> {
        written(|buf| encode(frame, buf, v))
    }

    fn bulk(s: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s))
    }

    #[test]
    fn simple_and_error() {
        assert_eq!(written(|b| write_simple(b, b"OK")), b"+OK\r\n");
        assert_eq!(written(|b| write_simple(b, b"a\r\nb")), b"+a  b\r\n");
        assert_eq!(written(|b| write_error(b, b"ERR bad")), b"-ERR bad\r\n");
        assert_eq!(
            written(|b| write_error(b, b"ERR a\nb\rc")),
            b"-ERR a b c\r\n"
        );
    }

    #[test]
    fn integers() {
        assert_eq!(written(|b| write_integer(b, 0)), b":0\r\n");
        assert_eq!(written(|b| write_integer(b, -2)), b":-2\r\n");
        assert_eq!(
            written(|b| write_integer(b, 1234567890)),
            b":1234567890\r\n"
        );
        assert_eq!(
            written(|b| write_integer(b, i64::MAX)),
            b":9223372036854775807\r\n"
        );
        assert_eq!(
            written(|b| write_integer(b, i64::MIN)),
            b":-9223372036854775808\r\n"
        );
    }

    #[test]
    fn bulk_and_nulls() {
        assert_eq!(written(|b| write_bulk(b, b"foo")), b"$3\r\nfoo\r\n");
        assert_eq!(written(|b| write_bulk(b, b"")), b"$0\r\n\r\n");
        assert_eq!(written(|b| write_null(b, Version::Resp2)), b"$-1\r\n");
        assert_eq!(written(|b| write_null(b, Version::Resp3)), b"_\r\n");
        assert_eq!(written(|b| write_null_array(b, Version::Resp2)), b"*-1\r\n");
        assert_eq!(written(|b| write_null_array(b, Version::Resp3)), b"_\r\n");
    }

    #[test]
    fn aggregate_headers() {
        assert_eq!(written(|b| write_array_header(b, 3)), b"*3\r\n");
        assert_eq!(
            written(|b| write_map_header(b, 2, Version::Resp3)),
            b"%2\r\n"
        );
        assert_eq!(
            written(|b| write_map_header(b, 2, Version::Resp2)),
            b"*4\r\n"
        );
        assert_eq!(
            written(|b| write_set_header(b, 5, Version::Resp3)),
            b"~5\r\n"
        );
        assert_eq!(
            written(|b| write_set_header(b, 5, Version::Resp2)),
            b"*5\r\n"
        );
        assert_eq!(
            written(|b| write_push_header(b, 3, Version::Resp3)),
            b">3\r\n"
        );
        assert_eq!(
            written(|b| write_push_header(b, 3, Version::Resp2)),
            b"*3\r\n"
        );
    }

    #[test]
    fn doubles() {
        let cases: [(f64, &[u8]); 9] = [
            (1.5, b"1.5"),
            (3.0, b"3"),
            (0.1, b"0.1"),
            (-2.25, b"-2.25"),
            (1e21, b"1000000000000000000000"),
            (f64::INFINITY, b"inf"),
            (f64::NEG_INFINITY, b"-inf"),
            (f64::NAN, b"nan"),
            (-0.0, b"-0"),
        ];
        for (d, repr) in cases {
            let resp3 = [b",", repr, b"\r\n"].concat();
            assert_eq!(written(|b| write_double(b, d, Version::Resp3)), resp3);
            let resp2 = written(|b| write_bulk(b, repr));
            assert_eq!(written(|b| write_double(b, d, Version::Resp2)), resp2);
        }
    }

    #[test]
    fn booleans_big_numbers_verbatim() {
        assert_eq!(
            written(|b| write_boolean(b, true, Version::Resp3)),
            b"#t\r\n"
        );
        assert_eq!(
            written(|b| write_boolean(b, false, Version::Resp3)),
            b"#f\r\n"
        );
        assert_eq!(
            written(|b| write_boolean(b, true, Version::Resp2)),
            b":1\r\n"
        );
        assert_eq!(
            written(|b| write_boolean(b, false, Version::Resp2)),
            b":0\r\n"
        );
        assert_eq!(
            written(|b| write_big_number(b, b"-123456789012345678901234567890", Version::Resp3)),
            b"(-123456789012345678901234567890\r\n"
        );
        assert_eq!(
            written(|b| write_big_number(b, b"12", Version::Resp2)),
            b"$2\r\n12\r\n"
        );
        assert_eq!(
            written(|b| write_verbatim(b, *b"txt", b"Some string", Version::Resp3)),
            b"=15\r\ntxt:Some string\r\n"
        );
        assert_eq!(
            written(|b| write_verbatim(b, *b"txt", b"Some string", Version::Resp2)),
            b"$11\r\nSome string\r\n"
        );
    }

    #[test]
    fn encode_command_writes_bulk_array() {
        assert_eq!(
            written(|b| encode_command(&[b"SET", b"k", b""], b)),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
        let args = [Bytes::from_static(b"GET"), Bytes::from_static(b"k")];
        assert_eq!(
            written(|b| encode_command_bytes(&args, b)),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
    }

    #[test]
    fn encode_resp3_keeps_types() {
        let frame = Frame::Array(vec![
            Frame::Map(vec![(bulk(b"k"), Frame::Integer(1))]),
            Frame::Set(vec![Frame::Boolean(true)]),
            Frame::Push(vec![Frame::Null, Frame::Double(2.5)]),
            Frame::BigNumber(Bytes::from_static(b"99")),
            Frame::Verbatim {
                format: *b"mkd",
                text: Bytes::from_static(b"# hi"),
            },
        ]);
        assert_eq!(
            encoded(&frame, Version::Resp3),
            b"*5\r\n%1\r\n$1\r\nk\r\n:1\r\n~1\r\n#t\r\n>2\r\n_\r\n,2.5\r\n(99\r\n=8\r\nmkd:# hi\r\n"
        );
    }

    #[test]
    fn encode_resp2_downgrades() {
        let frame = Frame::Array(vec![
            Frame::Map(vec![(bulk(b"k"), Frame::Integer(1))]),
            Frame::Set(vec![Frame::Boolean(true)]),
            Frame::Push(vec![Frame::Null, Frame::Double(2.5)]),
            Frame::BigNumber(Bytes::from_static(b"99")),
            Frame::Verbatim {
                format: *b"mkd",
                text: Bytes::from_static(b"# hi"),
            },
        ]);
        assert_eq!(
            encoded(&frame, Version::Resp2),
            b"*5\r\n*2\r\n$1\r\nk\r\n:1\r\n*1\r\n:1\r\n*2\r\n$-1\r\n$3\r\n2.5\r\n$2\r\n99\r\n$4\r\n# hi\r\n"
        );
    }

    #[test]
    fn errors_with_line_breaks() {
        let frame = Frame::Error(Bytes::from_static(b"ERR a\r\nb"));
        assert_eq!(encoded(&frame, Version::Resp3), b"!8\r\nERR a\r\nb\r\n");
        assert_eq!(encoded(&frame, Version::Resp2), b"-ERR a  b\r\n");
        let plain = Frame::Error(Bytes::from_static(b"ERR x"));
        assert_eq!(encoded(&plain, Version::Resp3), b"-ERR x\r\n");
    }

    #[test]
    fn format_u64_extremes() {
        let mut digits = [0; MAX_U64_DIGITS];
        assert_eq!(format_u64(0, &mut digits), b"0");
        assert_eq!(format_u64(u64::MAX, &mut digits), b"18446744073709551615");
    }
}
