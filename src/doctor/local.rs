//! The quick checks, on this machine only: the data directory, the listen
//! address, sign-in, the TLS files, and the programs `exec:` sources run.
//! Each takes well under a millisecond (a bind, a few file reads, a walk of
//! the PATH), so `lookout` runs the ones that do not duplicate its own start
//! errors at every start (see [`super::at_start`]).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::check::Check;
use crate::config::Config;
use crate::web::tls::TlsSource;

/// Free space below this is a warning: lookout deletes old snapshots and
/// clips at their limits, but a full disk stops recording and the database.
const LOW_SPACE: u64 = 1 << 30;

/// The data directory exists (or can be created) and takes a file (with
/// `probe`: a file is created, synced and removed in it, as at start), and
/// how much room is left on its disk.
pub(super) fn data_dir(dir: &Path, probe: bool) -> Check {
    let shown = dir.display();
    let fix = "make it writable by the user lookout runs as, or choose another with --data-dir";
    let existing = match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Check::fail(format!(
                "data directory {shown} is a file, not a folder; choose another with --data-dir"
            ))
        }
        Ok(_) => {
            let written = if probe {
                crate::datadir::check_writable(dir)
            } else {
                Ok(())
            };
            if let Err(e) = written {
                return Check::fail(format!(
                    "data directory {shown}: cannot write in it ({e}); {fix}"
                ));
            }
            dir.to_path_buf()
        }
        Err(_) => {
            // Created at start: the nearest folder that exists must take it.
            let Some(parent) = nearest_existing(dir) else {
                return Check::fail(format!("data directory {shown}: no part of it exists"));
            };
            if !parent.is_dir() {
                return Check::fail(format!(
                    "data directory {shown} cannot be created: {} is a file, not a folder; \
                     choose another with --data-dir",
                    parent.display()
                ));
            }
            let access = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
            if let Err(e) = rustix::fs::access(&parent, access) {
                return Check::fail(format!(
                    "data directory {shown} cannot be created: cannot write in {} ({}); {fix}",
                    parent.display(),
                    std::io::Error::from(e)
                ));
            }
            parent
        }
    };
    let created = if existing.as_path() == dir {
        "writable".to_string()
    } else if existing.as_path() == Path::new(".") {
        "will be created in the working directory".to_string()
    } else {
        format!("will be created in {}", existing.display())
    };
    match rustix::fs::statvfs(&existing) {
        Ok(st) if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) => Check::fail(
            format!("data directory {shown}: its disk is mounted read-only; {fix}"),
        ),
        Ok(st) => {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            if free < LOW_SPACE {
                Check::warn(format!(
                    "data directory {shown} {created}, but only {} free; snapshots, clips \
                     and the database stop when the disk is full: free some space or lower \
                     max_snaps_mb and max_clips_mb",
                    size(free)
                ))
            } else {
                Check::ok(format!(
                    "data directory {shown} {created}, {} free",
                    size(free)
                ))
            }
        }
        Err(e) => Check::ok(format!(
            "data directory {shown} {created} (free space unknown: {})",
            std::io::Error::from(e)
        )),
    }
}

/// The longest leading part of `path` that exists (`.` for a relative path
/// none of whose parts does).
fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .find(|p| p.symlink_metadata().is_ok())
        .map(Path::to_path_buf)
}

/// `bytes` as people read it: `12.3 GiB`.
pub(super) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `addr` can be bound now (it is bound, then let go). `what` names it:
/// `listen address` or `--redirect-http`.
pub(super) fn listen(what: &str, addr: SocketAddr, flag: &str) -> Result<(), Check> {
    let fail = |why: String| Check::fail(format!("{what} {addr}: {why}"));
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            let other = SocketAddr::new(addr.ip(), addr.port().wrapping_add(1).max(1024));
            Err(fail(format!(
                "the port is taken by another program (another lookout?); stop it, or \
                 choose another port, e.g. {flag} {other}"
            )))
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(fail(format!(
            "not allowed ({e}): ports below 1024 need root or CAP_NET_BIND_SERVICE; \
             use a port from 1024 up, e.g. {flag} {}",
            SocketAddr::new(addr.ip(), 8080)
        ))),
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => Err(fail(format!(
            "{} is not an address of this machine ({e}); use 0.0.0.0 for every address, \
             or 127.0.0.1 for this machine only",
            addr.ip()
        ))),
        Err(e) => Err(fail(format!("cannot listen: {e}"))),
    }
}

/// The listen address is free, and whether sign-in will be required.
pub(super) fn listen_and_sign_in(config: &Config) -> Check {
    if let Err(failed) = listen("listen address", config.listen, "--listen") {
        return failed;
    }
    let addr = config.listen;
    let port = if addr.port() == 0 {
        "any free port".to_string()
    } else {
        "free".to_string()
    };
    if !sign_in_required(config) {
        return Check::ok(format!(
            "listen address {addr} {port}; loopback only, so no sign-in (--require-auth to ask for one)"
        ));
    }
    let why = if addr.ip().is_loopback() {
        "--require-auth"
    } else {
        "not loopback"
    };
    if config.tls.is_none() {
        return Check::warn(format!(
            "listen address {addr} {port}; sign-in required ({why}), but over plain HTTP: \
             passwords, cookies and pictures cross the network in clear text; add \
             --tls-self-signed (or --tls-cert and --tls-key)"
        ));
    }
    Check::ok(format!(
        "listen address {addr} {port}; sign-in required ({why})"
    ))
}

fn sign_in_required(config: &Config) -> bool {
    config.require_auth || !config.listen.ip().is_loopback()
}

/// Where the password comes from, and that it will be taken (as
/// `auth::Auth::setup` will: LOOKOUT_PASSWORD, else the file, each at least
/// [`crate::auth::MIN_PASSWORD_CHARS`]).
pub(super) fn password(config: &Config) -> Check {
    use crate::auth::{AuthError, MIN_PASSWORD_CHARS};
    let (origin, given) = match (&config.password, &config.password_file) {
        (Some(p), _) => ("LOOKOUT_PASSWORD".to_string(), p.clone()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => (
                format!("password file {}", path.display()),
                text.trim_end_matches(['\r', '\n']).to_string(),
            ),
            Err(err) => {
                let e = AuthError::PasswordFile {
                    path: path.clone(),
                    err,
                };
                return Check::fail(format!(
                    "sign-in: {e}; check --password-file, or leave it out to use \
                     `lookout passwd`"
                ));
            }
        },
        (None, None) => {
            let what = if sign_in_required(config) {
                "the password stored with `lookout passwd`, or one generated and shown once \
                 at the first start"
            } else {
                "none needed on loopback; `lookout passwd` stores one"
            };
            return Check::ok(format!("sign-in: user {:?}, password: {what}", config.user));
        }
    };
    let chars = given.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        let e = AuthError::WeakGiven { origin, chars };
        return Check::fail(format!("sign-in: {e}"));
    }
    Check::ok(format!(
        "sign-in: user {:?}, password from {origin} ({chars} characters)",
        config.user
    ))
}

/// The TLS files are readable PEM and the certificate matches the key (by
/// loading them as the server does), or a self-signed pair will be made.
pub(super) fn tls(config: &Config) -> Check {
    let files = match &config.tls {
        None if config.listen.ip().is_loopback() => {
            return Check::skip("TLS: off (plain HTTP, on loopback only)")
        }
        None => return Check::skip("TLS: off (see the listen address above)"),
        Some(TlsSource::SelfSigned) => {
            let dir = config.data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !(cert.exists() && key.exists()) {
                return Check::ok(format!(
                    "TLS: a self-signed certificate will be generated into {} at the first start",
                    dir.display()
                ));
            }
            TlsSource::Files { cert, key }
        }
        Some(files) => files.clone(),
    };
    crate::install_crypto_provider();
    match crate::web::tls::load(&files, &config.data_dir, config.listen) {
        Ok(tls) => Check::ok(format!(
            "TLS: certificate {} matches its key (SHA-256 {})",
            tls.cert_path.display(),
            tls.fingerprint
        )),
        Err(e) => Check::fail(format!(
            "TLS: {e}; give a PEM certificate chain with --tls-cert and its private key \
             with --tls-key (readable by the user lookout runs as), or use --tls-self-signed"
        )),
    }
}

/// The programs an `exec:` command runs can be found, as `sh` would find
/// them.
pub(super) fn programs(camera: &str, command: &str) -> Check {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut found = Vec::new();
    for program in programs_in(command) {
        match locate(&program, &path) {
            Ok(at) => found.push(format!("{program} is {}", at.display())),
            Err(why) => {
                let install = if program == "ffmpeg" {
                    " (e.g. `apt install ffmpeg`)"
                } else {
                    ""
                };
                return Check::fail(format!(
                    "camera {camera}: the exec: command's program `{program}` {why}; \
                     install it{install} or give its full path"
                ));
            }
        }
    }
    if found.is_empty() {
        Check::skip(format!(
            "camera {camera}: the exec: command runs only shell builtins or variables; \
             nothing to find on the PATH"
        ))
    } else {
        Check::ok(format!("camera {camera}: {}", found.join(", ")))
    }
}

/// Where `program` is: itself when it has a `/`, else the first match on
/// `path`; or why it is not there.
fn locate(program: &str, path: &std::ffi::OsStr) -> Result<PathBuf, String> {
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return match std::fs::metadata(&p) {
            Ok(_) if runnable(&p) => Ok(p),
            Ok(_) => Err("is not an executable file".into()),
            Err(e) => Err(format!("cannot be found ({e})")),
        };
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
        .ok_or_else(|| {
            format!(
                "is not on the PATH ({})",
                std::env::join_paths(std::env::split_paths(path))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        })
}

/// Shell words that are not programs on the PATH.
const SHELL_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "in", "!", "{", "}", "exit", "cd", "export", "set", "unset", "return", "shift", "readonly",
    "eval", ".", ":", "trap", "true", "false", "echo", "printf", "test", "[", "read", "wait",
    "exec", "command", "local",
];

/// Words that run the program after them (with their own options).
const WRAPPERS: &[&str] = &["exec", "env", "nohup", "time", "command"];

/// The programs a `sh -c` command line starts: the first word of each
/// command of its pipelines and lists, after `VAR=value` assignments and
/// wrappers such as `exec` and `env`. Words the shell expands (`$X`) are left
/// out: their value is known only when it runs.
fn programs_in(command: &str) -> Vec<String> {
    let mut programs: Vec<String> = Vec::new();
    for words in simple_commands(command) {
        let mut words = words.iter().map(String::as_str).peekable();
        while words.peek().is_some_and(|w| is_assignment(w)) {
            words.next();
        }
        while words.peek().is_some_and(|w| WRAPPERS.contains(w)) {
            words.next();
            while words
                .peek()
                .is_some_and(|w| w.starts_with('-') || is_assignment(w))
            {
                words.next();
            }
        }
        let Some(program) = words.next() else {
            continue;
        };
        if program.is_empty()
            || program.contains('$')
            || program.starts_with(['<', '>'])
            || SHELL_WORDS.contains(&program)
        {
            continue;
        }
        if !programs.iter().any(|p| p == program) {
            programs.push(program.to_string());
        }
    }
    programs
}

/// `NAME=value`, as the shell takes it before a command.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// The words of each simple command of a shell line: split at unquoted
/// `|`, `;`, `&`, newlines, parentheses and backquotes (not the `&` of a
/// `2>&1`), quotes removed. Enough to find the programs, not a shell.
fn simple_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.get_or_insert_with(String::new).push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    word.get_or_insert_with(String::new);
                }
                '&' if matches!(prev, '>' | '<') => word.get_or_insert_with(String::new).push(c),
                '|' | ';' | '&' | '\n' | '(' | ')' | '`' => {
                    words.extend(word.take());
                    if !words.is_empty() {
                        commands.push(std::mem::take(&mut words));
                    }
                }
                c if c.is_whitespace() => words.extend(word.take()),
                c => word.get_or_insert_with(String::new).push(c),
            },
        }
        prev = c;
    }
    words.extend(word.take());
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_programs_of_a_command_line() {
        assert_eq!(programs_in("ffmpeg -i x -f mjpeg -"), ["ffmpeg"]);
        assert_eq!(
            programs_in("FOO=1 exec rpicam-vid -t 0 -o - | tee /tmp/x"),
            ["rpicam-vid", "tee"]
        );
        assert_eq!(
            programs_in("sleep 1; /opt/cam/run && cat"),
            ["sleep", "/opt/cam/run", "cat"]
        );
        assert_eq!(programs_in("env -i PATH=/bin 'my cam' -x"), ["my cam"]);
        // Separators inside quotes, and a redirection, are no commands.
        assert_eq!(
            programs_in("ffmpeg -i 'http://cam/s?a=1&b=2;c' -f mjpeg - 2>&1 | cat"),
            ["ffmpeg", "cat"]
        );
        assert!(programs_in("exit 1").is_empty());
        assert!(programs_in("$CAMERA --mjpeg").is_empty());
    }

    #[test]
    fn programs_are_found_or_named() {
        let path = std::ffi::OsString::from("/nonexistent:/bin:/usr/bin");
        assert!(locate("sh", &path).is_ok());
        let e = locate("no-such-command-xyz", &path).unwrap_err();
        assert!(
            e.contains("not on the PATH (/nonexistent:/bin:/usr/bin)"),
            "{e}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("cam");
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = locate(plain.to_str().unwrap(), &path).unwrap_err();
        assert!(e.contains("not an executable"), "{e}");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(13_207_024_435), "12.3 GiB");
    }

    #[test]
    fn a_data_directory_under_a_file_fails_even_for_root() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file.txt");
        std::fs::write(&file, "x").unwrap();
        let c = data_dir(&file.join("data"), true);
        assert_eq!(c.status, super::super::check::Status::Fail, "{}", c.text);
        assert!(c.text.contains("is a file, not a folder"), "{}", c.text);
        let c = data_dir(&file, true);
        assert!(c.text.contains("is a file, not a folder"), "{}", c.text);
        let c = data_dir(&tmp.path().join("new/data"), true);
        assert!(c.text.contains("will be created in"), "{}", c.text);
        assert!(
            !tmp.path().join("new").exists(),
            "the doctor creates nothing"
        );
        let c = data_dir(tmp.path(), true);
        assert!(
            c.text.contains("writable,") && c.text.contains("free"),
            "{}",
            c.text
        );
    }
}
