//! What the server says about itself and its cameras: the `/status` and
//! `/cams` bodies and MQTT's state, built in one place for the HTTP API,
//! the WebSocket `status` command, MQTT and the dashboard.

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::camera::Camera;
use crate::clips::recorder::ClipStatus;
use crate::hub::Hub;
use crate::motion::check::PersonStatus;
use crate::mqtt::status::MqttReport;
use crate::push::PushStatus;
use crate::source::{SourceState, SourceStatus};
use crate::uploads::UploadStatus;

/// `GET /status` (fields in the order the seed's JSON had them: sorted).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// At the root: every camera (as `/cams`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cameras: Option<Vec<CamSummary>>,
    /// Clip recording: the pre-roll buffer, the clip under way, counts.
    pub clips: ClipStatus,
    /// Open `/events` streams (the whole server's).
    pub event_subscribers: usize,
    /// The MQTT link (root `/status` only, when configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttReport>,
    /// Phone notifications: deliveries and subscriptions (root `/status`
    /// only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<PushStatus>,
    /// This camera's notifications: what is notified, and its snooze.
    pub notify: NotifyReport,
    /// The seed's frame counter.
    pub frames: u64,
    /// JPEGs made from a decoded camera's pictures since start: only while
    /// someone watches MJPEG (at most `mjpeg_fps` a second) or asks for a
    /// snapshot. Always 0 for a camera that sends JPEGs.
    pub jpeg_encodes: u64,
    /// The person check: available, enabled, counts.
    pub person: PersonStatus,
    /// Continuous recording: its mode, state and counts.
    pub recording: crate::clips::continuous::RecordingStatus,
    /// Motion episodes with a person since the last reset.
    pub person_count: u64,
    /// The camera's source.
    pub source: SourceReport,
    /// The camera's main stream, passed through undecoded, when its
    /// pictures come from a detect stream (`source` is then that one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_source: Option<SourceReport>,
    /// The motion threshold.
    pub threshold: u8,
    /// Motion episodes since the last reset.
    pub trigger_count: u64,
    /// The seed's name for the same count.
    pub triggers: u64,
    /// The upload queue, when configured.
    pub uploads: Option<UploadStatus>,
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

/// A camera's notification state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotifyReport {
    /// What its incidents are notified on now: `person`, `motion` (also
    /// when `person` is set but the check cannot run) or `off`.
    pub on: &'static str,
    /// Until when it is snoozed, Unix seconds (`null`: it is not).
    pub snoozed_until: Option<f64>,
}

/// `camera`'s [`NotifyReport`].
pub fn notify(hub: &Hub, camera: &Camera) -> NotifyReport {
    let alerts = crate::alert::Alerts::new(&camera.cam.settings(), camera.check.available());
    NotifyReport {
        on: alerts.notify_at().map_or("off", |a| a.as_str()),
        snoozed_until: hub.push().snoozed_until(&camera.name),
    }
}

/// The source's state with the age of its last frame.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceReport {
    /// State, error, restarts, rate, size.
    #[serde(flatten)]
    pub status: SourceStatus,
    /// Milliseconds since the last frame.
    pub last_frame_age_ms: Option<u64>,
}

/// One camera in `GET /cams` and the root `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct CamSummary {
    /// Its name.
    pub name: String,
    /// Its source, passwords removed.
    pub uri: String,
    /// The source's state.
    pub state: SourceState,
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
    /// Its own H.264/H.265 as fragmented MP4 (an RTSP camera), for Media
    /// Source Extensions; `?stream=detect` for its detect stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_url: Option<String>,
    /// The codecs of its streams in RFC 6381 form, once known: `main` and,
    /// with a detect stream, `detect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_codecs: Option<LiveCodecs>,
    /// The prefix of all its routes.
    pub base: String,
    /// Its notifications.
    pub notify: NotifyReport,
}

/// The codecs of a camera's compressed streams.
#[derive(Debug, Clone, Serialize)]
pub struct LiveCodecs {
    /// The main stream's, e.g. `avc1.640028` or `hvc1.1.6.L120.90`.
    pub main: Option<String>,
    /// The detect stream's: absent without a detect stream, null until
    /// its parameters are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect: Option<Option<String>>,
}

/// `GET /cams`.
#[derive(Debug, Serialize)]
pub struct CamList {
    /// Every camera, in configuration order.
    pub cameras: Vec<CamSummary>,
}

/// A camera's state as MQTT publishes it (`PREFIX/NAME/state`, retained),
/// which Home Assistant's sensors read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CamState {
    /// Motion episodes since the last reset.
    pub trigger_count: u64,
    /// Episodes with a person since the last reset.
    pub person_count: u64,
    /// Whether the episode under way holds a person.
    pub person: bool,
    /// The motion threshold.
    pub threshold: u8,
    /// The latest motion score.
    pub change: f64,
    /// Whether an episode is under way.
    pub motion: bool,
    /// The source's state.
    pub source: SourceState,
}

/// `camera`'s [`CamState`], with what the feed follows from the events: a
/// person in the episode under way, the latest score, and motion.
pub fn cam_state(camera: &Camera, person: bool, change: f64, motion: bool) -> CamState {
    CamState {
        trigger_count: camera.cam.trigger_count(),
        person_count: camera.cam.person_count(),
        person,
        threshold: camera.cam.settings().threshold,
        change,
        motion,
        source: camera.cam.source().state,
    }
}

/// A camera's `/status` (also the WebSocket `status` reply).
pub fn status(hub: &Hub, camera: &Camera) -> Status {
    let cam = &camera.cam;
    let settings = cam.settings();
    let source = cam.source();
    let triggers = cam.trigger_count();
    Status {
        cameras: None,
        clips: camera.recorder.status(),
        event_subscribers: hub.events().subscribers(),
        mqtt: None,
        notifications: None,
        notify: notify(hub, camera),
        frames: cam.frame_count(),
        jpeg_encodes: cam.jpeg_encodes(),
        person: camera.check.status(&settings, cam.person_count()),
        person_count: cam.person_count(),
        recording: camera.recording_status(),
        source: SourceReport {
            last_frame_age_ms: source.last_frame_age_ms(),
            status: source,
        },
        main_source: camera.main_source.as_ref().map(|cell| {
            let status = crate::sync::lock(cell).clone();
            SourceReport {
                last_frame_age_ms: status.last_data_age_ms(),
                status,
            }
        }),
        threshold: settings.threshold,
        trigger_count: triggers,
        triggers,
        uploads: hub.uploads().map(|u| u.report()),
        uptime_s: hub.started().elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
        viewers: cam.viewers(),
        websockets: None,
    }
}

/// The root `/status`: the first camera's, as the seed knows it, plus every
/// camera's summary and the server's own links.
pub fn root_status(hub: &Hub, first: &Camera) -> Status {
    Status {
        cameras: Some(cams(hub).cameras),
        mqtt: hub.mqtt().map(|m| m.report()),
        notifications: Some(hub.push().status()),
        websockets: Some(hub.websockets().load(Ordering::Relaxed)),
        ..status(hub, first)
    }
}

/// What `/cams` says about one camera.
pub fn summary(hub: &Hub, camera: &Camera) -> CamSummary {
    let source = camera.cam.source();
    let base = format!("/cams/{}", camera.name);
    CamSummary {
        name: camera.name.clone(),
        uri: source.uri.clone(),
        state: source.state,
        fps: source.fps,
        viewers: camera.cam.viewers(),
        trigger_count: camera.cam.trigger_count(),
        last_motion_ts: camera.cam.last_motion_ts(),
        stream_url: format!("{base}/stream.jpg"),
        snapshot_url: format!("{base}/snapshot.jpg"),
        live_url: camera
            .video
            .main
            .as_ref()
            .map(|_| format!("{base}/live.mp4")),
        live_codecs: camera.video.main.as_ref().map(|main| LiveCodecs {
            main: main.track().map(|t| t.codec.clone()),
            detect: camera
                .video
                .detect
                .as_ref()
                .map(|d| d.track().map(|t| t.codec.clone())),
        }),
        base,
        notify: notify(hub, camera),
    }
}

/// `GET /cams`.
pub fn cams(hub: &Hub) -> CamList {
    CamList {
        cameras: hub.cams().iter().map(|c| summary(hub, c)).collect(),
    }
}
