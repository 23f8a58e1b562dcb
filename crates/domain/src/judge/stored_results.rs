//! A judge job's results and its own end, written together.

use crate::ingestion::IncomingEvent;
use crate::jobs::{JobEnd, Lease};
use crate::unit_of_work::{UnitOfWork, retried_once};
use crate::{ProjectId, RepositoryError};

/// In one transaction, while `lease` is still the job's: stores the result events (like
/// ingested ones, idempotent on their uuids) and writes the job's `end`; with no end the
/// job stays leased (the worker retries it). False, and nothing stored, when the lease is
/// no longer the job's.
pub async fn store_results(
    unit_of_work: &dyn UnitOfWork,
    lease: &Lease,
    project: ProjectId,
    results: &[IncomingEvent],
    end: Option<&JobEnd>,
) -> Result<bool, RepositoryError> {
    retried_once(|| async {
        let mut tx = unit_of_work.begin().await?;
        // The results first: their store may prepare for them before the transaction holds
        // anything. A lapsed lease still stores nothing: the transaction is not committed.
        if !results.is_empty() {
            tx.events().insert(project, results).await?;
        }
        if !tx.jobs().end(lease, end.cloned()).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    })
    .await
}
