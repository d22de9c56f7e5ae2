//! The debug-build check that a write command which changed the keyspace propagated
//! something: a change that reaches no consumer is a replica or an append-only file that
//! silently diverges, and this catches it in every test that runs the command.
//!
//! Two per-thread counters: keyspace changes, bumped by the shard's mutating paths (a key
//! inserted, replaced or removed, a deadline changed, an entry handed out for writing that
//! really changed: see `Shard::get_mut`), and effects propagated, bumped by
//! `Shard::propagate` whether or not a consumer is attached (without an append-only file
//! the effect goes nowhere, but the command still reached its propagation point). `dispatch`
//! reads both before and after a handler and calls [`check`]. In release builds the counters
//! do not exist, [`Tally`] is empty and every function here compiles to nothing.

#[cfg(debug_assertions)]
use std::cell::Cell;

#[cfg(debug_assertions)]
thread_local! {
    static CHANGES: Cell<u64> = const { Cell::new(0) };
    static EFFECTS: Cell<u64> = const { Cell::new(0) };
}

/// Counts a change to the keyspace made by the calling thread.
#[inline(always)]
pub fn note_change() {
    #[cfg(debug_assertions)]
    CHANGES.with(|changes| changes.set(changes.get() + 1));
}

/// Counts a write effect propagated by the calling thread.
#[inline(always)]
pub fn note_effect() {
    #[cfg(debug_assertions)]
    EFFECTS.with(|effects| effects.set(effects.get() + 1));
}

/// The calling thread's counters at one moment (empty in release builds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    #[cfg(debug_assertions)]
    changes: u64,
    #[cfg(debug_assertions)]
    effects: u64,
}

/// What happened on the calling thread since a [`Tally`] was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Since {
    /// The keyspace changed.
    pub changed: bool,
    /// At least one write effect was propagated.
    pub propagated: bool,
}

impl Tally {
    /// The calling thread's counters now.
    #[inline(always)]
    pub fn now() -> Tally {
        Tally {
            #[cfg(debug_assertions)]
            changes: CHANGES.with(Cell::get),
            #[cfg(debug_assertions)]
            effects: EFFECTS.with(Cell::get),
        }
    }

    /// What the calling thread did since `self` was taken (nothing, in release builds).
    #[inline(always)]
    pub fn since(self) -> Since {
        #[cfg(debug_assertions)]
        {
            let now = Tally::now();
            Since {
                changed: now.changes != self.changes,
                propagated: now.effects != self.effects,
            }
        }
        #[cfg(not(debug_assertions))]
        {
            Since::default()
        }
    }
}

/// Fails (in debug builds) if `command`, which must propagate its changes (a write command
/// that succeeded), changed the keyspace since `before` without propagating anything.
#[inline(always)]
pub fn check(command: &str, must_propagate: bool, before: Tally) {
    #[cfg(debug_assertions)]
    if must_propagate {
        let since = before.since();
        debug_assert!(
            !since.changed || since.propagated,
            "'{command}' changed the keyspace but propagated no write effect: replicas and \
             the append-only file would miss the change"
        );
    }
    #[cfg(not(debug_assertions))]
    let _ = (command, must_propagate, before);
}

#[cfg(all(test, debug_assertions, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_change_with_an_effect_passes() {
        let before = Tally::now();
        note_change();
        note_effect();
        assert_eq!(
            before.since(),
            Since {
                changed: true,
                propagated: true
            }
        );
        check("set", true, before);
    }

    #[test]
    fn no_change_needs_no_effect_and_reads_are_not_checked() {
        let before = Tally::now();
        check("set", true, before);
        note_change();
        check("get", false, before);
    }

    #[test]
    #[should_panic(expected = "'set' changed the keyspace but propagated no write effect")]
    fn a_change_without_an_effect_fails() {
        let before = Tally::now();
        note_change();
        check("set", true, before);
    }
}
