//! `/recordings`: a camera's continuous recording over a span of time, for
//! the dashboard's day timeline, and its segment files.
//!
//! `GET /recordings?from=&to=` (unix seconds; the last 24 hours when not
//! given) answers the segments that overlap the span, the motion episodes
//! in it (from the event history, with whether a person was seen and their
//! clip), and the recording's state. A segment is served like a clip: with
//! `Range`, so a player seeks to any time in it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::query::Query;
use super::ranged;
use super::state::AppState;
use crate::clips::ClipError;

/// The longest span one request may ask for (a month).
const MAX_SPAN_S: f64 = 31.0 * 86_400.0;
/// Episodes listed at most.
const MAX_EPISODES: u32 = 5_000;
/// Episodes are found by their end: one that began in the span may end
/// this long after it.
const EPISODE_REACH_S: f64 = 3_600.0;

/// Query of `GET /recordings`.
#[derive(Debug, Deserialize)]
pub struct SpanQuery {
    from: Option<f64>,
    to: Option<f64>,
}

/// `GET /recordings?from=&to=`.
pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<SpanQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = crate::shelf::unix_ms(std::time::SystemTime::now()) as f64 / 1000.0;
    let to = q.to.unwrap_or(now);
    let from = q.from.unwrap_or(to - 86_400.0);
    if !(from.is_finite() && to.is_finite() && from >= 0.0 && from < to) {
        return Err(ApiError::BadRequest(
            "from and to must be unix seconds, from before to".into(),
        ));
    }
    if to - from > MAX_SPAN_S {
        return Err(ApiError::BadRequest(
            "at most 31 days at a time (from and to)".into(),
        ));
    }
    let clips = app.recorder.clips().clone();
    let (from_ms, to_ms) = ((from * 1000.0) as u64, (to * 1000.0).ceil() as u64);
    let segments = tokio::task::spawn_blocking(move || clips.segments().between(from_ms, to_ms))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let ended = app
        .hub
        .events()
        .episodes_ended(app.name.clone(), from, to + EPISODE_REACH_S, MAX_EPISODES)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let episodes: Vec<Value> = ended
        .iter()
        .filter_map(|e| {
            let duration = e.data.get("duration_s")?.as_f64()?;
            let start = e.ts - duration;
            (start < to).then(|| {
                json!({
                    "start_ts": start,
                    "end_ts": e.ts,
                    "person": e.data.get("person"),
                    "clip": e.data.get("clip"),
                })
            })
        })
        .collect();
    Ok(Json(json!({
        "from": from,
        "to": to,
        "recordings": segments,
        "episodes": episodes,
        "recording": app.recording_status(),
    })))
}

/// `GET /recordings/{name}`: a segment, with `Range` and `HEAD` as clips.
pub async fn get(
    State(app): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let clips = app.recorder.clips().clone();
    let target = name.clone();
    let not_found = || ApiError::NotFound {
        path: format!("/recordings/{name}"),
    };
    let path = tokio::task::spawn_blocking(move || clips.segments().path(&target))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            ClipError::InvalidName(_) => ApiError::BadRequest("invalid recording name".into()),
            ClipError::NotFound(_) => not_found(),
            e => ApiError::Internal(e.to_string()),
        })?;
    let mut response = ranged::serve(&path, "video/mp4", &method, &headers)
        .await
        .map_err(|err| match err.kind() {
            // Retention took it since it was found.
            std::io::ErrorKind::NotFound => not_found(),
            _ => ApiError::Internal(format!("cannot read recording {name}: {err}")),
        })?;
    ranged::immutable(response.headers_mut());
    Ok(response)
}
