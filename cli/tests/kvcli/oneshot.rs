//! One-shot mode: `kvcli [flags] CMD ARGS...`.

use crate::util::{closed_port, kvcli, TestServer};

#[test]
fn formatted_replies() {
    let server = TestServer::start();
    let tty = |args: &[&str]| {
        let mut all = vec!["--no-raw"];
        all.extend_from_slice(args);
        let run = server.kvcli(&all, b"");
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.err());
        run.out()
    };
    assert_eq!(tty(&["SET", "greeting", "hello\tworld"]), "OK\n");
    assert_eq!(tty(&["GET", "greeting"]), "\"hello\\tworld\"\n");
    assert_eq!(tty(&["GET", "missing"]), "(nil)\n");
    assert_eq!(tty(&["INCR", "counter"]), "(integer) 1\n");
    assert_eq!(tty(&["SET", "bin", "a\u{1}\"b\\"]), "OK\n");
    assert_eq!(tty(&["GET", "bin"]), "\"a\\x01\\\"b\\\\\"\n");
    assert_eq!(
        tty(&["MGET", "greeting", "missing"]),
        "1) \"hello\\tworld\"\n2) (nil)\n"
    );
    assert_eq!(tty(&["KEYS", "nothing*"]), "(empty array)\n");
    assert_eq!(
        tty(&["SCAN", "0", "MATCH", "nothing*"]),
        "1) \"0\"\n2) (empty array)\n"
    );
    assert_eq!(
        tty(&["-3", "CONFIG", "GET", "maxclients"]),
        "1# \"maxclients\" => \"10000\"\n"
    );
    assert_eq!(
        tty(&["CONFIG", "GET", "maxclients"]),
        "1) \"maxclients\"\n2) \"10000\"\n"
    );
}

#[test]
fn raw_replies_are_the_default_off_a_terminal() {
    let server = TestServer::start();
    assert_eq!(server.cmd(&["MSET", "a", "1", "b", "two words"]), "OK\n");
    assert_eq!(
        server.cmd(&["MGET", "a", "missing", "b"]),
        "1\n\ntwo words\n"
    );
    assert_eq!(server.cmd(&["GET", "missing"]), "\n");
    assert_eq!(server.cmd(&["INCR", "a"]), "2\n");
    assert_eq!(
        server.cmd(&["--raw", "-3", "CONFIG", "GET", "maxclients"]),
        "maxclients 10000\n"
    );
    assert_eq!(server.cmd(&["-d", ",", "MGET", "a", "b"]), "2,two words\n");
    assert_eq!(server.cmd(&["-D", ";", "GET", "a"]), "2;");
}

#[test]
fn error_replies_exit_zero_unless_dash_e() {
    let server = TestServer::start();
    let message = "ERR unknown command 'NOPE', with args beginning with: 'x' ";

    let raw = server.kvcli(&["NOPE", "x"], b"");
    assert_eq!(
        (raw.code, raw.out(), raw.err()),
        (Some(0), format!("{message}\n\n"), String::new())
    );

    let tty = server.kvcli(&["--no-raw", "NOPE", "x"], b"");
    assert_eq!(
        (tty.code, tty.out()),
        (Some(0), format!("(error) {message}\n"))
    );

    let strict = server.kvcli(&["-e", "NOPE", "x"], b"");
    assert_eq!(
        (strict.code, strict.out(), strict.err()),
        (Some(1), String::new(), format!("{message}\n"))
    );
    let fine = server.kvcli(&["-e", "PING"], b"");
    assert_eq!((fine.code, fine.out()), (Some(0), "PONG\n".to_owned()));
}

#[test]
fn connection_refused() {
    let port = closed_port().to_string();
    let expected = format!("Could not connect to 127.0.0.1:{port}: Connection refused\n");
    for args in [
        vec!["-p", &port, "PING"],
        vec!["-p", &port, "--pipe"],
        vec!["-p", &port, "--scan"],
    ] {
        let run = kvcli(&args, b"");
        assert_eq!(
            (run.code, run.out(), run.err()),
            (Some(1), String::new(), expected.clone()),
            "{args:?}"
        );
    }
    let uri = format!("redis://127.0.0.1:{port}/0");
    let run = kvcli(&["-u", &uri, "PING"], b"");
    assert_eq!((run.code, run.err()), (Some(1), expected));
}

#[test]
fn database_selection() {
    let server = TestServer::start();
    assert_eq!(server.cmd(&["-n", "2", "SET", "k", "in two"]), "OK\n");
    assert_eq!(server.cmd(&["GET", "k"]), "\n");
    assert_eq!(server.cmd(&["-n", "2", "GET", "k"]), "in two\n");
    let uri = format!("redis://127.0.0.1:{}/2", server.port);
    assert_eq!(server.cmd(&["-u", &uri, "GET", "k"]), "in two\n");
    // The connection really is on database 2.
    assert!(server
        .cmd(&["-n", "2", "CLIENT", "INFO"])
        .contains(" db=2 "));

    let bad = server.kvcli(&["-n", "99", "PING"], b"");
    assert_eq!(
        (bad.code, bad.out(), bad.err()),
        (
            Some(1),
            String::new(),
            "SELECT 99 failed: ERR DB index is out of range\n".to_owned()
        )
    );
}

#[test]
fn last_argument_from_stdin() {
    let server = TestServer::start();
    let run = server.kvcli(&["-x", "SET", "file"], b"line 1\nline 2\n\x00end");
    assert_eq!((run.code, run.out()), (Some(0), "OK\n".to_owned()));
    let value = server.kvcli(&["--no-raw", "GET", "file"], b"");
    assert_eq!(value.out(), "\"line 1\\nline 2\\n\\x00end\"\n");
}

#[test]
fn repeat_and_interval() {
    let server = TestServer::start();
    assert_eq!(server.cmd(&["-r", "3", "INCR", "n"]), "1\n2\n3\n");
    assert_eq!(
        server.cmd(&["-r", "2", "-i", "0.01", "--no-raw", "INCR", "n"]),
        "(integer) 4\n(integer) 5\n"
    );
}

#[test]
fn authentication() {
    let server = TestServer::start();
    // No password is configured: `AUTH password` fails, `AUTH default anything` succeeds.
    let run = server.kvcli(&["-a", "secret", "PING"], b"");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.err(),
        "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.\n\
         AUTH failed: ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\n"
    );
    assert!(!run.err().contains("secret"));

    let run = server.kvcli(
        &[
            "--user",
            "default",
            "-a",
            "secret",
            "--no-auth-warning",
            "PING",
        ],
        b"",
    );
    assert_eq!(
        (run.code, run.out(), run.err()),
        (Some(0), "PONG\n".to_owned(), String::new())
    );

    let uri = format!("redis://default:secret@127.0.0.1:{}/0", server.port);
    let run = server.kvcli(&["-u", &uri, "--no-auth-warning", "PING"], b"");
    assert_eq!((run.code, run.out()), (Some(0), "PONG\n".to_owned()));

    let wrong = server.kvcli(
        &["--user", "alice", "-a", "pw", "--no-auth-warning", "PING"],
        b"",
    );
    assert_eq!(wrong.code, Some(1));
    assert_eq!(
        wrong.err(),
        "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\n"
    );
}

#[test]
fn help_without_connecting() {
    let expected = "\n  GET key\n  summary: Read the string stored at a key\n  since: 1.0.0\n  group: string\n\n";
    let run = kvcli(&["-p", &closed_port().to_string(), "help", "get"], b"");
    assert_eq!((run.code, run.out()), (Some(0), expected.to_owned()));
    let server = TestServer::start();
    assert_eq!(server.cmd(&["HELP", "GET"]), expected);
}

#[test]
fn usage_errors() {
    let run = kvcli(&["-p", "notaport"], b"");
    assert_eq!(run.code, Some(2));
    assert!(
        run.err().contains("invalid value 'notaport'"),
        "{}",
        run.err()
    );
    let run = kvcli(&["-u", "http://localhost"], b"");
    assert_eq!(
        (run.code, run.err()),
        (Some(1), "Invalid URI scheme\n".to_owned())
    );
    let run = kvcli(&["--help"], b"");
    assert_eq!(run.code, Some(0));
    assert!(run.out().contains("-h <HOSTNAME>"), "{}", run.out());
}
