//! Spec section 9: the evaluation runner, end to end — generations sent with the real
//! posthog SDK judged by several server processes on one database through a fake OpenAI,
//! exact counts, trial credits and the hourly cap under concurrency, key rejection,
//! retries, manual runs, a replica killed mid-job, results broken down by a property,
//! and the summary reading judged results.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::wait_until;
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::evaluations::{create_evaluation, create_key, evaluation_body, evaluation_path, fetch, id_of};
use crate::helpers::*;
use crate::ingestion::{capture, run_sdk_script, sdk_event};

pub(crate) const COMPLETIONS: &str = "/openai/v1/chat/completions";
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// The system LLM on the fake OpenAI, fast retries.
pub const TRIAL_ENV: [(&str, &str); 4] = [
    ("LLMA_SYSTEM_LLM_PROVIDER", "openai"),
    ("LLMA_SYSTEM_LLM_API_KEY", "sk-operator-trial-key"),
    ("LLMA_SYSTEM_LLM_MODEL", "gpt-5-mini"),
    ("LLMA_JOB_RETRY_BASE_SECS", "0"),
];

/// An OpenAI chat completion whose content is the verdict.
pub(crate) fn verdict(pass: bool) -> Value {
    let answer = json!({"verdict": pass, "reasoning": if pass { "Polite." } else { "Rude." }, "applicable": true});
    json!({
        "id": "chatcmpl-judge",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 12, "total_tokens": 92}
    })
}

/// The fake OpenAI judges every request `pass`.
pub async fn judge_answers(app: &TestApp, pass: bool) {
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .and(body_string_contains("evaluation_verdict"))
        .respond_with(ResponseTemplate::new(200).set_body_json(verdict(pass)))
        .mount(&app.providers)
        .await;
}

pub(crate) async fn judge_requests(app: &TestApp) -> usize {
    fake::requests_to(&app.providers, COMPLETIONS)
        .await
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("evaluation_verdict"))
        .count()
}

/// An enabled evaluation judging with `configuration` (null: trial credits).
pub async fn enabled_evaluation(app: &TestApp, name: &str, configuration: Value, extra: Value) -> String {
    let mut body = evaluation_body(name);
    body["enabled"] = json!(true);
    body["output_type"] = json!("boolean_with_na");
    body["model_configuration"] = configuration;
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        body[key] = value;
    }
    id_of(&create_evaluation(app, body).await)
}

pub fn generation(properties: Value) -> Value {
    let mut all = json!({
        "$ai_model": "gpt-5-mini", "$ai_provider": "openai", "$ai_trace_id": format!("trace-{}", Uuid::now_v7()),
        "$ai_input": [{"role": "user", "content": "Say hello"}],
        "$ai_output_choices": [{"role": "assistant", "content": [{"type": "text", "text": "Hello, friend!"}]}],
    });
    for (key, value) in properties.as_object().cloned().unwrap_or_default() {
        all[key] = value;
    }
    sdk_event("$ai_generation", all)
}

pub(crate) async fn send(app: &TestApp, events: &[Value]) {
    capture(app, "/batch/", &json!({"api_key": app.project_token, "batch": events})).await.expect(200);
}

pub(crate) async fn scalar(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).bind(app.project).fetch_one(&app.db.pool).await.unwrap()
}

pub(crate) async fn results(app: &TestApp) -> i64 {
    scalar(app, "SELECT count(*) FROM ai_events WHERE project_id = $1 AND event = '$ai_evaluation'").await
}

pub(crate) async fn unfinished_jobs(app: &TestApp) -> i64 {
    scalar(app, "SELECT count(*) FROM jobs WHERE project_id = $1 AND state IN ('pending', 'running')").await
}

pub(crate) async fn wait_for_results(app: &TestApp, expected: i64) {
    wait_until(DEADLINE, || async { results(app).await >= expected }).await;
}

pub(crate) async fn wait_for_quiet(app: &TestApp) {
    wait_until(DEADLINE, || async { unfinished_jobs(app).await == 0 }).await;
}

/// Sends `count` generations through the posthog Python SDK (batched, gzip); returns
/// their uuids.
fn send_with_sdk(app: &TestApp, count: usize) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys, uuid
from posthog import Posthog

host, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
errors = []
client = Posthog(token, host=host, gzip=True, flush_at=10, on_error=lambda e, batch: errors.append(str(e)))
ids = []
for n in range(count):
    ids.append(str(uuid.uuid4()))
    client.capture(
        event="$ai_generation", distinct_id="sdk-user", uuid=ids[-1],
        properties={"$ai_trace_id": "sdk-trace-%d" % n, "$ai_model": "gpt-5-mini", "$ai_provider": "openai",
                    "$ai_input": [{"role": "user", "content": "Question %d" % n}],
                    "$ai_output_choices": [{"role": "assistant", "content": [{"type": "text", "text": "Answer %d" % n}]}]},
    )
"#;
    let ids = run_sdk_script(SCRIPT, &[&app.base_url, &app.project_token, &count.to_string()]);
    serde_json::from_value(ids).expect("the script prints the ids")
}

#[tokio::test]
async fn sdk_generations_are_judged_exactly_once_by_three_replicas() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    let _b = app.spawn_replica(&["--worker-only"]);
    let _c = app.spawn_replica(&["--worker-only"]);
    judge_answers(&app, true).await;
    let key = create_key(&app, "openai", "judge key").await;
    let evaluation = enabled_evaluation(
        &app,
        "Politeness",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({}),
    )
    .await;

    let ids = send_with_sdk(&app, 30);
    // The SDK's batches again, as a client retry would send them: nothing is added.
    let resent: Vec<Value> = ids
        .iter()
        .map(|id| {
            let mut event = generation(json!({}));
            event["uuid"] = json!(id);
            event
        })
        .collect();
    send(&app, &resent).await;

    wait_for_results(&app, 30).await;
    wait_for_quiet(&app).await;
    assert_eq!(results(&app).await, 30);
    let distinct_targets = scalar(
        &app,
        "SELECT count(DISTINCT target_event_id) FROM ai_events WHERE project_id = $1 AND event = '$ai_evaluation'",
    )
    .await;
    assert_eq!(distinct_targets, 30, "one result per generation");
    assert_eq!(judge_requests(&app).await, 30, "one LLM call per generation");
    assert_eq!(scalar(&app, "SELECT count(*) FROM jobs WHERE project_id = $1 AND state = 'done'").await, 30);
    assert_eq!(scalar(&app, "SELECT count(*) FROM llm_calls WHERE project_id = $1 AND purpose = 'judge'").await, 30);

    // The stored results read like ingested ones: the runs list, the key, its last use.
    let runs = app
        .get(&format!("/api/environments/{}/evaluation_runs/?evaluation_id={evaluation}&limit=5", app.project))
        .await;
    let runs = runs.expect(200).json();
    assert_eq!(runs["count"], 30);
    let first = &runs["results"][0];
    assert_eq!((first["result"].clone(), first["key_type"].clone()), (json!(true), json!("byok")));
    assert_eq!(first["key_id"], json!(key));
    assert_eq!(first["evaluation_name"], "Politeness");
    assert!(ids.contains(&first["generation_id"].as_str().unwrap().to_owned()));
    let key_json = app.get(&app.llma(&format!("provider_keys/{key}/"))).await.expect(200).json();
    assert!(!key_json["last_used_at"].is_null());

    // The judge saw the SDK's content-part output as text.
    let requests = fake::requests_to(&app.providers, COMPLETIONS).await;
    let body = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(body.contains("assistant: Answer "), "{body}");
}

#[tokio::test]
async fn trial_credits_stop_exactly_at_the_limit_across_replicas() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    let _b = app.spawn_replica(&["--worker-only"]);
    let _c = app.spawn_replica(&["--worker-only"]);
    judge_answers(&app, true).await;
    sqlx::query("INSERT INTO evaluation_configs (project_id, trial_eval_limit) VALUES ($1, 5)")
        .bind(app.project)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let evaluation = enabled_evaluation(&app, "On trial", Value::Null, json!({})).await;

    let events: Vec<Value> = (0..12).map(|_| generation(json!({}))).collect();
    send(&app, &events[..6]).await;
    send(&app, &events[6..]).await;
    wait_for_quiet(&app).await;

    assert_eq!(results(&app).await, 5);
    assert_eq!(judge_requests(&app).await, 5, "no trial call past the limit");
    let config = app.get(&app.llma("evaluation_config/")).await.expect(200).json();
    assert_eq!((config["trial_evals_used"].clone(), config["trial_limit_reached"].clone()), (json!(5), json!(true)));
    let stopped = fetch(&app, &evaluation).await;
    assert_eq!(
        (stopped["status"].clone(), stopped["status_reason"].clone()),
        (json!("error"), json!("trial_limit_reached"))
    );
    assert_eq!(stopped["enabled"], false);
    let runs = app.get(&format!("/api/environments/{}/evaluation_runs/", app.project)).await.expect(200).json();
    assert!(runs["results"].as_array().unwrap().iter().all(|r| r["key_type"] == "posthog" && r["key_id"].is_null()));
}

#[tokio::test]
async fn the_hourly_cap_queues_exactly_its_size_and_counts_the_rest() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    judge_answers(&app, true).await;
    let key = create_key(&app, "openai", "judge key").await;
    let evaluation = enabled_evaluation(
        &app,
        "Capped",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({"max_runs_per_hour": 4}),
    )
    .await;
    assert_eq!(fetch(&app, &evaluation).await["max_runs_per_hour"], 4);

    // Two API processes take the batches at once: the cap holds across replicas.
    let replica = app.spawn_replica(&[]);
    let hosts = [app.base_url.clone(), replica.base_url.clone().expect("the replica serves the API")];
    let batches: Vec<_> = (0..6)
        .map(|n| {
            let events: Vec<Value> = (0..2).map(|_| generation(json!({}))).collect();
            let body = json!({"api_key": app.project_token, "batch": events});
            let request = app.client.post(format!("{}/batch/", hosts[n % 2])).json(&body);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    for batch in batches {
        assert_eq!(batch.await.unwrap(), 200);
    }
    wait_for_quiet(&app).await;

    assert_eq!(results(&app).await, 4);
    let report =
        app.get(&app.llma(&format!("evaluation_results/?evaluation_id={evaluation}"))).await.expect(200).json();
    assert_eq!(report["totals"]["runs"], 4);
    assert_eq!(report["totals"]["skipped_by_cap"], 8);

    let reply =
        app.patch(&evaluation_path(&app, &evaluation), json!({"max_runs_per_hour": 0})).await.expect(400).json();
    assert_eq!(reply["attr"], "max_runs_per_hour");
    let cleared = app.patch(&evaluation_path(&app, &evaluation), json!({"max_runs_per_hour": null})).await;
    assert_eq!(cleared.expect(200).json()["max_runs_per_hour"], Value::Null);
}

#[tokio::test]
async fn a_rejected_key_turns_invalid_stops_its_evaluations_and_assign_brings_them_back() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}),
        ))
        .mount(&app.providers)
        .await;
    let key = create_key(&app, "openai", "revoked upstream").await;
    let configuration = json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key});
    let evaluation = enabled_evaluation(&app, "Uses the key", configuration, json!({})).await;

    send(&app, &[generation(json!({}))]).await;
    wait_for_quiet(&app).await;

    assert_eq!(results(&app).await, 0, "no result is stored");
    assert_eq!(judge_requests(&app).await, 1, "a rejected key is not retried");
    let stored_key = app.get(&app.llma(&format!("provider_keys/{key}/"))).await.expect(200).json();
    assert_eq!(stored_key["state"], "invalid");
    let stopped = fetch(&app, &evaluation).await;
    assert_eq!(
        (stopped["status"].clone(), stopped["status_reason"].clone()),
        (json!("error"), json!("provider_key_invalid"))
    );
    let error: String = sqlx::query_scalar("SELECT last_error FROM jobs WHERE project_id = $1")
        .bind(app.project)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(error.contains("rejected"), "{error}");

    let replacement = create_key(&app, "openai", "new key").await;
    let assigned = app
        .post(
            &app.llma(&format!("provider_keys/{replacement}/assign/")),
            json!({"evaluation_ids": [evaluation], "enable": true}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(assigned["evals_enabled"], 1);
    let back = fetch(&app, &evaluation).await;
    assert_eq!((back["status"].clone(), back["enabled"].clone()), (json!("active"), json!(true)));
}

#[tokio::test]
async fn rate_limits_are_retried_with_backoff_then_the_job_fails_with_its_reason() {
    let app =
        TestApp::spawn_with(&[TRIAL_ENV[0], TRIAL_ENV[1], TRIAL_ENV[2], TRIAL_ENV[3], ("LLMA_LLM_TIMEOUT_SECS", "5")])
            .await;
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"error": {"message": "slow down"}})),
        )
        .mount(&app.providers)
        .await;
    let key = create_key(&app, "openai", "busy").await;
    enabled_evaluation(
        &app,
        "Busy",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({}),
    )
    .await;

    send(&app, &[generation(json!({}))]).await;
    wait_until(DEADLINE, || async {
        scalar(&app, "SELECT count(*) FROM jobs WHERE project_id = $1 AND state = 'failed'").await == 1
    })
    .await;

    let (attempts, error): (i32, String) =
        sqlx::query_as("SELECT attempts, last_error FROM jobs WHERE project_id = $1")
            .bind(app.project)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 3);
    assert!(error.contains("rate-limited") && error.contains("after 3 attempts"), "{error}");
    assert_eq!(results(&app).await, 0);
    let key_json = app.get(&app.llma(&format!("provider_keys/{key}/"))).await.expect(200).json();
    assert_eq!(key_json["state"], "ok", "a busy provider does not invalidate the key");
    assert!(app.logs().contains("job failed"));
}

#[tokio::test]
async fn manual_runs_judge_again_every_time_and_keep_the_references_shapes() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    judge_answers(&app, false).await;
    let key = create_key(&app, "openai", "judge key").await;
    // Disabled, and its condition never matches: only manual runs judge with it.
    let mut body = evaluation_body("Manual only");
    body["model_configuration"] = json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key});
    body["conditions"] = json!([{"properties": [{"key": "never", "operator": "exact", "value": "x"}]}]);
    let evaluation = id_of(&create_evaluation(&app, body).await);
    let target = generation(json!({}));
    send(&app, std::slice::from_ref(&target)).await;
    let target_id = target["uuid"].as_str().unwrap().to_owned();
    let runs_path = format!("/api/environments/{}/evaluation_runs/", app.project);

    let body = json!({"evaluation_id": evaluation, "target_event_id": target_id, "timestamp": target["timestamp"],
                      "event": "$ai_generation", "distinct_id": "user-1"});
    let started = app.post(&runs_path, body.clone()).await.expect(202).json();
    assert_eq!(started["status"], "started");
    assert_eq!(started["evaluation"], json!({"id": evaluation, "name": "Manual only"}));
    assert_eq!(started["target_event_id"], json!(target_id));
    assert!(started["workflow_id"].as_str().unwrap().parse::<Uuid>().is_ok());
    app.post(&runs_path, json!({"evaluation_id": evaluation, "target_event_id": target_id})).await.expect(202);
    wait_for_results(&app, 2).await;
    wait_for_quiet(&app).await;

    let listed = app.get(&format!("{runs_path}?generation_id={target_id}")).await.expect(200).json();
    assert_eq!(listed["count"], 2, "a manual run is a new judgement every time");
    for run in listed["results"].as_array().unwrap() {
        assert_eq!((run["manual"].clone(), run["result"].clone()), (json!(true), json!(false)));
    }

    let bad = app.post(&runs_path, json!({"target_event_id": target_id})).await.expect(400).json();
    assert!(bad["error"]["evaluation_id"][0].as_str().unwrap().contains("required"), "{bad}");
    let bad =
        app.post(&runs_path, json!({"evaluation_id": evaluation, "target_event_id": "nope"})).await.expect(400).json();
    assert!(bad["error"]["target_event_id"].is_array(), "{bad}");
    let unknown = Uuid::now_v7();
    let missing =
        app.post(&runs_path, json!({"evaluation_id": unknown, "target_event_id": target_id})).await.expect(404);
    assert_eq!(missing.json(), json!({"error": format!("Evaluation {unknown} not found")}));
    let missing =
        app.post(&runs_path, json!({"evaluation_id": evaluation, "target_event_id": unknown})).await.expect(404);
    assert_eq!(missing.json(), json!({"error": format!("Event {unknown} not found")}));
    let elsewhere = json!({"evaluation_id": evaluation, "target_event_id": target_id, "timestamp": "2020-01-01"});
    app.post(&runs_path, elsewhere).await.expect(404);

    let reader = app.user_with_key("reader@example.com", Some((app.project, "member")), "evaluation:read", None);
    let denied = app.request(reqwest::Method::POST, &runs_path, Some(&reader), Some(body)).await;
    assert_eq!(denied.status.as_u16(), 403);
    app.request(reqwest::Method::GET, &runs_path, Some(&reader), None).await.expect(200);
    let (other, other_key) = crate::evaluations::other_project(&app);
    let foreign = format!("/api/environments/{other}/evaluation_runs/");
    let foreign_list = app.request(reqwest::Method::GET, &foreign, Some(&other_key), None).await.expect(200).json();
    assert_eq!(foreign_list["count"], 0, "another project sees none of these runs");
    let cross = json!({"evaluation_id": evaluation, "target_event_id": target_id});
    app.request(reqwest::Method::POST, &foreign, Some(&other_key), Some(cross)).await.expect(404);
}

/// An API-only app (its workers are replicas the test starts and kills) with 3 s leases,
/// whose fake OpenAI hangs on the first judge call (its replica dies during it) and
/// answers the later ones at once.
pub(crate) async fn app_whose_first_judge_call_hangs() -> TestApp {
    let app = TestApp::spawn_api_only(&[
        TRIAL_ENV[0],
        TRIAL_ENV[1],
        TRIAL_ENV[2],
        TRIAL_ENV[3],
        ("LLMA_JOB_LEASE_SECS", "3"),
    ])
    .await;
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(ResponseTemplate::new(200).set_body_json(verdict(true)).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.providers)
        .await;
    judge_answers(&app, true).await;
    app
}

#[tokio::test]
async fn a_job_whose_replica_is_killed_is_taken_over_when_its_lease_lapses() {
    let app = app_whose_first_judge_call_hangs().await;
    let key = create_key(&app, "openai", "judge key").await;
    enabled_evaluation(
        &app,
        "Survives",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({}),
    )
    .await;

    let mut doomed = app.spawn_replica(&["--worker-only"]);
    send(&app, &[generation(json!({}))]).await;
    wait_until(DEADLINE, || async { judge_requests(&app).await == 1 }).await;
    doomed.kill();
    assert_eq!(results(&app).await, 0);

    let _survivor = app.spawn_replica(&["--worker-only"]);
    wait_for_results(&app, 1).await;
    wait_for_quiet(&app).await;
    assert_eq!(results(&app).await, 1, "judged once");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE project_id = $1")
        .bind(app.project)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "the lapsed lease was taken over");
}

#[tokio::test]
async fn results_break_down_by_a_generation_property_and_the_summary_reads_them() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    // Prompt B's answers fail; everything else passes.
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .and(body_string_contains("evaluation_verdict"))
        .and(body_string_contains("variant B"))
        .respond_with(ResponseTemplate::new(200).set_body_json(verdict(false)))
        .with_priority(1)
        .mount(&app.providers)
        .await;
    judge_answers(&app, true).await;
    let key = create_key(&app, "openai", "judge key").await;
    let evaluation = enabled_evaluation(
        &app,
        "A vs B",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({}),
    )
    .await;
    let variant = |name: &str, version: &str| {
        generation(json!({
            "prompt_version": version,
            "$ai_output_choices": [{"role": "assistant", "content": format!("Reply from variant {name}")}],
        }))
    };
    let mut events: Vec<Value> = (0..3).map(|_| variant("A", "a")).collect();
    events.extend((0..2).map(|_| variant("B", "b")));
    events.push(generation(json!({})));
    send(&app, &events).await;
    wait_for_results(&app, 6).await;
    wait_for_quiet(&app).await;

    let report = app
        .get(
            &app.llma(&format!(
                "evaluation_results/?evaluation_id={evaluation}&breakdown=prompt_version&interval=hour"
            )),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(report["totals"]["runs"], 6);
    assert_eq!(report["totals"]["pass_count"], 4);
    assert_eq!(report["totals"]["pass_rate"], 66.67);
    let values = report["breakdown_values"].as_array().unwrap();
    assert_eq!(values.len(), 3, "{report}");
    assert_eq!((values[0]["value"].clone(), values[0]["pass_rate"].clone()), (json!("a"), json!(100.0)));
    assert_eq!((values[1]["value"].clone(), values[1]["pass_rate"].clone()), (json!("b"), json!(0.0)));
    assert_eq!((values[2]["value"].clone(), values[2]["runs"].clone()), (Value::Null, json!(1)));
    assert_eq!(report["trend"].as_array().unwrap().len(), 3);

    let bad = app.get(&app.llma(&format!("evaluation_results/?evaluation_id={evaluation}&interval=month"))).await;
    assert_eq!(bad.expect(400).json()["attr"], "interval");
    let wide = format!("evaluation_results/?evaluation_id={evaluation}&date_from=2024-01-01&interval=hour");
    assert!(
        app.get(&app.llma(&wide)).await.expect(400).json()["detail"].as_str().unwrap().contains("Too many buckets")
    );
    app.get(&app.llma("evaluation_results/")).await.expect(400);
    app.get(&app.llma(&format!("evaluation_results/?evaluation_id={}", Uuid::now_v7()))).await.expect(404);

    // The summary reads the judged results without a special case.
    let summary_answer = json!({
        "overall_assessment": "Variant B is curt.",
        "pass_patterns": [], "fail_patterns": [], "na_patterns": [],
        "recommendations": ["Use variant A"]
    });
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": summary_answer.to_string()}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10}
        })))
        .mount(&app.providers)
        .await;
    let summary =
        app.post(&app.llma("evaluation_summary/"), json!({"evaluation_id": evaluation})).await.expect(200).json();
    assert_eq!(summary["statistics"]["total_analyzed"], 6);
    assert_eq!(summary["statistics"]["fail_count"], 2);
}

#[tokio::test]
async fn sigterm_stops_the_worker_with_the_server() {
    let mut app = TestApp::spawn_with(&TRIAL_ENV).await;
    let mut worker = app.spawn_replica(&["--worker-only"]);
    assert!(worker.terminate().success(), "a worker-only process exits cleanly on SIGTERM");
    assert!(app.terminate().success());
    // The log reader threads may still be draining the processes' last lines.
    wait_until(DEADLINE, || async { app.logs().matches("worker stopped").count() == 2 }).await;
}

#[tokio::test]
async fn nothing_is_lost_when_the_database_drops_every_connection_mid_run() {
    let app =
        TestApp::spawn_with(&[TRIAL_ENV[0], TRIAL_ENV[1], TRIAL_ENV[2], TRIAL_ENV[3], ("LLMA_JOB_LEASE_SECS", "3")])
            .await;
    // Slow enough answers that jobs are in flight when the connections go.
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .and(body_string_contains("evaluation_verdict"))
        .respond_with(ResponseTemplate::new(200).set_body_json(verdict(true)).set_delay(Duration::from_millis(300)))
        .mount(&app.providers)
        .await;
    let key = create_key(&app, "openai", "judge key").await;
    enabled_evaluation(
        &app,
        "Resilient",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({}),
    )
    .await;
    let events: Vec<Value> = (0..20).map(|_| generation(json!({}))).collect();
    send(&app, &events).await;
    wait_until(DEADLINE, || async { judge_requests(&app).await >= 1 }).await;

    // What a PostgreSQL restart looks like to the service: every connection dropped.
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(!dropped.is_empty(), "the server had connections to drop");

    wait_for_results(&app, 20).await;
    wait_for_quiet(&app).await;
    assert_eq!(results(&app).await, 20, "every generation judged, none twice");
    let distinct = scalar(
        &app,
        "SELECT count(DISTINCT target_event_id) FROM ai_events WHERE project_id = $1 AND event = '$ai_evaluation'",
    )
    .await;
    assert_eq!(distinct, 20);
    assert_eq!(scalar(&app, "SELECT count(*) FROM jobs WHERE project_id = $1 AND state = 'done'").await, 20);
}

#[tokio::test]
async fn the_openapi_document_and_scopes_cover_runs_and_results() {
    let app = TestApp::spawn().await;
    let schema = app.request(reqwest::Method::GET, "/api/schema/", None, None).await.expect(200).json();
    let paths = schema["paths"].as_object().unwrap();
    let runs = paths.get("/api/environments/{project_id}/evaluation_runs/").expect("evaluation_runs is documented");
    assert!(runs.get("get").is_some() && runs.get("post").is_some());
    assert!(paths.contains_key("/api/environments/{project_id}/llm_analytics/evaluation_results/"));
    assert!(schema["components"]["schemas"]["EvaluationDto"]["properties"].get("max_runs_per_hour").is_some());

    let evaluation = id_of(&create_evaluation(&app, evaluation_body("Scoped")).await);
    let results = app.llma(&format!("evaluation_results/?evaluation_id={evaluation}"));
    let judge_only = app.user_with_key("judge@example.com", Some((app.project, "member")), "evaluation:write", None);
    let denied = app.request(reqwest::Method::GET, &results, Some(&judge_only), None).await;
    assert_eq!(denied.status.as_u16(), 403, "{}", denied.text);
    let analyst = app.user_with_key("analyst@example.com", Some((app.project, "member")), "llm_analytics:read", None);
    let report = app.request(reqwest::Method::GET, &results, Some(&analyst), None).await.expect(200).json();
    assert_eq!(report["totals"]["runs"], 0);
    assert_eq!(report["interval"], "day");
    let runs_path = format!("/api/environments/{}/evaluation_runs/", app.project);
    let denied = app.request(reqwest::Method::GET, &runs_path, Some(&analyst), None).await;
    assert_eq!(denied.status.as_u16(), 403, "evaluation_runs needs evaluation:read");
    app.request(reqwest::Method::GET, &runs_path, None, None).await.expect(401);
}

#[tokio::test]
async fn housekeeping_sweeps_run_as_jobs_one_per_period_across_replicas() {
    let app = TestApp::spawn_with(&[("LLMA_HOUSEKEEPING_INTERVAL_SECS", "1")]).await;
    let _replica = app.spawn_replica(&["--worker-only"]);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO jobs (id, project_id, kind, payload, state, finished_at)
             VALUES (gen_random_uuid(), {0}, 'judge', '{{}}', 'done', now() - interval '30 days');
         INSERT INTO summary_flights (project_id, cache_key, locked_until)
             VALUES ({0}, 'crashed-leader', now() - interval '1 hour');",
        app.project
    )))
    .execute(&app.db.pool)
    .await
    .unwrap();

    wait_until(DEADLINE, || async {
        let old: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE finished_at < now() - interval '7 days'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        let flights: i64 =
            sqlx::query_scalar("SELECT count(*) FROM summary_flights").fetch_one(&app.db.pool).await.unwrap();
        old == 0 && flights == 0
    })
    .await;
    let (sweeps, periods): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT unique_key) FROM jobs WHERE kind = 'housekeeping' AND state = 'done'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(sweeps >= 1);
    assert_eq!(sweeps, periods, "two processes, one sweep per period");
}
