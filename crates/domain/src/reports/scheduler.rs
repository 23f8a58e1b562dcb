//! The scheduler: on every replica's tick, which reports are due and the run job each
//! gets (the run keys make every replica's tick enqueue the same jobs).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::model::{Frequency, Trigger};
use super::ports::{DueCandidate, ReportRunStore};
use super::run_jobs::{RunPayload, anchor_of, run_job};
use super::schedule;
use crate::jobs::{JobQueue, NewJob};

/// Finds due reports and enqueues their runs.
pub struct ReportScheduler {
    pub(super) runs: Arc<dyn ReportRunStore>,
    pub(super) jobs: Arc<dyn JobQueue>,
}

impl ReportScheduler {
    /// One scheduler tick: enqueues a run for every report due at `now` (the run keys
    /// make every replica's tick enqueue the same jobs). Returns how many were new.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<u64, crate::RepositoryError> {
        let candidates = self.runs.due_candidates(now).await?;
        let jobs = due_jobs(&candidates, now);
        if jobs.is_empty() {
            return Ok(0);
        }
        self.jobs.enqueue(&jobs).await
    }
}

/// The run jobs of the candidates whose gates let them run at `now` (one scheduler tick
/// between reading the candidates and enqueueing).
pub fn due_jobs(candidates: &[DueCandidate], now: DateTime<Utc>) -> Vec<NewJob> {
    candidates.iter().filter_map(|candidate| due_job(candidate, now)).collect()
}

/// The job a due candidate gets, if its gates let it run now.
fn due_job(candidate: &DueCandidate, now: DateTime<Utc>) -> Option<NewJob> {
    let report = &candidate.report;
    if !report.enabled || report.deleted {
        return None;
    }
    let capped = !schedule::under_daily_cap(candidate.automatic_runs_last_day, report.daily_run_cap);
    let cooling = !schedule::cooldown_over(report.last_delivered_at, report.cooldown_minutes, now);
    let (trigger, observed) = match report.frequency {
        Frequency::Scheduled => {
            let due = report.next_delivery_date.is_some_and(|at| at <= now);
            (due && !capped).then_some((Trigger::Scheduled, None))?
        }
        Frequency::EveryN => {
            let due = candidate.new_results >= u64::from(report.trigger_threshold);
            (due && !capped && !cooling).then_some((Trigger::EveryN, None))?
        }
        Frequency::Alert => {
            let condition = report.alert_condition?;
            let fires = schedule::alert_fires(&condition, &candidate.window);
            (fires && !capped && !cooling).then_some((Trigger::Alert, Some(candidate.window.pass_rate())))?
        }
    };
    let anchor = anchor_of(report);
    let key = schedule::run_key(report.id.0, trigger, anchor);
    let payload = RunPayload { report: report.id.0, key, trigger, anchor: Some(anchor), observed_pass_rate: observed };
    Some(run_job(report.project, &payload))
}
