//! The bounded queue between what happens and the broker.
//!
//! Producers never wait: a push is a short lock. State (a retained topic
//! whose newest value is all that matters) replaces what is queued for its
//! topic, so it never piles up. Motion edges are retained too but each one
//! is kept, so a short ON then OFF is never folded into a lone OFF. When the
//! queue is over its bounds the oldest events go first, then the oldest
//! state; availability and discovery are never dropped (they are one
//! message per topic, so they cannot fill it). Each drop is counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// Most messages waiting.
pub(super) const MAX_ITEMS: usize = 1024;
/// Most bytes waiting (a few snapshots' worth).
pub(super) const MAX_BYTES: usize = 8 << 20;

/// How a message is queued and published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Not retained (events, replies): the first to go when full.
    Event,
    /// Retained, one per topic (the newest replaces the queued one).
    State,
    /// Retained, every one kept in order (motion ON/OFF).
    Edge,
    /// Retained, one per topic, never dropped (availability, discovery).
    Keep,
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Message {
    pub(super) topic: String,
    pub(super) payload: Bytes,
    pub(super) kind: Kind,
}

impl Message {
    pub(super) fn new(kind: Kind, topic: String, payload: impl Into<Bytes>) -> Message {
        Message {
            topic,
            payload: payload.into(),
            kind,
        }
    }

    /// Whether the broker keeps it for later subscribers.
    pub(super) fn retain(&self) -> bool {
        self.kind != Kind::Event
    }

    fn size(&self) -> usize {
        self.topic.len() + self.payload.len()
    }

    fn replaces(&self, queued: &Message) -> bool {
        matches!(self.kind, Kind::State | Kind::Keep)
            && queued.kind == self.kind
            && queued.topic == self.topic
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Message>,
    bytes: usize,
}

/// See the module docs.
pub(super) struct Outbox {
    queue: Mutex<Queue>,
    ready: Notify,
    dropped: AtomicU64,
    max_items: usize,
    max_bytes: usize,
}

impl Outbox {
    pub(super) fn new(max_items: usize, max_bytes: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
            max_items: max_items.max(1),
            max_bytes,
        }
    }

    /// Queues `m`, dropping the oldest events (then state) when over the
    /// bounds.
    pub(super) fn push(&self, m: Message) {
        let mut q = crate::sync::lock(&self.queue);
        let size = m.size();
        if let Some(old) = q.items.iter_mut().find(|o| m.replaces(o)) {
            let old_size = old.size();
            *old = m;
            q.bytes = q.bytes - old_size + size;
        } else {
            q.items.push_back(m);
            q.bytes += size;
            while q.items.len() > self.max_items || q.bytes > self.max_bytes {
                // Never the newest, never what must be kept.
                let last = q.items.len() - 1;
                let candidates = || q.items.iter().take(last).enumerate();
                let victim = candidates()
                    .find(|(_, o)| o.kind == Kind::Event)
                    .or_else(|| candidates().find(|(_, o)| o.kind != Kind::Keep))
                    .map(|(i, _)| i);
                let Some(gone) = victim.and_then(|i| q.items.remove(i)) else {
                    break;
                };
                q.bytes -= gone.size();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Queues `m` ahead of everything (availability at a connect: state
    /// queued while the link was down must not arrive before `online`),
    /// replacing what is queued for its topic.
    pub(super) fn push_first(&self, m: Message) {
        let mut q = crate::sync::lock(&self.queue);
        if let Some(i) = q.items.iter().position(|o| m.replaces(o)) {
            if let Some(old) = q.items.remove(i) {
                q.bytes -= old.size();
            }
        }
        q.bytes += m.size();
        q.items.push_front(m);
        drop(q);
        self.ready.notify_one();
    }

    /// The oldest message, waiting for one.
    pub(super) async fn next(&self) -> Message {
        loop {
            let notified = self.ready.notified();
            if let Some(m) = self.pop() {
                return m;
            }
            notified.await;
        }
    }

    fn pop(&self) -> Option<Message> {
        let mut q = crate::sync::lock(&self.queue);
        let m = q.items.pop_front()?;
        q.bytes -= m.size();
        Some(m)
    }

    /// Counts `n` messages lost elsewhere (handed to a connection that
    /// dropped before the broker acknowledged them).
    pub(super) fn count_lost(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Messages dropped or lost since start.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Messages waiting.
    pub(super) fn len(&self) -> usize {
        crate::sync::lock(&self.queue).items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: Kind, topic: &str, payload: &'static str) -> Message {
        Message::new(kind, topic.into(), payload)
    }

    fn topics(o: &Outbox) -> Vec<String> {
        std::iter::from_fn(|| o.pop()).map(|m| m.topic).collect()
    }

    #[test]
    fn state_is_kept_once_per_topic_in_place_and_edges_all() {
        let o = Outbox::new(10, 1 << 20);
        o.push(m(Kind::State, "a/state", "1"));
        o.push(m(Kind::Edge, "a/motion", "ON"));
        o.push(m(Kind::Event, "a/events", "x"));
        o.push(m(Kind::State, "a/state", "2"));
        o.push(m(Kind::Edge, "a/motion", "OFF"));
        let got: Vec<_> = std::iter::from_fn(|| o.pop())
            .map(|m| format!("{}={}", m.topic, String::from_utf8_lossy(&m.payload)))
            .collect();
        assert_eq!(
            got,
            ["a/state=2", "a/motion=ON", "a/events=x", "a/motion=OFF"]
        );
        assert_eq!(o.dropped(), 0);
    }

    #[test]
    fn when_full_events_go_first_then_state_never_what_is_kept() {
        let o = Outbox::new(3, 1 << 20);
        o.push(m(Kind::Keep, "avail", "online"));
        o.push(m(Kind::Event, "e1", "x"));
        o.push(m(Kind::Event, "e2", "x"));
        o.push(m(Kind::State, "s1", "x"));
        assert_eq!(o.dropped(), 1);
        o.push(m(Kind::State, "s2", "x"));
        o.push(m(Kind::Edge, "m", "ON"));
        assert_eq!(o.dropped(), 3);
        assert_eq!(topics(&o), ["avail", "s2", "m"]);
    }

    #[test]
    fn bytes_are_bounded_too_but_the_newest_is_kept() {
        let o = Outbox::new(100, 10);
        o.push(m(Kind::Event, "a", "12345"));
        o.push(m(Kind::State, "b", "12345"));
        o.push(Message::new(Kind::State, "big".into(), vec![0u8; 50]));
        assert_eq!(topics(&o), ["big"]);
        assert_eq!(o.dropped(), 2);
        o.count_lost(3);
        assert_eq!(o.dropped(), 5);
    }

    #[test]
    fn availability_can_go_first() {
        let o = Outbox::new(10, 1 << 20);
        o.push(m(Kind::State, "a/state", "1"));
        o.push(m(Kind::Keep, "avail", "online"));
        o.push_first(m(Kind::Keep, "avail", "online"));
        assert_eq!(topics(&o), ["avail", "a/state"]);
    }

    #[tokio::test]
    async fn next_waits_for_a_push() {
        let o = std::sync::Arc::new(Outbox::new(10, 1000));
        let waiter = {
            let o = o.clone();
            tokio::spawn(async move { o.next().await })
        };
        tokio::task::yield_now().await;
        o.push(m(Kind::Event, "t", "p"));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.topic, "t");
    }
}
