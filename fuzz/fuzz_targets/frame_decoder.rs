//! The client-side frame decoder (`RespCodec`: every RESP2/RESP3 type, what kvcli and
//! kvbench read from a server) on arbitrary bytes. Checks that it never panics, that a
//! stream fed in two pieces decodes as it does at once, and that a decoded frame, encoded
//! again, decodes to the same frame.
//!
//! The first byte picks the split point and tight limits, as in `request_decoder`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocol::{Frame, Limits, RespCodec};
use tokio_util::codec::{Decoder, Encoder};

/// Bytes of the pieces after piece `i`, which an error in piece `i` left unread.
fn unfed(pieces: &[&[u8]], i: usize) -> usize {
    pieces.iter().skip(i + 1).map(|piece| piece.len()).sum()
}

fn limits(tight: bool) -> Limits {
    if tight {
        Limits {
            max_bulk_len: 64,
            max_array_len: 8,
            max_inline_len: 32,
            max_depth: 4,
        }
    } else {
        Limits::default()
    }
}

/// Frames decoded from `pieces` arriving in turn, the error that stopped decoding (as
/// text), and the bytes left over.
fn decode(pieces: &[&[u8]], tight: bool) -> (Vec<Frame>, Option<String>, usize) {
    let mut codec = RespCodec::new(limits(tight));
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(err) => return (frames, Some(err.to_string()), buf.len() + unfed(pieces, i)),
            }
        }
    }
    (frames, None, buf.len())
}

/// NaN is not equal to itself: compare doubles by their text.
fn has_nan(frame: &Frame) -> bool {
    format!("{frame:?}").contains("NaN")
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let tight = control & 0x80 != 0;
    let split = usize::from(control & 0x7f).min(stream.len());
    let (head, tail) = stream.split_at(split);

    let whole = decode(&[stream], tight);
    let pieces = decode(&[head, tail], tight);
    if !whole.0.iter().any(has_nan) {
        assert_eq!(whole, pieces, "split at {split}");
    }

    for frame in &whole.0 {
        let encoded = encode(frame);
        let mut input = encoded.clone();
        let again = match RespCodec::default().decode(&mut input) {
            Ok(Some(again)) => again,
            other => panic!("{frame:?} encoded as {encoded:?} decodes as {other:?}"),
        };
        assert!(input.is_empty(), "{frame:?}: bytes left after one frame");
        // Encoding is a fixed point after one round.
        assert_eq!(encode(&again), encoded, "{frame:?}");
        // The decoder accepts CR and LF inside `+` lines (as hiredis does) and blob errors
        // may hold them, but the encoder writes both as single-line replies with those
        // bytes blanked out: such frames cannot come back unchanged.
        if !has_nan(frame) && !has_line_break(frame) {
            assert_eq!(&again, frame);
        }
    }
});

fn encode(frame: &Frame) -> BytesMut {
    let mut encoded = BytesMut::new();
    RespCodec::default()
        .encode(frame, &mut encoded)
        .expect("encoding into a buffer cannot fail");
    encoded
}

/// Whether a simple string or error somewhere in `frame` holds a CR or LF.
fn has_line_break(frame: &Frame) -> bool {
    let breaks = |bytes: &[u8]| bytes.iter().any(|&b| b == b'\r' || b == b'\n');
    match frame {
        Frame::Simple(text) | Frame::Error(text) => breaks(text),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            items.iter().any(has_line_break)
        }
        Frame::Map(pairs) => pairs
            .iter()
            .any(|(key, value)| has_line_break(key) || has_line_break(value)),
        _ => false,
    }
}
