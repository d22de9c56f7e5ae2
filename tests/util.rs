//! Helpers shared by the end-to-end tests: an in-process server on port 0, a `redis` crate
//! client, a raw-socket client that reads whole RESP replies with the protocol crate's
//! [`RespCodec`], reply constructors, and helpers for child processes (the kvserver binary,
//! redis-server, redis-cli, redis-benchmark).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kvserver::{Config, ServerHandle};
pub use protocol::Frame;
use protocol::RespCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

/// Longest a test waits for one reply (or for EOF) before failing instead of hanging.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a server in-process on `127.0.0.1:0` with the default configuration.
pub async fn start_server() -> ServerHandle {
    start_server_with(|_| {}).await
}

/// Starts a server in-process on `127.0.0.1:0` after `adjust` has changed the configuration.
pub async fn start_server_with(adjust: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config {
        port: 0,
        // No snapshot on shutdown: tests must not write into the working directory.
        save: Default::default(),
        // Two connection threads on any machine (the default depends on the core count), so
        // that every test runs its clients' connections on more than one thread.
        threads: 2,
        ..Config::default()
    };
    adjust(&mut config);
    kvserver::start(config, None)
        .await
        .expect("server starts on port 0")
}

/// A `redis` crate multiplexed connection to `addr` (RESP2).
pub async fn redis_client(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("valid redis URL");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("redis client connects")
}

/// A raw TCP client: writes whatever bytes it is given, the way netcat would, and decodes
/// replies with the protocol crate's client codec.
pub struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    codec: RespCodec,
}

impl Raw {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw::from_stream(TcpStream::connect(addr).await.expect("connect"))
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            codec: RespCodec::default(),
        }
    }

    /// Writes `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to server");
    }

    /// Sends one command as a RESP array of bulk strings and returns its reply.
    pub async fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        self.send(&encode(args)).await;
        self.read().await
    }

    /// Reads the next complete reply; fails the test on EOF, a protocol error or timeout.
    pub async fn read(&mut self) -> Frame {
        match self.try_read().await {
            Some(frame) => frame,
            None => panic!("connection closed while a reply was expected"),
        }
    }

    /// Reads the next complete reply, or `None` if the server closed the connection first.
    pub async fn try_read(&mut self) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf).expect("valid RESP reply") {
                return Some(frame);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .expect("timed out waiting for a reply");
            match read {
                Ok(0) => {
                    assert!(
                        self.buf.is_empty(),
                        "connection closed inside a reply: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
                Ok(_) => {}
                // A reset after the server closed counts as closed.
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(err) => panic!("read failed: {err}"),
            }
        }
    }

    /// Asserts that the server closes the connection without sending anything more.
    pub async fn expect_closed(&mut self) {
        if let Some(frame) = self.try_read().await {
            panic!("expected the connection to be closed, got {frame:?}");
        }
    }

    /// Reads raw bytes until exactly `n` have arrived (for checking the exact wire format).
    pub async fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let read = tokio::time::timeout(REPLY_TIMEOUT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("timed out waiting for bytes")
                .expect("read");
            assert!(
                read > 0,
                "closed after {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
        self.buf.split_to(n).to_vec()
    }

    /// The underlying stream (to shut down its write half, peek, ...).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

/// Encodes a command as clients send it: a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let args: Vec<Bytes> = args
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_ref()))
        .collect();
    let mut out = BytesMut::new();
    protocol::encode::encode_command_bytes(&args, &mut out);
    out.to_vec()
}

// ----- reply constructors ----------------------------------------------------------------------

/// `+OK`.
pub fn ok() -> Frame {
    simple("OK")
}

/// A simple string reply.
pub fn simple(text: &str) -> Frame {
    Frame::Simple(Bytes::copy_from_slice(text.as_bytes()))
}

/// An error reply (`text` includes the prefix, e.g. `ERR syntax error`).
pub fn err(text: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(text.as_bytes()))
}

/// A bulk string reply.
pub fn bulk(data: impl AsRef<[u8]>) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(data.as_ref()))
}

/// An integer reply.
pub fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

/// The null reply (`$-1`, `*-1` or RESP3 `_`).
pub fn nil() -> Frame {
    Frame::Null
}

/// An array of bulk strings.
pub fn bulks<A: AsRef<[u8]>>(items: &[A]) -> Frame {
    Frame::Array(items.iter().map(bulk).collect())
}

/// `ERR wrong number of arguments for '<name>' command`.
pub fn arity_err(name: &str) -> Frame {
    err(&format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// The elements of an array reply; fails the test for anything else.
pub fn array_items(frame: Frame) -> Vec<Frame> {
    match frame {
        Frame::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// The payload of a bulk (or verbatim) reply as text; fails the test for anything else.
pub fn text_of(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

/// The integer of an integer reply; fails the test for anything else.
pub fn int_of(frame: &Frame) -> i64 {
    match frame {
        Frame::Integer(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// Array of bulk strings as sorted byte strings (for replies whose order is unspecified).
pub fn sorted_bulks(frame: Frame) -> Vec<Vec<u8>> {
    let mut items: Vec<Vec<u8>> = array_items(frame)
        .into_iter()
        .map(|f| match f {
            Frame::Bulk(b) => b.to_vec(),
            other => panic!("expected bulk strings, got {other:?}"),
        })
        .collect();
    items.sort();
    items
}

/// One `field:value` line of an INFO reply.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::to_owned)
}

/// Current Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Sends `args` every 10 ms until the reply is `expected`; fails the test after `limit`.
pub async fn poll_until_reply<A: AsRef<[u8]>>(
    c: &mut Raw,
    args: &[A],
    expected: Frame,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    loop {
        let reply = c.cmd(args).await;
        if reply == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {limit:?} the reply is still {reply:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ----- processes -------------------------------------------------------------------------------

/// Finds an executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `which`, printing a notice when the tool is missing so the skip shows up in test output.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = which(name);
    if found.is_none() {
        eprintln!("SKIPPED: `{name}` is not on PATH");
    }
    found
}

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Waits for a child process to exit, killing it (and failing) after `limit`.
pub fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `command` with `input` on its stdin and collects its output; kills it (and fails)
/// if it runs longer than `limit`.
pub fn run_with_input(command: &mut Command, input: &[u8], limit: Duration) -> Output {
    use std::io::{Read, Write};
    let child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child process");
    let mut guard = ChildGuard { child };
    let mut stdout = guard.child.stdout.take().expect("stdout");
    let mut stderr = guard.child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    if let Some(mut stdin) = guard.child.stdin.take() {
        // A tool that exits early closes its stdin; its status tells what happened.
        let _ = stdin.write_all(input);
    }
    let status = wait_child(&mut guard.child, limit);
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Kills a child process when dropped (also when the test fails), so no server outlives its
/// test.
pub struct ChildGuard {
    /// The process.
    pub child: Child,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Connects to `127.0.0.1:port`, retrying every 10 ms while a freshly spawned server starts;
/// gives up after `limit`. `None` if nothing ever listened.
pub async fn connect_with_retry(port: u16, limit: Duration) -> Option<TcpStream> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            return Some(stream);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `kvserver` binary cargo built for this test run, from the current sources and with
/// the same profile.
///
/// This test binary is a target of the server package (see server/Cargo.toml), so cargo
/// builds the package's binaries before it and passes the path at compile time in
/// `CARGO_BIN_EXE_kvserver`: the tests never pick up a stale `target/<profile>/kvserver` and
/// never skip for want of one.
pub fn kvserver_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kvserver"))
}

/// Runs a SCAN-family iteration to its end: `head` is the command and its key (`["SCAN"]`,
/// `["HSCAN", key]`), `options` what follows the cursor. Returns every element of every
/// batch, in order (repeats included), and the number of calls.
pub async fn scan_to_end(c: &mut Raw, head: &[&str], options: &[&str]) -> (Vec<Frame>, usize) {
    let mut cursor = "0".to_owned();
    let mut elements = Vec::new();
    let mut calls = 0;
    loop {
        let mut args: Vec<&str> = head.to_vec();
        args.push(&cursor);
        args.extend_from_slice(options);
        let mut reply = array_items(c.cmd(&args).await).into_iter();
        let (Some(next), Some(batch), None) = (reply.next(), reply.next(), reply.next()) else {
            panic!("{head:?} reply is not [cursor, elements]");
        };
        elements.extend(array_items(batch));
        calls += 1;
        cursor = text_of(&next);
        if cursor == "0" {
            return (elements, calls);
        }
        assert!(calls < 100_000, "{head:?} does not terminate");
    }
}

/// Sends every command in one write and returns every reply, in order.
pub async fn pipeline(c: &mut Raw, commands: &[&[&str]]) -> Vec<Frame> {
    let mut bytes = Vec::new();
    for command in commands {
        bytes.extend_from_slice(&encode(command));
    }
    c.send(&bytes).await;
    let mut replies = Vec::with_capacity(commands.len());
    for _ in commands {
        replies.push(c.read().await);
    }
    replies
}

/// `count` keys named `prefix` and a number, on at least `min_shards` shards of database 0,
/// so that a test of atomicity across shards really spans several. Chosen, not just checked:
/// key hashing is seeded per process, and `prefix0`..`prefix7` land on fewer than four of
/// the 16 shards about once in a thousand runs.
pub fn keys_over_shards(
    server: &ServerHandle,
    prefix: &str,
    count: usize,
    min_shards: usize,
) -> Vec<String> {
    assert!(
        min_shards <= count.min(16),
        "{min_shards} shards for {count} keys"
    );
    let db = server.shared().store.db(0).expect("db 0");
    let mut shards = std::collections::HashSet::new();
    let mut keys = Vec::with_capacity(count);
    let mut names = (0..).map(|i| format!("{prefix}{i}"));
    // One key on each new shard until there are enough shards, then any.
    while shards.len() < min_shards {
        let key = names.next().expect("endless names");
        if shards.insert(db.shard_index(key.as_bytes())) {
            keys.push(key);
        }
    }
    keys.extend(names.take(count - keys.len()));
    keys
}

/// A server in `dir` with the append-only file on under `appendfsync always`.
pub async fn start_logged_server(dir: &std::path::Path) -> ServerHandle {
    let dir = dir.to_path_buf();
    start_server_with(move |config| {
        config.dir = dir;
        config.appendonly = true;
        config.appendfsync = kvserver::config::FsyncPolicy::Always;
    })
    .await
}

/// The incremental log files of the append-only file in `dir`, concatenated, as text.
pub fn incr_logs_text(dir: &std::path::Path) -> String {
    let mut log = Vec::new();
    for entry in std::fs::read_dir(dir.join("appendonlydir")).expect("log dir") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".incr.aof") {
            log.extend(std::fs::read(path).expect("read incr"));
        }
    }
    String::from_utf8_lossy(&log).into_owned()
}
