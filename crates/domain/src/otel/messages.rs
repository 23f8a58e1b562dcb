//! Input and output messages of an AI span, from whichever convention carries them,
//! always in the SDKs' shape: a list of `{role, content}` with `content` text.

use serde_json::{Map, Value, json};

/// One message, SDK-shaped.
fn message(role: &str, content: String) -> Value {
    json!({"role": role, "content": content})
}

/// A JSON attribute that may arrive as a JSON string (the OTel GenAI conventions) or
/// already structured.
fn parsed(value: &Value) -> Option<Value> {
    match value {
        Value::String(text) => serde_json::from_str(text).ok(),
        Value::Array(_) | Value::Object(_) => Some(value.clone()),
        _ => None,
    }
}

/// Text of a content part list (`[{type, content|text}]`): text parts joined by newlines;
/// tool calls and other parts as short placeholders so nothing silently disappears.
fn parts_text(parts: &[Value]) -> String {
    parts
        .iter()
        .map(|part| {
            let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
            let text = part.get("content").or_else(|| part.get("text"));
            match (kind, text) {
                ("text", Some(Value::String(text))) => text.clone(),
                ("tool_call", _) => format!(
                    "[tool call] {}({})",
                    part.get("name").and_then(Value::as_str).unwrap_or("tool"),
                    part.get("arguments").map(compact).unwrap_or_default()
                ),
                ("tool_call_response", _) => {
                    format!("[tool result] {}", part.get("response").or(text).map(compact).unwrap_or_default())
                }
                (_, Some(Value::String(text))) => text.clone(),
                (kind, _) => format!("[{kind}]"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `gen_ai.input.messages` / `gen_ai.output.messages`: `[{role, parts: [...]}]` (or
/// `content` already text).
fn from_genai_json(value: &Value) -> Option<Vec<Value>> {
    let Value::Array(items) = parsed(value)? else { return None };
    let messages: Vec<Value> = items
        .iter()
        .filter_map(|item| {
            let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
            let content = match (item.get("parts"), item.get("content")) {
                (Some(Value::Array(parts)), _) => parts_text(parts),
                (_, Some(Value::Array(parts))) => parts_text(parts),
                (_, Some(content)) => compact(content),
                _ => return None,
            };
            Some(message(role, content))
        })
        .collect();
    (!messages.is_empty()).then_some(messages)
}

/// Indexed attributes `{prefix}.{i}.{role_key}` / `{prefix}.{i}.{content_key}`, in index
/// order (OpenLLMetry's `gen_ai.prompt.0.role`, OpenInference's
/// `llm.input_messages.0.message.role`).
fn from_indexed(
    attributes: &Map<String, Value>,
    prefix: &str,
    role_key: &str,
    content_key: &str,
) -> Option<Vec<Value>> {
    let mut indexed: Vec<(u32, Option<String>, Option<String>)> = Vec::new();
    let lead = format!("{prefix}.");
    for (key, value) in attributes {
        let Some(rest) = key.strip_prefix(&lead) else { continue };
        let Some((index, field)) = rest.split_once('.') else { continue };
        let Ok(index) = index.parse::<u32>() else { continue };
        let slot = match indexed.iter().position(|(i, _, _)| *i == index) {
            Some(at) => at,
            None => {
                indexed.push((index, None, None));
                indexed.len() - 1
            }
        };
        if field == role_key {
            indexed[slot].1 = value.as_str().map(str::to_owned);
        } else if field == content_key {
            indexed[slot].2 = Some(compact(value));
        } else if let Some(part) = field.strip_prefix(&format!("{}s.", content_key)) {
            // OpenInference's multi-part content: `message.contents.{j}.message_content.text`.
            if part.ends_with(".message_content.text") {
                let text = compact(value);
                let joined = match indexed[slot].2.take() {
                    Some(previous) => format!("{previous}\n{text}"),
                    None => text,
                };
                indexed[slot].2 = Some(joined);
            }
        }
    }
    indexed.sort_by_key(|(index, _, _)| *index);
    let messages: Vec<Value> = indexed
        .into_iter()
        .filter(|(_, role, content)| role.is_some() || content.is_some())
        .map(|(_, role, content)| message(role.as_deref().unwrap_or("user"), content.unwrap_or_default()))
        .collect();
    (!messages.is_empty()).then_some(messages)
}

/// The older GenAI event form: `gen_ai.{role}.message` events for input, `gen_ai.choice`
/// for output (whose `message` may be JSON).
fn from_events(events: &[super::SpanEvent], output: bool) -> Option<Vec<Value>> {
    let messages: Vec<Value> = events
        .iter()
        .filter_map(|event| {
            let attributes = &event.attributes;
            if output {
                (event.name == "gen_ai.choice").then(|| {
                    let inner = attributes.get("message").and_then(parsed);
                    let role = inner
                        .as_ref()
                        .and_then(|m| m.get("role"))
                        .and_then(Value::as_str)
                        .unwrap_or("assistant")
                        .to_owned();
                    let content = inner
                        .as_ref()
                        .and_then(|m| m.get("content"))
                        .or_else(|| attributes.get("content"))
                        .map(compact)
                        .unwrap_or_default();
                    message(&role, content)
                })
            } else {
                let role = event.name.strip_prefix("gen_ai.")?.strip_suffix(".message")?;
                let content = attributes.get("content").map(compact).unwrap_or_default();
                Some(message(role, content))
            }
        })
        .collect();
    (!messages.is_empty()).then_some(messages)
}

/// `$ai_input`: the first convention present.
pub fn input(attributes: &Map<String, Value>, events: &[super::SpanEvent]) -> Option<(Vec<Value>, Vec<String>)> {
    if let Some(value) = attributes.get("gen_ai.input.messages")
        && let Some(messages) = from_genai_json(value)
    {
        return Some((messages, vec!["gen_ai.input.messages".into()]));
    }
    if let Some(messages) = from_indexed(attributes, "gen_ai.prompt", "role", "content") {
        return Some((messages, prefixed(attributes, "gen_ai.prompt.")));
    }
    if let Some(messages) = from_indexed(attributes, "llm.input_messages", "message.role", "message.content") {
        return Some((messages, prefixed(attributes, "llm.input_messages.")));
    }
    from_events(events, false).map(|messages| (messages, Vec::new()))
}

/// `$ai_output_choices`: the first convention present.
pub fn output(attributes: &Map<String, Value>, events: &[super::SpanEvent]) -> Option<(Vec<Value>, Vec<String>)> {
    if let Some(value) = attributes.get("gen_ai.output.messages")
        && let Some(messages) = from_genai_json(value)
    {
        return Some((messages, vec!["gen_ai.output.messages".into()]));
    }
    if let Some(messages) = from_indexed(attributes, "gen_ai.completion", "role", "content") {
        return Some((messages, prefixed(attributes, "gen_ai.completion.")));
    }
    if let Some(messages) = from_indexed(attributes, "llm.output_messages", "message.role", "message.content") {
        return Some((messages, prefixed(attributes, "llm.output_messages.")));
    }
    from_events(events, true).map(|messages| (messages, Vec::new()))
}

/// The attribute keys under `prefix` (consumed by a mapping, so not passed through).
fn prefixed(attributes: &Map<String, Value>, prefix: &str) -> Vec<String> {
    attributes.keys().filter(|key| key.starts_with(prefix)).cloned().collect()
}
