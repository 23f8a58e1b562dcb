//! Storage ports of backfills.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Backfill, Candidate, DispatchedPage, NewBackfill, TargetOutcome};
use crate::evaluation::TargetKind;
use crate::{BackfillId, EvaluationId, Page, PageRequest, ProjectId, RepositoryError};

/// Reads of backfills. Errors are `RepositoryError` only.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait BackfillStore: Send + Sync + 'static {
    /// The evaluation's backfills, newest first.
    async fn list(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        page: PageRequest,
    ) -> Result<Page<Backfill>, RepositoryError>;

    /// One backfill of the evaluation.
    async fn get(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        id: BackfillId,
    ) -> Result<Option<Backfill>, RepositoryError>;
}

/// The event reads a backfill needs (behind the event store, like every event read).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait BackfillTargets: Send + Sync + 'static {
    /// Up to `limit` targets of `kind` with a generation in [`from`, `to`), in id order
    /// after `after`, each with its generations of the window.
    async fn candidates(
        &self,
        project: ProjectId,
        kind: TargetKind,
        window: (DateTime<Utc>, DateTime<Utc>),
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<Candidate>, RepositoryError>;
}

/// Backfill statements inside a transaction (see [`crate::unit_of_work`]).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait BackfillStatements: Send {
    /// Inserts the backfill, queued; false (nothing written) when the evaluation has a
    /// queued or running one.
    async fn insert(&mut self, backfill: &NewBackfill) -> Result<bool, RepositoryError>;

    /// The backfill, locked until the transaction ends.
    async fn lock(&mut self, project: ProjectId, id: BackfillId) -> Result<Option<Backfill>, RepositoryError>;

    /// Adds a dispatched page to the counts and moves the cursor.
    async fn add_page(
        &mut self,
        project: ProjectId,
        id: BackfillId,
        page: &DispatchedPage,
    ) -> Result<(), RepositoryError>;

    /// Counts one ended judgement; returns the backfill as it stands now.
    async fn count_outcome(
        &mut self,
        project: ProjectId,
        id: BackfillId,
        outcome: TargetOutcome,
    ) -> Result<Option<Backfill>, RepositoryError>;

    /// Ends the backfill with `status` (and why, for a failure).
    async fn finish(
        &mut self,
        project: ProjectId,
        id: BackfillId,
        status: super::BackfillStatus,
        error: Option<String>,
    ) -> Result<(), RepositoryError>;

    /// Drops the backfill's judgements not yet started; returns how many.
    async fn drop_pending_judgements(&mut self, project: ProjectId, id: BackfillId) -> Result<u64, RepositoryError>;
}
