//! The `StructuredCompletion` port (spec section 11): one structured-output LLM call, shared
//! by the evaluation summary, reports and the judge runner.

use std::time::Duration;

use async_trait::async_trait;

use crate::provider_key::ProviderCredentials;

/// One structured completion: the answer must be JSON matching `schema`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub system: String,
    pub user: String,
    /// A short name for the schema (`[A-Za-z0-9_-]`, as OpenAI's `json_schema.name` and
    /// Anthropic's tool name require).
    pub schema_name: String,
    /// A JSON Schema object (strict-mode compatible: every property required,
    /// `additionalProperties: false`).
    pub schema: serde_json::Value,
    /// The provider's model id (Azure: the deployment name).
    pub model: String,
    pub max_output_tokens: u32,
}

/// Tokens a call consumed, as the provider reports them (0 when it does not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
}

/// A successful completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The parsed JSON answer.
    pub value: serde_json::Value,
    pub usage: TokenUsage,
    /// HTTP attempts made, retries and re-asks included.
    pub attempts: u32,
}

/// Why a completion failed. Never carries the key, the prompt or the provider's body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompletionError {
    /// 401/403 (Gemini: 400 `API_KEY_INVALID`): the key is bad; never retried.
    #[error("the provider rejected the key")]
    KeyRejected,
    /// 429 after the retries the budget allowed.
    #[error("the provider rate-limited the call")]
    RateLimited { retry_after: Option<Duration> },
    /// The deadline passed.
    #[error("the provider did not answer in time")]
    Timeout,
    /// 5xx, connection failure, or an unexpected status, after retries.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The answer was not JSON of the requested shape, also after one re-ask.
    #[error("the provider's answer was unusable: {0}")]
    BadOutput(String),
    /// The key's account is out of quota or credit (OpenAI `insufficient_quota`, 402);
    /// carries the provider's message. Never retried: the user must act.
    #[error("the provider says the account is out of quota: {0}")]
    QuotaExceeded(String),
    /// The provider does not know the model (404); carries the provider's message.
    #[error("the provider does not know the model: {0}")]
    ModelNotFound(String),
}

impl CompletionError {
    /// The provider's own words, for an evaluation's `status_reason_detail`.
    pub fn provider_detail(&self) -> Option<&str> {
        match self {
            Self::QuotaExceeded(detail) | Self::ModelNotFound(detail) => Some(detail),
            _ => None,
        }
    }
}

/// Structured completions against any of the seven providers. Implementations retry
/// 429/5xx/connection resets with backoff (honouring `Retry-After`, at most 2 retries),
/// re-ask once when the answer is not JSON, never retry a rejected key, and finish within
/// `deadline` whatever happens.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait StructuredCompletion: Send + Sync + 'static {
    async fn complete(
        &self,
        credentials: &ProviderCredentials,
        request: &CompletionRequest,
        deadline: Duration,
    ) -> Result<Completion, CompletionError>;
}
