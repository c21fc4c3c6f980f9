//! Long-lived tokens, over the real binary and real sockets: names are
//! checked and unique, listed without letting a stored name drive the
//! terminal, revoked one at a time; a `read` token looks but cannot touch;
//! and the token and session commands end quietly when their output is gone.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{ask, lookout, text, TestServer};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Runs `lookout` with `args` and its stdout on a pipe nobody reads (the
/// reading end closed before it starts, as `lookout ... | head -0`).
async fn lookout_closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("lookout finishes within 20 s")
        .unwrap()
}

/// `lookout token create NAME [--scope SCOPE]`; returns the secret.
async fn create(data: &str, name: &str, scope: Option<&str>) -> String {
    let mut args = vec!["--data-dir", data, "token", "create", name];
    if let Some(scope) = scope {
        args.extend(["--scope", scope]);
    }
    let out = lookout(&args, None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = text(&out.stdout).trim().to_string();
    assert_eq!(secret.len(), 64, "{secret}");
    secret
}

/// `lookout token list`, as lines split at tabs.
async fn list(data: &str) -> Vec<Vec<String>> {
    let out = lookout(&["--data-dir", data, "token", "list"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Stores a token row as an older lookout could have (no name check, no
/// scope column in the insert), straight into the database.
fn insert_old_row(data: &std::path::Path, secret: &str, kind: &str, name: Option<&str>) {
    let db = rusqlite::Connection::open(data.join("lookout.db")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let expires = (kind != "long").then_some(now + 3600.0);
    db.execute(
        "INSERT INTO tokens (hash, kind, name, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            lookout::auth::sha256(secret.as_bytes()).to_vec(),
            kind,
            name,
            now,
            expires
        ],
    )
    .unwrap();
}

fn hash_hex(secret: &str) -> String {
    lookout::auth::hex(&lookout::auth::sha256(secret.as_bytes()))
}

// Finding 11: names.

#[tokio::test]
async fn token_names_are_checked_like_camera_names_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let long = "a".repeat(5000);
    for bad in [
        "",
        "Home",
        "home assistant",
        "ha\nforged\tline",
        "\x1b[2J\x1b[31mred",
        &long,
        "x".repeat(33).as_str(),
    ] {
        let out = lookout(&["--data-dir", data, "token", "create", bad], None).await;
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(out.stdout.is_empty(), "no secret for {bad:?}");
        let said = text(&out.stderr);
        assert!(said.contains("a-z, 0-9, _ and -"), "{said}");
        assert!(
            !said.contains('\x1b') && !said.contains("\nforged"),
            "{said}"
        );
    }
    create(data, "home-assistant", None).await;
    let out = lookout(
        &["--data-dir", data, "token", "create", "home-assistant"],
        None,
    )
    .await;
    assert!(!out.status.success(), "a second token of the same name");
    assert!(out.stdout.is_empty());
    let said = text(&out.stderr);
    assert!(said.contains("already"), "{said}");
    let listed = list(data).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0][0], "home-assistant");
}

#[tokio::test]
async fn names_stored_before_are_escaped_and_a_shared_name_is_revoked_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // The database as it is before any token.
    assert!(list(data).await.is_empty());
    let (first, second) = ("1".repeat(64), "2".repeat(64));
    insert_old_row(dir.path(), &first, "long", Some("dup"));
    insert_old_row(dir.path(), &second, "long", Some("dup"));
    insert_old_row(
        dir.path(),
        &"3".repeat(64),
        "long",
        Some("evil\x1b]0;owned\x07\x1b[2J\nforged\tline"),
    );

    let out = lookout(&["--data-dir", data, "token", "list"], None).await;
    let shown = text(&out.stdout);
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "{shown:?}"
    );
    assert!(shown.contains(r"evil\u{1b}]0;owned"), "{shown}");
    let listed = list(data).await;
    assert_eq!(listed.len(), 3, "one line per token: {listed:?}");
    assert!(listed.iter().all(|l| l.len() == 4), "{listed:?}");
    assert!(
        listed.iter().all(|l| l[1] == "control"),
        "tokens from before have full control: {listed:?}"
    );

    // The name is shared: refused, nothing revoked, the ids are named.
    let out = lookout(&["--data-dir", data, "token", "revoke", "dup"], None).await;
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(said.contains("--id"), "{said}");
    assert_eq!(list(data).await.len(), 3);

    // By id: exactly that one.
    let id = listed
        .iter()
        .find(|l| l[0] == "dup" && hash_hex(&first).starts_with(&l[2]))
        .map(|l| l[2].clone())
        .expect("the first dup's id");
    let out = lookout(&["--data-dir", data, "token", "revoke", "--id", &id], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let left = list(data).await;
    assert_eq!(left.len(), 2, "{left:?}");
    let dup = left.iter().find(|l| l[0] == "dup").expect("one dup left");
    assert!(hash_hex(&second).starts_with(&dup[2]), "{dup:?}");
    // Now the name is unique again.
    let out = lookout(&["--data-dir", data, "token", "revoke", "dup"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(list(data).await.len(), 1);
}

#[tokio::test]
async fn listing_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    create(data, "prometheus", Some("read")).await;
    insert_old_row(dir.path(), &"4".repeat(64), "session", None);
    for args in [["token", "list"], ["sessions", "list"]] {
        let mut all = vec!["--data-dir", data];
        all.extend(args);
        let out = lookout_closed_stdout(&all).await;
        let said = text(&out.stderr);
        assert!(!said.contains("panicked"), "{args:?}: {said}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {said}");
    }
    // A token nobody could read is not kept.
    let out = lookout_closed_stdout(&["--data-dir", data, "token", "create", "lost"]).await;
    let said = text(&out.stderr);
    assert!(!said.contains("panicked"), "{said}");
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("not kept"), "{said}");
    let names: Vec<String> = list(data).await.into_iter().map(|l| l[0].clone()).collect();
    assert_eq!(names, ["prometheus"]);
}

// Finding 12: scopes.

/// A WebSocket on `/control` with `authorization`.
async fn ws_with(server: &TestServer, authorization: &str) -> common::Ws {
    let mut req = format!("ws://{}/control", server.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", authorization.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

#[tokio::test]
async fn a_read_token_looks_but_does_not_touch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let viewer = format!("Bearer {}", create(&data, "viewer", Some("read")).await);
    let viewer_secret = viewer["Bearer ".len()..].to_string();
    let admin = format!("Bearer {}", create(&data, "admin", None).await);
    let scopes: Vec<(String, String)> = list(&data)
        .await
        .into_iter()
        .map(|l| (l[0].clone(), l[1].clone()))
        .collect();
    assert_eq!(
        scopes,
        [
            ("admin".to_string(), "control".to_string()),
            ("viewer".to_string(), "read".to_string())
        ]
    );

    let server = TestServer::secured_in(dir).await;
    let client = reqwest::Client::new();
    let get = |path: &str, auth: &str| {
        client
            .get(server.url(path))
            .header("authorization", auth)
            .send()
    };
    common::wait_until(Duration::from_secs(30), || async {
        get("/snapshot.jpg", &viewer)
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    for path in [
        "/status",
        "/metrics",
        "/snapshot.jpg",
        "/config",
        "/cams",
        "/snaps",
        "/clips",
        "/api/events",
        "/cams/cam/status",
    ] {
        let r = get(path, &viewer).await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
    }
    let r = client
        .head(server.url("/status"))
        .header("authorization", &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "HEAD");
    let events = get("/events", &viewer).await.unwrap();
    assert_eq!(events.status(), 200);
    assert!(events.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    drop(events);

    // A snapshot to try to delete.
    let r = client
        .post(server.url("/control"))
        .header("authorization", &admin)
        .body(r#"{"cmd": "snapshot_now"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let saved: Value = r.json().await.unwrap();
    let snap = saved["url"].as_str().unwrap().to_string();

    // State-changing requests: 403 naming the scope (the token is valid).
    let refused = [
        client
            .post(server.url("/config"))
            .header("authorization", &viewer)
            .body(r#"{"threshold": 40}"#),
        client
            .post(server.url("/config"))
            .basic_auth("token", Some(&viewer_secret))
            .body(r#"{"threshold": 40}"#),
        client
            .delete(server.url(&snap))
            .header("authorization", &viewer),
        client
            .post(server.url("/control"))
            .header("authorization", &viewer)
            .body(r#"{"cmd": "reset"}"#),
        client
            .post(server.url("/cams/cam/control"))
            .header("authorization", &viewer)
            .body(r#"{"cmd": "snapshot_now", "id": 7}"#),
    ];
    for req in refused {
        let r = req.send().await.unwrap();
        let what = format!("{:?}", r.url().path());
        assert_eq!(r.status(), 403, "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["scope"], "read", "{what}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("read"),
            "{what}: {body}"
        );
    }
    assert_eq!(
        get_json_with(&server, &admin, "/config").await["threshold"],
        12
    );
    assert_eq!(get(&snap, &admin).await.unwrap().status(), 200, "kept");
    // Reading commands over POST /control are fine.
    let r = client
        .post(server.url("/control"))
        .header("authorization", &viewer)
        .body(r#"{"cmd": "status"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The WebSocket: reading commands answered, others refused, socket open.
    let mut ws = ws_with(&server, &viewer).await;
    let r = ask(&mut ws, r#"{"cmd": "status", "id": 1}"#).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["id"], 1);
    let r = ask(&mut ws, r#"{"cmd": "ping"}"#).await;
    assert_eq!(r["ok"], true, "{r}");
    for cmd in [
        r#"{"cmd": "reset", "id": 2}"#,
        r#"{"cmd": "set", "threshold": 40, "id": 2}"#,
        r#"{"cmd": "snapshot_now", "id": 2}"#,
        r#"{"cmd": "flush_uploads", "id": 2}"#,
    ] {
        let r = ask(&mut ws, cmd).await;
        assert_eq!(r["scope"], "read", "{cmd}: {r}");
        assert!(r["error"].as_str().unwrap().contains("read"), "{cmd}: {r}");
        assert_eq!(r["id"], 2, "{r}");
    }
    let r = ask(&mut ws, r#"{"cmd": "ping"}"#).await;
    assert_eq!(r["ok"], true, "still open: {r}");
    drop(ws);

    // A control token does it all.
    let mut ws = ws_with(&server, &admin).await;
    let r = ask(&mut ws, r#"{"cmd": "reset"}"#).await;
    assert_eq!(r["ok"], true, "{r}");
    drop(ws);
    let r = client
        .post(server.url("/control"))
        .header("authorization", &admin)
        .body(r#"{"cmd": "reset"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(server.url("/config"))
        .header("authorization", &admin)
        .body(r#"{"threshold": 40}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .delete(server.url(&snap))
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// GETs `path` with `authorization` and parses the JSON body.
async fn get_json_with(server: &TestServer, authorization: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(server.url(path))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
