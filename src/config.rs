//! Configuration: command-line flags, `LOOKOUT_*` environment variables and an
//! optional TOML file, merged and validated once into an immutable [`Config`].
//!
//! Precedence: a flag (or its environment variable) wins over the file, and the
//! file wins over the built-in default. Settings changed at run time (`/config`)
//! are a separate layer, see `settings`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::settings::{Settings, SettingsError};
use crate::source::{SourceSpec, SpecError};

/// Default listen address: loopback only, so a fresh start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "lookout-data";
/// Default source.
pub const DEFAULT_SOURCE: &str = "synthetic";

/// lookout: a small, fast, self-hosted smart camera server.
///
/// Watch at /stream.jpg and /snapshot.jpg, change settings at /config, see the
/// state at /status. Every flag can also be set with the environment variable
/// shown, or in a TOML file given with --config (flags win over the file).
#[derive(Debug, Parser)]
#[command(name = "lookout", version, about, long_about)]
pub struct Cli {
    /// TOML file with any of the settings below (keys as the flags, with
    /// underscores), e.g. `--config /etc/lookout.toml` holding
    /// `listen = "0.0.0.0:8080"` and `source = "v4l2:/dev/video0"`.
    #[arg(long, env = "LOOKOUT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and port to listen on, e.g. `--listen 0.0.0.0:8080` for the whole
    /// network [default: 127.0.0.1:8080].
    #[arg(long, env = "LOOKOUT_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Folder for snapshots and state, created when missing, e.g.
    /// `--data-dir /var/lib/lookout` [default: ./lookout-data].
    #[arg(long, env = "LOOKOUT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The camera, as a URI [default: synthetic]. Kinds:
    /// `synthetic:?size=1280x720&fps=30&motion=periodic` (motion: periodic, always, never);
    /// `exec:COMMAND` whose stdout is MJPEG, e.g. `exec:rpicam-vid -t 0 --codec mjpeg -o -`
    /// or `exec:ffmpeg -f v4l2 -input_format mjpeg -i /dev/video0 -c copy -f mjpeg -`;
    /// `http://cam/stream` (MJPEG) or `http://cam/snapshot.jpg#fps=5` (polled);
    /// `file:clip.mjpeg?fps=10` or `file:folder-of-jpegs/`;
    /// `v4l2:/dev/video0?size=1280x720&fps=30`.
    #[arg(long, env = "LOOKOUT_SOURCE", value_name = "URI")]
    pub source: Option<String>,
}

/// The same settings as the flags, read from the `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--listen`.
    pub listen: Option<String>,
    /// See `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// See `--source`.
    pub source: Option<String>,
    /// Initial runtime settings (`threshold`, `cooldown_s`, ...), as in
    /// `/config`. Values changed at run time and saved in the store win.
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The source as given (for `/status`, redacted there).
    pub source_uri: String,
    /// The parsed source.
    pub source: SourceSpec,
    /// Runtime settings to start from (before the saved ones are applied).
    pub settings: Settings,
}

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
    /// `--listen` is not an address.
    #[error("bad --listen {0:?}: expected IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")]
    Listen(String),
    /// The `[settings]` table is invalid.
    #[error("config file [settings]: {0}")]
    Settings(#[from] SettingsError),
    /// `--source` cannot be parsed.
    #[error(transparent)]
    Source(#[from] SpecError),
}

impl Config {
    /// Merges flags (and environment) over the file over defaults.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = cli
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let source_uri = cli
            .source
            .clone()
            .or(file.source)
            .unwrap_or_else(|| DEFAULT_SOURCE.into());
        let settings = match file.settings {
            Some(table) => Settings::default().patched(&serde_json::Value::Object(table))?,
            None => Settings::default(),
        };
        Ok(Config {
            settings,
            listen: listen
                .trim()
                .parse()
                .map_err(|_| ConfigError::Listen(listen.clone()))?,
            data_dir: cli
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            source: source_uri.parse()?,
            source_uri,
        })
    }

    /// A configuration for tests and embedding: the given source, data dir and
    /// defaults for the rest.
    pub fn new(source_uri: &str, data_dir: &Path) -> Result<Config, ConfigError> {
        Ok(Config {
            listen: DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError::Listen(DEFAULT_LISTEN.into()))?,
            data_dir: data_dir.to_path_buf(),
            source: source_uri.parse()?,
            source_uri: source_uri.to_string(),
            settings: Settings::default(),
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    toml::from_str(&text).map_err(|err| ConfigError::Parse {
        path: path.to_path_buf(),
        err: Box::new(err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("lookout").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults() {
        let c = Config::from_cli(&cli(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("lookout-data"));
        assert_eq!(c.source_uri, "synthetic");
    }

    #[test]
    fn flags_win_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        let text = "listen = \"0.0.0.0:9000\"\nsource = \"file:x\"\n[settings]\nthreshold = 30\n";
        std::fs::write(&file, text).unwrap();
        let f = file.to_str().unwrap();
        let c = Config::from_cli(&cli(&["--config", f, "--source", "synthetic"])).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.source_uri, "synthetic");
        assert_eq!(c.settings.threshold, 30);
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Config::from_cli(&cli(&["--listen", "localhost"])).unwrap_err();
        assert!(err.to_string().contains("IP:PORT"), "{err}");
        let err = Config::from_cli(&cli(&["--source", "ftp://x"])).unwrap_err();
        assert!(err.to_string().contains("unknown kind"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = Config::from_cli(&cli(&["--config", file.to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
