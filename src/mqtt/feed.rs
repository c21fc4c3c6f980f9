//! What happens, as MQTT messages: follows the event bus and puts each
//! camera's motion, state, snapshot and events into the outbox.
//!
//! Stored events are never skipped: when this subscriber falls behind the
//! bus, it reads what it missed from the store. The state message carries
//! the score, which changes with every analysed frame: it goes out at once
//! when anything else in it changes, else at most once a second.
//!
//! Everything retained (discovery, state, the snapshot) goes out again at
//! every connect, and when Home Assistant says it is online. Anyone allowed
//! to publish Home Assistant's birth could ask for that thousands of times
//! a second (5,000 births once made 56 MB of republishing), so births are
//! paced: the first republishes at once, those within [`REPUBLISH_EVERY`]
//! after it make one more when the interval ends. A connect republishes at
//! once, always.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;

use super::connect::MAX_OUTGOING;
use super::discovery;
use super::outbox::{Kind, Message, Outbox};
use super::topics::Topics;
use crate::camera::Camera;
use crate::events::{Event, EventKind};
use crate::hub::Hub;
use crate::report::{self, CamState};
use crate::snaps::Trigger;

/// The score alone is published at most this often.
const SCORE_EVERY: Duration = Duration::from_secs(1);
/// Stored events read back per query after falling behind.
const CATCH_UP: u32 = 1000;
/// Largest snapshot published (a larger packet would fail at the broker on
/// every reconnect).
const MAX_SNAPSHOT: usize = MAX_OUTGOING - 4096;
/// Republishing on request (Home Assistant's birth) happens at most once
/// per this interval.
const REPUBLISH_EVERY: Duration = Duration::from_secs(5);
/// Store key: the retained topics this server last published, so the ones
/// of a camera since removed are emptied.
const KEY_RETAINED: &str = "mqtt_retained_topics";

/// What was last published for one camera.
#[derive(Default)]
struct Published {
    state: Option<CamState>,
    at: Option<Instant>,
    /// The latest score (from `level` events).
    change: f64,
    motion: bool,
    /// Whether the episode under way holds a person.
    person: bool,
}

/// Asks the feed to publish everything again.
#[derive(Default)]
pub(super) struct Republish {
    notify: Notify,
    /// A connect asked: at once, whatever the pace.
    forced: AtomicBool,
}

impl Republish {
    /// After a connect: the broker may have lost everything retained.
    pub(super) fn now(&self) {
        self.forced.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// On request (Home Assistant's birth): paced.
    pub(super) fn asked(&self) {
        self.notify.notify_one();
    }
}

/// When to republish: at once if the last was [`REPUBLISH_EVERY`] ago,
/// else once when the interval ends, however many asked meanwhile.
#[derive(Debug, Default)]
struct Pace {
    last: Option<Instant>,
    owed: bool,
}

impl Pace {
    /// Whether to republish at `now`; if not, one is owed at [`Pace::due`].
    fn ask(&mut self, now: Instant, forced: bool) -> bool {
        let free = self
            .last
            .is_none_or(|at| now.saturating_duration_since(at) >= REPUBLISH_EVERY);
        if forced || free {
            self.done(now);
            true
        } else {
            self.owed = true;
            false
        }
    }

    /// When the owed republish is due.
    fn due(&self) -> Option<Instant> {
        self.last
            .filter(|_| self.owed)
            .map(|at| at + REPUBLISH_EVERY)
    }

    fn done(&mut self, now: Instant) {
        (self.last, self.owed) = (Some(now), false);
    }
}

/// Follows the bus until the server stops.
pub(super) struct Feed {
    pub(super) hub: Arc<Hub>,
    pub(super) topics: Topics,
    pub(super) outbox: Arc<Outbox>,
    /// Fired on every (re)connect and when Home Assistant comes online: the
    /// whole state (and discovery) goes out again.
    pub(super) republish: Arc<Republish>,
    /// The dashboard's URL, for discovery.
    pub(super) dashboard: String,
    pub(super) commands: bool,
}

impl Feed {
    pub(super) async fn run(self) {
        let mut rx = self.hub.events().subscribe();
        let mut cams: HashMap<String, Published> = HashMap::new();
        for cam in self.hub.cams() {
            let p = Published {
                motion: cam.cam.motion_active(),
                ..Published::default()
            };
            cams.insert(cam.name.clone(), p);
        }
        // Where a catch-up starts before any event came: the events
        // published since subscribing arrive through `rx` all the same.
        let mut last_id = self.hub.events().store().last_event_id().await.unwrap_or(0);
        let mut seen = false;
        let mut tick = tokio::time::interval(SCORE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let cancel = self.hub.shutdown().clone();
        let mut pace = Pace::default();
        loop {
            let due = pace.due();
            let owed = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(event) => {
                        if seen && event.id.is_some_and(|id| id <= last_id) {
                            continue;
                        }
                        if let Some(id) = event.id {
                            (last_id, seen) = (id, true);
                        }
                        self.on_event(&event, &mut cams).await;
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Read back the stored ones; the `level` feed lost
                        // meanwhile does not matter.
                        loop {
                            let missed = match self.hub.events().missed(last_id, CATCH_UP, None).await {
                                Ok(missed) => missed,
                                Err(e) => {
                                    tracing::warn!("mqtt: cannot read missed events: {e}");
                                    break;
                                }
                            };
                            let full = missed.len() >= CATCH_UP as usize;
                            for event in missed {
                                if let Some(id) = event.id {
                                    (last_id, seen) = (id, true);
                                }
                                self.on_event(&event, &mut cams).await;
                            }
                            if !full {
                                break;
                            }
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    for cam in self.hub.cams() {
                        if let Some(p) = cams.get_mut(&cam.name) {
                            self.publish_state(cam, p, false);
                        }
                    }
                }
                _ = self.republish.notify.notified() => {
                    let forced = self.republish.forced.swap(false, Ordering::Relaxed);
                    if pace.ask(Instant::now(), forced) {
                        self.republish_all(&mut cams).await;
                    }
                }
                _ = owed => {
                    pace.done(Instant::now());
                    self.republish_all(&mut cams).await;
                }
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// Everything retained, for every camera, again.
    async fn republish_all(&self, cams: &mut HashMap<String, Published>) {
        self.clear_removed().await;
        for cam in self.hub.cams() {
            if let Some(p) = cams.get_mut(&cam.name) {
                self.publish_all(cam, p).await;
            }
        }
    }

    async fn on_event(&self, event: &Event, cams: &mut HashMap<String, Published>) {
        let cam = event.camera.as_deref().and_then(|name| self.hub.cam(name));
        if let Some(id) = event.id {
            let mut data = event.data_with_kind();
            if let Value::Object(o) = &mut data {
                o.insert("id".into(), id.into());
            }
            let topic = match cam {
                Some(cam) => self.topics.cam(&cam.name, "events"),
                None => self.topics.server_events(),
            };
            self.outbox
                .push(Message::new(Kind::Event, topic, data.to_string()));
        }
        let Some(cam) = cam else { return };
        let Some(p) = cams.get_mut(&cam.name) else {
            return;
        };
        match event.kind {
            EventKind::Motion => {
                p.motion = true;
                self.publish_motion(cam, true);
                self.publish_event_snapshot(cam, event).await;
            }
            EventKind::MotionEnd => {
                p.motion = false;
                self.publish_motion(cam, false);
                if p.person {
                    p.person = false;
                    self.publish_person(cam, false);
                }
            }
            EventKind::Person => {
                p.person = true;
                self.publish_person(cam, true);
                // The frame that shows the person is the better picture.
                self.publish_event_snapshot(cam, event).await;
            }
            // What a phone was told, for an automation to forward to Home
            // Assistant's app (not what a snooze or the cooldown held).
            EventKind::Notify
                if event.data.get("status").and_then(Value::as_str) == Some("sent") =>
            {
                let topic = self.topics.cam(&cam.name, "notify");
                self.outbox
                    .push(Message::new(Kind::Event, topic, event.data.to_string()));
            }
            EventKind::Level => {
                if let Some(change) = event.data.get("change").and_then(Value::as_f64) {
                    p.change = change;
                }
            }
            _ => {}
        }
        self.publish_state(cam, p, false);
    }

    fn publish_person(&self, cam: &Camera, on: bool) {
        let payload = if on { "ON" } else { "OFF" };
        let topic = self.topics.cam(&cam.name, "person");
        self.outbox.push(Message::new(Kind::Edge, topic, payload));
    }

    fn publish_motion(&self, cam: &Camera, on: bool) {
        let payload = if on { "ON" } else { "OFF" };
        let topic = self.topics.cam(&cam.name, "motion");
        self.outbox.push(Message::new(Kind::Edge, topic, payload));
    }

    /// Publishes the state when it changed: at once for anything but the
    /// score, at most once a second for the score alone; `force` always.
    fn publish_state(&self, cam: &Camera, p: &mut Published, force: bool) {
        let state = report::cam_state(cam, p.person, p.change, p.motion);
        let due = match (&p.state, p.at) {
            (Some(last), Some(at)) if !force => {
                let same_but_score = CamState {
                    change: last.change,
                    ..state.clone()
                } == *last;
                if !same_but_score {
                    true
                } else {
                    last.change != state.change && at.elapsed() >= SCORE_EVERY
                }
            }
            _ => true,
        };
        if !due {
            return;
        }
        if let Ok(json) = serde_json::to_string(&state) {
            let topic = self.topics.cam(&cam.name, "state");
            self.outbox.push(Message::new(Kind::State, topic, json));
        }
        p.state = Some(state);
        p.at = Some(Instant::now());
    }

    /// The snapshot an event names (`/snaps/NAME`), if any, as the picture.
    async fn publish_event_snapshot(&self, cam: &Arc<Camera>, event: &Event) {
        let name = event
            .data
            .get("snapshot")
            .and_then(Value::as_str)
            .and_then(|url| url.rsplit('/').next());
        if let Some(name) = name {
            self.publish_snapshot(cam, name.to_string()).await;
        }
    }

    /// A snapshot file, retained as the camera's picture.
    async fn publish_snapshot(&self, cam: &Arc<Camera>, name: String) {
        let snaps = cam.snaps.clone();
        match tokio::task::spawn_blocking(move || snaps.read(&name)).await {
            Ok(Ok(jpeg)) if jpeg.len() > MAX_SNAPSHOT => tracing::warn!(
                "mqtt: not publishing a {} byte snapshot (at most {MAX_SNAPSHOT})",
                jpeg.len()
            ),
            Ok(Ok(jpeg)) => {
                let topic = self.topics.cam(&cam.name, "snapshot");
                self.outbox.push(Message::new(Kind::State, topic, jpeg));
            }
            Ok(Err(e)) => tracing::warn!("mqtt: cannot read the motion snapshot: {e}"),
            Err(e) => tracing::warn!("mqtt: snapshot read failed: {e}"),
        }
    }

    /// Empties the retained topics published for cameras (or under a
    /// prefix) this server no longer has, and remembers the current ones.
    async fn clear_removed(&self) {
        let store = self.hub.events().store();
        let mut now = vec![self.topics.availability()];
        for cam in self.hub.cams() {
            now.push(self.topics.device_config(&cam.name));
            for leaf in ["motion", "person", "state", "snapshot"] {
                now.push(self.topics.cam(&cam.name, leaf));
            }
        }
        let before: Vec<String> = match store.get(KEY_RETAINED).await {
            Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_default(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!("mqtt: cannot read the topics published before: {e}");
                return;
            }
        };
        for gone in before.into_iter().filter(|t| !now.contains(t)) {
            tracing::info!("mqtt: emptying {gone} (no longer configured)");
            self.outbox
                .push(Message::new(Kind::Keep, gone, Bytes::new()));
        }
        let text = serde_json::to_string(&now).unwrap_or_default();
        if let Err(e) = store.set(KEY_RETAINED, text).await {
            tracing::warn!("mqtt: cannot save the topics published: {e}");
        }
    }

    /// Everything retained about `cam`, again: discovery, motion, state and
    /// the newest motion snapshot.
    async fn publish_all(&self, cam: &Arc<Camera>, p: &mut Published) {
        let dashboard = format!("{}#cam/{}", self.dashboard, cam.name);
        let config = discovery::device(
            &self.topics,
            &cam.name,
            &dashboard,
            self.commands,
            cam.check.available(),
        );
        self.outbox.push(Message::new(
            Kind::Keep,
            self.topics.device_config(&cam.name),
            config.to_string(),
        ));
        p.motion = cam.cam.motion_active();
        self.publish_motion(cam, p.motion);
        if cam.check.available() {
            p.person = cam.check.episode_person().unwrap_or(false);
            self.publish_person(cam, p.person);
        }
        self.publish_state(cam, p, true);
        let snaps = cam.snaps.clone();
        let newest = tokio::task::spawn_blocking(move || {
            snaps.list(64, None).map(|list| {
                list.into_iter()
                    .find(|s| matches!(s.trigger, Trigger::Motion | Trigger::Person))
                    .map(|s| s.name)
            })
        })
        .await;
        if let Ok(Ok(Some(name))) = newest {
            self.publish_snapshot(cam, name).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_republishes_once_now_and_once_after_the_interval() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        assert!(pace.ask(t0, false), "the first, at once");
        assert_eq!(pace.due(), None);
        for ms in 1..1000 {
            assert!(!pace.ask(t0 + Duration::from_millis(ms), false));
        }
        assert_eq!(pace.due(), Some(t0 + REPUBLISH_EVERY));
        pace.done(t0 + REPUBLISH_EVERY);
        assert_eq!(pace.due(), None, "one owed, whatever the burst");
        // Quiet since: at once again.
        assert!(pace.ask(t0 + REPUBLISH_EVERY * 2, false));
    }

    #[test]
    fn a_connect_republishes_at_once_and_pays_what_is_owed() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        assert!(pace.ask(t0, false));
        assert!(!pace.ask(t0 + Duration::from_secs(1), false));
        assert!(pace.ask(t0 + Duration::from_secs(2), true));
        assert_eq!(pace.due(), None);
    }
}
