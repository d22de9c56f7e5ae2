//! Network exposure and resource limits (issue 19, sections 3 and 4): protected mode,
//! connections per address, the query and output buffer limits, TCP keepalive.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::util::*;

/// This machine's first non-loopback IPv4 address, if it has one (found by asking the kernel
/// which source address a UDP socket would use; nothing is sent).
fn outside_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A raw client connecting from `from` (so the server sees that address as the peer).
async fn connect_from(from: IpAddr, to: SocketAddr) -> Raw {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind source");
    Raw::from_stream(socket.connect(to).await.expect("connect"))
}

#[tokio::test]
async fn protected_mode_serves_only_loopback_clients_without_a_password() {
    let Some(outside) = outside_address() else {
        eprintln!("no non-loopback address on this machine: protected mode not tested");
        return;
    };
    let server = start_server_with(|config| {
        config.bind = vec![outside.to_string(), "127.0.0.1".into()];
    })
    .await;
    let port = server.addr().port();
    let remote_addr = SocketAddr::new(outside, port);
    let mut remote = connect_from(outside, remote_addr).await;
    let denied = remote.read().await;
    assert!(
        matches!(&denied, Frame::Error(text) if text.starts_with(b"DENIED Redis is running in protected mode")),
        "{denied:?}"
    );
    remote.expect_closed().await;
    let mut local = Raw::connect(SocketAddr::from(([127, 0, 0, 1], port))).await;
    assert_eq!(local.cmd(&["PING"]).await, simple("PONG"));
    let info = text_of(&local.cmd(&["INFO", "stats"]).await);
    assert_eq!(
        info_field(&info, "rejected_connections").as_deref(),
        Some("1")
    );

    // With a password, remote clients may connect (to authenticate).
    assert_eq!(
        local.cmd(&["CONFIG", "SET", "requirepass", "pw"]).await,
        ok()
    );
    let mut remote = connect_from(outside, remote_addr).await;
    assert_eq!(
        remote.cmd(&["PING"]).await,
        err("NOAUTH Authentication required.")
    );
    assert_eq!(remote.cmd(&["AUTH", "pw"]).await, ok());
    assert_eq!(local.cmd(&["AUTH", "pw"]).await, ok());
    assert_eq!(local.cmd(&["CONFIG", "SET", "requirepass", ""]).await, ok());
    // Or with protected mode off.
    assert_eq!(
        local.cmd(&["CONFIG", "GET", "protected-mode"]).await,
        bulks(&["protected-mode", "yes"])
    );
    assert_eq!(
        local.cmd(&["CONFIG", "SET", "protected-mode", "no"]).await,
        ok()
    );
    let mut remote = connect_from(outside, remote_addr).await;
    assert_eq!(remote.cmd(&["PING"]).await, simple("PONG"));
}

#[tokio::test]
async fn connections_per_address_are_bounded_and_slots_come_back() {
    let server = start_server_with(|config| config.max_connections_per_ip = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
        open.push(c);
    }
    let mut fourth = Raw::connect(server.addr()).await;
    assert_eq!(
        fourth.read().await,
        err("ERR max number of connections from this address reached")
    );
    fourth.expect_closed().await;
    // A closed connection gives its slot back (the server notices the close first).
    drop(open.pop());
    let mut waited = 0;
    let mut again = loop {
        let mut c = Raw::connect(server.addr()).await;
        c.send(&encode(&["PING"])).await;
        match c.read().await {
            reply if reply == simple("PONG") => break c,
            _ => {
                waited += 1;
                assert!(waited < 100, "the slot never came back");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(
        again
            .cmd(&["CONFIG", "SET", "max-connections-per-ip", "0"])
            .await,
        ok()
    );
    let mut fifth = Raw::connect(server.addr()).await;
    assert_eq!(fifth.cmd(&["PING"]).await, simple("PONG"));
}

#[tokio::test]
async fn an_endless_request_is_cut_off_at_the_query_buffer_limit() {
    let server = start_server().await;
    let mut admin = Raw::connect(server.addr()).await;
    assert_eq!(
        admin
            .cmd(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"])
            .await,
        ok()
    );
    assert_eq!(
        admin
            .cmd(&["CONFIG", "GET", "client-query-buffer-limit"])
            .await,
        bulks(&["client-query-buffer-limit", "1048576"])
    );
    let mut endless = Raw::connect(server.addr()).await;
    endless
        .send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n")
        .await;
    let chunk = vec![b'x'; 64 * 1024];
    let mut cut = false;
    for _ in 0..64 {
        if endless.stream().write_all(&chunk).await.is_err() {
            cut = true;
            break;
        }
    }
    if !cut {
        endless.expect_closed().await;
    }
    assert_eq!(admin.cmd(&["PING"]).await, simple("PONG"));
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "client-query-buffer-limit", "1000"]).await,
        err("ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - argument must be between 1048576 and 9223372036854775807 inclusive")
    );
}

#[tokio::test]
async fn a_reply_past_the_normal_output_limit_closes_the_client() {
    let server = start_server().await;
    let mut admin = Raw::connect(server.addr()).await;
    let big = "x".repeat(2 << 20);
    assert_eq!(admin.cmd(&["SET", "big", &big]).await, ok());
    assert_eq!(
        admin
            .cmd(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 1mb 0 0"
            ])
            .await,
        ok()
    );
    let mut reader = Raw::connect(server.addr()).await;
    assert_eq!(reader.cmd(&["GET", "small"]).await, nil());
    reader.send(&encode(&["GET", "big"])).await;
    reader.expect_closed().await;
    // Replies under the limit are untouched.
    assert_eq!(admin.cmd(&["STRLEN", "big"]).await, int(2 << 20));
    assert_eq!(
        admin
            .cmd(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 0 0 0"
            ])
            .await,
        ok()
    );
    let mut reader = Raw::connect(server.addr()).await;
    assert_eq!(reader.cmd(&["GET", "big"]).await, bulk(&big));
}

#[tokio::test]
async fn accepted_connections_have_tcp_keepalive() {
    let Some(ss) = require_tool("ss") else {
        return;
    };
    let server = start_server_with(|config| config.tcp_keepalive = 120).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "tcp-keepalive"]).await,
        bulks(&["tcp-keepalive", "120"])
    );
    let port = server.addr().port();
    // While a reply is unacknowledged ss shows the retransmission timer instead: look again.
    let mut text = String::new();
    for _ in 0..50 {
        let ss = ss.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(ss)
                .args([
                    "-tno",
                    "state",
                    "established",
                    &format!("( sport = :{port} )"),
                ])
                .output()
                .expect("run ss")
        })
        .await
        .expect("ss task");
        text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.contains("timer:(keepalive") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no keepalive timer on the server's socket:\n{text}");
}
