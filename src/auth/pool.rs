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

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Checks that may wait for a thread at once; more are refused at once. At
/// tens of milliseconds a check, the last of them waits about a second.
const MAX_WAITING: usize = 32;
/// The longest a check waits for a thread before it is refused.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Worker threads for argon2 and the permits that keep their queue empty.
pub(crate) struct CheckPool {
    jobs: SyncSender<Job>,
    permits: Arc<Semaphore>,
    /// Checks waiting for a permit.
    waiting: Arc<AtomicUsize>,
}

/// One place in the line for a permit; given back when dropped.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn join(line: &Arc<AtomicUsize>) -> Option<Waiting> {
        line.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_WAITING).then_some(n + 1)
        })
        .ok()?;
        Some(Waiting(line.clone()))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
            waiting: Arc::default(),
        })
    }

    /// Runs `f` on a worker if one is free now; `None` when all are busy.
    #[cfg(test)]
    pub(crate) async fn try_run<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Memory) -> T + Send + 'static,
    {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        self.run_with(permit, f).await
    }

    /// Runs `f` on a worker, waiting in arrival order for one to be free
    /// (tokio's semaphore is fair), at most [`MAX_WAIT`] and behind at most
    /// [`MAX_WAITING`] others; `None` when refused. The caller keeps each
    /// address to one check at a time, so a flood from many addresses is
    /// served in turn instead of answered "busy" to whoever comes last.
    pub(crate) async fn run_queued<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Memory) -> T + Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _place = Waiting::join(&self.waiting)?;
                tokio::time::timeout(MAX_WAIT, self.permits.clone().acquire_owned())
                    .await
                    .ok()?
                    .ok()?
            }
        };
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

    #[tokio::test]
    async fn queued_checks_wait_their_turn_and_the_line_is_bounded() {
        let pool = Arc::new(CheckPool::new(1).unwrap());
        let held = pool.hold().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..MAX_WAITING {
            let (queued, order) = (pool.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                queued
                    .run_queued(move |_| crate::sync::lock(&order).push(i))
                    .await
            }));
            // Each joins the line before the next is started.
            while pool.waiting.load(Ordering::SeqCst) <= i {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(pool.run_queued(|_| ()).await, None, "the line is full");
        drop(held);
        for w in waiters {
            assert_eq!(w.await.unwrap(), Some(()));
        }
        let order = crate::sync::lock(&order).clone();
        assert_eq!(order, (0..MAX_WAITING).collect::<Vec<_>>(), "arrival order");
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
    }
}
