//! The outbox's worker: sends each notification to its push service or to
//! ntfy, oldest due first, and settles it.
//!
//! - 2xx: delivered, out of the outbox.
//! - 404 or 410 from a push service: the phone unsubscribed (or the browser
//!   data was cleared); the subscription and what waits for it go.
//! - 408, 429, 5xx or no answer: retried with backoff (doubling, with
//!   jitter, `Retry-After` honoured up to the longest delay), until the
//!   notification is older than `max_age`, then given up.
//! - Anything else: refused for good (a bad VAPID signature, a payload too
//!   large): given up, and the reason shown in `/status`.
//!
//! A notification being retried never holds up others: the worker always
//! takes the one due first.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use reqwest::header::RETRY_AFTER;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::PushConfig;
use super::db::{Db, Pending};
use super::message::Message;
use super::ntfy::NTFY;
use super::webpush;
use crate::chain::error_chain;
use crate::frame::unix_secs;

/// Unix seconds now.
pub(super) fn now() -> f64 {
    unix_secs(SystemTime::now())
}

/// What was delivered and what failed, since start.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// The outbox's length as last read (after each change).
    pub queued: u64,
    /// Delivered (both channels).
    pub sent: u64,
    /// Delivered by ntfy.
    pub sent_ntfy: u64,
    /// Given up.
    pub failed: u64,
    /// Failed attempts tried again.
    pub retries: u64,
    /// Subscriptions removed because their service said they are gone.
    pub gone: u64,
    /// The last failure, until a later delivery.
    pub last_error: Option<String>,
    /// Unix seconds of the last delivery.
    pub last_success_ts: Option<f64>,
}

/// The outbox's worker and what it needs to send.
pub struct Courier {
    config: PushConfig,
    db: Db,
    client: reqwest::Client,
    vapid: webpush::Vapid,
    counters: Mutex<Counters>,
    wake: Notify,
    /// Set when a subscription was removed here: the notifier reads its
    /// targets again.
    targets_changed: AtomicBool,
}

/// What one attempt came to.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Delivered.
    Sent,
    /// The subscription is gone (404, 410).
    Gone(String),
    /// Try again later (after this long, when the service said).
    Retry(String, Option<Duration>),
    /// Refused for good.
    Failed(String),
}

impl Courier {
    /// A courier for `db`'s outbox.
    pub fn new(
        config: PushConfig,
        db: Db,
        client: reqwest::Client,
        vapid: webpush::Vapid,
    ) -> Courier {
        Courier {
            config,
            db,
            client,
            vapid,
            counters: Mutex::new(Counters::default()),
            wake: Notify::new(),
            targets_changed: AtomicBool::new(false),
        }
    }

    /// The VAPID public key, base64url.
    pub fn public_key(&self) -> &str {
        self.vapid.public_key()
    }

    /// Something was queued: look at the outbox now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The counters since start.
    pub fn counters(&self) -> MutexGuard<'_, Counters> {
        crate::sync::lock(&self.counters)
    }

    /// Whether a subscription was removed since the last call.
    pub fn take_targets_changed(&self) -> bool {
        self.targets_changed.swap(false, Ordering::Relaxed)
    }

    /// Reads the outbox's length again.
    pub async fn recount(&self) {
        match self.db.queued().await {
            Ok(n) => self.counters().queued = n,
            Err(e) => tracing::error!("notification outbox: {e}"),
        }
    }

    /// Sends what is due until `cancel`.
    pub async fn run(&self, cancel: CancellationToken) {
        loop {
            self.recount().await;
            let (next, failed) = match self.db.next().await {
                Ok(next) => (next, false),
                Err(e) => {
                    tracing::error!("notification outbox: {e}");
                    (None, true)
                }
            };
            let wait = match &next {
                // The store failed: look again in a while.
                None if failed => Some(Duration::from_secs(5)),
                None => None,
                Some(p) if p.next_at > now() => Some(Duration::from_secs_f64(p.next_at - now())),
                Some(_) => Some(Duration::ZERO),
            };
            if wait != Some(Duration::ZERO) {
                let sleep = async {
                    match wait {
                        Some(d) => tokio::time::sleep(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = sleep => {}
                    _ = self.wake.notified() => {}
                    _ = cancel.cancelled() => return,
                }
                continue;
            }
            let Some(pending) = next else { continue };
            tokio::select! {
                _ = self.attempt(pending) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// One attempt at `p`, and its bookkeeping.
    async fn attempt(&self, p: Pending) {
        let age = now() - p.created;
        if age > self.config.max_age.as_secs_f64() {
            self.counters().failed += 1;
            self.note_error(format!(
                "gave up a notification to {} after {:.0} s",
                p.target, age
            ));
            self.settle(self.db.done(p.id).await);
            return;
        }
        let outcome = match serde_json::from_str::<Message>(&p.message) {
            Ok(message) if p.target == NTFY => self.send_ntfy(&message, p.incident).await,
            Ok(message) => self.send_webpush(&p.target, &message).await,
            Err(e) => Outcome::Failed(format!("unreadable notification: {e}")),
        };
        let channel = if p.target == NTFY { "ntfy" } else { "webpush" };
        match outcome {
            Outcome::Sent => {
                {
                    let mut c = self.counters();
                    c.sent += 1;
                    if channel == "ntfy" {
                        c.sent_ntfy += 1;
                    }
                    c.last_success_ts = Some(now());
                    c.last_error = None;
                }
                self.settle(self.db.done(p.id).await);
            }
            Outcome::Gone(why) => {
                tracing::info!("push subscription {} is gone ({why}): removed", p.target);
                self.counters().gone += 1;
                self.settle(self.db.unsubscribe(&p.target).await.map(|_| ()));
                self.targets_changed.store(true, Ordering::Relaxed);
            }
            Outcome::Retry(why, after) => {
                let delay = self.backoff(p.attempts, after);
                tracing::warn!(
                    "{channel} notification failed ({why}); retrying in {:.1} s",
                    delay.as_secs_f64()
                );
                self.counters().retries += 1;
                self.note_error(why);
                self.settle(self.db.retry_at(p.id, now() + delay.as_secs_f64()).await);
            }
            Outcome::Failed(why) => {
                tracing::error!("{channel} notification refused: {why}");
                self.counters().failed += 1;
                self.note_error(why);
                self.settle(self.db.done(p.id).await);
            }
        }
    }

    fn settle(&self, r: Result<(), crate::store::StoreError>) {
        if let Err(e) = r {
            tracing::error!("notification outbox: {e}");
        }
    }

    fn note_error(&self, why: String) {
        self.counters().last_error = Some(why);
    }

    /// The delay after `attempts` failures: doubling from `retry_start`, at
    /// most `retry_max`, with up to a quarter of jitter so phones behind one
    /// service do not retry in step; a service's `Retry-After` wins, up to
    /// `retry_max`.
    fn backoff(&self, attempts: u32, after: Option<Duration>) -> Duration {
        let max = self.config.retry_max;
        if let Some(after) = after {
            return after.min(max);
        }
        let base = self
            .config
            .retry_start
            .saturating_mul(1u32 << attempts.min(20))
            .min(max);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempts);
        let jitter = (h.finish() % 1000) as f64 / 4000.0;
        base.mul_f64(1.0 + jitter).min(max)
    }

    /// A `PUT` to the ntfy topic, with the incident's picture as the body.
    async fn send_ntfy(&self, message: &Message, incident: Option<i64>) -> Outcome {
        let Some(url) = &self.config.ntfy_url else {
            return Outcome::Failed("ntfy is no longer configured".into());
        };
        let picture = match incident {
            Some(id) => self.db.picture(id).await.unwrap_or_else(|e| {
                tracing::warn!("incident picture: {e}");
                None
            }),
            None => None,
        };
        let headers = super::ntfy::headers(
            message,
            picture.is_some(),
            self.config.ntfy_token.as_deref(),
        );
        let body = picture.unwrap_or_default();
        let request = self.client.put(url).headers(headers).body(body);
        classify(request.send().await, false)
    }

    /// The stored subscription `id`, parsed.
    async fn subscription(&self, id: &str) -> Result<Option<webpush::Subscription>, String> {
        let Some(json) = self
            .db
            .subscription_json(id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let value: Value =
            serde_json::from_str(&json).map_err(|e| format!("stored subscription: {e}"))?;
        webpush::parse_subscription(&value, self.config.allow_loopback_http)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// A Web Push to subscription `id`.
    async fn send_webpush(&self, id: &str, message: &Message) -> Outcome {
        let sub = match self.subscription(id).await {
            Ok(Some(sub)) => sub,
            Ok(None) => return Outcome::Failed(format!("subscription {id} is gone")),
            Err(e) => return Outcome::Failed(e),
        };
        let payload = match serde_json::to_vec(message) {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let topic = webpush::topic(&message.tag);
        let options = webpush::PushOptions {
            ttl: u32::try_from(self.config.max_age.as_secs()).unwrap_or(u32::MAX),
            urgency: if message.urgent() {
                webpush::Urgency::High
            } else {
                webpush::Urgency::Normal
            },
            topic: Some(&topic),
            subject: &self.config.contact,
        };
        let request = match webpush::request(&self.vapid, &sub, &payload, &options, now() as u64) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let request = request.to_reqwest(&self.client);
        classify(request.send().await, true)
    }
}

/// What an answer means (`gone`: 404 and 410 end a push subscription).
fn classify(result: reqwest::Result<reqwest::Response>, push_service: bool) -> Outcome {
    let resp = match result {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(error_chain(&e), None),
    };
    let status = resp.status();
    let code = status.as_u16();
    let why = format!(
        "{} answered {status}",
        if push_service { "push service" } else { "ntfy" }
    );
    if status.is_success() {
        Outcome::Sent
    } else if push_service && (code == 404 || code == 410) {
        Outcome::Gone(why)
    } else if code == 408 || code == 429 || status.is_server_error() {
        let after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Outcome::Retry(why, after)
    } else {
        Outcome::Failed(why)
    }
}
