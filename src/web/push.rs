//! The notification routes: the VAPID key, the phones' subscriptions, a test
//! notification, and the incidents with their pictures. Guarded like
//! `/config`: a read token may look, only control may change.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::read_body;
use super::error::ApiError;
use super::state::AppState;
use crate::push::PushError;

/// Most incidents one page lists.
const MAX_PAGE: usize = 200;

/// A refusal in the notification routes' shape: 400 `{"ok": false, "error"}`
/// for bad input, 500 for the server's own failure.
fn refused(e: PushError) -> Response {
    match e {
        PushError::Invalid(msg) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": msg})),
        )
            .into_response(),
        other => ApiError::Internal(other.to_string()).into_response(),
    }
}

/// A JSON body (empty: `{}`), or 400.
async fn json_body(app: &AppState, body: Body) -> Result<Value, Response> {
    let bytes = read_body(body, app.policy.max_body)
        .await
        .map_err(IntoResponse::into_response)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|_| refused(PushError::Invalid("bad json".into())))
}

/// `GET /api/push/key`: the server's VAPID public key.
pub async fn key(State(app): State<AppState>) -> Json<Value> {
    Json(json!({"public_key": app.hub.push().public_key()}))
}

/// `POST /api/push/subscriptions`: registers a phone.
pub async fn subscribe(State(app): State<AppState>, body: Body) -> Response {
    let body = match json_body(&app, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let names: Vec<String> = app.hub.cams().iter().map(|c| c.name.clone()).collect();
    match app.hub.push().subscribe(&body, &names).await {
        Ok(id) => Json(json!({"ok": true, "id": id})).into_response(),
        Err(e) => refused(e),
    }
}

/// `GET /api/push/subscriptions`: the registered phones.
pub async fn subscriptions(State(app): State<AppState>) -> Response {
    match app.hub.push().subscriptions().await {
        Ok(subs) => Json(json!({"subscriptions": subs})).into_response(),
        Err(e) => refused(e),
    }
}

/// `DELETE /api/push/subscriptions/{id}`.
pub async fn unsubscribe(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match app.hub.push().unsubscribe(&id).await {
        Ok(true) => Json(json!({"ok": true})).into_response(),
        Ok(false) => ApiError::NotFound {
            path: format!("/api/push/subscriptions/{id}"),
        }
        .into_response(),
        Err(e) => refused(e),
    }
}

/// `POST /api/push/test` `{"id": ...}` (or `{}`: every phone and ntfy).
pub async fn test(State(app): State<AppState>, body: Body) -> Response {
    let body = match json_body(&app, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return refused(PushError::Invalid("id must be a string".into())),
    };
    let camera = body
        .get("camera")
        .and_then(Value::as_str)
        .and_then(|n| app.hub.cam(n))
        .unwrap_or(&app.hub.cams()[0])
        .name
        .clone();
    match app.hub.push().test(id.as_deref(), &camera).await {
        Ok(n) => Json(json!({"ok": true, "queued": n})).into_response(),
        Err(e) => refused(e),
    }
}

/// The incident list's query.
#[derive(Debug, Deserialize)]
pub struct IncidentQuery {
    camera: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/incidents?camera=&before=&limit=`: newest first, with `next`
/// (the `before` of the next page) when there may be more.
pub async fn incidents(State(app): State<AppState>, Query(q): Query<IncidentQuery>) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    match app.hub.push().incidents(q.camera, q.before, limit).await {
        Ok(list) => {
            let next = (list.len() == limit)
                .then(|| list.last().map(|i| i.id))
                .flatten();
            Json(json!({"incidents": list, "next": next})).into_response()
        }
        Err(e) => refused(e),
    }
}

/// `GET /api/incidents/{id}/picture.jpg`: the picture a notification shows.
pub async fn picture(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match incident_picture(&app, &id, "picture.jpg").await {
        Ok(jpeg) => jpeg_response(jpeg),
        Err(r) => r,
    }
}

/// `GET /api/incidents/{id}/thumb.jpg`: that picture 320 px wide, for the
/// dashboard's list of incidents (a card is ~10 KB instead of ~100 KB).
/// Made on each request: a few milliseconds, and the browser keeps it as
/// long as the picture. 404 without a picture or when it cannot be shrunk.
pub async fn thumb(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let jpeg = match incident_picture(&app, &id, "thumb.jpg").await {
        Ok(jpeg) => jpeg,
        Err(r) => return r,
    };
    match tokio::task::spawn_blocking(move || crate::thumbs::make(&jpeg)).await {
        Ok(Ok(small)) => jpeg_response(small),
        Ok(Err(e)) => {
            tracing::warn!("incident {id}: no thumbnail: {e}");
            not_found(&id, "thumb.jpg")
        }
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

/// 404 for `/api/incidents/{id}/{file}`.
fn not_found(id: &str, file: &str) -> Response {
    ApiError::NotFound {
        path: format!("/api/incidents/{id}/{file}"),
    }
    .into_response()
}

/// Incident `id`'s picture, or the answer to give instead (404 when `id`
/// is not a number or the incident has no picture, for `file`).
async fn incident_picture(app: &AppState, id: &str, file: &str) -> Result<Vec<u8>, Response> {
    let Ok(n) = id.parse::<i64>() else {
        return Err(not_found(id, file));
    };
    match app.hub.push().picture(n).await {
        Ok(Some(jpeg)) => Ok(jpeg),
        Ok(None) => Err(not_found(id, file)),
        Err(e) => Err(refused(e)),
    }
}

/// A picture of an incident: kept a day by the browser. It changes once,
/// when the person check sees someone: the dashboard asks for it under
/// another query then.
fn jpeg_response(jpeg: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400"),
            ),
        ],
        jpeg,
    )
        .into_response()
}
