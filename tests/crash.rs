//! Crash tests: the real `kvserver` binary with the append-only file on, four concurrent
//! writers, `SIGKILL` at random moments (also during BGREWRITEAOF and BGSAVE), restarts on
//! the same directory, and a model of what every writer sent and was told.
//!
//! Every writer owns its keys (`w<w>:...`, writers 0 and 2 in database 0, 1 and 3 in
//! database 1) and sends one command at a time (SET with and without TTLs, MSET and
//! multi-key DEL across shards, RENAME, APPEND, SETRANGE, INCR/INCRBY/INCRBYFLOAT,
//! EXPIRE/PEXPIRE/PERSIST, GETDEL, SETs with a TTL of a few ms, writes to its collection
//! keys, sometimes hundreds of elements at once: see `harness::collections`, and MULTI/EXEC
//! transactions of two to four of those, which count as one operation), so its history
//! is a sequence of operations of which all but possibly the last (the one in flight when
//! the server died) were acknowledged. After a restart the writer's keys must look exactly
//! like its starting state with some prefix of that sequence applied (values and whether a
//! TTL is set): with `appendfsync always` that prefix is every acknowledged operation, plus
//! possibly the one in flight (as a whole: an in-flight MSET, multi-key DEL or transaction is
//! all or nothing). Under `everysec` any prefix is accepted (and the loss is reported). No key
//! outside the writers' key spaces may exist, and the number of keys must match.
//!
//! Choices (operations, kill moments, truncation points) come from a small deterministic PRNG;
//! every test prints its seed, and `KV_CRASH_SEED=<n>` repeats the choices (the timing of
//! the kills relative to the writes naturally varies from run to run).
//!
//! The harness (the server process, the writers, the model and the checks) is in
//! [`harness`]; this file holds the tests.

pub mod harness;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::*;
use harness::*;

/// Plain rounds: writers, SIGKILL, restart on the same directory, every acknowledged write is
/// there (and the in-flight ones all or nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_no_acknowledged_write() {
    let mut h = Harness::new("plain", "always");
    let started = Instant::now();
    let mut logs = Vec::new();
    for _ in 0..12 {
        let (mut server, mut conn) = h.start().await;
        h.verify(&mut conn, &server, &logs, Expect::Durable).await;
        logs = h.write_and_kill(&mut server, Action::Plain).await;
    }
    let (mut server, mut conn) = h.start().await;
    h.verify(&mut conn, &server, &logs, Expect::Durable).await;
    server.kill();
    println!(
        "crash::plain: {} rounds, {} acknowledged ops all kept, in-flight ops applied {} / \
         not applied {}, {:?}",
        h.round,
        h.acked_total,
        h.in_flight_applied,
        h.in_flight_lost,
        started.elapsed()
    );
}

/// Kills 0-30 ms after BGREWRITEAOF (and some after it finished): the manifest always names
/// files that hold every acknowledged write, and rewrites do complete across rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_bgrewriteaof_loses_no_acknowledged_write() {
    let mut h = Harness::new("rewrite", "always");
    let started = Instant::now();
    let actions = [
        Action::Rewrite,
        Action::Rewrite,
        Action::RewriteDone,
        Action::Rewrite,
        Action::Rewrite,
        Action::Plain,
        Action::Rewrite,
        Action::RewriteDone,
        Action::Rewrite,
        Action::Rewrite,
        Action::Rewrite,
        Action::Rewrite,
    ];
    let mut logs = Vec::new();
    let mut completed = 0;
    for action in actions {
        let (mut server, mut conn) = h.start().await;
        h.verify(&mut conn, &server, &logs, Expect::Durable).await;
        if h.round == 0 {
            h.load_fillers(&mut conn, FILLERS).await;
        }
        let before = read_manifest(h.dir()).base.map_or(0, |(_, seq)| seq);
        logs = h.write_and_kill(&mut server, action).await;
        let manifest = read_manifest(h.dir());
        let after = manifest.base.as_ref().map_or(0, |(_, seq)| *seq);
        assert!(after >= before, "base seq went from {before} to {after}");
        if action == Action::RewriteDone {
            assert!(
                after > before,
                "a finished rewrite did not install a new base: {manifest:?}"
            );
        } else if action == Action::Rewrite && after > before {
            completed += 1;
        }
        println!(
            "    manifest after the kill: {manifest:?}; temporary files: {:?}",
            temp_files(h.dir())
        );
    }
    let (mut server, mut conn) = h.start().await;
    h.verify(&mut conn, &server, &logs, Expect::Durable).await;
    server.kill();
    let files: Vec<String> = std::fs::read_dir(h.dir().join(AOF_DIR))
        .expect("aof dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    println!(
        "crash::rewrite: {} rounds, {} acknowledged ops all kept, in-flight applied {} / not \
         {}; rewrites killed 0-30 ms after the start that had already completed: {completed} \
         of {}; files left: {files:?}; {:?}",
        h.round,
        h.acked_total,
        h.in_flight_applied,
        h.in_flight_lost,
        actions.iter().filter(|a| **a == Action::Rewrite).count(),
        started.elapsed()
    );
}

/// Kills 0-30 ms after BGSAVE: the log still has every acknowledged write, and the snapshot
/// file (if written) loads with `--appendonly no` into a state every writer passed through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_bgsave_keeps_the_log_and_a_loadable_snapshot() {
    let mut h = Harness::new("bgsave", "always");
    let started = Instant::now();
    let mut logs = Vec::new();
    let mut fresh_snapshots = 0;
    let rounds = 8;
    for _ in 0..rounds {
        let (mut server, mut conn) = h.start().await;
        h.verify(&mut conn, &server, &logs, Expect::Durable).await;
        if h.round == 0 {
            h.load_fillers(&mut conn, FILLERS).await;
        }
        logs = h.write_and_kill(&mut server, Action::Save).await;

        // The snapshot alone, on a copy of the directory.
        let copy = tempfile::tempdir().expect("tempdir");
        copy_dir(h.dir(), copy.path());
        let had_dump = copy.path().join("dump.kvs").exists();
        let (mut snap_server, mut snap_conn) = Server::start(
            &h.binary,
            copy.path(),
            &["--appendonly", "no", "--save", ""],
        )
        .await;
        let context = format!("{} (snapshot only)", h.context());
        let fillers = if had_dump { h.fillers } else { 0 };
        let observed = observe(&mut snap_conn, &context, fillers).await;
        let mut positions = Vec::new();
        for (w, observed) in observed.iter().enumerate() {
            // A snapshot is one instant: each writer's keys show a prefix of its history.
            let ops: Vec<Op> = h.history[w].iter().chain(&logs[w].ops).cloned().collect();
            let matches = prefix_matches(&State::new(), &ops, observed, &universe(w));
            assert!(
                !matches.is_empty(),
                "{context}: writer {w}'s keys in the snapshot match no point of its history:\n{}",
                diff(&replay(&State::new(), &ops), observed, &universe(w))
            );
            let last = *matches.last().expect("a match");
            positions.push(last as i64 - h.history[w].len() as i64);
        }
        snap_server.kill();
        // A snapshot taken this round lies past the start of the round for every writer.
        if had_dump && positions.iter().all(|&p| p > 0) {
            fresh_snapshots += 1;
        }
        println!(
            "    dump.kvs present: {had_dump}; its position relative to the round start per \
             writer: {positions:?}; temporary files: {:?}",
            temp_files(h.dir())
        );
    }
    let (mut server, mut conn) = h.start().await;
    h.verify(&mut conn, &server, &logs, Expect::Durable).await;
    server.kill();
    println!(
        "crash::bgsave: {rounds} rounds, {} acknowledged ops all kept; snapshots completed \
         before the kill: {fresh_snapshots} of {rounds}; {:?}",
        h.acked_total,
        started.elapsed()
    );
}

/// A torn tail made by truncating the last incremental file inside its last record: the
/// server truncates it with a warning, keeps everything else, and appends after it fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_truncated_with_a_warning() {
    let mut h = Harness::new("torn", "always");
    let started = Instant::now();
    let mut logs: Vec<RoundLog> = Vec::new();
    let mut expect = Expect::Durable;
    for cycle in 0..3 {
        let (mut server, mut conn) = h.start().await;
        h.verify(&mut conn, &server, &logs, expect).await;
        // Writers, stopped cleanly; then one last SET of writer 0 whose record is the
        // last one of the log.
        h.round += 1;
        let round_seed = h.rng.next();
        let mut rng = Rng(round_seed);
        let stop = Arc::new(AtomicBool::new(false));
        let writers = h.spawn_writers(server.port, round_seed, &stop);
        tokio::time::sleep(Duration::from_millis(rng.between(100, 250))).await;
        stop.store(true, Ordering::SeqCst);
        logs = join_writers(writers).await;
        assert!(
            logs.iter().all(|l| l.in_flight().is_none()),
            "stopped cleanly; server output:\n{}",
            server.output()
        );
        expire_short_keys(&mut conn).await;
        let pad = "p".repeat(rng.between(0, 300) as usize);
        let tail = Op::Set {
            key: plain_key(0, rng.index(PLAIN_KEYS)),
            value: format!("tail{cycle}-{pad}"),
            ttl: Ttl::None,
        };
        assert_eq!(conn.must(&tail.args()).await, ok());
        logs[0].ops.push(tail.clone());
        logs[0].acked += 1;
        server.kill();

        // Cut into the last record.
        let manifest = read_manifest(h.dir());
        let (incr, _) = manifest.incrs.last().expect("an incr file").clone();
        let path = h.dir().join(AOF_DIR).join(&incr);
        let data = std::fs::read(&path).expect("read the log");
        let records = parse_records(&data);
        let last = records.last().expect("records");
        assert_eq!(last.end, data.len(), "the log ends with a whole record");
        assert_eq!(
            last.args,
            tail.args()
                .into_iter()
                .map(String::into_bytes)
                .collect::<Vec<_>>(),
            "the last record is the last SET"
        );
        let record_len = (last.end - last.start) as u64;
        // Mostly a few bytes; sometimes deep into the record (down to its first byte).
        let cut = if rng.below(2) == 0 {
            rng.between(1, 8.min(record_len - 1))
        } else {
            rng.between(1, record_len - 1)
        };
        let new_len = data.len() as u64 - cut;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the log")
            .set_len(new_len)
            .expect("truncate");
        // Cycle 1: as if a rewrite had just listed its new, still empty incr file when the
        // machine crashed; the torn file is then the last non-empty one, not the last one.
        let mut empty_next = None;
        if cycle == 1 {
            let (_, seq) = manifest.incrs.last().expect("incr");
            let name = format!("appendonly.aof.{}.incr.aof", seq + 1);
            std::fs::write(h.dir().join(AOF_DIR).join(&name), b"").expect("empty incr");
            let manifest_path = h.dir().join(AOF_DIR).join(MANIFEST);
            let mut text = std::fs::read_to_string(&manifest_path).expect("manifest");
            text.push_str(&format!("file {name} seq {} type i\n", seq + 1));
            std::fs::write(&manifest_path, text).expect("manifest");
            empty_next = Some(name);
        }
        println!(
            "crash::torn cycle {cycle} (seed {round_seed}): {incr} cut by {cut} of the last \
             record's {record_len} bytes ({} -> {new_len}); empty incr listed after it: \
             {empty_next:?}",
            data.len()
        );

        let (mut server, mut conn) = h.start().await;
        let output = server.output_containing(&["torn record", &incr]).await;
        assert!(
            output.contains("torn record") && output.contains(&incr),
            "no warning naming {incr} about the torn tail:\n{output}"
        );
        h.verify(&mut conn, &server, &logs, Expect::AllButLastOf(0))
            .await;
        assert_eq!(
            std::fs::metadata(&path).expect("log").len(),
            last.start as u64,
            "the torn record was cut off the file"
        );
        // Writing continues after the cut (in the empty file, if one was listed) and survives
        // a further crash.
        logs = h.write_and_kill(&mut server, Action::Plain).await;
        expect = Expect::Durable;
        if let Some(name) = empty_next {
            let len = std::fs::metadata(h.dir().join(AOF_DIR).join(&name))
                .expect("incr")
                .len();
            assert!(len > 0, "new records went to {name}");
            assert_eq!(
                std::fs::metadata(&path).expect("log").len(),
                last.start as u64,
                "nothing more was appended to the truncated {incr}"
            );
        }
    }
    let (mut server, mut conn) = h.start().await;
    h.verify(&mut conn, &server, &logs, expect).await;
    server.kill();
    println!(
        "crash::torn: 3 torn tails, {} acknowledged ops checked; {:?}",
        h.acked_total,
        started.elapsed()
    );
}

/// Corruption that is not a torn tail stops start-up with an error naming the file and the
/// byte offset: a bad byte inside an early record of the log, and a damaged base. Repaired,
/// the same directory starts again with every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_inside_the_log_or_base_stops_start_up() {
    let mut h = Harness::new("corrupt", "always");
    let started = Instant::now();
    let (mut server, mut conn) = h.start().await;
    // Writes, a finished rewrite (so the base holds data), more writes; all stopped cleanly.
    let mut logs = Vec::new();
    for phase in 0..2 {
        h.round += 1;
        let round_seed = h.rng.next();
        let stop = Arc::new(AtomicBool::new(false));
        let writers = h.spawn_writers(server.port, round_seed, &stop);
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop.store(true, Ordering::SeqCst);
        logs = join_writers(writers).await;
        if phase == 0 {
            // Acknowledged while the server runs: the model moves on.
            for (w, log) in logs.iter().enumerate() {
                h.states[w] = replay(&h.states[w], &log.ops);
                h.history[w].extend(log.ops.iter().cloned());
            }
            assert_eq!(
                conn.must(&["BGREWRITEAOF"]).await,
                simple("Background append only file rewriting started")
            );
            poll_info(&mut conn, "aof_rewrite_in_progress", "0").await;
        }
    }
    server.kill();

    let manifest = read_manifest(h.dir());
    let aof_dir = h.dir().join(AOF_DIR);
    let (incr, _) = manifest.incrs.last().expect("incr").clone();
    let incr_path = aof_dir.join(&incr);
    let original = std::fs::read(&incr_path).expect("read log");
    let records = parse_records(&original);
    assert!(records.len() >= 10, "only {} records", records.len());
    // A bad byte in place of a `$` inside an early record (never the last one) with at
    // least two arguments, outside any transaction (whose bad records are reported at the
    // transaction's MULTI).
    let first = h.rng.between(1, 5) as usize;
    let mut in_unit = false;
    let outside_units: Vec<bool> = records
        .iter()
        .map(|record| {
            let is = |name: &[u8]| record.args.len() == 1 && record.args[0] == name;
            if is(b"MULTI") {
                in_unit = true;
            } else if is(b"EXEC") {
                in_unit = false;
                return false;
            }
            !in_unit
        })
        .collect();
    let victim = records[..records.len() - 1]
        .iter()
        .zip(&outside_units)
        .skip(first)
        .find(|(record, outside)| **outside && record.dollars.len() >= 2)
        .map(|(record, _)| record)
        .expect("a record with arguments outside a transaction");
    let at = victim.dollars[1];
    let mut corrupted = original.clone();
    corrupted[at] = b'#';
    std::fs::write(&incr_path, &corrupted).expect("write");
    let args = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
    ];
    let (status, output) = start_expecting_failure(&h.binary, h.dir(), &args);
    println!(
        "crash::corrupt: '#' at byte {at} of {incr} (record at {}): {status}; output:\n{output}",
        victim.start
    );
    assert!(!status.success(), "{status}");
    assert!(
        output.contains(&incr),
        "the error names the file:\n{output}"
    );
    assert!(
        output.contains(&format!("byte {}", victim.start)),
        "the error names the offset {} of the bad record:\n{output}",
        victim.start
    );
    assert_eq!(
        std::fs::read(&incr_path).expect("read log"),
        corrupted,
        "a failed start-up must not change the log"
    );
    std::fs::write(&incr_path, &original).expect("restore");

    // A damaged base: one byte in its middle flipped.
    let (base, _) = manifest.base.clone().expect("base");
    let base_path = aof_dir.join(&base);
    let base_original = std::fs::read(&base_path).expect("read base");
    let mut damaged = base_original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x5A;
    std::fs::write(&base_path, &damaged).expect("write");
    let (status, output) = start_expecting_failure(&h.binary, h.dir(), &args);
    println!("crash::corrupt: base {base} byte {middle} flipped: {status}; output:\n{output}");
    assert!(!status.success(), "{status}");
    assert!(
        output.contains(&base),
        "the error names the base file:\n{output}"
    );
    std::fs::write(&base_path, &base_original).expect("restore");

    // A torn record in an incr file that is not the last non-empty one: the files after it
    // depend on it, so this is corruption, not a torn tail.
    let (_, seq) = manifest.incrs.last().expect("incr");
    let next_name = format!("appendonly.aof.{}.incr.aof", seq + 1);
    let next_path = aof_dir.join(&next_name);
    std::fs::write(&next_path, encode(&["SELECT", "0"])).expect("next incr");
    let manifest_path = aof_dir.join(MANIFEST);
    let manifest_text = std::fs::read_to_string(&manifest_path).expect("manifest");
    std::fs::write(
        &manifest_path,
        format!("{manifest_text}file {next_name} seq {} type i\n", seq + 1),
    )
    .expect("manifest");
    let last = records.last().expect("records");
    // A torn EXEC tears its whole transaction: the bad record is its MULTI.
    let torn_start = if last.args == [b"EXEC".to_vec()] {
        records
            .iter()
            .rev()
            .find(|record| record.args == [b"MULTI".to_vec()])
            .expect("the MULTI of the last EXEC")
            .start
    } else {
        last.start
    };
    std::fs::write(&incr_path, &original[..original.len() - 3]).expect("torn");
    let (status, output) = start_expecting_failure(&h.binary, h.dir(), &args);
    println!("crash::corrupt: {incr} torn, {next_name} after it: {status}; output:\n{output}");
    assert!(!status.success(), "{status}");
    assert!(
        output.contains(&incr),
        "the error names the torn file:\n{output}"
    );
    assert!(
        output.contains(&format!("byte {torn_start}")),
        "the error names the offset {torn_start} of the torn record:\n{output}"
    );
    std::fs::write(&incr_path, &original).expect("restore");
    std::fs::write(&manifest_path, manifest_text).expect("restore manifest");
    std::fs::remove_file(&next_path).expect("remove");

    // Repaired: every acknowledged write is there.
    let (mut server, mut conn) = h.start().await;
    h.verify(&mut conn, &server, &logs, Expect::Durable).await;
    server.kill();
    println!("crash::corrupt: {:?}", started.elapsed());
}

/// `appendfsync everysec`: a SIGKILL may lose the last acknowledged writes (those not yet
/// handed to the OS), but what remains is, per writer, exactly a prefix of what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_everysec_keeps_a_prefix_of_every_writer() {
    let mut h = Harness::new("everysec", "everysec");
    let started = Instant::now();
    let mut logs = Vec::new();
    let mut lost = Vec::new();
    for _ in 0..4 {
        let (mut server, mut conn) = h.start().await;
        let before = h.lost_acked;
        h.verify(&mut conn, &server, &logs, Expect::Prefix).await;
        lost.push(h.lost_acked - before);
        logs = h.write_and_kill(&mut server, Action::Plain).await;
    }
    let (mut server, mut conn) = h.start().await;
    let before = h.lost_acked;
    h.verify(&mut conn, &server, &logs, Expect::Prefix).await;
    lost.push(h.lost_acked - before);
    server.kill();
    println!(
        "crash::everysec: {} rounds, {} acknowledged ops, lost per restart {:?}; {:?}",
        h.round,
        h.acked_total,
        &lost[1..],
        started.elapsed()
    );
}

/// The log turned on at run time (CONFIG SET appendonly yes) while writers run: once its
/// first base is written (`aof_rewrite_in_progress:0`), a SIGKILL loses nothing that was
/// acknowledged, before or after the switch; further crash rounds follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_config_set_appendonly_yes_loses_no_acknowledged_write() {
    let mut h = Harness::new("enable", "always");
    let started = Instant::now();
    let args = [
        "--appendonly",
        "no",
        "--appendfsync",
        "always",
        "--save",
        "",
    ];
    let (mut server, mut conn) = Server::start(&h.binary, h.dir(), &args).await;
    h.load_fillers(&mut conn, FILLERS).await;
    h.round += 1;
    let round_seed = h.rng.next();
    let mut rng = Rng(round_seed);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = h.spawn_writers(server.port, round_seed, &stop);
    tokio::time::sleep(Duration::from_millis(rng.between(20, 100))).await;
    assert_eq!(
        conn.must(&["CONFIG", "SET", "appendonly", "yes"]).await,
        ok()
    );
    poll_info(&mut conn, "aof_rewrite_in_progress", "0").await;
    let info = text_of(&conn.must(&["INFO", "persistence"]).await);
    assert_eq!(
        info_field(&info, "aof_enabled").as_deref(),
        Some("1"),
        "{info}"
    );
    tokio::time::sleep(Duration::from_millis(rng.between(0, 100))).await;
    server.kill();
    let mut logs = join_writers(writers).await;
    println!(
        "crash::enable (seed {round_seed}): killed after the log was on; acked {:?}",
        logs.iter().map(|l| l.acked).collect::<Vec<_>>()
    );
    for _ in 0..3 {
        let (mut server, mut conn) = h.start().await;
        h.verify(&mut conn, &server, &logs, Expect::Durable).await;
        logs = h.write_and_kill(&mut server, Action::Plain).await;
    }
    let (mut server, mut conn) = h.start().await;
    h.verify(&mut conn, &server, &logs, Expect::Durable).await;
    server.kill();
    println!(
        "crash::enable: {} acknowledged ops all kept; {:?}",
        h.acked_total,
        started.elapsed()
    );
}

/// A process killed while it writes a file atomically (the BGSAVE snapshot, a rewrite's base,
/// the manifest) leaves its `temp-<pid>-<name>` file behind; the next start-up removes it, so
/// crashes during snapshots do not pile up files as large as the data set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_files_of_a_killed_snapshot_are_removed_at_start_up() {
    let mut h = Harness::new("tempfiles", "always");
    let mut left = Vec::new();
    for _ in 0..5 {
        let (mut server, mut conn) = h.start().await;
        if h.fillers == 0 {
            h.load_fillers(&mut conn, 20_000).await;
        }
        assert_eq!(
            conn.must(&["BGSAVE"]).await,
            simple("Background saving started")
        );
        server.kill();
        left = temp_files(h.dir());
        if !left.is_empty() {
            break;
        }
    }
    if left.is_empty() {
        println!("SKIPPED: no kill landed inside a BGSAVE");
        return;
    }
    println!("left behind by the killed BGSAVE: {left:?}");
    let (mut server, _conn) = h.start().await;
    server.kill();
    assert_eq!(
        temp_files(h.dir()),
        Vec::<String>::new(),
        "temporary files of a killed process survive a restart"
    );
}
