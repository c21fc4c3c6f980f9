//! The dashboard files, embedded in the binary at build time (the cam often has
//! no internet, and one file to copy is easier to deploy).

use axum::http::{header, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Serves `/` and any embedded file to GET and HEAD (other methods on a file
/// get 405: this is the router's fallback, so it sees every method);
/// everything else is the seed's JSON 404. Only names compiled into the
/// binary can be served, so no path can reach the file system.
pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    // Embedded names never contain these; refusing them keeps any lookup
    // from being a path on disk.
    let suspicious = path.split(['/', '\\']).any(|seg| seg == "..") || path.contains('\\');
    match Assets::get(path).filter(|_| !suspicious) {
        Some(_) if method != Method::GET && method != Method::HEAD => {
            let mut resp = ApiError::MethodNotAllowed.into_response();
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            resp
        }
        Some(file) => {
            let mime = mime_for(path);
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                    (
                        header::CONTENT_SECURITY_POLICY,
                        HeaderValue::from_static(
                            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'",
                        ),
                    ),
                    (
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("same-origin"),
                    ),
                ],
                file.data,
            )
                .into_response()
        }
        None => ApiError::NotFound {
            path: uri.path().to_string(),
        }
        .into_response(),
    }
}

/// Whether `path` (with its leading `/`) is an embedded file.
#[cfg(test)]
pub(super) fn embedded(path: &str) -> bool {
    Assets::get(path.trim_start_matches('/')).is_some()
}

fn mime_for(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_files_have_their_types() {
        assert_eq!(
            mime_for("manifest.webmanifest"),
            "application/manifest+json"
        );
        assert_eq!(mime_for("icon-192.png"), "image/png");
        assert_eq!(mime_for("sw.js"), "text/javascript; charset=utf-8");
    }
}
