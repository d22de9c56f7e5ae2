//! The append-only log's record scanner (start-up replay and `--check-aof`) on arbitrary
//! files. Checks that it never panics, and that what it reports is consistent:
//! - the valid prefix is inside the file, and all of it when the file is clean;
//! - replaying just the valid prefix is clean and gives the same commands;
//! - the commands it returns, written back as RESP arrays, replay to the same commands.
//!
//! The first byte picks tight limits (so the limit checks are reached with small inputs).
#![no_main]

use kvserver::fuzzing::{scan_log, LogEnd};
use libfuzzer_sys::fuzz_target;
use protocol::Limits;

fn encode(commands: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for command in commands {
        out.extend_from_slice(format!("*{}\r\n", command.len()).as_bytes());
        for arg in command {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, log)) = data.split_first() else {
        return;
    };
    let limits = (control & 1 == 1).then_some(Limits {
        max_bulk_len: 64,
        max_array_len: 8,
        max_inline_len: 32,
        max_depth: 1,
    });
    let scan = scan_log(log, limits);
    let valid = usize::try_from(scan.valid_len).expect("fits");
    assert!(valid <= log.len());
    match scan.end {
        LogEnd::Clean => assert_eq!(valid, log.len()),
        LogEnd::TornTail | LogEnd::Corrupt => assert!(valid < log.len()),
    }

    let prefix = scan_log(&log[..valid], limits);
    assert_eq!(prefix.end, LogEnd::Clean);
    assert_eq!(prefix.valid_len, scan.valid_len);
    assert_eq!(prefix.commands, scan.commands);

    let rewritten = encode(&scan.commands);
    let again = scan_log(&rewritten, limits);
    assert_eq!(again.end, LogEnd::Clean, "{rewritten:?}");
    assert_eq!(again.commands, scan.commands);
});
