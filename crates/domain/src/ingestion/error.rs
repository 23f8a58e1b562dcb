//! Why an ingestion request failed.

use super::PayloadError;

/// Ingesting a capture request failed; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No project token, or one that no project has: 401.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The payload is not a valid capture payload: 400 naming the problem.
    #[error(transparent)]
    Malformed(#[from] PayloadError),
    /// Storage failed: 500, the cause logged.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(IngestError);
