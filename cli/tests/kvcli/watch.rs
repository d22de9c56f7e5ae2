//! `kvcli watch`: keyspace notifications turned on for the session and restored after,
//! one line per change (time, database, key, event, value or type and size), Ctrl-C and
//! SIGTERM ending it with status 0. Checked against the real redis-server (skipped when it
//! is not installed); the kvserver runs wait for its keyspace notifications (issue 18 §2).

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use protocol::Frame;
use rexpect::process::WaitStatus;
use rexpect::session::{spawn_with_options, Options};

use crate::util::{
    bulk, request, send_signal, simple, temp_dir, Backend, Piped, RedisServer, KVCLI,
};

/// Longest wait for any expected output in the pseudo-terminal.
const EXPECT_TIMEOUT_MS: u64 = 10_000;

/// What `CONFIG GET notify-keyspace-events` says.
fn notify_setting(port: u16) -> String {
    match request(port, &["CONFIG", "GET", "notify-keyspace-events"]) {
        Frame::Array(items) => match items.as_slice() {
            [_, Frame::Bulk(value)] => String::from_utf8_lossy(value).into_owned(),
            other => panic!("CONFIG GET: {other:?}"),
        },
        other => panic!("CONFIG GET: {other:?}"),
    }
}

/// Runs commands on another connection, checking each reply.
fn run_all(port: u16, commands: &[(&[&str], Frame)]) {
    for (argv, expected) in commands {
        assert_eq!(&request(port, argv), expected, "{argv:?}");
    }
}

/// The time stamp that starts every line.
const TIME: &str = r"\d\d:\d\d:\d\d\.\d\d\d";

/// In a terminal: a SET shows the new value, a DEL nothing more, an EXPIRE the value it
/// keeps, a list its size; other keys stay silent. Ctrl-C restores the setting, status 0.
fn watch_in_a_terminal(backend: Backend) {
    let Some(server) = backend.start() else {
        return;
    };
    let port = server.port();
    assert_eq!(notify_setting(port), "", "notifications start off");
    let home = temp_dir("pty-watch");
    let mut command = Command::new(KVCLI);
    command
        .args(["-p", &port.to_string(), "watch", "k*", "other"])
        .env("TERM", "xterm")
        .env("HOME", &home)
        .env("KVCLI_HISTFILE", home.join("history"))
        .env_remove("KVCLI_AUTH");
    let options = Options::new()
        .timeout_ms(Some(EXPECT_TIMEOUT_MS))
        .strip_ansi_escape_codes(true);
    let mut p = spawn_with_options(command, options).expect("kvcli starts in a pty");
    let mut expect = |text: &str| match p.exp_string(text) {
        Ok(before) => before,
        Err(err) => panic!("waiting for {text:?}: {err}"),
    };
    expect("Turned on keyspace notifications for this session");
    expect("Watching \"k*\" \"other\" in database 0 (Ctrl-C to stop).");
    let during = notify_setting(port);
    assert!(
        during.contains('K') && during.contains('A'),
        "keyspace events of every class: {during:?}"
    );

    // One change at a time: the line shows the key as it is when kvcli looks it up, so
    // the next change waits for it.
    let ok = simple("OK");
    let mut seen = String::new();
    for (argv, reply, line) in [
        (&["SET", "nomatch", "1"][..], ok.clone(), None),
        (
            &["SET", "k1", "hello \"world\"\n"],
            ok.clone(),
            Some(r#"db0 "k1" set "hello \\"world\\"\\n""#),
        ),
        (&["DEL", "k1"], Frame::Integer(1), Some(r#"db0 "k1" del"#)),
        (&["SET", "k2", "v"], ok.clone(), Some(r#"db0 "k2" set "v""#)),
        (
            &["EXPIRE", "k2", "100"],
            Frame::Integer(1),
            Some(r#"db0 "k2" expire "v""#),
        ),
        (
            &["RPUSH", "klist", "a", "b", "c"],
            Frame::Integer(3),
            Some(r#"db0 "klist" rpush list \(3 elements\)"#),
        ),
        (
            &["SET", "other", "x"],
            ok.clone(),
            Some(r#"db0 "other" set "x""#),
        ),
    ] {
        assert_eq!(request(port, argv), reply, "{argv:?}");
        let Some(line) = line else { continue };
        let pattern = format!(r"{TIME} {line}\r\n");
        match p.exp_regex(&pattern) {
            Ok((before, found)) => {
                assert!(
                    before.trim().is_empty(),
                    "unexpected output before {found:?}: {before:?}"
                );
                seen.push_str(&before);
                seen.push_str(&found);
            }
            Err(err) => panic!("waiting for {pattern:?}: {err}; seen so far {seen:?}"),
        }
    }
    assert!(!seen.contains("nomatch"), "{seen}");

    p.send_control('c').expect("Ctrl-C");
    if let Err(err) = p.exp_string("Restored notify-keyspace-events to \"\".") {
        panic!("the setting was not restored: {err}");
    }
    if let Err(err) = p.exp_eof() {
        panic!("kvcli watch did not end on Ctrl-C: {err}");
    }
    match p.process().wait() {
        Ok(WaitStatus::Exited(_, 0)) => {}
        other => panic!("kvcli watch ended with {other:?}"),
    }
    assert_eq!(notify_setting(port), "");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn watch_in_a_terminal_redis() {
    watch_in_a_terminal(Backend::Redis);
}

#[test]
fn watch_in_a_terminal_kvserver() {
    watch_in_a_terminal(Backend::Kvserver);
}

/// `-n 3`: only that database's keys; a setting that already had other flags gets them
/// back on SIGTERM, which also ends the watch with status 0.
fn watch_a_database_and_restore_on_sigterm(backend: Backend) {
    let Some(server) = backend.start() else {
        return;
    };
    let port = server.port();
    run_all(
        port,
        &[(
            &["CONFIG", "SET", "notify-keyspace-events", "Ex"],
            simple("OK"),
        )],
    );
    let before = notify_setting(port);
    let mut kvcli = Piped::spawn(&["-p", &port.to_string(), "-n", "3", "watch", "counter"]);
    kvcli.expect_err("Watching \"counter\" in database 3 (Ctrl-C to stop).\n");
    // Database 0's counter is not watched; database 3's is.
    run_all(port, &[(&["INCR", "counter"], Frame::Integer(1))]);
    let run = crate::util::kvcli(
        &[
            "-p",
            &port.to_string(),
            "-n",
            "3",
            "INCRBY",
            "counter",
            "41",
        ],
        b"",
    );
    assert_eq!((run.code, run.out()), (Some(0), "41\n".to_owned()));
    let line = kvcli.expect_out("\n");
    assert!(
        regex_lite(&line, "db3 \"counter\" incrby \"41\"\n"),
        "{line:?}"
    );
    let status = kvcli.signal_and_wait("TERM");
    assert_eq!(
        (status.code(), status.signal()),
        (Some(0), None),
        "{status}"
    );
    let (out, err) = kvcli.rest();
    assert_eq!(out, "", "database 0's INCR is not shown");
    assert_eq!(
        err,
        format!("Restored notify-keyspace-events to \"{before}\".\n")
    );
    assert_eq!(notify_setting(port), before);
}

/// Whether `line` is a time stamp, a space and `rest`.
fn regex_lite(line: &str, rest: &str) -> bool {
    let (time, tail) = line.split_at(line.len().min(13));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    time.len() == 13
        && digits(&time[0..2])
        && &time[2..3] == ":"
        && digits(&time[3..5])
        && &time[5..6] == ":"
        && digits(&time[6..8])
        && &time[8..9] == "."
        && digits(&time[9..12])
        && &time[12..13] == " "
        && tail == rest
}

#[test]
fn watch_a_database_and_restore_on_sigterm_redis() {
    watch_a_database_and_restore_on_sigterm(Backend::Redis);
}

#[test]
fn watch_a_database_and_restore_on_sigterm_kvserver() {
    watch_a_database_and_restore_on_sigterm(Backend::Kvserver);
}

/// A user who may not change the configuration is told how to enable notifications; the
/// watch goes on, and shows changes once an administrator has turned them on. Nothing is
/// restored at the end: kvcli changed nothing. (ACL users: Redis only for now.)
#[test]
fn refused_config_set_is_explained_redis() {
    let Some(server) = Backend::Redis.start() else {
        return;
    };
    let port = server.port();
    run_all(
        port,
        &[(
            &[
                "ACL",
                "SETUSER",
                "watcher",
                "on",
                ">pw",
                "~*",
                "&*",
                "+@all",
                "-config|set",
            ],
            simple("OK"),
        )],
    );
    let mut kvcli = Piped::spawn(&[
        "-p",
        &port.to_string(),
        "--user",
        "watcher",
        "-a",
        "pw",
        "--no-auth-warning",
        "watch",
        "k",
    ]);
    let notice = kvcli.expect_err("Watching \"k\" in database 0 (Ctrl-C to stop).\n");
    assert!(
        notice.starts_with(
            "Keyspace notifications are off (notify-keyspace-events is \"\") and the server \
             refused to turn them on: NOPERM"
        ),
        "{notice}"
    );
    assert!(
        notice.contains("Ask an administrator to run: CONFIG SET notify-keyspace-events KA\n"),
        "{notice}"
    );
    assert_eq!(notify_setting(port), "");
    run_all(
        port,
        &[
            (&["SET", "k", "before"], simple("OK")),
            (
                &["CONFIG", "SET", "notify-keyspace-events", "KA"],
                simple("OK"),
            ),
            (&["APPEND", "k", "-after"], Frame::Integer(12)),
        ],
    );
    let line = kvcli.expect_out("\n");
    assert!(
        regex_lite(&line, "db0 \"k\" append \"before-after\"\n"),
        "{line:?}"
    );
    let status = kvcli.signal_and_wait("INT");
    assert_eq!(status.code(), Some(0), "{status}");
    let (out, err) = kvcli.rest();
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    assert_eq!(
        notify_setting(port),
        "AK",
        "left as the administrator set it"
    );
    assert_eq!(request(port, &["GET", "k"]), bulk("before-after"));
}

/// A server that stops answering while the setting is restored: a further Ctrl-C gives
/// up, says the setting was not restored, and the status is 1.
#[test]
fn ctrl_c_again_gives_up_on_a_frozen_server_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let port = server.port;
    let mut kvcli = Piped::spawn(&["-p", &port.to_string(), "watch", "k"]);
    kvcli.expect_err("Watching \"k\" in database 0 (Ctrl-C to stop).\n");
    send_signal(server.pid(), "STOP");
    let status = kvcli.signal_until_done("INT");
    send_signal(server.pid(), "CONT");
    assert_eq!(status.code(), Some(1), "{status}");
    let (out, err) = kvcli.rest();
    assert_eq!(out, "");
    assert_eq!(
        err,
        "Could not restore notify-keyspace-events to \"\": Error: Server closed the connection\n"
    );
    assert_eq!(notify_setting(port), "AK", "left on: kvcli said so");
}

/// No pattern: a usage message and status 1, before connecting anywhere.
#[test]
fn watch_needs_a_pattern() {
    let run = crate::util::kvcli(&["-p", "1", "watch"], b"");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.err(),
        "Usage: kvcli [OPTIONS] watch KEY|PATTERN [KEY|PATTERN ...]\n"
    );
}
