//! Sign-in hardening ("Security, round two"), over real sockets: guessing is
//! throttled on every scheme and cannot be parallelised, argon2 checks are
//! bounded, HTTP/2 browsers can sign in, DNS rebinding is refused, weak
//! passwords are refused, a new password ends sessions, redirects stay on
//! site, and the smaller fixes.

use crate::common;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{lookout, text, TestServer, PASSWORD, STILL};
use serde_json::Value;

async fn secured() -> TestServer {
    secured_in(tempfile::tempdir().unwrap()).await
}

async fn secured_in(dir: tempfile::TempDir) -> TestServer {
    TestServer::secured_in(dir).await
}

/// A client that does not follow redirects, from `127.0.0.1`.
fn client() -> reqwest::Client {
    client_from("127.0.0.1")
}

/// A client that does not follow redirects, connecting from `local` (any
/// address of 127.0.0.0/8 is loopback on Linux: a second "client address").
fn client_from(local: &str) -> reqwest::Client {
    lookout::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Signs in at `/login` and returns the `name=value` of the session cookie.
async fn sign_in(server: &TestServer, client: &reqwest::Client) -> String {
    let r = client
        .post(server.url("/login"))
        .form(&[("user", "owner"), ("pass", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

async fn api_token(server: &TestServer, client: &reqwest::Client) -> String {
    let r = client
        .post(server.url("/api/login"))
        .body(format!(r#"{{"user": "owner", "pass": "{PASSWORD}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

async fn status_with(
    server: &TestServer,
    client: &reqwest::Client,
    header: (&str, &str),
) -> reqwest::StatusCode {
    client
        .get(server.url("/status"))
        .header(header.0, header.1)
        .send()
        .await
        .unwrap()
        .status()
}

/// Resident memory of a process in MiB (Linux).
fn rss_mib(pid: u32) -> Option<u64> {
    common::rss_kib(pid).map(|kib| kib / 1024)
}

/// Sends `n` wrong Basic requests to `/status` at once; returns their statuses
/// and Retry-After headers.
async fn wrong_basic_wave(url: &str, n: usize) -> Vec<(u16, Option<String>)> {
    let client = client();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let request = client
                .get(format!("{url}/status"))
                .basic_auth("owner", Some(format!("wrong{i}")));
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), retry)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

// 1. Guessing through Basic auth: memory, throttle, every scheme.

#[tokio::test]
async fn a_flood_of_wrong_basic_passwords_keeps_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let data = dir.path().join("data");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--require-auth",
        "--password-file",
        pw.to_str().unwrap(),
        "--source",
        STILL,
    ];
    let mut bin = common::Binary::spawn(&args, &data);
    let url = bin.wait_for_url("http").await;
    let child = bin.drain();
    let pid = child.id().unwrap();
    let before = rss_mib(pid).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak
        })
    };
    // A first wave: two are checked (wrong), the rest are told at once that
    // the server is busy checking passwords.
    let first = wrong_basic_wave(&url, 64).await;
    // A second wave from the same address, now with failures on record: a
    // few take the next slots (and wait), the rest get 429 with Retry-After
    // at once.
    let client = client();
    let second: Vec<_> = (0..64)
        .map(|i| {
            tokio::spawn(
                client
                    .get(format!("{url}/status"))
                    .basic_auth("owner", Some(format!("again{i}")))
                    .send(),
            )
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut refused = 0;
    let mut held = Vec::new();
    for mut task in second {
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(r) => {
                let r = r.unwrap().unwrap();
                if r.status() == 429 {
                    assert!(r.headers().contains_key("retry-after"));
                    refused += 1;
                }
            }
            Err(_) => held.push(task),
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    println!("RSS before {before} MiB, peak {peak} MiB during 2 x 64 wrong Basic requests");
    assert!(peak < 100, "RSS peaked at {peak} MiB");
    assert!(
        first.iter().all(|(s, _)| [401, 429, 503].contains(s)),
        "{first:?}"
    );
    assert!(first.iter().any(|(s, _)| *s == 503), "{first:?}");
    assert!(first
        .iter()
        .filter(|(s, _)| *s != 401)
        .all(|(_, retry)| retry.is_some()));
    assert!(refused >= 40, "{refused} of 64 refused with 429");
    for task in held {
        task.abort();
    }
}

#[tokio::test]
async fn parallel_wrong_attempts_after_failures_wait_one_delay_apart() {
    let server = secured().await;
    let client = client();
    let wrong_api_login = || {
        client
            .post(server.url("/api/login"))
            .body(r#"{"user": "owner", "pass": "guess"}"#)
            .send()
    };
    // Two failures in a row: the next checks are 500 ms apart.
    for _ in 0..2 {
        assert_eq!(wrong_api_login().await.unwrap().status(), 401);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..8 {
        // Half through Basic on a protected route, half through /api/login:
        // they share the address's slots.
        let request = if i % 2 == 0 {
            client
                .get(server.url("/status"))
                .basic_auth("owner", Some(format!("guess{i}")))
        } else {
            client
                .post(server.url("/api/login"))
                .body(format!(r#"{{"user": "owner", "pass": "guess{i}"}}"#))
        };
        tasks.push(tokio::spawn(request.send()));
    }
    for t in tasks {
        // 503: its slot came while both password checkers were still busy
        // (a slow, loaded machine); refused at once, which is no way in
        // either, and the slots still spaced the others.
        let status = t.await.unwrap().unwrap().status();
        assert!(status == 401 || status == 503, "{status}");
    }
    let took = start.elapsed();
    println!("8 parallel wrong attempts after 2 failures took {took:?}");
    assert!(
        took >= Duration::from_millis(3900),
        "8 x 500 ms expected, took {took:?}"
    );
}

#[tokio::test]
async fn a_wrong_bearer_and_a_wrong_cookie_count_too() {
    let server = secured().await;
    let client = client();
    let stale_cookie = format!("lookout_session={}", "0".repeat(64));
    // Four failures, two of each (checked 0, 250, 500 and 1000 ms apart)...
    let mut last = None;
    for header in [
        ("authorization", "Bearer not-a-token"),
        ("cookie", stale_cookie.as_str()),
        ("authorization", "bearer still-not-a-token"),
        ("cookie", stale_cookie.as_str()),
    ] {
        let r = client
            .get(server.url("/status"))
            .header(header.0, header.1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        last = Some(r);
    }
    // ...so the next check, even with the right password, waits 2 s.
    let start = Instant::now();
    api_token(&server, &client).await;
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    let last = last.unwrap();
    let cleared = last.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.contains("lookout_session=;") && cleared.contains("Max-Age=0"),
        "a refused cookie is deleted so it counts once: {cleared}"
    );
    // A success clears the record.
    let start = Instant::now();
    api_token(&server, &client).await;
    assert!(start.elapsed() < took);
}

#[tokio::test]
async fn a_correct_basic_client_is_served_while_another_address_guesses() {
    let server = secured().await;
    let owner = client();
    let snapshot = || {
        owner
            .get(server.url("/snapshot.jpg"))
            .basic_auth("owner", Some(PASSWORD))
            .send()
    };
    common::wait_until(Duration::from_secs(20), || async {
        snapshot().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let guesser = client_from("127.0.0.2");
    let flood: Vec<_> = (0..32)
        .map(|i| {
            tokio::spawn(
                guesser
                    .get(server.url("/status"))
                    .basic_auth("owner", Some(format!("guess{i}")))
                    .send(),
            )
        })
        .collect();
    // Home Assistant polling the snapshot: never throttled, never busy (its
    // verified password is cached, so it needs no argon2 permit).
    for _ in 0..10 {
        assert_eq!(snapshot().await.unwrap().status(), 200);
    }
    // The guesser's attempts are held for their slots or refused; none of
    // them got in.
    for t in flood {
        if t.is_finished() {
            let status = t.await.unwrap().unwrap().status().as_u16();
            assert!([401, 429, 503].contains(&status), "{status}");
        } else {
            t.abort();
        }
    }
}

// Round three: other people's failures never lock out a valid token; a
// trusted proxy's clients are told apart; busy answers slow their address.

/// A TLS server with sign-in required; `tweak` changes the rest.
async fn secured_tls(tweak: impl FnOnce(&mut lookout::Config)) -> (TestServer, Vec<u8>) {
    let server = TestServer::start_with(STILL, tempfile::tempdir().unwrap(), |c| {
        c.require_auth = true;
        c.password = Some(PASSWORD.into());
        c.tls = Some(lookout::web::tls::TlsSource::SelfSigned);
        tweak(c);
    })
    .await;
    let cert = server.data_dir().join("tls/cert.pem");
    common::wait_until(Duration::from_secs(10), || async {
        std::fs::read(&cert).is_ok_and(|p| !p.is_empty())
    })
    .await;
    let pem = std::fs::read(&cert).unwrap();
    let client = tls_client_from(&pem, "127.0.0.1");
    common::wait_until(Duration::from_secs(20), || async {
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    (server, pem)
}

/// A TLS client trusting `pem`, from `local`, without redirects.
fn tls_client_from(pem: &[u8], local: &str) -> reqwest::Client {
    lookout::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local.parse::<IpAddr>().unwrap())
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_valid_token_is_never_locked_out_by_failures_from_its_address() {
    let (server, pem) = secured_tls(|_| {}).await;
    let owner = tls_client_from(&pem, "127.0.0.1");
    let token = api_token(&server, &owner).await;
    let cookie = sign_in(&server, &owner).await;
    // Eight clients at the same address send a bad bearer token over and
    // over, one at a time each.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, stop) = (
                tls_client_from(&pem, "127.0.0.1"),
                server.url("/status"),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut refused = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let r = client.get(&url).bearer_auth("nope").send().await.unwrap();
                    assert!([401, 429].contains(&r.status().as_u16()), "{}", r.status());
                    refused += 1;
                }
                refused
            })
        })
        .collect();
    // Meanwhile the owner's token and session, from the same address, are
    // served every time, at once.
    let bearer = format!("Bearer {token}");
    for _ in 0..12 {
        assert_eq!(
            status_with(&server, &owner, ("authorization", &bearer)).await,
            200
        );
        assert_eq!(status_with(&server, &owner, ("cookie", &cookie)).await, 200);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut refused = 0;
    for t in flood {
        refused += t.await.unwrap();
    }
    assert!(refused > 8, "the flood ran ({refused} bad tokens)");
    // Passwords from that address are slowed: the flood's failures count.
    let start = Instant::now();
    let r = owner
        .get(server.url("/status"))
        .basic_auth("owner", Some("a wrong guess"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == 429 || start.elapsed() >= Duration::from_secs(2),
        "{} after {:?}",
        r.status(),
        start.elapsed()
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own() {
    let server = TestServer::start_with(STILL, tempfile::tempdir().unwrap(), |c| {
        c.require_auth = true;
        c.password = Some(PASSWORD.into());
        c.trusted_proxies = lookout::peers::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let proxy = client();
    let login = |forwarded_for: &'static str, pass: &'static str| {
        proxy
            .post(server.url("/api/login"))
            .header("x-forwarded-for", forwarded_for)
            .body(format!(r#"{{"user": "owner", "pass": "{pass}"}}"#))
            .send()
    };
    // Someone on the internet guesses three times through the proxy.
    for _ in 0..3 {
        assert_eq!(
            login("198.51.100.9, 203.0.113.5", "guess")
                .await
                .unwrap()
                .status(),
            401
        );
    }
    // The owner, another client of the same proxy, signs in at once...
    let start = Instant::now();
    assert_eq!(login("203.0.113.6", PASSWORD).await.unwrap().status(), 200);
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    // ...while the guesser's next guess waits its 1 s, and what it wrote left
    // of the proxy's own entry is not believed.
    let start = Instant::now();
    assert_eq!(
        login("203.0.113.6, 203.0.113.5", "guess")
            .await
            .unwrap()
            .status(),
        401
    );
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    // From an address that is not a trusted proxy the header means nothing.
    let other = client_from("127.0.0.31");
    for _ in 0..2 {
        let r = other
            .post(server.url("/api/login"))
            .header("x-forwarded-for", "203.0.113.77")
            .body(r#"{"user": "owner", "pass": "guess"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let start = Instant::now();
    let r = other
        .post(server.url("/api/login"))
        .header("x-forwarded-for", "203.0.113.78")
        .body(r#"{"user": "owner", "pass": "guess"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "spoofed: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_cap() {
    let server = TestServer::start_with(STILL, tempfile::tempdir().unwrap(), |c| {
        c.trusted_proxies = lookout::peers::TrustedProxies::parse(&["127.0.0.0/8"]).unwrap();
        c.limits.max_connections_per_ip = 3;
    })
    .await;
    server.wait_for_frame().await;
    let stream = |forwarded_for: &'static str| {
        reqwest::Client::new()
            .get(server.url("/stream.jpg"))
            .header("forwarded", format!("for={forwarded_for};proto=https"))
            .send()
    };
    // The proxy itself is exempt from the per-address connection cap: it
    // holds more than three connections for its clients.
    let mut open = Vec::new();
    for _ in 0..3 {
        let r = stream("203.0.113.5").await.unwrap();
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    assert_eq!(stream("203.0.113.5").await.unwrap().status(), 503);
    let other = stream("\"[2001:db8::5]:4711\"").await.unwrap();
    assert_eq!(other.status(), 200, "another forwarded client");
    drop(open.pop());
    common::wait_until(Duration::from_secs(10), || async {
        stream("203.0.113.5").await.is_ok_and(|r| r.status() == 200)
    })
    .await;
}

#[tokio::test]
async fn the_owner_gets_a_turn_while_two_hundred_addresses_guess() {
    let server = secured().await;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let busy = std::sync::Arc::new(AtomicU32::new(0));
    // 200 addresses (127.0.0.10 to .209), each guessing Basic passwords one
    // at a time, as fast as they are answered.
    let guessers: Vec<_> = (10..210)
        .map(|i| {
            let client = client_from(&format!("127.0.0.{i}"));
            let (url, stop, busy) = (server.url("/status"), stop.clone(), busy.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    let r = client
                        .get(&url)
                        .basic_auth("owner", Some(format!("guess{n}")))
                        .send()
                        .await;
                    if let Ok(r) = r {
                        assert_ne!(r.status(), 200);
                        if r.status() == 503 {
                            busy.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // The flood is on once the password checks are saturated.
    common::wait_until(Duration::from_secs(30), || async {
        busy.load(Ordering::SeqCst) >= 100
    })
    .await;
    // The owner signs in as a person would: on 503 or 429, again after
    // Retry-After. It must get in while the flood goes on.
    let owner = client_from("127.0.0.2");
    let start = Instant::now();
    let mut tries = Vec::new();
    let signed_in = loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the owner never got a turn: {tries:?}"
        );
        let r = owner
            .post(server.url("/api/login"))
            .body(format!(r#"{{"user": "owner", "pass": "{PASSWORD}"}}"#))
            .send()
            .await
            .unwrap();
        tries.push(r.status().as_u16());
        if r.status() == 200 {
            break start.elapsed();
        }
        let retry: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(retry)).await;
    };
    stop.store(true, Ordering::SeqCst);
    let busy = busy.load(Ordering::SeqCst);
    println!("the owner got in after {signed_in:?} ({busy} busy answers to the flood): {tries:?}");
    // Each busy answer slowed its address like a wrong password, so the
    // flood slowed itself: a few each, not tens of thousands spun through
    // at once (67,883 in 5 s before busy answers counted).
    assert!(busy < 200 * 20, "{busy} busy answers to 200 addresses");
    for g in guessers {
        g.abort();
    }
}

// 2. HTTP/2: the Origin is compared with the authority.

/// `curl --http2 -k` with `args`; returns (status, HTTP version, headers).
async fn curl_h2(args: &[&str]) -> (u16, String, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-k", "--http2", "-o", "/dev/null", "-D", "-"])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (headers, last) = stdout.trim_end().rsplit_once('\n').unwrap();
    let (code, version) = last.split_once(' ').unwrap();
    (
        code.parse().unwrap(),
        version.to_string(),
        headers.to_string(),
    )
}

#[tokio::test]
async fn http2_requests_from_the_page_itself_are_same_site() {
    let server = TestServer::start_with(STILL, tempfile::tempdir().unwrap(), |c| {
        c.tls = Some(lookout::web::tls::TlsSource::SelfSigned);
        c.require_auth = true;
        c.password = Some(PASSWORD.into());
    })
    .await;
    let origin = format!("Origin: https://127.0.0.1:{}", server.addr.port());
    let auth = format!("owner:{PASSWORD}");
    // A snapshot to delete (once the camera has a frame).
    let control = server.url("/control");
    let deadline = Instant::now() + Duration::from_secs(20);
    let name = loop {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-k", "--http2", "-u", &auth, "-H", &origin])
            .args(["-d", r#"{"cmd": "snapshot_now"}"#, &control])
            .output()
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(url) = reply["url"].as_str() {
            break url.to_string();
        }
        assert!(Instant::now() < deadline, "no snapshot: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (code, version, _) = curl_h2(&[
        "-u",
        &auth,
        "-H",
        &origin,
        "-X",
        "DELETE",
        &server.url(&name),
    ])
    .await;
    assert_eq!((code, version.as_str()), (200, "2"), "DELETE {name}");
    // The login form posted by a browser over HTTP/2.
    let (code, version, headers) = curl_h2(&[
        "-H",
        &origin,
        "--data-urlencode",
        "user=owner",
        "--data-urlencode",
        &format!("pass={PASSWORD}"),
        &server.url("/login"),
    ])
    .await;
    assert_eq!((code, version.as_str()), (303, "2"), "{headers}");
    assert!(headers.contains("lookout_session="), "{headers}");
    // Another site is still refused over HTTP/2. (No body: refused before
    // reading one, HTTP/2 resets the stream, which curl reports as an error
    // while it is still sending.)
    let (code, _, _) = curl_h2(&[
        "-H",
        "Origin: https://evil.example",
        "-X",
        "POST",
        &server.url("/login"),
    ])
    .await;
    assert_eq!(code, 403);
}

// 3. DNS rebinding: a Host allowlist on loopback without sign-in.

#[tokio::test]
async fn a_rebound_host_is_refused_on_loopback() {
    let server = TestServer::start_with(STILL, tempfile::tempdir().unwrap(), |c| {
        c.allow_hosts = vec!["cam.lan".into()];
    })
    .await;
    let client = client();
    let port = server.addr.port();
    let evil = format!("evil.example:{port}");
    let r = client
        .post(server.url("/config"))
        .header("host", &evil)
        .header("origin", format!("http://{evil}"))
        .body(r#"{"threshold": 16}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("--allow-host"),
        "{body}"
    );
    assert_eq!(server.get_json("/config").await["threshold"], 12);
    assert_eq!(
        status_with(&server, &client, ("host", &evil)).await,
        421,
        "reads too: the stream and snapshots are private"
    );
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("cam.lan:{port}"),
    ] {
        assert_eq!(
            status_with(&server, &client, ("host", &host)).await,
            200,
            "{host}"
        );
    }
    let health = client
        .get(server.url("/healthz"))
        .header("host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "/healthz stays open");
}

#[tokio::test]
async fn allow_host_flag_of_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--allow-host",
        "cam.lan,nas.lan",
        "--source",
        STILL,
    ];
    let mut bin = common::Binary::spawn(&args, dir.path());
    let url = bin.wait_for_url("http").await;
    let _child = bin.drain();
    let port = url.rsplit(':').next().unwrap();
    let client = client();
    let get = |host: String| {
        client
            .get(format!("{url}/status"))
            .header("host", host)
            .send()
    };
    assert_eq!(get(format!("nas.lan:{port}")).await.unwrap().status(), 200);
    assert_eq!(get(format!("CAM.lan:{port}")).await.unwrap().status(), 200);
    assert_eq!(
        get(format!("other.lan:{port}")).await.unwrap().status(),
        421
    );
}

#[tokio::test]
async fn with_sign_in_required_any_host_may_sign_in() {
    let server = secured().await;
    let host = format!("cam.example:{}", server.addr.port());
    let r = client()
        .get(server.url("/status"))
        .header("host", host)
        .basic_auth("owner", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// 4. Short passwords are refused from every source.

#[tokio::test]
async fn short_passwords_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "a\n").unwrap();
    let data = dir.path().join("data");
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let run = |extra: Vec<String>, env: Option<&'static str>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.args(base).args(extra).kill_on_drop(true);
        cmd.env_remove("LOOKOUT_PASSWORD");
        if let Some(p) = env {
            cmd.env("LOOKOUT_PASSWORD", p);
        }
        async move {
            tokio::time::timeout(Duration::from_secs(20), cmd.output())
                .await
                .expect("lookout exits instead of serving")
                .unwrap()
        }
    };
    let out = run(
        vec!["--password-file".into(), file.display().to_string()],
        None,
    )
    .await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("password file") && err.contains(&file.display().to_string()),
        "{err}"
    );
    assert!(err.contains("at least 8"), "{err}");
    for short in ["", "x", "seven77"] {
        let out = run(vec![], Some(short)).await;
        assert!(!out.status.success(), "{short:?} accepted");
        assert!(text(&out.stderr).contains("LOOKOUT_PASSWORD"), "{short:?}");
    }
}

// 5. A new password ends sessions and one-hour tokens, not long-lived ones.

#[tokio::test]
async fn passwd_ends_sessions_and_api_tokens_but_not_long_lived_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let out = lookout(&["--data-dir", &data, "passwd"], Some("first password 1\n")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lookout(&["--data-dir", &data, "token", "create", "ha"], Some("")).await;
    let long = text(&out.stdout).trim().to_string();
    let server = TestServer::start_with(STILL, dir, |c| c.require_auth = true).await;
    let client = client();
    let r = client
        .post(server.url("/login"))
        .form(&[("user", "owner"), ("pass", "first password 1")])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let api = client
        .post(server.url("/api/login"))
        .body(r#"{"user": "owner", "pass": "first password 1"}"#)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        status_with(&server, &client, ("cookie", &cookie)).await,
        200
    );
    assert_eq!(
        status_with(&server, &client, ("authorization", &bearer(&api))).await,
        200
    );

    let out = lookout(
        &["--data-dir", &data, "passwd"],
        Some("second password 2\n"),
    )
    .await;
    assert!(out.status.success());
    let said = text(&out.stderr);
    assert!(
        said.contains("ended 2") && said.contains("long-lived tokens stay"),
        "{said}"
    );
    assert_eq!(
        status_with(&server, &client, ("cookie", &cookie)).await,
        401
    );
    assert_eq!(
        status_with(&server, &client, ("authorization", &bearer(&api))).await,
        401
    );
    assert_eq!(
        status_with(&server, &client, ("authorization", &bearer(&long))).await,
        200
    );
    let r = client
        .get(server.url("/status"))
        .basic_auth("owner", Some("second password 2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the stored password applies at once");
}

#[tokio::test]
async fn a_different_password_at_start_ends_the_old_sessions() {
    let server = secured().await;
    let client = client();
    let cookie = sign_in(&server, &client).await;
    let dir = server.stop_keep_dir().await.dir;
    // Same password: the session survives the restart.
    let server = secured_in(dir).await;
    assert_eq!(
        status_with(&server, &client, ("cookie", &cookie)).await,
        200
    );
    let dir = server.stop_keep_dir().await.dir;
    let server = TestServer::start_with(STILL, dir, |c| {
        c.require_auth = true;
        c.password = Some("another password".into());
    })
    .await;
    assert_eq!(
        status_with(&server, &client, ("cookie", &cookie)).await,
        401
    );
}

#[tokio::test]
async fn sessions_command_lists_and_ends_sessions() {
    let server = secured().await;
    let client = client();
    let first = sign_in(&server, &client).await;
    let second = sign_in(&server, &client).await;
    let data = server.data_dir().to_str().unwrap().to_string();
    let out = lookout(&["--data-dir", &data, "sessions", "list"], Some("")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let ids: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(
        listed.lines().all(|l| l.contains("\tsession\t")),
        "{listed}"
    );
    // Ids are hashes, never the secret.
    assert!(!listed.contains(&first[16..28]) && !listed.contains(&second[16..28]));
    // The newest first: end it by its id.
    let out = lookout(
        &["--data-dir", &data, "sessions", "revoke", ids[0]],
        Some(""),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        status_with(&server, &client, ("cookie", &second)).await,
        401
    );
    assert_eq!(status_with(&server, &client, ("cookie", &first)).await, 200);
    let out = lookout(
        &["--data-dir", &data, "sessions", "revoke", "--all"],
        Some(""),
    )
    .await;
    assert!(out.status.success());
    assert_eq!(status_with(&server, &client, ("cookie", &first)).await, 401);
    let out = lookout(
        &["--data-dir", &data, "sessions", "revoke", "ffffff"],
        Some(""),
    )
    .await;
    assert!(!out.status.success(), "an unknown id is an error");
}

// 6. After sign-in, `next` is only ever a local path.

#[tokio::test]
async fn next_after_sign_in_stays_on_site_over_the_wire() {
    let server = secured().await;
    let client = client();
    for (next, to) in [
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\r\nSet-Cookie: x=1", "/"),
        ("/x//evil.example", "/"),
        ("/snaps?limit=2", "/snaps?limit=2"),
    ] {
        let r = client
            .post(server.url("/login"))
            .form(&[("user", "owner"), ("pass", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers()["location"], to, "{next:?}");
        assert!(r.headers().contains_key("set-cookie"), "{next:?}");
    }
    let page = client
        .get(server.url("/login?next=/%09/evil.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"name="next" value="/""#), "{page}");
}

// 7. Smaller fixes.

#[tokio::test]
async fn the_logout_cookie_is_secure_under_tls() {
    let server = TestServer::start_with(STILL, tempfile::tempdir().unwrap(), |c| {
        c.tls = Some(lookout::web::tls::TlsSource::SelfSigned);
        c.require_auth = true;
        c.password = Some(PASSWORD.into());
    })
    .await;
    let (code, _, headers) = curl_h2(&["-X", "POST", &server.url("/logout")]).await;
    assert_eq!(code, 303);
    let cookie = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(
        cookie.contains("Max-Age=0") && cookie.contains("Secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn authorization_schemes_are_case_insensitive() {
    let server = secured().await;
    let client = client();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("owner:{PASSWORD}"));
    let token = api_token(&server, &client).await;
    for value in [
        format!("basic {basic}"),
        format!("BASIC {basic}"),
        format!("bearer {token}"),
        format!("BEARER {token}"),
    ] {
        assert_eq!(
            status_with(&server, &client, ("authorization", &value)).await,
            200,
            "{value}"
        );
    }
}

#[tokio::test]
async fn logout_ends_a_one_hour_token_but_never_a_long_lived_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let out = lookout(&["--data-dir", &data, "token", "create", "ha"], Some("")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let long = format!("Bearer {}", text(&out.stdout).trim());
    let server = secured_in(dir).await;
    let client = client();
    let api = format!("Bearer {}", api_token(&server, &client).await);
    for token in [&long, &api] {
        let r = client
            .post(server.url("/logout"))
            .header("authorization", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
    }
    assert_eq!(
        status_with(&server, &client, ("authorization", &long)).await,
        200
    );
    assert_eq!(
        status_with(&server, &client, ("authorization", &api)).await,
        401
    );
}

#[tokio::test]
async fn data_dir_works_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = lookout(&["token", "create", "ha", "--data-dir", data], Some("")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim().len(), 64);
    assert!(Path::new(data).join("lookout.db").exists());
    let out = lookout(&["token", "list", "--data-dir", data], Some("")).await;
    assert!(
        text(&out.stdout).starts_with("ha\t"),
        "{}",
        text(&out.stdout)
    );
}
