//! Redis 7 functions: libraries loaded with FUNCTION LOAD and called with FCALL.
//!
//! [`FunctionLibraries`] is the server-wide registry (library name → code and the functions
//! it registered, with their flags). A library's code runs once per Lua state: when it is
//! loaded through a connection thread, and again, lazily, in any other thread's [`Engine`]
//! the first time one of its functions is called there. While its top-level code runs, only
//! `redis.register_function`, `redis.log`, the `redis.LOG_*` constants and the version
//! fields exist; the callbacks it registers then run in the ordinary script environment.
//! [`FunctionLibraries::dump`] gives the payload of FUNCTION DUMP, also stored in snapshots.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use bytes::{BufMut, Bytes, BytesMut};
use mlua::{Function, Lua, MultiValue, Table, Value};
use protocol::{Argv, Frame};

use super::engine::{lua_message, reply_error, Engine, Host, RunState, Target};
use super::shebang::{parse_library, valid_name, ScriptFlags, INVALID_NAME};

/// A function as a library declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// The name FCALL uses.
    pub name: String,
    /// The `description` given to `redis.register_function`, if any.
    pub description: Option<String>,
    /// The flags given to `redis.register_function` (`declared` is always true).
    pub flags: ScriptFlags,
}

/// A loaded library.
#[derive(Debug)]
pub struct Library {
    /// The name from its `#!lua name=` line.
    pub name: String,
    /// Its code as loaded (FUNCTION LIST WITHCODE, dumps).
    pub code: Bytes,
    /// The functions it registered, in registration order.
    pub functions: Vec<FunctionInfo>,
    /// Unique per load, so per-thread engines can tell a replaced library from the old one.
    id: u64,
}

/// How FUNCTION RESTORE treats libraries that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestorePolicy {
    /// Fail if any restored library already exists (the default).
    #[default]
    Append,
    /// Replace existing libraries of the same name.
    Replace,
    /// Delete every library first.
    Flush,
}

/// The server-wide function registry. Shared by every connection thread.
#[derive(Debug, Default)]
pub struct FunctionLibraries {
    state: RwLock<Registry>,
}

#[derive(Debug, Default, Clone)]
struct Registry {
    libraries: BTreeMap<String, Arc<Library>>,
    /// Lowercase function name → (library, index in its `functions`).
    functions: HashMap<String, (Arc<Library>, usize)>,
    /// Bumped by every change, so engines re-check which libraries still exist.
    generation: u64,
    next_id: u64,
}

impl Registry {
    /// Rebuilds the function index; fails on a function name used by two libraries. Names
    /// are matched without regard to case, as Redis does for FCALL (within one library two
    /// names may differ only in case; the later one is the one FCALL finds).
    ///
    /// The libraries named in `added` are indexed last, so a clash names their function, as
    /// Redis's error does.
    fn reindex(&mut self, added: &[&str]) -> Result<(), String> {
        let mut functions: HashMap<String, (Arc<Library>, usize)> = HashMap::new();
        let existing = self
            .libraries
            .values()
            .filter(|l| !added.contains(&l.name.as_str()));
        let new = added.iter().filter_map(|name| self.libraries.get(*name));
        for library in existing.chain(new) {
            for (i, function) in library.functions.iter().enumerate() {
                let key = function.name.to_ascii_lowercase();
                if let Some((other, _)) = functions.get(&key) {
                    if other.id != library.id {
                        return Err(format!("ERR Function {} already exists", function.name));
                    }
                }
                functions.insert(key, (library.clone(), i));
            }
        }
        self.functions = functions;
        Ok(())
    }
}

/// A library compiled and run in one engine, not yet in the registry.
struct Compiled {
    name: String,
    code: Bytes,
    functions: Vec<Registered>,
}

/// A function registered by a library's code while it loads.
pub(crate) struct Registered {
    info: FunctionInfo,
    callback: Function,
}

impl FunctionLibraries {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes with every load, delete, flush and restore.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// The function FCALL `name` would run (any case), with its library.
    pub fn lookup(&self, name: &[u8]) -> Option<(Arc<Library>, FunctionInfo)> {
        let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        let state = self.read();
        let (library, index) = state.functions.get(&name)?;
        let info = library.functions.get(*index)?.clone();
        Some((library.clone(), info))
    }

    /// The flags of function `name` (for FCALL_RO, OOM and replica checks before running).
    pub fn function_flags(&self, name: &[u8]) -> Option<ScriptFlags> {
        self.lookup(name).map(|(_, info)| info.flags)
    }

    /// Every library, by name (FUNCTION LIST; the server filters by LIBRARYNAME pattern).
    pub fn libraries(&self) -> Vec<Arc<Library>> {
        self.read().libraries.values().cloned().collect()
    }

    /// The library called `name`.
    pub fn library(&self, name: &str) -> Option<Arc<Library>> {
        self.read().libraries.get(name).cloned()
    }

    /// `(libraries, functions)` counts (FUNCTION STATS).
    pub fn counts(&self) -> (usize, usize) {
        let state = self.read();
        (state.libraries.len(), state.functions.len())
    }

    /// FUNCTION DELETE: `ERR Library not found` if there is no such library.
    pub fn delete(&self, name: &[u8]) -> Result<(), String> {
        let name = String::from_utf8_lossy(name);
        let mut state = self.write();
        if state.libraries.remove(name.as_ref()).is_none() {
            return Err("ERR Library not found".to_string());
        }
        state
            .functions
            .retain(|_, (library, _)| library.name != name);
        state.generation += 1;
        Ok(())
    }

    /// FUNCTION FLUSH: deletes every library.
    pub fn flush(&self) {
        let mut state = self.write();
        state.libraries.clear();
        state.functions.clear();
        state.generation += 1;
    }

    fn live_ids(&self) -> (u64, HashSet<u64>) {
        let state = self.read();
        (
            state.generation,
            state.libraries.values().map(|l| l.id).collect(),
        )
    }

    /// Adds compiled libraries atomically (all or none); returns their ids in order.
    /// `exists` words the error for a library that already exists under [`RestorePolicy::Append`]
    /// (FUNCTION LOAD quotes the name, FUNCTION RESTORE does not).
    fn install(
        &self,
        compiled: &[Compiled],
        policy: RestorePolicy,
        exists: fn(&str) -> String,
    ) -> Result<Vec<u64>, String> {
        let mut state = self.write();
        let mut next = state.clone();
        if policy == RestorePolicy::Flush {
            next.libraries.clear();
        }
        let mut ids = Vec::with_capacity(compiled.len());
        for library in compiled {
            if policy == RestorePolicy::Append && next.libraries.contains_key(&library.name) {
                return Err(exists(&library.name));
            }
            let id = next.next_id;
            next.next_id += 1;
            ids.push(id);
            let library = Library {
                name: library.name.clone(),
                code: library.code.clone(),
                functions: library.functions.iter().map(|f| f.info.clone()).collect(),
                id,
            };
            next.libraries
                .insert(library.name.clone(), Arc::new(library));
        }
        let added: Vec<&str> = compiled.iter().map(|l| l.name.as_str()).collect();
        next.reindex(&added)?;
        next.generation += 1;
        *state = next;
        Ok(ids)
    }

    /// The FUNCTION DUMP payload of every library: our own format (see [`decode_dump`]).
    pub fn dump(&self) -> Bytes {
        let state = self.read();
        let mut out = BytesMut::new();
        out.put_slice(DUMP_MAGIC);
        out.put_u8(DUMP_VERSION);
        out.put_u32_le(state.libraries.len() as u32);
        for library in state.libraries.values() {
            out.put_u32_le(library.code.len() as u32);
            out.put_slice(&library.code);
        }
        let checksum = crc32fast::hash(&out);
        out.put_u32_le(checksum);
        out.freeze()
    }
}

/// The first bytes of a function dump.
const DUMP_MAGIC: &[u8; 4] = b"KVFN";
/// The dump format version: 1 = count, then length-prefixed library codes, then CRC-32.
const DUMP_VERSION: u8 = 1;

/// The reply Redis gives for a payload it cannot use.
const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";

/// Splits a [`FunctionLibraries::dump`] payload into library codes, checking the magic,
/// version and checksum. Format: `KVFN`, version byte, u32 count, per library u32 length +
/// code, CRC-32 of everything before it; integers little-endian.
pub fn decode_dump(payload: &[u8]) -> Result<Vec<Bytes>, String> {
    let bad = || BAD_PAYLOAD.to_string();
    let (body, checksum) = payload
        .split_at_checked(payload.len().wrapping_sub(4))
        .ok_or_else(bad)?;
    let checksum = u32::from_le_bytes(checksum.try_into().map_err(|_| bad())?);
    if payload.len() < 13 || crc32fast::hash(body) != checksum {
        return Err(bad());
    }
    let rest = body.strip_prefix(DUMP_MAGIC.as_slice()).ok_or_else(bad)?;
    let (&version, rest) = rest.split_first().ok_or_else(bad)?;
    if version != DUMP_VERSION {
        return Err(bad());
    }
    let mut rest = rest;
    let take_u32 = |rest: &mut &[u8]| -> Result<usize, String> {
        let (n, tail) = rest.split_at_checked(4).ok_or_else(bad)?;
        *rest = tail;
        Ok(u32::from_le_bytes(n.try_into().map_err(|_| bad())?) as usize)
    };
    let count = take_u32(&mut rest)?;
    let mut codes = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let len = take_u32(&mut rest)?;
        let (code, tail) = rest.split_at_checked(len).ok_or_else(bad)?;
        codes.push(Bytes::copy_from_slice(code));
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(codes)
}

impl Engine {
    /// FUNCTION LOAD [REPLACE]: runs the library's code in this engine, then adds it to
    /// `libraries`. Returns the library name, or the error reply text (`ERR Library 'x'
    /// already exists`, `ERR Function f already exists`, `ERR No functions registered`,
    /// `ERR Error compiling function: ...`, `ERR Error registering functions: ...`, the
    /// header errors of [`parse_library`]).
    pub fn function_load(
        &mut self,
        libraries: &FunctionLibraries,
        code: &[u8],
        replace: bool,
    ) -> Result<String, String> {
        let header = parse_library(code)?;
        if !replace && libraries.library(&header.name).is_some() {
            return Err(format!("ERR Library '{}' already exists", header.name));
        }
        let compiled = self.compile_library(code)?;
        let policy = if replace {
            RestorePolicy::Replace
        } else {
            RestorePolicy::Append
        };
        let ids = libraries.install(std::slice::from_ref(&compiled), policy, |name| {
            format!("ERR Library '{name}' already exists")
        })?;
        let name = compiled.name.clone();
        self.cache_compiled(ids, vec![compiled]);
        Ok(name)
    }

    /// FUNCTION RESTORE: loads every library of a [`FunctionLibraries::dump`] payload under
    /// `policy`, all or none.
    pub fn function_restore(
        &mut self,
        libraries: &FunctionLibraries,
        payload: &[u8],
        policy: RestorePolicy,
    ) -> Result<(), String> {
        let codes = decode_dump(payload)?;
        let mut compiled = Vec::with_capacity(codes.len());
        for code in &codes {
            compiled.push(self.compile_library(code)?);
        }
        let ids = libraries.install(&compiled, policy, |name| {
            format!("ERR Library {name} already exists")
        })?;
        self.cache_compiled(ids, compiled);
        Ok(())
    }

    /// FCALL/FCALL_RO: runs function `name` with `keys` and `argv` (the server has already
    /// checked the key count and, for FCALL_RO, the `no-writes` flag). `ERR Function not
    /// found` if there is no such function; errors are shaped as in [`Engine::run`] with the
    /// function name in place of the SHA-1 (`... script: f, on @user_function:3.`).
    pub fn fcall(
        &mut self,
        libraries: &FunctionLibraries,
        name: &[u8],
        keys: Argv<'_>,
        argv: Argv<'_>,
        host: &mut dyn Host,
    ) -> Frame {
        let Some((library, info)) = libraries.lookup(name) else {
            return Frame::Error(Bytes::from_static(b"ERR Function not found"));
        };
        if self.libraries_generation != libraries.generation() {
            let (generation, live) = libraries.live_ids();
            self.libraries.retain(|id, _| live.contains(id));
            self.libraries_generation = generation;
        }
        if !self.libraries.contains_key(&library.id) {
            match self.compile_library(&library.code) {
                Ok(compiled) => self.cache_compiled(vec![library.id], vec![compiled]),
                Err(e) => return Frame::Error(Bytes::from(e)),
            }
        }
        let callback = self
            .libraries
            .get(&library.id)
            .and_then(|functions| functions.get(&info.name))
            .cloned();
        match callback {
            Some(callback) => {
                self.execute(Target::Callback(&callback), &info.name, keys, argv, host)
            }
            None => Frame::Error(Bytes::from_static(b"ERR Function not found")),
        }
    }

    fn cache_compiled(&mut self, ids: Vec<u64>, compiled: Vec<Compiled>) {
        for (id, library) in ids.into_iter().zip(compiled) {
            let functions = library
                .functions
                .into_iter()
                .map(|f| (f.info.name, f.callback))
                .collect();
            self.libraries.insert(id, functions);
        }
    }

    /// Compiles a library and runs its top-level code in a fresh library environment,
    /// collecting what it registers.
    fn compile_library(&mut self, code: &[u8]) -> Result<Compiled, String> {
        let header = parse_library(code)?;
        let (env, finish): (Table, Function) =
            self.library_env.call(()).map_err(|e| format!("ERR {e}"))?;
        let chunk = self
            .lua
            .load(header.code)
            .set_name("@user_function")
            .set_environment(env)
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", lua_message(&e)))?;
        set_registering(&self.lua, Some(Vec::new()));
        let outcome = self.run_library_code(chunk);
        let registered = set_registering(&self.lua, None).unwrap_or_default();
        outcome.map_err(|e| format!("ERR Error registering functions: {e}"))?;
        finish.call::<()>(()).map_err(|e| format!("ERR {e}"))?;
        if registered.is_empty() {
            return Err("ERR No functions registered".to_string());
        }
        Ok(Compiled {
            name: header.name,
            code: Bytes::copy_from_slice(code),
            functions: registered,
        })
    }
}

/// Sets the list `redis.register_function` appends to; returns the previous one.
fn set_registering(lua: &Lua, list: Option<Vec<Registered>>) -> Option<Vec<Registered>> {
    let mut state = lua.app_data_mut::<RunState>()?;
    std::mem::replace(&mut state.registering, list)
}

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=...,
/// callback=..., flags={...}, description=...}` while a library loads.
pub(crate) fn register_function(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    let args: Vec<Value> = args.into_iter().collect();
    let (name, callback, flags, description) = match args.as_slice() {
        [Value::Table(t)] => named_arguments(lua, t)?,
        [_] => return Err(reply_error(
            "ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
        )),
        [name, callback] => {
            let Value::Function(callback) = callback else {
                return Err(reply_error(
                    "ERR second argument to redis.register_function must be a function",
                ));
            };
            let Some(name) = lua.coerce_string(name.clone())? else {
                return Err(reply_error(
                    "ERR first argument to redis.register_function must be a string",
                ));
            };
            (name.as_bytes().to_vec(), callback.clone(), ScriptFlags::default(), None)
        }
        _ => {
            return Err(reply_error(
                "ERR wrong number of arguments to redis.register_function",
            ))
        }
    };
    if !valid_name(&name) {
        return Err(reply_error(INVALID_NAME));
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let mut state = lua.app_data_mut::<RunState>().ok_or_else(|| {
        reply_error("ERR redis.register_function is only available while loading a library")
    })?;
    let Some(registered) = state.registering.as_mut() else {
        return Err(reply_error(
            "ERR redis.register_function is only available while loading a library",
        ));
    };
    if registered.iter().any(|f| f.info.name == name) {
        return Err(reply_error("ERR Function already exists in the library"));
    }
    registered.push(Registered {
        info: FunctionInfo {
            name,
            description,
            flags: ScriptFlags {
                declared: true,
                ..flags
            },
        },
        callback,
    });
    Ok(())
}

type NamedArguments = (Vec<u8>, Function, ScriptFlags, Option<String>);

/// The table form of `redis.register_function`.
fn named_arguments(lua: &Lua, table: &Table) -> mlua::Result<NamedArguments> {
    let mut name = None;
    let mut callback = None;
    let mut flags = ScriptFlags::default();
    let mut description = None;
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair?;
        let key = match &key {
            Value::String(s) => s.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        match key.as_slice() {
            b"function_name" => match lua.coerce_string(value)? {
                Some(s) => name = Some(s.as_bytes().to_vec()),
                None => return Err(reply_error(
                    "ERR function_name argument given to redis.register_function must be a string",
                )),
            },
            b"callback" => {
                match value {
                    Value::Function(f) => callback = Some(f),
                    _ => return Err(reply_error(
                        "ERR callback argument given to redis.register_function must be a function",
                    )),
                }
            }
            b"description" => match lua.coerce_string(value)? {
                Some(s) => description = Some(s.to_string_lossy()),
                None => return Err(reply_error(
                    "ERR description argument given to redis.register_function must be a string",
                )),
            },
            b"flags" => {
                let Value::Table(list) = value else {
                    return Err(reply_error(
                        "ERR flags argument to redis.register_function must be a table representing function flags",
                    ));
                };
                for item in list.sequence_values::<Value>() {
                    let known = match item? {
                        Value::String(s) => flags.set_by_name(&s.as_bytes()),
                        _ => false,
                    };
                    if !known {
                        return Err(reply_error("ERR unknown flag given"));
                    }
                }
            }
            _ => {
                return Err(reply_error(
                    "ERR unknown argument given to redis.register_function",
                ))
            }
        }
    }
    let Some(name) = name else {
        return Err(reply_error(
            "ERR redis.register_function must get a function name argument",
        ));
    };
    let Some(callback) = callback else {
        return Err(reply_error(
            "ERR redis.register_function must get a callback argument",
        ));
    };
    Ok((name, callback, flags, description))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any set of library codes survives dump + decode, in name order.
        #[test]
        fn dump_payload_round_trips(
            codes in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..5)
        ) {
            let libs = FunctionLibraries::new();
            {
                let mut state = libs.write();
                for (i, code) in codes.iter().enumerate() {
                    let name = format!("l{i:02}");
                    let library = Library {
                        name: name.clone(),
                        code: Bytes::copy_from_slice(code),
                        functions: Vec::new(),
                        id: i as u64,
                    };
                    state.libraries.insert(name, Arc::new(library));
                }
            }
            let decoded = decode_dump(&libs.dump()).unwrap();
            let expected: Vec<Bytes> = codes.iter().map(|c| Bytes::copy_from_slice(c)).collect();
            proptest::prop_assert_eq!(decoded, expected);
        }

        /// Damaging any one byte of a payload is detected.
        #[test]
        fn damaged_payloads_are_refused(index in 0usize..64, bit in 0u8..8) {
            let libs = FunctionLibraries::new();
            {
                let mut state = libs.write();
                let library = Library {
                    name: "lib".to_string(),
                    code: Bytes::from_static(b"#!lua name=lib\nredis.register_function('f', function() end)"),
                    functions: Vec::new(),
                    id: 0,
                };
                state.libraries.insert("lib".to_string(), Arc::new(library));
            }
            let mut payload = libs.dump().to_vec();
            let index = index % payload.len();
            payload[index] ^= 1 << bit;
            proptest::prop_assert!(decode_dump(&payload).is_err());
        }
    }
}
