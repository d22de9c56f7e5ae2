//! Splitting of inline command lines (`SET key "hello world"`), the way Redis's
//! `sdssplitargs` does it for inline requests and redis-cli for typed lines.
//!
//! The line comes straight off the network: it is read only through checked accesses.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::ops::Range;

use bytes::Bytes;

use crate::error::ProtocolError;

/// Split an inline command line exactly as Redis's `sdssplitargs` does (used by Redis for
/// inline commands and by redis-cli for typed lines).
///
/// - Arguments are separated by runs of whitespace (`isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`);
///   an unquoted argument ends at space, `\t`, `\n` or `\r`.
/// - In `"double quotes"`: `\xHH` (two hex digits) is that byte; `\n \r \t \b \a` are the
///   control characters; `\` before any other byte is that byte.
/// - In `'single quotes'` only `\'` is an escape.
/// - A closing quote must be followed by whitespace or the end of the line.
/// - As in C, a NUL byte ends the line (use `"\x00"` to pass one).
///
/// An empty or all-blank line gives an empty `Vec`.
///
/// ```
/// use protocol::inline::split_args;
///
/// let args = split_args(br#"SET "a key" '\x41' "\x41\n""#)?;
/// assert_eq!(args, [&b"SET"[..], b"a key", b"\\x41", b"A\n"]);
/// # Ok::<(), protocol::ProtocolError>(())
/// ```
///
/// # Errors
///
/// [`ProtocolError::UnbalancedQuotes`] for an unterminated quote or a closing quote followed
/// by something other than whitespace.
pub fn split_args(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let (mut bytes, mut ranges) = (Vec::new(), Vec::new());
    split_args_into(line, &mut bytes, &mut ranges)?;
    Ok(ranges
        .into_iter()
        .map(|range| Bytes::copy_from_slice(bytes.get(range).unwrap_or_default()))
        .collect())
}

/// [`split_args`] into reusable buffers: appends the unescaped arguments to `bytes` and
/// their positions in it to `ranges` (the server's request path, without an allocation per
/// argument).
///
/// # Errors
///
/// As [`split_args`]; `bytes` and `ranges` may then hold part of the line.
pub fn split_args_into(
    line: &[u8],
    bytes: &mut Vec<u8>,
    ranges: &mut Vec<Range<usize>>,
) -> Result<(), ProtocolError> {
    // `sdssplitargs` walks a C string: everything from the first NUL on is invisible to it.
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    // Reading past the end yields NUL, just like the C original reading the terminator.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);

    let mut p = 0;
    loop {
        while is_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Ok(());
        }

        let start = bytes.len();
        let mut quote = Quote::None;
        loop {
            let c = at(p);
            let mut done = false;
            match quote {
                Quote::Double => {
                    if c == b'\\'
                        && at(p + 1) == b'x'
                        && at(p + 2).is_ascii_hexdigit()
                        && at(p + 3).is_ascii_hexdigit()
                    {
                        bytes.push(hex_value(at(p + 2)) << 4 | hex_value(at(p + 3)));
                        p += 3;
                    } else if c == b'\\' && at(p + 1) != 0 {
                        p += 1;
                        bytes.push(match at(p) {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    } else if c == b'"' {
                        closing_quote_ok(at(p + 1))?;
                        done = true;
                    } else if c == 0 {
                        return Err(ProtocolError::UnbalancedQuotes);
                    } else {
                        bytes.push(c);
                    }
                }
                Quote::Single => {
                    if c == b'\\' && at(p + 1) == b'\'' {
                        p += 1;
                        bytes.push(b'\'');
                    } else if c == b'\'' {
                        closing_quote_ok(at(p + 1))?;
                        done = true;
                    } else if c == 0 {
                        return Err(ProtocolError::UnbalancedQuotes);
                    } else {
                        bytes.push(c);
                    }
                }
                Quote::None => match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => quote = Quote::Double,
                    b'\'' => quote = Quote::Single,
                    _ => bytes.push(c),
                },
            }
            if at(p) != 0 {
                p += 1;
            }
            if done {
                break;
            }
        }
        ranges.push(start..bytes.len());
    }
}

/// Which kind of quoted section the scanner is inside.
#[derive(Clone, Copy)]
enum Quote {
    None,
    Double,
    Single,
}

/// A closing quote must be followed by whitespace or the end of the line (`next == 0`).
fn closing_quote_ok(next: u8) -> Result<(), ProtocolError> {
    if next == 0 || is_space(next) {
        Ok(())
    } else {
        Err(ProtocolError::UnbalancedQuotes)
    }
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Value of an ASCII hex digit (the caller has checked `is_ascii_hexdigit`).
fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Vec<Vec<u8>> {
        match split_args(line) {
            Ok(args) => args.into_iter().map(|a| a.to_vec()).collect(),
            Err(err) => panic!("{line:?} failed: {err}"),
        }
    }

    fn v(args: &[&[u8]]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.to_vec()).collect()
    }

    fn unbalanced(line: &[u8]) -> bool {
        matches!(split_args(line), Err(ProtocolError::UnbalancedQuotes))
    }

    #[test]
    fn plain_words() {
        assert_eq!(split(b"SET key value"), v(&[b"SET", b"key", b"value"]));
        assert_eq!(split(b"  \t PING \r\n"), v(&[b"PING"]));
        assert_eq!(split(b"a\tb\rc\nd"), v(&[b"a", b"b", b"c", b"d"]));
    }

    #[test]
    fn empty_and_blank_lines() {
        assert!(split(b"").is_empty());
        assert!(split(b" \t\r\n\x0b\x0c").is_empty());
    }

    #[test]
    fn vertical_tab_and_form_feed_skip_as_blanks_but_do_not_end_a_word() {
        // sdssplitargs skips leading blanks with isspace() but only ends a bare word at
        // space, \n, \r, \t.
        assert_eq!(split(b"\x0ba\x0bb"), v(&[b"a\x0bb"]));
        assert_eq!(split(b"a\x0cb"), v(&[b"a\x0cb"]));
    }

    #[test]
    fn double_quotes_and_escapes() {
        assert_eq!(
            split(b"SET k \"hello world\""),
            v(&[b"SET", b"k", b"hello world"])
        );
        assert_eq!(
            split(b"\"\\n\\r\\t\\b\\a\\\\\\\"\\q\""),
            v(&[b"\n\r\t\x08\x07\\\"q"])
        );
        assert_eq!(split(b"\"\""), v(&[b""]));
        assert_eq!(split(b"\"\"\t\"\""), v(&[b"", b""]));
    }

    #[test]
    fn hex_escapes() {
        assert_eq!(split(b"\"\\x00\\xff\\x4A\""), v(&[b"\x00\xff\x4a"]));
        // Not two hex digits: the backslash escapes the `x` only.
        assert_eq!(split(b"\"\\x4\""), v(&[b"x4"]));
        assert_eq!(split(b"\"\\xzz\""), v(&[b"xzz"]));
    }

    #[test]
    fn quotes_inside_a_word_open_a_quoted_section() {
        assert_eq!(split(b"a\"b c\""), v(&[b"ab c"]));
        assert_eq!(split(b"a'b c'"), v(&[b"ab c"]));
    }

    #[test]
    fn single_quotes() {
        assert_eq!(split(b"'it\\'s' 'a\\nb'"), v(&[b"it's", b"a\\nb"]));
        assert_eq!(split(b"''"), v(&[b""]));
    }

    #[test]
    fn unbalanced_quotes() {
        assert!(unbalanced(b"\"abc"));
        assert!(unbalanced(b"'abc"));
        assert!(unbalanced(b"\"abc\\\""));
        assert!(unbalanced(b"\"abc\\"));
        assert!(unbalanced(b"'abc\\'"));
    }

    #[test]
    fn closing_quote_must_be_followed_by_space() {
        assert!(unbalanced(b"\"foo\"bar"));
        assert!(unbalanced(b"'foo'bar"));
        assert!(unbalanced(b"\"foo\"\"bar\""));
        assert_eq!(split(b"\"foo\"\x0bbar"), v(&[b"foo", b"bar"]));
    }

    #[test]
    fn raw_nul_ends_the_line_like_a_c_string() {
        assert_eq!(split(b"a b\0c d"), v(&[b"a", b"b"]));
        assert!(unbalanced(b"\"a\0\""));
        assert_eq!(split(b"\"a\"\0junk"), v(&[b"a"]));
    }

    #[test]
    fn high_bytes_are_ordinary() {
        assert_eq!(split(b"\xff\xfe x"), v(&[b"\xff\xfe", b"x"]));
    }
}
