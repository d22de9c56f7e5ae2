//! Disk faults, exhaustively: the server runs in-process on a simulated disk
//! ([`FaultyDisk`]) that fails the Nth call of one kind (create, write, fsync, truncate,
//! rename, directory fsync, remove), and keeps track of what a power loss would leave. For
//! every kind of call, a spread of N, and each fsync policy, a workload of writes, a log
//! rewrite and a snapshot runs through the fault; then the disk heals, the server must take
//! writes again by itself, and a crash image of the disk (only what was made durable, with
//! the data a failed fsync dropped turned to zeros) must start a server holding every
//! write that was acknowledged.
//!
//! By default N takes up to four values spread over the calls the workload makes of that
//! kind; `KV_FAULT_EXHAUSTIVE=1` (set by `.ci/run`) tries every N.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvserver::persist::disk::{DiskOp, Fault, FaultRule, FaultyDisk};
use kvserver::{Config, ServerHandle};

use crate::util::*;

/// SETs in each of the workload's three phases (around the rewrite and the snapshot).
const PHASE_WRITES: usize = 12;

fn config(dir: &Path, policy: &str) -> Config {
    let mut config = Config {
        port: 0,
        threads: 1,
        dir: dir.to_owned(),
        save: Default::default(),
        appendonly: true,
        ..Config::default()
    };
    config.appendfsync = match policy {
        "always" => kvserver::config::FsyncPolicy::Always,
        "everysec" => kvserver::config::FsyncPolicy::Everysec,
        _ => kvserver::config::FsyncPolicy::No,
    };
    config
}

async fn start(dir: &Path, policy: &str, disk: &FaultyDisk) -> ServerHandle {
    kvserver::start_on_disk(config(dir, policy), None, Arc::new(disk.clone()))
        .await
        .expect("server starts")
}

/// Polls INFO until `field` is `value`.
async fn wait_info(client: &mut Raw, field: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = text_of(&client.cmd(&["INFO", "persistence"]).await);
        if info_field(&info, field).as_deref() == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{field} never became {value}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What one run was told: acknowledged keys and the errors seen.
#[derive(Default, Debug)]
struct Told {
    acknowledged: BTreeMap<String, String>,
    errors: Vec<String>,
}

impl Told {
    async fn set(&mut self, client: &mut Raw, key: String, value: String) {
        match client.cmd(&["SET", key.as_str(), value.as_str()]).await {
            Frame::Simple(ok) if &ok[..] == b"OK" => {
                self.acknowledged.insert(key, value);
            }
            Frame::Error(line) => {
                let line = String::from_utf8_lossy(&line).into_owned();
                assert!(line.starts_with("MISCONF"), "unexpected error: {line}");
                self.errors.push(line);
            }
            other => panic!("unexpected reply to SET: {other:?}"),
        }
    }
}

/// Writes, a rewrite, writes, a snapshot, writes: every persistence path touches the disk.
async fn workload(client: &mut Raw) -> Told {
    let mut told = Told::default();
    for phase in 0..3 {
        for i in 0..PHASE_WRITES {
            told.set(client, format!("k{phase}:{i}"), format!("v{phase}:{i}"))
                .await;
        }
        match phase {
            0 => {
                client.cmd(&["BGREWRITEAOF"]).await;
                wait_info(client, "aof_rewrite_in_progress", "0").await;
            }
            1 => {
                // SAVE may fail (its reply is an error then); the server must go on.
                client.cmd(&["SAVE"]).await;
            }
            _ => {}
        }
    }
    told
}

/// Calls of each kind the workload made (from the moment the fault would have been set).
type Calls = BTreeMap<String, u64>;

/// One case: the workload with `rule` in force (its `first` counted from the start of the
/// workload), healing, then a power loss. Returns the workload's calls of each kind and
/// whether the fault was injected.
async fn run_case(policy: &str, rule: Option<FaultRule>) -> (Calls, bool) {
    let dir = tempfile::tempdir().expect("data dir");
    let disk = FaultyDisk::new();
    let server = start(dir.path(), policy, &disk).await;
    let mut client = Raw::connect(server.addr()).await;
    let before: Vec<u64> = DiskOp::ALL.iter().map(|&op| disk.calls(op)).collect();
    if let Some(mut rule) = rule {
        rule.first += disk.calls(rule.op);
        disk.inject(rule);
    }
    let mut told = workload(&mut client).await;
    let calls: Calls = DiskOp::ALL
        .iter()
        .zip(&before)
        .map(|(&op, &before)| (format!("{op:?}"), disk.calls(op) - before))
        .collect();
    let injected = disk.injected() > 0;
    disk.clear();
    // The server recovers by itself: writes are accepted again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = client.cmd(&["SET", "healed", "yes"]).await;
        if reply == ok() {
            told.acknowledged.insert("healed".into(), "yes".into());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{policy} {rule:?}: writes still refused after the disk healed: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = text_of(&client.cmd(&["INFO", "persistence"]).await);
    assert_eq!(
        info_field(&info, "aof_last_write_status").as_deref(),
        Some("ok"),
        "{policy} {rule:?}: {info}"
    );
    if policy != "always" {
        // Past the next everysec fsync: what is acknowledged now is durable under every policy
        // this test runs ("no" leaves it to the OS, so it is checked only for the rest).
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let image = tempfile::tempdir().expect("image dir");
    disk.crash_image(dir.path(), image.path())
        .expect("crash image");
    server.shutdown();
    server.stopped().await;
    if policy == "no" {
        return (calls, injected);
    }
    let restarted = kvserver::start(config(image.path(), policy), None)
        .await
        .unwrap_or_else(|err| panic!("{policy} {rule:?}: the crash image does not load: {err:#}"));
    let mut client = Raw::connect(restarted.addr()).await;
    let mut missing = Vec::new();
    for (key, value) in &told.acknowledged {
        if client.cmd(&["GET", key.as_str()]).await != bulk(value) {
            missing.push(key.clone());
        }
    }
    restarted.shutdown();
    restarted.stopped().await;
    assert!(
        missing.is_empty(),
        "{policy} {rule:?}: acknowledged writes lost after a power loss: {missing:?} (errors seen: {:?})",
        told.errors
    );
    (calls, injected)
}

/// Up to `max` call numbers spread over `1..=calls`.
fn spread(calls: u64, max: u64) -> Vec<u64> {
    if calls <= max || max < 2 {
        return (1..=calls).collect();
    }
    let mut picks: Vec<u64> = (0..max).map(|i| 1 + i * (calls - 1) / (max - 1)).collect();
    picks.dedup();
    picks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_disk_call_failing_loses_no_acknowledged_write() {
    for policy in ["always", "everysec", "no"] {
        let (calibration, _) = run_case(policy, None).await;
        for op in DiskOp::ALL {
            let calls = calibration[&format!("{op:?}")];
            let picks = if std::env::var_os("KV_FAULT_EXHAUSTIVE").is_some() {
                calls
            } else {
                4
            };
            for nth in spread(calls, picks) {
                let fault = match op {
                    DiskOp::Write => Fault::Short,
                    _ => Fault::Fail(libc::EIO),
                };
                let count = if op == DiskOp::Write { 3 } else { 1 };
                let rule = FaultRule {
                    op,
                    first: nth,
                    count,
                    fault,
                };
                let (calls, injected) = run_case(policy, Some(rule)).await;
                assert!(
                    injected || calls[&format!("{op:?}")] < nth,
                    "{policy} {rule:?}: the fault was never injected"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_keeps_failing_for_a_while_is_survived() {
    // Long faults: every fsync (or every write) fails for many calls in a row.
    for policy in ["always", "everysec", "no"] {
        for (op, fault) in [
            (DiskOp::Sync, Fault::Fail(libc::EIO)),
            (DiskOp::Write, Fault::Fail(libc::ENOSPC)),
        ] {
            let rule = FaultRule {
                op,
                first: 3,
                count: 40,
                fault,
            };
            run_case(policy, Some(rule)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_the_log_off_ends_its_refusals() {
    let dir = tempfile::tempdir().expect("data dir");
    let disk = FaultyDisk::new();
    let server = start(dir.path(), "always", &disk).await;
    let mut client = Raw::connect(server.addr()).await;
    assert_eq!(client.cmd(&["SET", "a", "1"]).await, ok());
    disk.inject(FaultRule {
        op: DiskOp::Sync,
        first: disk.calls(DiskOp::Sync) + 1,
        count: u64::MAX,
        fault: Fault::Fail(libc::EIO),
    });
    let refused = client.cmd(&["SET", "b", "2"]).await;
    assert_eq!(
        refused,
        err("MISCONF Errors writing to the AOF file: Input/output error")
    );
    assert_eq!(client.cmd(&["GET", "a"]).await, bulk("1"));
    assert_eq!(
        client.cmd(&["CONFIG", "SET", "appendonly", "no"]).await,
        ok()
    );
    assert_eq!(client.cmd(&["SET", "c", "3"]).await, ok());
    server.shutdown();
    server.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_always_a_failed_fsync_fails_the_writes_of_a_pipeline_and_not_its_reads() {
    let dir = tempfile::tempdir().expect("data dir");
    let disk = FaultyDisk::new();
    let server = start(dir.path(), "always", &disk).await;
    let mut client = Raw::connect(server.addr()).await;
    assert_eq!(client.cmd(&["SET", "kept", "1"]).await, ok());
    disk.inject(FaultRule {
        op: DiskOp::Sync,
        first: disk.calls(DiskOp::Sync) + 1,
        count: 1,
        fault: Fault::Fail(libc::EIO),
    });
    let mut batch = encode(&["SET", "a", "1"]);
    batch.extend(encode(&["GET", "kept"]));
    batch.extend(encode(&["INCR", "counter"]));
    batch.extend(encode(&["INCR", "kept-is-not-a-number-but-this-is-fine"]));
    client.send(&batch).await;
    let misconf = err("MISCONF Errors writing to the AOF file: Input/output error");
    assert_eq!(
        client.read().await,
        misconf,
        "SET covered by the failed fsync"
    );
    assert_eq!(client.read().await, bulk("1"), "the read in the same batch");
    assert_eq!(
        client.read().await,
        misconf,
        "INCR covered by the failed fsync"
    );
    assert_eq!(client.read().await, misconf);
    // The log is re-established in new files by itself; then writes are acknowledged again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.cmd(&["SET", "b", "2"]).await != ok() {
        assert!(Instant::now() < deadline, "writes never accepted again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown();
    server.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_failed_just_before_a_shutdown_is_not_lost() {
    let dir = tempfile::tempdir().expect("data dir");
    let disk = FaultyDisk::new();
    let server = start(dir.path(), "everysec", &disk).await;
    let mut client = Raw::connect(server.addr()).await;
    let writes_before = disk.calls(DiskOp::Write);
    assert_eq!(client.cmd(&["SET", "before", "1"]).await, ok());
    // Under everysec the reply comes before the write: wait for it, so that the fault below
    // hits the next write only.
    let deadline = Instant::now() + Duration::from_secs(10);
    while disk.calls(DiskOp::Write) == writes_before {
        assert!(Instant::now() < deadline, "the first write never came");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    disk.inject(FaultRule {
        op: DiskOp::Write,
        first: disk.calls(DiskOp::Write) + 1,
        count: 1,
        fault: Fault::Fail(libc::ENOSPC),
    });
    // Acknowledged at once under everysec; its first write fails, and the retry is not due
    // before the shutdown below.
    assert_eq!(client.cmd(&["SET", "acknowledged", "2"]).await, ok());
    let deadline = Instant::now() + Duration::from_secs(10);
    while disk.injected() == 0 {
        assert!(Instant::now() < deadline, "the write was never attempted");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.shutdown();
    server.stopped().await;
    let image = tempfile::tempdir().expect("image dir");
    disk.crash_image(dir.path(), image.path())
        .expect("crash image");
    let restarted = kvserver::start(config(image.path(), "everysec"), None)
        .await
        .expect("the image loads");
    let mut client = Raw::connect(restarted.addr()).await;
    assert_eq!(client.cmd(&["GET", "before"]).await, bulk("1"));
    assert_eq!(client.cmd(&["GET", "acknowledged"]).await, bulk("2"));
    restarted.shutdown();
    restarted.stopped().await;
}
