//! The OpenAI chat-completions wire format, spoken by OpenAI, Together AI, Fireworks,
//! OpenRouter and OpenAI-compatible endpoints (and, with its own URL and header, Azure
//! OpenAI).

use domain::llm::{CompletionRequest, TokenUsage};
use serde_json::{Value, json};

use super::{Answer, json_text, tokens};

/// Which field bounds the answer's length: OpenAI's newer models only accept
/// `max_completion_tokens`; the other providers read `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenLimitField {
    MaxCompletionTokens,
    MaxTokens,
}

/// The request body: system and user messages and a strict JSON-schema response format.
pub(crate) fn body(request: &CompletionRequest, limit: TokenLimitField) -> Value {
    let mut body = json!({
        "model": request.model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "strict": true, "schema": request.schema},
        },
    });
    let field = match limit {
        TokenLimitField::MaxCompletionTokens => "max_completion_tokens",
        TokenLimitField::MaxTokens => "max_tokens",
    };
    body[field] = json!(request.max_output_tokens);
    body
}

/// The request body for servers without `json_schema` (older vLLM, Ollama, some gateways):
/// JSON mode, with the schema written into the instructions; the answer is then checked
/// against the schema here.
pub(crate) fn json_mode_body(request: &CompletionRequest, limit: TokenLimitField) -> Value {
    let mut body = body(request, limit);
    let system = format!(
        "{}\n\nAnswer with one JSON object and nothing else. It must match this JSON Schema:\n{}",
        request.system, request.schema
    );
    body["messages"][0]["content"] = json!(system);
    body["response_format"] = json!({"type": "json_object"});
    body
}

/// Whether a refusal says the server does not take `response_format: json_schema` (a 400
/// or 422 naming it).
pub(crate) fn refuses_json_schema(status: reqwest::StatusCode, body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    matches!(status.as_u16(), 400 | 422) && (text.contains("response_format") || text.contains("json_schema"))
}

/// The answer: `choices[0].message.content`, a JSON string.
pub(crate) fn parse(body: &[u8]) -> Answer {
    let Ok(envelope) = serde_json::from_slice::<Value>(body) else {
        return Answer::unusable("the answer was not JSON", TokenUsage::default());
    };
    let usage = TokenUsage {
        input: tokens(&envelope, "/usage/prompt_tokens"),
        output: tokens(&envelope, "/usage/completion_tokens"),
    };
    match envelope.pointer("/choices/0/message/content").and_then(Value::as_str) {
        Some(content) => Answer { value: json_text(content), usage },
        None if envelope.pointer("/choices/0").is_none() => Answer::unusable("the answer had no choices", usage),
        None => Answer::unusable("the answer had no content", usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CompletionRequest {
        CompletionRequest {
            system: "sys".to_owned(),
            user: "usr".to_owned(),
            schema_name: "verdict".to_owned(),
            schema: json!({"type": "object"}),
            model: "gpt-5-mini".to_owned(),
            max_output_tokens: 100,
        }
    }

    #[test]
    fn the_token_limit_field_follows_the_provider() {
        let openai = body(&request(), TokenLimitField::MaxCompletionTokens);
        assert_eq!(openai["max_completion_tokens"], 100);
        assert!(openai.get("max_tokens").is_none());
        let other = body(&request(), TokenLimitField::MaxTokens);
        assert_eq!(other["max_tokens"], 100);
        assert_eq!(other["response_format"]["json_schema"]["schema"], json!({"type": "object"}));
    }

    #[test]
    fn json_mode_writes_the_schema_into_the_instructions() {
        let fallback = json_mode_body(&request(), TokenLimitField::MaxTokens);
        assert_eq!(fallback["response_format"], json!({"type": "json_object"}));
        let system = fallback["messages"][0]["content"].as_str().unwrap();
        assert!(system.starts_with("sys\n\n") && system.ends_with(r#"{"type":"object"}"#), "{system}");
        let bad_request = reqwest::StatusCode::BAD_REQUEST;
        assert!(refuses_json_schema(bad_request, br#"{"error":{"message":"Unknown response_format type"}}"#));
        assert!(!refuses_json_schema(bad_request, br#"{"error":{"message":"context too long"}}"#));
        assert!(!refuses_json_schema(reqwest::StatusCode::NOT_FOUND, b"response_format"));
    }

    #[test]
    fn a_refusal_or_empty_choices_is_unusable_but_usage_is_kept() {
        let refusal = br#"{"choices":[{"message":{"content":null,"refusal":"no"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let answer = parse(refusal);
        assert!(answer.value.is_err());
        assert_eq!(answer.usage, TokenUsage { input: 3, output: 1 });
        assert_eq!(parse(br#"{"choices":[]}"#).value, Err("the answer had no choices"));
    }
}
