//! The one upload receiver of the tests and of `bench/soak`: an HTTP server
//! on a loopback port that answers each request by a plan and keeps what
//! came, and the one strict `multipart/form-data` parser that reads lookout's
//! uploads back.
//!
//! The integration tests reach it as `common::receiver`; `bench/soak`
//! includes this same file with `#[path]` and gives it its plan of failures
//! and hangs. It uses only what the bench programs have too (no test harness
//! items), and its items are `pub(crate)` because it is a private module in
//! each.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A request as it reaches the plan.
pub(crate) struct Request {
    pub(crate) path: String,
    /// How many requests on this path came before it (from 0).
    pub(crate) n: usize,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// What the receiver answers to each request; it may take its time (a
/// receiver that hangs).
pub(crate) type Plan = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

/// A plan that answers at once from the path and the request's number on it.
pub(crate) fn answer(f: impl Fn(&str, usize) -> Response + Send + Sync + 'static) -> Plan {
    Arc::new(move |req: Request| {
        let resp = f(&req.path, req.n);
        Box::pin(async move { resp })
    })
}

/// One request as the receiver saw it, and the status it answered.
#[derive(Clone, Debug)]
pub(crate) struct Hit {
    /// `POST`, `PUT`, ...
    pub(crate) method: String,
    pub(crate) path: String,
    /// When it arrived.
    pub(crate) at: Instant,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) status: u16,
}

impl Hit {
    /// A request header, if it is there and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's parts, read strictly.
    pub(crate) fn parts(&self) -> Result<Vec<Part>, MultipartError> {
        parts(self.header("content-type").unwrap_or_default(), &self.body)
    }

    /// The body of the form field `name`, if the body is a well-formed
    /// multipart form that has one.
    pub(crate) fn part(&self, name: &str) -> Option<Bytes> {
        let parts = self.parts().ok()?;
        parts.into_iter().find(|p| p.is_field(name)).map(|p| p.body)
    }
}

/// The receiver; it stops when dropped.
pub(crate) struct Receiver {
    addr: SocketAddr,
    /// Every request, unless started by [`Receiver::serve`].
    hits: Option<Arc<Mutex<Vec<Hit>>>>,
    _stop: DropGuard,
}

impl Receiver {
    /// A receiver on a free port that answers 200 to everything.
    pub(crate) async fn start() -> Receiver {
        Self::start_with(answer(|_, _| StatusCode::OK.into_response())).await
    }

    /// A receiver on a free port that answers by `plan`.
    pub(crate) async fn start_with(plan: Plan) -> Receiver {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), plan).await
    }

    /// A receiver on `addr` that answers by `plan`.
    pub(crate) async fn start_on(addr: SocketAddr, plan: Plan) -> Receiver {
        Self::bind(addr, plan, true).await
    }

    /// A receiver on a free port that answers by `plan` and keeps nothing:
    /// for a run of hours, where the plan counts what it needs.
    pub(crate) async fn serve(plan: Plan) -> Receiver {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), plan, false).await
    }

    async fn bind(addr: SocketAddr, plan: Plan, keep: bool) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let hits: Option<Arc<Mutex<Vec<Hit>>>> = keep.then(Arc::default);
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let into = hits.clone();
        let app = axum::Router::new()
            .fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let (plan, hits, counts) = (plan.clone(), into.clone(), counts.clone());
                    async move {
                        let at = Instant::now();
                        let path = uri.path().to_string();
                        let n = {
                            let mut counts = counts.lock().expect("receiver lock");
                            let n = counts.entry(path.clone()).or_insert(0);
                            *n += 1;
                            *n - 1
                        };
                        let req = Request {
                            path: path.clone(),
                            n,
                            headers: headers.clone(),
                            body: body.clone(),
                        };
                        let resp = plan(req).await;
                        if let Some(hits) = hits {
                            hits.lock().expect("receiver lock").push(Hit {
                                method: method.to_string(),
                                path,
                                at,
                                headers,
                                body,
                                status: resp.status().as_u16(),
                            });
                        }
                        resp
                    }
                },
            )
            // Clips are uploaded whole: more than axum's 2 MB default.
            .layer(axum::extract::DefaultBodyLimit::disable());
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Receiver {
            addr,
            hits,
            _stop: stop.drop_guard(),
        }
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on this receiver.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request on `path` so far, in the order they were answered.
    pub(crate) fn hits(&self, path: &str) -> Vec<Hit> {
        let Some(hits) = &self.hits else {
            return Vec::new();
        };
        hits.lock()
            .expect("receiver lock")
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// The requests on `path` answered 2xx.
    pub(crate) fn accepted(&self, path: &str) -> Vec<Hit> {
        self.hits(path)
            .into_iter()
            .filter(|h| (200..300).contains(&h.status))
            .collect()
    }
}

/// A multipart part: its headers (lowercase names) and body.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Part {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it is the form field `name`.
    pub(crate) fn is_field(&self, name: &str) -> bool {
        self.header("content-disposition")
            .is_some_and(|d| d.contains(&format!("name=\"{name}\"")))
    }
}

/// How a body breaks `multipart/form-data`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MultipartError {
    #[error("content type {0:?} is not multipart/form-data with a boundary")]
    ContentType(String),
    #[error("the body does not start with the boundary")]
    Start,
    #[error("no closing delimiter")]
    NoDelimiter,
    #[error("a part's headers do not end")]
    HeadersEnd,
    #[error("a part header is not a `name: value` text line")]
    HeaderLine,
    #[error("bad bytes after a delimiter")]
    AfterDelimiter,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A strict `multipart/form-data` parser (RFC 7578): every delimiter is
/// `CRLF--boundary`, the body ends with `--boundary--CRLF`; a sloppy writer
/// (or bytes in a JPEG that look like a delimiter) fails it.
pub(crate) fn parts(content_type: &str, body: &Bytes) -> Result<Vec<Part>, MultipartError> {
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .ok_or_else(|| MultipartError::ContentType(content_type.to_string()))?;
    let first = format!("--{boundary}\r\n");
    if !body.starts_with(first.as_bytes()) {
        return Err(MultipartError::Start);
    }
    let delim = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut pos = first.len();
    loop {
        let end = find(body, delim.as_bytes(), pos).ok_or(MultipartError::NoDelimiter)?;
        let raw = &body[pos..end];
        let split = find(raw, b"\r\n\r\n", 0).ok_or(MultipartError::HeadersEnd)?;
        let headers = std::str::from_utf8(&raw[..split]).map_err(|_| MultipartError::HeaderLine)?;
        let headers = headers
            .split("\r\n")
            .map(|l| {
                let (n, v) = l.split_once(':').ok_or(MultipartError::HeaderLine)?;
                Ok((n.trim().to_ascii_lowercase(), v.trim().to_string()))
            })
            .collect::<Result<_, MultipartError>>()?;
        parts.push(Part {
            headers,
            body: body.slice(pos + split + 4..end),
        });
        let after = end + delim.len();
        match &body[after..] {
            b"--\r\n" => return Ok(parts),
            rest if rest.starts_with(b"\r\n") => pos = after + 2,
            _ => return Err(MultipartError::AfterDelimiter),
        }
    }
}
