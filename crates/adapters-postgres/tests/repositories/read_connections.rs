//! The hot reads' own connections: reused after a finished statement, closed after one cut
//! off, and never more than their size.

use std::time::Duration;

use adapters_postgres::ReadConnections;

use crate::support::TestApp;

async fn backend_pid(connections: &ReadConnections) -> i32 {
    let mut lease = connections.lease().await.expect("a connection");
    let pid: Result<(i32,), sqlx::Error> =
        sqlx::query_as("SELECT pg_backend_pid()").fetch_one(lease.connection()).await;
    lease.finish(pid).expect("the statement runs").0
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
