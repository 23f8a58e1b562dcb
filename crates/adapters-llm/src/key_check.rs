//! Turning a provider's answer to a key check into a `KeyCheck` (spec section 2).
//!
//! Messages are fixed sentences: they never carry the key or the provider's body.

use domain::llm::KeyCheck;
use domain::provider_key::{AzureEndpointError, CredentialField, Provider};
use reqwest::StatusCode;
use serde_json::Value;

use crate::http_client::{Reply, TransportError};
use crate::provider_api::AddressError;
use crate::provider_message::provider_message;

const INVALID_KEY: &str = "Invalid API key";
const RATE_LIMITED: &str = "Rate limited, please try again later";
const NO_QUOTA: &str = "The key is valid but has no quota left";
const NO_CREDIT: &str = "The key is valid but has no credit left";
const MISSING_SCOPES: &str = "The key lacks the Models:Read permission";
const ANTHROPIC_OVERLOADED: &str = "Anthropic is overloaded, try again later";
const AZURE_NOT_FOUND: &str = "Azure endpoint not found — check the URL";
const TIMED_OUT: &str = "Request timed out, please try again";
const FAILED: &str = "Validation failed, please try again";
const PRIVATE_ENDPOINT: &str =
    "base_url points at a private, loopback, link-local or metadata address, which this server does not call";
const NO_MODEL_TO_CHECK: &str = "The endpoint has no /models: add a custom model so the key can be checked \
     with a one-token completion";

/// The verdict on an OpenAI-compatible endpoint's answer (to `/models`, or to the one-token
/// completion made when it has none): its own words, without the secrets the call carried.
pub(crate) fn from_endpoint_reply(reply: &Reply, secrets: &[&str]) -> KeyCheck {
    let provider = Provider::OpenaiCompatible;
    let status = reply.status;
    if status.is_success() {
        return if is_json_document(&reply.body) { KeyCheck::ok() } else { unexpected_response(provider) };
    }
    let said = provider_message(&reply.body, status, secrets);
    match status.as_u16() {
        401 | 403 => KeyCheck::invalid(format!("The endpoint refused the key: {said}"), key_field(provider)),
        429 => KeyCheck::error(format!("{RATE_LIMITED} ({said})"), None),
        code => KeyCheck::error(format!("The endpoint answered status {code}: {said}"), None),
    }
}

/// The verdict on an OpenAI-compatible endpoint that lists no models and names no custom
/// model to try a completion with.
pub(crate) fn no_model_to_check() -> KeyCheck {
    KeyCheck::error(NO_MODEL_TO_CHECK, Some(CredentialField::BaseUrl))
}

/// The verdict on a provider's answer to the key-check call.
pub(crate) fn from_reply(provider: Provider, reply: &Reply) -> KeyCheck {
    let status = reply.status;
    if status.is_success() {
        return if is_json_document(&reply.body) { KeyCheck::ok() } else { unexpected_response(provider) };
    }
    let error = ErrorBody::parse(&reply.body);
    match (provider, status.as_u16()) {
        (Provider::Openai, 401 | 403) if error.message_contains("Missing scopes") => {
            KeyCheck::error(MISSING_SCOPES, None)
        }
        (Provider::Gemini, 400) | (_, 401 | 403) => KeyCheck::invalid(INVALID_KEY, key_field(provider)),
        (Provider::AzureOpenai, 404) => KeyCheck::invalid(AZURE_NOT_FOUND, Some(CredentialField::AzureEndpoint)),
        (Provider::Openai, 429) if error.is_insufficient_quota() => KeyCheck::error(NO_QUOTA, None),
        (_, 429) => KeyCheck::error(RATE_LIMITED, None),
        (Provider::Openrouter, 402) => KeyCheck::error(NO_CREDIT, None),
        (Provider::Anthropic, 529) => KeyCheck::error(ANTHROPIC_OVERLOADED, None),
        (Provider::Openrouter | Provider::TogetherAi, code) => {
            KeyCheck::error(format!("Unexpected response status: {code}"), None)
        }
        _ => KeyCheck::error(FAILED, None),
    }
}

/// The verdict when no answer came back.
pub(crate) fn from_transport(provider: Provider, error: TransportError) -> KeyCheck {
    match error {
        TransportError::Connect => {
            KeyCheck::error(format!("Could not connect to {}", provider.display_name()), endpoint_field(provider))
        }
        TransportError::PrivateAddress => KeyCheck::invalid(PRIVATE_ENDPOINT, Some(CredentialField::BaseUrl)),
        TransportError::Timeout => KeyCheck::error(TIMED_OUT, None),
        TransportError::TooLarge => unexpected_response(provider),
        TransportError::Other => KeyCheck::error(FAILED, None),
    }
}

/// The verdict when the call could not be addressed (no endpoint, unusable key).
pub(crate) fn from_address(provider: Provider, error: AddressError) -> KeyCheck {
    match error {
        AddressError::MissingAzureEndpoint => endpoint_refused(AzureEndpointError::Missing),
        AddressError::BadAzureEndpoint => endpoint_refused(AzureEndpointError::NotAUrl),
        AddressError::KeyNotAHeader => KeyCheck::invalid(INVALID_KEY, key_field(provider)),
        AddressError::MissingBaseUrl => {
            KeyCheck::invalid("base_url is required for OpenAI-compatible keys.", Some(CredentialField::BaseUrl))
        }
        AddressError::HeaderNotAllowed => KeyCheck::invalid("An extra header cannot be sent over HTTP.", None),
        AddressError::PrivateAddress => KeyCheck::invalid(PRIVATE_ENDPOINT, Some(CredentialField::BaseUrl)),
    }
}

/// The verdict on an Azure endpoint that may not be called (the same sentences as the
/// API's refusal of such an endpoint when a key is saved).
pub(crate) fn endpoint_refused(error: AzureEndpointError) -> KeyCheck {
    let sentence = match error {
        AzureEndpointError::Missing => "azure_endpoint is required for Azure OpenAI keys.",
        AzureEndpointError::NotAUrl => "azure_endpoint must be a valid URL.",
        AzureEndpointError::NotHttps => "azure_endpoint must use https://.",
        AzureEndpointError::NotAzureHost => {
            "azure_endpoint must be an Azure OpenAI endpoint (a host ending in .openai.azure.com, \
             .cognitiveservices.azure.com or .services.ai.azure.com)."
        }
    };
    KeyCheck::invalid(sentence, Some(CredentialField::AzureEndpoint))
}

/// Whether a status means the provider refused the key (for model lists too).
pub(crate) fn is_key_rejection(provider: Provider, status: StatusCode, body: &[u8]) -> bool {
    match status.as_u16() {
        401 | 403 => true,
        400 if provider == Provider::Gemini => ErrorBody::parse(body).has_reason("API_KEY_INVALID"),
        _ => false,
    }
}

/// A body a provider's API would send: a JSON object or array, not an HTML page.
pub(crate) fn is_json_document(body: &[u8]) -> bool {
    matches!(serde_json::from_slice::<Value>(body), Ok(Value::Object(_) | Value::Array(_)))
}

fn unexpected_response(provider: Provider) -> KeyCheck {
    KeyCheck::error(
        format!("Unexpected response from {} — check the endpoint", provider.display_name()),
        endpoint_field(provider),
    )
}

/// Azure and OpenAI-compatible keys blame the key or the endpoint; other providers have
/// only a key.
fn key_field(provider: Provider) -> Option<CredentialField> {
    matches!(provider, Provider::AzureOpenai | Provider::OpenaiCompatible).then_some(CredentialField::ApiKey)
}

fn endpoint_field(provider: Provider) -> Option<CredentialField> {
    match provider {
        Provider::AzureOpenai => Some(CredentialField::AzureEndpoint),
        Provider::OpenaiCompatible => Some(CredentialField::BaseUrl),
        _ => None,
    }
}

/// The parts of a provider's JSON error body that are inspected, never shown.
struct ErrorBody(Option<Value>);

impl ErrorBody {
    fn parse(body: &[u8]) -> Self {
        Self(serde_json::from_slice::<Value>(body).ok())
    }

    fn field(&self, pointer: &str) -> Option<&str> {
        self.0.as_ref()?.pointer(pointer)?.as_str()
    }

    fn message_contains(&self, needle: &str) -> bool {
        self.field("/error/message").is_some_and(|message| message.contains(needle))
    }

    fn is_insufficient_quota(&self) -> bool {
        ["/error/code", "/error/type"].iter().any(|pointer| self.field(pointer) == Some("insufficient_quota"))
    }

    fn has_reason(&self, reason: &str) -> bool {
        self.0.as_ref().and_then(|body| body.pointer("/error/details")).and_then(Value::as_array).is_some_and(
            |details| details.iter().any(|detail| detail.get("reason").and_then(Value::as_str) == Some(reason)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply { status: StatusCode::from_u16(status).unwrap(), body: body.as_bytes().to_vec(), retry_after: None }
    }

    #[test]
    fn gemini_400_only_rejects_the_key_for_model_lists_when_the_reason_says_so() {
        let bad_key = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#;
        let other = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"bad pageSize"}}"#;
        let status = StatusCode::BAD_REQUEST;
        assert!(is_key_rejection(Provider::Gemini, status, bad_key));
        assert!(!is_key_rejection(Provider::Gemini, status, other));
        assert!(!is_key_rejection(Provider::Openai, status, bad_key));
    }

    #[test]
    fn a_json_scalar_or_html_is_not_a_provider_document() {
        assert!(is_json_document(b"{\"data\":[]}"));
        assert!(is_json_document(b"[]"));
        assert!(!is_json_document(b"\"ok\""));
        assert!(!is_json_document(b"<html><body>Welcome</body></html>"));
        assert!(!is_json_document(b""));
    }

    #[test]
    fn insufficient_quota_is_read_from_code_or_type() {
        let by_type = reply(429, r#"{"error":{"type":"insufficient_quota","code":null}}"#);
        let check = from_reply(Provider::Openai, &by_type);
        assert_eq!(check.message.as_deref(), Some(NO_QUOTA));
        let plain = reply(429, r#"{"error":{"type":"requests","code":"rate_limit_exceeded"}}"#);
        let check = from_reply(Provider::Openai, &plain);
        assert_eq!(check.message.as_deref(), Some(RATE_LIMITED));
    }

    #[test]
    fn an_azure_key_without_an_endpoint_blames_the_endpoint() {
        let check = from_address(Provider::AzureOpenai, AddressError::MissingAzureEndpoint);
        assert_eq!(check.field, Some(CredentialField::AzureEndpoint));
        assert_eq!(check.state, domain::provider_key::KeyState::Invalid);
    }
}
