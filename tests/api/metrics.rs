//! Spec section 10: `GET /metrics` on its own listener, scraped after known traffic —
//! every counter moved by exactly what was sent, routes labelled by their template.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use test_support::wait_until;

use crate::evaluations::id_of;
use crate::helpers::*;
use crate::ingestion::{capture, sdk_event};
use crate::judge::{TRIAL_ENV, enabled_evaluation, generation, judge_answers};

/// The samples of a Prometheus text page: (name, labels, value).
fn samples(page: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key.to_owned(), value.trim_matches('"').to_owned()))
                })
                .collect();
            Some((name.to_owned(), labels, value.parse().ok()?))
        })
        .collect()
}

/// The value of `name` with at least `labels`, summed over the other labels (0 when absent).
pub(crate) fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(page)
        .into_iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| v)
        .sum()
}

pub(crate) async fn scrape(app: &TestApp) -> String {
    let url = app.metrics_url.as_ref().expect("the server prints its metrics address");
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_exactly_what_was_sent() {
    let mut env = TRIAL_ENV.to_vec();
    env.push(("LLMA_SCHEDULER_INTERVAL_SECS", "0"));
    let app = TestApp::spawn_with(&env).await;

    // HTTP: by route template, method and status; unknown paths share `unmatched`.
    for _ in 0..3 {
        app.get(&app.llma("provider_keys/")).await.expect(200);
    }
    app.get(&app.llma("provider_keys")).await.expect(200);
    app.get(&app.llma(&format!("provider_keys/{}/", uuid::Uuid::now_v7()))).await.expect(404);
    app.get("/no/such/path").await.expect(404);

    // Events: 5 generations judged on trial credits, then the same batch again.
    judge_answers(&app, true).await;
    let evaluation = enabled_evaluation(&app, "Politeness", Value::Null, json!({})).await;
    let events: Vec<Value> = (0..5).map(|_| generation(json!({}))).collect();
    let mut batch = events.clone();
    batch.push(sdk_event("$pageview", json!({})));
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": batch})).await.expect(200);
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": events})).await.expect(200);
    let runs_path = format!("/api/environments/{}/evaluation_runs/?evaluation_id={evaluation}", app.project);
    wait_until(Duration::from_secs(60), || async { app.get(&runs_path).await.json()["count"] == 5 }).await;

    let page = scrape(&app).await;
    let list = [("route", "/api/environments/{project_id}/llm_analytics/provider_keys"), ("method", "GET")];
    assert_eq!(value(&page, "llma_http_requests_total", &[list[0], list[1], ("status", "200")]), 4.0, "{page}");
    let one = [("route", "/api/environments/{project_id}/llm_analytics/provider_keys/{id}"), ("status", "404")];
    assert_eq!(value(&page, "llma_http_requests_total", &one), 1.0);
    assert_eq!(value(&page, "llma_http_requests_total", &[("route", "unmatched"), ("status", "404")]), 1.0);
    assert!(!page.contains("/api/environments/1/"), "raw paths never become labels");
    assert_eq!(value(&page, "llma_http_request_duration_seconds_count", &list), 4.0);
    assert_eq!(value(&page, "llma_events_ingested_total", &[("source", "capture")]), 5.0);
    assert_eq!(value(&page, "llma_events_duplicate_total", &[("source", "capture")]), 5.0);
    assert_eq!(value(&page, "llma_events_dropped_total", &[("source", "capture")]), 1.0);
    let judge = [("provider", "openai"), ("purpose", "judge"), ("outcome", "ok")];
    assert_eq!(value(&page, "llma_llm_calls_total", &judge), 5.0);
    assert_eq!(value(&page, "llma_llm_tokens_total", &[("purpose", "judge"), ("direction", "in")]), 5.0 * 80.0);
    assert_eq!(value(&page, "llma_llm_tokens_total", &[("purpose", "judge"), ("direction", "out")]), 5.0 * 12.0);
    assert_eq!(value(&page, "llma_llm_call_duration_seconds_count", &[("purpose", "judge")]), 5.0);
    assert_eq!(value(&page, "llma_trial_credits_used_total", &[]), 5.0);

    // Gauges refreshed from the database: the judge jobs are done, the pool is in use.
    wait_until(Duration::from_secs(30), || async {
        let page = scrape(&app).await;
        page.contains("llma_jobs{") && page.contains("llma_db_pool_connections{")
    })
    .await;
    let page = scrape(&app).await;
    assert_eq!(value(&page, "llma_jobs", &[("kind", "judge"), ("state", "queued")]), 0.0);
    assert!(
        samples(&page).iter().any(|(name, labels, _)| name == "llma_db_pool_connections"
            && labels.get("state").map(String::as_str) == Some("idle")),
        "the idle-connections series is exported"
    );
    assert!(
        value(&page, "llma_db_pool_connections", &[("state", "in_use")])
            + value(&page, "llma_db_pool_connections", &[("state", "idle")])
            >= 1.0,
        "the pool holds a connection after the traffic above"
    );
    assert!(page.contains("llma_jobs_oldest_due_age_seconds"));

    // Deliveries: a manual report run to one webhook.
    let hooks = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    let target = json!([{"type": "webhook", "url": format!("{}/hook", hooks.uri()), "secret": "x".repeat(32)}]);
    let report = app
        .post(&app.llma("evaluation_reports/"), json!({"evaluation": evaluation, "delivery_targets": target}))
        .await
        .expect(201)
        .json();
    let report = id_of(&report);
    app.request(Method::POST, &app.llma(&format!("evaluation_reports/{report}/generate/")), Some(&app.admin_key), None)
        .await
        .expect(202);
    wait_until(Duration::from_secs(60), || async {
        value(&scrape(&app).await, "llma_deliveries_total", &[("target", "webhook"), ("outcome", "sent")]) == 1.0
    })
    .await;
}

#[tokio::test]
async fn every_counter_with_known_labels_is_at_zero_from_the_first_scrape() {
    let app = TestApp::spawn().await;

    let page = scrape(&app).await;

    let exists_at_zero = |name: &str, labels: &[(&str, &str)]| {
        samples(&page).iter().any(|(n, l, v)| {
            n == name && *v == 0.0 && labels.iter().all(|(k, want)| l.get(*k).map(String::as_str) == Some(*want))
        })
    };
    for source in ["capture", "otel"] {
        for name in [
            "llma_events_ingested_total",
            "llma_events_duplicate_total",
            "llma_events_dropped_total",
            "llma_events_unpriced_total",
        ] {
            assert!(exists_at_zero(name, &[("source", source)]), "{name}{{source={source}}}");
        }
    }
    for target in ["email", "slack", "webhook"] {
        for outcome in ["sent", "retryable_failure", "failed"] {
            assert!(
                exists_at_zero("llma_deliveries_total", &[("target", target), ("outcome", outcome)]),
                "llma_deliveries_total{{{target},{outcome}}}"
            );
        }
    }
    for provider in ["openai", "anthropic", "gemini", "azure_openai", "fireworks", "openrouter", "together_ai"] {
        for purpose in ["judge", "summary", "report"] {
            for outcome in ["ok", "key_rejected", "rate_limited", "timeout", "unavailable", "bad_output"] {
                let labels = [("provider", provider), ("purpose", purpose), ("outcome", outcome)];
                assert!(exists_at_zero("llma_llm_calls_total", &labels), "llma_llm_calls_total{labels:?}");
            }
        }
    }
    assert!(exists_at_zero("llma_trial_credits_used_total", &[]));
    assert!(exists_at_zero("llma_ingest_memory_refused_total", &[]));

    // The job gauges are read from the shared database: labelled so, since every replica
    // reports the same figures (take their max, not their sum).
    wait_until(Duration::from_secs(30), || async { scrape(&app).await.contains("llma_jobs_oldest_due_age_seconds") })
        .await;
    let page = scrape(&app).await;
    let ages: Vec<_> = samples(&page).into_iter().filter(|(n, _, _)| n == "llma_jobs_oldest_due_age_seconds").collect();
    assert!(!ages.is_empty() && ages.iter().all(|(_, l, _)| l.get("scope").map(String::as_str) == Some("database")));
}
