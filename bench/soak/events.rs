//! Churn on the event streams: subscribers that come and go, one that
//! stalls, one per camera, and the monitor that records what queues uploads.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

use crate::ctx::{chain, Ctx};
use crate::rng::Rng;
use crate::sse_client::{Events, Msg};
use crate::tally::{queues_upload, upload_key, Tally};

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum SseRole {
    /// Stays subscribed (reconnecting only when dropped); records the events
    /// that queue uploads.
    Monitor,
    /// Drops and reconnects every few seconds.
    Churn,
    /// Now and then stops reading until the server drops it as too slow.
    Staller,
    /// One camera's stream: its ids only increase (other cameras' events are
    /// not in it, so they have gaps).
    Camera(&'static str),
}

pub(crate) async fn sse(ctx: Arc<Ctx>, i: u64, role: SseRole, done: CancellationToken) {
    let mut rng = Rng::new(100 + i);
    let path = match role {
        SseRole::Camera(name) => format!("/cams/{name}/events"),
        _ => "/events".to_string(),
    };
    let mut last: Option<i64> = None;
    // The monitor outlives the churn (through the upload drain), so it has
    // its own token.
    let monitor = role == SseRole::Monitor;
    while !done.is_cancelled() {
        let mut req = ctx.stream.get(ctx.url(&path));
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        Tally::add(&ctx.tally.requests);
        Tally::add(&ctx.tally.sse_connects);
        let resp = match req.send().await {
            Ok(r) if r.status() == 200 => r,
            Ok(r) => {
                ctx.tally.fail(format!("GET {path}: HTTP {}", r.status()));
                if !ctx.pause(Duration::from_secs(1)).await && !monitor {
                    return;
                }
                continue;
            }
            Err(e) => {
                ctx.tally.fail(format!("GET {path}: {}", chain(&e)));
                sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut sub = Subscriber {
            ctx: &ctx,
            role,
            path: &path,
            last: &mut last,
        };
        if !sub.read(Events::new(resp), &mut rng, &done).await {
            return;
        }
        if monitor && done.is_cancelled() {
            return;
        }
        if !monitor && !ctx.pause(rng.ms(0, 3_000)).await {
            return;
        }
    }
}

/// One connection of a subscriber.
struct Subscriber<'a> {
    ctx: &'a Ctx,
    role: SseRole,
    path: &'a str,
    /// The highest id seen, over every connection.
    last: &'a mut Option<i64>,
}

impl Subscriber<'_> {
    /// Reads until its time is up or the server drops it; false when the
    /// task must end at once (`done`, but for the monitor).
    async fn read(&mut self, mut events: Events, rng: &mut Rng, done: &CancellationToken) -> bool {
        let monitor = self.role == SseRole::Monitor;
        let stay = match self.role {
            SseRole::Monitor => Duration::from_secs(86_400 * 365),
            _ => rng.ms(2_000, 20_000),
        };
        let mut stall = self.role == SseRole::Staller && rng.chance(0.3);
        let until = Instant::now() + stay;
        let mut read = 0usize;
        loop {
            if stall && read > 0 {
                stall = false;
                // Stop reading: the server's buffer for this subscriber fills
                // (motion levels come twice a second per camera) and it is
                // dropped; what was sent before is still read below.
                let quiet = rng.ms(30_000, 90_000);
                tokio::select! {
                    _ = sleep(quiet) => {}
                    _ = done.cancelled() => return false,
                }
            }
            let msg = tokio::select! {
                m = events.next() => m,
                _ = sleep(until.saturating_duration_since(Instant::now())) => return true,
                _ = done.cancelled() => if monitor { None } else { return false },
            };
            match msg {
                Some(Ok(msg)) => {
                    read += 1;
                    self.note(&msg);
                }
                // Dropped by the server (too slow) or at shutdown.
                Some(Err(_)) | None => return true,
            }
        }
    }

    /// Checks a message's id against the last one, and has the monitor
    /// record the stored events.
    fn note(&mut self, msg: &Msg) {
        let Some(n) = msg.id_number() else {
            return;
        };
        let (ctx, path) = (self.ctx, self.path);
        Tally::add(&ctx.tally.sse_events);
        match (self.role, *self.last) {
            (SseRole::Camera(_), Some(l)) if n <= l => ctx
                .tally
                .fail(format!("{path}: id {n} after {l} (ids must increase)")),
            (SseRole::Camera(_), _) => {}
            (_, Some(l)) if n == l + 1 => {}
            (_, Some(l)) if n <= l => ctx.tally.fail(format!("/events: id {n} again after {l}")),
            (_, Some(l)) => ctx.tally.fail(format!(
                "/events: ids {}..={} missing (got {n} after {l}, across a reconnect with Last-Event-ID)",
                l + 1,
                n - 1
            )),
            (_, None) => {}
        }
        *self.last = Some(self.last.map_or(n, |l| l.max(n)));
        if self.role == SseRole::Monitor {
            let v = msg.json();
            if let Ok(mut k) = ctx.tally.kinds.lock() {
                *k.entry(msg.event.clone()).or_insert(0) += 1;
            }
            if queues_upload(&msg.event, &v) {
                if let Ok(mut e) = ctx.tally.expected.lock() {
                    e.insert(upload_key(&v));
                }
            }
        }
    }
}
