//! Serving the router: plain HTTP or TLS on the caller's listener, with the
//! connection-level limits (total connections, slow headers) and a graceful
//! stop when the shutdown token fires.

use std::future::{ready, Ready};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Request headers must arrive within this (slowloris).
    pub header_timeout: Duration,
}

/// After shutdown, open connections get this long to finish.
const DRAIN: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<RustlsConfig>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let handle = Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(DRAIN));
    });
    let door = Door {
        permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
    };
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let listener = listener.into_std()?;
    match tls {
        Some(config) => {
            let mut server = axum_server::from_tcp(listener)
                .acceptor(RustlsAcceptor::new(config).acceptor(door))
                .handle(handle);
            tune(server.http_builder(), limits);
            server.serve(app).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .acceptor(door)
                .handle(handle);
            tune(server.http_builder(), limits);
            server.serve(app).await
        }
    }
}

fn tune(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: ConnLimits,
) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Pings find dead HTTP/2 peers (a phone that left the Wi-Fi).
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
}

/// Accepts a connection only while a permit is free, and holds the permit for
/// the connection's life.
#[derive(Clone)]
struct Door {
    permits: Arc<Semaphore>,
}

impl<S> Accept<TcpStream, S> for Door {
    type Stream = Admitted;
    type Service = S;
    type Future = Ready<io::Result<(Admitted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                // Frames and replies are small writes that must leave at once.
                let _ = stream.set_nodelay(true);
                ready(Ok((
                    Admitted {
                        stream,
                        _permit: permit,
                    },
                    service,
                )))
            }
            Err(_) => {
                tracing::warn!("connection limit reached; refusing a connection");
                ready(Err(io::Error::other("too many connections")))
            }
        }
    }
}

/// A connection that holds one permit until it closes.
struct Admitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
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

/// Serves a plain listener that sends every request to the HTTPS address.
pub async fn redirect_to_https(
    listener: TcpListener,
    https_port: u16,
    shutdown: CancellationToken,
) -> io::Result<()> {
    use axum::http::{header, Request};
    use axum::response::{IntoResponse, Redirect};
    let router = Router::new().fallback(move |req: Request<axum::body::Body>| async move {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        };
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        Redirect::permanent(&format!("https://{host}:{https_port}{path}")).into_response()
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
