//! Property tests through the public API: encode/parse round trips, RESP2 downgrades, and
//! incremental decoding that gives the same result however the input is split.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use protocol::encode::{encode, encode_command};
use protocol::parse::parse;
use protocol::{Frame, Limits, ProtocolError, RequestCodec, RespCodec, Version};
use tokio_util::codec::Decoder;

// ---------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Simple strings cannot carry CR or LF.
fn single_line(max: usize) -> impl Strategy<Value = Bytes> {
    vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..max,
    )
    .prop_map(Bytes::from)
}

fn big_number() -> impl Strategy<Value = Bytes> {
    "-?[0-9]{1,40}".prop_map(Bytes::from)
}

fn leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        single_line(16).prop_map(Frame::Simple),
        // Errors with CR/LF take the RESP3 blob error path.
        bytes(16).prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        bytes(24).prop_map(Frame::Bulk),
        Just(Frame::Null),
        any::<f64>().prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        big_number().prop_map(Frame::BigNumber),
        (any::<[u8; 3]>(), bytes(16)).prop_map(|(format, text)| Frame::Verbatim { format, text }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Frame::Array),
            vec((inner.clone(), inner.clone()), 0..4).prop_map(Frame::Map),
            vec(inner.clone(), 0..5).prop_map(Frame::Set),
            vec(inner, 0..5).prop_map(Frame::Push),
        ]
    })
}

/// Up to `n` cut points for an input of length `len`, ascending.
fn cuts(n: usize) -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 0..n)
}

fn chunks<'a>(input: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for point in points.into_iter().chain([input.len()]) {
        out.push(&input[start..point]);
        start = point;
    }
    out
}

/// One request in a stream: its wire bytes and the argv the server should see (None if skipped).
#[derive(Debug, Clone)]
struct Request {
    wire: Vec<u8>,
    argv: Option<Vec<Vec<u8>>>,
}

fn inline_arg() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    prop_oneof![
        // A bare word: written as is.
        "[a-zA-Z0-9_:.-]{1,10}".prop_map(|w| (w.clone().into_bytes(), w.into_bytes())),
        // Arbitrary bytes: written in double quotes with \xHH escapes.
        vec(any::<u8>(), 0..8).prop_map(|raw| {
            let mut wire = b"\"".to_vec();
            for b in &raw {
                wire.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            }
            wire.push(b'"');
            (wire, raw)
        }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        4 => vec(vec(any::<u8>(), 0..12), 1..5).prop_map(|args| {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let mut wire = BytesMut::new();
            encode_command(&refs, &mut wire);
            Request { wire: wire.to_vec(), argv: Some(args) }
        }),
        3 => (vec(inline_arg(), 1..4), "[ \t]{1,2}", prop::bool::ANY).prop_map(|(args, sep, crlf)| {
            let mut wire = Vec::new();
            for (i, (w, _)) in args.iter().enumerate() {
                if i > 0 {
                    wire.extend_from_slice(sep.as_bytes());
                }
                wire.extend_from_slice(w);
            }
            wire.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            Request { wire, argv: Some(args.into_iter().map(|(_, raw)| raw).collect()) }
        }),
        1 => prop_oneof![
            Just(&b"\r\n"[..]),
            Just(&b"\n"[..]),
            Just(&b" \t \r\n"[..]),
            Just(&b"*0\r\n"[..]),
            Just(&b"*-1\r\n"[..]),
        ]
        .prop_map(|wire| Request { wire: wire.to_vec(), argv: None }),
    ]
}

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

/// Frame equality where every NaN equals every NaN and doubles otherwise compare bitwise
/// (so `-0.0` must come back as `-0.0`).
fn same(a: &Frame, b: &Frame) -> bool {
    let all =
        |x: &[Frame], y: &[Frame]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q));
    match (a, b) {
        (Frame::Double(x), Frame::Double(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (Frame::Array(x), Frame::Array(y))
        | (Frame::Set(x), Frame::Set(y))
        | (Frame::Push(x), Frame::Push(y)) => all(x, y),
        (Frame::Map(x), Frame::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}

fn all_same(x: &[Frame], y: &[Frame]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
}

/// What a RESP2 client should read back for `frame` encoded as RESP2.
fn downgraded(frame: &Frame) -> Frame {
    let text = |s: String| Frame::Bulk(Bytes::from(s));
    match frame {
        Frame::Error(msg) => Frame::Error(
            msg.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                .collect::<Vec<u8>>()
                .into(),
        ),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            Frame::Array(items.iter().map(downgraded).collect())
        }
        Frame::Map(pairs) => Frame::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [downgraded(k), downgraded(v)])
                .collect(),
        ),
        Frame::Double(d) if d.is_nan() => text("nan".into()),
        Frame::Double(d) if d.is_infinite() => text(if *d > 0.0 { "inf" } else { "-inf" }.into()),
        Frame::Double(d) => text(d.to_string()),
        Frame::Boolean(b) => Frame::Integer(i64::from(*b)),
        Frame::BigNumber(digits) => Frame::Bulk(digits.clone()),
        Frame::Verbatim { text, .. } => Frame::Bulk(text.clone()),
        other => other.clone(),
    }
}

fn encoded(frames: &[Frame], v: Version) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for frame in frames {
        encode(frame, &mut buf, v);
    }
    buf.to_vec()
}

/// Feeds `chunks` one after the other, decoding everything decodable after each; stops at
/// the first error. Returns the items and the error text, if any.
fn feed<D>(codec: &mut D, chunks: &[&[u8]]) -> (Vec<D::Item>, Option<String>, usize)
where
    D: Decoder<Error = ProtocolError>,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(err) => return (items, Some(err.to_string()), buf.len()),
            }
        }
    }
    (items, None, buf.len())
}

fn bytewise(input: &[u8]) -> Vec<&[u8]> {
    input.chunks(1).collect()
}

// ---------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_inverts_resp3_encode(frame in frame()) {
        let wire = encoded(std::slice::from_ref(&frame), Version::Resp3);
        let parsed = parse(&wire, &Limits::default());
        let Ok(Some((decoded, len))) = parsed else {
            return Err(TestCaseError::fail(format!("{parsed:?}")));
        };
        prop_assert_eq!(len, wire.len());
        prop_assert!(same(&decoded, &frame), "{:?} != {:?}", decoded, frame);

        let (items, err, rest) = feed(&mut RespCodec::default(), &[&wire]);
        prop_assert!(err.is_none() && rest == 0);
        prop_assert!(all_same(&items, std::slice::from_ref(&frame)));
    }

    #[test]
    fn resp2_encode_downgrades(frame in frame()) {
        let wire = encoded(std::slice::from_ref(&frame), Version::Resp2);
        let parsed = parse(&wire, &Limits::default());
        let Ok(Some((decoded, len))) = parsed else {
            return Err(TestCaseError::fail(format!("{parsed:?}")));
        };
        prop_assert_eq!(len, wire.len());
        let expected = downgraded(&frame);
        prop_assert!(same(&decoded, &expected), "{:?} != {:?}", decoded, expected);
    }

    #[test]
    fn resp_codec_is_split_invariant(frames in vec(frame(), 1..5), cuts in cuts(8)) {
        let wire = encoded(&frames, Version::Resp3);
        for split in [vec![&wire[..]], bytewise(&wire), chunks(&wire, &cuts)] {
            let (items, err, rest) = feed(&mut RespCodec::default(), &split);
            prop_assert!(err.is_none(), "{:?}", err);
            prop_assert_eq!(rest, 0);
            prop_assert!(all_same(&items, &frames));
        }
    }

    #[test]
    fn request_codec_is_split_invariant(requests in vec(request(), 1..8), cuts in cuts(8)) {
        let wire: Vec<u8> = requests.iter().flat_map(|r| r.wire.clone()).collect();
        let expected: Vec<Vec<Bytes>> = requests
            .iter()
            .filter_map(|r| r.argv.clone())
            .map(|argv| argv.into_iter().map(Bytes::from).collect())
            .collect();
        for split in [vec![&wire[..]], bytewise(&wire), chunks(&wire, &cuts)] {
            let (items, err, rest) = feed(&mut RequestCodec::default(), &split);
            prop_assert!(err.is_none(), "{:?}", err);
            prop_assert_eq!(rest, 0);
            prop_assert_eq!(&items, &expected);
        }
    }

    /// Garbage made of RESP-ish bytes: decoding never panics, and whole or byte-by-byte
    /// feeding gives the same frames and the same error.
    #[test]
    fn garbage_decodes_the_same_however_split(
        input in vec(prop::sample::select(&b"*$%~>|!=:+-_,#(tf0123456789-\r\n\r\n x\""[..]), 0..64)
    ) {
        let limits = Limits { max_bulk_len: 16, max_array_len: 4, max_inline_len: 8, max_depth: 3 };
        let whole = feed(&mut RespCodec::new(limits), &[&input]);
        let split = feed(&mut RespCodec::new(limits), &bytewise(&input));
        prop_assert!(all_same(&whole.0, &split.0));
        prop_assert_eq!(whole.1, split.1);

        let whole = feed(&mut RequestCodec::new(limits), &[&input]);
        let split = feed(&mut RequestCodec::new(limits), &bytewise(&input));
        prop_assert_eq!(whole.0, split.0);
        prop_assert_eq!(whole.1, split.1);
    }
}
