//! Entry points for the fuzz targets in `fuzz/`: the persistence loaders fed from bytes in
//! memory instead of files. Not part of the server's API; kept as small as the targets
//! allow, each a thin wrapper over the code start-up runs.

use std::io::Cursor;
use std::path::Path;

use protocol::parse::Limits;

use crate::persist::aof_replay::{log_limits, scan_source, ScanEnd};
use crate::persist::snapshot;
use crate::store::Store;

/// Databases of the store a fuzzed snapshot is loaded into (the server's default).
const DATABASES: usize = 16;

/// Loads `bytes` as a snapshot file into a fresh store, exactly as start-up loads
/// `dump.kvs` (with `now_ms` as the current time: keys whose deadline is at or before it
/// are dropped). Returns the number of keys loaded, or the loader's error message.
///
/// # Errors
///
/// The loader's message for a malformed file.
pub fn load_snapshot(bytes: &[u8], now_ms: u64) -> Result<u64, String> {
    let store = Store::new(DATABASES);
    let stats = snapshot::load_from(
        &store,
        Cursor::new(bytes),
        Path::new("<fuzz>"),
        Some(now_ms),
    )?;
    Ok(stats.entries)
}

/// How a scanned log ended: see [`scan_log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEnd {
    /// Whole records only.
    Clean,
    /// Whole records, then a proper prefix of a record or a transaction (a torn tail).
    TornTail,
    /// A malformed record at [`LogScan::valid_len`].
    Corrupt,
}

/// What [`scan_log`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScan {
    /// The commands replay would apply, in order (inside transactions included, `MULTI`
    /// and `EXEC` left out).
    pub commands: Vec<Vec<Vec<u8>>>,
    /// Bytes of whole records: where the log stops being valid.
    pub valid_len: u64,
    /// How it ended.
    pub end: LogEnd,
}

/// Reads `bytes` as an incremental log file with the record scanner start-up replays logs
/// with, under `limits` (`None`: the default log limits), collecting the commands instead
/// of applying them.
pub fn scan_log(bytes: &[u8], limits: Option<Limits>) -> LogScan {
    let mut commands = Vec::new();
    let mut source = Cursor::new(bytes);
    let scan = scan_source(
        &mut source,
        bytes.len() as u64,
        Path::new("<fuzz>"),
        limits.unwrap_or_else(log_limits),
        &mut |argv| {
            commands.push(argv.iter().map(<[u8]>::to_vec).collect());
            Ok(())
        },
    );
    // The callback never fails and a cursor never errors, so neither does the scan.
    let Ok(scan) = scan else {
        unreachable!("scanning bytes in memory cannot fail");
    };
    let end = match scan.end {
        ScanEnd::Clean => LogEnd::Clean,
        ScanEnd::TornTail { .. } => LogEnd::TornTail,
        ScanEnd::Corrupt { .. } => LogEnd::Corrupt,
    };
    LogScan {
        commands,
        valid_len: scan.valid_len,
        end,
    }
}
