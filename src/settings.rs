//! Settings that can change while the server runs (the seed's `state` dict).
//!
//! All runtime settings and their validation live here, so `POST /config`, the
//! WebSocket `set` command and the persisted store agree on one set of rules.
//! A patch is validated as a whole before anything changes: a bad key leaves
//! every setting as it was.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;

/// Default motion threshold, in percent of the picture (the seed's value).
pub const DEFAULT_THRESHOLD: u8 = 12;

/// Keys that `GET /config` shows but that no client may set.
const READ_ONLY: &[&str] = &["trigger_count", "frame_count", "ok"];

/// The runtime-changeable settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Motion threshold: percent of the picture that must change (0..=100).
    pub threshold: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// Why a settings patch was refused. The message is shown to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Returns these settings with `patch` applied, or the first problem found.
    /// `patch` must be a JSON object of setting names to values; an empty patch
    /// gets the seed's `missing threshold`.
    pub fn patched(&self, patch: &Value) -> Result<Settings, SettingsError> {
        let obj = match patch {
            Value::Object(obj) => obj,
            Value::Null => return Err(SettingsError("missing threshold".into())),
            _ => return Err(SettingsError("config must be a JSON object".into())),
        };
        if obj.is_empty() {
            return Err(SettingsError("missing threshold".into()));
        }
        let mut next = self.clone();
        for (key, value) in obj {
            next.apply_one(key, value)?;
        }
        Ok(next)
    }

    /// Applies a patch given as a map (the WebSocket `set` command minus its
    /// `cmd` and `id` keys).
    pub fn patched_map(&self, patch: Map<String, Value>) -> Result<Settings, SettingsError> {
        self.patched(&Value::Object(patch))
    }

    fn apply_one(&mut self, key: &str, value: &Value) -> Result<(), SettingsError> {
        match key {
            "threshold" => self.threshold = int_in_range(key, value, 0, 100)? as u8,
            k if READ_ONLY.contains(&k) => {
                return Err(SettingsError(format!("{k} is read-only")));
            }
            other => return Err(SettingsError(format!("unknown setting: {other}"))),
        }
        Ok(())
    }

    /// The settings as a JSON object (for `/config` and replies).
    pub fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

/// Reads an integer setting. Whole-number floats (`40.0`, as JavaScript may
/// send) are accepted; strings and booleans are not, unlike the seed's `int()`.
fn int_in_range(key: &str, value: &Value, min: i64, max: i64) -> Result<i64, SettingsError> {
    let n = match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    };
    let n = n.ok_or_else(|| SettingsError(format!("{key} must be an integer")))?;
    if n < min || n > max {
        return Err(SettingsError(format!("{key} out of range")));
    }
    Ok(n)
}

/// The live settings, shared by every part that reads them; changes are
/// observable through [`SettingsHandle::subscribe`].
#[derive(Clone)]
pub struct SettingsHandle {
    tx: Arc<watch::Sender<Settings>>,
}

impl SettingsHandle {
    /// Starts from `initial`.
    pub fn new(initial: Settings) -> Self {
        SettingsHandle {
            tx: Arc::new(watch::channel(initial).0),
        }
    }

    /// The current settings.
    pub fn get(&self) -> Settings {
        self.tx.borrow().clone()
    }

    /// Validates `patch` against the current settings and applies it at once.
    pub fn apply(&self, patch: &Value) -> Result<Settings, SettingsError> {
        let mut result = Err(SettingsError("missing threshold".into()));
        self.tx.send_if_modified(|current| {
            result = current.patched(patch);
            match &result {
                Ok(next) if next != current => {
                    *current = next.clone();
                    true
                }
                _ => false,
            }
        });
        result
    }

    /// A receiver that wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<Settings> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(patch: Value) -> String {
        Settings::default().patched(&patch).unwrap_err().0
    }

    #[test]
    fn seed_messages() {
        assert_eq!(err(json!({})), "missing threshold");
        assert_eq!(err(Value::Null), "missing threshold");
        assert_eq!(
            err(json!({"threshold": "40"})),
            "threshold must be an integer"
        );
        assert_eq!(
            err(json!({"threshold": true})),
            "threshold must be an integer"
        );
        assert_eq!(
            err(json!({"threshold": 4.5})),
            "threshold must be an integer"
        );
        assert_eq!(err(json!({"threshold": 101})), "threshold out of range");
        assert_eq!(err(json!({"threshold": -1})), "threshold out of range");
    }

    #[test]
    fn unknown_and_read_only_keys() {
        assert_eq!(err(json!({"nope": 1})), "unknown setting: nope");
        assert_eq!(
            err(json!({"trigger_count": 0})),
            "trigger_count is read-only"
        );
        assert_eq!(err(json!([1])), "config must be a JSON object");
    }

    #[test]
    fn valid_patch_applies() {
        let s = Settings::default()
            .patched(&json!({"threshold": 40.0}))
            .unwrap();
        assert_eq!(s.threshold, 40);
        let s = s.patched(&json!({"threshold": 0})).unwrap();
        assert_eq!(s.threshold, 0);
    }

    #[test]
    fn handle_leaves_settings_unchanged_on_error() {
        let h = SettingsHandle::new(Settings::default());
        assert!(h.apply(&json!({"threshold": 50, "bogus": 1})).is_err());
        assert_eq!(h.get().threshold, DEFAULT_THRESHOLD);
        assert_eq!(h.apply(&json!({"threshold": 50})).unwrap().threshold, 50);
        assert_eq!(h.get().threshold, 50);
    }
}
