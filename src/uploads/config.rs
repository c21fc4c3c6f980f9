//! Where uploads go and how hard to try: the settings from flags or the
//! TOML file, with their defaults.

use std::path::PathBuf;
use std::time::Duration;

/// Upload settings, from flags or the TOML file.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadConfig {
    /// Receiver of frames (`multipart/form-data` POST); `http` or `https`.
    pub url: Option<String>,
    /// Bearer token sent to `url` (never to the webhook, a different service).
    pub token: Option<String>,
    /// PEM file with the CA(s) to trust instead of the public roots, for a
    /// self-hosted receiver with its own CA. The public roots are then not
    /// trusted at all (this is pinning, not adding).
    pub ca_file: Option<PathBuf>,
    /// Receiver of the event JSON alone (`application/json` POST).
    pub webhook_url: Option<String>,
    /// Also upload manual snapshots (and call the webhook for them).
    pub on_manual: bool,
    /// Also upload each saved clip (field `clip`).
    pub clips: bool,
    /// Items older than this are given up (dropped, counted as failed).
    pub max_age: Duration,
    /// Bound of `pending/`, in MiB; the oldest items go first.
    pub queue_mb: u64,
    /// Exact bound in bytes; overrides `queue_mb` when set (tests, tiny
    /// devices).
    pub queue_bytes: Option<u64>,
    /// First retry delay, doubled after each failure.
    pub retry_start: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Longest one request may take, so a receiver that accepts the
    /// connection and then hangs cannot stall the queue.
    pub request_timeout: Duration,
}

impl Default for UploadConfig {
    /// Nothing to send to; 7 days, 256 MiB, 1 s doubling to 5 min, 60 s per
    /// request.
    fn default() -> Self {
        UploadConfig {
            url: None,
            token: None,
            ca_file: None,
            webhook_url: None,
            on_manual: false,
            clips: false,
            max_age: Duration::from_secs(7 * 86_400),
            queue_mb: 256,
            queue_bytes: None,
            retry_start: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl UploadConfig {
    /// Whether there is anywhere to send to; when not, don't open an
    /// [`Uploader`](super::Uploader) at all.
    pub fn enabled(&self) -> bool {
        self.url.is_some() || self.webhook_url.is_some()
    }

    /// The same settings with another backoff (tests use milliseconds).
    pub fn with_backoff(mut self, start: Duration, max: Duration) -> Self {
        self.retry_start = start;
        self.retry_max = max.max(start);
        self
    }

    /// The queue bound in bytes.
    pub fn queue_limit(&self) -> u64 {
        self.queue_bytes
            .unwrap_or_else(|| self.queue_mb.saturating_mul(1024 * 1024))
    }
}
