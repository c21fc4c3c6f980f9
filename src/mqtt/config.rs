//! Where and how to talk to the broker: the validated `[mqtt]` settings and
//! the host's name for discovery ids.

use std::path::PathBuf;

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

pub(super) fn valid_node(n: &str) -> bool {
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
pub(super) fn host_node() -> String {
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
