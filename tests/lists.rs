//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET,
//! LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH and LMPOP; their errors, RESP2/RESP3 reply
//! shapes, WRONGTYPE, the deletion of an emptied list, the encodings, and the generic
//! commands on a list. Expected replies were checked against Redis 7 (7.2 where noted).

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
