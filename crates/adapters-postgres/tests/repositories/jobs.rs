//! `PgJobQueue`: exclusive claims under racing workers, leases that belong to their
//! holder, lapsed leases taken over, retries with a delay; and judge jobs queued with
//! their batch in one transaction, hourly caps and trial credits exact under concurrency.

use std::collections::HashSet;
use std::time::Duration;

use adapters_postgres::{PgAiEventStore, PgJobQueue, PgJudgeStore, PgUnitOfWork};
use chrono::Utc;
use domain::evaluation::MaxRunsPerHour;
use std::sync::Arc;

use domain::code::CodeReads;
use domain::ingestion::{AiEventName, BatchTransactions, BatchWrites, IncomingEvent};
use domain::jobs::{JobId, JobKind, JobQueue, NewJob};
use domain::judge::{HourlyCap, JudgePayload, JudgeStore, PlannedJob, attached_generations, hour_of};
use domain::llm::TrialCredits;
use domain::{EvaluationId, ProjectId};
use serde_json::{Map, json};
use uuid::Uuid;

use crate::support::TestApp;

const LEASE: Duration = Duration::from_secs(30);

fn job(project: ProjectId, key: Option<&str>) -> NewJob {
    NewJob::new(project, JobKind::Judge, key.map(str::to_owned), json!({"n": key}), 3)
}

fn generation() -> IncomingEvent {
    IncomingEvent {
        uuid: Uuid::now_v7(),
        event: AiEventName::parse("$ai_generation").unwrap(),
        distinct_id: "user-1".into(),
        timestamp: Utc::now(),
        properties: Map::new(),
    }
}

/// One uncapped judge job per event, keyed by its uuid.
fn planned_jobs(project: ProjectId, events: &[IncomingEvent]) -> Vec<PlannedJob> {
    events
        .iter()
        .map(|e| PlannedJob { generation: e.uuid, job: job(project, Some(&e.uuid.to_string())), caps: Vec::new() })
        .collect()
}

/// Batches with jobs stored as the service stores them: the domain's transaction over
/// this adapter's statements.
fn batches(store: &PgAiEventStore) -> BatchTransactions {
    BatchTransactions::new(Arc::new(PgUnitOfWork::new(store)), Arc::new(store.clone()))
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(app.pool()).await.unwrap()
}

#[tokio::test]
async fn a_unique_key_queues_one_job_ever() {
    let app = TestApp::migrated().await;
    let queue = PgJobQueue::new(app.pool().clone());
    let project = app.project().await.id;

    assert_eq!(queue.enqueue(&[job(project, Some("e:g")), job(project, Some("e:g"))]).await.unwrap(), 1);
    assert_eq!(queue.enqueue(&[job(project, Some("e:g"))]).await.unwrap(), 0);
    assert_eq!(queue.enqueue(&[job(project, None), job(project, None)]).await.unwrap(), 2, "keyless jobs always queue");
    assert_eq!(count(&app, "SELECT count(*) FROM jobs").await, 3);
}

#[tokio::test]
async fn the_migration_derives_a_keyed_jobs_id_as_the_service_does() {
    // jobs queued before ids were derived from keys were given their derived ids by the
    // migration, so a key queued again after an upgrade still finds its job
    let app = TestApp::migrated().await;
    let key = "3f1c:0:ops@example.com ü";
    let derived: Uuid = sqlx::query_scalar("SELECT job_id_for_key('report_delivery', $1)")
        .bind(key)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(derived, JobId::for_key(JobKind::ReportDelivery, key).0);
}

#[tokio::test]
async fn racing_workers_each_claim_different_jobs_and_every_job_once() {
    let app = TestApp::migrated().await;
    let project = app.project().await.id;
    let jobs: Vec<NewJob> = (0..200).map(|n| job(project, Some(&format!("job-{n}")))).collect();
    PgJobQueue::new(app.pool().clone()).enqueue(&jobs).await.unwrap();

    let workers = (0..8).map(|_| {
        let queue = PgJobQueue::new(app.pool().clone());
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = queue.claim(&[(JobKind::Judge, 7)], LEASE).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                for job in claimed {
                    assert!(queue.complete(&job.lease).await.unwrap());
                    mine.push(job.lease.job);
                }
            }
        })
    });
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let distinct: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "every job claimed exactly once");
    assert_eq!(distinct.len(), 200);
    assert_eq!(count(&app, "SELECT count(*) FROM jobs WHERE state = 'done'").await, 200);
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_the_old_holder_can_no_longer_touch_the_job() {
    let app = TestApp::migrated().await;
    let queue = PgJobQueue::new(app.pool().clone());
    let project = app.project().await.id;
    queue.enqueue(&[job(project, Some("slow"))]).await.unwrap();

    let first = queue.claim(&[(JobKind::Judge, 10)], LEASE).await.unwrap().pop().unwrap();
    assert!(queue.claim(&[(JobKind::Judge, 10)], LEASE).await.unwrap().is_empty(), "a live lease keeps the job");
    sqlx::query("UPDATE jobs SET run_after = now() - interval '1 second', locked_until = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let second =
        queue.claim(&[(JobKind::Judge, 10)], LEASE).await.unwrap().pop().expect("the lapsed lease is taken over");
    assert_eq!(second.lease.job, first.lease.job);
    assert_eq!(second.attempts, 2);
    assert_ne!(second.lease.token, first.lease.token);

    assert!(!queue.renew(&first.lease, LEASE).await.unwrap(), "the old holder cannot renew");
    assert!(!queue.complete(&first.lease).await.unwrap(), "nor finish");
    assert!(!queue.fail(&first.lease, "late").await.unwrap(), "nor fail");
    assert!(queue.renew(&second.lease, LEASE).await.unwrap());
    assert!(queue.complete(&second.lease).await.unwrap());
    assert_eq!(count(&app, "SELECT count(*) FROM jobs WHERE state = 'done' AND attempts = 2").await, 1);
}

#[tokio::test]
async fn a_retried_job_waits_for_its_delay_and_keeps_its_error() {
    let app = TestApp::migrated().await;
    let queue = PgJobQueue::new(app.pool().clone());
    let project = app.project().await.id;
    queue.enqueue(&[job(project, None)]).await.unwrap();

    let claimed = queue.claim(&[(JobKind::Judge, 1)], LEASE).await.unwrap().pop().unwrap();
    assert!(queue.retry(&claimed.lease, Duration::from_secs(3600), "429 from the provider").await.unwrap());
    assert!(queue.claim(&[(JobKind::Judge, 1)], LEASE).await.unwrap().is_empty(), "not due before its delay");
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM jobs").fetch_one(app.pool()).await.unwrap();
    assert_eq!(error.as_deref(), Some("429 from the provider"));

    sqlx::query("UPDATE jobs SET run_after = now()").execute(app.pool()).await.unwrap();
    let again = queue.claim(&[(JobKind::Judge, 1)], LEASE).await.unwrap().pop().expect("due again");
    assert!(queue.fail(&again.lease, "gave up").await.unwrap());
    assert_eq!(count(&app, "SELECT count(*) FROM jobs WHERE state = 'failed' AND finished_at IS NOT NULL").await, 1);
}

#[tokio::test]
async fn judge_jobs_are_queued_with_their_batch_only_for_new_generations() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let events = vec![generation(), generation()];
    let planned = planned_jobs(project, &events);

    let first = batches(&store).store_batch(project, &events, &planned, &[]).await.unwrap();
    assert_eq!((first.stored, first.jobs_queued), (2, 2));
    let again = batches(&store).store_batch(project, &events, &planned, &[]).await.unwrap();
    assert_eq!((again.stored, again.jobs_queued), (0, 0), "a re-sent batch queues nothing");
    assert_eq!(count(&app, "SELECT count(*) FROM jobs").await, 2);
}

#[tokio::test]
async fn a_new_generation_whose_job_exists_is_stored_and_the_job_kept() {
    // Jobs of new generations are inserted as new (no ON CONFLICT); one that exists after
    // all (its generation's claim gone with its partition) costs the batch a second
    // transaction, which skips it.
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let events = vec![generation(), generation()];
    let planned = planned_jobs(project, &events);
    PgJobQueue::new(app.pool().clone()).enqueue(&[planned[1].job.clone()]).await.unwrap();
    sqlx::query("UPDATE jobs SET state = 'done', finished_at = now()").execute(app.pool()).await.unwrap();

    let batch = batches(&store).store_batch(project, &events, &planned, &[]).await.unwrap();

    assert_eq!((batch.stored, batch.jobs_queued), (2, 1));
    assert_eq!(count(&app, "SELECT count(*) FROM ai_events").await, 2);
    assert_eq!(count(&app, "SELECT count(*) FROM jobs WHERE state = 'pending'").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM jobs WHERE state = 'done'").await, 1, "the old job is kept as it was");
}

#[tokio::test]
async fn replicas_storing_the_same_batch_at_once_store_it_and_its_jobs_once() {
    // Each replica expects new rows until it meets one that exists: racing plain inserts
    // wait for each other, and the loser's retry skips what the winner stored.
    let app = TestApp::migrated().await;
    let project = app.project().await.id;
    for _ in 0..10 {
        let events: Vec<IncomingEvent> = (0..20).map(|_| generation()).collect();
        let planned = planned_jobs(project, &events);
        let replicas = (0..3).map(|_| {
            let (store, events, planned) = (PgAiEventStore::new(app.pool().clone()), events.clone(), planned.clone());
            tokio::spawn(async move { batches(&store).store_batch(project, &events, &planned, &[]).await.unwrap() })
        });
        let mut stored = 0;
        let mut queued = 0;
        for replica in replicas {
            let batch = replica.await.unwrap();
            stored += batch.stored;
            queued += batch.jobs_queued;
        }
        assert_eq!((stored, queued), (20, 20), "each event and each job stored by exactly one replica");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM ai_events").await, 200);
    assert_eq!(count(&app, "SELECT count(*) FROM jobs").await, 200);
}

#[tokio::test]
async fn a_batch_with_jobs_meeting_a_dropped_partition_is_stored_by_a_second_transaction() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let first = generation();
    batches(&store).store_batch(project, std::slice::from_ref(&first), &[], &[]).await.unwrap();
    let month = first.timestamp.format("ai_events_p%Y_%m").to_string();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {month}"))).execute(app.pool()).await.unwrap();

    let events = vec![generation()];
    let planned = vec![PlannedJob { generation: events[0].uuid, job: job(project, Some("after")), caps: Vec::new() }];
    let batch = batches(&store).store_batch(project, &events, &planned, &[]).await.unwrap();

    assert_eq!((batch.stored, batch.jobs_queued), (1, 1));
    assert_eq!(count(&app, "SELECT count(*) FROM ai_events").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM jobs").await, 1);
}

#[tokio::test]
async fn a_failed_batch_stores_neither_events_nor_jobs() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let events = vec![generation(), generation()];
    let mut broken = job(project, Some("broken"));
    broken.max_attempts = 0; // violates the table's CHECK: the job insert fails
    let planned = vec![
        PlannedJob { generation: events[0].uuid, job: job(project, Some("fine")), caps: Vec::new() },
        PlannedJob { generation: events[1].uuid, job: broken, caps: Vec::new() },
    ];

    assert!(batches(&store).store_batch(project, &events, &planned, &[]).await.is_err());
    assert_eq!(count(&app, "SELECT count(*) FROM ai_events").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM ai_event_ids").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM jobs").await, 0);
}

#[tokio::test]
async fn the_hourly_cap_grants_exactly_its_size_under_concurrent_batches() {
    let app = TestApp::migrated().await;
    let project = app.project().await.id;
    let evaluation = EvaluationId(Uuid::now_v7());
    let cap = HourlyCap { evaluation, max: MaxRunsPerHour::parse(7).unwrap(), hour: hour_of(Utc::now()) };

    let batches = (0..20).map(|_| {
        let store = PgAiEventStore::new(app.pool().clone());
        tokio::spawn(async move {
            let events = vec![generation(), generation()];
            let planned: Vec<PlannedJob> = events
                .iter()
                .map(|e| PlannedJob {
                    generation: e.uuid,
                    job: job(project, Some(&e.uuid.to_string())),
                    caps: vec![cap],
                })
                .collect();
            batches(&store).store_batch(project, &events, &planned, &[]).await.unwrap()
        })
    });
    let (mut queued, mut skipped) = (0, 0);
    for batch in batches {
        let outcome = batch.await.unwrap();
        queued += outcome.jobs_queued;
        skipped += outcome.skipped_by_cap;
    }
    assert_eq!((queued, skipped), (7, 33));
    assert_eq!(count(&app, "SELECT count(*) FROM jobs").await, 7);
    let counters: (i32, i32) =
        sqlx::query_as("SELECT queued, skipped FROM evaluation_hourly_runs").fetch_one(app.pool()).await.unwrap();
    assert_eq!(counters, (7, 33));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trial_credits_are_never_taken_past_the_limit_under_concurrency() {
    let app = TestApp::migrated().await;
    let project = app.project().await.id;
    sqlx::query("INSERT INTO evaluation_configs (project_id, trial_eval_limit) VALUES ($1, 5)")
        .bind(project.0)
        .execute(app.pool())
        .await
        .unwrap();
    // All reservations start together (a barrier), on threads of their own.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(30));
    let reservations: Vec<_> = (0..30)
        .map(|_| {
            let store = PgJudgeStore::new(app.pool().clone());
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store.reserve(project).await.unwrap()
            })
        })
        .collect();
    let mut granted = 0;
    for reservation in reservations {
        granted += u32::from(reservation.await.unwrap());
    }
    assert_eq!(granted, 5);
    let store = PgJudgeStore::new(app.pool().clone());
    store.release(project).await.unwrap();
    assert!(store.reserve(project).await.unwrap(), "a credit given back can be taken again");
    assert!(!store.reserve(project).await.unwrap());
    let used: i32 = sqlx::query_scalar("SELECT trial_evals_used FROM evaluation_configs WHERE project_id = $1")
        .bind(project.0)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(used, 5);

    let fresh = app.project().await.id;
    assert!(store.reserve(fresh).await.unwrap(), "a project without settings has the default limit");
}

#[tokio::test]
async fn a_worker_claims_only_the_kinds_it_runs() {
    let app = TestApp::migrated().await;
    let queue = PgJobQueue::new(app.pool().clone());
    let project = app.project().await.id;
    let mut sweep = job(project, Some("sweep"));
    sweep.kind = JobKind::Housekeeping;
    queue.enqueue(&[job(project, Some("judge")), sweep]).await.unwrap();

    let judged = queue.claim(&[(JobKind::Judge, 10)], LEASE).await.unwrap();
    assert_eq!(judged.iter().map(|j| j.kind).collect::<Vec<_>>(), vec![Some(JobKind::Judge)]);
    let swept = queue.claim(&[(JobKind::Housekeeping, 10), (JobKind::Judge, 10)], LEASE).await.unwrap();
    assert_eq!(swept.iter().map(|j| j.kind).collect::<Vec<_>>(), vec![Some(JobKind::Housekeeping)]);
}

#[tokio::test]
async fn each_kind_is_claimed_up_to_its_own_room() {
    let app = TestApp::migrated().await;
    let queue = PgJobQueue::new(app.pool().clone());
    let project = app.project().await.id;
    let judge_jobs = (0..5).map(|n| job(project, Some(&format!("judge-{n}"))));
    let deliveries =
        (0..3).map(|n| NewJob::new(project, JobKind::ReportDelivery, Some(format!("d-{n}")), json!({}), 4));
    queue.enqueue(&judge_jobs.chain(deliveries).collect::<Vec<_>>()).await.unwrap();

    let claimed = queue.claim(&[(JobKind::Judge, 2), (JobKind::ReportDelivery, 5)], LEASE).await.unwrap();
    let of = |jobs: &[domain::jobs::ClaimedJob], kind| jobs.iter().filter(|j| j.kind == Some(kind)).count();
    assert_eq!((of(&claimed, JobKind::Judge), of(&claimed, JobKind::ReportDelivery)), (2, 3));
    let rest = queue.claim(&[(JobKind::Judge, 10), (JobKind::ReportDelivery, 10)], LEASE).await.unwrap();
    assert_eq!((of(&rest, JobKind::Judge), of(&rest, JobKind::ReportDelivery)), (3, 0));
}

#[tokio::test]
async fn a_code_job_carries_its_generations_as_stored_and_drops_them_when_it_ends() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let queue = PgJobQueue::new(app.pool().clone());
    let project = app.project().await.id;
    // What a read gives back differently from what was sent, were it not as stored:
    // nanoseconds, numbers PostgreSQL writes its own way, non-ASCII text, a long answer.
    let properties = json!({
        "$ai_output_choices": [{"role": "assistant", "content": "Ships in 3–5 days 🚚. ".repeat(120)}],
        "$ai_total_cost_usd": 0.1, "tokens": 1e3, "big": 12345678901234567890u64, "tiny": 1e-7, "nested": {"b": [1, null, true], "a": "x"}
    });
    let events: Vec<IncomingEvent> = (0..3)
        .map(|n| IncomingEvent {
            timestamp: Utc::now() + chrono::Duration::nanoseconds(n * 1_001),
            properties: properties.as_object().unwrap().clone(),
            ..generation()
        })
        .collect();
    let planned: Vec<PlannedJob> = events
        .iter()
        .map(|e| {
            let payload = JudgePayload {
                evaluations: vec![EvaluationId(Uuid::from_u128(1))],
                generation: e.uuid,
                generation_timestamp: e.timestamp,
                manual: false,
            };
            let job = NewJob::new(project, JobKind::JudgeCode, payload.unique_key(project), json!(payload), 3);
            PlannedJob { generation: e.uuid, job, caps: Vec::new() }
        })
        .collect();
    batches(&store).store_batch(project, &events, &planned, &[]).await.unwrap();

    let claimed = queue.claim(&[(JobKind::JudgeCode, 10)], LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1, "one job for the batch");
    let carried: Vec<_> = attached_generations(
        claimed[0].attachment.as_deref().expect("the job carries its generations"),
        &CodeReads::everything(),
    )
    .unwrap()
    .into_iter()
    .map(|carried| carried.generation)
    .collect();
    let wanted: Vec<_> = events.iter().map(|e| (e.uuid, e.timestamp)).collect();
    let mut read = PgJudgeStore::new(app.pool().clone()).events(project, &wanted).await.unwrap();
    read.sort_by_key(|g| events.iter().position(|e| e.uuid == g.uuid));
    assert_eq!(carried, read, "what the job carries is what a read gives");

    assert!(queue.retry(&claimed[0].lease, Duration::ZERO, "again").await.unwrap());
    let again = queue.claim(&[(JobKind::JudgeCode, 10)], LEASE).await.unwrap();
    assert_eq!(again[0].attachment, claimed[0].attachment, "a retried job carries them still");
    assert!(queue.complete(&again[0].lease).await.unwrap());
    assert_eq!(count(&app, "SELECT count(*) FROM jobs WHERE attachment IS NOT NULL").await, 0, "dropped at its end");
}
