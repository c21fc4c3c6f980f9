//! JSON routes: /status, /config, /healthz, 404s and the page.

use crate::common;

use common::TestServer;
use serde_json::{json, Value};

const SRC: &str = "synthetic:?size=160x120&fps=10";

async fn post_config(server: &TestServer, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(server.url("/config"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn status_has_the_seed_keys_and_more() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let st = server.status().await;
    for key in [
        "frames",
        "triggers",
        "version",
        "uptime_s",
        "viewers",
        "trigger_count",
        "threshold",
    ] {
        assert!(st.get(key).is_some(), "missing {key} in {st}");
    }
    assert!(st["frames"].as_u64().unwrap() >= 1);
    // The camera sends JPEGs: none is ever made.
    assert_eq!(st["jpeg_encodes"], 0, "{st}");
    let src = &st["source"];
    assert_eq!(src["uri"], SRC);
    assert_eq!(src["state"], "running");
    assert_eq!(src["width"], 160);
    assert_eq!(src["height"], 120);
    assert!(src["last_frame_age_ms"].as_u64().is_some());
    assert!(src.get("fps").is_some() && src.get("last_error").is_some());
}

#[tokio::test]
async fn status_hides_source_passwords() {
    let server = TestServer::start("http://owner:hunter2@127.0.0.1:9/stream.jpg").await;
    let st = server.status().await;
    assert_eq!(
        st["source"]["uri"],
        "http://owner:***@127.0.0.1:9/stream.jpg"
    );
    assert!(!st.to_string().contains("hunter2"));
}

#[tokio::test]
async fn config_get_and_valid_post() {
    let server = TestServer::start(SRC).await;
    let cfg: Value = server.get_json("/config").await;
    assert_eq!(cfg["threshold"], 12);
    assert!(cfg["trigger_count"].is_u64() && cfg["frame_count"].is_u64());
    let (status, body) = post_config(&server, r#"{"threshold": 40}"#).await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true);
    assert_eq!(body["threshold"], 40);
    assert!(body["trigger_count"].is_u64());
    let cfg: Value = server.get_json("/config").await;
    assert_eq!(cfg["threshold"], 40);
}

#[tokio::test]
async fn config_rejects_bad_input_and_changes_nothing() {
    let server = TestServer::start(SRC).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "missing threshold"),
        (b"{}".to_vec(), "missing threshold"),
        (
            br#"{"threshold": "x"}"#.to_vec(),
            "threshold must be an integer",
        ),
        (
            br#"{"threshold": 12.5}"#.to_vec(),
            "threshold must be an integer",
        ),
        (
            br#"{"threshold": null}"#.to_vec(),
            "threshold must be an integer",
        ),
        (br#"{"threshold": 101}"#.to_vec(), "threshold out of range"),
        (br#"{"threshold": -5}"#.to_vec(), "threshold out of range"),
        (
            br#"{"threshold": 50, "colour": 1}"#.to_vec(),
            "unknown setting: colour",
        ),
        (
            br#"{"trigger_count": 0}"#.to_vec(),
            "trigger_count is read-only",
        ),
        (
            br#"{"frame_count": 0}"#.to_vec(),
            "frame_count is read-only",
        ),
        (br#"{"threshold": 50"#.to_vec(), "bad json"),
        (br#"[50]"#.to_vec(), "config must be a JSON object"),
    ];
    for (body, message) in cases {
        let shown = String::from_utf8_lossy(&body).to_string();
        let (status, reply) = post_config(&server, body).await;
        assert_eq!(status, 400, "{shown}");
        assert_eq!(reply, json!({"error": message}), "{shown}");
    }
    let mut big = br#"{"threshold": 50, "pad": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 65 * 1024));
    big.extend(br#""}"#);
    let (status, reply) = post_config(&server, big).await;
    assert_eq!(status, 400);
    assert!(
        reply["error"].as_str().unwrap().contains("64 KiB"),
        "{reply}"
    );

    let cfg: Value = server.get_json("/config").await;
    assert_eq!(cfg["threshold"], 12, "nothing changed");
}

#[tokio::test]
async fn unknown_route_is_the_seed_404() {
    let server = TestServer::start(SRC).await;
    let resp = reqwest::get(server.url("/nope/../x?y=1")).await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"error": "not found", "path": "/x"}));
    let resp = reqwest::get(server.url("/does-not-exist")).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["path"],
        "/does-not-exist"
    );
}

#[tokio::test]
async fn healthz_and_page() {
    let server = TestServer::start(SRC).await;
    let resp = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let page = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    // The seed's element ids, so the seed's own app.js works against the page.
    for id in [
        "stream",
        "threshold",
        "threshold-value",
        "events",
        "snap-btn",
        "reset-btn",
    ] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "missing #{id}");
    }
    assert!(html.contains(r#"src="/app.js""#));
    assert!(!html.contains("<script>"), "no inline script (CSP)");
    let index = reqwest::get(server.url("/index.html")).await.unwrap();
    assert_eq!(index.status(), 200);
}

/// A query string a route cannot read gets the same JSON error as any other
/// bad request, on every route that takes one, at the root and under a
/// camera's prefix.
#[tokio::test]
async fn a_bad_query_string_is_a_json_400_on_every_route() {
    let server = TestServer::start(SRC).await;
    for path in [
        "/snaps?limit=abc",
        "/clips?limit=-1",
        "/api/events?limit=x",
        "/api/events?before=yesterday",
        "/stream.jpg?fps=fast",
        "/login?next=/&next=/snaps",
        "/cams/cam/snaps?limit=abc",
        "/cams/cam/clips?limit=1.5",
        "/cams/cam/api/events?limit=-1",
        "/cams/cam/stream.jpg?fps=x",
    ] {
        let resp = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        let body: Value = resp.json().await.unwrap();
        let error = body["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty(), "{path}: {body}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{path}: {body}");
    }
}

/// Two cameras, `yard` (also at the root) and `door`, in `dir`, the config
/// changed by `tweak`.
async fn two_cameras(
    dir: tempfile::TempDir,
    tweak: impl FnOnce(&mut lookout::Config) + Send + 'static,
) -> TestServer {
    TestServer::start_with(SRC, dir, move |c| {
        c.cameras = ["yard", "door"]
            .iter()
            .map(|name| lookout::config::CameraConfig::new(name, SRC).unwrap())
            .collect();
        tweak(c);
    })
    .await
}

async fn post_config_at(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The JSON object stored under `key`, read from a stopped server's data.
async fn stored(dir: &std::path::Path, key: &str) -> Option<Value> {
    let store = lookout::store::Store::open(dir).unwrap();
    let text = store.get(key).await.unwrap()?;
    Some(serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn server_settings_show_at_every_camera_and_change_for_all() {
    let dir = tempfile::tempdir().unwrap();
    // As a top-level key or flag sets them.
    let server = two_cameras(dir, |c| c.server.events_max = 600).await;
    for path in ["/config", "/cams/yard/config", "/cams/door/config"] {
        let cfg = server.get_json(path).await;
        assert_eq!(cfg["events_max"], 600, "{path}: {cfg}");
        assert_eq!(cfg["sse_keepalive_s"], 15, "{path}: {cfg}");
        assert_eq!(cfg["events_max_age_days"], 30, "{path}: {cfg}");
    }
    let (status, reply) = post_config_at(
        &server,
        "/cams/door/config",
        json!({"sse_keepalive_s": 7, "threshold": 30}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        (&reply["ok"], &reply["sse_keepalive_s"], &reply["threshold"]),
        (&json!(true), &json!(7), &json!(30)),
        "{reply}"
    );
    for path in ["/config", "/cams/yard/config", "/cams/door/config"] {
        let cfg = server.get_json(path).await;
        assert_eq!(cfg["sse_keepalive_s"], 7, "server-wide: {path}: {cfg}");
    }
    // The camera's own setting stays its own.
    assert_eq!(server.get_json("/cams/door/config").await["threshold"], 30);
    assert_eq!(server.get_json("/config").await["threshold"], 12);
}

#[tokio::test]
async fn a_patch_mixing_camera_and_server_keys_is_validated_whole() {
    let server = TestServer::start(SRC).await;
    for (patch, message) in [
        (
            json!({"threshold": 40, "events_max": 5}),
            "events_max out of range",
        ),
        (
            json!({"threshold": 400, "events_max": 500}),
            "threshold out of range",
        ),
        (
            json!({"sse_keepalive_s": 2, "colour": 1}),
            "unknown setting: colour",
        ),
    ] {
        let (status, reply) = post_config_at(&server, "/config", patch.clone()).await;
        assert_eq!(status, 400, "{patch}");
        assert_eq!(reply, json!({"error": message}), "{patch}");
    }
    let cfg = server.get_json("/config").await;
    assert_eq!(
        (
            &cfg["threshold"],
            &cfg["events_max"],
            &cfg["sse_keepalive_s"]
        ),
        (&json!(12), &json!(10_000), &json!(15)),
        "nothing changed: {cfg}"
    );
    let (status, reply) = post_config_at(
        &server,
        "/config",
        json!({"threshold": 40, "events_max": 500}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let cfg = server.get_json("/config").await;
    assert_eq!(
        (&cfg["threshold"], &cfg["events_max"]),
        (&json!(40), &json!(500))
    );
}

#[tokio::test]
async fn server_settings_persist_under_a_server_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(SRC, dir).await;
    let (status, reply) = post_config_at(
        &server,
        "/config",
        json!({"events_max_age_days": 9, "threshold": 20}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let common::Stopped { dir } = server.stop_keep_dir().await;
    let saved = stored(dir.path(), "server.settings").await.unwrap();
    assert_eq!(saved["events_max_age_days"], 9, "{saved}");
    let camera = stored(dir.path(), "camera.cam.settings").await.unwrap();
    assert_eq!(camera["threshold"], 20, "{camera}");
    assert!(camera.get("events_max_age_days").is_none(), "{camera}");
    let server = TestServer::start_in(SRC, dir).await;
    let cfg = server.get_json("/config").await;
    assert_eq!(
        (&cfg["events_max_age_days"], &cfg["threshold"]),
        (&json!(9), &json!(20)),
        "{cfg}"
    );
}

#[tokio::test]
async fn an_older_lookouts_camera_saved_server_settings_become_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    let server = two_cameras(dir, |_| {}).await;
    let common::Stopped { dir } = server.stop_keep_dir().await;
    {
        // As an older lookout saved them: a single-camera directory's
        // settings (the first camera takes them over), and the second
        // camera's own copy.
        let store = lookout::store::Store::open(dir.path()).unwrap();
        let old = json!({"threshold": 21, "events_max": 555, "sse_keepalive_s": 4});
        store.set("settings", old.to_string()).await.unwrap();
        let door = json!({"threshold": 22, "events_max": 999, "events_max_age_days": 8});
        store
            .set("camera.door.settings", door.to_string())
            .await
            .unwrap();
    }
    let server = two_cameras(dir, |_| {}).await;
    for path in ["/config", "/cams/door/config"] {
        let cfg = server.get_json(path).await;
        assert_eq!(
            (
                &cfg["events_max"],
                &cfg["sse_keepalive_s"],
                &cfg["events_max_age_days"]
            ),
            (&json!(555), &json!(4), &json!(30)),
            "the first camera's: {path}: {cfg}"
        );
    }
    assert_eq!(server.get_json("/config").await["threshold"], 21);
    assert_eq!(server.get_json("/cams/door/config").await["threshold"], 22);
    let common::Stopped { dir } = server.stop_keep_dir().await;
    let saved = stored(dir.path(), "server.settings").await.unwrap();
    assert_eq!(saved, json!({"events_max": 555, "sse_keepalive_s": 4}));
    for name in ["yard", "door"] {
        let camera = stored(dir.path(), &format!("camera.{name}.settings"))
            .await
            .unwrap();
        assert!(
            camera.get("events_max").is_none() && camera.get("events_max_age_days").is_none(),
            "{name}: {camera}"
        );
    }
    {
        // Once the server has its own, a camera's no longer count.
        let store = lookout::store::Store::open(dir.path()).unwrap();
        let again = json!({"threshold": 23, "events_max": 777});
        store
            .set("camera.yard.settings", again.to_string())
            .await
            .unwrap();
    }
    let server = two_cameras(dir, |_| {}).await;
    let cfg = server.get_json("/config").await;
    assert_eq!(
        (&cfg["events_max"], &cfg["threshold"]),
        (&json!(555), &json!(23))
    );
}
