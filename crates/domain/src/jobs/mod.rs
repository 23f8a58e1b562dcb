//! Background work (DESIGN.md "Background work"): one durable job table behind the
//! `JobQueue` port, and one worker loop that runs every kind of job. A job has a kind, an
//! optional natural unique key (at most one job per key, ever), attempts, `run_after` and
//! a lease that belongs to whoever claimed it.

mod handler;
mod model;
mod ports;

pub use handler::{JobEnd, JobHandler, JobOutcome};
pub use model::{ClaimedJob, Debounce, JobId, JobKind, Lease, NewJob, backoff};
pub use ports::{JobQueue, JobStatements};

#[cfg(feature = "mocks")]
pub use ports::{MockJobQueue, MockJobStatements};
