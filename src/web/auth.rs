//! Access rules at the door: cross-site checks (always), credentials (off
//! loopback, or when forced), the login page, logout and `POST /api/login`.
//!
//! Browsers log in with a form and get a session cookie; API clients (Home
//! Assistant, curl) use HTTP Basic or a bearer token. No client is trusted for
//! being "local": behind a reverse proxy everyone is local.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use crate::auth::{Auth, SESSION_COOKIE};

/// Web-facing access settings.
pub struct Policy {
    /// Credentials and sessions.
    pub auth: Auth,
    /// Served over TLS (cookies get `Secure`).
    pub tls: bool,
    /// Other origins allowed to make state-changing requests and open the
    /// WebSocket (e.g. a Home Assistant dashboard), as `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
    /// Most `/stream.jpg` viewers at once.
    pub max_viewers: usize,
    /// Most `/events` subscribers at once.
    pub max_sse: usize,
    /// Largest request body in bytes (settings, commands, logins).
    pub max_body: usize,
    /// Largest WebSocket message in bytes; bigger closes with 1009.
    pub max_ws_message: usize,
}

/// Routes reachable without credentials.
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/login" | "/logout" | "/api/login" | "/login.css" | "/favicon.svg"
    )
}

/// Refuses state-changing requests and WebSocket upgrades from other sites
/// (CSRF and cross-site WebSocket hijacking), on every address.
pub async fn cross_site_guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if (upgrade || changes_state) && !same_site(req.headers(), &app.policy.allowed_origins) {
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
/// `Origin` and `Sec-Fetch-Site`. Requests with neither (curl, scripts, Home
/// Assistant) are not from a browser on another site and pass.
pub fn same_site(headers: &HeaderMap, allowed: &[String]) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if let Some(origin) = origin {
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            return true;
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
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

/// Requires credentials when the policy says so: a session cookie, HTTP Basic
/// or a bearer token.
pub async fn require_credentials(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let auth = &app.policy.auth;
    if !auth.required() || is_open(req.uri().path()) {
        return next.run(req).await;
    }
    if authenticated(auth, req.headers()).await {
        return next.run(req).await;
    }
    refuse(&req)
}

async fn authenticated(auth: &Auth, headers: &HeaderMap) -> bool {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(token) = value.strip_prefix("Bearer ") {
            return auth.check_token(token.trim(), &["api", "long"]).await;
        }
        if let Some(encoded) = value.strip_prefix("Basic ") {
            return match basic_credentials(encoded.trim()) {
                Some((user, pass)) => auth.check_password(&user, &pass).await,
                None => false,
            };
        }
        return false;
    }
    match cookie(headers, SESSION_COOKIE) {
        Some(session) => auth.check_token(&session, &["session"]).await,
        None => false,
    }
}

/// Browsers navigating get the login page; the dashboard's own requests get
/// a bare 401 (no Basic prompt over the page); other clients get a 401 that
/// asks for Basic auth.
fn refuse(req: &Request) -> Response {
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
    let error = if q.error.is_some() {
        r#"<p class="error" role="alert">Wrong user name or password.</p>"#
    } else {
        ""
    };
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
        next = html_escape(&next),
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
/// form with `?error=1`.
pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let auth = &app.policy.auth;
    let next = safe_next(form.next.as_deref());
    auth.throttle(peer.ip()).await;
    let ok = auth.check_password(&form.user, &form.pass).await;
    auth.record_login(peer.ip(), ok);
    if !ok {
        return Redirect::to(&format!("/login?error=1&next={}", url_encode(&next))).into_response();
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

/// `POST /logout`: ends the session (cookie or bearer token).
pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = cookie(&headers, SESSION_COOKIE) {
        app.policy.auth.revoke(&session).await;
    }
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        app.policy.auth.revoke(token.trim()).await;
    }
    let mut resp = Redirect::to("/login").into_response();
    let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&expired) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /api/login` with `{"user", "pass"}`: a bearer token valid one hour.
/// 400 on a missing or broken body, 401 on bad credentials, never 500 for
/// anything the client sent.
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
    auth.throttle(peer.ip()).await;
    let ok = auth.check_password(user, pass).await;
    auth.record_login(peer.ip(), ok);
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad credentials"})),
        )
            .into_response();
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

/// A redirect target that stays on this site: a local path, else `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
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
        assert!(same_site(&headers(&[("host", "cam:8080")]), &none), "curl");
        assert!(same_site(
            &headers(&[("host", "cam:8080"), ("origin", "http://cam:8080")]),
            &none
        ));
        assert!(same_site(
            &headers(&[("host", "cam:8080"), ("origin", "https://cam:8080")]),
            &none
        ));
        assert!(!same_site(
            &headers(&[("host", "cam:8080"), ("origin", "http://evil.example")]),
            &none
        ));
        assert!(!same_site(
            &headers(&[("host", "cam:8080"), ("origin", "null")]),
            &none
        ));
        assert!(!same_site(
            &headers(&[("host", "cam:8080"), ("sec-fetch-site", "cross-site")]),
            &none
        ));
        assert!(!same_site(
            &headers(&[("host", "cam:8080"), ("sec-fetch-site", "same-site")]),
            &none
        ));
        assert!(same_site(
            &headers(&[("host", "cam:8080"), ("sec-fetch-site", "same-origin")]),
            &none
        ));
        let allowed = vec!["http://ha.local:8123".to_string()];
        assert!(same_site(
            &headers(&[("host", "cam:8080"), ("origin", "http://ha.local:8123")]),
            &allowed
        ));
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
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(html_escape("\"><script>"), "&quot;&gt;&lt;script&gt;");
    }
}
