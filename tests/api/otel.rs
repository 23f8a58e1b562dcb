//! Spec section 5.1: OpenTelemetry traces at `/i/v0/ai/otel`. The real posthog SDK's OTel
//! span processor with the real OpenInference and OpenLLMetry instrumentations around the
//! real `openai` client (aimed at the fake provider); protobuf exports built with the OTel
//! SDK, sent twice and gzipped; OTLP JSON; every error status; and an OTel generation
//! judged end to end and broken down by its resource's `deployment.environment`.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use test_support::wait_until;
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::evaluations::{create_evaluation, create_key, evaluation_body, id_of};
use crate::helpers::*;
use crate::ingestion::{capture_raw, raw_post_to, run, target_dir};

pub(crate) const OTEL: &str = "/i/v0/ai/otel";
const DEADLINE: Duration = Duration::from_secs(60);

/// The Python with the posthog SDK's OTel extra, the OTel SDK and exporter, the openai
/// client and both instrumentations (`tests/python-requirements.txt`).
fn otel_python() -> PathBuf {
    crate::ingestion::test_python()
}

/// Runs a Python script with arguments; returns its stdout.
fn python(script: &str, args: &[&str]) -> String {
    let file = target_dir().join("tmp").join(format!("otel-{}.py", Uuid::new_v4().simple()));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, script).unwrap();
    let out = run(Command::new(otel_python()).arg(&file).args(args), "an OTel Python script");
    let _ = std::fs::remove_file(&file);
    out
}

/// An app instrumented with one instrumentation, exporting through the posthog SDK's
/// processor, making one chat completion with the real openai client.
const INSTRUMENTED_APP: &str = r#"
import sys
host, token, base_url, which = sys.argv[1:5]
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from posthog.ai.otel import PostHogSpanProcessor

provider = TracerProvider(resource=Resource.create({
    "service.name": "otel-app", "deployment.environment": "staging", "posthog.distinct_id": "otel-user"}))
provider.add_span_processor(PostHogSpanProcessor(api_key=token, host=host))
trace.set_tracer_provider(provider)
if which == "openinference":
    from openinference.instrumentation.openai import OpenAIInstrumentor
else:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
OpenAIInstrumentor().instrument(tracer_provider=provider)

import openai
client = openai.OpenAI(api_key="sk-app-key", base_url=base_url, max_retries=0)
with trace.get_tracer("app").start_as_current_span("handle request"):
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}])
provider.force_flush()
provider.shutdown()
print(answer.choices[0].message.content)
"#;

/// Exports one GenAI span with the OTel SDK's own OTLP/HTTP protobuf exporter, `times`
/// times, optionally gzipped; prints the trace id.
const SDK_EXPORT: &str = r#"
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

endpoint, token, times, gzip = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "gzip"
memory = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "sdk-export", "deployment.environment": "production"}))
provider.add_span_processor(SimpleSpanProcessor(memory))
with provider.get_tracer("export").start_as_current_span("chat gpt-4o-mini") as span:
    span.set_attribute("gen_ai.operation.name", "chat")
    span.set_attribute("gen_ai.provider.name", "openai")
    span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
    span.set_attribute("gen_ai.usage.input_tokens", 11)
    span.set_attribute("gen_ai.usage.output_tokens", 3)
    span.set_attribute("gen_ai.input.messages", '[{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]')
    span.set_attribute("gen_ai.output.messages", '[{"role": "assistant", "parts": [{"type": "text", "content": "Hello!"}]}]')
    trace_id = format(span.get_span_context().trace_id, "032x")
exporter = OTLPSpanExporter(endpoint=endpoint, headers={"Authorization": "Bearer " + token},
                            compression=Compression.Gzip if gzip else Compression.NoCompression)
for _ in range(times):
    result = exporter.export(memory.get_finished_spans())
    if result.name != "SUCCESS":
        sys.exit("export failed: " + result.name)
print(trace_id)
"#;

fn chat_completion() -> Value {
    json!({
        "id": "chatcmpl-app", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 2, "total_tokens": 23}
    })
}

/// The fake OpenAI answers the instrumented app (requests that are not the judge's).
async fn app_llm(app: &TestApp) {
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat_completion()))
        .mount(&app.providers)
        .await;
}

async fn stored(app: &TestApp) -> Vec<(String, String, Value)> {
    sqlx::query_as("SELECT event, distinct_id, properties FROM ai_events WHERE project_id = $1 ORDER BY timestamp")
        .bind(app.project)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

async fn generations(app: &TestApp) -> Vec<Value> {
    stored(app).await.into_iter().filter(|(event, _, _)| event == "$ai_generation").map(|(_, _, p)| p).collect()
}

async fn instrumented_app_sends_a_generation(which: &str) {
    let app = TestApp::spawn().await;
    app_llm(&app).await;
    let base_url = format!("{}/openai/v1", app.providers.uri());
    let answer = python(INSTRUMENTED_APP, &[&app.base_url, &app.project_token, &base_url, which]);
    assert_eq!(answer.trim(), "Paris.");

    wait_until(DEADLINE, || async { !generations(&app).await.is_empty() }).await;
    let rows = stored(&app).await;
    let (_, distinct_id, p) = rows.iter().find(|(event, _, _)| event == "$ai_generation").unwrap().clone();
    assert_eq!(distinct_id, "otel-user");
    assert_eq!(p["$ai_model"], "gpt-4o-mini-2024-07-18", "{which}: {p}");
    assert_eq!(p["$ai_provider"], "openai");
    assert_eq!(
        p["$ai_input"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]),
        "{which}"
    );
    assert_eq!(p["$ai_output_choices"], json!([{"role": "assistant", "content": "Paris."}]));
    assert_eq!((p["$ai_input_tokens"].clone(), p["$ai_output_tokens"].clone()), (json!(21), json!(2)));
    assert_eq!(p["deployment.environment"], "staging");
    assert_eq!(p["service.name"], "otel-app");
    assert_eq!(p["$ai_trace_id"].as_str().unwrap().len(), 32);
    assert!(p["$ai_parent_id"].is_string(), "the app's own span is the parent");
    assert!(p["$ai_latency"].as_f64().is_some());
    assert_eq!(generations(&app).await.len(), 1, "one LLM call, one generation");
}

#[tokio::test]
async fn openinference_spans_through_the_posthog_processor_become_generations() {
    instrumented_app_sends_a_generation("openinference").await;
}

#[tokio::test]
async fn openllmetry_spans_through_the_posthog_processor_become_generations() {
    instrumented_app_sends_a_generation("openllmetry").await;
}

#[tokio::test]
async fn sdk_exports_are_stored_once_however_often_sent_plain_or_gzipped() {
    let app = TestApp::spawn().await;
    let endpoint = format!("{}{OTEL}", app.base_url);
    let trace = python(SDK_EXPORT, &[&endpoint, &app.project_token, "2", "plain"]);
    let trace = trace.trim().to_owned();
    assert_eq!(generations(&app).await.len(), 1, "sent twice, stored once");

    let appended = format!("{}{OTEL}/v1/traces", app.base_url);
    python(SDK_EXPORT, &[&appended, &app.project_token, "1", "gzip"]);
    let stored = generations(&app).await;
    assert_eq!(stored.len(), 2, "a new span through the gzip exporter at /v1/traces");
    let first = stored.iter().find(|p| p["$ai_trace_id"] == trace.as_str()).expect("the first trace");
    assert_eq!(first["$ai_input"], json!([{"role": "user", "content": "Hi"}]));
    assert_eq!(first["deployment.environment"], "production");
}

fn ids() -> (String, String) {
    (Uuid::new_v4().simple().to_string(), Uuid::new_v4().simple().to_string()[..16].to_owned())
}

/// An OTLP JSON export of one span with `attributes` (OTLP JSON values).
pub(crate) fn otlp_json(trace: &str, span: &str, attributes: Value) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-app"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": trace, "spanId": span, "name": "chat", "kind": 3,
            "startTimeUnixNano": "1772625600000000000", "endTimeUnixNano": "1772625601000000000",
            "attributes": attributes,
            "status": {"code": 2, "message": "rate limited upstream"}
        }]}]
    }]})
}

pub(crate) async fn post(app: &TestApp, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    capture_raw(app, path, body, headers).await
}

#[tokio::test]
async fn otlp_json_is_answered_in_json_and_invalid_spans_are_a_partial_success() {
    let app = TestApp::spawn().await;
    let (trace, span) = ids();
    let attributes = json!([
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "9"}},
        {"key": "prompt.version", "value": {"stringValue": "v2"}}
    ]);
    let mut export = otlp_json(&trace, &span, attributes);
    // A second span without ids: dropped as invalid, counted in partial_success.
    let invalid = json!({"traceId": "", "spanId": "", "name": "broken",
                         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]});
    export["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array_mut().unwrap().push(invalid);
    let token = format!("{OTEL}?token={}", app.project_token);

    let reply = post(&app, &token, export.to_string().into_bytes(), &[("content-type", "application/json")]).await;
    let reply = reply.expect(200);
    assert!(reply.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let answer = reply.json();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], json!(1), "{answer}");

    let stored = generations(&app).await;
    assert_eq!(stored.len(), 1);
    let p = &stored[0];
    assert_eq!((p["$ai_model"].clone(), p["$ai_input_tokens"].clone()), (json!("gpt-4o"), json!(9)));
    assert_eq!(p["prompt.version"], "v2");
    assert_eq!(p["$ai_is_error"], true);
    assert_eq!(p["$ai_error"], "rate limited upstream");
    assert_eq!(p["$ai_latency"], json!(1.0));
    assert_eq!(p["service.name"], "json-app");
}

#[tokio::test]
async fn every_error_status_and_nothing_stored() {
    let app = TestApp::spawn().await;
    let (trace, span) = ids();
    let body = otlp_json(&trace, &span, json!([{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]));
    let json_type = ("content-type", "application/json");
    let bearer = format!("Bearer {}", app.project_token);

    let missing = post(&app, OTEL, body.to_string().into_bytes(), &[json_type]).await.expect(401);
    assert!(missing.json()["detail"].as_str().unwrap().contains("Authorization: Bearer"));
    post(&app, OTEL, body.to_string().into_bytes(), &[json_type, ("authorization", "Bearer phc_unknown")])
        .await
        .expect(401);
    let garbage = post(
        &app,
        OTEL,
        vec![0xff, 0xff, 0x01],
        &[("content-type", "application/x-protobuf"), ("authorization", &bearer)],
    )
    .await
    .expect(400);
    assert!(garbage.json()["detail"].as_str().unwrap().contains("OTLP"));
    post(&app, OTEL, b"{\"resourceSpans\": 7}".to_vec(), &[json_type, ("authorization", &bearer)]).await.expect(400);
    post(&app, OTEL, body.to_string().into_bytes(), &[("content-type", "text/plain"), ("authorization", &bearer)])
        .await
        .expect(415);
    // Raw connections: the server answers 413 before the body is sent.
    let headers = format!("Content-Type: application/json\r\nAuthorization: {bearer}\r\n");
    let (status, body) = raw_post_to(&app, OTEL, &headers, Some(21 * 1024 * 1024), 1).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = raw_post_to(&app, OTEL, &headers, None, 25).await;
    assert_eq!(status, 413, "{body}");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&vec![b' '; 25 * 1024 * 1024]).unwrap();
    let bomb = encoder.finish().unwrap();
    post(&app, OTEL, bomb, &[json_type, ("authorization", &bearer), ("content-encoding", "gzip")]).await.expect(413);
    assert!(stored(&app).await.is_empty(), "nothing of a refused export is stored");

    // A span that is not AI is answered 200 and ignored.
    let plain = otlp_json(&trace, &span, json!([{"key": "http.method", "value": {"stringValue": "GET"}}]));
    post(&app, OTEL, plain.to_string().into_bytes(), &[json_type, ("authorization", &bearer)]).await.expect(200);
    assert!(stored(&app).await.is_empty());
}

#[tokio::test]
async fn otel_generations_are_judged_and_break_down_by_resource_attribute() {
    let app = TestApp::spawn().await;
    app_llm(&app).await;
    let verdict = json!({"verdict": true, "reasoning": "Short and right.", "applicable": true});
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .and(body_string_contains("evaluation_verdict"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": verdict.to_string()}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9}
        })))
        .with_priority(1)
        .mount(&app.providers)
        .await;
    let key = create_key(&app, "openai", "judge key").await;
    let mut body = evaluation_body("Concise");
    body["enabled"] = json!(true);
    body["model_configuration"] = json!({"provider": "openai", "model": "gpt-5-mini", "provider_key_id": key});
    let evaluation = id_of(&create_evaluation(&app, body).await);

    let base_url = format!("{}/openai/v1", app.providers.uri());
    python(INSTRUMENTED_APP, &[&app.base_url, &app.project_token, &base_url, "openinference"]);
    wait_until(DEADLINE, || async { stored(&app).await.iter().any(|(event, _, _)| event == "$ai_evaluation") }).await;

    let report = app
        .get(&app.llma(&format!("evaluation_results/?evaluation_id={evaluation}&breakdown=deployment.environment")))
        .await
        .expect(200)
        .json();
    assert_eq!(report["totals"]["runs"], 1);
    assert_eq!(report["breakdown_values"][0]["value"], "staging", "{report}");
    let judge_request = fake::requests_to(&app.providers, "/openai/v1/chat/completions")
        .await
        .into_iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains("evaluation_verdict"))
        .expect("the judge was called");
    let prompt = String::from_utf8_lossy(&judge_request.body).into_owned();
    assert!(prompt.contains("user: Capital of France?") && prompt.contains("assistant: Paris."), "{prompt}");
}

#[tokio::test]
async fn the_openapi_document_lists_the_otel_paths() {
    let app = TestApp::spawn().await;
    let schema = app.request(reqwest::Method::GET, "/api/schema/", None, None).await.expect(200).json();
    let paths = schema["paths"].as_object().unwrap();
    assert!(paths.contains_key("/i/v0/ai/otel"));
    assert!(paths.contains_key("/i/v0/ai/otel/v1/traces"));
}
