//! A few dedicated threads for argon2, so password checks cost bounded
//! memory however many arrive.
//!
//! argon2 (the crate's defaults) fills about 19 MiB per check. On the tokio
//! blocking pool (up to 512 threads) 48 parallel wrong passwords took the
//! server from 11 MB to 1.6 GB. Bounding the checks in flight is not enough:
//! the crate allocates that memory 64-byte aligned for every check, and glibc
//! does not reuse such freed blocks well, so RSS grew by about 19 MiB per
//! check even one at a time (132 MiB after a few dozen with two permits).
//! Here each of [`PASSWORD_CHECKS`](super::PASSWORD_CHECKS) threads owns one
//! buffer that every check it runs reuses, so what argon2 can ever hold is
//! that many buffers; a thread idle for [`IDLE`] frees its buffer.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Block;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// A worker's argon2 memory, grown to the size a check needs and reused.
pub(crate) type Memory = Vec<Block>;

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A worker with nothing to do this long frees its buffer: a camera that is
/// signed into now and then should not keep 19 MiB per worker for good.
const IDLE: Duration = Duration::from_secs(60);

/// Worker threads for argon2 and the permits that keep their queue empty.
pub(crate) struct CheckPool {
    jobs: SyncSender<Job>,
    permits: Arc<Semaphore>,
}

impl CheckPool {
    /// Starts `threads` workers; they end when the pool is dropped.
    pub(crate) fn new(threads: usize) -> std::io::Result<CheckPool> {
        let (jobs, queue) = sync_channel::<Job>(threads);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("lookout-argon2-{i}"))
                .spawn(move || work(&queue))?;
        }
        Ok(CheckPool {
            jobs,
            permits: Arc::new(Semaphore::new(threads)),
        })
    }

    /// Runs `f` on a worker if one is free now; `None` when all are busy.
    pub(crate) async fn try_run<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Memory) -> T + Send + 'static,
    {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        self.run_with(permit, f).await
    }

    /// Runs `f` on a worker, waiting for one to be free (start-up and
    /// maintenance work, never a request).
    pub(crate) async fn run<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Memory) -> T + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        self.run_with(permit, f).await
    }

    async fn run_with<T, F>(&self, permit: OwnedSemaphorePermit, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Memory) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        // The permit goes with the job: a client that hangs up does not free
        // it while its check still holds memory.
        let job: Job = Box::new(move |memory| {
            let out = f(memory);
            drop(permit);
            let _ = tx.send(out);
        });
        // With no more permits than threads the queue never fills, so this
        // does not block the executor.
        self.jobs.try_send(job).ok()?;
        rx.await.ok()
    }

    /// A permit held without running anything (tests: a pool kept busy).
    #[cfg(test)]
    pub(crate) fn hold(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    let mut memory = Memory::new();
    loop {
        let job = crate::sync::lock(queue).recv_timeout(IDLE);
        match job {
            Ok(job) => job(&mut memory),
            Err(RecvTimeoutError::Timeout) => memory = Memory::new(),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_named_threads_and_busy_is_immediate() {
        let pool = CheckPool::new(2).unwrap();
        let name = pool
            .try_run(|_| std::thread::current().name().map(str::to_string))
            .await
            .flatten()
            .unwrap();
        assert!(name.starts_with("lookout-argon2-"), "{name}");
        let held = [pool.hold().unwrap(), pool.hold().unwrap()];
        assert_eq!(pool.try_run(|_| 1).await, None);
        drop(held);
        assert_eq!(pool.try_run(|_| 2).await, Some(2));
        assert_eq!(pool.run(|_| 3).await, Some(3));
    }
}
