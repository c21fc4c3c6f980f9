//! Serving the router: plain HTTP or TLS on the caller's listener, with the
//! connection-level limits (total connections, a deadline for every phase of
//! a connection, see [`super::conn`]) and a graceful stop when the shutdown
//! token fires.

use std::future::{ready, Ready};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::conn::{Activity, Deadlines, IdleDeadline, Tracked};

/// Connection-level limits, shared by every listener of one server.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections at most (all listeners together); more are closed
    /// at once.
    pub max_connections: usize,
    /// How long each phase of a connection may take (see [`super::conn`]).
    pub deadlines: Deadlines,
}

/// After shutdown, open connections get this long to finish.
const DRAIN: Duration = Duration::from_secs(1);

/// Refused connections are logged at most this often, with their count: a
/// flood refuses thousands a second, and a line for each would fill the log
/// (on a Raspberry Pi, its SD card) while telling nothing more.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Admits connections for one server: every listener it serves (the main
/// one and the HTTP-to-HTTPS redirect) draws from the same permits, since
/// they draw from the same file descriptors.
#[derive(Clone)]
pub struct Door {
    permits: Arc<Semaphore>,
    max_connections: usize,
    deadlines: Deadlines,
    refusals: Arc<Mutex<Refusals>>,
}

/// Connections refused since the last log line about them.
#[derive(Debug, Default)]
struct Refusals {
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl Door {
    /// A door admitting at most `limits.max_connections` at once.
    pub fn new(limits: ConnLimits) -> Door {
        let max_connections = limits.max_connections.max(1);
        Door {
            permits: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            deadlines: limits.deadlines,
            refusals: Arc::default(),
        }
    }

    /// Counts a refused connection and logs the count now and then.
    fn refused(&self) {
        let mut r = crate::sync::lock(&self.refusals);
        r.unlogged += 1;
        let now = Instant::now();
        if r.logged_at
            .is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_EVERY)
        {
            tracing::warn!(
                "connection limit reached ({} open); refused {} connection(s) since the last \
                 report (reported at most every {} s)",
                self.max_connections,
                r.unlogged,
                REFUSAL_LOG_EVERY.as_secs()
            );
            r.unlogged = 0;
            r.logged_at = Some(now);
        }
    }
}

/// Serves `router` on `listener` until `shutdown` fires, admitting
/// connections through `door`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<RustlsConfig>,
    door: Door,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let handle = Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(DRAIN));
    });
    let deadlines = door.deadlines;
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let listener = listener.into_std()?;
    match tls {
        Some(config) => {
            // The Door is the inner acceptor: the permit and the idle deadline
            // hold from the TCP accept on, through the handshake.
            let acceptor = RustlsAcceptor::new(config)
                .handshake_timeout(deadlines.header)
                .acceptor(door);
            let mut server = axum_server::from_tcp(listener)
                .acceptor(acceptor)
                .handle(handle);
            tune(server.http_builder(), deadlines);
            server.serve(app).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .acceptor(door)
                .handle(handle);
            tune(server.http_builder(), deadlines);
            server.serve(app).await
        }
    }
}

/// hyper's per-connection read buffer limit, at hyper's smallest: 8 KiB.
///
/// Why not the default (about 400 KiB): hyper-util reads a connection's first
/// 24 bytes to tell HTTP/1.1 from HTTP/2 and hands them back as a first,
/// short read. With room to grow, hyper then doubled its 8 KiB read buffer to
/// 16 KiB on every connection, for nothing: a viewer only ever sends one small
/// request. At 1,000 viewers that was 8 MB of the server's memory (measured
/// with heaptrack, see the README's Performance section). The cost: a request
/// head (request line and headers) over 8 KiB gets 431, Tomcat's and Jetty's
/// default bound (nginx and Apache bound each header line at about 8 KiB);
/// request bodies are read in 8 KiB steps.
///
/// The same limit bounds what hyper queues for writing: a frame is queued as
/// it is (never copied), and the next is only taken once it is sent, so a
/// viewer whose socket is full holds one frame and then gets the newest, as
/// `web::stream` intends. With the default, a viewer behind could queue about
/// three frames; at saturation (1,000 viewers on 2 cores) that batching
/// delivered about 7 % more bytes, measured both ways round in
/// `scripts/bench`, for 8 MB more memory and older frames at slow viewers.
const HTTP1_BUF: usize = 8 * 1024;

fn tune(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    deadlines: Deadlines,
) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(deadlines.header)
        .max_buf_size(HTTP1_BUF);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Pings find dead HTTP/2 peers (a phone that left the Wi-Fi).
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
}

impl<S> Accept<TcpStream, S> for Door {
    type Stream = Admitted;
    type Service = Tracked<S>;
    type Future = Ready<io::Result<(Admitted, Tracked<S>)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                // Frames and replies are small writes that must leave at once.
                let _ = stream.set_nodelay(true);
                let activity = Activity::new(self.deadlines);
                ready(Ok((
                    Admitted {
                        stream,
                        idle: IdleDeadline::new(activity.clone()),
                        _permit: permit,
                    },
                    Tracked::new(service, activity),
                )))
            }
            Err(_) => {
                self.refused();
                ready(Err(io::Error::other("too many connections")))
            }
        }
    }
}

/// A connection that holds one permit until it closes, and is closed when it
/// stays idle past its deadline (see [`super::conn`] for why only when idle).
pub struct Admitted {
    stream: TcpStream,
    idle: IdleDeadline,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => this.idle.poll_expired(cx).map(Err),
            ready => ready,
        }
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.idle.expired() {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.idle.expired() {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves a plain listener that sends every request to the HTTPS address,
/// through the same `door` (connection cap and deadlines) as the main
/// listener: it faces the same clients.
pub async fn redirect_to_https(
    listener: TcpListener,
    https_port: u16,
    door: Door,
    shutdown: CancellationToken,
) -> io::Result<()> {
    use axum::http::{header, Request};
    use axum::response::{IntoResponse, Redirect};
    let router = Router::new().fallback(move |req: Request<axum::body::Body>| async move {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(redirect_host);
        let Some(host) = host else {
            return super::error::ApiError::BadRequest("invalid Host header".into())
                .into_response();
        };
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        Redirect::permanent(&format!("https://{host}:{https_port}{path}")).into_response()
    });
    serve(listener, router, None, door, shutdown).await
}

/// The host part of a `Host` header (port dropped), if it is a host name,
/// an IPv4 address or a bracketed IPv6 address and nothing else. The value
/// becomes the authority of the `Location` URL, so anything that could
/// change where that URL points (`user@evil`, `evil/`, `\`, control
/// characters) is refused rather than copied.
fn redirect_host(value: &str) -> Option<&str> {
    let host = if value.starts_with('[') {
        let end = value.find(']')?;
        let (host, rest) = value.split_at(end + 1);
        if !(rest.is_empty() || is_port(rest.strip_prefix(':')?)) {
            return None;
        }
        host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().ok()?;
        host
    } else {
        let host = match value.rsplit_once(':') {
            Some((h, port)) if is_port(port) => h,
            Some(_) => return None,
            None => value,
        };
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !name_ok {
            return None;
        }
        host
    };
    Some(host)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::redirect_host;

    #[test]
    fn redirect_host_takes_names_and_addresses_only() {
        for (value, host) in [
            ("cam.local", "cam.local"),
            ("cam.local:80", "cam.local"),
            ("192.168.1.5:8080", "192.168.1.5"),
            ("localhost", "localhost"),
            ("[::1]:80", "[::1]"),
            ("[fe80::1]", "[fe80::1]"),
        ] {
            assert_eq!(redirect_host(value), Some(host), "{value}");
        }
        for value in [
            "",
            "evil.example/",
            "user@evil.example",
            "evil.example\\x",
            "a b",
            "evil\t.example",
            "cam:80:80",
            "cam:port",
            "[::1",
            "[::1]x",
            "[not-ip]",
            "-cam",
            "cam..local",
            "evil.example%2f",
        ] {
            assert_eq!(redirect_host(value), None, "{value:?}");
        }
    }
}
