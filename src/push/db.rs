//! What notifications keep in the store: the phones' subscriptions, the
//! incidents (with the picture each notification shows) and the outbox of
//! notifications not yet delivered.
//!
//! The outbox is a table rather than files (as the uploads are) because a
//! notification is small and is decided together with its incident: one
//! transaction keeps both or neither, and a row leaves only after the push
//! service's 2xx, so a crash or a restart sends what was pending, once.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

/// Incidents kept; the oldest go.
pub const MAX_INCIDENTS: i64 = 1000;
/// Incidents that keep their picture (about 100 KB each at 720p: some
/// 20 MB of the database); older ones keep their row and lose the picture.
pub const MAX_PICTURES: i64 = 200;
/// Notifications waiting at most (a push service down for hours while the
/// yard is busy); the oldest go first.
pub const MAX_OUTBOX: i64 = 5000;

/// The tables, made at open when missing.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS push_subscriptions (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL UNIQUE,
    subscription TEXT NOT NULL,
    name TEXT NOT NULL,
    cameras TEXT,
    wants TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    started REAL NOT NULL,
    kind TEXT NOT NULL,
    zones TEXT NOT NULL,
    verdict TEXT,
    clip TEXT,
    duration_s REAL,
    notified_at REAL,
    picture BLOB);
CREATE INDEX IF NOT EXISTS incidents_camera ON incidents(camera, id);
CREATE TABLE IF NOT EXISTS push_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    incident INTEGER,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    message TEXT NOT NULL);";

/// A phone's subscription as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionRow {
    /// Its id.
    pub id: String,
    /// The push service's URL for this phone (its path is the phone's
    /// secret address, so only the origin is shown).
    #[serde(skip)]
    pub endpoint: String,
    /// The push service (`https://fcm.googleapis.com`), so a device can
    /// tell its own registration.
    pub endpoint_origin: String,
    /// The browser's PushSubscriptionJSON.
    #[serde(skip)]
    pub subscription: String,
    /// The name the device gave itself.
    pub name: String,
    /// The cameras it hears from (`None`: all).
    pub cameras: Option<Vec<String>>,
    /// `person` or `motion`.
    pub on: String,
    /// When it was registered, Unix seconds.
    pub created: f64,
}

/// One incident as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRow {
    /// Its id (the store id of its `motion` event).
    pub id: i64,
    /// Its camera.
    pub camera: String,
    /// When it started, Unix seconds.
    pub start_ts: f64,
    /// `person` once the check saw one, else `motion`.
    pub kind: String,
    /// The zones its motion touched at the start.
    pub zones: Vec<String>,
    /// `sent`, `snoozed`, `merged`, or `null` (nothing was due).
    pub notified: Option<String>,
    /// Its clip's URL, when one was recorded.
    pub clip: Option<String>,
    /// How long it lasted, once over.
    pub duration_s: Option<f64>,
    /// The picture's URL, when one was kept.
    pub picture: Option<String>,
    /// Its thumbnail's URL (320 px wide, for lists of incidents), when a
    /// picture was kept.
    pub thumb: Option<String>,
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Its row.
    pub id: i64,
    /// `ntfy` or a subscription id.
    pub target: String,
    /// The incident it is about (`None`: a test).
    pub incident: Option<i64>,
    /// When it was queued, Unix seconds.
    pub created: f64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this, Unix seconds.
    pub next_at: f64,
    /// The message (JSON).
    pub message: String,
}

/// The notification tables of one store.
#[derive(Clone)]
pub struct Db {
    store: Store,
}

/// Drops the oldest notifications beyond [`MAX_OUTBOX`]; how many.
fn bound_outbox(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM push_outbox WHERE id <= (SELECT id FROM push_outbox ORDER BY id DESC
         LIMIT 1 OFFSET ?1)",
        [MAX_OUTBOX],
    )
}

/// `cameras` as stored: JSON, or NULL for all.
fn cameras_column(cameras: &Option<Vec<String>>) -> Option<String> {
    cameras
        .as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()))
}

/// The origin of `url` (`https://push.example`), or nothing.
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The picture route of incident `id`.
pub fn picture_url(id: i64) -> String {
    format!("/api/incidents/{id}/picture.jpg")
}

/// The thumbnail route of incident `id`.
pub fn thumb_url(id: i64) -> String {
    format!("/api/incidents/{id}/thumb.jpg")
}

/// A new subscription, for [`Db::subscribe`].
#[derive(Debug, Clone, Deserialize)]
pub struct NewSubscription {
    /// The push service's URL (unique: registering it again replaces it).
    pub endpoint: String,
    /// The browser's PushSubscriptionJSON, as validated.
    pub subscription: String,
    /// The device's name.
    pub name: String,
    /// Its cameras (`None`: all).
    pub cameras: Option<Vec<String>>,
    /// `person` or `motion`.
    pub on: String,
}

impl Db {
    /// The tables in `store`, made when missing.
    pub async fn open(store: Store) -> Result<Db, StoreError> {
        store.with(|c| c.execute_batch(SCHEMA)).await?;
        Ok(Db { store })
    }

    /// Stores a subscription under `id`, or replaces the one with the same
    /// endpoint (keeping its id); returns the id it has.
    pub async fn subscribe(
        &self,
        id: String,
        sub: NewSubscription,
        now: f64,
    ) -> Result<String, StoreError> {
        self.store
            .with(move |c| {
                let tx = c.transaction()?;
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT id FROM push_subscriptions WHERE endpoint = ?1",
                        [&sub.endpoint],
                        |r| r.get(0),
                    )
                    .optional()?;
                let id = existing.unwrap_or(id);
                tx.execute(
                    "INSERT INTO push_subscriptions (id, endpoint, subscription, name, cameras, wants, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(id) DO UPDATE SET subscription = excluded.subscription,
                         name = excluded.name, cameras = excluded.cameras, wants = excluded.wants",
                    params![id, sub.endpoint, sub.subscription, sub.name, cameras_column(&sub.cameras), sub.on, now],
                )?;
                tx.commit()?;
                Ok(id)
            })
            .await
    }

    /// Every subscription, oldest first.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, StoreError> {
        self.store
            .with(|c| {
                let mut st = c.prepare_cached(
                    "SELECT id, endpoint, subscription, name, cameras, wants, created
                     FROM push_subscriptions ORDER BY created, id",
                )?;
                let rows = st.query_map([], |r| {
                    let cameras: Option<String> = r.get(4)?;
                    let endpoint: String = r.get(1)?;
                    Ok(SubscriptionRow {
                        id: r.get(0)?,
                        endpoint_origin: origin(&endpoint),
                        endpoint,
                        subscription: r.get(2)?,
                        name: r.get(3)?,
                        cameras: cameras.and_then(|c| serde_json::from_str(&c).ok()),
                        on: r.get(5)?,
                        created: r.get(6)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    /// Subscription `id`'s stored PushSubscriptionJSON (one row, read for
    /// each push).
    pub async fn subscription_json(&self, id: &str) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        self.store
            .with(move |c| {
                c.query_row(
                    "SELECT subscription FROM push_subscriptions WHERE id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
    }

    /// Removes a subscription and what waits for it; whether it existed.
    pub async fn unsubscribe(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.store
            .with(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute("DELETE FROM push_subscriptions WHERE id = ?1", [&id])?;
                tx.execute("DELETE FROM push_outbox WHERE target = ?1", [&id])?;
                tx.commit()?;
                Ok(n > 0)
            })
            .await
    }

    /// Records a new incident with its picture, keeping the newest
    /// [`MAX_INCIDENTS`].
    pub async fn add_incident(
        &self,
        id: i64,
        camera: &str,
        started: f64,
        zones: &[String],
        clip: Option<String>,
        picture: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let camera = camera.to_string();
        let zones = serde_json::to_string(zones).unwrap_or_else(|_| "[]".into());
        self.store
            .with(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO incidents (id, camera, started, kind, zones, clip, picture)
                     VALUES (?1, ?2, ?3, 'motion', ?4, ?5, ?6)",
                    params![id, camera, started, zones, clip, picture],
                )?;
                c.execute(
                    "DELETE FROM incidents WHERE id <= (SELECT id FROM incidents ORDER BY id DESC
                     LIMIT 1 OFFSET ?1)",
                    [MAX_INCIDENTS],
                )?;
                c.execute(
                    "UPDATE incidents SET picture = NULL WHERE picture IS NOT NULL AND id <=
                     (SELECT id FROM incidents ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                    [MAX_PICTURES],
                )?;
                Ok(())
            })
            .await
    }

    /// The check saw a person in incident `id`: its kind, and the frame
    /// that shows the person as its picture (when there is one).
    pub async fn incident_person(
        &self,
        id: i64,
        picture: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.store
            .with(move |c| {
                c.execute(
                    "UPDATE incidents SET kind = 'person', picture = COALESCE(?2, picture) WHERE id = ?1",
                    params![id, picture],
                )?;
                Ok(())
            })
            .await
    }

    /// Incident `id` ended after `duration_s`.
    pub async fn incident_ended(&self, id: i64, duration_s: f64) -> Result<(), StoreError> {
        self.store
            .with(move |c| {
                c.execute(
                    "UPDATE incidents SET duration_s = ?2 WHERE id = ?1",
                    params![id, duration_s],
                )?;
                Ok(())
            })
            .await
    }

    /// Records what became of incident `id` and queues its notifications,
    /// in one transaction: `(target, message)` pairs, due now.
    pub async fn decide(
        &self,
        id: i64,
        verdict: Option<&'static str>,
        outbox: Vec<(String, String)>,
        now: f64,
    ) -> Result<(), StoreError> {
        self.store
            .with(move |c| {
                let tx = c.transaction()?;
                if let Some(v) = verdict {
                    tx.execute(
                        "UPDATE incidents SET verdict = ?2,
                             notified_at = CASE WHEN ?2 = 'sent' THEN ?3 END WHERE id = ?1",
                        params![id, v, now],
                    )?;
                }
                for (target, message) in outbox {
                    tx.execute(
                        "INSERT INTO push_outbox (target, incident, created, next_at, message)
                         VALUES (?1, ?2, ?3, ?3, ?4)",
                        params![target, id, now, message],
                    )?;
                }
                bound_outbox(&tx)?;
                tx.commit()
            })
            .await
    }

    /// Queues a test notification for each of `targets`.
    pub async fn queue_test(
        &self,
        targets: Vec<(String, String)>,
        now: f64,
    ) -> Result<(), StoreError> {
        self.store
            .with(move |c| {
                let tx = c.transaction()?;
                for (target, message) in targets {
                    tx.execute(
                        "INSERT INTO push_outbox (target, incident, created, next_at, message)
                         VALUES (?1, NULL, ?2, ?2, ?3)",
                        params![target, now, message],
                    )?;
                }
                bound_outbox(&tx)?;
                tx.commit()
            })
            .await
    }

    /// The notification due first (oldest among those due), or when the
    /// next one falls due; `None` when the outbox is empty.
    pub async fn next(&self) -> Result<Option<Pending>, StoreError> {
        self.store
            .with(|c| {
                c.query_row(
                    "SELECT id, target, incident, created, attempts, next_at, message
                     FROM push_outbox ORDER BY next_at, id LIMIT 1",
                    [],
                    |r| {
                        Ok(Pending {
                            id: r.get(0)?,
                            target: r.get(1)?,
                            incident: r.get(2)?,
                            created: r.get(3)?,
                            attempts: r.get(4)?,
                            next_at: r.get(5)?,
                            message: r.get(6)?,
                        })
                    },
                )
                .optional()
            })
            .await
    }

    /// Notifications waiting.
    pub async fn queued(&self) -> Result<u64, StoreError> {
        self.store
            .with(|c| c.query_row("SELECT COUNT(*) FROM push_outbox", [], |r| r.get(0)))
            .await
    }

    /// Delivered or given up: out of the outbox.
    pub async fn done(&self, id: i64) -> Result<(), StoreError> {
        self.store
            .with(move |c| {
                c.execute("DELETE FROM push_outbox WHERE id = ?1", [id])
                    .map(|_| ())
            })
            .await
    }

    /// Failed for now: try again at `next_at`.
    pub async fn retry_at(&self, id: i64, next_at: f64) -> Result<(), StoreError> {
        self.store
            .with(move |c| {
                c.execute(
                    "UPDATE push_outbox SET attempts = attempts + 1, next_at = ?2 WHERE id = ?1",
                    params![id, next_at],
                )
                .map(|_| ())
            })
            .await
    }

    /// Every pending notification due now or later is due now (the
    /// `flush` after a push service came back).
    pub async fn due_now(&self, now: f64) -> Result<(), StoreError> {
        self.store
            .with(move |c| {
                c.execute("UPDATE push_outbox SET next_at = MIN(next_at, ?1)", [now])
                    .map(|_| ())
            })
            .await
    }

    /// When each camera's last incident was notified, Unix seconds: the
    /// cooldown goes on across a restart.
    pub async fn last_notified(&self) -> Result<Vec<(String, f64)>, StoreError> {
        self.store
            .with(|c| {
                let mut st = c.prepare(
                    "SELECT camera, MAX(notified_at) FROM incidents
                     WHERE notified_at IS NOT NULL GROUP BY camera",
                )?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await
    }

    /// Incident `id`'s picture.
    pub async fn picture(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.store
            .with(move |c| {
                c.query_row("SELECT picture FROM incidents WHERE id = ?1", [id], |r| {
                    r.get::<_, Option<Vec<u8>>>(0)
                })
                .optional()
                .map(Option::flatten)
            })
            .await
    }

    /// Incidents, newest first: at most `limit`, before id `before`, of
    /// `camera` when given.
    pub async fn incidents(
        &self,
        camera: Option<String>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        self.store
            .with(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, camera, started, kind, zones, verdict, clip, duration_s,
                            picture IS NOT NULL
                     FROM incidents
                     WHERE (?1 IS NULL OR camera = ?1) AND (?2 IS NULL OR id < ?2)
                     ORDER BY id DESC LIMIT ?3",
                )?;
                let rows = st.query_map(params![camera, before, limit as i64], |r| {
                    let id: i64 = r.get(0)?;
                    let zones: String = r.get(4)?;
                    let has_picture: bool = r.get(8)?;
                    Ok(IncidentRow {
                        id,
                        camera: r.get(1)?,
                        start_ts: r.get(2)?,
                        kind: r.get(3)?,
                        zones: serde_json::from_str(&zones).unwrap_or_default(),
                        notified: r.get(5)?,
                        clip: r.get(6)?,
                        duration_s: r.get(7)?,
                        picture: has_picture.then(|| picture_url(id)),
                        thumb: has_picture.then(|| thumb_url(id)),
                    })
                })?;
                rows.collect()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, Db::open(store).await.unwrap())
    }

    fn sub(endpoint: &str, name: &str) -> NewSubscription {
        NewSubscription {
            endpoint: endpoint.into(),
            subscription: "{}".into(),
            name: name.into(),
            cameras: Some(vec!["yard".into()]),
            on: "person".into(),
        }
    }

    #[tokio::test]
    async fn the_same_endpoint_registered_again_keeps_its_id() {
        let (_dir, db) = db().await;
        let a = db
            .subscribe("a".into(), sub("https://p/1", "phone"), 1.0)
            .await
            .unwrap();
        let again = db
            .subscribe("b".into(), sub("https://p/1", "phone 2"), 2.0)
            .await
            .unwrap();
        assert_eq!(a, again);
        let all = db.subscriptions().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "phone 2");
        assert_eq!(all[0].endpoint_origin, "https://p");
        assert_eq!(all[0].cameras.as_deref(), Some(&["yard".to_string()][..]));
        assert!(db.unsubscribe(&a).await.unwrap());
        assert!(!db.unsubscribe(&a).await.unwrap());
    }

    #[tokio::test]
    async fn the_outbox_gives_the_due_one_first_and_keeps_what_is_not_done() {
        let (_dir, db) = db().await;
        db.add_incident(7, "yard", 1.0, &["gate".into()], None, Some(vec![1, 2]))
            .await
            .unwrap();
        db.decide(
            7,
            Some("sent"),
            vec![("a".into(), "m1".into()), ("b".into(), "m2".into())],
            10.0,
        )
        .await
        .unwrap();
        let first = db.next().await.unwrap().unwrap();
        assert_eq!((first.target.as_str(), first.incident), ("a", Some(7)));
        db.retry_at(first.id, 20.0).await.unwrap();
        let second = db.next().await.unwrap().unwrap();
        assert_eq!(second.target, "b");
        db.done(second.id).await.unwrap();
        let again = db.next().await.unwrap().unwrap();
        assert_eq!(
            (again.id, again.attempts, again.next_at),
            (first.id, 1, 20.0)
        );
        db.due_now(15.0).await.unwrap();
        assert_eq!(db.next().await.unwrap().unwrap().next_at, 15.0);
        assert_eq!(db.queued().await.unwrap(), 1);
        let listed = db.incidents(Some("yard".into()), None, 10).await.unwrap();
        assert_eq!(listed[0].notified.as_deref(), Some("sent"));
        assert_eq!(
            listed[0].picture.as_deref(),
            Some("/api/incidents/7/picture.jpg")
        );
        assert_eq!(
            listed[0].thumb.as_deref(),
            Some("/api/incidents/7/thumb.jpg")
        );
        assert_eq!(db.picture(7).await.unwrap(), Some(vec![1, 2]));
        assert_eq!(
            db.last_notified().await.unwrap(),
            [("yard".to_string(), 10.0)]
        );
    }

    #[tokio::test]
    async fn old_incidents_lose_their_picture_then_their_row_and_the_outbox_is_bounded() {
        let (_dir, db) = db().await;
        for id in 1..=MAX_INCIDENTS + 5 {
            db.add_incident(id, "yard", id as f64, &[], None, Some(vec![1]))
                .await
                .unwrap();
        }
        let newest = MAX_INCIDENTS + 5;
        assert_eq!(db.picture(newest).await.unwrap(), Some(vec![1]));
        assert_eq!(db.picture(newest - MAX_PICTURES).await.unwrap(), None);
        let all = db.incidents(None, None, 2000).await.unwrap();
        assert_eq!(all.len() as i64, MAX_INCIDENTS);
        let rows: Vec<(String, String)> = (0..MAX_OUTBOX + 3)
            .map(|i| ("t".to_string(), format!("m{i}")))
            .collect();
        db.queue_test(rows, 1.0).await.unwrap();
        assert_eq!(db.queued().await.unwrap() as i64, MAX_OUTBOX);
        // The oldest went: the first one due is now the fourth queued.
        assert_eq!(db.next().await.unwrap().unwrap().message, "m3");
    }

    #[tokio::test]
    async fn an_incident_without_a_picture_lists_no_picture_and_no_thumbnail() {
        let (_dir, db) = db().await;
        db.add_incident(3, "yard", 1.0, &[], None, None)
            .await
            .unwrap();
        let listed = db.incidents(None, None, 10).await.unwrap();
        assert_eq!(
            (listed[0].picture.as_deref(), listed[0].thumb.as_deref()),
            (None, None)
        );
        // The person's frame arrives: both are listed from then on.
        db.incident_person(3, Some(vec![9])).await.unwrap();
        let listed = db.incidents(None, None, 10).await.unwrap();
        assert_eq!(
            listed[0].thumb.as_deref(),
            Some("/api/incidents/3/thumb.jpg")
        );
    }

    #[tokio::test]
    async fn unsubscribing_drops_what_waits_for_that_phone() {
        let (_dir, db) = db().await;
        let id = db
            .subscribe("a".into(), sub("https://p/1", "phone"), 1.0)
            .await
            .unwrap();
        db.queue_test(vec![(id.clone(), "m".into())], 1.0)
            .await
            .unwrap();
        db.unsubscribe(&id).await.unwrap();
        assert_eq!(db.next().await.unwrap(), None);
    }
}
