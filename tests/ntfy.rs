//! Notifications to ntfy against a real HTTP receiver on loopback: one `PUT`
//! per incident with the picture and the headers ntfy reads, nothing for
//! motion that is not a person, the cooldown, the snooze, and retries that
//! deliver exactly once across a restart.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::receiver::{answer, Hit, Receiver};
use common::sse::SseClient;
use common::{decode_jpeg, motion_scene, wait_until, TestServer};
use serde_json::Value;

/// The synthetic motion loop (an episode every 2 s) notified on motion,
/// with ntfy at `rx`.
async fn motion_server(dir: tempfile::TempDir, rx: &Receiver, cooldown_s: u32) -> TestServer {
    motion_server_with(dir, rx, cooldown_s, Duration::from_millis(50)).await
}

/// [`motion_server`] with retries starting at `retry`.
async fn motion_server_with(
    dir: tempfile::TempDir,
    rx: &Receiver,
    cooldown_s: u32,
    retry: Duration,
) -> TestServer {
    let scene = dir.path().join("scene");
    std::fs::create_dir_all(&scene).unwrap();
    motion_scene(&scene);
    let source = format!("file:{}?fps=10", scene.display());
    let ntfy = rx.url("/yard-topic");
    TestServer::start_with(&source, dir, move |c| {
        c.push.ntfy_url = Some(ntfy);
        c.push = c.push.clone().with_backoff(retry, retry * 2);
        let s = &mut c.cameras[0].settings;
        s.threshold = 5;
        s.cooldown_s = 0;
        s.clip_pre_s = 0;
        s.clip_post_s = 0;
        s.notify_on = lookout::settings::NotifyOn::Motion;
        s.notify_cooldown_s = cooldown_s;
    })
    .await
}

fn puts(rx: &Receiver) -> Vec<Hit> {
    rx.hits("/yard-topic")
        .into_iter()
        .filter(|h| h.status == 200)
        .collect()
}

/// The `notify` events seen so far on `sse`, until `n` of them.
async fn notices(sse: &mut SseClient, n: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    sse.until(Duration::from_secs(60), |m| {
        if m.event == "notify" {
            seen.push(m.json());
        }
        seen.len() >= n
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_motion_incident_is_one_put_with_its_picture_and_ntfy_headers() {
    let rx = Receiver::start().await;
    let server = motion_server(tempfile::tempdir().unwrap(), &rx, 0).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let seen = notices(&mut sse, 2).await;
    for n in &seen {
        assert_eq!(n["status"], "sent", "{n}");
        assert_eq!(n["title"], "Motion at cam", "{n}");
    }
    wait_until(Duration::from_secs(30), || async { puts(&rx).len() >= 2 }).await;
    let hit = &puts(&rx)[0];
    assert_eq!(hit.method, "PUT");
    assert_eq!(hit.header("title"), Some("Motion at cam"));
    assert_eq!(hit.header("priority"), Some("default"));
    assert_eq!(hit.header("tags"), Some("eyes"));
    assert!(
        hit.header("filename").is_some_and(|f| f.ends_with(".jpg")),
        "{:?}",
        hit.headers
    );
    // No public URL: no link a phone could open.
    assert_eq!(hit.header("click"), None);
    let (w, h) = decode_jpeg(&hit.body);
    assert!(w > 0 && h > 0);
    // Each incident once: as many PUTs as `sent` notices, never more.
    let sent = {
        let mut more = notices(&mut sse, 3).await;
        more.retain(|n| n["status"] == "sent");
        more.len() + seen.len()
    };
    wait_until(Duration::from_secs(30), || async {
        puts(&rx).len() >= sent
    })
    .await;
    let status = server.status().await;
    assert!(
        status["notifications"]["sent"].as_u64().unwrap() >= 2,
        "{status}"
    );
    assert_eq!(status["notifications"]["ntfy"], true, "{status}");
    let incidents = server.get_json("/api/incidents?camera=cam").await;
    let first = &incidents["incidents"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let picture = reqwest::get(server.url(first["picture"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(picture.status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_within_the_cooldown_are_one_notification() {
    let rx = Receiver::start().await;
    let server = motion_server(tempfile::tempdir().unwrap(), &rx, 3600).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let seen = notices(&mut sse, 3).await;
    let statuses: Vec<&str> = seen.iter().map(|n| n["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["sent", "merged", "merged"]);
    wait_until(Duration::from_secs(30), || async { !puts(&rx).is_empty() }).await;
    // The merged ones were decided before this: nothing more is coming.
    assert_eq!(puts(&rx).len(), 1);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_camera_buzzes_no_one_until_the_snooze_is_lifted() {
    let rx = Receiver::start().await;
    let server = motion_server(tempfile::tempdir().unwrap(), &rx, 0).await;
    let reply = server.command(r#"{"cmd": "snooze", "minutes": 60}"#).await;
    let until = reply["snoozed_until"].as_f64().expect("snoozed_until");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((until - now - 3600.0).abs() < 60.0, "{reply}");
    let status = server.status().await;
    assert_eq!(
        status["notify"]["snoozed_until"].as_f64(),
        Some(until),
        "{status}"
    );
    let cams = server.get_json("/cams").await;
    assert_eq!(
        cams["cameras"][0]["notify"]["snoozed_until"].as_f64(),
        Some(until)
    );
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let seen = notices(&mut sse, 2).await;
    assert!(seen.iter().all(|n| n["status"] == "snoozed"), "{seen:?}");
    assert!(puts(&rx).is_empty());
    // Bad minutes: the spec's error reply, and the snooze stays.
    let bad = server.command(r#"{"cmd": "snooze", "minutes": -5}"#).await;
    assert_eq!(bad["ok"], false, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("minutes"), "{bad}");
    let lifted = server.command(r#"{"cmd": "snooze", "minutes": 0}"#).await;
    assert_eq!(lifted["snoozed_until"], Value::Null, "{lifted}");
    wait_until(Duration::from_secs(30), || async { !puts(&rx).is_empty() }).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_fails_three_times_gets_the_notification_once_across_a_restart() {
    // 503 three times, then 200: the first try and two retries fail before
    // the restart or after it, and exactly one PUT is accepted.
    let rx = Receiver::start_with(answer(|_, n| {
        if n < 3 {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    // One notification for the whole run: the cooldown merges the rest.
    // Retries a second apart: the first failure is seen and the server
    // stopped long before the service recovers.
    let retry = Duration::from_millis(1000);
    let server = motion_server_with(dir, &rx, 3600, retry).await;
    wait_until(Duration::from_secs(30), || async {
        !rx.hits("/yard-topic").is_empty()
    })
    .await;
    let stopped = server.stop_keep_dir().await;
    let restarted = std::time::Instant::now();
    let server = motion_server_with(stopped.dir, &rx, 3600, retry).await;
    wait_until(Duration::from_secs(30), || async { !puts(&rx).is_empty() }).await;
    wait_until(Duration::from_secs(30), || async {
        server.status().await["notifications"]["queued"] == 0
    })
    .await;
    let hits = rx.hits("/yard-topic");
    assert_eq!(
        puts(&rx).len(),
        1,
        "{:?}",
        hits.iter().map(|h| h.status).collect::<Vec<_>>()
    );
    assert!(hits.len() >= 4, "three failures, then the delivery");
    assert!(
        puts(&rx)[0].at > restarted,
        "delivered by the restarted server"
    );
    server.stop().await.unwrap();
}

/// Builds regression scene `name` (real footage, see scripts/scenes) into
/// `dir` and returns its file.
#[cfg(feature = "person")]
fn scene(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(root.join("scripts/scenes"))
        .arg(dir)
        .arg(name)
        .status()
        .expect("run scripts/scenes (needs ffmpeg)");
    assert!(status.success(), "scripts/scenes failed");
    dir.join(format!("{name}.mjpeg"))
}

/// A camera on regression scene `name` at the default notification
/// settings (people, when the check runs) but no cooldown, with ntfy at `rx`.
#[cfg(feature = "person")]
async fn scene_server(name: &str, rx: &Receiver) -> (tempfile::TempDir, TestServer) {
    let scenes = tempfile::tempdir().unwrap();
    let file = scene(scenes.path(), name);
    let ntfy = rx.url("/yard-topic");
    let server = TestServer::start_with(
        &format!("file:{}?fps=10", file.display()),
        tempfile::tempdir().unwrap(),
        move |c| {
            c.push.ntfy_url = Some(ntfy);
            c.push.public_url = Some("https://cam.example.org".into());
            c.cameras[0].settings.notify_cooldown_s = 0;
        },
    )
    .await;
    (scenes, server)
}

#[cfg(feature = "person")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_walk_of_real_people_is_one_high_priority_put_with_the_person_frame() {
    let rx = Receiver::start().await;
    let (_scenes, server) = scene_server("walkers", &rx).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let mut ends = 0;
    let mut seen = Vec::new();
    sse.until(Duration::from_secs(240), |m| {
        match m.event.as_str() {
            "motion_end" => ends += 1,
            "notify" => seen.push(m.json()),
            _ => {}
        }
        ends >= 2
    })
    .await;
    assert_eq!(seen.len(), 2, "one notice per walk: {seen:?}");
    wait_until(Duration::from_secs(30), || async { puts(&rx).len() >= 2 }).await;
    let hits = puts(&rx);
    assert_eq!(hits.len(), 2, "one PUT per incident, no update");
    for (hit, notice) in hits.iter().zip(&seen) {
        assert_eq!(notice["status"], "sent");
        assert_eq!(notice["kind"], "person");
        assert_eq!(hit.header("title"), Some("Person at cam"));
        assert_eq!(hit.header("priority"), Some("high"));
        assert_eq!(hit.header("tags"), Some("bust_in_silhouette"));
        assert_eq!(
            hit.header("click"),
            Some("https://cam.example.org/?camera=cam")
        );
        decode_jpeg(&hit.body);
    }
    // The picture is the frame the check saw the person in.
    let incidents = server.get_json("/api/incidents").await;
    let list = incidents["incidents"].as_array().unwrap();
    assert!(
        list.iter()
            .take(2)
            .all(|i| i["kind"] == "person" && i["notified"] == "sent"),
        "{incidents}"
    );
    server.stop().await.unwrap();
}

#[cfg(feature = "person")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_car_crossing_notifies_no_one() {
    let rx = Receiver::start().await;
    let (_scenes, server) = scene_server("car", &rx).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let mut seen = Vec::new();
    let mut ended = None;
    sse.until(Duration::from_secs(120), |m| {
        match m.event.as_str() {
            "notify" => seen.push(m.json()),
            "motion_end" => ended = Some(m.json()),
            _ => {}
        }
        ended.is_some()
    })
    .await;
    let ended = ended.unwrap();
    assert_eq!(
        ended["person"], false,
        "the check saw a person in the car: {ended}"
    );
    // A person-only incident is decided at its first person; with none, its
    // end is the last moment a notification could have been queued.
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(server.status().await["notifications"]["queued"], 0);
    assert!(rx.hits("/yard-topic").is_empty());
    let incidents = server.get_json("/api/incidents").await;
    let first = &incidents["incidents"][0];
    assert_eq!(first["kind"], "motion", "{incidents}");
    assert_eq!(first["notified"], Value::Null, "{incidents}");
    server.stop().await.unwrap();
}
