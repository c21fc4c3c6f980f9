//! Prometheus metrics: the counters lookout keeps for things that happen, and
//! the text exposition that `GET /metrics` serves.
//!
//! Two kinds, on purpose:
//! - What already exists as state (a source's state, restarts and rate, the
//!   frame counter, viewers, subscribers, the upload queue and its sent,
//!   failed and dropped counts, the clip recorder's counts and pre-roll, the
//!   person check's availability and skipped checks, whether motion is under
//!   way) is read when Prometheus scrapes, by the caller of
//!   [`Metrics::render`] (`web::metrics`): this module is a leaf that knows
//!   no camera. Nothing is counted twice, and the
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

use crate::snaps::Trigger;

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
pub struct CameraLabel {
    pub camera: String,
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
pub struct ResultLabel {
    pub result: &'static str,
}

/// One outcome of a camera's clips.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraResultLabels {
    pub camera: String,
    pub result: &'static str,
}

/// A camera and one of its compressed streams (`main` or `detect`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraStreamLabels {
    pub camera: String,
    pub stream: &'static str,
}

/// The build, as a constant series carrying the version.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// A gauge holding a float (the motion score, frames per second).
pub type FloatGauge = Gauge<f64, AtomicU64>;

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
    missed: Family<CameraLabel, Counter>,
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
            missed: Family::default(),
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
            missed: self.missed.get_or_create(&label).clone(),
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

    /// The text exposition: the counted families plus the series `state`
    /// registers, read from the running server now (this module knows
    /// nothing of it: the caller does, see `web::metrics`).
    pub fn render(&self, state: impl FnOnce(&mut Registry)) -> Result<String, MetricsError> {
        let mut reg = Registry::with_prefix("lookout");
        reg.register(
            "build",
            "lookout's version (always 1)",
            Info::new(VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        state(&mut reg);
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
            "motion_frames_missed",
            "Frames the detector was due to analyse but missed, its previous analysis \
             still running (a core too busy for the camera)",
            self.missed.clone(),
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

/// One camera's counting handles; each is an atomic add.
pub struct CamMetrics {
    name: String,
    episodes: Counter,
    analysis: Histogram,
    missed: Counter,
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

    /// One frame analysed in `seconds`, with its score.
    pub fn analysed(&self, seconds: f64, score: f32) {
        self.analysis.observe(seconds);
        self.score.set(f64::from(score));
    }

    /// `n` frames the detector was due to analyse and missed.
    pub fn analyses_missed(&self, n: u64) {
        self.missed.inc_by(n);
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
