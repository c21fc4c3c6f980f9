//! Network hardening: every phase of a connection has a deadline, caps that
//! answer before the open-file limit does, strict `?fps=`, HSTS, asset
//! methods, the redirect's `Host`, fragmented WebSocket messages, and a
//! private data directory. Real sockets, real TLS, the real binary where the
//! process matters.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::Message;

const SRC: &str = "synthetic:?size=160x120&fps=10&motion=never";

/// Reads until the peer closes (EOF or reset), returning what came and how
/// long it took; panics after `limit`.
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    conn: &mut S,
    limit: Duration,
) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let done = tokio::time::timeout(limit, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "connection still open after {limit:?}; got {:?}",
        String::from_utf8_lossy(&got)
    );
    (got, start.elapsed())
}

async fn with_limits(tweak: impl FnOnce(&mut lookout::config::Limits)) -> TestServer {
    TestServer::start_with(SRC, tempfile::tempdir().unwrap(), |c| tweak(&mut c.limits)).await
}

async fn tls_with_limits(
    tweak: impl FnOnce(&mut lookout::config::Limits),
) -> (TestServer, Vec<u8>) {
    let server = TestServer::start_with(SRC, tempfile::tempdir().unwrap(), |c| {
        c.tls = Some(lookout::web::tls::TlsSource::SelfSigned);
        tweak(&mut c.limits);
    })
    .await;
    let cert_path = server.data_dir().join("tls/cert.pem");
    common::wait_until(Duration::from_secs(10), || async {
        std::fs::read(&cert_path).is_ok_and(|p| !p.is_empty())
    })
    .await;
    // The listener is bound before the certificate exists; wait until TLS is served.
    let pem = std::fs::read(&cert_path).unwrap();
    let client = tls_client(&pem);
    server.wait_for_frame_with(&client).await;
    (server, pem)
}

fn tls_client(pem: &[u8]) -> reqwest::Client {
    lookout::install_crypto_provider();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn silent_connection_is_closed_within_the_header_timeout() {
    let server = with_limits(|l| l.header_timeout_s = 1).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let (got, took) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "nothing was asked, nothing is answered");
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );
    // Others are served meanwhile and after.
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn keep_alive_connection_is_closed_after_the_idle_timeout() {
    // Header timeout long, idle timeout short: the idle deadline closes it.
    let server = with_limits(|l| {
        l.header_timeout_s = 30;
        l.idle_timeout_s = 1;
    })
    .await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let (got, took) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn http2_connection_is_closed_after_the_idle_timeout() {
    let server = with_limits(|l| {
        l.header_timeout_s = 30;
        l.idle_timeout_s = 1;
    })
    .await;
    // HTTP/2 with prior knowledge: the preface, an empty SETTINGS frame and
    // one GET /healthz (HPACK: :method GET, :scheme http, :path literal,
    // :authority literal), then silence.
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let mut bytes =
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec();
    let block = b"\x82\x86\x44\x08/healthz\x41\x01x";
    bytes.extend_from_slice(&[0, 0, block.len() as u8, 0x01, 0x05, 0, 0, 0, 1]);
    bytes.extend_from_slice(block);
    conn.write_all(&bytes).await.unwrap();
    let (got, took) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    // A HEADERS frame (type 1) on stream 1 came back before the close.
    assert!(
        got.windows(9)
            .any(|w| w[3] == 0x01 && w[5..9] == [0, 0, 0, 1]),
        "{got:?}"
    );
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn tls_socket_that_never_says_hello_is_closed() {
    let (server, _) = tls_with_limits(|l| l.header_timeout_s = 1).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let (got, _) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(got.is_empty());
}

#[tokio::test]
async fn tls_session_that_sends_no_request_is_closed() {
    let (server, pem) = tls_with_limits(|l| l.header_timeout_s = 1).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    // Handshake done; no request follows.
    let (got, _) = read_until_closed(&mut tls, Duration::from_secs(5)).await;
    assert!(got.is_empty());
}

#[tokio::test]
async fn unfinished_request_body_gets_408_and_the_connection_closed() {
    let server = with_limits(|l| l.body_timeout_s = 1).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"user\": \"owner\"",
    )
    .await
    .unwrap();
    let (got, took) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(
        text.contains(r#""error":"request body not received in time""#),
        "{text}"
    );
    assert!(
        took >= Duration::from_millis(800),
        "answered too early: {took:?}"
    );
}

#[tokio::test]
async fn silent_sockets_give_their_slots_back() {
    let server = with_limits(|l| {
        l.max_connections = 4;
        l.header_timeout_s = 1;
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // While they hold every slot, another client is turned away...
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let (got, _) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    // ...until the deadline closes them (the test keeps them open).
    for conn in &mut silent {
        read_until_closed(conn, Duration::from_secs(5)).await;
    }
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn long_lived_responses_outlive_the_deadlines() {
    let server = with_limits(|l| {
        l.header_timeout_s = 1;
        l.idle_timeout_s = 1;
        l.body_timeout_s = 1;
    })
    .await;
    server.wait_for_frame().await;
    let mut viewer = common::MjpegClient::connect(&server.url("/stream.jpg")).await;
    let url = format!("ws://{}/control", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut events = reqwest::get(server.url("/events")).await.unwrap();
    assert_eq!(events.status(), 200);
    // Three times the deadlines: each still works.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        viewer
            .next_part()
            .await
            .expect("the viewer keeps receiving");
    }
    ws.send(Message::text(r#"{"cmd": "ping"}"#)).await.unwrap();
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => break t,
            _ => continue,
        }
    };
    assert!(reply.contains("pong"), "{reply}");
    server.command(r#"{"cmd": "reset"}"#).await;
    let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .expect("an event within 5 s")
        .unwrap();
    assert!(chunk.is_some(), "the event stream is still open");
}

#[tokio::test]
async fn the_open_file_limit_sets_the_caps_and_snapshots_still_work() {
    lookout::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut bin = common::Binary::spawn_with_nofile(
        200,
        &[
            "--listen",
            "127.0.0.1:0",
            "--source",
            SRC,
            "--header-timeout",
            "2",
        ],
        dir.path(),
    );
    let url = bin.wait_for_url("http").await;
    let caps = bin
        .wait_for("the open-file line", |line| {
            line.contains("open-file limit 200:")
                .then(|| line.to_string())
        })
        .await;
    // 200 less the reserve of 64: 136 connections, half each for streams,
    // and at least 64 per address.
    assert!(
        caps.contains(
            "up to 136 connections (64 per client address), 68 stream viewers, \
             68 event subscribers, 68 WebSockets"
        ),
        "{caps}"
    );
    let _child = bin.drain();
    let addr = url.trim_start_matches("http://").to_string();
    common::wait_until(Duration::from_secs(30), || async {
        reqwest::get(format!("{url}/snapshot.jpg"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/control"))
        .await
        .unwrap();
    // More sockets than the limit, from four addresses (one address alone
    // would stop at its own cap): the cap turns the extra ones away before
    // the process runs out of descriptors.
    let mut flood = Vec::new();
    let to: std::net::SocketAddr = addr.parse().unwrap();
    for i in 0..250 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        let from = format!("127.0.0.{}", 41 + i % 4);
        socket
            .bind(std::net::SocketAddr::new(from.parse().unwrap(), 0))
            .unwrap();
        if let Ok(conn) = socket.connect(to).await {
            flood.push(conn);
        }
    }
    ws.send(Message::text(r#"{"cmd": "snapshot_now"}"#))
        .await
        .unwrap();
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => break t,
            _ => continue,
        }
    };
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test]
async fn redirect_listener_has_deadlines_and_checks_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--redirect-http",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--header-timeout",
        "1",
        "--source",
        SRC,
    ];
    let mut bin = common::Binary::spawn(&args, dir.path());
    let https = bin.wait_for_url("https").await;
    let plain = bin.wait_for_redirect_addr().await;
    let _child = bin.drain();
    let port = https.rsplit(':').next().unwrap().to_string();

    let mut silent = TcpStream::connect(&plain).await.unwrap();
    let (got, _) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(got.is_empty());

    let ask = |host: &'static str| {
        let plain = plain.clone();
        async move {
            let mut conn = TcpStream::connect(&plain).await.unwrap();
            let req =
                format!("GET /snaps?x=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            conn.write_all(req.as_bytes()).await.unwrap();
            let (got, _) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
            String::from_utf8_lossy(&got).into_owned()
        }
    };
    let ok = ask("cam.local:80").await;
    assert!(ok.starts_with("HTTP/1.1 308"), "{ok}");
    assert!(
        ok.contains(&format!("location: https://cam.local:{port}/snaps?x=1\r\n")),
        "{ok}"
    );
    let ok = ask("[::1]:80").await;
    assert!(
        ok.contains(&format!("location: https://[::1]:{port}/")),
        "{ok}"
    );
    for evil in [
        "evil.example@cam",
        "evil.example/x",
        "evil.example\\x",
        "a b",
    ] {
        let got = ask(evil).await;
        assert!(got.starts_with("HTTP/1.1 400"), "{evil}: {got}");
        assert!(
            !got.to_ascii_lowercase().contains("location:"),
            "{evil}: {got}"
        );
    }
}

/// Sends one raw HTTP/1.1 request whose head carries a `pad`-byte cookie
/// and returns the status line of the answer.
async fn status_with_cookie(server: &TestServer, pad: usize) -> String {
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: x={}\r\nConnection: close\r\n\r\n",
        "a".repeat(pad)
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (got, _) = read_until_closed(&mut conn, Duration::from_secs(10)).await;
    let got = String::from_utf8_lossy(&got);
    got.lines().next().unwrap_or("").to_string()
}

/// The read buffer of an HTTP/1.1 connection is held at 8 KiB (memory per
/// viewer, see `web::server`): a request head that fits is served, a larger
/// one is refused with 431 and costs nobody else anything.
#[tokio::test]
async fn request_heads_up_to_8_kib_are_served_larger_ones_get_431() {
    let server = TestServer::start(SRC).await;
    // A fat cookie, as a browser may carry: served.
    assert_eq!(
        status_with_cookie(&server, 6 * 1024).await,
        "HTTP/1.1 200 OK"
    );
    // Over the bound: refused, clearly.
    let refused = status_with_cookie(&server, 9 * 1024).await;
    assert!(
        refused.starts_with("HTTP/1.1 431"),
        "a 9 KiB head: {refused:?}"
    );
    // The server goes on serving.
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn fps_out_of_range_is_a_400_not_a_panic() {
    let server = TestServer::start(SRC).await;
    server.wait_for_frame().await;
    for fps in [
        "1e-20", "1e-19", "5e-324", "0", "-1", "0.05", "121", "1e300", "NaN", "inf", "-inf",
    ] {
        let r = reqwest::get(server.url(&format!("/stream.jpg?fps={fps}")))
            .await
            .unwrap_or_else(|e| panic!("fps={fps}: {e}"));
        assert_eq!(r.status(), 400, "fps={fps}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"], "fps must be between 0.1 and 120",
            "fps={fps}"
        );
    }
    for fps in ["0.1", "120", "5"] {
        let r = reqwest::get(server.url(&format!("/stream.jpg?fps={fps}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "fps={fps}");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn data_directory_is_private() {
    // An existing directory from an older version, readable by all.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = dir.path().join("notes.txt");
    std::fs::write(&old, b"old").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();

    let server = TestServer::start_with(SRC, dir, |c| {
        c.tls = Some(lookout::web::tls::TlsSource::SelfSigned);
    })
    .await;
    let cert = server.data_dir().join("tls/cert.pem");
    common::wait_until(Duration::from_secs(10), || async {
        std::fs::read(&cert).is_ok_and(|p| !p.is_empty())
    })
    .await;
    let pem = std::fs::read(&cert).unwrap();
    let client = tls_client(&pem);
    server.wait_for_frame_with(&client).await;
    let reply: Value = client
        .post(server.url("/control"))
        .body(r#"{"cmd": "snapshot_now"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    let saved = reply["saved"].as_str().unwrap().to_string();
    let stopped = server.stop_keep_dir().await;
    let root = stopped.dir.path();

    assert_eq!(mode(root), 0o700, "data directory");
    for folder in ["snaps", "tls"] {
        assert_eq!(mode(&root.join(folder)), 0o700, "{folder}");
    }
    assert_eq!(mode(&root.join(&saved)), 0o600, "{saved}");
    assert_eq!(mode(&old), 0o600, "an old file is tightened");
    let mut files = 0;
    for entry in walk(root) {
        let m = mode(&entry);
        if entry.is_dir() {
            assert_eq!(m, 0o700, "{}", entry.display());
        } else {
            files += 1;
            assert_eq!(m, 0o600, "{}", entry.display());
        }
    }
    assert!(files >= 5, "db, cert, key, snapshot, notes: {files}");
    assert!(root.join("lookout.db").exists());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[tokio::test]
async fn hsts_under_tls_only() {
    let (server, pem) = tls_with_limits(|_| {}).await;
    let r = tls_client(&pem)
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let plain = TestServer::start(SRC).await;
    let r = reqwest::get(plain.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn dashboard_files_answer_get_and_head_only() {
    let server = TestServer::start(SRC).await;
    let client = reqwest::Client::new();
    for path in ["/", "/index.html", "/app.js"] {
        let r = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        let r = client.head(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {path}");
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let r = client
                .request(method.clone(), server.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            assert_eq!(r.headers()["allow"], "GET, HEAD");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "method not allowed");
        }
    }
    let r = client.post(server.url("/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["path"], "/nope.js");
}

/// Sends `count` text fragments of 1 KiB as one message, the last one
/// final only if `finish`; stops early if the server hung up.
async fn send_fragments<S>(ws: &mut S, count: usize, finish: bool)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let chunk = vec![b'x'; 1024];
    for i in 0..count {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let header = FrameHeader {
            is_final: finish && i == count - 1,
            opcode,
            ..FrameHeader::default()
        };
        let frame = Frame::from_payload(header, chunk.clone().into());
        if ws.send(Message::Frame(frame)).await.is_err() {
            return;
        }
    }
}

/// The close code the server sends (within 5 s), if any.
async fn close_code<S>(ws: &mut S) -> Option<u16>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(Some(frame))) => return Some(u16::from(frame.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("closed within 5 s")
}

#[tokio::test]
async fn fragmented_websocket_message_over_the_limit_is_closed_with_1009() {
    let server = TestServer::start(SRC).await;
    let url = format!("ws://{}/control", server.addr);
    // 100 fragments of 1 KiB, every frame tiny, the message 100 KiB: over
    // the 64 KiB limit, and never finished.
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send_fragments(&mut ws, 100, false).await;
    assert_eq!(close_code(&mut ws).await, Some(1009), "unfinished");
    // The same, finished, and a longer one.
    for count in [100, 400] {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        send_fragments(&mut ws, count, true).await;
        assert_eq!(close_code(&mut ws).await, Some(1009), "{count} KiB");
    }
    // A message just under the limit in 63 fragments is answered.
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send_fragments(&mut ws, 63, true).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a reply")
        .unwrap()
        .unwrap();
    assert_eq!(reply.to_text().unwrap(), r#"{"error":"bad json"}"#);
}

// Round three: per-address caps, silent connections closed first, and
// WebSockets capped, counted and kept small.

/// Connects from `local` (any address of 127.0.0.0/8 is loopback on Linux:
/// another client address).
async fn connect_from(local: &str, to: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(local.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closed `conn` within `limit` (a read returns EOF or an
/// error) rather than keeping it open.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, conn.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

async fn healthz_from(local: &str, server: &TestServer) -> String {
    let mut conn = connect_from(local, server.addr).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_until_closed(&mut conn, Duration::from_secs(10)).await;
    String::from_utf8_lossy(&got).to_string()
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let server = with_limits(|l| {
        l.max_connections = 64;
        l.max_connections_per_ip = 4;
        // Long enough that only the caps can close anything here.
        l.header_timeout_s = 60;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.21", server.addr).await);
    }
    // The fifth from the same address is closed at once...
    let mut fifth = connect_from("127.0.0.21", server.addr).await;
    assert!(
        closed_within(&mut fifth, Duration::from_secs(5)).await,
        "a fifth connection from one address stays open"
    );
    // ...while the four stay open and another address is served.
    assert!(healthz_from("127.0.0.22", &server)
        .await
        .starts_with("HTTP/1.1 200"));
    for conn in &mut held {
        assert!(!closed_within(conn, Duration::from_millis(100)).await);
    }
    // Closing one gives its place back.
    held.pop();
    common::wait_until(Duration::from_secs(10), || async {
        healthz_from("127.0.0.21", &server)
            .await
            .starts_with("HTTP/1.1 200")
    })
    .await;
}

#[tokio::test]
async fn when_every_place_is_taken_the_oldest_silent_connection_makes_room() {
    for tls in [false, true] {
        let limits = |l: &mut lookout::config::Limits| {
            l.max_connections = 8;
            l.max_connections_per_ip = 8;
            l.header_timeout_s = 60;
        };
        let (server, pem) = if tls {
            let (s, pem) = tls_with_limits(limits).await;
            (s, Some(pem))
        } else {
            (with_limits(limits).await, None)
        };
        // An attacker takes every place with sockets that say nothing.
        let mut silent = Vec::new();
        for _ in 0..8 {
            silent.push(connect_from("127.0.0.23", server.addr).await);
        }
        // A real client still gets in, every time.
        let client = match &pem {
            Some(pem) => tls_client(pem),
            None => reqwest::Client::new(),
        };
        for i in 0..3 {
            let r = client.get(server.url("/healthz")).send().await;
            assert!(
                r.as_ref().is_ok_and(|r| r.status() == 200),
                "tls {tls}, request {i}: {r:?}"
            );
        }
        // The oldest silent ones were closed for it.
        assert!(
            closed_within(&mut silent[0], Duration::from_secs(5)).await,
            "tls {tls}: the oldest silent socket is still open"
        );
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn websockets_are_capped_and_counted() {
    let server = with_limits(|l| l.max_ws = 2).await;
    server.wait_for_frame().await;
    let mut a = common::ws_connect(&server, "/control").await;
    let mut b = common::ws_connect(&server, "/cams/cam/control").await;
    assert_eq!(common::ask(&mut a, r#"{"cmd": "ping"}"#).await["ok"], true);
    let third = tokio_tungstenite::connect_async(format!("ws://{}/control", server.addr)).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503)
        }
        other => panic!("a third WebSocket: {other:?}"),
    }
    assert_eq!(server.status().await["websockets"], 2);
    let metrics = server.metrics().await;
    assert!(
        metrics.lines().any(|l| l == "lookout_websockets 2"),
        "{metrics}"
    );
    // The open ones still work, and a closed one gives its place back.
    assert_eq!(common::ask(&mut b, r#"{"cmd": "ping"}"#).await["ok"], true);
    a.close(None).await.unwrap();
    drop(a);
    common::wait_until(Duration::from_secs(10), || async {
        server.status().await["websockets"] == 1
    })
    .await;
    let mut c = common::ws_connect(&server, "/control").await;
    assert_eq!(common::ask(&mut c, r#"{"cmd": "ping"}"#).await["ok"], true);
}

#[tokio::test]
async fn an_idle_websocket_costs_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut bin = common::Binary::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--source",
            SRC,
            "--max-ws",
            "1000",
        ],
        dir.path(),
    );
    let url = bin.wait_for_url("http").await;
    let child = bin.drain();
    let pid = child.id().unwrap();
    let ws_url = format!("{}/control", url.replace("http://", "ws://"));
    // Warm up: the allocator's arenas and the first sockets.
    let mut warm = Vec::new();
    for _ in 0..20 {
        warm.push(tokio_tungstenite::connect_async(&ws_url).await.unwrap().0);
    }
    let before = common::rss_kib(pid).unwrap();
    const N: u64 = 300;
    let mut open = Vec::new();
    for _ in 0..N {
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        // One command each, so every socket has read something.
        ws.send(Message::text(r#"{"cmd": "ping"}"#)).await.unwrap();
        open.push(ws);
    }
    for ws in &mut open {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => break,
                Some(Ok(_)) => continue,
                other => panic!("{other:?}"),
            }
        }
    }
    let per_socket = common::rss_kib(pid).unwrap().saturating_sub(before) / N;
    println!("{per_socket} KiB of RSS per idle WebSocket");
    // tungstenite's default 128 KiB read buffer made it about 134 KB.
    assert!(per_socket < 48, "{per_socket} KiB per idle WebSocket");
}
