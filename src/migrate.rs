//! What an older lookout left in the data directory, moved to where this
//! one keeps it, once, at start: a single-camera directory's counter,
//! settings, history and snapshots become the first camera's.

use std::path::Path;

use crate::cam::{key, KEY_SETTINGS, KEY_TRIGGERS};
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
