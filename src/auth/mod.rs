//! Who may use the cam: the owner's password (argon2id), browser sessions,
//! API tokens, and slowing down guessing.
//!
//! Secrets are never stored: sessions and tokens are kept as the SHA-256 of
//! their random 256-bit value, the password as an argon2id hash. A verified
//! Basic-auth password is remembered (by hash) for a few minutes, because
//! argon2 is slow on purpose and Home Assistant sends Basic auth with every
//! request.
//!
//! Every check from the web goes through [`Auth::verify`]. Sessions and
//! tokens are checked at once; failures of any kind are recorded against the
//! client's address, and only password checks wait for that address's slot
//! in the [`throttle`], so a valid token is never refused for someone else's
//! guesses. argon2 needs about 19 MiB per check, so at most
//! [`PASSWORD_CHECKS`] run at once, always on the same threads ([`pool`]),
//! one per address, the others waiting their turn in a short line; beyond
//! that line they are answered "busy" (48 parallel wrong passwords used to
//! take the server to 1.6 GB), and a busy answer counts against its address
//! like a wrong password, so a flood from many addresses slows itself down
//! and the owner gets a turn.
//!
//! Changing the password ends every browser session and one-hour API token
//! (long-lived tokens stay: they are revoked by name, see `tokens`). A
//! long-lived token may be limited to looking ([`Scope`]); every other
//! credential has full control. The argon2 hash of the
//! password in effect is kept under [`KEY_IN_USE`] to notice a change made
//! through `LOOKOUT_PASSWORD` or `--password-file` between two starts.

mod credential;
mod error;
mod password;
mod pool;
mod scope;
mod secrets;
mod sessions;
mod throttle;
mod tokens;
mod turn;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use subtle::ConstantTimeEq;

use crate::frame::unix_secs;
use crate::store::{Store, StoreError, TokenRow};
pub use credential::{Credential, Verdict};
pub use error::AuthError;
use password::{given_password, KEY_IN_USE, KEY_PASSWORD};
pub use password::{set_stored_password, AuthOptions, MIN_PASSWORD_CHARS};
pub use scope::Scope;
use secrets::verify_with;
pub use secrets::{generate_password, hash_password, hex, random_hex, sha256, verify_password};
pub use sessions::{end_sessions, list_sessions, SessionInfo};
pub use throttle::Throttled;
pub use tokens::{
    create_long_token, forget_long_token, list_long_tokens, revoke_long_token, LongToken, TokenRef,
};
use turn::Turn;

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
/// Password checks (argon2, about 19 MiB and tens of milliseconds each) that
/// may run at once. Two keeps a Pi's memory flat under a guessing flood and
/// still signs in a household without waiting; a check beyond it is answered
/// 503 at once (with Retry-After) instead of queueing on the blocking pool.
pub const PASSWORD_CHECKS: usize = 2;
/// The authentication state of a running server.
pub struct Auth {
    user: String,
    required: bool,
    /// Hash of a password given by environment or file (wins over the store).
    fixed_hash: Option<String>,
    store: Store,
    /// sha256("user:pass") -> (password hash it was checked against, when).
    basic_cache: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    /// Failed attempts per client address and the delays they lead to.
    throttle: throttle::Throttle,
    /// The threads argon2 runs on; see [`PASSWORD_CHECKS`].
    pool: pool::CheckPool,
    /// Addresses ([`crate::peers::key`]) with a password check under way.
    checking: Mutex<HashSet<IpAddr>>,
}

impl Auth {
    /// Sets up authentication. When it is required and no password exists
    /// anywhere, a strong one is generated, its hash stored, and the password
    /// returned so the caller can print it once.
    pub async fn setup(
        opts: AuthOptions,
        store: Store,
    ) -> Result<(Auth, Option<String>), AuthError> {
        let given = given_password(&opts)?;
        let pool = pool::CheckPool::new(PASSWORD_CHECKS).map_err(AuthError::Threads)?;
        let recorded = store.get(KEY_IN_USE).await?;
        // The same password as last time keeps its recorded hash (and the
        // sessions issued under it); a different one gets a new hash.
        let fixed_hash = match given {
            Some(g) => {
                let (password, last) = (g.password.clone(), recorded.clone());
                let same = pool
                    .run(move |memory| last.is_some_and(|h| verify_with(&h, &password, memory)))
                    .await
                    .unwrap_or(false);
                Some(match (&recorded, same) {
                    (Some(h), true) => h.clone(),
                    _ => pool
                        .run(move |_| hash_password(&g.password))
                        .await
                        .ok_or_else(|| AuthError::Hash("the hashing thread stopped".into()))??,
                })
            }
            None => None,
        };
        let mut generated = None;
        if opts.required && fixed_hash.is_none() && store.get(KEY_PASSWORD).await?.is_none() {
            let password = generate_password()?;
            set_stored_password(&store, &password).await?;
            generated = Some(password);
        }
        let in_effect = match &fixed_hash {
            Some(h) => Some(h.clone()),
            None => store.get(KEY_PASSWORD).await?,
        };
        if let Some(hash) = in_effect {
            let recorded = store.get(KEY_IN_USE).await?;
            if recorded.as_deref() != Some(hash.as_str()) {
                // No record yet (first start, or an older lookout): nothing
                // to compare with, so nothing is ended.
                if recorded.is_some() {
                    let n = store.delete_short_tokens().await?;
                    tracing::warn!(
                        "the password changed since the last start: ended {n} browser \
                         session(s) and one-hour API token(s); long-lived tokens stay valid \
                         (`lookout token list`, `lookout token revoke NAME`)"
                    );
                }
                store.set(KEY_IN_USE, hash).await?;
            }
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
            throttle: throttle::Throttle::default(),
            pool,
            checking: Mutex::new(HashSet::new()),
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

    /// Checks credentials from `ip` the way every web route must.
    ///
    /// A session, a token, or a Basic password verified in the last few
    /// minutes is cheap to check and is checked at once: other people's
    /// failures from the same address never refuse it. A password that needs
    /// argon2 waits for the address's slot (or is refused when that is too
    /// far out), runs at most one at a time per address, and waits its turn
    /// for a check thread in arrival order. Every failure, and every check
    /// refused as busy, counts against the address.
    pub async fn verify(&self, ip: IpAddr, credential: Credential<'_>) -> Verdict {
        match credential {
            Credential::Password { user, pass } => {
                return self.verify_password(ip, user, pass).await
            }
            Credential::Token { secret, kinds, .. } => {
                if let Some(scope) = self.check_token(secret, kinds).await {
                    // Not recorded as a success: a valid token must not wipe
                    // out the failures of someone else at the same address.
                    return Verdict::Granted(scope);
                }
            }
            Credential::Malformed => {}
        }
        self.throttle.record(ip, false, credential.describe());
        Verdict::Denied
    }

    async fn verify_password(&self, ip: IpAddr, user: &str, pass: &str) -> Verdict {
        let hash = match self.password_hash().await {
            Ok(Some(hash)) => hash,
            Ok(None) => {
                self.throttle.record(ip, false, "password");
                return Verdict::Denied;
            }
            Err(e) => {
                tracing::error!("cannot read the password hash: {e}");
                return Verdict::Busy;
            }
        };
        let user_ok: bool = user.as_bytes().ct_eq(self.user.as_bytes()).into();
        let key = sha256(format!("{user}:{pass}").as_bytes());
        if user_ok && self.recently_verified(&key, &hash) {
            return Verdict::Granted(Scope::Control);
        }
        match self.throttle.admit(ip) {
            Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Ok(_) => {}
            Err(throttled) => return Verdict::Throttled(throttled),
        }
        // One check per address at a time: a second one from there would
        // only take a thread from everyone else. Busy, and counted like every
        // busy answer (a person signing in from two devices at the same
        // instant pays a 250 ms delay; a flood from one address pays more).
        let Some(_turn) = Turn::take(&self.checking, ip) else {
            self.throttle.record(
                ip,
                false,
                "password, refused: another check from there under way",
            );
            return Verdict::Busy;
        };
        let pass_owned = pass.to_string();
        let checked = hash.clone();
        let ok = self
            .pool
            .run_queued(move |memory| verify_with(&checked, &pass_owned, memory))
            .await;
        let Some(ok) = ok else {
            // Counted, so an address that keeps the threads busy is slowed
            // like one that guesses, and the queue drains for the others.
            self.throttle
                .record(ip, false, "password, refused: too many checks waiting");
            return Verdict::Busy;
        };
        let ok = ok && user_ok;
        if ok {
            let mut cache = crate::sync::lock(&self.basic_cache);
            cache.retain(|_, (_, at)| at.elapsed() < BASIC_CACHE_TTL);
            cache.insert(key, (hash, Instant::now()));
        }
        self.throttle.record(ip, ok, "password");
        if ok {
            // The password has full control.
            Verdict::Granted(Scope::Control)
        } else {
            Verdict::Denied
        }
    }

    /// Whether `user:pass` (as its hash `key`) passed argon2 against `hash`
    /// within [`BASIC_CACHE_TTL`].
    fn recently_verified(&self, key: &[u8; 32], hash: &str) -> bool {
        crate::sync::lock(&self.basic_cache)
            .get(key)
            .is_some_and(|(h, at)| h == hash && at.elapsed() < BASIC_CACHE_TTL)
    }

    /// Checks a user name and password (constant-time on the name; argon2 on
    /// the password, off the async executor). `None` when [`PASSWORD_CHECKS`]
    /// checks are running already. Not throttled: web routes use
    /// [`Auth::verify`].
    #[cfg(test)]
    async fn check_password(&self, user: &str, pass: &str) -> Option<bool> {
        let user_ok: bool = user.as_bytes().ct_eq(self.user.as_bytes()).into();
        let Ok(Some(hash)) = self.password_hash().await else {
            return Some(false);
        };
        let key = sha256(format!("{user}:{pass}").as_bytes());
        if self.recently_verified(&key, &hash) {
            return Some(user_ok);
        }
        let pass = pass.to_string();
        let checked = hash.clone();
        let ok = self
            .pool
            .try_run(move |memory| verify_with(&checked, &pass, memory))
            .await?;
        if ok && user_ok {
            crate::sync::lock(&self.basic_cache).insert(key, (hash, Instant::now()));
        }
        Some(ok && user_ok)
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

    /// The scope of `secret` when it is a live token of one of `kinds`:
    /// a long-lived token's own, `control` for sessions and one-hour tokens.
    pub async fn check_token(&self, secret: &str, kinds: &[&str]) -> Option<Scope> {
        let now = unix_secs(SystemTime::now());
        match self.store.find_token(sha256(secret.as_bytes()), now).await {
            Ok(Some(row)) if kinds.contains(&row.kind.as_str()) => Some(match row.kind.as_str() {
                "long" => Scope::from_stored(&row.scope),
                _ => Scope::Control,
            }),
            Ok(_) => None,
            Err(e) => {
                tracing::error!("cannot check a token: {e}");
                None
            }
        }
    }

    /// Ends a session or token (logout), but only when it is one of `kinds`:
    /// logging out must not delete a long-lived token that merely came along.
    pub async fn revoke(&self, secret: &str, kinds: &[&str]) {
        let hash = sha256(secret.as_bytes());
        let now = unix_secs(SystemTime::now());
        let result = match self.store.find_token(hash, now).await {
            Ok(Some(row)) if kinds.contains(&row.kind.as_str()) => {
                self.store.delete_token(hash).await.map(|_| ())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!("cannot end a session: {e}");
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
        scope: Scope::Control.as_str().into(),
    };
    store.add_token(sha256(secret.as_bytes()), row).await?;
    Ok(secret)
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

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn password<'a>(user: &'a str, pass: &'a str) -> Credential<'a> {
        Credential::Password { user, pass }
    }

    #[tokio::test]
    async fn password_from_environment() {
        let (a, generated, _dir) = auth(true, Some("correct horse")).await;
        assert!(generated.is_none());
        assert_eq!(a.user(), "owner");
        assert_eq!(a.check_password("owner", "correct horse").await, Some(true));
        assert_eq!(
            a.check_password("owner", "correct horse").await,
            Some(true),
            "cached path"
        );
        assert_eq!(a.check_password("owner", "wrong horse").await, Some(false));
        assert_eq!(
            a.check_password("intruder", "correct horse").await,
            Some(false)
        );
    }

    #[tokio::test]
    async fn generated_password_is_stored_and_works() {
        let (a, generated, _dir) = auth(true, None).await;
        let p = generated.expect("a generated password");
        assert_eq!(p.len(), 20);
        assert_eq!(a.check_password("owner", &p).await, Some(true));
        assert_eq!(a.check_password("owner", "").await, Some(false));
    }

    #[tokio::test]
    async fn no_password_generated_on_loopback() {
        let (a, generated, _dir) = auth(false, None).await;
        assert!(generated.is_none());
        assert_eq!(a.check_password("owner", "anything").await, Some(false));
    }

    #[tokio::test]
    async fn sessions_and_tokens() {
        let (a, _, _dir) = auth(true, Some("correct horse")).await;
        let (session, ttl) = a.new_session(false).await.unwrap();
        assert_eq!(ttl, SESSION_TTL);
        assert_eq!(session.len(), 64);
        assert!(a.check_token(&session, &["session"]).await.is_some());
        assert!(
            a.check_token(&session, &["api", "long"]).await.is_none(),
            "a cookie is not an API token"
        );
        let (token, _) = a.new_api_token().await.unwrap();
        assert_eq!(
            a.check_token(&token, &["api", "long"]).await,
            Some(Scope::Control)
        );
        a.revoke(&session, &["session"]).await;
        assert!(a.check_token(&session, &["session"]).await.is_none());
        let long = create_long_token(&a.store, "home-assistant", Scope::Control)
            .await
            .unwrap();
        a.revoke(&long, &["session", "api"]).await;
        assert!(
            a.check_token(&long, &["api", "long"]).await.is_some(),
            "logout never ends a long-lived token"
        );
        assert_eq!(
            list_sessions(&a.store).await.unwrap().len(),
            1,
            "the api token"
        );
        assert_eq!(a.check_token(&long, &["long"]).await, Some(Scope::Control));
        let viewer = create_long_token(&a.store, "viewer", Scope::Read)
            .await
            .unwrap();
        assert_eq!(a.check_token(&viewer, &["long"]).await, Some(Scope::Read));
        assert_eq!(
            a.verify(
                IP,
                Credential::Token {
                    secret: &viewer,
                    kinds: &["long"],
                    via: "bearer"
                }
            )
            .await,
            Verdict::Granted(Scope::Read)
        );
        revoke_long_token(&a.store, TokenRef::Name("home-assistant"))
            .await
            .unwrap();
        assert!(a.check_token(&long, &["api", "long"]).await.is_none());
    }

    fn bearer(secret: &str) -> Credential<'_> {
        Credential::Token {
            secret,
            kinds: &["api", "long"],
            via: "bearer",
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_of_any_kind_slow_the_next_password_check() {
        let (a, _, _dir) = auth(true, Some("correct horse")).await;
        let start = tokio::time::Instant::now();
        assert_eq!(a.verify(IP, bearer("nope")).await, Verdict::Denied);
        assert_eq!(a.verify(IP, Credential::Malformed).await, Verdict::Denied);
        assert_eq!(start.elapsed(), Duration::ZERO, "tokens are never held");
        assert_eq!(
            a.verify(IP, password("owner", "correct horse")).await,
            Verdict::Granted(Scope::Control)
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(500),
            "two failures: the password waits 500 ms"
        );
        let start = tokio::time::Instant::now();
        assert_eq!(
            a.verify(IP, password("owner", "wrong horse")).await,
            Verdict::Denied
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "a success clears");
    }

    #[tokio::test(start_paused = true)]
    async fn a_valid_token_is_never_refused_for_other_peoples_failures() {
        let (a, _, _dir) = auth(true, Some("correct horse")).await;
        let long = create_long_token(&a.store, "prometheus", Scope::Read)
            .await
            .unwrap();
        let (session, _) = a.new_session(false).await.unwrap();
        // Someone at the same address guesses until passwords are refused.
        for _ in 0..40 {
            assert_eq!(a.verify(IP, bearer("nope")).await, Verdict::Denied);
        }
        // A guess already holds the next password slot, 10 s away.
        assert!(a.throttle.admit(IP).is_ok());
        assert!(matches!(
            a.verify(IP, password("owner", "guess")).await,
            Verdict::Throttled(_)
        ));
        let start = tokio::time::Instant::now();
        assert_eq!(
            a.verify(IP, bearer(&long)).await,
            Verdict::Granted(Scope::Read)
        );
        let cookie = Credential::Token {
            secret: &session,
            kinds: &["session"],
            via: "cookie",
        };
        assert_eq!(a.verify(IP, cookie).await, Verdict::Granted(Scope::Control));
        assert_eq!(start.elapsed(), Duration::ZERO, "checked at once");
        // And granting them did not wipe the guesser's record.
        assert!(matches!(
            a.verify(IP, password("owner", "guess")).await,
            Verdict::Throttled(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_recently_verified_password_skips_the_throttle() {
        let (a, _, _dir) = auth(true, Some("correct horse")).await;
        assert_eq!(
            a.verify(IP, password("owner", "correct horse")).await,
            Verdict::Granted(Scope::Control)
        );
        for _ in 0..40 {
            a.verify(IP, Credential::Malformed).await;
        }
        assert!(a.throttle.admit(IP).is_ok(), "a guess holds the next slot");
        assert_eq!(
            a.verify(IP, password("owner", "correct horse")).await,
            Verdict::Granted(Scope::Control),
            "Home Assistant's Basic auth, cached"
        );
        assert!(matches!(
            a.verify(IP, password("owner", "correct horsf")).await,
            Verdict::Throttled(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn busy_password_checks_count_against_their_address() {
        let (a, _, _dir) = auth(true, Some("correct horse")).await;
        let held: Vec<_> = (0..PASSWORD_CHECKS)
            .map(|_| a.pool.hold().unwrap())
            .collect();
        // Waits its turn (the clock is paused: at once), then is refused.
        assert_eq!(
            a.verify(IP, password("owner", "guess")).await,
            Verdict::Busy
        );
        drop(held);
        let start = tokio::time::Instant::now();
        assert_eq!(
            a.verify(IP, password("owner", "guess")).await,
            Verdict::Denied
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(250),
            "the busy answer was a failure"
        );
    }

    #[tokio::test]
    async fn short_passwords_from_anywhere_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "1234567\n").unwrap();
        for (password, password_file, source) in [
            (Some(""), None, "LOOKOUT_PASSWORD"),
            (Some("x"), None, "LOOKOUT_PASSWORD"),
            (None, Some(file.clone()), "password file"),
        ] {
            let opts = AuthOptions {
                user: String::new(),
                required: false,
                password: password.map(str::to_string),
                password_file,
            };
            let err = Auth::setup(opts, store.clone()).await.err().unwrap();
            assert!(matches!(err, AuthError::WeakGiven { .. }), "{err}");
            assert!(err.to_string().contains(source), "{err}");
        }
    }

    #[tokio::test]
    async fn a_new_password_ends_sessions_but_not_long_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let opts = |p: &str| AuthOptions {
            user: String::new(),
            required: true,
            password: Some(p.to_string()),
            password_file: None,
        };
        let (a, _) = Auth::setup(opts("first password"), store.clone())
            .await
            .unwrap();
        let (session, _) = a.new_session(true).await.unwrap();
        let long = create_long_token(&store, "ha", Scope::Control)
            .await
            .unwrap();
        // The same password at the next start keeps the session.
        let (a, _) = Auth::setup(opts("first password"), store.clone())
            .await
            .unwrap();
        assert!(a.check_token(&session, &["session"]).await.is_some());
        let (a, _) = Auth::setup(opts("second password"), store.clone())
            .await
            .unwrap();
        assert!(a.check_token(&session, &["session"]).await.is_none());
        assert!(a.check_token(&long, &["long"]).await.is_some());
        // `lookout passwd` ends them at once.
        let (session, _) = a.new_session(false).await.unwrap();
        assert_eq!(
            set_stored_password(&store, "third password").await.unwrap(),
            1
        );
        assert!(a.check_token(&session, &["session"]).await.is_none());
        assert!(a.check_token(&long, &["long"]).await.is_some());
    }
}
