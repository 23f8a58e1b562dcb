//! Point reads of concurrent callers answered by one statement, and a gatherer that goes
//! away leaving nobody unanswered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adapters_postgres::{CoalescedReads, ReadConnections};
use futures::FutureExt as _;

use crate::support::TestApp;

/// Reads `key * 10` for every positive key, counting the statements it runs.
fn times_ten(reads: &ReadConnections, statements: Arc<AtomicUsize>) -> Arc<CoalescedReads<i64, i64>> {
    Arc::new(CoalescedReads::new(
        reads.clone(),
        Box::new(move |connection, keys: Vec<i64>| {
            statements.fetch_add(1, Ordering::SeqCst);
            sqlx::query_as("SELECT k, k * 10 FROM unnest($1::int8[]) AS k WHERE k > 0")
                .bind(keys)
                .fetch_all(connection)
                .boxed()
        }),
    ))
}

fn expected(key: i64) -> Option<i64> {
    (key > 0).then_some(key * 10)
}

/// A database, its read connections (`size` of them), and [`times_ten`] over them with its
/// statement count.
async fn rig(size: u32) -> (TestApp, ReadConnections, Arc<AtomicUsize>, Arc<CoalescedReads<i64, i64>>) {
    let app = TestApp::migrated().await;
    let reads = ReadConnections::new(app.pool(), size);
    let statements = Arc::new(AtomicUsize::new(0));
    let coalesced = times_ten(&reads, statements.clone());
    (app, reads, statements, coalesced)
}

/// `coalesced.get(key)` on a task of its own.
fn spawn_get<V: Clone + Send + 'static>(
    coalesced: &Arc<CoalescedReads<i64, V>>,
    key: i64,
) -> tokio::task::JoinHandle<Result<Option<V>, domain::RepositoryError>> {
    let coalesced = coalesced.clone();
    tokio::spawn(async move { coalesced.get(key).await })
}

#[tokio::test]
async fn readers_arriving_while_the_gatherer_waits_for_a_connection_share_its_statement() {
    let (_app, reads, statements, coalesced) = rig(1).await;
    let held = reads.lease().await.unwrap();

    let keys: Vec<i64> = vec![3, 1, -4, 1, 5, 9, -2, 6];
    let readers: Vec<_> = keys.iter().map(|&key| spawn_get(&coalesced, key)).collect();
    let joiners = keys.len() - 1;
    test_support::wait_until(Duration::from_secs(10), || async { coalesced.waiting() == joiners }).await;
    assert_eq!(statements.load(Ordering::SeqCst), 0, "nothing is read while the only connection is held");
    held.release();

    for (key, reader) in keys.iter().zip(readers) {
        assert_eq!(reader.await.unwrap().unwrap(), expected(*key), "key {key}");
    }
    assert_eq!(statements.load(Ordering::SeqCst), 1, "one statement read every key");
    assert_eq!(reads.usage(), (0, 1), "the connection went back for the next read");
}

#[tokio::test]
async fn a_reader_alone_reads_at_once_and_the_next_one_gathers_anew() {
    let (_app, _reads, statements, coalesced) = rig(2).await;

    assert_eq!(coalesced.get(7).await.unwrap(), Some(70));
    assert_eq!(coalesced.get(-7).await.unwrap(), None);
    assert_eq!(statements.load(Ordering::SeqCst), 2);
    assert_eq!(coalesced.waiting(), 0);
}

#[tokio::test]
async fn the_readers_of_a_gatherer_that_went_away_read_on_their_own() {
    let (_app, reads, statements, coalesced) = rig(1).await;
    let held = reads.lease().await.unwrap();

    // The test's runtime has one thread: the first reader spawned runs first and gathers.
    let gatherer = spawn_get(&coalesced, 1);
    tokio::task::yield_now().await;
    let keys = [2, -3];
    let joiners: Vec<_> = keys.iter().map(|&key| spawn_get(&coalesced, key)).collect();
    test_support::wait_until(Duration::from_secs(10), || async { coalesced.waiting() == 2 }).await;
    gatherer.abort();
    assert!(gatherer.await.unwrap_err().is_cancelled());
    assert_eq!(coalesced.waiting(), 0, "the gatherer's end let its readers go");
    held.release();

    for (key, joiner) in keys.iter().zip(joiners) {
        assert_eq!(joiner.await.unwrap().unwrap(), expected(*key), "key {key}");
    }
    assert_eq!(statements.load(Ordering::SeqCst), 2, "each reader read alone");
}

#[tokio::test]
async fn a_failed_statement_fails_every_reader_it_would_have_answered() {
    let app = TestApp::migrated().await;
    let reads = ReadConnections::new(app.pool(), 1);
    let coalesced: Arc<CoalescedReads<i64, i64>> = Arc::new(CoalescedReads::new(
        reads.clone(),
        Box::new(|connection, keys: Vec<i64>| {
            sqlx::query_as("SELECT k, 1 / (k - k) FROM unnest($1::int8[]) AS k")
                .bind(keys)
                .fetch_all(connection)
                .boxed()
        }),
    ));
    let held = reads.lease().await.unwrap();
    let readers: Vec<_> = (1..=3).map(|key| spawn_get(&coalesced, key)).collect();
    test_support::wait_until(Duration::from_secs(10), || async { coalesced.waiting() == 2 }).await;
    held.release();

    for reader in readers {
        let error = reader.await.unwrap().unwrap_err();
        assert!(format!("{error:#}").contains("division by zero"), "{error:#}");
    }
    assert_eq!(reads.usage(), (0, 1), "an error PostgreSQL reported keeps the connection");
}
