//! Errors of the report use cases; a refused value is a [`FieldError`].

use crate::invalid::FieldError;

/// Creating or changing a report failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum SaveReportError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading a report (or its runs, or asking for a run) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(SaveReportError, ReportError);

use_case_errors!(SaveReportError: [NotFound, Invalid, Unexpected], ReportError: [NotFound, Unexpected]);
