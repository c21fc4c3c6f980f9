//! Access rules at the door: the Host check (on loopback without sign-in),
//! cross-site checks (always) and credentials (off loopback, or when forced).
//! The sign-in routes themselves are in `login`.
//!
//! Browsers log in with a form and get a session cookie; API clients (Home
//! Assistant, curl) use HTTP Basic or a bearer token. No client is trusted for
//! being "local": behind a reverse proxy everyone is local. Every credential a
//! request presents goes through [`Auth::verify`], so guessing is slowed the
//! same way on every route and scheme.
//!
//! A credential of the `read` scope (a long-lived token made with `--scope
//! read`) may GET and HEAD anything and send commands to `/control`, where
//! each command is checked against the scope ([`crate::control::run_as`]);
//! anything else gets 403 naming the scope. The scope a request was granted
//! travels to the handlers as a request extension ([`scope_of`]).

use std::net::IpAddr;

use axum::extract::{Extension, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::{Credential, Scope, Throttled, Verdict, SESSION_COOKIE};

/// Routes reachable without credentials. The app's manifest and icons are
/// among them because browsers fetch a manifest without cookies, and the
/// service worker because its script holds nothing private (what it fetches
/// goes through the door like any request).
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/healthz"
            | "/login"
            | "/logout"
            | "/api/login"
            | "/login.css"
            | "/favicon.svg"
            | "/manifest.webmanifest"
            | "/sw.js"
            | "/icon-192.png"
            | "/icon-512.png"
            | "/icon-maskable-512.png"
            | "/badge-96.png"
    )
}

/// The host the client asked for, as `host[:port]`: the request's authority
/// (HTTP/2 sends `:authority` and no `Host`), else the `Host` header.
pub fn requested_host(req: &Request) -> Option<String> {
    if let Some(a) = req.uri().authority() {
        return Some(match a.port() {
            Some(port) => format!("{}:{}", a.host(), port.as_str()),
            None => a.host().to_string(),
        });
    }
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// On loopback without sign-in, answers only requests addressed to a loopback
/// name (or an `--allow-host` name). A web page whose DNS name is rebound to
/// 127.0.0.1 is same-origin with itself, so the cross-site guard cannot see
/// it; its requests still carry its own name in `Host`, and are refused here
/// with 421. `/healthz` stays open for probes that use any name.
pub async fn host_guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if app.policy.auth.required() || req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    match requested_host(&req) {
        Some(host) if !app.policy.host_allowed(&host) => {
            tracing::warn!(
                "refused {} {} for host {host:?} (not a loopback name; see --allow-host)",
                req.method(),
                req.uri().path()
            );
            ApiError::UnknownHost(host).into_response()
        }
        // No Host at all is HTTP/1.0 from a script, never a browser.
        _ => next.run(req).await,
    }
}

/// Refuses state-changing requests and WebSocket upgrades from other sites
/// (CSRF and cross-site WebSocket hijacking), on every address.
pub async fn cross_site_guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let host = requested_host(&req);
    if (upgrade || changes_state)
        && !same_site(req.headers(), host.as_deref(), &app.policy.allowed_origins)
    {
        tracing::warn!("refused a cross-site {} {}", req.method(), req.uri().path());
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "cross-site request refused"})),
        )
            .into_response();
    }
    next.run(req).await
}

/// Whether a request comes from this site (or an allowed origin), judged by
/// `Origin` against `host` (the requested authority, see [`requested_host`])
/// and by `Sec-Fetch-Site`. Requests with neither header (curl, scripts, Home
/// Assistant) are not from a browser on another site and pass.
pub fn same_site(headers: &HeaderMap, host: Option<&str>, allowed: &[String]) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if let Some(origin) = origin {
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            return true;
        }
        let origin_host = origin.split_once("://").map(|(_, h)| h);
        // `Origin: null` (sandboxed pages, file://) never matches.
        return match (origin_host, host) {
            (Some(o), Some(h)) => o.eq_ignore_ascii_case(h),
            _ => false,
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => true,
    }
}

/// The client's address: the peer's, or the one a trusted proxy forwarded
/// (unspecified in handler tests without a socket).
fn peer_ip(req: &Request) -> IpAddr {
    super::client::Client::of(req.extensions()).ip
}

/// Requires credentials when the policy says so: a session cookie, HTTP Basic
/// or a bearer token. Wrong ones count against the client's address; a client
/// with too many gets 429, and 503 when too many passwords are being checked.
pub async fn require_credentials(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let auth = &app.policy.auth;
    if !auth.required() || is_open(req.uri().path()) {
        // Without sign-in (loopback) whoever can connect is the owner.
        req.extensions_mut().insert(Scope::Control);
        return next.run(req).await;
    }
    let Some(presented) = presented(req.headers()) else {
        return refuse(&req, false, app.policy.tls);
    };
    match auth.verify(peer_ip(&req), presented.credential()).await {
        Verdict::Granted(scope) if !within(&req, scope) => beyond(&req, scope),
        Verdict::Granted(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Verdict::Denied => refuse(
            &req,
            matches!(presented, Presented::Cookie(_)),
            app.policy.tls,
        ),
        Verdict::Throttled(t) => throttled(t).into_response(),
        Verdict::Busy => busy().into_response(),
    }
}

/// Whether a credential of `scope` may make this request at all: `read` may
/// GET and HEAD, and POST commands to `/control` (checked one by one when
/// they run, as those over the WebSocket).
fn within(req: &Request, scope: Scope) -> bool {
    scope == Scope::Control
        || matches!(*req.method(), Method::GET | Method::HEAD)
        || (req.method() == Method::POST && is_control(req.uri().path()))
}

/// `/control` or `/cams/NAME/control`.
fn is_control(path: &str) -> bool {
    path == "/control"
        || path
            .strip_prefix("/cams/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, rest)| rest == "control")
}

/// 403 for a valid credential whose scope does not cover the request (not
/// 401: asking again with the same credential cannot help).
fn beyond(req: &Request, scope: Scope) -> Response {
    let (method, path) = (req.method(), req.uri().path());
    tracing::info!("refused {method} {path} to a token of the {scope} scope");
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "error": format!("{method} {path} needs a control token; this one has the {scope} scope"),
            "scope": scope.as_str(),
        })),
    )
        .into_response()
}

/// The scope [`require_credentials`] granted a request, from a handler's
/// `Option<Extension<Scope>>`. It always sets one; a request without (a
/// route outside it) gets `read`, never more than was granted.
pub(super) fn scope_of(granted: Option<Extension<Scope>>) -> Scope {
    granted.map_or(Scope::Read, |Extension(scope)| scope)
}

/// Credentials as a request carries them.
enum Presented {
    Basic { user: String, pass: String },
    Bearer(String),
    Cookie(String),
    Malformed,
}

/// Token kinds a bearer may be: one-hour API tokens and long-lived ones.
const BEARER_KINDS: &[&str] = &["api", "long"];
/// The Basic user name that means "the password is a long-lived token", for
/// clients that can only send a user and a password (Home Assistant's MJPEG
/// camera, `ffmpeg`, VLC).
pub const TOKEN_USER: &str = "token";
/// Token kinds a Basic password may be (with [`TOKEN_USER`]).
const BASIC_TOKEN_KINDS: &[&str] = &["long"];
/// Token kinds a cookie may be: browser sessions only.
pub(super) const COOKIE_KINDS: &[&str] = &["session"];

impl Presented {
    fn credential(&self) -> Credential<'_> {
        match self {
            Presented::Basic { user, pass } if user == TOKEN_USER => Credential::Token {
                secret: pass,
                kinds: BASIC_TOKEN_KINDS,
                via: "token as Basic password",
            },
            Presented::Basic { user, pass } => Credential::Password { user, pass },
            Presented::Bearer(secret) => Credential::Token {
                secret,
                kinds: BEARER_KINDS,
                via: "bearer token",
            },
            Presented::Cookie(secret) => Credential::Token {
                secret,
                kinds: COOKIE_KINDS,
                via: "session cookie",
            },
            Presented::Malformed => Credential::Malformed,
        }
    }
}

/// What the request presents: `Authorization` (its scheme compared without
/// regard to case, as RFC 9110 says), else the session cookie; `None` when
/// it presents nothing (that is not a failed guess).
fn presented(headers: &HeaderMap) -> Option<Presented> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return Some(authorization(value).unwrap_or(Presented::Malformed));
    }
    cookie(headers, SESSION_COOKIE).map(Presented::Cookie)
}

/// `Basic <base64>` or `Bearer <token>`, any case.
fn authorization(value: &HeaderValue) -> Option<Presented> {
    let (scheme, rest) = value.to_str().ok()?.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Presented::Bearer(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let (user, pass) = basic_credentials(rest)?;
        return Some(Presented::Basic { user, pass });
    }
    None
}

/// The bearer token of `Authorization`, any case of the scheme.
pub(super) fn bearer(headers: &HeaderMap) -> Option<String> {
    match authorization(headers.get(header::AUTHORIZATION)?)? {
        Presented::Bearer(token) => Some(token),
        _ => None,
    }
}

pub(super) fn throttled(t: Throttled) -> ApiError {
    let secs = t.retry_after.as_secs() + u64::from(t.retry_after.subsec_nanos() > 0);
    ApiError::Throttled(secs.max(1))
}

pub(super) fn busy() -> ApiError {
    ApiError::Busy("too many sign-ins being checked; try again in a moment")
}

/// `Set-Cookie` that deletes the session cookie (same attributes as when it
/// was set, `Secure` under TLS, so the browser replaces it).
pub(super) fn expired_cookie(tls: bool) -> Option<HeaderValue> {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .ok()
}

/// Browsers navigating get the login page; the dashboard's own requests get
/// a bare 401 (no Basic prompt over the page); other clients get a 401 that
/// asks for Basic auth. A session cookie that was refused is deleted, so an
/// expired one is counted as a failure once, not on every reconnect.
fn refuse(req: &Request, clear_cookie: bool, tls: bool) -> Response {
    let mut resp = refusal(req);
    if clear_cookie {
        if let Some(v) = expired_cookie(tls) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

fn refusal(req: &Request) -> Response {
    let headers = req.headers();
    let mode = headers.get("sec-fetch-mode").and_then(|v| v.to_str().ok());
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let body = Json(json!({"error": "authentication required"}));
    if req.method() == Method::GET && (mode == Some("navigate") || (mode.is_none() && wants_html)) {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        return Redirect::to(&format!("/login?next={}", url_encode(path))).into_response();
    }
    if matches!(mode, Some("cors" | "same-origin" | "no-cors" | "websocket")) {
        return (StatusCode::UNAUTHORIZED, body).into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"lookout\", charset=\"UTF-8\""),
        )],
        body,
    )
        .into_response()
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Decodes `base64(user:pass)`.
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

pub(super) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_site_rules() {
        let none: Vec<String> = vec![];
        let cam = Some("cam:8080");
        let check = |h: &[(&'static str, &'static str)], allowed: &[String]| {
            same_site(&headers(h), cam, allowed)
        };
        assert!(check(&[], &none), "curl");
        assert!(check(&[("origin", "http://cam:8080")], &none));
        assert!(check(&[("origin", "https://cam:8080")], &none));
        assert!(!check(&[("origin", "http://evil.example")], &none));
        assert!(!check(&[("origin", "null")], &none));
        assert!(!check(&[("sec-fetch-site", "cross-site")], &none));
        assert!(!check(&[("sec-fetch-site", "same-site")], &none));
        assert!(check(&[("sec-fetch-site", "same-origin")], &none));
        let allowed = vec!["http://ha.local:8123".to_string()];
        assert!(check(&[("origin", "http://ha.local:8123")], &allowed));
        // Without a requested host an Origin cannot be matched.
        assert!(!same_site(
            &headers(&[("origin", "http://cam:8080")]),
            None,
            &none
        ));
    }

    #[test]
    fn the_requested_host_comes_from_the_authority_or_host() {
        // HTTP/2: the authority is in the URI and there is no Host header.
        let h2 = Request::builder()
            .uri("https://127.0.0.1:8443/snaps/x.jpg")
            .body(Body::empty())
            .unwrap();
        assert_eq!(requested_host(&h2).as_deref(), Some("127.0.0.1:8443"));
        let h1 = Request::builder()
            .uri("/snaps/x.jpg")
            .header("host", "cam:8080")
            .body(Body::empty())
            .unwrap();
        assert_eq!(requested_host(&h1).as_deref(), Some("cam:8080"));
        for (host, name) in [
            ("localhost:8080", "localhost"),
            ("LOCALHOST.", "localhost"),
            ("[::1]:80", "[::1]"),
            ("127.0.0.1", "127.0.0.1"),
            ("evil.example:8080", "evil.example"),
        ] {
            assert_eq!(super::super::policy::host_name(host), name, "{host}");
        }
    }

    #[test]
    fn the_app_manifest_icons_and_worker_are_open_the_dashboard_is_not() {
        // Browsers fetch a manifest (and its icons) without cookies; each
        // open name must be a file that exists, or the list has gone stale.
        for path in [
            "/manifest.webmanifest",
            "/sw.js",
            "/icon-192.png",
            "/icon-512.png",
            "/icon-maskable-512.png",
            "/badge-96.png",
        ] {
            assert!(is_open(path), "{path}");
            assert!(super::super::assets::embedded(path), "{path}");
        }
        for path in ["/", "/index.html", "/app.js", "/sw.js/x", "/api/push/key"] {
            assert!(!is_open(path), "{path}");
        }
    }

    #[test]
    fn authorization_schemes_ignore_case() {
        for value in [
            "Basic b3duZXI6cGE6c3M=",
            "basic b3duZXI6cGE6c3M=",
            "BASIC  b3duZXI6cGE6c3M=",
        ] {
            let p = authorization(&HeaderValue::from_static(value));
            assert!(
                matches!(&p, Some(Presented::Basic { user, pass }) if user == "owner" && pass == "pa:ss"),
                "{value}"
            );
        }
        for value in ["Bearer abc", "bearer abc", "BEARER abc"] {
            let p = authorization(&HeaderValue::from_static(value));
            assert!(
                matches!(&p, Some(Presented::Bearer(t)) if t == "abc"),
                "{value}"
            );
        }
        assert!(authorization(&HeaderValue::from_static("Digest x")).is_none());
        assert!(authorization(&HeaderValue::from_static("Basic !!!")).is_none());
    }

    #[test]
    fn basic_and_cookies_parse() {
        assert_eq!(
            basic_credentials("b3duZXI6cGE6c3M="),
            Some(("owner".into(), "pa:ss".into()))
        );
        assert_eq!(basic_credentials("!!!"), None);
        let h = headers(&[("cookie", "a=1; lookout_session=abc; b=2")]);
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "zzz"), None);
    }

    #[test]
    fn a_read_scope_looks_and_sends_commands_only() {
        let req = |method: Method, path: &str| {
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap()
        };
        for (method, path) in [
            (Method::GET, "/status"),
            (Method::HEAD, "/snapshot.jpg"),
            (Method::GET, "/control"),
            (Method::POST, "/control"),
            (Method::POST, "/cams/yard/control"),
        ] {
            assert!(
                within(&req(method.clone(), path), Scope::Read),
                "{method} {path}"
            );
        }
        for (method, path) in [
            (Method::POST, "/config"),
            (Method::DELETE, "/snaps/x.jpg"),
            (Method::POST, "/cams/yard/config"),
            (Method::POST, "/cams/control"),
            (Method::POST, "/cams/yard/control/x"),
            (Method::PUT, "/control"),
        ] {
            assert!(
                !within(&req(method.clone(), path), Scope::Read),
                "{method} {path}"
            );
            assert!(
                within(&req(method.clone(), path), Scope::Control),
                "{method} {path}"
            );
        }
    }
}
