//! Workloads: the tests kvbench runs, each distinct request encoded once with the protocol
//! crate's encoder, and the per-connection [`Batch`] that holds a pipeline's worth of
//! requests and only rewrites the 12 key digits of each before it is sent again.
//!
//! A request is usually one command, but may be several written back to back and answered
//! by as many replies (`multi`: MULTI, 10 SETs, EXEC); [`Batch::replies_per_request`] tells
//! the runner how many. The `cas` test cannot be templated (each command depends on the
//! previous reply) and has its own loop in [`crate::cas`]; `publish` stamps every message
//! and has its own in [`crate::publish`].

use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use protocol::encode::{write_array_header, write_bulk};

use crate::keys::{write_digits, KeyDist, Rng, KEY_DIGITS};

/// Keys (and values) per MSET request, as in redis-benchmark.
pub const MSET_KEYS: usize = 10;

/// SETs queued in each transaction of the `multi` test.
pub const MULTI_SETS: usize = 10;

/// The `evalsha` test's script: increment a counter and (re)set its time to live, as a rate
/// limiter does.
pub const INCR_EXPIRE_SCRIPT: &str =
    "local v = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 100) return v";

/// SHA-1 of [`INCR_EXPIRE_SCRIPT`] in hex, the name `EVALSHA` calls it by (as redis-server
/// 7.0.15's `SCRIPT LOAD` returns it; the run checks the server agrees).
pub const INCR_EXPIRE_SHA: &str = "3849dffe34f7d4a1d9d5b13d4fe81947868ef118";

/// Prefix of the keys SET, GET and MSET use.
const KEY_PREFIX: &[u8] = b"key:";

/// Prefix of INCR's keys: a separate family, as in redis-benchmark, so that running `set`
/// before `incr` does not turn every INCR into a "not an integer" error. The `evalsha` and
/// `cas` tests, which also keep integers, use it too.
pub const COUNTER_PREFIX: &[u8] = b"counter:";

/// One test (`-t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Test {
    /// `PING` as a multi-bulk request (redis-benchmark's PING_MBULK): the server's request
    /// path with no keyspace work.
    Ping,
    /// `SET key:N <value>` (with `PX ttl` under `--ttl`).
    Set,
    /// `GET key:N`.
    Get,
    /// `INCR counter:N`.
    Incr,
    /// `MSET key:N <value>` for 10 keys per request.
    Mset,
    /// SETs and GETs interleaved by `--ratio`.
    Mixed,
    /// A transaction: `MULTI`, 10 × `SET key:N <value>`, `EXEC`, written back to back; one
    /// request is the whole transaction (12 replies).
    Multi,
    /// `EVALSHA <sha> 1 counter:N` of a script doing INCR then EXPIRE, loaded once with
    /// `SCRIPT LOAD` before the clock starts.
    Evalsha,
    /// Check-and-set under contention: `WATCH k`, `GET k`, then `MULTI`, `SET k <value+1>`,
    /// `EXEC`, again while EXEC aborts; one request is one committed increment. Not
    /// pipelined; 10 keys unless `-r` says otherwise.
    Cas,
    /// Pub/Sub: `PUBLISH channel:N <stamped payload>` to `--subscribers` subscriber
    /// connections spread over `--channels` channels; one request is one PUBLISH, and the
    /// deliveries are measured too ([`crate::publish`]).
    Publish,
}

impl Test {
    /// The test's name as given to `-t`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Set => "set",
            Self::Get => "get",
            Self::Incr => "incr",
            Self::Mset => "mset",
            Self::Mixed => "mixed",
            Self::Multi => "multi",
            Self::Evalsha => "evalsha",
            Self::Cas => "cas",
            Self::Publish => "publish",
        }
    }

    /// The keyspace without `-r`: one key (redis-benchmark's rule), but 10 for `cas`, so
    /// that 50 clients contend for few keys without all queuing on one.
    pub fn default_keyspace(self) -> u64 {
        match self {
            Self::Cas => 10,
            _ => 1,
        }
    }
}

/// SET:GET proportions for the mixed test, e.g. `1:10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    /// SETs per cycle.
    pub sets: u32,
    /// GETs per cycle.
    pub gets: u32,
}

impl Ratio {
    fn cycle(self) -> u64 {
        u64::from(self.sets) + u64::from(self.gets)
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.sets, self.gets)
    }
}

impl FromStr for Ratio {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected SETS:GETS such as 1:10, got {s:?}");
        let (sets, gets) = s.split_once(':').ok_or_else(bad)?;
        let sets = sets.trim().parse().map_err(|_| bad())?;
        let gets = gets.trim().parse().map_err(|_| bad())?;
        if sets == 0 && gets == 0 {
            return Err("the ratio needs at least one SET or one GET".to_owned());
        }
        Ok(Self { sets, gets })
    }
}

/// What the requests look like, beyond the test itself.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Value size in bytes (`-d`).
    pub value_size: usize,
    /// Expiry for SETs in milliseconds (`--ttl`).
    pub ttl_ms: Option<u64>,
    /// SET:GET ratio of the mixed test.
    pub ratio: Ratio,
}

impl Spec {
    /// The name a test is reported under: its `-t` name, with the ratio for `mixed`.
    pub fn label(&self, test: Test) -> String {
        match test {
            Test::Mixed => format!("mixed {}", self.ratio),
            other => other.name().to_owned(),
        }
    }
}

/// One argument of a request template.
enum Part<'a> {
    /// A fixed argument.
    Arg(&'a [u8]),
    /// A key: the prefix followed by [`KEY_DIGITS`] digits rewritten per request.
    Key(&'a [u8]),
}

/// An encoded request and where its key digits are.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    /// Offsets of the first digit of each key.
    digits: Vec<usize>,
    /// Commands in the request, hence replies to wait for.
    replies: u64,
}

impl Template {
    /// A request of one command.
    fn encode(parts: &[Part<'_>]) -> Self {
        Self::sequence(&[parts])
    }

    /// A request of several commands written back to back.
    fn sequence(commands: &[&[Part<'_>]]) -> Self {
        let mut buf = BytesMut::new();
        let mut digits = Vec::new();
        for parts in commands {
            write_array_header(&mut buf, parts.len());
            for part in *parts {
                match part {
                    Part::Arg(arg) => write_bulk(&mut buf, arg),
                    Part::Key(prefix) => {
                        let mut key = prefix.to_vec();
                        key.resize(prefix.len() + KEY_DIGITS, b'0');
                        write_bulk(&mut buf, &key);
                        // The digits end just before the bulk's CRLF.
                        digits.push(buf.len() - 2 - KEY_DIGITS);
                    }
                }
            }
        }
        Self {
            bytes: buf.to_vec(),
            digits,
            replies: commands.len() as u64,
        }
    }
}

/// The templates of `test`: one, or SET then GET for the mixed test (none for `cas`, which
/// builds its commands from the replies it gets, nor for `publish`, which stamps each
/// message).
fn templates(test: Test, spec: &Spec) -> Vec<Template> {
    let value = vec![b'x'; spec.value_size];
    let ttl = spec.ttl_ms.map(|ms| ms.to_string());
    let set = || {
        let mut parts = vec![Part::Arg(b"SET"), Part::Key(KEY_PREFIX), Part::Arg(&value)];
        if let Some(ttl) = &ttl {
            parts.extend([Part::Arg(b"PX"), Part::Arg(ttl.as_bytes())]);
        }
        Template::encode(&parts)
    };
    let get = || Template::encode(&[Part::Arg(b"GET"), Part::Key(KEY_PREFIX)]);
    match test {
        Test::Ping => vec![Template::encode(&[Part::Arg(b"PING")])],
        Test::Set => vec![set()],
        Test::Get => vec![get()],
        Test::Incr => vec![Template::encode(&[
            Part::Arg(b"INCR"),
            Part::Key(COUNTER_PREFIX),
        ])],
        Test::Mset => {
            let mut parts = vec![Part::Arg(b"MSET")];
            for _ in 0..MSET_KEYS {
                parts.extend([Part::Key(KEY_PREFIX), Part::Arg(&value)]);
            }
            vec![Template::encode(&parts)]
        }
        Test::Mixed => vec![set(), get()],
        Test::Multi => {
            let set: &[Part<'_>] = &[Part::Arg(b"SET"), Part::Key(KEY_PREFIX), Part::Arg(&value)];
            let mut commands: Vec<&[Part<'_>]> = vec![&[Part::Arg(b"MULTI")]];
            commands.extend([set; MULTI_SETS]);
            commands.push(&[Part::Arg(b"EXEC")]);
            vec![Template::sequence(&commands)]
        }
        Test::Evalsha => vec![Template::encode(&[
            Part::Arg(b"EVALSHA"),
            Part::Arg(INCR_EXPIRE_SHA.as_bytes()),
            Part::Arg(b"1"),
            Part::Key(COUNTER_PREFIX),
        ])],
        Test::Cas | Test::Publish => Vec::new(),
    }
}

/// A connection's pipeline of requests, ready to be written in one go.
///
/// Single-command tests build the buffer once (`pipeline` copies of the request) and then
/// only rewrite key digits. The mixed test reassembles the buffer from its two templates
/// for each batch (a copy per request; no encoding), so SETs and GETs follow the ratio
/// exactly across batches whatever the pipeline depth.
#[derive(Debug)]
pub struct Batch {
    templates: Vec<Template>,
    /// The mixed test's ratio; `None` when every request is `templates[0]`.
    mix: Option<Ratio>,
    /// Replies that answer one request.
    replies_per_request: u64,
    /// Whether a request is a transaction, whose EXEC reply reports each command's errors.
    transaction: bool,
    /// Requests issued so far, to place the next one in the SET:GET cycle.
    issued: u64,
    /// Whether keys vary at all (a keyspace of one key never changes the digits).
    vary_keys: bool,
    buf: Vec<u8>,
    /// End offset in `buf` of each request.
    ends: Vec<usize>,
    /// Offset in `buf` of each key's digits, in request order.
    digits: Vec<usize>,
    /// For each request, the end of its keys in `digits`.
    digit_ends: Vec<usize>,
}

impl Batch {
    /// A batch of up to `pipeline` requests of `test`.
    pub fn new(test: Test, spec: &Spec, pipeline: usize, keyspace: u64) -> Self {
        let templates = templates(test, spec);
        let mut batch = Self {
            replies_per_request: templates.first().map_or(1, |t| t.replies),
            transaction: test == Test::Multi,
            templates,
            mix: (test == Test::Mixed).then_some(spec.ratio),
            issued: 0,
            vary_keys: keyspace > 1,
            buf: Vec::new(),
            ends: Vec::with_capacity(pipeline),
            digits: Vec::new(),
            digit_ends: Vec::with_capacity(pipeline),
        };
        if batch.mix.is_none() {
            for _ in 0..pipeline {
                batch.push(0);
            }
        }
        batch
    }

    /// Replies that answer one request (1 but for transactions).
    pub fn replies_per_request(&self) -> u64 {
        self.replies_per_request
    }

    /// Whether each request is a `MULTI` ... `EXEC` transaction.
    pub fn is_transaction(&self) -> bool {
        self.transaction
    }

    /// Appends a copy of template `index`.
    fn push(&mut self, index: usize) {
        let Some(template) = self.templates.get(index) else {
            return;
        };
        let base = self.buf.len();
        self.buf.extend_from_slice(&template.bytes);
        self.digits
            .extend(template.digits.iter().map(|offset| base + offset));
        self.ends.push(self.buf.len());
        self.digit_ends.push(self.digits.len());
    }

    /// Prepares the next `n` requests (`n` at most the pipeline depth) with fresh keys and
    /// returns their bytes.
    pub fn prepare(&mut self, n: usize, dist: &KeyDist, rng: &mut Rng) -> &[u8] {
        if let Some(ratio) = self.mix {
            self.buf.clear();
            self.ends.clear();
            self.digits.clear();
            self.digit_ends.clear();
            for _ in 0..n {
                let set = self.issued % ratio.cycle() < u64::from(ratio.sets);
                self.issued += 1;
                self.push(if set { 0 } else { 1 });
            }
        }
        let n = n.min(self.ends.len());
        let Some(last) = n.checked_sub(1) else {
            return &[];
        };
        let keys = self.digit_ends.get(last).copied().unwrap_or(0);
        if self.vary_keys {
            for &offset in self.digits.get(..keys).unwrap_or_default() {
                if let Some(slot) = self.buf.get_mut(offset..offset + KEY_DIGITS) {
                    write_digits(slot, dist.sample(rng));
                }
            }
        }
        let end = self.ends.get(last).copied().unwrap_or(0);
        self.buf.get(..end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            value_size: 3,
            ttl_ms: None,
            ratio: Ratio { sets: 1, gets: 2 },
        }
    }

    #[test]
    fn templates_are_resp_commands() {
        let mut spec = spec();
        let set = &templates(Test::Set, &spec)[0];
        assert_eq!(
            set.bytes,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n$3\r\nxxx\r\n"
        );
        assert_eq!(&set.bytes[set.digits[0]..][..KEY_DIGITS], b"000000000000");
        spec.ttl_ms = Some(1500);
        let set = &templates(Test::Set, &spec)[0];
        assert!(set.bytes.ends_with(b"$2\r\nPX\r\n$4\r\n1500\r\n"));
        assert_eq!(
            templates(Test::Ping, &spec)[0].bytes,
            b"*1\r\n$4\r\nPING\r\n"
        );
        let incr = &templates(Test::Incr, &spec)[0];
        assert_eq!(
            incr.bytes,
            b"*2\r\n$4\r\nINCR\r\n$20\r\ncounter:000000000000\r\n"
        );
        let mset = &templates(Test::Mset, &spec)[0];
        assert_eq!(mset.digits.len(), MSET_KEYS);
        assert!(mset.bytes.starts_with(b"*21\r\n$4\r\nMSET\r\n"));
    }

    #[test]
    fn multi_is_one_request_of_twelve_commands() {
        let spec = spec();
        let multi = &templates(Test::Multi, &spec)[0];
        assert_eq!(multi.replies, 12);
        assert_eq!(multi.digits.len(), MULTI_SETS);
        let set = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n$3\r\nxxx\r\n";
        let expected = [
            b"*1\r\n$5\r\nMULTI\r\n".as_slice(),
            &set.repeat(MULTI_SETS),
            b"*1\r\n$4\r\nEXEC\r\n",
        ]
        .concat();
        assert_eq!(multi.bytes, expected);
        for &offset in &multi.digits {
            assert_eq!(&multi.bytes[offset - 4..offset], b"key:");
        }
        // Single-command tests keep one reply per request.
        for test in [Test::Ping, Test::Set, Test::Get, Test::Incr, Test::Mset] {
            assert_eq!(templates(test, &spec)[0].replies, 1, "{test:?}");
        }
        let batch = Batch::new(Test::Multi, &spec, 4, 1000);
        assert_eq!(
            (batch.replies_per_request(), batch.is_transaction()),
            (12, true)
        );
        let batch = Batch::new(Test::Mixed, &spec, 4, 1000);
        assert_eq!(
            (batch.replies_per_request(), batch.is_transaction()),
            (1, false)
        );
    }

    #[test]
    fn multi_draws_each_key_afresh() {
        let dist = KeyDist::Uniform {
            keyspace: 1_000_000,
        };
        let mut rng = Rng::new(5);
        let mut batch = Batch::new(Test::Multi, &spec(), 2, 1_000_000);
        let text = String::from_utf8(batch.prepare(2, &dist, &mut rng).to_vec()).expect("ASCII");
        assert_eq!(text.matches("MULTI").count(), 2);
        assert_eq!(text.matches("EXEC").count(), 2);
        let keys: std::collections::HashSet<&str> = text
            .split("\r\n")
            .filter(|s| s.starts_with("key:"))
            .collect();
        // 20 draws from a million keys: all distinct but for a one-in-5000 chance.
        assert!(keys.len() >= 19, "{keys:?}");
    }

    #[test]
    fn evalsha_calls_the_loaded_script() {
        let evalsha = &templates(Test::Evalsha, &spec())[0];
        assert_eq!(
            evalsha.bytes,
            b"*4\r\n$7\r\nEVALSHA\r\n$40\r\n3849dffe34f7d4a1d9d5b13d4fe81947868ef118\r\n\
              $1\r\n1\r\n$20\r\ncounter:000000000000\r\n"
        );
        assert_eq!(evalsha.replies, 1);
        assert!(templates(Test::Cas, &spec()).is_empty());
    }

    #[test]
    fn keys_are_rewritten_in_place() {
        let dist = KeyDist::Uniform { keyspace: 1000 };
        let mut rng = Rng::new(9);
        let mut batch = Batch::new(Test::Get, &spec(), 4, 1000);
        let first = batch.prepare(4, &dist, &mut rng).to_vec();
        let second = batch.prepare(4, &dist, &mut rng).to_vec();
        assert_eq!(first.len(), second.len());
        assert_ne!(first, second);
        // Every request is GET key:000000000NNN with N < 1000.
        let text = String::from_utf8(first).expect("ASCII");
        assert_eq!(text.matches("GET\r\n$16\r\nkey:000000000").count(), 4);
        // A short final batch is a prefix.
        assert_eq!(batch.prepare(1, &dist, &mut rng).len(), second.len() / 4);
    }

    #[test]
    fn one_key_never_changes() {
        let dist = KeyDist::Uniform { keyspace: 1 };
        let mut rng = Rng::new(9);
        let mut batch = Batch::new(Test::Set, &spec(), 2, 1);
        let bytes = batch.prepare(2, &dist, &mut rng).to_vec();
        assert_eq!(
            bytes,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n$3\r\nxxx\r\n".repeat(2)
        );
    }

    #[test]
    fn mixed_follows_the_ratio_across_batches() {
        let dist = KeyDist::Uniform { keyspace: 10 };
        let mut rng = Rng::new(1);
        let mut batch = Batch::new(Test::Mixed, &spec(), 2, 10);
        let mut sets = 0;
        let mut gets = 0;
        for _ in 0..30 {
            let text =
                String::from_utf8(batch.prepare(2, &dist, &mut rng).to_vec()).expect("ASCII");
            sets += text.matches("SET").count();
            gets += text.matches("GET").count();
        }
        assert_eq!((sets, gets), (20, 40));
    }

    #[test]
    fn ratio_parsing() {
        assert_eq!("1:10".parse(), Ok(Ratio { sets: 1, gets: 10 }));
        assert_eq!("0:1".parse(), Ok(Ratio { sets: 0, gets: 1 }));
        for bad in ["", "1", "1:", ":1", "0:0", "a:b", "1:2:3", "-1:2"] {
            assert!(bad.parse::<Ratio>().is_err(), "{bad:?}");
        }
    }
}
