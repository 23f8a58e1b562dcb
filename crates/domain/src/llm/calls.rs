//! The record of every LLM call (spec section 11): cost visible per project and purpose.

use async_trait::async_trait;

use crate::llm::CompletionError;
use crate::provider_key::Provider;
use crate::{ProjectId, ProviderKeyId, RepositoryError};

/// Why an LLM call was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmPurpose {
    Summary,
    Report,
    Judge,
}

impl LlmPurpose {
    pub const ALL: [LlmPurpose; 3] = [Self::Summary, Self::Report, Self::Judge];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Report => "report",
            Self::Judge => "judge",
        }
    }
}

/// How an LLM call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmCallOutcome {
    Ok,
    KeyRejected,
    RateLimited,
    Timeout,
    Unavailable,
    BadOutput,
}

impl LlmCallOutcome {
    pub const ALL: [LlmCallOutcome; 6] =
        [Self::Ok, Self::KeyRejected, Self::RateLimited, Self::Timeout, Self::Unavailable, Self::BadOutput];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::KeyRejected => "key_rejected",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::BadOutput => "bad_output",
        }
    }

    /// The outcome of a failed call.
    pub fn of_error(error: &CompletionError) -> Self {
        match error {
            CompletionError::KeyRejected => Self::KeyRejected,
            CompletionError::RateLimited { .. } => Self::RateLimited,
            CompletionError::Timeout => Self::Timeout,
            CompletionError::Unavailable(_) | CompletionError::QuotaExceeded(_) | CompletionError::ModelNotFound(_) => {
                Self::Unavailable
            }
            CompletionError::BadOutput(_) => Self::BadOutput,
        }
    }
}

/// One LLM call as recorded in `llm_calls`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmCallRecord {
    pub project: ProjectId,
    pub purpose: LlmPurpose,
    pub provider: Provider,
    pub model: String,
    /// The project's key that paid for it; `None` for the operator's system LLM.
    pub key: Option<ProviderKeyId>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub latency_ms: u64,
    pub outcome: LlmCallOutcome,
    /// What it cost in USD, priced as an ingested generation is, and where the price came
    /// from; `None` when no price is known for the model.
    pub cost: Option<(f64, crate::cost::CostSource)>,
}

/// Where LLM calls are recorded. Errors are `RepositoryError` only.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait LlmCallLog: Send + Sync + 'static {
    /// Stores one call record.
    async fn record(&self, call: &LlmCallRecord) -> Result<(), RepositoryError>;
}
