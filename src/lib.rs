//! lookout: a small, fast, self-hosted smart camera server.
//!
//! # Layout
//! Data flows one way: source -> latest frame -> (viewers, motion detector) ->
//! events -> (SSE, WebSocket, store).
//!
//! - [`config`]: flags, environment and TOML file, validated once.
//! - [`source`]: camera sources (synthetic, exec, http, file, v4l2), the MJPEG
//!   splitter and the supervisor that restarts them with backoff.
//! - [`frame`]: the latest frame, shared by reference, newest wins.
//! - [`settings`]: runtime settings and their validation.
//! - [`web`]: the HTTP router and handlers.
//!
//! [`run`] serves on a listener the caller bound (tests bind port 0) until the
//! cancellation token fires.

pub mod config;
pub mod frame;
pub mod settings;
pub mod source;
pub mod web;

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {err}; choose another with --data-dir")]
    DataDir {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Installs rustls's `ring` provider once (no cmake, no OpenSSL); calling it
/// again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs lookout on `listener` until `shutdown` fires, then closes every stream
/// and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    install_crypto_provider();
    std::fs::create_dir_all(&config.data_dir).map_err(|err| RunError::DataDir {
        path: config.data_dir.clone(),
        err,
    })?;
    let tracker = TaskTracker::new();
    let (frames, _) = frame::FrameSink::new();
    let (supervisor, source_status) =
        source::Supervisor::new(config.source.clone(), &config.source_uri, frames.clone());
    tracker.spawn(supervisor.run(shutdown.child_token()));

    let state = web::AppState {
        frames,
        settings: settings::SettingsHandle::new(settings::Settings::default()),
        source_status,
        viewers: Arc::new(AtomicUsize::new(0)),
        triggers: Arc::new(AtomicU64::new(0)),
        started: Instant::now(),
        cancel: shutdown.clone(),
    };
    let addr = listener.local_addr()?;
    tracing::info!(
        "lookout {} serving {} at http://{}/",
        env!("CARGO_PKG_VERSION"),
        source::redact(&config.source_uri),
        addr
    );
    let app = web::router(state);
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        // Frames and replies are small writes that must leave at once.
        let _ = tcp.set_nodelay(true);
    });
    let token = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await?;
    tracker.close();
    tracker.wait().await;
    Ok(())
}
