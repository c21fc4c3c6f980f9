//! Why a clip (or a continuous segment) operation failed: one error for
//! the folder and what it holds, in its own module so that the parts of
//! `clips` can use it without importing the folder's module.

use std::io;

use super::{mkv, mp4file};
use crate::shelf::ShelfError;

/// Why a clip operation failed, in words meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The name is not a clip name (and might point outside the folder).
    #[error("invalid clip name {0:?}")]
    InvalidName(String),
    /// No clip has this name.
    #[error("clip {0} not found")]
    NotFound(String),
    /// The file system refused.
    #[error("{what}: {err}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        err: io::Error,
    },
    /// No thumbnail could be made.
    #[error("thumbnail of clip {name}: {err}")]
    Thumb {
        /// The clip.
        name: String,
        /// Why.
        #[source]
        err: crate::thumbs::ThumbError,
    },
    /// The file is not a readable clip.
    #[error("clip {name}: {err}")]
    Unreadable {
        /// The clip.
        name: String,
        /// Why.
        #[source]
        err: mkv::MkvError,
    },
    /// The MP4 file is not a readable clip.
    #[error("clip {name}: {err}")]
    UnreadableMp4 {
        /// The clip.
        name: String,
        /// Why.
        #[source]
        err: mp4file::Mp4Error,
    },
    /// An MP4 clip has no frame index: players play it as it is.
    #[error("clip {0} is an MP4 video: play the file itself, it has no frame index")]
    NoIndex(String),
}

impl ClipError {
    pub(super) fn io(what: impl Into<String>, err: io::Error) -> ClipError {
        ClipError::Io {
            what: what.into(),
            err,
        }
    }
}

impl From<ShelfError> for ClipError {
    fn from(err: ShelfError) -> ClipError {
        match err {
            ShelfError::InvalidName(name) => ClipError::InvalidName(name),
            ShelfError::NotFound(name) => ClipError::NotFound(name),
            ShelfError::Io { what, err } => ClipError::Io { what, err },
        }
    }
}
