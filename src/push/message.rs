//! What a notification says: its title, body, tag, picture and link, the
//! same for every channel (the Web Push payload is this, as JSON).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::config::PushConfig;
use super::db::picture_url;
use super::incident::Incident;
use crate::alert::NotifyAt;

/// The server's offset from UTC, seconds, read once at start (see
/// [`init_local_offset`]); UTC when it could not be read.
static LOCAL_OFFSET: OnceLock<i32> = OnceLock::new();

/// Reads the local time zone's offset, for the times in notifications. Call
/// it first thing in `main`: the platform's reading is only sound while the
/// process has one thread, so it is refused later and the times are UTC.
pub fn init_local_offset() {
    if let Ok(offset) = time::UtcOffset::current_local_offset() {
        let _ = LOCAL_OFFSET.set(offset.whole_seconds());
    }
}

/// `HH:MM` of Unix time `ts` in the server's zone (`HH:MM UTC` when its
/// offset is unknown).
pub fn local_hhmm(ts: f64) -> String {
    let offset = LOCAL_OFFSET.get().copied();
    let secs = ts.floor() as i64 + i64::from(offset.unwrap_or(0));
    let minute_of_day = secs.rem_euclid(86_400) / 60;
    let hhmm = format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60);
    match offset {
        Some(_) => hhmm,
        None => format!("{hhmm} UTC"),
    }
}

/// One notification. The Web Push payload is this as JSON (under 3 KB: the
/// picture is a URL the service worker fetches with its cookie).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// "Person at yard".
    pub title: String,
    /// The local time, the length once over, and the zones.
    pub body: String,
    /// The same for a notification and its update, so the phone replaces it.
    pub tag: String,
    /// The picture's path (the person check's frame, or the motion frame).
    pub image: Option<String>,
    /// What a tap opens: the camera's live view, or the clip once saved.
    pub url: String,
    /// The camera.
    pub camera: String,
    /// `person`, `motion` or `test`.
    pub kind: String,
    /// The incident (`None`: a test).
    pub incident: Option<i64>,
    /// When the incident started (or the test was asked for), Unix seconds.
    pub ts: f64,
    /// Whether this replaces an earlier notification of the same incident.
    pub update: bool,
}

impl Message {
    /// The first notification of `incident`, qualified by `kind`.
    pub fn first(incident: &Incident, kind: NotifyAt, config: &PushConfig) -> Message {
        let kind = if incident.person {
            NotifyAt::Person
        } else {
            kind
        };
        Message {
            title: title(kind, &incident.camera),
            body: body(incident.started, None, &incident.zones),
            tag: tag(&incident.camera, incident.id),
            image: Some(picture_url(incident.id)),
            url: config.link(&live_path(&incident.camera)),
            camera: incident.camera.clone(),
            kind: kind.as_str().into(),
            incident: Some(incident.id),
            ts: incident.started,
            update: false,
        }
    }

    /// The update of a finished `incident`: its length, and its clip as the
    /// link.
    pub fn finished(incident: &Incident, config: &PushConfig) -> Message {
        let kind = if incident.person {
            NotifyAt::Person
        } else {
            NotifyAt::Motion
        };
        let path = match &incident.clip {
            Some(clip) => format!("{}&clip={clip}", live_path(&incident.camera)),
            None => live_path(&incident.camera),
        };
        Message {
            title: title(kind, &incident.camera),
            body: body(incident.started, incident.duration_s, &incident.zones),
            tag: tag(&incident.camera, incident.id),
            image: Some(picture_url(incident.id)),
            url: config.link(&path),
            camera: incident.camera.clone(),
            kind: kind.as_str().into(),
            incident: Some(incident.id),
            ts: incident.started,
            update: true,
        }
    }

    /// A test notification for `camera`'s picture and link.
    pub fn test(camera: &str, now: f64, config: &PushConfig) -> Message {
        Message {
            title: "lookout test notification".into(),
            body: format!("{} \u{b7} notifications work", local_hhmm(now)),
            tag: "lookout-test".into(),
            image: None,
            url: config.link(&live_path(camera)),
            camera: camera.to_string(),
            kind: "test".into(),
            incident: None,
            ts: now,
            update: false,
        }
    }

    /// Whether the push services should wake the phone at once.
    pub fn urgent(&self) -> bool {
        self.kind == "person"
    }
}

fn title(kind: NotifyAt, camera: &str) -> String {
    match kind {
        NotifyAt::Person => format!("Person at {camera}"),
        NotifyAt::Motion => format!("Motion at {camera}"),
    }
}

/// "14:03 · 25 s · gate, drive".
fn body(started: f64, duration_s: Option<f64>, zones: &[String]) -> String {
    let mut parts = vec![local_hhmm(started)];
    if let Some(d) = duration_s {
        parts.push(format!("{} s", d.round() as i64));
    }
    if !zones.is_empty() {
        parts.push(zones.join(", "));
    }
    parts.join(" \u{b7} ")
}

fn tag(camera: &str, incident: i64) -> String {
    format!("lookout-{camera}-{incident}")
}

/// The dashboard's live view of `camera`.
fn live_path(camera: &str) -> String {
    format!("/?camera={camera}")
}

/// The file name at the end of a clip URL (`/cams/door/clips/x.mkv`: `x.mkv`).
pub fn clip_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident() -> Incident {
        Incident {
            id: 42,
            camera: "yard".into(),
            started: 3_600.0 * 14.0 + 180.0,
            zones: vec!["gate".into(), "drive".into()],
            person: false,
            verdict: None,
            notified: Vec::new(),
            clip: Some("motion-1.mkv".into()),
            duration_s: None,
        }
    }

    #[test]
    fn a_person_incident_says_so_with_its_zones_picture_and_live_link() {
        let mut i = incident();
        i.person = true;
        let m = Message::first(&i, NotifyAt::Person, &PushConfig::default());
        assert_eq!(m.title, "Person at yard");
        assert!(m.body.ends_with(" \u{b7} gate, drive"), "{}", m.body);
        assert!(m.body.starts_with(&local_hhmm(i.started)));
        assert_eq!(m.tag, "lookout-yard-42");
        assert_eq!(m.image.as_deref(), Some("/api/incidents/42/picture.jpg"));
        assert_eq!(m.url, "/?camera=yard");
        assert!(m.urgent() && !m.update);
    }

    #[test]
    fn the_update_links_the_clip_under_the_same_tag() {
        let mut i = incident();
        i.duration_s = Some(24.6);
        let config = PushConfig {
            public_url: Some("https://cam.example.org".into()),
            ..PushConfig::default()
        };
        let m = Message::finished(&i, &config);
        assert_eq!(m.title, "Motion at yard");
        assert!(m.body.contains(" \u{b7} 25 s \u{b7} "), "{}", m.body);
        assert_eq!(m.tag, "lookout-yard-42");
        assert_eq!(
            m.url,
            "https://cam.example.org/?camera=yard&clip=motion-1.mkv"
        );
        assert!(m.update && !m.urgent());
    }

    #[test]
    fn a_message_is_a_small_payload() {
        let mut i = incident();
        i.zones = (0..16).map(|n| format!("zone number {n}")).collect();
        let m = Message::finished(&i, &PushConfig::default());
        assert!(serde_json::to_vec(&m).unwrap().len() < 3000);
    }

    #[test]
    fn times_wrap_at_midnight() {
        let hhmm = local_hhmm(86_400.0 * 3.0 + 59.9);
        assert!(hhmm.len() >= 5 && hhmm.as_bytes()[2] == b':', "{hhmm}");
        assert_eq!(clip_name("/cams/door/clips/x.mkv"), "x.mkv");
    }
}
