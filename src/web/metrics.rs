//! `GET /metrics` (Prometheus' text format) and the middleware that counts
//! every answered request by route pattern and status code.
//!
//! `/metrics` sits behind the same door as `/status`: open on loopback,
//! credentials off it. Prometheus sends a long-lived token (`lookout token
//! create prometheus`) as its `authorization` credentials (Bearer).

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::camera::Camera;
use crate::hub::Hub;
use crate::metrics::{
    CameraLabel, CameraResultLabels, CameraStreamLabels, FloatGauge, ResultLabel, CONTENT_TYPE,
    UNMATCHED,
};
use crate::source::SourceState;

/// `GET /metrics`: the counters plus the state read now.
pub async fn scrape(State(app): State<AppState>) -> Result<Response, ApiError> {
    let text = app
        .hub
        .metrics()
        .render(|reg| register_state(reg, &app.hub))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Counts each request once its response is ready, under its route's
/// pattern. Long-lived responses (streams, SSE) count when their headers go
/// out.
pub async fn count_requests(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| route_label(&app, m.as_str()));
    let response = next.run(req).await;
    let route = route.as_deref().unwrap_or(UNMATCHED);
    app.hub
        .metrics()
        .http_request(route, response.status().as_u16());
    response
}

/// The pattern of a matched route. Each camera's routes are nested under
/// its own literal `/cams/NAME`, so that prefix becomes `/cams/{name}`: one
/// series per route, whatever the number of cameras.
fn route_label(app: &AppState, matched: &str) -> String {
    if let Some(rest) = matched.strip_prefix("/cams/") {
        if let Some((name, tail)) = rest.split_once('/') {
            if app.hub.cam(name).is_some() {
                return format!("/cams/{{name}}/{tail}");
            }
        }
    }
    matched.to_string()
}

/// The per-camera series read from each camera at scrape time.
#[derive(Default)]
struct CameraSeries {
    motion_active: Family<CameraLabel, Gauge>,
    up: Family<CameraLabel, Gauge>,
    restarts: Family<CameraLabel, Counter>,
    bad_frames: Family<CameraLabel, Counter>,
    frames: Family<CameraLabel, Counter>,
    fps: Family<CameraLabel, FloatGauge>,
    viewers: Family<CameraLabel, Gauge>,
    person_available: Family<CameraLabel, Gauge>,
    person_skipped: Family<CameraLabel, Counter>,
    clip_recording: Family<CameraLabel, Gauge>,
    clips: Family<CameraResultLabels, Counter>,
    clip_dropped: Family<CameraLabel, Counter>,
    clip_buffer: Family<CameraLabel, Gauge>,
    stream_bitrate: Family<CameraStreamLabels, Gauge>,
    stream_keyframe_interval: Family<CameraStreamLabels, FloatGauge>,
}

impl CameraSeries {
    /// Reads one camera.
    fn add(&self, cam: &Camera) {
        let label = CameraLabel {
            camera: cam.name.clone(),
        };
        let (state, restarted, rate, bad) = {
            let s = cam.cam.source();
            (s.state, s.restarts, s.fps, s.bad_frames)
        };
        self.up
            .get_or_create(&label)
            .set(i64::from(state == SourceState::Running));
        self.restarts.get_or_create(&label).inc_by(restarted);
        self.bad_frames.get_or_create(&label).inc_by(bad);
        self.frames
            .get_or_create(&label)
            .inc_by(cam.cam.frame_count());
        self.fps.get_or_create(&label).set(rate);
        let open = cam.cam.viewers();
        self.viewers.get_or_create(&label).set(gauge(open));
        let person = &cam.check;
        self.person_available
            .get_or_create(&label)
            .set(i64::from(person.available()));
        self.person_skipped
            .get_or_create(&label)
            .inc_by(person.skipped());
        let clip = cam.recorder.status();
        self.clip_recording
            .get_or_create(&label)
            .set(i64::from(clip.recording.is_some()));
        for (result, n) in [("saved", clip.saved), ("failed", clip.failed)] {
            self.clips
                .get_or_create(&CameraResultLabels {
                    camera: cam.name.clone(),
                    result,
                })
                .inc_by(n);
        }
        self.clip_dropped
            .get_or_create(&label)
            .inc_by(clip.dropped_frames);
        self.clip_buffer
            .get_or_create(&label)
            .set(i64::try_from(clip.buffer_bytes).unwrap_or(i64::MAX));
        self.motion_active
            .get_or_create(&label)
            .set(i64::from(cam.cam.motion_active()));
        // An RTSP camera's compressed streams, as they arrive: the one that
        // gives the pictures, and the main stream read beside a detect one.
        let main = cam
            .main_source
            .as_ref()
            .map(|c| crate::sync::lock(c).clone());
        let pictures = cam.cam.source();
        let streams = match main {
            Some(main) => [("main", main.stream), ("detect", pictures.stream)],
            None => [("main", pictures.stream), ("detect", None)],
        };
        for (stream, info) in streams {
            let Some(info) = info else { continue };
            let labels = CameraStreamLabels {
                camera: cam.name.clone(),
                stream,
            };
            if let Some(kbps) = info.bitrate_kbps {
                // Prometheus's base unit is the byte.
                let bytes = i64::try_from(kbps.saturating_mul(125)).unwrap_or(i64::MAX);
                self.stream_bitrate.get_or_create(&labels).set(bytes);
            }
            if let Some(s) = info.keyframe_interval_s {
                self.stream_keyframe_interval.get_or_create(&labels).set(s);
            }
        }
    }

    /// Registers every series but `motion_active`, which the text has last.
    fn register(self, reg: &mut Registry) -> Family<CameraLabel, Gauge> {
        reg.register(
            "source_up",
            "Whether the camera's source delivers frames (1) or not (0)",
            self.up,
        );
        reg.register(
            "source_restarts",
            "Restarts of the camera's source",
            self.restarts,
        );
        reg.register(
            "source_bad_frames",
            "Data from the camera refused instead of shown: not a whole JPEG, over the size cap, \
         absurd dimensions, or a mebibyte of bytes outside any frame",
            self.bad_frames,
        );
        reg.register("frames", "Frames received from the camera", self.frames);
        reg.register(
            "source_fps",
            "Frames per second the camera delivers, measured over the last second",
            self.fps,
        );
        reg.register(
            "stream_viewers",
            "Open live viewers: MJPEG (/stream.jpg) and MP4 (/live.mp4)",
            self.viewers,
        );
        reg.register(
            "video_bytes_per_second",
            "Bytes per second an RTSP camera's stream sends (main, or detect beside it), measured",
            self.stream_bitrate,
        );
        reg.register(
            "video_keyframe_interval_seconds",
            "Seconds between the last two keyframes of an RTSP camera's stream",
            self.stream_keyframe_interval,
        );
        reg.register(
            "person_check_available",
            "Whether the person check can run on the camera (1: the model is loaded) or not (0)",
            self.person_available,
        );
        reg.register(
            "clip_recording",
            "Whether a clip is being recorded (1) or not (0)",
            self.clip_recording,
        );
        reg.register(
            "clips",
            "Clips that ended, by result: saved, or failed (the disk refused them)",
            self.clips,
        );
        reg.register(
            "clip_dropped_frames",
            "Frames left out of clips because the disk could not keep up",
            self.clip_dropped,
        );
        reg.register(
            "clip_buffer_bytes",
            "Bytes of frames held in memory for the next clip's pre-roll",
            self.clip_buffer,
        );
        reg.register(
            "person_checks_skipped",
            "Person checks due but not run because the camera's previous check was still running \
         or the checker's queue was full",
            self.person_skipped,
        );
        self.motion_active
    }
}

/// Registers the series read from the running state at scrape time.
fn register_state(reg: &mut Registry, hub: &Hub) {
    let cameras = CameraSeries::default();
    for cam in hub.cams() {
        cameras.add(cam);
    }
    let motion_active = cameras.register(reg);
    register_server(reg, hub);
    // Last, where the counted families had it before it became state.
    reg.register(
        "motion_active",
        "Whether a motion episode is under way (1) or not (0)",
        motion_active,
    );
}

/// Registers the whole server's series: subscribers, sockets, MQTT and
/// the upload queue.
fn register_server(reg: &mut Registry, hub: &Hub) {
    let subscribers = Gauge::<i64>::default();
    subscribers.set(gauge(hub.events().subscribers()));
    reg.register(
        "event_subscribers",
        "Open event subscriptions (SSE streams and the server's own subscribers)",
        subscribers,
    );
    let websockets = Gauge::<i64>::default();
    websockets.set(gauge(
        hub.websockets().load(std::sync::atomic::Ordering::Relaxed),
    ));
    reg.register(
        "websockets",
        "Open /control WebSockets of the whole server",
        websockets,
    );
    if let Some(mqtt) = hub.mqtt() {
        let connected = Gauge::<i64>::default();
        connected.set(i64::from(mqtt.connected()));
        reg.register(
            "mqtt_connected",
            "Whether the MQTT broker connection is up (1) or not (0)",
            connected,
        );
        let ignored = Counter::<u64>::default();
        ignored.inc_by(mqtt.report().ignored);
        reg.register(
            "mqtt_ignored",
            "Messages from the MQTT broker passed over (retained or oversized commands, \
             commands beyond the queue); the broker itself discards those over 1 MiB",
            ignored,
        );
    }
    if let Some(up) = hub.uploads() {
        let c = up.counts();
        let queued = Gauge::<i64>::default();
        queued.set(gauge(c.queued));
        reg.register(
            "upload_queue_items",
            "Uploads and webhook calls waiting in the queue",
            queued,
        );
        let results = Family::<ResultLabel, Counter>::default();
        for (result, n) in [
            ("sent", c.sent),
            ("failed", c.failed),
            ("dropped", c.dropped),
        ] {
            results.get_or_create(&ResultLabel { result }).inc_by(n);
        }
        reg.register(
            "uploads",
            "Queued uploads and webhook calls that left the queue, by result",
            results,
        );
    }
    let c = hub.push().counts();
    let queued = Gauge::<i64>::default();
    queued.set(i64::try_from(c.queued).unwrap_or(i64::MAX));
    reg.register(
        "notification_queue_items",
        "Phone notifications (Web Push, ntfy) waiting in the outbox",
        queued,
    );
    let results = Family::<ChannelResult, Counter>::default();
    for (channel, result, n) in [
        ("webpush", "sent", c.sent_webpush),
        ("ntfy", "sent", c.sent_ntfy),
        ("any", "failed", c.failed),
        ("any", "retried", c.retries),
    ] {
        results
            .get_or_create(&ChannelResult { channel, result })
            .inc_by(n);
    }
    reg.register(
        "notifications",
        "Phone notification attempts by channel and result (failed: given up; retried: \
         failed attempts tried again)",
        results,
    );
}

/// A notification's channel and result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ChannelResult {
    channel: &'static str,
    result: &'static str,
}

/// A count as a gauge's value.
fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
