//! Real sources: ffmpeg through exec, a chained lookout over http, files and
//! folders, and restart after the camera process dies.

use crate::common;

use std::time::Duration;

use common::{decode_jpeg, ffmpeg_jpegs, wait_until, MjpegClient, TestServer};

const FFMPEG: &str = "exec:ffmpeg -hide_banner -loglevel error -re -f lavfi \
    -i testsrc2=size=320x240:rate=15 -c:v mjpeg -q:v 5 -f mjpeg -";

/// Reads a few parts and checks they are valid JPEGs of `size`.
async fn assert_streams(server: &TestServer, size: (usize, usize)) {
    let mut client = MjpegClient::connect(&server.url("/stream.jpg")).await;
    for _ in 0..3 {
        let part = tokio::time::timeout(Duration::from_secs(10), client.next_part())
            .await
            .expect("a part within 10 s")
            .expect("stream open");
        assert_eq!(decode_jpeg(&part.body), size);
    }
}

#[tokio::test]
async fn exec_source_with_real_ffmpeg() {
    let server = TestServer::start(FFMPEG).await;
    server.wait_for_frame().await;
    assert_streams(&server, (320, 240)).await;
    let st = server.status().await;
    assert_eq!(st["source"]["state"], "running");
    assert!(st["source"]["pid"].as_u64().is_some());
}

#[tokio::test]
async fn killed_exec_child_is_restarted_and_viewers_keep_receiving() {
    let server = TestServer::start(FFMPEG).await;
    server.wait_for_frame().await;
    let mut viewer = MjpegClient::connect(&server.url("/stream.jpg")).await;
    viewer.next_part().await.unwrap();
    let pid = server.status().await["source"]["pid"].as_u64().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The supervisor notices, reports it, and starts a new child.
    wait_until(Duration::from_secs(15), || async {
        let st = server.status().await;
        st["source"]["restarts"].as_u64() >= Some(1)
            && st["source"]["state"] == "running"
            && st["source"]["pid"].as_u64().is_some_and(|p| p != pid)
    })
    .await;
    let st = server.status().await;
    assert!(
        st["source"]["last_error"]
            .as_str()
            .unwrap()
            .contains("exited"),
        "{st}"
    );
    // The same viewer connection goes on receiving frames.
    for _ in 0..3 {
        let part = tokio::time::timeout(Duration::from_secs(10), viewer.next_part())
            .await
            .expect("frames resume")
            .expect("viewer stays connected");
        decode_jpeg(&part.body);
    }
}

#[tokio::test]
async fn failing_exec_reports_the_error() {
    let server = TestServer::start("exec:echo camera on fire >&2; exit 3").await;
    wait_until(Duration::from_secs(10), || async {
        let st = server.status().await;
        st["source"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("camera on fire"))
    })
    .await;
    let st = server.status().await;
    assert!(
        ["failed", "reconnecting"].contains(&st["source"]["state"].as_str().unwrap()),
        "{st}"
    );
}

#[tokio::test]
async fn http_source_chained_from_another_lookout() {
    let upstream = TestServer::start("synthetic:?size=320x240&fps=15").await;
    upstream.wait_for_frame().await;
    let downstream = TestServer::start(&upstream.url("/stream.jpg")).await;
    downstream.wait_for_frame().await;
    assert_streams(&downstream, (320, 240)).await;
    assert_eq!(downstream.status().await["source"]["state"], "running");
}

#[tokio::test]
async fn http_source_polls_a_snapshot_url() {
    let upstream = TestServer::start("synthetic:?size=160x120&fps=15").await;
    upstream.wait_for_frame().await;
    let downstream = TestServer::start(&format!("{}#fps=10", upstream.url("/snapshot.jpg"))).await;
    downstream.wait_for_frame().await;
    wait_until(Duration::from_secs(10), || async {
        downstream.status().await["frames"].as_u64() >= Some(5)
    })
    .await;
    assert_streams(&downstream, (160, 120)).await;
}

#[tokio::test]
async fn http_source_down_is_retried_and_reported() {
    // Nothing listens on this port: bind it, learn the port, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start(&format!("http://127.0.0.1:{port}/stream.jpg")).await;
    wait_until(Duration::from_secs(10), || async {
        server.status().await["source"]["last_error"]
            .as_str()
            .is_some()
    })
    .await;
    let resp = reqwest::get(server.url("/snapshot.jpg")).await.unwrap();
    assert_eq!(resp.status(), 503);
}

#[tokio::test]
async fn file_source_from_a_folder_of_jpegs() {
    let frames = tempfile::tempdir().unwrap();
    ffmpeg_jpegs(frames.path(), 5, "200x150");
    std::fs::write(frames.path().join("notes.txt"), "not a picture").unwrap();
    let server = TestServer::start(&format!("file:{}?fps=20", frames.path().display())).await;
    server.wait_for_frame().await;
    assert_streams(&server, (200, 150)).await;
    // It loops: more frames than files.
    wait_until(Duration::from_secs(10), || async {
        server.status().await["frames"].as_u64() > Some(7)
    })
    .await;
}

#[tokio::test]
async fn file_source_from_an_mjpeg_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = ffmpeg_jpegs(dir.path(), 4, "240x160");
    let mut mjpeg = Vec::new();
    for f in &files {
        mjpeg.extend(std::fs::read(f).unwrap());
        mjpeg.extend(b"garbage between frames");
    }
    let clip = dir.path().join("clip.mjpeg");
    std::fs::write(&clip, mjpeg).unwrap();
    let server = TestServer::start(&format!("file:{}?fps=20", clip.display())).await;
    server.wait_for_frame().await;
    assert_streams(&server, (240, 160)).await;
    wait_until(Duration::from_secs(10), || async {
        server.status().await["frames"].as_u64() > Some(5)
    })
    .await;
}

#[tokio::test]
async fn missing_file_is_reported() {
    let server = TestServer::start("file:/definitely/not/here.mjpeg").await;
    wait_until(Duration::from_secs(10), || async {
        server.status().await["source"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("/definitely/not/here.mjpeg"))
    })
    .await;
}

#[tokio::test]
async fn missing_v4l2_device_says_what_to_do() {
    let server = TestServer::start("v4l2:/dev/video-lookout-test").await;
    wait_until(Duration::from_secs(10), || async {
        server.status().await["source"]["last_error"]
            .as_str()
            .is_some()
    })
    .await;
    let st = server.status().await;
    let err = st["source"]["last_error"].as_str().unwrap();
    assert!(err.contains("/dev/video-lookout-test"), "{err}");
}
