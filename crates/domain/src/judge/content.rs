//! `$ai_input` / `$ai_output_choices` as readable text for the judge. The SDKs send a
//! string, messages whose `content` is a string, or messages whose `content` is a list
//! of parts (text, images, tool calls); every shape becomes lines of `role: text`.

use serde_json::Value;

/// The most characters of input, and of output, a judge prompt carries.
pub const MAX_CONTENT_CHARS: usize = 20_000;

const TRUNCATED: &str = "\n[... truncated]";

/// `value` as text, at most [`MAX_CONTENT_CHARS`] characters (cut with a marker).
pub fn render(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => String::from("(none)"),
        Some(value) => render_value(value),
    };
    truncate(text, MAX_CONTENT_CHARS)
}

fn truncate(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text,
        Some((cut, _)) => {
            let mut short = text[..cut].to_owned();
            short.push_str(TRUNCATED);
            short
        }
    }
}

fn render_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) if items.iter().all(is_message) => {
            items.iter().map(render_message).collect::<Vec<_>>().join("\n")
        }
        Value::Array(items) => items.iter().map(render_part).collect::<Vec<_>>().join("\n"),
        Value::Object(_) if is_message(value) => render_message(value),
        other => other.to_string(),
    }
}

fn is_message(value: &Value) -> bool {
    value.as_object().is_some_and(|m| m.contains_key("role") || m.contains_key("content"))
}

fn render_message(message: &Value) -> String {
    let role = message.get("role").and_then(Value::as_str).unwrap_or("message");
    let mut text = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().map(render_part).filter(|p| !p.is_empty()).collect::<Vec<_>>().join("\n")
        }
        Some(other) => render_part(other),
    };
    if let Some(Value::Array(calls)) = message.get("tool_calls") {
        for call in calls {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&render_tool_call(call.get("function").unwrap_or(call)));
        }
    }
    format!("{role}: {text}")
}

/// One content part: text as itself, images as a placeholder, tool calls and results
/// by name and arguments, anything else as compact JSON.
fn render_part(part: &Value) -> String {
    let Some(object) = part.as_object() else {
        return match part {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "text" | "input_text" | "output_text" => {
            object.get("text").and_then(Value::as_str).unwrap_or_default().to_owned()
        }
        "image_url" | "image" | "input_image" => String::from("[image]"),
        "input_audio" | "audio" => String::from("[audio]"),
        "tool_use" | "function_call" | "tool_call" | "function" => {
            render_tool_call(object.get("function").unwrap_or(part))
        }
        "tool_result" | "function_call_output" => {
            let content = object.get("content").or_else(|| object.get("output")).map(render_value);
            format!("[tool result] {}", content.unwrap_or_default())
        }
        _ => match object.get("text").and_then(Value::as_str) {
            Some(text) => text.to_owned(),
            None => part.to_string(),
        },
    }
}

fn render_tool_call(call: &Value) -> String {
    let name = call.get("name").and_then(Value::as_str).unwrap_or("tool");
    let arguments = match call.get("arguments").or_else(|| call.get("input")) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    format!("[tool call] {name}({arguments})")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_string_is_itself() {
        assert_eq!(render(Some(&json!("What is 2+2?"))), "What is 2+2?");
    }

    #[test]
    fn messages_with_string_content_become_role_lines() {
        let input = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]);
        assert_eq!(render(Some(&input)), "system: Be brief.\nuser: Hi");
    }

    #[test]
    fn content_part_lists_are_joined_as_text_with_placeholders() {
        let output = json!([{"role": "assistant", "content": [
            {"type": "text", "text": "Here is the chart."},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "tool_use", "name": "lookup", "input": {"q": "weather"}}
        ]}]);
        assert_eq!(
            render(Some(&output)),
            "assistant: Here is the chart.\n[image]\n[tool call] lookup({\"q\":\"weather\"})"
        );
    }

    #[test]
    fn openai_tool_calls_beside_content_are_shown() {
        let output = json!([{"role": "assistant", "content": null,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}]}]);
        assert_eq!(render(Some(&output)), "assistant: [tool call] add({\"a\":1})");
    }

    #[test]
    fn missing_content_says_none_and_other_json_is_kept_compact() {
        assert_eq!(render(None), "(none)");
        assert_eq!(render(Some(&json!({"choices": 1}))), "{\"choices\":1}");
    }

    #[test]
    fn long_content_is_cut_at_20000_characters_with_a_marker() {
        let long = "é".repeat(MAX_CONTENT_CHARS + 10);
        let rendered = render(Some(&json!(long)));
        assert!(rendered.starts_with(&"é".repeat(MAX_CONTENT_CHARS)));
        assert!(rendered.ends_with("[... truncated]"));
        assert_eq!(rendered.chars().count(), MAX_CONTENT_CHARS + TRUNCATED.chars().count());
        let exact = "a".repeat(MAX_CONTENT_CHARS);
        assert_eq!(render(Some(&json!(exact.clone()))), exact);
    }
}
