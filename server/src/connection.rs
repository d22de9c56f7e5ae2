//! One client connection: read, decode every complete request already buffered, run each,
//! and write all of their replies with a single write.
//!
//! Pipelined requests therefore cost one read and one write per batch, not per command. A
//! protocol error gets Redis's `-ERR Protocol error: ...` reply and closes the connection; a
//! command error is just a reply.
//!
//! # Optimistic locking
//!
//! Clients in WATCH/GET/MULTI/SET/EXEC loops on the same keys abort each other's
//! transactions, and the order in which the thread serves them decides how often. Served
//! strictly as their requests arrive, the client answered first keeps winning: measured with
//! kvbench's `cas` test on one key, 2 clients, one of them aborted 10,000 times in a row
//! while the other committed everything; with 50 clients on 10 keys, 4.5 aborted EXECs per
//! committed one (Redis: 1.8) and 0.54x Redis's throughput. Two rules fix it, and touch only
//! clients that use WATCH:
//! - a batch that starts with WATCH yields once before it runs, so the EXECs that are already
//!   waiting commit first instead of aborting the transaction this WATCH starts;
//! - a batch whose EXEC committed a watched transaction yields once before its reply goes
//!   out, so the clients it aborted get their retry in before its next attempt.
//!
//! Each yield lets the thread's other ready connections run (and polls for new events) first.
//! Measured (50 clients, 10 keys): 1.5 aborts per commit, ~1.1x Redis's throughput, p99
//! lower than Redis's; on one key no client starves. Cost: a task wake-up and an event poll
//! per WATCH and per committed watched EXEC.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use protocol::{Argv, Limits, RequestCodec, Scratch};
use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::clients::Registry;
use crate::clock::unix_ms;
use crate::cmd::{blocking, dispatch, Ctx, Reply, Session};
use crate::config::FsyncPolicy;
use crate::persist::aof::{Aof, NotDurable};
use crate::shared::Shared;
use crate::sync::{Arc, Ordering};
use crate::transport::Transport;

/// Replies buffered beyond this are written out before decoding more requests, so a huge
/// pipeline cannot grow the output buffer without bound.
const OUTPUT_HIGH_WATER: usize = 1024 * 1024;
/// Buffers that grew past this for one big request or reply are released afterwards.
const BUFFER_KEEP: usize = 256 * 1024;
/// Read buffer headroom requested before each read.
pub(crate) const READ_CHUNK: usize = 16 * 1024;
/// Commands of one batch that share a clock reading.
const CLOCK_REFRESH: u64 = 64;
/// A thread that ran out of work this recently is not saturated (see the publisher's yield
/// in [`handle`]; 1 ms was too short: at 80% load bursts outlast it).
const UNSATURATED: std::time::Duration = std::time::Duration::from_millis(10);

/// Serves one client (registered as `client`) until it disconnects, sends QUIT, breaks the
/// protocol, or the server shuts down (after finishing the batch in progress).
///
/// The task of a plain TCP connection is this function's future itself (TLS wraps it, with a
/// borrowed stream): it owns the socket and the registration, which it drops first when it
/// returns, so that the socket closes only after the client left the registry (CLIENT KILL
/// relies on it, see `Registry::kill`). Dropping the registration also gives the
/// connection's admission place back.
///
/// At shutdown a connection waiting for a request ends (the server rings every client's
/// mailbox doorbell, see `Registry::ring_all`); one in the middle of a batch ends after it.
///
/// Generic over the [`Transport`], so that plain TCP and TLS each get their own compiled
/// copy of the loop: no dynamic dispatch or branch per read or write on either.
///
/// Every byte of this function's state is part of every connection's task, idle or not, so
/// what is rare (a blocked command, an fsync wait) is boxed, waits on the socket and the
/// mailbox are polled in place, the addresses live in the registration only, and per-batch
/// values that can be read again are not kept in variables. Measured with
/// `-Zprint-type-sizes`: the task's future went from 1,160 to 520 bytes, and tokio's task
/// cell around it from 1,280 to 640 (a test keeps it there).
#[allow(clippy::manual_async_fn)] // on purpose: see the comment on the async block
pub fn handle<S: Transport>(
    mut stream: S,
    client: crate::clients::ClientHandle,
    shared: Arc<Shared>,
) -> impl std::future::Future<Output = ()> {
    // An async block rather than an `async fn`: the latter copies its arguments into the
    // future a second time (the socket alone is 32 bytes), the block uses them in place.
    async move {
        let mut session = Session::new(client);
        session.authenticated = !shared.acl.password_required();
        let mut aof = CachedAof::default();
        let limits = Limits {
            max_bulk_len: shared.config.proto_max_bulk_len,
            ..Limits::default()
        };
        let mut codec = RequestCodec::new(limits);
        codec.set_unauthenticated(!session.authenticated);
        // Both buffers come from the thread's pool when there is something to read or write,
        // and go back to it whenever the connection is idle (see `buffers`).
        let mut input = BytesMut::new();
        let mut reply = Reply::unbuffered();
        let mut batching = MessageBatching::default();

        loop {
            let mut commands = 0u64;
            let mut protocol_error = false;
            // The clock is read once per batch (and again every CLOCK_REFRESH commands of a long
            // one): pipelined commands share a millisecond, as Redis's cached time does, and a
            // clock read per command was ~5% of CPU at -P 16.
            let mut now_ms = unix_ms();
            // Where each write's reply lies is noted whenever the log is on (not only under
            // `always`), so that a CONFIG SET appendfsync always inside this batch still finds
            // them; a push per write beside the effect the write appends anyway.
            session.track_write_replies = aof.refresh(&shared).is_some();
            // Messages that arrived before this batch was read go out before its replies, so a
            // client that sends a command after a change sees the change's invalidation (or
            // message) first, as it would from Redis.
            if session.expects_messages() && !take_messages(&session, &mut reply) {
                return;
            }
            let mut first_request = true;
            loop {
                // The request is taken out of the decoder's result at once: the result itself
                // would otherwise be kept across every wait below, in every connection's task.
                let request = match codec.next_request(&mut input) {
                    Ok(Some(request)) => request,
                    Ok(None) => break,
                    Err(err) => {
                        debug!("protocol error: {err}");
                        reply.buf.extend_from_slice(&err.reply_bytes());
                        protocol_error = true;
                        break;
                    }
                };
                if first_request {
                    first_request = false;
                    if starts_optimistic_read(codec.argv(&request, &input)) {
                        // See `optimistic locking` in the module docs.
                        tokio::task::yield_now().await;
                    }
                }
                if commands > 0 && commands.is_multiple_of(CLOCK_REFRESH) {
                    now_ms = unix_ms();
                }
                // The arguments are slices of `input` itself: no copy, no reference
                // count, no allocation per request. (The context is a temporary: as a
                // variable it would be kept across the waits below.)
                let args = codec.argv(&request, &input);
                let ran = dispatch(
                    &mut Ctx {
                        shared: &shared,
                        session: &mut session,
                        out: &mut reply,
                        now_ms,
                    },
                    args,
                );
                commands += u64::from(ran);
                input.advance(request.consumed());
                if codec.is_unauthenticated() == session.authenticated {
                    // AUTH, HELLO ... AUTH or RESET changed it: requests are bounded
                    // only until the client authenticates, as in Redis.
                    codec.set_unauthenticated(!session.authenticated);
                }
                if session.blocked.is_some() {
                    // The replies before it go out now; the blocked command's comes when
                    // it is served, times out or is unblocked. (It stays in the session
                    // until then: taken out here, it would be kept in every connection's
                    // task.)
                    settle_writes(&mut session, &mut aof, &mut reply, &shared).await;
                    if !flush(&mut stream, &mut reply, &shared).await {
                        blocking::abandon(&mut session, &shared);
                        return;
                    }
                    // Boxed: the wait's state would otherwise be part of every
                    // connection's task, blocked or not (see `handle`'s size note).
                    let keep = Box::pin(blocking::wait(
                        &mut session,
                        &mut reply,
                        &mut stream,
                        &mut input,
                        &shared,
                    ))
                    .await;
                    if !keep {
                        return;
                    }
                    now_ms = unix_ms();
                }
                if session.closing {
                    break;
                }
                // (The limit is read per command, an atomic load: as a variable it would be
                // kept in every connection's task.)
                if reply.buf.len() >= OUTPUT_HIGH_WATER.min(normal_output_limit(&shared)) {
                    if reply.buf.len() > normal_output_limit(&shared)
                        && session.subscriptions.is_none()
                    {
                        info!(
                            peer = %session.client.info().addr(),
                            bytes = reply.buf.len(),
                            "closing a client past client-output-buffer-limit normal"
                        );
                        return;
                    }
                    settle_writes(&mut session, &mut aof, &mut reply, &shared).await;
                    if !flush(&mut stream, &mut reply, &shared).await {
                        return;
                    }
                }
            }
            if commands > 0 {
                shared
                    .stats
                    .commands_processed
                    .fetch_add(commands, Ordering::Relaxed);
            }
            settle_writes(&mut session, &mut aof, &mut reply, &shared).await;
            if std::mem::take(&mut session.committed_watched) {
                // See `optimistic locking` in the module docs.
                tokio::task::yield_now().await;
            }
            if crate::pubsub::take_woke_a_connection() && crate::idle_poll::idle_within(UNSATURATED)
            {
                // The batch woke subscribers (PUBLISH, notifications, invalidations): unless the
                // thread is saturated, they write their messages before this connection writes
                // its replies, as Redis writes replies and messages in one pass. Otherwise each
                // message waits behind every other publisher's reply. Measured with `compare.py
                // pubsub --pinned`, paced at 80%: 1000 channels x 1, delivery p99 1.49x -> 0.87x
                // and 1.03x Redis (two runs). Always yielding cost 1000 x 1000 its throughput
                // (1.23x -> 0.98x Redis): saturated, a later reply is a later next PUBLISH.
                tokio::task::yield_now().await;
            }
            if !take_messages(&session, &mut reply) {
                return;
            }
            if !flush(&mut stream, &mut reply, &shared).await
                || session.closing
                || protocol_error
                || shared.shutdown.is_started()
            {
                return;
            }
            if input.is_empty() {
                crate::buffers::give_back(&mut input);
                // No request in progress: the decoder's argument storage goes back too.
                crate::buffers::give_back_scratch(codec.swap_scratch(Scratch::default()));
            } else {
                // Part of a request: its buffer stays, with room for the rest.
                input.reserve(READ_CHUNK);
            }
            crate::buffers::give_back(&mut reply.buf);
            // The connection also wakes up for its mailbox (Pub/Sub messages, invalidations)
            // and writes what arrives as it comes.
            let mailbox = crate::sync::Arc::clone(&session.client.info().mailbox);
            let read = loop {
                match input_or_mail(&mut stream, &mut input, &mailbox).await {
                    Wake::Input(read) => break read,
                    Wake::Mail => {
                        let waited = batching.should_wait();
                        if waited {
                            // Let the thread's other ready clients (publishers) run first: more
                            // messages per write. Measured with `compare.py pubsub`: 100
                            // subscribers 1.07x -> 1.39x Redis.
                            tokio::task::yield_now().await;
                            crate::idle_poll::note_fan_out();
                        }
                        // No pool buffer here: the mailbox hands over its own (an empty
                        // one would stay in the mailbox in exchange).
                        let Some(messages) = mailbox.drain_counted(&mut reply.buf) else {
                            return;
                        };
                        batching.drained(messages, waited);
                        if !flush(&mut stream, &mut reply, &shared).await {
                            return;
                        }
                        crate::buffers::give_back(&mut reply.buf);
                        // The shutdown rings every doorbell: a connection waiting for a
                        // request ends here.
                        if shared.shutdown.is_started() {
                            return;
                        }
                    }
                }
            };
            match read {
                Ok(0) => return,
                Ok(n) => {
                    if reply.buf.capacity() == 0 {
                        reply.buf = crate::buffers::take();
                    }
                    // (Refused, and given back at once, if the decoder kept its own for a
                    // request in progress.)
                    let spare = codec.swap_scratch(crate::buffers::take_scratch());
                    crate::buffers::give_back_scratch(spare);
                    shared
                        .stats
                        .net_input_bytes
                        .fetch_add(n as u64, Ordering::Relaxed);
                    let limit = shared.query_buffer_limit.load(Ordering::Relaxed);
                    if input.len() as u64 > limit {
                        // An endless request (or pipeline that is never complete): as Redis.
                        info!(
                            peer = %session.client.info().addr(),
                            bytes = input.len(),
                            "closing a client past client-query-buffer-limit"
                        );
                        return;
                    }
                }
                Err(err) => {
                    debug!("read failed: {err}");
                    return;
                }
            }
        }
    }
}

/// `client-output-buffer-limit normal`'s hard limit: past it a client is closed without its
/// replies, as Redis does (`usize::MAX`: no limit).
fn normal_output_limit(shared: &Shared) -> usize {
    match shared.pubsub.normal_output_hard() {
        0 => usize::MAX,
        hard => usize::try_from(hard).unwrap_or(usize::MAX),
    }
}

/// What ended an idle connection's wait.
enum Wake {
    /// The client sent something (or left): the read's result.
    Input(std::io::Result<usize>),
    /// Pub/Sub messages or invalidations arrived in the mailbox.
    Mail,
}

/// Waits for the client's next bytes (read into `input`) or for mail, the read first. Both
/// are polled in place: an idle connection's task keeps three references for its wait.
fn input_or_mail<'a, S: Transport>(
    stream: &'a mut S,
    input: &'a mut BytesMut,
    mailbox: &'a crate::pubsub::Mailbox,
) -> impl std::future::Future<Output = Wake> + 'a {
    std::future::poll_fn(move |cx| {
        if let std::task::Poll::Ready(read) = stream.poll_read_into(cx, input) {
            return std::task::Poll::Ready(Wake::Input(read));
        }
        if mailbox.signal.poll_rung(cx).is_ready() {
            return std::task::Poll::Ready(Wake::Mail);
        }
        std::task::Poll::Pending
    })
}

/// Whether a connection woken for mailbox messages first lets its thread's other ready
/// clients run (so that more messages go out in one write), or writes at once. Waiting pays
/// when messages come in bursts (many publishers on a channel); for a connection that gets
/// one message per wake-up it only adds latency. So a connection stops waiting after
/// [`MessageBatching::GIVE_UP`] waits in a row that gathered no second message, and tries
/// again every [`MessageBatching::PROBE_EVERY`] wake-ups.
#[derive(Default)]
struct MessageBatching {
    /// Waits in a row that found at most one message.
    fruitless: u8,
    /// Wake-ups since the last wait, once waiting stopped.
    since_wait: u8,
}

impl MessageBatching {
    // Bytes, as every connection keeps one: `since_wait` wraps at 256, a multiple of
    // PROBE_EVERY, and `fruitless` saturates.
    const GIVE_UP: u8 = 4;
    const PROBE_EVERY: u8 = 8;

    /// True if this wake-up should let other clients run first.
    fn should_wait(&mut self) -> bool {
        if self.fruitless < Self::GIVE_UP {
            return true;
        }
        self.since_wait = self.since_wait.wrapping_add(1);
        self.since_wait.is_multiple_of(Self::PROBE_EVERY)
    }

    /// The wake-up moved `messages` to the output, after waiting or not.
    fn drained(&mut self, messages: usize, waited: bool) {
        if !waited {
            return;
        }
        if messages > 1 {
            self.fruitless = 0;
            self.since_wait = 0;
        } else {
            self.fruitless = self.fruitless.saturating_add(1);
        }
    }
}

/// A connection's view of the running append-only file, refreshed only when the file is
/// turned on or off (so a batch of writes costs no lock to find it).
#[derive(Default)]
struct CachedAof {
    generation: u64,
    aof: Option<std::sync::Arc<Aof>>,
}

impl CachedAof {
    /// The running file, re-read only when it was turned on or off since the last call.
    fn refresh(&mut self, shared: &Shared) -> Option<&std::sync::Arc<Aof>> {
        let generation = shared.persist.aof_generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.aof = shared.persist.aof();
            self.generation = generation;
        }
        self.aof.as_ref()
    }
}

/// Before replies to writes go out: counts the writes for the snapshot rules and wakes the
/// append-only file writer; under `appendfsync always` the returned future waits until the
/// batch's write effects are on disk. If a write or fsync failed first, the batch's writes
/// are not acknowledged: their replies become the MISCONF error. (The writes did happen in
/// memory, so the client learns that their durability is unknown, as after a timeout.) The
/// wait is boxed: as a plain future it would be part of every connection's task.
fn settle_writes<'a>(
    session: &'a mut Session,
    cached: &'a mut CachedAof,
    reply: &'a mut Reply,
    shared: &Shared,
) -> MaybeWait<'a> {
    if session.writes == 0 {
        session.write_replies.clear();
        return MaybeWait(None);
    }
    shared
        .persist
        .dirty
        .fetch_add(session.writes, Ordering::Relaxed);
    session.writes = 0;
    match cached.refresh(shared) {
        Some(aof) if aof.policy() == FsyncPolicy::Always => MaybeWait(Some(Box::pin(async move {
            if let Err(NotDurable(text)) = aof.wait_durable().await {
                fail_write_replies(reply, &session.write_replies, &text);
            }
            session.write_replies.clear();
        }))),
        Some(aof) => {
            aof.notify();
            session.write_replies.clear();
            MaybeWait(None)
        }
        None => {
            session.write_replies.clear();
            MaybeWait(None)
        }
    }
}

/// A wait that may be needed or not: an `Option` of a boxed future, awaited as one (an
/// `if let` around the future would keep the `Option` in the task beside it).
struct MaybeWait<'a>(Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>>);

impl std::future::Future for MaybeWait<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match self.0.as_mut() {
            Some(wait) => wait.as_mut().poll(cx),
            None => std::task::Poll::Ready(()),
        }
    }
}

/// Replaces the replies at `ranges` (ascending) with the error line `text`, except those
/// that are errors already.
fn fail_write_replies(reply: &mut Reply, ranges: &[std::ops::Range<usize>], text: &str) {
    let old = std::mem::take(&mut reply.buf);
    let mut rebuilt = BytesMut::with_capacity(old.len() + ranges.len() * (text.len() + 3));
    let mut copied = 0;
    for range in ranges {
        let (Some(before), Some(original)) = (old.get(copied..range.start), old.get(range.clone()))
        else {
            continue;
        };
        rebuilt.extend_from_slice(before);
        if original.first() == Some(&b'-') {
            rebuilt.extend_from_slice(original);
        } else {
            protocol::encode::write_error(&mut rebuilt, text.as_bytes());
        }
        copied = range.end;
    }
    rebuilt.extend_from_slice(old.get(copied..).unwrap_or_default());
    reply.buf = rebuilt;
}

/// Writes every buffered reply with one write call (as far as the socket takes it).
/// Resolves to false if the client is gone. (A client that stops reading during shutdown is
/// dropped by its thread after a grace period: see `ShutdownSignal`.) Polled in place: the
/// future is the three references and a count.
fn flush<'a, S: Transport>(
    stream: &'a mut S,
    reply: &'a mut Reply,
    shared: &'a Shared,
) -> impl std::future::Future<Output = bool> + 'a {
    let mut written = 0;
    std::future::poll_fn(move |cx| {
        if reply.buf.is_empty() {
            return std::task::Poll::Ready(true);
        }
        if let Err(err) = std::task::ready!(stream.poll_write_out(cx, &reply.buf, &mut written)) {
            debug!("write failed: {err}");
            return std::task::Poll::Ready(false);
        }
        shared
            .stats
            .net_output_bytes
            .fetch_add(reply.buf.len() as u64, Ordering::Relaxed);
        if reply.buf.capacity() > BUFFER_KEEP {
            reply.buf = BytesMut::with_capacity(READ_CHUNK);
        } else {
            reply.buf.clear();
        }
        std::task::Poll::Ready(true)
    })
}

/// Moves the messages waiting in the connection's mailbox into its output. False if the
/// mailbox overflowed its output limit: the connection must close.
fn take_messages(session: &Session, reply: &mut Reply) -> bool {
    session.client.info().mailbox.drain_into(&mut reply.buf)
}

/// True for a WATCH: a client starting an optimistic transaction.
fn starts_optimistic_read(args: Argv<'_>) -> bool {
    args.first()
        .is_some_and(|name| name.eq_ignore_ascii_case(b"watch"))
}

/// Registers a new connection's client (CLIENT LIST, CLIENT KILL) before [`handle`] serves
/// it; the registration takes over the connection's admission `ticket`.
pub fn register(
    stream: &TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    ticket: crate::admission::Ticket,
    shared: &Shared,
) -> crate::clients::ClientHandle {
    Registry::register(
        &shared.clients,
        peer,
        local,
        raw_fd(stream),
        unix_ms(),
        Some(ticket),
    )
}

#[cfg(unix)]
fn raw_fd(stream: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    stream.as_raw_fd()
}

#[cfg(not(unix))]
fn raw_fd(_stream: &TcpStream) -> i32 {
    -1
}

#[cfg(all(test, not(target_env = "msvc")))]
mod tests {
    use std::net::SocketAddr;

    use bytes::{Buf, BytesMut};
    use protocol::{Limits, RequestCodec};

    use super::MessageBatching;
    use crate::clients::Registry;
    use crate::clock::unix_ms;
    use crate::cmd::{dispatch, Ctx, Reply, Session};
    use crate::memory::counting::allocations;
    use crate::Config;

    /// Requests per batch, and measured batches.
    const PIPELINE: usize = 1000;
    const BATCHES: usize = 10;

    fn encode(args: &[&str]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        out
    }

    /// A server with one connection thread on port 0, and the runtime that drives it.
    fn one_thread_server() -> (tokio::runtime::Runtime, crate::ServerHandle) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let config = Config {
            port: 0,
            save: Default::default(),
            threads: 1,
            ..Config::default()
        };
        let server = runtime
            .block_on(crate::start(config, None))
            .expect("server starts");
        (runtime, server)
    }

    /// The steady-state request path of [`super::handle`] between a read and a flush (parse
    /// in place, dispatch, reply into the reused buffer) costs no heap allocation per
    /// request, except the copy of a value the store keeps.
    #[test]
    fn pipelined_requests_allocate_only_what_they_store() {
        let (_runtime, server) = one_thread_server();
        let shared = server.shared();
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 0));
        let client = Registry::register(&shared.clients, nowhere, nowhere, -1, unix_ms(), None);
        let mut session = Session::new(client);
        let mut reply = Reply::new();
        let mut codec = RequestCodec::new(Limits::default());
        let mut input = BytesMut::new();

        // Allocations on this thread over BATCHES batches of PIPELINE copies of `request`,
        // after as many batches to let every buffer and table reach its size.
        let mut measure = |request: &[&str], expected_reply: &[u8]| -> u64 {
            let batch = encode(request).repeat(PIPELINE);
            let expected = expected_reply.repeat(PIPELINE);
            let mut before = 0;
            for round in 0..2 * BATCHES {
                if round == BATCHES {
                    before = allocations();
                }
                input.extend_from_slice(&batch);
                while let Some(request) = codec.next_request(&mut input).expect("valid") {
                    let mut ctx = Ctx {
                        shared,
                        session: &mut session,
                        out: &mut reply,
                        now_ms: unix_ms(),
                    };
                    let args = codec.argv(&request, &input);
                    assert!(dispatch(&mut ctx, args));
                    input.advance(request.consumed());
                }
                assert!(reply.buf[..] == expected[..], "unexpected replies");
                reply.buf.clear(); // what the flush does
            }
            allocations() - before
        };

        let requests = (PIPELINE * BATCHES) as u64;
        assert_eq!(measure(&["PING"], b"+PONG\r\n"), 0, "PING");
        assert_eq!(
            measure(&["SET", "key:1", "0123456789"], b"+OK\r\n"),
            requests,
            "SET: one allocation per request, the value the store keeps"
        );
        assert_eq!(
            measure(&["GET", "key:1"], b"$10\r\n0123456789\r\n"),
            0,
            "GET"
        );
        assert_eq!(
            measure(
                &["MGET", "key:1", "key:2", "key:1"],
                b"*3\r\n$10\r\n0123456789\r\n$-1\r\n$10\r\n0123456789\r\n"
            ),
            0,
            "MGET"
        );
        // Parses the counter, adds, and formats it back in place.
        assert_eq!(measure(&["INCRBY", "counter", "0"], b":0\r\n"), 0, "INCRBY");
        assert_eq!(
            measure(&["EXISTS", "key:1", "nokey"], b":1\r\n"),
            0,
            "EXISTS"
        );
        server.shutdown();
    }

    /// A plain connection's task is [`super::handle`]'s future in tokio's task cell, paid by
    /// every connection, idle or not. Tokio rounds the cell (its header and trailer, 96 bytes
    /// with the task tracker's token, plus the future) up to a multiple of 128 bytes: 528
    /// bytes is the largest future that fits 640, a local more kept across an `.await` makes
    /// it 768. (Measured: 520 bytes optimised, 528 in debug builds.)
    #[test]
    fn a_plain_connections_future_fits_the_640_byte_task_cell() {
        let (runtime, server) = one_thread_server();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let client_end = std::net::TcpStream::connect(addr).expect("connect");
        let (server_end, peer) = listener.accept().expect("accept");
        server_end.set_nonblocking(true).expect("non-blocking");
        let _guard = runtime.enter();
        let stream = tokio::net::TcpStream::from_std(server_end).expect("registered");
        let shared = server.shared();
        let client = Registry::register(&shared.clients, peer, addr, -1, unix_ms(), None);
        let future = super::handle(stream, client, crate::sync::Arc::clone(shared));
        let size = std::mem::size_of_val(&future);
        assert!(size <= 528, "handle's future grew to {size} bytes");
        drop((future, client_end));
        server.shutdown();
    }

    #[test]
    fn message_batching_gives_up_on_single_messages_and_probes() {
        let mut batching = MessageBatching::default();
        // Bursts: every wake-up waits.
        for _ in 0..10 {
            assert!(batching.should_wait());
            batching.drained(5, true);
        }
        // One message per wait: it stops after GIVE_UP of them.
        for _ in 0..MessageBatching::GIVE_UP {
            assert!(batching.should_wait());
            batching.drained(1, true);
        }
        let waits: Vec<bool> = (0..MessageBatching::PROBE_EVERY)
            .map(|_| {
                let waited = batching.should_wait();
                batching.drained(1, waited);
                waited
            })
            .collect();
        assert_eq!(
            waits.iter().filter(|&&w| w).count(),
            1,
            "one probe: {waits:?}"
        );
        // A probe that gathers several messages resumes waiting.
        while !batching.should_wait() {
            batching.drained(1, false);
        }
        batching.drained(3, true);
        assert!(batching.should_wait());
    }
}
