//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN (including a full iteration
//! while other keys churn), RENAME, RENAMENX, COPY, TOUCH, RANDOMKEY, SELECT.

use std::collections::HashSet;

use crate::util::*;

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";
const DB_RANGE: &str = "ERR DB index is out of range";

#[tokio::test]
async fn del_unlink_exists_type() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4"])
            .await,
        ok()
    );
    assert_eq!(c.cmd(&["EXISTS", "a"]).await, int(1));
    assert_eq!(
        c.cmd(&["EXISTS", "a", "a", "b", "nokey", "a"]).await,
        int(4)
    );
    assert_eq!(c.cmd(&["TYPE", "a"]).await, simple("string"));
    assert_eq!(c.cmd(&["TYPE", "nokey"]).await, simple("none"));
    assert_eq!(c.cmd(&["DEL", "a", "nokey", "a"]).await, int(1));
    assert_eq!(c.cmd(&["EXISTS", "a"]).await, int(0));
    assert_eq!(c.cmd(&["UNLINK", "b", "c", "nokey"]).await, int(2));
    assert_eq!(
        c.cmd(&["MGET", "b", "c", "d"]).await,
        Frame::Array(vec![nil(), nil(), bulk("4")])
    );
    assert_eq!(c.cmd(&["DEL", "d"]).await, int(1));
    assert_eq!(c.cmd(&["DEL", "d"]).await, int(0));
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0));
    assert_eq!(c.cmd(&["DEL"]).await, arity_err("del"));
    assert_eq!(c.cmd(&["EXISTS"]).await, arity_err("exists"));
    assert_eq!(c.cmd(&["TYPE"]).await, arity_err("type"));
}

#[tokio::test]
async fn keys_glob_patterns() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let names = [
        "a", "b", "c", "x", "x1", "hello", "hallo", "hxllo", "h?llo", "h*llo", "heeello", "[x]",
        "a\\b",
    ];
    let mut mset = vec!["MSET"];
    for name in &names {
        mset.extend([*name, "v"]);
    }
    assert_eq!(c.cmd(&mset).await, ok());

    let cases: &[(&str, &[&str])] = &[
        ("*", &names),
        ("?", &["a", "b", "c", "x"]),
        ("[a-c]", &["a", "b", "c"]),
        ("[c-a]", &["a", "b", "c"]),
        ("[^x]", &["a", "b", "c"]),
        ("[abx]", &["a", "b", "x"]),
        ("x*", &["x", "x1"]),
        ("h?llo", &["hello", "hallo", "hxllo", "h?llo", "h*llo"]),
        ("h[ae]llo", &["hello", "hallo"]),
        ("h[^e]llo", &["hallo", "hxllo", "h?llo", "h*llo"]),
        (
            "h*llo",
            &["hello", "hallo", "hxllo", "h?llo", "h*llo", "heeello"],
        ),
        ("h\\?llo", &["h?llo"]),
        ("h\\*llo", &["h*llo"]),
        ("\\[x\\]", &["[x]"]),
        ("a\\\\b", &["a\\b"]),
        (
            "*llo",
            &["hello", "hallo", "hxllo", "h?llo", "h*llo", "heeello"],
        ),
        ("nomatch*", &[]),
    ];
    for (pattern, expected) in cases {
        let mut expected: Vec<Vec<u8>> = expected.iter().map(|s| s.as_bytes().to_vec()).collect();
        expected.sort();
        assert_eq!(
            sorted_bulks(c.cmd(&["KEYS", pattern]).await),
            expected,
            "KEYS {pattern}"
        );
    }
    // Expired keys are not listed.
    assert_eq!(c.cmd(&["SET", "gone", "v", "PXAT", "1"]).await, ok());
    assert_eq!(c.cmd(&["KEYS", "gone"]).await, Frame::Array(vec![]));
}

/// Runs a full SCAN iteration with `options`, returning every key seen (with repeats) and
/// the number of calls.
async fn full_scan(c: &mut Raw, options: &[&str]) -> (Vec<String>, usize) {
    let (keys, calls) = scan_to_end(c, &["SCAN"], options).await;
    (keys.iter().map(text_of).collect(), calls)
}

#[tokio::test]
async fn scan_options_and_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["SCAN", "0"]).await,
        Frame::Array(vec![bulk("0"), Frame::Array(vec![])])
    );
    let mut mset = vec!["MSET".to_owned()];
    for i in 0..300 {
        mset.push(format!("user:{i}"));
        mset.push("v".to_owned());
        mset.push(format!("item:{i}"));
        mset.push("v".to_owned());
    }
    assert_eq!(c.cmd(&mset).await, ok());

    let (all, calls) = full_scan(&mut c, &[]).await;
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), 600);
    assert!(
        calls > 1,
        "600 keys with the default COUNT 10 need several calls"
    );

    let (users, _) = full_scan(&mut c, &["MATCH", "user:*", "COUNT", "50"]).await;
    let users: HashSet<String> = users.into_iter().collect();
    let expected: HashSet<String> = (0..300).map(|i| format!("user:{i}")).collect();
    assert_eq!(users, expected);

    let (one, _) = full_scan(&mut c, &["MATCH", "item:1?", "COUNT", "1000"]).await;
    let one: HashSet<String> = one.into_iter().collect();
    assert_eq!(one, (10..20).map(|i| format!("item:{i}")).collect());

    let (strings, _) = full_scan(&mut c, &["TYPE", "string", "COUNT", "1000"]).await;
    assert_eq!(strings.iter().collect::<HashSet<_>>().len(), 600);
    let (lists, _) = full_scan(&mut c, &["TYPE", "list"]).await;
    assert!(lists.is_empty());

    assert_eq!(c.cmd(&["SCAN", "abc"]).await, err("ERR invalid cursor"));
    assert_eq!(c.cmd(&["SCAN", "1.5"]).await, err("ERR invalid cursor"));
    assert_eq!(
        c.cmd(&["SCAN", "18446744073709551616"]).await,
        err("ERR invalid cursor")
    );
    assert_eq!(c.cmd(&["SCAN", "0", "COUNT", "0"]).await, err(SYNTAX));
    assert_eq!(c.cmd(&["SCAN", "0", "COUNT", "-1"]).await, err(SYNTAX));
    assert_eq!(c.cmd(&["SCAN", "0", "COUNT", "x"]).await, err(NOT_INTEGER));
    assert_eq!(c.cmd(&["SCAN", "0", "MATCH"]).await, err(SYNTAX));
    assert_eq!(c.cmd(&["SCAN", "0", "FOO", "bar"]).await, err(SYNTAX));
    assert_eq!(c.cmd(&["SCAN"]).await, arity_err("scan"));
}

async fn mset_range(c: &mut Raw, prefix: &str, range: std::ops::Range<usize>) {
    let mut args = vec!["MSET".to_owned()];
    for i in range {
        args.push(format!("{prefix}{i}"));
        args.push("v".to_owned());
    }
    assert_eq!(c.cmd(&args).await, ok());
}

async fn del_range(c: &mut Raw, prefix: &str, range: std::ops::Range<usize>) -> i64 {
    let mut args = vec!["DEL".to_owned()];
    args.extend(range.map(|i| format!("{prefix}{i}")));
    int_of(&c.cmd(&args).await)
}

/// SCAN's guarantee: a key present for the whole iteration is returned at least once, even
/// though other keys are added and deleted between calls, growing and shrinking the tables.
#[tokio::test]
async fn scan_returns_every_stable_key_while_others_churn() {
    const STABLE: usize = 5000;
    const STEP: usize = 400;
    let server = start_server().await;
    let mut scanner = Raw::connect(server.addr()).await;
    let mut churner = Raw::connect(server.addr()).await;
    for start in (0..STABLE).step_by(1000) {
        mset_range(&mut scanner, "stable:", start..start + 1000).await;
    }

    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor = "0".to_owned();
    let mut calls = 0usize;
    // Churn keys currently present: [low, high).
    let (mut low, mut high) = (0usize, 0usize);
    loop {
        let mut reply =
            array_items(scanner.cmd(&["SCAN", &cursor, "COUNT", "100"]).await).into_iter();
        let (Some(next), Some(batch)) = (reply.next(), reply.next()) else {
            panic!("SCAN reply is not [cursor, keys]");
        };
        for key in array_items(batch) {
            let key = text_of(&key);
            assert!(
                key.starts_with("stable:") || key.starts_with("churn:"),
                "unexpected key {key}"
            );
            seen.insert(key);
        }
        cursor = text_of(&next);
        calls += 1;
        if cursor == "0" {
            break;
        }
        assert!(calls < 10_000, "SCAN does not terminate");
        // First the keyspace grows fast (tables double several times); then everything
        // added is deleted again (tables shrink).
        if high < 12_000 && low == 0 {
            mset_range(&mut churner, "churn:", high..high + STEP).await;
            high += STEP;
        } else if low < high {
            let end = (low + 2 * STEP).min(high);
            assert_eq!(
                del_range(&mut churner, "churn:", low..end).await,
                (end - low) as i64
            );
            low = end;
        }
    }
    assert!(
        high >= 4 * STEP,
        "the iteration should have overlapped real churn (added {high})"
    );
    let missing: Vec<usize> = (0..STABLE)
        .filter(|i| !seen.contains(&format!("stable:{i}")))
        .collect();
    assert!(
        missing.is_empty(),
        "SCAN missed {} stable keys, e.g. stable:{}",
        missing.len(),
        missing[0]
    );
    assert_eq!(
        int_of(&scanner.cmd(&["DBSIZE"]).await) as usize,
        STABLE + high - low
    );
}

/// The same guarantee with the churn running concurrently on another connection (and
/// another worker thread), not just between calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_under_concurrent_churn() {
    const STABLE: usize = 3000;
    let server = start_server().await;
    let addr = server.addr();
    let mut scanner = Raw::connect(addr).await;
    for start in (0..STABLE).step_by(1000) {
        mset_range(&mut scanner, "stable:", start..start + 1000).await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut c = Raw::connect(addr).await;
            let mut round = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let prefix = format!("churn{}:", round % 2);
                mset_range(&mut c, &prefix, 0..2000).await;
                let other = format!("churn{}:", (round + 1) % 2);
                del_range(&mut c, &other, 0..2000).await;
                round += 1;
            }
            round
        }
    });
    let mut rounds_of_scan = 0;
    // Several full iterations, so they overlap many churn rounds.
    for _ in 0..3 {
        let (keys, _) = full_scan(&mut scanner, &["COUNT", "50"]).await;
        let seen: HashSet<String> = keys.into_iter().collect();
        let missing = (0..STABLE)
            .filter(|i| !seen.contains(&format!("stable:{i}")))
            .count();
        assert_eq!(missing, 0, "SCAN missed stable keys under concurrent churn");
        rounds_of_scan += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = churn.await.expect("churn task");
    assert!(rounds > 0 && rounds_of_scan == 3);
}

#[tokio::test]
async fn rename_and_renamenx() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["RENAME", "nokey", "x"]).await,
        err("ERR no such key")
    );
    assert_eq!(
        c.cmd(&["RENAMENX", "nokey", "x"]).await,
        err("ERR no such key")
    );
    assert_eq!(c.cmd(&["SET", "a", "1", "EX", "100"]).await, ok());
    assert_eq!(c.cmd(&["RENAME", "a", "b"]).await, ok());
    assert_eq!(c.cmd(&["EXISTS", "a"]).await, int(0));
    assert_eq!(c.cmd(&["GET", "b"]).await, bulk("1"));
    assert_eq!(c.cmd(&["TTL", "b"]).await, int(100), "RENAME keeps the TTL");
    // Overwriting a destination replaces its value and TTL.
    assert_eq!(c.cmd(&["SET", "c", "3", "EX", "500"]).await, ok());
    assert_eq!(c.cmd(&["SET", "p", "persistent"]).await, ok());
    assert_eq!(c.cmd(&["RENAME", "p", "c"]).await, ok());
    assert_eq!(c.cmd(&["GET", "c"]).await, bulk("persistent"));
    assert_eq!(c.cmd(&["TTL", "c"]).await, int(-1));
    assert_eq!(c.cmd(&["RENAME", "c", "c"]).await, ok());
    assert_eq!(c.cmd(&["GET", "c"]).await, bulk("persistent"));

    assert_eq!(c.cmd(&["RENAMENX", "b", "c"]).await, int(0));
    assert_eq!(c.cmd(&["GET", "b"]).await, bulk("1"));
    assert_eq!(c.cmd(&["RENAMENX", "c", "c"]).await, int(0));
    assert_eq!(c.cmd(&["RENAMENX", "b", "d"]).await, int(1));
    assert_eq!(
        c.cmd(&["MGET", "b", "d"]).await,
        Frame::Array(vec![nil(), bulk("1")])
    );
    assert_eq!(c.cmd(&["TTL", "d"]).await, int(100));
    assert_eq!(c.cmd(&["RENAME", "d"]).await, arity_err("rename"));
}

#[tokio::test]
async fn copy_options() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["COPY", "nokey", "b"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "a", "1", "EX", "100"]).await, ok());
    assert_eq!(c.cmd(&["COPY", "a", "b"]).await, int(1));
    assert_eq!(c.cmd(&["MGET", "a", "b"]).await, bulks(&["1", "1"]));
    assert_eq!(c.cmd(&["TTL", "b"]).await, int(100), "COPY copies the TTL");
    assert_eq!(c.cmd(&["SET", "a", "2"]).await, ok());
    assert_eq!(c.cmd(&["COPY", "a", "b"]).await, int(0));
    assert_eq!(c.cmd(&["GET", "b"]).await, bulk("1"));
    assert_eq!(c.cmd(&["COPY", "a", "b", "REPLACE"]).await, int(1));
    assert_eq!(c.cmd(&["GET", "b"]).await, bulk("2"));
    assert_eq!(c.cmd(&["TTL", "b"]).await, int(-1));
    // The copy is independent of the source.
    assert_eq!(c.cmd(&["APPEND", "a", "x"]).await, int(2));
    assert_eq!(c.cmd(&["GET", "b"]).await, bulk("2"));

    assert_eq!(
        c.cmd(&["COPY", "a", "a"]).await,
        err("ERR source and destination objects are the same")
    );
    assert_eq!(
        c.cmd(&["COPY", "a", "a", "DB", "0"]).await,
        err("ERR source and destination objects are the same")
    );
    assert_eq!(c.cmd(&["COPY", "a", "a", "DB", "1"]).await, int(1));
    assert_eq!(c.cmd(&["COPY", "a", "z", "db", "1"]).await, int(1));
    assert_eq!(c.cmd(&["COPY", "a", "z", "DB", "1"]).await, int(0));
    assert_eq!(
        c.cmd(&["COPY", "a", "z", "REPLACE", "DB", "1"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["COPY", "a", "b", "DB", "16"]).await, err(DB_RANGE));
    assert_eq!(c.cmd(&["COPY", "a", "b", "DB", "-1"]).await, err(DB_RANGE));
    assert_eq!(
        c.cmd(&["COPY", "a", "b", "DB", "x"]).await,
        err(NOT_INTEGER)
    );
    assert_eq!(c.cmd(&["COPY", "a", "b", "DB"]).await, err(SYNTAX));
    assert_eq!(c.cmd(&["COPY", "a", "b", "FOO"]).await, err(SYNTAX));
    assert_eq!(c.cmd(&["EXISTS", "z"]).await, int(0));
    assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(
        c.cmd(&["MGET", "a", "z", "b"]).await,
        Frame::Array(vec![bulk("2x"), bulk("2x"), nil()])
    );
    // And back, from db 1 to db 0.
    assert_eq!(c.cmd(&["SET", "from1", "v"]).await, ok());
    assert_eq!(c.cmd(&["COPY", "from1", "to0", "DB", "0"]).await, int(1));
    assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
    assert_eq!(c.cmd(&["GET", "to0"]).await, bulk("v"));
}

#[tokio::test]
async fn touch_and_randomkey() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["RANDOMKEY"]).await, nil());
    assert_eq!(c.cmd(&["TOUCH", "a", "b"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "only", "v"]).await, ok());
    assert_eq!(c.cmd(&["RANDOMKEY"]).await, bulk("only"));
    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2"]).await, ok());
    assert_eq!(c.cmd(&["TOUCH", "a", "b", "nokey", "a"]).await, int(3));
    let names: HashSet<String> = ["only", "a", "b"].iter().map(|s| s.to_string()).collect();
    let mut drawn = HashSet::new();
    for _ in 0..200 {
        let key = text_of(&c.cmd(&["RANDOMKEY"]).await);
        assert!(names.contains(&key), "RANDOMKEY returned {key}");
        drawn.insert(key);
    }
    assert!(
        drawn.len() > 1,
        "200 draws over 3 keys always gave {drawn:?}"
    );
    // Expired keys are never returned.
    assert_eq!(c.cmd(&["FLUSHDB"]).await, ok());
    assert_eq!(c.cmd(&["SET", "dead", "v", "PXAT", "1"]).await, ok());
    assert_eq!(c.cmd(&["RANDOMKEY"]).await, nil());
    assert_eq!(c.cmd(&["RANDOMKEY", "x"]).await, arity_err("randomkey"));
}

#[tokio::test]
async fn select_isolates_databases() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "db0"]).await, ok());
    assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, nil());
    assert_eq!(c.cmd(&["SET", "k", "db1"]).await, ok());
    assert_eq!(c.cmd(&["SET", "only1", "x"]).await, ok());
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(2));
    // Another connection still uses db 0.
    assert_eq!(other.cmd(&["GET", "k"]).await, bulk("db0"));
    assert_eq!(other.cmd(&["DBSIZE"]).await, int(1));
    assert_eq!(other.cmd(&["SELECT", "15"]).await, ok());
    assert_eq!(other.cmd(&["DBSIZE"]).await, int(0));
    assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
    assert_eq!(c.cmd(&["GET", "k"]).await, bulk("db0"));
    assert_eq!(c.cmd(&["EXISTS", "only1"]).await, int(0));

    assert_eq!(c.cmd(&["SELECT", "16"]).await, err(DB_RANGE));
    assert_eq!(c.cmd(&["SELECT", "-1"]).await, err(DB_RANGE));
    assert_eq!(c.cmd(&["SELECT", "x"]).await, err(NOT_INTEGER));
    assert_eq!(
        c.cmd(&["GET", "k"]).await,
        bulk("db0"),
        "a failed SELECT keeps the db"
    );

    let small = start_server_with(|config| config.databases = 2).await;
    let mut c = Raw::connect(small.addr()).await;
    assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(c.cmd(&["SELECT", "2"]).await, err(DB_RANGE));
}
