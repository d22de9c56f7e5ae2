//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: Lua scripts that run as one atomic unit.
//!
//! The Lua side (sandbox, `redis.*`, conversions) is [`crate::script`]; this module runs a
//! script against the keyspace. A script runs on the connection's thread, in that thread's
//! [`Engine`], inside an atomic section ([`crate::store::Store::hold_shards`]), exactly as
//! EXEC runs a queue: the commands it calls run with their ordinary handlers, re-entering
//! the shards the section holds, and their effects are captured into one unit.
//!
//! Which shards: a script that declares its keys holds only the shards of its KEYS (in the
//! caller's database), so clients on other shards carry on. Before each `redis.call` the
//! command's shards (from the catalogue's key positions) are checked: one the section does
//! not hold is added without waiting ([`HeldShards::try_add`]); if that fails (another client
//! has it; waiting could deadlock), or the command needs every shard (FLUSHALL, KEYS...) or
//! another database, the run is undone (the values its writes replaced are put back, its
//! captured effects dropped) and the script runs again holding every shard of every
//! database, as will every later run of that script. See SPEC.md 6.12.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use protocol::catalogue::CommandFlags;
use protocol::{Argv, Frame, Version};

use super::transaction::{add_command_shards, EVERY_SHARD};
use super::{arg_i64, is, lookup, reply_help, resolve_subcommand, run_tracked, CmdError, Ctx};
use super::{Reply, Session};
use crate::script::engine::{Engine, Host, Script, ScriptCache};
use crate::script::ScriptFlags;
use crate::shared::Shared;
use crate::store::{HeldShards, Lookup, Value};
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};

/// Redis's default `busy-reply-threshold` (`lua-time-limit`), in milliseconds.
pub const DEFAULT_BUSY_THRESHOLD_MS: u64 = 5000;

/// The reply other clients get while a script runs past the busy threshold.
pub const BUSY: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Server-wide scripting state.
pub struct Scripting {
    /// Script bodies by SHA-1 (SCRIPT LOAD, EVAL).
    pub cache: ScriptCache,
    /// Names of functions that touched shards beyond their KEYS: they run holding every shard
    /// (scripts keep this flag in their cache entry).
    undeclared_functions: Mutex<HashSet<Vec<u8>>>,
    /// `busy-reply-threshold` in milliseconds.
    pub busy_threshold_ms: AtomicU64,
    /// Scripts running past the threshold: while non-zero, other commands get `-BUSY` (shared
    /// with the connection threads' lock waits, see `sync::busy_wait`).
    pub busy: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The busy scripts, for SCRIPT KILL.
    busy_runs: Mutex<Vec<std::sync::Arc<BusyRun>>>,
    /// Connection threads (bit = index) running a busy script: they accept nothing meanwhile.
    stuck_workers: AtomicU64,
    /// How many connection threads there are (0 until they start).
    worker_count: std::sync::atomic::AtomicUsize,
    /// Signalled when every connection thread is running a busy script: the main thread then
    /// accepts in their place (see `accept`).
    pub every_worker_stuck: tokio::sync::Notify,
}

/// A script that ran past the busy threshold.
#[derive(Default)]
struct BusyRun {
    /// It called a write command: SCRIPT KILL cannot stop it.
    wrote: AtomicBool,
    /// SCRIPT KILL asked it to stop.
    killed: AtomicBool,
}

impl Default for Scripting {
    fn default() -> Self {
        Scripting {
            cache: ScriptCache::new(),
            undeclared_functions: Mutex::new(HashSet::new()),
            busy_threshold_ms: AtomicU64::new(DEFAULT_BUSY_THRESHOLD_MS),
            busy: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            busy_runs: Mutex::new(Vec::new()),
            stuck_workers: AtomicU64::new(0),
            worker_count: std::sync::atomic::AtomicUsize::new(0),
            every_worker_stuck: tokio::sync::Notify::new(),
        }
    }
}

impl Scripting {
    /// True while a script runs past the busy threshold (one relaxed load: the dispatcher
    /// asks before every command).
    #[inline]
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) != 0
    }

    /// Connection threads running a script past the busy threshold, as a bit mask.
    pub fn stuck_workers(&self) -> u64 {
        self.stuck_workers.load(Ordering::Relaxed)
    }

    /// Records how many connection threads there are.
    pub fn set_worker_count(&self, count: usize) {
        self.worker_count.store(count, Ordering::Relaxed);
    }

    /// True if every connection thread runs a script past the busy threshold (threads past
    /// the 64th are not tracked and count as busy).
    pub fn all_workers_stuck(&self) -> bool {
        let count = self.worker_count.load(Ordering::Relaxed).min(64);
        let all = if count == 64 {
            u64::MAX
        } else {
            (1u64 << count) - 1
        };
        count > 0 && self.stuck_workers() & all == all
    }
}

thread_local! {
    /// This thread's Lua state, made on first use.
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    /// The connection thread's index (`None` on other threads).
    static WORKER_INDEX: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Records the calling connection thread's index, so that a busy script can tell the accept
/// loop to send new connections elsewhere.
pub fn set_worker_index(index: usize) {
    WORKER_INDEX.with(|cell| cell.set(Some(index)));
}

/// The bit of the calling connection thread in [`Scripting::stuck_workers`] (0 elsewhere).
fn worker_bit() -> u64 {
    WORKER_INDEX
        .with(std::cell::Cell::get)
        .filter(|&index| index < 64)
        .map_or(0, |index| 1 << index)
}

thread_local! {
    /// The buffer called commands write their replies into, kept between runs.
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A reply buffer for a run's calls: this thread's kept one (so a run allocates none).
fn take_scratch() -> Reply {
    let buf = SCRATCH.with(|scratch| std::mem::take(&mut *scratch.borrow_mut()));
    Reply {
        buf,
        version: Version::Resp2,
    }
}

/// Keeps a run's reply buffer for the next run, unless a large reply grew it.
fn give_back_scratch(mut buf: BytesMut) {
    if buf.capacity() <= 64 * 1024 {
        buf.clear();
        SCRATCH.with(|scratch| *scratch.borrow_mut() = buf);
    }
}

/// Runs `f` with this thread's engine.
pub(super) fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> Result<R, CmdError> {
    ENGINE.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| CmdError::new("ERR scripts cannot run scripts"))?;
        if slot.is_none() {
            let engine = Engine::new().map_err(|err| {
                CmdError::owned(format!("ERR cannot start the Lua engine: {err}"))
            })?;
            *slot = Some(engine);
        }
        match slot.as_mut() {
            Some(engine) => Ok(f(engine)),
            None => Err(CmdError::new("ERR cannot start the Lua engine")),
        }
    })
}

/// Forgets this thread's engine (after a panic inside it left it in an unknown state).
fn drop_engine() {
    ENGINE.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = None;
        }
    });
}

/// EVAL script numkeys [key ...] [arg ...]
pub fn eval(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let script = prepare(ctx, &args[1])?;
    run(ctx, &script, args, false)
}

/// EVAL_RO script numkeys [key ...] [arg ...]
pub fn eval_ro(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let script = prepare(ctx, &args[1])?;
    run(ctx, &script, args, true)
}

/// EVALSHA sha1 numkeys [key ...] [arg ...]
pub fn evalsha(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let script = cached(ctx, &args[1])?;
    run(ctx, &script, args, false)
}

/// EVALSHA_RO sha1 numkeys [key ...] [arg ...]
pub fn evalsha_ro(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let script = cached(ctx, &args[1])?;
    run(ctx, &script, args, true)
}

fn prepare(ctx: &Ctx<'_>, body: &[u8]) -> Result<Arc<Script>, CmdError> {
    let cache = &ctx.shared.scripting.cache;
    with_engine(|engine| engine.prepare(cache, body))?.map_err(CmdError::owned)
}

fn cached(ctx: &Ctx<'_>, sha: &[u8]) -> Result<Arc<Script>, CmdError> {
    let cache = &ctx.shared.scripting.cache;
    with_engine(|engine| engine.find(cache, sha))?.ok_or(CmdError::new(
        "NOSCRIPT No matching script. Please use EVAL.",
    ))
}

/// Splits `numkeys key... arg...` (from `args[2]`) into keys and arguments.
pub(super) fn keys_and_args(args: Argv<'_>) -> Result<(Argv<'_>, Argv<'_>), CmdError> {
    let numkeys = arg_i64(&args[2])?;
    if numkeys < 0 {
        return Err(CmdError::new("ERR Number of keys can't be negative"));
    }
    let rest = args.len() - 3;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > rest {
        return Err(CmdError::new(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok((args.slice(3..3 + numkeys), args.slice(3 + numkeys..)))
}

/// Runs a script for the client and writes its reply.
fn run(
    ctx: &mut Ctx<'_>,
    script: &Arc<Script>,
    args: Argv<'_>,
    read_only_command: bool,
) -> Result<(), CmdError> {
    let (keys, argv) = keys_and_args(args)?;
    let target = Target::Script(script);
    run_target(ctx, target, script.flags, keys, argv, read_only_command)
}

/// What runs: a cached script or a loaded function.
#[derive(Clone, Copy)]
pub(super) enum Target<'t> {
    Script(&'t Arc<Script>),
    Function(&'t [u8]),
}

impl Target<'_> {
    /// Whether an earlier run of this target touched shards beyond its KEYS.
    fn needs_every_shard(&self, scripting: &Scripting) -> bool {
        match self {
            Target::Script(script) => script.every_shard.load(Ordering::Relaxed),
            Target::Function(name) => scripting.undeclared_functions.lock().contains(*name),
        }
    }

    /// Remembers that this target touched shards beyond its KEYS: later runs hold every shard.
    fn set_needs_every_shard(&self, scripting: &Scripting) {
        match self {
            Target::Script(script) => script.every_shard.store(true, Ordering::Relaxed),
            Target::Function(name) => {
                scripting.undeclared_functions.lock().insert(name.to_vec());
            }
        }
    }
}

/// Runs a script or function for the client (see the module docs) and writes its reply.
pub(super) fn run_target(
    ctx: &mut Ctx<'_>,
    target: Target<'_>,
    flags: ScriptFlags,
    keys: Argv<'_>,
    argv: Argv<'_>,
    read_only_command: bool,
) -> Result<(), CmdError> {
    if read_only_command && flags.declared && !flags.no_writes {
        return Err(CmdError::new(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    let read_only = read_only_command || flags.no_writes;
    let shared = ctx.shared;
    let store = std::sync::Arc::clone(&shared.store);
    // Inside EXEC the transaction already holds every shard (it plans scripts that way).
    let nested = crate::store::Section::active();
    let mut every_shard = nested || target.needs_every_shard(&shared.scripting);
    let caller_db = ctx.session.db;
    let reply_start = ctx.out.buf.len();
    loop {
        let masks = if every_shard {
            vec![EVERY_SHARD; store.db_count()]
        } else {
            let mut masks = vec![0u32; store.db_count()];
            if let Some(db) = store.db(caller_db) {
                for key in keys {
                    masks[caller_db] |= 1 << db.shard_index(key);
                }
            }
            masks
        };
        let held = (!nested).then(|| store.hold_shards(&masks));
        // Declared after `held`: the unit is appended (or dropped) before the shards go.
        let capture = crate::propagate::capture();
        let saved_deny = std::mem::replace(&mut ctx.session.deny_blocking, true);
        let saved_track = std::mem::replace(&mut ctx.session.track_write_replies, false);
        let mut host = ScriptHost {
            shared,
            session: &mut *ctx.session,
            now_ms: ctx.now_ms,
            held,
            read_only,
            every_shard,
            wrote: false,
            restart: false,
            undo_log: take_undo_log(),
            scratch: take_scratch(),
            masks: Vec::new(),
            started: Instant::now(),
            busy: None,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_engine(|engine| match target {
                Target::Script(script) => engine.run(script, keys, argv, &mut host),
                Target::Function(name) => {
                    engine.fcall(shared.store.functions(), name, keys, argv, &mut host)
                }
            })
        }));
        let panicked = outcome.is_err();
        let frame = match outcome {
            Ok(Ok(frame)) => frame,
            Ok(Err(err)) => Frame::Error(Bytes::from(err.text().to_owned())),
            Err(_) => {
                drop_engine();
                Frame::Error(Bytes::from_static(b"ERR the script engine failed"))
            }
        };
        host.end_busy();
        // A panic in a run that holds only some shards is undone like a restart; one that
        // holds everything keeps what it did, and the log gets it.
        let undo = host.restart || (panicked && !host.every_shard);
        if undo {
            host.undo();
            capture.abandon();
        } else {
            capture.finish();
        }
        let wrote = host.wrote;
        let scratch = std::mem::take(&mut host.scratch.buf);
        give_back_undo_log(std::mem::take(&mut host.undo_log));
        // Releases the shards, after the unit was appended or dropped.
        drop(host);
        give_back_scratch(scratch);
        ctx.session.deny_blocking = saved_deny;
        ctx.session.track_write_replies = saved_track;
        ctx.session.db = caller_db;
        ctx.session.client.set_db(caller_db);
        if undo && !panicked {
            every_shard = true;
            target.set_needs_every_shard(&shared.scripting);
            continue;
        }
        protocol::encode::encode(&frame, &mut ctx.out.buf, ctx.out.version);
        if wrote {
            if ctx.session.track_write_replies {
                ctx.session
                    .write_replies
                    .push(reply_start..ctx.out.buf.len());
            }
            super::serve_blocked_clients(ctx);
        }
        return Ok(());
    }
}

/// The value of a reply that is one integer (`:<n>\r\n`, the commonest reply in scripts),
/// read without the general parser.
fn integer_reply(reply: &[u8]) -> Option<i64> {
    let digits = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The values a run's writes replaced, to put back if the run is undone.
#[derive(Default)]
struct UndoLog {
    /// The keys and the string values, one after another (one buffer, so a run allocates
    /// nothing once warm).
    bytes: Vec<u8>,
    entries: Vec<Preimage>,
}

/// The value a key held before the run first wrote it.
struct Preimage {
    db: usize,
    /// Where the key is in [`UndoLog::bytes`].
    key: std::ops::Range<usize>,
    before: Before,
}

/// A value as it was before a run's first write to its key.
enum Before {
    /// No value (or an expired one).
    Absent,
    /// A string, in [`UndoLog::bytes`], and its expiry.
    Str(std::ops::Range<usize>, Option<u64>),
    /// Any other value, and its expiry.
    Other(Value, Option<u64>),
}

impl UndoLog {
    fn contains(&self, db: usize, key: &[u8]) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.db == db && self.bytes.get(entry.key.clone()) == Some(key))
    }

    /// Keeps `bytes` in the buffer; returns where.
    fn keep(&mut self, bytes: &[u8]) -> std::ops::Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    fn push(&mut self, db: usize, key: std::ops::Range<usize>, before: Before) {
        self.entries.push(Preimage { db, key, before });
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }
}

thread_local! {
    /// The undo log of this thread's runs, kept between runs.
    static UNDO_LOG: RefCell<UndoLog> = RefCell::new(UndoLog::default());
}

fn take_undo_log() -> UndoLog {
    UNDO_LOG.with(|log| std::mem::take(&mut *log.borrow_mut()))
}

/// Keeps an emptied undo log for the next run, unless a large run grew it.
fn give_back_undo_log(mut log: UndoLog) {
    log.clear();
    if log.bytes.capacity() <= 64 * 1024 && log.entries.capacity() <= 1024 {
        UNDO_LOG.with(|slot| *slot.borrow_mut() = log);
    }
}

/// What a script's `redis.call` reaches: the keyspace, through the section's shards.
struct ScriptHost<'h, 's> {
    shared: &'h Shared,
    session: &'h mut Session,
    now_ms: u64,
    /// The section's shards (`None` inside EXEC, whose section holds them all).
    held: Option<HeldShards<'s>>,
    read_only: bool,
    /// The section holds every shard of every database.
    every_shard: bool,
    /// A write command ran.
    wrote: bool,
    /// The run needs shards it could not get: undo it and run again holding every shard.
    restart: bool,
    /// Values replaced by the writes of a run that holds only some shards.
    undo_log: UndoLog,
    /// Where the called commands write their replies.
    scratch: Reply,
    /// The called command's shards, one mask per database (a buffer kept between calls).
    masks: Vec<u32>,
    started: Instant,
    /// Set once the script runs past the busy threshold.
    busy: Option<std::sync::Arc<BusyRun>>,
}

/// Text of the error a restarting run's calls get (never seen by clients: the run is undone).
const RESTARTING: &str = "ERR the script is being restarted holding every shard";

impl Host for ScriptHost<'_, '_> {
    fn call(&mut self, args: Argv<'_>, version: Version) -> Frame {
        if self.restart {
            return error_frame(RESTARTING);
        }
        match self.try_call(args, version) {
            Ok(frame) => frame,
            Err(err) => Frame::Error(Bytes::from(err.text().to_owned())),
        }
    }

    fn interrupt(&mut self) -> Option<String> {
        if self.restart {
            return Some(RESTARTING.to_owned());
        }
        if self.shared.shutdown.is_started() {
            return Some("ERR the server is shutting down".to_owned());
        }
        let threshold = self
            .shared
            .scripting
            .busy_threshold_ms
            .load(Ordering::Relaxed);
        if self.busy.is_none() && self.started.elapsed() >= Duration::from_millis(threshold) {
            self.begin_busy();
        }
        let busy = self.busy.as_ref()?;
        busy.killed
            .load(Ordering::Acquire)
            .then(|| "ERR Script killed by user with SCRIPT KILL...".to_owned())
    }
}

fn error_frame(text: &'static str) -> Frame {
    Frame::Error(Bytes::from_static(text.as_bytes()))
}

impl ScriptHost<'_, '_> {
    fn try_call(&mut self, argv: Argv<'_>, version: Version) -> Result<Frame, CmdError> {
        let name = argv.first().unwrap_or_default();
        let command = lookup(name).ok_or(CmdError::new(
            "ERR Unknown Redis command called from script",
        ))?;
        let command = resolve_subcommand(command, argv)?;
        if !command.arity_ok(argv.len()) {
            return Err(CmdError::new(
                "ERR Wrong number of args calling Redis command from script",
            ));
        }
        let flags = command.spec.flags;
        if flags.contains(CommandFlags::NOSCRIPT) || flags.contains(CommandFlags::BLOCKING) {
            return Err(CmdError::new(
                "ERR This Redis command is not allowed from script",
            ));
        }
        {
            let mut ctx = Ctx {
                shared: self.shared,
                session: &mut *self.session,
                out: &mut self.scratch,
                now_ms: self.now_ms,
            };
            if let Some(denial) = super::acl_denial(&mut ctx, command, argv, "lua") {
                return Err(CmdError::new(match denial {
                    crate::acl::Denial::Command => {
                        "ERR The user executing the script can't run this command or subcommand"
                    }
                    crate::acl::Denial::Key(_) => {
                        "ERR The user executing the script can't access at least one of the keys \
                         mentioned in the command arguments"
                    }
                    crate::acl::Denial::Channel(_) => {
                        "ERR The user executing the script can't publish to the channel mentioned \
                         in the command"
                    }
                }));
            }
        }
        if command.is_write() && self.read_only {
            return Err(CmdError::new(
                "ERR Write commands are not allowed from read-only scripts.",
            ));
        }
        if !self.every_shard && !self.has_shards_for(command, argv) {
            self.restart = true;
            return Err(CmdError::new(RESTARTING));
        }
        if command.is_write() {
            if !self.every_shard {
                self.save_preimages(command, argv);
            }
            self.wrote = true;
            if let Some(busy) = &self.busy {
                busy.wrote.store(true, Ordering::Release);
            }
        }
        self.scratch.buf.clear();
        self.scratch.version = version;
        let mut ctx = Ctx {
            shared: self.shared,
            session: &mut *self.session,
            out: &mut self.scratch,
            now_ms: self.now_ms,
        };
        run_tracked(&mut ctx, command, argv, true);
        if let Some(value) = integer_reply(&self.scratch.buf) {
            return Ok(Frame::Integer(value));
        }
        let limits = protocol::Limits::default();
        match protocol::parse::parse(&self.scratch.buf, &limits) {
            Ok(Some((frame, _))) => Ok(frame),
            _ => Err(CmdError::new("ERR the command's reply could not be read")),
        }
    }

    /// True if the section holds (or could add without waiting) every shard `command` can
    /// touch, all in the script's current database.
    fn has_shards_for(&mut self, command: &super::Command, argv: Argv<'_>) -> bool {
        let store = &self.shared.store;
        // One buffer for every call of the run.
        let mut masks = std::mem::take(&mut self.masks);
        masks.clear();
        masks.resize(store.db_count(), 0);
        let mut db = self.session.db;
        let every_shard = add_command_shards(store, &mut db, command, argv, &mut masks);
        let held_all = !every_shard && self.hold_or_add(&masks);
        self.masks = masks;
        held_all
    }

    /// True if the section holds every shard of `masks` (one per database), adding the
    /// missing ones of the current database without waiting.
    fn hold_or_add(&mut self, masks: &[u32]) -> bool {
        let Some(held) = self.held.as_mut() else {
            return true;
        };
        for (index, &mask) in masks.iter().enumerate() {
            if mask == 0 || held.holds_all(index, mask) {
                continue;
            }
            // Only the current database: a run's undo log covers the keys it names there.
            if index != self.session.db || !held.try_add(index, mask) {
                return false;
            }
        }
        true
    }

    /// Saves the values `command`'s keys hold now (once per key), so the run can be undone.
    fn save_preimages(&mut self, command: &super::Command, argv: Argv<'_>) {
        let db_index = self.session.db;
        let Some(db) = self.shared.store.db(db_index) else {
            return;
        };
        let (log, now_ms) = (&mut self.undo_log, self.now_ms);
        command.spec.for_each_key_position(argv, |position| {
            let Some(key) = argv.get(position) else {
                return;
            };
            if log.contains(db_index, key) {
                return;
            }
            let key_at = log.keep(key);
            let (shard, hash) = db.read(key);
            let before = match shard.lookup(hash, key, now_ms) {
                Lookup::Live(entry) => match &entry.value {
                    Value::Str(bytes) => Before::Str(log.keep(bytes), entry.expires_at()),
                    other => Before::Other(other.clone(), entry.expires_at()),
                },
                Lookup::Expired | Lookup::Absent => Before::Absent,
            };
            drop(shard);
            log.push(db_index, key_at, before);
        });
    }

    /// Puts back every value the run's writes replaced (the section still holds their
    /// shards).
    fn undo(&mut self) {
        let log = &mut self.undo_log;
        for preimage in log.entries.drain(..).rev() {
            let Some(db) = self.shared.store.db(preimage.db) else {
                continue;
            };
            let key = &log.bytes[preimage.key];
            let (mut shard, hash) = db.lock(key);
            let (value, expires_at) = match preimage.before {
                Before::Absent => {
                    shard.delete(hash, key, self.now_ms);
                    continue;
                }
                Before::Str(bytes, expires_at) => {
                    (Value::Str(log.bytes[bytes].to_vec()), expires_at)
                }
                Before::Other(value, expires_at) => (value, expires_at),
            };
            shard.set(hash, key, value, expires_at, self.now_ms);
        }
    }

    /// The script has run past the busy threshold: other clients now get `-BUSY`.
    fn begin_busy(&mut self) {
        let run = std::sync::Arc::new(BusyRun::default());
        run.wrote.store(self.wrote, Ordering::Release);
        let scripting = &self.shared.scripting;
        scripting.busy_runs.lock().push(std::sync::Arc::clone(&run));
        scripting.busy.fetch_add(1, Ordering::Relaxed);
        scripting
            .stuck_workers
            .fetch_or(worker_bit(), Ordering::Relaxed);
        if scripting.all_workers_stuck() {
            scripting.every_worker_stuck.notify_one();
        }
        tracing::warn!(
            "a script has run for more than {} ms: other clients get BUSY until it ends \
             (SCRIPT KILL stops it if it has not written)",
            scripting.busy_threshold_ms.load(Ordering::Relaxed)
        );
        self.busy = Some(run);
    }

    /// The script is over: if it was busy, clients are served again.
    fn end_busy(&mut self) {
        if let Some(run) = self.busy.take() {
            let scripting = &self.shared.scripting;
            scripting
                .busy_runs
                .lock()
                .retain(|other| !std::sync::Arc::ptr_eq(other, &run));
            scripting.busy.fetch_sub(1, Ordering::Relaxed);
            scripting
                .stuck_workers
                .fetch_and(!worker_bit(), Ordering::Relaxed);
        }
    }
}

/// SCRIPT LOAD script
pub fn script_load(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let script = prepare(ctx, &args[2])?;
    ctx.out.bulk(script.sha.as_bytes());
    Ok(())
}

/// SCRIPT EXISTS sha1 [sha1 ...]
pub fn script_exists(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let shas = args.slice(2..);
    ctx.out.array(shas.len());
    for sha in shas {
        let known = ctx.shared.scripting.cache.contains(sha);
        ctx.out.int(i64::from(known));
    }
    Ok(())
}

/// SCRIPT FLUSH [ASYNC | SYNC]
pub fn script_flush(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    match args.get(2) {
        None => {}
        Some(mode) if args.len() == 3 && (is(mode, "async") || is(mode, "sync")) => {}
        Some(_) => {
            return Err(CmdError::new(
                "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
            ))
        }
    }
    ctx.shared.scripting.cache.flush();

    ctx.out.ok();
    Ok(())
}

/// SCRIPT KILL
pub fn script_kill(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let runs = ctx.shared.scripting.busy_runs.lock();
    if runs.is_empty() {
        return Err(CmdError::new("NOTBUSY No scripts in execution right now."));
    }
    if runs.iter().any(|run| run.wrote.load(Ordering::Acquire)) {
        return Err(CmdError::new(
            "UNKILLABLE Sorry the script already executed write commands against the \
             dataset. You can either wait the script termination or kill the server in a hard \
             way using the SHUTDOWN NOSAVE command.",
        ));
    }
    for run in runs.iter() {
        run.killed.store(true, Ordering::Release);
    }
    drop(runs);
    ctx.out.ok();
    Ok(())
}

/// SCRIPT HELP
pub fn script_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    reply_help(
        ctx,
        "SCRIPT",
        &[
            "EXISTS <sha1> [<sha1> ...]",
            "    For each SHA-1, 1 if the script cache holds it, else 0.",
            "FLUSH [ASYNC|SYNC]",
            "    Empty the script cache.",
            "KILL",
            "    Stop a script that runs past the busy threshold and has not written.",
            "LOAD <script>",
            "    Compile a script and cache it; reply with its SHA-1.",
        ],
    );
    Ok(())
}
