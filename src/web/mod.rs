//! HTTP: the router and the state its handlers share.
//!
//! `router(state)` is a plain function so handler tests need no socket.

pub mod api;
pub mod assets;
pub mod auth;
pub mod conn;
pub mod error;
pub mod login;
pub mod server;
pub mod snaps;
pub mod sse;
pub mod stream;
pub mod tls;
pub mod ws;

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method};
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::cam::Cam;
use error::ApiError;

/// `Strict-Transport-Security` under TLS: browsers use HTTPS for this host
/// for a year without trying plain HTTP first (no includeSubDomains: a cam
/// should not decide for its neighbours on the same domain).
const HSTS: &str = "max-age=31536000";

/// What every handler can reach: the cam and the access policy. Derefs to
/// [`Cam`], so handlers read `app.frames`, `app.settings`, ...
#[derive(Clone)]
pub struct AppState {
    /// Shared state and actions.
    pub cam: Arc<Cam>,
    /// Access rules and limits.
    pub policy: Arc<auth::Policy>,
}

impl Deref for AppState {
    type Target = Cam;

    fn deref(&self) -> &Cam {
        &self.cam
    }
}

/// All routes, behind the Host check (loopback without sign-in), the
/// cross-site guard and, when required, credentials.
pub fn router(state: AppState) -> Router {
    let cors = cors(&state.policy.allowed_origins);
    let routes = Router::new()
        .route("/snapshot.jpg", get(stream::snapshot))
        .route("/stream.jpg", get(stream::stream))
        .route("/status", get(api::status))
        .route("/healthz", get(api::healthz))
        .route("/config", get(api::get_config).post(api::post_config))
        .route("/control", get(ws::upgrade).post(api::post_control))
        .route("/events", get(sse::events))
        .route("/api/events", get(sse::history))
        .route("/snaps", get(snaps::list))
        .route("/snaps/{name}", get(snaps::get).delete(snaps::delete))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/api/login", post(login::api_login))
        .fallback(assets::serve)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.policy.max_body))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_credentials,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::cross_site_guard,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::host_guard,
        ));
    // HSTS only under TLS: over plain HTTP it is ignored by browsers, and a
    // browser that saw it for this host would refuse plain HTTP to it later.
    let routes = if state.policy.tls {
        routes.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ))
    } else {
        routes
    };
    match cors {
        Some(cors) => routes.layer(cors).with_state(state),
        None => routes.with_state(state),
    }
}

/// CORS for the configured origins only (never `*` with credentials).
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if list.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]),
    )
}
