//! /snaps over HTTP: listing, serving, deleting, retention, thumbnails, and
//! paths that try to leave the folder.

use crate::common;

use std::time::Duration;

use common::{decode_jpeg, Binary, TestServer};
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
    // A real picture there too: an escaping thumbnail request would succeed.
    std::fs::write(server.data_dir().join("picture.jpg"), real_frame()).unwrap();
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
        "/snaps/..%2Fx/thumb",
        "/snaps/..%2fpicture.jpg/thumb",
        "/snaps/%2e%2e%2fpicture.jpg/thumb",
        "/snaps/..%5cpicture.jpg/thumb",
        "/snaps/%2e%2e/thumb",
        "/snaps/../picture.jpg/thumb",
        "/snaps/.thumbs/thumb",
        "/snaps/.thumbs%2f..%2f..%2fpicture.jpg/thumb",
        "/snaps/%2fetc%2fpasswd/thumb",
        "/snaps/picture.jpg%00.jpg/thumb",
    ];
    for path in attempts {
        // Raw requests: an HTTP client library would normalise some of these.
        for method in ["GET", "DELETE"] {
            let (status, body) = raw(addr, method, path).await;
            // Thumbnails are read-only: DELETE on one is not allowed.
            let read_only = method == "DELETE" && path.ends_with("/thumb");
            assert!(
                status == 400 || status == 404 || (read_only && status == 405),
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
    // No thumbnail folder anywhere but in a camera's snapshot folder.
    assert!(!server.data_dir().join(".thumbs").exists());
    assert!(!server.data_dir().join("snaps/.thumbs").exists());
}

/// A real 1280x720 camera frame (testdata/frames/README.md).
fn real_frame() -> Vec<u8> {
    std::fs::read(real_frame_path()).unwrap()
}

fn real_frame_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/frames/yard-720p.jpg")
}

/// Where the thumbnail of snapshot `name` is on disk (in the first camera's
/// folder, whatever its name).
fn thumb_file(server: &TestServer, name: &str) -> std::path::PathBuf {
    let stem = name.strip_suffix(".jpg").unwrap();
    let cams: Vec<_> = std::fs::read_dir(server.data_dir().join("snaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(cams.len(), 1, "one camera folder: {cams:?}");
    cams[0].join(".thumbs").join(format!("{stem}.jpg"))
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::get(server.url(path)).await.unwrap()
}

#[tokio::test]
async fn thumbnails_of_real_frames() {
    let src = format!("file:{}?fps=10", real_frame_path().display());
    let server = TestServer::start(&src).await;
    server.wait_for_frame().await;
    let name = snapshot(&server).await;

    let listed = list(&server, "").await;
    let item = &listed["snaps"][0];
    assert_eq!(item["name"], name);
    assert_eq!(item["thumb"], format!("/snaps/{name}/thumb"));

    // Written with the snapshot, before the reply.
    let on_disk = std::fs::read(thumb_file(&server, &name)).unwrap();
    let full = get(&server, &format!("/snaps/{name}")).await;
    let r = get(&server, &format!("/snaps/{name}/thumb")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(
        r.headers()["cache-control"],
        full.headers()["cache-control"]
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let thumb = r.bytes().await.unwrap();
    assert_eq!(thumb, on_disk);
    assert_eq!(decode_jpeg(&thumb), (320, 180));
    assert!(thumb.len() < 30 * 1024, "{} bytes", thumb.len());
    let full = full.bytes().await.unwrap();
    assert_eq!(decode_jpeg(&full), (1280, 720));
    assert!(
        thumb.len() * 5 < full.len(),
        "{} vs {}",
        thumb.len(),
        full.len()
    );

    // A snapshot without its thumbnail (older data) gets one on request.
    std::fs::remove_file(thumb_file(&server, &name)).unwrap();
    let r = get(&server, &format!("/snaps/{name}/thumb")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(decode_jpeg(&r.bytes().await.unwrap()), (320, 180));
    assert!(thumb_file(&server, &name).exists());

    // Deleting the snapshot deletes its thumbnail.
    let del = reqwest::Client::new()
        .delete(server.url(&format!("/snaps/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert!(!thumb_file(&server, &name).exists());
    let r = get(&server, &format!("/snaps/{name}/thumb")).await;
    assert_eq!(r.status(), 404);
    assert!(!thumb_file(&server, &name).exists());
    assert_eq!(
        get(&server, "/snaps/manual-1.jpg/thumb").await.status(),
        404
    );
    // The thumbnail folder is never listed.
    assert!(list(&server, "").await["snaps"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn retention_deletes_thumbnails_too() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let r = reqwest::Client::new()
        .post(server.url("/config"))
        .json(&json!({"max_snaps": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = snapshot(&server).await;
    assert!(thumb_file(&server, &first).exists());
    let second = snapshot(&server).await;
    assert!(!thumb_file(&server, &first).exists());
    assert!(thumb_file(&server, &second).exists());
    let r = get(&server, &format!("/snaps/{second}/thumb")).await;
    assert_eq!(r.status(), 200);
    // 160x120 is narrower than a thumbnail: it keeps its size.
    assert_eq!(decode_jpeg(&r.bytes().await.unwrap()), (160, 120));
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

/// A snapshot that is not a picture (a broken file, a partial copy) answers
/// 404 for its thumbnail on every request, but is reported in the log once,
/// not once per request: a gallery asks again on every view.
#[tokio::test]
async fn a_broken_snapshot_is_logged_once_however_often_its_thumbnail_is_asked_for() {
    lookout::install_crypto_provider();
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().join("snaps").join("cam");
    std::fs::create_dir_all(&folder).unwrap();
    let (broken, marker) = ("manual-1764033000001.jpg", "manual-1764033000002.jpg");
    for name in [broken, marker] {
        std::fs::write(folder.join(name), b"not a picture").unwrap();
    }
    let mut bin = Binary::spawn(&["--source", SRC, "--listen", "127.0.0.1:0"], data.path());
    let base = bin.wait_for_url("http").await;
    let (mut child, log) = bin.collect();
    let from = log.len();
    for _ in 0..20 {
        let r = reqwest::get(format!("{base}/snaps/{broken}/thumb"))
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    // The log is one pipe: once the other file's report is read, every
    // line about the first has been.
    let r = reqwest::get(format!("{base}/snaps/{marker}/thumb"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    log.wait_for(from, marker, Duration::from_secs(10)).await;
    let line = log.find(from, broken).expect("reported");
    assert!(
        line.contains("WARN") && line.contains("no thumbnail"),
        "{line}"
    );
    assert_eq!(log.count(broken), 1, "one line for 20 requests");
    // Nothing else in the log speaks of them either (the decoder's own
    // complaints included): a line or two per broken file in all.
    let warnings = log.count("WARN");
    assert!(warnings <= 2, "{warnings} warnings");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
