//! `HttpStructuredCompletion`: the `StructuredCompletion` port over HTTP (spec section 11).
//!
//! One file per wire format builds the request body and finds the answer in the reply;
//! this module drives the attempts: retries of 429/5xx/broken connections
//! ([`RetryPolicy`]), one re-ask when the answer is unusable, and the deadline.

mod anthropic;
mod azure;
mod gemini;
mod openai_compatible;
mod retry;
mod schema_check;

use std::time::Duration;

use async_trait::async_trait;
use domain::llm::{Completion, CompletionError, CompletionRequest, StructuredCompletion, TokenUsage};
use domain::provider_key::{Provider, ProviderCredentials};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::time::Instant;

pub use retry::RetryPolicy;

use self::openai_compatible::TokenLimitField;
use crate::config::LlmGatewayConfig;
use crate::http_client::{self, GatewayBuildError};
use crate::provider_api::{self, AddressError, Call};

/// Structured completions with every provider over HTTP, with one shared client (no
/// redirects, bounded bodies). Cheap to share behind an `Arc<dyn StructuredCompletion>`.
#[derive(Debug, Clone)]
pub struct HttpStructuredCompletion {
    clients: http_client::Clients,
    config: LlmGatewayConfig,
    retry: RetryPolicy,
}

impl HttpStructuredCompletion {
    /// Builds the adapter and its HTTP client, with the default [`RetryPolicy`]. Each call's
    /// own deadline replaces `config.validation_timeout`.
    pub fn new(config: LlmGatewayConfig) -> Result<Self, GatewayBuildError> {
        let clients = http_client::Clients::build(&config)?;
        Ok(Self { clients, config, retry: RetryPolicy::default() })
    }

    /// Replaces the retry policy (tests use short backoffs).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    async fn run(
        &self,
        credentials: &ProviderCredentials,
        request: &CompletionRequest,
        end: Instant,
    ) -> Result<Completion, CompletionError> {
        let provider = credentials.provider;
        let format = WireFormat::of(provider);
        let call = provider_api::completion_call(&self.config, credentials, &request.model).map_err(address_error)?;
        let headers = provider_api::auth_headers(credentials).map_err(address_error)?;
        let secrets = provider_api::secrets(credentials);
        let mut body = format.body(request);
        tracing::debug!(system = %request.system, user = %request.user, "completion prompt");

        let mut attempts = 0;
        let mut retries = 0;
        let mut reasked = false;
        // Set once the server refused `json_schema`: JSON mode, the schema checked here.
        let mut json_mode = false;
        let mut usage = TokenUsage::default();
        loop {
            let remaining = end.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(CompletionError::Timeout);
            }
            attempts += 1;
            let transient = match self.attempt(provider, &call, headers.clone(), &body, remaining).await {
                Ok(reply) if reply.status.is_success() => {
                    let answer = format.parse(&reply.body);
                    usage.input += answer.usage.input;
                    usage.output += answer.usage.output;
                    let value = match answer.value {
                        Ok(value) if json_mode => schema_check::conforms(&value, &request.schema).map(|()| value),
                        other => other,
                    };
                    match value {
                        Ok(value) => {
                            tracing::debug!(answer = %value, "completion answer");
                            return Ok(Completion { value, usage, attempts });
                        }
                        Err(why) if !reasked => {
                            tracing::warn!(reason = why, attempts, "unusable answer, asking once more");
                            reasked = true;
                            continue;
                        }
                        Err(why) => return Err(CompletionError::BadOutput(why.to_owned())),
                    }
                }
                Ok(reply)
                    if !json_mode
                        && provider == Provider::OpenaiCompatible
                        && openai_compatible::refuses_json_schema(reply.status, &reply.body) =>
                {
                    tracing::info!("the endpoint refused json_schema; asking in JSON mode");
                    json_mode = true;
                    body = openai_compatible::json_mode_body(request, TokenLimitField::MaxTokens);
                    continue;
                }
                Ok(reply) => retry::classify_status(provider, &reply, &secrets)?,
                Err(error) => retry::classify_transport(error)?,
            };
            let delay = self.retry.delay(retries, transient.retry_after());
            if retries >= self.retry.max_retries || Instant::now() + delay >= end {
                return Err(transient.into_error());
            }
            tracing::warn!(?transient, attempts, delay_ms = delay.as_millis() as u64, "retrying the completion");
            retries += 1;
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        provider: Provider,
        call: &Call,
        headers: HeaderMap,
        body: &Value,
        timeout: Duration,
    ) -> Result<http_client::Reply, http_client::TransportError> {
        let query: Vec<(&str, &str)> = call.query.iter().map(|(name, value)| (*name, value.as_str())).collect();
        http_client::post_json(
            self.clients.of(provider),
            call.url.clone(),
            headers,
            &query,
            body,
            timeout,
            self.config.max_body_bytes,
        )
        .await
    }
}

#[async_trait]
impl StructuredCompletion for HttpStructuredCompletion {
    #[tracing::instrument(skip_all, fields(provider = %credentials.provider, model = %request.model))]
    async fn complete(
        &self,
        credentials: &ProviderCredentials,
        request: &CompletionRequest,
        deadline: Duration,
    ) -> Result<Completion, CompletionError> {
        let started = Instant::now();
        let end = started + deadline;
        let outcome = tokio::time::timeout(deadline, self.run(credentials, request, end))
            .await
            .unwrap_or(Err(CompletionError::Timeout));
        let latency_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok(completion) => tracing::info!(
                attempts = completion.attempts,
                tokens_in = completion.usage.input,
                tokens_out = completion.usage.output,
                latency_ms,
                "completion succeeded"
            ),
            Err(error) => tracing::warn!(%error, latency_ms, "completion failed"),
        }
        outcome
    }
}

/// The four wire formats of spec section 11.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WireFormat {
    OpenaiCompatible(TokenLimitField),
    Azure,
    Anthropic,
    Gemini,
}

impl WireFormat {
    fn of(provider: Provider) -> Self {
        match provider {
            Provider::Openai => WireFormat::OpenaiCompatible(TokenLimitField::MaxCompletionTokens),
            Provider::Openrouter | Provider::Fireworks | Provider::TogetherAi | Provider::OpenaiCompatible => {
                WireFormat::OpenaiCompatible(TokenLimitField::MaxTokens)
            }
            Provider::AzureOpenai => WireFormat::Azure,
            Provider::Anthropic => WireFormat::Anthropic,
            Provider::Gemini => WireFormat::Gemini,
        }
    }

    fn body(self, request: &CompletionRequest) -> Value {
        match self {
            WireFormat::OpenaiCompatible(limit) => openai_compatible::body(request, limit),
            WireFormat::Azure => azure::body(request),
            WireFormat::Anthropic => anthropic::body(request),
            WireFormat::Gemini => gemini::body(request),
        }
    }

    fn parse(self, body: &[u8]) -> Answer {
        match self {
            WireFormat::OpenaiCompatible(_) => openai_compatible::parse(body),
            WireFormat::Azure => azure::parse(body),
            WireFormat::Anthropic => anthropic::parse(body),
            WireFormat::Gemini => gemini::parse(body),
        }
    }
}

/// What one 2xx reply held: the JSON answer or why it is unusable, and the tokens spent.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    value: Result<Value, &'static str>,
    usage: TokenUsage,
}

impl Answer {
    fn unusable(why: &'static str, usage: TokenUsage) -> Self {
        Self { value: Err(why), usage }
    }
}

/// A JSON object written as text, as OpenAI-style and Gemini answers carry it. A Markdown
/// code fence around it (some open models add one) is tolerated.
fn json_text(text: &str) -> Result<Value, &'static str> {
    let trimmed = text.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|inner| inner.strip_suffix("```"))
        .unwrap_or(trimmed);
    match serde_json::from_str::<Value>(unfenced) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("the answer was not a JSON object"),
        Err(_) => Err("the answer was not JSON"),
    }
}

/// A token count at `pointer`, 0 when the provider does not report it.
fn tokens(envelope: &Value, pointer: &str) -> u64 {
    envelope.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

fn address_error(error: AddressError) -> CompletionError {
    match error {
        AddressError::KeyNotAHeader => CompletionError::KeyRejected,
        AddressError::MissingAzureEndpoint | AddressError::BadAzureEndpoint | AddressError::MissingBaseUrl => {
            CompletionError::Unavailable("no usable endpoint".to_owned())
        }
        AddressError::HeaderNotAllowed => CompletionError::Unavailable("an extra header cannot be sent".to_owned()),
        AddressError::PrivateAddress => {
            CompletionError::Unavailable(crate::http_client::TransportError::PrivateAddress.describe().to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_accepts_objects_with_or_without_a_fence() {
        assert_eq!(json_text(" {\"a\": 1} "), Ok(serde_json::json!({"a": 1})));
        assert_eq!(json_text("```json\n{\"a\": 1}\n```"), Ok(serde_json::json!({"a": 1})));
        assert_eq!(json_text("Sure! Here it is"), Err("the answer was not JSON"));
        assert_eq!(json_text("[1]"), Err("the answer was not a JSON object"));
    }
}
