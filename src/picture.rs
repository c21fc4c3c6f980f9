//! A decoded picture in I420 (planar Y, then U and V at half size), as the
//! video decoder of an RTSP camera hands it over, and its JPEG.
//!
//! The rest of lookout takes JPEG frames, so a decoded picture is encoded
//! once and published like a camera's own JPEG. The encoder reads the planes
//! in place through [`jpeg_encoder::ImageBuffer`] (no RGB copy, no colour
//! conversion: I420 is already YCbCr) and subsamples chroma 2x2 again.

use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};

/// Quality of the JPEGs made from decoded pictures: close to what cameras
/// send for MJPEG, a third of the bytes of quality 95.
pub const JPEG_QUALITY: u8 = 80;

/// A picture in I420 with full-range samples (what ffmpeg's `yuv420p` is,
/// once its limited range is accepted as is: JPEG viewers show it a little
/// flat, never wrong).
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
        let max = u32::from(crate::frame::MAX_DIMENSION);
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
