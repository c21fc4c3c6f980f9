//! The load: MJPEG viewers on `/stream.jpg` that read everything and keep
//! only a byte count, so the server streams to each as it would to a phone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::task::JoinSet;

/// The viewers; they hang up when dropped.
pub(crate) struct Viewers {
    tasks: JoinSet<()>,
    pub(crate) bytes: Arc<AtomicU64>,
    /// Viewers whose stream ended or was refused.
    pub(crate) lost: Arc<AtomicU64>,
}

impl Viewers {
    /// `n` viewers of `url`, each on its own connection.
    pub(crate) fn start(url: &str, n: usize) -> Viewers {
        let bytes = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..n {
            let (url, bytes, lost) = (url.to_string(), bytes.clone(), lost.clone());
            tasks.spawn(async move {
                // A client each: one connection per viewer, as browsers do.
                let client = reqwest::Client::new();
                match client.get(&url).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        let mut body = resp.bytes_stream();
                        while let Some(Ok(chunk)) = body.next().await {
                            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                    }
                    _ => {}
                }
                lost.fetch_add(1, Ordering::Relaxed);
            });
        }
        Viewers { tasks, bytes, lost }
    }

    /// Bytes received by all viewers so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Viewers no longer streaming.
    pub(crate) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Hangs up every viewer.
    pub(crate) fn stop(mut self) {
        self.tasks.abort_all();
    }
}
