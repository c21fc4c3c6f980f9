//! Settings that can change while the server runs (the seed's `state` dict).
//!
//! A camera's runtime settings and their validation live here (the
//! server-wide ones in `serverwide`, which splits a patch between the two),
//! so `POST /config`, the `set` command and the persisted store agree on one
//! set of rules.
//! A patch is validated as a whole before anything changes: a bad key leaves
//! every setting as it was.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::zones::{self, Polygon, Zone, ZoneError};

/// Default motion threshold on the detector's 0-100 score (the seed's value).
pub const DEFAULT_THRESHOLD: u8 = 12;

/// Keys that `GET /config` shows but that no client may set.
const READ_ONLY: &[&str] = &["trigger_count", "person_count", "frame_count", "ok"];

/// The runtime-changeable settings of one camera. (`PartialEq` only: the
/// polygons hold floats.) Those of the whole server (history retention, the
/// SSE keepalive) are `serverwide::ServerSettings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Motion threshold: the score (0..=100, see `motion::detector::score`)
    /// a frame must pass.
    pub threshold: u8,
    /// Analysed frames in a row above the threshold before motion starts
    /// (one noisy frame is not an intruder).
    pub min_frames: u32,
    /// Seconds of quiet that end a motion episode.
    pub cooldown_s: u32,
    /// A change over this percent of the picture that light compensation
    /// cannot explain re-learns the background instead of firing.
    pub lightswitch_percent: u8,
    /// Most frames per second the detector analyses (caps its CPU).
    pub motion_fps: u32,
    /// Most JPEGs per second made for MJPEG viewers of a camera whose
    /// video lookout decodes (RTSP H.264/H.265); each costs an encode. A
    /// camera that sends JPEGs is shown at its own rate.
    pub mjpeg_fps: u32,
    /// Save a snapshot when motion starts.
    pub save_on_motion: bool,
    /// Most snapshots kept; the oldest go first.
    pub max_snaps: u32,
    /// Most megabytes of snapshots kept; the oldest go first.
    pub max_snaps_mb: u32,
    /// Motion mask: changes inside these polygons are ignored (a tree in the
    /// wind, a road, a TV). Normalized coordinates, see [`zones`].
    pub mask: Vec<Polygon>,
    /// Named parts of the picture, so an event can say where motion was.
    pub zones: Vec<Zone>,
    /// When not empty, only motion inside one of these zones counts (at most
    /// [`zones::MAX_ZONES`] names, each a zone).
    pub required_zones: Vec<String>,
    /// Record a clip of each motion episode.
    pub record_clips: bool,
    /// Seconds of frames before the motion start that a clip begins with.
    pub clip_pre_s: u32,
    /// Seconds a clip goes on after the episode ends.
    pub clip_post_s: u32,
    /// Most frames per second in a clip (fewer when the camera sends fewer).
    pub clip_fps: u32,
    /// Longest clip, seconds.
    pub clip_max_s: u32,
    /// Most clips kept; the oldest go first.
    pub max_clips: u32,
    /// Most megabytes of clips kept; the oldest go first.
    pub max_clips_mb: u32,
    /// Days a clip is kept.
    pub clips_max_age_days: u32,
    /// What is recorded: event clips only, or the camera's whole stream as
    /// well (continuous segments, for a camera that sends H.264/H.265).
    pub record: Record,
    /// Length of a continuous segment, seconds (cut at the first keyframe
    /// after it).
    pub segment_s: u32,
    /// Days a continuous segment is kept. Segments share the clips' bytes
    /// (`max_clips_mb`): when over, the oldest segments go before any clip.
    pub recordings_max_age_days: u32,
    /// Check whether what moved is a person (when the build has the check).
    pub person_check: bool,
    /// The score (0-1) from which the check counts a detection as a person.
    pub person_min_score: f64,
    /// Most person checks per second during a motion episode (each costs
    /// tens of milliseconds of one core).
    pub person_checks_per_s: u32,
    /// What uploads, the webhook and MQTT notifications treat as an alert.
    pub alert_on: AlertOn,
    /// Which incidents buzz the phone (Web Push, ntfy): people, any motion,
    /// or none. `person` falls back to motion while the person check cannot
    /// run (off, or not in this build): a person can never be confirmed.
    pub notify_on: NotifyOn,
    /// Incidents closer together than this (seconds from the last
    /// notification sent to the next incident's qualifying event) are one
    /// notification: a family walking out one by one buzzes once.
    pub notify_cooldown_s: u32,
}

/// What counts as an alert: any motion episode, or only one in which the
/// person check saw a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertOn {
    /// Every motion episode (the seed's behaviour).
    Motion,
    /// Only episodes with a person in them.
    Person,
}

/// What a camera records (see [`Settings::record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Record {
    /// Clips of motion episodes only.
    Events,
    /// Every minute, in segments, besides the clips.
    Continuous,
}

/// Which incidents are notified (see [`Settings::notify_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    /// Only incidents in which the person check saw a person.
    Person,
    /// Every motion episode.
    Motion,
    /// None.
    Off,
}

impl NotifyOn {
    /// Its name in settings and `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Person => "person",
            NotifyOn::Motion => "motion",
            NotifyOn::Off => "off",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threshold: DEFAULT_THRESHOLD,
            min_frames: 2,
            cooldown_s: 5,
            lightswitch_percent: 80,
            motion_fps: 10,
            mjpeg_fps: 15,
            save_on_motion: true,
            max_snaps: 1000,
            max_snaps_mb: 1024,
            mask: Vec::new(),
            zones: Vec::new(),
            required_zones: Vec::new(),
            record_clips: true,
            clip_pre_s: 5,
            clip_post_s: 5,
            clip_fps: 10,
            clip_max_s: 120,
            max_clips: 500,
            max_clips_mb: 4096,
            clips_max_age_days: 30,
            record: Record::Events,
            segment_s: 300,
            recordings_max_age_days: 7,
            person_check: crate::person::AVAILABLE,
            person_min_score: 0.5,
            person_checks_per_s: 2,
            alert_on: AlertOn::Motion,
            notify_on: NotifyOn::Person,
            notify_cooldown_s: 60,
        }
    }
}

/// Why a settings patch was refused. The message is shown to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl From<ZoneError> for SettingsError {
    fn from(e: ZoneError) -> Self {
        SettingsError(e.to_string())
    }
}

impl Settings {
    /// Returns these settings with `patch` applied, or the first problem found.
    /// `patch` must be a JSON object of setting names to values; an empty patch
    /// gets the seed's `missing threshold`. Keys are checked one by one, then
    /// what spans keys (every required zone is a zone) on the result.
    pub fn patched(&self, patch: &Value) -> Result<Settings, SettingsError> {
        self.patched_keys(patch_object(patch)?)
    }

    /// [`Settings::patched`] for the keys of an object already checked to
    /// be a patch: an empty one changes nothing (a patch of server-wide keys
    /// only leaves the camera's as they are, see `serverwide`).
    pub fn patched_keys(&self, obj: &Map<String, Value>) -> Result<Settings, SettingsError> {
        let mut next = self.clone();
        for (key, value) in obj {
            next.apply_one(key, value)?;
        }
        zones::check_required(&next.zones, &next.required_zones)?;
        Ok(next)
    }

    fn apply_one(&mut self, key: &str, value: &Value) -> Result<(), SettingsError> {
        match key {
            "threshold" => self.threshold = int_in_range(key, value, 0, 100)? as u8,
            "min_frames" => self.min_frames = int_in_range(key, value, 1, 100)? as u32,
            "cooldown_s" => self.cooldown_s = int_in_range(key, value, 0, 3600)? as u32,
            "lightswitch_percent" => {
                self.lightswitch_percent = int_in_range(key, value, 1, 100)? as u8
            }
            "motion_fps" => self.motion_fps = int_in_range(key, value, 1, 30)? as u32,
            "mjpeg_fps" => self.mjpeg_fps = int_in_range(key, value, 1, 30)? as u32,
            "save_on_motion" => self.save_on_motion = boolean(key, value)?,
            "record_clips" => self.record_clips = boolean(key, value)?,
            "clip_pre_s" => self.clip_pre_s = int_in_range(key, value, 0, 30)? as u32,
            "clip_post_s" => self.clip_post_s = int_in_range(key, value, 0, 60)? as u32,
            "clip_fps" => self.clip_fps = int_in_range(key, value, 1, 30)? as u32,
            "clip_max_s" => self.clip_max_s = int_in_range(key, value, 10, 3600)? as u32,
            "max_clips" => self.max_clips = int_in_range(key, value, 1, 1_000_000)? as u32,
            "max_clips_mb" => self.max_clips_mb = int_in_range(key, value, 1, 10_000_000)? as u32,
            "clips_max_age_days" => {
                self.clips_max_age_days = int_in_range(key, value, 1, 3650)? as u32
            }
            "max_snaps" => self.max_snaps = int_in_range(key, value, 1, 1_000_000)? as u32,
            "max_snaps_mb" => self.max_snaps_mb = int_in_range(key, value, 1, 1_000_000)? as u32,
            "person_check" => {
                self.person_check = boolean(key, value)?;
                if self.person_check && !crate::person::AVAILABLE {
                    return Err(SettingsError(NO_PERSON_CHECK.into()));
                }
            }
            "person_min_score" => self.person_min_score = float_in_range(key, value, 0.05, 0.99)?,
            "person_checks_per_s" => {
                self.person_checks_per_s = int_in_range(key, value, 1, 10)? as u32
            }
            "record" => {
                self.record = match value.as_str() {
                    Some("events") => Record::Events,
                    Some("continuous") => Record::Continuous,
                    _ => {
                        return Err(SettingsError(format!(
                            "{key} must be \"events\" or \"continuous\""
                        )))
                    }
                }
            }
            "segment_s" => self.segment_s = int_in_range(key, value, 10, 3600)? as u32,
            "recordings_max_age_days" => {
                self.recordings_max_age_days = int_in_range(key, value, 1, 3650)? as u32
            }
            "alert_on" => {
                self.alert_on = match value.as_str() {
                    Some("motion") => AlertOn::Motion,
                    Some("person") if crate::person::AVAILABLE => AlertOn::Person,
                    Some("person") => return Err(SettingsError(NO_PERSON_CHECK.into())),
                    _ => {
                        return Err(SettingsError(format!(
                            "{key} must be \"motion\" or \"person\""
                        )))
                    }
                }
            }
            "notify_on" => {
                self.notify_on = match value.as_str() {
                    Some("person") => NotifyOn::Person,
                    Some("motion") => NotifyOn::Motion,
                    Some("off") => NotifyOn::Off,
                    _ => {
                        return Err(SettingsError(format!(
                            "{key} must be \"person\", \"motion\" or \"off\""
                        )))
                    }
                }
            }
            "notify_cooldown_s" => {
                self.notify_cooldown_s = int_in_range(key, value, 0, 86_400)? as u32
            }
            "mask" => self.mask = zones::parse_mask(value)?,
            "zones" => self.zones = zones::parse_zones(value)?,
            "required_zones" => self.required_zones = zones::parse_required(value)?,
            k if READ_ONLY.contains(&k) => {
                return Err(SettingsError(format!("{k} is read-only")));
            }
            other => return Err(SettingsError(format!("unknown setting: {other}"))),
        }
        Ok(())
    }

    /// Settings saved by an earlier run (or given in the config file) over
    /// `self`; keys that are unknown or invalid now are skipped with a warning,
    /// so an upgrade or a hand-edited file never stops the cam from starting.
    pub fn merged_leniently(&self, saved: &Map<String, Value>) -> Settings {
        let mut next = self.clone();
        for (key, value) in saved {
            let mut candidate = next.clone();
            match candidate.apply_one(key, value) {
                Ok(()) => next = candidate,
                Err(e) => tracing::warn!("ignoring saved setting {key}: {e}"),
            }
        }
        // A requirement no zone can meet would silence the camera: drop it.
        let Settings {
            zones,
            required_zones,
            ..
        } = &mut next;
        required_zones.retain(|name| {
            match zones::check_required(zones, std::slice::from_ref(name)) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("ignoring saved setting required_zones: {e}");
                    false
                }
            }
        });
        next
    }

    /// The snapshot retention limits.
    pub fn retention(&self) -> crate::snaps::Retention {
        crate::snaps::Retention::by_count_and_bytes(
            self.max_snaps as usize,
            u64::from(self.max_snaps_mb) * 1024 * 1024,
        )
    }

    /// The settings as a JSON object (for `/config` and replies).
    pub fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

/// The keys of a settings patch: it must be a JSON object of setting names
/// to values; none at all (or an empty object) gets the seed's `missing
/// threshold`.
pub fn patch_object(patch: &Value) -> Result<&Map<String, Value>, SettingsError> {
    match patch {
        Value::Object(obj) if obj.is_empty() => Err(SettingsError("missing threshold".into())),
        Value::Object(obj) => Ok(obj),
        Value::Null => Err(SettingsError("missing threshold".into())),
        _ => Err(SettingsError("config must be a JSON object".into())),
    }
}

/// Why a person setting is refused by a build without the check.
const NO_PERSON_CHECK: &str = "this build has no person check";

/// Reads a number setting (an integer is a number too), rounded to 1/100.
fn float_in_range(key: &str, value: &Value, min: f64, max: f64) -> Result<f64, SettingsError> {
    let n = value
        .as_f64()
        .ok_or_else(|| SettingsError(format!("{key} must be a number")))?;
    if !(min..=max).contains(&n) {
        return Err(SettingsError(format!("{key} out of range")));
    }
    Ok((n * 100.0).round() / 100.0)
}

/// Reads a boolean setting.
fn boolean(key: &str, value: &Value) -> Result<bool, SettingsError> {
    value
        .as_bool()
        .ok_or_else(|| SettingsError(format!("{key} must be true or false")))
}

/// Reads an integer setting (here and for the server-wide ones). Whole-number floats (`40.0`, as JavaScript may
/// send) are accepted; strings and booleans are not, unlike the seed's `int()`.
pub(crate) fn int_in_range(
    key: &str,
    value: &Value,
    min: i64,
    max: i64,
) -> Result<i64, SettingsError> {
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

/// The live settings, shared by every part that reads them. Changes go
/// through `serverwide::ServerWide::apply` (validate, persist, announce),
/// which has the camera [`replace`](SettingsHandle::replace) them here. Readers get the current
/// settings by reference count: the detector and the recorder read them per
/// frame, and the masks and zones inside are not small.
#[derive(Clone)]
pub struct SettingsHandle {
    current: Arc<RwLock<Arc<Settings>>>,
}

impl SettingsHandle {
    /// Starts from `initial`.
    pub fn new(initial: Settings) -> Self {
        SettingsHandle {
            current: Arc::new(RwLock::new(Arc::new(initial))),
        }
    }

    /// The current settings.
    pub fn get(&self) -> Arc<Settings> {
        // Plain values, always whole: a panic elsewhere cannot leave them
        // half-written, so a poisoned lock is still good to read.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the settings with already validated ones.
    pub fn replace(&self, next: Settings) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
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
    fn other_settings_are_validated() {
        assert_eq!(err(json!({"min_frames": 0})), "min_frames out of range");
        assert_eq!(
            err(json!({"save_on_motion": 1})),
            "save_on_motion must be true or false"
        );
        assert_eq!(err(json!({"motion_fps": 31})), "motion_fps out of range");
        assert_eq!(err(json!({"mjpeg_fps": 0})), "mjpeg_fps out of range");
        let s = Settings::default()
            .patched(&json!({"cooldown_s": 0, "save_on_motion": false, "max_snaps_mb": 5}))
            .unwrap();
        assert_eq!(
            (s.cooldown_s, s.save_on_motion, s.max_snaps_mb),
            (0, false, 5)
        );
    }

    #[test]
    fn person_settings_are_validated() {
        assert_eq!(
            err(json!({"person_min_score": 1.5})),
            "person_min_score out of range"
        );
        assert_eq!(
            err(json!({"person_min_score": "high"})),
            "person_min_score must be a number"
        );
        assert_eq!(
            err(json!({"person_checks_per_s": 0})),
            "person_checks_per_s out of range"
        );
        assert_eq!(
            err(json!({"alert_on": "cat"})),
            "alert_on must be \"motion\" or \"person\""
        );
        let s = Settings::default()
            .patched(&json!({"person_min_score": 0.7, "alert_on": "motion"}))
            .unwrap();
        assert_eq!((s.person_min_score, s.alert_on), (0.7, AlertOn::Motion));
        assert_eq!(s.to_json()["alert_on"], "motion");
        if crate::person::AVAILABLE {
            let s = s.patched(&json!({"alert_on": "person"})).unwrap();
            assert_eq!(s.alert_on, AlertOn::Person);
        } else {
            assert_eq!(err(json!({"alert_on": "person"})), NO_PERSON_CHECK);
            assert_eq!(err(json!({"person_check": true})), NO_PERSON_CHECK);
        }
    }

    #[test]
    fn saved_settings_merge_leniently() {
        let saved = json!({"threshold": 30, "gone": 1, "min_frames": -1});
        let s = Settings::default().merged_leniently(saved.as_object().unwrap());
        assert_eq!(s.threshold, 30);
        assert_eq!(s.min_frames, 2);
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
    fn masks_and_zones_are_validated_and_applied() {
        let tri = json!([[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]);
        assert_eq!(
            err(json!({"mask": [[[0.1, 0.1]]]})),
            "mask polygon 1 has fewer than 3 points"
        );
        assert_eq!(
            err(json!({"zones": [{"name": "path"}]})),
            "zones must be a list of {\"name\", \"points\"}"
        );
        assert_eq!(
            err(json!({"required_zones": "path"})),
            "required_zones must be a list of zone names"
        );
        assert_eq!(
            err(json!({"required_zones": ["path"]})),
            "required zone \"path\" is not a zone"
        );
        // Zones and the zones they require may come in one patch.
        let s = Settings::default()
            .patched(&json!({
                "required_zones": ["path"],
                "zones": [{"name": "path", "points": tri}],
                "mask": [tri],
            }))
            .unwrap();
        assert_eq!(s.zones[0].name, "path");
        assert_eq!(s.required_zones, ["path"]);
        assert_eq!(s.mask.len(), 1);
        // Removing a zone that is still required is refused...
        assert_eq!(
            s.patched(&json!({"zones": []})).unwrap_err().0,
            "required zone \"path\" is not a zone"
        );
        // ... unless the requirement goes too.
        let cleared = s
            .patched(&json!({"zones": [], "required_zones": []}))
            .unwrap();
        assert!(cleared.zones.is_empty() && cleared.required_zones.is_empty());
    }

    #[test]
    fn saved_zones_come_back_and_orphan_requirements_go() {
        let tri = json!([[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]);
        let s = Settings::default()
            .patched(&json!({
                "zones": [{"name": "path", "points": tri}],
                "required_zones": ["path"],
                "mask": [tri],
            }))
            .unwrap();
        let restored = Settings::default().merged_leniently(&s.to_json());
        assert_eq!(restored, s);
        let saved =
            json!({"required_zones": ["path", "gone"], "zones": [{"name": "path", "points": tri}]});
        let s = Settings::default().merged_leniently(saved.as_object().unwrap());
        assert_eq!(s.required_zones, ["path"]);
        let saved =
            json!({"required_zones": ["path"], "zones": [{"name": "path", "points": [[0, 0]]}]});
        let s = Settings::default().merged_leniently(saved.as_object().unwrap());
        assert!(s.zones.is_empty() && s.required_zones.is_empty());
    }

    #[test]
    fn handle_shows_what_was_replaced() {
        let h = SettingsHandle::new(Settings::default());
        let other = h.clone();
        let next = h.get().patched(&json!({"threshold": 50})).unwrap();
        h.replace(next);
        assert_eq!(other.get().threshold, 50);
    }
}
