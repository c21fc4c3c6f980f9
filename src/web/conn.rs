//! Deadlines for every phase of a connection, so that a peer that goes quiet
//! gives back its socket (and its file descriptor) instead of holding it
//! forever.
//!
//! | phase | bound | enforced by |
//! |---|---|---|
//! | connect to end of the first request's headers (TLS handshake included) | `header_timeout` | [`Activity`] deadline on the socket's reads |
//! | TLS handshake alone | `header_timeout` | axum-server's `RustlsAcceptor` |
//! | later request headers, once their first byte came | `header_timeout` | hyper's `header_read_timeout` |
//! | between requests (keep-alive, HTTP/1.1 and HTTP/2) | `idle_timeout` | [`Activity`] deadline |
//! | a request body, once the handler reads it | `body_timeout` | [`Tracked`]: 408 and close |
//!
//! Why not hyper's `header_read_timeout` alone: hyper-util's protocol
//! detection (HTTP/1.1 or HTTP/2) reads the first bytes before hyper's timer
//! exists, so a socket that sends nothing, or a TLS session that never sends
//! a request, was never closed; and it does nothing for HTTP/2 or for bodies.
//!
//! Why the socket deadline only runs while no request is in progress: an
//! MJPEG viewer, an event stream or a WebSocket reads nothing from its peer
//! for hours, legitimately. A per-read idle deadline would cut them. Instead
//! [`Tracked`] counts the requests in progress on the connection (from the
//! parsed head until the response body is dropped, i.e. sent or abandoned);
//! while that count is above zero the response is the connection's business
//! and the stream's own limits apply (viewer caps, the SSE buffer, the
//! WebSocket's ping and idle limit). A connection upgraded to a WebSocket
//! never gets the deadline again: its response (101) is over at once, but the
//! socket lives on and `ws.rs` pings and drops it when it goes quiet. Counting
//! time from when the connection last became idle (not from the last byte
//! read) also means HTTP/2 pings cannot keep an idle connection open.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode, Version};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::error::ApiError;

/// How long each phase of a connection may take.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From connect to the end of the first request's headers (TLS
    /// handshake included), and for any request's headers once they began.
    pub header: Duration,
    /// A connection with no request in progress, after its first one.
    pub idle: Duration,
    /// A request body, from when the handler starts reading it.
    pub body: Duration,
}

/// What one connection is doing, shared by its socket wrapper (which enforces
/// the idle deadline) and its service (which knows when requests start and
/// end).
#[derive(Debug)]
pub(crate) struct Activity {
    deadlines: Deadlines,
    /// Requests whose response body is not yet dropped.
    in_flight: AtomicUsize,
    /// The connection has had a request: later idle spells get `idle`,
    /// not `header`.
    served: AtomicBool,
    /// Upgraded to another protocol (WebSocket), which keeps its own time.
    upgraded: AtomicBool,
    /// When `in_flight` last fell to zero (or the connection opened).
    idle_since: Mutex<Instant>,
    /// The task reading the socket: woken when the connection becomes idle,
    /// so the deadline is armed even if no byte arrives.
    reader: AtomicWaker,
    /// Closed by the door to make room (see [`Activity::evict`]).
    evicted: AtomicBool,
    /// The connection's place under the server's cap, given back when the
    /// socket closes, or handed to a newer connection by [`Activity::evict`].
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Activity {
    /// A connection opened now.
    pub(crate) fn new(deadlines: Deadlines, permit: OwnedSemaphorePermit) -> Arc<Activity> {
        Arc::new(Activity {
            deadlines,
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
            reader: AtomicWaker::new(),
            evicted: AtomicBool::new(false),
            permit: Mutex::new(Some(permit)),
        })
    }

    /// Whether the connection has yet to send its first request head (a
    /// TLS handshake, or nothing at all).
    pub(crate) fn silent(&self) -> bool {
        !self.served.load(Ordering::SeqCst) && !self.evicted.load(Ordering::SeqCst)
    }

    /// Closes a connection that has sent no request yet, and hands its place
    /// under the cap to the caller; `None` if it has spoken since, or has no
    /// place left to give. Its socket closes at its next read.
    pub(crate) fn evict(&self) -> Option<OwnedSemaphorePermit> {
        if !self.silent() {
            return None;
        }
        let permit = crate::sync::lock(&self.permit).take()?;
        self.evicted.store(true, Ordering::SeqCst);
        self.reader.wake();
        Some(permit)
    }

    /// Gives the connection's place back (its socket closed).
    pub(crate) fn release(&self) {
        crate::sync::lock(&self.permit).take();
    }

    /// When the connection must be closed if nothing changes, or `None`
    /// while a request is in progress or after an upgrade.
    fn deadline(&self) -> Option<Instant> {
        if self.upgraded.load(Ordering::SeqCst) || self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = *crate::sync::lock(&self.idle_since);
        let allowed = if self.served.load(Ordering::SeqCst) {
            self.deadlines.idle
        } else {
            self.deadlines.header
        };
        Some(since + allowed)
    }
}

/// Enforces the idle deadline on reads of a socket.
pub(crate) struct IdleDeadline {
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
}

impl IdleDeadline {
    pub(crate) fn new(activity: Arc<Activity>) -> IdleDeadline {
        IdleDeadline {
            activity,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed_for: None,
        }
    }

    /// Called when a read found nothing to read: `Ready(error)` once the
    /// connection has been idle too long, else registers for a wake-up at
    /// the deadline and when the connection becomes idle.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        self.activity.reader.register(cx.waker());
        if self.activity.evicted.load(Ordering::SeqCst) {
            return Poll::Ready(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room: no request sent",
            ));
        }
        let Some(deadline) = self.activity.deadline() else {
            self.armed_for = None;
            return Poll::Pending;
        };
        if self.armed_for != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed_for = Some(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle too long",
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Whether the deadline has passed (for writes, which do not wait on it).
    pub(crate) fn expired(&self) -> bool {
        self.activity.evicted.load(Ordering::SeqCst)
            || self
                .activity
                .deadline()
                .is_some_and(|d| d <= Instant::now())
    }

    /// The connection this deadline watches.
    pub(crate) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

/// One request in progress; dropping it (with the response body) may make
/// the connection idle.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.served.store(true, Ordering::SeqCst);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // idle_since first, so a reader that sees zero also sees the time.
        *crate::sync::lock(&self.0.idle_since) = Instant::now();
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.reader.wake();
        }
    }
}

/// The per-connection service: counts requests in progress for the idle
/// deadline, bounds the time to receive a request body, and notices
/// upgrades.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Tracked<S> {
        Tracked { inner, activity }
    }
}

impl<S> tower::Service<Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let guard = InFlight::enter(&self.activity);
        let activity = self.activity.clone();
        let expired = Arc::new(AtomicBool::new(false));
        let version = req.version();
        let limit = self.activity.deadlines.body;
        let req = req.map(|b| Body::new(TimedBody::new(b, limit, expired.clone())));
        // The clone that was made ready is the one that is called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut resp = match inner.call(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if expired.load(Ordering::SeqCst) {
                // Whatever the handler made of the failed read, the client
                // learns the real reason, and the connection (with the rest
                // of that body still in it) is not reused.
                resp = ApiError::BodyTimeout.into_response();
                if version <= Version::HTTP_11 {
                    resp.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
            }
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                activity.upgraded.store(true, Ordering::SeqCst);
            }
            Ok(resp.map(|body| Body::new(Held::new(body, guard))))
        })
    }
}

/// A response body that holds `guard` until it is dropped (sent or
/// abandoned): what a request counts for lasts as long as its response, a
/// stream included.
pub(crate) struct Held<G> {
    body: Body,
    _guard: G,
}

impl<G> Held<G> {
    pub(crate) fn new(body: Body, guard: G) -> Held<G> {
        Held {
            body,
            _guard: guard,
        }
    }
}

impl<G: Send + Unpin + 'static> HttpBody for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The request body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?}")]
pub(crate) struct BodyTimeout(Duration);

/// A request body that must arrive in full within a time from its first
/// read. Counted from the first read, not from the request head, so a
/// handler that waits before reading (the login slow-down) does not eat the
/// client's time. The whole body, not each chunk, is bounded: bodies are
/// small (`max_body`), and a per-chunk timer would let a peer trickle one
/// byte per interval for hours.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration, expired: Arc<AtomicBool>) -> TimedBody {
        TimedBody {
            inner,
            limit,
            timer: None,
            expired,
        }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        let limit = this.limit;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::SeqCst);
                Poll::Ready(Some(Err(BodyTimeout(limit).into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
