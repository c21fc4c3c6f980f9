//! `rtsp://` cameras against a real RTSP server (`scripts/rtsp-server`):
//! H.264 and H.265 decoded (a JPEG made only for a viewer or a snapshot),
//! the stream's figures on
//! `/status`, MJPEG passed through, UDP, several cameras, motion (and
//! people) found in real footage, digest and basic
//! sign-in, what a wrong password, a wrong path or a port that is not a
//! camera look like, and recovery from a camera that restarts, a camera
//! that hangs, a decoder that dies and a long keyframe interval.
//!
//! Every test has its own camera process and its own lookout.

use crate::common;

use std::time::Duration;

use common::rtsp::RtspCamera;
use common::sse::SseClient;
use common::{decode_jpeg, MjpegClient, TestServer};
use serde_json::Value;

/// Enough for a first picture on a busy machine: the camera's encoder
/// starts on the first DESCRIBE, and the decoder waits for a keyframe.
const FIRST_PICTURE_WITHIN: Duration = Duration::from_secs(45);

/// The substream of the default camera, and a main stream as small, so the
/// camera's picture pipeline costs little.
const SMALL: [&str; 2] = ["--main", "640x360@10"];

/// Polls `/status` until `ok` holds for its `source` object and returns
/// the whole status; panics after `limit` with what it saw last.
async fn wait_source(
    server: &TestServer,
    limit: Duration,
    what: &str,
    mut ok: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let st = server.status().await;
        if ok(&st["source"]) {
            return st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}; source is {}",
            st["source"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the source runs and a picture has been published.
async fn wait_running(server: &TestServer) -> Value {
    wait_source(
        server,
        FIRST_PICTURE_WITHIN,
        "running with a picture",
        |s| s["state"] == "running" && s["width"].as_u64() > Some(0),
    )
    .await
}

/// The state is one of a failure's.
fn failing(source: &Value) -> bool {
    source["state"] == "failed" || source["state"] == "reconnecting"
}

/// Waits until the source fails with an error that `ok` accepts; returns
/// the source object.
async fn wait_error(server: &TestServer, limit: Duration, ok: impl Fn(&str) -> bool) -> Value {
    let st = wait_source(server, limit, "the expected error", |s| {
        failing(s) && s["last_error"].as_str().is_some_and(&ok)
    })
    .await;
    st["source"].clone()
}

/// GETs `/snapshot.jpg` and returns the JPEG, checking its type and size.
async fn snapshot(server: &TestServer, size: (usize, usize)) -> bytes::Bytes {
    let resp = reqwest::get(server.url("/snapshot.jpg"))
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let jpeg = resp.bytes().await.expect("body");
    assert_eq!(decode_jpeg(&jpeg), size);
    jpeg
}

/// Reads `n` parts of `/stream.jpg`, each a valid JPEG of `size`.
async fn assert_streams(server: &TestServer, n: usize, size: (usize, usize)) {
    let mut client = MjpegClient::connect(&server.url("/stream.jpg")).await;
    for _ in 0..n {
        let part = tokio::time::timeout(Duration::from_secs(10), client.next_part())
            .await
            .expect("a part within 10 s")
            .expect("stream open");
        assert_eq!(decode_jpeg(&part.body), size);
    }
}

/// The frames published so far.
async fn frames(server: &TestServer) -> u64 {
    server.status().await["frames"]
        .as_u64()
        .expect("frames in /status")
}

/// Waits until `more` frames past `from` have been published.
async fn wait_frames(server: &TestServer, from: u64, more: u64, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let now = frames(server).await;
        if now >= from + more {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{now} frames, not {} within {limit:?}: {}",
            from + more,
            server.status().await["source"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_substream_of_real_footage_is_measured_shown_and_watched() {
    let cam = RtspCamera::walkers(&SMALL).await;
    let server = TestServer::start(&cam.url("sub")).await;
    // On the bus before the first picture, so no motion is missed.
    let mut events = SseClient::subscribe(&server.url("/events")).await;

    // The stream's figures; the keyframe interval once two keyframes came.
    let st = wait_source(&server, FIRST_PICTURE_WITHIN, "measured stream", |s| {
        let k = f64_of(&s["stream"]["keyframe_interval_s"]);
        s["state"] == "running"
            && f64_of(&s["stream"]["fps"]) > 0.0
            && s["stream"]["bitrate_kbps"].as_u64() > Some(0)
            && (1.0..=3.0).contains(&k)
    })
    .await;
    let source = &st["source"];
    let stream = &source["stream"];
    assert_eq!(stream["codec"], "h264", "{source}");
    assert_eq!(stream["transport"], "tcp", "{source}");
    assert_eq!(
        (&stream["width"], &stream["height"]),
        (&640.into(), &360.into())
    );
    assert!(
        stream["profile"].as_str().is_some_and(|p| !p.is_empty()),
        "{source}"
    );
    assert!(
        stream["rfc6381"]
            .as_str()
            .is_some_and(|c| c.starts_with("avc1.")),
        "{source}"
    );
    assert_eq!(source["uri"], cam.url("sub"));
    assert!(source["pid"].as_u64().is_some(), "a decoder runs: {source}");
    assert_eq!(source["restarts"], 0, "{source}");
    assert_eq!(source["last_error"], Value::Null, "{source}");

    // Published as JPEG pictures of the stream's size.
    wait_running(&server).await;
    let st = server.status().await;
    assert_eq!(
        (&st["source"]["width"], &st["source"]["height"]),
        (&640.into(), &360.into())
    );
    snapshot(&server, (640, 360)).await;
    assert_streams(&server, 5, (640, 360)).await;

    // The walkers move; with the person check, they are people.
    let want_person = cfg!(feature = "person");
    let (mut motion, mut person) = (None, None);
    events
        .until(Duration::from_secs(120), |m| {
            match m.event.as_str() {
                "motion" => motion = Some(m.json()),
                "person" => person = Some(m.json()),
                _ => {}
            }
            motion.is_some() && (person.is_some() || !want_person)
        })
        .await;
    let motion = motion.expect("a motion event");
    eprintln!("motion: {motion}\nperson: {person:?}");
    assert!(
        motion["boxes"].as_array().is_some_and(|b| !b.is_empty()),
        "{motion}"
    );
    if want_person {
        let person = person.expect("a person event");
        assert!(person["people"].as_u64() >= Some(1), "{person}");
        let st = server.status().await;
        assert!(st["person_count"].as_u64() >= Some(1), "{st}");
    }
}

/// `/status.jpeg_encodes`, JPEGs made of the decoded pictures, and the
/// episodes and people so far: each takes one picture for its incident
/// (the notification inbox), so each may make one JPEG.
async fn encodes(server: &TestServer) -> (u64, u64) {
    let st = server.status().await;
    let made = st["jpeg_encodes"]
        .as_u64()
        .expect("jpeg_encodes in /status");
    let events =
        st["trigger_count"].as_u64().unwrap_or(0) + st["person_count"].as_u64().unwrap_or(0);
    (made, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_is_made_only_while_someone_watches_or_asks() {
    let cam = RtspCamera::walkers(&SMALL).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing else that takes a JPEG: no snapshot on motion, no clip
    // thumbnail. The detector and the person check read the pictures.
    let server = TestServer::start_with(&cam.url("sub"), dir, |c| {
        let settings = &mut c.cameras[0].settings;
        settings.save_on_motion = false;
        settings.record_clips = false;
    })
    .await;
    wait_running(&server).await;
    wait_frames(&server, frames(&server).await, 30, FIRST_PICTURE_WITHIN).await;
    let (made, events) = encodes(&server).await;
    assert!(
        made <= events,
        "nobody watched: {made} JPEGs for {events} events"
    );

    // A viewer: each part is a JPEG made once for everyone.
    let before = frames(&server).await;
    assert_streams(&server, 5, (640, 360)).await;
    let (watched, events) = encodes(&server).await;
    let seen = frames(&server).await - before;
    assert!(
        watched >= made + 5 && watched <= made + seen + 1 + events,
        "{} JPEGs for {seen} frames",
        watched - made
    );

    // The viewer gone, no more JPEGs however many pictures come.
    common::wait_until(Duration::from_secs(30), || async {
        server.status().await["viewers"] == 0
    })
    .await;
    let (left, events_then) = encodes(&server).await;
    wait_frames(&server, frames(&server).await, 30, Duration::from_secs(60)).await;
    let (later, events) = encodes(&server).await;
    assert!(
        later <= left + 1 + (events - events_then),
        "{left} JPEGs when the viewer left, {later} after 30 more frames"
    );

    // A snapshot makes one, of the newest picture.
    snapshot(&server, (640, 360)).await;
    let (after, events_now) = encodes(&server).await;
    assert!(
        after > later && after <= later + 1 + (events_now - events),
        "{later} JPEGs before a snapshot, {after} after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detect_stream_gives_the_pictures_and_the_main_stream_is_passed_through() {
    let mut cam = RtspCamera::walkers(&["--main", "960x540@10"]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sub = cam.url("sub");
    let server = TestServer::start_with(&cam.url("main"), dir, |c| {
        let spec = sub.parse().expect("a source URI");
        c.cameras[0].detect_source = Some((sub.clone(), spec));
    })
    .await;
    let mut events = SseClient::subscribe(&server.url("/events")).await;

    // The pictures are the substream's; the main stream is read, undecoded.
    let st = wait_source(&server, FIRST_PICTURE_WITHIN, "both streams", |s| {
        s["state"] == "running" && s["width"] == 640
    })
    .await;
    common::wait_until(FIRST_PICTURE_WITHIN, || async {
        let main = &server.status().await["main_source"];
        main["state"] == "running" && main["stream"]["width"] == 960
    })
    .await;
    let main = server.status().await["main_source"].clone();
    assert_eq!(main["uri"], cam.url("main"), "{main}");
    assert_eq!(main["stream"]["codec"], "h264", "{main}");
    assert!(
        main["pid"].is_null(),
        "no decoder for the main stream: {main}"
    );
    assert!(
        st["source"]["pid"].as_u64().is_some(),
        "the substream's decoder"
    );
    snapshot(&server, (640, 360)).await;
    events
        .until(Duration::from_secs(120), |m| m.event == "motion")
        .await;

    // The camera goes away and comes back: the main stream's ups and downs
    // are announced apart from the camera's.
    cam.stop().await;
    let (mut main_down, mut cam_down) = (None, None);
    events
        .until(Duration::from_secs(60), |m| {
            let d = m.json();
            if m.event == "source" && d["up"] == false {
                match d.get("stream") {
                    Some(s) if s == "main" => main_down = Some(d),
                    None => cam_down = Some(d),
                    Some(_) => {}
                }
            }
            main_down.is_some() && cam_down.is_some()
        })
        .await;
    let down = main_down.expect("the main stream's down event");
    assert!(down["error"].is_string(), "{down}");
    cam.restart().await;
    events
        .until(Duration::from_secs(90), |m| {
            let d = m.json();
            m.event == "source" && d["stream"] == "main" && d["up"] == true
        })
        .await;
    common::wait_until(FIRST_PICTURE_WITHIN, || async {
        server.status().await["source"]["state"] == "running"
    })
    .await;
}

#[tokio::test]
async fn mjpeg_over_rtsp_is_published_as_it_comes() {
    let mut args = vec!["--codec", "mjpeg"];
    args.extend_from_slice(&SMALL);
    let cam = RtspCamera::start(&args).await;
    let server = TestServer::start(&cam.url("sub")).await;
    let st = wait_source(&server, FIRST_PICTURE_WITHIN, "measured", |s| {
        s["state"] == "running" && f64_of(&s["stream"]["fps"]) > 0.0
    })
    .await;
    let source = &st["source"];
    assert_eq!(source["stream"]["codec"], "jpeg", "{source}");
    // No decoder: the camera's JPEGs are the pictures.
    assert!(source["pid"].is_null(), "{source}");
    snapshot(&server, (640, 360)).await;
    assert_streams(&server, 3, (640, 360)).await;
}

#[tokio::test]
async fn udp_transport_when_asked() {
    let cam = RtspCamera::start(&SMALL).await;
    let server = TestServer::start(&format!("{}#transport=udp", cam.url("sub"))).await;
    let st = wait_running(&server).await;
    assert_eq!(st["source"]["stream"]["transport"], "udp", "{st}");
    assert_eq!(
        st["source"]["uri"],
        format!("{}#transport=udp", cam.url("sub"))
    );
    let from = frames(&server).await;
    wait_frames(&server, from, 10, Duration::from_secs(30)).await;
    snapshot(&server, (640, 360)).await;
}

/// Two cameras (the main stream and the substream of one camera): each
/// camera's own status has its own stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_camera_reports_its_own_stream() {
    let cam = RtspCamera::start(&["--main", "960x540@10", "--sub", "320x180@5"]).await;
    let cameras = vec![
        lookout::config::CameraConfig::new("yard", &cam.url("main")).unwrap(),
        lookout::config::CameraConfig::new("door", &cam.url_as("u", "p", "sub")).unwrap(),
    ];
    let server = TestServer::start_with("synthetic", tempfile::tempdir().unwrap(), move |c| {
        c.cameras = cameras
    })
    .await;
    // The password is masked in the URI shown.
    let door_uri = format!("rtsp://u:***@127.0.0.1:{}/sub", cam.port);
    for (name, uri, size) in [
        ("yard", cam.url("main"), (960, 540)),
        ("door", door_uri, (320, 180)),
    ] {
        let url = server.url(&format!("/cams/{name}/status"));
        let deadline = tokio::time::Instant::now() + FIRST_PICTURE_WITHIN;
        let st = loop {
            let st = common::fetch_json(&reqwest::Client::new(), &url).await;
            if st["source"]["state"] == "running" && st["source"]["width"].as_u64() > Some(0) {
                break st;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name}: {st}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let source = &st["source"];
        assert_eq!(source["uri"], uri, "{source}");
        assert_eq!(source["stream"]["codec"], "h264", "{source}");
        assert_eq!(
            (&source["stream"]["width"], &source["stream"]["height"]),
            (&size.0.into(), &size.1.into()),
            "{source}"
        );
        let jpeg = reqwest::get(server.url(&format!("/cams/{name}/snapshot.jpg")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(decode_jpeg(&jpeg), size);
    }
    let hub = server.status().await;
    let listed = hub["cameras"].as_array().expect("cameras");
    assert!(listed.iter().all(|c| c["state"] == "running"), "{hub}");
}

#[tokio::test]
async fn h265_is_decoded_too() {
    let mut args = vec!["--codec", "h265"];
    args.extend_from_slice(&SMALL);
    let cam = RtspCamera::start(&args).await;
    let server = TestServer::start(&cam.url("sub")).await;
    let st = wait_running(&server).await;
    let stream = &st["source"]["stream"];
    assert_eq!(stream["codec"], "h265", "{st}");
    assert!(
        stream["rfc6381"]
            .as_str()
            .is_some_and(|c| c.starts_with("hvc1.") || c.starts_with("hev1.")),
        "{stream}"
    );
    assert_eq!(
        (&stream["width"], &stream["height"]),
        (&640.into(), &360.into())
    );
    let first = snapshot(&server, (640, 360)).await;
    // The picture moves on: a later snapshot is another picture.
    let from = frames(&server).await;
    wait_frames(&server, from, 5, Duration::from_secs(20)).await;
    let later = snapshot(&server, (640, 360)).await;
    assert_ne!(first, later, "the picture did not change");
}

/// A camera that asks for `method` sign-in, with the right password.
async fn signs_in_with(method: &str) {
    let mut args = vec![
        "--user",
        "admin",
        "--password",
        "right horse",
        "--auth",
        method,
    ];
    args.extend_from_slice(&SMALL);
    let cam = RtspCamera::start(&args).await;
    let server = TestServer::start(&cam.url_as("admin", "right%20horse", "sub")).await;
    let st = wait_running(&server).await;
    assert_eq!(st["source"]["stream"]["codec"], "h264", "{st}");
    snapshot(&server, (640, 360)).await;
    let text = st.to_string();
    assert!(!text.contains("horse"), "the password shows: {text}");
}

#[tokio::test]
async fn digest_sign_in_with_the_right_password() {
    signs_in_with("digest").await;
}

#[tokio::test]
async fn basic_sign_in_with_the_right_password() {
    signs_in_with("basic").await;
}

#[tokio::test]
async fn a_wrong_password_says_401_and_never_shows_the_password() {
    let mut args = vec!["--user", "admin", "--password", "right-horse"];
    args.extend_from_slice(&SMALL);
    let cam = RtspCamera::start(&args).await;
    let server = TestServer::start(&cam.url_as("admin", "wrong-staple", "sub")).await;
    let source = wait_error(&server, Duration::from_secs(30), |e| e.contains("401")).await;
    let st = server.status().await;
    let text = st.to_string();
    for secret in ["wrong-staple", "right-horse"] {
        assert!(!text.contains(secret), "{secret} shows in /status: {text}");
    }
    assert!(
        source["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("user name or password")),
        "{source}"
    );
    // lookout itself is fine: it answers, and has no picture to give.
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(server.url("/snapshot.jpg"))
            .await
            .unwrap()
            .status(),
        503
    );
}

#[tokio::test]
async fn a_path_the_camera_does_not_have_says_404() {
    let cam = RtspCamera::start(&SMALL).await;
    let server = TestServer::start(&cam.url("nope")).await;
    let source = wait_error(&server, Duration::from_secs(30), |e| e.contains("404")).await;
    assert!(source["stream"].is_null(), "{source}");
}

/// A listener that is not a camera: every connection gets `answer` (after
/// the request has come), or nothing at all and is held open. Returns its
/// port and a count of connections.
async fn not_a_camera(
    answer: Option<&'static [u8]>,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                match answer {
                    Some(bytes) => {
                        let _ = conn.write_all(bytes).await;
                        let _ = conn.shutdown().await;
                    }
                    // Held (and read) until lookout gives up on it.
                    None => while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {},
                }
            });
        }
    });
    (port, count)
}

#[tokio::test]
async fn a_web_server_where_a_camera_should_be_is_a_clear_error() {
    let (port, connections) = not_a_camera(Some(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 21\r\n\r\n<html>a router</html>",
    ))
    .await;
    let server = TestServer::start(&format!("rtsp://127.0.0.1:{port}/sub")).await;
    let source = wait_error(&server, Duration::from_secs(30), |e| e.contains("DESCRIBE")).await;
    let error = source["last_error"].as_str().unwrap();
    assert!(!error.contains('\n'), "one line: {error:?}");
    // Tried again (with backoff), and lookout keeps answering.
    common::wait_until(Duration::from_secs(30), || async {
        connections.load(std::sync::atomic::Ordering::SeqCst) >= 2
            && server.status().await["source"]["restarts"].as_u64() >= Some(1)
    })
    .await;
}

#[tokio::test]
async fn a_port_that_never_answers_times_out_with_a_clear_error() {
    let (port, _connections) = not_a_camera(None).await;
    let server = TestServer::start(&format!("rtsp://127.0.0.1:{port}/sub")).await;
    // The DESCRIBE deadline (8 s) runs out before the stall watchdog (10 s):
    // the first failure says what happened, not "no frame".
    let source = wait_error(&server, Duration::from_secs(30), |e| !e.is_empty()).await;
    let error = source["last_error"].as_str().unwrap();
    assert!(
        error.contains("did not answer DESCRIBE within 8 s"),
        "{error}"
    );
    assert!(source["stream"].is_null(), "{source}");
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_restarts_on_the_same_port_is_read_again() {
    let mut cam = RtspCamera::start(&SMALL).await;
    let server = TestServer::start(&cam.url("sub")).await;
    wait_running(&server).await;
    let before = snapshot(&server, (640, 360)).await;
    let mut viewer = MjpegClient::connect(&server.url("/stream.jpg")).await;
    tokio::time::timeout(Duration::from_secs(10), viewer.next_part())
        .await
        .expect("a part")
        .expect("stream open");

    cam.stop().await;
    wait_source(&server, Duration::from_secs(30), "down", |s| {
        failing(s) && s["last_error"].is_string()
    })
    .await;

    cam.restart().await;
    let st = wait_source(&server, Duration::from_secs(60), "running again", |s| {
        s["state"] == "running" && s["restarts"].as_u64() >= Some(1)
    })
    .await;
    let from = st["frames"].as_u64().unwrap();
    wait_frames(&server, from, 10, Duration::from_secs(30)).await;
    let after = snapshot(&server, (640, 360)).await;
    assert_ne!(before, after, "the picture did not change");
    // The viewer connected before the camera went down gets the new
    // pictures (parts sent while it was down are fine too).
    let from = frames(&server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let part = tokio::time::timeout_at(deadline, viewer.next_part())
            .await
            .expect("the viewer gets the new pictures")
            .expect("the viewer stays connected");
        assert_eq!(decode_jpeg(&part.body), (640, 360));
        if frames(&server).await >= from + 3 {
            break;
        }
    }
}

/// A camera that hangs (its connection open, nothing sent) is given up
/// after 10 s without a frame and read again once it answers.
#[tokio::test]
async fn a_hung_camera_is_restarted_by_the_stall_watchdog() {
    let cam = RtspCamera::start(&SMALL).await;
    let server = TestServer::start(&cam.url("sub")).await;
    wait_running(&server).await;
    cam.signal("STOP");
    // Continued whatever happens below, so the camera can be killed.
    struct Resume<'a>(&'a RtspCamera);
    impl Drop for Resume<'_> {
        fn drop(&mut self) {
            self.0.signal("CONT");
        }
    }
    let resume = Resume(&cam);
    let stalled = wait_source(&server, Duration::from_secs(40), "stalled", |s| {
        failing(s)
            && s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("no frame for 10 s"))
    })
    .await;
    // Not before the 10 s: the picture was fresh a moment ago.
    assert!(
        stalled["source"]["last_frame_age_ms"].as_u64() >= Some(9_000),
        "{stalled}"
    );
    drop(resume);
    let st = wait_source(&server, Duration::from_secs(60), "running again", |s| {
        s["state"] == "running" && s["restarts"].as_u64() >= Some(1)
    })
    .await;
    let from = st["frames"].as_u64().unwrap();
    wait_frames(&server, from, 10, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_killed_decoder_is_started_again() {
    let cam = RtspCamera::start(&SMALL).await;
    let server = TestServer::start(&cam.url("sub")).await;
    let st = wait_running(&server).await;
    let pid = st["source"]["pid"].as_u64().expect("decoder pid");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let st = wait_source(&server, Duration::from_secs(60), "a new decoder", |s| {
        s["state"] == "running"
            && s["restarts"].as_u64() >= Some(1)
            && s["pid"].as_u64().is_some_and(|p| p != pid)
    })
    .await;
    assert!(
        st["source"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("decoder exited")),
        "the decoder's end is reported: {st}"
    );
    let from = st["frames"].as_u64().unwrap();
    wait_frames(&server, from, 10, Duration::from_secs(30)).await;
    snapshot(&server, (640, 360)).await;
}
