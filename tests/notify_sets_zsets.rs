//! Keyspace notifications of the set and sorted-set commands compared with a real
//! redis-server (see `notifications::notifications_of`): every write command of the two
//! families, including the calls that change nothing (and so send nothing), the ones that
//! empty a key (`del` after the command's own event) and the store commands whose empty
//! result removes the destination (`del` alone). Skipped when redis-server is missing.

use crate::differential::start_redis_server;
use crate::notifications::notifications_of;
use crate::util::*;

/// The messages both servers send for `commands`, asserting they are the same and that
/// redis-server sent at least `at_least` (so a command list that stopped notifying
/// anything cannot pass).
async fn assert_same_notifications(commands: &[&[&str]], at_least: usize) {
    let Some(redis) = start_redis_server().await else {
        return;
    };
    let server = start_server().await;
    let expected = notifications_of(redis.addr, commands).await;
    assert!(
        expected.len() >= at_least,
        "redis sent {} messages: {expected:?}",
        expected.len()
    );
    let got = notifications_of(server.addr(), commands).await;
    assert_eq!(got, expected);
}

#[tokio::test]
async fn set_notifications_match_redis() {
    let commands: &[&[&str]] = &[
        // SADD: only when a member is new.
        &["SADD", "s", "a", "b", "c"],
        &["SADD", "s", "a"],
        &["SADD", "s", "a", "d"],
        // SREM: only when a member existed; `del` with the last one.
        &["SREM", "s", "x"],
        &["SREM", "s", "a", "x"],
        &["SREM", "missing", "a"],
        &["SREM", "s", "b", "c", "d"],
        // SPOP without and with a count: `spop`, then `del` when the set is gone.
        &["SADD", "s", "a", "b", "c", "d", "e"],
        &["SPOP", "s"],
        &["SPOP", "s", "0"],
        &["SPOP", "s", "2"],
        &["SPOP", "s", "5"],
        &["SPOP", "missing"],
        &["SPOP", "missing", "3"],
        &["SADD", "s", "a"],
        &["SPOP", "s"],
        &["SADD", "s", "a", "b"],
        &["SPOP", "s", "2"],
        // SMOVE: `srem` (and `del`) on the source, `sadd` on the destination unless the
        // member was there already; nothing when it moves nowhere.
        &["SADD", "src", "a", "b", "c"],
        &["SMOVE", "src", "dst", "a"],
        &["SMOVE", "src", "dst", "zz"],
        &["SMOVE", "src", "src", "b"],
        &["SMOVE", "missing", "dst", "b"],
        &["SADD", "dst", "b"],
        &["SMOVE", "src", "dst", "b"],
        &["SMOVE", "src", "dst", "c"],
        // The store commands: their own event, `del` for an empty result over an existing
        // destination, nothing over a missing one.
        &["SADD", "a", "1", "2", "3"],
        &["SADD", "b", "2", "3", "4"],
        &["SINTERSTORE", "d", "a", "b"],
        &["SINTERSTORE", "d", "a", "missing"],
        &["SINTERSTORE", "d", "a", "missing"],
        &["SUNIONSTORE", "d", "a", "b"],
        &["SUNIONSTORE", "d", "missing"],
        &["SUNIONSTORE", "d", "missing"],
        &["SDIFFSTORE", "d", "a", "b"],
        &["SDIFFSTORE", "d", "a", "a"],
        &["SDIFFSTORE", "d", "missing"],
        &["SDIFFSTORE", "d", "a"],
        &["SINTERSTORE", "a", "a", "b"],
        // Errors and reads send nothing.
        &["SET", "str", "v"],
        &["SADD", "str", "a"],
        &["SREM", "str", "a"],
        &["SPOP", "str"],
        &["SMOVE", "str", "a", "2"],
        &["SMOVE", "a", "str", "2"],
        &["SINTERSTORE", "d", "str"],
        &["SUNIONSTORE", "str", "a"],
        &["SINTER", "a", "b"],
        &["SUNION", "a", "b"],
        &["SDIFF", "a", "b"],
        &["SINTERCARD", "2", "a", "b"],
        &["SMEMBERS", "a"],
        &["SISMEMBER", "a", "2"],
        &["SMISMEMBER", "a", "2", "3"],
        &["SCARD", "a"],
        &["SRANDMEMBER", "a"],
        &["SSCAN", "a", "0"],
        // Another database.
        &["SELECT", "5"],
        &["SADD", "s", "a"],
        &["SREM", "s", "a"],
    ];
    assert_same_notifications(commands, 78).await;
}

#[tokio::test]
async fn sorted_set_notifications_match_redis() {
    let commands: &[&[&str]] = &[
        // ZADD: `zadd` when a member is added or its score changes; `zincr` for INCR.
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZADD", "z", "1", "a"],
        &["ZADD", "z", "5", "a"],
        &["ZADD", "z", "NX", "9", "a"],
        &["ZADD", "z", "XX", "9", "new"],
        &["ZADD", "z", "XX", "9", "a"],
        &["ZADD", "z", "GT", "1", "a"],
        &["ZADD", "z", "LT", "1", "a"],
        &["ZADD", "z", "CH", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a"],
        &["ZADD", "z", "INCR", "0", "a"],
        &["ZADD", "z", "NX", "INCR", "1", "a"],
        &["ZADD", "missing", "XX", "1", "a"],
        &["ZADD", "missing", "XX", "INCR", "1", "a"],
        &["ZADD", "z", "1", "a", "nan", "b"],
        &["ZADD", "z", "INCR", "inf", "a"],
        &["ZADD", "z", "INCR", "-inf", "a"],
        // ZINCRBY: `zincr`, nothing for a 0 increment.
        &["ZINCRBY", "z", "0", "b"],
        &["ZINCRBY", "z", "1", "b"],
        &["ZINCRBY", "z2", "1", "a"],
        // ZREM: `zrem`, then `del` with the last member.
        &["ZREM", "z", "x"],
        &["ZREM", "z", "a", "x"],
        &["ZREM", "missing", "a"],
        &["ZREM", "z2", "a"],
        // ZREMRANGEBY*: their own events, nothing for an empty range.
        &[
            "ZADD", "r", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f",
        ],
        &["ZREMRANGEBYRANK", "r", "10", "20"],
        &["ZREMRANGEBYRANK", "r", "0", "0"],
        &["ZREMRANGEBYSCORE", "r", "100", "200"],
        &["ZREMRANGEBYSCORE", "r", "2", "2"],
        &["ZREMRANGEBYLEX", "r", "[x", "[y"],
        &["ZREMRANGEBYLEX", "r", "-", "[d"],
        &["ZREMRANGEBYRANK", "missing", "0", "-1"],
        &["ZREMRANGEBYSCORE", "r", "-inf", "+inf"],
        &["ZADD", "r", "1", "a", "2", "b"],
        &["ZREMRANGEBYLEX", "r", "-", "+"],
        &["ZADD", "r", "1", "a", "2", "b"],
        &["ZREMRANGEBYRANK", "r", "0", "-1"],
        // Pops: `zpopmin`/`zpopmax` (ZMPOP too), then `del` when emptied; nothing for a
        // count of 0 or a missing key.
        &[
            "ZADD", "p", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
        ],
        &["ZPOPMIN", "p"],
        &["ZPOPMAX", "p"],
        &["ZPOPMIN", "p", "0"],
        &["ZPOPMAX", "p", "0"],
        &["ZPOPMIN", "missing"],
        &["ZPOPMAX", "missing", "2"],
        &["ZPOPMIN", "p", "2"],
        &["ZPOPMAX", "p", "5"],
        &["ZADD", "p", "1", "a"],
        &["ZPOPMIN", "p", "1"],
        &["ZADD", "p", "1", "a", "2", "b", "3", "c"],
        &["ZMPOP", "2", "missing", "p", "MIN"],
        &["ZMPOP", "1", "p", "MAX", "COUNT", "1"],
        &["ZMPOP", "1", "p", "MAX", "COUNT", "10"],
        &["ZMPOP", "1", "p", "MAX", "COUNT", "10"],
        // The store commands: their own event, `del` for an empty result over an existing
        // destination, nothing over a missing one.
        &["ZADD", "a", "1", "x", "2", "y"],
        &["ZADD", "b", "1", "y", "2", "w"],
        &["ZUNIONSTORE", "d", "2", "a", "b"],
        &["ZINTERSTORE", "d", "2", "a", "b"],
        &["ZDIFFSTORE", "d", "2", "a", "b"],
        &["ZINTERSTORE", "d", "2", "a", "missing"],
        &["ZINTERSTORE", "d", "2", "a", "missing"],
        &["ZUNIONSTORE", "d", "1", "missing"],
        &["ZDIFFSTORE", "d", "2", "a", "a"],
        &["ZDIFFSTORE", "d", "1", "a"],
        &["ZDIFFSTORE", "d", "2", "a", "a"],
        &[
            "ZUNIONSTORE",
            "d",
            "2",
            "a",
            "b",
            "WEIGHTS",
            "1",
            "2",
            "AGGREGATE",
            "MAX",
        ],
        &["ZRANGESTORE", "d2", "a", "0", "-1"],
        &["ZRANGESTORE", "d2", "a", "5", "10"],
        &["ZRANGESTORE", "d2", "a", "5", "10"],
        &["ZRANGESTORE", "d2", "a", "0", "0"],
        &["ZRANGESTORE", "d2", "missing", "0", "-1"],
        &["ZRANGESTORE", "d2", "a", "(1", "+inf", "BYSCORE"],
        &["ZRANGESTORE", "d2", "a", "(5", "+inf", "BYSCORE"],
        &["ZRANGESTORE", "d2", "a", "[y", "[x", "BYLEX", "REV"],
        &["ZRANGESTORE", "d2", "a", "0", "-1", "REV"],
        &["ZINTERSTORE", "a", "2", "a", "b"],
        // Errors and reads send nothing.
        &["SET", "str", "v"],
        &["ZADD", "str", "1", "a"],
        &["ZINCRBY", "str", "1", "a"],
        &["ZREM", "str", "a"],
        &["ZREMRANGEBYRANK", "str", "0", "-1"],
        &["ZPOPMIN", "str"],
        &["ZMPOP", "1", "str", "MIN"],
        &["ZUNIONSTORE", "d", "1", "str"],
        &["ZRANGESTORE", "d", "str", "0", "-1"],
        &["ZRANGE", "b", "0", "-1"],
        &["ZRANGEBYSCORE", "b", "-inf", "+inf"],
        &["ZREVRANGEBYLEX", "b", "+", "-"],
        &["ZSCORE", "b", "y"],
        &["ZMSCORE", "b", "y", "w"],
        &["ZRANK", "b", "y"],
        &["ZCARD", "b"],
        &["ZCOUNT", "b", "-inf", "+inf"],
        &["ZLEXCOUNT", "b", "-", "+"],
        &["ZRANDMEMBER", "b"],
        &["ZUNION", "2", "a", "b"],
        &["ZINTER", "2", "a", "b"],
        &["ZDIFF", "2", "a", "b"],
        &["ZINTERCARD", "2", "a", "b"],
        &["ZSCAN", "b", "0"],
        // Another database.
        &["SELECT", "5"],
        &["ZADD", "z", "1", "a"],
        &["ZPOPMAX", "z"],
    ];
    assert_same_notifications(commands, 118).await;
}

/// The blocking pops served at once notify as their non-blocking twins. They are served in
/// `cmd/blocking.rs` through `store/waiters.rs`, which do not notify yet.
#[tokio::test]
async fn blocking_sorted_set_pop_notifications_match_redis() {
    let commands: &[&[&str]] = &[
        &["ZADD", "bz", "1", "a", "2", "b", "3", "c"],
        &["BZPOPMIN", "bz", "0"],
        &["BZPOPMAX", "missing", "bz", "0"],
        &["BZMPOP", "0", "1", "bz", "MIN", "COUNT", "5"],
    ];
    assert_same_notifications(commands, 8).await;
}
