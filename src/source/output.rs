//! What a source publishes through ([`Output`]): the frame channel, and the
//! status `/status` reports ([`SourceStatus`]), kept as frames arrive, are
//! refused, or the supervisor changes the state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;

use super::mjpeg::one_frame;
use crate::frame::FrameSink;
use crate::picture::Picture;
use crate::redact::Redactor;
use crate::video::VideoFeed;

/// At most one log line per this interval about refused frames, per source:
/// a camera sending nothing but garbage must not fill the SD card with logs.
/// `bad_frames` on `/status` and `/metrics` counts every one.
const BAD_FRAME_LOG_EVERY: Duration = Duration::from_secs(10);

/// Lifecycle of the source, as `/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// First attempt, no frame yet.
    Starting,
    /// Frames are arriving.
    Running,
    /// The last attempt failed; waiting for the backoff to pass.
    Failed,
    /// A new attempt after a failure, no frame yet.
    Reconnecting,
}

/// What `/status` reports about the source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    /// The `--source` URI with passwords removed.
    pub uri: String,
    /// Current state.
    pub state: SourceState,
    /// The last failure, kept after recovery so a flaky camera is visible.
    pub last_error: Option<String>,
    /// Restarts since start.
    pub restarts: u64,
    /// Measured frames per second over the last second or so.
    pub fps: f64,
    /// Size of the latest frame.
    pub width: u16,
    /// Size of the latest frame.
    pub height: u16,
    /// Data refused instead of shown: buffers that are not a whole JPEG
    /// (random bytes, cut short, broken), frames over the size cap, headers
    /// claiming more than 16384 pixels on a side, and every mebibyte of
    /// bytes outside any frame (a part header that never ends).
    pub bad_frames: u64,
    /// Process id of an `exec:` child, or of an RTSP camera's decoder, for
    /// operators (and tests) that need it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// What a camera that sends compressed video (RTSP) sends: codec,
    /// profile, size, and the rate, bitrate and keyframe interval measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamInfo>,
    #[serde(skip)]
    fps_window: Option<(Instant, u32)>,
    #[serde(skip)]
    last_frame: Option<Instant>,
    /// When the source last received data that will become a frame (an
    /// RTSP camera's compressed frame, which waits for a keyframe before
    /// anything can be shown): the stall watchdog counts it as life.
    #[serde(skip)]
    last_data: Option<Instant>,
    #[serde(skip)]
    bad_frame_logged: Option<Instant>,
    /// When the supervisor's loop last ran (see [`HEARTBEAT`](super::HEARTBEAT)).
    #[serde(skip)]
    heartbeat: Option<Instant>,
}

impl SourceStatus {
    fn new(uri: String) -> Self {
        SourceStatus {
            uri,
            state: SourceState::Starting,
            last_error: None,
            restarts: 0,
            fps: 0.0,
            width: 0,
            height: 0,
            bad_frames: 0,
            pid: None,
            stream: None,
            fps_window: None,
            last_frame: None,
            last_data: None,
            bad_frame_logged: None,
            heartbeat: None,
        }
    }

    /// Milliseconds since the last frame, if there was one.
    pub fn last_frame_age_ms(&self) -> Option<u64> {
        self.last_frame.map(|t| t.elapsed().as_millis() as u64)
    }

    /// Milliseconds since the source last received data, if it has.
    pub fn last_data_age_ms(&self) -> Option<u64> {
        self.last_data.map(|t| t.elapsed().as_millis() as u64)
    }

    /// How long ago the supervisor's loop last ran, if it has.
    pub fn heartbeat_age(&self) -> Option<Duration> {
        self.heartbeat.map(|t| t.elapsed())
    }
}

/// A compressed stream as it arrives (before any decoding).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamInfo {
    /// `h264`, `h265` or `jpeg`.
    pub codec: String,
    /// The profile, e.g. `Main` or `High`, when known.
    pub profile: Option<String>,
    /// The codec in RFC 6381 form (`avc1.4D401F`), what a browser is asked
    /// whether it can play.
    pub rfc6381: Option<String>,
    /// Picture width from the stream's parameters (0 until known).
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second arriving, measured.
    pub fps: Option<f64>,
    /// Bits per second arriving, in thousands, measured.
    pub bitrate_kbps: Option<u64>,
    /// Seconds between the last two keyframes.
    pub keyframe_interval_s: Option<f64>,
    /// `tcp` (interleaved in the RTSP connection) or `udp`.
    pub transport: &'static str,
}

/// Shared, cheaply readable source status.
pub type StatusCell = Arc<Mutex<SourceStatus>>;

/// What a source publishes through: the frame channel plus status bookkeeping.
#[derive(Clone)]
pub struct Output {
    sink: FrameSink,
    status: StatusCell,
    /// State changes, for the `source` events (up/down) on the bus.
    states: Arc<watch::Sender<SourceState>>,
    /// Hides the URI's secrets in everything the source reports.
    redactor: Redactor,
    /// The stream is read for passing through, not decoded into frames:
    /// received data, not published frames, is what makes it run.
    passthrough: bool,
    /// Where a source of compressed video (RTSP) puts its frames as they
    /// come, for the live view.
    video: Option<Arc<VideoFeed>>,
}

impl Output {
    /// The output of the source named `uri` (shown redacted on `/status`),
    /// publishing into `sink`; with the status it keeps and its state
    /// changes.
    pub(super) fn new(
        uri: &str,
        sink: FrameSink,
        passthrough: bool,
    ) -> (Output, StatusCell, watch::Receiver<SourceState>) {
        let redactor = Redactor::for_source(uri);
        let status = Arc::new(Mutex::new(SourceStatus::new(redactor.apply(uri))));
        let (states, states_rx) = watch::channel(SourceState::Starting);
        let output = Output {
            sink,
            status: status.clone(),
            states: Arc::new(states),
            redactor,
            passthrough,
            video: None,
        };
        (output, status, states_rx)
    }

    /// The source's URI, its secrets hidden.
    pub(super) fn uri(&self) -> String {
        lock(&self.status).uri.clone()
    }

    /// `text` (a program's output, an error) with the source's secrets hidden:
    /// everything a source logs or reports goes through this.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.apply(text)
    }

    /// Publishes one JPEG; a buffer that is not a whole JPEG of a sane size
    /// ([`crate::frame::check_jpeg`]) is counted and dropped.
    pub fn publish(&self, jpeg: Bytes) {
        self.published(self.sink.publish(jpeg));
    }

    /// Publishes a decoded picture (its JPEG is made only when asked for).
    pub fn publish_picture(&self, picture: Picture) {
        self.published(Ok(self.sink.publish_picture(picture)));
    }

    /// Keeps the status of a frame published, or counts one refused.
    fn published(&self, frame: Result<Arc<crate::frame::Frame>, crate::frame::FrameError>) {
        let mut st = lock(&self.status);
        match frame {
            Ok(frame) => {
                let now = frame.captured_mono;
                if st.state != SourceState::Running {
                    st.state = SourceState::Running;
                    self.states.send_replace(SourceState::Running);
                }
                st.width = frame.width;
                st.height = frame.height;
                st.last_frame = Some(now);
                let (start, n) = st.fps_window.unwrap_or((now, 0));
                let elapsed = now.duration_since(start);
                if elapsed >= Duration::from_secs(1) {
                    st.fps = (f64::from(n) / elapsed.as_secs_f64() * 10.0).round() / 10.0;
                    st.fps_window = Some((now, 1));
                } else {
                    st.fps_window = Some((start, n + 1));
                }
            }
            Err(e) => {
                drop(st);
                self.reject(&e);
            }
        }
    }

    /// Publishes the picture in a buffer meant to hold one (a snapshot URL's
    /// answer, a `.jpg` file, a V4L2 buffer): see [`one_frame`].
    pub fn publish_one(&self, data: Bytes) {
        match one_frame(data) {
            Ok(jpeg) => self.publish(jpeg),
            Err(e) => self.reject(&e),
        }
    }

    /// Counts data the source sent that was refused, and says why in the log
    /// (at most once per [`BAD_FRAME_LOG_EVERY`]).
    pub fn reject(&self, why: &dyn std::fmt::Display) {
        let mut st = lock(&self.status);
        st.bad_frames += 1;
        let now = Instant::now();
        let quiet = st
            .bad_frame_logged
            .is_none_or(|t| now.duration_since(t) >= BAD_FRAME_LOG_EVERY);
        if quiet {
            st.bad_frame_logged = Some(now);
            tracing::warn!(
                bad_frames = st.bad_frames,
                "source {} sent a bad frame, not shown: {why} ({} so far)",
                st.uri,
                st.bad_frames
            );
        }
    }

    /// Records what a compressed stream is and how it arrives.
    pub fn set_stream(&self, info: StreamInfo) {
        let mut st = lock(&self.status);
        if self.passthrough {
            // No decoded frames to measure: the stream's figures are the ones.
            st.width = u16::try_from(info.width).unwrap_or(u16::MAX);
            st.height = u16::try_from(info.height).unwrap_or(u16::MAX);
            st.fps = info.fps.unwrap_or(0.0);
        }
        st.stream = Some(info);
    }

    /// Records the process id of a child process (exec sources).
    pub fn set_pid(&self, pid: Option<u32>) {
        lock(&self.status).pid = pid;
    }

    pub(super) fn beat(&self) {
        lock(&self.status).heartbeat = Some(Instant::now());
    }

    pub(super) fn last_frame(&self) -> Option<Instant> {
        lock(&self.status).last_frame
    }

    /// Records a sign of life at `now` that is not yet data (a camera's
    /// answer while setting up): the stall watchdog counts from it.
    pub(super) fn alive(&self, now: Instant) {
        lock(&self.status).last_data = Some(now);
    }

    /// Records that the source received data at `now` (see `last_data`);
    /// for a passed-through stream, that it runs.
    pub(super) fn heard(&self, now: Instant) {
        let mut st = lock(&self.status);
        st.last_data = Some(now);
        if self.passthrough && st.state != SourceState::Running {
            st.state = SourceState::Running;
            drop(st);
            self.states.send_replace(SourceState::Running);
        }
    }

    /// The feed the source's compressed frames go to, if any.
    pub(super) fn video(&self) -> Option<&Arc<VideoFeed>> {
        self.video.as_ref()
    }

    pub(super) fn set_video(&mut self, feed: Arc<VideoFeed>) {
        self.video = Some(feed);
    }

    /// Whether the stream is only passed through (see [`Supervisor::passthrough`](super::Supervisor::passthrough)).
    pub(super) fn passthrough(&self) -> bool {
        self.passthrough
    }

    /// The latest of the last frame and the last data received: what the
    /// stall watchdog counts from.
    pub(super) fn last_sign_of_life(&self) -> Option<Instant> {
        let st = lock(&self.status);
        st.last_frame.max(st.last_data)
    }

    pub(super) fn set_state(&self, state: SourceState, error: Option<String>) {
        let mut st = lock(&self.status);
        st.state = state;
        if let Some(e) = error {
            st.last_error = Some(self.redact(&e));
            st.pid = None;
        }
        if state == SourceState::Reconnecting {
            st.restarts += 1;
        }
        drop(st);
        self.states.send_replace(state);
    }
}

/// Locks the status, recovering from a poisoned lock (the data is plain values,
/// always consistent).
fn lock(cell: &StatusCell) -> std::sync::MutexGuard<'_, SourceStatus> {
    crate::sync::lock(cell)
}
