//! String commands: GET/SET and every SET option, the SET variants, MGET/MSET, GETSET, GETDEL,
//! GETEX, APPEND, STRLEN, GETRANGE, SETRANGE, the INCR family, INCRBYFLOAT, binary safety.
//! Expected replies were checked against Redis 7.

use redis::AsyncCommands;

use crate::util::*;

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

#[tokio::test]
async fn get_and_set() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["GET", "k"]).await, nil());
    assert_eq!(c.cmd(&["SET", "k", "v1"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v1"));
    assert_eq!(c.cmd(&["SET", "k", "v2"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v2"));
    assert_eq!(c.cmd(&["SET", "empty", ""]).await, ok());
    assert_eq!(c.cmd(&["GET", "empty"]).await, bulk(""));
    assert_eq!(c.cmd(&["GET"]).await, arity_err("get"));
    assert_eq!(c.cmd(&["GET", "a", "b"]).await, arity_err("get"));
    assert_eq!(c.cmd(&["SET", "k"]).await, arity_err("set"));
}

#[tokio::test]
async fn set_nx_xx_get() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "a", "XX"]).await, nil());
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "k", "a", "NX"]).await, ok());
    assert_eq!(c.cmd(&["SET", "k", "b", "NX"]).await, nil());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("a"));
    assert_eq!(c.cmd(&["SET", "k", "b", "XX"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("b"));
    // GET returns the old value (nil when absent), whether or not the write happens.
    assert_eq!(c.cmd(&["SET", "k", "c", "GET"]).await, bulk("b"));
    assert_eq!(c.cmd(&["SET", "k", "d", "NX", "GET"]).await, bulk("c"));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("c"));
    assert_eq!(c.cmd(&["SET", "new", "x", "GET"]).await, nil());
    assert_eq!(c.cmd(&["GET", "new"]).await, bulk("x"));
    assert_eq!(c.cmd(&["SET", "missing", "x", "XX", "GET"]).await, nil());
    assert_eq!(c.cmd(&["EXISTS", "missing"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "k", "e", "xx", "get"]).await, bulk("c"));
    // Repeating a flag is allowed, as in Redis.
    assert_eq!(c.cmd(&["SET", "k", "f", "GET", "GET"]).await, bulk("e"));
    assert_eq!(c.cmd(&["SET", "k", "g", "nx", "nx"]).await, nil());
}

#[tokio::test]
async fn set_expire_options() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "v", "EX", "100"]).await, ok());
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(100));
    assert_eq!(c.cmd(&["SET", "k", "v", "PX", "100000"]).await, ok());
    let pttl = int_of(&c.cmd(&["PTTL", "k"]).await);
    assert!((99_000..=100_000).contains(&pttl), "pttl {pttl}");

    let at = unix_ms() / 1000 + 200;
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EXAT", &at.to_string()]).await,
        ok()
    );
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]).await, int(at as i64));
    let at_ms = unix_ms() + 300_000;
    assert_eq!(
        c.cmd(&["SET", "k", "v", "PXAT", &at_ms.to_string()]).await,
        ok()
    );
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]).await, int(at_ms as i64));

    // KEEPTTL keeps the deadline; a plain SET clears it.
    assert_eq!(c.cmd(&["SET", "k", "w", "KEEPTTL"]).await, ok());
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]).await, int(at_ms as i64));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("w"));
    assert_eq!(c.cmd(&["SET", "k", "x"]).await, ok());
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1));

    // Options are case-insensitive and may come in any order; a repeated expire option
    // takes the last amount (Redis accepts `EX 10 EX 20`).
    assert_eq!(
        c.cmd(&["SET", "k", "v", "ex", "50", "xx", "get"]).await,
        bulk("x")
    );
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(50));
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "10", "EX", "20"]).await,
        ok()
    );
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(20));
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "abc", "EX", "30"]).await,
        ok()
    );
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(30));
    assert_eq!(c.cmd(&["SET", "k", "v", "KEEPTTL", "KEEPTTL"]).await, ok());
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(30));

    // An absolute time in the past stores nothing (the key is expired at once).
    assert_eq!(c.cmd(&["SET", "k", "v", "EXAT", "1"]).await, ok());
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "k", "v", "PXAT", "1"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, nil());
}

#[tokio::test]
async fn set_invalid_combinations() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
    let syntax: &[&[&str]] = &[
        &["NX", "XX"],
        &["XX", "NX"],
        &["EX", "10", "PX", "10"],
        &["PX", "10", "EX", "10"],
        &["EXAT", "10", "PXAT", "10"],
        &["KEEPTTL", "EX", "10"],
        &["EX", "10", "KEEPTTL"],
        &["PXAT", "99999999999999", "KEEPTTL"],
        &["EX"],
        &["EX", "10", "foo"],
        &["foo"],
        &["PERSIST"],
    ];
    for options in syntax {
        let mut args = vec!["SET", "k", "x"];
        args.extend_from_slice(options);
        assert_eq!(c.cmd(&args).await, err(SYNTAX), "SET k x {options:?}");
    }
    let invalid = err("ERR invalid expire time in 'set' command");
    for options in [
        ["EX", "0"],
        ["EX", "-1"],
        ["PX", "0"],
        ["EXAT", "0"],
        ["PXAT", "-1"],
        ["EX", "9999999999999999"],
        ["EX", "9223372036854775"],
    ] {
        let args = ["SET", "k", "x", options[0], options[1]];
        assert_eq!(c.cmd(&args).await, invalid, "SET k x {options:?}");
    }
    assert_eq!(
        c.cmd(&["SET", "k", "x", "PX", "abc"]).await,
        err(NOT_INTEGER)
    );
    assert_eq!(
        c.cmd(&["SET", "k", "x", "EX", "10", "EX", "abc"]).await,
        err(NOT_INTEGER)
    );
    // Nothing above changed the key.
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v"));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1));
}

#[tokio::test]
async fn setnx_setex_psetex() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SETNX", "k", "1"]).await, int(1));
    assert_eq!(c.cmd(&["SETNX", "k", "2"]).await, int(0));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("1"));

    assert_eq!(c.cmd(&["SETEX", "k", "100", "v"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v"));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(100));
    assert_eq!(c.cmd(&["PSETEX", "k", "100000", "w"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("w"));
    let pttl = int_of(&c.cmd(&["PTTL", "k"]).await);
    assert!((99_000..=100_000).contains(&pttl), "pttl {pttl}");

    assert_eq!(
        c.cmd(&["SETEX", "k", "0", "v"]).await,
        err("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(
        c.cmd(&["SETEX", "k", "99999999999999999", "v"]).await,
        err("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(
        c.cmd(&["PSETEX", "k", "-5", "v"]).await,
        err("ERR invalid expire time in 'psetex' command")
    );
    assert_eq!(c.cmd(&["SETEX", "k", "abc", "v"]).await, err(NOT_INTEGER));
    assert_eq!(c.cmd(&["SETEX", "k", "10"]).await, arity_err("setex"));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("w"));
}

#[tokio::test]
async fn mget_mset_msetnx() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]).await, ok());
    assert_eq!(
        c.cmd(&["MGET", "a", "nokey", "c", "b", "a"]).await,
        Frame::Array(vec![bulk("1"), nil(), bulk("3"), bulk("2"), bulk("1")])
    );
    // The last value of a key named twice wins.
    assert_eq!(c.cmd(&["MSET", "a", "x", "a", "y"]).await, ok());
    assert_eq!(c.cmd(&["GET", "a"]).await, bulk("y"));
    assert_eq!(c.cmd(&["MSET", "a"]).await, arity_err("mset"));
    assert_eq!(c.cmd(&["MSET", "a", "1", "b"]).await, arity_err("mset"));
    assert_eq!(c.cmd(&["MSETNX", "a"]).await, arity_err("msetnx"));
    assert_eq!(c.cmd(&["MSETNX", "a", "1", "z"]).await, arity_err("msetnx"));
    assert_eq!(c.cmd(&["MGET"]).await, arity_err("mget"));

    // MSETNX: all or nothing.
    assert_eq!(c.cmd(&["MSETNX", "n1", "1", "n2", "2"]).await, int(1));
    assert_eq!(c.cmd(&["MSETNX", "n3", "3", "n1", "x"]).await, int(0));
    assert_eq!(
        c.cmd(&["MGET", "n1", "n2", "n3"]).await,
        Frame::Array(vec![bulk("1"), bulk("2"), nil()])
    );

    // MSET clears TTLs, as SET does.
    assert_eq!(c.cmd(&["SET", "t", "v", "EX", "100"]).await, ok());
    assert_eq!(c.cmd(&["MSET", "t", "w"]).await, ok());
    assert_eq!(c.cmd(&["TTL", "t"]).await, int(-1));
}

#[tokio::test]
async fn getset_getdel() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["GETSET", "k", "1"]).await, nil());
    assert_eq!(c.cmd(&["GETSET", "k", "2"]).await, bulk("1"));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("2"));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100"]).await, int(1));
    assert_eq!(c.cmd(&["GETSET", "k", "3"]).await, bulk("2"));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1), "GETSET clears the TTL");

    assert_eq!(c.cmd(&["GETDEL", "k"]).await, bulk("3"));
    assert_eq!(c.cmd(&["GETDEL", "k"]).await, nil());
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, int(0));
    assert_eq!(c.cmd(&["GETDEL", "k", "x"]).await, arity_err("getdel"));
}

#[tokio::test]
async fn getex_options() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
    assert_eq!(c.cmd(&["GETEX", "k"]).await, bulk("v"));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1));
    assert_eq!(c.cmd(&["GETEX", "k", "EX", "100"]).await, bulk("v"));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(100));
    assert_eq!(c.cmd(&["GETEX", "k"]).await, bulk("v"));
    assert_eq!(
        c.cmd(&["TTL", "k"]).await,
        int(100),
        "plain GETEX keeps the TTL"
    );
    assert_eq!(c.cmd(&["GETEX", "k", "PX", "200000"]).await, bulk("v"));
    let pttl = int_of(&c.cmd(&["PTTL", "k"]).await);
    assert!((199_000..=200_000).contains(&pttl), "pttl {pttl}");
    let at = unix_ms() / 1000 + 300;
    assert_eq!(
        c.cmd(&["GETEX", "k", "EXAT", &at.to_string()]).await,
        bulk("v")
    );
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]).await, int(at as i64));
    assert_eq!(c.cmd(&["GETEX", "k", "PERSIST"]).await, bulk("v"));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1));
    assert_eq!(
        c.cmd(&["GETEX", "k", "PERSIST", "PERSIST"]).await,
        bulk("v")
    );
    assert_eq!(
        c.cmd(&["GETEX", "k", "ex", "10", "ex", "40"]).await,
        bulk("v")
    );
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(40));

    for options in [
        &["PERSIST", "EX", "10"][..],
        &["EX", "10", "PERSIST"],
        &["PX", "5", "EX", "5"],
        &["FOO"],
        &["EX"],
        &["KEEPTTL"],
        &["NX"],
    ] {
        let mut args = vec!["GETEX", "k"];
        args.extend_from_slice(options);
        assert_eq!(c.cmd(&args).await, err(SYNTAX), "GETEX k {options:?}");
    }
    assert_eq!(
        c.cmd(&["GETEX", "k", "EX", "0"]).await,
        err("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(
        c.cmd(&["GETEX", "k", "EXAT", "99999999999999999"]).await,
        err("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(c.cmd(&["GETEX", "k", "EX", "abc"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["TTL", "k"]).await,
        int(40),
        "failed GETEX changed nothing"
    );

    // A missing key is nil before the amount is even looked at (as Redis), but bad syntax
    // is still an error.
    assert_eq!(c.cmd(&["GETEX", "nokey", "EX", "0"]).await, nil());
    assert_eq!(c.cmd(&["GETEX", "nokey", "EX", "abc"]).await, nil());
    assert_eq!(c.cmd(&["GETEX", "nokey", "EX"]).await, err(SYNTAX));

    // An absolute time in the past deletes the key after returning it.
    assert_eq!(c.cmd(&["GETEX", "k", "PXAT", "1"]).await, bulk("v"));
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, int(0));
}

#[tokio::test]
async fn append_and_strlen() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["STRLEN", "k"]).await, int(0));
    assert_eq!(c.cmd(&["APPEND", "k", "hello"]).await, int(5));
    assert_eq!(c.cmd(&["APPEND", "k", " world"]).await, int(11));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("hello world"));
    assert_eq!(c.cmd(&["STRLEN", "k"]).await, int(11));
    assert_eq!(c.cmd(&["APPEND", "k", ""]).await, int(11));
    // APPEND keeps the TTL.
    assert_eq!(c.cmd(&["EXPIRE", "k", "100"]).await, int(1));
    assert_eq!(c.cmd(&["APPEND", "k", "!"]).await, int(12));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(100));
    assert_eq!(c.cmd(&["SET", "n", "12"]).await, ok());
    assert_eq!(c.cmd(&["APPEND", "n", "3"]).await, int(3));
    assert_eq!(c.cmd(&["INCR", "n"]).await, int(124));
}

#[tokio::test]
async fn getrange_follows_redis_7() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "Hello World"]).await, ok());
    let cases: &[(&str, &str, &str)] = &[
        ("0", "4", "Hello"),
        ("0", "-1", "Hello World"),
        ("-5", "-1", "World"),
        ("-3", "-1", "rld"),
        ("6", "100", "World"),
        ("1", "1", "e"),
        ("5", "2", ""),
        ("-1", "-5", ""),
        ("-100", "-50", "H"),
        ("0", "-100", "H"),
        ("-100", "2", "Hel"),
        ("20", "30", ""),
        ("10", "10", "d"),
    ];
    for (start, end, expected) in cases {
        assert_eq!(
            c.cmd(&["GETRANGE", "k", start, end]).await,
            bulk(expected),
            "GETRANGE k {start} {end}"
        );
    }
    assert_eq!(c.cmd(&["GETRANGE", "nokey", "0", "-1"]).await, bulk(""));
    assert_eq!(c.cmd(&["SET", "e", ""]).await, ok());
    assert_eq!(c.cmd(&["GETRANGE", "e", "0", "-1"]).await, bulk(""));
    assert_eq!(c.cmd(&["GETRANGE", "e", "-1", "0"]).await, bulk(""));
    assert_eq!(c.cmd(&["GETRANGE", "k", "x", "1"]).await, err(NOT_INTEGER));
    assert_eq!(c.cmd(&["GETRANGE", "k", "0"]).await, arity_err("getrange"));
}

#[tokio::test]
async fn setrange_pads_and_checks_limits() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SETRANGE", "k", "3", "ab"]).await, int(5));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk(b"\0\0\0ab"));
    assert_eq!(c.cmd(&["SETRANGE", "k", "1", "XYZ"]).await, int(5));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk(b"\0XYZb"));
    assert_eq!(c.cmd(&["SETRANGE", "k", "7", "!"]).await, int(8));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk(b"\0XYZb\0\0!"));
    // An empty patch never creates the key and returns the current length.
    assert_eq!(c.cmd(&["SETRANGE", "nokey", "5", ""]).await, int(0));
    assert_eq!(c.cmd(&["EXISTS", "nokey"]).await, int(0));
    assert_eq!(c.cmd(&["SETRANGE", "k", "536870912", ""]).await, int(8));

    assert_eq!(
        c.cmd(&["SETRANGE", "k", "-1", "x"]).await,
        err("ERR offset is out of range")
    );
    let too_big = err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    assert_eq!(c.cmd(&["SETRANGE", "k", "536870911", "xx"]).await, too_big);
    assert_eq!(c.cmd(&["SETRANGE", "k", "536870912", "x"]).await, too_big);
    assert_eq!(c.cmd(&["SETRANGE", "big", "536870912", "x"]).await, too_big);
    assert_eq!(c.cmd(&["EXISTS", "big"]).await, int(0));
    assert_eq!(c.cmd(&["SETRANGE", "k", "x", "a"]).await, err(NOT_INTEGER));
    assert_eq!(c.cmd(&["STRLEN", "k"]).await, int(8));
}

#[tokio::test]
async fn incr_decr_family() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["INCR", "n"]).await, int(1));
    assert_eq!(c.cmd(&["INCR", "n"]).await, int(2));
    assert_eq!(c.cmd(&["DECR", "n"]).await, int(1));
    assert_eq!(c.cmd(&["INCRBY", "n", "10"]).await, int(11));
    assert_eq!(c.cmd(&["INCRBY", "n", "-20"]).await, int(-9));
    assert_eq!(c.cmd(&["DECRBY", "n", "-9"]).await, int(0));
    assert_eq!(c.cmd(&["DECRBY", "m", "5"]).await, int(-5));
    assert_eq!(c.cmd(&["GET", "n"]).await, bulk("0"));
    assert_eq!(c.cmd(&["GET", "m"]).await, bulk("-5"));

    // INCR keeps the TTL.
    assert_eq!(c.cmd(&["EXPIRE", "n", "100"]).await, int(1));
    assert_eq!(c.cmd(&["INCR", "n"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "n"]).await, int(100));

    for bad in ["abc", " 1", "01", "+1", "1.5", "", "99999999999999999999"] {
        assert_eq!(c.cmd(&["SET", "s", bad]).await, ok());
        assert_eq!(
            c.cmd(&["INCR", "s"]).await,
            err(NOT_INTEGER),
            "INCR of {bad:?}"
        );
    }
    assert_eq!(c.cmd(&["INCRBY", "n", "foo"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["INCRBY", "n", "9223372036854775808"]).await,
        err(NOT_INTEGER)
    );

    let overflow = err("ERR increment or decrement would overflow");
    assert_eq!(c.cmd(&["SET", "max", "9223372036854775807"]).await, ok());
    assert_eq!(c.cmd(&["INCR", "max"]).await, overflow);
    assert_eq!(c.cmd(&["INCRBY", "max", "0"]).await, int(i64::MAX));
    assert_eq!(c.cmd(&["SET", "min", "-9223372036854775808"]).await, ok());
    assert_eq!(c.cmd(&["DECR", "min"]).await, overflow);
    assert_eq!(c.cmd(&["INCRBY", "min", "-1"]).await, overflow);
    assert_eq!(
        c.cmd(&["DECRBY", "x", "-9223372036854775808"]).await,
        err("ERR decrement would overflow")
    );
    assert_eq!(c.cmd(&["GET", "max"]).await, bulk("9223372036854775807"));
    assert_eq!(c.cmd(&["EXISTS", "x"]).await, int(0));
}

#[tokio::test]
async fn incrbyfloat_text_and_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "f", "10.50"]).await, ok());
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0.1"]).await, bulk("10.6"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "-0.1"]).await, bulk("10.5"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0"]).await, bulk("10.5"));
    assert_eq!(c.cmd(&["GET", "f"]).await, bulk("10.5"));
    assert_eq!(c.cmd(&["SET", "f", "3.0"]).await, ok());
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "1.5"]).await, bulk("4.5"));
    assert_eq!(c.cmd(&["SET", "f", "5"]).await, ok());
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "1e2"]).await, bulk("105"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "-105"]).await, bulk("0"));
    assert_eq!(
        c.cmd(&["INCRBYFLOAT", "new", "2.5e-3"]).await,
        bulk("0.0025")
    );
    assert_eq!(c.cmd(&["INCRBY", "f", "1"]).await, int(1));

    let not_float = err("ERR value is not a valid float");
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "abc"]).await, not_float);
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", " 1"]).await, not_float);
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "nan"]).await, not_float);
    assert_eq!(c.cmd(&["SET", "s", "hello"]).await, ok());
    assert_eq!(c.cmd(&["INCRBYFLOAT", "s", "1"]).await, not_float);
    assert_eq!(
        c.cmd(&["INCRBYFLOAT", "f", "inf"]).await,
        err("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(c.cmd(&["GET", "f"]).await, bulk("1"));
}

#[tokio::test]
async fn values_are_binary_safe() {
    let server = start_server().await;
    let value: &[u8] = b"a\0b\r\nc\r\n\0\xff$3\r\n";
    let key: &[u8] = b"k\0\r\ney";
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&[&b"SET"[..], key, value]).await, ok());
    assert_eq!(c.cmd(&[&b"GET"[..], key]).await, bulk(value));
    assert_eq!(c.cmd(&[&b"STRLEN"[..], key]).await, int(value.len() as i64));
    assert_eq!(
        c.cmd(&[&b"APPEND"[..], key, b"\0"]).await,
        int(value.len() as i64 + 1)
    );
    assert_eq!(
        c.cmd(&[&b"GETRANGE"[..], key, b"1", b"4"]).await,
        bulk(b"\0b\r\n")
    );
    assert_eq!(c.cmd(&["KEYS", "*"]).await, Frame::Array(vec![bulk(key)]));

    // The same through a real client library.
    let mut con = redis_client(server.addr()).await;
    let _: () = con.set(b"bin\r\n", value).await.expect("SET");
    let got: Vec<u8> = con.get(b"bin\r\n").await.expect("GET");
    assert_eq!(got, value);
    let got: Vec<u8> = con.get(key).await.expect("GET");
    assert_eq!(got, [value, b"\0"].concat());
}

#[tokio::test]
async fn redis_client_string_round_trip() {
    let server = start_server().await;
    let mut con = redis_client(server.addr()).await;
    let _: () = con.set("greeting", "hello").await.expect("SET");
    let got: Option<String> = con.get("greeting").await.expect("GET");
    assert_eq!(got.as_deref(), Some("hello"));
    let missing: Option<String> = con.get("nokey").await.expect("GET");
    assert_eq!(missing, None);
    let n: i64 = con.incr("counter", 5).await.expect("INCRBY");
    assert_eq!(n, 5);
    let _: () = con.mset(&[("a", "1"), ("b", "2")]).await.expect("MSET");
    let values: Vec<Option<String>> = con.mget(&["a", "b", "c"]).await.expect("MGET");
    assert_eq!(values, [Some("1".into()), Some("2".into()), None]);
    let error = redis::cmd("INCR")
        .arg("greeting")
        .query_async::<i64>(&mut con)
        .await
        .expect_err("INCR of a non-integer fails");
    assert_eq!(error.code(), Some("ERR"));
    assert_eq!(
        error.detail(),
        Some("value is not an integer or out of range")
    );
}
