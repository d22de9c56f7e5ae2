//! WATCH: which clients watch which keys of a shard, and the flag each client checks at EXEC.
//!
//! A shard carries a [`WatchedKeys`] table only while some client watches one of its keys, so
//! a write to a shard nobody watches tests one `Option` and nothing else. Each change of a
//! watched key sets the flags of its watchers ([`WatchFlag`]); EXEC aborts if its flag is set.
//!
//! Changes made through [`super::Shard::get_mut`] (in-place updates) are only known to have
//! happened when the command propagates an effect: a command that finds nothing to change
//! (SADD of a member already there) propagates nothing, and Redis does not count it as a
//! change either. So a watched entry handed out for writing is noted as *pending*, turned into
//! a change by the shard's next effect, and forgotten when the shard's lock is released.

use std::collections::HashMap;

use crate::sync::{Arc, AtomicBool, Ordering};

/// Set when a key its client watches changes; checked by EXEC.
#[derive(Debug, Default)]
pub struct WatchFlag {
    dirty: AtomicBool,
}

impl WatchFlag {
    /// A clean flag.
    pub fn new() -> Arc<WatchFlag> {
        Arc::new(WatchFlag::default())
    }

    /// True once a watched key has changed.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Marks the watcher's transaction as doomed.
    pub fn set_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

/// One client watching one key.
struct Watcher {
    flag: Arc<WatchFlag>,
    /// The key existed but had expired when WATCH ran: its removal by expiry is no change
    /// (logically it was gone already), as in Redis.
    expired_at_watch: bool,
}

/// The watched keys of one shard.
#[derive(Default)]
pub struct WatchedKeys {
    /// Key -> its hash (for lookups in the shard's table) and its watchers.
    keys: HashMap<Box<[u8]>, (u64, Vec<Watcher>)>,
    /// Watched keys handed out for an in-place write under the current lock.
    pending: Vec<Box<[u8]>>,
}

impl WatchedKeys {
    /// Registers `flag` as watching `key` (once per flag).
    pub fn add(&mut self, hash: u64, key: &[u8], flag: &Arc<WatchFlag>, expired_at_watch: bool) {
        let (_, watchers) = self.keys.entry(key.into()).or_insert((hash, Vec::new()));
        if !watchers.iter().any(|w| Arc::ptr_eq(&w.flag, flag)) {
            watchers.push(Watcher {
                flag: Arc::clone(flag),
                expired_at_watch,
            });
        }
    }

    /// Removes `flag`'s watch of `key`; returns true if no key is watched any more.
    pub fn remove(&mut self, key: &[u8], flag: &Arc<WatchFlag>) -> bool {
        if let Some((_, watchers)) = self.keys.get_mut(key) {
            watchers.retain(|w| !Arc::ptr_eq(&w.flag, flag));
            if watchers.is_empty() {
                self.keys.remove(key);
            }
        }
        self.keys.is_empty()
    }

    /// True if `flag` watches `key` and the key was alive (or absent) when it started.
    pub fn saw_alive(&self, key: &[u8], flag: &Arc<WatchFlag>) -> bool {
        self.keys.get(key).is_some_and(|(_, watchers)| {
            watchers
                .iter()
                .any(|w| Arc::ptr_eq(&w.flag, flag) && !w.expired_at_watch)
        })
    }

    /// True if anyone watches `key`.
    #[inline]
    pub fn watches(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key)
    }

    /// `key` changed: every watcher's transaction fails.
    pub fn touch(&self, key: &[u8]) {
        if let Some((_, watchers)) = self.keys.get(key) {
            for watcher in watchers {
                watcher.flag.set_dirty();
            }
        }
    }

    /// `key` was removed because it expired: a change for the watchers that saw it alive.
    pub fn touch_expired(&self, key: &[u8]) {
        if let Some((_, watchers)) = self.keys.get(key) {
            for watcher in watchers.iter().filter(|w| !w.expired_at_watch) {
                watcher.flag.set_dirty();
            }
        }
    }

    /// Every watched key for which `exists(hash, key)` says yes changed (FLUSHDB, FLUSHALL).
    pub fn touch_existing(&self, mut exists: impl FnMut(u64, &[u8]) -> bool) {
        for (key, (hash, watchers)) in &self.keys {
            if exists(*hash, key) {
                for watcher in watchers {
                    watcher.flag.set_dirty();
                }
            }
        }
    }

    /// Notes a watched key handed out for an in-place write.
    pub fn note_pending(&mut self, key: &[u8]) {
        if self.keys.contains_key(key) && !self.pending.iter().any(|k| &**k == key) {
            self.pending.push(key.into());
        }
    }

    /// True if in-place writes wait for an effect to count as changes.
    #[inline]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The shard propagated an effect: the pending in-place writes changed their keys.
    #[inline]
    pub fn pending_changed(&self) {
        for key in &self.pending {
            self.touch(key);
        }
    }

    /// The lock is released: in-place writes that propagated nothing changed nothing.
    #[inline]
    pub fn forget_pending(&mut self) {
        self.pending.clear();
    }
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn touches_reach_only_the_watchers_of_the_key() {
        let mut table = WatchedKeys::default();
        let (a, b) = (WatchFlag::new(), WatchFlag::new());
        table.add(1, b"x", &a, false);
        table.add(2, b"y", &b, false);
        table.touch(b"z");
        assert!(!a.is_dirty() && !b.is_dirty());
        table.touch(b"x");
        assert!(a.is_dirty() && !b.is_dirty());
        assert!(!table.remove(b"x", &a));
        assert!(table.remove(b"y", &b));
    }

    #[test]
    fn expiry_of_a_key_expired_at_watch_time_is_no_change() {
        let mut table = WatchedKeys::default();
        let (saw_expired, saw_alive) = (WatchFlag::new(), WatchFlag::new());
        table.add(3, b"k", &saw_expired, true);
        table.add(3, b"k", &saw_alive, false);
        table.touch_expired(b"k");
        assert!(!saw_expired.is_dirty());
        assert!(saw_alive.is_dirty());
    }

    #[test]
    fn pending_in_place_writes_count_only_once_an_effect_follows() {
        let mut table = WatchedKeys::default();
        let flag = WatchFlag::new();
        table.add(3, b"k", &flag, false);
        table.note_pending(b"k");
        table.forget_pending();
        table.pending_changed();
        assert!(!flag.is_dirty(), "no effect: no change");
        assert!(!table.has_pending());
        table.note_pending(b"k");
        table.note_pending(b"other");
        table.pending_changed();
        assert!(flag.is_dirty());
    }
}
