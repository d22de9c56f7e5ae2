//! State shared by every connection, the cron and the command handlers: the keyspace, the
//! persistence layer, live configuration, counters and the shutdown signal. It sits below
//! `cmd` and `server` so that handlers reach it without importing the accept loop.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::clients::Registry;
use crate::config::{Config, LogLevel};
use crate::persist::Persistence;
use crate::store::Store;
use crate::sync::{Arc, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Changes the process's log filter at run time (CONFIG SET loglevel). Supplied by `main`,
/// which owns the tracing subscriber; tests run without one.
pub type LogControl = Box<dyn Fn(LogLevel) -> Result<(), String> + Send + Sync>;

/// Server-wide counters for INFO stats. Connections add to them once per batch of pipelined
/// commands, not once per command, to keep shared cache lines cold.
#[derive(Default)]
pub struct Stats {
    /// Connections accepted since start (or CONFIG RESETSTAT).
    pub connections_received: AtomicU64,
    /// Connections refused because of maxclients.
    pub rejected_connections: AtomicU64,
    /// Commands run.
    pub commands_processed: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
    /// Commands per second over the last ~1.6 s, sampled by the cron.
    pub ops_per_sec: AtomicU64,
}

/// State shared by every connection and the cron.
pub struct Shared {
    /// The keyspace (shared with background snapshot threads).
    pub store: std::sync::Arc<Store>,
    /// Snapshots, the append-only file and their state.
    pub persist: std::sync::Arc<Persistence>,
    /// Configuration given at start-up; runtime-changeable values live beside it.
    pub config: Config,
    /// Current maxclients (CONFIG SET maxclients).
    pub maxclients: AtomicUsize,
    /// Seconds after which an idle client is closed, 0 for never (CONFIG SET timeout).
    pub idle_timeout_secs: std::sync::atomic::AtomicU64,
    /// TCP keepalive time of new connections in seconds, 0 for off (CONFIG SET tcp-keepalive).
    pub tcp_keepalive_secs: std::sync::atomic::AtomicU64,
    /// Most unprocessed input a client may buffer (CONFIG SET client-query-buffer-limit).
    pub query_buffer_limit: std::sync::atomic::AtomicU64,
    /// Current log level (CONFIG SET loglevel).
    pub loglevel: Mutex<LogLevel>,
    /// Current cron frequency (CONFIG SET hz).
    pub hz: AtomicU32,
    /// Counters for INFO.
    pub stats: Stats,
    /// Connected clients.
    pub clients: Arc<Registry>,
    /// Port actually bound (differs from `config.port` when that is 0; 0 without a plain
    /// port).
    pub port: u16,
    /// TLS port actually bound (0: no TLS).
    pub tls_port: u16,
    /// When the server started.
    pub started: Instant,
    /// Set to shut the server down (signal or SHUTDOWN).
    pub shutdown: ShutdownSignal,
    /// The runtime the server was started on, which has a timer driver (the connection
    /// threads' runtimes have none): blocking commands' timeouts sleep there.
    pub timers: tokio::runtime::Handle,
    /// Lua scripts: the cache, and which scripts run past the busy threshold.
    pub scripting: crate::cmd::scripting::Scripting,
    /// Pub/Sub subscriptions (shared with each subscriber's session, which leaves them when
    /// it ends).
    pub pubsub: crate::sync::Arc<crate::pubsub::PubSub>,
    /// Client-side caching: the keys tracking clients read, and their invalidations.
    pub tracking: std::sync::Arc<crate::tracking::Tracking>,
    /// Users, their passwords and permissions (`requirepass`, AUTH, ACL).
    pub acl: crate::acl::Acl,
    /// Who may connect: protected mode, connections per address.
    pub admission: std::sync::Arc<crate::admission::Admission>,
    /// Per-address request budgets (`--rate-limit`).
    pub rate_limiter: crate::ratelimit::RateLimiter,
    /// TLS settings and the configuration new TLS connections get.
    pub tls: crate::tls::Tls,
    /// `notify-keyspace-events`: which keyspace notifications are published.
    pub notifications: std::sync::Arc<crate::notify::Notifications>,
    pub(crate) log_control: Option<LogControl>,
}

/// The server-wide shutdown signal.
///
/// Connections test [`ShutdownSignal::is_started`] (one atomic load) between batches instead
/// of awaiting a future on every read: a `CancellationToken`'s `is_cancelled` and its waiter
/// list both take one mutex shared by every connection, which showed up at ~1.5% of CPU at
/// -P 1 and bounced between the connection threads. A connection idle in a read is woken by
/// its thread aborting it instead (see `run_worker`).
#[derive(Default)]
pub struct ShutdownSignal {
    started: AtomicBool,
    token: CancellationToken,
    forced: CancellationToken,
}

impl ShutdownSignal {
    /// Starts a graceful shutdown: stop accepting, finish replies in flight, close.
    pub fn start(&self) {
        self.started.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// True once [`Self::start`] has been called.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Resolves once the shutdown has started.
    pub async fn started(&self) {
        self.token.cancelled().await;
    }

    /// Gives up on connections still busy (a client that does not read its replies): each
    /// connection thread drops what it still serves.
    pub(crate) fn force(&self) {
        self.forced.cancel();
    }

    /// Resolves once [`Self::force`] has been called.
    pub(crate) async fn forced(&self) {
        self.forced.cancelled().await;
    }
}

impl Shared {
    /// Publishes keyspace notification `event` (of `class`, see [`crate::notify`]) about
    /// `key` of database `db`, if `notify-keyspace-events` asks for it: one relaxed load
    /// when it does not.
    #[inline]
    pub fn notify(&self, class: u32, event: &str, db: usize, key: &[u8], now_ms: u64) {
        let channels = self.notifications.wants(class);
        if channels != 0 {
            self.publish_event(channels, event, db, key, now_ms);
        }
    }

    #[cold]
    fn publish_event(&self, channels: u32, event: &str, db: usize, key: &[u8], now_ms: u64) {
        crate::notify::publish(
            &self.pubsub,
            &self.clients,
            channels,
            event,
            db,
            key,
            now_ms,
        );
    }

    /// Applies a new log level through the subscriber, if there is one.
    pub fn set_loglevel(&self, level: LogLevel) -> Result<(), String> {
        if let Some(control) = &self.log_control {
            control(level)?;
        }
        *self.loglevel.lock() = level;
        Ok(())
    }
}
