//! `ApiError`: every error a handler returns, mapped to a status code and a
//! JSON body in one place. 5xx details go to the log, not to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answered as `{"error": "..."}` with a fitting status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Unknown route (the seed's 404 body, with the path).
    #[error("not found")]
    NotFound {
        /// The requested path.
        path: String,
    },
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Bad input; the message says what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The request body did not arrive within the body timeout.
    #[error("request body not received in time")]
    BodyTimeout,
    /// No frame has been captured yet.
    #[error("no frame yet")]
    NoFrame,
    /// The camera sends no compressed video to pass on (it is not RTSP).
    #[error("this camera sends pictures, not video: watch /stream.jpg")]
    NoVideo,
    /// A limit is reached (viewers, subscribers); try again later.
    #[error("{0}")]
    Busy(&'static str),
    /// Too many failed sign-ins from this address; the next slot is this many
    /// seconds away.
    #[error("too many failed sign-ins from your address; try again in {0} s")]
    Throttled(u64),
    /// The Host is not one this server answers to without credentials (DNS
    /// rebinding).
    #[error("unknown host {0:?}: without sign-in lookout answers only to localhost, 127.0.0.1 and [::1]; add names with --allow-host")]
    UnknownHost(String),
    /// Something failed inside the server.
    #[error("internal error")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::NotFound { path } => (
                StatusCode::NOT_FOUND,
                json!({"error": "not found", "path": path}),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": self.to_string()}),
            ),
            ApiError::BadRequest(msg) => (StatusCode::BAD_REQUEST, json!({"error": msg})),
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                json!({"error": self.to_string()}),
            ),
            ApiError::Busy(msg) => (StatusCode::SERVICE_UNAVAILABLE, json!({"error": msg})),
            ApiError::Throttled(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": self.to_string()}),
            ),
            ApiError::UnknownHost(_) => (
                StatusCode::MISDIRECTED_REQUEST,
                json!({"error": self.to_string()}),
            ),
            ApiError::NoFrame => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": self.to_string()}),
            ),
            ApiError::NoVideo => (StatusCode::NOT_FOUND, json!({"error": self.to_string()})),
            ApiError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": self.to_string()}),
                )
            }
        };
        let mut resp = (status, Json(body)).into_response();
        if matches!(self, ApiError::NoFrame | ApiError::Busy(_)) {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if let ApiError::Throttled(secs) = self {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
