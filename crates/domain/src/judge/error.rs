//! Errors of the judge runner's use cases.

use crate::RepositoryError;

/// `POST evaluation_runs/` refused.
#[derive(Debug, thiserror::Error)]
pub enum ManualRunError {
    /// Unknown, deleted or of another project.
    #[error("evaluation {0} not found")]
    EvaluationNotFound(String),
    #[error("event {0} not found")]
    EventNotFound(String),
    /// Older than `LLMA_EVENT_RETENTION_DAYS`.
    #[error("event {0} is past retention")]
    PastRetention(String),
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

/// `GET evaluation_runs/` or `evaluation_results/` refused.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("evaluation not found")]
    EvaluationNotFound,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

use_case_errors!(ManualRunError: [Unexpected], ResultsError: [Unexpected]);
