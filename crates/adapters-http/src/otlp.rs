//! OpenTelemetry traces (spec section 5.1): `POST /i/v0/ai/otel` (and `/v1/traces` under
//! it), where the posthog SDKs' OTel helpers and any OTLP/HTTP exporter send spans.
//! Decoding and authentication only: OTLP protobuf or JSON (gzip allowed, the capture
//! size limit) into the domain's spans; which spans are AI and what they become is the
//! domain's `otel` mapping, and storage is the ingestion service's.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use domain::otel::{Span, SpanEvent, SpanStatus};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtelStatusCode;
use prost::Message;
use serde_json::{Map, Value};

use crate::capture::{BudgetedBody, read_body};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The request's encoding, which the answer uses too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(ApiError::unsupported_media_type_with(
            "Send an OTLP trace export as `application/x-protobuf` or `application/json`.",
        )),
    }
}

/// The project token: `Authorization: Bearer <token>`, else `?token=`.
fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    bearer.or_else(|| {
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .find(|(key, _)| key == "token")
            .map(|(_, value)| value.into_owned())
    })
}

fn decode(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, ApiError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map_err(|_| ApiError::parse_error("The body is not an OTLP ExportTraceServiceRequest in protobuf.")),
        Encoding::Json => serde_json::from_slice(body).map_err(|error| {
            ApiError::parse_error(format!(
                "The body is not an OTLP ExportTraceServiceRequest in JSON (line {} column {}).",
                error.line(),
                error.column()
            ))
        }),
    }
}

/// An OTLP attribute value as JSON: key-value lists become objects, bytes hex.
fn json_value(value: &AnyValue) -> Value {
    match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(text)) => Value::String(text.clone()),
        Some(any_value::Value::BoolValue(flag)) => Value::Bool(*flag),
        Some(any_value::Value::IntValue(n)) => Value::from(*n),
        Some(any_value::Value::DoubleValue(x)) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Some(any_value::Value::ArrayValue(array)) => Value::Array(array.values.iter().map(json_value).collect()),
        Some(any_value::Value::KvlistValue(list)) => Value::Object(attributes(&list.values)),
        Some(any_value::Value::BytesValue(bytes)) => Value::String(hex::encode(bytes)),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

fn attributes(values: &[KeyValue]) -> Map<String, Value> {
    values.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, json_value))).collect()
}

/// The export's spans as the domain reads them.
fn spans(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                let status = span.status.as_ref();
                spans.push(Span {
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex::encode(&span.parent_span_id)),
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                    attributes: attributes(&span.attributes),
                    resource: resource.clone(),
                    events: span
                        .events
                        .iter()
                        .map(|event| SpanEvent { name: event.name.clone(), attributes: attributes(&event.attributes) })
                        .collect(),
                    status: SpanStatus {
                        error: status.is_some_and(|s| s.code == OtelStatusCode::Error as i32),
                        message: status.map(|s| s.message.clone()).unwrap_or_default(),
                    },
                });
            }
        }
    }
    spans
}

fn answer(encoding: Encoding, rejected: u64) -> Response {
    let response = ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: format!("{rejected} span(s) had no valid trace or span id and were dropped."),
        }),
    };
    match encoding {
        Encoding::Protobuf => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))], response.encode_to_vec()).into_response()
        }
        Encoding::Json => {
            let body = serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec());
            ([(header::CONTENT_TYPE, HeaderValue::from_static(JSON))], Bytes::from(body)).into_response()
        }
    }
}

/// Receives an OTLP/HTTP trace export. AI spans (OTel GenAI conventions, OpenInference,
/// OpenLLMetry) become `$ai_generation`, `$ai_embedding` or `$ai_span` events; other spans
/// are ignored. Authenticated by the project's public token.
#[utoipa::path(post, path = "/i/v0/ai/otel", tag = "capture",
    request_body(content_type = "application/x-protobuf",
        description = "An OTLP `ExportTraceServiceRequest` in protobuf (or, with `Content-Type: application/json`, OTLP JSON with hex ids); gzip with `Content-Encoding: gzip`."),
    params(("token" = Option<String>, Query, description = "The project's public token, when not sent as `Authorization: Bearer`")),
    responses(
        (status = 200, description = "An `ExportTraceServiceResponse` in the request's encoding; `partial_success` counts spans dropped as invalid"),
        (status = 400, body = ErrorBody, description = "Not an OTLP trace export; nothing stored"),
        (status = 401, body = ErrorBody, description = "No or unknown project token"),
        (status = 413, body = ErrorBody, description = "Larger than 20 MiB, compressed or decompressed"),
        (status = 415, body = ErrorBody, description = "Neither protobuf nor JSON, or a Content-Encoding other than gzip")),
    security(()))]
pub async fn otel_traces(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Result<Response, ApiError> {
    let received_at = Utc::now();
    let encoding = encoding(request.headers())?;
    let token = token(request.headers(), uri.query());
    // The token is checked before the body is decoded: an unknown sender costs no parsing.
    let project = app.ingestion.authenticate(token.as_deref()).await?;
    let BudgetedBody { bytes, reservation } = read_body(&app, uri.query(), request).await?;
    let spans = app.cpu.run(move || decode(&bytes, encoding).map(spans)).await??;
    let outcome = app.ingestion.ingest_spans(project, &spans, received_at).await?;
    drop(reservation);
    let dropped = outcome.ignored + outcome.rejected;
    crate::metrics_layer::ingested("otel", outcome.stored, outcome.duplicates, dropped, outcome.unpriced);
    Ok((StatusCode::OK, answer(encoding, outcome.rejected)).into_response())
}

/// The same, at the path exporters append the signal to.
#[utoipa::path(post, path = "/i/v0/ai/otel/v1/traces", tag = "capture",
    request_body(content_type = "application/x-protobuf", description = "As `/i/v0/ai/otel`."),
    responses((status = 200, description = "As `/i/v0/ai/otel`.")),
    security(()))]
pub async fn otel_traces_v1(state: State<AppState>, uri: OriginalUri, request: Request) -> Result<Response, ApiError> {
    otel_traces(state, uri, request).await
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan, Status};

    use super::*;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
    }

    fn request() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", any_value::Value::StringValue("app".into()))],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![ProtoSpan {
                        trace_id: vec![0xab; 16],
                        span_id: vec![0xcd; 8],
                        name: "chat".into(),
                        start_time_unix_nano: 10,
                        end_time_unix_nano: 20,
                        attributes: vec![
                            kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(5)),
                            kv(
                                "tags",
                                any_value::Value::ArrayValue(ArrayValue {
                                    values: vec![AnyValue { value: Some(any_value::Value::BoolValue(true)) }],
                                }),
                            ),
                            kv(
                                "nested",
                                any_value::Value::KvlistValue(KeyValueList {
                                    values: vec![kv("x", any_value::Value::DoubleValue(1.5))],
                                }),
                            ),
                        ],
                        status: Some(Status { message: "boom".into(), code: OtelStatusCode::Error as i32 }),
                        ..ProtoSpan::default()
                    }],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn protobuf_and_json_decode_to_the_same_spans() {
        let bytes = request().encode_to_vec();
        let from_protobuf = spans(decode(&bytes, Encoding::Protobuf).unwrap());
        let json = serde_json::to_vec(&request()).unwrap();
        assert!(String::from_utf8_lossy(&json).contains(&"ab".repeat(16)), "OTLP JSON carries hex ids");
        let from_json = spans(decode(&json, Encoding::Json).unwrap());
        assert_eq!(from_protobuf, from_json);
        let span = &from_protobuf[0];
        assert_eq!(span.trace_id, "ab".repeat(16));
        assert_eq!(span.span_id, "cd".repeat(8));
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.resource["service.name"], "app");
        assert_eq!(span.attributes["gen_ai.usage.input_tokens"], 5);
        assert_eq!(span.attributes["tags"], serde_json::json!([true]));
        assert_eq!(span.attributes["nested"], serde_json::json!({"x": 1.5}));
        assert!(span.status.error && span.status.message == "boom");
    }

    #[test]
    fn garbage_is_a_400_in_either_encoding() {
        assert_eq!(decode(b"\xff\xff\xff", Encoding::Protobuf).unwrap_err().status(), StatusCode::BAD_REQUEST);
        assert_eq!(decode(b"{\"resourceSpans\": 5}", Encoding::Json).unwrap_err().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_token_comes_from_the_bearer_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(token(&headers, Some("token=phc_q")), Some("phc_q".into()));
        headers.insert(header::AUTHORIZATION, "Bearer phc_h".parse().unwrap());
        assert_eq!(token(&headers, Some("token=phc_q")), Some("phc_h".into()));
        assert_eq!(token(&HeaderMap::new(), None), None);
    }
}
