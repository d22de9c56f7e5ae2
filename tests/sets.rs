//! Set commands: SADD, SREM, SCARD, SISMEMBER, SMISMEMBER, SMEMBERS, SRANDMEMBER, SPOP,
//! SMOVE, SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE, SSCAN;
//! their errors, RESP3 replies, WRONGTYPE on every key named, the deletion of an emptied set,
//! the encodings (OBJECT ENCODING, CONFIG SET), and the generic commands on a set. Expected
//! replies were checked against Redis 7.0.15 (7.2's behaviour where the two differ: noted).

use std::collections::{BTreeSet, HashSet};

use protocol::Frame;
use redis::AsyncCommands;

use crate::util::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

/// The members of an array or RESP3 set reply, sorted.
fn members_of(frame: Frame) -> Vec<String> {
    let items = match frame {
        Frame::Array(items) | Frame::Set(items) => items,
        other => panic!("expected an array or a set, got {other:?}"),
    };
    let mut members: Vec<String> = items.iter().map(text_of).collect();
    members.sort();
    members
}

fn strings(items: &[&str]) -> Vec<String> {
    let mut owned: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    owned.sort();
    owned
}

/// `SADD key member...` with `members` spelled out.
async fn sadd(c: &mut Raw, key: &str, members: impl IntoIterator<Item = String>) -> Frame {
    let mut args = vec!["SADD".to_string(), key.to_string()];
    args.extend(members);
    c.cmd(&args).await
}

async fn encoding(c: &mut Raw, key: &str) -> Frame {
    c.cmd(&["OBJECT", "ENCODING", key]).await
}

#[tokio::test]
async fn sadd_srem_scard_and_membership() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SCARD", "s"]).await, int(0));
    assert_eq!(c.cmd(&["SISMEMBER", "s", "a"]).await, int(0));
    assert_eq!(c.cmd(&["SADD", "s", "a", "b", "a", "c"]).await, int(3));
    assert_eq!(c.cmd(&["TYPE", "s"]).await, simple("set"));
    assert_eq!(c.cmd(&["SADD", "s", "c", "d"]).await, int(1));
    assert_eq!(c.cmd(&["SCARD", "s"]).await, int(4));
    assert_eq!(c.cmd(&["SISMEMBER", "s", "a"]).await, int(1));
    assert_eq!(c.cmd(&["SISMEMBER", "s", "z"]).await, int(0));
    assert_eq!(
        c.cmd(&["SMISMEMBER", "s", "a", "z", "d"]).await,
        Frame::Array(vec![int(1), int(0), int(1)])
    );
    assert_eq!(
        c.cmd(&["SMISMEMBER", "missing", "a", "b"]).await,
        Frame::Array(vec![int(0), int(0)])
    );
    assert_eq!(
        members_of(c.cmd(&["SMEMBERS", "s"]).await),
        strings(&["a", "b", "c", "d"])
    );
    assert_eq!(c.cmd(&["SMEMBERS", "missing"]).await, Frame::Array(vec![]));
    assert_eq!(c.cmd(&["SREM", "s", "a", "a", "z"]).await, int(1));
    assert_eq!(c.cmd(&["SREM", "missing", "a"]).await, int(0));
    // The last member takes the key (and its TTL) with it.
    assert_eq!(c.cmd(&["EXPIRE", "s", "100"]).await, int(1));
    assert_eq!(c.cmd(&["SREM", "s", "b", "c", "d", "e"]).await, int(3));
    assert_eq!(c.cmd(&["EXISTS", "s"]).await, int(0));
    assert_eq!(c.cmd(&["SADD", "s", "x"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "s"]).await, int(-1));
    // Binary-safe members, the empty one included; integers and their look-alikes differ.
    assert_eq!(
        c.cmd(&[&b"SADD"[..], b"bin", b"\x00\r\n", b"", b"1", b"01", b"-0"])
            .await,
        int(5)
    );
    assert_eq!(c.cmd(&[&b"SISMEMBER"[..], b"bin", b""]).await, int(1));
    assert_eq!(c.cmd(&["SISMEMBER", "bin", "001"]).await, int(0));
    assert_eq!(c.cmd(&["SISMEMBER", "bin", "01"]).await, int(1));
    assert_eq!(c.cmd(&["SISMEMBER", "bin", "0"]).await, int(0));
}

#[tokio::test]
async fn arity_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    for (args, name) in [
        (&["SADD", "s"][..], "sadd"),
        (&["SREM", "s"], "srem"),
        (&["SCARD"], "scard"),
        (&["SCARD", "s", "t"], "scard"),
        (&["SISMEMBER", "s"], "sismember"),
        (&["SMISMEMBER", "s"], "smismember"),
        (&["SMEMBERS"], "smembers"),
        (&["SRANDMEMBER"], "srandmember"),
        (&["SPOP"], "spop"),
        (&["SMOVE", "a", "b"], "smove"),
        (&["SINTER"], "sinter"),
        (&["SINTERCARD", "1"], "sintercard"),
        (&["SINTERSTORE", "d"], "sinterstore"),
        (&["SUNION"], "sunion"),
        (&["SUNIONSTORE", "d"], "sunionstore"),
        (&["SDIFF"], "sdiff"),
        (&["SDIFFSTORE", "d"], "sdiffstore"),
        (&["SSCAN", "s"], "sscan"),
    ] {
        assert_eq!(c.cmd(args).await, arity_err(name), "{args:?}");
    }
    assert_eq!(
        c.cmd(&["SPOP", "s", "1", "2"]).await,
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SRANDMEMBER", "s", "x", "2"]).await,
        err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
}

/// Every command checks the type of every key it names (Redis does, even past a missing
/// key in SINTER), and arguments come first where Redis checks them first.
#[tokio::test]
async fn wrongtype_on_every_key() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "str", "v"]).await, ok());
    assert_eq!(c.cmd(&["SADD", "a", "1", "2", "x"]).await, int(3));
    let wrong = err(WRONGTYPE);
    for args in [
        &["SADD", "str", "m"][..],
        &["SREM", "str", "m"],
        &["SCARD", "str"],
        &["SISMEMBER", "str", "m"],
        &["SMISMEMBER", "str", "m"],
        &["SMEMBERS", "str"],
        &["SRANDMEMBER", "str"],
        &["SRANDMEMBER", "str", "0"],
        &["SRANDMEMBER", "str", "-1"],
        &["SPOP", "str"],
        &["SPOP", "str", "0"],
        &["SMOVE", "str", "a", "1"],
        &["SMOVE", "a", "str", "1"],
        &["SMOVE", "a", "str", "absent"],
        &["SMOVE", "str", "str", "1"],
        &["SINTER", "a", "str"],
        &["SINTER", "nokey", "str"],
        &["SINTERCARD", "2", "nokey", "str"],
        &["SUNION", "nokey", "str"],
        &["SDIFF", "nokey", "str"],
        &["SDIFF", "a", "str"],
        &["SINTERSTORE", "d", "nokey", "str"],
        &["SUNIONSTORE", "d", "a", "str"],
        &["SDIFFSTORE", "d", "a", "str"],
        &["SSCAN", "str", "0"],
    ] {
        assert_eq!(c.cmd(args).await, wrong, "{args:?}");
    }
    // A missing source answers 0 before the destination's type is looked at.
    assert_eq!(c.cmd(&["SMOVE", "nokey", "str", "1"]).await, int(0));
    // Arguments checked before the key.
    assert_eq!(c.cmd(&["SPOP", "str", "x"]).await, err(NOT_POSITIVE));
    assert_eq!(c.cmd(&["SRANDMEMBER", "str", "x"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["SSCAN", "str", "x"]).await,
        err("ERR invalid cursor")
    );
    // Nothing changed: the destination of the failed stores was never created, the string
    // is still a string.
    assert_eq!(c.cmd(&["EXISTS", "d"]).await, int(0));
    assert_eq!(c.cmd(&["GET", "str"]).await, bulk("v"));
    assert_eq!(c.cmd(&["SCARD", "a"]).await, int(3));
}

#[tokio::test]
async fn srandmember_counts_and_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SRANDMEMBER", "s"]).await, nil());
    assert_eq!(
        c.cmd(&["SRANDMEMBER", "s", "3"]).await,
        Frame::Array(vec![])
    );
    assert_eq!(
        c.cmd(&["SRANDMEMBER", "s", "-3"]).await,
        Frame::Array(vec![])
    );
    let all = strings(&["a", "b", "c", "1", "2"]);
    assert_eq!(c.cmd(&["SADD", "s", "a", "b", "c", "1", "2"]).await, int(5));
    let one = text_of(&c.cmd(&["SRANDMEMBER", "s"]).await);
    assert!(all.contains(&one));
    assert_eq!(
        c.cmd(&["SRANDMEMBER", "s", "0"]).await,
        Frame::Array(vec![])
    );
    // A count at least the size: every member once.
    assert_eq!(members_of(c.cmd(&["SRANDMEMBER", "s", "5"]).await), all);
    assert_eq!(members_of(c.cmd(&["SRANDMEMBER", "s", "100"]).await), all);
    // Fewer: distinct members.
    for _ in 0..20 {
        let some = members_of(c.cmd(&["SRANDMEMBER", "s", "3"]).await);
        assert_eq!(some.len(), 3);
        assert_eq!(some.iter().collect::<HashSet<_>>().len(), 3);
        assert!(some.iter().all(|m| all.contains(m)));
    }
    // Negative: exactly |count|, repeats allowed; over many draws every member shows up.
    let drawn = members_of(c.cmd(&["SRANDMEMBER", "s", "-200"]).await);
    assert_eq!(drawn.len(), 200);
    assert_eq!(drawn.iter().cloned().collect::<BTreeSet<_>>().len(), 5);
    assert_eq!(c.cmd(&["SRANDMEMBER", "s", "x"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["SRANDMEMBER", "s", "-9223372036854775808"]).await,
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    // Redis builds a reply this large until memory runs out; kvstore refuses it.
    assert_eq!(
        c.cmd(&["SRANDMEMBER", "s", "-9223372036854775807"]).await,
        err("ERR value is out of range")
    );
    // Read-only: the set is unchanged. RESP3: arrays, and a null for a missing key.
    assert_eq!(c.cmd(&["SCARD", "s"]).await, int(5));
    c.cmd(&["HELLO", "3"]).await;
    assert!(matches!(
        c.cmd(&["SRANDMEMBER", "s", "2"]).await,
        Frame::Array(_)
    ));
    assert_eq!(c.cmd(&["SRANDMEMBER", "nokey"]).await, Frame::Null);
}

#[tokio::test]
async fn spop_with_and_without_count() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SPOP", "s"]).await, nil());
    assert_eq!(c.cmd(&["SPOP", "s", "2"]).await, Frame::Array(vec![]));
    assert_eq!(c.cmd(&["SPOP", "s", "-1"]).await, err(NOT_POSITIVE));
    assert_eq!(c.cmd(&["SPOP", "s", "1.5"]).await, err(NOT_POSITIVE));
    let all = strings(&["a", "b", "c", "d", "e", "f"]);
    assert_eq!(sadd(&mut c, "s", all.clone()).await, int(6));
    let mut popped = vec![text_of(&c.cmd(&["SPOP", "s"]).await)];
    assert_eq!(c.cmd(&["SPOP", "s", "0"]).await, Frame::Array(vec![]));
    popped.extend(members_of(c.cmd(&["SPOP", "s", "2"]).await));
    assert_eq!(c.cmd(&["SCARD", "s"]).await, int(3));
    let rest = members_of(c.cmd(&["SMEMBERS", "s"]).await);
    // Popped members are gone and distinct; with what is left they make the set.
    let mut everything = popped.clone();
    everything.extend(rest.iter().cloned());
    everything.sort();
    assert_eq!(everything, all);
    // A count at least the size takes everything and deletes the key.
    assert_eq!(c.cmd(&["EXPIRE", "s", "100"]).await, int(1));
    assert_eq!(members_of(c.cmd(&["SPOP", "s", "10"]).await), rest);
    assert_eq!(c.cmd(&["EXISTS", "s"]).await, int(0));
    // The last member popped alone deletes the key too.
    assert_eq!(c.cmd(&["SADD", "one", "7"]).await, int(1));
    assert_eq!(c.cmd(&["SPOP", "one"]).await, bulk("7"));
    assert_eq!(c.cmd(&["EXISTS", "one"]).await, int(0));
    // RESP3: with a count, a set (as Redis), even when empty; without, a bulk or null.
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["SPOP", "nokey", "3"]).await, Frame::Set(vec![]));
    assert_eq!(c.cmd(&["SPOP", "nokey"]).await, Frame::Null);
    assert_eq!(c.cmd(&["SADD", "s", "1", "2", "3"]).await, int(3));
    let reply = c.cmd(&["SPOP", "s", "2"]).await;
    assert!(
        matches!(&reply, Frame::Set(items) if items.len() == 2),
        "{reply:?}"
    );
    assert_eq!(c.cmd(&["SPOP", "s", "0"]).await, Frame::Set(vec![]));
}

/// SPOP and SRANDMEMBER on a hashtable-encoded set, with counts that take the different
/// sampling paths (a few members, most of them, negative).
#[tokio::test]
async fn random_picks_on_a_large_set() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let n = 5000;
    assert_eq!(
        sadd(&mut c, "big", (0..n).map(|i| format!("m{i}"))).await,
        int(n)
    );
    assert_eq!(encoding(&mut c, "big").await, bulk("hashtable"));
    for count in ["3", "40", "4000", "-300"] {
        let picked = members_of(c.cmd(&["SRANDMEMBER", "big", count]).await);
        let wanted: i64 = count.parse::<i64>().unwrap().abs();
        assert_eq!(picked.len() as i64, wanted);
        if !count.starts_with('-') {
            assert_eq!(picked.iter().collect::<HashSet<_>>().len() as i64, wanted);
        }
    }
    let mut gone = HashSet::new();
    for count in [1, 10, 1000, 3000] {
        let popped = members_of(c.cmd(&["SPOP", "big", &count.to_string()]).await);
        assert_eq!(popped.len(), count);
        for member in popped {
            assert!(gone.insert(member), "popped twice");
        }
    }
    let left = members_of(c.cmd(&["SMEMBERS", "big"]).await);
    assert_eq!(left.len(), 5000 - gone.len());
    assert!(left.iter().all(|m| !gone.contains(m)));
}

#[tokio::test]
async fn smove_between_sets() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SADD", "a", "1", "x"]).await, int(2));
    assert_eq!(c.cmd(&["SMOVE", "a", "b", "1"]).await, int(1));
    assert_eq!(c.cmd(&["SMEMBERS", "b"]).await, bulks(&["1"]));
    assert_eq!(c.cmd(&["SMOVE", "a", "b", "nope"]).await, int(0));
    assert_eq!(c.cmd(&["SMOVE", "nokey", "b", "1"]).await, int(0));
    // Moving to itself changes nothing and answers whether the member is there.
    assert_eq!(c.cmd(&["SMOVE", "a", "a", "x"]).await, int(1));
    assert_eq!(c.cmd(&["SMOVE", "a", "a", "nope"]).await, int(0));
    // Into a set that has it already; the emptied source is deleted.
    assert_eq!(c.cmd(&["SADD", "b", "x"]).await, int(1));
    assert_eq!(c.cmd(&["SMOVE", "a", "b", "x"]).await, int(1));
    assert_eq!(c.cmd(&["EXISTS", "a"]).await, int(0));
    assert_eq!(
        members_of(c.cmd(&["SMEMBERS", "b"]).await),
        strings(&["1", "x"])
    );
    // Across shards: many destination names, each move atomic.
    for i in 0..50 {
        let dst = format!("dst:{i}");
        assert_eq!(c.cmd(&["SADD", "src", &i.to_string()]).await, int(1));
        assert_eq!(c.cmd(&["SMOVE", "src", &dst, &i.to_string()]).await, int(1));
        assert_eq!(c.cmd(&["SISMEMBER", &dst, &i.to_string()]).await, int(1));
    }
    assert_eq!(c.cmd(&["EXISTS", "src"]).await, int(0));
}

#[tokio::test]
async fn intersections_unions_and_differences() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SADD", "a", "1", "2", "3", "x", "y"]).await, int(5));
    assert_eq!(c.cmd(&["SADD", "b", "2", "3", "4", "y", "z"]).await, int(5));
    assert_eq!(c.cmd(&["SADD", "c", "3", "y", "q"]).await, int(3));
    assert_eq!(
        members_of(c.cmd(&["SINTER", "a", "b"]).await),
        strings(&["2", "3", "y"])
    );
    assert_eq!(
        members_of(c.cmd(&["SINTER", "a", "b", "c"]).await),
        strings(&["3", "y"])
    );
    assert_eq!(members_of(c.cmd(&["SINTER", "a"]).await).len(), 5);
    assert_eq!(c.cmd(&["SINTER", "a", "nokey"]).await, Frame::Array(vec![]));
    assert_eq!(
        members_of(c.cmd(&["SUNION", "a", "nokey", "c"]).await),
        strings(&["1", "2", "3", "x", "y", "q"])
    );
    assert_eq!(c.cmd(&["SUNION", "nokey"]).await, Frame::Array(vec![]));
    assert_eq!(
        members_of(c.cmd(&["SDIFF", "a", "b"]).await),
        strings(&["1", "x"])
    );
    assert_eq!(
        members_of(c.cmd(&["SDIFF", "a", "nokey", "c"]).await),
        strings(&["1", "2", "x"])
    );
    assert_eq!(c.cmd(&["SDIFF", "nokey", "a"]).await, Frame::Array(vec![]));
    assert_eq!(c.cmd(&["SDIFF", "a", "a"]).await, Frame::Array(vec![]));
    // SINTERCARD and its LIMIT (0: none; the last LIMIT wins).
    assert_eq!(c.cmd(&["SINTERCARD", "2", "a", "b"]).await, int(3));
    assert_eq!(c.cmd(&["SINTERCARD", "3", "a", "b", "c"]).await, int(2));
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "a", "b", "LIMIT", "2"]).await,
        int(2)
    );
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "a", "b", "limit", "0"]).await,
        int(3)
    );
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "a", "b", "LIMIT", "1", "LIMIT", "0"])
            .await,
        int(3)
    );
    assert_eq!(c.cmd(&["SINTERCARD", "2", "a", "nokey"]).await, int(0));
    assert_eq!(c.cmd(&["SINTERCARD", "1", "a"]).await, int(5));
    for (args, text) in [
        (
            &["SINTERCARD", "0", "a"][..],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["SINTERCARD", "-1", "a"],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["SINTERCARD", "x", "a"],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["SINTERCARD", "3", "a", "b"],
            "ERR Number of keys can't be greater than number of args",
        ),
        (
            &["SINTERCARD", "2", "a", "b", "LIMIT", "-1"],
            "ERR LIMIT can't be negative",
        ),
        (
            &["SINTERCARD", "2", "a", "b", "LIMIT", "x"],
            "ERR LIMIT can't be negative",
        ),
        (&["SINTERCARD", "2", "a", "b", "LIMIT"], "ERR syntax error"),
        (
            &["SINTERCARD", "2", "a", "b", "LIMITS", "1"],
            "ERR syntax error",
        ),
        (&["SINTERCARD", "1", "a", "b"], "ERR syntax error"),
    ] {
        assert_eq!(c.cmd(args).await, err(text), "{args:?}");
    }
    // RESP3: sets for SINTER/SUNION/SDIFF/SMEMBERS, integers for SINTERCARD/SMISMEMBER.
    c.cmd(&["HELLO", "3"]).await;
    for command in ["SINTER", "SUNION", "SDIFF"] {
        let reply = c.cmd(&[command, "a", "b"]).await;
        assert!(matches!(reply, Frame::Set(_)), "{command}: {reply:?}");
    }
    assert!(matches!(c.cmd(&["SMEMBERS", "a"]).await, Frame::Set(_)));
    assert_eq!(c.cmd(&["SMEMBERS", "nokey"]).await, Frame::Set(vec![]));
    assert_eq!(
        c.cmd(&["SMISMEMBER", "a", "1", "9"]).await,
        Frame::Array(vec![int(1), int(0)])
    );
    // The raw bytes of a RESP3 set.
    c.send(&encode(&["SMEMBERS", "c1"])).await;
    assert_eq!(c.read().await, Frame::Set(vec![]));
}

#[tokio::test]
async fn store_commands_write_replace_and_delete_the_destination() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SADD", "a", "1", "2", "3", "x"]).await, int(4));
    assert_eq!(c.cmd(&["SADD", "b", "2", "3", "y"]).await, int(3));
    assert_eq!(c.cmd(&["SINTERSTORE", "d", "a", "b"]).await, int(2));
    assert_eq!(
        members_of(c.cmd(&["SMEMBERS", "d"]).await),
        strings(&["2", "3"])
    );
    assert_eq!(encoding(&mut c, "d").await, bulk("intset"));
    assert_eq!(c.cmd(&["SUNIONSTORE", "d", "a", "b"]).await, int(5));
    assert_eq!(c.cmd(&["SDIFFSTORE", "d", "a", "b"]).await, int(2));
    assert_eq!(
        members_of(c.cmd(&["SMEMBERS", "d"]).await),
        strings(&["1", "x"])
    );
    // A string destination is replaced, and so is a TTL.
    assert_eq!(c.cmd(&["SET", "str", "v", "EX", "100"]).await, ok());
    assert_eq!(c.cmd(&["SDIFFSTORE", "str", "a", "nokey"]).await, int(4));
    assert_eq!(c.cmd(&["TYPE", "str"]).await, simple("set"));
    assert_eq!(c.cmd(&["TTL", "str"]).await, int(-1));
    // The destination may be a source.
    assert_eq!(c.cmd(&["SINTERSTORE", "a", "a", "b"]).await, int(2));
    assert_eq!(
        members_of(c.cmd(&["SMEMBERS", "a"]).await),
        strings(&["2", "3"])
    );
    // An empty result deletes the destination.
    assert_eq!(c.cmd(&["SINTERSTORE", "d", "a", "nokey"]).await, int(0));
    assert_eq!(c.cmd(&["EXISTS", "d"]).await, int(0));
    assert_eq!(
        c.cmd(&["SUNIONSTORE", "d", "nokey", "nokey2"]).await,
        int(0)
    );
    assert_eq!(c.cmd(&["EXISTS", "d"]).await, int(0));
    assert_eq!(c.cmd(&["SDIFFSTORE", "str", "a", "a"]).await, int(0));
    assert_eq!(c.cmd(&["EXISTS", "str"]).await, int(0));
    // Across shards: many keys.
    for i in 0..30 {
        assert_eq!(
            c.cmd(&["SADD", &format!("k{i}"), "common", &i.to_string()])
                .await,
            int(2)
        );
    }
    let mut args = vec!["SUNIONSTORE".to_string(), "all".to_string()];
    args.extend((0..30).map(|i| format!("k{i}")));
    assert_eq!(c.cmd(&args).await, int(31));
    args[0] = "SINTERSTORE".to_string();
    assert_eq!(c.cmd(&args).await, int(1));
    assert_eq!(c.cmd(&["SMEMBERS", "all"]).await, bulks(&["common"]));
}

/// The encodings, as Redis 7.2 picks them (7.0 has no set listpack: there a small set of
/// strings is a hashtable).
#[tokio::test]
async fn encodings_follow_the_thresholds() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SADD", "s", "1", "2", "-3"]).await, int(3));
    assert_eq!(encoding(&mut c, "s").await, bulk("intset"));
    // Sorted, as an intset lists its members.
    assert_eq!(c.cmd(&["SMEMBERS", "s"]).await, bulks(&["-3", "1", "2"]));
    assert_eq!(c.cmd(&["SADD", "s", "9223372036854775807"]).await, int(1));
    assert_eq!(encoding(&mut c, "s").await, bulk("intset"));
    // A non-canonical integer is a string.
    assert_eq!(c.cmd(&["SADD", "s", "01"]).await, int(1));
    assert_eq!(encoding(&mut c, "s").await, bulk("listpack"));
    assert_eq!(c.cmd(&["SADD", "s", &"v".repeat(65)]).await, int(1));
    assert_eq!(encoding(&mut c, "s").await, bulk("hashtable"));
    // Removals never go back down.
    assert_eq!(c.cmd(&["SREM", "s", "01", &"v".repeat(65)]).await, int(2));
    assert_eq!(encoding(&mut c, "s").await, bulk("hashtable"));
    // 512 integers are an intset, 513 a hashtable.
    assert_eq!(
        sadd(&mut c, "ints", (0..512).map(|i| i.to_string())).await,
        int(512)
    );
    assert_eq!(encoding(&mut c, "ints").await, bulk("intset"));
    assert_eq!(c.cmd(&["SADD", "ints", "512"]).await, int(1));
    assert_eq!(encoding(&mut c, "ints").await, bulk("hashtable"));
    // 128 strings are a listpack, 129 a hashtable.
    assert_eq!(
        sadd(&mut c, "strs", (0..128).map(|i| format!("m{i}"))).await,
        int(128)
    );
    assert_eq!(encoding(&mut c, "strs").await, bulk("listpack"));
    assert_eq!(c.cmd(&["SADD", "strs", "m128"]).await, int(1));
    assert_eq!(encoding(&mut c, "strs").await, bulk("hashtable"));
    // An intset too large for a listpack goes to a hashtable for its first string.
    assert_eq!(
        sadd(&mut c, "mixed", (0..200).map(|i| i.to_string())).await,
        int(200)
    );
    assert_eq!(c.cmd(&["SADD", "mixed", "x"]).await, int(1));
    assert_eq!(encoding(&mut c, "mixed").await, bulk("hashtable"));
    // CONFIG SET applies to the next write.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "set-max-intset-entries", "2"])
            .await,
        ok()
    );
    assert_eq!(c.cmd(&["SADD", "t", "1", "2"]).await, int(2));
    assert_eq!(encoding(&mut c, "t").await, bulk("intset"));
    assert_eq!(c.cmd(&["SADD", "t", "3"]).await, int(1));
    assert_eq!(encoding(&mut c, "t").await, bulk("hashtable"));
    // The member count of one SADD picks the encoding up front (as 7.2).
    assert_eq!(c.cmd(&["SADD", "u", "1", "1", "1"]).await, int(1));
    assert_eq!(encoding(&mut c, "u").await, bulk("listpack"));
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "set-max-listpack-entries",
            "2",
            "set-max-listpack-value",
            "3"
        ])
        .await,
        ok()
    );
    assert_eq!(c.cmd(&["SADD", "v", "ab"]).await, int(1));
    assert_eq!(encoding(&mut c, "v").await, bulk("listpack"));
    assert_eq!(c.cmd(&["SADD", "v", "abcd"]).await, int(1));
    assert_eq!(encoding(&mut c, "v").await, bulk("hashtable"));
    assert_eq!(c.cmd(&["SADD", "w", "a", "b", "c"]).await, int(3));
    assert_eq!(encoding(&mut c, "w").await, bulk("hashtable"));
    // Stored results take the smallest encoding that fits them.
    assert_eq!(c.cmd(&["SADD", "p", "a", "b"]).await, int(2));
    assert_eq!(c.cmd(&["SUNIONSTORE", "q", "p"]).await, int(2));
    assert_eq!(encoding(&mut c, "q").await, bulk("listpack"));
    assert_eq!(c.cmd(&["SUNIONSTORE", "q", "t"]).await, int(3));
    assert_eq!(encoding(&mut c, "q").await, bulk("hashtable"));
    assert_eq!(c.cmd(&["SINTERSTORE", "q", "t", "ints"]).await, int(3));
    assert_eq!(encoding(&mut c, "q").await, bulk("hashtable"));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "set-max-intset-entries", "512"])
            .await,
        ok()
    );
    assert_eq!(c.cmd(&["SINTERSTORE", "q", "t", "ints"]).await, int(3));
    assert_eq!(encoding(&mut c, "q").await, bulk("intset"));
}

#[tokio::test]
async fn generic_commands_on_sets() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SADD", "s", "a", "b"]).await, int(2));
    assert_eq!(c.cmd(&["COPY", "s", "s2"]).await, int(1));
    assert_eq!(c.cmd(&["SADD", "s2", "c"]).await, int(1));
    assert_eq!(c.cmd(&["SCARD", "s"]).await, int(2));
    assert_eq!(c.cmd(&["RENAME", "s2", "s3"]).await, ok());
    assert_eq!(c.cmd(&["SCARD", "s3"]).await, int(3));
    let found = array_items(c.cmd(&["SCAN", "0", "TYPE", "set", "COUNT", "1000"]).await);
    assert_eq!(sorted_bulks(found[1].clone()), [&b"s"[..], b"s3"]);
    assert_eq!(c.cmd(&["PEXPIRE", "s", "1"]).await, int(1));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(c.cmd(&["SCARD", "s"]).await, int(0));
    assert_eq!(c.cmd(&["SINTER", "s", "s3"]).await, Frame::Array(vec![]));
    assert_eq!(c.cmd(&["DEL", "s3"]).await, int(1));
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
}

#[tokio::test]
async fn redis_client_set_round_trip() {
    let server = start_server().await;
    let mut con = redis_client(server.addr()).await;
    let added: i64 = con.sadd("tags", &["rust", "redis", "db"]).await.unwrap();
    assert_eq!(added, 3);
    let member: bool = con.sismember("tags", "rust").await.unwrap();
    assert!(member);
    let all: HashSet<String> = con.smembers("tags").await.unwrap();
    assert_eq!(all.len(), 3);
    let _: i64 = con.sadd("other", &["rust", "go"]).await.unwrap();
    let both: HashSet<String> = con.sinter(&["tags", "other"]).await.unwrap();
    assert_eq!(both, HashSet::from(["rust".to_string()]));
    let either: HashSet<String> = con.sunion(&["tags", "other"]).await.unwrap();
    assert_eq!(either.len(), 4);
    let moved: bool = con.smove("tags", "other", "db").await.unwrap();
    assert!(moved);
    let popped: Option<String> = con.spop("other").await.unwrap();
    assert!(popped.is_some());
    let count: i64 = con.scard("other").await.unwrap();
    assert_eq!(count, 2);
}

/// Runs SSCAN to the end with `options`; returns the members seen and the number of calls.
async fn full_sscan(c: &mut Raw, key: &str, options: &[&str]) -> (Vec<String>, usize) {
    let (elements, calls) = scan_to_end(c, &["SSCAN", key], options).await;
    (members_of(Frame::Array(elements)), calls)
}

#[tokio::test]
async fn sscan_options_and_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let empty = Frame::Array(vec![bulk("0"), Frame::Array(vec![])]);
    assert_eq!(c.cmd(&["SSCAN", "nokey", "0"]).await, empty);
    assert_eq!(c.cmd(&["SSCAN", "nokey", "0", "COUNT", "0"]).await, empty);
    assert_eq!(
        c.cmd(&["SSCAN", "nokey", "x"]).await,
        err("ERR invalid cursor")
    );
    assert_eq!(c.cmd(&["SADD", "s", "a", "b", "ab", "1"]).await, int(4));
    for bad in [
        &["BAD"][..],
        &["COUNT", "0"],
        &["COUNT", "-1"],
        &["MATCH"],
        &["NOVALUES"],
    ] {
        let mut args = vec!["SSCAN", "s", "0"];
        args.extend_from_slice(bad);
        assert_eq!(c.cmd(&args).await, err("ERR syntax error"), "{bad:?}");
    }
    assert_eq!(
        c.cmd(&["SSCAN", "s", "0", "COUNT", "x"]).await,
        err(NOT_INTEGER)
    );
    // A compact set comes back whole with cursor 0, whatever the cursor and COUNT.
    let (all, calls) = full_sscan(&mut c, "s", &["COUNT", "1"]).await;
    assert_eq!((all, calls), (strings(&["1", "a", "ab", "b"]), 1));
    let reply = array_items(c.cmd(&["SSCAN", "s", "12345", "MATCH", "a*"]).await);
    assert_eq!(reply[0], bulk("0"));
    assert_eq!(members_of(reply[1].clone()), strings(&["a", "ab"]));
    // An intset too.
    assert_eq!(c.cmd(&["SADD", "i", "3", "1", "2"]).await, int(3));
    assert_eq!(
        c.cmd(&["SSCAN", "i", "0", "MATCH", "[12]"]).await,
        Frame::Array(vec![bulk("0"), bulks(&["1", "2"])])
    );
}

#[tokio::test]
async fn sscan_walks_a_large_set() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        sadd(&mut c, "big", (0..3000).map(|i| format!("m{i}"))).await,
        int(3000)
    );
    let (seen, calls) = full_sscan(&mut c, "big", &["COUNT", "100"]).await;
    assert!(calls > 1);
    let distinct: BTreeSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), 3000);
    let (matched, _) = full_sscan(&mut c, "big", &["MATCH", "m1??", "COUNT", "500"]).await;
    assert_eq!(matched.iter().collect::<BTreeSet<_>>().len(), 100);
}

/// Redis's guarantee: a member present for the whole iteration is returned, while another
/// connection adds and removes other members (the set grows, then shrinks, between calls).
#[tokio::test]
async fn sscan_returns_every_stable_member_across_growth_and_shrinking() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    let stable: Vec<String> = (0..3000).map(|i| format!("stable:{i}")).collect();
    assert_eq!(sadd(&mut c, "s", stable.clone()).await, int(3000));
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    let mut round = 0usize;
    loop {
        let reply = array_items(c.cmd(&["SSCAN", "s", &cursor, "COUNT", "50"]).await);
        seen.extend(members_of(reply[1].clone()));
        cursor = text_of(&reply[0]);
        if cursor == "0" {
            break;
        }
        // Grow for a while (splits), then shrink well below the start (merges).
        if round < 20 {
            let extra = (0..500).map(|i| format!("extra:{round}:{i}"));
            assert_eq!(sadd(&mut other, "s", extra).await, int(500));
        } else if round < 40 {
            let mut args = vec!["SREM".to_string(), "s".to_string()];
            args.extend((0..500).map(|i| format!("extra:{}:{i}", round - 20)));
            assert_eq!(other.cmd(&args).await, int(500));
        }
        round += 1;
        assert!(round < 100_000, "the scan ends");
    }
    for member in &stable {
        assert!(seen.contains(member), "{member} missed");
    }
}

/// SINTER of two large sets (both hashtables) and of a large with a small one.
#[tokio::test]
async fn operations_on_large_sets() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        sadd(&mut c, "x", (0..20_000).map(|i| i.to_string())).await,
        int(20_000)
    );
    assert_eq!(
        sadd(&mut c, "y", (10_000..30_000).map(|i| i.to_string())).await,
        int(20_000)
    );
    assert_eq!(c.cmd(&["SINTERCARD", "2", "x", "y"]).await, int(10_000));
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "x", "y", "LIMIT", "7"]).await,
        int(7)
    );
    let both = members_of(c.cmd(&["SINTER", "x", "y"]).await);
    let mut expected: Vec<String> = (10_000..20_000).map(|i: i32| i.to_string()).collect();
    expected.sort();
    assert_eq!(both, expected);
    assert_eq!(c.cmd(&["SUNIONSTORE", "u", "x", "y"]).await, int(30_000));
    assert_eq!(c.cmd(&["SDIFFSTORE", "d", "u", "x"]).await, int(10_000));
    assert_eq!(c.cmd(&["SISMEMBER", "d", "29999"]).await, int(1));
    assert_eq!(c.cmd(&["SISMEMBER", "d", "0"]).await, int(0));
    // The difference both ways: a small first set (probing) and a large one (striking).
    assert_eq!(
        c.cmd(&["SADD", "small", "5", "15000", "25000", "z"]).await,
        int(4)
    );
    assert_eq!(
        members_of(c.cmd(&["SDIFF", "small", "x", "y"]).await),
        strings(&["z"])
    );
    assert_eq!(
        c.cmd(&["SDIFFSTORE", "d", "x", "small", "y"]).await,
        int(9_999)
    );
}

mod persistence {
    //! Set writes through the append-only file (replay, rewrite) and the snapshot; SPOP's
    //! rewrite as SREM or DEL.

    use std::path::Path;
    use std::time::Duration;

    use kvserver::config::FsyncPolicy;
    use kvserver::ServerHandle;

    use super::{encoding, members_of, sadd};
    use crate::util::*;

    async fn start_in(dir: &Path, appendonly: bool) -> ServerHandle {
        let dir = dir.to_path_buf();
        start_server_with(move |config| {
            config.dir = dir;
            config.appendonly = appendonly;
            config.appendfsync = FsyncPolicy::Always;
        })
        .await
    }

    async fn stop(server: ServerHandle) {
        server.shutdown();
        tokio::time::timeout(Duration::from_secs(10), server.stopped())
            .await
            .expect("server stops");
    }

    /// Every set, database by database: `(db, key, sorted members, encoding)`.
    async fn set_state(c: &mut Raw) -> Vec<(usize, String, Vec<String>, String)> {
        let mut state = Vec::new();
        for db in 0..2 {
            assert_eq!(c.cmd(&["SELECT", &db.to_string()]).await, ok());
            let mut keys: Vec<String> = array_items(c.cmd(&["KEYS", "*"]).await)
                .iter()
                .map(text_of)
                .collect();
            keys.sort();
            for key in keys {
                let members = members_of(c.cmd(&["SMEMBERS", &key]).await);
                let encoding = text_of(&encoding(c, &key).await);
                state.push((db, key, members, encoding));
            }
        }
        assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
        state
    }

    /// Every set write comes back after a restart that replays the log, after a rewrite
    /// and a restart, and from the snapshot alone; random pops replay as what they took.
    #[tokio::test]
    async fn sets_survive_replay_rewrite_and_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let server = start_in(dir.path(), true).await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(
            c.cmd(&["SADD", "ints", "1", "2", "3", "-70000"]).await,
            int(4)
        );
        assert_eq!(c.cmd(&["SADD", "strs", "a", "b", "c", "d"]).await, int(4));
        assert_eq!(c.cmd(&["SREM", "strs", "a", "z"]).await, int(1));
        assert_eq!(
            sadd(&mut c, "big", (0..2000).map(|i| format!("m{i}"))).await,
            int(2000)
        );
        // Random pops: one, a few, and one that takes everything.
        c.cmd(&["SPOP", "big"]).await;
        assert_eq!(members_of(c.cmd(&["SPOP", "big", "700"]).await).len(), 700);
        c.cmd(&["SPOP", "ints"]).await;
        assert_eq!(c.cmd(&["SADD", "gone", "x", "y"]).await, int(2));
        assert_eq!(members_of(c.cmd(&["SPOP", "gone", "5"]).await).len(), 2);
        assert_eq!(c.cmd(&["SMOVE", "strs", "moved", "b"]).await, int(1));
        assert_eq!(
            c.cmd(&["SINTERSTORE", "inter", "strs", "big"]).await,
            int(0)
        );
        assert_eq!(
            c.cmd(&["SUNIONSTORE", "union", "strs", "ints", "moved"])
                .await,
            int(6)
        );
        assert_eq!(
            c.cmd(&["SDIFFSTORE", "diff", "big", "strs"]).await,
            int(1299)
        );
        assert_eq!(c.cmd(&["COPY", "union", "union", "DB", "1"]).await, int(1));
        assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
        assert_eq!(c.cmd(&["SADD", "union", "only-in-1"]).await, int(1));
        assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
        let expected = set_state(&mut c).await;
        assert_eq!(expected.len(), 7, "{expected:?}");
        stop(server).await;

        let server = start_in(dir.path(), true).await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(set_state(&mut c).await, expected, "after replay");
        assert_eq!(
            c.cmd(&["BGREWRITEAOF"]).await,
            simple("Background append only file rewriting started")
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let info = text_of(&c.cmd(&["INFO", "persistence"]).await);
            if info_field(&info, "aof_rewrite_in_progress").as_deref() == Some("0") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "rewrite finishes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let popped = text_of(&c.cmd(&["SPOP", "diff"]).await);
        assert_eq!(c.cmd(&["SAVE"]).await, ok());
        stop(server).await;

        let mut expected = expected;
        for (_, key, members, _) in &mut expected {
            if key == "diff" {
                members.retain(|m| *m != popped);
            }
        }
        let server = start_in(dir.path(), true).await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(set_state(&mut c).await, expected, "after rewrite");
        stop(server).await;
        let server = start_in(dir.path(), false).await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(set_state(&mut c).await, expected, "from the snapshot");
        stop(server).await;
    }

    /// The log holds deterministic records: SPOP as SREM of what it took (DEL when it took
    /// everything), the rest as sent, and nothing for writes that changed nothing.
    #[tokio::test]
    async fn set_log_records() {
        let dir = tempfile::tempdir().unwrap();
        let server = start_in(dir.path(), true).await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(c.cmd(&["SADD", "s", "a"]).await, int(1));
        assert_eq!(c.cmd(&["SADD", "s", "a"]).await, int(0));
        assert_eq!(c.cmd(&["SREM", "s", "nope"]).await, int(0));
        assert_eq!(c.cmd(&["SPOP", "s"]).await, bulk("a"));
        assert_eq!(c.cmd(&["SADD", "t", "x", "y"]).await, int(2));
        assert_eq!(members_of(c.cmd(&["SPOP", "t", "2"]).await), ["x", "y"]);
        assert_eq!(c.cmd(&["SADD", "u", "1", "2", "3"]).await, int(3));
        let two = members_of(c.cmd(&["SPOP", "u", "2"]).await);
        assert_eq!(c.cmd(&["SPOP", "u", "0"]).await, Frame::Array(vec![]));
        assert_eq!(c.cmd(&["SMOVE", "u", "v", "nope"]).await, int(0));
        assert_eq!(c.cmd(&["SMOVE", "u", "u", "nope"]).await, int(0));
        assert_eq!(c.cmd(&["SINTERSTORE", "w", "u", "nokey"]).await, int(0));
        assert_eq!(c.cmd(&["SUNIONSTORE", "w", "u"]).await, int(1));
        assert_eq!(c.cmd(&["SDIFFSTORE", "w", "u", "u"]).await, int(0));
        stop(server).await;
        let incr =
            std::fs::read(dir.path().join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
        let text = String::from_utf8_lossy(&incr);
        let words: Vec<&str> = text
            .split("\r\n")
            .filter(|w| !w.starts_with('*') && !w.starts_with('$') && !w.is_empty())
            .collect();
        let mut expected = vec![
            "SELECT", "0", "SADD", "s", "a", "SREM", "s", "a", "SADD", "t", "x", "y", "DEL", "t",
            "SADD", "u", "1", "2", "3", "SREM", "u",
        ];
        // The popped members in the order taken (the reply's order is the same).
        let popped: Vec<&str> = words[expected.len()..expected.len() + 2].to_vec();
        let mut sorted = popped.clone();
        sorted.sort();
        assert_eq!(sorted, two);
        expected.extend(popped);
        expected.extend(["SUNIONSTORE", "w", "u", "SDIFFSTORE", "w", "u", "u"]);
        assert_eq!(words, expected);
    }
}
