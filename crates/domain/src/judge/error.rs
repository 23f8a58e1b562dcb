//! Errors of the judge runner's use cases.

use crate::RepositoryError;

/// `POST evaluation_runs/` refused.
#[derive(Debug, thiserror::Error)]
pub enum ManualRunError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Unknown, deleted or of another project.
    #[error("Evaluation {0} not found")]
    EvaluationNotFound(String),
    #[error("Event {0} not found")]
    EventNotFound(String),
    /// Older than `LLMA_EVENT_RETENTION_DAYS`.
    #[error("Event {0} is past the ai_events retention window and can no longer be evaluated")]
    PastRetention(String),
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

/// `GET evaluation_runs/` or `evaluation_results/` refused.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("Evaluation not found.")]
    EvaluationNotFound,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}
