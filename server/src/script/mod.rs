//! Lua scripting: the engine behind EVAL, EVALSHA, SCRIPT and FUNCTION.
//!
//! [`engine`] owns a Lua 5.1 state with Redis's sandbox and `redis.*` API and converts values
//! between Lua and RESP; [`libs`] adds the libraries Redis scripts may use (`cjson`,
//! `cmsgpack`, `bit`, `struct`). How a script's commands run, and how a script stays atomic
//! across shards, is the server's business (`cmd::scripting`), reached through
//! [`engine::Host`].

pub mod convert;
pub mod engine;
pub mod functions;
mod host;
pub mod libs;
mod redis_api;
mod sandbox;
pub mod shebang;

pub use engine::{Engine, Host, Script, ScriptCache};
pub use functions::{FunctionLibraries, RestorePolicy};
pub use shebang::ScriptFlags;
