//! Keyspace notifications: Pub/Sub messages about changes to keys, as Redis sends them.
//!
//! `notify-keyspace-events` (flag and `CONFIG SET`) holds which classes of events are sent
//! and on which channels: `K` for `__keyspace@<db>__:<key>` (message: the event name), `E`
//! for `__keyevent@<db>__:<event>` (message: the key). Off by default; the check every write
//! makes is then one relaxed atomic load ([`Notifications::wants`]).

use crate::clients::Registry;
use crate::pubsub::{Namespace, PubSub};
use crate::store::KeyEvents;
use crate::sync::{Arc, AtomicU32, Ordering};

/// `K`: events on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: events on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: commands on keys of any type (DEL, EXPIRE, RENAME...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: strings.
pub const STRING: u32 = 1 << 3;
/// `l`: lists.
pub const LIST: u32 = 1 << 4;
/// `s`: sets.
pub const SET: u32 = 1 << 5;
/// `h`: hashes.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted sets.
pub const ZSET: u32 = 1 << 7;
/// `x`: keys removed by expiry.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: keys evicted for memory.
pub const EVICTED: u32 = 1 << 9;
/// `t`: streams.
pub const STREAM: u32 = 1 << 10;
/// `m`: lookups of missing keys.
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events.
pub const MODULE: u32 = 1 << 12;
/// `n`: new keys.
pub const NEW: u32 = 1 << 13;
/// `A`: every class above but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Class letters in the order CONFIG GET writes them (after `A` or the classes: K, E, m).
const CLASS_LETTERS: [(char, u32); 11] = [
    ('g', GENERIC),
    ('$', STRING),
    ('l', LIST),
    ('s', SET),
    ('h', HASH),
    ('z', ZSET),
    ('x', EXPIRED),
    ('e', EVICTED),
    ('t', STREAM),
    ('d', MODULE),
    ('n', NEW),
];

/// The error CONFIG SET gives for a letter that is no class.
pub const INVALID_CLASS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// Parses a `notify-keyspace-events` value (any order, repeats allowed).
pub fn parse(text: &str) -> Result<u32, &'static str> {
    let mut flags = 0;
    for letter in text.chars() {
        flags |= match letter {
            'A' => ALL,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            'm' => KEY_MISS,
            other => CLASS_LETTERS
                .iter()
                .find(|(c, _)| *c == other)
                .map(|(_, flag)| *flag)
                .ok_or(INVALID_CLASS)?,
        };
    }
    Ok(flags)
}

/// The value as CONFIG GET shows it: `A` or the classes, then `K`, `E`, `m`.
pub fn to_text(flags: u32) -> String {
    let mut text = String::new();
    if flags & ALL == ALL {
        text.push('A');
    } else {
        text.extend(
            CLASS_LETTERS
                .iter()
                .filter(|(_, flag)| flags & flag != 0)
                .map(|(c, _)| *c),
        );
    }
    for (letter, flag) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS)] {
        if flags & flag != 0 {
            text.push(letter);
        }
    }
    text
}

/// The server's `notify-keyspace-events`.
#[derive(Debug, Default)]
pub struct Notifications {
    flags: AtomicU32,
}

impl Notifications {
    /// The current flags.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Replaces the flags (CONFIG SET).
    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// Which channels an event of `class` goes to now: `KEYSPACE`, `KEYEVENT`, both, or 0
    /// (the common case, one load: no notification wanted).
    #[inline]
    pub fn wants(&self, class: u32) -> u32 {
        let flags = self.flags();
        if flags & class == 0 {
            return 0;
        }
        flags & (KEYSPACE | KEYEVENT)
    }
}

/// Publishes `event` about `key` on the `channels` asked for (`KEYSPACE`, `KEYEVENT`),
/// keyspace first, as Redis does. A subscriber pushed past its output limit is
/// disconnected, as after PUBLISH.
pub fn publish(
    pubsub: &PubSub,
    clients: &Registry,
    channels: u32,
    event: &str,
    db: usize,
    key: &[u8],
    now_ms: u64,
) {
    let disconnect = |client_id: u64| {
        clients.kill(0, |client| client.id == client_id);
    };
    if channels & KEYSPACE != 0 {
        let channel = keyspace_channel(db, key);
        pubsub.publish(
            Namespace::Channel,
            &channel,
            event.as_bytes(),
            now_ms,
            disconnect,
        );
    }
    if channels & KEYEVENT != 0 {
        let channel = keyevent_channel(db, event);
        pubsub.publish(Namespace::Channel, &channel, key, now_ms, disconnect);
    }
}

/// Publishes the events the store reports ([`KeyEvents`]): `expired` (keys removed by lazy or
/// active expiry), `new` (keys created) and `keymiss` (reads that found nothing).
pub struct StoreEvents {
    /// The server's `notify-keyspace-events`.
    pub notifications: std::sync::Arc<Notifications>,
    /// Where the events go.
    pub pubsub: Arc<PubSub>,
    /// For disconnecting subscribers past their output limit.
    pub clients: Arc<Registry>,
}

impl StoreEvents {
    /// Publishes `event` of `class` about `key`, if that class is on (one relaxed load if not).
    #[inline]
    fn event(&self, class: u32, event: &str, db: usize, key: &[u8]) {
        let channels = self.notifications.wants(class);
        if channels != 0 {
            publish(
                &self.pubsub,
                &self.clients,
                channels,
                event,
                db,
                key,
                crate::clock::unix_ms(),
            );
        }
    }
}

impl KeyEvents for StoreEvents {
    fn expired(&self, db: usize, key: &[u8]) {
        self.event(EXPIRED, "expired", db, key);
    }

    fn created(&self, db: usize, key: &[u8]) {
        self.event(NEW, "new", db, key);
    }

    fn missed(&self, db: usize, key: &[u8]) {
        self.event(KEY_MISS, "keymiss", db, key);
    }
}

/// The channel of a keyspace event: `__keyspace@<db>__:<key>`.
pub fn keyspace_channel(db: usize, key: &[u8]) -> Vec<u8> {
    let mut channel = format!("__keyspace@{db}__:").into_bytes();
    channel.extend_from_slice(key);
    channel
}

/// The channel of a key event: `__keyevent@<db>__:<event>`.
pub fn keyevent_channel(db: usize, event: &str) -> Vec<u8> {
    format!("__keyevent@{db}__:{event}").into_bytes()
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn flags_read_and_print_as_redis() {
        // Inputs and CONFIG GET outputs of redis-server 7.0.15.
        for (input, shown) in [
            ("KEA", "AKE"),
            ("E$", "$E"),
            ("Kg$lshzxe", "g$lshzxeK"),
            ("KEm", "KEm"),
            ("td", "td"),
            ("g$lshzxetd", "A"),
            ("Am", "Am"),
            ("nmEK", "nKEm"),
            ("Kn", "nK"),
            ("An", "A"),
            ("xEg", "gxE"),
            ("", ""),
        ] {
            assert_eq!(to_text(parse(input).expect(input)), shown, "{input}");
        }
        assert_eq!(parse("Q"), Err(INVALID_CLASS));
        let notifications = Notifications::default();
        assert_eq!(notifications.wants(STRING), 0);
        notifications.set_flags(parse("$K").unwrap_or(0));
        assert_eq!(notifications.wants(STRING), KEYSPACE);
        assert_eq!(notifications.wants(GENERIC), 0);
    }
}
