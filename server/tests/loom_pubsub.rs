//! Loom models of the Pub/Sub registry and mailboxes (`pubsub`): delivery against a
//! subscriber draining and sleeping (no lost wake-up, publish order kept), and publish
//! against unsubscribe (PUBLISH's count agrees with what was delivered; nothing arrives
//! after UNSUBSCRIBE returned).
//!
//! Run with: `RUSTFLAGS="--cfg kv_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom
//! cargo test -p kvserver --test loom_pubsub --release`. A subscriber's sleep is the loom
//! build's [`Signal`](kvserver::store::waiters::Signal): a wake-up that never comes is a
//! deadlock loom reports.
#![cfg(kv_loom)]

use bytes::BytesMut;
use kvserver::pubsub::{Mailbox, Namespace, PubSub};
use loom::sync::Arc;
use loom::thread;
use protocol::Version;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// The RESP2 frame a subscriber of `channel` gets for `payload`.
fn frame(channel: &str, payload: &str) -> Vec<u8> {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        channel.len(),
        payload.len()
    )
    .into_bytes()
}

#[test]
fn a_sleeping_subscriber_wakes_for_every_message_in_order() {
    model(|| {
        let pubsub = Arc::new(PubSub::new());
        let mailbox = Mailbox::new(1, Version::Resp2);
        pubsub.subscribe(Namespace::Channel, b"c", &mailbox);
        let publisher = {
            let pubsub = Arc::clone(&pubsub);
            thread::spawn(move || {
                assert_eq!(pubsub.publish(Namespace::Channel, b"c", b"1", 0, |_| {}), 1);
                assert_eq!(pubsub.publish(Namespace::Channel, b"c", b"2", 0, |_| {}), 1);
            })
        };
        // The connection: move what is pending to the output, sleep when there is nothing.
        let expected = [frame("c", "1"), frame("c", "2")].concat();
        let mut out = BytesMut::new();
        while out.len() < expected.len() {
            assert!(mailbox.drain_into(&mut out));
            if out.len() < expected.len() {
                mailbox.signal.wait();
            }
        }
        assert_eq!(&out[..], &expected[..]);
        publisher.join().expect("publisher");
    });
}

#[test]
fn publish_racing_unsubscribe_counts_what_it_delivered() {
    model(|| {
        let pubsub = Arc::new(PubSub::new());
        let mailbox = Mailbox::new(1, Version::Resp2);
        pubsub.subscribe(Namespace::Channel, b"c", &mailbox);
        let publisher = {
            let pubsub = Arc::clone(&pubsub);
            thread::spawn(move || pubsub.publish(Namespace::Channel, b"c", b"m", 0, |_| {}))
        };
        pubsub.unsubscribe(Namespace::Channel, b"c", &mailbox);
        // What arrived before UNSUBSCRIBE returned; nothing may arrive after.
        let mut before = BytesMut::new();
        assert!(mailbox.drain_into(&mut before));
        assert_eq!(
            pubsub.publish(Namespace::Channel, b"c", b"late", 0, |_| {}),
            0
        );
        let receivers = publisher.join().expect("publisher");
        let mut after = BytesMut::new();
        assert!(mailbox.drain_into(&mut after));
        assert!(after.is_empty(), "delivered after UNSUBSCRIBE returned");
        let delivered = if before.is_empty() {
            0
        } else {
            assert_eq!(&before[..], &frame("c", "m")[..]);
            1
        };
        assert_eq!(receivers, delivered);
        assert!(pubsub.channels(Namespace::Channel, None).is_empty());
    });
}

#[test]
fn pattern_subscriptions_race_publishers_the_same_way() {
    model(|| {
        let pubsub = Arc::new(PubSub::new());
        let mailbox = Mailbox::new(1, Version::Resp2);
        let publisher = {
            let pubsub = Arc::clone(&pubsub);
            thread::spawn(move || pubsub.publish(Namespace::Channel, b"news", b"m", 0, |_| {}))
        };
        pubsub.psubscribe(b"n*", &mailbox);
        let receivers = publisher.join().expect("publisher");
        pubsub.punsubscribe(b"n*", &mailbox);
        let mut out = BytesMut::new();
        assert!(mailbox.drain_into(&mut out));
        assert_eq!(receivers, usize::from(!out.is_empty()));
        assert_eq!(pubsub.pattern_count(), 0);
    });
}
