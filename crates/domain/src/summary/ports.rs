//! Ports of the summary use case: the shared cache with its single flight, and the rate
//! limiter. Both live in shared storage so that every replica sees the same state.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{EvaluationSummary, Flight, RateDecision, RateLimit, SummaryKey};
use crate::{ApiKeyId, RepositoryError};

/// Summaries reused for a while, and one computation per key at a time across replicas.
/// Errors are `RepositoryError` only.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait SummaryCache: Send + Sync + 'static {
    /// The summary stored under `key` less than `ttl` ago, if any.
    async fn fresh(&self, key: &SummaryKey, ttl: Duration) -> Result<Option<EvaluationSummary>, RepositoryError>;

    /// Stores (or replaces) the summary under `key`, created now.
    async fn store(&self, key: &SummaryKey, summary: &EvaluationSummary) -> Result<(), RepositoryError>;

    /// `Done` when a summary stored after `fresh_since` and less than `ttl` ago exists;
    /// else claims the computation of `key` for `lease` (`Leader`); else waits (polling,
    /// at most `wait`) until one of those happens (`GaveUp` when it does not). An expired
    /// lease is free.
    async fn begin(
        &self,
        key: &SummaryKey,
        lease: Duration,
        wait: Duration,
        ttl: Duration,
        fresh_since: DateTime<Utc>,
    ) -> Result<Flight, RepositoryError>;

    /// Gives up the claim on `key` (done or failed) if `token` (from `Flight::Leader`)
    /// still holds it; a claim another request took over after the lease lapsed stays.
    async fn release(&self, key: &SummaryKey, token: uuid::Uuid) -> Result<(), RepositoryError>;
}

/// Requests counted per API key and bucket in shared storage.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request of `api_key` in `bucket` unless a window of `limits` is full
    /// (then counts nothing and says when to retry). Atomic across replicas.
    async fn acquire(
        &self,
        bucket: &'static str,
        api_key: ApiKeyId,
        limits: &'static [RateLimit],
    ) -> Result<RateDecision, RepositoryError>;
}
