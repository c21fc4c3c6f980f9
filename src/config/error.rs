//! A configuration that cannot be used, saying what to change.

use std::path::PathBuf;

use crate::mqtt::MqttConfigError;
use crate::settings::SettingsError;
use crate::source::SpecError;

/// A configuration that cannot be used, saying what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {err}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The config file is not valid TOML for lookout.
    #[error("config file {path}: {err}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        err: Box<toml::de::Error>,
    },
    /// `--listen` or `--redirect-http` is not an address.
    #[error("bad address {0:?}: expected IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")]
    Listen(String),
    /// `--tls-cert` without `--tls-key` (from the file).
    #[error("tls_cert and tls_key go together; give both")]
    TlsPair,
    /// A limit of zero.
    #[error("{0} must be at least 1")]
    Limit(&'static str),
    /// The `[settings]` table is invalid.
    #[error("config file [settings]: {0}")]
    Settings(#[from] SettingsError),
    /// A server-wide setting (`--events-max` and the like) is out of range.
    #[error("{0}")]
    Server(SettingsError),
    /// `--source` cannot be parsed.
    #[error(transparent)]
    Source(#[from] SpecError),
    /// A camera entry is wrong (the message names it).
    #[error("{0}")]
    Camera(String),
    /// A user name lookout keeps for itself.
    #[error("user name {0:?} is taken: with HTTP Basic it means \"the password is a long-lived token\"; choose another --user")]
    User(String),
    /// An MQTT option is wrong.
    #[error(transparent)]
    Mqtt(#[from] MqttConfigError),
    /// A `--trusted-proxy` is not an address or a block.
    #[error(transparent)]
    TrustedProxy(#[from] crate::peers::BadProxy),
}
