//! `/clips`: list, serve (with `Range`, so players can seek), index and
//! delete a camera's clips.
//!
//! Names come percent-decoded from the path and are checked by the `clips`
//! module (only `motion-<ms>.mkv` and `motion-<ms>.mp4`) before any file is
//! touched. An `.mp4` clip is served as `video/mp4` and has no frame index
//! (a `<video>` element plays it).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::query::Query;
use super::ranged;
use super::state::AppState;
use crate::clips::{ClipError, Kind, MAX_PAGE};
use crate::shelf::{next_before, page_limit};

/// Query of `GET /clips`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
    before: Option<String>,
}

/// `GET /clips?limit=&before=`: newest first, paged like `/snaps`.
pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit, MAX_PAGE);
    let clips = app.recorder.clips().clone();
    let items = blocking(move || clips.list(limit, q.before.as_deref())).await?;
    let next_before = next_before(&items, limit, |c| &c.name);
    Ok(Json(json!({"clips": items, "next_before": next_before})))
}

/// `GET /clips/{name}`: the file, with `Range`, `HEAD`, an `ETag` and
/// conditional requests answered as RFC 9110 asks (see [`super::ranged`]).
pub async fn get(
    State(app): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let clips = app.recorder.clips().clone();
    let target = name.clone();
    let path = blocking(move || clips.path(&target)).await?;
    let mime = Kind::of(&name).mime();
    let mut response = ranged::serve(&path, mime, &method, &headers)
        .await
        .map_err(|err| match err.kind() {
            // Deleted since it was found.
            std::io::ErrorKind::NotFound => ApiError::NotFound {
                path: format!("/clips/{name}"),
            },
            _ => ApiError::Internal(format!("cannot read clip {name}: {err}")),
        })?;
    let headers = response.headers_mut();
    ranged::immutable(headers);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `GET /clips/{name}/index`: where each frame's JPEG lies in the file, for
/// the dashboard's player (it fetches frames with `Range`): `frames` as
/// `[t_ms, offset, length]`. An MP4 clip answers 400: play the file.
pub async fn index(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let clips = app.recorder.clips().clone();
    let target = name.clone();
    let scanned = blocking(move || clips.index(&target)).await?;
    let frames: Vec<[u64; 3]> = scanned
        .frames
        .iter()
        .map(|f| [f.t_ms, f.offset, f.len])
        .collect();
    let body = json!({
        "name": name,
        "width": scanned.width,
        "height": scanned.height,
        "duration_s": scanned.duration().as_secs_f64(),
        "frames": frames,
    });
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        )],
        Json(body),
    )
        .into_response())
}

/// `GET /clips/{name}/thumb`: the clip's 320 px preview (the frame where
/// the motion scored highest), made now from its middle frame when it has
/// none.
pub async fn thumb(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let clips = app.recorder.clips().clone();
    let jpeg = blocking(move || {
        clips.thumb(&name).inspect_err(|e| {
            if let ClipError::Thumb { name, err } = e {
                clips.thumbs().report_failure("clip", name, err);
            }
        })
    })
    .await?;
    Ok(super::snaps::immutable_jpeg(jpeg))
}

/// `DELETE /clips/{name}`.
pub async fn delete(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let clips = app.recorder.clips().clone();
    let target = name.clone();
    blocking(move || clips.delete(&target)).await?;
    app.cam.clip_deleted(&name).await;
    Ok((StatusCode::OK, Json(json!({"ok": true, "deleted": name}))).into_response())
}

async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ClipError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            ClipError::InvalidName(_) => ApiError::BadRequest("invalid clip name".into()),
            e @ ClipError::NoIndex(_) => ApiError::BadRequest(e.to_string()),
            ClipError::NotFound(name) => ApiError::NotFound {
                path: format!("/clips/{name}"),
            },
            // Logged where it happened, at most once in a while per file.
            ClipError::Thumb { name, .. } => ApiError::NotFound {
                path: format!("/clips/{name}/thumb"),
            },
            other => ApiError::Internal(other.to_string()),
        })
}
