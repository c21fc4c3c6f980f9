//! HTTP: the router and the state its handlers share.
//!
//! `router(state)` is a plain function so handler tests need no socket.

pub mod api;
pub mod assets;
pub mod error;
pub mod stream;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::frame::FrameSink;
use crate::settings::SettingsHandle;
use crate::source::StatusCell;
use error::ApiError;

/// What every handler can reach. Cheap to clone (all shared handles).
#[derive(Clone)]
pub struct AppState {
    /// The latest frame.
    pub frames: FrameSink,
    /// Runtime settings.
    pub settings: SettingsHandle,
    /// Source state for `/status`.
    pub source_status: StatusCell,
    /// Open `/stream.jpg` viewers.
    pub viewers: Arc<AtomicUsize>,
    /// Motion episodes counted (the seed's `trigger_count`).
    pub triggers: Arc<AtomicU64>,
    /// When the server started.
    pub started: Instant,
    /// Fires at shutdown; long-lived responses end on it.
    pub cancel: CancellationToken,
}

impl AppState {
    /// The trigger count.
    pub fn trigger_count(&self) -> u64 {
        self.triggers.load(Ordering::Relaxed)
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/snapshot.jpg", get(stream::snapshot))
        .route("/stream.jpg", get(stream::stream))
        .route("/status", get(api::status))
        .route("/healthz", get(api::healthz))
        .route("/config", get(api::get_config).post(api::post_config))
        .fallback(assets::serve)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
