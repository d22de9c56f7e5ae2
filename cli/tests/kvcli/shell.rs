//! The shell reading commands from standard input that is not a terminal
//! (`kvcli < commands.txt`), and how it keeps the connection's state across reconnections.

use crate::util::{Piped, TestServer};

#[test]
fn runs_lines_from_stdin() {
    let server = TestServer::start();
    let input = b"set a \"one\\ttwo\"\n\
                  get a\n\
                  set b \"unbalanced\n\
                  \n\
                  2 incr n\r\n\
                  select 1\n\
                  get a\n\
                  help ttl\n\
                  quit\n\
                  get never\n";
    let run = server.kvcli(&[], input);
    assert_eq!(run.code, Some(0), "{}", run.err());
    assert_eq!(
        run.out(),
        "OK\none\ttwo\nInvalid argument(s)\n1\n2\nOK\n\n\
         \n  TTL key\n  summary: Seconds left before a key expires\n  since: 1.0.0\n  group: generic\n\n"
    );
    assert_eq!(run.err(), "");
}

#[test]
fn formatted_output_on_request() {
    let server = TestServer::start();
    let run = server.kvcli(
        &["--no-raw"],
        b"nosuch l a\nmset k v\nmget k nope\nexists k\n",
    );
    assert_eq!(
        run.out(),
        "(error) ERR unknown command 'nosuch', with args beginning with: 'l' 'a' \nOK\n1) \"v\"\n2) (nil)\n(integer) 1\n"
    );
}

#[test]
fn reconnects_in_the_same_state_after_quit() {
    let server = TestServer::start();
    // `1 quit` sends QUIT to the server (a bare `quit` leaves the shell), which closes the
    // connection; the next command reconnects on database 2, in RESP3, authenticated.
    let input = b"select 2\n\
                  hello 3 auth default secret\n\
                  set k v\n\
                  1 quit\n\
                  get k\n\
                  client info\n";
    let run = server.kvcli(&["--raw"], input);
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.err(),
        format!("Reconnected to 127.0.0.1:{}.\n", server.port)
    );
    let out = run.out();
    let lines: Vec<&str> = out.lines().collect();
    // select, hello (a map: 7 key-value lines), set, quit, then get and client info.
    assert_eq!(lines[0], "OK");
    assert_eq!(lines[1], "server redis");
    assert_eq!(&lines[8..11], ["OK", "OK", "v"]);
    let info = lines[11];
    assert!(
        info.contains(" db=2 ") && info.contains(" resp=3 "),
        "{info}"
    );
    assert!(!out.contains("secret") && !run.err().contains("secret"));
}

#[test]
fn notices_a_connection_dropped_while_idle() {
    let mut server = TestServer::start();
    let mut shell = Piped::spawn(&["-p", &server.port.to_string(), "--no-raw"]);
    shell.send_line("select 3");
    assert_eq!(shell.expect_out("OK\n"), "OK\n");
    shell.send_line("set k v");
    assert_eq!(shell.expect_out("OK\n"), "OK\n");

    // The server goes away and comes back (empty) while the shell is idle.
    server.restart();
    shell.send_line("client info");
    let port = server.port;
    assert_eq!(
        shell.expect_err("reconnected.\n"),
        format!("Connection to 127.0.0.1:{port} was lost; reconnected.\n")
    );
    let info = shell.expect_out("\n");
    assert!(
        info.contains(" db=3 ") && info.contains(" cmd=client|info "),
        "{info}"
    );
    shell.send_line("dbsize");
    assert_eq!(shell.expect_out("\n"), "(integer) 0\n");

    // Down for good: the next command says so, and the one after tries again.
    drop(server);
    shell.send_line("ping");
    assert_eq!(
        shell.expect_err("\n"),
        format!("Could not connect to 127.0.0.1:{port}: Connection refused\n")
    );
    shell.send_line("quit");
    assert_eq!(shell.finish(), Some(0));
}

#[test]
fn shutdown_is_not_an_error() {
    let server = TestServer::start();
    let run = server.kvcli(&["SHUTDOWN", "NOSAVE"], b"");
    assert_eq!(
        (run.code, run.out(), run.err()),
        (Some(0), String::new(), String::new())
    );
}
