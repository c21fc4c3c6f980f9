//! Server-wide settings: what belongs to the server, not to one camera.
//!
//! The event history (how many events, how many days), the SSE keepalive and
//! the viewer and subscriber caps are one for the whole server: every camera
//! writes into the one history, and `/events` streams carry every camera's
//! events. So they are set at the top level of the config file (or by their
//! flags), owned by the [`Hub`](crate::hub::Hub) through [`ServerWide`], and
//! never read through "the first camera".
//!
//! Clients still see and change the three runtime ones where they always
//! did: `/config` shows them beside a camera's settings, and a `POST
//! /config` or `set` may mix them with a camera's keys. [`ServerWide::apply`]
//! is the one place that splits such a patch, validates it whole (a bad
//! value changes nothing), stores both parts in one transaction and
//! announces the result. The caps are fixed at start (they size the
//! server's descriptors, see `descriptors`).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::cam::{ApplyError, Cam, ConfigBody};
use crate::events::EventKind;
use crate::settings::{self, int_in_range, Settings, SettingsError};
use crate::store::{Store, StoreError};

/// Store key of the server-wide settings changed at run time (beside the
/// cameras' `camera.NAME.settings`).
pub(crate) const KEY: &str = "server.settings";

/// The server-wide settings a client may change at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Seconds between SSE keepalive comments (proxies drop idle streams).
    pub sse_keepalive_s: u32,
    /// Most events kept in the history.
    pub events_max: u32,
    /// Days an event is kept in the history.
    pub events_max_age_days: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            sse_keepalive_s: 15,
            events_max: 10_000,
            events_max_age_days: 30,
        }
    }
}

impl ServerSettings {
    /// Their keys, as in `/config` and the config file's top level.
    pub const KEYS: [&'static str; 3] = ["sse_keepalive_s", "events_max", "events_max_age_days"];

    /// Whether `key` is one of them.
    pub fn is_key(key: &str) -> bool {
        Self::KEYS.contains(&key)
    }

    /// These settings with the keys of `patch` applied, or the first
    /// problem found; an empty patch changes nothing. Every key must be one
    /// of [`ServerSettings::KEYS`].
    pub fn patched(&self, patch: &Map<String, Value>) -> Result<ServerSettings, SettingsError> {
        let mut next = *self;
        for (key, value) in patch {
            next.apply_one(key, value)?;
        }
        Ok(next)
    }

    /// The same ranges as when they were a camera's settings.
    fn apply_one(&mut self, key: &str, value: &Value) -> Result<(), SettingsError> {
        match key {
            "sse_keepalive_s" => self.sse_keepalive_s = int_in_range(key, value, 1, 300)? as u32,
            "events_max" => self.events_max = int_in_range(key, value, 100, 10_000_000)? as u32,
            "events_max_age_days" => {
                self.events_max_age_days = int_in_range(key, value, 1, 3650)? as u32
            }
            other => return Err(SettingsError(format!("unknown setting: {other}"))),
        }
        Ok(())
    }

    /// Settings saved by an earlier run over these; a key that is unknown
    /// or invalid now is skipped with a warning, so the server still starts.
    pub fn merged_leniently(&self, saved: &Map<String, Value>) -> ServerSettings {
        let mut next = *self;
        for (key, value) in saved {
            if let Err(e) = next.apply_one(key, value) {
                tracing::warn!("ignoring saved server setting {key}: {e}");
            }
        }
        next
    }

    /// The settings as a JSON object (for `/config`, replies and the store).
    pub fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// How long an event is kept, seconds.
    pub fn max_age_s(&self) -> f64 {
        f64::from(self.events_max_age_days) * 86_400.0
    }

    /// How long an idle SSE stream waits before a keepalive comment.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(u64::from(self.sse_keepalive_s.max(1)))
    }
}

/// Takes the server-wide keys out of `table`, a camera's settings (a patch,
/// a config file's `[settings]`, a saved camera's JSON), and returns them.
pub fn take_server_keys(table: &mut Map<String, Value>) -> Map<String, Value> {
    let mut taken = Map::new();
    for key in ServerSettings::KEYS {
        if let Some(value) = table.remove(key) {
            taken.insert(key.to_string(), value);
        }
    }
    taken
}

/// The viewer and subscriber caps: from the flags or the file, fitted to
/// the open-file limit at start, never changed at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Most `/stream.jpg` viewers at once, over every camera.
    pub max_viewers: usize,
    /// Most `/events` subscribers at once.
    pub max_sse: usize,
}

/// `GET /config` of a camera: its settings and counters, and the
/// server-wide settings beside them (where they were when they were the
/// camera's; the JSON clients see did not change).
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    /// The camera's settings and counters.
    #[serde(flatten)]
    pub camera: ConfigBody,
    /// The server's.
    #[serde(flatten)]
    pub server: ServerSettings,
}

impl ConfigView {
    /// As a JSON object (to add `ok` in replies, or a camera in events).
    pub fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

/// The server-wide settings of a running server: the hub holds them.
pub struct ServerWide {
    /// The runtime settings now.
    current: RwLock<Arc<ServerSettings>>,
    /// The caps, fixed at start.
    caps: Caps,
    /// Where changes are kept.
    store: Store,
    /// Serialises changes with their persistence, so the stored value is
    /// always the last one. Every settings change takes it (they are rare),
    /// before the camera's settings lock, never after.
    change: Mutex<()>,
}

impl ServerWide {
    /// `initial` (from the configuration) with the changes saved by an
    /// earlier run over it, and `caps`.
    pub async fn load(
        store: Store,
        initial: ServerSettings,
        caps: Caps,
    ) -> Result<ServerWide, StoreError> {
        let settings = match store.get(KEY).await? {
            Some(text) => match serde_json::from_str::<Map<String, Value>>(&text) {
                Ok(saved) => initial.merged_leniently(&saved),
                Err(e) => {
                    tracing::warn!("ignoring unreadable saved server settings: {e}");
                    initial
                }
            },
            None => initial,
        };
        Ok(ServerWide {
            current: RwLock::new(Arc::new(settings)),
            caps,
            store,
            change: Mutex::new(()),
        })
    }

    /// The runtime settings now.
    pub fn settings(&self) -> ServerSettings {
        // Plain values, always whole: a poisoned lock is still good to read.
        **self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The viewer and subscriber caps.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// `GET /config` of `cam`.
    pub fn config(&self, cam: &Cam) -> ConfigView {
        ConfigView {
            camera: cam.config_body(),
            server: self.settings(),
        }
    }

    /// Applies a settings patch given for `cam`: its server-wide keys to
    /// the server, the others to the camera. The whole patch is validated
    /// before anything changes; both parts are stored in one transaction,
    /// then `cam` announces its `config` event. Returns the view the change
    /// produced (for the reply).
    pub async fn apply(&self, cam: &Cam, patch: &Value) -> Result<ConfigView, ApplyError> {
        let mut camera_part = settings::patch_object(patch)?.clone();
        let server_part = take_server_keys(&mut camera_part);
        let guard = self.change.lock().await;
        let server = self.settings().patched(&server_part)?;
        let change = cam.check_settings(&camera_part).await?;
        let mut state: Vec<(String, String)> = change.saved().into_iter().collect();
        if !server_part.is_empty() {
            state.push((KEY.to_string(), Value::Object(server.to_json()).to_string()));
        }
        self.store.set_many(state).await?;
        if !server_part.is_empty() {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(server);
        }
        let applied: Settings = cam.commit_settings(change).await;
        drop(guard);
        cam.announce(EventKind::Config, &self.config(cam)).await;
        Ok(ConfigView {
            camera: cam.config_body_with(applied),
            server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn same_ranges_as_before() {
        let s = ServerSettings::default();
        let err = |v: Value| s.patched(&map(v)).unwrap_err().0;
        assert_eq!(err(json!({"events_max": 99})), "events_max out of range");
        assert_eq!(
            err(json!({"events_max_age_days": 3651})),
            "events_max_age_days out of range"
        );
        assert_eq!(
            err(json!({"sse_keepalive_s": 0})),
            "sse_keepalive_s out of range"
        );
        assert_eq!(
            err(json!({"sse_keepalive_s": "5"})),
            "sse_keepalive_s must be an integer"
        );
        assert_eq!(err(json!({"threshold": 5})), "unknown setting: threshold");
        let next = s
            .patched(&map(json!({"events_max": 100, "sse_keepalive_s": 300})))
            .unwrap();
        assert_eq!((next.events_max, next.sse_keepalive_s), (100, 300));
        assert_eq!(s.patched(&Map::new()).unwrap(), s);
    }

    #[test]
    fn server_keys_are_taken_out_of_a_camera_table() {
        let mut table = map(json!({"threshold": 5, "events_max": 500, "sse_keepalive_s": 2}));
        let taken = take_server_keys(&mut table);
        assert_eq!(Value::Object(table), json!({"threshold": 5}));
        assert_eq!(
            Value::Object(taken),
            json!({"events_max": 500, "sse_keepalive_s": 2})
        );
    }

    #[test]
    fn saved_settings_merge_leniently() {
        let saved = map(json!({"events_max": 500, "events_max_age_days": 0, "gone": 1}));
        let s = ServerSettings::default().merged_leniently(&saved);
        assert_eq!(s.events_max, 500);
        assert_eq!(s.events_max_age_days, 30);
    }

    #[test]
    fn every_key_is_a_field() {
        let json = ServerSettings::default().to_json();
        let keys: Vec<&str> = json.keys().map(String::as_str).collect();
        let mut expected = ServerSettings::KEYS.to_vec();
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert!(ServerSettings::KEYS
            .iter()
            .all(|k| !Settings::default().to_json().contains_key(*k)));
    }
}
