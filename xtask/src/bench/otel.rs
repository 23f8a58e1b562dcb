//! otel: spans per second through `POST /i/v0/ai/otel` (OTLP protobuf, batches of 512
//! spans as the SDKs' batch processor sends them, 4 senders) beside `POST /batch/` with the
//! same generations as capture JSON, each for `--seconds` after `--warmup`. Every span
//! is an OTel GenAI chat span (model, provider, usage, input and output messages as the
//! current conventions' JSON); every event the `$ai_generation` that span becomes. The
//! target: protobuf decoding costs no more than JSON parsing (ratio ≥ 1).

use std::sync::Arc;

use anyhow::Result;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;

use super::load::{closed_loop, ok_body};
use super::report::{LoadResult, Measured, SummaryRow, ms, thousands};
use super::{BenchArgs, Setup, http_client};
use crate::process::{Interrupted, Signals};

/// Spans per export, as the OTel SDK's batch processor sends them by default.
const BATCH: u64 = 512;
const SENDERS: u64 = 4;
const TARGET_RATIO: f64 = 1.0;

const INPUT: &str = r#"[{"role": "system", "parts": [{"type": "text", "content": "You are a helpful travel assistant."}]}, {"role": "user", "parts": [{"type": "text", "content": "What should I see in Paris in two days?"}]}]"#;
const OUTPUT: &str = r#"[{"role": "assistant", "parts": [{"type": "text", "content": "Day one: the Louvre and a walk along the Seine to Notre-Dame. Day two: Montmartre in the morning, the Eiffel Tower at sunset."}], "finish_reason": "stop"}]"#;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

/// Distinct, valid ids for span `seq` of run `run` (the two measurements never collide).
fn ids(run: u64, seq: u64) -> ([u8; 16], [u8; 8]) {
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&(run + 1).to_be_bytes());
    trace[8..].copy_from_slice(&(seq / 4 + 1).to_be_bytes());
    (trace, (seq + 1).to_be_bytes())
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
}

/// One export of spans `first..first + BATCH`.
fn otlp_body(run: u64, first: u64) -> Vec<u8> {
    let end = now_nanos();
    let spans = (first..first + BATCH)
        .map(|seq| {
            let (trace, span) = ids(run, seq);
            Span {
                trace_id: trace.to_vec(),
                span_id: span.to_vec(),
                name: "chat gpt-4o-mini".into(),
                start_time_unix_nano: end - 1_200_000_000,
                end_time_unix_nano: end,
                attributes: vec![
                    text("gen_ai.operation.name", "chat"),
                    text("gen_ai.provider.name", "openai"),
                    text("gen_ai.request.model", "gpt-4o-mini"),
                    kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(42)),
                    kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(57)),
                    text("gen_ai.input.messages", INPUT),
                    text("gen_ai.output.messages", OUTPUT),
                    text("user.id", &format!("user-{}", seq % 5_000)),
                ],
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "bench-app"), text("deployment.environment", "production")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

/// The same generations as a capture batch (what the spans become).
fn capture_body(token: &str, run: u64, first: u64) -> Vec<u8> {
    let input: serde_json::Value = json!([
        {"role": "system", "content": "You are a helpful travel assistant."},
        {"role": "user", "content": "What should I see in Paris in two days?"}
    ]);
    let output = json!([{"role": "assistant", "content": "Day one: the Louvre and a walk along the Seine to Notre-Dame. Day two: Montmartre in the morning, the Eiffel Tower at sunset."}]);
    let batch: Vec<serde_json::Value> = (first..first + BATCH)
        .map(|seq| {
            let (trace, span) = ids(run, seq);
            let trace = trace.iter().map(|b| format!("{b:02x}")).collect::<String>();
            let span = span.iter().map(|b| format!("{b:02x}")).collect::<String>();
            json!({
                "event": "$ai_generation",
                "distinct_id": format!("user-{}", seq % 5_000),
                "uuid": format!("{}-{}-4{}-8{}-{}", &trace[..8], &trace[8..12], &trace[13..16], &span[1..4], &span[4..16]),
                "properties": {
                    "$ai_trace_id": trace, "$ai_span_id": span, "$ai_span_name": "chat gpt-4o-mini",
                    "$ai_model": "gpt-4o-mini", "$ai_provider": "openai", "$ai_latency": 1.2,
                    "$ai_input": input, "$ai_output_choices": output,
                    "$ai_input_tokens": 42, "$ai_output_tokens": 57,
                    "gen_ai.operation.name": "chat", "service.name": "bench-app", "deployment.environment": "production"
                }
            })
        })
        .collect();
    serde_json::to_vec(&json!({"api_key": token, "batch": batch})).unwrap_or_default()
}

type BodyMaker = Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>;

/// `SENDERS` workers posting bodies back to back (the shared closed loop); counts the
/// spans of the exports that finish inside the measured window.
async fn load(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    body: BodyMaker,
    args: &BenchArgs,
) -> Result<LoadResult> {
    let (client, url) = (client.clone(), Arc::<str>::from(url));
    let headers: Arc<[(&'static str, String)]> = headers.into();
    closed_loop(SENDERS, args, move |sender, iteration| {
        let mut request = client.post(&*url).body(body(sender * 1_000_000_000 + iteration * BATCH));
        for (name, value) in headers.iter() {
            request = request.header(*name, value);
        }
        let sent = request.send();
        Some(async move { ok_body(sent.await).await.map(|_| BATCH) })
    })
    .await
    .map(|load| load.result)
}

pub(super) async fn run(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<Measured> {
    let client = http_client(SENDERS)?;
    let token = setup.project_token.to_owned();
    // /batch/ first: the second measurement inserts into the bigger table, so the order
    // favours the yardstick, not the endpoint under test.
    eprintln!("xtask: otel: POST /batch/, {SENDERS} senders × {BATCH} generations as JSON");
    let batch_url = format!("{}/batch/", setup.base_url);
    let batch_headers = [("content-type", "application/json".to_owned())];
    let body_token = token.clone();
    let capture = tokio::select! {
        result = load(&client, &batch_url, &batch_headers, Arc::new(move |seq| capture_body(&body_token, 2, seq)), args) => result?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    eprintln!("xtask: otel: POST /i/v0/ai/otel with the same generations as OTLP protobuf spans");
    let otel_url = format!("{}/i/v0/ai/otel", setup.base_url);
    let otel_headers =
        [("content-type", "application/x-protobuf".to_owned()), ("authorization", format!("Bearer {token}"))];
    let otel = tokio::select! {
        result = load(&client, &otel_url, &otel_headers, Arc::new(|seq| otlp_body(1, seq)), args) => result?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    let otel_rate = otel.per_second(otel.items);
    let capture_rate = capture.per_second(capture.items);
    let ratio = otel_rate / capture_rate;
    let errors = otel.errors + capture.errors;
    Ok(Measured {
        title: format!("otel: {SENDERS} senders × {BATCH} spans, protobuf vs capture JSON"),
        lines: vec![
            ("/i/v0/ai/otel spans/s".to_owned(), thousands(otel_rate)),
            ("/i/v0/ai/otel export p50".to_owned(), ms(otel.percentile(50.0))),
            ("/batch/ events/s (same generations)".to_owned(), thousands(capture_rate)),
            ("/batch/ batch p50".to_owned(), ms(capture.percentile(50.0))),
            ("otel / batch".to_owned(), format!("{ratio:.2}")),
            ("errors".to_owned(), errors.to_string()),
        ],
        summary: SummaryRow {
            measurement: format!("OTel spans via `/i/v0/ai/otel` (protobuf, {SENDERS} senders × {BATCH} spans)"),
            server: format!("{} spans/s (export p50 {})", thousands(otel_rate), ms(otel.percentile(50.0))),
            yardstick: format!("the same generations via `/batch/` as JSON: {} events/s", thousands(capture_rate)),
            ratio: format!("{ratio:.2}"),
            target: format!("≥ {TARGET_RATIO}"),
            met: ratio >= TARGET_RATIO && errors == 0,
        },
        notes: Vec::new(),
        errors,
        first_error: otel.first_error.or(capture.first_error),
    })
}
