//! A real push service for the tests: npm's web-push-testing (pinned in
//! e2e/package.json, installed by scripts/test) on a free loopback port. It
//! subscribes like a browser, checks each push's VAPID token against the
//! subscription's applicationServerKey, decrypts the aes128gcm body, and
//! keeps the plaintexts for the test to read back.
//!
//! Its own `start` command daemonizes the server and keeps its pid in a
//! state folder under the working directory for `stop`, so a test that
//! panics in between would leave it running. Instead its server script runs
//! here as a child of the test, through a small preload that binds it to
//! 127.0.0.1 (it listens on every interface by default) and ends it when its
//! stdin closes, that is when the test process goes, however it goes.
//! Dropping a `PushService` kills it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The preload: loopback only, and gone with its parent.
const PRELOAD: &str = r#"
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, ...rest) {
  if (typeof port === 'number') {
    return listen.call(this, port, '127.0.0.1', ...rest);
  }
  return listen.call(this, port, ...rest);
};
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
"#;

/// A running web-push-testing; dropping it stops it.
pub struct PushService {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

/// Whether this run is CI's, where a missing tool is a failure.
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The service's server script, or why it cannot run.
fn server_script() -> Result<PathBuf, String> {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e");
    let bin = e2e.join("node_modules/.bin/web-push-testing");
    let script = e2e.join("node_modules/web-push-testing/src/bin/server.js");
    if !bin.exists() || !script.exists() {
        return Err(format!(
            "web-push-testing is not installed in {} (scripts/test runs npm ci there)",
            e2e.display()
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Err("node is not installed (Debian package nodejs)".into());
    }
    Ok(script)
}

impl PushService {
    /// A running service, or None when it is not installed (the test is
    /// skipped, said on stderr); with CI set, a missing tool fails the test.
    pub fn start_or_skip() -> Option<PushService> {
        match server_script() {
            Ok(script) => Some(Self::start_with(&script)),
            Err(why) if in_ci() => panic!("{why} (CI is set: a skip is a failure)"),
            Err(why) => {
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    fn start_with(script: &Path) -> PushService {
        lookout::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let preload = dir.path().join("loopback.cjs");
        std::fs::write(&preload, PRELOAD).expect("write preload");
        // A port that was free a moment ago; another if someone took it.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            if let Some(child) = run(script, &preload, dir.path(), port) {
                // Its subscriptions' endpoints are http://localhost:<port>;
                // pinned to the address it listens on, not whatever
                // localhost resolves to first.
                let client = reqwest::Client::builder()
                    .resolve("localhost", ([127, 0, 0, 1], port).into())
                    .timeout(Duration::from_secs(20))
                    .build()
                    .expect("client");
                return PushService {
                    port,
                    child,
                    dir,
                    client,
                };
            }
        }
        panic!("web-push-testing did not start");
    }

    /// A client for the service and its endpoints.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Subscribes like a browser with `application_server_key` (the VAPID
    /// public key): the PushSubscriptionJSON and the client hash that names
    /// the subscription in the other calls.
    pub async fn subscribe(&self, application_server_key: &str) -> (Value, String) {
        let reply = self
            .post_json(
                "/subscribe",
                json!({"applicationServerKey": application_server_key}),
            )
            .await;
        let mut data = reply["data"].clone();
        let hash = data["clientHash"]
            .as_str()
            .unwrap_or_else(|| panic!("no clientHash in {reply}"))
            .to_owned();
        if let Some(o) = data.as_object_mut() {
            o.remove("clientHash");
        }
        (data, hash)
    }

    /// The plaintexts the subscription got so far, oldest first.
    pub async fn messages(&self, client_hash: &str) -> Vec<String> {
        let reply = self
            .post_json("/get-notifications", json!({"clientHash": client_hash}))
            .await;
        serde_json::from_value(reply["data"]["messages"].clone())
            .unwrap_or_else(|e| panic!("messages in {reply}: {e}"))
    }

    /// Waits until the subscription has `count` messages (a push sent in
    /// the background arrives some time later); returns them.
    pub async fn wait_for_messages(&self, client_hash: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.messages(client_hash).await;
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{count} push messages expected, got {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the subscription as a browser that unsubscribed: pushes to it
    /// are answered 410 Gone.
    pub async fn expire(&self, client_hash: &str) {
        let r = self
            .client
            .post(self.url(&format!("/expire-subscription/{client_hash}")))
            .send()
            .await
            .expect("expire");
        assert_eq!(r.status(), 200, "expire {client_hash}");
    }

    /// Sends one push request as built by `request`: status and body.
    pub async fn send(&self, push: &lookout::push::webpush::PushRequest) -> (u16, String) {
        let r = push.to_reqwest(&self.client).send().await.expect("push");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    async fn post_json(&self, path: &str, body: Value) -> Value {
        let r = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, 200, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = self.dir.path().join("service.log");
        if std::thread::panicking() {
            if let Ok(text) = std::fs::read_to_string(log) {
                eprintln!("web-push-testing said:\n{text}");
            }
        }
    }
}

/// Starts the server on `port`; None if it could not listen there (the
/// port was taken). Its stdout says when it listens: a connection alone
/// could reach another process that took the port first.
fn run(script: &Path, preload: &Path, dir: &Path, port: u16) -> Option<Child> {
    let log = dir.join("service.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut child = Command::new("node")
        .arg("--require")
        .arg(preload)
        .arg(script)
        .arg(port.to_string())
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("node starts");
    let said = format!("Server running on port {port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&said)) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    panic!("web-push-testing did not listen on {port} within 30 s:\n{text}");
}
