//! A connection storm against the `kvserver` binary (issue 21): a client opens a few
//! thousand connections one after another, as fast as it can, as an application restarting
//! its workers does. Every connection must be served, and the kernel must never find the
//! server's accept queue full (a full queue drops the SYN and the client waits a second for
//! its retransmission). Then `maxclients` refuses with Redis's error past the limit, and a
//! freed slot is taken again.
//!
//! A test target of its own (server/Cargo.toml), so that it runs alone: the overflow counter
//! is machine-wide, and the end-to-end tests running beside it would be noise. The server is
//! a separate process, so that the test's own sockets do not share its descriptor table.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Connections in the burst, if the descriptor limit allows (it needs one per connection in
/// this process).
const BURST: usize = 3000;
/// Room left under `maxclients` after the burst, to fill up one by one.
const SPARE: usize = 5;

/// The server process, killed when the test ends.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `maxclients` and waits until it accepts.
fn start_server(maxclients: usize) -> Server {
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_kvserver"))
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--loglevel",
                "warning",
            ])
            .args(["--maxclients", &maxclients.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kvserver");
        let mut server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut probe) = TcpStream::connect(("127.0.0.1", port)) {
                if command(&mut probe, "PING") == "+PONG\r\n" {
                    return server;
                }
            }
            if server.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Probably lost the port to another process between choosing and binding it.
        let _ = server.child.kill();
    }
    panic!("kvserver did not start");
}

/// Sends an inline command and returns the reply's first line (with its CRLF).
fn command(stream: &mut TcpStream, line: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .expect("send");
    read_line(stream)
}

fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => break,
            Err(err) => panic!("reading a reply: {err} (so far {line:?})"),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Connects and expects Redis's error for a client past `maxclients`, then the close.
fn expect_refused(port: u16) {
    let mut refused = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    assert_eq!(
        read_line(&mut refused),
        "-ERR max number of clients reached\r\n"
    );
    let mut rest = Vec::new();
    assert_eq!(
        refused.read_to_end(&mut rest).expect("read to the close"),
        0
    );
}

/// The kernel's count of connections dropped because an accept queue was full
/// (TcpExt ListenOverflows), machine-wide.
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").expect("/proc/net/netstat");
    let lines: Vec<&str> = netstat.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let column = names
            .split_whitespace()
            .position(|name| name == "ListenOverflows")
            .expect("a ListenOverflows column");
        return values
            .split_whitespace()
            .nth(column)
            .and_then(|value| value.parse().ok())
            .expect("a ListenOverflows count");
    }
    panic!("no TcpExt line in /proc/net/netstat");
}

/// How many connections this process can hold: its descriptor limit, raised to the hard
/// limit, less some for everything else.
fn connections_we_can_open() -> usize {
    let limit = kvserver::descriptors::fit_open_files_limit(BURST * 2);
    limit.saturating_sub(100)
}

#[test]
fn a_burst_of_connections_is_served_without_overflowing_the_accept_queue() {
    let burst = BURST.min(connections_we_can_open());
    assert!(
        burst > 1000,
        "this machine allows only {burst} open files: raise `ulimit -Hn` for this test"
    );
    let server = start_server(burst + SPARE);
    // The server grew its descriptor table for every client it may take: growing it under
    // a burst stalls accept4 for an RCU grace period per doubling (see `descriptors`).
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("the server's /proc status");
    let table: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("FDSize:"))
        .and_then(|size| size.trim().parse().ok())
        .expect("FDSize");
    assert!(
        table >= burst + SPARE + 32,
        "descriptor table of {table} slots for {} clients",
        burst + SPARE
    );
    let overflows_before = listen_overflows();
    let started = Instant::now();
    let mut clients = Vec::with_capacity(burst);
    for _ in 0..burst {
        clients.push(TcpStream::connect(("127.0.0.1", server.port)).expect("connect"));
    }
    let connected_in = started.elapsed();
    // Every one is served: each answers a PING (all sent, then all read).
    for client in &mut clients {
        client.write_all(b"PING\r\n").expect("send PING");
    }
    for client in &mut clients {
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        assert_eq!(read_line(client), "+PONG\r\n");
    }
    let overflows = listen_overflows() - overflows_before;
    eprintln!("{burst} connections in {connected_in:?}; accept-queue overflows: {overflows}");
    assert_eq!(
        overflows, 0,
        "the accept queue overflowed {overflows} times during a burst of {burst} connects \
         (each one costs a client a second)"
    );

    // Up to maxclients (the probe connection of start-up is gone), then Redis's error.
    let mut spare = Vec::new();
    for _ in 0..SPARE {
        let mut client = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        assert_eq!(command(&mut client, "PING"), "+PONG\r\n");
        spare.push(client);
    }
    expect_refused(server.port);

    // Freed slots are taken again.
    let mut counter = spare.pop().expect("a spare connection");
    drop(clients.drain(..10));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = command(&mut counter, "INFO clients");
        let length: usize = info
            .trim_start_matches('$')
            .trim_end()
            .parse()
            .expect("bulk length");
        let mut body = vec![0u8; length + 2];
        counter.read_exact(&mut body).expect("INFO body");
        let body = String::from_utf8_lossy(&body);
        let connected = body
            .lines()
            .find_map(|line| line.strip_prefix("connected_clients:"))
            .and_then(|count| count.trim().parse::<usize>().ok())
            .expect("connected_clients");
        if connected == burst + SPARE - 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {connected} clients connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..10 {
        let mut client = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        assert_eq!(command(&mut client, "PING"), "+PONG\r\n");
        spare.push(client);
    }
    expect_refused(server.port);
}
