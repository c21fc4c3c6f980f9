//! Events out: motion detection end to end, /events over SSE with replay and
//! keepalive, and the stored history at /api/events.

use crate::common;

use std::time::Duration;

use common::sse::{Msg, Parser, SseClient, SseError};
use common::TestServer;
use serde_json::{json, Value};

async fn set(server: &TestServer, patch: Value) {
    let r = reqwest::Client::new()
        .post(server.url("/config"))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// A folder of frames: `moving` frames with a square crossing the picture,
/// then `still` identical frames. Replayed at 10 fps it gives one motion
/// episode per loop.
fn motion_clip(dir: &std::path::Path, moving: usize, still: usize) {
    let frame = common::square_jpeg;
    for i in 0..moving {
        std::fs::write(
            dir.join(format!("a{i:03}.jpg")),
            frame(Some(i * 100 / moving.max(1))),
        )
        .unwrap();
    }
    let quiet = frame(None);
    for i in 0..still {
        std::fs::write(dir.join(format!("b{i:03}.jpg")), &quiet).unwrap();
    }
}

#[tokio::test]
async fn sse_headers_retry_and_live_events() {
    let server = TestServer::start("synthetic:?size=160x120&fps=10&motion=never").await;
    let mut sse = SseClient::connect(&server.url("/events"), None).await;
    assert_eq!(sse.headers["content-type"], "text/event-stream");
    assert_eq!(sse.headers["cache-control"], "no-store");
    assert_eq!(sse.headers["x-accel-buffering"], "no");
    let hello = sse.next(Duration::from_secs(5)).await;
    assert_eq!(hello.retry.as_deref(), Some("2000"));
    assert_eq!(server.command(r#"{"cmd": "reset"}"#).await["ok"], true);
    let reset = sse.next_of("reset", Duration::from_secs(5)).await;
    assert!(reset.id.unwrap().parse::<i64>().unwrap() > 0);
    let data: Value = serde_json::from_str(&reset.data).unwrap();
    assert_eq!(data["count"], 0);
    set(&server, json!({"threshold": 21})).await;
    let config = sse.next_of("config", Duration::from_secs(5)).await;
    assert_eq!(
        serde_json::from_str::<Value>(&config.data).unwrap()["threshold"],
        21
    );
}

#[tokio::test]
async fn reconnect_with_last_event_id_replays_what_was_missed() {
    let server = TestServer::start("synthetic:?size=160x120&fps=10&motion=never").await;
    let mut ids = Vec::new();
    let mut sse = SseClient::connect(&server.url("/events"), None).await;
    for _ in 0..3 {
        server.command(r#"{"cmd": "reset"}"#).await;
        ids.push(
            sse.next_of("reset", Duration::from_secs(5))
                .await
                .id
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
    }
    drop(sse);
    // Two more while "offline".
    server.command(r#"{"cmd": "reset"}"#).await;
    set(&server, json!({"threshold": 30})).await;
    let mut sse = SseClient::connect(&server.url("/events"), Some(ids[1])).await;
    let replayed: Vec<Msg> = {
        let mut v = Vec::new();
        while v.len() < 3 {
            let m = sse.next(Duration::from_secs(5)).await;
            if !m.comment && m.event != "level" && m.event != "source" {
                v.push(m);
            }
        }
        v
    };
    let got: Vec<(String, i64)> = replayed
        .iter()
        .map(|m| (m.event.clone(), m.id.as_ref().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(got[0], ("reset".to_string(), ids[2]));
    assert_eq!(got[1].0, "reset");
    assert_eq!(got[2].0, "config");
    assert!(got[0].1 < got[1].1 && got[1].1 < got[2].1);
    // Then live, with no duplicate.
    server.command(r#"{"cmd": "reset"}"#).await;
    let live = sse.next_of("reset", Duration::from_secs(5)).await;
    assert!(live.id.unwrap().parse::<i64>().unwrap() > got[2].1);
}

#[tokio::test]
async fn keepalive_comments_arrive() {
    // No frames, so no level events: the stream is idle but for keepalives.
    let server = TestServer::start("exec:sleep 60").await;
    set(&server, json!({"sse_keepalive_s": 1})).await;
    let mut sse = SseClient::connect(&server.url("/events"), None).await;
    sse.next(Duration::from_secs(5)).await; // hello
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    loop {
        let m = sse
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        if m.comment {
            break;
        }
    }
}

#[tokio::test]
async fn the_keepalive_is_the_servers_whichever_camera_sets_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with("exec:sleep 60", dir, |c| {
        c.cameras = ["yard", "door"]
            .iter()
            .map(|name| lookout::config::CameraConfig::new(name, "exec:sleep 60").unwrap())
            .collect();
    })
    .await;
    let mut config = SseClient::connect(&server.url("/events"), None).await;
    let r = reqwest::Client::new()
        .post(server.url("/cams/door/config"))
        .json(&json!({"sse_keepalive_s": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The change is announced by the camera it was given to, with the
    // server's settings beside the camera's, as before.
    let event = config.next_of("config", Duration::from_secs(5)).await;
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        (
            &data["camera"],
            &data["sse_keepalive_s"],
            &data["events_max"]
        ),
        (&json!("door"), &json!(1), &json!(10_000)),
        "{data}"
    );
    assert!(data["threshold"].is_u64(), "{data}");
    // Every stream keeps alive at the new pace, the root's (the first
    // camera's) and the other camera's.
    for path in ["/events", "/cams/yard/events"] {
        let mut sse = SseClient::connect(&server.url(path), None).await;
        sse.next(Duration::from_secs(5)).await; // hello
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        loop {
            let m = sse
                .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await;
            if m.comment {
                break;
            }
        }
    }
}

#[tokio::test]
async fn motion_episodes_count_once_and_save_a_snapshot() {
    let clip = tempfile::tempdir().unwrap();
    // 1.5 s of movement then 3 s still, looped at 10 fps.
    motion_clip(clip.path(), 15, 30);
    let server = TestServer::start(&format!("file:{}?fps=10", clip.path().display())).await;
    set(&server, json!({"cooldown_s": 1, "threshold": 5})).await;
    let mut sse = SseClient::connect(&server.url("/events"), None).await;
    let motion = sse.next_of("motion", Duration::from_secs(15)).await;
    let data: Value = serde_json::from_str(&motion.data).unwrap();
    assert!(data["ts"].as_f64().unwrap() > 1.0e9, "{data}");
    assert!(data["change"].as_f64().unwrap() > 5.0, "{data}");
    let count = data["count"].as_u64().unwrap();
    assert!(count >= 1);
    let snap = data["snapshot"].as_str().expect("snapshot saved on motion");
    assert!(snap.starts_with("/snaps/motion-"), "{snap}");
    let img = reqwest::get(server.url(snap)).await.unwrap();
    assert_eq!(img.status(), 200);
    let end = sse.next_of("motion_end", Duration::from_secs(10)).await;
    let end: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(
        end["count"].as_u64(),
        Some(count),
        "one episode, one trigger"
    );
    // The next loop is the next episode: exactly one more trigger.
    let again = sse.next_of("motion", Duration::from_secs(15)).await;
    let again: Value = serde_json::from_str(&again.data).unwrap();
    assert_eq!(again["count"].as_u64(), Some(count + 1));
    // Level events feed the graph, not the history.
    let level = sse.next_of("level", Duration::from_secs(5)).await;
    assert!(level.id.is_none());
    let history: Value = server.get_json("/api/events?kind=motion").await;
    assert!(history["events"].as_array().unwrap().len() >= 2);
    assert_eq!(history["events"][0]["kind"], "motion");
    let listed: Value = server.get_json("/snaps").await;
    assert!(listed["snaps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["trigger"] == "motion"));
}

#[tokio::test]
async fn default_synthetic_scene_triggers_at_the_default_threshold() {
    // The periodic scene starts its cycle with 4 s of movement.
    let server = TestServer::start("synthetic:?size=320x180&fps=10").await;
    let mut sse = SseClient::connect(&server.url("/events"), None).await;
    let motion = sse.next_of("motion", Duration::from_secs(10)).await;
    let data: Value = serde_json::from_str(&motion.data).unwrap();
    assert!(data["change"].as_f64().unwrap() > 12.0, "{data}");
    assert_eq!(data["count"], 1);
}

#[tokio::test]
async fn still_scene_never_triggers() {
    let server = TestServer::start("synthetic:?size=320x240&fps=10&motion=never").await;
    server.wait_for_frame().await;
    let mut sse = SseClient::connect(&server.url("/events"), None).await;
    // Several level readings, all quiet.
    for _ in 0..4 {
        let level = sse.next_of("level", Duration::from_secs(5)).await;
        let change = serde_json::from_str::<Value>(&level.data).unwrap()["change"]
            .as_f64()
            .unwrap();
        assert!(change < 5.0, "a still scene changed {change} %");
    }
    assert_eq!(server.status().await["trigger_count"], 0);
}

#[tokio::test]
async fn history_pages_newest_first_by_kind() {
    let server = TestServer::start("synthetic:?size=160x120&fps=10&motion=never").await;
    for _ in 0..5 {
        server.command(r#"{"cmd": "reset"}"#).await;
    }
    let page: Value = server.get_json("/api/events?kind=reset&limit=3").await;
    let ids: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[0] > ids[1] && ids[1] > ids[2]);
    let before = page["next_before"].as_i64().unwrap();
    let rest: Value = server
        .get_json(&format!("/api/events?kind=reset&before={before}"))
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 2);
}

/// The SSE reader the tests share with the bench programs reads the format
/// as the HTML standard has it, not only the part lookout writes: CRLF line
/// ends, data over several lines, a field without a colon, a message split
/// across reads, and bytes that are not UTF-8.
#[test]
fn the_shared_sse_reader_follows_the_event_stream_format() {
    let mut p = Parser::default();
    p.push(b"retry: 2000\r\n: hello\r\n\r\nevent: motion\nid: 7\ndata: {\"a\":\ndata:1}\n\n\n");
    p.push(b": keepalive\n\nid:8\ndata");
    let hello = p.next_msg().unwrap().unwrap();
    assert_eq!(hello.retry.as_deref(), Some("2000"));
    assert!(hello.comment && hello.data.is_empty());
    assert_eq!(hello.event, "message");
    let motion = p.next_msg().unwrap().unwrap();
    assert_eq!(motion.event, "motion");
    assert_eq!(motion.id_number(), Some(7));
    assert_eq!(motion.data, "{\"a\":\n1}");
    assert_eq!(motion.json(), json!({"a": 1}));
    assert!(!motion.comment);
    let keepalive = p.next_msg().unwrap().unwrap();
    assert!(keepalive.comment && keepalive.id.is_none());
    assert!(p.next_msg().is_none(), "a message ends at its blank line");
    p.push(b"\n\n");
    let bare = p.next_msg().unwrap().unwrap();
    assert_eq!((bare.id_number(), bare.data.as_str()), (Some(8), ""));
    p.push(b"data: \xff\n\n");
    assert!(matches!(p.next_msg(), Some(Err(SseError::NotUtf8))));
}
