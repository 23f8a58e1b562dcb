//! Why listing an experiment's items failed.

/// Listing an experiment's items failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentItemsError {
    /// The request is wrong: 400 on `field`.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    /// Storage failed: 500 `{"error": "Failed to fetch offline evaluation items"}`.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(ExperimentItemsError);
