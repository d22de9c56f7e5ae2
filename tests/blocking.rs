//! Blocking commands end to end (issue 16): BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP over real sockets, with CLIENT UNBLOCK, CLIENT KILL and INFO's
//! `blocked_clients`. A client is known to be blocked when INFO counts it (no sleeps, no
//! wall-clock asserts); the test server runs two connection threads, and connections are
//! dealt to them in turn, so consecutive clients live on different threads.

use std::path::Path;
use std::time::Duration;

use kvserver::config::FsyncPolicy;
use kvserver::ServerHandle;

use crate::util::*;

/// Longest a test waits for the server to count its blocked clients.
const SETTLE: Duration = Duration::from_secs(10);

/// Waits until INFO reports `n` blocked clients.
async fn wait_blocked(c: &mut Raw, n: usize) {
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let info = text_of(&c.cmd(&["INFO", "clients"]).await);
        let count = info_field(&info, "blocked_clients").expect("blocked_clients in INFO");
        if count == n.to_string() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "blocked_clients is {count}, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A client that sent a blocking command and now waits in it.
async fn blocked(server: &ServerHandle, control: &mut Raw, args: &[&str], count: usize) -> Raw {
    let mut client = Raw::connect(server.addr()).await;
    client.send(&encode(args)).await;
    wait_blocked(control, count).await;
    client
}

fn pair(key: &str, element: &str) -> Frame {
    bulks(&[key, element])
}

#[tokio::test]
async fn clients_are_served_in_the_order_they_blocked() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut first = blocked(&server, &mut c, &["BLPOP", "q", "0"], 1).await;
    let mut second = blocked(&server, &mut c, &["BRPOP", "q", "0"], 2).await;
    let mut third = blocked(&server, &mut c, &["BLPOP", "q", "0"], 3).await;
    // The push completes (its reply counts all three), then the waiters are served.
    assert_eq!(c.cmd(&["RPUSH", "q", "a", "b", "c", "d"]).await, int(4));
    assert_eq!(first.read().await, pair("q", "a"));
    assert_eq!(second.read().await, pair("q", "d"), "BRPOP pops the tail");
    assert_eq!(third.read().await, pair("q", "b"));
    assert_eq!(c.cmd(&["LRANGE", "q", "0", "-1"]).await, bulks(&["c"]));
    wait_blocked(&mut c, 0).await;
    // One element for three waiters: only the first is served, the others still wait.
    assert_eq!(c.cmd(&["DEL", "q"]).await, int(1));
    let mut a = blocked(&server, &mut c, &["BLPOP", "q", "0"], 1).await;
    let mut b = blocked(&server, &mut c, &["BLPOP", "q", "0"], 2).await;
    assert_eq!(c.cmd(&["LPUSH", "q", "x"]).await, int(1));
    assert_eq!(a.read().await, pair("q", "x"));
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["LPUSH", "q", "y"]).await, int(1));
    assert_eq!(b.read().await, pair("q", "y"));
    assert_eq!(
        c.cmd(&["EXISTS", "q"]).await,
        int(0),
        "an emptied list is deleted"
    );
}

#[tokio::test]
async fn the_first_ready_key_in_argument_order_is_taken() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    // Non-blocking path: both keys have elements, the first in argument order wins.
    assert_eq!(c.cmd(&["RPUSH", "k1", "one"]).await, int(1));
    assert_eq!(c.cmd(&["RPUSH", "k2", "two"]).await, int(1));
    assert_eq!(
        c.cmd(&["BLPOP", "nokey", "k2", "k1", "0"]).await,
        pair("k2", "two")
    );
    assert_eq!(c.cmd(&["BLPOP", "k2", "k1", "0"]).await, pair("k1", "one"));
    // Blocking path: whichever key gets an element serves it.
    let mut waiter = blocked(&server, &mut c, &["BLPOP", "a", "b", "c", "0"], 1).await;
    assert_eq!(c.cmd(&["RPUSH", "b", "x"]).await, int(1));
    assert_eq!(waiter.read().await, pair("b", "x"));
    wait_blocked(&mut c, 0).await;
    // Its registrations on the other keys are gone: a push there stays.
    assert_eq!(c.cmd(&["RPUSH", "a", "stays"]).await, int(1));
    assert_eq!(c.cmd(&["LLEN", "a"]).await, int(1));
    // A key of another type is WRONGTYPE at block time (before or after an empty key), and
    // nothing blocks.
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    let wrongtype = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(c.cmd(&["BLPOP", "nokey", "s", "0"]).await, wrongtype);
    assert_eq!(c.cmd(&["BZPOPMIN", "a", "0"]).await, wrongtype);
    assert_eq!(
        c.cmd(&["BLMPOP", "0", "2", "nokey", "s", "LEFT"]).await,
        wrongtype
    );
    assert_eq!(
        c.cmd(&["BLMOVE", "s", "d", "LEFT", "LEFT", "0"]).await,
        wrongtype
    );
    assert_eq!(
        c.cmd(&["BLMOVE", "a", "s", "LEFT", "LEFT", "0"]).await,
        wrongtype
    );
    assert_eq!(c.cmd(&["LLEN", "a"]).await, int(1), "nothing moved");
    wait_blocked(&mut c, 0).await;
    // A key that becomes another type while a client waits does not serve it; once it is a
    // list again, it does.
    let mut waiter = blocked(&server, &mut c, &["BLPOP", "later", "0"], 1).await;
    assert_eq!(c.cmd(&["SET", "later", "string"]).await, ok());
    assert_eq!(c.cmd(&["ZADD", "later2", "1", "m"]).await, int(1));
    assert_eq!(c.cmd(&["RENAME", "later2", "later"]).await, ok());
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["DEL", "later"]).await, int(1));
    assert_eq!(c.cmd(&["RPUSH", "later", "now"]).await, int(1));
    assert_eq!(waiter.read().await, pair("later", "now"));
}

#[tokio::test]
async fn timeouts_reply_null_in_resp2_and_resp3() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let commands: [&[&str]; 8] = [
        &["BLPOP", "nokey", "0.01"],
        &["BRPOP", "nokey", "other", "0.01"],
        &["BLMOVE", "nokey", "dst", "LEFT", "RIGHT", "0.01"],
        &["BRPOPLPUSH", "nokey", "dst", "0.01"],
        &["BLMPOP", "0.01", "1", "nokey", "LEFT", "COUNT", "2"],
        &["BZPOPMIN", "nokey", "0.01"],
        &["BZPOPMAX", "nokey", "0.01"],
        &["BZMPOP", "0.01", "1", "nokey", "MAX"],
    ];
    for command in commands {
        c.send(&encode(command)).await;
        assert_eq!(c.read_exact_bytes(5).await, b"*-1\r\n", "{command:?}");
    }
    c.send(&encode(&["HELLO", "3"])).await;
    c.read().await;
    for command in commands {
        c.send(&encode(command)).await;
        assert_eq!(c.read_exact_bytes(3).await, b"_\r\n", "{command:?}");
    }
    // Nothing was created or logged by a timed-out command.
    assert_eq!(c.cmd(&["EXISTS", "dst"]).await, int(0));
    wait_blocked(&mut c, 0).await;
    // 0 waits as long as it takes: still blocked after other clients' work, served later.
    let mut forever = blocked(&server, &mut c, &["BLPOP", "f", "0"], 1).await;
    // (Not awaited as blocked: it may time out before INFO would count it.)
    let mut timed = Raw::connect(server.addr()).await;
    timed.send(&encode(&["BLPOP", "f", "0.05"])).await;
    assert_eq!(timed.read().await, nil());
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["RPUSH", "f", "x"]).await, int(1));
    assert_eq!(forever.read().await, pair("f", "x"));
}

#[tokio::test]
async fn timeout_argument_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let negative = err("ERR timeout is negative");
    let not_float = err("ERR timeout is not a float or out of range");
    let out_of_range = err("ERR timeout is out of range");
    assert_eq!(c.cmd(&["BLPOP", "k", "-1"]).await, negative);
    assert_eq!(c.cmd(&["BLPOP", "k", "-inf"]).await, negative);
    assert_eq!(c.cmd(&["BLPOP", "k", "abc"]).await, not_float);
    assert_eq!(c.cmd(&["BLPOP", "k", "nan"]).await, not_float);
    assert_eq!(c.cmd(&["BLPOP", "k", " 1"]).await, not_float);
    // Redis 7.2's range checks (7.0 called these negative).
    assert_eq!(c.cmd(&["BLPOP", "k", "inf"]).await, out_of_range);
    assert_eq!(c.cmd(&["BRPOP", "k", "1e400"]).await, out_of_range);
    assert_eq!(
        c.cmd(&["BZPOPMIN", "k", "99999999999999999"]).await,
        out_of_range
    );
    assert_eq!(
        c.cmd(&["BLMOVE", "a", "b", "UP", "LEFT", "x"]).await,
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["BLMOVE", "a", "b", "LEFT", "LEFT", "x"]).await,
        not_float
    );
    assert_eq!(c.cmd(&["BRPOPLPUSH", "a", "b", "-2"]).await, negative);
    // BLMPOP and BZMPOP check their other arguments before the timeout.
    assert_eq!(
        c.cmd(&["BLMPOP", "x", "0", "a", "LEFT"]).await,
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        c.cmd(&["BLMPOP", "x", "1", "a", "LEFT", "COUNT", "0"])
            .await,
        err("ERR count should be greater than 0")
    );
    assert_eq!(
        c.cmd(&["BZMPOP", "x", "1", "a", "UP"]).await,
        err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["BZMPOP", "x", "1", "a", "MIN"]).await, not_float);
    assert_eq!(c.cmd(&["BLPOP", "k"]).await, arity_err("blpop"));
    wait_blocked(&mut c, 0).await;
}

#[tokio::test]
async fn a_disconnected_waiter_leaves_the_element_in_the_list() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let gone = blocked(&server, &mut c, &["BLPOP", "q", "0"], 1).await;
    let mut next = blocked(&server, &mut c, &["BLMPOP", "0", "1", "r", "LEFT"], 2).await;
    drop(gone);
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["RPUSH", "q", "x"]).await, int(1));
    assert_eq!(c.cmd(&["LLEN", "q"]).await, int(1), "nobody took it");
    assert_eq!(c.cmd(&["RPUSH", "r", "y"]).await, int(1));
    assert_eq!(
        next.read().await,
        Frame::Array(vec![bulk("r"), bulks(&["y"])])
    );
}

#[tokio::test]
async fn commands_pipelined_behind_a_blocked_one_wait_for_it() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut waiter = Raw::connect(server.addr()).await;
    let mut batch = encode(&["PING"]);
    batch.extend(encode(&["BLPOP", "q", "0"]));
    batch.extend(encode(&["PING", "after"]));
    waiter.send(&batch).await;
    assert_eq!(
        waiter.read().await,
        simple("PONG"),
        "replies before it go out"
    );
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["RPUSH", "q", "x"]).await, int(1));
    assert_eq!(waiter.read().await, pair("q", "x"));
    assert_eq!(waiter.read().await, bulk("after"));
}

#[tokio::test]
async fn client_unblock_ends_the_wait_as_a_timeout_or_an_error() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut waiter = Raw::connect(server.addr()).await;
    let id = int_of(&waiter.cmd(&["CLIENT", "ID"]).await).to_string();
    assert_eq!(
        c.cmd(&["CLIENT", "UNBLOCK", &id]).await,
        int(0),
        "not blocked"
    );
    waiter.send(&encode(&["BLPOP", "q", "0"])).await;
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]).await, int(1));
    assert_eq!(waiter.read().await, nil());
    wait_blocked(&mut c, 0).await;
    waiter.send(&encode(&["BZPOPMIN", "z", "0"])).await;
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "error"]).await, int(1));
    assert_eq!(
        waiter.read().await,
        err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    );
    waiter.send(&encode(&["BLPOP", "q", "0"])).await;
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]).await, int(1));
    assert_eq!(waiter.read().await, nil());
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]).await, int(0));
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", "999999"]).await, int(0));
    assert_eq!(
        c.cmd(&["CLIENT", "UNBLOCK", "x"]).await,
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "UNBLOCK", "1", "nope"]).await,
        err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    );
    // The waiter still works, and an unblocked wait left no registration behind.
    assert_eq!(c.cmd(&["RPUSH", "q", "x"]).await, int(1));
    assert_eq!(c.cmd(&["LLEN", "q"]).await, int(1));
    assert_eq!(waiter.cmd(&["LPOP", "q"]).await, bulk("x"));
}

#[tokio::test]
async fn client_kill_disconnects_blocked_and_idle_clients() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut waiter = blocked(&server, &mut c, &["BLPOP", "q", "0"], 1).await;
    let list = text_of(&c.cmd(&["CLIENT", "LIST"]).await);
    assert!(list.contains("flags=b "), "{list}");
    let my_id = int_of(&c.cmd(&["CLIENT", "ID"]).await);
    let waiter_line = list
        .lines()
        .find(|line| !line.starts_with(&format!("id={my_id} ")))
        .expect("the waiter's line");
    let waiter_id = waiter_line
        .split(' ')
        .find_map(|field| field.strip_prefix("id="))
        .expect("id field")
        .to_string();
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &waiter_id]).await, int(1));
    waiter.expect_closed().await;
    wait_blocked(&mut c, 0).await;
    assert_eq!(c.cmd(&["RPUSH", "q", "x"]).await, int(1));
    assert_eq!(c.cmd(&["LLEN", "q"]).await, int(1));

    // The old form, by address.
    let mut idle = Raw::connect(server.addr()).await;
    assert_eq!(idle.cmd(&["PING"]).await, simple("PONG"), "registered");
    let addr = idle.stream().local_addr().expect("address").to_string();
    assert_eq!(c.cmd(&["CLIENT", "KILL", &addr]).await, ok());
    idle.expect_closed().await;
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", &addr]).await,
        err("ERR No such client")
    );
    // Filters: ADDR, LADDR, TYPE; SKIPME (default yes) spares the caller.
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(other.cmd(&["PING"]).await, simple("PONG"), "registered");
    let addr = other.stream().local_addr().expect("address").to_string();
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "ADDR", &addr, "ID", "999999"])
            .await,
        int(0)
    );
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ADDR", &addr]).await, int(1));
    other.expect_closed().await;
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(other.cmd(&["PING"]).await, simple("PONG"));
    let laddr = server.addr().to_string();
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "LADDR", &laddr, "TYPE", "normal"])
            .await,
        int(1)
    );
    other.expect_closed().await;
    assert_eq!(c.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]).await, int(0));
    assert_eq!(c.cmd(&["CLIENT", "KILL", "MAXAGE", "100000"]).await, int(0));
    assert_eq!(c.cmd(&["CLIENT", "KILL", "USER", "default"]).await, int(0));
    // Errors.
    for (args, text) in [
        (&["ID", "0"][..], "ERR client-id should be greater than 0"),
        (&["ID", "x"], "ERR client-id should be greater than 0"),
        (&["TYPE", "foo"], "ERR Unknown client type 'foo'"),
        (&["SKIPME", "maybe"], "ERR syntax error"),
        (
            &["MAXAGE", "x"],
            "ERR maxage is not an integer or out of range",
        ),
        (&["MAXAGE", "0"], "ERR maxage should be greater than 0"),
        (&["USER", "nobody"], "ERR No such user 'nobody'"),
        (&["FOO", "bar"], "ERR syntax error"),
        (&["ID", "1", "TYPE"], "ERR syntax error"),
    ] {
        let mut command = vec!["CLIENT", "KILL"];
        command.extend_from_slice(args);
        assert_eq!(c.cmd(&command).await, err(text), "{args:?}");
    }
    // SKIPME NO kills the caller too, after its reply.
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "ID", &my_id.to_string(), "SKIPME", "NO"])
            .await,
        int(1)
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn info_counts_blocked_clients() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    wait_blocked(&mut c, 0).await;
    let mut a = blocked(&server, &mut c, &["BLPOP", "x", "0"], 1).await;
    let mut b = blocked(&server, &mut c, &["BZMPOP", "0", "2", "y", "z", "MIN"], 2).await;
    let list = text_of(&c.cmd(&["CLIENT", "LIST"]).await);
    assert_eq!(list.matches("flags=b ").count(), 2, "{list}");
    assert_eq!(c.cmd(&["RPUSH", "x", "1"]).await, int(1));
    assert_eq!(a.read().await, pair("x", "1"));
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["ZADD", "z", "2", "m"]).await, int(1));
    assert_eq!(
        b.read().await,
        Frame::Array(vec![bulk("z"), Frame::Array(vec![bulks(&["m", "2"])])])
    );
    wait_blocked(&mut c, 0).await;
    let list = text_of(&c.cmd(&["CLIENT", "LIST"]).await);
    assert!(!list.contains("flags=b"), "{list}");
}

#[tokio::test]
async fn moves_hand_elements_on_to_waiting_clients() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    // LMOVE into a list somebody waits on serves them.
    let mut waiter = blocked(&server, &mut c, &["BLPOP", "dst", "0"], 1).await;
    assert_eq!(c.cmd(&["RPUSH", "src", "a", "b"]).await, int(2));
    assert_eq!(
        c.cmd(&["LMOVE", "src", "dst", "RIGHT", "LEFT"]).await,
        bulk("b")
    );
    assert_eq!(waiter.read().await, pair("dst", "b"));
    // A chain: BLMOVE s1 -> s2 serves a BLPOP on s2 with the same element.
    let mut mover = blocked(
        &server,
        &mut c,
        &["BLMOVE", "s1", "s2", "RIGHT", "LEFT", "0"],
        1,
    )
    .await;
    let mut popper = blocked(&server, &mut c, &["BLPOP", "s2", "0"], 2).await;
    let mut rotator = blocked(&server, &mut c, &["BRPOPLPUSH", "s3", "s3", "0"], 3).await;
    assert_eq!(c.cmd(&["RPUSH", "s1", "x"]).await, int(1));
    assert_eq!(mover.read().await, bulk("x"));
    assert_eq!(popper.read().await, pair("s2", "x"));
    assert_eq!(c.cmd(&["EXISTS", "s1", "s2"]).await, int(0));
    // A rotation on one key keeps it.
    assert_eq!(c.cmd(&["RPUSH", "s3", "r"]).await, int(1));
    assert_eq!(rotator.read().await, bulk("r"));
    assert_eq!(c.cmd(&["LRANGE", "s3", "0", "-1"]).await, bulks(&["r"]));
    // A BLMOVE whose destination became another type while it waited fails with
    // WRONGTYPE and takes nothing.
    wait_blocked(&mut c, 0).await;
    let mut mover = blocked(
        &server,
        &mut c,
        &["BLMOVE", "m1", "m2", "LEFT", "LEFT", "0"],
        1,
    )
    .await;
    assert_eq!(c.cmd(&["SET", "m2", "string"]).await, ok());
    assert_eq!(c.cmd(&["RPUSH", "m1", "e"]).await, int(1));
    assert_eq!(
        mover.read().await,
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(c.cmd(&["LLEN", "m1"]).await, int(1));
    // BLMOVE's non-blocking path.
    assert_eq!(
        c.cmd(&["BLMOVE", "m1", "m3", "LEFT", "RIGHT", "0"]).await,
        bulk("e")
    );
    assert_eq!(c.cmd(&["LRANGE", "m3", "0", "-1"]).await, bulks(&["e"]));
}

#[tokio::test]
async fn a_push_from_another_thread_wakes_the_waiter() {
    // Connections are dealt to the two connection threads in turn: the waiter and the
    // pusher below are consecutive connections, so they run on different threads.
    let server = start_server_with(|config| config.threads = 2).await;
    let mut control = Raw::connect(server.addr()).await;
    for round in 0..20 {
        let key = format!("key:{round}");
        let mut waiter = Raw::connect(server.addr()).await;
        let mut pusher = Raw::connect(server.addr()).await;
        waiter.send(&encode(&["BRPOP", &key, "0"])).await;
        wait_blocked(&mut control, 1).await;
        assert_eq!(pusher.cmd(&["LPUSH", &key, "v"]).await, int(1));
        assert_eq!(waiter.read().await, pair(&key, "v"));
        wait_blocked(&mut control, 0).await;
    }
    // And with the redis crate, the way applications use it.
    let mut consumer = redis_client(server.addr()).await;
    let mut producer = redis_client(server.addr()).await;
    let waiting = tokio::spawn(async move {
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg("jobs")
            .arg(0)
            .query_async(&mut consumer)
            .await
            .expect("BLPOP");
        popped
    });
    wait_blocked(&mut control, 1).await;
    let _: i64 = redis::cmd("RPUSH")
        .arg("jobs")
        .arg("job-1")
        .query_async(&mut producer)
        .await
        .expect("RPUSH");
    let popped = tokio::time::timeout(REPLY_TIMEOUT, waiting)
        .await
        .expect("served")
        .expect("task");
    assert_eq!(popped, Some(("jobs".into(), "job-1".into())));
}

#[tokio::test]
async fn sorted_set_pops_wait_for_zadd() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut min = blocked(&server, &mut c, &["BZPOPMIN", "z1", "z2", "0"], 1).await;
    let mut max = blocked(&server, &mut c, &["BZPOPMAX", "z2", "0"], 2).await;
    let mut many = blocked(
        &server,
        &mut c,
        &["BZMPOP", "0", "1", "z2", "MAX", "COUNT", "5"],
        3,
    )
    .await;
    // A list on a sorted-set waiter's key does not serve it.
    assert_eq!(c.cmd(&["RPUSH", "z1", "x"]).await, int(1));
    wait_blocked(&mut c, 3).await;
    assert_eq!(c.cmd(&["DEL", "z1"]).await, int(1));
    assert_eq!(
        c.cmd(&["ZADD", "z2", "1.5", "a", "2", "b", "3", "c", "4", "d"])
            .await,
        int(4)
    );
    assert_eq!(min.read().await, bulks(&["z2", "a", "1.5"]));
    assert_eq!(max.read().await, bulks(&["z2", "d", "4"]));
    assert_eq!(
        many.read().await,
        Frame::Array(vec![
            bulk("z2"),
            Frame::Array(vec![bulks(&["c", "3"]), bulks(&["b", "2"])])
        ])
    );
    assert_eq!(c.cmd(&["EXISTS", "z2"]).await, int(0));
    // RESP3: the score is a double; the non-blocking path answers the same way.
    let mut r3 = Raw::connect(server.addr()).await;
    r3.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["ZADD", "z3", "0.5", "m", "7", "n"]).await, int(2));
    r3.send(&encode(&["BZPOPMIN", "z3", "0"])).await;
    let expected = b"*3\r\n$2\r\nz3\r\n$1\r\nm\r\n,0.5\r\n";
    assert_eq!(r3.read_exact_bytes(expected.len()).await, expected);
    r3.send(&encode(&["BZMPOP", "0", "1", "z3", "MIN"])).await;
    let expected = b"*2\r\n$2\r\nz3\r\n*1\r\n*2\r\n$1\r\nn\r\n,7\r\n";
    assert_eq!(r3.read_exact_bytes(expected.len()).await, expected);
}

async fn start_logging(dir: &Path) -> ServerHandle {
    let dir = dir.to_path_buf();
    start_server_with(move |config| {
        config.dir = dir;
        config.appendonly = true;
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

/// Everything the append-only files under `dir` hold, as text.
fn logged(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir.join("appendonlydir")).expect("log directory") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("log file");
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

async fn state(c: &mut Raw) -> Vec<Frame> {
    vec![
        c.cmd(&["LRANGE", "q", "0", "-1"]).await,
        c.cmd(&["LRANGE", "dst", "0", "-1"]).await,
        c.cmd(&["LRANGE", "many", "0", "-1"]).await,
        c.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await,
        c.cmd(&["EXISTS", "src", "t"]).await,
    ]
}

#[tokio::test]
async fn served_pops_are_logged_as_redis_logs_them_and_replay() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = start_logging(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    let mut pop = blocked(&server, &mut c, &["BLPOP", "q", "0"], 1).await;
    let mut mover = blocked(
        &server,
        &mut c,
        &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"],
        2,
    )
    .await;
    let mut multi = blocked(
        &server,
        &mut c,
        &["BLMPOP", "0", "1", "many", "RIGHT", "COUNT", "9"],
        3,
    )
    .await;
    let mut zpop = blocked(&server, &mut c, &["BZPOPMAX", "z", "0"], 4).await;
    let mut timed = Raw::connect(server.addr()).await;
    timed.send(&encode(&["BLPOP", "t", "0.01"])).await;
    assert_eq!(timed.read().await, nil());
    assert_eq!(c.cmd(&["RPUSH", "q", "1", "2", "3"]).await, int(3));
    assert_eq!(pop.read().await, pair("q", "1"));
    assert_eq!(c.cmd(&["RPUSH", "src", "m", "n"]).await, int(2));
    assert_eq!(mover.read().await, bulk("m"));
    assert_eq!(c.cmd(&["RPUSH", "many", "a", "b", "c"]).await, int(3));
    assert_eq!(
        multi.read().await,
        Frame::Array(vec![bulk("many"), bulks(&["c", "b", "a"])])
    );
    assert_eq!(c.cmd(&["ZADD", "z", "1", "x", "2", "y"]).await, int(2));
    assert_eq!(zpop.read().await, bulks(&["z", "y", "2"]));
    // The non-blocking path logs the same way.
    assert_eq!(c.cmd(&["BRPOP", "q", "0"]).await, pair("q", "3"));
    let expected = state(&mut c).await;
    let log = logged(dir.path());
    for record in [
        "*2\r\n$4\r\nLPOP\r\n$1\r\nq\r\n",
        "*5\r\n$5\r\nLMOVE\r\n$3\r\nsrc\r\n$3\r\ndst\r\n$4\r\nLEFT\r\n$5\r\nRIGHT\r\n",
        "*3\r\n$4\r\nRPOP\r\n$4\r\nmany\r\n$1\r\n3\r\n",
        "*2\r\n$7\r\nZPOPMAX\r\n$1\r\nz\r\n",
        "*2\r\n$4\r\nRPOP\r\n$1\r\nq\r\n",
    ] {
        assert!(log.contains(record), "{record:?} not in {log:?}");
    }
    assert!(!log.to_ascii_uppercase().contains("BLPOP"), "{log:?}");
    assert!(
        !log.contains("\r\nt\r\n"),
        "the timed-out pop logged nothing"
    );
    stop(server).await;

    let server = start_logging(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(state(&mut c).await, expected, "after replay");
    stop(server).await;
}

#[tokio::test]
async fn a_shutdown_releases_blocked_clients() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut forever = blocked(&server, &mut c, &["BLPOP", "q", "0"], 1).await;
    let mut timed = blocked(&server, &mut c, &["BZPOPMIN", "z", "3600"], 2).await;
    stop(server).await;
    forever.expect_closed().await;
    timed.expect_closed().await;
}

#[tokio::test]
async fn waiters_belong_to_their_database() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut waiter = Raw::connect(server.addr()).await;
    assert_eq!(waiter.cmd(&["SELECT", "1"]).await, ok());
    waiter.send(&encode(&["BLPOP", "q", "0"])).await;
    wait_blocked(&mut c, 1).await;
    // The same key in database 0 serves nobody.
    assert_eq!(c.cmd(&["RPUSH", "q", "db0"]).await, int(1));
    wait_blocked(&mut c, 1).await;
    assert_eq!(c.cmd(&["LLEN", "q"]).await, int(1));
    // COPY into database 1 creates the key there: the waiter is served.
    assert_eq!(c.cmd(&["COPY", "q", "q", "DB", "1"]).await, int(1));
    assert_eq!(waiter.read().await, pair("q", "db0"));
    assert_eq!(c.cmd(&["LLEN", "q"]).await, int(1), "the source stays");
    assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(c.cmd(&["EXISTS", "q"]).await, int(0), "the copy was popped");
}
