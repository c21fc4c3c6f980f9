//! Unknown keys in the config file, each with the known key nearest to it
//! ("did you mean `threshold`?").
//!
//! The config is read with serde's `deny_unknown_fields`, which stops at the
//! first unknown key and cannot know that `threshold` belongs in
//! `[settings]`. Here the file is walked as plain TOML instead, table by
//! table, against the keys each table takes. Those lists come from the
//! types themselves (see [`fields_of`]), so a key added to [`Cli`] or
//! [`Settings`] is known here without a second list to keep in step.

use serde::Deserialize;

use crate::config::{Cli, FileCamera, FileMqtt};
use crate::serverwide::ServerSettings;
use crate::settings::Settings;

/// One key the file has but no table takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The table it is in, as written in the file: empty for the top
    /// level, `[settings]`, `[mqtt]`, `[[camera]] 2`, `[[camera]] 2 settings`.
    pub table: String,
    /// The key.
    pub key: String,
    /// Its line in the file (1-based), when found.
    pub line: Option<usize>,
    /// What to write instead, ready to follow "unknown key `x`; ".
    pub hint: Option<String>,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "unknown key `{}`", self.key)?;
        if !self.table.is_empty() {
            write!(f, " in {}", self.table)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// A key lookout knows, where it goes.
struct Known {
    /// How it would be misspelt in this table (`mqtt_url` for `[mqtt]`'s `url`).
    spelt: String,
    /// The key itself.
    key: &'static str,
    /// Its table, when not the one being read (`[settings]`).
    elsewhere: Option<&'static str>,
}

/// The unknown keys of a config file's `text`, in the order of the file's
/// tables; an error if it is not TOML at all.
pub fn unknown_keys(text: &str) -> Result<Vec<UnknownKey>, toml::de::Error> {
    let doc: toml::Table = toml::from_str(text)?;
    let settings = fields_of::<Settings>();
    let top: Vec<Known> = here(fields_of::<Cli>())
        .chain(settings.iter().map(|k| Known {
            spelt: k.to_string(),
            key: k,
            elsewhere: Some("[settings]"),
        }))
        .chain(fields_of::<FileMqtt>().iter().map(|k| Known {
            spelt: format!("mqtt_{k}"),
            key: k,
            elsewhere: Some("[mqtt]"),
        }))
        .collect();
    let mut found = Vec::new();
    let mut check = |table: &str, path: &[&str], t: &toml::Table, known: &[Known]| {
        for key in t.keys() {
            if !known.iter().any(|k| k.elsewhere.is_none() && k.key == key) {
                found.push(UnknownKey {
                    table: table.to_string(),
                    key: key.clone(),
                    line: find_line(text, path, key),
                    hint: suggest(key, known),
                });
            }
        }
    };
    check("", &[], &doc, &top);
    // The server-wide keys are still taken in a settings table, where an
    // older lookout had them (with a warning at start to move them).
    let settings_keys: Vec<Known> = here(settings)
        .chain(here(fields_of::<ServerSettings>()))
        .collect();
    if let Some(toml::Value::Table(t)) = doc.get("settings") {
        check("[settings]", &["settings"], t, &settings_keys);
    }
    if let Some(toml::Value::Table(t)) = doc.get("mqtt") {
        check(
            "[mqtt]",
            &["mqtt"],
            t,
            &here(fields_of::<FileMqtt>()).collect::<Vec<_>>(),
        );
    }
    if let Some(toml::Value::Array(cameras)) = doc.get("camera") {
        let camera_keys: Vec<Known> = here(fields_of::<FileCamera>()).collect();
        for (i, camera) in cameras.iter().enumerate() {
            let toml::Value::Table(t) = camera else {
                continue;
            };
            let name = format!("[[camera]] {}", i + 1);
            check(&name, &["camera"], t, &camera_keys);
            if let Some(toml::Value::Table(s)) = t.get("settings") {
                let table = format!("{name} settings");
                check(&table, &["camera", "settings"], s, &settings_keys);
            }
        }
    }
    Ok(found)
}

fn here(keys: &'static [&'static str]) -> impl Iterator<Item = Known> {
    keys.iter().map(|k| Known {
        spelt: k.to_string(),
        key: k,
        elsewhere: None,
    })
}

/// The known key nearest to `key`, as advice; none when nothing is near.
fn suggest(key: &str, known: &[Known]) -> Option<String> {
    let typed = key.to_ascii_lowercase().replace('-', "_");
    let (distance, best) = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&typed, &k.spelt), k))
        .min_by_key(|(d, _)| *d)?;
    // A third of the word, at most 3 edits: `threshhold` finds `threshold`,
    // `colour` finds nothing.
    if distance > (key.chars().count() / 3).clamp(1, 3) {
        return None;
    }
    Some(match (distance, best.elsewhere) {
        (0, Some(table)) => format!("`{}` goes in the {table} table", best.key),
        (_, Some(table)) => format!("did you mean `{}` in the {table} table?", best.key),
        (_, None) => format!("did you mean `{}`?", best.key),
    })
}

/// The first line of `text` that sets `key` in the table at `path` (`[]`
/// for the top level, `["camera", "settings"]` for `[camera.settings]`).
/// Plain `key = ...` lines only: good enough to point at a typo.
fn find_line(text: &str, path: &[&str], key: &str) -> Option<usize> {
    let mut table: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let name = header.split(']').next().unwrap_or("");
            table = name
                .split('.')
                .map(|p| p.trim().trim_matches(['"', '\'']).to_string())
                .collect();
            continue;
        }
        let Some((left, _)) = line.split_once('=') else {
            continue;
        };
        if left.trim().trim_matches(['"', '\'']) == key
            && table.len() == path.len()
            && table.iter().zip(path).all(|(a, b)| a == b)
        {
            return Some(i + 1);
        }
    }
    None
}

/// The keys serde takes for `T` (the same probe writes the shipped config
/// file, see [`crate::conffile::file_keys`]).
fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    crate::conffile::file_keys::<T>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lists_come_from_the_types() {
        let cli = fields_of::<Cli>();
        assert!(cli.contains(&"listen") && cli.contains(&"camera") && cli.contains(&"settings"));
        // Flag-only options are no file keys.
        for flag_only in ["config", "cameras", "detect_sources", "mqtt_url", "command"] {
            assert!(!cli.contains(&flag_only), "{flag_only} in {cli:?}");
        }
        let settings = fields_of::<Settings>();
        assert!(settings.contains(&"threshold") && settings.contains(&"person_check"));
        assert_eq!(
            fields_of::<FileCamera>(),
            ["name", "source", "detect_source", "settings"]
        );
        assert!(fields_of::<FileMqtt>().contains(&"password"));
    }

    fn hints(text: &str) -> Vec<String> {
        unknown_keys(text)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn typos_get_the_nearest_key_and_their_line() {
        assert_eq!(
            hints("listen = \"0.0.0.0:80\"\n\n[settings]\nthreshhold = 30\n"),
            ["line 4: unknown key `threshhold` in [settings]; did you mean `threshold`?"]
        );
        assert_eq!(
            hints("threshhold = 30\n"),
            ["line 1: unknown key `threshhold`; did you mean `threshold` in the [settings] table?"]
        );
        assert_eq!(
            hints("cooldown_s = 3\nmqtt_url = \"mqtt://b\"\n"),
            [
                "line 1: unknown key `cooldown_s`; `cooldown_s` goes in the [settings] table",
                "line 2: unknown key `mqtt_url`; `url` goes in the [mqtt] table",
            ]
        );
        assert_eq!(
            hints("max_viewer = 3\n[mqtt]\nurl = \"mqtt://b\"\npasword = \"x\"\n"),
            [
                "line 1: unknown key `max_viewer`; did you mean `max_viewers`?",
                "line 4: unknown key `pasword` in [mqtt]; did you mean `password`?",
            ]
        );
        let text = "[[camera]]\nname = \"a\"\nsource = \"synthetic\"\n\n[[camera]]\n\
                    name = \"b\"\nsorce = \"synthetic\"\n[camera.settings]\ncooldwn_s = 2\n";
        assert_eq!(
            hints(text),
            [
                "line 7: unknown key `sorce` in [[camera]] 2; did you mean `source`?",
                "line 9: unknown key `cooldwn_s` in [[camera]] 2 settings; did you mean `cooldown_s`?",
            ]
        );
        // Nothing near: no guess.
        assert_eq!(hints("colour = 1\n"), ["line 1: unknown key `colour`"]);
        assert!(hints("listen = \"127.0.0.1:1\"\n[settings]\nthreshold = 3\n").is_empty());
        // The server-wide keys at the top level, and where they were.
        let text = "events_max = 500\nevents_max_age_days = 3\nsse_keepalive_s = 5\n\
                    [settings]\nevents_max = 600\n[[camera]]\nname = \"a\"\n\
                    source = \"synthetic\"\n[camera.settings]\nsse_keepalive_s = 2\n";
        assert!(hints(text).is_empty(), "{:?}", hints(text));
        assert_eq!(
            hints("event_max = 500\n"),
            ["line 1: unknown key `event_max`; did you mean `events_max`?"]
        );
        assert!(unknown_keys("listen = \n").is_err());
    }
}
