//! The hot reads' own connections: reused after a finished statement, closed after one cut
//! off, and never more than their size.

use std::time::Duration;

use adapters_postgres::{CHECK_IDLE_AFTER, ReadConnections};
use futures::FutureExt as _;

use crate::support::TestApp;

async fn backend_pid(connections: &ReadConnections) -> i32 {
    let mut lease = connections.lease().await.expect("a connection");
    let pid: Result<(i32,), sqlx::Error> =
        sqlx::query_as("SELECT pg_backend_pid()").fetch_one(lease.connection()).await;
    lease.finish(pid).expect("the statement runs").0
}

/// Ends the session `pid` the way a restart of PostgreSQL does (the client unaware), and
/// returns once it is gone.
async fn end_session(app: &TestApp, pid: i32) {
    sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(app.pool()).await.unwrap();
    test_support::wait_until(Duration::from_secs(10), || async {
        let alive: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
            .bind(pid)
            .fetch_one(app.pool())
            .await
            .unwrap();
        !alive
    })
    .await;
}

/// [`end_session`], returning once the connection has also been idle for longer than the
/// check threshold. Counted from the session's end: the pool marks a connection idle only
/// after its release (a ping round trip after the statement, in a task of its own), so an
/// instant taken when the statement returned may come before the pool's mark.
async fn end_idle_session(app: &TestApp, pid: i32) {
    end_session(app, pid).await;
    let ended = std::time::Instant::now();
    test_support::wait_until(Duration::from_secs(10), || async { ended.elapsed() > CHECK_IDLE_AFTER }).await;
}

#[tokio::test]
async fn a_finished_read_gives_its_connection_back_for_the_next() {
    let app = TestApp::migrated().await;
    let connections = ReadConnections::new(app.pool(), 2);
    let first = backend_pid(&connections).await;
    assert_eq!(connections.usage(), (0, 1));
    assert_eq!(backend_pid(&connections).await, first, "the same session serves the next read");
}

#[tokio::test]
async fn an_error_postgres_reported_keeps_the_connection_and_a_cut_off_read_closes_it() {
    let app = TestApp::migrated().await;
    let connections = ReadConnections::new(app.pool(), 2);
    let first = backend_pid(&connections).await;

    let mut lease = connections.lease().await.unwrap();
    let failed: Result<(i32,), sqlx::Error> = sqlx::query_as("SELECT 1 / 0").fetch_one(lease.connection()).await;
    assert!(lease.finish(failed).is_err());
    assert_eq!(connections.usage(), (0, 1), "a division by zero leaves the session usable");
    assert_eq!(backend_pid(&connections).await, first);

    // A read whose future is dropped mid-statement (a client that went away).
    let mut lease = connections.lease().await.unwrap();
    let cut =
        tokio::time::timeout(Duration::from_millis(50), sqlx::query("SELECT pg_sleep(5)").execute(lease.connection()))
            .await;
    assert!(cut.is_err(), "the sleep outlasts the timeout");
    drop(lease);
    assert_eq!(connections.usage(), (0, 0), "a connection in an unknown state is not lent again");
    assert_ne!(backend_pid(&connections).await, first, "the next read opens a new session");
}

#[tokio::test]
async fn an_idle_connection_whose_server_side_ended_is_replaced_before_the_read() {
    let app = TestApp::migrated().await;
    let connections = ReadConnections::new(app.pool(), 2);
    let first = backend_pid(&connections).await;
    end_idle_session(&app, first).await;

    let next = backend_pid(&connections).await;

    assert_ne!(next, first, "the dead session was closed and a new one served the read");
    assert_eq!(connections.usage(), (0, 1));
}

#[tokio::test]
async fn the_pool_replaces_an_idle_connection_whose_server_side_ended_before_lending_it() {
    let app = TestApp::migrated().await;
    let pool = adapters_postgres::connect(&app.db.url, 1).await.unwrap();
    let pid = || async { sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(&pool).await };
    let first = pid().await.unwrap();
    end_idle_session(&app, first).await;

    let next = pid().await.expect("the statement meets a live connection");

    assert_ne!(next, first);
}

/// Idle checks so rare that a test meets a lost connection at its statement.
const NEVER_CHECKED: Duration = Duration::from_secs(3_600);

#[tokio::test]
async fn a_read_on_a_reused_connection_found_lost_runs_again_on_a_new_one() {
    let app = TestApp::migrated().await;
    let connections = ReadConnections::checking_idle_after(app.pool(), 1, NEVER_CHECKED);
    let read_pid = || {
        connections
            .read(|connection| sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(connection).boxed())
    };
    let first = read_pid().await.unwrap();
    end_session(&app, first).await;

    let next = read_pid().await.expect("the read is retried on a new connection, not failed");

    assert_ne!(next, first);
    assert_eq!(connections.usage(), (0, 1), "the lost connection was closed, the new one kept");
    assert_eq!(read_pid().await.unwrap(), next);
}

#[tokio::test]
async fn a_transaction_whose_pooled_connection_is_found_lost_begins_on_another() {
    let app = TestApp::migrated().await;
    let pool = adapters_postgres::connect_checking_idle_after(&app.db.url, 1, NEVER_CHECKED).await.unwrap();
    let first: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&pool).await.unwrap();
    end_session(&app, first).await;

    let mut tx = adapters_postgres::begin(&pool).await.expect("BEGIN is sent once more on a live connection");
    let next: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();

    assert_ne!(next, first);
}

#[tokio::test]
async fn no_more_connections_are_lent_than_the_size() {
    let app = TestApp::migrated().await;
    let connections = ReadConnections::new(app.pool(), 1);
    let held = connections.lease().await.unwrap();
    let lent_twice = tokio::select! {
        biased;
        _ = connections.lease() => true,
        () = std::future::ready(()) => false,
    };
    assert!(!lent_twice, "a second lease waits while the only connection is lent");
    held.release();
    let again = connections.lease().await.unwrap();
    again.release();
}
