//! SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, their sharded forms and PUBSUB:
//! the commands of Redis's publish/subscribe (the registry and mailboxes are
//! [`crate::pubsub`]).
//!
//! A connection's subscriptions live in its session ([`Subscriptions`]) beside its mailbox;
//! dropping them (UNSUBSCRIBE of the last, RESET, disconnection) leaves the registry. The
//! connection moves messages from the mailbox into its output after each command and while
//! it waits for requests (`connection.rs`), so a message and a reply never interleave inside
//! a frame. In RESP2 a connection with subscriptions accepts only the subscription commands,
//! PING, QUIT and RESET ([`refused_while_subscribed`]).

use std::collections::HashSet;

use bytes::Bytes;
use protocol::encode::{write_bulk, write_integer, write_null, write_push_header};
use protocol::{Argv, Version};

use super::{reply_help, CmdError, Ctx};
use crate::pubsub::{Mailbox, Namespace, PubSub};
use crate::sync::Arc;

/// A connection's subscriptions, and the connection's mailbox their messages arrive in.
pub struct Subscriptions {
    pubsub: Arc<PubSub>,
    /// Where published messages wait for this connection.
    pub mailbox: Arc<Mailbox>,
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    shard_channels: HashSet<Bytes>,
}

impl Subscriptions {
    /// Channels and patterns (the count SUBSCRIBE and PSUBSCRIBE report).
    pub fn classic_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Every subscription, sharded ones included (the RESP2 subscribed mode).
    pub fn total(&self) -> usize {
        self.classic_count() + self.shard_channels.len()
    }

    /// (channels, patterns, shard channels) for CLIENT LIST's `sub`, `psub` and `ssub`.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.channels.len(),
            self.patterns.len(),
            self.shard_channels.len(),
        )
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for channel in &self.channels {
            self.pubsub
                .unsubscribe(Namespace::Channel, channel, &self.mailbox);
        }
        for channel in &self.shard_channels {
            self.pubsub
                .unsubscribe(Namespace::Shard, channel, &self.mailbox);
        }
        for pattern in &self.patterns {
            self.pubsub.punsubscribe(pattern, &self.mailbox);
        }
    }
}

/// The session's subscriptions, made on the first subscribe.
fn subscriptions<'a>(ctx: &'a mut Ctx<'_>) -> &'a mut Subscriptions {
    let pubsub = &ctx.shared.pubsub;
    let mailbox = &ctx.session.client.info().mailbox;
    ctx.session.subscriptions.get_or_insert_with(|| {
        Box::new(Subscriptions {
            pubsub: Arc::clone(pubsub),
            mailbox: Arc::clone(mailbox),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
        })
    })
}

/// Writes one confirmation: `[kind, name, count]` as a push (an array in RESP2).
fn confirm(ctx: &mut Ctx<'_>, kind: &[u8], name: Option<&[u8]>, count: usize) {
    let version = ctx.out.version;
    let buf = &mut ctx.out.buf;
    write_push_header(buf, 3, version);
    write_bulk(buf, kind);
    match name {
        Some(name) => write_bulk(buf, name),
        None => write_null(buf, version),
    }
    write_integer(buf, i64::try_from(count).unwrap_or(i64::MAX));
}

/// Which subscription set a command works on.
#[derive(Clone, Copy)]
enum Set {
    Channels,
    Patterns,
    ShardChannels,
}

impl Set {
    fn names(self, subscriptions: &mut Subscriptions) -> &mut HashSet<Bytes> {
        match self {
            Set::Channels => &mut subscriptions.channels,
            Set::Patterns => &mut subscriptions.patterns,
            Set::ShardChannels => &mut subscriptions.shard_channels,
        }
    }

    /// The count a confirmation reports: classic subscriptions, or shard ones.
    fn count(self, subscriptions: &Subscriptions) -> usize {
        match self {
            Set::Channels | Set::Patterns => subscriptions.classic_count(),
            Set::ShardChannels => subscriptions.shard_channels.len(),
        }
    }

    fn enter(self, pubsub: &PubSub, name: &[u8], mailbox: &Arc<Mailbox>) {
        match self {
            Set::Channels => pubsub.subscribe(Namespace::Channel, name, mailbox),
            Set::ShardChannels => pubsub.subscribe(Namespace::Shard, name, mailbox),
            Set::Patterns => pubsub.psubscribe(name, mailbox),
        }
    }

    fn leave(self, pubsub: &PubSub, name: &[u8], mailbox: &Arc<Mailbox>) {
        match self {
            Set::Channels => pubsub.unsubscribe(Namespace::Channel, name, mailbox),
            Set::ShardChannels => pubsub.unsubscribe(Namespace::Shard, name, mailbox),
            Set::Patterns => pubsub.punsubscribe(name, mailbox),
        }
    }
}

fn subscribe_to(ctx: &mut Ctx<'_>, args: Argv<'_>, set: Set, kind: &[u8]) {
    for name in args.slice(1..) {
        let subscriptions = subscriptions(ctx);
        if !set.names(subscriptions).contains(name) {
            set.enter(&subscriptions.pubsub, name, &subscriptions.mailbox);
            set.names(subscriptions)
                .insert(Bytes::copy_from_slice(name));
        }
        let count = set.count(subscriptions);
        confirm(ctx, kind, Some(name), count);
    }
    show_counts(ctx);
}

/// Shows the session's subscription counts in CLIENT LIST.
fn show_counts(ctx: &Ctx<'_>) {
    let counts = ctx
        .session
        .subscriptions
        .as_deref()
        .map_or((0, 0, 0), Subscriptions::counts);
    ctx.session.client.set_subscriptions(counts);
}

fn unsubscribe_from(ctx: &mut Ctx<'_>, args: Argv<'_>, set: Set, kind: &[u8]) {
    let names: Vec<Bytes> = if args.len() > 1 {
        args.slice(1..).iter().map(Bytes::copy_from_slice).collect()
    } else {
        match ctx.session.subscriptions.as_deref_mut() {
            Some(subscriptions) => set.names(subscriptions).iter().cloned().collect(),
            None => Vec::new(),
        }
    };
    if names.is_empty() {
        let count = ctx
            .session
            .subscriptions
            .as_deref()
            .map_or(0, |subscriptions| set.count(subscriptions));
        confirm(ctx, kind, None, count);
    }
    for name in names {
        let count = match ctx.session.subscriptions.as_deref_mut() {
            Some(subscriptions) => {
                if set.names(subscriptions).remove(&name) {
                    set.leave(&subscriptions.pubsub, &name, &subscriptions.mailbox);
                }
                set.count(subscriptions)
            }
            None => 0,
        };
        confirm(ctx, kind, Some(&name), count);
    }
    // The subscriptions go with the last one, and any message still in the mailbox is moved
    // to the output first (it was sent before the confirmation).
    if ctx
        .session
        .subscriptions
        .as_deref()
        .is_some_and(|subscriptions| subscriptions.total() == 0)
    {
        if let Some(subscriptions) = ctx.session.subscriptions.take() {
            let _ = subscriptions.mailbox.drain_into(&mut ctx.out.buf);
        }
    }
    show_counts(ctx);
}

/// SUBSCRIBE channel [channel ...]
pub fn subscribe(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    subscribe_to(ctx, args, Set::Channels, b"subscribe");
    Ok(())
}

/// UNSUBSCRIBE [channel [channel ...]]
pub fn unsubscribe(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    unsubscribe_from(ctx, args, Set::Channels, b"unsubscribe");
    Ok(())
}

/// PSUBSCRIBE pattern [pattern ...]
pub fn psubscribe(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    subscribe_to(ctx, args, Set::Patterns, b"psubscribe");
    Ok(())
}

/// PUNSUBSCRIBE [pattern [pattern ...]]
pub fn punsubscribe(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    unsubscribe_from(ctx, args, Set::Patterns, b"punsubscribe");
    Ok(())
}

/// SSUBSCRIBE shardchannel [shardchannel ...]
pub fn ssubscribe(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    subscribe_to(ctx, args, Set::ShardChannels, b"ssubscribe");
    Ok(())
}

/// SUNSUBSCRIBE [shardchannel [shardchannel ...]]
pub fn sunsubscribe(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    unsubscribe_from(ctx, args, Set::ShardChannels, b"sunsubscribe");
    Ok(())
}

fn publish_to(ctx: &mut Ctx<'_>, args: Argv<'_>, namespace: Namespace) {
    let shared = ctx.shared;
    let receivers = shared
        .pubsub
        .publish(namespace, &args[1], &args[2], ctx.now_ms, |client_id| {
            // A subscriber past its output limit is disconnected, as CLIENT KILL would.
            shared.clients.kill(0, |client| client.id == client_id);
        });
    // A subscriber publishing to itself sees the message before the reply, as in Redis.
    if ctx.session.subscriptions.is_some() {
        let _ = ctx
            .session
            .client
            .info()
            .mailbox
            .drain_into(&mut ctx.out.buf);
    }
    ctx.out.int(i64::try_from(receivers).unwrap_or(i64::MAX));
}

/// PUBLISH channel message: the number of deliveries.
pub fn publish(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    publish_to(ctx, args, Namespace::Channel);
    Ok(())
}

/// SPUBLISH shardchannel message
pub fn spublish(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    publish_to(ctx, args, Namespace::Shard);
    Ok(())
}

fn list_channels(ctx: &mut Ctx<'_>, args: Argv<'_>, namespace: Namespace) {
    let channels = ctx.shared.pubsub.channels(namespace, args.get(2));
    ctx.out.array(channels.len());
    for channel in &channels {
        ctx.out.bulk(channel);
    }
}

fn count_subscribers(ctx: &mut Ctx<'_>, args: Argv<'_>, namespace: Namespace) {
    let channels = args.slice(2..);
    // A flat array in both protocols, as Redis replies.
    ctx.out.array(channels.len() * 2);
    for channel in channels {
        ctx.out.bulk(channel);
        let count = ctx.shared.pubsub.subscribers(namespace, channel);
        ctx.out.int(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

/// Arity of PUBSUB CHANNELS and SHARDCHANNELS: at most one pattern.
fn at_most_one_pattern(args: Argv<'_>) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(CmdError::owned(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            super::printable(&args[1], 128)
        )));
    }
    Ok(())
}

/// PUBSUB CHANNELS [pattern]
pub fn pubsub_channels(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    at_most_one_pattern(args)?;
    list_channels(ctx, args, Namespace::Channel);
    Ok(())
}

/// PUBSUB SHARDCHANNELS [pattern]
pub fn pubsub_shardchannels(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    at_most_one_pattern(args)?;
    list_channels(ctx, args, Namespace::Shard);
    Ok(())
}

/// PUBSUB NUMSUB [channel ...]
pub fn pubsub_numsub(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    count_subscribers(ctx, args, Namespace::Channel);
    Ok(())
}

/// PUBSUB SHARDNUMSUB [shardchannel ...]
pub fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    count_subscribers(ctx, args, Namespace::Shard);
    Ok(())
}

/// PUBSUB NUMPAT
pub fn pubsub_numpat(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let count = ctx.shared.pubsub.pattern_count();
    ctx.out.int(i64::try_from(count).unwrap_or(i64::MAX));
    Ok(())
}

/// PUBSUB HELP
pub fn pubsub_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    reply_help(
        ctx,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    The channels with at least one subscriber (those matching the pattern).",
            "NUMPAT",
            "    The number of distinct patterns clients are subscribed to.",
            "NUMSUB [<channel> ...]",
            "    For each channel, its number of subscribers.",
            "SHARDCHANNELS [<pattern>]",
            "    The shard channels with at least one subscriber (those matching the pattern).",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    For each shard channel, its number of subscribers.",
        ],
    );
    Ok(())
}

/// The error a RESP2 connection with subscriptions gets for `name` if it is not one of the
/// commands allowed there (None if it is).
pub fn refused_while_subscribed(name: &str) -> Option<String> {
    const ALLOWED: [&str; 9] = [
        "subscribe",
        "unsubscribe",
        "psubscribe",
        "punsubscribe",
        "ssubscribe",
        "sunsubscribe",
        "ping",
        "quit",
        "reset",
    ];
    (!ALLOWED.contains(&name)).then(|| {
        format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
             RESET are allowed in this context"
        )
    })
}

/// PING of a RESP2 connection with subscriptions: `["pong", message or ""]`. Returns
/// whether it ran (for the command count).
pub fn subscribed_ping(ctx: &mut Ctx<'_>, args: Argv<'_>) -> bool {
    if args.len() > 2 {
        ctx.out
            .error("ERR wrong number of arguments for 'ping' command");
        return false;
    }
    let buf = &mut ctx.out.buf;
    write_push_header(buf, 2, Version::Resp2);
    write_bulk(buf, b"pong");
    write_bulk(buf, args.get(1).unwrap_or_default());
    true
}
