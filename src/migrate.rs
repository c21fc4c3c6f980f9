//! What an older lookout left in the data directory, moved to where this
//! one keeps it, once, at start: a single-camera directory's counter,
//! settings, history and snapshots become the first camera's, and the
//! server-wide settings the cameras kept become the server's.

use std::path::Path;

use serde_json::{Map, Value};

use crate::cam::{key, KEY_SETTINGS, KEY_TRIGGERS};
use crate::serverwide::{self, take_server_keys};
use crate::store::{Store, StoreError};

/// Moves a single-camera data directory's counter and settings to
/// `camera`'s keys and gives it the stored history, once.
pub async fn legacy_state(store: &Store, camera: &str) -> Result<(), StoreError> {
    for k in [KEY_TRIGGERS, KEY_SETTINGS] {
        if let Some(old) = store.get(k).await? {
            if store.get(&key(camera, k)).await?.is_none() {
                store.set(&key(camera, k), old).await?;
                tracing::info!("camera {camera:?} takes over the stored {k}");
            }
            store.delete(k).await?;
        }
    }
    let claimed = store.claim_events(camera).await?;
    if claimed > 0 {
        tracing::info!("camera {camera:?} takes over {claimed} stored event(s)");
    }
    Ok(())
}

/// Moves a single-camera data directory's snapshots (right in `snaps/`)
/// into the first camera's folder `dir`.
pub fn legacy_snapshots(
    root: &Path,
    dir: &Path,
    camera: &str,
) -> Result<(), crate::snaps::SnapError> {
    let moved = crate::snaps::migrate_legacy(root, dir)?;
    if moved > 0 {
        tracing::info!("camera {camera:?} takes over {moved} snapshot(s)");
    }
    Ok(())
}

/// Gives the server the server-wide settings (history retention, SSE
/// keepalive) that an older lookout saved among each camera's settings:
/// the first camera's, as that lookout used them, when the server has none
/// saved yet. They leave every camera's saved settings, where they are no
/// setting any more. `cameras` in configuration order.
pub async fn legacy_server_settings(store: &Store, cameras: &[&str]) -> Result<(), StoreError> {
    let server_saved = store.get(serverwide::KEY).await?.is_some();
    let mut writes = Vec::new();
    for (i, camera) in cameras.iter().enumerate() {
        let k = key(camera, KEY_SETTINGS);
        let Some(text) = store.get(&k).await? else {
            continue;
        };
        // An unreadable one is left to the camera, which says so.
        let Ok(mut saved) = serde_json::from_str::<Map<String, Value>>(&text) else {
            continue;
        };
        let taken = take_server_keys(&mut saved);
        if taken.is_empty() {
            continue;
        }
        // Only the first camera's were used; the others' were copies.
        if i == 0 && !server_saved {
            tracing::info!(
                "the server takes over the saved {} of camera {camera:?}",
                taken.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            writes.push((
                serverwide::KEY.to_string(),
                Value::Object(taken).to_string(),
            ));
        }
        writes.push((k, Value::Object(saved).to_string()));
    }
    if !writes.is_empty() {
        store.set_many(writes).await?;
    }
    Ok(())
}
