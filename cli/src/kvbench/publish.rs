//! The `publish` test: Pub/Sub fan-out, measured from the PUBLISH to the subscriber.
//!
//! Before the clock starts, `--subscribers` connections of this process SUBSCRIBE, subscriber
//! `i` to channel `channel:<i mod C>` (`--channels C`, channel names padded to 12 digits like
//! keys), and every confirmation is awaited. The `-c` publishers then send
//! `PUBLISH channel:N <payload>` (`-P` at a time), each going round the channels from its own
//! starting point. One request is one PUBLISH; its latency is the time to PUBLISH's reply,
//! which must be the number of subscribers of the channel.
//!
//! A payload starts with a [`Stamp`]: the publisher's number, its own sequence number, and
//! the send time in nanoseconds on this process's monotonic clock, padded with `x` to `-d`
//! bytes when `-d` is larger. Subscribers run on threads of their own (one per `--threads`);
//! for each message they record the publish-to-delivery latency (arrival minus stamp) and
//! check that each publisher's sequence numbers only increase on the channel ([`OrderCheck`]).
//!
//! The run ends once every PUBLISH is answered and every subscriber holds one message per
//! accepted PUBLISH on its channel, or has received nothing for [`DELIVERY_IDLE_TIMEOUT`]:
//! the messages still missing then count as errors. Memory stays bounded whatever the run's
//! length: histograms, counters, and one last sequence number per publisher per subscriber.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use protocol::encode::{write_array_header, write_bulk};
use protocol::{Frame, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::{JoinSet, LocalSet};

use crate::keys::{write_digits, KEY_DIGITS};
use crate::report::Delivery;
use crate::runner::{self, Outcome, Plan, RunError, Shared, Stats, LATENCY_SIGFIG, MAX_LATENCY_US};

/// Prefix of the channel names: `channel:NNNNNNNNNNNN`.
pub const CHANNEL_PREFIX: &[u8] = b"channel:";

/// Digits of the publisher number in a [`Stamp`].
const PUBLISHER_DIGITS: usize = 10;

/// Digits of the sequence number in a [`Stamp`].
const SEQUENCE_DIGITS: usize = 12;

/// Digits of the send time (nanoseconds since the process's clock origin) in a [`Stamp`]:
/// enough for 115 days.
const CLOCK_DIGITS: usize = 16;

/// Offset of the sequence number in a stamp (after the publisher and a `:`).
const SEQUENCE_AT: usize = PUBLISHER_DIGITS + 1;

/// Offset of the send time in a stamp (after the sequence number and a `:`).
const CLOCK_AT: usize = SEQUENCE_AT + SEQUENCE_DIGITS + 1;

/// Length of a [`Stamp`]: `PPPPPPPPPP:SSSSSSSSSSSS:TTTTTTTTTTTTTTTT`, the smallest payload.
pub const STAMP_LEN: usize = CLOCK_AT + CLOCK_DIGITS;

/// How long a subscriber waits for a message once publishing has ended before it counts
/// the messages it still lacks as missing.
pub const DELIVERY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for a connection or a SUBSCRIBE confirmation before the clock starts.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Free space ensured in a read buffer before each read.
const READ_RESERVE: usize = 64 * 1024;

/// Read buffer space shared by all the subscribers of a run: each gets its share, between
/// [`MIN_SUBSCRIBER_RESERVE`] and [`READ_RESERVE`], so that 10,000 subscribers do not
/// hold 640 MB of buffers.
const SUBSCRIBER_BUFFER_BUDGET: usize = 64 * 1024 * 1024;

/// Smallest read buffer space of a subscriber.
const MIN_SUBSCRIBER_RESERVE: usize = 4 * 1024;

/// File descriptors kept free beyond the connections (stdio, the runtime's own, the probe).
const SPARE_DESCRIPTORS: u64 = 64;

/// Longest description of an unexpected frame in an error message.
const MAX_DESCRIPTION: usize = 200;

/// Origin of the clock the stamps carry, shared by publishers and subscribers.
static CLOCK_ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds from the process's clock origin to `at` (0 for an earlier instant).
fn nanos_at(at: Instant) -> u64 {
    let origin = *CLOCK_ORIGIN.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// The subscribers' layout, and what the publishers got the server to accept, shared by
/// every thread of a run.
#[derive(Debug, Clone)]
pub struct PubSub {
    /// Subscriber connections.
    pub subscribers: usize,
    /// Channels they are spread over (at least 1).
    pub channels: usize,
    /// Per channel: PUBLISHes answered with an integer (hence delivered to its subscribers).
    accepted: Arc<[AtomicU64]>,
    /// PUBLISHes per second over all publishers (`--rate`); 0: as fast as replies come.
    pub rate: u64,
}

impl PubSub {
    /// `subscribers` spread over `channels` channels (0 counts as 1).
    pub fn new(subscribers: usize, channels: usize) -> Self {
        let channels = channels.max(1);
        Self {
            subscribers,
            channels,
            accepted: (0..channels).map(|_| AtomicU64::new(0)).collect(),
            rate: 0,
        }
    }

    /// Paces the publishers at `rate` PUBLISHes per second in all (0: unpaced), so that two
    /// servers' delivery latencies can be compared at the same load.
    pub fn paced(mut self, rate: u64) -> Self {
        self.rate = rate;
        self
    }

    /// With `--rate`: how often a publisher sends a batch of `pipeline`, and when publisher
    /// `publisher` of `publishers` sends its first (spread over one interval).
    fn schedule(
        &self,
        publisher: usize,
        publishers: usize,
        pipeline: usize,
    ) -> Option<(Duration, Duration)> {
        if self.rate == 0 {
            return None;
        }
        let per_batch = (pipeline.max(1) * publishers.max(1)) as f64 / self.rate as f64;
        let interval = Duration::from_secs_f64(per_batch);
        let offset = interval.mul_f64(publisher as f64 / publishers.max(1) as f64);
        Some((interval, offset))
    }

    /// The channel subscriber `subscriber` listens on: subscribers `c`, `c + C`, `c + 2C`...
    /// share channel `c`.
    pub fn channel_of(&self, subscriber: usize) -> usize {
        subscriber % self.channels
    }

    /// How many subscribers listen on `channel`: what PUBLISH to it must return.
    pub fn subscribers_on(&self, channel: usize) -> u64 {
        let per_channel = self.subscribers / self.channels;
        let one_more = channel < self.subscribers % self.channels;
        (per_channel + usize::from(one_more)) as u64
    }

    /// Adds one publisher's per-channel counts of accepted PUBLISHes.
    fn add_accepted(&self, counts: &[u64]) {
        for (total, &count) in self.accepted.iter().zip(counts) {
            if count > 0 {
                total.fetch_add(count, Ordering::Relaxed);
            }
        }
    }

    /// Accepted PUBLISHes per channel so far.
    fn accepted(&self) -> Vec<u64> {
        self.accepted
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect()
    }

    /// The messages the subscribers should receive for `accepted` PUBLISHes per channel.
    fn expected_deliveries(&self, accepted: &[u64]) -> u64 {
        accepted
            .iter()
            .enumerate()
            .map(|(channel, &count)| count.saturating_mul(self.subscribers_on(channel)))
            .fold(0, u64::saturating_add)
    }
}

/// `channel:NNNNNNNNNNNN` for channel number `channel`.
pub fn channel_name(channel: u64) -> Vec<u8> {
    let mut name = CHANNEL_PREFIX.to_vec();
    name.resize(CHANNEL_PREFIX.len() + KEY_DIGITS, b'0');
    if let Some(digits) = name.get_mut(CHANNEL_PREFIX.len()..) {
        write_digits(digits, channel);
    }
    name
}

/// What starts every payload: who published it, in which order, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The publisher's number (its `-c` connection index).
    pub publisher: u64,
    /// The publisher's count of PUBLISHes before this one.
    pub sequence: u64,
    /// Send time, in nanoseconds since the process's clock origin.
    pub sent_nanos: u64,
}

impl Stamp {
    /// Writes the stamp over the first [`STAMP_LEN`] bytes of `out` (nothing if shorter).
    /// Numbers too large for their digits keep their low digits.
    pub fn write(&self, out: &mut [u8]) {
        let Some(out) = out.get_mut(..STAMP_LEN) else {
            return;
        };
        let (publisher, rest) = out.split_at_mut(PUBLISHER_DIGITS);
        write_digits(publisher, self.publisher);
        let (colon, rest) = rest.split_at_mut(1);
        colon.fill(b':');
        let (sequence, rest) = rest.split_at_mut(SEQUENCE_DIGITS);
        write_digits(sequence, self.sequence);
        let (colon, clock) = rest.split_at_mut(1);
        colon.fill(b':');
        write_digits(clock, self.sent_nanos);
    }

    /// Reads the stamp at the start of `payload`; `None` if it is not one (a message some
    /// other client published).
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let stamp = payload.get(..STAMP_LEN)?;
        if stamp.get(SEQUENCE_AT - 1) != Some(&b':') || stamp.get(CLOCK_AT - 1) != Some(&b':') {
            return None;
        }
        Some(Self {
            publisher: read_digits(stamp.get(..PUBLISHER_DIGITS)?)?,
            sequence: read_digits(stamp.get(SEQUENCE_AT..SEQUENCE_AT + SEQUENCE_DIGITS)?)?,
            sent_nanos: read_digits(stamp.get(CLOCK_AT..)?)?,
        })
    }
}

/// The number written in `digits` (ASCII digits only, no sign); `None` otherwise or on
/// overflow.
fn read_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// One subscriber's check of the delivery order: each publisher's messages must arrive in
/// the order it published them, so its sequence numbers only increase.
#[derive(Debug, Clone)]
pub struct OrderCheck {
    /// Per publisher: 1 + the last sequence number seen, 0 before the first message.
    next_above: Vec<u64>,
}

impl OrderCheck {
    /// A check of messages from publishers `0..publishers`.
    pub fn new(publishers: usize) -> Self {
        Self {
            next_above: vec![0; publishers],
        }
    }

    /// Takes note of `stamp`'s message; `Err` says why it is out of order (or from a
    /// publisher kvbench does not have).
    pub fn observe(&mut self, stamp: &Stamp) -> Result<(), String> {
        let publishers = self.next_above.len();
        let Some(slot) = usize::try_from(stamp.publisher)
            .ok()
            .and_then(|index| self.next_above.get_mut(index))
        else {
            return Err(format!(
                "a message stamped by publisher {} of {publishers}",
                stamp.publisher
            ));
        };
        if stamp.sequence < *slot {
            return Err(format!(
                "publisher {}'s message {} arrived after its message {}",
                stamp.publisher,
                stamp.sequence,
                *slot - 1
            ));
        }
        *slot = stamp.sequence.saturating_add(1);
        Ok(())
    }
}

/// One publisher's PUBLISH commands: `-P` copies encoded once, whose channel digits and
/// stamps are rewritten before each batch.
#[derive(Debug)]
pub struct PublishRequests {
    buf: Vec<u8>,
    /// Bytes of one PUBLISH.
    request_len: usize,
    /// Offset of the channel's digits in a PUBLISH.
    channel_at: usize,
    /// Offset of the payload (its stamp) in a PUBLISH.
    stamp_at: usize,
    publisher: u64,
    /// Sequence number of the next PUBLISH.
    sequence: u64,
    channels: u64,
    /// Channel of the next PUBLISH.
    next_channel: u64,
    /// Channel of each PUBLISH of the current batch, in order.
    batch: Vec<usize>,
}

impl PublishRequests {
    /// Batches of up to `pipeline` PUBLISHes by publisher `publisher` over `channels`
    /// channels, with payloads of `max(value_size, STAMP_LEN)` bytes. The first goes to
    /// channel `publisher mod channels`, the next ones round the channels from there.
    pub fn new(publisher: usize, channels: usize, value_size: usize, pipeline: usize) -> Self {
        let channels = channels.max(1);
        let mut payload = vec![b'x'; value_size.max(STAMP_LEN)];
        Stamp {
            publisher: 0,
            sequence: 0,
            sent_nanos: 0,
        }
        .write(&mut payload);
        let mut one = BytesMut::new();
        write_array_header(&mut one, 3);
        write_bulk(&mut one, b"PUBLISH");
        write_bulk(&mut one, &channel_name(0));
        // The digits end just before the bulk's CRLF; the payload likewise.
        let channel_at = one.len() - 2 - KEY_DIGITS;
        write_bulk(&mut one, &payload);
        let stamp_at = one.len() - 2 - payload.len();
        let pipeline = pipeline.max(1);
        Self {
            buf: one.repeat(pipeline),
            request_len: one.len(),
            channel_at,
            stamp_at,
            publisher: publisher as u64,
            sequence: 0,
            channels: channels as u64,
            next_channel: (publisher % channels) as u64,
            batch: Vec::with_capacity(pipeline),
        }
    }

    /// The next `n` PUBLISHes (at most the pipeline depth), stamped as sent at `sent_nanos`.
    #[cfg(test)]
    pub fn prepare(&mut self, n: usize, sent_nanos: u64) -> &[u8] {
        let len = self.stamp(n, sent_nanos);
        self.buf.get(..len).unwrap_or_default()
    }

    /// Rewrites the first `n` PUBLISHes (at most the pipeline depth) as the next ones,
    /// stamped as sent at `sent_nanos`; returns their length in bytes.
    fn stamp(&mut self, n: usize, sent_nanos: u64) -> usize {
        let n = n.min(self.buf.len() / self.request_len.max(1));
        self.batch.clear();
        for index in 0..n {
            let base = index * self.request_len;
            let channel = self.next_channel;
            self.next_channel = (channel + 1) % self.channels;
            let at = base + self.channel_at;
            if let Some(digits) = self.buf.get_mut(at..at + KEY_DIGITS) {
                write_digits(digits, channel);
            }
            let at = base + self.stamp_at;
            if let Some(stamp) = self.buf.get_mut(at..at + STAMP_LEN) {
                Stamp {
                    publisher: self.publisher,
                    sequence: self.sequence,
                    sent_nanos,
                }
                .write(stamp);
            }
            self.sequence += 1;
            self.batch
                .push(usize::try_from(channel).unwrap_or(usize::MAX));
        }
        n * self.request_len
    }

    /// The channel of each PUBLISH of the last batch [`PublishRequests::prepare`] made.
    #[cfg(test)]
    pub fn batch_channels(&self) -> &[usize] {
        &self.batch
    }
}

/// Checks PUBLISH's reply to a message on `channel`, which `expected` subscribers listen
/// to: whether the server published it (an integer reply), and the error to count, if any
/// (an error reply, not an integer, or another number of receivers).
fn check_publish_reply(frame: &Frame, channel: usize, expected: u64) -> (bool, Option<String>) {
    match frame {
        Frame::Integer(n) if u64::try_from(*n) == Ok(expected) => (true, None),
        Frame::Integer(n) => (
            true,
            Some(format!(
                "PUBLISH {} returned {n} receivers, expected {expected}",
                String::from_utf8_lossy(&channel_name(channel as u64))
            )),
        ),
        Frame::Error(text) => (false, Some(String::from_utf8_lossy(text).into_owned())),
        other => (
            false,
            Some(format!("PUBLISH returned {}", describe_frame(other))),
        ),
    }
}

/// A frame, shortened for an error message.
fn describe_frame(frame: &Frame) -> String {
    let mut text = format!("{frame:?}");
    if text.len() > MAX_DESCRIPTION {
        let mut end = MAX_DESCRIPTION;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// One publisher's loop: batches of PUBLISH, each reply checked against the channel's
/// subscribers.
pub struct PublishConnection {
    stream: TcpStream,
    requests: PublishRequests,
    pubsub: PubSub,
    /// Per channel: this publisher's accepted PUBLISHes, added to `pubsub` at the end.
    accepted: Vec<u64>,
    pipeline: u64,
    deadline: Option<Instant>,
    /// With `--rate`: when the next batch goes, and the time between batches.
    pacing: Option<(tokio::time::Instant, Duration)>,
    shared: Arc<Shared>,
    stats: Rc<RefCell<Stats>>,
    input: BytesMut,
    limits: Limits,
}

impl PublishConnection {
    /// Publisher number `publisher` of `publishers` on `stream`, sending `pipeline`
    /// PUBLISHes at a time with `value_size`-byte payloads (paced if `pubsub.rate` is set)
    /// until `shared` runs out of requests or `deadline` passes, recording into `stats`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stream: TcpStream,
        publisher: usize,
        publishers: usize,
        pubsub: PubSub,
        value_size: usize,
        pipeline: usize,
        deadline: Option<Instant>,
        shared: Arc<Shared>,
        stats: Rc<RefCell<Stats>>,
    ) -> Self {
        let pacing = pubsub
            .schedule(publisher, publishers, pipeline)
            .map(|(interval, offset)| (tokio::time::Instant::now() + offset, interval));
        Self {
            stream,
            requests: PublishRequests::new(publisher, pubsub.channels, value_size, pipeline),
            accepted: vec![0; pubsub.channels],
            pacing,
            pubsub,
            pipeline: u64::try_from(pipeline.max(1)).unwrap_or(u64::MAX),
            deadline,
            shared,
            stats,
            input: BytesMut::with_capacity(READ_RESERVE),
            limits: Limits::default(),
        }
    }

    /// Publishes until the run is over.
    ///
    /// # Errors
    ///
    /// The connection failed or the server broke the protocol.
    pub async fn run(mut self) -> Result<(), RunError> {
        let result = self.batches().await;
        self.pubsub.add_accepted(&self.accepted);
        result
    }

    async fn batches(&mut self) -> Result<(), RunError> {
        loop {
            if let Some((next, interval)) = &mut self.pacing {
                // Behind schedule (the server is slower than the rate), the next batch goes at
                // once.
                tokio::time::sleep_until(*next).await;
                *next += *interval;
            }
            let n = self.shared.claim(self.pipeline, self.deadline);
            if n == 0 {
                return Ok(());
            }
            let count = usize::try_from(n).unwrap_or(usize::MAX);
            let sent = Instant::now();
            let len = self.requests.stamp(count, nanos_at(sent));
            let request = self.requests.buf.get(..len).unwrap_or_default();
            let channels = self.requests.batch.as_slice();
            let mut written = 0;
            let mut writable = true;
            let mut answered = 0;
            while answered < channels.len() {
                let read = crate::runner::pump(
                    &self.stream,
                    request,
                    &mut written,
                    &mut writable,
                    &mut self.input,
                    READ_RESERVE,
                )
                .await?;
                if !read {
                    continue;
                }
                let arrived = Instant::now();
                let before = answered;
                let mut errors = 0;
                let mut first_error = None;
                while let Some((frame, used)) =
                    protocol::parse::parse(&self.input, &self.limits).map_err(RunError::Protocol)?
                {
                    self.input.advance(used);
                    let Some(&channel) = channels.get(answered) else {
                        return Err(RunError::UnexpectedReply);
                    };
                    answered += 1;
                    let (accepted, error) =
                        check_publish_reply(&frame, channel, self.pubsub.subscribers_on(channel));
                    if accepted {
                        if let Some(total) = self.accepted.get_mut(channel) {
                            *total += 1;
                        }
                    }
                    if let Some(text) = error {
                        errors += 1;
                        first_error.get_or_insert(text);
                    }
                }
                let replies = (answered - before) as u64;
                if replies == 0 {
                    continue;
                }
                let micros =
                    u64::try_from(arrived.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
                let mut stats = self.stats.borrow_mut();
                stats.latency.saturating_record_n(micros, replies);
                stats.requests += replies;
                stats.errors += errors;
                if let Some(text) = first_error {
                    stats.first_error.get_or_insert(text);
                }
            }
            // Anything after the last reply was not asked for.
            if !self.input.is_empty() {
                return Err(RunError::UnexpectedReply);
            }
            self.shared.completed.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Where a run is, as the subscribers see it.
#[derive(Debug, Clone)]
enum Phase {
    /// Publishers are publishing: keep reading.
    Publishing,
    /// Publishing is over, with this many accepted PUBLISHes per channel: read until each
    /// has arrived.
    Expect(Arc<[u64]>),
    /// The run failed: stop at once.
    Abort,
}

/// What the subscribers measured.
#[derive(Debug, Clone)]
pub struct Deliveries {
    /// Publish-to-delivery latency of every message, in microseconds.
    pub latency: Histogram<u64>,
    /// Messages received.
    pub delivered: u64,
    /// Messages the subscribers should have received.
    pub expected: u64,
    /// Messages out of order, not from kvbench, missing or extra; subscribers cut off.
    pub errors: u64,
    /// What the first of them was.
    pub first_error: Option<String>,
    /// When the last message arrived.
    pub last_arrival: Option<Instant>,
}

impl Deliveries {
    /// Nothing measured yet.
    ///
    /// # Errors
    ///
    /// The histogram could not be created.
    pub fn new() -> Result<Self, RunError> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, LATENCY_SIGFIG)
                .map_err(|err| RunError::Internal(format!("latency histogram: {err}")))?,
            delivered: 0,
            expected: 0,
            errors: 0,
            first_error: None,
            last_arrival: None,
        })
    }

    fn note_errors(&mut self, count: u64, text: impl FnOnce() -> String) {
        self.errors += count;
        if self.first_error.is_none() {
            self.first_error = Some(text());
        }
    }

    fn merge(&mut self, other: &Self) -> Result<(), RunError> {
        self.latency
            .add(&other.latency)
            .map_err(|err| RunError::Internal(format!("merging histograms: {err:?}")))?;
        self.delivered += other.delivered;
        self.expected += other.expected;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.last_arrival = self.last_arrival.max(other.last_arrival);
        Ok(())
    }

    /// The report's columns, for a run whose clock started at `started`.
    pub fn summary(&self, pubsub: &PubSub, started: Instant) -> Delivery {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let percentile = |q: f64| {
            if self.latency.is_empty() {
                0.0
            } else {
                ms(self.latency.value_at_quantile(q))
            }
        };
        let seconds = self.last_arrival.map_or(0.0, |last| {
            last.saturating_duration_since(started).as_secs_f64()
        });
        Delivery {
            subscribers: pubsub.subscribers,
            channels: pubsub.channels,
            delivered: self.delivered,
            expected: self.expected,
            per_second: if seconds > 0.0 {
                self.delivered as f64 / seconds
            } else {
                0.0
            },
            p50_ms: percentile(0.5),
            p99_ms: percentile(0.99),
            p999_ms: percentile(0.999),
            max_ms: if self.latency.is_empty() {
                0.0
            } else {
                ms(self.latency.max())
            },
            errors: self.errors,
        }
    }
}

/// What a message parser found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A message on the expected channel: its payload, and the bytes it took.
    Message(&'a [u8], usize),
    /// Not a whole frame yet.
    Incomplete,
}

/// Parses a RESP2 `message` push on the channel whose header is `prefix` (`*3`, `message`
/// and the channel's bulk, see [`message_prefix`]) at the start of `buf`. Anything else
/// (an error, another push, another channel, bytes that are not RESP) is an `Err` saying
/// what it was.
pub fn parse_message<'a>(buf: &'a [u8], prefix: &[u8]) -> Result<Parsed<'a>, String> {
    let Some(rest) = buf.strip_prefix(prefix) else {
        if buf.len() < prefix.len() && prefix.starts_with(buf) {
            return Ok(Parsed::Incomplete);
        }
        return other_frame(buf);
    };
    // `$<len>\r\n<payload>\r\n`
    match rest.first() {
        None => return Ok(Parsed::Incomplete),
        Some(b'$') => {}
        Some(_) => return other_frame(buf),
    }
    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
        // A length line is at most `$` and 20 digits.
        return if rest.len() > 22 {
            other_frame(buf)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let len = lf
        .checked_sub(1)
        .filter(|&cr| rest.get(cr) == Some(&b'\r'))
        .and_then(|cr| rest.get(1..cr))
        .and_then(read_digits)
        .and_then(|len| usize::try_from(len).ok())
        .filter(|&len| len <= protocol::parse::DEFAULT_MAX_BULK_LEN);
    let Some(len) = len else {
        return other_frame(buf);
    };
    let start = lf + 1;
    let end = start + len;
    let Some(crlf) = rest.get(end..end + 2) else {
        return Ok(Parsed::Incomplete);
    };
    if crlf != b"\r\n" {
        return Err("protocol error: a message's payload does not end with CRLF".to_owned());
    }
    let payload = rest.get(start..end).unwrap_or_default();
    Ok(Parsed::Message(payload, prefix.len() + end + 2))
}

/// The error for a frame that is not a message on the subscriber's channel (or
/// [`Parsed::Incomplete`] while it is not whole).
fn other_frame(buf: &[u8]) -> Result<Parsed<'_>, String> {
    match protocol::parse::parse(buf, &Limits::default()) {
        Ok(None) => Ok(Parsed::Incomplete),
        Ok(Some((Frame::Error(text), _))) => Err(format!(
            "error on a subscribed connection: {}",
            String::from_utf8_lossy(&text)
        )),
        Ok(Some((frame, _))) => Err(format!(
            "unexpected {} on a subscribed connection",
            describe_frame(&frame)
        )),
        Err(err) => Err(format!("protocol error: {err}")),
    }
}

/// The bytes every `message` push on `channel` starts with (RESP2).
pub fn message_prefix(channel: u64) -> Vec<u8> {
    let mut prefix = BytesMut::new();
    write_array_header(&mut prefix, 3);
    write_bulk(&mut prefix, b"message");
    write_bulk(&mut prefix, &channel_name(channel));
    prefix.to_vec()
}

/// Checks the reply to `SUBSCRIBE channel` (RESP2 array or RESP3 push).
fn check_confirmation(frame: &Frame, channel: &[u8]) -> Result<(), String> {
    match frame {
        Frame::Array(items) | Frame::Push(items) => match items.as_slice() {
            [Frame::Bulk(kind), Frame::Bulk(name), Frame::Integer(_)]
                if kind.eq_ignore_ascii_case(b"subscribe") && name.as_ref() == channel =>
            {
                Ok(())
            }
            _ => Err(format!(
                "SUBSCRIBE returned {}, not a confirmation",
                describe_frame(frame)
            )),
        },
        Frame::Error(text) => Err(format!(
            "the server refused SUBSCRIBE ({}): it does not support Pub/Sub",
            String::from_utf8_lossy(text)
        )),
        other => Err(format!(
            "SUBSCRIBE returned {}, not a confirmation",
            describe_frame(other)
        )),
    }
}

/// One subscriber connection.
struct Subscriber {
    index: usize,
    channel: usize,
    stream: TcpStream,
    input: BytesMut,
    /// What every message on the channel starts with.
    prefix: Vec<u8>,
    order: OrderCheck,
    received: u64,
    /// Free space ensured in `input` before each read.
    read_reserve: usize,
    deliveries: Rc<RefCell<Deliveries>>,
}

impl Subscriber {
    /// The channel's name, for messages.
    fn channel_text(&self) -> String {
        String::from_utf8_lossy(&channel_name(self.channel as u64)).into_owned()
    }

    /// Reads messages until every one expected has arrived, the run is aborted, the
    /// connection fails, or nothing arrives for [`DELIVERY_IDLE_TIMEOUT`] after publishing.
    async fn run(mut self, mut phase: watch::Receiver<Phase>) {
        // While the publishers run: read, and watch for the end of publishing.
        let expected = loop {
            tokio::select! {
                biased;
                read = self.stream.read_buf(&mut self.input) => {
                    if !self.on_read(read) {
                        return;
                    }
                }
                changed = phase.changed() => {
                    let now = if changed.is_ok() {
                        phase.borrow_and_update().clone()
                    } else {
                        Phase::Abort
                    };
                    match now {
                        Phase::Publishing => {}
                        Phase::Abort => return,
                        Phase::Expect(accepted) => {
                            break accepted.get(self.channel).copied().unwrap_or(0);
                        }
                    }
                }
            }
        };
        self.deliveries.borrow_mut().expected += expected;
        while self.received < expected {
            self.input.reserve(self.read_reserve);
            let read =
                tokio::time::timeout(DELIVERY_IDLE_TIMEOUT, self.stream.read_buf(&mut self.input))
                    .await;
            let Ok(read) = read else {
                let missing = expected - self.received;
                let text = format!(
                    "subscriber {} on {} received {} of {expected} messages \
                     (nothing more within {}s)",
                    self.index,
                    self.channel_text(),
                    self.received,
                    DELIVERY_IDLE_TIMEOUT.as_secs()
                );
                self.deliveries.borrow_mut().note_errors(missing, || text);
                return;
            };
            if !self.on_read(read) {
                let missing = expected.saturating_sub(self.received);
                if missing > 0 {
                    self.deliveries
                        .borrow_mut()
                        .note_errors(missing, || format!("{missing} messages missing"));
                }
                return;
            }
        }
        if self.received > expected {
            let extra = self.received - expected;
            let text = format!(
                "subscriber {} on {} received {} messages, {extra} more than were published",
                self.index,
                self.channel_text(),
                self.received
            );
            self.deliveries.borrow_mut().note_errors(extra, || text);
        }
    }

    /// Handles the result of a read; `false` if the subscriber is done for (the error is
    /// recorded).
    fn on_read(&mut self, read: io::Result<usize>) -> bool {
        let failure = match read {
            Ok(0) => format!(
                "subscriber {} on {} was disconnected by the server after {} messages",
                self.index,
                self.channel_text(),
                self.received
            ),
            Ok(_) => match self.consume(Instant::now()) {
                Ok(()) => {
                    self.input.reserve(self.read_reserve);
                    return true;
                }
                Err(text) => format!("subscriber {}: {text}", self.index),
            },
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return true,
            Err(err) => format!("subscriber {}: {err}", self.index),
        };
        self.deliveries.borrow_mut().note_errors(1, || failure);
        false
    }

    /// Takes every whole message out of the input, all of them read at `arrived`.
    fn consume(&mut self, arrived: Instant) -> Result<(), String> {
        let now = nanos_at(arrived);
        let mut deliveries = self.deliveries.borrow_mut();
        let mut pos = 0;
        let mut count = 0;
        let mut failure = None;
        loop {
            let rest = self.input.get(pos..).unwrap_or_default();
            match parse_message(rest, &self.prefix) {
                Ok(Parsed::Message(payload, used)) => {
                    pos += used;
                    count += 1;
                    match Stamp::parse(payload) {
                        Some(stamp) => {
                            let micros = now.saturating_sub(stamp.sent_nanos) / 1000;
                            deliveries.latency.saturating_record(micros);
                            if let Err(text) = self.order.observe(&stamp) {
                                deliveries.note_errors(1, || {
                                    format!("subscriber {}: {text}", self.index)
                                });
                            }
                        }
                        None => deliveries.note_errors(1, || {
                            format!(
                                "subscriber {}: a message kvbench did not publish ({} bytes)",
                                self.index,
                                payload.len()
                            )
                        }),
                    }
                }
                Ok(Parsed::Incomplete) => break,
                Err(text) => {
                    failure = Some(text);
                    break;
                }
            }
        }
        self.input.advance(pos);
        self.received += count;
        deliveries.delivered += count;
        if count > 0 {
            deliveries.last_arrival = deliveries.last_arrival.max(Some(arrived));
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Opens subscriber connections `indexes` and subscribes each to its channel, waiting for
/// every confirmation.
async fn subscribe_all(
    addr: SocketAddr,
    indexes: &[usize],
    pubsub: &PubSub,
    publishers: usize,
    deliveries: &Rc<RefCell<Deliveries>>,
) -> Result<Vec<Subscriber>, RunError> {
    let read_reserve = (SUBSCRIBER_BUFFER_BUDGET / pubsub.subscribers.max(1))
        .clamp(MIN_SUBSCRIBER_RESERVE, READ_RESERVE);
    let mut subscribers = Vec::with_capacity(indexes.len());
    for &index in indexes {
        let stream = tokio::time::timeout(SETUP_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| RunError::Internal("connecting a subscriber timed out".to_owned()))?
            .map_err(RunError::Connect)?;
        let channel = pubsub.channel_of(index);
        subscribers.push(Subscriber {
            index,
            channel,
            stream,
            input: BytesMut::with_capacity(read_reserve),
            prefix: message_prefix(channel as u64),
            order: OrderCheck::new(publishers),
            received: 0,
            read_reserve,
            deliveries: Rc::clone(deliveries),
        });
    }
    // All SUBSCRIBEs first, then the confirmations: one round trip in all.
    for subscriber in &mut subscribers {
        let mut request = BytesMut::new();
        write_array_header(&mut request, 2);
        write_bulk(&mut request, b"SUBSCRIBE");
        write_bulk(&mut request, &channel_name(subscriber.channel as u64));
        subscriber
            .stream
            .write_all(&request)
            .await
            .map_err(RunError::Io)?;
    }
    let limits = Limits::default();
    for subscriber in &mut subscribers {
        let name = channel_name(subscriber.channel as u64);
        let frame = loop {
            if let Some((frame, used)) =
                protocol::parse::parse(&subscriber.input, &limits).map_err(RunError::Protocol)?
            {
                subscriber.input.advance(used);
                break frame;
            }
            subscriber.input.reserve(read_reserve);
            let read = tokio::time::timeout(
                SETUP_TIMEOUT,
                subscriber.stream.read_buf(&mut subscriber.input),
            )
            .await
            .map_err(|_| {
                RunError::Internal(format!(
                    "no reply to SUBSCRIBE within {}s",
                    SETUP_TIMEOUT.as_secs()
                ))
            })?;
            match read {
                Ok(0) => return Err(RunError::Closed),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(RunError::Io(err)),
            }
        };
        check_confirmation(&frame, &name).map_err(RunError::Internal)?;
    }
    Ok(subscribers)
}

/// One subscriber thread: subscribes `indexes`, reports on `ready`, then reads messages
/// until `phase` says the run is over and they have all arrived.
fn subscriber_thread(
    addr: SocketAddr,
    indexes: &[usize],
    pubsub: &PubSub,
    publishers: usize,
    ready: &mpsc::Sender<Result<(), RunError>>,
    phase: &watch::Receiver<Phase>,
) -> Result<Deliveries, RunError> {
    let deliveries = Rc::new(RefCell::new(Deliveries::new()?));
    let prepared = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|err| RunError::Internal(format!("starting a tokio runtime: {err}")))
        .and_then(|runtime| {
            let subscribers = runtime.block_on(subscribe_all(
                addr,
                indexes,
                pubsub,
                publishers,
                &deliveries,
            ))?;
            Ok((runtime, subscribers))
        });
    let (runtime, subscribers) = match prepared {
        Ok(prepared) => {
            // The receiver lives until every subscriber thread has reported.
            let _ = ready.send(Ok(()));
            prepared
        }
        Err(err) => {
            let _ = ready.send(Err(err));
            return Err(RunError::Internal("subscribing failed".to_owned()));
        }
    };
    let local = LocalSet::new();
    let panicked = local.block_on(&runtime, async {
        let mut tasks = JoinSet::new();
        for subscriber in subscribers {
            tasks.spawn_local(subscriber.run(phase.clone()));
        }
        let mut panicked = false;
        while let Some(joined) = tasks.join_next().await {
            panicked |= joined.is_err();
        }
        panicked
    });
    if panicked {
        return Err(RunError::Internal("a subscriber task failed".to_owned()));
    }
    drop(local);
    Ok(Rc::try_unwrap(deliveries)
        .map_or_else(|shared| shared.borrow().clone(), RefCell::into_inner))
}

/// The result of a `publish` run.
#[derive(Debug)]
pub struct PublishOutcome {
    /// The publishers' side: PUBLISHes, their reply latency, errors.
    pub outcome: Outcome,
    /// The subscribers' side.
    pub deliveries: Deliveries,
}

/// Runs the `publish` test of `plan` with the subscribers of `pubsub` (the plan's own), calling
/// `progress` as [`runner::run`] does.
///
/// # Errors
///
/// A subscriber could not connect or subscribe (the server refused SUBSCRIBE, say), the
/// descriptor limit is too low, or a publisher failed.
pub fn run(
    plan: &Plan,
    pubsub: &PubSub,
    progress: impl FnMut(u64, Duration),
) -> Result<PublishOutcome, RunError> {
    // The stamps' clock starts before any of them is written.
    nanos_at(Instant::now());
    raise_descriptor_limit(pubsub.subscribers, plan.clients).map_err(RunError::Internal)?;
    let threads = plan.threads.clamp(1, pubsub.subscribers.max(1));
    let (phase_tx, phase_rx) = watch::channel(Phase::Publishing);
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads);
        let mut failure = None;
        if pubsub.subscribers > 0 {
            for thread_index in 0..threads {
                let indexes: Vec<usize> = (thread_index..pubsub.subscribers)
                    .step_by(threads)
                    .collect();
                let (ready, phase) = (ready_tx.clone(), phase_rx.clone());
                let spawned = thread::Builder::new()
                    .name(format!("kvbench-sub-{thread_index}"))
                    .spawn_scoped(scope, move || {
                        subscriber_thread(plan.addr, &indexes, pubsub, plan.clients, &ready, &phase)
                    });
                match spawned {
                    Ok(handle) => handles.push(handle),
                    Err(err) => {
                        failure = Some(RunError::Internal(format!("spawning a thread: {err}")));
                        break;
                    }
                }
            }
        }
        drop(ready_tx);
        for _ in 0..handles.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    failure.get_or_insert(err);
                }
                Err(mpsc::RecvError) => break,
            }
        }
        let outcome = match failure {
            Some(err) => Err(err),
            None => runner::run(plan, progress),
        };
        phase_tx.send_replace(match outcome {
            Ok(_) => Phase::Expect(pubsub.accepted().into()),
            Err(_) => Phase::Abort,
        });
        let mut deliveries = Deliveries::new()?;
        let mut thread_failure = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(part)) => deliveries.merge(&part)?,
                Ok(Err(err)) => {
                    thread_failure.get_or_insert(err);
                }
                Err(_) => {
                    thread_failure
                        .get_or_insert(RunError::Internal("a subscriber thread panicked".into()));
                }
            }
        }
        let outcome = outcome?;
        if let Some(err) = thread_failure {
            return Err(err);
        }
        // Every subscriber thread counted what it expected; check the total independently.
        let expected = pubsub.expected_deliveries(&pubsub.accepted());
        if deliveries.expected != expected {
            return Err(RunError::Internal(format!(
                "subscribers expected {} messages, the publishers made {expected}",
                deliveries.expected
            )));
        }
        Ok(PublishOutcome {
            outcome,
            deliveries,
        })
    })
}

/// Makes sure the process may open a descriptor per subscriber and per publisher, raising
/// the soft `RLIMIT_NOFILE` up to the hard limit if needed; `Err` says how to raise it by
/// hand when that is not enough.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn raise_descriptor_limit(subscribers: usize, publishers: usize) -> Result<(), String> {
    // `rlim_t` is `u64` on Linux.
    let needed: libc::rlim_t = (subscribers as u64)
        .saturating_add(publishers as u64)
        .saturating_add(SPARE_DESCRIPTORS);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes a `rlimit` into the struct it is given, which lives on
    // this stack frame for the whole call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        // Unknown: let the connections try.
        return Ok(());
    }
    // RLIM_INFINITY is the largest value: no special case needed.
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    let how = format!(
        "{subscribers} subscribers and {publishers} publishers need {needed} open files, \
         but the limit is {}",
        limit.rlim_cur
    );
    if limit.rlim_max < needed {
        return Err(format!(
            "{how} (hard limit {}): raise it, e.g. `ulimit -n {needed}` in a root shell or \
             `LimitNOFILE=` in a systemd unit, then run kvbench again",
            limit.rlim_max
        ));
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `setrlimit` only reads the struct, which lives for the whole call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        let err = io::Error::last_os_error();
        return Err(format!(
            "{how} and raising it failed ({err}): run `ulimit -n {needed}` first"
        ));
    }
    Ok(())
}

/// Elsewhere the connections simply try (a failure names the system's error).
#[cfg(not(target_os = "linux"))]
fn raise_descriptor_limit(_subscribers: usize, _publishers: usize) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let stamp = Stamp {
            publisher: 49,
            sequence: 123_456,
            sent_nanos: 9_876_543_210,
        };
        let mut payload = vec![b'x'; STAMP_LEN + 5];
        stamp.write(&mut payload);
        assert_eq!(
            payload,
            b"0000000049:000000123456:0000009876543210xxxxx".as_slice()
        );
        assert_eq!(Stamp::parse(&payload), Some(stamp));
        assert_eq!(Stamp::parse(&payload[..STAMP_LEN]), Some(stamp));
        // Too short, a separator missing, a non-digit: not a stamp.
        assert_eq!(Stamp::parse(&payload[..STAMP_LEN - 1]), None);
        let mut bad = payload.clone();
        bad[SEQUENCE_AT - 1] = b'-';
        assert_eq!(Stamp::parse(&bad), None);
        let mut bad = payload.clone();
        bad[CLOCK_AT + 3] = b'a';
        assert_eq!(Stamp::parse(&bad), None);
        assert_eq!(Stamp::parse(b"hello"), None);
        // Writing into a short buffer does nothing.
        let mut short = *b"abc";
        stamp.write(&mut short);
        assert_eq!(&short, b"abc");
    }

    #[test]
    fn order_check_flags_messages_that_go_back() {
        let stamp = |publisher, sequence| Stamp {
            publisher,
            sequence,
            sent_nanos: 0,
        };
        let mut order = OrderCheck::new(2);
        // Sequence numbers may skip (the publisher's other channels) but never go back.
        assert_eq!(order.observe(&stamp(0, 0)), Ok(()));
        assert_eq!(order.observe(&stamp(0, 3)), Ok(()));
        assert_eq!(order.observe(&stamp(1, 0)), Ok(()));
        assert_eq!(order.observe(&stamp(0, 7)), Ok(()));
        assert_eq!(
            order.observe(&stamp(0, 5)),
            Err("publisher 0's message 5 arrived after its message 7".to_owned())
        );
        assert_eq!(
            order.observe(&stamp(1, 0)),
            Err("publisher 1's message 0 arrived after its message 0".to_owned())
        );
        assert_eq!(
            order.observe(&stamp(2, 0)),
            Err("a message stamped by publisher 2 of 2".to_owned())
        );
        assert_eq!(order.observe(&stamp(1, 1)), Ok(()));
    }

    #[test]
    fn subscribers_are_spread_over_the_channels() {
        let pubsub = PubSub::new(10, 4);
        let on: Vec<u64> = (0..4).map(|c| pubsub.subscribers_on(c)).collect();
        assert_eq!(on, [3, 3, 2, 2]);
        let mut counted = [0u64; 4];
        for subscriber in 0..10 {
            counted[pubsub.channel_of(subscriber)] += 1;
        }
        assert_eq!(counted.to_vec(), on);
        assert_eq!(pubsub.expected_deliveries(&[1, 0, 2, 5]), 3 + 4 + 10);
        // More channels than subscribers: some have none.
        let pubsub = PubSub::new(2, 3);
        assert_eq!(pubsub.subscribers_on(2), 0);
    }

    #[test]
    fn publishes_go_round_the_channels() {
        let mut requests = PublishRequests::new(5, 3, 3, 4);
        let bytes = requests.prepare(4, 77).to_vec();
        assert_eq!(requests.batch_channels(), [2, 0, 1, 2]);
        let text = String::from_utf8(bytes).expect("ASCII");
        let one = "*3\r\n$7\r\nPUBLISH\r\n$20\r\nchannel:000000000002\r\n$40\r\n\
                   0000000005:000000000000:0000000000000077\r\n";
        assert!(text.starts_with(one), "{text}");
        assert!(text.contains("channel:000000000000\r\n$40\r\n0000000005:000000000001:"));
        assert_eq!(text.matches("PUBLISH").count(), 4);
        // The next batch continues the sequence and the round; a short batch is a prefix.
        let bytes = requests.prepare(1, 78).to_vec();
        assert_eq!(requests.batch_channels(), [0]);
        assert_eq!(bytes.len(), text.len() / 4);
        assert!(bytes.ends_with(b"0000000005:000000000004:0000000000000078\r\n"));
        // -d larger than a stamp pads the payload.
        let mut requests = PublishRequests::new(0, 1, 100, 1);
        let bytes = requests.prepare(1, 1).to_vec();
        let payload_at = bytes.len() - 102;
        assert_eq!(&bytes[payload_at - 6..payload_at], b"$100\r\n");
        assert!(bytes[payload_at + STAMP_LEN..bytes.len() - 2]
            .iter()
            .all(|&b| b == b'x'));
    }

    #[test]
    fn messages_are_parsed_whole_or_not_at_all() {
        // A delivery as redis-server 7.0.15 writes it to a RESP2 subscriber.
        let prefix = message_prefix(3);
        let message = b"*3\r\n$7\r\nmessage\r\n$20\r\nchannel:000000000003\r\n$5\r\nhello\r\n";
        assert_eq!(prefix, &message[..prefix.len()]);
        for cut in 0..message.len() {
            assert_eq!(
                parse_message(&message[..cut], &prefix),
                Ok(Parsed::Incomplete),
                "{cut}"
            );
        }
        let two = [message.as_slice(), message].concat();
        assert_eq!(
            parse_message(&two, &prefix),
            Ok(Parsed::Message(b"hello".as_slice(), message.len()))
        );
        // Another channel, another push, an error, bad framing: errors, never a panic.
        let other = b"*3\r\n$7\r\nmessage\r\n$20\r\nchannel:000000000004\r\n$1\r\nx\r\n";
        assert!(parse_message(other, &prefix)
            .expect_err("another channel")
            .contains("channel:000000000004"));
        let error = b"-ERR unknown command 'SUBSCRIBE'\r\n";
        assert_eq!(
            parse_message(error, &prefix),
            Err("error on a subscribed connection: ERR unknown command 'SUBSCRIBE'".to_owned())
        );
        let bad_crlf = b"*3\r\n$7\r\nmessage\r\n$20\r\nchannel:000000000003\r\n$1\r\nxyz";
        assert!(parse_message(bad_crlf, &prefix).is_err());
        let bad_len = b"*3\r\n$7\r\nmessage\r\n$20\r\nchannel:000000000003\r\n$-5\r\n";
        assert!(parse_message(bad_len, &prefix).is_err());
        let huge = b"*3\r\n$7\r\nmessage\r\n$20\r\nchannel:000000000003\r\n$99999999999\r\n";
        assert!(parse_message(huge, &prefix).is_err());
        assert!(parse_message(b"garbage\r\n", &prefix).is_err());
    }

    #[test]
    fn subscribe_confirmations() {
        let parse = |bytes: &[u8]| {
            protocol::parse::parse(bytes, &Limits::default())
                .expect("RESP")
                .expect("whole")
                .0
        };
        let name = channel_name(0);
        // redis-server 7.0.15's reply to SUBSCRIBE channel:000000000000.
        let ok = parse(b"*3\r\n$9\r\nsubscribe\r\n$20\r\nchannel:000000000000\r\n:1\r\n");
        assert_eq!(check_confirmation(&ok, &name), Ok(()));
        let refused = parse(b"-ERR unknown command 'SUBSCRIBE', with args beginning with: \r\n");
        let text = check_confirmation(&refused, &name).expect_err("refused");
        assert!(
            text.starts_with("the server refused SUBSCRIBE (ERR unknown command"),
            "{text}"
        );
        assert!(check_confirmation(&parse(b"+OK\r\n"), &name).is_err());
        assert!(check_confirmation(&ok, &channel_name(1)).is_err());
    }

    #[test]
    fn publish_replies_are_checked() {
        assert_eq!(check_publish_reply(&Frame::Integer(3), 0, 3), (true, None));
        assert_eq!(
            check_publish_reply(&Frame::Integer(2), 1, 3),
            (
                true,
                Some("PUBLISH channel:000000000001 returned 2 receivers, expected 3".to_owned())
            )
        );
        let (accepted, error) = check_publish_reply(&Frame::Error("ERR no".into()), 0, 1);
        assert_eq!((accepted, error.as_deref()), (false, Some("ERR no")));
        assert!(!check_publish_reply(&Frame::Null, 0, 1).0);
    }
}
