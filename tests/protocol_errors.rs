//! The wire protocol over raw sockets: inline commands typed the way netcat sends them,
//! pipelining, protocol errors (reply, then close), the bulk length limit, and big values
//! arriving in small pieces.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::util::*;

#[tokio::test]
async fn inline_commands_like_netcat() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    c.send(b"SET \"a b\" 'c d'\r\nGET \"a b\"\r\n").await;
    assert_eq!(c.read().await, ok());
    assert_eq!(c.read().await, bulk("c d"));

    // Escapes inside double quotes; single quotes only know \'.
    c.send(b"SET k \"\\x00\\x41\\n\\r\\t\\\"z\\\\\"\r\nGET k\r\nSTRLEN k\r\n")
        .await;
    assert_eq!(c.read().await, ok());
    assert_eq!(c.read().await, bulk(b"\0A\n\r\t\"z\\"));
    assert_eq!(c.read().await, int(8));
    c.send(b"SET k 'a\\'b\\n'\r\nGET k\r\n").await;
    assert_eq!(c.read().await, ok());
    assert_eq!(c.read().await, bulk("a'b\\n"));
    c.send(b"ECHO \"\\xe9\\a\\b\"\r\nECHO \"\\xzz\"\r\nECHO a\\x41\r\n")
        .await;
    assert_eq!(c.read().await, bulk(b"\xe9\x07\x08"));
    assert_eq!(c.read().await, bulk("xzz"));
    assert_eq!(c.read().await, bulk("a\\x41"));
    c.send(b"ECHO \"\"\r\nECHO ''\r\n").await;
    assert_eq!(c.read().await, bulk(""));
    assert_eq!(c.read().await, bulk(""));

    // Bare LF, extra spaces and tabs, empty lines, and empty multibulks are all fine.
    c.send(b"  ping  \t \r\n\r\n\n*0\r\n*-1\r\nPING\nECHO   x\r\n")
        .await;
    assert_eq!(c.read().await, simple("PONG"));
    assert_eq!(c.read().await, simple("PONG"));
    assert_eq!(c.read().await, bulk("x"));
    // Errors are ordinary replies.
    c.send(b"PING \"a\" b\r\nnosuch x\r\n").await;
    assert_eq!(c.read().await, arity_err("ping"));
    assert_eq!(
        c.read().await,
        err("ERR unknown command 'nosuch', with args beginning with: 'x' ")
    );
    c.send(b"*1\r\n$0\r\n\r\n").await;
    assert_eq!(
        c.read().await,
        err("ERR unknown command '', with args beginning with: ")
    );
    // Inline and RESP requests mix freely.
    c.send(b"SET mixed 1\r\n*2\r\n$4\r\nINCR\r\n$5\r\nmixed\r\nGET mixed\r\n")
        .await;
    assert_eq!(c.read().await, ok());
    assert_eq!(c.read().await, int(2));
    assert_eq!(c.read().await, bulk("2"));
}

#[tokio::test]
async fn a_thousand_pipelined_commands_in_one_write() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut pipeline = Vec::new();
    for i in 0..1000 {
        match i % 3 {
            0 => pipeline.extend(encode(&["INCR", "n"])),
            1 => pipeline.extend(format!("ECHO msg-{i}\r\n").into_bytes()),
            _ => pipeline.extend(encode(&["GET", "n"])),
        }
    }
    c.send(&pipeline).await;
    let mut n = 0;
    for i in 0..1000 {
        let reply = c.read().await;
        match i % 3 {
            0 => {
                n += 1;
                assert_eq!(reply, int(n), "reply {i}");
            }
            1 => assert_eq!(reply, bulk(format!("msg-{i}")), "reply {i}"),
            _ => assert_eq!(reply, bulk(n.to_string()), "reply {i}"),
        }
    }
    assert_eq!(c.cmd(&["GET", "n"]).await, bulk("334"));
}

/// Requests with thousands of arguments, between small ones on the same connection: the
/// server reads arguments in place from its read buffer and reuses (or, past a size, drops)
/// its list of argument positions from one request to the next.
#[tokio::test]
async fn requests_with_thousands_of_arguments() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let keys: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
    let mut mset = vec!["MSET".to_owned()];
    for (i, key) in keys.iter().enumerate() {
        mset.push(key.clone());
        mset.push(format!("v{i}"));
    }
    let mut del = vec!["DEL".to_owned()];
    del.extend(keys.iter().take(2000).cloned());
    let mut pipeline = encode(&["SET", "small", "1"]);
    pipeline.extend(encode(&mset));
    pipeline.extend(encode(&["GET", "k2999"]));
    pipeline.extend(encode(&del));
    pipeline.extend(b"GET k1999\r\nGET k2000\r\n");
    pipeline.extend(encode(&["DBSIZE"]));
    c.send(&pipeline).await;
    assert_eq!(c.read().await, ok());
    assert_eq!(c.read().await, ok());
    assert_eq!(c.read().await, bulk("v2999"));
    assert_eq!(c.read().await, int(2000));
    assert_eq!(c.read().await, nil());
    assert_eq!(c.read().await, bulk("v2000"));
    assert_eq!(c.read().await, int(1001));
}

#[tokio::test]
async fn pipelined_replies_bigger_than_the_output_buffer() {
    // 100 replies of 100 KB: the server has to write out in the middle of the batch.
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let value: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(c.cmd(&[&b"SET"[..], b"big", &value]).await, ok());
    let mut pipeline = Vec::new();
    for i in 0..100 {
        pipeline.extend(encode(&["GET", "big"]));
        pipeline.extend(encode(&["ECHO", &i.to_string()]));
    }
    c.send(&pipeline).await;
    for i in 0..100 {
        assert_eq!(c.read().await, bulk(&value), "GET {i}");
        assert_eq!(c.read().await, bulk(i.to_string()));
    }
}

/// Sends `PING` then `bad` on a fresh connection: expects PONG, the error line, then EOF.
async fn assert_protocol_error(addr: std::net::SocketAddr, bad: &[u8], expected: &str) {
    let mut c = Raw::connect(addr).await;
    c.send(&[b"PING\r\n", bad].concat()).await;
    assert_eq!(
        c.read().await,
        simple("PONG"),
        "{:?}",
        String::from_utf8_lossy(bad)
    );
    assert_eq!(
        c.read().await,
        err(&format!("ERR Protocol error: {expected}")),
        "{:?}",
        String::from_utf8_lossy(bad)
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn protocol_errors_reply_then_close() {
    let server = start_server().await;
    let addr = server.addr();
    let cases: &[(&[u8], &str)] = &[
        (b"*1\r\n$abc\r\n", "invalid bulk length"),
        (b"*1\r\n$-5\r\n", "invalid bulk length"),
        (b"*2\r\n$4\r\nPING\r\n$-1\r\n", "invalid bulk length"),
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*1\r\n+PING\r\n", "expected '$', got '+'"),
        (b"SET k \"abc\r\n", "unbalanced quotes in request"),
        (b"SET k \"abc\"x\r\n", "unbalanced quotes in request"),
        (b"ECHO a\"b\"c\r\n", "unbalanced quotes in request"),
        (b"SET k 'abc\r\n", "unbalanced quotes in request"),
    ];
    for (bad, expected) in cases {
        assert_protocol_error(addr, bad, expected).await;
    }
    // Lines too long to be a request at all.
    let mut long_inline = vec![b'a'; 70_000];
    assert_protocol_error(addr, &long_inline, "too big inline request").await;
    long_inline.splice(0..0, b"*1\r\n$".iter().copied());
    long_inline.iter_mut().skip(5).for_each(|b| *b = b'9');
    assert_protocol_error(addr, &long_inline, "too big bulk count string").await;

    // The server is unaffected.
    let mut c = Raw::connect(addr).await;
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
}

#[tokio::test]
async fn bulk_longer_than_the_configured_limit() {
    let server = start_server_with(|config| config.proto_max_bulk_len = 1024).await;
    let mut c = Raw::connect(server.addr()).await;
    let fits = vec![b'x'; 1024];
    assert_eq!(c.cmd(&[&b"SET"[..], b"k", &fits]).await, ok());
    assert_eq!(c.cmd(&["STRLEN", "k"]).await, int(1024));
    // Strings cannot grow past the limit either (Redis's checkStringLength).
    let too_big = err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    assert_eq!(c.cmd(&["APPEND", "k", "y"]).await, too_big);
    assert_eq!(c.cmd(&["SETRANGE", "k", "1024", "y"]).await, too_big);
    assert_eq!(
        c.cmd(&["SETRANGE", "other", "1000", "0123456789012345678901234"])
            .await,
        too_big
    );
    assert_eq!(c.cmd(&["SETRANGE", "k", "1023", "y"]).await, int(1024));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "proto-max-bulk-len"]).await,
        bulks(&["proto-max-bulk-len", "1024"])
    );

    // The header alone is enough to refuse: no need to send the payload.
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n").await;
    assert_eq!(
        c.read().await,
        err("ERR Protocol error: invalid bulk length")
    );
    c.expect_closed().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["STRLEN", "k"]).await, int(1024));
}

#[tokio::test]
async fn big_value_sent_in_small_chunks() {
    const LEN: usize = 5 * 1024 * 1024;
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let value: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let request = encode(&[&b"SET"[..], b"big", &value]);
    for chunk in request.chunks(4096) {
        c.send(chunk).await;
        c.stream().flush().await.expect("flush");
        tokio::task::yield_now().await;
    }
    assert_eq!(c.read().await, ok());
    assert_eq!(c.cmd(&["STRLEN", "big"]).await, int(LEN as i64));
    assert_eq!(c.cmd(&["GET", "big"]).await, bulk(&value));
    assert_eq!(
        c.cmd(&["GETRANGE", "big", "-3", "-1"]).await,
        bulk(&value[LEN - 3..])
    );
}

#[tokio::test]
async fn client_vanishing_mid_request_does_not_disturb_others() {
    let server = start_server().await;
    let mut other = Raw::connect(server.addr()).await;
    let mut c = Raw::connect(server.addr()).await;
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\npartial")
        .await;
    c.stream().shutdown().await.expect("shutdown write half");
    c.expect_closed().await;
    drop(c);
    assert_eq!(other.cmd(&["EXISTS", "k"]).await, int(0));
    // The registry forgets the vanished client.
    for _ in 0..500 {
        let list = text_of(&other.cmd(&["CLIENT", "LIST"]).await);
        if list.lines().count() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the closed client is still listed");
}
