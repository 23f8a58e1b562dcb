//! Storage ports of the judge runner: what a judge job reads and commits, and the reads
//! behind `evaluation_runs/` and `evaluation_results/`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Generation, JudgedRun, ResultRow, ResultsQuery, RunsQuery};
use crate::{Page, ProjectId, RepositoryError};

/// What judge jobs read and write. Errors are `RepositoryError` only.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait JudgeStore: Send + Sync + 'static {
    /// The project's stored event with this uuid (any name), searched in
    /// [`from`, `to`) when bounds are given.
    async fn event(
        &self,
        project: ProjectId,
        uuid: uuid::Uuid,
        within: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<Option<Generation>, RepositoryError>;

    /// The project's stored events (any name) with these uuids, each looked for within a
    /// second of its timestamp (one sent with more precision than is stored still finds
    /// it), in no order; those not stored there are left out.
    async fn events(
        &self,
        project: ProjectId,
        wanted: &[(uuid::Uuid, DateTime<Utc>)],
    ) -> Result<Vec<Generation>, RepositoryError>;

    /// The project's events of one trace or session (`$ai_evaluation` results aside),
    /// oldest first, at most `limit`; for a generation target, that one event.
    async fn target_events(
        &self,
        project: ProjectId,
        kind: crate::evaluation::TargetKind,
        target_id: &str,
        limit: u32,
    ) -> Result<Vec<Generation>, RepositoryError>;

    /// The project's newest `$ai_generation` events, newest first, at most `limit`.
    async fn newest_generations(&self, project: ProjectId, limit: u32) -> Result<Vec<Generation>, RepositoryError>;

    /// Which of these event uuids the project has stored (a retried job's results from
    /// an earlier attempt).
    async fn stored_events(&self, project: ProjectId, uuids: &[uuid::Uuid])
    -> Result<Vec<uuid::Uuid>, RepositoryError>;
}

/// Reads of judgement results. Errors are `RepositoryError` only.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EvaluationResultsStore: Send + Sync + 'static {
    /// The project's `$ai_evaluation` events as runs, newest first, one page.
    async fn runs(&self, project: ProjectId, query: &RunsQuery) -> Result<Page<JudgedRun>, RepositoryError>;

    /// Counts per (bucket, value) of one evaluation's results in the period, values
    /// beyond the 25 with most runs merged into `$other`.
    async fn results(&self, project: ProjectId, query: &ResultsQuery) -> Result<Vec<ResultRow>, RepositoryError>;

    /// Matches skipped by the evaluation's hourly cap in the period (by hour).
    async fn skipped_by_cap(&self, project: ProjectId, query: &ResultsQuery) -> Result<u64, RepositoryError>;
}
