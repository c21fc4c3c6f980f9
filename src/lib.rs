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
//! - [`motion`]: the detector and the runner that feeds it frames.
//! - [`events`]: the event bus (stored, numbered, broadcast).
//! - [`control`]: the commands and their one executor.
//! - [`cam`]: shared state and the actions every transport uses.
//! - [`snaps`]: snapshot files. [`store`]: SQLite state and history.
//! - [`settings`]: runtime settings and their validation.
//! - [`web`]: the HTTP router and handlers (stream, SSE, WebSocket, JSON).
//!
//! [`run`] serves on a listener the caller bound (tests bind port 0) until the
//! cancellation token fires.

pub mod cam;
pub mod config;
pub mod control;
pub mod events;
pub mod frame;
pub mod motion;
pub mod settings;
pub mod snaps;
pub mod source;
pub mod store;
pub mod web;

use std::sync::Arc;

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
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The snapshot folder could not be prepared.
    #[error(transparent)]
    Snaps(#[from] snaps::SnapError),
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
    let (supervisor, source_status, source_states) =
        source::Supervisor::new(config.source.clone(), &config.source_uri, frames.clone());
    tracker.spawn(supervisor.run(shutdown.child_token()));

    let store = {
        let dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || store::Store::open(&dir))
            .await
            .map_err(|e| RunError::Serve(std::io::Error::other(e)))??
    };
    let snaps = snaps::Snaps::open(&config.data_dir)?;
    let cam = Arc::new(
        cam::Cam::load(
            frames,
            config.settings.clone(),
            source_status,
            store,
            snaps,
            shutdown.clone(),
        )
        .await?,
    );
    tracker.spawn(motion::run(cam.clone()));
    tracker.spawn(announce_source(cam.clone(), source_states));
    tracker.spawn(prune_history(cam.clone()));
    let addr = listener.local_addr()?;
    tracing::info!(
        "lookout {} serving {} at http://{}/",
        env!("CARGO_PKG_VERSION"),
        source::redact(&config.source_uri),
        addr
    );
    let app = web::router(cam);
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

/// Publishes a `source` event when the camera comes up or goes down, so every
/// dashboard can say "camera offline".
async fn announce_source(
    cam: Arc<cam::Cam>,
    mut states: tokio::sync::watch::Receiver<source::SourceState>,
) {
    use source::SourceState;
    let mut announced = None;
    loop {
        let state = *states.borrow_and_update();
        let up = match state {
            SourceState::Running => Some(true),
            SourceState::Failed => Some(false),
            SourceState::Starting | SourceState::Reconnecting => None,
        };
        if up.is_some() && up != announced {
            announced = up;
            let error = cam
                .source_status
                .lock()
                .ok()
                .and_then(|s| s.last_error.clone());
            let data = serde_json::json!({"state": state, "up": up, "error": error});
            cam.events.publish_or_log("source", cam::obj(data)).await;
        }
        tokio::select! {
            r = states.changed() => if r.is_err() { return },
            _ = cam.cancel.cancelled() => return,
        }
    }
}

/// Prunes the event history by age and count, hourly and at start.
async fn prune_history(cam: Arc<cam::Cam>) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = cam.cancel.cancelled() => return,
        }
        let s = cam.settings.get();
        let now = frame::unix_secs(std::time::SystemTime::now());
        let max_age = f64::from(s.events_max_age_days) * 86_400.0;
        match cam.store.prune_events(now, max_age, s.events_max).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("pruned {n} old events"),
            Err(e) => tracing::warn!("cannot prune events: {e}"),
        }
    }
}
