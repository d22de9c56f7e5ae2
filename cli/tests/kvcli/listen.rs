//! One-shot `SUBSCRIBE`, `PSUBSCRIBE` and `SSUBSCRIBE`: kvcli listens and prints what is
//! published from another connection, as redis-cli renders it (raw when piped, formatted
//! with `--no-raw`, RESP2 and RESP3), until a signal ends it. Each test runs against
//! kvserver and against the real redis-server (skipped when it is not installed).

use std::os::unix::process::ExitStatusExt;

use protocol::Frame;

use crate::util::{eventually, numsub, Backend, Piped};

/// Publishes `message` on `channel` (with `command`, PUBLISH or SPUBLISH) and checks that
/// exactly one subscriber received it.
fn publish(port: u16, command: &str, channel: &str, message: &str) {
    let reply = crate::util::request(port, &[command, channel, message]);
    assert_eq!(reply, Frame::Integer(1), "{command} {channel}");
}

/// `kvcli SUBSCRIBE` with raw output (stdout is a pipe): confirmations and messages one
/// element a line, no banner; SIGINT ends it as it ends redis-cli, and the server drops
/// the subscription.
fn raw_subscribe(backend: Backend) {
    let Some(server) = backend.start() else {
        return;
    };
    let port = server.port();
    let mut kvcli = Piped::spawn(&["-p", &port.to_string(), "SUBSCRIBE", "ch", "other"]);
    assert_eq!(
        kvcli.expect_out("subscribe\nother\n2\n"),
        "subscribe\nch\n1\nsubscribe\nother\n2\n"
    );
    publish(port, "PUBLISH", "ch", "hello world");
    publish(port, "PUBLISH", "other", "two\nlines");
    publish(port, "PUBLISH", "ch", "");
    assert_eq!(
        kvcli.expect_out("message\nch\n\n"),
        "message\nch\nhello world\nmessage\nother\ntwo\nlines\nmessage\nch\n\n"
    );
    let status = kvcli.signal_and_wait("INT");
    assert_eq!(
        status.signal(),
        Some(2),
        "ended by SIGINT as redis-cli: {status}"
    );
    let (out, err) = kvcli.rest();
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    eventually("the subscription is gone", || numsub(port, "ch") == 0);
}

#[test]
fn raw_subscribe_kvserver() {
    raw_subscribe(Backend::Kvserver);
}

#[test]
fn raw_subscribe_redis() {
    raw_subscribe(Backend::Redis);
}

/// `--no-raw PSUBSCRIBE`: the banner, then numbered elements with quoted strings; in RESP3
/// (`-3`) the same text, the messages being push frames.
fn formatted_psubscribe(backend: Backend, resp3: bool) {
    let Some(server) = backend.start() else {
        return;
    };
    let port = server.port().to_string();
    let mut args = vec!["-p", &port, "--no-raw", "PSUBSCRIBE", "a*"];
    if resp3 {
        args.insert(0, "-3");
    }
    let mut kvcli = Piped::spawn(&args);
    assert_eq!(
        kvcli.expect_out("3) (integer) 1\n"),
        "Reading messages... (press Ctrl-C to quit)\n\
         1) \"psubscribe\"\n2) \"a*\"\n3) (integer) 1\n"
    );
    publish(server.port(), "PUBLISH", "abc", "caf\u{e9} \"q\"\x01");
    assert_eq!(
        kvcli.expect_out("4) \"caf\\xc3\\xa9 \\\"q\\\"\\x01\"\n"),
        "1) \"pmessage\"\n2) \"a*\"\n3) \"abc\"\n4) \"caf\\xc3\\xa9 \\\"q\\\"\\x01\"\n"
    );
    let status = kvcli.signal_and_wait("TERM");
    assert_eq!(status.signal(), Some(15), "{status}");
}

#[test]
fn formatted_psubscribe_kvserver() {
    formatted_psubscribe(Backend::Kvserver, false);
    formatted_psubscribe(Backend::Kvserver, true);
}

#[test]
fn formatted_psubscribe_redis() {
    formatted_psubscribe(Backend::Redis, false);
    formatted_psubscribe(Backend::Redis, true);
}

/// `SSUBSCRIBE` listens to sharded channels; a refused subscription (no channel) prints
/// the error and ends the listening at once, with status 0 as in redis-cli.
fn ssubscribe_and_refusal(backend: Backend) {
    let Some(server) = backend.start() else {
        return;
    };
    let port = server.port().to_string();
    let mut kvcli = Piped::spawn(&["-p", &port, "-3", "SSUBSCRIBE", "sch"]);
    assert_eq!(kvcli.expect_out("sch\n1\n"), "ssubscribe\nsch\n1\n");
    publish(server.port(), "SPUBLISH", "sch", "sharded");
    assert_eq!(kvcli.expect_out("sharded\n"), "smessage\nsch\nsharded\n");
    kvcli.signal_and_wait("INT");

    for (args, expected) in [
        (
            vec!["SUBSCRIBE"],
            "ERR wrong number of arguments for 'subscribe' command\n\n",
        ),
        (
            vec!["--no-raw", "SSUBSCRIBE"],
            "Reading messages... (press Ctrl-C to quit)\n\
             (error) ERR wrong number of arguments for 'ssubscribe' command\n",
        ),
    ] {
        let mut all = vec!["-p", port.as_str()];
        all.extend(args);
        let run = crate::util::kvcli(&all, b"");
        assert_eq!(
            (run.code, run.out()),
            (Some(0), expected.to_owned()),
            "{all:?}"
        );
    }
}

#[test]
fn ssubscribe_and_refusal_kvserver() {
    ssubscribe_and_refusal(Backend::Kvserver);
}

#[test]
fn ssubscribe_and_refusal_redis() {
    ssubscribe_and_refusal(Backend::Redis);
}

/// The server going away ends the listening with the error and status 1.
#[test]
fn lost_connection_ends_listening() {
    let Some(server) = Backend::Kvserver.start() else {
        return;
    };
    let port = server.port().to_string();
    let mut kvcli = Piped::spawn(&["-p", &port, "SUBSCRIBE", "ch"]);
    kvcli.expect_out("subscribe\nch\n1\n");
    drop(server);
    kvcli.expect_err("Error: Server closed the connection\n");
    assert_eq!(kvcli.finish(), Some(1));
}
