//! `file:PATH`: an MJPEG file or a folder of `.jpg` files, replayed in a loop.
//!
//! Useful for demos, for tests and for replaying a recording to tune the motion
//! threshold.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{interval, Interval, MissedTickBehavior};

use super::error::SourceError;
use super::mjpeg::FrameReader;
use super::output::Output;
use crate::frame::MAX_FRAME_BYTES;

/// Replays `path` at `fps` forever.
pub async fn run(path: &Path, fps: u32, out: &Output) -> Result<(), SourceError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| SourceError::File(format!("cannot read {}: {e}", path.display())))?;
    let mut ticker = interval(Duration::from_secs_f64(1.0 / f64::from(fps.max(1))));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    if meta.is_dir() {
        run_folder(path, &mut ticker, out).await
    } else {
        loop {
            replay_mjpeg(path, &mut ticker, out).await?;
        }
    }
}

async fn run_folder(dir: &Path, ticker: &mut Interval, out: &Output) -> Result<(), SourceError> {
    loop {
        let files = list_jpegs(dir).await?;
        if files.is_empty() {
            return Err(SourceError::File(format!(
                "no .jpg files in {}; add some or point file: at an MJPEG file",
                dir.display()
            )));
        }
        for file in files {
            ticker.tick().await;
            match read_capped(&file).await {
                Ok(Some(data)) => out.publish_one(data),
                Ok(None) => out.reject(&format_args!(
                    "{}: larger than {MAX_FRAME_BYTES} bytes",
                    file.display()
                )),
                // A file removed while we replay is skipped, not fatal.
                Err(e) => tracing::warn!("cannot read {}: {e}", file.display()),
            }
        }
    }
}

/// The file's bytes, or `None` when it is larger than [`MAX_FRAME_BYTES`]
/// (only that much plus one byte is read, whatever its size).
///
/// One trip to the blocking pool per file: `tokio::fs::File` makes one per
/// read, and `read_to_end` grows its buffer in many small reads, so a 120 KB
/// frame cost a dozen thread hand-offs (at 30 fps, more CPU in wake-ups than
/// in reading).
async fn read_capped(path: &Path) -> std::io::Result<Option<Bytes>> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let file = std::fs::File::open(&path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        let cap = MAX_FRAME_BYTES as u64 + 1;
        let mut data = Vec::with_capacity(size.min(cap) as usize + 1);
        file.take(cap).read_to_end(&mut data)?;
        Ok((data.len() <= MAX_FRAME_BYTES).then(|| Bytes::from(data)))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The folder's `.jpg`/`.jpeg` files in name order (re-read each loop, so new
/// files join the replay).
async fn list_jpegs(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let err = |e: std::io::Error| SourceError::File(format!("cannot list {}: {e}", dir.display()));
    let mut entries = tokio::fs::read_dir(dir).await.map_err(err)?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(err)? {
        let path = entry.path();
        let is_jpeg = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
        if is_jpeg {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Plays the MJPEG file once.
async fn replay_mjpeg(path: &Path, ticker: &mut Interval, out: &Output) -> Result<(), SourceError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| SourceError::File(format!("cannot open {}: {e}", path.display())))?;
    let mut reader = FrameReader::new(file);
    let mut frames = 0u64;
    loop {
        match reader.next_frame().await {
            Ok(Some(jpeg)) => {
                ticker.tick().await;
                out.publish(jpeg);
                frames += 1;
            }
            Ok(None) => break,
            Err(e) if e.is_bad_data() => {
                out.reject(&format_args!("{}: {e}", path.display()));
            }
            Err(e) => {
                return Err(SourceError::File(format!(
                    "reading {}: {e}",
                    path.display()
                )));
            }
        }
    }
    if frames == 0 {
        return Err(SourceError::File(format!(
            "no JPEG frames in {}; is it an MJPEG file?",
            path.display()
        )));
    }
    Ok(())
}
