//! What can go wrong in authentication, as one enum for the whole `auth`
//! module: its parts share it, and each message names the next step.

use std::path::PathBuf;

use crate::store::StoreError;

/// Why authentication could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password file could not be read.
    #[error("cannot read password file {path}: {err}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// Hashing failed (should not happen).
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// A password that is too short to protect a camera.
    #[error("the password must have at least 8 characters")]
    Weak,
    /// A password from the environment or a file that is too short.
    #[error(
        "the password from {origin} has {chars} character(s); use at least 8 \
         (a few words make a strong one), or unset it to use `lookout passwd`"
    )]
    WeakGiven {
        /// Where it came from (`LOOKOUT_PASSWORD`, or the file).
        origin: String,
        /// How many characters it has.
        chars: usize,
    },
    /// The system random generator failed.
    #[error("no system randomness available")]
    Random,
    /// The password-check threads could not be started.
    #[error("cannot start the password-check threads: {0}")]
    Threads(std::io::Error),
    /// A session id prefix matches more than one session.
    #[error("more than one session starts with {0:?}; give more of its id")]
    Ambiguous(String),
    /// A token name that is not plain (shown escaped and quoted).
    #[error("token name {0} must be 1 to 32 of a-z, 0-9, _ and - (as camera names)")]
    TokenName(String),
    /// A long-lived token of this name exists.
    #[error(
        "a token named {0:?} exists already; choose another name, or revoke it first \
         (`lookout token revoke {0}`)"
    )]
    TokenExists(String),
    /// No long-lived token fits (`named "x"`, `with id "y"`).
    #[error("no token {0}; `lookout token list` shows them")]
    NoToken(String),
    /// Several long-lived tokens share a name (possible in stores from
    /// before names were checked): nothing is revoked.
    #[error(
        "{} tokens are named {name} (ids {}); revoke one with `lookout token revoke --id ID`",
        ids.len(),
        ids.join(", ")
    )]
    SharedName {
        /// The name, shown escaped and quoted.
        name: String,
        /// Their ids.
        ids: Vec<String>,
    },
    /// A token id prefix matches more than one token.
    #[error("more than one token's id starts with {0}; give more of it")]
    AmbiguousToken(String),
}
