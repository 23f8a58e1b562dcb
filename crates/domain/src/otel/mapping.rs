//! Which spans are AI calls, and the `$ai_*` event each becomes (spec section 5.1): a
//! table of sources per property, the first one present wins.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Span, messages};
use crate::ingestion::{AiEventName, ClientTime, IncomingEvent, MAX_DISTINCT_ID_CHARS, resolve_timestamp};

/// What an AI span is stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiSpanKind {
    Generation,
    Embedding,
    Span,
}

impl AiSpanKind {
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Generation => "$ai_generation",
            Self::Embedding => "$ai_embedding",
            Self::Span => "$ai_span",
        }
    }
}

const MODEL: [&str; 4] = ["gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "embedding.model_name"];
const PROVIDER: [&str; 4] = ["gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"];
const INPUT_TOKENS: [&str; 3] = ["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"];
const OUTPUT_TOKENS: [&str; 3] =
    ["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"];

fn text<'a>(attributes: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    attributes.get(key).and_then(Value::as_str).map(str::trim).filter(|text| !text.is_empty())
}

/// The first of `keys` present (not null, not an empty string).
fn first<'a>(attributes: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .filter_map(|key| attributes.get(*key))
        .find(|value| !value.is_null() && value.as_str().is_none_or(|text| !text.trim().is_empty()))
}

/// A token count as a number (instrumentations send integers, some as strings).
fn count(value: &Value) -> Option<Value> {
    match value {
        Value::Number(_) => Some(value.clone()),
        Value::String(text) => text.trim().parse::<u64>().ok().map(|n| json!(n)),
        _ => None,
    }
}

/// What the span is, or `None` for a span that is not an AI call (ignored).
pub fn classify(span: &Span) -> Option<AiSpanKind> {
    let attributes = &span.attributes;
    if let Some(operation) = text(attributes, "gen_ai.operation.name") {
        return Some(match operation {
            "chat" | "text_completion" | "generate_content" => AiSpanKind::Generation,
            "embeddings" => AiSpanKind::Embedding,
            _ => AiSpanKind::Span,
        });
    }
    if let Some(kind) = text(attributes, "openinference.span.kind") {
        return Some(match kind.to_ascii_uppercase().as_str() {
            "LLM" => AiSpanKind::Generation,
            "EMBEDDING" => AiSpanKind::Embedding,
            _ => AiSpanKind::Span,
        });
    }
    match text(attributes, "llm.request.type") {
        Some("chat" | "completion") => return Some(AiSpanKind::Generation),
        Some("embedding" | "embeddings") => return Some(AiSpanKind::Embedding),
        _ => {}
    }
    if text(attributes, "traceloop.span.kind").is_some() {
        return Some(AiSpanKind::Span);
    }
    let has_usage = first(attributes, &INPUT_TOKENS).is_some() || first(attributes, &OUTPUT_TOKENS).is_some();
    (text(attributes, "gen_ai.request.model").is_some() && has_usage).then_some(AiSpanKind::Generation)
}

/// The event's uuid: derived from the trace and span ids, so a re-sent export adds nothing.
pub fn event_uuid(trace_id: &str, span_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("otel-span:{trace_id}:{span_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn instant(nanos: u64) -> Option<DateTime<Utc>> {
    let seconds = i64::try_from(nanos / 1_000_000_000).ok()?;
    Utc.timestamp_opt(seconds, (nanos % 1_000_000_000) as u32).single()
}

fn distinct_id(span: &Span) -> String {
    let from = |attributes: &Map<String, Value>, key: &str| match attributes.get(key) {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let id = from(&span.resource, "posthog.distinct_id")
        .or_else(|| from(&span.resource, "user.id"))
        .or_else(|| from(&span.attributes, "user.id"))
        .unwrap_or_else(|| span.trace_id.clone());
    id.chars().take(MAX_DISTINCT_ID_CHARS).collect()
}

/// The `$ai_*` event of an AI span (`None` for any other span). Its time is the span's
/// start (clamped like capture's: not more than 23 h ahead or 400 days back of
/// `received_at`); every resource and span attribute not turned into a message list is
/// kept under its own name.
pub fn to_event(span: &Span, received_at: DateTime<Utc>) -> Option<IncomingEvent> {
    let kind = classify(span)?;
    let attributes = &span.attributes;
    let input = messages::input(attributes, &span.events);
    let output = messages::output(attributes, &span.events);
    let consumed: Vec<&str> =
        input.iter().chain(output.iter()).flat_map(|(_, keys)| keys.iter().map(String::as_str)).collect();

    let mut properties = Map::new();
    for (key, value) in span.resource.iter().chain(attributes.iter()) {
        if !consumed.contains(&key.as_str()) {
            properties.insert(key.clone(), value.clone());
        }
    }
    let mut set = |key: &str, value: Value| {
        properties.insert(key.to_owned(), value);
    };
    set("$ai_trace_id", json!(span.trace_id));
    set("$ai_span_id", json!(span.span_id));
    if let Some(parent) = span.parent_span_id.as_deref().filter(|p| !p.is_empty()) {
        set("$ai_parent_id", json!(parent));
    }
    set("$ai_span_name", json!(span.name));
    let started = instant(span.start_unix_nanos);
    if span.end_unix_nanos >= span.start_unix_nanos && span.start_unix_nanos > 0 {
        set("$ai_latency", json!((span.end_unix_nanos - span.start_unix_nanos) as f64 / 1e9));
    }
    if let Some(model) = first(attributes, &MODEL) {
        set("$ai_model", model.clone());
    }
    // Lower-cased, as the SDKs send it (OpenLLMetry 0.33 says `OpenAI`), so breakdowns
    // by provider do not split one provider in two.
    if let Some(provider) = first(attributes, &PROVIDER) {
        set("$ai_provider", provider.as_str().map_or_else(|| provider.clone(), |p| json!(p.trim().to_lowercase())));
    }
    if let Some((messages, _)) = input {
        set("$ai_input", Value::Array(messages));
    }
    if let Some((messages, _)) = output {
        set("$ai_output_choices", Value::Array(messages));
    }
    if let Some(tokens) = first(attributes, &INPUT_TOKENS).and_then(count) {
        set("$ai_input_tokens", tokens);
    }
    if let Some(tokens) = first(attributes, &OUTPUT_TOKENS).and_then(count) {
        set("$ai_output_tokens", tokens);
    }
    if span.status.error {
        set("$ai_is_error", json!(true));
        let message = Some(span.status.message.trim())
            .filter(|m| !m.is_empty())
            .or_else(|| text(attributes, "error.type"))
            .unwrap_or("error");
        set("$ai_error", json!(message));
    }
    crate::ingestion::strip_nul_map(&mut properties);
    Some(IncomingEvent {
        uuid: event_uuid(&span.trace_id, &span.span_id),
        event: AiEventName::parse(kind.event_name())?,
        distinct_id: crate::ingestion::strip_nul(&distinct_id(span)),
        timestamp: resolve_timestamp(received_at, ClientTime { timestamp: started, sent_at: None, offset_ms: None }),
        properties,
    })
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
