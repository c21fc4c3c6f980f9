//! `Cam`: one camera's core (its frames, source state, settings, trigger
//! counter and snapshots) and the actions on it. What the cameras share (the
//! store, the event bus, uploads) belongs to the [`Hub`](crate::hub::Hub);
//! a camera holds handles to it.
//!
//! Every transport (HTTP, WebSocket, later MQTT) and the motion detector act
//! through these methods, so a change is validated, persisted and announced on
//! the event bus the same way whoever asked for it, and every event a camera
//! publishes carries its `camera` name.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::clips::{ClipParams, Clips, Recorder};
use crate::events::{
    ClipDeleted, Event, EventBus, EventKind, PersonSeen, PublishError, Reset, SnapshotDeleted,
};
use crate::frame::{Frame, FrameSink};
use crate::metrics::CamMetrics;
use crate::motion::person::{PersonCheck, PersonWorker};
use crate::settings::{Settings, SettingsError, SettingsHandle};
use crate::snaps::{SnapError, SnapInfo, Snaps, Trigger};
use crate::source::StatusCell;
use crate::store::{Store, StoreError};
use crate::uploads::Uploader;

/// Store key of the trigger count (before cameras had names; now per
/// camera, see [`Cam::key`]).
const KEY_TRIGGERS: &str = "trigger_count";
/// Store key of the settings changed at run time (likewise).
const KEY_SETTINGS: &str = "settings";
/// Store key of the person count (per camera, see [`Cam::key`]).
const KEY_PERSONS: &str = "person_count";

/// Why a settings change failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The patch is invalid; nothing changed.
    #[error(transparent)]
    Invalid(#[from] SettingsError),
    /// The change could not be saved.
    #[error("cannot save settings: {0}")]
    Store(#[from] StoreError),
}

/// Why a snapshot was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No frame has arrived yet.
    #[error("no frame yet")]
    NoFrame,
    /// Writing failed (disk full, read-only, ...).
    #[error(transparent)]
    Snap(#[from] SnapError),
    /// The blocking task died.
    #[error("snapshot task failed: {0}")]
    Task(String),
}

/// One camera: its state and the actions on it.
pub struct Cam {
    /// Its name (URLs, events, store keys, snapshot folder).
    pub name: String,
    /// The prefix of its routes: empty for the first camera (the seed's
    /// root routes), `/cams/NAME` for the others.
    pub base: String,
    /// The latest frame.
    frames: FrameSink,
    /// Runtime settings.
    settings: SettingsHandle,
    /// Source state for `/status`.
    source_status: StatusCell,
    /// Open `/stream.jpg` viewers.
    viewers: Arc<AtomicUsize>,
    /// Event bus (SSE, history).
    events: EventBus,
    /// Persistent state.
    store: Store,
    /// Snapshot files.
    snaps: Arc<Snaps>,
    /// Clips of motion episodes, and their recording.
    recorder: Arc<Recorder>,
    /// Whether what moved is a person.
    person: PersonCheck,
    /// Upload queue, when uploads or a webhook are configured.
    uploads: Option<Arc<Uploader>>,
    /// Its Prometheus counters (episodes, analysis time, snapshots).
    metrics: CamMetrics,
    /// When the server started.
    started: Instant,
    /// Fires at shutdown; long-lived responses end on it.
    cancel: CancellationToken,
    /// Mirror of the persisted trigger count, for cheap reads.
    triggers: AtomicU64,
    /// When the last motion episode started, Unix milliseconds (0: none
    /// since start), for the overview's "motion 2 min ago".
    last_motion_ms: AtomicU64,
    /// Whether a motion episode is under way (the runner sets it).
    motion_active: AtomicBool,
    /// Serialises count changes so the stored value is always the last one.
    trigger_lock: Mutex<()>,
    /// Serialises settings changes with their persistence, for the same reason.
    settings_lock: Mutex<()>,
}

impl Cam {
    /// Builds the state, loading the trigger count and saved settings from
    /// `store` over `initial` settings. The first camera takes over what a
    /// single-camera data directory kept (counter, settings, history).
    #[allow(clippy::too_many_arguments)]
    pub async fn load(
        name: &str,
        first: bool,
        frames: FrameSink,
        initial: Settings,
        source_status: StatusCell,
        events: EventBus,
        snaps: Snaps,
        clips: Clips,
        person: Option<PersonWorker>,
        uploads: Option<Arc<Uploader>>,
        metrics: CamMetrics,
        cancel: CancellationToken,
    ) -> Result<Cam, StoreError> {
        let store = events.store().clone();
        if first {
            migrate_legacy_state(&store, name).await?;
        }
        let triggers = store
            .get(&key(name, KEY_TRIGGERS))
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let persons = store
            .get(&key(name, KEY_PERSONS))
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let settings = match store.get(&key(name, KEY_SETTINGS)).await? {
            Some(text) => match serde_json::from_str::<Map<String, Value>>(&text) {
                Ok(saved) => initial.merged_leniently(&saved),
                Err(e) => {
                    tracing::warn!("ignoring unreadable saved settings: {e}");
                    initial
                }
            },
            None => initial,
        };
        Ok(Cam {
            name: name.to_string(),
            base: if first {
                String::new()
            } else {
                format!("/cams/{name}")
            },
            frames,
            settings: SettingsHandle::new(settings),
            source_status,
            viewers: Arc::new(AtomicUsize::new(0)),
            events,
            store,
            snaps: Arc::new(snaps),
            recorder: Arc::new(Recorder::new(clips)),
            person: PersonCheck::new(person, persons),
            uploads,
            metrics,
            started: Instant::now(),
            cancel,
            triggers: AtomicU64::new(triggers),
            last_motion_ms: AtomicU64::new(0),
            motion_active: AtomicBool::new(false),
            trigger_lock: Mutex::new(()),
            settings_lock: Mutex::new(()),
        })
    }

    /// The trigger count (motion episodes since the last reset).
    pub fn trigger_count(&self) -> u64 {
        self.triggers.load(Ordering::Relaxed)
    }

    /// Counts one motion episode; persisted before it returns.
    pub async fn add_trigger(&self) -> Result<u64, StoreError> {
        self.metrics.episode();
        let now_ms = (crate::frame::unix_secs(SystemTime::now()) * 1000.0) as u64;
        self.last_motion_ms.store(now_ms, Ordering::Relaxed);
        let _lock = self.trigger_lock.lock().await;
        let n = self.trigger_count() + 1;
        self.store
            .set(&key(&self.name, KEY_TRIGGERS), n.to_string())
            .await?;
        self.triggers.store(n, Ordering::Relaxed);
        Ok(n)
    }

    /// Sets the trigger count to 0 and records the `reset` event, in one
    /// transaction (one trip to the store), then tells every dashboard. On
    /// failure neither is kept and the count stays.
    pub async fn reset_triggers(&self) -> Result<(), PublishError> {
        let _lock = self.trigger_lock.lock().await;
        // Set first, so whoever the event wakes reads 0; put back on failure
        // (no other change can come between: the lock is held).
        let before = self.triggers.swap(0, Ordering::Relaxed);
        let persons_before = self.person.count();
        self.person.set_count(0);
        let state = vec![
            (key(&self.name, KEY_TRIGGERS), "0".to_string()),
            (key(&self.name, KEY_PERSONS), "0".to_string()),
        ];
        let published = self
            .events
            .publish_with_state(EventKind::Reset, &self.stamp(&Reset { count: 0 }), state)
            .await;
        if let Err(e) = published {
            self.triggers.store(before, Ordering::Relaxed);
            self.person.set_count(persons_before);
            return Err(e);
        }
        Ok(())
    }

    /// Validates and applies a settings patch, persists the result and
    /// announces it. On error nothing changes.
    pub async fn apply_settings(&self, patch: &Value) -> Result<Settings, ApplyError> {
        let settings = {
            let _lock = self.settings_lock.lock().await;
            let next = self.settings.get().patched(patch)?;
            let saved = Value::Object(next.to_json()).to_string();
            self.store
                .set(&key(&self.name, KEY_SETTINGS), saved)
                .await?;
            self.settings.replace(next.clone());
            next
        };
        if patch.get("max_snaps").is_some() || patch.get("max_snaps_mb").is_some() {
            let snaps = self.snaps.clone();
            let retention = settings.retention();
            let _ = tokio::task::spawn_blocking(move || snaps.enforce(retention)).await;
        }
        self.events
            .publish_or_log(EventKind::Config, &self.stamp(&self.config_json()))
            .await;
        Ok(settings)
    }

    /// Saves the latest frame as a snapshot and announces it.
    pub async fn save_snapshot(&self, trigger: Trigger) -> Result<SnapInfo, SnapshotError> {
        let frame = self.frames.latest().ok_or(SnapshotError::NoFrame)?;
        self.save_snapshot_of(&frame, trigger).await
    }

    /// Counts an episode with a person and records its `person` event, in
    /// one transaction; `body.count` is set here.
    pub async fn person_seen(&self, mut body: PersonSeen) -> Result<Arc<Event>, PublishError> {
        let _lock = self.trigger_lock.lock().await;
        let n = self.person.count() + 1;
        body.count = n;
        let state = vec![(key(&self.name, KEY_PERSONS), n.to_string())];
        let event = self
            .events
            .publish_with_state(EventKind::Person, &self.stamp(&body), state)
            .await?;
        self.person.set_count(n);
        Ok(event)
    }

    /// Saves `frame` as a snapshot and announces it.
    pub async fn save_snapshot_of(
        &self,
        frame: &Arc<Frame>,
        trigger: Trigger,
    ) -> Result<SnapInfo, SnapshotError> {
        let snaps = self.snaps.clone();
        let retention = self.settings.get().retention();
        let jpeg = frame.jpeg.clone();
        let info = tokio::task::spawn_blocking(move || {
            snaps.save(&jpeg, trigger, SystemTime::now(), retention)
        })
        .await
        .map_err(|e| SnapshotError::Task(e.to_string()))??;
        self.metrics.snapshot(trigger);
        let mut data = self.stamp(&info);
        data.remove("ts");
        let published = self.events.publish(EventKind::Snapshot, &data).await;
        match published {
            Ok(event) if trigger == Trigger::Manual => {
                self.queue_upload(frame.jpeg.clone(), event.data.clone(), true)
                    .await;
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot record snapshot event: {e}"),
        }
        Ok(info)
    }

    /// Tells every dashboard that snapshot `name` is gone.
    pub async fn snapshot_deleted(&self, name: &str) {
        let body = SnapshotDeleted {
            name: name.to_string(),
        };
        self.events
            .publish_or_log(EventKind::SnapshotDeleted, &self.stamp(&body))
            .await;
    }

    /// Tells every dashboard that clip `name` is gone.
    pub async fn clip_deleted(&self, name: &str) {
        let body = ClipDeleted {
            name: name.to_string(),
        };
        self.events
            .publish_or_log(EventKind::ClipDeleted, &self.stamp(&body))
            .await;
    }

    /// Durably queues a frame (with its event) for upload, when uploads are
    /// configured. Never fails the caller: a queue error is logged.
    pub async fn queue_upload(&self, jpeg: bytes::Bytes, event: Value, manual: bool) {
        let Some(up) = self.uploads.clone() else {
            return;
        };
        let queued =
            tokio::task::spawn_blocking(move || up.enqueue_frame(&jpeg, &event, manual)).await;
        match queued {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("cannot queue an upload: {e}"),
            Err(e) => tracing::error!("upload queue task failed: {e}"),
        }
    }

    /// Queues an event for the webhook (no image), when one is configured.
    pub async fn queue_webhook(&self, event: Value) {
        let Some(up) = self.uploads.clone() else {
            return;
        };
        match tokio::task::spawn_blocking(move || up.enqueue_event(&event)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("cannot queue a webhook call: {e}"),
            Err(e) => tracing::error!("upload queue task failed: {e}"),
        }
    }

    /// The `/config` body: settings plus `trigger_count` and `frame_count`
    /// (the seed's state dict).
    pub fn config_body(&self) -> ConfigBody {
        ConfigBody {
            settings: (*self.settings.get()).clone(),
            person_count: self.person.count(),
            trigger_count: self.trigger_count(),
            frame_count: self.frames.count(),
        }
    }

    /// [`Cam::config_body`] as a JSON object (to add `ok` in replies).
    pub fn config_json(&self) -> Map<String, Value> {
        obj(serde_json::to_value(self.config_body()).unwrap_or(Value::Null))
    }

    /// [`Cam::config_json`] with `settings`: those a change just produced.
    /// Its reply shows that change, not one another client made right
    /// after it (the live settings may already be newer).
    pub fn config_json_with(&self, settings: Settings) -> Map<String, Value> {
        let body = ConfigBody {
            settings,
            ..self.config_body()
        };
        obj(serde_json::to_value(body).unwrap_or(Value::Null))
    }

    /// The `/status` body (also the WebSocket `status` reply).
    pub fn status(&self) -> Status {
        let source = crate::sync::lock(&self.source_status).clone();
        let triggers = self.trigger_count();
        Status {
            cameras: None,
            clips: self.recorder.status(),
            event_subscribers: self.events.subscribers(),
            mqtt: None,
            frames: self.frames.count(),
            person: self.person.status(&self.settings.get()),
            person_count: self.person.count(),
            source: SourceReport {
                last_frame_age_ms: source.last_frame_age_ms(),
                status: source,
            },
            threshold: self.settings.get().threshold,
            trigger_count: triggers,
            triggers,
            uploads: self.uploads.as_ref().map(|u| u.status()),
            uptime_s: self.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION"),
            viewers: self.viewers.load(Ordering::Relaxed),
            websockets: None,
        }
    }
}

/// `GET /config`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigBody {
    /// Every runtime setting.
    #[serde(flatten)]
    settings: Settings,
    /// Motion episodes with a person since the last reset (read-only).
    pub person_count: u64,
    /// Motion episodes since the last reset (read-only).
    pub trigger_count: u64,
    /// Frames received since start (read-only).
    pub frame_count: u64,
}

/// `GET /status` (fields in the order the seed's JSON had them: sorted).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// At the root: every camera (as `/cams`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cameras: Option<Vec<CamSummary>>,
    /// Clip recording: the pre-roll buffer, the clip under way, counts.
    pub clips: crate::clips::recorder::ClipStatus,
    /// Open `/events` streams (the whole server's).
    pub event_subscribers: usize,
    /// The MQTT link (root `/status` only, when configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<crate::mqtt::MqttReport>,
    /// The seed's frame counter.
    pub frames: u64,
    /// The person check: available, enabled, counts.
    pub person: crate::motion::person::PersonStatus,
    /// Motion episodes with a person since the last reset.
    pub person_count: u64,
    /// The camera's source.
    pub source: SourceReport,
    /// The motion threshold.
    pub threshold: u8,
    /// Motion episodes since the last reset.
    pub trigger_count: u64,
    /// The seed's name for the same count.
    pub triggers: u64,
    /// The upload queue, when configured.
    pub uploads: Option<Value>,
    /// Seconds since start.
    pub uptime_s: u64,
    /// lookout's version.
    pub version: &'static str,
    /// Open stream viewers of this camera.
    pub viewers: usize,
    /// Open `/control` WebSockets of the whole server (root `/status` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websockets: Option<usize>,
}

/// The source's state with the age of its last frame.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceReport {
    /// State, error, restarts, rate, size.
    #[serde(flatten)]
    pub status: crate::source::SourceStatus,
    /// Milliseconds since the last frame.
    pub last_frame_age_ms: Option<u64>,
}

impl Cam {
    /// The latest frame and its subscribers.
    pub fn frames(&self) -> &FrameSink {
        &self.frames
    }

    /// The live settings.
    pub fn settings(&self) -> &SettingsHandle {
        &self.settings
    }

    /// The source's state, as the supervisor keeps it.
    pub fn source_status(&self) -> &StatusCell {
        &self.source_status
    }

    /// Open `stream.jpg` viewers (a counter each viewer holds a place in).
    pub fn viewers(&self) -> &Arc<AtomicUsize> {
        &self.viewers
    }

    /// The event bus (shared by every camera).
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The store (shared by every camera).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This camera's snapshot folder.
    pub fn snaps(&self) -> &Arc<Snaps> {
        &self.snaps
    }

    /// This camera's clip recorder (and through it, its clip folder).
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Its person check.
    pub fn person(&self) -> &PersonCheck {
        &self.person
    }

    /// The clip settings now.
    pub fn clip_params(&self) -> ClipParams {
        ClipParams::from(&*self.settings.get())
    }

    /// The upload queue, when configured (shared).
    pub fn uploads(&self) -> Option<&Arc<Uploader>> {
        self.uploads.as_ref()
    }

    /// When the server started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Whether a motion episode is under way.
    pub fn motion_active(&self) -> bool {
        self.motion_active.load(Ordering::Relaxed)
    }

    /// One frame analysed in `seconds`: its score, and whether an episode
    /// is under way after it.
    pub fn analysed(&self, seconds: f64, score: f32, active: bool) {
        self.metrics.analysed(seconds, score);
        self.motion_active.store(active, Ordering::Relaxed);
    }

    /// The episode ended without a frame (the camera went quiet).
    pub fn motion_ended(&self) {
        self.motion_active.store(false, Ordering::Relaxed);
    }

    /// Its Prometheus counters.
    pub fn metrics(&self) -> &CamMetrics {
        &self.metrics
    }

    /// Fires at shutdown; long-lived responses end on it.
    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }
}

impl Cam {
    /// `body` as a JSON object with this camera's name, as every event of a
    /// camera carries it.
    pub fn stamp(&self, body: &impl serde::Serialize) -> Map<String, Value> {
        let mut data = obj(serde_json::to_value(body).unwrap_or(Value::Null));
        data.insert("camera".into(), Value::String(self.name.clone()));
        data
    }

    /// What `/cams` says about this camera.
    pub fn summary(&self) -> CamSummary {
        let source = crate::sync::lock(&self.source_status).clone();
        let base = format!("/cams/{}", self.name);
        CamSummary {
            name: self.name.clone(),
            uri: source.uri.clone(),
            state: source.state,
            fps: source.fps,
            viewers: self.viewers.load(Ordering::Relaxed),
            trigger_count: self.trigger_count(),
            last_motion_ts: match self.last_motion_ms.load(Ordering::Relaxed) {
                0 => None,
                ms => Some(ms as f64 / 1000.0),
            },
            stream_url: format!("{base}/stream.jpg"),
            snapshot_url: format!("{base}/snapshot.jpg"),
            base,
        }
    }
}

/// One camera in `GET /cams` and the root `/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CamSummary {
    /// Its name.
    pub name: String,
    /// Its source, passwords removed.
    pub uri: String,
    /// The source's state.
    pub state: crate::source::SourceState,
    /// Measured frames per second.
    pub fps: f64,
    /// Open stream viewers.
    viewers: usize,
    /// Motion episodes since the last reset.
    pub trigger_count: u64,
    /// When the last motion episode since start began, Unix seconds.
    pub last_motion_ts: Option<f64>,
    /// Its live MJPEG stream.
    pub stream_url: String,
    /// Its latest frame.
    pub snapshot_url: String,
    /// The prefix of all its routes.
    pub base: String,
}

/// A camera's store key: `camera.NAME.KEY`.
fn key(camera: &str, key: &str) -> String {
    format!("camera.{camera}.{key}")
}

/// Moves a single-camera data directory's counter and settings to
/// `camera`'s keys and gives it the stored history, once.
async fn migrate_legacy_state(store: &Store, camera: &str) -> Result<(), StoreError> {
    for k in [KEY_TRIGGERS, KEY_SETTINGS] {
        if let Some(old) = store.get(k).await? {
            if store.get(&key(camera, k)).await?.is_none() {
                store.set(&key(camera, k), old).await?;
                tracing::info!("camera {camera:?} takes over the stored {k}");
            }
            store.delete(k).await?;
        }
    }
    let claimed = store.claim_events(camera).await?;
    if claimed > 0 {
        tracing::info!("camera {camera:?} takes over {claimed} stored event(s)");
    }
    Ok(())
}

/// A JSON object from a `json!` literal (empty for anything else).
pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
