//! Serving the router: plain HTTP or TLS on the caller's listener, with the
//! connection-level limits (total connections, connections per client
//! address, a deadline for every phase of a connection, see [`super::conn`])
//! and a graceful stop when the shutdown token fires.
//!
//! Why a cap per address as well as in total: 4,200 silent sockets from one
//! address, reconnecting as the header deadline closed them, used to hold
//! all 4,096 places, and a real client failed most of its attempts. Now one
//! address holds at most `max_per_address` (an IPv4 address or an IPv6 /64,
//! see [`crate::peers::key`]; a trusted proxy's own connections are exempt,
//! its clients are capped per request in `web::client`). And when the total
//! is reached, the oldest connection that has not sent a request yet is
//! closed to make room for the new one: a real client sends its request
//! within milliseconds of connecting, so it is never the oldest silent one
//! for long, while a flood of silent sockets only pushes out its own.

use std::collections::VecDeque;
use std::future::{ready, Ready};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
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
use crate::peers::{Place, Places, TrustedProxies};

/// Unsent bytes under which a socket takes more (`TCP_NOTSENT_LOWAT`).
///
/// Without it the kernel queues whatever its growing send buffer holds: at
/// a thousand MJPEG viewers about 11 frames (0.55 MB) waited in each
/// socket, the machine's TCP memory ran out, the kernel dropped packets,
/// and each drop stalled a viewer for a 200 ms retransmission timeout.
/// With it a viewer's socket asks for the next frame only once the last
/// has nearly left, so newest-wins picks the frame then (the bytes in
/// flight on the wire are not limited, only those not yet sent).
const UNSENT_LOW_WATER: u32 = 16 * 1024;

/// Sets [`UNSENT_LOW_WATER`] on an accepted socket; a kernel without the
/// option keeps its default (a failure here never refuses a client).
fn unsent_low_water(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LOW_WATER) {
        tracing::debug!("TCP_NOTSENT_LOWAT not set: {e}");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

/// Connection-level limits, shared by every listener of one server.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Open connections at most (all listeners together); beyond, the oldest
    /// silent one is closed to make room, or the new one if none is silent.
    pub max_connections: usize,
    /// Open connections at most from one client address; more are closed at
    /// once.
    pub max_per_address: usize,
    /// Addresses exempt from `max_per_address` (reverse proxies).
    pub trusted_proxies: TrustedProxies,
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
    max_per_address: usize,
    trusted_proxies: Arc<TrustedProxies>,
    deadlines: Deadlines,
    /// Open connections per client address.
    per_address: Places,
    /// Connections in the order they came, for closing the oldest silent one;
    /// entries that spoke or closed are skipped and pruned.
    arrivals: Arc<Mutex<VecDeque<Weak<Activity>>>>,
    refusals: Arc<Mutex<Refusals>>,
}

/// Connections refused or closed since the last log line about them.
#[derive(Debug, Default)]
struct Refusals {
    /// Refused: the total reached and no silent connection to close.
    full: u64,
    /// Refused: the address's own cap reached.
    per_address: u64,
    /// Silent connections closed to make room.
    evicted: u64,
    logged_at: Option<Instant>,
}

/// Why a connection was turned away or another was closed.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Full,
    PerAddress,
    Evicted,
}

impl Door {
    /// A door admitting at most `limits.max_connections` at once.
    pub fn new(limits: ConnLimits) -> Door {
        let max_connections = limits.max_connections.max(1);
        Door {
            permits: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            max_per_address: limits.max_per_address.max(1),
            trusted_proxies: Arc::new(limits.trusted_proxies),
            deadlines: limits.deadlines,
            per_address: Places::default(),
            arrivals: Arc::default(),
            refusals: Arc::default(),
        }
    }

    /// Counts a refused or closed connection and logs the counts now and
    /// then.
    fn refused(&self, why: Refusal) {
        let mut r = crate::sync::lock(&self.refusals);
        match why {
            Refusal::Full => r.full += 1,
            Refusal::PerAddress => r.per_address += 1,
            Refusal::Evicted => r.evicted += 1,
        }
        let now = Instant::now();
        if r.logged_at
            .is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_EVERY)
        {
            tracing::warn!(
                "connection limit reached ({} open, {} per client address): since the last report, \
                 refused {} connection(s) with every place taken and {} over their address's \
                 cap, and closed {} that had sent nothing to make room (reported at most \
                 every {} s)",
                self.max_connections,
                self.max_per_address,
                r.full,
                r.per_address,
                r.evicted,
                REFUSAL_LOG_EVERY.as_secs()
            );
            r.full = 0;
            r.per_address = 0;
            r.evicted = 0;
            r.logged_at = Some(now);
        }
    }

    /// A place for `ip`'s new connection under its address's cap, or `None`
    /// when that address has its share. Trusted proxies have no cap here.
    /// (`Some(None)`: a trusted proxy, which holds no place.)
    fn address_place(&self, ip: IpAddr) -> Option<Option<Place>> {
        if self.trusted_proxies.contains(ip) {
            return Some(None);
        }
        self.per_address.take(ip, self.max_per_address).map(Some)
    }

    /// A place under the total cap: a free one, else the place of the oldest
    /// connection that has sent nothing yet, which is closed.
    fn place(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Some(permit);
        }
        let mut arrivals = crate::sync::lock(&self.arrivals);
        while let Some(weak) = arrivals.pop_front() {
            let Some(activity) = weak.upgrade() else {
                continue;
            };
            if let Some(permit) = activity.evict() {
                self.refused(Refusal::Evicted);
                return Some(permit);
            }
        }
        None
    }

    /// Remembers a new connection for [`Door::place`]; now and then drops
    /// the entries of connections that spoke or closed, so the list stays
    /// about as long as the silent connections.
    fn arrived(&self, activity: &Arc<Activity>) {
        let mut arrivals = crate::sync::lock(&self.arrivals);
        if arrivals.len() >= 2 * self.max_connections {
            arrivals.retain(|w| w.upgrade().is_some_and(|a| a.silent()));
        }
        arrivals.push_back(Arc::downgrade(activity));
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
/// with heaptrack, see docs/design/performance.md). The cost: a request
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
        let ip = match stream.peer_addr() {
            Ok(peer) => peer.ip(),
            Err(e) => return ready(Err(e)),
        };
        let Some(address) = self.address_place(ip) else {
            self.refused(Refusal::PerAddress);
            return ready(Err(io::Error::other(
                "too many connections from one address",
            )));
        };
        let Some(permit) = self.place() else {
            self.refused(Refusal::Full);
            return ready(Err(io::Error::other("too many connections")));
        };
        // Frames and replies are small writes that must leave at once.
        let _ = stream.set_nodelay(true);
        unsent_low_water(&stream);
        let activity = Activity::new(self.deadlines, permit);
        self.arrived(&activity);
        ready(Ok((
            Admitted {
                stream,
                idle: IdleDeadline::new(activity.clone()),
                _address: address,
            },
            Tracked::new(service, activity),
        )))
    }
}

/// A connection that holds its places (under the total and under its
/// address's cap) until it closes, and is closed when it stays idle past its
/// deadline (see [`super::conn`] for why only when idle) or is evicted.
pub struct Admitted {
    stream: TcpStream,
    idle: IdleDeadline,
    /// Its share of its address's cap (none for a trusted proxy).
    _address: Option<Place>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        // The place under the total lives in the connection's Activity, which
        // response bodies may outlive the socket by a moment; the socket's
        // descriptor is what the place stands for, so it goes now.
        self.idle.activity().release();
    }
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
