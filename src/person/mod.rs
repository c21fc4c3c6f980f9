//! The person detector's interface. This build has no detector: the check
//! reports itself unavailable and person settings are refused.

/// Whether this build has the person check.
pub const AVAILABLE: bool = false;

/// A person found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Person {
    /// The detector's score, 0-1.
    pub score: f32,
    /// x, y, w, h, normalized to the whole frame.
    pub bbox: [f32; 4],
}

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum PersonError {
    /// This build has no detector.
    #[error("this build has no person check")]
    Unavailable,
}

/// The detector (none in this build).
#[derive(Clone)]
pub struct PersonDetector {
    _none: (),
}

impl PersonDetector {
    /// Always [`PersonError::Unavailable`] in this build.
    pub fn load() -> Result<Self, PersonError> {
        Err(PersonError::Unavailable)
    }

    /// The people in `jpeg` (within `region`), best first.
    pub fn detect_jpeg(
        &self,
        _jpeg: &[u8],
        _region: Option<[f32; 4]>,
        _min_score: f32,
    ) -> Result<Vec<crate::person::Person>, PersonError> {
        Err(PersonError::Unavailable)
    }
}
