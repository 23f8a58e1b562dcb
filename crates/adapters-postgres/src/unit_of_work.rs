//! The domain's `UnitOfWork` on PostgreSQL: the only place a transaction begins. Each
//! context's statements are implemented on [`PgTransaction`] in that context's module.

use async_trait::async_trait;
use domain::RepositoryError;
use domain::evaluation::EvaluationStatements;
use domain::provider_key::ProviderKeyStatements;
use domain::summary::RateLimitStatements;
use domain::unit_of_work::{Transaction, UnitOfWork};
use sqlx::{PgConnection, PgPool, Postgres};

/// Begins transactions on the pool.
#[derive(Clone)]
pub struct PgUnitOfWork {
    pool: PgPool,
}

impl PgUnitOfWork {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// One open transaction; dropped without a commit, it rolls back.
pub struct PgTransaction {
    tx: sqlx::Transaction<'static, Postgres>,
}

impl PgTransaction {
    /// The transaction's connection, for the statements.
    pub(crate) fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

#[async_trait]
impl UnitOfWork for PgUnitOfWork {
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError> {
        let tx = crate::pool::begin(&self.pool).await.map_err(RepositoryError::new)?;
        Ok(Box::new(PgTransaction { tx }))
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

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        self.tx.commit().await.map_err(RepositoryError::new)
    }
}
