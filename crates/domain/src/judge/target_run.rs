//! Running a target's judge job (a settled trace or session, or a backfilled target):
//! read its events, tell them to the judge, store the verdict with the job's end — and,
//! for a backfill, its progress — in one transaction.

use chrono::Utc;
use serde_json::json;

use super::service::NoVerdict;
use super::{Generation, JudgeService, TargetPayload, hour_of, prompt, target_text};
use crate::RepositoryError;
use crate::backfill::TargetOutcome;
use crate::code::{code_input, target_code_input};
use crate::evaluation::{Evaluation, EvaluationState, EvaluationType, TargetKind};
use crate::ingestion::{AiEventName, IncomingEvent};
use crate::jobs::{ClaimedJob, JobEnd, JobOutcome};
use crate::unit_of_work::retried_once;

/// The most events of one target the judge reads (the text is capped anyway).
pub const MAX_TARGET_EVENTS: u32 = 5_000;

impl JudgeService {
    pub(super) async fn judge_target(&self, job: &ClaimedJob) -> Result<JobOutcome, RepositoryError> {
        let payload: TargetPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return Ok(JobOutcome::Fail(format!("unreadable target payload: {error}"))),
        };
        let project = job.project;
        let result_id = payload.result_id();
        if !self.ports.store.stored_events(project, &[result_id]).await?.is_empty() {
            self.end_target(job, &payload, None, JobEnd::Complete, TargetOutcome::Completed).await?;
            return Ok(JobOutcome::Finished);
        }
        let evaluation = match self.ports.evaluations.find(project, payload.evaluation).await?.filter(|e| !e.deleted) {
            None => return self.fail_target(job, &payload, "the evaluation was deleted before it ran").await,
            Some(evaluation) if !may_judge(&evaluation, &payload) => {
                return self.fail_target(job, &payload, "the evaluation was disabled before it ran").await;
            }
            Some(evaluation) => evaluation,
        };
        if payload.backfill.is_none()
            && job.attempts == 1
            && let Some(cap) = evaluation.max_runs_per_hour
        {
            let mut tx = self.ports.unit_of_work.begin().await?;
            let counter = (evaluation.id, cap.get(), hour_of(Utc::now()));
            let granted = super::caps::reserve_in(&mut *tx, project, counter, 1, true).await?;
            tx.commit().await?;
            if granted == 0 {
                return Ok(JobOutcome::Complete);
            }
        }
        let kind = payload.kind();
        let events = self.ports.store.target_events(project, kind, &payload.target_id, MAX_TARGET_EVENTS).await?;
        let Some(anchor) = anchor_of(&events) else {
            return self.fail_target(job, &payload, "no event of the target is stored").await;
        };
        if evaluation.evaluation_type == EvaluationType::Hog {
            let input = match kind {
                TargetKind::Generation => code_input(anchor),
                TargetKind::Trace | TargetKind::Session => target_code_input(kind, &payload.target_id, anchor, &events),
            };
            return match self.code_result(project, &evaluation, input, anchor, result_id, false).await? {
                Ok(mut event) => {
                    describe_target(&mut event, &payload);
                    self.end_target(job, &payload, Some(event), JobEnd::Complete, TargetOutcome::Completed).await?;
                    Ok(JobOutcome::Finished)
                }
                Err(NoVerdict::Retry(reason)) => Ok(JobOutcome::Retry(reason)),
                Err(NoVerdict::Fail(reason)) => self.fail_target(job, &payload, &reason).await,
            };
        }
        let prompt = match kind {
            TargetKind::Generation => prompt::prompt(
                &evaluation,
                anchor.properties.get("$ai_input"),
                anchor.properties.get("$ai_output_choices").or_else(|| anchor.properties.get("$ai_output")),
            ),
            TargetKind::Trace | TargetKind::Session => {
                prompt::target_prompt(&evaluation, kind.as_str(), &target_text::render(&events, kind.max_text_chars()))
            }
        };
        let last_attempt = job.attempts >= job.max_attempts;
        let answered = match self.verdict_of(project, &evaluation, prompt, last_attempt).await? {
            Ok(answered) => answered,
            Err(NoVerdict::Retry(reason)) => return Ok(JobOutcome::Retry(reason)),
            Err(NoVerdict::Fail(reason)) => return self.fail_target(job, &payload, &reason).await,
        };
        let mut event = answered.result_event(result_id, &evaluation, anchor, false);
        describe_target(&mut event, &payload);
        if !self.end_target(job, &payload, Some(event), JobEnd::Complete, TargetOutcome::Completed).await? {
            self.ports.llm.refund(project, answered.paid_by).await?;
        }
        Ok(JobOutcome::Finished)
    }

    async fn fail_target(
        &self,
        job: &ClaimedJob,
        payload: &TargetPayload,
        reason: &str,
    ) -> Result<JobOutcome, RepositoryError> {
        self.end_target(job, payload, None, JobEnd::Fail(reason.to_owned()), TargetOutcome::Failed).await?;
        Ok(JobOutcome::Finished)
    }

    /// Ends the job (with its result, if any) and counts it in its backfill, in one
    /// transaction. False, and nothing written, when the lease was no longer the job's.
    async fn end_target(
        &self,
        job: &ClaimedJob,
        payload: &TargetPayload,
        result: Option<IncomingEvent>,
        end: JobEnd,
        outcome: TargetOutcome,
    ) -> Result<bool, RepositoryError> {
        let project = job.project;
        let written = retried_once(|| async {
            let mut tx = self.ports.unit_of_work.begin().await?;
            if let Some(result) = &result {
                tx.events().insert(project, std::slice::from_ref(result)).await?;
            }
            if !tx.jobs().end(&job.lease, Some(end.clone())).await? {
                return Ok(false);
            }
            if let Some(backfill) = payload.backfill {
                crate::backfill::count_ended(&mut *tx, project, crate::BackfillId(backfill), outcome).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await?;
        if !written {
            tracing::warn!(job = %job.lease.job, "a target's judge job lost its lease before its end was stored");
        }
        Ok(written)
    }

    /// A target job that will not be tried again still counts in its backfill.
    pub(super) async fn give_up_target(&self, job: &ClaimedJob, reason: String) -> JobOutcome {
        let Ok(payload) = serde_json::from_value::<TargetPayload>(job.payload.clone()) else {
            return JobOutcome::Fail(reason);
        };
        match self.fail_target(job, &payload, &reason).await {
            Ok(outcome) => outcome,
            Err(error) => JobOutcome::Fail(format!("{reason}; recording it failed: {}", error.0)),
        }
    }
}

/// Live work judges only for an active evaluation; a backfill also for a paused one (a
/// team backfills before it enables), never for one stopped with a reason.
fn may_judge(evaluation: &Evaluation, payload: &TargetPayload) -> bool {
    match evaluation.state {
        EvaluationState::Active => true,
        EvaluationState::Paused => payload.backfill.is_some(),
        EvaluationState::Error(_) => false,
    }
}

/// The event a target's result points at: its first generation, else its first event.
fn anchor_of(events: &[Generation]) -> Option<&Generation> {
    events.iter().find(|e| e.event == AiEventName::GENERATION).or_else(|| events.first())
}

/// Marks a result with what it judged: the target kind, the trace or session id, and the
/// backfill that asked for it.
fn describe_target(event: &mut IncomingEvent, payload: &TargetPayload) {
    let properties = &mut event.properties;
    properties.insert("$ai_evaluation_target".into(), json!(payload.kind().as_str()));
    match payload.kind() {
        TargetKind::Trace => {
            properties.insert("$ai_trace_id".into(), json!(payload.target_id));
        }
        TargetKind::Session => {
            properties.insert("$ai_session_id".into(), json!(payload.target_id));
        }
        TargetKind::Generation => {}
    }
    if let Some(backfill) = payload.backfill {
        properties.insert("$ai_evaluation_backfill_id".into(), json!(backfill.to_string()));
    }
}
