//! Spec section 5.2: what each generation cost, decided at ingestion — the client's costs
//! kept, its per-token prices multiplied out, else the pinned price table; capture and
//! OTLP alike; a model found nowhere gets no cost and is counted.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::ingestion::{capture, sdk_event};
use crate::metrics::{scrape, value};
use crate::otel::{OTEL, otlp_json, post};

async fn properties_of(app: &TestApp, uuid: &str) -> Value {
    sqlx::query_scalar("SELECT properties FROM ai_events WHERE project_id = $1 AND uuid = $2::uuid")
        .bind(app.project)
        .bind(uuid)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

fn close(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-12)
}

#[tokio::test]
async fn every_generation_is_priced_in_the_references_order_without_overwriting_the_client() {
    let app = TestApp::spawn().await;
    let passthrough = sdk_event(
        "$ai_generation",
        json!({"$ai_model": "gpt-4o", "$ai_input_tokens": 10, "$ai_input_cost_usd": 0.25, "$ai_output_cost_usd": 0.5}),
    );
    let custom = sdk_event(
        "$ai_generation",
        json!({"$ai_model": "house-model", "$ai_input_tokens": 1000, "$ai_output_tokens": 10,
               "$ai_input_token_price": 0.000001, "$ai_output_token_price": 0.00001}),
    );
    let table = sdk_event(
        "$ai_generation",
        json!({"$ai_model": "gpt-4o", "$ai_provider": "openai", "$ai_input_tokens": 1000, "$ai_output_tokens": 100}),
    );
    let unknown = sdk_event("$ai_generation", json!({"$ai_model": "mystery-model-9", "$ai_input_tokens": 5}));
    let embedding =
        sdk_event("$ai_embedding", json!({"$ai_model": "text-embedding-3-small", "$ai_input_tokens": 1000}));
    let events = [passthrough.clone(), custom.clone(), table.clone(), unknown.clone(), embedding.clone()];
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": events})).await.expect(200);

    let kept = properties_of(&app, passthrough["uuid"].as_str().unwrap()).await;
    assert!(close(&kept["$ai_total_cost_usd"], 0.75), "{kept}");
    assert_eq!(
        (kept["$ai_input_cost_usd"].clone(), kept["$ai_cost_model_source"].clone()),
        (json!(0.25), json!("passthrough"))
    );

    let multiplied = properties_of(&app, custom["uuid"].as_str().unwrap()).await;
    assert!(close(&multiplied["$ai_total_cost_usd"], 1000.0 * 0.000001 + 10.0 * 0.00001), "{multiplied}");
    assert_eq!(multiplied["$ai_cost_model_source"], "custom");

    let looked_up = properties_of(&app, table["uuid"].as_str().unwrap()).await;
    assert_eq!(looked_up["$ai_cost_model_source"], "table", "{looked_up}");
    assert_eq!(
        (looked_up["$ai_model_cost_used"].clone(), looked_up["$ai_cost_model_provider"].clone()),
        (json!("gpt-4o"), json!("openai"))
    );
    assert!(looked_up["$ai_cost_model_table_version"].as_str().unwrap().starts_with("litellm-"));
    let total = looked_up["$ai_total_cost_usd"].as_f64().unwrap();
    let parts = looked_up["$ai_input_cost_usd"].as_f64().unwrap() + looked_up["$ai_output_cost_usd"].as_f64().unwrap();
    assert!(total > 0.0 && (total - parts).abs() < 1e-12, "{looked_up}");

    let embedded = properties_of(&app, embedding["uuid"].as_str().unwrap()).await;
    assert_eq!(embedded["$ai_cost_model_source"], "table", "{embedded}");

    let unpriced = properties_of(&app, unknown["uuid"].as_str().unwrap()).await;
    assert!(unpriced.get("$ai_total_cost_usd").is_none() && unpriced.get("$ai_cost_model_source").is_none());
    assert_eq!(value(&scrape(&app).await, "llma_events_unpriced_total", &[("source", "capture")]), 1.0);
}

#[tokio::test]
async fn an_otel_span_with_tokens_and_no_cost_is_priced_like_a_capture() {
    let app = TestApp::spawn().await;
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let attributes = json!([
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "100"}}
    ]);
    let export = otlp_json(&trace, &uuid::Uuid::new_v4().simple().to_string()[..16], attributes);
    let path = format!("{OTEL}?token={}", app.project_token);
    post(&app, &path, export.to_string().into_bytes(), &[("content-type", "application/json")]).await.expect(200);

    let stored: Value = sqlx::query_scalar("SELECT properties FROM ai_events WHERE project_id = $1 AND trace_id = $2")
        .bind(app.project)
        .bind(&trace)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored["$ai_cost_model_source"], "table", "{stored}");
    assert!(stored["$ai_total_cost_usd"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn a_projects_own_price_prices_its_generations_before_the_table_from_its_valid_from() {
    let app = TestApp::spawn().await;
    let prices = app.llma("model_prices/");
    let created = app
        .post(
            &prices,
            json!({"model": "GPT-4o", "input_cost_per_token": 0.001, "output_cost_per_token": 0.002,
                   "valid_from": "2020-01-01T00:00:00Z"}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(
        (created["match"].clone(), created["provider"].clone(), created["cache_read_cost_per_token"].clone()),
        (json!("exact"), Value::Null, Value::Null)
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let pattern = app
        .post(
            &prices,
            json!({"model": "^house-.*", "match": "regex", "provider": "vllm", "input_cost_per_token": 0.0,
                   "output_cost_per_token": 0.0001}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(pattern["match"], "regex");

    let ours =
        sdk_event("$ai_generation", json!({"$ai_model": "gpt-4o", "$ai_input_tokens": 10, "$ai_output_tokens": 1}));
    let routed = sdk_event(
        "$ai_generation",
        json!({"$ai_model": "house-llama", "$ai_provider": "vllm", "$ai_output_tokens": 10}),
    );
    let other_provider = sdk_event("$ai_generation", json!({"$ai_model": "house-llama", "$ai_provider": "ollama"}));
    let batch = [ours.clone(), routed.clone(), other_provider.clone()];
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": batch})).await.expect(200);

    let priced = properties_of(&app, ours["uuid"].as_str().unwrap()).await;
    assert_eq!(priced["$ai_cost_model_source"], "project", "{priced}");
    assert!(close(&priced["$ai_total_cost_usd"], 10.0 * 0.001 + 0.002));
    let by_pattern = properties_of(&app, routed["uuid"].as_str().unwrap()).await;
    assert!(close(&by_pattern["$ai_total_cost_usd"], 10.0 * 0.0001), "{by_pattern}");
    let unmatched = properties_of(&app, other_provider["uuid"].as_str().unwrap()).await;
    assert!(unmatched.get("$ai_cost_model_source").is_none(), "another provider's model: {unmatched}");

    let path = format!("{prices}{id}/");
    let changed = app.patch(&path, json!({"output_cost_per_token": 0.5})).await.expect(200).json();
    assert_eq!(
        (changed["output_cost_per_token"].clone(), changed["input_cost_per_token"].clone()),
        (json!(0.5), json!(0.001))
    );
    let listed = app.get(&prices).await.expect(200).json();
    assert_eq!(listed["count"], 2);
    for (body, attr) in [
        (json!({"model": "m", "input_cost_per_token": -1, "output_cost_per_token": 0}), "input_cost_per_token"),
        (json!({"model": "m", "input_cost_per_token": 0}), "output_cost_per_token"),
        (json!({"model": "(", "match": "regex", "input_cost_per_token": 0, "output_cost_per_token": 0}), "model"),
        (json!({"model": "m", "match": "glob", "input_cost_per_token": 0, "output_cost_per_token": 0}), "match"),
        (json!({"model": " ", "input_cost_per_token": 0, "output_cost_per_token": 0}), "model"),
        (json!({"model": "m", "input_cost_per_token": "0.1", "output_cost_per_token": 0}), "input_cost_per_token"),
    ] {
        let refused = app.post(&prices, body.clone()).await.expect(400).json();
        assert_eq!(refused["attr"], attr, "{body}: {refused}");
    }
    let reader = app.user_with_key("reader@example.com", Some((app.project, "member")), "llm_analytics:read", None);
    app.request(reqwest::Method::GET, &prices, Some(&reader), None).await.expect(200);
    let denied = app.request(reqwest::Method::DELETE, &path, Some(&reader), None).await;
    assert_eq!(denied.status.as_u16(), 403);
    app.request(reqwest::Method::DELETE, &path, None, None).await.expect(401);
    app.delete(&path).await.expect(204);
    app.get(&path).await.expect(404);
}

#[tokio::test]
async fn evaluation_results_sum_what_the_judged_generations_cost_per_breakdown_value() {
    use crate::evaluations::create_key;
    use crate::judge::{enabled_evaluation, generation, judge_answers, send, wait_for_quiet, wait_for_results};

    let app = TestApp::spawn().await;
    judge_answers(&app, true).await;
    let key = create_key(&app, "openai", "judge key").await;
    let evaluation = enabled_evaluation(
        &app,
        "cost",
        json!({"provider": "openai", "model": "gpt-5", "provider_key_id": key}),
        json!({}),
    )
    .await;
    let paid =
        |env: &str, cost: f64| generation(json!({"env": env, "$ai_input_cost_usd": cost, "$ai_output_cost_usd": 0.0}));
    let table_priced = generation(
        json!({"env": "staging", "$ai_model": "gpt-4o", "$ai_input_tokens": 1000, "$ai_output_tokens": 100}),
    );
    let events = [paid("production", 0.02), paid("production", 0.005), paid("staging", 0.25), table_priced.clone()];
    send(&app, &events).await;
    wait_for_results(&app, 4).await;
    wait_for_quiet(&app).await;
    let table_cost = properties_of(&app, table_priced["uuid"].as_str().unwrap()).await["$ai_total_cost_usd"]
        .as_f64()
        .expect("gpt-4o is in the pinned table");

    let path = format!("evaluation_results/?evaluation_id={evaluation}&breakdown=env&include_cost=true");
    let report = app.get(&app.llma(&path)).await.expect(200).json();

    assert!(close(&report["totals"]["total_cost_usd"], 0.275 + table_cost), "{report}");
    assert_eq!(report["totals"]["costed_runs"], 4);
    let values = report["breakdown_values"].as_array().unwrap();
    let by_value =
        |name: &str| values.iter().find(|v| v["value"] == name).unwrap_or_else(|| panic!("{name}: {report}"));
    assert!(close(&by_value("production")["total_cost_usd"], 0.025), "{report}");
    assert_eq!(by_value("production")["costed_runs"], 2);
    assert!(close(&by_value("staging")["total_cost_usd"], 0.25 + table_cost), "{report}");
    assert!(report["trend"][0].get("total_cost_usd").is_some());

    let plain = app.get(&app.llma(&format!("evaluation_results/?evaluation_id={evaluation}&breakdown=env"))).await;
    let plain = plain.expect(200).json();
    assert!(plain["totals"].get("total_cost_usd").is_none(), "the reference's shape unless asked: {plain}");
    let bad = app.get(&app.llma(&format!("evaluation_results/?evaluation_id={evaluation}&include_cost=maybe"))).await;
    assert_eq!(bad.expect(400).json()["attr"], "include_cost");
}
