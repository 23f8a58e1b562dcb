//! Why a summary request failed.

use std::time::Duration;

use crate::EvaluationId;
use crate::invalid::FieldError;

/// Summarising an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    /// The API key used up a rate-limit window.
    #[error("throttled for {retry_after:?}")]
    Throttled { retry_after: Duration },
    /// The body is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No such evaluation in the project (or it is deleted).
    #[error("evaluation {0} not found")]
    EvaluationNotFound(EvaluationId),
    #[error("no runs match")]
    NoRuns,
    /// No key and no system LLM to call.
    #[error("no LLM is configured")]
    NoLlm,
    /// The provider failed, timed out, rejected the key or answered unusably.
    #[error("the LLM call failed")]
    LlmFailed,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(SummarizeError);

use_case_errors!(SummarizeError: [Invalid, Unexpected]);
