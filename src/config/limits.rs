//! The limits on what clients may use, and their defaults.

use super::cli::DEFAULT_TIMEOUT_S;
use crate::descriptors::FdBudget;

/// Limits on what clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections.
    pub max_connections: usize,
    /// Open connections per client address (and requests under way per
    /// client behind a trusted proxy).
    pub max_connections_per_ip: usize,
    /// Stream viewers.
    pub max_viewers: usize,
    /// SSE subscribers.
    pub max_sse: usize,
    /// Seconds to send request headers (and, on a new connection, from
    /// connect to the end of the first request's headers).
    pub header_timeout_s: u64,
    /// Seconds a connection may idle between requests.
    pub idle_timeout_s: u64,
    /// Seconds to send a request body.
    pub body_timeout_s: u64,
    /// Request body bytes.
    pub max_body: usize,
    /// WebSocket message bytes.
    pub max_ws_message: usize,
    /// Open `/control` WebSockets.
    pub max_ws: usize,
}

/// Most connections when the open-file limit allows more.
pub(super) const MAX_CONNECTIONS: usize = 4096;
/// Most viewers: each costs a socket and a share of the uplink.
pub(super) const MAX_VIEWERS: usize = 256;
/// Most event subscribers.
pub(super) const MAX_SSE: usize = 2048;
/// Most command WebSockets: a dashboard tab holds one.
const MAX_WS: usize = 256;
/// The fewest connections one address may hold: a household behind one
/// address, with a few dashboards over HTTP/1.1 (six connections each),
/// Home Assistant and a few streams.
const MIN_PER_IP: usize = 64;

impl Default for Limits {
    /// The limits for this process's open-file limit (see
    /// [`Limits::for_budget`]).
    fn default() -> Self {
        Limits::for_budget(&FdBudget::probe())
    }
}

impl Limits {
    /// Limits that fit `budget`: connections up to what it leaves for
    /// sockets, and viewers and event subscribers at most half of those each,
    /// so that neither kind of long-lived stream can take every connection
    /// from the dashboard, the API and `/healthz`.
    pub fn for_budget(budget: &FdBudget) -> Limits {
        let max_connections = budget.connections.min(MAX_CONNECTIONS);
        let half = (max_connections / 2).max(1);
        Limits {
            max_connections,
            // An eighth: one address cannot take more, so it takes eight to
            // fill the server, and silent ones are closed first then.
            max_connections_per_ip: (max_connections / 8).max(MIN_PER_IP).min(max_connections),
            max_viewers: MAX_VIEWERS.min(half),
            max_sse: MAX_SSE.min(half),
            header_timeout_s: DEFAULT_TIMEOUT_S,
            idle_timeout_s: DEFAULT_TIMEOUT_S,
            body_timeout_s: DEFAULT_TIMEOUT_S,
            max_body: crate::web::api::MAX_BODY,
            max_ws_message: crate::web::ws::MAX_MESSAGE,
            max_ws: MAX_WS.min(half),
        }
    }

    /// The connection deadlines these limits ask for.
    pub fn deadlines(&self) -> crate::web::conn::Deadlines {
        use std::time::Duration;
        crate::web::conn::Deadlines {
            header: Duration::from_secs(self.header_timeout_s),
            idle: Duration::from_secs(self.idle_timeout_s),
            body: Duration::from_secs(self.body_timeout_s),
        }
    }
}
