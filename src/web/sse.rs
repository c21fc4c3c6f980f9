//! `GET /events`: Server-Sent Events to every dashboard, and `GET /api/events`,
//! the stored history.
//!
//! A subscriber first gets a `retry:` hint, then (when it reconnects with
//! `Last-Event-ID`) the stored events it missed, then live events. It is
//! subscribed to the bus before the replay query, so nothing falls in the gap;
//! ids already replayed are skipped. A subscriber too slow for the bounded bus
//! buffer is disconnected: its browser reconnects and replays.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::AppState;
use crate::events::Event;

/// Most stored events replayed to a reconnecting client.
pub const REPLAY_LIMIT: u32 = 1000;
/// Reconnect delay suggested to browsers.
const RETRY: Duration = Duration::from_secs(2);

/// `GET /events`.
pub async fn events(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if app.events.subscribers() >= app.policy.max_sse {
        return Err(ApiError::Busy("too many event subscribers"));
    }
    let live = app.events.subscribe();
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let missed = match last_id {
        Some(id) => app
            .events
            .store()
            .events_after(id, REPLAY_LIMIT)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        None => Vec::new(),
    };
    let seen = missed.last().map(|e| e.id).or(last_id).unwrap_or(0);
    let hello = stream::once(async {
        Ok::<_, Infallible>(SseEvent::default().retry(RETRY).comment("lookout"))
    });
    let replay = stream::iter(missed.into_iter().map(|e| Ok(to_sse(&Event::from(e)))));
    let live = stream::unfold(
        (live, app.cancel.clone(), seen),
        |(mut rx, cancel, mut seen)| async move {
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    _ = cancel.cancelled() => return None,
                };
                match received {
                    Ok(event) => {
                        if let Some(id) = event.id {
                            if id <= seen {
                                continue;
                            }
                            seen = id;
                        }
                        return Some((Ok(to_sse(&event)), (rx, cancel, seen)));
                    }
                    // Too slow: end the stream; the browser reconnects and replays.
                    Err(RecvError::Lagged(n)) => {
                        tracing::info!("disconnecting an event subscriber {n} events behind");
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let keepalive = Duration::from_secs(u64::from(app.settings.get().sse_keepalive_s));
    let body = hello.chain(replay).chain(live);
    let mut resp = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(keepalive).text(""))
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

fn to_sse(event: &Event) -> SseEvent {
    let mut sse = SseEvent::default()
        .event(&event.kind)
        .data(event.data.to_string());
    if let Some(id) = event.id {
        sse = sse.id(id.to_string());
    }
    sse
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
        .events
        .store()
        .events_page(limit, q.before, q.kind)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let next_before = if events.len() as u32 == limit {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(json!({"events": events, "next_before": next_before})))
}
