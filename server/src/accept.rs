//! Listening sockets, and the connection threads that accept on them.
//!
//! Every connection thread (`--threads`) accepts on every listening socket itself. A
//! connection it keeps costs its `accept4` and its registration with the thread's event
//! loop, and nothing more: no hand-over from an accepting thread (no queue, no wake-up of a
//! parked thread, no move between two event loops), and no socket option per connection,
//! because TCP_NODELAY and keepalive are set on the listening socket and Linux copies them to
//! every connection it accepts. Redis sets five options per connection; a client opening
//! thousands in a burst is served at the rate it connects.
//!
//! The threads share each listening socket (one accept queue), and deal what they accept
//! round-robin ([`Dealer`]): a connection whose turn is the accepting thread's (all of them
//! with one connection thread, the default on two cores) stays there; the others go to their
//! thread through a queue. A thread takes at most [`ACCEPT_BATCH`] connections in a row
//! before it lets the ones it has run.
//!
//! A thread running a script past the busy threshold polls nothing, so it accepts nothing
//! and the others take its share. While every thread is in that state, the server's main
//! thread accepts instead ([`accept_while_every_thread_is_busy`]) and serves the new clients
//! itself, so that they get `-BUSY` and SCRIPT KILL or SHUTDOWN NOSAVE get through.

use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use crate::config::Config;
use crate::connection;
use crate::shared::Shared;
use crate::sync::{Arc, Ordering};

/// Connections a thread accepts in a row before its other tasks run.
const ACCEPT_BATCH: u32 = 16;

/// A listening socket, plain or TLS, as bound at start-up.
pub struct Listener {
    socket: std::net::TcpListener,
    tls: bool,
    /// The local address of every connection it accepts, when that is known without asking
    /// (the socket is bound to one address, not a wildcard).
    local: Option<SocketAddr>,
}

impl Listener {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Whether its clients speak TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Another handle on the same socket (same accept queue), for another event loop.
    fn share(&self) -> std::io::Result<SharedListener> {
        Ok(SharedListener {
            socket: self.socket.try_clone()?,
            tls: self.tls,
            local: self.local,
        })
    }
}

/// A [`Listener`] handle on its way to the event loop that will accept on it.
struct SharedListener {
    socket: std::net::TcpListener,
    tls: bool,
    local: Option<SocketAddr>,
}

impl SharedListener {
    /// Registers the socket with the current thread's event loop.
    fn register(self) -> std::io::Result<Accepting> {
        Ok(Accepting {
            listener: TcpListener::from_std(self.socket)?,
            tls: self.tls,
            local: self.local,
        })
    }
}

/// A listening socket registered with one thread's event loop.
struct Accepting {
    listener: TcpListener,
    tls: bool,
    local: Option<SocketAddr>,
}

/// Binds `port` (plain or TLS) on every `--bind` address; returns the port bound (with port 0
/// every further address uses the port the first one got).
pub async fn listen_on_every_address(
    config: &Config,
    mut port: u16,
    tls: bool,
    listeners: &mut Vec<Listener>,
) -> anyhow::Result<u16> {
    use anyhow::Context as _;
    let kind = if tls { " (TLS)" } else { "" };
    for host in &config.bind {
        let socket = listen(host, port, config.tcp_backlog, config.tcp_keepalive)
            .await
            .with_context(|| format!("could not bind {host}:{port}{kind}"))?;
        let bound = socket.local_addr()?;
        port = bound.port();
        listeners.push(Listener {
            socket,
            tls,
            local: (!bound.ip().is_unspecified()).then_some(bound),
        });
    }
    Ok(port)
}

/// A non-blocking listening socket on `host:port` with `backlog`, and the options its
/// connections inherit: every address `host` resolves to is tried in turn.
async fn listen(
    host: &str,
    port: u16,
    backlog: u32,
    keepalive_secs: u64,
) -> std::io::Result<std::net::TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match bind(addr, backlog, keepalive_secs) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

fn bind(
    addr: SocketAddr,
    backlog: u32,
    keepalive_secs: u64,
) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and tokio do for a listener: a restarted server can bind at once.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    // Inherited by every accepted connection (Linux copies a listener's options).
    socket.set_tcp_nodelay(true)?;
    set_keepalive(&socket, keepalive_secs)?;
    socket.bind(&addr.into())?;
    // The kernel caps the backlog at net.core.somaxconn (see `warn_if_backlog_capped`).
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Redis's start-up warning when `net.core.somaxconn` caps the accept queue below
/// `tcp-backlog`: a burst of connects past the cap waits a second per dropped SYN.
pub fn warn_if_backlog_capped(backlog: u32) {
    const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";
    let Ok(text) = std::fs::read_to_string(SOMAXCONN) else {
        return;
    };
    if let Ok(cap) = text.trim().parse::<u32>() {
        if cap < backlog {
            warn!(
                "WARNING: The TCP backlog setting of {backlog} cannot be enforced because \
                 {SOMAXCONN} is set to the lower value of {cap}."
            );
        }
    }
}

/// `tcp-keepalive`, as Redis: the first probe after `secs` idle, then every third of that,
/// so that a dead peer is noticed and its connection freed (0: keepalive off).
pub fn set_keepalive(socket: &socket2::Socket, secs: u64) -> std::io::Result<()> {
    if secs == 0 {
        return socket.set_keepalive(false);
    }
    let time = Duration::from_secs(secs);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(time)
        .with_interval((time / 3).max(Duration::from_secs(1)))
        .with_retries(3);
    socket.set_tcp_keepalive(&keepalive)
}

/// Starts the connection threads (`--threads`; by default one per core but one), each
/// accepting on every listener until shutdown. Each runs a current-thread tokio runtime.
///
/// Why not tokio's work-stealing runtime: a connection's work is a few microseconds, so the
/// stealing machinery (cross-thread unparks, idle workers searching for work, per-batch poll
/// timing) cost more than it balanced, and on a small machine it took CPU from everything
/// else (the clients of a benchmark included). A connection never migrates between cores.
pub fn start_connection_threads(
    listeners: &[Listener],
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
) -> std::io::Result<()> {
    let count = match shared.config.threads {
        0 => crate::config::default_connection_threads(
            std::thread::available_parallelism().map_or(1, usize::from),
        ),
        n => n,
    };
    shared.scripting.set_worker_count(count);
    let mut arrivals = Vec::with_capacity(count);
    let mut queues = Vec::with_capacity(count);
    for _ in 0..count {
        let (queue, arriving) = tokio::sync::mpsc::unbounded_channel();
        queues.push(queue);
        arrivals.push(arriving);
    }
    let dealer = std::sync::Arc::new(Dealer {
        queues,
        next: std::sync::atomic::AtomicUsize::new(0),
    });
    for (index, arrivals) in arrivals.into_iter().enumerate() {
        let sockets = listeners
            .iter()
            .map(Listener::share)
            .collect::<std::io::Result<Vec<_>>>()?;
        // No timer driver: nothing on these threads sleeps, and with one every park reads
        // the clock and checks the timer wheel.
        let (runtime, epoll) = crate::idle_poll::runtime_epoll(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .on_thread_park(crate::idle_poll::before_park)
                .on_thread_unpark(crate::idle_poll::after_unpark)
                .build()
        });
        let runtime = runtime?;
        let thread = ConnectionThread {
            index,
            shared: Arc::clone(shared),
            tracker: tracker.clone(),
            dealer: std::sync::Arc::clone(&dealer),
            listening: Some(tracker.token()),
        };
        let idle_poll = Duration::from_micros(shared.config.idle_poll_us.into());
        std::thread::Builder::new()
            .name(format!("kv-conn-{index}"))
            .spawn(move || {
                crate::propagate::set_thread_lane(index);
                crate::cmd::scripting::set_worker_index(index);
                crate::sync::busy_wait::set_busy_source(std::sync::Arc::clone(
                    &thread.shared.scripting.busy,
                ));
                crate::idle_poll::install(epoll, idle_poll);
                runtime.block_on(thread.run(sockets, arrivals))
            })?;
    }
    info!(threads = count, "connection threads started");
    Ok(())
}

/// A connection accepted by one thread for another: its socket is out of the accepting
/// thread's event loop, and the serving thread registers it with its own.
type Arrival = Admitted<std::net::TcpStream>;

/// Deals connections to the threads in turn, whichever thread accepted them, passing over
/// threads that run a busy script (their connections would wait for it). Round-robin keeps
/// long-lived connections (a pool opened at start-up) spread evenly: left to whichever
/// thread wins the race to accept, a burst lands mostly on the one that is already awake.
struct Dealer {
    queues: Vec<tokio::sync::mpsc::UnboundedSender<Arrival>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Dealer {
    /// The thread that serves the next connection.
    fn choose(&self, stuck: u64) -> usize {
        let count = self.queues.len().max(1);
        let mut index = self.next.fetch_add(1, Ordering::Relaxed) % count;
        for _ in 0..count {
            if index >= 64 || stuck & (1 << index) == 0 {
                break;
            }
            index = (index + 1) % count;
        }
        index
    }
}

/// One connection thread's share of the work.
struct ConnectionThread {
    index: usize,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    dealer: std::sync::Arc<Dealer>,
    /// Held while this thread has the listening sockets open: the server has stopped (and
    /// its port can be bound again) only once every thread closed them.
    listening: Option<tokio_util::task::task_tracker::TaskTrackerToken>,
}

impl ConnectionThread {
    /// Accepts, and serves what is dealt to this thread, until shutdown starts; then lets
    /// its connections finish what they are doing.
    async fn run(
        mut self,
        sockets: Vec<SharedListener>,
        mut arrivals: tokio::sync::mpsc::UnboundedReceiver<Arrival>,
    ) {
        let listeners = register_all(sockets);
        let shared = &self.shared;
        let mut connections = LiveConnections::default();
        let mut keepalive = KeepaliveFollower::new(shared);
        let mut next = 0;
        let mut in_a_row = 0;
        loop {
            let (accepted, listener) = tokio::select! {
                biased;
                () = shared.shutdown.started() => break,
                Some(arrival) = arrivals.recv() => {
                    self.serve_arrival(arrival, &mut connections);
                    continue;
                }
                accepted = accept_any(&listeners, &mut next) => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Typically EMFILE: the connection stays queued; wait for descriptors to
                    // free up instead of spinning on it.
                    warn!("accept failed: {err}; accepting again in 100 ms");
                    sleep_on_main_runtime(shared, Duration::from_millis(100)).await;
                    continue;
                }
            };
            keepalive.follow(shared, listener, &stream);
            if let Some(admitted) = admit(stream, peer, listener, shared) {
                self.deal(admitted, &mut connections);
            }
            in_a_row += 1;
            if in_a_row == ACCEPT_BATCH {
                in_a_row = 0;
                tokio::task::yield_now().await;
            }
        }
        // Shutdown: connections waiting for a request will not get one (the doorbell wakes
        // them to see the shutdown); the others finish their batch, see it and end.
        drop(listeners);
        drop(self.listening.take());
        shared.clients.ring_all();
        tokio::select! {
            () = self.tracker.wait() => {}
            () = shared.shutdown.forced() => connections.abort_all(),
        }
        // Keep driving this thread until every tracked task is done (the server bounds that
        // wait; the process exits after it).
        self.tracker.wait().await;
    }

    /// Serves an admitted connection here if it is this thread's turn, or passes it on.
    fn deal(&self, admitted: Admitted, connections: &mut LiveConnections) {
        let target = self.dealer.choose(self.shared.scripting.stuck_workers());
        if target == self.index {
            self.serve(admitted, connections);
            return;
        }
        let handed = admitted
            .try_map_stream(TcpStream::into_std)
            .map_err(|err| err.to_string())
            .and_then(|arrival| {
                self.dealer
                    .queues
                    .get(target)
                    .ok_or_else(|| "no such thread".to_owned())?
                    .send(arrival)
                    .map_err(|_| "the thread stopped".to_owned())
            });
        if let Err(err) = handed {
            // The connection (and its admission ticket) was dropped with the error.
            warn!("could not pass a connection to another thread: {err}");
        }
    }

    /// Registers a connection another thread accepted for this one, and serves it.
    fn serve_arrival(&self, arrival: Arrival, connections: &mut LiveConnections) {
        match arrival.try_map_stream(TcpStream::from_std) {
            Ok(admitted) => self.serve(admitted, connections),
            Err(err) => warn!("could not register a connection: {err}"),
        }
    }

    fn serve(&self, admitted: Admitted, connections: &mut LiveConnections) {
        let task = spawn_connection(&self.tracker, admitted, &self.shared);
        connections.add(task.abort_handle());
    }
}

/// Registers every socket with this thread's event loop (one that fails is left out, and
/// logged: the other threads still accept on it).
fn register_all(sockets: Vec<SharedListener>) -> Vec<Accepting> {
    sockets
        .into_iter()
        .filter_map(|socket| match socket.register() {
            Ok(accepting) => Some(accepting),
            Err(err) => {
                error!("could not watch a listening socket: {err}");
                None
            }
        })
        .collect()
}

/// The next connection on any of `listeners`, and the listener it came from; the search
/// starts after the listener that gave the last one, so that none is starved.
async fn accept_any<'a>(
    listeners: &'a [Accepting],
    next: &mut usize,
) -> (std::io::Result<(TcpStream, SocketAddr)>, &'a Accepting) {
    std::future::poll_fn(|cx| {
        let count = listeners.len();
        for step in 0..count {
            let index = (*next + step) % count;
            if let Some(listening) = listeners.get(index) {
                if let Poll::Ready(accepted) = listening.listener.poll_accept(cx) {
                    *next = index + 1;
                    return Poll::Ready((accepted, listening));
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// Sleeps on the server's main runtime (the connection threads have no timer).
async fn sleep_on_main_runtime(shared: &Shared, duration: Duration) {
    let (done, wait) = tokio::sync::oneshot::channel::<()>();
    let timer = shared.timers.spawn(async move {
        tokio::time::sleep(duration).await;
        let _ = done.send(());
    });
    let _ = wait.await;
    drop(timer);
}

/// `tcp-keepalive` as CONFIG SET last left it, applied to the listening sockets (shared by
/// every thread, so whichever notices the change first applies it for all).
struct KeepaliveFollower {
    applied: u64,
}

impl KeepaliveFollower {
    fn new(shared: &Shared) -> Self {
        KeepaliveFollower {
            applied: shared.tcp_keepalive_secs.load(Ordering::Relaxed),
        }
    }

    /// After CONFIG SET tcp-keepalive: sets the new value on `listener` (for the connections
    /// to come) and on `stream` (accepted with the old one).
    fn follow(&mut self, shared: &Shared, listener: &Accepting, stream: &TcpStream) {
        let wanted = shared.tcp_keepalive_secs.load(Ordering::Relaxed);
        if wanted == self.applied {
            return;
        }
        self.applied = wanted;
        let listening = socket2::SockRef::from(&listener.listener);
        let accepted = socket2::SockRef::from(stream);
        for socket in [&*listening, &*accepted] {
            if let Err(err) = set_keepalive(socket, wanted) {
                warn!("setting TCP keepalive failed: {err}");
            }
        }
    }
}

/// A connection that passed the limits, with what serving it needs.
struct Admitted<S = TcpStream> {
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    /// The TLS configuration to serve it with (none: plain TCP).
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Its place in the admission counts (`maxclients`, `--max-connections-per-ip`).
    ticket: crate::admission::Ticket,
}

impl<S> Admitted<S> {
    /// The same connection with its socket converted (between event loops); on failure the
    /// rest is dropped (giving its admission place back).
    fn try_map_stream<T>(
        self,
        convert: impl FnOnce(S) -> std::io::Result<T>,
    ) -> std::io::Result<Admitted<T>> {
        Ok(Admitted {
            stream: convert(self.stream)?,
            peer: self.peer,
            local: self.local,
            tls: self.tls,
            ticket: self.ticket,
        })
    }
}

/// Counts a new connection and applies `maxclients`, protected mode and the per-address
/// limit to it. A refused client gets Redis's error line (one write attempt, as Redis: a
/// fresh socket takes a line) and is closed.
fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    listener: &Accepting,
    shared: &Shared,
) -> Option<Admitted> {
    shared
        .stats
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    let admitted =
        shared
            .admission
            .admit(peer.ip(), shared.maxclients.load(Ordering::Relaxed), || {
                shared.acl.password_required()
            });
    let refusal = match admitted {
        Ok(ticket) => {
            // The configuration is read once per connection: CONFIG SET affects the next
            // ones.
            let tls = if listener.tls {
                Some(shared.tls.current()?)
            } else {
                None
            };
            let local = match listener.local {
                Some(local) => local,
                None => stream.local_addr().unwrap_or(peer),
            };
            return Some(Admitted {
                stream,
                peer,
                local,
                tls,
                ticket,
            });
        }
        Err(refusal) => refusal,
    };
    debug!(%peer, ?refusal, "connection refused");
    shared
        .stats
        .rejected_connections
        .fetch_add(1, Ordering::Relaxed);
    // A TLS client would not understand a plain-text error: it is just closed.
    if !listener.tls {
        let _ = stream.try_write(refusal.message());
    }
    None
}

/// Spawns an admitted connection's task on the current thread's runtime, tracked by
/// `tracker`. A plain connection's task is [`connection::handle`]'s future itself, with
/// nothing around it: its size is every connection's, idle or not. Its registration carries
/// the admission ticket from here on (a TLS connection's, once the handshake succeeded).
fn spawn_connection(
    tracker: &TaskTracker,
    admitted: Admitted,
    shared: &Arc<Shared>,
) -> JoinHandle<()> {
    let Admitted {
        stream,
        peer,
        local,
        tls,
        ticket,
    } = admitted;
    match tls {
        None => {
            debug!(%peer, "accepted");
            // Registered here, so that the task keeps no copy of the addresses.
            let client = connection::register(&stream, peer, local, ticket, shared);
            spawn_traced(
                tracker,
                peer,
                connection::handle(stream, client, Arc::clone(shared)),
            )
        }
        Some(config) => {
            let shared = Arc::clone(shared);
            spawn_traced(tracker, peer, async move {
                debug!("accepted (TLS)");
                let accepted = crate::tls::accept(stream, config, peer, &shared).await;
                if let Some(mut stream) = accepted {
                    let socket = stream.get_ref().0;
                    let client = connection::register(socket, peer, local, ticket, &shared);
                    connection::handle(&mut stream, client, Arc::clone(&shared)).await;
                    crate::tls::close(&mut stream).await;
                }
                // (A closed connection is logged when its registration is dropped, a failed
                // handshake by `tls::accept`.)
            })
        }
    }
}

/// Spawns a connection's task on the current thread's runtime, tracked by `tracker`.
fn spawn_traced(
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

/// The main thread's stand-in acceptor: idle until every connection thread runs a script
/// past the busy threshold, then accepting and serving on the main thread until one of them
/// is free again. (Its handles on the listening sockets are registered with the main
/// thread's event loop only meanwhile, so that otherwise connects do not wake this thread.)
pub async fn accept_while_every_thread_is_busy(
    listeners: Vec<Listener>,
    shared: Arc<Shared>,
    tracker: TaskTracker,
) {
    loop {
        tokio::select! {
            biased;
            () = shared.shutdown.started() => return,
            () = shared.scripting.every_worker_stuck.notified() => {}
        }
        if !shared.scripting.all_workers_stuck() {
            continue;
        }
        let copies = listeners
            .iter()
            .filter_map(|listener| match listener.share() {
                Ok(copy) => Some(copy),
                Err(err) => {
                    error!("could not accept in place of the busy threads: {err}");
                    None
                }
            });
        let accepting = register_all(copies.collect());
        let mut next = 0;
        while shared.scripting.all_workers_stuck() {
            tokio::select! {
                biased;
                () = shared.shutdown.started() => return,
                (accepted, listener) = accept_any(&accepting, &mut next) => {
                    let Ok((stream, peer)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    if let Some(admitted) = admit(stream, peer, listener, &shared) {
                        drop(spawn_connection(&tracker, admitted, &shared));
                    }
                }
                // Whether a thread is free again is polled: it says nothing when it is.
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }
}

/// The connections one thread serves, to abort those that did not finish within the
/// shutdown's grace period.
#[derive(Default)]
struct LiveConnections {
    entries: Vec<tokio::task::AbortHandle>,
    prune_at: usize,
}

impl LiveConnections {
    fn add(&mut self, task: tokio::task::AbortHandle) {
        if self.entries.len() >= self.prune_at {
            // Amortised O(1): drop finished connections whenever the list doubles.
            self.entries.retain(|task| !task.is_finished());
            self.prune_at = (self.entries.len() * 2).max(64);
        }
        self.entries.push(task);
    }

    fn abort_all(&self) {
        for task in &self.entries {
            task.abort();
        }
    }
}
