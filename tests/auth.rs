//! Authentication (issue 19, section 1): `requirepass`, AUTH, HELLO ... AUTH, NOAUTH, RESET,
//! over raw connections and through the `redis` crate. The transcript test replays the same
//! session against a real redis-server (when installed) and compares every reply.

use std::net::SocketAddr;

use protocol::Frame;

use crate::differential::start_redis_server;
use crate::util::*;

/// Replies of one session against a server whose `requirepass` was just set to `s3cret`.
async fn auth_transcript(addr: SocketAddr) -> Vec<Frame> {
    let mut admin = Raw::connect(addr).await;
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]).await,
        ok()
    );
    let mut replies = Vec::new();
    let mut c = Raw::connect(addr).await;
    for args in [
        &["GET", "k"][..],
        &["PING"],
        &["NOSUCHCOMMAND"],
        &["GET"],
        &["MULTI"],
        &["HELLO"],
        &["HELLO", "3"],
        &["HELLO", "3", "AUTH", "default", "s3cret", "BADOPTION"],
        &["HELLO", "3", "AUTH", "default", "wrong"],
        &["AUTH", "wrong"],
        &["AUTH", "default", "wrong"],
        &["AUTH", "nobody", "s3cret"],
        &["AUTH", "a", "b", "c"],
        &["GET", "k"],
        &["AUTH", "s3cret"],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["AUTH", "wrong"],
        &["GET", "k"],
        &["RESET"],
        &["GET", "k"],
        &["AUTH", "default", "s3cret"],
        &["CONFIG", "GET", "requirepass"],
    ] {
        replies.push(c.cmd(args).await);
    }
    // HELLO ... AUTH authenticates and switches protocol in one step.
    let mut h = Raw::connect(addr).await;
    let hello = h.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]).await;
    replies.push(match hello {
        Frame::Map(pairs) => pairs[4].clone().1,
        other => other,
    });
    replies.push(h.cmd(&["GET", "k"]).await);
    // Clearing the password lets everyone in, even connections that never authenticated.
    let mut late = Raw::connect(addr).await;
    replies.push(late.cmd(&["GET", "k"]).await);
    replies.push(c.cmd(&["CONFIG", "SET", "requirepass", ""]).await);
    replies.push(late.cmd(&["GET", "k"]).await);
    replies.push(late.cmd(&["AUTH", "anything"]).await);
    replies.push(late.cmd(&["AUTH", "default", "anything"]).await);
    // Setting one again: connections made meanwhile stay authenticated, new ones are not.
    replies.push(c.cmd(&["CONFIG", "SET", "requirepass", "new"]).await);
    let mut newer = Raw::connect(addr).await;
    replies.push(newer.cmd(&["GET", "k"]).await);
    replies.push(late.cmd(&["GET", "k"]).await);
    replies.push(newer.cmd(&["AUTH", "s3cret"]).await);
    replies.push(newer.cmd(&["AUTH", "new"]).await);
    replies
}

#[tokio::test]
async fn authentication_matches_redis() {
    let server = start_server().await;
    let ours = auth_transcript(server.addr()).await;
    assert_eq!(ours[0], err("NOAUTH Authentication required."));
    let Some(redis) = start_redis_server().await else {
        eprintln!("redis-server not installed: AUTH transcript not compared");
        return;
    };
    let theirs = auth_transcript(redis.addr).await;
    for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(a, b, "reply {i} (redis first)");
    }
    assert_eq!(theirs.len(), ours.len());
}

/// What happens to requests past the unauthenticated bounds (10 arguments, 16 KB bulks),
/// before and after AUTH and after RESET: each case's reply, and whether the connection
/// was closed after it.
async fn small_request_transcript(addr: SocketAddr) -> Vec<(Frame, bool)> {
    let mut admin = Raw::connect(addr).await;
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]).await,
        ok()
    );
    let eleven: Vec<String> = std::iter::once("DEL".to_owned())
        .chain((0..10).map(|i| format!("k{i}")))
        .collect();
    let ten = &eleven[..10];
    // Only the header: the server refuses it before the payload is sent.
    let big_bulk_header = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n".to_vec();
    let mut big_bulk = big_bulk_header.clone();
    big_bulk.extend(std::iter::repeat_n(b'v', 16385));
    big_bulk.extend_from_slice(b"\r\n");
    let mut at_bound = encode(&["SET", "k"]);
    at_bound[0..2].copy_from_slice(b"*3");
    at_bound.extend_from_slice(b"$16384\r\n");
    at_bound.extend(std::iter::repeat_n(b'v', 16384));
    at_bound.extend_from_slice(b"\r\n");

    let mut outcomes = Vec::new();
    for (login, request) in [
        (None, encode(ten)),
        (None, encode(&eleven)),
        (None, at_bound.clone()),
        (None, big_bulk_header.clone()),
        (Some(&["AUTH", "s3cret"][..]), encode(&eleven)),
        (Some(&["AUTH", "s3cret"]), big_bulk),
        (Some(&["AUTH", "s3cret"]), at_bound.clone()),
        // RESET logs out: the bounds apply again.
        (Some(&["AUTH", "s3cret"]), encode(&["RESET"])),
    ] {
        let mut c = Raw::connect(addr).await;
        if let Some(login) = login {
            assert_eq!(c.cmd(login).await, ok());
        }
        c.send(&request).await;
        if request == encode(&["RESET"]) {
            assert_eq!(c.read().await, simple("RESET"));
            c.send(&encode(&eleven)).await;
        }
        let reply = c.read().await;
        // Closed, or still answering.
        c.send(&encode(&["PING"])).await;
        let closed = c.try_read().await.is_none();
        outcomes.push((reply, closed));
    }
    assert_eq!(admin.cmd(&["CONFIG", "SET", "requirepass", ""]).await, ok());
    outcomes
}

#[tokio::test]
async fn unauthenticated_clients_may_send_only_small_requests() {
    let server = start_server().await;
    let ours = small_request_transcript(server.addr()).await;
    assert_eq!(
        ours[1],
        (
            err("ERR Protocol error: unauthenticated multibulk length"),
            true
        )
    );
    assert_eq!(
        ours[3],
        (err("ERR Protocol error: unauthenticated bulk length"), true)
    );
    let Some(redis) = start_redis_server().await else {
        eprintln!("redis-server not installed: small-request transcript not compared");
        return;
    };
    let theirs = small_request_transcript(redis.addr).await;
    assert_eq!(theirs, ours, "redis first");
}

#[tokio::test]
async fn requirepass_flag_and_failed_attempts_in_info() {
    let server = start_server_with(|config| config.requirepass = "s3cret".into()).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["GET", "k"]).await,
        err("NOAUTH Authentication required.")
    );
    for _ in 0..3 {
        assert_eq!(
            c.cmd(&["AUTH", "guess"]).await,
            err("WRONGPASS invalid username-password pair or user is disabled.")
        );
    }
    assert_eq!(c.cmd(&["AUTH", "s3cret"]).await, ok());
    let info = text_of(&c.cmd(&["INFO", "stats"]).await);
    assert_eq!(
        info_field(&info, "acl_access_denied_auth").as_deref(),
        Some("3")
    );
    // A transaction with a command refused for want of authentication is doomed.
    let mut t = Raw::connect(server.addr()).await;
    assert_eq!(
        t.cmd(&["MULTI"]).await,
        err("NOAUTH Authentication required.")
    );
}

#[tokio::test]
async fn clients_connect_with_a_password() {
    let server = start_server_with(|config| config.requirepass = "s3cret".into()).await;
    let port = server.addr().port();
    let url = format!("redis://:s3cret@127.0.0.1:{port}/");
    let client = redis::Client::open(url).expect("url");
    let mut con = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    .expect("connects in time")
    .expect("authenticated connection");
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .expect("SET");
    let value: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut con)
        .await
        .expect("GET");
    assert_eq!(value, "v");
    let wrong = redis::Client::open(format!("redis://:nope@127.0.0.1:{port}/")).expect("url");
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        wrong.get_multiplexed_async_connection(),
    )
    .await
    .expect("the refusal comes at once");
    assert!(refused.is_err(), "a wrong password must not connect");
    if let Some(cli) = require_tool("redis-cli") {
        // Off the test's runtime, which also accepts the server's connections.
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(cli)
                .args([
                    "-p",
                    &port.to_string(),
                    "-a",
                    "s3cret",
                    "--no-auth-warning",
                    "GET",
                    "k",
                ])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("redis-cli")
        })
        .await
        .expect("redis-cli ran");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");
    }
}

#[tokio::test]
async fn requests_past_an_address_budget_are_refused_and_the_connection_stays() {
    let server = start_server_with(|config| {
        config.rate_limit = 5;
        config.rate_window_ms = 300;
        config.rate_limit_exempt_loopback = false;
    })
    .await;
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    let replies = pipeline(&mut c, &[&["PING"][..]; 8]).await;
    assert_eq!(replies[..5], vec![simple("PONG"); 5][..]);
    let limited = err("RATELIMIT too many requests from this address, try again later");
    assert_eq!(replies[5..], vec![limited.clone(); 3][..]);
    // The budget is the address's, not the connection's.
    assert_eq!(other.cmd(&["PING"]).await, limited);
    // Once the window has slid past, service resumes on the same connection.
    let mut waited = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
        match c.cmd(&["CONFIG", "SET", "rate-limit", "0"]).await {
            reply if reply == ok() => break,
            reply => assert_eq!(reply, limited),
        }
        assert!(waited < 100, "budget never refilled");
    }
    let info = text_of(&c.cmd(&["INFO", "stats"]).await);
    let refused: u64 = info_field(&info, "rate_limited_requests")
        .and_then(|v| v.parse().ok())
        .expect("counter");
    assert!(refused >= 4, "{refused}");
    assert_eq!(
        pipeline(&mut c, &[&["PING"][..]; 20]).await,
        vec![simple("PONG"); 20]
    );
    // Loopback clients are exempt by default.
    let exempt = start_server_with(|config| config.rate_limit = 1).await;
    let mut local = Raw::connect(exempt.addr()).await;
    assert_eq!(
        pipeline(&mut local, &[&["PING"][..]; 5]).await,
        vec![simple("PONG"); 5]
    );
}
