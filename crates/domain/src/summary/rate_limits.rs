//! Rate limits counted in shared storage: one transaction per request serialises a key's
//! requests in a bucket (every replica sees the same counts), and the rule — a window is
//! full when it already holds `max` requests, and the wait is until its oldest leaves — is
//! decided here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{RateDecision, RateLimit, RateLimiter};
use crate::unit_of_work::UnitOfWork;
use crate::{ApiKeyId, RepositoryError};

/// What one window holds now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowHits {
    pub hits: u64,
    /// How long ago the oldest request still in the window was counted.
    pub oldest_age: Option<Duration>,
}

/// Rate-limit statements inside a transaction (see [`crate::unit_of_work`]).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait RateLimitStatements: Send {
    /// Waits until no other transaction counts requests of `api_key` in `bucket`, and holds
    /// that until this one ends.
    async fn lock_counter(&mut self, bucket: &'static str, api_key: ApiKeyId) -> Result<(), RepositoryError>;

    /// What each of `windows` (lengths back from now) holds, in the same order.
    async fn hits(
        &mut self,
        bucket: &'static str,
        api_key: ApiKeyId,
        windows: &[Duration],
    ) -> Result<Vec<WindowHits>, RepositoryError>;

    /// Forgets the requests counted longer than `age` ago.
    async fn forget_older_than(
        &mut self,
        bucket: &'static str,
        api_key: ApiKeyId,
        age: Duration,
    ) -> Result<(), RepositoryError>;

    /// Counts one request now.
    async fn count(&mut self, bucket: &'static str, api_key: ApiKeyId) -> Result<(), RepositoryError>;
}

/// The rate limiter on the unit of work.
pub struct SharedRateLimiter {
    unit_of_work: Arc<dyn UnitOfWork>,
}

impl SharedRateLimiter {
    pub fn new(unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self { unit_of_work }
    }
}

/// How long until every full window has room again; `None` when none is full.
fn wait_for_room(limits: &[RateLimit], windows: &[WindowHits]) -> Option<Duration> {
    limits
        .iter()
        .zip(windows)
        .filter(|(limit, window)| window.hits >= u64::from(limit.max))
        .map(|(limit, window)| limit.window.saturating_sub(window.oldest_age.unwrap_or_default()))
        .max()
}

#[async_trait]
impl RateLimiter for SharedRateLimiter {
    async fn acquire(
        &self,
        bucket: &'static str,
        api_key: ApiKeyId,
        limits: &'static [RateLimit],
    ) -> Result<RateDecision, RepositoryError> {
        let lengths: Vec<Duration> = limits.iter().map(|limit| limit.window).collect();
        let mut tx = self.unit_of_work.begin().await?;
        tx.rate_limits().lock_counter(bucket, api_key).await?;
        let windows = tx.rate_limits().hits(bucket, api_key, &lengths).await?;
        if let Some(retry_after) = wait_for_room(limits, &windows) {
            return Ok(RateDecision::Limited { retry_after });
        }
        let longest = lengths.iter().copied().max().unwrap_or_default();
        tx.rate_limits().forget_older_than(bucket, api_key, longest).await?;
        tx.rate_limits().count(bucket, api_key).await?;
        tx.commit().await?;
        Ok(RateDecision::Allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: [RateLimit; 2] = [
        RateLimit { window: Duration::from_secs(60), max: 2 },
        RateLimit { window: Duration::from_secs(3_600), max: 3 },
    ];

    fn window(hits: u64, oldest_secs: u64) -> WindowHits {
        WindowHits { hits, oldest_age: Some(Duration::from_secs(oldest_secs)) }
    }

    #[test]
    fn a_window_is_full_at_its_max_and_the_wait_is_until_its_oldest_request_leaves() {
        assert_eq!(wait_for_room(&LIMITS, &[window(1, 10), window(1, 10)]), None);
        assert_eq!(wait_for_room(&LIMITS, &[window(2, 45), window(2, 45)]), Some(Duration::from_secs(15)));
        assert_eq!(wait_for_room(&LIMITS, &[window(2, 45), window(3, 600)]), Some(Duration::from_secs(3_000)));
        assert_eq!(wait_for_room(&LIMITS, &[window(2, 90), window(2, 90)]), Some(Duration::ZERO));
    }
}
