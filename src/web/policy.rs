//! The access rules and limits every request is held to, as configured at
//! start: who may sign in, which hosts and origins are answered, and the
//! caps on viewers, subscribers, bodies and sockets.

use crate::auth::Auth;

/// Names a loopback server without sign-in always answers to.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Web-facing access settings.
pub struct Policy {
    /// Credentials and sessions.
    pub auth: Auth,
    /// Served over TLS (cookies get `Secure`).
    pub tls: bool,
    /// Other origins allowed to make state-changing requests and open the
    /// WebSocket (e.g. a Home Assistant dashboard), as `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
    /// Host names (lowercase, without port) answered without credentials
    /// besides the loopback names; see [`host_guard`].
    pub allowed_hosts: Vec<String>,
    /// Largest request body in bytes (settings, commands, logins).
    pub max_body: usize,
    /// Largest WebSocket message in bytes; bigger closes with 1009.
    pub max_ws_message: usize,
    /// Most `/control` WebSockets at once.
    pub max_ws: usize,
    /// Reverse proxies whose forwarded client address is believed.
    pub trusted_proxies: crate::peers::TrustedProxies,
    /// Most requests under way per client behind a trusted proxy.
    pub max_per_client: usize,
    /// What each of those clients has under way.
    pub forwarded: crate::peers::Places,
}

impl Policy {
    /// Whether `host` (`name[:port]`) may be answered without credentials.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        LOOPBACK_HOSTS.contains(&name.as_str()) || self.allowed_hosts.contains(&name)
    }
}

/// `host[:port]` without the port, lowercase, without a trailing dot; IPv6
/// stays in brackets (`[::1]`).
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, _)) => format!("[{ip}]"),
            None => host.to_string(),
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
            _ => host.to_string(),
        },
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}
