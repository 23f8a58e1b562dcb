//! The judge use cases: run a judge job, queue a manual run, read runs and results.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use super::manual_run::{ManualRun, ManualRunCommand};
use super::prompt::{self, JudgeAnswer, Verdict};
use super::stored_results::store_results;
use super::{
    EvaluationResultsStore, Generation, Interval, JudgePayload, JudgeStore, JudgedRun, KeyType, ManualRunError,
    ResultEvent, ResultsError, ResultsQuery, ResultsReport, RunsQuery, judge_job, result_event_id,
};
use crate::code::{CodeEvaluator, CodeInput, code_input, verdict_of_run};
use crate::evaluation::{Evaluation, EvaluationRepository, EvaluationType, JudgeStop, StatusReason};
use crate::ingestion::{AiEventName, IncomingEvent};
use crate::jobs::{ClaimedJob, JobEnd, JobHandler, JobKind, JobOutcome, JobQueue};
use crate::llm::{CompletionError, Llm, LlmError, LlmPurpose, PaidBy, ask};
use crate::unit_of_work::UnitOfWork;
use crate::{EvaluationId, Page, ProjectId, RepositoryError};

/// The ports the judge needs.
pub struct JudgePorts {
    pub evaluations: Arc<dyn EvaluationRepository>,
    pub store: Arc<dyn JudgeStore>,
    pub results: Arc<dyn EvaluationResultsStore>,
    pub jobs: Arc<dyn JobQueue>,
    pub llm: Arc<dyn Llm>,
    pub unit_of_work: Arc<dyn UnitOfWork>,
    /// Where code evaluators run.
    pub code: Arc<dyn CodeEvaluator>,
}

/// Operator settings of the judge.
#[derive(Debug, Clone)]
pub struct JudgeConfig {
    /// `LLMA_LLM_TIMEOUT_SECS`: one judgement's LLM work, retries included.
    pub llm_timeout: Duration,
    /// `LLMA_EVENT_RETENTION_DAYS`: events past it can no longer be judged.
    pub retention: crate::ingestion::EventRetention,
}

/// The judge runner's use cases.
pub struct JudgeService {
    pub(super) ports: JudgePorts,
    pub(super) config: JudgeConfig,
}

/// A judge's verdict and who paid for it.
pub(super) struct Answered {
    pub verdict: Verdict,
    pub key: KeyType,
    pub paid_by: PaidBy,
    pub provider: String,
    pub model: String,
}

impl Answered {
    /// The `$ai_evaluation` event of this verdict, judging `anchor` (the generation, or a
    /// trace's first generation).
    pub fn result_event(&self, id: Uuid, evaluation: &Evaluation, anchor: &Generation, manual: bool) -> IncomingEvent {
        ResultEvent {
            id,
            evaluation,
            generation: anchor,
            verdict: &self.verdict,
            key: self.key,
            provider: &self.provider,
            model: &self.model,
            manual,
            at: Utc::now(),
        }
        .into_event()
    }
}

/// Why a judge call gave no verdict, and how the job goes on.
pub(super) enum NoVerdict {
    /// A passing failure: the job is tried again.
    Retry(String),
    /// A failure another attempt would repeat.
    Fail(String),
}

/// How judging one evaluation of a job ended.
enum Judgement {
    /// A verdict to store, and who paid for it, if an LLM was called (a lost lease refunds
    /// a trial credit).
    Verdict { event: IncomingEvent, paid_by: Option<PaidBy> },
    /// A passing failure: the job is tried again.
    Retry(String),
    /// A failure another attempt would repeat.
    Fail(String),
}

impl JudgeService {
    pub fn new(ports: JudgePorts, config: JudgeConfig) -> Self {
        Self { ports, config }
    }

    /// Queues a judgement of a stored event now, even when the evaluation is disabled or
    /// its conditions do not match; never deduplicated, not counted by the cap.
    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn manual_run(&self, project: ProjectId, command: ManualRunCommand) -> Result<ManualRun, ManualRunError> {
        let (evaluation_id, target) = (command.evaluation, command.target_event);
        let day = command.at.map(|at| {
            let start = Interval::Day.bucket_of(at);
            (start, start + chrono::Duration::days(1))
        });
        let event_name = command.event.as_deref().unwrap_or(AiEventName::GENERATION);
        let distinct_id = command.distinct_id.as_deref();

        let evaluation = self
            .ports
            .evaluations
            .find(project, evaluation_id)
            .await?
            .filter(|e| !e.deleted)
            .ok_or_else(|| ManualRunError::EvaluationNotFound(evaluation_id.to_string()))?;
        let event = self
            .ports
            .store
            .event(project, target, day)
            .await?
            .filter(|e| e.event == event_name && distinct_id.is_none_or(|d| e.distinct_id == d))
            .ok_or_else(|| ManualRunError::EventNotFound(target.to_string()))?;
        if !self.config.retention.keeps(event.timestamp, Utc::now()) {
            return Err(ManualRunError::PastRetention(target.to_string()));
        }
        let payload = JudgePayload {
            evaluations: vec![evaluation.id],
            generation: event.uuid,
            generation_timestamp: event.timestamp,
            manual: true,
        };
        let job = judge_job(project, &payload);
        self.ports.jobs.enqueue(std::slice::from_ref(&job)).await?;
        Ok(ManualRun {
            job: job.id,
            evaluation: evaluation.id,
            evaluation_name: evaluation.name,
            target_event_id: target,
        })
    }

    /// The project's judgements, newest first.
    pub async fn runs(&self, project: ProjectId, query: &RunsQuery) -> Result<Page<JudgedRun>, RepositoryError> {
        self.ports.results.runs(project, query).await
    }

    /// Totals, breakdown and trend of one evaluation's results (spec section 9).
    pub async fn results(&self, project: ProjectId, query: ResultsQuery) -> Result<ResultsReport, ResultsError> {
        self.ports
            .evaluations
            .find(project, query.evaluation)
            .await?
            .filter(|e| !e.deleted)
            .ok_or(ResultsError::EvaluationNotFound)?;
        let rows = self.ports.results.results(project, &query).await?;
        let skipped = self.ports.results.skipped_by_cap(project, &query).await?;
        Ok(ResultsReport::from_rows(query, rows, skipped))
    }

    /// Judges the job's generation with each of its evaluations not judged by an earlier
    /// attempt (concurrently), then stores the verdicts and the job's end together.
    async fn judge(&self, job: &ClaimedJob) -> Result<JobOutcome, RepositoryError> {
        let payload: JudgePayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return Ok(JobOutcome::Fail(format!("unreadable judge payload: {error}"))),
        };
        let project = job.project;
        let mut pending: Vec<(EvaluationId, Uuid)> =
            payload.evaluations.iter().map(|e| (*e, result_event_id(&payload, *e, job.lease.job.0))).collect();
        if job.attempts > 1 {
            let ids: Vec<Uuid> = pending.iter().map(|(_, id)| *id).collect();
            let stored = self.ports.store.stored_events(project, &ids).await?;
            pending.retain(|(_, id)| !stored.contains(id));
        }
        let mut judged = Vec::with_capacity(pending.len());
        let mut runnable = Vec::with_capacity(pending.len());
        for (evaluation_id, result_id) in pending {
            match self.ports.evaluations.find(project, evaluation_id).await?.filter(|e| !e.deleted) {
                None => {
                    judged.push((evaluation_id, Judgement::Fail("the evaluation was deleted before it ran".into())))
                }
                Some(evaluation) if !payload.manual && !evaluation.state.enabled() => {
                    judged.push((evaluation_id, Judgement::Fail("the evaluation was disabled before it ran".into())))
                }
                Some(evaluation) => runnable.push((evaluation, result_id)),
            }
        }
        if !runnable.is_empty() {
            let at = payload.generation_timestamp;
            let within = Some((at - chrono::Duration::seconds(1), at + chrono::Duration::seconds(1)));
            let Some(generation) = self.ports.store.event(project, payload.generation, within).await? else {
                return Ok(JobOutcome::Fail("the generation is no longer stored".into()));
            };
            let calls = runnable.iter().map(|(evaluation, result_id)| async {
                let last_attempt = job.attempts >= job.max_attempts;
                let judgement =
                    self.judge_one(project, &payload, evaluation, *result_id, &generation, last_attempt).await?;
                Ok::<_, RepositoryError>((evaluation.id, judgement))
            });
            for outcome in futures::future::join_all(calls).await {
                judged.push(outcome?);
            }
        }
        self.store_judged(job, payload.evaluations.len() > 1, judged).await
    }

    /// Stores the verdicts with the job's end (or, when a judgement is to be retried, with
    /// the job still leased), and tells the worker what is left to do.
    async fn store_judged(
        &self,
        job: &ClaimedJob,
        several: bool,
        judged: Vec<(EvaluationId, Judgement)>,
    ) -> Result<JobOutcome, RepositoryError> {
        let said = |evaluation: EvaluationId, reason: String| {
            if several { format!("evaluation {evaluation}: {reason}") } else { reason }
        };
        let (mut verdicts, mut paid, mut retry, mut failure) = (Vec::new(), Vec::new(), None, None);
        for (evaluation, judgement) in judged {
            match judgement {
                Judgement::Verdict { event, paid_by } => {
                    paid.extend(paid_by);
                    verdicts.push(event);
                }
                Judgement::Retry(reason) => {
                    retry.get_or_insert_with(|| said(evaluation, reason));
                }
                Judgement::Fail(reason) => {
                    failure.get_or_insert_with(|| said(evaluation, reason));
                }
            }
        }
        if verdicts.is_empty() {
            return Ok(match (retry, failure) {
                (Some(reason), _) => JobOutcome::Retry(reason),
                (None, Some(reason)) => JobOutcome::Fail(reason),
                (None, None) => JobOutcome::Complete,
            });
        }
        let end = match (&retry, failure) {
            (Some(_), _) => None,
            (None, Some(reason)) => Some(JobEnd::Fail(reason)),
            (None, None) => Some(JobEnd::Complete),
        };
        if !store_results(&*self.ports.unit_of_work, &job.lease, job.project, &verdicts, end.as_ref()).await? {
            for paid_by in paid {
                self.ports.llm.refund(job.project, paid_by).await?;
            }
            tracing::warn!(job = %job.lease.job, "a judge job's lease lapsed before its results were stored");
            return Ok(JobOutcome::Finished);
        }
        Ok(retry.map_or(JobOutcome::Finished, JobOutcome::Retry))
    }

    /// One evaluation's judgement of the generation: the call (the LLM port decides who
    /// pays), the verdict.
    async fn judge_one(
        &self,
        project: ProjectId,
        payload: &JudgePayload,
        evaluation: &Evaluation,
        result_id: Uuid,
        generation: &Generation,
        last_attempt: bool,
    ) -> Result<Judgement, RepositoryError> {
        if evaluation.evaluation_type == EvaluationType::Hog {
            let input = code_input(generation);
            return Ok(
                match self.code_result(project, evaluation, input, generation, result_id, payload.manual).await? {
                    Ok(event) => Judgement::Verdict { event, paid_by: None },
                    Err(NoVerdict::Retry(reason)) => Judgement::Retry(reason),
                    Err(NoVerdict::Fail(reason)) => Judgement::Fail(reason),
                },
            );
        }
        let prompt = prompt::prompt(
            evaluation,
            generation.properties.get("$ai_input"),
            generation.properties.get("$ai_output_choices").or_else(|| generation.properties.get("$ai_output")),
        );
        let answered = match self.verdict_of(project, evaluation, prompt, last_attempt).await? {
            Ok(answered) => answered,
            Err(NoVerdict::Retry(reason)) => return Ok(Judgement::Retry(reason)),
            Err(NoVerdict::Fail(reason)) => return Ok(Judgement::Fail(reason)),
        };
        let event = answered.result_event(result_id, evaluation, generation, payload.manual);
        Ok(Judgement::Verdict { event, paid_by: Some(answered.paid_by) })
    }

    /// A code evaluator's result event for `input` (of `anchor`, which the result points
    /// at), or (an error, a budget exceeded, an answer that is no verdict) the message, with
    /// the evaluation stopped with `hog_error` at the first error, as the reference (the
    /// code is deterministic). Code that could not be run at all (the server lacked a
    /// thread) is tried again later and blames nothing on the evaluation.
    pub(super) async fn code_result(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
        input: CodeInput,
        anchor: &Generation,
        result_id: Uuid,
        manual: bool,
    ) -> Result<Result<IncomingEvent, NoVerdict>, RepositoryError> {
        let verdict = match self.ports.code.run(&evaluation.prompt, input).await {
            Ok(Ok(run)) => verdict_of_run(&run, evaluation.output_type).map_err(|e| e.to_string()),
            Ok(Err(failure)) => Err(failure.to_string()),
            Err(unavailable) => return Ok(Err(NoVerdict::Retry(unavailable.to_string()))),
        };
        let verdict = match verdict {
            Ok(verdict) => verdict,
            Err(message) => {
                let one = JudgeStop::One(evaluation.id);
                self.stop_saying(project, one, StatusReason::HogError, Some(message.clone())).await?;
                return Ok(Err(NoVerdict::Fail(message)));
            }
        };
        let event = ResultEvent {
            id: result_id,
            evaluation,
            generation: anchor,
            verdict: &verdict,
            key: KeyType::Code,
            provider: "",
            model: "",
            manual,
            at: Utc::now(),
        }
        .into_event();
        Ok(Ok(event))
    }

    /// Asks the judge `prompt` for `evaluation`: the verdict and who paid, or (after a
    /// failure, with its consequences applied) how the job goes on. `last_attempt`: the
    /// job will not be tried again after a passing failure.
    pub(super) async fn verdict_of(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
        prompt: crate::llm::Prompt,
        last_attempt: bool,
    ) -> Result<Result<Answered, NoVerdict>, RepositoryError> {
        let deadline = Instant::now() + self.config.llm_timeout;
        let (answer, llm) =
            match ask::<JudgeAnswer>(&*self.ports.llm, LlmPurpose::Judge, evaluation, prompt, deadline).await {
                Ok(answered) => answered,
                Err(error) => return Ok(Err(self.after_failure(project, evaluation, error, last_attempt).await?)),
            };
        if evaluation.rate_limited_since.is_some() {
            self.ports.evaluations.rate_limited_since(project, evaluation.id, None).await?;
        }
        let paid_by = llm.paid_by;
        let key = match paid_by {
            PaidBy::OwnKey(key) => KeyType::Byok(key),
            PaidBy::Trial | PaidBy::Operator => KeyType::Posthog,
        };
        Ok(Ok(Answered {
            verdict: Verdict::from_answer(answer, evaluation.output_type),
            key,
            paid_by,
            provider: llm.provider.as_str().to_owned(),
            model: llm.model,
        }))
    }

    /// No verdict: who may not pay stops the evaluations concerned; a key the provider
    /// rejected stops the evaluations using it (the key is already `invalid`); passing
    /// trouble is retried; anything else ends the job.
    async fn after_failure(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
        error: LlmError,
        last_attempt: bool,
    ) -> Result<NoVerdict, RepositoryError> {
        let message = error.to_string();
        let (stop, reason) = match error {
            LlmError::Storage(error) => return Err(error),
            LlmError::Failed { error, paid_by, .. } => {
                return self.after_failed_call(project, evaluation, &error, paid_by, last_attempt).await;
            }
            LlmError::TrialsUsedUp => (JudgeStop::WithoutKey, StatusReason::TrialLimitReached),
            LlmError::KeyInvalid(key) => (JudgeStop::UsingKey(key), StatusReason::ProviderKeyInvalid),
            LlmError::ModelNotAllowed | LlmError::NoLlm => {
                (JudgeStop::One(evaluation.id), StatusReason::ModelNotAllowed)
            }
        };
        self.stop(project, stop, reason).await?;
        Ok(NoVerdict::Fail(message))
    }

    async fn after_failed_call(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
        error: &CompletionError,
        paid_by: PaidBy,
        last_attempt: bool,
    ) -> Result<NoVerdict, RepositoryError> {
        Ok(match (error, paid_by) {
            (CompletionError::KeyRejected, PaidBy::OwnKey(key_id)) => {
                self.stop(project, JudgeStop::UsingKey(key_id), StatusReason::ProviderKeyInvalid).await?;
                self.stop(project, JudgeStop::One(evaluation.id), StatusReason::ProviderKeyInvalid).await?;
                NoVerdict::Fail(format!("the provider rejected key {key_id}"))
            }
            (CompletionError::KeyRejected, PaidBy::Trial | PaidBy::Operator) => {
                tracing::error!("the provider rejected the operator's system LLM key (LLMA_SYSTEM_LLM_API_KEY)");
                NoVerdict::Fail("the provider rejected the system LLM key".into())
            }
            (CompletionError::RateLimited { .. }, _) if last_attempt => {
                self.after_rate_limited_job(project, evaluation, error).await?
            }
            (CompletionError::RateLimited { .. } | CompletionError::Timeout | CompletionError::Unavailable(_), _) => {
                NoVerdict::Retry(error.to_string())
            }
            (CompletionError::BadOutput(_), _) => NoVerdict::Fail(error.to_string()),
            (CompletionError::QuotaExceeded(detail), PaidBy::OwnKey(key_id)) => {
                let stop = JudgeStop::UsingKey(key_id);
                self.stop_saying(project, stop, StatusReason::QuotaExceeded, Some(detail.clone())).await?;
                let one = JudgeStop::One(evaluation.id);
                self.stop_saying(project, one, StatusReason::QuotaExceeded, Some(detail.clone())).await?;
                NoVerdict::Fail(error.to_string())
            }
            (CompletionError::QuotaExceeded(_), PaidBy::Trial | PaidBy::Operator) => {
                tracing::error!("the operator's system LLM account is out of quota (LLMA_SYSTEM_LLM_API_KEY)");
                NoVerdict::Fail(error.to_string())
            }
            (CompletionError::ModelNotFound(detail), _) => {
                let one = JudgeStop::One(evaluation.id);
                self.stop_saying(project, one, StatusReason::ModelNotFound, Some(detail.clone())).await?;
                NoVerdict::Fail(error.to_string())
            }
        })
    }

    /// A job ends rate-limited: when every job of the evaluation that ended since an hour
    /// ago ended so (no verdict in between), the evaluation stops with `rate_limited`.
    async fn after_rate_limited_job(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
        error: &CompletionError,
    ) -> Result<NoVerdict, RepositoryError> {
        let now = Utc::now();
        let since = self.ports.evaluations.rate_limited_since(project, evaluation.id, Some(now)).await?;
        if since.is_some_and(|since| now - since >= chrono::Duration::hours(1)) {
            let detail = "The provider rate-limited every judgement of this evaluation for an hour.".to_owned();
            self.stop_saying(project, JudgeStop::One(evaluation.id), StatusReason::RateLimited, Some(detail)).await?;
            return Ok(NoVerdict::Fail(error.to_string()));
        }
        Ok(NoVerdict::Retry(error.to_string()))
    }

    async fn stop(&self, project: ProjectId, stop: JudgeStop, reason: StatusReason) -> Result<(), RepositoryError> {
        self.stop_saying(project, stop, reason, None).await
    }

    /// Stops the evaluations `stop` selects with `reason` and the provider's words.
    pub(super) async fn stop_saying(
        &self,
        project: ProjectId,
        stop: JudgeStop,
        reason: StatusReason,
        detail: Option<String>,
    ) -> Result<(), RepositoryError> {
        let stopped = self.ports.evaluations.stop_judging(project, stop, reason, detail).await?;
        if stopped > 0 {
            tracing::warn!(project = %project, stopped, reason = reason.as_str(), "evaluations stopped by the judge");
        }
        Ok(())
    }
}

/// A storage failure is passing: the job is tried again.
fn retried_on_failure(judged: Result<JobOutcome, RepositoryError>) -> JobOutcome {
    judged.unwrap_or_else(|error| JobOutcome::Retry(format!("storage failure: {}", error.0)))
}

#[async_trait]
impl JobHandler for JudgeService {
    async fn run(&self, job: &ClaimedJob) -> JobOutcome {
        match job.kind {
            Some(JobKind::JudgeTarget | JobKind::BackfillJudge) => retried_on_failure(self.judge_target(job).await),
            Some(JobKind::JudgeCode) => {
                self.judge_code_jobs(std::slice::from_ref(job)).await.pop().unwrap_or(JobOutcome::Finished)
            }
            _ => retried_on_failure(self.judge(job).await),
        }
    }

    async fn run_batch(&self, jobs: &[ClaimedJob]) -> Vec<JobOutcome> {
        if jobs.iter().all(|job| job.kind == Some(JobKind::JudgeCode)) {
            return self.judge_code_jobs(jobs).await;
        }
        futures::future::join_all(jobs.iter().map(|job| self.run(job))).await
    }

    async fn give_up(&self, job: &ClaimedJob, reason: String) -> JobOutcome {
        match job.kind {
            Some(JobKind::JudgeTarget | JobKind::BackfillJudge) => self.give_up_target(job, reason).await,
            _ => JobOutcome::Fail(reason),
        }
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
