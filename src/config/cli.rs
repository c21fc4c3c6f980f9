//! The options as declared once: the command line (clap, with each flag's
//! environment variable) and, through serde, the TOML file's keys; and how
//! the flags are laid over the file.

use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

use crate::auth::Scope;

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

    /// A second, smaller stream of an `rtsp://` camera to detect motion on
    /// (its substream), as `NAME=URI`, or just `URI` when there is one
    /// camera; repeatable. The camera's `--source`/`--camera` stream is then
    /// read without decoding (for recording and the live view), and only this
    /// one is decoded: `--camera yard=rtsp://u:p@cam/main --detect-source
    /// yard=rtsp://u:p@cam/sub`. LOOKOUT_DETECT_SOURCES takes one per line;
    /// the file's `[[camera]]` tables take `detect_source`.
    #[arg(
        long = "detect-source",
        env = "LOOKOUT_DETECT_SOURCES",
        value_name = "[NAME=]URI",
        value_delimiter = '\n'
    )]
    #[serde(skip)]
    pub detect_sources: Vec<String>,

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

    /// Send one notification per incident, with the picture, to this ntfy
    /// topic, e.g. `--ntfy-url https://ntfy.sh/my-yard-4f9a` (a self-hosted
    /// server works the same); its token comes from LOOKOUT_NTFY_TOKEN or
    /// `ntfy_token` in the config file.
    #[arg(long, env = "LOOKOUT_NTFY_URL", value_name = "URL")]
    pub ntfy_url: Option<String>,

    /// Access token for `ntfy_url`, in the file only (or LOOKOUT_NTFY_TOKEN,
    /// which wins): a token in argv shows in `ps`.
    #[arg(skip)]
    pub ntfy_token: Option<String>,

    /// The address the dashboard is reached at from a phone, for the links
    /// in notifications, e.g. `--public-url https://cam.example.org`.
    #[arg(long, env = "LOOKOUT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Who push services may contact about this server (VAPID's subject),
    /// e.g. `--push-contact mailto:me@example.org` [default:
    /// mailto:lookout@localhost].
    #[arg(long, env = "LOOKOUT_PUSH_CONTACT", value_name = "URL")]
    pub push_contact: Option<String>,

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
    pub(super) fn over(mut self, mut file: Cli) -> Cli {
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
                    config: _, cameras: _, detect_sources: _, command: _, mqtt_url: _, mqtt_ca_file: _,
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
            upload_queue_mb, ntfy_url, ntfy_token, public_url, push_contact, mqtt, settings,
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
    /// The stream to detect motion on, as `--detect-source`.
    pub detect_source: Option<String>,
    /// Its initial runtime settings, over the file's `[settings]`.
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}
