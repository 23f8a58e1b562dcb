//! Generating a run (the `report_run` job): its period, metrics and trend, the LLM's
//! report over a sample (or the fallback), stored with its deliveries and the report's
//! next anchor in one write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::content::{self, ReportDraft, SampledRun};
use super::model::{DeliveryStatus, Frequency, Period, Report, ReportContent, ReportMetrics, ReportRun, Trigger};
use super::ports::{NewRun, ReportEvents, ReportRepository};
use super::render::chart::Bucket;
use super::run_jobs::{RunPayload, anchor_of, deliveries_of, recurrence_of};
use super::run_writes::RunWrites;
use super::schedule;
use crate::ReportId;
use crate::ReportRunId;
use crate::evaluation::{Evaluation, EvaluationRepository};
use crate::jobs::{ClaimedJob, JobHandler, JobKind, JobOutcome};
use crate::llm::{Llm, LlmError, LlmPurpose, Prompt, ask};

/// The handler of `report_run` jobs.
pub struct RunGeneration {
    pub(super) reports: Arc<dyn ReportRepository>,
    pub(super) writes: Arc<dyn RunWrites>,
    pub(super) events: Arc<dyn ReportEvents>,
    pub(super) evaluations: Arc<dyn EvaluationRepository>,
    pub(super) llm: Arc<dyn Llm>,
    pub(super) llm_timeout: Duration,
}

impl RunGeneration {
    async fn run_job(&self, job: &ClaimedJob) -> JobOutcome {
        let payload: RunPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return JobOutcome::Fail(format!("unreadable report job: {error}")),
        };
        self.generate_run(job, &payload).await.unwrap_or_else(|error| JobOutcome::Retry(format!("{error:#}")))
    }

    /// Generates and stores the run; the run and the job's end are one write
    /// (`store_run`). A run with nothing to do leaves the job for the worker to complete.
    async fn generate_run(&self, job: &ClaimedJob, payload: &RunPayload) -> anyhow::Result<JobOutcome> {
        let project = job.project;
        let now = Utc::now();
        let report = self.reports.find(project, ReportId(payload.report)).await?;
        let Some(report) = report.filter(|r| !r.deleted && (r.enabled || payload.trigger == Trigger::Manual)) else {
            return Ok(JobOutcome::Complete);
        };
        if let Some(anchor) = payload.anchor
            && anchor_of(&report) != anchor
        {
            // Another run moved the report on already (or its schedule changed).
            return Ok(JobOutcome::Complete);
        }
        let evaluation = self.evaluations.find(project, report.evaluation).await?;
        let period = self.period(&report, payload.trigger, now).await?;
        let current = self.events.counts(project, report.evaluation, period).await?;
        let previous = self.events.counts(project, report.evaluation, period.previous()).await?;
        let metrics = ReportMetrics::of(current, previous, period);
        let span = Period { start: period.previous().start, end: period.end };
        let trend = self.events.trend(project, report.evaluation, span, Bucket::for_period(&period)).await?;

        let mut metadata = json!({"trigger": payload.trigger.as_str()});
        let content = self.content(&report, evaluation.as_ref(), metrics, payload.trigger, &mut metadata).await?;
        if payload.trigger == Trigger::Alert
            && let Some(condition) = report.alert_condition
        {
            metadata["observed_pass_rate"] = json!(payload.observed_pass_rate.unwrap_or(metrics.pass_rate));
            metadata["threshold"] = json!(condition.pass_rate);
            metadata["operator"] = json!(condition.operator.as_str());
        }
        let run = ReportRun {
            id: ReportRunId(uuid::Uuid::now_v7()),
            project,
            report: report.id,
            content,
            metadata,
            period,
            delivery_status: DeliveryStatus::Pending,
            delivery_errors: Vec::new(),
            trend,
            created_at: now,
        };
        let advance = payload.trigger.is_automatic().then(|| {
            let next = match (report.frequency, recurrence_of(&report), report.starts_at) {
                (Frequency::Scheduled, Some(rule), Some(starts_at)) => {
                    let zone = schedule::parse_zone(&report.timezone_name).unwrap_or(chrono_tz::UTC);
                    rule.next_delivery(starts_at, zone, now, report.next_delivery_date)
                }
                _ => None,
            };
            (period.end, next)
        });
        let run_key = payload.key.clone();
        let deliveries = deliveries_of(&report, &run);
        let stored = NewRun { run, run_key, expected_anchor: payload.anchor, advance, deliveries };
        if !self.writes.store_run(&job.lease, &stored).await? {
            tracing::info!(report = %report.id, "a report run was not stored: its period was already run or the lease lapsed");
        }
        Ok(JobOutcome::Finished)
    }

    /// Section 7's periods; manual runs use their report's own rule.
    async fn period(&self, report: &Report, trigger: Trigger, now: DateTime<Utc>) -> anyhow::Result<Period> {
        let frequency = match trigger {
            Trigger::Scheduled => Frequency::Scheduled,
            Trigger::EveryN => Frequency::EveryN,
            Trigger::Alert => Frequency::Alert,
            Trigger::Manual => report.frequency,
        };
        Ok(match frequency {
            Frequency::Alert => match &report.alert_condition {
                Some(condition) => schedule::alert_window(condition, now),
                None => Period { start: now - chrono::Duration::hours(1), end: now },
            },
            Frequency::Scheduled => {
                let zone = schedule::parse_zone(&report.timezone_name).unwrap_or(chrono_tz::UTC);
                schedule::scheduled_period(
                    recurrence_of(report).as_ref(),
                    report.starts_at,
                    zone,
                    report.last_delivered_at,
                    now,
                )
            }
            Frequency::EveryN => {
                let start = match report.last_delivered_at.filter(|last| *last < now) {
                    Some(last) => last,
                    None => self
                        .events
                        .nth_newest(report.project, report.evaluation, report.trigger_threshold, now)
                        .await?
                        .or(report.starts_at)
                        .unwrap_or(report.created_at)
                        .min(now),
                };
                Period { start, end: now }
            }
        })
    }

    /// The LLM's report over a sample, or the fallback (the failure kept in `metadata`).
    async fn content(
        &self,
        report: &Report,
        evaluation: Option<&Evaluation>,
        metrics: ReportMetrics,
        trigger: Trigger,
        metadata: &mut Value,
    ) -> anyhow::Result<ReportContent> {
        let name = evaluation.map_or("Deleted evaluation", |e| e.name.as_str());
        let Some(evaluation) = evaluation else {
            metadata["fallback_reason"] = json!("The evaluation no longer exists.");
            return Ok(content::fallback(name, metrics, trigger));
        };
        let period = Period { start: metrics.period_start, end: metrics.period_end };
        let sample: Vec<SampledRun> =
            self.events.sample(report.project, evaluation.id, period, report.max_sample_size).await?;
        let (user, included) = content::user_prompt(evaluation, &metrics, &sample, &report.report_prompt_guidance);
        let prompt = Prompt {
            system: content::SYSTEM.to_owned(),
            user,
            schema_name: content::SCHEMA_NAME.to_owned(),
            schema: content::schema(),
            max_output_tokens: content::MAX_OUTPUT_TOKENS,
        };
        let deadline = Instant::now() + self.llm_timeout;
        match ask::<ReportDraft>(&*self.llm, LlmPurpose::Report, evaluation, prompt, deadline).await {
            Ok((draft, answer)) => {
                metadata["model"] = json!(answer.model);
                metadata["sample_size"] = json!(included);
                Ok(content::from_draft(draft, metrics, &sample[..included], trigger))
            }
            Err(LlmError::Storage(error)) => Err(error.into()),
            Err(LlmError::Failed { error, model, .. }) => {
                tracing::warn!(report = %report.id, %error, "the report's LLM call failed; sending the fallback report");
                metadata["model"] = json!(model);
                metadata["sample_size"] = json!(included);
                metadata["fallback_reason"] = json!(format!("The LLM call failed: {error}"));
                Ok(content::fallback(name, metrics, trigger))
            }
            Err(error) => {
                tracing::debug!(report = %report.id, %error, "no LLM for the report; sending the fallback report");
                metadata["fallback_reason"] = json!("No LLM is configured for this project.");
                Ok(content::fallback(name, metrics, trigger))
            }
        }
    }
}

#[async_trait]
impl JobHandler for RunGeneration {
    async fn run(&self, job: &ClaimedJob) -> JobOutcome {
        match job.kind {
            Some(JobKind::ReportRun) => self.run_job(job).await,
            _ => JobOutcome::Fail("not a report run job".into()),
        }
    }
}
