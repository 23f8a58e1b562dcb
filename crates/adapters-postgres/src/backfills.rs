//! Backfills on PostgreSQL: table `evaluation_backfills` (see
//! `migrations/0012_targets_and_backfills.sql`), the statements a domain transaction runs
//! on it, and the event reads that find a backfill's targets.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::backfill::{
    Backfill, BackfillStatements, BackfillStatus, BackfillStore, BackfillTargets, Candidate, DispatchedPage,
    NewBackfill, TargetOutcome,
};
use domain::evaluation::{Conditions, TargetKind};
use domain::{BackfillId, EvaluationId, Page, PageRequest, ProjectId, RepositoryError};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::unit_of_work::PgTransaction;

/// The backfill columns with its creator; callers add the `WHERE`.
macro_rules! select_backfill {
    () => {
        "SELECT b.id, b.project_id, b.evaluation_id, b.status, b.window_start, b.window_end, b.conditions, \
         b.rerun_existing, b.total_count, b.dispatched_count, b.skipped_count, b.completed_count, b.failed_count, \
         b.cursor, b.dispatched_all, b.error, b.created_at, u.id AS user_id, u.uuid AS user_uuid, \
         u.email AS user_email, u.first_name, u.last_name \
         FROM evaluation_backfills b LEFT JOIN users u ON u.id = b.created_by "
    };
}

/// Queued, unless the evaluation has a queued or running one (its partial unique index).
const INSERT: &str = "\
INSERT INTO evaluation_backfills (id, project_id, evaluation_id, window_start, window_end, conditions,
                                  rerun_existing, total_count, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (evaluation_id) WHERE status IN ('queued', 'running') DO NOTHING";

const ADD_PAGE: &str = "\
UPDATE evaluation_backfills SET status = $3, cursor = $4, dispatched_all = $5,
  dispatched_count = dispatched_count + $6, skipped_count = skipped_count + $7
WHERE project_id = $1 AND id = $2";

const FINISH: &str = "\
UPDATE evaluation_backfills SET status = $3, error = $4, finished_at = clock_timestamp()
WHERE project_id = $1 AND id = $2";

/// The backfill's judge jobs not started yet (its key names it).
const DROP_PENDING: &str = "\
DELETE FROM jobs WHERE kind = 'backfill_judge' AND state = 'pending' AND project_id = $1
  AND payload ->> 'backfill' = $2";

/// Properties a backfill's conditions are matched on: everything but the contents (inputs
/// and outputs can weigh megabytes each, and a page reads hundreds of targets).
macro_rules! light_properties {
    () => {
        "properties - '$ai_input' - '$ai_output_choices' - '$ai_output' - '$ai_input_state' - '$ai_output_state'"
    };
}

const GENERATION_CANDIDATES: &str = concat!(
    "SELECT uuid::text AS id, jsonb_build_array(",
    light_properties!(),
    ") AS generations FROM ai_events
WHERE project_id = $1 AND event = '$ai_generation' AND timestamp >= $2 AND timestamp < $3
  AND ($4::uuid IS NULL OR uuid > $4::uuid)
ORDER BY uuid LIMIT $5"
);

/// Ids compare bytewise (`COLLATE "C"`), as the domain compares the cursor.
macro_rules! grouped_candidates {
    ($column:literal) => {
        concat!(
            "SELECT ",
            $column,
            " AS id, jsonb_agg(",
            light_properties!(),
            ") AS generations FROM ai_events
WHERE project_id = $1 AND event = '$ai_generation' AND ",
            $column,
            " IS NOT NULL AND timestamp >= $2 AND timestamp < $3 AND ($4::text IS NULL OR ",
            $column,
            " COLLATE \"C\" > $4)
GROUP BY ",
            $column,
            " ORDER BY ",
            $column,
            " COLLATE \"C\" LIMIT $5"
        )
    };
}

const TRACE_CANDIDATES: &str = grouped_candidates!("trace_id");
const SESSION_CANDIDATES: &str = grouped_candidates!("session_id");

/// Backfills and their targets.
#[derive(Clone)]
pub struct PgBackfillStore {
    pool: PgPool,
}

impl PgBackfillStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(FromRow)]
struct BackfillRow {
    id: Uuid,
    project_id: i64,
    evaluation_id: Uuid,
    status: String,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    conditions: Option<Value>,
    rerun_existing: bool,
    total_count: i32,
    dispatched_count: i32,
    skipped_count: i32,
    completed_count: i32,
    failed_count: i32,
    cursor: Option<String>,
    dispatched_all: bool,
    error: Option<String>,
    created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    user: crate::user_columns::UserColumns,
}

fn count(stored: i32) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

fn stored_count(count: u64) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

impl TryFrom<BackfillRow> for Backfill {
    type Error = RepositoryError;

    fn try_from(row: BackfillRow) -> Result<Self, Self::Error> {
        let corrupt =
            |what: &str| RepositoryError::new(anyhow::anyhow!("backfill {} has an invalid stored {what}", row.id));
        let status = BackfillStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?;
        let conditions =
            row.conditions.as_ref().map(Conditions::from_json).transpose().map_err(|_| corrupt("conditions"))?;
        Ok(Backfill {
            id: BackfillId(row.id),
            project: ProjectId(row.project_id),
            evaluation: EvaluationId(row.evaluation_id),
            status,
            window_start: row.window_start,
            window_end: row.window_end,
            conditions,
            rerun_existing: row.rerun_existing,
            total_count: count(row.total_count),
            dispatched_count: count(row.dispatched_count),
            skipped_count: count(row.skipped_count),
            completed_count: count(row.completed_count),
            failed_count: count(row.failed_count),
            cursor: row.cursor,
            dispatched_all: row.dispatched_all,
            error: row.error,
            created_at: row.created_at,
            created_by: row.user.summary(),
        })
    }
}

#[async_trait]
impl BackfillStore for PgBackfillStore {
    async fn list(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        page: PageRequest,
    ) -> Result<Page<Backfill>, RepositoryError> {
        let rows: Vec<BackfillRow> = sqlx::query_as(concat!(
            select_backfill!(),
            "WHERE b.project_id = $1 AND b.evaluation_id = $2 ORDER BY b.created_at DESC, b.id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(project.0)
        .bind(evaluation.0)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        let total: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM evaluation_backfills WHERE project_id = $1 AND evaluation_id = $2",
        )
        .bind(project.0)
        .bind(evaluation.0)
        .fetch_one(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        let items = rows.into_iter().map(Backfill::try_from).collect::<Result<_, _>>()?;
        Ok(Page { items, total, request: page })
    }

    async fn get(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        id: BackfillId,
    ) -> Result<Option<Backfill>, RepositoryError> {
        let row: Option<BackfillRow> = sqlx::query_as(concat!(
            select_backfill!(),
            "WHERE b.project_id = $1 AND b.evaluation_id = $2 AND b.id = $3"
        ))
        .bind(project.0)
        .bind(evaluation.0)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        row.map(Backfill::try_from).transpose()
    }
}

#[derive(FromRow)]
struct CandidateRow {
    id: String,
    generations: Json<Vec<Map<String, Value>>>,
}

#[async_trait]
impl BackfillTargets for PgBackfillStore {
    async fn candidates(
        &self,
        project: ProjectId,
        kind: TargetKind,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<Candidate>, RepositoryError> {
        let statement = match kind {
            TargetKind::Generation => GENERATION_CANDIDATES,
            TargetKind::Trace => TRACE_CANDIDATES,
            TargetKind::Session => SESSION_CANDIDATES,
        };
        let rows: Vec<CandidateRow> = sqlx::query_as(statement)
            .bind(project.0)
            .bind(from)
            .bind(to)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows.into_iter().map(|row| Candidate { id: row.id, generations: row.generations.0 }).collect())
    }
}

#[async_trait]
impl BackfillStatements for PgTransaction {
    async fn insert(&mut self, backfill: &NewBackfill) -> Result<bool, RepositoryError> {
        let request = &backfill.request;
        let inserted = self
            .execute(
                sqlx::query(INSERT)
                    .bind(backfill.id.0)
                    .bind(backfill.project.0)
                    .bind(backfill.evaluation.0)
                    .bind(request.window_start)
                    .bind(request.window_end)
                    .bind(request.conditions.as_ref().map(Conditions::to_json))
                    .bind(request.rerun_existing)
                    .bind(stored_count(backfill.total_count))
                    .bind(backfill.created_by.0),
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn lock(&mut self, project: ProjectId, id: BackfillId) -> Result<Option<Backfill>, RepositoryError> {
        let row: Option<BackfillRow> =
            sqlx::query_as(concat!(select_backfill!(), "WHERE b.project_id = $1 AND b.id = $2 FOR UPDATE OF b"))
                .bind(project.0)
                .bind(id.0)
                .fetch_optional(self.connection().await?)
                .await
                .map_err(RepositoryError::new)?;
        row.map(Backfill::try_from).transpose()
    }

    async fn add_page(
        &mut self,
        project: ProjectId,
        id: BackfillId,
        page: &DispatchedPage,
    ) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query(ADD_PAGE)
                .bind(project.0)
                .bind(id.0)
                .bind(page.status.as_str())
                .bind(page.cursor.as_deref())
                .bind(page.dispatched_all)
                .bind(stored_count(page.dispatched))
                .bind(stored_count(page.skipped)),
        )
        .await?;
        Ok(())
    }

    async fn count_outcome(
        &mut self,
        project: ProjectId,
        id: BackfillId,
        outcome: TargetOutcome,
    ) -> Result<Option<Backfill>, RepositoryError> {
        let (completed, failed) = match outcome {
            TargetOutcome::Completed => (1, 0),
            TargetOutcome::Failed => (0, 1),
        };
        self.execute(
            sqlx::query(
                "UPDATE evaluation_backfills SET completed_count = completed_count + $3, \
                 failed_count = failed_count + $4 WHERE project_id = $1 AND id = $2",
            )
            .bind(project.0)
            .bind(id.0)
            .bind(completed)
            .bind(failed),
        )
        .await?;
        self.lock(project, id).await
    }

    async fn finish(
        &mut self,
        project: ProjectId,
        id: BackfillId,
        status: BackfillStatus,
        error: Option<String>,
    ) -> Result<(), RepositoryError> {
        self.execute(sqlx::query(FINISH).bind(project.0).bind(id.0).bind(status.as_str()).bind(error)).await?;
        Ok(())
    }

    async fn drop_pending_judgements(&mut self, project: ProjectId, id: BackfillId) -> Result<u64, RepositoryError> {
        self.execute(sqlx::query(DROP_PENDING).bind(project.0).bind(id.0.to_string())).await
    }
}
