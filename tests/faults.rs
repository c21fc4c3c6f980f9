//! Faults a home server meets over months, each against the real binary:
//! a camera that sends garbage, a damaged database, a data directory lookout
//! cannot write in. (The wall clock going back is tested beside the code that
//! names snapshots and numbers events: src/snaps.rs, src/store.rs.)

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{decode_jpeg, fetch_json, wait_until, Binary};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A deadline for each state waited for; generous for a slow, busy machine.
const WAIT: Duration = Duration::from_secs(60);

/// A small real JPEG of `w` x `h` (a grey gradient).
fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut px = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    for y in 0..h {
        for x in 0..w {
            let g = (40 + x / 2 + y / 2) as u8;
            px.extend_from_slice(&[g, g, g]);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    out
}

/// One multipart part around `body`.
fn part(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    out
}

/// Deterministic noise (xorshift64), so a failure can be replayed.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A camera on loopback that answers every request with an MJPEG stream
/// whose bytes the test writes, garbage included.
struct Camera {
    url: String,
    conns: mpsc::Receiver<TcpStream>,
    current: Option<TcpStream>,
}

impl Camera {
    async fn start() -> Camera {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/stream", listener.local_addr().expect("addr"));
        let (tx, conns) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                // The request head, then the stream's head; the body is the test's.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = "HTTP/1.1 200 OK\r\n\
                    Content-Type: multipart/x-mixed-replace; boundary=frame\r\n\
                    Connection: close\r\n\r\n";
                if conn.write_all(answer.as_bytes()).await.is_ok() && tx.send(conn).await.is_err() {
                    return;
                }
            }
        });
        Camera {
            url,
            conns,
            current: None,
        }
    }

    /// Writes `data` to lookout's connection (waiting for lookout to
    /// connect, or to reconnect after it gave up on a stream).
    async fn send(&mut self, data: &[u8]) {
        loop {
            if self.current.is_none() {
                let conn = tokio::time::timeout(WAIT, self.conns.recv())
                    .await
                    .expect("lookout connects to the camera")
                    .expect("camera listening");
                self.current = Some(conn);
            }
            let Some(conn) = self.current.as_mut() else {
                continue;
            };
            match conn.write_all(data).await {
                Ok(()) => return,
                Err(_) => self.current = None,
            }
        }
    }
}

/// The peak resident memory of process `pid` in KiB (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

async fn bad_frames(client: &reqwest::Client, base: &str) -> u64 {
    fetch_json(client, &format!("{base}/status")).await["source"]["bad_frames"]
        .as_u64()
        .expect("bad_frames on /status")
}

/// Sends good `w` x `h` frames until lookout shows one: `/status` reports
/// the size and `/snapshot.jpg` decodes to it.
async fn recovers_with(cam: &mut Camera, client: &reqwest::Client, base: &str, w: u16, h: u16) {
    let good = part(&jpeg(w, h));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        cam.send(&good).await;
        let st = fetch_json(client, &format!("{base}/status")).await;
        if st["source"]["width"] == w && st["source"]["height"] == h {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {w}x{h} frame shown: {st}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let snap = client
        .get(format!("{base}/snapshot.jpg"))
        .send()
        .await
        .expect("snapshot")
        .bytes()
        .await
        .expect("body");
    assert_eq!(decode_jpeg(&snap), (usize::from(w), usize::from(h)));
}

#[tokio::test]
async fn a_source_sending_garbage_is_refused_counted_and_the_camera_recovers() {
    lookout::install_crypto_provider();
    let mut cam = Camera::start().await;
    let data = tempfile::tempdir().expect("temp dir");
    let mut bin = Binary::spawn(
        &["--listen", "127.0.0.1:0", "--source", &cam.url],
        data.path(),
    );
    let base = bin.wait_for_url("http").await;
    let client = reqwest::Client::new();
    recovers_with(&mut cam, &client, &base, 64, 48).await;
    assert_eq!(bad_frames(&client, &base).await, 0);

    // Random bytes, as parts and bare.
    let random = noise(3 << 20);
    cam.send(&part(&random[..1 << 20])).await;
    cam.send(&random[1 << 20..]).await;
    bin.wait_for("the bad frame in the log", |line| {
        line.contains("sent a bad frame, not shown").then_some(())
    })
    .await;
    let child = bin.drain();
    let pid = child.id().expect("running");
    recovers_with(&mut cam, &client, &base, 80, 60).await;
    let mut seen = bad_frames(&client, &base).await;
    assert!(seen >= 2, "3 MiB of noise: {seen} bad frames");

    // Truncated JPEGs: each cut inside its image data, the next part's start
    // comes before its end.
    let whole = jpeg(96, 72);
    let sos = whole
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("SOS");
    let cut = whole.len() - 20;
    assert!(cut > sos + 20, "cut inside the image data");
    for _ in 0..5 {
        cam.send(&part(&whole[..cut])).await;
    }
    recovers_with(&mut cam, &client, &base, 96, 72).await;
    let now = bad_frames(&client, &base).await;
    assert!(now >= seen + 5, "5 truncated JPEGs: {seen} -> {now}");
    seen = now;

    // A 50 MB "JPEG": memory stays under the 16 MiB frame cap.
    let before = peak_rss_kib(pid);
    let big = 50 * 1000 * 1000;
    let mut head = format!(
        "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        big + 14
    )
    .into_bytes();
    head.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00]);
    head.extend_from_slice(&[0x3F, 0x00]);
    cam.send(&head).await;
    let chunk = vec![0x42u8; 1 << 20];
    let mut sent = 0;
    while sent < big {
        let n = chunk.len().min(big - sent);
        cam.send(&chunk[..n]).await;
        sent += n;
    }
    cam.send(&[0xFF, 0xD9, b'\r', b'\n']).await;
    recovers_with(&mut cam, &client, &base, 112, 84).await;
    let grew = peak_rss_kib(pid).saturating_sub(before);
    assert!(
        grew < 40 * 1024,
        "peak memory grew by {grew} KiB for a 50 MB frame"
    );
    let now = bad_frames(&client, &base).await;
    assert!(now > seen, "the 50 MB frame: {seen} -> {now}");
    seen = now;

    // A JPEG whose frame header claims 65535x65535.
    let mut wide = jpeg(32, 24);
    let sof = wide
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    wide[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    cam.send(&part(&wide)).await;
    recovers_with(&mut cam, &client, &base, 128, 96).await;
    let now = bad_frames(&client, &base).await;
    assert!(now > seen, "65535x65535: {seen} -> {now}");
    seen = now;
    let st = fetch_json(&client, &format!("{base}/status")).await;
    assert_eq!(st["source"]["width"], 128, "{st}");

    // A part header that never ends: skipped without being kept.
    cam.send(b"--frame\r\nContent-Type: image/jpeg\r\nX-Note: ")
        .await;
    let endless = vec![b'a'; 1 << 20];
    for _ in 0..3 {
        cam.send(&endless).await;
    }
    cam.send(b"\r\n\r\n").await;
    recovers_with(&mut cam, &client, &base, 144, 108).await;
    let now = bad_frames(&client, &base).await;
    assert!(now >= seen + 2, "3 MiB of header: {seen} -> {now}");

    // The same count on /metrics.
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let counted: u64 = metrics
        .lines()
        .find(|l| l.starts_with("lookout_source_bad_frames_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad frames on /metrics:\n{metrics}"));
    assert!(counted >= now, "/metrics {counted}, /status {now}");
    let grew = peak_rss_kib(pid).saturating_sub(before);
    eprintln!("{now} bad frames; peak memory grew by {grew} KiB");
    assert!(grew < 40 * 1024, "peak memory grew by {grew} KiB");
    drop(child);
}

/// Stops the binary with SIGTERM, as systemd does, and waits for it.
async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().expect("running").to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(sent.success());
    tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("lookout stops after SIGTERM")
        .expect("exit status");
}

/// Takes a snapshot through `/control` and returns its name.
async fn snapshot(client: &reqwest::Client, base: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply: Value = client
            .post(format!("{base}/control"))
            .body(r#"{"cmd": "snapshot_now"}"#)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON reply");
        if reply["ok"] == true {
            let url = reply["url"].as_str().expect("url");
            return url.trim_start_matches("/snaps/").to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "{reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The names in `/snaps`.
async fn listed(client: &reqwest::Client, base: &str) -> Vec<String> {
    let list = fetch_json(client, &format!("{base}/snaps")).await;
    let items = list["snaps"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"));
    items
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_string())
        .collect()
}

fn names_starting(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

const SYNTHETIC: &str = "synthetic:?size=160x120&fps=10&motion=never";

#[tokio::test]
async fn a_damaged_database_is_set_aside_and_snapshots_stay() {
    lookout::install_crypto_provider();
    let data = tempfile::tempdir().expect("temp dir");
    let args = ["--listen", "127.0.0.1:0", "--source", SYNTHETIC];
    let client = reqwest::Client::new();

    let mut bin = Binary::spawn(&args, data.path());
    let base = bin.wait_for_url("http").await;
    let child = bin.drain();
    let first = snapshot(&client, &base).await;
    stop(child).await;

    // The SD card ate the database.
    let db = data.path().join("lookout.db");
    let garbage = b"\x00\x13 not SQLite any more \xFF".repeat(1000);
    std::fs::write(&db, &garbage).expect("overwrite");
    let had_wal = data.path().join("lookout.db-wal").exists();

    let mut bin = Binary::spawn(&args, data.path());
    let said = bin
        .wait_for("the damage in the log", |line| {
            line.contains("is damaged").then(|| line.to_string())
        })
        .await;
    assert!(said.contains("lookout.db"), "{said}");
    assert!(said.contains(".corrupt-"), "{said}");
    let base = bin.wait_for_url("http").await;
    let child = bin.drain();

    // The damaged file is kept, byte for byte, with its write-ahead log.
    let aside = names_starting(data.path(), "lookout.db.corrupt-");
    let main = aside
        .iter()
        .find(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .unwrap_or_else(|| panic!("set aside: {aside:?}"));
    assert_eq!(
        std::fs::read(data.path().join(main)).expect("kept"),
        garbage
    );
    if had_wal {
        assert!(aside.contains(&format!("{main}-wal")), "{aside:?}");
    }

    // The server runs on a fresh store, and the old snapshot is still there.
    let names = listed(&client, &base).await;
    assert!(names.contains(&first), "{first} in {names:?}");
    let old = client
        .get(format!("{base}/snaps/{first}"))
        .send()
        .await
        .expect("snapshot");
    assert_eq!(old.status(), 200);
    decode_jpeg(&old.bytes().await.expect("body"));
    let second = snapshot(&client, &base).await;
    let names = listed(&client, &base).await;
    assert!(
        names.contains(&first) && names.contains(&second),
        "{names:?}"
    );
    stop(child).await;

    // The next start finds a sound database and leaves it alone.
    let mut bin = Binary::spawn(&args, data.path());
    let base = bin.wait_for_url("http").await;
    let child = bin.drain();
    wait_until(WAIT, || async {
        listed(&client, &base).await.contains(&second)
    })
    .await;
    assert_eq!(
        names_starting(data.path(), "lookout.db.corrupt-"),
        aside,
        "nothing more set aside"
    );
    stop(child).await;
}

/// Runs the binary until it exits and returns its status and stderr.
async fn run_to_exit(data_dir: &Path) -> (std::process::ExitStatus, String) {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
            .args(["--listen", "127.0.0.1:0", "--source", SYNTHETIC])
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("lookout exits by itself")
    .expect("lookout runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_data_directory_that_cannot_be_written_stops_the_start_and_says_where() {
    // A path under a regular file: no user, root included, can create it.
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a folder").expect("file");
    let under = file.join("data");
    let (status, stderr) = run_to_exit(&under).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains(&under.display().to_string()), "{stderr}");
    assert!(stderr.contains("--data-dir"), "{stderr}");

    // A folder without write permission. Root writes anyway (CI runs the
    // tests as root), so this half only runs as another user.
    if rustix::process::geteuid().is_root() {
        eprintln!("running as root: the read-only folder case is skipped");
        return;
    }
    let ro = tmp.path().join("read-only");
    std::fs::create_dir(&ro).expect("folder");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    let (status, stderr) = run_to_exit(&ro).await;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).expect("chmod back");
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains(&ro.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("cannot write in data directory"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&ro).expect("list").count(), 0);
}
