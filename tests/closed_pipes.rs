//! A log nobody reads any more (`lookout 2>&1 | head -1`, a crashed log
//! collector) must stop nothing: motion analysis goes on, SIGTERM still stops
//! the server cleanly. The real binary, with stdout and stderr both on a pipe
//! whose reading end is closed before it starts.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// Motion from the first frames, so "motion started" is logged at once.
const SRC: &str = "synthetic:?size=160x120&fps=10&motion=always";
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_closed_log_pipe_stops_neither_motion_nor_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["--listen", "127.0.0.1:0", "--source", SRC, "--data-dir"])
        .arg(data.path())
        // Every request and frame that logs anything now fails to write.
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // The log cannot say where it listens: find its listening socket.
    let base = {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(port) = listening_port(pid) {
                break format!("http://127.0.0.1:{port}");
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("lookout exited with {status} before listening");
            }
            assert!(tokio::time::Instant::now() < deadline, "never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    lookout::install_crypto_provider();
    let client = reqwest::Client::new();

    // Motion was detected (and logged into the closed pipe)...
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("lookout died with {status}");
        }
        let triggers = status(&client, &base).await["trigger_count"].as_u64();
        if triggers.is_some_and(|n| n >= 1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no motion detected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and analysis goes on after that.
    let before = analysed(&client, &base).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = analysed(&client, &base).await;
        if now >= before + 20.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "motion analysis stopped at {now} frames (was {before})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM stops it, cleanly.
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("lookout stops after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
}

async fn status(client: &reqwest::Client, base: &str) -> Value {
    match client.get(format!("{base}/status")).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Frames analysed for motion so far, from `/metrics`.
async fn analysed(client: &reqwest::Client, base: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .unwrap();
    let key = r#"lookout_motion_analysis_seconds_count{camera="cam"} "#;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The TCP port process `pid` listens on (Linux: its socket inodes in
/// `/proc/PID/fd`, matched against the listening sockets in `/proc/net/tcp`).
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local address, state (0A is LISTEN), inode.
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        if *state != "0A" || !inodes.iter().any(|i| i == inode) {
            return None;
        }
        u16::from_str_radix(local.split_once(':')?.1, 16).ok()
    })
}
