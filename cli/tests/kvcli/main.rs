//! End-to-end tests of the `kvcli` binary against an in-process kvserver: one-shot
//! commands and their output modes, `--pipe`, `--scan`, the line-by-line shell, the
//! interactive shell through a pseudo-terminal, and the help table built from the command
//! catalogue checked against the server's `COMMAND DOCS`. The listening mode
//! (`SUBSCRIBE`) and `kvcli watch` are also checked against the real redis-server when it
//! is installed.

mod docs;
#[cfg(unix)]
mod listen;
mod modes;
mod oneshot;
#[cfg(unix)]
mod pty;
mod shell;
mod tls;
mod util;
#[cfg(unix)]
mod watch;
