//! tokio-util codecs: thin adapters from the pure parsers in [`crate::parse`] and the
//! writers in [`crate::encode`] to `Framed` streams.
//!
//! Decoding follows the `Decoder` contract: `Ok(None)` means "need more bytes" and leaves
//! the buffer alone (the parser remembers how far it got, so nothing is re-scanned); `Err`
//! means the stream is corrupt and must be closed. A complete frame is cut off the buffer
//! with `split_to(n).freeze()` and its payloads are slices of that chunk (zero copy). Note
//! that such a slice keeps the whole chunk alive: copy small values that are kept for long.

// Bytes from the network or disk: no indexing that could panic on them.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::argv::Argv;
use crate::encode::{encode, encode_command_bytes};
use crate::error::ProtocolError;
use crate::frame::{Frame, Version};
use crate::parse::{FrameParser, Limits, RawRequest, RequestParser, Scratch};

/// Most buffer space reserved at once for a pending bulk payload: a header that lies about
/// its length costs at most this much memory before the data actually arrives.
const MAX_RESERVE: usize = 1024 * 1024;

/// Reserves room for the next bytes of a payload whose length is known, in bounded steps.
fn reserve_pending(buf: &mut BytesMut, needed: usize) {
    if needed > 0 {
        buf.reserve(needed.min(MAX_RESERVE));
    }
}

/// Server side: decodes client requests. A request is either a RESP multibulk (`*N\r\n`
/// followed by N `$len\r\n<data>\r\n` bulk strings) or, if the first byte is not `*`, an
/// inline command line (terminated by `\n`; a trailing `\r` is stripped) split with
/// [`split_args`](crate::inline::split_args).
///
/// Two ways to decode:
/// - [`next_request`](Self::next_request) + [`argv`](Self::argv): an [`Argv`] view of the
///   request in place in the read buffer, with no allocation or reference count per request.
///   The server uses this.
/// - The [`Decoder`] impl, Item = `Vec<Bytes>`: the argv as owned values. Bulk payloads are
///   `Bytes` sliced (zero-copy) from the read buffer after `split_to(n).freeze()`.
///
/// Empty inline lines, `*0\r\n` and `*-1\r\n` (and any multibulk with N <= 0) produce no
/// request: they are skipped and decoding goes on.
///
/// Replies are encoded for the connection's [`Version`] (RESP2 until
/// [`set_version`](Self::set_version)).
#[derive(Debug)]
pub struct RequestCodec {
    parser: RequestParser,
    version: Version,
}

impl RequestCodec {
    /// A codec enforcing `limits`, encoding replies as RESP2.
    pub fn new(limits: Limits) -> Self {
        Self {
            parser: RequestParser::new(limits),
            version: Version::default(),
        }
    }

    /// Sets the protocol version replies are encoded with (after `HELLO`).
    pub fn set_version(&mut self, v: Version) {
        self.version = v;
    }

    /// The protocol version replies are encoded with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Applies or lifts the small-request bounds for clients that have not authenticated
    /// ([`RequestParser::set_unauthenticated`]).
    pub fn set_unauthenticated(&mut self, unauthenticated: bool) {
        self.parser.set_unauthenticated(unauthenticated);
    }

    /// Whether the small-request bounds for unauthenticated clients apply.
    pub fn is_unauthenticated(&self) -> bool {
        self.parser.is_unauthenticated()
    }

    /// Exchanges the decoder's argument storage between requests
    /// ([`RequestParser::swap_scratch`](crate::parse::RequestParser::swap_scratch)).
    pub fn swap_scratch(&mut self, scratch: Scratch) -> Scratch {
        self.parser.swap_scratch(scratch)
    }
}

impl RequestCodec {
    /// Finds the next request at the front of `src` without taking it off: the server's
    /// zero-copy path. Read its arguments with [`argv`](Self::argv), then drop its
    /// [`consumed`](RawRequest::consumed) bytes from `src` before calling this again.
    /// Empty requests are skipped (and dropped) here.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] if the stream is corrupt: reply, then close.
    pub fn next_request(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<RawRequest>, ProtocolError> {
        loop {
            let Some(request) = self.parser.advance(src)? else {
                reserve_pending(src, self.parser.bytes_needed(src.len()));
                return Ok(None);
            };
            if request.is_empty() {
                src.advance(request.consumed());
                continue;
            }
            return Ok(Some(request));
        }
    }

    /// The arguments of the request [`next_request`](Self::next_request) just returned;
    /// `src` is the same buffer, not yet advanced past it.
    pub fn argv<'a>(&'a self, request: &RawRequest, src: &'a [u8]) -> Argv<'a> {
        self.parser.argv(request, src)
    }
}

impl Default for RequestCodec {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder for RequestCodec {
    type Item = Vec<Bytes>;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(request) = self.next_request(src)? else {
            return Ok(None);
        };
        let bytes = src.split_to(request.consumed()).freeze();
        let argv = self.parser.argv(&request, &bytes);
        // Zero-copy for multibulk payloads: slices of the request's bytes.
        let args = argv
            .iter()
            .map(|arg| {
                if request.is_inline() {
                    Bytes::copy_from_slice(arg)
                } else {
                    bytes.slice_ref(arg)
                }
            })
            .collect();
        Ok(Some(args))
    }
}

impl<'a> Encoder<&'a Frame> for RequestCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: &'a Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        encode(frame, dst, self.version);
        Ok(())
    }
}

/// Client side: decodes any RESP2/RESP3 frame (replies, pushes); encodes requests.
///
/// Frames are encoded as RESP3 types unchanged, so that encoding then decoding preserves
/// the type; commands (`&[Bytes]`) are encoded as arrays of bulk strings.
#[derive(Debug)]
pub struct RespCodec {
    parser: FrameParser,
}

impl RespCodec {
    /// A codec enforcing `limits` on decoded frames.
    pub fn new(limits: Limits) -> Self {
        Self {
            parser: FrameParser::new(limits),
        }
    }
}

impl Default for RespCodec {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder for RespCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(raw) = self.parser.advance(src)? else {
            reserve_pending(src, self.parser.bytes_needed(src.len()));
            return Ok(None);
        };
        let bytes = src.split_to(raw.consumed()).freeze();
        Ok(Some(raw.into_frame(&bytes)))
    }
}

impl Encoder<Frame> for RespCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        encode(&frame, dst, Version::Resp3);
        Ok(())
    }
}

impl<'a> Encoder<&'a Frame> for RespCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: &'a Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        encode(frame, dst, Version::Resp3);
        Ok(())
    }
}

impl<'a> Encoder<&'a [Bytes]> for RespCodec {
    type Error = ProtocolError;

    fn encode(&mut self, args: &'a [Bytes], dst: &mut BytesMut) -> Result<(), ProtocolError> {
        encode_command_bytes(args, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all<D: Decoder>(codec: &mut D, buf: &mut BytesMut) -> Vec<D::Item>
    where
        D::Error: std::fmt::Debug,
    {
        let mut items = Vec::new();
        loop {
            match codec.decode(buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return items,
                Err(err) => panic!("decode failed: {err:?}"),
            }
        }
    }

    fn args(list: &[&'static [u8]]) -> Vec<Bytes> {
        list.iter().map(|a| Bytes::from_static(a)).collect()
    }

    #[test]
    fn request_codec_skips_empty_requests() {
        let mut codec = RequestCodec::default();
        let mut buf =
            BytesMut::from(&b"\r\n*0\r\n*-1\r\n\n   \r\nPING\r\n*-5\r\n*1\r\n$4\r\nPING\r\n\n"[..]);
        let items = decode_all(&mut codec, &mut buf);
        assert_eq!(items, vec![args(&[b"PING"]), args(&[b"PING"])]);
        assert!(buf.is_empty());
    }

    #[test]
    fn request_codec_version_and_replies() {
        let mut codec = RequestCodec::default();
        assert_eq!(codec.version(), Version::Resp2);
        let mut out = BytesMut::new();
        let frame = Frame::Map(vec![(Frame::Integer(1), Frame::Boolean(true))]);
        assert!(codec.encode(&frame, &mut out).is_ok());
        assert_eq!(&out[..], b"*2\r\n:1\r\n:1\r\n");
        codec.set_version(Version::Resp3);
        assert_eq!(codec.version(), Version::Resp3);
        out.clear();
        assert!(codec.encode(&frame, &mut out).is_ok());
        assert_eq!(&out[..], b"%1\r\n:1\r\n#t\r\n");
    }

    #[test]
    fn resp_codec_encodes_commands_and_frames() {
        let mut codec = RespCodec::default();
        let mut out = BytesMut::new();
        let command = args(&[b"SET", b"k", b"v"]);
        assert!(codec.encode(&command[..], &mut out).is_ok());
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
        out.clear();
        assert!(codec.encode(Frame::Boolean(true), &mut out).is_ok());
        assert!(codec.encode(&Frame::Null, &mut out).is_ok());
        assert_eq!(&out[..], b"#t\r\n_\r\n");
    }

    /// Checks that every payload of `frame` points into `chunk`.
    fn assert_shared(frame: &Frame, chunk: std::ops::Range<usize>) {
        match frame {
            Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) | Frame::BigNumber(b) => {
                let p = b.as_ptr() as usize;
                assert!(chunk.contains(&p), "payload copied");
            }
            Frame::Verbatim { text, .. } => assert!(chunk.contains(&(text.as_ptr() as usize))),
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                items.iter().for_each(|f| assert_shared(f, chunk.clone()));
            }
            Frame::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                assert_shared(k, chunk.clone());
                assert_shared(v, chunk.clone());
            }),
            Frame::Integer(_) | Frame::Null | Frame::Double(_) | Frame::Boolean(_) => {}
        }
    }

    fn address_range(buf: &BytesMut) -> std::ops::Range<usize> {
        let start = buf.as_ptr() as usize;
        start..start + buf.len()
    }

    #[test]
    fn decoded_payloads_share_the_read_buffer() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nfoo\r\n$5\r\nhello\r\n"[..]);
        let range = address_range(&buf);
        let argv = decode_all(&mut RequestCodec::default(), &mut buf);
        assert_eq!(argv, vec![args(&[b"foo", b"hello"])]);
        for arg in &argv[0] {
            assert!(range.contains(&(arg.as_ptr() as usize)));
        }

        let mut buf = BytesMut::from(
            &b"*4\r\n$3\r\nfoo\r\n+OK\r\n%1\r\n(12\r\n=7\r\ntxt:abc\r\n!3\r\nERR\r\n"[..],
        );
        let range = address_range(&buf);
        let frames = decode_all(&mut RespCodec::default(), &mut buf);
        assert_eq!(frames.len(), 1);
        assert_shared(&frames[0], range);
    }

    /// A bulk string of `LEN` bytes arriving one byte at a time.
    const LEN: usize = 8 * 1024 * 1024;

    fn feed_bytewise<D: Decoder>(codec: &mut D, input: &[u8]) -> (Vec<D::Item>, usize)
    where
        D::Error: std::fmt::Debug,
    {
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        let mut max_spare = 0;
        for &byte in input {
            buf.extend_from_slice(&[byte]);
            items.extend(decode_all(codec, &mut buf));
            max_spare = max_spare.max(buf.capacity() - buf.len());
        }
        assert!(buf.is_empty());
        (items, max_spare)
    }

    #[test]
    fn big_bulk_fed_bytewise_is_linear_and_reserves_in_bounded_steps() {
        let payload = vec![b'x'; LEN];
        let mut input = format!("*1\r\n${LEN}\r\n").into_bytes();
        input.extend_from_slice(&payload);
        input.extend_from_slice(b"\r\n");

        let mut codec = RequestCodec::default();
        let (items, max_spare) = feed_bytewise(&mut codec, &input);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].len(), 1);
        assert_eq!(items[0][0].len(), LEN);
        // Only headers and the final CRLF are ever looked at, never the payload.
        let examined = codec.parser.bytes_examined();
        assert!(examined < 64, "examined {examined} bytes");
        // Buffer growth is amortised doubling at most: never a reservation of the whole bulk.
        assert!(max_spare <= 2 * MAX_RESERVE + LEN / 2, "spare {max_spare}");

        let mut input = format!("${LEN}\r\n").into_bytes();
        input.extend_from_slice(&payload);
        input.extend_from_slice(b"\r\n");
        let mut codec = RespCodec::default();
        let (items, _) = feed_bytewise(&mut codec, &input);
        assert!(matches!(&items[..], [Frame::Bulk(b)] if b.len() == LEN));
        let examined = codec.parser.bytes_examined();
        assert!(examined < 64, "examined {examined} bytes");
    }

    #[test]
    fn lying_bulk_header_reserves_at_most_max_reserve() {
        let mut codec = RespCodec::default();
        let mut buf = BytesMut::from(&b"$536870912\r\nab"[..]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        assert!(buf.capacity() <= buf.len() + MAX_RESERVE);
        assert!(buf.capacity() >= buf.len() + MAX_RESERVE / 2);

        let mut codec = RequestCodec::default();
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\nab"[..]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        assert!(buf.capacity() <= buf.len() + MAX_RESERVE);
    }

    #[test]
    fn big_array_fed_bytewise_is_linear() {
        const ELEMENTS: usize = 200_000;
        let mut input = format!("*{ELEMENTS}\r\n").into_bytes();
        let mut request = format!("*{ELEMENTS}\r\n").into_bytes();
        for _ in 0..ELEMENTS {
            input.extend_from_slice(b":1\r\n");
            request.extend_from_slice(b"$1\r\nx\r\n");
        }

        let mut codec = RespCodec::default();
        let (items, _) = feed_bytewise(&mut codec, &input);
        assert!(matches!(&items[..], [Frame::Array(a)] if a.len() == ELEMENTS));
        // Every byte once, plus a second look at each CR that arrived before its LF.
        let examined = codec.parser.bytes_examined();
        assert!(
            examined <= input.len() + ELEMENTS + 1,
            "examined {examined}"
        );

        let mut codec = RequestCodec::default();
        let (items, _) = feed_bytewise(&mut codec, &request);
        assert!(matches!(&items[..], [argv] if argv.len() == ELEMENTS));
        let examined = codec.parser.bytes_examined();
        assert!(
            examined <= request.len() + ELEMENTS + 1,
            "examined {examined}"
        );
    }

    #[test]
    fn decode_eof_with_partial_frame_is_an_error() {
        let mut codec = RespCodec::default();
        let mut buf = BytesMut::from(&b"$3\r\nfo"[..]);
        assert!(matches!(codec.decode_eof(&mut buf), Err(err) if err.is_io()));
    }
}
