//! Where lookout uploads to: the shared receiver (tests/common/receiver.rs)
//! with a plan that fails 30 % of requests (503, 429, 500, or a hang then
//! 503) and hangs before some successes; in drain mode it takes everything
//! at once. It counts each upload it accepted by its key, to find the lost
//! and the doubled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::time::{sleep, Instant};

use crate::receiver::{parts, Plan, Receiver, Request};
use crate::rng::Rng;
use crate::tally::{upload_key, Tally};

/// What the flaky receiver did, and what it got.
pub(crate) struct Flaky {
    /// Take everything at once (the drain after the churn).
    pub(crate) drain: AtomicBool,
    pub(crate) requests: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) hung: AtomicU64,
    /// Deliveries answered 2xx, by upload key.
    pub(crate) delivered: Mutex<HashMap<String, u32>>,
    pub(crate) bad: Mutex<Vec<String>>,
    /// Minutes of the run: a hang past lookout's 60 s request timeout only in
    /// runs long enough to afford one.
    long_hangs: bool,
    last_long_hang: Mutex<Option<Instant>>,
}

impl Flaky {
    /// Starts the receiver on a free loopback port; uploads go to its
    /// `/frames`. It keeps no bodies: a soak runs for hours.
    pub(crate) async fn start(long_hangs: bool) -> (Arc<Flaky>, Receiver) {
        let flaky = Arc::new(Flaky {
            drain: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            hung: AtomicU64::new(0),
            delivered: Mutex::new(HashMap::new()),
            bad: Mutex::new(Vec::new()),
            long_hangs,
            last_long_hang: Mutex::new(None),
        });
        let state = flaky.clone();
        let plan: Plan = Arc::new(move |req: Request| Box::pin(receive(state.clone(), req)));
        (flaky, Receiver::serve(plan).await)
    }

    /// Deliveries so far, all keys counted.
    pub(crate) fn delivered_count(&self) -> u32 {
        self.delivered.lock().map_or(0, |d| d.values().sum::<u32>())
    }

    fn note_bad(&self, what: String) {
        if let Ok(mut b) = self.bad.lock() {
            b.push(what);
        }
    }
}

async fn receive(r: Arc<Flaky>, req: Request) -> Response {
    if req.path != "/frames" {
        return StatusCode::NOT_FOUND.into_response();
    }
    Tally::add(&r.requests);
    let key = match check(&r, &req) {
        Ok(key) => key,
        Err(refusal) => return refusal.into_response(),
    };
    let mut rng = Rng::new(Tally::get(&r.requests));
    if !r.drain.load(Ordering::SeqCst) {
        if let Some(resp) = fail(&r, &mut rng).await {
            return resp;
        }
    }
    if let Ok(mut d) = r.delivered.lock() {
        *d.entry(key).or_insert(0) += 1;
    }
    (StatusCode::OK, axum::Json(json!({"ok": true}))).into_response()
}

/// The upload's key, if it is one: a well-formed multipart form with the
/// event's JSON and a JPEG image (and a clip, for a clip's event); else the
/// refusal.
fn check(r: &Flaky, req: &Request) -> Result<String, (StatusCode, &'static str)> {
    let ct = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.contains("boundary=") {
        r.note_bad(format!("upload without a multipart boundary: {ct:?}"));
        return Err((StatusCode::BAD_REQUEST, "no boundary"));
    }
    let parts = match parts(ct, &req.body) {
        Ok(p) => p,
        Err(e) => {
            r.note_bad(format!("upload not well-formed multipart/form-data: {e}"));
            return Err((StatusCode::BAD_REQUEST, "bad multipart"));
        }
    };
    let event = parts
        .iter()
        .find(|p| p.is_field("event"))
        .and_then(|p| serde_json::from_slice::<Value>(&p.body).ok());
    let image_ok = parts.iter().any(|p| {
        p.is_field("image")
            && p.header("content-type")
                .is_some_and(|c| c.contains("image/jpeg"))
            && p.body.starts_with(&[0xFF, 0xD8])
    });
    let Some(event) = event.filter(|_| image_ok) else {
        r.note_bad("upload without an event JSON and a JPEG image".into());
        return Err((StatusCode::BAD_REQUEST, "bad upload"));
    };
    let kind = event.get("kind").and_then(Value::as_str).unwrap_or("?");
    if kind == "clip"
        && !parts
            .iter()
            .any(|p| p.is_field("clip") && !p.body.is_empty())
    {
        r.note_bad("clip upload without its clip".into());
    }
    Ok(upload_key(&event))
}

/// A failure on purpose, or `None` to succeed (perhaps after a slow while).
async fn fail(r: &Flaky, rng: &mut Rng) -> Option<Response> {
    if r.long_hangs && long_hang_due(r, rng) {
        // At most one hang past lookout's 60 s request timeout every 10
        // minutes: lookout gives up, this answer goes nowhere and the item
        // is retried.
        Tally::add(&r.hung);
        Tally::add(&r.failed);
        sleep(Duration::from_secs(75)).await;
        return Some((StatusCode::SERVICE_UNAVAILABLE, "hung").into_response());
    }
    let roll = rng.range(0, 100);
    if roll < 30 {
        Tally::add(&r.failed);
        return Some(match roll {
            0..=14 => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
            15..=19 => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response(),
            20..=24 => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
            _ => {
                Tally::add(&r.hung);
                sleep(rng.ms(2000, 8000)).await;
                (StatusCode::SERVICE_UNAVAILABLE, "hung").into_response()
            }
        });
    }
    if roll < 35 {
        // A slow success: well inside lookout's request timeout, so the
        // answer always reaches it (no retry, no double delivery).
        Tally::add(&r.hung);
        sleep(rng.ms(2000, 8000)).await;
    }
    None
}

/// Whether this request is the one long hang of the last 10 minutes.
fn long_hang_due(r: &Flaky, rng: &mut Rng) -> bool {
    match r.last_long_hang.lock() {
        Ok(mut last) => {
            let due = last.is_none_or(|t| t.elapsed() > Duration::from_secs(600));
            if due && rng.chance(0.05) {
                *last = Some(Instant::now());
                true
            } else {
                false
            }
        }
        Err(_) => false,
    }
}
