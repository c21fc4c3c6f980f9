//! The test RTSP camera (`scripts/rtsp-server`) as a process a test owns:
//! started on a free port, its `ready` line read, killed when dropped, and
//! stopped and started again on the same port (a camera that reboots).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// How long the camera may take to start listening: GStreamer loads its
/// plugins and opens the footage, slowly on a busy machine.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running test camera; dropping it kills it.
pub struct RtspCamera {
    args: Vec<String>,
    pub port: u16,
    running: Option<Running>,
}

/// One run of the camera process.
struct Running {
    child: Child,
    /// Held open: the camera exits when it closes, so a test that dies
    /// cannot leave it behind even if the kill is lost.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
}

impl RtspCamera {
    /// Starts the camera on a free port with `args` (`--codec h265`,
    /// `--file ...`, `--user U --password P`, ...).
    pub async fn start(args: &[&str]) -> RtspCamera {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (running, port) = spawn(&args, 0)
            .await
            .unwrap_or_else(|e| panic!("the test camera did not start: {e}"));
        RtspCamera {
            args,
            port,
            running: Some(running),
        }
    }

    /// Starts the camera looping the real walkers footage.
    pub async fn walkers(args: &[&str]) -> RtspCamera {
        let file = footage();
        let mut all = vec!["--file", file.as_str()];
        all.extend_from_slice(args);
        Self::start(&all).await
    }

    /// `rtsp://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{path}", self.port)
    }

    /// `rtsp://USER:PASSWORD@127.0.0.1:PORT/PATH`.
    pub fn url_as(&self, user: &str, password: &str, path: &str) -> String {
        format!("rtsp://{user}:{password}@127.0.0.1:{}/{path}", self.port)
    }

    /// The camera's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().and_then(|r| r.child.id())
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the camera process: a stopped
    /// camera keeps its connections open and sends nothing, as a hung one.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the camera runs");
        let sent = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// Kills the camera (as a power cut would) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut r) = self.running.take() {
            let _ = r.child.start_kill();
            tokio::time::timeout(Duration::from_secs(10), r.child.wait())
                .await
                .expect("the test camera exits within 10 s of a kill")
                .expect("wait for the test camera");
        }
    }

    /// Starts the stopped camera again on the same port, with the same
    /// arguments. The port may take a moment to be free again, so a refused
    /// listen is tried again for a while.
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "stop the camera first");
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            match spawn(&self.args, self.port).await {
                Ok((running, port)) => {
                    assert_eq!(port, self.port, "restarted on the same port");
                    self.running = Some(running);
                    return;
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("the test camera did not start again yet: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("the test camera did not start again: {e}"),
            }
        }
    }
}

/// The walkers footage (OpenCV's vtest.avi), in the repository.
pub fn footage() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/footage/vtest.avi");
    assert!(path.is_file(), "{} is missing", path.display());
    path.display().to_string()
}

/// Starts `scripts/rtsp-server --port PORT ARGS` and reads its ready line;
/// returns the process and its port, or why it did not start.
async fn spawn(args: &[String], port: u16) -> Result<(Running, u16), String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rtsp-server");
    // Debian's python3: the script needs its GStreamer bindings (python3-gi).
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg("--port")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run /usr/bin/python3: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let stderr = Arc::new(Mutex::new(String::new()));
    let into = stderr.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("stderr lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(READY_WITHIN, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        Ok(_) => {
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            // Let the stderr reader catch up with what the process said.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let said = stderr.lock().expect("stderr lock").clone();
            return Err(format!("exited ({status:?}) before ready: {said}"));
        }
        Err(_) => {
            let said = stderr.lock().expect("stderr lock").clone();
            return Err(format!("no ready line within {READY_WITHIN:?}: {said}"));
        }
    };
    let port = parse_ready(&line).ok_or_else(|| format!("not a ready line: {line:?}"))?;
    Ok((
        Running {
            child,
            _stdin: stdin,
            stderr,
        },
        port,
    ))
}

/// The port of `ready rtsp://127.0.0.1:PORT/main rtsp://127.0.0.1:PORT/sub`.
fn parse_ready(line: &str) -> Option<u16> {
    let mut words = line.split_whitespace();
    if words.next() != Some("ready") {
        return None;
    }
    let urls: Vec<&str> = words.collect();
    let [main, sub] = urls.as_slice() else {
        return None;
    };
    let port_of = |url: &str, path: &str| -> Option<u16> {
        url.strip_prefix("rtsp://127.0.0.1:")?
            .strip_suffix(path)?
            .parse()
            .ok()
    };
    let port = port_of(main, "/main")?;
    (port_of(sub, "/sub") == Some(port) && port != 0).then_some(port)
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.take() {
            let _ = r.child.start_kill();
            if std::thread::panicking() {
                let said = r.stderr.lock().map(|s| s.clone()).unwrap_or_default();
                if !said.is_empty() {
                    eprintln!("the test camera said: {said}");
                }
            }
        }
    }
}
