//! Off-site copies of triggered frames: a durable upload queue and its worker.
//!
//! A stolen or burnt camera takes its SD card with it, so every motion frame
//! (and, optionally, every manual snapshot) is also POSTed to a receiver
//! elsewhere, as `multipart/form-data` with the JPEG in field `image`
//! (`frame-<unix ts>.jpg`, `image/jpeg`) and the event JSON in field `event`
//! (`application/json`), with `Authorization: Bearer <token>` when a token is
//! set. With `clips` set, each saved clip goes too, as a third field `clip`
//! beside its picture and its `clip` event: `motion-<ms>.mkv`
//! (`video/x-matroska`) of a camera of JPEGs, `motion-<ms>.mp4`
//! (`video/mp4`) of an RTSP camera's own video. An optional webhook gets the
//! event JSON alone, for Home Assistant automations or ntfy-like services.
//!
//! # Nothing lost
//! [`Uploader::enqueue_frame`] writes the item to
//! `<data-dir>/uploads/pending/<seq>-<kind>.json` (plus `<seq>-frame.jpg` for
//! frames, and `<seq>-frame.mkv` or `<seq>-frame.mp4` for a clip) before it
//! returns: each file is written under a `.tmp-*` name (a clip is
//! hard-linked), synced, renamed, and the folder synced; the `.json` is
//! renamed last, so it marks a complete item. An item leaves `pending/` only
//! after a 2xx answer. A crash or `kill -9` at any point leaves either a
//! complete item (sent after the restart) or stray files without their JSON
//! (removed by [`Uploader::open`]). The
//! price is "at least once": a crash between the receiver's 2xx and the
//! deletion sends that frame again after the restart.
//!
//! # Retries
//! Network errors, 408, 429 and 5xx are retried with exponential backoff and
//! jitter (1 s doubling to 5 min by default; a `Retry-After` in seconds is
//! honoured) until the item is older than `max_age`, when it is dropped and
//! counted as failed. Any other answer (4xx, but also 3xx, which for a POST
//! means a wrong URL) is permanent: the item moves to `uploads/failed/`, so the
//! evidence stays on disk, and is reported.
//!
//! # Order and isolation
//! One worker sends one request at a time, oldest first, so frames arrive in
//! the order they were taken. Frames and webhook calls are two lanes with
//! their own backoff: a dead webhook never holds up the evidence, nor the
//! reverse. Nothing here runs on the detection, streaming or command paths
//! except the enqueue, which is a few small synced writes.
//!
//! # Bounded
//! `pending/` holds at most `queue_mb` MiB; when a new item goes over, the
//! oldest items are dropped first (each logged, counted and announced), never
//! the new one and never the one being sent.
//!
//! # Layout
//! `queue.rs` moves files (the durable queue), `sender.rs` makes requests and
//! reads answers, `config.rs` and `error.rs` hold the settings and the error
//! they share; this file is the worker that decides, with its index and
//! counters behind one lock that is never held across a file operation.

mod config;
mod error;
mod queue;
mod sender;

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clips::Kind;
use crate::events::{EventBus, EventKind, UploadNotice, UploadState};
use crate::frame::unix_secs;
pub use config::UploadConfig;
pub use error::UploadError;
use queue::{Item, ItemMeta, Lane, Queue};
use sender::{Outcome, Sender, MAX_RETRY_AFTER};

/// Retry state of one lane.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    /// Not before this.
    next: Option<Instant>,
    /// The delay after the next failure (before jitter).
    delay: Duration,
}

/// Counters and queue index, behind one lock: never held across an await,
/// an fsync or a file removal (`/status` reads it).
#[derive(Debug)]
struct State {
    items: BTreeMap<u64, Item>,
    bytes: u64,
    next_seq: u64,
    in_flight: Option<u64>,
    backoff: [Backoff; 2],
    sent: u64,
    failed: u64,
    dropped: u64,
    last_error: Option<String>,
    last_success_ts: Option<f64>,
    /// `upload` events decided off the async side (drops during enqueue),
    /// published by the worker.
    notices: Vec<UploadNotice>,
}

/// The queue's length and its outcomes since start.
#[derive(Debug, Clone, Copy)]
pub struct UploadCounts {
    /// Items waiting.
    pub queued: usize,
    /// Delivered.
    pub sent: u64,
    /// Given up (refused for good, or too old).
    pub failed: u64,
    /// Dropped to keep the queue under its size limit.
    pub dropped: u64,
}

/// The queue's state as `/status` shows it under `uploads`. Fields in
/// alphabetical order: the JSON had its keys sorted before it was typed, and
/// clients see the same bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UploadStatus {
    /// Dropped to keep the queue under its size limit, since start.
    pub dropped: u64,
    /// Given up (refused for good, or too old), since start.
    pub failed: u64,
    /// The last failed attempt's reason, until a later one succeeds or fails.
    pub last_error: Option<String>,
    /// Unix seconds of the last delivery.
    pub last_success_ts: Option<f64>,
    /// Items waiting.
    pub queued: usize,
    /// Their size on disk.
    pub queued_bytes: u64,
    /// Seconds until the next retry of a lane in backoff (one decimal).
    pub retry_in_s: Option<f64>,
    /// Delivered, since start.
    pub sent: u64,
}

/// Items taken out of the index whose files are still to be deleted, once
/// the lock is released.
type Doomed = Vec<(u64, Lane)>;

/// The upload queue and its worker. Open one per data directory.
pub struct Uploader {
    config: UploadConfig,
    queue: Queue,
    sender: Sender,
    state: Mutex<State>,
    /// Serialises enqueues, so sequence numbers reach the index in order and
    /// the worker never sends 6 before 5 appears.
    write_lock: Mutex<()>,
    wake: Notify,
}

impl Uploader {
    /// Opens the queue folder (creating it), removes stale temp files, counts
    /// what is pending. Blocking.
    ///
    /// Fails on a bad URL or CA file, so a typo shows at start-up rather than
    /// as an endless retry.
    pub fn open(data_dir: &Path, config: UploadConfig) -> Result<Arc<Uploader>, UploadError> {
        let sender = Sender::new(&config)?;
        let queue = Queue::open(data_dir)?;
        let (items, max_seq) = queue.scan()?;
        let bytes = items.values().map(|i| i.bytes).sum();
        if !items.is_empty() {
            tracing::info!("{} upload(s) pending from an earlier run", items.len());
        }
        let start = Backoff {
            next: None,
            delay: config.retry_start,
        };
        let uploader = Uploader {
            state: Mutex::new(State {
                items,
                bytes,
                next_seq: max_seq + 1,
                in_flight: None,
                backoff: [start; 2],
                sent: 0,
                failed: 0,
                dropped: 0,
                last_error: None,
                last_success_ts: None,
                notices: Vec::new(),
            }),
            config,
            queue,
            sender,
            write_lock: Mutex::new(()),
            wake: Notify::new(),
        };
        let doomed = uploader.enforce_bound(&mut uploader.lock(), None);
        uploader.remove_all(doomed);
        Ok(Arc::new(uploader))
    }

    /// The settings it runs with.
    pub fn config(&self) -> &UploadConfig {
        &self.config
    }

    /// Durably queues a frame upload (+ webhook if configured). Blocking
    /// (fsync); call via `spawn_blocking`.
    ///
    /// `event` is the motion event data; its `ts` names the file
    /// (`frame-<integer unix seconds>.jpg`, now when absent). A manual frame
    /// is ignored unless `on_manual` is set. Returns once the item is on disk.
    pub fn enqueue_frame(
        &self,
        jpeg: &[u8],
        event: &Value,
        manual: bool,
    ) -> Result<(), UploadError> {
        if manual && !self.config.on_manual {
            return Ok(());
        }
        let now = unix_secs(SystemTime::now());
        let ts = event.get("ts").and_then(Value::as_f64).unwrap_or(now);
        let file = format!("frame-{}.jpg", ts.max(0.0).floor() as u64);
        if self.config.url.is_some() {
            self.enqueue(Lane::Frame, Some(jpeg), event, &file, now)?;
        }
        if self.config.webhook_url.is_some() {
            self.enqueue(Lane::Event, None, event, &file, now)?;
        }
        Ok(())
    }

    /// Durably queues a clip upload: the clip file (linked into the queue,
    /// so retention may delete the clip meanwhile), `jpeg` as the `image`
    /// (`motion-<ms>.jpg`) and the `clip` event. Blocking. Does nothing
    /// unless clips are uploaded. Both kinds of clip go: Matroska
    /// (`motion-<ms>.mkv`, a camera of JPEGs) and MP4 (`motion-<ms>.mp4`,
    /// an RTSP camera's own video); the queue keeps the extension and the
    /// receiver gets the clip's own name and type.
    pub fn enqueue_clip(&self, clip: &Path, jpeg: &[u8], event: &Value) -> Result<(), UploadError> {
        if !self.config.clips || self.config.url.is_none() {
            return Ok(());
        }
        let Some(name) = clip.file_name().and_then(|n| n.to_str()) else {
            return Ok(());
        };
        let Some(stem) = name.strip_suffix(Kind::of(name).extension()) else {
            // The recorder names every clip; another name is a bug, logged
            // rather than sent under a type that may be wrong.
            tracing::warn!("{name} not uploaded: not a clip file name");
            return Ok(());
        };
        let now = unix_secs(SystemTime::now());
        let file = format!("{stem}.jpg");
        self.enqueue_with(Lane::Frame, Some(jpeg), event, &file, now, Some(clip))
    }

    /// Durably queues a webhook-only event (e.g. `motion_end`). Blocking.
    /// Does nothing without a `webhook_url`.
    pub fn enqueue_event(&self, event: &Value) -> Result<(), UploadError> {
        if self.config.webhook_url.is_none() {
            return Ok(());
        }
        let now = unix_secs(SystemTime::now());
        self.enqueue(Lane::Event, None, event, "", now)
    }

    /// The worker; runs until cancel. Publishes `upload` events on `events`.
    ///
    /// Cancelling mid-request abandons that request; the item stays pending
    /// and is sent again by the next run.
    pub async fn run(self: Arc<Self>, events: EventBus, cancel: CancellationToken) {
        loop {
            self.publish_notices(&events).await;
            if cancel.is_cancelled() {
                break;
            }
            let next = {
                let this = self.clone();
                tokio::task::spawn_blocking(move || this.next_ready()).await
            };
            match next {
                Ok(Next::Send(seq, item)) => {
                    let outcome = tokio::select! {
                        o = self.attempt(seq, &item) => o,
                        _ = cancel.cancelled() => {
                            self.lock().in_flight = None;
                            break;
                        }
                    };
                    let settle = {
                        let this = self.clone();
                        tokio::task::spawn_blocking(move || this.settle(seq, &item, outcome))
                    };
                    if let Err(e) = settle.await {
                        tracing::error!("upload bookkeeping task failed: {e}");
                        self.lock().in_flight = None;
                    }
                }
                Ok(Next::Wait(until)) => {
                    let sleep = async {
                        match until {
                            Some(t) => tokio::time::sleep_until(t.into()).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = sleep => {}
                        _ = self.wake.notified() => {}
                        _ = cancel.cancelled() => break,
                    }
                }
                Err(e) => {
                    tracing::error!("upload bookkeeping task failed: {e}");
                    break;
                }
            }
        }
        // What was decided before the stop is still announced.
        self.publish_notices(&events).await;
    }

    /// Publishes the `upload` events decided since the last call.
    async fn publish_notices(&self, events: &EventBus) {
        let notices = std::mem::take(&mut self.lock().notices);
        for notice in notices {
            events.publish_or_log(EventKind::Upload, &notice).await;
        }
    }

    /// The queue's length and what left it since start, for `/metrics`.
    pub fn counts(&self) -> UploadCounts {
        let st = self.lock();
        UploadCounts {
            queued: st.items.len(),
            sent: st.sent,
            failed: st.failed,
            dropped: st.dropped,
        }
    }

    /// The queue's state: the `/status` `uploads` object and the
    /// `flush_uploads` reply.
    pub fn report(&self) -> UploadStatus {
        let st = self.lock();
        let now = Instant::now();
        let retry_in_s = st
            .backoff
            .iter()
            .filter_map(|b| b.next)
            .min()
            .map(|t| round1(t.saturating_duration_since(now).as_secs_f64()));
        UploadStatus {
            dropped: st.dropped,
            failed: st.failed,
            last_error: st.last_error.clone(),
            last_success_ts: st.last_success_ts,
            queued: st.items.len(),
            queued_bytes: st.bytes,
            retry_in_s,
            sent: st.sent,
        }
    }

    /// [`Uploader::report`] as JSON, as `/status` shows it.
    pub fn status(&self) -> Value {
        serde_json::to_value(self.report()).unwrap_or(Value::Null)
    }

    /// Wakes the worker and resets the backoff, so everything pending is
    /// tried now (the `flush_uploads` command).
    pub fn flush(&self) {
        {
            let mut st = self.lock();
            for b in &mut st.backoff {
                b.next = None;
                b.delay = self.config.retry_start;
            }
        }
        self.wake.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Writes one item (files synced, JSON last) and adds it to the index.
    fn enqueue(
        &self,
        lane: Lane,
        jpeg: Option<&[u8]>,
        event: &Value,
        file: &str,
        created: f64,
    ) -> Result<(), UploadError> {
        self.enqueue_with(lane, jpeg, event, file, created, None)
    }

    /// [`Uploader::enqueue`], with a clip file to send beside the JPEG.
    fn enqueue_with(
        &self,
        lane: Lane,
        jpeg: Option<&[u8]>,
        event: &Value,
        file: &str,
        created: f64,
        clip: Option<&Path>,
    ) -> Result<(), UploadError> {
        let _write = crate::sync::lock(&self.write_lock);
        let seq = {
            let mut st = self.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            seq
        };
        let mut meta = ItemMeta::new(lane, created, file, event);
        meta.clip = clip
            .and_then(|c| c.file_name())
            .and_then(|n| n.to_str())
            .map(str::to_string);
        let bytes = self
            .queue
            .write(seq, &meta, jpeg, clip)
            .map_err(|e| UploadError::io(format!("cannot queue upload {seq}"), e))?;
        let doomed = {
            let mut st = self.lock();
            st.items.insert(
                seq,
                Item {
                    lane,
                    created,
                    file: file.to_string(),
                    bytes,
                },
            );
            st.bytes += bytes;
            self.enforce_bound(&mut st, Some(seq))
        };
        self.remove_all(doomed);
        self.wake.notify_one();
        Ok(())
    }

    /// Drops the oldest items from the index while the queue is over its
    /// bound, sparing `keep` (the item just queued) and the one being sent.
    /// Returns them, for their files to be removed outside the lock.
    fn enforce_bound(&self, st: &mut State, keep: Option<u64>) -> Doomed {
        let limit = self.config.queue_limit();
        let mut doomed = Vec::new();
        while st.bytes > limit {
            let victim = st
                .items
                .keys()
                .copied()
                .find(|s| Some(*s) != keep && Some(*s) != st.in_flight);
            let Some(seq) = victim else { break };
            let Some(item) = st.items.remove(&seq) else {
                break;
            };
            st.bytes = st.bytes.saturating_sub(item.bytes);
            st.dropped += 1;
            doomed.push((seq, item.lane));
            let error = format!("upload queue over {limit} bytes; oldest dropped");
            tracing::warn!(
                "dropped queued {} {seq} ({}): {error}",
                item.lane.as_str(),
                item.file
            );
            st.notices
                .push(notice(UploadState::Dropped, &item, Some(&error)));
        }
        doomed
    }

    /// Deletes the files of items already out of the index. Blocking.
    fn remove_all(&self, doomed: Doomed) {
        for (seq, lane) in doomed {
            self.queue.remove(seq, lane);
        }
    }

    /// The oldest item of a lane that may be tried now, or when to look again.
    /// Expired items met on the way are given up. Blocking (it may delete).
    fn next_ready(&self) -> Next {
        let mut st = self.lock();
        let now = Instant::now();
        let wall = unix_secs(SystemTime::now());
        let max_age = self.config.max_age.as_secs_f64();
        let mut wait: Option<Instant> = None;
        let mut expired = Vec::new();
        let mut chosen = None;
        for lane in Lane::ALL {
            let heads = st.items.iter().filter(|(_, i)| i.lane == lane);
            let mut head = None;
            for (seq, item) in heads {
                if wall - item.created > max_age {
                    expired.push(*seq);
                    continue;
                }
                head = Some((*seq, item.clone()));
                break;
            }
            let Some((seq, item)) = head else { continue };
            match st.backoff[lane.index()].next {
                Some(t) if t > now => wait = Some(wait.map_or(t, |w| w.min(t))),
                _ => {
                    if chosen.as_ref().is_none_or(|(s, _)| seq < *s) {
                        chosen = Some((seq, item));
                    }
                }
            }
        }
        let mut doomed = Vec::new();
        for seq in expired {
            if let Some(item) = st.items.remove(&seq) {
                st.bytes = st.bytes.saturating_sub(item.bytes);
                st.failed += 1;
                doomed.push((seq, item.lane));
                let error = format!("not delivered within {} s; given up", max_age as u64);
                tracing::warn!("upload {seq} ({}) {error}", item.file);
                st.last_error = Some(error.clone());
                st.notices
                    .push(notice(UploadState::Failed, &item, Some(&error)));
            }
        }
        let next = if !st.notices.is_empty() {
            // Publish them before anything else; the loop comes straight back.
            Next::Wait(Some(now))
        } else if let Some((seq, item)) = chosen {
            st.in_flight = Some(seq);
            Next::Send(seq, item)
        } else {
            Next::Wait(wait)
        };
        drop(st);
        self.remove_all(doomed);
        next
    }

    /// One request for one item.
    async fn attempt(&self, seq: u64, item: &Item) -> Outcome {
        let meta = match self.queue.read_meta(seq, item.lane).await {
            Ok(m) => m,
            Err(e) => return Outcome::Permanent(e),
        };
        let event = serde_json::to_vec(&meta.event).unwrap_or_default();
        let jpeg = match item.lane {
            Lane::Frame => match self.queue.read_jpeg(seq).await {
                Ok(j) => Some(j),
                Err(e) => return Outcome::Permanent(e),
            },
            Lane::Event => None,
        };
        let clip = meta
            .clip
            .as_deref()
            .map(|name| (name, self.queue.clip_path(seq, name)));
        self.sender
            .send(item.lane, &item.file, event, jpeg, clip)
            .await
    }

    /// Applies an outcome: delete, reschedule, or move to `failed/`. Blocking;
    /// the counters change under the lock, the files after it.
    fn settle(&self, seq: u64, item: &Item, outcome: Outcome) {
        let mut st = self.lock();
        st.in_flight = None;
        let backoff = &mut st.backoff[item.lane.index()];
        match outcome {
            Outcome::Sent => {
                *backoff = Backoff {
                    next: None,
                    delay: self.config.retry_start,
                };
                if st.items.remove(&seq).is_some() {
                    st.bytes = st.bytes.saturating_sub(item.bytes);
                }
                st.sent += 1;
                st.last_success_ts = Some(round3(unix_secs(SystemTime::now())));
                tracing::debug!("uploaded {} {seq} ({})", item.lane.as_str(), item.file);
                st.notices.push(notice(UploadState::Sent, item, None));
                drop(st);
                self.queue.remove(seq, item.lane);
            }
            Outcome::Retry { error, after } => {
                let jittered = jitter(backoff.delay);
                let wait = match after {
                    Some(a) => a.min(MAX_RETRY_AFTER).max(jittered),
                    None => jittered,
                };
                backoff.next = Some(Instant::now() + wait);
                backoff.delay = (backoff.delay * 2).min(self.config.retry_max);
                tracing::warn!(
                    "{} upload failed, retrying in {:.1} s: {error}",
                    item.lane.as_str(),
                    wait.as_secs_f64()
                );
                st.last_error = Some(error);
            }
            Outcome::Permanent(error) => {
                if st.items.remove(&seq).is_some() {
                    st.bytes = st.bytes.saturating_sub(item.bytes);
                }
                st.failed += 1;
                st.notices
                    .push(notice(UploadState::Failed, item, Some(&error)));
                st.last_error = Some(error.clone());
                drop(st);
                let kept = self.queue.move_to_failed(seq, item.lane);
                tracing::error!(
                    "{} upload {seq} ({}) rejected, kept in {}: {error}",
                    item.lane.as_str(),
                    item.file,
                    if kept {
                        "uploads/failed"
                    } else {
                        "uploads/pending (move failed)"
                    }
                );
            }
        }
    }
}

/// What the worker does next.
enum Next {
    Send(u64, Item),
    /// Sleep until then (or until woken); `None`: until woken.
    Wait(Option<Instant>),
}

/// Unpredictable enough for jitter (not a secret): std's per-process random
/// hash keys over a counter and the clock. Saves a dependency.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Between half and all of `delay`, so cameras that lost the same receiver do
/// not all come back in the same second.
fn jitter(delay: Duration) -> Duration {
    let fraction = 0.5 + (random_u64() % 1000) as f64 / 2000.0;
    delay.mul_f64(fraction)
}

fn notice(state: UploadState, item: &Item, error: Option<&str>) -> UploadNotice {
    UploadNotice {
        state,
        kind: item.lane.as_str(),
        file: (!item.file.is_empty()).then(|| item.file.clone()),
        error: error.map(str::to_string),
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_keeps_its_shape() {
        let status = UploadStatus {
            dropped: 1,
            failed: 2,
            last_error: Some("HTTP 503".into()),
            last_success_ts: None,
            queued: 3,
            queued_bytes: 4096,
            retry_in_s: Some(1.5),
            sent: 7,
        };
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"dropped":1,"failed":2,"last_error":"HTTP 503","last_success_ts":null,"queued":3,"queued_bytes":4096,"retry_in_s":1.5,"sent":7}"#
        );
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(5) && d <= Duration::from_secs(10));
        }
    }
}
