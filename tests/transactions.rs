//! Transactions end to end (issue 17): MULTI, EXEC, DISCARD, WATCH and UNWATCH over real
//! sockets, with Redis's replies and errors, WATCH invalidation by every kind of change,
//! atomicity observed by concurrent readers across shards and databases, and the `redis`
//! crate's atomic pipelines.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kvserver::ServerHandle;
use tokio::task::JoinSet;

use crate::util::*;

fn queued() -> Frame {
    simple("QUEUED")
}

#[tokio::test]
async fn queued_commands_run_at_exec_and_errors_are_redis_texts() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    // The replies Redis 7.0.15 gave to this exact session (SPEC.md 6.11), reply by reply.
    let replies = pipeline(
        &mut c,
        &[
            &["MULTI"],
            &["MULTI"],
            &["WATCH", "x"],
            &["SET", "a", "1"],
            &["EXEC"],
            &["MULTI"],
            &["GET"],
            &["SET", "b", "2"],
            &["EXEC"],
            &["MULTI"],
            &["SAVE"],
            &["EXEC"],
            &["EXEC"],
            &["DISCARD"],
            &["MULTI"],
            &["FOO", "bar"],
            &["DISCARD"],
            &["MULTI"],
            &["INCR", "a"],
            &["LPUSH", "a", "x"],
            &["BLPOP", "nolist", "0"],
            &["EXEC"],
            &["MULTI"],
            &["EXEC"],
            &["MULTI"],
            &["CONFIG", "FOO"],
            &["EXEC"],
        ],
    )
    .await;
    let expected = vec![
        ok(),
        err("ERR MULTI calls can not be nested"),
        err("ERR WATCH inside MULTI is not allowed"),
        queued(),
        Frame::Array(vec![ok()]),
        ok(),
        arity_err("get"),
        queued(),
        err("EXECABORT Transaction discarded because of previous errors."),
        ok(),
        err("ERR Command not allowed inside a transaction"),
        err("EXECABORT Transaction discarded because of previous errors."),
        err("ERR EXEC without MULTI"),
        err("ERR DISCARD without MULTI"),
        ok(),
        err("ERR unknown command 'FOO', with args beginning with: 'bar' "),
        ok(),
        ok(),
        queued(),
        queued(),
        queued(),
        Frame::Array(vec![
            int(2),
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            Frame::Null,
        ]),
        ok(),
        Frame::Array(vec![]),
        ok(),
        err("ERR unknown subcommand 'FOO'. Try CONFIG HELP."),
        err("EXECABORT Transaction discarded because of previous errors."),
    ];
    assert_eq!(replies, expected);
    // The failed command did not undo the others; the aborted transactions left no trace.
    assert_eq!(c.cmd(&["GET", "a"]).await, bulk("2"));
    assert_eq!(c.cmd(&["EXISTS", "b"]).await, int(0));
}

#[tokio::test]
async fn discard_and_reset_drop_the_queue_and_the_watches() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["WATCH", "w"]).await, ok());
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["SET", "q", "1"]).await, queued());
    assert_eq!(c.cmd(&["DISCARD"]).await, ok());
    assert_eq!(c.cmd(&["EXISTS", "q"]).await, int(0));
    // DISCARD also forgot the watch: a change to `w` no longer matters.
    assert_eq!(other.cmd(&["SET", "w", "changed"]).await, ok());
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["SET", "q", "1"]).await, queued());
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Array(vec![ok()]));

    assert_eq!(c.cmd(&["WATCH", "w"]).await, ok());
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["SET", "r", "1"]).await, queued());
    assert_eq!(c.cmd(&["RESET"]).await, simple("RESET"));
    assert_eq!(c.cmd(&["EXEC"]).await, err("ERR EXEC without MULTI"));
    assert_eq!(other.cmd(&["SET", "w", "again"]).await, ok());
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["GET", "w"]).await, queued());
    assert_eq!(c.cmd(&["EXEC"]).await, bulks(&["again"]));
    assert_eq!(c.cmd(&["EXISTS", "r"]).await, int(0));
}

/// Runs WATCH `key`, lets `change` act from another connection, then MULTI/SET/EXEC: returns
/// EXEC's reply.
async fn exec_after(server: &ServerHandle, key: &str, setup: &[&[&str]], change: &[&str]) -> Frame {
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["FLUSHALL"]).await, ok());
    for command in setup {
        let reply = c.cmd(command).await;
        assert!(!matches!(reply, Frame::Error(_)), "{command:?}: {reply:?}");
    }
    assert_eq!(c.cmd(&["WATCH", key]).await, ok());
    let reply = other.cmd(change).await;
    assert!(!matches!(reply, Frame::Error(_)), "{change:?}: {reply:?}");
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["SET", "marker", "1"]).await, queued());
    c.cmd(&["EXEC"]).await
}

#[tokio::test]
async fn watch_fails_exec_after_every_kind_of_change() {
    let server = start_server().await;
    let string = &["SET", "k", "v"][..];
    let list = &["RPUSH", "k", "a", "b"][..];
    let hash = &["HSET", "k", "f", "v"][..];
    let set = &["SADD", "k", "m"][..];
    let zset = &["ZADD", "k", "1", "m"][..];
    let cases: Vec<(&[&str], &[&str])> = vec![
        (string, &["SET", "k", "w"]),
        (string, &["APPEND", "k", "x"]),
        (string, &["SETRANGE", "k", "0", "x"]),
        (&["SET", "k", "1"], &["INCR", "k"]),
        (&["SET", "k", "1"], &["INCRBYFLOAT", "k", "0.5"]),
        (string, &["DEL", "k"]),
        (string, &["UNLINK", "k"]),
        (string, &["GETDEL", "k"]),
        (string, &["EXPIRE", "k", "100"]),
        (&["SET", "k", "v", "EX", "100"], &["PERSIST", "k"]),
        (string, &["RENAME", "k", "k2"]),
        (&["SET", "src", "v"], &["RENAME", "src", "k"]),
        (&["SET", "src", "v"], &["COPY", "src", "k"]),
        (string, &["FLUSHDB"]),
        (string, &["FLUSHALL"]),
        (list, &["LPUSH", "k", "x"]),
        (list, &["LPOP", "k"]),
        (list, &["LSET", "k", "0", "z"]),
        (hash, &["HSET", "k", "g", "w"]),
        (hash, &["HDEL", "k", "f"]),
        (set, &["SADD", "k", "n"]),
        (set, &["SREM", "k", "m"]),
        (zset, &["ZADD", "k", "2", "m"]),
        (zset, &["ZINCRBY", "k", "1", "m"]),
        (&[], &["SET", "k", "new"]),
    ];
    for (setup, change) in cases {
        let setup: Vec<&[&str]> = if setup.is_empty() {
            vec![]
        } else {
            vec![setup]
        };
        assert_eq!(
            exec_after(&server, "k", &setup, change).await,
            Frame::Null,
            "{change:?} after {setup:?} must fail the transaction"
        );
    }
}

#[tokio::test]
async fn watch_ignores_what_does_not_change_the_key() {
    let server = start_server().await;
    let ran = Frame::Array(vec![ok()]);
    let cases: Vec<(&[&str], &[&str])> = vec![
        // Other keys, and the same name in another database.
        (&["SET", "k", "v"], &["SET", "other", "v"]),
        (&["SET", "k", "v"], &["SELECT", "1"]),
        // Commands that find nothing to change propagate nothing and change nothing.
        (&["SADD", "k", "m"], &["SADD", "k", "m"]),
        (&["HSET", "k", "f", "v"], &["HDEL", "k", "nope"]),
        (&["RPUSH", "k", "a"], &["LREM", "k", "0", "nope"]),
        (&["SET", "k", "v"], &["PERSIST", "k"]),
        (&["SET", "k", "v"], &["GET", "k"]),
        (&["SET", "k", "v"], &["DEL", "nope"]),
    ];
    for (setup, change) in cases {
        assert_eq!(
            exec_after(&server, "k", &[setup], change).await,
            ran,
            "{change:?} after {setup:?} must not fail the transaction"
        );
    }
    // A write to the key in another database does not count either.
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["WATCH", "k"]).await, ok());
    assert_eq!(other.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(other.cmd(&["SET", "k", "db1"]).await, ok());
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["PING"]).await, queued());
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Array(vec![simple("PONG")]));
}

#[tokio::test]
async fn watch_fails_exec_when_the_key_expires_or_is_changed_by_its_own_client() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    // Expiry: nobody touches the key; its deadline passes between WATCH and EXEC.
    assert_eq!(c.cmd(&["SET", "k", "v", "PX", "30"]).await, ok());
    assert_eq!(c.cmd(&["WATCH", "k"]).await, ok());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["SET", "x", "1"]).await, queued());
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Null);
    assert_eq!(c.cmd(&["EXISTS", "x"]).await, int(0));

    // Expiry noticed by the active cycle before EXEC.
    assert_eq!(c.cmd(&["SET", "k", "v", "PX", "20"]).await, ok());
    assert_eq!(c.cmd(&["WATCH", "k"]).await, ok());
    poll_until_reply(&mut c, &["DBSIZE"], int(0), Duration::from_secs(10)).await;
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["SET", "x", "1"]).await, queued());
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Null);

    // The watching client's own write counts too, as in Redis.
    assert_eq!(c.cmd(&["WATCH", "k"]).await, ok());
    assert_eq!(c.cmd(&["SET", "k", "mine"]).await, ok());
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["SET", "x", "1"]).await, queued());
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Null);

    // UNWATCH forgets, and an EXEC ends the watch whatever its outcome.
    assert_eq!(c.cmd(&["WATCH", "k"]).await, ok());
    assert_eq!(c.cmd(&["UNWATCH"]).await, ok());
    assert_eq!(c.cmd(&["SET", "k", "again"]).await, ok());
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["SET", "x", "1"]).await, queued());
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Array(vec![ok()]));
    assert_eq!(c.cmd(&["SET", "k", "after"]).await, ok());
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Array(vec![]));
}

#[tokio::test]
async fn a_disconnected_watcher_leaves_nothing_behind() {
    let server = start_server().await;
    {
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(c.cmd(&["WATCH", "a", "b", "c"]).await, ok());
    }
    let mut c = Raw::connect(server.addr()).await;
    // The registrations are gone once the server noticed the disconnection.
    let db = server.shared().store.db(0).expect("db 0");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ["a", "b", "c"].iter().any(|key| {
        let (shard, _) = db.read(key.as_bytes());
        shard.is_watched(key.as_bytes())
    }) {
        assert!(std::time::Instant::now() < deadline, "watches left behind");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(c.cmd(&["SET", "a", "1"]).await, ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_half_of_a_transaction() {
    const WRITERS: usize = 3;
    const ROUNDS: usize = 200;
    let server = start_server().await;
    let addr = server.addr();
    let keys = Arc::new(keys_over_shards(&server, "tx:", 12, 6));
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = JoinSet::new();
    for _ in 0..2 {
        let (keys, done) = (keys.clone(), done.clone());
        readers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut mget = vec!["MGET".to_owned()];
            mget.extend(keys.iter().cloned());
            let mut distinct = HashSet::new();
            while !done.load(Ordering::Relaxed) {
                let values = array_items(c.cmd(&mget).await);
                assert!(
                    values.iter().all(|v| *v == values[0]),
                    "MGET saw half of a transaction: {values:?}"
                );
                distinct.insert(format!("{:?}", values[0]));
            }
            distinct.len()
        });
    }
    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let keys = keys.clone();
        writers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            for round in 0..ROUNDS {
                let value = format!("w{writer}-{round}");
                let mut commands: Vec<Vec<String>> = vec![vec!["MULTI".into()]];
                for key in keys.iter() {
                    // One SET per key: each command alone touches one shard.
                    commands.push(vec!["SET".into(), key.clone(), value.clone()]);
                }
                commands.push(vec!["EXEC".into()]);
                let refs: Vec<Vec<&str>> = commands
                    .iter()
                    .map(|c| c.iter().map(String::as_str).collect())
                    .collect();
                let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
                let replies = pipeline(&mut c, &slices).await;
                let exec = replies.last().cloned().expect("EXEC reply");
                assert_eq!(array_items(exec).len(), keys.len());
            }
        });
    }
    while let Some(result) = writers.join_next().await {
        result.expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    while let Some(result) = readers.join_next().await {
        let distinct = result.expect("reader");
        assert!(distinct >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_across_databases_and_counters_are_atomic() {
    const ROUNDS: usize = 300;
    let server = start_server().await;
    let addr = server.addr();
    let keys = Arc::new(keys_over_shards(&server, "ctr:", 6, 3));
    let done = Arc::new(AtomicBool::new(false));
    // A reader that checks, in its own transaction, that database 0 and 1 agree and that
    // every counter has the same value.
    let reader = {
        let (keys, done) = (keys.clone(), done.clone());
        tokio::spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut checks = 0;
            while !done.load(Ordering::Relaxed) {
                let mut commands: Vec<Vec<&str>> = vec![vec!["MULTI"]];
                let mut mget = vec!["MGET"];
                mget.extend(keys.iter().map(String::as_str));
                commands.push(mget.clone());
                commands.push(vec!["SELECT", "1"]);
                commands.push(mget);
                commands.push(vec!["SELECT", "0"]);
                commands.push(vec!["EXEC"]);
                let slices: Vec<&[&str]> = commands.iter().map(Vec::as_slice).collect();
                let replies = pipeline(&mut c, &slices).await;
                let exec = array_items(replies.last().cloned().expect("EXEC"));
                assert_eq!(exec[0], exec[2], "databases 0 and 1 disagree");
                let values = array_items(exec[0].clone());
                assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
                checks += 1;
            }
            checks
        })
    };
    let mut writers = JoinSet::new();
    for _ in 0..2 {
        let keys = keys.clone();
        writers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            for _ in 0..ROUNDS {
                let mut commands: Vec<Vec<&str>> = vec![vec!["MULTI"]];
                for db in ["0", "1"] {
                    commands.push(vec!["SELECT", db]);
                    for key in keys.iter() {
                        commands.push(vec!["INCR", key]);
                    }
                }
                commands.push(vec!["SELECT", "0"]);
                commands.push(vec!["EXEC"]);
                let slices: Vec<&[&str]> = commands.iter().map(Vec::as_slice).collect();
                pipeline(&mut c, &slices).await;
            }
        });
    }
    while let Some(result) = writers.join_next().await {
        result.expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.await.expect("reader") > 0);
    // No increment was lost either.
    let mut c = Raw::connect(addr).await;
    for db in ["0", "1"] {
        assert_eq!(c.cmd(&["SELECT", db]).await, ok());
        for key in keys.iter() {
            assert_eq!(c.cmd(&["GET", key]).await, bulk((2 * ROUNDS).to_string()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_set_with_watch_loses_no_update() {
    const CLIENTS: usize = 4;
    const INCREMENTS: usize = 50;
    let server = start_server().await;
    let addr = server.addr();
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        clients.spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut retries = 0;
            for _ in 0..INCREMENTS {
                loop {
                    assert_eq!(c.cmd(&["WATCH", "cas"]).await, ok());
                    let current = match c.cmd(&["GET", "cas"]).await {
                        Frame::Bulk(bytes) => String::from_utf8_lossy(&bytes)
                            .parse::<i64>()
                            .expect("number"),
                        _ => 0,
                    };
                    let next = (current + 1).to_string();
                    let replies =
                        pipeline(&mut c, &[&["MULTI"], &["SET", "cas", &next], &["EXEC"]]).await;
                    if replies[2] != Frame::Null {
                        break;
                    }
                    retries += 1;
                }
            }
            retries
        });
    }
    while let Some(result) = clients.join_next().await {
        result.expect("client");
    }
    let mut c = Raw::connect(addr).await;
    assert_eq!(
        c.cmd(&["GET", "cas"]).await,
        bulk((CLIENTS * INCREMENTS).to_string())
    );
}

#[tokio::test]
async fn keyless_commands_in_a_transaction_see_the_whole_keyspace() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let replies = pipeline(
        &mut c,
        &[
            &["MULTI"],
            &["MSET", "a", "1", "b", "2", "c", "3"],
            &["DBSIZE"],
            &["KEYS", "*"],
            &["SELECT", "2"],
            &["SET", "d", "4"],
            &["DBSIZE"],
            &["SELECT", "0"],
            &["FLUSHDB"],
            &["DBSIZE"],
            &["INFO", "keyspace"],
            &["EXEC"],
        ],
    )
    .await;
    let exec = array_items(replies.last().cloned().expect("EXEC"));
    assert_eq!(exec[0], ok());
    assert_eq!(exec[1], int(3));
    assert_eq!(
        sorted_bulks(exec[2].clone()),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(exec[5], int(1));
    assert_eq!(exec[8], int(0));
    assert!(text_of(&exec[9]).contains("db2:keys=1"), "{:?}", exec[9]);
    assert_eq!(c.cmd(&["SELECT", "2"]).await, ok());
    assert_eq!(c.cmd(&["GET", "d"]).await, bulk("4"));
}

#[tokio::test]
async fn a_transaction_serves_blocked_clients_after_it_ends() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut waiter = Raw::connect(server.addr()).await;
    waiter.send(&encode(&["BLPOP", "jobs", "0"])).await;
    wait_for_blocked(&mut c).await;
    let replies = pipeline(
        &mut c,
        &[
            &["MULTI"],
            &["RPUSH", "jobs", "a", "b"],
            &["LLEN", "jobs"],
            &["EXEC"],
        ],
    )
    .await;
    // Inside the transaction both elements are still there: nobody is served mid-way.
    assert_eq!(replies[3], Frame::Array(vec![int(2), int(2)]));
    assert_eq!(waiter.read().await, bulks(&["jobs", "a"]));
    assert_eq!(c.cmd(&["LRANGE", "jobs", "0", "-1"]).await, bulks(&["b"]));
}

async fn wait_for_blocked(c: &mut Raw) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = text_of(&c.cmd(&["INFO", "clients"]).await);
        if info_field(&info, "blocked_clients").as_deref() == Some("1") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "client never blocked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_redis_crate_atomic_pipeline_works() {
    let server = start_server().await;
    let mut con = redis_client(server.addr()).await;
    let (a, b, len): (i64, i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCRBY")
        .arg("ca")
        .arg(5)
        .cmd("INCRBY")
        .arg("cb")
        .arg(7)
        .cmd("RPUSH")
        .arg("cl")
        .arg("x")
        .query_async(&mut con)
        .await
        .expect("atomic pipeline");
    assert_eq!((a, b, len), (5, 7, 1));
    // redis::transaction-style optimistic loop: WATCH, read, MULTI/EXEC.
    let _: () = redis::cmd("WATCH")
        .arg("ca")
        .query_async(&mut con)
        .await
        .expect("watch");
    let current: i64 = redis::cmd("GET")
        .arg("ca")
        .query_async(&mut con)
        .await
        .expect("get");
    let result: Option<(i64,)> = redis::pipe()
        .atomic()
        .cmd("INCRBY")
        .arg("ca")
        .arg(current)
        .query_async(&mut con)
        .await
        .expect("exec");
    assert_eq!(result, Some((10,)));
}

#[tokio::test]
async fn transactions_reach_the_log_as_one_unit_and_replay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_logged_server(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    let replies = pipeline(
        &mut c,
        &[
            &["MULTI"],
            &["SET", "t1", "a"],
            &["SELECT", "3"],
            &["RPUSH", "t2", "x", "y"],
            &["INCRBYFLOAT", "f", "1.5"],
            &["SELECT", "0"],
            &["EXEC"],
        ],
    )
    .await;
    assert_eq!(
        replies[6],
        Frame::Array(vec![ok(), ok(), int(2), bulk("1.5"), ok()])
    );
    server.shutdown();
    server.stopped().await;
    // The incr file holds the transaction wrapped in MULTI/EXEC.
    let text = incr_logs_text(dir.path());
    let multi = text.find("MULTI").expect("MULTI in the log");
    let exec = text.find("EXEC").expect("EXEC in the log");
    assert!(
        multi < text.find("t1").expect("t1") && text.find("t2").expect("t2") < exec,
        "{text}"
    );

    let server = start_logged_server(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["GET", "t1"]).await, bulk("a"));
    assert_eq!(c.cmd(&["SELECT", "3"]).await, ok());
    assert_eq!(
        c.cmd(&["LRANGE", "t2", "0", "-1"]).await,
        bulks(&["x", "y"])
    );
    assert_eq!(c.cmd(&["GET", "f"]).await, bulk("1.5"));
}

/// One client's check-and-set loop: `increments` committed WATCH/GET/MULTI/SET/EXEC
/// increments of `key`.
async fn cas_loop(addr: std::net::SocketAddr, key: &str, increments: usize) {
    let mut c = Raw::connect(addr).await;
    let mut committed = 0;
    while committed < increments {
        let replies = pipeline(&mut c, &[&["WATCH", key], &["GET", key]]).await;
        let value = match &replies[1] {
            Frame::Null => 0,
            frame => text_of(frame).parse::<i64>().expect("a counter"),
        };
        let next = (value + 1).to_string();
        let replies = pipeline(&mut c, &[&["MULTI"], &["SET", key, &next], &["EXEC"]]).await;
        if replies[2] != Frame::Null {
            assert_eq!(replies[2], Frame::Array(vec![ok()]));
            committed += 1;
        }
    }
}

#[tokio::test]
async fn contending_check_and_set_loops_lose_no_increment() {
    let server = start_server().await;
    let (clients, increments) = (4, 200);
    let mut loops = JoinSet::new();
    for _ in 0..clients {
        loops.spawn(cas_loop(server.addr(), "cas:counter", increments));
    }
    while let Some(result) = loops.join_next().await {
        result.expect("client task");
    }
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["GET", "cas:counter"]).await,
        bulk((clients * increments).to_string())
    );
}

/// Keeps the server's only connection thread busy for `millis` (a script polling TIME).
fn busy_script(millis: u64) -> Vec<u8> {
    let body = format!(
        "local s = redis.call('TIME') repeat local n = redis.call('TIME') \
         until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > {} return 1",
        millis * 1000
    );
    encode(&["EVAL", body.as_str(), "0"])
}

#[tokio::test]
async fn a_watch_waits_for_the_exec_already_waiting() {
    // With one connection thread busy, B's WATCH arrives before A's EXEC of the same key.
    // Served in arrival order, the WATCH would run first and the EXEC abort B's transaction;
    // the WATCH yields to requests already waiting instead (see `connection`), so B reads the
    // committed value and its own transaction commits.
    let server = start_server_with(|config| config.threads = 1).await;
    let (mut a, mut b, mut busy) = (
        Raw::connect(server.addr()).await,
        Raw::connect(server.addr()).await,
        Raw::connect(server.addr()).await,
    );
    assert_eq!(a.cmd(&["MULTI"]).await, ok());
    assert_eq!(a.cmd(&["SET", "k", "from-a"]).await, queued());
    busy.send(&busy_script(1000)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut watch_get = encode(&["WATCH", "k"]);
    watch_get.extend_from_slice(&encode(&["GET", "k"]));
    b.send(&watch_get).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.send(&encode(&["EXEC"])).await;
    assert_eq!(busy.read().await, int(1));
    assert_eq!(a.read().await, Frame::Array(vec![ok()]));
    assert_eq!(b.read().await, ok());
    assert_eq!(b.read().await, bulk("from-a"));
    let replies = pipeline(&mut b, &[&["MULTI"], &["SET", "k", "from-b"], &["EXEC"]]).await;
    assert_eq!(replies[2], Frame::Array(vec![ok()]));
}
