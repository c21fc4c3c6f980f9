//! Churn on `/control`: the commands of the README with their replies
//! checked, over WebSocket (and by `http`), and oversized messages.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use crate::ctx::{chain, Ctx, BASES};
use crate::rng::Rng;
use crate::tally::Tally;

/// One command, and a check of its reply (None: fine).
pub(crate) type Check = Box<dyn Fn(&Value) -> Option<String> + Send>;

pub(crate) fn ok_true(v: &Value) -> Option<String> {
    (v["ok"] != true).then(|| format!("expected ok: true, got {v}"))
}

pub(crate) fn error_is(want: &'static str) -> Check {
    Box::new(move |v: &Value| {
        (v["error"] != want).then(|| format!("expected {{\"error\": {want:?}}}, got {v}"))
    })
}

/// A command for `/control` (WebSocket or POST), its expected HTTP status and
/// reply check. `made` receives the snapshot a `snapshot_now` saved.
pub(crate) fn command(rng: &mut Rng, camera: &str) -> (String, u16, Check) {
    let cam = camera.to_string();
    match rng.range(0, 12) {
        0 => ("{not json".into(), 400, error_is("bad json")),
        1 => (
            json!({"cmd": "ping"}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || !v["pong"].is_number()).then(|| format!("ping: {v}"))
            }) as Check,
        ),
        2 => (
            json!({"cmd": "status"}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || !v["status"]["frames"].is_number())
                    .then(|| format!("status: {v}"))
            }) as Check,
        ),
        3 => (
            json!({"cmd": "reset"}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || v["counters"] != "reset").then(|| format!("reset: {v}"))
            }) as Check,
        ),
        4 => {
            let t = rng.range(10, 17);
            (
                json!({"cmd": "set", "threshold": t}).to_string(),
                200,
                Box::new(move |v: &Value| {
                    (v["ok"] != true || v["threshold"] != t)
                        .then(|| format!("set threshold {t}: {v}"))
                }) as Check,
            )
        }
        5 => (
            json!({"cmd": "set", "threshold": 1000}).to_string(),
            400,
            Box::new(|v: &Value| {
                (v["ok"] != false || v["error"] != "threshold out of range")
                    .then(|| format!("set 1000: {v}"))
            }) as Check,
        ),
        6 => (
            json!({"cmd": "set", "bogus": 1}).to_string(),
            400,
            Box::new(|v: &Value| {
                (v["ok"] != false || v["error"] != "unknown setting: bogus")
                    .then(|| format!("set bogus: {v}"))
            }) as Check,
        ),
        7 => (
            json!({"cmd": "snapshot_now", "camera": cam}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || !v["url"].is_string()).then(|| format!("snapshot_now: {v}"))
            }) as Check,
        ),
        8 => (
            json!({"cmd": "flush_uploads"}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || !v["uploads"].is_object())
                    .then(|| format!("flush_uploads: {v}"))
            }) as Check,
        ),
        9 => (
            json!({"cmd": "dance"}).to_string(),
            400,
            error_is("unknown command"),
        ),
        10 => (
            json!({"cmd": "ping", "camera": "nope"}).to_string(),
            404,
            error_is("unknown camera"),
        ),
        _ => (
            json!({"cmd": "status", "camera": cam}).to_string(),
            200,
            Box::new(ok_true) as Check,
        ),
    }
}

/// Remembers the snapshot a `snapshot_now` reply names, for the snapshot task.
pub(crate) fn note_snapshot(ctx: &Ctx, camera: &str, v: &Value) {
    if let Some(url) = v["url"].as_str() {
        if let Some(name) = url.rsplit('/').next() {
            Tally::add(&ctx.tally.snaps_made);
            let list = if camera == "yard" {
                String::new()
            } else {
                format!("/cams/{camera}")
            };
            if let Ok(mut m) = ctx.tally.made.lock() {
                m.push((list, name.to_string()));
            }
        }
    }
}

pub(crate) async fn ws(ctx: Arc<Ctx>, i: u64) {
    let mut rng = Rng::new(300 + i);
    let ws_base = ctx.base.replacen("http://", "ws://", 1);
    while !ctx.stop.is_cancelled() {
        let base = *rng.pick(&BASES);
        let url = format!("{ws_base}{base}/control");
        Tally::add(&ctx.tally.requests);
        let mut sock = match timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        {
            Ok(Ok((s, _))) => s,
            Ok(Err(e)) => {
                ctx.tally
                    .fail(format!("WebSocket {base}/control: {}", chain(&e)));
                if !ctx.pause(Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                ctx.tally.fail(format!(
                    "WebSocket {base}/control: no handshake within 20 s"
                ));
                continue;
            }
        };
        let camera = if base == "/cams/gate" { "gate" } else { "yard" };
        let n = rng.range(5, 60);
        for k in 0..n {
            let (mut text, _, check) = command(&mut rng, camera);
            // An id is echoed; the bad-JSON reply has none to echo.
            let id = k as i64;
            let with_id = text.starts_with('{')
                && text.ends_with('}')
                && text.len() > 2
                && text != "{not json";
            if with_id {
                text = format!("{},\"id\":{id}}}", &text[..text.len() - 1]);
            }
            let msg = if rng.chance(0.2) {
                Message::Binary(Bytes::from(text.clone().into_bytes()))
            } else {
                Message::Text(text.clone().into())
            };
            Tally::add(&ctx.tally.ws_commands);
            if let Err(e) = sock.send(msg).await {
                ctx.tally.fail(format!("WebSocket send {text}: {e}"));
                break;
            }
            let reply = timeout(Duration::from_secs(30), async {
                loop {
                    match sock.next().await {
                        Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
                        Some(Ok(Message::Binary(b))) => {
                            return Ok(String::from_utf8_lossy(&b).into_owned())
                        }
                        Some(Ok(Message::Close(c))) => return Err(format!("closed: {c:?}")),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("closed".into()),
                    }
                }
            })
            .await;
            let reply = match reply {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    ctx.tally.fail(format!(
                        "WebSocket {base}/control after {text}: {e} (the socket must stay open)"
                    ));
                    break;
                }
                Err(_) => {
                    ctx.tally.fail(format!(
                        "WebSocket {base}/control: no reply to {text} within 30 s"
                    ));
                    break;
                }
            };
            let v: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
            if let Some(why) = check(&v) {
                ctx.tally
                    .fail(format!("WebSocket {base}/control {text}: {why}"));
            }
            if with_id && v["id"] != id {
                ctx.tally
                    .fail(format!("WebSocket {text}: id not echoed: {v}"));
            }
            if text.contains("snapshot_now") {
                note_snapshot(&ctx, camera, &v);
            }
            if !ctx.pause(rng.ms(20, 600)).await {
                break;
            }
        }
        if rng.chance(0.7) {
            let _ = timeout(Duration::from_secs(5), sock.close(None)).await;
        }
        drop(sock);
        if !ctx.pause(rng.ms(100, 1_500)).await {
            return;
        }
    }
}

/// Now and then a WebSocket message over 64 KiB: the socket must close with
/// 1009, and the server go on.
pub(crate) async fn oversized(ctx: Arc<Ctx>) {
    let mut rng = Rng::new(400);
    let url = format!("{}/control", ctx.base.replacen("http://", "ws://", 1));
    while ctx.pause(rng.ms(10_000, 30_000)).await {
        Tally::add(&ctx.tally.requests);
        let Ok(Ok((mut sock, _))) = timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        else {
            ctx.tally
                .fail("WebSocket /control: cannot connect for the oversized message");
            continue;
        };
        let big = format!("{{\"cmd\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
        let _ = sock.send(Message::Text(big.into())).await;
        let code = timeout(Duration::from_secs(20), async {
            loop {
                match sock.next().await {
                    Some(Ok(Message::Close(Some(f)))) => return Some(u16::from(f.code)),
                    Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await;
        if code != Ok(Some(1009)) {
            ctx.tally.fail(format!(
                "a 70 KiB WebSocket message: expected close 1009, got {code:?}"
            ));
        }
    }
}
