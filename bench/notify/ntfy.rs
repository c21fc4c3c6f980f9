//! The bench's ntfy server: takes each `PUT` and notes when its headers
//! arrived (the moment the push has left lookout and reached the wire's other
//! end) and when its body was complete, by incident id (from the `Filename`
//! header, `<camera>-<incident>.jpg`). Answers 200 like ntfy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::clock::unix_now;

/// One push as it arrived.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrival {
    /// Unix seconds when the handler got the request's headers.
    pub(crate) headers_at: f64,
    /// Unix seconds when the whole body had been read.
    pub(crate) body_at: f64,
}

/// What came, by incident.
#[derive(Default)]
pub(crate) struct Book {
    /// The first push of each incident.
    pub(crate) first: HashMap<i64, Arrival>,
    /// Pushes for an incident that already had one (ntfy's "ended"
    /// updates, or a retry).
    pub(crate) later: usize,
    /// Requests without a readable `Filename`.
    pub(crate) unnamed: usize,
}

/// The receiver; it stops when dropped.
pub(crate) struct Ntfy {
    addr: SocketAddr,
    pub(crate) book: Arc<Mutex<Book>>,
    _stop: DropGuard,
}

impl Ntfy {
    /// A receiver on a free loopback port.
    pub(crate) async fn start() -> anyhow::Result<Ntfy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let book: Arc<Mutex<Book>> = Arc::default();
        let into = book.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let book = into.clone();
            async move {
                // The handler runs once hyper has parsed the headers, before
                // the body is read: this is when the push got here.
                let headers_at = unix_now();
                let incident = req
                    .headers()
                    .get("filename")
                    .and_then(|v| v.to_str().ok())
                    .and_then(incident_of);
                let body = axum::body::to_bytes(req.into_body(), usize::MAX).await;
                let body_at = unix_now();
                if body.is_err() {
                    return StatusCode::BAD_REQUEST;
                }
                if let Ok(mut book) = book.lock() {
                    match incident {
                        Some(id) if book.first.contains_key(&id) => book.later += 1,
                        Some(id) => {
                            book.first.insert(
                                id,
                                Arrival {
                                    headers_at,
                                    body_at,
                                },
                            );
                        }
                        None => book.unnamed += 1,
                    }
                }
                StatusCode::OK
            }
        });
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Ok(Ntfy {
            addr,
            book,
            _stop: stop.drop_guard(),
        })
    }

    /// The topic URL to give lookout.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/bench-topic", self.addr)
    }

    /// The first push of `incident`, if it came.
    pub(crate) fn arrival(&self, incident: i64) -> Option<Arrival> {
        self.book.lock().ok()?.first.get(&incident).copied()
    }
}

/// The incident id in a `Filename` of `<camera>-<incident>.jpg`.
fn incident_of(filename: &str) -> Option<i64> {
    let stem = filename.strip_suffix(".jpg")?;
    stem.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::incident_of;

    #[test]
    fn the_incident_is_the_number_after_the_last_dash() {
        assert_eq!(incident_of("yard-42.jpg"), Some(42));
        assert_eq!(incident_of("back-yard-7.jpg"), Some(7));
        assert_eq!(incident_of("yard.jpg"), None);
        assert_eq!(incident_of("yard-x.jpg"), None);
    }
}
