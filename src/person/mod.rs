//! The person check: is what moved a person? NanoDet-g, a small COCO object
//! detector, run on a frame (or the region of its motion boxes) in pure Rust.
//!
//! Pixel motion alone alarms on clouds, shadows, swaying trees, rain, cats
//! and the IR switch at dusk; a person detector after it is how camera
//! servers answer that. This module is the detector only: the camera's
//! pipeline decides when to call it.
//!
//! # The pipeline of one check ([`PersonDetector::detect_jpeg`])
//! 1. `prep`: the JPEG's header is read and hostile sizes refused before any
//!    pixel is decoded (zune-jpeg, as everywhere in lookout); the region is
//!    cropped and scaled into the model's 416x416 input keeping its shape
//!    (the rest padded with the mean colour), as BGR with NanoDet's mean and
//!    standard deviation.
//! 2. `model` (the `person` feature): the model, embedded in the binary in
//!    tract's NNEF format (converted offline from ONNX, already typed for its
//!    fixed input, weights as f16) and optimized once at
//!    [`PersonDetector::load`], runs on tract.
//! 3. `decode`: each of the three strides' grids gives person scores and box
//!    distances; boxes at or above the minimum score go through NMS at 0.45,
//!    and come back in whole-frame coordinates, best first.
//!
//! # Cost and threads
//! Tens of ms a check on one x86 core: 42 ms in the trial on an idle
//! machine, 45-52 ms measured on a shared two-core one and about 90 ms when
//! it is busy (`scripts/bench --person` prints it, with the memory the
//! loaded model adds: about 60 MB); `detect_jpeg` blocks for that long, so async
//! callers run it with `spawn_blocking`. tract computes on the calling
//! thread unless it is given a thread pool: [`PersonDetector::load`] gives it
//! none, so a check takes one core and never competes with streaming for the
//! others. [`PersonDetector::load_with_threads`] gives it a pool of its own
//! (rayon) for callers that want the answer sooner at the cost of more CPU.
//!
//! Without the `person` feature the types stay, so callers need no `cfg`:
//! [`AVAILABLE`] is false and [`PersonDetector::load`] returns
//! [`PersonError::Unavailable`].

// Without the model, the decoding of its outputs is unused outside tests.
#[cfg_attr(not(feature = "person"), allow(dead_code))]
mod decode;
mod error;
#[cfg(feature = "person")]
mod model;
mod prep;

pub use error::PersonError;
pub use prep::{MAX_PIXELS, MAX_SIDE};

/// Whether this build has the person check.
pub const AVAILABLE: bool = cfg!(feature = "person");

/// The minimum score the model's authors and the first trial settled on: 20
/// of 21 people found on real outdoor frames, no person on empty ones.
pub const DEFAULT_MIN_SCORE: f32 = 0.5;

/// One person found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Person {
    /// The model's confidence, 0..1.
    pub score: f32,
    /// x, y, w, h, normalized to the whole frame (0..1)
    pub bbox: [f32; 4],
}

/// The person detector: the model, optimized once. Cheap to clone (an `Arc`
/// inside), `Send + Sync`; checks from several threads run side by side.
#[derive(Clone)]
pub struct PersonDetector {
    #[cfg(feature = "person")]
    model: model::Model,
    /// Without the feature no detector is ever made ([`Self::load`] fails);
    /// the private field keeps it so outside this module too.
    #[cfg(not(feature = "person"))]
    _never: (),
}

impl std::fmt::Debug for PersonDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonDetector").finish_non_exhaustive()
    }
}

impl PersonDetector {
    /// Loads and optimizes the embedded model (a few hundred ms; do it once)
    /// for checks that compute on the calling thread alone.
    pub fn load() -> Result<Self, PersonError> {
        Self::load_with_threads(1)
    }

    /// As [`load`](Self::load), but each check spreads its matrix products
    /// over a pool of `threads` threads owned by this detector (and its
    /// clones). 0 or 1: no pool.
    pub fn load_with_threads(threads: usize) -> Result<Self, PersonError> {
        #[cfg(feature = "person")]
        {
            Ok(PersonDetector {
                model: model::Model::load(threads)?,
            })
        }
        #[cfg(not(feature = "person"))]
        {
            let _ = threads;
            Err(PersonError::Unavailable)
        }
    }

    /// Decode the JPEG, crop `region` (normalized x,y,w,h, already including any margin; None = whole frame),
    /// letterbox/scale to 416x416 as NanoDet expects (BGR, NanoDet mean/std), run, decode all 3 strides,
    /// keep class-0 (person) >= min_score, NMS 0.45, map boxes back to whole-frame normalized coords, sorted by score desc.
    ///
    /// Blocks for the length of a check (tens of ms).
    pub fn detect_jpeg(
        &self,
        jpeg: &[u8],
        region: Option<[f32; 4]>,
        min_score: f32,
    ) -> Result<Vec<Person>, PersonError> {
        self.detect_rgb(prep::decode_jpeg(jpeg)?, region, min_score)
    }

    /// [`PersonDetector::detect_jpeg`] on a picture already in RGB (a
    /// decoded camera's, see [`crate::picture::Picture::to_rgb`]).
    pub fn detect_rgb(
        &self,
        img: crate::jpeg::Rgb,
        region: Option<[f32; 4]>,
        min_score: f32,
    ) -> Result<Vec<Person>, PersonError> {
        let lb = decode::Letterbox::new(img.width, img.height, region)
            .ok_or(PersonError::Region(region.unwrap_or([0.0, 0.0, 1.0, 1.0])))?;
        let input = prep::model_input(&img, &lb);
        drop(img);
        let candidates = self.run(input, min_score)?;
        Ok(decode::nms(candidates, decode::NMS_IOU)
            .iter()
            .map(|c| Person {
                score: c.score,
                bbox: lb.frame_box(c),
            })
            .collect())
    }

    #[cfg(feature = "person")]
    fn run(&self, input: Vec<f32>, min_score: f32) -> Result<Vec<decode::Candidate>, PersonError> {
        self.model.run(input, min_score)
    }

    #[cfg(not(feature = "person"))]
    fn run(
        &self,
        _input: Vec<f32>,
        _min_score: f32,
    ) -> Result<Vec<decode::Candidate>, PersonError> {
        Err(PersonError::Unavailable)
    }
}
