//! Connection commands (PING, ECHO, HELLO, QUIT, RESET, AUTH, CLIENT ...), command errors,
//! and the maxclients limit.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::util::*;

#[tokio::test]
async fn ping_and_echo() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
    assert_eq!(c.cmd(&["ping", "hello world"]).await, bulk("hello world"));
    assert_eq!(c.cmd(&["PING", ""]).await, bulk(""));
    assert_eq!(c.cmd(&["PING", "a", "b"]).await, arity_err("ping"));
    assert_eq!(c.cmd(&["ECHO", "hi there"]).await, bulk("hi there"));
    assert_eq!(c.cmd(&[&b"ECHO"[..], b"\0\r\n"]).await, bulk(b"\0\r\n"));
    assert_eq!(c.cmd(&["ECHO"]).await, arity_err("echo"));
    assert_eq!(c.cmd(&["ECHO", "a", "b"]).await, arity_err("echo"));
}

/// Each connection remembers the command it ran last (a lookup shortcut): names that share
/// a prefix or differ in case, interleaved, must still each run their own command.
#[tokio::test]
async fn repeated_and_interleaved_command_names() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "1"]).await, ok());
    assert_eq!(c.cmd(&["get", "k"]).await, bulk("1"));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("1"));
    assert_eq!(c.cmd(&["gEt", "k"]).await, bulk("1"));
    assert_eq!(
        c.cmd(&["GE", "k"]).await,
        err("ERR unknown command 'GE', with args beginning with: 'k' ")
    );
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("1"));
    assert_eq!(
        c.cmd(&["GETT", "k"]).await,
        err("ERR unknown command 'GETT', with args beginning with: 'k' ")
    );
    assert_eq!(c.cmd(&["getset", "k", "2"]).await, bulk("1"));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("2"));
    assert_eq!(c.cmd(&["INCR", "k"]).await, int(3));
    assert_eq!(c.cmd(&["incr", "k"]).await, int(4));
    assert_eq!(c.cmd(&["INCRBY", "k", "10"]).await, int(14));
    assert_eq!(c.cmd(&["GET"]).await, arity_err("get"));
    assert_eq!(c.cmd(&["get", "k"]).await, bulk("14"));
}

#[tokio::test]
async fn unknown_commands_and_wrong_arity() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["foo", "a", "b"]).await,
        err("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        c.cmd(&["FOO"]).await,
        err("ERR unknown command 'FOO', with args beginning with: ")
    );
    // Arguments are quoted while the text is under 128 bytes; the last one is cut to the
    // room left before its opening quote (Redis's `'%.*s' ` with `128 - sdslen(args)`).
    let long = "x".repeat(100);
    assert_eq!(
        c.cmd(&["foo", &long, &long, "abc"]).await,
        err(&format!(
            "ERR unknown command 'foo', with args beginning with: '{long}' '{}' ",
            "x".repeat(25)
        ))
    );
    assert_eq!(
        c.cmd(&["foo", "a\r\nb"]).await,
        err("ERR unknown command 'foo', with args beginning with: 'a  b' ")
    );
    assert_eq!(c.cmd(&["get"]).await, arity_err("get"));
    assert_eq!(
        c.cmd(&["GET"]).await,
        arity_err("get"),
        "the name is lowercased"
    );
    assert_eq!(c.cmd(&["SET", "k"]).await, arity_err("set"));
    assert_eq!(c.cmd(&["CLIENT"]).await, arity_err("client"));
    assert_eq!(
        c.cmd(&["CLIENT", "foo"]).await,
        err("ERR unknown subcommand 'foo'. Try CLIENT HELP.")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "GETNAME", "x"]).await,
        arity_err("client|getname")
    );
    assert_eq!(c.cmd(&["CONFIG", "GET"]).await, arity_err("config|get"));
    // The connection is still usable after command errors.
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
}

/// The HELLO reply, as field name -> value, whatever the protocol (map in RESP3, flat array
/// in RESP2).
fn hello_fields(frame: Frame) -> Vec<(String, Frame)> {
    match frame {
        Frame::Map(pairs) => pairs.into_iter().map(|(k, v)| (text_of(&k), v)).collect(),
        Frame::Array(items) => items
            .chunks(2)
            .map(|pair| (text_of(&pair[0]), pair[1].clone()))
            .collect(),
        other => panic!("unexpected HELLO reply {other:?}"),
    }
}

#[tokio::test]
async fn hello_switches_protocol() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let id = int_of(&c.cmd(&["CLIENT", "ID"]).await);

    let reply = c.cmd(&["HELLO", "3"]).await;
    assert!(
        matches!(reply, Frame::Map(_)),
        "HELLO 3 replies with a map: {reply:?}"
    );
    let fields = hello_fields(reply);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["server", "version", "proto", "id", "mode", "role", "modules"]
    );
    assert_eq!(fields[0].1, bulk("redis"));
    assert!(
        text_of(&fields[1].1).starts_with("7."),
        "version {:?}",
        fields[1].1
    );
    assert_eq!(fields[2].1, int(3));
    assert_eq!(fields[3].1, int(id));
    assert_eq!(fields[4].1, bulk("standalone"));
    assert_eq!(fields[5].1, bulk("master"));
    assert_eq!(fields[6].1, Frame::Array(vec![]));

    // RESP3 types on the wire: null is `_`, CONFIG GET a map.
    c.send(&encode(&["GET", "nokey"])).await;
    assert_eq!(c.read_exact_bytes(3).await, b"_\r\n");
    let config = c.cmd(&["CONFIG", "GET", "maxclients"]).await;
    assert_eq!(
        config,
        Frame::Map(vec![(bulk("maxclients"), bulk("10000"))])
    );

    // Back to RESP2.
    let fields = hello_fields(c.cmd(&["HELLO", "2"]).await);
    assert_eq!(fields[2], ("proto".to_owned(), int(2)));
    c.send(&encode(&["GET", "nokey"])).await;
    assert_eq!(c.read_exact_bytes(5).await, b"$-1\r\n");
    // HELLO without a version only reports (protocol unchanged).
    let fields = hello_fields(c.cmd(&["HELLO"]).await);
    assert_eq!(fields[2], ("proto".to_owned(), int(2)));

    assert_eq!(
        c.cmd(&["HELLO", "4"]).await,
        err("NOPROTO unsupported protocol version")
    );
    assert_eq!(
        c.cmd(&["HELLO", "abc"]).await,
        err("ERR Protocol version is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["HELLO", "3", "FOO"]).await,
        err("ERR Syntax error in HELLO option 'FOO'")
    );
    assert_eq!(
        c.cmd(&["HELLO", "3", "SETNAME", "a b"]).await,
        err("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    // A failed HELLO does not switch the protocol.
    c.send(&encode(&["GET", "nokey"])).await;
    assert_eq!(c.read_exact_bytes(5).await, b"$-1\r\n");

    let fields = hello_fields(c.cmd(&["HELLO", "3", "SETNAME", "x"]).await);
    assert_eq!(fields[2].1, int(3));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, bulk("x"));
    let fields = hello_fields(
        c.cmd(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "y"])
            .await,
    );
    assert_eq!(fields[2].1, int(3));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, bulk("y"));
    // An empty name clears it, as CLIENT SETNAME "" does.
    hello_fields(c.cmd(&["HELLO", "3", "SETNAME", ""]).await);
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, nil());
    assert_eq!(
        c.cmd(&["HELLO", "3", "AUTH", "bob", "pw"]).await,
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
}

#[tokio::test]
async fn redis_client_speaks_resp3() {
    let server = start_server().await;
    let client = redis::Client::open(format!("redis://{}/?protocol=resp3", server.addr()))
        .expect("valid URL");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("RESP3 connection (the client sends HELLO 3)");
    let reply: redis::Value = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(&mut con)
        .await
        .expect("CONFIG GET");
    assert_eq!(
        reply,
        redis::Value::Map(vec![(
            redis::Value::BulkString(b"appendonly".to_vec()),
            redis::Value::BulkString(b"no".to_vec())
        )])
    );
    let nothing: redis::Value = redis::cmd("GET")
        .arg("nokey")
        .query_async(&mut con)
        .await
        .expect("GET");
    assert_eq!(nothing, redis::Value::Nil);
    let resp: redis::Value = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut con)
        .await
        .expect("CLIENT INFO");
    let redis::Value::VerbatimString { text, .. } = resp else {
        panic!("CLIENT INFO in RESP3 is a verbatim string, got {resp:?}");
    };
    assert!(text.contains(" resp=3 "), "{text}");
}

#[tokio::test]
async fn quit_replies_then_closes() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    // Commands pipelined after QUIT are not run.
    c.send(b"SET before 1\r\nQUIT\r\nSET after 1\r\n").await;
    assert_eq!(c.read().await, ok());
    assert_eq!(c.read().await, ok());
    c.expect_closed().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["MGET", "before", "after"]).await,
        Frame::Array(vec![bulk("1"), nil()])
    );
    assert_eq!(c.cmd(&["quit", "extra", "args"]).await, ok());
    c.expect_closed().await;
}

#[tokio::test]
async fn reset_restores_defaults() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "db0"]).await, ok());
    assert_eq!(c.cmd(&["SELECT", "3"]).await, ok());
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "named"]).await, ok());
    hello_fields(c.cmd(&["HELLO", "3"]).await);
    let id = c.cmd(&["CLIENT", "ID"]).await;
    assert_eq!(c.cmd(&["RESET"]).await, simple("RESET"));
    assert_eq!(c.cmd(&["CLIENT", "ID"]).await, id, "same connection");
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, nil());
    c.send(&encode(&["GET", "k"])).await;
    assert_eq!(
        c.read_exact_bytes(9).await,
        b"$3\r\ndb0\r\n",
        "back in db 0"
    );
    c.send(&encode(&["GET", "nokey"])).await;
    assert_eq!(c.read_exact_bytes(5).await, b"$-1\r\n", "back to RESP2");
    assert_eq!(c.cmd(&["RESET", "x"]).await, arity_err("reset"));
}

#[tokio::test]
async fn auth_without_a_configured_password() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["AUTH", "secret"]).await,
        err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
    );
    assert_eq!(c.cmd(&["AUTH", "default", "anything"]).await, ok());
    assert_eq!(
        c.cmd(&["AUTH", "bob", "x"]).await,
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(
        c.cmd(&["AUTH", "a", "b", "c"]).await,
        err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["AUTH"]).await, arity_err("auth"));
    assert_eq!(c.cmd(&["PING"]).await, simple("PONG"));
}

/// `key=value` fields of one CLIENT LIST / CLIENT INFO line.
fn client_fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .filter_map(|field| field.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name}= field in {fields:?}"))
}

#[tokio::test]
async fn client_subcommands() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    let id = int_of(&c.cmd(&["CLIENT", "ID"]).await);
    let other_id = int_of(&other.cmd(&["CLIENT", "ID"]).await);
    assert!(id > 0 && other_id > 0 && id != other_id);

    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, nil());
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "worker-1"]).await, ok());
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, bulk("worker-1"));
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "a b"]).await,
        err("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, bulk("worker-1"));
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"]).await,
        ok()
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "lib-ver", "1.2.3"]).await,
        ok()
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "a b"]).await,
        err("ERR LIB-NAME cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "foo", "bar"]).await,
        err("ERR Unrecognized option 'foo'")
    );
    assert_eq!(c.cmd(&["SELECT", "2"]).await, ok());

    let info = text_of(&c.cmd(&["CLIENT", "INFO"]).await);
    assert!(
        info.ends_with('\n') && info.lines().count() == 1,
        "{info:?}"
    );
    let fields = client_fields(info.trim_end());
    assert_eq!(field(&fields, "id"), id.to_string());
    assert_eq!(field(&fields, "name"), "worker-1");
    assert_eq!(field(&fields, "db"), "2");
    assert_eq!(field(&fields, "cmd"), "client|info");
    assert_eq!(field(&fields, "lib-name"), "mylib");
    assert_eq!(field(&fields, "lib-ver"), "1.2.3");
    assert_eq!(field(&fields, "resp"), "2");
    assert_eq!(field(&fields, "laddr"), server.addr().to_string());
    let local = c.stream().local_addr().expect("local addr");
    assert_eq!(field(&fields, "addr"), local.to_string());

    let list = text_of(&c.cmd(&["CLIENT", "LIST"]).await);
    let ids: Vec<String> = list
        .lines()
        .map(|line| field(&client_fields(line), "id").to_owned())
        .collect();
    // Ids follow registration, which happens on the connection threads: the two clients
    // may register in either order, but CLIENT LIST is always in id order.
    let mut expected = [id, other_id];
    expected.sort_unstable();
    assert_eq!(ids, expected.map(|id| id.to_string()));
    let list = text_of(
        &c.cmd(&["CLIENT", "LIST", "ID", &other_id.to_string()])
            .await,
    );
    assert_eq!(list.lines().count(), 1);
    let fields = client_fields(list.lines().next().unwrap_or_default());
    assert_eq!(field(&fields, "name"), "");
    assert_eq!(field(&fields, "cmd"), "client|id");
    let list = text_of(&c.cmd(&["CLIENT", "LIST", "TYPE", "normal"]).await);
    assert_eq!(list.lines().count(), 2);
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "ID", "abc"]).await,
        err("ERR Invalid client ID")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "TYPE", "bogus"]).await,
        err("ERR Unknown client type 'bogus'")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "FOO"]).await,
        err("ERR syntax error")
    );

    // Closed connections leave the list.
    drop(other);
    let mut remaining = 2;
    for _ in 0..500 {
        remaining = text_of(&c.cmd(&["CLIENT", "LIST"]).await).lines().count();
        if remaining == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(remaining, 1);

    assert_eq!(c.cmd(&["CLIENT", "SETNAME", ""]).await, ok());
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, nil());
    let help = array_items(c.cmd(&["CLIENT", "HELP"]).await);
    assert!(text_of(&help[0]).starts_with("CLIENT <subcommand>"));
}

#[tokio::test]
async fn redis_client_library_handshake() {
    // The redis crate sends CLIENT SETINFO on connect; the server must accept it and list it.
    let server = start_server().await;
    let mut con = redis_client(server.addr()).await;
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut con)
        .await
        .expect("CLIENT INFO");
    let fields = client_fields(info.trim_end());
    assert_eq!(field(&fields, "lib-name"), "redis-rs");
    assert!(!field(&fields, "lib-ver").is_empty());
    let pong: String = redis::cmd("PING")
        .query_async(&mut con)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
}

/// IPv6 clients: their entries keep both addresses out of line (an entry holds two IPv4
/// addresses inline), shown and matched as Redis does, and their per-address count comes back.
#[tokio::test]
async fn ipv6_clients_are_listed_killed_and_counted() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let server = start_server_with(|config| {
        config.bind = vec!["::1".into()];
        config.max_connections_per_ip = 2;
    })
    .await;
    let addr = server.addr();
    assert!(addr.is_ipv6(), "{addr}");
    let mut c = Raw::connect(addr).await;
    let info = text_of(&c.cmd(&["CLIENT", "INFO"]).await);
    let fields = client_fields(info.trim_end());
    let local = c.stream().local_addr().expect("local addr");
    assert_eq!(field(&fields, "addr"), local.to_string());
    assert!(field(&fields, "addr").starts_with("[::1]:"), "{info}");
    assert_eq!(field(&fields, "laddr"), addr.to_string());
    // CLIENT KILL ADDR finds the other client by its IPv6 address.
    let mut other = Raw::connect(addr).await;
    assert_eq!(other.cmd(&["PING"]).await, simple("PONG"));
    let other_addr = other.stream().local_addr().expect("local addr").to_string();
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "ADDR", &other_addr]).await,
        int(1)
    );
    other.expect_closed().await;
    // Its place under max-connections-per-ip (2) is given back: a new client is served.
    let mut served = false;
    for _ in 0..100 {
        let mut next = Raw::connect(addr).await;
        next.send(&encode(&["PING"])).await;
        if next.read().await == simple("PONG") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the killed client's place never came back");
}

#[tokio::test]
async fn maxclients_rejects_extra_connections() {
    let server = start_server_with(|config| config.maxclients = 2).await;
    let mut first = Raw::connect(server.addr()).await;
    let mut second = Raw::connect(server.addr()).await;
    assert_eq!(first.cmd(&["PING"]).await, simple("PONG"));
    assert_eq!(second.cmd(&["PING"]).await, simple("PONG"));

    let mut third = Raw::connect(server.addr()).await;
    assert_eq!(third.read().await, err("ERR max number of clients reached"));
    third.expect_closed().await;

    // Once a client leaves, a new one is served.
    drop(first);
    let mut served = false;
    for _ in 0..500 {
        let mut next = Raw::connect(server.addr()).await;
        next.send(&encode(&["PING"])).await;
        match next.try_read().await {
            Some(reply) if reply == simple("PONG") => {
                served = true;
                break;
            }
            // The server has not noticed the close yet (the reset that follows the
            // rejection may even beat the error line).
            Some(reply) => assert_eq!(reply, err("ERR max number of clients reached")),
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "no connection accepted after one closed");
    assert_eq!(second.cmd(&["PING"]).await, simple("PONG"));

    let mut c = second;
    let stats = text_of(&c.cmd(&["INFO", "stats"]).await);
    let rejected: u64 = info_field(&stats, "rejected_connections")
        .expect("rejected_connections")
        .parse()
        .expect("number");
    assert!(rejected >= 1, "{stats}");
    // CONFIG SET maxclients takes effect for the next connection.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxclients", "1"]).await, ok());
    let mut extra = Raw::connect(server.addr()).await;
    assert_eq!(extra.read().await, err("ERR max number of clients reached"));
    let mut rest = [0u8; 1];
    let closed = tokio::time::timeout(REPLY_TIMEOUT, extra.stream().read(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
}

#[tokio::test]
async fn idle_clients_are_closed_after_timeout_but_not_subscribers_or_busy_ones() {
    let server = start_server_with(|config| config.timeout = 1).await;
    let mut idle = Raw::connect(server.addr()).await;
    let mut subscriber = Raw::connect(server.addr()).await;
    let mut busy = Raw::connect(server.addr()).await;
    assert_eq!(
        array_items(subscriber.cmd(&["SUBSCRIBE", "news"]).await).len(),
        3
    );
    assert_eq!(
        busy.cmd(&["CONFIG", "GET", "timeout"]).await,
        bulks(&["timeout", "1"])
    );
    let started = std::time::Instant::now();
    let watcher = tokio::spawn(async move {
        idle.expect_closed().await;
    });
    while !watcher.is_finished() {
        assert_eq!(busy.cmd(&["PING"]).await, simple("PONG"));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    watcher.await.expect("idle client closed");
    assert_eq!(busy.cmd(&["PING"]).await, simple("PONG"));
    subscriber.send(&encode(&["PING"])).await;
    assert_eq!(subscriber.read().await, bulks(&["pong", ""]));
    // 0 turns it off.
    assert_eq!(busy.cmd(&["CONFIG", "SET", "timeout", "0"]).await, ok());
    assert_eq!(
        busy.cmd(&["CONFIG", "SET", "timeout", "-1"]).await,
        err("ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive")
    );
}
