//! The interactive shell driven through a pseudo-terminal with real keystrokes: typing,
//! Tab completion, hints, rendered replies, the prompt, the history file, and the
//! listening mode after `SUBSCRIBE` that Ctrl-C leaves for the prompt.

use std::process::Command;

use rexpect::process::WaitStatus;
use rexpect::session::{spawn_with_options, Options, PtySession};

use crate::util::{eventually, numsub, request, temp_dir, Backend, TestServer, KVCLI};

/// Longest wait for any expected output.
const EXPECT_TIMEOUT_MS: u64 = 10_000;

fn expect(p: &mut PtySession, text: &str) {
    if let Err(err) = p.exp_string(text) {
        panic!("waiting for {text:?}: {err}");
    }
}

fn send(p: &mut PtySession, keys: &str) {
    p.send(keys).expect("type");
    p.flush().expect("flush");
}

#[test]
fn interactive_session() {
    let server = TestServer::start();
    let port = server.port;
    let home = temp_dir("pty");
    let history = home.join("history");

    let mut command = Command::new(KVCLI);
    command
        .args(["-p", &port.to_string()])
        .env("TERM", "xterm")
        .env("HOME", &home)
        .env("KVCLI_HISTFILE", &history)
        .env_remove("KVCLI_AUTH");
    let options = Options::new()
        .timeout_ms(Some(EXPECT_TIMEOUT_MS))
        .strip_ansi_escape_codes(true);
    let mut p = spawn_with_options(command, options).expect("kvcli starts in a pty");
    let prompt = format!("127.0.0.1:{port}> ");
    expect(&mut p, &prompt);

    // Tab completes the command name in the case it is typed in; the reply is rendered
    // with redis-cli's escapes.
    send(&mut p, "ech");
    send(&mut p, "\t");
    expect(&mut p, "echo");
    send(&mut p, " \"caf\\xc3\\xa9 \\x41\"\r");
    expect(&mut p, "\"caf\\xc3\\xa9 A\"");
    assert_eq!(p.read_line().expect("end of the reply line"), "");
    expect(&mut p, &prompt);

    // Hints show the arguments still to type, dropping those already typed.
    send(&mut p, "getrange k ");
    expect(&mut p, "getrange k start end");
    send(&mut p, "0 ");
    expect(&mut p, "getrange k 0 end");
    send(&mut p, "\x15"); // Ctrl-U: discard the line.
    send(&mut p, "set k v EX 10 ");
    expect(&mut p, "set k v EX 10 [NX|XX] [GET]");
    send(&mut p, "\r");
    expect(&mut p, "OK");
    expect(&mut p, &prompt);

    // The prompt shows the selected database.
    send(&mut p, "select 2\r");
    expect(&mut p, "OK");
    expect(&mut p, &format!("127.0.0.1:{port}[2]> "));

    send(&mut p, "auth default secret\r");
    expect(&mut p, "OK");

    // Subcommands complete too.
    send(&mut p, "client inf\t");
    expect(&mut p, "client info");
    send(&mut p, "\r");
    expect(&mut p, " db=2 ");
    expect(&mut p, &format!("127.0.0.1:{port}[2]> "));

    send(&mut p, "set \"unbalanced\r");
    expect(&mut p, "Invalid argument(s)");

    send(&mut p, "quit\r");
    if let Err(err) = p.exp_eof() {
        panic!("kvcli did not exit on quit: {err}");
    }

    let saved = std::fs::read_to_string(&history).expect("history file written");
    assert!(saved.contains("select 2"), "{saved}");
    assert!(saved.contains("client info"), "{saved}");
    assert!(saved.contains("set \"unbalanced"), "{saved}");
    assert!(
        !saved.contains("secret"),
        "AUTH must not be recorded: {saved}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// Runs `line` in the shell and returns the number in its `(integer) N` reply.
fn integer_reply(p: &mut PtySession, line: &str) -> i64 {
    send(p, &format!("{line}\r"));
    match p.exp_regex(r"\(integer\) (\d+)") {
        Ok((_, found)) => found
            .trim_start_matches("(integer) ")
            .parse()
            .expect("a number"),
        Err(err) => panic!("{line}: {err}"),
    }
}

/// `SUBSCRIBE` typed in the shell listens as redis-cli does; Ctrl-C closes that connection
/// (the server drops the subscription), opens a new one and returns to the prompt.
fn shell_listening(backend: Backend, resp3: bool) {
    let Some(server) = backend.start() else {
        return;
    };
    let port = server.port();
    let home = temp_dir("pty-listen");
    let mut command = Command::new(KVCLI);
    command
        .args(["-p", &port.to_string()])
        .args(resp3.then_some("-3"))
        .env("TERM", "xterm")
        .env("HOME", &home)
        .env("KVCLI_HISTFILE", home.join("history"))
        .env_remove("KVCLI_AUTH");
    let options = Options::new()
        .timeout_ms(Some(EXPECT_TIMEOUT_MS))
        .strip_ansi_escape_codes(true);
    let mut p = spawn_with_options(command, options).expect("kvcli starts in a pty");
    let prompt = format!("127.0.0.1:{port}> ");
    expect(&mut p, &prompt);
    let first_id = integer_reply(&mut p, "client id");
    expect(&mut p, &prompt);

    send(&mut p, "subscribe ch other\r");
    expect(&mut p, "Reading messages... (press Ctrl-C to quit)\r\n");
    expect(
        &mut p,
        "1) \"subscribe\"\r\n2) \"ch\"\r\n3) (integer) 1\r\n\
         1) \"subscribe\"\r\n2) \"other\"\r\n3) (integer) 2\r\n",
    );
    let published = request(port, &["PUBLISH", "ch", "hi \"there\"\n"]);
    assert_eq!(published, protocol::Frame::Integer(1));
    expect(
        &mut p,
        "1) \"message\"\r\n2) \"ch\"\r\n3) \"hi \\\"there\\\"\\n\"\r\n",
    );

    send(&mut p, "\x03"); // Ctrl-C
    expect(&mut p, &prompt);
    eventually("the subscription is gone", || numsub(port, "ch") == 0);
    let second_id = integer_reply(&mut p, "client id");
    assert_ne!(first_id, second_id, "a new connection after Ctrl-C");
    expect(&mut p, &prompt);
    send(&mut p, "echo still-here\r");
    expect(&mut p, "\"still-here\"");
    expect(&mut p, &prompt);

    // Ctrl-C while another command runs ends kvcli with status 1, as it ends redis-cli.
    send(&mut p, "blpop nolist 0\r");
    eventually("BLPOP blocks", || {
        match request(port, &["INFO", "clients"]) {
            protocol::Frame::Bulk(info) => {
                String::from_utf8_lossy(&info).contains("blocked_clients:1\r\n")
            }
            other => panic!("INFO clients: {other:?}"),
        }
    });
    send(&mut p, "\x03");
    if let Err(err) = p.exp_eof() {
        panic!("kvcli did not exit on Ctrl-C during BLPOP: {err}");
    }
    match p.process().wait() {
        Ok(WaitStatus::Exited(_, 1)) => {}
        other => panic!("Ctrl-C during BLPOP: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn shell_listening_kvserver() {
    shell_listening(Backend::Kvserver, false);
    shell_listening(Backend::Kvserver, true);
}

#[test]
fn shell_listening_redis() {
    shell_listening(Backend::Redis, false);
    shell_listening(Backend::Redis, true);
}
