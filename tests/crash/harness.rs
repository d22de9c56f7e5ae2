//! The crash tests' harness (see [`super`] for what they check): the `kvserver` process
//! (spawned on a directory, SIGKILLed, its output kept), a RESP client that reports a dead
//! server as an error, a deterministic PRNG, the model of every writer's keys and the
//! operations that change them, the concurrent writers, reading a restarted server back
//! into the model (`observe`) and checking it against what was acknowledged
//! (`Harness::verify`), and parsers for the manifest and the log records.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol::RespCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use crate::util::*;
pub use collections::*;

#[path = "collections.rs"]
mod collections;

/// Concurrent writers, each with its own connection and its own keys.
pub const WRITERS: usize = 4;
/// String keys per writer (`w<w>:k<i>`): SET, MSET, APPEND, GETDEL, ...
pub const PLAIN_KEYS: usize = 24;
/// Counter keys per writer (`w<w>:c<i>`): INCR, INCRBY.
pub const COUNTERS: usize = 3;
/// Short-lived keys per writer (`w<w>:e<i>`, TTL of 1-10 ms, outside the model).
pub const SHORT_KEYS: usize = 3;
/// Longest wait for one reply before the server counts as hung.
pub const REPLY_LIMIT: Duration = Duration::from_secs(20);
/// Longest a server may take to start (or to fail to start).
pub const START_LIMIT: Duration = Duration::from_secs(20);
/// Bounds for the remaining time to live of keys given a TTL (all TTLs set are long).
pub const MIN_PTTL: i64 = 1_000_000;
pub const MAX_PTTL: i64 = 200_000_000;
/// Filler keys (about 120 bytes each) in the BGSAVE and BGREWRITEAOF tests, so that a
/// snapshot or rewrite takes long enough for kills to land inside it.
pub const FILLERS: usize = 6_000;

// ----- PRNG ------------------------------------------------------------------------------------

/// SplitMix64: tiny, deterministic, good enough to pick operations and moments.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

/// The seed of one test: `KV_CRASH_SEED` if set, else the clock, mixed with the test's salt.
pub fn test_seed(name: &str) -> u64 {
    let base = std::env::var("KV_CRASH_SEED")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or_else(unix_ms);
    println!("crash::{name}: KV_CRASH_SEED={base}");
    let salt = name.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    Rng(base ^ salt).next()
}

// ----- the model -------------------------------------------------------------------------------

/// A key's value and whether it has a time to live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Val {
    pub data: String,
    pub ttl: bool,
}

/// The keys of one writer that exist, with their values.
pub type State = HashMap<String, Val>;

#[derive(Clone, Copy, Debug)]
pub enum Ttl {
    None,
    Ex(u64),
    Px(u64),
    Keep,
}

/// One command a writer sends, with its effect on the model.
#[derive(Clone, Debug)]
pub enum Op {
    Set {
        key: String,
        value: String,
        ttl: Ttl,
    },
    /// `SET key value PX ms` with a TTL of a few ms on a key outside the model: it must be
    /// gone (not resurrected by a replay) whenever the data is checked.
    SetShort {
        key: String,
        value: String,
        ms: u64,
    },
    Mset(Vec<(String, String)>),
    Rename {
        src: String,
        dst: String,
    },
    SetRange {
        key: String,
        offset: usize,
        patch: String,
    },
    Append {
        key: String,
        suffix: String,
    },
    IncrBy {
        key: String,
        by: i64,
        plain: bool,
    },
    IncrByFloat {
        key: String,
        by: f64,
    },
    Del(Vec<String>),
    GetDel(String),
    Expire {
        key: String,
        ms: u64,
        seconds: bool,
    },
    Persist(String),
    /// A write to a collection key ([`collections`]).
    Coll(CollOp),
    /// Several operations sent as `MULTI` ... `EXEC`: after a crash either all of them are
    /// there or none (the transaction is one operation of the writer's history).
    Multi(Vec<Op>),
}

impl Op {
    pub fn args(&self) -> Vec<String> {
        let s = |text: &str| text.to_owned();
        match self {
            Op::Set { key, value, ttl } => {
                let mut args = vec![s("SET"), key.clone(), value.clone()];
                match ttl {
                    Ttl::None => {}
                    Ttl::Ex(secs) => args.extend([s("EX"), secs.to_string()]),
                    Ttl::Px(ms) => args.extend([s("PX"), ms.to_string()]),
                    Ttl::Keep => args.push(s("KEEPTTL")),
                }
                args
            }
            Op::SetShort { key, value, ms } => {
                vec![
                    s("SET"),
                    key.clone(),
                    value.clone(),
                    s("PX"),
                    ms.to_string(),
                ]
            }
            Op::Rename { src, dst } => vec![s("RENAME"), src.clone(), dst.clone()],
            Op::SetRange { key, offset, patch } => {
                vec![
                    s("SETRANGE"),
                    key.clone(),
                    offset.to_string(),
                    patch.clone(),
                ]
            }
            Op::Mset(pairs) => std::iter::once(s("MSET"))
                .chain(pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]))
                .collect(),
            Op::Append { key, suffix } => vec![s("APPEND"), key.clone(), suffix.clone()],
            Op::IncrBy {
                key, plain: true, ..
            } => vec![s("INCR"), key.clone()],
            Op::IncrBy { key, by, .. } => vec![s("INCRBY"), key.clone(), by.to_string()],
            Op::IncrByFloat { key, by } => vec![s("INCRBYFLOAT"), key.clone(), format!("{by}")],
            Op::Del(keys) => std::iter::once(s("DEL"))
                .chain(keys.iter().cloned())
                .collect(),
            Op::GetDel(key) => vec![s("GETDEL"), key.clone()],
            Op::Expire {
                key,
                ms,
                seconds: true,
            } => vec![s("EXPIRE"), key.clone(), (ms / 1000).to_string()],
            Op::Expire { key, ms, .. } => vec![s("PEXPIRE"), key.clone(), ms.to_string()],
            Op::Persist(key) => vec![s("PERSIST"), key.clone()],
            Op::Coll(op) => op.args(),
            Op::Multi(_) => vec![s("EXEC")],
        }
    }

    /// The commands to send: the operation's own, or `MULTI`, each queued one and `EXEC`.
    pub fn commands(&self) -> Vec<Vec<String>> {
        match self {
            Op::Multi(ops) => std::iter::once(vec!["MULTI".to_owned()])
                .chain(ops.iter().map(Op::args))
                .chain(std::iter::once(vec!["EXEC".to_owned()]))
                .collect(),
            op => vec![op.args()],
        }
    }

    /// The model keys the operation may change.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Op::SetShort { .. } => Vec::new(),
            Op::Rename { src, dst } => vec![src.as_str(), dst.as_str()],
            Op::Set { key, .. }
            | Op::SetRange { key, .. }
            | Op::Append { key, .. }
            | Op::IncrBy { key, .. }
            | Op::IncrByFloat { key, .. }
            | Op::GetDel(key)
            | Op::Expire { key, .. }
            | Op::Persist(key) => vec![key.as_str()],
            Op::Mset(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            Op::Del(keys) => keys.iter().map(String::as_str).collect(),
            Op::Coll(op) => op.keys(),
            Op::Multi(ops) => ops.iter().flat_map(Op::keys).collect(),
        }
    }

    /// Applies the operation to `state` and returns the reply Redis gives for it.
    pub fn apply(&self, state: &mut State) -> Frame {
        match self {
            Op::Set { key, value, ttl } => {
                let ttl = match ttl {
                    Ttl::None => false,
                    Ttl::Ex(_) | Ttl::Px(_) => true,
                    Ttl::Keep => state.get(key).is_some_and(|v| v.ttl),
                };
                state.insert(
                    key.clone(),
                    Val {
                        data: value.clone(),
                        ttl,
                    },
                );
                ok()
            }
            Op::SetShort { .. } => ok(),
            Op::Rename { src, dst } => match state.remove(src) {
                Some(val) => {
                    state.insert(dst.clone(), val);
                    ok()
                }
                None => err("ERR no such key"),
            },
            Op::SetRange { key, offset, patch } => {
                let val = state.entry(key.clone()).or_insert(Val {
                    data: String::new(),
                    ttl: false,
                });
                let mut bytes = std::mem::take(&mut val.data).into_bytes();
                if bytes.len() < offset + patch.len() {
                    bytes.resize(offset + patch.len(), 0);
                }
                bytes[*offset..offset + patch.len()].copy_from_slice(patch.as_bytes());
                val.data = String::from_utf8(bytes).expect("ASCII");
                int(val.data.len() as i64)
            }
            Op::Mset(pairs) => {
                for (key, value) in pairs {
                    state.insert(
                        key.clone(),
                        Val {
                            data: value.clone(),
                            ttl: false,
                        },
                    );
                }
                ok()
            }
            Op::Append { key, suffix } => {
                let val = state.entry(key.clone()).or_insert(Val {
                    data: String::new(),
                    ttl: false,
                });
                val.data.push_str(suffix);
                int(val.data.len() as i64)
            }
            Op::IncrBy { key, by, .. } => {
                let val = state.entry(key.clone()).or_insert(Val {
                    data: "0".to_owned(),
                    ttl: false,
                });
                let new = val.data.parse::<i64>().expect("model counter") + by;
                val.data = new.to_string();
                int(new)
            }
            Op::IncrByFloat { key, by } => {
                let val = state.entry(key.clone()).or_insert(Val {
                    data: "0".to_owned(),
                    ttl: false,
                });
                let new = val.data.parse::<f64>().expect("model float") + by;
                val.data = format!("{new}");
                bulk(&val.data)
            }
            Op::Del(keys) => int(keys.iter().filter(|k| state.remove(*k).is_some()).count() as i64),
            Op::GetDel(key) => state.remove(key).map_or(nil(), |v| bulk(v.data)),
            Op::Expire { key, .. } => match state.get_mut(key) {
                Some(val) => {
                    val.ttl = true;
                    int(1)
                }
                None => int(0),
            },
            Op::Persist(key) => match state.get_mut(key) {
                Some(val) if val.ttl => {
                    val.ttl = false;
                    int(1)
                }
                _ => int(0),
            },
            Op::Coll(op) => op.apply(state),
            Op::Multi(ops) => Frame::Array(ops.iter().map(|op| op.apply(state)).collect()),
        }
    }
}

pub fn plain_key(w: usize, i: usize) -> String {
    format!("w{w}:k{i}")
}

pub fn counter_key(w: usize, i: usize) -> String {
    format!("w{w}:c{i}")
}

pub fn float_key(w: usize) -> String {
    format!("w{w}:f")
}

/// Keys written with a TTL of a few ms (`SetShort`), not part of the model.
pub fn short_key(w: usize, i: usize) -> String {
    format!("w{w}:e{i}")
}

/// The database writer `w` works in: writers alternate between 0 and 1, so that the log
/// interleaves records of both (and their SELECTs).
pub fn db_of(w: usize) -> usize {
    w % 2
}

/// Every key of writer `w` that the model follows.
pub fn universe(w: usize) -> Vec<String> {
    (0..PLAIN_KEYS)
        .map(|i| plain_key(w, i))
        .chain((0..COUNTERS).map(|i| counter_key(w, i)))
        .chain(std::iter::once(float_key(w)))
        .chain(collection_keys(w))
        .collect()
}

/// Which writer owns `key`, if any.
pub fn owner(key: &str) -> Option<usize> {
    let rest = key.strip_prefix('w')?;
    let (w, _) = rest.split_once(':')?;
    let w: usize = w.parse().ok()?;
    let known =
        universe(w).iter().any(|k| k == key) || (0..SHORT_KEYS).any(|i| short_key(w, i) == key);
    (w < WRITERS && known).then_some(w)
}

/// A random operation of writer `w`; `tag` makes the values it writes unique.
pub fn random_op(rng: &mut Rng, w: usize, tag: &str) -> Op {
    if rng.below(10) == 0 {
        let count = rng.between(2, 5);
        return Op::Multi(
            (0..count)
                .map(|i| random_single_op(rng, w, &format!("{tag}m{i}")))
                .collect(),
        );
    }
    random_single_op(rng, w, tag)
}

/// One operation that is not a transaction.
fn random_single_op(rng: &mut Rng, w: usize, tag: &str) -> Op {
    let plain = |rng: &mut Rng| plain_key(w, rng.index(PLAIN_KEYS));
    let any = |rng: &mut Rng| {
        let all = universe(w);
        all[rng.index(all.len())].clone()
    };
    let value = format!("v{tag}");
    if rng.below(4) == 0 {
        return Op::Coll(random_collection_op(rng, w, tag));
    }
    match rng.below(100) {
        0..=15 => Op::Set {
            key: plain(rng),
            value,
            ttl: Ttl::None,
        },
        16..=18 => {
            let src = plain(rng);
            let mut dst = plain(rng);
            while dst == src {
                dst = plain(rng);
            }
            Op::Rename { src, dst }
        }
        19..=21 => Op::SetShort {
            key: short_key(w, rng.index(SHORT_KEYS)),
            value,
            ms: rng.between(1, 10),
        },
        22..=24 => {
            let len = rng.between(1000, 6000) as usize;
            Op::Set {
                key: plain(rng),
                value: format!("big{tag}-{}", "x".repeat(len)),
                ttl: Ttl::None,
            }
        }
        25..=29 => Op::Set {
            key: plain(rng),
            value,
            ttl: Ttl::Ex(rng.between(100_000, 190_000)),
        },
        30..=32 => Op::Set {
            key: plain(rng),
            value,
            ttl: Ttl::Px(rng.between(100_000_000, 190_000_000)),
        },
        33..=35 => Op::Set {
            key: plain(rng),
            value,
            ttl: Ttl::Keep,
        },
        36..=42 => {
            let mut keys: Vec<String> = Vec::new();
            while keys.len() < 3 {
                let key = plain(rng);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            Op::Mset(
                keys.into_iter()
                    .enumerate()
                    .map(|(j, key)| (key, format!("m{tag}.{j}")))
                    .collect(),
            )
        }
        43..=47 => Op::SetRange {
            key: plain(rng),
            offset: rng.between(0, 40) as usize,
            patch: format!("<{tag}>"),
        },
        48..=54 => Op::Append {
            key: plain(rng),
            suffix: format!(".{tag}"),
        },
        55..=66 => Op::IncrBy {
            key: counter_key(w, rng.index(COUNTERS)),
            by: 1,
            plain: true,
        },
        67..=71 => Op::IncrBy {
            key: counter_key(w, rng.index(COUNTERS)),
            by: rng.between(0, 2000) as i64 - 1000,
            plain: false,
        },
        72..=77 => Op::IncrByFloat {
            key: float_key(w),
            by: [0.25, 0.5, 1.5, -0.75][rng.index(4)],
        },
        78..=83 => {
            let first = any(rng);
            let mut keys = vec![first];
            if rng.below(2) == 0 {
                let second = any(rng);
                if !keys.contains(&second) {
                    keys.push(second);
                }
            }
            Op::Del(keys)
        }
        84..=86 => Op::GetDel(plain(rng)),
        87..=94 => Op::Expire {
            key: any(rng),
            ms: rng.between(100_000_000, 190_000_000),
            seconds: rng.below(2) == 0,
        },
        _ => Op::Persist(any(rng)),
    }
}

/// What one writer did in one round: `ops[..acked]` were acknowledged; a further op, if
/// any, was in flight when the server died (sent or about to be sent, no reply).
#[derive(Default, Clone)]
pub struct RoundLog {
    pub ops: Vec<Op>,
    pub acked: usize,
}

impl RoundLog {
    pub fn in_flight(&self) -> Option<&Op> {
        self.ops.get(self.acked)
    }
}

/// The `k` (0..=ops.len()) for which `start` with `ops[..k]` applied equals `observed` on
/// the keys of `universe`.
pub fn prefix_matches(
    start: &State,
    ops: &[Op],
    observed: &State,
    universe: &[String],
) -> Vec<usize> {
    let mut state = start.clone();
    let differs = |state: &State, key: &str| state.get(key) != observed.get(key);
    let mut mismatched = universe.iter().filter(|k| differs(&state, k)).count();
    let mut matches = Vec::new();
    if mismatched == 0 {
        matches.push(0);
    }
    for (i, op) in ops.iter().enumerate() {
        let mut keys = op.keys();
        keys.sort_unstable();
        keys.dedup();
        let before: Vec<bool> = keys.iter().map(|k| differs(&state, k)).collect();
        op.apply(&mut state);
        for (key, was) in keys.iter().zip(before) {
            let now = differs(&state, key);
            match (was, now) {
                (true, false) => mismatched -= 1,
                (false, true) => mismatched += 1,
                _ => {}
            }
        }
        if mismatched == 0 {
            matches.push(i + 1);
        }
    }
    matches
}

pub fn replay(start: &State, ops: &[Op]) -> State {
    let mut state = start.clone();
    for op in ops {
        op.apply(&mut state);
    }
    state
}

pub fn short(val: Option<&Val>) -> String {
    match val {
        None => "(absent)".to_owned(),
        Some(val) => {
            let ttl = if val.ttl { " +ttl" } else { "" };
            if val.data.len() > 48 {
                format!("{:?}...({} bytes){ttl}", &val.data[..40], val.data.len())
            } else {
                format!("{:?}{ttl}", val.data)
            }
        }
    }
}

/// The keys on which `expected` and `observed` differ, one line each.
pub fn diff(expected: &State, observed: &State, universe: &[String]) -> String {
    let mut out = String::new();
    for key in universe {
        let (e, o) = (expected.get(key), observed.get(key));
        if e != o {
            out.push_str(&format!(
                "    {key}: expected {}, found {}\n",
                short(e),
                short(o)
            ));
        }
    }
    out
}

// ----- a client that reports a dead server as an error -----------------------------------------

/// A raw RESP client whose errors are values: a killed server shows up as `Err`.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    pub codec: RespCodec,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            codec: RespCodec::default(),
        }
    }

    pub async fn connect(port: u16) -> io::Result<Conn> {
        Ok(Conn::new(TcpStream::connect(("127.0.0.1", port)).await?))
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub async fn read(&mut self) -> io::Result<Frame> {
        loop {
            let decoded = self
                .codec
                .decode(&mut self.buf)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?;
            if let Some(frame) = decoded {
                return Ok(frame);
            }
            let read = tokio::time::timeout(REPLY_LIMIT, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "no reply within the limit")
                })??;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    pub async fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Frame> {
        self.send_raw(&encode(args)).await?;
        self.read().await
    }

    /// Sends an operation's commands in one write and returns the last reply (EXEC's for a
    /// transaction, after checking the `+OK` and `+QUEUED` before it).
    pub async fn send_op(&mut self, op: &Op) -> io::Result<Frame> {
        let commands = op.commands();
        let mut bytes = Vec::new();
        for command in &commands {
            bytes.extend_from_slice(&encode(command));
        }
        self.send_raw(&bytes).await?;
        for (i, command) in commands.iter().enumerate() {
            let reply = self.read().await?;
            if i + 1 == commands.len() {
                return Ok(reply);
            }
            let expected = if i == 0 { ok() } else { simple("QUEUED") };
            if reply != expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{command:?} replied {reply:?}"),
                ));
            }
        }
        Err(io::ErrorKind::InvalidInput.into())
    }

    /// A command that must succeed (the server is alive).
    pub async fn must<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        match self.cmd(args).await {
            Ok(frame) => frame,
            Err(err) => panic!(
                "{:?} failed: {err}",
                args.iter()
                    .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
                    .collect::<Vec<_>>()
            ),
        }
    }
}

// ----- the server process ----------------------------------------------------------------------

/// Everything the process printed (stdout and stderr, interleaved by chunks).
pub type Output = Arc<Mutex<Vec<u8>>>;

/// A running `kvserver`, SIGKILLed when dropped.
pub struct Server {
    pub guard: ChildGuard,
    pub port: u16,
    pub output: Output,
    pub readers: Vec<JoinHandle<()>>,
}

pub fn spawn_process(
    binary: &Path,
    dir: &Path,
    port: u16,
    args: &[&str],
) -> (ChildGuard, Output, Vec<JoinHandle<()>>) {
    spawn_process_with_env(binary, dir, port, args, &[])
}

/// [`spawn_process`] with extra environment variables (the disk-fault shim's).
pub fn spawn_process_with_env(
    binary: &Path,
    dir: &Path,
    port: u16,
    args: &[&str],
    envs: &[(String, String)],
) -> (ChildGuard, Output, Vec<JoinHandle<()>>) {
    use std::io::Read;
    let mut child = Command::new(binary)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir)
        .args(["--loglevel", "warning"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kvserver");
    let output: Output = Arc::default();
    let mut readers = Vec::new();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("stdout")),
        Box::new(child.stderr.take().expect("stderr")),
    ];
    for mut pipe in pipes {
        let output = Arc::clone(&output);
        readers.push(std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                output.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        }));
    }
    (ChildGuard { child }, output, readers)
}

pub fn output_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.lock().unwrap()).into_owned()
}

impl Server {
    /// Starts the binary on `dir` and waits until it answers (after loading its data).
    pub async fn start(binary: &Path, dir: &Path, args: &[&str]) -> (Server, Conn) {
        Self::start_with_env(binary, dir, args, &[]).await
    }

    /// [`Server::start`] with extra environment variables.
    pub async fn start_with_env(
        binary: &Path,
        dir: &Path,
        args: &[&str],
        envs: &[(String, String)],
    ) -> (Server, Conn) {
        let canonical = std::fs::canonicalize(dir).expect("canonical dir");
        for _ in 0..5 {
            let port = free_port();
            let (guard, output, readers) = spawn_process_with_env(binary, dir, port, args, envs);
            let mut server = Server {
                guard,
                port,
                output,
                readers,
            };
            if let Some(stream) = connect_with_retry(port, START_LIMIT).await {
                let mut conn = Conn::new(stream);
                // The listener is bound before loading; the first reply comes after it.
                if let Ok(reply) = conn.cmd(&["CONFIG", "GET", "dir"]).await {
                    // Make sure this is our server, not another test's on a reused port.
                    if reply == bulks(&["dir", canonical.to_string_lossy().as_ref()]) {
                        return (server, conn);
                    }
                }
            }
            let exited = server.guard.child.try_wait().expect("try_wait");
            server.kill();
            let output = server.output();
            if output.contains("could not bind") || exited.is_none() {
                // Lost the port to another process between choosing and binding it.
                continue;
            }
            panic!(
                "kvserver {args:?} on {} did not start ({exited:?}):\n{output}",
                dir.display()
            );
        }
        panic!("kvserver did not start after 5 attempts");
    }

    /// SIGKILL (`Child::kill` on Unix), then reaps the process.
    pub fn kill(&mut self) {
        let _ = self.guard.child.kill();
        let _ = self.guard.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    pub fn output(&self) -> String {
        output_text(&self.output)
    }

    /// The output once it contains every one of `needles`, or as it is after 20 s: the
    /// server's output is read by threads of their own, which may lag behind a reply on a
    /// loaded machine.
    pub async fn output_containing(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = self.output();
            if needles.iter().all(|needle| output.contains(needle)) || Instant::now() >= deadline {
                return output;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Starts the binary on `dir` expecting start-up to fail: returns its exit status and output.
pub fn start_expecting_failure(binary: &Path, dir: &Path, args: &[&str]) -> (ExitStatus, String) {
    let (mut guard, output, readers) = spawn_process(binary, dir, free_port(), args);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = guard.child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            drop(guard);
            panic!(
                "kvserver started (or hung) on a damaged directory instead of failing:\n{}",
                output_text(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for reader in readers {
        let _ = reader.join();
    }
    (status, output_text(&output))
}

// ----- files -----------------------------------------------------------------------------------

pub const AOF_DIR: &str = "appendonlydir";
pub const MANIFEST: &str = "appendonly.aof.manifest";

/// The manifest's base (name, seq) and incr files (name, seq), in order.
#[derive(Debug, Default)]
pub struct ManifestInfo {
    pub base: Option<(String, u64)>,
    pub incrs: Vec<(String, u64)>,
}

pub fn read_manifest(dir: &Path) -> ManifestInfo {
    let path = dir.join(AOF_DIR).join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let mut info = ManifestInfo::default();
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.is_empty() || tokens[0].starts_with('#') {
            continue;
        }
        let field = |name: &str| {
            tokens
                .chunks(2)
                .find(|pair| pair[0] == name)
                .and_then(|pair| pair.get(1))
                .map(|v| v.to_string())
        };
        let name = field("file").expect("manifest line names a file");
        let seq: u64 = field("seq").and_then(|s| s.parse().ok()).expect("seq");
        match field("type").as_deref() {
            Some("b") => info.base = Some((name, seq)),
            Some("i") => info.incrs.push((name, seq)),
            _ => {}
        }
    }
    info
}

/// One whole record of a log file: byte range, arguments, and where each bulk's `$` is.
pub struct Record {
    pub start: usize,
    pub end: usize,
    pub args: Vec<Vec<u8>>,
    pub dollars: Vec<usize>,
}

/// Splits a log file into its whole records (a torn tail is left out).
pub fn parse_records(data: &[u8]) -> Vec<Record> {
    fn line(data: &[u8], pos: usize, marker: u8) -> Option<(usize, usize)> {
        if data.get(pos) != Some(&marker) {
            return None;
        }
        let end = pos + data[pos..].windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&data[pos + 1..end])
            .ok()?
            .parse()
            .ok()?;
        Some((n, end + 2))
    }
    let mut records = Vec::new();
    let mut pos = 0;
    'records: while pos < data.len() {
        let start = pos;
        let Some((count, mut at)) = line(data, pos, b'*') else {
            break;
        };
        let mut args = Vec::new();
        let mut dollars = Vec::new();
        for _ in 0..count {
            dollars.push(at);
            let Some((len, body)) = line(data, at, b'$') else {
                break 'records;
            };
            if body + len + 2 > data.len() {
                break 'records;
            }
            args.push(data[body..body + len].to_vec());
            at = body + len + 2;
        }
        records.push(Record {
            start,
            end: at,
            args,
            dollars,
        });
        pos = at;
    }
    records
}

/// Names of the temporary files (`temp-*`) in `dir` and its AOF directory: what a process
/// killed while writing a file atomically leaves behind.
pub fn temp_files(dir: &Path) -> Vec<String> {
    [dir.to_path_buf(), dir.join(AOF_DIR)]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with("temp-"))
        .collect()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

// ----- checking a restarted server -------------------------------------------------------------

/// The filler key number `i` and its value: written once before the first round, never
/// changed, so that snapshots and rewrites have enough data to take a while.
pub fn filler(i: usize) -> (String, String) {
    (
        format!("fill:{i}"),
        format!("filler-{i}-{}", "f".repeat(100)),
    )
}

/// Reads every writer's keys (value and TTL) and checks that nothing else exists but the
/// `fillers` filler keys (database 0), all with their values. Short-lived keys must be gone:
/// call this only when every TTL they were given has passed. Leaves `conn` in database 0.
pub async fn observe(conn: &mut Conn, context: &str, fillers: usize) -> Vec<State> {
    // Every short TTL (at most 10 ms from before the kill) has passed.
    tokio::time::sleep(Duration::from_millis(15)).await;
    let mut states = vec![State::new(); WRITERS];
    for db in 0..2 {
        let writers: Vec<usize> = (0..WRITERS).filter(|&w| db_of(w) == db).collect();
        assert_eq!(conn.must(&["SELECT", &db.to_string()]).await, ok());
        let fillers = if db == 0 { fillers } else { 0 };
        let context = format!("{context}, db {db}");
        let present = observe_db(conn, &context, &writers, &mut states).await;
        // Nothing that no writer wrote: SCAN sees exactly the keys read, and the fillers.
        let mut scanned = HashSet::new();
        let mut fillers_seen = 0;
        let mut cursor = "0".to_owned();
        loop {
            let reply = conn.must(&["SCAN", cursor.as_str(), "COUNT", "1000"]).await;
            let mut items = array_items(reply).into_iter();
            cursor = text_of(&items.next().expect("cursor"));
            for key in array_items(items.next().expect("keys")) {
                let key = text_of(&key);
                let is_filler = key
                    .strip_prefix("fill:")
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i < fillers);
                if is_filler {
                    fillers_seen += 1;
                    continue;
                }
                assert!(
                    owner(&key).is_some_and(|w| db_of(w) == db),
                    "{context}: key {key:?} exists but no writer ever wrote it here"
                );
                scanned.insert(key);
            }
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(scanned, present, "{context}: SCAN and GET disagree");
        assert_eq!(fillers_seen, fillers, "{context}: filler keys");
        // DBSIZE may still count expired short-lived keys that nothing has reclaimed yet.
        let dbsize = int_of(&conn.must(&["DBSIZE"]).await) as usize;
        let expected = present.len() + fillers;
        let short = writers.len() * SHORT_KEYS;
        assert!(
            (expected..=expected + short).contains(&dbsize),
            "{context}: DBSIZE {dbsize}, but {expected} keys exist"
        );
        for chunk in (0..fillers).collect::<Vec<_>>().chunks(1000) {
            let mut args = vec!["MGET".to_owned()];
            args.extend(chunk.iter().map(|&i| filler(i).0));
            let values = array_items(conn.must(&args).await);
            for (&i, value) in chunk.iter().zip(values) {
                assert_eq!(value, bulk(filler(i).1), "{context}: filler {i}");
            }
        }
    }
    assert_eq!(conn.must(&["SELECT", "0"]).await, ok());
    states
}

/// Reads the keys of `writers` in the selected database into `states`; returns the names
/// of those that exist.
pub async fn observe_db(
    conn: &mut Conn,
    context: &str,
    writers: &[usize],
    states: &mut [State],
) -> HashSet<String> {
    let keys: Vec<String> = writers.iter().flat_map(|&w| universe(w)).collect();
    let shorts: Vec<String> = writers
        .iter()
        .flat_map(|&w| (0..SHORT_KEYS).map(move |i| short_key(w, i)))
        .collect();
    let mut pipeline = Vec::new();
    for key in &keys {
        match Kind::of_key(key) {
            Some(kind) => pipeline.extend(encode(&kind.read_args(key))),
            None => pipeline.extend(encode(&["GET", key.as_str()])),
        }
        pipeline.extend(encode(&["PTTL", key.as_str()]));
    }
    for key in &shorts {
        pipeline.extend(encode(&["GET", key.as_str()]));
    }
    conn.send_raw(&pipeline).await.expect("send reads");
    let mut present = HashSet::new();
    for key in &keys {
        let value = conn.read().await.expect("GET reply");
        let pttl = int_of(&conn.read().await.expect("PTTL reply"));
        let w = owner(key).expect("own key");
        // A collection reads as its canonical form (see `collections`); empty means absent.
        let value = match Kind::of_key(key) {
            Some(kind) => kind
                .canonical_from_reply(value)
                .map_or(Frame::Null, |text| Frame::Bulk(text.into())),
            None => value,
        };
        match value {
            Frame::Null => assert_eq!(pttl, -2, "{context}: absent {key} has PTTL {pttl}"),
            Frame::Bulk(data) => {
                let ttl = match pttl {
                    -1 => false,
                    MIN_PTTL..=MAX_PTTL => true,
                    other => panic!("{context}: {key} has PTTL {other}; TTLs set are long"),
                };
                present.insert(key.clone());
                states[w].insert(
                    key.clone(),
                    Val {
                        data: String::from_utf8(data.to_vec()).expect("UTF-8 value"),
                        ttl,
                    },
                );
            }
            other => panic!("{context}: GET {key} replied {other:?}"),
        }
    }
    for key in &shorts {
        let value = conn.read().await.expect("GET reply");
        assert_eq!(
            value,
            nil(),
            "{context}: {key} was set with a TTL of at most 10 ms, long past, yet exists"
        );
    }
    present
}

/// Lets every short-lived key expire and deletes them (lazily, by reading them), so that no
/// expiry adds a record to the log after this.
pub async fn expire_short_keys(conn: &mut Conn) {
    tokio::time::sleep(Duration::from_millis(15)).await;
    for w in 0..WRITERS {
        assert_eq!(conn.must(&["SELECT", &db_of(w).to_string()]).await, ok());
        for i in 0..SHORT_KEYS {
            assert_eq!(conn.must(&["GET", short_key(w, i).as_str()]).await, nil());
        }
    }
    assert_eq!(conn.must(&["SELECT", "0"]).await, ok());
}

/// What a restart must show for each writer.
#[derive(Clone, Copy, PartialEq)]
pub enum Expect {
    /// `appendfsync always`: every acknowledged op, plus possibly the one in flight.
    Durable,
    /// Any prefix of what was sent (`everysec`, snapshots).
    Prefix,
    /// Every acknowledged op but the last one of writer `.0` (its record was cut off).
    AllButLastOf(usize),
}

// ----- the harness -----------------------------------------------------------------------------

/// What happens just before the kill.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Nothing: kill during plain writes.
    Plain,
    /// BGREWRITEAOF, then kill `0..=30` ms later.
    Rewrite,
    /// BGREWRITEAOF, wait until it finished, write a little more, kill.
    RewriteDone,
    /// BGSAVE, then kill `0..=30` ms later.
    Save,
}

pub struct Harness {
    pub name: &'static str,
    pub binary: PathBuf,
    pub dir: tempfile::TempDir,
    pub fsync: &'static str,
    pub rng: Rng,
    pub round: usize,
    /// Filler keys loaded before the first round.
    pub fillers: usize,
    /// Per writer: its keys as the server holds them now (checked after the last restart).
    pub states: Vec<State>,
    /// Per writer: every op that took effect, in order (from an empty database).
    pub history: Vec<Vec<Op>>,
    /// For the report: in-flight ops found applied / not applied after a restart,
    /// acknowledged ops in all, and acknowledged ops missing after a restart (`everysec`).
    pub in_flight_applied: usize,
    pub in_flight_lost: usize,
    pub acked_total: usize,
    pub lost_acked: usize,
}

impl Harness {
    pub fn new(name: &'static str, fsync: &'static str) -> Harness {
        let binary = kvserver_binary();
        let seed = test_seed(name);
        Harness {
            name,
            binary,
            dir: tempfile::tempdir().expect("tempdir"),
            fsync,
            rng: Rng(seed),
            round: 0,
            fillers: 0,
            states: vec![State::new(); WRITERS],
            history: vec![Vec::new(); WRITERS],
            in_flight_applied: 0,
            in_flight_lost: 0,
            acked_total: 0,
            lost_acked: 0,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn context(&self) -> String {
        format!("crash::{} round {}", self.name, self.round)
    }

    /// Writes `n` filler keys (acknowledged, so durable from then on).
    pub async fn load_fillers(&mut self, conn: &mut Conn, n: usize) {
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let mut args = vec!["MSET".to_owned()];
            for &i in chunk {
                let (key, value) = filler(i);
                args.extend([key, value]);
            }
            assert_eq!(conn.must(&args).await, ok());
        }
        self.fillers = n;
    }

    pub async fn start(&self) -> (Server, Conn) {
        Server::start(
            &self.binary,
            self.dir(),
            &[
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--save",
                "",
            ],
        )
        .await
    }

    /// Checks the restarted server against the writers' logs of the last round, then makes
    /// what it holds the model's state.
    pub async fn verify(
        &mut self,
        conn: &mut Conn,
        server: &Server,
        logs: &[RoundLog],
        expect: Expect,
    ) {
        let context = self.context();
        let observed = observe(conn, &context, self.fillers).await;
        for (w, observed) in observed.into_iter().enumerate() {
            let empty = RoundLog::default();
            let log = logs.get(w).unwrap_or(&empty);
            let keys = universe(w);
            let matches = prefix_matches(&self.states[w], &log.ops, &observed, &keys);
            let acked = log.acked;
            let in_flight = log.in_flight().is_some();
            let chosen = match expect {
                Expect::Durable if in_flight && matches.contains(&(acked + 1)) => Some(acked + 1),
                Expect::Durable => matches.contains(&acked).then_some(acked),
                Expect::AllButLastOf(x) if x == w => {
                    matches.contains(&(acked - 1)).then_some(acked - 1)
                }
                Expect::AllButLastOf(_) => matches.contains(&acked).then_some(acked),
                Expect::Prefix => matches.last().copied(),
            };
            let Some(k) = chosen else {
                let wanted = match expect {
                    Expect::AllButLastOf(x) if x == w => acked - 1,
                    _ => acked,
                };
                let expected = replay(&self.states[w], &log.ops[..wanted]);
                panic!(
                    "{context}: writer {w} lost writes or shows ones never made.\n  \
                     {acked} ops acknowledged this round, in flight: {:?}\n  \
                     prefixes of this round's ops matching the data: {:?}\n  \
                     differences from the model after {wanted} ops:\n{}  \
                     server output:\n{}",
                    log.in_flight().map(Op::args),
                    &matches[..matches.len().min(20)],
                    diff(&expected, &observed, &keys),
                    server.output()
                );
            };
            if in_flight && expect == Expect::Durable {
                if k > acked {
                    self.in_flight_applied += 1;
                } else {
                    self.in_flight_lost += 1;
                }
            }
            self.acked_total += acked;
            self.lost_acked += acked.saturating_sub(k);
            self.history[w].extend(log.ops[..k].iter().cloned());
            self.states[w] = observed;
        }
    }

    /// Runs the writers against `server` for a random time, does `action`, SIGKILLs the
    /// server and returns what every writer did. Prints one line about the round.
    pub async fn write_and_kill(&mut self, server: &mut Server, action: Action) -> Vec<RoundLog> {
        self.round += 1;
        let round_seed = self.rng.next();
        let mut rng = Rng(round_seed);
        let stop = Arc::new(AtomicBool::new(false));
        let writers = self.spawn_writers(server.port, round_seed, &stop);
        let write_ms = rng.between(50, 400);
        tokio::time::sleep(Duration::from_millis(write_ms)).await;
        let mut detail = String::new();
        match action {
            Action::Plain => {}
            Action::Rewrite | Action::RewriteDone | Action::Save => {
                let mut control = Conn::connect(server.port)
                    .await
                    .expect("control connection");
                let (command, started) = if action == Action::Save {
                    ("BGSAVE", "Background saving started")
                } else {
                    (
                        "BGREWRITEAOF",
                        "Background append only file rewriting started",
                    )
                };
                assert_eq!(control.must(&[command]).await, simple(started), "{command}");
                if action == Action::RewriteDone {
                    let waited = Instant::now();
                    loop {
                        let info = text_of(&control.must(&["INFO", "persistence"]).await);
                        if info_field(&info, "aof_rewrite_in_progress").as_deref() == Some("0") {
                            assert_eq!(
                                info_field(&info, "aof_last_bgrewrite_status").as_deref(),
                                Some("ok"),
                                "{info}"
                            );
                            break;
                        }
                        assert!(waited.elapsed() < Duration::from_secs(20), "rewrite hangs");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let more = rng.between(10, 60);
                    detail = format!(
                        ", rewrite done after {} ms, kill {more} ms later",
                        waited.elapsed().as_millis()
                    );
                    tokio::time::sleep(Duration::from_millis(more)).await;
                } else {
                    let delay = rng.between(0, 30);
                    detail = format!(", {command} {delay} ms before the kill");
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
            }
        }
        server.kill();
        let logs = join_writers(writers).await;
        println!(
            "crash::{} round {} ({action:?}, seed {round_seed}): killed after {write_ms} ms{detail}; \
             acked {:?}, in flight {:?}",
            self.name,
            self.round,
            logs.iter().map(|l| l.acked).collect::<Vec<_>>(),
            logs.iter().map(|l| l.in_flight().is_some() as u8).collect::<Vec<_>>(),
        );
        logs
    }

    pub fn spawn_writers(
        &self,
        port: u16,
        round_seed: u64,
        stop: &Arc<AtomicBool>,
    ) -> Vec<tokio::task::JoinHandle<Result<RoundLog, String>>> {
        (0..WRITERS)
            .map(|w| {
                let state = self.states[w].clone();
                let stop = Arc::clone(stop);
                let rng = Rng(round_seed ^ (w as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let tag = format!("r{}w{w}n", self.round);
                tokio::spawn(writer(port, w, rng, tag, state, stop))
            })
            .collect()
    }
}

pub async fn join_writers(
    writers: Vec<tokio::task::JoinHandle<Result<RoundLog, String>>>,
) -> Vec<RoundLog> {
    let mut logs = Vec::new();
    for writer in writers {
        match writer.await.expect("writer task") {
            Ok(log) => logs.push(log),
            Err(message) => panic!("{message}"),
        }
    }
    logs
}

/// One writer: random ops on its own keys, one at a time, until the server dies or `stop`.
/// Every reply must be the one the model predicts.
pub async fn writer(
    port: u16,
    w: usize,
    mut rng: Rng,
    tag: String,
    mut state: State,
    stop: Arc<AtomicBool>,
) -> Result<RoundLog, String> {
    let mut log = RoundLog::default();
    let Ok(mut conn) = Conn::connect(port).await else {
        return Ok(log);
    };
    match conn.cmd(&["SELECT", &db_of(w).to_string()]).await {
        Ok(reply) if reply == ok() => {}
        Ok(reply) => return Err(format!("writer {w}: SELECT replied {reply:?}")),
        Err(_) => return Ok(log),
    }
    while !stop.load(Ordering::SeqCst) {
        let op = random_op(&mut rng, w, &format!("{tag}{}", log.ops.len()));
        log.ops.push(op.clone());
        let reply = conn.send_op(&op).await;
        match reply {
            Ok(reply) => {
                let expected = op.apply(&mut state);
                if reply != expected {
                    let history: Vec<String> = log
                        .ops
                        .iter()
                        .filter(|earlier| earlier.keys().iter().any(|k| op.keys().contains(k)))
                        .map(|earlier| format!("  {:?}\n", earlier.commands()))
                        .collect();
                    return Err(format!(
                        "writer {w}: {:?} replied {reply:?}, the model expects {expected:?}; \
                         this round's ops on its keys:\n{}",
                        op.args(),
                        history.concat()
                    ));
                }
                log.acked += 1;
            }
            Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                return Err(format!("writer {w}: {:?}: no reply: {err}", op.args()));
            }
            Err(err) if err.kind() == io::ErrorKind::InvalidData => {
                return Err(format!("writer {w}: {:?}: {err}", op.commands()));
            }
            // The server died: this op is in flight.
            Err(_) => break,
        }
    }
    Ok(log)
}

/// Polls `INFO persistence` every 5 ms until `field` is `value`; fails after 20 s.
pub async fn poll_info(conn: &mut Conn, field: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = text_of(&conn.must(&["INFO", "persistence"]).await);
        if info_field(&info, field).as_deref() == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{field} never became {value}:\n{info}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
