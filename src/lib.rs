//! lookout: a small, fast, self-hosted smart camera server.
//!
//! # Layout
//! Data flows one way, per camera: source -> latest frame -> (viewers, motion
//! detector) -> events -> (SSE, MQTT, store, uploads); commands come in over
//! the WebSocket, HTTP and MQTT. Several cameras share one hub: the store, the
//! event bus, the upload queue and the server-wide settings. Calls go one way
//! too: the web, MQTT and control call into the hub and the cameras; a
//! camera's subsystems (its recorder, person check, motion runner) call down
//! into its [`cam::Cam`], which imports none of them.
//!
//! - [`config`]: flags, environment and TOML file, validated once;
//!   [`conffile`]: the service's file, generated from the same declaration.
//! - [`console`]: stdout and stderr (the log, listings) that a closed pipe
//!   cannot turn into a panic.
//! - [`source`]: camera sources (synthetic, exec, http, file, v4l2), the MJPEG
//!   splitter and the supervisor that restarts them with backoff.
//! - [`frame`]: the latest frame, shared by reference, newest wins; a JPEG
//!   or a decoded [`picture`], whose JPEG the [`encoder`] makes only while
//!   someone watches.
//! - [`motion`]: the detector and the runner that feeds it frames, and the
//!   person check that follows a motion episode ([`motion::check`]).
//! - [`person`]: the person detector itself (NanoDet-g on tract; the
//!   `person` feature).
//! - [`events`]: the event bus (stored, numbered, broadcast).
//! - [`control`]: the commands and their one executor.
//! - [`cam`]: one camera's core and the actions every transport uses.
//! - [`camera`]: a running camera: its core, recorder and person check,
//!   opened and started in one place.
//! - [`alert`]: what counts as an alert, and what is uploaded for it.
//! - [`hub`]: what the cameras share, and the list of them.
//! - [`report`]: the `/status` and `/cams` bodies, for every transport.
//! - [`migrate`]: what an older lookout left in the data directory, moved
//!   once at start.
//! - [`metrics`]: the Prometheus counters (a leaf: `web::metrics` adds the
//!   state read at scrape time).
//! - [`mqtt`]: motion, state and events to an MQTT broker, Home Assistant
//!   discovery, commands in.
//! - [`names`]: the one rule for camera and token names.
//! - [`peers`]: who a request comes from: the unit client addresses are
//!   counted by, and the address a trusted reverse proxy forwards.
//! - [`redact`]: secrets out of everything a source or an upload reports.
//! - [`auth`]: password, sessions, tokens; [`web::auth`] applies them.
//! - [`uploads`]: triggered frames and webhooks out, through a durable queue.
//! - [`shelf`]: a folder of timestamped files (retention, names, cursors,
//!   paging), shared by snapshots and clips.
//! - [`snaps`]: snapshot files, one folder per camera. [`store`]: SQLite
//!   state and history. `durable`: the synced temp-file-then-link write both
//!   use for files; `sync`: the one way to take a lock.
//! - [`thumbs`]: small previews of snapshots (and clips) for the dashboard.
//! - [`datadir`]: the data directory stays private (0700 folders, 0600 files).
//! - [`notify`]: systemd's READY and watchdog pings, sent only while the
//!   server answers and every camera supervisor ticks.
//! - [`descriptors`]: the open-file limit and the connections it leaves room for.
//! - [`doctor`]: `lookout doctor`, and the quick checks logged at start.
//! - [`settings`]: a camera's runtime settings and their validation;
//!   [`serverwide`]: the server's (history retention, SSE keepalive, caps),
//!   and the one place a settings patch is split between the two.
//! - [`zones`]: motion masks and zones: polygon checks, and their raster for
//!   the detector's working image.
//! - [`web`]: the HTTP router and handlers (stream, SSE, WebSocket, JSON).
//!
//! [`run`] serves on a listener the caller bound (tests bind port 0) until the
//! cancellation token fires.

pub mod alert;
pub mod auth;
pub mod cam;
pub mod camera;
pub mod chain;
pub mod clips;
pub mod conffile;
pub mod config;
pub mod console;
pub mod control;
pub mod datadir;
pub mod descriptors;
#[cfg(test)]
mod docs;
pub mod doctor;
mod durable;
pub mod encoder;
pub mod events;
pub mod frame;
pub mod hub;
pub mod jpeg;
#[cfg(test)]
mod layers;
pub mod metrics;
pub mod migrate;
pub mod motion;
pub mod mp4;
pub mod mqtt;
pub mod names;
pub mod notify;
pub mod peers;
pub mod person;
pub mod picture;
pub mod push;
pub mod redact;
pub mod report;
pub mod serverwide;
pub mod settings;
pub mod shelf;
pub mod snaps;
pub mod source;
pub mod store;
mod sync;
pub mod thumbs;
pub mod uploads;
pub mod video;
pub mod web;
pub mod zones;

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
    /// The data directory exists but lookout cannot write in it.
    #[error(
        "cannot write in data directory {path}: {err}; lookout keeps its database and \
         snapshots there: make it writable by the user lookout runs as (and check the disk \
         is not mounted read-only), or choose another with --data-dir"
    )]
    DataDirNotWritable {
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
    /// A camera could not start.
    #[error(transparent)]
    Camera(#[from] camera::CameraError),
    /// The upload queue could not be opened.
    #[error(transparent)]
    Uploads(#[from] uploads::UploadError),
    /// Notifications could not be set up.
    #[error("notifications: {0}")]
    Push(#[from] push::PushError),
    /// Authentication could not be set up.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(#[from] web::tls::TlsError),
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
    prepare_data_dir(&config)?;
    let tracker = TaskTracker::new();
    let (limits, fitted) = fit_limits(config.limits);
    let Storage {
        bus,
        uploader,
        server,
    } = open_storage(&config, &limits).await?;
    let metrics = Arc::new(metrics::Metrics::new());
    // One detector for every camera, loaded when a check first needs it.
    let person = person::AVAILABLE.then(motion::check::PersonWorker::default);
    let shared = camera::Shared {
        data_dir: &config.data_dir,
        events: &bus,
        uploads: uploader.as_ref(),
        metrics: &metrics,
        person: person.as_ref(),
        tracker: &tracker,
        shutdown: &shutdown,
    };
    // Subscribed before any camera publishes, so no incident is missed.
    let incidents = bus.subscribe();
    let names: Vec<String> = config.cameras.iter().map(|c| c.name.clone()).collect();
    let notifier =
        push::Notifier::open(&config.data_dir, config.push.clone(), bus.clone(), &names).await?;
    let (cams, heartbeats) = start_cameras(&config, &shared).await?;
    if let Some(up) = uploader.clone() {
        tracker.spawn(up.run(bus.clone(), shutdown.child_token()));
    }
    tracker.spawn(
        notifier
            .clone()
            .run(cams.clone(), incidents, shutdown.child_token()),
    );
    let mqtt = config.mqtt.clone().map(mqtt::Mqtt::new);
    let hub = Arc::new(hub::Hub::new(hub::HubParts {
        cams,
        events: bus,
        server,
        uploads: uploader,
        push: notifier,
        metrics,
        mqtt: mqtt.as_ref().map(|m| m.status().clone()),
        shutdown: shutdown.clone(),
    }));
    tracker.spawn(prune_history(hub.clone(), shutdown.clone()));
    let addr = listener.local_addr()?;
    let required = config.require_auth || !addr.ip().is_loopback();
    let auth_opts = auth::AuthOptions {
        user: config.user.clone(),
        required,
        password: config.password.clone(),
        password_file: config.password_file.clone(),
    };
    let (auth, generated) = auth::Auth::setup(auth_opts, hub.events().store().clone()).await?;
    let tls = match &config.tls {
        Some(source) => Some(web::tls::load(source, &config.data_dir, addr)?),
        None => None,
    };
    let scheme = announce(&config, addr, tls.as_ref(), &auth, generated, required);
    if let Some(mqtt) = mqtt {
        start_mqtt(&config, mqtt, &hub, scheme, addr, &tracker, &shutdown);
    }
    tracing::info!("{fitted}");
    let web = Web {
        auth,
        tls,
        limits,
        heartbeats,
    };
    serve(listener, &config, hub, web, &tracker, &shutdown).await?;
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Makes the data directory, checks it is writable and private, and logs
/// the quick doctor checks.
fn prepare_data_dir(config: &Config) -> Result<(), RunError> {
    let data_dir_err = |err| RunError::DataDir {
        path: config.data_dir.clone(),
        err,
    };
    datadir::create_dir(&config.data_dir).map_err(data_dir_err)?;
    datadir::check_writable(&config.data_dir).map_err(|err| RunError::DataDirNotWritable {
        path: config.data_dir.clone(),
        err,
    })?;
    doctor::at_start(config);
    match datadir::tighten(&config.data_dir) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            "data directory {}: removed other users' access from {n} folder(s) and file(s) \
             (folders 0700, files 0600)",
            config.data_dir.display()
        ),
        Err(e) => tracing::warn!(
            "cannot make data directory {} private: {e}",
            config.data_dir.display()
        ),
    }
    Ok(())
}

/// What the server keeps: the store behind the event bus, the upload queue,
/// and the server-wide settings.
struct Storage {
    bus: events::EventBus,
    uploader: Option<Arc<uploads::Uploader>>,
    server: serverwide::ServerWide,
}

/// Opens the store and the upload queue, moves what an older lookout left
/// (once), and loads the server-wide settings.
async fn open_storage(config: &Config, limits: &config::Limits) -> Result<Storage, RunError> {
    let store = {
        let dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || store::Store::open(&dir))
            .await
            .map_err(|e| RunError::Serve(std::io::Error::other(e)))??
    };
    let bus = events::EventBus::new(store);
    let uploader = if config.uploads.enabled() {
        let dir = config.data_dir.clone();
        let cfg = config.uploads.clone();
        Some(
            tokio::task::spawn_blocking(move || uploads::Uploader::open(&dir, cfg))
                .await
                .map_err(|e| RunError::Serve(std::io::Error::other(e)))??,
        )
    } else {
        None
    };
    if let Some(first) = config.cameras.first() {
        let root = config.data_dir.join("snaps");
        migrate::legacy_snapshots(&root, &root.join(&first.name), &first.name)?;
        migrate::legacy_state(bus.store(), &first.name).await?;
    }
    let names: Vec<&str> = config.cameras.iter().map(|c| c.name.as_str()).collect();
    migrate::legacy_server_settings(bus.store(), &names).await?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let server = serverwide::ServerWide::load(
        bus.store().clone(),
        config.server,
        serverwide::Caps {
            max_viewers: limits.max_viewers,
            max_sse: limits.max_sse,
        },
    )
    .await?;
    Ok(Storage {
        bus,
        uploader,
        server,
    })
}

/// Opens and starts every camera; returns them with their supervisors'
/// heartbeats, for the systemd watchdog.
async fn start_cameras(
    config: &Config,
    shared: &camera::Shared<'_>,
) -> Result<(Vec<Arc<camera::Camera>>, Vec<source::StatusCell>), RunError> {
    let mut heartbeats = Vec::new();
    let mut cams = Vec::new();
    for (i, c) in config.cameras.iter().enumerate() {
        let spec = camera::Spec {
            name: c.name.clone(),
            source: c.source.clone(),
            source_uri: c.source_uri.clone(),
            detect_source: c.detect_source.clone(),
            settings: c.initial_settings(),
        };
        let (camera, heartbeat) = camera::Camera::start(spec, i == 0, shared).await?;
        heartbeats.push(heartbeat);
        cams.push(camera);
    }
    Ok((cams, heartbeats))
}

/// Logs where lookout serves and how it is reached (and prints a generated
/// password once); returns the URL scheme.
fn announce(
    config: &Config,
    addr: std::net::SocketAddr,
    tls: Option<&web::tls::Tls>,
    auth: &auth::Auth,
    generated: Option<String>,
    required: bool,
) -> &'static str {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shown = if addr.ip().is_unspecified() {
        format!("{scheme}://<this machine's address>:{}/", addr.port())
    } else {
        format!("{scheme}://{addr}/")
    };
    tracing::info!(
        "lookout {} serving {} at {shown}",
        env!("CARGO_PKG_VERSION"),
        config
            .cameras
            .iter()
            .map(|c| format!("{}={}", c.name, redact::redact(&c.source_uri)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let Some(tls) = tls {
        tracing::info!(
            "TLS certificate {} with SHA-256 fingerprint {}",
            tls.cert_path.display(),
            tls.fingerprint
        );
    }
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP on {addr}: passwords, session cookies and the pictures \
             travel in clear text over the network; use --tls-self-signed (or \
             --tls-cert/--tls-key)"
        );
    }
    if required {
        tracing::info!("sign-in required (user {:?})", auth.user());
    } else {
        tracing::info!("listening on loopback only: no sign-in needed");
    }
    if let Some(password) = generated {
        // Shown once, like Jupyter's token: only its hash is kept.
        console::say(format_args!(
            "\n  lookout generated a password for user {:?}: {password}\n  \
             sign in at {shown} (change it with `lookout passwd`)\n",
            auth.user()
        ));
    }
    scheme
}

/// Starts the MQTT link, with the dashboard's URL for Home Assistant.
fn start_mqtt(
    config: &Config,
    mqtt: mqtt::Mqtt,
    hub: &Arc<hub::Hub>,
    scheme: &str,
    addr: std::net::SocketAddr,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    // Home Assistant's "visit" link: this machine by name when listening
    // on every address.
    let dashboard = match mqtt::host_name() {
        Some(host) if addr.ip().is_unspecified() => {
            format!("{scheme}://{host}:{}/", addr.port())
        }
        _ => format!("{scheme}://{addr}/"),
    };
    tracing::info!(
        "MQTT: publishing to {} (commands {})",
        config.mqtt.as_ref().map(|m| m.broker()).unwrap_or_default(),
        if config.mqtt.as_ref().is_some_and(|m| m.commands) {
            "on"
        } else {
            "off"
        }
    );
    tracker.spawn(mqtt::run(mqtt, hub.clone(), dashboard, shutdown.clone()));
}

/// What the web side needs besides the hub.
struct Web {
    auth: auth::Auth,
    tls: Option<web::tls::Tls>,
    limits: config::Limits,
    heartbeats: Vec<source::StatusCell>,
}

/// Serves HTTP (and the HTTPS redirect, and the watchdog's pings) until
/// `shutdown` fires.
async fn serve(
    listener: TcpListener,
    config: &Config,
    hub: Arc<hub::Hub>,
    web: Web,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), RunError> {
    let Web {
        auth,
        tls,
        limits,
        heartbeats,
    } = web;
    let addr = listener.local_addr()?;
    let policy = web::policy::Policy {
        auth,
        tls: tls.is_some(),
        allowed_origins: config.allow_origins.clone(),
        allowed_hosts: config.allow_hosts.clone(),
        max_body: limits.max_body,
        max_ws_message: limits.max_ws_message,
        max_ws: limits.max_ws,
        trusted_proxies: config.trusted_proxies.clone(),
        max_per_client: limits.max_connections_per_ip,
        forwarded: Default::default(),
    };
    let app = web::router(hub, Arc::new(policy));
    // One door for every listener: they share the process's descriptors.
    let door = web::server::Door::new(web::server::ConnLimits {
        max_connections: limits.max_connections,
        max_per_address: limits.max_connections_per_ip,
        trusted_proxies: config.trusted_proxies.clone(),
        deadlines: limits.deadlines(),
    });
    if let (Some(redirect), true) = (config.redirect_http, tls.is_some()) {
        let plain = TcpListener::bind(redirect).await?;
        tracing::info!("redirecting http://{}/ to HTTPS", plain.local_addr()?);
        tracker.spawn(web::server::redirect_to_https(
            plain,
            addr.port(),
            door.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(notifier) = notify::Notifier::from_env() {
        match notifier {
            Ok(n) => {
                let health = notify::Health {
                    listen: addr,
                    tls: tls.is_some(),
                    cameras: heartbeats,
                };
                tracker.spawn(notify::run(n, health, shutdown.clone()));
            }
            Err(e) => tracing::warn!("NOTIFY_SOCKET is set but unusable: {e}"),
        }
    }
    web::server::serve(listener, app, tls.map(|t| t.config), door, shutdown.clone()).await?;
    Ok(())
}

/// Fits the connection, viewer and subscriber caps to the open-file limit
/// (see [`descriptors`]), so that a cap refuses a client before the limit
/// refuses a snapshot or a database write. Returns them with the line that
/// says so, logged once lookout has said where it serves.
fn fit_limits(mut limits: config::Limits) -> (config::Limits, String) {
    let budget = descriptors::FdBudget::probe();
    let shown = budget
        .limit
        .map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    if limits.max_connections > budget.connections {
        tracing::warn!(
            "max connections {} does not fit the open-file limit {shown} \
             ({} kept for the store, snapshots, sources and uploads); using {}. \
             Raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) to allow more",
            limits.max_connections,
            budget.reserve,
            budget.connections
        );
        limits.max_connections = budget.connections;
    }
    limits.max_viewers = limits.max_viewers.min(limits.max_connections);
    limits.max_sse = limits.max_sse.min(limits.max_connections);
    limits.max_ws = limits.max_ws.min(limits.max_connections);
    limits.max_connections_per_ip = limits.max_connections_per_ip.min(limits.max_connections);
    let said = format!(
        "open-file limit {shown}: up to {} connections ({} per client address), {} stream \
         viewers, {} event subscribers, {} WebSockets ({} descriptors kept for the store, \
         snapshots, sources and uploads)",
        limits.max_connections,
        limits.max_connections_per_ip,
        limits.max_viewers,
        limits.max_sse,
        limits.max_ws,
        budget.reserve
    );
    (limits, said)
}

/// Prunes the event history by age and count (the server's settings, read
/// at each round: a change at run time applies at the next), and expired
/// sessions, hourly and at start.
async fn prune_history(hub: Arc<hub::Hub>, cancel: CancellationToken) {
    let store = hub.events().store();
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let s = hub.server().settings();
        let now = frame::unix_secs(std::time::SystemTime::now());
        match store.prune_events(now, s.max_age_s(), s.events_max).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("pruned {n} old events"),
            Err(e) => tracing::warn!("cannot prune events: {e}"),
        }
        // Expired sessions and API tokens are refused already; this only
        // keeps the table from growing.
        if let Err(e) = store.prune_tokens(now).await {
            tracing::warn!("cannot prune expired sessions: {e}");
        }
    }
}
