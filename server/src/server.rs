//! The accept loop, the server-wide state shared by connections, and the background cron
//! (active expiry, ops/sec sampling).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use crate::clients::Registry;
use crate::clock::unix_ms;
use crate::config::Config;
use crate::connection;
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

/// A listening socket on `host:port` with `backlog` (as `TcpListener::bind`, which has a
/// fixed, short backlog): every address `host` resolves to is tried in turn.
async fn listen(host: &str, port: u16, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = match addr {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As std and tokio do for a listener: a restarted server can bind at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
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
    config: Config,
    log_control: Option<LogControl>,
    disk: std::sync::Arc<dyn Disk>,
) -> anyhow::Result<ServerHandle> {
    crate::memory::configure_allocator();
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
    let addrs = listeners
        .iter()
        .filter(|l| !l.tls)
        .map(|l| l.listener.local_addr())
        .collect::<Result<Vec<_>, _>>()?;
    let tls_addrs = listeners
        .iter()
        .filter(|l| l.tls)
        .map(|l| l.listener.local_addr())
        .collect::<Result<Vec<_>, _>>()?;
    let clients = Arc::new(Registry::default());
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
        connected: AtomicUsize::new(0),
        port,
        tls_port: tls_addrs.first().map_or(0, SocketAddr::port),
        started: Instant::now(),
        shutdown: ShutdownSignal::default(),
        timers: tokio::runtime::Handle::current(),
        scripting: Default::default(),
        pubsub,
        tracking,
        acl,
        admission: crate::admission::Admission::new(
            config.protected_mode,
            config.max_connections_per_ip,
        ),
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
    let client = Registry::register(&shared.clients, unspecified, unspecified, -1, unix_ms());
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

/// Binds `port` (plain or TLS) on every `--bind` address; returns the port bound (with port 0
/// every further address uses the port the first one got).
async fn listen_on_every_address(
    config: &Config,
    mut port: u16,
    tls: bool,
    listeners: &mut Vec<Listener>,
) -> anyhow::Result<u16> {
    let kind = if tls { " (TLS)" } else { "" };
    for host in &config.bind {
        let listener = listen(host, port, config.tcp_backlog)
            .await
            .with_context(|| format!("could not bind {host}:{port}{kind}"))?;
        port = listener.local_addr()?.port();
        listeners.push(Listener { listener, tls });
    }
    Ok(port)
}

/// A listening socket, plain or TLS.
struct Listener {
    listener: TcpListener,
    tls: bool,
}

/// Runs the accept loops and the cron until `shared.shutdown` is cancelled, then waits for
/// connections to finish what they were doing.
async fn serve(listeners: Vec<Listener>, shared: Arc<Shared>) {
    let tracker = TaskTracker::new();
    tracker.spawn(cron(Arc::clone(&shared)));
    let workers = match Workers::start(&shared, &tracker) {
        Ok(workers) => Arc::new(workers),
        Err(err) => {
            error!("could not start the connection threads: {err}");
            return;
        }
    };
    for listener in listeners {
        tracker.spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            tracker.clone(),
            Arc::clone(&workers),
        ));
    }
    // The accept loops hold the only other references: once they stop, the workers' queues
    // close and each worker finishes its connections.
    drop(workers);
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

async fn accept_loop(
    Listener { listener, tls }: Listener,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    workers: Arc<Workers>,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            biased;
            () = shared.shutdown.started() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(5);
                pair
            }
            Err(err) => {
                // Typically EMFILE: wait for descriptors to free up instead of spinning.
                warn!("accept failed: {err}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        shared
            .stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let open = shared.connected.fetch_add(1, Ordering::AcqRel) + 1;
        let shared_for_task = Arc::clone(&shared);
        if open > shared.maxclients.load(Ordering::Relaxed) {
            shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tracker.spawn(async move {
                // A TLS client would not understand a plain-text error: it is just closed.
                if !tls {
                    reject(stream, b"-ERR max number of clients reached\r\n").await;
                }
                shared_for_task.connected.fetch_sub(1, Ordering::AcqRel);
            });
            continue;
        }
        let slot = match shared
            .admission
            .admit(peer.ip(), || shared.acl.password_required())
        {
            Ok(slot) => slot,
            Err(refusal) => {
                debug!(%peer, ?refusal, "connection refused");
                shared
                    .stats
                    .rejected_connections
                    .fetch_add(1, Ordering::Relaxed);
                tracker.spawn(async move {
                    if !tls {
                        reject(stream, refusal.message()).await;
                    }
                    shared_for_task.connected.fetch_sub(1, Ordering::AcqRel);
                });
                continue;
            }
        };
        // The configuration is read once per connection: CONFIG SET affects the next ones.
        let tls_config = if tls {
            match shared.tls.current() {
                Some(config) => Some(config),
                None => {
                    shared.connected.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
            }
        } else {
            None
        };
        let stuck = shared.scripting.stuck_workers();
        if stuck != 0 && workers.all_stuck(stuck) {
            // Every connection thread runs a script past the busy threshold: serve the client
            // here, so that it gets BUSY, and SCRIPT KILL or SHUTDOWN NOSAVE get through.
            tracker.spawn(async move {
                let idle = std::sync::atomic::AtomicBool::new(false);
                serve_connection(stream, peer, tls_config, &shared_for_task, &idle).await;
                shared_for_task.connected.fetch_sub(1, Ordering::AcqRel);
                drop(slot);
            });
            continue;
        }
        if let Err(err) = workers.hand_over(stream, peer, tls_config, slot, stuck) {
            warn!("could not hand a connection to a worker: {err}");
            shared_for_task.connected.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Serves one accepted connection: plain, or TLS with `tls` after its handshake.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    shared: &Shared,
    idle: &std::sync::atomic::AtomicBool,
) {
    match tls {
        None => {
            let mut stream = stream;
            connection::handle(&mut stream, peer, shared, idle).await;
        }
        Some(config) => {
            let accepted = crate::tls::accept(stream, config, peer, shared, idle).await;
            if let Some(mut stream) = accepted {
                connection::handle(&mut stream, peer, shared, idle).await;
                crate::tls::close(&mut stream).await;
            }
        }
    }
}

/// A connection on its way from the accept loop to a worker, with the TLS configuration it
/// is to be served with (none: plain TCP).
type Handover = (
    std::net::TcpStream,
    SocketAddr,
    Option<std::sync::Arc<rustls::ServerConfig>>,
    crate::admission::PeerSlot,
);

/// The connection threads (`--threads`; by default one per core but one), each running a
/// current-thread tokio runtime that owns the connections handed to it.
///
/// Why not tokio's work-stealing runtime: a connection's work is a few microseconds, so the
/// stealing machinery (cross-thread unparks, idle workers searching for work, per-batch poll
/// timing) cost more than it balanced, and on a small machine it took CPU from everything
/// else (the clients of a benchmark included). Connections are dealt round-robin, so load
/// spreads evenly over time, and a connection never migrates between cores.
struct Workers {
    queues: Vec<tokio::sync::mpsc::UnboundedSender<Handover>>,
    next: AtomicUsize,
}

impl Workers {
    fn start(shared: &Arc<Shared>, tracker: &TaskTracker) -> std::io::Result<Workers> {
        let count = match shared.config.threads {
            0 => crate::config::default_connection_threads(
                std::thread::available_parallelism().map_or(1, usize::from),
            ),
            n => n,
        };
        let mut queues = Vec::with_capacity(count);
        for index in 0..count {
            let (queue, arrivals) = tokio::sync::mpsc::unbounded_channel();
            // No timer driver: nothing on these threads sleeps, and with one every park
            // reads the clock and checks the timer wheel.
            let (runtime, epoll) = crate::idle_poll::runtime_epoll(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .on_thread_park(crate::idle_poll::before_park)
                    .on_thread_unpark(crate::idle_poll::after_unpark)
                    .build()
            });
            let runtime = runtime?;
            let (shared, tracker) = (Arc::clone(shared), tracker.clone());
            let idle_poll = Duration::from_micros(shared.config.idle_poll_us.into());
            std::thread::Builder::new()
                .name(format!("kv-conn-{index}"))
                .spawn(move || {
                    crate::propagate::set_thread_lane(index);
                    crate::cmd::scripting::set_worker_index(index);
                    crate::sync::busy_wait::set_busy_source(std::sync::Arc::clone(
                        &shared.scripting.busy,
                    ));
                    crate::idle_poll::install(epoll, idle_poll);
                    runtime.block_on(run_worker(arrivals, shared, tracker))
                })?;
            queues.push(queue);
        }
        info!(threads = count, "connection threads started");
        Ok(Workers {
            queues,
            next: AtomicUsize::new(0),
        })
    }

    /// True if every worker is in `stuck` (a mask of worker indices running a busy script).
    fn all_stuck(&self, stuck: u64) -> bool {
        (0..self.queues.len()).all(|index| index >= 64 || stuck & (1 << index) != 0)
    }

    /// Moves an accepted connection to the next worker (round-robin), passing over those in
    /// `stuck` (running a script past the busy threshold: their connections wait for it).
    fn hand_over(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
        slot: crate::admission::PeerSlot,
        stuck: u64,
    ) -> std::io::Result<()> {
        // Leaves this runtime's reactor; the worker registers it with its own.
        let stream = stream.into_std()?;
        let mut index = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        for _ in 0..self.queues.len() {
            if index >= 64 || stuck & (1 << index) == 0 {
                break;
            }
            index = (index + 1) % self.queues.len();
        }
        self.queues[index]
            .send((stream, peer, tls, slot))
            .map_err(|_| std::io::Error::other("connection thread stopped"))
    }
}

/// One connection thread: serves every connection it is handed until shutdown starts, then
/// lets them finish what they are doing.
async fn run_worker(
    mut arrivals: tokio::sync::mpsc::UnboundedReceiver<Handover>,
    shared: Arc<Shared>,
    tracker: TaskTracker,
) {
    let mut connections = LiveConnections::default();
    loop {
        let (stream, peer, tls, slot) = tokio::select! {
            biased;
            () = shared.shutdown.started() => break,
            arrival = arrivals.recv() => match arrival {
                Some(arrival) => arrival,
                None => break,
            },
        };
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(err) => {
                warn!("could not register a connection: {err}");
                shared.connected.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
        };
        let idle = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = Arc::clone(&shared);
        let reading = std::sync::Arc::clone(&idle);
        // Plain and TLS connections are separate tasks of their own types, so that a plain
        // connection's task is exactly the plain loop.
        let task = match tls {
            None => spawn_connection(&tracker, peer, async move {
                debug!("accepted");
                let mut stream = stream;
                connection::handle(&mut stream, peer, &shared, &reading).await;
                shared.connected.fetch_sub(1, Ordering::AcqRel);
                drop(slot);
                debug!("closed");
            }),
            Some(config) => spawn_connection(&tracker, peer, async move {
                debug!("accepted (TLS)");
                let accepted = crate::tls::accept(stream, config, peer, &shared, &reading).await;
                if let Some(mut stream) = accepted {
                    connection::handle(&mut stream, peer, &shared, &reading).await;
                    crate::tls::close(&mut stream).await;
                }
                shared.connected.fetch_sub(1, Ordering::AcqRel);
                drop(slot);
                debug!("closed");
            }),
        };
        connections.add(task.abort_handle(), idle);
    }
    // Shutdown: connections waiting for a request will not get one; the others finish their
    // batch, see the shutdown flag and end. This runs on the connections' own thread, so none
    // of them is between its idle flag and its read.
    connections.abort_idle();
    tokio::select! {
        () = tracker.wait() => {}
        () = shared.shutdown.forced() => connections.abort_all(),
    }
    // Keep driving this thread until every tracked task is done (the server bounds that
    // wait; the process exits after it).
    tracker.wait().await;
}

/// Spawns a connection's task on the current thread's runtime, tracked by `tracker`.
fn spawn_connection(
    tracker: &TaskTracker,
    peer: SocketAddr,
    serve: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    // A span per connection only when debug logging is on: even a disabled span's
    // `Instrumented` wrapper costs ~1% of CPU per poll at -P 1.
    if tracing::enabled!(tracing::Level::DEBUG) {
        tokio::spawn(tracker.track_future(serve.instrument(tracing::debug_span!("conn", %peer))))
    } else {
        tokio::spawn(tracker.track_future(serve))
    }
}

/// The connections one thread serves: a handle to abort each, and whether it is waiting
/// for a request (so aborting it loses nothing).
#[derive(Default)]
struct LiveConnections {
    entries: Vec<(
        tokio::task::AbortHandle,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    )>,
    prune_at: usize,
}

impl LiveConnections {
    fn add(
        &mut self,
        task: tokio::task::AbortHandle,
        idle: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        if self.entries.len() >= self.prune_at {
            // Amortised O(1): drop finished connections whenever the list doubles.
            self.entries.retain(|(task, _)| !task.is_finished());
            self.prune_at = (self.entries.len() * 2).max(64);
        }
        self.entries.push((task, idle));
    }

    fn abort_idle(&self) {
        for (task, idle) in &self.entries {
            if idle.load(std::sync::atomic::Ordering::Relaxed) {
                task.abort();
            }
        }
    }

    fn abort_all(&self) {
        for (task, _) in &self.entries {
            task.abort();
        }
    }
}

/// Tells a client over the limit why it is closed, as Redis does.
async fn reject(mut stream: TcpStream, message: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(message)).await;
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
