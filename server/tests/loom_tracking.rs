//! Loom model of client-side caching's record-before-read protocol (`tracking`): a tracking
//! client reading a key races two writes of it on another thread, and the client must never
//! keep a stale value that no invalidation will ever reach.
//!
//! The model takes the worst case, a client whose invalidations come on another connection
//! (REDIRECT) and that does not guard against them overtaking replies (Redis's documentation
//! asks clients to; not all do): an invalidation delivered before the read may be handled
//! before the reply and so protects nothing. Redis, single-threaded, records a read's key in
//! the same step as the read, so only invalidations after the read count there; the model
//! asserts exactly that much. Forgetting a reader's entry on the first change, however early
//! (Redis's rule, without the command numbers), fails it: a change between the recording and
//! the read would take the entry, and the next change would find nobody to tell.
//!
//! Run with: `RUSTFLAGS="--cfg kv_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom
//! cargo test -p kvserver --test loom_tracking --release`.
#![cfg(kv_loom)]

use std::net::SocketAddr;

use kvserver::clients::Registry;
use kvserver::pubsub::PubSub;
use kvserver::sync::Mutex;
use kvserver::tracking::{Settings, Tracker, Tracking};
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// Bytes of one invalidation of key `k` pushed to a RESP3 client.
const ONE_INVALIDATION: usize = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n".len();

#[test]
fn a_read_racing_writes_is_never_left_stale() {
    model(|| {
        let registry = Arc::new(Registry::default());
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let handle = Registry::register(&registry, addr, addr, -1, 0, None);
        handle.set_resp(3);
        let client = handle.shared_info();
        let tracking = Arc::new(Tracking::new(
            Arc::new(PubSub::new()),
            Arc::clone(&registry),
        ));
        let tracker = Tracker::new(Arc::clone(&client));
        tracking.enable(
            &tracker,
            Settings {
                on: true,
                ..Settings::default()
            },
        );
        // The key's value, behind its shard's lock; writers report the change under it, as
        // `Shard::propagate` does.
        let shard = Arc::new(Mutex::new(0u32));
        let writer = {
            let (shard, tracking) = (Arc::clone(&shard), Arc::clone(&tracking));
            thread::spawn(move || {
                for value in [1, 2] {
                    let mut stored = shard.lock();
                    *stored = value;
                    tracking.changed(&[b"k"]);
                }
            })
        };
        // The reader: record, read, finish. Invalidations delivered up to the read may be
        // handled before the reply; only later ones protect the value it caches.
        // (Counted under the read's lock, which changes are reported under: exactly those
        // delivered before the read.)
        tracking.remember(&tracker, 1, b"k");
        let (cached, before_reply) = {
            let stored = shard.lock();
            (*stored, client.mailbox.pending_bytes() / ONE_INVALIDATION)
        };
        tracker.finish(1);
        writer.join().expect("writer");
        let total = client.mailbox.pending_bytes() / ONE_INVALIDATION;
        let still_cached = total == before_reply;
        if still_cached {
            assert_eq!(cached, 2, "a stale value with no invalidation to come");
        }
        // Whatever it cached, the key is still tracked if it kept it: the next change tells.
        {
            let mut stored = shard.lock();
            *stored = 3;
            tracking.changed(&[b"k"]);
        }
        let after = client.mailbox.pending_bytes() / ONE_INVALIDATION;
        if still_cached {
            assert!(after > total, "a cached key was forgotten by the table");
        }
    });
}
