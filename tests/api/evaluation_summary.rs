//! Spec section 6: `evaluation_summary/` against a fake OpenAI speaking chat/completions —
//! body rules, 404s, run selection, the LLM order of section 11, statistics and id
//! checks, failures, map-reduce within the prompt budget, the cache and its single
//! flight, the rate limit, and `llm_calls`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::evaluations::{
    configuration, create_evaluation, create_evaluation_with, create_key, evaluation_body, id_of,
};
use crate::helpers::*;
use crate::ingestion::{capture, sdk_event};

const COMPLETIONS: &str = "/openai/v1/chat/completions";

fn summary_path(app: &TestApp) -> String {
    app.llma("evaluation_summary/")
}

async fn summarize(app: &TestApp, body: Value) -> Reply {
    app.post(&summary_path(app), body).await
}

/// An OpenAI chat completion whose content is `answer` as a JSON string.
fn chat(answer: &Value) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.to_string()},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    })
}

/// A model answer citing `ids` in one pass pattern.
fn answer(ids: &[&str]) -> Value {
    json!({
        "overall_assessment": "Mostly polite.",
        "pass_patterns": [{"title": "Greets", "description": "Says hello", "frequency": "common",
                           "example_generation_ids": ids}],
        "fail_patterns": [],
        "na_patterns": [],
        "recommendations": ["Be kind", "Say thanks"],
        "statistics": {"total_analyzed": 999, "pass_count": 999, "fail_count": 0, "na_count": 0}
    })
}

/// The fake OpenAI answers every chat completion with `answer`.
async fn llm_answers(app: &TestApp, answer: &Value) {
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat(answer)))
        .mount(&app.providers)
        .await;
}

async fn llm_requests(app: &TestApp) -> Vec<wiremock::Request> {
    fake::requests_to(&app.providers, COMPLETIONS).await
}

fn bearer_of(request: &wiremock::Request) -> String {
    request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

fn body_of(request: &wiremock::Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON request body")
}

/// The characters of every message of a chat request.
fn prompt_chars(request: &wiremock::Request) -> usize {
    body_of(request)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or("").chars().count())
        .sum()
}

/// One run: `verdict` is pass | fail | na.
fn run_event(evaluation: &str, target: &str, verdict: &str, reasoning: &str) -> Value {
    let mut properties = json!({
        "$ai_evaluation_id": evaluation,
        "$ai_target_event_id": target,
        "$ai_evaluation_reasoning": reasoning,
    });
    match verdict {
        "pass" => properties["$ai_evaluation_result"] = json!(true),
        "fail" => properties["$ai_evaluation_result"] = json!(false),
        _ => properties["$ai_evaluation_applicable"] = json!(false),
    }
    sdk_event("$ai_evaluation", properties)
}

/// Ingests runs of `evaluation` through `/batch/`; returns their target generation ids.
async fn ingest_runs(app: &TestApp, evaluation: &str, verdicts: &[&str], reasoning: &str) -> Vec<String> {
    let targets: Vec<String> = verdicts.iter().map(|_| Uuid::now_v7().to_string()).collect();
    let batch: Vec<Value> =
        verdicts.iter().zip(&targets).map(|(v, t)| run_event(evaluation, t, v, reasoning)).collect();
    capture(app, "/batch/", &json!({"api_key": app.project_token, "batch": batch})).await.expect(200);
    targets
}

/// An evaluation without model configuration and its runs (3 pass, 2 fail, 1 na).
async fn evaluation_with_runs(app: &TestApp) -> (String, Vec<String>) {
    let evaluation = id_of(&create_evaluation(app, evaluation_body("Politeness")).await);
    let targets = ingest_runs(app, &evaluation, &["pass", "pass", "pass", "fail", "fail", "na"], "because").await;
    (evaluation, targets)
}

async fn spawn_with_system_llm(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("LLMA_SYSTEM_LLM_PROVIDER", "openai"),
        ("LLMA_SYSTEM_LLM_API_KEY", "sk-system-key"),
        ("LLMA_SYSTEM_LLM_MODEL", "system-model"),
    ];
    env.extend_from_slice(extra);
    TestApp::spawn_with(&env).await
}

#[tokio::test]
async fn the_body_is_validated_and_names_the_field() {
    let app = spawn_with_system_llm(&[]).await;
    let (evaluation, _) = evaluation_with_runs(&app).await;
    let cases = [
        (json!({}), "evaluation_id"),
        (json!({"evaluation_id": "not-a-uuid"}), "evaluation_id"),
        (json!({"evaluation_id": evaluation, "filter": "maybe"}), "filter"),
        (json!({"evaluation_id": evaluation, "generation_ids": ["nope"]}), "generation_ids"),
        (
            json!({"evaluation_id": evaluation, "generation_ids": (0..251).map(|_| Uuid::now_v7().to_string()).collect::<Vec<_>>()}),
            "generation_ids",
        ),
        (json!({"evaluation_id": evaluation, "force_refresh": "yes"}), "force_refresh"),
    ];
    for (body, field) in cases {
        let reply = summarize(&app, body.clone()).await.expect(400);
        assert_eq!(reply.json()["attr"], field, "{body}: {}", reply.text);
    }
    assert!(llm_requests(&app).await.is_empty());
}

#[tokio::test]
async fn unknown_other_projects_and_deleted_evaluations_are_404_in_the_references_shape() {
    let app = spawn_with_system_llm(&[]).await;
    let unknown = Uuid::now_v7().to_string();
    let reply = summarize(&app, json!({"evaluation_id": unknown})).await.expect(404);
    assert_eq!(reply.json(), json!({"error": format!("Evaluation {unknown} not found")}));

    let (other, other_key) = crate::evaluations::other_project(&app);
    let theirs = app
        .request(
            Method::POST,
            &format!("/api/environments/{other}/evaluations/"),
            Some(&other_key),
            Some(evaluation_body("Theirs")),
        )
        .await
        .expect(201)
        .json();
    summarize(&app, json!({"evaluation_id": id_of(&theirs)})).await.expect(404);

    let (evaluation, _) = evaluation_with_runs(&app).await;
    crate::evaluations::soft_delete(&app, &evaluation).await;
    let reply = summarize(&app, json!({"evaluation_id": evaluation})).await.expect(404);
    assert_eq!(reply.json(), json!({"error": format!("Evaluation {evaluation} not found")}));
}

#[tokio::test]
async fn the_scope_is_llm_analytics_write() {
    let app = spawn_with_system_llm(&[]).await;
    let reader = app.user_with_key("reader@example.com", Some((app.project, "member")), "llm_analytics:read", None);
    let reply = app
        .request(Method::POST, &summary_path(&app), Some(&reader), Some(json!({"evaluation_id": Uuid::now_v7()})))
        .await;
    reply.expect(403);
    app.request(Method::POST, &summary_path(&app), None, Some(json!({}))).await.expect(401);
}

#[tokio::test]
async fn runs_follow_the_filter_and_the_generation_ids_and_none_is_400() {
    let app = spawn_with_system_llm(&[]).await;
    llm_answers(&app, &answer(&[])).await;
    let (evaluation, targets) = evaluation_with_runs(&app).await;

    for (filter, total, pass, fail, na) in
        [("all", 6, 3, 2, 1), ("pass", 3, 3, 0, 0), ("fail", 2, 0, 2, 0), ("na", 1, 0, 0, 1)]
    {
        let body = summarize(&app, json!({"evaluation_id": evaluation, "filter": filter})).await.expect(200).json();
        assert_eq!(
            body["statistics"],
            json!({"total_analyzed": total, "pass_count": pass, "fail_count": fail, "na_count": na}),
            "{filter}"
        );
    }
    let selected = json!({"evaluation_id": evaluation, "generation_ids": [targets[0], targets[3]]});
    let body = summarize(&app, selected).await.expect(200).json();
    assert_eq!(body["statistics"], json!({"total_analyzed": 2, "pass_count": 1, "fail_count": 1, "na_count": 0}));

    let nothing = json!({"evaluation_id": evaluation, "generation_ids": [Uuid::now_v7()]});
    let reply = summarize(&app, nothing).await.expect(400);
    assert_eq!(reply.json(), json!({"error": "No evaluation runs found for the specified criteria"}));
    let fresh = id_of(&create_evaluation(&app, evaluation_body("No runs yet")).await);
    summarize(&app, json!({"evaluation_id": fresh})).await.expect(400);
}

#[tokio::test]
async fn statistics_come_from_the_data_and_invented_ids_and_empty_patterns_are_dropped() {
    let app = spawn_with_system_llm(&[]).await;
    let (evaluation, targets) = evaluation_with_runs(&app).await;
    let mut model_answer = answer(&[&targets[0], "gen-invented", &targets[1]]);
    model_answer["fail_patterns"] = json!([{"title": "Imagined", "description": "d", "frequency": "rare",
                                           "example_generation_ids": ["gen-404"]}]);
    llm_answers(&app, &model_answer).await;

    let body = summarize(&app, json!({"evaluation_id": evaluation})).await.expect(200).json();

    assert_eq!(body["statistics"], json!({"total_analyzed": 6, "pass_count": 3, "fail_count": 2, "na_count": 1}));
    assert_eq!(body["pass_patterns"][0]["example_generation_ids"], json!([targets[0], targets[1]]));
    assert_eq!(body["fail_patterns"], json!([]));
    assert_eq!(body["overall_assessment"], "Mostly polite.");
    assert_eq!(body["recommendations"], json!(["Be kind", "Say thanks"]));
    let request = body_of(&llm_requests(&app).await[0]);
    assert_eq!(request["model"], "system-model");
    let prompt = request["messages"].to_string();
    assert!(prompt.contains("Politeness") && prompt.contains("Is the answer polite?"), "{prompt}");
    assert!(prompt.contains(&targets[5]), "every run is in the prompt");
}

#[tokio::test]
async fn without_any_llm_the_answer_is_503_saying_how_to_configure_one() {
    let app = TestApp::spawn().await;
    let (evaluation, _) = evaluation_with_runs(&app).await;

    let reply = summarize(&app, json!({"evaluation_id": evaluation})).await.expect(503);

    let message = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(message.contains("active key") && message.contains("LLMA_SYSTEM_LLM_PROVIDER"), "{message}");
}

#[tokio::test]
async fn the_llm_is_the_configured_key_then_the_active_key_then_the_system_llm() {
    let app = spawn_with_system_llm(&[]).await;
    llm_answers(&app, &answer(&[])).await;

    // The system LLM when the project has no key.
    let (evaluation, _) = evaluation_with_runs(&app).await;
    summarize(&app, json!({"evaluation_id": evaluation})).await.expect(200);
    let requests = llm_requests(&app).await;
    assert_eq!(bearer_of(&requests[0]), "Bearer sk-system-key");

    // The active key, with its provider's default model.
    let active = create_key(&app, "openai", "active").await;
    app.post(&app.llma("evaluation_config/set_active_key/"), json!({"key_id": active})).await.expect(200);
    summarize(&app, json!({"evaluation_id": evaluation, "force_refresh": true})).await.expect(200);
    let request = llm_requests(&app).await.pop().unwrap();
    assert_ne!(bearer_of(&request), "Bearer sk-system-key");
    assert_eq!(body_of(&request)["model"], "gpt-5-mini");

    // The evaluation's own key and model come first.
    let own = create_key(&app, "openai", "own").await;
    let configured =
        id_of(&create_evaluation_with(&app, "Configured", true, configuration("openai", Some(&own))).await);
    ingest_runs(&app, &configured, &["pass", "fail"], "r").await;
    summarize(&app, json!({"evaluation_id": configured})).await.expect(200);
    let request = llm_requests(&app).await.pop().unwrap();
    assert_eq!(body_of(&request)["model"], "judge-model");

    // Each used key was marked as used.
    for key in [&active, &own] {
        let stored = app.get(&app.llma(&format!("provider_keys/{key}/"))).await.expect(200).json();
        assert_ne!(stored["last_used_at"], Value::Null, "{key}");
    }
}

#[tokio::test]
async fn a_rejected_key_is_502_becomes_invalid_and_the_next_request_falls_through() {
    let app = spawn_with_system_llm(&[]).await;
    let key = create_key(&app, "openai", "soon invalid").await;
    app.post(&app.llma("evaluation_config/set_active_key/"), json!({"key_id": key})).await.expect(200);
    let (evaluation, _) = evaluation_with_runs(&app).await;
    let system_answer = ResponseTemplate::new(200).set_body_json(chat(&answer(&[])));
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .and(wiremock::matchers::header("authorization", "Bearer sk-system-key"))
        .respond_with(system_answer)
        .with_priority(1)
        .mount(&app.providers)
        .await;
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "Incorrect API key"}})))
        .with_priority(2)
        .mount(&app.providers)
        .await;

    let reply = summarize(&app, json!({"evaluation_id": evaluation})).await.expect(502);
    assert_eq!(reply.json(), json!({"error": "Failed to generate summary"}));
    let stored = app.get(&app.llma(&format!("provider_keys/{key}/"))).await.expect(200).json();
    assert_eq!(stored["state"], "invalid");

    summarize(&app, json!({"evaluation_id": evaluation})).await.expect(200);
    assert_eq!(bearer_of(&llm_requests(&app).await.pop().unwrap()), "Bearer sk-system-key");
}

#[tokio::test]
async fn provider_failures_and_timeouts_are_502_within_the_llm_timeout() {
    let app = spawn_with_system_llm(&[("LLMA_LLM_TIMEOUT_SECS", "2")]).await;
    let (evaluation, _) = evaluation_with_runs(&app).await;
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat(&answer(&[]))).set_delay(Duration::from_secs(20)))
        .mount(&app.providers)
        .await;

    let started = Instant::now();
    let reply = summarize(&app, json!({"evaluation_id": evaluation})).await.expect(502);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(reply.json(), json!({"error": "Failed to generate summary"}));

    app.providers.reset().await;
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat(&json!({"not": "a summary"}))))
        .mount(&app.providers)
        .await;
    let reply = summarize(&app, json!({"evaluation_id": evaluation})).await.expect(502);
    assert_eq!(reply.json(), json!({"error": "Failed to generate summary"}));
}

#[tokio::test]
async fn many_long_runs_are_map_reduced_with_every_request_within_the_budget() {
    let app = spawn_with_system_llm(&[]).await;
    let evaluation = id_of(&create_evaluation(&app, evaluation_body("Long")).await);
    let verdicts: Vec<&str> = (0..250).map(|n| if n % 3 == 0 { "fail" } else { "pass" }).collect();
    let targets = ingest_runs(&app, &evaluation, &verdicts, &"long reasoning ".repeat(400)).await;
    llm_answers(&app, &answer(&[&targets[0], &targets[249], "gen-invented"])).await;

    let body = summarize(&app, json!({"evaluation_id": evaluation})).await.expect(200).json();

    let requests = llm_requests(&app).await;
    assert!(requests.len() >= 3, "{} calls", requests.len());
    for request in &requests {
        assert!(prompt_chars(request) <= 60_000, "a prompt of {} chars", prompt_chars(request));
    }
    assert_eq!(body["statistics"]["total_analyzed"], 250);
    assert_eq!(body["pass_patterns"][0]["example_generation_ids"], json!([targets[0], targets[249]]));
}

#[tokio::test]
async fn summaries_are_cached_until_refresh_is_forced_or_the_prompt_or_runs_change() {
    let app = spawn_with_system_llm(&[]).await;
    llm_answers(&app, &answer(&[])).await;
    let (evaluation, _) = evaluation_with_runs(&app).await;
    let request = json!({"evaluation_id": evaluation});

    let first = summarize(&app, request.clone()).await.expect(200).json();
    let second = summarize(&app, request.clone()).await.expect(200).json();
    assert_eq!(first, second);
    assert_eq!(llm_requests(&app).await.len(), 1, "the second answer came from the cache");

    summarize(&app, json!({"evaluation_id": evaluation, "force_refresh": true})).await.expect(200);
    assert_eq!(llm_requests(&app).await.len(), 2);

    app.patch(
        &crate::evaluations::evaluation_path(&app, &evaluation),
        json!({"evaluation_config": {"prompt": "Is the answer very polite?"}}),
    )
    .await
    .expect(200);
    summarize(&app, request.clone()).await.expect(200);
    assert_eq!(llm_requests(&app).await.len(), 3, "a prompt edit is a new key");

    ingest_runs(&app, &evaluation, &["pass"], "new").await;
    let body = summarize(&app, request.clone()).await.expect(200).json();
    assert_eq!(llm_requests(&app).await.len(), 4, "a new run is a new key");
    assert_eq!(body["statistics"]["total_analyzed"], 7);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM summary_cache").fetch_one(&app.db.pool).await.unwrap();
    assert!(rows >= 3);
}

#[tokio::test]
async fn concurrent_identical_requests_share_one_llm_call() {
    let app = spawn_with_system_llm(&[]).await;
    let (evaluation, _) = evaluation_with_runs(&app).await;
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(chat(&answer(&[]))).set_delay(Duration::from_millis(1500)),
        )
        .mount(&app.providers)
        .await;

    let body = json!({"evaluation_id": evaluation});
    let timed = |body: Value| {
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            let reply = summarize(app, body).await;
            (reply, started.elapsed())
        }
    };
    let ((a, a_took), (b, b_took), (c, c_took)) = tokio::join!(timed(body.clone()), timed(body.clone()), timed(body));

    let (a, b, c) = (a.expect(200).json(), b.expect(200).json(), c.expect(200).json());
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(llm_requests(&app).await.len(), 1);
    // Each one waited for the one LLM call: none was answered from a cache filled by
    // another that had already finished (which is what requests one after another get).
    for took in [a_took, b_took, c_took] {
        assert!(took >= Duration::from_millis(1200), "a request took {took:?}: they did not overlap");
    }
}

#[tokio::test]
async fn the_51st_request_in_a_minute_is_429_with_retry_after() {
    let app = spawn_with_system_llm(&[]).await;
    let body = json!({"evaluation_id": Uuid::now_v7()});
    for n in 0..50 {
        let reply = summarize(&app, body.clone()).await;
        assert_eq!(reply.status.as_u16(), 404, "request {n}: {}", reply.text);
    }

    let reply = summarize(&app, body.clone()).await.expect(429);

    let json = reply.json();
    assert_eq!(json["type"], "throttled_error");
    assert_eq!(json["code"], "throttled");
    assert_eq!(json["attr"], Value::Null);
    assert!(json["detail"].as_str().unwrap().contains("throttled"), "{json}");
    let retry_after: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");

    // Another key has its own budget.
    let other = app.user_with_key("second@example.com", Some((app.project, "member")), "llm_analytics:write", None);
    let reply = app.request(Method::POST, &summary_path(&app), Some(&other), Some(body)).await;
    reply.expect(404);
    let hits: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_limit_hits").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(hits, 51, "counted in PostgreSQL; the refused request is not counted");
}

/// project, purpose, provider, model, key, tokens in, tokens out, outcome.
type CallRow = (i64, String, String, String, Option<Uuid>, i64, i64, String);

#[tokio::test]
async fn every_llm_call_is_recorded_in_llm_calls() {
    let app = spawn_with_system_llm(&[]).await;
    llm_answers(&app, &answer(&[])).await;
    let key = create_key(&app, "openai", "recorded").await;
    let evaluation = id_of(&create_evaluation_with(&app, "Recorded", true, configuration("openai", Some(&key))).await);
    ingest_runs(&app, &evaluation, &["pass", "fail"], "r").await;

    summarize(&app, json!({"evaluation_id": evaluation})).await.expect(200);

    let rows: Vec<CallRow> = sqlx::query_as(
        "SELECT project_id, purpose, provider, model, provider_key_id, input_tokens, output_tokens, outcome \
         FROM llm_calls",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(
            app.project,
            "summary".into(),
            "openai".into(),
            "judge-model".into(),
            Some(key.parse().unwrap()),
            120,
            30,
            "ok".into()
        )]
    );
    let cost: Option<f64> = sqlx::query_scalar("SELECT cost_usd FROM llm_calls").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(cost, None, "a model no price is known for has no cost");
}

#[tokio::test]
async fn a_call_is_priced_like_a_generation_with_the_projects_own_price() {
    let app = spawn_with_system_llm(&[]).await;
    llm_answers(&app, &answer(&[])).await;
    let key = create_key(&app, "openai", "priced").await;
    let evaluation = id_of(&create_evaluation_with(&app, "Priced", true, configuration("openai", Some(&key))).await);
    ingest_runs(&app, &evaluation, &["pass"], "p").await;
    let price = json!({"model": "judge-model", "input_cost_per_token": 0.00001, "output_cost_per_token": 0.00002,
                       "valid_from": "2020-01-01"});
    app.post(&app.llma("model_prices/"), price).await.expect(201);

    summarize(&app, json!({"evaluation_id": evaluation})).await.expect(200);

    let (cost, source): (Option<f64>, Option<String>) =
        sqlx::query_as("SELECT cost_usd, cost_source FROM llm_calls").fetch_one(&app.db.pool).await.unwrap();
    let expected = 120.0 * 0.00001 + 30.0 * 0.00002;
    assert!(cost.is_some_and(|usd| (usd - expected).abs() < 1e-12), "{cost:?}");
    assert_eq!(source.as_deref(), Some("project"));
}
