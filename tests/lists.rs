//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET,
//! LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH and LMPOP; their errors, RESP2/RESP3 reply
//! shapes, WRONGTYPE, the deletion of an emptied list, the encodings, and the generic
//! commands on a list. Expected replies were checked against Redis 7 (7.2 where noted).

use std::path::Path;
use std::time::Duration;

use kvserver::config::FsyncPolicy;
use kvserver::ServerHandle;
use protocol::Frame;
use redis::AsyncCommands;

use crate::util::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

/// A null array (`*-1` in RESP2; decoded frames do not tell it from a null bulk string, so
/// the exact bytes are checked separately with [`raw_reply`]).
fn null_array() -> Frame {
    Frame::Null
}

/// The exact bytes of the reply to `args` (which must be `expected.len()` bytes long).
async fn raw_reply(c: &mut Raw, args: &[&str], expected: &[u8]) {
    c.send(&encode(args)).await;
    assert_eq!(
        String::from_utf8_lossy(&c.read_exact_bytes(expected.len()).await),
        String::from_utf8_lossy(expected),
        "{args:?}"
    );
}

fn ints(values: &[i64]) -> Frame {
    Frame::Array(values.iter().map(|&n| int(n)).collect())
}

async fn range(c: &mut Raw, key: &str) -> Frame {
    c.cmd(&["LRANGE", key, "0", "-1"]).await
}

#[tokio::test]
async fn push_pop_and_length() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b", "c"]).await, int(3));
    assert_eq!(c.cmd(&["LPUSH", "l", "x", "y"]).await, int(5));
    assert_eq!(range(&mut c, "l").await, bulks(&["y", "x", "a", "b", "c"]));
    assert_eq!(c.cmd(&["TYPE", "l"]).await, simple("list"));
    assert_eq!(c.cmd(&["LLEN", "l"]).await, int(5));
    assert_eq!(c.cmd(&["LLEN", "missing"]).await, int(0));
    assert_eq!(c.cmd(&["LPOP", "l"]).await, bulk("y"));
    assert_eq!(c.cmd(&["RPOP", "l"]).await, bulk("c"));
    assert_eq!(c.cmd(&["LPOP", "l", "2"]).await, bulks(&["x", "a"]));
    // A count past the length pops what there is; the emptied list is deleted.
    assert_eq!(c.cmd(&["RPOP", "l", "10"]).await, bulks(&["b"]));
    assert_eq!(c.cmd(&["EXISTS", "l"]).await, int(0));
    assert_eq!(c.cmd(&["LPOP", "l"]).await, nil());
    assert_eq!(c.cmd(&["LPOP", "l", "2"]).await, null_array());
    assert_eq!(c.cmd(&["LPOP", "l", "0"]).await, null_array());
    raw_reply(&mut c, &["LPOP", "l", "0"], b"*-1\r\n").await;
    raw_reply(&mut c, &["RPOP", "l", "3"], b"*-1\r\n").await;
    raw_reply(&mut c, &["RPOP", "l"], b"$-1\r\n").await;
    assert_eq!(c.cmd(&["RPUSH", "l", "a"]).await, int(1));
    assert_eq!(c.cmd(&["LPOP", "l", "0"]).await, Frame::Array(vec![]));
    assert_eq!(c.cmd(&["LPOP", "l", "-1"]).await, err(NOT_POSITIVE));
    assert_eq!(c.cmd(&["LPOP", "l", "x"]).await, err(NOT_POSITIVE));
    assert_eq!(c.cmd(&["RPOP", "l", "1", "2"]).await, arity_err("rpop"));
    assert_eq!(c.cmd(&["LPUSH", "l"]).await, arity_err("lpush"));
    // PUSHX only onto an existing list.
    assert_eq!(c.cmd(&["LPUSHX", "none", "a"]).await, int(0));
    assert_eq!(c.cmd(&["RPUSHX", "none", "a", "b"]).await, int(0));
    assert_eq!(c.cmd(&["EXISTS", "none"]).await, int(0));
    assert_eq!(c.cmd(&["LPUSHX", "l", "h1", "h2"]).await, int(3));
    assert_eq!(c.cmd(&["RPUSHX", "l", "t"]).await, int(4));
    assert_eq!(range(&mut c, "l").await, bulks(&["h2", "h1", "a", "t"]));
    // Binary-safe elements, the empty one included.
    assert_eq!(
        c.cmd(&[&b"RPUSH"[..], b"bin", b"\x00\r\n", b""]).await,
        int(2)
    );
    assert_eq!(
        c.cmd(&["LRANGE", "bin", "0", "-1"]).await,
        bulks(&[&b"\x00\r\n"[..], b""])
    );
}

#[tokio::test]
async fn lrange_indexes() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["RPUSH", "l", "0", "1", "2", "3", "4"]).await,
        int(5)
    );
    let cases: &[(&str, &str, &[&str])] = &[
        ("0", "-1", &["0", "1", "2", "3", "4"]),
        ("1", "2", &["1", "2"]),
        ("-2", "-1", &["3", "4"]),
        ("-100", "1", &["0", "1"]),
        ("3", "100", &["3", "4"]),
        ("2", "1", &[]),
        ("5", "10", &[]),
        ("0", "-6", &[]),
        (
            "-9223372036854775808",
            "9223372036854775807",
            &["0", "1", "2", "3", "4"],
        ),
    ];
    for (start, stop, expected) in cases {
        assert_eq!(
            c.cmd(&["LRANGE", "l", start, stop]).await,
            bulks(expected),
            "{start} {stop}"
        );
    }
    assert_eq!(c.cmd(&["LRANGE", "l", "x", "1"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["LRANGE", "missing", "0", "-1"]).await,
        bulks::<&str>(&[])
    );
    // Arguments are checked before the key's type.
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    assert_eq!(c.cmd(&["LRANGE", "s", "x", "1"]).await, err(NOT_INTEGER));
    assert_eq!(c.cmd(&["LRANGE", "s", "0", "1"]).await, err(WRONGTYPE));
}

#[tokio::test]
async fn lmove_and_rpoplpush() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["RPUSH", "src", "a", "b", "c"]).await, int(3));
    assert_eq!(
        c.cmd(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]).await,
        bulk("a")
    );
    assert_eq!(
        c.cmd(&["LMOVE", "src", "dst", "right", "left"]).await,
        bulk("c")
    );
    assert_eq!(range(&mut c, "dst").await, bulks(&["c", "a"]));
    assert_eq!(c.cmd(&["RPOPLPUSH", "src", "dst"]).await, bulk("b"));
    assert_eq!(c.cmd(&["EXISTS", "src"]).await, int(0));
    assert_eq!(range(&mut c, "dst").await, bulks(&["b", "c", "a"]));
    assert_eq!(c.cmd(&["RPOPLPUSH", "src", "dst"]).await, nil());
    assert_eq!(c.cmd(&["LMOVE", "src", "dst", "LEFT", "LEFT"]).await, nil());
    // The same list: a rotation.
    assert_eq!(
        c.cmd(&["LMOVE", "dst", "dst", "LEFT", "RIGHT"]).await,
        bulk("b")
    );
    assert_eq!(range(&mut c, "dst").await, bulks(&["c", "a", "b"]));
    assert_eq!(c.cmd(&["RPOPLPUSH", "dst", "dst"]).await, bulk("b"));
    assert_eq!(range(&mut c, "dst").await, bulks(&["b", "c", "a"]));
    assert_eq!(c.cmd(&["RPUSH", "one", "x"]).await, int(1));
    assert_eq!(
        c.cmd(&["LMOVE", "one", "one", "LEFT", "LEFT"]).await,
        bulk("x")
    );
    assert_eq!(range(&mut c, "one").await, bulks(&["x"]));
    // Errors: the directions first, then the source's type, then the destination's.
    assert_eq!(
        c.cmd(&["LMOVE", "dst", "x", "UP", "LEFT"]).await,
        err(SYNTAX)
    );
    assert_eq!(
        c.cmd(&["LMOVE", "dst", "x", "LEFT", "DOWN"]).await,
        err(SYNTAX)
    );
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    assert_eq!(
        c.cmd(&["LMOVE", "s", "dst", "LEFT", "LEFT"]).await,
        err(WRONGTYPE)
    );
    assert_eq!(
        c.cmd(&["LMOVE", "dst", "s", "LEFT", "LEFT"]).await,
        err(WRONGTYPE)
    );
    assert_eq!(c.cmd(&["RPOPLPUSH", "dst", "s"]).await, err(WRONGTYPE));
    // A missing source never looks at the destination.
    assert_eq!(c.cmd(&["LMOVE", "none", "s", "LEFT", "LEFT"]).await, nil());
    assert_eq!(range(&mut c, "dst").await, bulks(&["b", "c", "a"]));
}

#[tokio::test]
async fn lmpop_replies_and_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["RPUSH", "b", "1", "2", "3"]).await, int(3));
    let reply = c.cmd(&["LMPOP", "2", "a", "b", "LEFT"]).await;
    assert_eq!(reply, Frame::Array(vec![bulk("b"), bulks(&["1"])]));
    let reply = c
        .cmd(&["LMPOP", "2", "a", "b", "RIGHT", "COUNT", "10"])
        .await;
    assert_eq!(reply, Frame::Array(vec![bulk("b"), bulks(&["3", "2"])]));
    assert_eq!(c.cmd(&["EXISTS", "b"]).await, int(0));
    assert_eq!(c.cmd(&["LMPOP", "2", "a", "b", "LEFT"]).await, null_array());
    raw_reply(&mut c, &["LMPOP", "2", "a", "b", "LEFT"], b"*-1\r\n").await;
    let errors: &[(&[&str], &str)] = &[
        (&["0", "a", "LEFT"], "ERR numkeys should be greater than 0"),
        (&["-1", "a", "LEFT"], "ERR numkeys should be greater than 0"),
        (&["x", "a", "LEFT"], "ERR numkeys should be greater than 0"),
        (&["2", "a", "LEFT"], SYNTAX),
        (&["99999999999", "a", "LEFT"], SYNTAX),
        (&["9223372036854775807", "a", "LEFT"], SYNTAX),
        (&["1", "a", "UP"], SYNTAX),
        (
            &["1", "a", "LEFT", "COUNT", "0"],
            "ERR count should be greater than 0",
        ),
        (
            &["1", "a", "LEFT", "COUNT", "-1"],
            "ERR count should be greater than 0",
        ),
        (
            &["1", "a", "LEFT", "COUNT", "x"],
            "ERR count should be greater than 0",
        ),
        (&["1", "a", "LEFT", "COUNT", "1", "COUNT", "2"], SYNTAX),
        (&["1", "a", "LEFT", "COUNT"], SYNTAX),
        (&["1", "a", "LEFT", "FOO"], SYNTAX),
    ];
    for (tail, expected) in errors {
        let mut args = vec!["LMPOP"];
        args.extend_from_slice(tail);
        assert_eq!(c.cmd(&args).await, err(expected), "{tail:?}");
    }
    assert_eq!(c.cmd(&["LMPOP", "1", "a"]).await, arity_err("lmpop"));
    // WRONGTYPE for a key of another type met before a non-empty list, not after.
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    assert_eq!(c.cmd(&["RPUSH", "l", "x", "y"]).await, int(2));
    assert_eq!(
        c.cmd(&["LMPOP", "2", "s", "l", "LEFT"]).await,
        err(WRONGTYPE)
    );
    let reply = c.cmd(&["LMPOP", "2", "l", "s", "LEFT"]).await;
    assert_eq!(reply, Frame::Array(vec![bulk("l"), bulks(&["x"])]));
    // RESP3: the same shape, and a RESP3 null.
    c.cmd(&["HELLO", "3"]).await;
    c.send(&encode(&["LMPOP", "1", "l", "RIGHT"])).await;
    let expected = b"*2\r\n$1\r\nl\r\n*1\r\n$1\r\ny\r\n";
    assert_eq!(c.read_exact_bytes(expected.len()).await, expected);
    c.send(&encode(&["LMPOP", "1", "l", "RIGHT"])).await;
    assert_eq!(c.read_exact_bytes(3).await, b"_\r\n");
    c.send(&encode(&["LPOP", "l", "1"])).await;
    assert_eq!(c.read_exact_bytes(3).await, b"_\r\n");
    c.send(&encode(&["LPOP", "l"])).await;
    assert_eq!(c.read_exact_bytes(3).await, b"_\r\n");
}

#[tokio::test]
async fn wrongtype_on_every_command() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    let commands: &[&[&str]] = &[
        &["LPUSH", "s", "a"],
        &["RPUSH", "s", "a"],
        &["LPUSHX", "s", "a"],
        &["RPUSHX", "s", "a"],
        &["LPOP", "s"],
        &["RPOP", "s", "2"],
        &["LLEN", "s"],
        &["LRANGE", "s", "0", "1"],
        &["LINDEX", "s", "0"],
        &["LSET", "s", "0", "x"],
        &["LINSERT", "s", "BEFORE", "a", "b"],
        &["LREM", "s", "0", "a"],
        &["LTRIM", "s", "0", "1"],
        &["LPOS", "s", "a"],
        &["LMOVE", "s", "d", "LEFT", "LEFT"],
        &["RPOPLPUSH", "s", "d"],
        &["LMPOP", "1", "s", "LEFT"],
    ];
    for command in commands {
        assert_eq!(c.cmd(command).await, err(WRONGTYPE), "{command:?}");
    }
    assert_eq!(c.cmd(&["GET", "s"]).await, bulk("v"));
    assert_eq!(c.cmd(&["RPUSH", "l", "a"]).await, int(1));
    assert_eq!(c.cmd(&["GET", "l"]).await, err(WRONGTYPE));
    assert_eq!(c.cmd(&["HGET", "l", "a"]).await, err(WRONGTYPE));
}

#[tokio::test]
async fn redis_client_list_round_trip() {
    let server = start_server().await;
    let mut con = redis_client(server.addr()).await;
    let len: i64 = con.rpush("queue", &["a", "b", "c"]).await.unwrap();
    assert_eq!(len, 3);
    let len: i64 = con.lpush("queue", "z").await.unwrap();
    assert_eq!(len, 4);
    let all: Vec<String> = con.lrange("queue", 0, -1).await.unwrap();
    assert_eq!(all, ["z", "a", "b", "c"]);
    let first: Option<String> = con.lpop("queue", None).await.unwrap();
    assert_eq!(first.as_deref(), Some("z"));
    let last: Vec<String> = con
        .rpop("queue", std::num::NonZeroUsize::new(2))
        .await
        .unwrap();
    assert_eq!(last, ["c", "b"]);
    let len: i64 = con.llen("queue").await.unwrap();
    assert_eq!(len, 1);
}

#[tokio::test]
async fn lpos_ranks_counts_and_maxlen() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let elements = ["a", "b", "c", "1", "2", "3", "c", "c"];
    let mut args = vec!["RPUSH", "l"];
    args.extend_from_slice(&elements);
    assert_eq!(c.cmd(&args).await, int(8));
    let cases: &[(&[&str], Frame)] = &[
        (&["c"], int(2)),
        (&["c", "RANK", "2"], int(6)),
        (&["c", "RANK", "-1"], int(7)),
        (&["c", "RANK", "-3"], int(2)),
        (&["c", "RANK", "4"], nil()),
        (&["c", "COUNT", "0"], ints(&[2, 6, 7])),
        (&["c", "COUNT", "2"], ints(&[2, 6])),
        (&["c", "COUNT", "0", "RANK", "-1"], ints(&[7, 6, 2])),
        (&["c", "COUNT", "0", "RANK", "2"], ints(&[6, 7])),
        (&["c", "COUNT", "0", "MAXLEN", "7"], ints(&[2, 6])),
        (
            &["c", "COUNT", "0", "RANK", "-1", "MAXLEN", "2"],
            ints(&[7, 6]),
        ),
        (&["c", "MAXLEN", "2"], nil()),
        (&["zz", "COUNT", "0"], ints(&[])),
        (&["zz"], nil()),
        (&["a", "rank", "-9223372036854775807"], nil()),
    ];
    for (tail, expected) in cases {
        let mut args = vec!["LPOS", "l"];
        args.extend_from_slice(tail);
        assert_eq!(&c.cmd(&args).await, expected, "{tail:?}");
    }
    assert_eq!(c.cmd(&["LPOS", "missing", "a"]).await, nil());
    assert_eq!(
        c.cmd(&["LPOS", "missing", "a", "COUNT", "1"]).await,
        ints(&[])
    );
    let errors: &[(&[&str], &str)] = &[
        (&["a", "RANK", "0"], "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"),
        (&["a", "RANK", "x"], NOT_INTEGER),
        // Redis 7.2 (7.0 took this rank as if it were positive).
        (&["a", "RANK", "-9223372036854775808"], "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
        (&["a", "COUNT", "-1"], "ERR COUNT can't be negative"),
        (&["a", "COUNT", "x"], "ERR COUNT can't be negative"),
        (&["a", "MAXLEN", "-1"], "ERR MAXLEN can't be negative"),
        (&["a", "RANK"], SYNTAX),
        (&["a", "FOO", "1"], SYNTAX),
    ];
    for (tail, expected) in errors {
        let mut args = vec!["LPOS", "l"];
        args.extend_from_slice(tail);
        assert_eq!(c.cmd(&args).await, err(expected), "{tail:?}");
        // The options are checked before the key.
        args[1] = "missing";
        assert_eq!(c.cmd(&args).await, err(expected), "{tail:?}");
    }
}

#[tokio::test]
async fn lindex_and_lset() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b", "c"]).await, int(3));
    for (index, expected) in [
        ("0", bulk("a")),
        ("2", bulk("c")),
        ("-1", bulk("c")),
        ("-3", bulk("a")),
        ("3", nil()),
        ("-4", nil()),
    ] {
        assert_eq!(c.cmd(&["LINDEX", "l", index]).await, expected, "{index}");
    }
    assert_eq!(c.cmd(&["LINDEX", "l", "x"]).await, err(NOT_INTEGER));
    // The key is looked up before the index is parsed.
    assert_eq!(c.cmd(&["LINDEX", "missing", "x"]).await, nil());
    assert_eq!(c.cmd(&["LSET", "l", "1", "B"]).await, ok());
    assert_eq!(c.cmd(&["LSET", "l", "-1", "C"]).await, ok());
    assert_eq!(range(&mut c, "l").await, bulks(&["a", "B", "C"]));
    assert_eq!(
        c.cmd(&["LSET", "l", "3", "x"]).await,
        err("ERR index out of range")
    );
    assert_eq!(
        c.cmd(&["LSET", "l", "-4", "x"]).await,
        err("ERR index out of range")
    );
    assert_eq!(c.cmd(&["LSET", "l", "x", "x"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["LSET", "missing", "0", "x"]).await,
        err("ERR no such key")
    );
    assert_eq!(
        c.cmd(&["LSET", "missing", "x", "x"]).await,
        err("ERR no such key")
    );
    assert_eq!(c.cmd(&["LINDEX", "l", "0", "1"]).await, arity_err("lindex"));
}

#[tokio::test]
async fn linsert_lrem_and_ltrim() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b", "a", "c"]).await, int(4));
    assert_eq!(c.cmd(&["LINSERT", "l", "BEFORE", "a", "x"]).await, int(5));
    assert_eq!(c.cmd(&["LINSERT", "l", "after", "c", "y"]).await, int(6));
    assert_eq!(c.cmd(&["LINSERT", "l", "AFTER", "b", "z"]).await, int(7));
    assert_eq!(
        range(&mut c, "l").await,
        bulks(&["x", "a", "b", "z", "a", "c", "y"])
    );
    assert_eq!(
        c.cmd(&["LINSERT", "l", "BEFORE", "nope", "q"]).await,
        int(-1)
    );
    assert_eq!(
        c.cmd(&["LINSERT", "missing", "BEFORE", "a", "q"]).await,
        int(0)
    );
    assert_eq!(c.cmd(&["EXISTS", "missing"]).await, int(0));
    assert_eq!(
        c.cmd(&["LINSERT", "l", "MIDDLE", "a", "q"]).await,
        err(SYNTAX)
    );
    assert_eq!(
        c.cmd(&["LINSERT", "missing", "MIDDLE", "a", "q"]).await,
        err(SYNTAX)
    );
    // LREM: from the head, from the tail, all.
    assert_eq!(
        c.cmd(&["RPUSH", "r", "a", "b", "a", "c", "a", "b"]).await,
        int(6)
    );
    assert_eq!(c.cmd(&["LREM", "r", "1", "a"]).await, int(1));
    assert_eq!(range(&mut c, "r").await, bulks(&["b", "a", "c", "a", "b"]));
    assert_eq!(c.cmd(&["LREM", "r", "-1", "b"]).await, int(1));
    assert_eq!(range(&mut c, "r").await, bulks(&["b", "a", "c", "a"]));
    assert_eq!(c.cmd(&["LREM", "r", "0", "a"]).await, int(2));
    assert_eq!(c.cmd(&["LREM", "r", "0", "nope"]).await, int(0));
    assert_eq!(
        c.cmd(&["LREM", "r", "-9223372036854775808", "b"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["LREM", "r", "5", "c"]).await, int(1));
    assert_eq!(c.cmd(&["EXISTS", "r"]).await, int(0));
    assert_eq!(c.cmd(&["LREM", "r", "x", "c"]).await, err(NOT_INTEGER));
    assert_eq!(c.cmd(&["LREM", "missing", "1", "c"]).await, int(0));
    // LTRIM.
    assert_eq!(
        c.cmd(&["RPUSH", "t", "0", "1", "2", "3", "4", "5"]).await,
        int(6)
    );
    assert_eq!(c.cmd(&["LTRIM", "t", "1", "-2"]).await, ok());
    assert_eq!(range(&mut c, "t").await, bulks(&["1", "2", "3", "4"]));
    assert_eq!(c.cmd(&["LTRIM", "t", "-100", "100"]).await, ok());
    assert_eq!(c.cmd(&["LLEN", "t"]).await, int(4));
    assert_eq!(c.cmd(&["LTRIM", "t", "2", "2"]).await, ok());
    assert_eq!(range(&mut c, "t").await, bulks(&["3"]));
    assert_eq!(c.cmd(&["LTRIM", "t", "1", "0"]).await, ok());
    assert_eq!(c.cmd(&["EXISTS", "t"]).await, int(0));
    assert_eq!(c.cmd(&["LTRIM", "missing", "0", "1"]).await, ok());
    assert_eq!(
        c.cmd(&["LTRIM", "missing", "x", "1"]).await,
        err(NOT_INTEGER)
    );
}

/// Middle operations on a list of many packs, checked against a model element by element.
#[tokio::test]
async fn a_large_list_stays_consistent() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let n = 20_000;
    let mut model: Vec<String> = (0..n).map(|i| format!("element:{i}")).collect();
    for batch in model.chunks(1000) {
        let mut args = vec!["RPUSH", "big"];
        args.extend(batch.iter().map(String::as_str));
        c.cmd(&args).await;
    }
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "big"]).await,
        bulk("quicklist")
    );
    assert_eq!(
        c.cmd(&["LINDEX", "big", "10000"]).await,
        bulk("element:10000")
    );
    assert_eq!(c.cmd(&["LSET", "big", "12345", "changed"]).await, ok());
    model[12345] = "changed".into();
    assert_eq!(
        c.cmd(&["LINSERT", "big", "BEFORE", "element:777", "new"])
            .await,
        int(n + 1)
    );
    model.insert(777, "new".into());
    assert_eq!(c.cmd(&["LREM", "big", "0", "element:5000"]).await, int(1));
    model.retain(|e| e != "element:5000");
    assert_eq!(c.cmd(&["LTRIM", "big", "100", "-100"]).await, ok());
    model = model[100..model.len() - 99].to_vec();
    assert_eq!(
        c.cmd(&["LRANGE", "big", "9000", "9004"]).await,
        bulks(&model[9000..9005])
    );
    assert_eq!(
        c.cmd(&["LPOS", "big", "changed"]).await,
        int(12345 + 1 - 1 - 100)
    );
    let all = array_items(range(&mut c, "big").await);
    assert_eq!(all.len(), model.len());
    assert!(all.iter().zip(&model).all(|(got, want)| *got == bulk(want)));
    // Popped down to a few elements, it is compact again.
    assert_eq!(c.cmd(&["LTRIM", "big", "0", "9"]).await, ok());
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "big"]).await,
        bulk("listpack")
    );
}

/// OBJECT ENCODING follows `list-max-listpack-size` as Redis 7.2 does (Redis 7.0 reports
/// every list as quicklist).
#[tokio::test]
async fn encodings_follow_list_max_listpack_size() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b", "c"]).await, int(3));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]).await, bulk("listpack"));
    let big = "x".repeat(9000);
    assert_eq!(c.cmd(&["RPUSH", "l", &big]).await, int(4));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]).await, bulk("quicklist"));
    assert_eq!(c.cmd(&["RPOP", "l"]).await, bulk(&big));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]).await, bulk("listpack"));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "list-max-listpack-size", "4"])
            .await,
        ok()
    );
    assert_eq!(c.cmd(&["RPUSH", "l", "d"]).await, int(4));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]).await, bulk("listpack"));
    assert_eq!(c.cmd(&["RPUSH", "l", "e"]).await, int(5));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]).await, bulk("quicklist"));
    assert_eq!(range(&mut c, "l").await, bulks(&["a", "b", "c", "d", "e"]));
    // Down to one pack of two elements (half the bound): compact again.
    assert_eq!(c.cmd(&["RPOP", "l", "3"]).await, bulks(&["e", "d", "c"]));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]).await, bulk("listpack"));
}

#[tokio::test]
async fn generic_commands_on_lists() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b"]).await, int(2));
    assert_eq!(c.cmd(&["COPY", "l", "l2"]).await, int(1));
    assert_eq!(c.cmd(&["RPUSH", "l", "c"]).await, int(3));
    assert_eq!(range(&mut c, "l2").await, bulks(&["a", "b"]));
    assert_eq!(c.cmd(&["RENAME", "l2", "l3"]).await, ok());
    assert_eq!(c.cmd(&["EXPIRE", "l3", "100"]).await, int(1));
    // A push keeps the TTL.
    assert_eq!(c.cmd(&["LPUSH", "l3", "z"]).await, int(3));
    assert_eq!(c.cmd(&["TTL", "l3"]).await, int(100));
    let found = array_items(c.cmd(&["SCAN", "0", "TYPE", "list", "COUNT", "100"]).await);
    assert_eq!(sorted_bulks(found[1].clone()), [&b"l"[..], b"l3"]);
    assert_eq!(c.cmd(&["UNLINK", "l", "l3"]).await, int(2));
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
}

#[tokio::test]
async fn resp3_replies() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b"]).await, int(2));
    raw_reply(
        &mut c,
        &["LRANGE", "l", "0", "-1"],
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
    )
    .await;
    raw_reply(&mut c, &["LINDEX", "l", "5"], b"_\r\n").await;
    raw_reply(&mut c, &["LPOS", "l", "z"], b"_\r\n").await;
    raw_reply(&mut c, &["LPOS", "l", "b", "COUNT", "0"], b"*1\r\n:1\r\n").await;
    raw_reply(&mut c, &["LPOP", "l", "1"], b"*1\r\n$1\r\na\r\n").await;
    raw_reply(&mut c, &["RPOPLPUSH", "none", "l"], b"_\r\n").await;
    raw_reply(&mut c, &["LMOVE", "none", "l", "LEFT", "LEFT"], b"_\r\n").await;
}

async fn start_in(dir: &Path, appendonly: bool) -> ServerHandle {
    let dir = dir.to_path_buf();
    start_server_with(move |config| {
        config.dir = dir;
        config.appendonly = appendonly;
        config.appendfsync = FsyncPolicy::Always;
    })
    .await
}

async fn stop(server: ServerHandle) {
    server.shutdown();
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("server stops");
}

/// Every list, database by database, as `(db, key, elements)`.
async fn list_state(c: &mut Raw) -> Vec<(usize, String, Vec<Frame>)> {
    let mut state = Vec::new();
    for db in 0..2 {
        assert_eq!(c.cmd(&["SELECT", &db.to_string()]).await, ok());
        let mut keys: Vec<String> = array_items(c.cmd(&["KEYS", "*"]).await)
            .iter()
            .map(text_of)
            .collect();
        keys.sort();
        for key in keys {
            state.push((db, key.clone(), array_items(range(c, &key).await)));
        }
    }
    assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
    state
}

/// Every list write comes back after a restart that replays the log, after a rewrite and a
/// restart, and from a plain snapshot; a list of many packs included.
#[tokio::test]
async fn lists_survive_replay_rewrite_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true).await;
    let mut c = Raw::connect(server.addr()).await;
    let writes: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b", "c", "d", "e", "f"],
        &["LPUSH", "l", "z"],
        &["LPUSHX", "l", "y"],
        &["RPUSHX", "l", "g"],
        &["LPOP", "l"],
        &["RPOP", "l", "2"],
        &["LSET", "l", "1", "A"],
        &["LINSERT", "l", "AFTER", "b", "b2"],
        &["LREM", "l", "1", "c"],
        &["LTRIM", "l", "0", "-2"],
        &["RPUSH", "src", "1", "2", "3", "4"],
        &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "src", "dst"],
        &["LMPOP", "2", "nokey", "src", "RIGHT", "COUNT", "5"],
        &["RPUSH", "gone", "x"],
        &["LPOP", "gone", "3"],
        &["COPY", "l", "l1", "DB", "1"],
    ];
    for args in writes {
        let reply = c.cmd(args).await;
        assert!(!matches!(reply, Frame::Error(_)), "{args:?}: {reply:?}");
    }
    let big: Vec<String> = (0..5000).map(|i| format!("element:{i}")).collect();
    for batch in big.chunks(500) {
        let mut args = vec!["RPUSH", "big"];
        args.extend(batch.iter().map(String::as_str));
        c.cmd(&args).await;
    }
    assert_eq!(c.cmd(&["LSET", "big", "2500", "middle"]).await, ok());
    assert_eq!(
        c.cmd(&["LMPOP", "1", "big", "LEFT", "COUNT", "7"]).await,
        Frame::Array(vec![bulk("big"), bulks(&big[..7])])
    );
    let expected = list_state(&mut c).await;
    assert_eq!(expected.len(), 4, "{expected:?}");
    stop(server).await;

    let server = start_in(dir.path(), true).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(list_state(&mut c).await, expected, "after replay");
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        simple("Background append only file rewriting started")
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = text_of(&c.cmd(&["INFO", "persistence"]).await);
        if info_field(&info, "aof_rewrite_in_progress").as_deref() == Some("0") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rewrite finishes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A write after the rewrite lands in the new incremental log.
    assert_eq!(c.cmd(&["RPOP", "big"]).await, bulk("element:4999"));
    assert_eq!(c.cmd(&["SAVE"]).await, ok());
    stop(server).await;
    let mut expected = expected;
    if let Some((_, _, big)) = expected.iter_mut().find(|(_, key, _)| key == "big") {
        big.pop();
    }
    let server = start_in(dir.path(), true).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(list_state(&mut c).await, expected, "after rewrite");
    stop(server).await;
    let server = start_in(dir.path(), false).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(list_state(&mut c).await, expected, "from the snapshot");
    stop(server).await;
}

/// List writes are logged as Redis 7 logs them: LMPOP as `LPOP|RPOP key popped`, the others
/// as sent, and writes that changed nothing not at all.
#[tokio::test]
async fn list_log_records() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true).await;
    let mut c = Raw::connect(server.addr()).await;
    let commands: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b", "c"],
        // No change: not logged.
        &["LPUSHX", "none", "a"],
        &["LPOP", "l", "0"],
        &["LPOP", "none", "2"],
        &["LREM", "l", "0", "nope"],
        &["LTRIM", "l", "0", "-1"],
        &["LINSERT", "l", "BEFORE", "nope", "x"],
        &["LMOVE", "none", "l", "LEFT", "LEFT"],
        &["LMPOP", "1", "none", "LEFT"],
        &["LSET", "l", "9", "x"],
        // Changes.
        &["lpop", "l", "5"],
        &["RPUSH", "l", "a", "b", "c"],
        &["LMPOP", "2", "none", "l", "RIGHT", "COUNT", "10"],
        &["RPUSH", "l", "a", "b"],
        &["LMPOP", "1", "l", "LEFT"],
        &["RPOPLPUSH", "l", "l"],
        &["LMOVE", "l", "m", "LEFT", "RIGHT"],
    ];
    for args in commands {
        c.cmd(args).await;
    }
    stop(server).await;
    let incr = std::fs::read(dir.path().join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    let text = String::from_utf8_lossy(&incr);
    let words: Vec<&str> = text
        .split("\r\n")
        .filter(|w| !w.starts_with('*') && !w.starts_with('$') && !w.is_empty())
        .collect();
    assert_eq!(
        words.join(" "),
        "SELECT 0 RPUSH l a b c lpop l 5 RPUSH l a b c RPOP l 3 RPUSH l a b LPOP l 1 \
         RPOPLPUSH l l LMOVE l m LEFT RIGHT"
    );
}

/// Elements that are integers read back as the text that was sent; texts that only look like
/// integers (leading zeros, `-0`, out of range) stay texts, and searches tell them apart.
#[tokio::test]
async fn integer_elements_read_back_as_sent() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let elements = [
        "0",
        "-1",
        "007",
        "-0",
        "63",
        "64",
        "-129",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "1.5",
        "7",
    ];
    let mut args = vec!["RPUSH", "n"];
    args.extend_from_slice(&elements);
    assert_eq!(c.cmd(&args).await, int(elements.len() as i64));
    assert_eq!(range(&mut c, "n").await, bulks(&elements));
    assert_eq!(c.cmd(&["LPOS", "n", "7"]).await, int(11));
    assert_eq!(c.cmd(&["LPOS", "n", "007"]).await, int(2));
    assert_eq!(c.cmd(&["LPOS", "n", "-0"]).await, int(3));
    assert_eq!(c.cmd(&["LREM", "n", "0", "0"]).await, int(1));
    assert_eq!(
        c.cmd(&["LINDEX", "n", "-3"]).await,
        bulk("9223372036854775808")
    );
    assert_eq!(c.cmd(&["RPOP", "n"]).await, bulk("7"));
    assert_eq!(c.cmd(&["LPOP", "n"]).await, bulk("-1"));
}
