//! Who may use the cam: the owner's password (argon2id), browser sessions,
//! API tokens, and slowing down password guessing.
//!
//! Secrets are never stored: sessions and tokens are kept as the SHA-256 of
//! their random 256-bit value, the password as an argon2id hash. A verified
//! Basic-auth password is remembered (by hash) for a few minutes, because
//! argon2 is slow on purpose and Home Assistant sends Basic auth with every
//! request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::frame::unix_secs;
use crate::store::{Store, StoreError, TokenRow};

/// Name of the browser session cookie.
pub const SESSION_COOKIE: &str = "lookout_session";
/// A browser session without "remember me".
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// A browser session with "remember me".
pub const REMEMBER_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// A token from `POST /api/login` (the seed's programmatic flow).
pub const API_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How long a verified Basic-auth password skips argon2.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(300);
/// First delay after a failed login; doubles per failure.
const THROTTLE_START: Duration = Duration::from_millis(250);
/// Longest delay before a login attempt is checked.
const THROTTLE_MAX: Duration = Duration::from_secs(10);
/// Failures older than this are forgotten.
const THROTTLE_FORGET: Duration = Duration::from_secs(900);
/// Store key of the password hash set with `lookout passwd`.
const KEY_PASSWORD: &str = "password_hash";

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
    /// The system random generator failed.
    #[error("no system randomness available")]
    Random,
}

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

/// The authentication state of a running server.
pub struct Auth {
    user: String,
    required: bool,
    /// Hash of a password given by environment or file (wins over the store).
    fixed_hash: Option<String>,
    store: Store,
    /// sha256("user:pass") -> (password hash it was checked against, when).
    basic_cache: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    /// Failed logins per client address: (count, last failure).
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Auth {
    /// Sets up authentication. When it is required and no password exists
    /// anywhere, a strong one is generated, its hash stored, and the password
    /// returned so the caller can print it once.
    pub async fn setup(
        opts: AuthOptions,
        store: Store,
    ) -> Result<(Auth, Option<String>), AuthError> {
        let given = match (&opts.password, &opts.password_file) {
            (Some(p), _) if !p.is_empty() => Some(p.clone()),
            (_, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|err| AuthError::PasswordFile {
                        path: path.clone(),
                        err,
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            _ => None,
        };
        let fixed_hash = match given {
            Some(p) => Some(hash_blocking(p).await?),
            None => None,
        };
        let mut generated = None;
        if opts.required && fixed_hash.is_none() && store.get(KEY_PASSWORD).await?.is_none() {
            let password = generate_password()?;
            set_stored_password(&store, &password).await?;
            generated = Some(password);
        }
        let user = if opts.user.is_empty() {
            "owner".to_string()
        } else {
            opts.user
        };
        let auth = Auth {
            user,
            required: opts.required,
            fixed_hash,
            store,
            basic_cache: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        };
        Ok((auth, generated))
    }

    /// Whether credentials are needed.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    async fn password_hash(&self) -> Result<Option<String>, StoreError> {
        match &self.fixed_hash {
            Some(h) => Ok(Some(h.clone())),
            None => self.store.get(KEY_PASSWORD).await,
        }
    }

    /// Checks a user name and password (constant-time on the name; argon2 on
    /// the password, off the async executor).
    pub async fn check_password(&self, user: &str, pass: &str) -> bool {
        let user_ok: bool = user.as_bytes().ct_eq(self.user.as_bytes()).into();
        let Ok(Some(hash)) = self.password_hash().await else {
            return false;
        };
        let key = sha256(format!("{user}:{pass}").as_bytes());
        if let Ok(cache) = self.basic_cache.lock() {
            if let Some((h, at)) = cache.get(&key) {
                if *h == hash && at.elapsed() < BASIC_CACHE_TTL {
                    return user_ok;
                }
            }
        }
        let pass = pass.to_string();
        let checked = hash.clone();
        let ok = tokio::task::spawn_blocking(move || verify_password(&checked, &pass))
            .await
            .unwrap_or(false);
        if ok && user_ok {
            if let Ok(mut cache) = self.basic_cache.lock() {
                cache.retain(|_, (_, at)| at.elapsed() < BASIC_CACHE_TTL);
                cache.insert(key, (hash, Instant::now()));
            }
        }
        ok && user_ok
    }

    /// Starts a browser session; returns the cookie value and its lifetime.
    pub async fn new_session(&self, remember: bool) -> Result<(String, Duration), AuthError> {
        let ttl = if remember { REMEMBER_TTL } else { SESSION_TTL };
        Ok((self.issue("session", None, Some(ttl)).await?, ttl))
    }

    /// Issues a one-hour API token (`POST /api/login`).
    pub async fn new_api_token(&self) -> Result<(String, Duration), AuthError> {
        Ok((
            self.issue("api", None, Some(API_TOKEN_TTL)).await?,
            API_TOKEN_TTL,
        ))
    }

    async fn issue(
        &self,
        kind: &str,
        name: Option<String>,
        ttl: Option<Duration>,
    ) -> Result<String, AuthError> {
        issue_token(&self.store, kind, name, ttl).await
    }

    /// Whether `secret` is a live token of one of `kinds`.
    pub async fn check_token(&self, secret: &str, kinds: &[&str]) -> bool {
        let now = unix_secs(SystemTime::now());
        match self.store.find_token(sha256(secret.as_bytes()), now).await {
            Ok(Some(row)) => kinds.contains(&row.kind.as_str()),
            Ok(None) => false,
            Err(e) => {
                tracing::error!("cannot check a token: {e}");
                false
            }
        }
    }

    /// Ends a session or token (logout).
    pub async fn revoke(&self, secret: &str) {
        if let Err(e) = self.store.delete_token(sha256(secret.as_bytes())).await {
            tracing::error!("cannot end a session: {e}");
        }
    }

    /// Waits before a login attempt from `ip`, longer after each recent
    /// failure (2^n x 250 ms, at most 10 s).
    pub async fn throttle(&self, ip: IpAddr) {
        let delay = {
            let Ok(mut failures) = self.failures.lock() else {
                return;
            };
            failures.retain(|_, (_, at)| at.elapsed() < THROTTLE_FORGET);
            match failures.get(&ip) {
                Some((n, _)) if *n > 0 => THROTTLE_START
                    .saturating_mul(1u32 << (*n - 1).min(10))
                    .min(THROTTLE_MAX),
                _ => Duration::ZERO,
            }
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Records the outcome of a login attempt from `ip`.
    pub fn record_login(&self, ip: IpAddr, ok: bool) {
        if let Ok(mut failures) = self.failures.lock() {
            if ok {
                failures.remove(&ip);
            } else {
                let entry = failures.entry(ip).or_insert((0, Instant::now()));
                entry.0 = entry.0.saturating_add(1);
                entry.1 = Instant::now();
                tracing::warn!("failed login from {ip} ({} in a row)", entry.0);
            }
        }
    }
}

/// Stores a new random token of `kind` and returns its secret.
async fn issue_token(
    store: &Store,
    kind: &str,
    name: Option<String>,
    ttl: Option<Duration>,
) -> Result<String, AuthError> {
    let secret = random_hex(32)?;
    let now = unix_secs(SystemTime::now());
    let row = TokenRow {
        kind: kind.to_string(),
        name,
        created: now,
        expires: ttl.map(|t| now + t.as_secs_f64()),
    };
    store.add_token(sha256(secret.as_bytes()), row).await?;
    Ok(secret)
}

/// Creates a long-lived API token (`lookout token create NAME`).
pub async fn create_long_token(store: &Store, name: &str) -> Result<String, AuthError> {
    issue_token(store, "long", Some(name.to_string()), None).await
}

/// Stores the owner's password hash (`lookout passwd`).
pub async fn set_stored_password(store: &Store, password: &str) -> Result<(), AuthError> {
    if password.chars().count() < 8 {
        return Err(AuthError::Weak);
    }
    let hash = hash_blocking(password.to_string()).await?;
    store.set(KEY_PASSWORD, hash).await?;
    Ok(())
}

async fn hash_blocking(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))?
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| AuthError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against a PHC hash (argon2 compares in constant time).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, AuthError> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Random)?;
    Ok(hex(&bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A strong password that is easy to type: 20 characters from an alphabet
/// without look-alikes (about 115 bits).
pub fn generate_password() -> Result<String, AuthError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Random)?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn auth(
        required: bool,
        password: Option<&str>,
    ) -> (Auth, Option<String>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let opts = AuthOptions {
            user: String::new(),
            required,
            password: password.map(str::to_string),
            password_file: None,
        };
        let (a, generated) = Auth::setup(opts, store).await.unwrap();
        (a, generated, dir)
    }

    #[tokio::test]
    async fn password_from_environment() {
        let (a, generated, _dir) = auth(true, Some("correct horse")).await;
        assert!(generated.is_none());
        assert_eq!(a.user(), "owner");
        assert!(a.check_password("owner", "correct horse").await);
        assert!(
            a.check_password("owner", "correct horse").await,
            "cached path"
        );
        assert!(!a.check_password("owner", "wrong horse").await);
        assert!(!a.check_password("intruder", "correct horse").await);
    }

    #[tokio::test]
    async fn generated_password_is_stored_and_works() {
        let (a, generated, _dir) = auth(true, None).await;
        let p = generated.expect("a generated password");
        assert_eq!(p.len(), 20);
        assert!(a.check_password("owner", &p).await);
        assert!(!a.check_password("owner", "").await);
    }

    #[tokio::test]
    async fn no_password_generated_on_loopback() {
        let (a, generated, _dir) = auth(false, None).await;
        assert!(generated.is_none());
        assert!(!a.check_password("owner", "anything").await);
    }

    #[tokio::test]
    async fn sessions_and_tokens() {
        let (a, _, _dir) = auth(true, Some("correct horse")).await;
        let (session, ttl) = a.new_session(false).await.unwrap();
        assert_eq!(ttl, SESSION_TTL);
        assert_eq!(session.len(), 64);
        assert!(a.check_token(&session, &["session"]).await);
        assert!(
            !a.check_token(&session, &["api", "long"]).await,
            "a cookie is not an API token"
        );
        let (token, _) = a.new_api_token().await.unwrap();
        assert!(a.check_token(&token, &["api", "long"]).await);
        a.revoke(&session).await;
        assert!(!a.check_token(&session, &["session"]).await);
        let long = create_long_token(&a.store, "home-assistant").await.unwrap();
        assert!(a.check_token(&long, &["api", "long"]).await);
        assert!(a.store.revoke_long_token("home-assistant").await.unwrap());
        assert!(!a.check_token(&long, &["api", "long"]).await);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_logins_slow_down_exponentially() {
        let (a, _, _dir) = auth(true, Some("correct horse")).await;
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        async fn waited(a: &Auth, ip: IpAddr) -> Duration {
            let start = tokio::time::Instant::now();
            a.throttle(ip).await;
            start.elapsed()
        }
        assert_eq!(waited(&a, ip).await, Duration::ZERO);
        a.record_login(ip, false);
        assert_eq!(waited(&a, ip).await, Duration::from_millis(250));
        a.record_login(ip, false);
        a.record_login(ip, false);
        assert_eq!(waited(&a, ip).await, Duration::from_millis(1000));
        for _ in 0..20 {
            a.record_login(ip, false);
        }
        assert_eq!(waited(&a, ip).await, THROTTLE_MAX);
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let start = tokio::time::Instant::now();
        a.throttle(other).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "per address");
        a.record_login(ip, true);
        assert_eq!(waited(&a, ip).await, Duration::ZERO);
    }

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
