//! The one worker loop: claims due jobs of every kind from the job table, runs each with
//! its handler while renewing its lease, and applies the outcome (done, retry with
//! backoff, failed). Each kind has its own number of jobs in flight, so a queue full of
//! one kind (judging) never starves another (deliveries), and the reverse. Stops claiming
//! on shutdown and lets in-flight jobs finish (or their leases lapse, so another replica
//! takes them over).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use domain::jobs::{ClaimedJob, JobHandler, JobKind, JobOutcome, JobQueue, backoff};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How the worker runs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// A claimed job's lease; renewed every third of it while the job runs.
    pub lease: Duration,
    /// The first retry's delay (doubled per attempt).
    pub retry_base: Duration,
    /// How long to wait before looking again when nothing is due.
    pub idle_poll: Duration,
    /// How long in-flight jobs may take to finish after shutdown.
    pub shutdown_grace: Duration,
}

/// What one kind of job runs with, and how many of it may run at once: `permits` runs,
/// each of up to `batch` jobs handed to the handler together.
struct Lane {
    handler: Arc<dyn JobHandler>,
    permits: Arc<Semaphore>,
    batch: usize,
}

/// The worker loop and what it runs each kind of job with.
pub struct Worker {
    queue: Arc<dyn JobQueue>,
    lanes: HashMap<JobKind, Lane>,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(queue: Arc<dyn JobQueue>, settings: WorkerSettings) -> Self {
        Self { queue, lanes: HashMap::new(), settings }
    }

    /// Runs jobs of `kind` with `handler`, at most `concurrency` at once in this process.
    pub fn handle(self, kind: JobKind, handler: Arc<dyn JobHandler>, concurrency: usize) -> Self {
        self.handle_batched(kind, handler, concurrency, 1)
    }

    /// Runs jobs of `kind` with `handler` in batches of up to `batch` jobs (one
    /// [`JobHandler::run_batch`] each), at most `concurrency` batches at once.
    pub fn handle_batched(
        mut self,
        kind: JobKind,
        handler: Arc<dyn JobHandler>,
        concurrency: usize,
        batch: usize,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        self.lanes.insert(kind, Lane { handler, permits, batch: batch.max(1) });
        self
    }

    /// The kinds with room for more jobs, and how many more each.
    fn room(&self) -> Vec<(JobKind, u32)> {
        self.lanes
            .iter()
            .map(|(kind, lane)| {
                let jobs = lane.permits.available_permits().saturating_mul(lane.batch);
                (*kind, u32::try_from(jobs).unwrap_or(u32::MAX))
            })
            .filter(|(_, free)| *free > 0)
            .collect()
    }

    /// Claims and runs jobs until `shutdown` turns true, then waits (at most the grace
    /// period) for the jobs in flight.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let worker = Arc::new(self);
        let settings = worker.settings;
        let mut tasks = JoinSet::new();
        let concurrency: Vec<(JobKind, u32)> = worker.room();
        tracing::info!(?concurrency, "worker started");
        while !*shutdown.borrow() {
            while tasks.try_join_next().is_some() {}
            let room = worker.room();
            if room.is_empty() {
                tokio::select! {
                    _ = tasks.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let claimed = worker.queue.claim(&room, settings.lease).await;
            let wait = match claimed {
                Ok(jobs) if !jobs.is_empty() => {
                    for batch in worker.batches(jobs) {
                        // Only this loop takes permits, and it claimed no more than each
                        // kind had room for: every batch finds its permit.
                        let permit = batch[0]
                            .kind
                            .and_then(|kind| worker.lanes.get(&kind))
                            .and_then(|lane| lane.permits.clone().try_acquire_owned().ok());
                        let worker = worker.clone();
                        tasks.spawn(async move {
                            worker.execute_batch(batch).await;
                            drop(permit);
                        });
                    }
                    continue;
                }
                Ok(_) => settings.idle_poll,
                Err(error) => {
                    tracing::warn!(error = %error.0, "claiming jobs failed; trying again shortly");
                    settings.idle_poll * 4
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.changed() => {}
            }
        }
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "worker stopping: waiting for the jobs in flight");
            let drained =
                tokio::time::timeout(settings.shutdown_grace, async { while tasks.join_next().await.is_some() {} })
                    .await;
            if drained.is_err() {
                tracing::warn!("jobs still running after the grace period; their leases will lapse");
                tasks.abort_all();
            }
        }
        tracing::info!("worker stopped");
    }

    /// Claimed jobs grouped by kind, in batches of at most their lane's size (one job
    /// each for most kinds), in the order claimed.
    fn batches(&self, jobs: Vec<ClaimedJob>) -> Vec<Vec<ClaimedJob>> {
        let mut batches: Vec<Vec<ClaimedJob>> = Vec::new();
        let mut open: HashMap<Option<JobKind>, usize> = HashMap::new();
        for job in jobs {
            let size = job.kind.and_then(|kind| self.lanes.get(&kind)).map_or(1, |lane| lane.batch);
            match open.get(&job.kind) {
                Some(&at) if batches[at].len() < size => batches[at].push(job),
                _ => {
                    open.insert(job.kind, batches.len());
                    batches.push(vec![job]);
                }
            }
        }
        batches
    }

    /// Runs claimed jobs of one kind to their ends: a single job as [`Self::execute`],
    /// several with one call of their handler's `run_batch`, renewing every lease.
    async fn execute_batch(&self, batch: Vec<ClaimedJob>) {
        if batch.len() == 1 {
            if let Some(job) = batch.into_iter().next() {
                self.execute(job).await;
            }
            return;
        }
        let Some(handler) = batch[0].kind.and_then(|kind| self.lanes.get(&kind)).map(|lane| lane.handler.clone())
        else {
            for job in batch {
                self.execute(job).await;
            }
            return;
        };
        let (spent, batch): (Vec<ClaimedJob>, Vec<ClaimedJob>) =
            batch.into_iter().partition(|job| job.attempts > job.max_attempts);
        for job in spent {
            self.execute(job).await;
        }
        let renew = async {
            let every = self.settings.lease / 3;
            let mut held: Vec<&domain::jobs::Lease> = batch.iter().map(|job| &job.lease).collect();
            loop {
                tokio::time::sleep(every).await;
                let mut still = Vec::with_capacity(held.len());
                for lease in held {
                    if self.renew(lease).await {
                        still.push(lease);
                    }
                }
                held = still;
            }
        };
        let outcomes = tokio::select! {
            outcomes = handler.run_batch(&batch) => outcomes,
            () = renew => unreachable!("renewing never ends"),
        };
        for (job, outcome) in batch.iter().zip(outcomes) {
            self.finish(handler.as_ref(), job, outcome).await;
        }
    }

    /// Extends a running job's lease; a lease lost is told once in the log.
    async fn renew(&self, lease: &domain::jobs::Lease) -> bool {
        match self.queue.renew(lease, self.settings.lease).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(job = %lease.job, "lost a job's lease while working on it");
                false
            }
            Err(error) => {
                tracing::warn!(job = %lease.job, error = %error.0, "renewing a lease failed");
                true
            }
        }
    }

    /// Runs one claimed job to its end (exposed for tests that drive one step).
    pub async fn execute(&self, job: ClaimedJob) {
        let lease = job.lease;
        let Some(handler) = job.kind.and_then(|kind| self.lanes.get(&kind)).map(|lane| lane.handler.clone()) else {
            self.apply(&job, JobOutcome::Fail("no handler for this job kind in this process".into())).await;
            return;
        };
        if job.attempts > job.max_attempts {
            let reason =
                format!("gave up after {} attempts: its worker stopped or timed out each time", job.max_attempts);
            let outcome = handler.give_up(&job, reason).await;
            self.apply(&job, outcome).await;
            return;
        }
        let renew = async {
            let every = self.settings.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                if !self.renew(&lease).await {
                    std::future::pending::<()>().await;
                }
            }
        };
        let outcome = tokio::select! {
            outcome = handler.run(&job) => outcome,
            () = renew => unreachable!("renewing never ends"),
        };
        self.finish(handler.as_ref(), &job, outcome).await;
    }

    /// Applies a run's outcome; a passing failure at the last attempt is the handler's to
    /// give up.
    async fn finish(&self, handler: &dyn JobHandler, job: &ClaimedJob, outcome: JobOutcome) {
        let outcome = match outcome {
            JobOutcome::Retry(error) | JobOutcome::RetryAfter(_, error) if job.attempts >= job.max_attempts => {
                handler.give_up(job, format!("{error} (after {} attempts)", job.attempts)).await
            }
            outcome => outcome,
        };
        self.apply(job, outcome).await;
    }

    async fn apply(&self, job: &ClaimedJob, outcome: JobOutcome) {
        let lease = &job.lease;
        let kind = job.kind.map_or("unknown", JobKind::as_str);
        let result = match outcome {
            JobOutcome::Finished => Ok(true),
            JobOutcome::Complete => self.queue.complete(lease).await,
            JobOutcome::Retry(error) => {
                let delay = backoff(self.settings.retry_base, job.attempts);
                tracing::info!(job = %lease.job, kind, attempt = job.attempts, ?delay, error = %error, "job will be retried");
                self.queue.retry(lease, delay, &error).await
            }
            JobOutcome::RetryAfter(delay, error) => {
                tracing::info!(job = %lease.job, kind, attempt = job.attempts, ?delay, error = %error, "job will be retried");
                self.queue.retry(lease, delay, &error).await
            }
            JobOutcome::Fail(error) => {
                tracing::warn!(job = %lease.job, kind, project = %job.project, error = %error, "job failed");
                self.queue.fail(lease, &error).await
            }
        };
        match result {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job = %lease.job, "a job's lease lapsed before its end was recorded"),
            Err(error) => tracing::warn!(job = %lease.job, error = %error.0, "recording a job's end failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use domain::jobs::{JobId, Lease, NewJob};
    use domain::{ProjectId, RepositoryError};
    use tokio::sync::Notify;
    use uuid::Uuid;

    use super::*;

    /// The job table in memory: hands out jobs by kind up to the room asked for, and
    /// remembers every claim's request.
    #[derive(Default)]
    struct MemoryQueue {
        due: Mutex<Vec<ClaimedJob>>,
        asked: Mutex<Vec<Vec<(JobKind, u32)>>>,
        ended: AtomicUsize,
    }

    impl MemoryQueue {
        fn with(kinds: &[(JobKind, usize)]) -> Self {
            let queue = Self::default();
            for (kind, count) in kinds {
                for _ in 0..*count {
                    queue.due.lock().unwrap().push(ClaimedJob {
                        lease: Lease { job: JobId(Uuid::now_v7()), token: Uuid::now_v7() },
                        project: ProjectId(1),
                        kind: Some(*kind),
                        payload: serde_json::Value::Null,
                        attachment: None,
                        attempts: 1,
                        max_attempts: 3,
                    });
                }
            }
            queue
        }
    }

    #[async_trait]
    impl JobQueue for MemoryQueue {
        async fn enqueue(&self, jobs: &[NewJob]) -> Result<u64, RepositoryError> {
            Ok(jobs.len() as u64)
        }

        async fn claim(&self, wanted: &[(JobKind, u32)], _: Duration) -> Result<Vec<ClaimedJob>, RepositoryError> {
            self.asked.lock().unwrap().push(wanted.to_vec());
            let mut due = self.due.lock().unwrap();
            let mut claimed = Vec::new();
            for (kind, room) in wanted {
                for _ in 0..*room {
                    let Some(at) = due.iter().position(|job| job.kind == Some(*kind)) else { break };
                    claimed.push(due.remove(at));
                }
            }
            Ok(claimed)
        }

        async fn renew(&self, _: &Lease, _: Duration) -> Result<bool, RepositoryError> {
            Ok(true)
        }

        async fn complete(&self, _: &Lease) -> Result<bool, RepositoryError> {
            self.ended.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        }

        async fn retry(&self, _: &Lease, _: Duration, _: &str) -> Result<bool, RepositoryError> {
            self.ended.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        }

        async fn fail(&self, _: &Lease, _: &str) -> Result<bool, RepositoryError> {
            self.ended.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        }
    }

    /// A handler whose jobs run until released.
    #[derive(Default)]
    struct Stuck {
        running: AtomicUsize,
        release: Notify,
    }

    #[async_trait]
    impl JobHandler for Stuck {
        async fn run(&self, _: &ClaimedJob) -> JobOutcome {
            self.running.fetch_add(1, Ordering::SeqCst);
            self.release.notified().await;
            JobOutcome::Complete
        }
    }

    #[derive(Default)]
    struct Quick {
        ran: AtomicUsize,
    }

    #[async_trait]
    impl JobHandler for Quick {
        async fn run(&self, _: &ClaimedJob) -> JobOutcome {
            self.ran.fetch_add(1, Ordering::SeqCst);
            JobOutcome::Complete
        }
    }

    /// A long lease, a quick poll and a short grace: tests see jobs taken within milliseconds.
    fn test_settings() -> WorkerSettings {
        WorkerSettings {
            lease: Duration::from_secs(30),
            retry_base: Duration::from_secs(1),
            idle_poll: Duration::from_millis(5),
            shutdown_grace: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn judging_that_fills_its_lane_does_not_hold_up_deliveries() {
        let queue = Arc::new(MemoryQueue::with(&[(JobKind::Judge, 5), (JobKind::ReportDelivery, 3)]));
        let (judge, deliver) = (Arc::new(Stuck::default()), Arc::new(Quick::default()));
        let settings = test_settings();
        let worker = Worker::new(queue.clone(), settings).handle(JobKind::Judge, judge.clone(), 2).handle(
            JobKind::ReportDelivery,
            deliver.clone(),
            1,
        );
        let (stop, stopping) = watch::channel(false);
        let running = tokio::spawn(worker.run(stopping));

        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while deliver.ran.load(Ordering::SeqCst) < 3 {
            assert!(tokio::time::Instant::now() < deadline, "deliveries waited behind the stuck judge jobs");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(judge.running.load(Ordering::SeqCst), 2, "the judge lane holds two jobs, no more");
        for wanted in queue.asked.lock().unwrap().iter() {
            for (kind, room) in wanted {
                let most = if *kind == JobKind::Judge { 2 } else { 1 };
                assert!(*room <= most, "asked for {room} {kind:?} jobs");
            }
        }

        judge.release.notify_waiters();
        stop.send(true).unwrap();
        running.await.unwrap();
        assert_eq!(queue.ended.load(Ordering::SeqCst), 5, "two judge jobs and three deliveries ended");
    }

    /// A handler that records the size of each batch it is given.
    #[derive(Default)]
    struct Batching {
        sizes: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl JobHandler for Batching {
        async fn run(&self, job: &ClaimedJob) -> JobOutcome {
            self.run_batch(std::slice::from_ref(job)).await.remove(0)
        }

        async fn run_batch(&self, jobs: &[ClaimedJob]) -> Vec<JobOutcome> {
            self.sizes.lock().unwrap().push(jobs.len());
            vec![JobOutcome::Complete; jobs.len()]
        }
    }

    #[tokio::test]
    async fn a_batched_lane_hands_its_handler_up_to_a_batch_of_jobs_at_once() {
        let queue = Arc::new(MemoryQueue::with(&[(JobKind::JudgeCode, 7), (JobKind::Judge, 2)]));
        let (code, judge) = (Arc::new(Batching::default()), Arc::new(Quick::default()));
        let settings = test_settings();
        let worker = Worker::new(queue.clone(), settings)
            .handle_batched(JobKind::JudgeCode, code.clone(), 1, 3)
            .handle(JobKind::Judge, judge.clone(), 4);
        let (stop, stopping) = watch::channel(false);
        let running = tokio::spawn(worker.run(stopping));

        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while queue.ended.load(Ordering::SeqCst) < 9 {
            assert!(tokio::time::Instant::now() < deadline, "not every job ended");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
        running.await.unwrap();
        assert_eq!(*code.sizes.lock().unwrap(), vec![3, 3, 1], "batches of at most 3, one at a time");
        assert_eq!(judge.ran.load(Ordering::SeqCst), 2, "other kinds one job each");
        for wanted in queue.asked.lock().unwrap().iter() {
            for (kind, room) in wanted {
                let most = if *kind == JobKind::JudgeCode { 3 } else { 4 };
                assert!(*room <= most, "asked for {room} {kind:?} jobs");
            }
        }
    }
}
