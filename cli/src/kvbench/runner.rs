//! Running one test: `--threads` worker threads, each a current-thread tokio runtime with
//! one task per connection, all sharing a request budget (or a deadline) through atomics.
//!
//! A connection writes a batch of `-P` requests at once, then reads until it has every
//! reply, as redis-benchmark does. Each reply's latency is the time from the batch's write
//! to the read that completed it; all replies completed by one read share one clock reading,
//! so a read costs one `Instant::now()` and one histogram update whatever the pipeline depth.
//! Writing and reading are interleaved on one readiness loop, so a batch larger than the
//! socket buffers cannot deadlock against a server that is blocked writing its replies.
//! A request may take several replies (a transaction); the reply scanner groups them, so
//! everything here counts requests. The `cas` and `publish` tests run their own loops
//! ([`crate::cas`], [`crate::publish`]).
//!
//! With `--tls` a connection is a tokio-rustls stream and the batch loop is compiled for it
//! separately ([`Exchange`]): it writes the whole batch, then reads its replies. (A batch
//! larger than the socket buffers could then stall; the plain loop interleaves.)

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use protocol::ProtocolError;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::task::{JoinSet, LocalSet};

use crate::cas::CasConnection;
use crate::keys::{seed_for, KeyDist, Rng};
use crate::publish::{PubSub, PublishConnection};
use crate::reply::ReplyScanner;
use crate::workload::{Batch, Spec, Test, INCR_EXPIRE_SCRIPT, INCR_EXPIRE_SHA};

/// Highest latency the histogram tracks exactly, in microseconds (one hour); slower replies
/// are recorded as this.
pub(crate) const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Significant decimal digits the histogram keeps.
pub(crate) const LATENCY_SIGFIG: u8 = 3;

/// Free space ensured in a connection's read buffer before each read.
const READ_RESERVE: usize = 16 * 1024;

/// How often the caller's progress callback runs.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// When a test stops.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this many requests in total (`-n`).
    Requests(u64),
    /// After this long (`--duration`): no batch is sent after the deadline.
    Duration(Duration),
}

/// Everything one test run needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server.
    pub addr: SocketAddr,
    /// The test.
    pub test: Test,
    /// Request details.
    pub spec: Spec,
    /// Connections (`-c`).
    pub clients: usize,
    /// Requests per batch (`-P`).
    pub pipeline: usize,
    /// Worker threads (`--threads`).
    pub threads: usize,
    /// When to stop.
    pub limit: Limit,
    /// Key distribution.
    pub dist: KeyDist,
    /// Seed of every connection's key sequence.
    pub seed: u64,
    /// The `publish` test's subscribers and channels (`None` for other tests).
    pub pubsub: Option<PubSub>,
    /// Connect with TLS (`--tls`; not for `cas` and `publish`).
    pub tls: Option<TlsClient>,
    /// A new connection for every batch (`--reconnect`; plain TCP only).
    pub reconnect: bool,
}

/// A TLS client configuration and the server name to ask for.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// The rustls configuration.
    pub config: Arc<rustls::ClientConfig>,
    /// The name sent and verified.
    pub name: rustls::pki_types::ServerName<'static>,
}

/// The measurements of a run (or of one thread of it).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Per-request latency in microseconds.
    pub latency: Histogram<u64>,
    /// Requests completed (replies, but transactions and check-and-sets count once).
    pub requests: u64,
    /// Requests answered by an error reply among them.
    pub errors: u64,
    /// The text of the first error reply.
    pub first_error: Option<String>,
    /// Attempts made again because EXEC aborted (`cas`).
    pub retries: u64,
}

impl Stats {
    /// Empty measurements.
    ///
    /// # Errors
    ///
    /// The histogram could not be created.
    pub fn new() -> Result<Self, RunError> {
        let latency = Histogram::new_with_bounds(1, MAX_LATENCY_US, LATENCY_SIGFIG)
            .map_err(|err| RunError::Internal(format!("latency histogram: {err}")))?;
        Ok(Self {
            latency,
            requests: 0,
            errors: 0,
            first_error: None,
            retries: 0,
        })
    }

    fn merge(&mut self, other: &Stats) -> Result<(), RunError> {
        self.latency
            .add(&other.latency)
            .map_err(|err| RunError::Internal(format!("merging histograms: {err:?}")))?;
        self.requests += other.requests;
        self.errors += other.errors;
        self.retries += other.retries;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        Ok(())
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// Merged measurements of every connection.
    pub stats: Stats,
    /// From the moment every connection was open to the last reply.
    pub elapsed: Duration,
    /// That moment: when the clock started.
    pub started: Instant,
}

/// Why a run failed.
#[derive(Debug)]
pub enum RunError {
    /// A connection could not be opened.
    Connect(io::Error),
    /// Reading or writing failed.
    Io(io::Error),
    /// The server closed a connection with replies outstanding.
    Closed,
    /// The server sent something that is not RESP.
    Protocol(ProtocolError),
    /// The server sent more replies than requests.
    UnexpectedReply,
    /// A thread or runtime could not be set up, or a task failed.
    Internal(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(err) | Self::Io(err) => err.fmt(f),
            Self::Closed => f.write_str("connection closed by server"),
            Self::Protocol(err) => write!(f, "protocol error: {err}"),
            Self::UnexpectedReply => f.write_str("protocol error: more replies than requests"),
            Self::Internal(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for RunError {}

/// State shared by every connection of a run.
#[derive(Debug)]
pub struct Shared {
    /// Requests not yet handed to a connection (`-n`).
    remaining: AtomicU64,
    /// Set on the first failure: connections stop sending.
    stop: AtomicBool,
    /// Requests completed, for the progress line.
    pub completed: AtomicU64,
}

impl Shared {
    /// State for a run of `requests` requests in all (`u64::MAX` for a timed run).
    pub fn new(requests: u64) -> Self {
        Self {
            remaining: AtomicU64::new(requests),
            stop: AtomicBool::new(false),
            completed: AtomicU64::new(0),
        }
    }

    /// Hands out the size of the next batch, 0 when the run is over.
    pub fn claim(&self, pipeline: u64, deadline: Option<Instant>) -> u64 {
        if self.stop.load(Ordering::Relaxed) {
            return 0;
        }
        if let Some(deadline) = deadline {
            return if Instant::now() < deadline {
                pipeline
            } else {
                0
            };
        }
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(left.min(pipeline)).filter(|_| left > 0)
            })
            .map_or(0, |left| left.min(pipeline))
    }
}

/// What each worker thread hands back: its stats and when its last connection finished.
type ThreadResult = Result<(Stats, Instant), RunError>;

/// Messages from the worker threads.
enum Event {
    /// The worker has opened its connections (or failed to, and set the stop flag).
    Ready,
    /// The worker is done.
    Done(ThreadResult),
}

/// Runs `plan`, calling `progress(requests completed, time since start)` every 250 ms.
///
/// Every connection is opened before the clock starts.
///
/// # Errors
///
/// The first [`RunError`] of any connection; the others stop at their next batch.
pub fn run(plan: &Plan, mut progress: impl FnMut(u64, Duration)) -> Result<Outcome, RunError> {
    let shared = Arc::new(Shared::new(match plan.limit {
        Limit::Requests(n) => n,
        Limit::Duration(_) => u64::MAX,
    }));
    let threads = plan.threads.clamp(1, plan.clients.max(1));
    let (events, rx) = mpsc::channel::<Event>();
    let mut results = Vec::with_capacity(threads + 1);
    let start = thread::scope(|scope| {
        let mut gates = Vec::with_capacity(threads);
        for index in 0..threads {
            let clients: Vec<usize> = (index..plan.clients).step_by(threads).collect();
            let (gate, go) = mpsc::channel::<()>();
            let (events, shared) = (events.clone(), &shared);
            let spawned = thread::Builder::new()
                .name(format!("kvbench-{index}"))
                .spawn_scoped(scope, move || worker(plan, shared, &clients, &events, &go));
            match spawned {
                Ok(_) => gates.push(gate),
                Err(err) => {
                    shared.stop.store(true, Ordering::Relaxed);
                    results.push(Err(RunError::Internal(format!("spawning a thread: {err}"))));
                    break;
                }
            }
        }
        drop(events);
        // Wait until every worker has its connections open, then start them together.
        let mut ready = 0;
        while ready < gates.len() {
            match rx.recv() {
                Ok(Event::Ready) => ready += 1,
                Ok(Event::Done(result)) => results.push(result),
                Err(mpsc::RecvError) => break,
            }
        }
        let start = Instant::now();
        for gate in gates {
            // A worker that is gone has nothing to start.
            let _ = gate.send(());
        }
        loop {
            match rx.recv_timeout(PROGRESS_INTERVAL) {
                Ok(Event::Done(result)) => results.push(result),
                Ok(Event::Ready) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    progress(shared.completed.load(Ordering::Relaxed), start.elapsed());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        start
    });
    let mut stats = Stats::new()?;
    let mut end = start;
    let mut failure = None;
    for result in results {
        match result {
            Ok((thread_stats, thread_end)) => {
                stats.merge(&thread_stats)?;
                end = end.max(thread_end);
            }
            // The first failure is the cause; later ones may be consequences of it.
            Err(err) => {
                failure.get_or_insert(err);
            }
        }
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(Outcome {
            stats,
            elapsed: end.duration_since(start),
            started: start,
        }),
    }
}

/// What [`load_script`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptLoad {
    /// The server has the `evalsha` test's script under the expected SHA-1.
    Loaded,
    /// The server answered `SCRIPT LOAD` with this error.
    Refused(String),
}

/// Longest wait for the reply to `SCRIPT LOAD`.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Loads the `evalsha` test's script with `SCRIPT LOAD` on a connection of its own, before
/// the clock starts.
///
/// # Errors
///
/// The connection failed, the reply was not RESP, or the server named the script by another
/// SHA-1 than [`INCR_EXPIRE_SHA`].
pub fn load_script(addr: SocketAddr) -> Result<ScriptLoad, RunError> {
    use std::io::{Read, Write};

    let mut stream = std::net::TcpStream::connect(addr).map_err(RunError::Connect)?;
    stream
        .set_read_timeout(Some(SETUP_TIMEOUT))
        .map_err(RunError::Io)?;
    let mut request = BytesMut::new();
    protocol::encode::write_array_header(&mut request, 3);
    for arg in [b"SCRIPT".as_slice(), b"LOAD", INCR_EXPIRE_SCRIPT.as_bytes()] {
        protocol::encode::write_bulk(&mut request, arg);
    }
    stream.write_all(&request).map_err(RunError::Io)?;
    let mut input = Vec::new();
    let mut chunk = [0u8; 4096];
    let reply = loop {
        if let Some((frame, _)) = protocol::parse::parse(&input, &protocol::Limits::default())
            .map_err(RunError::Protocol)?
        {
            break frame;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(RunError::Closed),
            Ok(n) => input.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(err) => return Err(RunError::Io(err)),
        }
    };
    match reply {
        protocol::Frame::Bulk(sha) if sha.as_ref() == INCR_EXPIRE_SHA.as_bytes() => {
            Ok(ScriptLoad::Loaded)
        }
        protocol::Frame::Error(text) => Ok(ScriptLoad::Refused(
            String::from_utf8_lossy(&text).into_owned(),
        )),
        other => Err(RunError::Internal(format!(
            "SCRIPT LOAD returned {other:?}, expected the SHA-1 {INCR_EXPIRE_SHA}"
        ))),
    }
}

/// One worker thread: opens its connections, reports [`Event::Ready`], waits for the signal
/// on `go`, drives its connections to the end of the run and reports [`Event::Done`].
fn worker(
    plan: &Plan,
    shared: &Arc<Shared>,
    clients: &[usize],
    events: &mpsc::Sender<Event>,
    go: &mpsc::Receiver<()>,
) {
    let prepared = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|err| RunError::Internal(format!("starting a tokio runtime: {err}")))
        .and_then(|runtime| {
            let streams = match &plan.tls {
                None => Streams::Plain(runtime.block_on(connect_all(plan.addr, clients.len()))?),
                Some(tls) => Streams::Tls(runtime.block_on(connect_all_tls(
                    plan.addr,
                    clients.len(),
                    tls,
                ))?),
            };
            Ok((runtime, streams))
        });
    if prepared.is_err() {
        // Set before `Ready`, so every worker sees it once started.
        shared.stop.store(true, Ordering::Relaxed);
    }
    // The receiver lives until every worker has finished; errors cannot happen.
    let _ = events.send(Event::Ready);
    if go.recv().is_err() {
        return;
    }
    let result =
        prepared.and_then(|(runtime, streams)| drive(plan, shared, clients, &runtime, streams));
    let _ = events.send(Event::Done(result));
}

/// Runs one worker's connections on its runtime until the run is over.
fn drive(
    plan: &Plan,
    shared: &Arc<Shared>,
    clients: &[usize],
    runtime: &tokio::runtime::Runtime,
    streams: Streams,
) -> ThreadResult {
    let start = Instant::now();
    let stats = Rc::new(RefCell::new(Stats::new()?));
    if shared.stop.load(Ordering::Relaxed) {
        // Another worker could not connect: the run is off.
        return Ok((into_stats(stats), start));
    }
    let deadline = match plan.limit {
        Limit::Duration(duration) => Some(start + duration),
        Limit::Requests(_) => None,
    };
    let local = LocalSet::new();
    let failure = local.block_on(runtime, async {
        let mut tasks = JoinSet::new();
        let streams = match streams {
            Streams::Plain(streams) => streams,
            Streams::Tls(streams) => {
                for (&client, stream) in clients.iter().zip(streams) {
                    let connection =
                        Connection::new(plan, stream, client, deadline, shared, &stats);
                    tasks.spawn_local(connection.run());
                }
                Vec::new()
            }
        };
        for (&client, stream) in clients.iter().zip(streams) {
            let rng = Rng::new(seed_for(plan.seed, client));
            if plan.test == Test::Cas {
                let connection = CasConnection::new(
                    stream,
                    plan.dist.clone(),
                    rng,
                    deadline,
                    Arc::clone(shared),
                    Rc::clone(&stats),
                );
                tasks.spawn_local(connection.run());
                continue;
            }
            if plan.test == Test::Publish {
                let Some(pubsub) = &plan.pubsub else {
                    return Some(RunError::Internal("publish without subscribers".into()));
                };
                let connection = PublishConnection::new(
                    stream,
                    client,
                    plan.clients,
                    pubsub.clone(),
                    plan.spec.value_size,
                    plan.pipeline,
                    deadline,
                    Arc::clone(shared),
                    Rc::clone(&stats),
                );
                tasks.spawn_local(connection.run());
                continue;
            }
            let connection = Connection::new(plan, stream, client, deadline, shared, &stats);
            tasks.spawn_local(connection.run());
        }
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            let result = joined
                .map_err(|err| RunError::Internal(format!("connection task failed: {err}")))
                .and_then(|result| result);
            if let Err(err) = result {
                shared.stop.store(true, Ordering::Relaxed);
                failure.get_or_insert(err);
            }
        }
        failure
    });
    let end = Instant::now();
    match failure {
        Some(err) => Err(err),
        None => Ok((into_stats(stats), end)),
    }
}

/// The stats once every connection task is gone (a copy if one still held them).
fn into_stats(stats: Rc<RefCell<Stats>>) -> Stats {
    Rc::try_unwrap(stats).map_or_else(|shared| shared.borrow().clone(), RefCell::into_inner)
}

/// Opens `count` connections to `addr`, with Nagle's algorithm off.
async fn connect_all(addr: SocketAddr, count: usize) -> Result<Vec<TcpStream>, RunError> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = TcpStream::connect(addr).await.map_err(RunError::Connect)?;
        stream.set_nodelay(true).map_err(RunError::Connect)?;
        streams.push(stream);
    }
    Ok(streams)
}

/// A worker's open connections.
enum Streams {
    Plain(Vec<TcpStream>),
    Tls(Vec<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Opens `count` TLS connections to `addr`, with Nagle's algorithm off.
async fn connect_all_tls(
    addr: SocketAddr,
    count: usize,
    tls: &TlsClient,
) -> Result<Vec<tokio_rustls::client::TlsStream<TcpStream>>, RunError> {
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
    let mut streams = Vec::with_capacity(count);
    for stream in connect_all(addr, count).await? {
        let handshake = connector.connect(tls.name.clone(), stream);
        let stream = tokio::time::timeout(SETUP_TIMEOUT, handshake)
            .await
            .map_err(|_| RunError::Connect(io::Error::other("TLS handshake timed out")))?
            .map_err(RunError::Connect)?;
        streams.push(stream);
    }
    Ok(streams)
}

/// How a connection sends a batch and reads replies: [`pump`] for plain TCP; for TLS, the
/// whole batch is written before reading.
trait Exchange {
    /// Closes the connection and opens a new one to `addr` (`--reconnect`).
    async fn reopen(&mut self, addr: SocketAddr) -> Result<(), RunError>;

    /// As [`pump`].
    async fn exchange(
        &mut self,
        request: &[u8],
        written: &mut usize,
        writable: &mut bool,
        input: &mut BytesMut,
        reserve: usize,
    ) -> Result<bool, RunError>;
}

impl Exchange for TcpStream {
    async fn reopen(&mut self, addr: SocketAddr) -> Result<(), RunError> {
        let stream = TcpStream::connect(addr).await.map_err(RunError::Connect)?;
        stream.set_nodelay(true).map_err(RunError::Connect)?;
        // The old one closes when replaced.
        *self = stream;
        Ok(())
    }

    #[inline]
    async fn exchange(
        &mut self,
        request: &[u8],
        written: &mut usize,
        writable: &mut bool,
        input: &mut BytesMut,
        reserve: usize,
    ) -> Result<bool, RunError> {
        pump(self, request, written, writable, input, reserve).await
    }
}

impl Exchange for tokio_rustls::client::TlsStream<TcpStream> {
    async fn reopen(&mut self, _addr: SocketAddr) -> Result<(), RunError> {
        Err(RunError::Internal(
            "--reconnect is for plain TCP only".into(),
        ))
    }

    async fn exchange(
        &mut self,
        request: &[u8],
        written: &mut usize,
        _writable: &mut bool,
        input: &mut BytesMut,
        reserve: usize,
    ) -> Result<bool, RunError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if *written < request.len() {
            self.write_all(request.get(*written..).unwrap_or_default())
                .await
                .map_err(RunError::Io)?;
            self.flush().await.map_err(RunError::Io)?;
            *written = request.len();
        }
        input.reserve(reserve);
        match self.read_buf(input).await {
            Ok(0) => Err(RunError::Closed),
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Err(RunError::Closed),
            Err(err) => Err(RunError::Io(err)),
        }
    }
}

/// One connection's task.
struct Connection<S> {
    stream: S,
    /// `--reconnect`: where to open the next connection after each batch.
    reconnect: Option<SocketAddr>,
    batch: Batch,
    pipeline: u64,
    dist: KeyDist,
    rng: Rng,
    deadline: Option<Instant>,
    shared: Arc<Shared>,
    stats: Rc<RefCell<Stats>>,
}

impl<S: Exchange> Connection<S> {
    fn new(
        plan: &Plan,
        stream: S,
        client: usize,
        deadline: Option<Instant>,
        shared: &Arc<Shared>,
        stats: &Rc<RefCell<Stats>>,
    ) -> Self {
        Connection {
            stream,
            reconnect: plan.reconnect.then_some(plan.addr),
            batch: Batch::new(plan.test, &plan.spec, plan.pipeline, plan.dist.keyspace()),
            pipeline: u64::try_from(plan.pipeline).unwrap_or(u64::MAX),
            dist: plan.dist.clone(),
            rng: Rng::new(seed_for(plan.seed, client)),
            deadline,
            shared: Arc::clone(shared),
            stats: Rc::clone(stats),
        }
    }

    async fn run(mut self) -> Result<(), RunError> {
        let mut scanner = ReplyScanner::default().grouped(self.batch.replies_per_request());
        if self.batch.is_transaction() {
            scanner = scanner.with_array_errors();
        }
        let mut input = BytesMut::with_capacity(READ_RESERVE);
        let result = self.batches(&mut scanner, &mut input).await;
        if let Some(text) = scanner.first_error() {
            let mut stats = self.stats.borrow_mut();
            if stats.first_error.is_none() {
                stats.first_error = Some(text.to_owned());
            }
        }
        result
    }

    async fn batches(
        &mut self,
        scanner: &mut ReplyScanner,
        input: &mut BytesMut,
    ) -> Result<(), RunError> {
        loop {
            let n = self.shared.claim(self.pipeline, self.deadline);
            if n == 0 {
                return Ok(());
            }
            let count = usize::try_from(n).unwrap_or(usize::MAX);
            let request = self.batch.prepare(count, &self.dist, &mut self.rng);
            let sent = Instant::now();
            let mut written = 0;
            let mut writable = true;
            let mut waiting = n;
            while waiting > 0 {
                let read = self
                    .stream
                    .exchange(request, &mut written, &mut writable, input, READ_RESERVE)
                    .await?;
                if !read {
                    continue;
                }
                let arrived = Instant::now();
                let scan = scanner.scan(input).map_err(RunError::Protocol)?;
                input.advance(scan.consumed);
                if scan.replies == 0 {
                    continue;
                }
                if scan.replies > waiting {
                    return Err(RunError::UnexpectedReply);
                }
                waiting -= scan.replies;
                let micros =
                    u64::try_from(arrived.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
                let mut stats = self.stats.borrow_mut();
                stats.latency.saturating_record_n(micros, scan.replies);
                stats.requests += scan.replies;
                stats.errors += scan.errors;
            }
            // Anything after the last reply was not asked for.
            if !input.is_empty() || !scanner.is_idle() {
                return Err(RunError::UnexpectedReply);
            }
            self.shared.completed.fetch_add(n, Ordering::Relaxed);
            if let Some(addr) = self.reconnect {
                self.stream.reopen(addr).await?;
            }
        }
    }
}

/// One step of sending a pipelined request while reading its replies: writes what the
/// socket takes of `request[*written..]` (if it was writable), waits until the socket is
/// readable (or writable while bytes remain), and reads what arrived into `input` (with at
/// least `reserve` bytes free). False if nothing was read this time.
pub(crate) async fn pump(
    stream: &TcpStream,
    request: &[u8],
    written: &mut usize,
    writable: &mut bool,
    input: &mut BytesMut,
    reserve: usize,
) -> Result<bool, RunError> {
    if *writable && *written < request.len() {
        match stream.try_write(request.get(*written..).unwrap_or_default()) {
            Ok(k) => *written += k,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(RunError::Io(err)),
        }
    }
    let interest = if *written < request.len() {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    let ready = stream.ready(interest).await.map_err(RunError::Io)?;
    *writable = ready.is_writable();
    if !ready.is_readable() {
        return Ok(false);
    }
    input.reserve(reserve);
    match stream.try_read_buf(input) {
        Ok(0) => Err(RunError::Closed),
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(err) => Err(RunError::Io(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(remaining: u64) -> Shared {
        Shared::new(remaining)
    }

    #[test]
    fn claims_split_the_budget_exactly() {
        let shared = shared(10);
        let claims: Vec<u64> = (0..5).map(|_| shared.claim(4, None)).collect();
        assert_eq!(claims, [4, 4, 2, 0, 0]);
    }

    #[test]
    fn claims_stop_on_failure_and_deadline() {
        let shared = shared(10);
        let past = Instant::now();
        assert_eq!(shared.claim(4, Some(past)), 0);
        assert_eq!(shared.claim(4, Some(past + Duration::from_secs(60))), 4);
        shared.stop.store(true, Ordering::Relaxed);
        assert_eq!(shared.claim(4, None), 0);
    }
}
