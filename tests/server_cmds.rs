//! Server commands: COMMAND, INFO, CONFIG, DBSIZE, FLUSHDB/FLUSHALL, TIME, SHUTDOWN, and
//! graceful shutdown of the in-process server.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::util::*;

/// Field `name` of a COMMAND DOCS entry (a flat array in RESP2).
fn doc_field(doc: &[Frame], name: &str) -> Frame {
    doc.chunks(2)
        .find(|pair| text_of(&pair[0]) == name)
        .map(|pair| pair[1].clone())
        .unwrap_or_else(|| panic!("no {name} in {doc:?}"))
}

#[tokio::test]
async fn command_introspection() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let count = int_of(&c.cmd(&["COMMAND", "COUNT"]).await);
    let list: Vec<String> = array_items(c.cmd(&["COMMAND", "LIST"]).await)
        .iter()
        .map(text_of)
        .collect();
    assert_eq!(list.len() as i64, count);
    for name in [
        "get", "set", "scan", "client", "config", "expire", "hello", "shutdown",
    ] {
        assert!(list.iter().any(|n| n == name), "COMMAND LIST lacks {name}");
    }
    assert_eq!(array_items(c.cmd(&["COMMAND"]).await).len() as i64, count);

    // COMMAND INFO in Redis's 10-element layout.
    let mut infos = array_items(c.cmd(&["COMMAND", "INFO", "get", "nosuch", "MSET"]).await);
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[1], nil());
    let get = array_items(infos.remove(0));
    assert_eq!(get.len(), 10);
    assert_eq!(get[0], bulk("get"));
    assert_eq!(get[1], int(2));
    assert_eq!(
        get[2],
        Frame::Array(vec![simple("readonly"), simple("fast")])
    );
    assert_eq!(&get[3..6], &[int(1), int(1), int(1)]);
    assert_eq!(
        get[6],
        Frame::Array(vec![simple("@read"), simple("@string"), simple("@fast")])
    );
    let key_specs = array_items(get[8].clone());
    let spec = array_items(key_specs[0].clone());
    assert_eq!(spec[0], bulk("flags"));
    assert_eq!(spec[1], Frame::Array(vec![simple("RO"), simple("access")]));
    let mset = array_items(infos.remove(1));
    assert_eq!(mset[0], bulk("mset"));
    assert_eq!(mset[1], int(-3));
    assert_eq!(&mset[3..6], &[int(1), int(-1), int(2)]);
    let client =
        array_items(array_items(c.cmd(&["COMMAND", "INFO", "client|setname"]).await).remove(0));
    assert_eq!(client[0], bulk("client|setname"));
    assert_eq!(client[1], int(3));

    // COMMAND DOCS: a map from name to fields (flat in RESP2).
    let docs = array_items(c.cmd(&["COMMAND", "DOCS", "get"]).await);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0], bulk("get"));
    let doc = array_items(docs[1].clone());
    assert_eq!(
        doc_field(&doc, "summary"),
        bulk("Read the string stored at a key")
    );
    assert_eq!(doc_field(&doc, "since"), bulk("1.0.0"));
    assert_eq!(doc_field(&doc, "group"), bulk("string"));
    assert_eq!(
        c.cmd(&["COMMAND", "DOCS", "nosuch"]).await,
        Frame::Array(vec![])
    );

    let mut get_like = sorted_bulks(
        c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "get*"])
            .await,
    );
    get_like.sort();
    assert_eq!(
        get_like,
        ["get", "getdel", "getex", "getrange", "getset"].map(|s| s.as_bytes().to_vec())
    );
    let strings: Vec<String> = array_items(
        c.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "string"])
            .await,
    )
    .iter()
    .map(text_of)
    .collect();
    assert!(strings.contains(&"incrbyfloat".to_owned()) && !strings.contains(&"ping".to_owned()));

    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "SET", "k", "v", "EX", "10"])
            .await,
        bulks(&["k"])
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"])
            .await,
        bulks(&["a", "b"])
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "copy", "a", "b", "REPLACE"])
            .await,
        bulks(&["a", "b"])
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "DEL", "x", "y", "z"]).await,
        bulks(&["x", "y", "z"])
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "nosuch", "a"]).await,
        err("ERR Invalid command specified")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "get"]).await,
        err("ERR Invalid number of arguments specified for command")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "ping", "x"]).await,
        err("ERR The command has no key arguments")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS"]).await,
        arity_err("command|getkeys")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "nosuch"]).await,
        err("ERR unknown subcommand 'nosuch'. Try COMMAND HELP.")
    );
}

/// The arity in the command table matches what the handlers accept: one argument too few is
/// refused with the arity error (not a crash or a different error).
#[tokio::test]
async fn every_command_checks_its_arity() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let infos = array_items(c.cmd(&["COMMAND"]).await);
    let mut checked = 0;
    for info in infos {
        let info = array_items(info);
        let name = text_of(&info[0]);
        let arity = int_of(&info[1]);
        let needed = arity.unsigned_abs() as usize;
        if needed < 2 || !array_items(info[9].clone()).is_empty() {
            continue; // no arguments required, or a container checked through its subcommands
        }
        let args: Vec<String> = std::iter::once(name.clone())
            .chain((1..needed - 1).map(|i| format!("arg{i}")))
            .collect();
        assert_eq!(c.cmd(&args).await, arity_err(&name), "{args:?}");
        checked += 1;
    }
    assert!(checked > 30, "only {checked} commands checked");
}

#[tokio::test]
async fn info_sections_and_fields() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["GET", "a"]).await, nil());
    assert_eq!(c.cmd(&["SET", "a", "1"]).await, ok());
    assert_eq!(c.cmd(&["GET", "a"]).await, bulk("1"));
    assert_eq!(c.cmd(&["SET", "b", "2", "EX", "100"]).await, ok());
    assert_eq!(
        c.cmd(&["MGET", "a", "nokey"]).await,
        Frame::Array(vec![bulk("1"), nil()])
    );
    let _other = Raw::connect(server.addr()).await;

    let info = text_of(&c.cmd(&["INFO"]).await);
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Keyspace",
    ] {
        assert!(info.lines().any(|l| l == section), "INFO lacks {section}");
    }
    assert!(info.contains("\r\n"), "INFO lines end with CRLF");
    let version = info_field(&info, "redis_version").expect("redis_version");
    assert!(version.starts_with("7."), "{version}");
    assert_eq!(
        info_field(&info, "tcp_port"),
        Some(server.addr().port().to_string())
    );
    // INFO's own connection plus `_other` (the registry may take a moment to list it).
    let clients: usize = info_field(&info, "connected_clients")
        .expect("connected_clients")
        .parse()
        .expect("number");
    assert!((1..=2).contains(&clients), "{clients}");
    let used: u64 = info_field(&info, "used_memory")
        .expect("used_memory")
        .parse()
        .expect("number");
    assert!(used > 0);
    // Five commands ran before INFO; INFO does not count itself (as in Redis).
    assert_eq!(
        info_field(&info, "total_commands_processed").as_deref(),
        Some("5")
    );
    assert_eq!(info_field(&info, "keyspace_hits").as_deref(), Some("2"));
    assert_eq!(info_field(&info, "keyspace_misses").as_deref(), Some("2"));
    assert_eq!(info_field(&info, "expired_keys").as_deref(), Some("0"));
    assert_eq!(
        info_field(&info, "db0").as_deref(),
        Some("keys=2,expires=1,avg_ttl=0")
    );
    assert_eq!(info_field(&info, "db3"), None);

    assert_eq!(c.cmd(&["SELECT", "3"]).await, ok());
    assert_eq!(c.cmd(&["SET", "c", "3"]).await, ok());
    let keyspace = text_of(&c.cmd(&["INFO", "keyspace"]).await);
    assert_eq!(
        keyspace,
        "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n"
    );
    let some = text_of(&c.cmd(&["INFO", "server", "CLIENTS"]).await);
    assert!(some.starts_with("# Server\r\n") && some.contains("\r\n# Clients\r\n"));
    assert!(!some.contains("# Stats"));
    assert_eq!(c.cmd(&["INFO", "nosuch"]).await, bulk(""));
    let all = text_of(&c.cmd(&["INFO", "all"]).await);
    assert!(all.contains("# Keyspace"));

    // CONFIG RESETSTAT zeroes the counters; it counts itself, as in Redis.
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]).await, ok());
    let stats = text_of(&c.cmd(&["INFO", "stats"]).await);
    assert_eq!(
        info_field(&stats, "total_commands_processed").as_deref(),
        Some("1")
    );
    assert_eq!(info_field(&stats, "keyspace_hits").as_deref(), Some("0"));

    // RESP3: INFO is a verbatim string.
    hello_3(&mut c).await;
    let reply = c.cmd(&["INFO", "server"]).await;
    assert!(
        matches!(&reply, Frame::Verbatim { format, .. } if format == b"txt"),
        "{reply:?}"
    );
}

async fn hello_3(c: &mut Raw) {
    assert!(matches!(c.cmd(&["HELLO", "3"]).await, Frame::Map(_)));
}

#[tokio::test]
async fn config_get_and_set() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let pairs = |frame: Frame| -> Vec<(String, String)> {
        array_items(frame)
            .chunks(2)
            .map(|p| (text_of(&p[0]), text_of(&p[1])))
            .collect()
    };
    let all = pairs(c.cmd(&["CONFIG", "GET", "*"]).await);
    let get = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(get("save").as_deref(), Some(""));
    assert_eq!(get("appendonly").as_deref(), Some("no"));
    assert_eq!(get("port"), Some(server.addr().port().to_string()));
    assert_eq!(get("databases").as_deref(), Some("16"));
    assert_eq!(get("tcp-backlog").as_deref(), Some("511"));

    let max = pairs(c.cmd(&["CONFIG", "GET", "*max*"]).await);
    assert!(max.iter().all(|(k, _)| k.contains("max")), "{max:?}");
    assert!(max.contains(&("maxclients".to_owned(), "10000".to_owned())));
    assert_eq!(
        pairs(c.cmd(&["CONFIG", "GET", "MAXCLIENTS", "maxclient?"]).await),
        [("maxclients".to_owned(), "10000".to_owned())],
        "case-insensitive, each parameter once"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "nosuch"]).await,
        Frame::Array(vec![])
    );

    assert_eq!(c.cmd(&["CONFIG", "SET", "maxclients", "50"]).await, ok());
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxclients"]).await,
        bulks(&["maxclients", "50"])
    );
    let clients = text_of(&c.cmd(&["INFO", "clients"]).await);
    assert_eq!(info_field(&clients, "maxclients").as_deref(), Some("50"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "loglevel", "warning"]).await, ok());
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "loglevel"]).await,
        bulks(&["loglevel", "warning"])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "LOGLEVEL", "Notice", "hz", "20"])
            .await,
        ok()
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "loglevel"]).await,
        bulks(&["loglevel", "notice"])
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "hz"]).await, bulks(&["hz", "20"]));
    // hz is clamped to 1..=500, as in Redis.
    assert_eq!(c.cmd(&["CONFIG", "SET", "hz", "0"]).await, ok());
    assert_eq!(c.cmd(&["CONFIG", "GET", "hz"]).await, bulks(&["hz", "1"]));
    assert_eq!(c.cmd(&["CONFIG", "SET", "hz", "1000"]).await, ok());
    assert_eq!(c.cmd(&["CONFIG", "GET", "hz"]).await, bulks(&["hz", "500"]));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hz", "-1"]).await,
        err("ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be between 0 and 2147483647 inclusive")
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "save", ""]).await, ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]).await, ok());

    assert_eq!(
        c.cmd(&["CONFIG", "SET", "nosuch", "1"]).await,
        err("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxclients", "abc"]).await,
        err("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxclients", "0"]).await,
        err("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxclients", "5000000000"]).await,
        err("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive")
    );
    // Past what the open-files limit can be raised to: Redis's error, naming what fits.
    // (Redis itself accepts 4294967295 only because maxclients + 32 overflows there.)
    if let Some(hard) = hard_open_files_limit().filter(|&hard| hard < 4_000_000_000) {
        let asked = (hard + 1000).to_string();
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "maxclients", &asked]).await,
            err(&format!(
                "ERR CONFIG SET failed (possibly related to argument 'maxclients') - The \
                 operating system is not able to handle the specified number of clients, try \
                 with {}",
                hard - 32
            ))
        );
    }
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxclients", "1000"]).await, ok());
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxclients"]).await,
        bulks(&["maxclients", "1000"])
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxclients", "50"]).await, ok());
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxclients", "10", "maxclients", "20"]).await,
        err("ERR CONFIG SET failed (possibly related to argument 'maxclients') - duplicate parameter")
    );
    // All or nothing: a bad second pair leaves the first unapplied.
    let bad_level = c
        .cmd(&["CONFIG", "SET", "maxclients", "70", "loglevel", "bogus"])
        .await;
    assert!(
        matches!(&bad_level, Frame::Error(e) if e.starts_with(b"ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning")),
        "{bad_level:?}"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxclients"]).await,
        bulks(&["maxclients", "50"])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxclients"]).await,
        arity_err("config|set")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxclients", "5", "hz"]).await,
        arity_err("config|set")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "REWRITE"]).await,
        err("ERR The server is running without a config file")
    );
}

#[tokio::test]
async fn dbsize_flushdb_flushall() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]).await, ok());
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(3));
    assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(c.cmd(&["MSET", "x", "1", "y", "2"]).await, ok());
    assert_eq!(c.cmd(&["FLUSHDB"]).await, ok());
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
    assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
    assert_eq!(
        c.cmd(&["DBSIZE"]).await,
        int(3),
        "FLUSHDB only empties the selected db"
    );
    assert_eq!(c.cmd(&["FLUSHDB", "ASYNC"]).await, ok());
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
    assert_eq!(c.cmd(&["GET", "a"]).await, nil());

    for mode in ["ASYNC", "SYNC", "async"] {
        assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
        assert_eq!(c.cmd(&["SELECT", "5"]).await, ok());
        assert_eq!(c.cmd(&["SET", "k", "v", "EX", "100"]).await, ok());
        assert_eq!(c.cmd(&["FLUSHALL", mode]).await, ok());
        assert_eq!(c.cmd(&["DBSIZE"]).await, int(0), "{mode}");
        assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
        assert_eq!(c.cmd(&["DBSIZE"]).await, int(0), "{mode}");
    }
    // Many keys freed asynchronously; the database is usable at once.
    let mut mset = vec!["MSET".to_owned()];
    for i in 0..5000 {
        mset.push(format!("key:{i}"));
        mset.push("value".to_owned());
    }
    assert_eq!(c.cmd(&mset).await, ok());
    assert_eq!(c.cmd(&["FLUSHALL", "ASYNC"]).await, ok());
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "key:1", "new"]).await, ok());
    assert_eq!(c.cmd(&["GET", "key:1"]).await, bulk("new"));

    assert_eq!(c.cmd(&["FLUSHDB", "foo"]).await, err("ERR syntax error"));
    assert_eq!(
        c.cmd(&["FLUSHALL", "ASYNC", "extra"]).await,
        err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["DBSIZE", "x"]).await, arity_err("dbsize"));
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(1));
}

#[tokio::test]
async fn time_reports_the_clock() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let before = unix_ms();
    let reply = array_items(c.cmd(&["TIME"]).await);
    let after = unix_ms();
    assert_eq!(reply.len(), 2);
    let secs: u64 = text_of(&reply[0]).parse().expect("seconds");
    let micros: u64 = text_of(&reply[1]).parse().expect("microseconds");
    assert!(micros < 1_000_000);
    let ms = secs * 1000 + micros / 1000;
    assert!(before <= ms + 1 && ms <= after + 1, "{before} {ms} {after}");
    assert_eq!(c.cmd(&["TIME", "x"]).await, arity_err("time"));
}

/// A graceful shutdown lets a client that is in the middle of a pipeline receive every
/// reply of the batch being served, then closes it and stops accepting.
#[tokio::test]
async fn shutdown_finishes_the_batch_in_flight() {
    const GETS: usize = 150;
    let server = start_server().await;
    let addr = server.addr();
    let value = vec![b'v'; 100_000];
    let mut c = Raw::connect(addr).await;
    assert_eq!(c.cmd(&[&b"SET"[..], b"big", &value]).await, ok());
    let mut idle = Raw::connect(addr).await;
    assert_eq!(idle.cmd(&["PING"]).await, simple("PONG"));

    // 15 MB of replies: far more than the socket buffers hold, so the server is still
    // writing this batch when the shutdown starts. The requests fit in one read.
    let pipeline: Vec<u8> = (0..GETS).flat_map(|_| encode(&["GET", "big"])).collect();
    assert!(pipeline.len() < 4096);
    c.send(&pipeline).await;
    // Wait until the server has started replying (the batch has been read).
    let mut first = [0u8; 1];
    tokio::time::timeout(REPLY_TIMEOUT, c.stream().peek(&mut first))
        .await
        .expect("server starts replying")
        .expect("peek");
    server.shutdown();

    for i in 0..GETS {
        assert_eq!(c.read().await, bulk(&value), "reply {i}");
    }
    c.expect_closed().await;
    idle.expect_closed().await;
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("server stops");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn shutdown_command() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let server = start_server_with(|config| config.dir = data_dir).await;
    let addr = server.addr();
    let mut c = Raw::connect(addr).await;
    let mut other = Raw::connect(addr).await;
    assert_eq!(other.cmd(&["PING"]).await, simple("PONG"));
    assert_eq!(
        c.cmd(&["SHUTDOWN", "ABORT"]).await,
        err("ERR No shutdown in progress.")
    );
    // Illegal combinations are syntax errors, whatever the order (as in Redis).
    for args in [
        &["SHUTDOWN", "foo"][..],
        &["SHUTDOWN", "ABORT", "extra"],
        &["SHUTDOWN", "ABORT", "NOSAVE"],
        &["SHUTDOWN", "NOW", "ABORT"],
        &["SHUTDOWN", "NOSAVE", "SAVE"],
        &["SHUTDOWN", "NOSAVE", "foo"],
    ] {
        assert_eq!(c.cmd(args).await, err("ERR syntax error"), "{args:?}");
    }
    assert_eq!(
        c.cmd(&["SHUTDOWN", "abort", "ABORT"]).await,
        err("ERR No shutdown in progress.")
    );
    assert_eq!(
        c.cmd(&["PING"]).await,
        simple("PONG"),
        "failed SHUTDOWNs change nothing"
    );
    assert_eq!(c.cmd(&["SET", "kept", "1"]).await, simple("OK"));

    // As Redis: no reply, the connection closes, the server stops; SAVE writes the snapshot
    // first (no save rules are configured in tests, so only SAVE does).
    c.send(&encode(&["SHUTDOWN", "SAVE"])).await;
    c.expect_closed().await;
    other.expect_closed().await;
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("server stops");
    assert!(TcpStream::connect(addr).await.is_err());
    let snapshot = dir.path().join("dump.kvs");
    let summary = kvserver::persist::snapshot_format::verify_file(&snapshot).expect("snapshot");
    assert_eq!(summary.entries, 1);
}

/// A client that stops reading cannot hold the server up: shutdown gives up on it after a
/// grace period instead of waiting forever.
#[tokio::test]
async fn shutdown_does_not_wait_forever_for_a_client_that_stops_reading() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let value = vec![b'v'; 1_000_000];
    assert_eq!(c.cmd(&[&b"SET"[..], b"big", &value]).await, ok());
    // 100 MB of replies that are never read.
    let pipeline: Vec<u8> = (0..100).flat_map(|_| encode(&["GET", "big"])).collect();
    c.send(&pipeline).await;
    let mut first = [0u8; 1];
    tokio::time::timeout(REPLY_TIMEOUT, c.stream().peek(&mut first))
        .await
        .expect("server starts replying")
        .expect("peek");
    server.shutdown();
    // Bounded by the server's grace period (a few seconds), not by the client.
    tokio::time::timeout(Duration::from_secs(30), server.stopped())
        .await
        .expect("server stops although the client never reads");
    drop(c);
}

/// This process's hard limit on open files (`None`: unlimited or unknown).
fn hard_open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(4)?.parse().ok()
}
