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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::auth::Scope;
use crate::descriptors::FdBudget;
use crate::mqtt::{MqttConfig, MqttConfigError};
pub use crate::names::is_plain_name;
use crate::serverwide::{take_server_keys, ServerSettings};
use crate::settings::{Settings, SettingsError};
use crate::source::{SourceSpec, SpecError};
use crate::uploads::UploadConfig;
use crate::web::tls::TlsSource;

// Defaults: the one place for what neither a flag nor the file sets (with
// `MAX_CONNECTIONS` and its neighbours, the body and message caps of
// `web::api` and `web::ws`, and `UploadConfig::default`). Each flag's help
// says its default for people; the test `help_states_the_defaults` keeps the
// two in step.

/// Default listen address: loopback only, so a fresh start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The config file read when neither --config nor LOOKOUT_CONFIG names one
/// and it exists: the one the package installs, which gives the service and
/// `sudo -u lookout lookout passwd` the same data directory.
pub const DEFAULT_CONFIG: &str = "/etc/lookout/lookout.toml";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "lookout-data";
/// Default source.
pub const DEFAULT_SOURCE: &str = "synthetic";
/// Default login user name.
pub const DEFAULT_USER: &str = "owner";
/// Default seconds for each connection deadline (headers, idle, body): long
/// enough for a phone on a poor link, short enough that idle sockets do not
/// pile up.
pub const DEFAULT_TIMEOUT_S: u64 = 10;

/// lookout: a small, fast, self-hosted smart camera server.
///
/// Watch at /stream.jpg and /snapshot.jpg, change settings at /config, see the
/// state at /status. Every flag can also be set with the environment variable
/// shown, or in a TOML file given with --config (flags win over the file).
//
// (Not a doc comment: clap shows those in --help.) The same struct is the
// `--config` file: a field's name is its TOML key. Flag-only fields are
// `#[serde(skip)]`, file-only ones `#[arg(skip)]`; see the module docs.
#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(name = "lookout", version, about, long_about)]
#[serde(deny_unknown_fields, default)]
pub struct Cli {
    /// TOML file with any of the settings below (keys as the flags, with
    /// underscores; `allow_origins` for --allow-origin, `[[camera]]` tables
    /// with `name`, `source` and `[camera.settings]` for --camera), plus
    /// `upload_token` and a `[settings]` table as in /config, e.g.
    /// `--config /etc/lookout.toml` holding `listen = "0.0.0.0:8080"` and
    /// `source = "v4l2:/dev/video0"`. (Global: also accepted after a
    /// subcommand, as in `lookout token create NAME --config FILE`.)
    /// [default: /etc/lookout/lookout.toml when it exists]
    #[arg(long, env = "LOOKOUT_CONFIG", value_name = "FILE", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address and port to listen on, e.g. `--listen 0.0.0.0:8080` for the whole
    /// network [default: 127.0.0.1:8080].
    #[arg(long, env = "LOOKOUT_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Folder for snapshots and state, created when missing, e.g.
    /// `--data-dir /var/lib/lookout` [default: ./lookout-data].
    #[arg(long, env = "LOOKOUT_DATA_DIR", value_name = "DIR", global = true)]
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

    /// A camera as `NAME=SOURCE`, repeatable, for several cameras in one
    /// server: `--camera yard=v4l2:/dev/video0 --camera door=http://door/stream`.
    /// Names are 1-32 of a-z, 0-9, `_` and `-`; the first camera also answers
    /// at the root routes. LOOKOUT_CAMERAS takes one `NAME=SOURCE` per line.
    /// Without it, `--source` is one camera named `cam`.
    #[arg(
        long = "camera",
        env = "LOOKOUT_CAMERAS",
        value_name = "NAME=SOURCE",
        value_delimiter = '\n'
    )]
    #[serde(skip)]
    pub cameras: Vec<String>,

    /// `[[camera]]` tables in the file: several cameras, as --camera.
    #[arg(skip)]
    pub camera: Vec<FileCamera>,

    /// Serve HTTPS with this PEM certificate (chain), e.g. `--tls-cert /etc/lookout/cert.pem`
    /// (needs --tls-key).
    #[arg(
        long,
        env = "LOOKOUT_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key for --tls-cert, e.g. `--tls-key /etc/lookout/key.pem`.
    #[arg(
        long,
        env = "LOOKOUT_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate generated once into
    /// DATA-DIR/tls/ (its SHA-256 fingerprint is logged), e.g. `--tls-self-signed`.
    #[arg(long, env = "LOOKOUT_TLS_SELF_SIGNED", conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,

    /// Also listen on ADDR with plain HTTP that redirects to HTTPS, e.g.
    /// `--redirect-http 0.0.0.0:80`.
    #[arg(long, env = "LOOKOUT_REDIRECT_HTTP", value_name = "ADDR")]
    pub redirect_http: Option<String>,

    /// Require credentials even on loopback (they are always required on any
    /// other address), e.g. behind a reverse proxy on the same machine.
    #[arg(long, env = "LOOKOUT_REQUIRE_AUTH")]
    pub require_auth: bool,

    /// User name for logins [default: owner].
    #[arg(long, env = "LOOKOUT_USER", value_name = "NAME")]
    pub user: Option<String>,

    /// File holding the password, e.g. `--password-file /run/secrets/lookout`
    /// (or set LOOKOUT_PASSWORD, or store one with `lookout passwd`).
    #[arg(long, env = "LOOKOUT_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Another site allowed to call the API with credentials and open the
    /// WebSocket (CORS and origin checks), e.g. `--allow-origin http://homeassistant.local:8123`;
    /// repeat for more.
    #[arg(
        long = "allow-origin",
        env = "LOOKOUT_ALLOW_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,

    /// Another host name to answer to on loopback without sign-in (besides
    /// localhost, 127.0.0.1 and [::1]; any port), e.g. `--allow-host cam.lan`
    /// behind a local reverse proxy; repeat for more. Other names get 421, so
    /// a web page cannot reach the cam by rebinding its DNS name to 127.0.0.1.
    #[arg(
        long = "allow-host",
        env = "LOOKOUT_ALLOW_HOST",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allow_host: Vec<String>,

    /// Most open connections, both listeners together [default: 4096, or
    /// fewer when the open-file limit (ulimit -n) is lower: the limit less
    /// an eighth (at least 64) kept for the store, snapshots, sources and
    /// uploads].
    #[arg(long, env = "LOOKOUT_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most open connections from one client address (an IPv4 address or an
    /// IPv6 /64); more are closed at once. A --trusted-proxy's own connections
    /// are exempt; behind it, each forwarded client may have this many
    /// requests and streams under way [default: an eighth of the
    /// connections, at least 64].
    #[arg(long, env = "LOOKOUT_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// A reverse proxy whose forwarded client address (`Forwarded: for=` or
    /// `X-Forwarded-For`) is believed, as an address or a CIDR block, e.g.
    /// `--trusted-proxy 127.0.0.1`; repeat for more. The sign-in throttle,
    /// the logs and the per-client caps then count the client, not the
    /// proxy. From other addresses those headers are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "LOOKOUT_TRUSTED_PROXY",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<String>,

    /// Most /stream.jpg viewers at once; more get 503 [default: 256, or half
    /// the connections when those are fewer than 512].
    #[arg(long, env = "LOOKOUT_MAX_VIEWERS", value_name = "N")]
    pub max_viewers: Option<usize>,

    /// Most /events subscribers at once; more get 503 [default: 2048, or half
    /// the connections when those are fewer than 4096].
    #[arg(long, env = "LOOKOUT_MAX_SSE", value_name = "N")]
    pub max_sse: Option<usize>,

    /// Most events kept in the history, over every camera; the oldest go
    /// first [default: 10000]. From 100 to 10000000; shown and changed at
    /// run time at /config, where a change wins.
    #[arg(long, env = "LOOKOUT_EVENTS_MAX", value_name = "N")]
    pub events_max: Option<u32>,

    /// Days an event is kept in the history [default: 30]. From 1 to 3650;
    /// shown and changed at run time at /config, where a change wins.
    #[arg(long, env = "LOOKOUT_EVENTS_MAX_AGE_DAYS", value_name = "DAYS")]
    pub events_max_age_days: Option<u32>,

    /// Seconds between keepalive comments on a quiet /events stream, which
    /// proxies would otherwise close [default: 15]. From 1 to 300; shown and
    /// changed at run time at /config, where a change wins.
    #[arg(long, env = "LOOKOUT_SSE_KEEPALIVE_S", value_name = "SECONDS")]
    pub sse_keepalive_s: Option<u32>,

    /// Seconds a client may take to send its request headers; a new
    /// connection gets this long from connect (TLS handshake included) to the
    /// end of its first request's headers [default: 10].
    #[arg(long, env = "LOOKOUT_HEADER_TIMEOUT", value_name = "SECONDS")]
    pub header_timeout: Option<u64>,

    /// Seconds a connection may stay open with no request in progress after
    /// its last response (keep-alive) [default: 10].
    #[arg(long, env = "LOOKOUT_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,

    /// Seconds a client may take to send a request body, once the server
    /// reads it; slower gets 408 and the connection closed [default: 10].
    #[arg(long, env = "LOOKOUT_BODY_TIMEOUT", value_name = "SECONDS")]
    pub body_timeout: Option<u64>,

    /// Largest request body in KiB [default: 64].
    #[arg(long, env = "LOOKOUT_MAX_BODY_KB", value_name = "KIB")]
    pub max_body_kb: Option<usize>,

    /// Largest WebSocket message in KiB [default: 64].
    #[arg(long, env = "LOOKOUT_MAX_WS_KB", value_name = "KIB")]
    pub max_ws_kb: Option<usize>,

    /// Most /control WebSockets at once; more get 503 [default: 256, or half
    /// the connections when those are fewer than 512].
    #[arg(long, env = "LOOKOUT_MAX_WS", value_name = "N")]
    pub max_ws: Option<usize>,

    /// Upload every motion frame to this URL (multipart field `image`), e.g.
    /// `--upload-url https://archive.example/frames`; the bearer token comes from
    /// LOOKOUT_UPLOAD_TOKEN or `upload_token` in the config file.
    #[arg(long, env = "LOOKOUT_UPLOAD_URL", value_name = "URL")]
    pub upload_url: Option<String>,

    /// Bearer token for `upload_url`, in the file only (or
    /// LOOKOUT_UPLOAD_TOKEN, which wins): a token in argv shows in `ps`.
    #[arg(skip)]
    pub upload_token: Option<String>,

    /// Trust only the CA(s) in this PEM file for uploads and the webhook, e.g.
    /// `--upload-ca-file /etc/lookout/my-ca.pem`.
    #[arg(long, env = "LOOKOUT_UPLOAD_CA_FILE", value_name = "FILE")]
    pub upload_ca_file: Option<PathBuf>,

    /// Also POST each event's JSON to this URL, e.g.
    /// `--webhook-url http://homeassistant.local:8123/api/webhook/yard`.
    #[arg(long, env = "LOOKOUT_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,

    /// Upload manual snapshots too.
    #[arg(long, env = "LOOKOUT_UPLOAD_ON_MANUAL")]
    pub upload_on_manual: bool,

    /// Also upload each motion clip once it is saved: the clip in multipart
    /// field `clip` beside `image` (its thumbnail frame) and `event` (the
    /// `clip` event), with the same durability and retries as frames.
    #[arg(long, env = "LOOKOUT_UPLOAD_CLIPS")]
    pub upload_clips: bool,

    /// Give up an upload after this many days of failing [default: 7].
    #[arg(long, env = "LOOKOUT_UPLOAD_MAX_AGE_DAYS", value_name = "DAYS")]
    pub upload_max_age_days: Option<u64>,

    /// Most MiB waiting in the upload queue; the oldest go first [default: 256].
    #[arg(long, env = "LOOKOUT_UPLOAD_QUEUE_MB", value_name = "MIB")]
    pub upload_queue_mb: Option<u64>,

    /// Publish to an MQTT broker and take commands from it (Home Assistant
    /// discovers every camera), e.g. `--mqtt-url mqtt://lookout@homeassistant.local`
    /// or `mqtts://lookout@broker.lan:8883`. The password comes from
    /// LOOKOUT_MQTT_PASSWORD or `password` in the file's `[mqtt]` table, never
    /// from the URL. In the file: `url` in `[mqtt]`.
    #[arg(long, env = "LOOKOUT_MQTT_URL", value_name = "URL")]
    #[serde(skip)]
    pub mqtt_url: Option<String>,

    /// Trust only the CA(s) in this PEM file for `mqtts://`, e.g.
    /// `--mqtt-ca-file /etc/lookout/broker-ca.pem` [default: the public roots].
    #[arg(long, env = "LOOKOUT_MQTT_CA_FILE", value_name = "FILE")]
    #[serde(skip)]
    pub mqtt_ca_file: Option<PathBuf>,

    /// First level of every MQTT topic, e.g. `--mqtt-prefix home/cams`
    /// [default: lookout].
    #[arg(long, env = "LOOKOUT_MQTT_PREFIX", value_name = "PREFIX")]
    #[serde(skip)]
    pub mqtt_prefix: Option<String>,

    /// Home Assistant's discovery prefix [default: homeassistant].
    #[arg(long, env = "LOOKOUT_MQTT_DISCOVERY_PREFIX", value_name = "PREFIX")]
    #[serde(skip)]
    pub mqtt_discovery_prefix: Option<String>,

    /// This server's name in discovery ids (`lookout_NODE_CAMERA`), e.g.
    /// `--mqtt-node garage-pi` [default: the host name].
    #[arg(long, env = "LOOKOUT_MQTT_NODE", value_name = "NODE")]
    #[serde(skip)]
    pub mqtt_node: Option<String>,

    /// Take commands over MQTT (`on`) or not (`off`); they are trusted as far
    /// as the broker's ACLs [default: on].
    #[arg(
        long,
        env = "LOOKOUT_MQTT_COMMANDS",
        value_name = "on|off",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip)]
    pub mqtt_commands: Option<bool>,

    /// The `[mqtt]` table of the file: `url`, `password`, `ca_file`,
    /// `prefix`, `discovery_prefix`, `node`, `commands`.
    #[arg(skip)]
    pub mqtt: Option<FileMqtt>,

    /// Initial runtime settings (`threshold`, `cooldown_s`, ...), as in
    /// `/config`, in the file only. Values changed at run time and saved in
    /// the store win.
    #[arg(skip)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,

    /// A maintenance task instead of serving.
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,
}

/// Maintenance subcommands (they use --data-dir, given before or after them).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print the config file the service ships, generated from these flags
    /// (see `conffile`).
    #[command(hide = true)]
    ServiceConfig,
    /// Set the owner's password (read from standard input). Ends every
    /// browser session and one-hour API token; long-lived tokens stay.
    Passwd,
    /// Browser sessions and one-hour API tokens: list them, or end them
    /// (e.g. after losing a phone).
    Sessions {
        /// What to do.
        #[command(subcommand)]
        action: SessionAction,
    },
    /// Long-lived API tokens for Home Assistant and scripts.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Check this configuration without serving, one line per check: the
    /// config file, data directory, listen address, TLS files, each
    /// camera's first frame, the MQTT broker, the person model. Give the
    /// server's options before it, e.g. `lookout --listen 0.0.0.0:8080
    /// doctor`; exits 1 when a check fails.
    Doctor,
}

/// `lookout token ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenAction {
    /// Create a token and print it once, e.g. `lookout token create
    /// prometheus --scope read`.
    Create {
        /// A name to recognise (and revoke) it by: 1-32 of a-z, 0-9, _ and -.
        name: String,
        /// What it may do: `read` (GET and HEAD, the `status` and `ping`
        /// commands) or `control` (everything).
        #[arg(long, value_enum, default_value_t = Scope::Control)]
        scope: Scope,
    },
    /// List tokens: name, scope, id, creation time (Unix seconds).
    List,
    /// Revoke a token by name, or by the id `lookout token list` shows.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["name", "id"])))]
    Revoke {
        /// The token's name.
        name: Option<String>,
        /// The token's id (or its first characters), for a name that
        /// several tokens share.
        #[arg(long)]
        id: Option<String>,
    },
}

/// `lookout sessions ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SessionAction {
    /// List sessions and one-hour API tokens by id, newest first.
    List,
    /// End one session by (the start of) its id, e.g. `lookout sessions revoke
    /// 3fa2c1`, or all of them with `--all` (everyone signs in again).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Revoke {
        /// The id `lookout sessions list` shows, or its first characters.
        id: Option<String>,
        /// End every session and one-hour API token.
        #[arg(long)]
        all: bool,
    },
}

/// One option's value in one layer (flags and environment, or the file),
/// which may be "not given".
trait Layer {
    /// This layer's value if given here, else `lower`'s.
    fn or(self, lower: Self) -> Self;
}

impl<T> Layer for Option<T> {
    fn or(self, lower: Self) -> Self {
        Option::or(self, lower)
    }
}

/// A list given at all replaces the lower one (`--allow-host a` is not added
/// to the file's list).
impl<T> Layer for Vec<T> {
    fn or(self, lower: Self) -> Self {
        if self.is_empty() {
            lower
        } else {
            self
        }
    }
}

/// A switch can only be turned on, by its flag or by `key = true`.
impl Layer for bool {
    fn or(self, lower: Self) -> Self {
        self || lower
    }
}

impl Cli {
    /// These options (flags and environment) laid over `file`'s: each option
    /// given here wins, the file fills in the rest.
    ///
    /// One generic step over every field ([`Layer::or`]). The macro names
    /// each field once, and its pattern has no `..`: a field added to [`Cli`]
    /// but not here is a compile error, not an option silently ignored in the
    /// file. (A serde round trip, overlaying non-null flag values on the
    /// file's `toml::Value`, would need no list, but it drops the
    /// `#[serde(skip)]` flag-only fields, refuses non-UTF-8 paths, and checks
    /// nothing at compile time.)
    fn over(mut self, mut file: Cli) -> Cli {
        // The cameras are one choice, not one per key: cameras named by the
        // flags (--camera or --source) replace the file's `source` and
        // `[[camera]]` tables alike.
        if self.source.is_some() || self.cameras.iter().any(|c| !c.trim().is_empty()) {
            file.source = None;
            file.camera.clear();
        }
        macro_rules! lay_over_file {
            ($($field:ident),* $(,)?) => {{
                // Flag-only: serde skips them, so the file never sets them.
                let Cli {
                    config: _, cameras: _, command: _, mqtt_url: _, mqtt_ca_file: _,
                    mqtt_prefix: _, mqtt_discovery_prefix: _, mqtt_node: _,
                    mqtt_commands: _, $($field),*
                } = file;
                $(self.$field = Layer::or(self.$field, $field);)*
            }};
        }
        lay_over_file! {
            listen, data_dir, source, camera, tls_cert, tls_key, tls_self_signed,
            redirect_http, require_auth, user, password_file, allow_origins, allow_host,
            max_connections, max_connections_per_ip, trusted_proxy, max_viewers, max_sse,
            events_max, events_max_age_days, sse_keepalive_s,
            header_timeout, idle_timeout, body_timeout, max_body_kb, max_ws_kb, max_ws,
            upload_url, upload_token,
            upload_ca_file, webhook_url, upload_on_manual, upload_clips, upload_max_age_days,
            upload_queue_mb, mqtt, settings,
        }
        self
    }
}

/// The `[mqtt]` table of the config file (each key as its `--mqtt-*` flag,
/// which wins, plus the password, which has no flag). Its `Debug` hides the
/// password, and one typed into the URL.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMqtt {
    /// As `--mqtt-url`.
    pub url: Option<String>,
    /// The broker password (LOOKOUT_MQTT_PASSWORD wins).
    pub password: Option<String>,
    /// As `--mqtt-ca-file`.
    pub ca_file: Option<PathBuf>,
    /// As `--mqtt-prefix`.
    pub prefix: Option<String>,
    /// As `--mqtt-discovery-prefix`.
    pub discovery_prefix: Option<String>,
    /// As `--mqtt-node`.
    pub node: Option<String>,
    /// As `--mqtt-commands`.
    pub commands: Option<bool>,
}

impl std::fmt::Debug for FileMqtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileMqtt")
            .field("url", &self.url.as_deref().map(crate::redact::redact_url))
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("ca_file", &self.ca_file)
            .field("prefix", &self.prefix)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("node", &self.node)
            .field("commands", &self.commands)
            .finish()
    }
}

/// One `[[camera]]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCamera {
    /// The camera's name (a-z, 0-9, `_`, `-`; 1-32).
    pub name: Option<String>,
    /// Its source URI, as `--source`.
    pub source: Option<String>,
    /// Its initial runtime settings, over the file's `[settings]`.
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One camera to run.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    /// Its name, in URLs (`/cams/NAME/`) and events.
    pub name: String,
    /// The source as given (for `/status`, redacted there).
    pub source_uri: String,
    /// The parsed source.
    pub source: SourceSpec,
    /// Runtime settings to start from (before the saved ones are applied).
    pub settings: Settings,
}

impl CameraConfig {
    /// The settings the camera starts from. The synthetic scene burns a
    /// clock into its picture, as many cameras do: it starts masked, as a
    /// user masks their camera's, unless the settings give a mask of their own.
    pub fn initial_settings(&self) -> Settings {
        let mut settings = self.settings.clone();
        if let SourceSpec::Synthetic { size, .. } = self.source {
            if settings.mask.is_empty() {
                settings.mask = vec![crate::source::scene::clock_mask(size.0, size.1)];
            }
        }
        settings
    }

    /// The camera that `--source` alone means.
    pub const DEFAULT_NAME: &'static str = "cam";

    /// A camera with default settings.
    pub fn new(name: &str, source_uri: &str) -> Result<CameraConfig, ConfigError> {
        Ok(CameraConfig {
            name: check_camera_name(name)?,
            source: source_uri.parse()?,
            source_uri: source_uri.to_string(),
            settings: Settings::default(),
        })
    }
}

/// A camera name: see [`is_plain_name`].
fn check_camera_name(name: &str) -> Result<String, ConfigError> {
    if is_plain_name(name) {
        Ok(name.to_string())
    } else {
        Err(ConfigError::Camera(format!(
            "camera name {name:?} must be 1 to 32 of a-z, 0-9, _ and -"
        )))
    }
}

/// The cameras from `--camera` (or LOOKOUT_CAMERAS), else the file's
/// `[[camera]]` tables, else `--source` (or the file's `source`, or the
/// default) as one camera named `cam`, from options already laid over the
/// file (`Cli::over` keeps the file's cameras only when the flags name
/// none). `defaults` are the file's `[settings]`, which every camera starts
/// from.
fn cameras(options: &Cli, defaults: &Settings) -> Result<Vec<CameraConfig>, ConfigError> {
    let flags: Vec<&str> = options
        .cameras
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .collect();
    if !flags.is_empty() && options.source.is_some() {
        return Err(ConfigError::Camera(
            "give --source (one camera) or --camera NAME=SOURCE (several), not both".into(),
        ));
    }
    let mut list = Vec::new();
    if !flags.is_empty() {
        for (i, entry) in flags.iter().enumerate() {
            let Some((name, source)) = entry.split_once('=') else {
                return Err(ConfigError::Camera(format!(
                    "--camera {} ({entry:?}): expected NAME=SOURCE, e.g. yard=synthetic",
                    i + 1
                )));
            };
            let mut cam = CameraConfig::new(name.trim(), source.trim()).map_err(|e| {
                ConfigError::Camera(format!("--camera {} ({:?}): {e}", i + 1, name.trim()))
            })?;
            cam.settings = defaults.clone();
            list.push(cam);
        }
    } else {
        for (i, table) in options.camera.iter().enumerate() {
            let which = format!(
                "[[camera]] {} ({:?})",
                i + 1,
                table.name.as_deref().unwrap_or("no name")
            );
            let name = table
                .name
                .as_deref()
                .ok_or_else(|| ConfigError::Camera(format!("{which}: no name")))?;
            let source = table
                .source
                .as_deref()
                .ok_or_else(|| ConfigError::Camera(format!("{which}: no source")))?;
            let mut cam = CameraConfig::new(name, source)
                .map_err(|e| ConfigError::Camera(format!("{which}: {e}")))?;
            cam.settings = match &table.settings {
                Some(patch) => defaults
                    .patched_keys(patch)
                    .map_err(|e| ConfigError::Camera(format!("{which} settings: {e}")))?,
                None => defaults.clone(),
            };
            list.push(cam);
        }
    }
    if list.is_empty() {
        let source = options.source.as_deref().unwrap_or(DEFAULT_SOURCE);
        let mut cam = CameraConfig::new(CameraConfig::DEFAULT_NAME, source)?;
        cam.settings = defaults.clone();
        list.push(cam);
    }
    for (i, cam) in list.iter().enumerate() {
        if list[..i].iter().any(|other| other.name == cam.name) {
            return Err(ConfigError::Camera(format!(
                "camera name {:?} is used twice; names must be unique",
                cam.name
            )));
        }
    }
    Ok(list)
}

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
    /// The MQTT broker, when set.
    pub mqtt: Option<MqttConfig>,
}

/// Limits on what clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections.
    pub max_connections: usize,
    /// Open connections per client address (and requests under way per
    /// client behind a trusted proxy).
    pub max_connections_per_ip: usize,
    /// Stream viewers.
    pub max_viewers: usize,
    /// SSE subscribers.
    pub max_sse: usize,
    /// Seconds to send request headers (and, on a new connection, from
    /// connect to the end of the first request's headers).
    pub header_timeout_s: u64,
    /// Seconds a connection may idle between requests.
    pub idle_timeout_s: u64,
    /// Seconds to send a request body.
    pub body_timeout_s: u64,
    /// Request body bytes.
    pub max_body: usize,
    /// WebSocket message bytes.
    pub max_ws_message: usize,
    /// Open `/control` WebSockets.
    pub max_ws: usize,
}

/// Most connections when the open-file limit allows more.
const MAX_CONNECTIONS: usize = 4096;
/// Most viewers: each costs a socket and a share of the uplink.
const MAX_VIEWERS: usize = 256;
/// Most event subscribers.
const MAX_SSE: usize = 2048;
/// Most command WebSockets: a dashboard tab holds one.
const MAX_WS: usize = 256;
/// The fewest connections one address may hold: a household behind one
/// address, with a few dashboards over HTTP/1.1 (six connections each),
/// Home Assistant and a few streams.
const MIN_PER_IP: usize = 64;

impl Default for Limits {
    /// The limits for this process's open-file limit (see
    /// [`Limits::for_budget`]).
    fn default() -> Self {
        Limits::for_budget(&FdBudget::probe())
    }
}

impl Limits {
    /// Limits that fit `budget`: connections up to what it leaves for
    /// sockets, and viewers and event subscribers at most half of those each,
    /// so that neither kind of long-lived stream can take every connection
    /// from the dashboard, the API and `/healthz`.
    pub fn for_budget(budget: &FdBudget) -> Limits {
        let max_connections = budget.connections.min(MAX_CONNECTIONS);
        let half = (max_connections / 2).max(1);
        Limits {
            max_connections,
            // An eighth: one address cannot take more, so it takes eight to
            // fill the server, and silent ones are closed first then.
            max_connections_per_ip: (max_connections / 8).max(MIN_PER_IP).min(max_connections),
            max_viewers: MAX_VIEWERS.min(half),
            max_sse: MAX_SSE.min(half),
            header_timeout_s: DEFAULT_TIMEOUT_S,
            idle_timeout_s: DEFAULT_TIMEOUT_S,
            body_timeout_s: DEFAULT_TIMEOUT_S,
            max_body: crate::web::api::MAX_BODY,
            max_ws_message: crate::web::ws::MAX_MESSAGE,
            max_ws: MAX_WS.min(half),
        }
    }

    /// The connection deadlines these limits ask for.
    pub fn deadlines(&self) -> crate::web::conn::Deadlines {
        use std::time::Duration;
        crate::web::conn::Deadlines {
            header: Duration::from_secs(self.header_timeout_s),
            idle: Duration::from_secs(self.idle_timeout_s),
            body: Duration::from_secs(self.body_timeout_s),
        }
    }
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
        Ok(Config {
            cameras,
            uploads,
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
    use super::*;

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
