//! A local upload receiver: answers every POST with 200 and keeps what came
//! (the `Content-Type` and the body), for tests that follow frames out of
//! lookout's upload queue.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{header, HeaderMap};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Upload {
    pub content_type: String,
    pub body: Bytes,
}

impl Upload {
    /// The body of the multipart part named `name`, if there is one.
    pub fn part(&self, name: &str) -> Option<&[u8]> {
        let boundary = self
            .content_type
            .split("boundary=")
            .nth(1)?
            .trim_matches('"');
        let delimiter = format!("--{boundary}");
        let body: &[u8] = &self.body;
        let marker = format!("name=\"{name}\"");
        let at = find(body, marker.as_bytes())?;
        let start = at + find(&body[at..], b"\r\n\r\n")? + 4;
        let len = find(&body[start..], format!("\r\n{delimiter}").as_bytes())?;
        Some(&body[start..start + len])
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The receiver; it serves until the test's runtime ends.
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Upload>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/frames", listener.local_addr().expect("addr"));
        let got: Arc<Mutex<Vec<Upload>>> = Arc::default();
        let into = got.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let into = into.clone();
            async move {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                into.lock()
                    .expect("receiver lock")
                    .push(Upload { content_type, body });
                "ok"
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, got }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Upload> {
        self.got.lock().expect("receiver lock").clone()
    }
}
