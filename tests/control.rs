//! Commands in: the WebSocket /control and POST /control, snapshots on disk,
//! counters and settings that survive restarts.

use crate::common;

use std::time::Duration;

use common::{ask, decode_jpeg, recv_json, ws_connect, TestServer, Ws};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const SRC: &str = "synthetic:?size=160x120&fps=10&motion=never";

async fn connect(server: &TestServer) -> Ws {
    ws_connect(server, "/control").await
}

#[tokio::test]
async fn seed_replies_are_exact_and_the_socket_stays_open() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let mut ws = connect(&server).await;
    assert_eq!(ask(&mut ws, "not json").await, json!({"error": "bad json"}));
    assert_eq!(ask(&mut ws, "{").await, json!({"error": "bad json"}));
    for unknown in [
        "[1, 2]",
        "42",
        "null",
        "\"reset\"",
        "{}",
        r#"{"cmd": 7}"#,
        r#"{"cmd": "dance"}"#,
    ] {
        assert_eq!(
            ask(&mut ws, unknown).await,
            json!({"error": "unknown command"}),
            "{unknown}"
        );
    }
    assert_eq!(
        ask(&mut ws, r#"{"cmd": "reset"}"#).await,
        json!({"ok": true, "counters": "reset"})
    );
    let snap = ask(&mut ws, r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(snap["ok"], true);
    let saved = snap["saved"].as_str().unwrap();
    // Relative to the data dir, in the camera's folder (`--source` alone is
    // the camera `cam`).
    let name = saved
        .strip_prefix("snaps/cam/")
        .expect("saved is relative to the data dir");
    assert!(
        name.starts_with("manual-") && name.ends_with(".jpg"),
        "{name}"
    );
    assert_eq!(snap["url"], format!("/snaps/{name}"));
    assert_eq!(snap.as_object().unwrap().len(), 3, "{snap}");
    let on_disk = std::fs::read(server.data_dir().join(saved)).unwrap();
    assert_eq!(decode_jpeg(&on_disk), (160, 120));
    // Still open after all of that.
    let pong = ask(&mut ws, r#"{"cmd": "ping"}"#).await;
    assert_eq!(pong["ok"], true);
    assert!(pong["pong"].as_f64().unwrap() > 1.0e9);
}

#[tokio::test]
async fn snapshot_before_a_frame_says_so() {
    let server = TestServer::start("exec:sleep 60").await;
    let mut ws = connect(&server).await;
    assert_eq!(
        ask(&mut ws, r#"{"cmd": "snapshot_now"}"#).await,
        json!({"ok": false, "reason": "no frame yet"})
    );
}

#[tokio::test]
async fn ids_are_echoed_and_binary_frames_work() {
    let server = TestServer::start(SRC).await;
    let mut ws = connect(&server).await;
    assert_eq!(
        ask(&mut ws, r#"{"cmd": "reset", "id": 17}"#).await,
        json!({"ok": true, "counters": "reset", "id": 17})
    );
    assert_eq!(
        ask(&mut ws, r#"{"cmd": "nope", "id": {"a": [1]}}"#).await,
        json!({"error": "unknown command", "id": {"a": [1]}})
    );
    ws.send(Message::binary(
        br#"{"cmd": "reset", "id": "bin"}"#.to_vec(),
    ))
    .await
    .unwrap();
    assert_eq!(
        recv_json(&mut ws).await,
        json!({"ok": true, "counters": "reset", "id": "bin"})
    );
    ws.send(Message::binary(b"\xff\xfe".to_vec()))
        .await
        .unwrap();
    assert_eq!(recv_json(&mut ws).await, json!({"error": "bad json"}));
}

#[tokio::test]
async fn set_status_and_config_agree() {
    let server = TestServer::start(SRC).await;
    let mut ws = connect(&server).await;
    let reply = ask(&mut ws, r#"{"cmd": "set", "threshold": 40, "id": 1}"#).await;
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["threshold"], 40);
    assert_eq!(reply["id"], 1);
    assert!(reply["trigger_count"].is_u64() && reply["frame_count"].is_u64());
    let bad = ask(&mut ws, r#"{"cmd": "set", "threshold": 400}"#).await;
    assert_eq!(bad, json!({"ok": false, "error": "threshold out of range"}));
    let bad = ask(&mut ws, r#"{"cmd": "set"}"#).await;
    assert_eq!(bad, json!({"ok": false, "error": "missing threshold"}));
    let status = ask(&mut ws, r#"{"cmd": "status"}"#).await;
    assert_eq!(status["ok"], true);
    assert_eq!(status["status"]["threshold"], 40);
    let cfg: Value = server.get_json("/config").await;
    assert_eq!(cfg["threshold"], 40);
}

#[tokio::test]
async fn twenty_clients_twenty_commands_each() {
    let server = TestServer::start(SRC).await;
    let mut tasks = Vec::new();
    for c in 0..20 {
        let mut ws = connect(&server).await;
        tasks.push(tokio::spawn(async move {
            // Send all twenty first (a flood), then read the replies in order.
            for i in 0..20 {
                let cmd = json!({"cmd": if i % 2 == 0 { "ping" } else { "status" }, "id": [c, i]});
                ws.send(Message::text(cmd.to_string())).await.unwrap();
            }
            for i in 0..20 {
                let reply = recv_json(&mut ws).await;
                assert_eq!(reply["id"], json!([c, i]), "replies in order");
                assert_eq!(reply["ok"], true);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let server = TestServer::start(SRC).await;
    let mut ws = connect(&server).await;
    let big = format!(r#"{{"cmd": "ping", "pad": "{}"}}"#, "x".repeat(65 * 1024));
    ws.send(Message::text(big)).await.unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.expect("close frame").code, CloseCode::Size);
    // The server is fine: a new socket works.
    let mut ws = connect(&server).await;
    assert_eq!(ask(&mut ws, r#"{"cmd": "reset"}"#).await["ok"], true);
}

#[tokio::test]
async fn post_control_gives_the_same_replies() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let client = reqwest::Client::new();
    let post = |body: &'static str| client.post(server.url("/control")).body(body).send();
    let r = post(r#"{"cmd": "reset", "id": 5}"#).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": true, "counters": "reset", "id": 5})
    );
    let r = post("nope").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "bad json"})
    );
    let r = post(r#"{"cmd": "snapshot_now"}"#).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["saved"]
        .as_str()
        .unwrap()
        .starts_with("snaps/cam/manual-"));
    // Each failure has its status, whatever its text.
    let r = post(r#"{"cmd": "set", "threshold": 400}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": false, "error": "threshold out of range"})
    );
    let r = post(r#"{"cmd": "flush_uploads"}"#).await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["reason"],
        "uploads are not configured (--upload-url or --webhook-url)"
    );
}

#[tokio::test]
async fn two_snapshots_in_one_second_are_two_files() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let mut ws = connect(&server).await;
    let mut names = Vec::new();
    for _ in 0..5 {
        let r = ask(&mut ws, r#"{"cmd": "snapshot_now"}"#).await;
        names.push(r["saved"].as_str().unwrap().to_string());
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "{names:?}");
    for n in &names {
        decode_jpeg(&std::fs::read(server.data_dir().join(n)).unwrap());
    }
    // Five snapshots and their thumbnails' folder, nothing else.
    let mut left: Vec<String> = std::fs::read_dir(server.data_dir().join("snaps/cam"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.retain(|n| n != ".thumbs");
    assert_eq!(left.len(), 5, "no temp files left behind: {left:?}");
    let thumbs = std::fs::read_dir(server.data_dir().join("snaps/cam/.thumbs"))
        .unwrap()
        .count();
    assert_eq!(thumbs, 5, "one thumbnail each, no temp files");
}

#[tokio::test]
async fn disk_error_gives_ok_false_and_the_server_carries_on() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let snaps = server.data_dir().join("snaps");
    // Replace the folder by a plain file: every write into it fails (this also
    // works as root, unlike a read-only folder).
    std::fs::remove_dir_all(&snaps).unwrap();
    std::fs::write(&snaps, b"in the way").unwrap();
    let mut ws = connect(&server).await;
    let r = ask(&mut ws, r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["reason"].as_str().unwrap().contains("snapshot"), "{r}");
    assert_eq!(ask(&mut ws, r#"{"cmd": "reset"}"#).await["ok"], true);
    std::fs::remove_file(&snaps).unwrap();
    let r = ask(&mut ws, r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn restart_keeps_trigger_count_and_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_in(SRC, dir).await;
    let mut ws = connect(&server).await;
    ask(
        &mut ws,
        r#"{"cmd": "set", "threshold": 33, "cooldown_s": 9}"#,
    )
    .await;
    // Count some triggers through the store the way the detector does.
    drop(ws);
    let common::Stopped { dir } = server_stop_keep_dir(server).await;
    assert_eq!(dir.path(), path);
    {
        // Write a trigger count as a previous run would have.
        let store = lookout::store::Store::open(dir.path()).unwrap();
        store.set("trigger_count", "4".into()).await.unwrap();
    }
    let server = TestServer::start_in(SRC, dir).await;
    let cfg: Value = server.get_json("/config").await;
    assert_eq!(cfg["threshold"], 33);
    assert_eq!(cfg["cooldown_s"], 9);
    assert_eq!(cfg["trigger_count"], 4);
    let mut ws = connect(&server).await;
    ask(&mut ws, r#"{"cmd": "reset"}"#).await;
    let common::Stopped { dir } = server_stop_keep_dir(server).await;
    let server = TestServer::start_in(SRC, dir).await;
    assert_eq!(server.status().await["trigger_count"], 0);
}

/// Stops a server and hands back its data directory for the next start.
async fn server_stop_keep_dir(server: TestServer) -> common::Stopped {
    server.stop_keep_dir().await
}

#[tokio::test]
async fn set_takes_server_wide_keys_and_checks_a_mixed_patch_whole() {
    let server = TestServer::start(SRC).await;
    let mut ws = connect(&server).await;
    let bad = ask(
        &mut ws,
        r#"{"cmd": "set", "threshold": 30, "sse_keepalive_s": 0}"#,
    )
    .await;
    assert_eq!(
        bad,
        json!({"ok": false, "error": "sse_keepalive_s out of range"})
    );
    let r = reqwest::Client::new()
        .post(server.url("/control"))
        .body(r#"{"cmd": "set", "threshold": 300, "events_max": 500}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let cfg: Value = server.get_json("/config").await;
    assert_eq!(
        (
            &cfg["threshold"],
            &cfg["sse_keepalive_s"],
            &cfg["events_max"]
        ),
        (&json!(12), &json!(15), &json!(10_000)),
        "nothing changed: {cfg}"
    );
    let reply = ask(
        &mut ws,
        r#"{"cmd": "set", "threshold": 30, "events_max_age_days": 7, "id": 2}"#,
    )
    .await;
    assert_eq!(
        (
            &reply["ok"],
            &reply["threshold"],
            &reply["events_max_age_days"],
            &reply["id"]
        ),
        (&json!(true), &json!(30), &json!(7), &json!(2)),
        "{reply}"
    );
    assert!(reply["sse_keepalive_s"].is_u64() && reply["events_max"].is_u64());
    let cfg: Value = server.get_json("/config").await;
    assert_eq!(
        (&cfg["threshold"], &cfg["events_max_age_days"]),
        (&json!(30), &json!(7))
    );
}
