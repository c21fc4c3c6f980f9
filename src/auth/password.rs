//! The owner's password: how it is given (environment, file, or the store
//! that `lookout passwd` writes), the length every source must meet, and the
//! store keys that notice a change between two starts.

use std::path::PathBuf;

use super::error::AuthError;
use super::secrets::hash_blocking;
use crate::store::Store;

/// The shortest password accepted from any source.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Store key of the password hash set with `lookout passwd`.
pub(super) const KEY_PASSWORD: &str = "password_hash";
/// Store key of the argon2 hash of the password sessions were issued under;
/// when the password in effect no longer matches it, sessions end.
pub(super) const KEY_IN_USE: &str = "password_in_use";

/// How the password is given.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// The user name (the seed's `owner` unless set).
    pub user: String,
    /// Whether every route (but `/healthz` and the login page) needs credentials.
    pub required: bool,
    /// A password from `LOOKOUT_PASSWORD`.
    pub password: Option<String>,
    /// A file holding the password.
    pub password_file: Option<PathBuf>,
}

/// Where a password given at start came from, for error messages.
pub(super) struct Given {
    /// `LOOKOUT_PASSWORD` or the file's name.
    pub(super) source: String,
    /// The password itself.
    pub(super) password: String,
}

/// The password given by environment or file, checked for length.
pub(super) fn given_password(opts: &AuthOptions) -> Result<Option<Given>, AuthError> {
    let given = match (&opts.password, &opts.password_file) {
        (Some(p), _) => Given {
            source: "LOOKOUT_PASSWORD".into(),
            password: p.clone(),
        },
        (None, Some(path)) => Given {
            source: format!("password file {}", path.display()),
            password: std::fs::read_to_string(path)
                .map_err(|err| AuthError::PasswordFile {
                    path: path.clone(),
                    err,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        },
        (None, None) => return Ok(None),
    };
    let chars = given.password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakGiven {
            origin: given.source,
            chars,
        });
    }
    Ok(Some(given))
}

/// Stores the owner's password hash (`lookout passwd`) and ends every browser
/// session and one-hour API token issued under the old one; returns how many
/// ended. Long-lived tokens stay.
pub async fn set_stored_password(store: &Store, password: &str) -> Result<usize, AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Weak);
    }
    let hash = hash_blocking(password.to_string()).await?;
    store.set(KEY_PASSWORD, hash.clone()).await?;
    let ended = store.delete_short_tokens().await?;
    store.set(KEY_IN_USE, hash).await?;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            rt.block_on(set_stored_password(&store, "short")),
            Err(AuthError::Weak)
        ));
    }
}
