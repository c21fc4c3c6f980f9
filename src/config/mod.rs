//! Configuration: command-line flags, `LOOKOUT_*` environment variables and an
//! optional TOML file, merged and validated once into an immutable [`Config`].
//!
//! Precedence: a flag (or its environment variable) wins over the file, and the
//! file wins over the built-in default. Settings changed at run time (`/config`)
//! are a separate layer, see `settings`.
//!
//! Each option is declared once, as a field of [`Cli`]: clap reads it from its
//! flag and `env`, serde from the file key of the same name. Every field is an
//! `Option`, a `Vec` or a switch, so "not given" stays visible until
//! `Cli::over` lays the flags over the file in one step; only then do the
//! defaults below fill the gaps, while [`Config::from_cli`] validates.

mod camera;
mod cli;
mod error;
mod limits;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::mqtt::MqttConfig;
pub use crate::names::is_plain_name;
use crate::push::PushConfig;
use crate::serverwide::{take_server_keys, ServerSettings};
use crate::settings::Settings;
use crate::uploads::UploadConfig;
use crate::web::tls::TlsSource;
use camera::cameras;
pub use camera::CameraConfig;
pub use cli::{
    Cli, Command, FileCamera, FileMqtt, SessionAction, TokenAction, DEFAULT_CONFIG,
    DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_SOURCE, DEFAULT_TIMEOUT_S, DEFAULT_USER,
};
pub use error::ConfigError;
pub use limits::Limits;

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The cameras, at least one; the first also answers at the root routes.
    pub cameras: Vec<CameraConfig>,
    /// HTTPS, when set.
    pub tls: Option<TlsSource>,
    /// A plain listener redirecting to HTTPS.
    pub redirect_http: Option<SocketAddr>,
    /// Credentials even on loopback.
    pub require_auth: bool,
    /// Login user name.
    pub user: String,
    /// Password from `LOOKOUT_PASSWORD`.
    pub password: Option<String>,
    /// Password file.
    pub password_file: Option<PathBuf>,
    /// Origins allowed cross-site.
    pub allow_origins: Vec<String>,
    /// Extra host names answered on loopback without sign-in (lowercase, no
    /// port).
    pub allow_hosts: Vec<String>,
    /// Reverse proxies whose forwarded client address is believed.
    pub trusted_proxies: crate::peers::TrustedProxies,
    /// Limits.
    pub limits: Limits,
    /// The server-wide runtime settings to start from (before the saved
    /// ones are applied).
    pub server: ServerSettings,
    /// What to say at start about this configuration (a setting in a
    /// place it has moved from).
    pub warnings: Vec<String>,
    /// Uploads of triggered frames and webhook calls.
    pub uploads: UploadConfig,
    /// Phone notifications (ntfy, links, the VAPID contact).
    pub push: PushConfig,
    /// The MQTT broker, when set.
    pub mqtt: Option<MqttConfig>,
}

impl Config {
    /// Merges flags (and environment) over the file over defaults.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let file = match config_file(cli.config.as_deref(), Path::new(DEFAULT_CONFIG)) {
            Some(path) => read_file(&path)?,
            None => Cli::default(),
        };
        let mut o = cli.clone().over(file);
        let (server, warnings) = server_settings(&mut o)?;
        let settings = match &o.settings {
            Some(table) => Settings::default().patched_keys(table)?,
            None => Settings::default(),
        };
        let cameras = cameras(&o, &settings)?;
        let mqtt = mqtt(&o)?;
        if o.user.as_deref() == Some(crate::web::auth::TOKEN_USER) {
            return Err(ConfigError::User(crate::web::auth::TOKEN_USER.into()));
        }
        let address = |a: &str| -> Result<SocketAddr, ConfigError> {
            a.trim().parse().map_err(|_| ConfigError::Listen(a.into()))
        };
        let tls = match (o.tls_cert, o.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
            (None, None) if o.tls_self_signed => Some(TlsSource::SelfSigned),
            (None, None) => None,
            _ => return Err(ConfigError::TlsPair),
        };
        let redirect_http = o.redirect_http.as_deref().map(address).transpose()?;
        let d = Limits::default();
        let limits = Limits {
            max_connections: o.max_connections.unwrap_or(d.max_connections),
            max_connections_per_ip: o.max_connections_per_ip.unwrap_or(d.max_connections_per_ip),
            max_viewers: o.max_viewers.unwrap_or(d.max_viewers),
            max_sse: o.max_sse.unwrap_or(d.max_sse),
            header_timeout_s: o.header_timeout.unwrap_or(d.header_timeout_s),
            idle_timeout_s: o.idle_timeout.unwrap_or(d.idle_timeout_s),
            body_timeout_s: o.body_timeout.unwrap_or(d.body_timeout_s),
            max_body: o.max_body_kb.map_or(d.max_body, |k| k * 1024),
            max_ws_message: o.max_ws_kb.map_or(d.max_ws_message, |k| k * 1024),
            max_ws: o.max_ws.unwrap_or(d.max_ws),
        };
        for (name, v) in [
            ("max_connections", limits.max_connections),
            ("max_connections_per_ip", limits.max_connections_per_ip),
            ("max_ws", limits.max_ws),
            ("max_viewers", limits.max_viewers),
            ("max_sse", limits.max_sse),
            ("header_timeout", limits.header_timeout_s as usize),
            ("idle_timeout", limits.idle_timeout_s as usize),
            ("body_timeout", limits.body_timeout_s as usize),
            ("max_body_kb", limits.max_body),
            ("max_ws_kb", limits.max_ws_message),
        ] {
            if v == 0 {
                return Err(ConfigError::Limit(name));
            }
        }
        let defaults = UploadConfig::default();
        let uploads = UploadConfig {
            url: o.upload_url,
            token: std::env::var("LOOKOUT_UPLOAD_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .or(o.upload_token),
            ca_file: o.upload_ca_file,
            webhook_url: o.webhook_url,
            on_manual: o.upload_on_manual,
            clips: o.upload_clips,
            max_age: o.upload_max_age_days.map_or(defaults.max_age, |d| {
                std::time::Duration::from_secs(d * 86_400)
            }),
            queue_mb: o.upload_queue_mb.unwrap_or(defaults.queue_mb),
            ..defaults
        };
        let push_defaults = PushConfig::default();
        let push = PushConfig {
            ntfy_url: o.ntfy_url,
            ntfy_token: std::env::var("LOOKOUT_NTFY_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .or(o.ntfy_token),
            public_url: o.public_url,
            contact: o.push_contact.unwrap_or(push_defaults.contact.clone()),
            ..push_defaults
        };
        Ok(Config {
            cameras,
            uploads,
            push,
            mqtt,
            tls,
            redirect_http,
            require_auth: o.require_auth,
            user: o.user.unwrap_or_else(|| DEFAULT_USER.into()),
            // Read here, not as a flag: a password in argv shows in `ps`.
            // Set but empty is kept (and refused at start): it is more likely
            // a secret that failed to expand than a wish for no password.
            password: std::env::var("LOOKOUT_PASSWORD").ok(),
            password_file: o.password_file,
            allow_origins: o
                .allow_origins
                .into_iter()
                .map(|origin| origin.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            allow_hosts: o
                .allow_host
                .iter()
                .map(|h| crate::web::policy::host_name(h))
                .filter(|h| !h.is_empty())
                .collect(),
            trusted_proxies: crate::peers::TrustedProxies::parse(&o.trusted_proxy)?,
            limits,
            server,
            warnings,
            listen: address(o.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?,
            data_dir: o
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
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
            cameras: vec![CameraConfig::new(CameraConfig::DEFAULT_NAME, source_uri)?],
            tls: None,
            redirect_http: None,
            require_auth: false,
            user: DEFAULT_USER.into(),
            password: None,
            password_file: None,
            allow_origins: Vec::new(),
            allow_hosts: Vec::new(),
            trusted_proxies: Default::default(),
            limits: Limits::default(),
            server: ServerSettings::default(),
            warnings: Vec::new(),
            uploads: UploadConfig::default(),
            push: PushConfig::default(),
            mqtt: None,
        })
    }
}

/// The server-wide settings: the top-level keys (flags and environment over
/// the file), else the first camera's `[camera.settings]` or the file's
/// `[settings]`, where an older lookout had them (taken out of those tables
/// here, with a warning each), else the defaults.
fn server_settings(o: &mut Cli) -> Result<(ServerSettings, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let mut moved = |table: &str, taken: &serde_json::Map<String, serde_json::Value>| {
        for key in taken.keys() {
            warnings.push(format!(
                "config file {table}: {key} is a setting of the whole server now; \
                 move it to the top level of the file (before any table), as `{key} = ...`"
            ));
        }
    };
    let mut legacy = match o.settings.as_mut() {
        Some(table) => take_server_keys(table),
        None => serde_json::Map::new(),
    };
    moved("[settings]", &legacy);
    for (i, camera) in o.camera.iter_mut().enumerate() {
        let Some(table) = camera.settings.as_mut() else {
            continue;
        };
        let taken = take_server_keys(table);
        moved(&format!("[[camera]] {} settings", i + 1), &taken);
        // The first camera's, as when they were its settings.
        if i == 0 {
            legacy.extend(taken);
        }
    }
    let server = ServerSettings::default().patched(&legacy)?;
    let mut top = serde_json::Map::new();
    for (key, value) in [
        ("events_max", o.events_max),
        ("events_max_age_days", o.events_max_age_days),
        ("sse_keepalive_s", o.sse_keepalive_s),
    ] {
        if let Some(v) = value {
            top.insert(key.into(), v.into());
        }
    }
    let server = server.patched(&top).map_err(ConfigError::Server)?;
    Ok((server, warnings))
}

/// The MQTT link: each `--mqtt-*` flag over its key in the `[mqtt]` table;
/// none without a URL.
fn mqtt(o: &Cli) -> Result<Option<MqttConfig>, ConfigError> {
    let file = o.mqtt.clone().unwrap_or_default();
    let Some(url) = o.mqtt_url.clone().or(file.url) else {
        return Ok(None);
    };
    // Read here, not as a flag: a password in argv shows in `ps`.
    let password = std::env::var("LOOKOUT_MQTT_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .or(file.password);
    Ok(Some(MqttConfig::new(
        &url,
        password,
        o.mqtt_ca_file.clone().or(file.ca_file),
        o.mqtt_prefix.clone().or(file.prefix),
        o.mqtt_discovery_prefix.clone().or(file.discovery_prefix),
        o.mqtt_node.clone().or(file.node),
        o.mqtt_commands.or(file.commands).unwrap_or(true),
    )?))
}

/// The config file to read: the one named, else `default` when it exists.
fn config_file(named: Option<&Path>, default: &Path) -> Option<PathBuf> {
    match named {
        Some(path) => Some(path.to_path_buf()),
        None => default.is_file().then(|| default.to_path_buf()),
    }
}

/// The `--config` file, as options: keys it does not know are refused by
/// name (`deny_unknown_fields`), so a typo is not a setting silently lost.
fn read_file(path: &Path) -> Result<Cli, ConfigError> {
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
    use super::limits::{MAX_CONNECTIONS, MAX_SSE, MAX_VIEWERS};
    use super::*;
    use crate::auth::Scope;
    use crate::source::SourceSpec;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("lookout").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults() {
        let c = Config::from_cli(&cli(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("lookout-data"));
        assert_eq!(c.cameras[0].source_uri, "synthetic");
    }

    #[test]
    fn the_default_config_file_is_read_only_when_none_is_named_and_it_exists() {
        use clap::CommandFactory;
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("lookout.toml");
        let named = Path::new("/elsewhere.toml");
        assert_eq!(config_file(None, &default), None);
        std::fs::write(&default, "data_dir = \"/srv/cam\"\n").unwrap();
        assert_eq!(config_file(None, &default), Some(default.clone()));
        assert_eq!(config_file(Some(named), &default), Some(named.into()));
        assert_eq!(DEFAULT_CONFIG, "/etc/lookout/lookout.toml");
        assert!(Cli::command()
            .get_arguments()
            .any(|a| a.get_id() == "config"
                && a.get_help()
                    .is_some_and(|h| h.to_string().contains(DEFAULT_CONFIG))));
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
        assert_eq!(c.cameras[0].source_uri, "synthetic");
        assert_eq!(c.cameras[0].settings.threshold, 30);
    }

    #[test]
    fn token_scope_and_revoke_flags() {
        let scope = |args: &[&str]| match cli(args).command {
            Some(Command::Token {
                action: TokenAction::Create { scope, .. },
            }) => scope,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            scope(&["token", "create", "p", "--scope", "read"]),
            Scope::Read
        );
        assert_eq!(scope(&["token", "create", "p"]), Scope::Control);
        assert!(
            Cli::try_parse_from(["lookout", "token", "create", "p", "--scope", "all"]).is_err()
        );
        assert!(Cli::try_parse_from(["lookout", "token", "revoke"]).is_err());
        assert!(Cli::try_parse_from(["lookout", "token", "revoke", "a", "--id", "b"]).is_err());
        assert!(Cli::try_parse_from(["lookout", "token", "revoke", "--id", "3fa2"]).is_ok());
    }

    #[test]
    fn data_dir_is_accepted_after_a_subcommand() {
        let c = cli(&["token", "create", "ha", "--data-dir", "/x"]);
        assert_eq!(c.data_dir.as_deref(), Some(Path::new("/x")));
        let c = cli(&["sessions", "revoke", "--all", "--config", "/c.toml"]);
        assert_eq!(c.config.as_deref(), Some(Path::new("/c.toml")));
        assert!(Cli::try_parse_from(["lookout", "sessions", "revoke"]).is_err());
    }

    #[test]
    fn allowed_hosts_from_flags_or_file() {
        let c = Config::from_cli(&cli(&["--allow-host", "Cam.LAN:8080,nas.local"])).unwrap();
        assert_eq!(c.allow_hosts, ["cam.lan", "nas.local"]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        std::fs::write(&file, "allow_host = [\"cam.lan\"]\n").unwrap();
        let c = Config::from_cli(&cli(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(c.allow_hosts, ["cam.lan"]);
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
        let err = Config::from_cli(&cli(&["--user", "token"])).unwrap_err();
        assert!(err.to_string().contains("long-lived token"), "{err}");
    }

    #[test]
    fn mqtt_from_its_table_with_flags_winning() {
        assert_eq!(Config::from_cli(&cli(&[])).unwrap().mqtt, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        std::fs::write(
            &file,
            "[mqtt]\nurl = \"mqtt://ha@broker\"\npassword = \"pw\"\nprefix = \"cams\"\n\
             discovery_prefix = \"ha\"\nnode = \"pi\"\ncommands = false\nca_file = \"/ca.pem\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let m = Config::from_cli(&cli(&["--config", path]))
            .unwrap()
            .mqtt
            .unwrap();
        assert_eq!(
            (m.host.as_str(), m.user.as_deref(), m.password.as_deref()),
            ("broker", Some("ha"), Some("pw"))
        );
        assert_eq!(
            (m.prefix.as_str(), m.discovery_prefix.as_str()),
            ("cams", "ha")
        );
        assert_eq!((m.node.as_str(), m.commands), ("pi", false));
        assert_eq!(m.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        let m = Config::from_cli(&cli(&[
            "--config",
            path,
            "--mqtt-url",
            "mqtts://ha@other:9883",
            "--mqtt-prefix",
            "yard",
            "--mqtt-node",
            "nas",
            "--mqtt-commands",
            "on",
        ]))
        .unwrap()
        .mqtt
        .unwrap();
        assert_eq!((m.host.as_str(), m.port, m.tls), ("other", 9883, true));
        assert_eq!(
            (m.prefix.as_str(), m.node.as_str(), m.commands),
            ("yard", "nas", true)
        );
        assert_eq!(
            m.password.as_deref(),
            Some("pw"),
            "the password stays the file's"
        );
        let err = Config::from_cli(&cli(&["--mqtt-url", "mqtt://u:pw@b"])).unwrap_err();
        assert!(err.to_string().contains("LOOKOUT_MQTT_PASSWORD"), "{err}");
        std::fs::write(&file, "[mqtt]\nurl = \"mqtt://b\"\nretain = true\n").unwrap();
        let err = Config::from_cli(&cli(&["--config", path])).unwrap_err();
        assert!(err.to_string().contains("retain"), "{err}");
        // A password in a URL that does not parse, and the file's own,
        // stay out of the error and of the options' Debug.
        std::fs::write(
            &file,
            "[mqtt]\nurl = \"mqtts//u:urlsecret@b\"\npassword = \"filesecret\"\n",
        )
        .unwrap();
        let options = cli(&["--config", path]);
        let err = Config::from_cli(&options).unwrap_err();
        let shown = format!("{err} {err:?} {:?}", read_file(Path::new(path)).unwrap());
        assert!(
            !shown.contains("urlsecret") && !shown.contains("filesecret"),
            "{shown}"
        );
    }

    #[test]
    fn cameras_from_flags_file_or_source() {
        let c = Config::from_cli(&cli(&[
            "--camera",
            "yard=exec:ffmpeg -i 'rtsp://u:p@cam/s?a=1,b=2' -f mjpeg -",
            "--camera",
            "door=synthetic:?size=320x240",
        ]))
        .unwrap();
        let names: Vec<&str> = c.cameras.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["yard", "door"]);
        // Split at the first `=`: the source keeps its own.
        assert_eq!(
            c.cameras[0].source_uri,
            "exec:ffmpeg -i 'rtsp://u:p@cam/s?a=1,b=2' -f mjpeg -"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        let text = "[settings]\nthreshold = 30\n\n[[camera]]\nname = \"yard\"\n\
                    source = \"synthetic\"\n[camera.settings]\nthreshold = 5\n\n\
                    [[camera]]\nname = \"door\"\nsource = \"synthetic\"\n";
        std::fs::write(&file, text).unwrap();
        let c = Config::from_cli(&cli(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(c.cameras.len(), 2);
        assert_eq!(c.cameras[0].settings.threshold, 5);
        assert_eq!(
            c.cameras[1].settings.threshold, 30,
            "[settings] is every camera's default"
        );

        let c = Config::from_cli(&cli(&["--source", "synthetic:?fps=5"])).unwrap();
        assert_eq!(c.cameras.len(), 1);
        assert_eq!(c.cameras[0].name, "cam");
    }

    #[test]
    fn detect_sources_from_flags_and_file() {
        let c = Config::from_cli(&cli(&[
            "--source",
            "rtsp://u:p@cam/main",
            "--detect-source",
            "rtsp://u:p@cam/sub?a=1",
        ]))
        .unwrap();
        let (uri, spec) = c.cameras[0].detect_source.clone().unwrap();
        assert_eq!(uri, "rtsp://u:p@cam/sub?a=1");
        assert!(matches!(spec, SourceSpec::Rtsp { .. }));
        let c = Config::from_cli(&cli(&[
            "--camera",
            "yard=rtsp://cam/main",
            "--camera",
            "door=rtsp://door/main",
            "--detect-source",
            "door=rtsp://door/sub",
        ]))
        .unwrap();
        assert!(c.cameras[0].detect_source.is_none());
        assert_eq!(
            c.cameras[1].detect_source.as_ref().unwrap().0,
            "rtsp://door/sub"
        );
        for (args, want) in [
            (
                &[
                    "--camera",
                    "yard=rtsp://cam/main",
                    "--camera",
                    "door=synthetic",
                    "--detect-source",
                    "rtsp://cam/sub",
                ][..],
                "NAME=URI",
            ),
            (
                &[
                    "--camera",
                    "yard=rtsp://cam/main",
                    "--detect-source",
                    "gate=rtsp://cam/sub",
                ],
                "no camera named",
            ),
            (
                &["--source", "synthetic", "--detect-source", "rtsp://cam/sub"],
                "needs an rtsp:// source",
            ),
            (
                &[
                    "--source",
                    "rtsp://cam/main",
                    "--detect-source",
                    "rtsps://cam/sub",
                ],
                "rtsps://",
            ),
        ] {
            let e = Config::from_cli(&cli(args)).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lookout.toml");
        std::fs::write(
            &file,
            "[[camera]]\nname = \"yard\"\nsource = \"rtsp://cam/main\"\n\
             detect_source = \"rtsp://cam/sub\"\n",
        )
        .unwrap();
        let c = Config::from_cli(&cli(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(
            c.cameras[0].detect_source.as_ref().unwrap().0,
            "rtsp://cam/sub"
        );
    }

    #[test]
    fn bad_cameras_are_named() {
        let err = |args: &[&str]| Config::from_cli(&cli(args)).unwrap_err().to_string();
        let e = err(&["--camera", "Yard=synthetic"]);
        assert!(e.contains("\"Yard\"") && e.contains("a-z"), "{e}");
        let e = err(&["--camera", "a=synthetic", "--camera", "a=synthetic"]);
        assert!(e.contains("used twice"), "{e}");
        let e = err(&["--camera", "nosource"]);
        assert!(e.contains("NAME=SOURCE"), "{e}");
        let e = err(&["--camera", "a=ftp://x"]);
        assert!(
            e.contains("--camera 1") && e.contains("unknown kind"),
            "{e}"
        );
        let e = err(&["--camera", "a=synthetic", "--source", "synthetic"]);
        assert!(e.contains("not both"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        std::fs::write(&file, "[[camera]]\nname = \"yard\"\n").unwrap();
        let e = err(&["--config", file.to_str().unwrap()]);
        assert!(e.contains("[[camera]] 1") && e.contains("no source"), "{e}");
        let long = format!("{}=synthetic", "x".repeat(33));
        let e = err(&["--camera", &long]);
        assert!(e.contains("1 to 32"), "{e}");
    }

    #[test]
    fn masks_and_zones_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        let text = "[settings]\nmask = [[[0, 0], [0.2, 0], [0.2, 0.2]]]\n\n\
                    [[camera]]\nname = \"yard\"\nsource = \"synthetic\"\n\
                    [camera.settings]\nzones = [{ name = \"path\", points = \
                    [[0.1,0.1],[0.5,0.1],[0.5,0.5]] }]\nrequired_zones = [\"path\"]\n\n\
                    [[camera]]\nname = \"door\"\nsource = \"synthetic\"\n";
        std::fs::write(&file, text).unwrap();
        let c = Config::from_cli(&cli(&["--config", file.to_str().unwrap()])).unwrap();
        let yard = &c.cameras[0].settings;
        assert_eq!(yard.zones.len(), 1);
        assert_eq!(yard.zones[0].name, "path");
        assert_eq!(yard.zones[0].points, [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]);
        assert_eq!(yard.required_zones, ["path"]);
        assert_eq!(yard.mask, [vec![[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]]);
        let door = &c.cameras[1].settings;
        assert!(door.zones.is_empty() && door.required_zones.is_empty());
        assert_eq!(door.mask, yard.mask, "[settings] is every camera's default");

        // The same checks as /config, naming the camera.
        let text = "[[camera]]\nname = \"yard\"\nsource = \"synthetic\"\n\
                    [camera.settings]\nzones = [{ name = \"path\", points = \
                    [[0,0],[1,1],[1,0],[0,1]] }]\n";
        std::fs::write(&file, text).unwrap();
        let e = Config::from_cli(&cli(&["--config", file.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[[camera]] 1") && e.contains("zone \"path\" crosses itself"),
            "{e}"
        );
        std::fs::write(&file, "[settings]\nrequired_zones = [\"x\"]\n").unwrap();
        let e = Config::from_cli(&cli(&["--config", file.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("required zone \"x\" is not a zone"), "{e}");
    }

    /// A row of `every_option_comes_from_the_file_and_a_flag_wins`: file
    /// text, flags, what to look at, its value from the file alone, and with
    /// the flags added.
    type Row = (
        &'static str,
        &'static [&'static str],
        fn(&Config) -> String,
        &'static str,
        &'static str,
    );

    #[test]
    fn every_option_comes_from_the_file_and_a_flag_wins() {
        fn tls(c: &Config) -> String {
            match &c.tls {
                Some(TlsSource::Files { cert, key }) => {
                    format!("{} {}", cert.display(), key.display())
                }
                Some(TlsSource::SelfSigned) => "self-signed".into(),
                None => "none".into(),
            }
        }
        // One row per option, as a table: rustfmt would spread each over 7 lines.
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("listen = \"0.0.0.0:9000\"", &["--listen", "127.0.0.1:9001"], |c| c.listen.to_string(), "0.0.0.0:9000", "127.0.0.1:9001"),
            ("data_dir = \"/f\"", &["--data-dir", "/g"], |c| c.data_dir.display().to_string(), "/f", "/g"),
            ("source = \"synthetic:?fps=5\"", &["--source", "synthetic:?fps=6"], |c| c.cameras[0].source_uri.clone(), "synthetic:?fps=5", "synthetic:?fps=6"),
            ("[[camera]]\nname = \"yard\"\nsource = \"synthetic\"", &["--camera", "door=synthetic"], |c| c.cameras[0].name.clone(), "yard", "door"),
            // A flag's --source replaces the file's [[camera]] tables too.
            ("[[camera]]\nname = \"yard\"\nsource = \"synthetic\"", &["--source", "synthetic"], |c| c.cameras[0].name.clone(), "yard", "cam"),
            ("tls_cert = \"/c\"\ntls_key = \"/k\"", &["--tls-cert", "/c2", "--tls-key", "/k2"], tls, "/c /k", "/c2 /k2"),
            ("tls_self_signed = true", &[], tls, "self-signed", "self-signed"),
            ("tls_self_signed = false", &["--tls-self-signed"], tls, "none", "self-signed"),
            ("redirect_http = \"0.0.0.0:8081\"", &["--redirect-http", "0.0.0.0:8082"], |c| format!("{:?}", c.redirect_http), "Some(0.0.0.0:8081)", "Some(0.0.0.0:8082)"),
            ("require_auth = true", &[], |c| c.require_auth.to_string(), "true", "true"),
            ("require_auth = false", &["--require-auth"], |c| c.require_auth.to_string(), "false", "true"),
            ("user = \"ann\"", &["--user", "bob"], |c| c.user.clone(), "ann", "bob"),
            ("password_file = \"/p\"", &["--password-file", "/q"], |c| format!("{:?}", c.password_file), "Some(\"/p\")", "Some(\"/q\")"),
            ("allow_origins = [\"http://a.lan/\"]", &["--allow-origin", "http://b.lan"], |c| c.allow_origins.join(" "), "http://a.lan", "http://b.lan"),
            ("allow_host = [\"a.lan\"]", &["--allow-host", "b.lan"], |c| c.allow_hosts.join(" "), "a.lan", "b.lan"),
            ("max_connections = 100", &["--max-connections", "200"], |c| c.limits.max_connections.to_string(), "100", "200"),
            ("max_viewers = 3", &["--max-viewers", "4"], |c| c.limits.max_viewers.to_string(), "3", "4"),
            ("max_sse = 5", &["--max-sse", "6"], |c| c.limits.max_sse.to_string(), "5", "6"),
            ("header_timeout = 2", &["--header-timeout", "3"], |c| c.limits.header_timeout_s.to_string(), "2", "3"),
            ("idle_timeout = 4", &["--idle-timeout", "5"], |c| c.limits.idle_timeout_s.to_string(), "4", "5"),
            ("body_timeout = 6", &["--body-timeout", "7"], |c| c.limits.body_timeout_s.to_string(), "6", "7"),
            ("max_body_kb = 1", &["--max-body-kb", "2"], |c| c.limits.max_body.to_string(), "1024", "2048"),
            ("max_ws_kb = 3", &["--max-ws-kb", "4"], |c| c.limits.max_ws_message.to_string(), "3072", "4096"),
            ("upload_url = \"http://u/1\"", &["--upload-url", "http://u/2"], |c| format!("{:?}", c.uploads.url), "Some(\"http://u/1\")", "Some(\"http://u/2\")"),
            ("upload_ca_file = \"/ca1\"", &["--upload-ca-file", "/ca2"], |c| format!("{:?}", c.uploads.ca_file), "Some(\"/ca1\")", "Some(\"/ca2\")"),
            ("webhook_url = \"http://w/1\"", &["--webhook-url", "http://w/2"], |c| format!("{:?}", c.uploads.webhook_url), "Some(\"http://w/1\")", "Some(\"http://w/2\")"),
            ("upload_on_manual = true", &[], |c| c.uploads.on_manual.to_string(), "true", "true"),
            ("upload_on_manual = false", &["--upload-on-manual"], |c| c.uploads.on_manual.to_string(), "false", "true"),
            ("upload_clips = true", &[], |c| c.uploads.clips.to_string(), "true", "true"),
            ("upload_clips = false", &["--upload-clips"], |c| c.uploads.clips.to_string(), "false", "true"),
            ("upload_max_age_days = 2", &["--upload-max-age-days", "3"], |c| (c.uploads.max_age.as_secs() / 86_400).to_string(), "2", "3"),
            ("upload_queue_mb = 8", &["--upload-queue-mb", "9"], |c| c.uploads.queue_mb.to_string(), "8", "9"),
            // File only (a token in argv shows in `ps`; LOOKOUT_UPLOAD_TOKEN wins).
            ("upload_token = \"t\"", &[], |c| format!("{:?}", c.uploads.token), "Some(\"t\")", "Some(\"t\")"),
            ("[settings]\nthreshold = 31", &[], |c| c.cameras[0].settings.threshold.to_string(), "31", "31"),
            ("events_max = 500", &["--events-max", "600"], |c| c.server.events_max.to_string(), "500", "600"),
            ("events_max_age_days = 2", &["--events-max-age-days", "3"], |c| c.server.events_max_age_days.to_string(), "2", "3"),
            ("sse_keepalive_s = 4", &["--sse-keepalive-s", "5"], |c| c.server.sse_keepalive_s.to_string(), "4", "5"),
            // Where they were a camera's setting: the top level wins.
            ("[settings]\nevents_max = 700", &["--events-max", "800"], |c| c.server.events_max.to_string(), "700", "800"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        let f = file.to_str().unwrap();
        for (text, flags, get, from_file, with_flags) in rows {
            std::fs::write(&file, text).unwrap();
            let c = Config::from_cli(&cli(&["--config", f])).unwrap();
            assert_eq!(get(&c), *from_file, "from the file: {text}");
            let args: Vec<&str> = ["--config", f]
                .iter()
                .chain(flags.iter())
                .copied()
                .collect();
            let c = Config::from_cli(&cli(&args)).unwrap();
            assert_eq!(get(&c), *with_flags, "{flags:?} over {text}");
        }
    }

    #[test]
    fn server_settings_in_a_settings_table_still_work_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        let f = file.to_str().unwrap();
        let load = |text: &str, flags: &[&str]| {
            std::fs::write(&file, text).unwrap();
            let args: Vec<&str> = ["--config", f].iter().chain(flags).copied().collect();
            Config::from_cli(&cli(&args))
        };
        let c = load("[settings]\nevents_max = 700\nsse_keepalive_s = 3\n", &[]).unwrap();
        assert_eq!((c.server.events_max, c.server.sse_keepalive_s), (700, 3));
        assert_eq!(c.server.events_max_age_days, 30);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        for (w, key) in c.warnings.iter().zip(["events_max", "sse_keepalive_s"]) {
            assert!(
                w.contains("[settings]") && w.contains(key) && w.contains("top level"),
                "{w}"
            );
        }
        assert_eq!(c.cameras[0].settings, Settings::default());

        // The first camera's wins over [settings] and the other cameras'.
        let cameras = "[settings]\nevents_max = 700\n\n\
                       [[camera]]\nname = \"yard\"\nsource = \"synthetic\"\n\
                       [camera.settings]\nevents_max = 800\n\n\
                       [[camera]]\nname = \"door\"\nsource = \"synthetic\"\n\
                       [camera.settings]\nevents_max = 900\nthreshold = 4\n";
        let c = load(cameras, &[]).unwrap();
        assert_eq!(c.server.events_max, 800);
        assert_eq!(c.cameras[1].settings.threshold, 4);
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(
            c.warnings[1].contains("[[camera]] 1 settings"),
            "{:?}",
            c.warnings
        );
        // ... unless the top level sets it.
        let c = load(&format!("events_max = 1000\n{cameras}"), &[]).unwrap();
        assert_eq!(c.server.events_max, 1000);
        // Without one of them, no warning.
        assert!(load("events_max = 1000\n", &[])
            .unwrap()
            .warnings
            .is_empty());
        // The same ranges as before, wherever they are given.
        for (text, flags) in [
            ("[settings]\nevents_max = 5\n", &[][..]),
            ("events_max = 5\n", &[]),
            ("", &["--events-max", "5"]),
        ] {
            let e = load(text, flags).unwrap_err().to_string();
            assert!(e.contains("events_max out of range"), "{e}");
        }
        let e = load("", &["--sse-keepalive-s", "301"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sse_keepalive_s out of range"), "{e}");
    }

    #[test]
    fn unknown_file_keys_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        let f = file.to_str().unwrap();
        for (text, key) in [
            ("listen = \"0.0.0.0:9000\"\nmax_viewer = 3\n", "max_viewer"),
            // Flag-only options are not file keys.
            ("cameras = [\"a=synthetic\"]\n", "cameras"),
            ("config = \"/other.toml\"\n", "config"),
            ("[[camera]]\nname = \"a\"\nsorce = \"synthetic\"\n", "sorce"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = Config::from_cli(&cli(&["--config", f])).unwrap_err();
            let e = err.to_string();
            assert!(matches!(err, ConfigError::Parse { .. }), "{e}");
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
        }
    }

    #[test]
    fn help_states_the_defaults() {
        use clap::CommandFactory;
        let expected = [
            ("listen", format!("[default: {DEFAULT_LISTEN}]")),
            ("data_dir", format!("[default: ./{DEFAULT_DATA_DIR}]")),
            ("source", format!("[default: {DEFAULT_SOURCE}]")),
            ("user", format!("[default: {DEFAULT_USER}]")),
            ("max_connections", format!("[default: {MAX_CONNECTIONS},")),
            ("max_viewers", format!("[default: {MAX_VIEWERS},")),
            ("max_sse", format!("[default: {MAX_SSE},")),
            (
                "events_max",
                format!("[default: {}]", ServerSettings::default().events_max),
            ),
            (
                "events_max_age_days",
                format!(
                    "[default: {}]",
                    ServerSettings::default().events_max_age_days
                ),
            ),
            (
                "sse_keepalive_s",
                format!("[default: {}]", ServerSettings::default().sse_keepalive_s),
            ),
            ("header_timeout", format!("[default: {DEFAULT_TIMEOUT_S}]")),
            ("idle_timeout", format!("[default: {DEFAULT_TIMEOUT_S}]")),
            ("body_timeout", format!("[default: {DEFAULT_TIMEOUT_S}]")),
            (
                "max_body_kb",
                format!("[default: {}]", crate::web::api::MAX_BODY / 1024),
            ),
            (
                "max_ws_kb",
                format!("[default: {}]", crate::web::ws::MAX_MESSAGE / 1024),
            ),
            (
                "upload_max_age_days",
                format!(
                    "[default: {}]",
                    UploadConfig::default().max_age.as_secs() / 86_400
                ),
            ),
            (
                "upload_queue_mb",
                format!("[default: {}]", UploadConfig::default().queue_mb),
            ),
        ];
        let command = Cli::command();
        for (id, default) in expected {
            let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
            let help = arg.get_help().unwrap().to_string();
            assert!(
                help.contains(&default),
                "--{id}: {help:?} lacks {default:?}"
            );
        }
    }
}
