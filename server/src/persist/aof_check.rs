//! `kvserver check-aof [--fix]`, the counterpart of `redis-check-aof`: an offline check of
//! the append-only file's files (through the manifest, or one file alone), using the same
//! record scan as [`super::aof_replay`].
//!
//! It reports, for every file, its size and how far it is valid. `--fix` truncates the
//! last incr file to its last valid record (a torn tail or corruption, as
//! `redis-check-aof --fix` does: what follows the bad record is lost). Damage anywhere
//! else cannot be fixed by truncation and is only reported.
// Reads files that may be corrupt or hostile: no unwrap, expect, panic or unchecked indexing
// outside tests (the fuzz targets in fuzz/ check it).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::aof_error::AofError;
use super::aof_manifest::{read_manifest, FileKind, BASE_SUFFIX, MANIFEST_SUFFIX};
use super::aof_replay::{log_limits, scan_log, truncate_file, ScanEnd};

/// What is wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Listed in the manifest but absent.
    Missing,
    /// The base failed verification; the verifier's message.
    BadBase(String),
    /// The last record is cut short by the end of the file.
    TornTail,
    /// The record starting at `offset` is malformed.
    Corrupt {
        /// Where the bad record starts (equal to `ok_up_to`).
        offset: u64,
        /// What is wrong with it.
        message: String,
    },
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The file.
    pub path: PathBuf,
    /// Base or incr.
    pub kind: FileKind,
    /// Its size in bytes when checked (before any truncation).
    pub size: u64,
    /// Bytes of valid records from the start (the whole file if valid).
    pub ok_up_to: u64,
    /// 1-based protocol line at which the first invalid record starts (counting the `*N`
    /// line and two lines per argument, as redis-check-aof does).
    pub ok_up_to_line: u64,
    /// Commands in a log file, entries in a base.
    pub records: u64,
    /// What is wrong, if anything.
    pub problem: Option<Problem>,
    /// Whether truncation to `ok_up_to` repairs it: only for the last incr file.
    pub fixable: bool,
    /// Whether it was truncated to `ok_up_to` (with `fix`).
    pub truncated: bool,
}

/// The result of [`check_aof`]: one verdict per file, printable like redis-check-aof's
/// output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The manifest the files came from, if one was checked.
    pub manifest: Option<PathBuf>,
    /// History files listed in the manifest (not checked: they are not loaded).
    pub history_files: usize,
    /// The files checked, in load order.
    pub files: Vec<FileCheck>,
    /// Whether `fix` was requested.
    pub fix_requested: bool,
}

impl CheckReport {
    /// Whether everything can be loaded now: no problems, or only ones fixed by truncation.
    pub fn is_valid(&self) -> bool {
        self.files
            .iter()
            .all(|f| f.problem.is_none() || f.truncated)
    }

    /// Whether some problem cannot be repaired by truncation.
    fn has_unfixable(&self) -> bool {
        self.files.iter().any(|f| f.problem.is_some() && !f.fixable)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(manifest) = &self.manifest {
            let logs = self
                .files
                .iter()
                .filter(|c| c.kind == FileKind::Incr)
                .count();
            let bases = self.files.len() - logs;
            writeln!(
                f,
                "Checking multi-part AOF: manifest={}, {bases} base, {logs} incr, {} history \
                 (not checked)",
                manifest.display(),
                self.history_files
            )?;
        }
        for check in &self.files {
            let name = check.path.display();
            match (check.kind, &check.problem) {
                (_, Some(Problem::Missing)) => {
                    writeln!(f, "AOF {name} is listed in the manifest but does not exist")?;
                    continue;
                }
                (FileKind::Base, Some(Problem::BadBase(message))) => {
                    writeln!(
                        f,
                        "Base {name} (size={}) is not valid: {message}",
                        check.size
                    )?;
                    continue;
                }
                (FileKind::Base, _) => {
                    writeln!(
                        f,
                        "Base {name} is valid: size={}, entries={}",
                        check.size, check.records
                    )?;
                    continue;
                }
                _ => {}
            }
            writeln!(
                f,
                "AOF analyzed: filename={name}, size={}, ok_up_to={}, ok_up_to_line={}, diff={}",
                check.size,
                check.ok_up_to,
                check.ok_up_to_line,
                check.size - check.ok_up_to
            )?;
            match &check.problem {
                None => writeln!(f, "AOF {name} is valid ({} commands)", check.records)?,
                Some(Problem::TornTail) => writeln!(
                    f,
                    "AOF {name}: the last record, at byte {}, is cut short by the end of the \
                     file",
                    check.ok_up_to
                )?,
                Some(Problem::Corrupt { offset, message }) => {
                    writeln!(f, "AOF {name}: bad record at byte {offset}: {message}")?;
                }
                Some(Problem::Missing | Problem::BadBase(_)) => {}
            }
            if check.truncated {
                writeln!(
                    f,
                    "Successfully truncated AOF {name} from {} to {} bytes",
                    check.size, check.ok_up_to
                )?;
            } else if check.problem.is_some() && !check.fixable {
                writeln!(
                    f,
                    "AOF {name} cannot be fixed by truncation: it is not the last incr file, \
                     and the files after it depend on it"
                )?;
            }
        }
        if self.is_valid() {
            writeln!(f, "AOF is valid")
        } else if self.has_unfixable() {
            if self.fix_requested {
                writeln!(
                    f,
                    "AOF is not valid and cannot be fixed by truncation; nothing was changed."
                )
            } else {
                writeln!(f, "AOF is not valid and cannot be fixed by truncation.")
            }
        } else {
            writeln!(
                f,
                "AOF is not valid. Use the --fix option to try fixing it."
            )
        }
    }
}

/// Checks AOF files, like `redis-check-aof`. `path` is a manifest (every base and incr
/// file it lists is checked, in load order), a directory holding exactly one manifest, a
/// single incr log file, or a single base file (`*.base.kvs`). Bases are checked with
/// `verify_base` (entry count, or what is wrong); log files record by record.
///
/// With `fix`, the last incr file (or the single log file) is truncated to its last valid
/// record if that is its only problem, whether a torn tail or corruption (what follows the
/// bad record is then lost). Problems elsewhere cannot be fixed by truncation; when there
/// is one, nothing is changed.
///
/// # Errors
///
/// An I/O error, an unreadable manifest, or a directory without exactly one manifest.
/// Problems found in the files are not errors: they are in the report.
pub fn check_aof(
    path: &Path,
    fix: bool,
    verify_base: &dyn Fn(&Path) -> Result<u64, String>,
) -> Result<CheckReport, AofError> {
    let meta = fs::metadata(path).map_err(|err| AofError::io(path, &err))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut report = CheckReport {
        manifest: None,
        history_files: 0,
        files: Vec::new(),
        fix_requested: fix,
    };
    let manifest_path = if meta.is_dir() {
        Some(find_manifest(path)?)
    } else if name.ends_with(MANIFEST_SUFFIX) {
        Some(path.to_path_buf())
    } else {
        None
    };
    if let Some(manifest_path) = manifest_path {
        let manifest = read_manifest(&manifest_path).map_err(|err| {
            err.unwrap_or_else(|| AofError::new(&manifest_path, None, "no such file"))
        })?;
        let dir = match manifest_path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Some(base) = &manifest.base {
            report
                .files
                .push(check_base(&dir.join(&base.name), verify_base));
        }
        for (i, incr) in manifest.incrs.iter().enumerate() {
            let last = i + 1 == manifest.incrs.len();
            report.files.push(check_log(&dir.join(&incr.name), last)?);
        }
        report.manifest = Some(manifest_path);
        report.history_files = manifest.history.len();
    } else if name.ends_with(BASE_SUFFIX) {
        report.files.push(check_base(path, verify_base));
    } else {
        report.files.push(check_log(path, true)?);
    }
    if fix && !report.has_unfixable() {
        for check in &mut report.files {
            if check.problem.is_some() && check.fixable {
                truncate_file(&check.path, check.ok_up_to)?;
                check.truncated = true;
            }
        }
    }
    Ok(report)
}

/// The one manifest in `dir` (temporary files of an interrupted write are ignored).
fn find_manifest(dir: &Path) -> Result<PathBuf, AofError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|err| AofError::io(dir, &err))? {
        let entry = entry.map_err(|err| AofError::io(dir, &err))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(MANIFEST_SUFFIX) && !name.starts_with("temp-") {
            found.push(entry.path());
        }
    }
    found.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(AofError::new(
            dir,
            None,
            format!("no *{MANIFEST_SUFFIX} file in this directory"),
        )),
        several => Err(AofError::new(
            dir,
            None,
            format!(
                "{} manifests in this directory; name the one to check: {}",
                several.len(),
                several
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn check_base(path: &Path, verify_base: &dyn Fn(&Path) -> Result<u64, String>) -> FileCheck {
    let mut check = FileCheck {
        path: path.to_path_buf(),
        kind: FileKind::Base,
        size: 0,
        ok_up_to: 0,
        ok_up_to_line: 0,
        records: 0,
        problem: None,
        fixable: false,
        truncated: false,
    };
    match fs::metadata(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            check.problem = Some(Problem::Missing);
            return check;
        }
        Err(err) => {
            check.problem = Some(Problem::BadBase(err.to_string()));
            return check;
        }
        Ok(meta) => check.size = meta.len(),
    }
    match verify_base(path) {
        Ok(entries) => {
            check.records = entries;
            check.ok_up_to = check.size;
        }
        Err(message) => check.problem = Some(Problem::BadBase(message)),
    }
    check
}

fn check_log(path: &Path, last: bool) -> Result<FileCheck, AofError> {
    let mut check = FileCheck {
        path: path.to_path_buf(),
        kind: FileKind::Incr,
        size: 0,
        ok_up_to: 0,
        ok_up_to_line: 1,
        records: 0,
        problem: None,
        fixable: false,
        truncated: false,
    };
    if let Err(err) = fs::metadata(path) {
        if err.kind() == io::ErrorKind::NotFound {
            check.problem = Some(Problem::Missing);
            return Ok(check);
        }
        return Err(AofError::io(path, &err));
    }
    let scan = scan_log(path, log_limits(), &mut |_| Ok(()))?;
    check.ok_up_to = scan.valid_len;
    check.ok_up_to_line = scan.lines + 1;
    check.records = scan.commands;
    (check.size, check.problem) = match scan.end {
        ScanEnd::Clean => (scan.valid_len, None),
        ScanEnd::TornTail { file_len } => (file_len, Some(Problem::TornTail)),
        ScanEnd::Corrupt { message, file_len } => (
            file_len,
            Some(Problem::Corrupt {
                offset: scan.valid_len,
                message,
            }),
        ),
    };
    check.fixable = last && check.problem.is_some();
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::aof_manifest::tests::entry;
    use crate::persist::aof_manifest::{base_name, incr_name, Manifest, DEFAULT_PREFIX};
    use crate::persist::aof_replay::tests::records;

    fn no_base(_: &Path) -> Result<u64, String> {
        Err("no base expected".into())
    }

    /// An AOF directory: base + three incrs; returns the incr paths and their contents.
    fn aof_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let manifest = Manifest {
            base: Some(entry(&base_name(DEFAULT_PREFIX, 1), 1, FileKind::Base)),
            incrs: (1..=3)
                .map(|seq| entry(&incr_name(DEFAULT_PREFIX, seq), seq, FileKind::Incr))
                .collect(),
            history: vec![entry("appendonly.aof.0.incr.aof", 9, FileKind::History)],
        };
        manifest
            .store(&crate::persist::disk::OsDisk, dir, DEFAULT_PREFIX)
            .unwrap();
        fs::write(dir.join(base_name(DEFAULT_PREFIX, 1)), b"snapshot").unwrap();
        (1..=3)
            .map(|seq| {
                let path = dir.join(incr_name(DEFAULT_PREFIX, seq));
                let (bytes, _) = records(seq as usize + 2);
                fs::write(&path, &bytes).unwrap();
                (path, bytes)
            })
            .collect()
    }

    fn base_ok(path: &Path) -> Result<u64, String> {
        assert!(path.ends_with("appendonly.aof.1.base.kvs"));
        Ok(42)
    }

    #[test]
    fn check_a_valid_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let incrs = aof_dir(dir.path());
        let manifest_path = dir.path().join("appendonly.aof.manifest");
        for target in [dir.path(), manifest_path.as_path()] {
            let report = check_aof(target, false, &base_ok).unwrap();
            assert!(report.is_valid());
            assert_eq!(report.manifest.as_deref(), Some(manifest_path.as_path()));
            assert_eq!(report.history_files, 1);
            assert_eq!(report.files.len(), 4);
            assert_eq!(report.files[0].kind, FileKind::Base);
            assert_eq!(report.files[0].records, 42);
            for (check, (path, bytes)) in report.files[1..].iter().zip(&incrs) {
                assert_eq!(&check.path, path);
                assert_eq!(check.size, bytes.len() as u64);
                assert_eq!(check.ok_up_to, bytes.len() as u64);
                assert_eq!(check.problem, None);
            }
            // 3 records: SELECT (5 lines) and two SETs (7 lines each), then line 20.
            assert_eq!(report.files[1].ok_up_to_line, 20);
            let text = report.to_string();
            assert!(text.ends_with("AOF is valid\n"), "{text}");
            assert!(text.contains(&format!(
                "AOF analyzed: filename={}, size={}, ok_up_to={}, ok_up_to_line=20, diff=0",
                incrs[0].0.display(),
                incrs[0].1.len(),
                incrs[0].1.len()
            )));
        }
    }

    #[test]
    fn check_and_fix_a_torn_last_file() {
        let dir = tempfile::tempdir().unwrap();
        let incrs = aof_dir(dir.path());
        let (last, good) = &incrs[2];
        let mut torn = good.clone();
        torn.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk");
        fs::write(last, &torn).unwrap();

        let report = check_aof(dir.path(), false, &base_ok).unwrap();
        assert!(!report.is_valid());
        let check = &report.files[3];
        assert_eq!(check.problem, Some(Problem::TornTail));
        assert_eq!(
            (check.size, check.ok_up_to),
            (torn.len() as u64, good.len() as u64)
        );
        assert!(check.fixable && !check.truncated);
        let text = report.to_string();
        assert!(
            text.contains(&format!("diff={}", torn.len() - good.len())),
            "{text}"
        );
        assert!(text.ends_with("AOF is not valid. Use the --fix option to try fixing it.\n"));
        assert_eq!(fs::read(last).unwrap(), torn);

        let report = check_aof(dir.path(), true, &base_ok).unwrap();
        assert!(report.is_valid());
        assert!(report.files[3].truncated);
        let text = report.to_string();
        assert!(text.contains("Successfully truncated AOF"), "{text}");
        assert!(text.ends_with("AOF is valid\n"), "{text}");
        assert_eq!(&fs::read(last).unwrap(), good);
        assert!(check_aof(dir.path(), false, &base_ok).unwrap().is_valid());
    }

    #[test]
    fn corruption_in_the_last_file_is_fixed_by_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let incrs = aof_dir(dir.path());
        let (last, good) = &incrs[2];
        let mut bad = good.clone();
        bad.extend_from_slice(b"*1\r\n$1\r\nxy\r\n");
        bad.extend_from_slice(&records(2).0);
        fs::write(last, &bad).unwrap();
        let report = check_aof(dir.path(), true, &base_ok).unwrap();
        assert!(report.is_valid());
        assert_eq!(
            report.files[3].problem,
            Some(Problem::Corrupt {
                offset: good.len() as u64,
                message: "expected CRLF after bulk payload".into()
            })
        );
        assert_eq!(&fs::read(last).unwrap(), good);
    }

    #[test]
    fn damage_before_the_last_file_cannot_be_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let incrs = aof_dir(dir.path());
        let (middle, good) = &incrs[1];
        let mut torn = good.clone();
        torn.extend_from_slice(b"*2\r\n$3\r\nGE");
        fs::write(middle, &torn).unwrap();
        // The last file is torn too: fixable alone, but not worth touching.
        let (last, last_good) = &incrs[2];
        let mut last_torn = last_good.clone();
        last_torn.push(b'*');
        fs::write(last, &last_torn).unwrap();
        for fix in [false, true] {
            let report = check_aof(dir.path(), fix, &base_ok).unwrap();
            assert!(!report.is_valid());
            assert_eq!(report.files[2].problem, Some(Problem::TornTail));
            assert!(!report.files[2].fixable);
            assert!(report.files[3].fixable);
            assert!(!report.files[3].truncated);
            let text = report.to_string();
            assert!(
                text.contains("cannot be fixed by truncation: it is not the last"),
                "{text}"
            );
            assert!(
                text.contains("AOF is not valid and cannot be fixed"),
                "{text}"
            );
            assert_eq!(fs::read(middle).unwrap(), torn);
            assert_eq!(fs::read(last).unwrap(), last_torn);
        }
    }

    #[test]
    fn missing_files_and_bad_bases_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let incrs = aof_dir(dir.path());
        fs::remove_file(&incrs[0].0).unwrap();
        let report = check_aof(dir.path(), true, &|_| Err("bad checksum".into())).unwrap();
        assert!(!report.is_valid());
        assert_eq!(
            report.files[0].problem,
            Some(Problem::BadBase("bad checksum".into()))
        );
        assert_eq!(report.files[1].problem, Some(Problem::Missing));
        let text = report.to_string();
        assert!(text.contains("is not valid: bad checksum"), "{text}");
        assert!(text.contains("does not exist"), "{text}");

        fs::remove_file(dir.path().join(base_name(DEFAULT_PREFIX, 1))).unwrap();
        let report = check_aof(dir.path(), false, &no_base).unwrap();
        assert_eq!(report.files[0].problem, Some(Problem::Missing));
    }

    #[test]
    fn check_a_single_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof");
        let (good, _) = records(3);
        fs::write(&path, &good).unwrap();
        let report = check_aof(&path, false, &no_base).unwrap();
        assert!(report.is_valid());
        assert_eq!(report.manifest, None);
        assert_eq!(report.files[0].records, 3);
        assert!(report.to_string().ends_with("AOF is valid\n"));

        let mut torn = good.clone();
        torn.extend_from_slice(b"*1\r\n");
        fs::write(&path, &torn).unwrap();
        let report = check_aof(&path, false, &no_base).unwrap();
        assert!(!report.is_valid());
        assert!(report.files[0].fixable);
        let report = check_aof(&path, true, &no_base).unwrap();
        assert!(report.is_valid());
        assert_eq!(fs::read(&path).unwrap(), good);
    }

    #[test]
    fn check_a_single_base_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(base_name(DEFAULT_PREFIX, 1));
        fs::write(&path, b"snapshot").unwrap();
        let report = check_aof(&path, false, &base_ok).unwrap();
        assert!(report.is_valid());
        assert_eq!(report.files[0].kind, FileKind::Base);
        assert_eq!(report.files[0].size, 8);
    }

    #[test]
    fn check_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_aof(dir.path(), false, &no_base).unwrap_err();
        assert!(err.to_string().contains("no *.manifest file"), "{err}");
        fs::write(dir.path().join("a.manifest"), "file x seq 1 type i\n").unwrap();
        fs::write(dir.path().join("b.manifest"), "file x seq 1 type i\n").unwrap();
        let err = check_aof(dir.path(), false, &no_base).unwrap_err();
        assert!(err.to_string().contains("2 manifests"), "{err}");
        fs::write(dir.path().join("b.manifest"), "file x seq 1 type q\n").unwrap();
        let err = check_aof(&dir.path().join("b.manifest"), false, &no_base).unwrap_err();
        assert!(err.to_string().contains("unknown file type"), "{err}");
        let err = check_aof(&dir.path().join("none"), false, &no_base).unwrap_err();
        assert_eq!(err.offset, None);
    }
}
