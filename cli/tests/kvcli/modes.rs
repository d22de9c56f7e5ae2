//! `--pipe` and `--scan`.

use crate::util::TestServer;

const PIPE_DONE: &str =
    "All data transferred. Waiting for the last reply...\nLast reply received from server.\n";

#[test]
fn pipe_sends_resp_and_inline_commands() {
    let server = TestServer::start();
    let input = b"SET a 1\r\n\
                  *3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n\
                  INCR a\n\
                  NOPE\r\n\
                  SET c \"x y\"";
    let run = server.kvcli(&["--pipe"], input);
    assert_eq!(run.out(), format!("{PIPE_DONE}errors: 1, replies: 5\n"));
    assert_eq!(
        run.err(),
        "ERR unknown command 'NOPE', with args beginning with: \n"
    );
    assert_eq!(run.code, Some(1));
    assert_eq!(server.cmd(&["MGET", "a", "b", "c"]), "2\n2\nx y\n");
}

#[test]
fn pipe_loads_many_keys_into_the_selected_database() {
    let server = TestServer::start();
    let mut input = Vec::new();
    for i in 0..20_000 {
        input.extend_from_slice(format!("SET key:{i} value:{i}\r\n").as_bytes());
    }
    let run = server.kvcli(&["-n", "3", "--pipe"], &input);
    assert_eq!(
        (run.code, run.out(), run.err()),
        (
            Some(0),
            format!("{PIPE_DONE}errors: 0, replies: 20000\n"),
            String::new()
        )
    );
    assert_eq!(server.cmd(&["-n", "3", "DBSIZE"]), "20000\n");
    assert_eq!(
        server.cmd(&["-n", "3", "GET", "key:19999"]),
        "value:19999\n"
    );
    assert_eq!(server.cmd(&["DBSIZE"]), "0\n");
}

#[test]
fn pipe_with_empty_input() {
    let server = TestServer::start();
    let run = server.kvcli(&["--pipe"], b"");
    assert_eq!(
        (run.code, run.out()),
        (Some(0), format!("{PIPE_DONE}errors: 0, replies: 0\n"))
    );
}

#[test]
fn scan_lists_matching_keys() {
    let server = TestServer::start();
    let mut mset = vec!["MSET", "other:1", "x", "odd \"key\"\n", "x"];
    let names: Vec<String> = (1..=30).map(|i| format!("user:{i}")).collect();
    for name in &names {
        mset.push(name);
        mset.push("v");
    }
    assert_eq!(server.cmd(&mset), "OK\n");

    let run = server.kvcli(&["--scan", "--pattern", "user:*", "--count", "4"], b"");
    assert_eq!(run.code, Some(0), "{}", run.err());
    let mut keys: Vec<String> = run.out().lines().map(str::to_owned).collect();
    keys.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(keys, expected);

    assert_eq!(server.cmd(&["--scan", "--pattern", "other*"]), "other:1\n");
    assert_eq!(
        server.cmd(&["--no-raw", "--scan", "--pattern", "odd*"]),
        "\"odd \\\"key\\\"\\n\"\n"
    );
    assert_eq!(
        server.cmd(&["--scan"]).lines().count(),
        32 + 1,
        "the raw key holds a newline"
    );
    assert_eq!(server.cmd(&["-n", "1", "--scan"]), "");
}
