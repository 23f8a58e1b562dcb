//! The `JobQueue` port.

use std::time::Duration;

use async_trait::async_trait;

use super::{ClaimedJob, Debounce, JobEnd, JobKind, Lease, NewJob};
use crate::RepositoryError;

/// The durable job table. Claims are exclusive across every replica (a job is held by one
/// lease at a time); a lease that lapses makes the job claimable again. Every method that
/// takes a `Lease` does nothing and returns false when the lease is no longer the job's
/// (lapsed and taken over, or already finished). Errors are `RepositoryError` only.
///
/// Jobs born from a request are not enqueued here but by the port that writes the
/// request's data, in the same transaction, through [`JobStatements`].
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Enqueues jobs, due now; a job whose (kind, unique key) exists is skipped. Returns
    /// how many were new.
    async fn enqueue(&self, jobs: &[NewJob]) -> Result<u64, RepositoryError>;

    /// Leases due jobs (pending and due, or running with a lapsed lease), oldest due
    /// first, for `lease`: of each (kind, room) in `wanted`, up to `room` jobs of that
    /// kind; each claim counts an attempt. A process claims only the kinds it can run, so
    /// replicas of different versions can share the table during a rolling deploy.
    async fn claim(&self, wanted: &[(JobKind, u32)], lease: Duration) -> Result<Vec<ClaimedJob>, RepositoryError>;

    /// Extends the lease to `lease` from now.
    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<bool, RepositoryError>;

    /// Ends the job successfully.
    async fn complete(&self, lease: &Lease) -> Result<bool, RepositoryError>;

    /// Puts the job back, due after `delay`, keeping `error` as its last error.
    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<bool, RepositoryError>;

    /// Ends the job as failed, keeping `error`.
    async fn fail(&self, lease: &Lease, error: &str) -> Result<bool, RepositoryError>;
}

/// Job statements inside a transaction (see [`crate::unit_of_work`]): what a request or a
/// job's handler writes together with the jobs it brings or its own end.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait JobStatements: Send {
    /// Inserts jobs, due now; a job whose id exists is skipped. Returns how many were new.
    async fn insert(&mut self, jobs: &[NewJob]) -> Result<u64, RepositoryError>;

    /// Inserts jobs that are not expected to exist (those of events first stored in this
    /// transaction), due now, as [`insert`](Self::insert) does, but may be cheaper: when
    /// one exists after all, the statement may fail with a retryable error (the
    /// transaction is lost; its retry skips the existing jobs).
    async fn insert_fresh(&mut self, jobs: &[NewJob]) -> Result<u64, RepositoryError>;

    /// Queues or moves debounced jobs (see [`Debounce`]). Returns how many were new.
    async fn debounce(&mut self, jobs: &[Debounce]) -> Result<u64, RepositoryError>;

    /// While `lease` is the job's: writes `end`, or with none locks the job's row until
    /// the transaction ends (the job stays leased). False when the lease is no longer the
    /// job's.
    async fn end(&mut self, lease: &Lease, end: Option<JobEnd>) -> Result<bool, RepositoryError>;

    /// Writes each job's end while its lease is the job's; returns the jobs ended (those
    /// whose lease was no longer theirs are left as they are).
    async fn end_each(&mut self, ends: &[(Lease, JobEnd)]) -> Result<Vec<super::JobId>, RepositoryError>;
}
