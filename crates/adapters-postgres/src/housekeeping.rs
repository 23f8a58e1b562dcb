//! `Housekeeping` on PostgreSQL: bounded deletes of what has expired. Each step is one
//! statement deleting at most `batch` rows, oldest first where an index allows it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::RepositoryError;
use domain::housekeeping::{FINISHED_JOBS_KEPT, Housekeeping, SweepReport};
use domain::summary::{CACHE_TTL, SUMMARY_RATE_LIMITS};
use sqlx::PgPool;

/// Claims whose lease lapsed (a crashed summary leader's).
const FLIGHTS: &str = "\
DELETE FROM summary_flights WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM summary_flights WHERE locked_until < $1 LIMIT $2))";

/// Cached summaries past their time to live (`$3` seconds).
const CACHE: &str = "\
DELETE FROM summary_cache WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM summary_cache WHERE created_at < $1 - make_interval(secs => $3) ORDER BY created_at LIMIT $2))";

/// Rate-limit hits older than the longest window (`$3` seconds).
const RATE_HITS: &str = "\
DELETE FROM rate_limit_hits WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM rate_limit_hits WHERE created_at < $1 - make_interval(secs => $3) ORDER BY created_at LIMIT $2))";

/// Jobs finished (done or failed) more than `$3` seconds ago.
const FINISHED_JOBS: &str = "\
DELETE FROM jobs WHERE id = ANY(ARRAY(
    SELECT id FROM jobs WHERE finished_at < $1 - make_interval(secs => $3) ORDER BY finished_at LIMIT $2))";

/// Housekeeping's deletes.
#[derive(Clone)]
pub struct PgHousekeeping {
    pool: PgPool,
}

impl PgHousekeeping {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn delete(
        &self,
        sql: &'static str,
        now: DateTime<Utc>,
        batch: u32,
        age_secs: f64,
    ) -> Result<u64, RepositoryError> {
        let result = sqlx::query(sql)
            .bind(now)
            .bind(i64::from(batch))
            .bind(age_secs)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(result.rows_affected())
    }
}

#[async_trait]
impl Housekeeping for PgHousekeeping {
    async fn sweep(&self, now: DateTime<Utc>, batch: u32) -> Result<SweepReport, RepositoryError> {
        let longest_window = SUMMARY_RATE_LIMITS.iter().map(|limit| limit.window).max().unwrap_or_default();
        let flights = sqlx::query(FLIGHTS)
            .bind(now)
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?
            .rows_affected();
        Ok(SweepReport {
            summary_flights: flights,
            summary_cache: self.delete(CACHE, now, batch, CACHE_TTL.as_secs_f64()).await?,
            rate_limit_hits: self.delete(RATE_HITS, now, batch, longest_window.as_secs_f64()).await?,
            finished_jobs: self.delete(FINISHED_JOBS, now, batch, FINISHED_JOBS_KEPT.as_secs_f64()).await?,
        })
    }
}
