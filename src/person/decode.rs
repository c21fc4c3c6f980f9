//! NanoDet's outputs to person boxes: decoding, non-maximum suppression, and
//! the way back from the model's 416x416 input to the whole frame.
//!
//! Pure arithmetic on slices, so it is compiled and tested in every build,
//! with or without the model runtime.
//!
//! # The outputs
//! For each stride (8, 16, 32) the model divides its input into a grid of
//! cells (52x52, 26x26, 13x13, row-major) and gives, per cell:
//! - 80 class scores, already through a sigmoid (class 0 is "person");
//! - 4 x 11 box numbers: for the left, top, right and bottom sides in turn,
//!   11 logits over the distances 0..=10 (in units of the stride) from the
//!   cell's centre. NanoDet's "generalized focal loss" head: the distance is
//!   the expectation of the softmax over those bins, times the stride.

/// Side of the model's square input, in pixels.
pub(crate) const INPUT: usize = 416;

/// The model's output strides, smallest (most cells, smallest people) first.
pub(crate) const STRIDES: [usize; 3] = [8, 16, 32];

/// COCO classes the model scores.
pub(crate) const CLASSES: usize = 80;

/// Distance bins per box side: NanoDet-g's `reg_max` of 10, plus one.
pub(crate) const BINS: usize = 11;

/// COCO's "person".
const PERSON: usize = 0;

/// Overlap above which the lower-scored of two person boxes is dropped: the
/// value NanoDet itself uses (two people side by side overlap less).
pub(crate) const NMS_IOU: f32 = 0.45;

/// A box found by the model, in model-input pixels (corners).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) score: f32,
    pub(crate) x0: f32,
    pub(crate) y0: f32,
    pub(crate) x1: f32,
    pub(crate) y1: f32,
}

impl Candidate {
    fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    /// Intersection over union with `other`, 0 when either is empty.
    pub(crate) fn iou(&self, other: &Candidate) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// The output of one stride did not have the size the model promises.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("stride {stride}: {what} has {got} values, expected {expected}")]
pub(crate) struct ShapeError {
    pub(crate) stride: usize,
    pub(crate) what: &'static str,
    pub(crate) got: usize,
    pub(crate) expected: usize,
}

/// Cells per side of the grid of `stride`.
pub(crate) fn grid(stride: usize) -> usize {
    INPUT / stride
}

/// Appends to `out` the cells of one stride whose person score is at least
/// `min_score`, as boxes in input pixels. `scores` is `cells x CLASSES`,
/// `dists` is `cells x 4 x BINS`.
pub(crate) fn decode_stride(
    stride: usize,
    scores: &[f32],
    dists: &[f32],
    min_score: f32,
    out: &mut Vec<Candidate>,
) -> Result<(), ShapeError> {
    let side = grid(stride);
    let cells = side * side;
    for (what, got, per_cell) in [
        ("scores", scores.len(), CLASSES),
        ("distances", dists.len(), 4 * BINS),
    ] {
        if got != cells * per_cell {
            return Err(ShapeError {
                stride,
                what,
                got,
                expected: cells * per_cell,
            });
        }
    }
    let s = stride as f32;
    for cell in 0..cells {
        let score = scores[cell * CLASSES + PERSON];
        // A NaN score is not `>=` anything: dropped too.
        if score.partial_cmp(&min_score).is_none_or(|o| o.is_lt()) {
            continue;
        }
        let cx = ((cell % side) as f32 + 0.5) * s;
        let cy = ((cell / side) as f32 + 0.5) * s;
        let d = &dists[cell * 4 * BINS..(cell + 1) * 4 * BINS];
        let side_dist = |k: usize| expected_bin(&d[k * BINS..(k + 1) * BINS]) * s;
        out.push(Candidate {
            score,
            x0: cx - side_dist(0),
            y0: cy - side_dist(1),
            x1: cx + side_dist(2),
            y1: cy + side_dist(3),
        });
    }
    Ok(())
}

/// The expectation of the bin index under the softmax of `logits`.
fn expected_bin(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0.0f32, 0.0f32);
    for (k, &l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += e * k as f32;
    }
    if sum > 0.0 && sum.is_finite() {
        weighted / sum
    } else {
        0.0
    }
}

/// Greedy non-maximum suppression: best score first, dropping every box that
/// overlaps a kept one by more than `iou`. Returns the kept boxes, best first.
pub(crate) fn nms(mut candidates: Vec<Candidate>, iou: f32) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in candidates {
        if kept.iter().all(|k| k.iou(&c) <= iou) {
            kept.push(c);
        }
    }
    kept
}

/// Where a crop of the frame lands in the model's input: scaled by `scale`
/// (the same both ways, so people keep their shape) and centred, the rest
/// padded. Maps model boxes back to the whole frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Letterbox {
    /// The crop in frame pixels: left, top, width, height.
    pub(crate) crop: [usize; 4],
    /// Input pixels per frame pixel.
    pub(crate) scale: f32,
    /// Where the scaled crop starts in the input, and its size there.
    pub(crate) placed: [usize; 4],
    /// The whole frame, for normalizing.
    pub(crate) frame: (usize, usize),
}

impl Letterbox {
    /// The crop of a `width`x`height` frame given by `region` (normalized
    /// x, y, w, h; `None`: the whole frame), clamped to the frame, and its
    /// placement. `None` when the region is not finite or leaves no pixel.
    pub(crate) fn new(width: usize, height: usize, region: Option<[f32; 4]>) -> Option<Letterbox> {
        if width == 0 || height == 0 {
            return None;
        }
        let crop = match region {
            None => [0, 0, width, height],
            Some([x, y, w, h]) => {
                if ![x, y, w, h].iter().all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 {
                    return None;
                }
                let px = |v: f32, size: usize| {
                    ((v.clamp(0.0, 1.0) * size as f32).round() as usize).min(size)
                };
                let (x0, x1) = (px(x, width), px(x + w, width));
                let (y0, y1) = (px(y, height), px(y + h, height));
                if x1 <= x0 || y1 <= y0 {
                    return None;
                }
                [x0, y0, x1 - x0, y1 - y0]
            }
        };
        let scale = INPUT as f32 / crop[2].max(crop[3]) as f32;
        let fit = |v: usize| ((v as f32 * scale).round() as usize).clamp(1, INPUT);
        let (w, h) = (fit(crop[2]), fit(crop[3]));
        let placed = [(INPUT - w) / 2, (INPUT - h) / 2, w, h];
        Some(Letterbox {
            crop,
            scale,
            placed,
            frame: (width, height),
        })
    }

    /// A box in input pixels as x, y, w, h normalized to the whole frame,
    /// clipped to the crop (the padding holds nothing).
    pub(crate) fn frame_box(&self, c: &Candidate) -> [f32; 4] {
        let [cx, cy, cw, ch] = self.crop.map(|v| v as f32);
        let (fw, fh) = (self.frame.0 as f32, self.frame.1 as f32);
        let (ox, oy) = (self.placed[0] as f32, self.placed[1] as f32);
        let fx = |v: f32| (cx + (v - ox) / self.scale).clamp(cx, cx + cw) / fw;
        let fy = |v: f32| (cy + (v - oy) / self.scale).clamp(cy, cy + ch) / fh;
        let (x0, y0, x1, y1) = (fx(c.x0), fy(c.y0), fx(c.x1), fy(c.y1));
        [x0, y0, x1 - x0, y1 - y0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(score: f32, x0: f32, y0: f32, x1: f32, y1: f32) -> Candidate {
        Candidate {
            score,
            x0,
            y0,
            x1,
            y1,
        }
    }

    /// Logits that put all the weight on bin `k`.
    fn peaked(k: usize) -> [f32; BINS] {
        let mut l = [-30.0; BINS];
        l[k] = 30.0;
        l
    }

    #[test]
    fn expected_bin_is_the_softmax_mean() {
        assert!((expected_bin(&peaked(3)) - 3.0).abs() < 1e-4);
        // Equal weight on bins 2 and 4: their mean.
        let mut l = [-30.0; BINS];
        l[2] = 5.0;
        l[4] = 5.0;
        assert!((expected_bin(&l) - 3.0).abs() < 1e-4);
        // All equal: the mean of 0..=10.
        assert!((expected_bin(&[0.0; BINS]) - 5.0).abs() < 1e-4);
    }

    #[test]
    fn decode_places_the_box_around_the_cell_centre() {
        let stride = 32;
        let side = grid(stride);
        let cells = side * side;
        let mut scores = vec![0.0; cells * CLASSES];
        let mut dists = vec![0.0; cells * 4 * BINS];
        // Cell (col 2, row 5): centre (80, 176). A person at 0.9, a dog
        // (class 16) at 0.99 in another cell: only the person counts.
        let cell = 5 * side + 2;
        scores[cell * CLASSES] = 0.9;
        scores[(cell + 1) * CLASSES + 16] = 0.99;
        for (k, bin) in [1, 2, 3, 4].into_iter().enumerate() {
            let at = cell * 4 * BINS + k * BINS;
            dists[at..at + BINS].copy_from_slice(&peaked(bin));
        }
        let mut out = Vec::new();
        decode_stride(stride, &scores, &dists, 0.5, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let c = out[0];
        assert_eq!(c.score, 0.9);
        let want = [80.0 - 32.0, 176.0 - 64.0, 80.0 + 96.0, 176.0 + 128.0];
        for (got, want) in [c.x0, c.y0, c.x1, c.y1].into_iter().zip(want) {
            assert!((got - want).abs() < 0.01, "{got} != {want}");
        }
        // Below the minimum score, or NaN: nothing.
        let mut out = Vec::new();
        decode_stride(stride, &scores, &dists, 0.95, &mut out).unwrap();
        assert!(out.is_empty());
        scores[cell * CLASSES] = f32::NAN;
        decode_stride(stride, &scores, &dists, 0.1, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn decode_refuses_outputs_of_the_wrong_size() {
        let cells = grid(16) * grid(16);
        let err = decode_stride(16, &[0.0; 10], &vec![0.0; cells * 44], 0.5, &mut Vec::new());
        assert_eq!(
            err,
            Err(ShapeError {
                stride: 16,
                what: "scores",
                got: 10,
                expected: cells * CLASSES
            })
        );
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_separate_people() {
        let boxes = vec![
            cand(0.6, 10.0, 10.0, 50.0, 110.0),
            cand(0.9, 12.0, 12.0, 52.0, 112.0), // same person, better score
            cand(0.7, 60.0, 10.0, 100.0, 110.0), // the person beside
            cand(0.8, 30.0, 10.0, 70.0, 110.0), // overlaps each by under 0.45: kept
        ];
        let kept = nms(boxes, NMS_IOU);
        let scores: Vec<f32> = kept.iter().map(|c| c.score).collect();
        assert_eq!(scores, [0.9, 0.8, 0.7]);
    }

    #[test]
    fn iou_of_identical_disjoint_and_empty_boxes() {
        let a = cand(1.0, 0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&cand(1.0, 20.0, 20.0, 30.0, 30.0)), 0.0);
        assert_eq!(
            cand(1.0, 5.0, 5.0, 5.0, 5.0).iou(&cand(1.0, 5.0, 5.0, 5.0, 5.0)),
            0.0
        );
        let half = cand(1.0, 5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn whole_frame_letterbox_maps_back_to_the_frame() {
        // 1280x720: scaled to 416x234, centred with 91 rows above.
        let lb = Letterbox::new(1280, 720, None).unwrap();
        assert_eq!(lb.crop, [0, 0, 1280, 720]);
        assert_eq!(lb.placed, [0, 91, 416, 234]);
        let whole = cand(1.0, 0.0, 91.0, 416.0, 325.0);
        let b = lb.frame_box(&whole);
        for (got, want) in b.into_iter().zip([0.0, 0.0, 1.0, 1.0]) {
            assert!((got - want).abs() < 1e-3, "{b:?}");
        }
        // A box in the padding is clipped to the picture.
        let b = lb.frame_box(&cand(1.0, 100.0, 0.0, 200.0, 50.0));
        assert_eq!(b[1], 0.0);
        assert_eq!(b[3], 0.0);
    }

    #[test]
    fn region_letterbox_maps_back_to_whole_frame_coordinates() {
        // The right half of the top half of a 800x600 frame: 400x300 px
        // from (400, 0), scaled by 1.04 to 416x312, 52 rows of padding above.
        let lb = Letterbox::new(800, 600, Some([0.5, 0.0, 0.5, 0.5])).unwrap();
        assert_eq!(lb.crop, [400, 0, 400, 300]);
        assert_eq!(lb.placed, [0, 52, 416, 312]);
        // The middle of the input is the middle of the crop: (600, 150).
        let b = lb.frame_box(&cand(
            1.0,
            208.0 - 10.4,
            208.0 - 20.8,
            208.0 + 10.4,
            208.0 + 20.8,
        ));
        let want = [590.0 / 800.0, 130.0 / 600.0, 20.0 / 800.0, 40.0 / 600.0];
        for (got, want) in b.into_iter().zip(want) {
            assert!((got - want).abs() < 1e-4, "{b:?}");
        }
    }

    #[test]
    fn regions_are_clamped_and_bad_ones_refused() {
        let lb = Letterbox::new(100, 100, Some([-0.5, 0.9, 1.0, 0.5])).unwrap();
        assert_eq!(lb.crop, [0, 90, 50, 10]);
        // A small crop is scaled up to fill the input.
        assert_eq!(lb.placed, [0, 166, 416, 83]);
        for bad in [
            [0.0, 0.0, 0.0, 0.5],
            [0.0, 0.0, 0.5, -1.0],
            [f32::NAN, 0.0, 0.5, 0.5],
            [0.0, 0.0, f32::INFINITY, 0.5],
            [1.0, 0.0, 0.5, 0.5],
            [0.0, 0.0, 0.001, 0.5],
        ] {
            assert_eq!(Letterbox::new(100, 100, Some(bad)), None, "{bad:?}");
        }
        assert_eq!(Letterbox::new(0, 100, None), None);
    }
}
