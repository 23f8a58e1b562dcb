//! A restart of PostgreSQL under a running service costs no request (issue 17, point 1).
//!
//! This binary restarts the whole test cluster, so it is a test binary of its own: cargo
//! runs test binaries one after another, and nothing else uses the cluster meanwhile.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use helpers::{TestApp, fake};
use serde_json::{Value, json};

/// Every read route a client would use after the restart, with the ids it needs.
fn read_paths(app: &TestApp, key: &str, evaluation: &str, report: &str) -> Vec<String> {
    let env = format!("/api/environments/{}", app.project);
    vec![
        app.llma("provider_keys/"),
        app.llma(&format!("provider_keys/{key}/")),
        app.llma(&format!("provider_keys/{key}/dependent_configs/")),
        app.llma("provider_keys/trial_evaluations/?provider=openai"),
        app.llma("evaluation_config/"),
        app.llma("evaluation_reports/"),
        app.llma(&format!("evaluation_reports/{report}/")),
        app.llma(&format!("evaluation_reports/{report}/runs/")),
        app.llma(&format!("evaluation_results/?evaluation_id={evaluation}")),
        app.llma("provider_keys/activity/"),
        format!("{env}/evaluations/"),
        format!("{env}/evaluations/{evaluation}/"),
        format!("{env}/evaluation_runs/"),
    ]
}

fn generation() -> Value {
    json!({"event": "$ai_generation", "distinct_id": "user-1", "uuid": uuid::Uuid::now_v7().to_string(),
           "properties": {"$ai_model": "gpt-5-mini", "$ai_input": "hi", "$ai_output_choices": "hello"}})
}

#[tokio::test]
async fn a_restart_of_postgresql_costs_no_request() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    let key = app.create_openai_key("restart", "sk-test-restart-12345").await;
    let key = key["id"].as_str().unwrap().to_owned();
    let evaluation = app
        .post(
            &format!("/api/environments/{}/evaluations/", app.project),
            json!({"name": "judge", "evaluation_type": "llm_judge", "evaluation_config": {"prompt": "polite?"}}),
        )
        .await
        .expect(201)
        .id();
    let report = app.post(&app.llma("evaluation_reports/"), json!({"evaluation": evaluation})).await.expect(201).id();
    let paths = read_paths(&app, &key, &evaluation, &report);
    // Every route once, so each kind of connection (pooled, read connections) is open and idle.
    for path in &paths {
        app.get(path).await.expect(200);
    }
    let batch = |app: &TestApp| json!({"api_key": app.project_token, "batch": [generation(), generation()]});
    app.request(reqwest::Method::POST, "/batch/", None, Some(batch(&app))).await.expect(200);

    test_support::restart_cluster();

    let restarted = Instant::now();
    test_support::wait_until(Duration::from_secs(5), || async {
        app.request(reqwest::Method::GET, "/_ready", None, None).await.status == 200
    })
    .await;
    assert!(restarted.elapsed() < Duration::from_secs(5));
    let mut answers = Vec::new();
    for n in 0..200 {
        let reply = if n % 20 == 19 {
            app.request(reqwest::Method::POST, "/batch/", None, Some(batch(&app))).await
        } else {
            app.get(&paths[n % paths.len()]).await
        };
        answers.push((n, reply.status.as_u16(), reply.text));
    }
    let failures: Vec<_> = answers.iter().filter(|(_, status, _)| *status >= 500).collect();
    assert!(failures.is_empty(), "{} of 200 requests failed after the restart: {failures:?}", failures.len());
    assert!(answers.iter().all(|(_, status, _)| *status == 200), "{answers:?}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ai_events WHERE event = '$ai_generation'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 2 + 10 * 2, "every acknowledged batch is stored");
}
