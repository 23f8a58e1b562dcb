//! Spec section 8: `offline_evaluations/experiment_items/`, on events ingested through
//! the capture endpoint.

use chrono::{DateTime, Duration, DurationRound, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::ingestion::capture;

const PATH: &str = "offline_evaluations/experiment_items/";

/// A fixed instant two days ago (whole seconds), so every event is in range.
fn base() -> DateTime<Utc> {
    (Utc::now() - Duration::days(2)).duration_trunc(Duration::seconds(1)).unwrap()
}

fn iso(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339()
}

/// An `$ai_evaluation` of `experiment`/`item` (metric accuracy v1 unless overridden) at
/// `at`, with `extra` properties on top.
fn evaluation(at: DateTime<Utc>, experiment: &str, item: &str, extra: Value) -> Value {
    let properties = test_support::experiment_result_properties(experiment, item, &extra);
    json!({
        "event": "$ai_evaluation",
        "distinct_id": "runner",
        "uuid": uuid::Uuid::now_v7().to_string(),
        "timestamp": iso(at),
        "properties": properties,
    })
}

/// Ingests the known data set of these tests; returns its base time.
async fn seed(app: &TestApp) -> DateTime<Utc> {
    let t = base();
    let m = Duration::minutes;
    let batch = vec![
        evaluation(
            t,
            "exp-1",
            "item-1",
            json!({"$ai_score": 0.5, "$ai_reasoning": "first try",
            "$ai_trace_id": "trace-1", "$ai_input": "old question", "$ai_expected": "42", "$ai_dataset_item_id": "row-1"}),
        ),
        evaluation(
            t + m(10),
            "exp-1",
            "item-1",
            json!({"$ai_score": 0.9, "$ai_trace_id": "trace-1",
            "$ai_input": "new question", "$ai_output": "new answer"}),
        ),
        evaluation(
            t + m(20),
            "exp-1",
            "item-2",
            json!({"$ai_score": 0.1, "$ai_trace_id": "trace-2", "$ai_status": "error"}),
        ),
        // another experiment's evaluation of trace-2 supplies item-2's input and output
        evaluation(
            t + m(15),
            "exp-other",
            "item-9",
            json!({"$ai_trace_id": "trace-2",
            "$ai_input": "from the trace", "$ai_output": "answer from the trace"}),
        ),
        evaluation(
            t + m(30),
            "exp-1",
            "item-3",
            json!({"$ai_metric_name": "fluency", "$ai_metric_version": 2,
            "$ai_score": 0.7}),
        ),
        // a generation of trace-1 inside the span is not an evaluation: not an input source
        json!({"event": "$ai_generation", "distinct_id": "runner", "timestamp": iso(t + m(12)),
            "properties": {"$ai_trace_id": "trace-1", "$ai_input": "generation input"}}),
    ];
    capture(app, "/batch/", &json!({"api_key": app.project_token, "batch": batch})).await.expect(200);
    t
}

async fn items(app: &TestApp, body: Value) -> Vec<Vec<Value>> {
    let reply = app.post(&app.llma(PATH), body).await.expect(200).json();
    serde_json::from_value(reply["results"].clone()).unwrap_or_else(|e| panic!("results are rows ({e}): {reply}"))
}

fn last_seen(row: &[Value]) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(row[17].as_str().unwrap()).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn experiment_items_need_llm_analytics_read() {
    let app = TestApp::spawn().await;
    let body = json!({"experiment_id": "exp-1"});
    app.request(Method::POST, &app.llma(PATH), None, Some(body.clone())).await.expect(401);
    let evaluator = app.user_with_key("evaluator@example.com", Some((app.project, "member")), "evaluation:read", None);
    let reply = app.request(Method::POST, &app.llma(PATH), Some(&evaluator), Some(body.clone())).await.expect(403);
    assert!(reply.json()["detail"].as_str().unwrap().contains("llm_analytics:read"));
    let reader = app.user_with_key("reader@example.com", Some((app.project, "member")), "llm_analytics:read", None);
    app.request(Method::POST, &app.llma("offline_evaluations/experiment_items"), Some(&reader), Some(body.clone()))
        .await
        .expect(200);
    let writer = app.user_with_key("writer@example.com", Some((app.project, "member")), "llm_analytics:write", None);
    app.request(Method::POST, &app.llma(PATH), Some(&writer), Some(body)).await.expect(200);
}

#[tokio::test]
async fn experiment_id_is_required_and_not_blank() {
    let app = TestApp::spawn().await;
    for body in
        [json!({}), json!({"experiment_id": "   "}), json!({"experiment_id": null}), json!({"experiment_id": ["x"]})]
    {
        let reply = app.post(&app.llma(PATH), body.clone()).await.expect(400).json();
        assert_eq!(reply["attr"], "experiment_id", "{body}: {reply}");
        assert_eq!(reply["type"], "validation_error");
    }
}

#[tokio::test]
async fn bad_dates_are_400_and_empty_ones_are_no_bound() {
    let app = TestApp::spawn().await;
    let reply = app.post(&app.llma(PATH), json!({"experiment_id": "e", "date_from": "last week"})).await;
    assert_eq!(reply.expect(400).json()["attr"], "date_from");
    let reply = app.post(&app.llma(PATH), json!({"experiment_id": "e", "date_to": 5})).await;
    assert_eq!(reply.expect(400).json()["attr"], "date_to");
    app.post(&app.llma(PATH), json!({"experiment_id": "e", "date_from": "", "date_to": null})).await.expect(200);
}

#[tokio::test]
async fn an_experiment_without_events_is_an_empty_list() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let reply = app.post(&app.llma(PATH), json!({"experiment_id": "no-such-experiment"})).await.expect(200);
    assert_eq!(reply.json(), json!({"results": []}));
}

#[tokio::test]
async fn items_are_grouped_with_their_latest_values_newest_first() {
    let app = TestApp::spawn().await;
    let t = seed(&app).await;

    let rows = items(&app, json!({"experiment_id": "exp-1"})).await;

    let keys: Vec<(&str, &str, &str)> =
        rows.iter().map(|r| (r[0].as_str().unwrap(), r[3].as_str().unwrap(), r[4].as_str().unwrap())).collect();
    assert_eq!(keys, [("item-3", "fluency", "2"), ("item-2", "accuracy", "1"), ("item-1", "accuracy", "1")]);
    assert!(rows.iter().all(|r| r.len() == 18));
    let item1 = &rows[2];
    assert_eq!(
        item1[..17],
        [
            json!("item-1"),
            json!("case item-1"),
            json!("Support bot regression"),
            json!("accuracy"),
            json!("1"),
            json!("ok"),
            json!(0.9),
            json!(0),
            json!(1),
            json!("numeric"),
            json!("first try"), // the latest run had no reasoning: the latest non-null one
            json!("trace-1"),
            json!("dataset-1"),
            json!("row-1"),
            json!("new question"), // the trace's latest evaluation input, not the generation's
            json!("new answer"),
            json!("42"),
        ]
    );
    assert_eq!(last_seen(item1), t + Duration::minutes(10));
    let item3 = &rows[0];
    assert_eq!((item3[6].clone(), item3[11].clone(), item3[14].clone()), (json!(0.7), Value::Null, Value::Null));
}

#[tokio::test]
async fn input_and_output_come_from_the_trace() {
    let app = TestApp::spawn().await;
    seed(&app).await;

    let rows = items(&app, json!({"experiment_id": "exp-1"})).await;

    let item2 = rows.iter().find(|r| r[0] == "item-2").unwrap();
    assert_eq!(item2[5], "error");
    assert_eq!(item2[11], "trace-2");
    assert_eq!((item2[14].clone(), item2[15].clone()), (json!("from the trace"), json!("answer from the trace")));
}

#[tokio::test]
async fn structured_input_and_output_are_columns_of_json_text_as_the_reference_sends_them() {
    let app = TestApp::spawn().await;
    let messages = json!([{"role": "user", "content": "hi"}]);
    let answer = json!([{"role": "assistant", "content": "hi"}]);
    let run = evaluation(
        base(),
        "exp-json",
        "item-1",
        json!({"$ai_trace_id": "trace-json", "$ai_score": 1, "$ai_input": messages, "$ai_output": answer}),
    );
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [run]})).await.expect(200);

    let rows = items(&app, json!({"experiment_id": "exp-json"})).await;

    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][14], json!(r#"[{"content":"hi","role":"user"}]"#), "a string holding the JSON");
    assert_eq!(rows[0][15], json!(r#"[{"content":"hi","role":"assistant"}]"#));
    let parsed: Value = serde_json::from_str(rows[0][14].as_str().unwrap()).unwrap();
    assert_eq!(parsed, messages);
}

#[tokio::test]
async fn date_bounds_narrow_the_items_and_their_values() {
    let app = TestApp::spawn().await;
    let t = seed(&app).await;
    let m = Duration::minutes;

    let rows =
        items(&app, json!({"experiment_id": "exp-1", "date_from": iso(t + m(5)), "date_to": iso(t + m(20))})).await;

    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(ids, ["item-2", "item-1"]);
    assert_eq!(rows[1][10], Value::Null, "the reasoning was only in the run before date_from");
    assert_eq!(rows[1][6], json!(0.9));

    let day_before = (t - Duration::days(1)).format("%Y-%m-%d").to_string();
    assert!(items(&app, json!({"experiment_id": "exp-1", "date_to": day_before})).await.is_empty());
    let inclusive = items(&app, json!({"experiment_id": "exp-1", "date_from": iso(t + m(30))})).await;
    assert_eq!(inclusive.len(), 1, "date_from is inclusive");
}

#[tokio::test]
async fn another_projects_events_are_invisible() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let other = app.cli(&["admin", "create-project", "--name", "Other"]);
    let foreign = evaluation(base(), "exp-1", "item-foreign", json!({"$ai_score": 1}));
    capture(&app, "/batch/", &json!({"api_key": other["api_token"], "batch": [foreign]})).await.expect(200);

    let rows = items(&app, json!({"experiment_id": "exp-1"})).await;

    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r[0] != "item-foreign"));
}

#[tokio::test]
async fn a_storage_failure_is_500_in_the_references_shape() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    sqlx::query("ALTER TABLE ai_events RENAME COLUMN experiment_item_id TO broken")
        .execute(&app.db.pool)
        .await
        .unwrap();

    let reply = app.post(&app.llma(PATH), json!({"experiment_id": "exp-1"})).await.expect(500);

    assert_eq!(reply.json(), json!({"error": "Failed to fetch offline evaluation items"}));
    assert!(reply.headers.contains_key("x-request-id"));
    assert!(!reply.text.contains("broken"));
}
