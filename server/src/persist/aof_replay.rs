//! Reading the append-only file's incremental logs back at start-up: a streaming,
//! bounded-memory record reader that passes each logged command on, and tells a torn tail
//! (a crash in the middle of an append, repaired by truncation) from corruption (an
//! error naming the file and offset). [`super::aof_check`] reuses the same scan offline.
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
//! - A transaction or script reaches the log as one unit: `MULTI`, its commands, `EXEC`
//!   (`propagate::unit`). Its commands are applied only once its `EXEC` has been read, so a
//!   crash never replays half of one: a unit that the end of the last incr file cuts off
//!   (whole records or not) is a torn tail like any other, truncated away from its `MULTI`.
//!   `MULTI` inside a unit, and `EXEC` outside one, are corruption.
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

use protocol::{Argv, OwnedArgv};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use bytes::{Buf, BytesMut};
use protocol::parse::{Limits, RequestParser};

use super::aof_error::AofError;

/// How much of a log file is read at a time.
const READ_CHUNK: usize = 1 << 20;

/// Progress is logged every this many bytes replayed...
const PROGRESS_BYTES: u64 = 64 << 20;

/// ...or every this many commands, whichever comes first.
const PROGRESS_COMMANDS: u64 = 1 << 20;

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
pub(super) fn truncate_file(path: &Path, len: u64) -> Result<(), AofError> {
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
pub(crate) struct Scan {
    /// Commands passed on (those inside units included, `MULTI` and `EXEC` not).
    pub(crate) commands: u64,
    /// Bytes of whole records and units: where the file stops being valid.
    pub(crate) valid_len: u64,
    /// Protocol lines in those bytes (`*N` line, then a header and a payload per arg).
    pub(crate) lines: u64,
    pub(crate) end: ScanEnd,
}

#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// The file is whole records only.
    Clean,
    /// After the whole records, a proper prefix of a record or of a unit, up to the end of
    /// the file.
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
pub(super) fn scan_log(
    path: &Path,
    limits: Limits,
    on_command: &mut dyn FnMut(Argv<'_>) -> Result<(), String>,
) -> Result<Scan, AofError> {
    let mut file = File::open(path).map_err(|err| AofError::io(path, &err))?;
    let size_hint = file
        .metadata()
        .map_err(|err| AofError::io(path, &err))?
        .len();
    scan_source(&mut file, size_hint, path, limits, on_command)
}

/// [`scan_log`] over any source holding `size_hint` bytes (`path` only names it in errors
/// and progress lines): the file's bytes in memory for the fuzz target.
pub(crate) fn scan_source(
    file: &mut dyn Read,
    size_hint: u64,
    path: &Path,
    limits: Limits,
    on_command: &mut dyn FnMut(Argv<'_>) -> Result<(), String>,
) -> Result<Scan, AofError> {
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
    // The unit being read (after its MULTI): its commands wait for its EXEC.
    let mut unit: Option<OpenUnit> = None;
    // Bytes and lines of whole records read, units still open included.
    let mut read_len = 0u64;
    let mut read_lines = 0u64;
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
                    let lines = 1 + 2 * argv.len() as u64;
                    let marker = unit_marker(argv);
                    match (marker, unit.as_mut()) {
                        (Some(UnitMarker::Multi), Some(_)) => {
                            scan.end = corrupt("MULTI inside a transaction".into(), read_total);
                            return Ok(scan);
                        }
                        (Some(UnitMarker::Exec), None) => {
                            scan.end = corrupt("EXEC without MULTI".into(), read_total);
                            return Ok(scan);
                        }
                        (Some(UnitMarker::Multi), None) => {
                            unit = Some(OpenUnit::default());
                        }
                        (Some(UnitMarker::Exec), Some(_)) => {
                            let whole = unit.take().unwrap_or_default();
                            for command in &whole.commands {
                                apply(on_command, command.argv(), path, scan.valid_len)?;
                            }
                            scan.commands += whole.commands.len() as u64;
                        }
                        (None, Some(open)) => open.commands.push(OwnedArgv::from_argv(argv)),
                        (None, None) => {
                            apply(on_command, argv, path, scan.valid_len)?;
                            scan.commands += 1;
                        }
                    }
                    read_len += len as u64;
                    read_lines += lines;
                    if unit.is_none() {
                        scan.valid_len = read_len;
                        scan.lines = read_lines;
                    }
                    buf.advance(len);
                    started = false;
                    progress.tick(read_len, scan.commands);
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
        let n = read_more(file, &mut buf, want).map_err(|err| AofError::io(path, &err))?;
        read_total += n as u64;
        eof = n == 0;
    }
    let file_len = read_len + buf.len() as u64;
    scan.end = if buf.is_empty() && unit.is_none() {
        ScanEnd::Clean
    } else if buf.is_empty() || is_record_prefix(&buf, &limits) {
        ScanEnd::TornTail { file_len }
    } else {
        ScanEnd::Corrupt {
            message: "malformed record at the end of the file".into(),
            file_len,
        }
    };
    Ok(scan)
}

/// A transaction's commands read so far, waiting for its `EXEC`.
#[derive(Default)]
struct OpenUnit {
    commands: Vec<OwnedArgv>,
}

/// The records that open and close a unit.
enum UnitMarker {
    Multi,
    Exec,
}

fn unit_marker(argv: Argv<'_>) -> Option<UnitMarker> {
    if argv.len() != 1 {
        return None;
    }
    let name = argv.first()?;
    if name.eq_ignore_ascii_case(b"MULTI") {
        Some(UnitMarker::Multi)
    } else if name.eq_ignore_ascii_case(b"EXEC") {
        Some(UnitMarker::Exec)
    } else {
        None
    }
}

/// Passes one command on; a failure names the file and the offset of its record (or unit).
fn apply(
    on_command: &mut dyn FnMut(Argv<'_>) -> Result<(), String>,
    argv: Argv<'_>,
    path: &Path,
    offset: u64,
) -> Result<(), AofError> {
    on_command(argv)
        .map_err(|message| AofError::new(path, Some(offset), format!("command failed: {message}")))
}

/// Appends up to `want` bytes from `file` to `buf`; 0 only at the end of the file.
fn read_more(file: &mut dyn Read, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use bytes::Bytes;
    use std::fs;

    /// One log record: `args` as a RESP array of bulk strings.
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
    pub(in crate::persist) fn records(n: usize) -> (Vec<u8>, Vec<Vec<Bytes>>) {
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
    fn a_unit_is_applied_whole_or_cut_off_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof.2.incr.aof");
        let (prefix, argvs) = records(3);
        let inner: [&[&[u8]]; 2] = [&[b"SET", b"a", b"1"], &[b"INCRBY", b"n", b"2"]];
        let mut unit = record(&[b"MULTI"]);
        for args in inner {
            unit.extend(record(args));
        }
        unit.extend(record(&[b"EXEC"]));
        let after = record(&[b"DEL", b"z"]);

        // Whole: the unit's commands arrive, without MULTI and EXEC.
        let mut bytes = prefix.clone();
        bytes.extend_from_slice(&unit);
        bytes.extend_from_slice(&after);
        fs::write(&path, &bytes).unwrap();
        let (stats, seen) = replay_all(&path, false).unwrap();
        let mut expected = argvs.clone();
        for args in inner {
            expected.push(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
        }
        expected.push(vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"z")]);
        assert_eq!(seen, expected);
        assert_eq!(stats.commands, 6);
        assert_eq!(stats.bytes, bytes.len() as u64);

        // Cut anywhere inside the unit, even between whole records: nothing of it is applied
        // and the file is truncated to where it began.
        for cut in 1..unit.len() {
            let mut bytes = prefix.clone();
            bytes.extend_from_slice(&unit[..cut]);
            fs::write(&path, &bytes).unwrap();
            let err = replay_all(&path, false).unwrap_err();
            assert_eq!(err.offset, Some(prefix.len() as u64), "cut {cut}: {err}");
            let (stats, seen) = replay_all(&path, true).unwrap();
            assert_eq!(seen, argvs, "cut {cut}");
            assert_eq!(stats.bytes, prefix.len() as u64, "cut {cut}");
            assert_eq!(fs::read(&path).unwrap(), prefix, "cut {cut}");
        }

        // MULTI inside a unit and EXEC outside one are corruption.
        for bad in [
            [record(&[b"MULTI"]), record(&[b"MULTI"])].concat(),
            record(&[b"EXEC"]),
        ] {
            let mut bytes = prefix.clone();
            bytes.extend_from_slice(&bad);
            bytes.extend_from_slice(&after);
            fs::write(&path, &bytes).unwrap();
            let err = replay_all(&path, true).unwrap_err();
            assert!(
                err.message.contains("MULTI") || err.message.contains("EXEC"),
                "{err}"
            );
        }
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
            if &argv[1][..] == b"key:3" {
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
}
