//! Multi-key commands are atomic across shards: concurrent clients never observe half of an
//! MSET, DEL or RENAME, and read-modify-write commands never lose updates.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvserver::ServerHandle;
use tokio::task::JoinSet;

use crate::util::*;

/// Number of distinct shards that own `keys` in database 0, so that each test can check it
/// really spans several shards (otherwise a single lock would make it trivially atomic).
fn shards_spanned(server: &ServerHandle, keys: &[String]) -> usize {
    let db = server.shared().store.db(0).expect("db 0");
    keys.iter()
        .map(|k| kvserver::store::shard_of(db.hash(k.as_bytes())))
        .collect::<HashSet<_>>()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mget_never_sees_a_partial_mset_or_del() {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 300;
    let server = start_server().await;
    let addr = server.addr();
    let keys: Arc<Vec<String>> = Arc::new((1..=20).map(|i| format!("atomic:k{i}")).collect());
    assert!(shards_spanned(&server, &keys) >= 4);

    let done = Arc::new(AtomicBool::new(false));
    let mut readers = JoinSet::new();
    for _ in 0..2 {
        let (keys, done) = (keys.clone(), done.clone());
        readers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut mget = vec!["MGET".to_owned()];
            mget.extend(keys.iter().cloned());
            let mut reads = 0usize;
            let mut distinct = HashSet::new();
            while !done.load(Ordering::Relaxed) {
                let values = array_items(c.cmd(&mget).await);
                assert_eq!(values.len(), keys.len());
                assert!(
                    values.iter().all(|v| *v == values[0]),
                    "MGET saw a partial write: {values:?}"
                );
                distinct.insert(format!("{:?}", values[0]));
                reads += 1;
            }
            (reads, distinct.len())
        });
    }
    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let keys = keys.clone();
        writers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            for round in 0..ROUNDS {
                if writer == 0 && round % 10 == 0 {
                    let mut del = vec!["DEL".to_owned()];
                    del.extend(keys.iter().cloned());
                    int_of(&c.cmd(&del).await);
                    continue;
                }
                let value = format!("w{writer}-{round}");
                let mut mset = vec!["MSET".to_owned()];
                for key in keys.iter() {
                    mset.push(key.clone());
                    mset.push(value.clone());
                }
                assert_eq!(c.cmd(&mset).await, ok());
            }
        });
    }
    while let Some(result) = writers.join_next().await {
        result.expect("writer task");
    }
    done.store(true, Ordering::Relaxed);
    let mut total_reads = 0;
    let mut total_distinct = 0;
    while let Some(result) = readers.join_next().await {
        let (reads, distinct) = result.expect("reader task");
        total_reads += reads;
        total_distinct += distinct;
    }
    assert!(total_reads > 0);
    // Readers really overlapped the writers (they saw several different states).
    assert!(
        total_distinct > 2,
        "readers saw only {total_distinct} states"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_back_and_forth_never_shows_both_or_neither() {
    let server = start_server().await;
    let addr = server.addr();
    // The hash seed is random per process: pick two names owned by different shards.
    let [a, b] = (0..)
        .map(|i| [format!("pingpong:a{i}"), format!("pingpong:b{i}")])
        .find(|pair| shards_spanned(&server, pair) == 2)
        .expect("two names in different shards");
    let (a, b): (Arc<str>, Arc<str>) = (a.into(), b.into());
    let mut c = Raw::connect(addr).await;
    assert_eq!(c.cmd(&["SET", &*a, "payload"]).await, ok());

    let done = Arc::new(AtomicBool::new(false));
    let mut renamers = JoinSet::new();
    for _ in 0..2 {
        let (a, b) = (a.clone(), b.clone());
        renamers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut renamed = 0;
            for _ in 0..400 {
                for (from, to) in [(&*a, &*b), (&*b, &*a)] {
                    // Two renamers race: the key may already have moved.
                    match c.cmd(&["RENAME", from, to]).await {
                        reply if reply == ok() => renamed += 1,
                        reply => assert_eq!(reply, err("ERR no such key")),
                    }
                }
            }
            renamed
        });
    }
    let mut readers = JoinSet::new();
    for reader in 0..2 {
        let (a, b, done) = (a.clone(), b.clone(), done.clone());
        readers.spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut reads = 0usize;
            while !done.load(Ordering::Relaxed) {
                if reader == 0 {
                    assert_eq!(c.cmd(&["EXISTS", &*a, &*b]).await, int(1));
                } else {
                    let values = array_items(c.cmd(&["MGET", &*a, &*b]).await);
                    let present: Vec<&Frame> = values.iter().filter(|v| **v != nil()).collect();
                    assert_eq!(present, [&bulk("payload")], "MGET saw {values:?}");
                }
                reads += 1;
            }
            reads
        });
    }
    let mut renamed = 0;
    while let Some(result) = renamers.join_next().await {
        renamed += result.expect("renamer task");
    }
    done.store(true, Ordering::Relaxed);
    while let Some(result) = readers.join_next().await {
        result.expect("reader task");
    }
    assert!(renamed >= 400, "renames that succeeded: {renamed}");
    assert_eq!(c.cmd(&["EXISTS", &*a, &*b]).await, int(1));
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_writes_lose_nothing() {
    const TASKS: usize = 4;
    const EACH: usize = 500;
    let server = start_server().await;
    let addr = server.addr();
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        tasks.spawn(async move {
            let mut c = Raw::connect(addr).await;
            // Pipelined in batches, so many requests are in flight at once.
            for _ in 0..EACH / 50 {
                let mut batch = Vec::new();
                for _ in 0..50 {
                    batch.extend(encode(&["INCR", "counter"]));
                    batch.extend(encode(&["APPEND", "log", &task.to_string()]));
                    batch.extend(encode(&["INCRBYFLOAT", "float", "0.5"]));
                }
                c.send(&batch).await;
                for _ in 0..50 {
                    int_of(&c.read().await);
                    int_of(&c.read().await);
                    text_of(&c.read().await);
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task");
    }
    let total = (TASKS * EACH) as i64;
    let mut c = Raw::connect(addr).await;
    assert_eq!(c.cmd(&["GET", "counter"]).await, bulk(total.to_string()));
    assert_eq!(c.cmd(&["STRLEN", "log"]).await, int(total));
    assert_eq!(
        c.cmd(&["GET", "float"]).await,
        bulk((total / 2).to_string())
    );
    let log = text_of(&c.cmd(&["GET", "log"]).await);
    for task in 0..TASKS {
        let digit = char::from(b'0' + task as u8);
        assert_eq!(log.chars().filter(|&ch| ch == digit).count(), EACH);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msetnx_races_have_exactly_one_winner() {
    const TASKS: usize = 6;
    const ROUNDS: usize = 100;
    let server = start_server().await;
    let addr = server.addr();
    let pair = |round: usize| [format!("nx{round}:a"), format!("nx{round}:b")];
    assert!((0..ROUNDS).any(|r| shards_spanned(&server, &pair(r)) == 2));
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        tasks.spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut wins = Vec::new();
            for round in 0..ROUNDS {
                let [a, b] = pair(round);
                let id = task.to_string();
                if c.cmd(&["MSETNX", &a, &id, &b, &id]).await == int(1) {
                    wins.push(round);
                }
            }
            (task, wins)
        });
    }
    let mut winner = vec![None; ROUNDS];
    while let Some(result) = tasks.join_next().await {
        let (task, wins) = result.expect("task");
        for round in wins {
            assert_eq!(winner[round], None, "round {round} won twice");
            winner[round] = Some(task);
        }
    }
    let mut c = Raw::connect(addr).await;
    for (round, task) in winner.iter().enumerate() {
        let task = task.unwrap_or_else(|| panic!("nobody won round {round}"));
        let [a, b] = pair(round);
        let id = task.to_string();
        assert_eq!(c.cmd(&["MGET", &*a, &*b]).await, bulks(&[&id, &id]));
    }
}
