//! Why listing an experiment's items failed.

/// Listing an experiment's items failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentItemsError {
    /// Storage failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(ExperimentItemsError);

// Its storage failure has an answer of its own (the reference's `{"error": ...}` shape).
use_case_errors!(ExperimentItemsError: []);
