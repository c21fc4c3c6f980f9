//! Which frames the detector analyses: at most `motion_fps` a second (fewer
//! while nothing moves, see [`super::Detector::interval`]), judged by the
//! frames' capture times.
//!
//! The runner used to sleep one slot after each analysis, counted from when
//! it woke. A camera sending exactly `motion_fps` frames a second (10 fps at
//! the default 10) then lost frames: each wake-up came a little after its
//! frame (a timer rounds up to the next millisecond, a busy core adds more),
//! the lateness added up from slot to slot, and once it reached a frame
//! interval that frame was already replaced by the next: about one frame in
//! a hundred on a quiet machine, more on a busy one. Here the slots follow a
//! schedule of their own, so lateness never adds up, and a frame a little
//! early for its slot (capture jitter) still counts. The replay of the
//! regression footage ([`super::replay`]) uses the same rule.

use std::time::{Duration, Instant};

/// When the next frame may be analysed.
#[derive(Debug, Default, Clone)]
pub struct Pace {
    due: Option<Instant>,
}

impl Pace {
    /// Whether a frame captured at `at` is analysed, given the current
    /// `slot` (the time between two analyses). A frame up to a fifth of a
    /// slot early for its slot counts.
    pub fn allows(&self, at: Instant, slot: Duration) -> bool {
        self.due.is_none_or(|due| at + slot / 5 >= due)
    }

    /// Records the analysis of the frame captured at `at`; `slot` is the time
    /// to the next one (as the detector wants it after this frame). The next
    /// slot is one slot after this one's: lateness does not move it. After a
    /// pause (no frame for a while) the schedule restarts from the frame, so
    /// that a burst after it is not analysed back to back.
    pub fn analysed(&mut self, at: Instant, slot: Duration) {
        self.due = Some(match self.due {
            // More than a slot past due: a pause, not lateness.
            Some(due) if at <= due + slot => due + slot,
            _ => at + slot,
        });
    }

    /// How many frames the detector wanted and did not get before the frame
    /// captured at `at`, which it is about to analyse: the whole slots that
    /// passed since the one due (each had a frame, or the camera paused), at
    /// most `skipped`, the frames that came in between and were replaced
    /// unseen while the previous analysis ran. A camera faster than the cap,
    /// or one that paused, misses nothing: only an analysis that took longer
    /// than its slot (a busy core) does. This is what says whether a machine
    /// carries its cameras, whatever the detector's own rate.
    pub fn missed(&self, at: Instant, slot: Duration, skipped: u64) -> u64 {
        let Some(due) = self.due else { return 0 };
        if slot.is_zero() {
            return 0;
        }
        let late = (at + slot / 5).saturating_duration_since(due);
        let slots = (late.as_nanos() / slot.as_nanos()) as u64;
        slots.min(skipped)
    }

    /// Until when nothing new can be analysed (to sleep out, not to wake for
    /// every skipped frame): a fifth of `slot` before the next slot.
    pub fn idle_until(&self, slot: Duration) -> Option<Instant> {
        self.due.map(|due| due.checked_sub(slot / 5).unwrap_or(due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames at `fps` with up to `jitter_ms` of lateness each (a fixed
    /// pattern); how many of `n` the pace analyses at `slot`.
    fn analysed(fps: f64, jitter_ms: &[u64], n: usize, slot: Duration) -> usize {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        let mut count = 0;
        for i in 0..n {
            let late = Duration::from_millis(jitter_ms[i % jitter_ms.len()]);
            let at = t0 + Duration::from_secs_f64(i as f64 / fps) + late;
            if pace.allows(at, slot) {
                pace.analysed(at, slot);
                count += 1;
            }
        }
        count
    }

    const TENTH: Duration = Duration::from_millis(100);

    #[test]
    fn a_camera_at_the_cap_has_every_frame_analysed_despite_jitter() {
        assert_eq!(analysed(10.0, &[0], 600, TENTH), 600);
        // Late and early by up to 15 ms, in a pattern that would have added
        // up with a sleep counted from each wake-up.
        assert_eq!(analysed(10.0, &[3, 15, 0, 9, 1], 600, TENTH), 600);
    }

    #[test]
    fn faster_cameras_are_capped_at_the_rate() {
        // 60 s of 30 fps: 10 a second.
        let n = analysed(30.0, &[0, 2, 1], 1800, TENTH);
        assert!((595..=601).contains(&n), "{n}");
        // 15 fps is not a multiple: still 10 a second on average, not 7.5.
        let n = analysed(15.0, &[0], 900, TENTH);
        assert!((595..=601).contains(&n), "{n}");
        // And the idle rate: 1 in 2 of a 10 fps camera.
        let n = analysed(10.0, &[0, 4], 600, 2 * TENTH);
        assert!((299..=301).contains(&n), "{n}");
    }

    /// Frames of a 10 fps camera through an analyser that takes `took` per
    /// frame and always gets the newest: (analysed, missed).
    fn busy(took: Duration, fps: f64, n: u64, slot: Duration) -> (u64, u64) {
        let t0 = Instant::now();
        let frame_at = |i: u64| t0 + Duration::from_secs_f64(i as f64 / fps);
        let mut pace = Pace::default();
        let (mut analysed, mut missed) = (0, 0);
        let mut free = t0;
        let mut last: Option<u64> = None;
        for i in 0..n {
            let at = frame_at(i);
            // Replaced unseen: a newer frame came before the analyser was free.
            if i + 1 < n && frame_at(i + 1) <= free {
                continue;
            }
            let skipped = last.map_or(0, |l| i - l - 1);
            last = Some(i);
            if !pace.allows(at, slot) {
                continue;
            }
            missed += pace.missed(at, slot, skipped);
            pace.analysed(at, slot);
            analysed += 1;
            free = at.max(free) + took;
        }
        (analysed, missed)
    }

    #[test]
    fn only_an_analysis_slower_than_its_slot_misses_frames() {
        // Quick analyses: every frame of a 10 fps camera, none missed; a
        // 30 fps camera skips two in three and misses nothing either.
        assert_eq!(busy(Duration::from_millis(5), 10.0, 600, TENTH), (600, 0));
        let (n, missed) = busy(Duration::from_millis(5), 30.0, 1800, TENTH);
        assert!((595..=601).contains(&n) && missed == 0, "{n} {missed}");
        // Nor at the idle rate.
        assert_eq!(busy(Duration::from_millis(5), 10.0, 600, 2 * TENTH).1, 0);
        // 150 ms an analysis at 10 fps: two in three analysed, the third
        // missed, and the two add up to the frames.
        let (n, missed) = busy(Duration::from_millis(150), 10.0, 600, TENTH);
        assert!((395..=405).contains(&n), "{n}");
        assert!((n + missed).abs_diff(600) <= 2, "{n} + {missed}");
    }

    #[test]
    fn a_pause_is_not_missed_frames() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        assert_eq!(pace.missed(t0, TENTH, 5), 0, "nothing due yet");
        pace.analysed(t0, TENTH);
        // Ten seconds later, no frame came in between.
        assert_eq!(pace.missed(t0 + Duration::from_secs(10), TENTH, 0), 0);
        // On time, with frames replaced in between (a faster camera).
        assert_eq!(pace.missed(t0 + TENTH, TENTH, 2), 0);
        // Three slots late with three frames replaced: the two slots between.
        assert_eq!(pace.missed(t0 + 3 * TENTH, TENTH, 3), 2);
    }

    #[test]
    fn after_a_pause_the_schedule_restarts_from_the_frame() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.analysed(t0, TENTH);
        // Ten seconds without frames, then a burst 30 ms apart.
        let back = t0 + Duration::from_secs(10);
        assert!(pace.allows(back, TENTH));
        pace.analysed(back, TENTH);
        assert!(!pace.allows(back + Duration::from_millis(30), TENTH));
        assert!(!pace.allows(back + Duration::from_millis(70), TENTH));
        assert!(pace.allows(back + Duration::from_millis(80), TENTH));
        assert_eq!(
            pace.idle_until(TENTH),
            Some(back + Duration::from_millis(80))
        );
    }
}
