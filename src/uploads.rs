//! Off-site copies of triggered frames: a durable upload queue and its worker.
//!
//! A stolen or burnt camera takes its SD card with it, so every motion frame
//! (and, optionally, every manual snapshot) is also POSTed to a receiver
//! elsewhere, as `multipart/form-data` with the JPEG in field `image`
//! (`frame-<unix ts>.jpg`, `image/jpeg`) and the event JSON in field `event`
//! (`application/json`), with `Authorization: Bearer <token>` when a token is
//! set. An optional webhook gets the event JSON alone, for Home Assistant
//! automations or ntfy-like services.
//!
//! # Nothing lost
//! [`Uploader::enqueue_frame`] writes the item to
//! `<data-dir>/uploads/pending/<seq>-<kind>.json` (plus `<seq>-frame.jpg` for
//! frames) before it returns: each file is written under a `.tmp-*` name,
//! synced, renamed, and the folder synced; the `.json` is renamed last, so it
//! marks a complete item. An item leaves `pending/` only after a 2xx answer.
//! A crash or `kill -9` at any point leaves either a complete item (sent after
//! the restart) or stray temporary files (removed by [`Uploader::open`]). The
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

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::events::EventBus;
use crate::frame::unix_secs;
use crate::redact::Redactor;

/// Prefix of temporary files; [`Uploader::open`] removes them, since only a
/// crash mid-write leaves one behind.
const TMP_PREFIX: &str = ".tmp-";

/// Version of the item file format, so a later lookout can read old queues.
const ITEM_VERSION: u64 = 1;

/// Longest wait a `Retry-After` may impose; a receiver asking for more is
/// retried after this anyway, so a typo on its side cannot park the queue.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Upload settings, from flags or the TOML file.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadConfig {
    /// Receiver of frames (`multipart/form-data` POST); `http` or `https`.
    pub url: Option<String>,
    /// Bearer token sent to `url` (never to the webhook, a different service).
    pub token: Option<String>,
    /// PEM file with the CA(s) to trust instead of the public roots, for a
    /// self-hosted receiver with its own CA. The public roots are then not
    /// trusted at all (this is pinning, not adding).
    pub ca_file: Option<PathBuf>,
    /// Receiver of the event JSON alone (`application/json` POST).
    pub webhook_url: Option<String>,
    /// Also upload manual snapshots (and call the webhook for them).
    pub on_manual: bool,
    /// Items older than this are given up (dropped, counted as failed).
    pub max_age: Duration,
    /// Bound of `pending/`, in MiB; the oldest items go first.
    pub queue_mb: u64,
    /// Exact bound in bytes; overrides `queue_mb` when set (tests, tiny
    /// devices).
    pub queue_bytes: Option<u64>,
    /// First retry delay, doubled after each failure.
    pub retry_start: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Longest one request may take, so a receiver that accepts the
    /// connection and then hangs cannot stall the queue.
    pub request_timeout: Duration,
}

impl Default for UploadConfig {
    /// Nothing to send to; 7 days, 256 MiB, 1 s doubling to 5 min, 60 s per
    /// request.
    fn default() -> Self {
        UploadConfig {
            url: None,
            token: None,
            ca_file: None,
            webhook_url: None,
            on_manual: false,
            max_age: Duration::from_secs(7 * 86_400),
            queue_mb: 256,
            queue_bytes: None,
            retry_start: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl UploadConfig {
    /// Whether there is anywhere to send to; when not, don't open an
    /// [`Uploader`] at all.
    pub fn enabled(&self) -> bool {
        self.url.is_some() || self.webhook_url.is_some()
    }

    /// The same settings with another backoff (tests use milliseconds).
    pub fn with_backoff(mut self, start: Duration, max: Duration) -> Self {
        self.retry_start = start;
        self.retry_max = max.max(start);
        self
    }

    /// The queue bound in bytes.
    pub fn queue_limit(&self) -> u64 {
        self.queue_bytes
            .unwrap_or_else(|| self.queue_mb.saturating_mul(1024 * 1024))
    }
}

/// Why the uploader could not start or queue an item.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// A receiver URL is not an absolute `http(s)` URL.
    #[error("invalid upload URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (it may hold a secret, but the user typed it).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot set up the upload client: {0}")]
    Client(String),
    /// The file system refused (queue folder, item files).
    #[error("{what}: {err}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        err: io::Error,
    },
}

impl UploadError {
    fn io(what: impl Into<String>, err: io::Error) -> UploadError {
        UploadError::Io {
            what: what.into(),
            err,
        }
    }
}

/// The two kinds of items, each with its own receiver and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// A JPEG plus event for `url`.
    Frame,
    /// The event JSON alone for `webhook_url`.
    Event,
}

impl Lane {
    const ALL: [Lane; 2] = [Lane::Frame, Lane::Event];

    /// The `<kind>` in file names.
    fn as_str(self) -> &'static str {
        match self {
            Lane::Frame => "frame",
            Lane::Event => "event",
        }
    }

    fn from_str(s: &str) -> Option<Lane> {
        match s {
            "frame" => Some(Lane::Frame),
            "event" => Some(Lane::Event),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Lane::Frame => 0,
            Lane::Event => 1,
        }
    }
}

/// What the worker knows about a pending item without reading it.
#[derive(Debug, Clone)]
struct Item {
    lane: Lane,
    /// When it was queued, Unix seconds (for `max_age`).
    created: f64,
    /// `frame-<ts>.jpg`, the name shown in events and to the receiver.
    file: String,
    /// Bytes on disk (both files), for the queue bound.
    bytes: u64,
}

/// Retry state of one lane.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    /// Not before this.
    next: Option<Instant>,
    /// The delay after the next failure (before jitter).
    delay: Duration,
}

/// Counters and queue index, behind one lock (never held across an await).
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
    notices: Vec<Value>,
}

/// The outcome of one attempt.
#[derive(Debug)]
enum Outcome {
    Sent,
    /// Try again later, not before `after` if the receiver said so.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Never try again; keep the evidence in `failed/`.
    Permanent(String),
}

/// The upload queue and its worker. Open one per data directory.
pub struct Uploader {
    config: UploadConfig,
    pending: PathBuf,
    failed: PathBuf,
    client: reqwest::Client,
    state: Mutex<State>,
    /// Serialises enqueues, so sequence numbers reach the index in order and
    /// the worker never sends 6 before 5 appears.
    write_lock: Mutex<()>,
    wake: Notify,
    tmp_seq: AtomicU64,
    /// Hides the receivers' URLs (a webhook's path is its secret) and the
    /// token in every error that is logged, stored or published.
    redactor: Redactor,
}

impl Uploader {
    /// Opens the queue folder (creating it), removes stale temp files, counts
    /// what is pending. Blocking.
    ///
    /// Fails on a bad URL or CA file, so a typo shows at start-up rather than
    /// as an endless retry.
    pub fn open(data_dir: &Path, config: UploadConfig) -> Result<Arc<Uploader>, UploadError> {
        for url in [&config.url, &config.webhook_url].into_iter().flatten() {
            check_url(url)?;
        }
        if config.token.is_some()
            && config
                .url
                .as_deref()
                .is_some_and(|u| u.starts_with("http:"))
        {
            tracing::warn!("upload token is sent over plain http; use https off the local network");
        }
        let client = build_client(&config)?;
        let urls: Vec<&str> = [&config.url, &config.webhook_url]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let redactor = Redactor::for_uploads(&urls, config.token.as_deref());
        let root = data_dir.join("uploads");
        let pending = root.join("pending");
        let failed = root.join("failed");
        for dir in [&pending, &failed] {
            fs::create_dir_all(dir)
                .map_err(|e| UploadError::io(format!("cannot create {}", dir.display()), e))?;
        }
        let (items, max_pending) = scan_pending(&pending, &failed)?;
        let max_failed = max_seq_in(&failed);
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
                next_seq: max_pending.max(max_failed) + 1,
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
            pending,
            failed,
            client,
            write_lock: Mutex::new(()),
            wake: Notify::new(),
            tmp_seq: AtomicU64::new(0),
            redactor,
        };
        {
            let mut st = uploader.lock();
            uploader.enforce_bound(&mut st, None);
        }
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
            match self.next_ready() {
                Next::Send(seq, item) => {
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
                Next::Wait(until) => {
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
            }
        }
        // What was decided before the stop is still announced.
        self.publish_notices(&events).await;
    }

    /// Publishes the `upload` events decided since the last call.
    async fn publish_notices(&self, events: &EventBus) {
        let notices = std::mem::take(&mut self.lock().notices);
        for data in notices {
            events.publish_or_log("upload", crate::cam::obj(data)).await;
        }
    }

    /// The `/status` `uploads` object.
    pub fn status(&self) -> Value {
        let st = self.lock();
        let now = Instant::now();
        let retry_in = st
            .backoff
            .iter()
            .filter_map(|b| b.next)
            .min()
            .map(|t| round1(t.saturating_duration_since(now).as_secs_f64()));
        json!({
            "queued": st.items.len(),
            "queued_bytes": st.bytes,
            "sent": st.sent,
            "failed": st.failed,
            "dropped": st.dropped,
            "last_error": st.last_error,
            "last_success_ts": st.last_success_ts,
            "retry_in_s": retry_in,
        })
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
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        let _write = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let seq = {
            let mut st = self.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            seq
        };
        let meta = json!({
            "v": ITEM_VERSION,
            "kind": lane.as_str(),
            "created": created,
            "file": file,
            "event": event,
        });
        let meta = serde_json::to_vec(&meta).unwrap_or_default();
        let what = || format!("cannot queue upload {seq}");
        let mut bytes = meta.len() as u64;
        if let Some(jpeg) = jpeg {
            self.write_atomic(&jpg_name(seq), jpeg)
                .map_err(|e| UploadError::io(what(), e))?;
            bytes += jpeg.len() as u64;
        }
        if let Err(e) = self.write_atomic(&json_name(seq, lane), &meta) {
            let _ = fs::remove_file(self.pending.join(jpg_name(seq)));
            return Err(UploadError::io(what(), e));
        }
        {
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
            self.enforce_bound(&mut st, Some(seq));
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Writes `data` to `pending/<name>` so that the name never holds a
    /// partial file: temp file, fsync, rename, fsync of the folder.
    fn write_atomic(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let (tmp, mut file) = self.create_tmp()?;
        let written = file.write_all(data).and_then(|()| file.sync_all());
        drop(file);
        let placed = written.and_then(|()| fs::rename(&tmp, self.pending.join(name)));
        if let Err(e) = placed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.pending)
    }

    fn create_tmp(&self) -> io::Result<(PathBuf, File)> {
        loop {
            let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
            let path = self
                .pending
                .join(format!("{TMP_PREFIX}{}-{n}", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => return Ok((path, f)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops the oldest items while the queue is over its bound, sparing
    /// `keep` (the item just queued) and the one being sent.
    fn enforce_bound(&self, st: &mut State, keep: Option<u64>) {
        let limit = self.config.queue_limit();
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
            self.remove_files(seq, item.lane);
            let error = format!("upload queue over {limit} bytes; oldest dropped");
            tracing::warn!(
                "dropped queued {} {seq} ({}): {error}",
                item.lane.as_str(),
                item.file
            );
            st.notices.push(notice("dropped", &item, Some(&error)));
        }
    }

    fn remove_files(&self, seq: u64, lane: Lane) {
        // JSON first: without it the item no longer exists, and a leftover
        // JPEG is an orphan that the next open removes.
        let _ = fs::remove_file(self.pending.join(json_name(seq, lane)));
        if lane == Lane::Frame {
            let _ = fs::remove_file(self.pending.join(jpg_name(seq)));
        }
        let _ = sync_dir(&self.pending);
    }

    /// The oldest item of a lane that may be tried now, or when to look again.
    /// Expired items met on the way are given up.
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
        for seq in expired {
            if let Some(item) = st.items.remove(&seq) {
                st.bytes = st.bytes.saturating_sub(item.bytes);
                st.failed += 1;
                self.remove_files(seq, item.lane);
                let error = format!("not delivered within {} s; given up", max_age as u64);
                tracing::warn!("upload {seq} ({}) {error}", item.file);
                st.last_error = Some(error.clone());
                st.notices.push(notice("failed", &item, Some(&error)));
            }
        }
        if !st.notices.is_empty() {
            // Publish them before anything else; the loop comes straight back.
            return Next::Wait(Some(now));
        }
        match chosen {
            Some((seq, item)) => {
                st.in_flight = Some(seq);
                Next::Send(seq, item)
            }
            None => Next::Wait(wait),
        }
    }

    /// One request for one item.
    async fn attempt(&self, seq: u64, item: &Item) -> Outcome {
        let read = |name: String| {
            let path = self.pending.join(name);
            async move { tokio::fs::read(&path).await }
        };
        let meta = match read(json_name(seq, item.lane)).await {
            Ok(m) => m,
            Err(e) => return Outcome::Permanent(format!("queued item unreadable: {e}")),
        };
        let event = match serde_json::from_slice::<Value>(&meta) {
            Ok(v) => v.get("event").cloned().unwrap_or(Value::Null),
            Err(e) => return Outcome::Permanent(format!("queued item corrupt: {e}")),
        };
        let event = serde_json::to_vec(&event).unwrap_or_default();
        let request = match item.lane {
            Lane::Frame => {
                let Some(url) = &self.config.url else {
                    return Outcome::Permanent("no upload url configured".into());
                };
                let jpeg = match read(jpg_name(seq)).await {
                    Ok(j) => j,
                    Err(e) => return Outcome::Permanent(format!("queued frame unreadable: {e}")),
                };
                let (content_type, body) = multipart_body(&item.file, &jpeg, &event);
                let mut r = self
                    .client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(body);
                if let Some(token) = &self.config.token {
                    r = r.bearer_auth(token);
                }
                r
            }
            Lane::Event => {
                let Some(url) = &self.config.webhook_url else {
                    return Outcome::Permanent("no webhook url configured".into());
                };
                self.client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(event)
            }
        };
        match request.send().await {
            Ok(resp) => classify(&resp),
            Err(e) => Outcome::Retry {
                error: error_chain(&e),
                after: None,
            },
        }
    }

    /// Applies an outcome: delete, reschedule, or move to `failed/`. Blocking.
    fn settle(&self, seq: u64, item: &Item, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Retry { error, after } => Outcome::Retry {
                error: self.redactor.apply(&error),
                after,
            },
            Outcome::Permanent(error) => Outcome::Permanent(self.redactor.apply(&error)),
            sent => sent,
        };
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
                self.remove_files(seq, item.lane);
                st.sent += 1;
                st.last_success_ts = Some(round3(unix_secs(SystemTime::now())));
                tracing::debug!("uploaded {} {seq} ({})", item.lane.as_str(), item.file);
                st.notices.push(notice("sent", item, None));
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
                let kept = self.move_to_failed(seq, item.lane);
                st.failed += 1;
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
                st.notices.push(notice("failed", item, Some(&error)));
                st.last_error = Some(error);
            }
        }
    }

    /// Moves an item's files to `failed/` (JPEG first, so `pending/` never
    /// holds a JSON without its JPEG). Returns whether it worked; if not, the
    /// files stay in `pending/` and come back at the next open, which is
    /// better than losing them.
    fn move_to_failed(&self, seq: u64, lane: Lane) -> bool {
        let mut names = Vec::new();
        if lane == Lane::Frame {
            names.push(jpg_name(seq));
        }
        names.push(json_name(seq, lane));
        let mut ok = true;
        for name in names {
            match fs::rename(self.pending.join(&name), self.failed.join(&name)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!("cannot move {name} to uploads/failed: {e}");
                    ok = false;
                }
            }
        }
        let _ = sync_dir(&self.failed);
        let _ = sync_dir(&self.pending);
        ok
    }
}

/// What the worker does next.
enum Next {
    Send(u64, Item),
    /// Sleep until then (or until woken); `None`: until woken.
    Wait(Option<Instant>),
}

fn json_name(seq: u64, lane: Lane) -> String {
    format!("{seq:020}-{}.json", lane.as_str())
}

fn jpg_name(seq: u64) -> String {
    format!("{seq:020}-frame.jpg")
}

/// Parses `<seq>-<kind>.<ext>`.
fn parse_name(name: &str) -> Option<(u64, Lane, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let (seq, kind) = stem.split_once('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((seq.parse().ok()?, Lane::from_str(kind)?, ext))
}

/// Reads `pending/`: removes temp files and JPEGs without their JSON (both
/// only left by a crash mid-write), moves unreadable items to `failed/`, and
/// returns the index plus the highest sequence number seen.
fn scan_pending(pending: &Path, failed: &Path) -> Result<(BTreeMap<u64, Item>, u64), UploadError> {
    let entries = fs::read_dir(pending)
        .map_err(|e| UploadError::io(format!("cannot list {}", pending.display()), e))?;
    let mut jsons = BTreeMap::new();
    let mut jpgs = BTreeMap::new();
    let mut max = 0;
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        if name.starts_with(TMP_PREFIX) {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        let Some((seq, lane, ext)) = parse_name(&name) else {
            continue;
        };
        max = max.max(seq);
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        match (lane, ext) {
            (_, "json") => {
                jsons.insert(seq, (lane, size));
            }
            (Lane::Frame, "jpg") => {
                jpgs.insert(seq, size);
            }
            _ => {}
        }
    }
    let mut items = BTreeMap::new();
    for (seq, (lane, size)) in jsons {
        let jpg = jpgs.remove(&seq);
        let path = pending.join(json_name(seq, lane));
        let meta = fs::read(&path)
            .ok()
            .and_then(|m| serde_json::from_slice::<Value>(&m).ok());
        let complete = lane == Lane::Event || jpg.is_some();
        let Some(meta) = meta.filter(|_| complete) else {
            tracing::error!(
                "queued upload {} is incomplete; moved to uploads/failed",
                path.display()
            );
            for name in [json_name(seq, lane), jpg_name(seq)] {
                let _ = fs::rename(pending.join(&name), failed.join(&name));
            }
            continue;
        };
        items.insert(
            seq,
            Item {
                lane,
                created: meta.get("created").and_then(Value::as_f64).unwrap_or(0.0),
                file: meta
                    .get("file")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                bytes: size + jpg.unwrap_or(0),
            },
        );
    }
    for seq in jpgs.keys() {
        // A JPEG whose JSON was never renamed in: enqueue had not returned.
        let _ = fs::remove_file(pending.join(jpg_name(*seq)));
    }
    let _ = sync_dir(pending);
    Ok((items, max))
}

/// The highest sequence number in a folder, so new items never reuse a name
/// that `failed/` already holds.
fn max_seq_in(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| parse_name(n).map(|p| p.0))
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn check_url(url: &str) -> Result<(), UploadError> {
    let bad = |reason: &str| UploadError::InvalidUrl {
        // A webhook's path is its secret: the error names the endpoint only.
        url: crate::redact::endpoint(url),
        reason: reason.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        _ => Err(bad("only http and https are supported")),
    }
}

/// The HTTP client: rustls with the webpki roots, or only the pinned CA.
/// Redirects are not followed: a redirected POST turns into a GET and would
/// look like a success while the frame went nowhere.
fn build_client(config: &UploadConfig) -> Result<reqwest::Client, UploadError> {
    crate::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10).min(config.request_timeout))
        .timeout(config.request_timeout)
        .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| UploadError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificate in it".into()));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| UploadError::Client(error_chain(&e)))
}

/// 2xx sent; 408, 429 and 5xx retried (with `Retry-After` seconds); anything
/// else permanent.
fn classify(resp: &reqwest::Response) -> Outcome {
    let status = resp.status();
    if status.is_success() {
        return Outcome::Sent;
    }
    let error = format!("receiver answered {status}");
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Outcome::Retry { error, after }
    } else {
        Outcome::Permanent(error)
    }
}

/// `reqwest`'s top error says little ("error sending request"); its sources
/// say why (refused, certificate, timeout).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Builds the `multipart/form-data` body: `image` (the JPEG) then `event`
/// (the JSON). Returns the Content-Type header value and the body.
///
/// The boundary is random and checked against both payloads, so a JPEG that
/// happens to contain it cannot end its part early.
pub fn multipart_body(file: &str, jpeg: &[u8], event_json: &[u8]) -> (String, Vec<u8>) {
    let boundary = loop {
        let b = format!("lookout-{:016x}{:016x}", random_u64(), random_u64());
        if !contains(jpeg, b.as_bytes()) && !contains(event_json, b.as_bytes()) {
            break b;
        }
    };
    // The file name is ours (`frame-<digits>.jpg`), but strip quotes and line
    // breaks anyway so an odd name cannot break the header.
    let file: String = file
        .chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\'))
        .collect();
    let mut body = Vec::with_capacity(jpeg.len() + event_json.len() + 512);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        format!("Content-Disposition: form-data; name=\"image\"; filename=\"{file}\"\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(b"Content-Type: image/jpeg\r\n\r\n");
    body.extend_from_slice(jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    body.extend_from_slice(b"Content-Disposition: form-data; name=\"event\"\r\n");
    body.extend_from_slice(b"Content-Type: application/json\r\n\r\n");
    body.extend_from_slice(event_json);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Unpredictable enough for a boundary and for jitter (neither is a secret):
/// std's per-process random hash keys over a counter and the clock. Saves a
/// dependency.
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

fn notice(state: &str, item: &Item, error: Option<&str>) -> Value {
    let file = (!item.file.is_empty()).then(|| item.file.clone());
    json!({
        "state": state,
        "kind": item.lane.as_str(),
        "file": file,
        "error": error,
    })
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
    fn names_round_trip_and_sort() {
        assert_eq!(
            parse_name(&json_name(7, Lane::Event)),
            Some((7, Lane::Event, "json"))
        );
        assert_eq!(parse_name(&jpg_name(12)), Some((12, Lane::Frame, "jpg")));
        assert!(json_name(9, Lane::Frame) < json_name(10, Lane::Frame));
        assert_eq!(parse_name(".tmp-1-2"), None);
        assert_eq!(parse_name("+1-frame.json"), None);
        assert_eq!(parse_name("1-other.json"), None);
    }

    #[test]
    fn multipart_body_has_both_parts() {
        let (ct, body) = multipart_body("frame-1.jpg", b"\xff\xd8jpeg\xff\xd9", b"{\"ts\":1}");
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert!(text.contains(
            "name=\"image\"; filename=\"frame-1.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        ));
        assert!(
            text.contains("name=\"event\"\r\nContent-Type: application/json\r\n\r\n{\"ts\":1}\r\n")
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
