//! Why a summary request failed.

use std::time::Duration;

use crate::EvaluationId;

/// Summarising an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    /// The API key used up a rate-limit window.
    #[error("Request was throttled. Expected available in {} seconds.", retry_after.as_secs())]
    Throttled { retry_after: Duration },
    /// The body is invalid; `field` names the value at fault.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    /// No such evaluation in the project (or it is deleted).
    #[error("Evaluation {0} not found")]
    EvaluationNotFound(EvaluationId),
    #[error("No evaluation runs found for the specified criteria")]
    NoRuns,
    /// No key and no system LLM to call.
    #[error(
        "No LLM is configured for summaries: add a provider key to this project and set it as the active key, or have the operator set LLMA_SYSTEM_LLM_PROVIDER and LLMA_SYSTEM_LLM_API_KEY."
    )]
    NoLlm,
    /// The provider failed, timed out, rejected the key or answered unusably.
    #[error("Failed to generate summary")]
    LlmFailed,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(SummarizeError);
