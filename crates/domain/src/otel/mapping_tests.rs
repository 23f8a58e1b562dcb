//! The mapping span by span, on spans captured from the real instrumentations around the
//! real `openai` client (`tests/fixtures/otel/`, made by `capture_spans.py` there):
//! OpenInference, OpenLLMetry (current and 0.33's legacy attributes), and the current
//! OTel GenAI conventions with the older event form.

use chrono::TimeZone;
use serde_json::json;

use super::*;

fn fixture(name: &str) -> Vec<Span> {
    let text = match name {
        "openinference" => include_str!("../../tests/fixtures/otel/openinference.json"),
        "openllmetry" => include_str!("../../tests/fixtures/otel/openllmetry.json"),
        "openllmetry-legacy" => include_str!("../../tests/fixtures/otel/openllmetry-legacy.json"),
        "genai" => include_str!("../../tests/fixtures/otel/genai.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("a fixture of spans")
}

fn span_named<'a>(spans: &'a [Span], name: &str, nth: usize) -> &'a Span {
    spans.iter().filter(|s| s.name == name).nth(nth).unwrap_or_else(|| panic!("no span {name} #{nth}"))
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn event(span: &Span) -> IncomingEvent {
    to_event(span, now()).unwrap_or_else(|| panic!("{} is an AI span", span.name))
}

#[test]
fn openinference_llm_spans_are_generations_with_messages_tokens_and_model() {
    let spans = fixture("openinference");
    let chat = event(span_named(&spans, "ChatCompletion", 0));
    assert_eq!(chat.event.as_str(), "$ai_generation");
    let p = &chat.properties;
    assert_eq!(p["$ai_model"], json!("gpt-4o-mini-2024-07-18"));
    assert_eq!(p["$ai_provider"], json!("openai"));
    assert_the_france_exchange(p);
    assert_eq!((p["$ai_input_tokens"].clone(), p["$ai_output_tokens"].clone()), (json!(21), json!(7)));
    assert!(!p.contains_key("llm.input_messages.0.message.content"), "message sources are not repeated");
    assert_eq!(p["openinference.span.kind"], json!("LLM"), "other attributes pass through");
    assert_eq!(p["deployment.environment"], json!("staging"), "resource attributes pass through");
    assert_eq!(chat.distinct_id, "user-42", "the resource's posthog.distinct_id");
    assert!(p["$ai_latency"].as_f64().unwrap() > 0.0);
    assert!(p.contains_key("$ai_parent_id"));
}

/// The fixtures' chat: a system and a user message in, Paris out.
fn assert_the_france_exchange(p: &serde_json::Map<String, Value>) {
    assert_eq!(
        p["$ai_input"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}])
    );
    assert_eq!(p["$ai_output_choices"], json!([{"role": "assistant", "content": "Paris is the capital of France."}]));
}

/// The fixtures' failed span.
fn assert_upstream_exploded(failed: &IncomingEvent) {
    assert_eq!(failed.properties["$ai_is_error"], json!(true));
    assert!(failed.properties["$ai_error"].as_str().unwrap().contains("upstream exploded"));
}

#[test]
fn openinference_embeddings_and_errors() {
    let spans = fixture("openinference");
    let embedding = event(span_named(&spans, "CreateEmbeddings", 0));
    assert_eq!(embedding.event.as_str(), "$ai_embedding");
    assert_eq!(embedding.properties["$ai_model"], json!("text-embedding-3-small"));
    let failed = event(span_named(&spans, "ChatCompletion", 1));
    assert_upstream_exploded(&failed);
    assert!(to_event(span_named(&spans, "fixture request", 0), now()).is_none(), "a plain span is not AI");
}

#[test]
fn openllmetry_current_spans_join_parts_into_content() {
    let spans = fixture("openllmetry");
    let chat = event(span_named(&spans, "openai.chat", 0));
    assert_eq!(chat.event.as_str(), "$ai_generation");
    let p = &chat.properties;
    assert_the_france_exchange(p);
    assert_eq!(p["$ai_provider"], json!("openai"));
    assert_eq!(p["$ai_model"], json!("gpt-4o-mini-2024-07-18"), "the response model before the request model");
    assert_eq!(p["$ai_input_tokens"], json!(21));
    assert!(!p.contains_key("gen_ai.input.messages"));
    assert_eq!(event(span_named(&spans, "openai.embeddings", 0)).event.as_str(), "$ai_embedding");
    let failed = event(span_named(&spans, "openai.chat", 1));
    assert_upstream_exploded(&failed);
}

#[test]
fn openllmetry_legacy_indexed_prompts_and_completions() {
    let spans = fixture("openllmetry-legacy");
    let chat = event(span_named(&spans, "openai.chat", 0));
    assert_eq!(chat.event.as_str(), "$ai_generation");
    let p = &chat.properties;
    assert_the_france_exchange(p);
    assert_eq!((p["$ai_input_tokens"].clone(), p["$ai_output_tokens"].clone()), (json!(21), json!(7)));
    assert_eq!(p["$ai_provider"], json!("openai"), "gen_ai.system");
    assert!(!p.contains_key("gen_ai.prompt.0.content") && !p.contains_key("gen_ai.completion.0.role"));
    assert_eq!(event(span_named(&spans, "openai.embeddings", 0)).event.as_str(), "$ai_embedding");
}

#[test]
fn genai_conventions_tools_agents_events_and_fallbacks() {
    let spans = fixture("genai");
    let chat = event(span_named(&spans, "chat gpt-4o-mini", 0));
    assert_eq!(
        chat.properties["$ai_input"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?\nOne word."}])
    );
    assert_eq!(chat.distinct_id, "user-42", "the resource's id before the span's user.id");
    assert_eq!(event(span_named(&spans, "execute_tool get_weather", 0)).event.as_str(), "$ai_span");
    assert_eq!(event(span_named(&spans, "invoke_agent travel", 0)).event.as_str(), "$ai_span");

    let legacy = event(span_named(&spans, "chat legacy", 0));
    assert_eq!(legacy.event.as_str(), "$ai_generation", "model and usage without an operation name");
    assert_eq!(
        legacy.properties["$ai_input"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(legacy.properties["$ai_output_choices"], json!([{"role": "assistant", "content": "Hello!"}]));
    assert_eq!(legacy.properties["$ai_input_tokens"], json!(5));
    assert!(to_event(span_named(&spans, "db.query", 0), now()).is_none());
}

fn bare(attributes: serde_json::Value) -> Span {
    Span {
        name: "s".into(),
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        span_id: "b7ad6b7169203331".into(),
        start_unix_nanos: 1,
        end_unix_nanos: 1,
        attributes: attributes.as_object().unwrap().clone(),
        ..Span::default()
    }
}

#[test]
fn the_distinct_id_falls_back_to_user_id_then_the_trace() {
    let mut span = bare(json!({"gen_ai.operation.name": "chat", "user.id": "span-user"}));
    assert_eq!(event(&span).distinct_id, "span-user");
    span.resource.insert("user.id".into(), json!("resource-user"));
    assert_eq!(event(&span).distinct_id, "resource-user");
    let anonymous = bare(json!({"gen_ai.operation.name": "chat"}));
    assert_eq!(event(&anonymous).distinct_id, "0af7651916cd43dd8448eb211c80319c");
}

#[test]
fn classification_follows_each_convention() {
    let kind = |attributes| classify(&bare(attributes));
    assert_eq!(kind(json!({"gen_ai.operation.name": "text_completion"})), Some(AiSpanKind::Generation));
    assert_eq!(kind(json!({"gen_ai.operation.name": "generate_content"})), Some(AiSpanKind::Generation));
    assert_eq!(kind(json!({"gen_ai.operation.name": "embeddings"})), Some(AiSpanKind::Embedding));
    assert_eq!(kind(json!({"gen_ai.operation.name": "create_agent"})), Some(AiSpanKind::Span));
    assert_eq!(kind(json!({"openinference.span.kind": "CHAIN"})), Some(AiSpanKind::Span));
    assert_eq!(kind(json!({"openinference.span.kind": "EMBEDDING"})), Some(AiSpanKind::Embedding));
    assert_eq!(kind(json!({"llm.request.type": "completion"})), Some(AiSpanKind::Generation));
    assert_eq!(kind(json!({"traceloop.span.kind": "workflow"})), Some(AiSpanKind::Span));
    assert_eq!(
        kind(json!({"gen_ai.request.model": "m", "gen_ai.usage.output_tokens": 3})),
        Some(AiSpanKind::Generation)
    );
    assert_eq!(kind(json!({"gen_ai.request.model": "m"})), None, "a model without usage is not enough");
    assert_eq!(kind(json!({"http.method": "GET"})), None);
}

#[test]
fn ids_times_and_text_are_kept_safe() {
    let mut span = bare(json!({"gen_ai.operation.name": "chat", "note": "a\u{0}b", "gen_ai.usage.input_tokens": "12"}));
    span.start_unix_nanos = 1_772_625_600_000_000_000; // 2026-03-04T12:00:00Z
    span.end_unix_nanos = span.start_unix_nanos + 1_500_000_000;
    let received = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 5).unwrap();
    let stored = to_event(&span, received).unwrap();
    assert_eq!(stored.timestamp, Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap());
    assert_eq!(stored.properties["$ai_latency"], json!(1.5));
    assert_eq!(stored.properties["note"], json!("a\u{FFFD}b"));
    assert_eq!(stored.properties["$ai_input_tokens"], json!(12));
    assert_eq!(stored.uuid, event_uuid(&span.trace_id, &span.span_id), "the same span, the same uuid");
    assert_ne!(stored.uuid, event_uuid(&span.trace_id, "0000000000000001"));
    span.start_unix_nanos = 1; // 1970: a wrong clock
    assert_eq!(to_event(&span, received).unwrap().timestamp, received);
}
