//! `JobQueue` on PostgreSQL: table `jobs` (see `migrations/0008_jobs.sql`). Claims use
//! `FOR UPDATE SKIP LOCKED`, so replicas never take the same job; every lease carries a
//! token, and renew / complete / retry / fail only touch a job whose token still matches.

use std::time::Duration;

use async_trait::async_trait;
use domain::jobs::{ClaimedJob, JobId, JobKind, JobQueue, Lease, NewJob};
use domain::{ProjectId, RepositoryError};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::fresh_inserts::OnExisting;

/// Inserts jobs, failing on an existing id (see `fresh_inserts`).
macro_rules! insert_jobs {
    () => {
        "\
INSERT INTO jobs (id, project_id, kind, unique_key, payload, max_attempts, attachment)
SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[], $6::int[], $7::text[])"
    };
}
const INSERT_NEW_JOBS: &str = insert_jobs!();

/// Inserts jobs; one whose id exists is skipped (a keyed job's id is derived from its
/// kind and key, so that is the same (kind, key) queued before).
const INSERT_JOBS: &str = concat!(insert_jobs!(), "\nON CONFLICT (id) DO NOTHING");

/// The jobs' key: an insert that expected only new jobs fails on it.
pub(crate) const JOBS_KEY: &str = "jobs_pkey";

/// Leases due jobs: pending ones whose time has come, and running ones whose lease lapsed
/// (`run_after` is the lease's end while running). Oldest due first, up to each wanted
/// kind's room ($1 kinds, $2 rooms, $3 the lease in seconds).
pub const CLAIM: &str = "\
WITH due AS (
    SELECT picked.id FROM UNNEST($1::text[], $2::int[]) AS wanted(kind, room)
    CROSS JOIN LATERAL (
        SELECT id FROM jobs
        WHERE state IN ('pending', 'running') AND run_after <= clock_timestamp() AND kind = wanted.kind
        ORDER BY run_after
        LIMIT wanted.room
        FOR UPDATE SKIP LOCKED
    ) picked
)
UPDATE jobs j
SET state = 'running', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
    locked_until = clock_timestamp() + make_interval(secs => $3),
    run_after = clock_timestamp() + make_interval(secs => $3)
FROM due WHERE j.id = due.id
RETURNING j.id, j.project_id, j.kind, j.payload, j.attachment, j.attempts, j.max_attempts, j.lease_token";

const RENEW: &str = "\
UPDATE jobs SET locked_until = clock_timestamp() + make_interval(secs => $3),
                run_after = clock_timestamp() + make_interval(secs => $3)
WHERE id = $1 AND lease_token = $2 AND state = 'running'";

/// An ended job's attachment is dropped: it was for its handler only.
pub(crate) const COMPLETE: &str = "\
UPDATE jobs SET state = 'done', finished_at = clock_timestamp(), lease_token = NULL, locked_until = NULL,
                attachment = NULL
WHERE id = $1 AND lease_token = $2 AND state = 'running'";

const HOLDS_LEASE: &str = "\
SELECT 1 FROM jobs WHERE id = $1 AND lease_token = $2 AND state = 'running' FOR UPDATE";

const RETRY: &str = "\
UPDATE jobs SET state = 'pending', run_after = clock_timestamp() + make_interval(secs => $3),
                lease_token = NULL, locked_until = NULL, last_error = $4
WHERE id = $1 AND lease_token = $2 AND state = 'running'";

const FAIL: &str = "\
UPDATE jobs SET state = 'failed', finished_at = clock_timestamp(), lease_token = NULL, locked_until = NULL,
                last_error = $3, attachment = NULL
WHERE id = $1 AND lease_token = $2 AND state = 'running'";

/// The longest error text kept on a job.
const MAX_ERROR_CHARS: usize = 2_000;

/// The durable job table.
#[derive(Clone)]
pub struct PgJobQueue {
    pool: PgPool,
}

/// How the jobs of one kind stand (for the operators' metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct JobStats {
    pub kind: String,
    /// Pending (due or not).
    pub queued: i64,
    pub running: i64,
    /// Ended failed and not yet swept by housekeeping.
    pub failed: i64,
    /// How long the oldest due pending job has waited, in seconds (0 when none is due).
    pub oldest_due_seconds: f64,
}

const JOB_STATS: &str = "\
SELECT kind,
       count(*) FILTER (WHERE state = 'pending') AS queued,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       coalesce(extract(epoch FROM now() - min(run_after) FILTER (WHERE state = 'pending' AND run_after <= now())),
                0)::float8 AS oldest_due_seconds
FROM jobs GROUP BY kind";

#[derive(FromRow)]
struct JobStatsRow {
    kind: String,
    queued: i64,
    running: i64,
    failed: i64,
    oldest_due_seconds: f64,
}

impl PgJobQueue {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The jobs by kind and state, and the wait of the oldest due one.
    pub async fn stats(&self) -> Result<Vec<JobStats>, RepositoryError> {
        let rows: Vec<JobStatsRow> =
            sqlx::query_as(JOB_STATS).fetch_all(&self.pool).await.map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|r| JobStats {
                kind: r.kind,
                queued: r.queued,
                running: r.running,
                failed: r.failed,
                oldest_due_seconds: r.oldest_due_seconds,
            })
            .collect())
    }
}

#[derive(FromRow)]
struct ClaimRow {
    id: Uuid,
    project_id: i64,
    kind: String,
    payload: Value,
    attachment: Option<String>,
    attempts: i32,
    max_attempts: i32,
    lease_token: Uuid,
}

/// An error as a job keeps it: at most [`MAX_ERROR_CHARS`].
pub(crate) fn bounded(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

/// Ends the job holding `lease` on `conn` (the caller's transaction, which stores the
/// job's result); false when the lease is no longer the job's.
pub(crate) async fn complete_in(conn: &mut PgConnection, lease: &domain::jobs::Lease) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query(COMPLETE).bind(lease.job.0).bind(lease.token).execute(conn).await?;
    Ok(ended.rows_affected() == 1)
}

/// Ends the job holding `lease` as failed with `reason`, on `conn` (the caller's transaction).
pub(crate) async fn fail_in(
    conn: &mut PgConnection,
    lease: &domain::jobs::Lease,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let reason = bounded(reason);
    let ended = sqlx::query(FAIL).bind(lease.job.0).bind(lease.token).bind(reason).execute(conn).await?;
    Ok(ended.rows_affected() == 1)
}

/// Whether `lease` still holds its job, locking the job's row until the caller's
/// transaction ends (so the lease cannot be taken over before it commits).
pub(crate) async fn holds_lease_in(conn: &mut PgConnection, lease: &domain::jobs::Lease) -> Result<bool, sqlx::Error> {
    let held: Option<i32> =
        sqlx::query_scalar(HOLDS_LEASE).bind(lease.job.0).bind(lease.token).fetch_optional(conn).await?;
    Ok(held.is_some())
}

/// Inserts `jobs` on `conn` (the caller's transaction); returns how many were new.
pub(crate) async fn insert_jobs(conn: &mut PgConnection, jobs: &[NewJob]) -> Result<u64, sqlx::Error> {
    insert_jobs_as(conn, jobs, OnExisting::Skip).await
}

/// Inserts `jobs` on `conn` (the caller's transaction), treating an existing one
/// `on_existing` (see `fresh_inserts`); returns how many were new.
pub(crate) async fn insert_jobs_as(
    conn: &mut PgConnection,
    jobs: &[NewJob],
    on_existing: OnExisting,
) -> Result<u64, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let statement = on_existing.statement(INSERT_NEW_JOBS, INSERT_JOBS);
    let result = bind_jobs(sqlx::query(statement), jobs.iter()).execute(&mut *conn).await?;
    Ok(result.rows_affected())
}

/// Binds the job columns `$1`..`$7` (id, project, kind, key, payload, attempts, attachment)
/// as arrays, one element per job.
pub(crate) fn bind_jobs<'q>(
    query: Query<'q, Postgres, PgArguments>,
    jobs: impl Iterator<Item = &'q NewJob> + Clone,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(jobs.clone().map(|j| j.id.0).collect::<Vec<Uuid>>())
        .bind(jobs.clone().map(|j| j.project.0).collect::<Vec<i64>>())
        .bind(jobs.clone().map(|j| j.kind.as_str()).collect::<Vec<&str>>())
        .bind(jobs.clone().map(|j| j.unique_key.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(jobs.clone().map(|j| Json(&j.payload)).collect::<Vec<Json<&Value>>>())
        .bind(jobs.clone().map(|j| i32::try_from(j.max_attempts).unwrap_or(i32::MAX)).collect::<Vec<i32>>())
        .bind(jobs.map(|j| j.attachment.as_deref()).collect::<Vec<Option<&str>>>())
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl PgJobQueue {
    async fn end(&self, sql: &'static str, lease: &Lease, extra: Option<&str>) -> Result<bool, RepositoryError> {
        let mut query = sqlx::query(sql).bind(lease.job.0).bind(lease.token);
        if let Some(extra) = extra {
            query = query.bind(bounded(extra));
        }
        let result = query.execute(&self.pool).await.map_err(RepositoryError::new)?;
        Ok(result.rows_affected() == 1)
    }
}

#[async_trait]
impl JobQueue for PgJobQueue {
    async fn enqueue(&self, jobs: &[NewJob]) -> Result<u64, RepositoryError> {
        let mut conn = self.pool.acquire().await.map_err(RepositoryError::new)?;
        insert_jobs(&mut conn, jobs).await.map_err(RepositoryError::new)
    }

    async fn claim(&self, wanted: &[(JobKind, u32)], lease: Duration) -> Result<Vec<ClaimedJob>, RepositoryError> {
        let kinds: Vec<&str> = wanted.iter().map(|(kind, _)| kind.as_str()).collect();
        let rooms: Vec<i32> = wanted.iter().map(|(_, room)| i32::try_from(*room).unwrap_or(i32::MAX)).collect();
        let rows: Vec<ClaimRow> = sqlx::query_as(CLAIM)
            .bind(kinds)
            .bind(rooms)
            .bind(seconds(lease))
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|row| ClaimedJob {
                lease: Lease { job: JobId(row.id), token: row.lease_token },
                project: ProjectId(row.project_id),
                kind: JobKind::parse(&row.kind),
                payload: row.payload,
                attachment: row.attachment,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                max_attempts: u32::try_from(row.max_attempts).unwrap_or(1),
            })
            .collect())
    }

    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<bool, RepositoryError> {
        let result = sqlx::query(RENEW)
            .bind(lease.job.0)
            .bind(lease.token)
            .bind(seconds(duration))
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(result.rows_affected() == 1)
    }

    async fn complete(&self, lease: &Lease) -> Result<bool, RepositoryError> {
        self.end(COMPLETE, lease, None).await
    }

    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<bool, RepositoryError> {
        let result = sqlx::query(RETRY)
            .bind(lease.job.0)
            .bind(lease.token)
            .bind(seconds(delay))
            .bind(bounded(error))
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(result.rows_affected() == 1)
    }

    async fn fail(&self, lease: &Lease, error: &str) -> Result<bool, RepositoryError> {
        self.end(FAIL, lease, Some(error)).await
    }
}
