//! JSON routes: `/status`, `/config`, `/healthz`, `POST /control`.

use axum::body::{to_bytes, Body};
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Scope;
use crate::cam::ApplyError;
use crate::control::{self, CommandError};
use crate::report::{self, CamList, Status};
use crate::serverwide::ConfigView;

use super::error::ApiError;
use super::state::AppState;

/// Default largest request body. Settings are small, but masks and zones at
/// their most (16 zones and 16 mask polygons of 32 points) take about 40 KiB
/// of JSON with full-precision numbers; anything bigger is a mistake or an
/// attack.
pub const MAX_BODY: usize = 64 * 1024;

/// `GET /healthz`: 200 while the server runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// `GET /cams/NAME/status`: one camera's state.
pub async fn status(State(app): State<AppState>) -> Json<Status> {
    Json(report::status(&app.hub, &app.camera))
}

/// `GET /status`: the first camera's state, as the seed knows it, with a
/// `cameras` list.
pub async fn hub_status(State(app): State<AppState>) -> Json<Status> {
    Json(report::root_status(&app.hub, &app.camera))
}

/// `GET /cams`: every camera.
pub async fn cams(State(app): State<AppState>) -> Json<CamList> {
    Json(report::cams(&app.hub))
}

/// `GET /config`: the camera's settings and the server-wide ones, plus the
/// read-only counters.
pub async fn get_config(State(app): State<AppState>) -> Json<ConfigView> {
    Json(app.hub.server().config(&app.cam))
}

/// `POST /config`: a partial object, validated as a whole, applied at once.
pub async fn post_config(State(app): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, app.policy.max_body).await?;
    let patch: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|_| ApiError::BadRequest("bad json".into()))?
    };
    let applied = app
        .hub
        .server()
        .apply(&app.cam, &patch)
        .await
        .map_err(|e| match e {
            ApplyError::Invalid(e) => ApiError::BadRequest(e.0),
            other => ApiError::Internal(other.to_string()),
        })?;
    let mut body = Map::new();
    body.insert("ok".into(), Value::Bool(true));
    body.extend(applied.to_json());
    Ok(Json(Value::Object(body)))
}

/// `POST /control`: one command, the same reply as over the WebSocket. Replies
/// with `error` are a 400 (403 beyond the credential's scope), `ok: false` a
/// 503 (no frame) or 500.
pub async fn post_control(
    State(app): State<AppState>,
    scope: Option<Extension<Scope>>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, app.policy.max_body).await?;
    let scope = super::auth::scope_of(scope);
    let handled = control::run_as(&app.hub, &app.camera, &bytes, scope).await;
    let status = match &handled.result {
        Ok(_) => StatusCode::OK,
        Err(e) => command_status(e),
    };
    let reply = handled.to_json();
    Ok((status, Json(reply)).into_response())
}

/// Reads a request body of at most `limit` bytes.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::BadRequest(format!("request body over {} KiB", limit / 1024)))
}

/// The one mapping from a command's failure to an HTTP status.
fn command_status(e: &CommandError) -> StatusCode {
    match e {
        CommandError::BadJson | CommandError::Unknown | CommandError::Invalid(_) => {
            StatusCode::BAD_REQUEST
        }
        CommandError::Forbidden { .. } => StatusCode::FORBIDDEN,
        CommandError::NoFrame => StatusCode::SERVICE_UNAVAILABLE,
        CommandError::UnknownCamera => StatusCode::NOT_FOUND,
        CommandError::UploadsOff => StatusCode::CONFLICT,
        CommandError::Snapshot(_) | CommandError::ResetFailed | CommandError::SaveFailed => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}
