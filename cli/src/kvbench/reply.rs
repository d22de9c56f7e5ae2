//! A skip-parser for replies: it counts complete top-level replies (and how many of them are
//! errors) without building a [`protocol::Frame`] or copying payloads.
//!
//! kvbench only needs to know when each reply has arrived and whether it was an error, so
//! this checks the framing (type bytes, CRLFs, lengths against the protocol crate's limits)
//! and skips the content: bulk payloads are jumped over by length, scalar lines are not
//! interpreted. It is incremental like `protocol::parse::FrameParser`: fed the unconsumed
//! input, it consumes every complete element (and any part of a bulk payload) and remembers
//! how far it searched an incomplete line, so no byte is examined twice however the replies
//! are split across reads.
//!
//! A request may take several replies (`MULTI`, the queued commands and `EXEC` sent back to
//! back): [`ReplyScanner::grouped`] counts each run of that many replies as one request,
//! failed if any of them is an error.

use protocol::{Limits, ProtocolError};

/// An aggregate whose elements are still arriving.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// Elements still to come.
    left: u64,
    /// An attribute (`|`): when complete it stands for nothing, so its parent's count is not
    /// decremented.
    attribute: bool,
}

/// What one [`ReplyScanner::scan`] call found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of the input fully processed; the caller drops them before the next call.
    pub consumed: usize,
    /// Requests completed: top-level replies, or groups of them (see
    /// [`ReplyScanner::grouped`]).
    pub replies: u64,
    /// Of those, the ones with an error reply (`-...` or a `!` blob error).
    pub errors: u64,
}

/// Incremental reply counter; see the module docs.
#[derive(Debug)]
pub struct ReplyScanner {
    limits: Limits,
    /// Aggregates opened and not yet complete, innermost last.
    stack: Vec<Open>,
    /// Payload bytes of the current bulk string still to skip (its CRLF comes after).
    payload_left: usize,
    /// A bulk payload has been skipped; its CRLF is next.
    payload_crlf: bool,
    /// Whether the reply in progress is an error.
    reply_is_error: bool,
    /// Bytes of the current (incomplete) line already searched for LF.
    line_scanned: usize,
    /// The text of the first error reply seen, for the report.
    first_error: Option<String>,
    /// Top-level replies that make up one request (1 but for transactions).
    replies_per_request: u64,
    /// Replies of the current request received so far.
    replies_in_request: u64,
    /// Whether one of them was an error.
    request_failed: bool,
    /// Whether an error directly inside a top-level array (EXEC's result of one queued
    /// command) makes the reply an error.
    array_errors: bool,
}

impl Default for ReplyScanner {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ReplyScanner {
    /// A scanner enforcing `limits` (the protocol crate's defaults are Redis's).
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            stack: Vec::new(),
            payload_left: 0,
            payload_crlf: false,
            reply_is_error: false,
            line_scanned: 0,
            first_error: None,
            replies_per_request: 1,
            replies_in_request: 0,
            request_failed: false,
            array_errors: false,
        }
    }

    /// Counts every `replies` consecutive top-level replies as one request (at least 1),
    /// failed if any of them is an error: a `MULTI` ... `EXEC` sent back to back.
    #[must_use]
    pub fn grouped(mut self, replies: u64) -> Self {
        self.replies_per_request = replies.max(1);
        self
    }

    /// Also counts a reply as an error when an element of a top-level array is one, as
    /// EXEC reports a queued command that failed while the others ran.
    #[must_use]
    pub fn with_array_errors(mut self) -> Self {
        self.array_errors = true;
        self
    }

    /// The text of the first error reply seen (without the `-`), if any.
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    /// Whether the scanner is between requests (nothing partially read).
    pub fn is_idle(&self) -> bool {
        self.stack.is_empty()
            && !self.payload_crlf
            && self.payload_left == 0
            && self.replies_in_request == 0
    }

    /// Processes as much of `buf` (the unconsumed input, starting where the previous call's
    /// `consumed` ended) as possible.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] if the bytes are not RESP or break a limit; the stream is then
    /// unusable.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Scan, ProtocolError> {
        let mut scan = Scan::default();
        let mut pos = 0;
        loop {
            if self.payload_left > 0 {
                let take = self.payload_left.min(buf.len() - pos);
                pos += take;
                self.payload_left -= take;
                if self.payload_left > 0 {
                    break;
                }
            }
            if self.payload_crlf {
                match buf.get(pos..pos + 2) {
                    None => break,
                    Some(b"\r\n") => {
                        pos += 2;
                        self.payload_crlf = false;
                        self.complete(&mut scan);
                        continue;
                    }
                    Some(_) => return Err(ProtocolError::MissingBulkCrlf),
                }
            }
            let rest = buf.get(pos..).unwrap_or_default();
            let Some(line_len) = self.find_line(rest)? else {
                break;
            };
            let line = rest.get(..line_len).unwrap_or_default();
            pos += line_len + 2;
            self.line(line, buf.get(pos..).unwrap_or_default(), &mut scan)?;
        }
        scan.consumed = pos;
        Ok(scan)
    }

    /// Finds the CRLF ending the line at the start of `rest`, resuming the search where the
    /// last call stopped. Returns the line's length without its CRLF.
    fn find_line(&mut self, rest: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let from = self.line_scanned.min(rest.len());
        let tail = rest.get(from..).unwrap_or_default();
        let Some(found) = tail.iter().position(|&b| b == b'\n') else {
            self.line_scanned = rest.len();
            // A string line may be as long as a bulk string; any other line is a number.
            let limit = match rest.first() {
                Some(b'+' | b'-') => self.limits.max_bulk_len,
                _ => self.limits.max_inline_len,
            };
            if rest.len() > limit.saturating_add(3) {
                return Err(ProtocolError::LineTooLong);
            }
            return Ok(None);
        };
        self.line_scanned = 0;
        let lf = from + found;
        match lf.checked_sub(1).and_then(|cr| rest.get(cr)) {
            Some(b'\r') => Ok(Some(lf - 1)),
            _ => Err(ProtocolError::InvalidLineEnding),
        }
    }

    /// Handles one complete line (without CRLF); `after` is the input following it.
    fn line(&mut self, line: &[u8], after: &[u8], scan: &mut Scan) -> Result<(), ProtocolError> {
        let (&kind, content) = line
            .split_first()
            .ok_or(ProtocolError::UnknownFrameType(b'\r'))?;
        let top_level = self.stack.is_empty();
        if top_level {
            self.reply_is_error = false;
        }
        match kind {
            b'+' | b':' | b',' | b'#' | b'(' | b'_' => {}
            b'-' => self.error(content),
            b'$' | b'!' | b'=' => {
                let len = parse_len(content).ok_or(ProtocolError::InvalidBulkLength)?;
                if len == -1 && kind == b'$' {
                    self.complete(scan);
                    return Ok(());
                }
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&n| n <= self.limits.max_bulk_len)
                    .ok_or(ProtocolError::InvalidBulkLength)?;
                if kind == b'!' {
                    self.error(after.get(..len).unwrap_or(b"(blob error)"));
                }
                self.payload_left = len;
                self.payload_crlf = true;
                return Ok(());
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let len = parse_len(content).ok_or(ProtocolError::InvalidMultibulkLength)?;
                if len == -1 && kind == b'*' {
                    self.complete(scan);
                    return Ok(());
                }
                let len = u64::try_from(len)
                    .ok()
                    .filter(|&n| n <= self.limits.max_array_len as u64)
                    .ok_or(ProtocolError::InvalidMultibulkLength)?;
                let left = if matches!(kind, b'%' | b'|') {
                    len * 2
                } else {
                    len
                };
                let attribute = kind == b'|';
                if left == 0 {
                    // An empty aggregate is complete; an empty attribute is nothing at all.
                    if !attribute {
                        self.complete(scan);
                    }
                    return Ok(());
                }
                if self.stack.len() >= self.limits.max_depth {
                    return Err(ProtocolError::NestingTooDeep);
                }
                self.stack.push(Open { left, attribute });
                return Ok(());
            }
            other => return Err(ProtocolError::UnknownFrameType(other)),
        }
        self.complete(scan);
        Ok(())
    }

    /// Notes an error element: it makes the reply an error if it is the reply itself (or,
    /// with [`ReplyScanner::with_array_errors`], an element of a top-level array).
    fn error(&mut self, text: &[u8]) {
        let counts = match self.stack.len() {
            0 => true,
            1 => self.array_errors,
            _ => false,
        };
        if counts {
            self.reply_is_error = true;
            if self.first_error.is_none() {
                self.first_error = Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }

    /// An element is complete: count it in its parent, closing every aggregate it completes;
    /// at the top level, a reply is done.
    fn complete(&mut self, scan: &mut Scan) {
        while let Some(open) = self.stack.last_mut() {
            open.left -= 1;
            if open.left > 0 {
                return;
            }
            let attribute = open.attribute;
            self.stack.pop();
            if attribute {
                // The value the attribute annotates is still to come.
                return;
            }
        }
        if self.replies_per_request == 1 {
            scan.replies += 1;
            scan.errors += u64::from(self.reply_is_error);
            return;
        }
        self.request_failed |= self.reply_is_error;
        self.replies_in_request += 1;
        if self.replies_in_request == self.replies_per_request {
            scan.replies += 1;
            scan.errors += u64::from(self.request_failed);
            self.replies_in_request = 0;
            self.request_failed = false;
        }
    }
}

/// Parses a length: `-1` or a decimal without sign or leading zeros, at most 18 digits.
fn parse_len(s: &[u8]) -> Option<i64> {
    match s {
        b"-1" => Some(-1),
        b"0" => Some(0),
        [b'1'..=b'9', ..] if s.len() <= 18 && s.iter().all(u8::is_ascii_digit) => Some(
            s.iter()
                .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0')),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `input` in one call and in every two-way split, and checks that both agree.
    fn scan_all(input: &[u8]) -> (u64, u64) {
        let mut scanner = ReplyScanner::default();
        let whole = scanner.scan(input).expect("valid RESP");
        assert_eq!(whole.consumed, input.len(), "{input:?} not fully consumed");
        assert!(scanner.is_idle());
        for split in 0..input.len() {
            let mut scanner = ReplyScanner::default();
            let first = scanner.scan(&input[..split]).expect("valid prefix");
            let mut rest = input[first.consumed..].to_vec();
            let second = scanner.scan(&rest).expect("valid RESP");
            rest.drain(..second.consumed);
            assert!(rest.is_empty(), "{input:?} split at {split}");
            assert_eq!(
                (first.replies + second.replies, first.errors + second.errors),
                (whole.replies, whole.errors),
                "{input:?} split at {split}"
            );
        }
        (whole.replies, whole.errors)
    }

    #[test]
    fn every_resp2_type() {
        assert_eq!(scan_all(b"+OK\r\n"), (1, 0));
        assert_eq!(scan_all(b"-ERR no\r\n"), (1, 1));
        assert_eq!(scan_all(b":-42\r\n"), (1, 0));
        assert_eq!(scan_all(b"$3\r\nfoo\r\n"), (1, 0));
        assert_eq!(scan_all(b"$0\r\n\r\n"), (1, 0));
        assert_eq!(scan_all(b"$-1\r\n"), (1, 0));
        assert_eq!(scan_all(b"*-1\r\n"), (1, 0));
        assert_eq!(scan_all(b"*0\r\n"), (1, 0));
        assert_eq!(scan_all(b"*3\r\n:1\r\n*0\r\n$1\r\nx\r\n"), (1, 0));
        // A bulk payload holding CRLF and type bytes is skipped by length.
        assert_eq!(scan_all(b"$6\r\n+a\r\n-x\r\n"), (1, 0));
    }

    #[test]
    fn every_resp3_type() {
        assert_eq!(scan_all(b"_\r\n"), (1, 0));
        assert_eq!(scan_all(b",1.5\r\n"), (1, 0));
        assert_eq!(scan_all(b"#t\r\n"), (1, 0));
        assert_eq!(scan_all(b"(-123\r\n"), (1, 0));
        assert_eq!(scan_all(b"!6\r\nERR\r\nx\r\n"), (1, 1));
        assert_eq!(scan_all(b"=8\r\ntxt:a\r\nb\r\n"), (1, 0));
        assert_eq!(scan_all(b"%2\r\n+a\r\n:1\r\n+b\r\n%0\r\n"), (1, 0));
        assert_eq!(scan_all(b"~2\r\n#t\r\n_\r\n"), (1, 0));
        assert_eq!(scan_all(b">2\r\n+message\r\n$-1\r\n"), (1, 0));
        // Attributes annotate the value after them and are not replies themselves.
        assert_eq!(scan_all(b"|1\r\n+key\r\n*2\r\n:1\r\n:2\r\n:7\r\n"), (1, 0));
        assert_eq!(scan_all(b"|1\r\n+key\r\n+v\r\n-ERR x\r\n"), (1, 1));
        assert_eq!(
            scan_all(b"*2\r\n|1\r\n+ttl\r\n:3\r\n:1\r\n|0\r\n:2\r\n"),
            (1, 0)
        );
    }

    #[test]
    fn counts_replies_and_top_level_errors() {
        let input = b"+OK\r\n-ERR a\r\n$1\r\nx\r\n*2\r\n-ERR nested\r\n:1\r\n-WRONGTYPE b\r\n";
        assert_eq!(scan_all(input), (5, 2));
        let mut scanner = ReplyScanner::default();
        assert!(scanner.scan(input).is_ok());
        assert_eq!(scanner.first_error(), Some("ERR a"));
    }

    /// Scans `input` whole and split at every byte, with `configure` applied to each
    /// scanner; returns (requests, failed requests) and checks both ways agree.
    fn scan_requests(input: &[u8], configure: fn(ReplyScanner) -> ReplyScanner) -> (u64, u64) {
        let mut whole = configure(ReplyScanner::default());
        let scan = whole.scan(input).expect("valid RESP");
        assert_eq!(scan.consumed, input.len());
        for split in 0..input.len() {
            let mut scanner = configure(ReplyScanner::default());
            let first = scanner.scan(&input[..split]).expect("valid prefix");
            let second = scanner.scan(&input[first.consumed..]).expect("valid RESP");
            assert_eq!(
                (first.replies + second.replies, first.errors + second.errors),
                (scan.replies, scan.errors),
                "{input:?} split at {split}"
            );
        }
        (scan.replies, scan.errors)
    }

    #[test]
    fn grouped_replies_make_one_request() {
        // MULTI, 3 SETs, EXEC as redis-server 7.0.15 answers them.
        let ok = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n+OK\r\n+OK\r\n";
        let five = |s: ReplyScanner| s.grouped(5).with_array_errors();
        assert_eq!(scan_requests(ok, five), (1, 0));
        assert_eq!(scan_requests(&ok.repeat(3), five), (3, 0));
        // Ungrouped, the same bytes are five replies.
        assert_eq!(scan_requests(ok, |s| s), (5, 0));
        // A command rejected while queuing, then EXECABORT: one failed request, whose first
        // error is the rejection.
        let aborted = b"+OK\r\n-ERR wrong number of arguments for 'set' command\r\n+QUEUED\r\n\
                        -EXECABORT Transaction discarded because of previous errors.\r\n";
        let four = |s: ReplyScanner| s.grouped(4).with_array_errors();
        assert_eq!(scan_requests(aborted, four), (1, 1));
        let mut scanner = four(ReplyScanner::default());
        assert!(scanner.scan(aborted).is_ok());
        assert_eq!(
            scanner.first_error(),
            Some("ERR wrong number of arguments for 'set' command")
        );
        // A server without MULTI: errors for MULTI and EXEC, one failed request.
        let unknown = b"-ERR unknown command 'MULTI'\r\n+OK\r\n-ERR unknown command 'EXEC'\r\n";
        assert_eq!(scan_requests(unknown, |s| s.grouped(3)), (1, 1));
    }

    #[test]
    fn errors_inside_exec_count_when_asked() {
        // MULTI, SET k v, INCR k, EXEC: the INCR fails inside EXEC (redis-server 7.0.15).
        let exec = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n\
                     *2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n";
        assert_eq!(scan_requests(exec, |s| s.grouped(4)), (1, 0));
        assert_eq!(
            scan_requests(exec, |s| s.grouped(4).with_array_errors()),
            (1, 1)
        );
        let mut scanner = ReplyScanner::default().grouped(4).with_array_errors();
        assert!(scanner.scan(exec).is_ok());
        assert_eq!(
            scanner.first_error(),
            Some("ERR value is not an integer or out of range")
        );
        // Deeper errors are data, not failures of the request.
        let deep = b"*1\r\n*1\r\n-ERR nested\r\n";
        assert_eq!(scan_requests(deep, |s| s.with_array_errors()), (1, 0));
    }

    #[test]
    fn a_partial_group_is_not_idle() {
        let mut scanner = ReplyScanner::default().grouped(3);
        let scan = scanner.scan(b"+OK\r\n+QUEUED\r\n").expect("valid");
        assert_eq!((scan.consumed, scan.replies), (14, 0));
        assert!(!scanner.is_idle());
        assert_eq!(scanner.scan(b"*-1\r\n").expect("valid").replies, 1);
        assert!(scanner.is_idle());
    }

    #[test]
    fn incomplete_input_is_kept() {
        let mut scanner = ReplyScanner::default();
        let scan = scanner.scan(b"+OK\r\n$5\r\nhel").expect("valid");
        // The reply, the bulk header and the payload bytes so far are consumed.
        assert_eq!((scan.consumed, scan.replies), (12, 1));
        assert!(!scanner.is_idle());
        let scan = scanner.scan(b"lo\r").expect("valid");
        assert_eq!((scan.consumed, scan.replies), (2, 0));
        let scan = scanner.scan(b"\r\n:1").expect("valid");
        assert_eq!((scan.consumed, scan.replies), (2, 1));
        assert!(scanner.is_idle());
    }

    #[test]
    fn lines_are_not_rescanned() {
        let mut scanner = ReplyScanner::default();
        let mut input = b"+".to_vec();
        for _ in 0..1000 {
            input.push(b'a');
            assert_eq!(scanner.scan(&input).expect("valid").consumed, 0);
            assert_eq!(scanner.line_scanned, input.len());
        }
        input.extend_from_slice(b"\r\n");
        assert_eq!(scanner.scan(&input).expect("valid").replies, 1);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let cases: [&[u8]; 12] = [
            b"?x\r\n",
            b"\r\n",
            b"+a\n",
            b"$3\r\nfoox\r\n",
            b"$-2\r\n",
            b"$01\r\n",
            b"!-1\r\n",
            b"*-2\r\n",
            b"%-1\r\n",
            b"*x\r\n",
            b"$536870913\r\n",
            b"*16777217\r\n",
        ];
        for input in cases {
            assert!(
                ReplyScanner::default().scan(input).is_err(),
                "{input:?} accepted"
            );
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_bulk_len: 8,
            max_array_len: 3,
            max_inline_len: 16,
            max_depth: 2,
        };
        let mut scanner = ReplyScanner::new(limits);
        assert!(scanner.scan(b"*1\r\n*1\r\n*1\r\n").is_err());
        let mut scanner = ReplyScanner::new(limits);
        assert!(scanner.scan(&[b':'; 20]).is_err());
        let mut scanner = ReplyScanner::new(limits);
        assert!(scanner.scan(b"+123456789012").is_err());
        let mut scanner = ReplyScanner::new(limits);
        assert!(scanner.scan(b"*4\r\n").is_err());
        let mut scanner = ReplyScanner::new(limits);
        assert_eq!(
            scanner.scan(b"*1\r\n*0\r\n").map(|s| s.replies).ok(),
            Some(1)
        );
    }
}
