//! Incidents and what is notified of them: pure bookkeeping, with no I/O, so
//! every rule of "one buzz per incident" is a unit test.
//!
//! An *incident* is one motion episode on one camera. It is decided once,
//! at the moment its camera's rules name ([`Alerts::notify_at`]): sent,
//! snoozed, or merged into the last notification by the cooldown. A sent
//! incident reaches each target (a phone's subscription, ntfy) at most once,
//! when that target's own choice qualifies it (a target that wants only
//! people hears at the first person), and is updated once at its end, when
//! its clip is saved, under the same tag so the phone replaces it.

use std::collections::HashMap;

use serde::Serialize;

use crate::alert::{Alerts, NotifyAt};

/// Clips still being written whose incidents wait to be updated, per
/// camera. Episodes in one post-roll share a clip, so a few may wait; more
/// means clips are not being saved, and the oldest is dropped.
const MAX_AWAITING: usize = 8;

/// Where notifications go: a phone's subscription, or ntfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its id (`ntfy`, or the subscription's).
    pub id: String,
    /// The cameras it hears from (`None`: all).
    pub cameras: Option<Vec<String>>,
    /// What it wants to hear about.
    pub wants: NotifyAt,
    /// Whether it takes the update at an incident's end (Web Push replaces
    /// the notification; ntfy would buzz twice).
    pub updates: bool,
}

impl Target {
    fn hears(&self, camera: &str) -> bool {
        self.cameras
            .as_ref()
            .is_none_or(|c| c.iter().any(|n| n == camera))
    }
}

/// What became of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Notified.
    Sent,
    /// Its camera was snoozed.
    Snoozed,
    /// Within the cooldown of the last notification: that one stands for it.
    Merged,
}

impl Verdict {
    /// Its name in events and the incident list.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Sent => "sent",
            Verdict::Snoozed => "snoozed",
            Verdict::Merged => "merged",
        }
    }
}

/// One incident as far as notifications go.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Its id: the store id of the `motion` event that started it.
    pub id: i64,
    /// Its camera.
    pub camera: String,
    /// When it started, Unix seconds.
    pub started: f64,
    /// The zones its motion touched at the start.
    pub zones: Vec<String>,
    /// Whether the check saw a person in it.
    pub person: bool,
    /// What became of it, once decided.
    pub verdict: Option<Verdict>,
    /// The targets it was sent to.
    pub notified: Vec<String>,
    /// The URL of its clip, when one is recorded.
    pub clip: Option<String>,
    /// How long it lasted, once over.
    pub duration_s: Option<f64>,
}

/// Notify these targets of this incident now (`kind`: what qualified it).
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    /// The incident, as it is now.
    pub incident: Incident,
    /// What qualified it: the title's "Person" or "Motion".
    pub kind: NotifyAt,
    /// The verdict taken now, when this moment decided the incident (for
    /// the `notify` event); `None` when it only reaches more targets.
    pub decided: Option<Verdict>,
    /// Who is told.
    pub targets: Vec<String>,
}

/// The incident is over and its clip saved: replace its notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The incident, finished.
    pub incident: Incident,
    /// Who had it and takes updates.
    pub targets: Vec<String>,
}

/// One camera's incidents.
#[derive(Debug, Default)]
struct Camera {
    current: Option<Incident>,
    /// Ended, sent, waiting for their clip.
    awaiting: Vec<Incident>,
    /// When the last incident was sent, Unix seconds (the cooldown's start).
    last_sent: Option<f64>,
}

/// The incidents of every camera.
#[derive(Debug, Default)]
pub struct Book {
    cams: HashMap<String, Camera>,
}

/// A camera's rules and state at an incident's moment.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Its alert rules.
    pub alerts: Alerts,
    /// Its `notify_cooldown_s`.
    pub cooldown_s: f64,
    /// Whether it is snoozed now.
    pub snoozed: bool,
}

impl Book {
    /// An episode started: a new incident (the last one, if it never saw
    /// its end, is forgotten).
    pub fn started(
        &mut self,
        camera: &str,
        id: i64,
        ts: f64,
        zones: Vec<String>,
        clip: Option<String>,
    ) {
        let cam = self.cams.entry(camera.to_string()).or_default();
        cam.current = Some(Incident {
            id,
            camera: camera.to_string(),
            started: ts,
            zones,
            person: false,
            verdict: None,
            notified: Vec::new(),
            clip,
            duration_s: None,
        });
    }

    /// `camera`'s last notification was sent at `ts` (before a restart).
    pub fn notified_at(&mut self, camera: &str, ts: f64) {
        self.cams.entry(camera.to_string()).or_default().last_sent = Some(ts);
    }

    /// `camera`'s incident under way.
    pub fn current_incident(&self, camera: &str) -> Option<&Incident> {
        self.cams.get(camera)?.current.as_ref()
    }

    /// The current incident of `camera` reached moment `at` (its start, or
    /// its first person) at `ts`: decides it if its camera's rules name this
    /// moment, and says who to tell.
    pub fn reached(
        &mut self,
        camera: &str,
        at: NotifyAt,
        ts: f64,
        rules: Rules,
        targets: &[Target],
    ) -> Option<Send> {
        let cam = self.cams.get_mut(camera)?;
        let incident = cam.current.as_mut()?;
        if at == NotifyAt::Person {
            incident.person = true;
        }
        let camera_at = rules.alerts.notify_at()?;
        let mut decided = None;
        if incident.verdict.is_none() && at == camera_at {
            let verdict = if rules.snoozed {
                Verdict::Snoozed
            } else if cam.last_sent.is_some_and(|t| ts - t < rules.cooldown_s) {
                Verdict::Merged
            } else {
                cam.last_sent = Some(ts);
                Verdict::Sent
            };
            incident.verdict = Some(verdict);
            decided = Some(verdict);
        }
        let mut send_to = Vec::new();
        if incident.verdict == Some(Verdict::Sent) {
            for t in targets {
                if t.hears(camera)
                    && rules.alerts.notify_for(t.wants) == Some(at)
                    && !incident.notified.contains(&t.id)
                {
                    send_to.push(t.id.clone());
                }
            }
            incident.notified.extend(send_to.iter().cloned());
        }
        if decided.is_none() && send_to.is_empty() {
            return None;
        }
        Some(Send {
            incident: incident.clone(),
            kind: at,
            decided,
            targets: send_to,
        })
    }

    /// The current incident of `camera` ended after `duration_s`: its update
    /// now when there is no clip to wait for, else once [`Book::clip_saved`]
    /// says so. `None` when it was not sent (or to no one who takes
    /// updates).
    pub fn ended(&mut self, camera: &str, duration_s: f64, targets: &[Target]) -> Option<Update> {
        let cam = self.cams.get_mut(camera)?;
        let mut incident = cam.current.take()?;
        incident.duration_s = Some(duration_s);
        if incident.verdict != Some(Verdict::Sent) || incident.notified.is_empty() {
            return None;
        }
        if incident.clip.is_some() {
            if cam.awaiting.len() >= MAX_AWAITING {
                cam.awaiting.remove(0);
            }
            cam.awaiting.push(incident);
            return None;
        }
        update(incident, targets)
    }

    /// Clip `url` of `camera` was saved (or failed for good): the updates of
    /// the incidents it recorded.
    pub fn clip_saved(&mut self, camera: &str, url: &str, targets: &[Target]) -> Vec<Update> {
        let Some(cam) = self.cams.get_mut(camera) else {
            return Vec::new();
        };
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut cam.awaiting)
            .into_iter()
            .partition(|i| i.clip.as_deref() == Some(url));
        cam.awaiting = waiting;
        done.into_iter()
            .filter_map(|i| update(i, targets))
            .collect()
    }
}

/// The update of `incident` for those of its targets that take updates.
fn update(incident: Incident, targets: &[Target]) -> Option<Update> {
    let to: Vec<String> = incident
        .notified
        .iter()
        .filter(|id| targets.iter().any(|t| &t.id == *id && t.updates))
        .cloned()
        .collect();
    (!to.is_empty()).then_some(Update {
        incident,
        targets: to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{NotifyOn, Settings};

    fn rules(notify_on: NotifyOn, snoozed: bool) -> Rules {
        let settings = Settings {
            notify_on,
            person_check: true,
            ..Settings::default()
        };
        Rules {
            alerts: Alerts::new(&settings, true),
            cooldown_s: 60.0,
            snoozed,
        }
    }

    fn target(id: &str, wants: NotifyAt) -> Target {
        Target {
            id: id.into(),
            cameras: None,
            wants,
            updates: id != "ntfy",
        }
    }

    fn phones() -> Vec<Target> {
        vec![
            target("phone", NotifyAt::Motion),
            target("ntfy", NotifyAt::Motion),
        ]
    }

    fn start(book: &mut Book, id: i64, ts: f64, clip: Option<&str>) {
        book.started("yard", id, ts, vec!["gate".into()], clip.map(String::from));
    }

    #[test]
    fn a_person_incident_is_sent_once_at_the_first_person_and_updated_once_its_clip_is_saved() {
        let mut book = Book::default();
        let r = rules(NotifyOn::Person, false);
        start(&mut book, 1, 100.0, Some("/clips/a.mkv"));
        assert_eq!(
            book.reached("yard", NotifyAt::Motion, 100.0, r, &phones()),
            None
        );
        let sent = book
            .reached("yard", NotifyAt::Person, 101.0, r, &phones())
            .unwrap();
        assert_eq!(sent.decided, Some(Verdict::Sent));
        assert_eq!(sent.kind, NotifyAt::Person);
        assert_eq!(sent.targets, ["phone", "ntfy"]);
        // A second person in the same incident tells no one again.
        assert_eq!(
            book.reached("yard", NotifyAt::Person, 102.0, r, &phones()),
            None
        );
        assert_eq!(book.ended("yard", 12.0, &phones()), None);
        assert!(book
            .clip_saved("yard", "/clips/other.mkv", &phones())
            .is_empty());
        let updates = book.clip_saved("yard", "/clips/a.mkv", &phones());
        assert_eq!(updates.len(), 1);
        // ntfy takes no update: it would buzz twice.
        assert_eq!(updates[0].targets, ["phone"]);
        assert_eq!(updates[0].incident.duration_s, Some(12.0));
        assert!(updates[0].incident.person);
        assert!(book
            .clip_saved("yard", "/clips/a.mkv", &phones())
            .is_empty());
    }

    #[test]
    fn motion_without_a_person_is_not_notified_when_people_are_wanted() {
        let mut book = Book::default();
        let r = rules(NotifyOn::Person, false);
        start(&mut book, 1, 100.0, None);
        assert_eq!(
            book.reached("yard", NotifyAt::Motion, 100.0, r, &phones()),
            None
        );
        assert_eq!(book.ended("yard", 5.0, &phones()), None);
    }

    #[test]
    fn motion_incidents_are_sent_at_their_start_and_updated_at_their_end_without_a_clip() {
        let mut book = Book::default();
        let r = rules(NotifyOn::Motion, false);
        start(&mut book, 1, 100.0, None);
        let sent = book
            .reached("yard", NotifyAt::Motion, 100.0, r, &phones())
            .unwrap();
        assert_eq!(sent.kind, NotifyAt::Motion);
        let update = book.ended("yard", 3.0, &phones()).unwrap();
        assert_eq!(update.targets, ["phone"]);
    }

    #[test]
    fn incidents_within_the_cooldown_are_one_notification() {
        let mut book = Book::default();
        let r = rules(NotifyOn::Motion, false);
        start(&mut book, 1, 100.0, None);
        assert!(book
            .reached("yard", NotifyAt::Motion, 100.0, r, &phones())
            .is_some());
        book.ended("yard", 3.0, &phones());
        start(&mut book, 2, 150.0, None);
        let merged = book
            .reached("yard", NotifyAt::Motion, 150.0, r, &phones())
            .unwrap();
        assert_eq!(merged.decided, Some(Verdict::Merged));
        assert!(merged.targets.is_empty());
        assert_eq!(book.ended("yard", 3.0, &phones()), None);
        // Counted from the last one sent (100), not from the merged one.
        start(&mut book, 3, 161.0, None);
        let sent = book
            .reached("yard", NotifyAt::Motion, 161.0, r, &phones())
            .unwrap();
        assert_eq!(sent.decided, Some(Verdict::Sent));
        // Other cameras have their own cooldown.
        book.started("door", 4, 162.0, Vec::new(), None);
        let door = book
            .reached("door", NotifyAt::Motion, 162.0, r, &phones())
            .unwrap();
        assert_eq!(door.decided, Some(Verdict::Sent));
    }

    #[test]
    fn a_snoozed_camera_tells_no_one_and_does_not_start_a_cooldown() {
        let mut book = Book::default();
        start(&mut book, 1, 100.0, None);
        let snoozed = rules(NotifyOn::Motion, true);
        let s = book
            .reached("yard", NotifyAt::Motion, 100.0, snoozed, &phones())
            .unwrap();
        assert_eq!(s.decided, Some(Verdict::Snoozed));
        assert!(s.targets.is_empty());
        book.ended("yard", 1.0, &phones());
        start(&mut book, 2, 110.0, None);
        let awake = rules(NotifyOn::Motion, false);
        let s = book
            .reached("yard", NotifyAt::Motion, 110.0, awake, &phones())
            .unwrap();
        assert_eq!(s.decided, Some(Verdict::Sent));
    }

    #[test]
    fn off_tells_no_one() {
        let mut book = Book::default();
        start(&mut book, 1, 100.0, None);
        let r = rules(NotifyOn::Off, false);
        assert_eq!(
            book.reached("yard", NotifyAt::Motion, 100.0, r, &phones()),
            None
        );
        assert_eq!(
            book.reached("yard", NotifyAt::Person, 101.0, r, &phones()),
            None
        );
    }

    #[test]
    fn a_target_that_wants_people_hears_at_the_first_person_of_a_motion_camera() {
        let mut book = Book::default();
        let r = rules(NotifyOn::Motion, false);
        let targets = vec![
            target("all", NotifyAt::Motion),
            target("people", NotifyAt::Person),
        ];
        start(&mut book, 1, 100.0, None);
        let first = book
            .reached("yard", NotifyAt::Motion, 100.0, r, &targets)
            .unwrap();
        assert_eq!(first.targets, ["all"]);
        let then = book
            .reached("yard", NotifyAt::Person, 104.0, r, &targets)
            .unwrap();
        assert_eq!(then.decided, None);
        assert_eq!(then.kind, NotifyAt::Person);
        assert_eq!(then.targets, ["people"]);
    }

    #[test]
    fn a_target_hears_only_its_cameras() {
        let mut book = Book::default();
        let r = rules(NotifyOn::Motion, false);
        let mut door_only = target("door-phone", NotifyAt::Motion);
        door_only.cameras = Some(vec!["door".into()]);
        let targets = vec![door_only, target("all", NotifyAt::Motion)];
        start(&mut book, 1, 100.0, None);
        let s = book
            .reached("yard", NotifyAt::Motion, 100.0, r, &targets)
            .unwrap();
        assert_eq!(s.targets, ["all"]);
    }

    #[test]
    fn episodes_sharing_a_clip_are_each_updated_when_it_is_saved() {
        let mut book = Book::default();
        let r = Rules {
            cooldown_s: 0.0,
            ..rules(NotifyOn::Motion, false)
        };
        for (id, ts) in [(1, 100.0), (2, 108.0)] {
            start(&mut book, id, ts, Some("/clips/a.mkv"));
            book.reached("yard", NotifyAt::Motion, ts, r, &phones());
            assert_eq!(book.ended("yard", 2.0, &phones()), None);
        }
        let updates = book.clip_saved("yard", "/clips/a.mkv", &phones());
        let ids: Vec<i64> = updates.iter().map(|u| u.incident.id).collect();
        assert_eq!(ids, [1, 2]);
    }
}
