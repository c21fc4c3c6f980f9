//! Where notifications go and how hard to try: the settings from flags or
//! the TOML file, with their defaults.

use std::time::Duration;

/// Notification settings, from flags or the TOML file.
#[derive(Debug, Clone, PartialEq)]
pub struct PushConfig {
    /// An ntfy topic URL (`https://ntfy.sh/TOPIC` or a self-hosted one):
    /// one `PUT` per incident with the picture.
    pub ntfy_url: Option<String>,
    /// Bearer token for `ntfy_url` (env or file only: argv shows in `ps`).
    pub ntfy_token: Option<String>,
    /// The address people reach the dashboard at from their phone
    /// (`https://cam.example.org`), the base of a notification's links.
    /// Without it ntfy's `Click` and a Web Push payload's links are
    /// relative (the service worker resolves them against its origin).
    pub public_url: Option<String>,
    /// The contact a push service may write to about this server (VAPID's
    /// `sub`): a `mailto:` or `https:` URL.
    pub contact: String,
    /// First retry delay, doubled after each failure.
    pub retry_start: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// A notification not delivered within this long is given up: a buzz
    /// about the yard hours later helps nobody. Also the Web Push `TTL`.
    pub max_age: Duration,
    /// Longest one request may take.
    pub request_timeout: Duration,
    /// Accept `http://` push endpoints on loopback (the tests' push service;
    /// never set from a flag: a real endpoint is always `https://`).
    pub allow_loopback_http: bool,
}

impl Default for PushConfig {
    /// No ntfy; 1 s doubling to 5 min; given up after 4 h; 30 s a request.
    fn default() -> Self {
        PushConfig {
            ntfy_url: None,
            ntfy_token: None,
            public_url: None,
            contact: "mailto:lookout@localhost".into(),
            retry_start: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_age: Duration::from_secs(4 * 3600),
            request_timeout: Duration::from_secs(30),
            allow_loopback_http: false,
        }
    }
}

impl PushConfig {
    /// The same with a faster retry schedule (tests).
    pub fn with_backoff(mut self, start: Duration, max: Duration) -> Self {
        self.retry_start = start;
        self.retry_max = max;
        self
    }

    /// `path` (starting with `/`) as a link for a phone: under
    /// `public_url` when set, else as is.
    pub fn link(&self, path: &str) -> String {
        match &self.public_url {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => path.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_go_under_the_public_url() {
        let mut c = PushConfig::default();
        assert_eq!(c.link("/?camera=yard"), "/?camera=yard");
        c.public_url = Some("https://cam.example.org/".into());
        assert_eq!(
            c.link("/?camera=yard"),
            "https://cam.example.org/?camera=yard"
        );
    }
}
