//! HTTP: the router and the state its handlers share.
//!
//! `router(hub, policy)` is a plain function so handler tests need no socket.
//!
//! Every camera's routes live under `/cams/NAME/`; the first camera's also
//! answer at the root, as the seed's protocol has them. Each set of routes
//! is the same router with its own camera in its state, so handlers speak
//! of "the camera" and never look up which one.

pub mod api;
pub mod assets;
pub mod auth;
pub mod client;
pub mod clips;
pub mod conn;
pub mod error;
pub mod live;
pub mod login;
pub mod metrics;
pub mod policy;
pub mod push;
pub mod query;
pub mod ranged;
pub mod recordings;
pub mod server;
pub mod snaps;
pub mod sse;
pub mod state;
pub mod stream;
pub mod tls;
pub mod ws;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method};
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::hub::Hub;
use error::ApiError;
use state::AppState;

/// `Strict-Transport-Security` under TLS: browsers use HTTPS for this host
/// for a year without trying plain HTTP first (no includeSubDomains: a cam
/// should not decide for its neighbours on the same domain).
const HSTS: &str = "max-age=31536000";

/// One camera's routes, relative to its base. At the root (`nested` false)
/// `/status` and `/events` are the hub's, not the camera's.
fn camera_routes(state: AppState, nested: bool) -> Router {
    let routes = Router::new()
        .route("/snapshot.jpg", get(stream::snapshot))
        .route("/stream.jpg", get(stream::stream))
        .route("/live.mp4", get(live::live))
        .route("/config", get(api::get_config).post(api::post_config))
        .route("/control", get(ws::upgrade).post(api::post_control))
        .route("/api/events", get(sse::history))
        .route("/snaps", get(snaps::list))
        .route("/snaps/{name}", get(snaps::get).delete(snaps::delete))
        .route("/snaps/{name}/thumb", get(snaps::thumb))
        .route("/clips", get(clips::list))
        .route("/clips/{name}", get(clips::get).delete(clips::delete))
        .route("/clips/{name}/index", get(clips::index))
        .route("/clips/{name}/thumb", get(clips::thumb))
        .route("/recordings", get(recordings::list))
        .route("/recordings/{name}", get(recordings::get));
    let routes = if nested {
        routes
            .route("/status", get(api::status))
            .route("/events", get(sse::camera_events))
    } else {
        routes
    };
    routes
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

/// All routes, behind the Host check (loopback without sign-in), the
/// cross-site guard and, when required, credentials; every request is
/// counted for `/metrics`.
pub fn router(hub: Arc<Hub>, policy: Arc<policy::Policy>) -> Router {
    let first = hub.cams()[0].clone();
    let state = AppState {
        camera: first,
        hub: hub.clone(),
        policy,
    };
    let cors = cors(&state.policy.allowed_origins);
    // Root only: every camera's events, the list, the server's health,
    // sign-in, and the dashboard.
    let root = Router::new()
        .route("/events", get(sse::events))
        .route("/status", get(api::hub_status))
        .route("/cams", get(api::cams))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::scrape))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/api/login", post(login::api_login))
        .route("/api/push/key", get(push::key))
        .route(
            "/api/push/subscriptions",
            get(push::subscriptions).post(push::subscribe),
        )
        .route(
            "/api/push/subscriptions/{id}",
            axum::routing::delete(push::unsubscribe),
        )
        .route("/api/push/test", post(push::test))
        .route("/api/incidents", get(push::incidents))
        .route("/api/incidents/{id}/picture.jpg", get(push::picture))
        .route("/api/incidents/{id}/thumb.jpg", get(push::thumb))
        .fallback(assets::serve)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone());
    // The seed's root routes: the first camera's.
    let mut routes = camera_routes(state.clone(), false).merge(root);
    for cam in hub.cams() {
        let own = AppState {
            camera: cam.clone(),
            ..state.clone()
        };
        routes = routes.nest(&format!("/cams/{}", cam.name), camera_routes(own, true));
    }
    let routes = routes
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
        ))
        // Before every check: who the client is (behind a trusted proxy, the
        // forwarded address) and, there, its cap.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client::identify,
        ))
        // Outermost, so refusals (401, 421, 403) are counted too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
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
        Some(cors) => routes.layer(cors),
        None => routes,
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
