//! The MQTT link's state, shared with `/status` and `/metrics` before and
//! while the link runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::config::MqttConfig;
use super::outbox::{self, Outbox};

/// The link's state, shared with `/status` and `/metrics`.
pub struct MqttStatus {
    broker: String,
    pub(super) connected: AtomicBool,
    pub(super) sent: AtomicU64,
    pub(super) ignored: AtomicU64,
    last_error: Mutex<Option<String>>,
    pub(super) outbox: Arc<Outbox>,
}

/// `/status` → `mqtt`.
#[derive(Debug, Clone, Serialize)]
pub struct MqttReport {
    /// The broker (no password).
    pub broker: String,
    /// Whether the broker accepted the connection and it is up.
    pub connected: bool,
    /// The last connection failure, if any since start.
    pub last_error: Option<String>,
    /// Messages the broker acknowledged.
    pub sent: u64,
    /// Messages dropped from a full outbox (the oldest events first), or
    /// lost with a connection before the broker acknowledged them.
    pub dropped: u64,
    /// Messages waiting for the broker.
    pub queued: usize,
    /// Messages from the broker that lookout passed over: retained
    /// commands, commands over 64 KiB, commands beyond the queue. (Messages
    /// over 1 MiB never reach lookout: the broker discards them, unseen
    /// here.)
    pub ignored: u64,
}

impl MqttStatus {
    pub(super) fn new(broker: String) -> MqttStatus {
        MqttStatus {
            broker,
            connected: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            last_error: Mutex::new(None),
            outbox: Arc::new(Outbox::new(outbox::MAX_ITEMS, outbox::MAX_BYTES)),
        }
    }

    /// Whether the broker connection is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The `/status` report.
    pub fn report(&self) -> MqttReport {
        MqttReport {
            broker: self.broker.clone(),
            connected: self.connected(),
            last_error: crate::sync::lock(&self.last_error).clone(),
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.outbox.dropped(),
            queued: self.outbox.len(),
            ignored: self.ignored.load(Ordering::Relaxed),
        }
    }

    pub(super) fn set_error(&self, e: String) {
        *crate::sync::lock(&self.last_error) = Some(e);
    }
}

/// A configured MQTT link, before it runs: its status exists from the start
/// so the hub (and `/status`) can hold it.
pub struct Mqtt {
    pub(super) config: MqttConfig,
    pub(super) status: Arc<MqttStatus>,
}

impl Mqtt {
    /// A link to the broker of `config`.
    pub fn new(config: MqttConfig) -> Mqtt {
        let status = Arc::new(MqttStatus::new(config.broker()));
        Mqtt { config, status }
    }

    /// Its status.
    pub fn status(&self) -> &Arc<MqttStatus> {
        &self.status
    }
}
