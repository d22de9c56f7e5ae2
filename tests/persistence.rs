//! Persistence over real sockets, in-process: what a restart on the same directory brings
//! back (append-only file, snapshots, rewrites), the commands and INFO fields, and the
//! exact records the log holds. Crash (SIGKILL) tests of the real binary are in `crash.rs`.

use std::path::Path;
use std::time::Duration;

use kvserver::config::{FsyncPolicy, SaveRules};
use kvserver::ServerHandle;

use crate::util::*;

async fn start_in(dir: &Path, appendonly: bool, fsync: FsyncPolicy) -> ServerHandle {
    let dir = dir.to_path_buf();
    start_server_with(move |config| {
        config.dir = dir;
        config.appendonly = appendonly;
        config.appendfsync = fsync;
    })
    .await
}

async fn stop(server: ServerHandle) {
    server.shutdown();
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("server stops");
}

async fn info_persistence(c: &mut Raw) -> String {
    text_of(&c.cmd(&["INFO", "persistence"]).await)
}

/// Writes of every kind, with TTLs and two databases, come back after a restart that
/// replays the log; relative TTLs were logged as absolute deadlines.
#[tokio::test]
async fn the_log_brings_every_write_back() {
    for fsync in [FsyncPolicy::Always, FsyncPolicy::Everysec, FsyncPolicy::No] {
        let dir = tempfile::tempdir().unwrap();
        let server = start_in(dir.path(), true, fsync).await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(c.cmd(&["SET", "s", "v", "EX", "1000"]).await, ok());
        assert_eq!(c.cmd(&["INCRBY", "n", "41"]).await, int(41));
        assert_eq!(c.cmd(&["INCR", "n"]).await, int(42));
        assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0.1"]).await, bulk("0.1"));
        assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0.2"]).await, bulk("0.3"));
        assert_eq!(c.cmd(&["APPEND", "s", "w"]).await, int(2));
        assert_eq!(c.cmd(&["SETRANGE", "r", "3", "x"]).await, int(4));
        assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]).await, ok());
        assert_eq!(c.cmd(&["MSET", "d1", "1", "d2", "2"]).await, ok());
        assert_eq!(c.cmd(&["DEL", "b", "nope"]).await, int(1));
        // One-key DEL and UNLINK are logged too.
        assert_eq!(c.cmd(&["DEL", "d1"]).await, int(1));
        assert_eq!(c.cmd(&["UNLINK", "d2"]).await, int(1));
        assert_eq!(c.cmd(&["DEL", "d2"]).await, int(0));
        assert_eq!(c.cmd(&["RENAME", "c", "c2"]).await, ok());
        assert_eq!(c.cmd(&["PEXPIRE", "a", "500000"]).await, int(1));
        assert_eq!(c.cmd(&["GETDEL", "r"]).await, bulk(b"\0\0\0x"));
        assert_eq!(c.cmd(&["COPY", "c2", "c3", "DB", "2"]).await, int(1));
        assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
        assert_eq!(c.cmd(&["SET", "in1", "x"]).await, ok());
        assert_eq!(c.cmd(&["SETEX", "gone", "1000", "x"]).await, ok());
        assert_eq!(c.cmd(&["PERSIST", "gone"]).await, int(1));
        assert_eq!(c.cmd(&["EXPIRE", "gone", "-1"]).await, int(1));
        assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
        let ttl_before = int_of(&c.cmd(&["PTTL", "s"]).await);
        stop(server).await;

        let server = start_in(dir.path(), true, fsync).await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(c.cmd(&["GET", "s"]).await, bulk("vw"), "{fsync:?}");
        let ttl_after = int_of(&c.cmd(&["PTTL", "s"]).await);
        assert!(
            ttl_after <= ttl_before && ttl_after > ttl_before - 5_000,
            "deadline kept: {ttl_before} -> {ttl_after}"
        );
        assert_eq!(c.cmd(&["GET", "n"]).await, bulk("42"));
        assert_eq!(c.cmd(&["GET", "f"]).await, bulk("0.3"));
        assert_eq!(c.cmd(&["GET", "r"]).await, nil());
        assert_eq!(
            c.cmd(&["MGET", "a", "b", "c", "c2", "d1", "d2"]).await,
            Frame::Array(vec![bulk("1"), nil(), nil(), bulk("3"), nil(), nil()])
        );
        let ttl_a = int_of(&c.cmd(&["PTTL", "a"]).await);
        assert!(ttl_a > 400_000 && ttl_a <= 500_000, "{ttl_a}");
        assert_eq!(c.cmd(&["SELECT", "1"]).await, ok());
        assert_eq!(c.cmd(&["GET", "in1"]).await, bulk("x"));
        assert_eq!(c.cmd(&["EXISTS", "gone"]).await, int(0));
        assert_eq!(c.cmd(&["SELECT", "2"]).await, ok());
        assert_eq!(c.cmd(&["GET", "c3"]).await, bulk("3"));
        assert_eq!(c.cmd(&["DBSIZE"]).await, int(1));
        stop(server).await;
    }
}

/// The log holds deterministic records: absolute deadlines, INCRBYFLOAT as its result,
/// SELECT when the database changes, nothing for commands that changed nothing.
#[tokio::test]
async fn the_log_records_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    let before = unix_ms();
    assert_eq!(c.cmd(&["SET", "k", "v", "PX", "100000"]).await, ok());
    let after = unix_ms();
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "1.5"]).await, bulk("1.5"));
    assert_eq!(c.cmd(&["SET", "k", "other", "NX"]).await, nil());
    assert_eq!(c.cmd(&["DEL", "missing"]).await, int(0));
    assert_eq!(c.cmd(&["SELECT", "3"]).await, ok());
    assert_eq!(c.cmd(&["EXPIRE", "missing", "10"]).await, int(0));
    assert_eq!(c.cmd(&["SET", "x", "1"]).await, ok());
    stop(server).await;

    let aof_dir = dir.path().join("appendonlydir");
    let incr = std::fs::read(aof_dir.join("appendonly.aof.1.incr.aof")).unwrap();
    let text = String::from_utf8_lossy(&incr);
    let words: Vec<&str> = text
        .split("\r\n")
        .filter(|w| !w.starts_with('*') && !w.starts_with('$') && !w.is_empty())
        .collect();
    assert_eq!(&words[..4], ["SELECT", "0", "SET", "k"]);
    assert_eq!(&words[4..6], ["v", "PXAT"]);
    let deadline: u64 = words[6].parse().unwrap();
    assert!((before + 100_000..=after + 100_000).contains(&deadline));
    assert_eq!(
        &words[7..],
        ["SET", "f", "1.5", "KEEPTTL", "SELECT", "3", "SET", "x", "1"]
    );
    let manifest = std::fs::read_to_string(aof_dir.join("appendonly.aof.manifest")).unwrap();
    assert_eq!(
        manifest,
        "file appendonly.aof.1.base.kvs seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
}

/// Keys the server expires (lazily on access, or by the active sweep) are logged as DEL, so
/// a replay does not resurrect them even if they had no deadline in the replayed history.
#[tokio::test]
async fn expirations_are_logged_as_del() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "short", "v", "PX", "30"]).await, ok());
    assert_eq!(c.cmd(&["SET", "lazy", "v", "PX", "30"]).await, ok());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(c.cmd(&["GET", "lazy"]).await, nil());
    // Let the active sweep (hz 10) find "short".
    poll_until_reply(&mut c, &["DBSIZE"], int(0), Duration::from_secs(5)).await;
    assert_eq!(c.cmd(&["SET", "sync", "1"]).await, ok());
    stop(server).await;
    let incr = std::fs::read(dir.path().join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    let text = String::from_utf8_lossy(&incr);
    assert!(text.contains("$3\r\nDEL\r\n$4\r\nlazy\r\n"), "{text}");
    assert!(text.contains("$3\r\nDEL\r\n$5\r\nshort\r\n"), "{text}");
}

/// SAVE writes a snapshot that a server without the log loads; LASTSAVE and INFO follow.
#[tokio::test]
async fn save_and_bgsave_snapshots_load_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), false, FsyncPolicy::Everysec).await;
    let mut c = Raw::connect(server.addr()).await;
    for i in 0..1000 {
        let key = format!("key:{i}");
        assert_eq!(c.cmd(&["SET", key.as_str(), "value"]).await, ok());
    }
    assert_eq!(c.cmd(&["PEXPIRE", "key:1", "1000000"]).await, int(1));
    let info = info_persistence(&mut c).await;
    assert_eq!(
        info_field(&info, "rdb_changes_since_last_save").as_deref(),
        Some("1001")
    );
    assert_eq!(info_field(&info, "aof_enabled").as_deref(), Some("0"));
    let before = int_of(&c.cmd(&["LASTSAVE"]).await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(c.cmd(&["SAVE"]).await, ok());
    let after = int_of(&c.cmd(&["LASTSAVE"]).await);
    assert!(after > before, "{before} -> {after}");
    let info = info_persistence(&mut c).await;
    assert_eq!(
        info_field(&info, "rdb_changes_since_last_save").as_deref(),
        Some("0")
    );
    assert_eq!(
        info_field(&info, "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
    // BGSAVE replaces it with the later state.
    assert_eq!(c.cmd(&["DEL", "key:2"]).await, int(1));
    assert_eq!(
        c.cmd(&["BGSAVE"]).await,
        simple("Background saving started")
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = info_persistence(&mut c).await;
        if info_field(&info, "rdb_bgsave_in_progress").as_deref() == Some("0")
            && info_field(&info, "rdb_changes_since_last_save").as_deref() == Some("0")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "BGSAVE finishes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop(server).await;

    let server = start_in(dir.path(), false, FsyncPolicy::Everysec).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(999));
    assert_eq!(c.cmd(&["GET", "key:999"]).await, bulk("value"));
    let ttl = int_of(&c.cmd(&["PTTL", "key:1"]).await);
    assert!(ttl > 900_000, "{ttl}");
    stop(server).await;
}

/// BGREWRITEAOF while a client keeps writing: afterwards the manifest names one new base and
/// one new incremental file, the old files are gone, and a restart has every write.
#[tokio::test]
async fn rewrite_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Everysec).await;
    let addr = server.addr();
    let mut c = Raw::connect(addr).await;
    for i in 0..2000 {
        let key = format!("key:{i}");
        assert_eq!(c.cmd(&["SET", key.as_str(), "first"]).await, ok());
    }
    let writer = tokio::spawn(async move {
        let mut w = Raw::connect(addr).await;
        for i in 0..3000 {
            assert_eq!(w.cmd(&["INCR", "counter"]).await, int(i + 1));
            let key = format!("key:{}", i % 2500);
            assert_eq!(w.cmd(&["SET", key.as_str(), "second"]).await, ok());
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        simple("Background append only file rewriting started")
    );
    writer.await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while info_field(&info_persistence(&mut c).await, "aof_rewrite_in_progress").as_deref()
        != Some("0")
    {
        assert!(std::time::Instant::now() < deadline, "rewrite finishes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = info_persistence(&mut c).await;
    assert_eq!(
        info_field(&info, "aof_last_bgrewrite_status").as_deref(),
        Some("ok")
    );
    stop(server).await;

    let aof_dir = dir.path().join("appendonlydir");
    let manifest = std::fs::read_to_string(aof_dir.join("appendonly.aof.manifest")).unwrap();
    assert_eq!(
        manifest,
        "file appendonly.aof.2.base.kvs seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let mut files: Vec<String> = std::fs::read_dir(&aof_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "appendonly.aof.2.base.kvs",
            "appendonly.aof.2.incr.aof",
            "appendonly.aof.manifest"
        ]
    );

    let server = start_in(dir.path(), true, FsyncPolicy::Everysec).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["GET", "counter"]).await, bulk("3000"));
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(2501));
    for i in [0, 1999, 2000, 2499] {
        let key = format!("key:{i}");
        assert_eq!(c.cmd(&["GET", key.as_str()]).await, bulk("second"), "{key}");
    }
    stop(server).await;
}

/// CONFIG SET appendonly yes turns the log on with the current data as its base; the
/// persistence parameters read back through CONFIG GET.
#[tokio::test]
async fn config_set_turns_the_log_on_and_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), false, FsyncPolicy::Everysec).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "before", "1"]).await, ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]).await, ok());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while info_field(&info_persistence(&mut c).await, "aof_rewrite_in_progress").as_deref()
        != Some("0")
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.cmd(&["SET", "after", "2"]).await, ok());
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendonly"]).await,
        bulks(&["appendonly", "yes"])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "appendfsync", "always"]).await,
        ok()
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendfsync"]).await,
        bulks(&["appendfsync", "always"])
    );
    assert_eq!(c.cmd(&["SET", "durable", "3"]).await, ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "save", "100 10 5 1"]).await, ok());
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "save"]).await,
        bulks(&["save", "100 10 5 1"])
    );
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "save", "100"]).await,
        Frame::Error(_)
    ));
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "appendfsync", "sometimes"]).await,
        Frame::Error(_)
    ));
    assert_eq!(c.cmd(&["CONFIG", "SET", "save", ""]).await, ok());
    // The log's directory cannot move under it; the snapshot name can change.
    let elsewhere = tempfile::tempdir().unwrap();
    let elsewhere_text = elsewhere.path().to_string_lossy().into_owned();
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "dir", elsewhere_text.as_str()])
            .await,
        Frame::Error(_)
    ));
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "dbfilename", "a/b.kvs"]).await,
        Frame::Error(_)
    ));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "dbfilename", "other.kvs"]).await,
        ok()
    );
    assert_eq!(c.cmd(&["SAVE"]).await, ok());
    assert!(dir.path().join("other.kvs").exists());
    let info = info_persistence(&mut c).await;
    assert_eq!(info_field(&info, "aof_enabled").as_deref(), Some("1"));
    assert_eq!(
        info_field(&info, "aof_fsync_policy").as_deref(),
        Some("always")
    );
    stop(server).await;

    let server = start_in(dir.path(), true, FsyncPolicy::Everysec).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["MGET", "before", "after", "durable"]).await,
        bulks(&["1", "2", "3"])
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]).await, ok());
    assert_eq!(c.cmd(&["SET", "unlogged", "4"]).await, ok());
    // With the log off, dir may move: SAVE writes there.
    let elsewhere = tempfile::tempdir().unwrap();
    let elsewhere_text = elsewhere.path().to_string_lossy().into_owned();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "dir", elsewhere_text.as_str()])
            .await,
        ok()
    );
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "dir", "/no/such/dir"]).await,
        Frame::Error(_)
    ));
    assert_eq!(c.cmd(&["SAVE"]).await, ok());
    assert!(elsewhere.path().join("dump.kvs").exists());
    assert_eq!(
        info_field(&info_persistence(&mut c).await, "aof_enabled").as_deref(),
        Some("0")
    );
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        err("ERR the append-only file is off (CONFIG SET appendonly yes turns it on)")
    );
    stop(server).await;
    let server = start_in(dir.path(), true, FsyncPolicy::Everysec).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["EXISTS", "before", "unlogged"]).await, int(1));
    stop(server).await;
}

/// A save rule that is met triggers a background snapshot; automatic rewrites start once
/// the log passes its minimum size and growth.
#[tokio::test]
async fn save_rules_and_automatic_rewrite_fire() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let server = start_server_with(move |config| {
        config.dir = data_dir;
        config.appendonly = true;
        config.save = SaveRules(vec![(1, 5)]);
        config.auto_aof_rewrite_min_size = 4096;
        config.auto_aof_rewrite_percentage = 50;
    })
    .await;
    let mut c = Raw::connect(server.addr()).await;
    for i in 0..200 {
        let key = format!("key:{i}");
        assert_eq!(
            c.cmd(&["SET", key.as_str(), "some value to grow the log"])
                .await,
            ok()
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let base_seq_2 =
            std::fs::read_to_string(dir.path().join("appendonlydir/appendonly.aof.manifest"))
                .unwrap_or_default()
                .contains("base.kvs seq 2");
        if dir.path().join("dump.kvs").exists() && base_seq_2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a snapshot and an automatic rewrite happen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(server).await;
}

/// SHUTDOWN NOSAVE does not snapshot even with save rules; a plain stop (as SIGTERM) does.
#[tokio::test]
async fn shutdown_saves_according_to_rules() {
    for (nosave, expect_snapshot) in [(true, false), (false, true)] {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        let server = start_server_with(move |config| {
            config.dir = data_dir;
            config.save = SaveRules(vec![(3600, 1)]);
        })
        .await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(c.cmd(&["SET", "k", "v"]).await, ok());
        if nosave {
            c.send(&encode(&["SHUTDOWN", "NOSAVE"])).await;
            c.expect_closed().await;
            tokio::time::timeout(Duration::from_secs(10), server.stopped())
                .await
                .expect("stops");
        } else {
            stop(server).await;
        }
        assert_eq!(dir.path().join("dump.kvs").exists(), expect_snapshot);
    }
}

/// A corrupt log stops start-up with an error naming the file and the byte offset.
#[tokio::test]
async fn corruption_in_the_log_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "a", "1"]).await, ok());
    assert_eq!(c.cmd(&["SET", "b", "2"]).await, ok());
    stop(server).await;
    let incr = dir.path().join("appendonlydir/appendonly.aof.1.incr.aof");
    let mut bytes = std::fs::read(&incr).unwrap();
    // "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n" is 23 bytes; the SET record starts there.
    bytes[23] = b'#';
    std::fs::write(&incr, &bytes).unwrap();
    let data_dir = dir.path().to_path_buf();
    let config = kvserver::Config {
        port: 0,
        save: Default::default(),
        dir: data_dir,
        appendonly: true,
        ..kvserver::Config::default()
    };
    let error = match kvserver::start(config, None).await {
        Ok(_) => panic!("start-up must fail on a corrupt log"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("appendonly.aof.1.incr.aof"), "{error}");
    assert!(error.contains("byte 23"), "{error}");
}

/// A key in the base that has expired by the time of the restart must not come back through a
/// logged command that touched it while it was alive (an INCR replayed on a dropped key would
/// recreate it without a deadline).
#[tokio::test]
async fn replay_does_not_resurrect_keys_expired_since() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["SET", "k", "5", "PX", "400"]).await, ok());
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        simple("Background append only file rewriting started")
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while info_field(&info_persistence(&mut c).await, "aof_rewrite_in_progress").as_deref()
        != Some("0")
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.cmd(&["INCR", "k"]).await, int(6));
    // Stop before the key expires, so the log holds no DEL for it.
    stop(server).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["GET", "k"]).await, nil());
    assert_eq!(c.cmd(&["DBSIZE"]).await, int(0), "expired, not recreated");
    stop(server).await;
}

/// A snapshot holding a list, a hash, a set and a sorted set (as a later build, with their
/// commands, would write it) loads: TYPE names each, string commands answer WRONGTYPE (MGET
/// nil), SCAN filters by type, and SAVE writes them back so a restart has them all.
#[tokio::test]
async fn collections_in_a_snapshot_load_and_answer_wrongtype() {
    use kvserver::persist::snapshot_format::SnapshotWriter;
    use kvserver::store::value::{Hash, List, Score, Set, ZSet};
    use kvserver::store::Value;

    let dir = tempfile::tempdir().unwrap();
    let mut writer = SnapshotWriter::new(Vec::new(), 0).unwrap();
    let list: List = (0..1000)
        .map(|i| format!("element:{i}").into_bytes())
        .collect();
    let hash: Hash = [(&b"field"[..], &b"value"[..])].into_iter().collect();
    let set: Set = [&b"a"[..], b"b"].into_iter().collect();
    let zset: ZSet = [(b"m", Score::new(1.5).unwrap())].into_iter().collect();
    for (key, value) in [
        ("list", Value::list(list)),
        ("hash", Value::hash(hash)),
        ("set", Value::set(set)),
        ("zset", Value::zset(zset)),
        ("string", Value::Str(b"text".to_vec())),
    ] {
        writer.write_entry(key.as_bytes(), &value, None).unwrap();
    }
    std::fs::write(dir.path().join("dump.kvs"), writer.finish().unwrap()).unwrap();

    let wrongtype = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    for round in 0..2 {
        let server = start_in(dir.path(), false, FsyncPolicy::Everysec).await;
        let mut c = Raw::connect(server.addr()).await;
        assert_eq!(c.cmd(&["DBSIZE"]).await, int(5), "round {round}");
        for name in ["list", "hash", "set", "zset", "string"] {
            assert_eq!(c.cmd(&["TYPE", name]).await, simple(name));
        }
        assert_eq!(c.cmd(&["GET", "list"]).await, wrongtype);
        assert_eq!(c.cmd(&["STRLEN", "hash"]).await, wrongtype);
        assert_eq!(c.cmd(&["APPEND", "set", "x"]).await, wrongtype);
        assert_eq!(c.cmd(&["INCR", "zset"]).await, wrongtype);
        assert_eq!(c.cmd(&["GETDEL", "list"]).await, wrongtype);
        assert_eq!(
            c.cmd(&["MGET", "list", "string"]).await,
            Frame::Array(vec![nil(), bulk("text")])
        );
        let scan = array_items(c.cmd(&["SCAN", "0", "COUNT", "100", "TYPE", "hash"]).await);
        assert_eq!(scan[1], bulks(&["hash"]));
        assert_eq!(c.cmd(&["SAVE"]).await, ok());
        stop(server).await;
    }
}

/// What the hash writes below leave, database by database, as `(key, sorted pairs)`.
async fn hash_state(c: &mut Raw) -> Vec<(usize, String, Vec<(String, String)>)> {
    let mut state = Vec::new();
    for db in 0..3 {
        assert_eq!(c.cmd(&["SELECT", &db.to_string()]).await, ok());
        let mut keys: Vec<String> = array_items(c.cmd(&["KEYS", "*"]).await)
            .iter()
            .map(text_of)
            .collect();
        keys.sort();
        for key in keys {
            let items = array_items(c.cmd(&["HGETALL", &key]).await);
            let mut pairs: Vec<(String, String)> = items
                .chunks(2)
                .map(|pair| (text_of(&pair[0]), text_of(&pair[1])))
                .collect();
            pairs.sort();
            state.push((db, key, pairs));
        }
    }
    assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
    state
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

/// Every hash write comes back after a restart that replays the log, and again after a
/// rewrite (whose base is a snapshot) and a restart, and from a plain snapshot; COPY of a
/// hash (same database and across databases) replays too.
#[tokio::test]
async fn hashes_survive_replay_rewrite_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]).await,
        int(3)
    );
    assert_eq!(c.cmd(&["HMSET", "h", "d", "4"]).await, ok());
    assert_eq!(c.cmd(&["HSETNX", "h", "a", "no"]).await, int(0));
    assert_eq!(c.cmd(&["HSETNX", "h", "e", "5"]).await, int(1));
    assert_eq!(c.cmd(&["HDEL", "h", "b", "nope"]).await, int(1));
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "40"]).await, int(40));
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "2"]).await, int(42));
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "0.1"]).await, bulk("0.1"));
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "0.2"]).await, bulk("0.3"));
    assert_eq!(c.cmd(&["HSET", "gone", "x", "1", "y", "2"]).await, int(2));
    assert_eq!(c.cmd(&["HDEL", "gone", "x", "y"]).await, int(2));
    assert_eq!(c.cmd(&["COPY", "h", "copy"]).await, int(1));
    assert_eq!(c.cmd(&["HSET", "copy", "only-in-copy", "1"]).await, int(1));
    assert_eq!(c.cmd(&["COPY", "h", "copy1", "DB", "1"]).await, int(1));
    assert_eq!(c.cmd(&["HSET", "h", "after-copy", "1"]).await, int(1));
    assert_eq!(c.cmd(&["SELECT", "2"]).await, ok());
    assert_eq!(c.cmd(&["HSET", "x2", "f", "v"]).await, int(1));
    assert_eq!(c.cmd(&["COPY", "x2", "x2", "DB", "1"]).await, int(1));
    assert_eq!(
        c.cmd(&["COPY", "x2", "x2", "DB", "1", "REPLACE"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["SELECT", "0"]).await, ok());
    let h = pairs(&[
        ("a", "1"),
        ("after-copy", "1"),
        ("c", "3"),
        ("d", "4"),
        ("e", "5"),
        ("f", "0.3"),
        ("n", "42"),
    ]);
    let copied = pairs(&[
        ("a", "1"),
        ("c", "3"),
        ("d", "4"),
        ("e", "5"),
        ("f", "0.3"),
        ("n", "42"),
    ]);
    let mut copy = copied.clone();
    copy.push(("only-in-copy".into(), "1".into()));
    copy.sort();
    let expected = vec![
        (0, "copy".to_string(), copy),
        (0, "h".to_string(), h),
        (1, "copy1".to_string(), copied),
        (1, "x2".to_string(), pairs(&[("f", "v")])),
        (2, "x2".to_string(), pairs(&[("f", "v")])),
    ];
    assert_eq!(hash_state(&mut c).await, expected);
    stop(server).await;

    // Replay of the log.
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(hash_state(&mut c).await, expected, "after replay");
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        simple("Background append only file rewriting started")
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while info_field(&info_persistence(&mut c).await, "aof_rewrite_in_progress").as_deref()
        != Some("0")
    {
        assert!(std::time::Instant::now() < deadline, "rewrite finishes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A write after the rewrite lands in the new incremental log.
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "1"]).await, int(43));
    assert_eq!(c.cmd(&["SAVE"]).await, ok());
    stop(server).await;

    let mut expected = expected;
    if let Some(n) = expected[1].2.iter_mut().find(|(f, _)| f == "n") {
        n.1 = "43".into();
    }
    // The rewritten base plus its log.
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(hash_state(&mut c).await, expected, "after rewrite");
    stop(server).await;
    // The snapshot alone.
    let server = start_in(dir.path(), false, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(hash_state(&mut c).await, expected, "from the snapshot");
    stop(server).await;
}

/// Hash writes are logged deterministically: HINCRBYFLOAT as `HSET` of its result, HMSET as
/// `HSET`, COPY of a hash as sent, and writes that changed nothing not at all.
#[tokio::test]
async fn hash_log_records() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["HMSET", "h", "a", "1"]).await, ok());
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "1.5"]).await, bulk("1.5"));
    assert_eq!(c.cmd(&["HSETNX", "h", "a", "2"]).await, int(0));
    assert_eq!(c.cmd(&["HDEL", "h", "nope"]).await, int(0));
    assert_eq!(c.cmd(&["HDEL", "missing", "a"]).await, int(0));
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "a", "x"]).await,
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(c.cmd(&["COPY", "h", "h2", "DB", "1"]).await, int(1));
    assert_eq!(c.cmd(&["HDEL", "h", "a", "f"]).await, int(2));
    stop(server).await;
    let incr = std::fs::read(dir.path().join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    let text = String::from_utf8_lossy(&incr);
    let words: Vec<&str> = text
        .split("\r\n")
        .filter(|w| !w.starts_with('*') && !w.starts_with('$') && !w.is_empty())
        .collect();
    assert_eq!(
        words,
        [
            "SELECT", "0", "HSET", "h", "a", "1", "HSET", "h", "f", "1.5", "COPY", "h", "h2", "DB",
            "1", "HDEL", "h", "a", "f"
        ]
    );
}

/// Every sorted-set key with its members and scores (as text), for comparing states.
async fn zset_state(c: &mut Raw) -> Vec<(String, Frame)> {
    let mut keys = sorted_bulks(
        array_items(c.cmd(&["SCAN", "0", "COUNT", "1000", "TYPE", "zset"]).await)[1].clone(),
    );
    keys.sort();
    let mut state = Vec::new();
    for key in keys {
        let key = String::from_utf8(key).unwrap();
        let members = c.cmd(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]).await;
        let encoding = c.cmd(&["OBJECT", "ENCODING", &key]).await;
        state.push((format!("{key} {}", text_of(&encoding)), members));
    }
    state
}

/// Sorted-set writes come back after replaying the log, after a rewrite, and from a snapshot,
/// with the same scores to the bit (ZINCRBY's float sums included) and the same encodings.
#[tokio::test]
async fn sorted_sets_survive_replay_rewrite_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(
        c.cmd(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"])
            .await,
        int(4)
    );
    for _ in 0..3 {
        c.cmd(&["ZINCRBY", "z", "0.1", "a"]).await;
    }
    assert_eq!(
        c.cmd(&["ZADD", "z", "INCR", "1e-7", "b"]).await,
        bulk("2.0000000999999998")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "GT", "CH", "10", "c", "0", "d"]).await,
        int(1)
    );
    assert_eq!(c.cmd(&["ZREM", "z", "nope", "d"]).await, int(1));
    assert_eq!(
        c.cmd(&["ZADD", "p", "1", "x", "2", "y", "3", "w"]).await,
        int(3)
    );
    assert_eq!(c.cmd(&["ZPOPMIN", "p"]).await, bulks(&["x", "1"]));
    assert_eq!(
        c.cmd(&["ZMPOP", "2", "none", "p", "MAX", "COUNT", "1"])
            .await,
        Frame::Array(vec![bulk("p"), Frame::Array(vec![bulks(&["w", "3"])])])
    );
    let mut big = vec!["ZADD".to_string(), "big".to_string()];
    for i in 0..300 {
        big.push(format!("{}.5", i % 17));
        big.push(format!("member-{i}"));
    }
    assert_eq!(c.cmd(&big).await, int(300));
    // Scores 3.5, 4.5 and 5.5: members i with i % 17 in 3..=5, 18 of each below 300.
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "big", "(3", "5.5"]).await,
        int(54)
    );
    assert_eq!(
        c.cmd(&["ZUNIONSTORE", "u", "2", "z", "p", "WEIGHTS", "2", "3"])
            .await,
        int(4)
    );
    assert_eq!(c.cmd(&["ZRANGESTORE", "r", "big", "0", "9"]).await, int(10));
    assert_eq!(c.cmd(&["ZADD", "gone", "1", "a"]).await, int(1));
    assert_eq!(c.cmd(&["ZPOPMAX", "gone", "5"]).await, bulks(&["a", "1"]));
    let expected = zset_state(&mut c).await;
    assert_eq!(expected.len(), 5, "{expected:?}");
    stop(server).await;

    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(zset_state(&mut c).await, expected, "after replay");
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        simple("Background append only file rewriting started")
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while info_field(&info_persistence(&mut c).await, "aof_rewrite_in_progress").as_deref()
        != Some("0")
    {
        assert!(std::time::Instant::now() < deadline, "rewrite finishes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.cmd(&["SAVE"]).await, ok());
    stop(server).await;
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(zset_state(&mut c).await, expected, "after rewrite");
    stop(server).await;
    let server = start_in(dir.path(), false, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(zset_state(&mut c).await, expected, "from the snapshot");
    stop(server).await;
}

/// What sorted-set writes log: as sent, ZMPOP as the ZPOPMIN/ZPOPMAX it did, and writes
/// that changed nothing not at all.
#[tokio::test]
async fn sorted_set_log_records() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), true, FsyncPolicy::Always).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["ZADD", "z", "1", "a", "2", "b"]).await, int(2));
    assert_eq!(c.cmd(&["ZADD", "z", "NX", "5", "a"]).await, int(0));
    assert_eq!(c.cmd(&["ZREM", "z", "nope"]).await, int(0));
    assert_eq!(
        c.cmd(&["ZMPOP", "1", "z", "MAX"]).await,
        Frame::Array(vec![bulk("z"), Frame::Array(vec![bulks(&["b", "2"])])])
    );
    assert_eq!(
        c.cmd(&["ZINTERSTORE", "none", "1", "missing"]).await,
        int(0)
    );
    stop(server).await;
    let incr = std::fs::read(dir.path().join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    let text = String::from_utf8_lossy(&incr);
    let words: Vec<&str> = text
        .split("\r\n")
        .filter(|w| !w.starts_with('*') && !w.starts_with('$') && !w.is_empty())
        .collect();
    assert_eq!(
        words,
        ["SELECT", "0", "ZADD", "z", "1", "a", "2", "b", "ZPOPMAX", "z", "1"]
    );
}
