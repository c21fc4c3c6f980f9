//! Camera sources and the supervisor that keeps one running.
//!
//! Each source kind is an async `run` that publishes JPEGs through an
//! [`Output`] until it fails or ends; the [`Supervisor`] restarts it with
//! backoff forever, keeps the last good frame on show, and records the state
//! that `/status` reports. Sources never wait for consumers: publishing is a
//! `watch` send.

mod error;
pub mod exec;
pub mod file;
pub mod http;
pub mod mjpeg;
mod output;
pub mod rtsp;
pub mod scene;
pub mod spec;
pub mod synthetic;
pub mod v4l2;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::frame::FrameSink;
pub use error::SourceError;
use error::STALL_TIMEOUT;
pub use output::{Output, SourceState, SourceStatus, StatusCell, StreamInfo};
pub use spec::{SourceSpec, SpecError};

/// First wait before restarting a failed source.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest wait between restarts: a camera that comes back is picked up within this.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A source that delivered frames this long is considered healthy again, so its
/// next failure restarts quickly instead of at the last backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// How often the supervisor's loop says it is alive (in every state, the
/// backoff after a failure included), for the systemd watchdog (`notify`).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Keeps one source running: start, watch for stalls, restart with backoff.
pub struct Supervisor {
    spec: SourceSpec,
    output: Output,
}

impl Supervisor {
    /// A supervisor for `spec` publishing into `sink`. `uri` is the original
    /// text, shown (redacted) on `/status`.
    pub fn new(
        spec: SourceSpec,
        uri: &str,
        sink: FrameSink,
    ) -> (Supervisor, StatusCell, watch::Receiver<SourceState>) {
        let (output, status, states_rx) = Output::new(uri, sink, false);
        (Supervisor { spec, output }, status, states_rx)
    }

    /// Sends the source's compressed frames (an RTSP camera's H.264 or
    /// H.265) to `feed` as well, as they arrive.
    pub fn with_video(mut self, feed: std::sync::Arc<crate::video::VideoFeed>) -> Supervisor {
        self.output.set_video(feed);
        self
    }

    /// A supervisor for a stream that is read but not decoded: an IP
    /// camera's main stream when a substream is decoded for detection. It
    /// runs (and is reported, restarted and watched for stalls) like any
    /// source, but publishes no frames.
    pub fn passthrough(
        spec: SourceSpec,
        uri: &str,
    ) -> (Supervisor, StatusCell, watch::Receiver<SourceState>) {
        let (sink, _) = FrameSink::new();
        let (output, status, states_rx) = Output::new(uri, sink, true);
        (Supervisor { spec, output }, status, states_rx)
    }

    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = BACKOFF_START;
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let started = Instant::now();
            let source = run_source(&self.spec, &self.output, &cancel);
            tokio::pin!(source);
            let result = loop {
                tokio::select! {
                    r = &mut source => break r,
                    // Stateless: made anew after each beat.
                    r = watch_stall(&self.output, started) => break Err(r),
                    _ = cancel.cancelled() => return,
                    _ = beat.tick() => self.output.beat(),
                }
            };
            if cancel.is_cancelled() {
                return;
            }
            let err = result.err().unwrap_or(SourceError::Ended);
            let healthy = self
                .output
                .last_frame()
                .is_some_and(|t| t > started && started.elapsed() >= HEALTHY_AFTER);
            if healthy {
                backoff = BACKOFF_START;
            }
            let err = self.output.redact(&err.to_string());
            tracing::warn!(
                "source {} stopped: {err}; retrying in {:.1} s",
                self.output.uri(),
                backoff.as_secs_f64()
            );
            self.output.set_state(SourceState::Failed, Some(err));
            let wait = tokio::time::sleep(backoff);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    _ = cancel.cancelled() => return,
                    _ = beat.tick() => self.output.beat(),
                }
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            self.output.set_state(SourceState::Reconnecting, None);
        }
    }
}

/// Resolves when the source has sent nothing for [`STALL_TIMEOUT`].
async fn watch_stall(output: &Output, started: Instant) -> SourceError {
    loop {
        let last = output
            .last_sign_of_life()
            .filter(|t| *t > started)
            .unwrap_or(started);
        let deadline = last + STALL_TIMEOUT;
        if Instant::now() >= deadline {
            return SourceError::Stalled;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

async fn run_source(
    spec: &SourceSpec,
    out: &Output,
    cancel: &CancellationToken,
) -> Result<(), SourceError> {
    match spec {
        SourceSpec::Synthetic { size, fps, motion } => {
            synthetic::run(*size, *fps, *motion, out).await
        }
        SourceSpec::Exec { command } => exec::run(command, out).await,
        SourceSpec::Http { url, fps } => http::run(url, *fps, out).await,
        SourceSpec::File { path, fps } => file::run(path, *fps, out).await,
        SourceSpec::Rtsp { url, transport } => rtsp::run(url, *transport, out).await,
        SourceSpec::V4l2(opts) => run_v4l2(opts.clone(), out.clone(), cancel.child_token()).await,
    }
}

/// Runs the blocking V4L2 capture on its own thread; cancelling stops it at the
/// next frame.
async fn run_v4l2(
    opts: v4l2::V4l2Options,
    out: Output,
    cancel: CancellationToken,
) -> Result<(), SourceError> {
    let stop = cancel.clone();
    let _guard = cancel.drop_guard();
    let task = tokio::task::spawn_blocking(move || {
        v4l2::capture(&opts, &mut |jpeg| {
            out.publish_one(Bytes::from(jpeg));
            !stop.is_cancelled()
        })
    });
    match task.await {
        Ok(r) => r.map_err(SourceError::from),
        Err(e) => Err(SourceError::Exec(format!(
            "v4l2 capture thread failed: {e}"
        ))),
    }
}
