//! `GET /events`: Server-Sent Events to every dashboard, and `GET /api/events`,
//! the stored history.
//!
//! A subscriber first gets a `retry:` hint, then (when it reconnects with
//! `Last-Event-ID`) the stored events it missed, then live events. It is
//! subscribed to the bus before the replay query, so nothing falls in the gap;
//! ids already replayed are skipped. A subscriber too slow for the bounded bus
//! buffer is disconnected: its browser reconnects and replays. Each event is
//! formatted once (see `Event::wire`) and the same bytes go to every
//! subscriber, which is why this writes the SSE lines itself rather than
//! through axum's `Sse` (that formats per subscriber).

use std::convert::Infallible;
use std::time::Duration;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::query::Query;
use super::state::AppState;
use crate::events::Event;

/// Most stored events replayed to a reconnecting client.
pub const REPLAY_LIMIT: u32 = 1000;
/// Reconnect delay suggested to browsers.
const RETRY: Duration = Duration::from_secs(2);

/// `GET /events`: every camera's events (each names its `camera`).
pub async fn events(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    subscribe(app, headers, None).await
}

/// `GET /cams/NAME/events`: that camera's events and the server-wide ones.
pub async fn camera_events(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let camera = app.name.clone();
    subscribe(app, headers, Some(camera)).await
}

async fn subscribe(
    app: AppState,
    headers: HeaderMap,
    camera: Option<String>,
) -> Result<Response, ApiError> {
    if app.hub.events().subscribers() >= app.hub.server().caps().max_sse {
        return Err(ApiError::Busy("too many event subscribers"));
    }
    let live = app.hub.events().subscribe();
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let missed = match last_id {
        Some(id) => app
            .hub
            .events()
            .missed(id, REPLAY_LIMIT, camera.clone())
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        None => Vec::new(),
    };
    let seen = missed.last().and_then(|e| e.id).or(last_id).unwrap_or(0);
    let keepalive = app.hub.server().settings().keepalive();
    let hello =
        stream::once(async { Bytes::from(format!("retry: {}\n: lookout\n\n", RETRY.as_millis())) });
    let replay = stream::iter(missed.into_iter().map(|e| e.wire));
    let subscriber = Subscriber {
        rx: live,
        cancel: app.hub.shutdown().clone(),
        seen,
        keepalive,
        camera,
    };
    let live = stream::unfold(subscriber, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((chunk, s))
    });
    let body = hello.chain(replay).chain(live).map(Ok::<_, Infallible>);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // Reverse proxies (nginx) must not buffer events.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// One subscriber's position in the bus.
struct Subscriber {
    rx: broadcast::Receiver<Arc<Event>>,
    cancel: tokio_util::sync::CancellationToken,
    /// Highest id sent (replayed ones are not sent again).
    seen: i64,
    /// Quiet time before a comment line keeps proxies and browsers from
    /// dropping the connection.
    keepalive: Duration,
    /// Only this camera's events (and server-wide ones), or all.
    camera: Option<String>,
}

impl Subscriber {
    /// The next bytes to send: an event (pre-formatted, shared), or a
    /// keepalive comment after a quiet spell; `None` ends the stream
    /// (shutdown, or too slow: the browser reconnects and replays).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            let received = tokio::select! {
                r = self.rx.recv() => r,
                _ = tokio::time::sleep(self.keepalive) => return Some(Bytes::from_static(b":\n\n")),
                _ = self.cancel.cancelled() => return None,
            };
            match received {
                Ok(event) => {
                    if let (Some(want), Some(of)) = (&self.camera, &event.camera) {
                        if want != of {
                            continue;
                        }
                    }
                    if let Some(id) = event.id {
                        if id <= self.seen {
                            continue;
                        }
                        self.seen = id;
                    }
                    return Some(event.wire.clone());
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::info!("disconnecting an event subscriber {n} events behind");
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// Query of `/api/events`.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    limit: Option<u32>,
    before: Option<i64>,
    kind: Option<String>,
}

/// `GET /api/events?limit=&before=&kind=`: stored events, newest first.
pub async fn history(
    State(app): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let events = app
        .hub
        .events()
        .history(limit, q.before, q.kind, Some(app.name.clone()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let next_before = if events.len() as u32 == limit {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(json!({"events": events, "next_before": next_before})))
}
