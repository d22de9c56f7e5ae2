//! Incremental RESP parsers: pure state machines over `&[u8]`, with no I/O and no `BytesMut`.
//!
//! Each parser is fed the same unconsumed input again and again as it grows and resumes
//! where it stopped, so every byte is examined a bounded number of times however the input
//! is split: a 100 MB bulk string arriving one byte at a time costs O(1) per call once its
//! header is read, and an array of a million elements arriving one byte at a time costs
//! linear time in total.
//!
//! While a frame is incomplete the parsers record only byte *ranges* into the input. When
//! it is complete they hand back a [`RawFrame`] / [`RawRequest`], which the caller turns into
//! a [`Frame`] / argv by slicing the frame's bytes (zero copy when those are the frozen read
//! buffer, as in [`crate::codec`]).
//!
//! Every length read from the wire is checked against [`Limits`] before anything is sized
//! from it, and preallocation is capped, so a lying header cannot make us allocate memory
//! the peer has not actually sent.
//!
//! Nothing here indexes the input directly: every access is a checked `get`, so hostile
//! bytes give an error or "incomplete", never a panic (the fuzz targets in `fuzz/` check it).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::mem;
use std::ops::Range;

use bytes::Bytes;

use crate::argv::Argv;
use crate::error::ProtocolError;
use crate::frame::Frame;
use crate::inline::split_args_into;

/// Default [`Limits::max_bulk_len`]: Redis's `proto-max-bulk-len` (512 MiB).
pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// Default [`Limits::max_array_len`]: 16 Mi elements per aggregate.
pub const DEFAULT_MAX_ARRAY_LEN: usize = 1 << 24;

/// Default [`Limits::max_inline_len`]: Redis's `PROTO_INLINE_MAX_SIZE` (64 KiB).
pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;

/// Default [`Limits::max_depth`]: far deeper than any real reply, shallow enough that the
/// recursive `Drop`, `Clone` and encoding of [`Frame`] cannot exhaust the stack.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Most arguments a request may have before its client has authenticated (Redis's bound):
/// a scanner that has no password cannot make the server buffer a large request.
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;

/// Longest bulk a request may carry before its client has authenticated (Redis's bound).
pub const UNAUTHENTICATED_MAX_BULK_LEN: usize = 16 * 1024;

/// Most elements reserved up front for an aggregate, whatever length its header declares:
/// beyond this, vectors grow only as elements actually arrive.
const MAX_PREALLOC: usize = 1024;

/// Bounds on what a peer may make the decoder buffer or allocate, to avoid denial of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string (and simple string, error or big number line) accepted, in bytes.
    pub max_bulk_len: usize,
    /// Most elements in one array, set or push, or pairs in one map (also the most
    /// arguments in one request).
    pub max_array_len: usize,
    /// Longest inline request line, length header (`*n`, `$n`) or numeric reply line, in bytes.
    pub max_inline_len: usize,
    /// Deepest nesting of aggregates in a reply; 1 allows an array of scalars.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: DEFAULT_MAX_BULK_LEN,
            max_array_len: DEFAULT_MAX_ARRAY_LEN,
            max_inline_len: DEFAULT_MAX_INLINE_LEN,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Parse one complete RESP2/RESP3 frame (any type) from the start of `buf`.
///
/// Returns `Ok(None)` if `buf` holds only part of a frame, else the frame and the number of
/// bytes it occupies. A pure function for tests and simple uses: the payloads are copied out
/// of `buf`. Streams should use [`FrameParser`] (or [`RespCodec`](crate::RespCodec)), which
/// does not re-parse the prefix each time more data arrives.
///
/// # Errors
///
/// A [`ProtocolError`] if the bytes are not valid RESP or break a limit.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Frame, usize)>, ProtocolError> {
    let Some(raw) = FrameParser::new(*limits).advance(buf)? else {
        return Ok(None);
    };
    let len = raw.consumed();
    // The parser only completes a frame that lies inside `buf`, so `len <= buf.len()`.
    let bytes = Bytes::copy_from_slice(buf.get(..len).unwrap_or(buf));
    Ok(Some((raw.into_frame(&bytes), len)))
}

/// Parse one complete client request (multibulk or inline line) from the start of `buf`.
///
/// Returns `Ok(None)` if incomplete, else the argv and the bytes consumed. The argv is empty
/// for requests a server skips (`*0`, `*-1`, blank inline lines). Copies, like [`parse`].
///
/// # Errors
///
/// A [`ProtocolError`] if the bytes are not a valid request or break a limit.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Vec<Bytes>, usize)>, ProtocolError> {
    let mut parser = RequestParser::new(*limits);
    let Some(raw) = parser.advance(buf)? else {
        return Ok(None);
    };
    Ok(Some((parser.argv(&raw, buf).to_vec(), raw.consumed())))
}

// ---------------------------------------------------------------------------------------
// Server side: requests.
// ---------------------------------------------------------------------------------------

/// Incremental parser for client requests, the server side of the protocol.
///
/// A request is a multibulk (`*N\r\n` then `N` bulk strings `$len\r\n<data>\r\n`) if it
/// starts with `*`, otherwise an inline line ending in `\n` (a `\r` before it is dropped),
/// split with [`split_args`](crate::inline::split_args). Error texts are Redis's.
///
/// Call [`advance`](Self::advance) with the unconsumed input each time more arrives. Between
/// calls the input may only grow at its end; after a request is returned, drop its
/// [`consumed`](RawRequest::consumed) bytes from the front before the next call.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    /// The client has not authenticated: [`UNAUTHENTICATED_MAX_ARGS`] and
    /// [`UNAUTHENTICATED_MAX_BULK_LEN`] apply on top of `limits`.
    unauthenticated: bool,
    /// Most arguments and longest bulk the fast path accepts: `limits`, lowered while
    /// unauthenticated (the slow path then names the bound that was passed).
    fast_max_args: usize,
    fast_max_bulk: usize,
    state: RequestState,
    /// Bulk strings still expected in the current multibulk.
    remaining: usize,
    /// Argument ranges of the request in progress or just returned: into the input for a
    /// multibulk, into `inline` for an inline line. Reused from request to request.
    args: Vec<Range<usize>>,
    /// The unescaped arguments of the last inline request.
    inline: Vec<u8>,
    examined: usize,
}

/// A request parser's reusable storage for arguments (their ranges, and the unescaped text of
/// inline requests). A server with many idle connections keeps these in a pool instead of
/// one per connection: see [`RequestParser::swap_scratch`].
#[derive(Debug, Default)]
pub struct Scratch {
    args: Vec<Range<usize>>,
    inline: Vec<u8>,
}

impl Scratch {
    /// Bytes of memory the storage holds.
    pub fn capacity_bytes(&self) -> usize {
        self.args.capacity() * std::mem::size_of::<Range<usize>>() + self.inline.capacity()
    }
}

/// Where the request parser stopped. Positions are offsets into the unconsumed input.
#[derive(Debug, Clone, Copy)]
enum RequestState {
    /// Nothing of the current request examined yet.
    Start,
    /// Inside an inline line; `scan` is where the search for `\n` resumes.
    Inline { scan: usize },
    /// Inside the `*N` line; `scan` is where the search for CR resumes.
    Count { scan: usize },
    /// Inside a `$len` line starting at `start`; `scan == start` until its `$` is checked.
    BulkHeader { start: usize, scan: usize },
    /// Waiting for a payload at `start` and its CRLF, ending at `end`.
    BulkData { start: usize, end: usize },
}

/// A complete request found by [`RequestParser::advance`]; its arguments stay in the parser
/// until the next call ([`RequestParser::argv`]).
#[derive(Debug, Clone, Copy)]
pub struct RawRequest {
    len: usize,
    inline: bool,
    empty: bool,
}

impl RawRequest {
    /// Bytes of input the request occupies, to be removed from the front of the buffer.
    pub fn consumed(&self) -> usize {
        self.len
    }

    /// Whether the request has no arguments (`*0`, `*-1`, a blank line): servers skip these.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// Whether it was an inline line (its arguments are unescaped copies, not slices of the
    /// input).
    pub fn is_inline(&self) -> bool {
        self.inline
    }
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            unauthenticated: false,
            fast_max_args: limits.max_array_len,
            fast_max_bulk: limits.max_bulk_len,
            state: RequestState::Start,
            remaining: 0,
            args: Vec::new(),
            inline: Vec::new(),
            examined: 0,
        }
    }

    /// Applies (or lifts) the bounds on requests from a client that has not authenticated:
    /// [`UNAUTHENTICATED_MAX_ARGS`] arguments, bulks of [`UNAUTHENTICATED_MAX_BULK_LEN`]
    /// bytes. Passing them is a protocol error, as in Redis.
    pub fn set_unauthenticated(&mut self, unauthenticated: bool) {
        self.unauthenticated = unauthenticated;
        (self.fast_max_args, self.fast_max_bulk) = if unauthenticated {
            (
                self.limits.max_array_len.min(UNAUTHENTICATED_MAX_ARGS),
                self.limits.max_bulk_len.min(UNAUTHENTICATED_MAX_BULK_LEN),
            )
        } else {
            (self.limits.max_array_len, self.limits.max_bulk_len)
        };
    }

    /// Whether the bounds for unauthenticated clients apply.
    pub fn is_unauthenticated(&self) -> bool {
        self.unauthenticated
    }

    /// Puts `scratch` in place of the parser's argument storage and returns the old one,
    /// between requests; in the middle of one (part of a request examined, its arguments
    /// so far in the storage) `scratch` is returned untouched. The arguments of the last
    /// request returned are gone afterwards.
    pub fn swap_scratch(&mut self, mut scratch: Scratch) -> Scratch {
        if matches!(self.state, RequestState::Start) {
            std::mem::swap(&mut self.args, &mut scratch.args);
            std::mem::swap(&mut self.inline, &mut scratch.inline);
            self.args.clear();
            self.inline.clear();
        }
        scratch
    }

    /// The arguments of `request`, which the last call to [`advance`](Self::advance)
    /// returned; `buf` is the input it was given (the request's bytes are still its prefix).
    /// Multibulk arguments are slices of `buf`: nothing is copied.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than the request.
    pub fn argv<'a>(&'a self, request: &RawRequest, buf: &'a [u8]) -> Argv<'a> {
        if request.inline {
            Argv::new(&self.inline, &self.args)
        } else {
            #[allow(clippy::indexing_slicing, reason = "documented caller contract")]
            Argv::new(&buf[..request.len], &self.args)
        }
    }

    /// Continue parsing `buf`, the unconsumed input (the previous call's input plus whatever
    /// arrived since). Returns `Ok(None)` until a whole request is there.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] if the input is not a valid request; the parser must not be used
    /// afterwards (the connection is to be closed).
    pub fn advance(&mut self, buf: &[u8]) -> Result<Option<RawRequest>, ProtocolError> {
        loop {
            match self.state {
                RequestState::Start => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if self.args.capacity() > MAX_PREALLOC {
                        // A request with many arguments does not pin its buffer for the
                        // connection's life.
                        self.args = Vec::new();
                    }
                    self.args.clear();
                    if first == b'*' {
                        if let Some(request) = self.whole_multibulk(buf) {
                            return Ok(Some(request));
                        }
                    }
                    self.examined += 1;
                    self.state = if first == b'*' {
                        RequestState::Count { scan: 1 }
                    } else {
                        RequestState::Inline { scan: 0 }
                    };
                }
                RequestState::Inline { scan } => return self.inline(buf, scan),
                RequestState::Count { mut scan } => {
                    let found = find_crlf(
                        buf,
                        1,
                        &mut scan,
                        self.limits.max_inline_len,
                        &mut self.examined,
                    )
                    .map_err(|e| {
                        e.into_error(
                            ProtocolError::MultibulkCountTooBig,
                            ProtocolError::InvalidMultibulkLength,
                        )
                    })?;
                    let Some(cr) = found else {
                        self.state = RequestState::Count { scan };
                        return Ok(None);
                    };
                    let count = parse_i64(buf.get(1..cr).unwrap_or_default())
                        .ok_or(ProtocolError::InvalidMultibulkLength)?;
                    let body = cr + 2;
                    // As Redis: a count <= 0 is an empty request, skipped by the caller.
                    let count = usize::try_from(count).unwrap_or(0);
                    if count == 0 {
                        return Ok(Some(self.finish(body, false)));
                    }
                    if count > self.limits.max_array_len {
                        return Err(ProtocolError::InvalidMultibulkLength);
                    }
                    if self.unauthenticated && count > UNAUTHENTICATED_MAX_ARGS {
                        return Err(ProtocolError::UnauthenticatedMultibulkLength);
                    }
                    self.remaining = count;
                    self.args.reserve(count.min(MAX_PREALLOC));
                    self.state = RequestState::BulkHeader {
                        start: body,
                        scan: body,
                    };
                }
                RequestState::BulkHeader { start, mut scan } => {
                    if scan == start {
                        let Some(&marker) = buf.get(start) else {
                            return Ok(None);
                        };
                        self.examined += 1;
                        if marker != b'$' {
                            return Err(ProtocolError::ExpectedDollar(marker));
                        }
                        scan = start + 1;
                    }
                    let found = find_crlf(
                        buf,
                        start + 1,
                        &mut scan,
                        self.limits.max_inline_len,
                        &mut self.examined,
                    )
                    .map_err(|e| {
                        e.into_error(
                            ProtocolError::BulkCountTooBig,
                            ProtocolError::InvalidBulkLength,
                        )
                    })?;
                    let Some(cr) = found else {
                        self.state = RequestState::BulkHeader { start, scan };
                        return Ok(None);
                    };
                    let len = parse_i64(buf.get(start + 1..cr).unwrap_or_default())
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|&n| n <= self.limits.max_bulk_len)
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    if self.unauthenticated && len > UNAUTHENTICATED_MAX_BULK_LEN {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    let data = cr + 2;
                    let end = payload_end(data, len).ok_or(ProtocolError::InvalidBulkLength)?;
                    self.state = RequestState::BulkData { start: data, end };
                }
                RequestState::BulkData { start, end } => {
                    if buf.len() < end {
                        return Ok(None);
                    }
                    let payload = start..end.saturating_sub(2);
                    expect_payload_crlf(buf, payload.end, &mut self.examined)?;
                    self.args.push(payload);
                    self.remaining = self.remaining.saturating_sub(1);
                    if self.remaining == 0 {
                        return Ok(Some(self.finish(end, false)));
                    }
                    self.state = RequestState::BulkHeader {
                        start: end,
                        scan: end,
                    };
                }
            }
        }
    }

    /// The fast path for the common case, a whole, well-formed multibulk already in `buf`:
    /// one pass over its headers with nothing kept between calls (each length is parsed
    /// while its line is scanned). Anything else (an incomplete request, a negative or
    /// zero count, a limit broken, a malformed header) returns `None` having changed
    /// nothing but `examined`, and the resumable state machine takes over from the start:
    /// it is the one that reports errors. A request is scanned this way at most once, when
    /// its first byte is seen, so decoding stays linear.
    fn whole_multibulk(&mut self, buf: &[u8]) -> Option<RawRequest> {
        let mut examined = 0;
        let request = self.scan_whole_multibulk(buf, &mut examined);
        self.examined += examined;
        if request.is_none() {
            self.args.clear();
        }
        request
    }

    fn scan_whole_multibulk(&mut self, buf: &[u8], examined: &mut usize) -> Option<RawRequest> {
        let (count, mut pos) = length_line(buf, 1, examined)?;
        if count == 0 || count > self.fast_max_args {
            return None;
        }
        self.args.reserve(count.min(MAX_PREALLOC));
        for _ in 0..count {
            *examined += 1;
            if *buf.get(pos)? != b'$' {
                return None;
            }
            let (len, data) = length_line(buf, pos + 1, examined)?;
            if len > self.fast_max_bulk {
                return None;
            }
            let end = data.checked_add(len)?;
            *examined += 2;
            if buf.get(end..end.checked_add(2)?)? != b"\r\n" {
                return None;
            }
            self.args.push(data..end);
            pos = end + 2;
        }
        Some(self.finish(pos, false))
    }

    /// How many more bytes the request in progress is known to need beyond `buffered`
    /// (0 if unknown): lets the codec reserve for a pending bulk payload.
    pub fn bytes_needed(&self, buffered: usize) -> usize {
        match self.state {
            RequestState::BulkData { end, .. } => end.saturating_sub(buffered),
            _ => 0,
        }
    }

    /// Total bytes this parser has inspected so far (type bytes, delimiter searches, CRLF
    /// checks; never a payload). Lets tests and benchmarks verify that decoding is linear.
    pub fn bytes_examined(&self) -> usize {
        self.examined
    }

    /// Searches for the `\n` ending an inline line, from `scan` on.
    fn inline(&mut self, buf: &[u8], scan: usize) -> Result<Option<RawRequest>, ProtocolError> {
        let window = buf.get(scan..).unwrap_or_default();
        let Some(offset) = window.iter().position(|&b| b == b'\n') else {
            self.examined += window.len();
            // The line is at least `buf.len()` long already: fail now rather than buffer more.
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::InlineTooBig);
            }
            self.state = RequestState::Inline { scan: buf.len() };
            return Ok(None);
        };
        self.examined += offset + 1;
        let newline = scan + offset;
        if newline > self.limits.max_inline_len {
            return Err(ProtocolError::InlineTooBig);
        }
        let line = buf.get(..newline).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.inline.clear();
        split_args_into(line, &mut self.inline, &mut self.args)?;
        Ok(Some(self.finish(newline + 1, true)))
    }

    /// Resets for the next request and describes the one just completed.
    fn finish(&mut self, len: usize, inline: bool) -> RawRequest {
        self.state = RequestState::Start;
        self.remaining = 0;
        RawRequest {
            len,
            inline,
            empty: self.args.is_empty(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Client side: any RESP2/RESP3 frame.
// ---------------------------------------------------------------------------------------

/// Incremental parser for any RESP2/RESP3 frame, the client side of the protocol.
///
/// `$-1` and `*-1` decode to [`Frame::Null`], a blob error `!` to [`Frame::Error`], and an
/// attribute `|` is parsed and discarded (the frame after it is returned). Same calling
/// convention as [`RequestParser`].
///
/// Partially parsed aggregates live on an explicit stack (never recursion), bounded by
/// [`Limits::max_depth`].
#[derive(Debug)]
pub struct FrameParser {
    limits: Limits,
    /// Offset of the next element's first byte, once `state` is `Type`.
    pos: usize,
    state: FrameState,
    /// Aggregates opened and not yet complete, innermost last.
    stack: Vec<Open>,
    examined: usize,
}

/// Where the frame parser stopped. Positions are offsets into the unconsumed input.
#[derive(Debug, Clone, Copy)]
enum FrameState {
    /// Expecting the type byte of an element at `pos`.
    Type,
    /// Inside the line of an element whose content starts at `start`; the search for CR
    /// resumes at `scan`.
    Line {
        kind: Kind,
        start: usize,
        scan: usize,
    },
    /// Waiting for a payload at `start` and its CRLF, ending at `end`.
    Blob {
        kind: BlobKind,
        start: usize,
        end: usize,
    },
}

/// What a type byte announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Simple,
    Error,
    Integer,
    Double,
    Boolean,
    Null,
    BigNumber,
    Blob(BlobKind),
    Aggregate(AggKind),
}

/// Length-prefixed string types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobKind {
    Bulk,
    Error,
    Verbatim,
}

/// Aggregate types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    Array,
    Map,
    Set,
    Push,
    Attribute,
}

impl Kind {
    fn from_type_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            b'+' => Self::Simple,
            b'-' => Self::Error,
            b':' => Self::Integer,
            b',' => Self::Double,
            b'#' => Self::Boolean,
            b'_' => Self::Null,
            b'(' => Self::BigNumber,
            b'$' => Self::Blob(BlobKind::Bulk),
            b'!' => Self::Blob(BlobKind::Error),
            b'=' => Self::Blob(BlobKind::Verbatim),
            b'*' => Self::Aggregate(AggKind::Array),
            b'%' => Self::Aggregate(AggKind::Map),
            b'~' => Self::Aggregate(AggKind::Set),
            b'>' => Self::Aggregate(AggKind::Push),
            b'|' => Self::Aggregate(AggKind::Attribute),
            _ => return None,
        })
    }

    /// Longest line content accepted: string lines may be as long as a bulk string, numbers
    /// and length headers as long as an inline request.
    fn max_line_len(self, limits: &Limits) -> usize {
        match self {
            Self::Simple | Self::Error | Self::BigNumber => limits.max_bulk_len,
            _ => limits.max_inline_len,
        }
    }
}

/// A parsed frame whose payloads are still ranges into the parsed bytes.
#[derive(Debug)]
enum Node {
    Simple(Range<usize>),
    Error(Range<usize>),
    Integer(i64),
    Bulk(Range<usize>),
    Null,
    Array(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Set(Vec<Node>),
    Double(f64),
    Boolean(bool),
    BigNumber(Range<usize>),
    Verbatim { format: [u8; 3], text: Range<usize> },
    Push(Vec<Node>),
}

impl Node {
    /// Builds the frame by slicing `buf`. Recursion depth is bounded by `Limits::max_depth`.
    fn into_frame(self, buf: &Bytes) -> Frame {
        let list = |nodes: Vec<Node>| nodes.into_iter().map(|n| n.into_frame(buf)).collect();
        match self {
            Self::Simple(r) => Frame::Simple(buf.slice(r)),
            Self::Error(r) => Frame::Error(buf.slice(r)),
            Self::Integer(n) => Frame::Integer(n),
            Self::Bulk(r) => Frame::Bulk(buf.slice(r)),
            Self::Null => Frame::Null,
            Self::Array(items) => Frame::Array(list(items)),
            Self::Map(pairs) => Frame::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into_frame(buf), v.into_frame(buf)))
                    .collect(),
            ),
            Self::Set(items) => Frame::Set(list(items)),
            Self::Double(d) => Frame::Double(d),
            Self::Boolean(b) => Frame::Boolean(b),
            Self::BigNumber(r) => Frame::BigNumber(buf.slice(r)),
            Self::Verbatim { format, text } => Frame::Verbatim {
                format,
                text: buf.slice(text),
            },
            Self::Push(items) => Frame::Push(list(items)),
        }
    }
}

/// An aggregate being filled.
#[derive(Debug)]
struct Open {
    /// Child elements still expected (`2n` for maps and attributes).
    remaining: usize,
    collect: Collect,
}

/// What an open aggregate does with its children.
#[derive(Debug)]
enum Collect {
    Array(Vec<Node>),
    Set(Vec<Node>),
    Push(Vec<Node>),
    Map {
        pairs: Vec<(Node, Node)>,
        key: Option<Node>,
    },
    /// An attribute: children are dropped and, once complete, it yields nothing, so the
    /// element after it takes its place.
    Attribute,
    /// An aggregate inside an attribute: children are dropped; it still counts as one
    /// element of its (discarded) parent.
    Discard,
}

impl Open {
    fn new(kind: AggKind, children: usize, inside_attribute: bool) -> Self {
        let prealloc = children.min(MAX_PREALLOC);
        let collect = match kind {
            AggKind::Attribute => Collect::Attribute,
            _ if inside_attribute => Collect::Discard,
            AggKind::Array => Collect::Array(Vec::with_capacity(prealloc)),
            AggKind::Set => Collect::Set(Vec::with_capacity(prealloc)),
            AggKind::Push => Collect::Push(Vec::with_capacity(prealloc)),
            AggKind::Map => Collect::Map {
                pairs: Vec::with_capacity(prealloc / 2),
                key: None,
            },
        };
        Self {
            remaining: children,
            collect,
        }
    }

    fn discards(&self) -> bool {
        matches!(self.collect, Collect::Attribute | Collect::Discard)
    }

    fn push(&mut self, node: Node) {
        self.remaining = self.remaining.saturating_sub(1);
        match &mut self.collect {
            Collect::Array(items) | Collect::Set(items) | Collect::Push(items) => items.push(node),
            Collect::Map { pairs, key } => match key.take() {
                Some(k) => pairs.push((k, node)),
                None => *key = Some(node),
            },
            Collect::Attribute | Collect::Discard => {}
        }
    }

    /// The finished aggregate, or `None` for an attribute (it stands for no element).
    fn finish(self) -> Option<Node> {
        match self.collect {
            Collect::Array(items) => Some(Node::Array(items)),
            Collect::Set(items) => Some(Node::Set(items)),
            Collect::Push(items) => Some(Node::Push(items)),
            Collect::Map { pairs, .. } => Some(Node::Map(pairs)),
            Collect::Attribute => None,
            // Placeholder: the discarding parent drops it.
            Collect::Discard => Some(Node::Null),
        }
    }
}

/// A complete frame found by [`FrameParser::advance`]: its payloads are ranges, not yet bytes.
#[derive(Debug)]
pub struct RawFrame {
    node: Node,
    len: usize,
}

impl RawFrame {
    /// Bytes of input the frame occupies (attributes before it included), to be removed from
    /// the front of the buffer.
    pub fn consumed(&self) -> usize {
        self.len
    }

    /// The frame, with payloads sliced from `buf` (no copy), which must begin with the
    /// [`consumed`](Self::consumed) bytes that were parsed.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`consumed`](Self::consumed).
    pub fn into_frame(self, buf: &Bytes) -> Frame {
        self.node.into_frame(buf)
    }
}

impl FrameParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pos: 0,
            state: FrameState::Type,
            stack: Vec::new(),
            examined: 0,
        }
    }

    /// Continue parsing `buf`, the unconsumed input (the previous call's input plus whatever
    /// arrived since). Returns `Ok(None)` until a whole frame is there.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] if the input is not valid RESP or breaks a limit; the parser must
    /// not be used afterwards.
    pub fn advance(&mut self, buf: &[u8]) -> Result<Option<RawFrame>, ProtocolError> {
        loop {
            let node = match self.state {
                FrameState::Type => {
                    let Some(&byte) = buf.get(self.pos) else {
                        return Ok(None);
                    };
                    self.examined += 1;
                    let kind =
                        Kind::from_type_byte(byte).ok_or(ProtocolError::UnknownFrameType(byte))?;
                    let start = self.pos + 1;
                    self.state = FrameState::Line {
                        kind,
                        start,
                        scan: start,
                    };
                    continue;
                }
                FrameState::Line {
                    kind,
                    start,
                    mut scan,
                } => {
                    let found = find_crlf(
                        buf,
                        start,
                        &mut scan,
                        kind.max_line_len(&self.limits),
                        &mut self.examined,
                    )
                    .map_err(|e| {
                        e.into_error(ProtocolError::LineTooLong, ProtocolError::InvalidLineEnding)
                    })?;
                    let Some(cr) = found else {
                        self.state = FrameState::Line { kind, start, scan };
                        return Ok(None);
                    };
                    self.pos = cr + 2;
                    self.state = FrameState::Type;
                    match self.line_element(kind, start..cr, buf)? {
                        Some(node) => node,
                        // A blob header or an aggregate opened: parse on.
                        None => continue,
                    }
                }
                FrameState::Blob { kind, start, end } => {
                    if buf.len() < end {
                        return Ok(None);
                    }
                    let payload = start..end.saturating_sub(2);
                    expect_payload_crlf(buf, payload.end, &mut self.examined)?;
                    self.pos = end;
                    self.state = FrameState::Type;
                    match kind {
                        BlobKind::Bulk => Node::Bulk(payload),
                        BlobKind::Error => Node::Error(payload),
                        BlobKind::Verbatim => verbatim(buf, payload)?,
                    }
                }
            };
            if let Some(root) = self.complete(node) {
                let len = mem::take(&mut self.pos);
                return Ok(Some(RawFrame { node: root, len }));
            }
        }
    }

    /// How many more bytes the frame in progress is known to need beyond `buffered`
    /// (0 if unknown): lets the codec reserve for a pending bulk payload.
    pub fn bytes_needed(&self, buffered: usize) -> usize {
        match self.state {
            FrameState::Blob { end, .. } => end.saturating_sub(buffered),
            _ => 0,
        }
    }

    /// Total bytes this parser has inspected so far (type bytes, delimiter searches, CRLF
    /// checks; never a payload). Lets tests and benchmarks verify that decoding is linear.
    pub fn bytes_examined(&self) -> usize {
        self.examined
    }

    /// Interprets a complete line (`content` is the range between the type byte and CR;
    /// `self.pos` is already past the CRLF). Returns the element if the line is the whole
    /// element; `None` if it was a header (blob or aggregate) and parsing goes on.
    fn line_element(
        &mut self,
        kind: Kind,
        content: Range<usize>,
        buf: &[u8],
    ) -> Result<Option<Node>, ProtocolError> {
        let line = buf.get(content.clone()).unwrap_or_default();
        let node = match kind {
            Kind::Simple => Node::Simple(content),
            Kind::Error => Node::Error(content),
            Kind::Integer => Node::Integer(parse_i64(line).ok_or(ProtocolError::InvalidInteger)?),
            Kind::Double => Node::Double(parse_double(line).ok_or(ProtocolError::InvalidDouble)?),
            Kind::Boolean => Node::Boolean(match line {
                b"t" => true,
                b"f" => false,
                _ => return Err(ProtocolError::InvalidBoolean),
            }),
            Kind::Null if line.is_empty() => Node::Null,
            Kind::Null => return Err(ProtocolError::InvalidNull),
            Kind::BigNumber if is_big_number(line) => Node::BigNumber(content),
            Kind::BigNumber => return Err(ProtocolError::InvalidBigNumber),
            Kind::Blob(blob) => {
                let len = parse_i64(line).ok_or(ProtocolError::InvalidBulkLength)?;
                if len == -1 && blob == BlobKind::Bulk {
                    return Ok(Some(Node::Null));
                }
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&n| n <= self.limits.max_bulk_len)
                    .ok_or(ProtocolError::InvalidBulkLength)?;
                let start = self.pos;
                let end = payload_end(start, len).ok_or(ProtocolError::InvalidBulkLength)?;
                self.state = FrameState::Blob {
                    kind: blob,
                    start,
                    end,
                };
                return Ok(None);
            }
            Kind::Aggregate(agg) => {
                let len = parse_i64(line).ok_or(ProtocolError::InvalidMultibulkLength)?;
                if len == -1 && agg == AggKind::Array {
                    return Ok(Some(Node::Null));
                }
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&n| n <= self.limits.max_array_len)
                    .ok_or(ProtocolError::InvalidMultibulkLength)?;
                if self.stack.len() >= self.limits.max_depth {
                    return Err(ProtocolError::NestingTooDeep);
                }
                let children = match agg {
                    AggKind::Map | AggKind::Attribute => len
                        .checked_mul(2)
                        .ok_or(ProtocolError::InvalidMultibulkLength)?,
                    _ => len,
                };
                let inside_attribute = self.stack.last().is_some_and(Open::discards);
                let open = Open::new(agg, children, inside_attribute);
                if children == 0 {
                    // Complete already; an empty attribute yields no element.
                    return Ok(open.finish());
                }
                self.stack.push(open);
                return Ok(None);
            }
        };
        Ok(Some(node))
    }

    /// Hands a finished element to the innermost open aggregate, closing every aggregate it
    /// completes. Returns the root frame when the outermost one is done.
    fn complete(&mut self, mut node: Node) -> Option<Node> {
        while let Some(mut open) = self.stack.pop() {
            open.push(node);
            if open.remaining > 0 {
                self.stack.push(open);
                return None;
            }
            // A finished attribute stands for nothing: its parent still waits.
            node = open.finish()?;
        }
        Some(node)
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------------------

/// Why a line could not be delimited; each caller maps it to its own error.
#[derive(Debug, Clone, Copy)]
enum LineError {
    TooLong,
    BadEnding,
}

impl LineError {
    fn into_error(self, too_long: ProtocolError, bad_ending: ProtocolError) -> ProtocolError {
        match self {
            Self::TooLong => too_long,
            Self::BadEnding => bad_ending,
        }
    }
}

/// Looks for the CR of the CRLF ending a line whose content starts at `content_start`,
/// resuming at `*scan` and leaving `*scan` where the next call should resume: bytes are
/// never searched twice (a CR still waiting for its LF is looked at once per call).
///
/// Fails as soon as the content is known to exceed `max_len`, whether or not the CR has
/// arrived, so the outcome does not depend on how the input was split.
fn find_crlf(
    buf: &[u8],
    content_start: usize,
    scan: &mut usize,
    max_len: usize,
    examined: &mut usize,
) -> Result<Option<usize>, LineError> {
    let window = buf.get(*scan..).unwrap_or_default();
    let Some(offset) = window.iter().position(|&b| b == b'\r') else {
        *examined += window.len();
        *scan += window.len();
        return if buf.len().saturating_sub(content_start) > max_len {
            Err(LineError::TooLong)
        } else {
            Ok(None)
        };
    };
    *examined += offset + 1;
    let cr = *scan + offset;
    if cr.saturating_sub(content_start) > max_len {
        return Err(LineError::TooLong);
    }
    match buf.get(cr + 1) {
        None => {
            *scan = cr;
            Ok(None)
        }
        Some(b'\n') => Ok(Some(cr)),
        Some(_) => Err(LineError::BadEnding),
    }
}

/// A non-negative decimal length (no sign, no leading zero, at most 18 digits) at `start`,
/// ended by CRLF: the length and the position after the CRLF. `None` for anything else,
/// complete or not (the state machine then decides).
#[inline]
fn length_line(buf: &[u8], start: usize, examined: &mut usize) -> Option<(usize, usize)> {
    const MAX_DIGITS: usize = 18;
    let mut value = 0u64;
    let mut at = start;
    loop {
        let byte = *buf.get(at)?;
        *examined += 1;
        if byte == b'\r' {
            break;
        }
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 || at - start == MAX_DIGITS {
            return None;
        }
        value = value * 10 + u64::from(digit);
        at += 1;
    }
    let digits = at - start;
    if digits == 0 || (digits > 1 && buf.get(start) == Some(&b'0')) || *buf.get(at + 1)? != b'\n' {
        return None;
    }
    *examined += 1;
    Some((usize::try_from(value).ok()?, at + 2))
}

/// End of a payload of `len` bytes at `start` plus its CRLF, if it fits in `usize`.
fn payload_end(start: usize, len: usize) -> Option<usize> {
    start.checked_add(len)?.checked_add(2)
}

/// Checks the CRLF after a payload ending at `payload_end` (the caller has checked the
/// two bytes are there).
fn expect_payload_crlf(
    buf: &[u8],
    payload_end: usize,
    examined: &mut usize,
) -> Result<(), ProtocolError> {
    *examined += 2;
    match buf.get(payload_end..) {
        Some([b'\r', b'\n', ..]) => Ok(()),
        _ => Err(ProtocolError::MissingBulkCrlf),
    }
}

/// A verbatim string's payload is `fmt:text` with a three-byte format.
fn verbatim(buf: &[u8], payload: Range<usize>) -> Result<Node, ProtocolError> {
    match buf.get(payload.clone()) {
        Some([a, b, c, b':', ..]) => Ok(Node::Verbatim {
            format: [*a, *b, *c],
            text: payload.start + 4..payload.end,
        }),
        _ => Err(ProtocolError::InvalidVerbatim),
    }
}

/// Parses a decimal `i64` as strictly as Redis's `string2ll`: an optional `-`, then digits
/// without leading zeros (`0` itself is fine, `-0` is not), no `+`, no spaces, no overflow.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [] | [b'0', ..] => return None,
        _ => {}
    }
    digits.iter().try_fold(0i64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(b - b'0');
        let acc = acc.checked_mul(10)?;
        // Accumulating negative values directly lets `i64::MIN` parse.
        if negative {
            acc.checked_sub(digit)
        } else {
            acc.checked_add(digit)
        }
    })
}

/// Parses a RESP3 double: `inf`, `-inf`, `nan` or anything Rust's `f64` parser accepts.
fn parse_double(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// A big number is an optional `-` followed by at least one decimal digit.
fn is_big_number(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(input: &[u8]) -> Frame {
        match parse(input, &Limits::default()) {
            Ok(Some((frame, len))) => {
                assert_eq!(len, input.len(), "{input:?} not fully consumed");
                frame
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn parse_err(input: &[u8], limits: &Limits) -> ProtocolError {
        match parse(input, limits) {
            Err(err) => err,
            other => panic!("{input:?}: expected an error, got {other:?}"),
        }
    }

    fn request_err(input: &[u8], limits: &Limits) -> ProtocolError {
        match parse_request(input, limits) {
            Err(err) => err,
            other => panic!("{input:?}: expected an error, got {other:?}"),
        }
    }

    fn request_ok(input: &[u8]) -> Vec<Bytes> {
        match parse_request(input, &Limits::default()) {
            Ok(Some((args, len))) => {
                assert_eq!(len, input.len(), "{input:?} not fully consumed");
                args
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    /// Every strict prefix of a valid frame is incomplete, not an error.
    fn assert_prefixes_incomplete(input: &[u8]) {
        for end in 0..input.len() {
            let prefix = &input[..end];
            assert!(
                matches!(parse(prefix, &Limits::default()), Ok(None)),
                "prefix {prefix:?} of {input:?}"
            );
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_ok(b"+OK\r\n"), Frame::Simple(b("OK")));
        assert_eq!(parse_ok(b"-ERR no\r\n"), Frame::Error(b("ERR no")));
        assert_eq!(parse_ok(b":-42\r\n"), Frame::Integer(-42));
        assert_eq!(parse_ok(b"$3\r\nfoo\r\n"), Frame::Bulk(b("foo")));
        assert_eq!(parse_ok(b"$0\r\n\r\n"), Frame::Bulk(b("")));
        assert_eq!(parse_ok(b"$-1\r\n"), Frame::Null);
        assert_eq!(parse_ok(b"*-1\r\n"), Frame::Null);
        assert_eq!(parse_ok(b"_\r\n"), Frame::Null);
        assert_eq!(parse_ok(b",1.5\r\n"), Frame::Double(1.5));
        assert_eq!(parse_ok(b",inf\r\n"), Frame::Double(f64::INFINITY));
        assert_eq!(parse_ok(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
        assert!(matches!(parse_ok(b",nan\r\n"), Frame::Double(d) if d.is_nan()));
        assert_eq!(parse_ok(b",1e3\r\n"), Frame::Double(1000.0));
        assert_eq!(parse_ok(b"#t\r\n"), Frame::Boolean(true));
        assert_eq!(parse_ok(b"#f\r\n"), Frame::Boolean(false));
        assert_eq!(parse_ok(b"(-123\r\n"), Frame::BigNumber(b("-123")));
        assert_eq!(parse_ok(b"!6\r\nERR\r\nx\r\n"), Frame::Error(b("ERR\r\nx")));
        assert_eq!(
            parse_ok(b"=8\r\ntxt:a\r\nb\r\n"),
            Frame::Verbatim {
                format: *b"txt",
                text: b("a\r\nb"),
            }
        );
    }

    #[test]
    fn aggregates() {
        assert_eq!(
            parse_ok(b"*3\r\n:1\r\n*0\r\n$1\r\nx\r\n"),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Array(vec![]),
                Frame::Bulk(b("x"))
            ])
        );
        assert_eq!(
            parse_ok(b"%2\r\n+a\r\n:1\r\n+b\r\n%0\r\n"),
            Frame::Map(vec![
                (Frame::Simple(b("a")), Frame::Integer(1)),
                (Frame::Simple(b("b")), Frame::Map(vec![])),
            ])
        );
        assert_eq!(
            parse_ok(b"~2\r\n#t\r\n_\r\n"),
            Frame::Set(vec![Frame::Boolean(true), Frame::Null])
        );
        assert_eq!(
            parse_ok(b">2\r\n+message\r\n$-1\r\n"),
            Frame::Push(vec![Frame::Simple(b("message")), Frame::Null])
        );
    }

    #[test]
    fn attributes_are_discarded() {
        assert_eq!(
            parse_ok(b"|1\r\n+key\r\n*2\r\n:1\r\n:2\r\n:7\r\n"),
            Frame::Integer(7)
        );
        assert_eq!(
            parse_ok(b"*2\r\n|1\r\n+ttl\r\n:3\r\n:1\r\n|0\r\n:2\r\n"),
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)])
        );
        // An attribute whose value is itself a map holding aggregates.
        assert_eq!(
            parse_ok(b"|1\r\n+a\r\n%1\r\n*1\r\n:1\r\n~0\r\n+x\r\n"),
            Frame::Simple(b("x"))
        );
    }

    #[test]
    fn prefixes_are_incomplete() {
        for input in [
            &b"$3\r\nfoo\r\n"[..],
            b"*2\r\n%1\r\n+a\r\n:1\r\n|1\r\n+k\r\n+v\r\n=7\r\ntxt:abc\r\n",
            b",1.25\r\n",
            b"_\r\n",
        ] {
            assert_prefixes_incomplete(input);
        }
    }

    #[test]
    fn frame_errors() {
        let cases: [(&[u8], &str); 21] = [
            (b"?x\r\n", "unknown frame type byte 0x3f"),
            (b":12a\r\n", "invalid integer"),
            (b":\r\n", "invalid integer"),
            (b":01\r\n", "invalid integer"),
            (b":9223372036854775808\r\n", "invalid integer"),
            (b",abc\r\n", "invalid double"),
            (b",\r\n", "invalid double"),
            (b"#x\r\n", "invalid boolean"),
            (b"#true\r\n", "invalid boolean"),
            (b"(12x\r\n", "invalid big number"),
            (b"(-\r\n", "invalid big number"),
            (b"_x\r\n", "invalid null"),
            (b"=3\r\ntxt\r\n", "invalid verbatim string"),
            (b"=4\r\ntxt-\r\n", "invalid verbatim string"),
            (b"$3\r\nfoox\r\n", "expected CRLF after bulk payload"),
            (b"$-2\r\n", "invalid bulk length"),
            (b"!-1\r\n", "invalid bulk length"),
            (b"*-2\r\n", "invalid multibulk length"),
            (b"%-1\r\n", "invalid multibulk length"),
            (b"*x\r\n", "invalid multibulk length"),
            (b"+a\rb\r\n", "expected LF after CR"),
        ];
        for (input, text) in cases {
            assert_eq!(
                parse_err(input, &Limits::default()).to_string(),
                text,
                "{input:?}"
            );
        }
    }

    #[test]
    fn frame_limits() {
        let limits = Limits {
            max_bulk_len: 8,
            max_array_len: 3,
            max_inline_len: 16,
            max_depth: 2,
        };
        assert!(matches!(parse(b"$8\r\n12345678\r\n", &limits), Ok(Some(_))));
        assert!(matches!(
            parse_err(b"$9\r\n", &limits),
            ProtocolError::InvalidBulkLength
        ));
        assert!(matches!(
            parse_err(b"*4\r\n", &limits),
            ProtocolError::InvalidMultibulkLength
        ));
        assert!(matches!(
            parse_err(b"%4\r\n", &limits),
            ProtocolError::InvalidMultibulkLength
        ));
        assert!(matches!(parse(b"*1\r\n*0\r\n", &limits), Ok(Some(_))));
        assert!(matches!(
            parse_err(b"*1\r\n*1\r\n*0\r\n", &limits),
            ProtocolError::NestingTooDeep
        ));
        assert!(matches!(
            parse_err(b"|1\r\n*1\r\n*0\r\n", &limits),
            ProtocolError::NestingTooDeep
        ));
        // A line too long fails before its CR arrives, and also when it has arrived.
        assert!(matches!(
            parse_err(&[b':'; 18], &limits),
            ProtocolError::LineTooLong
        ));
        assert!(matches!(
            parse_err(b":12345678901234567\r\n", &limits),
            ProtocolError::LineTooLong
        ));
        assert!(matches!(
            parse(b":1234567890123456\r\n", &limits),
            Ok(Some(_))
        ));
        // String lines are bounded by max_bulk_len instead.
        assert!(matches!(
            parse_err(b"+123456789\r\n", &limits),
            ProtocolError::LineTooLong
        ));
        assert!(matches!(parse(b"+12345678\r\n", &limits), Ok(Some(_))));
    }

    #[test]
    fn huge_declared_lengths_allocate_nothing_up_front() {
        let limits = Limits {
            max_array_len: usize::MAX,
            max_bulk_len: usize::MAX,
            ..Limits::default()
        };
        let mut parser = FrameParser::new(limits);
        assert!(matches!(
            parser.advance(b"*9223372036854775807\r\n"),
            Ok(None)
        ));
        assert!(parser.stack.iter().all(|open| match &open.collect {
            Collect::Array(items) => items.capacity() <= MAX_PREALLOC,
            _ => false,
        }));
        let mut parser = FrameParser::new(limits);
        assert!(matches!(
            parser.advance(b"%9223372036854775807\r\n"),
            Ok(None)
        ));
        assert!(parser.stack.iter().all(|open| match &open.collect {
            Collect::Map { pairs, .. } => pairs.capacity() <= MAX_PREALLOC,
            _ => false,
        }));
    }

    #[test]
    fn parse_i64_is_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"012",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"1.0",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn requests() {
        assert_eq!(
            request_ok(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            vec![b("GET"), b("k")]
        );
        assert_eq!(request_ok(b"*1\r\n$0\r\n\r\n"), vec![b("")]);
        assert_eq!(request_ok(b"GET k\r\n"), vec![b("GET"), b("k")]);
        assert_eq!(request_ok(b"GET \"a b\"\n"), vec![b("GET"), b("a b")]);
        // Skipped requests parse to an empty argv.
        for empty in [
            &b"*0\r\n"[..],
            b"*-1\r\n",
            b"*-7\r\n",
            b"\r\n",
            b"\n",
            b"  \t\r\n",
        ] {
            assert!(request_ok(empty).is_empty(), "{empty:?}");
        }
    }

    #[test]
    fn request_errors() {
        let cases: [(&[u8], &str); 11] = [
            (b"*x\r\n", "invalid multibulk length"),
            (b"*1\rx", "invalid multibulk length"),
            (b"*16777217\r\n", "invalid multibulk length"),
            (b"*1\r\n:1\r\n", "expected '$', got ':'"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$x\r\n", "invalid bulk length"),
            (b"*1\r\n$1\rx", "invalid bulk length"),
            (b"*1\r\n$536870913\r\n", "invalid bulk length"),
            (b"*1\r\n$1\r\nab\r\n", "expected CRLF after bulk payload"),
            (b"GET \"k\n", "unbalanced quotes in request"),
            (b"GET 'k'x\r\n", "unbalanced quotes in request"),
        ];
        for (input, text) in cases {
            assert_eq!(
                request_err(input, &Limits::default()).to_string(),
                text,
                "{input:?}"
            );
        }
    }

    #[test]
    fn request_limits() {
        let limits = Limits {
            max_bulk_len: 4,
            max_array_len: 2,
            max_inline_len: 8,
            max_depth: 1,
        };
        assert!(matches!(
            parse_request(b"*2\r\n$4\r\nabcd\r\n$0\r\n\r\n", &limits),
            Ok(Some(_))
        ));
        assert!(matches!(
            request_err(b"*3\r\n", &limits),
            ProtocolError::InvalidMultibulkLength
        ));
        assert!(matches!(
            request_err(b"*1\r\n$5\r\n", &limits),
            ProtocolError::InvalidBulkLength
        ));
        // Header lines: too long without a CR, and too long with one.
        assert!(matches!(
            request_err(b"*000000000", &limits),
            ProtocolError::MultibulkCountTooBig
        ));
        assert!(matches!(
            request_err(b"*000000000\r\n", &limits),
            ProtocolError::MultibulkCountTooBig
        ));
        assert!(matches!(
            request_err(b"*1\r\n$000000000", &limits),
            ProtocolError::BulkCountTooBig
        ));
        assert!(matches!(
            request_err(b"*1\r\n$000000000\r\n", &limits),
            ProtocolError::BulkCountTooBig
        ));
        // Inline lines: up to 8 bytes before the newline are fine.
        assert!(matches!(parse_request(b"12345678\n", &limits), Ok(Some(_))));
        assert!(matches!(
            parse_request(b"1234567\r\n", &limits),
            Ok(Some(_))
        ));
        assert!(matches!(
            request_err(b"123456789", &limits),
            ProtocolError::InlineTooBig
        ));
        assert!(matches!(
            request_err(b"123456789\n", &limits),
            ProtocolError::InlineTooBig
        ));
        assert!(matches!(parse_request(b"12345678", &limits), Ok(None)));
    }

    #[test]
    fn request_prefixes_are_incomplete() {
        for input in [&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"[..], b"GET k\r\n"] {
            for end in 0..input.len() {
                assert!(matches!(
                    parse_request(&input[..end], &Limits::default()),
                    Ok(None)
                ));
            }
        }
    }

    #[test]
    fn parsers_resume_without_rescanning() {
        let input = b"*3\r\n+hello\r\n:12345\r\n$5\r\nworld\r\n";
        let mut parser = FrameParser::new(Limits::default());
        for end in 0..input.len() {
            assert!(matches!(parser.advance(&input[..end]), Ok(None)));
        }
        assert!(matches!(parser.advance(input), Ok(Some(_))));
        // Each byte at most once, plus one re-look at a CR per header fed before its LF.
        assert!(
            parser.bytes_examined() <= input.len() + 5,
            "{}",
            parser.bytes_examined()
        );

        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let mut parser = RequestParser::new(Limits::default());
        for end in 0..input.len() {
            assert!(matches!(parser.advance(&input[..end]), Ok(None)));
        }
        assert!(matches!(parser.advance(input), Ok(Some(_))));
        assert!(
            parser.bytes_examined() <= input.len() + 3,
            "{}",
            parser.bytes_examined()
        );
    }

    #[test]
    fn argument_storage_is_exchanged_between_requests_only() {
        let mut parser = RequestParser::new(Limits::default());
        let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let request = parser.advance(set).expect("valid").expect("whole");
        assert_eq!(parser.argv(&request, set).len(), 3);
        // Between requests: the storage moves out (with its room) and a new one moves in.
        let taken = parser.swap_scratch(Scratch::default());
        assert!(taken.capacity_bytes() >= 3 * std::mem::size_of::<Range<usize>>());
        let inline = b"ECHO \"a b\"\r\n";
        let request = parser.advance(inline).expect("valid").expect("whole");
        assert_eq!(parser.argv(&request, inline).get(1), Some(&b"a b"[..]));
        // In the middle of a request (its first arguments are in the storage) the storage
        // stays, and the request completes as if nothing happened.
        let refused = parser.swap_scratch(taken);
        assert!(refused.capacity_bytes() > 0, "handed back unused");
        let half = &set[..set.len() - 6];
        assert!(parser.advance(half).expect("valid").is_none());
        drop(parser.swap_scratch(refused));
        let request = parser.advance(set).expect("valid").expect("whole");
        let argv = parser.argv(&request, set);
        assert_eq!(
            (argv.get(0), argv.get(1), argv.get(2)),
            (Some(&b"SET"[..]), Some(&b"k"[..]), Some(&b"v"[..]))
        );
    }

    /// Runs `parser` over `input` whole and, in a fresh parser, fed one byte more at a
    /// time: both paths must reach the same outcome.
    fn outcome(unauthenticated: bool, input: &[u8]) -> Result<usize, String> {
        let whole = {
            let mut parser = RequestParser::new(Limits::default());
            parser.set_unauthenticated(unauthenticated);
            parser.advance(input)
        };
        let mut parser = RequestParser::new(Limits::default());
        parser.set_unauthenticated(unauthenticated);
        let mut bytewise = Ok(None);
        for end in 1..=input.len() {
            bytewise = parser.advance(&input[..end]);
            if !matches!(bytewise, Ok(None)) {
                break;
            }
        }
        let simplify = |r: Result<Option<RawRequest>, ProtocolError>| match r {
            Ok(Some(request)) => Ok(request.consumed()),
            Ok(None) => Err("incomplete".to_owned()),
            Err(err) => Err(err.to_string()),
        };
        let (whole, bytewise) = (simplify(whole), simplify(bytewise));
        assert_eq!(whole, bytewise, "{input:?}");
        whole
    }

    fn multibulk(args: usize, bulk_len: usize) -> Vec<u8> {
        let mut out = format!("*{args}\r\n").into_bytes();
        for _ in 0..args {
            out.extend_from_slice(format!("${bulk_len}\r\n").as_bytes());
            out.extend(std::iter::repeat_n(b'x', bulk_len));
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn unauthenticated_clients_may_send_only_small_requests() {
        let at_bounds = multibulk(UNAUTHENTICATED_MAX_ARGS, 3);
        assert_eq!(outcome(true, &at_bounds), Ok(at_bounds.len()));
        let big_bulk = multibulk(2, UNAUTHENTICATED_MAX_BULK_LEN);
        assert_eq!(outcome(true, &big_bulk), Ok(big_bulk.len()));

        let many = multibulk(UNAUTHENTICATED_MAX_ARGS + 1, 3);
        assert_eq!(
            outcome(true, &many),
            Err("unauthenticated multibulk length".to_owned())
        );
        let too_long = multibulk(2, UNAUTHENTICATED_MAX_BULK_LEN + 1);
        assert_eq!(
            outcome(true, &too_long),
            Err("unauthenticated bulk length".to_owned())
        );
        // The header is refused before its payload arrives.
        let header_only = format!("*2\r\n$3\r\nSET\r\n${}\r\n", 1 << 20);
        assert_eq!(
            outcome(true, header_only.as_bytes()),
            Err("unauthenticated bulk length".to_owned())
        );
        // Lengths that are invalid for everyone keep their own error.
        assert_eq!(
            outcome(true, b"*-5x\r\n"),
            Err("invalid multibulk length".to_owned())
        );
        assert_eq!(
            outcome(true, b"*1\r\n$-3\r\n"),
            Err("invalid bulk length".to_owned())
        );

        // Lifted after authentication.
        assert_eq!(outcome(false, &many), Ok(many.len()));
        assert_eq!(outcome(false, &too_long), Ok(too_long.len()));
        let mut parser = RequestParser::new(Limits::default());
        parser.set_unauthenticated(true);
        parser.set_unauthenticated(false);
        assert!(!parser.is_unauthenticated());
        assert!(matches!(parser.advance(&many), Ok(Some(_))));
    }
}
