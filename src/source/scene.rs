//! Picture generator for the `synthetic` camera source.
//!
//! The synthetic source lets lookout run (and be tested) without camera
//! hardware. It shows a small backyard — sky and lawn gradients, a house and
//! a fence — overlaid with fixed sensor-like noise, a burned-in `MM:SS` clock
//! and, depending on [`MotionMode`], a ball rolling across the lawn.
//!
//! A real camera hands lookout finished JPEGs, so the synthetic source should
//! cost about as little CPU. Encoding a noisy 720p frame takes ~10 ms, which
//! would be wasted if repeated every frame. Instead the playback is a fixed
//! *cycle* of frame slots and every slot maps to one of a few *distinct
//! pictures* ([`Scene::picture_for_slot`]). The caller renders and encodes
//! each picture once ([`Scene::render_jpeg`]), caches the JPEG and replays the
//! cycle forever. Still seconds share one picture (only the clock changes,
//! once per second), so a 720p30 periodic cycle needs just 140 JPEGs.

use std::fmt;
use std::str::FromStr;

/// Seconds of the motion phase (the ball crosses the picture once).
pub const MOTION_SECS: usize = 4;
/// Seconds of the still phase (only the clock ticks).
pub const STILL_SECS: usize = 20;
/// JPEG quality: high enough to look clean, low enough to keep frames small.
const JPEG_QUALITY: u8 = 80;
/// Largest per-pixel noise offset in levels; small so JPEGs stay ~50-120 KB.
const NOISE_AMPLITUDE: i16 = 6;
/// Fixed PRNG seed so every run (and every test) sees the same noise.
const NOISE_SEED: u64 = 0x6c6f_6f6b_6f75_7421;

const MIN_WIDTH: u32 = 16;
const MAX_WIDTH: u32 = 3840;
const MIN_HEIGHT: u32 = 16;
const MAX_HEIGHT: u32 = 2160;
const MIN_FPS: u32 = 1;
const MAX_FPS: u32 = 60;

/// When the synthetic camera shows the moving object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MotionMode {
    /// [`MOTION_SECS`] of motion followed by [`STILL_SECS`] of stillness, so
    /// both motion start and motion end events get exercised.
    #[default]
    Periodic,
    /// The object moves back and forth without pause.
    Always,
    /// Nothing moves; only the clock ticks.
    Never,
}

impl MotionMode {
    /// The configuration spelling of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            MotionMode::Periodic => "periodic",
            MotionMode::Always => "always",
            MotionMode::Never => "never",
        }
    }
}

impl fmt::Display for MotionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MotionMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "periodic" => Ok(MotionMode::Periodic),
            "always" => Ok(MotionMode::Always),
            "never" => Ok(MotionMode::Never),
            other => Err(format!(
                "unknown motion mode {other:?}: expected \"periodic\", \"always\" or \"never\""
            )),
        }
    }
}

/// Why a scene could not be built or rendered.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// Width or height outside the supported range.
    #[error(
        "invalid scene size {width}x{height}: width must be {MIN_WIDTH}..={MAX_WIDTH} \
         and height {MIN_HEIGHT}..={MAX_HEIGHT}"
    )]
    Size {
        /// Requested width in pixels.
        width: u32,
        /// Requested height in pixels.
        height: u32,
    },
    /// Frame rate outside the supported range.
    #[error("invalid scene fps {0}: must be {MIN_FPS}..={MAX_FPS}")]
    Fps(u32),
    /// The JPEG encoder refused the picture.
    #[error("jpeg encode failed: {0}")]
    Encode(String),
    /// A picture id that is not below [`Scene::picture_count`].
    #[error("picture {picture} out of range (scene has {count} pictures)")]
    Picture {
        /// The requested picture id.
        picture: usize,
        /// Number of distinct pictures in the scene.
        count: usize,
    },
}

/// An RGB colour.
type Rgb = [u8; 3];

const BALL_COLOUR: Rgb = [250, 215, 40];
const CLOCK_BACK: Rgb = [20, 20, 20];
const CLOCK_INK: Rgb = [235, 235, 235];

/// The synthetic backyard: cycle layout plus the pre-rendered static part.
pub struct Scene {
    width: u32,
    height: u32,
    fps: u32,
    motion: MotionMode,
    /// Background, static shapes and noise, RGB, rendered once in `new`.
    background: Vec<u8>,
    /// The noise field, kept so the moving object looks as grainy as the rest.
    noise: Vec<i8>,
}

impl Scene {
    /// Builds a scene and pre-renders its static part.
    ///
    /// width/height: 16..=3840 x 16..=2160 (even numbers not required), fps
    /// 1..=60, quality fixed ~80.
    pub fn new(width: u32, height: u32, fps: u32, motion: MotionMode) -> Result<Scene, SceneError> {
        let size_ok =
            (MIN_WIDTH..=MAX_WIDTH).contains(&width) && (MIN_HEIGHT..=MAX_HEIGHT).contains(&height);
        if !size_ok {
            return Err(SceneError::Size { width, height });
        }
        if !(MIN_FPS..=MAX_FPS).contains(&fps) {
            return Err(SceneError::Fps(fps));
        }
        let noise = make_noise(width as usize * height as usize);
        let mut canvas = Canvas::new(width, height);
        paint_backyard(&mut canvas);
        canvas.add_noise(&noise);
        Ok(Scene {
            width,
            height,
            fps,
            motion,
            background: canvas.pixels,
            noise,
        })
    }

    /// Picture width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Picture height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Frames per second the cycle is laid out for.
    pub fn fps(&self) -> u32 {
        self.fps
    }

    /// The motion mode the scene was built with.
    pub fn motion(&self) -> MotionMode {
        self.motion
    }

    /// Number of frame slots in one cycle (fps * cycle seconds).
    pub fn cycle_len(&self) -> usize {
        let secs = match self.motion {
            MotionMode::Periodic => MOTION_SECS + STILL_SECS,
            MotionMode::Always => MOTION_SECS,
            MotionMode::Never => STILL_SECS,
        };
        secs * self.fps as usize
    }

    /// Distinct-picture id for a slot (slot taken modulo cycle_len); slots in
    /// the same still second share an id.
    pub fn picture_for_slot(&self, slot: usize) -> usize {
        let slot = slot % self.cycle_len();
        let fps = self.fps as usize;
        match self.motion {
            MotionMode::Always => slot,
            MotionMode::Never => slot / fps,
            MotionMode::Periodic => {
                let motion_slots = self.motion_pictures();
                if slot < motion_slots {
                    slot
                } else {
                    motion_slots + (slot - motion_slots) / fps
                }
            }
        }
    }

    /// Number of distinct pictures (ids are 0..picture_count()).
    pub fn picture_count(&self) -> usize {
        self.motion_pictures() + self.still_pictures()
    }

    /// True when the picture shows the moving object (the detector tests use
    /// this).
    pub fn is_motion_picture(&self, picture: usize) -> bool {
        picture < self.motion_pictures()
    }

    /// Renders and encodes one picture to a baseline JPEG (YCbCr 4:2:0,
    /// quality ~80). Blocking, CPU-bound: the caller runs it off the async
    /// executor.
    pub fn render_jpeg(&self, picture: usize) -> Result<Vec<u8>, SceneError> {
        let count = self.picture_count();
        if picture >= count {
            return Err(SceneError::Picture { picture, count });
        }
        let rgb = self.render_rgb(picture);
        encode_jpeg(&rgb, self.width, self.height)
    }

    /// Pictures with the object: one per motion frame (none for `Never`).
    fn motion_pictures(&self) -> usize {
        match self.motion {
            MotionMode::Periodic | MotionMode::Always => MOTION_SECS * self.fps as usize,
            MotionMode::Never => 0,
        }
    }

    /// Pictures without the object: one per still second.
    fn still_pictures(&self) -> usize {
        match self.motion {
            MotionMode::Periodic | MotionMode::Never => STILL_SECS,
            MotionMode::Always => 0,
        }
    }

    /// Renders a picture (id already checked) into a fresh RGB buffer.
    fn render_rgb(&self, picture: usize) -> Vec<u8> {
        let mut canvas = Canvas {
            width: self.width as usize,
            height: self.height as usize,
            pixels: self.background.clone(),
        };
        if let Some((cx, cy, r)) = self.ball(picture) {
            canvas.fill_noisy_circle(cx, cy, r, BALL_COLOUR, &self.noise);
        }
        draw_clock(&mut canvas, self.clock_secs(picture));
        canvas.pixels
    }

    /// Seconds into the cycle at which the picture is shown, for the clock.
    fn clock_secs(&self, picture: usize) -> usize {
        let motion = self.motion_pictures();
        if picture < motion {
            picture / self.fps as usize
        } else {
            let still_start = match self.motion {
                MotionMode::Periodic => MOTION_SECS,
                MotionMode::Always | MotionMode::Never => 0,
            };
            still_start + (picture - motion)
        }
    }

    /// Centre and radius of the ball in a motion picture, `None` otherwise.
    ///
    /// The ball rolls along the lawn; its diameter is half the height, so it
    /// covers about a tenth of the picture and, with its trail, passes the
    /// default threshold of 12 %: the default camera shows a motion trigger
    /// every cycle with no set-up.
    fn ball(&self, picture: usize) -> Option<(i64, i64, i64)> {
        let frames = self.motion_pictures();
        if picture >= frames {
            return None;
        }
        let phase = picture as f32 / frames as f32;
        let progress = match self.motion {
            // Left to right once, then the still phase.
            MotionMode::Periodic => phase,
            // Triangle wave: right, then back, so the loop is seamless.
            _ => 1.0 - (2.0 * phase - 1.0).abs(),
        };
        let w = self.width as f32;
        let h = self.height as f32;
        let r = (h / 4.0).max(1.0);
        let cx = r + progress * (w - 2.0 * r).max(0.0);
        let cy = h * 0.72;
        Some((cx.round() as i64, cy.round() as i64, r.round() as i64))
    }
}

/// Encodes an RGB buffer as a baseline 4:2:0 JPEG.
fn encode_jpeg(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, SceneError> {
    // Dimensions were validated in `Scene::new` (<= 3840), so they fit u16.
    let w = u16::try_from(width).map_err(|e| SceneError::Encode(e.to_string()))?;
    let h = u16::try_from(height).map_err(|e| SceneError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(rgb.len() / 16);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.set_progressive(false);
    encoder
        .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| SceneError::Encode(e.to_string()))?;
    Ok(out)
}

/// SplitMix64: tiny, fast and good enough for visual noise.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One noise offset per pixel in `-NOISE_AMPLITUDE..=NOISE_AMPLITUDE`.
///
/// The same offset goes to all three channels, like luminance grain.
fn make_noise(pixels: usize) -> Vec<i8> {
    let span = (2 * NOISE_AMPLITUDE + 1) as u64;
    let mut rng = SplitMix64(NOISE_SEED);
    (0..pixels)
        .map(|_| ((rng.next() % span) as i16 - NOISE_AMPLITUDE) as i8)
        .collect()
}

/// An RGB raster with clipped drawing primitives.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Canvas {
        let (width, height) = (width as usize, height as usize);
        Canvas {
            width,
            height,
            pixels: vec![0; width * height * 3],
        }
    }

    /// Horizontal position `f` (0..1) of the width, in pixels.
    fn fx(&self, f: f32) -> i64 {
        (f * self.width as f32).round() as i64
    }

    /// Vertical position `f` (0..1) of the height, in pixels.
    fn fy(&self, f: f32) -> i64 {
        (f * self.height as f32).round() as i64
    }

    /// Clamps a half-open span to `0..limit`.
    fn clip(a: i64, b: i64, limit: usize) -> (usize, usize) {
        let lo = a.clamp(0, limit as i64) as usize;
        let hi = b.clamp(0, limit as i64) as usize;
        (lo, hi.max(lo))
    }

    /// Fills the half-open rectangle `[x0, x1) x [y0, y1)`, clipped.
    fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb) {
        let (y0, y1) = Self::clip(y0, y1, self.height);
        for y in y0..y1 {
            self.fill_span(y, x0, x1, colour);
        }
    }

    /// Fills row `y` (in range) from `x0` to `x1` (exclusive), clipped.
    fn fill_span(&mut self, y: usize, x0: i64, x1: i64, colour: Rgb) {
        let (x0, x1) = Self::clip(x0, x1, self.width);
        let row = y * self.width;
        for px in self.pixels[(row + x0) * 3..(row + x1) * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&colour);
        }
    }

    /// Fills a circle, adding the scene noise so it matches the background.
    fn fill_noisy_circle(&mut self, cx: i64, cy: i64, r: i64, colour: Rgb, noise: &[i8]) {
        let (y0, y1) = Self::clip(cy - r, cy + r + 1, self.height);
        for y in y0..y1 {
            let dy = y as i64 - cy;
            let half = ((r * r - dy * dy).max(0) as f64).sqrt().round() as i64;
            let (x0, x1) = Self::clip(cx - half, cx + half + 1, self.width);
            for x in x0..x1 {
                let i = y * self.width + x;
                let n = noise[i];
                for (c, dst) in colour.iter().zip(&mut self.pixels[i * 3..i * 3 + 3]) {
                    *dst = add_noise(*c, n);
                }
            }
        }
    }

    /// Adds the per-pixel noise to everything painted so far.
    fn add_noise(&mut self, noise: &[i8]) {
        for (px, &n) in self.pixels.chunks_exact_mut(3).zip(noise) {
            for c in px {
                *c = add_noise(*c, n);
            }
        }
    }
}

/// Adds a signed noise offset to a channel value, saturating.
fn add_noise(value: u8, noise: i8) -> u8 {
    (i16::from(value) + i16::from(noise)).clamp(0, 255) as u8
}

/// Linear blend of two colours, `t` in 0..=1.
fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    let channel =
        |i: usize| (f32::from(a[i]) + (f32::from(b[i]) - f32::from(a[i])) * t).round() as u8;
    [channel(0), channel(1), channel(2)]
}

/// Where the sky meets the lawn, as a fraction of the height.
const HORIZON: f32 = 0.45;

/// Paints the static backyard: gradients, house and fence.
fn paint_backyard(canvas: &mut Canvas) {
    paint_gradients(canvas);
    paint_fence(canvas);
    paint_house(canvas);
}

/// Sky and lawn gradients; smooth so the JPEG size is dominated by noise,
/// not by hard-to-compress structure.
fn paint_gradients(canvas: &mut Canvas) {
    let (w, h) = (canvas.width, canvas.height);
    let horizon = canvas.fy(HORIZON).max(0) as usize;
    for y in 0..h {
        let (left, right) = if y < horizon {
            let t = y as f32 / horizon.max(1) as f32;
            (
                mix([95, 145, 215], [180, 210, 240], t),
                mix([120, 165, 225], [200, 220, 240], t),
            )
        } else {
            let t = (y - horizon) as f32 / (h - horizon).max(1) as f32;
            (
                mix([85, 145, 65], [45, 100, 40], t),
                mix([70, 130, 55], [35, 85, 35], t),
            )
        };
        let row = y * w;
        for x in 0..w {
            let colour = mix(left, right, x as f32 / w as f32);
            canvas.pixels[(row + x) * 3..(row + x) * 3 + 3].copy_from_slice(&colour);
        }
    }
}

/// A house on the left: wall, triangular roof, door and window.
fn paint_house(canvas: &mut Canvas) {
    let (wall_x0, wall_x1) = (canvas.fx(0.10), canvas.fx(0.40));
    let (wall_y0, wall_y1) = (canvas.fy(0.28), canvas.fy(0.60));
    canvas.fill_rect(wall_x0, wall_y0, wall_x1, wall_y1, [190, 155, 115]);

    let (roof_y0, roof_y1) = (canvas.fy(0.12), wall_y0);
    let (roof_x0, roof_x1) = (canvas.fx(0.07), canvas.fx(0.43));
    let centre = (roof_x0 + roof_x1) / 2;
    let half_base = (roof_x1 - roof_x0) / 2;
    let rows = (roof_y1 - roof_y0).max(1);
    let (first, last) = Canvas::clip(roof_y0, roof_y1, canvas.height);
    for row in first..last {
        let half = half_base * (row as i64 - roof_y0 + 1) / rows;
        canvas.fill_span(row, centre - half, centre + half + 1, [125, 55, 45]);
    }

    let door_x0 = canvas.fx(0.19);
    canvas.fill_rect(
        door_x0,
        canvas.fy(0.43),
        canvas.fx(0.26),
        wall_y1,
        [95, 62, 40],
    );
    let (win_x0, win_x1) = (canvas.fx(0.29), canvas.fx(0.36));
    let (win_y0, win_y1) = (canvas.fy(0.34), canvas.fy(0.44));
    canvas.fill_rect(win_x0, win_y0, win_x1, win_y1, [235, 230, 215]);
    let frame = (canvas.width as i64 / 320).max(1);
    canvas.fill_rect(
        win_x0 + frame,
        win_y0 + frame,
        win_x1 - frame,
        win_y1 - frame,
        [70, 90, 120],
    );
}

/// A picket fence along the horizon, behind the house.
fn paint_fence(canvas: &mut Canvas) {
    const PAINT: Rgb = [215, 208, 192];
    let (top, bottom) = (canvas.fy(0.36), canvas.fy(0.56));
    let pitch = (canvas.width as i64 / 32).max(2);
    let picket = (pitch / 2).max(1);
    let rail = (canvas.height as i64 / 90).max(1);
    for rail_y in [canvas.fy(0.41), canvas.fy(0.51)] {
        canvas.fill_rect(0, rail_y, canvas.width as i64, rail_y + rail, PAINT);
    }
    let mut x = pitch / 4;
    while x < canvas.width as i64 {
        canvas.fill_rect(x, top, x + picket, bottom, PAINT);
        x += pitch;
    }
}

/// 5x7 bitmap glyphs, one byte per row, bit 4 = leftmost column.
const GLYPH_WIDTH: usize = 5;
const GLYPH_HEIGHT: usize = 7;
const DIGITS: [[u8; GLYPH_HEIGHT]; 10] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e], // 0
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e], // 1
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f], // 2
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e], // 3
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02], // 4
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e], // 5
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e], // 6
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e], // 8
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c], // 9
];
const COLON: [u8; GLYPH_HEIGHT] = [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00];

/// The corner the clock is drawn in, as a normalized mask polygon (with a
/// margin), for a `width`x`height` picture.
pub fn clock_mask(width: u32, height: u32) -> crate::zones::Polygon {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let scale = f64::from((height / 80).max(1));
    // The clock box is 31x9 glyph cells plus a one-cell margin (see
    // `draw_clock`); one more cell around it.
    let left = (1.0 - 33.0 * scale / w).clamp(0.0, 0.95);
    let bottom = (11.0 * scale / h).clamp(0.05, 1.0);
    let r = |v: f64| (v * 10_000.0).round() / 10_000.0;
    vec![
        [r(left), 0.0],
        [1.0, 0.0],
        [1.0, r(bottom)],
        [r(left), r(bottom)],
    ]
}

/// Draws `MM:SS` on a dark box in the top-right corner, like a camera OSD.
///
/// The glyph scale follows the image height so the clock stays readable at
/// any resolution while covering only a small corner of the picture.
fn draw_clock(canvas: &mut Canvas, secs: usize) {
    let text = [
        DIGITS[(secs / 600) % 10],
        DIGITS[(secs / 60) % 10],
        COLON,
        DIGITS[(secs % 60) / 10],
        DIGITS[secs % 10],
    ];
    let scale = (canvas.height / 80).max(1) as i64;
    let advance = (GLYPH_WIDTH + 1) as i64;
    let box_w = (text.len() as i64 * advance + 1) * scale;
    let box_h = (GLYPH_HEIGHT as i64 + 2) * scale;
    let margin = scale;
    let box_x = canvas.width as i64 - margin - box_w;
    let box_y = margin;
    canvas.fill_rect(box_x, box_y, box_x + box_w, box_y + box_h, CLOCK_BACK);
    for (i, glyph) in text.iter().enumerate() {
        let x = box_x + (1 + i as i64 * advance) * scale;
        draw_glyph(canvas, glyph, x, box_y + scale, scale);
    }
}

/// Draws one 5x7 glyph with its top-left corner at `(x, y)`, each bitmap
/// cell a `scale`-sized square.
fn draw_glyph(canvas: &mut Canvas, glyph: &[u8; GLYPH_HEIGHT], x: i64, y: i64, scale: i64) {
    for (row, bits) in glyph.iter().enumerate() {
        for col in 0..GLYPH_WIDTH {
            if bits & (0x10 >> col) != 0 {
                let px = x + col as i64 * scale;
                let py = y + row as i64 * scale;
                canvas.fill_rect(px, py, px + scale, py + scale, CLOCK_INK);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    use zune_jpeg::JpegDecoder;

    const W: u32 = 160;
    const H: u32 = 120;
    const FPS: u32 = 10;

    fn scene(motion: MotionMode) -> Scene {
        Scene::new(W, H, FPS, motion).unwrap()
    }

    /// Decodes a JPEG to luma, checking it has the scene's dimensions.
    fn decode_luma(jpeg: &[u8]) -> Vec<u8> {
        let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::Luma);
        let mut decoder = JpegDecoder::new_with_options(jpeg, options);
        let luma = decoder.decode().unwrap();
        assert_eq!(decoder.dimensions(), Some((W as usize, H as usize)));
        assert_eq!(luma.len(), (W * H) as usize);
        luma
    }

    fn luma_of(scene: &Scene, picture: usize) -> Vec<u8> {
        decode_luma(&scene.render_jpeg(picture).unwrap())
    }

    /// Fraction of pixels whose luma differs by more than `threshold`.
    fn changed_fraction(a: &[u8], b: &[u8], threshold: u8) -> f64 {
        let changed = a
            .iter()
            .zip(b)
            .filter(|(x, y)| x.abs_diff(**y) > threshold)
            .count();
        changed as f64 / a.len() as f64
    }

    #[test]
    fn cycle_and_picture_counts_per_mode() {
        let fps = FPS as usize;
        let periodic = scene(MotionMode::Periodic);
        assert_eq!(periodic.cycle_len(), 24 * fps);
        assert_eq!(periodic.picture_count(), 4 * fps + 20);
        let always = scene(MotionMode::Always);
        assert_eq!(always.cycle_len(), 4 * fps);
        assert_eq!(always.picture_count(), 4 * fps);
        let never = scene(MotionMode::Never);
        assert_eq!(never.cycle_len(), 20 * fps);
        assert_eq!(never.picture_count(), 20);
    }

    #[test]
    fn hd_periodic_cycle_has_140_pictures() {
        let s = Scene::new(1280, 720, 30, MotionMode::Periodic).unwrap();
        assert_eq!(s.picture_count(), 140);
        assert_eq!(s.cycle_len(), 720);
    }

    #[test]
    fn every_slot_maps_to_a_valid_picture_and_all_are_used() {
        for mode in [MotionMode::Periodic, MotionMode::Always, MotionMode::Never] {
            let s = scene(mode);
            let mut used = vec![false; s.picture_count()];
            for slot in 0..s.cycle_len() {
                used[s.picture_for_slot(slot)] = true;
            }
            assert!(used.iter().all(|u| *u), "{mode}: unused picture");
        }
    }

    #[test]
    fn still_slots_share_a_picture_per_second() {
        let s = scene(MotionMode::Periodic);
        let still_start = 4 * FPS as usize;
        let first = s.picture_for_slot(still_start);
        for slot in still_start..still_start + FPS as usize {
            assert_eq!(s.picture_for_slot(slot), first);
        }
        let next = s.picture_for_slot(still_start + FPS as usize);
        assert_ne!(next, first);
        assert!(!s.is_motion_picture(first));
        assert!(!s.is_motion_picture(next));

        let never = scene(MotionMode::Never);
        assert_eq!(never.picture_for_slot(0), never.picture_for_slot(9));
        assert_ne!(never.picture_for_slot(9), never.picture_for_slot(10));
    }

    #[test]
    fn consecutive_motion_slots_differ() {
        for mode in [MotionMode::Periodic, MotionMode::Always] {
            let s = scene(mode);
            for slot in 1..4 * FPS as usize {
                let (a, b) = (s.picture_for_slot(slot - 1), s.picture_for_slot(slot));
                assert_ne!(a, b, "{mode}: slot {slot}");
                assert!(s.is_motion_picture(a) && s.is_motion_picture(b));
            }
        }
        let never = scene(MotionMode::Never);
        assert!((0..never.picture_count()).all(|p| !never.is_motion_picture(p)));
    }

    #[test]
    fn slots_wrap_around_the_cycle() {
        for mode in [MotionMode::Periodic, MotionMode::Always, MotionMode::Never] {
            let s = scene(mode);
            let n = s.cycle_len();
            for slot in [0, 1, n / 2, n - 1] {
                assert_eq!(s.picture_for_slot(slot), s.picture_for_slot(slot + n));
                assert_eq!(s.picture_for_slot(slot), s.picture_for_slot(slot + 3 * n));
            }
        }
    }

    #[test]
    fn always_mode_moves_out_and_back() {
        let s = scene(MotionMode::Always);
        let n = s.picture_count();
        let x = |p: usize| s.ball(p).unwrap().0;
        assert!(
            x(n / 2) > x(0) + W as i64 / 2,
            "ball should reach the right"
        );
        assert!(x(n - 1) < x(n / 2), "ball should come back");
        assert!(
            (x(n - 1) - x(0)).abs() <= W as i64 / 10,
            "loop should be seamless"
        );
    }

    #[test]
    fn jpeg_decodes_to_requested_size() {
        let s = scene(MotionMode::Periodic);
        for picture in [0, s.picture_count() - 1] {
            let jpeg = s.render_jpeg(picture).unwrap();
            assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
            decode_luma(&jpeg);
        }
        // Odd sizes are allowed too.
        let odd = Scene::new(17, 31, 1, MotionMode::Always).unwrap();
        let mut decoder = JpegDecoder::new(odd.render_jpeg(0).unwrap());
        decoder.decode().unwrap();
        assert_eq!(decoder.dimensions(), Some((17, 31)));
    }

    #[test]
    fn out_of_range_picture_is_an_error() {
        let s = scene(MotionMode::Never);
        assert!(matches!(
            s.render_jpeg(20),
            Err(SceneError::Picture {
                picture: 20,
                count: 20
            })
        ));
    }

    #[test]
    fn image_is_not_flat() {
        let luma = luma_of(&scene(MotionMode::Never), 0);
        let n = luma.len() as f64;
        let mean = luma.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = luma
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(var.sqrt() > 20.0, "luma std-dev {} too small", var.sqrt());
    }

    #[test]
    fn moving_object_changes_its_region() {
        let s = scene(MotionMode::Periodic);
        let (a, b) = (0, s.motion_pictures() / 2);
        let (la, lb) = (luma_of(&s, a), luma_of(&s, b));
        let (cx, cy, r) = s.ball(a).unwrap();
        // Inner square of the ball at picture `a`; the ball has left it by `b`.
        let half = r / 2;
        let mut total = 0u64;
        let mut count = 0u64;
        for y in cy - half..=cy + half {
            for x in cx - half..=cx + half {
                let i = y as usize * W as usize + x as usize;
                total += u64::from(la[i].abs_diff(lb[i]));
                count += 1;
            }
        }
        let mean_diff = total / count;
        assert!(mean_diff > 60, "mean luma diff {mean_diff} in ball region");
        assert!(changed_fraction(&la, &lb, 25) > 0.03);
    }

    #[test]
    fn consecutive_motion_pictures_differ() {
        let s = scene(MotionMode::Periodic);
        let (la, lb) = (luma_of(&s, 10), luma_of(&s, 11));
        assert!(changed_fraction(&la, &lb, 25) > 0.002);
    }

    #[test]
    fn still_pictures_differ_only_in_the_clock() {
        let s = scene(MotionMode::Periodic);
        let first_still = s.motion_pictures();
        let (la, lb) = (luma_of(&s, first_still), luma_of(&s, first_still + 1));
        let changed = changed_fraction(&la, &lb, 25);
        assert!(changed > 0.0, "clock should tick");
        assert!(changed < 0.03, "{changed} of pixels changed");
        // The changes are confined to the top-right clock corner, inside
        // the clock's mask.
        let mask =
            crate::zones::ZoneMap::new(&[clock_mask(W, H)], &[], &[], W as usize, H as usize);
        for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
            if x.abs_diff(*y) > 25 {
                let (px, py) = (i % W as usize, i / W as usize);
                assert!(
                    px >= W as usize / 2 && py < H as usize / 4,
                    "change at {px},{py}"
                );
                assert!(mask.ignored(i), "change at {px},{py} outside the mask");
            }
        }
    }

    #[test]
    fn motion_mode_parses_and_displays() {
        for mode in [MotionMode::Periodic, MotionMode::Always, MotionMode::Never] {
            assert_eq!(mode.to_string().parse::<MotionMode>(), Ok(mode));
        }
        assert_eq!("always".parse(), Ok(MotionMode::Always));
        let err = "sometimes".parse::<MotionMode>().unwrap_err();
        assert!(err.contains("periodic") && err.contains("always") && err.contains("never"));
        assert!("Periodic".parse::<MotionMode>().is_err());
        assert!("".parse::<MotionMode>().is_err());
        assert_eq!(MotionMode::default(), MotionMode::Periodic);
    }

    #[test]
    fn new_rejects_bad_sizes_and_fps() {
        let bad_sizes = [(0, 0), (15, 120), (160, 15), (3841, 720), (1280, 2161)];
        for (w, h) in bad_sizes {
            let result = Scene::new(w, h, 10, MotionMode::Periodic);
            assert!(
                matches!(result, Err(SceneError::Size { width, height }) if width == w && height == h),
                "{w}x{h} accepted"
            );
        }
        for fps in [0, 61] {
            let result = Scene::new(160, 120, fps, MotionMode::Periodic);
            assert!(
                matches!(result, Err(SceneError::Fps(f)) if f == fps),
                "{fps} fps accepted"
            );
        }
        assert!(Scene::new(16, 16, 1, MotionMode::Never).is_ok());
        assert!(Scene::new(3840, 2160, 60, MotionMode::Never).is_ok());
    }
}
