//! Pub/Sub end to end (issue 18): SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, their UNSUBSCRIBEs,
//! PUBLISH, SPUBLISH and PUBSUB over raw RESP2 and RESP3 connections and through the `redis`
//! crate's pub/sub API, with Redis 7.0.15's replies (recorded from the real server).

use std::time::Duration;

use futures_util::StreamExt;

use crate::util::*;

/// `[kind, name, count]`: a subscription confirmation (or a message of 3 parts) in RESP2.
fn triple(kind: &str, name: Option<&str>, count: i64) -> Frame {
    Frame::Array(vec![bulk(kind), name.map_or(Frame::Null, bulk), int(count)])
}

fn message(channel: &str, payload: &str) -> Frame {
    bulks(&["message", channel, payload])
}

#[tokio::test]
async fn resp2_subscribed_mode_as_redis() {
    let server = start_server().await;
    let mut sub = Raw::connect(server.addr()).await;
    let replies = pipeline(
        &mut sub,
        &[
            &["SUBSCRIBE", "a", "b"],
            &["GET", "x"],
            &["PING"],
            &["PING", "hi"],
            &["PUBLISH", "a", "m"],
            &["PSUBSCRIBE", "h*"],
            &["SSUBSCRIBE", "s1"],
            &["SUBSCRIBE", "c"],
        ],
    )
    .await;
    let refused = |name: &str| {
        err(&format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT \
             / RESET are allowed in this context"
        ))
    };
    assert_eq!(replies[0], triple("subscribe", Some("a"), 1));
    assert_eq!(replies[1], triple("subscribe", Some("b"), 2));
    assert_eq!(replies[2], refused("get"));
    assert_eq!(replies[3], bulks(&["pong", ""]));
    assert_eq!(replies[4], bulks(&["pong", "hi"]));
    assert_eq!(replies[5], refused("publish"));
    assert_eq!(replies[6], triple("psubscribe", Some("h*"), 3));
    // Shard channels are counted apart.
    assert_eq!(replies[7], triple("ssubscribe", Some("s1"), 1));
    assert_eq!(sub.read().await, triple("subscribe", Some("c"), 4));
    // UNSUBSCRIBE without arguments leaves every channel (in no particular order).
    sub.send(&encode(&["UNSUBSCRIBE"])).await;
    let mut left = Vec::new();
    for _ in 0..3 {
        let items = array_items(sub.read().await);
        assert_eq!(items[0], bulk("unsubscribe"));
        left.push((text_of(&items[1]), int_of(&items[2])));
    }
    left.sort();
    let counts: Vec<i64> = left.iter().map(|(_, count)| *count).collect();
    assert_eq!(
        left.iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(counts.iter().filter(|&&c| c == 1).count(), 1);
    let replies = pipeline(
        &mut sub,
        &[
            &["UNSUBSCRIBE"],
            &["PUNSUBSCRIBE", "x"],
            &["PUNSUBSCRIBE"],
            &["GET", "x"],
            &["SUNSUBSCRIBE"],
            &["GET", "x"],
        ],
    )
    .await;
    assert_eq!(replies[0], triple("unsubscribe", None, 1));
    assert_eq!(replies[1], triple("punsubscribe", Some("x"), 1));
    assert_eq!(replies[2], triple("punsubscribe", Some("h*"), 0));
    // Still subscribed to a shard channel: still in subscribed mode.
    assert_eq!(replies[3], refused("get"));
    assert_eq!(replies[4], triple("sunsubscribe", Some("s1"), 0));
    assert_eq!(replies[5], nil());
    assert_eq!(
        sub.cmd(&["SUBSCRIBE"]).await,
        err("ERR wrong number of arguments for 'subscribe' command")
    );
}

#[tokio::test]
async fn messages_reach_channel_pattern_and_shard_subscribers() {
    let server = start_server().await;
    let mut sub = Raw::connect(server.addr()).await;
    let mut publisher = Raw::connect(server.addr()).await;
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news.a"]).await,
        triple("subscribe", Some("news.a"), 1)
    );
    assert_eq!(
        sub.cmd(&["PSUBSCRIBE", "news.*"]).await,
        triple("psubscribe", Some("news.*"), 2)
    );
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", "sh"]).await,
        triple("ssubscribe", Some("sh"), 1)
    );
    // Counted once per subscription: the channel and the matching pattern.
    assert_eq!(publisher.cmd(&["PUBLISH", "news.a", "hello"]).await, int(2));
    assert_eq!(publisher.cmd(&["PUBLISH", "news.b", "other"]).await, int(1));
    assert_eq!(
        publisher.cmd(&["PUBLISH", "sh", "not sharded"]).await,
        int(0)
    );
    assert_eq!(publisher.cmd(&["SPUBLISH", "sh", "x"]).await, int(1));
    assert_eq!(sub.read().await, message("news.a", "hello"));
    assert_eq!(
        sub.read().await,
        bulks(&["pmessage", "news.*", "news.a", "hello"])
    );
    assert_eq!(
        sub.read().await,
        bulks(&["pmessage", "news.*", "news.b", "other"])
    );
    assert_eq!(sub.read().await, bulks(&["smessage", "sh", "x"]));
    // Introspection, as Redis answers it.
    let replies = pipeline(
        &mut publisher,
        &[
            &["PUBSUB", "NUMSUB", "news.a", "zz"],
            &["PUBSUB", "NUMPAT"],
            &["PUBSUB", "CHANNELS"],
            &["PUBSUB", "CHANNELS", "news*"],
            &["PUBSUB", "CHANNELS", "x*"],
            &["PUBSUB", "SHARDCHANNELS"],
            &["PUBSUB", "SHARDNUMSUB", "sh"],
            &["PUBSUB", "CHANNELS", "a", "b"],
            &["PUBSUB", "NUMPAT", "x"],
            &["PUBSUB", "FOO"],
        ],
    )
    .await;
    assert_eq!(
        replies[0],
        Frame::Array(vec![bulk("news.a"), int(1), bulk("zz"), int(0)])
    );
    assert_eq!(replies[1], int(1));
    assert_eq!(replies[2], bulks(&["news.a"]));
    assert_eq!(replies[3], bulks(&["news.a"]));
    assert_eq!(replies[4], Frame::Array(vec![]));
    assert_eq!(replies[5], bulks(&["sh"]));
    assert_eq!(replies[6], Frame::Array(vec![bulk("sh"), int(1)]));
    assert_eq!(
        replies[7],
        err("ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.")
    );
    assert_eq!(
        replies[8],
        err("ERR wrong number of arguments for 'pubsub|numpat' command")
    );
    assert_eq!(
        replies[9],
        err("ERR unknown subcommand 'FOO'. Try PUBSUB HELP.")
    );
}

#[tokio::test]
async fn resp3_pushes_beside_ordinary_replies() {
    let server = start_server().await;
    let mut sub = Raw::connect(server.addr()).await;
    sub.cmd(&["HELLO", "3"]).await;
    let push = |items: &[&str], count: Option<i64>| {
        let mut frames: Vec<Frame> = items.iter().map(|s| bulk(*s)).collect();
        if let Some(count) = count {
            frames.push(int(count));
        }
        Frame::Push(frames)
    };
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news.a"]).await,
        push(&["subscribe", "news.a"], Some(1))
    );
    // Ordinary commands keep working; a message published by the subscriber itself comes
    // before PUBLISH's reply, as in Redis.
    let replies = pipeline(
        &mut sub,
        &[
            &["SET", "k", "v"],
            &["GET", "k"],
            &["PING"],
            &["PUBLISH", "news.a", "self"],
        ],
    )
    .await;
    assert_eq!(replies[0], ok());
    assert_eq!(replies[1], bulk("v"));
    assert_eq!(replies[2], simple("PONG"));
    assert_eq!(replies[3], push(&["message", "news.a", "self"], None));
    assert_eq!(sub.read().await, int(1));
    let mut publisher = Raw::connect(server.addr()).await;
    assert_eq!(publisher.cmd(&["PUBLISH", "news.a", "hi"]).await, int(1));
    assert_eq!(sub.read().await, push(&["message", "news.a", "hi"], None));
    let replies = pipeline(
        &mut sub,
        &[&["UNSUBSCRIBE"], &["UNSUBSCRIBE"], &["SUNSUBSCRIBE"]],
    )
    .await;
    assert_eq!(replies[0], push(&["unsubscribe", "news.a"], Some(0)));
    assert_eq!(
        replies[1],
        Frame::Push(vec![bulk("unsubscribe"), Frame::Null, int(0)])
    );
    assert_eq!(
        replies[2],
        Frame::Push(vec![bulk("sunsubscribe"), Frame::Null, int(0)])
    );
}

#[tokio::test]
async fn one_publishers_messages_arrive_in_order() {
    let server = start_server().await;
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let mut sub = Raw::connect(server.addr()).await;
        assert_eq!(
            sub.cmd(&["SUBSCRIBE", "seq"]).await,
            triple("subscribe", Some("seq"), 1)
        );
        subscribers.push(sub);
    }
    let mut publisher = Raw::connect(server.addr()).await;
    const MESSAGES: usize = 2_000;
    let mut batch = Vec::new();
    for i in 0..MESSAGES {
        batch.extend_from_slice(&encode(&["PUBLISH", "seq", &i.to_string()]));
    }
    publisher.send(&batch).await;
    for _ in 0..MESSAGES {
        assert_eq!(publisher.read().await, int(3));
    }
    for sub in &mut subscribers {
        for i in 0..MESSAGES {
            assert_eq!(sub.read().await, message("seq", &i.to_string()));
        }
    }
}

#[tokio::test]
async fn disconnection_and_reset_leave_no_subscription_behind() {
    let server = start_server().await;
    let mut observer = Raw::connect(server.addr()).await;
    {
        let mut sub = Raw::connect(server.addr()).await;
        pipeline(
            &mut sub,
            &[
                &["SUBSCRIBE", "gone"],
                &["PSUBSCRIBE", "g*"],
                &["SSUBSCRIBE", "sg"],
            ],
        )
        .await;
        assert_eq!(
            observer.cmd(&["PUBSUB", "NUMSUB", "gone"]).await,
            Frame::Array(vec![bulk("gone"), int(1)])
        );
        // CLIENT LIST shows the subscriber as Redis does.
        let list = text_of(&observer.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]).await);
        assert_eq!(list.lines().count(), 1, "{list}");
        assert!(list.contains(" flags=P "), "{list}");
        assert!(list.contains(" sub=1 psub=1 ssub=1 "), "{list}");
        let list = text_of(&observer.cmd(&["CLIENT", "LIST", "TYPE", "normal"]).await);
        assert_eq!(list.lines().count(), 1, "only the observer: {list}");
    }
    // The server notices the closed socket on its own time.
    poll_until_reply(
        &mut observer,
        &["PUBSUB", "NUMSUB", "gone"],
        Frame::Array(vec![bulk("gone"), int(0)]),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(observer.cmd(&["PUBSUB", "NUMPAT"]).await, int(0));
    assert_eq!(
        observer.cmd(&["PUBSUB", "SHARDCHANNELS"]).await,
        Frame::Array(vec![])
    );
    assert_eq!(observer.cmd(&["PUBLISH", "gone", "x"]).await, int(0));

    let mut sub = Raw::connect(server.addr()).await;
    let replies = pipeline(
        &mut sub,
        &[
            &["SUBSCRIBE", "a"],
            &["PSUBSCRIBE", "a*"],
            &["RESET"],
            &["PING"],
        ],
    )
    .await;
    assert_eq!(replies[2], simple("RESET"));
    assert_eq!(replies[3], simple("PONG"));
    assert_eq!(observer.cmd(&["PUBLISH", "a", "x"]).await, int(0));
}

#[tokio::test]
async fn the_redis_crate_pubsub_api_works_unchanged() {
    let server = start_server().await;
    let client = redis::Client::open(format!("redis://{}/", server.addr())).expect("client");
    let mut pubsub = client.get_async_pubsub().await.expect("pubsub connection");
    pubsub.subscribe("crate.news").await.expect("subscribe");
    pubsub.psubscribe("crate.*").await.expect("psubscribe");
    let mut publisher = redis_client(server.addr()).await;
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("crate.news")
        .arg("hello")
        .query_async(&mut publisher)
        .await
        .expect("publish");
    assert_eq!(receivers, 2);
    let mut messages = pubsub.on_message();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("a message in time")
            .expect("stream open");
        let payload: String = msg.get_payload().expect("payload");
        let pattern: Option<String> = msg.get_pattern().ok();
        seen.push((msg.get_channel_name().to_owned(), payload, pattern));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("crate.news".to_owned(), "hello".to_owned(), None),
            (
                "crate.news".to_owned(),
                "hello".to_owned(),
                Some("crate.*".to_owned())
            ),
        ]
    );
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_disconnected_at_its_output_limit() {
    let server = start_server().await;
    let mut admin = Raw::connect(server.addr()).await;
    assert_eq!(
        admin
            .cmd(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 256kb 60"
            ])
            .await,
        ok()
    );
    assert_eq!(
        admin
            .cmd(&["CONFIG", "GET", "client-output-buffer-limit"])
            .await,
        bulks(&[
            "client-output-buffer-limit",
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 262144 60"
        ])
    );
    for (value, error) in [
        (
            "pubsub 1mb 512kb",
            "Wrong number of arguments in buffer limit configuration.",
        ),
        (
            "foo 1 1 1",
            "Invalid client class specified in buffer limit configuration.",
        ),
        (
            "pubsub x 1 1",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
    ] {
        assert_eq!(
            admin
                .cmd(&["CONFIG", "SET", "client-output-buffer-limit", value])
                .await,
            err(&format!(
                "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - {error}"
            ))
        );
    }
    let mut sleeper = Raw::connect(server.addr()).await;
    assert_eq!(
        sleeper.cmd(&["SUBSCRIBE", "flood"]).await,
        triple("subscribe", Some("flood"), 1)
    );
    // The subscriber reads nothing more; the publisher is never held up. Whatever the
    // kernel's socket buffers absorb first, 64 MB is far past them and the 1 MB limit.
    let payload = "x".repeat(64 * 1024);
    let mut publisher = Raw::connect(server.addr()).await;
    let mut disconnected = false;
    for _ in 0..1024 {
        let receivers = int_of(&publisher.cmd(&["PUBLISH", "flood", &payload]).await);
        if receivers == 0 {
            disconnected = true;
            break;
        }
    }
    assert!(
        disconnected,
        "the non-reading subscriber is still subscribed"
    );
    assert_eq!(
        admin.cmd(&["PUBSUB", "NUMSUB", "flood"]).await,
        Frame::Array(vec![bulk("flood"), int(0)])
    );
}
