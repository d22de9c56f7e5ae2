//! Keyspace notifications of the list and hash commands and of the blocking pops (issue 18),
//! compared with a real redis-server: the same commands against both servers with
//! `notify-keyspace-events KEA`, and every message a subscriber to all keyspace and keyevent
//! channels receives compared in order. Covers each command's events, their order (a move
//! pushes before it pops, `del` comes last) and the cases that change nothing and so send
//! nothing. Skipped (with a notice) when redis-server is not installed.

use std::net::SocketAddr;
use std::time::Duration;

use crate::differential::start_redis_server;
use crate::notifications::notifications_of;
use crate::util::*;

/// Longest a test waits for a server to count a client as blocked.
const SETTLE: Duration = Duration::from_secs(10);

/// The event name of a keyevent message (`__keyevent@0__:lpush` gives `lpush`), if it is one.
fn keyevent_name(message: &Frame) -> Option<String> {
    let items = array_items(message.clone());
    let channel = text_of(items.get(2)?);
    channel
        .strip_prefix("__keyevent@")
        .and_then(|rest| rest.split_once("__:"))
        .map(|(_, event)| event.to_string())
}

#[tokio::test]
async fn list_notifications_match_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    let server = start_server().await;
    let commands: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b", "c"],
        &["LPUSH", "l", "z"],
        &["LPUSHX", "l", "y"],
        &["RPUSHX", "l", "x"],
        &["LPUSHX", "missing", "a"],
        &["RPUSHX", "missing", "a"],
        &["LINSERT", "l", "BEFORE", "a", "q"],
        &["LINSERT", "l", "AFTER", "q", "r"],
        &["LINSERT", "l", "AFTER", "nope", "q"],
        &["LINSERT", "missing", "AFTER", "a", "q"],
        &["LSET", "l", "0", "w"],
        &["LSET", "l", "100", "w"],
        &["LSET", "missing", "0", "w"],
        &["LREM", "l", "0", "nope"],
        &["LREM", "missing", "0", "a"],
        &["LREM", "l", "1", "q"],
        &["LTRIM", "l", "0", "-1"],
        &["LTRIM", "l", "1", "-1"],
        &["LTRIM", "missing", "0", "1"],
        &["LPOP", "l"],
        &["RPOP", "l"],
        &["LPOP", "l", "0"],
        &["LPOP", "l", "2"],
        &["RPOP", "l", "1"],
        &["LPOP", "missing"],
        &["RPOP", "missing", "3"],
        &["RPUSH", "one", "a"],
        &["LPOP", "one"],
        &["RPUSH", "one", "a", "b"],
        &["RPOP", "one", "5"],
        // LMOVE and RPOPLPUSH: the push onto the destination, then the pop, then `del`.
        &["RPUSH", "m", "a", "b", "c", "d"],
        &["LMOVE", "m", "dst", "LEFT", "RIGHT"],
        &["LMOVE", "m", "dst", "RIGHT", "LEFT"],
        &["LMOVE", "m", "m", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "m", "dst"],
        &["RPOPLPUSH", "m", "dst"],
        &["RPOPLPUSH", "m", "dst"],
        &["LMOVE", "missing", "dst", "LEFT", "LEFT"],
        &["RPUSH", "single", "a"],
        &["LMOVE", "single", "single", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "single", "single"],
        &["LMPOP", "2", "missing", "dst", "LEFT", "COUNT", "1"],
        &["LMPOP", "1", "dst", "RIGHT", "COUNT", "2"],
        &["LMPOP", "1", "dst", "RIGHT", "COUNT", "5"],
        &["LMPOP", "1", "dst", "RIGHT"],
        &["RPUSH", "t", "a", "b"],
        &["LTRIM", "t", "5", "10"],
        &["RPUSH", "r", "a", "a"],
        &["LREM", "r", "0", "a"],
        // Errors change nothing and send nothing.
        &["SET", "s", "v"],
        &["LPUSH", "s", "a"],
        &["LPOP", "s"],
        &["LMOVE", "single", "s", "LEFT", "LEFT"],
        &["LTRIM", "s", "0", "1"],
        &["LSET", "s", "0", "a"],
        &["SELECT", "5"],
        &["LPUSH", "other", "a"],
        &["LPOP", "other"],
    ];
    let expected = notifications_of(redis.addr, commands).await;
    assert!(expected.len() > 80, "redis sent {expected:?}");
    assert_eq!(notifications_of(server.addr(), commands).await, expected);
}

#[tokio::test]
async fn hash_notifications_match_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    let server = start_server().await;
    let commands: &[&[&str]] = &[
        &["HSET", "h", "a", "1", "b", "2"],
        &["HSET", "h", "a", "1"],
        &["HMSET", "h", "c", "3"],
        &["HSET", "h", "odd"],
        &["HSETNX", "h", "a", "9"],
        &["HSETNX", "h", "z", "9"],
        &["HSETNX", "new", "z", "9"],
        &["HDEL", "h", "nope"],
        &["HDEL", "missing", "a"],
        &["HDEL", "h", "a", "b"],
        &["HINCRBY", "h", "n", "5"],
        &["HINCRBY", "h", "c", "x"],
        &["HINCRBY", "h", "z", "1"],
        &["HINCRBY", "h", "z", "9223372036854775807"],
        &["HINCRBY", "fresh", "n", "2"],
        &["HINCRBYFLOAT", "h", "f", "1.5"],
        &["HINCRBYFLOAT", "h", "f", "abc"],
        &["HINCRBYFLOAT", "h2", "f", "2.5"],
        &["HSET", "h", "text", "abc"],
        &["HINCRBYFLOAT", "h", "text", "1"],
        &["HDEL", "h", "c", "z", "n", "f", "text", "extra"],
        &["HDEL", "h2", "f", "x"],
        &["HGET", "new", "z"],
        &["SET", "s", "v"],
        &["HSET", "s", "a", "1"],
        &["HDEL", "s", "a"],
        &["HINCRBY", "s", "a", "1"],
        &["SELECT", "2"],
        &["HSET", "other", "a", "1"],
        &["HDEL", "other", "a"],
    ];
    let expected = notifications_of(redis.addr, commands).await;
    assert!(expected.len() > 30, "redis sent {expected:?}");
    assert_eq!(notifications_of(server.addr(), commands).await, expected);
}

/// The blocking pops served at once publish what their non-blocking twins do.
#[tokio::test]
async fn blocking_pops_served_at_once_notify_as_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    let server = start_server().await;
    let commands: &[&[&str]] = &[
        &["RPUSH", "b", "a", "b", "c", "d"],
        &["BLPOP", "missing", "b", "0"],
        &["BRPOP", "b", "0"],
        &["BLMOVE", "b", "bd", "RIGHT", "LEFT", "0"],
        &["BRPOPLPUSH", "bd", "b", "0"],
        &["BLMPOP", "0", "2", "missing", "b", "LEFT", "COUNT", "5"],
        &["RPUSH", "rot", "x"],
        &["BLMOVE", "rot", "rot", "LEFT", "RIGHT", "0"],
        // The sorted sets are filled without notifications (their own events belong to
        // the sorted-set family): only the pops' events are compared here.
        &["CONFIG", "SET", "notify-keyspace-events", ""],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
        &["BZPOPMIN", "missing", "z", "0"],
        &["BZPOPMAX", "z", "0"],
        &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "1"],
        &["BZMPOP", "0", "2", "missing", "z", "MAX", "COUNT", "3"],
    ];
    let expected = notifications_of(redis.addr, commands).await;
    assert!(expected.len() > 25, "redis sent {expected:?}");
    assert_eq!(notifications_of(server.addr(), commands).await, expected);
}

/// What the blocked clients of [`notifications_with_blocked`] were answered, and every
/// keyspace message published meanwhile.
type BlockedRun = (Vec<Frame>, Vec<Frame>);

/// Runs `setup`, then sends each of `blocking` on a connection of its own and waits until
/// the server counts it blocked, then runs `serving`; returns the keyspace notifications
/// (as [`notifications_of`] collects them) and the blocked clients' replies, in order.
async fn notifications_with_blocked(
    addr: SocketAddr,
    blocking: &[&[&str]],
    serving: &[&[&str]],
) -> BlockedRun {
    let mut control = Raw::connect(addr).await;
    let mut clients = Vec::new();
    for (i, command) in blocking.iter().enumerate() {
        let mut client = Raw::connect(addr).await;
        client.send(&encode(command)).await;
        let deadline = std::time::Instant::now() + SETTLE;
        loop {
            let info = text_of(&control.cmd(&["INFO", "clients"]).await);
            let count = info_field(&info, "blocked_clients").expect("blocked_clients in INFO");
            if count == (i + 1).to_string() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{command:?} not blocked"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        clients.push(client);
    }
    let messages = notifications_of(addr, serving).await;
    let mut replies = Vec::new();
    for client in &mut clients {
        replies.push(client.read().await);
    }
    (messages, replies)
}

/// A client served later by a push publishes its pop's events right after the push's, as in
/// Redis (a served move also its push onto the destination, which may serve another client).
#[tokio::test]
async fn blocking_pops_served_later_notify_as_redis() {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    let server = start_server().await;
    let blocking: &[&[&str]] = &[
        &["BLPOP", "w1", "0"],
        &["BLPOP", "w2", "0"],
        &["BLMOVE", "w3", "w3d", "LEFT", "RIGHT", "0"],
        &["BLMPOP", "0", "1", "w4", "RIGHT", "COUNT", "3"],
        &["BRPOPLPUSH", "w5", "w5", "0"],
        &["BLPOP", "chained", "0"],
        &["BRPOP", "wrong", "0"],
        &["BZPOPMIN", "z1", "0"],
        &["BZMPOP", "0", "1", "z2", "MAX", "COUNT", "3"],
    ];
    let serving: &[&[&str]] = &[
        &["RPUSH", "w1", "x"],
        &["RPUSH", "w2", "x", "y"],
        &["RPUSH", "w3", "x"],
        &["RPUSH", "w4", "x", "y"],
        &["RPUSH", "w5", "x"],
        // The destination of this move serves the BLPOP on it.
        &["LMOVE", "w3d", "chained", "LEFT", "LEFT"],
        &["SET", "wrong", "string"],
        &["DEL", "wrong"],
        &["LPUSH", "wrong", "a", "b"],
        &["ZADD", "z1", "1", "x", "2", "y"],
        &["ZADD", "z2", "1", "x", "2", "y"],
    ];
    // ZADD's own `zadd` belongs to the sorted-set family: left out of the comparison.
    let pops_only = |(messages, replies): BlockedRun| -> BlockedRun {
        let messages = messages
            .into_iter()
            .filter(|m| keyevent_name(m).as_deref() != Some("zadd"))
            .filter(|m| {
                let items = array_items(m.clone());
                items.get(3).map(text_of).as_deref() != Some("zadd")
            })
            .collect();
        (messages, replies)
    };
    let expected = pops_only(notifications_with_blocked(redis.addr, blocking, serving).await);
    assert!(
        expected.0.contains(&bulks(&[
            "pmessage",
            "__key*__:*",
            "__keyevent@0__:lpop",
            "chained"
        ])),
        "redis sent {expected:?}"
    );
    assert!(expected.0.len() > 40, "redis sent {expected:?}");
    let actual = pops_only(notifications_with_blocked(server.addr(), blocking, serving).await);
    assert_eq!(actual, expected);
}
