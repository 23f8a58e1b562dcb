//! Shared set-up for the gateway tests: fake-provider mocks, credentials and gateways.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use adapters_llm::{HttpLlmGateway, HttpStructuredCompletion, LlmGatewayConfig, RetryPolicy};
use domain::llm::CompletionRequest;
use domain::provider_key::{
    ApiVersion, AzureEndpoint, AzureTarget, BaseUrl, CompatibleEndpoint, ExtraHeaders, Provider, ProviderCredentials,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{MockBuilder, MockServer, Request};

/// The key every test uses: long and distinctive so a leak is easy to spot.
pub const KEY: &str = "sk-ant-test-SECRET-key-0123456789abcdef";

/// The Azure API version the fake Azure resource expects.
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// A timeout short enough for tests; fake servers delay longer than this.
pub const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

/// How long a fake server waits before answering in timeout tests.
pub const LONG_DELAY: Duration = Duration::from_secs(2);

/// The path prefix fake providers serve under, to prove the base path is kept.
const BASE_PATH: &str = "/v1";

/// A gateway pointed at `server` for `provider`, with the test key.
pub fn gateway(provider: Provider, server: &MockServer) -> (HttpLlmGateway, ProviderCredentials) {
    gateway_at(provider, &server.uri(), LlmGatewayConfig::default())
}

/// Like [`gateway`], with a base config to start from (timeouts, body limits).
pub fn gateway_with(
    provider: Provider,
    server: &MockServer,
    config: LlmGatewayConfig,
) -> (HttpLlmGateway, ProviderCredentials) {
    gateway_at(provider, &server.uri(), config)
}

/// A gateway for `provider` whose host is `root` (`http://127.0.0.1:port`): the base URL
/// for fixed-host providers (under `/v1`), the key's endpoint for Azure.
pub fn gateway_at(provider: Provider, root: &str, config: LlmGatewayConfig) -> (HttpLlmGateway, ProviderCredentials) {
    let config = match provider {
        Provider::AzureOpenai | Provider::OpenaiCompatible => config.allowing_private_endpoints(true),
        _ => config.with_base_url(provider, Url::parse(&format!("{root}{BASE_PATH}")).unwrap()).unwrap(),
    };
    let gateway = HttpLlmGateway::new(config).unwrap();
    (gateway, credentials(provider, root))
}

/// The test key for `provider`; Azure keys point at `root`, OpenAI-compatible keys at
/// `root` under `/v1` with a tenant header.
pub fn credentials(provider: Provider, root: &str) -> ProviderCredentials {
    let azure = (provider == Provider::AzureOpenai).then(|| AzureTarget {
        endpoint: AzureEndpoint::parse(root, true).unwrap(),
        api_version: ApiVersion::parse(Some(AZURE_API_VERSION)).unwrap(),
    });
    let compatible = (provider == Provider::OpenaiCompatible).then(|| CompatibleEndpoint {
        base_url: BaseUrl::parse(&format!("{root}{BASE_PATH}"), true).unwrap(),
        extra_headers: ExtraHeaders::parse(vec![(
            TENANT_HEADER.to_owned(),
            Some(SecretString::from(TENANT_SECRET.to_owned())),
        )])
        .unwrap(),
        custom_models: vec![CUSTOM_MODEL.to_owned()],
    });
    ProviderCredentials { provider, api_key: SecretString::from(KEY), azure, compatible }
}

/// The extra header every OpenAI-compatible test key carries, and its secret value.
pub const TENANT_HEADER: &str = "x-tenant-token";
pub const TENANT_SECRET: &str = "tenant-SECRET-header-value-42";

/// The custom model every OpenAI-compatible test key names.
pub const CUSTOM_MODEL: &str = "llama3.1:8b";

/// A config whose calls time out quickly.
pub fn short_timeout() -> LlmGatewayConfig {
    LlmGatewayConfig::default().with_validation_timeout(SHORT_TIMEOUT)
}

/// `http://127.0.0.1:port` where nothing listens.
pub fn refused_root() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The path of the key-check call on the fake server.
pub fn check_path(provider: Provider) -> String {
    match provider {
        Provider::AzureOpenai => "/openai/models".to_owned(),
        Provider::Openrouter => format!("{BASE_PATH}/key"),
        _ => format!("{BASE_PATH}/models"),
    }
}

/// The path of the model list on the fake server (Azure: the deployments).
pub fn models_path(provider: Provider) -> String {
    match provider {
        Provider::AzureOpenai => "/openai/deployments".to_owned(),
        _ => format!("{BASE_PATH}/models"),
    }
}

/// The header that carries the key, and its exact value.
pub fn auth_header(provider: Provider) -> (&'static str, String) {
    match provider {
        Provider::Anthropic => ("x-api-key", KEY.to_owned()),
        Provider::Gemini => ("x-goog-api-key", KEY.to_owned()),
        Provider::AzureOpenai => ("api-key", KEY.to_owned()),
        _ => ("authorization", format!("Bearer {KEY}")),
    }
}

/// A GET on `path` that only matches when the key (and Anthropic's version header) is sent.
pub fn authed_get(provider: Provider, at: &str) -> MockBuilder {
    let (name, value) = auth_header(provider);
    let mock = wiremock::Mock::given(method("GET")).and(path(at)).and(header(name, value.as_str()));
    match provider {
        Provider::Anthropic => mock.and(header("anthropic-version", "2023-06-01")),
        Provider::OpenaiCompatible => mock.and(header(TENANT_HEADER, TENANT_SECRET)),
        _ => mock,
    }
}

/// The key-check call as the provider expects it (Azure: with its api-version).
pub fn check_call(provider: Provider) -> MockBuilder {
    let mock = authed_get(provider, &check_path(provider));
    match provider {
        Provider::AzureOpenai => mock.and(query_param("api-version", AZURE_API_VERSION)),
        _ => mock,
    }
}

/// A realistic 200 answer to the key-check call.
pub fn check_ok_body(provider: Provider) -> Value {
    match provider {
        Provider::Openrouter => json!({"data": {
            "label": "sk-or-v1-0e6...f3a", "limit": null, "usage": 0.0123,
            "is_free_tier": false, "limit_remaining": null, "is_provisioning_key": false
        }}),
        _ => models_body(provider),
    }
}

/// A realistic one-page model list in `provider`'s own shape.
pub fn models_body(provider: Provider) -> Value {
    match provider {
        Provider::Openai => json!({"object": "list", "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1_721_172_741, "owned_by": "system"},
            {"id": "gpt-5-mini", "object": "model", "created": 1_754_425_928, "owned_by": "system"}
        ]}),
        Provider::Anthropic => json!({
            "data": [{"type": "model", "id": "claude-haiku-4-5-20251001",
                      "display_name": "Claude Haiku 4.5", "created_at": "2025-10-15T00:00:00Z"}],
            "has_more": false, "first_id": "claude-haiku-4-5-20251001",
            "last_id": "claude-haiku-4-5-20251001"
        }),
        Provider::Gemini => json!({"models": [{
            "name": "models/gemini-2.5-flash", "version": "001", "displayName": "Gemini 2.5 Flash",
            "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens"]
        }]}),
        Provider::Openrouter => json!({"data": [{
            "id": "openai/gpt-5-mini", "canonical_slug": "openai/gpt-5-mini-2025-08-07",
            "name": "OpenAI: GPT-5 Mini", "created": 1_754_587_407, "context_length": 400_000,
            "pricing": {"prompt": "0.00000025", "completion": "0.000002"}
        }]}),
        Provider::Fireworks => json!({"object": "list", "data": [{
            "id": "accounts/fireworks/models/llama-v3p3-70b-instruct", "object": "model",
            "owned_by": "fireworks", "created": 1_733_442_103, "kind": "HF_BASE_MODEL",
            "supports_chat": true, "supports_tools": true, "context_length": 131_072
        }]}),
        Provider::TogetherAi => json!([{
            "id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "object": "model",
            "created": 1_733_461_289, "type": "chat", "running": false,
            "display_name": "Meta Llama 3.3 70B Instruct Turbo", "organization": "Meta",
            "context_length": 131_072,
            "pricing": {"hourly": 0, "input": 0.88, "output": 0.88, "base": 0, "finetune": 0}
        }]),
        Provider::AzureOpenai => json!({"object": "list", "data": [{
            "scale_settings": {"scale_type": "standard"}, "model": "gpt-4o",
            "owner": "organization-owner", "id": "prod-gpt4o", "status": "succeeded",
            "created_at": 1_722_988_800, "updated_at": 1_722_988_800, "object": "deployment"
        }]}),
        // vLLM's answer.
        Provider::OpenaiCompatible => json!({"object": "list", "data": [{
            "id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "created": 1_733_461_289,
            "owned_by": "vllm", "root": "meta-llama/Llama-3.1-8B-Instruct", "parent": null, "max_model_len": 8192
        }]}),
    }
}

/// A provider-style error body for `status` that quotes the key, as OpenAI's 401 does,
/// so tests can prove it is never echoed.
pub fn error_body(provider: Provider, status: u16) -> Value {
    let message = format!("Request failed with status {status}. Incorrect API key provided: {KEY}");
    match provider {
        Provider::Anthropic => json!({"type": "error",
            "error": {"type": "authentication_error", "message": message}, "request_id": "req_011"}),
        Provider::Gemini => json!({"error": {"code": status, "message": message, "status": "UNAUTHENTICATED"}}),
        Provider::AzureOpenai => json!({"error": {"code": status.to_string(), "message": message}}),
        Provider::Openrouter => json!({"error": {"message": message, "code": status}}),
        _ => json!({"error": {"message": message, "type": "invalid_request_error", "param": null,
                              "code": "invalid_api_key"}}),
    }
}

/// Gemini's answer to a bad key: 400, not 401.
pub fn gemini_bad_key_body() -> Value {
    json!({"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                     "domain": "googleapis.com",
                     "metadata": {"service": "generativelanguage.googleapis.com"}}]
    }})
}

/// An HTML page, as a wrong endpoint serves; it quotes the key to catch echoes.
pub fn html_page() -> String {
    format!("<!DOCTYPE html><html><body><h1>Welcome</h1><p>{KEY}</p></body></html>")
}

/// The requests `server` received.
pub async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// Asserts `text` carries neither the key nor anything of a fake provider's body.
pub fn assert_secret_free(text: &str, context: &str) {
    assert!(!text.contains(KEY), "{context}: leaks the key: {text}");
    assert!(!text.contains("SECRET"), "{context}: leaks part of the key: {text}");
    assert!(!text.contains("Incorrect API key provided"), "{context}: echoes the body: {text}");
    assert!(!text.contains("Welcome"), "{context}: echoes the body: {text}");
}

// ---- Structured completions -------------------------------------------------------------

/// The model (Azure: deployment) every completion test asks for.
pub const MODEL: &str = "test-model-1";

/// The schema every completion test sends.
pub fn verdict_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"verdict": {"type": "string", "enum": ["pass", "fail"]}, "score": {"type": "integer"}},
        "required": ["verdict", "score"],
        "additionalProperties": false
    })
}

/// The answer fake providers give.
pub fn verdict() -> Value {
    json!({"verdict": "pass", "score": 3})
}

/// A completion request whose prompts are distinctive, to catch them in error texts.
pub fn completion_request() -> CompletionRequest {
    CompletionRequest {
        system: "SYSTEM-PROMPT judge the answer".to_owned(),
        user: "USER-PROMPT the generation to judge".to_owned(),
        schema_name: "verdict".to_owned(),
        schema: verdict_schema(),
        model: MODEL.to_owned(),
        max_output_tokens: 321,
    }
}

/// Backoffs short enough for tests (a `Retry-After` is still honoured as given).
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy { max_retries: 2, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(40) }
}

/// A completion adapter pointed at `server` for `provider`, with fast retries.
pub fn completion(provider: Provider, server: &MockServer) -> (HttpStructuredCompletion, ProviderCredentials) {
    completion_at(provider, &server.uri())
}

/// Like [`completion`], for a host given as `http://127.0.0.1:port`.
pub fn completion_at(provider: Provider, root: &str) -> (HttpStructuredCompletion, ProviderCredentials) {
    let config = match provider {
        Provider::AzureOpenai => LlmGatewayConfig::default(),
        Provider::OpenaiCompatible => LlmGatewayConfig::default().allowing_private_endpoints(true),
        _ => LlmGatewayConfig::default()
            .with_base_url(provider, Url::parse(&format!("{root}{BASE_PATH}")).unwrap())
            .unwrap(),
    };
    let adapter = HttpStructuredCompletion::new(config).unwrap().with_retry_policy(fast_retries());
    (adapter, credentials(provider, root))
}

/// The path of the completion call on the fake server.
pub fn completion_path(provider: Provider) -> String {
    match provider {
        Provider::AzureOpenai => format!("/openai/deployments/{MODEL}/chat/completions"),
        Provider::Anthropic => format!("{BASE_PATH}/messages"),
        Provider::Gemini => format!("{BASE_PATH}/models/{MODEL}:generateContent"),
        _ => format!("{BASE_PATH}/chat/completions"),
    }
}

/// The completion call as the provider expects it: POST, its path, the key in its header
/// (Anthropic: with the version; Azure: with the api-version).
pub fn completion_call(provider: Provider) -> MockBuilder {
    let (name, value) = auth_header(provider);
    let mock = wiremock::Mock::given(method("POST"))
        .and(path(completion_path(provider)))
        .and(header(name, value.as_str()))
        .and(header("content-type", "application/json"));
    match provider {
        Provider::Anthropic => mock.and(header("anthropic-version", "2023-06-01")),
        Provider::AzureOpenai => mock.and(query_param("api-version", AZURE_API_VERSION)),
        Provider::OpenaiCompatible => mock.and(header(TENANT_HEADER, TENANT_SECRET)),
        _ => mock,
    }
}

/// A realistic 200 answer carrying `answer` where `provider` puts it, with usage 11 in / 7 out.
pub fn answer_body(provider: Provider, answer: &Value) -> Value {
    answer_with_text(provider, &answer.to_string(), Some(answer))
}

/// A 200 answer whose content is prose, not JSON (Anthropic: a text block, no `tool_use`).
pub fn prose_answer_body(provider: Provider) -> Value {
    answer_with_text(provider, "Sure! The answer passes, with a score of 3.", None)
}

fn answer_with_text(provider: Provider, text: &str, tool_input: Option<&Value>) -> Value {
    match provider {
        Provider::Anthropic => {
            let mut content = vec![json!({"type": "text", "text": text})];
            if let Some(input) = tool_input {
                content = vec![json!({"type": "tool_use", "id": "toolu_01A", "name": "verdict", "input": input})];
            }
            json!({
                "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                "content": content,
                "stop_reason": if tool_input.is_some() { "tool_use" } else { "end_turn" },
                "stop_sequence": null,
                "usage": {"input_tokens": 11, "output_tokens": 7}
            })
        }
        Provider::Gemini => json!({
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"
        }),
        _ => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_754_425_928, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        }),
    }
}
