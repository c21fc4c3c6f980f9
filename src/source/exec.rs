//! `exec:COMMAND`: a child process whose stdout is MJPEG (ffmpeg, rpicam-vid).
//!
//! The JPEGs pass through untouched. The child's stderr goes to the log, and
//! its last line is kept for the error shown on `/status` when it exits; both
//! with the source's secrets hidden (ffmpeg repeats its input URL, password
//! and all). The child runs in its own process group, so a shell pipeline is
//! stopped whole, and without lookout's own `LOOKOUT_*` variables: they hold
//! the owner's password and the upload token, which a camera program has no
//! business seeing (or printing to its stderr, which is logged).

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::error::SourceError;
use super::mjpeg::FrameReader;
use super::output::Output;

/// Runs `command` with `sh -c` and publishes every frame of its stdout.
pub async fn run(command: &str, out: &Output) -> Result<(), SourceError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(shell_line(command))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| !is_lookout_var(name)))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SourceError::Exec(format!("cannot start sh for the exec source: {e}")))?;
    let pid = child.id();
    out.set_pid(pid);
    let _group = pid.map(GroupKiller);
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| SourceError::Exec("child has no stdout".into()))?;
    let stderr = child.stderr.take();
    let last_line = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let log_task = stderr.map(|stderr| {
        let last_line = last_line.clone();
        let out = out.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = out.redact(line.trim());
                if line.is_empty() {
                    continue;
                }
                tracing::info!(target: "lookout::source::exec", "{line}");
                *crate::sync::lock(&last_line) = line;
            }
        })
    });
    let mut reader = FrameReader::new(stdout);
    let result = loop {
        match reader.next_frame().await {
            Ok(Some(jpeg)) => out.publish(jpeg),
            Ok(None) => break Ok(()),
            Err(e) if e.is_bad_data() => out.reject(&e),
            Err(e) => break Err(e),
        }
    };
    let status = child.wait().await;
    if let Some(task) = log_task {
        // The pipe closes with the child; a grandchild holding it open must not hang us.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), task).await;
    }
    let last = crate::sync::lock(&last_line).clone();
    let why = match (&result, status) {
        (Err(e), _) => format!("reading the command's output failed: {e}"),
        (Ok(()), Ok(st)) => format!("command exited ({st})"),
        (Ok(()), Err(e)) => format!("command ended: {e}"),
    };
    Err(SourceError::Exec(if last.is_empty() {
        why
    } else {
        format!("{why}: {last}")
    }))
}

/// lookout's own settings (`LOOKOUT_PASSWORD`, `LOOKOUT_UPLOAD_TOKEN`, ...),
/// kept from the child.
fn is_lookout_var(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"LOOKOUT_")
}

/// The line given to `sh -c`. A simple command is prefixed with `exec`, so it
/// replaces the shell and the process we watch (and may kill) is the camera
/// program itself; pipelines, lists and shell builtins run as written.
fn shell_line(command: &str) -> String {
    const SHELL_ONLY: &[&str] = &[
        "exit", "cd", "export", "set", "unset", "return", "shift", "readonly", "eval", ".", ":",
        "trap", "if", "for", "while", "until", "case", "{", "(", "!", "exec",
    ];
    let first = command.split_whitespace().next().unwrap_or("");
    let compound = command.contains(['|', ';', '&', '\n', '(', '`']) || command.contains("$(");
    if compound || SHELL_ONLY.contains(&first) {
        command.to_string()
    } else {
        format!("exec {command}")
    }
}

/// Stops the child's whole process group when the source is dropped (restart
/// or shutdown), so pipelines and grandchildren do not outlive it.
struct GroupKiller(u32);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        // Without `unsafe` we cannot call kill(2) on a group; the `kill` utility can.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|mut c| std::thread::spawn(move || c.wait()));
    }
}

#[cfg(test)]
mod tests {
    use super::shell_line;

    #[test]
    fn simple_commands_replace_the_shell() {
        assert_eq!(
            shell_line("ffmpeg -i x -f mjpeg -"),
            "exec ffmpeg -i x -f mjpeg -"
        );
        assert_eq!(shell_line("exit 1"), "exit 1");
        assert_eq!(shell_line("cam | tee x"), "cam | tee x");
        assert_eq!(shell_line("sleep 1; cam"), "sleep 1; cam");
        assert_eq!(shell_line("exec cam"), "exec cam");
    }
}
