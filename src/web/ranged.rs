//! Serving a file that never changes under its name (a clip) as RFC 9110
//! asks: `Range` for players that seek, validators (`ETag`,
//! `Last-Modified`) and the conditional requests that use them.
//!
//! tower-http's `ServeFile` served clips before, and departed from the RFC
//! where players and caches notice: it answered 416 to a range unit it does
//! not know (the RFC says ignore the header), to several ranges and to an end
//! past 2^64 (the RFC says clamp it to the file's end), ignored `If-Range`
//! (so a client resuming a download of a changed file would splice two
//! files), and sent no `ETag`. The rules are small enough to state here in
//! one place, as a pure function ([`plan`]) tested case by case.
//!
//! Choices where the RFC leaves one:
//! - Several ranges get **the first satisfiable one** as a single-part 206
//!   (its `Content-Range` says which), not `multipart/byteranges`: players
//!   ask for one range at a time, and one part per response bounds the work
//!   a request can ask for.
//! - A `Range` that is not valid syntax for `bytes` is ignored (200 with the
//!   whole file), as for an unknown unit.
//! - The `ETag` is strong: it is made of the file's length and modification
//!   time, and a clip gets its name only once it is finished, so the bytes
//!   under a name never change while the tag stays the same.

use std::io::SeekFrom;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// Bytes read from the file per chunk of the body: large enough that a
/// whole clip streams in few system calls, small enough per connection.
const CHUNK: usize = 64 * 1024;

/// What identifies one version of the file: its validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validators {
    /// Length in bytes.
    pub(crate) len: u64,
    /// The strong entity tag, quotes included: `"<len>-<mtime ns>"` in hex.
    pub(crate) etag: String,
    /// Last modification, whole seconds since the epoch (HTTP dates have no
    /// finer resolution).
    pub(crate) modified_s: u64,
}

impl Validators {
    /// The validators of a file of `len` bytes last modified at `modified`.
    pub(crate) fn new(len: u64, modified: SystemTime) -> Validators {
        let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Validators {
            len,
            etag: format!("\"{len:x}-{:x}\"", since.as_nanos()),
            modified_s: since.as_secs(),
        }
    }

    fn last_modified(&self) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(self.modified_s))
    }
}

/// The answer to a request, before any byte of the file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// 200 with the whole file.
    Whole,
    /// 206 with the bytes `start..=end`.
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive), below the length.
        end: u64,
    },
    /// 304: the client's copy is current.
    NotModified,
    /// 412: `If-Match` or `If-Unmodified-Since` failed.
    PreconditionFailed,
    /// 416: no range of the `Range` header lies within the file.
    Unsatisfiable,
}

/// Decides the answer to `method` with `headers` for the file `v`, in the
/// order of RFC 9110 section 13.2.2: `If-Match` (else
/// `If-Unmodified-Since`), then `If-None-Match` (else `If-Modified-Since`),
/// then `If-Range` and `Range` (GET only).
pub(crate) fn plan(method: &Method, headers: &HeaderMap, v: &Validators) -> Plan {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(list) = joined(headers, &header::IF_MATCH) {
        if !tags_match(&list, &v.etag, Comparison::Strong) {
            return Plan::PreconditionFailed;
        }
    } else if let Some(date) = date(headers, &header::IF_UNMODIFIED_SINCE) {
        if v.modified_s > date {
            return Plan::PreconditionFailed;
        }
    }
    if let Some(list) = joined(headers, &header::IF_NONE_MATCH) {
        if tags_match(&list, &v.etag, Comparison::Weak) {
            return if get_or_head {
                Plan::NotModified
            } else {
                Plan::PreconditionFailed
            };
        }
    } else if get_or_head {
        if let Some(date) = date(headers, &header::IF_MODIFIED_SINCE) {
            if v.modified_s <= date {
                return Plan::NotModified;
            }
        }
    }
    // Range is defined for GET only; HEAD describes the whole file.
    if method != Method::GET {
        return Plan::Whole;
    }
    let Some(range) = headers.get(header::RANGE).and_then(|r| r.to_str().ok()) else {
        return Plan::Whole;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        if !if_range_holds(if_range, v) {
            return Plan::Whole;
        }
    }
    match first_range(range, v.len) {
        Ranged::Ignore => Plan::Whole,
        Ranged::Part { start, end } => Plan::Part { start, end },
        Ranged::Unsatisfiable => Plan::Unsatisfiable,
    }
}

/// Serves the file at `path` (of type `content_type`) to `method` with
/// `headers`. An error opening or reading it is the caller's to answer
/// (a file deleted meanwhile is `NotFound`).
pub(crate) async fn serve(
    path: &Path,
    content_type: &'static str,
    method: &Method,
    headers: &HeaderMap,
) -> std::io::Result<Response> {
    let mut file = tokio::fs::File::open(path).await?;
    let meta = file.metadata().await?;
    let v = Validators::new(meta.len(), meta.modified().unwrap_or(UNIX_EPOCH));
    let plan = plan(method, headers, &v);
    let (status, start, count) = match plan {
        Plan::Whole => (StatusCode::OK, 0, v.len),
        Plan::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Plan::NotModified => return Ok(validated(StatusCode::NOT_MODIFIED, &v, Body::empty())),
        Plan::PreconditionFailed => {
            let body = Json(json!({"error": "precondition failed"})).into_response();
            return Ok((StatusCode::PRECONDITION_FAILED, body).into_response());
        }
        Plan::Unsatisfiable => {
            let mut resp = (
                StatusCode::RANGE_NOT_SATISFIABLE,
                Json(json!({"error": "range not satisfiable"})),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", v.len)) {
                resp.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(resp);
        }
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        file.seek(SeekFrom::Start(start)).await?;
        Body::from_stream(ReaderStream::with_capacity(file.take(count), CHUNK))
    };
    let mut resp = validated(status, &v, body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if let Plan::Part { start, end } = plan {
        if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", v.len)) {
            h.insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(resp)
}

/// A response carrying the file's validators.
fn validated(status: StatusCode, v: &Validators, body: Body) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&v.etag) {
        h.insert(header::ETAG, tag);
    }
    if let Ok(date) = HeaderValue::from_str(&v.last_modified()) {
        h.insert(header::LAST_MODIFIED, date);
    }
    resp
}

/// Every line of a list header, joined as one list (`None` when absent).
fn joined(headers: &HeaderMap, name: &header::HeaderName) -> Option<String> {
    let mut lines = headers.get_all(name).iter().peekable();
    lines.peek()?;
    let parts: Vec<&str> = lines.map(|l| l.to_str().unwrap_or("")).collect();
    Some(parts.join(","))
}

/// An HTTP date header in seconds since the epoch; `None` when absent or
/// not a date (the RFC says to ignore an invalid one).
fn date(headers: &HeaderMap, name: &header::HeaderName) -> Option<u64> {
    let text = headers.get(name)?.to_str().ok()?;
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and the same (If-Match, If-Range).
    Strong,
    /// The same opaque tag, weak or not (If-None-Match).
    Weak,
}

/// Whether the list of entity tags (or `*`) matches `etag` (a strong tag,
/// quotes included). A list that cannot be read matches nothing.
fn tags_match(list: &str, etag: &str, how: Comparison) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let (weak, tagged) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        // An entity tag is a quoted string without quotes inside.
        let Some(inner) = tagged.strip_prefix('"') else {
            return false;
        };
        let Some(close) = inner.find('"') else {
            return false;
        };
        let tag = &tagged[..close + 2];
        if tag == etag && (how == Comparison::Weak || !weak) {
            return true;
        }
        rest = &inner[close + 1..];
    }
}

/// `If-Range`: a strong entity tag equal to the file's, or the file's exact
/// `Last-Modified` date. A weak tag never holds (RFC 9110 13.1.5).
fn if_range_holds(value: &HeaderValue, v: &Validators) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        return text == v.etag;
    }
    httpdate::parse_http_date(text)
        .ok()
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .is_some_and(|at| at.as_secs() == v.modified_s)
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// Not a `bytes` range, or not valid syntax: serve the whole file.
    Ignore,
    /// The first range that lies within the file, clamped to its end.
    Part { start: u64, end: u64 },
    /// Valid, but no range lies within the file.
    Unsatisfiable,
}

/// Reads `bytes=first-last, first-, -suffix, ...` (RFC 9110 14.1.2) and
/// picks the first satisfiable range. Numbers too large for 64 bits
/// saturate: a last position past the file's end is its end.
fn first_range(header: &str, len: u64) -> Ranged {
    let Some((unit, set)) = header.split_once('=') else {
        return Ranged::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Ignore;
    }
    let mut first_satisfiable = None;
    let mut any = false;
    for spec in set.split(',') {
        let spec = spec.trim_matches([' ', '\t']);
        // Empty list elements are allowed (RFC 9110 5.6.1.2).
        if spec.is_empty() {
            continue;
        }
        any = true;
        let Some((first, last)) = spec.split_once('-') else {
            return Ranged::Ignore;
        };
        let range = if first.is_empty() {
            let Some(suffix) = number(last) else {
                return Ranged::Ignore;
            };
            (suffix > 0 && len > 0).then(|| (len.saturating_sub(suffix), len - 1))
        } else {
            let Some(first) = number(first) else {
                return Ranged::Ignore;
            };
            let last = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(last) if last >= first => last,
                    _ => return Ranged::Ignore,
                }
            };
            (first < len).then(|| (first, last.min(len - 1)))
        };
        if first_satisfiable.is_none() {
            first_satisfiable = range;
        }
    }
    match first_satisfiable {
        Some((start, end)) => Ranged::Part { start, end },
        None if any => Ranged::Unsatisfiable,
        None => Ranged::Ignore,
    }
}

/// One or more ASCII digits, saturating at `u64::MAX`.
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Marks a served file that never changes under its name (a clip, a
/// recording segment): cached for a year by the one browser that asked,
/// and never sniffed for another type.
pub fn immutable(headers: &mut axum::http::HeaderMap) {
    use axum::http::{header, HeaderValue};
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: u64 = 1000;

    fn v() -> Validators {
        Validators::new(
            LEN,
            UNIX_EPOCH + std::time::Duration::from_millis(1_764_033_000_123),
        )
    }

    fn ask(method: Method, pairs: &[(&str, &str)]) -> Plan {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        plan(&method, &headers, &v())
    }

    fn get(pairs: &[(&str, &str)]) -> Plan {
        ask(Method::GET, pairs)
    }

    fn part(start: u64, end: u64) -> Plan {
        Plan::Part { start, end }
    }

    #[test]
    fn ranges() {
        let cases = [
            ("bytes=0-99", part(0, 99)),
            ("bytes=990-", part(990, 999)),
            ("bytes=-10", part(990, 999)),
            ("bytes=-5000", part(0, 999)),
            ("bytes=500-5000", part(500, 999)),
            ("BYTES = 1-1", part(1, 1)),
            ("bytes=0-99999999999999999999999", part(0, 999)),
            ("bytes=2000-3000, 5-9, 10-19", part(5, 9)),
            ("bytes=, 5-9,", part(5, 9)),
            ("bytes=1000-", Plan::Unsatisfiable),
            ("bytes=-0", Plan::Unsatisfiable),
            ("bytes=99999999999999999999999-", Plan::Unsatisfiable),
            ("items=0-1", Plan::Whole),
            ("bytes=5-1", Plan::Whole),
            ("bytes=a-1", Plan::Whole),
            ("bytes=1", Plan::Whole),
            ("bytes=--1", Plan::Whole),
            ("bytes=+1-2", Plan::Whole),
            ("bytes=", Plan::Whole),
            ("bytes", Plan::Whole),
        ];
        for (range, want) in cases {
            assert_eq!(get(&[("range", range)]), want, "{range}");
        }
        assert_eq!(
            ask(Method::HEAD, &[("range", "bytes=0-1")]),
            Plan::Whole,
            "HEAD describes the whole file"
        );
        let empty = Validators::new(0, UNIX_EPOCH);
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=-5"));
        assert_eq!(plan(&Method::GET, &headers, &empty), Plan::Unsatisfiable);
    }

    #[test]
    fn validators() {
        let v = v();
        assert_eq!(
            v.etag,
            format!("\"3e8-{:x}\"", 1_764_033_000_123_000_000u64)
        );
        assert_eq!(v.last_modified(), "Tue, 25 Nov 2025 01:10:00 GMT");
    }

    #[test]
    fn if_none_match_and_if_modified_since() {
        let tag = v().etag;
        let weak = format!("W/{tag}");
        let listed = format!("\"x\", {tag}");
        for value in ["*", tag.as_str(), weak.as_str(), listed.as_str()] {
            assert_eq!(
                get(&[("if-none-match", value)]),
                Plan::NotModified,
                "{value}"
            );
            assert_eq!(
                ask(Method::HEAD, &[("if-none-match", value)]),
                Plan::NotModified
            );
            assert_eq!(
                ask(Method::DELETE, &[("if-none-match", value)]),
                Plan::PreconditionFailed
            );
        }
        assert_eq!(get(&[("if-none-match", "\"other\"")]), Plan::Whole);
        assert_eq!(get(&[("if-none-match", "garbage")]), Plan::Whole);
        let last = v().last_modified();
        let earlier = "Tue, 25 Nov 2025 01:09:59 GMT";
        assert_eq!(get(&[("if-modified-since", &last)]), Plan::NotModified);
        assert_eq!(get(&[("if-modified-since", earlier)]), Plan::Whole);
        assert_eq!(get(&[("if-modified-since", "yesterday")]), Plan::Whole);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            get(&[("if-none-match", "\"other\""), ("if-modified-since", &last)]),
            Plan::Whole
        );
    }

    #[test]
    fn if_match_and_if_unmodified_since() {
        let tag = v().etag;
        let weak = format!("W/{tag}");
        assert_eq!(get(&[("if-match", &tag)]), Plan::Whole);
        assert_eq!(get(&[("if-match", "*")]), Plan::Whole);
        assert_eq!(get(&[("if-match", &weak)]), Plan::PreconditionFailed);
        assert_eq!(get(&[("if-match", "\"other\"")]), Plan::PreconditionFailed);
        let earlier = "Tue, 25 Nov 2025 01:09:59 GMT";
        assert_eq!(
            get(&[("if-unmodified-since", earlier)]),
            Plan::PreconditionFailed
        );
        assert_eq!(
            get(&[("if-unmodified-since", &v().last_modified())]),
            Plan::Whole
        );
    }

    #[test]
    fn if_range() {
        let tag = v().etag;
        let last = v().last_modified();
        let range = ("range", "bytes=0-9");
        assert_eq!(get(&[range, ("if-range", &tag)]), part(0, 9));
        assert_eq!(get(&[range, ("if-range", &last)]), part(0, 9));
        let weak = format!("W/{tag}");
        for stale in [
            "\"other\"",
            weak.as_str(),
            "Tue, 25 Nov 2025 01:09:59 GMT",
            "not a date",
        ] {
            assert_eq!(get(&[range, ("if-range", stale)]), Plan::Whole, "{stale}");
        }
        // A stale If-Range also means no 416: the whole file is sent.
        assert_eq!(
            get(&[("range", "bytes=5000-"), ("if-range", "\"other\"")]),
            Plan::Whole
        );
    }
}
