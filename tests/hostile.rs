//! Hostile clients against the real `kvserver` binary, run as its own process so that its
//! resident memory (VmRSS in /proc/<pid>/status) is the server's alone: malformed type
//! bytes, negative and huge lengths, `*1048577` arrays, unterminated lines, binary junk,
//! frames cut mid-way, 1 MB inline lines, lying length headers, and a client that pipelines
//! GETs of a large value and never reads the replies.
//!
//! After every case a fresh, well-behaved client must still get correct answers, and the
//! server's VmRSS must stay below its resident size after start-up plus [`RSS_HEADROOM`].
//! The cases that end with an error reply expect Redis's reply byte for byte, and
//! `redis_agrees_with_the_table` replays the same table against a real redis-server 7 (when
//! one is installed) to keep it honest.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::differential::start_redis_server;
use crate::util::*;

/// How much the server's VmRSS may grow over its size after start-up, whatever a hostile
/// client does. Every case below could make a careless server hold hundreds of MB to GBs (a
/// 512 MB bulk header honoured up front, a million-element array preallocated, 1 GB of
/// pipelined replies buffered for a client that never reads); the server itself needs a few
/// MB for buffers, threads' arenas and the 256 KiB test value.
const RSS_HEADROOM_KIB: u64 = 64 * 1024;

/// For the error message: [`RSS_HEADROOM_KIB`] in MiB.
const RSS_HEADROOM: &str = "64 MiB";

/// Longest we wait for a reply or for the server to close a connection.
const LIMIT: Duration = Duration::from_secs(20);

/// How long a connection that should stay open and silent is watched for a reply or EOF.
/// A slow server can only make such a check pass wrongly, never fail wrongly.
const QUIET: Duration = Duration::from_millis(300);

/// A kvserver process on a free port, killed when dropped.
struct Server {
    guard: ChildGuard,
    port: u16,
    /// VmRSS in KiB once started and warmed up by a first healthy client.
    baseline_kib: u64,
}

impl Server {
    async fn start() -> Server {
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(kvserver_binary())
                .args(["--port", &port.to_string(), "--loglevel", "warning"])
                .args(["--save", "", "--appendonly", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn kvserver");
            let mut guard = ChildGuard { child };
            if connect_with_retry(port, LIMIT).await.is_some() {
                let mut server = Server {
                    guard,
                    port,
                    baseline_kib: 0,
                };
                server.assert_healthy("start-up").await;
                server.baseline_kib = server.rss_kib();
                return server;
            }
            // Probably lost the port between choosing and binding it.
            let _ = guard.child.kill();
        }
        panic!("kvserver did not start");
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to kvserver")
    }

    /// The server's VmRSS in KiB.
    fn rss_kib(&self) -> u64 {
        let pid = self.guard.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("read /proc/<pid>/status of the server");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line in kB")
    }

    fn assert_rss_bounded(&self, after: &str) {
        let rss = self.rss_kib();
        assert!(
            rss <= self.baseline_kib + RSS_HEADROOM_KIB,
            "after {after}: VmRSS {rss} KiB, more than {RSS_HEADROOM} over the {} KiB after \
             start-up",
            self.baseline_kib
        );
    }

    /// A new, well-behaved client gets correct answers: a write, a read of a 64 KiB value
    /// byte for byte, an integer command, PING.
    async fn assert_healthy(&self, after: &str) {
        let mut c = Raw::from_stream(self.connect().await);
        let value: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            c.cmd(&[&b"SET"[..], b"health", &value]).await,
            ok(),
            "after {after}"
        );
        assert_eq!(
            c.cmd(&["GET", "health"]).await,
            bulk(&value),
            "after {after}"
        );
        assert_eq!(c.cmd(&["STRLEN", "health"]).await, int(64 * 1024));
        assert_eq!(c.cmd(&["PING"]).await, simple("PONG"), "after {after}");
    }

    async fn assert_fine(&self, after: &str) {
        self.assert_healthy(after).await;
        self.assert_rss_bounded(after);
    }
}

/// What a connection did after a case's bytes were sent.
#[derive(Debug, PartialEq)]
struct Seen {
    reply: Vec<u8>,
    closed: bool,
}

/// Sends `bytes` on a new connection to `port` and collects what comes back: up to EOF if
/// `closes`, else whatever arrives within [`QUIET`] (the connection should stay open).
async fn observe(port: u16, bytes: &[u8], closes: bool) -> Seen {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    // The peer may close before reading everything (after a protocol error): a failed
    // write is then expected, and what it replied is still readable.
    let _ = stream.write_all(bytes).await;
    let wait = if closes { LIMIT } else { QUIET };
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Seen {
                    reply,
                    closed: true,
                }
            }
            Ok(Ok(n)) => reply.extend_from_slice(&chunk[..n]),
            Err(_) => {
                return Seen {
                    reply,
                    closed: false,
                }
            }
        }
    }
}

/// One hostile request: its bytes, what Redis replies, and whether Redis then closes.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    reply: &'static [u8],
    closes: bool,
}

fn protocol_error(name: &'static str, bytes: impl Into<Vec<u8>>, reply: &'static [u8]) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        reply,
        closes: true,
    }
}

fn stays_open(name: &'static str, bytes: impl Into<Vec<u8>>, reply: &'static [u8]) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        reply,
        closes: false,
    }
}

/// The table: every reply is what redis-server 7.0 sent for the same bytes.
fn cases() -> Vec<Case> {
    let mut cases = vec![
        // Malformed type bytes.
        protocol_error(
            "'+' where a bulk string belongs",
            &b"*1\r\n+PING\r\n"[..],
            b"-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        protocol_error(
            "':' where a bulk string belongs",
            &b"*2\r\n$3\r\nGET\r\n:1\r\n"[..],
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        protocol_error(
            "byte 0xff where a bulk string belongs (sent back raw)",
            &b"*1\r\n\xff3\r\nfoo\r\n"[..],
            b"-ERR Protocol error: expected '$', got '\xff'\r\n",
        ),
        stays_open(
            "an unknown type byte starts an inline command",
            &b"?foo\r\n"[..],
            b"-ERR unknown command '?foo', with args beginning with: \r\n",
        ),
        // Negative lengths.
        stays_open(
            "*-2 is skipped like *-1",
            &b"*-2\r\nPING\r\n"[..],
            b"+PONG\r\n",
        ),
        stays_open("*-1 is skipped", &b"*-1\r\nPING\r\n"[..], b"+PONG\r\n"),
        protocol_error(
            "$-1 in a request",
            &b"*1\r\n$-1\r\n"[..],
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        protocol_error(
            "$-2 in a request",
            &b"*1\r\n$-2\r\n"[..],
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        // Huge lengths.
        stays_open("*1048577 waits for its elements", &b"*1048577\r\n"[..], b""),
        protocol_error(
            "*2147483648",
            &b"*2147483648\r\n"[..],
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        protocol_error(
            "a 20-digit array length",
            &b"*99999999999999999999\r\n"[..],
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        stays_open(
            "a 512 MB bulk header waits for its payload",
            &b"*1\r\n$536870912\r\n"[..],
            b"",
        ),
        protocol_error(
            "a bulk just over 512 MB",
            &b"*1\r\n$536870913\r\n"[..],
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        protocol_error(
            "a 20-digit bulk length",
            &b"*1\r\n$99999999999999999999\r\n"[..],
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        protocol_error(
            "letters for an array length",
            &b"*abc\r\n"[..],
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        protocol_error(
            "a plus sign in an array length",
            &b"*+3\r\n"[..],
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        protocol_error(
            "letters for a bulk length",
            &b"*1\r\n$x\r\n"[..],
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        // Unterminated lines and frames cut mid-way: the server waits for the rest.
        stays_open("an inline command without its newline", &b"PING"[..], b""),
        stays_open("an array header without its CRLF", &b"*1"[..], b""),
        stays_open(
            "a SET cut inside its value",
            &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab"[..],
            b"",
        ),
        protocol_error(
            "an unterminated quote",
            &b"SET k \"abc\r\n"[..],
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        // Binary junk: a NUL first ends the inline line for sdssplitargs (an empty command),
        // and the rest has no newline.
        stays_open(
            "every byte value once",
            (0..=255u8).collect::<Vec<u8>>(),
            b"",
        ),
    ];
    // Over-long lines: 1 MB, where Redis stops at 64 KiB.
    let mut inline = vec![b'a'; 1 << 20];
    cases.push(protocol_error(
        "a 1 MB inline line without a newline",
        inline.clone(),
        b"-ERR Protocol error: too big inline request\r\n",
    ));
    inline.extend_from_slice(b"\r\n");
    cases.push(protocol_error(
        "a 1 MB inline line",
        inline,
        b"-ERR Protocol error: too big inline request\r\n",
    ));
    cases.push(protocol_error(
        "a 1 MB array length",
        [&b"*"[..], &[b'9'; 1 << 20]].concat(),
        b"-ERR Protocol error: too big mbulk count string\r\n",
    ));
    cases.push(protocol_error(
        "a 1 MB bulk length",
        [&b"*1\r\n$"[..], &[b'9'; 1 << 20]].concat(),
        b"-ERR Protocol error: too big bulk count string\r\n",
    ));
    cases
}

#[tokio::test]
async fn hostile_requests_get_redis_replies_and_leave_the_server_fine() {
    let server = Server::start().await;
    for case in cases() {
        let seen = observe(server.port, &case.bytes, case.closes).await;
        assert_eq!(
            seen,
            Seen {
                reply: case.reply.to_vec(),
                closed: case.closes,
            },
            "{}",
            case.name
        );
        server.assert_fine(case.name).await;
    }
}

/// The same table against redis-server, so that it stays a record of what Redis does.
#[tokio::test]
async fn redis_agrees_with_the_table() {
    let Some(redis) = start_redis_server().await else {
        eprintln!("redis-server not installed: the hostile-input table is not checked");
        return;
    };
    for case in cases() {
        let seen = observe(redis.addr.port(), &case.bytes, case.closes).await;
        assert_eq!(seen.reply, case.reply, "redis-server: {}", case.name);
        assert_eq!(seen.closed, case.closes, "redis-server: {}", case.name);
    }
}

/// Where kvserver is deliberately stricter than Redis: a bulk payload must be followed by
/// CRLF. Redis skips the two bytes after the payload whatever they are (so `fooXY` reads as
/// `foo`); kvserver refuses, since the declared length does not match the data.
#[tokio::test]
async fn bulk_payload_without_its_crlf() {
    let server = Server::start().await;
    let seen = observe(server.port, b"*1\r\n$3\r\nfooXY", true).await;
    assert_eq!(
        seen.reply,
        b"-ERR Protocol error: expected CRLF after bulk payload\r\n"
    );
    assert!(seen.closed);
    server.assert_fine("a payload without its CRLF").await;
}

/// Requests that stop half-way wait for the rest: completing them later works, and a client
/// that vanishes mid-request leaves nothing behind.
#[tokio::test]
async fn frames_cut_at_every_byte() {
    let server = Server::start().await;
    let request = encode(&["SET", "cut", "0123456789"]);
    for cut in 1..request.len() {
        // Completed later, in a second write.
        let mut c = Raw::from_stream(server.connect().await);
        c.send(&request[..cut]).await;
        c.stream().flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(5)).await;
        c.send(&request[cut..]).await;
        assert_eq!(c.read().await, ok(), "cut at {cut}");
        assert_eq!(c.cmd(&["DEL", "cut"]).await, int(1));

        // Abandoned: the half request is dropped with the connection.
        let mut c = Raw::from_stream(server.connect().await);
        c.send(&request[..cut]).await;
        c.stream()
            .shutdown()
            .await
            .expect("shut down the write half");
        c.expect_closed().await;
    }
    let mut c = Raw::from_stream(server.connect().await);
    assert_eq!(c.cmd(&["EXISTS", "cut"]).await, int(0));
    server.assert_fine("cut frames").await;
}

/// Headers that promise far more than is sent cost nothing up front: 16 clients each
/// announce a 512 MB bulk and send 100 KB of it, 16 announce 1048577 arguments and send a
/// thousand; all of them stay connected while memory is checked.
#[tokio::test]
async fn lying_lengths_do_not_allocate() {
    let server = Server::start().await;
    let mut liars = Vec::new();
    for _ in 0..16 {
        let mut c = server.connect().await;
        c.write_all(b"*2\r\n$3\r\nSET\r\n$536870912\r\n")
            .await
            .expect("write");
        c.write_all(&vec![b'x'; 100 * 1024]).await.expect("write");
        liars.push(c);
        let mut c = server.connect().await;
        c.write_all(b"*1048577\r\n").await.expect("write");
        c.write_all(&b"$1\r\na\r\n".repeat(1000))
            .await
            .expect("write");
        liars.push(c);
    }
    // Let the server read what was sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.assert_fine("lying length headers").await;
    // Still connected, still waiting: nothing was replied, nothing closed.
    for c in &mut liars {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(10), c.read(&mut byte)).await;
        assert!(read.is_err(), "the server replied or closed: {read:?}");
    }
    drop(liars);
    server.assert_fine("the liars leaving").await;
}

/// Deterministic junk (xorshift) in 64 KiB writes on four connections at once, read
/// concurrently so that the server's replies to whatever happens to parse never block it.
#[tokio::test]
async fn binary_junk() {
    let server = Server::start().await;
    let mut tasks = Vec::new();
    for seed in 1..=4u64 {
        let stream = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let (mut read, mut write) = stream.into_split();
            let reader = tokio::spawn(async move {
                let mut sink = vec![0u8; 64 * 1024];
                while let Ok(Ok(n)) = tokio::time::timeout(LIMIT, read.read(&mut sink)).await {
                    if n == 0 {
                        break;
                    }
                }
            });
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for _ in 0..16 {
                let junk: Vec<u8> = (0..64 * 1024)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                if write.write_all(&junk).await.is_err() {
                    // Closed after a protocol error: expected for junk.
                    break;
                }
            }
            drop(write);
            reader.await.expect("reader task");
        }));
    }
    for task in tasks {
        task.await.expect("junk task");
    }
    server.assert_fine("binary junk").await;
}

/// A client that pipelines 4000 GETs of a 256 KiB value (1 GB of replies) and never reads:
/// the server stops reading from it once a few MB of replies are waiting, keeps serving
/// everyone else, and forgets it when it goes.
#[tokio::test]
async fn client_that_never_reads() {
    let server = Server::start().await;
    let value = vec![b'v'; 256 * 1024];
    let mut c = Raw::from_stream(server.connect().await);
    assert_eq!(c.cmd(&[&b"SET"[..], b"big", &value]).await, ok());
    drop(c);

    let mut sluggard = server.connect().await;
    let gets = encode(&["GET", "big"]).repeat(4000);
    // 88 KB of requests: they fit in the socket buffers, so this write does not block.
    sluggard.write_all(&gets).await.expect("write the GETs");
    // Watch memory for a while as the server does what it can with them.
    for round in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.assert_rss_bounded(&format!("{round} rounds of a client that never reads"));
    }
    server.assert_fine("a client that never reads").await;
    drop(sluggard);
    server
        .assert_fine("the client that never read leaving")
        .await;
}
