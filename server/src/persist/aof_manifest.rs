//! The multi-part append-only file's directory (as in Redis 7): file names, and the
//! manifest that says which files make up the data set. Reading the logs back is
//! [`super::aof_replay`]; checking them offline is [`super::aof_check`].
//!
//! # Layout
//!
//! Everything lives in one directory, `<dir>/<appenddirname>` (default `appendonlydir`).
//! File names start with the `appendfilename` prefix (default `appendonly.aof`):
//!
//! - `<prefix>.<seq>.base.kvs`: the base, a snapshot (written by a rewrite) that replay
//!   starts from. At most one is live.
//! - `<prefix>.<seq>.incr.aof`: incremental logs, replayed in manifest order on top of the
//!   base. Each holds commands exactly as a client sends them: RESP arrays of bulk strings
//!   (`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n`), `SELECT` included. Nothing else is valid
//!   in a log: no inline commands, no empty or null arrays, no other RESP types.
//! - `<prefix>.manifest`: which files make up the data set, one line per file, in Redis 7
//!   syntax: `file <name> seq <n> type <b|i|h>` (`b` base, `i` incr, `h` history: files of
//!   a finished rewrite that are no longer needed and are to be deleted). Keys may come in
//!   any order, unknown keys are ignored, lines starting with `#` are comments, names
//!   needing it are double-quoted as `sdssplitargs` reads them. File names are plain names
//!   in the same directory (no `/`, no `..`), at most one base, and incr seqs increase down
//!   the file. The manifest is only ever replaced atomically (temp file, fsync, rename,
//!   directory fsync), so it is never torn: it is the commit point of a rewrite.
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

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use protocol::inline::split_args;

use super::aof_error::AofError;
use super::disk::Disk;
use super::fsutil::write_atomically;

/// Default file name prefix (Redis's `appendfilename`).
pub const DEFAULT_PREFIX: &str = "appendonly.aof";

/// Default directory holding the AOF files (Redis's `appenddirname`).
pub const DEFAULT_DIR_NAME: &str = "appendonlydir";

/// Suffix of base files: `<prefix>.<seq>.base.kvs` (snapshot format).
pub const BASE_SUFFIX: &str = ".base.kvs";

/// Suffix of incremental log files: `<prefix>.<seq>.incr.aof`.
pub const INCR_SUFFIX: &str = ".incr.aof";

/// Suffix of the manifest: `<prefix>.manifest`.
pub const MANIFEST_SUFFIX: &str = ".manifest";

/// Largest manifest accepted: far more than any real one, small enough to read whole.
const MAX_MANIFEST_LEN: u64 = 16 << 20;

/// Name of the base file with sequence number `seq`.
pub fn base_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}{BASE_SUFFIX}")
}

/// Name of the incremental log file with sequence number `seq`.
pub fn incr_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}{INCR_SUFFIX}")
}

/// Name of the manifest for `prefix`.
pub fn manifest_name(prefix: &str) -> String {
    format!("{prefix}{MANIFEST_SUFFIX}")
}

/// The role of a file listed in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The snapshot replay starts from (`type b`).
    Base,
    /// An incremental log replayed on top of the base (`type i`).
    Incr,
    /// Left over from a finished rewrite, to be deleted (`type h`).
    History,
}

impl FileKind {
    /// The manifest's one-letter code.
    pub fn code(self) -> char {
        match self {
            Self::Base => 'b',
            Self::Incr => 'i',
            Self::History => 'h',
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        match code {
            "b" => Some(Self::Base),
            "i" => Some(Self::Incr),
            "h" => Some(Self::History),
            _ => None,
        }
    }
}

/// One line of the manifest: a file in the AOF directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// File name, relative to the AOF directory.
    pub name: String,
    /// Sequence number (`seq`), at least 1.
    pub seq: u64,
    /// Role of the file.
    pub kind: FileKind,
}

/// The parsed manifest: which files make up the data set, in replay order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base snapshot, if there is one.
    pub base: Option<ManifestEntry>,
    /// Incremental logs, in replay order (strictly increasing seq).
    pub incrs: Vec<ManifestEntry>,
    /// Files of earlier generations, no longer part of the data set, to be deleted.
    pub history: Vec<ManifestEntry>,
}

impl Manifest {
    /// Parses manifest text, as strictly as Redis's `aofLoadManifestFromFile` and a little
    /// more (duplicate keys or file names, non-UTF-8 names and seq 0 are rejected too).
    ///
    /// # Errors
    ///
    /// An [`AofError`] with an empty path naming the line: an empty manifest, a blank or
    /// malformed line, a missing `file`/`seq`/`type`, an unknown type, two bases, a name
    /// that is a path (`/`, `..`) or listed twice, incr seqs that do not increase.
    pub fn parse(text: &str) -> Result<Manifest, AofError> {
        let fail = |line: usize, message: String| {
            AofError::new(
                Path::new(""),
                None,
                format!("manifest line {line}: {message}"),
            )
        };
        if text.is_empty() {
            return Err(AofError::new(Path::new(""), None, "empty manifest"));
        }
        let mut manifest = Manifest::default();
        let mut names = std::collections::HashSet::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim_matches([' ', '\t', '\r', '\n']);
            if line.is_empty() {
                return Err(fail(line_no, "blank line".into()));
            }
            let entry = parse_line(line).map_err(|message| fail(line_no, message))?;
            if !names.insert(entry.name.clone()) {
                return Err(fail(line_no, format!("{:?} is listed twice", entry.name)));
            }
            match entry.kind {
                FileKind::Base if manifest.base.is_some() => {
                    return Err(fail(line_no, "a second base file".into()));
                }
                FileKind::Base => manifest.base = Some(entry),
                FileKind::Incr => {
                    if let Some(last) = manifest.incrs.last() {
                        if entry.seq <= last.seq {
                            return Err(fail(
                                line_no,
                                format!(
                                    "incr seq {} does not follow seq {} (seqs must increase)",
                                    entry.seq, last.seq
                                ),
                            ));
                        }
                    }
                    manifest.incrs.push(entry);
                }
                FileKind::History => manifest.history.push(entry),
            }
        }
        Ok(manifest)
    }

    /// The manifest as text, in the order Redis writes it: base, history, incrs.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let entries = self.base.iter().chain(&self.history).chain(&self.incrs);
        for entry in entries {
            text.push_str("file ");
            text.push_str(&quote_name(&entry.name));
            text.push_str(&format!(" seq {} type {}\n", entry.seq, entry.kind.code()));
        }
        text
    }

    /// Reads `<dir>/<prefix>.manifest`. `Ok(None)` if it does not exist (no AOF yet).
    ///
    /// # Errors
    ///
    /// An I/O error, a manifest over 16 MiB or not UTF-8, or a [`parse`](Self::parse)
    /// error, with the manifest's path.
    pub fn load(dir: &Path, prefix: &str) -> Result<Option<Manifest>, AofError> {
        let path = dir.join(manifest_name(prefix));
        match read_manifest(&path) {
            Ok(manifest) => Ok(Some(manifest)),
            Err(None) => Ok(None),
            Err(Some(err)) => Err(err),
        }
    }

    /// Atomically replaces `<dir>/<prefix>.manifest` with this manifest: a crash leaves
    /// either the old manifest or this one, which makes this the commit point of a rewrite.
    ///
    /// # Errors
    ///
    /// An I/O error (the old manifest is then untouched).
    pub fn store(&self, disk: &dyn Disk, dir: &Path, prefix: &str) -> Result<(), AofError> {
        let name = manifest_name(prefix);
        let text = self.to_text();
        write_atomically(disk, dir, &name, |w| w.write_all(text.as_bytes()))
            .map(|_| ())
            .map_err(|err| AofError::io(&dir.join(&name), &err))
    }

    /// Seq for the next base file: above the live base and any base still listed in
    /// history, so a new file never takes the name of one that is pending deletion.
    pub fn next_base_seq(&self) -> u64 {
        self.next_seq(self.base.iter(), BASE_SUFFIX)
    }

    /// Seq for the next incr file: above every incr, live or in history (same reason).
    pub fn next_incr_seq(&self) -> u64 {
        self.next_seq(self.incrs.iter(), INCR_SUFFIX)
    }

    /// One above the highest seq of `live` files and of history files named `*suffix`.
    fn next_seq<'a>(&'a self, live: impl Iterator<Item = &'a ManifestEntry>, suffix: &str) -> u64 {
        let history = self.history.iter().filter(|e| e.name.ends_with(suffix));
        live.chain(history).map(|e| e.seq).max().unwrap_or(0) + 1
    }
}

/// Reads and parses the manifest at `path`; `Err(None)` if it does not exist.
pub(super) fn read_manifest(path: &Path) -> Result<Manifest, Option<AofError>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(None),
        Err(err) => return Err(Some(AofError::io(path, &err))),
    };
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| Some(AofError::io(path, &err)))?;
    if bytes.len() as u64 > MAX_MANIFEST_LEN {
        return Err(Some(AofError::new(
            path,
            None,
            format!("manifest larger than {MAX_MANIFEST_LEN} bytes"),
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Some(AofError::new(path, None, "manifest is not UTF-8")))?;
    Manifest::parse(&text).map_err(|mut err| {
        err.path = path.to_path_buf();
        Some(err)
    })
}

/// Parses one non-comment, non-blank manifest line.
fn parse_line(line: &str) -> Result<ManifestEntry, String> {
    let args = split_args(line.as_bytes()).map_err(|err| err.to_string())?;
    // As Redis: at least the three pairs, and whole pairs only.
    if args.len() < 6 || args.len() % 2 != 0 {
        return Err("expected `file <name> seq <n> type <b|i|h>`".into());
    }
    let (mut name, mut seq, mut kind) = (None, None, None);
    for pair in args.chunks_exact(2) {
        let [key, value] = pair else {
            continue;
        };
        let value =
            std::str::from_utf8(value).map_err(|_| format!("value {value:?} is not UTF-8"))?;
        let key = String::from_utf8_lossy(key).to_ascii_lowercase();
        let slot_taken = match key.as_str() {
            "file" => name.replace(value.to_string()).is_some(),
            "seq" => {
                let n = value
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("bad seq {value:?}"))?;
                seq.replace(n).is_some()
            }
            "type" => {
                let k = FileKind::from_code(value)
                    .ok_or_else(|| format!("unknown file type {value:?}"))?;
                kind.replace(k).is_some()
            }
            // Unknown keys are ignored, as Redis does, for forward compatibility.
            _ => false,
        };
        if slot_taken {
            return Err(format!("key {key:?} given twice"));
        }
    }
    let name = name.ok_or("missing `file`")?;
    let seq = seq.ok_or("missing `seq`")?;
    let kind = kind.ok_or("missing `type`")?;
    if name.is_empty() || name.contains('/') || name.contains("..") || name.contains('\0') {
        return Err(format!(
            "file name {name:?} must be a plain name in the AOF directory"
        ));
    }
    Ok(ManifestEntry { name, seq, kind })
}

/// A file name as a manifest token: bare if `sdssplitargs` reads it back unchanged, else
/// double-quoted with escapes (as Redis's `sdscatrepr`).
fn quote_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'));
    if plain {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for b in name.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b' ' => out.push(' '),
            b if b.is_ascii_graphic() => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::fs;

    /// A manifest line for `name`.
    pub(in crate::persist) fn entry(name: &str, seq: u64, kind: FileKind) -> ManifestEntry {
        ManifestEntry {
            name: name.into(),
            seq,
            kind,
        }
    }

    #[test]
    fn manifest_round_trip() {
        let manifest = Manifest {
            base: Some(entry("appendonly.aof.3.base.kvs", 3, FileKind::Base)),
            incrs: vec![
                entry("appendonly.aof.7.incr.aof", 7, FileKind::Incr),
                entry("appendonly.aof.8.incr.aof", 8, FileKind::Incr),
            ],
            history: vec![
                entry("appendonly.aof.2.base.kvs", 2, FileKind::History),
                entry("appendonly.aof.6.incr.aof", 6, FileKind::History),
            ],
        };
        let text = manifest.to_text();
        assert_eq!(
            text,
            "file appendonly.aof.3.base.kvs seq 3 type b\n\
             file appendonly.aof.2.base.kvs seq 2 type h\n\
             file appendonly.aof.6.incr.aof seq 6 type h\n\
             file appendonly.aof.7.incr.aof seq 7 type i\n\
             file appendonly.aof.8.incr.aof seq 8 type i\n"
        );
        assert_eq!(Manifest::parse(&text).unwrap(), manifest);
        assert_eq!(manifest.next_base_seq(), 4);
        assert_eq!(manifest.next_incr_seq(), 9);
        assert_eq!(Manifest::default().next_base_seq(), 1);
        assert_eq!(Manifest::default().next_incr_seq(), 1);
    }

    #[test]
    fn next_seqs_skip_names_pending_deletion() {
        let manifest = Manifest {
            base: None,
            incrs: vec![],
            history: vec![
                entry(&base_name("a", 5), 5, FileKind::History),
                entry(&incr_name("a", 9), 9, FileKind::History),
            ],
        };
        assert_eq!(manifest.next_base_seq(), 6);
        assert_eq!(manifest.next_incr_seq(), 10);
    }

    #[test]
    fn manifest_names_needing_quotes_round_trip() {
        let manifest = Manifest {
            base: None,
            incrs: vec![entry("my aof \"x\"\\.1.incr.aof", 1, FileKind::Incr)],
            history: vec![entry("tab\there é", 2, FileKind::History)],
        };
        assert_eq!(Manifest::parse(&manifest.to_text()).unwrap(), manifest);
    }

    #[test]
    fn manifest_syntax_is_redis_s() {
        let text = "# a comment\r\n\
                    type i seq 2 file appendonly.aof.2.incr.aof\r\n\
                    FILE appendonly.aof.1.base.kvs  TYPE b SEQ 1 future thing\n\
                    file \"appendonly.aof.3.incr.aof\" seq 3 type i";
        let manifest = Manifest::parse(text).unwrap();
        assert_eq!(
            manifest.base,
            Some(entry("appendonly.aof.1.base.kvs", 1, FileKind::Base))
        );
        assert_eq!(
            manifest.incrs,
            vec![
                entry("appendonly.aof.2.incr.aof", 2, FileKind::Incr),
                entry("appendonly.aof.3.incr.aof", 3, FileKind::Incr)
            ]
        );
        // Comments only: no files.
        assert_eq!(Manifest::parse("# nothing\n").unwrap(), Manifest::default());
    }

    #[test]
    fn manifest_rejections() {
        let cases = [
            ("", "empty manifest"),
            ("file a seq 1 type x\n", "unknown file type"),
            ("file a seq 1 type base\n", "unknown file type"),
            ("file a seq 1\n", "expected `file"),
            ("file a seq 1 type\n", "expected `file"),
            ("file a seq 1 kind b\n", "missing `type`"),
            ("name a seq 1 type b\n", "missing `file`"),
            ("file a sequence 1 type b\n", "missing `seq`"),
            ("file a seq 0 type b\n", "bad seq"),
            ("file a seq -1 type b\n", "bad seq"),
            ("file a seq x type b\n", "bad seq"),
            ("file a seq 1 type b file b\n", "given twice"),
            (
                "file a seq 1 type b\nfile b seq 2 type b\n",
                "line 2: a second base",
            ),
            ("file ../a seq 1 type b\n", "plain name"),
            ("file d/a seq 1 type i\n", "plain name"),
            ("file .. seq 1 type i\n", "plain name"),
            ("file \"\" seq 1 type i\n", "plain name"),
            (
                "file a seq 2 type i\nfile b seq 2 type i\n",
                "line 2: incr seq 2 does not follow seq 2",
            ),
            (
                "file a seq 2 type i\nfile b seq 1 type i\n",
                "does not follow",
            ),
            (
                "file a seq 1 type i\n\nfile b seq 2 type i\n",
                "line 2: blank line",
            ),
            ("file a seq 1 type i\nfile a seq 2 type h\n", "listed twice"),
            ("file \"a seq 1 type i\n", "unbalanced quotes"),
        ];
        for (text, expected) in cases {
            let err = Manifest::parse(text).expect_err(text);
            assert!(
                err.to_string().contains(expected),
                "{text:?}: {err} (expected {expected:?})"
            );
            assert!(err.path.as_os_str().is_empty());
        }
    }

    #[test]
    fn manifest_load_and_store() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path(), DEFAULT_PREFIX).unwrap(), None);
        let manifest = Manifest {
            base: Some(entry(&base_name(DEFAULT_PREFIX, 1), 1, FileKind::Base)),
            incrs: vec![entry(&incr_name(DEFAULT_PREFIX, 1), 1, FileKind::Incr)],
            history: vec![],
        };
        manifest
            .store(&crate::persist::disk::OsDisk, dir.path(), DEFAULT_PREFIX)
            .unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("appendonly.aof.manifest")).unwrap(),
            "file appendonly.aof.1.base.kvs seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
        );
        assert_eq!(
            Manifest::load(dir.path(), DEFAULT_PREFIX).unwrap(),
            Some(manifest)
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        fs::write(dir.path().join("bad.manifest"), "file a seq 1 type z\n").unwrap();
        let err = Manifest::load(dir.path(), "bad").unwrap_err();
        assert_eq!(err.path, dir.path().join("bad.manifest"));
        assert!(err
            .to_string()
            .contains("bad.manifest: manifest line 1: unknown file type"));
        fs::write(dir.path().join("bin.manifest"), b"file \xff seq 1 type i\n").unwrap();
        assert!(Manifest::load(dir.path(), "bin")
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
    }
}
