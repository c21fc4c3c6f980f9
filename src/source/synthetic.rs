//! The default source: a generated backyard scene, no hardware needed.
//!
//! Pictures come from [`Scene`]. Each distinct picture is encoded once, on a
//! blocking thread that runs ahead of the clock in the order the pictures are
//! shown, and cached; every later cycle publishes the cached JPEG again. So
//! the default camera costs as little to serve as a real camera that hands
//! over finished JPEGs, and the first cycle keeps its frame rate instead of
//! waiting on the encoder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{interval, MissedTickBehavior};

use super::error::SourceError;
use super::output::Output;
use super::scene::{MotionMode, Scene, SceneError};

/// Publishes the scene at `fps` until dropped.
pub async fn run(
    size: (u32, u32),
    fps: u32,
    motion: MotionMode,
    out: &Output,
) -> Result<(), SourceError> {
    let scene = Arc::new(Scene::new(size.0, size.1, fps, motion)?);
    let cache: Arc<Vec<OnceLock<Bytes>>> = Arc::new(
        (0..scene.picture_count())
            .map(|_| OnceLock::new())
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(stop.clone());
    let renderer = {
        let (scene, cache, stop) = (scene.clone(), cache.clone(), stop.clone());
        tokio::task::spawn_blocking(move || render_all(&scene, &cache, &stop))
    };
    let mut ticker = interval(Duration::from_secs_f64(1.0 / f64::from(fps.max(1))));
    // A late tick is skipped, not bunched: the scene keeps its pace.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut slot = 0usize;
    loop {
        ticker.tick().await;
        let picture = scene.picture_for_slot(slot);
        match cache.get(picture).and_then(OnceLock::get) {
            Some(jpeg) => out.publish(jpeg.clone()),
            // Not encoded yet (a slow machine at start): skip this tick,
            // unless the renderer has stopped, which means it failed.
            None if renderer.is_finished() => {
                return match renderer.await {
                    Ok(Err(e)) => Err(e.into()),
                    Ok(Ok(())) => Err(SourceError::Ended),
                    Err(e) => Err(SourceError::Exec(format!("scene renderer failed: {e}"))),
                };
            }
            None => {}
        }
        slot = (slot + 1) % scene.cycle_len().max(1);
    }
}

/// Encodes every picture once, in the order of the cycle's slots.
fn render_all(
    scene: &Scene,
    cache: &[OnceLock<Bytes>],
    stop: &AtomicBool,
) -> Result<(), SceneError> {
    for slot in 0..scene.cycle_len() {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let picture = scene.picture_for_slot(slot);
        if let Some(cell) = cache.get(picture) {
            if cell.get().is_none() {
                let _ = cell.set(Bytes::from(scene.render_jpeg(picture)?));
            }
        }
    }
    Ok(())
}

/// Tells the renderer thread to stop when the source is dropped (restart or
/// shutdown), so it does not go on encoding for nobody.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
