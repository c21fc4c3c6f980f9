//! Checks that the documentation stays true to the code (test builds only):
//! every relative link in `README.md`, `docs/` and `bench/` leads to a file
//! (and a `#heading` to a heading), and every config key, flag, environment
//! variable, subcommand and HTTP route the code declares is in
//! `docs/reference/`.
//!
//! The keys come from the same serde probe as `lookout service-config` and
//! the doctor's "did you mean" ([`crate::conffile::file_keys`]); the flags
//! from clap's declaration of [`Cli`]; the routes from the router's source
//! (`.route("...` in `src/web/`), since axum cannot list a router's routes.
//! So a key or a route added to the code without a line in the reference
//! fails here, with no second list to keep in step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::conffile::file_keys;
use crate::config::{Cli, FileCamera, FileMqtt};
use crate::settings::Settings;

/// The crate's folder: the docs are read from the source tree.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every `.md` file under `dir`, recursively.
fn markdown_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            markdown_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The Markdown files whose links are checked.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    markdown_under(&root().join("docs"), &mut files);
    markdown_under(&root().join("bench"), &mut files);
    files
}

/// `text` without fenced code blocks and inline code spans, where `](`
/// is code, not a link.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if fenced {
            out.push('\n');
            continue;
        }
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of the inline links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let text = prose(text);
    let mut targets = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let inner = &rest[..end];
        // `[a](<b c>)` holds spaces; `[a](b "title")`: the first word.
        let target = match inner.strip_prefix('<') {
            Some(quoted) => quoted.split('>').next().unwrap_or(""),
            None => inner.split_whitespace().next().unwrap_or(""),
        };
        targets.push(target.to_string());
        rest = &rest[end..];
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap_or(c)),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings, with GitHub's `-1`, `-2`
/// for repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if fenced || hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim());
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// What is wrong with the relative links of `file`, one line each.
fn broken_links(file: &Path) -> Vec<String> {
    let text = read(file);
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file.strip_prefix(root()).unwrap_or(file).display();
    let mut broken = Vec::new();
    for target in link_targets(&text) {
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target.as_str(), None),
        };
        let linked = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !linked.exists() {
            broken.push(format!("{name}: {target}: no such file"));
            continue;
        }
        if let Some(anchor) = anchor {
            if linked.extension().is_some_and(|e| e == "md")
                && !anchors(&read(&linked)).contains(anchor)
            {
                broken.push(format!("{name}: {target}: no such heading"));
            }
        }
    }
    broken
}

/// The reference page `name` under `docs/reference/`.
fn reference(name: &str) -> String {
    read(&root().join("docs/reference").join(name))
}

/// The first cells of the table rows of `text` (`| `key` | ... |` gives
/// "`key`"), where a key counts as documented.
fn first_cells(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('|'))
        .filter_map(|l| l.split('|').next())
        .collect()
}

/// The routes of `src` (`.route("PATH", get(..).post(..))`), as
/// "METHOD PATH".
fn routes_in(src: &str) -> Vec<String> {
    let mut routes = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(\"") {
        rest = &rest[i + ".route(\"".len()..];
        let Some(end) = rest.find('"') else { break };
        let path = &rest[..end];
        // The call's arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let call_end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let call = &rest[end..call_end];
        for method in ["get", "post", "put", "patch", "delete", "head"] {
            let called = call.match_indices(&format!("{method}(")).any(|(at, _)| {
                !call[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if called {
                routes.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    routes
}

#[test]
fn every_relative_link_resolves() {
    let files = documents();
    assert!(files.len() > 5, "{files:?}");
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn links_and_anchors_are_read_as_github_does() {
    assert_eq!(
        slug("Recovering from a damaged database"),
        "recovering-from-a-damaged-database"
    );
    assert_eq!(slug("`[mqtt]` table: MQTT_5"), "mqtt-table-mqtt_5");
    let text = "# A\n## A\n```\n# not a heading\n```\n";
    assert_eq!(
        anchors(text),
        BTreeSet::from(["a".to_string(), "a-1".to_string()])
    );
    assert_eq!(
        link_targets("see [x](a.md#b) and `[y](code.md)`, [z](<c d.md> \"t\")"),
        ["a.md#b", "c d.md"]
    );
    // A missing file and a missing heading are both caught.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(dir.path().join("there.md"), "# Here\n").unwrap();
    std::fs::write(
        &page,
        "[ok](there.md#here) [no](gone.md) [nohead](there.md#away) [self](#top)\n# Top\n",
    )
    .unwrap();
    let broken = broken_links(&page);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].ends_with("gone.md: no such file"), "{broken:?}");
    assert!(
        broken[1].ends_with("there.md#away: no such heading"),
        "{broken:?}"
    );
}

#[test]
fn every_config_key_flag_and_variable_is_in_the_reference() {
    let text = reference("config.md");
    let cells = first_cells(&text);
    let keys: Vec<&str> = [
        file_keys::<Cli>(),
        file_keys::<Settings>(),
        file_keys::<FileMqtt>(),
        file_keys::<FileCamera>(),
    ]
    .concat();
    assert!(keys.contains(&"listen") && keys.contains(&"threshold"));
    let mut missing: Vec<String> = keys
        .iter()
        .filter(|k| !cells.iter().any(|c| c.contains(&format!("`{k}`"))))
        .map(|k| format!("key {k}"))
        .collect();
    let command = Cli::command();
    for arg in command.get_arguments() {
        if let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l)) {
            if !text.contains(&format!("`--{long}`")) {
                missing.push(format!("flag --{long}"));
            }
        }
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            if !text.contains(&format!("`{env}`")) {
                missing.push(format!("variable {env}"));
            }
        }
    }
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        if !text.contains(&format!("`lookout {}", sub.get_name())) {
            missing.push(format!("command lookout {}", sub.get_name()));
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/reference/config.md:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_route_is_in_the_reference() {
    let text = reference("http.md");
    let dir = root().join("src/web");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "rs") {
            routes.extend(routes_in(&read(&entry.path())));
        }
    }
    assert!(
        routes.contains("GET /snapshot.jpg") && routes.contains("DELETE /snaps/{name}"),
        "{routes:?}"
    );
    // `GET /stream.jpg` is documented as `GET /stream.jpg[?fps=N]`.
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| {
            !text
                .match_indices(&format!("`{r}"))
                .any(|(at, m)| text[at + m.len()..].starts_with(['`', '?', '[']))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/reference/http.md: {missing:?}"
    );
}

#[test]
fn routes_are_read_with_their_methods() {
    let src = r#"Router::new()
        .route("/config", get(api::get_config).post(api::post_config))
        .route("/snaps/{name}", get(snaps::get).delete(snaps::delete))
        .route("/logout", post(login::logout))"#;
    assert_eq!(
        routes_in(src),
        [
            "GET /config",
            "POST /config",
            "GET /snaps/{name}",
            "DELETE /snaps/{name}",
            "POST /logout"
        ]
    );
}
