//! Why a source stopped: what every source's `run` returns and the
//! supervisor shows on `/status` before it restarts the source.

use std::time::Duration;

use super::scene::SceneError;
use super::v4l2::V4l2Error;

/// A running source that sends nothing for this long is restarted (a hung
/// ffmpeg or a stalled network stream otherwise freezes the picture forever).
pub(super) const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a source stopped. The text is shown on `/status`, so it says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The command could not be started or exited.
    #[error("{0}")]
    Exec(String),
    /// The upstream URL failed.
    #[error("{0}")]
    Http(String),
    /// The file or folder could not be read.
    #[error("{0}")]
    File(String),
    /// The RTSP camera, or the decoder of its video, failed.
    #[error("{0}")]
    Rtsp(String),
    /// The V4L2 device failed.
    #[error(transparent)]
    V4l2(#[from] V4l2Error),
    /// The synthetic scene could not be rendered.
    #[error(transparent)]
    Scene(#[from] SceneError),
    /// The stream carried no usable frame for too long.
    #[error("no frame for {} s; restarting the source", STALL_TIMEOUT.as_secs())]
    Stalled,
    /// The source ended by itself.
    #[error("source ended")]
    Ended,
}
