//! Sorted sets end to end (issue 16): what the differential script cannot cover (Redis 7.2
//! behaviour where 7.0 differs, encodings and their thresholds, large sorted sets, raw RESP3
//! bytes, the `redis` crate), plus the main paths and errors. The differential script
//! (tests/differential/zsets.txt) checks every command's replies against Redis 7.0.

use protocol::Frame;
use redis::AsyncCommands;

use crate::util::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[tokio::test]
async fn zadd_options_and_replies() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["ZADD", "z", "1", "a", "2", "b"]).await, int(2));
    assert_eq!(c.cmd(&["TYPE", "z"]).await, simple("zset"));
    assert_eq!(
        c.cmd(&["ZADD", "z", "CH", "5", "a", "3", "c"]).await,
        int(2)
    );
    assert_eq!(c.cmd(&["ZADD", "z", "XX", "9", "nope"]).await, int(0));
    assert_eq!(c.cmd(&["ZADD", "z", "GT", "CH", "1", "a"]).await, int(0));
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "1.5", "a"]).await, bulk("6.5"));
    assert_eq!(c.cmd(&["ZADD", "z", "NX", "INCR", "1", "a"]).await, nil());
    assert_eq!(
        c.cmd(&["ZINCRBY", "z", "0.1", "b"]).await,
        bulk("2.1000000000000001")
    );
    assert_eq!(c.cmd(&["ZADD", "z", "inf", "i"]).await, int(1));
    assert_eq!(
        c.cmd(&["ZINCRBY", "z", "-inf", "i"]).await,
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "NX", "XX", "1", "a"]).await,
        err("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "GT", "LT", "1", "a"]).await,
        err("ERR GT, LT, and/or NX options at the same time are not compatible")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "INCR", "1", "a", "2", "b"]).await,
        err("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "nan", "a"]).await,
        err("ERR value is not a valid float")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "1", "a", "2"]).await,
        err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["ZADD", "z", "1"]).await, arity_err("zadd"));
    // XX on a missing key creates nothing.
    assert_eq!(c.cmd(&["ZADD", "new", "XX", "1", "a"]).await, int(0));
    assert_eq!(c.cmd(&["EXISTS", "new"]).await, int(0));
    assert_eq!(c.cmd(&["ZCARD", "z"]).await, int(4));
    assert_eq!(c.cmd(&["ZSCORE", "z", "c"]).await, bulk("3"));
    assert_eq!(c.cmd(&["SET", "s", "v"]).await, ok());
    for cmd in [
        &["ZADD", "s", "1", "a"][..],
        &["ZSCORE", "s", "a"],
        &["ZRANGE", "s", "0", "-1"],
        &["ZPOPMIN", "s"],
        &["ZUNION", "1", "s"],
        &["ZUNIONSTORE", "d", "1", "s"],
        &["ZRANK", "s", "a"],
    ] {
        assert_eq!(c.cmd(cmd).await, err(WRONGTYPE), "{cmd:?}");
    }
}

/// ZRANK/ZREVRANK WITHSCORE (Redis 7.2; 7.0 has no such option).
#[tokio::test]
async fn rank_with_score() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["ZADD", "z", "1", "a", "2.5", "b"]).await, int(2));
    assert_eq!(
        c.cmd(&["ZRANK", "z", "b", "WITHSCORE"]).await,
        Frame::Array(vec![int(1), bulk("2.5")])
    );
    assert_eq!(
        c.cmd(&["ZREVRANK", "z", "b", "withscore"]).await,
        Frame::Array(vec![int(0), bulk("2.5")])
    );
    assert_eq!(c.cmd(&["ZRANK", "z", "x", "WITHSCORE"]).await, Frame::Null);
    assert_eq!(
        c.cmd(&["ZRANK", "z", "a", "FOO"]).await,
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["ZRANK", "z", "a", "WITHSCORE", "x"]).await,
        arity_err("zrank")
    );
    c.cmd(&["HELLO", "3"]).await;
    c.send(&encode(&["ZRANK", "z", "b", "WITHSCORE"])).await;
    let expected = b"*2\r\n:1\r\n,2.5\r\n";
    assert_eq!(c.read_exact_bytes(expected.len()).await, expected);
}

/// The raw RESP3 forms: doubles, pairs, nulls.
#[tokio::test]
async fn resp3_bytes() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["ZADD", "z", "0.1", "a", "inf", "b"]).await, int(2));
    let cases: [(&[&str], &[u8]); 7] = [
        (&["ZSCORE", "z", "a"], b",0.10000000000000001\r\n"),
        (&["ZSCORE", "z", "b"], b",inf\r\n"),
        (&["ZSCORE", "z", "x"], b"_\r\n"),
        (
            &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            b"*2\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n*2\r\n$1\r\nb\r\n,inf\r\n",
        ),
        (&["ZMSCORE", "z", "x", "b"], b"*2\r\n_\r\n,inf\r\n"),
        (&["ZPOPMAX", "z"], b"*2\r\n$1\r\nb\r\n,inf\r\n"),
        (
            &["ZMPOP", "1", "z", "MIN"],
            b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n",
        ),
    ];
    for (cmd, expected) in cases {
        c.send(&encode(cmd)).await;
        assert_eq!(
            c.read_exact_bytes(expected.len()).await,
            expected,
            "{cmd:?}"
        );
    }
    c.send(&encode(&["ZMPOP", "1", "z", "MIN"])).await;
    assert_eq!(c.read_exact_bytes(3).await, b"_\r\n");
}

/// listpack up to the thresholds, skiplist past either, no way back except for results
/// stored by the STORE commands (chosen by size).
#[tokio::test]
async fn encodings_follow_the_thresholds() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    for i in 0..128 {
        let member = format!("m{i:03}");
        c.cmd(&["ZADD", "z", &i.to_string(), &member]).await;
    }
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "z"]).await, bulk("listpack"));
    assert_eq!(c.cmd(&["ZADD", "z", "1000", "one-more"]).await, int(1));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "z"]).await, bulk("skiplist"));
    assert_eq!(c.cmd(&["ZREM", "z", "one-more", "m000"]).await, int(2));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "z"]).await, bulk("skiplist"));
    assert_eq!(
        c.cmd(&["ZRANGESTORE", "small", "z", "0", "9"]).await,
        int(10)
    );
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "small"]).await,
        bulk("listpack")
    );
    let long = "x".repeat(65);
    assert_eq!(c.cmd(&["ZADD", "l", "1", &"y".repeat(64)]).await, int(1));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]).await, bulk("listpack"));
    assert_eq!(c.cmd(&["ZADD", "l", "1", &long]).await, int(1));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]).await, bulk("skiplist"));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "zset-max-listpack-entries", "2"])
            .await,
        ok()
    );
    assert_eq!(c.cmd(&["ZADD", "t", "1", "a", "2", "b"]).await, int(2));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "t"]).await, bulk("listpack"));
    assert_eq!(c.cmd(&["ZADD", "t", "3", "c"]).await, int(1));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "t"]).await, bulk("skiplist"));
    // The same replies from both encodings.
    assert_eq!(
        c.cmd(&["ZRANGE", "t", "0", "-1", "WITHSCORES"]).await,
        bulks(&["a", "1", "b", "2", "c", "3"])
    );
    // -0 is 0 in a listpack, kept as -0 in a skiplist (as Redis).
    assert_eq!(c.cmd(&["ZADD", "t", "-0", "zero"]).await, int(1));
    assert_eq!(c.cmd(&["ZSCORE", "t", "zero"]).await, bulk("-0"));
    assert_eq!(c.cmd(&["ZADD", "u", "-0", "zero"]).await, int(1));
    assert_eq!(c.cmd(&["ZSCORE", "u", "zero"]).await, bulk("0"));
}

/// Ranks, ranges and pops on a large sorted set agree with a model.
#[tokio::test]
async fn a_large_sorted_set() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let n = 5000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut cmd = vec!["ZADD".to_string(), "big".to_string()];
        for &i in chunk {
            // Scores out of insertion order; members tie-broken by name.
            cmd.push(((i * 7919) % n / 2).to_string());
            cmd.push(format!("m{i:05}"));
        }
        c.cmd(&cmd).await;
    }
    let mut model: Vec<(i64, String)> = (0..n)
        .map(|i| ((i * 7919) % n / 2, format!("m{i:05}")))
        .collect();
    model.sort();
    assert_eq!(c.cmd(&["ZCARD", "big"]).await, int(n));
    for rank in [0usize, 1, 127, 128, 2500, 4999] {
        let (_, member) = &model[rank];
        assert_eq!(c.cmd(&["ZRANK", "big", member]).await, int(rank as i64));
        assert_eq!(
            c.cmd(&["ZREVRANK", "big", member]).await,
            int((n as usize - 1 - rank) as i64)
        );
    }
    let range = c.cmd(&["ZRANGE", "big", "2000", "2009"]).await;
    let expected: Vec<&str> = model[2000..2010].iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(range, bulks(&expected));
    let in_scores = model
        .iter()
        .filter(|(s, _)| (100..=200).contains(s))
        .count();
    assert_eq!(
        c.cmd(&["ZCOUNT", "big", "100", "200"]).await,
        int(in_scores as i64)
    );
    let by_score = c
        .cmd(&["ZRANGE", "big", "(100", "200", "BYSCORE", "LIMIT", "3", "4"])
        .await;
    let expected: Vec<&str> = model
        .iter()
        .filter(|(s, _)| *s > 100 && *s <= 200)
        .skip(3)
        .take(4)
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(by_score, bulks(&expected));
    let popped = array_items(c.cmd(&["ZPOPMIN", "big", "3"]).await);
    assert_eq!(text_of(&popped[0]), model[0].1);
    assert_eq!(
        c.cmd(&["ZREMRANGEBYRANK", "big", "0", "-1"]).await,
        int(n - 3)
    );
    assert_eq!(c.cmd(&["EXISTS", "big"]).await, int(0));
}

/// The store commands: results replace the destination, an empty one deletes it.
#[tokio::test]
async fn store_commands_replace_or_delete() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["ZADD", "a", "1", "x", "2", "y"]).await;
    c.cmd(&["ZADD", "b", "3", "y", "4", "z"]).await;
    assert_eq!(c.cmd(&["SET", "d", "string"]).await, ok());
    assert_eq!(c.cmd(&["ZUNIONSTORE", "d", "2", "a", "b"]).await, int(3));
    assert_eq!(
        c.cmd(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]).await,
        bulks(&["x", "1", "z", "4", "y", "5"])
    );
    assert_eq!(
        c.cmd(&["ZINTERSTORE", "d", "2", "a", "b", "WEIGHTS", "2", "1"])
            .await,
        int(1)
    );
    assert_eq!(c.cmd(&["ZSCORE", "d", "y"]).await, bulk("7"));
    assert_eq!(c.cmd(&["ZDIFFSTORE", "d", "2", "a", "a"]).await, int(0));
    assert_eq!(c.cmd(&["EXISTS", "d"]).await, int(0));
    assert_eq!(c.cmd(&["ZINTERCARD", "2", "a", "b"]).await, int(1));
    assert_eq!(
        c.cmd(&["ZUNION", "0", "a"]).await,
        err("ERR at least 1 input key is needed for 'zunion' command")
    );
}

#[tokio::test]
async fn generic_commands_on_sorted_sets() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    c.cmd(&["ZADD", "z", "1", "a", "2", "b"]).await;
    assert_eq!(c.cmd(&["COPY", "z", "z2"]).await, int(1));
    assert_eq!(c.cmd(&["ZADD", "z2", "3", "c"]).await, int(1));
    assert_eq!(c.cmd(&["ZCARD", "z"]).await, int(2));
    assert_eq!(c.cmd(&["RENAME", "z2", "z3"]).await, ok());
    assert_eq!(c.cmd(&["ZCARD", "z3"]).await, int(3));
    let scan = array_items(c.cmd(&["SCAN", "0", "TYPE", "zset"]).await);
    assert_eq!(
        sorted_bulks(scan[1].clone()),
        [b"z".to_vec(), b"z3".to_vec()]
    );
    assert_eq!(
        c.cmd(&["ZPOPMIN", "z", "5"]).await,
        bulks(&["a", "1", "b", "2"])
    );
    assert_eq!(c.cmd(&["EXISTS", "z"]).await, int(0));
}

#[tokio::test]
async fn redis_client_round_trip() {
    let server = start_server().await;
    let mut con = redis_client(server.addr()).await;
    let added: i64 = con
        .zadd_multiple("board", &[(10, "ada"), (30, "grace"), (20, "linus")])
        .await
        .unwrap();
    assert_eq!(added, 3);
    let top: Vec<(String, f64)> = con.zrevrange_withscores("board", 0, 1).await.unwrap();
    assert_eq!(
        top,
        vec![("grace".to_string(), 30.0), ("linus".to_string(), 20.0)]
    );
    let score: f64 = con.zincr("board", "ada", 25).await.unwrap();
    assert_eq!(score, 35.0);
    let rank: Option<i64> = con.zrank("board", "ada").await.unwrap();
    assert_eq!(rank, Some(2));
    let count: i64 = con.zcount("board", 15, "+inf").await.unwrap();
    assert_eq!(count, 3);
}

/// ZSCAN over a large sorted set returns every member present for the whole walk, while
/// members are added and removed between calls; scores come as bulk strings.
#[tokio::test]
async fn zscan_returns_every_stable_member_across_changes() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut cmd = vec!["ZADD".to_string(), "z".to_string()];
    for i in 0..2000 {
        cmd.push(format!("{i}.5"));
        cmd.push(format!("stable:{i}"));
    }
    assert_eq!(c.cmd(&cmd).await, int(2000));
    let mut seen = std::collections::HashMap::new();
    let mut cursor = "0".to_string();
    let mut step = 0;
    loop {
        let reply = array_items(c.cmd(&["ZSCAN", "z", &cursor, "COUNT", "50"]).await);
        cursor = text_of(&reply[0]);
        let items = array_items(reply[1].clone());
        for pair in items.chunks(2) {
            seen.insert(text_of(&pair[0]), text_of(&pair[1]));
        }
        // Grow and shrink between calls.
        let grow: Vec<String> = (0..40)
            .flat_map(|i| ["1".to_string(), format!("extra:{step}:{i}")])
            .collect();
        let mut add = vec!["ZADD".to_string(), "z".to_string()];
        add.extend(grow);
        c.cmd(&add).await;
        if step % 3 == 2 {
            c.cmd(&["ZREMRANGEBYSCORE", "z", "1", "1"]).await;
        }
        step += 1;
        if cursor == "0" {
            break;
        }
        assert!(step < 10_000, "the walk ends");
    }
    for i in 0..2000 {
        assert_eq!(
            seen.get(&format!("stable:{i}")).map(String::as_str),
            Some(format!("{i}.5").as_str()),
            "stable:{i}"
        );
    }
}

/// Every command that removes members deletes the key with its last one.
#[tokio::test]
async fn emptied_sorted_sets_are_deleted() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let removals: [&[&str]; 7] = [
        &["ZREM", "z", "a", "b"],
        &["ZPOPMIN", "z", "5"],
        &["ZPOPMAX", "z", "2"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "9"],
        &["ZREMRANGEBYRANK", "z", "0", "-1"],
        &["ZREMRANGEBYSCORE", "z", "-inf", "+inf"],
        &["ZREMRANGEBYLEX", "z", "-", "+"],
    ];
    for removal in removals {
        // Equal scores, so that the lex range covers both.
        assert_eq!(c.cmd(&["ZADD", "z", "1", "a", "1", "b"]).await, int(2));
        c.cmd(removal).await;
        assert_eq!(c.cmd(&["EXISTS", "z"]).await, int(0), "{removal:?}");
    }
    // A TTL survives writes to the set; a store command replaces it.
    assert_eq!(c.cmd(&["ZADD", "z", "1", "a"]).await, int(1));
    assert_eq!(c.cmd(&["EXPIRE", "z", "100"]).await, int(1));
    assert_eq!(c.cmd(&["ZADD", "z", "2", "b"]).await, int(1));
    assert!(int_of(&c.cmd(&["TTL", "z"]).await) > 0);
    assert_eq!(c.cmd(&["ZUNIONSTORE", "z", "1", "z"]).await, int(2));
    assert_eq!(c.cmd(&["TTL", "z"]).await, int(-1));
}
