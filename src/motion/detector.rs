//! Motion detection by background subtraction on a small grayscale image,
//! scored so that a person far across a yard counts and noise does not.
//!
//! The motion runner hands this detector the latest camera JPEG at a capped
//! rate, on a blocking thread. Each frame goes through:
//!
//! 1. **Decode luma only and shrink** to [`WORK_WIDTH`] pixels wide, then blur
//!    3x3 (see [`super::image`]). The JPEG is decoded at 1/2, 1/4 or 1/8 of
//!    its size straight from its DCT coefficients, as small as keeps it at
//!    least [`WORK_WIDTH`] wide.
//! 2. **Compensate the light.** The median ratio of frame to background is the
//!    global gain (a light switched on, auto-exposure, the IR switch); the
//!    background is compared at that gain, so a lighting step changes little.
//! 3. **Compare with a running-average background**, against the range of the
//!    background in each pixel's 3x3 neighbourhood: a camera shaken by a pixel
//!    or two sees its own background there and reports nothing.
//! 4. **Per-pixel noise.** A pixel counts as changed when it differs by more
//!    than [`NOISE_FLOOR`] and more than [`NOISE_GAIN`] times the deviation it
//!    usually shows. Leaves and water, always busy, learn a higher bar.
//! 5. **Masks and zones**: masked pixels never count; blobs record the zones
//!    they touch, and with required zones only blobs touching one count.
//! 6. **Despeckle and find blobs** (see [`super::blobs`]): opening removes
//!    specks and thin lines, blobs under [`MIN_BLOB`] of the picture are
//!    dropped.
//! 7. **Score** the largest blob on a logarithmic scale (see [`score`]): a
//!    person 30 m away covers about 0.1 % of the picture and must stand well
//!    clear of zero, while a person close by covers 10 %. A linear percentage
//!    would squeeze the first into the bottom of the 0-100 slider.
//! 8. **Episodes**: the scores become one start and one end per burst of
//!    motion, which is what gets counted and announced.
//!
//! A change of most of the picture at once (lights switched on, which gain
//! compensation cannot undo because shadows and colours change too) is a
//! "lightswitch": the background is re-learned and no motion is reported.

use std::time::{Duration, Instant};

use super::blobs::{Blob, Blobs};
use super::image::{blur3_into, decode_reduced_luma_into, downscale_into, MotionError};
use crate::zones::{Polygon, Zone, ZoneMap};

/// Width of the working image in pixels. At 240 px a person 30 m away is
/// still about 4x12 working pixels, enough to survive the 3x3 opening that
/// removes noise, while every per-pixel step stays far below the decode cost.
pub const WORK_WIDTH: usize = 240;

/// Smallest difference from the background (on the 0-255 luma scale, after
/// shrinking and blurring) that counts as a change anywhere. Sensor noise and
/// JPEG artefacts stay below it after averaging.
pub const NOISE_FLOOR: f32 = 10.0;

/// A pixel must also differ by this many times its own usual deviation.
pub const NOISE_GAIN: f32 = 3.0;

/// Time constant of the background: a change that stays is absorbed within
/// a few of these (a parked car, a cloud, dusk).
pub const BACKGROUND_TAU: Duration = Duration::from_millis(1500);

/// Where something is moving, the background learns this many times slower,
/// so a slow walker is not absorbed while crossing.
pub const MOVING_SLOWDOWN: f32 = 4.0;

/// Time constants of each pixel's learned deviation: it rises within a few
/// seconds where leaves or water keep moving, and falls back slowly, so a
/// tree between two gusts keeps its higher bar. One passer-by raises it
/// little, because what is learned is capped (see `learn`).
pub const NOISE_RISE_TAU: Duration = Duration::from_secs(3);
/// See [`NOISE_RISE_TAU`].
pub const NOISE_FALL_TAU: Duration = Duration::from_secs(30);

/// What a pixel's deviation learns from one frame is capped at this many
/// times its current bar: one passer-by raises the bar of the pixels it
/// crossed only for a while, while a pixel that keeps changing (leaves, a
/// camera's burned-in clock) climbs past its own contrast within seconds.
pub const LEARN_CAP: f32 = 4.0;

/// A changed pixel counts only if it changed suddenly (by more than its bar
/// from one analysed frame to the next) within this time. A cloud's shadow
/// or dusk creeps in a little per frame and never counts; a walker arrives
/// at each pixel at once.
pub const SUDDEN_WITHIN: Duration = Duration::from_secs(2);

/// Smallest blob that counts, as a fraction of the picture (0.02 %: a far
/// person is five times that). Smaller ones are noise, rain drops, insects.
pub const MIN_BLOB: f32 = 0.0002;

/// The blob fraction at which the score reaches about 7 (see [`score`]).
pub const SCORE_REFERENCE: f32 = 0.0002;

/// The motion score (0-100) of the largest moving blob covering `fraction`
/// of the picture: `100 * ln(1 + f/r) / ln(1 + 1/r)` with
/// r = [`SCORE_REFERENCE`]. About 21 for a person 30 m away (0.1 %), 36 at
/// 0.4 %, 55 at 2 %, 100 for the whole picture. Rounded to one decimal.
pub fn score(fraction: f32) -> f32 {
    let f = fraction.clamp(0.0, 1.0);
    let s = 100.0 * (f / SCORE_REFERENCE).ln_1p() / (1.0 / SCORE_REFERENCE).ln_1p();
    round_tenth(s)
}

/// While nothing moves, frames are analysed this many times less often
/// than the `motion_fps` setting asks (see [`Detector::interval`]). A
/// camera watches an empty scene most of the day, and analysis is most of
/// an idle camera's CPU; the first frame that changes brings the full rate
/// back, so an episode starts at most one idle interval later.
pub const IDLE_SLOWDOWN: u32 = 2;

/// At most this many boxes are reported per frame.
pub const MAX_BOXES: usize = 8;

/// Tuning of the detector, usually from the runtime settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionParams {
    /// Score (0-100) above which a frame is motion (strictly greater).
    pub threshold: u8,
    /// Consecutive analysed frames above `threshold` needed to start motion;
    /// 2 rejects one-frame glitches (a bug flying past the lens). 0 acts as 1.
    pub min_frames: u32,
    /// Quiet time after the last frame above `threshold` that ends an episode.
    pub cooldown: Duration,
    /// A change of more than this percentage of the picture is a lighting
    /// change, not motion.
    pub lightswitch_percent: u8,
    /// Polygons whose changes are ignored.
    pub mask: Vec<Polygon>,
    /// Named polygons; events list the ones moving blobs touch.
    pub zones: Vec<Zone>,
    /// When not empty, only blobs touching one of these zones count.
    pub required_zones: Vec<String>,
}

impl Default for MotionParams {
    fn default() -> Self {
        Self {
            threshold: 12,
            min_frames: 2,
            cooldown: Duration::from_secs(5),
            lightswitch_percent: 80,
            mask: Vec::new(),
            zones: Vec::new(),
            required_zones: Vec::new(),
        }
    }
}

/// A change in the motion episode state, reported by the frame that caused it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    /// Motion started; `change` is the score of the frame that started it.
    Started {
        /// The motion score.
        change: f32,
    },
    /// Motion ended after the cooldown.
    Ended {
        /// From the first to the last frame above threshold (cooldown excluded).
        duration: Duration,
        /// Highest `change` seen during the episode.
        peak: f32,
    },
}

/// A moving blob's box, normalized to the picture: x, y, width, height.
pub type BoxN = [f32; 4];

/// The result of analysing one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Analysis {
    /// The motion score, 0-100, one decimal (see [`score`]).
    pub change: f32,
    /// Percentage of the picture that changed (after despeckling), two decimals.
    pub area: f32,
    /// Boxes of the counted blobs, largest first, at most [`MAX_BOXES`].
    pub boxes: Vec<BoxN>,
    /// Names of the zones the counted blobs touch.
    pub zones: Vec<String>,
    /// The frame was a lighting change: background re-learned, not motion.
    pub lightswitch: bool,
    /// Episode start or end caused by this frame, if any.
    pub transition: Option<Transition>,
    /// Whether an episode is running after this frame.
    pub active: bool,
}

/// A running motion episode.
#[derive(Debug, Clone, Copy)]
struct Episode {
    /// Time of the first frame above threshold in the streak that started it.
    started: Instant,
    /// Time of the most recent frame above threshold.
    last_active: Instant,
    /// Highest change so far.
    peak: f32,
}

/// Frames above threshold seen while idle, not yet enough to start.
#[derive(Debug, Clone, Copy)]
struct Streak {
    frames: u32,
    first: Instant,
    peak: f32,
}

/// The masks and zones rasterized for the working size, with what they were
/// built from (rebuilt only when that changes).
struct Regions {
    mask: Vec<Polygon>,
    zones: Vec<Zone>,
    required: Vec<String>,
    map: ZoneMap,
}

impl std::fmt::Debug for Regions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Regions")
            .field("size", &self.map.size())
            .finish()
    }
}

/// Stateful motion detector for one camera: background and noise model plus
/// episode state. Feed it frames in time order.
#[derive(Debug, Default)]
pub struct Detector {
    /// Size of the source image the background was learned from; a camera
    /// that switches resolution gets a fresh background.
    source: (usize, usize),
    /// Working-image size the background belongs to; (0, 0) before the first frame.
    width: usize,
    height: usize,
    /// Running-average background, one f32 per working pixel; empty = unlearned.
    background: Vec<f32>,
    /// Each pixel's usual absolute difference from the background.
    deviation: Vec<f32>,
    /// Frames since the background was learned (the noise model learns fast
    /// at first).
    learned_frames: u32,
    /// Time of the previous frame, for time-based learning rates.
    last_at: Option<Instant>,
    /// Scratch buffers reused across frames so analysis does not allocate.
    full: Vec<u8>,
    reduced: Vec<u8>,
    small: Vec<u8>,
    blur_tmp: Vec<f32>,
    blurred: Vec<f32>,
    bg_min: Vec<f32>,
    bg_max: Vec<f32>,
    diff: Vec<f32>,
    changed: Vec<u8>,
    toned: Vec<f32>,
    region_dev: Vec<f32>,
    region_tmp: Vec<f32>,
    scratch: Vec<f32>,
    /// Background level to frame level, for this frame's light.
    tone: Vec<f32>,
    /// The previous blurred frame, to tell sudden changes from slow ones.
    previous: Vec<f32>,
    /// Per pixel: the time (seconds on `clock`) it last changed suddenly.
    sudden_at: Vec<f32>,
    /// Seconds of frames since the background was learned.
    clock: f32,
    /// Whether the last analysed frame had a counted blob (any score).
    moving: bool,
    blobs: Blobs,
    regions: Option<Regions>,
    streak: Option<Streak>,
    episode: Option<Episode>,
}

impl Detector {
    /// A detector with no background; the first frame only initialises it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes and scores one JPEG taken at `at`, and advances the episode state.
    pub fn analyse(
        &mut self,
        jpeg: &[u8],
        at: Instant,
        params: &MotionParams,
    ) -> Result<Analysis, MotionError> {
        let mut reduced = std::mem::take(&mut self.reduced);
        let decoded = decode_reduced_luma_into(jpeg, WORK_WIDTH, &mut self.full, &mut reduced);
        let result = decoded.map(|(w, h)| self.analyse_luma(&reduced, w, h, at, params));
        self.reduced = reduced;
        result
    }

    /// Scores an already-decoded luma image (width*height bytes) — the part
    /// after decoding, for tests and benches. Images wider than
    /// [`WORK_WIDTH`] are shrunk first. A buffer shorter than `width*height`
    /// (or an empty image) is not scored: it reports no change and only lets
    /// time pass for the episode, as [`Detector::tick`] does.
    pub fn analyse_luma(
        &mut self,
        luma: &[u8],
        width: usize,
        height: usize,
        at: Instant,
        params: &MotionParams,
    ) -> Analysis {
        let valid = width
            .checked_mul(height)
            .is_some_and(|n| n > 0 && luma.len() >= n);
        if !valid {
            let transition = self.tick(at, params);
            return self.quiet(transition);
        }
        let (w, h) = downscale_into(luma, width, height, WORK_WIDTH, &mut self.small);
        blur3_into(&self.small, w, h, &mut self.blur_tmp, &mut self.blurred);
        let dt = self
            .last_at
            .map_or(Duration::ZERO, |t| at.saturating_duration_since(t))
            .min(Duration::from_secs(2));
        self.last_at = Some(at);
        self.clock += dt.as_secs_f32();
        if self.background.is_empty() || (width, height) != self.source {
            self.moving = false;
            self.source = (width, height);
            self.learn_background(w, h);
            // A new or resized picture has nothing to compare with: quiet frame.
            let transition = self.advance(0.0, at, params);
            return self.quiet(transition);
        }
        self.update_regions(params);
        self.difference();
        let counted = self.mark_changed();
        let raw_percent = 100.0 * counted as f32 / (w * h) as f32;
        if raw_percent > f32::from(params.lightswitch_percent) {
            // The picture changed: watch the next frames at the full rate.
            self.moving = true;
            self.learn_background(w, h);
            let transition = self.advance(0.0, at, params);
            return Analysis {
                lightswitch: true,
                area: round_hundredth(raw_percent),
                ..self.quiet(transition)
            };
        }
        let min_area = ((MIN_BLOB * (w * h) as f32).ceil() as usize).max(4);
        let blobs = {
            let regions = self.regions.as_ref().map(|r| &r.map);
            self.blobs.find(&self.changed, w, h, min_area, |i| {
                regions.map_or(0, |m| m.zones_at(i))
            })
        };
        let required = self.regions.as_ref().map_or(0, |r| r.map.required());
        let counted: Vec<&Blob> = blobs
            .iter()
            .filter(|b| required == 0 || b.zones & required != 0)
            .collect();
        let picture = (w * h) as f32;
        let largest = counted.first().map_or(0, |b| b.area);
        let change = score(largest as f32 / picture);
        let area =
            round_hundredth(100.0 * counted.iter().map(|b| b.area).sum::<usize>() as f32 / picture);
        let boxes = counted
            .iter()
            .take(MAX_BOXES)
            .map(|b| {
                [
                    round_thousandth(b.x0 as f32 / w as f32),
                    round_thousandth(b.y0 as f32 / h as f32),
                    round_thousandth((b.x1 - b.x0) as f32 / w as f32),
                    round_thousandth((b.y1 - b.y0) as f32 / h as f32),
                ]
            })
            .collect();
        let touched = counted.iter().fold(0, |acc, b| acc | b.zones);
        let zones = match (&self.regions, touched) {
            (Some(r), bits) if bits != 0 => r.map.names(bits),
            _ => Vec::new(),
        };
        self.learn(dt);
        self.moving = change > 0.0;
        let transition = self.advance(change, at, params);
        Analysis {
            change,
            area,
            boxes,
            zones,
            lightswitch: false,
            transition,
            active: self.is_active(),
        }
    }

    /// Ends a running episode without a frame (e.g. no frames arrive any
    /// more); returns Ended if one was active and cooldown passed.
    pub fn tick(&mut self, now: Instant, params: &MotionParams) -> Option<Transition> {
        let episode = self.episode?;
        if now.saturating_duration_since(episode.last_active) < params.cooldown {
            return None;
        }
        self.episode = None;
        Some(Transition::Ended {
            duration: episode
                .last_active
                .saturating_duration_since(episode.started),
            peak: episode.peak,
        })
    }

    /// The time from one analysed frame to the next at `fps` analysed
    /// frames a second (the `motion_fps` setting): [`IDLE_SLOWDOWN`] times
    /// longer while nothing moves, the full rate while anything scores,
    /// frames are counting toward a start or an episode runs.
    pub fn interval(&self, fps: u32) -> Duration {
        let full = Duration::from_secs(1) / fps.max(1);
        let busy = self.moving || self.streak.is_some() || self.episode.is_some();
        if busy {
            full
        } else {
            full * IDLE_SLOWDOWN
        }
    }

    /// Whether a motion episode is running.
    pub fn is_active(&self) -> bool {
        self.episode.is_some()
    }

    /// Forget the background (camera restarted). A running episode is kept so
    /// that it still ends normally (every Started gets its Ended).
    pub fn reset(&mut self) {
        self.background.clear();
        self.source = (0, 0);
        self.width = 0;
        self.height = 0;
        self.streak = None;
        self.last_at = None;
    }

    /// Size of the working image the background was learned at, if any.
    /// Useful to size a motion overlay.
    pub fn working_size(&self) -> Option<(usize, usize)> {
        (!self.background.is_empty()).then_some((self.width, self.height))
    }

    /// The despeckled change mask of the last analysed frame (1 = changed),
    /// at [`Detector::working_size`].
    pub fn changed_mask(&self) -> &[u8] {
        self.blobs.opened()
    }

    fn quiet(&self, transition: Option<Transition>) -> Analysis {
        Analysis {
            transition,
            active: self.is_active(),
            ..Analysis::default()
        }
    }

    /// Sets the background to the current blurred frame (first frame, resize
    /// or lightswitch). The noise model starts over at the floor.
    fn learn_background(&mut self, w: usize, h: usize) {
        if (w, h) != (self.width, self.height) || self.deviation.len() != w * h {
            self.deviation.clear();
            self.deviation.resize(w * h, NOISE_FLOOR / NOISE_GAIN / 2.0);
            self.learned_frames = 0;
        }
        self.width = w;
        self.height = h;
        self.background.clear();
        self.background.extend_from_slice(&self.blurred);
        self.previous.clear();
        self.previous.extend_from_slice(&self.blurred);
        self.sudden_at.clear();
        self.sudden_at.resize(w * h, f32::NEG_INFINITY);
    }

    /// Rebuilds the rasterized masks and zones when they or the size changed.
    fn update_regions(&mut self, p: &MotionParams) {
        if p.mask.is_empty() && p.zones.is_empty() {
            self.regions = None;
            return;
        }
        let size = (self.width, self.height);
        let current = self.regions.as_ref().is_some_and(|r| {
            r.map.size() == size
                && r.mask == p.mask
                && r.zones == p.zones
                && r.required == p.required_zones
        });
        if !current {
            self.regions = Some(Regions {
                mask: p.mask.clone(),
                zones: p.zones.clone(),
                required: p.required_zones.clone(),
                map: ZoneMap::new(&p.mask, &p.zones, &p.required_zones, size.0, size.1),
            });
        }
    }

    /// Fills `diff` with each pixel's distance from the gain-compensated
    /// background range of its 3x3 neighbourhood.
    fn difference(&mut self) {
        let (w, h) = (self.width, self.height);
        tone_map(&self.blurred, &self.background, &mut self.tone);
        // The background as this frame's light would show it (the tone map
        // is monotonic, so the range of the mapped neighbourhood is the
        // mapped range).
        let tone = &self.tone;
        self.toned.clear();
        self.toned
            .extend(self.background.iter().map(|&v| apply_tone(tone, v)));
        minmax3(
            &self.toned,
            w,
            h,
            &mut self.scratch,
            &mut self.bg_min,
            &mut self.bg_max,
        );
        self.diff.clear();
        self.diff.extend(
            self.blurred
                .iter()
                .zip(self.bg_min.iter().zip(&self.bg_max))
                .map(|(&px, (&lo, &hi))| greater(lo - px, px - hi).max(0.0)),
        );
    }

    /// Marks the pixels whose difference is above their bar, outside masks.
    /// Returns how many were marked.
    fn mark_changed(&mut self) -> usize {
        let mask = self.regions.as_ref().map(|r| &r.map);
        let fresh = SUDDEN_WITHIN.as_secs_f32();
        // The bar of a pixel is set by the busiest pixel around it: leaves
        // move a little differently every time, so a region that is busy
        // anywhere is busy everywhere.
        let (w, h) = (self.width, self.height);
        let (tmp, once, twice) = (
            &mut self.scratch,
            &mut self.region_tmp,
            &mut self.region_dev,
        );
        filter3(&self.deviation, w, h, tmp, once, greater);
        filter3(once, w, h, tmp, twice, greater);
        self.changed.clear();
        let mut count = 0;
        for (i, (&d, &dev)) in self.diff.iter().zip(&self.region_dev).enumerate() {
            let bar = NOISE_FLOOR.max(NOISE_GAIN * dev);
            if (self.blurred[i] - self.previous[i]).abs() > bar {
                self.sudden_at[i] = self.clock;
            }
            let on = d > bar
                && self.clock - self.sudden_at[i] <= fresh
                && !mask.is_some_and(|m| m.ignored(i));
            count += usize::from(on);
            self.changed.push(u8::from(on));
        }
        count
    }

    /// Blends the frame into the background (slower where things move) and
    /// each pixel's difference into its learned deviation.
    fn learn(&mut self, dt: Duration) {
        let rate = |tau: Duration| 1.0 - (-dt.as_secs_f32() / tau.as_secs_f32()).exp();
        let alpha = rate(BACKGROUND_TAU);
        self.learned_frames = self.learned_frames.saturating_add(1);
        // The first frames set the deviation as a plain mean, so a busy scene
        // (a tree in the wind) learns its bar in seconds, not minutes.
        let warm = 1.0 / self.learned_frames as f32;
        let (rise, fall) = (
            rate(NOISE_RISE_TAU).max(warm),
            rate(NOISE_FALL_TAU).max(warm),
        );
        let moving = self.blobs.opened();
        self.previous.clear();
        self.previous.extend_from_slice(&self.blurred);
        let pixels = self
            .background
            .iter_mut()
            .zip(&mut self.deviation)
            .zip(self.blurred.iter().zip(&self.diff).zip(moving));
        for ((bg, dev), ((&px, &diff), &moving)) in pixels {
            let a = if moving != 0 {
                alpha / MOVING_SLOWDOWN
            } else {
                alpha
            };
            *bg += a * (px - *bg);
            // One passer-by must not raise the bar for long: the difference
            // is capped before it is learned.
            let bar = NOISE_FLOOR.max(NOISE_GAIN * *dev);
            let d = diff.min(LEARN_CAP * bar);
            let beta = if d > *dev { rise } else { fall };
            *dev += beta * (d - *dev);
        }
    }

    /// Advances the episode state machine with one frame's motion score
    /// (0 for frames that cannot be motion, such as a lightswitch).
    fn advance(&mut self, change: f32, at: Instant, params: &MotionParams) -> Option<Transition> {
        let above = change > f32::from(params.threshold);
        if let Some(episode) = self.episode.as_mut() {
            if above {
                episode.last_active = at;
                episode.peak = episode.peak.max(change);
                return None;
            }
            return self.tick(at, params);
        }
        if !above {
            self.streak = None;
            return None;
        }
        let streak = match self.streak {
            Some(s) => Streak {
                frames: s.frames.saturating_add(1),
                first: s.first,
                peak: s.peak.max(change),
            },
            None => Streak {
                frames: 1,
                first: at,
                peak: change,
            },
        };
        if streak.frames < params.min_frames.max(1) {
            self.streak = Some(streak);
            return None;
        }
        self.streak = None;
        self.episode = Some(Episode {
            started: streak.first,
            last_active: at,
            peak: streak.peak,
        });
        Some(Transition::Started { change })
    }
}

/// A tone map from background levels to frame levels, by matching their
/// histograms: whatever monotonic change the whole picture went through (a
/// light switched on, auto-exposure, contrast, the IR switch's grey picture)
/// maps the background's level at each rank to the frame's level at the same
/// rank. A moving person is too small a part of the picture to move the ranks.
fn tone_map(frame: &[f32], background: &[f32], lut: &mut Vec<f32>) {
    lut.resize(256, 0.0);
    let hist = |px: &[f32]| {
        let mut h = [0u32; 256];
        for &v in px {
            h[v.clamp(0.0, 255.0) as usize] += 1;
        }
        h
    };
    let (hf, hb) = (hist(frame), hist(background));
    let n = frame.len().max(1) as f64;
    // The frame's cumulative distribution, for rank lookups.
    let mut cdf_f = [0f64; 256];
    let mut acc = 0u64;
    for (c, &h) in cdf_f.iter_mut().zip(&hf) {
        acc += u64::from(h);
        *c = acc as f64 / n;
    }
    let mut below = 0u64;
    let mut u = 0usize;
    for (v, out) in lut.iter_mut().enumerate() {
        // The middle rank of background level v.
        let rank = (below as f64 + f64::from(hb[v]) / 2.0) / n;
        below += u64::from(hb[v]);
        while u < 255 && cdf_f[u] < rank {
            u += 1;
        }
        // Interpolate inside frame level u for a smooth map.
        let lo = if u == 0 { 0.0 } else { cdf_f[u - 1] };
        let width = (cdf_f[u] - lo).max(1e-9);
        *out = (u as f64 + ((rank - lo) / width).clamp(0.0, 1.0) - 0.5) as f32;
    }
}

/// `lut` at a fractional level (linear between the integer levels).
fn apply_tone(lut: &[f32], v: f32) -> f32 {
    let v = v.clamp(0.0, 255.0);
    let i = (v as usize).min(254);
    let f = v - i as f32;
    lut[i] + f * (lut[i + 1] - lut[i])
}

/// Smaller of two levels. Levels are never NaN, so a plain comparison will
/// do, and unlike `f32::min` it compiles to one vector instruction.
#[inline]
fn lesser(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

/// Greater of two levels (see [`lesser`]).
#[inline]
fn greater(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// Applies `pick` over each pixel's 3x3 neighbourhood (edges replicated), as
/// a row pass into `tmp` and a column pass into `out`.
fn filter3(
    src: &[f32],
    w: usize,
    h: usize,
    tmp: &mut Vec<f32>,
    out: &mut Vec<f32>,
    pick: impl Fn(f32, f32) -> f32,
) {
    tmp.clear();
    for row in src.chunks_exact(w).take(h) {
        tmp.push(pick(row[0], row[1.min(w - 1)]));
        tmp.extend(row.windows(3).map(|t| pick(pick(t[0], t[1]), t[2])));
        if w > 1 {
            tmp.push(pick(row[w - 2], row[w - 1]));
        }
    }
    out.clear();
    for y in 0..h {
        let up = &tmp[y.saturating_sub(1) * w..][..w];
        let mid = &tmp[y * w..][..w];
        let down = &tmp[(y + 1).min(h - 1) * w..][..w];
        out.extend(
            up.iter()
                .zip(mid)
                .zip(down)
                .map(|((&a, &b), &c)| pick(pick(a, b), c)),
        );
    }
}

/// The minimum and maximum of each pixel's 3x3 neighbourhood (edges replicated).
fn minmax3(
    src: &[f32],
    w: usize,
    h: usize,
    tmp: &mut Vec<f32>,
    lo: &mut Vec<f32>,
    hi: &mut Vec<f32>,
) {
    filter3(src, w, h, tmp, lo, lesser);
    filter3(src, w, h, tmp, hi, greater);
}

/// Rounds to one decimal, the precision `change` is reported with.
fn round_tenth(x: f32) -> f32 {
    (x * 10.0).round() / 10.0
}

fn round_hundredth(x: f32) -> f32 {
    (x * 100.0).round() / 100.0
}

fn round_thousandth(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::image::{decode_luma_into, decode_small_luma};
    use crate::motion::replay::thread_cpu;

    use crate::motion::test_rng::Rng;

    const W: usize = 160;
    const H: usize = 120;

    fn params() -> MotionParams {
        MotionParams {
            threshold: 5,
            min_frames: 2,
            cooldown: Duration::from_secs(1),
            lightswitch_percent: 80,
            ..MotionParams::default()
        }
    }

    fn at(t0: Instant, i: u64) -> Instant {
        t0 + Duration::from_millis(100 * i)
    }

    /// A textured but smooth scene (values 40..100).
    fn base(w: usize, h: usize) -> Vec<u8> {
        (0..w * h)
            .map(|i| (40 + ((i % w) * 3 + (i / w) * 2) % 60) as u8)
            .collect()
    }

    /// `base` with a `side`x`side` square of brightness +150 at (x, y).
    fn with_square(w: usize, h: usize, x: usize, y: usize, side: usize) -> Vec<u8> {
        let mut img = base(w, h);
        for row in y..y + side {
            for px in &mut img[row * w + x..row * w + x + side] {
                *px += 150;
            }
        }
        img
    }

    /// Side of a square covering 10% of the 160x120 picture (44² = 1936).
    const SIDE: usize = 44;

    fn square_a() -> Vec<u8> {
        with_square(W, H, 10, 10, SIDE)
    }

    fn square_b() -> Vec<u8> {
        with_square(W, H, 100, 60, SIDE)
    }

    fn encode_gray(img: &[u8], w: usize, h: usize, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let encoder = jpeg_encoder::Encoder::new(&mut out, quality);
        encoder
            .encode(img, w as u16, h as u16, jpeg_encoder::ColorType::Luma)
            .unwrap();
        out
    }

    fn encode_rgb(rgb: &[u8], w: usize, h: usize, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let encoder = jpeg_encoder::Encoder::new(&mut out, quality);
        encoder
            .encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn static_image_scores_zero() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let img = base(W, H);
        for i in 0..10 {
            let a = d.analyse_luma(&img, W, H, at(t0, i), &params());
            assert_eq!(a.change, 0.0, "frame {i}");
            assert!(!a.lightswitch && a.transition.is_none() && !a.active);
        }
        assert_eq!(d.working_size(), Some((W, H)));
    }

    #[test]
    fn sensor_noise_is_rejected() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let mut rng = Rng(12345);
        let clean = base(W, H);
        for i in 0..30 {
            let noisy: Vec<u8> = clean
                .iter()
                .map(|&p| (i32::from(p) + rng.pm(8)) as u8)
                .collect();
            let a = d.analyse_luma(&noisy, W, H, at(t0, i), &params());
            assert!(a.change < 1.0, "frame {i}: change {}", a.change);
            assert!(a.transition.is_none());
        }
    }

    #[test]
    fn camera_speckles_are_averaged_away() {
        // Sparse hot pixels (1 in 50, set to 250) in a full-size 640x480
        // frame: box-averaging 4x4 blocks dilutes them, where point sampling
        // followed by the blur would leave 3x3 blobs above the noise level.
        let (w, h) = (640, 480);
        let mut d = Detector::new();
        let t0 = Instant::now();
        let mut rng = Rng(7);
        let clean = base(w, h);
        d.analyse_luma(&clean, w, h, t0, &params());
        for i in 1..5 {
            let speckled: Vec<u8> = clean
                .iter()
                .map(|&p| {
                    if rng.next().is_multiple_of(50) {
                        250
                    } else {
                        p
                    }
                })
                .collect();
            let a = d.analyse_luma(&speckled, w, h, at(t0, i), &params());
            assert!(a.change < 1.0, "frame {i}: change {}", a.change);
        }
    }

    #[test]
    fn moving_square_scores_its_area() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        assert_eq!(d.analyse_luma(&square_a(), W, H, t0, &params()).change, 0.0);
        let a = d.analyse_luma(&square_b(), W, H, at(t0, 1), &params());
        // The square left A and arrived at B: two blobs of about 10% each,
        // scored by the largest.
        assert_eq!(a.boxes.len(), 2, "{a:?}");
        assert!((15.0..=25.0).contains(&a.area), "area {}", a.area);
        let ten = score(0.1);
        assert!(
            (ten - 5.0..=ten + 5.0).contains(&a.change),
            "change {}",
            a.change
        );
        // Rounded to one decimal.
        assert_eq!(a.change, round_tenth(a.change));
        // Boxes are normalized, largest first; B is at (100, 60) of 160x120.
        let b = a.boxes.iter().find(|b| b[0] > 0.5).unwrap();
        assert!(
            (b[0] - 100.0 / 160.0).abs() < 0.02 && (b[1] - 0.5).abs() < 0.02,
            "{b:?}"
        );
        assert!((b[2] - 44.0 / 160.0).abs() < 0.02, "{b:?}");
    }

    #[test]
    fn min_frames_needs_consecutive_frames() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        d.analyse_luma(&base(W, H), W, H, t0, &p);
        let one = d.analyse_luma(&square_a(), W, H, at(t0, 1), &p);
        assert!(one.change > 5.0);
        assert_eq!(one.transition, None, "one frame must not start");
        let quiet = d.analyse_luma(&base(W, H), W, H, at(t0, 2), &p);
        assert!(quiet.change <= 5.0, "ghost {}", quiet.change);
        let again = d.analyse_luma(&square_a(), W, H, at(t0, 3), &p);
        assert_eq!(again.transition, None, "the streak was broken");
        let second = d.analyse_luma(&square_b(), W, H, at(t0, 4), &p);
        assert!(
            matches!(second.transition, Some(Transition::Started { change }) if change == second.change),
            "{second:?}"
        );
        assert!(second.active && d.is_active());
    }

    #[test]
    fn min_frames_one_starts_at_once() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = MotionParams {
            min_frames: 1,
            ..params()
        };
        d.analyse_luma(&base(W, H), W, H, t0, &p);
        let a = d.analyse_luma(&square_a(), W, H, at(t0, 1), &p);
        assert!(matches!(a.transition, Some(Transition::Started { .. })));
    }

    #[test]
    fn threshold_is_strictly_greater() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        d.analyse_luma(&base(W, H), W, H, t0, &params());
        let a = d.analyse_luma(&square_a(), W, H, at(t0, 1), &params());
        // Replay the same scene with the threshold set to exactly the score.
        let p = MotionParams {
            threshold: a.change.floor() as u8,
            min_frames: 1,
            ..params()
        };
        let mut d = Detector::new();
        d.analyse_luma(&base(W, H), W, H, t0, &p);
        let b = d.analyse_luma(&square_a(), W, H, at(t0, 1), &p);
        assert_eq!(a.change, b.change);
        let expect_start = b.change > f32::from(p.threshold);
        assert_eq!(b.transition.is_some(), expect_start);
        let p = MotionParams {
            threshold: 100,
            ..p
        };
        let mut d = Detector::new();
        d.analyse_luma(&base(W, H), W, H, t0, &p);
        assert_eq!(
            d.analyse_luma(&square_a(), W, H, at(t0, 1), &p).transition,
            None
        );
    }

    /// Runs 20 frames of motion then quiet frames; returns every analysis.
    fn episode_run(d: &mut Detector, t0: Instant, p: &MotionParams) -> Vec<(Instant, Analysis)> {
        let mut out = Vec::new();
        for i in 0..80 {
            let img = match i {
                0 => base(W, H),
                // A square crossing the picture, 5 px a frame.
                1..=20 => with_square(W, H, 5 * i as usize, 30, SIDE),
                _ => base(W, H),
            };
            let t = at(t0, i);
            out.push((t, d.analyse_luma(&img, W, H, t, p)));
        }
        out
    }

    #[test]
    fn one_episode_gives_one_start_and_one_end_after_cooldown() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        let run = episode_run(&mut d, t0, &p);
        let starts: Vec<usize> = (0..run.len())
            .filter(|&i| matches!(run[i].1.transition, Some(Transition::Started { .. })))
            .collect();
        let ends: Vec<usize> = (0..run.len())
            .filter(|&i| matches!(run[i].1.transition, Some(Transition::Ended { .. })))
            .collect();
        assert_eq!(starts, vec![2], "one Started, on the second active frame");
        assert_eq!(ends.len(), 1, "one Ended");
        let end = ends[0];
        // The last frame above threshold before the end (ghosts included).
        let last_above = (0..end)
            .rev()
            .find(|&i| run[i].1.change > f32::from(p.threshold))
            .unwrap();
        assert!(last_above >= 20);
        let quiet_for = run[end].0 - run[last_above].0;
        assert!(quiet_for >= p.cooldown, "ended after only {quiet_for:?}");
        assert!(
            run[end - 1].0 - run[last_above].0 < p.cooldown,
            "ended late"
        );
        for (i, (_, a)) in run.iter().enumerate() {
            assert_eq!(a.active, (2..end).contains(&i), "frame {i}");
        }
        let Some(Transition::Ended { duration, peak }) = run[end].1.transition else {
            unreachable!()
        };
        assert_eq!(duration, run[last_above].0 - run[1].0);
        let max = run.iter().map(|(_, a)| a.change).fold(0.0, f32::max);
        assert_eq!(peak, max);
    }

    #[test]
    fn idle_frames_are_analysed_less_often() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        let full = Duration::from_millis(100);
        assert_eq!(d.interval(10), full * IDLE_SLOWDOWN);
        d.analyse_luma(&base(W, H), W, H, t0, &p);
        d.analyse_luma(&base(W, H), W, H, at(t0, 1), &p);
        assert_eq!(d.interval(10), full * IDLE_SLOWDOWN, "a still scene");
        let a = d.analyse_luma(&square_a(), W, H, at(t0, 2), &p);
        assert!(a.change > 0.0);
        assert_eq!(d.interval(10), full, "something moved");
        assert_eq!(d.interval(0), Duration::from_secs(1));
    }

    #[test]
    fn tick_ends_an_episode_without_frames() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        d.analyse_luma(&base(W, H), W, H, t0, &p);
        let first = d.analyse_luma(&square_a(), W, H, at(t0, 1), &p);
        let a = d.analyse_luma(&square_b(), W, H, at(t0, 2), &p);
        assert!(a.active);
        assert_eq!(d.tick(at(t0, 2) + p.cooldown / 2, &p), None);
        assert!(d.is_active());
        let ended = d.tick(at(t0, 2) + p.cooldown, &p);
        assert_eq!(
            ended,
            Some(Transition::Ended {
                duration: Duration::from_millis(100),
                peak: a.change.max(first.change),
            })
        );
        assert!(!d.is_active());
        assert_eq!(d.tick(at(t0, 100), &p), None, "only one Ended");
    }

    #[test]
    fn lightswitch_relearns_and_does_not_start() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = MotionParams {
            min_frames: 1,
            lightswitch_percent: 40,
            ..params()
        };
        let dark = base(W, H);
        // Another picture altogether (the IR lamp lights other things than
        // the sun did): no tone map turns one into the other.
        let bright: Vec<u8> = (0..W * H)
            .map(|i| (60 + (i % W) * 7 % 130 + (i / W) * 5 % 60) as u8)
            .collect();
        d.analyse_luma(&dark, W, H, t0, &p);
        let a = d.analyse_luma(&bright, W, H, at(t0, 1), &p);
        assert!(a.lightswitch, "{a:?}");
        assert!(a.area > 40.0, "{a:?}");
        assert_eq!(a.change, 0.0);
        assert_eq!(a.transition, None);
        assert!(!a.active);
        let b = d.analyse_luma(&bright, W, H, at(t0, 2), &p);
        assert!(!b.lightswitch);
        assert_eq!(b.change, 0.0, "background re-learned");
        assert_eq!(b.transition, None);
    }

    #[test]
    fn size_change_reinitialises() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        d.analyse_luma(&base(W, H), W, H, t0, &p);
        // The camera switched mode: the picture may be framed differently,
        // so start over.
        let big = d.analyse_luma(&square_b(), W, H, at(t0, 1), &p);
        assert!(big.change > 5.0, "same size: compared");
        let big = d.analyse_luma(&base(320, 240), 320, 240, at(t0, 2), &p);
        assert_eq!(big.change, 0.0);
        assert_eq!(d.working_size(), Some((240, 180)));
        let odd = d.analyse_luma(&base(100, 50), 100, 50, at(t0, 2), &p);
        assert_eq!(odd.change, 0.0);
        assert_eq!(d.working_size(), Some((100, 50)));
        let wide = d.analyse_luma(&base(1280, 720), 1280, 720, at(t0, 3), &p);
        assert_eq!(wide.change, 0.0);
        assert_eq!(d.working_size(), Some((240, 135)));
        let tiny = d.analyse_luma(&[7], 1, 1, at(t0, 4), &p);
        assert_eq!(tiny.change, 0.0);
        assert_eq!(d.working_size(), Some((1, 1)));
        let again = d.analyse_luma(&[7], 1, 1, at(t0, 5), &p);
        assert_eq!(again.change, 0.0);
    }

    #[test]
    fn short_or_empty_buffers_are_ignored() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        let a = d.analyse_luma(&[1, 2, 3], 10, 10, t0, &p);
        assert_eq!(a.change, 0.0);
        assert_eq!(d.working_size(), None);
        let b = d.analyse_luma(&[], 0, 0, t0, &p);
        assert_eq!(b.change, 0.0);
        let c = d.analyse_luma(&[], usize::MAX, 2, t0, &p);
        assert_eq!(c.change, 0.0);
    }

    #[test]
    fn reset_forgets_background_but_keeps_episode() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        d.analyse_luma(&base(W, H), W, H, t0, &p);
        d.analyse_luma(&square_a(), W, H, at(t0, 1), &p);
        d.analyse_luma(&square_b(), W, H, at(t0, 2), &p);
        assert!(d.is_active());
        d.reset();
        assert_eq!(d.working_size(), None);
        let a = d.analyse_luma(&square_a(), W, H, at(t0, 3), &p);
        assert_eq!(a.change, 0.0, "first frame after reset only learns");
        assert!(a.active);
        let e = d.analyse_luma(&square_a(), W, H, at(t0, 2) + p.cooldown, &p);
        assert!(matches!(e.transition, Some(Transition::Ended { .. })));
    }

    #[test]
    fn analyse_real_jpegs() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        let quiet = encode_gray(&base(W, H), W, H, 80);
        let a = encode_gray(&square_a(), W, H, 80);
        let b = encode_gray(&square_b(), W, H, 80);
        assert_eq!(d.analyse(&quiet, t0, &p).unwrap().change, 0.0);
        assert_eq!(d.analyse(&quiet, at(t0, 1), &p).unwrap().change, 0.0);
        let r = d.analyse(&a, at(t0, 2), &p).unwrap();
        assert!(r.change > 50.0, "{r:?}");
        let r = d.analyse(&b, at(t0, 3), &p).unwrap();
        assert!(matches!(r.transition, Some(Transition::Started { .. })));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        let inputs: [&[u8]; 4] = [
            b"",
            b"not a jpeg at all",
            &[0xFF, 0xD8],
            &[0xFF, 0xD8, 0xFF],
        ];
        for bytes in inputs {
            assert!(matches!(
                decode_small_luma(bytes, 160),
                Err(MotionError::Decode(_))
            ));
            let err = d.analyse(bytes, t0, &p).unwrap_err();
            assert!(err.to_string().starts_with("cannot decode frame"));
        }
        // Truncated and corrupted real JPEGs: an error or an image, never a panic.
        let jpeg = encode_gray(&square_a(), W, H, 80);
        let mut rng = Rng(99);
        for cut in [2, 20, 100, jpeg.len() / 2, jpeg.len() - 2] {
            let _ = d.analyse(&jpeg[..cut], t0, &p);
        }
        for _ in 0..200 {
            let mut broken = jpeg.clone();
            for _ in 0..4 {
                let i = rng.next() as usize % broken.len();
                broken[i] = rng.next() as u8;
            }
            let _ = d.analyse(&broken, t0, &p);
        }
        assert!(d.analyse(&jpeg, t0, &p).is_ok(), "still usable");
    }

    /// Square A (at 10,10 of 160x120) as a normalized rectangle, with a margin.
    fn around_a() -> Vec<[f64; 2]> {
        let (x0, y0) = (5.0 / W as f64, 5.0 / H as f64);
        let (x1, y1) = (60.0 / W as f64, 60.0 / H as f64);
        vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    }

    #[test]
    fn masks_ignore_and_zones_name_and_filter() {
        let t0 = Instant::now();
        let zone = |name: &str, points: Vec<[f64; 2]>| Zone {
            name: name.into(),
            points,
        };
        let run = |p: &MotionParams| {
            let mut d = Detector::new();
            d.analyse_luma(&base(W, H), W, H, t0, p);
            d.analyse_luma(&square_a(), W, H, at(t0, 1), p)
        };
        // Square A appears inside a masked rectangle: nothing.
        let masked = run(&MotionParams {
            mask: vec![around_a()],
            ..params()
        });
        assert_eq!((masked.change, masked.area), (0.0, 0.0), "{masked:?}");
        // A zone around it names it.
        let zones = vec![
            zone("door", around_a()),
            zone("far", vec![[0.9, 0.9], [1.0, 0.9], [1.0, 1.0]]),
        ];
        let named = run(&MotionParams {
            zones: zones.clone(),
            ..params()
        });
        assert!(named.change > 50.0, "{named:?}");
        assert_eq!(named.zones, vec!["door".to_string()]);
        // Requiring another zone ignores it; requiring its own keeps it.
        let elsewhere = run(&MotionParams {
            zones: zones.clone(),
            required_zones: vec!["far".into()],
            ..params()
        });
        assert_eq!(
            (elsewhere.change, elsewhere.boxes.len()),
            (0.0, 0),
            "{elsewhere:?}"
        );
        let own = run(&MotionParams {
            zones,
            required_zones: vec!["door".into()],
            ..params()
        });
        assert_eq!(own.change, named.change);
    }

    #[test]
    fn light_steps_and_a_shaken_camera_are_not_motion() {
        let mut d = Detector::new();
        let t0 = Instant::now();
        let p = params();
        let img = base(W, H);
        d.analyse_luma(&img, W, H, t0, &p);
        // Brighter by a quarter, then darker by a third.
        for (i, gain) in [(1, 1.25f32), (2, 1.25), (3, 0.66), (4, 0.66)] {
            let lit: Vec<u8> = img.iter().map(|&v| (f32::from(v) * gain) as u8).collect();
            let a = d.analyse_luma(&lit, W, H, at(t0, i), &p);
            assert_eq!(a.change, 0.0, "gain {gain}: {a:?}");
        }
        // Shifted by a pixel each way.
        let mut d = Detector::new();
        d.analyse_luma(&img, W, H, t0, &p);
        for (i, dx) in [(1u64, 1usize), (2, 0), (3, 1)] {
            let shifted: Vec<u8> = (0..W * H)
                .map(|k| img[(k / W) * W + ((k % W) + dx).min(W - 1)])
                .collect();
            let a = d.analyse_luma(&shifted, W, H, at(t0, i), &p);
            assert_eq!(a.change, 0.0, "shift {dx}: {a:?}");
        }
    }

    #[test]
    fn score_is_logarithmic_in_the_blob_size() {
        assert_eq!(score(0.0), 0.0);
        assert_eq!(score(1.0), 100.0);
        assert!((18.0..24.0).contains(&score(0.001)), "{}", score(0.001));
        assert!((60.0..80.0).contains(&score(0.1)), "{}", score(0.1));
        assert!(score(0.002) > score(0.001) && score(0.5) < 100.0);
        assert_eq!(score(7.0), 100.0, "clamped");
    }

    /// A 1280x720 camera-like scene with noise, in RGB.
    fn camera_frame(rng: &mut Rng, shift: usize) -> Vec<u8> {
        let (w, h) = (1280, 720);
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let square = (shift..shift + 200).contains(&x) && (200..400).contains(&y);
                let v = if square { 220 } else { (x / 5 + y / 3) % 200 };
                let n = rng.pm(10);
                let px = |c: usize| (c as i32 + n).clamp(0, 255) as u8;
                rgb.extend_from_slice(&[px(v), px(v * 3 / 4), px(255 - v)]);
            }
        }
        rgb
    }

    /// Release-mode timing: `cargo test --release -- --ignored --nocapture timing`.
    #[test]
    #[ignore]
    fn timing_720p() {
        let mut rng = Rng(2024);
        let jpegs: Vec<Vec<u8>> = (0..8)
            .map(|i| encode_rgb(&camera_frame(&mut rng, 100 + 60 * i), 1280, 720, 80))
            .collect();
        let lumas: Vec<Vec<u8>> = jpegs
            .iter()
            .map(|j| {
                let mut v = Vec::new();
                decode_luma_into(j, &mut v).unwrap();
                v
            })
            .collect();
        let p = MotionParams::default();
        let n = 200u32;
        let t0 = Instant::now();
        // Best of 5 rounds: the machine is shared, so the minimum is the
        // closest to the real cost.
        let measure = |f: &mut dyn FnMut(usize)| {
            let mut best: Option<(Duration, Option<Duration>)> = None;
            for _ in 0..5 {
                let (wall, cpu) = (Instant::now(), thread_cpu());
                for i in 0..n as usize {
                    f(i);
                }
                let wall = wall.elapsed() / n;
                let cpu = thread_cpu().zip(cpu).map(|(b, a)| (b - a) / n);
                best = Some(match best {
                    Some((w, c)) => (w.min(wall), c.zip(cpu).map(|(x, y)| x.min(y))),
                    None => (wall, cpu),
                });
            }
            best.unwrap()
        };
        let mut d = Detector::new();
        let full = measure(&mut |i| {
            let a = d
                .analyse(&jpegs[i % jpegs.len()], at(t0, i as u64), &p)
                .unwrap();
            assert!(a.change <= 100.0);
        });
        let mut d = Detector::new();
        let luma_only = measure(&mut |i| {
            let a = d.analyse_luma(&lumas[i % lumas.len()], 1280, 720, at(t0, i as u64), &p);
            assert!(a.change <= 100.0);
        });
        let size = jpegs.iter().map(Vec::len).sum::<usize>() / jpegs.len();
        eprintln!("720p JPEG ~{} KB", size / 1024);
        eprintln!(
            "decode+analyse: wall {:?}, cpu {:?} per frame",
            full.0, full.1
        );
        eprintln!(
            "analyse_luma:   wall {:?}, cpu {:?} per frame",
            luma_only.0, luma_only.1
        );
        assert!(full.0 < Duration::from_millis(20), "far too slow");
    }
}
