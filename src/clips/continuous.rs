//! Continuous recording (`record = "continuous"`): every frame of the
//! camera's own H.264/H.265, untouched, in segments of `segment_s` seconds
//! ([`super::segments`]), beside the event clips.
//!
//! A segment starts at a keyframe and ends at the first keyframe after its
//! length, so each one plays alone. It also ends where the stream has a
//! gap (frames stopped for [`GAP`], the reader fell behind and skipped, or
//! the disk could not keep up), so a segment's start plus a player's time
//! is the time of day everywhere in it; the next one starts at the next
//! keyframe. New stream parameters end it too.
//!
//! The writing is a blocking thread per segment, fed through a bounded
//! queue; finishing one (sync, length, name, retention) happens beside the
//! reading, so the next segment loses no frame to it.
//!
//! Only a camera that sends H.264/H.265 (an `rtsp://` source) records
//! continuously: a camera of JPEGs would fill a disk in hours (about 1 MB/s
//! at 720p), and `/status` says so when asked for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::segments::{SegmentInfo, Segments};
use super::{mp4file, ClipError, Clips};
use crate::cam::Cam;
use crate::settings::Record;
use crate::video::{Next, Packet, Track, VideoFeed};

/// Frames stopping this long end the segment (a camera gone, a stall).
pub const GAP: Duration = Duration::from_secs(3);
/// Frames queued for the disk at most (about 8 s at 15 fps): past that the
/// segment ends and the next starts at a keyframe.
const QUEUE: usize = 120;
/// How often what was written is pushed to the disk.
const SYNC_EVERY: Duration = Duration::from_secs(2);
/// How often the task looks at the settings and for a silent stream.
const TICK: Duration = Duration::from_millis(500);
/// After a segment could not be started (a full disk), the wait before the
/// next try.
const RETRY: Duration = Duration::from_secs(10);

/// One camera's continuous recording, as `/status` sees it.
#[derive(Default)]
pub struct Continuous {
    /// Whether the camera sends video that can be recorded.
    available: bool,
    /// The segment being written: its start (unix ms).
    recording: Mutex<Option<u64>>,
    saved: AtomicU64,
    failed: AtomicU64,
    /// Segments ended early by a gap in the stream or a slow disk.
    gaps: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// What `/status` says about continuous recording.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordingStatus {
    /// `events` or `continuous`, as set.
    pub mode: Record,
    /// `off` (events only), `recording`, `waiting` (for the stream or its
    /// next keyframe) or `unavailable` (a camera of JPEGs).
    pub state: &'static str,
    /// Why it is unavailable, or the last failure.
    pub error: Option<String>,
    /// When the segment being written began (unix seconds): it is listed
    /// once it ends.
    pub since: Option<f64>,
    /// Segment length, seconds.
    pub segment_s: u32,
    /// Segments saved since start.
    pub saved: u64,
    /// Segments that failed since start.
    pub failed: u64,
    /// Segments ended early by a gap in the stream or a slow disk.
    pub gaps: u64,
}

impl Continuous {
    /// The recording of a camera; `available` when it sends H.264/H.265.
    pub fn new(available: bool) -> Continuous {
        Continuous {
            available,
            ..Continuous::default()
        }
    }

    /// Its state under `mode` (the camera's setting now); `codec` is what
    /// the main stream was found to send (`/status`'s `stream.codec`), if
    /// known: an RTSP camera may send MJPEG.
    pub fn status(&self, mode: Record, segment_s: u32, codec: Option<&str>) -> RecordingStatus {
        let since = *crate::sync::lock(&self.recording);
        let recording = since.is_some();
        let available = self.available && codec != Some("jpeg");
        let (state, error) = match (mode, available) {
            (Record::Events, _) => ("off", None),
            (Record::Continuous, false) => (
                "unavailable",
                Some(
                    "continuous recording needs a camera that sends H.264 or H.265 \
                     (an rtsp:// source); this one sends JPEGs"
                        .to_string(),
                ),
            ),
            (Record::Continuous, true) => (
                if recording { "recording" } else { "waiting" },
                crate::sync::lock(&self.last_error).clone(),
            ),
        };
        RecordingStatus {
            mode,
            state,
            error,
            since: since
                .filter(|_| mode == Record::Continuous)
                .map(|ms| ms as f64 / 1000.0),
            segment_s,
            saved: self.saved.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
        }
    }

    fn fail(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!("recording: {error}");
        *crate::sync::lock(&self.last_error) = Some(error);
    }
}

/// The segment being written.
struct Segment {
    start: u64,
    began: Instant,
    last: Instant,
    tx: SyncSender<Arc<Packet>>,
    done: JoinHandle<Result<(), ClipError>>,
}

/// Records `feed` (the camera's main stream) while `cam`'s `record`
/// setting is `continuous`, until `cancel` fires; the segment under way is
/// finished first.
pub async fn run(
    cam: Arc<Cam>,
    clips: Arc<Clips>,
    feed: Arc<VideoFeed>,
    status: Arc<Continuous>,
    cancel: CancellationToken,
) {
    let mut reader = feed.reader();
    let mut current: Option<Segment> = None;
    let mut finishing = JoinSet::new();
    let mut retry_at: Option<Instant> = None;
    loop {
        let next = tokio::select! {
            next = reader.next() => Some(next),
            _ = tokio::time::sleep(TICK) => None,
            _ = cancel.cancelled() => break,
        };
        // Reap what finished meanwhile.
        while finishing.try_join_next().is_some() {}
        let settings = cam.settings();
        let on = settings.record == Record::Continuous;
        let length = Duration::from_secs(u64::from(settings.segment_s));
        let packet = match next {
            None => {
                if current
                    .as_ref()
                    .is_some_and(|s| !on || s.last.elapsed() > GAP)
                {
                    end(&cam, &clips, &status, &mut current, &mut finishing);
                }
                continue;
            }
            Some(Next::Closed) => break,
            Some(Next::TrackChanged) => {
                end(&cam, &clips, &status, &mut current, &mut finishing);
                reader = feed.reader();
                continue;
            }
            Some(Next::Frame { packet, skipped }) => {
                let gap = skipped > 0
                    || current
                        .as_ref()
                        .is_some_and(|s| packet.received.saturating_duration_since(s.last) > GAP);
                if current.is_some() && (gap || !on) {
                    if gap {
                        status.gaps.fetch_add(1, Ordering::Relaxed);
                    }
                    end(&cam, &clips, &status, &mut current, &mut finishing);
                }
                packet
            }
        };
        if !on {
            continue;
        }
        if packet.keyframe
            && current
                .as_ref()
                .is_some_and(|s| packet.received.saturating_duration_since(s.began) >= length)
        {
            end(&cam, &clips, &status, &mut current, &mut finishing);
        }
        if current.is_none() {
            if !packet.keyframe || retry_at.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            let Some(track) = feed.track() else { continue };
            match begin(clips.segments(), &track, &packet) {
                Ok(segment) => {
                    retry_at = None;
                    *crate::sync::lock(&status.recording) = Some(segment.start);
                    current = Some(segment);
                }
                Err(e) => {
                    retry_at = Some(Instant::now() + RETRY);
                    status.fail(e.to_string());
                    continue;
                }
            }
        }
        let Some(segment) = current.as_mut() else {
            continue;
        };
        segment.last = packet.received;
        match segment.tx.try_send(packet) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // The disk is behind: end here, whole, and start again at
                // the next keyframe.
                status.gaps.fetch_add(1, Ordering::Relaxed);
                end(&cam, &clips, &status, &mut current, &mut finishing);
            }
            // The writer failed; its error is reported when it is finished.
            Err(TrySendError::Disconnected(_)) => {
                end(&cam, &clips, &status, &mut current, &mut finishing);
                retry_at = Some(Instant::now() + RETRY);
            }
        }
    }
    end(&cam, &clips, &status, &mut current, &mut finishing);
    while finishing.join_next().await.is_some() {}
}

/// Starts a segment at keyframe `first` of `track`.
fn begin(segments: &Segments, track: &Arc<Track>, first: &Packet) -> Result<Segment, ClipError> {
    let (start, file) = segments.create(first.received_at)?;
    let (tx, rx) = sync_channel(QUEUE);
    let track = track.clone();
    let dir = segments.dir().to_path_buf();
    let done = tokio::task::spawn_blocking(move || {
        write(file, &track, &rx).map_err(|err| {
            ClipError::io(format!("cannot write recording in {}", dir.display()), err)
        })
    });
    Ok(Segment {
        start,
        began: first.received,
        last: first.received,
        tx,
        done,
    })
}

/// The writer thread: every frame queued, in order, until the queue closes.
fn write(file: std::fs::File, track: &Track, rx: &Receiver<Arc<Packet>>) -> std::io::Result<()> {
    let mut w = mp4file::Writer::new(file, track)?;
    let mut last_sync = Instant::now();
    while let Ok(packet) = rx.recv() {
        w.write(&packet)?;
        if last_sync.elapsed() >= SYNC_EVERY {
            w.sync()?;
            last_sync = Instant::now();
        }
    }
    w.finish()
}

/// Ends the segment under way, if any: its writer finishes, and it is named
/// and retention applied beside the reading.
fn end(
    cam: &Arc<Cam>,
    clips: &Arc<Clips>,
    status: &Arc<Continuous>,
    current: &mut Option<Segment>,
    finishing: &mut JoinSet<()>,
) {
    let Some(segment) = current.take() else {
        return;
    };
    *crate::sync::lock(&status.recording) = None;
    let Segment {
        start, tx, done, ..
    } = segment;
    drop(tx);
    let (cam, clips, status) = (cam.clone(), clips.clone(), status.clone());
    finishing.spawn(async move {
        let written = done.await.unwrap_or_else(|e| {
            Err(ClipError::io(
                "recording writer stopped",
                std::io::Error::other(e.to_string()),
            ))
        });
        let published = {
            let clips = clips.clone();
            tokio::task::spawn_blocking(move || match written {
                Ok(()) => clips.segments().publish(start),
                Err(e) => {
                    clips.segments().discard(start);
                    Err(e)
                }
            })
            .await
        };
        match published {
            Ok(Ok(Some(info))) => saved(&status, &info),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => status.fail(e.to_string()),
            Err(e) => status.fail(format!("recording writer stopped: {e}")),
        }
        super::recorder::apply_retention(&cam, clips).await;
    });
}

fn saved(status: &Continuous, info: &SegmentInfo) {
    status.saved.fetch_add(1, Ordering::Relaxed);
    *crate::sync::lock(&status.last_error) = None;
    tracing::debug!(
        "recording {} saved: {:.1} s, {} KB",
        info.name,
        info.duration_s,
        info.bytes / 1024
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_of_jpegs_says_why_it_cannot_record_continuously() {
        let jpegs = Continuous::new(false);
        assert_eq!(jpegs.status(Record::Events, 300, None).state, "off");
        let s = jpegs.status(Record::Continuous, 300, None);
        assert_eq!(s.state, "unavailable");
        assert!(s.error.is_some_and(|e| e.contains("H.264")));
        let video = Continuous::new(true);
        let s = video.status(Record::Continuous, 60, Some("h264"));
        assert_eq!((s.state, s.segment_s, s.error), ("waiting", 60, None));
        *crate::sync::lock(&video.recording) = Some(1_500);
        let s = video.status(Record::Continuous, 60, Some("h264"));
        assert_eq!((s.state, s.since), ("recording", Some(1.5)));
        assert_eq!(video.status(Record::Events, 60, None).since, None);
        // An RTSP camera that turns out to send MJPEG.
        let s = video.status(Record::Continuous, 60, Some("jpeg"));
        assert_eq!(s.state, "unavailable");
    }
}
