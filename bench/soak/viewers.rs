//! Churn on the MJPEG stream: viewers that watch, read slowly or stop
//! reading.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::{sleep, Instant};

use crate::ctx::{chain, Ctx, BASES};
use crate::rng::Rng;
use crate::tally::Tally;

pub(crate) async fn viewer(ctx: Arc<Ctx>, i: u64) {
    let mut rng = Rng::new(200 + i);
    while !ctx.stop.is_cancelled() {
        let base = *rng.pick(&BASES);
        let fps = if rng.chance(0.3) { "?fps=2" } else { "" };
        let path = format!("{base}/stream.jpg{fps}");
        // 0: watches, 1: reads slowly, 2: stops reading (a phone gone to sleep).
        let mode = i % 3;
        Tally::add(&ctx.tally.requests);
        Tally::add(&ctx.tally.viewers);
        let resp = match ctx.stream.get(ctx.url(&path)).send().await {
            Ok(r) => r,
            Err(e) => {
                ctx.tally.fail(format!("GET {path}: {}", chain(&e)));
                if !ctx.pause(Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if resp.status() != 200 || !ct.starts_with("multipart/x-mixed-replace") {
            ctx.tally
                .fail(format!("GET {path}: HTTP {} {ct}", resp.status()));
            if !ctx.pause(Duration::from_secs(1)).await {
                return;
            }
            continue;
        }
        let mut body = resp.bytes_stream();
        let stay = match mode {
            0 => rng.ms(1_000, 10_000),
            1 => rng.ms(5_000, 15_000),
            _ => rng.ms(10_000, 40_000),
        };
        let until = Instant::now() + stay;
        // A first frame must come within 20 s even from the camera that is
        // restarting (it restarts within a second; the last frame stays on
        // show meanwhile).
        let first_by = Instant::now() + Duration::from_secs(20);
        let mut frames = 0u64;
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let wait_until = if frames == 0 {
                first_by.max(until)
            } else {
                until
            };
            let chunk = tokio::select! {
                c = body.next() => c,
                _ = sleep(wait_until.saturating_duration_since(Instant::now())) => break,
                _ = ctx.stop.cancelled() => break,
            };
            match chunk {
                Some(Ok(c)) => {
                    tail.extend_from_slice(&c);
                    let n = tail.windows(8).filter(|w| *w == b"--frame\r").count() as u64;
                    frames += n;
                    // Keep 7 bytes: a boundary cut by the chunk's end, never a whole one.
                    let keep = tail.len().saturating_sub(7);
                    tail.drain(..keep);
                }
                Some(Err(e)) => {
                    ctx.tally
                        .fail(format!("{path}: stream broke: {}", chain(&e)));
                    break;
                }
                None => {
                    ctx.tally
                        .fail(format!("{path}: stream ended by the server"));
                    break;
                }
            }
            if frames > 0 && mode == 1 {
                sleep(rng.ms(300, 900)).await;
            }
            if frames > 0 && mode == 2 {
                // Holds the connection without reading until it leaves.
                tokio::select! {
                    _ = sleep(until.saturating_duration_since(Instant::now())) => {}
                    _ = ctx.stop.cancelled() => {}
                }
                break;
            }
        }
        if frames == 0 && !ctx.stop.is_cancelled() {
            ctx.tally.fail(format!("{path}: no frame within 20 s"));
        }
        ctx.tally.frames.fetch_add(frames, Ordering::Relaxed);
        drop(body);
        if !ctx.pause(rng.ms(100, 2_000)).await {
            return;
        }
    }
}
