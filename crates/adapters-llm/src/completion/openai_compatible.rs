//! The OpenAI chat-completions wire format, spoken by OpenAI, Together AI, Fireworks and
//! OpenRouter (and, with its own URL and header, Azure OpenAI).

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
    fn a_refusal_or_empty_choices_is_unusable_but_usage_is_kept() {
        let refusal = br#"{"choices":[{"message":{"content":null,"refusal":"no"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let answer = parse(refusal);
        assert!(answer.value.is_err());
        assert_eq!(answer.usage, TokenUsage { input: 3, output: 1 });
        assert_eq!(parse(br#"{"choices":[]}"#).value, Err("the answer had no choices"));
    }
}
