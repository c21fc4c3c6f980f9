//! The topic names, from the two prefixes and the node, and what an
//! incoming topic asks for.

use super::config::MqttConfig;

/// The topic names, from the two prefixes and the node.
#[derive(Debug, Clone)]
pub(super) struct Topics {
    pub(super) prefix: String,
    pub(super) discovery: String,
    pub(super) node: String,
}

impl Topics {
    pub(super) fn new(c: &MqttConfig) -> Topics {
        Topics {
            prefix: c.prefix.clone(),
            discovery: c.discovery_prefix.clone(),
            node: c.node.clone(),
        }
    }

    pub(super) fn availability(&self) -> String {
        format!("{}/availability", self.prefix)
    }

    pub(super) fn cam(&self, cam: &str, leaf: &str) -> String {
        format!("{}/{cam}/{leaf}", self.prefix)
    }

    pub(super) fn server_events(&self) -> String {
        format!("{}/events", self.prefix)
    }

    pub(super) fn device_id(&self, cam: &str) -> String {
        format!("lookout_{}_{cam}", self.node)
    }

    pub(super) fn device_config(&self, cam: &str) -> String {
        format!("{}/device/{}/config", self.discovery, self.device_id(cam))
    }

    /// Home Assistant's birth and will topic.
    pub(super) fn ha_status(&self) -> String {
        format!("{}/status", self.discovery)
    }

    /// What an incoming topic of ours asks for.
    pub(super) fn route<'a>(&self, topic: &'a str) -> Route<'a> {
        if topic == self.ha_status() {
            return Route::HaStatus;
        }
        let rest = topic
            .strip_prefix(&self.prefix)
            .and_then(|t| t.strip_prefix('/'));
        match rest.and_then(|r| r.split_once('/')) {
            Some((cam, "cmd")) => Route::Command(cam),
            Some((cam, "threshold/set")) => Route::Threshold(cam),
            _ => Route::Other,
        }
    }
}

/// An incoming message's meaning.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route<'a> {
    /// `PREFIX/NAME/cmd`.
    Command(&'a str),
    /// `PREFIX/NAME/threshold/set`.
    Threshold(&'a str),
    /// `DISCOVERY/status`.
    HaStatus,
    /// Not ours.
    Other,
}
