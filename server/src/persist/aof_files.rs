//! The multi-part append-only file (as in Redis 7): the manifest, the streaming log reader
//! used at startup, and `check-aof`.
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
//!
//! # Recovery rules
//!
//! - The data set is the base (if any) followed by every incr file in manifest order;
//!   history files are ignored (and may be deleted at any time).
//! - A log file is a sequence of whole records. If the last record of the **last** incr
//!   file is cut short by the end of the file (a crash in the middle of an append), that
//!   is a torn tail: the file is truncated to its last whole record (ftruncate, fsync), a
//!   warning names the file and both sizes, and loading goes on. Only a tail that is a
//!   proper prefix of a well-formed record counts as torn.
//! - Anything else is corruption and loading stops with an error naming the file and the
//!   byte offset where the bad record starts: a malformed byte anywhere, a torn tail in an
//!   incr file that is not the last one (the files after it were appended later and
//!   depend on it), a missing file, a record whose command fails to apply.
//! - `kvserver check-aof [--fix]` reports, for every file, its size and how far it is
//!   valid. `--fix` truncates the last incr file to its last valid record (a torn tail or
//!   corruption, as `redis-check-aof --fix` does: what follows the bad record is lost).
//!   Damage anywhere else cannot be fixed by truncation and is only reported.

use protocol::Argv;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, BytesMut};
use protocol::inline::split_args;
use protocol::parse::{Limits, RequestParser};

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

/// How much of a log file is read at a time.
const READ_CHUNK: usize = 1 << 20;

/// Progress is logged every this many bytes replayed...
const PROGRESS_BYTES: u64 = 64 << 20;

/// ...or every this many commands, whichever comes first.
const PROGRESS_COMMANDS: u64 = 1 << 20;

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

/// The limits log records are parsed with: those of client requests (a logged command was
/// a request the server accepted), with Redis's default `proto-max-bulk-len` of 512 MiB.
/// A server configured with a larger `proto-max-bulk-len` must replay with
/// [`replay_log_with_limits`].
pub fn log_limits() -> Limits {
    Limits {
        max_bulk_len: 512 * 1024 * 1024,
        ..Limits::default()
    }
}

// ---------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------

/// Why an AOF file could not be read: the file, where in it (for a bad record), and what.
#[derive(Debug)]
pub struct AofError {
    /// The file concerned (empty for [`Manifest::parse`], which has no file).
    pub path: PathBuf,
    /// Byte offset of the start of the bad record, for errors inside a log file.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl AofError {
    fn new(path: &Path, offset: Option<u64>, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            offset,
            message: message.into(),
        }
    }

    fn io(path: &Path, err: &io::Error) -> Self {
        Self::new(path, None, err.to_string())
    }
}

impl fmt::Display for AofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if !self.path.as_os_str().is_empty() {
            write!(f, "{}", self.path.display())?;
            sep = ": ";
        }
        if let Some(offset) = self.offset {
            write!(f, "{sep}bad record at byte {offset}")?;
            sep = ": ";
        }
        write!(f, "{sep}{}", self.message)
    }
}

impl std::error::Error for AofError {}

// ---------------------------------------------------------------------------------------
// Manifest.
// ---------------------------------------------------------------------------------------

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
    pub fn store(&self, dir: &Path, prefix: &str) -> Result<(), AofError> {
        let name = manifest_name(prefix);
        let text = self.to_text();
        write_atomically(dir, &name, |w| w.write_all(text.as_bytes()))
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
fn read_manifest(path: &Path) -> Result<Manifest, Option<AofError>> {
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

// ---------------------------------------------------------------------------------------
// Reading log files.
// ---------------------------------------------------------------------------------------

/// What [`replay_log`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStats {
    /// Commands passed to the callback.
    pub commands: u64,
    /// Bytes of whole records read (the file's length after any truncation).
    pub bytes: u64,
    /// The torn tail that was cut off, if there was one.
    pub truncated_tail: Option<TornTail>,
}

/// A last record cut short by the end of the file, and the truncation that removed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Length of the whole records before it: the file's length after truncation.
    pub valid_len: u64,
    /// The file's length before truncation.
    pub file_len: u64,
}

/// Reads the log file at `path` record by record, in bounded memory (1 MiB reads; a record
/// is held whole only while it is passed on), and calls `on_command` with each command's
/// argv in order. Parses with [`log_limits`].
///
/// Only multibulk arrays of bulk strings are valid records: inline commands and empty or
/// null arrays are corruption. A last record cut short by the end of the file (a crash in
/// the middle of an append) is a torn tail: with `truncate_torn_tail` the file is truncated
/// to its last whole record (ftruncate + fsync), a warning names the file and both sizes,
/// and replay succeeds; without it, it is an error. The caller passes `true` only for the
/// last incr file. Progress is logged every 64 MiB or 1 Mi commands.
///
/// # Errors
///
/// An [`AofError`] with the byte offset of the start of the bad record for corruption, an
/// untruncated torn tail, or an error returned by `on_command`; without an offset for I/O
/// errors. Commands before the bad record have been passed to `on_command`.
pub fn replay_log(
    path: &Path,
    truncate_torn_tail: bool,
    on_command: impl FnMut(Argv<'_>) -> Result<(), String>,
) -> Result<ReplayStats, AofError> {
    replay_log_with_limits(path, log_limits(), truncate_torn_tail, on_command)
}

/// [`replay_log`] with explicit parser limits (for a server whose `proto-max-bulk-len` is
/// above 512 MiB: it may have logged longer strings).
///
/// # Errors
///
/// As [`replay_log`].
pub fn replay_log_with_limits(
    path: &Path,
    limits: Limits,
    truncate_torn_tail: bool,
    mut on_command: impl FnMut(Argv<'_>) -> Result<(), String>,
) -> Result<ReplayStats, AofError> {
    let scan = scan_log(path, limits, &mut on_command)?;
    let mut stats = ReplayStats {
        commands: scan.commands,
        bytes: scan.valid_len,
        truncated_tail: None,
    };
    match scan.end {
        ScanEnd::Clean => Ok(stats),
        ScanEnd::Corrupt { message, .. } => Err(AofError::new(path, Some(scan.valid_len), message)),
        ScanEnd::TornTail { file_len } if !truncate_torn_tail => Err(AofError::new(
            path,
            Some(scan.valid_len),
            format!(
                "the last record is cut short by the end of the file ({} of {file_len} bytes \
                 are whole records)",
                scan.valid_len
            ),
        )),
        ScanEnd::TornTail { file_len } => {
            truncate_file(path, scan.valid_len)?;
            tracing::warn!(
                "AOF file {} ends with a torn record (crash during an append?): \
                 truncated from {file_len} to {} bytes",
                path.display(),
                scan.valid_len
            );
            stats.truncated_tail = Some(TornTail {
                valid_len: scan.valid_len,
                file_len,
            });
            Ok(stats)
        }
    }
}

/// Truncates `path` to `len` bytes and makes that durable.
fn truncate_file(path: &Path, len: u64) -> Result<(), AofError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|err| AofError::io(path, &err))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|err| AofError::io(path, &err))
}

/// The outcome of reading a log file up to its end or its first bad record.
#[derive(Debug)]
struct Scan {
    /// Whole records read.
    commands: u64,
    /// Bytes of whole records: where the file stops being valid.
    valid_len: u64,
    /// Protocol lines in those records (`*N` line, then a header and a payload per arg).
    lines: u64,
    end: ScanEnd,
}

#[derive(Debug)]
enum ScanEnd {
    /// The file is whole records only.
    Clean,
    /// After the whole records, a proper prefix of a record, up to the end of the file.
    TornTail { file_len: u64 },
    /// The record at `valid_len` is malformed.
    Corrupt { message: String, file_len: u64 },
}

/// Logs progress on long replays.
struct Progress<'a> {
    path: &'a Path,
    size: u64,
    next_bytes: u64,
    next_commands: u64,
}

impl Progress<'_> {
    fn tick(&mut self, bytes: u64, commands: u64) {
        if bytes >= self.next_bytes || commands >= self.next_commands {
            self.next_bytes = bytes + PROGRESS_BYTES;
            self.next_commands = commands + PROGRESS_COMMANDS;
            tracing::info!(
                "loading {}: {commands} commands, {} of {} MiB",
                self.path.display(),
                bytes >> 20,
                self.size >> 20
            );
        }
    }
}

/// Reads `path` record by record, passing each to `on_command`, until the end of the file
/// or the first bad record. Errors only for I/O and for `on_command` failures.
fn scan_log(
    path: &Path,
    limits: Limits,
    on_command: &mut dyn FnMut(Argv<'_>) -> Result<(), String>,
) -> Result<Scan, AofError> {
    let mut file = File::open(path).map_err(|err| AofError::io(path, &err))?;
    let size_hint = file
        .metadata()
        .map_err(|err| AofError::io(path, &err))?
        .len();
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut read_total: u64 = 0;
    let mut scan = Scan {
        commands: 0,
        valid_len: 0,
        lines: 0,
        end: ScanEnd::Clean,
    };
    let mut progress = Progress {
        path,
        size: size_hint,
        next_bytes: PROGRESS_BYTES,
        next_commands: PROGRESS_COMMANDS,
    };
    // Whether the first byte of the record at the front of `buf` has been checked.
    let mut started = false;
    let mut eof = false;
    loop {
        let corrupt = |message: String, read_total: u64| ScanEnd::Corrupt {
            message,
            file_len: read_total.max(size_hint),
        };
        if !started {
            match buf.first() {
                None => {}
                Some(b'*') => started = true,
                Some(&byte) => {
                    scan.end = corrupt(
                        format!(
                            "expected '*' (a RESP array) at the start of a record, got {}",
                            describe_byte(byte)
                        ),
                        read_total,
                    );
                    return Ok(scan);
                }
            }
        }
        if started {
            match parser.advance(&buf) {
                Err(err) => {
                    scan.end = corrupt(err.to_string(), read_total);
                    return Ok(scan);
                }
                Ok(Some(request)) => {
                    if request.is_empty() {
                        scan.end = corrupt("empty or null array".into(), read_total);
                        return Ok(scan);
                    }
                    let len = request.consumed();
                    let argv = parser.argv(&request, &buf);
                    let arg_count = argv.len() as u64;
                    on_command(argv).map_err(|message| {
                        AofError::new(
                            path,
                            Some(scan.valid_len),
                            format!("command failed: {message}"),
                        )
                    })?;
                    scan.valid_len += len as u64;
                    scan.commands += 1;
                    scan.lines += 1 + 2 * arg_count;
                    buf.advance(len);
                    started = false;
                    progress.tick(scan.valid_len, scan.commands);
                    continue;
                }
                Ok(None) => {}
            }
        }
        if eof {
            break;
        }
        // Read at least a chunk; more if a bulk payload is known to need it, but never more
        // than the file still holds, so a lying length header allocates nothing extra.
        let remaining = usize::try_from(size_hint.saturating_sub(read_total)).unwrap_or(usize::MAX);
        let want = READ_CHUNK.max(parser.bytes_needed(buf.len()).min(remaining));
        let n = read_more(&mut file, &mut buf, want).map_err(|err| AofError::io(path, &err))?;
        read_total += n as u64;
        eof = n == 0;
    }
    let file_len = scan.valid_len + buf.len() as u64;
    scan.end = if buf.is_empty() {
        ScanEnd::Clean
    } else if is_record_prefix(&buf, &limits) {
        ScanEnd::TornTail { file_len }
    } else {
        ScanEnd::Corrupt {
            message: "malformed record at the end of the file".into(),
            file_len,
        }
    };
    Ok(scan)
}

/// Appends up to `want` bytes from `file` to `buf`; 0 only at the end of the file.
fn read_more(file: &mut File, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + want, 0);
    let mut filled = 0;
    let result = loop {
        let Some(space) = buf.get_mut(start + filled..) else {
            break Ok(());
        };
        if space.is_empty() {
            break Ok(());
        }
        match file.read(space) {
            Ok(0) => break Ok(()),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err),
        }
    };
    buf.truncate(start + filled);
    result.map(|()| filled)
}

fn describe_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", char::from(byte))
    } else {
        format!("byte 0x{byte:02x}")
    }
}

/// Whether `tail` (what is left at the end of the file after the whole records) is a
/// proper prefix of a well-formed record, as a crash in the middle of an append leaves:
/// `*<n>` with n >= 1, then `$<len>` headers and payloads followed by CRLF, all within
/// `limits`, stopping anywhere. Anything else is corruption, even at the end of the file.
fn is_record_prefix(tail: &[u8], limits: &Limits) -> bool {
    let mut pos = 0;
    let count = match prefix_header(tail, &mut pos, b'*', 1, limits.max_array_len) {
        Header::Partial => return true,
        Header::Bad => return false,
        Header::Done(count) => count,
    };
    for _ in 0..count {
        let len = match prefix_header(tail, &mut pos, b'$', 0, limits.max_bulk_len) {
            Header::Partial => return true,
            Header::Bad => return false,
            Header::Done(len) => len,
        };
        let rest = tail.get(pos..).unwrap_or_default();
        match rest.get(len..) {
            None | Some([]) | Some([b'\r']) => return true,
            Some([b'\r', b'\n', ..]) => pos += len + 2,
            Some(_) => return false,
        }
    }
    // A whole record: the parser would have returned it.
    false
}

enum Header {
    /// The input ends inside the header (or before it).
    Partial,
    /// The header cannot be the start of a valid one.
    Bad,
    /// A complete, valid header with this number.
    Done(usize),
}

/// Checks a `<marker><digits>\r\n` header at `*pos` (advanced past it when complete): the
/// number in `min..=max`, canonical digits (no sign, no leading zero), possibly cut short.
fn prefix_header(input: &[u8], pos: &mut usize, marker: u8, min: usize, max: usize) -> Header {
    let rest = input.get(*pos..).unwrap_or_default();
    let Some((&first, rest)) = rest.split_first() else {
        return Header::Partial;
    };
    if first != marker {
        return Header::Bad;
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let number = rest.get(..digits).unwrap_or_default();
    if number.first() == Some(&b'0') && (digits > 1 || min > 0) {
        return Header::Bad;
    }
    let mut value: usize = 0;
    for &d in number {
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(usize::from(d - b'0')))
        {
            Some(v) if v <= max => value = v,
            _ => return Header::Bad,
        }
    }
    match rest.get(digits..) {
        None | Some([]) => Header::Partial,
        Some([b'\r', ..]) if digits == 0 || value < min => Header::Bad,
        Some([b'\r']) => Header::Partial,
        Some([b'\r', b'\n', ..]) => {
            *pos += 1 + digits + 2;
            Header::Done(value)
        }
        Some(_) => Header::Bad,
    }
}

// ---------------------------------------------------------------------------------------
// check-aof.
// ---------------------------------------------------------------------------------------

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
    use bytes::Bytes;

    fn record(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// `n` SET records (with a SELECT first) and their argvs.
    fn records(n: usize) -> (Vec<u8>, Vec<Vec<Bytes>>) {
        let mut bytes = Vec::new();
        let mut argvs = Vec::new();
        for i in 0..n {
            let key = format!("key:{i}");
            let value = "v".repeat(i % 7);
            let args: Vec<&[u8]> = if i == 0 {
                vec![b"SELECT", b"3"]
            } else {
                vec![b"SET", key.as_bytes(), value.as_bytes()]
            };
            bytes.extend(record(&args));
            argvs.push(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
        }
        (bytes, argvs)
    }

    fn replay_all(path: &Path, truncate: bool) -> Result<(ReplayStats, Vec<Vec<Bytes>>), AofError> {
        let mut seen = Vec::new();
        let stats = replay_log(path, truncate, |argv| {
            seen.push(argv.to_vec());
            Ok(())
        })?;
        Ok((stats, seen))
    }

    fn no_base(_: &Path) -> Result<u64, String> {
        Err("no base expected".into())
    }

    // ----- manifest -----

    fn entry(name: &str, seq: u64, kind: FileKind) -> ManifestEntry {
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
        manifest.store(dir.path(), DEFAULT_PREFIX).unwrap();
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

    // ----- replay -----

    #[test]
    fn replays_every_record_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof.1.incr.aof");
        let (bytes, argvs) = records(50);
        fs::write(&path, &bytes).unwrap();
        let (stats, seen) = replay_all(&path, false).unwrap();
        assert_eq!(seen, argvs);
        assert_eq!(
            stats,
            ReplayStats {
                commands: 50,
                bytes: bytes.len() as u64,
                truncated_tail: None
            }
        );
        // An empty file is a valid, empty log.
        fs::write(&path, b"").unwrap();
        assert_eq!(replay_all(&path, false).unwrap().0.commands, 0);
    }

    #[test]
    fn records_larger_than_a_read_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.aof");
        let big = vec![b'x'; 3 * READ_CHUNK + 17];
        let mut bytes = record(&[b"SET", b"a", &big]);
        bytes.extend(record(&[b"SET", b"b", b"1"]));
        bytes.extend(record(&[b"APPEND", b"a", &big[..READ_CHUNK - 5]]));
        fs::write(&path, &bytes).unwrap();
        let (stats, seen) = replay_all(&path, false).unwrap();
        assert_eq!(stats.commands, 3);
        assert_eq!(seen[0][2].len(), big.len());
        assert_eq!(seen[1], [&b"SET"[..], b"b", b"1"]);
        assert_eq!(seen[2][2].len(), READ_CHUNK - 5);
    }

    #[test]
    fn torn_tail_at_every_cut_point() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof.2.incr.aof");
        let (prefix, argvs) = records(5);
        let last = record(&[b"SET", b"key", b"a\r\nvalue"]);
        for cut in 1..last.len() {
            let mut bytes = prefix.clone();
            bytes.extend_from_slice(&last[..cut]);
            let file_len = bytes.len() as u64;
            let valid_len = prefix.len() as u64;

            fs::write(&path, &bytes).unwrap();
            let err = replay_all(&path, false).unwrap_err();
            assert_eq!(err.offset, Some(valid_len), "cut {cut}: {err}");
            assert!(err.message.contains("cut short"), "cut {cut}: {err}");
            assert_eq!(
                fs::read(&path).unwrap(),
                bytes,
                "untouched without truncation"
            );

            let (stats, seen) = replay_all(&path, true).unwrap();
            assert_eq!(seen, argvs, "cut {cut}");
            assert_eq!(
                stats,
                ReplayStats {
                    commands: 5,
                    bytes: valid_len,
                    truncated_tail: Some(TornTail {
                        valid_len,
                        file_len
                    }),
                },
                "cut {cut}"
            );
            assert_eq!(fs::read(&path).unwrap(), prefix, "cut {cut}");
        }
    }

    #[test]
    fn a_torn_first_record_leaves_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.aof");
        fs::write(&path, b"*2\r\n$6\r\nSEL").unwrap();
        let (stats, _) = replay_all(&path, true).unwrap();
        assert_eq!(stats.commands, 0);
        assert_eq!(
            stats.truncated_tail,
            Some(TornTail {
                valid_len: 0,
                file_len: 11
            })
        );
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn corruption_is_reported_with_the_offset_of_the_bad_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof.3.incr.aof");
        let (good, _) = records(4);
        let (after, _) = records(3);
        let bad_records: [&[u8]; 12] = [
            b"*3\r\n$3\r\nSET\r\n$X\r\nk\r\n$1\r\nv\r\n",
            b"*3\r\n$3\r\nSET\r\n$2\r\nk\r\n$1\r\nv\r\n",
            b"SET k v\r\n",
            b"\r\n",
            b"*0\r\n",
            b"*-1\r\n",
            b"*2\r\n:1\r\n$1\r\nk\r\n",
            b"*1\r\n$-1\r\n",
            b"*x\r\n",
            b"*1\r\n$536870913\r\n",
            b"+OK\r\n",
            b"\0\0\0\0",
        ];
        for bad in bad_records {
            for tail in [&after[..], b""] {
                let mut bytes = good.clone();
                bytes.extend_from_slice(bad);
                bytes.extend_from_slice(tail);
                fs::write(&path, &bytes).unwrap();
                for truncate in [false, true] {
                    let mut seen = 0;
                    let err = replay_log(&path, truncate, |_| {
                        seen += 1;
                        Ok(())
                    })
                    .unwrap_err();
                    let case = format!(
                        "{:?} + {} bytes: {err}",
                        String::from_utf8_lossy(bad),
                        tail.len()
                    );
                    assert_eq!(err.offset, Some(good.len() as u64), "{case}");
                    assert_eq!(seen, 4, "{case}");
                    assert_eq!(err.path, path);
                    assert!(
                        err.to_string().starts_with(&format!(
                            "{}: bad record at byte {}: ",
                            path.display(),
                            good.len()
                        )),
                        "{case}"
                    );
                    assert_eq!(
                        fs::read(&path).unwrap(),
                        bytes,
                        "corruption is never truncated"
                    );
                }
            }
        }
        // The parser's message is passed on.
        let mut bytes = good.clone();
        bytes.extend_from_slice(bad_records[0]);
        fs::write(&path, &bytes).unwrap();
        let err = replay_all(&path, false).unwrap_err();
        assert!(err.message.contains("invalid bulk length"), "{err}");
    }

    #[test]
    fn malformed_tails_are_corruption_not_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.aof");
        let (good, _) = records(2);
        for bad in [
            &b"*3\r\n$3\r\nSET\r\n$X"[..],
            b"*3\r\n$3\r\nSET\r\n$-",
            b"*3\r\n$3\r\nSETx",
            b"*3\r\n$3\r\nSET\rx",
            b"*3\r\n$01",
            b"*0",
            b"*-",
            b"*3x",
            b"*3\r\n\r",
            b"*99999999999999999999999",
            b"*2\r\n$1\r\nab",
        ] {
            let mut bytes = good.clone();
            bytes.extend_from_slice(bad);
            fs::write(&path, &bytes).unwrap();
            let err = replay_all(&path, true).unwrap_err();
            assert_eq!(err.offset, Some(good.len() as u64), "{bad:?}");
            assert!(!err.message.contains("cut short"), "{bad:?}: {err}");
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn prefix_checker_accepts_exactly_the_proper_prefixes() {
        let limits = log_limits();
        let whole = record(&[b"SET", b"", b"0123456789"]);
        for cut in 1..whole.len() {
            assert!(is_record_prefix(&whole[..cut], &limits), "{cut}");
        }
        assert!(!is_record_prefix(&whole, &limits));
        assert!(is_record_prefix(b"*10", &limits));
        assert!(is_record_prefix(b"*1\r\n$0", &limits));
        assert!(is_record_prefix(b"*1\r\n$0\r\n\r", &limits));
        assert!(!is_record_prefix(b"*1\r\n$00", &limits));
        assert!(!is_record_prefix(b"*1\r\n$\r", &limits));
        assert!(!is_record_prefix(b"*16777217", &limits));
    }

    #[test]
    fn command_errors_name_the_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof.1.incr.aof");
        let (bytes, _) = records(6);
        fs::write(&path, &bytes).unwrap();
        let third = {
            let (first_three, _) = records(3);
            first_three.len() as u64
        };
        let mut n = 0;
        let err = replay_log(&path, true, |argv| {
            n += 1;
            if argv[1].as_ref() == b"key:3" {
                Err("ERR wrong kind of value".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(n, 4);
        assert_eq!(err.offset, Some(third));
        assert_eq!(
            err.to_string(),
            format!(
                "{}: bad record at byte {third}: command failed: ERR wrong kind of value",
                path.display()
            )
        );
    }

    #[test]
    fn missing_files_are_io_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.aof");
        let err = replay_all(&path, true).unwrap_err();
        assert_eq!(err.offset, None);
        assert_eq!(err.path, path);
    }

    // ----- check-aof -----

    /// An AOF directory: base + three incrs; returns the incr paths and their contents.
    fn aof_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let manifest = Manifest {
            base: Some(entry(&base_name(DEFAULT_PREFIX, 1), 1, FileKind::Base)),
            incrs: (1..=3)
                .map(|seq| entry(&incr_name(DEFAULT_PREFIX, seq), seq, FileKind::Incr))
                .collect(),
            history: vec![entry("appendonly.aof.0.incr.aof", 9, FileKind::History)],
        };
        manifest.store(dir, DEFAULT_PREFIX).unwrap();
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

    #[test]
    fn error_display() {
        let err = AofError::new(Path::new("appendonly.aof.3.incr.aof"), Some(1234), "what");
        assert_eq!(
            err.to_string(),
            "appendonly.aof.3.incr.aof: bad record at byte 1234: what"
        );
        let err = AofError::new(Path::new("x"), None, "gone");
        assert_eq!(err.to_string(), "x: gone");
        let err = AofError::new(Path::new(""), None, "empty manifest");
        assert_eq!(err.to_string(), "empty manifest");
    }
}
