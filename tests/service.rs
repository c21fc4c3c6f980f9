//! lookout as a system service: the Debian package scripts/package makes
//! (its files, its unit checked offline by systemd-analyze, lintian, an
//! install and purge with dpkg as root), and the sd_notify protocol the unit's
//! `Type=notify` and `WatchdogSec=` rely on, against a real socket.
//!
//! A file of its own: no other test binary packages or speaks to systemd.
//! Process 1 here need not be systemd, so nothing runs `systemctl`.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Binary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whether a missing tool skips a test (on a developer's machine) or fails
/// it (with CI set, as scripts/test says).
fn skip(why: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI is set: a skip is a failure)");
    }
    eprintln!("skipped: {why}");
    true
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Purges the package when dropped, so a failed assertion leaves no user
/// or service data behind.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "lookout"]).output();
    }
}

#[test]
fn the_package_holds_the_service_and_installs_and_purges_cleanly() {
    for tool in ["cargo-deb", "dpkg-deb", "systemd-analyze", "lintian"] {
        if !have(tool)
            && skip(&format!(
                "{tool} is not installed (scripts/test installs it)"
            ))
        {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/package"))
            .args([
                "--fast",
                "--binary",
                env!("CARGO_BIN_EXE_lookout"),
                "--output",
            ])
            .arg(&out),
    );
    let deb = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let name = deb.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with(&format!("lookout_{}-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for file in [
        "./usr/bin/lookout",
        "./usr/lib/systemd/system/lookout.service",
        "./etc/lookout/lookout.toml",
        "./usr/share/doc/lookout/copyright",
        "./usr/share/doc/lookout/README.md",
        "./usr/share/doc/lookout/docs/guide/install.md",
        "./usr/share/doc/lookout/docs/reference/config.md",
        "./usr/share/doc/lookout/docs/design/architecture.md",
    ] {
        assert!(listing.contains(file), "no {file} in\n{listing}");
    }

    // The unit, offline: verified (with ExecStart pointing at the extracted
    // binary, since none is installed here) and rated.
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let conffile = std::fs::read_to_string(root.join("etc/lookout/lookout.toml")).unwrap();
    assert!(conffile.contains("\ndata_dir = \"/var/lib/lookout\"\n"));
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/lookout.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "CapabilityBoundingSet=\n",
        "User=lookout",
    ] {
        assert!(unit.contains(line), "{line}");
    }
    let checked = dir.path().join("lookout.service");
    let binary = root.join("usr/bin/lookout");
    std::fs::write(
        &checked,
        unit.replace(
            "ExecStart=/usr/bin/lookout",
            &format!("ExecStart={}", binary.display()),
        ),
    )
    .unwrap();
    let verify = run(Command::new("systemd-analyze").arg("verify").arg(&checked));
    assert!(
        verify.trim().is_empty(),
        "systemd-analyze verify:\n{verify}"
    );
    let security = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&checked));
    let score: f64 = security
        .lines()
        .find_map(|l| l.split("lookout.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in\n{security}"));
    assert!(score <= 2.0, "exposure {score} above 2.0:\n{security}");

    let lint = Command::new("lintian").arg(&deb).output().unwrap();
    let lint = String::from_utf8_lossy(&lint.stdout).to_string();
    let errors: Vec<&str> = lint.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{lint}");

    // Install and purge: root only.
    if rustix::process::geteuid().as_raw() != 0 {
        skip("not root: dpkg cannot install the package");
        return;
    }
    let known = Command::new("dpkg")
        .args(["-s", "lookout"])
        .output()
        .unwrap();
    if known.status.success() && skip("a lookout package is installed here already") {
        return;
    }
    let installed = Installed;
    run(Command::new("dpkg").arg("-i").arg(&deb));
    let groups = run(Command::new("id").args(["-nG", "lookout"]));
    assert!(groups.split_whitespace().any(|g| g == "video"), "{groups}");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let data = std::fs::metadata("/var/lib/lookout").unwrap();
    assert_eq!(data.permissions().mode() & 0o7777, 0o700);
    let uid = run(Command::new("id").args(["-u", "lookout"]));
    assert_eq!(data.uid().to_string(), uid.trim());
    assert!(Path::new("/etc/lookout/lookout.toml").is_file());
    // `lookout passwd` as the service's user finds the service's data
    // through the installed config file.
    let mut passwd = Command::new("runuser")
        .args(["-u", "lookout", "--", "/usr/bin/lookout", "passwd"])
        .current_dir("/")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    passwd
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let said = passwd.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&said.stderr).to_string() + &String::from_utf8_lossy(&said.stdout);
    assert!(
        said.contains("password stored in /var/lib/lookout"),
        "{said}"
    );

    run(Command::new("dpkg").args(["--purge", "lookout"]));
    drop(installed);
    let user = Command::new("getent")
        .args(["passwd", "lookout"])
        .output()
        .unwrap();
    assert!(
        !user.status.success(),
        "the lookout user outlived the purge"
    );
    assert!(!Path::new("/var/lib/lookout").exists());
    assert!(!Path::new("/etc/lookout/lookout.toml").exists());
}

/// Receives notifications until one equals `want` (or `limit` passes).
async fn expect(socket: &tokio::net::UnixDatagram, want: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, socket.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {want} within {limit:?}"))
            .unwrap();
        if &buf[..n] == want.as_bytes() {
            return;
        }
    }
}

#[tokio::test]
async fn ready_then_watchdog_pings_only_while_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
    let data = dir.path().join("data");
    // A 1 s watchdog: pings every 0.5 s. Two connection places: two stream
    // viewers take them all. The second camera's source is down (nothing
    // listens on port 9): it retries, which must not stop the pings.
    let mut lookout = Binary::spawn_with_env(
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
            ("JOURNAL_STREAM", "8:12345"),
        ],
        &[
            "--listen",
            "127.0.0.1:0",
            "--camera",
            "cam=synthetic:?size=320x240&fps=5",
            "--camera",
            "gone=http://127.0.0.1:9/stream",
            "--max-connections",
            "2",
        ],
        &data,
    );
    // Under the journal the log has no timestamps of its own.
    let serving = lookout
        .wait_for("the serving line", |l| {
            l.contains("serving").then(|| l.to_string())
        })
        .await;
    assert!(serving.trim_start().starts_with("INFO"), "{serving:?}");
    let addr = serving
        .split("at http://")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('/')
        .to_string();
    expect(&socket, "READY=1", Duration::from_secs(20)).await;
    expect(&socket, "WATCHDOG=1", Duration::from_secs(10)).await;
    lookout
        .wait_for("the gone camera failing", |l| {
            l.contains("source http://127.0.0.1:9/stream stopped")
                .then_some(())
        })
        .await;
    expect(&socket, "WATCHDOG=1", Duration::from_secs(10)).await;

    // Every place held by a viewer: the server answers no one else.
    // The watchdog's own probe may hold a place for a moment: a viewer
    // turned away then (its connection closed at once) tries again.
    let mut viewers = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while viewers.len() < 2 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(format!("GET /stream.jpg HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut head = [0u8; 12];
        match s.read_exact(&mut head).await {
            Ok(_) => {
                assert_eq!(&head, b"HTTP/1.1 200");
                viewers.push(s);
            }
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no place for a viewer: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    lookout
        .wait_for("the watchdog giving up", |l| {
            l.contains("watchdog: not pinging").then_some(())
        })
        .await;
    let mut buf = [0u8; 256];
    while socket.try_recv(&mut buf).is_ok() {}
    // Three ping periods with no ping (the assertion's own window).
    let quiet = tokio::time::timeout(Duration::from_millis(1500), async {
        loop {
            let n = socket.recv(&mut buf).await.unwrap();
            if &buf[..n] == b"WATCHDOG=1" {
                return;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "pinged while no client could connect");

    // Places free again: pings again.
    drop(viewers);
    expect(&socket, "WATCHDOG=1", Duration::from_secs(10)).await;
}
