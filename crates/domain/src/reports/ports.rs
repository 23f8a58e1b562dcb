//! The ports reports need: the reports themselves, their runs and deliveries (with the
//! job ends, in one transaction each), the event reads of a period, sending, and signing
//! links.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::content::SampledRun;
use super::delivery::{DeliveryRecord, ResolvedTarget, SendFailure};
use super::model::{DeliveryTarget, Period, Report, ReportRun, ResultCounts, TrendPoint};
use super::render::RenderedRun;
use super::render::chart::Bucket;
use crate::jobs::NewJob;
use crate::{EvaluationId, Page, PageRequest, ProjectId, ReportId, ReportRunId, RepositoryError, UserId};

/// Stored reports.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ReportRepository: Send + Sync + 'static {
    /// Stores a new report; `created_by` is read back as the user's summary.
    async fn insert(&self, report: &Report, created_by: UserId) -> Result<(), RepositoryError>;
    /// The report, deleted ones included (PATCH can restore them).
    async fn find(&self, project: ProjectId, id: ReportId) -> Result<Option<Report>, RepositoryError>;
    /// Reports not deleted, newest first, optionally of one evaluation.
    async fn list(
        &self,
        project: ProjectId,
        evaluation: Option<EvaluationId>,
        page: PageRequest,
    ) -> Result<Page<Report>, RepositoryError>;
    /// Writes every field of `report`; false when it is gone.
    async fn save(&self, report: &Report) -> Result<bool, RepositoryError>;
}

/// A report the scheduler looks at, with its automatic runs of the last 24 hours.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleCandidate {
    pub report: Report,
    /// Automatic runs in the last 24 hours (the daily cap).
    pub automatic_runs_last_day: u64,
}

/// An every_n report's question: how many results came after its last delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewResults {
    pub project: ProjectId,
    pub evaluation: EvaluationId,
    pub after: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Counting may stop here (the threshold).
    pub up_to: u32,
}

/// One evaluation's results in one period (an alert's window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvaluationPeriod {
    pub project: ProjectId,
    pub evaluation: EvaluationId,
    pub period: Period,
}

/// A generated run to store, with what an automatic run moves on its report.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run: ReportRun,
    /// At most one run per key (report × period).
    pub run_key: String,
    /// Automatic runs: the report's anchor the run was planned on (scheduled: its
    /// `next_delivery_date`; every_n and alert: its `last_delivered_at`); the run is
    /// stored only while the report still has it.
    pub expected_anchor: Option<Option<DateTime<Utc>>>,
    /// Automatic runs: the new `last_delivered_at` and `next_delivery_date`.
    pub advance: Option<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// One per target (per address for e-mail), each with its delivery job.
    pub deliveries: Vec<(NewDelivery, NewJob)>,
}

/// One delivery of a new run.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub target_index: u32,
    pub recipient: String,
    /// A copy of the target as it was when the run was made.
    pub target: DeliveryTarget,
}

/// A delivery as its job reads it.
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    pub record: DeliveryRecord,
    pub target: DeliveryTarget,
}

/// Runs and deliveries.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ReportRunStore: Send + Sync + 'static {
    /// The reports the scheduler must look at, at `now`: enabled and not deleted, every
    /// every_n and alert report, and the scheduled ones whose `next_delivery_date` has
    /// come (a later one cannot be due); earliest date first. Which are due is the
    /// scheduler's decision.
    async fn schedule_candidates(&self, now: DateTime<Utc>) -> Result<Vec<ScheduleCandidate>, RepositoryError>;

    /// A report's runs, newest first.
    async fn runs(
        &self,
        project: ProjectId,
        report: ReportId,
        page: PageRequest,
    ) -> Result<Page<ReportRun>, RepositoryError>;

    /// A run by id alone (the signed page has no project).
    async fn run(&self, id: ReportRunId) -> Result<Option<ReportRun>, RepositoryError>;

    async fn delivery(
        &self,
        run: ReportRunId,
        target_index: u32,
        recipient: &str,
    ) -> Result<Option<StoredDelivery>, RepositoryError>;
}

/// The evaluation results a report reads.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ReportEvents: Send + Sync + 'static {
    /// Pass / fail / n/a results of the evaluation in `period`.
    async fn counts(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        period: Period,
    ) -> Result<ResultCounts, RepositoryError>;

    /// For each query, in order: its results after `after` and up to `until` included,
    /// counted up to `up_to` (the count may stop there).
    async fn new_results(&self, queries: &[NewResults]) -> Result<Vec<u64>, RepositoryError>;

    /// For each, in order: pass / fail / n/a of the evaluation in the period.
    async fn counts_of_periods(&self, periods: &[EvaluationPeriod]) -> Result<Vec<ResultCounts>, RepositoryError>;

    /// Pass / fail per bucket over `span`.
    async fn trend(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        span: Period,
        bucket: Bucket,
    ) -> Result<Vec<TrendPoint>, RepositoryError>;

    /// Up to `limit` runs of `period`, newest first.
    async fn sample(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        period: Period,
        limit: u32,
    ) -> Result<Vec<SampledRun>, RepositoryError>;

    /// The timestamp of the `n`-th newest result before `before` (the oldest one's when
    /// there are fewer; `None` when there are none).
    async fn nth_newest(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        n: u32,
        before: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RepositoryError>;
}

/// Sends one rendered run to one target, within the target timeout.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ReportDelivery: Send + Sync + 'static {
    /// `delivery_id` is stable across retries (the webhook's `webhook-id`).
    async fn send(&self, target: &ResolvedTarget, run: &RenderedRun, delivery_id: &str) -> Result<(), SendFailure>;
}

/// Signs and checks the run page's links.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait LinkSigner: Send + Sync + 'static {
    /// Hex HMAC of `message` under the current key.
    fn sign(&self, message: &str) -> String;
    /// Whether `signature` is `message`'s under any configured key.
    fn verify(&self, message: &str, signature: &str) -> bool;
}
