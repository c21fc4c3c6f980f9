//! JSON routes: /status, /config, /healthz, 404s and the page.

mod common;

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
