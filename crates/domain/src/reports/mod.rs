//! Evaluation reports (spec section 7): reports on a schedule, every N results or when
//! the pass rate crosses a line; each run's content from SQL metrics and an LLM (or the
//! fallback), rendered for e-mail, Slack, webhooks and a signed page, delivered by jobs on
//! the shared job table.

pub mod content;
pub mod delivery;
mod error;
pub mod input;
mod model;
mod ports;
pub mod render;
pub mod schedule;
mod service;
pub mod targets;

pub use error::{InvalidReport, ReportError, SaveReportError};
pub use input::ReportInput;
pub use model::*;
pub use ports::{
    DueCandidate, LinkSigner, NewDelivery, NewRun, ReportDelivery, ReportEvents, ReportRepository, ReportRunStore,
    StoredDelivery,
};
pub use service::{LINK_LIFETIME, ReportConfig, ReportPorts, ReportService, due_jobs};

#[cfg(feature = "mocks")]
pub use ports::{MockLinkSigner, MockReportDelivery, MockReportEvents, MockReportRepository, MockReportRunStore};
