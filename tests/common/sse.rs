//! A strict little SSE reader over a real HTTP response.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use serde_json::Value;

/// One SSE message as received.
#[derive(Debug, Default, Clone)]
pub struct Msg {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
    pub retry: Option<String>,
    pub comment: bool,
}

impl Msg {
    /// The data as JSON (`null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

pub struct SseClient {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: BytesMut,
    pub headers: reqwest::header::HeaderMap,
}

impl SseClient {
    /// Opens `url`, with `Last-Event-ID` when given.
    pub async fn connect(url: &str, last_event_id: Option<i64>) -> SseClient {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.expect("connect events");
        assert_eq!(resp.status(), 200, "{url}");
        SseClient {
            headers: resp.headers().clone(),
            body: Box::pin(resp.bytes_stream()),
            buf: BytesMut::new(),
        }
    }

    /// Opens `url` and reads the `retry:` hello: once it is here, the
    /// subscriber is on the bus and sees every later event.
    pub async fn subscribe(url: &str) -> SseClient {
        let mut client = Self::connect(url, None).await;
        client.next(Duration::from_secs(10)).await;
        client
    }

    /// The next message (comments included), within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Msg {
        tokio::time::timeout(limit, self.try_next())
            .await
            .expect("an SSE message in time")
            .expect("stream open")
    }

    /// The next message (comments included), or `None` once the stream
    /// ended (the server went away).
    pub async fn try_next(&mut self) -> Option<Msg> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block = self.buf.split_to(end + 2);
                let text = String::from_utf8(block.to_vec()).expect("utf8");
                let mut msg = Msg {
                    event: "message".into(),
                    ..Msg::default()
                };
                for line in text.lines() {
                    if line.starts_with(':') {
                        msg.comment = true;
                    } else if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v).to_string();
                        match k {
                            "event" => msg.event = v,
                            "id" => msg.id = Some(v),
                            "data" => msg.data.push_str(&v),
                            "retry" => msg.retry = Some(v),
                            _ => {}
                        }
                    }
                }
                return Some(msg);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// The next message of `kind`, skipping others (comments, level, ...).
    pub async fn next_of(&mut self, kind: &str, limit: Duration) -> Msg {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self.next(left).await;
            if !msg.comment && msg.event == kind {
                return msg;
            }
        }
    }

    /// Events (no comments) until `stop` holds for one, which is included.
    pub async fn until(&mut self, limit: Duration, mut stop: impl FnMut(&Msg) -> bool) -> Vec<Msg> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self.next(left).await;
            if msg.comment && msg.data.is_empty() {
                continue;
            }
            let done = stop(&msg);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
}
