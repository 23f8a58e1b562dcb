//! Housekeeping (spec section 10): what nothing else deletes — expired summary claims and
//! cache entries, old rate-limit hits, finished jobs past a week, and with event retention
//! the event partitions wholly past it (and their id claims) — swept in bounded batches
//! by a job on the shared job table. Every replica enqueues the sweep of the
//! current period under one unique key, so one of them runs it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jobs::{ClaimedJob, JobHandler, JobKind, JobOutcome, NewJob};
use crate::{ProjectId, RepositoryError};

/// Rows one step deletes at most, so a sweep never holds long locks.
pub const BATCH: u32 = 5_000;
/// Finished jobs are kept this long (for `last_error` forensics).
pub const FINISHED_JOBS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// The project id of system jobs (no project owns them).
pub const SYSTEM_PROJECT: ProjectId = ProjectId(0);

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub summary_flights: u64,
    pub summary_cache: u64,
    pub rate_limit_hits: u64,
    pub finished_jobs: u64,
    /// Monthly event partitions dropped (wholly older than the retention window).
    pub event_partitions: u64,
    /// Event id claims deleted with them.
    pub event_ids: u64,
}

impl SweepReport {
    /// Whether a step filled its batch (more may be left: the sweep goes on).
    pub fn more_left(&self) -> bool {
        [self.summary_flights, self.summary_cache, self.rate_limit_hits, self.finished_jobs, self.event_ids]
            .iter()
            .any(|n| *n >= u64::from(BATCH))
    }
}

/// Deletes what has expired, each step at most `batch` rows. Errors are `RepositoryError`.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Housekeeping: Send + Sync + 'static {
    /// `event_cutoff`: events before it are past retention (`None`: keep all events).
    async fn sweep(
        &self,
        now: DateTime<Utc>,
        batch: u32,
        event_cutoff: Option<DateTime<Utc>>,
    ) -> Result<SweepReport, RepositoryError>;
}

/// The sweep job of the period holding `now` (`every` long): one per period, whichever
/// replica enqueues it first.
pub fn sweep_job(now: DateTime<Utc>, every: Duration) -> NewJob {
    let period = every.as_secs().max(1) as i64;
    let slot = now.timestamp().div_euclid(period);
    NewJob::new(SYSTEM_PROJECT, JobKind::Housekeeping, Some(format!("sweep:{period}:{slot}")), serde_json::json!({}), 3)
}

/// Runs sweeps as jobs: a full batch means more is left, so the sweep goes on (bounded
/// steps, each its own statement) until a step comes back short.
pub struct HousekeepingService {
    store: std::sync::Arc<dyn Housekeeping>,
    retention: crate::ingestion::EventRetention,
}

impl HousekeepingService {
    pub fn new(store: std::sync::Arc<dyn Housekeeping>) -> Self {
        Self { store, retention: crate::ingestion::EventRetention::forever() }
    }

    /// Drops the event partitions wholly past `retention` too.
    pub fn with_retention(mut self, retention: crate::ingestion::EventRetention) -> Self {
        self.retention = retention;
        self
    }

    /// One sweep to the end (at most 100 batches per step).
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, RepositoryError> {
        let mut total = SweepReport::default();
        for _ in 0..100 {
            let report = self.store.sweep(now, BATCH, self.retention.cutoff(now)).await?;
            total.summary_flights += report.summary_flights;
            total.summary_cache += report.summary_cache;
            total.rate_limit_hits += report.rate_limit_hits;
            total.finished_jobs += report.finished_jobs;
            total.event_partitions += report.event_partitions;
            total.event_ids += report.event_ids;
            if !report.more_left() {
                break;
            }
        }
        Ok(total)
    }
}

#[async_trait]
impl JobHandler for HousekeepingService {
    async fn run(&self, _job: &ClaimedJob) -> JobOutcome {
        match self.sweep(Utc::now()).await {
            Ok(report) => {
                tracing::info!(
                    summary_flights = report.summary_flights,
                    summary_cache = report.summary_cache,
                    rate_limit_hits = report.rate_limit_hits,
                    finished_jobs = report.finished_jobs,
                    event_partitions = report.event_partitions,
                    event_ids = report.event_ids,
                    "housekeeping sweep"
                );
                JobOutcome::Complete
            }
            Err(error) => JobOutcome::Retry(format!("storage failure: {}", error.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;

    #[test]
    fn replicas_enqueue_one_sweep_per_period() {
        let every = Duration::from_secs(600);
        let at = |m, s| Utc.with_ymd_and_hms(2026, 3, 4, 12, m, s).unwrap();
        assert_eq!(sweep_job(at(0, 1), every).unique_key, sweep_job(at(9, 59), every).unique_key);
        assert_ne!(sweep_job(at(9, 59), every).unique_key, sweep_job(at(10, 0), every).unique_key);
        assert_eq!(sweep_job(at(0, 0), every).kind, JobKind::Housekeeping);
    }

    #[tokio::test]
    async fn a_full_batch_means_the_sweep_goes_on() {
        let mut store = MockHousekeeping::new();
        let mut calls = 0;
        store.expect_sweep().times(3).returning(move |_, batch, _| {
            calls += 1;
            let jobs = if calls < 3 { u64::from(batch) } else { 7 };
            Ok(SweepReport { finished_jobs: jobs, summary_flights: 1, ..SweepReport::default() })
        });
        let report = HousekeepingService::new(Arc::new(store)).sweep(Utc::now()).await.unwrap();
        assert_eq!(report.finished_jobs, 2 * u64::from(BATCH) + 7);
        assert_eq!(report.summary_flights, 3);
    }

    #[tokio::test]
    async fn the_retention_cutoff_reaches_the_store() {
        let now = Utc::now();
        let mut store = MockHousekeeping::new();
        store
            .expect_sweep()
            .withf(move |_, _, cutoff| *cutoff == Some(now - chrono::Duration::days(30)))
            .times(1)
            .returning(|_, _, _| Ok(SweepReport::default()));
        let service =
            HousekeepingService::new(Arc::new(store)).with_retention(crate::ingestion::EventRetention::days(30));
        service.sweep(now).await.unwrap();
    }
}
