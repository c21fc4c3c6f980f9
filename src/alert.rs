//! What counts as an alert, and what is sent out for it: the one place that
//! decides, for the motion runner, the person check and the snapshot
//! actions (and, later, for notifications).
//!
//! An *alert* is a motion episode worth telling someone about. With
//! `alert_on = "person"` and a person check that can run, only episodes in
//! which the check saw a person alert, and the frame that shows the person is
//! the one uploaded; otherwise every episode alerts at its start, with the
//! frame that started it. A snapshot someone asked for is always uploaded
//! (marked manual), whatever the setting.

use crate::settings::{AlertOn, Settings};

/// The alert rules of one camera, from its settings now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alerts {
    on_person: bool,
}

impl Alerts {
    /// The rules for `settings`, with the person check `available` or not
    /// (without it, alerts fall back to motion: a person can never be
    /// confirmed).
    pub fn new(settings: &Settings, person_available: bool) -> Alerts {
        Alerts {
            on_person: settings.alert_on == AlertOn::Person && person_available,
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

    #[test]
    fn without_a_person_check_alerts_fall_back_to_motion() {
        let a = Alerts::new(&on(AlertOn::Person), false);
        assert!(a.on_motion() && a.upload_motion_frame());
        assert!(!a.upload_person_frame());
        assert!(a.webhook_episode_end(None));
    }
}
