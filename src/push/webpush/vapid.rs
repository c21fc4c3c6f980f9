//! The server's VAPID identity (RFC 8292): one P-256 key pair for the life
//! of the data directory. Browsers bind each subscription to its public key,
//! so losing or replacing it silently ends every subscription; hence a key
//! file that is never overwritten.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::error::PushError;
use crate::durable::{sync_dir, TempFiles};

/// The key's file in the data directory (PKCS#8 DER, mode 0600).
pub const KEY_FILE: &str = "vapid.key";

/// How long a VAPID token is good for. RFC 8292 caps it at 24 hours; half
/// that leaves room for a clock that runs ahead of the push service's.
pub const TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

/// Temporary files while the key is first written; a crash mid-write leaves
/// one, removed at the next start.
const TMP_PREFIX: &str = ".vapid.key.tmp-";

/// The server's VAPID key pair.
pub struct Vapid {
    key: EcdsaKeyPair,
    /// The public key as browsers take it (applicationServerKey).
    public: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Vapid {
    /// The key in `<data_dir>/vapid.key`, made there on first start. A file
    /// that exists but cannot be read or parsed is an error, never replaced.
    pub fn load_or_create(data_dir: &Path) -> Result<Vapid, PushError> {
        let path = data_dir.join(KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => Self::from_pkcs8(&bytes).ok_or(PushError::KeyInvalid { path }),
            Err(err) if err.kind() == ErrorKind::NotFound => Self::create(data_dir, path),
            Err(source) => Err(PushError::KeyUnreadable { path, source }),
        }
    }

    /// A new key, written durably; if another process wrote one first, that
    /// one (a hard link, unlike a rename, never replaces a file).
    fn create(data_dir: &Path, path: PathBuf) -> Result<Vapid, PushError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| PushError::Crypto("generating the VAPID key"))?;
        let write_err = |source| PushError::KeyWrite {
            path: path.clone(),
            source,
        };
        let tmp = TempFiles::new(data_dir, TMP_PREFIX);
        tmp.remove_stale().map_err(write_err)?;
        let written = tmp.write(pkcs8.as_ref()).map_err(write_err)?;
        let linked = fs::hard_link(&written, &path);
        let _ = fs::remove_file(&written);
        match linked {
            Ok(()) => {
                sync_dir(data_dir).map_err(write_err)?;
                Self::from_pkcs8(pkcs8.as_ref()).ok_or(PushError::KeyInvalid { path })
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists => Self::load_or_create(data_dir),
            Err(err) => Err(write_err(err)),
        }
    }

    fn from_pkcs8(bytes: &[u8]) -> Option<Vapid> {
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            bytes,
            &SystemRandom::new(),
        )
        .ok()?;
        let public = URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
        Some(Vapid { key, public })
    }

    /// The 65-byte uncompressed P-256 public key, base64url without padding:
    /// the browser's `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header for a push to `endpoint`:
    /// `vapid t=<ES256 JWT>, k=<public key>`. The token's audience is the
    /// endpoint's origin, it expires 12 hours after `now_unix`, and its
    /// subject is `subject`, the operator's contact (a `mailto:` or
    /// `https:` URL) that push services use when something goes wrong.
    pub fn authorization(
        &self,
        endpoint: &str,
        subject: &str,
        now_unix: u64,
    ) -> Result<String, PushError> {
        let token = self.token(endpoint, subject, now_unix)?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }

    /// The signed JWT (RFC 7519 with ES256, RFC 7515's compact form).
    fn token(&self, endpoint: &str, subject: &str, now_unix: u64) -> Result<String, PushError> {
        let aud = audience(endpoint)?;
        check_subject(subject)?;
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": aud,
            "exp": now_unix.saturating_add(TOKEN_LIFETIME_SECS),
            "sub": subject,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| PushError::Crypto("signing the VAPID token"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// The origin (scheme://host[:port]) the token is for; push services reject
/// a token whose audience is not their own origin.
fn audience(endpoint: &str) -> Result<String, PushError> {
    let url = url::Url::parse(endpoint)
        .map_err(|e| PushError::Invalid(format!("push endpoint is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(PushError::Invalid(
            "push endpoint is not an http(s) URL with a host".into(),
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// RFC 8292 section 2.1: the contact is a `mailto:` or `https:` URI.
fn check_subject(subject: &str) -> Result<(), PushError> {
    let ok = url::Url::parse(subject).is_ok_and(|u| match u.scheme() {
        "mailto" => u.path().contains('@'),
        "https" => u.host().is_some(),
        _ => false,
    });
    if ok {
        Ok(())
    } else {
        Err(PushError::Invalid(format!(
            "VAPID subject {subject:?} is not a mailto: or https: URL"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    use std::os::unix::fs::PermissionsExt;

    const NOW: u64 = 1_800_000_000;

    fn decode_json(part: &str) -> serde_json::Value {
        let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[test]
    fn a_new_key_is_kept_private_and_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = Vapid::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Vapid::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        // Nothing but the key is left in the folder.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [KEY_FILE]);
        // The public key is the 65-byte uncompressed point.
        let raw = URL_SAFE_NO_PAD.decode(first.public_key()).unwrap();
        assert_eq!(raw.len(), 65);
        assert_eq!(raw[0], 4);
    }

    #[test]
    fn another_data_dir_has_another_key() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let a = Vapid::load_or_create(a.path()).unwrap();
        let b = Vapid::load_or_create(b.path()).unwrap();
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn a_damaged_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::write(&path, b"not a key").unwrap();
        let err = Vapid::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, PushError::KeyInvalid { .. }), "{err:?}");
        assert!(err.to_string().contains("vapid.key"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"not a key");
    }

    #[test]
    fn an_unreadable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should be: reading it fails whoever runs
        // the test (a 0000 mode would not stop root).
        fs::create_dir(dir.path().join(KEY_FILE)).unwrap();
        let err = Vapid::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, PushError::KeyUnreadable { .. }), "{err:?}");
        assert!(dir.path().join(KEY_FILE).is_dir());
    }

    #[test]
    fn a_missing_data_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Vapid::load_or_create(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, PushError::KeyWrite { .. }), "{err:?}");
    }

    #[test]
    fn the_token_has_the_claims_and_verifies_with_the_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let vapid = Vapid::load_or_create(dir.path()).unwrap();
        let header = vapid
            .authorization(
                "https://push.example.net:8443/wpush/v2/abc?x=1",
                "mailto:owner@example.org",
                NOW,
            )
            .unwrap();
        let rest = header.strip_prefix("vapid t=").expect(&header);
        let (token, k) = rest.split_once(", k=").expect(&header);
        assert_eq!(k, vapid.public_key());

        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let head = decode_json(parts[0]);
        assert_eq!(head["alg"], "ES256");
        assert_eq!(head["typ"], "JWT");
        let claims = decode_json(parts[1]);
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["exp"], NOW + 12 * 3600);
        assert_eq!(claims["sub"], "mailto:owner@example.org");

        let public = URL_SAFE_NO_PAD.decode(vapid.public_key()).unwrap();
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(signature.len(), 64);
        let signed = format!("{}.{}", parts[0], parts[1]);
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public);
        key.verify(signed.as_bytes(), &signature)
            .expect("signature verifies");
        // And only for what was signed.
        let forged = format!("{}.{}", parts[0], URL_SAFE_NO_PAD.encode(b"{}"));
        assert!(key.verify(forged.as_bytes(), &signature).is_err());
    }

    #[test]
    fn the_audience_is_the_origin_without_a_default_port() {
        assert_eq!(
            audience("https://fcm.googleapis.com/fcm/send/abc").unwrap(),
            "https://fcm.googleapis.com"
        );
        assert_eq!(
            audience("https://updates.push.services.mozilla.com:443/wpush/v2/x").unwrap(),
            "https://updates.push.services.mozilla.com"
        );
        assert_eq!(
            audience("http://localhost:8090/notify/x").unwrap(),
            "http://localhost:8090"
        );
        assert!(audience("not a url").is_err());
        assert!(audience("ftp://example.org/x").is_err());
    }

    #[test]
    fn the_subject_must_be_a_contact() {
        let dir = tempfile::tempdir().unwrap();
        let vapid = Vapid::load_or_create(dir.path()).unwrap();
        let endpoint = "https://push.example.net/x";
        assert!(vapid
            .authorization(endpoint, "https://example.org/contact", NOW)
            .is_ok());
        for bad in ["owner@example.org", "mailto:", "http://example.org", ""] {
            let err = vapid.authorization(endpoint, bad, NOW).unwrap_err();
            assert!(matches!(err, PushError::Invalid(_)), "{bad}: {err:?}");
        }
    }
}
