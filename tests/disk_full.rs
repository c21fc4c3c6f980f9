//! A full disk, against the real binary: the data directory on a small
//! tmpfs (the tests run as root in CI), filled by a file of the test's until
//! nothing more fits. Every kind of durable write (snapshot, clip, event in
//! SQLite, upload-queue item) must fail with a clear error, the camera must
//! go on streaming and answering, nothing written before may be damaged,
//! and writes must work again once the file is deleted.

use crate::common;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::receiver::Receiver;
use common::{decode_jpeg, motion_scene, wait_until, Binary, Log, MjpegClient};
use serde_json::Value;

/// A deadline for each state waited for; generous for a slow, busy machine.
const WAIT: Duration = Duration::from_secs(40);

/// What the kernel says when a write finds no space (ENOSPC).
const NO_SPACE: &str = "No space left on device";

/// A tmpfs mounted for the test; unmounted when dropped (after the server
/// using it has been killed: declare it before the process).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=`) on `path`, or says
    /// why it cannot.
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not running as root".into());
        }
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let done = std::process::Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            // Still busy (a process not yet reaped): detach it now, the
            // kernel frees it when the last user goes.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status();
        }
    }
}

/// Writes zeros to `path` until the file system refuses more; returns the
/// bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler file");
    let mut written = 0u64;
    for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
        let zeros = vec![0u8; chunk];
        while file.write_all(&zeros).is_ok() {
            written += chunk as u64;
        }
    }
    // What did fit is kept (a flush error here is the same full disk).
    let _ = file.sync_all();
    written
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.expect("request")
}

async fn json(client: &reqwest::Client, url: &str) -> Value {
    get(client, url).await.json().await.expect("JSON")
}

async fn command(client: &reqwest::Client, base: &str, body: &str) -> (u16, Value) {
    let r = client
        .post(format!("{base}/control"))
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.expect("JSON reply"))
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("a list of {key}: {list}"))
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_string())
        .collect()
}

fn event_ids(list: &Value) -> HashSet<u64> {
    list["events"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of events: {list}"))
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect()
}

/// The server keeps streaming and answering: the viewer's frame count grows
/// and `/status` and `/snapshot.jpg` answer 200.
async fn still_serving(client: &reqwest::Client, base: &str, frames: &AtomicU64) {
    let seen = frames.load(Ordering::SeqCst);
    wait_until(WAIT, || async { frames.load(Ordering::SeqCst) > seen + 2 }).await;
    assert_eq!(get(client, &format!("{base}/status")).await.status(), 200);
    let snap = get(client, &format!("{base}/snapshot.jpg")).await;
    assert_eq!(snap.status(), 200);
    decode_jpeg(&snap.bytes().await.expect("body"));
}

/// Waits for a log line from `from` on with `text`, and checks it names the
/// full disk.
async fn logged_full(log: &Log, from: usize, text: &str) -> String {
    let line = log.wait_for(from, text, WAIT).await;
    assert!(
        line.contains(NO_SPACE) || line.contains("disk is full"),
        "the error says the disk is full: {line}"
    );
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_each_write_clearly_and_writes_resume_when_space_returns() {
    lookout::install_crypto_provider();
    let tmp = tempfile::tempdir().expect("temp dir");
    let mnt = tmp.path().join("disk");
    std::fs::create_dir(&mnt).expect("mount point");
    let disk = match Tmpfs::mount(&mnt, "16m") {
        Ok(disk) => disk,
        Err(why) => {
            // No seam to inject a failing writer in the binary: this fault
            // needs a real small file system.
            eprintln!("full-disk test skipped: {why}");
            return;
        }
    };
    let scene = tmp.path().join("scene");
    std::fs::create_dir(&scene).expect("scene folder");
    motion_scene(&scene);
    let config = tmp.path().join("lookout.toml");
    std::fs::write(
        &config,
        "[settings]\ncooldown_s = 0\nthreshold = 5\nclip_pre_s = 1\nclip_post_s = 1\n\
         save_on_motion = false\n",
    )
    .expect("config");
    let rx = Receiver::start().await;
    let source = format!("file:{}?fps=10", scene.display());
    let data = disk.path.join("data");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--source",
        &source,
        "--config",
        config.to_str().expect("utf8 path"),
        "--upload-url",
        &rx.url("/frames"),
    ];
    let mut bin = Binary::spawn(&args, &data);
    let base = bin.wait_for_url("http").await;
    let (child, log) = bin.collect();
    let client = reqwest::Client::new();

    // Before: a clip, an upload, three snapshots and some events on disk.
    wait_until(WAIT, || async {
        !names(&json(&client, &format!("{base}/clips")).await, "clips").is_empty()
    })
    .await;
    wait_until(WAIT, || async {
        json(&client, &format!("{base}/status")).await["uploads"]["sent"].as_u64() >= Some(1)
    })
    .await;
    let mut kept = Vec::new();
    for _ in 0..3 {
        let (code, reply) = command(&client, &base, r#"{"cmd": "snapshot_now"}"#).await;
        assert_eq!(code, 200, "{reply}");
        let url = reply["url"].as_str().expect("url").to_string();
        let bytes = get(&client, &format!("{base}{url}")).await.bytes().await;
        kept.push((url, bytes.expect("snapshot body")));
    }
    let (code, reply) = command(&client, &base, r#"{"cmd": "reset"}"#).await;
    assert_eq!(code, 200, "{reply}");
    let events_before = event_ids(&json(&client, &format!("{base}/api/events?limit=100")).await);
    assert!(!events_before.is_empty());
    let clips_before = names(&json(&client, &format!("{base}/clips")).await, "clips");

    // A viewer that counts the frames it gets, all along.
    let frames = Arc::new(AtomicU64::new(0));
    let mut viewer = MjpegClient::connect(&format!("{base}/stream.jpg")).await;
    let counter = frames.clone();
    let viewing = tokio::spawn(async move {
        while let Some(part) = viewer.next_part().await {
            decode_jpeg(&part.body);
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    // The disk fills up.
    let from = log.len();
    let status = json(&client, &format!("{base}/status")).await;
    let clips_failed = status["clips"]["failed"].as_u64().expect("clips.failed");
    let filler = disk.path.join("filler");
    let filled = fill(&filler);
    eprintln!("filled the disk with {filled} bytes");

    // Snapshot: refused with the disk's error in the reply.
    let (code, reply) = command(&client, &base, r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(code, 500, "{reply}");
    assert_eq!(reply["ok"], false, "{reply}");
    let reason = reply["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot write snapshot") && reason.contains(NO_SPACE),
        "{reply}"
    );

    // Clip: counted as failed on /status, the reason in the log.
    wait_until(WAIT, || async {
        json(&client, &format!("{base}/status")).await["clips"]["failed"].as_u64()
            > Some(clips_failed)
    })
    .await;
    logged_full(&log, from, ".mkv failed: ").await;

    // Event (SQLite): SQLite reuses space its files already hold, so a few
    // writes may still fit; each answer is either a stored reset or a clear
    // refusal, and the refusal comes.
    let deadline = tokio::time::Instant::now() + WAIT;
    let refused = loop {
        let (code, reply) = command(&client, &base, r#"{"cmd": "reset"}"#).await;
        if reply["ok"] == false {
            assert_eq!(code, 500, "{reply}");
            break reply;
        }
        assert_eq!(reply, serde_json::json!({"ok": true, "counters": "reset"}));
        assert!(tokio::time::Instant::now() < deadline, "no reset refused");
    };
    assert_eq!(
        refused["reason"], "cannot save the counter; see the server log",
        "{refused}"
    );
    logged_full(&log, from, "reset failed").await;
    let (code, reply) = command(&client, &base, r#"{"cmd": "set", "threshold": 6}"#).await;
    assert_eq!(code, 500, "{reply}");
    assert_eq!(reply["error"], "cannot save settings; see the server log");

    // Upload queue: an item is queued after its event is stored (so that a
    // receiver never gets a frame the history lacks). On a full disk SQLite
    // refuses the motion event first, so the frame is not queued, and the
    // log says why.
    logged_full(&log, from, "cannot record motion event").await;
    assert!(
        log.find(from, "cannot queue")
            .is_none_or(|l| l.contains(NO_SPACE)),
        "a queue refusal names the full disk"
    );

    // Through all of it: the camera streams and answers, and what was
    // written before is whole.
    still_serving(&client, &base, &frames).await;
    for (url, bytes) in &kept {
        let now = get(&client, &format!("{base}{url}")).await;
        assert_eq!(now.status(), 200, "{url}");
        assert_eq!(&now.bytes().await.expect("body"), bytes, "{url} unchanged");
    }
    let events_now = event_ids(&json(&client, &format!("{base}/api/events?limit=1000")).await);
    assert!(events_before.is_subset(&events_now), "earlier events kept");
    for name in &clips_before {
        let r = get(&client, &format!("{base}/clips/{name}")).await;
        assert_eq!(r.status(), 200, "{name}");
    }
    assert!(child_alive(&child), "lookout still runs on a full disk");

    // Space returns: every kind of write works again.
    std::fs::remove_file(&filler).expect("delete the filler");
    let from = log.len();
    let sent = json(&client, &format!("{base}/status")).await["uploads"]["sent"]
        .as_u64()
        .expect("uploads.sent");
    let (code, reply) = command(&client, &base, r#"{"cmd": "snapshot_now"}"#).await;
    assert_eq!(code, 200, "{reply}");
    let url = reply["url"].as_str().expect("url");
    decode_jpeg(
        &get(&client, &format!("{base}{url}"))
            .await
            .bytes()
            .await
            .expect("body"),
    );
    let (code, reply) = command(&client, &base, r#"{"cmd": "reset"}"#).await;
    assert_eq!(code, 200, "{reply}");
    let (code, reply) = command(&client, &base, r#"{"cmd": "set", "threshold": 6}"#).await;
    assert_eq!(code, 200, "{reply}");
    wait_until(WAIT, || async {
        let listed = names(&json(&client, &format!("{base}/clips")).await, "clips");
        listed.iter().any(|n| !clips_before.contains(n))
    })
    .await;
    wait_until(WAIT, || async {
        json(&client, &format!("{base}/status")).await["uploads"]["sent"].as_u64() > Some(sent)
    })
    .await;
    let after = rx.hits("/frames");
    let last = after.last().expect("uploads received");
    decode_jpeg(&last.part("image").expect("an image part"));
    assert!(
        log.find(from, "cannot queue").is_none(),
        "queue works again"
    );
    still_serving(&client, &base, &frames).await;
    viewing.abort();
    drop(child);
    drop(disk);
}

fn child_alive(child: &tokio::process::Child) -> bool {
    // `id()` is None once the child has been reaped; a zombie is caught by
    // the requests above, which it could not answer.
    child.id().is_some()
}
