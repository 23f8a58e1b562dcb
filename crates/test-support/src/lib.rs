//! Helpers for the workspace's tests (a dev-dependency only): a fresh PostgreSQL
//! database per test, a free port, and waiting for a condition without `sleep`.
//!
//! Run the tests with `cargo xtask test`: it starts a throwaway PostgreSQL and puts its
//! URL in `LLMA_TEST_DATABASE_URL`.

mod experiments;
mod smtp_sink;

pub use experiments::experiment_result_properties;
pub use smtp_sink::{ReceivedMail, SmtpSink};

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

/// The variable through which `cargo xtask test` passes the test cluster's URL.
pub const TEST_DATABASE_URL_VAR: &str = "LLMA_TEST_DATABASE_URL";

/// The variable through which `cargo xtask test` says how to restart the test cluster.
pub const TEST_DATABASE_RESTART_VAR: &str = "LLMA_TEST_DATABASE_RESTART";

/// Restarts the whole test cluster (fast mode: every connection is closed, as in a routine
/// restart or a failover) and returns once it accepts connections again. Only a test
/// binary of its own may call it: tests of other binaries do not run meanwhile.
///
/// # Panics
/// When `cargo xtask test` did not say how, or the restart fails.
pub fn restart_cluster() {
    let command = std::env::var(TEST_DATABASE_RESTART_VAR)
        .unwrap_or_else(|_| panic!("{TEST_DATABASE_RESTART_VAR} is not set: run the tests with `cargo xtask test`"));
    let words: Vec<&str> = command.lines().collect();
    let (program, args) = words.split_first().expect("a restart command");
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "restarting the test cluster failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Connections per [`TestDatabase`] pool: tests run in parallel on one small cluster.
const MAX_CONNECTIONS: u32 = 5;

/// How often [`wait_until`] checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// URL of the test cluster's `postgres` database, as a superuser: for creating databases,
/// not for tests to write in.
///
/// # Panics
/// When `LLMA_TEST_DATABASE_URL` is unset, saying how to run the tests.
pub fn admin_url() -> String {
    std::env::var(TEST_DATABASE_URL_VAR).unwrap_or_else(|_| {
        panic!("{TEST_DATABASE_URL_VAR} is not set: run the tests with `cargo xtask test`, which starts PostgreSQL")
    })
}

/// A database of its own for one test, empty (no migrations: the caller runs them).
///
/// It is not dropped afterwards; the whole cluster is thrown away after the run.
pub struct TestDatabase {
    /// Connection URL of this database, e.g. for a server the test starts.
    pub url: String,
    /// A pool of at most 5 connections to this database.
    pub pool: PgPool,
    name: String,
}

impl TestDatabase {
    /// Creates a uniquely named database (`test_<uuid>`) on the test cluster.
    ///
    /// # Panics
    /// When the cluster is not configured ([`admin_url`]) or cannot be reached.
    pub async fn create() -> TestDatabase {
        let admin = admin_url();
        let name = format!("test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {admin}: {e}"));
        // A name cannot be a bind parameter; this one is ours, made of [a-z0-9_].
        sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        conn.close().await.ok();

        let url = database_url(&admin, &name);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        TestDatabase { url, pool, name }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `admin` with its database replaced by `database`.
fn database_url(admin: &str, database: &str) -> String {
    let mut url =
        url::Url::parse(admin).unwrap_or_else(|e| panic!("{TEST_DATABASE_URL_VAR} is not a URL ({e}): {admin}"));
    url.set_path(database);
    url.into()
}

/// Waits until `condition` returns true, checking every 20 ms: the way tests wait for
/// background work, instead of sleeping for a guessed time.
///
/// # Panics
/// When `condition` is still false after `deadline`.
pub async fn wait_until<F, Fut>(deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    loop {
        if condition().await {
            return;
        }
        if start.elapsed() >= deadline {
            panic!("wait_until: the condition was still false after {deadline:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A port on 127.0.0.1 that is free right now, for a process the test starts. When the
/// code under test can take a listener, bind `127.0.0.1:0` and pass that instead: no race.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("no free port on 127.0.0.1")
        .port()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn database_url_replaces_only_the_database() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5433/postgres", "test_1"),
            "postgres://postgres@127.0.0.1:5433/test_1"
        );
        assert_eq!(
            database_url("postgres://u:p@db:5432/postgres?sslmode=disable", "test_1"),
            "postgres://u:p@db:5432/test_1?sslmode=disable"
        );
    }

    #[tokio::test]
    async fn each_test_database_is_new_empty_and_usable() {
        let first = TestDatabase::create().await;
        let second = TestDatabase::create().await;
        assert_ne!(first.name(), second.name());

        let current: String =
            sqlx::query_scalar("SELECT current_database()").fetch_one(&first.pool).await.expect("query");
        assert_eq!(current, first.name());
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
                .fetch_one(&second.pool)
                .await
                .expect("query");
        assert_eq!(tables, 0);
    }

    #[tokio::test]
    async fn wait_until_returns_once_the_condition_holds() {
        let calls = Arc::new(AtomicU32::new(0));
        wait_until(Duration::from_secs(5), || {
            let calls = Arc::clone(&calls);
            async move { calls.fetch_add(1, Ordering::SeqCst) >= 2 }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    #[should_panic(expected = "still false after")]
    async fn wait_until_panics_at_the_deadline() {
        wait_until(Duration::from_millis(100), || async { false }).await;
    }

    #[test]
    fn free_port_can_be_bound() {
        let port = free_port();
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
