//! Spec section 4.4: code evaluators in Hog — compiled on save, run by the judge without
//! an LLM (capture and OTLP generations alike), stopped at their first error while other
//! evaluations go on, broken down like any result, and tried on stored events by
//! `test_hog/` without storing anything.

use serde_json::{Value, json};
use test_support::wait_until;

use crate::evaluations::{evaluation_path, evaluations_path};
use crate::helpers::*;
use crate::judge::{DEADLINE, generation, send, wait_for_quiet};
use crate::otel::{OTEL, otlp_json, post};
use crate::targets::{
    backfills, past_traces, settle, span_event, target_jobs, trace_generation, trace_id, wait_for_backfill, window,
};

const NO_COMPETITOR: &str = "
// Fails when the answer names a competitor; prints why.
if (output ilike '%acme corp%') {
    print('mentions Acme Corp')
    return false
}
print(f'clean answer of {length(output)} characters')
return true
";

fn hog_body(name: &str, source: &str) -> Value {
    json!({"name": name, "evaluation_type": "hog", "enabled": true, "evaluation_config": {"source": source}})
}

async fn create(app: &TestApp, body: Value) -> Value {
    app.post(&evaluations_path(app), body).await.expect(201).json()
}

fn answer(text: &str, env: &str) -> Value {
    generation(json!({"env": env, "$ai_output_choices": [{"role": "assistant", "content": text}]}))
}

async fn results_of(app: &TestApp, evaluation: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT properties FROM ai_events WHERE project_id = $1 AND event = '$ai_evaluation' AND evaluation_id = $2 \
         ORDER BY properties ->> '$ai_evaluation_reasoning'",
    )
    .bind(app.project)
    .bind(evaluation)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

async fn completions_asked(app: &TestApp) -> usize {
    fake::all_requests(&app.providers).await.iter().filter(|r| r.url.path().ends_with("/chat/completions")).count()
}

#[tokio::test]
async fn source_is_compiled_on_save_with_the_error_where_it_is() {
    let app = TestApp::spawn().await;

    let refused = app.post(&evaluations_path(&app), hog_body("broken", "let x := 1\nreturn x +")).await.expect(400);
    let refused = refused.json();
    assert_eq!(refused["attr"], "evaluation_config.source");
    assert_eq!(
        refused["detail"],
        "Syntax error at line 2, column 11: expected an expression, found the end of the code"
    );

    let missing = json!({"name": "empty", "evaluation_type": "hog", "evaluation_config": {}});
    assert_eq!(app.post(&evaluations_path(&app), missing).await.expect(400).json()["attr"], "evaluation_config.source");

    let mut body = hog_body("competitors", NO_COMPETITOR);
    body["output_config"] = json!({"allows_na": true});
    let created = create(&app, body).await;
    assert_eq!(created["evaluation_type"], "hog");
    assert_eq!(created["evaluation_config"], json!({"source": NO_COMPETITOR}));
    assert_eq!(created["output_type"], "boolean_with_na");
    assert_eq!(created["output_config"], json!({"allows_na": true}));
    assert_eq!((created["enabled"].clone(), created["status"].clone()), (json!(true), json!("active")));

    let path = evaluation_path(&app, created["id"].as_str().unwrap());
    let bad_patch = app.patch(&path, json!({"evaluation_config": {"source": "return ("}})).await.expect(400).json();
    assert_eq!(bad_patch["attr"], "evaluation_config.source");
    let kept = app.get(&path).await.expect(200).json();
    assert_eq!(kept["evaluation_config"]["source"], NO_COMPETITOR, "nothing changed");
}

#[tokio::test]
async fn the_judge_runs_the_code_without_an_llm_and_results_break_down_like_any_other() {
    let app = TestApp::spawn().await;
    let evaluation = create(&app, hog_body("competitors", NO_COMPETITOR)).await;
    let id = evaluation["id"].as_str().unwrap().to_owned();

    send(
        &app,
        &[answer("Try our product!", "prod"), answer("Acme Corp is better, honestly.", "prod"), answer("Hi", "dev")],
    )
    .await;
    wait_until(DEADLINE, || async { results_of(&app, &id).await.len() == 3 }).await;

    let results = results_of(&app, &id).await;
    let verdicts: Vec<(Value, Value)> =
        results.iter().map(|r| (r["$ai_evaluation_result"].clone(), r["$ai_evaluation_reasoning"].clone())).collect();
    assert_eq!(
        verdicts,
        vec![
            (json!(true), json!("clean answer of 37 characters")),
            (json!(true), json!("clean answer of 51 characters")),
            (json!(false), json!("mentions Acme Corp")),
        ]
    );
    for result in &results {
        assert!(result.get("$ai_evaluation_key_type").is_none(), "no key for code: {result}");
    }
    assert_eq!(completions_asked(&app).await, 0, "no LLM was called");

    let report =
        app.get(&app.llma(&format!("evaluation_results/?evaluation_id={id}&breakdown=env"))).await.expect(200).json();
    let values: Vec<(Value, Value)> = report["breakdown_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["value"].clone(), v["pass_rate"].clone()))
        .collect();
    assert_eq!(values, vec![(json!("prod"), json!(50.0)), (json!("dev"), json!(100.0))]);
}

#[tokio::test]
async fn a_hostile_evaluator_is_stopped_at_its_first_error_while_the_others_go_on() {
    let app = TestApp::spawn().await;
    let good = create(&app, hog_body("good", "return true")).await;
    let looping = create(&app, hog_body("loops", "let n := 0\nwhile (true) { n := n + 1 }")).await;
    let recursing = create(&app, hog_body("recurses", "fun f(n) { return f(n + 1) }\nreturn f(0)")).await;
    let growing = create(&app, hog_body("grows", "let s := 'x'\nwhile (true) { s := s || s }")).await;
    let nested = format!("fun f(n) {{ return {}f(n + 1){} }}\nreturn f(0)", "1 + [".repeat(45), "][1]".repeat(45));
    let nesting = create(&app, hog_body("nests", &nested)).await;

    send(&app, &[answer("one", "prod"), answer("two", "prod")]).await;
    wait_until(DEADLINE, || async { results_of(&app, good["id"].as_str().unwrap()).await.len() == 2 }).await;
    wait_for_quiet(&app).await;

    for (evaluation, words) in
        [(&looping, "operations"), (&recursing, "nested calls"), (&growing, "memory"), (&nesting, "nested deeper")]
    {
        let id = evaluation["id"].as_str().unwrap();
        let stopped = app.get(&evaluation_path(&app, id)).await.expect(200).json();
        assert_eq!(stopped["status"], "error", "{stopped}");
        assert_eq!(stopped["status_reason"], "hog_error");
        assert!(stopped["status_reason_detail"].as_str().unwrap().contains(words), "{stopped}");
        assert!(results_of(&app, id).await.is_empty());
    }
}

#[tokio::test]
async fn an_otel_generation_is_judged_by_code() {
    let app = TestApp::spawn().await;
    let evaluation = create(&app, hog_body("model", "return properties.$ai_model = 'gpt-4o'")).await;
    let id = evaluation["id"].as_str().unwrap().to_owned();
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let attributes = json!([
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "9"}}
    ]);
    let export = otlp_json(&trace, &uuid::Uuid::new_v4().simple().to_string()[..16], attributes);
    let path = format!("{OTEL}?token={}", app.project_token);
    post(&app, &path, export.to_string().into_bytes(), &[("content-type", "application/json")]).await.expect(200);

    wait_until(DEADLINE, || async { results_of(&app, &id).await.len() == 1 }).await;
    assert_eq!(results_of(&app, &id).await[0]["$ai_evaluation_result"], true);
}

#[tokio::test]
async fn a_generation_matched_by_code_and_by_an_llm_judge_is_judged_by_both_in_their_own_jobs() {
    let app = TestApp::spawn().await;
    crate::judge::judge_answers(&app, true).await;
    let key = crate::evaluations::create_key(&app, "openai", "judge key").await;
    let llm = crate::judge::enabled_evaluation(
        &app,
        "polite",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({}),
    )
    .await;
    let code = create(&app, hog_body("competitors", NO_COMPETITOR)).await;
    let code = code["id"].as_str().unwrap().to_owned();

    send(&app, &[answer("Acme Corp is better.", "prod")]).await;
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM jobs WHERE project_id = $1 ORDER BY kind")
        .bind(app.project)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(kinds, ["judge", "judge_code"], "one job per kind of judge");
    wait_until(DEADLINE, || async {
        results_of(&app, &llm).await.len() == 1 && results_of(&app, &code).await.len() == 1
    })
    .await;
    assert_eq!(results_of(&app, &llm).await[0]["$ai_evaluation_result"], true);
    assert_eq!(results_of(&app, &code).await[0]["$ai_evaluation_result"], false);
    assert_eq!(completions_asked(&app).await, 1, "only the LLM judge called the LLM");
}

/// Judges a whole trace by its cost, and says what it saw of it.
const TRACE_BUDGET: &str = "
let spans := arrayFilter(e -> e.event = '$ai_span', evaluation_events)
print(f'{target.type} {target.id}: {length(evaluation_events)} events, {length(spans)} tool spans')
print(f'first output: {output}')
return target.total_cost_usd < 0.05
";

#[tokio::test]
async fn a_trace_is_judged_by_code_that_sees_the_whole_trace() {
    let app = TestApp::spawn().await;
    let mut body = hog_body("trace budget", TRACE_BUDGET);
    body["target"] = json!("trace");
    body["target_config"] = json!({"strategy": "inactivity", "quiet_period_seconds": 60, "max_age_seconds": 600});
    let evaluation = create(&app, body).await;
    assert_eq!(evaluation["target"], "trace");
    let id = evaluation["id"].as_str().unwrap().to_owned();

    let (cheap, dear) = (trace_id(), trace_id());
    let cost = |usd: f64| json!({"$ai_total_cost_usd": usd});
    send(
        &app,
        &[
            span_event(&cheap, "search_flights"),
            trace_generation(&cheap, cost(0.01)),
            trace_generation(&cheap, cost(0.02)),
            trace_generation(&dear, cost(0.04)),
            trace_generation(&dear, cost(0.03)),
        ],
    )
    .await;
    assert_eq!(target_jobs(&app).await.len(), 2, "one job per trace, waiting for its quiet period");
    settle(&app).await;
    wait_until(DEADLINE, || async { results_of(&app, &id).await.len() == 2 }).await;

    let results = results_of(&app, &id).await;
    let of = |trace: &str| results.iter().find(|r| r["$ai_trace_id"] == trace).unwrap().clone();
    let (cheap_result, dear_result) = (of(&cheap), of(&dear));
    assert_eq!(cheap_result["$ai_evaluation_result"], true);
    assert_eq!(
        cheap_result["$ai_evaluation_reasoning"],
        format!(
            "trace {cheap}: 3 events, 1 tool spans\nfirst output: [{{\"content\":\"Booked flight SK123.\",\"role\":\"assistant\"}}]"
        )
    );
    assert_eq!(dear_result["$ai_evaluation_result"], false, "0.07 USD over the budget: {dear_result}");
    for result in [&cheap_result, &dear_result] {
        assert_eq!(result["$ai_evaluation_target"], "trace");
        assert!(result.get("$ai_evaluation_key_type").is_none(), "no key for code: {result}");
    }
    assert_eq!(completions_asked(&app).await, 0, "no LLM was called");
}

#[tokio::test]
async fn a_backfill_of_past_traces_by_code_costs_no_llm_call_and_no_trial_credit() {
    let app = TestApp::spawn_with(&crate::judge::TRIAL_ENV).await;
    past_traces(&app).await;
    let mut body = hog_body("traces with a lookup", "return arrayExists(e -> e.event = '$ai_span', evaluation_events)");
    body["target"] = json!("trace");
    body["enabled"] = json!(false);
    let evaluation = create(&app, body).await;
    let id = evaluation["id"].as_str().unwrap().to_owned();
    let path = backfills(&app, &id);

    let estimate = app.post(&format!("{path}estimate/"), window(json!({}))).await.expect(200).json();
    assert_eq!(
        estimate,
        json!({"target_count": 3, "already_judged_count": 0, "llm_calls": 0, "trial_credits_needed": 0})
    );
    let started = app.post(&path, window(json!({}))).await.expect(202).json();
    let done = wait_for_backfill(&app, &id, started["id"].as_str().unwrap(), "completed").await;
    assert_eq!(done["completed_count"], 3, "{done}");
    let results = results_of(&app, &id).await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["$ai_evaluation_result"] == true && r["$ai_evaluation_target"] == "trace"));
    assert_eq!(completions_asked(&app).await, 0, "no LLM was called");
}

#[tokio::test]
async fn test_hog_tries_code_on_the_newest_matching_generations_and_stores_nothing() {
    let app = TestApp::spawn().await;
    send(&app, &[answer("Acme Corp rocks", "prod"), answer("All good", "prod"), answer("dev answer", "dev")]).await;
    let test_hog = format!("{}test_hog/", evaluations_path(&app));

    let body = json!({"source": NO_COMPETITOR, "sample_count": 5,
        "conditions": [{"properties": [{"key": "env", "value": "prod"}]}]});
    let tried = app.post(&test_hog, body).await.expect(200).json();
    let results = tried["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "only the prod generations: {tried}");
    let mut outcomes: Vec<(Value, Value)> =
        results.iter().map(|r| (r["result"].clone(), r["reasoning"].clone())).collect();
    outcomes.sort_by_key(|(result, _)| result.to_string());
    assert_eq!(outcomes[0], (json!(false), json!("mentions Acme Corp")));
    assert_eq!(outcomes[1].0, json!(true));
    assert!(results.iter().all(|r| r["error"].is_null() && r["event_uuid"].is_string() && r["duration_ms"].is_u64()));

    let null = app.post(&test_hog, json!({"source": "return null", "sample_count": 1})).await.expect(200).json();
    assert_eq!(
        null["results"][0]["error"],
        "the code returned null, but the evaluation does not allow N/A (output_type boolean_with_na)"
    );
    let na = app.post(&test_hog, json!({"source": "return null", "sample_count": 1, "allows_na": true})).await;
    assert_eq!(na.expect(200).json()["results"][0]["applicable"], false);

    for (body, attr) in [
        (json!({"source": "return ("}), "source"),
        (json!({}), "source"),
        (json!({"source": "return true", "sample_count": 51}), "sample_count"),
        (json!({"source": "return true", "sample_count": 0}), "sample_count"),
    ] {
        assert_eq!(app.post(&test_hog, body).await.expect(400).json()["attr"], attr);
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ai_events WHERE project_id = $1 AND event = '$ai_evaluation'")
            .bind(app.project)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "a dry run stores nothing");
}
