//! The hub: what every camera shares. The store, the event bus, the upload
//! queue, the server-wide settings, the clock of the server's life, and the
//! list of cameras, in their configured order (the first also answers at
//! the seed's root routes, and nothing more: what is the server's is read
//! here, never through it).

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::camera::Camera;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::mqtt::status::MqttStatus;
use crate::push::Notifier;
use crate::serverwide::ServerWide;
use crate::uploads::Uploader;

/// The shared part of a running lookout.
pub struct Hub {
    cams: Vec<Arc<Camera>>,
    events: EventBus,
    server: ServerWide,
    uploads: Option<Arc<Uploader>>,
    push: Arc<Notifier>,
    metrics: Arc<Metrics>,
    mqtt: Option<Arc<MqttStatus>>,
    started: Instant,
    /// Open `/control` WebSockets (each holds a place in it).
    websockets: Arc<AtomicUsize>,
    /// Fires at shutdown; long-lived responses end on it.
    shutdown: CancellationToken,
}

/// What a hub is made of, for [`Hub::new`].
pub struct HubParts {
    /// The cameras, at least one, in configuration order.
    pub cams: Vec<Arc<Camera>>,
    /// The event bus.
    pub events: EventBus,
    /// The server-wide settings.
    pub server: ServerWide,
    /// The upload queue, when configured.
    pub uploads: Option<Arc<Uploader>>,
    /// Phone notifications.
    pub push: Arc<Notifier>,
    /// The Prometheus counters.
    pub metrics: Arc<Metrics>,
    /// The MQTT link's state, when configured.
    pub mqtt: Option<Arc<MqttStatus>>,
    /// Fires at shutdown.
    pub shutdown: CancellationToken,
}

impl Hub {
    /// A hub over `parts.cams` (at least one).
    pub fn new(parts: HubParts) -> Hub {
        let HubParts {
            cams,
            events,
            server,
            uploads,
            push,
            metrics,
            mqtt,
            shutdown,
        } = parts;
        Hub {
            cams,
            events,
            server,
            uploads,
            push,
            metrics,
            mqtt,
            started: Instant::now(),
            websockets: Arc::default(),
            shutdown,
        }
    }

    /// The cameras, in configuration order.
    pub fn cams(&self) -> &[Arc<Camera>] {
        &self.cams
    }

    /// The camera named `name`.
    pub fn cam(&self, name: &str) -> Option<&Arc<Camera>> {
        self.cams.iter().find(|c| c.name == name)
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The server-wide settings: history retention, SSE keepalive, caps.
    pub fn server(&self) -> &ServerWide {
        &self.server
    }

    /// The upload queue, when configured.
    pub fn uploads(&self) -> Option<&Arc<Uploader>> {
        self.uploads.as_ref()
    }

    /// Phone notifications: subscriptions, snoozes, incidents.
    pub fn push(&self) -> &Arc<Notifier> {
        &self.push
    }

    /// The Prometheus counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The MQTT link's state, when configured.
    pub fn mqtt(&self) -> Option<&Arc<MqttStatus>> {
        self.mqtt.as_ref()
    }

    /// Open `/control` WebSockets (a counter each socket holds a place in).
    pub fn websockets(&self) -> &Arc<AtomicUsize> {
        &self.websockets
    }

    /// When the server started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Open stream viewers over every camera (the viewer cap is one for the
    /// whole server: each viewer is a socket).
    pub fn viewers(&self) -> usize {
        self.cams.iter().map(|c| c.cam.viewers()).sum()
    }

    /// Fires at shutdown; long-lived responses end on it.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }
}
