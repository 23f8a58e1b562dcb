//! Errors of the backfill use cases.

use crate::{FieldError, RepositoryError};

/// A backfill request refused.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The evaluation (or the backfill) is not in the project.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The evaluation has a queued or running backfill.
    #[error("a backfill is already running for this evaluation")]
    AlreadyRunning,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

use_case_errors!(BackfillError: [NotFound, Invalid, Unexpected]);
