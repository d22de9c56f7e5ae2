//! End-to-end tests of the `kvbench` binary: each test starts an in-process kvserver on
//! port 0, runs kvbench against it with `--json` (or another format), and checks both the
//! report and the state the workload left in the server. The `publish` test runs against a
//! real redis-server (skipped with a notice when it is not installed).

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kvserver::{Config, ServerHandle};
use protocol::encode::encode_command;
use protocol::{Frame, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a kvbench run or a reply may take before the test fails instead of hanging.
const TIMEOUT: Duration = Duration::from_secs(120);

async fn start_server() -> ServerHandle {
    kvserver::start(
        Config {
            port: 0,
            // No snapshot on shutdown: tests must not write into the working directory.
            save: Default::default(),
            ..Config::default()
        },
        None,
    )
    .await
    .expect("server starts on port 0")
}

/// Runs kvbench against `addr` with `args` (split at whitespace) and returns its output.
async fn kvbench(addr: SocketAddr, args: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvbench"));
    command
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args.split_whitespace());
    let run = tokio::task::spawn_blocking(move || command.output());
    tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("kvbench finishes in time")
        .expect("kvbench task")
        .expect("kvbench starts")
}

/// Runs kvbench with `--json`, checks it succeeded without printing anything on stderr, and
/// returns the JSON document.
async fn kvbench_json(addr: SocketAddr, args: &str) -> String {
    let output = kvbench(addr, &format!("{args} --json")).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    // Not a terminal: no progress line, and a clean run has nothing else to say.
    assert!(stderr.is_empty(), "{args:?}: unexpected stderr {stderr:?}");
    let json = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(
        json.starts_with('{') && json.trim_end().ends_with('}'),
        "{json}"
    );
    json
}

/// Every value of `"field":` in a flat JSON document, as text (strings keep their quotes).
fn values<'a>(json: &'a str, field: &str) -> Vec<&'a str> {
    let key = format!("\"{field}\":");
    json.match_indices(&key)
        .map(|(at, _)| {
            let rest = &json[at + key.len()..];
            let end = match rest.strip_prefix('"') {
                Some(string) => string.find('"').map_or(rest.len(), |i| i + 2),
                None => rest.find([',', '}']).unwrap_or(rest.len()),
            };
            &rest[..end]
        })
        .collect()
}

fn numbers(json: &str, field: &str) -> Vec<f64> {
    values(json, field)
        .iter()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{field}: {v:?}")))
        .collect()
}

/// Sends one command on a fresh connection and returns the reply.
async fn query(addr: SocketAddr, args: &[&[u8]]) -> Frame {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = BytesMut::new();
    encode_command(args, &mut request);
    stream.write_all(&request).await.expect("write");
    let mut input = BytesMut::new();
    loop {
        if let Some((frame, _)) = protocol::parse::parse(&input, &Limits::default()).expect("RESP")
        {
            return frame;
        }
        let read = tokio::time::timeout(TIMEOUT, stream.read_buf(&mut input))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(read > 0, "connection closed before the reply");
    }
}

async fn dbsize(addr: SocketAddr) -> i64 {
    match query(addr, &[b"DBSIZE"]).await {
        Frame::Integer(n) => n,
        other => panic!("DBSIZE: {other:?}"),
    }
}

/// The value of an INCR counter, 0 if it does not exist.
async fn counter(addr: SocketAddr, key: &[u8]) -> u32 {
    match query(addr, &[b"GET", key]).await {
        Frame::Bulk(n) => std::str::from_utf8(&n)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("counter {n:?}")),
        Frame::Null => 0,
        other => panic!("GET: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn set_fills_the_keyspace() {
    let server = start_server().await;
    let json = kvbench_json(server.addr(), "-t set -r 100 -n 1000 -c 4 -P 8").await;
    assert_eq!(values(&json, "test"), ["\"set\""]);
    assert_eq!(numbers(&json, "requests"), [1000.0]);
    assert_eq!(numbers(&json, "errors"), [0.0]);
    assert!(numbers(&json, "rps")[0] > 0.0);
    let p50 = numbers(&json, "p50_ms")[0];
    let max = numbers(&json, "max_ms")[0];
    assert!(p50 > 0.0 && p50 <= max, "{json}");
    let keys = dbsize(server.addr()).await;
    assert!((1..=100).contains(&keys), "DBSIZE {keys}");
    // Keys 0..99 with 3-byte values.
    let Frame::Array(names) = query(server.addr(), &[b"KEYS", b"*"]).await else {
        panic!("KEYS reply");
    };
    for name in names {
        let Frame::Bulk(name) = name else {
            panic!("key name {name:?}");
        };
        let text = std::str::from_utf8(&name).expect("ASCII key");
        let number = text
            .strip_prefix("key:0000000000")
            .expect("key:NNNNNNNNNNNN");
        assert!(
            number.len() == 2 && number.bytes().all(|b| b.is_ascii_digit()),
            "{text}"
        );
        let value = query(server.addr(), &[b"GET", &name]).await;
        assert_eq!(value, Frame::Bulk(Bytes::from_static(b"xxx")));
    }
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_value_size() {
    let server = start_server().await;
    let json = kvbench_json(server.addr(), "-t set,get -d 100 -n 500").await;
    assert_eq!(values(&json, "test"), ["\"set\"", "\"get\""]);
    assert_eq!(numbers(&json, "requests"), [500.0, 500.0]);
    assert_eq!(numbers(&json, "errors"), [0.0, 0.0]);
    // Without -r every request uses key 0, as in redis-benchmark.
    assert_eq!(dbsize(server.addr()).await, 1);
    assert_eq!(
        query(server.addr(), &[b"GET", b"key:000000000000"]).await,
        Frame::Bulk(Bytes::from(vec![b'x'; 100]))
    );
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn incr_counts_every_request() {
    let server = start_server().await;
    // 1000 is not a multiple of the pipeline: the last batch is short.
    let json = kvbench_json(server.addr(), "-t incr -n 1000 -c 5 -P 3").await;
    assert_eq!(numbers(&json, "requests"), [1000.0]);
    assert_eq!(numbers(&json, "errors"), [0.0]);
    assert_eq!(
        query(server.addr(), &[b"GET", b"counter:000000000000"]).await,
        Frame::Bulk(Bytes::from_static(b"1000"))
    );
    server.shutdown();
}

/// `total_commands_processed` from INFO stats.
async fn commands_processed(addr: SocketAddr) -> u64 {
    let Frame::Bulk(info) = query(addr, &[b"INFO", b"stats"]).await else {
        panic!("INFO reply");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no total_commands_processed in {info}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_sends_only_pings() {
    let server = start_server().await;
    let before = commands_processed(server.addr()).await;
    let json = kvbench_json(server.addr(), "-t ping -n 1000 -c 5 -P 16").await;
    assert_eq!(values(&json, "test"), ["\"ping\""]);
    assert_eq!(numbers(&json, "requests"), [1000.0]);
    assert_eq!(numbers(&json, "errors"), [0.0]);
    // The 1000 PINGs and this test's INFO; no key written.
    assert_eq!(commands_processed(server.addr()).await - before, 1001);
    assert_eq!(dbsize(server.addr()).await, 0);
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn mset_writes_ten_keys_per_request() {
    let server = start_server().await;
    let json = kvbench_json(
        server.addr(),
        "-t mset -r 1000000000000 -n 20 -c 2 --seed 5",
    )
    .await;
    assert_eq!(numbers(&json, "requests"), [20.0]);
    assert_eq!(numbers(&json, "errors"), [0.0]);
    // 200 keys from 10^12: with a fixed seed, no two collide.
    assert_eq!(dbsize(server.addr()).await, 200);
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_follows_the_ratio() {
    let server = start_server().await;
    let json = kvbench_json(
        server.addr(),
        "-t mixed --ratio 1:3 -r 1000000000000 -n 400 -c 1 -P 7 --seed 11",
    )
    .await;
    assert_eq!(values(&json, "test"), ["\"mixed 1:3\""]);
    assert_eq!(numbers(&json, "requests"), [400.0]);
    assert_eq!(numbers(&json, "errors"), [0.0]);
    // One SET in every four requests of a connection: 100 distinct keys written.
    assert_eq!(dbsize(server.addr()).await, 100);
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_writes_expire() {
    let server = start_server().await;
    let json = kvbench_json(server.addr(), "-t set --ttl 300ms -r 20 -n 200").await;
    assert_eq!(values(&json, "ttl_ms"), ["300"]);
    assert_eq!(numbers(&json, "errors"), [0.0]);
    let Frame::Array(keys) = query(server.addr(), &[b"KEYS", b"*"]).await else {
        panic!("KEYS reply");
    };
    let Some(Frame::Bulk(key)) = keys.first() else {
        // Every key may already have expired on a very slow machine; nothing to check then.
        return;
    };
    match query(server.addr(), &[b"PTTL", key]).await {
        Frame::Integer(ms) => assert!(ms <= 300, "PTTL {ms}"),
        other => panic!("PTTL: {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while dbsize(server.addr()).await > 0 {
        assert!(Instant::now() < deadline, "keys did not expire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn zipf_favours_the_first_keys() {
    let server = start_server().await;
    let json = kvbench_json(
        server.addr(),
        "-t incr --dist zipf -r 1000 -n 5000 --seed 3",
    )
    .await;
    assert_eq!(values(&json, "distribution"), ["\"zipf 0.99\""]);
    assert_eq!(numbers(&json, "requests"), [5000.0]);
    // Rank 1 takes about 13% of the draws, rank 100 about 0.14%.
    let hottest = counter(server.addr(), b"counter:000000000000").await;
    let tenth = counter(server.addr(), b"counter:000000000009").await;
    let hundredth = counter(server.addr(), b"counter:000000000099").await;
    assert!(
        hottest > 400 && hottest > tenth && tenth > hundredth,
        "{hottest} {tenth} {hundredth}"
    );
    assert!(dbsize(server.addr()).await < 1000);
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn duration_runs_for_that_long() {
    let server = start_server().await;
    let json = kvbench_json(server.addr(), "-t get --duration 1s -c 3 -P 2 --threads 2").await;
    let requests = numbers(&json, "requests")[0];
    let seconds = numbers(&json, "seconds")[0];
    assert!(requests > 0.0 && requests % 1.0 == 0.0, "{json}");
    assert!((0.9..10.0).contains(&seconds), "{json}");
    assert_eq!(numbers(&json, "errors"), [0.0]);
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn error_replies_are_counted() {
    let server = start_server().await;
    query(server.addr(), &[b"SET", b"counter:000000000000", b"abc"]).await;
    let args = "-t incr -n 50 -c 2 --json";
    let output = kvbench(server.addr(), args).await;
    assert!(output.status.success());
    let json = String::from_utf8_lossy(&output.stdout);
    assert_eq!(numbers(&json, "errors"), [50.0]);
    assert_eq!(
        values(&json, "first_error"),
        ["\"ERR value is not an integer or out of range\""]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("incr: 50 of 50 replies were errors (first: ERR value is not an integer"),
        "{stderr}"
    );

    let output = kvbench(server.addr(), &format!("{args} --fail-on-error")).await;
    assert_eq!(output.status.code(), Some(3));
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_and_human_output() {
    let server = start_server().await;
    let output = kvbench(server.addr(), "-t set,get -n 100 --csv").await;
    assert!(output.status.success());
    let csv = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(
        lines[0],
        "test,requests,seconds,rps,p50_ms,p99_ms,p99_9_ms,max_ms,errors"
    );
    assert!(
        lines[1].starts_with("set,100,") && lines[1].ends_with(",0"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("get,100,") && lines[2].ends_with(",0"),
        "{csv}"
    );

    let output = kvbench(server.addr(), "-t mset -n 100 -c 10").await;
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("kvbench 127.0.0.1:"), "{table}");
    assert!(
        lines[1].contains("requests/s") && lines[1].contains("p99.9 ms"),
        "{table}"
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!((row[0], row[1], row[8]), ("mset", "100", "0"), "{table}");
    assert!(
        output.stderr.is_empty(),
        "no progress line without a terminal"
    );
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_fails() {
    // A port that was free a moment ago: nothing listens on it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port");
    let output = kvbench(addr, "-t set -n 10").await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!("Could not connect to 127.0.0.1:{}: ", addr.port())),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2() {
    let server = start_server().await;
    for args in [
        "-n 10 --duration 1s",
        "-t lpush",
        "--ratio 0:0",
        "-P 0",
        "--ttl 0.1ms",
    ] {
        let output = kvbench(server.addr(), args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
    server.shutdown();
}

/// A `redis-server` on a free port (killed when dropped), or `None` with a notice when it is
/// not installed: the `publish` test is checked against the real Redis.
struct RedisServer {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on PATH, if there.
fn on_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

async fn start_redis_server() -> Option<RedisServer> {
    let Some(binary) = on_path("redis-server") else {
        eprintln!("SKIPPED: `redis-server` is not on PATH");
        return None;
    };
    // The port is free when chosen but may be taken before redis-server binds it: retry.
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("bind a free port")
            .port();
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(server.addr).await.is_ok()
                && query(server.addr, &[b"PING"]).await == Frame::Simple("PONG".into())
            {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("redis-server did not start");
}

/// Subscribers of `channel` (PUBSUB NUMSUB).
async fn numsub(addr: SocketAddr, channel: &[u8]) -> i64 {
    match query(addr, &[b"PUBSUB", b"NUMSUB", channel]).await {
        Frame::Array(items) => match items.as_slice() {
            [_, Frame::Integer(n)] => *n,
            other => panic!("PUBSUB NUMSUB: {other:?}"),
        },
        other => panic!("PUBSUB NUMSUB: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_reaches_every_subscriber_of_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    // Five subscribers on one channel: every PUBLISH reaches all five.
    let json = kvbench_json(redis.addr, "-t publish -n 2000 -c 4 -P 3 --subscribers 5").await;
    assert_eq!(values(&json, "test"), ["\"publish\""]);
    assert_eq!(
        (values(&json, "subscribers"), values(&json, "channels")),
        (vec!["5"], vec!["1"])
    );
    assert_eq!(numbers(&json, "requests"), [2000.0]);
    assert_eq!(numbers(&json, "deliveries"), [10_000.0]);
    assert_eq!(numbers(&json, "expected_deliveries"), [10_000.0]);
    assert_eq!(numbers(&json, "errors"), [0.0]);
    assert_eq!(numbers(&json, "delivery_errors"), [0.0]);
    assert!(numbers(&json, "deliveries_per_s")[0] > 0.0, "{json}");
    let p50 = numbers(&json, "delivery_p50_ms")[0];
    let p99 = numbers(&json, "delivery_p99_ms")[0];
    assert!(p50 > 0.0 && p50 <= p99, "{json}");
    // The subscribers are gone with kvbench.
    assert_eq!(numsub(redis.addr, b"channel:000000000000").await, 0);

    // Seven subscribers over three channels (3, 2, 2) and larger payloads: each PUBLISH
    // reaches its channel's subscribers, and PUBLISH's replies say how many.
    let json = kvbench_json(
        redis.addr,
        "-t publish -n 900 -c 3 --subscribers 7 --channels 3 -d 200",
    )
    .await;
    assert_eq!(numbers(&json, "errors"), [0.0]);
    let delivered = numbers(&json, "deliveries")[0];
    assert_eq!(numbers(&json, "expected_deliveries"), [delivered]);
    assert!((900.0 * 2.0..=900.0 * 3.0).contains(&delivered), "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_to_a_thousand_subscribers_of_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    for channels in [1, 1000] {
        let args = format!("-t publish -n 200 -c 10 --subscribers 1000 --channels {channels}");
        let json = kvbench_json(redis.addr, &args).await;
        assert_eq!(numbers(&json, "errors"), [0.0], "{args}");
        let expected = if channels == 1 { 200_000.0 } else { 200.0 };
        assert_eq!(numbers(&json, "deliveries"), [expected], "{args}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_reports_a_refused_subscribe() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    // The default user may no longer SUBSCRIBE: Redis answers with a NOPERM error.
    let reply = query(redis.addr, &[b"ACL", b"SETUSER", b"default", b"-subscribe"]).await;
    assert_eq!(reply, Frame::Simple("OK".into()));
    let output = kvbench(redis.addr, "-t publish -n 10").await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("publish against 127.0.0.1:")
            && stderr.contains("the server refused SUBSCRIBE (NOPERM"),
        "{stderr}"
    );
}

#[path = "../../tests/support/certs.rs"]
mod certs;

/// `--tls` against a kvserver TLS port that requires a client certificate.
#[tokio::test(flavor = "multi_thread")]
async fn tls_runs_a_short_benchmark() {
    use certs::{text, Pki};
    let pki = Pki::new();
    let server = kvserver::start(
        Config {
            port: 0,
            save: Default::default(),
            tls_any_port: true,
            tls_cert_file: text(&pki.server_files.cert),
            tls_key_file: text(&pki.server_files.key),
            tls_ca_cert_file: text(&pki.ca_file),
            ..Config::default()
        },
        None,
    )
    .await
    .expect("server starts");
    let tls_addr = server.tls_addr().expect("TLS port");
    let tls_args = format!(
        "--tls --sni localhost --cacert {} --cert {} --key {}",
        text(&pki.ca_file),
        text(&pki.client_files.cert),
        text(&pki.client_files.key)
    );
    let json = kvbench_json(
        tls_addr,
        &format!("{tls_args} -t set,get,incr,mset -r 100 -n 2000 -c 4 -P 16 -d 2000"),
    )
    .await;
    assert_eq!(numbers(&json, "requests"), [2000.0, 2000.0, 2000.0, 2000.0]);
    assert_eq!(numbers(&json, "errors"), [0.0, 0.0, 0.0, 0.0]);
    let keys = dbsize(server.addr()).await;
    assert!((1..=200).contains(&keys), "DBSIZE {keys}");
    // Without a client certificate the server refuses the connections.
    let refused = kvbench(
        tls_addr,
        &format!(
            "--tls --sni localhost --cacert {} -t ping -n 10 -c 1",
            text(&pki.ca_file)
        ),
    )
    .await;
    assert!(!refused.status.success());
    // The tests that run their own loops say they do not support TLS.
    let refused = kvbench(tls_addr, &format!("{tls_args} -t cas -n 10")).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--tls"));
    server.shutdown();
}
