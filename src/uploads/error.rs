//! Why the uploader could not start or queue an item.

use std::io;
use std::path::PathBuf;

/// Why the uploader could not start or queue an item.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// A receiver URL is not an absolute `http(s)` URL.
    #[error("invalid upload URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (it may hold a secret, but the user typed it).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot set up the upload client: {0}")]
    Client(String),
    /// The file system refused (queue folder, item files).
    #[error("{what}: {err}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        err: io::Error,
    },
}

impl UploadError {
    pub(super) fn io(what: impl Into<String>, err: io::Error) -> UploadError {
        UploadError::Io {
            what: what.into(),
            err,
        }
    }
}
