//! HTTP: the router and the state its handlers share.
//!
//! `router(state)` is a plain function so handler tests need no socket.

pub mod api;
pub mod assets;
pub mod error;
pub mod snaps;
pub mod sse;
pub mod stream;
pub mod ws;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::cam::Cam;
use error::ApiError;

/// What every handler can reach.
pub type AppState = Arc<Cam>;

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/snapshot.jpg", get(stream::snapshot))
        .route("/stream.jpg", get(stream::stream))
        .route("/status", get(api::status))
        .route("/healthz", get(api::healthz))
        .route("/config", get(api::get_config).post(api::post_config))
        .route("/control", get(ws::upgrade).post(api::post_control))
        .route("/events", get(sse::events))
        .route("/api/events", get(sse::history))
        .route("/snaps", get(snaps::list))
        .route("/snaps/{name}", get(snaps::get).delete(snaps::delete))
        .fallback(assets::serve)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
