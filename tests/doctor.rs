//! `lookout doctor`, as the real binary, against each kind of failure with
//! real sockets (a taken port, a camera answering 401, a broker refusing
//! the password: Debian's mosquitto), a data directory that cannot be
//! created, a missing program, a config typo, TLS files that do not match;
//! and an all-pass run with the synthetic scene and a real ffmpeg. Plus the
//! same quick checks and "did you mean" from `lookout` itself at start.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::broker::{Broker, PASSWORD, USER};
use common::STILL;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A doctor run: exit code, standard output (the check lines), standard error.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    /// The first line that starts with `start`, or a panic showing all.
    fn line(&self, start: &str) -> &str {
        self.out
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{}{}", self.out, self.err))
    }

    /// Every line of output, for messages.
    fn all(&self) -> String {
        format!("{}{}", self.out, self.err)
    }
}

/// `lookout ARGS doctor` with `env` added to a clean environment (no
/// LOOKOUT_* of the test's own, no RUST_LOG).
async fn doctor(args: &[&str], env: &[(&str, &str)]) -> Run {
    lookout_with(args, Some("doctor"), env).await
}

/// `lookout doctor` on loopback (any free port), with the data folder `dir`
/// and one `--camera NAME=SOURCE` for each of `cameras`.
async fn doctor_cameras(dir: &str, cameras: &[(&str, &str)]) -> Run {
    let specs: Vec<String> = cameras.iter().map(|(n, s)| format!("{n}={s}")).collect();
    let mut args = vec!["--listen", "127.0.0.1:0", "--data-dir", dir];
    for spec in &specs {
        args.extend(["--camera", spec.as_str()]);
    }
    doctor(&args, &[]).await
}

async fn lookout_with(args: &[&str], subcommand: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOOKOUT_") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("RUST_LOG")
        .args(args)
        .args(subcommand)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("doctor ends within 60 s")
        .expect("lookout runs");
    Run {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn data_dir(tmp: &Path) -> String {
    tmp.join("data").display().to_string()
}

#[tokio::test]
async fn all_pass_with_the_synthetic_scene_and_ffmpeg() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not-yet");
    let ffmpeg = "exec:ffmpeg -loglevel error -re -f lavfi -i testsrc=size=320x240:rate=10 \
                  -c:v mjpeg -f mjpeg -";
    let run = doctor_cameras(dir.to_str().unwrap(), &[("yard", STILL), ("door", ffmpeg)]).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.out.ends_with("all checks passed\n"), "{}", run.all());
    assert!(!run.out.contains("FAIL"), "{}", run.all());
    run.line("ok    config: no file");
    let line = run.line("ok    data directory");
    assert!(
        line.contains("will be created in") && line.contains("free"),
        "{line}"
    );
    assert!(!dir.exists(), "the doctor creates nothing");
    run.line("ok    listen address 127.0.0.1:0 any free port; loopback only, so no sign-in");
    let line = run.line("ok    camera door: ffmpeg is /");
    assert!(line.ends_with("/ffmpeg"), "{line}");
    for (camera, size) in [("yard", "160x120"), ("door", "320x240")] {
        let kind = format!(" gives {size} MJPEG (baseline, colour) at ");
        let line = run
            .out
            .lines()
            .find(|l| l.starts_with(&format!("ok    camera {camera}: ")) && l.contains(&kind))
            .unwrap_or_else(|| panic!("no {kind:?} for {camera} in:\n{}", run.all()));
        let fps: f64 = line
            .rsplit(" at ")
            .next()
            .and_then(|r| r.strip_suffix(" fps"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no rate in {line}"));
        assert!((2.0..20.0).contains(&fps), "about 10 fps: {line}");
    }
    run.line("skip  MQTT: off");
    if lookout::person::AVAILABLE {
        run.line("ok    person check: model loaded");
    } else {
        run.line("skip  person check: not in this build");
    }
}

#[tokio::test]
async fn a_taken_port_is_named_with_another_to_use() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = doctor(
        &[
            "--listen",
            &addr,
            "--data-dir",
            &data_dir(tmp.path()),
            "--source",
            STILL,
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let line = run.line(&format!("FAIL  listen address {addr}: the port is taken"));
    assert!(line.contains("e.g. --listen 127.0.0.1:"), "{line}");
    assert!(run.err.contains("1 of "), "{}", run.all());
    // The other checks still ran.
    run.line("ok    camera cam: ");
}

#[tokio::test]
async fn sign_in_is_said_off_loopback_and_with_require_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let base = ["--data-dir", &dir, "--source", STILL];
    let run = doctor(&[&base[..], &["--listen", "0.0.0.0:0"]].concat(), &[]).await;
    // Plain HTTP off loopback is a warning, not a failure.
    assert_eq!(run.code, Some(0), "{}", run.all());
    let line =
        run.line("WARN  listen address 0.0.0.0:0 any free port; sign-in required (not loopback)");
    assert!(line.contains("--tls-self-signed"), "{line}");
    assert!(run.out.contains("1 warning"), "{}", run.all());
    let run = doctor(
        &[
            &base[..],
            &[
                "--listen",
                "127.0.0.1:0",
                "--require-auth",
                "--tls-self-signed",
            ],
        ]
        .concat(),
        &[("LOOKOUT_PASSWORD", "short")],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    run.line("ok    listen address 127.0.0.1:0 any free port; sign-in required (--require-auth)");
    let line = run.line("FAIL  sign-in: the password from LOOKOUT_PASSWORD has 5 character(s)");
    assert!(!line.contains("short"), "{line}");
    run.line("ok    TLS: a self-signed certificate will be generated into");
}

/// Root writes in a folder whatever its mode, so a data directory that
/// cannot be made is one under a regular file (`file.txt/data`): that
/// fails for root too (ENOTDIR).
#[tokio::test]
async fn a_data_directory_under_a_file_fails_even_for_root() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file.txt");
    std::fs::write(&file, "not a folder").unwrap();
    let dir = file.join("data");
    let run = doctor(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            "--source",
            STILL,
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let line = run.line("FAIL  data directory");
    assert!(
        line.contains(&format!("{} is a file, not a folder", file.display()))
            && line.contains("--data-dir"),
        "{line}"
    );
}

/// A camera on loopback that answers every request 401, as one does to a
/// wrong password; counts the requests that carried credentials.
async fn camera_answering_401() -> (SocketAddr, tokio::sync::watch::Receiver<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(0usize);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                if text.contains("\r\nauthorization: basic ") {
                    tx.send_modify(|n| *n += 1);
                }
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\
                          Content-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn a_camera_answering_401_is_told_to_add_or_check_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let (addr, with_credentials) = camera_answering_401().await;
    let bare = format!("http://{addr}/stream");
    let with_password = format!("http://admin:camsecret99@{addr}/stream");
    let run = doctor_cameras(&dir, &[("yard", &bare), ("door", &with_password)]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let line = run.line("FAIL  camera yard: ");
    assert_eq!(
        line,
        format!(
            "FAIL  camera yard: {bare}: answered HTTP 401 Unauthorized; put user:password@ in \
             the URL (http://user:password@cam/...) or check them"
        )
    );
    let line = run.line("FAIL  camera door: ");
    assert!(
        line.contains(&format!(
            "http://admin:***@{addr}/stream: answered HTTP 401"
        )) && line.ends_with("check the user name and password in the URL"),
        "{line}"
    );
    assert!(!run.all().contains("camsecret99"), "{}", run.all());
    assert!(
        *with_credentials.borrow() >= 1,
        "the URL's credentials were sent"
    );
}

#[tokio::test]
async fn rtsp_cameras_are_described_and_a_wrong_password_or_path_explained() {
    let cam = common::rtsp::RtspCamera::start(&[
        "--user",
        "admin",
        "--password",
        "pony99",
        "--main",
        "640x360@10",
    ])
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let good = cam.url_as("admin", "pony99", "sub");
    let wrong = cam.url_as("admin", "zebra77", "sub");
    let missing = cam.url_as("admin", "pony99", "nothere");
    let run = doctor_cameras(
        &dir,
        &[("yard", &good), ("door", &wrong), ("gate", &missing)],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let all = run.all();
    assert!(
        !all.contains("pony99") && !all.contains("zebra77"),
        "a password shows: {all}"
    );
    let line = run
        .out
        .lines()
        .find(|l| l.starts_with("ok    camera yard: ") && l.contains(" sends "))
        .unwrap_or_else(|| panic!("no stream described for yard in:\n{all}"));
    assert!(line.contains("sends H.264"), "{line}");
    assert!(line.contains("decoded to 640x360"), "{line}");
    let line = run.line("FAIL  camera door: ");
    assert!(line.contains("401"), "{line}");
    let line = run.line("FAIL  camera gate: ");
    assert!(line.contains("404"), "{line}");
}

#[tokio::test]
async fn a_missing_command_is_named_and_its_camera_not_started() {
    let tmp = tempfile::tempdir().unwrap();
    let run = doctor(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir(tmp.path()),
            "--source",
            "exec:no-such-command-xyz --mjpeg -o - | cat",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let line = run.line(
        "FAIL  camera cam: the exec: command's program `no-such-command-xyz` is not on the PATH (",
    );
    assert!(line.ends_with("install it or give its full path"), "{line}");
    run.line("skip  camera cam: not started, its program is missing (above)");
}

#[tokio::test]
async fn a_command_that_writes_no_mjpeg_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    // Forgot `-c:v mjpeg -f mjpeg`: raw pictures, 2.3 MB a second.
    let raw = "exec:ffmpeg -loglevel error -re -f lavfi -i testsrc=size=320x240:rate=10 \
               -pix_fmt rgb24 -f rawvideo -";
    let exits = "exec:ffmpeg -loglevel error -i /nonexistent/clip.mp4 -f mjpeg -";
    let started = std::time::Instant::now();
    let run = doctor_cameras(&data_dir(tmp.path()), &[("raw", raw), ("gone", exits)]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let line = run.line("FAIL  camera gone: command exited (exit status: ");
    assert!(
        line.contains("/nonexistent/clip.mp4: No such file or directory")
            && line.ends_with("run the command in a terminal to see why it stops"),
        "{line}"
    );
    let line = run.line("FAIL  camera raw: ");
    assert!(
        line.contains(" sent no picture within 10 s, only data that is not JPEG (")
            && line.ends_with("the command must write MJPEG to its standard output, e.g. ffmpeg ... -c:v mjpeg -f mjpeg -"),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the cameras are checked side by side, 10 s at most each"
    );
}

#[tokio::test]
async fn config_typos_get_did_you_mean_from_doctor_and_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nmax_viewer = 3\n\n[settings]\nthreshhold = 30\n\n\
         [mqtt]\nurl = \"mqtt://ha@127.0.0.1\"\npasword = \"brokersecret7\"\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let dir = data_dir(tmp.path());
    let run = doctor(&["--config", config, "--data-dir", &dir], &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let shown = file.display();
    assert_eq!(
        run.out.lines().collect::<Vec<_>>(),
        [
            format!("FAIL  config file {shown}: line 2: unknown key `max_viewer`; did you mean `max_viewers`?"),
            format!("FAIL  config file {shown}: line 5: unknown key `threshhold` in [settings]; did you mean `threshold`?"),
            format!("FAIL  config file {shown}: line 9: unknown key `pasword` in [mqtt]; did you mean `password`?"),
            "skip  the other checks: they need a configuration that loads".to_string(),
        ]
    );
    assert!(run.err.contains("3 of 4 checks failed"), "{}", run.all());

    // A key in the wrong table, on its own.
    std::fs::write(&file, "threshhold = 30\n").unwrap();
    let run = doctor(&["--config", config, "--data-dir", &dir], &[]).await;
    run.line("FAIL  config file");
    assert!(
        run.out.contains(
            "line 1: unknown key `threshhold`; did you mean `threshold` in the [settings] table?"
        ),
        "{}",
        run.all()
    );

    // `lookout` itself stops with the same advice, before listening.
    std::fs::write(
        &file,
        "[settings]\nthreshhold = 30\n[mqtt]\npassword = \"brokersecret7\"\n",
    )
    .unwrap();
    let run = lookout_with(&["--config", config, "--data-dir", &dir], None, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.err.contains("unknown setting: threshhold")
            && run.err.contains(&format!("{shown}: line 2: unknown key `threshhold` in [settings]; did you mean `threshold`?")),
        "{}",
        run.all()
    );
    assert!(!run.all().contains("brokersecret7"), "{}", run.all());
}

#[tokio::test]
async fn tls_files_must_be_readable_and_match() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str| {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = tmp.path().join(format!("{name}-cert.pem"));
        let key = tmp.path().join(format!("{name}-key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        (cert, key)
    };
    let (a_cert, a_key) = write("a");
    let (_, b_key) = write("b");
    let dir = data_dir(tmp.path());
    let tls = |cert: &PathBuf, key: &PathBuf| {
        vec![
            "--listen".to_string(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.clone(),
            "--source".into(),
            STILL.into(),
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ]
    };
    let args = tls(&a_cert, &a_key);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = doctor(&args, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    run.line(&format!(
        "ok    TLS: certificate {} matches its key (SHA-256 ",
        a_cert.display()
    ));

    let args = tls(&a_cert, &b_key);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = doctor(&args, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    run.line("FAIL  TLS: certificate and key do not work together");

    let args = tls(&tmp.path().join("missing.pem"), &a_key);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = doctor(&args, &[]).await;
    let line = run.line("FAIL  TLS: ");
    assert!(
        line.contains("missing.pem: No such file or directory"),
        "{line}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test]
async fn the_broker_is_reached_and_the_password_checked() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let url = format!("mqtt://{USER}@127.0.0.1:{}", broker.port);
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &dir,
        "--source",
        STILL,
        "--mqtt-url",
        &url,
    ];

    let run = doctor(&args, &[("LOOKOUT_MQTT_PASSWORD", "wrong password 42")]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let line = run.line(&format!(
        "FAIL  MQTT {url}: the broker refused user \"lookout\""
    ));
    assert!(line.contains("wrong user name or password"), "{line}");
    assert!(!run.all().contains("wrong password 42"), "{}", run.all());

    let run = doctor(&args, &[("LOOKOUT_MQTT_PASSWORD", PASSWORD)]).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    run.line(&format!(
        "ok    MQTT {url}: connected, user \"lookout\" accepted"
    ));
    // Its own client id, no last will to publish, and a clean goodbye.
    let log = broker.log();
    assert!(log.contains(" as lookout-doctor-"), "{log}");
    assert!(log.contains("No will message specified."), "{log}");
    assert!(
        log.contains("Received DISCONNECT from lookout-doctor-"),
        "{log}"
    );

    // Nothing listening at all.
    let closed = format!("mqtt://{USER}@127.0.0.1:{}", free_port());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &dir,
        "--source",
        STILL,
        "--mqtt-url",
        &closed,
    ];
    let run = doctor(&args, &[]).await;
    let line = run.line(&format!("FAIL  MQTT {closed}: "));
    assert!(
        line.contains("Connection refused") && line.contains("is the broker running"),
        "{line}"
    );
}

#[tokio::test]
async fn lookout_logs_the_quick_checks_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lookout = common::Binary::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--camera",
            "yard=exec:no-such-command-xyz -o -",
            "--camera",
            &format!("door={STILL}"),
        ],
        &tmp.path().join("data"),
    );
    let line = lookout
        .wait_for("the missing program", |l| {
            l.contains(
                "camera yard: the exec: command's program `no-such-command-xyz` is not on the PATH",
            )
            .then(|| l.to_string())
        })
        .await;
    assert!(line.contains("WARN"), "{line}");
    // And it goes on to serve.
    lookout.wait_for_url("http").await;
}
