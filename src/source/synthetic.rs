//! The default source: a generated backyard scene, no hardware needed.
//!
//! Pictures come from [`Scene`]; each distinct picture is encoded once (off the
//! async executor) and cached, then the cached JPEG is published again on every
//! cycle, so serving the default camera costs as little as a real camera that
//! hands over finished JPEGs.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::{interval, MissedTickBehavior};

use super::scene::{MotionMode, Scene};
use super::{Output, SourceError};

/// Publishes the scene at `fps` until dropped.
pub async fn run(
    size: (u32, u32),
    fps: u32,
    motion: MotionMode,
    out: &Output,
) -> Result<(), SourceError> {
    let scene = std::sync::Arc::new(Scene::new(size.0, size.1, fps, motion)?);
    let mut cache: Vec<Option<Bytes>> = vec![None; scene.picture_count()];
    let mut ticker = interval(Duration::from_secs_f64(1.0 / f64::from(fps.max(1))));
    // A late tick is skipped, not bunched: the scene keeps its pace.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut slot = 0usize;
    loop {
        ticker.tick().await;
        let picture = scene.picture_for_slot(slot);
        let jpeg = match cache.get(picture).cloned().flatten() {
            Some(jpeg) => jpeg,
            None => {
                let scene = scene.clone();
                let jpeg = tokio::task::spawn_blocking(move || scene.render_jpeg(picture))
                    .await
                    .map_err(|e| SourceError::Exec(format!("scene renderer failed: {e}")))??;
                let jpeg = Bytes::from(jpeg);
                if let Some(entry) = cache.get_mut(picture) {
                    *entry = Some(jpeg.clone());
                }
                jpeg
            }
        };
        out.publish(jpeg);
        slot = (slot + 1) % scene.cycle_len().max(1);
    }
}
