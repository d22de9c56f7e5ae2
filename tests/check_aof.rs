//! `kvserver check-aof` as a separate process: exit codes, output and the `--fix`
//! truncation, on a temporary AOF directory with a torn last file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::*;

/// Longest one check may take.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

fn check_aof(binary: &Path, args: &[&Path]) -> (Option<i32>, String, String) {
    let mut command = Command::new(binary);
    command.arg("check-aof").args(args);
    let Output {
        status,
        stdout,
        stderr,
    } = run_with_input(&mut command, b"", CHILD_LIMIT);
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// An AOF directory: manifest, base, two incr files; the last one ends with a torn record.
/// Returns the last file's path and its length up to the last whole record.
fn torn_aof_dir(dir: &Path) -> (PathBuf, u64) {
    std::fs::write(
        dir.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.kvs seq 1 type b\n\
         file appendonly.aof.1.incr.aof seq 1 type i\n\
         file appendonly.aof.2.incr.aof seq 2 type i\n",
    )
    .unwrap();
    let base = kvserver::persist::snapshot_format::SnapshotWriter::new(Vec::new(), 0)
        .and_then(|mut writer| {
            writer.select_db(0)?;
            writer.write_entry(
                b"from-base",
                &kvserver::store::Value::Str(b"1".to_vec()),
                None,
            )?;
            writer.finish()
        })
        .unwrap();
    std::fs::write(dir.join("appendonly.aof.1.base.kvs"), base).unwrap();
    let mut first = encode(&["SELECT", "0"]);
    first.extend(encode(&["SET", "a", "1"]));
    std::fs::write(dir.join("appendonly.aof.1.incr.aof"), &first).unwrap();
    let mut last = encode(&["SET", "b", "2"]);
    last.extend(encode(&["INCR", "counter"]));
    let valid = last.len() as u64;
    let torn = encode(&["SET", "c", "a value cut short"]);
    last.extend_from_slice(&torn[..torn.len() - 7]);
    let path = dir.join("appendonly.aof.2.incr.aof");
    std::fs::write(&path, &last).unwrap();
    (path, valid)
}

#[test]
fn check_aof_reports_and_fixes_a_torn_tail() {
    let binary = kvserver_binary();
    let dir = tempfile::tempdir().unwrap();
    let (last, valid) = torn_aof_dir(dir.path());
    let torn_len = std::fs::metadata(&last).unwrap().len();

    let (code, out, err) = check_aof(&binary, &[dir.path()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains(&format!("ok_up_to={valid}")), "{out}");
    assert!(out.contains(&format!("diff={}", torn_len - valid)), "{out}");
    assert!(out.contains(&format!("at byte {valid}")), "{out}");
    assert!(out.contains("Use the --fix option"), "{out}");
    assert_eq!(
        std::fs::metadata(&last).unwrap().len(),
        torn_len,
        "untouched"
    );

    let fix = Path::new("--fix");
    let (code, out, err) = check_aof(&binary, &[fix, dir.path()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Successfully truncated AOF"), "{out}");
    assert!(out.ends_with("AOF is valid\n"), "{out}");
    assert_eq!(std::fs::metadata(&last).unwrap().len(), valid);

    // Now valid as a whole, via the manifest, and as a single file.
    let (code, out, _) = check_aof(&binary, &[&dir.path().join("appendonly.aof.manifest")]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = check_aof(&binary, &[&last]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn check_aof_single_file_and_errors() {
    let binary = kvserver_binary();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("appendonly.aof");
    let mut bytes = encode(&["SET", "k", "v"]);
    let valid = bytes.len();
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$X\r\nk\r\n");
    std::fs::write(&path, &bytes).unwrap();
    let (code, out, err) = check_aof(&binary, &[&path]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!("bad record at byte {valid}: invalid bulk length")),
        "{out}"
    );
    // Corruption in the only (so last) file is fixed by truncation, as redis-check-aof does.
    let (code, out, err) = check_aof(&binary, &[Path::new("--fix"), &path]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(std::fs::read(&path).unwrap(), &bytes[..valid]);

    // A directory without a manifest, and a missing argument.
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = check_aof(&binary, &[empty.path()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("no *.manifest file"), "{err}");
    let (code, _, err) = check_aof(&binary, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("Usage: kvserver check-aof"), "{err}");
}
