//! `/live.mp4`: an RTSP camera's own H.264 as fragmented MP4, played back
//! by ffprobe, with every slice byte for byte what the camera sent (nothing
//! re-encoded), over a real lookout reading the scripted camera
//! (tests/common/fakecam.rs).

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::fakecam::{self, FakeCam, Script};
use common::mp4::{boxes, nals};
use common::Binary;
use futures_util::StreamExt;

/// Deadline for what should happen within seconds on an idle machine.
const WAIT: Duration = Duration::from_secs(60);

/// Starts lookout on `source`; returns its base URL and the child (killed
/// on drop) with its data folder.
async fn lookout(source: &str) -> (String, tokio::process::Child, tempfile::TempDir) {
    lookout::install_crypto_provider();
    let data = tempfile::tempdir().expect("temp dir");
    let mut bin = Binary::spawn(
        &["--listen", "127.0.0.1:0", "--source", source],
        data.path(),
    );
    let base = bin.wait_for_url("http").await;
    let (child, _log) = bin.collect();
    (base, child, data)
}

/// GETs `url` as JSON.
async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON")
}

/// Reads `url` for about `secs` seconds (or `max` bytes).
async fn read_for(url: &str, secs: u64, max: usize) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    // 503 until the camera's parameters are known: ask again.
    let resp = loop {
        let r = client.get(url).send().await.expect("live.mp4 answers");
        if r.status() == 200 {
            break r;
        }
        assert_eq!(r.status(), 503, "live.mp4: {}", r.status());
        assert!(
            tokio::time::Instant::now() < deadline,
            "live.mp4 within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let headers = resp.headers().clone();
    let mut body = resp.bytes_stream();
    let mut out = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while out.len() < max {
        match tokio::time::timeout_at(until, body.next()).await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk.expect("body chunk")),
            Ok(None) | Err(_) => break,
        }
    }
    (headers, out)
}

#[tokio::test]
async fn live_mp4_is_the_cameras_own_h264_from_a_keyframe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let footage = fakecam::encode_footage(dir.path(), 100, 10, 20);
    let sent: HashSet<Vec<u8>> = fakecam::access_units(&std::fs::read(&footage).expect("footage"))
        .into_iter()
        .flat_map(|au| au.nals)
        .collect();
    let cam = FakeCam::start(&footage, Script::default()).await;
    let (base, _child, _data) = lookout(&cam.url).await;

    let (headers, body) = read_for(&format!("{base}/live.mp4"), 4, 4 << 20).await;
    let content_type = headers["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("video/mp4; codecs=\"avc1."),
        "{content_type}"
    );
    assert_eq!(headers["x-video-size"], "320x240");
    assert_eq!(headers["cache-control"], "no-store");

    let (parts, _) = boxes(&body);
    let kinds: Vec<&str> = parts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(&kinds[..2], ["ftyp", "moov"], "an init segment first");
    let samples: Vec<&[u8]> = parts
        .iter()
        .filter(|(k, _)| k == "mdat")
        .map(|(_, body)| *body)
        .collect();
    assert!(
        samples.len() >= 10,
        "frames in 4 s at 10 fps: {}",
        samples.len()
    );
    // Every slice is the camera's, byte for byte; the first is a keyframe.
    let mut slices = 0;
    for (i, sample) in samples.iter().enumerate() {
        for nal in nals(sample) {
            let kind = nal[0] & 0x1f;
            if i == 0 && matches!(kind, 1 | 5) {
                assert_eq!(kind, 5, "the first frame is an IDR");
            }
            if matches!(kind, 1 | 5) {
                assert!(sent.contains(nal), "slice {i} is not one the camera sent");
                slices += 1;
            }
        }
    }
    assert!(slices >= samples.len(), "a slice in every frame");

    // And a player takes it: ffprobe reads the codec, size and frames.
    let file = dir.path().join("live.mp4");
    std::fs::write(&file, &body).expect("write");
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(text.contains("codec_name=h264"), "{text}");
    assert!(
        text.contains("width=320") && text.contains("height=240"),
        "{text}"
    );
    let frames: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("nb_read_frames="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        frames + 1 >= samples.len(),
        "ffprobe decoded {frames} of {}",
        samples.len()
    );
}

#[tokio::test]
async fn live_mp4_is_refused_clearly_where_there_is_no_video() {
    let (base, _child, _data) = lookout("synthetic:?size=320x240&fps=5").await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{base}/live.mp4"))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("/stream.jpg")),
        "{body}"
    );
    let cams = get_json(&client, &format!("{base}/cams")).await;
    assert!(cams["cameras"][0].get("live_url").is_none(), "{cams}");

    let dir = tempfile::tempdir().expect("temp dir");
    let footage = fakecam::encode_footage(dir.path(), 40, 10, 20);
    let cam = FakeCam::start(&footage, Script::default()).await;
    let (base, _child2, _data2) = lookout(&cam.url).await;
    let r = client
        .get(format!("{base}/live.mp4?stream=best"))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 400);
    let cams = get_json(&client, &format!("{base}/cams")).await;
    assert_eq!(cams["cameras"][0]["live_url"], "/cams/cam/live.mp4");
    // Without a detect stream, ?stream=detect is the main stream.
    let (headers, body) = read_for(&format!("{base}/live.mp4?stream=detect"), 2, 1 << 20).await;
    assert_eq!(headers["x-video-size"], "320x240");
    assert!(boxes(&body).0.iter().any(|(k, _)| k == "mdat"));
}

#[tokio::test]
async fn the_streams_figures_reach_metrics_that_promtool_accepts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let footage = fakecam::encode_footage(dir.path(), 60, 10, 20);
    let cam = FakeCam::start(&footage, Script::default()).await;
    let (base, _child, _data) = lookout(&cam.url).await;
    let client = reqwest::Client::new();
    // The bitrate is measured over about 2 s; the keyframe interval needs two.
    let deadline = tokio::time::Instant::now() + WAIT;
    let text = loop {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("text");
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let bytes = value(r#"lookout_video_bytes_per_second{camera="cam",stream="main"} "#);
        let gop = value(r#"lookout_video_keyframe_interval_seconds{camera="cam",stream="main"} "#);
        if bytes.is_some_and(|b| b > 1_000.0) && gop.is_some_and(|g| (1.0..=3.0).contains(&g)) {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "video figures in /metrics within {WAIT:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let file = dir.path().join("scrape.txt");
    std::fs::write(&file, &text).expect("write");
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).expect("open"))
        .output();
    match out {
        Ok(out) => assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() => {
            eprintln!("skipped promtool: not installed (scripts/test installs it)");
        }
        Err(e) => panic!("promtool cannot run: {e}"),
    }
}
