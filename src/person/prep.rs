//! A JPEG to the model's input: decode (refusing hostile sizes first), crop
//! the region, scale it into 416x416 keeping its shape, and normalize the
//! way NanoDet was trained.
//!
//! Pure code on byte slices, compiled and tested in every build.

use crate::jpeg::JpegError;

use super::decode::{Letterbox, INPUT};
use super::error::PersonError;

pub use crate::jpeg::{MAX_PIXELS, MAX_SIDE};

/// NanoDet's per-channel mean and standard deviation, in its BGR order (the
/// OpenCV convention it was trained with). Plain RGB scaled to 0..1 lost two
/// of 21 people in the first trial.
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];

pub(crate) use crate::jpeg::Rgb;

/// Decodes a JPEG to RGB after checking the size its header claims (a
/// grayscale one, from a camera's night mode, as three equal channels).
pub(crate) fn decode_jpeg(jpeg: &[u8]) -> Result<Rgb, PersonError> {
    crate::jpeg::decode_rgb(jpeg).map_err(|e| match e {
        JpegError::Decode(e) => PersonError::Decode(e),
        JpegError::TooLarge { width, height } => PersonError::TooLarge { width, height },
    })
}

/// The model's input for the crop `lb` of `img`: 1x3x416x416 planes in B, G,
/// R order, each `(v - mean) / std`. Outside the placed crop the planes are
/// 0, which is the mean colour.
///
/// Scaling samples the crop bilinearly, after first averaging boxes of
/// pixels when it shrinks by 2 or more (a 1080p frame to 416 would
/// otherwise skip most pixels and alias thin limbs away).
pub(crate) fn model_input(img: &Rgb, lb: &Letterbox) -> Vec<f32> {
    let plane = INPUT * INPUT;
    let mut out = vec![0.0f32; 3 * plane];
    let [_, _, cw, ch] = lb.crop;
    // Shrink by the integer part of the scale first, so that bilinear
    // sampling never skips more than every other pixel.
    let factor = ((1.0 / lb.scale).floor() as usize).max(1);
    let (src, sw, sh) = if factor > 1 {
        box_shrink(img, lb.crop, factor)
    } else {
        (crop_rgb(img, lb.crop), cw, ch)
    };
    let [px, py, pw, ph] = lb.placed;
    let scale = [sw as f32 / pw as f32, sh as f32 / ph as f32];
    for oy in 0..ph {
        // Pixel centres line up: input pixel oy covers source rows
        // (oy + 0.5) * scale - 0.5 and its neighbour.
        let fy = ((oy as f32 + 0.5) * scale[1] - 0.5).clamp(0.0, (sh - 1) as f32);
        let y0 = fy as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let wy = fy - y0 as f32;
        for ox in 0..pw {
            let fx = ((ox as f32 + 0.5) * scale[0] - 0.5).clamp(0.0, (sw - 1) as f32);
            let x0 = fx as usize;
            let x1 = (x0 + 1).min(sw - 1);
            let wx = fx - x0 as f32;
            let at = (py + oy) * INPUT + px + ox;
            for c in 0..3 {
                let p = |x: usize, y: usize| f32::from(src[(y * sw + x) * 3 + c]);
                let top = p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx;
                let bottom = p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx;
                let v = top * (1.0 - wy) + bottom * wy;
                // RGB channel c goes to BGR plane 2 - c.
                let b = 2 - c;
                out[b * plane + at] = (v - MEAN_BGR[b]) / STD_BGR[b];
            }
        }
    }
    out
}

/// The crop's pixels, contiguous.
fn crop_rgb(img: &Rgb, [cx, cy, cw, ch]: [usize; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cw * ch * 3);
    for y in cy..cy + ch {
        let row = (y * img.width + cx) * 3;
        out.extend_from_slice(&img.pixels[row..row + cw * 3]);
    }
    out
}

/// The crop shrunk by `factor` both ways, each output pixel the mean of a
/// `factor`x`factor` box (the last row and column take what is left).
fn box_shrink(img: &Rgb, [cx, cy, cw, ch]: [usize; 4], factor: usize) -> (Vec<u8>, usize, usize) {
    let (sw, sh) = (cw.div_ceil(factor), ch.div_ceil(factor));
    let mut sums = vec![0u32; sw * sh * 3];
    let mut counts = vec![0u32; sw * sh];
    for y in 0..ch {
        let row = ((cy + y) * img.width + cx) * 3;
        let oy = y / factor;
        for x in 0..cw {
            let o = oy * sw + x / factor;
            counts[o] += 1;
            for c in 0..3 {
                sums[o * 3 + c] += u32::from(img.pixels[row + x * 3 + c]);
            }
        }
    }
    let out = sums
        .iter()
        .enumerate()
        .map(|(i, &s)| ((s + counts[i / 3] / 2) / counts[i / 3].max(1)) as u8)
        .collect();
    (out, sw, sh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u16, h: u16, rgb: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 95)
            .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn decodes_a_jpeg_to_rgb() {
        let rgb: Vec<u8> = (0..64 * 48).flat_map(|_| [200, 100, 50]).collect();
        let img = decode_jpeg(&jpeg(64, 48, &rgb)).unwrap();
        assert_eq!((img.width, img.height), (64, 48));
        let p = &img.pixels[..3];
        assert!(p[0].abs_diff(200) < 4 && p[1].abs_diff(100) < 4 && p[2].abs_diff(50) < 4);
    }

    #[test]
    fn refuses_garbage_and_hostile_sizes_before_decoding() {
        assert!(matches!(
            decode_jpeg(b"not a jpeg"),
            Err(PersonError::Decode(_))
        ));
        assert!(matches!(decode_jpeg(&[]), Err(PersonError::Decode(_))));
        // A header claiming 60000x60000 with no picture data behind it: the
        // size is refused from the header alone.
        let mut big = jpeg(8, 8, &[0; 8 * 8 * 3]);
        let sof = big
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline SOF0");
        // SOF0: marker, length (2), precision (1), height (2), width (2).
        big[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
        assert!(matches!(
            decode_jpeg(&big),
            Err(PersonError::TooLarge {
                width: 60000,
                height: 60000
            })
        ));
    }

    #[test]
    fn model_input_is_bgr_normalized_and_letterboxed() {
        // A 20x10 picture: left half pure red, right half pure blue.
        let rgb: Vec<u8> = (0..10)
            .flat_map(|_| (0..20).flat_map(|x| if x < 10 { [255, 0, 0] } else { [0, 0, 255] }))
            .collect();
        let img = Rgb {
            pixels: rgb,
            width: 20,
            height: 10,
        };
        let lb = Letterbox::new(20, 10, None).unwrap();
        assert_eq!(lb.placed, [0, 104, 416, 208]);
        let input = model_input(&img, &lb);
        let plane = INPUT * INPUT;
        let at = |plane_ix: usize, x: usize, y: usize| input[plane_ix * plane + y * INPUT + x];
        // Padding is the mean: 0 in every plane.
        assert_eq!(at(0, 10, 10), 0.0);
        // Left (red): plane 2 (R) is high, plane 0 (B) low.
        let red_r = (255.0 - MEAN_BGR[2]) / STD_BGR[2];
        let red_b = (0.0 - MEAN_BGR[0]) / STD_BGR[0];
        assert!((at(2, 50, 200) - red_r).abs() < 1e-4);
        assert!((at(0, 50, 200) - red_b).abs() < 1e-4);
        // Right (blue): the other way round.
        assert!((at(0, 400, 200) - (255.0 - MEAN_BGR[0]) / STD_BGR[0]).abs() < 1e-4);
    }

    #[test]
    fn model_input_of_a_region_and_of_a_large_frame() {
        // 1200x600, dark but for a bright 100x100 square at (900, 200).
        let (w, h) = (1200, 600);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 200..300 {
            for x in 900..1000 {
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let img = Rgb {
            pixels: rgb,
            width: w,
            height: h,
        };
        let bright = (255.0 - MEAN_BGR[1]) / STD_BGR[1];
        // The whole frame (shrunk, box-averaged first): the square lands
        // around (900..1000) * 416 / 1200 = 312..346.
        let lb = Letterbox::new(w, h, None).unwrap();
        let input = model_input(&img, &lb);
        let g = |x: usize, y: usize| input[INPUT * INPUT + y * INPUT + x];
        let y_off = lb.placed[1];
        assert!((g(329, y_off + 86) - bright).abs() < 1e-3);
        assert!(g(300, y_off + 86) < 0.0);
        // Only the square's region, with a margin: it fills the middle.
        let lb = Letterbox::new(
            w,
            h,
            Some([850.0 / 1200.0, 150.0 / 600.0, 200.0 / 1200.0, 200.0 / 600.0]),
        )
        .unwrap();
        let input = model_input(&img, &lb);
        let g = |x: usize, y: usize| input[INPUT * INPUT + y * INPUT + x];
        assert!((g(208, 208) - bright).abs() < 1e-3);
        assert!(g(20, 20) < 0.0);
    }
}
