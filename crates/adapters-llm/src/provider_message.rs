//! What a provider said when it refused a call, fit to show: its `error.message`, without
//! any secret the call carried.

use reqwest::StatusCode;

/// The longest provider message kept.
const MAX_MESSAGE_CHARS: usize = 500;

/// Secrets shorter than this are not searched for in messages.
const MIN_REDACTED_CHARS: usize = 6;

/// Prefixes of the providers' key formats: a word starting so is taken for a key.
const KEY_PREFIXES: [&str; 4] = ["sk-", "sk_", "AIza", "key-"];

/// The provider's `error.message` (the shape OpenAI, Anthropic and Gemini share), else the
/// status; bounded. Providers echo keys in some messages ("Incorrect API key provided:
/// sk-..."), so the call's own secrets and every word shaped like a key are redacted; the
/// body is not kept otherwise.
pub(crate) fn provider_message(body: &[u8], status: StatusCode, secrets: &[&str]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|answer| {
            // OpenAI's shape first, then what OpenAI-compatible servers send (vLLM's
            // `message`, FastAPI's `detail`, a bare `error` string).
            ["/error/message", "/message", "/detail", "/error"]
                .iter()
                .find_map(|pointer| answer.pointer(pointer).and_then(serde_json::Value::as_str).map(str::to_owned))
        })
        .filter(|message| !message.trim().is_empty());
    let Some(message) = message else {
        return format!("status {}", status.as_u16());
    };
    let message = secrets
        .iter()
        // A very short secret would blot out ordinary words; such values are no real secret.
        .filter(|secret| secret.len() >= MIN_REDACTED_CHARS)
        .fold(message, |message, secret| message.replace(secret, "[redacted]"));
    let redacted: Vec<String> = message
        .split(' ')
        .map(|word| {
            let bare = word.trim_start_matches(['`', '"', '\'', '(']);
            if KEY_PREFIXES.iter().any(|prefix| bare.starts_with(prefix)) {
                "[redacted]".to_owned()
            } else {
                word.to_owned()
            }
        })
        .collect();
    redacted.join(" ").chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_found_in_each_servers_shape_and_loses_the_calls_secrets() {
        let status = StatusCode::UNAUTHORIZED;
        let said = |body: &str| provider_message(body.as_bytes(), status, &["tenant-secret-42", "x"]);
        assert_eq!(said(r#"{"error":{"message":"bad key tenant-secret-42"}}"#), "bad key [redacted]");
        assert_eq!(
            said(r#"{"object":"error","message":"The model `m` does not exist."}"#),
            "The model `m` does not exist."
        );
        assert_eq!(said(r#"{"detail":"Not authenticated"}"#), "Not authenticated");
        assert_eq!(said(r#"{"error":"invalid api key sk-abcdef"}"#), "invalid api key [redacted]");
        assert_eq!(said("<html>"), "status 401");
    }
}
