//! The scheduler: on every replica's tick, which reports are due and the run job each
//! gets (the run keys make every replica's tick enqueue the same jobs). The decision is
//! made here, once: the store lists the reports to look at, the report-events port
//! counts what the gates ask (batched, once per distinct question).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::model::{Frequency, Report, ResultCounts, Trigger};
use super::ports::{EvaluationPeriod, NewResults, ReportEvents, ReportRunStore};
use super::run_jobs::{RunPayload, anchor_of, run_job};
use super::schedule;
use crate::RepositoryError;
use crate::jobs::{JobQueue, NewJob};

/// At most this many runs are enqueued per tick; the rest are due at the next one.
pub const RUNS_PER_TICK: usize = 1_000;

/// Finds due reports and enqueues their runs.
pub struct ReportScheduler {
    runs: Arc<dyn ReportRunStore>,
    events: Arc<dyn ReportEvents>,
    jobs: Arc<dyn JobQueue>,
}

impl ReportScheduler {
    pub fn new(runs: Arc<dyn ReportRunStore>, events: Arc<dyn ReportEvents>, jobs: Arc<dyn JobQueue>) -> Self {
        Self { runs, events, jobs }
    }

    /// One scheduler tick: enqueues a run for every report due at `now` (at most
    /// [`RUNS_PER_TICK`]). Returns how many were new.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let jobs = self.due_jobs(now).await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        self.jobs.enqueue(&jobs).await
    }

    /// The run jobs of the reports due at `now`, earliest date first: the gates that need
    /// no counting first, then one batched count per kind of question the open ones ask.
    pub async fn due_jobs(&self, now: DateTime<Utc>) -> Result<Vec<NewJob>, RepositoryError> {
        let looked_at = self.runs.schedule_candidates(now).await?;
        let open: Vec<&Report> = looked_at
            .iter()
            .filter(|c| gates_open(&c.report, c.automatic_runs_last_day, now))
            .map(|c| &c.report)
            .collect();
        let new_results: Vec<Option<NewResults>> = open.iter().map(|r| new_results_question(r, now)).collect();
        let windows: Vec<Option<EvaluationPeriod>> = open.iter().map(|r| window_question(r, now)).collect();
        let new_asked = Distinct::of(&new_results);
        let new_counts =
            if new_asked.is_empty() { Vec::new() } else { self.events.new_results(&new_asked.questions).await? };
        let windows_asked = Distinct::of(&windows);
        let window_counts = if windows_asked.is_empty() {
            Vec::new()
        } else {
            self.events.counts_of_periods(&windows_asked.questions).await?
        };
        let new_counts = new_asked.answer_each(&new_results, &new_counts)?;
        let window_counts = windows_asked.answer_each(&windows, &window_counts)?;
        Ok(open
            .into_iter()
            .zip(new_counts.into_iter().zip(window_counts))
            .filter_map(|(report, (new_results, window))| due_job(report, new_results, window))
            .take(RUNS_PER_TICK)
            .collect())
    }
}

/// The gates that need no counting: enabled, under the daily cap, and (for every_n and
/// alerts) outside the cooldown, or (scheduled) at its date.
fn gates_open(report: &Report, automatic_runs_last_day: u64, now: DateTime<Utc>) -> bool {
    let timely = match report.frequency {
        Frequency::Scheduled => report.next_delivery_date.is_some_and(|at| at <= now),
        Frequency::EveryN | Frequency::Alert => {
            schedule::cooldown_over(report.last_delivered_at, report.cooldown_minutes, now)
        }
    };
    report.enabled
        && !report.deleted
        && timely
        && schedule::under_daily_cap(automatic_runs_last_day, report.daily_run_cap)
}

/// every_n: the results since the last delivery (or the start), counted up to the
/// threshold.
fn new_results_question(report: &Report, now: DateTime<Utc>) -> Option<NewResults> {
    (report.frequency == Frequency::EveryN).then(|| NewResults {
        project: report.project,
        evaluation: report.evaluation,
        after: report.last_delivered_at.or(report.starts_at).unwrap_or(report.created_at),
        until: now,
        up_to: report.trigger_threshold,
    })
}

/// alert: the window ending now.
fn window_question(report: &Report, now: DateTime<Utc>) -> Option<EvaluationPeriod> {
    let condition = report.alert_condition.filter(|_| report.frequency == Frequency::Alert)?;
    Some(EvaluationPeriod {
        project: report.project,
        evaluation: report.evaluation,
        period: schedule::alert_window(&condition, now),
    })
}

/// The distinct questions among the candidates' (reports on the same evaluation and
/// window share one count).
struct Distinct<Q> {
    questions: Vec<Q>,
    position: HashMap<Q, usize>,
}

impl<Q: Copy + Eq + Hash> Distinct<Q> {
    fn is_empty(&self) -> bool {
        self.questions.is_empty()
    }

    fn of(asked: &[Option<Q>]) -> Self {
        let mut distinct = Self { questions: Vec::new(), position: HashMap::new() };
        for question in asked.iter().flatten() {
            distinct.position.entry(*question).or_insert_with(|| {
                distinct.questions.push(*question);
                distinct.questions.len() - 1
            });
        }
        distinct
    }

    /// Each of `asked` with the answer to its question, in order.
    fn answer_each<A: Copy>(&self, asked: &[Option<Q>], answers: &[A]) -> Result<Vec<Option<A>>, RepositoryError> {
        if answers.len() != self.questions.len() {
            let wrong = anyhow::anyhow!("{} answers to {} questions", answers.len(), self.questions.len());
            return Err(RepositoryError::new(wrong));
        }
        Ok(asked.iter().map(|question| question.map(|q| answers[self.position[&q]])).collect())
    }
}

/// The job of a report whose gates are open, if its trigger fires: `new_results` and
/// `window` are its counts (every_n and alert).
fn due_job(report: &Report, new_results: Option<u64>, window: Option<ResultCounts>) -> Option<NewJob> {
    let (trigger, observed) = match report.frequency {
        Frequency::Scheduled => (Trigger::Scheduled, None),
        Frequency::EveryN => {
            let due = new_results? >= u64::from(report.trigger_threshold);
            due.then_some((Trigger::EveryN, None))?
        }
        Frequency::Alert => {
            let window = window?;
            let fires = schedule::alert_fires(&report.alert_condition?, &window);
            fires.then_some((Trigger::Alert, Some(window.pass_rate())))?
        }
    };
    let anchor = anchor_of(report);
    let key = schedule::run_key(report.id.0, trigger, anchor);
    let payload = RunPayload { report: report.id.0, key, trigger, anchor: Some(anchor), observed_pass_rate: observed };
    Some(run_job(report.project, &payload))
}
