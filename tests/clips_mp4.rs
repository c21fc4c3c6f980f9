//! Clips of an RTSP camera are MP4 of its own H.264: motion in the scripted
//! camera's footage (tests/common/fakecam.rs: people walking) gives a
//! `motion-<ms>.mp4` that ffprobe reads, starting at a keyframe, every slice
//! byte for byte what the camera sent; and a clip cut by `kill -9` is there
//! and decodes after the next start.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fakecam::{self, FakeCam, Script};
use common::mp4::{boxes, nals};
use common::{wait_until, Binary, Log};
use serde_json::Value;

/// Deadline for what takes seconds on an idle machine.
const WAIT: Duration = Duration::from_secs(90);

/// Starts lookout on `source` with `settings` (a `[settings]` table) in
/// `data`; returns its base URL, the child (killed on drop) and its log.
async fn lookout(
    source: &str,
    settings: &str,
    data: &Path,
) -> (String, tokio::process::Child, Log) {
    lookout::install_crypto_provider();
    let config = data.with_extension("toml");
    std::fs::write(&config, format!("[settings]\n{settings}")).expect("config");
    let config = config.to_str().expect("utf8 path");
    let mut bin = Binary::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--source",
            source,
            "--config",
            config,
        ],
        data,
    );
    let base = bin.wait_for_url("http").await;
    let (child, log) = bin.collect();
    (base, child, log)
}

/// The footage the camera sends, and every NAL unit in it.
fn footage(dir: &Path) -> (PathBuf, HashSet<Vec<u8>>) {
    let footage = fakecam::encode_footage(dir, 100, 10, 20);
    let sent = fakecam::access_units(&std::fs::read(&footage).expect("footage"))
        .into_iter()
        .flat_map(|au| au.nals)
        .collect();
    (footage, sent)
}

/// The first listed clip of `base` whose name ends with `.mp4`.
async fn mp4_clip(client: &reqwest::Client, base: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list: Value = client
            .get(format!("{base}/clips"))
            .send()
            .await
            .expect("/clips answers")
            .json()
            .await
            .expect("/clips JSON");
        let clips = list["clips"].as_array().cloned().unwrap_or_default();
        if let Some(c) = clips.iter().find(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("motion-") && n.ends_with(".mp4"))
        }) {
            return c.clone();
        }
        assert!(
            clips.is_empty(),
            "an RTSP camera's clips are MP4: {clips:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "an MP4 clip within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// ffprobe's view of `file`: codec, width, height, frames, duration.
fn probe(file: &Path) -> (String, u64, u64, u64, f64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration",
        ])
        .args(["-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe runs (scripts/test installs ffmpeg)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let s = &v["streams"][0];
    let num = |x: &Value| {
        x.as_u64()
            .or_else(|| x.as_str().and_then(|n| n.parse().ok()))
            .unwrap_or_else(|| panic!("a number: {v}"))
    };
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("a duration: {v}"));
    (
        s["codec_name"].as_str().unwrap_or_default().to_string(),
        num(&s["width"]),
        num(&s["height"]),
        num(&s["nb_read_frames"]),
        duration,
    )
}

/// A `Range` request for bytes 4-7 of the MP4 at `url` gets a 206 with the
/// first box's type.
async fn range_gives_ftyp(client: &reqwest::Client, url: &str) {
    let part = client
        .get(url)
        .header("range", "bytes=4-7")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(&part.bytes().await.expect("part")[..], b"ftyp");
}

/// Decodes every frame of `file` with ffmpeg: no error, nothing on stderr.
fn decodes(file: &Path) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg decodes {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn an_rtsp_cameras_clip_is_mp4_of_its_own_h264_from_a_keyframe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (footage, sent) = footage(dir.path());
    let cam = FakeCam::start(&footage, Script::default()).await;
    let data = dir.path().join("data");
    // Pre-roll 1 s (from a keyframe: up to 2 s more with 2 s GOPs), and the
    // shortest cap: the walkers keep moving.
    let settings = "cooldown_s = 1\nthreshold = 5\nclip_pre_s = 1\nclip_post_s = 1\n\
                    clip_max_s = 10\n";
    let (base, _child, _log) = lookout(&cam.url, settings, &data).await;
    let client = reqwest::Client::new();

    let clip = mp4_clip(&client, &base).await;
    let name = clip["name"].as_str().expect("name").to_string();
    let url = format!("{base}/clips/{name}");
    let resp = client.get(&url).send().await.expect("clip");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    let body = resp.bytes().await.expect("clip body").to_vec();
    assert_eq!(clip["bytes"].as_u64(), Some(body.len() as u64), "{clip}");

    // HEAD and Range as for Matroska clips.
    let head = client.head(&url).send().await.expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], body.len().to_string());
    range_gives_ftyp(&client, &url).await;
    // No frame index: the file is played as it is.
    let index = client
        .get(format!("{url}/index"))
        .send()
        .await
        .expect("index");
    assert_eq!(index.status(), 400);
    let error: Value = index.json().await.expect("JSON error");
    assert!(error.to_string().contains("MP4"), "{error}");
    let thumb = client
        .get(format!("{url}/thumb"))
        .send()
        .await
        .expect("thumb");
    assert_eq!(thumb.status(), 200, "a thumbnail from the camera's picture");

    // Every slice is the camera's, byte for byte; the first frame is an IDR.
    let (parts, rest) = boxes(&body);
    assert_eq!(rest, 0, "the clip is whole boxes");
    let kinds: Vec<&str> = parts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(&kinds[..2], ["ftyp", "moov"], "an init segment first");
    let samples: Vec<&[u8]> = parts
        .iter()
        .filter(|(k, _)| k == "mdat")
        .map(|(_, b)| *b)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "moof").count(),
        samples.len()
    );
    let mut slices = 0;
    for (i, sample) in samples.iter().enumerate() {
        for nal in nals(sample) {
            let kind = nal[0] & 0x1f;
            if matches!(kind, 1 | 5) {
                if i == 0 {
                    assert_eq!(kind, 5, "the first frame is an IDR");
                }
                assert!(sent.contains(nal), "slice {i} is not one the camera sent");
                slices += 1;
            }
        }
    }
    assert!(slices >= samples.len(), "a slice in every frame");

    // A player takes it: codec, size, every frame, the length.
    let file = dir.path().join(&name);
    std::fs::write(&file, &body).expect("write");
    let (codec, width, height, frames, duration) = probe(&file);
    assert_eq!(codec, "h264");
    assert_eq!((width, height), (320, 240));
    assert_eq!(frames, samples.len() as u64);
    assert_eq!(clip["frames"].as_u64(), Some(frames), "{clip}");
    // Pre-roll (1-3 s) + episode + post-roll (1 s), within the 10 s cap.
    assert!((2.0..=12.0).contains(&duration), "duration {duration} s");
    let listed = clip["duration_s"].as_f64().expect("duration_s");
    assert!((listed - duration).abs() < 0.5, "{listed} vs {duration}");
    // At the camera's 10 fps: every frame kept, none re-timed.
    let rate = frames as f64 / duration;
    assert!(
        (8.0..=12.0).contains(&rate),
        "{frames} frames in {duration} s"
    );
    decodes(&file);
    eprintln!(
        "{name}: {frames} frames, {duration:.2} s, {} bytes",
        body.len()
    );
}

#[tokio::test]
async fn an_mp4_clip_cut_by_kill_9_is_kept_and_decodes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (footage, _) = footage(dir.path());
    let cam = FakeCam::start(&footage, Script::default()).await;
    let data = dir.path().join("data");
    // A long clip: still being recorded when the process is killed.
    let settings = "cooldown_s = 1\nthreshold = 5\nclip_pre_s = 1\nclip_post_s = 30\n\
                    clip_max_s = 120\n";
    let (base, mut child, _log) = lookout(&cam.url, settings, &data).await;
    let client = reqwest::Client::new();

    // Wait for the clip being recorded to hold a few seconds.
    let recording = || {
        let folder = std::fs::read_dir(data.join("clips"))
            .ok()?
            .flatten()
            .next()?
            .path();
        std::fs::read_dir(folder).ok()?.flatten().find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let len = e.metadata().ok()?.len();
            name.strip_prefix(".rec-")
                .filter(|n| n.ends_with(".mp4") && len > 40_000)
                .map(str::to_string)
        })
    };
    wait_until(WAIT, || async { recording().is_some() }).await;
    let name = recording().expect("a clip being recorded");
    let status: Value = client
        .get(format!("{base}/status"))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("status JSON");
    assert!(
        status["clips"]["recording"]
            .as_str()
            .is_some_and(|u| u.ends_with(&name)),
        "{}",
        status["clips"]
    );
    child.start_kill().expect("kill -9");
    child.wait().await.expect("reaped");

    let (base, _child, _log) = lookout(&cam.url, settings, &data).await;
    let list: Value = client
        .get(format!("{base}/clips"))
        .send()
        .await
        .expect("/clips")
        .json()
        .await
        .expect("/clips JSON");
    let kept = list["clips"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name.as_str()).cloned())
        .unwrap_or_else(|| panic!("clip {name} kept: {list}"));
    let body = client
        .get(format!("{base}/clips/{name}"))
        .send()
        .await
        .expect("clip")
        .bytes()
        .await
        .expect("clip body");
    let file = dir.path().join(&name);
    std::fs::write(&file, &body).expect("write");
    let (codec, width, height, frames, _) = probe(&file);
    assert_eq!((codec.as_str(), width, height), ("h264", 320, 240));
    assert!(frames >= 10, "{frames} frames kept");
    assert_eq!(kept["frames"].as_u64(), Some(frames), "{kept}");
    decodes(&file);
}

/// `GET {base}/recordings` (the last 24 hours).
async fn recordings(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/recordings"))
        .send()
        .await
        .expect("/recordings answers")
        .json()
        .await
        .expect("/recordings JSON")
}

#[tokio::test]
async fn continuous_recording_cuts_playable_segments_and_keeps_them_through_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (footage, sent) = footage(dir.path());
    let cam = FakeCam::start(&footage, Script::default()).await;
    let data = dir.path().join("data");
    let settings = "record = \"continuous\"\nsegment_s = 10\ncooldown_s = 1\nthreshold = 5\n\
                    clip_pre_s = 1\nclip_post_s = 1\nclip_max_s = 10\n";
    let (base, mut child, _log) = lookout(&cam.url, settings, &data).await;
    let client = reqwest::Client::new();

    // Two segments one after the other, and the walkers' episodes on them.
    let deadline = tokio::time::Instant::now() + WAIT;
    let list = loop {
        let list = recordings(&client, &base).await;
        let n = list["recordings"].as_array().map_or(0, Vec::len);
        let episodes = list["episodes"].as_array().map_or(0, Vec::len);
        if n >= 2 && episodes >= 1 {
            break list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "two segments and an episode within {WAIT:?}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(list["recording"]["mode"], "continuous", "{list}");
    assert_eq!(list["recording"]["segment_s"], 10, "{list}");
    let since = list["recording"]["since"].as_f64();
    let last_end = list["recordings"]
        .as_array()
        .and_then(|s| s.last())
        .and_then(|s| s["end_ts"].as_f64());
    if let (Some(since), Some(end)) = (since, last_end) {
        assert!(
            since >= end - 0.5,
            "the segment under way began after the last one: {list}"
        );
    }
    let segments = list["recordings"].as_array().expect("recordings");
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    for pair in segments.windows(2) {
        // Oldest first, and no gap: the next starts at the keyframe that
        // ended the one before.
        let gap = f(&pair[1], "start_ts") - f(&pair[0], "end_ts");
        assert!(gap.abs() < 0.5, "segments follow each other: {pair:?}");
    }
    let episode = &list["episodes"][0];
    assert!(
        f(episode, "end_ts") > f(episode, "start_ts"),
        "an episode has a span: {episode}"
    );

    let first = &segments[0];
    let name = first["name"].as_str().expect("name");
    assert!(
        name.starts_with("segment-") && name.ends_with(".mp4"),
        "{name}"
    );
    let url = format!("{base}/recordings/{name}");
    let resp = client.get(&url).send().await.expect("segment");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    let body = resp.bytes().await.expect("segment body").to_vec();
    assert_eq!(first["bytes"].as_u64(), Some(body.len() as u64), "{first}");
    range_gives_ftyp(&client, &url).await;
    for bad in ["..%2Fx", "motion-1.mp4", "segment-1-1.mp4"] {
        let status = client
            .get(format!("{base}/recordings/{bad}"))
            .send()
            .await
            .expect("bad name")
            .status();
        assert!(matches!(status.as_u16(), 400 | 404), "{bad}: {status}");
    }

    // The camera's own slices, from an IDR; about the length asked for
    // (cut at the first keyframe after 10 s: 2 s GOPs).
    let (parts, _) = boxes(&body);
    let samples: Vec<&[u8]> = parts
        .iter()
        .filter(|(k, _)| k == "mdat")
        .map(|(_, b)| *b)
        .collect();
    for (i, sample) in samples.iter().enumerate() {
        for nal in nals(sample)
            .into_iter()
            .filter(|n| matches!(n[0] & 0x1f, 1 | 5))
        {
            if i == 0 {
                assert_eq!(nal[0] & 0x1f, 5, "a segment starts with an IDR");
            }
            assert!(sent.contains(nal), "slice {i} is not one the camera sent");
        }
    }
    let file = dir.path().join(name);
    std::fs::write(&file, &body).expect("write");
    let (codec, width, height, frames, duration) = probe(&file);
    assert_eq!((codec.as_str(), width, height), ("h264", 320, 240));
    assert!((9.5..=13.0).contains(&duration), "duration {duration} s");
    assert!((f(first, "duration_s") - duration).abs() < 0.5, "{first}");
    let rate = frames as f64 / duration;
    assert!(
        (8.0..=12.0).contains(&rate),
        "{frames} frames in {duration} s"
    );
    decodes(&file);

    // kill -9 in the middle of a segment: it is kept, cut after its last
    // whole frame, at the next start.
    // Half a segment in: a few seconds of frames on the disk.
    let half = body.len() as u64 / 2;
    let folder = data.join("clips");
    let recording = || {
        let cam = std::fs::read_dir(&folder).ok()?.flatten().next()?.path();
        std::fs::read_dir(cam.join("continuous"))
            .ok()?
            .flatten()
            .find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let len = e.metadata().ok()?.len();
                name.strip_prefix(".rec-segment-")
                    .and_then(|n| n.strip_suffix(".mp4"))
                    .filter(|_| len > half)
                    .map(str::to_string)
            })
    };
    wait_until(WAIT, || async { recording().is_some() }).await;
    let start = recording().expect("a segment being recorded");
    child.start_kill().expect("kill -9");
    child.wait().await.expect("reaped");
    let (base, _child, _log) = lookout(&cam.url, settings, &data).await;
    let list = recordings(&client, &base).await;
    let kept = list["recordings"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| {
                    s["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(&format!("segment-{start}-")))
                })
                .cloned()
        })
        .unwrap_or_else(|| panic!("the segment cut by kill -9 ({start}) is kept: {list}"));
    let body = client
        .get(format!(
            "{base}/recordings/{}",
            kept["name"].as_str().expect("name")
        ))
        .send()
        .await
        .expect("kept segment")
        .bytes()
        .await
        .expect("body");
    let file = dir.path().join("kept.mp4");
    std::fs::write(&file, &body).expect("write");
    let (codec, _, _, frames, _) = probe(&file);
    assert_eq!(codec, "h264");
    assert!(frames >= 10, "{frames} frames kept");
    decodes(&file);
}
