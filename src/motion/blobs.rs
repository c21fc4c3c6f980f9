//! From a mask of changed pixels to the moving things in it: despeckle the
//! mask by opening it (erode, then dilate), then find its connected blobs.
//!
//! Opening with a 3x3 square removes every speck and line thinner than three
//! working pixels: sensor noise, JPEG ringing, and the thin outlines a camera
//! shake leaves along edges. Anything solid (a person, a car) comes back at
//! its size after the dilation.

/// One connected region of changed pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    /// Changed pixels in the blob.
    pub area: usize,
    /// Bounding box in working pixels: left, top, right and bottom (exclusive).
    pub x0: usize,
    /// Top edge.
    pub y0: usize,
    /// Right edge, exclusive.
    pub x1: usize,
    /// Bottom edge, exclusive.
    pub y1: usize,
    /// Bit k set: the blob touches zone k.
    pub zones: u32,
}

/// Reusable buffers for [`Blobs::find`], so analysis does not allocate.
#[derive(Debug, Default)]
pub struct Blobs {
    tmp: Vec<u8>,
    opened: Vec<u8>,
    labelled: Vec<bool>,
    stack: Vec<usize>,
}

impl Blobs {
    /// The opened mask of the last [`Blobs::find`] (1 = changed), for overlays.
    pub fn opened(&self) -> &[u8] {
        &self.opened
    }

    /// Opens the 0/1 `mask` (`w`x`h`) and returns its 8-connected blobs of at
    /// least `min_area` pixels, largest first. `zone_of(i)` gives the zone
    /// bits of pixel `i`.
    pub fn find(
        &mut self,
        mask: &[u8],
        w: usize,
        h: usize,
        min_area: usize,
        zone_of: impl Fn(usize) -> u32,
    ) -> Vec<Blob> {
        erode3(mask, w, h, &mut self.tmp);
        dilate3(&self.tmp, w, h, &mut self.opened);
        self.labelled.clear();
        self.labelled.resize(w * h, false);
        let mut blobs = Vec::new();
        for start in 0..w * h {
            if self.opened[start] == 0 || self.labelled[start] {
                continue;
            }
            let blob = self.flood(start, w, h, &zone_of);
            if blob.area >= min_area.max(1) {
                blobs.push(blob);
            }
        }
        blobs.sort_by_key(|b| std::cmp::Reverse(b.area));
        blobs
    }

    /// Labels the blob holding `start` (an unlabelled changed pixel).
    fn flood(&mut self, start: usize, w: usize, h: usize, zone_of: &impl Fn(usize) -> u32) -> Blob {
        let mut blob = Blob {
            area: 0,
            x0: usize::MAX,
            y0: usize::MAX,
            x1: 0,
            y1: 0,
            zones: 0,
        };
        self.stack.clear();
        self.stack.push(start);
        self.labelled[start] = true;
        while let Some(i) = self.stack.pop() {
            let (x, y) = (i % w, i / w);
            blob.area += 1;
            blob.x0 = blob.x0.min(x);
            blob.y0 = blob.y0.min(y);
            blob.x1 = blob.x1.max(x + 1);
            blob.y1 = blob.y1.max(y + 1);
            blob.zones |= zone_of(i);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let n = ny * w + nx;
                    if self.opened[n] != 0 && !self.labelled[n] {
                        self.labelled[n] = true;
                        self.stack.push(n);
                    }
                }
            }
        }
        blob
    }
}

/// 3x3 erosion: a pixel stays set only if its whole neighbourhood is set
/// (outside the picture counts as set, so blobs at the edge survive).
fn erode3(src: &[u8], w: usize, h: usize, out: &mut Vec<u8>) {
    morph3(src, w, h, out, |a, b| a & b, 1);
}

/// 3x3 dilation: a pixel is set if any pixel of its neighbourhood is set.
fn dilate3(src: &[u8], w: usize, h: usize, out: &mut Vec<u8>) {
    morph3(src, w, h, out, |a, b| a | b, 0);
}

/// A separable 3x3 min/max filter on a 0/1 image: rows first, then columns.
/// `edge` is the value assumed outside the picture.
fn morph3(src: &[u8], w: usize, h: usize, out: &mut Vec<u8>, op: fn(u8, u8) -> u8, edge: u8) {
    let mut rows = Vec::with_capacity(w * h);
    for row in src.chunks_exact(w).take(h) {
        for x in 0..w {
            let left = if x > 0 { row[x - 1] } else { edge };
            let right = if x + 1 < w { row[x + 1] } else { edge };
            rows.push(op(op(left, row[x]), right));
        }
    }
    out.clear();
    for y in 0..h {
        let mid = &rows[y * w..][..w];
        let up = if y > 0 {
            Some(&rows[(y - 1) * w..][..w])
        } else {
            None
        };
        let down = if y + 1 < h {
            Some(&rows[(y + 1) * w..][..w])
        } else {
            None
        };
        for x in 0..w {
            let u = up.map_or(edge, |r| r[x]);
            let d = down.map_or(edge, |r| r[x]);
            out.push(op(op(u, mid[x]), d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_with(w: usize, h: usize, rects: &[(usize, usize, usize, usize)]) -> Vec<u8> {
        let mut m = vec![0u8; w * h];
        for &(x, y, rw, rh) in rects {
            for row in y..y + rh {
                for px in &mut m[row * w + x..row * w + x + rw] {
                    *px = 1;
                }
            }
        }
        m
    }

    #[test]
    fn specks_and_thin_lines_vanish_solid_blobs_stay() {
        let (w, h) = (40, 30);
        // A speck, a 1-px line, a 2-px line, and a 6x8 block.
        let m = mask_with(
            w,
            h,
            &[(1, 1, 1, 1), (5, 2, 20, 1), (5, 6, 20, 2), (20, 15, 6, 8)],
        );
        let blobs = Blobs::default().find(&m, w, h, 1, |_| 0);
        assert_eq!(blobs.len(), 1, "{blobs:?}");
        let b = blobs[0];
        assert_eq!((b.area, b.x0, b.y0, b.x1, b.y1), (48, 20, 15, 26, 23));
    }

    #[test]
    fn blobs_are_separate_sorted_and_filtered_by_size() {
        let (w, h) = (40, 30);
        let m = mask_with(w, h, &[(0, 0, 4, 4), (10, 10, 8, 8), (30, 25, 3, 3)]);
        let blobs = Blobs::default().find(&m, w, h, 10, |_| 0);
        let areas: Vec<usize> = blobs.iter().map(|b| b.area).collect();
        // The 3x3 block survives the opening (9 px) but is under the minimum
        // size; the 4x4 one in the corner keeps its size (the edge counts as set).
        assert_eq!(areas, vec![64, 16]);
        assert_eq!((blobs[1].x0, blobs[1].y0), (0, 0));
    }

    #[test]
    fn zones_touched_are_collected() {
        let (w, h) = (20, 10);
        let m = mask_with(w, h, &[(2, 2, 6, 6)]);
        // Zone bit 1 on the left half, bit 4 on column 7 only.
        let blobs = Blobs::default().find(&m, w, h, 1, |i| {
            let x = i % w;
            u32::from(x < 10) | if x == 7 { 4 } else { 0 }
        });
        assert_eq!(blobs[0].zones, 5);
    }
}
