//! Where request bodies are inflated, parsed and decoded: on tokio's blocking threads, at
//! most one such job per core at a time, so a burst of large batches never holds the
//! async workers that answer every other request (a 20 MiB body takes tens of
//! milliseconds to inflate and parse).

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::ApiError;

/// A bounded pool for CPU-heavy request work.
#[derive(Clone)]
pub struct CpuPool {
    slots: Arc<Semaphore>,
}

impl CpuPool {
    /// At most `slots` jobs at once (at least one).
    pub fn new(slots: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(slots.max(1))) }
    }

    /// One job per core of this machine.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `work` on a blocking thread once a slot is free, and answers what it gave.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = self.slots.clone().acquire_owned().await.map_err(|e| ApiError::internal(&e.into()))?;
        let done = tokio::task::spawn_blocking(move || {
            let answer = work();
            drop(slot);
            answer
        })
        .await;
        done.map_err(|e| ApiError::internal(&e.into()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::sync::mpsc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_holds_its_slot_until_it_ends_and_the_next_waits_for_one() {
        let pool = CpuPool::new(2);
        let (started_tx, started_rx) = mpsc::channel();
        let release = Arc::new(Barrier::new(3));
        let jobs: Vec<_> = (0..2)
            .map(|n| {
                let (pool, started, release) = (pool.clone(), started_tx.clone(), release.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        started.send(()).unwrap();
                        release.wait();
                        n
                    })
                    .await
                })
            })
            .collect();
        tokio::task::spawn_blocking(move || (started_rx.recv().unwrap(), started_rx.recv().unwrap())).await.unwrap();
        assert_eq!(pool.slots.available_permits(), 0, "both slots are held");
        let third = pool.run(|| 2);
        tokio::pin!(third);
        assert!(futures::poll!(third.as_mut()).is_pending(), "no slot: the third job waits");

        tokio::task::spawn_blocking(move || release.wait()).await.unwrap();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert_eq!(third.await.unwrap(), 2);
        assert_eq!(pool.slots.available_permits(), 2, "every slot is given back");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_async_worker_stays_free_while_a_job_runs() {
        let pool = CpuPool::new(1);
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let job = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    7
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap()).await.unwrap();
        // The runtime's only worker runs other tasks while the job holds its thread.
        assert_eq!(tokio::spawn(async { 1 + 1 }).await.unwrap(), 2);
        release_tx.send(()).unwrap();
        assert_eq!(job.await.unwrap().unwrap(), 7);
    }
}
