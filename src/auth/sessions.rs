//! Listing and ending browser sessions and one-hour API tokens from the
//! command line (`lookout sessions list|revoke`). A session is shown by the
//! start of the hash it is stored under, never by its secret.

use std::time::SystemTime;

use super::error::AuthError;
use super::secrets::hex;
use crate::frame::unix_secs;
use crate::store::Store;

/// Browser sessions and one-hour API tokens (`lookout sessions list`).
pub async fn list_sessions(store: &Store) -> Result<Vec<SessionInfo>, AuthError> {
    let now = unix_secs(SystemTime::now());
    Ok(store
        .short_tokens(now)
        .await?
        .into_iter()
        .map(|(hash, row)| SessionInfo {
            id: hex(&hash[..SESSION_ID_BYTES]),
            kind: row.kind,
            created: row.created,
            expires: row.expires,
        })
        .collect())
}

/// Ends the session or one-hour token whose id starts with `id`, or all of
/// them with `None`; returns how many ended.
pub async fn end_sessions(store: &Store, id: Option<&str>) -> Result<usize, AuthError> {
    let Some(id) = id else {
        return Ok(store.delete_short_tokens().await?);
    };
    let id = id.to_ascii_lowercase();
    let now = unix_secs(SystemTime::now());
    let matches: Vec<[u8; 32]> = store
        .short_tokens(now)
        .await?
        .into_iter()
        .map(|(hash, _)| hash)
        .filter(|hash| !id.is_empty() && hex(hash).starts_with(&id))
        .collect();
    match matches.as_slice() {
        [one] => Ok(usize::from(store.delete_token(*one).await?)),
        [] => Ok(0),
        _ => Err(AuthError::Ambiguous(id)),
    }
}

/// Hex characters of a session's hash shown as its id: enough to tell a
/// household's sessions apart, and it is a hash, never the secret.
const SESSION_ID_BYTES: usize = 6;

/// A browser session or one-hour API token, as `lookout sessions list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// The start of the SHA-256 of its secret, in hex.
    pub id: String,
    /// `session` (browser) or `api` (one-hour token).
    pub kind: String,
    /// Unix seconds.
    pub created: f64,
    /// Unix seconds.
    pub expires: Option<f64>,
}
