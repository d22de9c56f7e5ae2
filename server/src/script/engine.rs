//! The Lua engine: one sandboxed Lua 5.1 state per connection thread, and the server-wide
//! cache of EVAL scripts.
//!
//! [`ScriptCache`] maps SHA-1 names to script bodies for the whole server (SCRIPT LOAD, EVAL,
//! EVALSHA, SCRIPT EXISTS|FLUSH). Each thread owns an [`Engine`], which compiles bodies from
//! the cache on first use, so a script loaded through one thread runs with EVALSHA on any
//! other. A run reaches the server only through [`Host`]: `redis.call`/`redis.pcall` go to
//! [`Host::call`], and an instruction-count hook polls [`Host::interrupt`] so SCRIPT KILL,
//! SHUTDOWN NOSAVE and time limits can stop a script (also one looping inside `pcall`).
//!
//! The environment scripts see (built by `sandbox.lua`) follows Redis 7: the base, `string`,
//! `table` and `math` libraries plus `cjson`, `cmsgpack`, `bit`, `struct` and `redis`; no `os`,
//! `io`, `debug`, `print`, `require`, `loadfile`, `dofile`, `setfenv`; every reachable table is
//! read-only, and reading an undefined global is an error. Replies and errors are shaped as
//! Redis shapes them (see [`convert`](super::convert) and [`Engine::run`]).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use protocol::{Argv, Frame, Version};

use super::convert::lua_to_frame;
use super::functions::Registered;
use super::host::{host_function, HostOp, HostSlot};
use super::redis_api::{math_random, math_randomseed, redis_table, seed_state};
use super::shebang::{parse_script, ScriptFlags};

/// What a running script needs from the server.
///
/// The engine checks only what Redis checks on the Lua side (argument types of `redis.call`,
/// at least one argument); the host enforces the command rules and answers with Redis's texts:
/// `ERR Unknown Redis command called from script`, `ERR Wrong number of args calling Redis
/// command from script`, `ERR This Redis command is not allowed from script` (blocking,
/// pub/sub, EVAL, ...), `ERR Write commands are not allowed from read-only scripts.` (flag
/// `no-writes`, EVAL_RO/FCALL_RO), ACL errors, OOM.
pub trait Host {
    /// Runs one command for `redis.call`/`redis.pcall`; `args[0]` is the command name.
    /// `version` is the protocol the script chose with `redis.setresp` (RESP2 by default): a
    /// RESP2 reply should not use RESP3-only frames (the engine downgrades any it gets the
    /// way a RESP2 client would see them). An error reply is `Frame::Error` with its prefix.
    fn call(&mut self, args: Argv<'_>, version: Version) -> Frame;

    /// Polled about every [`HOOK_INSTRUCTIONS`] Lua instructions while a script runs:
    /// `Some(error text)` (with prefix, e.g. `ERR Script killed by user with SCRIPT KILL...`)
    /// stops the script; its caller gets that text as the error, with Redis's
    /// ` script: <name>, on @user_script:<line>.` suffix. Once it has returned `Some`, the
    /// script cannot catch the error. Keep it cheap.
    fn interrupt(&mut self) -> Option<String>;

    /// `redis.acl_check_cmd(...)`: whether the current user may run this command with these
    /// arguments. `Err(text)` raises it (Redis: `ERR Invalid command passed to
    /// redis.acl_check_cmd()` for an unknown command). Without ACLs everything is allowed.
    fn acl_check(&mut self, args: Argv<'_>) -> Result<bool, String> {
        let _ = args;
        Ok(true)
    }
}

/// How many Lua instructions run between two calls of the interrupt hook.
pub const HOOK_INSTRUCTIONS: u32 = 100_000;

/// What `redis.REDIS_VERSION` reports: the version kvstore presents to clients (INFO, HELLO).
pub const REDIS_VERSION: &str = crate::VERSION_FOR_CLIENTS;

/// `redis.REDIS_VERSION_NUM`: [`REDIS_VERSION`] as `0x00MMmmpp`.
pub fn redis_version_num() -> i64 {
    let mut parts = REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    (major << 16) | (minor << 8) | patch
}

/// The lowercase hex SHA-1 of `body`: the name EVALSHA and SCRIPT EXISTS use.
pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// [`sha1_hex`] as a [`ShaKey`].
fn sha1_key(body: &[u8]) -> ShaKey {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha1_smol::Sha1::from(body).digest().bytes();
    let mut key = [0u8; 40];
    for (pair, byte) in key.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    key
}

/// A script known to the server: its body and what its shebang declares.
#[derive(Debug)]
pub struct Script {
    /// The lowercase hex SHA-1 of `body`.
    pub sha: String,
    /// The body as the client sent it.
    pub body: Bytes,
    /// The flags of its `#!lua` line (`declared` false without one).
    pub flags: ScriptFlags,
    /// The cache generation it was added in (see [`ScriptCache::flush`]).
    generation: u64,
    /// `sha` as a map key.
    key: ShaKey,
    /// A run touched shards beyond its KEYS: the server runs it holding every shard from
    /// then on (see `cmd::scripting`).
    pub every_shard: AtomicBool,
}

/// A script's SHA-1 in lowercase hex, as a map key that needs no allocation.
type ShaKey = [u8; 40];

/// `sha` (40 hex digits, any case) as a [`ShaKey`]; None if it has the wrong length.
fn sha_key(sha: &[u8]) -> Option<ShaKey> {
    let mut key: ShaKey = sha.try_into().ok()?;
    key.make_ascii_lowercase();
    Some(key)
}

/// The server-wide script cache: SHA-1 → body and flags. Shared by every connection thread.
#[derive(Debug, Default)]
pub struct ScriptCache {
    scripts: RwLock<HashMap<ShaKey, Arc<Script>>>,
    /// Bumped by [`flush`](Self::flush), so engines drop their compiled copies.
    generation: AtomicU64,
}

impl ScriptCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The script named `sha` (40 hex digits, any case), if cached.
    pub fn get(&self, sha: &[u8]) -> Option<Arc<Script>> {
        let key = sha_key(sha)?;
        self.read().get(&key).cloned()
    }

    /// The generation [`flush`](Self::flush) bumps.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether `sha` is cached (SCRIPT EXISTS).
    pub fn contains(&self, sha: &[u8]) -> bool {
        self.get(sha).is_some()
    }

    /// Forgets every script (SCRIPT FLUSH). Engines drop their compiled copies when they next
    /// run a script added after this.
    pub fn flush(&self) {
        let mut scripts = self.write();
        scripts.clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// How many scripts are cached (INFO `number_of_cached_scripts`).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no script is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of all cached bodies (INFO `used_memory_scripts`, roughly).
    pub fn memory(&self) -> usize {
        self.read().values().map(|s| s.body.len() + 40).sum()
    }

    /// Adds a script whose body has been checked (it compiles); returns the cached entry
    /// (the existing one if another thread added it first).
    fn insert(&self, body: Bytes, flags: ScriptFlags) -> Arc<Script> {
        let sha = sha1_hex(&body);
        let mut scripts = self.write();
        let generation = self.generation.load(Ordering::Acquire);
        let key = sha1_key(&body);
        scripts
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Script {
                    sha,
                    key,
                    body,
                    flags,
                    generation,
                    every_shard: AtomicBool::new(false),
                })
            })
            .clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ShaKey, Arc<Script>>> {
        self.scripts.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ShaKey, Arc<Script>>> {
        self.scripts.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// An error reply raised from Rust inside a script (`redis.call` of a failing command, a bad
/// argument to a `redis.*` helper): the full text with its prefix, e.g. `ERR ...`.
#[derive(Debug)]
pub(crate) struct ReplyError(pub(crate) String);

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplyError {}

/// A Lua error carrying a Redis error reply.
pub(crate) fn reply_error(text: impl Into<String>) -> mlua::Error {
    mlua::Error::external(ReplyError(text.into()))
}

/// An error raised from Rust that Lua code should see as the plain string a C function of
/// the Lua library would raise (`pcall` returns it as it is; uncaught, it becomes `ERR <text>`).
#[derive(Debug)]
struct LuaStringError(String);

impl fmt::Display for LuaStringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LuaStringError {}

/// A Lua error that scripts see as the string `text` (see [`LuaStringError`]).
pub(crate) fn lua_string_error(text: String) -> mlua::Error {
    mlua::Error::external(LuaStringError(text))
}

/// The text of an error raised from Rust: the reply text of a [`ReplyError`], else mlua's
/// description prefixed with `ERR `.
fn rust_error_text(error: &mlua::Error) -> String {
    match error {
        mlua::Error::ExternalError(inner) => match inner.downcast_ref::<ReplyError>() {
            Some(reply) => reply.0.clone(),
            None => format!("ERR {inner}"),
        },
        mlua::Error::CallbackError { cause, .. } => rust_error_text(cause),
        mlua::Error::WithContext { cause, .. } => rust_error_text(cause),
        mlua::Error::RuntimeError(text) | mlua::Error::MemoryError(text) => format!("ERR {text}"),
        other => format!("ERR {other}"),
    }
}

/// The text of a [`LuaStringError`] inside `error`, if it is one.
fn lua_string_text(error: &mlua::Error) -> Option<&str> {
    match error {
        mlua::Error::ExternalError(inner) => {
            inner.downcast_ref::<LuaStringError>().map(|e| e.0.as_str())
        }
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            lua_string_text(cause)
        }
        _ => None,
    }
}

/// The per-state data the Rust callbacks and the hook share (mlua app data).
pub(crate) struct RunState {
    /// Set once the host asked to stop the running script: the error every later hook call
    /// raises again, and the error the script's caller gets.
    pub(crate) interrupted: Option<String>,
    /// `redis.setresp(3)` was called in this run.
    pub(crate) resp3: bool,
    /// While a library loads: when it must have finished (FUNCTION LOAD has a time limit).
    deadline: Option<Instant>,
    /// While a library loads: the functions it registered so far.
    pub(crate) registering: Option<Vec<Registered>>,
    /// The state of math.random (Redis's 48-bit linear congruential generator).
    pub(crate) rng: u64,
}

/// How long a library's top-level code may run in FUNCTION LOAD (as Redis: 500 ms).
const LOAD_TIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The chunk name of `sandbox.lua`, whose frames error locations skip.
const SANDBOX_CHUNK: &str = "=sandbox";

/// What [`Engine::execute`] runs.
pub(crate) enum Target<'a> {
    /// A compiled EVAL script: KEYS and ARGV become globals.
    Script(Function),
    /// A function's callback: called with the keys and arguments tables.
    Callback(&'a Function),
}

/// One thread's Lua state, set up as Redis sets up its own.
pub struct Engine {
    pub(crate) lua: Lua,
    /// The table behind the script globals (KEYS and ARGV are set here for each run).
    env: Table,
    /// The running script's host, reachable from `redis.call` and the interrupt hook.
    host: Rc<HostSlot>,
    /// The sandbox environment proxy that compiled scripts use as their globals.
    env_proxy: Table,
    /// `run(f, handler[, keys, args])`: xpcall with the handler, from `sandbox.lua`.
    runner: Function,
    /// `run_script(f, handler, keys, args)`: `run` for EVAL scripts, with KEYS and ARGV set
    /// as globals for the run.
    script_runner: Function,
    /// The error handler: turns an error into `{err=..., source=..., line=...}`.
    handler: Function,
    /// `library_env()` from `sandbox.lua`: a fresh environment for a library and the function
    /// that switches it from load time to run time.
    pub(crate) library_env: Function,
    /// Scripts this engine has compiled, by SHA-1.
    scripts: HashMap<ShaKey, (Arc<Script>, Function), foldhash::fast::RandomState>,
    /// The cache generation `scripts` belongs to.
    scripts_generation: u64,
    /// Loaded function libraries by library id: function name → callback.
    pub(crate) libraries: HashMap<u64, HashMap<String, Function>>,
    /// The [`FunctionLibraries`](super::functions::FunctionLibraries) generation `libraries`
    /// was checked against.
    pub(crate) libraries_generation: u64,
}

impl Engine {
    /// Builds a Lua state with Redis's libraries, `redis` API and sandbox.
    pub fn new() -> mlua::Result<Self> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        install_libraries(&lua)?;
        lua.set_app_data(RunState {
            interrupted: None,
            resp3: false,
            deadline: None,
            registering: None,
            rng: seed_state(RandomState::new().build_hasher().finish() as u32),
        });
        let host = Rc::new(HostSlot::default());
        let redis = redis_table(&lua)?;
        redis.raw_set("call", host_function(&lua, &host, HostOp::Call)?)?;
        redis.raw_set("pcall", host_function(&lua, &host, HostOp::Pcall)?)?;
        redis.raw_set(
            "acl_check_cmd",
            host_function(&lua, &host, HostOp::AclCheck)?,
        )?;
        let helpers = lua.create_table()?;
        helpers.raw_set("redis", redis.clone())?;
        helpers.raw_set(
            "interrupted",
            lua.create_function(|lua, ()| {
                Ok(lua
                    .app_data_ref::<RunState>()
                    .is_some_and(|s| s.interrupted.is_some()))
            })?,
        )?;
        helpers.raw_set("normalize", lua.create_function(normalize_error)?)?;
        let hooked = Rc::clone(&host);
        helpers.raw_set(
            "hook_thread",
            lua.create_function(move |_, thread: Value| {
                if let Value::Thread(thread) = thread {
                    hooked.hook_moved.set(true);
                    thread.set_hook(interrupt_triggers(), interrupt_hook(&hooked));
                }
                Ok(())
            })?,
        )?;
        let hooked = Rc::clone(&host);
        helpers.raw_set(
            "hook_current",
            lua.create_function(move |lua, ()| {
                lua.current_thread()
                    .set_hook(interrupt_triggers(), interrupt_hook(&hooked));
                Ok(())
            })?,
        )?;

        helpers.raw_set(
            "user_where",
            lua.create_function(|lua, ()| {
                Ok(user_frame(lua)
                    .map(|f| format!("{}:{}: ", f.short_source, f.line))
                    .unwrap_or_default())
            })?,
        )?;
        helpers.raw_set("random", lua.create_function(math_random)?)?;
        helpers.raw_set("randomseed", lua.create_function(math_randomseed)?)?;
        helpers.raw_set(
            "register_function",
            lua.create_function(super::functions::register_function)?,
        )?;
        let sandbox: Table = lua
            .load(include_str!("sandbox.lua"))
            .set_name(SANDBOX_CHUNK)
            .call(helpers)?;
        let env_backing: Table = sandbox.raw_get("env_backing")?;
        let env_proxy: Table = sandbox.raw_get("env")?;
        super::sandbox::install(
            &lua,
            &env_backing,
            sandbox.raw_get("protected")?,
            env_proxy.clone(),
            {
                let slot = Rc::clone(&host);
                move || slot.gc_stopped.set(true)
            },
        )?;
        let handler = lua.create_function(error_handler)?;
        lua.set_hook(interrupt_triggers(), interrupt_hook(&host));
        Ok(Engine {
            env: env_backing,
            env_proxy,
            runner: sandbox.raw_get("run")?,
            script_runner: sandbox.raw_get("run_script")?,
            library_env: sandbox.raw_get("library_env")?,
            handler,
            host,
            lua,
            scripts: HashMap::default(),
            scripts_generation: 0,
            libraries: HashMap::new(),
            libraries_generation: 0,
        })
    }

    /// Checks and caches a script body (SCRIPT LOAD, and EVAL before running): parses its
    /// shebang, compiles it, adds it to `cache`. Errors are reply texts:
    /// `ERR Error compiling script (new function): user_script:1: ...` and the shebang errors.
    pub fn prepare(&mut self, cache: &ScriptCache, body: &[u8]) -> Result<Arc<Script>, String> {
        let key = sha1_key(body);
        if let Some(script) = self.lookup(cache, &key) {
            return Ok(script);
        }
        let parsed = parse_script(body)?;
        let compiled = self.compile_script(parsed.code)?;
        let script = cache.insert(Bytes::copy_from_slice(body), parsed.flags);
        self.forget_stale_scripts(script.generation);
        self.scripts.insert(key, (Arc::clone(&script), compiled));
        Ok(script)
    }

    /// The script named `sha` (40 hex digits, any case), if `cache` holds it (EVALSHA).
    /// Scripts this engine has run are found without touching the shared cache.
    pub fn find(&mut self, cache: &ScriptCache, sha: &[u8]) -> Option<Arc<Script>> {
        self.lookup(cache, &sha_key(sha)?)
    }

    fn lookup(&mut self, cache: &ScriptCache, key: &ShaKey) -> Option<Arc<Script>> {
        self.forget_stale_scripts(cache.generation());
        match self.scripts.get(key) {
            Some((script, _)) => Some(Arc::clone(script)),
            None => cache.get(key),
        }
    }

    /// Runs a cached script with `keys` as KEYS and `argv` as ARGV; returns the reply, already
    /// converted to a frame (see [`convert`](super::convert)). A script error comes back as
    /// Redis writes it: `<error> script: <sha>, on @user_script:<line>.` where `<error>` is
    /// `ERR user_script:1: <message>` for a Lua error, or the error reply itself for
    /// `redis.call` failures and `error({err=...})`.
    ///
    /// Returns the natural frame for the reply; the server encodes it for the client's
    /// protocol (a map to a RESP2 client becomes a flat array, a double a bulk string...).
    pub fn run(
        &mut self,
        script: &Arc<Script>,
        keys: Argv<'_>,
        argv: Argv<'_>,
        host: &mut dyn Host,
    ) -> Frame {
        self.forget_stale_scripts(script.generation);
        let key = script.key;
        let function = match self.scripts.get(&key) {
            Some((_, f)) => f.clone(),
            None => {
                let code = match parse_script(&script.body) {
                    Ok(parsed) => parsed.code,
                    Err(e) => return error_frame(e),
                };
                match self.compile_script(code) {
                    Ok(f) => {
                        self.scripts.insert(key, (Arc::clone(script), f.clone()));
                        f
                    }
                    Err(e) => return error_frame(e),
                }
            }
        };
        self.execute(Target::Script(function), &script.sha, keys, argv, host)
    }

    /// Drops compiled scripts from before a SCRIPT FLUSH.
    fn forget_stale_scripts(&mut self, generation: u64) {
        if generation > self.scripts_generation {
            self.scripts.clear();
            self.scripts_generation = generation;
        }
    }

    fn compile_script(&self, code: &[u8]) -> Result<Function, String> {
        self.lua
            .load(code)
            .set_name("@user_script")
            .set_environment(self.env_proxy.clone())
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    lua_message(&e)
                )
            })
    }

    /// Resets the per-run state: no interruption, RESP2, no load deadline.
    /// Also re-arms the interrupt hook on the main Lua thread if a coroutine took it, and
    /// restarts the collector if a script stopped it (`collectgarbage("stop")`). Both only
    /// when needed: setting the hook allocates, and restarting the collector makes it run a
    /// step at once.
    pub(crate) fn reset_run_state(&self, deadline: Option<Instant>) {
        if self.host.hook_moved.replace(false) {
            self.lua
                .set_hook(interrupt_triggers(), interrupt_hook(&self.host));
        }
        if self.host.gc_stopped.replace(false) {
            self.lua.gc_restart();
        }
        if let Some(mut state) = self.lua.app_data_mut::<RunState>() {
            state.interrupted = None;
            state.resp3 = false;
            state.deadline = deadline;
        }
    }

    /// Runs `target` with the host reachable from `redis.call`, `redis.pcall`,
    /// `redis.acl_check_cmd` and the interrupt hook; `name` is how errors name the script
    /// (the SHA-1, or the function name).
    pub(crate) fn execute(
        &mut self,
        target: Target<'_>,
        name: &str,
        keys: Argv<'_>,
        argv: Argv<'_>,
        host: &mut dyn Host,
    ) -> Frame {
        self.reset_run_state(None);
        let outcome = self.host.clone().with_installed(host, || {
            let keys_table = string_sequence(&self.lua, keys)?;
            let argv_table = string_sequence(&self.lua, argv)?;
            match &target {
                Target::Script(f) => self.script_runner.call::<(bool, Value)>((
                    f,
                    &self.handler,
                    keys_table,
                    argv_table,
                )),
                Target::Callback(f) => self.runner.call::<(bool, Value)>((
                    (*f).clone(),
                    self.handler.clone(),
                    keys_table,
                    argv_table,
                )),
            }
        });
        if outcome.is_err() {
            // The runner clears them itself unless it failed.
            self.clear_run_globals();
        }
        let resp3 = self.lua.app_data_ref::<RunState>().is_some_and(|s| s.resp3);
        match outcome {
            Ok((true, value)) => lua_to_frame(&value, resp3),
            Ok((false, Value::Table(info))) => script_error(&info, name),
            Ok((false, other)) => error_frame(format!(
                "ERR {} script: {name}.",
                other.to_string().unwrap_or_default()
            )),
            Err(e) => error_frame(format!("{} script: {name}.", rust_error_text(&e))),
        }
    }

    /// Drops KEYS and ARGV, so nothing refers to them after the run. Failures here (out of
    /// memory) only leave values the next run replaces, so they are ignored.
    fn clear_run_globals(&self) {
        let _ = self.env.raw_set("KEYS", Value::Nil);
        let _ = self.env.raw_set("ARGV", Value::Nil);
    }

    /// Runs a library's top-level code (FUNCTION LOAD) under the load time limit; the
    /// functions it registers are collected in the run state. Returns the error info table
    /// of a failed run.
    pub(crate) fn run_library_code(&mut self, chunk: Function) -> Result<(), String> {
        self.reset_run_state(Some(Instant::now() + LOAD_TIME_LIMIT));
        let outcome = self
            .runner
            .call::<(bool, Value)>((chunk, self.handler.clone()));
        self.reset_run_state(None);
        match outcome {
            Ok((true, _)) => Ok(()),
            Ok((false, Value::Table(info))) => Err(info
                .raw_get::<mlua::String>("err")
                .map(|s| s.to_string_lossy())
                .unwrap_or_else(|_| "ERR unknown error".to_string())),
            Ok((false, _)) => Err("ERR unknown error".to_string()),
            Err(e) => Err(rust_error_text(&e)),
        }
    }
}

/// Loads the extra libraries (`cjson`, `cmsgpack`, `bit`, `struct`) into the real globals,
/// before the sandbox wraps them.
fn install_libraries(lua: &Lua) -> mlua::Result<()> {
    super::libs::install(lua)
}

/// A Lua array of strings (KEYS, ARGV, the tables a function gets).
fn string_sequence(lua: &Lua, items: Argv<'_>) -> mlua::Result<Table> {
    lua.create_sequence_from(items.iter().map(bstr::BStr::new))
}

/// The message of a compile error: Lua's own text (`user_script:1: unexpected symbol ...`).
pub(crate) fn lua_message(error: &mlua::Error) -> String {
    match error {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) | mlua::Error::MemoryError(message) => message.clone(),
        other => other.to_string(),
    }
}

fn error_frame(text: String) -> Frame {
    Frame::Error(single_line(text.into_bytes()))
}

/// Error replies stay on one line, as Redis writes them.
fn single_line(mut text: Vec<u8>) -> Bytes {
    for b in &mut text {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    text.into()
}

/// The reply for a script that failed: `<err> script: <name>, on <source>:<line>.`
fn script_error(info: &Table, name: &str) -> Frame {
    let message = info
        .raw_get::<mlua::String>("err")
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_else(|_| b"ERR unknown error".to_vec());
    let mut text = message;
    text.extend_from_slice(b" script: ");
    text.extend_from_slice(name.as_bytes());
    match (
        info.raw_get::<Option<mlua::String>>("source"),
        info.raw_get::<Option<i64>>("line"),
    ) {
        (Ok(Some(source)), Ok(Some(line))) => {
            text.extend_from_slice(b", on ");
            text.extend_from_slice(&source.as_bytes());
            text.extend_from_slice(format!(":{line}.").as_bytes());
        }
        _ => text.push(b'.'),
    }
    Frame::Error(single_line(text))
}

/// The error handler of every run: records the error text as Redis would report it and
/// where in the user's code it happened.
fn error_handler(lua: &Lua, error: Value) -> mlua::Result<Table> {
    let interrupted = lua
        .app_data_ref::<RunState>()
        .and_then(|s| s.interrupted.clone());
    let info = lua.create_table_with_capacity(0, 3)?;
    match interrupted {
        Some(text) => info.raw_set("err", text)?,
        None => match error_text(lua, &error)? {
            Value::Nil => info.raw_set("err", "ERR unknown error")?,
            text => info.raw_set("err", text)?,
        },
    }
    if let Some(frame) = user_frame(lua) {
        info.raw_set("source", frame.source)?;
        info.raw_set("line", frame.line)?;
    }
    Ok(info)
}

/// Where user code is running.
struct UserFrame {
    /// The chunk's source name, e.g. `@user_script`.
    source: String,
    /// Its printable form, e.g. `user_script`.
    short_source: String,
    line: i32,
}

/// The innermost frame of Lua code that is not the sandbox's own: user code, or a chunk it
/// compiled with `load`. None when a tail call replaced it.
fn user_frame(lua: &Lua) -> Option<UserFrame> {
    for level in 0..256 {
        let frame = lua.inspect_stack(level)?;
        let source = frame.source();
        if source.what == "C" || source.what == "tail" {
            continue;
        }
        if let Some(src) = source.source.as_deref() {
            if src != SANDBOX_CHUNK {
                return Some(UserFrame {
                    source: src.to_string(),
                    short_source: source.short_src.as_deref().unwrap_or(src).to_string(),
                    line: frame.curr_line(),
                });
            }
        }
    }
    None
}

/// The error text Redis reports for a raised value: an error table's `err`, a Rust reply
/// error's text, `ERR <text>` for anything else (strings carry Lua's position prefix).
fn error_text(lua: &Lua, error: &Value) -> mlua::Result<Value> {
    Ok(match error {
        Value::Table(t) => match t.raw_get::<Value>("err")? {
            Value::String(s) => Value::String(s),
            _ => Value::Nil,
        },
        Value::Error(e) => Value::String(lua.create_string(rust_error_text(e))?),
        Value::String(s) => {
            let mut text = b"ERR ".to_vec();
            text.extend_from_slice(&s.as_bytes());
            Value::String(lua.create_string(text)?)
        }
        Value::Nil => Value::String(lua.create_string("ERR nil")?),
        Value::Boolean(b) => Value::String(lua.create_string(format!("ERR {b}"))?),
        Value::Integer(i) => Value::String(lua.create_string(format!("ERR {i}"))?),
        Value::Number(n) => Value::String(lua.create_string(format!("ERR {n}"))?),
        other => Value::String(lua.create_string(format!("ERR {}", other.type_name()))?),
    })
}

/// What a script's own `pcall` returns as the error: the `err` string of an error table (as
/// Redis 7 does), the reply text of an error raised from Rust, anything else unchanged.
fn normalize_error(lua: &Lua, error: Value) -> mlua::Result<Value> {
    Ok(match &error {
        Value::Table(t) => match t.raw_get::<Value>("err")? {
            Value::String(s) => Value::String(s),
            _ => error,
        },
        Value::Error(e) => match lua_string_text(e) {
            Some(text) => Value::String(lua.create_string(text)?),
            None => Value::String(lua.create_string(rust_error_text(e))?),
        },
        _ => error,
    })
}

/// When the interrupt hook runs: every [`HOOK_INSTRUCTIONS`] instructions.
fn interrupt_triggers() -> HookTriggers {
    HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS)
}

/// The count hook: re-raises a latched interruption, enforces the load time limit, and asks
/// the running script's host whether to stop.
fn interrupt_hook(
    slot: &Rc<HostSlot>,
) -> impl Fn(&Lua, mlua::Debug) -> mlua::Result<VmState> + 'static {
    let slot = Rc::clone(slot);
    move |lua, _| {
        let (latched, deadline) = match lua.app_data_ref::<RunState>() {
            Some(state) => (state.interrupted.clone(), state.deadline),
            None => (None, None),
        };
        if let Some(text) = latched {
            return Err(reply_error(text));
        }
        let stop = if deadline.is_some_and(|d| Instant::now() >= d) {
            Some("ERR FUNCTION LOAD timeout".to_string())
        } else {
            slot.with(|host| host.and_then(|host| host.interrupt()))
        };
        match stop {
            Some(text) => {
                if let Some(mut state) = lua.app_data_mut::<RunState>() {
                    state.interrupted = Some(text.clone());
                }
                Err(reply_error(text))
            }
            None => Ok(VmState::Continue),
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
