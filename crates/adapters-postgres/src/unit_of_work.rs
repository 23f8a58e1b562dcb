//! The domain's `UnitOfWork` on PostgreSQL: the only place a transaction begins. Each
//! context's statements are implemented on [`PgTransaction`] in that context's module.

use async_trait::async_trait;
use domain::RepositoryError;
use domain::backfill::BackfillStatements;
use domain::evaluation::EvaluationStatements;
use domain::ingestion::EventStatements;
use domain::jobs::JobStatements;
use domain::judge::HourlyCapStatements;
use domain::provider_key::ProviderKeyStatements;
use domain::reports::ReportStatements;
use domain::summary::RateLimitStatements;
use domain::unit_of_work::{Transaction, UnitOfWork};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, PgPool, Postgres};

use crate::PgAiEventStore;

/// Begins transactions on the pool.
#[derive(Clone)]
pub struct PgUnitOfWork {
    pool: PgPool,
    /// What the process knows of the event partitions (shared with every event writer).
    events: PgAiEventStore,
}

impl PgUnitOfWork {
    /// Transactions on `events`' pool, sharing its partition knowledge.
    pub fn new(events: &PgAiEventStore) -> Self {
        Self { pool: events.pool.clone(), events: events.clone() }
    }
}

/// One transaction; dropped without a commit, it rolls back. It begins (takes a connection
/// and sends `BEGIN`) at its first statement, so that what a statement prepares on
/// connections of its own (an event partition) is done before this one holds a connection.
pub struct PgTransaction {
    pool: PgPool,
    tx: Option<sqlx::Transaction<'static, Postgres>>,
    events: PgAiEventStore,
}

impl PgTransaction {
    /// The transaction's connection, for the statements; begins the transaction first.
    pub(crate) async fn connection(&mut self) -> Result<&mut PgConnection, RepositoryError> {
        if self.tx.is_none() {
            self.tx = Some(begin(&self.pool).await.map_err(RepositoryError::new)?);
        }
        self.tx
            .as_deref_mut()
            .ok_or_else(|| RepositoryError::new(anyhow::anyhow!("a transaction that began has no connection")))
    }

    /// Runs one statement in the transaction; returns how many rows it touched.
    pub(crate) async fn execute(
        &mut self,
        statement: Query<'_, Postgres, PgArguments>,
    ) -> Result<u64, RepositoryError> {
        let connection = self.connection().await?;
        Ok(statement.execute(connection).await.map_err(RepositoryError::new)?.rows_affected())
    }

    /// The event store whose partitions the event statements ensure.
    pub(crate) fn event_store(&self) -> &PgAiEventStore {
        &self.events
    }
}

#[async_trait]
impl UnitOfWork for PgUnitOfWork {
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError> {
        Ok(Box::new(PgTransaction { pool: self.pool.clone(), tx: None, events: self.events.clone() }))
    }
}

#[async_trait]
impl Transaction for PgTransaction {
    fn provider_keys(&mut self) -> &mut dyn ProviderKeyStatements {
        self
    }

    fn evaluations(&mut self) -> &mut dyn EvaluationStatements {
        self
    }

    fn rate_limits(&mut self) -> &mut dyn RateLimitStatements {
        self
    }

    fn events(&mut self) -> &mut dyn EventStatements {
        self
    }

    fn jobs(&mut self) -> &mut dyn JobStatements {
        self
    }

    fn hourly_caps(&mut self) -> &mut dyn HourlyCapStatements {
        self
    }

    fn reports(&mut self) -> &mut dyn ReportStatements {
        self
    }

    fn backfills(&mut self) -> &mut dyn BackfillStatements {
        self
    }

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        match self.tx {
            Some(tx) => tx.commit().await.map_err(RepositoryError::new),
            None => Ok(()),
        }
    }
}

/// Begins a transaction; when the connection lent for it turns out to be lost, begins once
/// more on another. Safe for every caller: nothing but `BEGIN` was sent on the lost one,
/// and a session that ends takes its open transaction with it.
pub async fn begin(pool: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
    match pool.begin().await {
        Err(error) if crate::pool::connection_lost(&error) => {
            tracing::info!(%error, "a pooled connection was lost before its transaction began; beginning on another");
            pool.begin().await
        }
        begun => begun,
    }
}
