//! The upload queue against real HTTP receivers on loopback: the wire format,
//! retries, restarts, permanent failures, the queue bound, `Retry-After`, the
//! webhook, and clips of both kinds (Matroska and an RTSP camera's MP4).
//! Backoffs are milliseconds here; only the `Retry-After` test waits a real
//! second.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::fakecam::{self, FakeCam, Script};
use common::receiver::{answer, parts, Hit, Part, Plan, Receiver};
use lookout::events::EventBus;
use lookout::uploads::{UploadConfig, UploadError, Uploader};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn always(status: StatusCode) -> Plan {
    answer(move |_, _| status.into_response())
}

/// Fails the first `n` requests on every path with 503, then accepts.
fn fail_first(n: usize) -> Plan {
    answer(move |_, i| {
        if i < n {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        } else {
            StatusCode::OK.into_response()
        }
    })
}

/// A port nothing listens on (bound, then released).
async fn free_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

fn config(url: Option<String>) -> UploadConfig {
    UploadConfig {
        url,
        ..UploadConfig::default()
    }
    .with_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

fn bus(dir: &Path) -> EventBus {
    EventBus::new(lookout::store::Store::open(dir).expect("store"))
}

/// A running worker; cancelled and awaited by `stop`.
struct Worker {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Worker {
    fn start(up: &Arc<Uploader>, events: EventBus) -> Worker {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(up.clone().run(events, cancel.clone()));
        Worker { cancel, task }
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("worker stops")
            .expect("worker task");
    }
}

/// Polls `cond` every 10 ms for up to 10 s.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Bytes that look like a JPEG and contain CRLFs and dashes, so a sloppy
/// multipart writer or parser would cut them.
fn jpeg(i: u8) -> Vec<u8> {
    let mut j = vec![0xff, 0xd8, 0xff, 0xe0, i];
    j.extend_from_slice(b"\r\n--\r\n\r\n--lookout-\r\n");
    j.extend((0..1000u32).map(|k| (k * 7 + u32::from(i)) as u8));
    j.extend_from_slice(&[0xff, 0xd9]);
    j
}

fn motion(i: u64) -> Value {
    json!({"ts": 1_718_000_000.0 + i as f64 + 0.25, "count": i, "change": 17.5})
}

fn frame_name(i: u64) -> String {
    format!("frame-{}.jpg", 1_718_000_000 + i)
}

/// The parts of an upload, read by the strict parser; a malformed body
/// fails the test.
fn parse_multipart(content_type: &str, body: &Bytes) -> Vec<Part> {
    parts(content_type, body).expect("a well-formed multipart/form-data body")
}

fn uploads(status: &Value, key: &str) -> u64 {
    status[key].as_u64().unwrap_or(u64::MAX)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Collects `upload` events already received.
fn upload_events(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<lookout::events::Event>>,
) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if e.kind == "upload" {
            out.push(e.data.clone());
        }
    }
    out
}

#[tokio::test]
async fn multipart_body_headers_and_webhook_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(always(StatusCode::OK)).await;
    let mut cfg = config(Some(rx.url("/frames")));
    cfg.token = Some("s3cret".into());
    cfg.webhook_url = Some(rx.url("/hook"));
    let up = Uploader::open(dir.path(), cfg).unwrap();
    let events = bus(dir.path());
    let mut sub = events.subscribe();

    // A manual snapshot is not uploaded unless `on_manual`.
    up.enqueue_frame(&jpeg(9), &motion(9), true).unwrap();
    assert_eq!(uploads(&up.status(), "queued"), 0);

    let event = motion(3);
    up.enqueue_frame(&jpeg(3), &event, false).unwrap();
    let end = json!({"kind": "motion_end", "count": 3, "duration_s": 4.5});
    up.enqueue_event(&end).unwrap();
    assert_eq!(
        uploads(&up.status(), "queued"),
        3,
        "frame, its webhook, motion_end"
    );

    let worker = Worker::start(&up, events);
    wait_until("frame and two webhooks", || {
        rx.accepted("/frames").len() == 1 && rx.accepted("/hook").len() == 2
    })
    .await;

    let hit = &rx.hits("/frames")[0];
    assert_eq!(hit.header("authorization"), Some("Bearer s3cret"));
    let ct = hit.header("content-type").expect("content type");
    let parts = parse_multipart(ct, &hit.body);
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0].header("content-disposition"),
        Some(format!("form-data; name=\"image\"; filename=\"{}\"", frame_name(3)).as_str())
    );
    assert_eq!(parts[0].header("content-type"), Some("image/jpeg"));
    assert_eq!(parts[0].body, jpeg(3), "JPEG bytes intact");
    assert_eq!(
        parts[1].header("content-disposition"),
        Some("form-data; name=\"event\"")
    );
    assert_eq!(parts[1].header("content-type"), Some("application/json"));
    let sent_event: Value = serde_json::from_slice(&parts[1].body).unwrap();
    assert_eq!(sent_event, event);

    let hooks = rx.hits("/hook");
    for h in &hooks {
        assert_eq!(h.header("content-type"), Some("application/json"));
        assert_eq!(
            h.header("authorization"),
            None,
            "the token is for the frames receiver only"
        );
    }
    let bodies: Vec<Value> = hooks
        .iter()
        .map(|h| serde_json::from_slice(&h.body).unwrap())
        .collect();
    assert_eq!(
        bodies,
        vec![event, end],
        "webhook gets the event JSON, in order"
    );

    wait_until("sent counted", || uploads(&up.status(), "sent") == 3).await;
    let status = up.status();
    assert_eq!(uploads(&status, "queued"), 0);
    assert!(status["last_success_ts"].as_f64().unwrap() > 1.0e9);
    // The index changes first; the files go right after, outside its lock.
    wait_until("pending emptied", || {
        files_in(&dir.path().join("uploads/pending")).is_empty()
    })
    .await;
    worker.stop().await;

    let published = upload_events(&mut sub);
    assert!(
        published.iter().any(|e| e["state"] == "sent"
            && e["kind"] == "frame"
            && e["file"] == frame_name(3).as_str()),
        "sent event for the frame: {published:?}"
    );
}

#[tokio::test]
async fn retries_deliver_every_frame_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(fail_first(3)).await;
    let up = Uploader::open(dir.path(), config(Some(rx.url("/frames")))).unwrap();
    for i in 0..3 {
        up.enqueue_frame(&jpeg(i as u8), &motion(i), false).unwrap();
    }
    let worker = Worker::start(&up, bus(dir.path()));
    // More frames while the worker is backing off.
    for i in 3..5 {
        up.enqueue_frame(&jpeg(i as u8), &motion(i), false).unwrap();
    }
    // Once all five are marked sent and nothing is queued, the worker has
    // nothing left to send: the receiver's log is final.
    wait_until("5 sent, queue empty", || {
        let status = up.status();
        uploads(&status, "sent") == 5 && uploads(&status, "queued") == 0
    })
    .await;
    let got: Vec<Value> = rx
        .accepted("/frames")
        .iter()
        .map(|h| {
            let parts = parse_multipart(h.header("content-type").unwrap(), &h.body);
            serde_json::from_slice(&parts[1].body).unwrap()
        })
        .collect();
    let want: Vec<Value> = (0..5).map(motion).collect();
    assert_eq!(got, want, "each frame once, in order");
    assert_eq!(rx.hits("/frames").len(), 8, "3 failures + 5 successes");
    let status = up.status();
    assert_eq!(uploads(&status, "sent"), 5);
    assert_eq!(uploads(&status, "queued"), 0);
    assert_eq!(uploads(&status, "failed"), 0);
    assert!(status["last_error"].as_str().unwrap().contains("503"));
    worker.stop().await;
}

#[tokio::test]
async fn queue_survives_a_restart_while_the_receiver_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port().await;
    let url = format!("http://{addr}/frames");
    {
        let up = Uploader::open(dir.path(), config(Some(url.clone()))).unwrap();
        let worker = Worker::start(&up, bus(dir.path()));
        for i in 0..3 {
            up.enqueue_frame(&jpeg(i as u8), &motion(i), false).unwrap();
        }
        wait_until("a failed attempt", || !up.status()["last_error"].is_null()).await;
        worker.stop().await;
        assert_eq!(uploads(&up.status(), "queued"), 3);
    }
    let up = Uploader::open(dir.path(), config(Some(url))).unwrap();
    assert_eq!(
        uploads(&up.status(), "queued"),
        3,
        "found again after the restart"
    );
    let worker = Worker::start(&up, bus(dir.path()));
    // The restarted worker first meets the receiver still down.
    wait_until("a failed attempt after the restart", || {
        !up.status()["last_error"].is_null()
    })
    .await;
    let rx = Receiver::start_on(addr, always(StatusCode::OK)).await;
    up.flush();
    wait_until("3 frames", || rx.accepted("/frames").len() >= 3).await;
    let names: Vec<String> = rx
        .accepted("/frames")
        .iter()
        .map(|h| {
            let parts = parse_multipart(h.header("content-type").unwrap(), &h.body);
            parts[0].header("content-disposition").unwrap().to_string()
        })
        .collect();
    for (i, name) in names.iter().enumerate() {
        assert!(name.contains(&frame_name(i as u64)), "{name}");
    }
    assert_eq!(names.len(), 3);
    wait_until("queue empty", || uploads(&up.status(), "queued") == 0).await;
    worker.stop().await;
}

#[tokio::test]
async fn queue_written_before_a_crash_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(always(StatusCode::OK)).await;
    {
        // Queued, then "kill -9": dropped without ever running.
        let up = Uploader::open(dir.path(), config(Some(rx.url("/frames")))).unwrap();
        for i in 0..3 {
            up.enqueue_frame(&jpeg(i as u8), &motion(i), false).unwrap();
        }
    }
    // What a crash mid-enqueue leaves: a half-written temp file and a JPEG
    // whose JSON was never renamed in.
    let pending = dir.path().join("uploads/pending");
    std::fs::write(pending.join(".tmp-4242-0"), b"half a fra").unwrap();
    std::fs::write(pending.join("00000000000000000099-frame.jpg"), jpeg(99)).unwrap();

    let up = Uploader::open(dir.path(), config(Some(rx.url("/frames")))).unwrap();
    assert_eq!(uploads(&up.status(), "queued"), 3);
    let left = files_in(&pending);
    assert_eq!(left.len(), 6, "3 JSON + 3 JPEG, debris removed: {left:?}");
    assert!(left
        .iter()
        .all(|n| !n.starts_with(".tmp-") && !n.starts_with("00000000000000000099")));

    let worker = Worker::start(&up, bus(dir.path()));
    wait_until("3 frames", || rx.accepted("/frames").len() >= 3).await;
    let jpegs: Vec<Vec<u8>> = rx
        .accepted("/frames")
        .iter()
        .map(|h| {
            parse_multipart(h.header("content-type").unwrap(), &h.body)
                .remove(0)
                .body
                .to_vec()
        })
        .collect();
    assert_eq!(jpegs, vec![jpeg(0), jpeg(1), jpeg(2)]);
    wait_until("pending empty", || files_in(&pending).is_empty()).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_400_is_not_retried_and_the_frame_is_kept_in_failed() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(always(StatusCode::BAD_REQUEST)).await;
    let up = Uploader::open(dir.path(), config(Some(rx.url("/frames")))).unwrap();
    let events = bus(dir.path());
    let mut sub = events.subscribe();
    up.enqueue_frame(&jpeg(1), &motion(1), false).unwrap();
    let worker = Worker::start(&up, events);
    wait_until("failure counted", || uploads(&up.status(), "failed") == 1).await;
    // A retry of the first frame would come before anything queued after it:
    // once a second frame has been tried, the first had its only attempt.
    up.flush();
    up.enqueue_frame(&jpeg(7), &motion(7), false).unwrap();
    wait_until("second failure counted", || {
        uploads(&up.status(), "failed") == 2
    })
    .await;
    let hits = rx.hits("/frames");
    assert_eq!(hits.len(), 2, "exactly one attempt each");
    let first = &parse_multipart(hits[0].header("content-type").unwrap(), &hits[0].body)[0];
    assert_eq!(first.body, jpeg(1));
    let status = up.status();
    assert_eq!(uploads(&status, "queued"), 0);
    assert_eq!(uploads(&status, "sent"), 0);
    assert!(status["last_error"].as_str().unwrap().contains("400"));
    // The index changes first; the files go right after, outside its lock.
    wait_until("pending emptied", || {
        files_in(&dir.path().join("uploads/pending")).is_empty()
    })
    .await;
    let failed = dir.path().join("uploads/failed");
    wait_until("both kept in failed", || files_in(&failed).len() == 4).await;
    let kept = files_in(&failed);
    assert_eq!(kept.len(), 4, "a JSON and a JPEG for each: {kept:?}");
    // Queue names start with a sequence number: the first frame sorts first.
    let jpg = kept
        .iter()
        .filter(|n| n.ends_with(".jpg"))
        .min()
        .expect("jpeg kept");
    assert_eq!(std::fs::read(failed.join(jpg)).unwrap(), jpeg(1));
    worker.stop().await;
    let published = upload_events(&mut sub);
    assert!(
        published.iter().any(|e| e["state"] == "failed"
            && e["file"] == frame_name(1).as_str()
            && e["error"].as_str().is_some_and(|s| s.contains("400"))),
        "{published:?}"
    );

    // A restart neither retries it nor reuses its name.
    drop(up);
    let up = Uploader::open(dir.path(), config(Some(rx.url("/frames")))).unwrap();
    assert_eq!(uploads(&up.status(), "queued"), 0);
    up.enqueue_frame(&jpeg(2), &motion(2), false).unwrap();
    assert_eq!(files_in(&failed).len(), 4);
}

#[tokio::test]
async fn the_queue_bound_drops_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(always(StatusCode::OK)).await;
    let mut cfg = config(Some(rx.url("/frames")));
    // Each item is ~1.2 kB (JPEG + JSON): room for two.
    cfg.queue_bytes = Some(2 * 1024 + 800);
    let up = Uploader::open(dir.path(), cfg).unwrap();
    for i in 0..5 {
        up.enqueue_frame(&jpeg(i as u8), &motion(i), false).unwrap();
    }
    let status = up.status();
    assert_eq!(uploads(&status, "dropped"), 3);
    assert_eq!(uploads(&status, "queued"), 2);
    assert!(uploads(&status, "queued_bytes") <= 2 * 1024 + 800);
    assert_eq!(files_in(&dir.path().join("uploads/pending")).len(), 4);

    let events = bus(dir.path());
    let mut sub = events.subscribe();
    let worker = Worker::start(&up, events);
    wait_until("2 frames", || rx.accepted("/frames").len() >= 2).await;
    let jpegs: Vec<Vec<u8>> = rx
        .accepted("/frames")
        .iter()
        .map(|h| {
            parse_multipart(h.header("content-type").unwrap(), &h.body)
                .remove(0)
                .body
                .to_vec()
        })
        .collect();
    assert_eq!(jpegs, vec![jpeg(3), jpeg(4)], "the newest kept");
    wait_until("sent counted", || uploads(&up.status(), "sent") == 2).await;
    worker.stop().await;
    let dropped: Vec<Value> = upload_events(&mut sub)
        .into_iter()
        .filter(|e| e["state"] == "dropped")
        .map(|e| e["file"].clone())
        .collect();
    assert_eq!(
        dropped,
        (0..3).map(|i| json!(frame_name(i))).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(answer(|_, i| {
        if i == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }))
    .await;
    let up = Uploader::open(dir.path(), config(Some(rx.url("/frames")))).unwrap();
    up.enqueue_frame(&jpeg(1), &motion(1), false).unwrap();
    let worker = Worker::start(&up, bus(dir.path()));
    wait_until("accepted", || rx.accepted("/frames").len() == 1).await;
    let hits = rx.hits("/frames");
    assert_eq!(hits.len(), 2);
    let gap = hits[1].at - hits[0].at;
    assert!(
        gap >= Duration::from_millis(900),
        "waited {gap:?}, backoff alone is 20 ms"
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_dead_webhook_does_not_hold_up_frames() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(answer(|path, _| {
        if path == "/hook" {
            StatusCode::BAD_GATEWAY.into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }))
    .await;
    let mut cfg = config(Some(rx.url("/frames")));
    cfg.webhook_url = Some(rx.url("/hook"));
    let up = Uploader::open(dir.path(), cfg).unwrap();
    let worker = Worker::start(&up, bus(dir.path()));
    for i in 0..3 {
        up.enqueue_frame(&jpeg(i as u8), &motion(i), false).unwrap();
    }
    wait_until("3 frames", || rx.accepted("/frames").len() == 3).await;
    wait_until("webhook retried", || rx.hits("/hook").len() >= 2).await;
    assert!(rx.accepted("/hook").is_empty());
    // The receiver has the third frame a moment before the worker settles
    // it; then only the three webhook calls are left, retried, not dropped.
    wait_until("only the webhook calls still queued", || {
        uploads(&up.status(), "queued") == 3 && uploads(&up.status(), "sent") == 3
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn items_older_than_max_age_are_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port().await;
    let mut cfg = config(Some(format!("http://{addr}/frames")));
    cfg.max_age = Duration::from_millis(300);
    let up = Uploader::open(dir.path(), cfg).unwrap();
    let events = bus(dir.path());
    let mut sub = events.subscribe();
    up.enqueue_frame(&jpeg(1), &motion(1), false).unwrap();
    let worker = Worker::start(&up, events);
    wait_until("given up", || uploads(&up.status(), "failed") == 1).await;
    assert_eq!(uploads(&up.status(), "queued"), 0);
    // The index changes first; the files go right after, outside its lock.
    wait_until("pending emptied", || {
        files_in(&dir.path().join("uploads/pending")).is_empty()
    })
    .await;
    worker.stop().await;
    assert!(upload_events(&mut sub)
        .iter()
        .any(|e| e["state"] == "failed"));
}

#[tokio::test]
async fn bad_settings_fail_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let bad_url = Uploader::open(dir.path(), config(Some("ftp://example.org/x".into())));
    assert!(matches!(bad_url, Err(UploadError::InvalidUrl { .. })));
    let not_url = Uploader::open(dir.path(), config(Some("frames".into())));
    assert!(matches!(not_url, Err(UploadError::InvalidUrl { .. })));
    let mut cfg = config(Some("https://127.0.0.1:9/frames".into()));
    cfg.ca_file = Some(dir.path().join("missing.pem"));
    assert!(matches!(
        Uploader::open(dir.path(), cfg.clone()),
        Err(UploadError::CaFile { .. })
    ));
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    cfg.ca_file = Some(dir.path().join("empty.pem"));
    assert!(matches!(
        Uploader::open(dir.path(), cfg),
        Err(UploadError::CaFile { .. })
    ));
    assert!(!UploadConfig::default().enabled());
}

/// Starts the real `lookout` binary and returns it with its base URL.
async fn spawn_lookout(data: &Path, extra: &[&str]) -> (tokio::process::Child, String) {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--source",
        "synthetic:?size=160x120&fps=10&motion=never",
    ];
    args.extend_from_slice(extra);
    let mut bin = common::Binary::spawn(&args, data);
    let url = bin.wait_for_url("http").await;
    (bin.drain(), url)
}

#[tokio::test]
async fn kill_9_with_a_queued_frame_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let down = free_port().await;
    let dead_url = format!("http://{down}/frames");
    let (mut first, base) = spawn_lookout(
        data.path(),
        &["--upload-url", &dead_url, "--upload-on-manual"],
    )
    .await;
    let client = reqwest::Client::new();
    let reply: Value = loop {
        let r: Value = client
            .post(format!("{base}/control"))
            .body(r#"{"cmd": "snapshot_now"}"#)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["ok"] == true {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let saved = data.path().join(reply["saved"].as_str().unwrap());
    let pending = data.path().join("uploads/pending");
    assert!(
        files_in(&pending).iter().any(|f| f.ends_with(".jpg")),
        "queued before the reply"
    );
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    let receiver = Receiver::start_with(always(StatusCode::OK)).await;
    let (_second, _) =
        spawn_lookout(data.path(), &["--upload-url", &receiver.url("/frames")]).await;
    wait_until("the queued frame arrives after the restart", || {
        !receiver.accepted("/frames").is_empty()
    })
    .await;
    let hit = &receiver.accepted("/frames")[0];
    let ct = hit.header("content-type").unwrap().to_string();
    let parts = parse_multipart(&ct, &hit.body);
    let image = parts
        .iter()
        .find(|p| p.is_field("image"))
        .expect("image part");
    assert_eq!(
        image.body,
        std::fs::read(saved).unwrap(),
        "the snapshot's exact bytes"
    );
    wait_until("the queue empties", || files_in(&pending).is_empty()).await;
}

#[tokio::test]
async fn motion_frames_are_uploaded_by_the_running_server() {
    let receiver = Receiver::start_with(always(StatusCode::OK)).await;
    let url = receiver.url("/frames");
    let server = common::TestServer::start_with(
        "synthetic:?size=320x180&fps=10&motion=always",
        tempfile::tempdir().unwrap(),
        |c| {
            c.uploads.url = Some(url);
            c.uploads.token = Some("s3cret".into());
        },
    )
    .await;
    wait_until("a motion frame arrives", || {
        !receiver.accepted("/frames").is_empty()
    })
    .await;
    let hit = &receiver.accepted("/frames")[0];
    assert_eq!(hit.header("authorization"), Some("Bearer s3cret"));
    let parts = parse_multipart(hit.header("content-type").unwrap(), &hit.body);
    let event = parts
        .iter()
        .find(|p| p.is_field("event"))
        .expect("event part");
    let event: Value = serde_json::from_slice(&event.body).unwrap();
    assert_eq!(event["kind"], "motion");
    assert_eq!(event["count"], 1);
    // Which camera saw it (`--source` alone is the camera `cam`).
    assert_eq!(event["camera"], "cam");
    let status = server.status().await;
    common::wait_until(Duration::from_secs(5), || async {
        server.status().await["uploads"]["sent"].as_u64() >= Some(1)
    })
    .await;
    assert!(status["uploads"].is_object());
    let flushed = server.command(r#"{"cmd": "flush_uploads"}"#).await;
    assert_eq!(flushed["ok"], true);
}

#[tokio::test]
async fn a_clip_goes_out_beside_its_picture_even_after_retention_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(fail_first(1)).await;
    let clips = dir.path().join("clips");
    std::fs::create_dir(&clips).unwrap();
    let clip = clips.join("motion-1718000000250.mkv");
    let bytes = clip_bytes(0);
    std::fs::write(&clip, &bytes).unwrap();
    let event = json!({"kind": "clip", "ok": true, "name": "motion-1718000000250.mkv"});

    // Without --upload-clips nothing is queued.
    let off = Uploader::open(dir.path(), config(Some(rx.url("/frames")))).unwrap();
    off.enqueue_clip(&clip, &jpeg(1), &event).unwrap();
    assert_eq!(uploads(&off.status(), "queued"), 0);
    drop(off);

    let mut cfg = config(Some(rx.url("/frames")));
    cfg.clips = true;
    let up = Uploader::open(dir.path(), cfg.clone()).unwrap();
    up.enqueue_clip(&clip, &jpeg(1), &event).unwrap();
    let pending = dir.path().join("uploads/pending");
    let queued = files_in(&pending);
    assert_eq!(queued.len(), 3, "{queued:?}");
    assert!(
        queued.iter().any(|f| f.ends_with("-frame.mkv")),
        "{queued:?}"
    );
    // Retention deletes the clip; a restart finds the item whole.
    std::fs::remove_file(&clip).unwrap();
    drop(up);
    let up = Uploader::open(dir.path(), cfg).unwrap();
    assert_eq!(uploads(&up.status(), "queued"), 1);
    let worker = Worker::start(&up, bus(dir.path()));
    wait_until("clip accepted after one retry", || {
        rx.accepted("/frames").len() == 1
    })
    .await;
    wait_until("pending emptied", || files_in(&pending).is_empty()).await;
    worker.stop().await;

    let hit = &rx.accepted("/frames")[0];
    let (image, sent, clip_body) = clip_upload(hit, "motion-1718000000250", "mkv");
    assert_eq!(image, jpeg(1));
    assert_eq!(sent, event);
    assert!(clip_body == bytes, "the clip, byte for byte");
}

/// The `image`, `event` and `clip` parts of the clip upload `hit`, their
/// headers checked: the clip `<stem>.<ext>` typed by its extension, its
/// picture `<stem>.jpg` as `image/jpeg`. Returns the picture, the event and
/// the clip.
fn clip_upload(hit: &Hit, stem: &str, ext: &str) -> (Bytes, Value, Bytes) {
    let parts = parse_multipart(hit.header("content-type").unwrap(), &hit.body);
    let field = |name| parts.iter().find(|p| p.is_field(name)).expect(name);
    let filename = |p: &Part| {
        p.header("content-disposition")
            .and_then(|d| d.split("filename=\"").nth(1))
            .and_then(|f| f.split('"').next())
            .map(str::to_string)
    };
    let image = field("image");
    assert_eq!(image.header("content-type"), Some("image/jpeg"));
    assert_eq!(filename(image), Some(format!("{stem}.jpg")));
    let clip = field("clip");
    let mime = match ext {
        "mkv" => "video/x-matroska",
        "mp4" => "video/mp4",
        other => panic!("no clip is .{other}"),
    };
    assert_eq!(clip.header("content-type"), Some(mime));
    assert_eq!(filename(clip), Some(format!("{stem}.{ext}")));
    let event = field("event");
    assert_eq!(event.header("content-type"), Some("application/json"));
    let event: Value = serde_json::from_slice(&event.body).unwrap();
    (image.body.clone(), event, clip.body.clone())
}

/// Bytes of a clip file: CRLFs and dashes a sloppy multipart writer would
/// cut, over more than one read, different for each `seed`.
fn clip_bytes(seed: u8) -> Vec<u8> {
    (0..300_000u32)
        .flat_map(|k| {
            if k % 1000 == 0 {
                b"\r\n--".to_vec()
            } else {
                vec![(k as u8).wrapping_add(seed)]
            }
        })
        .collect()
}

#[tokio::test]
async fn an_mp4_clip_goes_out_as_video_mp4_after_a_matroska_one_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_with(always(StatusCode::OK)).await;
    let clips = dir.path().join("clips");
    std::fs::create_dir(&clips).unwrap();
    let mkv = clips.join("motion-1718000000250.mkv");
    let mp4 = clips.join("motion-1718000009750.mp4");
    std::fs::write(&mkv, clip_bytes(1)).unwrap();
    std::fs::write(&mp4, clip_bytes(2)).unwrap();
    let mkv_event = json!({"kind": "clip", "ok": true, "name": "motion-1718000000250.mkv"});
    let mp4_event = json!({"kind": "clip", "ok": true, "name": "motion-1718000009750.mp4"});

    let mut cfg = config(Some(rx.url("/frames")));
    cfg.clips = true;
    let up = Uploader::open(dir.path(), cfg.clone()).unwrap();
    up.enqueue_clip(&mkv, &jpeg(1), &mkv_event).unwrap();
    up.enqueue_clip(&mp4, &jpeg(2), &mp4_event).unwrap();
    let pending = dir.path().join("uploads/pending");
    let queued = files_in(&pending);
    assert_eq!(queued.len(), 6, "{queued:?}");
    for ext in ["-frame.mkv", "-frame.mp4"] {
        assert_eq!(
            queued.iter().filter(|f| f.ends_with(ext)).count(),
            1,
            "{queued:?}"
        );
    }
    // Retention deletes both clips; a restart finds both items whole.
    std::fs::remove_file(&mkv).unwrap();
    std::fs::remove_file(&mp4).unwrap();
    drop(up);
    let up = Uploader::open(dir.path(), cfg).unwrap();
    assert_eq!(uploads(&up.status(), "queued"), 2);
    let worker = Worker::start(&up, bus(dir.path()));
    wait_until("both clips accepted", || rx.accepted("/frames").len() == 2).await;
    wait_until("pending emptied", || files_in(&pending).is_empty()).await;
    worker.stop().await;

    let hits = rx.accepted("/frames");
    let (image, sent, body) = clip_upload(&hits[0], "motion-1718000000250", "mkv");
    assert_eq!((image, sent), (jpeg(1).into(), mkv_event));
    assert!(body == clip_bytes(1), "the Matroska clip, byte for byte");
    let (image, sent, body) = clip_upload(&hits[1], "motion-1718000009750", "mp4");
    assert_eq!((image, sent), (jpeg(2).into(), mp4_event));
    assert!(body == clip_bytes(2), "the MP4 clip, byte for byte");
    assert_eq!(uploads(&up.status(), "sent"), 2);
}

#[tokio::test]
async fn an_rtsp_cameras_mp4_clip_is_uploaded_by_the_running_server() {
    let work = tempfile::tempdir().unwrap();
    // The scripted camera of tests/clips_mp4.rs: people walking, in H.264.
    let footage = fakecam::encode_footage(work.path(), 100, 10, 20);
    let cam = FakeCam::start(&footage, Script::default()).await;
    let receiver = Receiver::start_with(always(StatusCode::OK)).await;
    let url = receiver.url("/frames");
    let server = common::TestServer::start_with(&cam.url, tempfile::tempdir().unwrap(), |c| {
        c.uploads.url = Some(url);
        c.uploads.clips = true;
        // Short clips, as tests/clips_mp4.rs records them: the walkers keep
        // moving, so the 10 s cap ends the first one.
        let s = &mut c.cameras[0].settings;
        s.cooldown_s = 1;
        s.threshold = 5;
        s.clip_pre_s = 1;
        s.clip_post_s = 1;
        s.clip_max_s = 10;
    })
    .await;
    let with_clip = || {
        receiver
            .accepted("/frames")
            .into_iter()
            .find(|h| h.part("clip").is_some())
    };
    common::wait_until(Duration::from_secs(90), || async { with_clip().is_some() }).await;
    let hit = with_clip().expect("a clip upload");

    let parts = parse_multipart(hit.header("content-type").unwrap(), &hit.body);
    let disposition = parts
        .iter()
        .find(|p| p.is_field("clip"))
        .and_then(|p| p.header("content-disposition"))
        .expect("the clip's disposition")
        .to_string();
    let name = disposition
        .split("filename=\"")
        .nth(1)
        .and_then(|f| f.split('"').next())
        .expect("the clip's file name")
        .to_string();
    let stem = name
        .strip_suffix(".mp4")
        .unwrap_or_else(|| panic!("an RTSP camera's clip is MP4: {name}"));
    assert!(
        stem.strip_prefix("motion-")
            .is_some_and(|ms| !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit())),
        "{name}"
    );
    let (image, event, body) = clip_upload(&hit, stem, "mp4");
    let file = server.data_dir().join("clips/cam").join(&name);
    let on_disk = std::fs::read(&file).expect("the clip in its folder");
    assert!(
        body == on_disk,
        "the uploaded clip is the clip file, byte for byte"
    );
    let (boxes, rest) = common::mp4::boxes(&body);
    assert_eq!(rest, 0, "whole boxes");
    assert_eq!(
        boxes.first().map(|(k, _)| k.as_str()),
        Some("ftyp"),
        "an MP4 file"
    );
    assert_eq!(
        common::decode_jpeg(&image),
        (320, 240),
        "the camera's picture"
    );
    assert_eq!(event["kind"], "clip");
    assert_eq!(event["ok"], true);
    assert_eq!(event["name"], name.as_str());
    assert_eq!(event["camera"], "cam");
    assert_eq!(
        event["bytes"].as_u64(),
        Some(on_disk.len() as u64),
        "{event}"
    );
}
