//! The two report jobs' payloads and how they are made: a run per report and period (or
//! manual minute), a delivery per target and e-mail address.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::delivery::MAX_DELIVERY_ATTEMPTS;
use super::delivery::{DeliveryRecord, DeliveryState, EndedDelivery};
use super::model::{DeliveryTarget, Frequency, Report, ReportRun, Trigger};
use super::ports::NewDelivery;
use super::schedule::{self, Recurrence};
use crate::jobs::{JobKind, NewJob};
use crate::{ProjectId, ReportRunId};

/// Attempts of a run-generation job.
const RUN_ATTEMPTS: u32 = 3;
/// The purpose a webhook secret is sealed for.
pub(super) const SECRET_PURPOSE: &str = "report_webhook_secret";

/// A run job's payload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct RunPayload {
    pub(super) report: uuid::Uuid,
    /// The job's unique key, which the run keeps (one run per key).
    pub(super) key: String,
    pub(super) trigger: Trigger,
    /// See `NewRun::expected_anchor` (absent for manual runs).
    #[serde(default)]
    pub(super) anchor: Option<Option<DateTime<Utc>>>,
    /// Alerts: what the scheduler saw.
    #[serde(default)]
    pub(super) observed_pass_rate: Option<f64>,
}

/// A delivery job's payload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct DeliveryPayload {
    pub(super) run: uuid::Uuid,
    pub(super) target_index: u32,
    pub(super) recipient: String,
}

impl DeliveryPayload {
    /// This delivery ended as `state` (with its line when failed).
    pub(super) fn ended(&self, state: DeliveryState, error: Option<String>) -> EndedDelivery {
        let record =
            DeliveryRecord { target_index: self.target_index, recipient: self.recipient.clone(), state, error };
        EndedDelivery { run: ReportRunId(self.run), record }
    }
}

pub(super) fn run_job(project: ProjectId, payload: &RunPayload) -> NewJob {
    NewJob::new(
        project,
        JobKind::ReportRun,
        Some(payload.key.clone()),
        serde_json::to_value(payload).unwrap_or(Value::Null),
        RUN_ATTEMPTS,
    )
}

/// One delivery per target, one per address for e-mail, each with its job.
pub(super) fn deliveries_of(report: &Report, run: &ReportRun) -> Vec<(NewDelivery, NewJob)> {
    let mut deliveries = Vec::new();
    for (index, target) in report.delivery_targets.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let recipients = match target {
            DeliveryTarget::Email { addresses } => addresses.clone(),
            _ => vec![String::new()],
        };
        for recipient in recipients {
            let payload = DeliveryPayload { run: run.id.0, target_index: index, recipient: recipient.clone() };
            let job = NewJob::new(
                run.project,
                JobKind::ReportDelivery,
                Some(format!("{}:{index}:{recipient}", run.id.0)),
                serde_json::to_value(&payload).unwrap_or(Value::Null),
                MAX_DELIVERY_ATTEMPTS,
            );
            deliveries.push((NewDelivery { target_index: index, recipient, target: target.clone() }, job));
        }
    }
    deliveries
}

pub(super) fn recurrence_of(report: &Report) -> Option<Recurrence> {
    (report.frequency == Frequency::Scheduled).then(|| schedule::parse_rule(&report.rrule).ok()).flatten()
}

/// The value an automatic run is planned on (see `NewRun::expected_anchor`).
pub(super) fn anchor_of(report: &Report) -> Option<DateTime<Utc>> {
    match report.frequency {
        Frequency::Scheduled => report.next_delivery_date,
        Frequency::EveryN | Frequency::Alert => report.last_delivered_at,
    }
}
