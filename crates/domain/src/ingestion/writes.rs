//! Storing a batch with the judge jobs its new generations bring: the events, the hourly
//! caps and the jobs in one transaction begun here, run once more when the adapter
//! repaired what made it fail.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::{AiEventStore, IncomingEvent};
use crate::jobs::{Debounce, NewJob};
use crate::judge::{PlannedJob, PlannedTarget, StoredBatch, allocate, cap_counters, gather_code_jobs};
use crate::unit_of_work::{UnitOfWork, retried_once};
use crate::{ProjectId, RepositoryError};

/// Stores a request's batch (a seam the ingestion tests mock; [`BatchTransactions`] is the
/// implementation).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait BatchWrites: Send + Sync + 'static {
    /// Stores `events` of `project` durably, all or nothing, with the judge `jobs` of the
    /// generations stored now. An event whose uuid the project already has is skipped (a
    /// re-sent batch adds nothing), and so are its jobs. A job's capped evaluations are
    /// judged only within their hourly caps (exact across replicas); the others are
    /// counted as skipped.
    /// The trace and session jobs `targets` are queued or moved forward with it when an
    /// event that brings them is stored now.
    async fn store_batch(
        &self,
        project: ProjectId,
        events: &[IncomingEvent],
        jobs: &[PlannedJob],
        targets: &[PlannedTarget],
    ) -> Result<StoredBatch, RepositoryError>;
}

/// Batches stored on the unit of work (a batch without jobs is one statement of the event
/// store: no transaction needed).
pub struct BatchTransactions {
    unit_of_work: Arc<dyn UnitOfWork>,
    events: Arc<dyn AiEventStore>,
}

impl BatchTransactions {
    pub fn new(unit_of_work: Arc<dyn UnitOfWork>, events: Arc<dyn AiEventStore>) -> Self {
        Self { unit_of_work, events }
    }

    async fn store_with_jobs(
        &self,
        project: ProjectId,
        events: &[IncomingEvent],
        jobs: &[PlannedJob],
        targets: &[PlannedTarget],
    ) -> Result<StoredBatch, RepositoryError> {
        let mut tx = self.unit_of_work.begin().await?;
        let stored = tx.events().insert_fresh(project, events).await?;
        let new: HashSet<Uuid> = stored.iter().copied().collect();
        let candidates: Vec<&PlannedJob> = jobs.iter().filter(|job| new.contains(&job.generation)).collect();
        let caps = cap_counters(candidates.iter().copied());
        let (to_queue, skipped_by_cap) = if caps.is_empty() {
            (candidates.into_iter().map(|job| std::borrow::Cow::Borrowed(&job.job)).collect(), 0)
        } else {
            let counters: Vec<_> = caps.keys().copied().collect();
            let queued = tx.hourly_caps().lock_counters(project, &counters).await?;
            let allocation = allocate(candidates, &caps, &queued);
            tx.hourly_caps().add_to_counters(&allocation.counts).await?;
            (allocation.jobs, allocation.refused)
        };
        let to_queue: Vec<NewJob> = to_queue.into_iter().map(std::borrow::Cow::into_owned).collect();
        let to_queue = gather_code_jobs(project, to_queue, events);
        let mut jobs_queued = if to_queue.is_empty() { 0 } else { tx.jobs().insert_fresh(&to_queue).await? };
        let debounced: Vec<Debounce> = targets
            .iter()
            .filter(|target| target.events.iter().any(|event| new.contains(event)))
            .map(|target| target.debounce.clone())
            .collect();
        if !debounced.is_empty() {
            jobs_queued += tx.jobs().debounce(&debounced).await?;
        }
        tx.commit().await?;
        Ok(StoredBatch { stored: stored.len() as u64, jobs_queued, skipped_by_cap })
    }
}

#[async_trait]
impl BatchWrites for BatchTransactions {
    async fn store_batch(
        &self,
        project: ProjectId,
        events: &[IncomingEvent],
        jobs: &[PlannedJob],
        targets: &[PlannedTarget],
    ) -> Result<StoredBatch, RepositoryError> {
        if events.is_empty() {
            return Ok(StoredBatch::default());
        }
        if jobs.is_empty() && targets.is_empty() {
            return self.events.store_events(project, events).await;
        }
        retried_once(|| self.store_with_jobs(project, events, jobs, targets)).await
    }
}

#[cfg(test)]
#[path = "writes_tests.rs"]
mod tests;
