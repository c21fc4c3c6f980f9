//! `lookout doctor`: checks a configuration without serving, one line per
//! check, each failure with what to do about it.
//!
//! It reads the same flags, environment and `--config` file as `lookout`
//! (it is a subcommand of the same command line), then checks:
//! - the config file: it parses and every key is known, with the nearest
//!   known key for a typo (`keys.rs`);
//! - the data directory takes a file, and its free space; the listen
//!   address is free, and whether sign-in is required; the password; the
//!   TLS files; the programs `exec:` sources run are on the PATH
//!   (`local.rs`: the quick checks);
//! - each camera gives a frame within 10 s, through the real source code;
//!   the MQTT broker accepts the credentials; the person model loads
//!   (`remote.rs`: the slow checks, run side by side).
//!
//! It changes nothing: the data directory is not created (only a probe file
//! is written in it and removed, as at every start), no self-signed
//! certificate is generated, the store is not opened.
//!
//! `lookout` itself runs the quick checks that its own start errors do not
//! already cover at every start ([`at_start`]) and logs their warnings; a
//! config that does not load gets the same "did you mean" ([`explain`]).
//!
//! Nothing shown holds a secret: source URIs go through `redact`, source
//! errors are already redacted by the source's own `Redactor`, the broker
//! is shown without its password, and config errors are shown by message
//! and line, never by the text of the line (which may hold a password).

mod check;
mod keys;
mod local;
mod notify;
mod remote;
mod stream;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use futures_util::stream::{FuturesOrdered, StreamExt};

use crate::config::{Cli, Config, ConfigError};
use crate::console::print_line;
use crate::source::SourceSpec;

pub use check::{Check, Status};
pub use keys::{unknown_keys, UnknownKey};

/// Runs `lookout doctor` for the options in `cli`, printing each check as
/// it is known; an error (exit status 1) when any failed.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    // HTTPS sources, TLS files and mqtts:// use it, as in the server.
    crate::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut shown = Vec::new();
        let mut show = |check: Check| -> anyhow::Result<()> {
            print_line(format_args!("{check}"))?;
            shown.push(check.status);
            Ok(())
        };
        let (config_checks, config) = load_config(cli);
        for check in config_checks {
            show(check)?;
        }
        match config {
            Some(config) => {
                let (quick, slow) = checks(&config);
                for check in quick {
                    show(check)?;
                }
                let mut slow = slow;
                while let Some(check) = slow.next().await {
                    show(check)?;
                }
            }
            None => show(Check::skip(
                "the other checks: they need a configuration that loads",
            ))?,
        }
        let count = |s: Status| shown.iter().filter(|&&x| x == s).count();
        let (failed, warned) = (count(Status::Fail), count(Status::Warn));
        let warnings = match warned {
            0 => String::new(),
            1 => ", 1 warning (WARN: lookout runs, but see the advice)".into(),
            n => format!(", {n} warnings (WARN: lookout runs, but see the advice)"),
        };
        if failed > 0 {
            // On stderr, as every error of the binary.
            anyhow::bail!("{failed} of {} checks failed{warnings}", shown.len());
        }
        print_line(format_args!("all checks passed{warnings}"))?;
        Ok(())
    })
}

/// Checks under way, yielded in the order they were pushed.
type Pending<'a> = FuturesOrdered<Pin<Box<dyn Future<Output = Check> + Send + 'a>>>;

/// The quick checks (their outcomes) and the slow ones (under way, in the
/// order they are to be shown) for a configuration that loads.
fn checks(config: &Config) -> (Vec<Check>, Pending<'_>) {
    let mut quick = vec![
        local::data_dir(&config.data_dir, true),
        local::listen_and_sign_in(config),
        local::password(config),
        local::tls(config),
        notify::web_push(config),
    ];
    if let (Some(addr), Some(_)) = (config.redirect_http, &config.tls) {
        quick.push(
            match local::listen("--redirect-http", addr, "--redirect-http") {
                Ok(()) => Check::ok(format!("--redirect-http {addr} free")),
                Err(failed) => failed,
            },
        );
    }
    let mut slow = Pending::new();
    for camera in &config.cameras {
        // The programs a camera needs: its exec: command's, or the
        // decoder of an rtsp:// stream. Without them it is not started.
        let needs = match &camera.source {
            SourceSpec::Exec { command } => Some((
                local::programs(&camera.name, command),
                "its program is missing",
            )),
            _ => stream::decoder(camera).map(|found| (found, "ffmpeg is missing")),
        };
        if let Some((found, why)) = needs {
            let missing = found.status == Status::Fail;
            quick.push(found);
            if missing {
                let name = camera.name.clone();
                slow.push_back(Box::pin(async move {
                    Check::skip(format!("camera {name}: not started, {why} (above)"))
                }));
                continue;
            }
        }
        slow.push_back(Box::pin(remote::camera(camera)));
        if camera.detect_source.is_some() {
            slow.push_back(Box::pin(stream::main_stream(camera)));
        }
    }
    slow.push_back(match &config.mqtt {
        Some(mqtt) => Box::pin(remote::mqtt(mqtt)),
        None => Box::pin(async { Check::skip("MQTT: off (no --mqtt-url)") }),
    });
    slow.push_back(Box::pin(notify::ntfy(config)));
    slow.push_back(Box::pin(remote::person(&config.cameras)));
    (quick, slow)
}

/// The config checks: the file reads, is TOML, and every key in it is
/// known; then the whole configuration loads. With the configuration, when
/// it does.
fn load_config(cli: &Cli) -> (Vec<Check>, Option<Config>) {
    let mut checks = Vec::new();
    let text = cli
        .config
        .as_deref()
        .map(|path| (path, std::fs::read_to_string(path)));
    if let Some((path, read)) = &text {
        let shown = path.display();
        match read {
            Err(e) => checks.push(Check::fail(format!(
                "config file {shown}: cannot read it ({e}); check the path given to \
                 --config or LOOKOUT_CONFIG"
            ))),
            Ok(text) => match unknown_keys(text) {
                Err(e) => checks.push(Check::fail(format!(
                    "config file {shown}: not valid TOML: {}",
                    toml_error(&e, text)
                ))),
                Ok(unknown) => {
                    for key in unknown {
                        checks.push(Check::fail(format!("config file {shown}: {key}")));
                    }
                }
            },
        }
    }
    match Config::from_cli(cli) {
        Ok(config) => {
            let source = match &cli.config {
                Some(path) => format!("config file {} loads, every key known", path.display()),
                None => "config: no file (no --config), flags and environment only".into(),
            };
            let cameras: Vec<&str> = config.cameras.iter().map(|c| c.name.as_str()).collect();
            checks.push(Check::ok(format!(
                "{source}; {} camera(s): {}",
                cameras.len(),
                cameras.join(", ")
            )));
            (checks, Some(config))
        }
        // A file that did not read or parse is said above already.
        Err(_) if !checks.is_empty() => (checks, None),
        Err(e) => {
            let text = match (&e, &text) {
                (ConfigError::Parse { path, err }, Some((_, Ok(text)))) => {
                    format!("config file {}: {}", path.display(), toml_error(err, text))
                }
                _ => e.to_string().replace('\n', " "),
            };
            checks.push(Check::fail(text));
            (checks, None)
        }
    }
}

/// A TOML error as one line, `line N: what`, without the text of the line
/// (toml's own message quotes it, and it may hold a password).
fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// What `lookout` logs at start: the quick checks its own start errors do
/// not cover already, as warnings (the data directory's free space, the
/// programs of `exec:` sources, a taken --redirect-http port). Cheap: a
/// statvfs, a walk of the PATH, a bind; no file is written.
pub fn at_start(config: &Config) {
    let mut checks = vec![local::data_dir(&config.data_dir, false)];
    for camera in &config.cameras {
        if let SourceSpec::Exec { command } = &camera.source {
            checks.push(local::programs(&camera.name, command));
        }
    }
    if let (Some(addr), Some(_)) = (config.redirect_http, &config.tls) {
        if let Err(failed) = local::listen("--redirect-http", addr, "--redirect-http") {
            checks.push(failed);
        }
    }
    for check in checks {
        match check.status {
            Status::Warn | Status::Fail => tracing::warn!("{}", check.text),
            Status::Ok | Status::Skip => tracing::debug!("{}", check.text),
        }
    }
}

/// `err`, from loading the configuration in `cli`, with a "did you mean"
/// for each unknown key of the config file (as `lookout doctor` says it).
pub fn explain(cli: &Cli, err: ConfigError) -> anyhow::Error {
    let hints: Vec<String> = cli
        .config
        .as_deref()
        .and_then(|path| Some((path, std::fs::read_to_string(path).ok()?)))
        .and_then(|(path, text)| Some((path, unknown_keys(&text).ok()?)))
        .map(|(path, keys)| keys.iter().map(|k| hint_line(path, k)).collect())
        .unwrap_or_default();
    if hints.is_empty() {
        anyhow::Error::new(err)
    } else {
        anyhow::anyhow!("{err}\n{}", hints.join("\n"))
    }
}

fn hint_line(path: &Path, key: &UnknownKey) -> String {
    format!("{}: {key}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("lookout").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn lines_have_a_status_column() {
        assert_eq!(Check::ok("a").to_string(), "ok    a");
        assert_eq!(Check::fail("b\u{1b}[2J").to_string(), "FAIL  b\\u{1b}[2J");
    }

    #[test]
    fn config_errors_are_one_line_without_the_file_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        let f = file.to_str().unwrap();
        std::fs::write(
            &file,
            "[mqtt]\nurl = \"mqtt://u@b\"\npassword = \"s3cret-pw\n",
        )
        .unwrap();
        let (checks, config) = load_config(&cli(&["--config", f]));
        assert!(config.is_none());
        assert_eq!(checks.len(), 1, "{checks:?}");
        let line = checks[0].to_string();
        assert!(
            line.starts_with("FAIL  config file") && line.contains("line 3:"),
            "{line}"
        );
        assert!(!line.contains("s3cret") && !line.contains('\n'), "{line}");

        std::fs::write(&file, "[settings]\nthreshhold = 30\n").unwrap();
        let (checks, _) = load_config(&cli(&["--config", f]));
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert!(
            checks[0].text.ends_with("did you mean `threshold`?"),
            "{checks:?}"
        );
        let err = Config::from_cli(&cli(&["--config", f])).unwrap_err();
        let e = explain(&cli(&["--config", f]), err).to_string();
        assert!(
            e.contains("unknown setting: threshhold")
                && e.contains(
                    "line 2: unknown key `threshhold` in [settings]; did you mean `threshold`?"
                ),
            "{e}"
        );

        let (checks, config) = load_config(&cli(&["--listen", "nowhere"]));
        assert!(config.is_none());
        assert!(
            checks[0].text.contains("bad address \"nowhere\""),
            "{checks:?}"
        );
        let (checks, config) = load_config(&cli(&["--source", "synthetic"]));
        assert!(config.is_some());
        assert_eq!(checks[0].status, Status::Ok, "{checks:?}");
    }
}
