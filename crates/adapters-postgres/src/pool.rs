//! Connecting, migrating and health-checking.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

/// A connection idle at least this long is asked whether its server is still there before
/// it is lent. A restart or failover of PostgreSQL takes far longer, so every connection
/// that sat through one is checked; connections busy under load skip the round trip.
pub const CHECK_IDLE_AFTER: Duration = Duration::from_millis(50);
/// Idle connections are closed after this long (a quiet replica holds none).
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Connections are replaced after this long, so that none outlives a failover for long.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The migrations in `migrations/`, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A pool to `url` with `max_connections`; fails fast when the database is unreachable.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    connect_checking_idle_after(url, max_connections, CHECK_IDLE_AFTER).await
}

/// [`connect`], checking connections idle at least `check_idle_after` (tests lengthen it to
/// meet a lost connection on purpose).
pub async fn connect_checking_idle_after(
    url: &str,
    max_connections: u32,
    check_idle_after: Duration,
) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(IDLE_TIMEOUT)
        .max_lifetime(MAX_LIFETIME)
        // sqlx would otherwise ping every connection it hands out: a second round trip per
        // query. Only a connection that sat idle is checked, before its first statement,
        // so a request never meets a connection its server closed (a restart, a failover):
        // a dead one is closed and the next one (or a new one) is lent instead.
        .test_before_acquire(false)
        .before_acquire(move |connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for < check_idle_after {
                    return Ok(true);
                }
                Ok(connection.ping().await.is_ok())
            })
        })
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

/// Whether `error` says the connection itself is gone (its server restarted, failed over or
/// ended the session) rather than that a statement failed: transport errors, and the
/// errors PostgreSQL sends as it closes a session (classes 57P and 08).
pub(crate) fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(database) => {
            database.code().is_some_and(|code| code.starts_with("57P") || code.starts_with("08"))
        }
        _ => false,
    }
}
