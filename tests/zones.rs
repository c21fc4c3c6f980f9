//! Motion masks and zones as settings: set per camera over POST /config and
//! the WebSocket `set`, refused with their message when a polygon is bad,
//! kept across a restart, and accepted at their largest.

use crate::common;

use common::{ask, post, ws_connect, TestServer};
use lookout::config::CameraConfig;
use serde_json::{json, Value};

const SRC: &str = "synthetic:?size=160x120&fps=10&motion=never";

/// A server with the cameras `yard` (also at the root) and `door`.
async fn start_two(dir: tempfile::TempDir) -> TestServer {
    TestServer::start_with(SRC, dir, |c| {
        c.cameras = ["yard", "door"]
            .iter()
            .map(|name| CameraConfig::new(name, SRC).expect("camera config"))
            .collect();
    })
    .await
}

/// The mask and zone settings of `/config` at `path`.
async fn zones_of(server: &TestServer, path: &str) -> Value {
    let cfg = server.get_json(path).await;
    json!({
        "mask": cfg["mask"],
        "zones": cfg["zones"],
        "required_zones": cfg["required_zones"],
    })
}

fn unset() -> Value {
    json!({"mask": [], "zones": [], "required_zones": []})
}

/// A fresh synthetic camera's: its burned-in clock is masked.
fn fresh() -> Value {
    json!({"mask": [lookout::source::scene::clock_mask(160, 120)], "zones": [], "required_zones": []})
}

fn door_settings() -> Value {
    json!({
        "mask": [[[0.0, 0.0], [0.25, 0.0], [0.25, 0.25], [0.0, 0.25]]],
        "zones": [
            {"name": "path", "points": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]},
            {"name": "gate", "points": [[0.6, 0.1], [0.9, 0.1], [0.75, 0.4]]},
        ],
        "required_zones": ["gate"],
    })
}

fn yard_settings() -> Value {
    json!({
        "mask": [],
        "zones": [{"name": "lawn", "points": [[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]]}],
        "required_zones": [],
    })
}

#[tokio::test]
async fn masks_and_zones_are_set_per_camera() {
    let server = start_two(tempfile::tempdir().expect("temp dir")).await;
    assert_eq!(zones_of(&server, "/config").await, fresh());
    let (status, reply) = post(&server, "/cams/door/config", &door_settings().to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["zones"], door_settings()["zones"]);
    assert_eq!(
        zones_of(&server, "/cams/door/config").await,
        door_settings()
    );
    assert_eq!(zones_of(&server, "/cams/yard/config").await, fresh());
    assert_eq!(zones_of(&server, "/config").await, fresh(), "root is yard");

    let (status, reply) = post(&server, "/config", &yard_settings().to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(zones_of(&server, "/config").await, yard_settings());
    assert_eq!(
        zones_of(&server, "/cams/yard/config").await,
        yard_settings()
    );
    assert_eq!(
        zones_of(&server, "/cams/door/config").await,
        door_settings()
    );

    // A patch of one of them leaves the others.
    let (status, _) = post(&server, "/cams/door/config", r#"{"mask": []}"#).await;
    assert_eq!(status, 200);
    let mut expected = door_settings();
    expected["mask"] = json!([]);
    assert_eq!(zones_of(&server, "/cams/door/config").await, expected);
}

#[tokio::test]
async fn bad_polygons_are_refused_and_change_nothing() {
    let server = TestServer::start(SRC).await;
    let (status, reply) = post(&server, "/config", &door_settings().to_string()).await;
    assert_eq!(status, 200, "{reply}");
    let tri = json!([[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]);
    let many_points: Vec<[f64; 2]> = (0..33).map(|i| [f64::from(i) / 40.0, 0.5]).collect();
    let cases = [
        (
            json!({"mask": [tri, [[0.1, 0.1], [0.2, 0.2]]]}),
            "mask polygon 2 has fewer than 3 points",
        ),
        (
            json!({"mask": [[[0.1, 0.1], [0.5, 0.1], [1.2, 0.5]]]}),
            "mask polygon 1: point 3 is outside 0..1",
        ),
        (
            json!({"mask": [[[0.1, 0.1], [0.5, 0.1], ["a", 0.5]]]}),
            "mask polygon 1: point 3 must be [x, y] numbers",
        ),
        (
            json!({"mask": [many_points]}),
            "mask polygon 1 has too many points (most 32)",
        ),
        (
            json!({"mask": vec![tri.clone(); 17]}),
            "too many mask polygons (most 16)",
        ),
        (json!({"mask": tri}), "mask must be a list of polygons"),
        (
            json!({"zones": [{"name": "path", "points": [[0, 0], [1, 1], [1, 0], [0, 1]]}]}),
            "zone \"path\" crosses itself",
        ),
        (
            json!({"zones": [{"name": "path", "points": [[0, 0], [0.5, 0.5], [1, 1]]}]}),
            "zone \"path\" has no area",
        ),
        (
            json!({"zones": [{"name": "path", "points": [[0, 0], [0.5, 0.5]]}]}),
            "zone \"path\" has fewer than 3 points",
        ),
        (
            json!({"zones": [{"name": "a path", "points": tri}]}),
            "zone name must be 1-32 letters, digits, '-' or '_'",
        ),
        (
            json!({"zones": [{"name": "p", "points": tri}, {"name": "p", "points": tri}]}),
            "duplicate zone name: p",
        ),
        (
            json!({"zones": [{"name": "p"}]}),
            "zones must be a list of {\"name\", \"points\"}",
        ),
        (
            json!({"required_zones": "gate"}),
            "required_zones must be a list of zone names",
        ),
        (
            json!({"required_zones": ["gate", "x"]}),
            "required zone \"x\" is not a zone",
        ),
        // Removing a zone that is still required.
        (
            json!({"zones": [{"name": "path", "points": tri}]}),
            "required zone \"gate\" is not a zone",
        ),
        // A good key does not carry a bad one through.
        (
            json!({"threshold": 40, "mask": [[[0.1, 0.1]]]}),
            "mask polygon 1 has fewer than 3 points",
        ),
    ];
    for (patch, message) in &cases {
        let (status, reply) = post(&server, "/config", &patch.to_string()).await;
        assert_eq!(status, 400, "{patch}");
        assert_eq!(reply, json!({"error": message}), "{patch}");
    }
    assert_eq!(zones_of(&server, "/config").await, door_settings());
    assert_eq!(server.get_json("/config").await["threshold"], 12);

    // The WebSocket `set` gets the same message, and the socket stays open.
    let mut ws = ws_connect(&server, "/control").await;
    for (patch, message) in &cases {
        let mut command = patch.clone();
        command["cmd"] = json!("set");
        let reply = ask(&mut ws, &command.to_string()).await;
        assert_eq!(reply, json!({"ok": false, "error": message}), "{command}");
    }
    let status = ask(&mut ws, r#"{"cmd": "status"}"#).await;
    assert_eq!(status["ok"], true, "the socket is still open");
    // POST /control too, as a 400.
    let (status, reply) = post(
        &server,
        "/control",
        r#"{"cmd": "set", "mask": [[[0.1, 0.1]]]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply,
        json!({"ok": false, "error": "mask polygon 1 has fewer than 3 points"})
    );
    assert_eq!(zones_of(&server, "/config").await, door_settings());

    // A good `set` still works on the same socket.
    let reply = ask(
        &mut ws,
        &json!({"cmd": "set", "required_zones": []}).to_string(),
    )
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["required_zones"], json!([]));
}

#[tokio::test]
async fn restart_keeps_masks_and_zones() {
    let server = start_two(tempfile::tempdir().expect("temp dir")).await;
    let (status, _) = post(&server, "/cams/door/config", &door_settings().to_string()).await;
    assert_eq!(status, 200);
    let mut ws = ws_connect(&server, "/control").await;
    let mut command = yard_settings();
    command["cmd"] = json!("set");
    assert_eq!(ask(&mut ws, &command.to_string()).await["ok"], true);
    drop(ws);
    let stopped = server.stop_keep_dir().await;

    let server = start_two(stopped.dir).await;
    assert_eq!(
        zones_of(&server, "/cams/door/config").await,
        door_settings()
    );
    assert_eq!(zones_of(&server, "/config").await, yard_settings());
}

/// `n` corners on a circle, at full double precision (as a browser sends
/// them), and the same rounded to 4 decimals (as they are stored).
fn circle(cx: f64, cy: f64, r: f64, n: usize) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
    let sent: Vec<[f64; 2]> = (0..n)
        .map(|k| {
            let a = std::f64::consts::TAU * k as f64 / n as f64 + 0.1;
            [cx + r * a.cos(), cy + r * a.sin()]
        })
        .collect();
    let stored = sent
        .iter()
        .map(|p| p.map(|v| (v * 10_000.0).round() / 10_000.0))
        .collect();
    (sent, stored)
}

#[tokio::test]
async fn the_largest_config_is_accepted() {
    let server = TestServer::start(SRC).await;
    let (mut sent, mut stored) = (json!({"mask": [], "zones": []}), unset());
    for i in 0..16 {
        let (cx, cy) = ((i % 4) as f64 * 0.25 + 0.125, (i / 4) as f64 * 0.25 + 0.125);
        let (zone_sent, zone_stored) = circle(cx, cy, 0.12, 32);
        let name = format!("zone-{i:02}-{}", "x".repeat(24));
        sent["zones"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name, "points": zone_sent}));
        stored["zones"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name, "points": zone_stored}));
        let (mask_sent, mask_stored) = circle(cx, cy, 0.06, 32);
        sent["mask"].as_array_mut().unwrap().push(json!(mask_sent));
        stored["mask"]
            .as_array_mut()
            .unwrap()
            .push(json!(mask_stored));
    }
    let names: Vec<Value> = stored["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].clone())
        .collect();
    sent["required_zones"] = json!(names);
    stored["required_zones"] = json!(names);
    let body = sent.to_string();
    assert!(body.len() > 32 * 1024, "{} bytes", body.len());
    let (status, reply) = post(&server, "/config", &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(zones_of(&server, "/config").await, stored);

    // The same over the WebSocket, within its message limit.
    post(&server, "/config", &unset().to_string()).await;
    assert_eq!(zones_of(&server, "/config").await, unset());
    let mut command = sent;
    command["cmd"] = json!("set");
    let mut ws = ws_connect(&server, "/control").await;
    let reply = ask(&mut ws, &command.to_string()).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(zones_of(&server, "/config").await, stored);
}

/// A `required_zones` list longer than there can be zones is refused as a
/// whole, before any name in it is looked at: checking each of thousands of
/// names against the others took most of a second of CPU per request.
#[tokio::test]
async fn a_required_zones_list_longer_than_the_zone_limit_is_refused() {
    let server = TestServer::start(SRC).await;
    let (status, reply) = post(&server, "/config", &door_settings().to_string()).await;
    assert_eq!(status, 200, "{reply}");
    let before = zones_of(&server, "/config").await;
    // About 64 KiB of names, the size that cost most.
    let names: Vec<String> = (0..8721).map(|i| format!("{i:04x}")).collect();
    let (status, reply) = post(
        &server,
        "/config",
        &json!({"required_zones": names}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply, json!({"error": "too many required zones (most 16)"}));
    // Even when every name is a zone's: 17 names cannot all be distinct zones.
    let (status, reply) = post(
        &server,
        "/config",
        &json!({"required_zones": vec!["gate"; 17]}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"], "too many required zones (most 16)");
    assert_eq!(zones_of(&server, "/config").await, before);
}
