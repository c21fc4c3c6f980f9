//! The picture the motion detector works on: the camera's JPEG decoded to
//! luma only, at a reduced size where the JPEG allows it (see [`jpeg`]),
//! box-averaged down to a small working image, and blurred.
//!
//! Entropy decoding dominates the cost of a JPEG, and colour adds nothing to
//! "did something move", so only the Y channel is produced, and only the
//! frequencies the working image can show. Averaging blocks (not point
//! sampling) removes most sensor noise and JPEG ringing, and makes every
//! later step cost microseconds.

pub mod jpeg;

use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Why a frame could not be analysed. It lives here, below the detector,
/// because decoding is the only step that can fail: the detector passes it on.
#[derive(Debug, thiserror::Error)]
pub enum MotionError {
    /// The bytes are not a JPEG zune-jpeg can decode to luma.
    #[error("cannot decode frame: {0}")]
    Decode(String),
}

/// Largest JPEG side accepted, to bound memory for a hostile or broken source.
const MAX_DECODE_SIDE: usize = 8192;

/// Decodes a JPEG to luma only, downscaled to about `max_width` wide. Returns (pixels, width, height).
pub fn decode_small_luma(
    jpeg: &[u8],
    max_width: usize,
) -> Result<(Vec<u8>, usize, usize), MotionError> {
    let mut full = Vec::new();
    let (w, h) = decode_luma_into(jpeg, &mut full)?;
    let mut small = Vec::new();
    let (sw, sh) = downscale_into(&full, w, h, max_width, &mut small);
    Ok((small, sw, sh))
}

/// Decodes `jpeg` to luma at least `min_width` wide but reduced by 2, 4 or
/// 8 where that keeps it so (see [`jpeg::reduction`]), into `out`; returns
/// (width, height). JPEGs the reduced decoder does not handle (progressive,
/// arithmetic, broken) are decoded in full into `full` and box-averaged to
/// the same size, so a camera's picture keeps one size whichever path a
/// frame takes.
pub fn decode_reduced_luma_into(
    jpeg: &[u8],
    min_width: usize,
    full: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(usize, usize), MotionError> {
    if let Ok(size) = jpeg::decode_reduced_luma(jpeg, min_width, out) {
        return Ok(size);
    }
    let (w, h) = decode_luma_into(jpeg, full)?;
    Ok(shrink_into(
        full,
        w,
        h,
        1 << jpeg::reduction(w, min_width),
        out,
    ))
}

/// Averages each `f`x`f` block of `src` (`w`x`h`, at least w*h bytes; the
/// blocks at the right and bottom edges may be smaller) into `out`, as a
/// JPEG's reduced decode shows them. Returns the size of `out`.
pub(crate) fn shrink_into(
    src: &[u8],
    w: usize,
    h: usize,
    f: usize,
    out: &mut Vec<u8>,
) -> (usize, usize) {
    let f = f.max(1);
    let (sw, sh) = (w.div_ceil(f), h.div_ceil(f));
    out.clear();
    out.reserve(sw * sh);
    let mut sums: Vec<u32> = Vec::new();
    for oy in 0..sh {
        let rows = &src[oy * f * w..((oy + 1) * f).min(h) * w];
        sum_columns(rows, w, &mut sums);
        let height = rows.len() / w;
        for block in sums.chunks(f) {
            let total: u32 = block.iter().sum();
            let count = (height * block.len()) as u32;
            out.push(((total + count / 2) / count) as u8);
        }
    }
    (sw, sh)
}

/// Decodes `jpeg` to full-size luma into `out` (reused to avoid a megabyte
/// allocation per frame). Returns (width, height).
pub fn decode_luma_into(jpeg: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), MotionError> {
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_max_width(MAX_DECODE_SIDE)
        .set_max_height(MAX_DECODE_SIDE);
    let mut decoder = JpegDecoder::new_with_options(jpeg, options);
    decoder
        .decode_headers()
        .map_err(|e| MotionError::Decode(e.to_string()))?;
    let (w, h) = decoder
        .dimensions()
        .ok_or_else(|| MotionError::Decode("no image dimensions".into()))?;
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| MotionError::Decode("image too large".into()))?;
    if size != w * h {
        // Luma output must be one byte per pixel; anything else is a format
        // zune-jpeg could not convert.
        return Err(MotionError::Decode(format!(
            "unexpected luma size {size} for {w}x{h}"
        )));
    }
    out.clear();
    out.resize(size, 0);
    decoder
        .decode_into(out)
        .map_err(|e| MotionError::Decode(e.to_string()))?;
    Ok((w, h))
}

/// Target size for shrinking `w`x`h` to at most `max_width` wide, keeping the
/// aspect ratio (never upscaling, never zero).
pub(crate) fn small_size(w: usize, h: usize, max_width: usize) -> (usize, usize) {
    let sw = w.min(max_width.max(1));
    let sh = ((h * sw + w / 2) / w).clamp(1, h);
    (sw, sh)
}

/// Box-averages `src` (`w`x`h`, at least w*h bytes) down to about `max_width`
/// wide into `out`. Every output pixel is the mean of its source block, so
/// all source pixels contribute (unlike point sampling, which would keep the
/// noise). The rows of a block are first summed column-wise (a loop the
/// compiler vectorises), then each output row folds those sums horizontally.
pub(crate) fn downscale_into(
    src: &[u8],
    w: usize,
    h: usize,
    max_width: usize,
    out: &mut Vec<u8>,
) -> (usize, usize) {
    let (sw, sh) = small_size(w, h, max_width);
    resize_into(src, w, h, sw, sh, out);
    (sw, sh)
}

/// Box-averages `src` (`w`x`h`, at least w*h bytes) to `sw`x`sh` (no larger
/// than `w`x`h`, not zero) into `out` (see [`downscale_into`]).
pub(crate) fn resize_into(src: &[u8], w: usize, h: usize, sw: usize, sh: usize, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(sw * sh);
    // u16 sums halve the memory traffic of the hot loop; they hold up to
    // 257 rows of 255, far more than the ~8 rows of a 720p block. Extreme
    // aspect ratios fall back to u32.
    let mut sums16: Vec<u16> = Vec::new();
    let mut sums32: Vec<u32> = Vec::new();
    for oy in 0..sh {
        let (y0, y1) = (oy * h / sh, (oy + 1) * h / sh);
        let rows = &src[y0 * w..y1 * w];
        if y1 - y0 <= usize::from(u16::MAX / 255) {
            sum_columns(rows, w, &mut sums16);
            fold_row(&sums16, y1 - y0, sw, out);
        } else {
            sum_columns(rows, w, &mut sums32);
            fold_row(&sums32, y1 - y0, sw, out);
        }
    }
}

/// Sets `sums[x]` to the sum of column `x` over the `w`-wide `rows`.
fn sum_columns<A>(rows: &[u8], w: usize, sums: &mut Vec<A>)
where
    A: Copy + Default + From<u8> + std::ops::AddAssign,
{
    sums.clear();
    sums.resize(w, A::default());
    for row in rows.chunks_exact(w) {
        for (sum, &px) in sums.iter_mut().zip(row) {
            *sum += A::from(px);
        }
    }
}

/// Appends `sw` block means of one output row, given the column sums of its
/// `rows` source rows.
fn fold_row<A: Copy + Into<u32>>(sums: &[A], rows: usize, sw: usize, out: &mut Vec<u8>) {
    let w = sums.len();
    for ox in 0..sw {
        let (x0, x1) = (ox * w / sw, (ox + 1) * w / sw);
        let total: u64 = sums[x0..x1].iter().map(|&s| u64::from(s.into())).sum();
        let count = (rows * (x1 - x0)) as u64;
        // Rounded mean; a mean of u8 values always fits in u8.
        out.push(((total + count / 2) / count) as u8);
    }
}

/// 3x3 box blur with edges replicated, as two separable passes
/// (horizontal into `tmp`, vertical into `out`).
pub(crate) fn blur3_into(src: &[u8], w: usize, h: usize, tmp: &mut Vec<f32>, out: &mut Vec<f32>) {
    tmp.clear();
    for row in src.chunks_exact(w) {
        for x in 0..w {
            let left = row[x.saturating_sub(1)];
            let right = row[(x + 1).min(w - 1)];
            tmp.push(f32::from(left) + f32::from(row[x]) + f32::from(right));
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
                .map(|((a, b), c)| (a + b + c) / 9.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscale_keeps_aspect_and_averages() {
        assert_eq!(small_size(1280, 720, 160), (160, 90));
        assert_eq!(small_size(320, 240, 160), (160, 120));
        assert_eq!(small_size(100, 50, 160), (100, 50));
        assert_eq!(small_size(1000, 1, 160), (160, 1));
        assert_eq!(small_size(5, 5, 0), (1, 1));
        let src = [0u8, 10, 20, 30, 40, 50, 60, 70];
        let mut out = Vec::new();
        assert_eq!(downscale_into(&src, 4, 2, 2, &mut out), (2, 1));
        // Blocks {0,10,40,50} and {20,30,60,70}.
        assert_eq!(out, vec![25, 45]);
    }

    #[test]
    fn decode_small_luma_of_a_real_jpeg() {
        let (w, h) = (320, 240);
        // A gray horizontal ramp in RGB, so the decoder must drop chroma.
        let mut rgb = Vec::with_capacity(w * h * 3);
        for _y in 0..h {
            for x in 0..w {
                let v = (x * 255 / (w - 1)) as u8;
                rgb.extend_from_slice(&[v, v, v]);
            }
        }
        let jpeg = encode_rgb(&rgb, w, h);
        let (luma, sw, sh) = decode_small_luma(&jpeg, 160).unwrap();
        assert_eq!((sw, sh), (160, 120));
        assert_eq!(luma.len(), 160 * 120);
        for (i, &v) in luma.iter().enumerate() {
            let x = i % 160;
            let expected = ((2 * x * 255 / (w - 1) + (2 * x + 1) * 255 / (w - 1)) / 2) as i32;
            assert!(
                (i32::from(v) - expected).abs() <= 6,
                "pixel {x},{}: {v} vs {expected}",
                i / 160
            );
        }
    }

    #[test]
    fn shrink_averages_aligned_blocks() {
        // 5x3 by 2: blocks of 2x2, 1x2, 2x1 and 1x1 at the edges.
        let src = [0u8, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28];
        let mut out = Vec::new();
        assert_eq!(shrink_into(&src, 5, 3, 2, &mut out), (3, 2));
        assert_eq!(out, vec![6, 10, 13, 21, 25, 28]);
        assert_eq!(shrink_into(&src, 5, 3, 1, &mut out), (5, 3));
        assert_eq!(out, src);
    }

    #[test]
    fn progressive_jpegs_fall_back_to_the_same_size() {
        let (w, h) = (640, 480);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let v = ((i % w) / 3 + (i / w) / 2) as u8;
                [v, v, v]
            })
            .collect();
        let encode = |progressive: bool| {
            let mut out = Vec::new();
            let mut e = jpeg_encoder::Encoder::new(&mut out, 90);
            e.set_progressive(progressive);
            e.encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            out
        };
        let (mut full, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        let sa = decode_reduced_luma_into(&encode(false), 240, &mut full, &mut a).unwrap();
        let sb = decode_reduced_luma_into(&encode(true), 240, &mut full, &mut b).unwrap();
        assert_eq!((sa, sb), ((320, 240), (320, 240)));
        // Alike but for ringing at the ramp's wrap from 255 to 0.
        let mean = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x.abs_diff(y)))
            .sum::<f64>()
            / a.len() as f64;
        assert!(mean < 1.0, "{mean}");
        assert!(decode_reduced_luma_into(b"junk", 240, &mut full, &mut a).is_err());
    }

    fn encode_rgb(rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }
}
