//! Watching: /snapshot.jpg and /stream.jpg over real sockets.

use crate::common;

use std::time::{Duration, Instant};

use common::{decode_jpeg, ffmpeg_jpegs, wait_until, MjpegClient, TestServer};

const SMALL: &str = "synthetic:?size=320x240&fps=20";

#[tokio::test]
async fn snapshot_is_a_valid_jpeg() {
    let server = TestServer::start(SMALL).await;
    server.wait_for_frame().await;
    let resp = reqwest::get(server.url("/snapshot.jpg")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body = resp.bytes().await.unwrap();
    assert_eq!(decode_jpeg(&body), (320, 240));
}

#[tokio::test]
async fn snapshot_before_first_frame_is_503_json() {
    // A camera command that never sends a frame.
    let server = TestServer::start("exec:sleep 60").await;
    let resp = reqwest::get(server.url("/snapshot.jpg")).await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"error": "no frame yet"}));
}

/// A camera the test holds back: an HTTP server that answers each request
/// with the head of an MJPEG stream at once, but sends frames (`jpeg`, every
/// 100 ms) only once the returned gate is opened. It serves any number of
/// connections, so a source restart (after its stall timeout on a slow
/// machine) finds it again. Returns the stream's URL and the gate.
async fn gated_camera(jpeg: Vec<u8>) -> (String, tokio::sync::watch::Sender<bool>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/video", listener.local_addr().unwrap());
    let (gate, opened) = tokio::sync::watch::channel(false);
    let jpeg = std::sync::Arc::new(jpeg);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let mut opened = opened.clone();
            let jpeg = jpeg.clone();
            tokio::spawn(async move {
                let mut socket = tokio::io::BufReader::new(socket);
                // The request head, up to its empty line.
                let mut line = String::new();
                loop {
                    line.clear();
                    if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let head = "HTTP/1.1 200 OK\r\n\
                    Content-Type: multipart/x-mixed-replace; boundary=cam\r\n\
                    Connection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                if opened.wait_for(|open| *open).await.is_err() {
                    return;
                }
                loop {
                    let part = format!(
                        "--cam\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                        jpeg.len()
                    );
                    let sent = async {
                        socket.write_all(part.as_bytes()).await?;
                        socket.write_all(&jpeg).await?;
                        socket.write_all(b"\r\n").await
                    };
                    if sent.await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
    });
    (url, gate)
}

#[tokio::test]
async fn stream_opens_before_the_first_frame_and_frames_follow() {
    let pictures = tempfile::tempdir().unwrap();
    let file = &ffmpeg_jpegs(pictures.path(), 1, "160x120")[0];
    let (camera, gate) = gated_camera(std::fs::read(file).unwrap()).await;
    let server = TestServer::start(&camera).await;

    // No frame yet, and none can come before the gate opens: the stream
    // answers at once all the same, as a stream.
    let mut client = tokio::time::timeout(
        Duration::from_secs(10),
        MjpegClient::connect(&server.url("/stream.jpg")),
    )
    .await
    .expect("stream answered before the first frame");
    assert_eq!(
        client.content_type,
        "multipart/x-mixed-replace; boundary=frame"
    );
    // The snapshot cannot wait, so it still says there is nothing yet.
    let snap = reqwest::get(server.url("/snapshot.jpg")).await.unwrap();
    assert_eq!(snap.status(), 503);
    assert_eq!(server.status().await["frames"], 0);
    // A waiting viewer holds its slot, and gives it back when it leaves.
    assert_eq!(server.status().await["viewers"], 1);
    let other = MjpegClient::connect(&server.url("/stream.jpg")).await;
    assert_eq!(server.status().await["viewers"], 2);
    drop(other);
    wait_until(Duration::from_secs(10), || async {
        server.status().await["viewers"] == 1
    })
    .await;

    // The camera delivers: the open stream gets its first part.
    gate.send_replace(true);
    let part = tokio::time::timeout(Duration::from_secs(30), client.next_part())
        .await
        .expect("first part once the camera delivers")
        .expect("stream open");
    assert_eq!(part.header("content-type"), Some("image/jpeg"));
    assert_eq!(decode_jpeg(&part.body), (160, 120));
    client.next_part().await.expect("and the ones after it");
}

#[tokio::test]
async fn stream_parts_are_exact_and_valid_jpegs() {
    let server = TestServer::start(SMALL).await;
    server.wait_for_frame().await;
    let mut client = MjpegClient::connect(&server.url("/stream.jpg")).await;
    assert_eq!(
        client.content_type,
        "multipart/x-mixed-replace; boundary=frame"
    );
    let mut last_ts = 0.0;
    for _ in 0..5 {
        let part = client.next_part().await.expect("a part");
        assert_eq!(part.header("content-type"), Some("image/jpeg"));
        assert_eq!(
            part.header("content-length").unwrap(),
            part.body.len().to_string()
        );
        let ts: f64 = part.header("x-timestamp").unwrap().parse().unwrap();
        assert!(ts > last_ts, "timestamps increase");
        last_ts = ts;
        assert_eq!(decode_jpeg(&part.body), (320, 240));
        // The boundary that closes this part is already on the wire, so a
        // browser can draw the frame now rather than one frame later.
        assert!(
            client.buffered().starts_with(b"--frame\r\n"),
            "boundary sent with the frame"
        );
    }
}

#[tokio::test]
async fn first_frame_goes_out_at_once() {
    // At 1 fps, waiting for the next frame would take up to a second.
    let server = TestServer::start("synthetic:?size=160x120&fps=1").await;
    server.wait_for_frame().await;
    let started = Instant::now();
    let mut client = MjpegClient::connect(&server.url("/stream.jpg")).await;
    client.next_part().await.expect("current frame");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "current frame sent on connect"
    );
}

#[tokio::test]
async fn many_viewers_keep_pace_beside_a_stalled_one() {
    let server = TestServer::start(SMALL).await;
    server.wait_for_frame().await;
    // A viewer that connects and never reads: its socket buffers fill up.
    let stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stalled = stalled;
    stalled
        .write_all(b"GET /stream.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();

    let window = Duration::from_secs(3);
    let frames_before = server.status().await["frames"].as_u64().unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let url = server.url("/stream.jpg");
        tasks.push(tokio::spawn(async move {
            let mut client = MjpegClient::connect(&url).await;
            client.next_part().await.expect("first part");
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < window {
                client.next_part().await.expect("part");
                n += 1;
            }
            f64::from(n) / start.elapsed().as_secs_f64()
        }));
    }
    let mut rates = Vec::new();
    for t in tasks {
        rates.push(t.await.unwrap());
    }
    let frames_after = server.status().await["frames"].as_u64().unwrap();
    let source_fps = (frames_after - frames_before) as f64 / started.elapsed().as_secs_f64();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // Every viewer keeps up with what the source produced in the same time
    // (measured, since a shared machine may slow the source itself). A loose
    // bound: this checks that nobody is held back, it is not a benchmark.
    assert!(
        rates[0] > 0.7 * source_fps,
        "slowest viewer got {:.1} fps of the source's {source_fps:.1}: {rates:?}",
        rates[0]
    );
    // The 30 readers are gone; the stalled viewer is still connected.
    wait_until(Duration::from_secs(5), || async {
        server.status().await["viewers"] == 1
    })
    .await;
    drop(stalled);
}

#[tokio::test]
async fn departed_viewers_are_cleaned_up() {
    let server = TestServer::start(SMALL).await;
    server.wait_for_frame().await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = MjpegClient::connect(&server.url("/stream.jpg")).await;
        c.next_part().await.unwrap();
        clients.push(c);
    }
    assert_eq!(server.status().await["viewers"], 3);
    drop(clients);
    wait_until(Duration::from_secs(5), || async {
        server.status().await["viewers"] == 0
    })
    .await;
}

#[tokio::test]
async fn fps_cap_limits_one_viewer() {
    let server = TestServer::start(SMALL).await;
    server.wait_for_frame().await;
    let mut client = MjpegClient::connect(&server.url("/stream.jpg?fps=4")).await;
    client.next_part().await.unwrap();
    let start = Instant::now();
    for _ in 0..4 {
        client.next_part().await.unwrap();
    }
    // Four more frames at 4 fps take at least ~1 s (20 fps uncapped: 0.2 s).
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    let bad = reqwest::get(server.url("/stream.jpg?fps=-1"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let server = TestServer::start(SMALL).await;
    server.wait_for_frame().await;
    let mut client = MjpegClient::connect(&server.url("/stream.jpg")).await;
    client.next_part().await.unwrap();
    let stopped = server.stop();
    let drained = async { while client.next_part().await.is_some() {} };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(stopped, drained)
    })
    .await
    .expect("server and stream end promptly");
    result.unwrap();
}
