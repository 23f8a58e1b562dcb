//! Judgements of whole traces and sessions (spec section 4.1): the job that judges one
//! target with one evaluation, and the jobs a stored batch queues or moves forward.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::JUDGE_MAX_ATTEMPTS;
use crate::evaluation::{Evaluation, TargetKind};
use crate::ingestion::{AiEventName, IncomingEvent};
use crate::jobs::{Debounce, JobKind, NewJob};
use crate::{EvaluationId, ProjectId};

/// What a target's judge job judges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPayload {
    pub evaluation: EvaluationId,
    pub target: TargetKind,
    /// The trace or session id, or the generation's uuid.
    pub target_id: String,
    /// When the target's first event arrived (a live job) or when it was dispatched.
    pub queued_at: DateTime<Utc>,
    /// The backfill that queued it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<Uuid>,
    /// A backfill's judgement of a target judged before (`rerun_existing`): a new result.
    #[serde(default)]
    pub rerun: bool,
}

impl TargetPayload {
    pub fn kind(&self) -> TargetKind {
        self.target
    }

    /// The job judging it: one per (evaluation, target) ever for live work; one per
    /// (backfill, target) for a backfill, in the backfill's own lane.
    pub fn job(&self, project: ProjectId) -> NewJob {
        let kind = self.kind().as_str();
        let (job_kind, key) = match self.backfill {
            None => (JobKind::JudgeTarget, format!("target:{project}:{}:{kind}:{}", self.evaluation, self.target_id)),
            Some(backfill) => (JobKind::BackfillJudge, format!("backfill:{backfill}:{kind}:{}", self.target_id)),
        };
        let payload = serde_json::to_value(self).unwrap_or(Value::Null);
        NewJob::new(project, job_kind, Some(key), payload, JUDGE_MAX_ATTEMPTS)
    }

    /// The uuid of the result: the same for every automatic judgement of the target by
    /// the evaluation (live or backfilled, so neither judges what the other did), and
    /// for a generation the one its live judge job gives; a rerun's is its own.
    pub fn result_id(&self) -> Uuid {
        let seed = match (self.rerun, self.backfill, self.kind()) {
            (true, Some(backfill), kind) => format!("backfill-result:{backfill}:{}:{}", kind.as_str(), self.target_id),
            (_, _, TargetKind::Generation) => format!("judge-result:{}:{}", self.evaluation, self.target_id),
            (_, _, kind) => format!("target-result:{}:{}:{}", self.evaluation, kind.as_str(), self.target_id),
        };
        uuid_of(&seed)
    }
}

fn uuid_of(seed: &str) -> Uuid {
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The uuid a target's rollout is decided by (the same for every event of it).
pub fn rollout_id(kind: TargetKind, target_id: &str) -> Uuid {
    uuid_of(&format!("rollout:{}:{target_id}", kind.as_str()))
}

/// The target id an event belongs to for `kind` (a non-empty string or a number's text).
pub fn target_id_of(event: &IncomingEvent, kind: TargetKind) -> Option<String> {
    let property = kind.id_property()?;
    match event.properties.get(property)? {
        Value::String(id) if !id.trim().is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// A target's job as a batch brings it, with the events that bring it (only events
/// stored now count: a re-sent batch moves nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTarget {
    pub events: Vec<Uuid>,
    pub debounce: Debounce,
}

/// The trace and session jobs `events` bring under `evaluations` (the project's enabled
/// ones), arriving at `now`: for each trace or session evaluation and each target id of
/// the batch, the job is queued when a generation of the batch qualifies the target
/// (its conditions, rollout by target id), and otherwise only moved forward if queued.
pub fn plan_target_jobs(
    evaluations: &[Evaluation],
    events: &[IncomingEvent],
    now: DateTime<Utc>,
) -> Vec<PlannedTarget> {
    let mut planned = Vec::new();
    for evaluation in evaluations.iter().filter(|e| !e.deleted && e.state.enabled()) {
        let Some(settling) = evaluation.target.settling() else {
            continue;
        };
        let kind = evaluation.target.kind();
        let mut targets: BTreeMap<String, (Vec<Uuid>, bool)> = BTreeMap::new();
        for event in events.iter().filter(|e| e.event.as_str() != AiEventName::EVALUATION) {
            let Some(id) = target_id_of(event, kind) else {
                continue;
            };
            let entry = targets.entry(id.clone()).or_default();
            entry.0.push(event.uuid);
            if !entry.1 && event.event.as_str() == AiEventName::GENERATION {
                entry.1 = evaluation.conditions.matches_map(&event.properties, rollout_id(kind, &id));
            }
        }
        for (target_id, (brought_by, qualifies)) in targets {
            let (due, latest) = if qualifies {
                settling.first_due(now)
            } else {
                match settling.due_after_event(now) {
                    Some(due) => (due, due),
                    None => continue,
                }
            };
            let payload = TargetPayload {
                evaluation: evaluation.id,
                target: kind,
                target_id,
                queued_at: now,
                backfill: None,
                rerun: false,
            };
            let debounce = Debounce { job: payload.job(evaluation.project), due, latest, create: qualifies };
            planned.push(PlannedTarget { events: brought_by, debounce });
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::evaluation::{ConditionInput, Conditions, EvaluationTarget, PropertyFilterInput, Settling};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap()
    }

    fn event(name: &str, properties: Value) -> IncomingEvent {
        IncomingEvent {
            uuid: Uuid::now_v7(),
            event: AiEventName::parse(name).unwrap(),
            distinct_id: "user".into(),
            timestamp: at(),
            properties: properties.as_object().unwrap().clone(),
        }
    }

    fn trace_evaluation(settling: Settling) -> Evaluation {
        let conditions = Conditions::parse(&[ConditionInput {
            id: None,
            rollout_percentage: None,
            properties: Some(vec![PropertyFilterInput {
                key: Some("env".into()),
                operator: None,
                value: Some(json!("prod")),
            }]),
        }])
        .unwrap();
        Evaluation {
            target: EvaluationTarget::Trace(settling),
            conditions,
            ..crate::evaluation::test_support::evaluation()
        }
    }

    #[test]
    fn a_trace_is_queued_when_one_of_its_generations_matches_and_only_moved_otherwise() {
        let quiet = Settling::Inactivity { quiet_period: Duration::from_secs(300), max_age: Duration::from_secs(900) };
        let evaluation = trace_evaluation(quiet);
        let events = [
            event("$ai_span", json!({"$ai_trace_id": "t1"})),
            event("$ai_generation", json!({"$ai_trace_id": "t1", "env": "prod"})),
            event("$ai_generation", json!({"$ai_trace_id": "t2", "env": "dev"})),
            event("$ai_generation", json!({"env": "prod"})),
        ];
        let planned = plan_target_jobs(std::slice::from_ref(&evaluation), &events, at());
        assert_eq!(planned.len(), 2);
        let (t1, t2) = (&planned[0], &planned[1]);
        assert_eq!(t1.events, vec![events[0].uuid, events[1].uuid]);
        assert!(t1.debounce.create);
        assert_eq!(t1.debounce.due, at() + Duration::from_secs(300));
        assert_eq!(t1.debounce.latest, at() + Duration::from_secs(900));
        assert_eq!(t1.debounce.job.kind, JobKind::JudgeTarget);
        assert!(!t2.debounce.create, "t2 has no matching generation: only moved if queued");
        assert_eq!(t2.debounce.due, at() + Duration::from_secs(300));
    }

    #[test]
    fn a_fixed_window_is_not_moved_by_later_events() {
        let evaluation = trace_evaluation(Settling::FixedWindow { window: Duration::from_secs(60) });
        let span = event("$ai_span", json!({"$ai_trace_id": "t1"}));
        assert!(plan_target_jobs(std::slice::from_ref(&evaluation), &[span], at()).is_empty());
    }

    #[test]
    fn live_and_backfilled_judgements_share_a_result_and_reruns_do_not() {
        let live = TargetPayload {
            evaluation: EvaluationId(Uuid::from_u128(1)),
            target: TargetKind::Trace,
            target_id: "t1".into(),
            queued_at: at(),
            backfill: None,
            rerun: false,
        };
        let backfilled = TargetPayload { backfill: Some(Uuid::from_u128(9)), ..live.clone() };
        let rerun = TargetPayload { rerun: true, ..backfilled.clone() };
        assert_eq!(live.result_id(), backfilled.result_id());
        assert_ne!(live.result_id(), rerun.result_id());
        assert_ne!(live.job(ProjectId(1)).id, backfilled.job(ProjectId(1)).id);
        assert_eq!(backfilled.job(ProjectId(1)).kind, JobKind::BackfillJudge);
        let generation =
            TargetPayload { target: TargetKind::Generation, target_id: Uuid::from_u128(2).to_string(), ..live.clone() };
        let judge = super::super::JudgePayload {
            evaluations: vec![live.evaluation],
            generation: Uuid::from_u128(2),
            generation_timestamp: at(),
            manual: false,
        };
        assert_eq!(
            generation.result_id(),
            super::super::result_event_id(&judge, live.evaluation, Uuid::nil()),
            "a backfilled generation is not judged again after its live judgement"
        );
    }
}
