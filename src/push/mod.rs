//! Notifications on the phone: one per incident, with the picture, by Web
//! Push (RFC 8030, 8291, 8292; the dashboard installed as an app) and ntfy.
//!
//! The notifier listens to the event bus like any other consumer (events
//! flow one way: camera -> bus -> here), keeps the incidents in the store
//! with their pictures, decides with the camera's alert rules
//! ([`crate::alert`]) and [`incident::Book`], and delivers through a durable
//! outbox ([`deliver`]). Snoozing a camera is its one command.
//!
//! # Layout
//! `incident.rs` decides (pure), `message.rs` words it, `db.rs` keeps it,
//! `deliver.rs` sends it, `webpush.rs` and `ntfy.rs` speak to each service,
//! `config.rs` and `error.rs` hold the settings and errors.

pub mod config;
pub mod db;
pub mod deliver;
pub mod error;
pub mod incident;
pub mod message;
pub mod ntfy;
pub mod webpush;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::alert::{Alerts, NotifyAt};
use crate::camera::Camera;
use crate::events::{Event, EventBus, EventKind};
pub use config::PushConfig;
pub use db::{IncidentRow, NewSubscription, SubscriptionRow};
use deliver::{now, Courier};
pub use error::PushError;
use incident::{Book, Rules, Target};
use message::Message;
use ntfy::NTFY;

/// Longest snooze: a week (longer is turning notifications off).
pub const MAX_SNOOZE_MINUTES: u64 = 7 * 24 * 60;
/// Most phones registered at once (each costs a request per incident).
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// The notifications' part of `/status` (keys sorted, as the rest).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushStatus {
    /// Notifications given up (refused for good, or too old), since start.
    pub failed: u64,
    /// Subscriptions removed because their push service said they are gone.
    pub gone: u64,
    /// The last failure's reason, until a later delivery.
    pub last_error: Option<String>,
    /// Unix seconds of the last delivery.
    pub last_success_ts: Option<f64>,
    /// Whether ntfy is configured.
    pub ntfy: bool,
    /// Notifications waiting in the outbox.
    pub queued: u64,
    /// Failed attempts that will be tried again, since start.
    pub retries: u64,
    /// Delivered, since start (both channels).
    pub sent: u64,
    /// Phones registered for Web Push.
    pub subscriptions: usize,
}

/// The counts `/metrics` shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct PushCounts {
    /// Delivered by Web Push.
    pub sent_webpush: u64,
    /// Delivered by ntfy.
    pub sent_ntfy: u64,
    /// Given up.
    pub failed: u64,
    /// Retried.
    pub retries: u64,
    /// Waiting.
    pub queued: u64,
}

/// The `snooze` event.
#[derive(Debug, Clone, Serialize)]
pub struct SnoozeChange {
    /// The camera.
    pub camera: String,
    /// Until when, Unix seconds (`None`: lifted).
    pub snoozed_until: Option<f64>,
}

/// The `notify` event: an incident was decided.
#[derive(Debug, Clone, Serialize)]
pub struct Notice<'a> {
    /// The camera.
    pub camera: &'a str,
    /// The incident (its `motion` event's id).
    pub incident: i64,
    /// `person` or `motion`.
    pub kind: &'a str,
    /// `sent`, `snoozed` or `merged`.
    pub status: &'a str,
    /// The notification's words, tag, link and picture.
    pub title: &'a str,
    /// Its body.
    pub body: &'a str,
    /// Its tag.
    pub tag: &'a str,
    /// Its link.
    pub url: &'a str,
    /// Its picture.
    pub image: Option<&'a str>,
}

/// The notifier. One per server.
pub struct Notifier {
    config: PushConfig,
    db: db::Db,
    events: EventBus,
    courier: Arc<Courier>,
    book: tokio::sync::Mutex<Book>,
    /// Snoozed cameras: until when, Unix seconds.
    snoozes: Mutex<HashMap<String, f64>>,
    /// The subscriptions and ntfy, read from the store when `None`.
    targets: Mutex<Option<Vec<Target>>>,
    /// Phones registered, as last read.
    subscriptions: std::sync::atomic::AtomicUsize,
}

impl Notifier {
    /// Opens the notifier: its tables, its VAPID key (made at first start)
    /// and the cameras' snoozes. Fails on a bad ntfy URL, so a typo shows at
    /// start-up.
    pub async fn open(
        data_dir: &Path,
        config: PushConfig,
        events: EventBus,
        cameras: &[String],
    ) -> Result<Arc<Notifier>, PushError> {
        if let Some(url) = &config.ntfy_url {
            check_url(url, "ntfy URL")?;
        }
        if let Some(url) = &config.public_url {
            check_url(url, "public URL")?;
        }
        let dir = data_dir.to_path_buf();
        let vapid = tokio::task::spawn_blocking(move || webpush::Vapid::load_or_create(&dir))
            .await
            .map_err(|e| PushError::Config(format!("key task failed: {e}")))??;
        // A contact push services refuse would fail every push: say so now.
        vapid
            .authorization("https://push.example/", &config.contact, now() as u64)
            .map_err(|e| PushError::Config(format!("push contact {:?}: {e}", config.contact)))?;
        let db = db::Db::open(events.store().clone()).await?;
        let mut book = Book::default();
        for (camera, ts) in db.last_notified().await? {
            book.notified_at(&camera, ts);
        }
        let mut snoozes = HashMap::new();
        for name in cameras {
            let key = snooze_key(name);
            if let Some(until) = events.store().get(&key).await?.and_then(|v| v.parse().ok()) {
                snoozes.insert(name.clone(), until);
            }
        }
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10).min(config.request_timeout))
            .timeout(config.request_timeout)
            .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PushError::Config(format!("HTTP client: {e}")))?;
        let courier = Arc::new(Courier::new(config.clone(), db.clone(), client, vapid));
        Ok(Arc::new(Notifier {
            config,
            db,
            events,
            courier,
            book: tokio::sync::Mutex::new(book),
            snoozes: Mutex::new(snoozes),
            targets: Mutex::new(None),
            subscriptions: Default::default(),
        }))
    }

    /// Listens to `cams`' events and delivers, until `cancel`.
    /// `events` is a subscription to the bus taken before the cameras
    /// started.
    pub async fn run(
        self: Arc<Self>,
        cams: Vec<Arc<Camera>>,
        mut events: tokio::sync::broadcast::Receiver<Arc<Event>>,
        cancel: CancellationToken,
    ) {
        self.targets().await;
        let worker = {
            let courier = self.courier.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move { courier.run(cancel).await })
        };
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = cancel.cancelled() => break,
            };
            match event {
                Ok(event) => self.on_event(&cams, &event).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("notifications fell behind the event bus: {n} events missed");
                }
                Err(RecvError::Closed) => break,
            }
        }
        let _ = worker.await;
    }

    /// The VAPID public key, base64url (the browser's `applicationServerKey`).
    pub fn public_key(&self) -> &str {
        self.courier.public_key()
    }

    /// The settings it runs with.
    pub fn config(&self) -> &PushConfig {
        &self.config
    }

    /// One event from the bus.
    async fn on_event(&self, cams: &[Arc<Camera>], event: &Event) {
        let Some(cam) = event
            .camera
            .as_deref()
            .and_then(|n| cams.iter().find(|c| c.name == n))
        else {
            return;
        };
        let ts = event
            .data
            .get("ts")
            .and_then(Value::as_f64)
            .unwrap_or_else(now);
        match event.kind {
            EventKind::Motion => {
                let Some(id) = event.id else { return };
                let zones: Vec<String> = event
                    .data
                    .get("zones")
                    .and_then(|z| serde_json::from_value(z.clone()).ok())
                    .unwrap_or_default();
                let clip = event
                    .data
                    .get("clip")
                    .and_then(Value::as_str)
                    .map(message::clip_name);
                let picture = picture_of(cam, &event.data).await;
                self.book.lock().await.started(
                    &cam.name,
                    id,
                    ts,
                    zones.clone(),
                    clip.map(String::from),
                );
                let clip_url = event
                    .data
                    .get("clip")
                    .and_then(Value::as_str)
                    .map(String::from);
                if let Err(e) = self
                    .db
                    .add_incident(id, &cam.name, ts, &zones, clip_url, picture)
                    .await
                {
                    tracing::error!("cannot record an incident: {e}");
                }
                self.reached(cam, NotifyAt::Motion, ts).await;
            }
            EventKind::Person => {
                let current = self.book.lock().await.current(&cam.name);
                if let Some(id) = current {
                    let picture = picture_of(cam, &event.data).await;
                    if let Err(e) = self.db.incident_person(id, picture).await {
                        tracing::error!("cannot record an incident's person: {e}");
                    }
                }
                self.reached(cam, NotifyAt::Person, ts).await;
            }
            EventKind::MotionEnd => {
                let duration = event
                    .data
                    .get("duration_s")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let targets = self.targets().await;
                let (current, update) = {
                    let mut book = self.book.lock().await;
                    let current = book.current(&cam.name);
                    (current, book.ended(&cam.name, duration, &targets))
                };
                if let Some(id) = current {
                    if let Err(e) = self.db.incident_ended(id, duration).await {
                        tracing::error!("cannot record an incident's end: {e}");
                    }
                }
                if let Some(update) = update {
                    self.queue_update(update).await;
                }
            }
            EventKind::Clip => {
                let Some(name) = event.data.get("name").and_then(Value::as_str) else {
                    return;
                };
                let targets = self.targets().await;
                let updates = self.book.lock().await.clip_saved(&cam.name, name, &targets);
                for update in updates {
                    self.queue_update(update).await;
                }
            }
            _ => {}
        }
    }

    /// The current incident of `cam` reached `at`: decide, queue, announce.
    async fn reached(&self, cam: &Camera, at: NotifyAt, ts: f64) {
        let settings = cam.cam.settings();
        let rules = Rules {
            alerts: Alerts::new(&settings, cam.check.available()),
            cooldown_s: f64::from(settings.notify_cooldown_s),
            snoozed: self.snoozed_until(&cam.name).is_some(),
        };
        let targets = self.targets().await;
        let Some(send) = self
            .book
            .lock()
            .await
            .reached(&cam.name, at, ts, rules, &targets)
        else {
            return;
        };
        let message = Message::first(&send.incident, send.kind, &self.config);
        let outbox = self.outbox(&send.targets, &message);
        let verdict = send.decided.map(incident::Verdict::as_str);
        if let Err(e) = self
            .db
            .decide(send.incident.id, verdict, outbox, now())
            .await
        {
            tracing::error!("cannot queue a notification: {e}");
        }
        self.courier.wake();
        if let Some(status) = verdict {
            tracing::info!("incident {} on {}: {status}", send.incident.id, cam.name);
            let notice = Notice {
                camera: &cam.name,
                incident: send.incident.id,
                kind: &message.kind,
                status,
                title: &message.title,
                body: &message.body,
                tag: &message.tag,
                url: &message.url,
                image: message.image.as_deref(),
            };
            self.events.publish_or_log(EventKind::Notify, &notice).await;
        }
    }

    /// Queues the update of a finished incident.
    async fn queue_update(&self, update: incident::Update) {
        let message = Message::finished(&update.incident, &self.config);
        let outbox = self.outbox(&update.targets, &message);
        if let Err(e) = self
            .db
            .decide(update.incident.id, None, outbox, now())
            .await
        {
            tracing::error!("cannot queue a notification update: {e}");
        }
        self.courier.wake();
    }

    /// `(target, message JSON)` rows for `targets`.
    fn outbox(&self, targets: &[String], message: &Message) -> Vec<(String, String)> {
        let json = serde_json::to_string(message).unwrap_or_default();
        targets.iter().map(|t| (t.clone(), json.clone())).collect()
    }

    /// Everyone notifications go to: the subscriptions and ntfy.
    async fn targets(&self) -> Vec<Target> {
        if self.courier.take_targets_changed() {
            self.forget_targets();
        }
        if let Some(t) = crate::sync::lock(&self.targets).clone() {
            return t;
        }
        let mut targets = Vec::new();
        if self.config.ntfy_url.is_some() {
            targets.push(Target {
                id: NTFY.into(),
                cameras: None,
                wants: NotifyAt::Motion,
                updates: false,
            });
        }
        match self.db.subscriptions().await {
            Ok(subs) => targets.extend(subs.into_iter().map(|s| Target {
                id: s.id,
                cameras: s.cameras,
                wants: if s.on == "person" {
                    NotifyAt::Person
                } else {
                    NotifyAt::Motion
                },
                updates: true,
            })),
            Err(e) => tracing::error!("cannot read push subscriptions: {e}"),
        }
        let phones = targets.iter().filter(|t| t.id != NTFY).count();
        self.subscriptions
            .store(phones, std::sync::atomic::Ordering::Relaxed);
        *crate::sync::lock(&self.targets) = Some(targets.clone());
        targets
    }

    /// Reads the subscriptions again at the next incident.
    fn forget_targets(&self) {
        *crate::sync::lock(&self.targets) = None;
    }
}

/// Subscriptions, snoozes, tests and reports: what the web, `/control` and
/// MQTT ask of the notifier.
impl Notifier {
    /// Registers a phone (see `POST /api/push/subscriptions`): validated
    /// before anything is stored. Returns its id.
    pub async fn subscribe(
        &self,
        body: &Value,
        known_cameras: &[String],
    ) -> Result<String, PushError> {
        let invalid = |m: &str| PushError::Invalid(m.to_string());
        let obj = body
            .as_object()
            .ok_or_else(|| invalid("the body must be a JSON object"))?;
        let raw = obj
            .get("subscription")
            .ok_or_else(|| invalid("missing subscription"))?;
        let sub = webpush::parse_subscription(raw, self.config.allow_loopback_http)?;
        let name = match obj.get("name") {
            None | Some(Value::Null) => "phone".to_string(),
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 64 => {
                s.trim().to_string()
            }
            Some(_) => return Err(invalid("name must be a string of 1 to 64 characters")),
        };
        let cameras = match obj.get("cameras") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => {
                let mut names = Vec::new();
                for v in list {
                    let n = v.as_str().ok_or_else(|| invalid("cameras must be names"))?;
                    if !known_cameras.iter().any(|k| k == n) {
                        return Err(PushError::Invalid(format!("no camera named {n:?}")));
                    }
                    names.push(n.to_string());
                }
                Some(names)
            }
            Some(_) => return Err(invalid("cameras must be a list of names or null")),
        };
        let on = match obj.get("on").and_then(Value::as_str) {
            None => "person",
            Some("person") => "person",
            Some("motion") => "motion",
            Some(_) => return Err(invalid("on must be \"person\" or \"motion\"")),
        };
        let existing = self.db.subscriptions().await?;
        if existing.len() >= MAX_SUBSCRIPTIONS
            && !existing.iter().any(|s| s.endpoint == sub.endpoint)
        {
            return Err(PushError::Invalid(format!(
                "at most {MAX_SUBSCRIPTIONS} devices can be registered; remove one first"
            )));
        }
        let stored = serde_json::to_string(&sub).map_err(|e| PushError::Invalid(e.to_string()))?;
        let new = NewSubscription {
            endpoint: sub.endpoint.clone(),
            subscription: stored,
            name,
            cameras,
            on: on.into(),
        };
        let id = self.db.subscribe(new_id(), new, now()).await?;
        self.forget_targets();
        Ok(id)
    }

    /// The registered phones.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, PushError> {
        Ok(self.db.subscriptions().await?)
    }

    /// Removes a phone; whether it was registered.
    pub async fn unsubscribe(&self, id: &str) -> Result<bool, PushError> {
        let gone = self.db.unsubscribe(id).await?;
        self.forget_targets();
        Ok(gone)
    }

    /// Queues a test notification to subscription `id` (all, and ntfy,
    /// when `None`), about `camera`. Returns how many were queued.
    pub async fn test(&self, id: Option<&str>, camera: &str) -> Result<usize, PushError> {
        let targets: Vec<String> = self
            .targets()
            .await
            .into_iter()
            .map(|t| t.id)
            .filter(|t| id.is_none_or(|id| id == t))
            .collect();
        if let Some(id) = id {
            if targets.is_empty() {
                return Err(PushError::Invalid(format!("no subscription {id:?}")));
            }
        }
        let message = Message::test(camera, now(), &self.config);
        self.db
            .queue_test(self.outbox(&targets, &message), now())
            .await?;
        self.courier.wake();
        Ok(targets.len())
    }

    /// Snoozes `camera` for `minutes` (0 lifts it); persists it and tells
    /// every dashboard. Returns until when.
    pub async fn snooze(&self, camera: &str, minutes: u64) -> Result<Option<f64>, PushError> {
        if minutes > MAX_SNOOZE_MINUTES {
            return Err(PushError::Invalid(format!(
                "minutes must be 0 to {MAX_SNOOZE_MINUTES} (a week)"
            )));
        }
        let until = (minutes > 0).then(|| (now() + minutes as f64 * 60.0).round());
        let store = self.events.store();
        match until {
            Some(t) => store.set(&snooze_key(camera), t.to_string()).await?,
            None => store.delete(&snooze_key(camera)).await?,
        }
        {
            let mut s = crate::sync::lock(&self.snoozes);
            match until {
                Some(t) => s.insert(camera.to_string(), t),
                None => s.remove(camera),
            };
        }
        let change = SnoozeChange {
            camera: camera.to_string(),
            snoozed_until: until,
        };
        self.events.publish_or_log(EventKind::Snooze, &change).await;
        Ok(until)
    }

    /// Until when `camera` is snoozed (`None`: it is not, or no longer).
    pub fn snoozed_until(&self, camera: &str) -> Option<f64> {
        let until = crate::sync::lock(&self.snoozes).get(camera).copied()?;
        (until > now()).then_some(until)
    }

    /// Incidents, newest first (see `GET /api/incidents`).
    pub async fn incidents(
        &self,
        camera: Option<String>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<IncidentRow>, PushError> {
        Ok(self.db.incidents(camera, before, limit).await?)
    }

    /// Incident `id`'s picture.
    pub async fn picture(&self, id: i64) -> Result<Option<Vec<u8>>, PushError> {
        Ok(self.db.picture(id).await?)
    }

    /// Retries everything pending now.
    pub async fn flush(&self) {
        if let Err(e) = self.db.due_now(now()).await {
            tracing::error!("notification outbox: {e}");
        }
        self.courier.wake();
    }

    /// The `/status` `notifications` object.
    pub fn status(&self) -> PushStatus {
        let c = self.courier.counters().clone();
        PushStatus {
            failed: c.failed,
            gone: c.gone,
            last_error: c.last_error,
            last_success_ts: c.last_success_ts,
            ntfy: self.config.ntfy_url.is_some(),
            queued: c.queued,
            retries: c.retries,
            sent: c.sent,
            subscriptions: self
                .subscriptions
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The counts for `/metrics`.
    pub fn counts(&self) -> PushCounts {
        let c = self.courier.counters().clone();
        PushCounts {
            sent_webpush: c.sent - c.sent_ntfy,
            sent_ntfy: c.sent_ntfy,
            failed: c.failed,
            retries: c.retries,
            queued: c.queued,
        }
    }
}

impl Book {
    /// The id of `camera`'s incident under way.
    fn current(&self, camera: &str) -> Option<i64> {
        self.current_incident(camera).map(|i| i.id)
    }
}

/// The store key of a camera's snooze.
fn snooze_key(camera: &str) -> String {
    crate::cam::key(camera, "snoozed_until")
}

/// A fresh subscription id: 16 random hex digits.
fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An `http` or `https` URL, or a clear error.
fn check_url(url: &str, what: &str) -> Result<(), PushError> {
    let parsed =
        url::Url::parse(url).map_err(|e| PushError::Config(format!("{what} {url:?}: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        other => Err(PushError::Config(format!(
            "{what} {url:?}: {other}:// is not supported (use https://)"
        ))),
    }
}

/// The picture of an incident at `data`'s event: its snapshot when one was
/// saved, else the camera's latest frame (taken within milliseconds).
async fn picture_of(cam: &Camera, data: &Value) -> Option<Vec<u8>> {
    if let Some(url) = data.get("snapshot").and_then(Value::as_str) {
        let name = url.rsplit('/').next().unwrap_or(url).to_string();
        let snaps = cam.snaps.clone();
        if let Ok(Ok(jpeg)) = tokio::task::spawn_blocking(move || snaps.read(&name)).await {
            return Some(jpeg);
        }
    }
    let frame = cam.cam.latest_frame()?;
    Some(frame.jpeg_async().await.to_vec())
}
