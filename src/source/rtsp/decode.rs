//! The detect stream's decoder: an `ffmpeg` child, H.264 or H.265 in on a
//! pipe, I420 pictures out on another (see docs/design/ipcam.md for why a
//! child and not a library: it was the cheapest per frame, costs the build
//! nothing, covers H.265, and a decoder crash on a broken stream kills a
//! child the supervisor restarts, never the server).
//!
//! The pictures are published as they are: the detector reads their luma,
//! and a JPEG is made only while someone watches MJPEG or asks for a
//! snapshot (see [`crate::encoder`]).
//!
//! The RTSP session never waits for the decoder. Frames go into a short
//! queue; when it is full, frames are dropped up to the next keyframe (a
//! decoder cannot start again anywhere else), and the picture on show skips
//! ahead instead of falling behind.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::annexb::Codec;
use super::y4m::Y4mReader;
use crate::source::error::SourceError;
use crate::source::output::Output;

/// Access units waiting for the decoder: under a second at camera rates, so
/// the picture on show is never older than that.
const QUEUE: usize = 6;

/// At most one line of the decoder's complaints per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The program that decodes.
const FFMPEG: &str = "ffmpeg";

/// What became of a frame handed to [`Decoder::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Queued for the decoder.
    Queued,
    /// Dropped: the decoder is behind (or has not started), and waits for a
    /// keyframe.
    Dropped,
}

/// A running decoder child and the tasks around it. Dropping it stops them
/// and kills the child.
pub(crate) struct Decoder {
    codec: Codec,
    queue: mpsc::Sender<Bytes>,
    /// Frames are dropped up to the next keyframe.
    skipping: bool,
    ended: oneshot::Receiver<String>,
    _tasks: JoinSet<()>,
}

impl Decoder {
    /// Starts a decoder for `codec` whose pictures are published through
    /// `out` as JPEGs. Must be called inside the runtime.
    pub(crate) fn start(codec: Codec, out: &Output) -> Result<Decoder, SourceError> {
        let mut child = Command::new(FFMPEG)
            .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            // One thread: frame threading costs CPU and a frame of delay per
            // thread. A 32-byte probe: the stream is known, start at once.
            .args(["-threads", "1", "-probesize", "32", "-analyzeduration", "0"])
            .args(["-f", codec.ffmpeg_format(), "-i", "pipe:0"])
            // Full range, as JPEG has it: H.264 is mostly limited range
            // (16-235), which shown as is looks flat and gives the detector
            // 14 % less contrast than a JPEG camera's pictures. A camera
            // that says it sends full range is left as it is.
            .args(["-fps_mode", "passthrough", "-vf", "scale=out_range=full"])
            .args(["-pix_fmt", "yuv420p"])
            .args(["-f", "yuv4mpegpipe", "pipe:1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_clear()
            .envs(
                std::env::vars_os().filter(|(n, _)| !n.as_encoded_bytes().starts_with(b"LOOKOUT_")),
            )
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                SourceError::Rtsp(if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "an RTSP camera's {} video is decoded by ffmpeg, which is not installed \
                         (on Debian: apt install ffmpeg)",
                        codec.name()
                    )
                } else {
                    format!("cannot start ffmpeg to decode the video: {e}")
                })
            })?;
        out.set_pid(child.id());
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => return Err(SourceError::Rtsp("ffmpeg started without its pipes".into())),
            };
        let (queue, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let (ended_tx, ended) = oneshot::channel();
        let last_line = Arc::new(Mutex::new(String::new()));
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut stdin = stdin;
            while let Some(au) = rx.recv().await {
                if stdin.write_all(&au).await.is_err() {
                    break;
                }
            }
        });
        let (log, log_out) = (last_line.clone(), out.clone());
        tasks.spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            // A broken stream makes ffmpeg complain for every slice: at most
            // one line per LOG_EVERY reaches the log, with how many were not.
            let (mut logged, mut quiet) = (None::<std::time::Instant>, 0u64);
            while let Ok(Some(line)) = lines.next_line().await {
                let line = log_out.redact(line.trim());
                if line.is_empty() {
                    continue;
                }
                if logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    logged = Some(std::time::Instant::now());
                    if quiet > 0 {
                        tracing::info!(target: "lookout::source::rtsp", "decoder: {line} ({quiet} more lines not logged)");
                    } else {
                        tracing::info!(target: "lookout::source::rtsp", "decoder: {line}");
                    }
                    quiet = 0;
                } else {
                    quiet += 1;
                }
                *crate::sync::lock(&log) = line;
            }
        });
        let out = out.clone();
        tasks.spawn(async move {
            let why = publish_pictures(stdout, &out).await;
            let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            // Give the stderr reader the child's last words.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let last = crate::sync::lock(&last_line).clone();
            let mut text = match status {
                Ok(Ok(st)) if !st.success() => format!("the ffmpeg decoder exited ({st})"),
                _ => format!("the ffmpeg decoder stopped: {why}"),
            };
            if !last.is_empty() {
                text = format!("{text}: {last}");
            }
            let _ = ended_tx.send(text);
        });
        Ok(Decoder {
            codec,
            queue,
            skipping: true,
            ended,
            _tasks: tasks,
        })
    }

    /// The codec this decoder was started for.
    pub(crate) fn codec(&self) -> Codec {
        self.codec
    }

    /// Queues one access unit in Annex B (parameter sets in front of a
    /// keyframe), never waiting.
    pub(crate) fn feed(&mut self, access_unit: Bytes, keyframe: bool) -> Fed {
        if self.skipping && !keyframe {
            return Fed::Dropped;
        }
        match self.queue.try_send(access_unit) {
            Ok(()) => {
                self.skipping = false;
                Fed::Queued
            }
            Err(_) => {
                // Full, or the child is gone (which `ended` reports).
                self.skipping = true;
                Fed::Dropped
            }
        }
    }

    /// Resolves when the decoder has stopped, with why.
    pub(crate) async fn ended(&mut self) -> String {
        (&mut self.ended)
            .await
            .unwrap_or_else(|_| "the ffmpeg decoder stopped".into())
    }
}

/// Reads pictures until the stream ends or breaks, and publishes each;
/// returns why it stopped.
async fn publish_pictures(stdout: ChildStdout, out: &Output) -> String {
    let mut pictures = Y4mReader::new(BufReader::with_capacity(1 << 16, stdout));
    loop {
        match pictures.next_picture().await {
            Ok(Some(picture)) => out.publish_picture(picture),
            Ok(None) => return "its output ended".into(),
            Err(e) => return e.to_string(),
        }
    }
}
