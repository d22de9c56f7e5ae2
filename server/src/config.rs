//! Command-line configuration. Flags are named after Redis's configuration parameters
//! (`--port`, `--bind`, `--maxclients`...), so habits carry over from `redis-server`.

use clap::{Parser, ValueEnum};

/// `kvserver` flags.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "kvserver",
    version,
    about = "A multi-threaded Redis-compatible key-value server"
)]
pub struct Config {
    /// Addresses to listen on, separated by spaces (as Redis's `bind`).
    #[arg(long, default_value = "127.0.0.1", value_delimiter = ' ', num_args = 1..)]
    pub bind: Vec<String>,

    /// TCP port (0 picks a free one).
    #[arg(long, default_value_t = 6379)]
    pub port: u16,

    /// Number of databases (SELECT 0..databases-1).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub databases: u32,

    /// Maximum number of connected clients; further clients get an error and are closed.
    #[arg(long, default_value_t = 10_000)]
    pub maxclients: usize,

    /// Log verbosity, in Redis's terms.
    #[arg(long, value_enum, default_value_t = LogLevel::Notice)]
    pub loglevel: LogLevel,

    /// Largest bulk string a client may send, in bytes (Redis's `proto-max-bulk-len`).
    #[arg(long = "proto-max-bulk-len", default_value_t = 512 * 1024 * 1024)]
    pub proto_max_bulk_len: usize,

    /// Background task frequency in Hz (active expiry runs `hz` times per second).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub hz: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".to_owned()],
            port: 6379,
            databases: 16,
            maxclients: 10_000,
            loglevel: LogLevel::Notice,
            proto_max_bulk_len: 512 * 1024 * 1024,
            hz: 10,
        }
    }
}

/// Redis's log levels, mapped onto `tracing` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-connection events.
    Debug,
    /// Informational messages.
    Verbose,
    /// Moderately verbose: what production wants (default).
    Notice,
    /// Only warnings and errors.
    Warning,
    /// Nothing at all.
    Nothing,
}

impl LogLevel {
    /// The Redis name, as CONFIG GET loglevel prints it.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "verbose",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Nothing => "nothing",
        }
    }

    /// Parses a Redis level name, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<LogLevel> {
        [
            LogLevel::Debug,
            LogLevel::Verbose,
            LogLevel::Notice,
            LogLevel::Warning,
            LogLevel::Nothing,
        ]
        .into_iter()
        .find(|level| name.eq_ignore_ascii_case(level.name().as_bytes()))
    }

    /// The `tracing` filter directive for this level.
    pub fn filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose | LogLevel::Notice => "info",
            LogLevel::Warning => "warn",
            LogLevel::Nothing => "off",
        }
    }
}
