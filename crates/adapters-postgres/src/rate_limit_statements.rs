//! The rate-limit statements a domain transaction runs (`RateLimitStatements`), on
//! `rate_limit_hits`: one row per counted request.

use std::time::Duration;

use async_trait::async_trait;
use domain::summary::{RateLimitStatements, WindowHits};
use domain::{ApiKeyId, RepositoryError};

use crate::unit_of_work::PgTransaction;

/// Per window (`$3`, seconds back from now): its hits and the age of its oldest, in order.
const HITS: &str = "\
SELECT count(h.created_at) AS hits, extract(epoch FROM now() - min(h.created_at))::float8 AS oldest_age
FROM unnest($3::float8[]) WITH ORDINALITY AS w(secs, n)
LEFT JOIN rate_limit_hits h
       ON h.api_key_id = $1 AND h.bucket = $2 AND h.created_at > now() - make_interval(secs => w.secs)
GROUP BY w.n ORDER BY w.n";

const FORGET: &str = "\
DELETE FROM rate_limit_hits WHERE api_key_id = $1 AND bucket = $2 AND created_at <= now() - make_interval(secs => $3)";

#[async_trait]
impl RateLimitStatements for PgTransaction {
    async fn lock_counter(&mut self, bucket: &'static str, api_key: ApiKeyId) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('rate_limit:' || $1 || ':' || $2::text))")
                .bind(bucket)
                .bind(api_key.0),
        )
        .await?;
        Ok(())
    }

    async fn hits(
        &mut self,
        bucket: &'static str,
        api_key: ApiKeyId,
        windows: &[Duration],
    ) -> Result<Vec<WindowHits>, RepositoryError> {
        let seconds: Vec<f64> = windows.iter().map(Duration::as_secs_f64).collect();
        let rows: Vec<(i64, Option<f64>)> = sqlx::query_as(HITS)
            .bind(api_key.0)
            .bind(bucket)
            .bind(&seconds)
            .fetch_all(self.connection().await?)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|(hits, oldest_age)| WindowHits {
                hits: u64::try_from(hits).unwrap_or(0),
                oldest_age: oldest_age.map(|age| Duration::from_secs_f64(age.max(0.0))),
            })
            .collect())
    }

    async fn forget_older_than(
        &mut self,
        bucket: &'static str,
        api_key: ApiKeyId,
        age: Duration,
    ) -> Result<(), RepositoryError> {
        self.execute(sqlx::query(FORGET).bind(api_key.0).bind(bucket).bind(age.as_secs_f64())).await?;
        Ok(())
    }

    async fn count(&mut self, bucket: &'static str, api_key: ApiKeyId) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query("INSERT INTO rate_limit_hits (api_key_id, bucket, created_at) VALUES ($1, $2, now())")
                .bind(api_key.0)
                .bind(bucket),
        )
        .await?;
        Ok(())
    }
}
