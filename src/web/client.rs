//! The client behind each request: its address (the peer's, or the one a
//! `--trusted-proxy` forwarded, see [`crate::peers`]), for the sign-in
//! throttle and the logs; and, behind a proxy, a cap on what one client may
//! have under way, since the per-address connection cap exempts the proxy.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::conn::Held;
use super::error::ApiError;
use super::state::AppState;
use crate::peers::{Places, TrustedProxies};
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who a request comes from. Every request through [`identify`] has one;
/// handler tests without a socket get the unspecified address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address.
    pub ip: IpAddr,
    /// The trusted proxy the request came through, if any.
    pub via: Option<IpAddr>,
}

impl Client {
    /// The client of a request: set by [`identify`], else the peer.
    pub fn of(extensions: &axum::http::Extensions) -> Client {
        if let Some(c) = extensions.get::<Client>() {
            return *c;
        }
        let ip = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Client { ip, via: None }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Infallible> {
        Ok(Client::of(&parts.extensions))
    }
}

/// Requests under way per forwarded client (by [`crate::peers::key`]); a
/// place is held until the response body is dropped, so a stream counts for
/// as long as it is open.
pub type Forwarded = Places;

/// The values of header `name`, as text.
fn values<'a>(headers: &'a HeaderMap, name: &'static str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok())
}

/// Works out the [`Client`] of the request for everything after it, and
/// caps what one forwarded client has under way at the per-address cap
/// (503 beyond it, as a full server answers).
pub async fn identify(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = Client::of(req.extensions()).ip;
    let proxies: &TrustedProxies = &app.policy.trusted_proxies;
    let found = proxies.client(
        peer,
        values(req.headers(), "forwarded"),
        values(req.headers(), "x-forwarded-for"),
    );
    let client = Client {
        ip: found.ip,
        via: found.via,
    };
    req.extensions_mut().insert(client);
    if client.via.is_none() {
        return next.run(req).await;
    }
    let Some(guard) = app
        .policy
        .forwarded
        .take(client.ip, app.policy.max_per_client)
    else {
        tracing::debug!(
            "refused a request from {} (via {peer}): {} under way from there",
            client.ip,
            app.policy.max_per_client
        );
        return ApiError::Busy("too many requests under way from this client").into_response();
    };
    next.run(req)
        .await
        .map(|body| Body::new(Held::new(body, guard)))
}
