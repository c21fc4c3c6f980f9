//! The person check over real sockets: real walkers give a `person` event in
//! each of their motion episodes, the synthetic scene's ball never does, and
//! checks on every analysed frame never slow the stream.
#![cfg(feature = "person")]

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::sse::SseClient;
use common::{post, wait_until, MjpegClient, TestServer};

/// Builds the `walkers` regression scene (real people cut out of OpenCV's
/// `vtest.avi`, walking at 10-16 s, 28-34 s and 46-52 s) into `dir`.
fn walkers(dir: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(root.join("scripts/scenes"))
        .arg(dir)
        .arg("walkers")
        .status()
        .expect("run scripts/scenes (needs ffmpeg)");
    assert!(status.success(), "scripts/scenes failed");
    dir.join("walkers.mjpeg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_walk_of_real_people_gives_a_person_event() {
    let scenes = tempfile::tempdir().unwrap();
    let file = walkers(scenes.path());
    let server = TestServer::start(&format!("file:{}?fps=10", file.display())).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    // Two walks (the file loops; the first two are enough), each an episode.
    let mut ends = Vec::new();
    let mut persons = Vec::new();
    let msgs = sse
        .until(Duration::from_secs(240), |m| {
            if m.event == "motion_end" {
                ends.push(m.json());
            }
            ends.len() >= 2
        })
        .await;
    for m in &msgs {
        if m.event == "person" {
            persons.push(m.json());
        }
    }
    for end in &ends {
        assert_eq!(
            end["person"], true,
            "a walk's episode without a person: {end}"
        );
        assert!(end["person_max_score"].as_f64().unwrap() >= 0.5, "{end}");
    }
    // The checks ran on their own thread, at a lower priority than the
    // streams (Linux's nice, field 19 of the thread's stat).
    let nice = std::fs::read_dir("/proc/self/task")
        .expect("threads")
        .flatten()
        .find(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "person")
        })
        .and_then(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().nth(16)?.parse::<i32>().ok()
        });
    assert_eq!(
        nice,
        Some(lookout::motion::check::NICE),
        "the person thread's nice"
    );
    assert_eq!(
        persons.len(),
        2,
        "one person event per episode: {persons:?}"
    );
    for (i, p) in persons.iter().enumerate() {
        assert_eq!(p["count"], i as u64 + 1, "{p}");
        assert!(p["score"].as_f64().unwrap() >= 0.5, "{p}");
        let b: Vec<f64> = serde_json::from_value(p["box"].clone()).unwrap();
        assert!(
            b.len() == 4 && b.iter().all(|v| (0.0..=1.0).contains(v)) && b[2] > 0.0 && b[3] > 0.0,
            "{p}"
        );
        // The snapshot is the frame that was checked, saved as a person
        // snapshot, and it is served.
        let snap = p["snapshot"].as_str().expect("a person snapshot");
        assert!(snap.contains("/person-"), "{snap}");
        let resp = reqwest::get(server.url(snap)).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let status = server.status().await;
    assert_eq!(status["person"]["available"], true, "{status}");
    assert!(status["person_count"].as_u64().unwrap() >= 2, "{status}");
    let config = server.get_json("/config").await;
    assert!(config["person_count"].as_u64().unwrap() >= 2, "{config}");
    let history = server.get_json("/api/events?kind=person").await;
    assert!(
        history["events"].as_array().unwrap().len() >= 2,
        "{history}"
    );
    let people = server.get_json("/snaps?trigger=person").await;
    assert!(people["snaps"].as_array().unwrap().len() >= 2, "{people}");
    // `reset` clears both counters, in one go.
    let reply = server.command(r#"{"cmd":"reset"}"#).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let config = server.get_json("/config").await;
    assert_eq!(config["person_count"], 0, "{config}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synthetic_ball_is_not_a_person() {
    let server = TestServer::start("synthetic:?size=640x480&fps=10").await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let msgs = sse
        .until(Duration::from_secs(120), |m| m.event == "motion_end")
        .await;
    let end = msgs.last().unwrap().json();
    assert_eq!(end["person"], false, "{end}");
    assert!(end["person_max_score"].as_f64().unwrap() < 0.5, "{end}");
    assert!(msgs.iter().all(|m| m.event != "person"), "{msgs:?}");
    let status = server.status().await;
    assert!(
        status["person"]["checks"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert_eq!(status["person_count"], 0, "{status}");
    let history = server.get_json("/api/events?kind=person").await;
    assert_eq!(history["events"], serde_json::json!([]), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_on_every_analysed_frame_never_slow_the_stream() {
    let server = TestServer::start("synthetic:?size=640x480&fps=10&motion=always").await;
    // A check on every analysed frame (when the last one is done).
    let (code, reply) = post(&server, "/config", r#"{"person_checks_per_s": 10}"#).await;
    assert_eq!(code, 200, "{reply}");
    server.wait_for_frame().await;
    let mut viewers = Vec::new();
    for _ in 0..50 {
        viewers.push(MjpegClient::connect(&server.url("/stream.jpg")).await);
    }
    // Checks are running.
    wait_until(Duration::from_secs(60), || async {
        server.status().await["person"]["checks"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    })
    .await;
    let before = server.status().await;
    let checks_before = before["person"]["checks"].as_u64().unwrap();
    // The viewers count their frames until told to stop: after at least 6 s
    // and 3 more checks, however long those take on a slower, busier machine
    // (the check runs at nice 10, behind everything else).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let counting: Vec<_> = viewers
        .into_iter()
        .map(|mut v| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                loop {
                    tokio::select! {
                        part = v.next_part() => match part {
                            Some(_) => n += 1,
                            None => break,
                        },
                        _ = stop.changed() => break,
                    }
                }
                n
            })
        })
        .collect();
    let start = tokio::time::Instant::now();
    wait_until(Duration::from_secs(120), || async {
        start.elapsed() >= Duration::from_secs(6)
            && server.status().await["person"]["checks"]
                .as_u64()
                .unwrap_or(0)
                >= checks_before + 3
    })
    .await;
    let after = server.status().await;
    stop_tx.send(true).unwrap();
    let mut got = Vec::new();
    for c in counting {
        got.push(c.await.unwrap());
    }
    let frames = after["frames"].as_u64().unwrap() - before["frames"].as_u64().unwrap();
    let checks = after["person"]["checks"].as_u64().unwrap() - checks_before;
    assert!(checks >= 3, "checks ran meanwhile: {checks}");
    assert!(frames >= 30, "the camera kept its rate: {frames} frames");
    // Every viewer got (nearly) every frame the camera made meanwhile; the
    // window's edges may cost a frame or two.
    let min = got.iter().min().copied().unwrap_or(0);
    assert!(
        min * 10 >= frames * 8,
        "a viewer got {min} of {frames} frames while checks ran: {got:?}"
    );
}
