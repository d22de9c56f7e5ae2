//! Reply rendering, byte for byte as redis-cli 7 prints replies (`cliFormatReplyTTY`,
//! `cliFormatReplyRaw` in `redis-cli.c`).
//!
//! - [`tty`]: for people. `(integer) 1`, `"quoted \x00 escapes"`, `(nil)`, `(error) ERR ...`,
//!   aggregates numbered and indented (`1) 2) ...`; maps `1# "key" => value`, sets `1~ ...`),
//!   `(double) 1.5`, `(true)`, `(big number) 123`, verbatim strings as their text.
//! - [`raw`]: for scripts (the default when stdout is not a terminal). Values as they are,
//!   elements separated by a delimiter (newline), nothing for nil, errors as their text.

use std::io::Write as _;

use protocol::Frame;

/// How replies are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputMode {
    /// Human-readable, with types and quotes ([`tty`]).
    Tty,
    /// Raw values ([`raw`]) with the given delimiters.
    Raw {
        /// Between elements of an aggregate (`-d`, default `\n`).
        element_delimiter: Vec<u8>,
        /// After each reply (`-D`, default `\n`).
        reply_delimiter: Vec<u8>,
    },
}

impl OutputMode {
    /// Raw output with newline delimiters.
    pub fn raw() -> OutputMode {
        OutputMode::Raw {
            element_delimiter: b"\n".to_vec(),
            reply_delimiter: b"\n".to_vec(),
        }
    }

    /// Whether this is the human-readable mode.
    pub fn is_tty(&self) -> bool {
        matches!(self, OutputMode::Tty)
    }

    /// Renders `reply` to the command `argv` in this mode, with the trailing delimiter.
    ///
    /// As in redis-cli, replies of commands that return preformatted text (`INFO`,
    /// `CLIENT LIST`...) are printed raw in every mode, without a trailing delimiter.
    pub fn format(&self, argv: &[impl AsRef<[u8]>], reply: &Frame) -> Vec<u8> {
        if !prints_raw_text(argv) {
            return self.render(reply);
        }
        match self {
            OutputMode::Raw {
                element_delimiter, ..
            } => raw(reply, element_delimiter),
            OutputMode::Tty => raw(reply, b"\n"),
        }
    }

    /// Renders a frame that answers no command in particular (a RESP3 push) in this mode,
    /// with the trailing delimiter.
    pub fn render(&self, frame: &Frame) -> Vec<u8> {
        match self {
            OutputMode::Tty => tty(frame),
            OutputMode::Raw {
                element_delimiter,
                reply_delimiter,
            } => {
                let mut out = raw(frame, element_delimiter);
                out.extend_from_slice(reply_delimiter);
                out
            }
        }
    }
}

/// Commands whose reply is text meant to be read as is (redis-cli's `output_raw` list).
fn prints_raw_text(argv: &[impl AsRef<[u8]>]) -> bool {
    let is = |i: usize, name: &str| {
        argv.get(i)
            .is_some_and(|a| a.as_ref().eq_ignore_ascii_case(name.as_bytes()))
    };
    let argc = argv.len();
    is(0, "info")
        || is(0, "lolwut")
        || (is(0, "debug")
            && (is(1, "htstats") || is(1, "htstats-key") || is(1, "client-eviction")))
        || (is(0, "memory") && (is(1, "malloc-stats") || is(1, "doctor")))
        || (argc == 2 && is(0, "cluster") && (is(1, "nodes") || is(1, "info")))
        || (is(0, "client") && (is(1, "list") || is(1, "info")))
        || (argc == 3 && is(0, "latency") && is(1, "graph"))
        || (argc == 2 && is(0, "latency") && is(1, "doctor"))
        || (is(0, "proxy") && is(1, "info"))
}

/// Renders a reply for a terminal, ending with a newline.
///
/// ```
/// use bytes::Bytes;
/// use protocol::Frame;
///
/// let reply = Frame::Array(vec![Frame::Integer(1), Frame::Bulk(Bytes::from_static(b"a\n"))]);
/// assert_eq!(kvcli::render::tty(&reply), b"1) (integer) 1\n2) \"a\\n\"\n");
/// ```
pub fn tty(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    write_tty(&mut out, frame, "");
    out
}

fn write_tty(out: &mut Vec<u8>, frame: &Frame, prefix: &str) {
    match frame {
        Frame::Error(message) => {
            out.extend_from_slice(b"(error) ");
            out.extend_from_slice(message);
            out.push(b'\n');
        }
        Frame::Simple(text) | Frame::Verbatim { text, .. } => {
            out.extend_from_slice(text);
            out.push(b'\n');
        }
        Frame::Integer(n) => {
            let _ = writeln!(out, "(integer) {n}");
        }
        Frame::Double(d) => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(double_text(*d).as_bytes());
            out.push(b'\n');
        }
        Frame::Bulk(data) => {
            repr(out, data);
            out.push(b'\n');
        }
        Frame::Null => out.extend_from_slice(b"(nil)\n"),
        Frame::Boolean(b) => out.extend_from_slice(if *b { b"(true)\n" } else { b"(false)\n" }),
        Frame::BigNumber(digits) => {
            out.extend_from_slice(b"(big number) ");
            out.extend_from_slice(digits);
            out.push(b'\n');
        }
        Frame::Array(items) => write_tty_list(out, items, prefix, ')', "(empty array)"),
        Frame::Set(items) => write_tty_list(out, items, prefix, '~', "(empty set)"),
        // redis-cli numbers pushes like arrays (a `>` marker "would break scripts").
        Frame::Push(items) => write_tty_list(out, items, prefix, ')', "(empty push)"),
        Frame::Map(pairs) => write_tty_map(out, pairs, prefix),
    }
}

/// The prefix of the elements of an aggregate of `len` entries: as wide as the biggest
/// index plus `) `, so nested elements line up under the first one.
fn nested_prefix(prefix: &str, len: usize) -> (usize, String) {
    let width = len.to_string().len();
    (width, format!("{prefix}{}", " ".repeat(width + 2)))
}

fn write_tty_list(out: &mut Vec<u8>, items: &[Frame], prefix: &str, marker: char, empty: &str) {
    if items.is_empty() {
        out.extend_from_slice(empty.as_bytes());
        out.push(b'\n');
        return;
    }
    let (width, inner) = nested_prefix(prefix, items.len());
    for (i, item) in items.iter().enumerate() {
        // The first element goes on the line where the parent already wrote its index.
        let lead = if i == 0 { "" } else { prefix };
        let _ = write!(out, "{lead}{:>width$}{marker} ", i + 1);
        write_tty(out, item, &inner);
    }
}

fn write_tty_map(out: &mut Vec<u8>, pairs: &[(Frame, Frame)], prefix: &str) {
    if pairs.is_empty() {
        out.extend_from_slice(b"(empty hash)\n");
        return;
    }
    let (width, inner) = nested_prefix(prefix, pairs.len());
    for (i, (key, value)) in pairs.iter().enumerate() {
        let lead = if i == 0 { "" } else { prefix };
        let _ = write!(out, "{lead}{:>width$}# ", i + 1);
        write_tty(out, key, &inner);
        // The value follows the key on its line.
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        out.extend_from_slice(b" => ");
        if is_multiline(value) {
            out.push(b'\n');
            out.extend_from_slice(inner.as_bytes());
        }
        write_tty(out, value, &inner);
    }
}

/// Whether [`tty`] renders `frame` on several lines (redis-cli's `cliIsMultilineValueTTY`).
fn is_multiline(frame: &Frame) -> bool {
    match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => match items.as_slice() {
            [] => false,
            [only] => is_multiline(only),
            _ => true,
        },
        Frame::Map(pairs) => match pairs.as_slice() {
            [] => false,
            [(_, value)] => is_multiline(value),
            _ => true,
        },
        _ => false,
    }
}

/// Renders a reply raw: values as they are, aggregate elements separated by `delimiter`,
/// map entries as `key value`, nothing for nil, errors followed by a newline.
///
/// ```
/// use bytes::Bytes;
/// use protocol::Frame;
///
/// let reply = Frame::Array(vec![Frame::Integer(1), Frame::Null, Frame::Bulk(Bytes::from_static(b"a"))]);
/// assert_eq!(kvcli::render::raw(&reply, b"\n"), b"1\n\na");
/// ```
pub fn raw(frame: &Frame, delimiter: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_raw(&mut out, frame, delimiter);
    out
}

fn write_raw(out: &mut Vec<u8>, frame: &Frame, delimiter: &[u8]) {
    match frame {
        Frame::Null => {}
        Frame::Error(message) => {
            out.extend_from_slice(message);
            out.push(b'\n');
        }
        Frame::Simple(text)
        | Frame::Bulk(text)
        | Frame::Verbatim { text, .. }
        | Frame::BigNumber(text) => out.extend_from_slice(text),
        Frame::Boolean(b) => out.extend_from_slice(if *b { b"(true)" } else { b"(false)" }),
        Frame::Integer(n) => {
            let _ = write!(out, "{n}");
        }
        Frame::Double(d) => out.extend_from_slice(double_text(*d).as_bytes()),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(delimiter);
                }
                write_raw(out, item, delimiter);
            }
        }
        Frame::Map(pairs) => {
            for (i, (key, value)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(delimiter);
                }
                write_raw(out, key, delimiter);
                out.push(b' ');
                write_raw(out, value, delimiter);
            }
        }
    }
}

/// The text of a double as Redis writes it: `inf`, `-inf`, `nan`, else the shortest
/// decimal that reads back as the same value (`1.5`, `3`).
pub fn double_text(d: f64) -> String {
    if d.is_nan() {
        "nan".to_owned()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        d.to_string()
    }
}

/// Appends `bytes` double-quoted, with C escapes for quotes, backslashes and control
/// characters and `\xHH` for every byte outside printable ASCII (Redis's `sdscatrepr`).
pub fn repr(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn bulk(s: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s))
    }

    fn simple(s: &str) -> Frame {
        Frame::Simple(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn tty_str(frame: &Frame) -> String {
        String::from_utf8(tty(frame)).expect("utf-8")
    }

    fn raw_str(frame: &Frame) -> String {
        String::from_utf8(raw(frame, b"\n")).expect("utf-8")
    }

    #[test]
    fn tty_scalars() {
        assert_eq!(tty_str(&simple("OK")), "OK\n");
        assert_eq!(
            tty_str(&Frame::Error(Bytes::from_static(b"ERR syntax error"))),
            "(error) ERR syntax error\n"
        );
        assert_eq!(tty_str(&Frame::Integer(-2)), "(integer) -2\n");
        assert_eq!(tty_str(&Frame::Null), "(nil)\n");
        assert_eq!(tty_str(&bulk(b"hello")), "\"hello\"\n");
        assert_eq!(tty_str(&bulk(b"")), "\"\"\n");
        assert_eq!(tty_str(&Frame::Double(1.5)), "(double) 1.5\n");
        assert_eq!(tty_str(&Frame::Double(3.0)), "(double) 3\n");
        assert_eq!(tty_str(&Frame::Double(f64::INFINITY)), "(double) inf\n");
        assert_eq!(
            tty_str(&Frame::Double(f64::NEG_INFINITY)),
            "(double) -inf\n"
        );
        assert_eq!(tty_str(&Frame::Double(f64::NAN)), "(double) nan\n");
        assert_eq!(tty_str(&Frame::Boolean(true)), "(true)\n");
        assert_eq!(tty_str(&Frame::Boolean(false)), "(false)\n");
        assert_eq!(
            tty_str(&Frame::BigNumber(Bytes::from_static(
                b"-3492890328409238509324850943850943825024385"
            ))),
            "(big number) -3492890328409238509324850943850943825024385\n"
        );
        let verbatim = Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from_static(b"Some \"string\""),
        };
        assert_eq!(tty_str(&verbatim), "Some \"string\"\n");
    }

    #[test]
    fn tty_escapes_like_sdscatrepr() {
        let all = bulk(b"a\x00b\"c\\d\ne\rf\tg\x07h\x08i\x7f\xff\xc3\xa9~ ");
        assert_eq!(
            tty_str(&all),
            "\"a\\x00b\\\"c\\\\d\\ne\\rf\\tg\\ah\\bi\\x7f\\xff\\xc3\\xa9~ \"\n"
        );
    }

    #[test]
    fn tty_nested_arrays_indent_like_redis_cli() {
        // redis-cli --no-raw eval "return {1,{2,{3,{}}},'x'}" 0
        let reply = Frame::Array(vec![
            Frame::Integer(1),
            Frame::Array(vec![
                Frame::Integer(2),
                Frame::Array(vec![Frame::Integer(3), Frame::Array(vec![])]),
            ]),
            bulk(b"x"),
        ]);
        assert_eq!(
            tty_str(&reply),
            "1) (integer) 1\n\
             2) 1) (integer) 2\n   \
                2) 1) (integer) 3\n      \
                   2) (empty array)\n\
             3) \"x\"\n"
        );
    }

    #[test]
    fn tty_wide_indexes_are_right_aligned() {
        let items: Vec<Frame> = (1..=12).map(|i| bulk(i.to_string().as_bytes())).collect();
        let reply = Frame::Array(vec![bulk(b"get"), Frame::Array(items)]);
        let mut expected = String::from("1) \"get\"\n2)  1) \"1\"\n");
        for i in 2..=12 {
            expected.push_str(&format!("   {i:>2}) \"{i}\"\n"));
        }
        assert_eq!(tty_str(&reply), expected);
    }

    #[test]
    fn tty_maps_and_sets() {
        // redis-cli -3 --no-raw hello 3 (abridged)
        let hello = Frame::Map(vec![
            (bulk(b"server"), bulk(b"redis")),
            (bulk(b"proto"), Frame::Integer(3)),
            (bulk(b"modules"), Frame::Array(vec![])),
        ]);
        assert_eq!(
            tty_str(&hello),
            "1# \"server\" => \"redis\"\n2# \"proto\" => (integer) 3\n3# \"modules\" => (empty array)\n"
        );
        // A multi-line value starts on the next line, aligned under the key.
        let docs = Frame::Map(vec![(
            bulk(b"get"),
            Frame::Map(vec![
                (bulk(b"since"), bulk(b"1.0.0")),
                (
                    bulk(b"flags"),
                    Frame::Set(vec![simple("readonly"), simple("fast")]),
                ),
                (
                    bulk(b"one"),
                    Frame::Map(vec![(bulk(b"index"), Frame::Integer(1))]),
                ),
            ]),
        )]);
        assert_eq!(
            tty_str(&docs),
            "1# \"get\" => \n   1# \"since\" => \"1.0.0\"\n   2# \"flags\" => \n      1~ readonly\n      2~ fast\n   3# \"one\" => 1# \"index\" => (integer) 1\n"
        );
        assert_eq!(tty_str(&Frame::Map(vec![])), "(empty hash)\n");
        assert_eq!(tty_str(&Frame::Set(vec![])), "(empty set)\n");
        assert_eq!(
            tty_str(&Frame::Array(vec![
                Frame::Set(vec![bulk(b"a"), bulk(b"b")]),
                Frame::Null
            ])),
            "1) 1~ \"a\"\n   2~ \"b\"\n2) (nil)\n"
        );
    }

    #[test]
    fn tty_push_is_numbered_like_an_array() {
        let push = Frame::Push(vec![bulk(b"message"), bulk(b"ch"), bulk(b"hi")]);
        assert_eq!(tty_str(&push), "1) \"message\"\n2) \"ch\"\n3) \"hi\"\n");
        assert_eq!(tty_str(&Frame::Push(vec![])), "(empty push)\n");
    }

    #[test]
    fn raw_values() {
        assert_eq!(raw_str(&simple("OK")), "OK");
        assert_eq!(
            raw_str(&Frame::Error(Bytes::from_static(b"ERR x"))),
            "ERR x\n"
        );
        assert_eq!(raw_str(&Frame::Integer(7)), "7");
        assert_eq!(raw_str(&Frame::Null), "");
        assert_eq!(raw_str(&bulk(b"a\"b\x00")), "a\"b\0");
        assert_eq!(raw_str(&Frame::Double(2.5)), "2.5");
        assert_eq!(raw_str(&Frame::Boolean(true)), "(true)");
        assert_eq!(
            raw_str(&Frame::BigNumber(Bytes::from_static(
                b"12345678901234567890"
            ))),
            "12345678901234567890"
        );
        assert_eq!(
            raw_str(&Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"line\n")
            }),
            "line\n"
        );
        let nested = Frame::Array(vec![
            bulk(b"a"),
            Frame::Array(vec![Frame::Integer(1), Frame::Null]),
            Frame::Set(vec![bulk(b"s")]),
            Frame::Push(vec![]),
        ]);
        assert_eq!(raw_str(&nested), "a\n1\n\ns\n");
        let map = Frame::Map(vec![
            (bulk(b"k1"), bulk(b"v1")),
            (bulk(b"k2"), Frame::Integer(2)),
        ]);
        assert_eq!(raw_str(&map), "k1 v1\nk2 2");
        assert_eq!(
            String::from_utf8(raw(&map, b",")).expect("utf-8"),
            "k1 v1,k2 2"
        );
    }

    #[test]
    fn output_modes_and_raw_text_commands() {
        let info = Frame::Bulk(Bytes::from_static(b"# Server\r\nredis_version:7.2.0\r\n"));
        let tty = OutputMode::Tty;
        assert_eq!(
            tty.format(&["INFO"], &info),
            b"# Server\r\nredis_version:7.2.0\r\n"
        );
        assert_eq!(tty.format(&["client", "LIST"], &bulk(b"id=1\n")), b"id=1\n");
        assert_eq!(tty.format(&["GET", "k"], &bulk(b"v")), b"\"v\"\n");
        let raw_mode = OutputMode::raw();
        assert_eq!(raw_mode.format(&["GET", "k"], &bulk(b"v")), b"v\n");
        assert_eq!(raw_mode.format(&["GET", "k"], &Frame::Null), b"\n");
        assert_eq!(
            raw_mode.format(&["info"], &info),
            b"# Server\r\nredis_version:7.2.0\r\n"
        );
        let custom = OutputMode::Raw {
            element_delimiter: b",".to_vec(),
            reply_delimiter: b";".to_vec(),
        };
        let reply = Frame::Array(vec![bulk(b"a"), bulk(b"b")]);
        assert_eq!(custom.format(&["MGET"], &reply), b"a,b;");
        assert!(tty.is_tty() && !raw_mode.is_tty());
    }
}
