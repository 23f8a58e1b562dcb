//! What the worker loop runs a claimed job with.

use async_trait::async_trait;

use super::ClaimedJob;

/// How running a job ended; the worker loop applies it to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The handler ended the job itself, in the transaction that stored its result.
    Finished,
    /// Nothing left to do: end the job successfully.
    Complete,
    /// A passing failure (429, 5xx, timeout): try again after backoff, unless attempts
    /// are used up.
    Retry(String),
    /// Like `Retry`, after a delay the handler chose (its own retry plan).
    RetryAfter(std::time::Duration, String),
    /// A failure that another attempt would repeat: end the job failed.
    Fail(String),
}

/// How a job's own end is written when a handler ends it inside its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    Complete,
    Fail(String),
}

/// Runs one kind of job. Handlers are idempotent: a job whose worker died is run again
/// by another, so what it stores is keyed so that a second run adds nothing.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &ClaimedJob) -> JobOutcome;

    /// Runs several claimed jobs of its kind, one outcome per job in their order (for a
    /// kind the worker hands out in batches). By default each is run on its own, at once.
    async fn run_batch(&self, jobs: &[ClaimedJob]) -> Vec<JobOutcome> {
        futures::future::join_all(jobs.iter().map(|job| self.run(job))).await
    }

    /// The job will not be tried again (its attempts are used up, or each of its workers
    /// died): the handler records what that means for what the job stood for, and ends
    /// it failed with `reason`. By default there is nothing to record.
    async fn give_up(&self, job: &ClaimedJob, reason: String) -> JobOutcome {
        let _ = job;
        JobOutcome::Fail(reason)
    }
}
