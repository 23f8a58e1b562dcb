//! Trace and session judge jobs (debounced on the job table), the events a target's judge
//! reads, and the candidates a backfill pages through.

use std::time::Duration;

use adapters_postgres::{PgAiEventStore, PgBackfillStore, PgJobQueue, PgJudgeStore, PgUnitOfWork};
use chrono::{DateTime, Utc};
use domain::backfill::{
    BackfillRequest, BackfillStatus, BackfillStore, BackfillTargets, DispatchedPage, NewBackfill, TargetOutcome,
};
use domain::evaluation::TargetKind;
use domain::ingestion::{AiEventName, AiEventStore, IncomingEvent};
use domain::jobs::{Debounce, JobKind, JobQueue, NewJob};
use domain::judge::JudgeStore;
use domain::unit_of_work::UnitOfWork;
use domain::{BackfillId, ProjectId};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;

fn debounced(project: ProjectId, due: DateTime<Utc>, latest: DateTime<Utc>, create: bool) -> Debounce {
    let job = NewJob::new(project, JobKind::JudgeTarget, Some("target:t1".into()), json!({}), 3);
    Debounce { job, due, latest, create }
}

async fn debounce(store: &PgAiEventStore, jobs: &[Debounce]) -> u64 {
    let unit_of_work = PgUnitOfWork::new(store);
    let mut tx = unit_of_work.begin().await.unwrap();
    let created = tx.jobs().debounce(jobs).await.unwrap();
    tx.commit().await.unwrap();
    created
}

/// (state, seconds until due) of the one target job.
async fn the_job(app: &TestApp) -> (String, i64) {
    sqlx::query_as("SELECT state, round(extract(epoch FROM run_after - now()))::bigint FROM jobs")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

fn seconds(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

#[tokio::test]
async fn a_debounced_job_moves_forward_never_back_and_never_past_its_latest() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let now = Utc::now();

    assert_eq!(debounce(&store, &[debounced(project, now + seconds(60), now + seconds(300), true)]).await, 1);
    assert_eq!(the_job(&app).await, ("pending".into(), 60));
    assert_eq!(debounce(&store, &[debounced(project, now + seconds(120), now + seconds(900), true)]).await, 0);
    assert_eq!(the_job(&app).await.1, 120, "moved forward; its latest stays the first one's");
    debounce(&store, &[debounced(project, now + seconds(30), now + seconds(30), false)]).await;
    assert_eq!(the_job(&app).await.1, 120, "never back");
    debounce(&store, &[debounced(project, now + seconds(500), now + seconds(500), false)]).await;
    assert_eq!(the_job(&app).await.1, 300, "never past the latest it was queued with");

    // Once claimed (and once done), events no longer touch it.
    sqlx::query("UPDATE jobs SET run_after = now()").execute(app.pool()).await.unwrap();
    let queue = PgJobQueue::new(app.pool().clone());
    let claimed = queue.claim(&[(JobKind::JudgeTarget, 1)], Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    debounce(&store, &[debounced(project, now + seconds(600), now + seconds(600), true)]).await;
    assert_eq!(the_job(&app).await, ("running".into(), 30));
    queue.complete(&claimed[0].lease).await.unwrap();
    assert_eq!(debounce(&store, &[debounced(project, now + seconds(60), now + seconds(60), true)]).await, 0);
    assert_eq!(the_job(&app).await.0, "done", "a late event does not queue the target again");
}

#[tokio::test]
async fn concurrent_batches_of_one_trace_queue_one_job_without_deadlock() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let now = Utc::now();
    let batches = (0..16).map(|n| {
        let store = store.clone();
        async move {
            // Each batch touches two targets, in opposite orders.
            let mut jobs: Vec<Debounce> = ["target:a", "target:b"]
                .iter()
                .map(|key| Debounce {
                    job: NewJob::new(project, JobKind::JudgeTarget, Some((*key).into()), json!({}), 3),
                    due: now + seconds(60 + n),
                    latest: now + seconds(300),
                    create: true,
                })
                .collect();
            if n % 2 == 1 {
                jobs.reverse();
            }
            debounce(&store, &jobs).await
        }
    });
    let created: u64 = futures::future::join_all(batches).await.into_iter().sum();
    assert_eq!(created, 2);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(app.pool()).await.unwrap();
    assert_eq!(jobs, 2);
}

fn event(name: &str, at: DateTime<Utc>, properties: Value) -> IncomingEvent {
    IncomingEvent {
        uuid: Uuid::now_v7(),
        event: AiEventName::parse(name).unwrap(),
        distinct_id: "user".into(),
        timestamp: at,
        properties: properties.as_object().unwrap().clone(),
    }
}

#[tokio::test]
async fn a_targets_events_and_a_backfills_candidates_are_read_in_order() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let at = Utc::now() - seconds(3_600);
    let events = vec![
        event("$ai_span", at + seconds(2), json!({"$ai_trace_id": "b", "$ai_session_id": "s1"})),
        event("$ai_generation", at + seconds(1), json!({"$ai_trace_id": "b", "$ai_input": "big", "env": "prod"})),
        event("$ai_generation", at, json!({"$ai_trace_id": "a", "$ai_session_id": "s1"})),
        event("$ai_generation", at, json!({"$ai_trace_id": "C"})),
        event("$ai_evaluation", at, json!({"$ai_trace_id": "b"})),
        event("$ai_generation", at - seconds(7_200), json!({"$ai_trace_id": "old"})),
    ];
    store.store_events(project, &events).await.unwrap();

    let judge = PgJudgeStore::new(app.pool().clone());
    let trace = judge.target_events(project, TargetKind::Trace, "b", 100).await.unwrap();
    let names: Vec<&str> = trace.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["$ai_generation", "$ai_span"], "oldest first, results aside");
    let session = judge.target_events(project, TargetKind::Session, "s1", 100).await.unwrap();
    assert_eq!(session.len(), 2);

    let backfills = PgBackfillStore::new(app.pool().clone());
    let window = (at - seconds(60), Utc::now());
    let page = backfills.candidates(project, TargetKind::Trace, window, None, 2).await.unwrap();
    let ids: Vec<&str> = page.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["C", "a"], "bytewise order, the window only");
    let rest = backfills.candidates(project, TargetKind::Trace, window, Some("a".into()), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].generations, vec![json!({"$ai_trace_id": "b", "env": "prod"}).as_object().unwrap().clone()]);
    let generations = backfills.candidates(project, TargetKind::Generation, window, None, 10).await.unwrap();
    assert_eq!(generations.len(), 3);
    let sessions = backfills.candidates(project, TargetKind::Session, window, None, 10).await.unwrap();
    assert_eq!(sessions.len(), 1);
}

fn new_backfill(tenant: &crate::support::Tenant, evaluation: domain::EvaluationId) -> NewBackfill {
    NewBackfill {
        id: BackfillId::generate(),
        project: tenant.id(),
        evaluation,
        request: BackfillRequest {
            window_start: Utc::now() - seconds(3_600),
            window_end: Utc::now(),
            conditions: None,
            rerun_existing: false,
        },
        total_count: 2,
        created_by: tenant.admin.id,
    }
}

#[tokio::test]
async fn an_evaluation_has_one_active_backfill_whose_counts_and_jobs_are_kept_in_transactions() {
    let (app, tenant) = TestApp::with_tenant().await;
    let evaluation = crate::evaluations::new_evaluation(&tenant);
    crate::evaluations::evaluations(&app).insert(&evaluation).await.unwrap();
    let store = PgAiEventStore::new(app.pool().clone());
    let unit_of_work = PgUnitOfWork::new(&store);
    let (first, second) = (new_backfill(&tenant, evaluation.id), new_backfill(&tenant, evaluation.id));

    let mut tx = unit_of_work.begin().await.unwrap();
    assert!(tx.backfills().insert(&first).await.unwrap());
    assert!(!tx.backfills().insert(&second).await.unwrap(), "one queued or running backfill per evaluation");
    let page = DispatchedPage {
        status: BackfillStatus::Running,
        cursor: Some("t1".into()),
        dispatched_all: true,
        dispatched: 2,
        skipped: 0,
    };
    tx.backfills().add_page(tenant.id(), first.id, &page).await.unwrap();
    let judgement = |target: &str| {
        let key = format!("backfill:{}:trace:{target}", first.id);
        NewJob::new(tenant.id(), JobKind::BackfillJudge, Some(key), json!({"backfill": first.id.to_string()}), 3)
    };
    tx.jobs().insert(&[judgement("t1"), judgement("t2")]).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = unit_of_work.begin().await.unwrap();
    let counted = tx.backfills().count_outcome(tenant.id(), first.id, TargetOutcome::Completed).await.unwrap();
    let counted = counted.unwrap();
    assert_eq!((counted.completed_count, counted.dispatched_count, counted.is_done()), (1, 2, false));
    assert_eq!(tx.backfills().drop_pending_judgements(tenant.id(), first.id).await.unwrap(), 2);
    tx.backfills().finish(tenant.id(), first.id, BackfillStatus::Cancelled, None).await.unwrap();
    assert!(tx.backfills().insert(&second).await.unwrap(), "a cancelled one no longer counts");
    tx.commit().await.unwrap();

    let backfills = PgBackfillStore::new(app.pool().clone());
    let listed = backfills.list(tenant.id(), evaluation.id, domain::PageRequest::new(10, 0)).await.unwrap();
    assert_eq!(listed.total, 2);
    assert_eq!(listed.items[0].id, second.id, "newest first");
    let read = backfills.get(tenant.id(), evaluation.id, first.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.cursor.as_deref(), read.created_by.map(|u| u.id)),
        (BackfillStatus::Cancelled, Some("t1"), Some(tenant.admin.id))
    );
    let other = app.project().await.id;
    assert!(backfills.get(other, evaluation.id, first.id).await.unwrap().is_none(), "another project sees nothing");
}

#[tokio::test]
async fn rate_limited_since_keeps_the_first_mark_until_a_verdict_or_a_stop() {
    use chrono::TimeZone;
    use domain::evaluation::{EvaluationRepository, EvaluationState, JudgeStop, StatusReason};

    let (app, tenant) = TestApp::with_tenant().await;
    let evaluation = domain::evaluation::NewEvaluation {
        state: EvaluationState::Active,
        ..crate::evaluations::new_evaluation(&tenant)
    };
    crate::evaluations::evaluations(&app).insert(&evaluation).await.unwrap();
    let repository = adapters_postgres::PgEvaluationRepository::new(app.pool().clone());
    let (project, id) = (tenant.id(), evaluation.id);
    let (first, later) = (Utc.timestamp_opt(1_780_000_000, 0).unwrap(), Utc.timestamp_opt(1_780_000_600, 0).unwrap());

    assert_eq!(repository.rate_limited_since(project, id, Some(first)).await.unwrap(), Some(first));
    assert_eq!(repository.rate_limited_since(project, id, Some(later)).await.unwrap(), Some(first), "the first stays");
    assert_eq!(repository.find(project, id).await.unwrap().unwrap().rate_limited_since, Some(first));
    assert_eq!(repository.rate_limited_since(project, id, None).await.unwrap(), None, "a verdict forgets it");
    assert_eq!(repository.rate_limited_since(project, id, Some(later)).await.unwrap(), Some(later));

    let detail = Some("an hour of 429s".to_owned());
    repository.stop_judging(project, JudgeStop::One(id), StatusReason::RateLimited, detail.clone()).await.unwrap();
    let stopped = repository.find(project, id).await.unwrap().unwrap();
    assert_eq!(stopped.state, EvaluationState::Error(StatusReason::RateLimited));
    assert_eq!((stopped.status_reason_detail, stopped.rate_limited_since), (detail, None));
    let other = app.project().await.id;
    assert_eq!(repository.rate_limited_since(other, id, Some(later)).await.unwrap(), None, "another project's");
}
