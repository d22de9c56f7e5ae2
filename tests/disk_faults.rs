//! Disk faults, end to end: the real `kvserver` binary runs on a disk that fails under it
//! (an `LD_PRELOAD` shim, `tests/support/disk_faults.c`, built by these tests with `cc`),
//! with concurrent writers, `SIGKILL` and a restart without the shim. No test-only code path
//! exists in the server: it sees `write`, `fsync`, `rename` and directory `fsync` fail as a
//! full or broken disk would make them.
//!
//! What every test checks, after the restart: every write that got `+OK` is there. During the
//! fault: writes are refused with Redis's `-MISCONF` texts instead of being acknowledged,
//! reads keep working, INFO says `err`, and once the disk works again the server recovers by
//! itself (no restart) and accepts writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::crash::harness::{poll_info, read_manifest, Conn, Server};
use crate::util::*;

/// The MISCONF line for a failed append-only file write (Redis's text, `strerror` included).
const MISCONF_AOF_ENOSPC: &str = "MISCONF Errors writing to the AOF file: No space left on device";
/// Redis's MISCONF line while the last background save failed.
const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
/// Concurrent writers per test.
const WRITERS: usize = 4;

/// The shim, compiled once per test run.
fn shim_library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/disk_faults.c");
        let out = std::env::temp_dir().join(format!("kv-disk-faults-{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("shim build directory");
        let library = out.join("libdiskfaults.so");
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
            .arg(&library)
            .arg(&source)
            .arg("-ldl")
            .status()
            .expect("run cc (the Rust toolchain needs it as its linker, so it is installed)");
        assert!(status.success(), "building the disk-fault shim failed");
        library
    })
}

/// A data directory whose disk fails on command.
struct FaultyDir {
    data: tempfile::TempDir,
    control: tempfile::TempDir,
}

impl FaultyDir {
    fn new() -> FaultyDir {
        FaultyDir {
            data: tempfile::tempdir().expect("data dir"),
            control: tempfile::tempdir().expect("control dir"),
        }
    }

    fn data(&self) -> &Path {
        self.data.path()
    }

    /// The environment that puts the shim under a server on this directory.
    fn envs(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), shim_library().display().to_string()),
            (
                "KV_FAULT_DIR".into(),
                self.control.path().display().to_string(),
            ),
            ("KV_FAULT_MATCH".into(), self.data().display().to_string()),
        ]
    }

    /// Starts a fault (`call`: write, fsync, dirsync, rename, stall, match).
    fn set(&self, call: &str, value: &str) {
        std::fs::write(self.control.path().join(call), value).expect("control file");
    }

    /// Ends a fault.
    fn clear(&self, call: &str) {
        let _ = std::fs::remove_file(self.control.path().join(call));
    }

    /// The faults injected so far, a line each.
    fn injected(&self) -> String {
        std::fs::read_to_string(self.control.path().join("injected")).unwrap_or_default()
    }

    async fn wait_injected(&self, call: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.injected().lines().any(|line| line.starts_with(call)) {
            assert!(Instant::now() < deadline, "no {call} fault was ever hit");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn start(&self, args: &[&str]) -> (Server, Conn) {
        Server::start_with_env(&kvserver_binary(), self.data(), args, &self.envs()).await
    }
}

/// What the writers were told.
#[derive(Default)]
struct Outcomes {
    /// Keys whose SET got `+OK`, with the value.
    acknowledged: BTreeMap<String, String>,
    /// Error lines, by text, with how many times each came.
    errors: BTreeMap<String, usize>,
}

/// Files one SET reply under what the writers were told.
fn record(outcomes: &Mutex<Outcomes>, key: String, value: String, reply: Frame) {
    let mut outcomes = outcomes.lock().unwrap();
    match reply {
        Frame::Simple(ok) if &ok[..] == b"OK" => {
            outcomes.acknowledged.insert(key, value);
        }
        Frame::Error(line) => {
            let line = String::from_utf8_lossy(&line).into_owned();
            *outcomes.errors.entry(line).or_default() += 1;
        }
        other => panic!("unexpected reply to SET: {other:?}"),
    }
}

/// Writers that SET fresh keys one at a time until stopped, recording every reply.
struct Writers {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    async fn start(port: u16) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let mut conn = Conn::connect(port).await.expect("writer connects");
            let (stop, outcomes) = (Arc::clone(&stop), Arc::clone(&outcomes));
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let (key, value) = (format!("w{w}:{n}"), format!("v{n}"));
                    let reply = conn
                        .cmd(&["SET", key.as_str(), value.as_str()])
                        .await
                        .expect("the server answers every write (no hang, no disconnect)");
                    record(&outcomes, key, value, reply);
                    if n.is_multiple_of(16) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }));
        }
        Writers {
            stop,
            outcomes,
            tasks,
        }
    }

    fn acknowledged(&self) -> usize {
        self.outcomes.lock().unwrap().acknowledged.len()
    }

    fn errors(&self, text: &str) -> usize {
        let outcomes = self.outcomes.lock().unwrap();
        outcomes
            .errors
            .iter()
            .filter(|(line, _)| line.starts_with(text))
            .map(|(_, n)| n)
            .sum()
    }

    /// Waits until the writers have had `n` more acknowledgements than now.
    async fn wait_acknowledged(&self, n: usize) {
        let target = self.acknowledged() + n;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.acknowledged() < target {
            assert!(
                Instant::now() < deadline,
                "writes were not acknowledged again: {:?}",
                self.outcomes.lock().unwrap().errors
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_errors(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.errors(text) == 0 {
            assert!(
                Instant::now() < deadline,
                "no write was refused with {text:?}: {:?}",
                self.outcomes.lock().unwrap().errors
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("writer task");
        }
        Arc::try_unwrap(self.outcomes)
            .ok()
            .expect("writers are done")
            .into_inner()
            .unwrap()
    }
}

/// Restarts on `dir` without the shim and checks that every acknowledged key is there.
async fn verify_after_restart(dir: &Path, args: &[&str], outcomes: &Outcomes) {
    let (mut server, mut conn) = Server::start(&kvserver_binary(), dir, args).await;
    let mut missing = Vec::new();
    for (key, value) in &outcomes.acknowledged {
        let got = conn.must(&["GET", key.as_str()]).await;
        if got != Frame::Bulk(value.clone().into()) {
            missing.push(format!("{key}={got:?}"));
        }
    }
    server.kill();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes are missing or wrong after the restart, e.g. {:?}",
        missing.len(),
        outcomes.acknowledged.len(),
        &missing[..missing.len().min(5)]
    );
}

async fn info_persistence(conn: &mut Conn) -> String {
    text_of(&conn.must(&["INFO", "persistence"]).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_loses_no_acknowledged_write() {
    for policy in ["everysec", "always", "no"] {
        let dir = FaultyDir::new();
        let args = ["--appendonly", "yes", "--appendfsync", policy];
        let (mut server, mut conn) = dir.start(&args).await;
        conn.must(&["SET", "before", "fault"]).await;
        let writers = Writers::start(server.port).await;
        writers.wait_acknowledged(200).await;
        // A short write, then ENOSPC on every write: how a disk filling up looks.
        dir.set("write", "short");
        dir.wait_injected("write").await;
        writers.wait_errors(MISCONF_AOF_ENOSPC).await;
        let info = info_persistence(&mut conn).await;
        assert_eq!(
            info_field(&info, "aof_last_write_status").as_deref(),
            Some("err"),
            "{policy}: {info}"
        );
        assert_eq!(
            conn.must(&["GET", "before"]).await,
            Frame::Bulk("fault".into()),
            "{policy}: reads keep working"
        );
        assert_eq!(
            conn.must(&["PING"]).await,
            Frame::Error(MISCONF_AOF_ENOSPC.as_bytes().to_vec().into()),
            "{policy}: PING reports the disk error, as in Redis"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        dir.clear("write");
        // The server notices by itself that the disk has room again.
        poll_info(&mut conn, "aof_last_write_status", "ok").await;
        writers.wait_acknowledged(200).await;
        let outcomes = writers.stop().await;
        if policy != "always" {
            // Past the everysec bound: what is acknowledged now must be on disk.
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
        server.kill();
        let output = server.output_containing(&["accepting writes again"]).await;
        assert!(
            output.contains("accepting writes again"),
            "{policy}: the recovery is logged:\n{output}"
        );
        verify_after_restart(dir.data(), &args, &outcomes).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_is_never_retried_on_the_same_file() {
    for policy in ["always", "everysec"] {
        let dir = FaultyDir::new();
        let args = ["--appendonly", "yes", "--appendfsync", policy];
        let (mut server, mut conn) = dir.start(&args).await;
        let incr_before = read_manifest(dir.data()).incrs;
        let writers = Writers::start(server.port).await;
        writers.wait_acknowledged(200).await;
        dir.set("fsync", "EIO");
        dir.wait_injected("fdatasync").await;
        // Writes the failed fsync covered are not acknowledged, and nothing hangs: the
        // writers' replies come (they would time out and fail the test otherwise).
        writers.wait_errors("MISCONF").await;
        let info = info_persistence(&mut conn).await;
        assert_eq!(
            info_field(&info, "aof_last_write_status").as_deref(),
            Some("err"),
            "{policy}: {info}"
        );
        dir.clear("fsync");
        poll_info(&mut conn, "aof_last_write_status", "ok").await;
        writers.wait_acknowledged(200).await;
        let outcomes = writers.stop().await;
        // The log was re-established in fresh files, not by appending to the one whose fsync
        // failed.
        let incr_after = read_manifest(dir.data()).incrs;
        assert!(
            incr_after.iter().all(|entry| !incr_before.contains(entry)),
            "{policy}: the incremental file whose fsync failed is still in use: {incr_before:?} -> {incr_after:?}"
        );
        if policy != "always" {
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
        server.kill();
        verify_after_restart(dir.data(), &args, &outcomes).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rewrite_leaves_the_old_log_in_charge() {
    for (call, target) in [
        ("fsync", "base"),
        ("rename", "manifest"),
        ("dirsync", "appendonlydir"),
    ] {
        let dir = FaultyDir::new();
        let args = ["--appendonly", "yes", "--appendfsync", "always"];
        let (mut server, mut conn) = dir.start(&args).await;
        let writers = Writers::start(server.port).await;
        writers.wait_acknowledged(100).await;
        let manifest_before =
            std::fs::read_to_string(dir.data().join("appendonlydir/appendonly.aof.manifest"))
                .expect("manifest");
        dir.set("match", target);
        dir.set(call, "EIO");
        conn.must(&["BGREWRITEAOF"]).await;
        poll_info(&mut conn, "aof_last_bgrewrite_status", "err").await;
        poll_info(&mut conn, "aof_rewrite_in_progress", "0").await;
        dir.clear(call);
        dir.clear("match");
        // Writes go on (a failed rewrite does not stop them, as in Redis).
        writers.wait_acknowledged(100).await;
        let outcomes = writers.stop().await;
        assert!(
            dir.injected()
                .lines()
                .any(|l| l.starts_with(call) || l.contains(call)),
            "{call}: the fault was never hit: {}",
            dir.injected()
        );
        let manifest_after =
            std::fs::read_to_string(dir.data().join("appendonlydir/appendonly.aof.manifest"))
                .expect("manifest");
        let base = |manifest: &str| {
            manifest
                .lines()
                .find(|line| line.contains("type b"))
                .map(str::to_owned)
        };
        assert_eq!(
            base(&manifest_before),
            base(&manifest_after),
            "{call} on {target}: the old base stays in charge"
        );
        server.kill();
        verify_after_restart(dir.data(), &args, &outcomes).await;
        drop(conn);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bgsave_refuses_writes_until_a_save_succeeds() {
    let dir = FaultyDir::new();
    let args = ["--appendonly", "no", "--save", "3600 1"];
    let (mut server, mut conn) = dir.start(&args).await;
    conn.must(&["SET", "kept", "1"]).await;
    assert_eq!(conn.must(&["SAVE"]).await, Frame::Simple("OK".into()));
    let dump = dir.data().join("dump.kvs");
    let good = std::fs::read(&dump).expect("dump written");
    conn.must(&["SET", "later", "2"]).await;
    dir.set("fsync", "EIO");
    conn.must(&["BGSAVE"]).await;
    poll_info(&mut conn, "rdb_last_bgsave_status", "err").await;
    poll_info(&mut conn, "rdb_bgsave_in_progress", "0").await;
    assert_eq!(
        conn.must(&["SET", "refused", "3"]).await,
        Frame::Error(MISCONF_RDB.as_bytes().to_vec().into())
    );
    assert_eq!(
        conn.must(&["DEL", "kept"]).await,
        Frame::Error(MISCONF_RDB.as_bytes().to_vec().into())
    );
    assert_eq!(conn.must(&["GET", "kept"]).await, Frame::Bulk("1".into()));
    assert_eq!(
        std::fs::read(&dump).expect("dump still there"),
        good,
        "a failed save never replaces the last good snapshot"
    );
    assert!(
        temp_files_in(dir.data()).is_empty(),
        "the failed save's temporary file is removed"
    );
    dir.clear("fsync");
    conn.must(&["BGSAVE"]).await;
    poll_info(&mut conn, "rdb_last_bgsave_status", "ok").await;
    poll_info(&mut conn, "rdb_bgsave_in_progress", "0").await;
    assert_eq!(
        conn.must(&["SET", "accepted", "4"]).await,
        Frame::Simple("OK".into())
    );
    server.kill();
}

fn temp_files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("temp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_fsync_under_everysec_refuses_writes_past_two_seconds() {
    let dir = FaultyDir::new();
    let args = ["--appendonly", "yes", "--appendfsync", "everysec"];
    let (mut server, mut conn) = dir.start(&args).await;
    let writers = Writers::start(server.port).await;
    writers.wait_acknowledged(100).await;
    // Every fsync now takes 4 s: acknowledged writes would wait longer than everysec allows.
    dir.set("stall", "4000");
    writers
        .wait_errors("MISCONF Errors writing to the AOF file: fsync has not completed")
        .await;
    assert_eq!(
        conn.must(&["EXISTS", "w0:1"]).await,
        Frame::Integer(1),
        "reads keep working"
    );
    dir.clear("stall");
    // Once the stalled fsync returns, the log catches up and writes are accepted again.
    writers.wait_acknowledged(100).await;
    let outcomes = writers.stop().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill();
    verify_after_restart(dir.data(), &args, &outcomes).await;
}
