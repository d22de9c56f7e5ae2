//! Protocol errors: the stream is corrupt or hostile and the connection must be closed.
//!
//! These are distinct from command errors (wrong arity, `WRONGTYPE`, ...), which the server
//! replies to and then carries on. Like Redis (`src/networking.c`), the server answers a
//! protocol error with [`ProtocolError::reply_line`] and then closes the connection.

use std::fmt;
use std::io;

/// Why a byte stream could not be decoded as RESP.
///
/// The `Display` text is what follows `Protocol error: ` in the reply; where Redis has a
/// message for the same condition, the text is Redis's word for word.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An inline command line longer than [`Limits::max_inline_len`](crate::Limits::max_inline_len).
    InlineTooBig,
    /// An inline command line with an unterminated quote, or a closing quote not followed by a space.
    UnbalancedQuotes,
    /// A `*<count>` line longer than [`Limits::max_inline_len`](crate::Limits::max_inline_len).
    MultibulkCountTooBig,
    /// A `*<count>` (or other aggregate length) that is not an integer or exceeds
    /// [`Limits::max_array_len`](crate::Limits::max_array_len).
    InvalidMultibulkLength,
    /// A `$<len>` line longer than [`Limits::max_inline_len`](crate::Limits::max_inline_len).
    BulkCountTooBig,
    /// An element of a request multibulk that does not start with `$`; holds the byte seen.
    ExpectedDollar(u8),
    /// A bulk length that is not an integer, is negative, or exceeds
    /// [`Limits::max_bulk_len`](crate::Limits::max_bulk_len).
    InvalidBulkLength,
    /// More than [`UNAUTHENTICATED_MAX_ARGS`](crate::parse::UNAUTHENTICATED_MAX_ARGS) arguments
    /// from a client that has not authenticated yet.
    UnauthenticatedMultibulkLength,
    /// A bulk longer than [`UNAUTHENTICATED_MAX_BULK_LEN`](crate::parse::UNAUTHENTICATED_MAX_BULK_LEN)
    /// from a client that has not authenticated yet.
    UnauthenticatedBulkLength,
    /// A bulk payload not followed by CRLF: the declared length does not match the data.
    MissingBulkCrlf,
    /// A line-framed reply element (`+`, `:`, ...) longer than the applicable limit.
    LineTooLong,
    /// A CR not followed by LF where a line terminator was expected.
    InvalidLineEnding,
    /// A frame starting with a byte that is not a RESP2/RESP3 type marker; holds the byte.
    UnknownFrameType(u8),
    /// A `:` frame that is not a canonical signed 64-bit integer.
    InvalidInteger,
    /// A `,` frame that is not a floating-point number.
    InvalidDouble,
    /// A `#` frame other than `#t` or `#f`.
    InvalidBoolean,
    /// A `(` frame that is not an optional `-` followed by decimal digits.
    InvalidBigNumber,
    /// A `_` frame with content before its CRLF.
    InvalidNull,
    /// A `=` frame whose payload does not start with a three-byte format and `:`.
    InvalidVerbatim,
    /// Aggregates nested deeper than [`Limits::max_depth`](crate::Limits::max_depth).
    NestingTooDeep,
    /// Reading from or writing to the transport failed.
    Io(io::Error),
}

impl ProtocolError {
    /// The reply Redis sends before closing the connection: `-ERR Protocol error: <display>\r\n`.
    ///
    /// CR and LF in the message (e.g. from [`ProtocolError::ExpectedDollar`]) are replaced by
    /// spaces, as Redis does, so the reply is always a single well-formed line.
    pub fn reply_line(&self) -> String {
        let message = self.to_string().replace(['\r', '\n'], " ");
        format!("-ERR Protocol error: {message}\r\n")
    }

    /// [`reply_line`](Self::reply_line) as the bytes to send: the same line, except that
    /// the byte in [`ProtocolError::ExpectedDollar`] is sent as it is (Redis's `%c`), not as
    /// the UTF-8 encoding of the character with that number.
    pub fn reply_bytes(&self) -> Vec<u8> {
        match self {
            Self::ExpectedDollar(byte) => {
                let byte = match *byte {
                    b'\r' | b'\n' => b' ',
                    other => other,
                };
                let mut line = b"-ERR Protocol error: expected '$', got '".to_vec();
                line.push(byte);
                line.extend_from_slice(b"'\r\n");
                line
            }
            _ => self.reply_line().into_bytes(),
        }
    }

    /// Whether this is a transport failure rather than malformed input (no reply can be sent).
    pub fn is_io(&self) -> bool {
        matches!(self, Self::Io(_))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::InlineTooBig => "too big inline request",
            Self::UnbalancedQuotes => "unbalanced quotes in request",
            Self::MultibulkCountTooBig => "too big mbulk count string",
            Self::InvalidMultibulkLength => "invalid multibulk length",
            Self::BulkCountTooBig => "too big bulk count string",
            Self::ExpectedDollar(byte) => {
                return write!(f, "expected '$', got '{}'", char::from(*byte));
            }
            Self::InvalidBulkLength => "invalid bulk length",
            Self::UnauthenticatedMultibulkLength => "unauthenticated multibulk length",
            Self::UnauthenticatedBulkLength => "unauthenticated bulk length",
            Self::MissingBulkCrlf => "expected CRLF after bulk payload",
            Self::LineTooLong => "too big line",
            Self::InvalidLineEnding => "expected LF after CR",
            Self::UnknownFrameType(byte) => {
                return write!(f, "unknown frame type byte 0x{byte:02x}");
            }
            Self::InvalidInteger => "invalid integer",
            Self::InvalidDouble => "invalid double",
            Self::InvalidBoolean => "invalid boolean",
            Self::InvalidBigNumber => "invalid big number",
            Self::InvalidNull => "invalid null",
            Self::InvalidVerbatim => "invalid verbatim string",
            Self::NestingTooDeep => "nesting too deep",
            Self::Io(err) => return err.fmt(f),
        };
        f.write_str(text)
    }
}

impl std::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for ProtocolError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_uses_redis_wording() {
        let cases: [(ProtocolError, &str); 20] = [
            (ProtocolError::InlineTooBig, "too big inline request"),
            (
                ProtocolError::UnbalancedQuotes,
                "unbalanced quotes in request",
            ),
            (
                ProtocolError::MultibulkCountTooBig,
                "too big mbulk count string",
            ),
            (
                ProtocolError::InvalidMultibulkLength,
                "invalid multibulk length",
            ),
            (ProtocolError::BulkCountTooBig, "too big bulk count string"),
            (ProtocolError::ExpectedDollar(b'x'), "expected '$', got 'x'"),
            (ProtocolError::InvalidBulkLength, "invalid bulk length"),
            (
                ProtocolError::UnauthenticatedMultibulkLength,
                "unauthenticated multibulk length",
            ),
            (
                ProtocolError::UnauthenticatedBulkLength,
                "unauthenticated bulk length",
            ),
            (
                ProtocolError::MissingBulkCrlf,
                "expected CRLF after bulk payload",
            ),
            (ProtocolError::LineTooLong, "too big line"),
            (ProtocolError::InvalidLineEnding, "expected LF after CR"),
            (
                ProtocolError::UnknownFrameType(0x07),
                "unknown frame type byte 0x07",
            ),
            (ProtocolError::InvalidInteger, "invalid integer"),
            (ProtocolError::InvalidDouble, "invalid double"),
            (ProtocolError::InvalidBoolean, "invalid boolean"),
            (ProtocolError::InvalidBigNumber, "invalid big number"),
            (ProtocolError::InvalidNull, "invalid null"),
            (ProtocolError::InvalidVerbatim, "invalid verbatim string"),
            (ProtocolError::NestingTooDeep, "nesting too deep"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
            assert!(!err.is_io());
            assert!(err.source().is_none());
        }
    }

    #[test]
    fn reply_line_is_a_single_error_line() {
        assert_eq!(
            ProtocolError::InvalidBulkLength.reply_line(),
            "-ERR Protocol error: invalid bulk length\r\n"
        );
        // Redis strips newlines from formatted errors so the reply stays one line.
        assert_eq!(
            ProtocolError::ExpectedDollar(b'\r').reply_line(),
            "-ERR Protocol error: expected '$', got ' '\r\n"
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(b'\n').reply_bytes(),
            b"-ERR Protocol error: expected '$', got ' '\r\n"
        );
        // Any other byte goes out raw, as Redis's `%c` sends it.
        assert_eq!(
            ProtocolError::ExpectedDollar(0xff).reply_bytes(),
            b"-ERR Protocol error: expected '$', got '\xff'\r\n"
        );
        assert_eq!(
            ProtocolError::InvalidBulkLength.reply_bytes(),
            ProtocolError::InvalidBulkLength.reply_line().as_bytes()
        );
    }

    #[test]
    fn io_errors_are_wrapped() {
        let err = ProtocolError::from(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
        assert!(err.is_io());
        assert_eq!(err.to_string(), "gone");
        assert!(err.source().is_some());
    }
}
