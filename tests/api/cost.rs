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
