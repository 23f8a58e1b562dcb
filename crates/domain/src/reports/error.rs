//! Errors of the report use cases. `field` is the request path at fault (the HTTP `attr`).

/// One invalid field of a report as sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidReport {
    pub field: String,
    pub message: String,
}

impl InvalidReport {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), message: message.into() }
    }
}

/// Creating or changing a report failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum SaveReportError {
    #[error("Not found.")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] InvalidReport),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading a report (or its runs, or asking for a run) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("Not found.")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(SaveReportError, ReportError);
