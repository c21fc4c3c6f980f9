//! JPEG pictures, below every module that handles them: the marker
//! vocabulary, the picture size read from the header without decoding
//! ([`dimensions`], what every frame is checked with, and the MJPEG
//! splitter's markers), and whole-picture decoding for the parts that need
//! every pixel in colour: thumbnails and the person check. (Motion analysis
//! decodes luma only, in `motion`.)
//!
//! Before decoding, the header is read and the size it claims checked before
//! any pixel buffer is allocated: a hostile or broken picture claiming
//! 65535x65535 is refused, not decoded.

use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Marker prefix byte; every JPEG marker starts with it.
pub(crate) const MARKER: u8 = 0xFF;
/// Start of image.
pub(crate) const SOI: u8 = 0xD8;
/// End of image.
pub(crate) const EOI: u8 = 0xD9;
/// Start of scan; entropy-coded data follows its header.
pub(crate) const SOS: u8 = 0xDA;
/// Temporary marker, standalone (no length field).
pub(crate) const TEM: u8 = 0x01;

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

/// Width and height from the first SOFn segment (C0..CF except C4, C8, CC),
/// `None` if absent/invalid. Cheap: walks segment headers only. Used to fill
/// `Frame::width`/`height`. A zero dimension (height defined later by DNL) is
/// treated as invalid since callers need real numbers.
pub fn dimensions(jpeg: &[u8]) -> Option<(u16, u16)> {
    if !jpeg.starts_with(&[MARKER, SOI]) {
        return None;
    }
    let mut pos = 2;
    loop {
        if *jpeg.get(pos)? != MARKER {
            return None;
        }
        while *jpeg.get(pos + 1)? == MARKER {
            pos += 1;
        }
        let code = *jpeg.get(pos + 1)?;
        pos += 2;
        match code {
            0xD0..=0xD7 | TEM => continue,
            // Image data or end before any frame header: no SOF to find.
            0x00 | SOI | EOI | SOS => return None,
            _ => {}
        }
        let len = usize::from(read_u16(jpeg, pos)?);
        if len < 2 {
            return None;
        }
        if is_sof(code) {
            return sof_dimensions(jpeg, pos, len);
        }
        pos += len;
    }
}

/// SOF0..SOF15; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range
/// but are not frame headers.
fn is_sof(code: u8) -> bool {
    matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC)
}

/// Parse `len, precision, height, width` of a SOF segment starting at `pos`.
fn sof_dimensions(jpeg: &[u8], pos: usize, len: usize) -> Option<(u16, u16)> {
    if len < 7 {
        return None;
    }
    let height = read_u16(jpeg, pos + 3)?;
    let width = read_u16(jpeg, pos + 5)?;
    (width > 0 && height > 0).then_some((width, height))
}

/// Big-endian u16 at `at`, if there are enough bytes.
pub(crate) fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
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
    use super::samples::{app0, dht, dqt, entropy, jpeg, segment, sof0, sos};
    use super::*;

    /// What comes before a frame in a `multipart/x-mixed-replace` stream.
    const MULTIPART_HEAD: &[u8] =
        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 123\r\n\r\n";

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

    #[test]
    fn dimensions_of_test_frames() {
        assert_eq!(dimensions(&jpeg(320, 240)), Some((320, 240)));
        assert_eq!(dimensions(&jpeg(1920, 1080)), Some((1920, 1080)));
        assert_eq!(dimensions(&jpeg(0, 1080)), None);
    }

    #[test]
    fn dimensions_of_garbage() {
        assert_eq!(dimensions(b""), None);
        assert_eq!(dimensions(MULTIPART_HEAD), None);
        assert_eq!(dimensions(&[0xFF, 0xD8, 0x00, 0x01]), None);
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00]), None);
        // SOS before any SOF.
        let mut no_sof = vec![0xFF, 0xD8];
        no_sof.extend(dht());
        no_sof.extend(sos());
        no_sof.extend(entropy());
        no_sof.extend([0xFF, 0xD9]);
        assert_eq!(dimensions(&no_sof), None);
        // DHT (C4) is in the SOF range but is not a frame header.
        let mut fake = vec![0xFF, 0xD8];
        fake.extend(segment(0xC4, &[8, 0, 16, 0, 32, 1, 1, 0x11, 0]));
        assert_eq!(dimensions(&fake), None);
    }

    #[test]
    fn dimensions_of_truncated_data() {
        let frame = jpeg(320, 240);
        let sof_end = 2 + app0().len() + dqt().len() + sof0(320, 240).len();
        for cut in 0..sof_end - 4 {
            assert_eq!(dimensions(&frame[..cut]), None, "cut at {cut}");
        }
        assert_eq!(dimensions(&frame[..sof_end]), Some((320, 240)));
    }
}

/// Small, structurally valid JPEG pieces built by hand, for the tests of
/// everything that walks JPEG markers (here and the MJPEG splitter).
#[cfg(test)]
pub(crate) mod samples {
    /// A segment with a length field: `FF code len payload`.
    pub(crate) fn segment(code: u8, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len() + 2).unwrap();
        let mut out = vec![0xFF, code];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    pub(crate) fn app0() -> Vec<u8> {
        segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
    }

    pub(crate) fn dqt() -> Vec<u8> {
        let mut payload = vec![0x00];
        payload.extend((1..=64).map(|i: u8| i));
        // Include FF D9 / FF D8 inside the table bytes: must be skipped by length.
        payload[10] = 0xFF;
        payload[11] = 0xD9;
        payload[20] = 0xFF;
        payload[21] = 0xD8;
        segment(0xDB, &payload)
    }

    pub(crate) fn sof0(width: u16, height: u16) -> Vec<u8> {
        let mut payload = vec![8];
        payload.extend_from_slice(&height.to_be_bytes());
        payload.extend_from_slice(&width.to_be_bytes());
        payload.extend_from_slice(&[1, 1, 0x11, 0]);
        segment(0xC0, &payload)
    }

    pub(crate) fn dht() -> Vec<u8> {
        let mut payload = vec![0x00, 1];
        payload.extend_from_slice(&[0; 15]);
        payload.push(0);
        segment(0xC4, &payload)
    }

    pub(crate) fn sos() -> Vec<u8> {
        segment(0xDA, &[1, 1, 0x00, 0, 63, 0])
    }

    /// Entropy data with stuffing, restart markers and a fill byte run
    /// before a restart marker.
    pub(crate) fn entropy() -> Vec<u8> {
        vec![
            0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0x00, 0xFF, 0xD1, 0x78, 0xFF, 0xFF,
            0xD2, 0x9A, 0xD9, 0xD8,
        ]
    }

    /// A small structurally valid baseline JPEG.
    pub(crate) fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        out.extend(app0());
        out.extend(dqt());
        out.extend(sof0(width, height));
        out.extend([0xFF, 0xFF]); // fill bytes before a marker
        out.extend(dht());
        out.extend(segment(0xFE, b"comment \xFF\xD9 inside"));
        out.extend(sos());
        out.extend(entropy());
        out.extend([0xFF, 0xD9]);
        out
    }
}
