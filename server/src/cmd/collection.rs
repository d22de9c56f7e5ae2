//! Pieces the collection families share: random picks (HRANDFIELD, SRANDMEMBER, SPOP,
//! ZRANDMEMBER) and the options and empty reply of HSCAN, SSCAN and ZSCAN.

use protocol::Argv;

use super::Reply;
use super::{arg_i64, errors, is, CmdError};

/// The most elements a negative-count random pick (`HRANDFIELD key -n`, SRANDMEMBER,
/// ZRANDMEMBER) returns: Redis has no limit (a huge count makes it build a reply until memory
/// runs out); kvstore refuses a count whose reply could not be decoded anyway (the protocol's
/// aggregate limit, SPEC.md 4.1).
pub const MAX_REPEATED_PICKS: u64 = 1 << 24;

/// Random positions: a counter hashed with a per-call random seed (foldhash's per-instance
/// seed, as RANDOMKEY uses), so no global generator state is shared.
pub struct Random {
    seeds: foldhash::fast::RandomState,
    counter: u64,
}

impl Default for Random {
    fn default() -> Self {
        Random::new()
    }
}

impl Random {
    /// A generator with a fresh seed.
    pub fn new() -> Self {
        Random {
            seeds: foldhash::fast::RandomState::default(),
            counter: 0,
        }
    }

    /// A position below `n` (> 0).
    pub fn below(&mut self, n: usize) -> usize {
        use std::hash::BuildHasher;
        self.counter += 1;
        let n = n.max(1) as u64;
        (self.seeds.hash_one(self.counter) % n) as usize
    }
}

/// The `[MATCH pattern] [COUNT count]` options of HSCAN, SSCAN and ZSCAN.
pub struct ScanOptions<'a> {
    /// Elements to report; `None` for none given or `*`.
    pub pattern: Option<&'a [u8]>,
    /// Elements to visit per call (at least 1; default 10).
    pub count: usize,
}

impl<'a> ScanOptions<'a> {
    /// Parses the options from `args[3..]`: anything else, a missing value or a count
    /// below 1 is `ERR syntax error` (as Redis, after the cursor and the key's type).
    pub fn parse(args: Argv<'a>) -> Result<Self, CmdError> {
        let mut options = ScanOptions {
            pattern: None,
            count: 10,
        };
        let mut i = 3;
        while i < args.len() {
            let value = args.get(i + 1).ok_or(errors::SYNTAX)?;
            if is(&args[i], "COUNT") {
                options.count = usize::try_from(arg_i64(value)?)
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or(errors::SYNTAX)?;
            } else if is(&args[i], "MATCH") {
                options.pattern = Some(value).filter(|p| *p != b"*");
            } else {
                return Err(errors::SYNTAX);
            }
            i += 2;
        }
        Ok(options)
    }
}

/// The reply of a scan of a missing key: cursor 0 and no elements.
pub fn reply_empty_scan(out: &mut Reply) {
    out.array(2);
    out.bulk(b"0");
    out.array(0);
}
