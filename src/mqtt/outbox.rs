//! The bounded queue between what happens and the broker.
//!
//! Producers never wait: a push is a short lock. A retained message replaces
//! the one queued for its topic (only the newest state matters), so state
//! never piles up; when the queue is over its bounds, the oldest events
//! (non-retained) go first, then the oldest state, each drop counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// Most messages waiting.
pub(super) const MAX_ITEMS: usize = 1024;
/// Most bytes waiting (a few snapshots' worth).
pub(super) const MAX_BYTES: usize = 8 << 20;

/// One message to publish.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Message {
    pub(super) topic: String,
    pub(super) payload: Bytes,
    pub(super) retain: bool,
}

impl Message {
    /// A retained message (state).
    pub(super) fn state(topic: String, payload: impl Into<Bytes>) -> Message {
        Message {
            topic,
            payload: payload.into(),
            retain: true,
        }
    }

    /// A message that is not retained (events, replies).
    pub(super) fn event(topic: String, payload: impl Into<Bytes>) -> Message {
        Message {
            topic,
            payload: payload.into(),
            retain: false,
        }
    }

    fn size(&self) -> usize {
        self.topic.len() + self.payload.len()
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

    /// Queues `m`, dropping the oldest events when over the bounds.
    pub(super) fn push(&self, m: Message) {
        let mut q = crate::sync::lock(&self.queue);
        let size = m.size();
        if m.retain {
            if let Some(old) = q.items.iter_mut().find(|o| o.retain && o.topic == m.topic) {
                let old_size = old.size();
                *old = m;
                q.bytes = q.bytes - old_size + size;
                drop(q);
                self.ready.notify_one();
                return;
            }
        }
        q.items.push_back(m);
        q.bytes += size;
        while q.items.len() > 1 && (q.items.len() > self.max_items || q.bytes > self.max_bytes) {
            // The oldest event, else the oldest state; never the newest.
            let last = q.items.len() - 1;
            let victim = q
                .items
                .iter()
                .take(last)
                .position(|o| !o.retain)
                .unwrap_or(0);
            if let Some(gone) = q.items.remove(victim) {
                q.bytes -= gone.size();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
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

    /// Messages dropped since start.
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

    fn topics(o: &Outbox) -> Vec<String> {
        std::iter::from_fn(|| o.pop()).map(|m| m.topic).collect()
    }

    #[test]
    fn state_is_kept_once_per_topic_in_place() {
        let o = Outbox::new(10, 1 << 20);
        o.push(Message::state("a/motion".into(), "ON"));
        o.push(Message::event("a/events".into(), "1"));
        o.push(Message::state("a/motion".into(), "OFF"));
        assert_eq!(o.len(), 2);
        let first = o.pop().unwrap();
        assert_eq!(
            (first.topic.as_str(), &first.payload[..]),
            ("a/motion", &b"OFF"[..])
        );
        assert_eq!(o.dropped(), 0);
    }

    #[test]
    fn when_full_the_oldest_events_go_first_and_are_counted() {
        let o = Outbox::new(3, 1 << 20);
        o.push(Message::state("s1".into(), "x"));
        o.push(Message::event("e1".into(), "x"));
        o.push(Message::event("e2".into(), "x"));
        o.push(Message::event("e3".into(), "x"));
        o.push(Message::state("s2".into(), "x"));
        assert_eq!(o.dropped(), 2);
        assert_eq!(topics(&o), ["s1", "e3", "s2"]);
    }

    #[test]
    fn bytes_are_bounded_too_but_the_newest_is_kept() {
        let o = Outbox::new(100, 10);
        o.push(Message::event("a".into(), "12345"));
        o.push(Message::event("b".into(), "12345"));
        o.push(Message::state("big".into(), vec![0u8; 50]));
        assert_eq!(topics(&o), ["big"]);
        assert_eq!(o.dropped(), 2);
    }

    #[tokio::test]
    async fn next_waits_for_a_push() {
        let o = std::sync::Arc::new(Outbox::new(10, 1000));
        let waiter = {
            let o = o.clone();
            tokio::spawn(async move { o.next().await })
        };
        tokio::task::yield_now().await;
        o.push(Message::event("t".into(), "p"));
        let m = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.topic, "t");
    }
}
