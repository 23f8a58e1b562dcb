//! `StructuredCompletion::complete` against fake providers speaking each wire format:
//! OpenAI-compatible (OpenAI, Together AI, Fireworks, OpenRouter), Azure OpenAI,
//! Anthropic and Gemini.

mod common;

use std::future::Future;
use std::time::Duration;

use adapters_llm::{HttpStructuredCompletion, LlmGatewayConfig, RetryPolicy};
use common::*;
use domain::llm::{Completion, CompletionError, StructuredCompletion, TokenUsage};
use domain::provider_key::Provider;
use futures::future::join_all;
use serde_json::{Value, json};
use tokio::time::Instant;
use wiremock::{MockServer, Request, ResponseTemplate};

/// The providers that speak OpenAI's chat-completions format (at a fixed host, or at the
/// endpoint the key names).
const OPENAI_COMPATIBLE: [Provider; 5] =
    [Provider::Openai, Provider::TogetherAi, Provider::Fireworks, Provider::Openrouter, Provider::OpenaiCompatible];

/// A deadline no healthy fake server comes near.
const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `case` for every provider concurrently (each with its own fake server).
async fn for_each<F, Fut>(providers: &[Provider], case: F)
where
    F: Fn(Provider) -> Fut,
    Fut: Future<Output = ()>,
{
    join_all(providers.iter().map(|provider| case(*provider))).await;
}

/// Answers the first completion call with `first`, every later one with `then`.
async fn mount_first_then(provider: Provider, server: &MockServer, first: ResponseTemplate, then: ResponseTemplate) {
    completion_call(provider).respond_with(first).up_to_n_times(1).with_priority(1).mount(server).await;
    completion_call(provider).respond_with(then).mount(server).await;
}

/// A fake server of `provider` answering every completion call with `response`.
async fn answering(provider: Provider, response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    completion_call(provider).respond_with(response).mount(&server).await;
    server
}

/// A fake server of `provider` answering the first completion call with `first`, every
/// later one with `then`.
async fn answering_first_then(provider: Provider, first: ResponseTemplate, then: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    mount_first_then(provider, &server, first, then).await;
    server
}

/// One completion of the test request against `server`, within [`DEADLINE`].
async fn complete_at(provider: Provider, server: &MockServer) -> Result<Completion, CompletionError> {
    let (adapter, credentials) = completion(provider, server);
    adapter.complete(&credentials, &completion_request(), DEADLINE).await
}

fn ok(provider: Provider) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(answer_body(provider, &verdict()))
}

fn prose(provider: Provider) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(prose_answer_body(provider))
}

/// The one request `server` received, as JSON.
async fn only_body(server: &MockServer) -> (Request, Value) {
    let requests = received(server).await;
    assert_eq!(requests.len(), 1);
    let request = requests.into_iter().next().unwrap();
    let body = serde_json::from_slice(&request.body).unwrap();
    (request, body)
}

fn assert_error_secret_free(error: &CompletionError, context: &str) {
    let text = format!("{error} {error:?}");
    assert_secret_free(&text, context);
    assert!(!text.contains("SYSTEM-PROMPT") && !text.contains("USER-PROMPT"), "{context}: leaks the prompt: {text}");
}

// ---- Every provider -----------------------------------------------------------------------

#[tokio::test]
async fn the_answer_and_usage_are_read_from_where_each_provider_puts_them() {
    for_each(&Provider::ALL, |provider| async move {
        let server = answering(provider, ok(provider)).await;
        let completion = complete_at(provider, &server).await.unwrap();
        assert_eq!(completion.value, verdict(), "{provider}");
        assert_eq!(completion.usage, TokenUsage { input: 11, output: 7 }, "{provider}");
        assert_eq!(completion.attempts, 1, "{provider}");
    })
    .await;
}

#[tokio::test]
async fn unauthorized_and_forbidden_reject_the_key_without_a_retry() {
    for_each(&Provider::ALL, |provider| async move {
        for status in [401, 403] {
            let response = ResponseTemplate::new(status).set_body_json(error_body(provider, status));
            let server = answering(provider, response).await;
            let error = complete_at(provider, &server).await.unwrap_err();
            assert_eq!(error, CompletionError::KeyRejected, "{provider} {status}");
            assert_eq!(received(&server).await.len(), 1, "{provider} {status}: retried a rejected key");
        }
    })
    .await;
}

/// A passing failure: a rate limit (with `retry-after` seconds) or a server error.
fn failing(provider: Provider, status: u16, retry_after: &str) -> ResponseTemplate {
    let response = ResponseTemplate::new(status).set_body_json(error_body(provider, status));
    match status {
        429 => response.insert_header("retry-after", retry_after),
        _ => response,
    }
}

#[tokio::test]
async fn a_rate_limit_or_a_server_error_is_retried_then_succeeds() {
    for_each(&Provider::ALL, |provider| async move {
        for status in [429, 500] {
            let server = answering_first_then(provider, failing(provider, status, "1"), ok(provider)).await;
            let completion = complete_at(provider, &server).await.unwrap();
            assert_eq!(completion.value, verdict(), "{provider} {status}");
            assert_eq!(completion.attempts, 2, "{provider} {status}");
            assert_eq!(received(&server).await.len(), 2, "{provider} {status}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_lasting_rate_limit_or_server_error_gives_up_after_two_retries() {
    for_each(&Provider::ALL, |provider| async move {
        let expected = [
            (429, CompletionError::RateLimited { retry_after: Some(Duration::ZERO) }),
            (503, CompletionError::Unavailable("status 503".to_owned())),
        ];
        for (status, expected) in expected {
            let server = answering(provider, failing(provider, status, "0")).await;
            let error = complete_at(provider, &server).await.unwrap_err();
            assert_eq!(error, expected, "{provider}");
            assert_eq!(received(&server).await.len(), 3, "{provider} {status}");
            assert_error_secret_free(&error, &provider.to_string());
        }
    })
    .await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_not_waited_for() {
    for_each(&Provider::ALL, |provider| async move {
        let server = answering(provider, ResponseTemplate::new(429).insert_header("retry-after", "120")).await;
        let started = Instant::now();
        let error = complete_at(provider, &server).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{provider}: waited past the deadline");
        assert_eq!(error, CompletionError::RateLimited { retry_after: Some(Duration::from_secs(120)) }, "{provider}");
        assert_eq!(received(&server).await.len(), 1, "{provider}");
    })
    .await;
}

#[tokio::test]
async fn a_backoff_that_would_pass_the_deadline_is_not_slept() {
    for_each(&Provider::ALL, |provider| async move {
        let server = answering(provider, ResponseTemplate::new(502)).await;
        let (adapter, credentials) = completion(provider, &server);
        let slow =
            RetryPolicy { base_delay: Duration::from_secs(30), max_delay: Duration::from_secs(60), ..fast_retries() };
        let adapter = adapter.with_retry_policy(slow);
        let started = Instant::now();
        let error = adapter.complete(&credentials, &completion_request(), Duration::from_secs(2)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{provider}: slept past the deadline");
        assert_eq!(error, CompletionError::Unavailable("status 502".to_owned()), "{provider}");
        assert_eq!(received(&server).await.len(), 1, "{provider}");
    })
    .await;
}

#[test]
fn the_default_policy_allows_two_retries() {
    let adapter = HttpStructuredCompletion::new(LlmGatewayConfig::default()).unwrap();
    assert_eq!(adapter.retry_policy().max_retries, 2);
    assert_eq!(RetryPolicy::default(), adapter.retry_policy());
}

#[tokio::test]
async fn another_client_error_is_unavailable_without_a_retry() {
    for_each(&Provider::ALL, |provider| async move {
        let response = ResponseTemplate::new(409).set_body_json(error_body(provider, 409));
        let server = answering(provider, response).await;
        let error = complete_at(provider, &server).await.unwrap_err();
        assert_eq!(error, CompletionError::Unavailable("status 409".to_owned()), "{provider}");
        assert_eq!(received(&server).await.len(), 1, "{provider}");
    })
    .await;
}

#[tokio::test]
async fn an_unknown_model_keeps_the_providers_words_without_the_key_they_echo() {
    for_each(&Provider::ALL, |provider| async move {
        let response = ResponseTemplate::new(404).set_body_json(error_body(provider, 404));
        let server = answering(provider, response).await;
        let error = complete_at(provider, &server).await.unwrap_err();
        let CompletionError::ModelNotFound(words) = &error else {
            panic!("{provider}: {error:?}");
        };
        assert!(words.starts_with("Request failed with status 404."), "{provider}: {words}");
        assert!(!words.contains(KEY) && !words.contains("SECRET"), "{provider}: the key leaked: {words}");
        assert_eq!(received(&server).await.len(), 1, "{provider}: never retried");
    })
    .await;
}

#[tokio::test]
async fn a_hanging_provider_times_out_at_the_deadline() {
    for_each(&Provider::ALL, |provider| async move {
        let server = answering(provider, ok(provider).set_delay(LONG_DELAY)).await;
        let (adapter, credentials) = completion(provider, &server);
        let started = Instant::now();
        let error =
            adapter.complete(&credentials, &completion_request(), Duration::from_millis(500)).await.unwrap_err();
        assert_eq!(error, CompletionError::Timeout, "{provider}");
        assert!(started.elapsed() < Duration::from_secs(5), "{provider}: did not return near the deadline");
    })
    .await;
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    for_each(&Provider::ALL, |provider| async move {
        let (adapter, credentials) = completion_at(provider, &refused_root());
        let error = adapter.complete(&credentials, &completion_request(), DEADLINE).await.unwrap_err();
        assert!(matches!(error, CompletionError::Unavailable(_)), "{provider}: {error:?}");
        assert_error_secret_free(&error, &provider.to_string());
    })
    .await;
}

#[tokio::test]
async fn prose_instead_of_json_is_asked_again_once() {
    for_each(&Provider::ALL, |provider| async move {
        let server = answering_first_then(provider, prose(provider), ok(provider)).await;
        let completion = complete_at(provider, &server).await.unwrap();
        assert_eq!(completion.value, verdict(), "{provider}");
        assert_eq!(completion.attempts, 2, "{provider}");
        assert_eq!(completion.usage, TokenUsage { input: 22, output: 14 }, "{provider}: both calls cost tokens");
        assert_eq!(received(&server).await.len(), 2, "{provider}");
    })
    .await;
}

#[tokio::test]
async fn prose_twice_is_bad_output() {
    for_each(&Provider::ALL, |provider| async move {
        let server = answering(provider, prose(provider)).await;
        let error = complete_at(provider, &server).await.unwrap_err();
        assert!(matches!(error, CompletionError::BadOutput(_)), "{provider}: {error:?}");
        assert_eq!(received(&server).await.len(), 2, "{provider}");
        assert_error_secret_free(&error, &provider.to_string());
        assert!(!error.to_string().contains("Sure!"), "{provider}: echoes the answer");
    })
    .await;
}

#[tokio::test]
async fn the_key_travels_only_in_its_header() {
    for_each(&Provider::ALL, |provider| async move {
        // The mock only matches with the key in the provider's header.
        let server = answering(provider, ok(provider)).await;
        complete_at(provider, &server).await.unwrap();
        let (request, _) = only_body(&server).await;
        assert!(!request.url.as_str().contains(KEY), "{provider}: key in the URL");
        let query: Vec<_> = request.url.query_pairs().map(|(name, _)| name.into_owned()).collect();
        let expected: Vec<String> =
            if provider == Provider::AzureOpenai { vec!["api-version".to_owned()] } else { Vec::new() };
        assert_eq!(query, expected, "{provider}: unexpected query");
    })
    .await;
}

// ---- OpenAI-compatible and Azure ----------------------------------------------------------

#[tokio::test]
async fn openai_compatible_bodies_carry_a_strict_json_schema() {
    let mut providers = OPENAI_COMPATIBLE.to_vec();
    providers.push(Provider::AzureOpenai);
    for_each(&providers, |provider| async move {
        let server = answering(provider, ok(provider)).await;
        complete_at(provider, &server).await.unwrap();
        let (_, body) = only_body(&server).await;
        assert_eq!(body["model"], MODEL, "{provider}");
        assert_eq!(
            body["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "verdict", "strict": true, "schema": verdict_schema()}}),
            "{provider}"
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "SYSTEM-PROMPT judge the answer"},
                {"role": "user", "content": "USER-PROMPT the generation to judge"}
            ]),
            "{provider}"
        );
        let (limit, absent) = match provider {
            Provider::Openai | Provider::AzureOpenai => ("max_completion_tokens", "max_tokens"),
            _ => ("max_tokens", "max_completion_tokens"),
        };
        assert_eq!(body[limit], 321, "{provider}");
        assert!(body.get(absent).is_none(), "{provider}: sends {absent}");
    })
    .await;
}

#[tokio::test]
async fn openai_compatible_empty_choices_are_asked_again() {
    let mut providers = OPENAI_COMPATIBLE.to_vec();
    providers.push(Provider::AzureOpenai);
    for_each(&providers, |provider| async move {
        let empty = ResponseTemplate::new(200).set_body_json(json!({"id": "x", "choices": [], "usage": null}));
        let server = answering_first_then(provider, empty, ok(provider)).await;
        let completion = complete_at(provider, &server).await.unwrap();
        assert_eq!(completion.value, verdict(), "{provider}");
        assert_eq!(completion.attempts, 2, "{provider}");
        assert_eq!(completion.usage, TokenUsage { input: 11, output: 7 }, "{provider}");
    })
    .await;
}

// ---- Anthropic ---------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_gets_the_schema_as_a_forced_tool() {
    let provider = Provider::Anthropic;
    let server = answering(provider, ok(provider)).await;
    complete_at(provider, &server).await.unwrap();
    let (_, body) = only_body(&server).await;
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["max_tokens"], 321);
    assert_eq!(body["system"], "SYSTEM-PROMPT judge the answer");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "USER-PROMPT the generation to judge"}]));
    assert_eq!(body["tools"][0]["name"], "verdict");
    assert_eq!(body["tools"][0]["input_schema"], verdict_schema());
    assert!(body["tools"][0]["description"].is_string());
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "verdict"}));
}

#[tokio::test]
async fn anthropic_text_before_the_tool_call_is_ignored() {
    let provider = Provider::Anthropic;
    let mut body = answer_body(provider, &verdict());
    let tool_use = body["content"][0].clone();
    body["content"] = json!([{"type": "text", "text": "Let me record that."}, tool_use]);
    let server = answering(provider, ResponseTemplate::new(200).set_body_json(body)).await;
    let completion = complete_at(provider, &server).await.unwrap();
    assert_eq!(completion.value, verdict());
    assert_eq!(completion.attempts, 1);
}

#[tokio::test]
async fn anthropic_overloaded_is_retried() {
    let provider = Provider::Anthropic;
    let overloaded = ResponseTemplate::new(529)
        .set_body_json(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}));
    let server = answering_first_then(provider, overloaded, ok(provider)).await;
    let completion = complete_at(provider, &server).await.unwrap();
    assert_eq!(completion.attempts, 2);
}

// ---- Gemini ------------------------------------------------------------------------------

#[tokio::test]
async fn gemini_gets_the_schema_as_response_json_schema() {
    let provider = Provider::Gemini;
    let server = answering(provider, ok(provider)).await;
    complete_at(provider, &server).await.unwrap();
    let (_, body) = only_body(&server).await;
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": verdict_schema(), "maxOutputTokens": 321})
    );
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "SYSTEM-PROMPT judge the answer"}]}));
    assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "USER-PROMPT the generation to judge"}]}]));
}

#[tokio::test]
async fn gemini_bad_request_naming_an_invalid_key_rejects_the_key() {
    let provider = Provider::Gemini;
    let server = answering(provider, ResponseTemplate::new(400).set_body_json(gemini_bad_key_body())).await;
    let error = complete_at(provider, &server).await.unwrap_err();
    assert_eq!(error, CompletionError::KeyRejected);
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn gemini_other_bad_requests_are_unavailable() {
    let provider = Provider::Gemini;
    let body = json!({"error": {"code": 400, "message": "Invalid JSON payload", "status": "INVALID_ARGUMENT"}});
    let server = answering(provider, ResponseTemplate::new(400).set_body_json(body)).await;
    let error = complete_at(provider, &server).await.unwrap_err();
    assert_eq!(error, CompletionError::Unavailable("status 400".to_owned()));
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn gemini_models_named_with_their_list_prefix_are_called_once_prefixed() {
    let provider = Provider::Gemini;
    let server = answering(provider, ok(provider)).await;
    let (adapter, credentials) = completion(provider, &server);
    let mut request = completion_request();
    request.model = format!("models/{MODEL}");
    let completion = adapter.complete(&credentials, &request, DEADLINE).await.unwrap();
    assert_eq!(completion.value, verdict());
}
