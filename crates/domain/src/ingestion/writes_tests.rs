use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use serde_json::{Map, json};

use super::*;
use crate::ingestion::{AiEventName, MockAiEventStore};
use crate::jobs::{JobId, JobKind};
use crate::unit_of_work::MockUnitOfWork;
use crate::unit_of_work::testing::MockTransaction;

const PROJECT: ProjectId = ProjectId(7);

fn generation() -> IncomingEvent {
    IncomingEvent {
        uuid: Uuid::now_v7(),
        event: AiEventName::parse("$ai_generation").unwrap(),
        distinct_id: "user".into(),
        timestamp: Utc::now(),
        properties: Map::new(),
    }
}

fn planned(event: &IncomingEvent) -> PlannedJob {
    PlannedJob {
        generation: event.uuid,
        job: NewJob {
            id: JobId(Uuid::now_v7()),
            project: PROJECT,
            kind: JobKind::Judge,
            unique_key: Some(event.uuid.to_string()),
            payload: json!({}),
            attachment: None,
            max_attempts: 3,
        },
        caps: Vec::new(),
    }
}

#[tokio::test]
async fn only_the_generations_stored_now_queue_their_jobs() {
    let events = vec![generation(), generation()];
    let jobs: Vec<PlannedJob> = events.iter().map(planned).collect();
    let new = events[1].uuid;
    let expected = jobs[1].job.id;
    let mut tx = MockTransaction::default();
    tx.events.expect_insert_fresh().return_once(move |_, _| Ok(vec![new]));
    tx.jobs
        .expect_insert_fresh()
        .withf(move |queued| queued.len() == 1 && queued[0].id == expected)
        .times(1)
        .returning(|queued| Ok(queued.len() as u64));
    let (unit_of_work, commits) = crate::unit_of_work::testing::unit_of_work(tx);
    let writes = BatchTransactions::new(Arc::new(unit_of_work), Arc::new(MockAiEventStore::new()));

    let batch = writes.store_batch(PROJECT, &events, &jobs, &[]).await.unwrap();

    assert_eq!(batch, StoredBatch { stored: 1, jobs_queued: 1, skipped_by_cap: 0 });
    assert_eq!(commits.count(), 1);
}

#[tokio::test]
async fn a_transaction_the_adapter_repaired_runs_once_more() {
    let events = vec![generation()];
    let jobs: Vec<PlannedJob> = events.iter().map(planned).collect();
    let stored = events[0].uuid;
    let begun = Arc::new(AtomicUsize::new(0));
    let counter = begun.clone();
    let mut unit_of_work = MockUnitOfWork::new();
    unit_of_work.expect_begin().times(2).returning(move || {
        let attempt = counter.fetch_add(1, Ordering::SeqCst);
        let mut tx = MockTransaction::default();
        tx.events.expect_insert_fresh().returning(move |_, _| match attempt {
            0 => Err(RepositoryError::retryable(anyhow::anyhow!("no partition of relation"))),
            _ => Ok(vec![stored]),
        });
        tx.jobs.expect_insert_fresh().returning(|queued| Ok(queued.len() as u64));
        Ok(Box::new(tx))
    });
    let writes = BatchTransactions::new(Arc::new(unit_of_work), Arc::new(MockAiEventStore::new()));

    let batch = writes.store_batch(PROJECT, &events, &jobs, &[]).await.unwrap();

    assert_eq!(batch.jobs_queued, 1);
    assert_eq!(begun.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_batch_without_jobs_is_one_statement_of_the_event_store() {
    let mut events = MockAiEventStore::new();
    events
        .expect_store_events()
        .times(1)
        .returning(|_, batch| Ok(StoredBatch { stored: batch.len() as u64, ..Default::default() }));
    let mut unit_of_work = MockUnitOfWork::new();
    unit_of_work.expect_begin().never();
    let writes = BatchTransactions::new(Arc::new(unit_of_work), Arc::new(events));

    let batch = writes.store_batch(PROJECT, &[generation()], &[], &[]).await.unwrap();

    assert_eq!(batch.stored, 1);
}
