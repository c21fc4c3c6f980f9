//! `kill -9` during durable writes, over and over, against the real binary.
//!
//! Each round starts lookout on the same data directory, keeps every kind
//! of durable write going at once (manual snapshots, each also queued for
//! upload to a local receiver; settings changes; counter resets; motion
//! episodes that count triggers and record clips), and kills it without
//! warning at a moment that differs from round to round. The next start
//! must show nothing half-written (every listed snapshot and clip reads and
//! decodes, the settings are whole) and lose nothing acknowledged (every
//! snapshot, setting and reset whose reply came back is there, and every
//! acknowledged snapshot is uploaded in the end).

use crate::common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::receiver::Receiver;
use common::sse::SseClient;
use common::{decode_jpeg, fetch_json, motion_scene, wait_until, Binary};
use serde_json::Value;

/// A deadline for each state waited for; generous for a slow, busy machine.
const WAIT: Duration = Duration::from_secs(30);

/// Rounds of start, write, `kill -9`.
const ROUNDS: u64 = 12;

/// Threshold values the settings writer cycles through; all low enough for
/// the test scene's square to count as motion.
const THRESHOLDS: [u64; 4] = [3, 4, 5, 6];

/// What the writers of one round saw acknowledged, and what was in flight
/// when the process died.
#[derive(Default, Clone)]
struct Acked {
    /// Snapshots whose reply came back, over all rounds.
    snaps: Vec<String>,
    /// The last threshold whose reply came back.
    threshold: Option<u64>,
    /// A threshold sent without a reply yet.
    threshold_in_flight: Option<u64>,
    /// Resets whose reply came back, over all rounds.
    resets: u64,
    /// A reset sent without a reply yet.
    reset_in_flight: bool,
    /// The highest trigger count announced since the last acknowledged
    /// reset (a `motion` event is sent after its count is stored).
    count_floor: u64,
    /// Clips announced as saved, over all rounds.
    clips: Vec<String>,
}

type Shared = Arc<Mutex<Acked>>;

fn lock(acked: &Shared) -> std::sync::MutexGuard<'_, Acked> {
    acked.lock().expect("acked lock")
}

async fn post(client: &reqwest::Client, base: &str, body: String) -> Option<Value> {
    let r = client
        .post(format!("{base}/control"))
        .body(body)
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// Takes snapshots one after the other, recording each acknowledged name.
async fn snapshots(client: reqwest::Client, base: String, acked: Shared) {
    loop {
        let reply = post(&client, &base, r#"{"cmd": "snapshot_now"}"#.into()).await;
        match reply {
            Some(r) if r["ok"] == true => {
                let url = r["url"].as_str().expect("url");
                let name = url.trim_start_matches("/snaps/").to_string();
                lock(&acked).snaps.push(name);
            }
            Some(r) if r["reason"] == "no frame yet" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some(r) => panic!("snapshot refused: {r}"),
            None => return,
        }
    }
}

/// Changes the threshold one value after the other.
async fn settings(client: reqwest::Client, base: String, acked: Shared, round: u64) {
    for k in round.. {
        let value = THRESHOLDS[(k % THRESHOLDS.len() as u64) as usize];
        lock(&acked).threshold_in_flight = Some(value);
        let body = format!(r#"{{"cmd": "set", "threshold": {value}}}"#);
        let Some(reply) = post(&client, &base, body).await else {
            return;
        };
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(reply["threshold"], value, "{reply}");
        let mut a = lock(&acked);
        a.threshold = Some(value);
        a.threshold_in_flight = None;
    }
}

/// Resets the counter now and then.
async fn resets(client: reqwest::Client, base: String, acked: Shared) {
    loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        lock(&acked).reset_in_flight = true;
        let Some(reply) = post(&client, &base, r#"{"cmd": "reset"}"#.into()).await else {
            return;
        };
        assert_eq!(reply["counters"], "reset", "{reply}");
        let mut a = lock(&acked);
        a.resets += 1;
        a.reset_in_flight = false;
        a.count_floor = 0;
    }
}

/// Follows `motion` (trigger counts) and `clip` (saved clips) events.
async fn follow(mut sse: SseClient, acked: Shared) {
    while let Some(msg) = sse.try_next().await {
        if msg.comment {
            continue;
        }
        let d = msg.json();
        let mut a = lock(&acked);
        match msg.event.as_str() {
            // A reset in flight may have been stored before this count.
            "motion" if !a.reset_in_flight => {
                let count = d["count"].as_u64().expect("count");
                a.count_floor = a.count_floor.max(count);
            }
            "clip" if d["ok"] == true => {
                a.clips.push(d["name"].as_str().expect("name").to_string());
            }
            _ => {}
        }
    }
}

/// Every item of `/snaps` or `/clips` (`what`), all pages: a fast machine
/// makes more than one page of snapshots over the rounds, and the oldest
/// would look lost on the first.
async fn list_all(client: &reqwest::Client, base: &str, what: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let url = match &before {
            Some(b) => format!("{base}/{what}?limit=1000&before={b}"),
            None => format!("{base}/{what}?limit=1000"),
        };
        let page = fetch_json(client, &url).await;
        let items = page[what]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: {page}"));
        all.extend(items.iter().cloned());
        match page["next_before"].as_str() {
            Some(b) if !items.is_empty() => before = Some(b.to_string()),
            _ => return all,
        }
    }
}

/// Everything a fresh start shows is whole, and everything acknowledged is
/// there.
async fn check(client: &reqwest::Client, base: &str, acked: &Acked) {
    // Snapshots: every listed one reads and decodes; none acknowledged is
    // missing.
    let listed: HashSet<String> = list_all(client, base, "snaps")
        .await
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect();
    for name in &listed {
        let r = client
            .get(format!("{base}/snaps/{name}"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{name}");
        decode_jpeg(&r.bytes().await.expect("body"));
    }
    for name in &acked.snaps {
        assert!(listed.contains(name), "acknowledged snapshot {name} lost");
    }

    // Clips: every listed one has an index whose first and last frames
    // read (by Range, as the player does) and decode.
    let clips = &list_all(client, base, "clips").await;
    let clip_names: HashSet<&str> = clips.iter().filter_map(|c| c["name"].as_str()).collect();
    for c in clips {
        let name = c["name"].as_str().expect("name");
        let index = fetch_json(client, &format!("{base}/clips/{name}/index")).await;
        let frames = index["frames"]
            .as_array()
            .unwrap_or_else(|| panic!("index of {name}: {index}"));
        assert!(!frames.is_empty(), "{name}: {index}");
        assert_eq!(Some(frames.len() as u64), c["frames"].as_u64(), "{c}");
        for f in [&frames[0], &frames[frames.len() - 1]] {
            let (off, len) = (f[1].as_u64().expect("offset"), f[2].as_u64().expect("len"));
            let r = client
                .get(format!("{base}/clips/{name}"))
                .header("range", format!("bytes={off}-{}", off + len - 1))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 206, "{name} {f}");
            decode_jpeg(&r.bytes().await.expect("body"));
        }
    }
    for name in &acked.clips {
        assert!(clip_names.contains(name.as_str()), "saved clip {name} lost");
    }

    // Settings: whole, and the last acknowledged value (or the one that was
    // on its way when the process died).
    let config = fetch_json(client, &format!("{base}/config")).await;
    let threshold = config["threshold"].as_u64().expect("threshold");
    if let Some(last) = acked.threshold {
        assert!(
            threshold == last || Some(threshold) == acked.threshold_in_flight,
            "threshold {threshold}: acknowledged {last}, in flight {:?}",
            acked.threshold_in_flight
        );
    }

    // Counter: no announced count is lost, unless a reset was on its way;
    // every acknowledged reset is in the history.
    let count = config["trigger_count"].as_u64().expect("trigger_count");
    if !acked.reset_in_flight {
        assert!(
            count >= acked.count_floor,
            "trigger count {count} below the announced {}",
            acked.count_floor
        );
    }
    let resets = fetch_json(client, &format!("{base}/api/events?kind=reset&limit=1000")).await;
    let stored = resets["events"].as_array().map_or(0, Vec::len) as u64;
    assert!(
        stored >= acked.resets,
        "{stored} reset events stored, {} acknowledged",
        acked.resets
    );
}

fn spawn(data: &Path, source: &str, config: &Path, upload: &str) -> Binary {
    Binary::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--source",
            source,
            "--config",
            config.to_str().expect("utf8 path"),
            "--upload-url",
            upload,
            "--upload-on-manual",
        ],
        data,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_durable_writes_loses_nothing_acknowledged_and_shows_nothing_half_written() {
    lookout::install_crypto_provider();
    let started = std::time::Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let scene = tmp.path().join("scene");
    std::fs::create_dir(&scene).expect("scene folder");
    motion_scene(&scene);
    let source = format!("file:{}?fps=10", scene.display());
    let config = tmp.path().join("lookout.toml");
    std::fs::write(
        &config,
        // The writers make thousands of events and over a thousand
        // snapshots on a fast machine: the history and the snapshot folder
        // must keep them all for every acknowledged one to be checked (by
        // default the oldest beyond 10 000 events and 1 000 snapshots go).
        "[settings]\ncooldown_s = 0\nthreshold = 5\nclip_pre_s = 1\nclip_post_s = 0\n\
         save_on_motion = true\nevents_max = 10000000\nmax_snaps = 1000000\n",
    )
    .expect("config");
    let data = tmp.path().join("data");
    let rx = Receiver::start().await;
    let client = reqwest::Client::new();
    let acked: Shared = Arc::default();

    for round in 0..ROUNDS {
        let mut bin = spawn(&data, &source, &config, &rx.url("/frames"));
        let base = bin
            .wait_for("the serving address", |line| {
                assert!(
                    !line.contains("damaged") && !line.contains("ERROR"),
                    "round {round}: {line}"
                );
                line.find("at http://")
                    .map(|at| line[at + 3..].trim().trim_end_matches('/').to_string())
            })
            .await;
        let mut child = bin.drain();
        let so_far = lock(&acked).clone();
        check(&client, &base, &so_far).await;
        {
            let mut a = lock(&acked);
            a.threshold_in_flight = None;
            a.reset_in_flight = false;
        }

        let sse = SseClient::subscribe(&format!("{base}/events")).await;
        let writers = [
            tokio::spawn(follow(sse, acked.clone())),
            tokio::spawn(snapshots(client.clone(), base.clone(), acked.clone())),
            tokio::spawn(settings(client.clone(), base.clone(), acked.clone(), round)),
            tokio::spawn(resets(client.clone(), base.clone(), acked.clone())),
        ];
        // Killed at a different moment each round, once writes are going:
        // after the first acknowledged snapshot of the round, plus 0.1 to
        // 1.3 s in steps that do not line up with the scene's 2 s cycle.
        let before = lock(&acked).snaps.len();
        wait_until(WAIT, || async { lock(&acked).snaps.len() > before }).await;
        tokio::time::sleep(Duration::from_millis(100 + (round * 347) % 1200)).await;
        child.start_kill().expect("kill -9");
        child.wait().await.expect("reaped");
        for w in &writers {
            w.abort();
        }
        for w in writers {
            if let Err(e) = w.await {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    }

    // A last start: everything is checked once more, and every acknowledged
    // snapshot reaches the receiver (it was queued before its reply).
    let mut bin = spawn(&data, &source, &config, &rx.url("/frames"));
    let base = bin.wait_for_url("http").await;
    let child = bin.drain();
    let a = std::mem::take(&mut *lock(&acked));
    check(&client, &base, &a).await;
    wait_until(WAIT, || async {
        let got = rx.hits("/frames");
        let events: Vec<String> = got
            .iter()
            .filter_map(|u| u.part("event"))
            .map(|e| String::from_utf8_lossy(&e).into_owned())
            .collect();
        a.snaps
            .iter()
            .all(|name| events.iter().any(|e| e.contains(name.as_str())))
    })
    .await;
    // Nothing half-written left the queue: every image sent decodes.
    let got = rx.hits("/frames");
    for upload in &got {
        decode_jpeg(&upload.part("image").expect("image part"));
    }
    eprintln!(
        "{ROUNDS} rounds in {:.1} s: {} snapshots, {} resets, {} clips acknowledged, \
         {} uploads received",
        started.elapsed().as_secs_f64(),
        a.snaps.len(),
        a.resets,
        a.clips.len(),
        got.len()
    );
    drop(child);
}
