//! Churn on snapshots and clips: listed, read, deleted, read by range.

use std::sync::Arc;

use serde_json::Value;

use crate::ctx::{chain, Ctx};
use crate::rng::Rng;
use crate::tally::Tally;

/// Lists both cameras' snapshots, reads some (and their thumbnails), deletes
/// some, and reads a clip and its index.
pub(crate) async fn snapshots(ctx: Arc<Ctx>) {
    let mut rng = Rng::new(600);
    while ctx.pause(rng.ms(500, 2_500)).await {
        let list = *rng.pick(&["", "/cams/gate"]);
        let what = format!("GET {list}/snaps");
        let Some(v) = ctx
            .expect_json(
                ctx.http.get(ctx.url(&format!("{list}/snaps?limit=30"))),
                &what,
                200,
            )
            .await
        else {
            continue;
        };
        // Each entry as listed: name, url, thumbnail url.
        let entries: Vec<[String; 3]> = v["snaps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| {
                        let f = |k: &str| s[k].as_str().map(str::to_string);
                        Some([f("name")?, f("url")?, f("thumb")?])
                    })
                    .collect()
            })
            .unwrap_or_default();
        let names: Vec<String> = entries.iter().map(|e| e[0].clone()).collect();
        for _ in 0..entries.len().min(4) {
            let [name, url, thumb] = rng.pick(&entries).clone();
            let path = if rng.chance(0.3) { thumb } else { url };
            Tally::add(&ctx.tally.requests);
            let got = match ctx.http.get(ctx.url(&path)).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body = r.bytes().await.unwrap_or_default();
                    (status, body)
                }
                Err(e) => {
                    ctx.tally.fail(format!("GET {path}: {}", chain(&e)));
                    continue;
                }
            };
            if got.0 == 200 && got.1.starts_with(&[0xFF, 0xD8]) {
                Tally::add(&ctx.tally.snaps_read);
                continue;
            }
            // Retention may have removed it since the listing: a failure only
            // if it is still listed.
            let still = ctx
                .http
                .get(ctx.url(&format!("{list}/snaps?limit=1000")))
                .send()
                .await
                .ok();
            let listed = match still {
                Some(r) => r.json::<Value>().await.ok().is_some_and(|v| {
                    v["snaps"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|s| s["name"] == name.as_str()))
                }),
                None => true,
            };
            if listed {
                ctx.tally.fail(format!(
                    "listed snapshot {path} cannot be read: HTTP {}",
                    got.0
                ));
            }
        }
        // Delete some of what the commands made, and now and then a motion
        // snapshot; a deleted one must be gone.
        let made: Vec<(String, String)> = ctx
            .tally
            .made
            .lock()
            .map(|mut m| {
                let k = m.len().min(rng.range(0, 4) as usize);
                m.drain(..k).collect()
            })
            .unwrap_or_default();
        let mut doomed = made;
        if rng.chance(0.2) && !names.is_empty() {
            doomed.push((list.to_string(), rng.pick(&names).clone()));
        }
        for (l, name) in doomed {
            let path = format!("{l}/snaps/{name}");
            Tally::add(&ctx.tally.requests);
            match ctx.http.delete(ctx.url(&path)).send().await {
                Ok(r) if r.status().is_success() => {
                    Tally::add(&ctx.tally.snaps_deleted);
                    let _ = ctx
                        .expect(
                            ctx.http.get(ctx.url(&path)),
                            &format!("GET {path} after DELETE"),
                            404,
                        )
                        .await;
                }
                // Retention got there first.
                Ok(r) if r.status() == 404 => {}
                Ok(r) => ctx
                    .tally
                    .fail(format!("DELETE {path}: HTTP {}", r.status())),
                Err(e) => ctx.tally.fail(format!("DELETE {path}: {}", chain(&e))),
            }
        }
        if rng.chance(0.3) {
            clip(&ctx, &mut rng).await;
        }
    }
}

/// Reads one listed clip's index and its first bytes by `Range`.
pub(crate) async fn clip(ctx: &Ctx, rng: &mut Rng) {
    let list = *rng.pick(&["", "/cams/gate"]);
    let Some(v) = ctx
        .expect_json(
            ctx.http.get(ctx.url(&format!("{list}/clips?limit=5"))),
            "GET /clips",
            200,
        )
        .await
    else {
        return;
    };
    let Some(name) = v["clips"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|c| c["name"].as_str())
    else {
        return;
    };
    let path = format!("{list}/clips/{name}");
    Tally::add(&ctx.tally.requests);
    let resp = ctx
        .http
        .get(ctx.url(&path))
        .header("range", "bytes=0-99")
        .send()
        .await;
    match resp {
        Ok(r) if r.status() == 206 => {
            Tally::add(&ctx.tally.clips_read);
            let _ = r.bytes().await;
        }
        // Retention removes the oldest clips; the newest can only be gone if
        // retention outran us by a whole clip.
        Ok(r) if r.status() == 404 => {}
        Ok(r) => ctx
            .tally
            .fail(format!("GET {path} with Range: HTTP {}", r.status())),
        Err(e) => ctx.tally.fail(format!("GET {path}: {}", chain(&e))),
    }
    Tally::add(&ctx.tally.requests);
    match ctx.http.get(ctx.url(&format!("{path}/index"))).send().await {
        Ok(r) if r.status() == 200 || r.status() == 404 => {
            let _ = r.bytes().await;
        }
        Ok(r) => ctx
            .tally
            .fail(format!("GET {path}/index: HTTP {}", r.status())),
        Err(e) => ctx.tally.fail(format!("GET {path}/index: {}", chain(&e))),
    }
}
