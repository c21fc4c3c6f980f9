//! The motion runner: feeds the latest frame to the [`Detector`] at a capped
//! rate, off the async executor, and turns its results into events.
//!
//! It always analyses the newest frame and never queues: when analysis falls
//! behind, frames in between are skipped. When motion starts it counts one
//! trigger (persisted), saves a snapshot (when `save_on_motion`) and publishes
//! `motion` (with the changed area, the moving blobs' boxes and the zones they
//! touch, and the clip that records it); when the episode ends it publishes
//! `motion_end`. The current score, area and boxes go out as transient
//! `level` events, at most twice a second, for the dashboard's graph and
//! motion tuner.

pub mod blobs;
pub mod check;
pub mod detector;
pub mod image;
pub mod pace;
pub mod replay;
#[cfg(test)]
pub(crate) mod test_rng;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use detector::{Analysis, Detector, MotionParams, Transition};

use tokio_util::sync::CancellationToken;

use crate::alert::Alerts;
use crate::cam::{Cam, SnapshotError};
use crate::clips::recorder::{ClipParams, Recorder};
use crate::events::{EventKind, Level, Motion, MotionEnd};
use crate::settings::Settings;
use crate::snaps::Trigger;
use check::PersonCheck;

/// Most `level` events per second (a graph needs no more; SSE clients on
/// phones should not wake more often).
const LEVEL_EVERY: Duration = Duration::from_millis(500);
/// With no new frame for this long, the detector is still ticked so an
/// episode ends even when the camera died mid-motion.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Detector parameters from the runtime settings.
pub fn params(s: &Settings) -> MotionParams {
    MotionParams {
        threshold: s.threshold,
        min_frames: s.min_frames,
        cooldown: Duration::from_secs(u64::from(s.cooldown_s)),
        lightswitch_percent: s.lightswitch_percent,
        mask: s.mask.clone(),
        zones: s.zones.clone(),
        required_zones: s.required_zones.clone(),
    }
}

/// What the runner drives: the camera, its recorder and its person check.
struct Episode<'a> {
    cam: &'a Arc<Cam>,
    recorder: &'a Recorder,
    check: &'a Arc<PersonCheck>,
}

/// Runs until `cancel` fires. The one place where a motion episode drives
/// the camera (counts, snapshots, events, uploads), the clip recorder and
/// the person check.
pub async fn run(
    cam: Arc<Cam>,
    recorder: Arc<Recorder>,
    check: Arc<PersonCheck>,
    cancel: CancellationToken,
) {
    let ep = Episode {
        cam: &cam,
        recorder: &recorder,
        check: &check,
    };
    let detector = Arc::new(Mutex::new(Detector::new()));
    let mut frames = cam.subscribe();
    let mut last_level = Instant::now() - LEVEL_EVERY;
    let mut last_seq = 0;
    let mut pace = pace::Pace::default();
    let mut peak = 0.0f32;
    loop {
        let settings = cam.settings();
        let p = params(&settings);
        let changed = tokio::select! {
            r = tokio::time::timeout(IDLE_TICK, frames.changed()) => r,
            _ = cancel.cancelled() => return,
        };
        let frame = match changed {
            Ok(Ok(())) => frames.borrow_and_update().clone(),
            Ok(Err(_)) => return,
            Err(_) => {
                let ended = lock(&detector).tick(std::time::Instant::now(), &p);
                if let Some(t) = ended {
                    cam.motion_ended();
                    ep.transition(t, None, None).await;
                }
                continue;
            }
        };
        let Some(frame) = frame else { continue };
        if frame.seq == last_seq {
            continue;
        }
        // Frames replaced unseen since the last one looked at.
        let skipped = frame.seq.saturating_sub(last_seq + 1);
        last_seq = frame.seq;
        let at = frame.captured_mono;
        // The cap on analyses a second (lower while nothing moves).
        let slot = lock(&detector).interval(settings.motion_fps);
        if !pace.allows(at, slot) {
            continue;
        }
        cam.analyses_missed(pace.missed(at, slot, skipped));
        let det = detector.clone();
        let input = frame.clone();
        let analysed = tokio::task::spawn_blocking(move || {
            let timer = std::time::Instant::now();
            // A decoded picture's luma is read as it is; a JPEG is decoded.
            let a = match input.picture() {
                Some(pic) => Ok(lock(&det).analyse_luma(
                    pic.luma(),
                    usize::from(pic.width()),
                    usize::from(pic.height()),
                    at,
                    &p,
                )),
                None => lock(&det).analyse(&input.jpeg(), at, &p),
            };
            (a, timer.elapsed())
        })
        .await;
        match analysed {
            Ok((Ok(a), took)) => {
                cam.analysed(took.as_secs_f64(), a.change, a.active);
                peak = peak.max(a.change);
                if last_level.elapsed() >= LEVEL_EVERY {
                    last_level = Instant::now();
                    cam.publish_transient(
                        EventKind::Level,
                        &Level {
                            change: round1(a.change),
                            peak: round1(peak),
                            active: a.active,
                            threshold: settings.threshold,
                            area: round2(a.area),
                            boxes: round_boxes(&a.boxes),
                        },
                    );
                    peak = 0.0;
                }
                if let Some(t) = a.transition {
                    ep.transition(t, Some(&a), Some(&settings)).await;
                }
                if a.active {
                    recorder.offer(&frame, a.change);
                    check::offer(&cam, &check, &frame, &a.boxes, &settings);
                }
            }
            Ok((Err(e), _)) => tracing::debug!("motion: {e}"),
            Err(e) => tracing::error!("motion analysis task failed: {e}"),
        }
        // Sleep out the time in which no frame would be analysed, rather
        // than wake for each.
        let slot = lock(&detector).interval(settings.motion_fps);
        pace.analysed(at, slot);
        if let Some(until) = pace.idle_until(slot) {
            tokio::select! {
                _ = tokio::time::sleep_until(Instant::from_std(until)) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }
}

fn lock(d: &Mutex<Detector>) -> std::sync::MutexGuard<'_, Detector> {
    crate::sync::lock(d)
}

impl Episode<'_> {
    /// An episode started or ended.
    async fn transition(
        &self,
        t: Transition,
        frame: Option<&Analysis>,
        settings: Option<&Settings>,
    ) {
        match t {
            Transition::Started { change } => self.started(change, frame, settings).await,
            Transition::Ended { duration, peak } => self.ended(duration, peak).await,
        }
    }

    /// Counts the episode, starts its clip, saves its snapshot and publishes
    /// `motion`, uploading the frame when episodes alert at their start.
    async fn started(&self, c: f32, frame: Option<&Analysis>, settings: Option<&Settings>) {
        let cam = self.cam;
        self.check.episode_started();
        let count = match cam.add_trigger().await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("cannot save the trigger count: {e}");
                cam.trigger_count()
            }
        };
        let mut data = Motion {
            count,
            change: round1(frame.map_or(c, |a| a.change.max(c))),
            area: frame.map_or(0.0, |a| round2(a.area)),
            boxes: frame.map(|a| round_boxes(&a.boxes)).unwrap_or_default(),
            zones: frame.map(|a| a.zones.clone()).unwrap_or_default(),
            snapshot: None,
            clip: self
                .recorder
                .motion_started(ClipParams::from(&*cam.settings())),
        };
        if settings.is_some_and(|s| s.save_on_motion) {
            match cam.save_snapshot(Trigger::Motion).await {
                Ok(info) => data.snapshot = Some(info.url),
                Err(SnapshotError::NoFrame) => {}
                Err(e) => tracing::warn!("motion snapshot failed: {e}"),
            }
        }
        tracing::info!("motion started (trigger {count})");
        let frame = cam.latest_frame();
        match cam.publish(EventKind::Motion, &data).await {
            // With alerts on people, the `person` event uploads the frame
            // that shows one instead.
            Ok(event) if self.alerts().upload_motion_frame() => {
                if let Some(frame) = frame {
                    let payload = event.data_with_kind();
                    cam.queue_upload_of(&frame, payload, false).await;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot record motion event: {e}"),
        }
    }

    /// Starts the clip's post-roll, takes the check's verdict and publishes
    /// `motion_end`, calling the webhook when the episode alerted.
    async fn ended(&self, duration: Duration, peak: f32) {
        let cam = self.cam;
        let clip = self
            .recorder
            .motion_ended(ClipParams::from(&*cam.settings()));
        let verdict = self.check.episode_ended();
        let data = MotionEnd {
            person: verdict.map(|v| v.person),
            person_max_score: verdict.map(|v| (f64::from(v.max_score) * 1000.0).round() / 1000.0),
            count: cam.trigger_count(),
            duration_s: round1(duration.as_secs_f32()),
            peak: round1(peak),
            clip_duration_s: clip.as_ref().map(|c| c.1),
            clip: clip.map(|c| c.0),
        };
        match cam.publish(EventKind::MotionEnd, &data).await {
            // The webhook gets what was stored (with its `ts`) and the kind,
            // as for `motion`.
            Ok(event) if self.alerts().webhook_episode_end(verdict.map(|v| v.person)) => {
                cam.queue_webhook(event.data_with_kind()).await;
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot record motion_end event: {e}"),
        }
    }

    /// The camera's alert rules now.
    fn alerts(&self) -> Alerts {
        Alerts::new(&self.cam.settings(), self.check.available())
    }
}

/// Boxes for events: 4 decimals, not the 17 digits an `f32` widened to JSON
/// would show (`0.20399999618530273`).
fn round_boxes(boxes: &[[f32; 4]]) -> Vec<[f64; 4]> {
    boxes
        .iter()
        .map(|b| b.map(|v| (f64::from(v) * 10_000.0).round() / 10_000.0))
        .collect()
}

fn round2(x: f32) -> f64 {
    (f64::from(x) * 100.0).round() / 100.0
}

fn round1(x: f32) -> f64 {
    (f64::from(x) * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_boxes_have_four_decimals() {
        let boxes = round_boxes(&[[0.204, 0.615, 0.138, 1.0]]);
        assert_eq!(boxes, vec![[0.204, 0.615, 0.138, 1.0]]);
        assert_eq!(
            serde_json::to_string(&boxes).unwrap(),
            "[[0.204,0.615,0.138,1.0]]"
        );
    }
}
