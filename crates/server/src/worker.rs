//! The one worker loop: claims due jobs of every kind from the job table, runs each with
//! its handler while renewing its lease, and applies the outcome (done, retry with
//! backoff, failed). Stops claiming on shutdown and lets in-flight jobs finish (or their
//! leases lapse, so another replica takes them over).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use domain::jobs::{ClaimedJob, JobHandler, JobKind, JobOutcome, JobQueue, backoff};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How the worker runs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Jobs in flight at once in this process.
    pub concurrency: usize,
    /// A claimed job's lease; renewed every third of it while the job runs.
    pub lease: Duration,
    /// The first retry's delay (doubled per attempt).
    pub retry_base: Duration,
    /// How long to wait before looking again when nothing is due.
    pub idle_poll: Duration,
    /// How long in-flight jobs may take to finish after shutdown.
    pub shutdown_grace: Duration,
}

/// The worker loop and what it runs each kind of job with.
pub struct Worker {
    queue: Arc<dyn JobQueue>,
    handlers: HashMap<JobKind, Arc<dyn JobHandler>>,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(queue: Arc<dyn JobQueue>, settings: WorkerSettings) -> Self {
        Self { queue, handlers: HashMap::new(), settings }
    }

    /// Runs jobs of `kind` with `handler`.
    pub fn handle(mut self, kind: JobKind, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.insert(kind, handler);
        self
    }

    /// Claims and runs jobs until `shutdown` turns true, then waits (at most the grace
    /// period) for the jobs in flight.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let worker = Arc::new(self);
        let settings = worker.settings;
        let permits = Arc::new(Semaphore::new(settings.concurrency));
        let mut tasks = JoinSet::new();
        let kinds: Vec<JobKind> = worker.handlers.keys().copied().collect();
        tracing::info!(concurrency = settings.concurrency, ?kinds, "worker started");
        while !*shutdown.borrow() {
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = tasks.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let claimed = worker.queue.claim(&kinds, u32::try_from(free).unwrap_or(u32::MAX), settings.lease).await;
            let wait = match claimed {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                        let worker = worker.clone();
                        tasks.spawn(async move {
                            worker.execute(job).await;
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

    /// Runs one claimed job to its end (exposed for tests that drive one step).
    pub async fn execute(&self, job: ClaimedJob) {
        let lease = job.lease;
        let Some(handler) = job.kind.and_then(|kind| self.handlers.get(&kind)).cloned() else {
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
                match self.queue.renew(&lease, self.settings.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %lease.job, "lost a job's lease while working on it");
                        std::future::pending::<()>().await;
                    }
                    Err(error) => tracing::warn!(job = %lease.job, error = %error.0, "renewing a lease failed"),
                }
            }
        };
        let outcome = tokio::select! {
            outcome = handler.run(&job) => outcome,
            () = renew => unreachable!("renewing never ends"),
        };
        let outcome = match outcome {
            JobOutcome::Retry(error) | JobOutcome::RetryAfter(_, error) if job.attempts >= job.max_attempts => {
                handler.give_up(&job, format!("{error} (after {} attempts)", job.attempts)).await
            }
            outcome => outcome,
        };
        self.apply(&job, outcome).await;
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
