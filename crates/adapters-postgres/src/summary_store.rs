//! The summary's shared state on PostgreSQL (see `migrations/0007_summaries.sql`): the
//! cache and its single flight, the rate-limit counters, and the LLM call records.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::RepositoryError;
use domain::llm::{LlmCallLog, LlmCallRecord};
use domain::summary::{EvaluationSummary, Flight, SummaryCache, SummaryKey};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

/// How often a waiting request looks for the leader's result, at first and at most.
const FIRST_POLL: Duration = Duration::from_millis(25);
const MAX_POLL: Duration = Duration::from_millis(250);

const FRESH: &str = "\
SELECT summary FROM summary_cache
WHERE project_id = $1 AND cache_key = $2
  AND created_at > now() - make_interval(secs => $3)
  AND ($4::timestamptz IS NULL OR created_at >= $4)";

const STORE: &str = "\
INSERT INTO summary_cache (project_id, cache_key, evaluation_id, summary, created_at)
VALUES ($1, $2, $3, $4, clock_timestamp())
ON CONFLICT (project_id, cache_key)
DO UPDATE SET summary = EXCLUDED.summary, created_at = EXCLUDED.created_at";

/// Claims the key unless a live lease holds it (an expired one is taken over).
/// Entries of the evaluation well past any TTL, deleted when a new one is stored.
const PURGE: &str = "\
DELETE FROM summary_cache
WHERE project_id = $1 AND evaluation_id = $2 AND created_at < now() - interval '1 day'";

const CLAIM: &str = "\
INSERT INTO summary_flights (project_id, cache_key, locked_until, lease_token)
VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3), $4)
ON CONFLICT (project_id, cache_key)
DO UPDATE SET locked_until = EXCLUDED.locked_until, lease_token = EXCLUDED.lease_token
WHERE summary_flights.locked_until < clock_timestamp()
RETURNING 1";

/// Only the holder's own claim: a slow holder whose lease was taken over leaves the new
/// holder's claim alone.
const RELEASE: &str = "DELETE FROM summary_flights WHERE project_id = $1 AND cache_key = $2 AND lease_token = $3";

/// Summaries cached in `summary_cache`, single flight through `summary_flights`.
#[derive(Clone)]
pub struct PgSummaryCache {
    pool: PgPool,
}

impl PgSummaryCache {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn fresh_since(
        &self,
        key: &SummaryKey,
        ttl: Duration,
        since: Option<DateTime<Utc>>,
    ) -> Result<Option<EvaluationSummary>, RepositoryError> {
        let row: Option<Json<EvaluationSummary>> = sqlx::query_scalar(FRESH)
            .bind(key.project.0)
            .bind(key.as_text())
            .bind(ttl.as_secs_f64())
            .bind(since)
            .fetch_optional(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(row.map(|Json(summary)| summary))
    }

    async fn claim(&self, key: &SummaryKey, lease: Duration) -> Result<Option<Uuid>, RepositoryError> {
        let token = Uuid::new_v4();
        let claimed: Option<i32> = sqlx::query_scalar(CLAIM)
            .bind(key.project.0)
            .bind(key.as_text())
            .bind(lease.as_secs_f64())
            .bind(token)
            .fetch_optional(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(claimed.map(|_| token))
    }
}

#[async_trait]
impl SummaryCache for PgSummaryCache {
    async fn fresh(&self, key: &SummaryKey, ttl: Duration) -> Result<Option<EvaluationSummary>, RepositoryError> {
        self.fresh_since(key, ttl, None).await
    }

    async fn store(&self, key: &SummaryKey, summary: &EvaluationSummary) -> Result<(), RepositoryError> {
        sqlx::query(STORE)
            .bind(key.project.0)
            .bind(key.as_text())
            .bind(key.evaluation.0)
            .bind(Json(summary))
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        sqlx::query(PURGE)
            .bind(key.project.0)
            .bind(key.evaluation.0)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(())
    }

    async fn begin(
        &self,
        key: &SummaryKey,
        lease: Duration,
        wait: Duration,
        ttl: Duration,
        fresh_since: DateTime<Utc>,
    ) -> Result<Flight, RepositoryError> {
        let deadline = Instant::now() + wait;
        let mut poll = FIRST_POLL;
        loop {
            if let Some(summary) = self.fresh_since(key, ttl, Some(fresh_since)).await? {
                return Ok(Flight::Done(Box::new(summary)));
            }
            if let Some(token) = self.claim(key, lease).await? {
                // The previous leader may have finished between the two statements.
                if let Some(summary) = self.fresh_since(key, ttl, Some(fresh_since)).await? {
                    self.release(key, token).await?;
                    return Ok(Flight::Done(Box::new(summary)));
                }
                return Ok(Flight::Leader(token));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Flight::GaveUp);
            }
            tokio::time::sleep(poll.min(deadline - now)).await;
            poll = (poll * 2).min(MAX_POLL);
        }
    }

    async fn release(&self, key: &SummaryKey, token: Uuid) -> Result<(), RepositoryError> {
        sqlx::query(RELEASE)
            .bind(key.project.0)
            .bind(key.as_text())
            .bind(token)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(())
    }
}

/// Per window: the hits inside it and how long until the oldest of them leaves it.
/// LLM call records in `llm_calls`.
#[derive(Clone)]
pub struct PgLlmCallLog {
    pool: PgPool,
}

impl PgLlmCallLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl LlmCallLog for PgLlmCallLog {
    async fn record(&self, call: &LlmCallRecord) -> Result<(), RepositoryError> {
        sqlx::query(
            "INSERT INTO llm_calls (project_id, purpose, provider, model, provider_key_id, input_tokens, \
             output_tokens, latency_ms, outcome, cost_usd, cost_source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(call.project.0)
        .bind(call.purpose.as_str())
        .bind(call.provider.as_str())
        .bind(&call.model)
        .bind(call.key.map(|key| key.0))
        .bind(as_i64(call.input_tokens))
        .bind(as_i64(call.output_tokens))
        .bind(as_i64(call.latency_ms))
        .bind(call.outcome.as_str())
        .bind(call.cost.map(|(usd, _)| usd))
        .bind(call.cost.map(|(_, source)| source.as_str()))
        .execute(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(())
    }
}
