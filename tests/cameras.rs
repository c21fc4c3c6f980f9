//! Several cameras in one server: per-camera routes under /cams/NAME/, the
//! first camera at the seed's root routes, commands that name a camera, one
//! camera's trouble never slowing another, bad camera configs explained, and
//! a single-camera data directory migrated to the first camera.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::sse::{Msg, SseClient};
use common::{ask, decode_jpeg, post, wait_until, ws_connect, MjpegClient, TestServer};
use lookout::config::CameraConfig;
use serde_json::{json, Value};

/// Real ffmpeg as an MJPEG camera, 320x240 at 10 fps.
const FFMPEG: &str = "exec:ffmpeg -hide_banner -loglevel error -re -f lavfi \
                      -i testsrc2=size=320x240:rate=10 -c:v mjpeg -q:v 5 -f mjpeg -";

fn cam(name: &str, source: &str) -> CameraConfig {
    CameraConfig::new(name, source).expect("camera config")
}

/// Starts a server with `cameras` (in order) in a fresh temp dir.
async fn start(cameras: Vec<CameraConfig>) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    start_in(cameras, dir).await
}

async fn start_in(cameras: Vec<CameraConfig>, dir: tempfile::TempDir) -> TestServer {
    TestServer::start_with("synthetic", dir, move |c| c.cameras = cameras).await
}

/// Waits until `path` (a snapshot route) answers 200.
async fn wait_for_frame_at(server: &TestServer, path: &str) {
    let client = reqwest::Client::new();
    let url = server.url(path);
    wait_until(Duration::from_secs(30), || async {
        client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::get(server.url(path)).await.expect("request")
}

async fn get_ok_json(server: &TestServer, path: &str) -> Value {
    let r = get(server, path).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.expect("JSON body")
}

async fn set_config(server: &TestServer, path: &str, patch: Value) -> Value {
    let (status, body) = post(server, path, &patch.to_string()).await;
    assert_eq!(status, 200, "POST {path} {patch}: {body}");
    body
}

/// A JPEG from `path`, decoded: its size.
async fn jpeg_size(server: &TestServer, path: &str) -> (usize, usize) {
    let r = get(server, path).await;
    assert_eq!(r.status(), 200, "GET {path}");
    decode_jpeg(&r.bytes().await.expect("body"))
}

/// The names in a `/snaps` listing.
async fn snap_names(server: &TestServer, path: &str) -> Vec<String> {
    get_ok_json(server, path).await["snaps"]
        .as_array()
        .expect("snaps array")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect()
}

/// Every stored event of a history route (one page of up to 1000).
async fn history(server: &TestServer, path: &str) -> Vec<Value> {
    get_ok_json(server, path).await["events"]
        .as_array()
        .expect("events array")
        .clone()
}

/// `config` of a camera without the moving `frame_count`.
async fn config_of(server: &TestServer, path: &str) -> Value {
    let mut c = get_ok_json(server, path).await;
    c.as_object_mut().expect("object").remove("frame_count");
    c
}

// ---------------------------------------------------------------- SSE ----

/// One SSE message.
fn is_config_of(msg: &Msg, camera: &str, threshold: u64) -> bool {
    let d = msg.json();
    msg.event == "config" && d["camera"] == camera && d["threshold"].as_u64() == Some(threshold)
}

// ---------------------------------------------------------- WebSocket ----

async fn trigger_count(server: &TestServer, camera: &str) -> u64 {
    get_ok_json(server, &format!("/cams/{camera}/config")).await["trigger_count"]
        .as_u64()
        .expect("trigger_count")
}

// -------------------------------------------------------------- tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cameras_are_independent() {
    let server = start(vec![
        cam("yard", "synthetic:?size=320x180&fps=15&motion=always"),
        cam("door", FFMPEG),
    ])
    .await;
    wait_for_frame_at(&server, "/cams/yard/snapshot.jpg").await;
    wait_for_frame_at(&server, "/cams/door/snapshot.jpg").await;

    // Each camera's frames are its own.
    assert_eq!(
        jpeg_size(&server, "/cams/yard/snapshot.jpg").await,
        (320, 180)
    );
    assert_eq!(
        jpeg_size(&server, "/cams/door/snapshot.jpg").await,
        (320, 240)
    );

    let mut yard_events = SseClient::subscribe(&server.url("/cams/yard/events")).await;
    let mut all_events = SseClient::subscribe(&server.url("/events")).await;

    // Own settings: a low threshold (and a long cooldown, so an episode of
    // the always-moving scene never ends) on yard, the highest on door.
    set_config(
        &server,
        "/cams/yard/config",
        json!({"threshold": 2, "cooldown_s": 3600}),
    )
    .await;
    set_config(&server, "/cams/door/config", json!({"threshold": 100})).await;
    let yard = get_ok_json(&server, "/cams/yard/config").await;
    let door = get_ok_json(&server, "/cams/door/config").await;
    assert_eq!(yard["threshold"], 2, "{yard}");
    assert_eq!(yard["cooldown_s"], 3600, "{yard}");
    assert_eq!(door["threshold"], 100, "{door}");
    assert_eq!(door["cooldown_s"], 5, "{door}");
    assert_eq!(
        get_ok_json(&server, "/cams/yard/status").await["threshold"],
        2
    );
    assert_eq!(
        get_ok_json(&server, "/cams/door/status").await["threshold"],
        100
    );

    // Root /events carries both cameras' config events, each naming its camera.
    let seen = all_events
        .until(Duration::from_secs(10), |m| is_config_of(m, "door", 100))
        .await;
    assert!(
        seen.iter().any(|m| is_config_of(m, "yard", 2)),
        "root /events carried yard's config: {seen:?}"
    );
    // /cams/yard/events carries yard's own change, then (after door's) a
    // marker change of yard's, and never door's config in between.
    set_config(&server, "/cams/yard/config", json!({"threshold": 3})).await;
    let seen = yard_events
        .until(Duration::from_secs(10), |m| is_config_of(m, "yard", 3))
        .await;
    assert!(seen.iter().any(|m| is_config_of(m, "yard", 2)), "{seen:?}");
    for m in &seen {
        let camera = &m.json()["camera"];
        assert!(
            camera.is_null() || camera == "yard",
            "/cams/yard/events carried another camera's event: {m:?}"
        );
    }

    // Counters: yard counts its endless episode; a reset of door leaves it.
    wait_until(Duration::from_secs(30), || async {
        trigger_count(&server, "yard").await >= 1
    })
    .await;
    let yard_before = trigger_count(&server, "yard").await;
    let (status, reply) = post(&server, "/cams/door/control", r#"{"cmd": "reset"}"#).await;
    assert_eq!(
        (status, reply),
        (200, json!({"ok": true, "counters": "reset"}))
    );
    assert_eq!(trigger_count(&server, "door").await, 0);
    assert!(trigger_count(&server, "yard").await >= yard_before);
    let (status, _) = post(&server, "/cams/yard/control", r#"{"cmd": "reset"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(trigger_count(&server, "yard").await, 0);

    // snapshot_now on each lands in its own folder and listing only.
    let mut saved = Vec::new();
    for name in ["yard", "door"] {
        let (status, reply) = post(
            &server,
            &format!("/cams/{name}/control"),
            r#"{"cmd": "snapshot_now"}"#,
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        let path = reply["saved"].as_str().expect("saved").to_string();
        let file = path
            .strip_prefix(&format!("snaps/{name}/"))
            .unwrap_or_else(|| panic!("{name}'s snapshot saved at {path}"))
            .to_string();
        assert!(server.data_dir().join(&path).is_file(), "{path} on disk");
        saved.push(file);
    }
    let yard_snaps = snap_names(&server, "/cams/yard/snaps").await;
    let door_snaps = snap_names(&server, "/cams/door/snaps").await;
    assert!(yard_snaps.contains(&saved[0]), "{yard_snaps:?}");
    assert!(!door_snaps.contains(&saved[0]), "{door_snaps:?}");
    assert!(door_snaps.contains(&saved[1]), "{door_snaps:?}");
    assert!(!yard_snaps.contains(&saved[1]), "{yard_snaps:?}");
    assert!(!server
        .data_dir()
        .join("snaps/door")
        .join(&saved[0])
        .exists());
    assert!(!server
        .data_dir()
        .join("snaps/yard")
        .join(&saved[1])
        .exists());
    // Each is served from its camera's route, as a picture of that camera.
    let door_file = format!("/cams/door/snaps/{}", saved[1]);
    assert_eq!(jpeg_size(&server, &door_file).await, (320, 240));
    let r = get(&server, &format!("/cams/yard/snaps/{}", saved[1])).await;
    assert_eq!(r.status(), 404, "door's snapshot is not yard's");

    // Histories hold only their own camera's events (or server-wide ones).
    for name in ["yard", "door"] {
        let events = history(&server, &format!("/cams/{name}/api/events?limit=1000")).await;
        for kind in ["config", "reset", "snapshot"] {
            assert!(
                events.iter().any(|e| e["kind"] == kind),
                "{name}'s history has a {kind} event: {events:?}"
            );
        }
        for e in &events {
            let camera = &e["data"]["camera"];
            assert!(
                camera.is_null() || camera == name,
                "{name}'s history holds {e}"
            );
        }
    }
    // The yard scene moves: its motion is in yard's history, not door's.
    let yard_motion = history(&server, "/cams/yard/api/events?kind=motion").await;
    assert!(!yard_motion.is_empty());
    let door_motion = history(&server, "/cams/door/api/events?kind=motion").await;
    assert!(
        door_motion.iter().all(|e| e["data"]["camera"] == "door"),
        "{door_motion:?}"
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_routes_are_the_first_camera() {
    let server = start(vec![
        cam("first", "synthetic:?size=320x180&fps=10&motion=never"),
        cam("second", "synthetic:?size=160x120&fps=10&motion=never"),
        // Never reachable: only here for its password in `/cams`.
        cam("gate", "http://admin:hunter2@127.0.0.1:9/video.mjpg"),
    ])
    .await;
    server.wait_for_frame().await;
    wait_for_frame_at(&server, "/cams/second/snapshot.jpg").await;

    assert_eq!(
        config_of(&server, "/config").await,
        config_of(&server, "/cams/first/config").await
    );
    set_config(&server, "/config", json!({"threshold": 40})).await;
    assert_eq!(
        get_ok_json(&server, "/cams/first/config").await["threshold"],
        40
    );
    assert_eq!(
        get_ok_json(&server, "/cams/second/config").await["threshold"],
        12
    );
    assert_eq!(
        config_of(&server, "/config").await,
        config_of(&server, "/cams/first/config").await
    );

    assert_eq!(jpeg_size(&server, "/snapshot.jpg").await, (320, 180));
    assert_eq!(
        jpeg_size(&server, "/cams/first/snapshot.jpg").await,
        (320, 180)
    );
    assert_eq!(
        jpeg_size(&server, "/cams/second/snapshot.jpg").await,
        (160, 120)
    );
    let mut stream = MjpegClient::connect(&server.url("/stream.jpg")).await;
    let part = tokio::time::timeout(Duration::from_secs(10), stream.next_part())
        .await
        .expect("a frame in time")
        .expect("a part");
    assert_eq!(decode_jpeg(&part.body), (320, 180));
    drop(stream);

    let status = server.status().await;
    assert_eq!(
        status["threshold"], 40,
        "root /status is the first camera's"
    );
    let names: Vec<&str> = status["cameras"]
        .as_array()
        .expect("cameras in /status")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["first", "second", "gate"]);

    let list = get_ok_json(&server, "/cams").await;
    let cams = list["cameras"].as_array().expect("cameras");
    assert_eq!(cams.len(), 3, "{list}");
    for (c, name) in cams.iter().zip(["first", "second", "gate"]) {
        assert_eq!(c["name"], name, "{list}");
        assert_eq!(c["stream_url"], format!("/cams/{name}/stream.jpg"), "{c}");
        assert_eq!(
            c["snapshot_url"],
            format!("/cams/{name}/snapshot.jpg"),
            "{c}"
        );
        assert_eq!(c["base"], format!("/cams/{name}"), "{c}");
        for key in ["uri", "state", "fps", "viewers", "trigger_count"] {
            assert!(c.get(key).is_some(), "{key} in {c}");
        }
    }
    assert_eq!(cams[0]["state"], "running", "{list}");
    assert!(
        !list.to_string().contains("hunter2"),
        "/cams shows no password: {list}"
    );
    assert!(cams[2]["uri"].as_str().unwrap().contains("127.0.0.1:9"));

    // Root snapshots and history are the first camera's.
    let (status, reply) = post(&server, "/control", r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(status, 200, "{reply}");
    let saved = reply["saved"].as_str().expect("saved");
    let file = saved.strip_prefix("snaps/first/").expect("first's folder");
    assert!(snap_names(&server, "/snaps")
        .await
        .contains(&file.to_string()));
    assert!(snap_names(&server, "/cams/first/snaps")
        .await
        .contains(&file.to_string()));
    assert!(snap_names(&server, "/cams/second/snaps").await.is_empty());
    let root = history(&server, "/api/events?kind=snapshot").await;
    assert_eq!(root.len(), 1, "{root:?}");
    assert_eq!(root[0]["data"]["camera"], "first");
    assert!(history(&server, "/cams/second/api/events?kind=snapshot")
        .await
        .is_empty());
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_can_name_a_camera() {
    let moving = "synthetic:?size=160x120&fps=10&motion=always";
    let mut first = cam("first", moving);
    let mut second = cam("second", moving);
    for c in [&mut first, &mut second] {
        c.settings.threshold = 2;
        c.settings.cooldown_s = 3600;
    }
    let server = start(vec![first, second]).await;
    wait_until(Duration::from_secs(30), || async {
        trigger_count(&server, "first").await >= 1 && trigger_count(&server, "second").await >= 1
    })
    .await;
    let first_before = trigger_count(&server, "first").await;

    let mut ws = ws_connect(&server, "/control").await;
    assert_eq!(
        ask(&mut ws, r#"{"cmd": "reset", "camera": "second"}"#).await,
        json!({"ok": true, "counters": "reset"})
    );
    assert_eq!(trigger_count(&server, "second").await, 0);
    assert!(trigger_count(&server, "first").await >= first_before.max(1));

    // A named camera's settings, over the root socket.
    let reply = ask(
        &mut ws,
        r#"{"cmd": "set", "threshold": 55, "camera": "second", "id": "s"}"#,
    )
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["id"], "s", "{reply}");
    assert_eq!(
        get_ok_json(&server, "/cams/second/config").await["threshold"],
        55
    );
    assert_eq!(
        get_ok_json(&server, "/cams/first/config").await["threshold"],
        2
    );

    // An unknown camera: an error, and the socket stays open.
    assert_eq!(
        ask(&mut ws, r#"{"cmd": "ping", "camera": "nope", "id": 1}"#).await,
        json!({"error": "unknown camera", "id": 1})
    );
    let pong = ask(&mut ws, r#"{"cmd": "ping", "id": 2}"#).await;
    assert_eq!(pong["ok"], true, "{pong}");
    assert_eq!(pong["id"], 2, "{pong}");
    // Without a camera, root commands go to the first.
    assert_eq!(
        ask(&mut ws, r#"{"cmd": "reset"}"#).await,
        json!({"ok": true, "counters": "reset"})
    );
    assert_eq!(trigger_count(&server, "first").await, 0);

    let (status, reply) = post(&server, "/control", r#"{"cmd": "reset", "camera": "nope"}"#).await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["error"], "unknown camera", "{reply}");
    let (status, reply) = post(&server, "/control", r#"{"cmd": "ping", "camera": 7}"#).await;
    assert_eq!(status, 404, "{reply}");

    let r = get(&server, "/cams/nope/status").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("a JSON 404");
    assert!(body["error"].is_string(), "{body}");
    let r = get(&server, "/cams/nope/snapshot.jpg").await;
    assert_eq!(r.status(), 404);
    drop(ws);
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_source_leaves_the_other_at_full_rate() {
    const FPS: f64 = 15.0;
    let server = start(vec![
        cam("a", FFMPEG),
        cam("b", "synthetic:?size=160x120&fps=15&motion=never"),
    ])
    .await;
    wait_for_frame_at(&server, "/cams/a/snapshot.jpg").await;
    wait_for_frame_at(&server, "/cams/b/snapshot.jpg").await;
    let pid = get_ok_json(&server, "/cams/a/status").await["source"]["pid"]
        .as_u64()
        .expect("a's pid");

    let mut viewer = MjpegClient::connect(&server.url("/cams/b/stream.jpg")).await;
    // The first part is the frame already there; count from the next one.
    viewer.next_part().await.expect("a first part");
    let counting = tokio::spawn(async move {
        let window = Duration::from_secs(4);
        let deadline = tokio::time::Instant::now() + window;
        let mut stamps = Vec::new();
        while let Ok(Some(part)) = tokio::time::timeout_at(deadline, viewer.next_part()).await {
            let ts: f64 = part
                .header("x-timestamp")
                .expect("X-Timestamp")
                .parse()
                .expect("a number");
            stamps.push(ts);
        }
        (stamps, window)
    });

    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (stamps, window) = counting.await.expect("counting task");

    // A comes back with a new process.
    wait_until(Duration::from_secs(20), || async {
        let st = get_ok_json(&server, "/cams/a/status").await;
        st["source"]["state"] == "running"
            && st["source"]["restarts"].as_u64() >= Some(1)
            && st["source"]["pid"].as_u64().is_some_and(|p| p != pid)
    })
    .await;
    wait_until(Duration::from_secs(10), || async {
        get_ok_json(&server, "/cams").await["cameras"][0]["state"] == "running"
    })
    .await;

    // B kept its pace the whole time: by the wall clock, and by its own
    // frame timestamps (loose bounds: this checks for stalls, not speed).
    let n = stamps.len();
    let wall_fps = n as f64 / window.as_secs_f64();
    assert!(
        wall_fps >= 0.7 * FPS,
        "b delivered {n} frames in {window:?} ({wall_fps:.1} fps) while a restarted"
    );
    let span = stamps[n - 1] - stamps[0];
    let stamped_fps = (n - 1) as f64 / span;
    assert!(
        span >= 0.7 * window.as_secs_f64(),
        "frames spread over {span:.2} s"
    );
    assert!(stamped_fps >= 0.7 * FPS, "b at {stamped_fps:.1} fps");
    let worst_gap = stamps
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0_f64, f64::max);
    assert!(worst_gap < 1.0, "b stalled for {worst_gap:.2} s");
    server.stop().await.expect("clean stop");
}

/// Builds a single-camera data directory (before cameras had names) by hand.
fn legacy_data_dir(dir: &Path) -> String {
    let frames = tempfile::tempdir().expect("temp dir");
    let jpeg = &common::ffmpeg_jpegs(frames.path(), 1, "160x120")[0];
    let snaps = dir.join("snaps");
    std::fs::create_dir_all(&snaps).expect("snaps folder");
    let name = "manual-1764033000123.jpg".to_string();
    std::fs::copy(jpeg, snaps.join(&name)).expect("old snapshot");

    let db = rusqlite::Connection::open(dir.join("lookout.db")).expect("db");
    db.execute_batch(
        "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE events (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             ts REAL NOT NULL,
             kind TEXT NOT NULL,
             payload TEXT NOT NULL);
         INSERT INTO state (key, value) VALUES ('trigger_count', '7');
         INSERT INTO state (key, value) VALUES ('settings', '{\"threshold\":33}');",
    )
    .expect("legacy layout");
    // Recent events (the history keeps 30 days; older ones are pruned at start).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    for (ago, kind, payload) in [
        (4000.0, "motion", r#"{"count":5,"change":20.5}"#),
        (
            3990.0,
            "motion_end",
            r#"{"count":5,"duration_s":3.0,"peak":25.0}"#,
        ),
        (3000.0, "motion", r#"{"count":6,"change":18.0}"#),
        (
            2000.0,
            "motion",
            r#"{"count":7,"change":30.0,"snapshot":"/snaps/manual-1764033000123.jpg"}"#,
        ),
    ] {
        db.execute(
            "INSERT INTO events (ts, kind, payload) VALUES (?1, ?2, ?3)",
            rusqlite::params![now - ago, kind, payload],
        )
        .expect("legacy event");
    }
    name
}

async fn assert_migrated(server: &TestServer, old: &str) {
    let yard = get_ok_json(server, "/cams/yard/config").await;
    assert_eq!(yard["trigger_count"], 7, "{yard}");
    assert_eq!(yard["threshold"], 33, "{yard}");
    let door = get_ok_json(server, "/cams/door/config").await;
    assert_eq!(door["trigger_count"], 0, "{door}");
    assert_eq!(door["threshold"], 12, "{door}");
    assert_eq!(get_ok_json(server, "/config").await["trigger_count"], 7);

    assert_eq!(snap_names(server, "/cams/yard/snaps").await, [old]);
    assert_eq!(snap_names(server, "/snaps").await, [old]);
    assert!(snap_names(server, "/cams/door/snaps").await.is_empty());
    assert!(server.data_dir().join("snaps/yard").join(old).is_file());
    assert!(!server.data_dir().join("snaps").join(old).exists());
    assert_eq!(
        jpeg_size(server, &format!("/cams/yard/snaps/{old}")).await,
        (160, 120)
    );
    assert_eq!(
        jpeg_size(server, &format!("/snaps/{old}")).await,
        (160, 120)
    );

    let motion = history(server, "/cams/yard/api/events?kind=motion").await;
    let counts: Vec<u64> = motion
        .iter()
        .map(|e| e["data"]["count"].as_u64().expect("count"))
        .collect();
    assert_eq!(counts, [7, 6, 5], "{motion:?}");
    for e in &motion {
        assert_eq!(e["data"]["camera"], "yard", "{e}");
    }
    let ends = history(server, "/cams/yard/api/events?kind=motion_end").await;
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["data"]["camera"], "yard");
    assert_eq!(history(server, "/api/events?kind=motion").await.len(), 3);
    assert!(history(server, "/cams/door/api/events?kind=motion")
        .await
        .is_empty());
    assert!(history(server, "/cams/door/api/events?kind=motion_end")
        .await
        .is_empty());
    for e in history(server, "/cams/door/api/events?limit=1000").await {
        let camera = &e["data"]["camera"];
        assert!(camera.is_null() || camera == "door", "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_camera_data_directory_is_migrated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = legacy_data_dir(dir.path());
    let cameras = || {
        vec![
            cam("yard", "synthetic:?size=160x120&fps=10&motion=never"),
            cam("door", "synthetic:?size=160x120&fps=10&motion=never"),
        ]
    };
    let server = start_in(cameras(), dir).await;
    server.wait_for_frame().await;
    assert_migrated(&server, &old).await;
    let stopped = server.stop_keep_dir().await;

    // Again on the same directory: nothing moves twice, nothing is lost.
    let server = start_in(cameras(), stopped.dir).await;
    server.wait_for_frame().await;
    assert_migrated(&server, &old).await;
    server.stop().await.expect("clean stop");
}

/// Runs the binary with `args`; it must fail fast. Returns its output.
async fn refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
    cmd.args(args)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("LOOKOUT_CAMERAS")
        .env_remove("LOOKOUT_SOURCE")
        .env_remove("LOOKOUT_CONFIG")
        .env_remove("LOOKOUT_LISTEN")
        .env_remove("LOOKOUT_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("lookout {args:?} did not exit within 20 s"))
        .expect("lookout runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !out.status.success(),
        "lookout {args:?} should fail: {text}"
    );
    text
}

#[tokio::test]
async fn bad_camera_configs_are_explained() {
    let e = refused(&["--camera", "Yard=synthetic"]).await;
    assert!(e.contains("\"Yard\"") && e.contains("a-z"), "{e}");
    assert!(e.contains("--camera 1"), "{e}");

    let e = refused(&["--camera", "a=synthetic", "--camera", "a=synthetic"]).await;
    assert!(e.contains("\"a\"") && e.contains("used twice"), "{e}");

    let e = refused(&["--camera", "yard=synthetic", "--camera", "nosource"]).await;
    assert!(
        e.contains("--camera 2") && e.contains("nosource") && e.contains("NAME=SOURCE"),
        "{e}"
    );

    let e = refused(&["--camera", "a=synthetic", "--source", "synthetic"]).await;
    assert!(e.contains("--source") && e.contains("not both"), "{e}");

    let e = refused(&["--camera", "yard=ftp://x"]).await;
    assert!(e.contains("\"yard\"") && e.contains("unknown kind"), "{e}");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("lookout.toml");
    std::fs::write(
        &file,
        "[[camera]]\nname = \"yard\"\nsource = \"synthetic\"\n\n[[camera]]\nname = \"door\"\n",
    )
    .expect("config file");
    let e = refused(&["--config", file.to_str().expect("utf8 path")]).await;
    assert!(
        e.contains("[[camera]] 2") && e.contains("door") && e.contains("no source"),
        "{e}"
    );
}

/// Deleting a snapshot is an event of the camera it belonged to: it names
/// that camera, like every other camera event, so another camera's stream
/// and history do not carry it (and a restart does not give it to the first
/// camera, as `claim_events` does with events without a camera).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_snapshot_names_its_camera() {
    let server = start(vec![
        cam("yard", "synthetic:?size=160x120&fps=10&motion=never"),
        cam("door", "synthetic:?size=160x120&fps=10&motion=never"),
    ])
    .await;
    wait_for_frame_at(&server, "/cams/door/snapshot.jpg").await;
    let (status, reply) = post(&server, "/cams/door/control", r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(status, 200, "{reply}");
    let saved = reply["saved"].as_str().expect("saved");
    let file = saved.strip_prefix("snaps/door/").expect("door's folder");

    let mut all_events = SseClient::subscribe(&server.url("/events")).await;
    let r = reqwest::Client::new()
        .delete(server.url(&format!("/cams/door/snaps/{file}")))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert!(!server.data_dir().join(saved).exists());
    let seen = all_events
        .until(Duration::from_secs(10), |m| m.event == "snapshot_deleted")
        .await;
    let deleted = seen.last().expect("an event").json();
    assert_eq!(deleted["name"], file, "{deleted}");
    assert_eq!(
        deleted["camera"], "door",
        "snapshot_deleted names its camera: {deleted}"
    );
    let yard = history(&server, "/cams/yard/api/events?kind=snapshot_deleted").await;
    assert!(
        yard.is_empty(),
        "door's deletion is in yard's history: {yard:?}"
    );
    // Still door's after a restart (the first camera claims camera-less events).
    let stopped = server.stop_keep_dir().await;
    let server = start_in(
        vec![
            cam("yard", "synthetic:?size=160x120&fps=10&motion=never"),
            cam("door", "synthetic:?size=160x120&fps=10&motion=never"),
        ],
        stopped.dir,
    )
    .await;
    let yard = history(&server, "/cams/yard/api/events?kind=snapshot_deleted").await;
    assert!(yard.is_empty(), "after a restart: {yard:?}");
    let door = history(&server, "/cams/door/api/events?kind=snapshot_deleted").await;
    assert_eq!(door.len(), 1, "{door:?}");
    assert_eq!(door[0]["data"]["camera"], "door");
    server.stop().await.expect("clean stop");
}
