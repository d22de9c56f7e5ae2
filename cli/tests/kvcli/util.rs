//! Helpers: an in-process kvserver on port 0, the real redis-server as a child process
//! ([`Backend`] starts either), a plain RESP client for the other side of a test, and runs
//! of the real `kvcli` binary with bounded time, so that a bug makes a test fail instead of
//! hang.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kvserver::{Config, ServerHandle};
use protocol::{Frame, RespCodec};
use tokio::runtime::Runtime;
use tokio_util::codec::{Decoder, Encoder};

/// The kvcli binary under test.
pub const KVCLI: &str = env!("CARGO_BIN_EXE_kvcli");

/// Longest a kvcli run may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// A kvserver running in this process on a free port, stopped on drop.
pub struct TestServer {
    runtime: Option<Runtime>,
    handle: Option<ServerHandle>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Its TLS port, if it has one.
    pub tls_port: Option<u16>,
}

impl TestServer {
    /// Starts a server with the default configuration on `127.0.0.1:0`.
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// Starts a server on `127.0.0.1:0` after `adjust` has changed the configuration.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut config = Config {
            port: 0,
            // No snapshot on shutdown: tests must not write into the working directory.
            save: Default::default(),
            ..Config::default()
        };
        adjust(&mut config);
        let handle = runtime
            .block_on(kvserver::start(config, None))
            .expect("server starts on port 0");
        let port = handle.addr().port();
        let tls_port = handle.tls_addr().map(|addr| addr.port());
        TestServer {
            tls_port,
            runtime: Some(runtime),
            handle: Some(handle),
            port,
        }
    }

    /// Stops the server, which closes every connection, and starts a new (empty) one on
    /// the same port.
    pub fn restart(&mut self) {
        let runtime = self.runtime.as_ref().expect("server runtime");
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            runtime.block_on(handle.stopped());
        }
        let config = Config {
            port: self.port,
            save: Default::default(),
            ..Config::default()
        };
        let handle = runtime
            .block_on(kvserver::start(config, None))
            .expect("server restarts on the same port");
        self.handle = Some(handle);
    }

    /// Runs kvcli against this server (`-p PORT` first) with `stdin` as standard input.
    pub fn kvcli(&self, args: &[&str], stdin: &[u8]) -> Run {
        let port = self.port.to_string();
        let mut all = vec!["-p", port.as_str()];
        all.extend_from_slice(args);
        kvcli(&all, stdin)
    }

    /// Runs one command with raw output and returns its stdout.
    pub fn cmd(&self, args: &[&str]) -> String {
        let run = self.kvcli(args, b"");
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.err());
        run.out()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            // Connections run on the server's own threads: wait until they are closed, so a
            // test that drops the server sees it gone.
            if let Some(runtime) = &self.runtime {
                runtime.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(10), handle.stopped()).await;
                });
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// A redis-server child process on a free port, killed on drop.
pub struct RedisServer {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl RedisServer {
    /// Starts `redis-server` with no persistence, or returns `None` after a notice when it
    /// is not installed (the test is then skipped).
    pub fn start() -> Option<RedisServer> {
        let Some(binary) = on_path("redis-server") else {
            eprintln!("SKIPPED: `redis-server` is not on PATH");
            return None;
        };
        // The port is free when chosen but may be taken before redis-server binds it.
        for _ in 0..3 {
            let port = closed_port();
            let child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut server = RedisServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(server.child.try_wait(), Ok(Some(_))) {
                    break; // exited: the port was taken
                }
                if try_request(port, &["PING"]).is_some_and(|r| r == simple("PONG")) {
                    return Some(server);
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start");
    }
}

impl RedisServer {
    /// The process id (to stop and continue it with signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on PATH, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Which server a test runs against: the same test body checks kvserver and, as ground
/// truth, the real Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// kvserver in this process.
    Kvserver,
    /// `redis-server` from PATH (the test is skipped when it is missing).
    Redis,
}

/// A running server of either kind.
pub enum AnyServer {
    /// kvserver.
    Kv(TestServer),
    /// redis-server.
    Redis(RedisServer),
}

impl Backend {
    /// Starts the server; `None` (after a notice) when it is not available here.
    pub fn start(self) -> Option<AnyServer> {
        match self {
            Backend::Kvserver => Some(AnyServer::Kv(TestServer::start())),
            Backend::Redis => RedisServer::start().map(AnyServer::Redis),
        }
    }
}

impl AnyServer {
    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        match self {
            AnyServer::Kv(server) => server.port,
            AnyServer::Redis(server) => server.port,
        }
    }
}

/// A simple string frame.
pub fn simple(text: &str) -> Frame {
    Frame::Simple(Bytes::copy_from_slice(text.as_bytes()))
}

/// A bulk string frame.
pub fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

/// Runs one command on a fresh RESP2 connection to `port` and returns the reply.
pub fn request(port: u16, argv: &[&str]) -> Frame {
    match try_request(port, argv) {
        Some(reply) => reply,
        None => panic!("{argv:?} on port {port}: no reply"),
    }
}

fn try_request(port: u16, argv: &[&str]) -> Option<Frame> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(RUN_TIMEOUT)).ok()?;
    let mut codec = RespCodec::default();
    let (mut out, mut buf) = (BytesMut::new(), BytesMut::new());
    let words: Vec<Bytes> = argv
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    codec.encode(&words[..], &mut out).ok()?;
    stream.write_all(&out).ok()?;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(frame) = codec.decode(&mut buf).ok()? {
            return Some(frame);
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Polls `condition` until it holds; fails the test after [`RUN_TIMEOUT`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + RUN_TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Subscribers of `channel` (`PUBSUB NUMSUB`).
pub fn numsub(port: u16, channel: &str) -> i64 {
    match request(port, &["PUBSUB", "NUMSUB", channel]) {
        Frame::Array(items) => match items.as_slice() {
            [_, Frame::Integer(n)] => *n,
            other => panic!("PUBSUB NUMSUB: {other:?}"),
        },
        other => panic!("PUBSUB NUMSUB: {other:?}"),
    }
}

/// Sends signal `name` (`INT`, `TERM`...) to process `pid` with kill(1).
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}: {status}");
}

/// A port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

/// A fresh directory for one test (history files, home).
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kvcli-test-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// What a kvcli run produced.
#[derive(Debug)]
pub struct Run {
    /// Exit status (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Run {
    /// Standard output as text.
    pub fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// Standard error as text.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A command line for kvcli with a clean environment: no password from the environment,
/// no history file.
pub fn kvcli_command(args: &[&str]) -> Command {
    let mut command = Command::new(KVCLI);
    command
        .args(args)
        .env_remove("KVCLI_AUTH")
        .env("KVCLI_HISTFILE", "/dev/null");
    command
}

/// Runs kvcli with `args` and `stdin`, killing it if it takes longer than [`RUN_TIMEOUT`].
pub fn kvcli(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = kvcli_command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvcli starts");
    let input = stdin.to_vec();
    let mut child_stdin = child.stdin.take().expect("stdin");
    let feeder = thread::spawn(move || {
        // kvcli may exit without reading everything: that is not an error here.
        let _ = child_stdin.write_all(&input);
    });
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let code = wait(&mut child, args);
    feeder.join().expect("stdin feeder");
    Run {
        code,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn wait(child: &mut Child, args: &[&str]) -> Option<i32> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for kvcli") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kvcli {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A kvcli process fed line by line through a pipe, whose output is awaited piece by
/// piece (an `expect` over pipes, for the shell's line mode).
pub struct Piped {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<Vec<u8>>,
    stderr: Receiver<Vec<u8>>,
    out: String,
    err: String,
}

impl Piped {
    /// Starts kvcli with `args`.
    pub fn spawn(args: &[&str]) -> Piped {
        let mut child = kvcli_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kvcli starts");
        let stdin = child.stdin.take();
        let stdout = stream(child.stdout.take().expect("stdout"));
        let stderr = stream(child.stderr.take().expect("stderr"));
        Piped {
            child,
            stdin,
            stdout,
            stderr,
            out: String::new(),
            err: String::new(),
        }
    }

    /// Sends `line` and a newline.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to kvcli");
    }

    /// Waits until standard output has shown `text`; returns the output up to its end.
    pub fn expect_out(&mut self, text: &str) -> String {
        wait_for(&self.stdout, &mut self.out, text, "stdout")
    }

    /// Waits until standard error has shown `text`; returns the output up to its end.
    pub fn expect_err(&mut self, text: &str) -> String {
        wait_for(&self.stderr, &mut self.err, text, "stderr")
    }

    /// Sends signal `name` (`INT`, `TERM`...) and waits for kvcli to end; returns how.
    pub fn signal_and_wait(&mut self, name: &str) -> ExitStatus {
        send_signal(self.child.id(), name);
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for kvcli") {
                return status;
            }
            assert!(Instant::now() < deadline, "kvcli did not end on SIG{name}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends signal `name` every 100 ms until kvcli ends; returns how it ended.
    pub fn signal_until_done(&mut self, name: &str) -> ExitStatus {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for kvcli") {
                return status;
            }
            assert!(Instant::now() < deadline, "kvcli did not end on SIG{name}");
            send_signal(self.child.id(), name);
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything standard output and standard error showed after the last `expect_*`,
    /// once kvcli has ended.
    pub fn rest(&mut self) -> (String, String) {
        for (source, seen) in [(&self.stdout, &mut self.out), (&self.stderr, &mut self.err)] {
            while let Ok(chunk) = source.recv_timeout(RUN_TIMEOUT) {
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
        (std::mem::take(&mut self.out), std::mem::take(&mut self.err))
    }

    /// Closes standard input and waits for the exit status.
    pub fn finish(mut self) -> Option<i32> {
        self.stdin = None;
        wait(&mut self.child, &["(piped)"])
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        // Only does something when a test failed half-way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stream(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 || sender.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    receiver
}

fn wait_for(source: &Receiver<Vec<u8>>, seen: &mut String, text: &str, name: &str) -> String {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some(at) = seen.find(text) {
            let rest = seen.split_off(at + text.len());
            return std::mem::replace(seen, rest);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match source.recv_timeout(left) {
            Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => panic!("{name} never showed {text:?}; it showed {seen:?}"),
        }
    }
}
