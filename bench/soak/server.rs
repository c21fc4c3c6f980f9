//! The lookout under test: its config (two cameras, one of them this
//! program as an `exec:` camera), its process and log, and its clean stop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use tokio::time::{sleep, timeout, Instant};

use crate::ctx::Ctx;
use crate::tally::Tally;

/// What the server's log said: warnings, errors, and the first error lines.
#[derive(Clone, Default)]
pub(crate) struct LogCounts {
    pub(crate) warns: u64,
    pub(crate) errors: u64,
    pub(crate) error_lines: Vec<String>,
}

/// The running lookout.
pub(crate) struct Lookout {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    pub(crate) log_path: PathBuf,
    log_counts: Arc<Mutex<LogCounts>>,
}

impl Lookout {
    /// Writes the config into `work` and starts `bin` on a free port, with
    /// its data in `data` and its uploads going to `upload_url`; returns
    /// once it said where it serves.
    pub(crate) async fn start(
        bin: &Path,
        work: &Path,
        data: &Path,
        upload_url: &str,
    ) -> anyhow::Result<Lookout> {
        let config = write_config(work)?;
        let log_path = work.join("lookout.log");
        let mut child = tokio::process::Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .arg("--upload-url")
            .arg(upload_url)
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
            .with_context(|| format!("start {}", bin.display()))?;
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
        let log_counts = Arc::new(Mutex::new(LogCounts::default()));
        tokio::spawn(follow_log(lines, log, log_counts.clone()));
        Ok(Lookout {
            child,
            pid,
            port,
            log_path,
            log_counts,
        })
    }

    /// Waits until both cameras are running.
    pub(crate) async fn wait_ready(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
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
                return Ok(());
            }
            if Instant::now() > ready {
                bail!(
                    "both cameras were not running within 90 s (see {})",
                    self.log_path.display()
                );
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("lookout exited: {status} (see {})", self.log_path.display());
            }
            sleep(Duration::from_millis(300)).await;
        }
    }

    /// SIGTERM, then a deadline for the exit.
    pub(crate) async fn stop(&mut self, tally: &Tally) {
        let Some(p) = rustix::process::Pid::from_raw(self.pid as i32) else {
            return;
        };
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        match timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => tally.fail(format!("lookout exited with {status} after SIGTERM")),
            Ok(Err(e)) => tally.fail(format!("waiting for lookout: {e}")),
            Err(_) => {
                tally.fail("lookout did not stop within 30 s of SIGTERM");
                let _ = self.child.kill().await;
            }
        }
    }

    /// What the log said so far.
    pub(crate) fn log_counts(&self) -> LogCounts {
        self.log_counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

/// The server's configuration: two cameras, small retention so the data
/// directory levels off within the run (and retention runs too).
fn write_config(work: &Path) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("own path")?;
    let config = work.join("lookout.toml");
    let me_quoted = format!("'{}'", me.display().to_string().replace('\'', r"'\''"));
    let toml = format!(
        "[settings]\nmax_snaps = 300\nmax_clips = 40\nmax_clips_mb = 64\n\n\
         [[camera]]\nname = \"yard\"\nsource = \"synthetic:?size=640x360&fps=10\"\n\n\
         [[camera]]\nname = \"gate\"\nsource = {}\n",
        toml_string(&format!("exec:{me_quoted} source --seconds 20"))
    );
    std::fs::write(&config, toml).context("write config")?;
    Ok(config)
}

/// Copies the rest of the log to its file, counting warnings and errors.
async fn follow_log(
    mut lines: Lines<BufReader<ChildStdout>>,
    mut log: tokio::fs::File,
    counts: Arc<Mutex<LogCounts>>,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = log.write_all(line.as_bytes()).await;
        let _ = log.write_all(b"\n").await;
        if let Ok(mut c) = counts.lock() {
            if line.contains(" WARN ") {
                c.warns += 1;
            }
            if line.contains(" ERROR ") || line.contains("panicked") {
                c.errors += 1;
                if c.error_lines.len() < 10 {
                    c.error_lines.push(line.clone());
                }
            }
        }
    }
    let _ = log.flush().await;
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
