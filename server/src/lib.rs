//! kvstore's server: a multi-threaded, Redis-compatible key-value server.
//!
//! `main.rs` only parses flags, sets up logging and calls [`server::start`]; everything else
//! lives here so that tests start the same server in-process on port 0.
//!
//! - [`server`]: accept loop, shared state, background cron.
//! - [`connection`]: the per-connection read / dispatch / write loop.
//! - [`idle_poll`]: connection threads poll their sockets briefly before sleeping.
//! - [`cmd`]: dispatch, the handler binding of the command catalogue (`protocol::catalogue`), and the commands.
//! - [`store`]: databases of 16 shards, each a hash table plus a TTL min-heap.
//! - [`propagate`]: the stream of write effects the store emits and its consumers drain.
//! - [`persist`]: snapshots and the append-only file (the stream's first consumer).
//! - [`tls`]: TLS settings, the rustls configuration, the handshake.
//! - [`sync`]: the std/loom shim for everything shared between threads.
//! - [`acl`]: users and permissions; [`ratelimit`]: per-address request budgets.

// Nothing that comes from the network or the disk may panic the server: outside tests,
// failures are handled, never unwrapped.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod accept;
pub mod acl;
pub mod admission;
pub mod auth;
pub mod buffers;
pub mod clients;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod descriptors;
pub mod doorbell;
#[doc(hidden)]
pub mod fuzzing;
pub mod glob;
pub mod idle_poll;
pub mod memory;
pub mod notify;
pub mod persist;
pub mod propagate;
pub mod pubsub;
pub mod ratelimit;
pub mod script;
pub mod server;
pub mod shared;
pub mod store;
pub mod sync;
pub mod tls;
pub mod tracking;
pub mod transport;

pub use config::Config;
pub use server::{start, start_on_disk, ServerHandle};

/// The Redis version we report in HELLO and INFO: the Redis release whose behaviour we
/// follow, so that client libraries enable the features they check for.
pub const VERSION_FOR_CLIENTS: &str = "7.2.0";
