//! `GET /metrics` (Prometheus' text format) and the middleware that counts
//! every answered request by route pattern and status code.
//!
//! `/metrics` sits behind the same door as `/status`: open on loopback,
//! credentials off it. Prometheus sends a long-lived token (`lookout token
//! create prometheus`) as its `authorization` credentials (Bearer).

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;
use crate::metrics::{CONTENT_TYPE, UNMATCHED};

/// `GET /metrics`: the counters plus the state read now.
pub async fn scrape(State(app): State<AppState>) -> Result<Response, ApiError> {
    let text = app
        .hub
        .metrics()
        .render(&app.hub)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Counts each request once its response is ready, under its route's
/// pattern. Long-lived responses (streams, SSE) count when their headers go
/// out.
pub async fn count_requests(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| route_label(&app, m.as_str()));
    let response = next.run(req).await;
    let route = route.as_deref().unwrap_or(UNMATCHED);
    app.hub
        .metrics()
        .http_request(route, response.status().as_u16());
    response
}

/// The pattern of a matched route. Each camera's routes are nested under
/// its own literal `/cams/NAME`, so that prefix becomes `/cams/{name}`: one
/// series per route, whatever the number of cameras.
fn route_label(app: &AppState, matched: &str) -> String {
    if let Some(rest) = matched.strip_prefix("/cams/") {
        if let Some((name, tail)) = rest.split_once('/') {
            if app.hub.cam(name).is_some() {
                return format!("/cams/{{name}}/{tail}");
            }
        }
    }
    matched.to_string()
}
