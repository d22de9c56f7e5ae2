//! The accept loop, the server-wide state shared by connections, and the background cron
//! (active expiry, ops/sec sampling).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::accept::{
    accept_while_every_thread_is_busy, listen_on_every_address, start_connection_threads, Listener,
};
use crate::clients::Registry;
use crate::clock::unix_ms;
use crate::config::Config;
use crate::persist::disk::{Disk, OsDisk};
use crate::persist::Persistence;
use crate::shared::{LogControl, Shared, ShutdownSignal, Stats};
use crate::store::Store;
use crate::sync::{Arc, AtomicU32, AtomicUsize, Mutex, Ordering};

/// How long a shutdown waits for connections to finish their replies before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running server: its addresses and the means to stop it.
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The first address the server listens on for plain TCP (for TLS if it has no plain
    /// port).
    pub fn addr(&self) -> SocketAddr {
        self.addrs
            .first()
            .copied()
            .unwrap_or_else(|| self.tls_addrs[0])
    }

    /// Every address the server listens on for plain TCP.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The first address the server listens on for TLS, if it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addrs.first().copied()
    }

    /// Every address the server listens on for TLS.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// Server state, for tests that inspect the store directly.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts a graceful shutdown: stop accepting, finish replies in flight, close.
    pub fn shutdown(&self) {
        self.shared.shutdown.start();
    }

    /// Resolves when the server has stopped (after a signal, SHUTDOWN or [`Self::shutdown`]).
    pub async fn stopped(self) {
        if let Err(err) = self.task.await {
            warn!("server task ended abnormally: {err}");
        }
    }
}

/// Binds the configured addresses and starts serving on the current tokio runtime.
pub async fn start(
    config: Config,
    log_control: Option<LogControl>,
) -> anyhow::Result<ServerHandle> {
    start_on_disk(config, log_control, std::sync::Arc::new(OsDisk)).await
}

/// [`start`] with persistence going through `disk` (the fault-injection tests pass a
/// [`crate::persist::disk::FaultyDisk`]).
/// The users the server starts with: the default user with `requirepass`, then `--user`
/// directives or the ACL file (not both, as in Redis).
fn startup_acl(config: &Config) -> anyhow::Result<crate::acl::Acl> {
    let acl = crate::acl::Acl::new(&config.requirepass);
    acl.log.set_max_len(config.acllog_max_len);
    match &config.aclfile {
        Some(_) if !config.users.is_empty() => anyhow::bail!(
            "Configuring users with --user and an ACL file (--aclfile) at the same time is \
             invalid: use one or the other"
        ),
        Some(path) => {
            let users = crate::cmd::acl::load_acl_file(path).map_err(anyhow::Error::msg)?;
            tracing::info!(path = %path.display(), users = users.len(), "ACL file loaded");
            acl.replace_all(users);
        }
        None => {
            for line in &config.users {
                let words: Vec<&[u8]> = line.split_ascii_whitespace().map(str::as_bytes).collect();
                let Some((name, rules)) = words.split_first() else {
                    anyhow::bail!("--user needs a user name and its rules");
                };
                let rules =
                    crate::acl::merge_selector_args(rules.iter().copied()).map_err(|start| {
                        anyhow::anyhow!(
                            "--user {line}: unmatched parenthesis in selector starting at '{}'",
                            String::from_utf8_lossy(&start)
                        )
                    })?;
                acl.set_user(name, &rules)
                    .map_err(|e| anyhow::anyhow!("--user {line}: {e}"))?;
            }
        }
    }
    Ok(acl)
}

pub async fn start_on_disk(
    mut config: Config,
    log_control: Option<LogControl>,
    disk: std::sync::Arc<dyn Disk>,
) -> anyhow::Result<ServerHandle> {
    crate::memory::configure_allocator();
    config.maxclients = crate::descriptors::fit_open_files_limit(config.maxclients);
    crate::descriptors::reserve_descriptor_table(
        (config.maxclients as u64).saturating_add(crate::descriptors::RESERVED_FDS),
    );
    let acl = startup_acl(&config)?;
    // Before binding: a TLS configuration that does not load stops the start.
    let tls =
        crate::tls::Tls::new(&config).map_err(|err| anyhow::anyhow!("TLS configuration: {err}"))?;
    let mut listeners = Vec::new();
    let mut port = 0;
    if config.plain_enabled() {
        port = listen_on_every_address(&config, config.port, false, &mut listeners).await?;
    }
    if config.tls_enabled() {
        listen_on_every_address(&config, config.tls_port, true, &mut listeners).await?;
    }
    crate::accept::warn_if_backlog_capped(config.tcp_backlog);
    let addrs = listeners
        .iter()
        .filter(|l| !l.is_tls())
        .map(Listener::local_addr)
        .collect::<Result<Vec<_>, _>>()?;
    let tls_addrs = listeners
        .iter()
        .filter(|l| l.is_tls())
        .map(Listener::local_addr)
        .collect::<Result<Vec<_>, _>>()?;
    let admission =
        crate::admission::Admission::new(config.protected_mode, config.max_connections_per_ip);
    let clients = Arc::new(Registry::new(std::sync::Arc::clone(&admission)));
    let pubsub = crate::sync::Arc::new(crate::pubsub::PubSub::new());
    let tracking = std::sync::Arc::new(crate::tracking::Tracking::new(
        crate::sync::Arc::clone(&pubsub),
        Arc::clone(&clients),
    ));
    tracking.set_max_keys(config.tracking_table_max_keys);
    let shared = Arc::new(Shared {
        store: std::sync::Arc::new(Store::with_limits(
            config.databases as usize,
            config.encoding_limits(),
        )),
        persist: std::sync::Arc::new(Persistence::new(&config, disk)),
        maxclients: AtomicUsize::new(config.maxclients),
        idle_timeout_secs: std::sync::atomic::AtomicU64::new(config.timeout),
        tcp_keepalive_secs: std::sync::atomic::AtomicU64::new(config.tcp_keepalive),
        query_buffer_limit: std::sync::atomic::AtomicU64::new(config.client_query_buffer_limit),
        loglevel: Mutex::new(config.loglevel),
        hz: AtomicU32::new(config.hz),
        stats: Stats::default(),
        clients,
        port,
        tls_port: tls_addrs.first().map_or(0, SocketAddr::port),
        started: Instant::now(),
        shutdown: ShutdownSignal::default(),
        timers: tokio::runtime::Handle::current(),
        scripting: Default::default(),
        pubsub,
        tracking,
        acl,
        admission,
        rate_limiter: crate::ratelimit::RateLimiter::new(
            config.rate_limit,
            config.rate_window_ms,
            config.rate_limit_exempt_loopback,
        ),
        tls,
        notifications: Default::default(),
        log_control,
        config,
    });
    shared.store.attach_tracking(&shared.tracking);
    // Keys the store expires, creates or misses reach subscribers as `expired`, `new` and
    // `keymiss` events.
    shared
        .store
        .attach_key_events(std::sync::Arc::new(crate::notify::StoreEvents {
            notifications: std::sync::Arc::clone(&shared.notifications),
            pubsub: crate::sync::Arc::clone(&shared.pubsub),
            clients: Arc::clone(&shared.clients),
        }));
    let loader = Arc::clone(&shared);
    tokio::task::spawn_blocking(move || load_data(&loader))
        .await
        .context("the loading task failed")??;
    for addr in &addrs {
        info!(%addr, "ready to accept connections");
    }
    for addr in &tls_addrs {
        info!(%addr, "ready to accept TLS connections");
    }
    let task = tokio::spawn(serve(listeners, Arc::clone(&shared)));
    Ok(ServerHandle {
        addrs,
        tls_addrs,
        shared,
        task,
    })
}

/// Loads the snapshot or the append-only file at start-up (replaying logged commands through
/// the ordinary dispatcher) and starts the log if configured.
fn load_data(shared: &Arc<Shared>) -> anyhow::Result<()> {
    use crate::cmd::{dispatch, Ctx, Reply, Session};
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let client = Registry::register(
        &shared.clients,
        unspecified,
        unspecified,
        -1,
        unix_ms(),
        None,
    );
    let mut session = Session::new(client);
    let mut reply = Reply::new();
    let mut apply = |args: protocol::Argv<'_>| -> Result<(), String> {
        reply.buf.clear();
        let mut ctx = Ctx {
            shared,
            session: &mut session,
            out: &mut reply,
            // Time stands still during replay: no key expires half-way through the history
            // (deadlines in the log are absolute; expired keys go after loading).
            now_ms: 0,
        };
        dispatch(&mut ctx, args);
        if reply.buf.first() == Some(&b'-') {
            let line = String::from_utf8_lossy(&reply.buf);
            return Err(format!("the logged command failed: {}", line.trim_end()));
        }
        Ok(())
    };
    let persist = std::sync::Arc::clone(&shared.persist);
    persist.start(&shared.store, shared.config.appendonly, &mut apply)
}

/// Runs the accept loops and the cron until `shared.shutdown` is cancelled, then waits for
/// connections to finish what they were doing.
async fn serve(listeners: Vec<Listener>, shared: Arc<Shared>) {
    let tracker = TaskTracker::new();
    tracker.spawn(cron(Arc::clone(&shared)));
    if let Err(err) = start_connection_threads(&listeners, &shared, &tracker) {
        error!("could not start the connection threads: {err}");
        return;
    }
    // The threads accept on their own handles on the sockets; these stay with the stand-in.
    tracker.spawn(accept_while_every_thread_is_busy(
        listeners,
        Arc::clone(&shared),
        tracker.clone(),
    ));
    tracker.close();
    shared.shutdown.started().await;
    info!("shutting down: no new connections; finishing replies in flight");
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!("some connections did not finish within {SHUTDOWN_GRACE:?}; closing them");
        shared.shutdown.force();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            warn!("background tasks did not stop; stopping without them");
        }
    }
    let finishing = Arc::clone(&shared);
    let finished = tokio::task::spawn_blocking(move || {
        let persisted = finishing.persist.shutdown(&finishing.store);
        // Values queued for freeing go before the server reports it has stopped.
        finishing.store.lazyfree().drain();
        persisted
    })
    .await;
    match finished {
        Ok(Ok(())) => {}
        Ok(Err(err)) => error!("persistence at shutdown failed: {err}"),
        Err(err) => error!("persistence at shutdown failed: {err}"),
    }
    info!("server stopped");
}

/// Background work, `hz` times per second: active expiry with a bounded budget, and the
/// ops/sec sample for INFO.
async fn cron(shared: Arc<Shared>) {
    /// Heap entries examined per shard per lock acquisition.
    const SWEEP_BUDGET: usize = 64;
    /// Longest a single cron run keeps sweeping before yielding to the next tick
    /// (Redis bounds its active expiry cycle to 25% of a tick the same way).
    const SWEEP_TIME_SHARE: u32 = 4;
    let mut memory = MemoryFollower::default();
    let mut samples = [0u64; 16];
    let mut sample_index = 0usize;
    let mut last_commands = 0u64;
    let mut last_sample = Instant::now();
    let mut persist_ticks = 0u32;
    loop {
        let hz = shared.hz.load(Ordering::Relaxed).max(1);
        let tick = Duration::from_millis(1000 / u64::from(hz));
        tokio::select! {
            biased;
            () = shared.shutdown.started() => return,
            () = tokio::time::sleep(tick) => {}
        }
        let started = Instant::now();
        let mut expired = 0usize;
        'sweep: loop {
            let now = unix_ms();
            let mut more_due = false;
            for db in shared.store.dbs() {
                let result = db.sweep_expired(now, SWEEP_BUDGET);
                expired += result.expired;
                more_due |= result.more_due;
            }
            if !more_due || started.elapsed() > tick / SWEEP_TIME_SHARE {
                break 'sweep;
            }
            tokio::task::yield_now().await;
        }
        if expired > 0 {
            debug!(expired, "active expiry");
        }

        memory.tick(hz);
        persist_ticks += 1;
        if persist_ticks >= hz {
            persist_ticks = 0;
            shared.persist.cron(&shared.store);
            close_idle_clients(&shared);
        }

        let commands = shared.stats.commands_processed.load(Ordering::Relaxed);
        let elapsed = last_sample.elapsed().as_secs_f64().max(1e-3);
        samples[sample_index % samples.len()] =
            (commands.saturating_sub(last_commands) as f64 / elapsed) as u64;
        sample_index += 1;
        last_commands = commands;
        last_sample = Instant::now();
        let filled = sample_index.min(samples.len()) as u64;
        let average = samples.iter().sum::<u64>() / filled.max(1);
        shared.stats.ops_per_sec.store(average, Ordering::Relaxed);
    }
}

/// Closes the clients that sent nothing for `timeout` seconds (0: never), as Redis: not
/// those blocked in a command (they have its timeout) nor subscribers (they wait for
/// messages by design).
fn close_idle_clients(shared: &Shared) {
    let timeout_secs = shared.idle_timeout_secs.load(Ordering::Relaxed);
    if timeout_secs == 0 {
        return;
    }
    let now = unix_ms();
    let closed = shared.clients.kill(0, |client| {
        !client.is_blocked()
            && !client.is_subscribed()
            && client.idle_ms(now) > timeout_secs.saturating_mul(1000)
    });
    if closed > 0 {
        debug!(closed, timeout_secs, "closed idle clients");
    }
}

/// Gives memory back to the OS when much of the resident size is no longer in use (after a
/// mass DEL, FLUSHALL, expiry of many keys), so the resident size follows the dataset down.
/// Checked about once a second by comparing the resident size with the allocator's count of
/// bytes in use, which catches a load and delete that both happen between two checks.
#[derive(Default)]
struct MemoryFollower {
    ticks: u32,
    /// Checks to skip after a release: what a release leaves resident (fragmentation) does
    /// not need releasing again every second.
    cooldown: u32,
}

impl MemoryFollower {
    /// Unused resident bytes worth a release.
    const SLACK: u64 = 32 * 1024 * 1024;
    /// Checks (seconds) between two releases.
    const COOLDOWN: u32 = 3;

    fn tick(&mut self, hz: u32) {
        self.ticks += 1;
        if self.ticks < hz {
            return;
        }
        self.ticks = 0;
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return;
        }
        let used = crate::memory::allocated_bytes();
        let resident = crate::memory::resident_bytes();
        let unused = resident.saturating_sub(used);
        if used > 0 && unused > Self::SLACK && unused > used / 2 {
            debug!(used, resident, "releasing freed memory");
            self.cooldown = Self::COOLDOWN;
            tokio::task::spawn_blocking(crate::memory::release_free_memory);
        }
    }
}
