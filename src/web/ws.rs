//! `GET /control`: the WebSocket command channel, one task per connection.
//!
//! Text and binary frames both carry one JSON command; each gets exactly one
//! reply, in order. A bad message gets the seed's error reply and the socket
//! stays open. Idle peers are pinged and dropped when they stop answering, a
//! message over the limit (default [`MAX_MESSAGE`]) closes the socket with
//! 1009, and shutdown closes it with 1001.
//!
//! Sockets are capped (`--max-ws`; more get 503 before the upgrade, as the
//! viewer after the cap does) and counted (`websockets` in `/status`,
//! `lookout_websockets` in `/metrics`). Each is kept small: tungstenite
//! reserves a 128 KiB read buffer per socket by default, so 2,000 idle
//! sockets held about 270 MB; a command is a few hundred bytes, so
//! [`READ_BUFFER`] reads it in one go and longer messages are still
//! assembled up to the message limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use tokio::time::{interval, Instant, MissedTickBehavior};

use super::error::ApiError;
use super::state::AppState;
use crate::auth::Scope;
use crate::control;

/// Default largest command: a guard, with room for a `set` of every mask and
/// zone at their most (about 40 KiB, see `api::MAX_BODY`).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// A socket quiet for this long is pinged.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A socket that sends nothing (not even a pong) for this long is dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(50);
/// Bytes read from the socket at a time (tungstenite's default: 128 KiB).
const READ_BUFFER: usize = 4 * 1024;
/// WebSocket close codes (RFC 6455).
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_TOO_BIG: u16 = 1009;

/// Upgrades to a WebSocket and serves commands on it, unless `--max-ws`
/// are open already (503).
pub async fn upgrade(
    State(app): State<AppState>,
    scope: Option<Extension<Scope>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let Some(open) = Open::enter(app.hub.websockets(), app.policy.max_ws) else {
        return Err(ApiError::Busy("too many WebSockets"));
    };
    // Commands beyond the credential's scope get an error reply each.
    let scope = super::auth::scope_of(scope);
    // The library enforces the limit itself, on the message as it is
    // assembled from its fragments: a message split into many small frames
    // is refused as soon as it passes the limit, even if its last fragment
    // never comes. (With the library's bound above ours and our check on
    // whole messages, an unfinished fragmented message was held, never
    // refused, for as long as the peer answered pings.)
    let limit = app.policy.max_ws_message;
    Ok(ws
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER)
        // Each reply is written as it is made: one at a time, in order.
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let _open = open;
            serve(app, socket, scope).await
        }))
}

/// One open WebSocket, counted from the upgrade request until the socket
/// is done.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn enter(count: &Arc<AtomicUsize>, max: usize) -> Option<Open> {
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Open(count.clone()))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(app: AppState, mut socket: WebSocket, scope: Scope) {
    let mut ticker = interval(PING_EVERY);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    loop {
        let msg = tokio::select! {
            m = socket.recv() => m,
            _ = ticker.tick() => {
                if last_heard.elapsed() >= IDLE_LIMIT {
                    tracing::debug!("dropping a control socket that stopped answering");
                    return;
                }
                if last_heard.elapsed() >= PING_EVERY
                    && socket.send(Message::Ping(Default::default())).await.is_err()
                {
                    return;
                }
                continue;
            }
            _ = app.hub.shutdown().cancelled() => {
                close(&mut socket, CLOSE_GOING_AWAY, "server stopping").await;
                return;
            }
        };
        last_heard = Instant::now();
        let payload = match msg {
            Some(Ok(Message::Text(text))) => text.as_str().as_bytes().to_vec(),
            Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return,
            Some(Err(e)) => {
                if is_too_big(e) {
                    close(&mut socket, CLOSE_TOO_BIG, "message too big").await;
                }
                return;
            }
        };
        if payload.len() > app.policy.max_ws_message {
            close(&mut socket, CLOSE_TOO_BIG, "message too big").await;
            return;
        }
        let reply = control::handle_as(&app.hub, &app.camera, &payload, scope).await;
        if socket
            .send(Message::Text(reply.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Whether a receive error is a message or frame over the size limit.
fn is_too_big(err: axum::Error) -> bool {
    err.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}
