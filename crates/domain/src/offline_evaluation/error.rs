//! Why listing an experiment's items failed.

/// Listing an experiment's items failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentItemsError {
    /// No `experiment_id` was sent.
    #[error("no experiment id")]
    MissingExperimentId,
    /// `experiment_id` is blank.
    #[error("blank experiment id")]
    BlankExperimentId,
    /// A date bound (`date_from`, `date_to`) is not ISO 8601.
    #[error("{field} is not an ISO 8601 date")]
    NotADate { field: &'static str },
    /// Storage failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(ExperimentItemsError);

// Its storage failure has an answer of its own (the reference's `{"error": ...}` shape).
use_case_errors!(ExperimentItemsError: []);
