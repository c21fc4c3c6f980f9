//! Secrets out of text: one redaction for everything derived from a camera
//! source or an upload URL (logs, `/status`, events, the store).
//!
//! A camera's URI often carries a password (`rtsp://user:pw@cam/...`) or a
//! token in its query string, and the programs it runs repeat it: ffmpeg
//! prints the input URL in its errors, and the last stderr line becomes
//! `source.last_error`, which goes to `/status`, a `source` event and the
//! store. Webhook URLs carry their secret in the path. So redaction happens
//! in two layers:
//! - [`redact`] rewrites every URL found in a text: the password of
//!   `user:pass@`, and the value of query parameters named like secrets;
//! - a [`Redactor`] also knows the literal secrets of the URIs it was built
//!   from, and blots them out wherever they appear, even outside a URL (a
//!   program that prints the password alone, or percent-decoded).

use std::sync::Arc;

/// What a hidden secret is replaced with.
const MASK: &str = "***";

/// Query parameter names whose values are secrets, matched as parts of the
/// lowercased name (`access_token`, `api_key`, `X-Amz-Signature`, `pwd`).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "key",
    "pass",
    "pwd",
    "auth",
    "sig",
    "secret",
    "credential",
];

/// Secrets shorter than this are not blotted out as literals: a two-letter
/// password would otherwise mangle every word that contains it. Inside a URL
/// they are still hidden by position.
const MIN_LITERAL: usize = 4;

/// Hides the secrets of every URL found anywhere in `s`: `rtsp://u:pw@cam`
/// becomes `rtsp://u:***@cam`, and `?token=abc&x=1` becomes `?token=***&x=1`.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(url_end).unwrap_or(tail.len());
        redact_after_scheme(&tail[..end], &mut out);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Hides the password of `url`, one URL as a person typed it, even when it
/// does not parse: `u:pw@host`, `mqtts//u:pw@host` or `mqtt:/u:pw@host`
/// have no `://` for [`redact`] to find. The password lies between the
/// first `:` of the user information and its last `@` (a user name holds no
/// `:`; a password may hold `@` or `/`), so everything there is hidden; a
/// `scheme:` that is not followed by `//` is hidden with it, which is more
/// than needed but never less.
pub fn redact_url(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return redact(url);
    };
    let start = url[..at].find("://").map_or(0, |i| i + 3);
    match url[start..at].find(':') {
        Some(colon) => format!("{}{MASK}{}", &url[..start + colon + 1], &url[at..]),
        None => redact(url),
    }
}

/// Where a URL embedded in text ends: white space, quotes, brackets.
fn url_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | ',' | ';')
}

/// Redacts one URL's text after `scheme://` into `out`.
fn redact_after_scheme(url: &str, out: &mut String) {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let authority = &url[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            match authority[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(&authority[..at]),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let rest = &url[authority_end..];
    let (before_query, query) = match rest.find('?') {
        Some(q) => rest.split_at(q + 1),
        None => (rest, ""),
    };
    out.push_str(before_query);
    let (query, fragment) = match query.find('#') {
        Some(f) => query.split_at(f),
        None => (query, ""),
    };
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, value)) if is_secret_param(name) && !value.is_empty() => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(pair),
        }
    }
    out.push_str(fragment);
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// A URL as safe to show for an endpoint whose path may be its secret (a
/// webhook): scheme, host and port, and the first path segment only, with
/// `…` where the rest was. `https://hooks.example/services/T0/B0/XYZ` becomes
/// `https://hooks.example/services/…`.
pub fn endpoint(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return MASK.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let tail = &rest[authority_end..];
    let path = tail.split(['?', '#']).next().unwrap_or("");
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let mut shown = format!("{scheme}://{host}");
    if let Some(first) = segments.next() {
        shown.push('/');
        shown.push_str(first);
    }
    if segments.next().is_some() || tail.len() > path.len() {
        shown.push_str("/…");
    }
    shown
}

/// The secrets of one or more URIs, hidden wherever they show up.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// URLs shown as [`endpoint`] (whole, as given).
    endpoints: Arc<[String]>,
    /// Literal secrets (passwords, tokens, secret path parts), longest first
    /// so a secret that contains another is hidden whole.
    secrets: Arc<[String]>,
}

impl Redactor {
    /// Hides the secrets of the URLs inside `text` (a source URI or command).
    pub fn for_source(text: &str) -> Redactor {
        Redactor::build(&[text], &[], &[])
    }

    /// Hides upload URLs (shown as their [`endpoint`]: the path may be the
    /// secret) and the bearer token.
    pub fn for_uploads(urls: &[&str], token: Option<&str>) -> Redactor {
        let tokens: Vec<&str> = token.into_iter().collect();
        Redactor::build(urls, urls, &tokens)
    }

    fn build(texts: &[&str], endpoints: &[&str], literals: &[&str]) -> Redactor {
        let mut secrets: Vec<String> = literals.iter().map(|s| s.to_string()).collect();
        for text in texts {
            secrets.extend(secrets_in(text));
        }
        for url in endpoints {
            secrets.extend(path_secrets(url));
        }
        secrets.retain(|s| s.chars().count() >= MIN_LITERAL);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let mut endpoints: Vec<String> = endpoints.iter().map(|s| s.to_string()).collect();
        endpoints.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor {
            endpoints: endpoints.into(),
            secrets: secrets.into(),
        }
    }

    /// `s` with every known secret hidden.
    pub fn apply(&self, s: &str) -> String {
        let mut text = s.to_string();
        for url in self.endpoints.iter() {
            if !url.is_empty() && text.contains(url.as_str()) {
                text = text.replace(url.as_str(), &endpoint(url));
            }
        }
        for secret in self.secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        redact(&text)
    }
}

/// The literal secrets of every URL inside `text`: passwords (also
/// percent-decoded, as a program may print them) and secret query values.
fn secrets_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let tail = &rest[i + 3..];
        let end = tail.find(url_end).unwrap_or(tail.len());
        let url = &tail[..end];
        let authority = &url[..url.find(['/', '?', '#']).unwrap_or(url.len())];
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pass)) = userinfo.split_once(':') {
                found.push(pass.to_string());
                found.push(percent_decode(pass));
            }
        }
        if let Some((_, query)) = url.split_once('?') {
            let query = query.split('#').next().unwrap_or("");
            for pair in query.split('&') {
                if let Some((name, value)) = pair.split_once('=') {
                    if is_secret_param(name) {
                        found.push(value.to_string());
                        found.push(percent_decode(value));
                    }
                }
            }
        }
        rest = &tail[end..];
    }
    found
}

/// The path segments [`endpoint`] does not show.
fn path_secrets(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let path_start = rest.find('/').unwrap_or(rest.len());
    let path = rest[path_start..].split(['?', '#']).next().unwrap_or("");
    path.split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// `%41` -> `A`; anything malformed is kept as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| char::from(b).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits: at most 0xff.
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_anywhere() {
        assert_eq!(redact("http://u:pw@cam:80/x"), "http://u:***@cam:80/x");
        assert_eq!(
            redact("exec:ffmpeg -i rtsp://a:b@h/s -f mjpeg -"),
            "exec:ffmpeg -i rtsp://a:***@h/s -f mjpeg -"
        );
        assert_eq!(
            redact("ffmpeg -i 'rtsp://a:b@h/s' -"),
            "ffmpeg -i 'rtsp://a:***@h/s' -"
        );
        assert_eq!(redact("http://cam/x?u=a@b"), "http://cam/x?u=a@b");
        assert_eq!(redact("synthetic"), "synthetic");
    }

    #[test]
    fn passwords_in_urls_that_do_not_parse() {
        assert_eq!(redact_url("u:secret@b:1883"), "u:***@b:1883");
        assert_eq!(redact_url("mqtts//u:secret@b"), "mqtts//u:***@b");
        assert_eq!(redact_url("mqtt:/u:secret@b"), "mqtt:***@b");
        assert_eq!(redact_url("mqtt://u:se@cr/et@b:1"), "mqtt://u:***@b:1");
        assert_eq!(redact_url("u:se/cret@b"), "u:***@b");
        assert_eq!(redact_url("mqtt://u@b"), "mqtt://u@b");
        assert_eq!(redact_url("broker:1883"), "broker:1883");
        assert_eq!(redact_url("http://b/x?token=t@"), "http://b/x?token=***");
    }

    #[test]
    fn secret_query_parameters() {
        assert_eq!(
            redact("http://cam/snap.jpg?token=abc123&size=640#fps=5"),
            "http://cam/snap.jpg?token=***&size=640#fps=5"
        );
        assert_eq!(
            redact("GET https://x/y?API_KEY=1&Signature=2&user=me done"),
            "GET https://x/y?API_KEY=***&Signature=***&user=me done"
        );
        assert_eq!(
            redact("http://cam/a?password=pw&auth=z"),
            "http://cam/a?password=***&auth=***"
        );
    }

    #[test]
    fn endpoints_show_host_and_first_segment() {
        assert_eq!(
            endpoint("https://hooks.example/services/T0/B0/XYZ"),
            "https://hooks.example/services/…"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9/frames"),
            "http://127.0.0.1:9/frames"
        );
        assert_eq!(endpoint("http://u:p@h/a?k=v"), "http://h/a/…");
        assert_eq!(endpoint("garbage"), "***");
    }

    #[test]
    fn a_redactor_hides_the_literal_secrets_too() {
        let r = Redactor::for_source(
            "exec:ffmpeg -i rtsp://camuser:S3cret%21Pw@host/stream?token=tok3n -f mjpeg -",
        );
        // ffmpeg repeats the input URL, or the password alone, decoded.
        let line =
            "rtsp://camuser:S3cret%21Pw@host/stream?token=tok3n: 401; tried S3cret!Pw and tok3n";
        let shown = r.apply(line);
        assert!(!shown.contains("S3cret"), "{shown}");
        assert!(!shown.contains("tok3n"), "{shown}");
        assert!(shown.contains("camuser"), "{shown}");
    }

    #[test]
    fn upload_urls_and_tokens() {
        let r = Redactor::for_uploads(
            &["https://hooks.example/services/T0/Bsecretpath"],
            Some("bearer-token-1"),
        );
        let shown = r.apply(
            "error sending request for url (https://hooks.example/services/T0/Bsecretpath): \
             refused; token bearer-token-1",
        );
        assert_eq!(
            shown,
            "error sending request for url (https://hooks.example/services/…): refused; token ***"
        );
        let shown = r.apply("posting to hooks.example path T0/Bsecretpath failed");
        assert!(!shown.contains("Bsecretpath"), "{shown}");
    }

    #[test]
    fn short_secrets_are_hidden_only_in_urls() {
        let r = Redactor::for_source("http://u:ab@cam/x");
        assert_eq!(
            r.apply("table cab http://u:ab@cam/x"),
            "table cab http://u:***@cam/x"
        );
    }
}
