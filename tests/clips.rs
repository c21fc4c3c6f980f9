//! Event clips end to end: recorded around motion from a real camera feed
//! (a `file:` folder of JPEGs with motion exactly where the test puts it),
//! read back by ffprobe, served with `Range`, kept through `kill -9`, and
//! failing alone when they cannot be written.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::sse::{Msg, SseClient};
use common::{square_jpeg, wait_until, Binary, TestServer};
use serde_json::Value;

/// A looped scene at 10 fps, 11 s: 3 s still, 1.5 s of a square crossing,
/// 2 s still, 1.5 s of it again, 3 s still. With a 1 s cooldown that is two
/// episodes 2 s apart, so a post-roll of 3 s joins them in one clip.
fn two_bursts(dir: &Path) -> HashSet<Vec<u8>> {
    let mut frames = HashSet::new();
    let mut put = |prefix: &str, i: usize, jpeg: Vec<u8>| {
        std::fs::write(dir.join(format!("{prefix}{i:03}.jpg")), &jpeg).expect("write frame");
        frames.insert(jpeg);
    };
    let still = square_jpeg(None);
    for i in 0..30 {
        put("a", i, still.clone());
    }
    for i in 0..15 {
        put("b", i, square_jpeg(Some(i * 7)));
    }
    for i in 0..20 {
        put("c", i, still.clone());
    }
    for i in 0..15 {
        put("d", i, square_jpeg(Some(100 - i * 7)));
    }
    for i in 0..30 {
        put("e", i, still.clone());
    }
    frames
}

fn source(dir: &Path) -> String {
    format!("file:{}?fps=10", dir.display())
}

async fn start(scene: &Path, tweak: impl FnOnce(&mut lookout::settings::Settings)) -> TestServer {
    TestServer::start_with(
        &source(scene),
        tempfile::tempdir().expect("temp dir"),
        |c| {
            let s = &mut c.cameras[0].settings;
            s.cooldown_s = 1;
            s.threshold = 5;
            s.clip_pre_s = 2;
            s.clip_post_s = 3;
            tweak(s);
        },
    )
    .await
}

/// Events until the first clip that holds two motion starts is announced;
/// returns that clip's events (motion, motion_end and its `clip`).
async fn clip_of_two_episodes(sse: &mut SseClient) -> Vec<Value> {
    let mut by_clip: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg: Msg = sse.next(left).await;
        let d = msg.json();
        match msg.event.as_str() {
            "motion" | "motion_end" => {
                let mut d = d;
                d["kind"] = Value::from(msg.event.clone());
                by_clip.push(d);
            }
            "clip" => {
                let url = d["url"].as_str().unwrap_or_default().to_string();
                let mine: Vec<Value> = by_clip
                    .iter()
                    .filter(|e| e["clip"] == url.as_str())
                    .cloned()
                    .collect();
                let starts = mine.iter().filter(|e| e["kind"] == "motion").count();
                if d["ok"] == true && starts >= 2 {
                    let mut all = mine;
                    all.push(d);
                    return all;
                }
            }
            _ => {}
        }
    }
}

fn ffprobe(path: &Path) -> (u64, f64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,nb_read_frames:format=duration",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/test installs ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    assert_eq!(v["streams"][0]["codec_name"], "mjpeg", "{v}");
    let frames = v["streams"][0]["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .expect("frame count");
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("duration");
    (frames, duration)
}

fn clip_path(data: &Path, camera: &str, name: &str) -> PathBuf {
    data.join("clips").join(camera).join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_holds_the_episodes_with_pre_and_post_roll() {
    let scene = tempfile::tempdir().expect("temp dir");
    let camera_frames = two_bursts(scene.path());
    let server = start(scene.path(), |_| {}).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let events = clip_of_two_episodes(&mut sse).await;
    let clip = events.last().expect("clip event").clone();
    let url = clip["url"].as_str().expect("url").to_string();
    let name = clip["name"].as_str().expect("name").to_string();
    assert!(
        url.starts_with("/clips/motion-") && url.ends_with(&name),
        "{clip}"
    );
    let first_start = events
        .iter()
        .find(|e| e["kind"] == "motion")
        .expect("motion");
    let last_end = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "motion_end")
        .expect("motion_end");
    assert!(last_end["clip_duration_s"].as_f64().is_some(), "{last_end}");

    // The frames cover 2 s before the first start and 3 s after the last
    // end, by their capture times (one frame, 0.1 s, of slack at the end:
    // the post-roll stops at the first frame past it).
    let index: Value = server.get_json(&format!("{url}/index")).await;
    let frames = index["frames"].as_array().expect("frames");
    let start_ts = clip["start_ts"].as_f64().expect("start_ts");
    let last_t = frames.last().and_then(|f| f[0].as_f64()).expect("t") / 1000.0;
    let motion_ts = first_start["ts"].as_f64().expect("ts");
    let end_ts = last_end["ts"].as_f64().expect("ts");
    assert!(
        start_ts <= motion_ts - 2.0 + 0.001,
        "starts {start_ts}, motion at {motion_ts}"
    );
    assert!(
        start_ts + last_t >= end_ts + 3.0 - 0.15,
        "ends {}, motion ended at {end_ts}",
        start_ts + last_t
    );
    assert_eq!(
        frames.len() as u64,
        clip["frames"].as_u64().expect("frames")
    );

    // ffprobe reads the file as it is served, with the same frames and length.
    let resp = reqwest::get(server.url(&url)).await.expect("get clip");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/x-matroska");
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    let file = resp.bytes().await.expect("body");
    let copy = tempfile::tempdir().expect("temp dir");
    let copied = copy.path().join(&name);
    std::fs::write(&copied, &file).expect("write copy");
    let (probe_frames, probe_duration) = ffprobe(&copied);
    assert_eq!(probe_frames, frames.len() as u64);
    let duration_s = clip["duration_s"].as_f64().expect("duration_s");
    assert!(
        (probe_duration - duration_s).abs() < 0.06,
        "{probe_duration} vs {duration_s}"
    );

    // Every frame is one of the camera's JPEGs, byte for byte.
    for f in frames {
        let (at, len) = (
            f[1].as_u64().expect("offset") as usize,
            f[2].as_u64().expect("len") as usize,
        );
        assert!(
            camera_frames.contains(&file[at..at + len]),
            "frame at {at} is not a camera JPEG"
        );
    }

    // A Range read gets exactly that frame.
    let f = &frames[3];
    let (at, len) = (f[1].as_u64().expect("offset"), f[2].as_u64().expect("len"));
    let part = reqwest::Client::new()
        .get(server.url(&url))
        .header("Range", format!("bytes={at}-{}", at + len - 1))
        .send()
        .await
        .expect("range request");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes {at}-{}/{}", at + len - 1, file.len()).as_str()
    );
    let body = part.bytes().await.expect("body");
    assert_eq!(&body[..], &file[at as usize..(at + len) as usize]);
    let past = reqwest::Client::new()
        .get(server.url(&url))
        .header("Range", format!("bytes={}-", file.len() + 10))
        .send()
        .await
        .expect("range request");
    assert_eq!(past.status(), 416);

    // Listed at the root and under the camera's prefix, and in the history.
    let listed: Value = server.get_json("/clips").await;
    let entry = listed["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .find(|c| c["name"] == name.as_str())
        .expect("listed")
        .clone();
    for key in [
        "url",
        "thumb",
        "start_ts",
        "duration_s",
        "frames",
        "bytes",
        "trigger",
    ] {
        assert_eq!(entry[key], clip[key], "{key}");
    }
    assert_eq!(entry["bytes"].as_u64(), Some(file.len() as u64));
    let nested: Value = server.get_json("/cams/cam/clips").await;
    assert!(nested["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .any(|c| c["name"] == name.as_str()));
    let history: Value = server.get_json("/api/events?kind=motion_end").await;
    assert!(history["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["data"]["clip"] == url.as_str() || e["clip"] == url.as_str()));

    // Its thumbnail: the best frame, small.
    let thumb = reqwest::get(server.url(&format!("{url}/thumb")))
        .await
        .expect("thumb");
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let thumb = thumb.bytes().await.expect("body");
    assert!(thumb.len() < 30_000, "{} bytes", thumb.len());
    assert_eq!(
        common::decode_jpeg(&thumb).0,
        160,
        "a 160 px picture keeps its size"
    );

    // Names are checked; a deleted clip is gone and every dashboard hears it.
    let bad = reqwest::get(server.url("/clips/..%2F..%2Fstore.db"))
        .await
        .expect("get");
    assert_eq!(bad.status(), 400);
    let deleted = reqwest::Client::new()
        .delete(server.url(&url))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    for path in [url.clone(), format!("{url}/thumb"), format!("{url}/index")] {
        let gone = reqwest::get(server.url(&path)).await.expect("get");
        assert_eq!(gone.status(), 404, "{path}");
    }
    let notice = sse.next_of("clip_deleted", Duration::from_secs(10)).await;
    assert_eq!(notice.json()["name"], name.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_that_cannot_be_written_fails_alone_and_retention_keeps_the_newest() {
    let scene = tempfile::tempdir().expect("temp dir");
    two_bursts(scene.path());
    let server = start(scene.path(), |s| s.max_clips = 1).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    // The clip folder is a file now: the writer fails (as on a full or
    // broken disk), the rest goes on.
    let folder = server.data_dir().join("clips").join("cam");
    std::fs::remove_dir_all(&folder).expect("remove clip folder");
    std::fs::write(&folder, b"in the way").expect("block the folder");
    let failed = sse
        .until(Duration::from_secs(40), |m| m.event == "clip")
        .await
        .pop()
        .expect("clip event")
        .json();
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    let snapshot = reqwest::get(server.url("/snapshot.jpg"))
        .await
        .expect("get");
    assert_eq!(snapshot.status(), 200, "the camera goes on");
    let status = server.status().await;
    assert!(status["clips"]["failed"].as_u64() >= Some(1), "{status}");

    // With the folder back, clips are saved again; one is kept.
    std::fs::remove_file(&folder).expect("unblock");
    std::fs::create_dir(&folder).expect("folder back");
    let mut saved = Vec::new();
    while saved.len() < 2 {
        let msg = sse.next_of("clip", Duration::from_secs(40)).await.json();
        if msg["ok"] == true {
            saved.push(msg["name"].as_str().expect("name").to_string());
        }
    }
    wait_until(Duration::from_secs(10), || async {
        let listed: Value = server.get_json("/clips").await;
        let names: Vec<&str> = listed["clips"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        names == [saved[1].as_str()]
    })
    .await;
}

/// `kill -9` in the middle of a clip, then a restart: the clip is finished
/// with the frames that reached the disk (ffprobe reads it) and nothing
/// half-written is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_cut_by_kill_9_is_finished_at_the_next_start() {
    let scene = tempfile::tempdir().expect("temp dir");
    two_bursts(scene.path());
    let data = tempfile::tempdir().expect("temp dir");
    let config = data.path().join("lookout.toml");
    std::fs::write(
        &config,
        "[settings]\ncooldown_s = 1\nthreshold = 5\nclip_pre_s = 1\nclip_post_s = 60\n",
    )
    .expect("config");
    let args = [
        "--source",
        &source(scene.path()),
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().expect("utf8 path"),
    ];
    let data_dir = data.path().join("data");
    let folder = data_dir.join("clips").join("cam");
    for round in 0..2 {
        let mut bin = Binary::spawn(&args, &data_dir);
        let base = bin.wait_for_url("http").await;
        let mut child = bin.drain();
        // Recording, with some frames on disk.
        wait_until(Duration::from_secs(40), || async {
            std::fs::read_dir(&folder).is_ok_and(|entries| {
                entries.flatten().any(|e| {
                    e.file_name().to_string_lossy().starts_with(".rec-")
                        && e.metadata().is_ok_and(|m| m.len() > 20_000)
                })
            })
        })
        .await;
        child.start_kill().expect("kill -9");
        child.wait().await.expect("reaped");
        let _ = base;

        let mut bin = Binary::spawn(&args, &data_dir);
        let base = bin.wait_for_url("http").await;
        let mut child = bin.drain();
        let listed: Value = reqwest::get(format!("{base}/clips"))
            .await
            .expect("list")
            .json()
            .await
            .expect("JSON");
        let clips = listed["clips"].as_array().expect("clips");
        assert_eq!(clips.len(), round + 1, "{listed}");
        for c in clips {
            let name = c["name"].as_str().expect("name");
            let (frames, _) = ffprobe(&clip_path(&data_dir, "cam", name));
            assert_eq!(Some(frames), c["frames"].as_u64(), "{c}");
            assert!(frames >= 5, "{c}");
        }
        let hidden: Vec<String> = std::fs::read_dir(&folder)
            .expect("folder")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".rec-"))
            .collect();
        // The new run may already record again; none from before is left.
        assert!(hidden.len() <= 1, "{hidden:?}");
        child.start_kill().expect("kill");
        child.wait().await.expect("reaped");
    }
}

/// A looped scene at 10 fps: 2 s still, 1.5 s of a square crossing, 3 s
/// still; one short clip per loop.
fn one_burst(dir: &Path) {
    let still = square_jpeg(None);
    for i in 0..20 {
        std::fs::write(dir.join(format!("a{i:03}.jpg")), &still).expect("write frame");
    }
    for i in 0..15 {
        std::fs::write(dir.join(format!("b{i:03}.jpg")), square_jpeg(Some(i * 7)))
            .expect("write frame");
    }
    for i in 0..30 {
        std::fs::write(dir.join(format!("c{i:03}.jpg")), &still).expect("write frame");
    }
}

/// One request and its answer: request headers, method; status,
/// `Content-Range`, and which bytes of the file the body holds.
type Case<'a> = (
    Vec<(&'a str, String)>,
    &'a str,
    u16,
    Option<String>,
    Option<(usize, usize)>,
);

/// `Range`, `If-Range`, `If-None-Match` and `HEAD` on a real clip get RFC
/// 9110's answers. Every case is tried and the wrong ones listed together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_is_served_as_rfc_9110_asks() {
    let scene = tempfile::tempdir().expect("temp dir");
    one_burst(scene.path());
    let server = start(scene.path(), |s| s.clip_post_s = 1).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let clip = loop {
        let msg = sse.next_of("clip", Duration::from_secs(60)).await.json();
        if msg["ok"] == true {
            break msg;
        }
    };
    let url = server.url(clip["url"].as_str().expect("url"));
    let client = reqwest::Client::new();
    let whole = client.get(&url).send().await.expect("get");
    assert_eq!(whole.status(), 200);
    let etag = whole
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let modified = whole
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let file = whole.bytes().await.expect("body");
    let len = file.len();
    assert!(len > 100, "{len} bytes");
    let mut wrong = Vec::new();
    if !(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2) {
        wrong.push(format!("no strong ETag: {etag:?}"));
    }
    if httpdate::parse_http_date(&modified).is_err() {
        wrong.push(format!("no Last-Modified: {modified:?}"));
    }
    let head = |n: usize| format!("bytes 0-{}/{len}", n - 1);
    let cases: Vec<Case> = vec![
        (
            vec![("range", "items=0-1".into())],
            "GET",
            200,
            None,
            Some((0, len)),
        ),
        (
            vec![("range", "bytes=0-9, 20-29".into())],
            "GET",
            206,
            Some(head(10)),
            Some((0, 10)),
        ),
        (
            vec![("range", format!("bytes={}-, 3-5", len + 5))],
            "GET",
            206,
            Some(format!("bytes 3-5/{len}")),
            Some((3, 6)),
        ),
        (
            vec![("range", "bytes=0-99999999999999999999999".into())],
            "GET",
            206,
            Some(head(len)),
            Some((0, len)),
        ),
        (
            vec![("range", "bytes=0-9".into()), ("if-range", etag.clone())],
            "GET",
            206,
            Some(head(10)),
            Some((0, 10)),
        ),
        (
            vec![
                ("range", "bytes=0-9".into()),
                ("if-range", modified.clone()),
            ],
            "GET",
            206,
            Some(head(10)),
            Some((0, 10)),
        ),
        (
            vec![
                ("range", "bytes=0-9".into()),
                ("if-range", "\"other\"".into()),
            ],
            "GET",
            200,
            None,
            Some((0, len)),
        ),
        (
            vec![
                ("range", "bytes=0-9".into()),
                ("if-range", "Thu, 01 Jan 1970 00:00:00 GMT".into()),
            ],
            "GET",
            200,
            None,
            Some((0, len)),
        ),
        (
            vec![("if-none-match", "*".into())],
            "GET",
            304,
            None,
            Some((0, 0)),
        ),
        (
            vec![("if-none-match", "*".into())],
            "HEAD",
            304,
            None,
            Some((0, 0)),
        ),
        (
            vec![("if-none-match", etag.clone())],
            "GET",
            304,
            None,
            Some((0, 0)),
        ),
        (
            vec![("if-none-match", format!("\"other\", W/{etag}"))],
            "GET",
            304,
            None,
            Some((0, 0)),
        ),
        (
            vec![("if-none-match", "\"other\"".into())],
            "GET",
            200,
            None,
            Some((0, len)),
        ),
        (
            vec![("range", "bytes=0-9".into())],
            "HEAD",
            200,
            None,
            Some((0, 0)),
        ),
        (
            vec![("range", format!("bytes={len}-"))],
            "GET",
            416,
            Some(format!("bytes */{len}")),
            None,
        ),
    ];
    for (headers, method, status, range, body) in cases {
        let mut req = client.request(method.parse().expect("method"), &url);
        for (name, value) in &headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.expect("request");
        let got_status = resp.status().as_u16();
        let got_range = resp
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let got_etag = resp.headers().get("etag").cloned();
        let got = resp.bytes().await.expect("body");
        let case = format!("{method} {headers:?}");
        if got_status != status || got_range != range {
            wrong.push(format!(
                "{case}: {got_status} {got_range:?}, want {status} {range:?}"
            ));
            continue;
        }
        if let Some((from, to)) = body {
            if got[..] != file[from..to] {
                wrong.push(format!("{case}: {} bytes, want {from}..{to}", got.len()));
            }
        }
        if matches!(status, 200 | 206 | 304) && got_etag.is_none_or(|t| t != etag.as_str()) {
            wrong.push(format!("{case}: no ETag"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
