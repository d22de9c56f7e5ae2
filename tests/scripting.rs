//! Lua scripting end to end (issue 17): EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT over
//! real sockets: replies and errors as Redis 7.0.15 gives them, conversions in both protocol
//! versions, read-only enforcement, atomicity seen by concurrent readers (declared and
//! undeclared keys, under contention), BUSY and SCRIPT KILL, propagation to the log, and the
//! `redis` crate's `Script` helper.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::util::*;

/// `text` followed by Redis's script location suffix for a script whose SHA-1 is `sha`.
fn script_err(text: &str, sha: &str, line: u32) -> Frame {
    err(&format!("{text} script: {sha}, on @user_script:{line}."))
}

fn sha1(body: &str) -> String {
    kvserver::script::engine::sha1_hex(body.as_bytes())
}

#[tokio::test]
async fn eval_runs_commands_and_reports_errors_as_redis() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return redis.call('set',KEYS[1],ARGV[1])",
            "1",
            "k",
            "v"
        ])
        .await,
        ok()
    );
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v"));
    let incr = "local v = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 100) return v";
    assert_eq!(c.cmd(&["EVAL", incr, "1", "n"]).await, int(1));
    assert_eq!(c.cmd(&["EVAL", incr, "1", "n"]).await, int(2));
    assert_eq!(c.cmd(&["TTL", "n"]).await, int(100));

    // Argument errors (Redis 7.0.15's texts).
    for (numkeys, expected) in [
        ("-1", "ERR Number of keys can't be negative"),
        (
            "2",
            "ERR Number of keys can't be greater than number of args",
        ),
        ("x", "ERR value is not an integer or out of range"),
    ] {
        assert_eq!(
            c.cmd(&["EVAL", "return 1", numkeys, "a"]).await,
            err(expected)
        );
    }
    assert_eq!(
        c.cmd(&["EVALSHA", &"f".repeat(40), "0"]).await,
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    assert_eq!(
        c.cmd(&["EVALSHA", "abc", "0"]).await,
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    // Commands a script may not call, and calls that are wrong.
    for (body, text) in [
        (
            "return redis.call('nosuch')",
            "ERR Unknown Redis command called from script",
        ),
        (
            "return redis.call('get')",
            "ERR Wrong number of args calling Redis command from script",
        ),
        (
            "return redis.call('eval','return 1','0')",
            "ERR This Redis command is not allowed from script",
        ),
        (
            "return redis.call('blpop','x','0')",
            "ERR This Redis command is not allowed from script",
        ),
        (
            "return redis.call('multi')",
            "ERR This Redis command is not allowed from script",
        ),
        (
            "return redis.call('watch','x')",
            "ERR This Redis command is not allowed from script",
        ),
    ] {
        assert_eq!(
            c.cmd(&["EVAL", body, "0"]).await,
            script_err(text, &sha1(body), 1),
            "{body}"
        );
    }
    // A failing command inside pcall is a value; outside it ends the script.
    assert_eq!(
        c.cmd(&["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "k"])
            .await,
        err("ERR value is not an integer or out of range")
    );
    let body = "return redis.call('incr', KEYS[1])";
    assert_eq!(
        c.cmd(&["EVAL", body, "1", "k"]).await,
        script_err(
            "ERR value is not an integer or out of range",
            &sha1(body),
            1
        )
    );
}

#[tokio::test]
async fn script_cache_commands() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let body = "return redis.call('get',KEYS[1])";
    let sha = sha1(body);
    assert_eq!(c.cmd(&["SCRIPT", "LOAD", body]).await, bulk(&sha));
    assert_eq!(
        c.cmd(&["SCRIPT", "EXISTS", &sha, &"0".repeat(40)]).await,
        Frame::Array(vec![int(1), int(0)])
    );
    assert_eq!(c.cmd(&["SET", "g", "got"]).await, ok());
    // Loaded on one connection (thread), run on another.
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(other.cmd(&["EVALSHA", &sha, "1", "g"]).await, bulk("got"));
    assert_eq!(
        other.cmd(&["EVALSHA", &sha.to_uppercase(), "1", "g"]).await,
        bulk("got")
    );
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]).await, ok());
    assert_eq!(
        other.cmd(&["EVALSHA", &sha, "1", "g"]).await,
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH", "ASYNC"]).await, ok());
    assert_eq!(
        c.cmd(&["SCRIPT", "FLUSH", "LATER"]).await,
        err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    );
    assert_eq!(
        c.cmd(&["SCRIPT", "KILL"]).await,
        err("NOTBUSY No scripts in execution right now.")
    );
    // EVAL caches what it runs.
    assert_eq!(c.cmd(&["EVAL", body, "1", "g"]).await, bulk("got"));
    assert_eq!(c.cmd(&["EVALSHA", &sha, "1", "g"]).await, bulk("got"));
}

#[tokio::test]
async fn read_only_scripts_cannot_write() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let body = "return redis.call('set','a','1')";
    assert_eq!(
        c.cmd(&["EVAL_RO", body, "0"]).await,
        script_err(
            "ERR Write commands are not allowed from read-only scripts.",
            &sha1(body),
            1
        )
    );
    let flagged = "#!lua flags=no-writes\nreturn redis.call('set','a','1')";
    assert_eq!(
        c.cmd(&["EVAL", flagged, "0"]).await,
        script_err(
            "ERR Write commands are not allowed from read-only scripts.",
            &sha1(flagged),
            2
        )
    );
    assert_eq!(
        c.cmd(&["EVAL_RO", "#!lua\nreturn 1", "0"]).await,
        err("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(c.cmd(&["EXISTS", "a"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "r", "x"]).await, ok());
    let read = "return redis.call('get',KEYS[1])";
    assert_eq!(c.cmd(&["EVAL_RO", read, "1", "r"]).await, bulk("x"));
    assert_eq!(c.cmd(&["SCRIPT", "LOAD", read]).await, bulk(sha1(read)));
    assert_eq!(
        c.cmd(&["EVALSHA_RO", &sha1(read), "1", "r"]).await,
        bulk("x")
    );
}

#[tokio::test]
async fn conversions_in_both_protocol_versions() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let body = "return {1, 2, 3.99, 'x', false, {err='bad'}, {ok='fine'}, true}";
    assert_eq!(
        c.cmd(&["EVAL", body, "0"]).await,
        Frame::Array(vec![
            int(1),
            int(2),
            int(3),
            bulk("x"),
            Frame::Null,
            err("bad"),
            simple("fine"),
            int(1),
        ])
    );
    // A table stops at its first nil.
    assert_eq!(
        c.cmd(&["EVAL", "return {1, nil, 3}", "0"]).await,
        Frame::Array(vec![int(1)])
    );
    // Replies become Lua values and back: a null bulk is false.
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return redis.call('get','missing') == false and 1 or 0",
            "0"
        ])
        .await,
        int(1)
    );
    assert!(matches!(c.cmd(&["HELLO", "3"]).await, Frame::Map(_)));
    let resp3 = "redis.setresp(3) return {double=1.5}";
    assert_eq!(c.cmd(&["EVAL", resp3, "0"]).await, Frame::Double(1.5));
    assert_eq!(
        c.cmd(&["EVAL", "return {map={a=1}}", "0"]).await,
        Frame::Map(vec![(bulk("a"), int(1))])
    );
    assert_eq!(
        c.cmd(&["EVAL", "return {set={a=true}}", "0"]).await,
        Frame::Set(vec![bulk("a")])
    );
    assert_eq!(c.cmd(&["EVAL", "return true", "0"]).await, int(1));
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "redis.setresp(3) return redis.call('get','missing') == nil and 1 or 0",
            "0"
        ])
        .await,
        int(1)
    );
}

#[tokio::test]
async fn select_inside_a_script_stays_inside_it() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let body = "redis.call('select','1'); return redis.call('set','k','1')";
    assert_eq!(c.cmd(&["EVAL", body, "0"]).await, ok());
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, int(0));
    assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("1"));
}

/// Writers run a script that sets every key to one value (declared in KEYS, or named in
/// ARGV only), plain MSETs and INCRs on other keys contend for the same shards, and readers
/// check with MGET that they never see a script half done.
async fn scripts_are_atomic(declared: bool) {
    const ROUNDS: usize = 150;
    let server = start_server().await;
    let addr = server.addr();
    let keys = Arc::new(keys_over_shards(&server, "sc:", 12, 6));
    let noise = Arc::new(keys_over_shards(&server, "noise:", 12, 6));
    let body = "local keys = KEYS if #keys == 0 then keys = {} for i = 2, #ARGV do keys[#keys + 1] = ARGV[i] end end \
                for _, key in ipairs(keys) do redis.call('set', key, ARGV[1]) end return #keys";
    let done = Arc::new(AtomicBool::new(false));
    let mut background = JoinSet::new();
    for _ in 0..2 {
        let (keys, done) = (keys.clone(), done.clone());
        background.spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut mget = vec!["MGET".to_owned()];
            mget.extend(keys.iter().cloned());
            while !done.load(Ordering::Relaxed) {
                let values = array_items(c.cmd(&mget).await);
                assert!(
                    values.iter().all(|v| *v == values[0]),
                    "MGET saw half of a script: {values:?}"
                );
            }
        });
    }
    {
        let (noise, done) = (noise.clone(), done.clone());
        background.spawn(async move {
            let mut c = Raw::connect(addr).await;
            while !done.load(Ordering::Relaxed) {
                let mut mset = vec!["MSET".to_owned()];
                for key in noise.iter() {
                    mset.push(key.clone());
                    mset.push("n".to_owned());
                }
                assert_eq!(c.cmd(&mset).await, ok());
            }
        });
    }
    let mut writers = JoinSet::new();
    for writer in 0..2 {
        let keys = keys.clone();
        let body = body.to_owned();
        writers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            for round in 0..ROUNDS {
                let value = format!("w{writer}-{round}");
                let mut args = vec!["EVAL".to_owned(), body.clone()];
                if declared {
                    args.push(keys.len().to_string());
                    args.extend(keys.iter().cloned());
                    args.push(value);
                } else {
                    args.push("0".to_owned());
                    args.push(value);
                    args.extend(keys.iter().cloned());
                }
                assert_eq!(c.cmd(&args).await, int(keys.len() as i64));
            }
        });
    }
    while let Some(result) = writers.join_next().await {
        result.expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    while let Some(result) = background.join_next().await {
        result.expect("reader or noise");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_with_declared_keys_are_atomic() {
    scripts_are_atomic(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_with_undeclared_keys_are_atomic() {
    scripts_are_atomic(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undone_runs_lose_no_increment() {
    // Scripts that increment undeclared counters across shards while MSETs hold those
    // shards: runs that cannot get a shard are undone and run again; the totals are exact.
    const ROUNDS: usize = 150;
    let server = start_server().await;
    let addr = server.addr();
    let counters = Arc::new(keys_over_shards(&server, "ctr:", 8, 4));
    let body = "redis.call('set', 'marker', '1') for i = 1, #ARGV do redis.call('incr', ARGV[i]) end return 1";
    let done = Arc::new(AtomicBool::new(false));
    let noise = {
        let (counters, done) = (counters.clone(), done.clone());
        tokio::spawn(async move {
            let mut c = Raw::connect(addr).await;
            while !done.load(Ordering::Relaxed) {
                // Touches the counters' shards without changing the counters.
                let mut exists = vec!["EXISTS".to_owned()];
                exists.extend(counters.iter().cloned());
                int_of(&c.cmd(&exists).await);
                let mut mset = vec!["MSET".to_owned()];
                for key in counters.iter() {
                    mset.push(format!("{key}:side"));
                    mset.push("x".to_owned());
                }
                assert_eq!(c.cmd(&mset).await, ok());
            }
        })
    };
    let mut writers = JoinSet::new();
    for _ in 0..2 {
        let counters = counters.clone();
        writers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            for _ in 0..ROUNDS {
                let mut args = vec!["EVAL".to_owned(), body.to_owned(), "0".to_owned()];
                args.extend(counters.iter().cloned());
                assert_eq!(c.cmd(&args).await, int(1));
            }
        });
    }
    while let Some(result) = writers.join_next().await {
        result.expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    noise.await.expect("noise");
    let mut c = Raw::connect(addr).await;
    for key in counters.iter() {
        assert_eq!(
            c.cmd(&["GET", key]).await,
            bulk((2 * ROUNDS).to_string()),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_scripts_and_script_kill() {
    let server = start_server().await;
    let mut control = Raw::connect(server.addr()).await;
    assert_eq!(
        control
            .cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"])
            .await,
        ok()
    );
    assert_eq!(
        control.cmd(&["CONFIG", "GET", "lua-time-limit"]).await,
        bulks(&["lua-time-limit", "100"])
    );
    // Connections are dealt to the two connection threads in turn: the script's client and
    // the next one live on different threads.
    let mut looping = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    let body = "while true do end";
    looping.send(&encode(&["EVAL", body, "0"])).await;
    let busy = err(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = other.cmd(&["PING"]).await;
        if reply == busy {
            break;
        }
        assert_eq!(reply, simple("PONG"));
        assert!(Instant::now() < deadline, "never busy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(other.cmd(&["GET", "x"]).await, busy);
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]).await, ok());
    assert_eq!(
        looping.read().await,
        script_err(
            "ERR Script killed by user with SCRIPT KILL...",
            &sha1(body),
            1
        )
    );
    poll_until_reply(
        &mut other,
        &["PING"],
        simple("PONG"),
        Duration::from_secs(10),
    )
    .await;

    // A script that wrote cannot be killed; it runs to its end.
    let body = "redis.call('set','w','1') local t = redis.call('time') \
                while true do for _ = 1, 1000 do end local now = redis.call('time') \
                if (now[1] - t[1]) * 1000000 + (now[2] - t[2]) >= 1000000 then break end end return 'done'";
    looping.send(&encode(&["EVAL", body, "0"])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while other.cmd(&["PING"]).await != busy {
        if Instant::now() > deadline {
            panic!("never busy; the script replied {:?}", looping.read().await);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let unkillable = other.cmd(&["SCRIPT", "KILL"]).await;
    assert!(
        matches!(&unkillable, Frame::Error(text) if text.starts_with(b"UNKILLABLE Sorry the script already executed write commands")),
        "{unkillable:?}"
    );
    assert_eq!(looping.read().await, bulk("done"));
    assert_eq!(other.cmd(&["GET", "w"]).await, bulk("1"));
}

/// With every connection thread inside a busy script, nothing would accept: the main thread
/// takes new connections meanwhile, so they get BUSY and SCRIPT KILL gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_clients_get_busy_while_every_connection_thread_runs_a_script() {
    let server = start_server_with(|config| config.threads = 1).await;
    let mut control = Raw::connect(server.addr()).await;
    assert_eq!(
        control
            .cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"])
            .await,
        ok()
    );
    drop(control);
    let mut looping = Raw::connect(server.addr()).await;
    looping
        .send(&encode(&["EVAL", "while true do end", "0"]))
        .await;
    let busy = err(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    );
    // Once the script is past the threshold, a client that connects now is served.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fresh = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut fresh = Raw::connect(server.addr()).await;
        let reply = fresh.cmd(&["PING"]).await;
        if reply == busy {
            break fresh;
        }
        assert!(Instant::now() < deadline, "never busy: {reply:?}");
    };
    assert_eq!(fresh.cmd(&["SCRIPT", "KILL"]).await, ok());
    assert!(
        matches!(looping.read().await, Frame::Error(text) if text.starts_with(b"ERR Script killed by user")),
    );
    // The connection thread is free again, and so is the fresh client.
    assert_eq!(fresh.cmd(&["PING"]).await, simple("PONG"));
    let mut later = Raw::connect(server.addr()).await;
    assert_eq!(later.cmd(&["PING"]).await, simple("PONG"));
}

#[tokio::test]
async fn script_effects_reach_the_log_as_one_unit_and_replay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_logged_server(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    let body = "redis.call('set', KEYS[1], 'a') redis.call('rpush', KEYS[2], 'x', 'y') \
                redis.call('incrbyfloat', KEYS[3], '1.5') return redis.call('time')[1] ~= nil";
    assert_eq!(c.cmd(&["EVAL", body, "3", "s1", "s2", "s3"]).await, int(1));
    server.shutdown();
    server.stopped().await;
    let text = incr_logs_text(dir.path());
    // Effects, not the script: no EVAL, the float as its result.
    assert!(!text.contains("EVAL"), "{text}");
    let multi = text.find("MULTI").expect("MULTI in the log");
    let exec = text.find("EXEC").expect("EXEC in the log");
    assert!(
        multi < text.find("s1").expect("s1") && text.find("s3").expect("s3") < exec,
        "{text}"
    );
    let server = start_logged_server(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["GET", "s1"]).await, bulk("a"));
    assert_eq!(
        c.cmd(&["LRANGE", "s2", "0", "-1"]).await,
        bulks(&["x", "y"])
    );
    assert_eq!(c.cmd(&["GET", "s3"]).await, bulk("1.5"));
}

#[tokio::test]
async fn the_redis_crate_script_helper_works() {
    let server = start_server().await;
    let mut con = redis_client(server.addr()).await;
    let script = redis::Script::new(
        "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) redis.call('EXPIRE', KEYS[1], 100) return v",
    );
    // The helper tries EVALSHA, gets NOSCRIPT, loads the script and retries.
    let first: i64 = script
        .key("rc")
        .arg(5)
        .invoke_async(&mut con)
        .await
        .expect("script runs");
    let second: i64 = script
        .key("rc")
        .arg(5)
        .invoke_async(&mut con)
        .await
        .expect("script runs again");
    assert_eq!((first, second), (5, 10));
}

#[tokio::test]
async fn scripts_inside_transactions_and_watch() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(
        c.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "m"])
            .await,
        simple("QUEUED")
    );
    assert_eq!(c.cmd(&["INCR", "m"]).await, simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Array(vec![int(1), int(2)]));
    // A script's write invalidates a WATCH like any other.
    assert_eq!(c.cmd(&["WATCH", "m"]).await, ok());
    assert_eq!(
        other
            .cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "m"])
            .await,
        int(3)
    );
    assert_eq!(c.cmd(&["MULTI"]).await, ok());
    assert_eq!(c.cmd(&["GET", "m"]).await, simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]).await, Frame::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_waiting_for_a_busy_scripts_key_gets_busy() {
    let server = start_server().await;
    let mut control = Raw::connect(server.addr()).await;
    assert_eq!(
        control
            .cmd(&["CONFIG", "SET", "busy-reply-threshold", "500"])
            .await,
        ok()
    );
    let mut looping = Raw::connect(server.addr()).await;
    // Holds the shard of `hot` (declared) and never writes.
    looping
        .send(&encode(&[
            "EVAL",
            "redis.call('get', KEYS[1]) while true do end",
            "1",
            "hot",
        ]))
        .await;
    // Once CLIENT LIST shows the script running (CLIENT LIST takes no shard lock)...
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let clients = text_of(&control.cmd(&["CLIENT", "LIST"]).await);
        if clients.contains("cmd=eval") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the script never started:\n{clients}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // (cmd=eval shows a moment before the script holds its shards: give it that moment)
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...this GET waits for the shard the script holds (the threshold is 500 ms away); once
    // the script is busy, the wait gives up and the client gets BUSY instead of hanging
    // with its thread.
    let mut waiting = Raw::connect(server.addr()).await;
    let busy = err(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    );
    assert_eq!(waiting.cmd(&["GET", "hot"]).await, busy);
    assert_eq!(waiting.cmd(&["SCRIPT", "KILL"]).await, ok());
    let killed = looping.read().await;
    assert!(
        matches!(&killed, Frame::Error(text) if text.starts_with(b"ERR Script killed")),
        "{killed:?}"
    );
    assert_eq!(waiting.cmd(&["SET", "hot", "1"]).await, ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_thread_busy_with_a_script_does_not_hang_the_server() {
    let server = start_server_with(|config| config.threads = 1).await;
    let mut control = Raw::connect(server.addr()).await;
    assert_eq!(
        control
            .cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"])
            .await,
        ok()
    );
    let mut looping = Raw::connect(server.addr()).await;
    looping
        .send(&encode(&["EVAL", "while true do end", "0"]))
        .await;
    // The only connection thread runs the script: once it is busy, new connections are
    // served elsewhere, get BUSY, and can stop it.
    let busy = err(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fresh = loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut fresh = Raw::connect(server.addr()).await;
        if fresh.cmd(&["PING"]).await == busy {
            break fresh;
        }
        assert!(Instant::now() < deadline, "never busy");
    };
    assert_eq!(fresh.cmd(&["SCRIPT", "KILL"]).await, ok());
    let killed = looping.read().await;
    assert!(
        matches!(&killed, Frame::Error(text) if text.starts_with(b"ERR Script killed")),
        "{killed:?}"
    );
    // The connection that waited behind the script on its thread is served again.
    assert_eq!(control.cmd(&["PING"]).await, simple("PONG"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_get_a_shard_is_undone_and_run_again() {
    // A script writes its declared key (a string) and an undeclared hash on the same shard,
    // then reaches for a key on a shard another script holds: its run is undone (both values
    // put back as they were) and it runs again holding every shard, once the other is done.
    let server = start_server_with(|config| config.threads = 2).await;
    let db = server.shared().store.db(0).expect("db 0");
    let shard = |key: &str| db.shard_index(key.as_bytes());
    let declared = "undo:k".to_owned();
    let hash = (0..)
        .map(|i| format!("undo:h{i}"))
        .find(|key| shard(key) == shard(&declared))
        .expect("a key on the same shard");
    let elsewhere = (0..)
        .map(|i| format!("undo:o{i}"))
        .find(|key| shard(key) != shard(&declared))
        .expect("a key on another shard");
    let mut setup = Raw::connect(server.addr()).await;
    assert_eq!(setup.cmd(&["SET", &declared, "10"]).await, ok());
    assert_eq!(setup.cmd(&["HSET", &hash, "f", "before"]).await, int(1));
    // Connections are dealt to the two connection threads in turn.
    let mut holder = Raw::connect(server.addr()).await;
    let mut writer = Raw::connect(server.addr()).await;
    let hold = "local s = redis.call('TIME') repeat local n = redis.call('TIME') \
                until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 500000 \
                return redis.call('SET', KEYS[1], 'held')";
    holder.send(&encode(&["EVAL", hold, "1", &elsewhere])).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let body = "local v = redis.call('INCR', KEYS[1]) \
                redis.call('HSET', ARGV[1], 'f', 'run' .. v) \
                return {v, redis.call('GET', ARGV[2]) or false}";
    let reply = writer
        .cmd(&["EVAL", body, "1", &declared, &hash, &elsewhere])
        .await;
    assert_eq!(reply, Frame::Array(vec![int(11), bulk("held")]));
    assert_eq!(holder.read().await, ok());
    assert_eq!(setup.cmd(&["GET", &declared]).await, bulk("11"));
    assert_eq!(setup.cmd(&["HGET", &hash, "f"]).await, bulk("run11"));
}
