//! The scheduler: on every replica's tick, which reports are due and the run job each
//! gets (the run keys make every replica's tick enqueue the same jobs).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::model::{Frequency, ResultCounts, Trigger};
use super::ports::{DueCandidate, NewResultsQuery, ReportEvents, ReportRunStore, SchedulableReport, WindowQuery};
use super::run_jobs::{RunPayload, anchor_of, run_job};
use super::schedule;
use crate::RepositoryError;
use crate::jobs::{JobQueue, NewJob};

/// The most run jobs one tick enqueues; the rest are due at the next tick.
pub const MAX_DUE_PER_TICK: usize = 1_000;

/// Finds due reports and enqueues their runs.
pub struct ReportScheduler {
    pub(super) runs: Arc<dyn ReportRunStore>,
    pub(super) events: Arc<dyn ReportEvents>,
    pub(super) jobs: Arc<dyn JobQueue>,
}

impl ReportScheduler {
    pub fn new(runs: Arc<dyn ReportRunStore>, events: Arc<dyn ReportEvents>, jobs: Arc<dyn JobQueue>) -> Self {
        Self { runs, events, jobs }
    }

    /// One scheduler tick: enqueues a run for every report due at `now` (the run keys
    /// make every replica's tick enqueue the same jobs). Returns how many were new.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let candidates = self.candidates(now).await?;
        let mut jobs = due_jobs(&candidates, now);
        jobs.truncate(MAX_DUE_PER_TICK);
        if jobs.is_empty() {
            return Ok(0);
        }
        self.jobs.enqueue(&jobs).await
    }

    /// The reports whose gates may let them run at `now`, each with the counts its
    /// frequency needs, read in one batch per kind of count.
    pub async fn candidates(&self, now: DateTime<Utc>) -> Result<Vec<DueCandidate>, RepositoryError> {
        let reports = self.runs.schedulable(now).await?;
        let needs: Vec<(SchedulableReport, Need)> =
            reports.into_iter().filter_map(|r| need(&r, now).map(|need| (r, need))).collect();
        let new_results_queries: Vec<NewResultsQuery> = needs
            .iter()
            .filter_map(|(_, need)| match need {
                Need::NewResults(query) => Some(*query),
                _ => None,
            })
            .collect();
        let window_queries: Vec<WindowQuery> = needs
            .iter()
            .filter_map(|(_, need)| match need {
                Need::Window(query) => Some(*query),
                _ => None,
            })
            .collect();
        let new_results = match new_results_queries.is_empty() {
            true => Vec::new(),
            false => self.events.new_results(&new_results_queries).await?,
        };
        let windows = match window_queries.is_empty() {
            true => Vec::new(),
            false => self.events.window_counts(&window_queries).await?,
        };
        answered(new_results.len(), new_results_queries.len())?;
        answered(windows.len(), window_queries.len())?;
        let (mut new_results, mut windows) = (new_results.into_iter(), windows.into_iter());
        let mut candidates = Vec::with_capacity(needs.len());
        for (schedulable, need) in needs {
            let mut candidate = DueCandidate {
                report: schedulable.report,
                automatic_runs_last_day: schedulable.automatic_runs_last_day,
                new_results: 0,
                window: ResultCounts::default(),
            };
            match need {
                Need::Nothing => {}
                Need::NewResults(_) => candidate.new_results = new_results.next().unwrap_or(0),
                Need::Window(_) => candidate.window = windows.next().unwrap_or_default(),
            }
            candidates.push(candidate);
        }
        Ok(candidates)
    }
}

/// One count per query, or the store broke its promise.
fn answered(answers: usize, queries: usize) -> Result<(), RepositoryError> {
    if answers == queries {
        return Ok(());
    }
    Err(RepositoryError::new(anyhow::anyhow!("{answers} counts answered for {queries} queries")))
}

/// What a report's due decision still needs to read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// Nothing: its time alone decides.
    Nothing,
    /// every_n: the results since its anchor, up to its threshold.
    NewResults(NewResultsQuery),
    /// alert: the counts of its window.
    Window(WindowQuery),
}

/// Whether the report's gates could let it run at `now` and what it then needs; `None`
/// when it cannot run whatever the counts (disabled, capped, cooling, not yet scheduled).
fn need(schedulable: &SchedulableReport, now: DateTime<Utc>) -> Option<Need> {
    let report = &schedulable.report;
    if !report.enabled || report.deleted {
        return None;
    }
    if !schedule::under_daily_cap(schedulable.automatic_runs_last_day, report.daily_run_cap) {
        return None;
    }
    let cooling = !schedule::cooldown_over(report.last_delivered_at, report.cooldown_minutes, now);
    match report.frequency {
        Frequency::Scheduled => report.next_delivery_date.is_some_and(|at| at <= now).then_some(Need::Nothing),
        Frequency::EveryN if cooling => None,
        Frequency::EveryN => Some(Need::NewResults(NewResultsQuery {
            project: report.project,
            evaluation: report.evaluation,
            after: report.last_delivered_at.or(report.starts_at).unwrap_or(report.created_at),
            until: now,
            limit: report.trigger_threshold,
        })),
        Frequency::Alert if cooling => None,
        Frequency::Alert => report.alert_condition.map(|condition| {
            Need::Window(WindowQuery {
                project: report.project,
                evaluation: report.evaluation,
                period: schedule::alert_window(&condition, now),
            })
        }),
    }
}

/// The run jobs of the candidates whose gates let them run at `now` (one scheduler tick
/// between reading the candidates and enqueueing), the scheduled ones by their date first.
pub fn due_jobs(candidates: &[DueCandidate], now: DateTime<Utc>) -> Vec<NewJob> {
    let mut due: Vec<&DueCandidate> = candidates.iter().collect();
    due.sort_by_key(|c| (c.report.next_delivery_date.is_none(), c.report.next_delivery_date, c.report.id.0));
    due.into_iter().filter_map(|candidate| due_job(candidate, now)).collect()
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
