//! The server's request decoder (`RequestCodec`: multibulk and inline requests) on
//! arbitrary bytes. Checks that it never panics, that feeding the same bytes in two pieces
//! decodes exactly what feeding them at once does, and that the owned (`Decoder`) and
//! zero-copy (`next_request`) paths agree.
//!
//! The first byte picks the split point and whether to use tight limits (so that the limit
//! checks are reached with small inputs); the rest is the stream.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use protocol::{Limits, RequestCodec};
use tokio_util::codec::Decoder;

/// What decoding a whole stream gives: the requests, then how it stopped.
#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Vec<Bytes>>,
    /// The error that ended the stream, as text (`ProtocolError` is not `PartialEq`).
    error: Option<String>,
    /// Bytes left undecoded at the end (an incomplete request).
    left: usize,
}

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

/// Decodes `pieces` arriving one after the other, with the owned `Decoder` path.
fn decode_owned(pieces: &[&[u8]], tight: bool) -> Outcome {
    let mut codec = RequestCodec::new(limits(tight));
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(request)) => requests.push(request),
                Ok(None) => break,
                Err(err) => {
                    return Outcome {
                        requests,
                        error: Some(err.to_string()),
                        left: buf.len() + unfed(pieces, i),
                    }
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
        left: buf.len(),
    }
}

/// The same with the server's zero-copy path.
fn decode_in_place(pieces: &[&[u8]], tight: bool) -> Outcome {
    let mut codec = RequestCodec::new(limits(tight));
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece);
        loop {
            match codec.next_request(&mut buf) {
                Ok(Some(request)) => {
                    let argv = codec.argv(&request, &buf);
                    assert!(!argv.is_empty(), "empty requests are skipped");
                    requests.push(argv.iter().map(Bytes::copy_from_slice).collect());
                    assert!(request.consumed() <= buf.len());
                    let _ = buf.split_to(request.consumed());
                }
                Ok(None) => break,
                Err(err) => {
                    return Outcome {
                        requests,
                        error: Some(err.to_string()),
                        left: buf.len() + unfed(pieces, i),
                    }
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
        left: buf.len(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let tight = control & 0x80 != 0;
    let split = usize::from(control & 0x7f).min(stream.len());
    let (head, tail) = stream.split_at(split);

    let whole = decode_owned(&[stream], tight);
    assert_eq!(
        whole,
        decode_owned(&[head, tail], tight),
        "split at {split}"
    );
    assert_eq!(whole, decode_in_place(&[stream], tight));
    assert_eq!(
        whole,
        decode_in_place(&[head, tail], tight),
        "split at {split}"
    );
});
