//! End-to-end tests of kvstore: the real server over real sockets, driven by the `redis`
//! crate, by raw TCP clients writing bytes the way netcat would, by the `kvserver` binary
//! as a separate process, and by real Redis tools when they are installed. `differential`
//! compares replies with a real `redis-server`.
//!
//! One test binary with modules (rather than one binary per file) links once and runs fast.
//! It is a test target of the server package (server/Cargo.toml), not of the root package,
//! so that cargo builds the `kvserver` binary first and tells the tests where it is (see
//! `util::kvserver_binary`). Run part of it with `cargo test --test tests <filter>`.

mod acl;
mod atomicity;
mod auth;
mod blocking;
mod check_aof;
mod connection;
mod crash;
mod differential;
mod disk_fault_matrix;
mod disk_faults;
mod expiry;
mod functions;
mod hashes;
mod hostile;
mod keys;
mod limits;
mod lists;
mod notifications;
mod notify_lists_hashes;
mod notify_sets_zsets;
mod persistence;
mod process;
mod protocol_errors;
mod pubsub;
mod scripting;
mod server_cmds;
mod sets;
mod strings;
mod tls;
mod tracking;
mod transactions;
mod util;
mod zsets;
