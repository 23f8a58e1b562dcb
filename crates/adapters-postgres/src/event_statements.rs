//! The event statements a domain transaction runs (`EventStatements`).

use async_trait::async_trait;
use domain::ingestion::{EventStatements, IncomingEvent};
use domain::{ProjectId, RepositoryError};
use uuid::Uuid;

use crate::ai_event_store::{BatchColumns, CLAIMS_KEY, insert_returning_uuids, is_missing_partition};
use crate::fresh_inserts::OnExisting;
use crate::unit_of_work::PgTransaction;

#[async_trait]
impl EventStatements for PgTransaction {
    async fn insert(&mut self, project: ProjectId, events: &[IncomingEvent]) -> Result<Vec<Uuid>, RepositoryError> {
        self.insert_events(project, events, OnExisting::Skip).await
    }

    async fn insert_fresh(
        &mut self,
        project: ProjectId,
        events: &[IncomingEvent],
    ) -> Result<Vec<Uuid>, RepositoryError> {
        let on_existing = self.event_store().fresh().on_existing();
        self.insert_events(project, events, on_existing).await
    }
}

impl PgTransaction {
    async fn insert_events(
        &mut self,
        project: ProjectId,
        events: &[IncomingEvent],
        on_existing: OnExisting,
    ) -> Result<Vec<Uuid>, RepositoryError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Partitions are created on connections of their own before the statement: as the
        // first statement of its transaction, before the transaction holds a connection.
        let store = self.event_store().clone();
        store.ensure_partitions_for(events).await.map_err(RepositoryError::new)?;
        let columns = BatchColumns::of(events);
        let connection = self.connection().await?;
        let stored = insert_returning_uuids(&mut *connection, project, &columns, on_existing).await;
        // A batch statement can be tens of megabytes, and a pooled connection keeps its
        // largest buffer.
        sqlx::Connection::shrink_buffers(connection);
        match stored {
            // A partition this process believed in is gone (dropped by an operator): this
            // transaction is lost, but with the batch's months created again a second run
            // of it succeeds.
            Err(error) if is_missing_partition(&error) => {
                tracing::warn!("an ai_events partition was missing; creating it for the transaction's retry");
                store.known().clear();
                store.ensure_partitions_for(events).await.map_err(RepositoryError::new)?;
                // The retry is the transaction's last: it must not fail on a duplicate
                // this statement never got to meet.
                store.fresh().met_existing();
                Err(RepositoryError::retryable(error))
            }
            // A uuid the project has (a re-sent batch) failed the statement and with it this
            // transaction; its retry skips existing uuids (see `fresh_inserts`).
            Err(error) if store.fresh().met_existing_in(&error, on_existing, CLAIMS_KEY) => {
                Err(RepositoryError::retryable(error))
            }
            stored => stored.map_err(RepositoryError::new),
        }
    }
}
