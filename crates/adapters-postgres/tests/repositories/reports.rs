//! `PgReportStore` and `PgReportEvents`: reports round-trip with sealed secrets, project
//! isolation, the period metrics against hand-computed numbers, racing workers storing
//! one run per key, the scheduler's candidates, runs pagination, delivery status.

use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::{PgAiEventStore, PgJobQueue, PgPool, PgReportEvents, PgReportStore, PgUnitOfWork};
use chrono::{DateTime, TimeZone, Utc};
use domain::PageRequest;
use domain::crypto::SealedSecret;
use domain::ingestion::{AiEventName, AiEventStore, IncomingEvent};
use domain::jobs::{JobEnd, JobKind, JobQueue, NewJob};
use domain::reports::delivery::{DeliveryRecord, DeliveryState, EndedDelivery};
use domain::reports::render::chart::Bucket;
use domain::reports::{
    DeliveryStatus, DeliveryTarget, EvaluationPeriod, Frequency, NewDelivery, NewResults, NewRun, Period, Report,
    ReportContent, ReportEvents, ReportMetrics, ReportRepository, ReportRun, ReportRunStore, ReportScheduler,
    ResultCounts, RunTransactions, RunWrites, StoredSecret,
};
use domain::{EvaluationId, ProjectId, ReportId, ReportRunId};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::evaluations::{insert, new_evaluation};
use crate::support::{Tenant, TestApp};

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
}

fn report(tenant: &Tenant, evaluation: EvaluationId) -> Report {
    Report {
        id: ReportId::generate(),
        project: tenant.id(),
        evaluation,
        frequency: Frequency::Scheduled,
        alert_condition: None,
        rrule: "FREQ=DAILY".into(),
        starts_at: Some(at(1, 0, 0)),
        timezone_name: "Europe/Paris".into(),
        next_delivery_date: Some(at(2, 0, 0)),
        delivery_targets: vec![
            DeliveryTarget::Email { addresses: vec!["a@example.com".into(), "b@example.com".into()] },
            DeliveryTarget::Webhook {
                url: "https://hooks.example.com/x".into(),
                secret: StoredSecret { sealed: SealedSecret(vec![1, 2, 3, 250]), masked: "whse...abcd".into() },
            },
        ],
        max_sample_size: 50,
        enabled: true,
        deleted: false,
        last_delivered_at: None,
        report_prompt_guidance: "Be brief.".into(),
        trigger_threshold: 100,
        cooldown_minutes: 60,
        daily_run_cap: 10,
        created_by: None,
        created_at: at(1, 0, 0),
    }
}

async fn setup(app: &TestApp) -> (Tenant, EvaluationId) {
    let tenant = app.project_with_admin().await;
    let evaluation = insert(app, new_evaluation(&tenant)).await;
    (tenant, evaluation.id)
}

fn result(project: ProjectId, evaluation: EvaluationId, outcome: Option<bool>, when: DateTime<Utc>) -> IncomingEvent {
    let mut properties = json!({
        "$ai_evaluation_id": evaluation.to_string(),
        "$ai_target_event_id": Uuid::now_v7().to_string(),
        "$ai_trace_id": "trace-1",
        "$ai_evaluation_applicable": outcome.is_some(),
        "$ai_evaluation_reasoning": "because",
    });
    if let Some(outcome) = outcome {
        properties["$ai_evaluation_result"] = json!(outcome);
    }
    let _ = project;
    let Value::Object(properties) = properties else { unreachable!() };
    IncomingEvent {
        uuid: Uuid::now_v7(),
        event: AiEventName::parse("$ai_evaluation").unwrap(),
        distinct_id: "user-1".into(),
        timestamp: when,
        properties,
    }
}

fn run(report: &Report, created_at: DateTime<Utc>) -> ReportRun {
    let period = Period { start: at(1, 0, 0), end: at(2, 0, 0) };
    let metrics = ReportMetrics::of(ResultCounts::default(), ResultCounts::default(), period);
    ReportRun {
        id: ReportRunId(Uuid::now_v7()),
        project: report.project,
        report: report.id,
        content: ReportContent { title: "t".into(), sections: vec![], citations: vec![], metrics },
        metadata: json!({"trigger": "scheduled"}),
        period,
        delivery_status: DeliveryStatus::Pending,
        delivery_errors: vec![],
        trend: vec![],
        created_at,
    }
}

fn delivery_job(project: ProjectId, key: String) -> NewJob {
    NewJob::new(project, JobKind::ReportDelivery, Some(key), json!({}), 4)
}

/// Runs and deliveries written as the report jobs write them: the domain's transactions
/// over this adapter's statements.
fn run_writes(pool: &PgPool) -> Arc<RunTransactions> {
    Arc::new(RunTransactions::new(Arc::new(PgUnitOfWork::new(&PgAiEventStore::new(pool.clone())))))
}

#[tokio::test]
async fn reports_round_trip_and_stay_in_their_project() {
    let app = TestApp::migrated().await;
    let (tenant, evaluation) = setup(&app).await;
    let store = PgReportStore::new(app.pool().clone());
    let stored = report(&tenant, evaluation);
    store.insert(&stored, tenant.admin.id).await.unwrap();
    let found = store.find(tenant.id(), stored.id).await.unwrap().unwrap();
    assert_eq!(found.delivery_targets, stored.delivery_targets, "the sealed secret is kept byte for byte");
    assert_eq!(found.created_by.as_ref().unwrap().id, tenant.admin.id);
    assert_eq!(Report { created_by: None, ..found.clone() }, stored);

    let other = app.project_with_admin().await;
    assert!(store.find(other.id(), stored.id).await.unwrap().is_none());
    assert_eq!(store.list(other.id(), None, PageRequest::new(10, 0)).await.unwrap().total, 0);
    assert_eq!(store.list(tenant.id(), Some(evaluation), PageRequest::new(10, 0)).await.unwrap().total, 1);
    assert_eq!(
        store.list(tenant.id(), Some(EvaluationId::generate()), PageRequest::new(10, 0)).await.unwrap().total,
        0
    );

    let deleted = Report { deleted: true, ..found };
    assert!(store.save(&deleted).await.unwrap());
    assert_eq!(store.list(tenant.id(), None, PageRequest::new(10, 0)).await.unwrap().total, 0);
    assert!(store.find(tenant.id(), stored.id).await.unwrap().unwrap().deleted, "found for a restore");
    assert!(!store.save(&Report { project: other.id(), ..deleted }).await.unwrap());
}

#[tokio::test]
async fn period_metrics_trend_sample_and_nth_newest_match_hand_computed_numbers() {
    let app = TestApp::migrated().await;
    let (tenant, evaluation) = setup(&app).await;
    let project = tenant.id();
    let events = PgAiEventStore::new(app.pool().clone());
    let mut batch = vec![
        // Previous period [1 00:00, 2 00:00): 1 pass, 1 fail.
        result(project, evaluation, Some(true), at(1, 5, 0)),
        result(project, evaluation, Some(false), at(1, 6, 0)),
        // Period [2 00:00, 3 00:00): 3 pass, 1 fail, 2 n/a.
        result(project, evaluation, Some(true), at(2, 1, 0)),
        result(project, evaluation, Some(true), at(2, 1, 30)),
        result(project, evaluation, Some(true), at(2, 3, 0)),
        result(project, evaluation, Some(false), at(2, 3, 10)),
        result(project, evaluation, None, at(2, 4, 0)),
        result(project, evaluation, None, at(2, 23, 59)),
        // The period's end is excluded.
        result(project, evaluation, Some(false), at(3, 0, 0)),
    ];
    // Another evaluation's results do not count.
    batch.push(result(project, EvaluationId::generate(), Some(false), at(2, 2, 0)));
    events.store_events(project, &batch).await.unwrap();
    let other = app.project_with_admin().await;
    events.store_events(other.id(), &[result(other.id(), evaluation, Some(false), at(2, 2, 0))]).await.unwrap();

    let reads = PgReportEvents::new(app.pool().clone());
    let period = Period { start: at(2, 0, 0), end: at(3, 0, 0) };
    let current = reads.counts(project, evaluation, period).await.unwrap();
    assert_eq!(current, ResultCounts { pass: 3, fail: 1, na: 2 });
    let previous = reads.counts(project, evaluation, period.previous()).await.unwrap();
    assert_eq!(previous, ResultCounts { pass: 1, fail: 1, na: 0 });
    let metrics = ReportMetrics::of(current, previous, period);
    assert_eq!((metrics.pass_rate, metrics.previous_pass_rate, metrics.total_runs), (75.0, 50.0, 6));

    let trend =
        reads.trend(project, evaluation, Period { start: at(1, 0, 0), end: at(3, 0, 0) }, Bucket::Hour).await.unwrap();
    let hours: Vec<(u32, u64, u64)> =
        trend.iter().map(|p| (chrono::Timelike::hour(&p.bucket), p.pass, p.fail)).collect();
    assert_eq!(hours, vec![(5, 1, 0), (6, 0, 1), (1, 2, 0), (3, 1, 1), (4, 0, 0), (23, 0, 0)]);

    let sample = reads.sample(project, evaluation, period, 3).await.unwrap();
    assert_eq!(sample.len(), 3, "at most the limit: {sample:?}");
    let sample = reads.sample(project, evaluation, period, 50).await.unwrap();
    assert_eq!(sample.len(), 6);
    assert_eq!(sample[0].run.timestamp, at(2, 23, 59), "newest first");
    assert_eq!(sample[0].trace_id, "trace-1");

    assert_eq!(reads.nth_newest(project, evaluation, 3, at(3, 0, 0)).await.unwrap(), Some(at(2, 3, 10)));
    assert_eq!(reads.nth_newest(project, evaluation, 100, at(3, 0, 0)).await.unwrap(), Some(at(1, 5, 0)));
    assert_eq!(reads.nth_newest(project, EvaluationId::generate(), 3, at(3, 0, 0)).await.unwrap(), None);
}

#[tokio::test]
async fn racing_workers_store_one_run_per_key_and_the_report_advances_once() {
    let app = TestApp::migrated().await;
    let (tenant, evaluation) = setup(&app).await;
    let store = Arc::new(PgReportStore::new(app.pool().clone()));
    let stored = report(&tenant, evaluation);
    store.insert(&stored, tenant.admin.id).await.unwrap();
    let queue = PgJobQueue::new(app.pool().clone());
    let jobs: Vec<NewJob> =
        (0..6).map(|i| NewJob::new(tenant.id(), JobKind::ReportRun, Some(format!("race-{i}")), json!({}), 3)).collect();
    queue.enqueue(&jobs).await.unwrap();
    let claimed = queue.claim(&[(JobKind::ReportRun, 6)], Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 6);

    let next = at(3, 0, 0);
    let mut tasks = Vec::new();
    let writes = run_writes(app.pool());
    for job in claimed {
        let writes = writes.clone();
        let stored = stored.clone();
        tasks.push(tokio::spawn(async move {
            let new_run = run(&stored, Utc::now());
            let deliveries = vec![(
                NewDelivery {
                    target_index: 0,
                    recipient: "a@example.com".into(),
                    target: stored.delivery_targets[0].clone(),
                },
                delivery_job(stored.project, format!("{}:0:a", new_run.id.0)),
            )];
            let new = NewRun {
                run: new_run,
                run_key: "report-period-1".into(),
                expected_anchor: Some(stored.next_delivery_date),
                advance: Some((at(2, 0, 0), Some(next))),
                deliveries,
            };
            writes.store_run(&job.lease, &new).await.unwrap()
        }));
    }
    let mut stored_count = 0;
    for task in tasks {
        stored_count += usize::from(task.await.unwrap());
    }
    assert_eq!(stored_count, 1, "one run per key");
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM evaluation_report_runs").fetch_one(app.pool()).await.unwrap();
    assert_eq!(runs, 1);
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'report_delivery'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(deliveries, 1, "only the stored run's deliveries are queued");
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'report_run' AND state <> 'done'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(open, 0, "every racing job ended");
    let advanced = store.find(tenant.id(), stored.id).await.unwrap().unwrap();
    assert_eq!((advanced.last_delivered_at, advanced.next_delivery_date), (Some(at(2, 0, 0)), Some(next)));
}

#[tokio::test]
async fn schedule_candidates_counts_runs_pagination_and_delivery_status() {
    let app = TestApp::migrated().await;
    let (tenant, evaluation) = setup(&app).await;
    let store = PgReportStore::new(app.pool().clone());
    let now = at(10, 12, 0);
    let due = report(&tenant, evaluation);
    let later = Report { id: ReportId::generate(), next_delivery_date: Some(at(10, 13, 0)), ..due.clone() };
    let disabled = Report { id: ReportId::generate(), enabled: false, ..due.clone() };
    let every_n = Report {
        id: ReportId::generate(),
        frequency: Frequency::EveryN,
        rrule: String::new(),
        next_delivery_date: None,
        trigger_threshold: 3,
        starts_at: None,
        created_at: at(9, 0, 0),
        ..due.clone()
    };
    let cooling = Report { id: ReportId::generate(), last_delivered_at: Some(at(10, 11, 30)), ..every_n.clone() };
    for r in [&due, &later, &disabled, &every_n, &cooling] {
        store.insert(r, tenant.admin.id).await.unwrap();
    }
    // Only a run moves `last_delivered_at`; the repository never writes it.
    sqlx::query("UPDATE evaluation_reports SET last_delivered_at = $2 WHERE id = $1")
        .bind(cooling.id.0)
        .bind(cooling.last_delivered_at)
        .execute(app.pool())
        .await
        .unwrap();
    let events = PgAiEventStore::new(app.pool().clone());
    let batch: Vec<IncomingEvent> = (0..5).map(|i| result(tenant.id(), evaluation, Some(true), at(10, 1, i))).collect();
    events.store_events(tenant.id(), &batch).await.unwrap();

    let candidates = store.schedule_candidates(now).await.unwrap();
    let ids: Vec<ReportId> = candidates.iter().map(|c| c.report.id).collect();
    assert_eq!(ids.len(), 3, "the due scheduled one and both event-driven ones: {ids:?}");
    assert!(ids.contains(&due.id) && ids.contains(&every_n.id) && ids.contains(&cooling.id));
    let report_events = PgReportEvents::new(app.pool().clone());
    let asked = |after, up_to| NewResults { project: tenant.id(), evaluation, after, until: now, up_to };
    let found = report_events.new_results(&[asked(at(9, 0, 0), 3), asked(at(10, 1, 2), 100)]).await.unwrap();
    assert_eq!(found, vec![3, 2], "counted up to the threshold, strictly after the last delivery");
    let window =
        EvaluationPeriod { project: tenant.id(), evaluation, period: Period { start: at(10, 1, 1), end: now } };
    let counts = report_events.counts_of_periods(&[window]).await.unwrap();
    assert_eq!(counts, vec![ResultCounts { pass: 4, fail: 0, na: 0 }]);

    let scheduler = ReportScheduler::new(
        Arc::new(store.clone()),
        Arc::new(report_events),
        Arc::new(PgJobQueue::new(app.pool().clone())),
    );
    let due_now: Vec<String> =
        scheduler.due_jobs(now).await.unwrap().into_iter().filter_map(|job| job.unique_key).collect();
    assert_eq!(due_now.len(), 2, "the scheduled report and the every_n one past its threshold: {due_now:?}");

    // Runs: newest first, paginated; a delivery's end sets the run's status.
    let queue = PgJobQueue::new(app.pool().clone());
    let mut run_ids = Vec::new();
    for minute in 0..3 {
        queue
            .enqueue(&[NewJob::new(tenant.id(), JobKind::ReportRun, Some(format!("p{minute}")), json!({}), 4)])
            .await
            .unwrap();
        let job = queue.claim(&[(JobKind::ReportRun, 1)], Duration::from_secs(30)).await.unwrap().remove(0);
        let new_run = run(&due, at(10, 12, minute));
        run_ids.push(new_run.id);
        let targets = if minute == 2 {
            vec![
                (
                    NewDelivery {
                        target_index: 0,
                        recipient: "a@example.com".into(),
                        target: due.delivery_targets[0].clone(),
                    },
                    delivery_job(tenant.id(), "d0".into()),
                ),
                (
                    NewDelivery { target_index: 1, recipient: String::new(), target: due.delivery_targets[1].clone() },
                    delivery_job(tenant.id(), "d1".into()),
                ),
            ]
        } else {
            vec![]
        };
        let new = NewRun {
            run: new_run,
            run_key: format!("k{minute}"),
            expected_anchor: None,
            advance: None,
            deliveries: targets,
        };
        assert!(run_writes(app.pool()).store_run(&job.lease, &new).await.unwrap());
    }
    let page = store.runs(tenant.id(), due.id, PageRequest::new(2, 0)).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items.iter().map(|r| r.id).collect::<Vec<_>>(), vec![run_ids[2], run_ids[1]]);
    let other = app.project_with_admin().await;
    assert_eq!(store.runs(other.id(), due.id, PageRequest::new(10, 0)).await.unwrap().total, 0);

    let latest = run_ids[2];
    let delivery = store.delivery(latest, 1, "").await.unwrap().unwrap();
    assert!(matches!(delivery.target, DeliveryTarget::Webhook { .. }));
    let claimed = queue.claim(&[(JobKind::ReportDelivery, 2)], Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    run_writes(app.pool())
        .finish_delivery(
            &claimed[0].lease,
            ended(latest, 0, "a@example.com", DeliveryState::Sent, None),
            &JobEnd::Complete,
        )
        .await
        .unwrap();
    assert_eq!(store.run(latest).await.unwrap().unwrap().delivery_status, DeliveryStatus::Pending);
    let line = "Failed to deliver webhook to https://hooks.example.com/x: HTTP 500".to_owned();
    run_writes(app.pool())
        .finish_delivery(&claimed[1].lease, ended(latest, 1, "", DeliveryState::Failed, Some(&line)), &JobEnd::Complete)
        .await
        .unwrap();
    let finished = store.run(latest).await.unwrap().unwrap();
    assert_eq!(finished.delivery_status, DeliveryStatus::PartialFailure);
    assert_eq!(finished.delivery_errors, vec![line]);
    // A second end of the same delivery changes nothing.
    run_writes(app.pool())
        .finish_delivery(
            &claimed[0].lease,
            ended(latest, 0, "a@example.com", DeliveryState::Failed, Some("x")),
            &JobEnd::Complete,
        )
        .await
        .unwrap();
    assert_eq!(store.run(latest).await.unwrap().unwrap().delivery_status, DeliveryStatus::PartialFailure);
}

fn ended(
    run: ReportRunId,
    target_index: u32,
    recipient: &str,
    state: DeliveryState,
    error: Option<&str>,
) -> EndedDelivery {
    let record = DeliveryRecord { target_index, recipient: recipient.into(), state, error: error.map(str::to_owned) };
    EndedDelivery { run, record }
}
