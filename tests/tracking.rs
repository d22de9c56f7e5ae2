//! Client-side caching (CLIENT TRACKING, issue 18): invalidation messages over raw RESP2 and
//! RESP3 connections. The scenarios run against kvstore and, when it is installed, against a
//! real redis-server, and every reply and push must match (client ids aside). The other
//! tests cover what a comparison cannot: expiry, the table's bound, and concurrent readers
//! and writers never leaving a cached value stale.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use protocol::Frame;

use crate::differential::start_redis_server;
use crate::util::*;

/// Named connections and the transcript of what they sent and received, with client ids
/// replaced by connection names so that two servers' transcripts compare.
struct Scenario {
    addr: SocketAddr,
    conns: HashMap<&'static str, Raw>,
    ids: HashMap<i64, &'static str>,
    transcript: Vec<String>,
}

impl Scenario {
    fn new(addr: SocketAddr) -> Scenario {
        Scenario {
            addr,
            conns: HashMap::new(),
            ids: HashMap::new(),
            transcript: Vec::new(),
        }
    }

    /// Opens connection `name` (RESP3 if asked) and learns its client id.
    async fn open(&mut self, name: &'static str, resp3: bool) {
        let mut c = Raw::connect(self.addr).await;
        if resp3 {
            c.cmd(&["HELLO", "3"]).await;
        }
        let id = int_of(&c.cmd(&["CLIENT", "ID"]).await);
        self.ids.insert(id, name);
        self.conns.insert(name, c);
    }

    fn conn(&mut self, name: &str) -> &mut Raw {
        self.conns.get_mut(name).expect("connection opened")
    }

    fn id_of(&self, name: &str) -> String {
        self.ids
            .iter()
            .find(|(_, n)| **n == name)
            .map(|(id, _)| id.to_string())
            .expect("known connection")
    }

    /// Runs a command on `name` (`@x` arguments become connection x's id) and records the
    /// reply (with ids as names where the reply is an id: GETREDIR, TRACKINGINFO).
    async fn run(&mut self, name: &'static str, args: &[&str]) {
        let sent: Vec<String> = args
            .iter()
            .map(|arg| match arg.strip_prefix('@') {
                Some(conn) => self.id_of(conn),
                None => (*arg).to_owned(),
            })
            .collect();
        let c = self.conn(name);
        c.send(&encode(&sent)).await;
        // Pushes that arrive first are messages, not the reply.
        let mut pushes = Vec::new();
        let reply = loop {
            match c.read().await {
                Frame::Push(items) if items.first() != Some(&bulk("pong")) => {
                    pushes.push(Frame::Push(items))
                }
                reply => break reply,
            }
        };
        for push in pushes {
            let line = format!("{name} << {}", self.show(&push, true));
            self.transcript.push(line);
        }
        let names_ids = args.len() == 2 && args[0] == "CLIENT";
        let line = format!(
            "{name}> {}: {}",
            args.join(" "),
            self.show(&reply, names_ids)
        );
        self.transcript.push(line);
    }

    /// Records the messages waiting for `name`: a PING's reply follows everything delivered
    /// before it was sent.
    async fn sync(&mut self, name: &'static str) {
        let c = self.conn(name);
        c.send(&encode(&["PING"])).await;
        let mut messages = Vec::new();
        loop {
            let frame = c.read().await;
            let pong = frame == simple("PONG") || frame == bulks(&["pong", ""]);
            if pong {
                break;
            }
            messages.push(frame);
        }
        for frame in messages {
            let line = format!("{name} << {}", self.show(&frame, true));
            self.transcript.push(line);
        }
    }

    async fn close(&mut self, name: &str) {
        if let Some(mut c) = self.conns.remove(name) {
            assert_eq!(c.cmd(&["QUIT"]).await, ok());
            c.expect_closed().await;
        }
    }

    /// A frame as text; with `names_ids`, integers that are client ids show as `id(name)`.
    fn show(&self, frame: &Frame, names_ids: bool) -> String {
        let all = |items: &[Frame]| {
            let shown: Vec<String> = items.iter().map(|f| self.show(f, names_ids)).collect();
            shown.join(", ")
        };
        match frame {
            Frame::Integer(n) => match self.ids.get(n) {
                Some(name) if names_ids => format!("id({name})"),
                _ => format!("{n}"),
            },
            Frame::Simple(text) => format!("+{}", String::from_utf8_lossy(text)),
            Frame::Error(text) => format!("-{}", String::from_utf8_lossy(text)),
            Frame::Bulk(data) => format!("{:?}", String::from_utf8_lossy(data)),
            Frame::Null => "nil".to_owned(),
            Frame::Array(items) => format!("[{}]", all(items)),
            Frame::Set(items) => format!("~[{}]", all(items)),
            Frame::Push(items) => format!(">[{}]", all(items)),
            Frame::Map(pairs) => {
                let shown: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| {
                        format!("{}: {}", self.show(k, names_ids), self.show(v, names_ids))
                    })
                    .collect();
                format!("{{{}}}", shown.join(", "))
            }
            other => format!("{other:?}"),
        }
    }
}

/// Runs `scenario` against kvstore and redis-server (when installed) and compares the
/// transcripts line by line.
async fn compare_with_redis<F, Fut>(scenario: F)
where
    F: Fn(Scenario) -> Fut,
    Fut: std::future::Future<Output = Scenario>,
{
    let server = start_server().await;
    let ours = scenario(Scenario::new(server.addr())).await.transcript;
    assert!(ours.len() > 5, "the scenario ran: {ours:?}");
    let Some(redis) = start_redis_server().await else {
        eprintln!("redis-server not installed: tracking transcript not compared");
        return;
    };
    let theirs = scenario(Scenario::new(redis.addr)).await.transcript;
    if theirs != ours {
        // Both transcripts side by side, differing lines marked, for the failure's reader.
        for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
            let mark = if a == b { ' ' } else { '!' };
            eprintln!("{i:3} {mark} redis:   {a}\n          kvstore: {b}");
        }
    }
    for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(a, b, "line {i} differs (redis first, kvstore second)");
    }
    assert_eq!(theirs.len(), ours.len(), "transcript lengths");
}

#[tokio::test]
async fn default_mode_invalidations_match_redis() {
    compare_with_redis(|mut s| async move {
        s.open("w", false).await;
        s.open("c", true).await;
        s.run("w", &["FLUSHALL"]).await;
        s.sync("c").await;
        s.run("c", &["CLIENT", "TRACKING", "ON"]).await;
        s.run("c", &["CLIENT", "TRACKINGINFO"]).await;
        s.run("c", &["CLIENT", "GETREDIR"]).await;
        // Reads record keys; one change, one message; the next change, none.
        s.run("c", &["MGET", "k1", "k2", "k3"]).await;
        s.run("c", &["HGETALL", "h"]).await;
        s.run("c", &["EXISTS", "k4"]).await;
        s.run("w", &["SET", "k1", "a"]).await;
        s.run("w", &["MSET", "k2", "b", "k3", "c"]).await;
        s.sync("c").await;
        s.run("w", &["SET", "k1", "again"]).await;
        s.run("w", &["HSET", "h", "f", "v"]).await;
        s.run("w", &["DEL", "k4"]).await;
        s.sync("c").await;
        // Its own writes: the invalidation follows the reply.
        s.run("c", &["GET", "k1"]).await;
        s.run("c", &["APPEND", "k1", "x"]).await;
        s.run("c", &["GET", "k1"]).await;
        // Changes through every path that changes keys.
        s.run("c", &["LRANGE", "l", "0", "-1"]).await;
        s.run("c", &["SMEMBERS", "s"]).await;
        s.run("c", &["ZRANGE", "z", "0", "-1"]).await;
        s.run("c", &["GET", "n"]).await;
        s.run("c", &["GET", "src"]).await;
        s.run("c", &["GET", "dst"]).await;
        s.run("w", &["RPUSH", "l", "1", "2"]).await;
        s.run("w", &["SADD", "s", "m"]).await;
        s.run("w", &["ZADD", "z", "1", "m"]).await;
        s.run("w", &["INCRBYFLOAT", "n", "1.5"]).await;
        s.run("w", &["SET", "src", "v"]).await;
        s.run("w", &["COPY", "src", "dst"]).await;
        s.sync("c").await;
        s.run("c", &["GET", "src"]).await;
        s.run("c", &["GET", "dst"]).await;
        s.run("w", &["RENAME", "src", "dst"]).await;
        s.sync("c").await;
        s.run("c", &["GET", "e"]).await;
        s.run("w", &["SET", "e", "1"]).await;
        s.run("c", &["GET", "e"]).await;
        s.run("w", &["EXPIRE", "e", "100"]).await;
        s.run("c", &["GET", "e"]).await;
        s.run("w", &["PERSIST", "e"]).await;
        s.sync("c").await;
        // Keys are names across databases.
        s.run("c", &["GET", "shared"]).await;
        s.run("w", &["SELECT", "3"]).await;
        s.run("w", &["SET", "shared", "x"]).await;
        s.run("w", &["SELECT", "0"]).await;
        s.sync("c").await;
        // Transactions: reads inside EXEC are recorded. (Scripts differ between Redis 7.0
        // and 7.2: `scripts_record_the_keys_their_reads_touch`.)
        s.run("c", &["MULTI"]).await;
        s.run("c", &["GET", "t1"]).await;
        s.run("c", &["EXEC"]).await;
        s.run("w", &["MSET", "t1", "1"]).await;
        s.sync("c").await;
        // FLUSHALL tells every tracking client to drop everything.
        s.run("c", &["GET", "k1"]).await;
        s.run("w", &["FLUSHALL"]).await;
        s.sync("c").await;
        s.run("w", &["SET", "k1", "after flush"]).await;
        s.sync("c").await;
        // OFF: nothing more; its old entries are skipped.
        s.run("c", &["GET", "k1"]).await;
        s.run("c", &["CLIENT", "TRACKING", "OFF"]).await;
        s.run("w", &["SET", "k1", "off"]).await;
        s.sync("c").await;
        s.run("c", &["CLIENT", "TRACKINGINFO"]).await;
        s.run("c", &["CLIENT", "GETREDIR"]).await;
        s
    })
    .await;
}

#[tokio::test]
async fn optin_optout_noloop_and_errors_match_redis() {
    compare_with_redis(|mut s| async move {
        s.open("w", false).await;
        s.open("c", true).await;
        s.run("w", &["FLUSHALL"]).await;
        s.sync("c").await;
        s.run("c", &["CLIENT", "CACHING", "yes"]).await;
        s.run("c", &["CLIENT", "TRACKING", "ON", "OPTIN", "NOLOOP"])
            .await;
        s.run("c", &["CLIENT", "TRACKINGINFO"]).await;
        s.run("c", &["GET", "a"]).await;
        s.run("c", &["CLIENT", "CACHING", "yes"]).await;
        s.run("c", &["CLIENT", "TRACKINGINFO"]).await;
        s.run("c", &["CLIENT", "ID"]).await;
        s.run("c", &["GET", "b"]).await;
        s.run("c", &["GET", "c"]).await;
        s.run("w", &["MSET", "a", "1", "b", "2", "c", "3"]).await;
        s.sync("c").await;
        // CACHING YES before MULTI covers the whole transaction.
        s.run("c", &["CLIENT", "CACHING", "yes"]).await;
        s.run("c", &["MULTI"]).await;
        s.run("c", &["GET", "m1"]).await;
        s.run("c", &["GET", "m2"]).await;
        s.run("c", &["EXEC"]).await;
        s.run("c", &["GET", "m3"]).await;
        s.run("w", &["MSET", "m1", "1", "m2", "2", "m3", "3"]).await;
        s.sync("c").await;
        // NOLOOP: no message for its own change, and the key is forgotten.
        s.run("c", &["CLIENT", "CACHING", "yes"]).await;
        s.run("c", &["GET", "own"]).await;
        s.run("c", &["SET", "own", "1"]).await;
        s.run("w", &["SET", "own", "2"]).await;
        s.sync("c").await;
        s.run("c", &["CLIENT", "CACHING", "no"]).await;
        s.run("c", &["CLIENT", "CACHING", "maybe"]).await;
        s.run("c", &["CLIENT", "TRACKING", "ON", "OPTOUT"]).await;
        s.run("c", &["CLIENT", "TRACKING", "ON", "BCAST"]).await;
        s.run("c", &["CLIENT", "TRACKING", "OFF"]).await;
        s.run("c", &["CLIENT", "CACHING", "yes"]).await;
        s.run("c", &["CLIENT", "TRACKING", "ON", "OPTOUT"]).await;
        s.run("c", &["GET", "o1"]).await;
        s.run("c", &["CLIENT", "CACHING", "no"]).await;
        s.run("c", &["GET", "o2"]).await;
        s.run("c", &["CLIENT", "CACHING", "yes"]).await;
        s.run("c", &["CLIENT", "TRACKINGINFO"]).await;
        s.run("w", &["MSET", "o1", "1", "o2", "2"]).await;
        s.sync("c").await;
        s.run("c", &["CLIENT", "TRACKING", "OFF"]).await;
        // Option errors, in Redis's order.
        for args in [
            &["CLIENT", "TRACKING", "ON", "PREFIX", "a"][..],
            &["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"],
            &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"],
            &["CLIENT", "TRACKING", "MAYBE"],
            &["CLIENT", "TRACKING", "ON", "FOO"],
            &["CLIENT", "TRACKING", "ON", "REDIRECT"],
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "x"],
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"],
            &[
                "CLIENT", "TRACKING", "ON", "REDIRECT", "@w", "REDIRECT", "@w",
            ],
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a",
            ],
            &["CLIENT", "TRACKING"],
            &["CLIENT", "CACHING"],
            &["CLIENT", "GETREDIR", "x"],
            &["CLIENT", "TRACKINGINFO", "x"],
        ] {
            s.run("c", args).await;
        }
        s
    })
    .await;
}

#[tokio::test]
async fn bcast_and_redirect_match_redis() {
    compare_with_redis(|mut s| async move {
        s.open("w", false).await;
        s.open("b", true).await;
        s.open("r2", false).await;
        s.open("t2", false).await;
        s.open("r3", true).await;
        s.open("t3", false).await;
        s.run("w", &["FLUSHALL"]).await;
        // BCAST: prefixes, grouped and sorted keys, NOLOOP, added prefixes, overlaps.
        s.run(
            "b",
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "cd", "NOLOOP",
            ],
        )
        .await;
        s.run("b", &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "abc"])
            .await;
        s.run("b", &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x"])
            .await;
        s.run("b", &["CLIENT", "TRACKINGINFO"]).await;
        s.run(
            "w",
            &["MSET", "abz", "1", "cdz", "2", "abq", "3", "zz", "4"],
        )
        .await;
        s.run("b", &["SET", "ab-own", "1"]).await;
        // (A DEL naming missing keys beside existing ones also invalidates the missing ones
        // here, a documented difference: SPEC 6.14.)
        s.run("w", &["DEL", "abz"]).await;
        s.sync("b").await;
        s.run("w", &["FLUSHDB"]).await;
        s.sync("b").await;
        // RESP2 through a redirect: messages on __redis__:invalidate to a subscriber.
        s.run("r2", &["SUBSCRIBE", "__redis__:invalidate"]).await;
        s.run("t2", &["CLIENT", "TRACKING", "ON", "REDIRECT", "@r2"])
            .await;
        s.run("t2", &["CLIENT", "GETREDIR"]).await;
        s.run("t2", &["GET", "k"]).await;
        s.run("w", &["SET", "k", "1"]).await;
        s.sync("r2").await;
        s.run("t2", &["GET", "k"]).await;
        s.run("w", &["FLUSHALL"]).await;
        s.sync("r2").await;
        // A RESP3 target gets pushes without subscribing.
        s.run("t3", &["CLIENT", "TRACKING", "ON", "REDIRECT", "@r3"])
            .await;
        s.run("t3", &["GET", "q"]).await;
        s.run("w", &["SET", "q", "1"]).await;
        s.sync("r3").await;
        // The target goes: the tracking client is told (RESP3 only) and flagged.
        s.open("c3", true).await;
        s.run("c3", &["CLIENT", "TRACKING", "ON", "REDIRECT", "@r2"])
            .await;
        s.run("c3", &["GET", "gone"]).await;
        s.close("r2").await;
        s.run("w", &["SET", "gone", "1"]).await;
        s.sync("c3").await;
        s.run("c3", &["CLIENT", "TRACKINGINFO"]).await;
        s.run("c3", &["RESET"]).await;
        s.run("c3", &["CLIENT", "TRACKINGINFO"]).await;
        s
    })
    .await;
}

/// A script's reads are recorded command by command, as Redis 7.2 does (7.0 recorded the
/// script's declared keys on each read-only call, whatever it read).
#[tokio::test]
async fn scripts_record_the_keys_their_reads_touch() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "ON"]).await, ok());
    let script = "redis.call('get', 'inner'); return redis.call('exists', KEYS[1])";
    assert_eq!(c.cmd(&["EVAL", script, "1", "declared"]).await, int(0));
    // EVAL_RO's declared keys count only if the script reads them.
    let read_nothing = "return 1";
    assert_eq!(
        c.cmd(&["EVAL_RO", read_nothing, "1", "unread"]).await,
        int(1)
    );
    // A write inside a script invalidates like any other.
    assert_eq!(c.cmd(&["GET", "scripted"]).await, nil());
    let mut w = Raw::connect(server.addr()).await;
    assert_eq!(
        w.cmd(&[
            "EVAL",
            "return redis.call('set', KEYS[1], 'v')",
            "1",
            "scripted"
        ])
        .await,
        ok()
    );
    assert_eq!(
        w.cmd(&["MSET", "inner", "1", "declared", "2", "unread", "3"])
            .await,
        ok()
    );
    c.send(&encode(&["PING"])).await;
    let mut told = Vec::new();
    loop {
        match c.read().await {
            Frame::Push(items) => told.extend(sorted_bulks(items[1].clone())),
            frame if frame == simple("PONG") => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    told.sort();
    assert_eq!(told, [&b"declared"[..], b"inner", b"scripted"]);
}

/// The null of a flush is written in the tracking client's protocol, even inside a RESP3
/// target's push (Redis's exact bytes).
#[tokio::test]
async fn flush_invalidation_bytes_follow_redis() {
    let server = start_server().await;
    let mut target = Raw::connect(server.addr()).await;
    target.cmd(&["HELLO", "3"]).await;
    let target_id = int_of(&target.cmd(&["CLIENT", "ID"]).await).to_string();
    let mut tracker = Raw::connect(server.addr()).await;
    assert_eq!(
        tracker
            .cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", &target_id])
            .await,
        ok()
    );
    let mut writer = Raw::connect(server.addr()).await;
    assert_eq!(writer.cmd(&["FLUSHALL"]).await, ok());
    let expected = b">2\r\n$10\r\ninvalidate\r\n$-1\r\n";
    assert_eq!(target.read_exact_bytes(expected.len()).await, expected);
}

#[tokio::test]
async fn expiry_invalidates_cached_keys() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "ON"]).await, ok());
    let mut w = Raw::connect(server.addr()).await;
    assert_eq!(w.cmd(&["SET", "short", "v", "PX", "200"]).await, ok());
    assert_eq!(c.cmd(&["GET", "short"]).await, bulk("v"));
    // Nobody touches the key: the active expiry cycle removes it and the client is told.
    let push = c.read().await;
    assert_eq!(
        push,
        Frame::Push(vec![bulk("invalidate"), bulks(&["short"])])
    );
    // A read just past the deadline (usually before the active cycle gets there: lazy
    // expiry) tells it too.
    assert_eq!(w.cmd(&["SET", "lazy", "v", "PX", "50"]).await, ok());
    assert_eq!(c.cmd(&["GET", "lazy"]).await, bulk("v"));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(w.cmd(&["EXISTS", "lazy"]).await, int(0));
    assert_eq!(
        c.read().await,
        Frame::Push(vec![bulk("invalidate"), bulks(&["lazy"])])
    );
}

#[tokio::test]
async fn table_stays_within_tracking_table_max_keys() {
    let server = start_server().await;
    let mut admin = Raw::connect(server.addr()).await;
    assert_eq!(
        admin
            .cmd(&["CONFIG", "SET", "tracking-table-max-keys", "10"])
            .await,
        ok()
    );
    assert_eq!(
        admin
            .cmd(&["CONFIG", "GET", "tracking-table-max-keys"])
            .await,
        bulks(&["tracking-table-max-keys", "10"])
    );
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "ON"]).await, ok());
    let keys: Vec<String> = (0..100).map(|i| format!("key:{i}")).collect();
    let mut mget = vec!["MGET".to_owned()];
    mget.extend(keys.iter().cloned());
    c.send(&encode(&mget)).await;
    c.send(&encode(&["PING"])).await;
    // The reply, then one invalidation per key dropped from the table, then PONG.
    let mut dropped = Vec::new();
    let mut replied = false;
    loop {
        match c.read().await {
            Frame::Push(items) => {
                assert_eq!(items[0], bulk("invalidate"));
                dropped.extend(sorted_bulks(items[1].clone()));
            }
            Frame::Array(items) if !replied => {
                assert_eq!(items.len(), 100);
                replied = true;
            }
            frame if frame == simple("PONG") => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(replied);
    assert_eq!(dropped.len(), 90, "100 keys read, 10 kept");
    let info = text_of(&admin.cmd(&["INFO", "stats"]).await);
    assert_eq!(
        info_field(&info, "tracking_total_keys").as_deref(),
        Some("10")
    );
    assert_eq!(
        info_field(&info, "tracking_total_items").as_deref(),
        Some("10")
    );
    let clients = text_of(&admin.cmd(&["INFO", "clients"]).await);
    assert_eq!(
        info_field(&clients, "tracking_clients").as_deref(),
        Some("1")
    );
    // Lowering the bound drops keys at once.
    assert_eq!(
        admin
            .cmd(&["CONFIG", "SET", "tracking-table-max-keys", "4"])
            .await,
        ok()
    );
    let info = text_of(&admin.cmd(&["INFO", "stats"]).await);
    assert_eq!(
        info_field(&info, "tracking_total_keys").as_deref(),
        Some("4")
    );
    // Exactly the kept keys are still tracked: writing every key tells about those 4.
    let mut mset = vec!["MSET".to_owned()];
    for key in &keys {
        mset.push(key.clone());
        mset.push("v".to_owned());
    }
    admin.cmd(&mset).await;
    c.send(&encode(&["PING"])).await;
    let mut later = Vec::new();
    loop {
        match c.read().await {
            Frame::Push(items) => later.extend(sorted_bulks(items[1].clone())),
            frame if frame == simple("PONG") => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(later.len(), 10, "6 dropped by the lower bound, 4 changed");
    let dropped: std::collections::HashSet<_> = dropped.into_iter().collect();
    assert!(later.iter().all(|key| !dropped.contains(key)));
}

#[tokio::test]
async fn client_list_shows_tracking_flags_and_redirect() {
    let server = start_server().await;
    let mut target = Raw::connect(server.addr()).await;
    let target_id = int_of(&target.cmd(&["CLIENT", "ID"]).await);
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    let line = |frame: Frame| text_of(&frame);
    assert!(line(c.cmd(&["CLIENT", "INFO"]).await).contains(" flags=N "));
    assert!(line(c.cmd(&["CLIENT", "INFO"]).await).contains(" redir=-1 "));
    c.cmd(&["CLIENT", "TRACKING", "ON", "BCAST"]).await;
    let info = line(c.cmd(&["CLIENT", "INFO"]).await);
    assert!(
        info.contains(" flags=tB ") && info.contains(" redir=0 "),
        "{info}"
    );
    c.cmd(&["CLIENT", "TRACKING", "OFF"]).await;
    c.cmd(&[
        "CLIENT",
        "TRACKING",
        "ON",
        "REDIRECT",
        &target_id.to_string(),
    ])
    .await;
    let info = line(c.cmd(&["CLIENT", "INFO"]).await);
    assert!(info.contains(" flags=t ") && info.contains(&format!(" redir={target_id} ")));
    c.cmd(&["GET", "k"]).await;
    drop(target);
    // Wait until the server has seen the target go.
    let mut w = Raw::connect(server.addr()).await;
    poll_until_reply(
        &mut w,
        &["CLIENT", "LIST", "ID", &target_id.to_string()],
        bulk(""),
        Duration::from_secs(10),
    )
    .await;
    w.cmd(&["SET", "k", "1"]).await;
    assert_eq!(
        c.read().await,
        Frame::Push(vec![bulk("tracking-redir-broken"), int(target_id)])
    );
    let info = line(c.cmd(&["CLIENT", "INFO"]).await);
    assert!(info.contains(" flags=tR "), "{info}");
}

/// Readers that cache what they read and drop what they are told to, racing writers on
/// other threads: once everything is quiet, no cached value differs from the server's.
/// (Checks the record-before-read protocol of `server/src/tracking.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_never_leave_a_cached_value_stale() {
    let server = start_server_with(|config| config.threads = 2).await;
    let addr = server.addr();
    const KEYS: usize = 8;
    const ROUNDS: usize = 400;
    let mut writers = Vec::new();
    for w in 0..2 {
        writers.push(tokio::spawn(async move {
            let mut c = Raw::connect(addr).await;
            for round in 0..ROUNDS {
                let i = (round * 7 + w) % KEYS;
                c.cmd(&["SET", &format!("hot:{i}"), &format!("{w}-{round}")])
                    .await;
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..3 {
        readers.push(tokio::spawn(async move {
            let mut c = Raw::connect(addr).await;
            c.cmd(&["HELLO", "3"]).await;
            assert_eq!(c.cmd(&["CLIENT", "TRACKING", "ON"]).await, ok());
            let mut cache: HashMap<String, Frame> = HashMap::new();
            let forget = |cache: &mut HashMap<String, Frame>, frame: &Frame| match frame {
                Frame::Push(items) => {
                    for k in sorted_bulks(items[1].clone()) {
                        cache.remove(&String::from_utf8_lossy(&k).into_owned());
                    }
                }
                other => panic!("unexpected {other:?}"),
            };
            for round in 0..ROUNDS {
                let k = format!("hot:{}", (round * 3 + r) % KEYS);
                if cache.contains_key(&k) {
                    continue;
                }
                c.send(&encode(&["GET", &k])).await;
                let value = loop {
                    let frame = c.read().await;
                    if matches!(frame, Frame::Push(_)) {
                        forget(&mut cache, &frame);
                    } else {
                        break frame;
                    }
                };
                cache.insert(k, value);
            }
            (c, cache)
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let mut check = Raw::connect(addr).await;
    for reader in readers {
        let (mut c, mut cache) = reader.await.expect("reader");
        // Everything sent before this PING arrives before its reply.
        c.send(&encode(&["PING"])).await;
        loop {
            let frame = c.read().await;
            if frame == simple("PONG") {
                break;
            }
            if let Frame::Push(items) = &frame {
                for k in sorted_bulks(items[1].clone()) {
                    cache.remove(&String::from_utf8_lossy(&k).into_owned());
                }
            }
        }
        for (k, cached) in &cache {
            assert_eq!(&check.cmd(&["GET", k]).await, cached, "{k} is stale");
        }
    }
}

/// A BCAST client that never reads is disconnected once its invalidations pass the output
/// limit (`pubsub` class while `normal` is unlimited), so it cannot grow the server's memory
/// without bound; writers never wait for it.
#[tokio::test]
async fn a_bcast_client_that_never_reads_is_disconnected() {
    let server = start_server().await;
    let mut w = Raw::connect(server.addr()).await;
    assert_eq!(
        w.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 256kb 0 0"
        ])
        .await,
        ok()
    );
    let mut sleeper = Raw::connect(server.addr()).await;
    sleeper.cmd(&["HELLO", "3"]).await;
    assert_eq!(
        sleeper.cmd(&["CLIENT", "TRACKING", "ON", "BCAST"]).await,
        ok()
    );
    let id = int_of(&sleeper.cmd(&["CLIENT", "ID"]).await).to_string();
    // Long keys fill the socket buffers, then the mailbox (kilobytes per message).
    let long_key = "k".repeat(4096);
    let mut gone = false;
    for round in 0..4000 {
        let key = format!("{long_key}{round}");
        assert_eq!(w.cmd(&["SET", &key, "v"]).await, ok());
        if round % 100 == 99 && w.cmd(&["CLIENT", "LIST", "ID", &id]).await == bulk("") {
            gone = true;
            break;
        }
    }
    assert!(gone, "the client that never reads is still connected");
    let clients = text_of(&w.cmd(&["INFO", "clients"]).await);
    assert_eq!(
        info_field(&clients, "tracking_clients").as_deref(),
        Some("0")
    );
}
