//! lookout against the quirks of real RTSP cameras, played by a scripted
//! camera (tests/common/fakecam.rs) that sends real H.264 of the footage:
//! parameter sets only in the stream, RTP timestamps that jump back,
//! keyframes ten seconds apart, and garbage after a good start.
//!
//! Each test runs the real binary (a panic is on its standard error, which
//! is read into the log) and waits for what it asserts with deadlines.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fakecam::{self, FakeCam, Happened, Script};
use common::{decode_jpeg, Binary, Log};
use serde_json::Value;

/// Deadline for what should happen within seconds on an idle machine.
const WAIT: Duration = Duration::from_secs(60);

/// A lookout reading the fake camera; killed when dropped.
struct Lookout {
    base: String,
    client: reqwest::Client,
    child: tokio::process::Child,
    log: Log,
    _data: tempfile::TempDir,
}

impl Lookout {
    async fn start(cam: &FakeCam) -> Lookout {
        lookout::install_crypto_provider();
        let data = tempfile::tempdir().expect("temp dir");
        let mut bin = Binary::spawn_with_stderr(
            &["--listen", "127.0.0.1:0", "--source", &cam.url],
            data.path(),
        );
        let base = bin.wait_for_url("http").await;
        let (child, log) = bin.collect();
        Lookout {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            child,
            log,
            _data: data,
        }
    }

    /// `/status`'s `source`; fails the test when `/status` does not answer
    /// within 10 s.
    async fn source(&self) -> Value {
        let status: Value = self
            .client
            .get(format!("{}/status", self.base))
            .send()
            .await
            .expect("/status answers")
            .json()
            .await
            .expect("/status is JSON");
        status["source"].clone()
    }

    /// The latest picture and its `x-timestamp` (Unix seconds), if there is
    /// one.
    async fn snapshot(&self) -> Option<(f64, bytes::Bytes)> {
        let r = self
            .client
            .get(format!("{}/snapshot.jpg", self.base))
            .send()
            .await
            .expect("/snapshot.jpg answers");
        if r.status() != 200 {
            return None;
        }
        let at = r.headers()["x-timestamp"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("x-timestamp is seconds");
        Some((at, r.bytes().await.expect("snapshot body")))
    }

    /// Waits for a picture taken after `after` (Unix seconds) and returns
    /// its time.
    async fn picture_after(&self, after: f64) -> f64 {
        until_some("a new picture", || async {
            self.snapshot()
                .await
                .map(|(at, _)| at)
                .filter(|at| *at > after)
        })
        .await
    }

    /// Waits until the source is `running`.
    async fn running(&self) -> Value {
        until_some("state running", || async {
            Some(self.source().await).filter(|s| s["state"] == "running")
        })
        .await
    }

    /// Fails the test when lookout exited or panicked.
    fn assert_healthy(&mut self) {
        assert!(
            self.child.try_wait().expect("wait").is_none(),
            "lookout is still running"
        );
        assert_eq!(self.log.count("panicked"), 0, "no panic in the log");
    }
}

/// Polls `probe` until it gives something, failing the test after [`WAIT`].
async fn until_some<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `t` in Unix seconds.
fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Waits until the camera notes a time in `at`, and returns it (Unix seconds).
async fn happened(at: &std::sync::Mutex<Option<SystemTime>>) -> f64 {
    let t = until_some("the camera's quirk", || async { Happened::when(at) }).await;
    unix(t)
}

/// `last_error`, when set, is one short line that says something.
fn assert_clear(source: &Value) {
    if let Some(e) = source["last_error"].as_str() {
        assert!(!e.trim().is_empty(), "an empty last_error: {source}");
        assert!(!e.contains('\n'), "a multi-line last_error: {e:?}");
        assert!(e.len() < 300, "a last_error of {} bytes: {e:?}", e.len());
    }
}

#[tokio::test]
async fn parameter_sets_only_in_the_stream() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h264 = fakecam::encode_footage(dir.path(), 100, 10, 20);
    let units = fakecam::access_units(&std::fs::read(&h264).expect("read"));
    // The premise: every IDR carries its own SPS and PPS.
    assert!(units
        .iter()
        .filter(|u| u.is_idr())
        .all(|u| u.nal(7).is_some() && u.nal(8).is_some()));
    let cam = FakeCam::start(
        &h264,
        Script {
            sdp_parameter_sets: false,
            rtp_info: false,
            ..Script::default()
        },
    )
    .await;
    let mut lookout = Lookout::start(&cam).await;

    let (_, jpeg) = until_some("a picture", || lookout.snapshot()).await;
    assert_eq!(decode_jpeg(&jpeg), (320, 240));
    let source = until_some("running, 320 wide", || async {
        Some(lookout.source().await)
            .filter(|s| s["state"] == "running" && s["stream"]["width"] == 320)
    })
    .await;
    assert_eq!(source["stream"]["height"], 240, "{source}");
    assert_eq!(source["stream"]["codec"], "h264", "{source}");
    // Read from the SPS in the stream.
    assert!(
        source["stream"]["rfc6381"]
            .as_str()
            .is_some_and(|c| c.starts_with("avc1.")),
        "{source}"
    );
    assert_eq!(source["restarts"], 0, "{source}");
    lookout.assert_healthy();
    eprintln!("in-band parameter sets: {source}");
}

#[tokio::test]
async fn timestamps_that_jump_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h264 = fakecam::encode_footage(dir.path(), 100, 10, 20);
    // After 2 s, 5 s back, and on from there.
    let cam = FakeCam::start(
        &h264,
        Script {
            jump_back: Some((20, 5)),
            ..Script::default()
        },
    )
    .await;
    let mut lookout = Lookout::start(&cam).await;
    lookout.picture_after(0.0).await;
    let jumped = happened(&cam.happened.jumped).await;

    // Pictures well after the jump (in the same session or a new one), and
    // still more after that; /status answers all along.
    let later = lookout.picture_after(jumped + 3.0).await;
    let source = lookout.running().await;
    lookout.picture_after(later + 1.0).await;
    assert_clear(&source);
    lookout.assert_healthy();
    eprintln!(
        "timestamps back 5 s: {} session(s); {source}",
        cam.happened
            .plays
            .load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test]
async fn keyframes_ten_seconds_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h264 = fakecam::encode_footage(dir.path(), 100, 10, 100);
    let units = fakecam::access_units(&std::fs::read(&h264).expect("read"));
    assert_eq!(units.len(), 100);
    assert_eq!(units.iter().filter(|u| u.is_idr()).count(), 1);
    // Each session starts in the middle of the 10 s group of pictures, as
    // a real camera would: the first IDR comes 5 s in.
    let cam = FakeCam::start(
        &h264,
        Script {
            start_at: 50,
            ..Script::default()
        },
    )
    .await;
    let mut lookout = Lookout::start(&cam).await;

    let (_, jpeg) = until_some("a picture", || lookout.snapshot()).await;
    assert!(
        Happened::when(&cam.happened.first_idr).is_some(),
        "a picture only after the first keyframe"
    );
    assert_eq!(decode_jpeg(&jpeg), (320, 240));

    // 25 s of pictures, never older than half a keyframe interval (one
    // dropped frame would freeze the picture until the next keyframe),
    // without a restart.
    let until = tokio::time::Instant::now() + Duration::from_secs(25);
    let mut pictures = 0;
    let mut last = 0.0;
    while tokio::time::Instant::now() < until {
        let source = lookout.source().await;
        assert_eq!(source["restarts"], 0, "{source}");
        assert_eq!(source["state"], "running", "{source}");
        let (at, _) = lookout.snapshot().await.expect("a picture");
        let age = unix(SystemTime::now()) - at;
        assert!(age < 5.0, "the picture is {age:.1} s old: {source}");
        if at > last {
            pictures += 1;
            last = at;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(pictures >= 40, "only {pictures} new pictures in 25 s");
    let source = lookout.source().await;
    let interval = source["stream"]["keyframe_interval_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("a keyframe interval: {source}"));
    assert!(
        (9.0..=11.0).contains(&interval),
        "keyframe interval {interval}: {source}"
    );
    assert_eq!(
        cam.happened
            .plays
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    lookout.assert_healthy();
    eprintln!("keyframes 10 s apart: {source}");
}

#[tokio::test]
async fn garbage_after_a_good_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h264 = fakecam::encode_footage(dir.path(), 100, 10, 20);
    // After 3 s, a frame of five packets of random payloads; after 5 s, a
    // fragment without its start.
    let cam = FakeCam::start(
        &h264,
        Script {
            garbage: Some((30, 5)),
            orphan_fragment: Some(50),
            ..Script::default()
        },
    )
    .await;
    let mut lookout = Lookout::start(&cam).await;
    lookout.picture_after(0.0).await;

    // Random payloads: pictures go on (the decoder conceals or skips what
    // it cannot read), or the garbage is counted, or the source restarts
    // with a clear error; never a crash or a frozen picture.
    let garbage = happened(&cam.happened.garbage).await;
    lookout.picture_after(garbage + 1.0).await;
    let after_garbage = lookout.source().await;
    assert_clear(&after_garbage);

    // A fragment without its start: noticed (counted, or the source
    // restarted with a clear error), then pictures again.
    let orphan = happened(&cam.happened.orphan_fragment).await;
    let noticed = until_some("the broken fragment noticed", || async {
        Some(lookout.source().await).filter(|s| {
            s["bad_frames"].as_u64() > after_garbage["bad_frames"].as_u64()
                || s["restarts"].as_u64() > after_garbage["restarts"].as_u64()
        })
    })
    .await;
    if noticed["restarts"].as_u64() > after_garbage["restarts"].as_u64() {
        assert!(noticed["last_error"].is_string(), "{noticed}");
    }
    assert_clear(&noticed);
    let later = lookout.picture_after(orphan + 1.0).await;
    let source = lookout.running().await;
    lookout.picture_after(later + 1.0).await;
    assert_clear(&source);
    lookout.assert_healthy();
    eprintln!(
        "garbage: {} session(s); after the random payloads {after_garbage}; at the end {source}",
        cam.happened
            .plays
            .load(std::sync::atomic::Ordering::Relaxed)
    );
}
