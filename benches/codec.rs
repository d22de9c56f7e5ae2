//! RESP codec micro-benchmarks: what the protocol crate costs per command, before the store
//! is touched.
//!
//! - `decode_pipeline`: one read buffer holding 16 pipelined requests (`SET key value` and
//!   `GET key` alternating, 16-byte keys, 32-byte values) decoded with [`RequestCodec`]:
//!   `in_place` the way the connection loop does (`next_request`, an `Argv` view, advance),
//!   `owned_argv` through the `Decoder` impl, a `Vec<Bytes>` built and dropped per request.
//!   Throughput is 16 elements, so criterion's element rate is commands per second.
//! - `encode_reply`: the reply writers the commands use (`+OK`, a 32-byte bulk, an integer,
//!   an array of ten 32-byte bulks) appending to a reused output buffer, as the connection's
//!   reply buffer is reused between flushes.
//! - `decode_1mib_bulk`: `SET key <1 MiB>` for the server ([`RequestCodec`]) and a 1 MiB bulk
//!   reply for the client ([`RespCodec`]), either arriving whole (the codec should cost the
//!   same as for a small frame: headers are parsed, the payload is sliced, never scanned) or in
//!   16 KiB reads that follow the server's read loop (`reserve(16 KiB)`, append the chunk,
//!   decode until `Ok(None)`). The chunked variants include copying the chunks into the buffer
//!   (the copy a socket read does) and the buffer's growth; `copy_only` is that copy alone, so
//!   the codec's share is the difference.
//!
//! Why: the issue asks for per-command codec cost to compare with the store's per-operation
//! cost, and for evidence that big bulks are decoded in linear time without rescanning.

use std::hint::black_box;

use bytes::{Buf, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use protocol::encode::{
    encode_command, write_array_header, write_bulk, write_integer, write_simple,
};
use protocol::{RequestCodec, RespCodec};
use tokio_util::codec::Decoder;

/// Requests per pipelined buffer.
const PIPELINE: usize = 16;
/// Size of a stored value in these benches (and in `store.rs`).
const VALUE_LEN: usize = 32;
/// Size of the big bulk.
const BIG: usize = 1024 * 1024;
/// Bytes per simulated socket read: the server's `READ_CHUNK`.
const READ_CHUNK: usize = 16 * 1024;

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

/// 16 requests, `SET key:i value` and `GET key:i` alternating, encoded as clients send them.
fn pipelined_requests() -> Vec<u8> {
    let value = [b'v'; VALUE_LEN];
    let mut buf = BytesMut::new();
    for i in 0..PIPELINE / 2 {
        let key = key(i);
        encode_command(&[b"SET", &key, &value], &mut buf);
        encode_command(&[b"GET", &key], &mut buf);
    }
    buf.to_vec()
}

fn decode_pipeline(c: &mut Criterion) {
    let input = pipelined_requests();
    let mut group = c.benchmark_group("codec/decode_pipeline");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    let mut codec = RequestCodec::default();
    group.bench_function("in_place", |b| {
        b.iter_batched(
            || BytesMut::from(&input[..]),
            |mut buf| {
                let mut decoded = 0;
                while let Some(request) = codec.next_request(&mut buf).expect("valid input") {
                    black_box(codec.argv(&request, &buf));
                    buf.advance(request.consumed());
                    decoded += 1;
                }
                assert_eq!(decoded, PIPELINE);
                buf
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("owned_argv", |b| {
        b.iter_batched(
            // The bytes a socket read would have put in the buffer (not timed).
            || BytesMut::from(&input[..]),
            |mut buf| {
                let mut decoded = 0;
                while let Some(argv) = codec.decode(&mut buf).expect("valid input") {
                    // Dropped here, as the connection loop drops each argv after dispatch.
                    black_box(argv);
                    decoded += 1;
                }
                assert_eq!(decoded, PIPELINE);
                buf
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn encode_reply(c: &mut Criterion) {
    let value = [b'v'; VALUE_LEN];
    let mut group = c.benchmark_group("codec/encode_reply");
    // The connection's reply buffer is reused; start with the capacity it keeps.
    let mut out = BytesMut::with_capacity(READ_CHUNK);

    // Each case: reply bytes for the throughput, then the writer call.
    let mut case = |name: &str, write: &dyn Fn(&mut BytesMut)| {
        out.clear();
        write(&mut out);
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write(&mut out);
                black_box(&out);
            });
        });
    };
    case("simple_ok", &|out| write_simple(out, black_box(b"OK")));
    case("bulk_32b", &|out| write_bulk(out, black_box(&value)));
    case("integer", &|out| write_integer(out, black_box(1_234_567)));
    case("array_10_bulks_32b", &|out| {
        let value = black_box(&value);
        write_array_header(out, 10);
        for _ in 0..10 {
            write_bulk(out, value);
        }
    });
    group.finish();
}

/// `SET key <BIG bytes>` as a client sends it.
fn big_set_request() -> Vec<u8> {
    let payload = vec![b'x'; BIG];
    let mut buf = BytesMut::new();
    encode_command(&[b"SET", b"key", &payload], &mut buf);
    buf.to_vec()
}

/// A `BIG`-byte bulk string reply.
fn big_bulk_reply() -> Vec<u8> {
    let payload = vec![b'x'; BIG];
    let mut buf = BytesMut::new();
    write_bulk(&mut buf, &payload);
    buf.to_vec()
}

/// Feeds `input` to `decoder` in `READ_CHUNK` reads, the way the server's connection loop
/// fills its buffer, and returns the one item it decodes.
fn decode_chunked<D>(decoder: &mut D, input: &[u8]) -> D::Item
where
    D: Decoder,
    D::Error: std::fmt::Debug,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut item = None;
    for chunk in input.chunks(READ_CHUNK) {
        buf.reserve(READ_CHUNK);
        buf.extend_from_slice(chunk);
        if let Some(decoded) = decoder.decode(&mut buf).expect("valid input") {
            item = Some(decoded);
        }
    }
    assert!(buf.is_empty());
    item.expect("one item")
}

fn decode_big_bulk(c: &mut Criterion) {
    let request = big_set_request();
    let reply = big_bulk_reply();
    let mut group = c.benchmark_group("codec/decode_1mib_bulk");
    group.throughput(Throughput::Bytes(BIG as u64));

    let mut server = RequestCodec::default();
    let mut client = RespCodec::default();

    // Whole: each input is a fresh 1 MiB buffer (made outside the timed region). A fixed
    // batch of 64 bounds memory to 64 MiB whatever the iteration count criterion picks.
    group.bench_function("request_whole", |b| {
        b.iter_batched(
            || BytesMut::from(&request[..]),
            |mut buf| server.decode(&mut buf).expect("valid").expect("complete"),
            BatchSize::NumIterations(64),
        );
    });
    group.bench_function("reply_whole", |b| {
        b.iter_batched(
            || BytesMut::from(&reply[..]),
            |mut buf| client.decode(&mut buf).expect("valid").expect("complete"),
            BatchSize::NumIterations(64),
        );
    });

    group.bench_function("request_16k_reads", |b| {
        b.iter(|| decode_chunked(&mut server, black_box(&request)));
    });
    group.bench_function("reply_16k_reads", |b| {
        b.iter(|| decode_chunked(&mut client, black_box(&reply)));
    });
    // The reads alone, without decoding: the floor under the two benches above. The buffer
    // is allocated at its final size, as the codec's reservation after the header makes it.
    group.bench_function("copy_only_16k_reads", |b| {
        b.iter(|| {
            let input = black_box(&request);
            let mut buf = BytesMut::with_capacity(input.len());
            for chunk in input.chunks(READ_CHUNK) {
                buf.extend_from_slice(chunk);
            }
            buf.freeze()
        });
    });
    group.finish();
}

criterion_group!(benches, decode_pipeline, encode_reply, decode_big_bulk);
criterion_main!(benches);
