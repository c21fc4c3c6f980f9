//! From the camera's frames to the decoder's byte stream.
//!
//! retina hands over each access unit with 4-byte length prefixes (the MP4
//! form, which clips and the live view will keep). A decoder reading a pipe
//! wants Annex B: start codes, and the parameter sets in front of every
//! keyframe, so that it can start (or start again) at any keyframe. An
//! access unit delimiter after each frame ends it at once: without it the
//! parser waits for the next frame's first bytes, a frame interval later.

use bytes::{BufMut, Bytes, BytesMut};

const START: [u8; 4] = [0, 0, 0, 1];

/// Which of the two codecs a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

impl Codec {
    /// ffmpeg's name of the raw stream format.
    pub(crate) fn ffmpeg_format(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "hevc",
        }
    }

    /// The codec's usual name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::H265 => "H.265",
        }
    }

    /// The NAL unit type of a header byte.
    fn nal_type(self, header: u8) -> u8 {
        match self {
            Codec::H264 => header & 0x1f,
            Codec::H265 => (header >> 1) & 0x3f,
        }
    }

    /// Whether a NAL unit of this type is an access unit delimiter.
    fn is_delimiter(self, nal_type: u8) -> bool {
        match self {
            Codec::H264 => nal_type == 9,
            Codec::H265 => nal_type == 35,
        }
    }

    /// An access unit delimiter that allows any slice type.
    fn delimiter(self) -> &'static [u8] {
        match self {
            Codec::H264 => &[0, 0, 0, 1, 0x09, 0xf0],
            Codec::H265 => &[0, 0, 0, 1, 0x46, 0x01, 0x50],
        }
    }
}

/// A frame in length-prefixed form that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed frame: a NAL unit length of {len} runs past the {left} bytes left")]
pub(crate) struct FramingError {
    len: usize,
    left: usize,
}

/// `frame` (4-byte length prefixes) in Annex B, with `parameter_sets` (each
/// one NAL unit, no prefix) in front when given, the frame's own delimiters
/// left out and one delimiter at the end.
pub(crate) fn to_annex_b(
    codec: Codec,
    frame: &[u8],
    parameter_sets: &[&[u8]],
) -> Result<Bytes, FramingError> {
    let extra: usize = parameter_sets.iter().map(|p| p.len() + 4).sum();
    let mut out = BytesMut::with_capacity(frame.len() + extra + 8);
    for p in parameter_sets.iter().filter(|p| !p.is_empty()) {
        out.put_slice(&START);
        out.put_slice(p);
    }
    let mut rest = frame;
    while !rest.is_empty() {
        let (len, body) = match rest {
            [a, b, c, d, body @ ..] => (u32::from_be_bytes([*a, *b, *c, *d]) as usize, body),
            _ => {
                return Err(FramingError {
                    len: 4,
                    left: rest.len(),
                })
            }
        };
        if len > body.len() {
            return Err(FramingError {
                len,
                left: body.len(),
            });
        }
        let (nal, next) = body.split_at(len);
        rest = next;
        match nal.first() {
            Some(&h) if !codec.is_delimiter(codec.nal_type(h)) => {
                out.put_slice(&START);
                out.put_slice(nal);
            }
            _ => {}
        }
    }
    out.put_slice(codec.delimiter());
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixed(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| {
                (n.len() as u32)
                    .to_be_bytes()
                    .into_iter()
                    .chain(n.iter().copied())
            })
            .collect()
    }

    #[test]
    fn start_codes_parameters_and_one_delimiter() {
        let frame = prefixed(&[&[0x09, 0xf0], &[0x65, 1, 2, 3], &[0x41, 9]]);
        let out = to_annex_b(Codec::H264, &frame, &[&[0x67, 7], &[0x68, 8]]).unwrap();
        assert_eq!(
            &out[..],
            &[
                0, 0, 0, 1, 0x67, 7, 0, 0, 0, 1, 0x68, 8, 0, 0, 0, 1, 0x65, 1, 2, 3, 0, 0, 0, 1,
                0x41, 9, 0, 0, 0, 1, 0x09, 0xf0
            ]
        );
        // H.265: type 35 (0x46 0x01) is the delimiter.
        let frame = prefixed(&[&[0x46, 0x01, 0x50], &[0x26, 0x01, 5]]);
        let out = to_annex_b(Codec::H265, &frame, &[]).unwrap();
        assert_eq!(
            &out[..],
            &[0, 0, 0, 1, 0x26, 1, 5, 0, 0, 0, 1, 0x46, 0x01, 0x50]
        );
    }

    #[test]
    fn refuses_lengths_past_the_end() {
        assert!(to_annex_b(Codec::H264, &[0, 0, 0, 9, 0x65], &[]).is_err());
        assert!(to_annex_b(Codec::H264, &[0, 0], &[]).is_err());
        assert!(to_annex_b(Codec::H264, &[], &[]).is_ok());
    }
}
