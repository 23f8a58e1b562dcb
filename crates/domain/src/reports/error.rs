//! Errors of the report use cases: the shared shapes of a save and of a lookup.

/// Creating or changing a report failed; nothing was stored.
pub type SaveReportError = crate::SaveError;

/// Reading a report (or its runs, or asking for a run) failed.
pub type ReportError = crate::LookupError;
