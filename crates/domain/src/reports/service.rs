//! The report use cases: CRUD, `generate`, the scheduler's tick, and the two kinds of
//! job (generate a run; deliver it to one target).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::content::{self, ReportDraft, SampledRun};
use super::delivery::{DeliveryState, MAX_DELIVERY_ATTEMPTS, ResolvedTarget, retry_delay};
use super::error::{InvalidReport, ReportError, SaveReportError};
use super::input::{ReportInput, ReportSettings, settings};
use super::model::{
    DeliveryStatus, DeliveryTarget, Frequency, Period, Report, ReportContent, ReportMetrics, ReportRun, StoredSecret,
    Trigger,
};
use super::ports::{
    DueCandidate, LinkSigner, NewDelivery, NewRun, ReportDelivery, ReportEvents, ReportRepository, ReportRunStore,
};
use super::render::chart::Bucket;
use super::render::{self, RunView};
use super::schedule::{self, Recurrence};
use super::targets::{SecretInput, TargetInput, TargetPolicy};
use crate::crypto::{KeyCipher, SealContext};
use crate::evaluation::{Evaluation, EvaluationRepository};
use crate::jobs::{ClaimedJob, JobEnd, JobHandler, JobKind, JobOutcome, JobQueue, NewJob};
use crate::llm::{CompletionRequest, LlmPurpose, LlmUse};
use crate::provider_key::mask_api_key;
use crate::{EvaluationId, Page, PageRequest, ProjectId, ReportId, ReportRunId, UserId};

/// How long a run page's link lives.
pub const LINK_LIFETIME: chrono::Duration = chrono::Duration::days(30);
/// Attempts of a run-generation job.
const RUN_ATTEMPTS: u32 = 3;
/// The purpose a webhook secret is sealed for.
const SECRET_PURPOSE: &str = "report_webhook_secret";

/// The ports reports need.
pub struct ReportPorts {
    pub reports: Arc<dyn ReportRepository>,
    pub runs: Arc<dyn ReportRunStore>,
    pub events: Arc<dyn ReportEvents>,
    pub evaluations: Arc<dyn EvaluationRepository>,
    pub jobs: Arc<dyn JobQueue>,
    pub llm: Arc<LlmUse>,
    pub cipher: Arc<dyn KeyCipher>,
    pub signer: Arc<dyn LinkSigner>,
    pub delivery: Arc<dyn ReportDelivery>,
}

/// How reports behave here.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// The base of the run page's links (`LLMA_PUBLIC_URL`), without a trailing slash.
    pub public_url: String,
    pub targets: TargetPolicy,
    /// `LLMA_DELIVERY_RETRY_BASE_SECS`.
    pub delivery_retry_base: Duration,
    pub llm_timeout: Duration,
}

/// Evaluation reports.
pub struct ReportService {
    ports: ReportPorts,
    config: ReportConfig,
}

/// A run job's payload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RunPayload {
    report: uuid::Uuid,
    /// The job's unique key, which the run keeps (one run per key).
    key: String,
    trigger: Trigger,
    /// See `NewRun::expected_anchor` (absent for manual runs).
    #[serde(default)]
    anchor: Option<Option<DateTime<Utc>>>,
    /// Alerts: what the scheduler saw.
    #[serde(default)]
    observed_pass_rate: Option<f64>,
}

/// A delivery job's payload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct DeliveryPayload {
    run: uuid::Uuid,
    target_index: u32,
    recipient: String,
}

impl ReportService {
    pub fn new(ports: ReportPorts, config: ReportConfig) -> Self {
        Self { ports, config }
    }

    // ----- CRUD -------------------------------------------------------------------

    pub async fn create(
        &self,
        project: ProjectId,
        user: UserId,
        input: ReportInput,
        now: DateTime<Utc>,
    ) -> Result<Report, SaveReportError> {
        let settings = settings(input, None, &self.config.targets)?;
        self.check_evaluation(project, settings.evaluation).await?;
        let id = ReportId::generate();
        let targets = self.seal_targets(project, id, settings.targets.clone().unwrap_or_default(), &[])?;
        let mut report = Report {
            id,
            project,
            evaluation: settings.evaluation,
            frequency: settings.frequency,
            alert_condition: settings.alert_condition,
            rrule: settings.rrule.clone(),
            starts_at: settings.starts_at,
            timezone_name: settings.timezone_name.clone(),
            next_delivery_date: None,
            delivery_targets: targets,
            max_sample_size: settings.max_sample_size,
            enabled: settings.enabled,
            deleted: settings.deleted,
            last_delivered_at: None,
            report_prompt_guidance: settings.report_prompt_guidance.clone(),
            trigger_threshold: settings.trigger_threshold,
            cooldown_minutes: settings.cooldown_minutes,
            daily_run_cap: settings.daily_run_cap,
            created_by: None,
            created_at: now,
        };
        report.next_delivery_date = next_date(&settings, None, now);
        self.ports.reports.insert(&report, user).await?;
        self.ports.reports.find(project, id).await?.ok_or_else(|| anyhow::anyhow!("report vanished").into())
    }

    pub async fn list(
        &self,
        project: ProjectId,
        evaluation: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Report>, ReportError> {
        let evaluation = match evaluation.map(str::trim).filter(|e| !e.is_empty()) {
            None => None,
            // An evaluation filter that is not an id matches nothing.
            Some(raw) => match raw.parse::<EvaluationId>() {
                Ok(id) => Some(id),
                Err(_) => return Ok(Page { items: Vec::new(), total: 0, request: page }),
            },
        };
        Ok(self.ports.reports.list(project, evaluation, page).await?)
    }

    /// A report that is not deleted.
    pub async fn get(&self, project: ProjectId, id: ReportId) -> Result<Report, ReportError> {
        match self.ports.reports.find(project, id).await? {
            Some(report) if !report.deleted => Ok(report),
            _ => Err(ReportError::NotFound),
        }
    }

    /// PUT and PATCH: the sent fields over the stored report (a deleted one too, so
    /// `deleted: false` restores it). The schedule is recomputed when it changed.
    pub async fn update(
        &self,
        project: ProjectId,
        id: ReportId,
        input: ReportInput,
        now: DateTime<Utc>,
    ) -> Result<Report, SaveReportError> {
        let stored = self.ports.reports.find(project, id).await?.ok_or(SaveReportError::NotFound)?;
        if stored.deleted && input.deleted != Some(false) {
            return Err(SaveReportError::NotFound);
        }
        let evaluation_changed = input.evaluation.is_some();
        let settings = settings(input, Some(&stored), &self.config.targets)?;
        if evaluation_changed && settings.evaluation != stored.evaluation {
            self.check_evaluation(project, settings.evaluation).await?;
        }
        let targets = match settings.targets.clone() {
            Some(targets) => self.seal_targets(project, id, targets, &stored.delivery_targets)?,
            None => stored.delivery_targets.clone(),
        };
        let schedule_changed = settings.frequency != stored.frequency
            || settings.rrule != stored.rrule
            || settings.starts_at != stored.starts_at
            || settings.timezone_name != stored.timezone_name
            || (settings.enabled && !stored.enabled);
        let next_delivery_date = if schedule_changed {
            next_date(&settings, stored.last_delivered_at, now)
        } else {
            stored.next_delivery_date
        };
        let report = Report {
            evaluation: settings.evaluation,
            frequency: settings.frequency,
            alert_condition: settings.alert_condition,
            rrule: settings.rrule,
            starts_at: settings.starts_at,
            timezone_name: settings.timezone_name,
            next_delivery_date,
            delivery_targets: targets,
            max_sample_size: settings.max_sample_size,
            enabled: settings.enabled,
            deleted: settings.deleted,
            report_prompt_guidance: settings.report_prompt_guidance,
            trigger_threshold: settings.trigger_threshold,
            cooldown_minutes: settings.cooldown_minutes,
            daily_run_cap: settings.daily_run_cap,
            ..stored
        };
        if !self.ports.reports.save(&report).await? {
            return Err(SaveReportError::NotFound);
        }
        Ok(report)
    }

    async fn check_evaluation(&self, project: ProjectId, evaluation: EvaluationId) -> Result<(), InvalidReport> {
        match self.ports.evaluations.find(project, evaluation).await {
            Ok(Some(found)) if !found.deleted => Ok(()),
            _ => Err(InvalidReport::new("evaluation", "Enter the id of an evaluation of this project.")),
        }
    }

    fn seal_targets(
        &self,
        project: ProjectId,
        report: ReportId,
        targets: Vec<TargetInput>,
        stored: &[DeliveryTarget],
    ) -> Result<Vec<DeliveryTarget>, SaveReportError> {
        let context = SealContext { purpose: SECRET_PURPOSE, project, row: report.0 };
        targets
            .into_iter()
            .enumerate()
            .map(|(index, target)| {
                Ok(match target {
                    TargetInput::Email { addresses } => DeliveryTarget::Email { addresses },
                    TargetInput::Slack { channel, webhook_url, integration_id } => {
                        DeliveryTarget::Slack { channel, webhook_url, integration_id }
                    }
                    TargetInput::Webhook { url, secret: SecretInput::New(secret) } => {
                        use secrecy::ExposeSecret;
                        let masked = mask_api_key(secret.expose_secret());
                        let sealed = self.ports.cipher.seal(&secret, &context).map_err(|e| anyhow::anyhow!(e))?;
                        DeliveryTarget::Webhook { url, secret: StoredSecret { sealed, masked } }
                    }
                    TargetInput::Webhook { url, secret: SecretInput::Masked(mask) } => {
                        let kept = stored.iter().find_map(|t| match t {
                            DeliveryTarget::Webhook { url: stored_url, secret }
                                if secret.masked == mask && *stored_url == url =>
                            {
                                Some(secret.clone())
                            }
                            _ => None,
                        });
                        let secret = kept.ok_or_else(|| {
                            InvalidReport::new(
                                &format!("delivery_targets[{index}].secret"),
                                "Send the secret itself; a masked value only keeps the stored secret of the same URL.",
                            )
                        })?;
                        DeliveryTarget::Webhook { url, secret }
                    }
                })
            })
            .collect()
    }

    // ----- runs -------------------------------------------------------------------

    /// `generate`: a manual run, generated and delivered in the background; calls in the
    /// same minute coalesce into one.
    pub async fn generate(&self, project: ProjectId, id: ReportId, now: DateTime<Utc>) -> Result<(), ReportError> {
        let report = self.get(project, id).await?;
        let key = schedule::manual_run_key(report.id.0, now);
        let payload =
            RunPayload { report: report.id.0, key, trigger: Trigger::Manual, anchor: None, observed_pass_rate: None };
        let job = run_job(project, &payload);
        self.ports.jobs.enqueue(&[job]).await?;
        Ok(())
    }

    /// A report's runs, newest first.
    pub async fn runs(
        &self,
        project: ProjectId,
        id: ReportId,
        page: PageRequest,
    ) -> Result<Page<ReportRun>, ReportError> {
        let report = self.get(project, id).await?;
        Ok(self.ports.runs.runs(project, report.id, page).await?)
    }

    /// The run page's signed link.
    pub fn share_url(&self, run: &ReportRun) -> String {
        let expires = (run.created_at + LINK_LIFETIME).timestamp();
        let signature = self.ports.signer.sign(&link_message(run.id, expires));
        format!("{}/reports/runs/{}?expires={expires}&signature={signature}", self.config.public_url, run.id.0)
    }

    /// The run page's HTML, when the link is signed and not expired (else not found).
    pub async fn page(
        &self,
        run: &str,
        expires: Option<&str>,
        signature: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, ReportError> {
        let (Ok(run_id), Some(Ok(expires)), Some(signature)) =
            (run.parse::<ReportRunId>(), expires.map(str::parse::<i64>), signature)
        else {
            return Err(ReportError::NotFound);
        };
        if expires < now.timestamp() || !self.ports.signer.verify(&link_message(run_id, expires), signature) {
            return Err(ReportError::NotFound);
        }
        let run = self.ports.runs.run(run_id).await?.ok_or(ReportError::NotFound)?;
        let name = self.evaluation_name(&run).await;
        let share_url = self.share_url(&run);
        Ok(render::page_html(RunView { evaluation_name: &name, run: &run, share_url: &share_url }, &run.trend))
    }

    async fn evaluation_name(&self, run: &ReportRun) -> String {
        let evaluation = match self.ports.reports.find(run.project, run.report).await {
            Ok(Some(report)) => self.ports.evaluations.find(run.project, report.evaluation).await.ok().flatten(),
            _ => None,
        };
        evaluation.map_or_else(|| "Deleted evaluation".to_owned(), |e| e.name)
    }

    // ----- the scheduler -------------------------------------------------------------

    /// One scheduler tick: enqueues a run for every report due at `now` (the run keys
    /// make every replica's tick enqueue the same jobs). Returns how many were new.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<u64, crate::RepositoryError> {
        let candidates = self.ports.runs.due_candidates(now).await?;
        let jobs = due_jobs(&candidates, now);
        if jobs.is_empty() {
            return Ok(0);
        }
        self.ports.jobs.enqueue(&jobs).await
    }

    // ----- generating a run ------------------------------------------------------------

    async fn run_job(&self, job: &ClaimedJob) -> JobOutcome {
        let payload: RunPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return JobOutcome::Fail(format!("unreadable report job: {error}")),
        };
        match self.generate_run(job, &payload).await {
            Ok(()) => JobOutcome::Finished,
            Err(error) => JobOutcome::Retry(format!("{error:#}")),
        }
    }

    async fn generate_run(&self, job: &ClaimedJob, payload: &RunPayload) -> anyhow::Result<()> {
        let project = job.project;
        let now = Utc::now();
        let report = self.ports.reports.find(project, ReportId(payload.report)).await?;
        let Some(report) = report.filter(|r| !r.deleted && (r.enabled || payload.trigger == Trigger::Manual)) else {
            self.ports.jobs.complete(&job.lease).await?;
            return Ok(());
        };
        if let Some(anchor) = payload.anchor
            && anchor_of(&report) != anchor
        {
            // Another run moved the report on already (or its schedule changed).
            self.ports.jobs.complete(&job.lease).await?;
            return Ok(());
        }
        let evaluation = self.ports.evaluations.find(project, report.evaluation).await?;
        let period = self.period(&report, payload.trigger, now).await?;
        let current = self.ports.events.counts(project, report.evaluation, period).await?;
        let previous = self.ports.events.counts(project, report.evaluation, period.previous()).await?;
        let metrics = ReportMetrics::of(current, previous, period);
        let span = Period { start: period.previous().start, end: period.end };
        let trend = self.ports.events.trend(project, report.evaluation, span, Bucket::for_period(&period)).await?;

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
        if !self.ports.runs.store_run(&job.lease, &stored).await? {
            tracing::info!(report = %report.id, "a report run was not stored: its period was already run or the lease lapsed");
        }
        Ok(())
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
                        .ports
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
        let Some(llm) = self.ports.llm.choose_for_summary(report.project, evaluation).await? else {
            metadata["fallback_reason"] = json!("No LLM is configured for this project.");
            return Ok(content::fallback(name, metrics, trigger));
        };
        let period = Period { start: metrics.period_start, end: metrics.period_end };
        let sample: Vec<SampledRun> =
            self.ports.events.sample(report.project, evaluation.id, period, report.max_sample_size).await?;
        let (user, included) = content::user_prompt(evaluation, &metrics, &sample, &report.report_prompt_guidance);
        let request = CompletionRequest {
            system: content::SYSTEM.to_owned(),
            user,
            schema_name: content::SCHEMA_NAME.to_owned(),
            schema: content::schema(),
            model: llm.model.clone(),
            max_output_tokens: content::MAX_OUTPUT_TOKENS,
        };
        let deadline = Instant::now() + self.config.llm_timeout;
        metadata["model"] = json!(llm.model);
        metadata["sample_size"] = json!(included);
        match self.ports.llm.complete::<ReportDraft>(report.project, LlmPurpose::Report, &llm, &request, deadline).await
        {
            Ok(draft) => Ok(content::from_draft(draft, metrics, &sample[..included], trigger)),
            Err(error) => {
                tracing::warn!(report = %report.id, %error, "the report's LLM call failed; sending the fallback report");
                metadata["fallback_reason"] = json!(format!("The LLM call failed: {error}"));
                Ok(content::fallback(name, metrics, trigger))
            }
        }
    }

    // ----- delivering a run -------------------------------------------------------------

    async fn delivery_job(&self, job: &ClaimedJob) -> JobOutcome {
        let payload: DeliveryPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return JobOutcome::Fail(format!("unreadable delivery job: {error}")),
        };
        match self.deliver(job, &payload).await {
            Ok(outcome) => outcome,
            Err(error) => JobOutcome::Retry(format!("{error:#}")),
        }
    }

    async fn deliver(&self, job: &ClaimedJob, payload: &DeliveryPayload) -> anyhow::Result<JobOutcome> {
        let run_id = ReportRunId(payload.run);
        let (Some(run), Some(delivery)) = (
            self.ports.runs.run(run_id).await?,
            self.ports.runs.delivery(run_id, payload.target_index, &payload.recipient).await?,
        ) else {
            return Ok(JobOutcome::Complete);
        };
        if delivery.record.state != DeliveryState::Pending {
            // Sent (or given up) by an earlier attempt: never twice.
            return Ok(JobOutcome::Complete);
        }
        let finish = |state, error: Option<String>| async move {
            self.ports
                .runs
                .finish_delivery(
                    &job.lease,
                    run_id,
                    payload.target_index,
                    &payload.recipient,
                    state,
                    error,
                    &JobEnd::Complete,
                )
                .await
        };
        let target = match self.resolve(&run, &delivery.target, &payload.recipient) {
            Ok(target) => target,
            Err(cause) => {
                let line = format!("Failed to deliver to target {}: {cause}", payload.target_index);
                finish(DeliveryState::Failed, Some(line)).await?;
                return Ok(JobOutcome::Finished);
            }
        };
        let name = self.evaluation_name(&run).await;
        let share_url = self.share_url(&run);
        let rendered = render::render(RunView { evaluation_name: &name, run: &run, share_url: &share_url });
        let delivery_id = format!("{}_{}", run.id.0, payload.target_index);
        // The adapter bounds each send by the target timeout.
        let sent = self.ports.delivery.send(&target, &rendered, &delivery_id).await;
        match sent {
            Ok(()) => {
                finish(DeliveryState::Sent, None).await?;
                Ok(JobOutcome::Finished)
            }
            Err(failure) if failure.retryable && job.attempts < MAX_DELIVERY_ATTEMPTS => {
                let delay = retry_delay(self.config.delivery_retry_base, job.attempts);
                Ok(JobOutcome::RetryAfter(delay, target.error_line(&failure.message)))
            }
            Err(failure) => {
                tracing::warn!(run = %run.id, target = target.type_name(), error = %failure.message, "a report delivery failed");
                finish(DeliveryState::Failed, Some(target.error_line(&failure.message))).await?;
                Ok(JobOutcome::Finished)
            }
        }
    }

    fn resolve(&self, run: &ReportRun, target: &DeliveryTarget, recipient: &str) -> Result<ResolvedTarget, String> {
        match target {
            DeliveryTarget::Email { .. } => Ok(ResolvedTarget::Email { address: recipient.to_owned() }),
            DeliveryTarget::Slack { channel, webhook_url, .. } => {
                Ok(ResolvedTarget::Slack { channel: channel.clone(), webhook_url: webhook_url.clone() })
            }
            DeliveryTarget::Webhook { url, secret } => {
                let context = SealContext { purpose: SECRET_PURPOSE, project: run.project, row: run.report.0 };
                let secret: SecretString = self
                    .ports
                    .cipher
                    .open(&secret.sealed, &context)
                    .map_err(|e| format!("the webhook secret cannot be opened ({e})"))?;
                Ok(ResolvedTarget::Webhook { url: url.clone(), secret })
            }
        }
    }
}

fn link_message(run: ReportRunId, expires: i64) -> String {
    format!("{}.{expires}", run.0)
}

fn recurrence_of(report: &Report) -> Option<Recurrence> {
    (report.frequency == Frequency::Scheduled).then(|| schedule::parse_rule(&report.rrule).ok()).flatten()
}

/// The value an automatic run is planned on (see `NewRun::expected_anchor`).
fn anchor_of(report: &Report) -> Option<DateTime<Utc>> {
    match report.frequency {
        Frequency::Scheduled => report.next_delivery_date,
        Frequency::EveryN | Frequency::Alert => report.last_delivered_at,
    }
}

/// The first delivery of a (changed) schedule.
fn next_date(
    settings: &ReportSettings,
    last_delivered_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let rule = settings.recurrence.as_ref()?;
    rule.next_delivery(settings.starts_at?, settings.zone, now, last_delivered_at)
}

fn run_job(project: ProjectId, payload: &RunPayload) -> NewJob {
    NewJob::new(
        project,
        JobKind::ReportRun,
        Some(payload.key.clone()),
        serde_json::to_value(payload).unwrap_or(Value::Null),
        RUN_ATTEMPTS,
    )
}

/// The run jobs of the candidates whose gates let them run at `now` (one scheduler tick
/// between reading the candidates and enqueueing).
pub fn due_jobs(candidates: &[DueCandidate], now: DateTime<Utc>) -> Vec<NewJob> {
    candidates.iter().filter_map(|candidate| due_job(candidate, now)).collect()
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

/// One delivery per target, one per address for e-mail, each with its job.
fn deliveries_of(report: &Report, run: &ReportRun) -> Vec<(NewDelivery, NewJob)> {
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

#[async_trait]
impl JobHandler for ReportService {
    async fn run(&self, job: &ClaimedJob) -> JobOutcome {
        match job.kind {
            Some(JobKind::ReportRun) => self.run_job(job).await,
            Some(JobKind::ReportDelivery) => self.delivery_job(job).await,
            _ => JobOutcome::Fail("not a report job".into()),
        }
    }

    /// A delivery given up on ends `failed` with the reason, and its run's status follows
    /// (spec section 7), in the transaction that fails the job.
    async fn give_up(&self, job: &ClaimedJob, reason: String) -> JobOutcome {
        if job.kind != Some(JobKind::ReportDelivery) {
            return JobOutcome::Fail(reason);
        }
        let Ok(payload) = serde_json::from_value::<DeliveryPayload>(job.payload.clone()) else {
            return JobOutcome::Fail(reason);
        };
        let line = format!("Failed to deliver to target {}: {reason}", payload.target_index);
        let ended = self
            .ports
            .runs
            .finish_delivery(
                &job.lease,
                ReportRunId(payload.run),
                payload.target_index,
                &payload.recipient,
                DeliveryState::Failed,
                Some(line),
                &JobEnd::Fail(reason.clone()),
            )
            .await;
        match ended {
            Ok(_) => JobOutcome::Finished,
            Err(error) => {
                tracing::warn!(job = %job.lease.job, error = %error.0, "recording a given-up delivery failed");
                JobOutcome::Fail(reason)
            }
        }
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
