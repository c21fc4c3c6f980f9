//! `Query`: axum's query-string extractor with its refusal answered like
//! every other bad request, `400 {"error": "..."}` in JSON.
//!
//! axum's own `Query` answers a query it cannot read (`?limit=abc`) in plain
//! text, which clients that parse the JSON errors of docs/reference/http.md
//! cannot read. Every handler in `web` takes this one instead.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The query string deserialized into `T`; a query that does not fit is a
/// [`ApiError::BadRequest`] saying which parameter and why.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[derive(Debug, serde::Deserialize)]
    struct Page {
        limit: Option<usize>,
    }

    async fn extract(uri: &str) -> Result<Option<usize>, ApiError> {
        let (mut parts, ()) = Request::get(uri).body(()).expect("request").into_parts();
        let Query(page) = Query::<Page>::from_request_parts(&mut parts, &()).await?;
        Ok(page.limit)
    }

    #[tokio::test]
    async fn a_bad_query_is_a_bad_request_naming_the_parameter() {
        assert_eq!(extract("/snaps?limit=5").await.expect("fits"), Some(5));
        assert_eq!(extract("/snaps").await.expect("fits"), None);
        match extract("/snaps?limit=abc").await {
            Err(ApiError::BadRequest(msg)) => assert!(msg.contains("limit"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}
