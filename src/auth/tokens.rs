//! Long-lived API tokens from the command line (`lookout token
//! create|list|revoke`). A token is shown by its name, its scope and the
//! start of the hash it is stored under, never by its secret.
//!
//! Names are checked like camera names (they are printed to a terminal) and
//! unique, so "revoke by name" means one token. Stores from before the check
//! may hold odd or shared names: listings escape them, and a shared name is
//! revoked by id.

use std::time::SystemTime;

use super::error::AuthError;
use super::scope::Scope;
use super::secrets::{hex, random_hex, sha256};
use crate::console::printable;
use crate::frame::unix_secs;
use crate::names::is_plain_name;
use crate::store::{Store, TokenRow};

/// Hex characters of a token's hash shown as its id (as for sessions).
const TOKEN_ID_BYTES: usize = 6;

/// A long-lived token as `lookout token list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LongToken {
    /// Its name as stored (use [`LongToken::shown_name`] to print it).
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// The start of the SHA-256 of its secret, in hex.
    pub id: String,
    /// Unix seconds.
    pub created: f64,
    hash: [u8; 32],
}

impl LongToken {
    /// The name, safe to print (control characters escaped).
    pub fn shown_name(&self) -> String {
        printable(&self.name)
    }
}

/// Which token `lookout token revoke` means.
#[derive(Debug, Clone, Copy)]
pub enum TokenRef<'a> {
    /// The one token of this name.
    Name(&'a str),
    /// The one token whose id starts with this.
    Id(&'a str),
}

/// Creates a long-lived API token (`lookout token create NAME --scope S`)
/// and returns its secret. The name must be plain (see
/// [`is_plain_name`]) and not taken.
pub async fn create_long_token(
    store: &Store,
    name: &str,
    scope: Scope,
) -> Result<String, AuthError> {
    if !is_plain_name(name) {
        return Err(AuthError::TokenName(shown(name)));
    }
    let secret = random_hex(32)?;
    let row = TokenRow {
        kind: "long".into(),
        name: Some(name.to_string()),
        created: unix_secs(SystemTime::now()),
        expires: None,
        scope: scope.as_str().into(),
    };
    if !store.add_long_token(sha256(secret.as_bytes()), row).await? {
        return Err(AuthError::TokenExists(name.to_string()));
    }
    Ok(secret)
}

/// Every long-lived token, by name.
pub async fn list_long_tokens(store: &Store) -> Result<Vec<LongToken>, AuthError> {
    Ok(store
        .long_tokens()
        .await?
        .into_iter()
        .map(|(hash, row)| LongToken {
            name: row.name.unwrap_or_default(),
            scope: Scope::from_stored(&row.scope),
            id: hex(&hash[..TOKEN_ID_BYTES]),
            created: row.created,
            hash,
        })
        .collect())
}

/// Revokes the one token `which` names and returns it; an unknown or
/// shared name, or an id prefix that fits several, revokes nothing.
pub async fn revoke_long_token(store: &Store, which: TokenRef<'_>) -> Result<LongToken, AuthError> {
    let all = list_long_tokens(store).await?;
    let matches: Vec<&LongToken> = match which {
        TokenRef::Name(name) => all.iter().filter(|t| t.name == name).collect(),
        TokenRef::Id(id) => {
            let id = id.to_ascii_lowercase();
            all.iter()
                .filter(|t| !id.is_empty() && hex(&t.hash).starts_with(&id))
                .collect()
        }
    };
    match (matches.as_slice(), which) {
        ([one], _) => {
            store.delete_token(one.hash).await?;
            Ok((*one).clone())
        }
        ([], TokenRef::Name(name)) => Err(AuthError::NoToken(format!("named {}", shown(name)))),
        ([], TokenRef::Id(id)) => Err(AuthError::NoToken(format!("with id {}", shown(id)))),
        (several, TokenRef::Name(name)) => Err(AuthError::SharedName {
            name: shown(name),
            ids: several.iter().map(|t| t.id.clone()).collect(),
        }),
        (_, TokenRef::Id(id)) => Err(AuthError::AmbiguousToken(shown(id))),
    }
}

/// Forgets the token with this secret (one that was created but could not
/// be shown).
pub async fn forget_long_token(store: &Store, secret: &str) -> Result<bool, AuthError> {
    Ok(store.delete_token(sha256(secret.as_bytes())).await?)
}

/// `text` quoted for an error message: escaped, and cut after 40 characters.
fn shown(text: &str) -> String {
    let mut cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    format!("\"{}\"", printable(&cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_plain_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for bad in ["", "Home", "a b", "a\x1b[2J", "x\ny", &"a".repeat(33)] {
            let err = create_long_token(&store, bad, Scope::Read)
                .await
                .unwrap_err();
            assert!(matches!(err, AuthError::TokenName(_)), "{bad:?}: {err}");
            assert!(!err.to_string().contains('\x1b'), "{err}");
        }
        let long = "a".repeat(5000);
        let err = create_long_token(&store, &long, Scope::Read)
            .await
            .unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
        create_long_token(&store, "prometheus", Scope::Read)
            .await
            .unwrap();
        let err = create_long_token(&store, "prometheus", Scope::Control)
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::TokenExists(_)), "{err}");
        let all = list_long_tokens(&store).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].scope, Scope::Read, "the first one stays as it was");
    }

    #[tokio::test]
    async fn a_shared_name_is_revoked_by_id_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for hash in [[1; 32], [2; 32]] {
            let row = TokenRow {
                kind: "long".into(),
                name: Some("dup".into()),
                created: 1.0,
                expires: None,
                scope: "control".into(),
            };
            store.add_token(hash, row).await.unwrap();
        }
        let err = revoke_long_token(&store, TokenRef::Name("dup"))
            .await
            .unwrap_err();
        let AuthError::SharedName { ids, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(ids, &["010101010101", "020202020202"]);
        assert!(err.to_string().contains("--id"), "{err}");
        assert!(matches!(
            revoke_long_token(&store, TokenRef::Id("")).await,
            Err(AuthError::NoToken(_))
        ));
        assert!(matches!(
            revoke_long_token(&store, TokenRef::Name("other")).await,
            Err(AuthError::NoToken(_))
        ));
        let gone = revoke_long_token(&store, TokenRef::Id("0202"))
            .await
            .unwrap();
        assert_eq!(gone.id, "020202020202");
        let left = list_long_tokens(&store).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, "010101010101");
        revoke_long_token(&store, TokenRef::Name("dup"))
            .await
            .unwrap();
        assert!(list_long_tokens(&store).await.unwrap().is_empty());
    }
}
