//! `soak`: hours of churn against one lookout, watching for leaks and lost work
//! (`scripts/soak` builds and runs it).
//!
//! `soak run` starts lookout with two cameras (the synthetic yard, whose ball
//! makes a motion episode every 24 s, and an `exec:` camera, this same program
//! as `soak source`, that exits every 20 s so the supervisor's restart with
//! backoff runs all the time), uploads to a receiver of its own that fails 30 %
//! of requests and sometimes hangs, and then, all at once:
//! MJPEG viewers that come and go (some slow, some stalled), SSE subscribers
//! that drop and reconnect with `Last-Event-ID` (one stalls until the server
//! drops it), WebSocket and HTTP commands of every kind (bad ones included,
//! each reply checked against the README), config changes, snapshots made,
//! read and deleted, and clips read.
//!
//! Every 10 s it samples the server's RSS, open fds and threads from `/proc`
//! and the data directory's size. At the end it drains the uploads and fails
//! (exit 1, the reasons printed) when:
//! - RSS or fds grew after the warm-up (a least-squares slope over the
//!   samples, see [`RSS_NOISE_MB`] and [`fd_noise`] for the thresholds);
//! - a request failed that should not have, or a reply was not the README's;
//! - an SSE subscriber on `/events` saw a gap (or a repeat) in the event ids
//!   across its reconnects;
//! - an upload the server queued (every motion, manual snapshot and saved
//!   clip event) never arrived, or arrived twice (uploads carry no id, so an
//!   item is known by its camera and its snapshot, clip or time);
//! - a listed snapshot could not be read;
//! - the server did not stop within 30 s of SIGTERM.
//!
//! Everything listens on 127.0.0.1 and writes under `--work-dir` only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Soak test driver for `scripts/soak`.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run lookout under churn and check it.
    Run(RunArgs),
    /// Be an `exec:` camera: MJPEG on stdout for `--seconds`, then exit.
    Source(SourceArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The lookout binary to run.
    #[arg(long)]
    bin: PathBuf,
    /// Minutes of churn (the upload drain and the shutdown come after).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// An empty folder for the data directory, the config and the server log.
    #[arg(long)]
    work_dir: PathBuf,
    /// Seconds between samples of the server's process.
    #[arg(long, default_value_t = 10.0)]
    sample_s: f64,
}

#[derive(Debug, clap::Args)]
struct SourceArgs {
    /// Seconds before exiting (the camera "dies").
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    #[arg(long, default_value_t = 10)]
    fps: u32,
}

fn main() -> ExitCode {
    lookout::install_crypto_provider();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Source(a) => match source(a) {
            Ok(()) => ExitCode::SUCCESS,
            // stdout closed by the server (a restart): nothing to report.
            Err(_) => ExitCode::FAILURE,
        },
        Cmd::Run(a) => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("soak: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run(a)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("soak: FAILED: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

// ---------------------------------------------------------------- the camera

/// The `exec:` camera: a grey 320x240 picture where a dark square crosses
/// for 3 s of every 10 s (a motion episode per crossing), then exit.
fn source(a: SourceArgs) -> anyhow::Result<()> {
    use std::io::Write;
    const W: usize = 320;
    const H: usize = 240;
    let fps = a.fps.clamp(1, 30);
    let encode = |x: Option<usize>| -> anyhow::Result<Vec<u8>> {
        let mut px = vec![150u8; W * H];
        if let Some(x) = x {
            for row in px.chunks_mut(W).skip(90).take(60) {
                for p in row.iter_mut().skip(x).take(60) {
                    *p = 30;
                }
            }
        }
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80).encode(
            &px,
            W as u16,
            H as u16,
            jpeg_encoder::ColorType::Luma,
        )?;
        Ok(out)
    };
    let still = encode(None)?;
    let steps = (3 * fps) as usize;
    let moving: Vec<Vec<u8>> = (0..steps)
        .map(|i| encode(Some(i * (W - 60) / steps.max(1))))
        .collect::<anyhow::Result<_>>()?;
    let period = (10 * fps) as usize;
    let total = (a.seconds * f64::from(fps)) as usize;
    let start = std::time::Instant::now();
    let mut stdout = std::io::stdout().lock();
    for n in 0..total {
        // The crossing starts 4 s into each 10 s.
        let phase = n % period;
        let offset = (4 * fps) as usize;
        let jpeg = match phase.checked_sub(offset) {
            Some(i) if i < steps => &moving[i],
            _ => &still,
        };
        stdout.write_all(jpeg)?;
        stdout.flush()?;
        let due = start + Duration::from_secs_f64((n + 1) as f64 / f64::from(fps));
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    }
    Ok(())
}

// ------------------------------------------------------------- bookkeeping

/// A small xorshift generator: the churn needs variety, not quality, and no
/// new crate.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng((t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
    fn pick<'a, T>(&mut self, of: &'a [T]) -> &'a T {
        &of[self.next() as usize % of.len()]
    }
}

/// Counters and failures shared by every churn task.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    ws_commands: AtomicU64,
    viewers: AtomicU64,
    frames: AtomicU64,
    sse_connects: AtomicU64,
    sse_events: AtomicU64,
    snaps_made: AtomicU64,
    snaps_deleted: AtomicU64,
    snaps_read: AtomicU64,
    clips_read: AtomicU64,
    config_changes: AtomicU64,
    failures: Mutex<Vec<String>>,
    failure_count: AtomicU64,
    /// Upload keys of the events the monitor saw that lookout queues.
    expected: Mutex<HashSet<String>>,
    /// Stored events by kind, as the monitor saw them.
    kinds: Mutex<BTreeMap<String, u64>>,
    /// Snapshots made by commands: (list path, file name).
    made: Mutex<Vec<(String, String)>>,
    started: Option<Instant>,
}

impl Tally {
    fn fail(&self, what: impl Into<String>) {
        let what = what.into();
        let n = self.failure_count.fetch_add(1, Ordering::SeqCst);
        let t = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        if n < 30 {
            eprintln!("soak: FAIL at {t:.0} s: {what}");
        }
        if let Ok(mut f) = self.failures.lock() {
            if f.len() < 30 {
                f.push(format!("{t:.0} s: {what}"));
            }
        }
    }
    fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// How an upload is known: uploads carry no id of their own, and the event
/// JSON in them has no event id, so it is the event's camera and what it
/// names (the snapshot of a motion or a manual snapshot, the clip's file),
/// else its time; not its kind, which a manual snapshot's upload lacks.
fn upload_key(data: &Value) -> String {
    let camera = data.get("camera").and_then(Value::as_str).unwrap_or("-");
    let what = ["snapshot", "url", "name"]
        .iter()
        .find_map(|k| data.get(*k).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| data.get("ts").map_or_else(String::new, Value::to_string));
    format!("{camera}|{what}")
}

/// Whether lookout queues an upload for this stored event (with
/// `--upload-on-manual --upload-clips`): every motion start, every manual
/// snapshot, every clip saved.
fn queues_upload(kind: &str, data: &Value) -> bool {
    match kind {
        "motion" => true,
        "snapshot" => data.get("trigger").and_then(Value::as_str) == Some("manual"),
        "clip" => data.get("ok").and_then(Value::as_bool) == Some(true),
        _ => false,
    }
}

// ------------------------------------------------------------- the receiver

/// The upload receiver: fails 30 % of requests (503, 429, 500, or a hang
/// then 503) and hangs before some successes; in drain mode it takes
/// everything at once.
struct Receiver {
    drain: AtomicBool,
    requests: AtomicU64,
    failed: AtomicU64,
    hung: AtomicU64,
    /// Deliveries answered 2xx, by upload key.
    delivered: Mutex<HashMap<String, u32>>,
    bad: Mutex<Vec<String>>,
    /// Minutes of the run: a hang past lookout's 60 s request timeout only in
    /// runs long enough to afford one.
    long_hangs: bool,
    last_long_hang: Mutex<Option<Instant>>,
}

impl Receiver {
    fn note_bad(&self, what: String) {
        if let Ok(mut b) = self.bad.lock() {
            b.push(what);
        }
    }
}

/// The parts of a `multipart/form-data` body: (field name, headers, data).
fn parts<'a>(body: &'a [u8], boundary: &str) -> Vec<(String, String, &'a [u8])> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut out = Vec::new();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + d.len() <= body.len() {
        if &body[i..i + d.len()] == d {
            starts.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    for w in starts.windows(2) {
        let part = &body[w[0] + d.len()..w[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = part.windows(4).position(|x| x == b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&part[..split]).to_string();
        let name = headers
            .split("name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("")
            .to_string();
        out.push((name, headers, &part[split + 4..]));
    }
    out
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    Tally::add(&r.requests);
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(boundary) = ct.split("boundary=").nth(1).map(|b| b.trim_matches('"')) else {
        r.note_bad(format!("upload without a multipart boundary: {ct:?}"));
        return (StatusCode::BAD_REQUEST, "no boundary").into_response();
    };
    let parts = parts(&body, boundary);
    let event = parts
        .iter()
        .find(|p| p.0 == "event")
        .and_then(|p| serde_json::from_slice::<Value>(p.2).ok());
    let image_ok = parts
        .iter()
        .any(|p| p.0 == "image" && p.1.contains("image/jpeg") && p.2.starts_with(&[0xFF, 0xD8]));
    let Some(event) = event.filter(|_| image_ok) else {
        r.note_bad("upload without an event JSON and a JPEG image".into());
        return (StatusCode::BAD_REQUEST, "bad upload").into_response();
    };
    let kind = event.get("kind").and_then(Value::as_str).unwrap_or("?");
    if kind == "clip" && !parts.iter().any(|p| p.0 == "clip" && !p.2.is_empty()) {
        r.note_bad("clip upload without its clip".into());
    }
    let key = upload_key(&event);
    let mut rng = Rng::new(Tally::get(&r.requests));
    if !r.drain.load(Ordering::SeqCst) {
        if r.long_hangs {
            // At most one hang past lookout's 60 s request timeout every 10
            // minutes: lookout gives up, this answer goes nowhere and the
            // item is retried.
            let due = match r.last_long_hang.lock() {
                Ok(mut last) => {
                    let due = last.is_none_or(|t| t.elapsed() > Duration::from_secs(600));
                    if due && rng.chance(0.05) {
                        *last = Some(Instant::now());
                        true
                    } else {
                        false
                    }
                }
                Err(_) => false,
            };
            if due {
                Tally::add(&r.hung);
                Tally::add(&r.failed);
                sleep(Duration::from_secs(75)).await;
                return (StatusCode::SERVICE_UNAVAILABLE, "hung").into_response();
            }
        }
        let roll = rng.range(0, 100);
        if roll < 30 {
            Tally::add(&r.failed);
            return match roll {
                0..=14 => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
                15..=19 => (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    "slow down",
                )
                    .into_response(),
                20..=24 => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
                _ => {
                    Tally::add(&r.hung);
                    sleep(rng.ms(2000, 8000)).await;
                    (StatusCode::SERVICE_UNAVAILABLE, "hung").into_response()
                }
            };
        }
        if roll < 35 {
            // A slow success: well inside lookout's request timeout, so the
            // answer always reaches it (no retry, no double delivery).
            Tally::add(&r.hung);
            sleep(rng.ms(2000, 8000)).await;
        }
    }
    if let Ok(mut d) = r.delivered.lock() {
        *d.entry(key).or_insert(0) += 1;
    }
    (StatusCode::OK, axum::Json(json!({"ok": true}))).into_response()
}

// --------------------------------------------------------------- the server

/// What the churn tasks need to reach the server.
struct Ctx {
    base: String,
    http: reqwest::Client,
    /// For streams: no overall timeout.
    stream: reqwest::Client,
    tally: Arc<Tally>,
    stop: CancellationToken,
}

/// Camera route prefixes: the root (the first camera) and both by name.
const BASES: [&str; 3] = ["", "/cams/yard", "/cams/gate"];

impl Ctx {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request whose answer must have `status`; returns the body.
    async fn expect(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        status: u16,
    ) -> Option<(HeaderMap, Bytes)> {
        Tally::add(&self.tally.requests);
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.tally.fail(format!("{what}: {}", chain(&e)));
                return None;
            }
        };
        let got = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                self.tally.fail(format!("{what}: body: {}", chain(&e)));
                return None;
            }
        };
        if got != status {
            self.tally.fail(format!(
                "{what}: HTTP {got}, expected {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
            return None;
        }
        Some((headers, body))
    }

    /// [`Ctx::expect`] for a JSON answer.
    async fn expect_json(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        status: u16,
    ) -> Option<Value> {
        let (_, body) = self.expect(req, what, status).await?;
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                self.tally.fail(format!("{what}: not JSON: {e}"));
                None
            }
        }
    }

    /// Sleeps, or returns false once the churn is over.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The server's process, as `/proc` shows it.
#[derive(Clone, Copy)]
struct Sample {
    t_s: f64,
    rss_mb: f64,
    fds: f64,
    threads: f64,
    data_mb: f64,
}

fn proc_sample(pid: u32, data: &Path, t_s: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| -> Option<f64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as f64;
    Some(Sample {
        t_s,
        rss_mb: field("VmRSS:")? / 1024.0,
        fds,
        threads: field("Threads:")?,
        data_mb: dir_bytes(data) as f64 / 1e6,
    })
}

/// Bytes under `dir`; files that vanish while it walks are skipped.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// RSS growth (MB, fitted over the samples after the warm-up) that fails the
/// run. A healthy lookout's RSS moves with what is in flight, not with time:
/// each camera's pre-roll (bounded, full after `clip_pre_s`), the clip
/// writer's queue, frames held by slow viewers, SQLite's page cache (2 MB per
/// connection) and the allocator keeping freed pages of its per-thread arenas
/// (glibc, up to 8 per core) for reuse; all of it is bounded and mostly there
/// by the end of the warm-up. Their swing over a run measures a few MB (the
/// README's bench: 33.6 MB idle, 33.7 MB with 10 viewers), so 16 MB is well
/// above it; a leak of a few hundred bytes per request, or one frame (~30 KB)
/// per viewer or per source restart, passes it within the hour of the
/// README's run. The fitted growth, not end minus start, so one sample taken
/// while a clip is being written does not decide.
const RSS_NOISE_MB: f64 = 16.0;

/// Fd growth (fitted over the samples after the warm-up) that fails the run.
/// The fds a healthy server holds are bounded by what is open at once: one
/// per connection the driver holds (`clients`: each churn task holds at most
/// one connection, or one pooled idle one), plus at most 24 of its own that
/// come and go (the exec camera's three pipes during a restart, the clip
/// being written and its folder, snapshot temp files, SQLite's WAL, the
/// upload in flight and the clip it streams). A quantity that only moves
/// within a band of width `b` fits a slope of at most 1.5 b over the window
/// (a step from the bottom to the top at the middle, the worst case), so a
/// fitted growth above that is not churn but fds that are never given back.
fn fd_noise(clients: usize) -> f64 {
    1.5 * (clients as f64 + 24.0)
}

// ------------------------------------------------------------------- run

async fn run(a: RunArgs) -> anyhow::Result<bool> {
    let work = a.work_dir.clone();
    let data = work.join("data");
    std::fs::create_dir_all(&work).context("work dir")?;
    let me = std::env::current_exe().context("own path")?;

    // The receiver.
    let receiver = Arc::new(Receiver {
        drain: AtomicBool::new(false),
        requests: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        hung: AtomicU64::new(0),
        delivered: Mutex::new(HashMap::new()),
        bad: Mutex::new(Vec::new()),
        long_hangs: a.minutes >= 20.0,
        last_long_hang: Mutex::new(None),
    });
    let rl = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rport = rl.local_addr()?.port();
    let app = axum::Router::new()
        .route("/frames", axum::routing::post(receive))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(receiver.clone());
    tokio::spawn(async move {
        let _ = axum::serve(rl, app).await;
    });

    // The server's configuration: two cameras, small retention so the data
    // directory levels off within the run (and retention runs too).
    let config = work.join("lookout.toml");
    let me_quoted = format!("'{}'", me.display().to_string().replace('\'', r"'\''"));
    let toml = format!(
        "[settings]\nmax_snaps = 300\nmax_clips = 40\nmax_clips_mb = 64\n\n\
         [[camera]]\nname = \"yard\"\nsource = \"synthetic:?size=640x360&fps=10\"\n\n\
         [[camera]]\nname = \"gate\"\nsource = {}\n",
        toml_string(&format!("exec:{me_quoted} source --seconds 20"))
    );
    std::fs::write(&config, toml).context("write config")?;
    let log_path = work.join("lookout.log");
    let mut child = tokio::process::Command::new(&a.bin)
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--upload-url")
        .arg(format!("http://127.0.0.1:{rport}/frames"))
        .args(["--upload-on-manual", "--upload-clips"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        // The log goes to stdout; stderr has only what bypasses it.
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(
            work.join("lookout.stderr"),
        )?))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", a.bin.display()))?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow!("lookout exited at once"))?;
    std::fs::write(work.join("lookout.pid"), pid.to_string())?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut log = tokio::fs::File::create(&log_path).await?;
    let port = timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            log.write_all(line.as_bytes()).await?;
            log.write_all(b"\n").await?;
            if let Some(rest) = line.split(" at http://127.0.0.1:").nth(1) {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return port.parse::<u16>().map_err(anyhow::Error::from);
            }
        }
        bail!("lookout exited before serving (see {})", log_path.display())
    })
    .await
    .map_err(|_| anyhow!("lookout did not say where it serves within 60 s"))??;
    let log_counts = Arc::new(Mutex::new((0u64, 0u64, Vec::<String>::new())));
    let lc = log_counts.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = log.write_all(line.as_bytes()).await;
            let _ = log.write_all(b"\n").await;
            if let Ok(mut c) = lc.lock() {
                if line.contains(" WARN ") {
                    c.0 += 1;
                }
                if line.contains(" ERROR ") || line.contains("panicked") {
                    c.1 += 1;
                    if c.2.len() < 10 {
                        c.2.push(line.clone());
                    }
                }
            }
        }
        let _ = log.flush().await;
    });

    let tally = Arc::new(Tally {
        started: Some(Instant::now()),
        ..Tally::default()
    });
    let http = reqwest::Client::builder()
        .http1_only()
        // Below the server's 10 s idle timeout, so a pooled connection is
        // never reused as the server closes it.
        .pool_idle_timeout(Duration::from_secs(4))
        .timeout(Duration::from_secs(30))
        .build()?;
    let stream = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let stop = CancellationToken::new();
    let ctx = Arc::new(Ctx {
        base: format!("http://127.0.0.1:{port}"),
        http,
        stream,
        tally: tally.clone(),
        stop: stop.clone(),
    });
    println!(
        "soak: lookout pid {pid} at {} ({} min of churn), receiver on port {rport}, log {}",
        ctx.base,
        a.minutes,
        log_path.display()
    );

    // Both cameras running before the churn starts.
    let ready = Instant::now() + Duration::from_secs(90);
    loop {
        let up = match ctx.http.get(ctx.url("/cams")).send().await {
            Ok(r) => r.json::<Value>().await.ok().is_some_and(|v| {
                v["cameras"]
                    .as_array()
                    .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["state"] == "running"))
            }),
            Err(_) => false,
        };
        if up {
            break;
        }
        if Instant::now() > ready {
            bail!(
                "both cameras were not running within 90 s (see {})",
                log_path.display()
            );
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("lookout exited: {status} (see {})", log_path.display());
        }
        sleep(Duration::from_millis(300)).await;
    }

    // The churn.
    let mut tasks = tokio::task::JoinSet::new();
    let mut clients = 0usize;
    let monitor_stop = CancellationToken::new();
    let monitor = tokio::spawn(sse(ctx.clone(), 0, SseRole::Monitor, monitor_stop.clone()));
    tasks.spawn(sse(ctx.clone(), 1, SseRole::Staller, stop.clone()));
    for i in 2..4 {
        tasks.spawn(sse(ctx.clone(), i, SseRole::Churn, stop.clone()));
    }
    tasks.spawn(sse(ctx.clone(), 4, SseRole::Camera("gate"), stop.clone()));
    clients += 5;
    for i in 0..6 {
        tasks.spawn(viewer(ctx.clone(), i));
    }
    clients += 6;
    for i in 0..2 {
        tasks.spawn(ws(ctx.clone(), i));
    }
    clients += 2;
    tasks.spawn(http_commands(ctx.clone(), 0));
    tasks.spawn(http_commands(ctx.clone(), 1));
    tasks.spawn(snapshots(ctx.clone()));
    tasks.spawn(oversized(ctx.clone()));
    clients += 4;

    // Samples, until the churn's time is up.
    let start = Instant::now();
    let churn_for = Duration::from_secs_f64(a.minutes * 60.0);
    let every = Duration::from_secs_f64(a.sample_s.max(1.0));
    let mut samples: Vec<Sample> = Vec::new();
    println!("soak:      t  rss MB  fds threads  data MB  requests  events  uploads sent/failed");
    loop {
        let t = start.elapsed().as_secs_f64();
        let Some(s) = proc_sample(pid, &data, t) else {
            let status = child.try_wait().ok().flatten();
            bail!("lookout is gone ({status:?}; see {})", log_path.display());
        };
        samples.push(s);
        println!(
            "soak: {:>5.0} s {:>7.1} {:>4} {:>7} {:>8.1} {:>9} {:>7} {:>8}/{}",
            t,
            s.rss_mb,
            s.fds,
            s.threads,
            s.data_mb,
            Tally::get(&tally.requests) + Tally::get(&tally.ws_commands),
            Tally::get(&tally.sse_events),
            receiver
                .delivered
                .lock()
                .map_or(0, |d| d.values().sum::<u32>()),
            Tally::get(&receiver.failed),
        );
        if start.elapsed() >= churn_for {
            break;
        }
        let next = start + every.mul_f64(samples.len() as f64);
        sleep(
            next.min(start + churn_for)
                .saturating_duration_since(Instant::now()),
        )
        .await;
    }
    let churn_s = start.elapsed().as_secs_f64();

    // Stop the churn; the monitor stays subscribed through the drain.
    stop.cancel();
    let wind_down = Instant::now() + Duration::from_secs(60);
    while let Ok(Some(r)) = timeout(
        wind_down.saturating_duration_since(Instant::now()),
        tasks.join_next(),
    )
    .await
    {
        if let Err(e) = r {
            tally.fail(format!("a churn task panicked: {e}"));
        }
    }
    if !tasks.is_empty() {
        tally.fail(format!(
            "{} churn task(s) did not stop within 60 s",
            tasks.len()
        ));
        tasks.abort_all();
    }

    // Drain the uploads: the receiver takes everything now, and lookout is
    // told to retry at once (its backoff may be minutes by now).
    receiver.drain.store(true, Ordering::SeqCst);
    let expected: HashSet<String> = tally.expected.lock().map(|e| e.clone()).unwrap_or_default();
    let drain_deadline = Instant::now() + Duration::from_secs(180);
    let mut missing: Vec<String>;
    loop {
        let _ = ctx
            .http
            .post(ctx.url("/control"))
            .body(r#"{"cmd":"flush_uploads"}"#)
            .send()
            .await;
        missing = {
            let d = receiver
                .delivered
                .lock()
                .map(|d| d.clone())
                .unwrap_or_default();
            expected
                .iter()
                .filter(|k| !d.contains_key(*k))
                .cloned()
                .collect()
        };
        if missing.is_empty() || Instant::now() > drain_deadline {
            break;
        }
        sleep(Duration::from_secs(2)).await;
    }
    let status: Value = match ctx.http.get(ctx.url("/status")).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let uploads = status["uploads"].clone();
    missing.sort();
    if !missing.is_empty() {
        tally.fail(format!(
            "{} upload(s) queued by lookout never arrived within 180 s of draining, e.g. {:?}; \
             lookout's uploads: {uploads}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    let delivered = receiver
        .delivered
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    let twice: Vec<(&String, &u32)> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        tally.fail(format!(
            "{} upload(s) delivered more than once, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(5)]
        ));
    }
    let unexpected: Vec<&String> = delivered
        .keys()
        .filter(|k| !expected.contains(*k))
        .collect();
    if !missing.is_empty() {
        println!(
            "soak: e.g. missing {:?}; delivered but not seen as queued: {:?}",
            &missing[..missing.len().min(3)],
            &unexpected[..unexpected.len().min(3)]
        );
    }
    for bad in receiver
        .bad
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default()
        .iter()
        .take(5)
    {
        tally.fail(format!("receiver: {bad}"));
    }
    for k in ["failed", "dropped"] {
        if uploads[k].as_u64().unwrap_or(0) > 0 {
            tally.fail(format!("lookout gave up on uploads ({k}): {uploads}"));
        }
    }

    let snaps_listed = ctx_snap_count(&ctx).await;
    monitor_stop.cancel();
    if timeout(Duration::from_secs(10), monitor).await.is_err() {
        tally.fail("the SSE monitor did not stop within 10 s");
    }

    // A clean stop.
    stop_server(&mut child, pid, &tally).await;
    let (warns, errors, error_lines) = log_counts.lock().map(|c| c.clone()).unwrap_or_default();

    // Growth after the warm-up: a fifth of the run, at least 30 s (the
    // pre-roll fills, SQLite's cache warms, the thread pool grows to what the
    // churn needs), at most 5 minutes.
    let warm = (churn_s / 5.0).clamp(30.0, 300.0);
    let after: Vec<Sample> = samples.iter().copied().filter(|s| s.t_s >= warm).collect();
    let window_min = match (after.first(), after.last()) {
        (Some(f), Some(l)) => (l.t_s - f.t_s) / 60.0,
        _ => 0.0,
    };
    let fit = |f: fn(&Sample) -> f64| {
        slope(
            &after
                .iter()
                .map(|s| (s.t_s / 60.0, f(s)))
                .collect::<Vec<_>>(),
        )
    };
    let rss_slope = fit(|s| s.rss_mb);
    let fd_slope = fit(|s| s.fds);
    let thr_slope = fit(|s| s.threads);
    let data_slope = fit(|s| s.data_mb);
    if after.len() < 3 {
        tally.fail(format!(
            "only {} sample(s) after the {warm:.0} s warm-up: run longer",
            after.len()
        ));
    }
    if rss_slope * window_min > RSS_NOISE_MB {
        tally.fail(format!(
            "RSS grows: {rss_slope:.2} MB/min fitted after the warm-up, {:.1} MB over {window_min:.1} min (limit {RSS_NOISE_MB} MB)",
            rss_slope * window_min
        ));
    }
    if fd_slope * window_min > fd_noise(clients) {
        tally.fail(format!(
            "open fds grow: {fd_slope:.2}/min fitted after the warm-up, {:.0} over {window_min:.1} min (limit {:.0})",
            fd_slope * window_min,
            fd_noise(clients)
        ));
    }

    // The summary.
    let (first, last) = (samples.first().copied(), samples.last().copied());
    let kinds = tally.kinds.lock().map(|k| k.clone()).unwrap_or_default();
    println!(
        "soak: ---- summary ({:.1} min of churn, warm-up {warm:.0} s, {} samples after it)",
        churn_s / 60.0,
        after.len()
    );
    if let (Some(f), Some(l)) = (first, last) {
        println!(
            "soak: RSS {:.1} -> {:.1} MB, fitted {rss_slope:+.3} MB/min after warm-up (limit {:.1} MB over the window)",
            f.rss_mb, l.rss_mb, RSS_NOISE_MB
        );
        println!(
            "soak: fds {} -> {}, fitted {fd_slope:+.2}/min (limit {:.0} over the window); threads {} -> {} ({thr_slope:+.2}/min)",
            f.fds, l.fds, fd_noise(clients), f.threads, l.threads
        );
        println!(
            "soak: data dir {:.1} -> {:.1} MB ({data_slope:+.2} MB/min)",
            f.data_mb, l.data_mb
        );
    }
    println!(
        "soak: requests {} HTTP + {} WebSocket commands; {} viewers ({} frames); {} SSE connections",
        Tally::get(&tally.requests),
        Tally::get(&tally.ws_commands),
        Tally::get(&tally.viewers),
        Tally::get(&tally.frames),
        Tally::get(&tally.sse_connects),
    );
    println!(
        "soak: events {} stored ({}), {} received by all subscribers",
        kinds.values().sum::<u64>(),
        kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        Tally::get(&tally.sse_events),
    );
    println!(
        "soak: uploads {} expected, {} delivered, {} missing, {} twice; receiver {} requests, {} failed on purpose ({} hung); lookout: {}",
        expected.len(),
        delivered.len(),
        missing.len(),
        twice.len(),
        Tally::get(&receiver.requests),
        Tally::get(&receiver.failed),
        Tally::get(&receiver.hung),
        uploads
    );
    println!(
        "soak: snapshots {} made by commands, {} read, {} deleted, {snaps_listed} listed at the end; {} clips read; {} config changes",
        Tally::get(&tally.snaps_made),
        Tally::get(&tally.snaps_read),
        Tally::get(&tally.snaps_deleted),
        Tally::get(&tally.clips_read),
        Tally::get(&tally.config_changes),
    );
    println!(
        "soak: server log {warns} warnings, {errors} errors ({})",
        log_path.display()
    );
    for l in &error_lines {
        println!("soak:   {l}");
    }
    let failures = tally.failures.lock().map(|f| f.clone()).unwrap_or_default();
    if failures.is_empty() {
        println!("soak: PASS");
        Ok(true)
    } else {
        println!(
            "soak: FAILED ({} failure(s)):",
            Tally::get(&tally.failure_count)
        );
        for f in &failures {
            println!("soak:   {f}");
        }
        Ok(false)
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

async fn ctx_snap_count(ctx: &Ctx) -> usize {
    let mut n = 0;
    for base in ["", "/cams/gate"] {
        if let Ok(r) = ctx
            .http
            .get(ctx.url(&format!("{base}/snaps?limit=1000")))
            .send()
            .await
        {
            if let Ok(v) = r.json::<Value>().await {
                n += v["snaps"].as_array().map_or(0, Vec::len);
            }
        }
    }
    n
}

/// SIGTERM, then a deadline for the exit.
async fn stop_server(child: &mut tokio::process::Child, pid: u32, tally: &Tally) {
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else {
        return;
    };
    let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    match timeout(Duration::from_secs(30), child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tally.fail(format!("lookout exited with {status} after SIGTERM")),
        Ok(Err(e)) => tally.fail(format!("waiting for lookout: {e}")),
        Err(_) => {
            tally.fail("lookout did not stop within 30 s of SIGTERM");
            let _ = child.kill().await;
        }
    }
}

// ------------------------------------------------------------ churn: SSE

#[derive(Clone, Copy, PartialEq)]
enum SseRole {
    /// Stays subscribed (reconnecting only when dropped); records the events
    /// that queue uploads.
    Monitor,
    /// Drops and reconnects every few seconds.
    Churn,
    /// Now and then stops reading until the server drops it as too slow.
    Staller,
    /// One camera's stream: its ids only increase (other cameras' events are
    /// not in it, so they have gaps).
    Camera(&'static str),
}

async fn sse(ctx: Arc<Ctx>, i: u64, role: SseRole, done: CancellationToken) {
    let mut rng = Rng::new(100 + i);
    let path = match role {
        SseRole::Camera(name) => format!("/cams/{name}/events"),
        _ => "/events".to_string(),
    };
    let mut last: Option<i64> = None;
    // The monitor outlives the churn (through the upload drain), so it has
    // its own token.
    let monitor = role == SseRole::Monitor;
    while !done.is_cancelled() {
        let mut req = ctx.stream.get(ctx.url(&path));
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        Tally::add(&ctx.tally.requests);
        Tally::add(&ctx.tally.sse_connects);
        let resp = match req.send().await {
            Ok(r) if r.status() == 200 => r,
            Ok(r) => {
                ctx.tally.fail(format!("GET {path}: HTTP {}", r.status()));
                if !ctx.pause(Duration::from_secs(1)).await && !monitor {
                    return;
                }
                continue;
            }
            Err(e) => {
                ctx.tally.fail(format!("GET {path}: {}", chain(&e)));
                sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let stay = match role {
            SseRole::Monitor => Duration::from_secs(86_400 * 365),
            _ => rng.ms(2_000, 20_000),
        };
        let mut stall = role == SseRole::Staller && rng.chance(0.3);
        let until = Instant::now() + stay;
        let mut body = resp.bytes_stream();
        let mut pending = Vec::<u8>::new();
        let (mut name, mut id, mut data) = (String::new(), None::<i64>, String::new());
        let mut read = 0usize;
        loop {
            if stall && read > 0 {
                stall = false;
                // Stop reading: the server's buffer for this subscriber fills
                // (motion levels come twice a second per camera) and it is
                // dropped; what was sent before is still read below.
                let quiet = rng.ms(30_000, 90_000);
                tokio::select! {
                    _ = sleep(quiet) => {}
                    _ = done.cancelled() => return,
                }
            }
            let chunk = tokio::select! {
                c = body.next() => c,
                _ = sleep(until.saturating_duration_since(Instant::now())) => break,
                _ = done.cancelled() => if monitor { None } else { return },
            };
            let chunk = match chunk {
                Some(Ok(c)) => c,
                // Dropped by the server (too slow) or at shutdown.
                Some(Err(_)) | None => break,
            };
            read += 1;
            pending.extend_from_slice(&chunk);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\r', '\n']);
                if line.is_empty() {
                    if let Some(n) = id.take() {
                        Tally::add(&ctx.tally.sse_events);
                        match (role, last) {
                            (SseRole::Camera(_), Some(l)) if n <= l => ctx
                                .tally
                                .fail(format!("{path}: id {n} after {l} (ids must increase)")),
                            (SseRole::Camera(_), _) => {}
                            (_, Some(l)) if n == l + 1 => {}
                            (_, Some(l)) if n <= l => {
                                ctx.tally.fail(format!("/events: id {n} again after {l}"))
                            }
                            (_, Some(l)) => ctx.tally.fail(format!(
                                "/events: ids {}..={} missing (got {n} after {l}, across a reconnect with Last-Event-ID)",
                                l + 1,
                                n - 1
                            )),
                            (_, None) => {}
                        }
                        last = Some(last.map_or(n, |l| l.max(n)));
                        if monitor {
                            let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                            if let Ok(mut k) = ctx.tally.kinds.lock() {
                                *k.entry(name.clone()).or_insert(0) += 1;
                            }
                            if queues_upload(&name, &v) {
                                if let Ok(mut e) = ctx.tally.expected.lock() {
                                    e.insert(upload_key(&v));
                                }
                            }
                        }
                    }
                    name.clear();
                    data.clear();
                } else if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
        }
        if monitor && done.is_cancelled() {
            return;
        }
        if !monitor && !ctx.pause(rng.ms(0, 3_000)).await {
            return;
        }
    }
}

// ---------------------------------------------------------- churn: viewers

async fn viewer(ctx: Arc<Ctx>, i: u64) {
    let mut rng = Rng::new(200 + i);
    while !ctx.stop.is_cancelled() {
        let base = *rng.pick(&BASES);
        let fps = if rng.chance(0.3) { "?fps=2" } else { "" };
        let path = format!("{base}/stream.jpg{fps}");
        // 0: watches, 1: reads slowly, 2: stops reading (a phone gone to sleep).
        let mode = i % 3;
        Tally::add(&ctx.tally.requests);
        Tally::add(&ctx.tally.viewers);
        let resp = match ctx.stream.get(ctx.url(&path)).send().await {
            Ok(r) => r,
            Err(e) => {
                ctx.tally.fail(format!("GET {path}: {}", chain(&e)));
                if !ctx.pause(Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if resp.status() != 200 || !ct.starts_with("multipart/x-mixed-replace") {
            ctx.tally
                .fail(format!("GET {path}: HTTP {} {ct}", resp.status()));
            if !ctx.pause(Duration::from_secs(1)).await {
                return;
            }
            continue;
        }
        let mut body = resp.bytes_stream();
        let stay = match mode {
            0 => rng.ms(1_000, 10_000),
            1 => rng.ms(5_000, 15_000),
            _ => rng.ms(10_000, 40_000),
        };
        let until = Instant::now() + stay;
        // A first frame must come within 20 s even from the camera that is
        // restarting (it restarts within a second; the last frame stays on
        // show meanwhile).
        let first_by = Instant::now() + Duration::from_secs(20);
        let mut frames = 0u64;
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let wait_until = if frames == 0 {
                first_by.max(until)
            } else {
                until
            };
            let chunk = tokio::select! {
                c = body.next() => c,
                _ = sleep(wait_until.saturating_duration_since(Instant::now())) => break,
                _ = ctx.stop.cancelled() => break,
            };
            match chunk {
                Some(Ok(c)) => {
                    tail.extend_from_slice(&c);
                    let n = tail.windows(8).filter(|w| *w == b"--frame\r").count() as u64;
                    frames += n;
                    // Keep 7 bytes: a boundary cut by the chunk's end, never a whole one.
                    let keep = tail.len().saturating_sub(7);
                    tail.drain(..keep);
                }
                Some(Err(e)) => {
                    ctx.tally
                        .fail(format!("{path}: stream broke: {}", chain(&e)));
                    break;
                }
                None => {
                    ctx.tally
                        .fail(format!("{path}: stream ended by the server"));
                    break;
                }
            }
            if frames > 0 && mode == 1 {
                sleep(rng.ms(300, 900)).await;
            }
            if frames > 0 && mode == 2 {
                // Holds the connection without reading until it leaves.
                tokio::select! {
                    _ = sleep(until.saturating_duration_since(Instant::now())) => {}
                    _ = ctx.stop.cancelled() => {}
                }
                break;
            }
        }
        if frames == 0 && !ctx.stop.is_cancelled() {
            ctx.tally.fail(format!("{path}: no frame within 20 s"));
        }
        ctx.tally.frames.fetch_add(frames, Ordering::Relaxed);
        drop(body);
        if !ctx.pause(rng.ms(100, 2_000)).await {
            return;
        }
    }
}

// ---------------------------------------------------- churn: WebSocket

/// One command, and a check of its reply (None: fine).
type Check = Box<dyn Fn(&Value) -> Option<String> + Send>;

fn ok_true(v: &Value) -> Option<String> {
    (v["ok"] != true).then(|| format!("expected ok: true, got {v}"))
}

fn error_is(want: &'static str) -> Check {
    Box::new(move |v: &Value| {
        (v["error"] != want).then(|| format!("expected {{\"error\": {want:?}}}, got {v}"))
    })
}

/// A command for `/control` (WebSocket or POST), its expected HTTP status and
/// reply check. `made` receives the snapshot a `snapshot_now` saved.
fn command(rng: &mut Rng, camera: &str) -> (String, u16, Check) {
    let cam = camera.to_string();
    match rng.range(0, 12) {
        0 => ("{not json".into(), 400, error_is("bad json")),
        1 => (
            json!({"cmd": "ping"}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || !v["pong"].is_number()).then(|| format!("ping: {v}"))
            }) as Check,
        ),
        2 => (
            json!({"cmd": "status"}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || !v["status"]["frames"].is_number())
                    .then(|| format!("status: {v}"))
            }) as Check,
        ),
        3 => (
            json!({"cmd": "reset"}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || v["counters"] != "reset").then(|| format!("reset: {v}"))
            }) as Check,
        ),
        4 => {
            let t = rng.range(10, 17);
            (
                json!({"cmd": "set", "threshold": t}).to_string(),
                200,
                Box::new(move |v: &Value| {
                    (v["ok"] != true || v["threshold"] != t)
                        .then(|| format!("set threshold {t}: {v}"))
                }) as Check,
            )
        }
        5 => (
            json!({"cmd": "set", "threshold": 1000}).to_string(),
            400,
            Box::new(|v: &Value| {
                (v["ok"] != false || v["error"] != "threshold out of range")
                    .then(|| format!("set 1000: {v}"))
            }) as Check,
        ),
        6 => (
            json!({"cmd": "set", "bogus": 1}).to_string(),
            400,
            Box::new(|v: &Value| {
                (v["ok"] != false || v["error"] != "unknown setting: bogus")
                    .then(|| format!("set bogus: {v}"))
            }) as Check,
        ),
        7 => (
            json!({"cmd": "snapshot_now", "camera": cam}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || !v["url"].is_string()).then(|| format!("snapshot_now: {v}"))
            }) as Check,
        ),
        8 => (
            json!({"cmd": "flush_uploads"}).to_string(),
            200,
            Box::new(|v: &Value| {
                (v["ok"] != true || !v["uploads"].is_object())
                    .then(|| format!("flush_uploads: {v}"))
            }) as Check,
        ),
        9 => (
            json!({"cmd": "dance"}).to_string(),
            400,
            error_is("unknown command"),
        ),
        10 => (
            json!({"cmd": "ping", "camera": "nope"}).to_string(),
            404,
            error_is("unknown camera"),
        ),
        _ => (
            json!({"cmd": "status", "camera": cam}).to_string(),
            200,
            Box::new(ok_true) as Check,
        ),
    }
}

/// Remembers the snapshot a `snapshot_now` reply names, for the snapshot task.
fn note_snapshot(ctx: &Ctx, camera: &str, v: &Value) {
    if let Some(url) = v["url"].as_str() {
        if let Some(name) = url.rsplit('/').next() {
            Tally::add(&ctx.tally.snaps_made);
            let list = if camera == "yard" {
                String::new()
            } else {
                format!("/cams/{camera}")
            };
            if let Ok(mut m) = ctx.tally.made.lock() {
                m.push((list, name.to_string()));
            }
        }
    }
}

async fn ws(ctx: Arc<Ctx>, i: u64) {
    let mut rng = Rng::new(300 + i);
    let ws_base = ctx.base.replacen("http://", "ws://", 1);
    while !ctx.stop.is_cancelled() {
        let base = *rng.pick(&BASES);
        let url = format!("{ws_base}{base}/control");
        Tally::add(&ctx.tally.requests);
        let mut sock = match timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        {
            Ok(Ok((s, _))) => s,
            Ok(Err(e)) => {
                ctx.tally
                    .fail(format!("WebSocket {base}/control: {}", chain(&e)));
                if !ctx.pause(Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                ctx.tally.fail(format!(
                    "WebSocket {base}/control: no handshake within 20 s"
                ));
                continue;
            }
        };
        let camera = if base == "/cams/gate" { "gate" } else { "yard" };
        let n = rng.range(5, 60);
        for k in 0..n {
            let (mut text, _, check) = command(&mut rng, camera);
            // An id is echoed; the bad-JSON reply has none to echo.
            let id = k as i64;
            let with_id = text.starts_with('{')
                && text.ends_with('}')
                && text.len() > 2
                && text != "{not json";
            if with_id {
                text = format!("{},\"id\":{id}}}", &text[..text.len() - 1]);
            }
            let msg = if rng.chance(0.2) {
                Message::Binary(Bytes::from(text.clone().into_bytes()))
            } else {
                Message::Text(text.clone().into())
            };
            Tally::add(&ctx.tally.ws_commands);
            if let Err(e) = sock.send(msg).await {
                ctx.tally.fail(format!("WebSocket send {text}: {e}"));
                break;
            }
            let reply = timeout(Duration::from_secs(30), async {
                loop {
                    match sock.next().await {
                        Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
                        Some(Ok(Message::Binary(b))) => {
                            return Ok(String::from_utf8_lossy(&b).into_owned())
                        }
                        Some(Ok(Message::Close(c))) => return Err(format!("closed: {c:?}")),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("closed".into()),
                    }
                }
            })
            .await;
            let reply = match reply {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    ctx.tally.fail(format!(
                        "WebSocket {base}/control after {text}: {e} (the socket must stay open)"
                    ));
                    break;
                }
                Err(_) => {
                    ctx.tally.fail(format!(
                        "WebSocket {base}/control: no reply to {text} within 30 s"
                    ));
                    break;
                }
            };
            let v: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
            if let Some(why) = check(&v) {
                ctx.tally
                    .fail(format!("WebSocket {base}/control {text}: {why}"));
            }
            if with_id && v["id"] != id {
                ctx.tally
                    .fail(format!("WebSocket {text}: id not echoed: {v}"));
            }
            if text.contains("snapshot_now") {
                note_snapshot(&ctx, camera, &v);
            }
            if !ctx.pause(rng.ms(20, 600)).await {
                break;
            }
        }
        if rng.chance(0.7) {
            let _ = timeout(Duration::from_secs(5), sock.close(None)).await;
        }
        drop(sock);
        if !ctx.pause(rng.ms(100, 1_500)).await {
            return;
        }
    }
}

/// Now and then a WebSocket message over 64 KiB: the socket must close with
/// 1009, and the server go on.
async fn oversized(ctx: Arc<Ctx>) {
    let mut rng = Rng::new(400);
    let url = format!("{}/control", ctx.base.replacen("http://", "ws://", 1));
    while ctx.pause(rng.ms(10_000, 30_000)).await {
        Tally::add(&ctx.tally.requests);
        let Ok(Ok((mut sock, _))) = timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        else {
            ctx.tally
                .fail("WebSocket /control: cannot connect for the oversized message");
            continue;
        };
        let big = format!("{{\"cmd\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
        let _ = sock.send(Message::Text(big.into())).await;
        let code = timeout(Duration::from_secs(20), async {
            loop {
                match sock.next().await {
                    Some(Ok(Message::Close(Some(f)))) => return Some(u16::from(f.code)),
                    Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await;
        if code != Ok(Some(1009)) {
            ctx.tally.fail(format!(
                "a 70 KiB WebSocket message: expected close 1009, got {code:?}"
            ));
        }
    }
}

// ------------------------------------------------------- churn: HTTP

async fn http_commands(ctx: Arc<Ctx>, i: u64) {
    let mut rng = Rng::new(500 + i);
    while ctx.pause(rng.ms(50, 700)).await {
        let base = *rng.pick(&BASES);
        let camera = if base == "/cams/gate" { "gate" } else { "yard" };
        match rng.range(0, 10) {
            0..=2 => {
                let (body, status, check) = command(&mut rng, camera);
                let what = format!("POST {base}/control {body}");
                let req = ctx
                    .http
                    .post(ctx.url(&format!("{base}/control")))
                    .body(body.clone());
                if let Some(v) = ctx.expect_json(req, &what, status).await {
                    if let Some(why) = check(&v) {
                        ctx.tally.fail(format!("{what}: {why}"));
                    }
                    if body.contains("snapshot_now") {
                        note_snapshot(&ctx, camera, &v);
                    }
                }
            }
            3 | 4 => config_change(&ctx, &mut rng, base).await,
            _ => {
                let (path, status) = *rng.pick(&[
                    ("/status", 200),
                    ("/cams", 200),
                    ("/healthz", 200),
                    ("/metrics", 200),
                    ("/api/events?limit=20", 200),
                    ("/snaps?limit=10", 200),
                    ("/clips?limit=10", 200),
                    ("/config", 200),
                    ("/snapshot.jpg", 200),
                    ("/nope", 404),
                    ("/snaps/..%2Flookout.db", 400),
                ]);
                // `/healthz`, `/metrics` and `/cams` are the server's, at the root only.
                let root_only = matches!(path, "/healthz" | "/metrics" | "/cams");
                let path = if path == "/nope" && base.is_empty() {
                    "/cams/nope/status".to_string()
                } else if root_only {
                    path.to_string()
                } else {
                    format!("{base}{path}")
                };
                let path = if path.starts_with("/cams/yard/nope") {
                    "/nope".to_string()
                } else {
                    path
                };
                let what = format!("GET {path}");
                if let Some((h, body)) = ctx
                    .expect(ctx.http.get(ctx.url(&path)), &what, status)
                    .await
                {
                    let ct = h
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if path.ends_with("snapshot.jpg")
                        && (!ct.starts_with("image/jpeg") || !body.starts_with(&[0xFF, 0xD8]))
                    {
                        ctx.tally.fail(format!("{what}: not a JPEG ({ct})"));
                    }
                    if status == 404
                        && serde_json::from_slice::<Value>(&body)
                            .map_or(true, |v| v["error"] != "not found")
                    {
                        ctx.tally
                            .fail(format!("{what}: 404 without {{\"error\": \"not found\"}}"));
                    }
                }
            }
        }
    }
}

/// A good or bad partial config; a good one must be applied, a bad one
/// refused with the README's message and nothing changed.
async fn config_change(ctx: &Ctx, rng: &mut Rng, base: &str) {
    let t = rng.range(10, 17);
    let (body, status, want): (String, u16, &str) = match rng.range(0, 8) {
        0 | 1 => (json!({"threshold": t}).to_string(), 200, ""),
        2 => (json!({"cooldown_s": rng.range(3, 7)}).to_string(), 200, ""),
        3 => (
            json!({"threshold": "x"}).to_string(),
            400,
            "threshold must be an integer",
        ),
        4 => (
            json!({"threshold": 1000}).to_string(),
            400,
            "threshold out of range",
        ),
        5 => (
            json!({"bogus": 1}).to_string(),
            400,
            "unknown setting: bogus",
        ),
        6 => (
            json!({"trigger_count": 1}).to_string(),
            400,
            "trigger_count is read-only",
        ),
        _ => ("{threshold".to_string(), 400, "bad json"),
    };
    let what = format!("POST {base}/config {body}");
    let req = ctx
        .http
        .post(ctx.url(&format!("{base}/config")))
        .body(body.clone());
    let Some(v) = ctx.expect_json(req, &what, status).await else {
        return;
    };
    if status == 200 {
        Tally::add(&ctx.tally.config_changes);
        if v["ok"] != true {
            ctx.tally.fail(format!("{what}: {v}"));
        }
    } else if v["error"] != want {
        ctx.tally
            .fail(format!("{what}: expected {{\"error\": {want:?}}}, got {v}"));
    }
}

// ---------------------------------------------------- churn: snapshots

/// Lists both cameras' snapshots, reads some (and their thumbnails), deletes
/// some, and reads a clip and its index.
async fn snapshots(ctx: Arc<Ctx>) {
    let mut rng = Rng::new(600);
    while ctx.pause(rng.ms(500, 2_500)).await {
        let list = *rng.pick(&["", "/cams/gate"]);
        let what = format!("GET {list}/snaps");
        let Some(v) = ctx
            .expect_json(
                ctx.http.get(ctx.url(&format!("{list}/snaps?limit=30"))),
                &what,
                200,
            )
            .await
        else {
            continue;
        };
        // Each entry as listed: name, url, thumbnail url.
        let entries: Vec<[String; 3]> = v["snaps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| {
                        let f = |k: &str| s[k].as_str().map(str::to_string);
                        Some([f("name")?, f("url")?, f("thumb")?])
                    })
                    .collect()
            })
            .unwrap_or_default();
        let names: Vec<String> = entries.iter().map(|e| e[0].clone()).collect();
        for _ in 0..entries.len().min(4) {
            let [name, url, thumb] = rng.pick(&entries).clone();
            let path = if rng.chance(0.3) { thumb } else { url };
            Tally::add(&ctx.tally.requests);
            let got = match ctx.http.get(ctx.url(&path)).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body = r.bytes().await.unwrap_or_default();
                    (status, body)
                }
                Err(e) => {
                    ctx.tally.fail(format!("GET {path}: {}", chain(&e)));
                    continue;
                }
            };
            if got.0 == 200 && got.1.starts_with(&[0xFF, 0xD8]) {
                Tally::add(&ctx.tally.snaps_read);
                continue;
            }
            // Retention may have removed it since the listing: a failure only
            // if it is still listed.
            let still = ctx
                .http
                .get(ctx.url(&format!("{list}/snaps?limit=1000")))
                .send()
                .await
                .ok();
            let listed = match still {
                Some(r) => r.json::<Value>().await.ok().is_some_and(|v| {
                    v["snaps"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|s| s["name"] == name.as_str()))
                }),
                None => true,
            };
            if listed {
                ctx.tally.fail(format!(
                    "listed snapshot {path} cannot be read: HTTP {}",
                    got.0
                ));
            }
        }
        // Delete some of what the commands made, and now and then a motion
        // snapshot; a deleted one must be gone.
        let made: Vec<(String, String)> = ctx
            .tally
            .made
            .lock()
            .map(|mut m| {
                let k = m.len().min(rng.range(0, 4) as usize);
                m.drain(..k).collect()
            })
            .unwrap_or_default();
        let mut doomed = made;
        if rng.chance(0.2) && !names.is_empty() {
            doomed.push((list.to_string(), rng.pick(&names).clone()));
        }
        for (l, name) in doomed {
            let path = format!("{l}/snaps/{name}");
            Tally::add(&ctx.tally.requests);
            match ctx.http.delete(ctx.url(&path)).send().await {
                Ok(r) if r.status().is_success() => {
                    Tally::add(&ctx.tally.snaps_deleted);
                    let _ = ctx
                        .expect(
                            ctx.http.get(ctx.url(&path)),
                            &format!("GET {path} after DELETE"),
                            404,
                        )
                        .await;
                }
                // Retention got there first.
                Ok(r) if r.status() == 404 => {}
                Ok(r) => ctx
                    .tally
                    .fail(format!("DELETE {path}: HTTP {}", r.status())),
                Err(e) => ctx.tally.fail(format!("DELETE {path}: {}", chain(&e))),
            }
        }
        if rng.chance(0.3) {
            clip(&ctx, &mut rng).await;
        }
    }
}

/// Reads one listed clip's index and its first bytes by `Range`.
async fn clip(ctx: &Ctx, rng: &mut Rng) {
    let list = *rng.pick(&["", "/cams/gate"]);
    let Some(v) = ctx
        .expect_json(
            ctx.http.get(ctx.url(&format!("{list}/clips?limit=5"))),
            "GET /clips",
            200,
        )
        .await
    else {
        return;
    };
    let Some(name) = v["clips"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|c| c["name"].as_str())
    else {
        return;
    };
    let path = format!("{list}/clips/{name}");
    Tally::add(&ctx.tally.requests);
    let resp = ctx
        .http
        .get(ctx.url(&path))
        .header("range", "bytes=0-99")
        .send()
        .await;
    match resp {
        Ok(r) if r.status() == 206 => {
            Tally::add(&ctx.tally.clips_read);
            let _ = r.bytes().await;
        }
        // Retention removes the oldest clips; the newest can only be gone if
        // retention outran us by a whole clip.
        Ok(r) if r.status() == 404 => {}
        Ok(r) => ctx
            .tally
            .fail(format!("GET {path} with Range: HTTP {}", r.status())),
        Err(e) => ctx.tally.fail(format!("GET {path}: {}", chain(&e))),
    }
    Tally::add(&ctx.tally.requests);
    match ctx.http.get(ctx.url(&format!("{path}/index"))).send().await {
        Ok(r) if r.status() == 200 || r.status() == 404 => {
            let _ = r.bytes().await;
        }
        Ok(r) => ctx
            .tally
            .fail(format!("GET {path}/index: HTTP {}", r.status())),
        Err(e) => ctx.tally.fail(format!("GET {path}/index: {}", chain(&e))),
    }
}
