//! The clip recorder of one camera: a ring of the last seconds of frames,
//! and a clip written while motion lasts.
//!
//! - **Pre-roll.** The recorder keeps the last `clip_pre_s` seconds of frames
//!   at `clip_fps` (or the camera's rate when lower), bounded in bytes. The
//!   frames are the camera's own JPEGs, shared by reference: the ring costs
//!   their bytes, never a copy.
//! - **Recording.** When the motion runner reports a start, the clip begins
//!   with the ring and goes on at `clip_fps` while the episode lasts and
//!   `clip_post_s` after it; a new episode in that time extends the same
//!   clip; `clip_max_s` caps it, and motion that goes on past the cap goes
//!   on in a new clip.
//! - **Writing** happens on a thread of its own, fed through a bounded
//!   channel: a slow disk drops clip frames (counted), never delays the
//!   camera, the viewers or the detector.
//! - **A camera's own video.** A camera that sends H.264/H.265 (its
//!   [`VideoFeed`] has a track) records MP4 clips of that stream instead
//!   ([`super::mp4file`]): the pre-roll is a ring of whole GOPs
//!   ([`GopRing`]) from a keyframe at or before `clip_pre_s` before the
//!   motion, and every frame the camera sent goes in (`clip_fps` does not
//!   apply: nothing is re-encoded). A frame the disk could not take in time
//!   drops the rest of its GOP, so what is written always decodes. New
//!   stream parameters end the clip (motion that goes on continues in a new
//!   one). The thumbnail is still the camera's decoded picture.
//!
//! The motion runner talks to [`Recorder`] with plain calls that never block
//! on the disk; the task in [`run`] does the rest.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::gops::GopRing;
use super::{mkv, mp4file, ClipError, ClipInfo, Clips, Kind};
use crate::cam::Cam;
use crate::events::EventKind;
use crate::frame::Frame;
use crate::settings::Settings;
use crate::video::{Next, Packet, Reader, Track, VideoFeed};

/// The most bytes of frames the pre-roll ring holds, whatever the settings
/// (30 s of 720p at 10 fps is about 40 MB; the default 5 s about 7 MB).
pub const MAX_RING_BYTES: u64 = 48 * 1024 * 1024;
/// Frames waiting for the writer thread at most (a few seconds).
const QUEUE: usize = 64;
/// How often the recorder looks at the clock with no frame coming (the
/// post-roll must end even when the camera died).
const TICK: Duration = Duration::from_millis(250);
/// How often a clip being written is pushed to the disk.
const SYNC_EVERY: Duration = Duration::from_secs(5);
/// How often retention runs without a new clip (age limits).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The clip settings of a camera, copied out of [`Settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipParams {
    /// Whether clips are recorded.
    pub record: bool,
    /// Seconds kept before the motion start.
    pub pre_s: u32,
    /// Seconds recorded after the motion end.
    pub post_s: u32,
    /// Frames per second at most.
    pub fps: u32,
    /// Longest clip, seconds.
    pub max_s: u32,
}

impl From<&Settings> for ClipParams {
    fn from(s: &Settings) -> Self {
        ClipParams {
            record: s.record_clips,
            pre_s: s.clip_pre_s,
            post_s: s.clip_post_s,
            fps: s.clip_fps,
            max_s: s.clip_max_s,
        }
    }
}

/// The clip being recorded, as the motion runner sees it.
#[derive(Debug)]
struct Active {
    name: String,
    url: String,
    /// When motion started: the pre-roll counts back from here.
    asked: Instant,
    /// Whether an episode is under way (no post-roll deadline yet).
    motion: bool,
    /// When the post-roll ends.
    until: Option<Instant>,
    /// The clip's first frame (pre-roll included), once the writer started.
    first: Option<Instant>,
    /// The frame with the highest score, for the thumbnail.
    best: Option<(f32, Arc<Frame>)>,
    /// What the file is.
    kind: Kind,
}

/// One camera's recorder, shared by the motion runner, `/status` and the
/// task in [`run`].
pub struct Recorder {
    clips: Arc<Clips>,
    /// The camera's own video, when it sends some: MP4 clips of it.
    video: Option<Arc<VideoFeed>>,
    active: Mutex<Option<Active>>,
    wake: Notify,
    ring_frames: AtomicU64,
    ring_bytes: AtomicU64,
    ring_ms: AtomicU64,
    saved: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// What `/status` says about clips.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClipStatus {
    /// The clip being recorded (its URL once it is saved).
    pub recording: Option<String>,
    /// Frames in the pre-roll ring.
    pub buffer_frames: u64,
    /// Their bytes.
    pub buffer_bytes: u64,
    /// The time they span.
    pub buffer_s: f64,
    /// Clips saved since start.
    pub saved: u64,
    /// Clips that failed since start.
    pub failed: u64,
    /// Frames left out of clips because the disk was too slow.
    pub dropped_frames: u64,
}

impl Recorder {
    /// A recorder saving into `clips`.
    pub fn new(clips: Clips) -> Recorder {
        Recorder {
            clips: Arc::new(clips),
            video: None,
            active: Mutex::new(None),
            wake: Notify::new(),
            ring_frames: AtomicU64::new(0),
            ring_bytes: AtomicU64::new(0),
            ring_ms: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Records MP4 clips of `feed` (the camera's main stream) once it has
    /// a track.
    pub fn with_video(mut self, feed: Option<Arc<VideoFeed>>) -> Recorder {
        self.video = feed;
        self
    }

    /// The clip folder.
    pub fn clips(&self) -> &Arc<Clips> {
        &self.clips
    }

    /// Motion started: returns the URL of the clip that records it (a new
    /// one, or the one still in its post-roll), or `None` when clips are off.
    pub fn motion_started(&self, p: ClipParams) -> Option<String> {
        if !p.record {
            return None;
        }
        let mut active = crate::sync::lock(&self.active);
        let url = match active.as_mut() {
            Some(a) => {
                a.motion = true;
                a.until = None;
                a.url.clone()
            }
            None => {
                let a = self.new_active();
                let url = a.url.clone();
                *active = Some(a);
                url
            }
        };
        drop(active);
        self.wake.notify_one();
        Some(url)
    }

    /// A clip for motion under way from now on, with a new name: an MP4
    /// when the camera's own video is known, else a Matroska of JPEGs.
    fn new_active(&self) -> Active {
        let kind = match &self.video {
            Some(feed) if feed.track().is_some() => Kind::Mp4,
            _ => Kind::Mkv,
        };
        let name = self.clips.allocate(SystemTime::now(), kind);
        Active {
            kind,
            url: self.clips.url(&name),
            name,
            asked: Instant::now(),
            motion: true,
            until: None,
            first: None,
            best: None,
        }
    }

    /// Motion ended: the post-roll starts. Returns the clip's URL and its
    /// expected length (what is recorded so far plus the post-roll, within
    /// the cap; a new episode in the post-roll makes it longer).
    pub fn motion_ended(&self, p: ClipParams) -> Option<(String, f64)> {
        let mut active = crate::sync::lock(&self.active);
        let a = active.as_mut()?;
        let now = Instant::now();
        a.motion = false;
        a.until = Some(now + Duration::from_secs(p.post_s.into()));
        let so_far = a.first.map_or(0.0, |f| now.duration_since(f).as_secs_f64());
        let expected = (so_far + f64::from(p.post_s)).min(f64::from(p.max_s));
        Some((a.url.clone(), (expected * 10.0).round() / 10.0))
    }

    /// An analysed frame's score during an episode: the best one becomes the
    /// clip's thumbnail (the person in view, not the empty yard at the start).
    pub fn offer(&self, frame: &Arc<Frame>, change: f32) {
        let mut active = crate::sync::lock(&self.active);
        if let Some(a) = active.as_mut().filter(|a| a.motion) {
            if a.best.as_ref().is_none_or(|(c, _)| change > *c) {
                a.best = Some((change, frame.clone()));
            }
        }
    }

    /// What `/status` shows.
    pub fn status(&self) -> ClipStatus {
        ClipStatus {
            recording: crate::sync::lock(&self.active)
                .as_ref()
                .map(|a| a.url.clone()),
            buffer_frames: self.ring_frames.load(Ordering::Relaxed),
            buffer_bytes: self.ring_bytes.load(Ordering::Relaxed),
            buffer_s: self.ring_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            saved: self.saved.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped_frames: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// The last seconds of frames.
#[derive(Default)]
struct Ring {
    frames: VecDeque<Arc<Frame>>,
    bytes: u64,
}

impl Ring {
    /// Adds the newest frame and drops the oldest while the next oldest
    /// still covers `keep` (so the ring spans at least `keep` once it has
    /// had the time) or while the bytes are over the cap.
    fn push(&mut self, frame: Arc<Frame>, keep: Duration) {
        let newest = frame.captured_mono;
        self.bytes += frame.bytes() as u64;
        self.frames.push_back(frame);
        while self.frames.len() > 1 {
            let covered = self
                .frames
                .get(1)
                .is_some_and(|next| newest.duration_since(next.captured_mono) >= keep);
            if !covered && self.bytes <= MAX_RING_BYTES {
                break;
            }
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.bytes() as u64;
            }
        }
    }

    /// The frames from `pre` before `at` on: from the last one taken at or
    /// before `at - pre`, so the clip covers at least `pre` when the ring
    /// does.
    fn since(&self, at: Instant, pre: Duration) -> impl Iterator<Item = &Arc<Frame>> {
        let from = at.checked_sub(pre).unwrap_or(at);
        let skip = self
            .frames
            .iter()
            .rposition(|f| f.captured_mono <= from)
            .unwrap_or(0);
        self.frames.iter().skip(skip)
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    fn span(&self) -> Duration {
        match (self.frames.front(), self.frames.back()) {
            (Some(a), Some(b)) => b.captured_mono.duration_since(a.captured_mono),
            _ => Duration::ZERO,
        }
    }

    /// The frame rate the ring shows, at most `max`.
    fn fps(&self, max: u32) -> u32 {
        let n = self.frames.len();
        let span = self.span().as_secs_f64();
        if n < 3 || span <= 0.0 {
            return max;
        }
        (((n - 1) as f64 / span).round() as u32).clamp(1, max.max(1))
    }
}

/// A clip being written by its thread.
struct Writing {
    tx: SyncSender<Msg>,
    done: oneshot::Receiver<Result<ClipInfo, ClipError>>,
    first: Instant,
    /// The first frame: the upload's picture when no frame scored.
    first_frame: Arc<Frame>,
    kind: Kind,
    /// An MP4 clip lost a frame: the rest of that GOP cannot be decoded
    /// and waits for the next keyframe.
    gap: bool,
}

impl Writing {
    /// Passes a frame on without waiting; false when the queue is full.
    fn send(&self, msg: Msg) -> bool {
        !matches!(self.tx.try_send(msg), Err(TrySendError::Full(_)))
    }

    /// Passes one of the camera's own frames on, keeping what is written
    /// decodable: after a lost frame, nothing until a keyframe.
    fn send_packet(&mut self, packet: &Arc<Packet>, skipped: u64) -> bool {
        if self.kind != Kind::Mp4 {
            return true;
        }
        if skipped > 0 {
            self.gap = true;
        }
        if self.gap && !packet.keyframe {
            return false;
        }
        self.gap = !self.send(Msg::Packet(packet.clone()));
        !self.gap
    }
}

enum Msg {
    Frame(Arc<Frame>),
    Packet(Arc<Packet>),
    /// Finish, with the frame for the thumbnail.
    Finish(Option<Arc<Frame>>),
}

/// What the recorder's loop woke up for.
enum Input {
    Frame(Arc<Frame>),
    Packet(Next),
    Tick,
    Stop,
}

/// The next of the camera's own frames; never, without a feed.
async fn next_packet(reader: &mut Option<Reader>) -> Next {
    match reader {
        Some(r) => r.next().await,
        None => std::future::pending().await,
    }
}

/// Records `cam`'s clips through `rec` until `cancel` fires; the clip under
/// way is finished first.
pub async fn run(cam: Arc<Cam>, rec: Arc<Recorder>, cancel: CancellationToken) {
    let mut frames = cam.subscribe();
    let mut ring = Ring::default();
    let mut gops = GopRing::default();
    let mut reader = rec.video.as_ref().map(|feed| {
        let reader = feed.reader();
        gops.reset(feed.track());
        reader
    });
    let mut last_frame: Option<Arc<Frame>> = None;
    let mut writing: Option<Writing> = None;
    let mut last_kept: Option<Instant> = None;
    let mut last_retention = Instant::now();
    enforce(&cam, &rec).await;
    loop {
        let input = tokio::select! {
            r = frames.changed() => match r {
                Ok(()) => frames.borrow_and_update().clone().map_or(Input::Tick, Input::Frame),
                Err(_) => Input::Stop,
            },
            next = next_packet(&mut reader) => Input::Packet(next),
            _ = rec.wake.notified() => Input::Tick,
            _ = tokio::time::sleep(TICK) => Input::Tick,
            _ = cancel.cancelled() => Input::Stop,
        };
        let p = ClipParams::from(&*cam.settings());
        // Whether this camera's clips are MP4 of its own video (its
        // pictures are then only for thumbnails).
        let own_video = gops.track().is_some();
        let keep = Duration::from_secs(u64::from(p.pre_s) + 1);
        let mut new_track = false;
        match input {
            Input::Stop => break,
            Input::Tick => {}
            Input::Frame(frame) => {
                last_frame = Some(frame.clone());
                let interval = Duration::from_secs_f64(0.8 / f64::from(p.fps.max(1)));
                let due =
                    last_kept.is_none_or(|t| frame.captured_mono.duration_since(t) >= interval);
                if due && p.record {
                    last_kept = Some(frame.captured_mono);
                    if let Some(w) = writing.as_ref().filter(|w| w.kind == Kind::Mkv) {
                        if !w.send(Msg::Frame(frame.clone())) {
                            rec.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // A second more than the pre-roll: the clip starts from
                    // when motion started, which the recorder hears a little
                    // later.
                    if !own_video {
                        ring.push(frame, keep);
                    }
                }
            }
            Input::Packet(Next::Frame { packet, skipped }) => {
                if p.record {
                    if let Some(w) = writing.as_mut() {
                        if !w.send_packet(&packet, skipped) {
                            rec.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    gops.push(packet, keep, MAX_RING_BYTES);
                }
            }
            Input::Packet(Next::TrackChanged) => {
                // New parameters: the frames kept belong to the old ones.
                if let Some(feed) = &rec.video {
                    reader = Some(feed.reader());
                    gops.reset(feed.track());
                }
                new_track = true;
            }
            Input::Packet(Next::Closed) => reader = None,
        }
        if own_video {
            ring.clear();
        }
        if !p.record && writing.is_none() {
            ring.clear();
            let track = gops.track().cloned();
            gops.reset(track);
        }
        let (n, bytes, span) = if own_video {
            (gops.len(), gops.bytes(), gops.span())
        } else {
            (ring.frames.len(), ring.bytes, ring.span())
        };
        rec.ring_frames.store(n as u64, Ordering::Relaxed);
        rec.ring_bytes.store(bytes, Ordering::Relaxed);
        rec.ring_ms
            .store(span.as_millis() as u64, Ordering::Relaxed);

        // Start, or finish, the clip the motion runner asked for.
        let pre = Pre {
            frames: &ring,
            gops: &gops,
            picture: last_frame.as_ref(),
            new_track,
        };
        let (finish, start_failed) = step(&rec, &mut writing, &pre, p);
        if let Some((name, e)) = start_failed {
            failed(&cam, &rec, &name, &e.to_string()).await;
        }
        if let Some(a) = finish {
            if let Some(w) = writing.take() {
                complete(&cam, &rec, w, a).await;
            }
            enforce(&cam, &rec).await;
            last_retention = Instant::now();
        } else if last_retention.elapsed() >= RETENTION_EVERY {
            enforce(&cam, &rec).await;
            last_retention = Instant::now();
        }
    }
    // Shutting down: keep what was recorded.
    let active = crate::sync::lock(&rec.active).take();
    if let (Some(w), Some(a)) = (writing, active) {
        complete(&cam, &rec, w, a).await;
    }
}

/// What a clip starts from.
struct Pre<'a> {
    /// The JPEG frames (Matroska clips).
    frames: &'a Ring,
    /// The camera's own frames (MP4 clips).
    gops: &'a GopRing,
    /// The camera's latest picture (an MP4 clip's first thumbnail).
    picture: Option<&'a Arc<Frame>>,
    /// The camera's stream changed parameters: an MP4 clip ends.
    new_track: bool,
}

/// Starts the writer of a clip asked for, and takes the clip out when it
/// is over (post-roll ended, at its cap, or its stream changed). Returns
/// the clip to finish, and a clip that could not start.
fn step(
    rec: &Recorder,
    writing: &mut Option<Writing>,
    pre: &Pre<'_>,
    p: ClipParams,
) -> (Option<Active>, Option<(String, StartError)>) {
    let mut active = crate::sync::lock(&rec.active);
    let Some(a) = active.as_mut() else {
        return (None, None);
    };
    let now = Instant::now();
    if writing.is_none() {
        match start(&rec.clips, a, pre, p) {
            Ok(w) => {
                a.first = Some(w.first);
                *writing = Some(w);
            }
            // No frame yet: try again at the next one, until the episode
            // and its post-roll are over without any (a dead camera).
            Err(StartError::NoFrame) if a.until.is_none_or(|u| now < u) => return (None, None),
            Err(e) => return (None, active.take().map(|a| (a.name, e))),
        }
    }
    let capped = a
        .first
        .is_some_and(|f| now.duration_since(f) >= Duration::from_secs(p.max_s.into()));
    let post_over = a.until.is_some_and(|u| now >= u);
    if post_over {
        return (active.take(), None);
    }
    let split = pre.new_track && writing.as_ref().is_some_and(|w| w.kind == Kind::Mp4);
    if capped || split {
        // Motion that outlasts the cap goes on in a new clip (with its own
        // pre-roll, so the two overlap rather than leave a gap); its `clip`
        // event announces it.
        let next = a.motion.then(|| rec.new_active());
        let done = active.take();
        *active = next;
        return (done, None);
    }
    (None, None)
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("no frame came from the camera")]
    NoFrame,
    #[error(transparent)]
    Clip(#[from] ClipError),
    #[error("cannot start the clip writer: {0}")]
    Thread(std::io::Error),
}

/// Opens the clip file and starts its writer thread with the pre-roll.
fn start(
    clips: &Arc<Clips>,
    a: &Active,
    pre: &Pre<'_>,
    p: ClipParams,
) -> Result<Writing, StartError> {
    let pre_s = Duration::from_secs(p.pre_s.into());
    let (msgs, first, first_at, format) = match a.kind {
        Kind::Mkv => {
            let frames: Vec<Msg> = pre
                .frames
                .since(a.asked, pre_s)
                .map(|f| Msg::Frame(f.clone()))
                .collect();
            let first = match frames.first() {
                Some(Msg::Frame(f)) => f.clone(),
                _ => return Err(StartError::NoFrame),
            };
            let fps = pre.frames.fps(p.fps);
            let at = first.captured_mono;
            (frames, first, at, Format::Mkv { fps })
        }
        Kind::Mp4 => {
            let (Some(track), Some(picture)) = (pre.gops.track(), pre.picture) else {
                return Err(StartError::NoFrame);
            };
            let packets: Vec<Msg> = pre
                .gops
                .since(a.asked, pre_s)
                .map(|p| Msg::Packet(p.clone()))
                .collect();
            let at = match packets.first() {
                Some(Msg::Packet(p)) => p.received,
                _ => return Err(StartError::NoFrame),
            };
            let format = Format::Mp4 {
                track: track.clone(),
            };
            (packets, picture.clone(), at, format)
        }
    };
    let name = a.name.as_str();
    let file = clips.create(name)?;
    let (tx, rx) = sync_channel(QUEUE + msgs.len());
    for m in msgs {
        let _ = tx.try_send(m);
    }
    let (done_tx, done) = oneshot::channel();
    let clips = clips.clone();
    let job = Job {
        clips: clips.clone(),
        name: name.to_string(),
        first: first.clone(),
        format,
    };
    let spawned = std::thread::Builder::new()
        .name("clip-writer".into())
        .spawn(move || {
            let _ = done_tx.send(job.run(file, rx));
        });
    if let Err(e) = spawned {
        clips.discard(name);
        return Err(StartError::Thread(e));
    }
    Ok(Writing {
        tx,
        done,
        first: first_at,
        first_frame: first,
        kind: a.kind,
        gap: false,
    })
}

/// Sends the finish and announces the result.
async fn complete(cam: &Cam, rec: &Recorder, w: Writing, a: Active) {
    let thumb = a.best.map(|(_, f)| f);
    let picture = thumb.clone().unwrap_or_else(|| w.first_frame.clone());
    let _ = w.tx.send(Msg::Finish(thumb));
    drop(w.tx);
    let result = match w.done.await {
        Ok(r) => r,
        Err(_) => Err(ClipError::io(
            format!("clip {} writer stopped", a.name),
            std::io::Error::other("writer thread ended"),
        )),
    };
    match result {
        Ok(info) => {
            rec.saved.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "clip {} saved: {} frames, {:.1} s, {} KB",
                info.name,
                info.frames,
                info.duration_s,
                info.bytes / 1024
            );
            let saved = Saved {
                ok: true,
                info: &info,
            };
            match cam.publish(EventKind::Clip, &saved).await {
                Ok(event) => {
                    // Its name was checked when it was allocated; the queue's
                    // link fails clearly should the file be gone.
                    let path = rec.clips.dir().join(&info.name);
                    cam.queue_clip(path, picture.jpeg_async().await, event.data_with_kind())
                        .await;
                }
                Err(e) => tracing::error!("cannot record clip event: {e}"),
            }
        }
        Err(e) => failed(cam, rec, &a.name, &e.to_string()).await,
    }
}

/// The `clip` event of a saved clip.
#[derive(serde::Serialize)]
struct Saved<'a> {
    ok: bool,
    #[serde(flatten)]
    info: &'a ClipInfo,
}

async fn failed(cam: &Cam, rec: &Recorder, name: &str, error: &str) {
    rec.failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!("clip {name} failed: {error}");
    let data = json!({"ok": false, "name": name, "error": error});
    if let Err(e) = cam.publish(EventKind::Clip, &data).await {
        tracing::error!("cannot record clip event: {e}");
    }
}

/// Applies the camera's retention of clips and segments.
async fn enforce(cam: &Cam, rec: &Recorder) {
    apply_retention(cam, rec.clips.clone()).await;
}

/// Applies `cam`'s retention to `clips` and its segments, logging what went.
pub(super) async fn apply_retention(cam: &Cam, clips: Arc<Clips>) {
    let (pool, segments_age) = super::retention(&cam.settings());
    match tokio::task::spawn_blocking(move || clips.enforce(pool, segments_age)).await {
        Ok(Ok(removed)) => {
            if !removed.clips.is_empty() {
                tracing::info!("clip retention removed {} clip(s)", removed.clips.len());
            }
            if !removed.segments.is_empty() {
                tracing::info!(
                    "recording retention removed {} segment(s), oldest {}",
                    removed.segments.len(),
                    removed.segments[0]
                );
            }
        }
        Ok(Err(e)) => tracing::warn!("clip retention: {e}"),
        Err(_) => {}
    }
}

/// The writer thread's work: one clip.
struct Job {
    clips: Arc<Clips>,
    name: String,
    /// The first JPEG frame: the thumbnail when none scored.
    first: Arc<Frame>,
    format: Format,
}

/// How a clip is written.
enum Format {
    /// Matroska of the JPEG frames at this rate.
    Mkv { fps: u32 },
    /// MP4 of the camera's own frames of this track.
    Mp4 { track: Arc<Track> },
}

impl Job {
    fn run(self, file: std::fs::File, rx: Receiver<Msg>) -> Result<ClipInfo, ClipError> {
        let result = self.write(file, &rx);
        if result.is_err() {
            self.clips.discard(&self.name);
            // Drain what is still coming, so the sender never blocks.
            while let Ok(msg) = rx.recv() {
                if matches!(msg, Msg::Finish(_)) {
                    break;
                }
            }
        }
        result
    }

    fn write(&self, file: std::fs::File, rx: &Receiver<Msg>) -> Result<ClipInfo, ClipError> {
        let thumb = match &self.format {
            Format::Mkv { fps } => self.write_mkv(file, *fps, rx),
            Format::Mp4 { track } => self.write_mp4(file, track, rx),
        }
        .map_err(|err| ClipError::io(format!("cannot write clip {}", self.name), err))?;
        let info = self.clips.publish(&self.name)?;
        let picture = thumb.unwrap_or_else(|| self.first.clone());
        self.clips.save_thumb(&self.name, &picture.jpeg());
        Ok(info)
    }

    /// Writes the JPEG frames as Matroska; returns the thumbnail's frame.
    fn write_mkv(
        &self,
        file: std::fs::File,
        fps: u32,
        rx: &Receiver<Msg>,
    ) -> std::io::Result<Option<Arc<Frame>>> {
        let first = &self.first;
        let mut w = mkv::Writer::new(
            file,
            first.width.into(),
            first.height.into(),
            fps,
            first.captured_at,
        )?;
        let mut last_sync = Instant::now();
        let mut thumb = None;
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Frame(f) => {
                    let t = f
                        .captured_mono
                        .saturating_duration_since(first.captured_mono);
                    w.write_frame(t.as_millis() as u64, &f.jpeg())?;
                    if last_sync.elapsed() >= SYNC_EVERY {
                        w.sync()?;
                        last_sync = Instant::now();
                    }
                }
                Msg::Packet(_) => {}
                Msg::Finish(best) => {
                    thumb = best;
                    break;
                }
            }
        }
        w.finish()?;
        Ok(thumb)
    }

    /// Writes the camera's own frames as fragmented MP4; returns the
    /// thumbnail's frame. A thumbnail is saved at once, for a clip a crash
    /// cuts short (its pictures would need a decoder).
    fn write_mp4(
        &self,
        file: std::fs::File,
        track: &Track,
        rx: &Receiver<Msg>,
    ) -> std::io::Result<Option<Arc<Frame>>> {
        let mut w = mp4file::Writer::new(file, track)?;
        self.clips.save_thumb(&self.name, &self.first.jpeg());
        let mut last_sync = Instant::now();
        let mut thumb = None;
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Packet(packet) => {
                    w.write(&packet)?;
                    if last_sync.elapsed() >= SYNC_EVERY {
                        w.sync()?;
                        last_sync = Instant::now();
                    }
                }
                Msg::Frame(_) => {}
                Msg::Finish(best) => {
                    thumb = best;
                    break;
                }
            }
        }
        w.finish()?;
        Ok(thumb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(at: Instant, bytes: usize) -> Arc<Frame> {
        Arc::new(Frame::for_test(
            at,
            bytes::Bytes::from(vec![0u8; bytes]),
            16,
            16,
        ))
    }

    /// A recorder on a fresh folder (kept while the folder lives).
    fn recorder() -> (tempfile::TempDir, Recorder) {
        let dir = tempfile::tempdir().unwrap();
        let clips = Clips::open(dir.path().join("c"), "/clips".into()).unwrap();
        (dir, Recorder::new(clips))
    }

    fn pre<'a>(ring: &'a Ring, gops: &'a GopRing) -> Pre<'a> {
        Pre {
            frames: ring,
            gops,
            picture: None,
            new_track: false,
        }
    }

    fn params(pre_s: u32, post_s: u32, max_s: u32) -> ClipParams {
        ClipParams {
            record: true,
            pre_s,
            post_s,
            fps: 10,
            max_s,
        }
    }

    #[test]
    fn the_ring_keeps_its_seconds_and_its_bytes() {
        let t0 = Instant::now();
        let mut ring = Ring::default();
        for i in 0..100u64 {
            ring.push(
                frame(t0 + Duration::from_millis(i * 100), 1000),
                Duration::from_secs(5),
            );
        }
        assert_eq!(ring.frames.len(), 51);
        assert_eq!(ring.span(), Duration::from_secs(5));
        assert_eq!(ring.bytes, 51_000);
        let newest = t0 + Duration::from_millis(9900);
        let pre: Vec<_> = ring.since(newest, Duration::from_millis(2050)).collect();
        assert_eq!(
            pre.len(),
            22,
            "from 7.8 s: the last frame at or before 7.85 s"
        );
        assert_eq!(ring.fps(30), 10);
        assert_eq!(ring.fps(4), 4);
        let big = (MAX_RING_BYTES / 4) as usize;
        for i in 0..10u64 {
            ring.push(
                frame(t0 + Duration::from_secs(20) + Duration::from_millis(i), big),
                Duration::from_secs(5),
            );
        }
        assert!(ring.bytes <= MAX_RING_BYTES);
        assert_eq!(ring.frames.len(), 4);
    }

    #[test]
    fn an_episode_in_the_post_roll_extends_the_clip() {
        let (_dir, rec) = recorder();
        let p = params(5, 5, 120);
        let url = rec.motion_started(p).unwrap();
        assert!(url.starts_with("/clips/motion-"));
        let (ended, expected) = rec.motion_ended(p).unwrap();
        assert_eq!(ended, url);
        assert_eq!(expected, 5.0);
        assert_eq!(rec.motion_started(p).unwrap(), url);
        assert!(rec
            .motion_started(ClipParams { record: false, ..p })
            .is_none());
    }

    #[test]
    fn motion_past_the_cap_goes_on_in_a_new_clip() {
        let (_dir, rec) = recorder();
        let p = params(0, 5, 0);
        let url = rec.motion_started(p).unwrap();
        let mut ring = Ring::default();
        ring.push(frame(Instant::now(), 100), Duration::from_secs(1));
        let mut writing = None;
        let gops = GopRing::default();
        let (done, failed) = step(&rec, &mut writing, &pre(&ring, &gops), p);
        assert!(failed.is_none());
        assert!(url.ends_with(&done.expect("capped").name));
        let next = rec.status().recording.expect("a new clip");
        assert_ne!(next, url);
        assert!(
            writing.is_some(),
            "the capped clip's writer, for the caller to finish"
        );
        // Once the motion has ended, a capped clip is not followed by another.
        rec.motion_ended(p);
        let (done, _) = step(&rec, &mut None, &pre(&ring, &gops), p);
        assert!(done.is_some());
        assert!(rec.status().recording.is_none());
    }

    #[test]
    fn new_stream_parameters_end_an_mp4_clip_and_motion_goes_on_in_a_new_one() {
        let (_dir, rec) = recorder();
        let feed = VideoFeed::new();
        feed.set_track(Track {
            codec: "avc1.4D401F".into(),
            sample_entry: bytes::Bytes::from_static(&[0, 0, 0, 8, b'a', b'v', b'c', b'1']),
            width: 320,
            height: 240,
            timescale: 90_000,
        });
        let rec = rec.with_video(Some(feed.clone()));
        let p = params(1, 5, 120);
        let url = rec.motion_started(p).unwrap();
        assert!(url.ends_with(".mp4"), "{url}");
        let ring = Ring::default();
        let mut gops = GopRing::default();
        gops.reset(feed.track());
        gops.push(
            Arc::new(Packet {
                data: bytes::Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
                keyframe: true,
                pts: 0,
                received: Instant::now(),
                received_at: SystemTime::now(),
            }),
            Duration::from_secs(2),
            MAX_RING_BYTES,
        );
        let picture = frame(Instant::now(), 100);
        let mut pre = Pre {
            frames: &ring,
            gops: &gops,
            picture: Some(&picture),
            new_track: false,
        };
        let mut writing = None;
        assert!(matches!(step(&rec, &mut writing, &pre, p), (None, None)));
        assert!(writing.as_ref().is_some_and(|w| w.kind == Kind::Mp4));
        pre.new_track = true;
        let (done, failed) = step(&rec, &mut writing, &pre, p);
        assert!(failed.is_none());
        assert!(url.ends_with(&done.expect("ended").name));
        let next = rec.status().recording.expect("a new clip");
        assert_ne!(next, url);
    }

    #[test]
    fn an_episode_without_any_frame_ends_its_clip_as_failed() {
        let (_dir, rec) = recorder();
        let p = params(5, 0, 120);
        let url = rec.motion_started(p).unwrap();
        let mut writing = None;
        let ring = Ring::default();
        let gops = GopRing::default();
        let pre = pre(&ring, &gops);
        // While the episode lasts, it waits for a frame.
        assert!(matches!(step(&rec, &mut writing, &pre, p), (None, None)));
        rec.motion_ended(p);
        let (done, failed) = step(&rec, &mut writing, &pre, p);
        assert!(done.is_none() && writing.is_none());
        let (name, e) = failed.expect("failed");
        assert!(url.ends_with(&name), "{url} {name}");
        assert!(matches!(e, StartError::NoFrame));
        // The next episode gets a clip of its own.
        assert_ne!(rec.motion_started(p).unwrap(), url);
    }
}
