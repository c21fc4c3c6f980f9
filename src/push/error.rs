//! What can go wrong with notifications.

/// Why a notification setting, subscription or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A client sent something unusable (the message is its 400 reply).
    #[error("{0}")]
    Invalid(String),
    /// A bad ntfy URL or contact, found at start-up.
    #[error("{0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Web Push (its key, or a push) failed.
    #[error(transparent)]
    WebPush(super::webpush::PushError),
}

impl From<super::webpush::PushError> for PushError {
    /// A client's bad subscription stays a 400 ([`PushError::Invalid`]).
    fn from(e: super::webpush::PushError) -> Self {
        match e {
            super::webpush::PushError::Subscription(_) => PushError::Invalid(e.to_string()),
            other => PushError::WebPush(other),
        }
    }
}
