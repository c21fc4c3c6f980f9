//! The event bus: every state change that a dashboard must see.
//!
//! An event is stored first (which gives it its increasing id) and then
//! broadcast, so a subscriber that reconnects with `Last-Event-ID` can replay
//! what it missed from the store. Transient events (the `level` graph feed)
//! are broadcast only. A subscriber that falls too far behind is cut off by the
//! bounded broadcast buffer (it reconnects and replays); the server's memory
//! never grows with a slow client.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{broadcast, Mutex};

use crate::frame::unix_secs;
use crate::source::SourceState;
use crate::store::{Store, StoreError, StoredEvent};

/// Every kind of event, the SSE `event:` name. The vocabulary lives here and
/// nowhere else: publishers name a kind and hand over a `Serialize` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A motion episode started ([`Motion`]).
    Motion,
    /// A motion episode ended ([`MotionEnd`]).
    MotionEnd,
    /// The person check first saw a person in an episode ([`PersonSeen`]).
    Person,
    /// The trigger counter was reset ([`Reset`]).
    Reset,
    /// Settings changed (the whole config).
    Config,
    /// A snapshot was saved (its listing entry).
    Snapshot,
    /// A snapshot was deleted ([`SnapshotDeleted`]).
    SnapshotDeleted,
    /// A clip was saved (its listing entry and `ok: true`) or failed (`ok:
    /// false`, its name and the error).
    Clip,
    /// A clip was deleted ([`ClipDeleted`]).
    ClipDeleted,
    /// The camera came up or went down ([`SourceChange`]).
    Source,
    /// An upload was sent, failed or dropped ([`UploadNotice`]).
    Upload,
    /// The motion level for the graph ([`Level`]); never stored.
    Level,
    /// An incident was notified, or would have been but for a snooze or
    /// the cooldown (`push::Notice`).
    Notify,
    /// A camera's notifications were snoozed or the snooze lifted
    /// (`push::SnoozeChange`).
    Snooze,
}

impl EventKind {
    /// The name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Motion => "motion",
            EventKind::MotionEnd => "motion_end",
            EventKind::Person => "person",
            EventKind::Reset => "reset",
            EventKind::Config => "config",
            EventKind::Snapshot => "snapshot",
            EventKind::SnapshotDeleted => "snapshot_deleted",
            EventKind::Clip => "clip",
            EventKind::ClipDeleted => "clip_deleted",
            EventKind::Source => "source",
            EventKind::Upload => "upload",
            EventKind::Level => "level",
            EventKind::Notify => "notify",
            EventKind::Snooze => "snooze",
        }
    }
}

impl EventKind {
    /// The kind named `name` (as [`EventKind::as_str`] gives it), through
    /// the same serde names, so there is no second list to keep.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::deserialize(StrDeserializer::<ValueError>::new(name)).ok()
    }
}

/// `kind == "motion"`: a kind compares with its name.
impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `motion`: the seed's keys, plus the snapshot saved at the start.
#[derive(Debug, Clone, Serialize)]
pub struct Motion {
    /// The trigger count after this episode.
    pub count: u64,
    /// The score that started it (0-100, see the motion detector).
    pub change: f64,
    /// Percent of the picture that changed.
    pub area: f64,
    /// Normalized `[x, y, w, h]` of the moving blobs, largest first (at most
    /// 8), to 4 decimals (a tenth of a pixel at 4K).
    pub boxes: Vec<[f64; 4]>,
    /// Names of the zones the moving blobs touch.
    pub zones: Vec<String>,
    /// `/snaps/<name>` when a snapshot was saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The URL of the clip recording this episode (served once it is
    /// saved, which a `clip` event tells), when clips are recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<String>,
}

/// `motion_end`.
#[derive(Debug, Clone, Serialize)]
pub struct MotionEnd {
    /// The trigger count.
    pub count: u64,
    /// How long the episode lasted.
    pub duration_s: f64,
    /// Its highest score.
    pub peak: f64,
    /// The clip recording it, when clips are recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<String>,
    /// The clip's expected length: what was recorded so far plus the
    /// post-roll (another episode in the post-roll makes it longer; the
    /// `clip` event has the final figure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_duration_s: Option<f64>,
    /// Whether the person check saw a person in it (absent when no check
    /// ran: the check is off, or not in this build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<bool>,
    /// The best person score of its checks (likewise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_max_score: Option<f64>,
}

/// `person`: the first person seen in a motion episode.
#[derive(Debug, Clone, Serialize)]
pub struct PersonSeen {
    /// Episodes with a person since the last reset, this one included.
    pub count: u64,
    /// People found in the checked frame.
    pub people: usize,
    /// The best person's score (0-1).
    pub score: f64,
    /// The best person's normalized `[x, y, w, h]`.
    #[serde(rename = "box")]
    pub r#box: [f64; 4],
    /// `/snaps/<name>` of the checked frame, when snapshots are saved on
    /// motion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// `reset`.
#[derive(Debug, Clone, Serialize)]
pub struct Reset {
    /// Always 0.
    pub count: u64,
}

/// `snapshot_deleted`.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotDeleted {
    /// The file name.
    pub name: String,
}

/// `clip_deleted`.
#[derive(Debug, Clone, Serialize)]
pub struct ClipDeleted {
    /// The file name.
    pub name: String,
}

/// `source`: the camera came up or went down.
#[derive(Debug, Clone, Serialize)]
pub struct SourceChange {
    /// The supervisor's state.
    pub state: SourceState,
    /// Whether frames arrive.
    pub up: bool,
    /// The last failure (redacted), if any.
    pub error: Option<String>,
    /// `"main"` for the main stream of a camera with a detect stream (the
    /// recorded one: the pictures go on without it); absent for the camera.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<&'static str>,
}

/// What happened to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// The receiver took it.
    Sent,
    /// Given up (rejected, or too old).
    Failed,
    /// Pushed out of a full queue.
    Dropped,
}

/// `upload`.
#[derive(Debug, Clone, Serialize)]
pub struct UploadNotice {
    /// What happened.
    pub state: UploadState,
    /// `frame` or `event` (the webhook).
    pub kind: &'static str,
    /// `frame-<ts>.jpg`, when the item has one.
    pub file: Option<String>,
    /// Why, for failures and drops.
    pub error: Option<String>,
}

/// `level`: the graph's feed.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// The current score.
    pub change: f64,
    /// The highest score of the current episode (or of this sample).
    pub peak: f64,
    /// Whether an episode is under way.
    pub active: bool,
    /// The threshold, for the graph's line.
    pub threshold: u8,
    /// Percent of the picture that changed, in the latest analysed frame.
    pub area: f64,
    /// Normalized `[x, y, w, h]` of the moving blobs of the latest analysed
    /// frame, largest first: what the dashboard's motion tuner draws.
    pub boxes: Vec<[f64; 4]>,
}

/// Why an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The store refused it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The body is not a JSON object (a bug in the caller).
    #[error("{0} event body is not a JSON object")]
    NotAnObject(EventKind),
}

/// The body as a JSON object.
fn object(kind: EventKind, data: &impl Serialize) -> Result<Map<String, Value>, PublishError> {
    match serde_json::to_value(data) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(PublishError::NotAnObject(kind)),
    }
}

/// Events buffered per subscriber before it counts as too slow.
pub const SUBSCRIBER_BUFFER: usize = 256;

/// One event as subscribers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Store id; `None` for transient events.
    pub id: Option<i64>,
    /// Kind, the SSE `event:` name.
    pub kind: EventKind,
    /// The JSON data (an object with at least `ts`).
    pub data: Value,
    /// The camera it is about (its `camera` key); `None` for server-wide
    /// events (`upload`).
    pub camera: Option<String>,
    /// The event as an SSE message, formatted once and shared by every
    /// subscriber (a thousand dashboards cost one serialisation).
    pub wire: Bytes,
}

impl Event {
    /// An event with its SSE form.
    pub fn new(id: Option<i64>, kind: EventKind, data: Value) -> Event {
        let mut wire = String::with_capacity(64);
        if let Some(id) = id {
            wire.push_str(&format!("id: {id}\n"));
        }
        // Kinds are our own identifiers and JSON text has no raw newlines, so
        // each is one SSE line.
        wire.push_str(&format!("event: {kind}\ndata: {data}\n\n"));
        Event {
            id,
            kind,
            camera: data
                .get("camera")
                .and_then(Value::as_str)
                .map(str::to_string),
            data,
            wire: Bytes::from(wire),
        }
    }
}

impl Event {
    /// The data with its `kind` added: the event on its own, outside an SSE
    /// message (uploads, the webhook, MQTT).
    pub fn data_with_kind(&self) -> Value {
        let mut data = self.data.clone();
        if let Value::Object(o) = &mut data {
            o.insert("kind".into(), Value::String(self.kind.as_str().into()));
        }
        data
    }
}

impl Event {
    /// A stored event, when its kind is one this build knows (the store
    /// holds only what it published; anything else is passed over).
    pub fn from_stored(e: StoredEvent) -> Option<Event> {
        match EventKind::parse(&e.kind) {
            Some(kind) => Some(Event::new(Some(e.id), kind, e.data)),
            None => {
                tracing::debug!(
                    "passing over stored event {} of unknown kind {:?}",
                    e.id,
                    e.kind
                );
                None
            }
        }
    }
}

/// Publishes events to the store and to live subscribers.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    store: Store,
    /// Keeps "store then broadcast" atomic, so ids reach subscribers in order.
    order: Arc<Mutex<()>>,
}

impl EventBus {
    /// A bus over `store`.
    pub fn new(store: Store) -> Self {
        EventBus {
            tx: broadcast::channel(SUBSCRIBER_BUFFER).0,
            store,
            order: Arc::new(Mutex::new(())),
        }
    }

    /// Stores and broadcasts an event. `data` gets a `ts` (Unix seconds) when
    /// it has none.
    pub async fn publish(
        &self,
        kind: EventKind,
        data: &impl Serialize,
    ) -> Result<Arc<Event>, PublishError> {
        self.publish_with_state(kind, data, Vec::new()).await
    }

    /// Stores an event together with state values (`state`: keys and
    /// values) in one transaction, then broadcasts it: the change and its
    /// event are both kept or neither.
    pub async fn publish_with_state(
        &self,
        kind: EventKind,
        data: &impl Serialize,
        state: Vec<(String, String)>,
    ) -> Result<Arc<Event>, PublishError> {
        let data = with_ts(object(kind, data)?);
        let ts = data.get("ts").and_then(Value::as_f64).unwrap_or(0.0);
        let _order = self.order.lock().await;
        let camera = data.get("camera").and_then(Value::as_str);
        let id = self
            .store
            .append_event_with_state(ts, kind.as_str(), camera, &data, state)
            .await?;
        let event = Arc::new(Event::new(Some(id), kind, data));
        // No subscriber is not an error.
        let _ = self.tx.send(event.clone());
        Ok(event)
    }

    /// Publishes and logs a failure instead of returning it (for events whose
    /// loss must not stop the action that caused them).
    pub async fn publish_or_log(&self, kind: EventKind, data: &impl Serialize) {
        if let Err(e) = self.publish(kind, data).await {
            tracing::error!("cannot record {kind} event: {e}");
        }
    }

    /// Broadcasts an event that is not stored and has no id.
    pub fn publish_transient(&self, kind: EventKind, data: &impl Serialize) {
        match object(kind, data) {
            Ok(data) => {
                let event = Event::new(None, kind, with_ts(data));
                let _ = self.tx.send(Arc::new(event));
            }
            Err(e) => tracing::error!("{e}"),
        }
    }

    /// A live subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Live subscribers (for `/status`).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// The store behind the bus (state beside the events).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What a subscriber missed: stored events after `after`, oldest first,
    /// at most `limit`; with `camera`, that camera's and the server-wide.
    pub async fn missed(
        &self,
        after: i64,
        limit: u32,
        camera: Option<String>,
    ) -> Result<Vec<Event>, StoreError> {
        let stored = self.store.events_after(after, limit, camera).await?;
        Ok(stored.into_iter().filter_map(Event::from_stored).collect())
    }

    /// A page of history, newest first (see [`Store::events_page`]).
    pub async fn history(
        &self,
        limit: u32,
        before: Option<i64>,
        kind: Option<String>,
        camera: Option<String>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.events_page(limit, before, kind, camera).await
    }

    /// Camera `camera`'s episodes that ended in `from..to` (unix seconds),
    /// from their `motion_end` events, oldest first, at most `limit`.
    pub async fn episodes_ended(
        &self,
        camera: String,
        from: f64,
        to: f64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store
            .events_between(EventKind::MotionEnd.as_str(), camera, from, to, limit)
            .await
    }
}

fn with_ts(mut data: Map<String, Value>) -> Value {
    if !data.contains_key("ts") {
        let ts = (unix_secs(std::time::SystemTime::now()) * 1000.0).round() / 1000.0;
        data.insert("ts".into(), ts.into());
    }
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        use EventKind::*;
        for k in [
            Motion,
            MotionEnd,
            Person,
            Reset,
            Config,
            Snapshot,
            SnapshotDeleted,
            Clip,
            ClipDeleted,
            Source,
            Upload,
            Level,
        ] {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert!(k == k.as_str());
        }
        assert_eq!(EventKind::parse("motion-end"), None);
        assert_eq!(EventKind::parse(""), None);
    }
    use serde_json::json;

    #[tokio::test]
    async fn stored_events_get_increasing_ids_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let bus = EventBus::new(Store::open(dir.path()).unwrap());
        let mut rx = bus.subscribe();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let bus = bus.clone();
            tasks.push(tokio::spawn(async move {
                bus.publish(EventKind::Reset, &json!({"i": i}))
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut last = 0;
        for _ in 0..20 {
            let e = rx.recv().await.unwrap();
            let id = e.id.unwrap();
            assert!(id > last, "ids arrive in order");
            last = id;
            assert!(e.data["ts"].as_f64().unwrap() > 1.0e9);
        }
        bus.publish_transient(EventKind::Level, &json!({"change": 1.5}));
        let level = rx.recv().await.unwrap();
        assert_eq!((level.id, level.kind), (None, EventKind::Level));
        assert!(level.wire.starts_with(b"event: level\ndata: {"));
        assert!(level.wire.ends_with(b"}\n\n"));
        assert_eq!(bus.store().last_event_id().await.unwrap(), 20);
    }
}
