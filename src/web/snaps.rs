//! `/snaps`: list, serve and delete snapshot files, and serve their
//! thumbnails (`/snaps/{name}/thumb`) for the dashboard.
//!
//! Names come percent-decoded from the path and are validated by the `snaps`
//! module before any file is touched, so `..`, slashes, backslashes or
//! absolute paths in any encoding never reach outside the folder.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::query::Query;
use super::state::AppState;
use crate::shelf::{next_before, page_limit};
use crate::snaps::{SnapError, Trigger, MAX_PAGE};

/// Query of `GET /snaps`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
    before: Option<String>,
    /// Only snapshots of this trigger (`manual`, `motion`, `person`).
    trigger: Option<String>,
}

/// `GET /snaps?limit=&before=&trigger=`: newest first.
pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit, MAX_PAGE);
    let trigger = match q.trigger.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            Trigger::from_name_part(name)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown trigger {name:?}")))?,
        ),
    };
    let snaps = app.snaps.clone();
    let items = blocking(move || snaps.list_of(limit, q.before.as_deref(), trigger)).await?;
    let next_before = next_before(&items, limit, |s| &s.name);
    Ok(Json(json!({"snaps": items, "next_before": next_before})))
}

/// `GET /snaps/{name}`.
pub async fn get(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let snaps = app.snaps.clone();
    let jpeg = blocking(move || snaps.read(&name)).await?;
    Ok(immutable_jpeg(jpeg))
}

/// `GET /snaps/{name}/thumb`: the snapshot's 320 px preview, made now if it
/// has none yet (snapshots from before thumbnails). 404 when the snapshot
/// does not exist, or is not a picture a thumbnail can be made of.
pub async fn thumb(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let snaps = app.snaps.clone();
    let jpeg = blocking(move || {
        snaps.thumb(&name).inspect_err(|e| {
            if let SnapError::Thumb { name, err } = e {
                snaps.thumbs().report_failure("snapshot", name, err);
            }
        })
    })
    .await?;
    Ok(immutable_jpeg(jpeg))
}

/// A JPEG that never changes under its URL (a snapshot, or its thumbnail:
/// both are made once, from the same picture).
pub(super) fn immutable_jpeg(jpeg: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            // A snapshot never changes under its name.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        jpeg,
    )
        .into_response()
}

/// `DELETE /snaps/{name}`.
pub async fn delete(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let snaps = app.snaps.clone();
    let target = name.clone();
    blocking(move || snaps.delete(&target)).await?;
    app.cam.snapshot_deleted(&name).await;
    Ok((StatusCode::OK, Json(json!({"ok": true, "deleted": name}))).into_response())
}

async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, SnapError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            SnapError::InvalidName(_) => ApiError::BadRequest("invalid snapshot name".into()),
            SnapError::NotFound(name) => ApiError::NotFound {
                path: format!("/snaps/{name}"),
            },
            // Logged where it happened, at most once in a while per file.
            SnapError::Thumb { name, .. } => ApiError::NotFound {
                path: format!("/snaps/{name}/thumb"),
            },
            other => ApiError::Internal(other.to_string()),
        })
}
