//! What can go wrong in Web Push, by who must act on it: the client that
//! sent a subscription (a 400 reply), the caller (a payload or option out of
//! bounds), or the owner of the data directory (the key file).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A subscription from a client is unusable; the message is fit for a
    /// 400 reply (it says what is wrong, never echoes secrets).
    #[error("invalid push subscription: {0}")]
    Subscription(String),

    /// The key file exists but cannot be read: it is never replaced, since a
    /// new key would silently orphan every browser subscribed with the old.
    #[error("cannot read the Web Push key {path}: {source}")]
    KeyUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The key file is not a P-256 PKCS#8 key; kept for the owner to look at.
    #[error("{path} is not a valid Web Push (VAPID) key; move it away to make a new one (browsers will have to subscribe again)")]
    KeyInvalid { path: PathBuf },

    /// The key could not be written when it was first made.
    #[error("cannot write the Web Push key {path}: {source}")]
    KeyWrite {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The payload does not fit in the one 4096-byte record push services
    /// accept.
    #[error("push payload of {len} bytes is over the {max} bytes a push can carry")]
    PayloadTooLarge { len: usize, max: usize },

    /// A caller's argument (VAPID subject, endpoint, topic) is malformed.
    #[error("{0}")]
    Invalid(String),

    /// The system's random source or a primitive failed (ring reports
    /// nothing more precise).
    #[error("Web Push cryptography failed: {0}")]
    Crypto(&'static str),
}
