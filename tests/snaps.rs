//! /snaps over HTTP: listing, serving, deleting, retention, and paths that try
//! to leave the folder.

mod common;

use common::{decode_jpeg, TestServer};
use serde_json::{json, Value};

const SRC: &str = "synthetic:?size=160x120&fps=10&motion=never";

async fn snapshot(server: &TestServer) -> String {
    let r = server.command(r#"{"cmd": "snapshot_now"}"#).await;
    r["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("/snaps/")
        .to_string()
}

async fn list(server: &TestServer, query: &str) -> Value {
    server.get_json(&format!("/snaps{query}")).await
}

#[tokio::test]
async fn list_serve_delete() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(snapshot(&server).await);
    }
    let all = list(&server, "").await;
    let items = all["snaps"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let listed: Vec<&str> = items.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = names.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(items[0]["trigger"], "manual");
    assert_eq!(items[0]["url"], format!("/snaps/{}", names[2]));
    assert!(items[0]["bytes"].as_u64().unwrap() > 100);
    assert!(items[0]["ts"].as_f64().unwrap() > 1.0e9);

    let page = list(&server, "?limit=2").await;
    assert_eq!(page["snaps"].as_array().unwrap().len(), 2);
    let cursor = page["next_before"].as_str().unwrap().to_string();
    let rest = list(&server, &format!("?before={cursor}")).await;
    assert_eq!(rest["snaps"][0]["name"], names[0]);

    let img = reqwest::get(server.url(&format!("/snaps/{}", names[0])))
        .await
        .unwrap();
    assert_eq!(img.status(), 200);
    assert_eq!(img.headers()["content-type"], "image/jpeg");
    assert_eq!(decode_jpeg(&img.bytes().await.unwrap()), (160, 120));

    let client = reqwest::Client::new();
    let del = client
        .delete(server.url(&format!("/snaps/{}", names[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert!(!server.data_dir().join("snaps").join(&names[0]).exists());
    let again = client
        .delete(server.url(&format!("/snaps/{}", names[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(
        list(&server, "").await["snaps"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn retention_deletes_the_oldest() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let r = reqwest::Client::new()
        .post(server.url("/config"))
        .json(&json!({"max_snaps": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(snapshot(&server).await);
    }
    let listed: Vec<String> = list(&server, "").await["snaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, vec![names[3].clone(), names[2].clone()]);
}

#[tokio::test]
async fn paths_cannot_leave_the_folder() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    snapshot(&server).await;
    // A file beside the data dir that an escape would reach.
    std::fs::write(server.data_dir().join("secret.jpg"), b"TOP-SECRET-4711").unwrap();
    let addr = server.addr;
    let attempts = [
        "/snaps/..%2fsecret.jpg",
        "/snaps/%2e%2e%2fsecret.jpg",
        "/snaps/%2e%2e/secret.jpg",
        "/snaps/..%5csecret.jpg",
        "/snaps/%2fetc%2fpasswd",
        "/snaps/..",
        "/snaps/%2e%2e",
        "/snaps/.%2e%2f.%2e%2flookout.db",
        "/snaps/..%252fsecret.jpg",
        "/snaps/secret.jpg%00.jpg",
        "/snaps/../secret.jpg",
        "/snaps//etc/passwd",
    ];
    for path in attempts {
        // Raw requests: an HTTP client library would normalise some of these.
        for method in ["GET", "DELETE"] {
            let (status, body) = raw(addr, method, path).await;
            assert!(
                status == 400 || status == 404,
                "{method} {path} gave {status}: {body}"
            );
            assert!(
                !body.contains("TOP-SECRET"),
                "{method} {path} leaked: {body}"
            );
            assert!(
                !body.contains("SQLite"),
                "{method} {path} leaked the database: {body}"
            );
        }
    }
    assert!(server.data_dir().join("secret.jpg").exists());
    assert!(server.data_dir().join("lookout.db").exists());
}

/// Sends a request line exactly as written and returns (status, body).
async fn raw(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}
