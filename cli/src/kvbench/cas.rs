//! The `cas` test: optimistic locking as clients do it, under contention.
//!
//! One request is one committed increment of `counter:N`: write `WATCH k` and `GET k`
//! together (the GET does not depend on the WATCH's reply), then `MULTI`, `SET k <value+1>`
//! and `EXEC` together (the SET needs the GET's value; the three do not need each other's
//! replies). When EXEC returns a null array, another client changed the key after the WATCH:
//! the attempt is counted as a retry and made again. Two round trips per attempt, so the
//! test cannot be pipelined; its latency runs from the first WATCH to the committing EXEC.
//!
//! A failure (an error reply, or a value that is not an integer) ends the request as an
//! error, after an `UNWATCH` so that the failed attempt's WATCH cannot abort the next one.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use protocol::encode::{write_array_header, write_bulk};
use protocol::{Frame, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::keys::{write_digits, KeyDist, Rng, KEY_DIGITS};
use crate::runner::{RunError, Shared, Stats};
use crate::workload::COUNTER_PREFIX;

/// Aborted attempts in a row after which an increment counts as failed, so that a server
/// whose EXEC always aborts ends the run instead of spinning forever.
pub const MAX_RETRIES: u64 = 10_000;

/// Free space ensured in the read buffer before each read (replies here are small).
const READ_RESERVE: usize = 4096;

/// The commands of one connection's check-and-set, encoded into reused buffers.
#[derive(Debug)]
pub struct CasRequests {
    /// `WATCH k` and `GET k`, with both keys' digits rewritten per request.
    watch_get: Vec<u8>,
    /// Offsets of the two keys' digits in `watch_get`.
    digits: [usize; 2],
    /// The current key.
    key: Vec<u8>,
    /// `MULTI`, `SET k v`, `EXEC`, rebuilt per attempt.
    commit: BytesMut,
}

impl Default for CasRequests {
    fn default() -> Self {
        Self::new()
    }
}

impl CasRequests {
    /// Requests on key `counter:000000000000` until [`CasRequests::watch_get`] picks another.
    pub fn new() -> Self {
        let mut key = COUNTER_PREFIX.to_vec();
        key.resize(COUNTER_PREFIX.len() + KEY_DIGITS, b'0');
        let mut buf = BytesMut::new();
        let mut digits = [0; 2];
        for (command, slot) in [b"WATCH".as_slice(), b"GET"].into_iter().zip(&mut digits) {
            write_array_header(&mut buf, 2);
            write_bulk(&mut buf, command);
            write_bulk(&mut buf, &key);
            // The digits end just before the bulk's CRLF.
            *slot = buf.len() - 2 - KEY_DIGITS;
        }
        Self {
            watch_get: buf.to_vec(),
            digits,
            key,
            commit: BytesMut::new(),
        }
    }

    /// `WATCH k` and `GET k` for key number `key`, which later commits use.
    pub fn watch_get(&mut self, key: u64) -> &[u8] {
        for offset in self.digits {
            if let Some(slot) = self.watch_get.get_mut(offset..offset + KEY_DIGITS) {
                write_digits(slot, key);
            }
        }
        if let Some(slot) = self.key.get_mut(COUNTER_PREFIX.len()..) {
            write_digits(slot, key);
        }
        &self.watch_get
    }

    /// `MULTI`, `SET k <value>`, `EXEC` for the current key.
    pub fn commit(&mut self, value: i64) -> &[u8] {
        self.commit.clear();
        write_array_header(&mut self.commit, 1);
        write_bulk(&mut self.commit, b"MULTI");
        write_array_header(&mut self.commit, 3);
        write_bulk(&mut self.commit, b"SET");
        write_bulk(&mut self.commit, &self.key);
        write_bulk(&mut self.commit, value.to_string().as_bytes());
        write_array_header(&mut self.commit, 1);
        write_bulk(&mut self.commit, b"EXEC");
        &self.commit
    }
}

/// The text of an error reply, as reported.
fn error_text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Error(text) => Some(String::from_utf8_lossy(text).into_owned()),
        _ => None,
    }
}

/// The value to SET given the replies to `WATCH k` and `GET k`: the counter plus one (a
/// missing key counts as 0), or the error that ends the request.
pub fn next_value(watch: &Frame, get: &Frame) -> Result<i64, String> {
    if let Some(text) = error_text(watch).or_else(|| error_text(get)) {
        return Err(text);
    }
    let current = match get {
        Frame::Null => 0,
        Frame::Bulk(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| {
                format!(
                    "GET returned {:?}, not an integer",
                    String::from_utf8_lossy(bytes)
                )
            })?,
        other => return Err(format!("GET returned {other:?}, not a string")),
    };
    current
        .checked_add(1)
        .ok_or_else(|| "the counter is at the largest integer".to_owned())
}

/// How an attempt's `MULTI`, `SET`, `EXEC` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// EXEC ran the SET.
    Committed,
    /// EXEC returned a null array: a watched key changed; try again.
    Aborted,
    /// An error reply (the first one's text), or a reply no server should give.
    Failed(String),
}

/// Reads the replies to `MULTI`, `SET k v`, `EXEC`.
pub fn commit_outcome(multi: &Frame, set: &Frame, exec: &Frame) -> Commit {
    if let Some(text) = [multi, set, exec].into_iter().find_map(error_text) {
        return Commit::Failed(text);
    }
    match exec {
        Frame::Null => Commit::Aborted,
        Frame::Array(results) => match results.iter().find_map(error_text) {
            Some(text) => Commit::Failed(text),
            None => Commit::Committed,
        },
        other => Commit::Failed(format!("EXEC returned {other:?}")),
    }
}

/// One connection's `cas` loop.
pub struct CasConnection {
    stream: TcpStream,
    requests: CasRequests,
    input: BytesMut,
    limits: Limits,
    dist: KeyDist,
    rng: Rng,
    deadline: Option<Instant>,
    shared: Arc<Shared>,
    stats: Rc<RefCell<Stats>>,
}

impl CasConnection {
    /// A loop on `stream` drawing keys from `dist` with `rng`, until `shared` runs out of
    /// requests or `deadline` passes, recording into `stats`.
    pub fn new(
        stream: TcpStream,
        dist: KeyDist,
        rng: Rng,
        deadline: Option<Instant>,
        shared: Arc<Shared>,
        stats: Rc<RefCell<Stats>>,
    ) -> Self {
        Self {
            stream,
            requests: CasRequests::new(),
            input: BytesMut::with_capacity(READ_RESERVE),
            limits: Limits::default(),
            dist,
            rng,
            deadline,
            shared,
            stats,
        }
    }

    /// Runs increments until the run is over.
    ///
    /// # Errors
    ///
    /// The connection failed or the server broke the protocol.
    pub async fn run(mut self) -> Result<(), RunError> {
        while self.shared.claim(1, self.deadline) > 0 {
            let key = self.dist.sample(&mut self.rng);
            let started = Instant::now();
            let (retries, failure) = self.increment(key).await?;
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let mut stats = self.stats.borrow_mut();
            stats.latency.saturating_record(micros);
            stats.requests += 1;
            stats.retries += retries;
            if let Some(text) = failure {
                stats.errors += 1;
                stats.first_error.get_or_insert(text);
            }
            drop(stats);
            self.shared.completed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Increments key number `key`, retrying aborted attempts; returns the retries and, if
    /// the increment failed, why.
    async fn increment(&mut self, key: u64) -> Result<(u64, Option<String>), RunError> {
        let mut retries = 0;
        loop {
            let request = self.requests.watch_get(key);
            self.stream.write_all(request).await.map_err(RunError::Io)?;
            let watch = self.read_frame().await?;
            let get = self.read_frame().await?;
            self.expect_no_more()?;
            let value = match next_value(&watch, &get) {
                Ok(value) => value,
                Err(text) => return self.give_up(retries, text).await,
            };
            let request = self.requests.commit(value);
            self.stream.write_all(request).await.map_err(RunError::Io)?;
            let multi = self.read_frame().await?;
            let set = self.read_frame().await?;
            let exec = self.read_frame().await?;
            self.expect_no_more()?;
            match commit_outcome(&multi, &set, &exec) {
                Commit::Committed => return Ok((retries, None)),
                Commit::Failed(text) => return self.give_up(retries, text).await,
                Commit::Aborted => {
                    retries += 1;
                    if retries >= MAX_RETRIES {
                        let text = format!("EXEC aborted {MAX_RETRIES} times in a row");
                        return Ok((retries, Some(text)));
                    }
                }
            }
        }
    }

    /// Ends a failed increment: drops any WATCH still in force (whatever the reply).
    async fn give_up(
        &mut self,
        retries: u64,
        text: String,
    ) -> Result<(u64, Option<String>), RunError> {
        let mut unwatch = BytesMut::new();
        write_array_header(&mut unwatch, 1);
        write_bulk(&mut unwatch, b"UNWATCH");
        self.stream
            .write_all(&unwatch)
            .await
            .map_err(RunError::Io)?;
        self.read_frame().await?;
        self.expect_no_more()?;
        Ok((retries, Some(text)))
    }

    /// Reads the next reply.
    async fn read_frame(&mut self) -> Result<Frame, RunError> {
        loop {
            if let Some((frame, used)) =
                protocol::parse::parse(&self.input, &self.limits).map_err(RunError::Protocol)?
            {
                self.input.advance(used);
                return Ok(frame);
            }
            self.input.reserve(READ_RESERVE);
            match self.stream.read_buf(&mut self.input).await {
                Ok(0) => return Err(RunError::Closed),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(RunError::Io(err)),
            }
        }
    }

    /// Every reply asked for has been read: anything else was not asked for.
    fn expect_no_more(&self) -> Result<(), RunError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(RunError::UnexpectedReply)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses one reply exactly as a server sent it.
    fn frame(bytes: &[u8]) -> Frame {
        let (frame, used) = protocol::parse::parse(bytes, &Limits::default())
            .expect("valid RESP")
            .expect("complete");
        assert_eq!(used, bytes.len());
        frame
    }

    #[test]
    fn requests_are_resp_commands() {
        let mut requests = CasRequests::new();
        assert_eq!(
            requests.watch_get(42),
            b"*2\r\n$5\r\nWATCH\r\n$20\r\ncounter:000000000042\r\n\
              *2\r\n$3\r\nGET\r\n$20\r\ncounter:000000000042\r\n"
        );
        assert_eq!(
            requests.commit(7),
            b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$20\r\ncounter:000000000042\r\n\
              $1\r\n7\r\n*1\r\n$4\r\nEXEC\r\n"
        );
        // Another key rewrites both commands; a later commit uses it.
        let text = String::from_utf8(requests.watch_get(999_999_999_999).to_vec()).expect("ASCII");
        assert_eq!(text.matches("counter:999999999999").count(), 2);
        assert!(requests
            .commit(-1)
            .ends_with(b"$20\r\ncounter:999999999999\r\n$2\r\n-1\r\n*1\r\n$4\r\nEXEC\r\n"));
    }

    #[test]
    fn the_next_value_follows_get() {
        // Replies of redis-server 7.0.15 to WATCH and GET (of a hash, for WRONGTYPE).
        let ok = frame(b"+OK\r\n");
        assert_eq!(next_value(&ok, &frame(b"$-1\r\n")), Ok(1));
        assert_eq!(next_value(&ok, &frame(b"$1\r\n5\r\n")), Ok(6));
        assert_eq!(next_value(&ok, &frame(b"$2\r\n-3\r\n")), Ok(-2));
        assert_eq!(
            next_value(&ok, &frame(b"$3\r\nabc\r\n")),
            Err("GET returned \"abc\", not an integer".to_owned())
        );
        assert_eq!(
            next_value(&ok, &frame(b"$19\r\n9223372036854775807\r\n")),
            Err("the counter is at the largest integer".to_owned())
        );
        let wrongtype = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
        assert_eq!(
            next_value(&ok, &frame(wrongtype)),
            Err("WRONGTYPE Operation against a key holding the wrong kind of value".to_owned())
        );
        // A server without WATCH (a made-up reply).
        assert_eq!(
            next_value(
                &frame(b"-ERR unknown command 'WATCH'\r\n"),
                &frame(b"$-1\r\n")
            ),
            Err("ERR unknown command 'WATCH'".to_owned())
        );
    }

    #[test]
    fn commit_outcomes() {
        // Replies of redis-server 7.0.15 to MULTI, SET, EXEC.
        let ok = frame(b"+OK\r\n");
        let queued = frame(b"+QUEUED\r\n");
        assert_eq!(
            commit_outcome(&ok, &queued, &frame(b"*1\r\n+OK\r\n")),
            Commit::Committed
        );
        // The watched key changed: a null array.
        assert_eq!(
            commit_outcome(&ok, &queued, &frame(b"*-1\r\n")),
            Commit::Aborted
        );
        // RESP3 null, as a server in RESP3 would answer.
        assert_eq!(
            commit_outcome(&ok, &queued, &frame(b"_\r\n")),
            Commit::Aborted
        );
        let execabort = frame(b"-EXECABORT Transaction discarded because of previous errors.\r\n");
        assert_eq!(
            commit_outcome(&ok, &queued, &execabort),
            Commit::Failed("EXECABORT Transaction discarded because of previous errors.".into())
        );
        // A server without MULTI (a made-up reply): the first error is reported.
        assert_eq!(
            commit_outcome(
                &frame(b"-ERR unknown command 'MULTI'\r\n"),
                &ok,
                &frame(b"-ERR unknown command 'EXEC'\r\n")
            ),
            Commit::Failed("ERR unknown command 'MULTI'".into())
        );
        assert_eq!(
            commit_outcome(&ok, &queued, &frame(b"*1\r\n-ERR oom\r\n")),
            Commit::Failed("ERR oom".into())
        );
        assert_eq!(
            commit_outcome(&ok, &queued, &frame(b":1\r\n")),
            Commit::Failed("EXEC returned Integer(1)".into())
        );
    }

    /// A fake server for one connection: answers WATCH, GET, MULTI, SET, EXEC and UNWATCH
    /// as Redis does for one string key, aborting the first `aborts` EXECs (as if another
    /// client had written the key); `get_error` replaces every GET reply. Returns the
    /// commands it received.
    async fn fake_server(
        listener: tokio::net::TcpListener,
        aborts: u32,
        get_error: Option<&'static [u8]>,
    ) -> Vec<String> {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut input = BytesMut::new();
        let mut value: Option<Vec<u8>> = None;
        let mut queued: Option<Vec<u8>> = None;
        let mut aborts_left = aborts;
        let mut log = Vec::new();
        loop {
            let parsed = protocol::parse::parse(&input, &Limits::default()).expect("RESP");
            let Some((Frame::Array(args), used)) = parsed else {
                if stream.read_buf(&mut input).await.expect("read") == 0 {
                    return log;
                }
                continue;
            };
            input.advance(used);
            let args: Vec<Vec<u8>> = args
                .into_iter()
                .map(|arg| match arg {
                    Frame::Bulk(bytes) => bytes.to_vec(),
                    other => panic!("not a bulk: {other:?}"),
                })
                .collect();
            log.push(String::from_utf8_lossy(&args[0]).into_owned());
            let reply: Vec<u8> = match args[0].as_slice() {
                b"WATCH" | b"MULTI" | b"UNWATCH" => b"+OK\r\n".to_vec(),
                b"GET" => match (get_error, &value) {
                    (Some(error), _) => error.to_vec(),
                    (None, None) => b"$-1\r\n".to_vec(),
                    (None, Some(v)) => {
                        [format!("${}\r\n", v.len()).as_bytes(), v, b"\r\n"].concat()
                    }
                },
                b"SET" => {
                    queued = Some(args[2].clone());
                    b"+QUEUED\r\n".to_vec()
                }
                b"EXEC" if aborts_left > 0 => {
                    aborts_left -= 1;
                    queued = None;
                    b"*-1\r\n".to_vec()
                }
                b"EXEC" => {
                    value = queued.take();
                    b"*1\r\n+OK\r\n".to_vec()
                }
                other => panic!("unexpected command {other:?}"),
            };
            stream.write_all(&reply).await.expect("write");
        }
    }

    /// Runs `requests` increments against a fake server; returns the stats and the commands
    /// the server saw.
    fn run_against(
        requests: u64,
        aborts: u32,
        get_error: Option<&'static [u8]>,
    ) -> (Stats, Vec<String>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("address");
            let server = tokio::spawn(fake_server(listener, aborts, get_error));
            let stream = TcpStream::connect(addr).await.expect("connect");
            let shared = Arc::new(Shared::new(requests));
            let stats = Rc::new(RefCell::new(Stats::new().expect("histogram")));
            let connection = CasConnection::new(
                stream,
                KeyDist::Uniform { keyspace: 1 },
                Rng::new(1),
                None,
                Arc::clone(&shared),
                Rc::clone(&stats),
            );
            connection.run().await.expect("the loop runs");
            let log = server.await.expect("server task");
            assert_eq!(shared.completed.load(Ordering::Relaxed), requests);
            let stats = stats.borrow().clone();
            (stats, log)
        })
    }

    #[test]
    fn aborted_attempts_are_retried_and_counted() {
        let (stats, log) = run_against(3, 2, None);
        assert_eq!((stats.requests, stats.errors, stats.retries), (3, 0, 2));
        assert_eq!(stats.latency.len(), 3);
        // Five attempts of five commands: two aborted, then one committed per increment.
        let attempt = ["WATCH", "GET", "MULTI", "SET", "EXEC"];
        assert_eq!(log, attempt.repeat(5));
    }

    #[test]
    fn a_failed_get_ends_the_increment_with_unwatch() {
        let wrongtype: &[u8] =
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
        let (stats, log) = run_against(2, 0, Some(wrongtype));
        assert_eq!((stats.requests, stats.errors, stats.retries), (2, 2, 0));
        assert_eq!(
            stats.first_error.as_deref(),
            Some("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
        assert_eq!(log, ["WATCH", "GET", "UNWATCH"].repeat(2));
    }
}
