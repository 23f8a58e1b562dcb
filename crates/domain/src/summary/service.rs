//! The summary use case (spec section 6): rate limit, validate, read the runs, reuse a
//! cached summary or compute one (single flight across replicas), with the LLM that
//! section 11 chooses.

use crate::invalid::FieldError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{StreamExt, TryStreamExt, stream};

use super::prompt::{self, MAX_OUTPUT_TOKENS, SCHEMA_NAME};
use super::{
    CACHE_TTL, EvaluationRun, EvaluationSummary, Flight, MAP_CONCURRENCY, MAX_RUNS, RateDecision, RateLimiter,
    RunQuery, SUMMARY_RATE_BUCKET, SUMMARY_RATE_LIMITS, SummarizeError, SummaryCache, SummaryConfig, SummaryDraft,
    SummaryFilter, SummaryKey, SummaryRequest,
};
use crate::evaluation::{Evaluation, EvaluationRepository};
use crate::ingestion::AiEventStore;
use crate::llm::{Llm, LlmError, LlmPurpose, Prompt, ask};
use crate::{ApiKeyId, ProjectId};

/// Extra time a computing request holds its claim beyond the LLM timeout, and that
/// waiting requests wait beyond it.
const FLIGHT_MARGIN: Duration = Duration::from_secs(15);

/// The ports the summary use case needs.
pub struct SummaryPorts {
    pub evaluations: Arc<dyn EvaluationRepository>,
    pub events: Arc<dyn AiEventStore>,
    /// Choosing, calling and accounting for the LLM.
    pub llm: Arc<dyn Llm>,
    pub cache: Arc<dyn SummaryCache>,
    pub rate_limiter: Arc<dyn RateLimiter>,
}

/// The evaluation-summary use case.
pub struct SummaryService {
    ports: SummaryPorts,
    config: SummaryConfig,
}

impl SummaryService {
    pub fn new(ports: SummaryPorts, config: SummaryConfig) -> Self {
        Self { ports, config }
    }

    /// Summarises an evaluation's runs for the caller (`api_key` is what the rate limit
    /// counts). `request` is the body as the caller parsed it: a refused field is
    /// answered only once the rate limit let the call through, as the reference does.
    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn summarize(
        &self,
        api_key: ApiKeyId,
        project: ProjectId,
        request: Result<SummaryRequest, FieldError>,
    ) -> Result<EvaluationSummary, SummarizeError> {
        if let RateDecision::Limited { retry_after } =
            self.ports.rate_limiter.acquire(SUMMARY_RATE_BUCKET, api_key, &SUMMARY_RATE_LIMITS).await?
        {
            return Err(SummarizeError::Throttled { retry_after });
        }
        let request = request?;
        let evaluation = self
            .ports
            .evaluations
            .find(project, request.evaluation_id)
            .await?
            .filter(|evaluation| !evaluation.deleted)
            .ok_or(SummarizeError::EvaluationNotFound(request.evaluation_id))?;
        let query = RunQuery {
            evaluation: evaluation.id,
            filter: request.filter,
            generation_ids: request.generation_ids.clone(),
            limit: MAX_RUNS as i64,
        };
        let runs = self.ports.events.evaluation_runs(project, &query).await?;
        if runs.is_empty() {
            return Err(SummarizeError::NoRuns);
        }
        let key = SummaryKey::new(project, evaluation.id, request.filter, &runs, &evaluation.prompt);
        let started = Utc::now();
        if !request.force_refresh
            && let Some(summary) = self.ports.cache.fresh(&key, CACHE_TTL).await?
        {
            return Ok(summary);
        }

        let flight_time = self.config.llm_timeout + FLIGHT_MARGIN;
        // A forced refresh accepts only a summary computed after it started; otherwise
        // any fresh one will do.
        let fresh_since = if request.force_refresh {
            started
        } else {
            started - chrono::TimeDelta::seconds(CACHE_TTL.as_secs() as i64)
        };
        match self.ports.cache.begin(&key, flight_time, flight_time, CACHE_TTL, fresh_since).await? {
            Flight::Done(summary) => Ok(*summary),
            Flight::Leader(token) => {
                let result = self.compute(&evaluation, request.filter, &runs, &key).await;
                if let Err(error) = self.ports.cache.release(&key, token).await {
                    tracing::warn!(error = %error.0, "could not release a summary claim; it expires with its lease");
                }
                result
            }
            // The computing request took longer than it may: compute without the claim.
            Flight::GaveUp => self.compute(&evaluation, request.filter, &runs, &key).await,
        }
    }

    async fn compute(
        &self,
        evaluation: &Evaluation,
        filter: SummaryFilter,
        runs: &[EvaluationRun],
        key: &SummaryKey,
    ) -> Result<EvaluationSummary, SummarizeError> {
        let deadline = Instant::now() + self.config.llm_timeout;
        let draft = self.generate(evaluation, filter, runs, deadline).await.map_err(|error| match error {
            LlmError::Storage(error) => SummarizeError::from(error),
            LlmError::NoLlm => SummarizeError::NoLlm,
            error => {
                tracing::warn!(%error, "summary LLM call failed");
                SummarizeError::LlmFailed
            }
        })?;
        let summary = EvaluationSummary::from_draft(draft, runs);
        self.ports.cache.store(key, &summary).await?;
        Ok(summary)
    }

    /// One call when the runs fit the budget; else map (chunks, at most
    /// [`MAP_CONCURRENCY`] in flight) and one merge call.
    async fn generate(
        &self,
        evaluation: &Evaluation,
        filter: SummaryFilter,
        runs: &[EvaluationRun],
        deadline: Instant,
    ) -> Result<SummaryDraft, LlmError> {
        let header = prompt::header(evaluation, filter);
        let mut prompts = prompt::run_prompts(&header, runs);
        if prompts.len() == 1 {
            let user = prompts.pop().expect("one prompt");
            return self.call(evaluation, prompt::SYSTEM, user, deadline).await;
        }
        let partials: Vec<SummaryDraft> = stream::iter(prompts)
            .map(|user| self.call(evaluation, prompt::SYSTEM, user, deadline))
            .buffered(MAP_CONCURRENCY)
            .try_collect()
            .await?;
        let user = prompt::merge_prompt(&header, &partials);
        self.call(evaluation, prompt::merge_system(), user, deadline).await
    }

    /// One structured call within what is left of the deadline.
    async fn call(
        &self,
        evaluation: &Evaluation,
        system: &str,
        user: String,
        deadline: Instant,
    ) -> Result<SummaryDraft, LlmError> {
        let prompt = Prompt {
            system: system.to_owned(),
            user,
            schema_name: SCHEMA_NAME.to_owned(),
            schema: prompt::schema(),
            max_output_tokens: MAX_OUTPUT_TOKENS,
        };
        let (draft, _) = ask(&*self.ports.llm, LlmPurpose::Summary, evaluation, prompt, deadline).await?;
        Ok(draft)
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
