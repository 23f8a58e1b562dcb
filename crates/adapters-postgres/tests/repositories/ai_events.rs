//! `PgAiEventStore`: monthly partitions created ahead and on demand, idempotent batches,
//! project isolation, extracted columns, and the offline-items query on known data.

use adapters_postgres::{PgAiEventStore, PgIdentityRepository};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use domain::ProjectId;
use domain::ingestion::{AiEventName, AiEventStore, IncomingEvent, ProjectTokens};
use domain::offline_evaluation::{ExperimentId, ExperimentItem, ExperimentItemsQuery, MAX_EXPERIMENT_ITEMS};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn event(name: &str, timestamp: DateTime<Utc>, properties: Value) -> IncomingEvent {
    let Value::Object(properties) = properties else { panic!("properties must be an object") };
    IncomingEvent {
        uuid: Uuid::now_v7(),
        event: AiEventName::parse(name).expect("an AI event name"),
        distinct_id: "user-1".to_owned(),
        timestamp,
        properties,
    }
}

fn generation(timestamp: DateTime<Utc>) -> IncomingEvent {
    event("$ai_generation", timestamp, json!({"$ai_model": "gpt-5-mini"}))
}

async fn partitions(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'ai_events'::regclass ORDER BY 1",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}

async fn count_events(app: &TestApp, project: ProjectId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ai_events WHERE project_id = $1")
        .bind(project.0)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_create_this_month_and_the_next_two() {
    let app = TestApp::migrated().await;
    let now = Utc::now();
    let expected: Vec<String> = (0..3)
        .map(|n| {
            let month = now.date_naive().with_day0(0).unwrap().checked_add_months(chrono::Months::new(n)).unwrap();
            format!("ai_events_p{}", month.format("%Y_%m"))
        })
        .collect();

    assert_eq!(partitions(&app).await, expected);
}

#[tokio::test]
async fn partitions_are_created_ahead_once_even_when_replicas_race() {
    let app = TestApp::migrated().await;
    let from = at(2031, 11, 15, 0, 0);
    // Two "replicas": separate stores, so neither knows what the other created.
    let first = PgAiEventStore::new(app.pool().clone());
    let second = PgAiEventStore::new(app.pool().clone());

    let (a, b) = tokio::join!(first.create_partitions_ahead(from, 3), second.create_partitions_ahead(from, 3));

    assert_eq!(a.unwrap() + b.unwrap(), 4, "each month created exactly once");
    let names = partitions(&app).await;
    for name in ["ai_events_p2031_11", "ai_events_p2031_12", "ai_events_p2032_01", "ai_events_p2032_02"] {
        assert!(names.contains(&name.to_owned()), "{name} missing from {names:?}");
    }
    assert_eq!(first.create_partitions_ahead(from, 3).await.unwrap(), 0);
}

#[tokio::test]
async fn a_batch_creates_the_partitions_of_the_months_it_touches() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;

    let stored = store
        .store_events(project, &[generation(at(2025, 1, 31, 23, 59)), generation(at(2025, 2, 1, 0, 0))])
        .await
        .unwrap()
        .stored;

    assert_eq!(stored, 2);
    let names = partitions(&app).await;
    assert!(names.contains(&"ai_events_p2025_01".to_owned()) && names.contains(&"ai_events_p2025_02".to_owned()));
    let placed: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT tableoid::regclass::text, timestamp FROM ai_events WHERE project_id = $1 ORDER BY timestamp",
    )
    .bind(project.0)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(placed[0].0, "ai_events_p2025_01");
    assert_eq!(placed[1].0, "ai_events_p2025_02");
}

#[tokio::test]
async fn a_partition_dropped_behind_the_stores_back_is_created_again() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    store.store_events(project, &[generation(at(2024, 7, 3, 12, 0))]).await.unwrap();

    sqlx::query("DROP TABLE ai_events_p2024_07").execute(app.pool()).await.unwrap();
    let stored = store.store_events(project, &[generation(at(2024, 7, 4, 12, 0))]).await.unwrap().stored;

    assert_eq!(stored, 1);
    assert_eq!(count_events(&app, project).await, 1);
}

#[tokio::test]
async fn a_resent_batch_adds_nothing_and_new_events_in_it_are_stored() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let now = Utc::now();
    let batch: Vec<IncomingEvent> = (0..3).map(|i| generation(now - Duration::minutes(i))).collect();

    assert_eq!(store.store_events(project, &batch).await.unwrap().stored, 3);
    assert_eq!(store.store_events(project, &batch).await.unwrap().stored, 0);

    // The same uuid with another timestamp (skew correction moved it) is still a repeat.
    let mut moved = batch[0].clone();
    moved.timestamp = now - Duration::days(40);
    let again = vec![moved, generation(now)];
    assert_eq!(store.store_events(project, &again).await.unwrap().stored, 1);
    assert_eq!(count_events(&app, project).await, 4);
    let ids: i64 = sqlx::query_scalar("SELECT count(*) FROM ai_event_ids WHERE project_id = $1")
        .bind(project.0)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(ids, 4);
}

#[tokio::test]
async fn replicas_storing_the_same_batch_at_once_store_each_event_once() {
    // Each store inserts claims as new until it meets one that exists: the racing plain
    // inserts wait for each other and the loser stores the batch again skipping the claims
    // the winner made.
    let app = TestApp::migrated().await;
    let project = app.project().await.id;
    for round in 0..10 {
        let now = Utc::now();
        let batch: Vec<IncomingEvent> = (0..20).map(|i| generation(now - Duration::seconds(i))).collect();
        let replicas = (0..3).map(|_| {
            let (store, batch) = (PgAiEventStore::new(app.pool().clone()), batch.clone());
            tokio::spawn(async move { store.store_events(project, &batch).await.unwrap().stored })
        });
        let mut stored = 0;
        for replica in replicas {
            stored += replica.await.unwrap();
        }
        assert_eq!(stored, 20, "round {round}: each event stored by exactly one replica");
    }
    assert_eq!(count_events(&app, project).await, 200);
}

#[tokio::test]
async fn a_uuid_repeated_within_a_batch_is_stored_once() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let first = generation(Utc::now());
    let mut repeat = first.clone();
    repeat.distinct_id = "someone-else".to_owned();

    assert_eq!(store.store_events(project, &[first, repeat]).await.unwrap().stored, 1);

    let distinct_ids: Vec<String> = sqlx::query_scalar("SELECT distinct_id FROM ai_events WHERE project_id = $1")
        .bind(project.0)
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(distinct_ids, ["user-1"], "the first occurrence wins");
}

#[tokio::test]
async fn the_same_uuid_in_two_projects_is_two_events() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let (first, second) = (app.project().await.id, app.project().await.id);
    let shared = generation(Utc::now());

    assert_eq!(store.store_events(first, std::slice::from_ref(&shared)).await.unwrap().stored, 1);
    assert_eq!(store.store_events(second, std::slice::from_ref(&shared)).await.unwrap().stored, 1);

    assert_eq!(count_events(&app, first).await, 1);
    assert_eq!(count_events(&app, second).await, 1);
}

#[tokio::test]
async fn the_columns_reads_filter_on_are_extracted() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let evaluation = event(
        "$ai_evaluation",
        Utc::now(),
        json!({
            "$ai_trace_id": "trace-9", "$ai_evaluation_id": "0190c5a8-0000-7000-8000-000000000001",
            "$ai_target_event_id": "gen-1", "$ai_experiment_id": 42, "$ai_experiment_item_id": "",
            "$ai_evaluation_result": true
        }),
    );
    store.store_events(project, std::slice::from_ref(&evaluation)).await.unwrap();

    type Extracted =
        (String, String, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>, Value);
    let row: Extracted = sqlx::query_as(
        "SELECT event, distinct_id, trace_id, evaluation_id, target_event_id, experiment_id, experiment_item_id, \
         properties FROM ai_events WHERE project_id = $1 AND uuid = $2",
    )
    .bind(project.0)
    .bind(evaluation.uuid)
    .fetch_one(app.pool())
    .await
    .unwrap();

    assert_eq!(row.0, "$ai_evaluation");
    assert_eq!(row.1, "user-1");
    assert_eq!(row.2.as_deref(), Some("trace-9"));
    assert_eq!(row.3.as_deref(), Some("0190c5a8-0000-7000-8000-000000000001"));
    assert_eq!(row.4.as_deref(), Some("gen-1"));
    assert_eq!(row.5.as_deref(), Some("42"), "numbers are kept as their text");
    assert_eq!(row.6, None, "empty strings are no value");
    assert_eq!(row.7, Value::Object(evaluation.properties.clone()));
}

#[tokio::test]
async fn project_tokens_find_exactly_their_project() {
    let app = TestApp::migrated().await;
    let identity =
        PgIdentityRepository::new(app.pool().clone(), adapters_postgres::ReadConnections::new(app.pool(), 1));
    let project = app.project().await;

    assert_eq!(identity.find_project_by_token(&project.api_token).await.unwrap(), Some(project.id));
    assert_eq!(identity.find_project_by_token(&project.api_token.to_uppercase()).await.unwrap(), None);
    assert_eq!(identity.find_project_by_token("phc_unknown").await.unwrap(), None);
}

// --- offline experiment items (spec section 8) ---

const T0: (i32, u32, u32, u32, u32) = (2025, 6, 1, 10, 0);

fn t(minutes: i64) -> DateTime<Utc> {
    let (y, mo, d, h, mi) = T0;
    at(y, mo, d, h, mi) + Duration::minutes(minutes)
}

/// An `$ai_evaluation` of experiment `experiment` for `item`, metric `accuracy` v`1`,
/// with `extra` properties on top.
fn evaluation(minutes: i64, experiment: &str, item: &str, extra: Value) -> IncomingEvent {
    let properties = test_support::experiment_result_properties(experiment, item, &extra);
    event("$ai_evaluation", t(minutes), Value::Object(properties))
}

/// Seeds project `project` with a known set of events; returns nothing, the answer is
/// spelled out in the tests.
async fn seed(store: &PgAiEventStore, project: ProjectId, other_project: ProjectId) {
    let events = vec![
        // item-1 / accuracy / 1: two runs; the later has no reasoning.
        evaluation(
            0,
            "exp-1",
            "item-1",
            json!({"$ai_score": 0.5, "$ai_reasoning": "first try", "$ai_trace_id": "trace-1",
            "$ai_input": "old question", "$ai_expected": "42", "$ai_dataset_item_id": "row-1"}),
        ),
        evaluation(
            10,
            "exp-1",
            "item-1",
            json!({"$ai_score": 0.9, "$ai_trace_id": "trace-1",
            "$ai_input": "new question", "$ai_output": {"answer": 42}}),
        ),
        // item-1 / accuracy / 2 (version sent as a number)
        evaluation(5, "exp-1", "item-1", json!({"$ai_metric_version": 2, "$ai_score": 1, "$ai_trace_id": "trace-1"})),
        // item-2 / accuracy / 1: no input of its own; its trace has one from another experiment
        evaluation(20, "exp-1", "item-2", json!({"$ai_score": 0.1, "$ai_trace_id": "trace-2", "$ai_status": "error"})),
        evaluation(
            15,
            "exp-other",
            "item-9",
            json!({"$ai_trace_id": "trace-2", "$ai_input": "from the trace",
            "$ai_output": "answer from the trace"}),
        ),
        // the same trace, after the groups' span: not used
        evaluation(120, "exp-other", "item-9", json!({"$ai_trace_id": "trace-2", "$ai_input": "too late"})),
        // item-3: an empty metric name groups as null; no trace
        evaluation(30, "exp-1", "item-3", json!({"$ai_metric_name": "", "$ai_score": 0.3})),
        // excluded: empty item id, another experiment, not an evaluation
        evaluation(40, "exp-1", "", json!({"$ai_score": 0.0})),
        evaluation(41, "exp-2", "item-1", json!({"$ai_score": 0.0})),
        event("$ai_generation", t(42), json!({"$ai_experiment_id": "exp-1", "$ai_experiment_item_id": "item-1"})),
    ];
    assert_eq!(store.store_events(project, &events).await.unwrap().stored, events.len() as u64);
    // another project's evaluation of the same experiment id
    let foreign = evaluation(50, "exp-1", "item-foreign", json!({"$ai_score": 1}));
    store.store_events(other_project, &[foreign]).await.unwrap();
}

fn query(date_from: Option<DateTime<Utc>>, date_to: Option<DateTime<Utc>>) -> ExperimentItemsQuery {
    ExperimentItemsQuery {
        experiment_id: ExperimentId::parse("exp-1").unwrap(),
        date_from,
        date_to,
        limit: MAX_EXPERIMENT_ITEMS,
    }
}

fn key(item: &ExperimentItem) -> (String, Option<String>, Option<String>) {
    (item.item_id.clone(), item.metric_name.clone(), item.metric_version.clone())
}

fn group(item: &str, metric: Option<&str>, version: Option<&str>) -> (String, Option<String>, Option<String>) {
    (item.to_owned(), metric.map(str::to_owned), version.map(str::to_owned))
}

async fn seeded() -> (TestApp, PgAiEventStore, ProjectId) {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let (project, other) = (app.project().await.id, app.project().await.id);
    seed(&store, project, other).await;
    (app, store, project)
}

#[tokio::test]
async fn experiment_items_are_grouped_newest_first_with_the_latest_values() {
    let (_app, store, project) = seeded().await;

    let items = store.experiment_items(project, &query(None, None)).await.unwrap();

    let keys: Vec<_> = items.iter().map(key).collect();
    assert_eq!(
        keys,
        vec![
            group("item-3", None, Some("1")),
            group("item-2", Some("accuracy"), Some("1")),
            group("item-1", Some("accuracy"), Some("1")),
            group("item-1", Some("accuracy"), Some("2")),
        ]
    );
    let item1 = &items[2];
    assert_eq!(item1.score, Some(json!(0.9)), "the latest score");
    assert_eq!(item1.reasoning, Some(json!("first try")), "the latest non-null reasoning");
    assert_eq!(item1.expected, Some(json!("42")));
    assert_eq!(item1.dataset_item_id, Some(json!("row-1")));
    assert_eq!(item1.experiment_item_name, Some(json!("case item-1")));
    assert_eq!(item1.experiment_name, Some(json!("Support bot regression")));
    assert_eq!(item1.status, Some(json!("ok")));
    assert_eq!(item1.result_type, Some(json!("numeric")));
    assert_eq!((item1.score_min.clone(), item1.score_max.clone()), (Some(json!(0)), Some(json!(1))));
    assert_eq!(item1.trace_id.as_deref(), Some("trace-1"));
    assert_eq!(item1.dataset_id, Some(json!("dataset-1")));
    assert_eq!(item1.last_seen_at, t(10));
    assert_eq!(item1.input, Some(json!("new question")), "the trace's latest input");
    assert_eq!(item1.output, Some(json!({"answer": 42})));
    // the v2 group shares trace-1, so the same input/output
    assert_eq!(items[3].input, Some(json!("new question")));
    assert_eq!(items[3].score, Some(json!(1)));
}

#[tokio::test]
async fn input_and_output_come_from_the_trace_within_the_groups_span() {
    let (_app, store, project) = seeded().await;

    let items = store.experiment_items(project, &query(None, None)).await.unwrap();

    let item2 = items.iter().find(|i| i.item_id == "item-2").unwrap();
    assert_eq!(item2.status, Some(json!("error")));
    assert_eq!(item2.input, Some(json!("from the trace")), "not the later 'too late'");
    assert_eq!(item2.output, Some(json!("answer from the trace")));
    let item3 = items.iter().find(|i| i.item_id == "item-3").unwrap();
    assert_eq!((item3.trace_id.clone(), item3.input.clone(), item3.output.clone()), (None, None, None));
}

#[tokio::test]
async fn date_bounds_are_inclusive_and_narrow_the_groups_and_their_values() {
    let (_app, store, project) = seeded().await;

    let items = store.experiment_items(project, &query(Some(t(5)), Some(t(20)))).await.unwrap();

    let keys: Vec<_> = items.iter().map(key).collect();
    assert_eq!(
        keys,
        vec![
            group("item-2", Some("accuracy"), Some("1")),
            group("item-1", Some("accuracy"), Some("1")),
            group("item-1", Some("accuracy"), Some("2")),
        ]
    );
    // the first run (with the reasoning) is before the bound now
    assert_eq!(items[1].reasoning, None);
    assert_eq!(items[1].expected, None);

    let none = store.experiment_items(project, &query(Some(t(200)), None)).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn the_limit_keeps_the_newest_groups_and_other_projects_are_invisible() {
    let (_app, store, project) = seeded().await;
    let mut limited = query(None, None);
    limited.limit = 1;

    let items = store.experiment_items(project, &limited).await.unwrap();

    assert_eq!(items.iter().map(key).collect::<Vec<_>>(), vec![group("item-3", None, Some("1"))]);
    let all = store.experiment_items(project, &query(None, None)).await.unwrap();
    assert!(all.iter().all(|item| item.item_id != "item-foreign"));
    let unknown = ExperimentItemsQuery { experiment_id: ExperimentId::parse("nope").unwrap(), ..query(None, None) };
    assert!(store.experiment_items(project, &unknown).await.unwrap().is_empty());
}

/// PostgreSQL's plan of `sql` run with `parameters` (SQL literals), sequential scans
/// priced out so that any index able to answer it is used.
async fn plan_of(app: &TestApp, sql: &str, parameters: &str) -> String {
    let mut connection = app.pool().acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off").execute(&mut *connection).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("PREPARE planned AS {sql}"))).execute(&mut *connection).await.unwrap();
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE planned({parameters})")))
        .fetch_all(&mut *connection)
        .await
        .unwrap();
    sqlx::query("DEALLOCATE planned").execute(&mut *connection).await.unwrap();
    sqlx::query("RESET enable_seqscan").execute(&mut *connection).await.unwrap();
    lines.join("\n")
}

/// The trace index leaves out results carrying neither `$ai_input` nor `$ai_output` (every
/// result the judges store): each statement that reads by trace or session must still be
/// one its partial index answers.
#[tokio::test]
async fn reads_by_trace_and_session_are_answered_by_their_partial_indexes() {
    use adapters_postgres::statements::{SESSION_EVENTS, TRACE_EVENTS, experiment_items_sql};
    let (app, store, project) = seeded().await;
    let plain_result = event(
        "$ai_evaluation",
        t(3),
        json!({"$ai_trace_id": "trace-1", "$ai_session_id": "session-1", "$ai_evaluation_result": true}),
    );
    let traced = event("$ai_generation", t(4), json!({"$ai_trace_id": "trace-1", "$ai_session_id": "session-1"}));
    store.store_events(project, &[plain_result, traced]).await.unwrap();
    let project = project.0;

    let items = plan_of(&app, experiment_items_sql(), &format!("{project}, 'exp-1', NULL, NULL, 100")).await;
    let trace = plan_of(&app, TRACE_EVENTS, &format!("{project}, 'trace-1', 100")).await;
    let session = plan_of(&app, SESSION_EVENTS, &format!("{project}, 'session-1', 100")).await;

    assert!(items.contains("trace_id_timestamp_idx"), "section 8's input and output by trace:\n{items}");
    assert!(trace.contains("trace_id_timestamp_idx"), "a trace's events:\n{trace}");
    assert!(session.contains("session_id_timestamp_idx"), "a session's events:\n{session}");
    for plan in [&items, &trace, &session] {
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}
