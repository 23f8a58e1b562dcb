//! The Gemini `generateContent` wire format: the schema is `responseJsonSchema`, the
//! answer the text of the first candidate.

use domain::llm::{CompletionRequest, TokenUsage};
use serde_json::{Value, json};

use super::{Answer, json_text, tokens};

/// The request body: system instruction, one user turn and a JSON response config.
pub(crate) fn body(request: &CompletionRequest) -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": request.system}]},
        "contents": [{"role": "user", "parts": [{"text": request.user}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseJsonSchema": request.schema,
            "maxOutputTokens": request.max_output_tokens,
        },
    })
}

/// The answer: `candidates[0].content.parts[..].text` (the first part that is not a
/// thought), a JSON string.
pub(crate) fn parse(body: &[u8]) -> Answer {
    let Ok(envelope) = serde_json::from_slice::<Value>(body) else {
        return Answer::unusable("the answer was not JSON", TokenUsage::default());
    };
    let usage = TokenUsage {
        input: tokens(&envelope, "/usageMetadata/promptTokenCount"),
        output: tokens(&envelope, "/usageMetadata/candidatesTokenCount"),
    };
    let text = envelope.pointer("/candidates/0/content/parts").and_then(Value::as_array).and_then(|parts| {
        parts
            .iter()
            .filter(|part| part.get("thought").and_then(Value::as_bool) != Some(true))
            .find_map(|part| part.get("text").and_then(Value::as_str))
    });
    match text {
        Some(text) => Answer { value: json_text(text), usage },
        None => Answer::unusable("the answer had no candidate text", usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thoughts_are_skipped() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"hmm","thought":true},{"text":"{\"a\":1}"}]}}],
                        "usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2}}"#;
        let answer = parse(body);
        assert_eq!(answer.value, Ok(json!({"a": 1})));
        assert_eq!(answer.usage, TokenUsage { input: 4, output: 2 });
    }

    #[test]
    fn a_blocked_prompt_without_candidates_is_unusable() {
        let body = br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#;
        assert_eq!(parse(body).value, Err("the answer had no candidate text"));
    }
}
