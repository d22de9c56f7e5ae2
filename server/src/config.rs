//! Command-line configuration. Flags are named after Redis's configuration parameters
//! (`--port`, `--bind`, `--maxclients`...), so habits carry over from `redis-server`.

use crate::store::Limits;
use clap::{Parser, ValueEnum};

/// `kvserver` flags.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "kvserver",
    version,
    about = "A multi-threaded Redis-compatible key-value server",
    override_usage = "kvserver [CONFIG_FILE] [OPTIONS]",
    after_help = "CONFIG_FILE: directives named as the options without their dashes, one per \
                  line (tcp-backlog 1024), as in redis.conf; options given here override it."
)]
pub struct Config {
    /// Addresses to listen on, separated by spaces (as Redis's `bind`).
    #[arg(long, default_value = "127.0.0.1", value_delimiter = ' ', num_args = 1..)]
    pub bind: Vec<String>,

    /// TCP port (0 picks a free one; with `--tls-port` set, 0 turns the plain port off).
    #[arg(long, default_value_t = 6379)]
    pub port: u16,

    /// TLS port (0, the default: no TLS). Served beside the plain port, on the same
    /// `--bind` addresses. Needs `--tls-cert-file` and `--tls-key-file`.
    #[arg(long = "tls-port", default_value_t = 0)]
    pub tls_port: u16,

    /// Listen for TLS on a port the system picks, as `--port 0` does for plain TCP (for
    /// servers started in-process, in tests). Not a flag: `--tls-port 0` means no TLS.
    #[arg(skip)]
    pub tls_any_port: bool,

    /// The server's certificate chain (PEM), the server's own certificate first.
    #[arg(long = "tls-cert-file", default_value = "", hide_default_value = true)]
    pub tls_cert_file: String,

    /// The private key of `--tls-cert-file` (PEM: PKCS#8, PKCS#1 or SEC1; not encrypted).
    #[arg(long = "tls-key-file", default_value = "", hide_default_value = true)]
    pub tls_key_file: String,

    /// CA certificates (PEM) that client certificates must chain to.
    #[arg(
        long = "tls-ca-cert-file",
        default_value = "",
        hide_default_value = true
    )]
    pub tls_ca_cert_file: String,

    /// Client certificates: required (yes), checked when presented (optional) or not asked
    /// for (no).
    #[arg(long = "tls-auth-clients", value_enum, default_value_t = TlsAuthClients::Yes)]
    pub tls_auth_clients: TlsAuthClients,

    /// TLS versions to accept, separated by spaces: "TLSv1.2", "TLSv1.3" or both ("", the
    /// default: both). Older versions are not supported.
    #[arg(long = "tls-protocols", default_value = "", hide_default_value = true)]
    pub tls_protocols: String,

    /// Number of databases (SELECT 0..databases-1).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub databases: u32,

    /// Maximum number of connected clients; further clients get an error and are closed.
    #[arg(long, default_value_t = 10_000)]
    pub maxclients: usize,

    /// Close a client after this many seconds without a command (0: never), as Redis's
    /// `timeout`. Blocked clients and subscribers are not closed.
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,

    /// Log verbosity, in Redis's terms.
    #[arg(long, value_enum, default_value_t = LogLevel::Notice)]
    pub loglevel: LogLevel,

    /// Largest bulk string a client may send, in bytes (Redis's `proto-max-bulk-len`).
    #[arg(long = "proto-max-bulk-len", default_value_t = 512 * 1024 * 1024)]
    pub proto_max_bulk_len: usize,

    /// Background task frequency in Hz (active expiry runs `hz` times per second).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub hz: u32,

    /// Connection threads (0: one per core, less one core left to the kernel and to clients,
    /// and at least one). Each runs its own event loop; connections are dealt to them
    /// round-robin.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,

    /// Longest time, in microseconds, a connection thread with nothing to do polls its
    /// sockets before it sleeps (adaptive; 0 turns polling off). Saves the clients the cost
    /// of waking the thread under load; see `idle_poll`.
    #[arg(long = "idle-poll-us", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub idle_poll_us: u32,

    /// Length of the queue of connections the kernel completes before the server accepts them
    /// (`listen(2)` backlog; the kernel caps it at `net.core.somaxconn`). Redis's default.
    /// A short queue makes a burst of connects wait a second each for a SYN retransmission:
    /// measured, 3,000 clients connecting at once took 18 s with 128, 0.1 s with 511.
    #[arg(long = "tcp-backlog", default_value_t = 511)]
    pub tcp_backlog: u32,

    /// Most keys the client-side caching table remembers (CLIENT TRACKING); past it, keys are
    /// dropped from the table and their readers told to drop them. 0: no bound. Redis's
    /// default.
    #[arg(long = "tracking-table-max-keys", default_value_t = crate::tracking::DEFAULT_MAX_KEYS)]
    pub tracking_table_max_keys: usize,

    /// Password of the default user: clients must AUTH (or HELLO ... AUTH) before other
    /// commands. Empty: none, as Redis's default. Prefer CONFIG SET or a config file over the
    /// command line, where other local users can read it.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub requirepass: String,

    /// ACL file: users loaded at start-up, by ACL LOAD, and written by ACL SAVE (one
    /// `user <name> <rules...>` per line). Not together with `--user`.
    #[arg(long)]
    pub aclfile: Option<std::path::PathBuf>,

    /// An ACL user, as Redis's `user` directive writes it: "alice on >secret ~app:* +@read".
    /// Repeat for more users.
    #[arg(long = "user")]
    pub users: Vec<String>,

    /// Most entries ACL LOG keeps.
    #[arg(long = "acllog-max-len", default_value_t = 128)]
    pub acllog_max_len: usize,

    /// Protected mode, as Redis: while the default user has no password, only loopback
    /// clients are served; others get `-DENIED ...` and are closed (yes|no).
    #[arg(long = "protected-mode", default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub protected_mode: bool,

    /// Most connections open at once from one client address (0: no bound; beyond Redis).
    #[arg(long = "max-connections-per-ip", default_value_t = 0)]
    pub max_connections_per_ip: usize,

    /// Seconds between TCP keepalive probes on idle client connections (0: off), as Redis's
    /// `tcp-keepalive`: dead peers are noticed and their connections freed.
    #[arg(long = "tcp-keepalive", default_value_t = 300)]
    pub tcp_keepalive: u64,

    /// Most bytes of unprocessed input one client may have buffered; past it the client is
    /// closed (Redis's `client-query-buffer-limit`; sizes may carry a unit: 1gb).
    #[arg(long = "client-query-buffer-limit", default_value = "1gb", value_parser = parse_memory)]
    pub client_query_buffer_limit: u64,

    /// Requests one client address may make per `--rate-window` (0: no limit, the default).
    /// Past it, requests get a `RATELIMIT` error; the connection stays usable.
    #[arg(long = "rate-limit", default_value_t = 0)]
    pub rate_limit: u64,

    /// The window of `--rate-limit`: 500ms, 30s, 1m, 2h.
    #[arg(long = "rate-window", default_value = "1m", value_parser = crate::ratelimit::parse_window)]
    pub rate_window_ms: u64,

    /// Whether loopback clients are exempt from `--rate-limit` (yes|no).
    #[arg(long = "rate-limit-exempt-loopback", default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub rate_limit_exempt_loopback: bool,

    /// Directory for the snapshot file and the append-only directory.
    #[arg(long, default_value = ".")]
    pub dir: std::path::PathBuf,

    /// Snapshot file name inside `--dir`.
    #[arg(long, default_value = "dump.kvs")]
    pub dbfilename: String,

    /// Snapshot rules, "SECONDS CHANGES [SECONDS CHANGES ...]": snapshot when at least CHANGES
    /// writes happened within SECONDS. "" turns automatic snapshots off.
    #[arg(long, default_value = DEFAULT_SAVE, value_parser = parse_save_rules)]
    pub save: SaveRules,

    /// Refuse writes while the last snapshot failed, as long as save rules exist (yes|no).
    #[arg(long = "stop-writes-on-bgsave-error", default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub stop_writes_on_bgsave_error: bool,

    /// Log every write to the append-only file (yes|no).
    #[arg(long, default_value = "no", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub appendonly: bool,

    /// When the append-only file is fsynced: after every write (always), once per second
    /// (everysec) or when the OS decides (no).
    #[arg(long, value_enum, default_value_t = FsyncPolicy::Everysec)]
    pub appendfsync: FsyncPolicy,

    /// Base name of the append-only files.
    #[arg(long, default_value = "appendonly.aof")]
    pub appendfilename: String,

    /// Directory (inside `--dir`) that holds the append-only files and their manifest.
    #[arg(long, default_value = "appendonlydir")]
    pub appenddirname: String,

    /// Rewrite the log automatically when it has grown by this percentage since the last
    /// rewrite (0 disables automatic rewrites).
    #[arg(long = "auto-aof-rewrite-percentage", default_value_t = 100)]
    pub auto_aof_rewrite_percentage: u64,

    /// ...but not before the log reaches this size (bytes, or with a unit: 64mb, 1gb).
    #[arg(long = "auto-aof-rewrite-min-size", default_value = "64mb", value_parser = parse_memory)]
    pub auto_aof_rewrite_min_size: u64,

    /// Most fields of a hash kept in the compact encoding.
    #[arg(long = "hash-max-listpack-entries", default_value_t = 128)]
    pub hash_max_listpack_entries: usize,

    /// Longest field or value (bytes) of a hash kept in the compact encoding.
    #[arg(long = "hash-max-listpack-value", default_value_t = 64)]
    pub hash_max_listpack_value: usize,

    /// Most members of an all-integer set kept as a sorted integer array.
    #[arg(long = "set-max-intset-entries", default_value_t = 512)]
    pub set_max_intset_entries: usize,

    /// Most members of another set kept in the compact encoding.
    #[arg(long = "set-max-listpack-entries", default_value_t = 128)]
    pub set_max_listpack_entries: usize,

    /// Longest member (bytes) of a set kept in the compact encoding.
    #[arg(long = "set-max-listpack-value", default_value_t = 64)]
    pub set_max_listpack_value: usize,

    /// Most members of a sorted set kept in the compact encoding.
    #[arg(long = "zset-max-listpack-entries", default_value_t = 128)]
    pub zset_max_listpack_entries: usize,

    /// Longest member (bytes) of a sorted set kept in the compact encoding.
    #[arg(long = "zset-max-listpack-value", default_value_t = 64)]
    pub zset_max_listpack_value: usize,

    /// Size of one list chunk: N > 0 elements, or -1..-5 for 4, 8, 16, 32 or 64 KiB.
    #[arg(long = "list-max-listpack-size", default_value_t = -2, allow_negative_numbers = true)]
    pub list_max_listpack_size: i64,
}

impl Config {
    /// Whether the server listens for TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls_port != 0 || self.tls_any_port
    }

    /// Whether the server listens for plain TCP: always, except with `--port 0` and a
    /// `--tls-port` (TLS only, as Redis's `port 0`).
    pub fn plain_enabled(&self) -> bool {
        self.port != 0 || self.tls_port == 0
    }

    /// The compact-encoding thresholds given at start-up.
    pub fn encoding_limits(&self) -> Limits {
        Limits {
            hash_max_listpack_entries: self.hash_max_listpack_entries,
            hash_max_listpack_value: self.hash_max_listpack_value,
            set_max_intset_entries: self.set_max_intset_entries,
            set_max_listpack_entries: self.set_max_listpack_entries,
            set_max_listpack_value: self.set_max_listpack_value,
            zset_max_listpack_entries: self.zset_max_listpack_entries,
            zset_max_listpack_value: self.zset_max_listpack_value,
            list_max_listpack_size: self.list_max_listpack_size,
        }
    }
}

/// Redis's default snapshot rules.
pub const DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";

/// Snapshot rules: (seconds, changes) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveRules(pub Vec<(u64, u64)>);

impl SaveRules {
    /// The rules as CONFIG GET prints them ("3600 1 300 100").
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(seconds, changes)| format!("{seconds} {changes}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Parses `--save`: pairs of positive integers separated by spaces, or "" for none.
pub fn parse_save_rules(text: &str) -> Result<SaveRules, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err("save rules come in pairs: SECONDS CHANGES".to_owned());
    }
    words
        .chunks_exact(2)
        .map(|pair| {
            let seconds = pair[0]
                .parse::<u64>()
                .map_err(|_| format!("invalid seconds '{}'", pair[0]))?;
            let changes = pair[1]
                .parse::<u64>()
                .map_err(|_| format!("invalid changes '{}'", pair[1]))?;
            Ok((seconds, changes))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(SaveRules)
}

/// Parses yes/no, as Redis's boolean options.
pub fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("argument must be 'yes' or 'no', not '{text}'")),
    }
}

/// Parses a memory amount as Redis does: bytes, or a number with k/kb/m/mb/g/gb (k = 1000,
/// kb = 1024).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("invalid memory amount '{text}'"))?;
    let factor: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(format!("invalid memory unit in '{text}'")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("memory amount '{text}' is too large"))
}

/// `appendfsync` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncPolicy {
    /// Reply only after the write's record is on disk (group commit).
    Always,
    /// fsync once per second: a crash may lose about one second of writes.
    Everysec,
    /// Never fsync explicitly; the OS flushes when it wants.
    No,
}

impl FsyncPolicy {
    /// The Redis name.
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Everysec => "everysec",
            FsyncPolicy::No => "no",
        }
    }

    /// Parses a Redis name, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<FsyncPolicy> {
        [FsyncPolicy::Always, FsyncPolicy::Everysec, FsyncPolicy::No]
            .into_iter()
            .find(|policy| name.eq_ignore_ascii_case(policy.name().as_bytes()))
    }
}

/// Connection threads when `--threads` is 0, on a machine with `cores` usable cores: one per
/// core but one, and at least one.
///
/// Why not one per core: the spare core is for what the server's throughput depends on
/// besides its own threads - the kernel's network processing, clients on the same machine,
/// and the server's background threads (persistence, active expiry, freeing). Redis gives the
/// same advice for its I/O threads. Measured on a 2-core machine running redis-benchmark
/// beside the server (README, Performance): one connection thread beat two on every test.
pub fn default_connection_threads(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".to_owned()],
            port: 6379,
            tls_port: 0,
            tls_any_port: false,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            tls_ca_cert_file: String::new(),
            tls_auth_clients: TlsAuthClients::Yes,
            tls_protocols: String::new(),
            databases: 16,
            maxclients: 10_000,
            timeout: 0,
            loglevel: LogLevel::Notice,
            proto_max_bulk_len: 512 * 1024 * 1024,
            hz: 10,
            threads: 0,
            idle_poll_us: 50,
            tcp_backlog: 511,
            tracking_table_max_keys: crate::tracking::DEFAULT_MAX_KEYS,
            requirepass: String::new(),
            aclfile: None,
            users: Vec::new(),
            acllog_max_len: 128,
            protected_mode: true,
            max_connections_per_ip: 0,
            tcp_keepalive: 300,
            client_query_buffer_limit: 1 << 30,
            rate_limit: 0,
            rate_window_ms: 60_000,
            rate_limit_exempt_loopback: true,
            dir: ".".into(),
            dbfilename: "dump.kvs".to_owned(),
            save: parse_save_rules(DEFAULT_SAVE).unwrap_or_default(),
            stop_writes_on_bgsave_error: true,
            appendonly: false,
            appendfsync: FsyncPolicy::Everysec,
            appendfilename: "appendonly.aof".to_owned(),
            appenddirname: "appendonlydir".to_owned(),
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            hash_max_listpack_entries: Limits::DEFAULT.hash_max_listpack_entries,
            hash_max_listpack_value: Limits::DEFAULT.hash_max_listpack_value,
            set_max_intset_entries: Limits::DEFAULT.set_max_intset_entries,
            set_max_listpack_entries: Limits::DEFAULT.set_max_listpack_entries,
            set_max_listpack_value: Limits::DEFAULT.set_max_listpack_value,
            zset_max_listpack_entries: Limits::DEFAULT.zset_max_listpack_entries,
            zset_max_listpack_value: Limits::DEFAULT.zset_max_listpack_value,
            list_max_listpack_size: Limits::DEFAULT.list_max_listpack_size,
        }
    }
}

/// `tls-auth-clients`: whether TLS clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsAuthClients {
    /// A certificate signed by `tls-ca-cert-file` is required (the default).
    Yes,
    /// No certificate is asked for.
    No,
    /// A certificate is asked for; one that is presented must verify.
    Optional,
}

impl TlsAuthClients {
    /// The Redis name, as CONFIG GET prints it.
    pub fn name(self) -> &'static str {
        match self {
            TlsAuthClients::Yes => "yes",
            TlsAuthClients::No => "no",
            TlsAuthClients::Optional => "optional",
        }
    }

    /// Parses a Redis name, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<TlsAuthClients> {
        [
            TlsAuthClients::Yes,
            TlsAuthClients::No,
            TlsAuthClients::Optional,
        ]
        .into_iter()
        .find(|mode| name.eq_ignore_ascii_case(mode.name().as_bytes()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_connection_threads_leave_one_core_spare() {
        assert_eq!(default_connection_threads(0), 1);
        assert_eq!(default_connection_threads(1), 1);
        assert_eq!(default_connection_threads(2), 1);
        assert_eq!(default_connection_threads(4), 3);
        assert_eq!(default_connection_threads(64), 63);
    }
}
