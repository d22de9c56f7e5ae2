//! Publish/subscribe: who listens to which channel, and the mailboxes messages wait in until
//! their subscriber's connection writes them.
//!
//! Three namespaces, as in Redis: channels (SUBSCRIBE/PUBLISH), patterns over those channels
//! (PSUBSCRIBE, glob syntax shared with KEYS), and shard channels (SSUBSCRIBE/SPUBLISH, a
//! separate set of names). A subscribed connection owns one [`Mailbox`]; the registry maps
//! each channel to the mailboxes of its subscribers.
//!
//! A publisher delivers by appending the encoded message to each subscriber's mailbox (under
//! that mailbox's own lock, in the subscriber's protocol) and raising its signal; the
//! subscriber's connection moves what is pending into its output and writes it. So a
//! publisher never waits for a subscriber's socket, and the messages of one publisher reach
//! every subscriber in publish order (one append after the other, while the channel's
//! registry shard is locked, so a concurrent SUBSCRIBE is either before or after a message).
//!
//! Lock order: a registry shard (or the pattern list), then mailboxes. A mailbox's lock is
//! never held while taking a registry lock.
//!
//! Slow consumers: a mailbox holding more than the `client-output-buffer-limit pubsub` hard
//! limit, or more than the soft limit for longer than its seconds, is closed: it accepts no
//! more messages and its connection is disconnected (see [`Delivery::Overflowed`]).

use bytes::{Bytes, BytesMut};
use protocol::encode::{write_bulk, write_push_header};
use protocol::Version;

use crate::doorbell::Doorbell;
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Registry shards per namespace: publishers and subscribers on different channels rarely
/// meet on one lock.
const SHARDS: usize = 16;

/// Which set of names a subscription is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// SSUBSCRIBE / SPUBLISH.
    Shard,
}

/// `client-output-buffer-limit pubsub <hard> <soft> <seconds>`, in bytes and seconds (0 for
/// no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Disconnect at once past this many pending bytes.
    pub hard: u64,
    /// Disconnect when pending bytes stay past this for `soft_seconds`.
    pub soft: u64,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: u64,
}

impl OutputLimit {
    /// Redis's default for subscribers: 32 MiB hard, 8 MiB for 60 seconds.
    pub const DEFAULT: OutputLimit = OutputLimit {
        hard: 32 * 1024 * 1024,
        soft: 8 * 1024 * 1024,
        soft_seconds: 60,
    };
}

/// `client-output-buffer-limit` for the three client classes. `pubsub` is enforced by the
/// mailboxes, `normal`'s hard limit by the connection loop; `replica` is kept for CONFIG GET
/// until replicas exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Ordinary clients (Redis default: no limit).
    pub normal: OutputLimit,
    /// Replicas (Redis default: 256 MiB, 64 MiB for 60 s).
    pub replica: OutputLimit,
    /// Subscribers.
    pub pubsub: OutputLimit,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            normal: OutputLimit {
                hard: 0,
                soft: 0,
                soft_seconds: 0,
            },
            replica: OutputLimit {
                hard: 256 * 1024 * 1024,
                soft: 64 * 1024 * 1024,
                soft_seconds: 60,
            },
            pubsub: OutputLimit::DEFAULT,
        }
    }
}

impl OutputLimits {
    /// CONFIG GET's text: `normal 0 0 0 slave 268435456 67108864 60 pubsub ...`.
    pub fn to_text(&self) -> String {
        let class = |name: &str, l: &OutputLimit| {
            format!("{name} {} {} {}", l.hard, l.soft, l.soft_seconds)
        };
        format!(
            "{} {} {}",
            class("normal", &self.normal),
            class("slave", &self.replica),
            class("pubsub", &self.pubsub)
        )
    }

    /// Applies CONFIG SET's `class hard soft seconds [class hard soft seconds ...]` (sizes
    /// may carry units: `32mb`); the error texts are Redis's.
    pub fn parse_update(&self, text: &str) -> Result<OutputLimits, String> {
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".to_owned());
        }
        let mut updated = *self;
        for group in words.chunks_exact(4) {
            let class = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut updated.normal,
                "slave" | "replica" => &mut updated.replica,
                "pubsub" => &mut updated.pubsub,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".to_owned(),
                    )
                }
            };
            let bad = || {
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                    .to_owned()
            };
            let hard = crate::config::parse_memory(group[1]).map_err(|_| bad())?;
            let soft = crate::config::parse_memory(group[2]).map_err(|_| bad())?;
            let soft_seconds: u64 = group[3].parse().map_err(|_| bad())?;
            *class = OutputLimit {
                hard,
                soft,
                soft_seconds,
            };
        }
        Ok(updated)
    }
}

thread_local! {
    /// Set when this thread's deliveries woke a connection (see [`take_woke_a_connection`]).
    static WOKE_A_CONNECTION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True if deliveries made on this thread since the last call woke a connection (its
/// mailbox was empty). The connection whose command made them then lets the woken ones write
/// before it writes its own replies, as Redis writes replies and messages in one pass.
pub fn take_woke_a_connection() -> bool {
    WOKE_A_CONNECTION.with(|woke| woke.replace(false))
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The message waits in the mailbox.
    Queued,
    /// The mailbox is closed (now, or earlier) for exceeding its output limit: the message is
    /// dropped, and its connection must be disconnected (`first` the first time).
    Overflowed { first: bool },
}

/// What a subscribed connection has pending.
#[derive(Debug, Default)]
struct Pending {
    /// Encoded push frames, oldest first.
    bytes: BytesMut,
    /// How many frames `bytes` holds.
    messages: u32,
    /// Closed for exceeding the output limit.
    overflowed: bool,
    /// Since when (unix ms) `bytes` has been over the soft limit; 0 while it is not. (Plain
    /// integers: every connection has a mailbox, and at 128 bytes it fits a smaller
    /// allocation class.)
    over_soft_since_ms: u64,
}

/// The messages waiting for one subscribed connection.
#[derive(Debug)]
pub struct Mailbox {
    /// The connection's client id (CLIENT LIST, disconnection of slow consumers).
    client_id: u64,
    /// The connection speaks RESP3: messages are push frames (`>`), else arrays.
    resp3: AtomicBool,
    pending: Mutex<Pending>,
    /// Raised when something was appended to an empty mailbox (or it overflowed).
    pub signal: Doorbell,
}

impl Mailbox {
    /// An empty mailbox for client `client_id`.
    pub fn new(client_id: u64, version: Version) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            client_id,
            resp3: AtomicBool::new(version == Version::Resp3),
            pending: Mutex::new(Pending::default()),
            signal: Doorbell::new(),
        })
    }

    /// The subscriber's client id.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Follows the connection's protocol (HELLO): later messages are encoded for it.
    pub fn set_version(&self, version: Version) {
        self.resp3
            .store(version == Version::Resp3, Ordering::Relaxed);
    }

    /// The protocol messages are encoded in for this subscriber.
    pub fn version(&self) -> Version {
        if self.resp3.load(Ordering::Relaxed) {
            Version::Resp3
        } else {
            Version::Resp2
        }
    }

    /// Appends one message, a push frame of `parts` (its kind first: `message`, `pmessage`,
    /// `smessage`), unless the mailbox is or gets over `limit`.
    pub fn deliver(&self, parts: &[&[u8]], limit: OutputLimit, now_ms: u64) -> Delivery {
        let frame = encode_message(parts, self.version());
        self.deliver_encoded(&frame, limit, now_ms)
    }

    /// [`deliver`](Self::deliver) of a message already encoded in this subscriber's protocol
    /// (a publisher encodes once for all the subscribers of a channel).
    pub fn deliver_encoded(&self, frame: &[u8], limit: OutputLimit, now_ms: u64) -> Delivery {
        let mut pending = self.pending.lock();
        if pending.overflowed {
            return Delivery::Overflowed { first: false };
        }
        let was_empty = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(frame);
        pending.messages = pending.messages.saturating_add(1);
        let size = pending.bytes.len() as u64;
        let over_hard = limit.hard > 0 && size > limit.hard;
        let over_soft = limit.soft > 0 && size > limit.soft;
        if pending.over_soft_since_ms == 0 {
            pending.over_soft_since_ms = now_ms.max(1);
        }
        let since = pending.over_soft_since_ms;
        if !over_soft {
            pending.over_soft_since_ms = 0;
        }
        let soft_expired =
            over_soft && now_ms.saturating_sub(since) >= limit.soft_seconds.saturating_mul(1000);
        if over_hard || soft_expired {
            // Nothing more is kept for a connection that is about to be dropped.
            pending.overflowed = true;
            pending.bytes = BytesMut::new();
            drop(pending);
            self.signal.ring();
            return Delivery::Overflowed { first: true };
        }
        drop(pending);
        if was_empty {
            self.signal.ring();
            WOKE_A_CONNECTION.with(|woke| woke.set(true));
        }
        Delivery::Queued
    }

    /// Moves every pending message to the end of `out`. Returns false if the mailbox
    /// overflowed: the connection must close instead.
    pub fn drain_into(&self, out: &mut BytesMut) -> bool {
        self.drain_counted(out).is_some()
    }

    /// [`drain_into`](Self::drain_into) that says how many messages it moved (`None`: the
    /// mailbox overflowed).
    pub fn drain_counted(&self, out: &mut BytesMut) -> Option<usize> {
        let mut pending = self.pending.lock();
        if pending.overflowed {
            return None;
        }
        let moved = std::mem::take(&mut pending.messages) as usize;
        if !pending.bytes.is_empty() {
            if out.is_empty() {
                std::mem::swap(out, &mut pending.bytes);
            } else {
                out.extend_from_slice(&pending.bytes);
                pending.bytes.clear();
            }
            pending.over_soft_since_ms = 0;
        }
        Some(moved)
    }

    /// Bytes waiting (CLIENT LIST `omem`-like figures, tests).
    pub fn pending_bytes(&self) -> usize {
        self.pending.lock().bytes.len()
    }
}

/// One shard of a namespace: channel name -> its subscribers' mailboxes.
type ChannelShard = Mutex<std::collections::HashMap<Bytes, Vec<Arc<Mailbox>>>>;

/// Every subscription of the server.
pub struct PubSub {
    channels: Vec<ChannelShard>,
    shard_channels: Vec<ChannelShard>,
    /// Pattern subscriptions: (pattern, subscriber), one entry per client and pattern.
    patterns: Mutex<Vec<(Bytes, Arc<Mailbox>)>>,
    /// `patterns.len()`, read without the lock: PUBLISH skips the list while it is 0.
    pattern_subscriptions: AtomicUsize,
    /// Every class's `client-output-buffer-limit` (the `pubsub` one also below, read
    /// without a lock on every delivery).
    all_limits: Mutex<OutputLimits>,
    /// The subscribers' output limit (`client-output-buffer-limit pubsub`).
    limit_hard: AtomicU64,
    limit_soft: AtomicU64,
    limit_soft_seconds: AtomicU64,
    /// `client-output-buffer-limit normal`'s hard limit (0: none), read once per batch by
    /// every connection.
    normal_hard: AtomicU64,
}

impl Default for PubSub {
    fn default() -> Self {
        PubSub::new()
    }
}

impl PubSub {
    /// No subscriptions; Redis's default output limit.
    pub fn new() -> PubSub {
        let shards = || (0..SHARDS).map(|_| Mutex::default()).collect();
        PubSub {
            channels: shards(),
            shard_channels: shards(),
            patterns: Mutex::new(Vec::new()),
            pattern_subscriptions: AtomicUsize::new(0),
            all_limits: Mutex::new(OutputLimits::default()),
            limit_hard: AtomicU64::new(OutputLimit::DEFAULT.hard),
            limit_soft: AtomicU64::new(OutputLimit::DEFAULT.soft),
            limit_soft_seconds: AtomicU64::new(OutputLimit::DEFAULT.soft_seconds),
            normal_hard: AtomicU64::new(0),
        }
    }

    /// The subscribers' output limit now.
    pub fn output_limit(&self) -> OutputLimit {
        OutputLimit {
            hard: self.limit_hard.load(Ordering::Relaxed),
            soft: self.limit_soft.load(Ordering::Relaxed),
            soft_seconds: self.limit_soft_seconds.load(Ordering::Relaxed),
        }
    }

    /// Every class's output limit (CONFIG GET client-output-buffer-limit).
    pub fn output_limits(&self) -> OutputLimits {
        *self.all_limits.lock()
    }

    /// Sets every class's output limit (CONFIG SET client-output-buffer-limit).
    pub fn set_output_limits(&self, limits: OutputLimits) {
        let mut all = self.all_limits.lock();
        *all = limits;
        self.set_output_limit(limits.pubsub);
        self.normal_hard
            .store(limits.normal.hard, Ordering::Relaxed);
    }

    /// Most bytes of replies an ordinary client may have waiting (0: no bound).
    #[inline]
    pub fn normal_output_hard(&self) -> u64 {
        self.normal_hard.load(Ordering::Relaxed)
    }

    /// Sets the subscribers' output limit.
    pub fn set_output_limit(&self, limit: OutputLimit) {
        self.limit_hard.store(limit.hard, Ordering::Relaxed);
        self.limit_soft.store(limit.soft, Ordering::Relaxed);
        self.limit_soft_seconds
            .store(limit.soft_seconds, Ordering::Relaxed);
    }

    fn namespace(&self, namespace: Namespace) -> &[ChannelShard] {
        match namespace {
            Namespace::Channel => &self.channels,
            Namespace::Shard => &self.shard_channels,
        }
    }

    fn shard_of<'a>(&'a self, namespace: Namespace, channel: &[u8]) -> &'a ChannelShard {
        let shards = self.namespace(namespace);
        &shards[(fnv1a(channel) as usize) % shards.len()]
    }

    /// Adds `mailbox` to `channel`'s subscribers (the caller's own set of subscriptions makes
    /// sure it is not there yet).
    pub fn subscribe(&self, namespace: Namespace, channel: &[u8], mailbox: &Arc<Mailbox>) {
        let mut shard = self.shard_of(namespace, channel).lock();
        shard
            .entry(Bytes::copy_from_slice(channel))
            .or_default()
            .push(Arc::clone(mailbox));
    }

    /// Removes `mailbox` from `channel`'s subscribers; a channel without subscribers goes.
    pub fn unsubscribe(&self, namespace: Namespace, channel: &[u8], mailbox: &Arc<Mailbox>) {
        let mut shard = self.shard_of(namespace, channel).lock();
        if let Some(subscribers) = shard.get_mut(channel) {
            subscribers.retain(|other| !Arc::ptr_eq(other, mailbox));
            if subscribers.is_empty() {
                shard.remove(channel);
            }
        }
    }

    /// Adds a pattern subscription.
    pub fn psubscribe(&self, pattern: &[u8], mailbox: &Arc<Mailbox>) {
        let mut patterns = self.patterns.lock();
        patterns.push((Bytes::copy_from_slice(pattern), Arc::clone(mailbox)));
        self.pattern_subscriptions
            .store(patterns.len(), Ordering::Release);
    }

    /// Removes a pattern subscription.
    pub fn punsubscribe(&self, pattern: &[u8], mailbox: &Arc<Mailbox>) {
        let mut patterns = self.patterns.lock();
        patterns.retain(|(p, m)| !(Arc::ptr_eq(m, mailbox) && &p[..] == pattern));
        self.pattern_subscriptions
            .store(patterns.len(), Ordering::Release);
    }

    /// Delivers `message` to the subscribers of `channel` (and, for channels, of every
    /// matching pattern). Returns how many deliveries were made, as PUBLISH counts them (a
    /// client subscribed to the channel and to two matching patterns counts three times),
    /// and calls `overflowed` with the client id of each subscriber that just went over its
    /// output limit.
    pub fn publish(
        &self,
        namespace: Namespace,
        channel: &[u8],
        message: &[u8],
        now_ms: u64,
        mut overflowed: impl FnMut(u64),
    ) -> usize {
        let limit = self.output_limit();
        let mut receivers = 0;
        let kind: &[u8] = match namespace {
            Namespace::Channel => b"message",
            Namespace::Shard => b"smessage",
        };
        {
            let shard = self.shard_of(namespace, channel).lock();
            if let Some(subscribers) = shard.get(channel) {
                // Encoded once per protocol, however many subscribers receive it.
                let mut frames: [Option<BytesMut>; 2] = [None, None];
                for mailbox in subscribers {
                    let version = mailbox.version();
                    let frame = frames[usize::from(version == Version::Resp3)]
                        .get_or_insert_with(|| encode_message(&[kind, channel, message], version));
                    receivers += 1;
                    if let Delivery::Overflowed { first: true } =
                        mailbox.deliver_encoded(frame, limit, now_ms)
                    {
                        overflowed(mailbox.client_id());
                    }
                }
            }
        }
        if namespace == Namespace::Channel && self.pattern_subscriptions.load(Ordering::Acquire) > 0
        {
            let patterns = self.patterns.lock();
            for (pattern, mailbox) in patterns.iter() {
                if crate::glob::glob_match(pattern, channel) {
                    receivers += 1;
                    let parts: [&[u8]; 4] = [b"pmessage", pattern, channel, message];
                    if let Delivery::Overflowed { first: true } =
                        mailbox.deliver(&parts, limit, now_ms)
                    {
                        overflowed(mailbox.client_id());
                    }
                }
            }
        }
        receivers
    }

    /// The channels with at least one subscriber, those matching `pattern` if given
    /// (PUBSUB CHANNELS, SHARDCHANNELS).
    pub fn channels(&self, namespace: Namespace, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut out = Vec::new();
        for shard in self.namespace(namespace) {
            let shard = shard.lock();
            out.extend(
                shard
                    .keys()
                    .filter(|name| pattern.is_none_or(|p| crate::glob::glob_match(p, name)))
                    .cloned(),
            );
        }
        out
    }

    /// Subscribers of `channel` (PUBSUB NUMSUB, SHARDNUMSUB).
    pub fn subscribers(&self, namespace: Namespace, channel: &[u8]) -> usize {
        self.shard_of(namespace, channel)
            .lock()
            .get(channel)
            .map_or(0, Vec::len)
    }

    /// Distinct patterns subscribed to by any client (PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        let patterns = self.patterns.lock();
        let mut distinct: Vec<&[u8]> = patterns.iter().map(|(p, _)| &p[..]).collect();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.len()
    }
}

/// A message as a push frame (an array in RESP2) of bulk strings.
fn encode_message(parts: &[&[u8]], version: Version) -> BytesMut {
    let size = parts.iter().map(|part| part.len() + 16).sum::<usize>() + 8;
    let mut frame = BytesMut::with_capacity(size);
    write_push_header(&mut frame, parts.len(), version);
    for part in parts {
        write_bulk(&mut frame, part);
    }
    frame
}

/// FNV-1a: picks a channel's registry shard (no need for a keyed hash: a client choosing
/// channel names can at worst put them on one of 16 locks).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    fn drained(mailbox: &Mailbox) -> Vec<u8> {
        let mut out = BytesMut::new();
        assert!(mailbox.drain_into(&mut out));
        out.to_vec()
    }

    #[test]
    fn drains_count_the_messages_they_move() {
        let mailbox = Mailbox::new(1, Version::Resp2);
        let mut out = BytesMut::new();
        assert_eq!(mailbox.drain_counted(&mut out), Some(0));
        for _ in 0..3 {
            mailbox.deliver(&[b"message", b"c", b"m"], OutputLimit::DEFAULT, 0);
        }
        assert_eq!(mailbox.drain_counted(&mut out), Some(3));
        assert_eq!(mailbox.drain_counted(&mut out), Some(0));
        assert_eq!(
            out.len(),
            3 * encode_message(&[b"message", b"c", b"m"], Version::Resp2).len()
        );
    }

    #[test]
    fn messages_reach_channel_and_pattern_subscribers_in_order() {
        let pubsub = PubSub::new();
        let a = Mailbox::new(1, Version::Resp2);
        let b = Mailbox::new(2, Version::Resp3);
        pubsub.subscribe(Namespace::Channel, b"news", &a);
        pubsub.psubscribe(b"n*", &a);
        pubsub.psubscribe(b"n*", &b);
        let mut overflowed = Vec::new();
        assert_eq!(
            pubsub.publish(Namespace::Channel, b"news", b"m1", 0, |id| overflowed
                .push(id)),
            3
        );
        assert_eq!(
            pubsub.publish(Namespace::Channel, b"news", b"m2", 0, |id| overflowed
                .push(id)),
            3
        );
        assert!(overflowed.is_empty());
        assert_eq!(
            drained(&a),
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nm1\r\n\
              *4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nm1\r\n\
              *3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nm2\r\n\
              *4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nm2\r\n"
        );
        assert_eq!(
            drained(&b),
            b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nm1\r\n\
              >4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nm2\r\n"
        );
        // Shard channels are another namespace.
        assert_eq!(
            pubsub.publish(Namespace::Shard, b"news", b"m", 0, |_| {}),
            0
        );
        pubsub.unsubscribe(Namespace::Channel, b"news", &a);
        pubsub.punsubscribe(b"n*", &a);
        assert_eq!(
            pubsub.publish(Namespace::Channel, b"news", b"m3", 0, |_| {}),
            1
        );
        assert!(pubsub.channels(Namespace::Channel, None).is_empty());
        assert_eq!(pubsub.pattern_count(), 1);
    }

    #[test]
    fn a_subscriber_over_its_limit_is_closed_once() {
        let pubsub = PubSub::new();
        pubsub.set_output_limit(OutputLimit {
            hard: 1000,
            soft: 50,
            soft_seconds: 10,
        });
        let slow = Mailbox::new(7, Version::Resp2);
        pubsub.subscribe(Namespace::Channel, b"c", &slow);
        let mut overflowed = Vec::new();
        // 31 bytes a message: over the soft limit from the second (at 1 ms).
        for now in 0..3 {
            pubsub.publish(Namespace::Channel, b"c", b"x", now, |id| {
                overflowed.push(id)
            });
        }
        pubsub.publish(Namespace::Channel, b"c", b"x", 10_000, |id| {
            overflowed.push(id)
        });
        assert!(
            overflowed.is_empty(),
            "over the soft limit for less than 10 s"
        );
        pubsub.publish(Namespace::Channel, b"c", b"x", 10_001, |id| {
            overflowed.push(id)
        });
        assert_eq!(overflowed, [7]);
        pubsub.publish(Namespace::Channel, b"c", b"x", 10_002, |id| {
            overflowed.push(id)
        });
        assert_eq!(overflowed, [7], "reported once");
        assert!(!slow.drain_into(&mut BytesMut::new()));
        assert_eq!(slow.pending_bytes(), 0, "nothing kept for a closed mailbox");

        let fast = Mailbox::new(8, Version::Resp2);
        pubsub.subscribe(Namespace::Channel, b"d", &fast);
        let mut overflowed = Vec::new();
        pubsub.publish(Namespace::Channel, b"d", &[b'x'; 2000], 0, |id| {
            overflowed.push(id)
        });
        assert_eq!(overflowed, [8], "past the hard limit at once");
    }
}
