//! `PgJudgeStore`'s reads: the results query against hand-computed numbers (breakdown from
//! the result or its generation, numbers and null as values, `$other`, buckets), the runs
//! list, and the result stored with its job's end.

use std::time::Duration;

use adapters_postgres::{PgAiEventStore, PgJobQueue, PgJudgeStore, PgUnitOfWork};
use chrono::{DateTime, TimeZone, Utc};
use domain::ingestion::{AiEventName, AiEventStore, IncomingEvent};
use domain::jobs::{JobEnd, JobKind, JobQueue, NewJob};
use domain::judge::{
    EvaluationResultsStore, Interval, JudgeStore, ResultCounts, ResultsQuery, ResultsReport, RunsQuery,
};
use domain::{EvaluationId, PageRequest, ProjectId};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn event(name: &str, timestamp: DateTime<Utc>, properties: Value) -> IncomingEvent {
    let Value::Object(properties) = properties else { panic!("an object") };
    IncomingEvent {
        uuid: Uuid::now_v7(),
        event: AiEventName::parse(name).unwrap(),
        distinct_id: "user-1".into(),
        timestamp,
        properties,
    }
}

fn result(
    evaluation: EvaluationId,
    target: &IncomingEvent,
    outcome: Option<bool>,
    when: DateTime<Utc>,
) -> IncomingEvent {
    let mut properties = json!({
        "$ai_evaluation_id": evaluation.to_string(),
        "$ai_target_event_id": target.uuid.to_string(),
        "$ai_evaluation_applicable": outcome.is_some(),
    });
    if let Some(outcome) = outcome {
        properties["$ai_evaluation_result"] = json!(outcome);
    }
    event("$ai_evaluation", when, properties)
}

fn query(evaluation: EvaluationId, breakdown: Option<&str>) -> ResultsQuery {
    ResultsQuery {
        evaluation,
        date_from: at(1, 0),
        date_to: at(8, 0),
        breakdown: breakdown.map(str::to_owned),
        interval: Interval::Day,
        include_cost: false,
    }
}

fn counts(pass: u64, fail: u64, na: u64) -> ResultCounts {
    ResultCounts { pass, fail, na, ..Default::default() }
}

/// A migrated database with one project and the stores the tests read and write.
struct Stores {
    app: TestApp,
    events: PgAiEventStore,
    judge: PgJudgeStore,
    queue: PgJobQueue,
    project: ProjectId,
}

async fn stores() -> Stores {
    let app = TestApp::migrated().await;
    let project = app.project().await.id;
    Stores {
        events: PgAiEventStore::new(app.pool().clone()),
        judge: PgJudgeStore::new(app.pool().clone()),
        queue: PgJobQueue::new(app.pool().clone()),
        project,
        app,
    }
}

/// Enqueues one judge job keyed `key` and claims it.
async fn claimed_judge_job(stores: &Stores, key: &str) -> domain::jobs::ClaimedJob {
    let job = NewJob::new(stores.project, JobKind::Judge, Some(key.into()), json!({}), 3);
    stores.queue.enqueue(&[job]).await.unwrap();
    claim_one(&stores.queue).await
}

async fn claim_one(queue: &PgJobQueue) -> domain::jobs::ClaimedJob {
    queue.claim(&[(JobKind::Judge, 1)], Duration::from_secs(30)).await.unwrap().pop().unwrap()
}

/// A judge's results stored as the judge stores them: the domain's transaction over this
/// adapter's statements.
async fn store_results(
    store: &PgAiEventStore,
    lease: &domain::jobs::Lease,
    project: ProjectId,
    results: &[IncomingEvent],
    end: Option<JobEnd>,
) -> Result<bool, domain::RepositoryError> {
    domain::judge::store_results(&PgUnitOfWork::new(store), lease, project, results, end.as_ref()).await
}

#[tokio::test]
async fn results_break_down_by_the_result_else_its_generation_with_hand_computed_counts() {
    let stores = stores().await;
    let Stores { app, events: store, judge, project, .. } = &stores;
    let project = *project;
    let other = app.project().await.id;
    let evaluation = EvaluationId(Uuid::now_v7());

    let prod = event("$ai_generation", at(1, 9), json!({"env": "prod"}));
    let staging = event("$ai_generation", at(1, 9), json!({"env": "staging"}));
    let bare = event("$ai_generation", at(1, 9), json!({}));
    let numeric = event("$ai_generation", at(1, 9), json!({"env": 42}));
    let mut overriding = result(evaluation, &staging, Some(true), at(2, 12));
    overriding.properties.insert("env".into(), json!("override"));
    let events = vec![
        prod.clone(),
        staging.clone(),
        bare.clone(),
        numeric.clone(),
        result(evaluation, &prod, Some(true), at(1, 10)),
        result(evaluation, &staging, Some(false), at(1, 11)),
        result(evaluation, &bare, None, at(2, 10)),
        result(evaluation, &numeric, Some(true), at(2, 11)),
        overriding,
        result(EvaluationId(Uuid::now_v7()), &prod, Some(false), at(2, 10)), // another evaluation
        result(evaluation, &prod, Some(false), at(9, 10)),                   // after the period
    ];
    store.store_events(project, &events).await.unwrap();
    store.store_events(other, &[result(evaluation, &prod, Some(false), at(2, 10))]).await.unwrap();

    let rows = judge.results(project, &query(evaluation, Some("env"))).await.unwrap();
    let report = ResultsReport::from_rows(query(evaluation, Some("env")), rows, 0);
    assert_eq!(report.totals, counts(3, 1, 1));
    let values: Vec<(Option<&str>, ResultCounts)> =
        report.breakdown_values.iter().map(|(v, c)| (v.as_deref(), *c)).collect();
    assert_eq!(
        values,
        vec![
            (Some("42"), counts(1, 0, 0)),
            (Some("override"), counts(1, 0, 0)),
            (Some("prod"), counts(1, 0, 0)),
            (Some("staging"), counts(0, 1, 0)),
            (None, counts(0, 0, 1)),
        ]
    );
    let trend: Vec<(DateTime<Utc>, Option<&str>)> =
        report.trend.iter().map(|row| (row.bucket, row.value.as_deref())).collect();
    assert_eq!(
        trend,
        vec![
            (at(1, 0), Some("prod")),
            (at(1, 0), Some("staging")),
            (at(2, 0), Some("42")),
            (at(2, 0), Some("override")),
            (at(2, 0), None),
        ]
    );

    let plain = judge.results(project, &query(evaluation, None)).await.unwrap();
    let report = ResultsReport::from_rows(query(evaluation, None), plain, 0);
    assert!(report.breakdown_values.is_empty());
    assert_eq!(report.trend.iter().map(|row| row.counts).collect::<Vec<_>>(), vec![counts(1, 1, 0), counts(2, 0, 1)]);
}

#[tokio::test]
async fn with_costs_asked_for_each_value_sums_what_its_judged_generations_cost() {
    let stores = stores().await;
    let Stores { events: store, judge, project, .. } = &stores;
    let project = *project;
    let evaluation = EvaluationId(Uuid::now_v7());
    let priced =
        |env: &str, cost: Value| event("$ai_generation", at(1, 9), json!({"env": env, "$ai_total_cost_usd": cost}));
    let prod_a = priced("prod", json!(0.0123));
    let prod_b = priced("prod", json!(0.000_000_5));
    let staging = priced("staging", json!(0.25));
    let unpriced = event("$ai_generation", at(1, 9), json!({"env": "staging"}));
    let not_a_number = priced("staging", json!("0.5"));
    let mut trace_result = result(evaluation, &staging, Some(true), at(1, 12));
    trace_result.properties.insert("$ai_evaluation_target".into(), json!("trace"));
    let events = vec![
        prod_a.clone(),
        prod_b.clone(),
        staging.clone(),
        unpriced.clone(),
        not_a_number.clone(),
        result(evaluation, &prod_a, Some(true), at(1, 10)),
        result(evaluation, &prod_b, Some(false), at(1, 10)),
        result(evaluation, &staging, Some(true), at(1, 10)),
        result(evaluation, &unpriced, Some(true), at(1, 10)),
        result(evaluation, &not_a_number, None, at(1, 10)),
        trace_result, // a trace's result names its first generation, whose cost is not the trace's
    ];
    store.store_events(project, &events).await.unwrap();
    let asked = ResultsQuery { include_cost: true, ..query(evaluation, Some("env")) };

    let report = ResultsReport::from_rows(asked.clone(), judge.results(project, &asked).await.unwrap(), 0);

    assert_eq!((report.totals.cost.nano_usd, report.totals.cost.costed_runs), (262_300_500, 3));
    let costs: Vec<(Option<&str>, u64, u64)> =
        report.breakdown_values.iter().map(|(v, c)| (v.as_deref(), c.cost.nano_usd, c.cost.costed_runs)).collect();
    assert_eq!(costs, vec![(Some("staging"), 250_000_000, 1), (Some("prod"), 12_300_500, 2)]);
    assert_eq!(report.totals.runs(), 6);

    let without = judge.results(project, &query(evaluation, Some("env"))).await.unwrap();
    let report = ResultsReport::from_rows(query(evaluation, Some("env")), without, 0);
    assert_eq!(report.totals.cost, Default::default(), "costs only when asked for");
}

#[tokio::test]
async fn values_past_the_25_largest_are_merged_as_other() {
    let stores = stores().await;
    let Stores { events: store, judge, project, .. } = &stores;
    let project = *project;
    let evaluation = EvaluationId(Uuid::now_v7());
    let generation = event("$ai_generation", at(1, 9), json!({}));
    let mut events = vec![generation.clone()];
    for n in 0..27 {
        let mut run = result(evaluation, &generation, Some(true), at(1, 10));
        run.properties.insert("variant".into(), json!(format!("v{n:02}")));
        events.push(run);
    }
    let mut extra = result(evaluation, &generation, Some(false), at(1, 11));
    extra.properties.insert("variant".into(), json!("v26"));
    events.push(extra);
    store.store_events(project, &events).await.unwrap();

    let rows = judge.results(project, &query(evaluation, Some("variant"))).await.unwrap();
    let report = ResultsReport::from_rows(query(evaluation, Some("variant")), rows, 0);
    let values: Vec<Option<&str>> = report.breakdown_values.iter().map(|(v, _)| v.as_deref()).collect();
    assert_eq!(values.len(), 26);
    assert_eq!(values[0], Some("v26"), "the most runs first");
    assert_eq!(values[1], Some("v00"), "then by value");
    assert_eq!(values[24], Some("v23"));
    assert_eq!(report.breakdown_values[25], (Some("$other".to_owned()), counts(2, 0, 0)), "v24 and v25");
    assert_eq!(report.totals.runs(), 28);
}

#[tokio::test]
async fn runs_list_newest_first_filtered_and_paged() {
    let stores = stores().await;
    let Stores { events: store, judge, project, .. } = &stores;
    let project = *project;
    let evaluation = EvaluationId(Uuid::now_v7());
    let generation = event("$ai_generation", at(1, 9), json!({}));
    let older = result(evaluation, &generation, Some(true), at(1, 10));
    let newer = result(evaluation, &generation, None, at(1, 11));
    let foreign = result(EvaluationId(Uuid::now_v7()), &generation, Some(false), at(1, 12));
    store.store_events(project, &[generation.clone(), older.clone(), newer.clone(), foreign]).await.unwrap();

    let query = |evaluation: Option<EvaluationId>, generation: Option<String>, limit: &str| RunsQuery {
        evaluation,
        generation,
        page: PageRequest::parse(Some(limit), None).unwrap(),
    };
    let page = judge.runs(project, &query(Some(evaluation), None, "1")).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items[0].id, newer.uuid);
    assert_eq!((page.items[0].result, page.items[0].applicable), (None, Some(false)));
    let all = judge.runs(project, &query(None, Some(generation.uuid.to_string()), "10")).await.unwrap();
    assert_eq!(all.total, 3);
    let none = judge.runs(ProjectId(project.0 + 1000), &query(None, None, "10")).await.unwrap();
    assert_eq!(none.total, 0);
}

#[tokio::test]
async fn a_result_is_stored_only_while_its_job_is_held() {
    let stores = stores().await;
    let Stores { app, events: store, judge, queue, project, .. } = &stores;
    let project = *project;
    let lapsed = claimed_judge_job(&stores, "e:g").await;
    sqlx::query("UPDATE jobs SET run_after = now() - interval '1 second'").execute(app.pool()).await.unwrap();
    let holder = claim_one(queue).await;
    let generation = event("$ai_generation", Utc::now(), json!({}));
    let outcome = result(EvaluationId(Uuid::now_v7()), &generation, Some(true), Utc::now());

    assert!(
        !store_results(store, &lapsed.lease, project, std::slice::from_ref(&outcome), Some(JobEnd::Complete))
            .await
            .unwrap(),
        "the old holder stores nothing"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ai_events").fetch_one(app.pool()).await.unwrap();
    assert_eq!(stored, 0);
    assert!(
        store_results(store, &holder.lease, project, std::slice::from_ref(&outcome), Some(JobEnd::Complete))
            .await
            .unwrap()
    );
    let found = judge.event(project, outcome.uuid, None).await.unwrap().expect("the result is stored");
    assert_eq!(found.event, "$ai_evaluation");
    let state: String = sqlx::query_scalar("SELECT state FROM jobs").fetch_one(app.pool()).await.unwrap();
    assert_eq!(state, "done");
}

#[tokio::test]
async fn results_stored_for_a_retry_keep_the_job_leased_and_are_found_by_the_next_attempt() {
    let stores = stores().await;
    let Stores { app, events: store, judge, project, .. } = &stores;
    let project = *project;
    let held = claimed_judge_job(&stores, "g").await;
    let generation = event("$ai_generation", Utc::now(), json!({}));
    let first = result(EvaluationId(Uuid::now_v7()), &generation, Some(true), Utc::now());
    let second = result(EvaluationId(Uuid::now_v7()), &generation, Some(false), Utc::now());

    assert!(store_results(store, &held.lease, project, std::slice::from_ref(&first), None).await.unwrap());
    let state: String = sqlx::query_scalar("SELECT state FROM jobs").fetch_one(app.pool()).await.unwrap();
    assert_eq!(state, "running", "without an end the job stays with its holder");
    let found = judge.stored_events(project, &[first.uuid, second.uuid]).await.unwrap();
    assert_eq!(found, vec![first.uuid]);
    assert!(judge.stored_events(ProjectId(project.0 + 1000), &[first.uuid]).await.unwrap().is_empty());

    let reason = "evaluation x: the provider answered no JSON".to_owned();
    assert!(
        store_results(store, &held.lease, project, std::slice::from_ref(&second), Some(JobEnd::Fail(reason.clone())))
            .await
            .unwrap()
    );
    let (state, error): (String, Option<String>) =
        sqlx::query_as("SELECT state, last_error FROM jobs").fetch_one(app.pool()).await.unwrap();
    assert_eq!((state.as_str(), error), ("failed", Some(reason)));
    assert_eq!(judge.stored_events(project, &[first.uuid, second.uuid]).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_batch_reads_its_generations_at_once_and_ends_only_the_jobs_its_leases_hold() {
    let stores = stores().await;
    let Stores { app, events: store, judge, queue, project } = &stores;
    let project = *project;
    let other = app.project().await.id;
    let (first, second) = (event("$ai_generation", at(1, 9), json!({"n": 1})), event("$ai_span", at(2, 9), json!({})));
    store.store_events(project, &[first.clone(), second.clone()]).await.unwrap();
    let elsewhere = event("$ai_generation", at(1, 9), json!({}));
    store.store_events(other, std::slice::from_ref(&elsewhere)).await.unwrap();

    let wanted =
        [(first.uuid, first.timestamp), (second.uuid, second.timestamp), (elsewhere.uuid, elsewhere.timestamp)];
    let mut read = judge.events(project, &[wanted.as_slice(), &[(Uuid::now_v7(), at(1, 9))]].concat()).await.unwrap();
    read.sort_by_key(|e| e.uuid);
    let read: Vec<(Uuid, &str, Value)> =
        read.iter().map(|e| (e.uuid, e.event.as_str(), Value::Object(e.properties.clone()))).collect();
    assert_eq!(read, vec![(first.uuid, "$ai_generation", json!({"n": 1})), (second.uuid, "$ai_span", json!({}))]);
    let sent_precisely = first.timestamp + chrono::Duration::nanoseconds(400);
    let an_hour_off = second.timestamp + chrono::Duration::hours(1);
    let near = judge.events(project, &[(first.uuid, sent_precisely), (second.uuid, an_hour_off)]).await.unwrap();
    let near: Vec<Uuid> = near.iter().map(|e| e.uuid).collect();
    assert_eq!(near, [first.uuid], "each within a second of its timestamp");

    let jobs: Vec<NewJob> =
        (0..3).map(|n| NewJob::new(project, JobKind::JudgeCode, Some(format!("g{n}")), json!({}), 3)).collect();
    queue.enqueue(&jobs).await.unwrap();
    let claimed = queue.claim(&[(JobKind::JudgeCode, 3)], Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    // the third job's lease lapses and another worker takes it over
    sqlx::query("UPDATE jobs SET lease_token = gen_random_uuid() WHERE id = $1")
        .bind(claimed[2].lease.job.0)
        .execute(app.pool())
        .await
        .unwrap();
    let ends = vec![
        (claimed[0].lease, JobEnd::Complete),
        (claimed[1].lease, JobEnd::Fail("evaluation e: Division by zero".into())),
        (claimed[2].lease, JobEnd::Complete),
    ];
    let unit_of_work = PgUnitOfWork::new(store);
    let mut tx = domain::unit_of_work::UnitOfWork::begin(&unit_of_work).await.unwrap();
    let mut ended = tx.jobs().end_each(&ends).await.unwrap();
    tx.commit().await.unwrap();
    ended.sort();
    let mut expected = vec![claimed[0].lease.job, claimed[1].lease.job];
    expected.sort();
    assert_eq!(ended, expected, "the job whose lease lapsed is not ended");

    let states: Vec<(Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT id, state, last_error FROM jobs WHERE kind = 'judge_code' ORDER BY id")
            .fetch_all(app.pool())
            .await
            .unwrap();
    let state_of = |id: Uuid| states.iter().find(|(job, _, _)| *job == id).map(|(_, s, e)| (s.clone(), e.clone()));
    assert_eq!(state_of(claimed[0].lease.job.0), Some(("done".into(), None)));
    assert_eq!(
        state_of(claimed[1].lease.job.0),
        Some(("failed".into(), Some("evaluation e: Division by zero".into())))
    );
    assert_eq!(state_of(claimed[2].lease.job.0), Some(("running".into(), None)));
}
