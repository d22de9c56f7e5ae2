//! Client-side tools for kvstore: the `kvcli` shell and the `kvbench` load generator.
//!
//! `kvcli` speaks RESP through the protocol crate (requests encoded and replies decoded by
//! `protocol::RespCodec`, typed lines split by `protocol::inline::split_args`) and behaves
//! like redis-cli. Its parts:
//!
//! - [`args`]: flags (clap) and their resolution into a [`args::Config`]; [`uri`] for `-u`.
//! - [`connection`]: one blocking TCP connection; [`session`] keeps it in the state the user
//!   asked for (credentials, database, RESP3) across reconnections.
//! - [`render`]: replies printed as redis-cli prints them (formatted or raw).
//! - [`repl`], [`helper`], [`history`]: the interactive shell (rustyline), its completion,
//!   hints and history; [`help`] for the `help` built-in.
//! - [`docs`], [`hints`], [`commands`]: the command table behind help and hints, from
//!   `COMMAND DOCS` or from the command catalogue compiled in (`protocol::catalogue`, which
//!   also parses the syntax lines).
//! - [`exec`], [`oneshot`], [`pipe`], [`scan`]: running commands, one-shot mode, `--pipe`,
//!   `--scan`; [`app`] picks the mode. `SUBSCRIBE` and its kin listen until Ctrl-C
//!   ([`interrupt`]).
//! - [`tls`]: `--tls` and its options, as redis-cli names them.
//! - [`watch`]: `kvcli watch KEY|PATTERN ...`, live changes through keyspace notifications.

#![warn(missing_docs)]

pub mod app;
pub mod args;
pub mod commands;
pub mod connection;
pub mod docs;
pub mod exec;
pub mod help;
pub mod helper;
pub mod hints;
pub mod history;
pub mod interrupt;
pub mod oneshot;
pub mod pipe;
pub mod render;
pub mod repl;
pub mod scan;
pub mod session;
pub mod tls;
pub mod uri;
pub mod watch;

pub use app::run;
