//! What a churn task holds: the server's address, clients, the tally and the
//! stop.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::Value;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use crate::tally::Tally;

/// What the churn tasks need to reach the server.
pub(crate) struct Ctx {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    /// For streams: no overall timeout.
    pub(crate) stream: reqwest::Client,
    pub(crate) tally: Arc<Tally>,
    pub(crate) stop: CancellationToken,
}

/// Camera route prefixes: the root (the first camera) and both by name.
pub(crate) const BASES: [&str; 3] = ["", "/cams/yard", "/cams/gate"];

impl Ctx {
    /// The clients for a server on `port`.
    pub(crate) fn new(
        port: u16,
        tally: Arc<Tally>,
        stop: CancellationToken,
    ) -> anyhow::Result<Ctx> {
        let http = reqwest::Client::builder()
            .http1_only()
            // Below the server's 10 s idle timeout, so a pooled connection is
            // never reused as the server closes it.
            .pool_idle_timeout(Duration::from_secs(4))
            .timeout(Duration::from_secs(30))
            .build()?;
        let stream = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Ctx {
            base: format!("http://127.0.0.1:{port}"),
            http,
            stream,
            tally,
            stop,
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request whose answer must have `status`; returns the body.
    pub(crate) async fn expect(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        status: u16,
    ) -> Option<(HeaderMap, Bytes)> {
        Tally::add(&self.tally.requests);
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.tally.fail(format!("{what}: {}", chain(&e)));
                return None;
            }
        };
        let got = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                self.tally.fail(format!("{what}: body: {}", chain(&e)));
                return None;
            }
        };
        if got != status {
            self.tally.fail(format!(
                "{what}: HTTP {got}, expected {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
            return None;
        }
        Some((headers, body))
    }

    /// [`Ctx::expect`] for a JSON answer.
    pub(crate) async fn expect_json(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        status: u16,
    ) -> Option<Value> {
        let (_, body) = self.expect(req, what, status).await?;
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                self.tally.fail(format!("{what}: not JSON: {e}"));
                None
            }
        }
    }

    /// Sleeps, or returns false once the churn is over.
    pub(crate) async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }
}

pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
