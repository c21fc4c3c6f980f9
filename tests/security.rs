//! Secure by default: HTTPS and wss, sign-in, cross-site refusals and limits,
//! with real TLS clients over real sockets.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{MjpegClient, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const SRC: &str = "synthetic:?size=160x120&fps=10&motion=never";
const PASSWORD: &str = "correct horse battery";

async fn secured() -> TestServer {
    TestServer::start_with(SRC, tempfile::tempdir().unwrap(), |c| {
        c.require_auth = true;
        c.password = Some(PASSWORD.into());
    })
    .await
}

fn no_redirects() -> reqwest::Client {
    lookout::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn tls_server() -> (TestServer, Vec<u8>) {
    let server = TestServer::start_with(SRC, tempfile::tempdir().unwrap(), |c| {
        c.tls = Some(lookout::web::tls::TlsSource::SelfSigned);
    })
    .await;
    let cert_path = server.data_dir().join("tls/cert.pem");
    common::wait_until(Duration::from_secs(10), || async { cert_path.exists() }).await;
    let pem = std::fs::read(&cert_path).unwrap();
    (server, pem)
}

#[tokio::test]
async fn https_with_the_self_signed_certificate() {
    let (server, pem) = tls_server().await;
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    server.wait_for_frame_with(&client).await;
    let status: Value = client
        .get(server.url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["source"]["state"], "running");
    // A client that does not trust the certificate is refused.
    let strict = reqwest::Client::new();
    assert!(strict.get(server.url("/status")).send().await.is_err());
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::get(format!("http://{}/status", server.addr)).await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
}

#[tokio::test]
async fn curl_speaks_http2_over_tls() {
    let (server, _) = tls_server().await;
    let cert = server.data_dir().join("tls/cert.pem");
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            "--cacert",
        ])
        .arg(&cert)
        .arg(server.url("/healthz"))
        .output()
        .await
        .expect("curl runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2",
        "HTTP/2 negotiated by ALPN"
    );
}

#[tokio::test]
async fn wss_commands_over_tls() {
    let (server, pem) = tls_server().await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let url = format!("wss://localhost:{}/control", server.addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    ws.send(Message::text(r#"{"cmd": "reset", "id": 1}"#))
        .await
        .unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply, json!({"ok": true, "counters": "reset", "id": 1}));
}

#[tokio::test]
async fn every_route_needs_credentials_but_healthz() {
    let server = secured().await;
    let client = no_redirects();
    for path in [
        "/status",
        "/config",
        "/snapshot.jpg",
        "/stream.jpg",
        "/snaps",
        "/api/events",
        "/events",
        "/",
        "/app.js",
        "/nope",
    ] {
        let r = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic"),
            "{path}"
        );
    }
    for (method, path) in [
        ("POST", "/config"),
        ("POST", "/control"),
        ("DELETE", "/snaps/x.jpg"),
    ] {
        let r = client
            .request(method.parse().unwrap(), server.url(path))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
    }
    // A browser navigating is sent to the login page, and back afterwards.
    let r = client
        .get(server.url("/snaps?limit=2"))
        .header("sec-fetch-mode", "navigate")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/snaps%3Flimit%3D2");
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let login = client.get(server.url("/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains(r#"name="pass""#));
    // The WebSocket too.
    let err = tokio_tungstenite::connect_async(format!("ws://{}/control", server.addr))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn basic_auth_grants_access_and_a_wrong_password_does_not() {
    let server = secured().await;
    let client = no_redirects();
    let ok = client
        .get(server.url("/status"))
        .basic_auth("owner", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = client
        .get(server.url("/status"))
        .basic_auth("owner", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let user = client
        .get(server.url("/status"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 401);
    // Home Assistant's MJPEG camera: Basic on the stream (once there is a frame).
    common::wait_until(Duration::from_secs(20), || async {
        client
            .get(server.url("/stream.jpg"))
            .basic_auth("owner", Some(PASSWORD))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

#[tokio::test]
async fn login_form_gives_a_session_cookie_and_logout_ends_it() {
    let server = secured().await;
    let client = no_redirects();
    let bad = client
        .post(server.url("/login"))
        .form(&[("user", "owner"), ("pass", "wrong"), ("next", "/snaps")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 303);
    assert_eq!(bad.headers()["location"], "/login?error=1&next=/snaps");
    assert!(bad.headers().get("set-cookie").is_none());
    let good = client
        .post(server.url("/login"))
        .form(&[
            ("user", "owner"),
            ("pass", PASSWORD),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 303);
    assert_eq!(good.headers()["location"], "/", "never redirected off site");
    let cookie = good.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    assert_eq!(session.len(), "lookout_session=".len() + 64);
    let with = |path: &str| {
        client
            .get(server.url(path))
            .header("cookie", session.clone())
            .send()
    };
    assert_eq!(with("/status").await.unwrap().status(), 200);
    assert_eq!(with("/").await.unwrap().status(), 200);
    // The cookie also opens the WebSocket and the event stream.
    let mut req = format!("ws://{}/control", server.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", session.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(r#"{"cmd": "ping"}"#)).await.unwrap();
    assert!(ws
        .next()
        .await
        .unwrap()
        .unwrap()
        .to_text()
        .unwrap()
        .contains("pong"));
    assert_eq!(with("/events").await.unwrap().status(), 200);
    let out = client
        .post(server.url("/logout"))
        .header("cookie", session.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(with("/status").await.unwrap().status(), 401);
}

#[tokio::test]
async fn api_login_token_and_its_errors() {
    let server = secured().await;
    let client = no_redirects();
    let login = |body: &'static str| client.post(server.url("/api/login")).body(body).send();
    let r = login(r#"{"user": "owner", "pass": "correct horse battery"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 3600);
    let token = body["token"].as_str().unwrap().to_string();
    let r = client
        .get(server.url("/config"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(server.url("/config"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        login(r#"{"user": "owner", "pass": "nope"}"#)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(login("").await.unwrap().status(), 400);
    assert_eq!(login("{").await.unwrap().status(), 400);
    assert_eq!(login(r#"{"user": "owner"}"#).await.unwrap().status(), 400);
}

#[tokio::test]
async fn failed_logins_are_slowed_down() {
    let server = secured().await;
    let client = no_redirects();
    let attempt = || {
        client
            .post(server.url("/api/login"))
            .body(r#"{"user": "owner", "pass": "guess"}"#)
            .send()
    };
    for _ in 0..4 {
        assert_eq!(attempt().await.unwrap().status(), 401);
    }
    // After four failures the next attempt waits 2 s before it is even checked.
    let start = Instant::now();
    assert_eq!(attempt().await.unwrap().status(), 401);
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn long_lived_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_lookout");
    let data = dir.path().to_str().unwrap().to_string();
    let out = std::process::Command::new(bin)
        .args(["--data-dir", &data, "token", "create", "home-assistant"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token.len(), 64);
    // A password stored with `lookout passwd` (read from stdin).
    let mut child = std::process::Command::new(bin)
        .args(["--data-dir", &data, "passwd"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"stored password 42\n")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let server = TestServer::start_with(SRC, dir, |c| c.require_auth = true).await;
    let client = no_redirects();
    let r = client
        .get(server.url("/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(server.url("/status"))
        .basic_auth("owner", Some("stored password 42"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The token as a Basic password, for clients that send only a user and
    // a password (Home Assistant's MJPEG camera).
    let basic_token = |token: &str| {
        client
            .get(server.url("/snapshot.jpg"))
            .basic_auth("token", Some(token.to_string()))
            .send()
    };
    server.wait_for_frame_with(&client_with_token(&token)).await;
    assert_eq!(basic_token(&token).await.unwrap().status(), 200);
    assert_eq!(basic_token("not-a-token").await.unwrap().status(), 401);
    let out = std::process::Command::new(bin)
        .args(["--data-dir", &data, "token", "revoke", "home-assistant"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = client
        .get(server.url("/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "revoked at once, no restart needed");
    assert_eq!(basic_token(&token).await.unwrap().status(), 401);
}

/// A client that sends `token` as its bearer.
fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().unwrap();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test]
async fn cross_site_requests_and_websockets_are_refused() {
    let server = TestServer::start(SRC).await;
    let client = reqwest::Client::new();
    let r = client
        .post(server.url("/control"))
        .header("origin", "http://evil.example")
        .body(r#"{"cmd": "reset"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(server.url("/config"))
        .header("sec-fetch-site", "cross-site")
        .body(r#"{"threshold": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        server.get_json("/config").await["threshold"],
        12,
        "nothing changed"
    );
    let same = client
        .post(server.url("/control"))
        .header("origin", format!("http://{}", server.addr))
        .body(r#"{"cmd": "reset"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    let mut req = format!("ws://{}/control", server.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let mut req = format!("ws://{}/control", server.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", format!("http://{}", server.addr).parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

#[tokio::test]
async fn an_allowed_origin_gets_cors() {
    let server = TestServer::start_with(SRC, tempfile::tempdir().unwrap(), |c| {
        c.allow_origins = vec!["http://ha.example:8123".into()];
    })
    .await;
    let client = reqwest::Client::new();
    let r = client
        .post(server.url("/control"))
        .header("origin", "http://ha.example:8123")
        .body(r#"{"cmd": "ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://ha.example:8123"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let other = client
        .get(server.url("/status"))
        .header("origin", "http://other.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn slowloris_connection_is_closed() {
    let server = TestServer::start_with(SRC, tempfile::tempdir().unwrap(), |c| {
        c.limits.header_timeout_s = 1;
    })
    .await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // ...and never the blank line. The server hangs up.
    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection still open after 5 s");
    // Others are served meanwhile.
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let server = TestServer::start_with(SRC, tempfile::tempdir().unwrap(), |c| {
        c.limits.header_timeout_s = 1;
    })
    .await;
    let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, then the connection sits idle and is closed.
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(
        closed.is_ok(),
        "idle keep-alive connection still open after 5 s"
    );
}

#[tokio::test]
async fn oversized_input_is_refused_while_others_are_served() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    let mut viewer = MjpegClient::connect(&server.url("/stream.jpg")).await;
    viewer.next_part().await.unwrap();
    let big = format!(r#"{{"threshold": 5, "x": "{}"}}"#, "y".repeat(70 * 1024));
    let r = reqwest::Client::new()
        .post(server.url("/config"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::Client::new()
        .post(server.url("/control"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::Client::new()
        .post(server.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user=owner&pass={}", "p".repeat(80 * 1024)))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 400 || r.status() == 413, "{}", r.status());
    for _ in 0..3 {
        viewer
            .next_part()
            .await
            .expect("the viewer keeps receiving");
    }
}

#[tokio::test]
async fn viewer_and_connection_limits() {
    let server = TestServer::start_with(SRC, tempfile::tempdir().unwrap(), |c| {
        c.limits.max_viewers = 2;
        c.limits.max_connections = 4;
    })
    .await;
    server.wait_for_frame().await;
    let mut a = MjpegClient::connect(&server.url("/stream.jpg")).await;
    let mut b = MjpegClient::connect(&server.url("/stream.jpg")).await;
    a.next_part().await.unwrap();
    b.next_part().await.unwrap();
    let r = reqwest::get(server.url("/stream.jpg")).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "too many viewers"
    );
    drop(a);
    common::wait_until(Duration::from_secs(5), || async {
        server.status().await["viewers"] == 1
    })
    .await;
    // Hold connections open until the limit: the next one is closed unanswered.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    let mut extra = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "refused: {:?}",
        String::from_utf8_lossy(&buf)
    );
    drop(held);
    common::wait_until(Duration::from_secs(5), || async {
        reqwest::get(server.url("/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

#[tokio::test]
async fn plain_http_listener_redirects_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--redirect-http",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--source",
        SRC,
    ];
    let mut bin = common::Binary::spawn(&args, dir.path());
    let https = bin.wait_for_url("https").await;
    let plain = format!("http://{}", bin.wait_for_redirect_addr().await);
    let _child = bin.drain();
    let port = https.rsplit(':').next().unwrap();
    let r = no_redirects()
        .get(format!("{plain}/snaps?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://127.0.0.1:{port}/snaps?x=1")
    );
}
