//! Which judge jobs a stored batch brings: for every `$ai_generation`, one job listing
//! each enabled evaluation whose conditions match (rollout decided by the event uuid).
//! Pure: the caller stores the jobs in the batch's transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{HourlyCap, JudgePayload, PlannedJob, hour_of};
use crate::evaluation::{Evaluation, EvaluationTarget};
use crate::ingestion::{AiEventName, IncomingEvent};
use crate::jobs::{JobKind, NewJob};

/// Tries a judge job gets (429/5xx/timeouts are retried with backoff up to this).
pub const JUDGE_MAX_ATTEMPTS: u32 = 3;

/// The judge job of `payload` for `project`.
pub fn judge_job(project: crate::ProjectId, payload: &JudgePayload) -> NewJob {
    NewJob::new(
        project,
        JobKind::Judge,
        payload.unique_key(project),
        serde_json::to_value(payload).unwrap_or(Value::Null),
        JUDGE_MAX_ATTEMPTS,
    )
}

/// The judge jobs for `events` under `evaluations` (the project's enabled ones; those of
/// traces and sessions are planned by `plan_target_jobs`), in event order, one per
/// generation that any of them matches; `now` decides the cap's hour.
pub fn plan_jobs(evaluations: &[Evaluation], events: &[IncomingEvent], now: DateTime<Utc>) -> Vec<PlannedJob> {
    let Some(project) = evaluations.first().map(|e| e.project) else {
        return Vec::new();
    };
    let hour = hour_of(now);
    let mut planned = Vec::new();
    for event in events.iter().filter(|e| e.event.as_str() == AiEventName::GENERATION) {
        let matching: Vec<&Evaluation> = evaluations
            .iter()
            .filter(|e| e.target == EvaluationTarget::Generation && e.applies_to(&event.properties, event.uuid))
            .collect();
        if matching.is_empty() {
            continue;
        }
        let payload = JudgePayload {
            evaluations: matching.iter().map(|e| e.id).collect(),
            generation: event.uuid,
            generation_timestamp: event.timestamp,
            manual: false,
        };
        let caps = matching
            .iter()
            .filter_map(|e| e.max_runs_per_hour.map(|max| HourlyCap { evaluation: e.id, max, hour }))
            .collect();
        planned.push(PlannedJob { generation: event.uuid, job: judge_job(project, &payload), caps });
    }
    planned
}
