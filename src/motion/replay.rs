//! Replays a recorded MJPEG stream through a [`Detector`], frame by frame at
//! the stream's frame rate, without waiting in real time: how the detector is
//! calibrated and regression-tested on real footage, and how a user can see
//! what a setting would have done with a recording of their own yard.

use std::time::{Duration, Instant};

use super::detector::{Analysis, Detector, MotionParams, Transition};
use super::pace::Pace;
use crate::source::mjpeg::MjpegSplitter;

/// One motion episode found in a replay, in seconds from the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    /// Time of the frame that started it (after `min_frames`).
    pub started_s: f64,
    /// Time of the frame that ended it (after the cooldown), if it ended.
    pub ended_s: Option<f64>,
    /// Highest score in the episode (known once it ended).
    pub peak: f32,
}

/// What a replay saw: every frame's analysis and the episodes.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Analysis of each decodable frame, with its time in seconds.
    pub frames: Vec<(f64, Analysis)>,
    /// Frames that could not be decoded.
    pub undecodable: usize,
    /// The episodes, in order.
    pub episodes: Vec<Episode>,
    /// CPU time spent analysing (decode included), when the platform says.
    pub cpu: Option<Duration>,
}

impl Replay {
    /// The highest score seen between `from_s` and `to_s` (inclusive).
    pub fn peak_between(&self, from_s: f64, to_s: f64) -> f32 {
        self.frames
            .iter()
            .filter(|(t, _)| (from_s..=to_s).contains(t))
            .map(|(_, a)| a.change)
            .fold(0.0, f32::max)
    }
}

/// Runs every JPEG of the MJPEG bytes `stream` through a fresh detector as if
/// they arrived at `fps`, analysing every `step`-th frame (1 = all; 10 fps
/// footage analysed at the default `motion_fps` of 10 uses 1), and, as the
/// server does, fewer while nothing moves ([`Detector::interval`]).
pub fn replay(stream: &[u8], fps: f64, step: usize, params: &MotionParams) -> Replay {
    let mut splitter = MjpegSplitter::new();
    splitter.push(stream);
    let mut detector = Detector::new();
    let mut out = Replay::default();
    let t0 = Instant::now();
    let cpu0 = thread_cpu();
    let mut index = 0usize;
    let rate = (fps / step.max(1) as f64).round().max(1.0) as u32;
    // Which frames are analysed: the server's rule.
    let mut pace = Pace::default();
    while let Ok(Some(jpeg)) = splitter.next_frame() {
        let i = index;
        index += 1;
        let secs = i as f64 / fps;
        let at = t0 + Duration::from_secs_f64(secs);
        if !i.is_multiple_of(step.max(1)) || !pace.allows(at, detector.interval(rate)) {
            continue;
        }
        match detector.analyse(&jpeg, at, params) {
            Ok(a) => {
                match a.transition {
                    Some(Transition::Started { .. }) => out.episodes.push(Episode {
                        started_s: secs,
                        ended_s: None,
                        peak: 0.0,
                    }),
                    Some(Transition::Ended { peak, .. }) => {
                        if let Some(e) = out.episodes.last_mut() {
                            e.ended_s = Some(secs);
                            e.peak = peak;
                        }
                    }
                    None => {}
                }
                out.frames.push((secs, a));
            }
            Err(_) => out.undecodable += 1,
        }
        pace.analysed(at, detector.interval(rate));
    }
    out.cpu = thread_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    out
}

/// CPU time of the calling thread, from /proc (Linux); None elsewhere. The
/// replay, the detector's timing test and the footage bench measure with it.
pub fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// How a list of episodes compares with the spans where something really
/// moved: the measure of a detector on footage whose truth is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Spans (start, end in seconds) where something moved.
    pub expected: usize,
    /// Spans with an episode starting inside them (up to `max_latency` late).
    pub found: usize,
    /// For each found span, seconds from its start to the episode's start.
    pub latencies: Vec<f64>,
    /// Spans with no episode starting in time.
    pub missed: Vec<(f64, f64)>,
    /// Starts of episodes outside every span: false alarms.
    pub false_alarms: Vec<f64>,
}

/// Judges episode start times against the `spans` of real motion. An episode
/// that starts within a span (or up to `max_latency` after its start, for a
/// span shorter than that) finds it; an episode running on from a span
/// (ended by the cooldown later) is not a false alarm; any other start is.
pub fn judge(starts: &[f64], spans: &[(f64, f64)], max_latency: f64) -> Verdict {
    let mut v = Verdict {
        expected: spans.len(),
        ..Verdict::default()
    };
    for &(from, to) in spans {
        let first = starts
            .iter()
            .copied()
            .find(|&s| s >= from - 0.05 && s <= to.max(from + max_latency));
        match first {
            Some(s) if s - from <= max_latency => {
                v.found += 1;
                v.latencies.push((s - from).max(0.0));
            }
            _ => v.missed.push((from, to)),
        }
    }
    v.false_alarms = starts
        .iter()
        .copied()
        .filter(|&s| {
            !spans
                .iter()
                .any(|&(from, to)| s >= from - 0.05 && s <= to + 0.5)
        })
        .collect();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_counts_found_missed_and_false_alarms() {
        let spans = [(10.0, 16.0), (28.0, 34.0), (46.0, 52.0)];
        let v = judge(&[3.0, 10.2, 31.5, 60.0], &spans, 2.0);
        assert_eq!(v.expected, 3);
        assert_eq!(v.found, 1);
        assert_eq!(v.latencies.len(), 1);
        assert!((v.latencies[0] - 0.2).abs() < 1e-9);
        // 31.5 is inside the span but 3.5 s late: missed, not a false alarm.
        assert_eq!(v.missed, vec![(28.0, 34.0), (46.0, 52.0)]);
        assert_eq!(v.false_alarms, vec![3.0, 60.0]);
        assert_eq!(judge(&[], &[], 2.0), Verdict::default());
    }
}
