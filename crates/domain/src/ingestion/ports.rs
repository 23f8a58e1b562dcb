//! Ports of ingestion: where AI events are stored and read, and whose project token is which.

use async_trait::async_trait;

use super::IncomingEvent;
use uuid::Uuid;

use crate::judge::StoredBatch;
use crate::offline_evaluation::{ExperimentItem, ExperimentItemsQuery};
use crate::summary::{EvaluationRun, RunQuery};
use crate::{ProjectId, RepositoryError};

/// The store of ingested AI events. Every read of events goes through this port (never
/// ad-hoc SQL elsewhere), so another engine (ClickHouse) can take over behind it.
/// Every method is scoped by project; errors are `RepositoryError` only (storage failed).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AiEventStore: Send + Sync + 'static {
    /// Stores `events` of `project` durably, all or nothing, before returning, in one
    /// statement. An event whose uuid the project already has is skipped (a re-sent batch
    /// adds nothing); a uuid repeated within `events` is stored once.
    async fn store_events(&self, project: ProjectId, events: &[IncomingEvent]) -> Result<StoredBatch, RepositoryError>;

    /// The offline-evaluation items of one experiment (spec section 8): the project's
    /// `$ai_evaluation` events with this `$ai_experiment_id` and a non-empty
    /// `$ai_experiment_item_id`, inside the optional bounds (inclusive), grouped by (item
    /// id, metric name, metric version) with each column's latest non-null value, newest
    /// group first, at most `query.limit` groups. `input`/`output` are the latest
    /// `$ai_input`/`$ai_output` of `$ai_evaluation` events of the group's trace between
    /// the earliest and the latest event of the traced groups.
    async fn experiment_items(
        &self,
        project: ProjectId,
        query: &ExperimentItemsQuery,
    ) -> Result<Vec<ExperimentItem>, RepositoryError>;

    /// The runs of one evaluation (spec section 6.2): its `$ai_evaluation` events
    /// (`$ai_evaluation_id` = the evaluation), newest first, at most `query.limit`, as the
    /// query's filter and generation ids select them.
    async fn evaluation_runs(
        &self,
        project: ProjectId,
        query: &RunQuery,
    ) -> Result<Vec<EvaluationRun>, RepositoryError>;
}

/// Projects by their public ingestion token (`phc_…`).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ProjectTokens: Send + Sync + 'static {
    /// The project whose public token is exactly `token`; `None` when there is none.
    async fn find_project_by_token(&self, token: &str) -> Result<Option<ProjectId>, RepositoryError>;
}

/// Event statements inside a transaction (see [`crate::unit_of_work`]).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EventStatements: Send {
    /// Stores `events` of `project` (as [`AiEventStore::store_events`]); returns the uuids
    /// stored now. A failure the adapter repaired (a missing partition) is retryable.
    async fn insert(&mut self, project: ProjectId, events: &[IncomingEvent]) -> Result<Vec<Uuid>, RepositoryError>;

    /// Stores `events` that are expected to be new (an ingested batch: only a re-sent one
    /// repeats uuids) as [`insert`](Self::insert) does, but may be cheaper: when a uuid
    /// exists after all, the statement may fail with a retryable error (the transaction is
    /// lost; its retry skips existing uuids).
    async fn insert_fresh(
        &mut self,
        project: ProjectId,
        events: &[IncomingEvent],
    ) -> Result<Vec<Uuid>, RepositoryError>;
}
