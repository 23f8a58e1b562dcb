//! Why an ingestion request failed.

use super::PayloadError;

/// Why a request carries no usable project token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// A capture body without `api_key` or `token`.
    MissingInBody,
    /// An OTLP request without a bearer token or `?token=`.
    MissingInRequest,
    /// A token that no project has.
    Unknown,
}

/// Ingesting a capture request failed; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No project token, or one that no project has: 401.
    #[error("unauthenticated: {0:?}")]
    Unauthenticated(TokenProblem),
    /// The payload is not a valid capture payload: 400 naming the problem.
    #[error(transparent)]
    Malformed(#[from] PayloadError),
    /// Storage failed: 500, the cause logged.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(IngestError);

use_case_errors!(IngestError: [Unexpected]);
