//! Backfills (spec section 4.2): an evaluation run over events of the past. Its estimate
//! and progress are counted on the backfill; its work is jobs of the one job table — a
//! dispatcher per page of targets, and judge jobs in a lane of their own, so a backfill
//! never takes the room of live judgements.

mod dispatch;
mod error;
mod model;
mod ports;
mod service;

pub use dispatch::{count_ended, dispatch_job, qualifying};
pub use error::BackfillError;
pub use model::{
    Backfill, BackfillRequest, BackfillStatus, Candidate, DispatchPayload, DispatchedPage, Estimate, NewBackfill,
    TargetOutcome,
};
pub use ports::{BackfillStatements, BackfillStore, BackfillTargets};
pub use service::{BackfillCommand, BackfillPorts, BackfillService, MAX_ESTIMATED_TARGETS, PAGE_SIZE};

#[cfg(feature = "mocks")]
pub use ports::{MockBackfillStatements, MockBackfillStore, MockBackfillTargets};
