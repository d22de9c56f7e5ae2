//! TTLs: the EXPIRE family and its NX/XX/GT/LT conditions, TTL queries, PERSIST, lazy expiry
//! on access, active expiry by the server's cron, and overwrites of volatile keys (whose stale
//! heap entries must never delete the new value).

use std::time::Duration;

use crate::util::*;

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

/// Longest the tests wait for the cron (10 Hz by default) to expire keys.
const CRON_WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn expire_family_with_conditions() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    // A missing key is never given a TTL.
    for command in ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"] {
        assert_eq!(c.cmd(&[command, "nokey", "100"]).await, int(0), "{command}");
    }
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
    // GT never applies to a persistent key (its TTL counts as infinite); LT always does.
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "GT"]).await, int(0));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "XX"]).await, int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "LT"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(100));
    assert_eq!(c.cmd(&["EXPIRE", "k", "200", "NX"]).await, int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "50", "GT"]).await, int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "200", "LT"]).await, int(0));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(100));
    assert_eq!(c.cmd(&["EXPIRE", "k", "200", "GT"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(200));
    assert_eq!(c.cmd(&["EXPIRE", "k", "150", "lt"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(150));
    assert_eq!(c.cmd(&["EXPIRE", "k", "300", "XX"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(300));
    assert_eq!(c.cmd(&["EXPIRE", "k", "400", "XX", "GT"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(400));

    assert_eq!(c.cmd(&["PEXPIRE", "k", "500000", "GT"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(500));
    let at = unix_ms() / 1000 + 1000;
    assert_eq!(
        c.cmd(&["EXPIREAT", "k", &at.to_string(), "GT"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]).await, int(at as i64));
    let at_ms = at * 1000 - 1;
    assert_eq!(
        c.cmd(&["PEXPIREAT", "k", &at_ms.to_string(), "GT"]).await,
        int(0)
    );
    assert_eq!(
        c.cmd(&["PEXPIREAT", "k", &at_ms.to_string(), "LT"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]).await, int(at_ms as i64));

    // Option errors, checked before the key is looked up.
    let nx_with = err("ERR NX and XX, GT or LT options at the same time are not compatible");
    for options in [["NX", "XX"], ["NX", "GT"], ["LT", "NX"]] {
        let args = ["EXPIRE", "nokey", "10", options[0], options[1]];
        assert_eq!(c.cmd(&args).await, nx_with, "{options:?}");
    }
    assert_eq!(
        c.cmd(&["PEXPIRE", "k", "10", "GT", "LT"]).await,
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(
        c.cmd(&["EXPIRE", "k", "10", "FOO"]).await,
        err("ERR Unsupported option FOO")
    );
    assert_eq!(c.cmd(&["EXPIRE", "k", "abc"]).await, err(NOT_INTEGER));
    assert_eq!(c.cmd(&["EXPIRE", "k", "1.5"]).await, err(NOT_INTEGER));
    for command in ["EXPIRE", "PEXPIRE", "EXPIREAT"] {
        assert_eq!(
            c.cmd(&[command, "nokey", "9223372036854775807"]).await,
            err(&format!(
                "ERR invalid expire time in '{}' command",
                command.to_lowercase()
            ))
        );
    }
    assert_eq!(c.cmd(&["EXPIRE", "k"]).await, arity_err("expire"));
    assert_eq!(
        c.cmd(&["PEXPIRETIME", "k"]).await,
        int(at_ms as i64),
        "unchanged"
    );

    // The largest absolute time is accepted as it is, and rounding it to seconds does not
    // overflow (this used to drop the connection).
    assert_eq!(
        c.cmd(&["PEXPIREAT", "k", "9223372036854775807"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]).await, int(i64::MAX));
    assert_eq!(
        c.cmd(&["EXPIRETIME", "k"]).await,
        int(9_223_372_036_854_776)
    );
    let ttl = int_of(&c.cmd(&["TTL", "k"]).await);
    assert!(ttl > 9_223_370_000_000_000, "{ttl}");
    let pttl = int_of(&c.cmd(&["PTTL", "k"]).await);
    assert!(pttl > 9_223_370_000_000_000_000, "{pttl}");
    assert_eq!(
        c.cmd(&["SET", "k", "v", "PXAT", "9223372036854775807"])
            .await,
        ok()
    );
    assert_eq!(
        c.cmd(&["EXPIRETIME", "k"]).await,
        int(9_223_372_036_854_776)
    );
    assert_eq!(
        c.cmd(&["EXPIRE", "k", "-9223372036854775808"]).await,
        err("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(
        c.cmd(&["PEXPIREAT", "k", "-9223372036854775808"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, int(0));
}

#[tokio::test]
async fn expire_in_the_past_deletes() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    for args in [
        &["EXPIRE", "k", "-1"][..],
        &["EXPIRE", "k", "0"],
        &["PEXPIRE", "k", "-100"],
        &["EXPIREAT", "k", "100"],
        &["PEXPIREAT", "k", "1"],
    ] {
        assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
        assert_eq!(c.cmd(args).await, int(1), "{args:?}");
        assert_eq!(c.cmd(&["EXISTS", "k"]).await, int(0), "{args:?}");
    }
    // A condition that is not met leaves the key alone.
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
    assert_eq!(c.cmd(&["EXPIRE", "k", "0", "XX"]).await, int(0));
    assert_eq!(c.cmd(&["PEXPIREAT", "k", "1", "GT"]).await, int(0));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v"));
}

#[tokio::test]
async fn ttl_queries_and_persist() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    for command in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(
            c.cmd(&[command, "nokey"]).await,
            int(-2),
            "{command} of a missing key"
        );
    }
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
    for command in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(
            c.cmd(&[command, "k"]).await,
            int(-1),
            "{command} of a persistent key"
        );
    }
    assert_eq!(c.cmd(&["PERSIST", "k"]).await, int(0));
    assert_eq!(c.cmd(&["PERSIST", "nokey"]).await, int(0));

    let at_ms = unix_ms() + 100_000;
    assert_eq!(c.cmd(&["PEXPIREAT", "k", &at_ms.to_string()]).await, int(1));
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]).await, int(at_ms as i64));
    // EXPIRETIME rounds to the nearest second, as Redis.
    assert_eq!(
        c.cmd(&["EXPIRETIME", "k"]).await,
        int(((at_ms + 500) / 1000) as i64)
    );
    let pttl = int_of(&c.cmd(&["PTTL", "k"]).await);
    assert!((90_000..=100_000).contains(&pttl), "pttl {pttl}");
    let ttl = int_of(&c.cmd(&["TTL", "k"]).await);
    assert!((90..=100).contains(&ttl), "ttl {ttl}");

    assert_eq!(c.cmd(&["PERSIST", "k"]).await, int(1));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1));
    assert_eq!(c.cmd(&["PERSIST", "k"]).await, int(0));
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("v"));
    assert_eq!(c.cmd(&["TTL"]).await, arity_err("ttl"));
}

#[tokio::test]
async fn expired_keys_are_invisible_on_access() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let set_at = std::time::Instant::now();
    assert_eq!(c.cmd(&["SET", "k", "v", "PX", "30"]).await, ok());
    let mut pipeline = Vec::new();
    for i in 0..100 {
        pipeline.extend(encode(&["SET", &format!("many:{i}"), "v", "PX", "30"]));
    }
    c.send(&pipeline).await;
    for _ in 0..100 {
        assert_eq!(c.read().await, ok());
    }
    assert_eq!(c.cmd(&["SET", "control", "v", "PX", "100000"]).await, ok());
    // Wait just past the deadline (measured from before the first SET).
    tokio::time::sleep(Duration::from_millis(40).saturating_sub(set_at.elapsed())).await;
    assert_eq!(c.cmd(&["GET", "k"]).await, nil());
    assert_eq!(c.cmd(&["EXISTS", "k"]).await, int(0));
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-2));
    assert_eq!(c.cmd(&["STRLEN", "k"]).await, int(0));
    let keys: Vec<String> = (0..100).map(|i| format!("many:{i}")).collect();
    let mut mget = vec!["MGET".to_owned()];
    mget.extend(keys.iter().cloned());
    let values = array_items(c.cmd(&mget).await);
    assert_eq!(values.len(), 100);
    assert!(
        values.iter().all(|v| *v == nil()),
        "MGET returned expired values"
    );
    assert_eq!(c.cmd(&["KEYS", "many:*"]).await, Frame::Array(vec![]));
    assert_eq!(c.cmd(&["GET", "control"]).await, bulk("v"));
    // Writes see the key as absent too.
    assert_eq!(c.cmd(&["SET", "k", "new", "NX"]).await, ok());
    assert_eq!(c.cmd(&["TTL", "k"]).await, int(-1));
}

/// Keys that are never read are removed by the cron; INFO counts them.
#[tokio::test]
async fn active_expiry_removes_unread_keys() {
    const KEYS: usize = 300;
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "persistent", "v"]).await, ok());
    let mut pipeline = Vec::new();
    for i in 0..KEYS {
        let ttl = (20 + i % 31).to_string();
        pipeline.extend(encode(&["SET", &format!("volatile:{i}"), "v", "PX", &ttl]));
    }
    c.send(&pipeline).await;
    for _ in 0..KEYS {
        assert_eq!(c.read().await, ok());
    }
    // DBSIZE counts expired keys that have not been removed yet, as Redis's does, so it
    // only drops when the cron deletes them.
    let mut probe = Raw::connect(server.addr()).await;
    poll_until_reply(&mut probe, &["DBSIZE"], int(1), CRON_WAIT).await;
    let keyspace = text_of(&c.cmd(&["INFO", "keyspace"]).await);
    assert_eq!(
        info_field(&keyspace, "db0").as_deref(),
        Some("keys=1,expires=0,avg_ttl=0"),
        "{keyspace}"
    );
    let stats = text_of(&c.cmd(&["INFO", "stats"]).await);
    assert_eq!(
        info_field(&stats, "expired_keys").as_deref(),
        Some(KEYS.to_string().as_str()),
        "{stats}"
    );
    // Nothing was read, so no keyspace hit or miss either.
    assert_eq!(info_field(&stats, "keyspace_hits").as_deref(), Some("0"));
    assert_eq!(info_field(&stats, "keyspace_misses").as_deref(), Some("0"));
    assert_eq!(c.cmd(&["GET", "persistent"]).await, bulk("v"));
}

/// Overwriting a volatile key in any way that drops or moves its TTL leaves a stale
/// deadline in the expiry heap; when the cron reaches that deadline it must not delete the
/// new value.
#[tokio::test]
async fn overwritten_volatile_keys_survive_their_old_deadline() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let keys = [
        "set", "setex", "persist", "getset", "mset", "getex", "pexpire", "rename", "delset", "incr",
    ];
    for key in keys {
        assert_eq!(c.cmd(&["SET", key, "old", "PX", "300"]).await, ok());
    }
    assert_eq!(c.cmd(&["SET", "src", "renamed"]).await, ok());
    assert_eq!(c.cmd(&["SET", "set", "new"]).await, ok());
    assert_eq!(c.cmd(&["SET", "setex", "new", "EX", "100"]).await, ok());
    assert_eq!(c.cmd(&["PERSIST", "persist"]).await, int(1));
    assert_eq!(c.cmd(&["GETSET", "getset", "new"]).await, bulk("old"));
    assert_eq!(c.cmd(&["MSET", "mset", "new"]).await, ok());
    assert_eq!(c.cmd(&["GETEX", "getex", "PERSIST"]).await, bulk("old"));
    assert_eq!(c.cmd(&["PEXPIRE", "pexpire", "100000"]).await, int(1));
    assert_eq!(c.cmd(&["RENAME", "src", "rename"]).await, ok());
    assert_eq!(c.cmd(&["DEL", "delset"]).await, int(1));
    assert_eq!(c.cmd(&["SET", "delset", "new"]).await, ok());
    // INCR keeps the TTL: this key must really expire (the control for the others).
    assert_eq!(c.cmd(&["SET", "incr", "1", "KEEPTTL"]).await, ok());
    assert_eq!(c.cmd(&["INCR", "incr"]).await, int(2));
    // A sentinel set last: once the cron has expired it, it has passed every old deadline
    // above (the heap is processed in deadline order).
    assert_eq!(c.cmd(&["SET", "sentinel", "x", "PX", "300"]).await, ok());
    let survivors = keys.len() - 1;
    let mut probe = Raw::connect(server.addr()).await;
    poll_until_reply(&mut probe, &["DBSIZE"], int(survivors as i64), CRON_WAIT).await;
    assert_eq!(c.cmd(&["EXISTS", "incr", "sentinel"]).await, int(0));
    for (key, value) in [
        ("set", "new"),
        ("mset", "new"),
        ("delset", "new"),
        ("getset", "new"),
        ("persist", "old"),
        ("getex", "old"),
        ("rename", "renamed"),
    ] {
        assert_eq!(c.cmd(&["GET", key]).await, bulk(value), "{key}");
        assert_eq!(c.cmd(&["TTL", key]).await, int(-1), "{key}");
    }
    assert_eq!(c.cmd(&["GET", "setex"]).await, bulk("new"));
    let ttl = int_of(&c.cmd(&["TTL", "setex"]).await);
    assert!((95..=100).contains(&ttl), "setex ttl {ttl}");
    assert_eq!(c.cmd(&["GET", "pexpire"]).await, bulk("old"));
    let ttl = int_of(&c.cmd(&["TTL", "pexpire"]).await);
    assert!((95..=100).contains(&ttl), "pexpire ttl {ttl}");
    // Only the two keys whose TTL was kept really expired.
    let stats = text_of(&c.cmd(&["INFO", "stats"]).await);
    assert_eq!(
        info_field(&stats, "expired_keys").as_deref(),
        Some("2"),
        "{stats}"
    );
}
