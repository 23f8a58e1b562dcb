//! Transactions belong to the domain: a service begins one through [`UnitOfWork`], writes
//! through the statements bound to it, and commits once. Adapters expose plain statements;
//! none opens a transaction of its own, and no rule (who may be assigned, what the audit
//! records, which evaluations stop) is decided in SQL.
//!
//! A transaction dropped without [`Transaction::commit`] is rolled back, so an early return
//! (`?`, a not-found, a rule that says no) leaves nothing half-written.

use async_trait::async_trait;

use crate::RepositoryError;
use crate::backfill::BackfillStatements;
use crate::evaluation::EvaluationStatements;
use crate::ingestion::EventStatements;
use crate::jobs::JobStatements;
use crate::judge::HourlyCapStatements;
use crate::provider_key::ProviderKeyStatements;
use crate::reports::ReportStatements;
use crate::summary::RateLimitStatements;

#[cfg(test)]
pub(crate) mod testing;

/// Begins transactions.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UnitOfWork: Send + Sync + 'static {
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError>;
}

/// One open transaction and the statements that run inside it.
#[async_trait]
pub trait Transaction: Send {
    fn provider_keys(&mut self) -> &mut dyn ProviderKeyStatements;
    fn evaluations(&mut self) -> &mut dyn EvaluationStatements;
    fn rate_limits(&mut self) -> &mut dyn RateLimitStatements;
    fn events(&mut self) -> &mut dyn EventStatements;
    fn jobs(&mut self) -> &mut dyn JobStatements;
    fn hourly_caps(&mut self) -> &mut dyn HourlyCapStatements;
    fn reports(&mut self) -> &mut dyn ReportStatements;
    fn backfills(&mut self) -> &mut dyn BackfillStatements;
    /// Makes every statement of the transaction durable at once.
    async fn commit(self: Box<Self>) -> Result<(), RepositoryError>;
}

/// Runs `transaction` (which begins, writes and commits one transaction) and, when it
/// failed in a way the adapter says a second run may not, runs it once more.
pub async fn retried_once<T, F, Fut>(transaction: F) -> Result<T, RepositoryError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, RepositoryError>>,
{
    match transaction().await {
        Err(error) if error.is_retryable() => {
            tracing::info!(error = %error.0, "a transaction met a repaired failure; running it once more");
            transaction().await
        }
        done => done,
    }
}

/// How a read inside a transaction locks the row it reads, until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLock {
    /// Nobody else may change or lock the row (the row is about to change).
    Update,
    /// Nobody else may change the row (the row must stay as read, e.g. a replacement).
    Share,
}
