//! Churn over plain HTTP: commands, config changes good and bad, and the
//! read-only routes.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::control::{command, note_snapshot};
use crate::ctx::{Ctx, BASES};
use crate::rng::Rng;
use crate::tally::Tally;

pub(crate) async fn http_commands(ctx: Arc<Ctx>, i: u64) {
    let mut rng = Rng::new(500 + i);
    while ctx.pause(rng.ms(50, 700)).await {
        let base = *rng.pick(&BASES);
        let camera = if base == "/cams/gate" { "gate" } else { "yard" };
        match rng.range(0, 10) {
            0..=2 => {
                let (body, status, check) = command(&mut rng, camera);
                let what = format!("POST {base}/control {body}");
                let req = ctx
                    .http
                    .post(ctx.url(&format!("{base}/control")))
                    .body(body.clone());
                if let Some(v) = ctx.expect_json(req, &what, status).await {
                    if let Some(why) = check(&v) {
                        ctx.tally.fail(format!("{what}: {why}"));
                    }
                    if body.contains("snapshot_now") {
                        note_snapshot(&ctx, camera, &v);
                    }
                }
            }
            3 | 4 => config_change(&ctx, &mut rng, base).await,
            _ => {
                let (path, status) = *rng.pick(&[
                    ("/status", 200),
                    ("/cams", 200),
                    ("/healthz", 200),
                    ("/metrics", 200),
                    ("/api/events?limit=20", 200),
                    ("/snaps?limit=10", 200),
                    ("/clips?limit=10", 200),
                    ("/config", 200),
                    ("/snapshot.jpg", 200),
                    ("/nope", 404),
                    ("/snaps/..%2Flookout.db", 400),
                ]);
                // `/healthz`, `/metrics` and `/cams` are the server's, at the root only.
                let root_only = matches!(path, "/healthz" | "/metrics" | "/cams");
                let path = if path == "/nope" && base.is_empty() {
                    "/cams/nope/status".to_string()
                } else if root_only {
                    path.to_string()
                } else {
                    format!("{base}{path}")
                };
                let path = if path.starts_with("/cams/yard/nope") {
                    "/nope".to_string()
                } else {
                    path
                };
                let what = format!("GET {path}");
                if let Some((h, body)) = ctx
                    .expect(ctx.http.get(ctx.url(&path)), &what, status)
                    .await
                {
                    let ct = h
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if path.ends_with("snapshot.jpg")
                        && (!ct.starts_with("image/jpeg") || !body.starts_with(&[0xFF, 0xD8]))
                    {
                        ctx.tally.fail(format!("{what}: not a JPEG ({ct})"));
                    }
                    if status == 404
                        && serde_json::from_slice::<Value>(&body)
                            .map_or(true, |v| v["error"] != "not found")
                    {
                        ctx.tally
                            .fail(format!("{what}: 404 without {{\"error\": \"not found\"}}"));
                    }
                }
            }
        }
    }
}

/// A good or bad partial config; a good one must be applied, a bad one
/// refused with the README's message and nothing changed.
pub(crate) async fn config_change(ctx: &Ctx, rng: &mut Rng, base: &str) {
    let t = rng.range(10, 17);
    let (body, status, want): (String, u16, &str) = match rng.range(0, 8) {
        0 | 1 => (json!({"threshold": t}).to_string(), 200, ""),
        2 => (json!({"cooldown_s": rng.range(3, 7)}).to_string(), 200, ""),
        3 => (
            json!({"threshold": "x"}).to_string(),
            400,
            "threshold must be an integer",
        ),
        4 => (
            json!({"threshold": 1000}).to_string(),
            400,
            "threshold out of range",
        ),
        5 => (
            json!({"bogus": 1}).to_string(),
            400,
            "unknown setting: bogus",
        ),
        6 => (
            json!({"trigger_count": 1}).to_string(),
            400,
            "trigger_count is read-only",
        ),
        _ => ("{threshold".to_string(), 400, "bad json"),
    };
    let what = format!("POST {base}/config {body}");
    let req = ctx
        .http
        .post(ctx.url(&format!("{base}/config")))
        .body(body.clone());
    let Some(v) = ctx.expect_json(req, &what, status).await else {
        return;
    };
    if status == 200 {
        Tally::add(&ctx.tally.config_changes);
        if v["ok"] != true {
            ctx.tally.fail(format!("{what}: {v}"));
        }
    } else if v["error"] != want {
        ctx.tally
            .fail(format!("{what}: expected {{\"error\": {want:?}}}, got {v}"));
    }
}
