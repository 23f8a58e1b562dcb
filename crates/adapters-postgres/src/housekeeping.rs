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

/// Monthly event partitions whose whole month ends at or before `$1` (the retention
/// cutoff), a few per sweep.
const EXPIRED_PARTITIONS: &str = "\
SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'ai_events'::regclass AND c.relname ~ '^ai_events_p[0-9]{4}_[0-9]{2}$'
  AND (to_date(substr(c.relname, 12), 'YYYY_MM') + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= $1
ORDER BY c.relname LIMIT 12";

/// Id claims of events in the dropped months (before the cutoff's month).
const EXPIRED_IDS: &str = "\
DELETE FROM ai_event_ids WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM ai_event_ids
    WHERE timestamp < date_trunc('month', $1 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' LIMIT $2))";

/// A partition name as `EXPIRED_PARTITIONS` selects it (checked again before it goes into
/// a statement).
fn is_partition_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("ai_events_p") else {
        return false;
    };
    rest.len() == 7 && rest.bytes().enumerate().all(|(i, b)| if i == 4 { b == b'_' } else { b.is_ascii_digit() })
}

/// Housekeeping's deletes.
#[derive(Clone)]
pub struct PgHousekeeping {
    pool: PgPool,
}

impl PgHousekeeping {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Drops the partitions wholly past `cutoff`. Each drop waits at most 2 s for its
    /// lock (ingestion is never blocked longer); one that could not is tried next sweep.
    async fn drop_partitions(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let names: Vec<String> = sqlx::query_scalar(EXPIRED_PARTITIONS)
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        let mut dropped = 0;
        for name in names.into_iter().filter(|n| is_partition_name(n)) {
            let mut conn = self.pool.acquire().await.map_err(RepositoryError::new)?;
            sqlx::query("SET lock_timeout = '2s'").execute(&mut *conn).await.map_err(RepositoryError::new)?;
            // The name was checked to be `ai_events_pYYYY_MM`: safe to put in the statement.
            let statement = sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}"));
            let outcome = sqlx::query(statement).execute(&mut *conn).await;
            if sqlx::query("RESET lock_timeout").execute(&mut *conn).await.is_err() {
                // A pooled connection must not keep the short timeout: close it instead.
                drop(conn.detach());
            }
            match outcome {
                Ok(_) => {
                    tracing::info!(partition = %name, "dropped an event partition past retention");
                    dropped += 1;
                }
                Err(error) => {
                    tracing::warn!(partition = %name, %error, "could not drop an event partition; next sweep");
                }
            }
        }
        Ok(dropped)
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
    async fn sweep(
        &self,
        now: DateTime<Utc>,
        batch: u32,
        event_cutoff: Option<DateTime<Utc>>,
    ) -> Result<SweepReport, RepositoryError> {
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
            event_partitions: match event_cutoff {
                Some(cutoff) => self.drop_partitions(cutoff).await?,
                None => 0,
            },
            event_ids: match event_cutoff {
                Some(cutoff) => sqlx::query(EXPIRED_IDS)
                    .bind(cutoff)
                    .bind(i64::from(batch))
                    .execute(&self.pool)
                    .await
                    .map_err(RepositoryError::new)?
                    .rows_affected(),
                None => 0,
            },
        })
    }
}
