//! MQTT: how a household's hub (Home Assistant, or any MQTT consumer) sees
//! the cameras and drives them, through one broker.
//!
//! # Topics (`PREFIX` is `lookout` unless set; `NAME` is a camera)
//! | topic | retained | what |
//! |---|---|---|
//! | `PREFIX/availability` | yes | `online`, or `offline` (clean stop, or the broker's last will) |
//! | `PREFIX/NAME/motion` | yes | `ON` / `OFF`, following motion episodes |
//! | `PREFIX/NAME/state` | yes | `{"trigger_count", "threshold", "change", "motion", "source"}`, on change; the score at most once a second |
//! | `PREFIX/NAME/events` | no | every stored event of the camera, as on `/events`, plus `id` and `kind` |
//! | `PREFIX/events` | no | the server-wide stored events (`upload`) |
//! | `PREFIX/NAME/snapshot` | yes | the JPEG saved when motion started |
//! | `PREFIX/NAME/cmd` | in | the `/control` commands; the reply goes to `PREFIX/NAME/reply` |
//! | `PREFIX/NAME/threshold/set` | in | an integer, as `{"cmd": "set", "threshold": N}` |
//! | `DISCOVERY/device/lookout_NODE_NAME/config` | yes | Home Assistant device discovery |
//! | `DISCOVERY/status` | in | Home Assistant's birth: discovery and state again (paced) |
//!
//! # Never in the way
//! Nothing on the streaming, detection or command paths waits for the
//! broker. What is to be published goes into a bounded [`Outbox`]: state is
//! kept once per topic (the newest wins) and the oldest events go first when
//! it is full, each drop counted. The publisher hands messages to the client
//! only while the link is up; what a dropped connection had not got
//! acknowledged is counted as dropped too. Every (re)connect publishes the
//! whole state again, so a broker that was down, slow or restarted without
//! persistence ends up current; so does Home Assistant's birth, at most
//! once per few seconds however many births arrive. Retained state of
//! cameras since removed is emptied (the topics published are remembered in
//! the store).
//!
//! # Trust
//! Commands over MQTT are trusted as far as the broker's ACLs: whoever may
//! publish to `PREFIX/NAME/cmd` may run them, on that camera only (a
//! `"camera"` naming another is refused). Retained commands are ignored (they
//! would run again at every reconnect). `--mqtt-commands off` stops listening
//! (Home Assistant then gets no buttons or slider). What any broker user can
//! publish on a subscribed topic cannot end the link: messages over 1 MiB
//! are discarded by the broker (MQTT 5 Maximum Packet Size), larger-than-64
//! KiB commands by lookout (counted in `ignored`), and the client id is not
//! guessable, so no one can take over the session.
//!
//! # Layout
//! This file: the configuration and the status. `outbox.rs`: the bounded
//! queue. `feed.rs`: events and state into messages. `discovery.rs`: Home
//! Assistant's payloads. `connect.rs`: the client id, CONNECT's options,
//! errors, and the one-shot [`probe`] of `lookout doctor`. `link.rs`: the connection, commands in.

mod connect;
mod discovery;
mod feed;
mod link;
mod outbox;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use connect::probe;
pub use link::run;
use outbox::Outbox;

/// Default topic prefix.
pub const DEFAULT_PREFIX: &str = "lookout";
/// Default Home Assistant discovery prefix.
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";

/// Where and how to talk to the broker, validated. (Its `Debug` hides the
/// password.)
#[derive(Clone, PartialEq)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883, or 8883 for `mqtts`).
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
    /// User name, from the URL.
    pub user: Option<String>,
    /// Password, from `LOOKOUT_MQTT_PASSWORD` or the file's `[mqtt]` table.
    pub password: Option<String>,
    /// Trust only the CA(s) in this PEM file (else the public roots).
    pub ca_file: Option<PathBuf>,
    /// Topic prefix.
    pub prefix: String,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// This server's name in discovery ids (the host name by default).
    pub node: String,
    /// Whether commands are taken from `cmd` and `threshold/set`.
    pub commands: bool,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("broker", &self.broker())
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("ca_file", &self.ca_file)
            .field("prefix", &self.prefix)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("node", &self.node)
            .field("commands", &self.commands)
            .finish()
    }
}

/// An MQTT option that cannot be used, saying what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttConfigError {
    /// Not a URL lookout can connect to.
    #[error("--mqtt-url {0}: expected mqtt://[user@]host[:port] or mqtts://[user@]host[:port]")]
    Url(String),
    /// A password in the URL (it would show in `ps` and in logs).
    #[error(
        "--mqtt-url must not hold the password (it shows in `ps`); \
         set LOOKOUT_MQTT_PASSWORD or `password` in the file's [mqtt] table"
    )]
    PasswordInUrl,
    /// A password but no user to go with it (MQTT sends none then).
    #[error("an MQTT password is set but --mqtt-url names no user: use mqtt://USER@host")]
    PasswordWithoutUser,
    /// A prefix that is not a plain topic.
    #[error(
        "{0} {1:?}: expected topic levels of letters, digits, `_` and `-` \
         separated by `/`, e.g. `lookout` or `home/lookout`"
    )]
    Prefix(&'static str, String),
    /// A node name that does not fit in an id.
    #[error("--mqtt-node {0:?}: expected 1-64 of a-z, 0-9, `_` and `-`")]
    Node(String),
}

impl MqttConfig {
    /// Parses `--mqtt-url` and checks the rest. `node` defaults to this
    /// machine's host name.
    pub fn new(
        url: &str,
        password: Option<String>,
        ca_file: Option<PathBuf>,
        prefix: Option<String>,
        discovery_prefix: Option<String>,
        node: Option<String>,
        commands: bool,
    ) -> Result<MqttConfig, MqttConfigError> {
        // Also when it does not parse: `u:pw@host` has no `://`.
        let bad = || MqttConfigError::Url(crate::redact::redact_url(url));
        let parsed = url::Url::parse(url.trim()).map_err(|_| bad())?;
        let (tls, default_port) = match parsed.scheme() {
            "mqtt" | "tcp" => (false, 1883),
            "mqtts" | "ssl" => (true, 8883),
            _ => return Err(bad()),
        };
        if parsed.password().is_some() {
            return Err(MqttConfigError::PasswordInUrl);
        }
        let host = match parsed.host_str() {
            Some(h) if !h.is_empty() => h.trim_matches(['[', ']']).to_string(),
            _ => return Err(bad()),
        };
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(bad());
        }
        let user = match parsed.username() {
            "" => None,
            u => Some(
                percent_encoding::percent_decode_str(u)
                    .decode_utf8()
                    .map_err(|_| bad())?
                    .into_owned(),
            ),
        };
        let password = password.filter(|p| !p.is_empty());
        if password.is_some() && user.is_none() {
            return Err(MqttConfigError::PasswordWithoutUser);
        }
        let prefix = check_prefix("--mqtt-prefix", prefix, DEFAULT_PREFIX)?;
        let discovery_prefix = check_prefix(
            "--mqtt-discovery-prefix",
            discovery_prefix,
            DEFAULT_DISCOVERY_PREFIX,
        )?;
        let node = match node {
            Some(n) if valid_node(&n) => n,
            Some(n) => return Err(MqttConfigError::Node(n)),
            None => host_node(),
        };
        Ok(MqttConfig {
            host,
            port: parsed.port().unwrap_or(default_port),
            tls,
            user,
            password,
            ca_file,
            prefix,
            discovery_prefix,
            node,
            commands,
        })
    }

    /// The broker as logs and `/status` show it (no password, ever).
    pub fn broker(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{user}{host}:{}", self.port)
    }
}

fn check_prefix(
    what: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<String, MqttConfigError> {
    let Some(p) = value else {
        return Ok(default.to_string());
    };
    let ok = !p.is_empty()
        && p.len() <= 128
        && p.split('/').all(|level| {
            !level.is_empty()
                && level
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(p)
    } else {
        Err(MqttConfigError::Prefix(what, p))
    }
}

fn valid_node(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// This machine's host name, when it can be read.
pub fn host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    Some(raw.trim().to_string()).filter(|h| !h.is_empty())
}

/// This machine's host name, lowercased, as a node name (`lookout` when it
/// cannot be read).
fn host_node() -> String {
    let node: String = host_name()
        .unwrap_or_default()
        .chars()
        .take(64)
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if node.is_empty() {
        "lookout".into()
    } else {
        node
    }
}

/// The link's state, shared with `/status` and `/metrics`.
pub struct MqttStatus {
    broker: String,
    connected: AtomicBool,
    sent: AtomicU64,
    ignored: AtomicU64,
    last_error: Mutex<Option<String>>,
    outbox: Arc<Outbox>,
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
    fn new(broker: String) -> MqttStatus {
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

    fn set_error(&self, e: String) {
        *crate::sync::lock(&self.last_error) = Some(e);
    }
}

/// A configured MQTT link, before it runs: its status exists from the start
/// so the hub (and `/status`) can hold it.
pub struct Mqtt {
    config: MqttConfig,
    status: Arc<MqttStatus>,
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

/// The topic names, from the two prefixes and the node.
#[derive(Debug, Clone)]
struct Topics {
    prefix: String,
    discovery: String,
    node: String,
}

impl Topics {
    fn new(c: &MqttConfig) -> Topics {
        Topics {
            prefix: c.prefix.clone(),
            discovery: c.discovery_prefix.clone(),
            node: c.node.clone(),
        }
    }

    fn availability(&self) -> String {
        format!("{}/availability", self.prefix)
    }

    fn cam(&self, cam: &str, leaf: &str) -> String {
        format!("{}/{cam}/{leaf}", self.prefix)
    }

    fn server_events(&self) -> String {
        format!("{}/events", self.prefix)
    }

    fn device_id(&self, cam: &str) -> String {
        format!("lookout_{}_{cam}", self.node)
    }

    fn device_config(&self, cam: &str) -> String {
        format!("{}/device/{}/config", self.discovery, self.device_id(cam))
    }

    /// Home Assistant's birth and will topic.
    fn ha_status(&self) -> String {
        format!("{}/status", self.discovery)
    }

    /// What an incoming topic of ours asks for.
    fn route<'a>(&self, topic: &'a str) -> Route<'a> {
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
enum Route<'a> {
    /// `PREFIX/NAME/cmd`.
    Command(&'a str),
    /// `PREFIX/NAME/threshold/set`.
    Threshold(&'a str),
    /// `DISCOVERY/status`.
    HaStatus,
    /// Not ours.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Result<MqttConfig, MqttConfigError> {
        MqttConfig::new(url, None, None, None, None, Some("node".into()), true)
    }

    #[test]
    fn urls_are_parsed_with_their_defaults() {
        let c = config("mqtt://broker").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls, c.user),
            ("broker", 1883, false, None)
        );
        let c = config("mqtts://ha%40home@broker.lan:9000/").unwrap();
        assert_eq!((c.port, c.tls), (9000, true));
        assert_eq!(c.user.as_deref(), Some("ha@home"));
        assert_eq!(c.broker(), "mqtts://ha@home@broker.lan:9000");
        assert_eq!(
            config("mqtts://[::1]").unwrap().broker(),
            "mqtts://[::1]:8883"
        );
        assert_eq!(c.prefix, "lookout");
        assert_eq!(c.discovery_prefix, "homeassistant");
    }

    #[test]
    fn bad_urls_and_passwords_in_urls_are_refused() {
        for url in [
            "http://broker",
            "broker:1883",
            "mqtt://",
            "mqtt://b/topic",
            "mqtt://b?x=1",
        ] {
            assert!(matches!(config(url), Err(MqttConfigError::Url(_))), "{url}");
        }
        let e = config("mqtt://u:secret@broker").unwrap_err();
        assert_eq!(e, MqttConfigError::PasswordInUrl);
        assert!(!e.to_string().contains("secret"));
        // Not URLs lookout takes, and the password stays out of the error.
        for url in ["u:secret@b:1883", "mqtts//u:secret@b", "mqtt:u:secret@b"] {
            let e = config(url).unwrap_err();
            assert!(matches!(e, MqttConfigError::Url(_)), "{url}");
            assert!(!e.to_string().contains("secret"), "{e}");
            assert!(!format!("{e:?}").contains("secret"), "{e:?}");
        }
        let e = MqttConfig::new("mqtt://b", Some("pw".into()), None, None, None, None, true);
        assert_eq!(e.unwrap_err(), MqttConfigError::PasswordWithoutUser);
        let c = MqttConfig::new(
            "mqtt://u@b",
            Some("pw-42".into()),
            None,
            None,
            None,
            None,
            true,
        );
        assert!(!format!("{:?}", c.unwrap()).contains("pw-42"));
    }

    #[test]
    fn prefixes_and_nodes_are_checked() {
        let p = |p: &str| MqttConfig::new("mqtt://b", None, None, Some(p.into()), None, None, true);
        assert_eq!(p("home/cams").unwrap().prefix, "home/cams");
        for bad in ["", "a/", "/a", "a//b", "a/+", "a/#", "a b"] {
            assert!(
                matches!(p(bad), Err(MqttConfigError::Prefix(..))),
                "{bad:?}"
            );
        }
        let n = |n: &str| MqttConfig::new("mqtt://b", None, None, None, None, Some(n.into()), true);
        assert!(n("pi-4_b").is_ok());
        assert!(matches!(n("Pi"), Err(MqttConfigError::Node(_))));
        assert!(valid_node(&host_node()), "{:?}", host_node());
    }

    #[test]
    fn route_topics_are_told_apart() {
        let t = Topics::new(&config("mqtt://b").unwrap());
        assert_eq!(t.route("lookout/yard/cmd"), Route::Command("yard"));
        assert_eq!(
            t.route("lookout/yard/threshold/set"),
            Route::Threshold("yard")
        );
        assert_eq!(t.route("homeassistant/status"), Route::HaStatus);
        assert_eq!(t.route("lookout/yard/motion"), Route::Other);
        assert_eq!(t.route("lookoutx/yard/cmd"), Route::Other);
        assert_eq!(
            t.device_config("yard"),
            "homeassistant/device/lookout_node_yard/config"
        );
    }
}
