//! Shared test harness: a real lookout on a loopback port with a temporary data
//! directory, and a small MJPEG client that parses parts off the wire.
//!
//! Beside it: `sse` (the SSE reader) and `receiver` (the upload receiver),
//! which the bench programs include too, `broker` (a real mosquitto),
//! `webpush` (a real Web Push service), `fakecam` (a scripted RTSP
//! camera), `rtsp` (the GStreamer test camera) and `mp4` (reading MP4).
#![allow(dead_code, unreachable_pub)]

pub mod broker;
pub mod fakecam;
pub mod mp4;
pub mod receiver;
pub mod rtsp;
pub mod sse;
pub mod webpush;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A still synthetic scene: quick to render, never a motion event.
pub const STILL: &str = "synthetic:?size=160x120&fps=10&motion=never";

/// The owner's password where a test signs in.
pub const PASSWORD: &str = "correct horse battery";

/// A running server; dropping it stops it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub cancel: CancellationToken,
    pub scheme: &'static str,
    handle: Option<JoinHandle<Result<(), lookout::RunError>>>,
}

impl TestServer {
    /// Starts lookout with `source` on 127.0.0.1:0.
    pub async fn start(source: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(source, dir).await
    }

    /// Starts lookout with `source` using `dir` as data directory.
    pub async fn start_in(source: &str, dir: tempfile::TempDir) -> TestServer {
        Self::start_with(source, dir, |_| {}).await
    }

    /// Starts lookout with `source`, `dir` and a config changed by `tweak`.
    pub async fn start_with(
        source: &str,
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut lookout::Config),
    ) -> TestServer {
        lookout::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = lookout::Config::new(source, dir.path()).expect("config");
        tweak(&mut config);
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(lookout::run(listener, config, cancel.clone()));
        TestServer {
            addr,
            dir,
            cancel,
            scheme,
            handle: Some(handle),
        }
    }

    /// Starts lookout with [`STILL`] in `dir`, every route but `/healthz`
    /// behind sign-in with [`PASSWORD`].
    pub async fn secured_in(dir: tempfile::TempDir) -> TestServer {
        Self::start_with(STILL, dir, |c| {
            c.require_auth = true;
            c.password = Some(PASSWORD.into());
        })
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server and waits until `run` returns (bounded).
    pub async fn stop(mut self) -> Result<(), lookout::RunError> {
        self.shutdown().await
    }

    async fn shutdown(&mut self) -> Result<(), lookout::RunError> {
        self.cancel.cancel();
        let handle = self.handle.take().expect("running");
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("server stops within 5 s")
            .expect("server task")
    }

    /// Stops the server and returns its data directory, still on disk.
    pub async fn stop_keep_dir(mut self) -> Stopped {
        self.shutdown().await.expect("server ran");
        let placeholder = tempfile::tempdir().expect("temp dir");
        Stopped {
            dir: std::mem::replace(&mut self.dir, placeholder),
        }
    }

    /// Waits for the first frame (bounded).
    pub async fn wait_for_frame(&self) {
        self.wait_for_frame_with(&reqwest::Client::new()).await;
    }

    /// Waits for the first frame using `client` (bounded).
    pub async fn wait_for_frame_with(&self, client: &reqwest::Client) {
        wait_until(Duration::from_secs(30), || async {
            client
                .get(self.url("/snapshot.jpg"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    pub async fn status(&self) -> serde_json::Value {
        self.get_json("/status").await
    }

    /// POSTs one command to `/control` and returns the JSON reply.
    pub async fn command(&self, body: &str) -> serde_json::Value {
        reqwest::Client::new()
            .post(self.url("/control"))
            .body(body.to_string())
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON reply")
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("request")
            .text()
            .await
            .expect("metrics text")
    }

    /// GETs `path` and parses the JSON body.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(self.url(path))
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON body")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The real `lookout` binary, started as a user would, with its log read
/// line by line (it listens on port 0 and says where in the log).
pub struct Binary {
    pub child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Binary {
    /// Starts `lookout` with `args` (it is killed when dropped).
    pub fn spawn(args: &[&str], data_dir: &Path) -> Binary {
        Self::start(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout")),
            args,
            data_dir,
        )
    }

    /// Starts `lookout` with `args` under an open-file limit of `nofile`
    /// (soft and hard, through util-linux's `prlimit`).
    pub fn spawn_with_nofile(nofile: u64, args: &[&str], data_dir: &Path) -> Binary {
        let mut cmd = tokio::process::Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_lookout"));
        Self::start(cmd, args, data_dir)
    }

    /// Starts `lookout` with `args`, its standard error (where a panic is
    /// written) read too: into the [`Log`] of [`Binary::collect`], or
    /// drained by [`Binary::drain`].
    pub fn spawn_with_stderr(args: &[&str], data_dir: &Path) -> Binary {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.stderr(std::process::Stdio::piped());
        Self::start(cmd, args, data_dir)
    }

    /// Starts `lookout` with `args` and the environment variables `env`.
    pub fn spawn_with_env(env: &[(&str, &str)], args: &[&str], data_dir: &Path) -> Binary {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.envs(env.iter().copied());
        Self::start(cmd, args, data_dir)
    }

    fn start(mut cmd: tokio::process::Command, args: &[&str], data_dir: &Path) -> Binary {
        use tokio::io::AsyncBufReadExt;
        let mut child = cmd
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("lookout starts");
        let stdout = child.stdout.take().expect("piped stdout");
        Binary {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        }
    }

    /// Reads the log until `find` picks something out of a line (20 s at most).
    pub async fn wait_for<T>(&mut self, what: &str, mut find: impl FnMut(&str) -> Option<T>) -> T {
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = self.lines.next_line().await.expect("log readable") {
                if let Some(found) = find(&line) {
                    return found;
                }
            }
            panic!("lookout exited before logging {what}");
        })
        .await
        .unwrap_or_else(|_| panic!("no {what} in the log within 20 s"))
    }

    /// The URL after `at <scheme>://` in the serving line, without the slash.
    pub async fn wait_for_url(&mut self, scheme: &str) -> String {
        let marker = format!("at {scheme}://");
        self.wait_for("the serving address", |line| {
            line.find(&marker)
                .map(|at| line[at + 3..].trim().trim_end_matches('/').to_string())
        })
        .await
    }

    /// The `--redirect-http` listener's address (`IP:PORT`), from its log line.
    pub async fn wait_for_redirect_addr(&mut self) -> String {
        self.wait_for("the redirect listener", |line| {
            let i = line.find("redirecting http://")?;
            let rest = &line[i + "redirecting http://".len()..];
            rest.split_whitespace()
                .next()
                .map(|u| u.trim_end_matches('/').to_string())
        })
        .await
    }

    /// Keeps reading the log in the background into a [`Log`] the test can
    /// search later, and hands back the process.
    pub fn collect(mut self) -> (tokio::process::Child, Log) {
        use tokio::io::AsyncBufReadExt;
        let mut lines = self.lines;
        let log = Log::default();
        if let Some(stderr) = self.child.stderr.take() {
            let into = log.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    into.0.lock().expect("log lock").push(line);
                }
            });
        }
        let into = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                into.0.lock().expect("log lock").push(line);
            }
        });
        (self.child, log)
    }

    /// Keeps draining the log in the background (so the process never blocks
    /// on a full pipe) and hands back the process.
    pub fn drain(mut self) -> tokio::process::Child {
        use tokio::io::AsyncBufReadExt;
        if let Some(stderr) = self.child.stderr.take() {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
        let mut lines = self.lines;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child
    }
}

/// The log lines of a [`Binary`] so far (see [`Binary::collect`]).
#[derive(Clone, Default)]
pub struct Log(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Log {
    /// The first line from the `from`-th on that contains `text`.
    pub fn find(&self, from: usize, text: &str) -> Option<String> {
        let lines = self.0.lock().expect("log lock");
        lines.iter().skip(from).find(|l| l.contains(text)).cloned()
    }

    /// How many lines so far contain `text`.
    pub fn count(&self, text: &str) -> usize {
        let lines = self.0.lock().expect("log lock");
        lines.iter().filter(|l| l.contains(text)).count()
    }

    /// How many lines have been read.
    pub fn len(&self) -> usize {
        self.0.lock().expect("log lock").len()
    }

    /// Waits (bounded by `limit`) for a line from the `from`-th on that
    /// contains `text`, and returns it.
    pub async fn wait_for(&self, from: usize, text: &str, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(line) = self.find(from, text) {
                return line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {text:?} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What is left of a stopped server: its data directory.
pub struct Stopped {
    pub dir: tempfile::TempDir,
}

/// Polls `cond` until it holds, panicking after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One MJPEG part as received.
#[derive(Debug)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads multipart/x-mixed-replace parts with boundary `frame`, strictly: every
/// part must start with `--frame\r\n` and carry a Content-Length.
pub struct MjpegClient {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: BytesMut,
    pub content_type: String,
}

impl MjpegClient {
    pub async fn connect(url: &str) -> MjpegClient {
        let resp = reqwest::get(url).await.expect("connect stream");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        MjpegClient {
            body: Box::pin(resp.bytes_stream()),
            buf: BytesMut::new(),
            content_type,
        }
    }

    async fn fill(&mut self, want: usize) -> bool {
        while self.buf.len() < want {
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                _ => return false,
            }
        }
        true
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.split_to(i);
                self.buf.advance(2);
                return Some(String::from_utf8(line.to_vec()).expect("utf8 header"));
            }
            let have = self.buf.len();
            if !self.fill(have + 1).await {
                return None;
            }
        }
    }

    /// The next part, or None when the stream ended.
    pub async fn next_part(&mut self) -> Option<Part> {
        let mut boundary = self.line().await?;
        if boundary.is_empty() {
            boundary = self.line().await?;
        }
        assert_eq!(boundary, "--frame", "part must start with the boundary");
        let mut headers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').expect("header line");
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .expect("Content-Length")
            .1
            .parse()
            .expect("length");
        if !self.fill(len + 2).await {
            return None;
        }
        let body = self.buf.split_to(len).freeze();
        assert_eq!(&self.buf[..2], b"\r\n", "CRLF after the JPEG");
        self.buf.advance(2);
        Some(Part { headers, body })
    }

    /// Whether the boundary of the next part has already arrived (Chrome draws
    /// a part only once it sees the next boundary).
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }
}

/// Decodes a JPEG fully and returns its size; panics when it is not valid.
pub fn decode_jpeg(jpeg: &[u8]) -> (usize, usize) {
    let mut dec = zune_jpeg::JpegDecoder::new(jpeg);
    let pixels = dec.decode().expect("valid JPEG");
    let (w, h) = dec.dimensions().expect("dimensions");
    assert!(!pixels.is_empty());
    (w, h)
}

/// A 160x120 JPEG of a grey gradient, with a 50 px yellow square at `x` when
/// given: frames for a scene with motion exactly where a test wants it.
pub fn square_jpeg(square_x: Option<usize>) -> Vec<u8> {
    let (w, h) = (160u16, 120u16);
    let mut px = vec![0u8; usize::from(w) * usize::from(h) * 3];
    for y in 0..usize::from(h) {
        for x in 0..usize::from(w) {
            let i = (y * usize::from(w) + x) * 3;
            let g = (40 + x / 4 + y / 4) as u8;
            px[i..i + 3].copy_from_slice(&[g, g, g]);
            if let Some(sx) = square_x {
                if (sx..sx + 50).contains(&x) && (35..85).contains(&y) {
                    px[i..i + 3].copy_from_slice(&[250, 250, 40]);
                }
            }
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    out
}

/// Fills `dir` with a 2 s loop of 10 fps frames for a `file:` source: 0.5 s
/// of a square crossing, then 1.5 s still. With a threshold of 5 and a
/// cooldown of 0 or 1 s that is a motion episode (and a clip) every 2 s: the
/// durable writes of motion, many times a minute.
pub fn motion_scene(dir: &Path) {
    let still = square_jpeg(None);
    for i in 0..5 {
        std::fs::write(dir.join(format!("a{i:02}.jpg")), square_jpeg(Some(i * 20)))
            .expect("write frame");
    }
    for i in 0..15 {
        std::fs::write(dir.join(format!("b{i:02}.jpg")), &still).expect("write frame");
    }
}

/// Writes `n` small JPEG frames made by ffmpeg (testsrc2) into `dir` as
/// individual files, and returns their paths.
pub fn ffmpeg_jpegs(dir: &Path, n: usize, size: &str) -> Vec<std::path::PathBuf> {
    let pattern = dir.join("f%03d.jpg");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=10"))
        .args(["-frames:v", &n.to_string(), "-q:v", "5"])
        .arg(&pattern)
        .status()
        .expect("ffmpeg runs (scripts/test installs it)");
    assert!(status.success());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    assert_eq!(files.len(), n);
    files
}

/// POSTs `body` to `path` and returns the status and the JSON reply.
pub async fn post(server: &TestServer, path: &str, body: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(server.url(path))
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON reply"))
}

/// A WebSocket client of `/control`.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the WebSocket at `path` (`/control`, `/cams/NAME/control`).
pub async fn ws_connect(server: &TestServer, path: &str) -> Ws {
    let url = format!("ws://{}{path}", server.addr);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connect")
        .0
}

/// The next JSON text message (pings and pongs skipped; 10 s at most).
pub async fn recv_json(ws: &mut Ws) -> serde_json::Value {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("reply within 10 s")
            .expect("socket open")
            .expect("frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("reply is JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends one command and reads its reply.
pub async fn ask(ws: &mut Ws, text: &str) -> serde_json::Value {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::text(text)).await.expect("send");
    recv_json(ws).await
}

/// GETs `url` and parses the JSON answer (the test fails otherwise): for
/// servers the tests start as a separate process ([`Binary`]).
pub async fn fetch_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON")
}

/// Resident memory of a process in KiB (Linux), if it still runs.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the `lookout` binary to completion with `args`, `stdin` written to
/// it (or no stdin at all), within 20 s.
pub async fn lookout(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("lookout starts");
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("lookout finishes within 20 s")
        .expect("lookout's output")
}

/// A process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}
