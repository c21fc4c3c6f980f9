//! Whole-picture JPEG decoding, for the parts that need every pixel in
//! colour: thumbnails and the person check. (Motion analysis decodes luma
//! only, in `motion`.)
//!
//! The header is read first and the size it claims checked before any
//! pixel buffer is allocated: a hostile or broken picture claiming
//! 65535x65535 is refused, not decoded.

use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Largest side accepted. A JPEG header may claim up to 65535x65535, which
/// would ask for 12 GB; nothing lookout handles is that large.
pub const MAX_SIDE: usize = 8192;

/// Most pixels accepted (an 8K UHD frame, 7680x4320, fits): bounds the
/// decoded picture to about 120 MB, even for an 8192x8192 claim.
pub const MAX_PIXELS: usize = 40_000_000;

/// A decoded picture: RGB, 3 bytes a pixel, row-major.
#[derive(Debug)]
pub struct Rgb {
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
    /// Width in pixels, at least 1.
    pub width: usize,
    /// Height in pixels, at least 1.
    pub height: usize,
}

/// Why a picture could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    /// Not a JPEG that can be decoded.
    #[error("cannot decode the picture: {0}")]
    Decode(String),
    /// Larger than [`MAX_SIDE`] or [`MAX_PIXELS`] allow, by its header.
    #[error(
        "picture {width}x{height} is too large \
         (at most {MAX_SIDE} px a side and {MAX_PIXELS} pixels)"
    )]
    TooLarge {
        /// Width from the JPEG header.
        width: usize,
        /// Height from the JPEG header.
        height: usize,
    },
}

/// Decodes `jpeg` to interleaved RGB, refusing pictures over the limits.
///
/// A grayscale JPEG (one component: a camera's night mode, a simple
/// encoder) comes out as RGB with three equal channels: zune-jpeg keeps it
/// one byte a pixel whatever colourspace is asked for.
pub fn decode_rgb(jpeg: &[u8]) -> Result<Rgb, JpegError> {
    // zune-jpeg's own limits are set to the format's maximum so that the
    // check below, with its clearer error, is the one that refuses.
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut decoder = JpegDecoder::new_with_options(jpeg, options);
    decoder
        .decode_headers()
        .map_err(|e| JpegError::Decode(e.to_string()))?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| JpegError::Decode("no picture size in the header".into()))?;
    if width == 0 || height == 0 {
        return Err(JpegError::Decode(format!("empty picture {width}x{height}")));
    }
    if width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS {
        return Err(JpegError::TooLarge { width, height });
    }
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| JpegError::Decode("no output size".into()))?;
    let grey = size == width * height;
    if size != width * height * 3 && !grey {
        return Err(JpegError::Decode(format!(
            "unexpected RGB size {size} for {width}x{height}"
        )));
    }
    let mut pixels = vec![0; size];
    decoder
        .decode_into(&mut pixels)
        .map_err(|e| JpegError::Decode(e.to_string()))?;
    if grey {
        pixels = pixels.iter().flat_map(|&y| [y, y, y]).collect();
    }
    Ok(Rgb {
        pixels,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(px: &[u8], w: u16, h: u16, color: jpeg_encoder::ColorType) -> Vec<u8> {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(px, w, h, color)
            .unwrap();
        out
    }

    #[test]
    fn colour_comes_out_as_rgb() {
        let px: Vec<u8> = (0..32 * 16).flat_map(|_| [200, 40, 40]).collect();
        let img = decode_rgb(&encode(&px, 32, 16, jpeg_encoder::ColorType::Rgb)).unwrap();
        assert_eq!(
            (img.width, img.height, img.pixels.len()),
            (32, 16, 32 * 16 * 3)
        );
        assert!(
            img.pixels[0] > 150 && img.pixels[1] < 90,
            "{:?}",
            &img.pixels[..3]
        );
    }

    #[test]
    fn grayscale_comes_out_as_three_equal_channels() {
        let px: Vec<u8> = (0..40 * 24).map(|i| (i % 40 * 6) as u8).collect();
        let img = decode_rgb(&encode(&px, 40, 24, jpeg_encoder::ColorType::Luma)).unwrap();
        assert_eq!(img.pixels.len(), 40 * 24 * 3);
        assert!(img.pixels.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
        // The gradient survived: not a flat picture.
        assert!(img.pixels[3 * 39] > img.pixels[0] + 100);
    }

    #[test]
    fn a_huge_claim_is_refused_before_decoding() {
        let mut jpeg = encode(&[128; 64], 8, 8, jpeg_encoder::ColorType::Luma);
        // The SOF0 frame header: FF C0, length, precision, height, width.
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            decode_rgb(&jpeg),
            Err(JpegError::TooLarge {
                width: 65535,
                height: 65535
            })
        ));
        assert!(matches!(
            decode_rgb(b"not a jpeg"),
            Err(JpegError::Decode(_))
        ));
    }
}
