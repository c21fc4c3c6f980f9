//! JSON routes: `/status`, `/config`, `/healthz`.

use std::sync::atomic::Ordering;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::AppState;

/// Largest accepted request body: settings are tiny, so anything bigger is a
/// mistake or an attack.
pub const MAX_BODY: usize = 16 * 1024;

/// `GET /healthz`: 200 while the server runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// `GET /status`.
pub async fn status(State(app): State<AppState>) -> Json<Value> {
    Json(status_body(&app))
}

/// The `/status` body (also the WebSocket `status` reply).
pub fn status_body(app: &AppState) -> Value {
    let source = app
        .source_status
        .lock()
        .map(|s| s.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    let triggers = app.trigger_count();
    let mut source_json = serde_json::to_value(&source).unwrap_or(Value::Null);
    if let Value::Object(obj) = &mut source_json {
        obj.insert(
            "last_frame_age_ms".into(),
            json!(source.last_frame_age_ms()),
        );
    }
    json!({
        "frames": app.frames.count(),
        "triggers": triggers,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": app.started.elapsed().as_secs(),
        "source": source_json,
        "viewers": app.viewers.load(Ordering::Relaxed),
        "trigger_count": triggers,
        "threshold": app.settings.get().threshold,
    })
}

/// `GET /config`: every setting plus the read-only counters.
pub async fn get_config(State(app): State<AppState>) -> Json<Value> {
    Json(Value::Object(config_body(&app)))
}

/// `POST /config`: a partial object, validated as a whole, applied at once.
pub async fn post_config(State(app): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::BadRequest(format!("request body over {} KiB", MAX_BODY / 1024)))?;
    let patch: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|_| ApiError::BadRequest("bad json".into()))?
    };
    app.settings
        .apply(&patch)
        .map_err(|e| ApiError::BadRequest(e.0))?;
    let mut body = Map::new();
    body.insert("ok".into(), Value::Bool(true));
    body.extend(config_body(&app));
    Ok(Json(Value::Object(body)))
}

/// Settings plus `trigger_count` and `frame_count` (the seed's state dict).
pub fn config_body(app: &AppState) -> Map<String, Value> {
    let mut body = app.settings.get().to_json();
    body.insert("trigger_count".into(), json!(app.trigger_count()));
    body.insert("frame_count".into(), json!(app.frames.count()));
    body
}
