//! Spec sections 4.1–4.3: evaluations of whole traces and sessions, judged once they have
//! settled, exactly once whatever the batches, doors and replicas; backfills over the
//! past with an estimate first; and the status reasons a judge's failure leaves.

use chrono::{Duration as Span, Utc};
use serde_json::{Value, json};
use test_support::wait_until;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::evaluations::{create_evaluation, create_key, evaluation_body, evaluation_path, fetch, id_of};
use crate::helpers::*;
use crate::ingestion::sdk_event;
use crate::judge::{
    COMPLETIONS, DEADLINE, TRIAL_ENV, enabled_evaluation, judge_answers, judge_requests, results, send,
    wait_for_results,
};
use crate::otel::{OTEL, otlp_json, post};

/// A trace id as OpenTelemetry writes it (32 hex digits), so SDK and OTLP events share it.
pub(crate) fn trace_id() -> String {
    Uuid::new_v4().simple().to_string()
}

pub(crate) fn span_event(trace: &str, name: &str) -> Value {
    sdk_event(
        "$ai_span",
        json!({"$ai_trace_id": trace, "$ai_span_name": name, "$ai_input_state": {"city": "Oslo"},
               "$ai_output_state": {"flights": 3}}),
    )
}

pub(crate) fn trace_generation(trace: &str, extra: Value) -> Value {
    let mut properties = json!({
        "$ai_trace_id": trace, "$ai_model": "gpt-5-mini", "$ai_provider": "openai",
        "$ai_input": [{"role": "user", "content": "Book me a flight to Oslo"}],
        "$ai_output_choices": [{"role": "assistant", "content": "Booked flight SK123."}],
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        properties[key] = value;
    }
    sdk_event("$ai_generation", properties)
}

/// A trace evaluation judging with its own key, waiting for `quiet` seconds of silence.
async fn trace_evaluation(app: &TestApp, quiet: u64) -> String {
    let key = create_key(app, "openai", "judge key").await;
    enabled_evaluation(
        app,
        "Task solved",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({"target": "trace",
               "target_config": {"strategy": "inactivity", "quiet_period_seconds": quiet, "max_age_seconds": 600}}),
    )
    .await
}

/// Seconds from now until each target job of the project is due, with its state.
pub(crate) async fn target_jobs(app: &TestApp) -> Vec<(String, f64)> {
    sqlx::query_as(
        "SELECT state, extract(epoch FROM run_after - now())::float8 FROM jobs \
         WHERE project_id = $1 AND kind = 'judge_target' ORDER BY created_at",
    )
    .bind(app.project)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

/// What the quiet period would do, without waiting for it: the project's pending target
/// jobs become due now.
pub(crate) async fn settle(app: &TestApp) {
    sqlx::query(
        "UPDATE jobs SET run_after = now() WHERE project_id = $1 AND kind = 'judge_target' AND state = 'pending'",
    )
    .bind(app.project)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

async fn result_properties(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT properties FROM ai_events WHERE project_id = $1 AND event = '$ai_evaluation' ORDER BY timestamp",
    )
    .bind(app.project)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn targets_take_the_reference_defaults_and_refuse_what_is_out_of_bounds() {
    let app = TestApp::spawn().await;
    let mut trace = evaluation_body("Trace");
    trace["target"] = json!("trace");
    let created = create_evaluation(&app, trace).await;
    assert_eq!(created["target"], "trace");
    assert_eq!(created["target_config"], json!({"strategy": "fixed_window", "window_seconds": 1800}));

    let mut session = evaluation_body("Session");
    session["target"] = json!("session");
    session["target_config"] = json!({"strategy": "inactivity"});
    let session = create_evaluation(&app, session).await;
    assert_eq!(
        session["target_config"],
        json!({"strategy": "inactivity", "quiet_period_seconds": 300, "max_age_seconds": 7200})
    );

    let plain = create_evaluation(&app, evaluation_body("Generation")).await;
    assert_eq!((plain["target"].clone(), plain["target_config"].clone()), (json!("generation"), Value::Null));
    assert_eq!(plain["status_reason_detail"], Value::Null);

    let path = evaluation_path(&app, &id_of(&created));
    let changed = app
        .patch(&path, json!({"target_config": {"strategy": "inactivity", "quiet_period_seconds": 60}}))
        .await
        .expect(200)
        .json();
    assert_eq!(changed["target"], "trace", "a setting alone keeps the target");
    assert_eq!(changed["target_config"]["quiet_period_seconds"], 60);

    for (body, attr) in [
        (json!({"target": "span"}), "target"),
        (json!({"target": "trace", "target_config": {"strategy": "sliding"}}), "target_config.strategy"),
        (
            json!({"target_config": {"strategy": "inactivity", "quiet_period_seconds": 30}}),
            "target_config.quiet_period_seconds",
        ),
        (
            json!({"target_config": {"strategy": "fixed_window", "window_seconds": 7201}}),
            "target_config.window_seconds",
        ),
        (json!({"target_config": "inactivity"}), "target_config"),
    ] {
        let refused = app.patch(&path, body.clone()).await.expect(400).json();
        assert_eq!(refused["attr"], attr, "{body}: {refused}");
    }
    let unchanged = app.get(&path).await.expect(200).json();
    assert_eq!(unchanged["target_config"]["quiet_period_seconds"], 60, "a refused write changes nothing");
}

#[tokio::test]
async fn a_trace_is_judged_once_after_it_settles_however_its_events_arrive() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    let _replica = app.spawn_replica(&["--worker-only"]);
    judge_answers(&app, true).await;
    let evaluation = trace_evaluation(&app, 120).await;
    let trace = trace_id();

    // An SDK batch: a tool span and the generation that qualifies the trace.
    let first = vec![span_event(&trace, "search_flights"), trace_generation(&trace, json!({}))];
    send(&app, &first).await;
    let queued = target_jobs(&app).await;
    assert_eq!(queued.len(), 1, "one job for the trace");
    assert_eq!(queued[0].0, "pending");
    assert!((100.0..=121.0).contains(&queued[0].1), "due after the quiet period: {queued:?}");

    // A later OTLP span of the same trace moves it forward; a re-sent batch moves nothing.
    sqlx::query("UPDATE jobs SET run_after = run_after - interval '60 seconds' WHERE project_id = $1")
        .bind(app.project)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let attributes = json!([{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]);
    let export = otlp_json(&trace, &Uuid::new_v4().simple().to_string()[..16], attributes);
    let token = format!("{OTEL}?token={}", app.project_token);
    post(&app, &token, export.to_string().into_bytes(), &[("content-type", "application/json")]).await.expect(200);
    let moved = target_jobs(&app).await;
    assert!((100.0..=121.0).contains(&moved[0].1), "a new event moved it forward: {moved:?}");
    send(&app, &first).await;
    assert_eq!(target_jobs(&app).await.len(), 1);
    assert_eq!(judge_requests(&app).await, 0, "nothing is judged before the trace settles");

    settle(&app).await;
    wait_for_results(&app, 1).await;
    let result = result_properties(&app).await.remove(0);
    assert_eq!(result["$ai_evaluation_target"], "trace");
    assert_eq!(result["$ai_trace_id"], trace.as_str());
    let first_generation: String = sqlx::query_scalar(
        "SELECT uuid::text FROM ai_events WHERE project_id = $1 AND trace_id = $2 AND event = '$ai_generation' \
         ORDER BY timestamp LIMIT 1",
    )
    .bind(app.project)
    .bind(&trace)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(result["$ai_target_event_id"], first_generation.as_str(), "the trace's first generation");
    assert_eq!(result["$ai_evaluation_result"], true);
    let read = app.get(&app.llma(&format!("evaluation_results/?evaluation_id={evaluation}"))).await.expect(200).json();
    assert_eq!((read["totals"]["runs"].clone(), read["totals"]["pass_rate"].clone()), (json!(1), json!(100.0)));
    let asked = fake::requests_to(&app.providers, COMPLETIONS).await;
    let prompt = String::from_utf8_lossy(&asked[0].body).into_owned();
    for told in ["search_flights", "Booked flight SK123.", "Book me a flight to Oslo", "gpt-4o", "<trace>"] {
        assert!(prompt.contains(told), "the judge was not told {told}: {prompt}");
    }

    // Late events after the judgement do not judge again.
    wait_until(DEADLINE, || async { target_jobs(&app).await.iter().all(|(state, _)| state == "done") }).await;
    send(&app, &[span_event(&trace, "late"), trace_generation(&trace, json!({}))]).await;
    settle(&app).await;
    let jobs = target_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].0, "done");
    assert_eq!(results(&app).await, 1);
    assert_eq!(judge_requests(&app).await, 1);
}

#[tokio::test]
async fn only_a_trace_with_a_matching_generation_is_judged_and_sessions_group_by_their_id() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    judge_answers(&app, false).await;
    let key = create_key(&app, "openai", "judge key").await;
    let mut body = evaluation_body("Session helped");
    body["enabled"] = json!(true);
    body["model_configuration"] = json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key});
    body["target"] = json!("session");
    body["conditions"] = json!([{"properties": [{"key": "env", "operator": "exact", "value": "prod"}]}]);
    create_evaluation(&app, body).await;

    let (prod, dev) = (format!("session-{}", Uuid::now_v7()), format!("session-{}", Uuid::now_v7()));
    let events = vec![
        trace_generation(&trace_id(), json!({"$ai_session_id": prod, "env": "prod"})),
        trace_generation(&trace_id(), json!({"$ai_session_id": prod, "env": "dev"})),
        trace_generation(&trace_id(), json!({"$ai_session_id": dev, "env": "dev"})),
    ];
    send(&app, &events).await;
    let jobs = target_jobs(&app).await;
    assert_eq!(jobs.len(), 1, "only the session with a prod generation: {jobs:?}");
    assert!((1700.0..=1801.0).contains(&jobs[0].1), "the default fixed window of 1800 s: {jobs:?}");

    settle(&app).await;
    wait_for_results(&app, 1).await;
    let result = result_properties(&app).await.remove(0);
    assert_eq!(result["$ai_evaluation_target"], "session");
    assert_eq!(result["$ai_session_id"], prod.as_str());
    assert_eq!(result["$ai_evaluation_result"], false);
    let prompt = String::from_utf8_lossy(&fake::requests_to(&app.providers, COMPLETIONS).await[0].body).into_owned();
    assert_eq!(prompt.matches("Booked flight SK123.").count(), 2, "both generations of the session: {prompt}");
}

#[tokio::test]
async fn a_trace_judge_killed_mid_judgement_is_taken_over_with_one_result() {
    let app = crate::judge::app_whose_first_judge_call_hangs().await;
    trace_evaluation(&app, 60).await;
    let trace = trace_id();
    send(&app, &[trace_generation(&trace, json!({}))]).await;
    settle(&app).await;

    let mut doomed = app.spawn_replica(&["--worker-only"]);
    wait_until(DEADLINE, || async { judge_requests(&app).await == 1 }).await;
    doomed.kill();
    let _survivor = app.spawn_replica(&["--worker-only"]);
    wait_for_results(&app, 1).await;
    wait_until(DEADLINE, || async { target_jobs(&app).await.iter().all(|(state, _)| state == "done") }).await;
    assert_eq!(results(&app).await, 1, "judged once");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE project_id = $1 AND kind = 'judge_target'")
        .bind(app.project)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "the lapsed lease was taken over");
}

pub(crate) fn backfills(app: &TestApp, evaluation: &str) -> String {
    format!("{}backfills/", evaluation_path(app, evaluation))
}

/// A window covering the last three hours.
pub(crate) fn window(extra: Value) -> Value {
    let mut body = json!({"window_start": (Utc::now() - Span::hours(3)).to_rfc3339(),
                          "window_end": Utc::now().to_rfc3339()});
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        body[key] = value;
    }
    body
}

pub(crate) async fn wait_for_backfill(app: &TestApp, evaluation: &str, id: &str, status: &str) -> Value {
    let path = format!("{}{id}/", backfills(app, evaluation));
    wait_until(DEADLINE, || async { app.get(&path).await.expect(200).json()["status"] == status }).await;
    app.get(&path).await.expect(200).json()
}

/// Three traces of two hours ago (one of them from staging), judged by nothing yet.
pub(crate) async fn past_traces(app: &TestApp) -> Vec<String> {
    let traces: Vec<String> = (0..3).map(|_| trace_id()).collect();
    let two_hours_ago = (Utc::now() - Span::hours(2)).to_rfc3339();
    let events: Vec<Value> = traces
        .iter()
        .enumerate()
        .flat_map(|(n, trace)| {
            let env = if n == 0 { "staging" } else { "prod" };
            let mut generation = trace_generation(trace, json!({"env": env}));
            let mut span = span_event(trace, "lookup");
            generation["timestamp"] = json!(two_hours_ago);
            span["timestamp"] = json!(two_hours_ago);
            [span, generation]
        })
        .collect();
    send(app, &events).await;
    traces
}

#[tokio::test]
async fn a_backfill_estimates_then_judges_the_past_once_and_reruns_only_when_asked() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    judge_answers(&app, true).await;
    past_traces(&app).await;
    let evaluation = trace_evaluation(&app, 300).await;
    let path = backfills(&app, &evaluation);

    let estimate = app.post(&format!("{path}estimate/"), window(json!({}))).await.expect(200).json();
    assert_eq!(
        estimate,
        json!({"target_count": 3, "already_judged_count": 0, "llm_calls": 3, "trial_credits_needed": 0})
    );
    let prod_only = json!({"conditions": [{"properties": [{"key": "env", "operator": "exact", "value": "prod"}]}]});
    let narrowed = app.post(&format!("{path}estimate/"), window(prod_only)).await.expect(200).json();
    assert_eq!(narrowed["target_count"], 2);

    let started = app.post(&path, window(json!({}))).await.expect(202).json();
    assert!(["queued", "running", "completed"].contains(&started["status"].as_str().unwrap()), "{started}");
    assert_eq!(started["total_count"], 3);
    let id = started["id"].as_str().unwrap().to_owned();
    let done = wait_for_backfill(&app, &evaluation, &id, "completed").await;
    assert_eq!((done["dispatched_count"].clone(), done["completed_count"].clone()), (json!(3), json!(3)), "{done}");
    assert_eq!(results(&app).await, 3);
    let result = &result_properties(&app).await[0];
    assert_eq!(result["$ai_evaluation_backfill_id"], id.as_str());
    assert_eq!(result["$ai_evaluation_target"], "trace");

    let again = app.post(&format!("{path}estimate/"), window(json!({}))).await.expect(200).json();
    assert_eq!((again["already_judged_count"].clone(), again["llm_calls"].clone()), (json!(3), json!(0)));
    let skipping = app.post(&path, window(json!({}))).await.expect(202).json();
    let skipped = wait_for_backfill(&app, &evaluation, skipping["id"].as_str().unwrap(), "completed").await;
    assert_eq!((skipped["skipped_count"].clone(), skipped["dispatched_count"].clone()), (json!(3), json!(0)));
    assert_eq!(judge_requests(&app).await, 3, "nothing judged twice");

    let rerun = app.post(&path, window(json!({"rerun_existing": true}))).await.expect(202).json();
    wait_for_backfill(&app, &evaluation, rerun["id"].as_str().unwrap(), "completed").await;
    assert_eq!(results(&app).await, 6, "a rerun stores new results");

    let listed = app.get(&path).await.expect(200).json();
    assert_eq!(listed["count"], 3);
    assert_eq!(listed["results"][0]["id"], rerun["id"], "newest first");
}

#[tokio::test]
async fn one_backfill_at_a_time_cancel_drops_what_waits_and_windows_are_checked() {
    // No worker: a backfill stays queued.
    let app = TestApp::spawn_api_only(&TRIAL_ENV).await;
    past_traces(&app).await;
    let evaluation = trace_evaluation(&app, 300).await;
    let path = backfills(&app, &evaluation);

    let first = app.post(&path, window(json!({}))).await.expect(202).json();
    assert_eq!(first["status"], "queued");
    let conflict = app.post(&path, window(json!({}))).await.expect(409).json();
    assert_eq!(conflict["detail"], "A backfill is already running for this evaluation.");
    let id = first["id"].as_str().unwrap();
    let cancelled = app.post(&format!("{path}{id}/cancel/"), json!({})).await.expect(200).json();
    assert_eq!(cancelled["status"], "cancelled");
    app.post(&path, window(json!({}))).await.expect(202);

    let future = (Utc::now() + Span::hours(1)).to_rfc3339();
    let past = (Utc::now() - Span::hours(1)).to_rfc3339();
    for (body, attr) in [
        (json!({"window_start": past, "window_end": future}), "window_end"),
        (json!({"window_start": past, "window_end": past}), "window_start"),
        (json!({"window_end": past}), "window_start"),
        (json!({"window_start": "yesterday", "window_end": past}), "window_start"),
        (
            window(json!({"conditions": [{"properties": [{"key": "x", "operator": "regex", "value": "("}]}]})),
            "conditions[0].properties[0].value",
        ),
    ] {
        let refused = app.post(&format!("{path}estimate/"), body.clone()).await.expect(400).json();
        assert_eq!(refused["attr"], attr, "{body}: {refused}");
    }
    let unknown = backfills(&app, &Uuid::new_v4().to_string());
    app.post(&format!("{unknown}estimate/"), window(json!({}))).await.expect(404);
    app.get(&format!("{path}{}/", Uuid::new_v4())).await.expect(404);

    let reader = app.user_with_key("reader@example.com", Some((app.project, "member")), "evaluation:read", None);
    let listed = app.request(reqwest::Method::GET, &path, Some(&reader), None).await.expect(200).json();
    assert_eq!(listed["count"], 2);
    let refused = app.request(reqwest::Method::POST, &path, Some(&reader), Some(window(json!({})))).await;
    assert_eq!(refused.status.as_u16(), 403, "starting needs evaluation:write");
    let schema = app.request(reqwest::Method::GET, "/api/schema/", None, None).await.expect(200).json();
    let documented = "/api/environments/{project_id}/evaluations/{id}/backfills/{backfill_id}/cancel/";
    assert!(schema["paths"].get(documented).is_some(), "the backfill routes are in the OpenAPI document");

    // What was queued while no worker ran is done once one runs: progress is in the database.
    judge_answers(&app, true).await;
    let _worker = app.spawn_replica(&["--worker-only"]);
    let queued = listed["results"][0]["id"].as_str().unwrap().to_owned();
    let done = wait_for_backfill(&app, &evaluation, &queued, "completed").await;
    assert_eq!(done["completed_count"], 3, "{done}");
    assert_eq!(results(&app).await, 3);
}

#[tokio::test]
async fn a_judge_failure_the_user_must_fix_stops_the_evaluation_with_the_providers_words() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    for (answer, reason, words) in [
        (
            ResponseTemplate::new(404).set_body_json(
                json!({"error": {"message": "The model `gpt-9` does not exist", "code": "model_not_found"}}),
            ),
            "model_not_found",
            "The model `gpt-9` does not exist",
        ),
        (
            ResponseTemplate::new(429).set_body_json(json!({"error": {"message": "You exceeded your current quota.",
                "type": "insufficient_quota", "code": "insufficient_quota"}})),
            "quota_exceeded",
            "You exceeded your current quota.",
        ),
    ] {
        app.providers.reset().await;
        Mock::given(method("POST")).and(path(COMPLETIONS)).respond_with(answer).mount(&app.providers).await;
        let key = create_key(&app, "openai", reason).await;
        let evaluation = enabled_evaluation(
            &app,
            reason,
            json!({"provider": "openai", "model": "gpt-9", "provider_key_id": key}),
            json!({}),
        )
        .await;
        send(&app, &[crate::judge::generation(json!({}))]).await;
        wait_until(DEADLINE, || async { fetch(&app, &evaluation).await["status"] == "error" }).await;
        let stopped = fetch(&app, &evaluation).await;
        assert_eq!(stopped["status_reason"], reason, "{stopped}");
        assert_eq!(stopped["status_reason_detail"], words);
        assert_eq!(stopped["enabled"], false);
        assert_eq!(fake::requests_to(&app.providers, COMPLETIONS).await.len(), 1, "{reason}: not retried");

        let path = evaluation_path(&app, &evaluation);
        let enabled = app.patch(&path, json!({"enabled": true})).await.expect(200).json();
        assert_eq!(
            (enabled["status_reason"].clone(), enabled["status_reason_detail"].clone()),
            (Value::Null, Value::Null)
        );
        // Out of the next round's way.
        app.patch(&path, json!({"enabled": false})).await.expect(200);
    }
}

#[tokio::test]
async fn a_backfill_waits_for_the_next_hour_when_the_cap_is_used_up() {
    let app = TestApp::spawn_with(&TRIAL_ENV).await;
    judge_answers(&app, true).await;
    past_traces(&app).await;
    let evaluation = trace_evaluation(&app, 300).await;
    app.patch(&evaluation_path(&app, &evaluation), json!({"max_runs_per_hour": 2})).await.expect(200);

    let started = app.post(&backfills(&app, &evaluation), window(json!({}))).await.expect(202).json();
    let path = format!("{}{}/", backfills(&app, &evaluation), started["id"].as_str().unwrap());
    wait_until(DEADLINE, || async { app.get(&path).await.expect(200).json()["completed_count"] == 2 }).await;
    let waiting = app.get(&path).await.expect(200).json();
    assert_eq!((waiting["status"].clone(), waiting["dispatched_count"].clone()), (json!("running"), json!(2)));
    assert_eq!(results(&app).await, 2, "never one past the cap");
    let next_page: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM run_after - date_trunc('hour', created_at))::float8 FROM jobs \
         WHERE project_id = $1 AND kind = 'backfill' AND state = 'pending'",
    )
    .bind(app.project)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(next_page, 3600.0, "the rest waits for the next hour");
}

#[tokio::test]
async fn a_large_backfill_does_not_hold_up_live_judgements() {
    let app = TestApp::spawn_with(&[
        TRIAL_ENV[0],
        TRIAL_ENV[1],
        TRIAL_ENV[2],
        TRIAL_ENV[3],
        ("LLMA_BACKFILL_CONCURRENCY", "1"),
        ("LLMA_JUDGE_CONCURRENCY", "1"),
    ])
    .await;
    // Judging a trace takes a second; judging a generation is immediate.
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .and(wiremock::matchers::body_string_contains("<trace>"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(crate::judge::verdict(true))
                .set_delay(std::time::Duration::from_secs(1)),
        )
        .with_priority(1)
        .mount(&app.providers)
        .await;
    judge_answers(&app, true).await;
    for _ in 0..10 {
        past_traces(&app).await;
    }
    let backfilled = trace_evaluation(&app, 300).await;
    let started = app.post(&backfills(&app, &backfilled), window(json!({}))).await.expect(202).json();
    assert_eq!(started["total_count"], 30);
    let key = create_key(&app, "openai", "live key").await;
    enabled_evaluation(
        &app,
        "Live",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({}),
    )
    .await;
    let path = format!("{}{}/", backfills(&app, &backfilled), started["id"].as_str().unwrap());
    wait_until(DEADLINE, || async { app.get(&path).await.expect(200).json()["completed_count"] == 2 }).await;

    // 28 trace judgements of a second each are left: a live judgement queued behind them
    // would come after the backfill completed.
    let live = crate::judge::generation(json!({}));
    send(&app, std::slice::from_ref(&live)).await;
    wait_until(DEADLINE, || async {
        result_properties(&app).await.iter().any(|r| r["$ai_target_event_id"] == live["uuid"])
    })
    .await;
    let progress = app.get(&path).await.expect(200).json();
    assert_eq!(progress["status"], "running", "the live judgement did not wait for the backfill: {progress}");
}
