//! The lookout under test: its config file (one camera on the bench's scene,
//! notified on every motion incident to the bench's ntfy), its process and
//! its log, and its stop. The process is killed if the bench drops it
//! (an error, a panic, Ctrl-C), so no run leaves one behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::time::timeout;

/// The camera's name; ntfy's `Filename` is `<camera>-<incident>.jpg`.
pub(crate) const CAMERA: &str = "yard";

/// The running lookout.
pub(crate) struct Lookout {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    pub(crate) log_path: PathBuf,
}

impl Lookout {
    /// Writes the config into `work` and starts `bin` on a free loopback
    /// port with its data under `work`, the camera on the frames in
    /// `scene`; returns once it said where it serves.
    pub(crate) async fn start(
        bin: &Path,
        work: &Path,
        scene: &Path,
        ntfy_url: &str,
        max_viewers: usize,
    ) -> anyhow::Result<Lookout> {
        let config = work.join("lookout.toml");
        std::fs::write(&config, config_toml(scene, ntfy_url, max_viewers))?;
        let log_path = work.join("lookout.log");
        let mut child = tokio::process::Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(work.join("data"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
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
        // The rest of the log, to its file (the pipe must be drained).
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = log.write_all(line.as_bytes()).await;
                let _ = log.write_all(b"\n").await;
            }
            let _ = log.flush().await;
        });
        Ok(Lookout {
            child,
            pid,
            port,
            log_path,
        })
    }

    /// `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub(crate) async fn stop(mut self) {
        if let Some(p) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
        if timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// utime + stime of the process so far, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The command name may hold spaces; fields restart after its ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Field 3 (state) is fields[0], so utime (14) and stime (15) are 11 and 12.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(utime + stime)
    }
}

/// One camera on the scene, a motion episode every loop: no cooldown, no
/// pre- or post-roll (a clip ends with its episode), every motion incident
/// notified with no notification cooldown.
fn config_toml(scene: &Path, ntfy_url: &str, max_viewers: usize) -> String {
    let source = format!("file:{}?fps=10", scene.display());
    format!(
        "ntfy_url = {}\nmax_viewers = {max_viewers}\n\n\
         [settings]\nthreshold = 5\ncooldown_s = 0\nclip_pre_s = 0\nclip_post_s = 0\n\
         notify_on = \"motion\"\nnotify_cooldown_s = 0\n\n\
         [[camera]]\nname = \"{CAMERA}\"\nsource = {}\n",
        toml_string(ntfy_url),
        toml_string(&source),
    )
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
