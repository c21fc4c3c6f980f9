//! What can go wrong with notifications.

/// Why a notification setting, subscription or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A client sent something unusable (the message is its 400 reply).
    #[error("{0}")]
    Invalid(String),
    /// The VAPID key could not be read or written.
    #[error("VAPID key {path}: {err}")]
    Key {
        /// The key file.
        path: std::path::PathBuf,
        /// What failed.
        err: String,
    },
    /// A bad ntfy URL or contact, found at start-up.
    #[error("{0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Encrypting or signing failed.
    #[error("crypto: {0}")]
    Crypto(String),
}
