//! `GET /metrics` over real sockets: counters that move when frames, motion
//! episodes and requests happen, per camera; route labels that are patterns;
//! a real scrape that `promtool check metrics` accepts; and the same door as
//! `/status` (a long-lived token as Prometheus' bearer credentials).

use crate::common;

use std::time::Duration;

use common::{wait_until, TestServer};
use lookout::config::CameraConfig;

/// The periodic scene: it opens its cycle with 4 s of movement, which
/// triggers at the default threshold.
const MOVING: &str = "synthetic:?size=320x180&fps=10";
/// A still scene: frames, never an episode.
const STILL: &str = "synthetic:?size=160x120&fps=10&motion=never";
const PASSWORD: &str = "correct horse battery";

/// Two cameras: `yard` (moving, also at the root routes) and `door` (still).
async fn two_cameras() -> TestServer {
    let cameras = vec![
        CameraConfig::new("yard", MOVING).expect("camera config"),
        CameraConfig::new("door", STILL).expect("camera config"),
    ];
    TestServer::start_with("synthetic", tempfile::tempdir().unwrap(), move |c| {
        c.cameras = cameras
    })
    .await
}

async fn scrape(server: &TestServer) -> String {
    let r = reqwest::get(server.url("/metrics")).await.expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.expect("body")
}

/// The value of `series` (name and labels exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// Scrapes until `series` is at least `min` (20 s at most).
async fn wait_for_value(server: &TestServer, series: &str, min: f64) -> String {
    wait_for_value_within(server, series, min, Duration::from_secs(20)).await
}

/// Scrapes until `series` is at least `min` (`limit` at most).
async fn wait_for_value_within(
    server: &TestServer,
    series: &str,
    min: f64,
    limit: Duration,
) -> String {
    let mut last = String::new();
    let found = tokio::time::timeout(limit, async {
        loop {
            last = scrape(server).await;
            if value(&last, series).is_some_and(|v| v >= min) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "{series} never reached {min}:\n{last}");
    last
}

/// The clip recorder's series, per camera: the moving camera fills its
/// pre-roll, records its episode and saves the clip; the still one records
/// nothing.
#[tokio::test]
async fn clips_show_their_recording_buffer_and_results_per_camera() {
    let server = two_cameras().await;
    let text = scrape(&server).await;
    for cam in ["yard", "door"] {
        for result in ["saved", "failed"] {
            let series = format!(r#"lookout_clips_total{{camera="{cam}",result="{result}"}}"#);
            assert_eq!(value(&text, &series), Some(0.0), "{series}: {text}");
        }
        let dropped = format!(r#"lookout_clip_dropped_frames_total{{camera="{cam}"}}"#);
        assert_eq!(value(&text, &dropped), Some(0.0), "{text}");
    }
    wait_for_value(&server, r#"lookout_clip_buffer_bytes{camera="yard"}"#, 1.0).await;
    wait_for_value(&server, r#"lookout_clip_recording{camera="yard"}"#, 1.0).await;
    // The episode ends (5 s cooldown, then the post-roll) and its clip is saved.
    let text = wait_for_value_within(
        &server,
        r#"lookout_clips_total{camera="yard",result="saved"}"#,
        1.0,
        Duration::from_secs(120),
    )
    .await;
    for series in [
        r#"lookout_clip_recording{camera="door"}"#,
        r#"lookout_clips_total{camera="door",result="saved"}"#,
        r#"lookout_clips_total{camera="yard",result="failed"}"#,
    ] {
        assert_eq!(value(&text, series), Some(0.0), "{series}: {text}");
    }
    // What the metric says is what the clip list holds.
    let listed = server.get_json("/cams/yard/clips").await;
    assert!(
        !listed["clips"].as_array().expect("clips").is_empty(),
        "{listed}"
    );
}

/// The person check's series, per camera: available, each check timed,
/// person episodes counted. The synthetic ball is checked and is not a
/// person; the still camera is never checked.
#[cfg(feature = "person")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_checks_are_timed_and_counted_per_camera() {
    let server = two_cameras().await;
    let text = scrape(&server).await;
    for cam in ["yard", "door"] {
        for (series, want) in [
            ("lookout_person_check_available", 1.0),
            ("lookout_person_episodes_total", 0.0),
            ("lookout_person_checks_skipped_total", 0.0),
            ("lookout_person_check_seconds_count", 0.0),
        ] {
            let series = format!(r#"{series}{{camera="{cam}"}}"#);
            assert_eq!(value(&text, &series), Some(want), "{series}: {text}");
        }
    }
    let text = wait_for_value_within(
        &server,
        r#"lookout_person_check_seconds_count{camera="yard"}"#,
        1.0,
        Duration::from_secs(120),
    )
    .await;
    assert!(
        value(&text, r#"lookout_person_check_seconds_sum{camera="yard"}"#) > Some(0.0),
        "{text}"
    );
    for series in [
        r#"lookout_person_check_seconds_count{camera="door"}"#,
        r#"lookout_person_episodes_total{camera="yard"}"#,
    ] {
        assert_eq!(value(&text, series), Some(0.0), "{series}: {text}");
    }
}

#[tokio::test]
async fn frames_episodes_and_requests_move_their_counters_per_camera() {
    let server = two_cameras().await;
    let first = scrape(&server).await;
    assert_eq!(
        value(&first, r#"lookout_build_info{version="0.1.0"}"#),
        Some(1.0)
    );
    // Frames arrive on both cameras, each under its own label.
    for cam in ["yard", "door"] {
        let series = format!(r#"lookout_frames_total{{camera="{cam}"}}"#);
        let before = value(&first, &series).expect("frames series");
        wait_for_value(&server, &series, before + 5.0).await;
        // Up, and a rate once a second of frames is measured.
        for gauge in ["lookout_source_up", "lookout_source_fps"] {
            wait_for_value(&server, &format!(r#"{gauge}{{camera="{cam}"}}"#), 1.0).await;
        }
    }
    // The moving scene starts an episode; the still one never does.
    let text = wait_for_value(
        &server,
        r#"lookout_motion_episodes_total{camera="yard"}"#,
        1.0,
    )
    .await;
    assert_eq!(
        value(&text, r#"lookout_motion_episodes_total{camera="door"}"#),
        Some(0.0),
        "{text}"
    );
    let analysed = r#"lookout_motion_analysis_seconds_count{camera="door"}"#;
    assert!(value(&text, analysed) > Some(0.0), "{text}");
    // Missed analyses show from the start (at 0 unless this machine is too
    // busy for two cameras), so `rate()` sees the first.
    let missed = r#"lookout_motion_frames_missed_total{camera="door"}"#;
    assert!(value(&text, missed) >= Some(0.0), "{text}");
    // Requests count under their route's pattern, never the raw path.
    let snaps = r#"lookout_http_requests_total{route="/cams/{name}/snapshot.jpg",code="200"}"#;
    let before = value(&text, snaps).unwrap_or(0.0);
    for path in ["/cams/yard/snapshot.jpg", "/cams/door/snapshot.jpg"] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = reqwest::get(server.url("/no/such/page")).await.unwrap();
    assert_eq!(r.status(), 404);
    let text = scrape(&server).await;
    assert_eq!(value(&text, snaps), Some(before + 2.0), "{text}");
    assert!(
        value(
            &text,
            r#"lookout_http_requests_total{route="unmatched",code="404"}"#
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            r#"lookout_http_requests_total{route="/metrics",code="200"}"#
        ) >= Some(1.0),
        "{text}"
    );
    for raw in ["/cams/yard/", "/cams/door/", "/no/such"] {
        assert!(!text.contains(&format!("route=\"{raw}")), "{raw}: {text}");
    }
    // A manual snapshot counts under its camera and trigger.
    let (status, _) =
        common::post(&server, "/cams/door/control", r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(status, 200);
    let text = scrape(&server).await;
    assert_eq!(
        value(
            &text,
            r#"lookout_snapshots_total{camera="door",trigger="manual"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

/// Whether this run is CI's, where a missing tool is a failure.
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

#[tokio::test]
async fn promtool_accepts_a_real_scrape() {
    use tokio::io::AsyncWriteExt;
    let server = two_cameras().await;
    server.wait_for_frame().await;
    let _ = reqwest::get(server.url("/cams/door/status")).await.unwrap();
    let _ = reqwest::get(server.url("/nothing-here")).await.unwrap();
    wait_for_value(
        &server,
        r#"lookout_motion_analysis_seconds_count{camera="yard"}"#,
        1.0,
    )
    .await;
    let text = scrape(&server).await;
    let child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !in_ci() => {
            eprintln!(
                "skipped: promtool not installed (Debian's prometheus package; \
                 scripts/test installs it)"
            );
            return;
        }
        Err(e) => panic!("promtool cannot run ({e}); install Debian's prometheus package"),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("promtool finishes within 30 s")
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the `lookout` binary to completion with `args`.
async fn lookout(args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("lookout finishes within 20 s")
        .unwrap()
}

#[tokio::test]
async fn off_loopback_metrics_need_credentials_and_take_a_long_lived_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let out = lookout(&["--data-dir", &data, "token", "create", "prometheus"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // Sign-in required, as on any address off loopback.
    let server = TestServer::start_with(STILL, dir, |c| {
        c.require_auth = true;
        c.password = Some(PASSWORD.into());
    })
    .await;
    let client = reqwest::Client::new();
    let get = |path: &str, auth: Option<&str>| {
        let mut req = client.get(server.url(path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    wait_until(Duration::from_secs(10), || async {
        get("/healthz", None).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    for path in ["/status", "/metrics"] {
        assert_eq!(get(path, None).await.unwrap().status(), 401, "{path}");
        let wrong = get(path, Some("Bearer not-a-token")).await.unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let bearer = format!("Bearer {token}");
    let r = get("/metrics", Some(&bearer)).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("lookout_frames_total{camera=\"cam\"}"),
        "{text}"
    );
    // The refusals were counted too, under the route they asked for.
    assert!(
        value(
            &text,
            r#"lookout_http_requests_total{route="/metrics",code="401"}"#
        ) >= Some(2.0),
        "{text}"
    );
}

#[tokio::test]
async fn the_upload_queue_shows_its_length_and_results() {
    // A receiver that is not there: the upload stays queued, retried.
    let url = "http://127.0.0.1:9/frames".to_string();
    let server = TestServer::start_with(STILL, tempfile::tempdir().unwrap(), move |c| {
        c.uploads.url = Some(url);
        c.uploads.on_manual = true;
    })
    .await;
    server.wait_for_frame().await;
    let text = scrape(&server).await;
    assert_eq!(
        value(&text, "lookout_upload_queue_items"),
        Some(0.0),
        "{text}"
    );
    let (status, _) = common::post(&server, "/control", r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(status, 200);
    let text = wait_for_value(&server, "lookout_upload_queue_items", 1.0).await;
    for result in ["sent", "failed", "dropped"] {
        let series = format!(r#"lookout_uploads_total{{result="{result}"}}"#);
        assert_eq!(value(&text, &series), Some(0.0), "{text}");
    }
}
