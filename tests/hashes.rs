//! Hash commands: HSET, HSETNX, HGET, HMGET, HMSET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS,
//! HVALS, HGETALL, HINCRBY, HINCRBYFLOAT; their errors, RESP3 replies, WRONGTYPE, the
//! deletion of an emptied hash, and the generic commands on a hash (TYPE, COPY, RENAME...).
//! Expected replies were checked against Redis 7.

use std::collections::HashMap;
use std::time::Duration;

use protocol::Frame;
use redis::AsyncCommands;

use crate::util::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const NOT_FLOAT: &str = "ERR value is not a valid float";

/// The pairs of a RESP2 flat array or a RESP3 map, sorted by field.
fn pairs_of(frame: Frame) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = match frame {
        Frame::Map(pairs) => pairs
            .iter()
            .map(|(f, v)| (text_of(f), text_of(v)))
            .collect(),
        Frame::Array(items) => items
            .chunks(2)
            .map(|pair| (text_of(&pair[0]), text_of(&pair[1])))
            .collect(),
        other => panic!("expected a map or an array, got {other:?}"),
    };
    pairs.sort();
    pairs
}

fn owned_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn hset_hget_hmget_and_hsetnx() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HGET", "h", "a"]).await, nil());
    assert_eq!(c.cmd(&["HSET", "h", "a", "1", "b", "2"]).await, int(2));
    assert_eq!(c.cmd(&["TYPE", "h"]).await, simple("hash"));
    // Only new fields count; a field named twice takes its last value.
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "x", "c", "3", "c", "4"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["HGET", "h", "a"]).await, bulk("x"));
    assert_eq!(c.cmd(&["HGET", "h", "c"]).await, bulk("4"));
    assert_eq!(c.cmd(&["HGET", "h", "nope"]).await, nil());
    assert_eq!(
        c.cmd(&["HMGET", "h", "a", "nope", "b"]).await,
        Frame::Array(vec![bulk("x"), nil(), bulk("2")])
    );
    assert_eq!(
        c.cmd(&["HMGET", "missing", "a", "b"]).await,
        Frame::Array(vec![nil(), nil()])
    );
    assert_eq!(c.cmd(&["HSETNX", "h", "a", "y"]).await, int(0));
    assert_eq!(c.cmd(&["HGET", "h", "a"]).await, bulk("x"));
    assert_eq!(c.cmd(&["HSETNX", "h", "d", "5"]).await, int(1));
    assert_eq!(c.cmd(&["HGET", "h", "d"]).await, bulk("5"));
    assert_eq!(c.cmd(&["HSETNX", "new", "f", "v"]).await, int(1));
    assert_eq!(c.cmd(&["HGET", "new", "f"]).await, bulk("v"));
    assert_eq!(c.cmd(&["HMSET", "h", "e", "6", "a", "7"]).await, ok());
    assert_eq!(c.cmd(&["HLEN", "h"]).await, int(5));
    assert_eq!(c.cmd(&["HGET", "h", "a"]).await, bulk("7"));
    // Binary-safe fields and values, empty ones included.
    assert_eq!(
        c.cmd(&[&b"HSET"[..], b"bin", b"\x00\r\n", b""]).await,
        int(1)
    );
    assert_eq!(c.cmd(&[&b"HGET"[..], b"bin", b"\x00\r\n"]).await, bulk(""));
    assert_eq!(c.cmd(&[&b"HSTRLEN"[..], b"bin", b"\x00\r\n"]).await, int(0));
}

#[tokio::test]
async fn arity_and_pair_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HSET", "h", "a"]).await, arity_err("hset"));
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "b"]).await,
        arity_err("hset")
    );
    assert_eq!(
        c.cmd(&["HMSET", "h", "a", "1", "b"]).await,
        arity_err("hmset")
    );
    assert_eq!(c.cmd(&["HSETNX", "h", "a"]).await, arity_err("hsetnx"));
    assert_eq!(c.cmd(&["HGET", "h"]).await, arity_err("hget"));
    assert_eq!(c.cmd(&["HMGET", "h"]).await, arity_err("hmget"));
    assert_eq!(c.cmd(&["HDEL", "h"]).await, arity_err("hdel"));
    assert_eq!(c.cmd(&["HLEN", "h", "x"]).await, arity_err("hlen"));
    assert_eq!(c.cmd(&["HGETALL"]).await, arity_err("hgetall"));
    assert_eq!(c.cmd(&["HINCRBY", "h", "f"]).await, arity_err("hincrby"));
    // Nothing was created by the rejected writes.
    assert_eq!(c.cmd(&["EXISTS", "h"]).await, int(0));
}

#[tokio::test]
async fn hdel_deletes_the_emptied_hash() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HDEL", "h", "a"]).await, int(0));
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]).await,
        int(3)
    );
    assert_eq!(c.cmd(&["HDEL", "h", "a", "a", "nope"]).await, int(1));
    assert_eq!(c.cmd(&["HEXISTS", "h", "a"]).await, int(0));
    assert_eq!(c.cmd(&["HEXISTS", "h", "b"]).await, int(1));
    assert_eq!(c.cmd(&["EXPIRE", "h", "100"]).await, int(1));
    assert_eq!(c.cmd(&["HDEL", "h", "b", "c", "d"]).await, int(2));
    assert_eq!(c.cmd(&["EXISTS", "h"]).await, int(0));
    assert_eq!(c.cmd(&["TYPE", "h"]).await, simple("none"));
    assert_eq!(c.cmd(&["HLEN", "h"]).await, int(0));
    // A hash created again does not inherit the old TTL.
    assert_eq!(c.cmd(&["HSET", "h", "z", "1"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "h"]).await, int(-1));
}

#[tokio::test]
async fn lengths_and_listings() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HLEN", "h"]).await, int(0));
    assert_eq!(c.cmd(&["HSTRLEN", "h", "a"]).await, int(0));
    assert_eq!(c.cmd(&["HEXISTS", "h", "a"]).await, int(0));
    assert_eq!(c.cmd(&["HKEYS", "h"]).await, Frame::Array(vec![]));
    assert_eq!(c.cmd(&["HVALS", "h"]).await, Frame::Array(vec![]));
    assert_eq!(c.cmd(&["HGETALL", "h"]).await, Frame::Array(vec![]));
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "bb", "22", "c", ""]).await,
        int(3)
    );
    assert_eq!(c.cmd(&["HLEN", "h"]).await, int(3));
    assert_eq!(c.cmd(&["HSTRLEN", "h", "bb"]).await, int(2));
    assert_eq!(c.cmd(&["HSTRLEN", "h", "c"]).await, int(0));
    assert_eq!(c.cmd(&["HEXISTS", "h", "c"]).await, int(1));
    assert_eq!(
        sorted_bulks(c.cmd(&["HKEYS", "h"]).await),
        [&b"a"[..], b"bb", b"c"]
    );
    assert_eq!(
        sorted_bulks(c.cmd(&["HVALS", "h"]).await),
        [&b""[..], b"1", b"22"]
    );
    // HKEYS, HVALS and HGETALL list the fields in one order.
    let keys = array_items(c.cmd(&["HKEYS", "h"]).await);
    let vals = array_items(c.cmd(&["HVALS", "h"]).await);
    let all = array_items(c.cmd(&["HGETALL", "h"]).await);
    let zipped: Vec<Frame> = keys
        .into_iter()
        .zip(vals)
        .flat_map(|(k, v)| [k, v])
        .collect();
    assert_eq!(all, zipped);
    assert_eq!(
        pairs_of(Frame::Array(all)),
        owned_pairs(&[("a", "1"), ("bb", "22"), ("c", "")])
    );
}

#[tokio::test]
async fn a_large_hash_reads_back_whole() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut expected = Vec::new();
    for chunk in 0..10 {
        let mut args = vec!["HSET".to_string(), "big".to_string()];
        for i in chunk * 100..(chunk + 1) * 100 {
            args.push(format!("field:{i}"));
            args.push(format!("value:{i}"));
            expected.push((format!("field:{i}"), format!("value:{i}")));
        }
        assert_eq!(c.cmd(&args).await, int(100));
    }
    expected.sort();
    assert_eq!(c.cmd(&["HLEN", "big"]).await, int(1000));
    assert_eq!(pairs_of(c.cmd(&["HGETALL", "big"]).await), expected);
    let mut args = vec!["HDEL".to_string(), "big".to_string()];
    args.extend((0..1000).step_by(2).map(|i| format!("field:{i}")));
    assert_eq!(c.cmd(&args).await, int(500));
    assert_eq!(c.cmd(&["HLEN", "big"]).await, int(500));
    assert_eq!(c.cmd(&["HGET", "big", "field:1"]).await, bulk("value:1"));
    assert_eq!(c.cmd(&["HGET", "big", "field:2"]).await, nil());
}

#[tokio::test]
async fn hincrby_and_its_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "5"]).await, int(5));
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "-7"]).await, int(-2));
    assert_eq!(c.cmd(&["HGET", "h", "n"]).await, bulk("-2"));
    assert_eq!(c.cmd(&["HINCRBY", "h", "m", "0"]).await, int(0));
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "x"]).await, err(NOT_INTEGER));
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "1.5"]).await, err(NOT_INTEGER));
    let not_integer = err("ERR hash value is not an integer");
    assert_eq!(c.cmd(&["HSET", "h", "s", "x"]).await, int(1));
    for stored in ["abc", "1.5", " 1", "01", "", "99999999999999999999"] {
        assert_eq!(c.cmd(&["HSET", "h", "s", stored]).await, int(0));
        assert_eq!(
            c.cmd(&["HINCRBY", "h", "s", "1"]).await,
            not_integer,
            "{stored:?}"
        );
        assert_eq!(c.cmd(&["HGET", "h", "s"]).await, bulk(stored));
    }
    assert_eq!(
        c.cmd(&["HSET", "h", "max", &i64::MAX.to_string()]).await,
        int(1)
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "max", "1"]).await,
        err("ERR increment or decrement would overflow")
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "max", "-1"]).await,
        int(i64::MAX - 1)
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "min", &i64::MIN.to_string()]).await,
        int(i64::MIN)
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "min", "-1"]).await,
        err("ERR increment or decrement would overflow")
    );
}

#[tokio::test]
async fn hincrbyfloat_and_its_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "f", "10.5"]).await,
        bulk("10.5")
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "f", "0.1"]).await,
        bulk("10.6")
    );
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "-5"]).await, bulk("5.6"));
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "g", "5.0e3"]).await,
        bulk("5000")
    );
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "z", "0.1"]).await, bulk("0.1"));
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "z", "0.2"]).await, bulk("0.3"));
    assert_eq!(c.cmd(&["HGET", "h", "z"]).await, bulk("0.3"));
    // Integers stored by HINCRBY are floats too.
    assert_eq!(c.cmd(&["HINCRBY", "h", "i", "3"]).await, int(3));
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "i", "1.5"]).await, bulk("4.5"));
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "f", "x"]).await,
        err(NOT_FLOAT)
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "f", "nan"]).await,
        err(NOT_FLOAT)
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "f", "inf"]).await,
        err("ERR value is NaN or Infinity")
    );
    assert_eq!(c.cmd(&["HSET", "h", "s", "abc"]).await, int(1));
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "s", "1"]).await,
        err("ERR hash value is not a float")
    );
    assert_eq!(c.cmd(&["HSET", "h", "big", "1.7e308"]).await, int(1));
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "big", "1.7e308"]).await,
        err("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(c.cmd(&["HGET", "h", "big"]).await, bulk("1.7e308"));
    // RESP3 still replies with a bulk string, as Redis does.
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "1"]).await, bulk("6.6"));
}

#[tokio::test]
async fn wrongtype_everywhere_and_arguments_first() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    let wrong = err(WRONGTYPE);
    for args in [
        &["HSET", "s", "f", "v"][..],
        &["HSETNX", "s", "f", "v"],
        &["HMSET", "s", "f", "v"],
        &["HGET", "s", "f"],
        &["HMGET", "s", "f"],
        &["HDEL", "s", "f"],
        &["HLEN", "s"],
        &["HSTRLEN", "s", "f"],
        &["HEXISTS", "s", "f"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HGETALL", "s"],
        &["HINCRBY", "s", "f", "1"],
        &["HINCRBYFLOAT", "s", "f", "1"],
    ] {
        assert_eq!(c.cmd(args).await, wrong, "{args:?}");
    }
    assert_eq!(c.cmd(&["GET", "s"]).await, bulk("v"));
    // Arguments are checked before the type.
    assert_eq!(c.cmd(&["HINCRBY", "s", "f", "x"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "s", "f", "x"]).await,
        err(NOT_FLOAT)
    );
    assert_eq!(c.cmd(&["HSET", "s", "f"]).await, arity_err("hset"));
    // And the string commands refuse a hash.
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]).await, int(1));
    assert_eq!(c.cmd(&["GET", "h"]).await, wrong);
    assert_eq!(c.cmd(&["APPEND", "h", "x"]).await, wrong);
    assert_eq!(c.cmd(&["INCR", "h"]).await, wrong);
    assert_eq!(
        c.cmd(&["MGET", "h", "s"]).await,
        Frame::Array(vec![nil(), bulk("v")])
    );
    assert_eq!(c.cmd(&["SET", "h", "x"]).await, ok());
    assert_eq!(c.cmd(&["TYPE", "h"]).await, simple("string"));
}

#[tokio::test]
async fn resp3_replies() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["HGETALL", "h"]).await, Frame::Map(vec![]));
    assert_eq!(c.cmd(&["HSET", "h", "a", "1", "b", "2"]).await, int(2));
    let all = c.cmd(&["HGETALL", "h"]).await;
    assert!(matches!(all, Frame::Map(_)), "{all:?}");
    assert_eq!(pairs_of(all), owned_pairs(&[("a", "1"), ("b", "2")]));
    assert!(matches!(c.cmd(&["HKEYS", "h"]).await, Frame::Array(_)));
    assert_eq!(c.cmd(&["HGET", "h", "x"]).await, Frame::Null);
    assert_eq!(
        c.cmd(&["HMGET", "h", "a", "x"]).await,
        Frame::Array(vec![bulk("1"), Frame::Null])
    );
    // The raw bytes: a map, and RESP3 nulls.
    assert_eq!(c.cmd(&["HSET", "one", "f", "v"]).await, int(1));
    c.send(&encode(&["HGETALL", "one"])).await;
    let expected = b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n";
    assert_eq!(c.read_exact_bytes(expected.len()).await, expected);
    c.send(&encode(&["HMGET", "one", "x"])).await;
    let expected = b"*1\r\n_\r\n";
    assert_eq!(c.read_exact_bytes(expected.len()).await, expected);
}

#[tokio::test]
async fn generic_commands_on_hashes() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HSET", "h", "a", "1", "b", "2"]).await, int(2));
    assert_eq!(c.cmd(&["COPY", "h", "h2"]).await, int(1));
    // The copy is independent of its source.
    assert_eq!(c.cmd(&["HSET", "h", "a", "changed"]).await, int(0));
    assert_eq!(c.cmd(&["HGET", "h2", "a"]).await, bulk("1"));
    assert_eq!(c.cmd(&["COPY", "h", "h2"]).await, int(0));
    assert_eq!(c.cmd(&["COPY", "h", "h2", "REPLACE"]).await, int(1));
    assert_eq!(c.cmd(&["HGET", "h2", "a"]).await, bulk("changed"));
    assert_eq!(c.cmd(&["COPY", "h", "other", "DB", "1"]).await, int(1));
    assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(
        pairs_of(c.cmd(&["HGETALL", "other"]).await),
        owned_pairs(&[("a", "changed"), ("b", "2")])
    );
    assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
    assert_eq!(c.cmd(&["RENAME", "h2", "h3"]).await, ok());
    assert_eq!(c.cmd(&["HLEN", "h3"]).await, int(2));
    assert_eq!(c.cmd(&["EXPIRE", "h3", "100"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "h3"]).await, int(100));
    // HSET keeps the TTL (it changes fields, not the key).
    assert_eq!(c.cmd(&["HSET", "h3", "c", "3"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "h3"]).await, int(100));
    let found = array_items(c.cmd(&["SCAN", "0", "TYPE", "hash", "COUNT", "100"]).await);
    assert_eq!(sorted_bulks(found[1].clone()), [&b"h"[..], b"h3"]);
    assert_eq!(c.cmd(&["DEL", "h", "h3"]).await, int(2));
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
}

#[tokio::test]
async fn an_expired_hash_is_gone() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HSET", "h", "a", "1"]).await, int(1));
    assert_eq!(c.cmd(&["PEXPIRE", "h", "1"]).await, int(1));
    poll_until_reply(&mut c, &["EXISTS", "h"], int(0), Duration::from_secs(5)).await;
    assert_eq!(c.cmd(&["HGET", "h", "a"]).await, nil());
    assert_eq!(c.cmd(&["HINCRBY", "h", "a", "1"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "h"]).await, int(-1));
}

#[tokio::test]
async fn redis_client_hash_round_trip() {
    let server = start_server().await;
    let mut con = redis_client(server.addr()).await;
    let () = con
        .hset_multiple("user:1", &[("name", "ada"), ("lang", "rust")])
        .await
        .unwrap();
    let added: i64 = con.hset("user:1", "since", "1815").await.unwrap();
    assert_eq!(added, 1);
    let name: Option<String> = con.hget("user:1", "name").await.unwrap();
    assert_eq!(name.as_deref(), Some("ada"));
    let all: HashMap<String, String> = con.hgetall("user:1").await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all["lang"], "rust");
    let visits: i64 = con.hincr("user:1", "visits", 3).await.unwrap();
    assert_eq!(visits, 3);
    let removed: i64 = con
        .hdel("user:1", &["name", "lang", "since", "visits"])
        .await
        .unwrap();
    assert_eq!(removed, 4);
    let exists: bool = con.exists("user:1").await.unwrap();
    assert!(!exists);
}

/// Runs HSCAN to the end with `options`; returns the pairs seen and the number of calls.
async fn full_hscan(c: &mut Raw, key: &str, options: &[&str]) -> (Vec<(String, String)>, usize) {
    let (elements, calls) = scan_to_end(c, &["HSCAN", key], options).await;
    (pairs_of(Frame::Array(elements)), calls)
}

#[tokio::test]
async fn hscan_options_and_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let empty = Frame::Array(vec![bulk("0"), Frame::Array(vec![])]);
    // A missing key answers before the options are looked at.
    assert_eq!(c.cmd(&["HSCAN", "nokey", "0"]).await, empty);
    assert_eq!(
        c.cmd(&["HSCAN", "nokey", "0", "COUNT", "0", "BAD"]).await,
        empty
    );
    assert_eq!(
        c.cmd(&["HSCAN", "nokey", "x"]).await,
        err("ERR invalid cursor")
    );
    assert_eq!(c.cmd(&["HSCAN", "nokey"]).await, arity_err("hscan"));
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    assert_eq!(c.cmd(&["HSCAN", "s", "0", "BAD"]).await, err(WRONGTYPE));
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "b", "2", "ab", "3"]).await,
        int(3)
    );
    for bad in [
        &["BAD"][..],
        &["COUNT", "0"],
        &["COUNT", "-1"],
        &["MATCH"],
        &["TYPE", "hash"],
        &["COUNT", "1", "MATCH"],
    ] {
        let mut args = vec!["HSCAN", "h", "0"];
        args.extend_from_slice(bad);
        assert_eq!(c.cmd(&args).await, err("ERR syntax error"), "{bad:?}");
    }
    assert_eq!(
        c.cmd(&["HSCAN", "h", "0", "COUNT", "x"]).await,
        err(NOT_INTEGER)
    );
    // A small hash comes back whole, with cursor 0, whatever COUNT says.
    let reply = array_items(c.cmd(&["HSCAN", "h", "0", "COUNT", "1"]).await);
    assert_eq!(reply[0], bulk("0"));
    assert_eq!(
        pairs_of(reply[1].clone()),
        owned_pairs(&[("a", "1"), ("ab", "3"), ("b", "2")])
    );
    let reply = array_items(
        c.cmd(&["HSCAN", "h", "0", "match", "a*", "count", "5"])
            .await,
    );
    assert_eq!(
        pairs_of(reply[1].clone()),
        owned_pairs(&[("a", "1"), ("ab", "3")])
    );
    // RESP3: the same flat array.
    c.cmd(&["HELLO", "3"]).await;
    let reply = array_items(c.cmd(&["HSCAN", "h", "0", "MATCH", "b"]).await);
    assert_eq!(reply[1], bulks(&["b", "2"]));
}

#[tokio::test]
async fn hscan_walks_a_large_hash() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut expected = Vec::new();
    for chunk in 0..20 {
        let mut args = vec!["HSET".to_string(), "big".to_string()];
        for i in chunk * 500..(chunk + 1) * 500 {
            args.push(format!("f{i}"));
            args.push(format!("v{i}"));
            expected.push((format!("f{i}"), format!("v{i}")));
        }
        assert_eq!(c.cmd(&args).await, int(500));
    }
    expected.sort();
    // Without changes, every field exactly once, over many calls.
    let (seen, calls) = full_hscan(&mut c, "big", &["COUNT", "100"]).await;
    assert_eq!(seen, expected);
    assert!(calls > 10, "{calls} calls");
    let (seen, _) = full_hscan(&mut c, "big", &["MATCH", "f1*", "COUNT", "1000"]).await;
    let ones: Vec<_> = expected
        .iter()
        .filter(|(f, _)| f.starts_with("f1"))
        .cloned()
        .collect();
    assert_eq!(seen, ones);
}

/// Redis's guarantee: a field present for the whole iteration is returned, while another
/// connection adds and removes other fields (the hash grows, then shrinks, between calls).
#[tokio::test]
async fn hscan_returns_every_stable_field_across_growth_and_shrinking() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    let mut stable = Vec::new();
    let mut args = vec!["HSET".to_string(), "h".to_string()];
    for i in 0..3000 {
        args.push(format!("stable:{i}"));
        args.push("s".to_string());
        stable.push(format!("stable:{i}"));
    }
    assert_eq!(c.cmd(&args).await, int(3000));
    let mut cursor = "0".to_string();
    let mut seen = std::collections::HashSet::new();
    let mut round = 0usize;
    loop {
        let reply = array_items(c.cmd(&["HSCAN", "h", &cursor, "COUNT", "50"]).await);
        for (field, _) in pairs_of(reply[1].clone()) {
            seen.insert(field);
        }
        cursor = text_of(&reply[0]);
        if cursor == "0" {
            break;
        }
        // Grow for the first rounds (splits), then remove everything added (merges).
        if round < 20 {
            let mut args = vec!["HSET".to_string(), "h".to_string()];
            for i in round * 1000..(round + 1) * 1000 {
                args.push(format!("churn:{i}"));
                args.push("c".to_string());
            }
            assert_eq!(other.cmd(&args).await, int(1000));
        } else if round < 40 {
            let r = round - 20;
            let mut args = vec!["HDEL".to_string(), "h".to_string()];
            args.extend((r * 1000..(r + 1) * 1000).map(|i| format!("churn:{i}")));
            assert_eq!(other.cmd(&args).await, int(1000));
        }
        round += 1;
        assert!(round < 100_000, "the scan ends");
    }
    assert!(
        round >= 20,
        "the scan took {round} calls: too few to see churn"
    );
    for field in &stable {
        assert!(seen.contains(field), "{field} was never returned");
    }
    assert_eq!(
        c.cmd(&["HLEN", "h"]).await,
        int(3000 + 1000 * 20 - 1000 * (round.min(40) - 20) as i64)
    );
}

#[tokio::test]
async fn hrandfield_counts_and_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey"]).await, nil());
    assert_eq!(
        c.cmd(&["HRANDFIELD", "nokey", "5"]).await,
        Frame::Array(vec![])
    );
    assert_eq!(
        c.cmd(&["HRANDFIELD", "nokey", "-5", "WITHVALUES"]).await,
        Frame::Array(vec![])
    );
    // The count and option are checked before the key, the key's type before anything else.
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    assert_eq!(c.cmd(&["HRANDFIELD", "s"]).await, err(WRONGTYPE));
    assert_eq!(c.cmd(&["HRANDFIELD", "s", "1"]).await, err(WRONGTYPE));
    assert_eq!(c.cmd(&["HRANDFIELD", "s", "x"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["HRANDFIELD", "nokey", "1", "foo"]).await,
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["HRANDFIELD", "nokey", "1", "WITHVALUES", "x"])
            .await,
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["HRANDFIELD", "nokey", " 1"]).await,
        err(NOT_INTEGER)
    );
    assert_eq!(
        c.cmd(&["HRANDFIELD", "nokey", "-9223372036854775808"]).await,
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    for count in ["4611686018427387904", "-4611686018427387904"] {
        assert_eq!(
            c.cmd(&["HRANDFIELD", "nokey", count, "withvalues"]).await,
            err("ERR value is out of range")
        );
    }
    // kvstore's own limit on repeated picks (SPEC.md 7.2), even for a missing key.
    assert_eq!(
        c.cmd(&["HRANDFIELD", "nokey", "-16777217"]).await,
        err("ERR value is out of range")
    );

    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]).await,
        int(3)
    );
    let fields = ["a", "b", "c"];
    let mut singles = std::collections::HashSet::new();
    for _ in 0..50 {
        let one = text_of(&c.cmd(&["HRANDFIELD", "h"]).await);
        assert!(fields.contains(&one.as_str()), "{one}");
        singles.insert(one);
    }
    assert!(singles.len() > 1, "50 calls all picked {singles:?}");
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "0"]).await, Frame::Array(vec![]));
    // A count at least the size: the whole hash.
    assert_eq!(
        sorted_bulks(c.cmd(&["HRANDFIELD", "h", "3"]).await),
        [&b"a"[..], b"b", b"c"]
    );
    assert_eq!(
        sorted_bulks(c.cmd(&["HRANDFIELD", "h", "100"]).await),
        [&b"a"[..], b"b", b"c"]
    );
    assert_eq!(
        pairs_of(c.cmd(&["HRANDFIELD", "h", "100", "WITHVALUES"]).await),
        owned_pairs(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
    // Fewer: distinct fields.
    for _ in 0..20 {
        let two = sorted_bulks(c.cmd(&["HRANDFIELD", "h", "2"]).await);
        assert_eq!(two.len(), 2);
        assert_ne!(two[0], two[1]);
    }
    // Negative: exactly that many, repeats allowed, each pair consistent.
    let picks = pairs_of(c.cmd(&["HRANDFIELD", "h", "-50", "WITHVALUES"]).await);
    assert_eq!(picks.len(), 50);
    for (field, value) in &picks {
        let expected = (field.as_bytes()[0] - b'a' + b'1') as char;
        assert_eq!(value, &expected.to_string());
    }
    let distinct: std::collections::HashSet<_> = picks.iter().map(|(f, _)| f).collect();
    assert!(
        distinct.len() > 1,
        "50 picks of 3 fields were all {distinct:?}"
    );
    assert_eq!(
        array_items(c.cmd(&["HRANDFIELD", "h", "-5"]).await).len(),
        5
    );
    // RESP3: WITHVALUES pairs are nested arrays; no count: a bulk or null.
    c.cmd(&["HELLO", "3"]).await;
    let nested = array_items(c.cmd(&["HRANDFIELD", "h", "-4", "WITHVALUES"]).await);
    assert_eq!(nested.len(), 4);
    for pair in nested {
        let pair = array_items(pair);
        assert_eq!(pair.len(), 2);
        assert_eq!(c.cmd(&["HGET", "h", &text_of(&pair[0])]).await, pair[1]);
    }
    let all = array_items(c.cmd(&["HRANDFIELD", "h", "3", "WITHVALUES"]).await);
    assert_eq!(all.len(), 3);
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey"]).await, Frame::Null);
}

/// Every field of a large hash comes up: positive counts give distinct fields, and picks
/// cover the hash (a broken position lookup would leave some fields out).
#[tokio::test]
async fn hrandfield_on_a_large_hash() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut args = vec!["HSET".to_string(), "big".to_string()];
    for i in 0..2000 {
        args.push(format!("f{i}"));
        args.push(format!("v{i}"));
    }
    assert_eq!(c.cmd(&args).await, int(2000));
    for count in ["10", "700", "1500", "1999"] {
        let picked = pairs_of(c.cmd(&["HRANDFIELD", "big", count, "WITHVALUES"]).await);
        assert_eq!(picked.len(), count.parse::<usize>().unwrap());
        let distinct: std::collections::HashSet<_> = picked.iter().map(|(f, _)| f).collect();
        assert_eq!(distinct.len(), picked.len(), "count {count}");
        for (field, value) in &picked {
            assert_eq!(field[1..], value[1..]);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        // Few picks (located per segment) and many (listed) both reach everything.
        for reply in [
            c.cmd(&["HRANDFIELD", "big", "-5"]).await,
            c.cmd(&["HRANDFIELD", "big", "-10000"]).await,
        ] {
            seen.extend(sorted_bulks(reply));
        }
    }
    assert_eq!(seen.len(), 2000, "every field is picked at some point");
}

// ----- compact encoding ------------------------------------------------------------------------

async fn encoding(c: &mut Raw, key: &str) -> Frame {
    c.cmd(&["OBJECT", "ENCODING", key]).await
}

/// `HSET key f0 v f1 v ...` with fields `from..to`.
async fn fill(c: &mut Raw, key: &str, from: usize, to: usize) {
    let mut args = vec!["HSET".to_string(), key.to_string()];
    for i in from..to {
        args.push(format!("f{i}"));
        args.push("v".to_string());
    }
    assert_eq!(c.cmd(&args).await, int((to - from) as i64));
}

/// A small hash is compact and lists its fields in the order they were first set (an
/// update keeps a field's place, a field deleted and set again goes last), as Redis's
/// listpack; HSCAN returns it whole with cursor 0 whatever the cursor.
#[tokio::test]
async fn a_small_hash_is_compact_and_keeps_insertion_order() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["HSET", "h", "b", "1", "a", "2", "c", "3"]).await,
        int(3)
    );
    assert_eq!(c.cmd(&["HSET", "h", "a", "twenty", "d", "4"]).await, int(1));
    assert_eq!(c.cmd(&["HDEL", "h", "b"]).await, int(1));
    assert_eq!(c.cmd(&["HSET", "h", "b", "5"]).await, int(1));
    assert_eq!(encoding(&mut c, "h").await, bulk("listpack"));
    let fields = ["a", "c", "d", "b"];
    let values = ["twenty", "3", "4", "5"];
    assert_eq!(c.cmd(&["HKEYS", "h"]).await, bulks(&fields));
    assert_eq!(c.cmd(&["HVALS", "h"]).await, bulks(&values));
    let pairs: Vec<&str> = fields
        .iter()
        .zip(values)
        .flat_map(|(f, v)| [*f, v])
        .collect();
    assert_eq!(c.cmd(&["HGETALL", "h"]).await, bulks(&pairs));
    for cursor in ["0", "12345"] {
        assert_eq!(
            c.cmd(&["HSCAN", "h", cursor, "COUNT", "1"]).await,
            Frame::Array(vec![bulk("0"), bulks(&pairs)])
        );
    }
    assert_eq!(
        c.cmd(&["HRANDFIELD", "h", "10"]).await,
        bulks(&fields),
        "a count past the size lists the hash in its order"
    );
    // RESP3: the same order in a map.
    c.cmd(&["HELLO", "3"]).await;
    let Frame::Map(map) = c.cmd(&["HGETALL", "h"]).await else {
        panic!("a map");
    };
    let listed: Vec<String> = map.iter().map(|(f, _)| text_of(f)).collect();
    assert_eq!(listed, fields);
}

/// Past `hash-max-listpack-entries` fields (128), or with a field or value longer than
/// `hash-max-listpack-value` bytes (64), a hash becomes a table, and stays one.
#[tokio::test]
async fn a_hash_converts_past_either_threshold_and_never_back() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    fill(&mut c, "big", 0, 128).await;
    assert_eq!(encoding(&mut c, "big").await, bulk("listpack"));
    fill(&mut c, "big", 128, 129).await;
    assert_eq!(encoding(&mut c, "big").await, bulk("hashtable"));
    let all: Vec<String> = (1..129).map(|i| format!("f{i}")).collect();
    let mut hdel = vec!["HDEL".to_string(), "big".to_string()];
    hdel.extend(all);
    assert_eq!(c.cmd(&hdel).await, int(128));
    assert_eq!(c.cmd(&["HLEN", "big"]).await, int(1));
    assert_eq!(
        encoding(&mut c, "big").await,
        bulk("hashtable"),
        "never back"
    );

    let v64 = "x".repeat(64);
    let v65 = "x".repeat(65);
    assert_eq!(c.cmd(&["HSET", "v", "f", &v64, &v64, "1"]).await, int(2));
    assert_eq!(encoding(&mut c, "v").await, bulk("listpack"));
    assert_eq!(c.cmd(&["HSET", "v", "f", &v65]).await, int(0));
    assert_eq!(encoding(&mut c, "v").await, bulk("hashtable"));
    assert_eq!(c.cmd(&["HSET", "longfield", &v65, "1"]).await, int(1));
    assert_eq!(encoding(&mut c, "longfield").await, bulk("hashtable"));
    // HSETNX converts only if it sets.
    assert_eq!(c.cmd(&["HSET", "nx", "f", "1"]).await, int(1));
    assert_eq!(c.cmd(&["HSETNX", "nx", "f", &v65]).await, int(0));
    assert_eq!(encoding(&mut c, "nx").await, bulk("listpack"));
    assert_eq!(c.cmd(&["HSETNX", "nx", "g", &v65]).await, int(1));
    assert_eq!(encoding(&mut c, "nx").await, bulk("hashtable"));
    // HINCRBYFLOAT can write a long value: 1e100 prints as 101 digits.
    let Frame::Bulk(result) = c.cmd(&["HINCRBYFLOAT", "fl", "f", "1e100"]).await else {
        panic!("a bulk reply");
    };
    assert!(result.len() > 64);
    assert_eq!(encoding(&mut c, "fl").await, bulk("hashtable"));
    // Every field and value reads back after the conversion.
    assert_eq!(c.cmd(&["HGET", "v", &v64]).await, bulk("1"));
    assert_eq!(c.cmd(&["HGET", "v", "f"]).await, bulk(&v65));
    assert_eq!(c.cmd(&["HGET", "big", "f0"]).await, bulk("v"));
}

/// CONFIG SET changes the thresholds for later writes: an existing compact hash converts
/// when a write finds it past them (even an update, as Redis), not before.
#[tokio::test]
async fn config_set_thresholds_apply_to_later_writes() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["HSET", "old", "a", "1", "b", "2", "c", "3"]).await,
        int(3)
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "2"])
            .await,
        ok()
    );
    assert_eq!(encoding(&mut c, "old").await, bulk("listpack"));
    assert_eq!(c.cmd(&["HGET", "old", "a"]).await, bulk("1"));
    assert_eq!(
        encoding(&mut c, "old").await,
        bulk("listpack"),
        "reads convert nothing"
    );
    assert_eq!(c.cmd(&["HSET", "old", "a", "9"]).await, int(0));
    assert_eq!(encoding(&mut c, "old").await, bulk("hashtable"));
    assert_eq!(c.cmd(&["HSET", "two", "a", "1", "b", "2"]).await, int(2));
    assert_eq!(encoding(&mut c, "two").await, bulk("listpack"));
    assert_eq!(c.cmd(&["HINCRBY", "two", "c", "1"]).await, int(1));
    assert_eq!(encoding(&mut c, "two").await, bulk("hashtable"));

    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "hash-max-listpack-entries",
            "128",
            "hash-max-listpack-value",
            "1"
        ])
        .await,
        ok()
    );
    assert_eq!(c.cmd(&["HSET", "n", "a", "9"]).await, int(1));
    assert_eq!(encoding(&mut c, "n").await, bulk("listpack"));
    assert_eq!(c.cmd(&["HINCRBY", "n", "a", "1"]).await, int(10));
    assert_eq!(
        encoding(&mut c, "n").await,
        bulk("hashtable"),
        "\"10\" is two bytes"
    );
    // The old names are aliases.
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "hash-max-ziplist-value",
            "64",
            "hash-max-ziplist-entries",
            "0"
        ])
        .await,
        ok()
    );
    assert_eq!(c.cmd(&["HSET", "z", "a", "1"]).await, int(1));
    assert_eq!(encoding(&mut c, "z").await, bulk("hashtable"));
}

/// A snapshot keeps a compact hash's order; loading rebuilds each hash in the form it fits.
#[tokio::test]
async fn encodings_and_order_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let dir = dir.path().to_path_buf();
        start_server_with(move |config| config.dir = dir)
    };
    let server = start().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["HSET", "small", "z", "1", "a", "2", "m", "3"])
            .await,
        int(3)
    );
    fill(&mut c, "big", 0, 200).await;
    assert_eq!(
        c.cmd(&["HSET", "long", "f", &"x".repeat(100)]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["SAVE"]).await, ok());
    server.shutdown();
    server.stopped().await;

    let server = start().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(encoding(&mut c, "small").await, bulk("listpack"));
    assert_eq!(
        c.cmd(&["HGETALL", "small"]).await,
        bulks(&["z", "1", "a", "2", "m", "3"])
    );
    assert_eq!(encoding(&mut c, "big").await, bulk("hashtable"));
    assert_eq!(c.cmd(&["HLEN", "big"]).await, int(200));
    assert_eq!(encoding(&mut c, "long").await, bulk("hashtable"));
    server.shutdown();
    server.stopped().await;

    // A server started with other thresholds loads each hash in the form they call for.
    let path = dir.path().to_path_buf();
    let server = start_server_with(move |config| {
        config.dir = path;
        config.hash_max_listpack_entries = 512;
        config.hash_max_listpack_value = 2;
    })
    .await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(encoding(&mut c, "small").await, bulk("listpack"));
    assert_eq!(
        encoding(&mut c, "big").await,
        bulk("hashtable"),
        "`f100` is 4 bytes"
    );
    assert_eq!(encoding(&mut c, "long").await, bulk("hashtable"));
    assert_eq!(c.cmd(&["HGET", "big", "f199"]).await, bulk("v"));
    server.shutdown();
    server.stopped().await;
    let path = dir.path().to_path_buf();
    let server = start_server_with(move |config| {
        config.dir = path;
        config.hash_max_listpack_entries = 512;
        config.hash_max_listpack_value = 100;
    })
    .await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(encoding(&mut c, "big").await, bulk("listpack"));
    assert_eq!(encoding(&mut c, "long").await, bulk("listpack"));
    assert_eq!(c.cmd(&["HLEN", "big"]).await, int(200));
}

// ----- lazy freeing ----------------------------------------------------------------------------

async fn lazyfree_counts(c: &mut Raw) -> (u64, u64) {
    let info = text_of(&c.cmd(&["INFO", "memory"]).await);
    let field = |name| {
        info_field(&info, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("INFO memory has {name}"))
    };
    (
        field("lazyfree_pending_objects"),
        field("lazyfreed_objects"),
    )
}

/// Polls INFO until `lazyfreed_objects` is `freed` and nothing is pending.
async fn wait_freed(c: &mut Raw, freed: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let counts = lazyfree_counts(c).await;
        if counts == (0, freed) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lazyfree counts {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Large hashes removed by DEL, UNLINK, an overwrite, RENAME over them, expiry or FLUSHALL
/// ASYNC are freed by the lazy-free thread (counted in INFO); small ones inline.
#[tokio::test]
async fn large_values_are_freed_by_the_lazyfree_thread() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(lazyfree_counts(&mut c).await, (0, 0));
    fill(&mut c, "small", 0, 100).await;
    assert_eq!(c.cmd(&["DEL", "small"]).await, int(1));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "0"])
            .await,
        ok()
    );
    fill(&mut c, "table", 0, 64).await;
    assert_eq!(encoding(&mut c, "table").await, bulk("hashtable"));
    assert_eq!(c.cmd(&["UNLINK", "table"]).await, int(1));
    server.shared().store.lazyfree().drain();
    assert_eq!(
        lazyfree_counts(&mut c).await,
        (0, 0),
        "small values are freed inline"
    );
    // One more field than Redis's threshold of 64 allocations.
    fill(&mut c, "table", 0, 65).await;
    assert_eq!(c.cmd(&["DEL", "table"]).await, int(1));
    wait_freed(&mut c, 1).await;
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "128"])
            .await,
        ok()
    );

    fill(&mut c, "big", 0, 1000).await;
    assert_eq!(c.cmd(&["DEL", "big"]).await, int(1));
    wait_freed(&mut c, 2).await;
    fill(&mut c, "big", 0, 1000).await;
    assert_eq!(c.cmd(&["UNLINK", "big", "nokey"]).await, int(1));
    wait_freed(&mut c, 3).await;
    fill(&mut c, "big", 0, 1000).await;
    assert_eq!(c.cmd(&["SET", "big", "string"]).await, ok());
    wait_freed(&mut c, 4).await;
    assert_eq!(c.cmd(&["DEL", "big"]).await, int(1));
    fill(&mut c, "big", 0, 1000).await;
    assert_eq!(c.cmd(&["SET", "src", "v"]).await, ok());
    assert_eq!(c.cmd(&["RENAME", "src", "big"]).await, ok());
    wait_freed(&mut c, 5).await;
    assert_eq!(c.cmd(&["DEL", "big"]).await, int(1));
    fill(&mut c, "big", 0, 1000).await;
    assert_eq!(c.cmd(&["PEXPIRE", "big", "1"]).await, int(1));
    poll_until_reply(&mut c, &["EXISTS", "big"], int(0), Duration::from_secs(10)).await;
    wait_freed(&mut c, 6).await;
    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2"]).await, ok());
    assert_eq!(c.cmd(&["FLUSHALL", "ASYNC"]).await, ok());
    wait_freed(&mut c, 8).await;
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]).await, ok());
    assert_eq!(lazyfree_counts(&mut c).await, (0, 0));
}

/// While the lazy-free thread is stuck inside freeing a huge hash (a test hook holds it),
/// the DEL that removed it has replied and another client reads and writes a key of the
/// same shard: the free holds no shard lock.
#[tokio::test]
async fn a_slow_free_does_not_hold_the_shard() {
    let server = start_server().await;
    let lazyfree = server.shared().store.lazyfree();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (started, starts) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    lazyfree.set_before_free(move || {
        let _ = started.send(());
        let _ = released.lock().map(|r| r.recv());
    });
    let db = server.shared().store.db(0).expect("db 0");
    let shard = kvserver::store::shard_of(db.hash(b"big"));
    let neighbour = (0..)
        .map(|i| format!("neighbour:{i}"))
        .find(|key| kvserver::store::shard_of(db.hash(key.as_bytes())) == shard)
        .expect("a key in the same shard");
    let mut a = Raw::connect(server.addr()).await;
    let mut b = Raw::connect(server.addr()).await;
    assert_eq!(b.cmd(&["SET", &neighbour, "here"]).await, ok());
    fill(&mut a, "big", 0, 20_000).await;
    assert_eq!(a.cmd(&["DEL", "big"]).await, int(1));
    starts
        .recv_timeout(Duration::from_secs(30))
        .expect("the free starts on the lazy-free thread");
    // The free is in progress (held by the hook); the shard serves everyone.
    assert_eq!(b.cmd(&["GET", &neighbour]).await, bulk("here"));
    assert_eq!(b.cmd(&["SET", &neighbour, "again"]).await, ok());
    fill(&mut a, "big", 0, 20_000).await;
    assert_eq!(a.cmd(&["UNLINK", "big"]).await, int(1));
    assert_eq!(b.cmd(&["GET", &neighbour]).await, bulk("again"));
    assert_eq!(lazyfree_counts(&mut b).await, (2, 0));
    drop(release);
    wait_freed(&mut b, 2).await;
}
