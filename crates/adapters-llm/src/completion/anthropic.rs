//! The Anthropic Messages wire format: the schema is the input schema of one forced tool,
//! and the answer is that tool call's `input`.

use domain::llm::{CompletionRequest, TokenUsage};
use serde_json::{Value, json};

use super::{Answer, tokens};

const TOOL_DESCRIPTION: &str = "Record the answer. Always call this tool with input matching its schema.";

/// The request body: one tool whose `input_schema` is the schema, and a `tool_choice`
/// that forces it.
pub(crate) fn body(request: &CompletionRequest) -> Value {
    json!({
        "model": request.model,
        "max_tokens": request.max_output_tokens,
        "system": request.system,
        "messages": [{"role": "user", "content": request.user}],
        "tools": [{
            "name": request.schema_name,
            "description": TOOL_DESCRIPTION,
            "input_schema": request.schema,
        }],
        "tool_choice": {"type": "tool", "name": request.schema_name},
    })
}

/// The answer: the `input` of the first `tool_use` content block.
pub(crate) fn parse(body: &[u8]) -> Answer {
    let Ok(envelope) = serde_json::from_slice::<Value>(body) else {
        return Answer::unusable("the answer was not JSON", TokenUsage::default());
    };
    let usage = TokenUsage {
        input: tokens(&envelope, "/usage/input_tokens"),
        output: tokens(&envelope, "/usage/output_tokens"),
    };
    let tool_use = envelope
        .get("content")
        .and_then(Value::as_array)
        .and_then(|blocks| blocks.iter().find(|block| block.get("type").and_then(Value::as_str) == Some("tool_use")));
    match tool_use.and_then(|block| block.get("input")) {
        Some(input @ Value::Object(_)) => Answer { value: Ok(input.clone()), usage },
        Some(_) => Answer::unusable("the tool input was not a JSON object", usage),
        None => Answer::unusable("the answer had no tool_use block", usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_input_is_the_answer_whatever_text_comes_first() {
        let body =
            br#"{"content":[{"type":"text","text":"Sure"},{"type":"tool_use","id":"t","name":"v","input":{"a":1}}],
                        "usage":{"input_tokens":5,"output_tokens":2}}"#;
        let answer = parse(body);
        assert_eq!(answer.value, Ok(json!({"a": 1})));
        assert_eq!(answer.usage, TokenUsage { input: 5, output: 2 });
    }

    #[test]
    fn text_only_is_unusable() {
        let body = br#"{"content":[{"type":"text","text":"{\"a\":1}"}]}"#;
        assert_eq!(parse(body).value, Err("the answer had no tool_use block"));
    }
}
