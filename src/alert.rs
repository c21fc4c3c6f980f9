//! What counts as an alert, and what is sent out for it: the one place that
//! decides, for the motion runner, the person check, the snapshot actions
//! and the phone notifications (`push`).
//!
//! An *alert* is a motion episode worth telling someone about. With
//! `alert_on = "person"` and a person check that can run, only episodes in
//! which the check saw a person alert, and the frame that shows the person is
//! the one uploaded; otherwise every episode alerts at its start, with the
//! frame that started it. A snapshot someone asked for is always uploaded
//! (marked manual), whatever the setting.
//!
//! A *notification* (to a phone) follows `notify_on` instead, because a
//! household wants fewer buzzes than its off-site copies: by default an
//! incident (one episode) is notified at its first person when the person
//! check runs, and at its start otherwise.

use crate::settings::{AlertOn, NotifyOn, Settings};

/// The moment at which an incident is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyAt {
    /// When the episode starts (`motion`).
    Motion,
    /// When the check first sees a person in it (`person`).
    Person,
}

impl NotifyAt {
    /// `person` or `motion`: the kind of the incident it notifies, in
    /// titles, payloads and `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyAt::Motion => "motion",
            NotifyAt::Person => "person",
        }
    }
}

/// The alert rules of one camera, from its settings now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alerts {
    on_person: bool,
    notify: Option<NotifyAt>,
    checks: bool,
}

impl Alerts {
    /// The rules for `settings`, with the person check `available` or not
    /// (without it, alerts fall back to motion: a person can never be
    /// confirmed).
    pub fn new(settings: &Settings, person_available: bool) -> Alerts {
        let checks = person_available && settings.person_check;
        Alerts {
            on_person: settings.alert_on == AlertOn::Person && person_available,
            notify: match settings.notify_on {
                NotifyOn::Off => None,
                NotifyOn::Person if checks => Some(NotifyAt::Person),
                NotifyOn::Person | NotifyOn::Motion => Some(NotifyAt::Motion),
            },
            checks,
        }
    }

    /// When an incident on this camera is notified (`None`: never).
    pub fn notify_at(self) -> Option<NotifyAt> {
        self.notify
    }

    /// When a subscriber who chose `wants` (`person` or `motion`) is
    /// notified of an incident on this camera: its own choice can only
    /// narrow the camera's setting, never widen it. One who wants people
    /// on a camera notified on motion hears at the first person, or never
    /// while the check cannot run.
    pub fn notify_for(self, wants: NotifyAt) -> Option<NotifyAt> {
        match (self.notify?, wants) {
            (NotifyAt::Person, _) => Some(NotifyAt::Person),
            (NotifyAt::Motion, NotifyAt::Motion) => Some(NotifyAt::Motion),
            (NotifyAt::Motion, NotifyAt::Person) => self.checks.then_some(NotifyAt::Person),
        }
    }

    /// Whether every episode alerts when it starts (else only once a person
    /// is seen in it).
    pub fn on_motion(self) -> bool {
        !self.on_person
    }

    /// Whether the frame that started an episode is uploaded with its
    /// `motion` event.
    pub fn upload_motion_frame(self) -> bool {
        self.on_motion()
    }

    /// Whether the frame in which the check saw a person is uploaded with
    /// its `person` event.
    pub fn upload_person_frame(self) -> bool {
        self.on_person
    }

    /// Whether the end of an episode goes to the webhook: every end when
    /// alerts are on motion, else only the end of an episode with a person
    /// (`person` is what the checks found; `None`: none ran).
    pub fn webhook_episode_end(self, person: Option<bool>) -> bool {
        self.on_motion() || person == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(alert_on: AlertOn) -> Settings {
        Settings {
            alert_on,
            ..Settings::default()
        }
    }

    #[test]
    fn alerts_on_motion_upload_the_start_and_call_the_webhook_at_every_end() {
        let a = Alerts::new(&on(AlertOn::Motion), true);
        assert!(a.on_motion() && a.upload_motion_frame());
        assert!(!a.upload_person_frame());
        assert!(a.webhook_episode_end(None));
        assert!(a.webhook_episode_end(Some(false)));
    }

    #[test]
    fn alerts_on_people_wait_for_a_person() {
        let a = Alerts::new(&on(AlertOn::Person), true);
        assert!(!a.on_motion() && !a.upload_motion_frame());
        assert!(a.upload_person_frame());
        assert!(!a.webhook_episode_end(None));
        assert!(!a.webhook_episode_end(Some(false)));
        assert!(a.webhook_episode_end(Some(true)));
    }

    fn notify(notify_on: NotifyOn, person_check: bool) -> Settings {
        Settings {
            notify_on,
            person_check,
            ..Settings::default()
        }
    }

    #[test]
    fn people_are_notified_at_the_first_person_when_the_check_runs() {
        let a = Alerts::new(&notify(NotifyOn::Person, true), true);
        assert_eq!(a.notify_at(), Some(NotifyAt::Person));
        // The check off, or its model not loaded: motion is all there is.
        for (check, available) in [(false, true), (true, false)] {
            let a = Alerts::new(&notify(NotifyOn::Person, check), available);
            assert_eq!(a.notify_at(), Some(NotifyAt::Motion));
        }
        let a = Alerts::new(&notify(NotifyOn::Motion, true), true);
        assert_eq!(a.notify_at(), Some(NotifyAt::Motion));
        let a = Alerts::new(&notify(NotifyOn::Off, true), true);
        assert_eq!(a.notify_at(), None);
    }

    #[test]
    fn a_subscriber_only_narrows_its_camera() {
        use NotifyAt::{Motion, Person};
        let people = Alerts::new(&notify(NotifyOn::Person, true), true);
        assert_eq!(people.notify_for(Motion), Some(Person));
        assert_eq!(people.notify_for(Person), Some(Person));
        let motion = Alerts::new(&notify(NotifyOn::Motion, true), true);
        assert_eq!(motion.notify_for(Motion), Some(Motion));
        assert_eq!(motion.notify_for(Person), Some(Person));
        let blind = Alerts::new(&notify(NotifyOn::Motion, false), true);
        assert_eq!(blind.notify_for(Person), None);
        let off = Alerts::new(&notify(NotifyOn::Off, true), true);
        assert_eq!(off.notify_for(Motion), None);
    }

    #[test]
    fn without_a_person_check_alerts_fall_back_to_motion() {
        let a = Alerts::new(&on(AlertOn::Person), false);
        assert!(a.on_motion() && a.upload_motion_frame());
        assert!(!a.upload_person_frame());
        assert!(a.webhook_episode_end(None));
    }
}
