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

use crate::hub::Hub;
use crate::metrics::{
    CameraLabel, CameraResultLabels, FloatGauge, ResultLabel, CONTENT_TYPE, UNMATCHED,
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

/// Registers the series read from the running state at scrape time.
fn register_state(reg: &mut Registry, hub: &Hub) {
    let motion_active = Family::<CameraLabel, Gauge>::default();
    let up = Family::<CameraLabel, Gauge>::default();
    let restarts = Family::<CameraLabel, Counter>::default();
    let bad_frames = Family::<CameraLabel, Counter>::default();
    let frames = Family::<CameraLabel, Counter>::default();
    let fps = Family::<CameraLabel, FloatGauge>::default();
    let viewers = Family::<CameraLabel, Gauge>::default();
    let person_available = Family::<CameraLabel, Gauge>::default();
    let person_skipped = Family::<CameraLabel, Counter>::default();
    let clip_recording = Family::<CameraLabel, Gauge>::default();
    let clips = Family::<CameraResultLabels, Counter>::default();
    let clip_dropped = Family::<CameraLabel, Counter>::default();
    let clip_buffer = Family::<CameraLabel, Gauge>::default();
    for cam in hub.cams() {
        let label = CameraLabel {
            camera: cam.name.clone(),
        };
        let (state, restarted, rate, bad) = {
            let s = cam.cam.source();
            (s.state, s.restarts, s.fps, s.bad_frames)
        };
        up.get_or_create(&label)
            .set(i64::from(state == SourceState::Running));
        restarts.get_or_create(&label).inc_by(restarted);
        bad_frames.get_or_create(&label).inc_by(bad);
        frames.get_or_create(&label).inc_by(cam.cam.frame_count());
        fps.get_or_create(&label).set(rate);
        let open = cam.cam.viewers();
        viewers.get_or_create(&label).set(gauge(open));
        let person = &cam.check;
        person_available
            .get_or_create(&label)
            .set(i64::from(person.available()));
        person_skipped
            .get_or_create(&label)
            .inc_by(person.skipped());
        let clip = cam.recorder.status();
        clip_recording
            .get_or_create(&label)
            .set(i64::from(clip.recording.is_some()));
        for (result, n) in [("saved", clip.saved), ("failed", clip.failed)] {
            clips
                .get_or_create(&CameraResultLabels {
                    camera: cam.name.clone(),
                    result,
                })
                .inc_by(n);
        }
        clip_dropped
            .get_or_create(&label)
            .inc_by(clip.dropped_frames);
        clip_buffer
            .get_or_create(&label)
            .set(i64::try_from(clip.buffer_bytes).unwrap_or(i64::MAX));
        motion_active
            .get_or_create(&label)
            .set(i64::from(cam.cam.motion_active()));
    }
    reg.register(
        "source_up",
        "Whether the camera's source delivers frames (1) or not (0)",
        up,
    );
    reg.register(
        "source_restarts",
        "Restarts of the camera's source",
        restarts,
    );
    reg.register(
        "source_bad_frames",
        "Data from the camera refused instead of shown: not a whole JPEG, over the size cap, \
         absurd dimensions, or a mebibyte of bytes outside any frame",
        bad_frames,
    );
    reg.register("frames", "Frames received from the camera", frames);
    reg.register(
        "source_fps",
        "Frames per second the camera delivers, measured over the last second",
        fps,
    );
    reg.register("stream_viewers", "Open MJPEG stream viewers", viewers);
    reg.register(
        "person_check_available",
        "Whether the person check can run on the camera (1: the model is loaded) or not (0)",
        person_available,
    );
    reg.register(
        "clip_recording",
        "Whether a clip is being recorded (1) or not (0)",
        clip_recording,
    );
    reg.register(
        "clips",
        "Clips that ended, by result: saved, or failed (the disk refused them)",
        clips,
    );
    reg.register(
        "clip_dropped_frames",
        "Frames left out of clips because the disk could not keep up",
        clip_dropped,
    );
    reg.register(
        "clip_buffer_bytes",
        "Bytes of frames held in memory for the next clip's pre-roll",
        clip_buffer,
    );
    reg.register(
        "person_checks_skipped",
        "Person checks due but not run because the camera's previous check was still running \
         or the checker's queue was full",
        person_skipped,
    );
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
    // Last, where the counted families had it before it became state.
    reg.register(
        "motion_active",
        "Whether a motion episode is under way (1) or not (0)",
        motion_active,
    );
}

/// A count as a gauge's value.
fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
