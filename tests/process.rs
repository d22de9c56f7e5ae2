//! Tests across a process boundary: the real `kvserver` binary (flags, SIGTERM, SHUTDOWN) and
//! real Redis tools (redis-cli, redis-benchmark) against an in-process server. The binary is
//! the one cargo built for this run (see `kvserver_binary`); a test that needs an external
//! tool (`kill`, redis-cli, redis-benchmark) prints a notice and returns early without it.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::*;

/// Longest a child process may take.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// A spawned kvserver and the port it serves on, killed if the test fails.
struct Spawned {
    guard: ChildGuard,
    port: u16,
}

/// Starts the binary with `args` on a free port and waits (bounded) until it accepts.
async fn spawn_kvserver(binary: &PathBuf, args: &[&str]) -> (Spawned, Raw) {
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--loglevel",
                "warning",
                "--save",
                "",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kvserver");
        let mut guard = ChildGuard { child };
        if let Some(stream) = connect_with_retry(port, Duration::from_secs(20)).await {
            return (Spawned { guard, port }, Raw::from_stream(stream));
        }
        // Probably lost the port to another process between choosing and binding it.
        let _ = guard.child.kill();
    }
    panic!("kvserver did not start");
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

#[tokio::test]
async fn sigterm_stops_the_binary_gracefully() {
    let binary = kvserver_binary();
    if require_tool("kill").is_none() {
        return;
    }
    let (mut server, mut c) = spawn_kvserver(&binary, &[]).await;
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v"));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "port"]).await,
        bulks(&["port", &server.port.to_string()])
    );
    send_signal(server.guard.child.id(), "-TERM");
    // The idle client is closed, and the process exits with status 0.
    c.expect_closed().await;
    let status = wait_child(&mut server.guard.child, CHILD_LIMIT);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn sigint_also_stops_it() {
    let binary = kvserver_binary();
    if require_tool("kill").is_none() {
        return;
    }
    let (mut server, mut c) = spawn_kvserver(&binary, &[]).await;
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
    send_signal(server.guard.child.id(), "-INT");
    c.expect_closed().await;
    let status = wait_child(&mut server.guard.child, CHILD_LIMIT);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn shutdown_nosave_stops_the_binary() {
    let binary = kvserver_binary();
    let (mut server, mut c) = spawn_kvserver(&binary, &[]).await;
    let mut other = Raw::connect(([127, 0, 0, 1], server.port).into()).await;
    assert_eq!(other.cmd(&["PING"]).await, simple("PONG"));
    c.send(&encode(&["SHUTDOWN", "NOSAVE"])).await;
    c.expect_closed().await;
    other.expect_closed().await;
    let status = wait_child(&mut server.guard.child, CHILD_LIMIT);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// `kvserver FILE [flags]`: the file's directives apply, flags on the command line win, and
/// `tcp-backlog` reaches the listening socket.
#[tokio::test]
async fn a_config_file_comes_first_and_flags_override_it() {
    let binary = kvserver_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("kvstore.conf");
    std::fs::write(
        &conf,
        "# kvstore.conf\ntcp-backlog 128\nmaxclients 77\nsave \"\"\n\
         user alice on >secret ~app:* +@read\nloglevel warning\n",
    )
    .expect("write the config file");
    let port = free_port();
    let child = Command::new(&binary)
        .arg(&conf)
        .args(["--port", &port.to_string(), "--maxclients", "88"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kvserver");
    let _guard = ChildGuard { child };
    let stream = connect_with_retry(port, Duration::from_secs(20))
        .await
        .expect("kvserver started with a config file");
    let mut c = Raw::from_stream(stream);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "tcp-backlog"]).await,
        bulks(&["tcp-backlog", "128"])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxclients"]).await,
        bulks(&["maxclients", "88"])
    );
    assert_eq!(
        c.cmd(&["ACL", "USERS"]).await,
        Frame::Array(vec![bulk("alice"), bulk("default")])
    );
    // The kernel's view of the listening socket: `ss` shows its backlog as Send-Q.
    match Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let send_q = text.split_whitespace().nth(2).unwrap_or_default();
            assert_eq!(send_q, "128", "ss: {text}");
        }
        _ => eprintln!("`ss` (iproute2) is not installed: the listen backlog is not checked"),
    }

    // A bad line stops the start, naming it.
    std::fs::write(&conf, "port 1\nno-such-directive yes\n").expect("rewrite");
    let out = Command::new(&binary)
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .expect("run kvserver");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("at line 2") && stderr.contains("no-such-directive"),
        "{stderr}"
    );
}

#[tokio::test]
async fn binary_flags() {
    let binary = kvserver_binary();
    let version = run(Command::new(&binary).arg("--version"));
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("kvserver {}", env!("CARGO_PKG_VERSION"))
    );
    let help = run(Command::new(&binary).arg("--help"));
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--port",
        "--bind",
        "--maxclients",
        "--databases",
        "--loglevel",
        "--proto-max-bulk-len",
        "--hz",
        "--threads",
        "--idle-poll-us",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let bad = run(Command::new(&binary).arg("--no-such-flag"));
    assert_eq!(bad.status.code(), Some(2), "clap's usage error status");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--no-such-flag"));
    let bad = run(Command::new(&binary).args(["--databases", "0"]));
    assert!(!bad.status.success());
    let bad = run(Command::new(&binary).args(["--idle-poll-us", "10001"]));
    assert!(!bad.status.success(), "idle polling is bounded to 10 ms");

    // The flags take effect.
    let args = [
        "--maxclients",
        "1",
        "--databases",
        "4",
        "--hz",
        "50",
        "--proto-max-bulk-len",
        "2048",
        // Polling off and more connection threads than cores: the server works the same.
        "--idle-poll-us",
        "0",
        "--threads",
        "3",
    ];
    let (mut server, mut c) = spawn_kvserver(&binary, &args).await;
    let config = c
        .cmd(&[
            "CONFIG",
            "GET",
            "maxclients",
            "databases",
            "hz",
            "proto-max-bulk-len",
            "loglevel",
        ])
        .await;
    assert_eq!(
        config,
        bulks(&[
            "databases",
            "4",
            "maxclients",
            "1",
            "loglevel",
            "warning",
            "hz",
            "50",
            "proto-max-bulk-len",
            "2048",
        ])
    );
    assert_eq!(c.cmd(&["SELECT", "3"]).await, ok());
    assert_eq!(
        c.cmd(&["SELECT", "4"]).await,
        err("ERR DB index is out of range")
    );
    let mut second = Raw::connect(([127, 0, 0, 1], server.port).into()).await;
    assert_eq!(
        second.read().await,
        err("ERR max number of clients reached")
    );
    c.send(b"*2\r\n$4\r\nECHO\r\n$2049\r\n").await;
    assert_eq!(
        c.read().await,
        err("ERR Protocol error: invalid bulk length")
    );
    c.expect_closed().await;
    let _ = server.guard.child.kill();
    let _ = wait_child(&mut server.guard.child, CHILD_LIMIT);
}

/// Runs a short-lived command to completion (bounded).
fn run(command: &mut Command) -> Output {
    run_with_input(command, &[], CHILD_LIMIT)
}

/// Runs a tool against the in-process server without blocking its runtime.
async fn run_tool(mut command: Command, input: Vec<u8>) -> Output {
    tokio::task::spawn_blocking(move || run_with_input(&mut command, &input, CHILD_LIMIT))
        .await
        .expect("tool thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_talks_to_the_server() {
    let Some(cli) = require_tool("redis-cli") else {
        return;
    };
    let server = start_server().await;
    let port = server.addr().port().to_string();
    let cli_run = |args: &[&str]| {
        let mut command = Command::new(&cli);
        command.args(["-h", "127.0.0.1", "-p", &port]).args(args);
        run_tool(command, Vec::new())
    };
    let out = cli_run(&["SET", "foo", "bar baz"]).await;
    assert!(out.status.success());
    assert_eq!(out.stdout, b"OK\n");
    assert_eq!(cli_run(&["GET", "foo"]).await.stdout, b"bar baz\n");
    assert_eq!(cli_run(&["INCR", "n"]).await.stdout, b"1\n");
    assert_eq!(
        cli_run(&["MGET", "foo", "nokey"]).await.stdout,
        b"bar baz\n\n"
    );
    assert_eq!(
        cli_run(&["--no-raw", "MGET", "foo", "nokey"]).await.stdout,
        b"1) \"bar baz\"\n2) (nil)\n"
    );
    assert_eq!(
        cli_run(&["--no-raw", "INCR", "n"]).await.stdout,
        b"(integer) 2\n"
    );
    assert_eq!(
        cli_run(&["FOO", "a"]).await.stdout,
        b"ERR unknown command 'FOO', with args beginning with: 'a' \n\n"
    );
    assert_eq!(
        cli_run(&["-n", "2", "--no-raw", "DBSIZE"]).await.stdout,
        b"(integer) 0\n"
    );

    // --pipe sends a RESP stream and checks the replies (and ends with an ECHO of its own).
    let mut pipe = Command::new(&cli);
    pipe.args(["-h", "127.0.0.1", "-p", &port, "--pipe"]);
    let input: Vec<u8> = (0..500)
        .flat_map(|i| encode(&["SET", &format!("piped:{i}"), &i.to_string()]))
        .collect();
    let out = run_tool(pipe, input).await;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("errors: 0, replies: 500"), "{stdout}");
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["GET", "piped:499"]).await, bulk("499"));
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(502));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_benchmark_runs_cleanly() {
    let Some(benchmark) = require_tool("redis-benchmark") else {
        return;
    };
    let server = start_server().await;
    let mut command = Command::new(&benchmark);
    command.args(["-h", "127.0.0.1", "-p", &server.addr().port().to_string()]);
    command.args([
        "-t",
        "ping,set,get,incr,mset",
        "-n",
        "2000",
        "-P",
        "16",
        "-q",
    ]);
    let out = run_tool(command, Vec::new()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Progress lines are separated by \r; the final result of each test ends with \n.
    let results: Vec<&str> = stdout
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|line| line.contains("requests per second"))
        .collect();
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        assert!(
            results
                .iter()
                .any(|line| line.starts_with(&format!("{test}: "))),
            "no result for {test} in {stdout:?}"
        );
    }
    let lower = format!("{stdout}{stderr}").to_lowercase();
    assert!(
        !lower.contains("error") && !lower.contains("err "),
        "{stdout}\n{stderr}"
    );
    // The benchmark really ran its requests against this server.
    let mut c = Raw::connect(server.addr()).await;
    let stats = text_of(&c.cmd(&["INFO", "stats"]).await);
    let processed: u64 = info_field(&stats, "total_commands_processed")
        .expect("total_commands_processed")
        .parse()
        .expect("number");
    assert!(processed >= 6 * 2000, "{processed}");
    assert_eq!(c.cmd(&["GET", "counter:__rand_int__"]).await, bulk("2000"));
}

/// The issue-4 memory requirement, across a process boundary (used memory is process-wide,
/// so in-process servers of parallel tests would blur it): loading keys grows the resident
/// size, deleting them all gives it back within a few seconds, without any other traffic.
#[tokio::test]
async fn resident_memory_follows_a_mass_delete_down() {
    let binary = kvserver_binary();
    let (mut server, mut c) = spawn_kvserver(&binary, &[]).await;
    let rss = |info: &str| -> u64 {
        info_field(info, "used_memory_rss")
            .and_then(|v| v.parse().ok())
            .expect("used_memory_rss")
    };
    let info = text_of(&c.cmd(&["INFO", "memory"]).await);
    let empty = rss(&info);
    if cfg!(not(target_env = "msvc")) {
        assert_eq!(
            info_field(&info, "mem_allocator").as_deref(),
            Some("jemalloc-5.3.0")
        );
    }

    // 200,000 keys with 200-byte values, 100 per MSET / DEL, all pipelined.
    const KEYS: usize = 200_000;
    const PER_COMMAND: usize = 100;
    let value = vec![b'v'; 200];
    let key = |i: usize| format!("key:{i:012}").into_bytes();
    let mut sets = Vec::new();
    let mut dels = Vec::new();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(PER_COMMAND) {
        let mut mset = vec![b"MSET".to_vec()];
        let mut del = vec![b"DEL".to_vec()];
        for &i in chunk {
            mset.extend([key(i), value.clone()]);
            del.push(key(i));
        }
        sets.extend(encode(&mset));
        dels.extend(encode(&del));
    }
    c.send(&sets).await;
    for _ in 0..KEYS / PER_COMMAND {
        assert_eq!(c.read().await, ok());
    }
    let loaded = rss(&text_of(&c.cmd(&["INFO", "memory"]).await));
    assert!(
        loaded > empty + 40_000_000,
        "loading 200k keys of 200 bytes grew RSS from {empty} to only {loaded}"
    );
    c.send(&dels).await;
    for _ in 0..KEYS / PER_COMMAND {
        assert_eq!(c.read().await, int(PER_COMMAND as i64));
    }
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));

    // The server checks about once a second; allow a few seconds on a busy machine.
    let target = empty + (loaded - empty) / 4;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = rss(&text_of(&c.cmd(&["INFO", "memory"]).await));
        if now <= target {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "RSS {now} still above {target} (empty {empty}, loaded {loaded}) after deleting every key"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = server.guard.child.kill();
}
