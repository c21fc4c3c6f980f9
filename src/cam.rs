//! `Cam`: one camera's core (its frames, source state, settings, counters,
//! snapshots, the events it publishes and the uploads it queues) and the
//! actions on it. What the cameras share (the store, the event bus, uploads)
//! belongs to the [`Hub`](crate::hub::Hub); a camera holds handles to it.
//!
//! `Cam` knows no subsystem: the recorder, the person check, the motion
//! runner, MQTT and the web act on a camera through these methods, and this
//! module imports none of them, so calls only go down. Every transport
//! (HTTP, WebSocket, MQTT) and the motion runner act through the same
//! methods, so a change is validated, persisted and announced on the event
//! bus the same way whoever asked for it, and every event a camera publishes
//! carries its `camera` name.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::events::{
    ClipDeleted, Event, EventBus, EventKind, PersonSeen, PublishError, Reset, SnapshotDeleted,
};
use crate::frame::{Frame, FrameSink, LatestFrame, Watching};
use crate::metrics::CamMetrics;
use crate::settings::{Settings, SettingsError, SettingsHandle};
use crate::snaps::{SnapError, SnapInfo, Snaps, Trigger};
use crate::source::{SourceStatus, StatusCell};
use crate::store::{Store, StoreError};
use crate::uploads::Uploader;

/// Store key of the trigger count (before cameras had names; now per
/// camera, see [`Cam::key`]).
pub(crate) const KEY_TRIGGERS: &str = "trigger_count";
/// Store key of the settings changed at run time (likewise).
pub(crate) const KEY_SETTINGS: &str = "settings";
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
    /// Its name (events, store keys).
    name: String,
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
    /// Upload queue, when uploads or a webhook are configured.
    uploads: Option<Arc<Uploader>>,
    /// Its Prometheus counters (episodes, analysis time, snapshots).
    metrics: CamMetrics,
    /// Mirror of the persisted trigger count, for cheap reads.
    triggers: AtomicU64,
    /// Mirror of the persisted person count (episodes with a person).
    persons: AtomicU64,
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

/// What a camera is made of, for [`Cam::load`].
pub struct CamParts {
    /// Its name.
    pub name: String,
    /// Where its source puts frames.
    pub frames: FrameSink,
    /// Settings from the configuration (saved changes go over them).
    pub initial: Settings,
    /// Its source's state, as the supervisor keeps it.
    pub source_status: StatusCell,
    /// The server's event bus (and through it, the store).
    pub events: EventBus,
    /// Its snapshot folder.
    pub snaps: Arc<Snaps>,
    /// The server's upload queue, when configured.
    pub uploads: Option<Arc<Uploader>>,
    /// Its counting handles.
    pub metrics: CamMetrics,
}

/// A camera's settings change, checked and not yet applied (see
/// [`Cam::check_settings`]).
pub struct SettingsChange<'a> {
    /// The camera's settings lock, held until the commit.
    lock: tokio::sync::MutexGuard<'a, ()>,
    /// The settings after the change.
    next: Settings,
    /// The store entry that keeps them; none when the patch had no key of
    /// the camera's.
    saved: Option<(String, String)>,
    /// Whether the snapshot retention changed.
    retention: bool,
}

impl SettingsChange<'_> {
    /// The store entry (key and JSON) that keeps the change, if it changes
    /// anything of the camera's.
    pub fn saved(&self) -> Option<(String, String)> {
        self.saved.clone()
    }
}

/// A stream viewer's place in its camera's count; leaving gives it back.
pub struct ViewerPlace(Arc<AtomicUsize>);

impl Drop for ViewerPlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Cam {
    /// Builds the state, loading the counts and saved settings from the
    /// store over the configured settings.
    pub async fn load(parts: CamParts) -> Result<Cam, StoreError> {
        let CamParts {
            name,
            frames,
            initial,
            source_status,
            events,
            snaps,
            uploads,
            metrics,
        } = parts;
        let store = events.store().clone();
        let count = |k: &'static str| {
            let store = store.clone();
            let k = key(&name, k);
            async move {
                Ok::<u64, StoreError>(
                    store
                        .get(&k)
                        .await?
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                )
            }
        };
        let triggers = count(KEY_TRIGGERS).await?;
        let persons = count(KEY_PERSONS).await?;
        let settings = match store.get(&key(&name, KEY_SETTINGS)).await? {
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
            name,
            frames,
            settings: SettingsHandle::new(settings),
            source_status,
            viewers: Arc::new(AtomicUsize::new(0)),
            events,
            store,
            snaps,
            uploads,
            metrics,
            triggers: AtomicU64::new(triggers),
            persons: AtomicU64::new(persons),
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
        let persons_before = self.persons.swap(0, Ordering::Relaxed);
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
            self.persons.store(persons_before, Ordering::Relaxed);
            return Err(e);
        }
        Ok(())
    }

    /// Validates `patch` (this camera's keys only; an empty one changes
    /// nothing) against the settings now. The change holds the settings
    /// lock until [`Cam::commit_settings`] or until it is dropped, so no
    /// other change comes between its check and its commit. The caller
    /// persists [`SettingsChange::saved`] first (`serverwide` does, with
    /// the server's part of the patch in the same transaction).
    pub async fn check_settings(
        &self,
        patch: &Map<String, Value>,
    ) -> Result<SettingsChange<'_>, SettingsError> {
        let lock = self.settings_lock.lock().await;
        let next = self.settings.get().patched_keys(patch)?;
        let saved = (!patch.is_empty()).then(|| {
            (
                key(&self.name, KEY_SETTINGS),
                Value::Object(next.to_json()).to_string(),
            )
        });
        Ok(SettingsChange {
            lock,
            retention: patch.contains_key("max_snaps") || patch.contains_key("max_snaps_mb"),
            next,
            saved,
        })
    }

    /// Applies a checked change once it is persisted; returns the settings
    /// it gave. A smaller snapshot retention is enforced at once.
    pub async fn commit_settings(&self, change: SettingsChange<'_>) -> Settings {
        let SettingsChange {
            lock,
            next,
            saved,
            retention,
        } = change;
        if saved.is_some() {
            self.settings.replace(next.clone());
        }
        drop(lock);
        if retention {
            let snaps = self.snaps.clone();
            let retention = next.retention();
            let _ = tokio::task::spawn_blocking(move || snaps.enforce(retention)).await;
        }
        next
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
        let n = self.person_count() + 1;
        body.count = n;
        let state = vec![(key(&self.name, KEY_PERSONS), n.to_string())];
        let event = self
            .events
            .publish_with_state(EventKind::Person, &self.stamp(&body), state)
            .await?;
        self.persons.store(n, Ordering::Relaxed);
        self.metrics.person_seen();
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
        let frame = frame.clone();
        // On the blocking thread: a decoded picture's JPEG is made there.
        let (info, jpeg) = tokio::task::spawn_blocking(move || {
            let jpeg = frame.jpeg();
            snaps
                .save(&jpeg, trigger, SystemTime::now(), retention)
                .map(|info| (info, jpeg))
        })
        .await
        .map_err(|e| SnapshotError::Task(e.to_string()))??;
        self.metrics.snapshot(trigger);
        let mut data = self.stamp(&info);
        data.remove("ts");
        let published = self.events.publish(EventKind::Snapshot, &data).await;
        match published {
            Ok(event) if trigger == Trigger::Manual => {
                self.queue_upload(jpeg, event.data.clone(), true).await;
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

    /// [`Cam::queue_upload`] of `frame`'s JPEG, made only when uploads are
    /// configured (a decoded camera's pictures have none until asked).
    pub async fn queue_upload_of(&self, frame: &Arc<Frame>, event: Value, manual: bool) {
        if self.uploads.is_some() {
            self.queue_upload(frame.jpeg_async().await, event, manual)
                .await;
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

    /// The camera's part of the `/config` body: its settings plus
    /// `trigger_count` and `frame_count` (the seed's state dict; the
    /// server-wide settings beside them are `serverwide`'s).
    pub fn config_body(&self) -> ConfigBody {
        self.config_body_with((*self.settings.get()).clone())
    }

    /// [`Cam::config_body`] with `settings`: those a change just produced.
    /// Its reply shows that change, not one another client made right
    /// after it (the live settings may already be newer).
    pub fn config_body_with(&self, settings: Settings) -> ConfigBody {
        ConfigBody {
            settings,
            person_count: self.person_count(),
            trigger_count: self.trigger_count(),
            frame_count: self.frames.count(),
        }
    }
}

/// A camera's part of `GET /config`.
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

impl Cam {
    /// The latest frame, if one came.
    pub fn latest_frame(&self) -> Option<Arc<Frame>> {
        self.frames.latest()
    }

    /// Each new frame, newest wins (a slow reader skips frames).
    pub fn subscribe(&self) -> LatestFrame {
        self.frames.subscribe()
    }

    /// Each new frame with its JPEG made (an MJPEG viewer's), newest wins,
    /// and the token that has JPEGs made of a decoded camera's pictures
    /// while it is held.
    pub fn watch_jpegs(&self) -> (LatestFrame, Watching) {
        self.frames.watch_jpegs()
    }

    /// JPEGs made from decoded pictures since start.
    pub fn jpeg_encodes(&self) -> u64 {
        self.frames.encodes()
    }

    /// Frames received since start (the seed's frame counter).
    pub fn frame_count(&self) -> u64 {
        self.frames.count()
    }

    /// The settings now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    /// The source's state now.
    pub fn source(&self) -> SourceStatus {
        crate::sync::lock(&self.source_status).clone()
    }

    /// Open stream viewers of this camera.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Counts a stream viewer until the place is dropped.
    pub fn enter_viewer(&self) -> ViewerPlace {
        self.viewers.fetch_add(1, Ordering::Relaxed);
        ViewerPlace(self.viewers.clone())
    }

    /// Episodes with a person since the last reset.
    pub fn person_count(&self) -> u64 {
        self.persons.load(Ordering::Relaxed)
    }

    /// When the last motion episode since start began, Unix seconds.
    pub fn last_motion_ts(&self) -> Option<f64> {
        match self.last_motion_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms as f64 / 1000.0),
        }
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

    /// Frames the detector was due to analyse and missed, the previous
    /// analysis still running (see [`crate::motion::pace::Pace::missed`]).
    pub fn analyses_missed(&self, n: u64) {
        if n > 0 {
            self.metrics.analyses_missed(n);
        }
    }

    /// The episode ended without a frame (the camera went quiet).
    pub fn motion_ended(&self) {
        self.motion_active.store(false, Ordering::Relaxed);
    }

    /// One person check done in `seconds`.
    pub fn person_checked(&self, seconds: f64) {
        self.metrics.person_checked(seconds);
    }

    /// Publishes a camera-stamped event (stored and numbered).
    pub async fn publish(
        &self,
        kind: EventKind,
        body: &impl serde::Serialize,
    ) -> Result<Arc<Event>, PublishError> {
        self.events.publish(kind, &self.stamp(body)).await
    }

    /// Publishes a camera-stamped event, logging a failure (for events whose
    /// loss must not fail the action that caused them).
    pub async fn announce(&self, kind: EventKind, body: &impl serde::Serialize) {
        self.events.publish_or_log(kind, &self.stamp(body)).await;
    }

    /// Sends a camera-stamped event live only, never stored (the level
    /// graph's readings).
    pub fn publish_transient(&self, kind: EventKind, body: &impl serde::Serialize) {
        self.events.publish_transient(kind, &self.stamp(body));
    }

    /// Durably queues a saved clip (with its picture and event) for upload,
    /// when clips are uploaded. Never fails the caller: errors are logged.
    pub async fn queue_clip(&self, path: PathBuf, picture: bytes::Bytes, event: Value) {
        let Some(up) = self.uploads.clone().filter(|u| u.config().clips) else {
            return;
        };
        let name = path.display().to_string();
        let queued =
            tokio::task::spawn_blocking(move || up.enqueue_clip(&path, &picture, &event)).await;
        match queued {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("cannot queue clip {name} for upload: {e}"),
            Err(e) => tracing::error!("upload queue task failed: {e}"),
        }
    }
}

impl Cam {
    /// `body` as a JSON object with this camera's name, as every event of a
    /// camera carries it.
    fn stamp(&self, body: &impl serde::Serialize) -> Map<String, Value> {
        let mut data = obj(serde_json::to_value(body).unwrap_or(Value::Null));
        data.insert("camera".into(), Value::String(self.name.clone()));
        data
    }
}

/// A camera's store key: `camera.NAME.KEY`.
pub(crate) fn key(camera: &str, key: &str) -> String {
    format!("camera.{camera}.{key}")
}

/// A JSON object from a `json!` literal (empty for anything else).
fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
