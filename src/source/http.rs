//! `http://` and `https://` sources: an upstream MJPEG stream, or a URL that
//! answers one JPEG per request, polled at `fps`.
//!
//! Lets lookout front an ESP32-CAM, an IP camera's snapshot URL or another
//! lookout. Multipart streams are read with the shared MJPEG splitter, which
//! treats boundary lines and part headers as the garbage between frames; so any
//! boundary works, with or without per-part `Content-Length`.

use std::time::Duration;

use futures_util::TryStreamExt;
use tokio::time::{interval, MissedTickBehavior};
use tokio_util::io::StreamReader;

use bytes::{Bytes, BytesMut};

use super::error::SourceError;
use super::mjpeg::{FrameReader, SplitError};
use super::output::Output;
use crate::frame::MAX_FRAME_BYTES;

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one snapshot request may take in polling mode.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads `url` until it fails.
pub async fn run(url: &str, fps: u32, out: &Output) -> Result<(), SourceError> {
    let shown = out.redact(url);
    let fail = |what: String| SourceError::Http(format!("{shown}: {what}"));
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fail(format!("cannot build HTTP client: {e}")))?;
    let resp = get(&client, url).await.map_err(&fail)?;
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/") {
        read_stream(resp, out).await.map_err(fail)
    } else if content_type.starts_with("image/jpeg") || content_type.starts_with("image/jpg") {
        poll(&client, url, resp, fps, out).await.map_err(fail)
    } else {
        Err(fail(format!(
            "answered {content_type:?}; expected an MJPEG stream (multipart/x-mixed-replace) or image/jpeg"
        )))
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response, String> {
    let resp = client.get(url).send().await.map_err(describe)?;
    if !resp.status().is_success() {
        return Err(format!("answered HTTP {}", resp.status()));
    }
    Ok(resp)
}

/// Error text with its causes (reqwest's top-level message alone says little).
fn describe(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn read_stream(resp: reqwest::Response, out: &Output) -> Result<(), String> {
    let body = resp.bytes_stream().map_err(std::io::Error::other);
    let mut reader = FrameReader::new(StreamReader::new(body));
    loop {
        match reader.next_frame().await {
            Ok(Some(jpeg)) => out.publish(jpeg),
            Ok(None) => return Err("stream ended".into()),
            Err(e) if e.is_bad_data() => out.reject(&e),
            Err(e) => return Err(format!("stream broke: {e}")),
        }
    }
}

/// The body of one snapshot answer, or `TooLarge` as soon as it passes
/// [`MAX_FRAME_BYTES`] (the rest is not read: the connection is dropped).
async fn read_capped(mut resp: reqwest::Response) -> Result<Result<Bytes, SplitError>, String> {
    let too_large = SplitError::TooLarge {
        limit: MAX_FRAME_BYTES,
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_FRAME_BYTES as u64)
    {
        return Ok(Err(too_large));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > MAX_FRAME_BYTES {
            return Ok(Err(too_large));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body.freeze()))
}

async fn poll(
    client: &reqwest::Client,
    url: &str,
    first: reqwest::Response,
    fps: u32,
    out: &Output,
) -> Result<(), String> {
    let mut ticker = interval(Duration::from_secs_f64(1.0 / f64::from(fps.max(1))));
    // A slow upstream lowers the rate instead of being hit by a burst afterwards.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut resp = first;
    loop {
        let body = tokio::time::timeout(POLL_TIMEOUT, read_capped(resp))
            .await
            .map_err(|_| "snapshot request timed out".to_string())??;
        match body {
            Ok(data) => out.publish_one(data),
            Err(e) => out.reject(&e),
        }
        ticker.tick().await;
        resp = tokio::time::timeout(POLL_TIMEOUT, get(client, url))
            .await
            .map_err(|_| "snapshot request timed out".to_string())??;
    }
}
