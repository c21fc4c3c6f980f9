//! The sign-in routes: the login form, `POST /login`, `POST /logout` and
//! `POST /api/login`. Every password goes through `Auth::verify`, so these
//! share the per-address slow-down with Basic auth on every other route.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{bearer, busy, cookie, expired_cookie, throttled, url_encode, COOKIE_KINDS};
use super::client::Client;
use super::error::ApiError;
use super::query::Query;
use super::state::AppState;
use crate::auth::{Credential, Verdict, SESSION_COOKIE};

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
    client: Client,
    Form(form): Form<LoginForm>,
) -> Response {
    let auth = &app.policy.auth;
    let next = safe_next(form.next.as_deref());
    let credential = Credential::Password {
        user: &form.user,
        pass: &form.pass,
    };
    match auth.verify(client.ip, credential).await {
        Verdict::Granted(_) => {}
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
pub async fn api_login(State(app): State<AppState>, client: Client, body: Body) -> Response {
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
        .verify(client.ip, Credential::Password { user, pass })
        .await
    {
        Verdict::Granted(_) => {}
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
