//! JPEGs of a decoded camera's pictures, made only while someone watches
//! MJPEG.
//!
//! A camera whose video lookout decodes (RTSP H.264/H.265) publishes
//! pictures, not JPEGs: the detector and the person check read the
//! pictures, and a JPEG costs an encode (milliseconds at 1080p). This task
//! makes one of the newest picture while at least one MJPEG viewer watches
//! ([`FrameSink::watch_jpegs`]), at most `mjpeg_fps` a second, off the
//! async workers, and shows it to every viewer at once: one encode per
//! frame however many watch. With nobody watching it sleeps, and the
//! camera costs no encode at all. A snapshot asks its frame for its JPEG
//! itself ([`Frame::jpeg_async`](crate::frame::Frame::jpeg_async)).

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::frame::FrameSink;

/// How often the demand is looked at again while no picture comes.
const RECHECK: Duration = Duration::from_secs(1);

/// Makes JPEGs of `sink`'s pictures while someone watches, at most
/// `max_fps()` a second, until `cancel` fires.
pub async fn run(sink: FrameSink, max_fps: impl Fn() -> u32, cancel: CancellationToken) {
    let mut frames = sink.subscribe();
    let mut last_seq = 0;
    let mut last_made: Option<Instant> = None;
    loop {
        if sink.watching() == 0 {
            sink.hide_pictures();
            tokio::select! {
                _ = sink.watched() => {}
                _ = cancel.cancelled() => return,
            }
            continue;
        }
        let newest = frames.borrow_and_update().clone();
        let Some(frame) = newest.filter(|f| f.picture().is_some() && f.seq > last_seq) else {
            tokio::select! {
                r = frames.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(RECHECK) => {}
                _ = cancel.cancelled() => return,
            }
            continue;
        };
        let gap = Duration::from_secs_f64(1.0 / f64::from(max_fps().max(1)));
        if let Some(next) = last_made.map(|t| t + gap).filter(|&t| t > Instant::now()) {
            // Too soon: wait, then take whatever is newest by then.
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = cancel.cancelled() => return,
            }
            continue;
        }
        last_made = Some(Instant::now());
        last_seq = frame.seq;
        let made = frame.clone();
        if tokio::task::spawn_blocking(move || made.jpeg())
            .await
            .is_ok()
        {
            sink.show(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::Picture;

    fn picture(shade: u8) -> Picture {
        Picture::new(16, 16, vec![shade; Picture::len_for(16, 16)]).unwrap()
    }

    /// Waits (up to a generous deadline) for `cond`.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn encodes_only_while_watched_and_shows_the_newest() {
        let (sink, _rx) = FrameSink::new();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(sink.clone(), || 30, cancel.clone()));
        for shade in 0..5 {
            sink.publish_picture(picture(shade));
        }
        tokio::task::yield_now().await;
        assert_eq!(sink.encodes(), 0, "nobody watches: no encode");
        let (mut jpegs, watching) = sink.watch_jpegs();
        jpegs.changed().await.unwrap();
        let shown = jpegs.borrow_and_update().clone().unwrap();
        assert_eq!(shown.seq, 5, "the newest picture, not the first");
        assert!(shown.has_jpeg());
        assert_eq!(sink.encodes(), 1);
        let next = sink.publish_picture(picture(9));
        until("the next picture shown", || {
            jpegs.borrow().as_ref().map(|f| f.seq) == Some(next.seq)
        })
        .await;
        drop(watching);
        until("the old picture taken off show", || {
            jpegs.borrow().is_none()
        })
        .await;
        let made = sink.encodes();
        for shade in 0..3 {
            sink.publish_picture(picture(shade));
        }
        // The task had every chance to run: still no encode.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(sink.encodes(), made);
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_max_fps() {
        let (sink, _rx) = FrameSink::new();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(sink.clone(), || 5, cancel.clone()));
        let (_jpegs, _watching) = sink.watch_jpegs();
        // 30 pictures a second for 2 s of (paused, auto-advancing) time.
        for i in 0..60u8 {
            sink.publish_picture(picture(i));
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
        let made = sink.encodes();
        // At 5 a second, 10 or 11 in 2 s; fewer if time jumped while one
        // was being made, never more.
        assert!((2..=12).contains(&made), "{made} JPEGs in 2 s at 5 fps");
        cancel.cancel();
        task.await.unwrap();
    }
}
