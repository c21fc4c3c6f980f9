//! Secrets never leave through what lookout reports: a camera password in an
//! `exec:` command (ffmpeg repeats it in its errors), a token in a query
//! string, a webhook's secret path, and lookout's own `LOOKOUT_*` secrets
//! in the environment of the camera program. Run against the real binary,
//! so the log is the one a user would see.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

const CAM_PASSWORD: &str = "S3cretCamPw";
const QUERY_TOKEN: &str = "Qu3ryT0kenValue";
const OWNER_PASSWORD: &str = "owner password from the environment";
const UPLOAD_TOKEN: &str = "upload-token-from-env-42";
const HOOK_SECRET: &str = "hookS3cretPathPart";

/// The real binary with its whole log (stdout and stderr) collected.
struct Lookout {
    /// Killed when dropped.
    _child: tokio::process::Child,
    log: Arc<Mutex<String>>,
}

impl Lookout {
    fn spawn(args: &[&str], data_dir: &std::path::Path, env: &[(&str, &str)]) -> Lookout {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("lookout starts");
        let log = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for pipe in [
            Box::new(out) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(err),
        ] {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Lookout { _child: child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The serving address from the log, once lookout says it.
    async fn base_url(&self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if let Some(at) = log.find("at http://") {
                let rest = log[at + 3..].lines().next().unwrap_or("");
                return rest.trim().trim_end_matches('/').to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "lookout did not start:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the log contains `text`.
    async fn wait_for_log(&self, text: &str) {
        common::wait_until(Duration::from_secs(20), || {
            let found = self.log().contains(text);
            async move { found }
        })
        .await;
    }
}

/// Calls `f` until it gives something (20 s at most).
async fn poll<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every secret found in any of the texts, with where.
fn leaks(texts: &[(&str, &str)], secrets: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (place, text) in texts {
        for secret in secrets {
            if text.contains(secret) {
                found.push(format!("{secret} in {place}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_camera_password_never_shows_in_status_events_store_or_log() {
    let dir = tempfile::tempdir().unwrap();
    // A camera that refuses: ffmpeg prints the input URL, password and all.
    // Before it, the command reports how many LOOKOUT_ variables it sees.
    let source = format!(
        "exec:echo \"lookout vars seen: $(env | grep -c '^LOOKOUT_')\" >&2; \
         ffmpeg -hide_banner -loglevel error -rtsp_transport tcp \
         -i 'rtsp://camuser:{CAM_PASSWORD}@127.0.0.1:1/stream?token={QUERY_TOKEN}' \
         -c:v mjpeg -f mjpeg -"
    );
    let hook = format!("http://127.0.0.1:1/api/webhook/{HOOK_SECRET}");
    let lookout = Lookout::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--source",
            &source,
            "--webhook-url",
            &hook,
            "--upload-on-manual",
        ],
        dir.path(),
        &[
            ("LOOKOUT_PASSWORD", OWNER_PASSWORD),
            ("LOOKOUT_UPLOAD_TOKEN", UPLOAD_TOKEN),
        ],
    );
    let base = lookout.base_url().await;
    lookout::install_crypto_provider();
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };

    // The source failed with ffmpeg's own words, the URL shown redacted.
    let status: Value = poll(|| {
        let get = get("/status");
        async move {
            let s: Value = serde_json::from_str(&get.await).unwrap();
            let failed = s["source"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("127.0.0.1:1"));
            failed.then_some(s)
        }
    })
    .await;
    let last_error = status["source"]["last_error"].as_str().unwrap().to_string();
    assert!(
        last_error.contains("camuser:***@127.0.0.1:1"),
        "{last_error}"
    );
    assert!(status["source"]["uri"]
        .as_str()
        .unwrap()
        .contains("token=***"));

    // The `source` event that says the camera is down, as stored.
    let events = poll(|| {
        let get = get("/api/events?limit=100");
        async move {
            let events = get.await;
            events.contains("\"source\"").then_some(events)
        }
    })
    .await;

    // The SSE replay of everything stored.
    let mut sse = client
        .get(format!("{base}/events"))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    let mut replay = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = sse.chunk().await.unwrap() {
            replay.push_str(&String::from_utf8_lossy(&chunk));
            if replay.contains("event: source") {
                break;
            }
        }
    })
    .await
    .expect("the source event is replayed");
    assert!(replay.contains("camuser:***@"), "{replay}");

    // The child saw none of lookout's variables.
    common::wait_until(Duration::from_secs(10), || {
        let seen = lookout.log().contains("lookout vars seen: ");
        async move { seen }
    })
    .await;
    let log = lookout.log();
    assert!(log.contains("lookout vars seen: 0"), "{log}");

    let store = read_store(dir.path()).await;
    let status_now = get("/status").await;
    let status = serde_json::to_string(&status).unwrap();
    let store = String::from_utf8_lossy(&store);
    let found = leaks(
        &[
            ("/status", &status),
            ("/status later", &status_now),
            ("/api/events", &events),
            ("/events replay", &replay),
            ("the log", &log),
            ("the store", &store),
        ],
        &[CAM_PASSWORD, QUERY_TOKEN, OWNER_PASSWORD, UPLOAD_TOKEN],
    );
    assert!(found.is_empty(), "secrets leaked: {found:?}");
}

#[tokio::test]
async fn a_webhook_secret_path_and_the_upload_token_stay_out_of_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: every call fails, and says so.
    let hook = format!("http://127.0.0.1:1/api/webhook/{HOOK_SECRET}");
    let upload = format!("http://127.0.0.1:1/frames?token={QUERY_TOKEN}");
    let lookout = Lookout::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--source",
            "synthetic:?size=320x180&fps=10&motion=never",
            "--webhook-url",
            &hook,
            "--upload-url",
            &upload,
            "--upload-on-manual",
        ],
        dir.path(),
        &[("LOOKOUT_UPLOAD_TOKEN", UPLOAD_TOKEN)],
    );
    let base = lookout.base_url().await;
    lookout::install_crypto_provider();
    let client = reqwest::Client::new();
    poll(|| {
        let req = client
            .post(format!("{base}/control"))
            .body(r#"{"cmd": "snapshot_now"}"#)
            .send();
        async move {
            let reply: Value = req.await.unwrap().json().await.unwrap();
            (reply["ok"] == true).then_some(())
        }
    })
    .await;
    // Both the frame upload and the webhook call fail and are logged.
    lookout.wait_for_log("event upload failed").await;
    lookout.wait_for_log("frame upload failed").await;
    let status: Value = client
        .get(format!("{base}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last_error = status["uploads"]["last_error"].as_str().unwrap_or("");
    assert!(last_error.contains("127.0.0.1:1"), "{status}");
    let log = lookout.log();
    assert!(
        log.contains("/api/…"),
        "the webhook shown by its prefix: {log}"
    );
    let status = status.to_string();
    let found = leaks(
        &[("the log", &log), ("/status", &status)],
        &[HOOK_SECRET, QUERY_TOKEN, UPLOAD_TOKEN],
    );
    assert!(found.is_empty(), "secrets leaked: {found:?}");
}

/// The SQLite files as bytes (the database and its write-ahead log).
async fn read_store(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["lookout.db", "lookout.db-wal"] {
        if let Ok(bytes) = tokio::fs::read(dir.join(name)).await {
            all.extend(bytes);
        }
    }
    all
}

/// A broker password typed into `--mqtt-url` (or the file's `url`) in a
/// shape that is not a URL lookout takes: refused at start, and the error
/// says which URL without the password.
#[tokio::test]
async fn an_mqtt_password_in_a_url_that_does_not_parse_stays_out_of_start_errors() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "u:MqttS3cretPw@b:1883",
        "mqtts//u:MqttS3cretPw@b",
        "mqtt:/u:MqttS3cretPw@b",
        "mqtt:u:MqttS3cretPw@b:1883",
        "mqtt://u:MqttS3cretPw@b",
        "http://u:MqttS3cretPw@b",
        "u:Mqtt/S3cretPw@b",
    ] {
        let file = dir.path().join("lookout.toml");
        std::fs::write(&file, format!("[mqtt]\nurl = \"{url}\"\n")).unwrap();
        for args in [
            vec!["--mqtt-url", url],
            vec!["--config", file.to_str().unwrap()],
        ] {
            let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
                .args(&args)
                .args(["--listen", "127.0.0.1:0", "--source", "synthetic"])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .env("NO_COLOR", "1")
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(Duration::from_secs(20), run)
                .await
                .expect("lookout refuses the URL at start")
                .expect("lookout runs");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.status.success(), "{args:?}: {text}");
            assert!(text.contains("mqtt"), "{args:?}: {text}");
            // Every password above holds this.
            let shown = leaks(&[("the start error", &text)], &["S3cretPw"]);
            assert!(shown.is_empty(), "{args:?}: {shown:?}: {text}");
        }
    }
}
