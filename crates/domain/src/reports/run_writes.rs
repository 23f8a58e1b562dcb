//! A report run and a delivery's end, each written with its job's end in one transaction
//! begun here: whether an automatic run is still due (its report's anchor unmoved), what it
//! moves on its report, and the run's status recomputed from its deliveries.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::delivery::{DeliveryRecord, DeliveryState, EndedDelivery, run_status};
use super::{DeliveryStatus, Frequency, NewDelivery, NewRun, ReportRun};
use crate::jobs::{JobEnd, Lease};
use crate::unit_of_work::UnitOfWork;
use crate::{ReportId, ReportRunId, RepositoryError};

/// A report as locked for storing one of its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedReport {
    pub frequency: Frequency,
    pub next_delivery_date: Option<DateTime<Utc>>,
    pub last_delivered_at: Option<DateTime<Utc>>,
}

impl LockedReport {
    /// What an automatic run was planned on: a scheduled report's next delivery date, the
    /// last delivery of the others.
    pub fn anchor(&self) -> Option<DateTime<Utc>> {
        match self.frequency {
            Frequency::Scheduled => self.next_delivery_date,
            Frequency::EveryN | Frequency::Alert => self.last_delivered_at,
        }
    }
}

/// Report statements inside a transaction (see [`crate::unit_of_work`]).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ReportStatements: Send {
    /// The report (deleted or not), its row locked until the transaction ends.
    async fn lock_report(&mut self, report: ReportId) -> Result<Option<LockedReport>, RepositoryError>;

    /// Inserts the run unless a run with `run_key` exists; whether it was inserted.
    async fn insert_run(&mut self, run: &ReportRun, run_key: &str) -> Result<bool, RepositoryError>;

    /// Moves the report's last delivery to `delivered_at` and, when given, its next
    /// delivery date.
    async fn advance(
        &mut self,
        report: ReportId,
        delivered_at: DateTime<Utc>,
        next_delivery_date: Option<Option<DateTime<Utc>>>,
    ) -> Result<(), RepositoryError>;

    /// Inserts the run's deliveries, pending (one existing is left as it is).
    async fn insert_deliveries(&mut self, run: ReportRunId, deliveries: &[NewDelivery]) -> Result<(), RepositoryError>;

    /// Locks the run's row, so that deliveries of one run finishing at once queue on it.
    async fn lock_run(&mut self, run: ReportRunId) -> Result<(), RepositoryError>;

    /// Ends a pending delivery as `state` with `error`.
    async fn end_delivery(
        &mut self,
        run: ReportRunId,
        target_index: u32,
        recipient: &str,
        state: DeliveryState,
        error: Option<String>,
    ) -> Result<(), RepositoryError>;

    /// The run's deliveries, by target and recipient.
    async fn deliveries(&mut self, run: ReportRunId) -> Result<Vec<DeliveryRecord>, RepositoryError>;

    /// Writes the run's delivery status and errors.
    async fn set_run_status(
        &mut self,
        run: ReportRunId,
        status: DeliveryStatus,
        errors: &[String],
    ) -> Result<(), RepositoryError>;
}

/// The report jobs' writes (a seam their tests mock; [`RunTransactions`] is the
/// implementation).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait RunWrites: Send + Sync + 'static {
    /// In one transaction: the run (unless its key exists or the report's anchor moved),
    /// the report's advance, the deliveries with their jobs, and the end of the job holding
    /// `lease`. Returns whether the run was stored.
    async fn store_run(&self, lease: &Lease, run: &NewRun) -> Result<bool, RepositoryError>;

    /// In one transaction: the delivery's end (`Sent`, or `Failed` with its line), the
    /// run's status and errors recomputed, and the end (`job_end`) of the job holding
    /// `lease`. Returns whether the lease still held the job (the delivery's end is kept
    /// either way: it is true, and the job's new holder then finds it done).
    async fn finish_delivery(&self, lease: &Lease, ended: EndedDelivery, end: &JobEnd)
    -> Result<bool, RepositoryError>;
}

/// The report jobs' writes on the unit of work.
pub struct RunTransactions {
    unit_of_work: Arc<dyn UnitOfWork>,
}

impl RunTransactions {
    pub fn new(unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self { unit_of_work }
    }
}

#[async_trait]
impl RunWrites for RunTransactions {
    async fn store_run(&self, lease: &Lease, new: &NewRun) -> Result<bool, RepositoryError> {
        let run = &new.run;
        let mut tx = self.unit_of_work.begin().await?;
        let locked = tx.reports().lock_report(run.report).await?;
        let still_due = match (locked, new.expected_anchor) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(report), Some(expected)) => report.anchor() == expected,
        };
        let stored = still_due && tx.reports().insert_run(run, &new.run_key).await?;
        if stored {
            if let (Some((delivered_at, next)), Some(report)) = (new.advance, locked) {
                let next = (report.frequency == Frequency::Scheduled).then_some(next);
                tx.reports().advance(run.report, delivered_at, next).await?;
            }
            let deliveries: Vec<NewDelivery> = new.deliveries.iter().map(|(delivery, _)| delivery.clone()).collect();
            tx.reports().insert_deliveries(run.id, &deliveries).await?;
            let jobs: Vec<_> = new.deliveries.iter().map(|(_, job)| job.clone()).collect();
            if !jobs.is_empty() {
                tx.jobs().insert(&jobs).await?;
            }
        }
        if !tx.jobs().end(lease, Some(JobEnd::Complete)).await? {
            // The lease lapsed and another worker holds the job: it will do this again.
            return Ok(false);
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn finish_delivery(
        &self,
        lease: &Lease,
        ended: EndedDelivery,
        end: &JobEnd,
    ) -> Result<bool, RepositoryError> {
        let EndedDelivery { run, record: DeliveryRecord { target_index, recipient, state, error } } = ended;
        let mut tx = self.unit_of_work.begin().await?;
        tx.reports().lock_run(run).await?;
        tx.reports().end_delivery(run, target_index, &recipient, state, error).await?;
        let records = tx.reports().deliveries(run).await?;
        let (status, errors) = run_status(&records);
        tx.reports().set_run_status(run, status, &errors).await?;
        let ended = tx.jobs().end(lease, Some(end.clone())).await?;
        tx.commit().await?;
        Ok(ended)
    }
}

#[cfg(test)]
#[path = "run_writes_tests.rs"]
mod tests;
