//! Why the person check could not run on a frame or load its model.

use crate::jpeg::{MAX_PIXELS, MAX_SIDE};

/// Why a person check gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum PersonError {
    /// The frame is not a JPEG that can be decoded.
    #[error("cannot decode the picture: {0}")]
    Decode(String),
    /// The frame is larger than [`MAX_SIDE`] or [`MAX_PIXELS`] allow.
    #[error(
        "picture {width}x{height} is too large for the person check \
         (at most {MAX_SIDE} px a side and {MAX_PIXELS} pixels)"
    )]
    TooLarge {
        /// Width claimed by the JPEG header.
        width: usize,
        /// Height claimed by the JPEG header.
        height: usize,
    },
    /// The region is not finite or leaves no pixel of the frame.
    #[error(
        "region {0:?} has no pixel in the picture (x, y, w, h normalized to 0..1, w and h > 0)"
    )]
    Region([f32; 4]),
    /// The model could not be loaded or run (a bug, not bad input).
    #[error("person model: {0}")]
    Model(String),
    /// This build has no person check.
    #[error("this build has no person check (built without the `person` feature)")]
    Unavailable,
}
