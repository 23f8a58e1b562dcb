//! Which judge jobs a stored batch brings: for every `$ai_generation`, one job listing
//! each enabled evaluation whose conditions match (rollout decided by the event uuid).
//! Pure: the caller stores the jobs in the batch's transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::attached::attach;
use super::{HourlyCap, JudgePayload, PlannedJob, hour_of};
use crate::evaluation::{Evaluation, EvaluationTarget, EvaluationType};
use crate::ingestion::{AiEventName, IncomingEvent};
use crate::jobs::{JobKind, NewJob};

/// Tries a judge job gets (429/5xx/timeouts are retried with backoff up to this).
pub const JUDGE_MAX_ATTEMPTS: u32 = 3;

/// The judge job of `payload` for `project`.
pub fn judge_job(project: crate::ProjectId, payload: &JudgePayload) -> NewJob {
    job_of(JobKind::Judge, project, payload)
}

fn job_of(kind: JobKind, project: crate::ProjectId, payload: &JudgePayload) -> NewJob {
    NewJob::new(
        project,
        kind,
        payload.unique_key(project),
        serde_json::to_value(payload).unwrap_or(Value::Null),
        JUDGE_MAX_ATTEMPTS,
    )
}

/// The most generations one `judge_code` job holds.
pub const MAX_CODE_GENERATIONS_PER_JOB: usize = 256;

/// A stored batch's jobs with its `judge_code` jobs (one per generation when planned, so
/// that hourly caps apply per generation) gathered into as few as hold them, at most
/// [`MAX_CODE_GENERATIONS_PER_JOB`] generations each: a job is claimed, leased and ended
/// once for all of them (the payload [`super::CodeJudgePayload`] reads), and carries them
/// as `events` stores them (its attachment: [`super::attached_generations`] reads it; a
/// generation not among `events` is left out and read back). Each gathered job is
/// keyed by its first generation, which is stored once, ever.
pub fn gather_code_jobs(project: crate::ProjectId, jobs: Vec<NewJob>, events: &[IncomingEvent]) -> Vec<NewJob> {
    let (code, mut gathered): (Vec<NewJob>, Vec<NewJob>) =
        jobs.into_iter().partition(|job| job.kind == JobKind::JudgeCode);
    if code.is_empty() {
        return gathered;
    }
    // A uuid sent twice in one batch is stored as its first event.
    let mut stored: HashMap<Uuid, &IncomingEvent> = HashMap::with_capacity(events.len());
    for event in events {
        stored.entry(event.uuid).or_insert(event);
    }
    let mut code = code.into_iter().peekable();
    while let Some(first) = code.peek() {
        // The planned job's key names its generation: `generation:{project}:{uuid}`.
        let key = first.unique_key.as_ref().map(|key| format!("code-batch:{key}"));
        // Each payload is a JudgePayload already: moved into the list, not parsed again.
        let generations: Vec<Value> = code.by_ref().take(MAX_CODE_GENERATIONS_PER_JOB).map(|job| job.payload).collect();
        let attachment = attach(generations.iter().filter_map(|payload| {
            let uuid = payload.get("generation")?.as_str()?.parse::<Uuid>().ok()?;
            stored.get(&uuid).copied()
        }));
        let payload = serde_json::json!({ "generations": generations });
        let job = NewJob::new(project, JobKind::JudgeCode, key, payload, JUDGE_MAX_ATTEMPTS);
        gathered.push(match attachment {
            Some(attachment) => job.with_attachment(attachment),
            None => job,
        });
    }
    gathered
}

/// The judge jobs for `events` under `evaluations` (the project's enabled ones; those of
/// traces and sessions are planned by `plan_target_jobs`), in event order: per generation
/// that any of them matches, one `judge` job for its LLM judges and one `judge_code` job
/// for its code evaluators (gathered per batch once the caps are applied:
/// [`gather_code_jobs`]); `now` decides the cap's hour.
pub fn plan_jobs(evaluations: &[Evaluation], events: &[IncomingEvent], now: DateTime<Utc>) -> Vec<PlannedJob> {
    let Some(project) = evaluations.first().map(|e| e.project) else {
        return Vec::new();
    };
    let hour = hour_of(now);
    let mut planned = Vec::new();
    for event in events.iter().filter(|e| e.event.as_str() == AiEventName::GENERATION) {
        let (code, llm): (Vec<&Evaluation>, Vec<&Evaluation>) = evaluations
            .iter()
            .filter(|e| e.target == EvaluationTarget::Generation && e.applies_to(&event.properties, event.uuid))
            .partition(|e| e.evaluation_type == EvaluationType::Hog);
        for (kind, matching) in [(JobKind::Judge, llm), (JobKind::JudgeCode, code)] {
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
            planned.push(PlannedJob { generation: event.uuid, job: job_of(kind, project, &payload), caps });
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::EvaluationId;
    use crate::evaluation::test_support::evaluation;

    #[test]
    fn a_generation_brings_one_job_for_its_llm_judges_and_one_for_its_code_evaluators() {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap();
        let judge = |n: u128, kind: EvaluationType| Evaluation {
            id: EvaluationId(Uuid::from_u128(n)),
            evaluation_type: kind,
            ..evaluation()
        };
        let evaluations =
            [judge(1, EvaluationType::LlmJudge), judge(2, EvaluationType::Hog), judge(3, EvaluationType::Hog)];
        let event = |name: &str| IncomingEvent {
            uuid: Uuid::now_v7(),
            event: AiEventName::parse(name).unwrap(),
            distinct_id: "user".into(),
            timestamp: at,
            properties: json!({"env": "prod"}).as_object().unwrap().clone(),
        };
        let planned = plan_jobs(&evaluations, &[event("$ai_generation"), event("$ai_span")], at);
        let jobs: Vec<(JobKind, Vec<EvaluationId>)> = planned
            .iter()
            .map(|p| (p.job.kind, serde_json::from_value::<JudgePayload>(p.job.payload.clone()).unwrap().evaluations))
            .collect();
        assert_eq!(
            jobs,
            vec![
                (JobKind::Judge, vec![evaluations[0].id]),
                (JobKind::JudgeCode, vec![evaluations[1].id, evaluations[2].id]),
            ]
        );
        assert_ne!(planned[0].job.id, planned[1].job.id, "one job of each kind per generation");

        let code_only = plan_jobs(&evaluations[1..], &[event("$ai_generation")], at);
        assert_eq!(code_only.len(), 1);
        assert_eq!(code_only[0].job.kind, JobKind::JudgeCode);
    }
}
