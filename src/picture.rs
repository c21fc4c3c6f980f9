//! A decoded picture in I420 (planar Y, then U and V at half size), as the
//! video decoder of an RTSP camera hands it over, and what is made of it.
//!
//! The picture itself goes through the camera: the motion detector reads
//! its luma plane, the person check its colours. A JPEG is made only when
//! someone needs one (an MJPEG viewer, a snapshot, a thumbnail; see
//! [`crate::frame::Frame::jpeg`]). The encoder reads the planes in place
//! through [`jpeg_encoder::ImageBuffer`] (no RGB copy, no colour conversion:
//! I420 is already YCbCr) and subsamples chroma 2x2 again.

use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};

/// Largest picture side accepted from a source, in pixels. Cameras deliver at
/// most 8K (7680); a header claiming more is garbage or an attack (65535x65535
/// would make the motion detector allocate 4 GiB to decode it).
pub const MAX_DIMENSION: u16 = 16384;

/// Quality of the JPEGs made from decoded pictures: close to what cameras
/// send for MJPEG, a third of the bytes of quality 95.
pub const JPEG_QUALITY: u8 = 80;

/// A picture in I420 with full-range samples, as JPEG has them (the
/// decoder is asked for full range).
#[derive(Debug, Clone)]
pub struct Picture {
    width: u16,
    height: u16,
    data: Vec<u8>,
}

/// Why a buffer is not a picture.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PictureError {
    /// The size is zero or over the frame limit.
    #[error("picture size {0}x{1} out of range")]
    Size(u32, u32),
    /// The buffer holds fewer or more bytes than the size needs.
    #[error("picture of {width}x{height} needs {want} bytes, got {got}")]
    Length {
        /// Width.
        width: u16,
        /// Height.
        height: u16,
        /// Bytes the planes need.
        want: usize,
        /// Bytes given.
        got: usize,
    },
    /// The encoder refused it.
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

impl Picture {
    /// Bytes of an I420 picture of this size (chroma planes round up).
    pub fn len_for(width: u32, height: u32) -> usize {
        let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
        width as usize * height as usize + 2 * cw * ch
    }

    /// The picture held in `data`, which must be exactly
    /// [`Picture::len_for`] bytes.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Picture, PictureError> {
        let max = u32::from(MAX_DIMENSION);
        if width == 0 || height == 0 || width > max || height > max {
            return Err(PictureError::Size(width, height));
        }
        let (w, h) = (width as u16, height as u16);
        let want = Self::len_for(width, height);
        if data.len() != want {
            return Err(PictureError::Length {
                width: w,
                height: h,
                want,
                got: data.len(),
            });
        }
        Ok(Picture {
            width: w,
            height: h,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u16 {
        self.height
    }

    /// The luma plane, `width * height` bytes, row after row.
    pub fn luma(&self) -> &[u8] {
        &self.data[..self.width as usize * self.height as usize]
    }

    fn chroma_width(&self) -> usize {
        usize::from(self.width).div_ceil(2)
    }

    fn plane(&self, index: usize) -> &[u8] {
        let y = self.width as usize * self.height as usize;
        let c = self.chroma_width() * usize::from(self.height).div_ceil(2);
        let start = y + index * c;
        &self.data[start..start + c]
    }

    /// Bytes held (the three planes).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it holds no bytes (never, for a picture made by [`Picture::new`]).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The picture as interleaved RGB (BT.601, full range, as JPEG's
    /// YCbCr), for the person check, which would otherwise decode a JPEG
    /// made from this very picture.
    pub fn to_rgb(&self) -> crate::jpeg::Rgb {
        let (w, h) = (usize::from(self.width), usize::from(self.height));
        let cw = self.chroma_width();
        let (u, v) = (self.plane(0), self.plane(1));
        let mut pixels = Vec::with_capacity(w * h * 3);
        for (y, row) in self.luma().chunks_exact(w).enumerate() {
            let crow = (y / 2) * cw;
            for (x, &l) in row.iter().enumerate() {
                let l = f32::from(l);
                let cb = f32::from(u[crow + x / 2]) - 128.0;
                let cr = f32::from(v[crow + x / 2]) - 128.0;
                let px = [
                    l + 1.402 * cr,
                    l - 0.344_136 * cb - 0.714_136 * cr,
                    l + 1.772 * cb,
                ];
                pixels.extend(px.map(|c| c.round().clamp(0.0, 255.0) as u8));
            }
        }
        crate::jpeg::Rgb {
            pixels,
            width: w,
            height: h,
        }
    }

    /// The picture as a baseline 4:2:0 JPEG.
    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, PictureError> {
        let mut out = Vec::with_capacity(self.data.len() / 8);
        let mut encoder = Encoder::new(&mut out, quality);
        encoder.set_sampling_factor(SamplingFactor::F_2_2);
        encoder.set_progressive(false);
        encoder
            .encode_image(Planes(self))
            .map_err(|e| PictureError::Encode(e.to_string()))?;
        Ok(out)
    }
}

/// The encoder's view of a [`Picture`]: rows of Y, Cb, Cr samples.
struct Planes<'a>(&'a Picture);

impl ImageBuffer for Planes<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.0.width
    }

    fn height(&self) -> u16 {
        self.0.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let p = self.0;
        let w = usize::from(p.width);
        let row = usize::from(y) * w;
        buffers[0].extend_from_slice(&p.luma()[row..row + w]);
        let cw = p.chroma_width();
        let crow = usize::from(y / 2) * cw;
        for (i, buffer) in buffers[1..3].iter_mut().enumerate() {
            let plane = &p.plane(i)[crow..crow + cw];
            buffer.extend(plane.iter().flat_map(|&s| [s, s]).take(w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_chroma_up() {
        assert_eq!(Picture::len_for(4, 2), 8 + 2 * 2);
        assert_eq!(Picture::len_for(5, 3), 15 + 2 * 3 * 2);
        assert!(Picture::new(4, 2, vec![0; 11]).is_err());
        assert!(Picture::new(0, 2, vec![]).is_err());
    }

    #[test]
    fn colours_come_out_as_rgb() {
        // A red picture: Y 76, Cb 85, Cr 255 is (255, 0, 0) within rounding.
        let (w, h) = (5u32, 3u32);
        let y = (w * h) as usize;
        let c = Picture::len_for(w, h) - y;
        let mut data = vec![76u8; y];
        data.extend(std::iter::repeat_n(85u8, c / 2));
        data.extend(std::iter::repeat_n(255u8, c / 2));
        let rgb = Picture::new(w, h, data).unwrap().to_rgb();
        assert_eq!((rgb.width, rgb.height), (5, 3));
        assert_eq!(rgb.pixels.len(), 5 * 3 * 3);
        for px in rgb.pixels.chunks_exact(3) {
            assert!(px[0] > 250 && px[1] < 5 && px[2] < 5, "{px:?}");
        }
    }

    #[test]
    fn encodes_what_it_holds() {
        // Left half dark, right half bright, neutral chroma; odd sizes too.
        for (w, h) in [(64u32, 48u32), (33, 17)] {
            let mut data = vec![128u8; Picture::len_for(w, h)];
            for y in 0..h as usize {
                for x in 0..w as usize {
                    data[y * w as usize + x] = if x < w as usize / 2 { 30 } else { 220 };
                }
            }
            let pic = Picture::new(w, h, data).unwrap();
            let jpeg = pic.to_jpeg(JPEG_QUALITY).unwrap();
            let img = crate::jpeg::decode_rgb(&jpeg).unwrap();
            assert_eq!((img.width as u32, img.height as u32), (w, h));
            let px = |x: usize, y: usize| img.pixels[(y * img.width as usize + x) * 3];
            assert!(px(2, 2) < 60, "dark side {}", px(2, 2));
            assert!(px(w as usize - 3, 2) > 190, "bright side");
        }
    }
}
