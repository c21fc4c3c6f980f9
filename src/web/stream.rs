//! `/snapshot.jpg` and `/stream.jpg`: the latest frame to many viewers.
//!
//! Every viewer reads the shared `watch` channel at its own pace. The body is
//! only polled when the socket can take more, so a slow viewer holds at most
//! one frame and simply gets the newest one next; it never queues old frames,
//! never slows the source and never slows another viewer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use super::query::Query;
use super::state::AppState;
use crate::frame::{Frame, LatestFrame, BOUNDARY, FIRST_BOUNDARY};

/// Slowest `?fps=`: a frame every 10 s. Bounded so that the gap between
/// frames is a sane `Duration` (a tiny fps such as `1e-20` overflowed it and
/// panicked the handler) and a viewer slot is not held for nothing.
const MIN_FPS: f64 = 0.1;
/// Fastest `?fps=`: above any camera's rate, so it never limits.
const MAX_FPS: f64 = 120.0;

/// `GET /snapshot.jpg`.
pub async fn snapshot(State(app): State<AppState>) -> Result<Response, ApiError> {
    let frame = app.cam.latest_frame().ok_or(ApiError::NoFrame)?;
    let jpeg = frame.jpeg_async().await;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        [("x-timestamp", format!("{:.3}", frame.unix_secs()))],
        jpeg,
    )
        .into_response())
}

/// Query of `/stream.jpg`.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// Caps this viewer's frame rate (for slow links).
    fps: Option<f64>,
}

/// `GET /stream.jpg`: MJPEG until the client leaves or the server stops.
///
/// Before the camera's first frame the response starts all the same (200,
/// headers and the opening boundary) and the first part follows when the
/// frame comes: a client started with the server (Home Assistant after a
/// power cut, a chained lookout, a recorder) gets a stream, not an error.
/// The viewer's slot is taken at once, as for any viewer.
pub async fn stream(
    State(app): State<AppState>,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let min_gap = match q.fps {
        None => None,
        Some(f) if (MIN_FPS..=MAX_FPS).contains(&f) => Some(Duration::from_secs_f64(1.0 / f)),
        // NaN and infinities fail the range check too.
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "fps must be between {MIN_FPS} and {MAX_FPS}"
            )))
        }
    };
    if app.hub.viewers() >= app.hub.server().caps().max_viewers {
        return Err(ApiError::Busy("too many viewers"));
    }
    let (rx, watching) = app.cam.watch_jpegs();
    let viewer = Viewer {
        rx,
        _watching: watching,
        cancel: app.hub.shutdown().clone(),
        min_gap,
        last_sent: None,
        _place: app.cam.enter_viewer(),
    };
    let parts = stream::once(async { Bytes::from_static(FIRST_BOUNDARY) })
        .chain(stream::unfold(viewer, |mut v| async move {
            let frame = v.next_frame().await?;
            Some((frame.part(), v))
        }))
        .map(Ok::<_, std::io::Error>);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&format!("multipart/x-mixed-replace; boundary={BOUNDARY}"))
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // Reverse proxies (nginx) must not buffer a live stream.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(parts),
    )
        .into_response())
}

/// One viewer's position in the frame channel.
struct Viewer {
    rx: LatestFrame,
    cancel: CancellationToken,
    min_gap: Option<Duration>,
    last_sent: Option<Instant>,
    _place: crate::cam::ViewerPlace,
    /// Keeps JPEGs made of a decoded camera's pictures while it watches.
    _watching: crate::frame::Watching,
}

impl Viewer {
    /// The next frame this viewer should get: the current one at once on the
    /// first call (or the camera's first frame, when it has none yet), then
    /// each newer one (the newest, when several came in between). `None`
    /// ends the stream (shutdown or source gone).
    async fn next_frame(&mut self) -> Option<Arc<Frame>> {
        if let (Some(gap), Some(last)) = (self.min_gap, self.last_sent) {
            tokio::select! {
                _ = tokio::time::sleep_until(last + gap) => {}
                _ = self.cancel.cancelled() => return None,
            }
        }
        loop {
            if self.last_sent.is_some() || self.rx.borrow().is_none() {
                tokio::select! {
                    r = self.rx.changed() => r.ok()?,
                    _ = self.cancel.cancelled() => return None,
                }
            }
            if let Some(frame) = self.rx.borrow_and_update().clone() {
                self.last_sent = Some(Instant::now());
                return Some(frame);
            }
        }
    }
}
