//! Access rules at the door: the Host check (on loopback without sign-in),
//! cross-site checks (always), credentials (off loopback, or when forced), the
//! login page, logout and `POST /api/login`.
//!
//! Browsers log in with a form and get a session cookie; API clients (Home
//! Assistant, curl) use HTTP Basic or a bearer token. No client is trusted for
//! being "local": behind a reverse proxy everyone is local. Every credential a
//! request presents goes through [`Auth::verify`], so guessing is slowed the
//! same way on every route and scheme.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::AppState;
use crate::auth::{Auth, Credential, Throttled, Verdict, SESSION_COOKIE};

/// Web-facing access settings.
pub struct Policy {
    /// Credentials and sessions.
    pub auth: Auth,
    /// Served over TLS (cookies get `Secure`).
    pub tls: bool,
    /// Other origins allowed to make state-changing requests and open the
    /// WebSocket (e.g. a Home Assistant dashboard), as `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
    /// Host names (lowercase, without port) answered without credentials
    /// besides the loopback names; see [`host_guard`].
    pub allowed_hosts: Vec<String>,
    /// Most `/stream.jpg` viewers at once.
    pub max_viewers: usize,
    /// Most `/events` subscribers at once.
    pub max_sse: usize,
    /// Largest request body in bytes (settings, commands, logins).
    pub max_body: usize,
    /// Largest WebSocket message in bytes; bigger closes with 1009.
    pub max_ws_message: usize,
}

/// Names a loopback server without sign-in always answers to.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Routes reachable without credentials.
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/login" | "/logout" | "/api/login" | "/login.css" | "/favicon.svg"
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

/// `host[:port]` without the port, lowercase, without a trailing dot; IPv6
/// stays in brackets (`[::1]`).
pub(crate) fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, _)) => format!("[{ip}]"),
            None => host.to_string(),
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
            _ => host.to_string(),
        },
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Policy {
    /// Whether `host` (`name[:port]`) may be answered without credentials.
    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        LOOPBACK_HOSTS.contains(&name.as_str()) || self.allowed_hosts.contains(&name)
    }
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

/// The client's address (unspecified in handler tests without a socket).
fn peer_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Requires credentials when the policy says so: a session cookie, HTTP Basic
/// or a bearer token. Wrong ones count against the client's address; a client
/// with too many gets 429, and 503 when too many passwords are being checked.
pub async fn require_credentials(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let auth = &app.policy.auth;
    if !auth.required() || is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(presented) = presented(req.headers()) else {
        return refuse(&req, false, app.policy.tls);
    };
    match auth.verify(peer_ip(&req), presented.credential()).await {
        Verdict::Granted => next.run(req).await,
        Verdict::Denied => refuse(
            &req,
            matches!(presented, Presented::Cookie(_)),
            app.policy.tls,
        ),
        Verdict::Throttled(t) => throttled(t).into_response(),
        Verdict::Busy => busy().into_response(),
    }
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
/// Token kinds a cookie may be: browser sessions only.
const COOKIE_KINDS: &[&str] = &["session"];

impl Presented {
    fn credential(&self) -> Credential<'_> {
        match self {
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
fn bearer(headers: &HeaderMap) -> Option<String> {
    match authorization(headers.get(header::AUTHORIZATION)?)? {
        Presented::Bearer(token) => Some(token),
        _ => None,
    }
}

fn throttled(t: Throttled) -> ApiError {
    let secs = t.retry_after.as_secs() + u64::from(t.retry_after.subsec_nanos() > 0);
    ApiError::Throttled(secs.max(1))
}

fn busy() -> ApiError {
    ApiError::Busy("too many sign-ins being checked; try again in a moment")
}

/// `Set-Cookie` that deletes the session cookie (same attributes as when it
/// was set, `Secure` under TLS, so the browser replaces it).
fn expired_cookie(tls: bool) -> Option<HeaderValue> {
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

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

/// `GET /login`: the login form (no script, so it works under the strict CSP).
pub async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    let error = q.error.is_some().then_some("Wrong user name or password.");
    login_form(&next, error)
}

/// The login form going back to `next`, with an optional error line.
fn login_form(next: &str, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, html_escape(e)))
        .unwrap_or_default();
    let page = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lookout: sign in</title><link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/login.css"></head>
<body><main>
<h1>lookout</h1>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label>User <input name="user" autocomplete="username" value="owner" required></label>
<label>Password <input name="pass" type="password" autocomplete="current-password" required autofocus></label>
<label class="remember"><input type="checkbox" name="remember" value="1"> Remember me on this device</label>
<button type="submit">Sign in</button>
</form></main></body></html>"#,
        next = html_escape(next),
    );
    let mut resp = Html(page).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Form of `POST /login` (the seed's field names).
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    user: String,
    pass: String,
    remember: Option<String>,
    next: Option<String>,
}

/// `POST /login`: a session cookie and a redirect to `next`, or back to the
/// form with `?error=1`. A throttled address gets the form again with 429
/// and Retry-After, so a person sees why.
pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let auth = &app.policy.auth;
    let next = safe_next(form.next.as_deref());
    let credential = Credential::Password {
        user: &form.user,
        pass: &form.pass,
    };
    match auth.verify(peer.ip(), credential).await {
        Verdict::Granted => {}
        Verdict::Denied => {
            return Redirect::to(&format!("/login?error=1&next={}", url_encode(&next)))
                .into_response()
        }
        Verdict::Throttled(t) => {
            let err = throttled(t);
            let mut resp = login_form(&next, Some(&err.to_string()));
            *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            if let ApiError::Throttled(secs) = err {
                resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            return resp;
        }
        Verdict::Busy => {
            let mut resp = login_form(&next, Some(&busy().to_string()));
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
    }
    let remember = form.remember.is_some();
    match auth.new_session(remember).await {
        Ok((secret, ttl)) => {
            let mut cookie =
                format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict");
            if remember {
                cookie.push_str(&format!("; Max-Age={}", ttl.as_secs()));
            }
            if app.policy.tls {
                cookie.push_str("; Secure");
            }
            let mut resp = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => {
            tracing::error!("cannot start a session: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot start a session").into_response()
        }
    }
}

/// `POST /logout`: ends the browser session (cookie) or the one-hour API
/// token (bearer). A long-lived token is left alone: only `lookout token
/// revoke` ends it, so a script that logs out cannot lock out Home Assistant.
pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let auth = &app.policy.auth;
    if let Some(session) = cookie(&headers, SESSION_COOKIE) {
        auth.revoke(&session, COOKIE_KINDS).await;
    }
    if let Some(token) = bearer(&headers) {
        auth.revoke(&token, &["api"]).await;
    }
    let mut resp = Redirect::to("/login").into_response();
    if let Some(v) = expired_cookie(app.policy.tls) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /api/login` with `{"user", "pass"}`: a bearer token valid one hour.
/// 400 on a missing or broken body, 401 on bad credentials, 429 or 503 (with
/// Retry-After) when throttled or busy, never 500 for anything the client sent.
pub async fn api_login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> Response {
    let bad = |msg: &str| (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response();
    let Ok(bytes) = axum::body::to_bytes(body, app.policy.max_body).await else {
        return bad("request body too large");
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return bad("body must be JSON: {\"user\": ..., \"pass\": ...}");
    };
    let (Some(user), Some(pass)) = (
        value.get("user").and_then(Value::as_str),
        value.get("pass").and_then(Value::as_str),
    ) else {
        return bad("missing user or pass");
    };
    let auth = &app.policy.auth;
    match auth
        .verify(peer.ip(), Credential::Password { user, pass })
        .await
    {
        Verdict::Granted => {}
        Verdict::Denied => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "bad credentials"})),
            )
                .into_response()
        }
        Verdict::Throttled(t) => return throttled(t).into_response(),
        Verdict::Busy => return busy().into_response(),
    }
    match auth.new_api_token().await {
        Ok((token, ttl)) => {
            Json(json!({"token": token, "expires_in": ttl.as_secs()})).into_response()
        }
        Err(e) => {
            tracing::error!("cannot issue a token: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "internal error"})),
            )
                .into_response()
        }
    }
}

/// A redirect target that stays on this site: a local path of visible ASCII
/// (no control characters, which browsers drop, turning `/\t/evil` into
/// `//evil`; and none a `Location` header cannot carry), without `//` or a
/// backslash anywhere; else `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && n.bytes().all(|b| b.is_ascii_graphic())
                && !n.contains("//")
                && !n.contains('\\')
                && !n.starts_with("/login") =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
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

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(host_name(host), name, "{host}");
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
    fn next_stays_on_site() {
        assert_eq!(safe_next(Some("/snaps?x=1")), "/snaps?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/login?next=/x",
            "x",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/x//evil.example",
            "/caf\u{e9}",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(html_escape("\"><script>"), "&quot;&gt;&lt;script&gt;");
    }
}
