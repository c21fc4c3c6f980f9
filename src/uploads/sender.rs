//! The HTTP side of uploads: one request per item, and what its answer means.
//!
//! Frames go to `url` as `multipart/form-data` (field `image`, the JPEG as
//! `frame-<ts>.jpg`; field `event`, the JSON) with the bearer token; a clip
//! item adds field `clip`, the file under its own name and type
//! (`motion-<ms>.mkv` as `video/x-matroska`, `motion-<ms>.mp4` as
//! `video/mp4`), its picture named `motion-<ms>.jpg`. Events go to
//! `webhook_url` as JSON alone, without the token (another service).
//! Redirects are not followed: a redirected POST turns into a GET and would
//! look like a success while the frame went nowhere.

use std::fs;
use std::time::Duration;

use reqwest::multipart::{Form, Part};

use super::config::UploadConfig;
use super::error::UploadError;
use super::queue::Lane;
use crate::chain::error_chain;
use crate::clips::Kind;
use crate::redact::Redactor;

/// Longest wait a `Retry-After` may impose; a receiver asking for more is
/// retried after this anyway, so a typo on its side cannot park the queue.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The outcome of one attempt.
#[derive(Debug)]
pub(crate) enum Outcome {
    Sent,
    /// Try again later, not before `after` if the receiver said so.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Never try again; keep the evidence in `failed/`.
    Permanent(String),
}

/// The client and where it sends.
pub(crate) struct Sender {
    client: reqwest::Client,
    url: Option<String>,
    webhook_url: Option<String>,
    token: Option<String>,
    /// Hides the receivers' URLs (a webhook's path is its secret) and the
    /// token in every error, before it is logged, stored or published.
    redactor: Redactor,
}

impl Sender {
    /// Checks the URLs and builds the client; fails on a bad URL or CA file,
    /// so a typo shows at start-up rather than as an endless retry.
    pub(crate) fn new(config: &UploadConfig) -> Result<Sender, UploadError> {
        let urls: Vec<&str> = [&config.url, &config.webhook_url]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        for url in &urls {
            check_url(url)?;
        }
        if config.token.is_some()
            && config
                .url
                .as_deref()
                .is_some_and(|u| u.starts_with("http:"))
        {
            tracing::warn!("upload token is sent over plain http; use https off the local network");
        }
        Ok(Sender {
            client: build_client(config)?,
            redactor: Redactor::for_uploads(&urls, config.token.as_deref()),
            url: config.url.clone(),
            webhook_url: config.webhook_url.clone(),
            token: config.token.clone(),
        })
    }

    /// Sends one item: `jpeg` for a frame, the event JSON for both lanes,
    /// and a clip (its name and where it is) when the item has one.
    pub(crate) async fn send(
        &self,
        lane: Lane,
        file: &str,
        event_json: Vec<u8>,
        jpeg: Option<Vec<u8>>,
        clip: Option<(&str, std::path::PathBuf)>,
    ) -> Outcome {
        let request = match lane {
            Lane::Frame => {
                let (Some(url), Some(jpeg)) = (&self.url, jpeg) else {
                    return Outcome::Permanent("no upload url configured".into());
                };
                let mut form = match multipart(file, jpeg, event_json) {
                    Ok(form) => form,
                    Err(e) => return Outcome::Permanent(e),
                };
                if let Some((name, path)) = clip {
                    match clip_part(name, &path).await {
                        Ok(part) => form = form.part("clip", part),
                        Err(e) => return Outcome::Permanent(e),
                    }
                }
                let r = self.client.post(url).multipart(form);
                match &self.token {
                    Some(token) => r.bearer_auth(token),
                    None => r,
                }
            }
            Lane::Event => {
                let Some(url) = &self.webhook_url else {
                    return Outcome::Permanent("no webhook url configured".into());
                };
                self.client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(event_json)
            }
        };
        let outcome = match request.send().await {
            Ok(resp) => classify(&resp),
            Err(e) => Outcome::Retry {
                error: error_chain(&e),
                after: None,
            },
        };
        match outcome {
            Outcome::Retry { error, after } => Outcome::Retry {
                error: self.redactor.apply(&error),
                after,
            },
            Outcome::Permanent(error) => Outcome::Permanent(self.redactor.apply(&error)),
            Outcome::Sent => Outcome::Sent,
        }
    }
}

/// The frame's body: `image` (the JPEG) then `event` (the JSON).
fn multipart(file: &str, jpeg: Vec<u8>, event_json: Vec<u8>) -> Result<Form, String> {
    let image = Part::bytes(jpeg)
        .file_name(header_safe(file))
        .mime_str("image/jpeg")
        .map_err(|e| format!("cannot build the upload: {e}"))?;
    let event = Part::bytes(event_json)
        .mime_str("application/json")
        .map_err(|e| format!("cannot build the upload: {e}"))?;
    Ok(Form::new().part("image", image).part("event", event))
}

/// A file name for a part header. The names are ours (`frame-<digits>.jpg`,
/// `motion-<ms>.jpg`, `motion-<ms>.mkv`, `motion-<ms>.mp4`), but quotes and
/// line breaks are stripped anyway so an odd name cannot break the header.
fn header_safe(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\'))
        .collect()
}

/// The clip, streamed from its file (a clip may be tens of MB: it is never
/// read into memory whole), typed by its name's extension as the clip
/// folder serves it.
async fn clip_part(name: &str, path: &std::path::Path) -> Result<Part, String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("queued clip unreadable: {e}"))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| format!("queued clip unreadable: {e}"))?
        .len();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    Part::stream_with_length(body, len)
        .file_name(header_safe(name))
        .mime_str(Kind::of(name).mime())
        .map_err(|e| format!("cannot build the upload: {e}"))
}

fn check_url(url: &str) -> Result<(), UploadError> {
    let bad = |reason: &str| UploadError::InvalidUrl {
        // A webhook's path is its secret: the error names the endpoint only.
        url: crate::redact::endpoint(url),
        reason: reason.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        _ => Err(bad("only http and https are supported")),
    }
}

/// The HTTP client: rustls with the webpki roots, or only the pinned CA.
fn build_client(config: &UploadConfig) -> Result<reqwest::Client, UploadError> {
    crate::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10).min(config.request_timeout))
        .timeout(config.request_timeout)
        .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| UploadError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificate in it".into()));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| UploadError::Client(error_chain(&e)))
}

/// 2xx sent; 408, 429 and 5xx retried (with `Retry-After` seconds); anything
/// else permanent.
fn classify(resp: &reqwest::Response) -> Outcome {
    let status = resp.status();
    if status.is_success() {
        return Outcome::Sent;
    }
    let error = format!("receiver answered {status}");
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Outcome::Retry { error, after }
    } else {
        Outcome::Permanent(error)
    }
}
