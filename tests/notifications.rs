//! Keyspace notifications (issue 18) compared with a real redis-server: the same commands
//! against both servers, with `notify-keyspace-events KEA`, and every message a subscriber
//! to all keyspace and keyevent channels receives compared in order. Skipped (with a
//! notice) when redis-server is not installed.

use std::net::SocketAddr;
use std::time::Duration;

use crate::differential::start_redis_server;
use crate::util::*;

/// The keyspace notifications a sequence of commands publishes, as a subscriber to every
/// keyspace and keyevent channel receives them. A `SLEEP ms` line pauses.
pub(crate) async fn notifications_of(addr: SocketAddr, commands: &[&[&str]]) -> Vec<Frame> {
    notifications_with(addr, "KEA", commands).await
}

/// [`notifications_of`] with `notify-keyspace-events` set to `classes`.
async fn notifications_with(addr: SocketAddr, classes: &str, commands: &[&[&str]]) -> Vec<Frame> {
    let mut subscriber = Raw::connect(addr).await;
    let mut c = Raw::connect(addr).await;
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", classes])
            .await,
        ok()
    );
    subscriber.cmd(&["PSUBSCRIBE", "__key*__:*"]).await;
    subscriber.cmd(&["SUBSCRIBE", "end-of-test"]).await;
    for command in commands {
        if let ["SLEEP", ms] = command {
            let ms = ms.parse().expect("milliseconds");
            tokio::time::sleep(Duration::from_millis(ms)).await;
            continue;
        }
        c.cmd(command).await;
    }
    c.cmd(&["PUBLISH", "end-of-test", "x"]).await;
    let mut messages = Vec::new();
    loop {
        let message = subscriber.read().await;
        if message == bulks(&["message", "end-of-test", "x"]) {
            return messages;
        }
        messages.push(message);
    }
}

#[tokio::test]
async fn keyspace_notifications_match_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    let server = start_server().await;
    // The families kvstore notifies so far: strings and the generic key commands below.
    let commands: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["SET", "k", "v", "EX", "100"],
        &["SET", "k", "w", "NX"],
        &["SET", "k", "w", "KEEPTTL"],
        &["SETNX", "k2", "v"],
        &["SETNX", "k2", "v"],
        &["SETEX", "k3", "10", "v"],
        &["PSETEX", "k4", "10000", "v"],
        &["MSET", "a", "1", "b", "2"],
        &["MSETNX", "a", "1", "c", "3"],
        &["MSETNX", "c", "3", "d", "4"],
        &["GETSET", "a", "5"],
        &["APPEND", "a", "x"],
        &["APPEND", "new", "x"],
        &["INCR", "n"],
        &["INCRBY", "n", "5"],
        &["DECR", "n"],
        &["DECRBY", "n", "2"],
        &["INCR", "a"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["EXPIRE", "k", "100"],
        &["EXPIRE", "k", "100", "NX"],
        &["PEXPIRE", "k2", "5000"],
        &["EXPIREAT", "k3", "1"],
        &["EXPIRE", "missing", "10"],
        &["PERSIST", "k"],
        &["PERSIST", "k"],
        &["DEL", "k", "k2", "missing"],
        &["UNLINK", "b"],
        &["SET", "r", "1"],
        &["RENAME", "r", "r2"],
        &["RENAME", "r2", "r2"],
        &["RENAMENX", "r2", "r3"],
        &["SET", "r4", "1"],
        &["RENAMENX", "r3", "r4"],
        &["COPY", "r3", "r5"],
        &["COPY", "r3", "r5"],
        &["COPY", "r3", "r5", "REPLACE"],
        &["COPY", "r3", "r5", "DB", "2"],
        &["GETDEL", "r5"],
        &["GETDEL", "r5"],
        &["SET", "g", "1"],
        &["GETEX", "g", "EX", "100"],
        &["GETEX", "g", "PERSIST"],
        &["GETEX", "g", "PERSIST"],
        &["GETEX", "g"],
        &["GETEX", "g", "PXAT", "1"],
        &["SETRANGE", "h", "0", "x"],
        &["SETRANGE", "h", "0", ""],
        &["SETRANGE", "hh", "5", ""],
        &["SELECT", "3"],
        &["SET", "other", "v"],
        &["DEL", "other"],
    ];
    let expected = notifications_of(redis.addr, commands).await;
    assert!(expected.len() > 40, "redis sent {expected:?}");
    assert_eq!(notifications_of(server.addr(), commands).await, expected);
}

/// `new` (n) when a write creates a key, `keymiss` (m) when a read finds none: the two
/// classes `A` leaves out.
#[tokio::test]
async fn new_key_and_key_miss_notifications_match_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    let server = start_server().await;
    let commands: &[&[&str]] = &[
        &["SET", "s", "1"],
        &["SET", "s", "2"],
        &["GET", "s"],
        &["GET", "nothing"],
        &["MGET", "s", "m1", "m2"],
        &["EXISTS", "m3"],
        &["TYPE", "m4"],
        &["STRLEN", "m5"],
        &["GETRANGE", "m6", "0", "1"],
        &["INCR", "n"],
        &["INCR", "n"],
        &["APPEND", "ap", "x"],
        &["SETRANGE", "sr", "2", "x"],
        &["MSET", "s", "3", "ms", "1"],
        &["SETNX", "nx", "1"],
        &["GETSET", "gs", "1"],
        &["GETDEL", "m7"],
        &["LPUSH", "l", "a"],
        &["RPUSH", "l", "b"],
        &["LRANGE", "m8", "0", "-1"],
        &["LLEN", "m9"],
        &["LPOP", "m10"],
        &["HSET", "h", "f", "v"],
        &["HGET", "h", "f"],
        &["HGET", "m11", "f"],
        &["HGETALL", "m12"],
        &["SADD", "st", "a"],
        &["SMEMBERS", "m13"],
        &["SISMEMBER", "m14", "a"],
        &["ZADD", "z", "1", "a"],
        &["ZRANGE", "m15", "0", "-1"],
        &["ZSCORE", "m16", "a"],
        &["RENAME", "s", "renamed"],
        &["COPY", "renamed", "copied"],
        &["LMOVE", "l", "moved", "LEFT", "LEFT"],
        &["SUNIONSTORE", "union", "st", "m17"],
        &["TTL", "m18"],
        &["DEL", "m19"],
        &["EXPIRE", "m20", "10"],
        &["OBJECT", "ENCODING", "m21"],
        &["TYPE", "m22"],
        &["SET", "m23", "1", "GET"],
        &["COPY", "m24", "y"],
        &["SINTERSTORE", "d", "st", "m25"],
        &["SUNION", "st", "m26"],
        &["ZUNIONSTORE", "d", "2", "z", "m27"],
        &["GETEX", "m28"],
        &["HMGET", "m29", "f"],
        &["LINDEX", "m30", "0"],
        &["SSCAN", "m31", "0"],
        &["ZMSCORE", "m32", "a"],
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "m33"],
        &["SMOVE", "m34", "st", "a"],
        &["OBJECT", "FREQ", "m35"],
    ];
    let expected = notifications_with(redis.addr, "KEnm", commands).await;
    assert!(expected.len() > 20, "redis sent {expected:?}");
    let ours = notifications_with(server.addr(), "KEnm", commands).await;
    if ours != expected {
        let show = |frames: &[Frame]| -> Vec<String> {
            frames
                .iter()
                .map(|f| {
                    let items = array_items(f.clone());
                    format!("{} {}", text_of(&items[2]), text_of(&items[3]))
                })
                .collect()
        };
        eprintln!("redis:   {:?}\nkvstore: {:?}", show(&expected), show(&ours));
    }
    for (i, (a, b)) in expected.iter().zip(&ours).enumerate() {
        assert_eq!(a, b, "message {i} (redis first)");
    }
    assert_eq!(ours.len(), expected.len());
}

#[tokio::test]
async fn expiry_notifications_match_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    let server = start_server().await;
    // One key expires while nobody looks (the active cycle, or the GET's lazy check if the
    // cycle has not reached it: either way one `expired`), one is found expired by a write.
    // One key at a time: in which order one cycle expires two keys is not specified.
    let commands: &[&[&str]] = &[
        &["SET", "soon", "v", "PX", "20"],
        &["SLEEP", "300"],
        &["GET", "soon"],
        &["SET", "later", "v", "PX", "20"],
        &["SLEEP", "300"],
        &["SET", "later", "again"],
    ];
    let expected = notifications_of(redis.addr, commands).await;
    assert!(
        expected.contains(&bulks(&[
            "pmessage",
            "__key*__:*",
            "__keyevent@0__:expired",
            "soon"
        ])),
        "redis sent {expected:?}"
    );
    assert_eq!(notifications_of(server.addr(), commands).await, expected);
}
