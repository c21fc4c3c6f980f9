//! Prometheus metrics: the counters lookout keeps for things that happen, and
//! the text exposition that `GET /metrics` serves.
//!
//! Two kinds, on purpose:
//! - What already exists as state (a source's state, restarts and rate, the
//!   frame counter, viewers, subscribers, the upload queue and its sent,
//!   failed and dropped counts, the clip recorder's counts and pre-roll, the
//!   person check's availability and skipped checks) is read when Prometheus
//!   scrapes, in [`Metrics::render`]. Nothing is counted twice, and the
//!   per-frame path pays nothing: the frame counter is the sequence number
//!   frames already carry.
//! - What happens and leaves no state behind (motion episodes, the time each
//!   analysis and each person check takes, person episodes, snapshots saved,
//!   HTTP requests) is counted where it happens, through the families kept
//!   here. Each camera holds its own children ([`CamMetrics`]), so counting
//!   is an atomic add, never a lookup.
//!
//! Names follow Prometheus' conventions: the `lookout_` prefix, base units
//! (seconds), `_total` on counters, and a `camera` label on everything that
//! belongs to one camera.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::hub::Hub;
use crate::snaps::Trigger;
use crate::source::SourceState;

/// The `Content-Type` of the text exposition format (version 0.0.4), the one
/// every Prometheus and `promtool check metrics` read.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The route label of a request no route matched (the dashboard's files,
/// which the fallback serves, and 404s): a fixed word, so a scanner trying
/// random paths cannot grow the number of series.
pub const UNMATCHED: &str = "unmatched";

/// Why `/metrics` could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The encoder refused a value (a bug, never the client's fault).
    #[error("cannot encode the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// A series that belongs to one camera.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraLabel {
    camera: String,
}

/// A snapshot saved: whose, and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SnapshotLabels {
    camera: String,
    trigger: &'static str,
}

/// An HTTP request: the route's pattern (never the raw path: one series per
/// route, not per URL) and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    code: u16,
}

/// One outcome of the upload queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// One outcome of a camera's clips.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraResultLabels {
    camera: String,
    result: &'static str,
}

/// The build, as a constant series carrying the version.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// A gauge holding a float (the motion score, frames per second).
type FloatGauge = Gauge<f64, AtomicU64>;

/// A per-camera histogram family's type (its constructor sets the buckets).
type HistogramFamily = Family<CameraLabel, Histogram, fn() -> Histogram>;

/// Buckets of `lookout_motion_analysis_seconds`: 0.5 ms doubling to 64 ms.
/// One analysis of a frame takes 1-3 ms at 720p on a desktop and some tens
/// of milliseconds on a Raspberry Pi, so both ends land inside.
fn analysis_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 8))
}

/// Buckets of `lookout_person_check_seconds`: 10 ms doubling to 2.56 s. A
/// check takes about 0.1 s on a desktop core and most of a second on a
/// Raspberry Pi; a check slower than the rate of checks asked for is what an
/// operator needs to see.
fn person_check_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 9))
}

/// The counted metrics of the whole server, shared by every camera and the
/// router.
pub struct Metrics {
    episodes: Family<CameraLabel, Counter>,
    analysis: HistogramFamily,
    motion_active: Family<CameraLabel, Gauge>,
    motion_score: Family<CameraLabel, FloatGauge>,
    person_checks: HistogramFamily,
    person_episodes: Family<CameraLabel, Counter>,
    snapshots: Family<SnapshotLabels, Counter>,
    http: Family<HttpLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty families.
    pub fn new() -> Metrics {
        Metrics {
            episodes: Family::default(),
            analysis: Family::new_with_constructor(analysis_histogram),
            motion_active: Family::default(),
            motion_score: Family::default(),
            person_checks: Family::new_with_constructor(person_check_histogram),
            person_episodes: Family::default(),
            snapshots: Family::default(),
            http: Family::default(),
        }
    }

    /// The handles camera `name` counts through.
    pub fn camera(&self, name: &str) -> CamMetrics {
        let label = CameraLabel {
            camera: name.to_string(),
        };
        // Created now, so a camera's series show (at 0) before its first
        // episode: `rate()` and `increase()` need the zero to see the first.
        for trigger in [Trigger::Manual, Trigger::Motion, Trigger::Person] {
            let _created = self.snapshots.get_or_create(&SnapshotLabels {
                camera: name.to_string(),
                trigger: trigger.as_str(),
            });
        }
        CamMetrics {
            episodes: self.episodes.get_or_create(&label).clone(),
            analysis: self.analysis.get_or_create(&label).clone(),
            active: self.motion_active.get_or_create(&label).clone(),
            score: self.motion_score.get_or_create(&label).clone(),
            person_check: self.person_checks.get_or_create(&label).clone(),
            person_episodes: self.person_episodes.get_or_create(&label).clone(),
            snapshots: self.snapshots.clone(),
            name: name.to_string(),
        }
    }

    /// Counts one answered HTTP request. `route` is the route's pattern, or
    /// [`UNMATCHED`].
    pub fn http_request(&self, route: &str, code: u16) {
        self.http
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                code,
            })
            .inc();
    }

    /// The text exposition: the counted families plus the state of `hub`
    /// read now.
    pub fn render(&self, hub: &Hub) -> Result<String, MetricsError> {
        let mut reg = Registry::with_prefix("lookout");
        reg.register(
            "build",
            "lookout's version (always 1)",
            Info::new(VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        register_state(&mut reg, hub);
        reg.register(
            "motion_active",
            "Whether a motion episode is under way (1) or not (0)",
            self.motion_active.clone(),
        );
        reg.register(
            "motion_score",
            "The motion score of the last analysed frame, 0-100",
            self.motion_score.clone(),
        );
        reg.register(
            "motion_episodes",
            "Motion episodes started",
            self.episodes.clone(),
        );
        reg.register(
            "motion_analysis_seconds",
            "Time to analyse one frame for motion (decode, compare, blobs)",
            self.analysis.clone(),
        );
        reg.register(
            "person_check_seconds",
            "Time of one person check (the detector on a motion frame's region), \
             queueing excluded",
            self.person_checks.clone(),
        );
        reg.register(
            "person_episodes",
            "Motion episodes in which the person check saw a person",
            self.person_episodes.clone(),
        );
        reg.register(
            "snapshots",
            "Snapshots saved, by what caused them",
            self.snapshots.clone(),
        );
        reg.register(
            "http_requests",
            "HTTP requests answered, by route pattern and status code",
            self.http.clone(),
        );
        let mut out = String::new();
        prometheus_text::encode(&mut out, &reg)?;
        Ok(out)
    }
}

/// Registers the series read from the running state at scrape time.
fn register_state(reg: &mut Registry, hub: &Hub) {
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
            let s = crate::sync::lock(cam.source_status());
            (s.state, s.restarts, s.fps, s.bad_frames)
        };
        up.get_or_create(&label)
            .set(i64::from(state == SourceState::Running));
        restarts.get_or_create(&label).inc_by(restarted);
        bad_frames.get_or_create(&label).inc_by(bad);
        frames.get_or_create(&label).inc_by(cam.frames().count());
        fps.get_or_create(&label).set(rate);
        let open = cam.viewers().load(std::sync::atomic::Ordering::Relaxed);
        viewers.get_or_create(&label).set(gauge(open));
        let person = cam.person();
        person_available
            .get_or_create(&label)
            .set(i64::from(person.available()));
        person_skipped
            .get_or_create(&label)
            .inc_by(person.skipped());
        let clip = cam.recorder().status();
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
}

/// A count as a gauge's value.
fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One camera's counting handles; each is an atomic add.
pub struct CamMetrics {
    name: String,
    episodes: Counter,
    analysis: Histogram,
    active: Gauge,
    score: FloatGauge,
    person_check: Histogram,
    person_episodes: Counter,
    snapshots: Family<SnapshotLabels, Counter>,
}

impl CamMetrics {
    /// One motion episode started.
    pub fn episode(&self) {
        self.episodes.inc();
    }

    /// One frame analysed in `seconds`, with its score and whether an
    /// episode is under way after it.
    pub fn analysed(&self, seconds: f64, score: f32, active: bool) {
        self.analysis.observe(seconds);
        self.score.set(f64::from(score));
        self.active.set(i64::from(active));
    }

    /// Whether an episode is under way.
    pub fn active(&self) -> bool {
        self.active.get() != 0
    }

    /// The episode ended without a frame (the camera went quiet).
    pub fn motion_ended(&self) {
        self.active.set(0);
    }

    /// One person check done in `seconds`.
    pub fn person_checked(&self, seconds: f64) {
        self.person_check.observe(seconds);
    }

    /// One motion episode confirmed as a person.
    pub fn person_seen(&self) {
        self.person_episodes.inc();
    }

    /// One snapshot saved.
    pub fn snapshot(&self, trigger: Trigger) {
        self.snapshots
            .get_or_create(&SnapshotLabels {
                camera: self.name.clone(),
                trigger: trigger.as_str(),
            })
            .inc();
    }
}
