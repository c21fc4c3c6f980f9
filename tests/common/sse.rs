//! The one SSE reader of the tests and the bench programs: a strict parser
//! over a real HTTP response, the tests' client with deadlines on top.
//!
//! The integration tests reach it as `common::sse`; `bench/loadgen.rs` (its
//! `sse` load) and `bench/soak` include this same file with `#[path]`, so
//! every program that reads lookout's event stream reads it the same way.
//! It uses only what the bench programs have too (no test harness items),
//! and its items are `pub(crate)` because it is a private module in each.

use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// One SSE message as received.
#[derive(Debug, Default, Clone)]
pub(crate) struct Msg {
    /// `message` unless an `event:` line names it.
    pub(crate) event: String,
    pub(crate) id: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub(crate) data: String,
    pub(crate) retry: Option<String>,
    /// It had a comment line (`: ...`), as the keepalive and the hello have.
    pub(crate) comment: bool,
}

impl Msg {
    /// The data as JSON (`null` when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }

    /// The id as a number, for the ids lookout gives (`None` without one).
    pub(crate) fn id_number(&self) -> Option<i64> {
        self.id.as_deref()?.trim().parse().ok()
    }
}

/// Why an event stream could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SseError {
    #[error("the event stream broke: {0}")]
    Body(#[from] reqwest::Error),
    /// The stream is `text/event-stream`, UTF-8 by definition.
    #[error("a line of the event stream is not UTF-8")]
    NotUtf8,
}

/// Bytes in, messages out, as the HTML standard's event-stream parser reads
/// them: a line ends at LF (a CR before it dropped), a blank line ends a
/// message, `field: value` loses one space after the colon, a line starting
/// with `:` is a comment. A message is whatever came since the last blank
/// line, comments included, so the tests can see the hello and keepalives.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    pending: BytesMut,
    /// The message being read, if a line of it came.
    msg: Option<Msg>,
    /// Its `data:` lines so far.
    data_lines: usize,
}

impl Parser {
    /// Adds bytes as they came off the wire.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next whole message, if the bytes so far end one.
    pub(crate) fn next_msg(&mut self) -> Option<Result<Msg, SseError>> {
        loop {
            let end = self.pending.iter().position(|&b| b == b'\n')?;
            let raw = self.pending.split_to(end + 1);
            let Ok(line) = std::str::from_utf8(&raw[..end]) else {
                return Some(Err(SseError::NotUtf8));
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                self.data_lines = 0;
                match self.msg.take() {
                    Some(msg) => return Some(Ok(msg)),
                    None => continue,
                }
            }
            let msg = self.msg.get_or_insert_with(|| Msg {
                event: "message".into(),
                ..Msg::default()
            });
            if line.starts_with(':') {
                msg.comment = true;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => msg.event = value.to_string(),
                "id" => msg.id = Some(value.to_string()),
                "data" => {
                    // Data lines are joined by LF; an empty one counts too.
                    if self.data_lines > 0 {
                        msg.data.push('\n');
                    }
                    self.data_lines += 1;
                    msg.data.push_str(value);
                }
                "retry" => msg.retry = Some(value.to_string()),
                _ => {}
            }
        }
    }
}

/// The messages of one response body.
pub(crate) struct Events {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    parser: Parser,
}

impl Events {
    /// Reads `resp`'s body as an event stream.
    pub(crate) fn new(resp: reqwest::Response) -> Events {
        Events {
            body: Box::pin(resp.bytes_stream()),
            parser: Parser::default(),
        }
    }

    /// The next message (comments included), `None` once the body ended.
    /// Cancel-safe: dropped while it waits, it loses nothing (bytes are
    /// taken off the body only where the parser gets them at once), so it
    /// can race a deadline or a stop in `select!`.
    pub(crate) async fn next(&mut self) -> Option<Result<Msg, SseError>> {
        loop {
            if let Some(msg) = self.parser.next_msg() {
                return Some(msg);
            }
            match self.body.next().await? {
                Ok(chunk) => self.parser.push(&chunk),
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// The tests' client: one subscription, read with deadlines; it panics on
/// what a test must not see (a refused subscription, bytes not UTF-8).
pub(crate) struct SseClient {
    events: Events,
    pub(crate) headers: reqwest::header::HeaderMap,
}

impl SseClient {
    /// Opens `url`, with `Last-Event-ID` when given.
    pub(crate) async fn connect(url: &str, last_event_id: Option<i64>) -> SseClient {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.expect("connect events");
        assert_eq!(resp.status(), 200, "{url}");
        SseClient {
            headers: resp.headers().clone(),
            events: Events::new(resp),
        }
    }

    /// Opens `url` and reads the `retry:` hello: once it is here, the
    /// subscriber is on the bus and sees every later event.
    pub(crate) async fn subscribe(url: &str) -> SseClient {
        let mut client = Self::connect(url, None).await;
        client.next(Duration::from_secs(10)).await;
        client
    }

    /// The next message (comments included), within `limit`.
    pub(crate) async fn next(&mut self, limit: Duration) -> Msg {
        tokio::time::timeout(limit, self.try_next())
            .await
            .expect("an SSE message in time")
            .expect("stream open")
    }

    /// The next message (comments included), or `None` once the stream
    /// ended (the server went away).
    pub(crate) async fn try_next(&mut self) -> Option<Msg> {
        match self.events.next().await? {
            Ok(msg) => Some(msg),
            Err(SseError::NotUtf8) => panic!("an SSE line that is not UTF-8"),
            Err(SseError::Body(_)) => None,
        }
    }

    /// The next message of `kind`, skipping others (comments, level, ...).
    pub(crate) async fn next_of(&mut self, kind: &str, limit: Duration) -> Msg {
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
    pub(crate) async fn until(
        &mut self,
        limit: Duration,
        mut stop: impl FnMut(&Msg) -> bool,
    ) -> Vec<Msg> {
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
