//! The job and hourly-cap statements a domain transaction runs (`JobStatements`,
//! `HourlyCapStatements`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::jobs::{Debounce, JobEnd, JobId, JobStatements, Lease, NewJob};
use domain::judge::{CapCount, CapHour, HourlyCapStatements};
use domain::{EvaluationId, ProjectId, RepositoryError};
use sqlx::Row;
use uuid::Uuid;

use crate::job_queue::{self, JOBS_KEY};
use crate::unit_of_work::PgTransaction;

/// The counters of one batch, created when new (they are locked next).
const ENSURE_COUNTERS: &str = "\
INSERT INTO evaluation_hourly_runs (evaluation_id, hour, project_id)
SELECT e, h, $3::bigint FROM UNNEST($1::uuid[], $2::timestamptz[]) AS t(e, h)
ON CONFLICT (evaluation_id, hour) DO NOTHING";

/// Locked in a fixed order (evaluation, hour) so that concurrent batches queue on them
/// instead of deadlocking.
const LOCK_COUNTERS: &str = "\
SELECT c.evaluation_id, c.hour, c.queued FROM evaluation_hourly_runs c
JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS t(e, h) ON c.evaluation_id = t.e AND c.hour = t.h
ORDER BY c.evaluation_id, c.hour
FOR UPDATE OF c";

const ADD_TO_COUNTERS: &str = "\
UPDATE evaluation_hourly_runs c SET queued = c.queued + t.granted, skipped = c.skipped + t.refused
FROM UNNEST($1::uuid[], $2::timestamptz[], $3::int[], $4::int[]) AS t(e, h, granted, refused)
WHERE c.evaluation_id = t.e AND c.hour = t.h";

/// Queues debounced jobs not queued yet (in id order, so concurrent batches do not
/// deadlock); a pending one that exists moves its due time forward (never back),
/// never past the `run_before` it was queued with (LEAST ignores a null). `xmax = 0`
/// tells a new row from an updated one.
const DEBOUNCE_CREATE: &str = "\
INSERT INTO jobs (id, project_id, kind, unique_key, payload, max_attempts, attachment, run_after, run_before)
SELECT id, project, kind, key, payload, attempts, attachment, due, latest
FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[], $6::int[], $7::text[],
            $8::timestamptz[], $9::timestamptz[]) AS t(id, project, kind, key, payload, attempts, attachment, due, latest)
ORDER BY id
ON CONFLICT (id) DO UPDATE
SET run_after = GREATEST(jobs.run_after, LEAST(EXCLUDED.run_after, jobs.run_before))
WHERE jobs.state = 'pending'
RETURNING (xmax = 0) AS created";

/// Moves existing pending debounced jobs forward (rows locked in id order first).
const DEBOUNCE_MOVE: &str = "\
UPDATE jobs j
SET run_after = GREATEST(j.run_after, LEAST(locked.due, j.run_before))
FROM (
    SELECT jobs.id, t.due FROM jobs JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS t(id, due) ON jobs.id = t.id
    WHERE jobs.state = 'pending'
    ORDER BY jobs.id
    FOR UPDATE OF jobs
) locked
WHERE j.id = locked.id";

/// Ends each listed job still held by its lease: done, or failed with its error.
const END_EACH: &str = "\
UPDATE jobs j
SET state = CASE WHEN t.error IS NULL THEN 'done' ELSE 'failed' END, finished_at = clock_timestamp(),
    lease_token = NULL, locked_until = NULL, last_error = coalesce(t.error, j.last_error), attachment = NULL
FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS t(id, token, error)
WHERE j.id = t.id AND j.lease_token = t.token AND j.state = 'running'
RETURNING j.id";

fn count(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[async_trait]
impl JobStatements for PgTransaction {
    async fn insert(&mut self, jobs: &[NewJob]) -> Result<u64, RepositoryError> {
        job_queue::insert_jobs(self.connection().await?, jobs).await.map_err(RepositoryError::new)
    }

    async fn insert_fresh(&mut self, jobs: &[NewJob]) -> Result<u64, RepositoryError> {
        let fresh = self.event_store().fresh().clone();
        let on_existing = fresh.on_existing();
        match job_queue::insert_jobs_as(self.connection().await?, jobs, on_existing).await {
            // A job that exists failed the statement and with it this transaction; its retry
            // skips existing jobs (see `fresh_inserts`).
            Err(error) if fresh.met_existing_in(&error, on_existing, JOBS_KEY) => {
                Err(RepositoryError::retryable(error))
            }
            inserted => inserted.map_err(RepositoryError::new),
        }
    }

    async fn debounce(&mut self, jobs: &[Debounce]) -> Result<u64, RepositoryError> {
        let (create, only_move): (Vec<&Debounce>, Vec<&Debounce>) = jobs.iter().partition(|job| job.create);
        let mut created = 0;
        if !create.is_empty() {
            let due: Vec<DateTime<Utc>> = create.iter().map(|d| d.due).collect();
            let latest: Vec<DateTime<Utc>> = create.iter().map(|d| d.latest).collect();
            let query = job_queue::bind_jobs(sqlx::query(DEBOUNCE_CREATE), create.iter().map(|d| &d.job));
            let rows: Vec<bool> = query
                .bind(due)
                .bind(latest)
                .fetch_all(self.connection().await?)
                .await
                .map_err(RepositoryError::new)?
                .iter()
                .map(|row| row.get::<bool, _>("created"))
                .collect();
            created = rows.into_iter().filter(|created| *created).count() as u64;
        }
        if !only_move.is_empty() {
            let ids: Vec<Uuid> = only_move.iter().map(|d| d.job.id.0).collect();
            let due: Vec<DateTime<Utc>> = only_move.iter().map(|d| d.due).collect();
            self.execute(sqlx::query(DEBOUNCE_MOVE).bind(ids).bind(due)).await?;
        }
        Ok(created)
    }

    async fn end(&mut self, lease: &Lease, end: Option<JobEnd>) -> Result<bool, RepositoryError> {
        let connection = self.connection().await?;
        match end {
            Some(JobEnd::Complete) => job_queue::complete_in(connection, lease).await,
            Some(JobEnd::Fail(reason)) => job_queue::fail_in(connection, lease, &reason).await,
            None => job_queue::holds_lease_in(connection, lease).await,
        }
        .map_err(RepositoryError::new)
    }

    async fn end_each(&mut self, ends: &[(Lease, JobEnd)]) -> Result<Vec<JobId>, RepositoryError> {
        let ids: Vec<Uuid> = ends.iter().map(|(lease, _)| lease.job.0).collect();
        let tokens: Vec<Uuid> = ends.iter().map(|(lease, _)| lease.token).collect();
        let errors: Vec<Option<String>> = ends
            .iter()
            .map(|(_, end)| match end {
                JobEnd::Complete => None,
                JobEnd::Fail(reason) => Some(job_queue::bounded(reason)),
            })
            .collect();
        let ended: Vec<Uuid> = sqlx::query_scalar(END_EACH)
            .bind(ids)
            .bind(tokens)
            .bind(errors)
            .fetch_all(self.connection().await?)
            .await
            .map_err(RepositoryError::new)?;
        Ok(ended.into_iter().map(JobId).collect())
    }
}

#[async_trait]
impl HourlyCapStatements for PgTransaction {
    async fn lock_counters(
        &mut self,
        project: ProjectId,
        counters: &[CapHour],
    ) -> Result<Vec<(CapHour, u32)>, RepositoryError> {
        let evaluations: Vec<Uuid> = counters.iter().map(|(evaluation, _)| evaluation.0).collect();
        let hours: Vec<DateTime<Utc>> = counters.iter().map(|(_, hour)| *hour).collect();
        self.execute(sqlx::query(ENSURE_COUNTERS).bind(&evaluations).bind(&hours).bind(project.0)).await?;
        let rows: Vec<(Uuid, DateTime<Utc>, i32)> = sqlx::query_as(LOCK_COUNTERS)
            .bind(&evaluations)
            .bind(&hours)
            .fetch_all(self.connection().await?)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|(evaluation, hour, queued)| ((EvaluationId(evaluation), hour), u32::try_from(queued).unwrap_or(0)))
            .collect())
    }

    async fn add_to_counters(&mut self, counts: &[CapCount]) -> Result<(), RepositoryError> {
        let evaluations: Vec<Uuid> = counts.iter().map(|c| c.evaluation.0).collect();
        let hours: Vec<DateTime<Utc>> = counts.iter().map(|c| c.hour).collect();
        let granted: Vec<i32> = counts.iter().map(|c| count(c.granted)).collect();
        let refused: Vec<i32> = counts.iter().map(|c| count(c.refused)).collect();
        self.execute(sqlx::query(ADD_TO_COUNTERS).bind(evaluations).bind(hours).bind(granted).bind(refused)).await?;
        Ok(())
    }
}
