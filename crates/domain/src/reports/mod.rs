//! Evaluation reports (spec section 7): reports on a schedule, every N results or when
//! the pass rate crosses a line; each run's content from SQL metrics and an LLM (or the
//! fallback), rendered for e-mail, Slack, webhooks and a signed page, delivered by jobs on
//! the shared job table.

mod admin;
pub mod content;
mod delivering;
pub mod delivery;
mod error;
pub mod input;
mod model;
mod pages;
mod ports;
pub mod render;
mod run_generation;
mod run_jobs;
mod run_writes;
pub mod schedule;
mod scheduler;
mod services;
pub mod targets;

pub use admin::ReportAdmin;
pub use delivering::RunDeliveries;
pub use error::{ReportError, SaveReportError};
pub use input::ReportInput;
pub use model::*;
pub use pages::{LINK_LIFETIME, RunPages};
pub use ports::{
    EvaluationPeriod, LinkSigner, NewDelivery, NewResults, NewRun, ReportDelivery, ReportEvents, ReportRepository,
    ReportRunStore, ScheduleCandidate, StoredDelivery,
};
pub use run_generation::RunGeneration;
pub use run_writes::{LockedReport, ReportStatements, RunTransactions, RunWrites};
pub use scheduler::ReportScheduler;
pub use services::{ReportConfig, ReportPorts, ReportServices};

#[cfg(feature = "mocks")]
pub use ports::{MockLinkSigner, MockReportDelivery, MockReportEvents, MockReportRepository, MockReportRunStore};
#[cfg(feature = "mocks")]
pub use run_writes::{MockReportStatements, MockRunWrites};
