//! The notification checks: whether phones can register for Web Push with
//! this configuration, and whether the ntfy server answers. A household
//! finds out here, not by waiting for a buzz that never comes.

use std::time::Duration;

use super::check::Check;
use crate::config::Config;
use crate::web::tls::TlsSource;

/// How long the ntfy server gets to answer its health check.
const NTFY_WITHIN: Duration = Duration::from_secs(10);

/// Whether a phone can register for Web Push: browsers allow it only on a
/// page they trust, so a public `https://` address (a reverse proxy with a
/// real certificate, Tailscale's HTTPS) is what works; a self-signed
/// certificate or plain HTTP on the network does not. Web Push is one way
/// among others (ntfy, MQTT), so only a `--public-url` that cannot work is
/// a warning; otherwise the line says what it would take.
pub(super) fn web_push(config: &Config) -> Check {
    const HOW: &str = "see docs/guide/notifications.md";
    match &config.push.public_url {
        Some(url) if url.starts_with("https://") => {
            Check::ok(format!("Web Push: phones register at {url}"))
        }
        Some(url) => Check::warn(format!(
            "Web Push: --public-url {url} is not https://; phones register only on a \
             trusted https:// address ({HOW})"
        )),
        None => match &config.tls {
            Some(TlsSource::SelfSigned) => Check::skip(format!(
                "Web Push: a self-signed certificate does not let phones register; put a \
                 reverse proxy with a trusted certificate in front and set --public-url ({HOW})"
            )),
            Some(TlsSource::Files { .. }) => Check::ok(
                "Web Push: served over your certificate; set --public-url to the name it is \
                 for, so links in notifications open it",
            ),
            None if config.listen.ip().is_loopback() => Check::skip(format!(
                "Web Push: lookout serves this machine only; for phones, a reverse proxy with \
                 a trusted certificate and --public-url ({HOW})"
            )),
            None => Check::skip(format!(
                "Web Push: plain HTTP on the network; phones register only on a trusted \
                 https:// address ({HOW})"
            )),
        },
    }
}

/// The ntfy server answers its health check (`/v1/health`).
pub(super) async fn ntfy(config: &Config) -> Check {
    let Some(topic) = &config.push.ntfy_url else {
        return Check::skip("ntfy: off (no --ntfy-url)");
    };
    let Ok(url) = url::Url::parse(topic) else {
        return Check::fail(format!("ntfy: {topic:?} is not a URL"));
    };
    let origin = url.origin().ascii_serialization();
    let health = format!("{origin}/v1/health");
    crate::install_crypto_provider();
    let client = match reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(NTFY_WITHIN)
        .build()
    {
        Ok(c) => c,
        Err(e) => return Check::fail(format!("ntfy: {e}")),
    };
    match client.get(&health).send().await {
        Ok(r) if r.status().is_success() => Check::ok(format!("ntfy: {origin} answers")),
        Ok(r) => Check::warn(format!(
            "ntfy: {health} answered {} (not an ntfy server, or an old one?)",
            r.status()
        )),
        Err(e) => Check::fail(format!(
            "ntfy: {origin} does not answer: {}",
            crate::chain::error_chain(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::Status;
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["lookout"];
        argv.extend_from_slice(args);
        let cli = <crate::config::Cli as clap::Parser>::parse_from(argv);
        Config::from_cli(&cli).expect("config")
    }

    #[test]
    fn web_push_says_what_a_phone_needs() {
        let status = |args: &[&str]| web_push(&config(args)).status;
        assert_eq!(
            status(&["--public-url", "https://cam.example.org"]),
            Status::Ok
        );
        assert_eq!(
            status(&["--public-url", "http://192.168.1.5:8080"]),
            Status::Warn
        );
        assert_eq!(status(&["--tls-self-signed"]), Status::Skip);
        assert_eq!(status(&["--listen", "0.0.0.0:8080"]), Status::Skip);
        assert_eq!(status(&[]), Status::Skip);
    }

    #[tokio::test]
    async fn ntfy_is_checked_at_its_health_route() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/v1/health",
            axum::routing::get(|| async { r#"{"healthy":true}"# }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let up = config(&["--ntfy-url", &format!("http://{addr}/yard")]);
        assert_eq!(ntfy(&up).await.status, Status::Ok);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        let down = config(&["--ntfy-url", &format!("http://{gone}/yard")]);
        assert_eq!(ntfy(&down).await.status, Status::Fail);
        assert_eq!(ntfy(&config(&[])).await.status, Status::Skip);
    }
}
