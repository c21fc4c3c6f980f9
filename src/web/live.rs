//! `/live.mp4` (and `/cams/NAME/live.mp4`): an IP camera's own H.264 or
//! H.265 as fragmented MP4 over plain HTTP, for the dashboard's Media Source
//! Extensions player, at the camera's bitrate instead of MJPEG's.
//!
//! The response starts with the init segment and the newest keyframe, then
//! gives every frame as one fragment as it arrives: nothing is re-encoded.
//! The body is polled only when the socket takes more, so a slow client
//! falls behind in the feed, never in a queue: past [`MAX_LAG`] it skips
//! whole GOPs to the newest keyframe (see [`crate::video`]).
//! `?stream=detect` gives the detect stream (the substream), when the
//! camera has one. The `Content-Type` names the codec
//! (`video/mp4; codecs="avc1.4D401F"`), so a player can ask its browser
//! before it appends anything.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use super::query::Query;
use super::state::AppState;
use crate::mp4::{init_segment, Fragmenter};
use crate::video::{Next, Reader, Track, MAX_LAG};

/// How long a request waits for a stream that has not sent its parameters
/// yet (a camera just started or reconnecting).
const TRACK_WITHIN: Duration = Duration::from_secs(10);

/// Query of `/live.mp4`.
#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    /// `main` (the default) or `detect`.
    stream: Option<String>,
}

/// `GET /live.mp4`.
pub async fn live(
    State(app): State<AppState>,
    Query(q): Query<LiveQuery>,
) -> Result<Response, ApiError> {
    let video = &app.video;
    let feed = match q.stream.as_deref() {
        None | Some("main") => video.main.clone(),
        Some("detect") => video.detect.clone().or_else(|| video.main.clone()),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "stream {other:?}: main or detect"
            )))
        }
    };
    let Some(feed) = feed else {
        return Err(ApiError::NoVideo);
    };
    if app.hub.viewers() >= app.hub.server().caps().max_viewers {
        return Err(ApiError::Busy("too many viewers"));
    }
    let place = app.cam.enter_viewer();
    let track = wait_for_track(&feed, app.hub.shutdown())
        .await
        .ok_or(ApiError::NoFrame)?;
    let viewer = Viewer {
        reader: feed.reader(),
        fragmenter: Fragmenter::new(),
        timescale: track.timescale,
        cancel: app.hub.shutdown().clone(),
        _place: place,
    };
    let body = stream::once({
        let init = init_segment(&track);
        async move { init }
    })
    .chain(stream::unfold(viewer, |mut v| async move {
        let next = tokio::select! {
            n = v.reader.next() => n,
            _ = v.cancel.cancelled() => return None,
        };
        match next {
            Next::Frame { packet, .. } => {
                let fragment = v.fragmenter.fragment(&packet, v.timescale);
                Some((fragment, v))
            }
            // New parameters: this response ends, the player starts again.
            Next::TrackChanged | Next::Closed => None,
        }
    }))
    .map(Ok::<_, std::io::Error>);
    let content_type = format!("video/mp4; codecs=\"{}\"", track.codec);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&content_type)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        [
            ("x-video-size", format!("{}x{}", track.width, track.height)),
            ("x-max-lag-ms", MAX_LAG.as_millis().to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The feed's track, once known (at most [`TRACK_WITHIN`]).
async fn wait_for_track(
    feed: &std::sync::Arc<crate::video::VideoFeed>,
    cancel: &CancellationToken,
) -> Option<std::sync::Arc<Track>> {
    let deadline = tokio::time::Instant::now() + TRACK_WITHIN;
    loop {
        if let Some(track) = feed.track() {
            return Some(track);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::time::sleep_until(deadline) => return None,
            _ = cancel.cancelled() => return None,
        }
    }
}

/// One client's place in the feed.
struct Viewer {
    reader: Reader,
    fragmenter: Fragmenter,
    timescale: u32,
    cancel: CancellationToken,
    _place: crate::cam::ViewerPlace,
}
