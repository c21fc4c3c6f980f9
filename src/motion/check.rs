//! The person check: whether what moved in a motion episode is a person.
//!
//! Pixel motion also fires on clouds, shadows, trees, rain and cats. During
//! an episode the analysed frame goes to the [`PersonDetector`] at most
//! `person_checks_per_s` times a second, one check at a time per camera, on
//! the checks' own thread ([`PersonWorker`]). When a check is still running
//! the next one is dropped, never queued: a slow check makes checks rarer,
//! it never makes them late or slows the stream. The first person found confirms the episode: that
//! very frame is saved as a snapshot and a `person` event goes out. Checks
//! stop for the rest of a confirmed episode (a Raspberry Pi has no CPU to
//! spare for answers already known).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::alert::Alerts;
use crate::cam::Cam;
use crate::events::PersonSeen;
use crate::frame::Frame;
use crate::person::{Person, PersonDetector, PersonError};
use crate::settings::Settings;
use crate::snaps::Trigger;

/// Margin around the motion boxes, as a fraction of their size: a blob is
/// often a moving arm or legs, and the detector needs the whole body.
const MARGIN: f32 = 0.5;
/// The detector's input side: a crop smaller than this gains nothing.
const INPUT: f32 = 416.0;
/// When the boxes' region covers more than this fraction of the frame, the
/// whole frame is checked.
const LARGE: f32 = 0.4;

/// The checks' thread runs at this nice value (the streams, the commands
/// and the detector run at the server's, 0): on a busy machine the kernel
/// gives the check what the rest leaves, so a check makes the answers to
/// viewers and commands no later. A check then takes longer, which the
/// check's rules already allow (a busy check drops the next one).
pub const NICE: i32 = 10;

/// How many checks may wait for the worker: one per camera at most (a
/// camera has one check in flight), so this bounds the wait behind other
/// cameras' checks. A check offered when it is full is dropped.
const QUEUE: usize = 4;

/// The person checks' own thread, shared by every camera.
///
/// Every check runs on this one thread, one after another, with the model
/// loaded there when the first check comes (loading optimizes the model, a
/// moment a server start should not pay before anything moves). One thread
/// because a check's working memory (tens of MB of activations) then stays
/// in one allocator arena: spread over the blocking pool's changing threads
/// it held one arena each and the resident size grew by hundreds of MB in
/// a soak. It also leaves the other cores to the streams.
#[derive(Clone, Default)]
pub struct PersonWorker(Arc<WorkerInner>);

#[derive(Default)]
struct WorkerInner {
    /// The way to the thread, started on first use; `None` if it could not
    /// start.
    queue: OnceLock<Option<SyncSender<Job>>>,
    /// The model failed to load (logged once): the check is unavailable.
    /// Shared with the thread alone, not the queue: the thread holding its
    /// own sender would never see the channel close, and would outlive the
    /// server with the model.
    failed: Arc<AtomicBool>,
}

/// One check for the worker.
struct Job {
    frame: Arc<Frame>,
    region: Option<[f32; 4]>,
    min_score: f32,
    reply: oneshot::Sender<Result<(Vec<Person>, Duration), PersonError>>,
}

/// Why a check did not run.
enum NotRun {
    /// The queue is full: dropped like any check that finds the camera busy.
    Full,
    /// No worker: it could not start, or the model did not load.
    Unavailable,
}

impl PersonWorker {
    /// Hands a check to the worker, starting it if needed.
    fn submit(&self, job: Job) -> Result<(), NotRun> {
        let queue = self.0.queue.get_or_init(|| {
            let (tx, rx) = sync_channel(QUEUE);
            let failed = self.0.failed.clone();
            match std::thread::Builder::new()
                .name("person".into())
                .spawn(move || work(&failed, &rx))
            {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::error!(
                        "the person check is unavailable: cannot start its thread: {e}"
                    );
                    self.0.failed.store(true, Ordering::Relaxed);
                    None
                }
            }
        });
        let Some(queue) = queue else {
            return Err(NotRun::Unavailable);
        };
        match queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(NotRun::Full),
            Err(TrySendError::Disconnected(_)) => Err(NotRun::Unavailable),
        }
    }

    /// Whether the check turned out to be unavailable (the model did not
    /// load).
    fn failed(&self) -> bool {
        self.0.failed.load(Ordering::Relaxed)
    }
}

/// The worker thread: loads the model, then runs checks until every camera
/// is gone. A panic in a check fails that check (its reply is dropped), not
/// the thread.
fn work(failed: &AtomicBool, jobs: &Receiver<Job>) {
    // Linux's nice is per thread: `None` is this thread alone.
    if let Err(e) = rustix::process::setpriority_process(None, NICE) {
        tracing::warn!("the person check runs at the server's priority: cannot lower it: {e}");
    }
    let detector = match PersonDetector::load() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("the person check is unavailable: {e}");
            failed.store(true, Ordering::Relaxed);
            return;
        }
    };
    while let Ok(job) = jobs.recv() {
        let Job {
            frame,
            region,
            min_score,
            reply,
        } = job;
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let started = Instant::now();
            // A decoded picture is read as it is, never through a JPEG.
            match frame.picture() {
                Some(picture) => detector.detect_rgb(picture.to_rgb(), region, min_score),
                None => detector.detect_jpeg(&frame.jpeg(), region, min_score),
            }
            .map(|found| (found, started.elapsed()))
        }));
        match ran {
            Ok(result) => {
                // The camera may be gone; nothing to do then.
                let _ = reply.send(result);
            }
            Err(_) => tracing::error!("a person check panicked"),
        }
    }
}

/// One camera's person check state.
pub struct PersonCheck {
    /// `None` when this build has no check.
    worker: Option<PersonWorker>,
    /// Whether checks are taken (a detector is there; tests of the timing
    /// rules set it without one).
    available: bool,
    /// A check is running (at most one per camera).
    busy: Arc<AtomicBool>,
    episode: Mutex<Episode>,
    checks: AtomicU64,
    dropped: AtomicU64,
    /// How long the last check took, microseconds.
    last_us: AtomicU64,
}

/// The current (or last) motion episode, as the check sees it.
#[derive(Debug, Default)]
struct Episode {
    /// Increases with each episode, so a check that outlives its episode
    /// cannot confirm the next one.
    seq: u64,
    active: bool,
    /// Whether any check ran in it.
    checked: bool,
    confirmed: bool,
    max_score: f32,
    last_check: Option<Instant>,
}

/// The check's part of `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct PersonStatus {
    /// Whether this build has the check and its model loaded.
    pub available: bool,
    /// The `person_check` setting (false when not available).
    pub enabled: bool,
    /// Episodes with a person since the last reset.
    pub person_count: u64,
    /// Checks run since start.
    pub checks: u64,
    /// Checks skipped because the previous one was still running.
    pub dropped: u64,
    /// How long the last check took, milliseconds.
    pub last_check_ms: Option<f64>,
    /// Whether the episode under way holds a person (`None`: no episode).
    pub episode_person: Option<bool>,
}

/// What an episode's end says of people in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeVerdict {
    /// A person was confirmed.
    pub person: bool,
    /// The best person score of its checks.
    pub max_score: f32,
}

/// A check that is due: the slot is held until it is dropped.
pub struct Due {
    seq: u64,
    _busy: BusyGuard,
}

/// Clears the busy flag however the check ends (a panic in the detector
/// included), so a camera's checks can never stop for good.
struct BusyGuard(Arc<AtomicBool>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl PersonCheck {
    /// A check on `worker`'s thread (none: not available).
    pub fn new(worker: Option<PersonWorker>) -> Self {
        PersonCheck {
            available: worker.is_some(),
            worker,
            busy: Arc::new(AtomicBool::new(false)),
            episode: Mutex::new(Episode::default()),
            checks: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
        }
    }

    /// Whether checks can run.
    pub fn available(&self) -> bool {
        self.available && !self.worker.as_ref().is_some_and(PersonWorker::failed)
    }

    /// A motion episode started.
    pub fn episode_started(&self) {
        let mut e = crate::sync::lock(&self.episode);
        *e = Episode {
            seq: e.seq + 1,
            active: true,
            ..Episode::default()
        };
    }

    /// A motion episode ended: what the checks found, when any ran.
    pub fn episode_ended(&self) -> Option<EpisodeVerdict> {
        let mut e = crate::sync::lock(&self.episode);
        e.active = false;
        e.checked.then_some(EpisodeVerdict {
            person: e.confirmed,
            max_score: e.max_score,
        })
    }

    /// Whether the episode under way has a confirmed person.
    pub fn episode_person(&self) -> Option<bool> {
        let e = crate::sync::lock(&self.episode);
        e.active.then_some(e.confirmed)
    }

    /// Takes the slot for a check when one is due now: an episode is under
    /// way and not yet confirmed, the rate allows it, and no check runs.
    pub fn due(&self, settings: &Settings, now: Instant) -> Option<Due> {
        if !self.available() || !settings.person_check {
            return None;
        }
        let mut e = crate::sync::lock(&self.episode);
        if !e.active || e.confirmed {
            return None;
        }
        let every = Duration::from_secs_f64(1.0 / f64::from(settings.person_checks_per_s.max(1)));
        if e.last_check.is_some_and(|t| now.duration_since(t) < every) {
            return None;
        }
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        e.last_check = Some(now);
        e.checked = true;
        Some(Due {
            seq: e.seq,
            _busy: BusyGuard(self.busy.clone()),
        })
    }

    /// Records a finished check; true when it confirms its episode (the
    /// first person of the episode, which is still under way).
    fn finished(&self, seq: u64, best: Option<f32>, took: Duration, found: bool) -> bool {
        self.checks.fetch_add(1, Ordering::Relaxed);
        self.last_us
            .store(took.as_micros() as u64, Ordering::Relaxed);
        let mut e = crate::sync::lock(&self.episode);
        if e.seq != seq {
            return false;
        }
        if let Some(score) = best {
            e.max_score = e.max_score.max(score);
        }
        if found && !e.confirmed {
            e.confirmed = true;
            return true;
        }
        false
    }

    /// Checks that were due but not run (one still running, or the queue
    /// full).
    pub fn skipped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The `/status` part, with the camera's `person_count`.
    pub fn status(&self, settings: &Settings, person_count: u64) -> PersonStatus {
        let last = self.last_us.load(Ordering::Relaxed);
        PersonStatus {
            available: self.available(),
            enabled: self.available() && settings.person_check,
            person_count,
            checks: self.checks.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            last_check_ms: (last > 0).then(|| (last as f64 / 100.0).round() / 10.0),
            episode_person: self.episode_person(),
        }
    }
}

/// Offers an analysed frame of `cam`'s episode to its `check`: when one is
/// due, it runs in the background and this returns at once.
pub fn offer(
    cam: &Arc<Cam>,
    check: &Arc<PersonCheck>,
    frame: &Arc<Frame>,
    boxes: &[[f32; 4]],
    settings: &Arc<Settings>,
) {
    let Some(due) = check.due(settings, Instant::now()) else {
        return;
    };
    let Some(worker) = check.worker.clone() else {
        return;
    };
    let (reply, answer) = oneshot::channel();
    let job = Job {
        frame: frame.clone(),
        region: region(boxes, frame.width, frame.height),
        // Anything with a score worth remembering as the episode's best,
        // not only what passes `min_score`.
        min_score: (settings.person_min_score as f32).min(0.3),
        reply,
    };
    match worker.submit(job) {
        Ok(()) => {}
        Err(NotRun::Full) => {
            check.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(NotRun::Unavailable) => return,
    }
    let cam = cam.clone();
    let check = check.clone();
    let frame = frame.clone();
    let min_score = settings.person_min_score as f32;
    tokio::spawn(
        async move {
            let (people, took) = match answer.await {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => {
                    tracing::debug!("person check: {e}");
                    return;
                }
                // The check panicked (logged by the worker) or the worker is gone.
                Err(_) => return,
            };
            cam.person_checked(took.as_secs_f64());
            let best = people.first().map(|p| p.score);
            let confirmed: Vec<Person> = people
                .into_iter()
                .filter(|p| p.score >= min_score)
                .collect();
            let seq = due.seq;
            drop(due);
            if check.finished(seq, best, took, !confirmed.is_empty()) {
                confirm(&cam, &frame, &confirmed, check.available()).await;
            }
        }
        .in_current_span(),
    );
}

/// The first person of an episode: snapshot of that frame, `person` event
/// (with the count, in one transaction), and the alert when alerts are on
/// people.
async fn confirm(cam: &Arc<Cam>, frame: &Arc<Frame>, people: &[Person], available: bool) {
    let Some(best) = people.first() else { return };
    let settings = cam.settings();
    let snapshot = if settings.save_on_motion {
        match cam.save_snapshot_of(frame, Trigger::Person).await {
            Ok(info) => Some(info.url),
            Err(e) => {
                tracing::warn!("person snapshot failed: {e}");
                None
            }
        }
    } else {
        None
    };
    let body = PersonSeen {
        count: 0,
        people: people.len(),
        score: round3(best.score),
        r#box: best
            .bbox
            .map(|v| (f64::from(v) * 10_000.0).round() / 10_000.0),
        snapshot,
    };
    tracing::info!("person seen (score {:.2})", best.score);
    match cam.person_seen(body).await {
        Ok(event) => {
            if Alerts::new(&settings, available).upload_person_frame() {
                cam.queue_upload_of(frame, event.data_with_kind(), false)
                    .await;
            }
        }
        Err(e) => tracing::error!("cannot record person event: {e}"),
    }
}

/// The part of the frame to check, normalized `[x, y, w, h]`: the motion
/// boxes with a margin, made square in pixels (the detector's input is
/// square) and at least the detector's input size, so a far person is seen
/// at the camera's full resolution. `None` (the whole frame) when there are
/// no boxes, or when the region would cover much of the frame anyway (large
/// boxes, or a small camera such as 640x480).
pub fn region(boxes: &[[f32; 4]], width: u16, height: u16) -> Option<[f32; 4]> {
    let (fw, fh) = (f32::from(width), f32::from(height));
    if boxes.is_empty() || fw <= 0.0 || fh <= 0.0 {
        return None;
    }
    let x0 = boxes.iter().map(|b| b[0]).fold(f32::MAX, f32::min) * fw;
    let y0 = boxes.iter().map(|b| b[1]).fold(f32::MAX, f32::min) * fh;
    let x1 = boxes.iter().map(|b| b[0] + b[2]).fold(f32::MIN, f32::max) * fw;
    let y1 = boxes.iter().map(|b| b[1] + b[3]).fold(f32::MIN, f32::max) * fh;
    let (w, h) = (x1 - x0, y1 - y0);
    let side = (w.max(h) * (1.0 + 2.0 * MARGIN)).max(INPUT);
    if side * side > LARGE * fw * fh || side >= fw.min(fh) {
        return None;
    }
    // Centred on the boxes, moved back inside the frame.
    let cx = ((x0 + x1) / 2.0 - side / 2.0).clamp(0.0, fw - side);
    let cy = ((y0 + y1) / 2.0 - side / 2.0).clamp(0.0, fh - side);
    Some([cx / fw, cy / fh, side / fw, side / fh])
}

fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_and_large_boxes_are_checked_whole() {
        assert_eq!(region(&[[0.1, 0.1, 0.05, 0.1]], 640, 480), None);
        assert!(region(&[[0.1, 0.1, 0.05, 0.1]], 768, 576).is_some());
        assert_eq!(region(&[], 1920, 1080), None);
        assert_eq!(region(&[[0.1, 0.1, 0.6, 0.6]], 1920, 1080), None);
    }

    #[test]
    fn a_small_blob_gets_a_square_region_around_it_inside_the_frame() {
        // A 60x120 px blob at (1800, 900) of a 1920x1080 frame.
        let b = [
            1800.0 / 1920.0,
            900.0 / 1080.0,
            60.0 / 1920.0,
            120.0 / 1080.0,
        ];
        let r = region(&[b], 1920, 1080).unwrap();
        let px = [r[0] * 1920.0, r[1] * 1080.0, r[2] * 1920.0, r[3] * 1080.0];
        // At least the detector's input, square in pixels.
        assert!(
            (px[2] - 416.0).abs() < 0.5 && (px[3] - 416.0).abs() < 0.5,
            "{px:?}"
        );
        // Pushed back inside the frame, still holding the blob.
        assert!(px[0] + px[2] <= 1920.5 && px[1] + px[3] <= 1080.5, "{px:?}");
        assert!(px[0] <= 1800.0 && px[1] <= 900.0, "{px:?}");
    }

    #[test]
    fn boxes_are_joined_with_a_margin() {
        let r = region(
            &[[0.30, 0.30, 0.05, 0.05], [0.40, 0.35, 0.05, 0.05]],
            3840,
            2160,
        )
        .unwrap();
        // Union 0.30..0.45 wide = 576 px; with the margin, 1152 px.
        assert!((r[2] * 3840.0 - 1152.0).abs() < 1.0, "{r:?}");
        assert!(
            r[0] * 3840.0 < 0.30 * 3840.0 && (r[0] + r[2]) > 0.45,
            "{r:?}"
        );
    }

    fn settings() -> Settings {
        Settings {
            person_check: true,
            person_checks_per_s: 2,
            ..Settings::default()
        }
    }

    #[test]
    fn without_a_detector_nothing_is_due() {
        let check = PersonCheck::new(None);
        check.episode_started();
        assert!(check.due(&settings(), Instant::now()).is_none());
        assert_eq!(check.episode_ended(), None);
    }

    #[test]
    fn one_check_at_a_time_rate_capped_and_only_in_an_episode() {
        let check = PersonCheck {
            available: true,
            ..PersonCheck::new(None)
        };
        let s = settings();
        let t0 = Instant::now();
        assert!(check.due(&s, t0).is_none(), "no episode");
        check.episode_started();
        let first = check.due(&s, t0).expect("due at the start");
        // Busy: the next is dropped, not queued.
        assert!(check.due(&s, t0 + Duration::from_secs(1)).is_none());
        assert_eq!(check.dropped.load(Ordering::Relaxed), 1);
        assert!(!check.finished(first.seq, Some(0.2), Duration::from_millis(40), false));
        drop(first);
        // Free again, but within 1/2 s of the last check.
        assert!(check.due(&s, t0 + Duration::from_millis(300)).is_none());
        let second = check.due(&s, t0 + Duration::from_millis(600)).expect("due");
        assert!(check.finished(second.seq, Some(0.8), Duration::from_millis(40), true));
        drop(second);
        // Confirmed: no more checks in this episode.
        assert!(check.due(&s, t0 + Duration::from_secs(5)).is_none());
        assert_eq!(check.episode_person(), Some(true));
        let verdict = check.episode_ended().unwrap();
        assert!(verdict.person && (verdict.max_score - 0.8).abs() < 1e-6);
        // A check that outlives its episode confirms nothing.
        check.episode_started();
        let late = check.due(&s, t0 + Duration::from_secs(6)).expect("due");
        check.episode_started();
        assert!(!check.finished(late.seq, Some(0.9), Duration::ZERO, true));
        drop(late);
        assert_eq!(check.episode_person(), Some(false));
    }

    #[test]
    fn a_panicking_check_frees_the_slot() {
        let check = PersonCheck {
            available: true,
            ..PersonCheck::new(None)
        };
        check.episode_started();
        let t0 = Instant::now();
        let due = check.due(&settings(), t0).unwrap();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = due;
            panic!("detector failed");
        }));
        assert!(check
            .due(&settings(), t0 + Duration::from_secs(1))
            .is_some());
    }
}
