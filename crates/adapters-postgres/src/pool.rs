//! Connecting, migrating and health-checking.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The migrations in `migrations/`, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A pool to `url` with `max_connections`; fails fast when the database is unreachable.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx would otherwise ping every connection it hands out: a second round trip per
        // query. A connection that died is dropped by the pool when its query fails.
        .test_before_acquire(false)
        .connect(url)
        .await?;
    Ok(pool)
}

/// Applies every pending migration (idempotent; safe from several replicas at once, as
/// sqlx takes an advisory lock).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Whether the database answers.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}
