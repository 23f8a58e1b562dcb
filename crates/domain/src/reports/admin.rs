//! Report administration: create, list, read and change reports (their targets' secrets
//! sealed), ask for a manual run, list a report's runs.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::error::{ReportError, SaveReportError};
use super::input::{ReportInput, ReportSettings, settings};
use super::model::{DeliveryTarget, Report, ReportRun, StoredSecret, Trigger};
use super::ports::{ReportRepository, ReportRunStore};
use super::run_jobs::{RunPayload, SECRET_PURPOSE, run_job};
use super::schedule;
use super::targets::{SecretInput, TargetInput, TargetPolicy};
use crate::crypto::{KeyCipher, SealContext};
use crate::evaluation::EvaluationRepository;
use crate::invalid::{FieldError, Rule};
use crate::jobs::JobQueue;
use crate::provider_key::mask_api_key;
use crate::{EvaluationId, Page, PageRequest, ProjectId, ReportId, UserId};

/// Reports as the API manages them.
pub struct ReportAdmin {
    pub(super) reports: Arc<dyn ReportRepository>,
    pub(super) runs: Arc<dyn ReportRunStore>,
    pub(super) evaluations: Arc<dyn EvaluationRepository>,
    pub(super) jobs: Arc<dyn JobQueue>,
    pub(super) cipher: Arc<dyn KeyCipher>,
    pub(super) targets: TargetPolicy,
}

impl ReportAdmin {
    /// Where the operator lets reports be delivered (what a sent target is checked
    /// against).
    pub fn target_policy(&self) -> &TargetPolicy {
        &self.targets
    }

    pub async fn create(
        &self,
        project: ProjectId,
        user: UserId,
        input: ReportInput,
        now: DateTime<Utc>,
    ) -> Result<Report, SaveReportError> {
        let settings = settings(input, None)?;
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
        self.reports.insert(&report, user).await?;
        self.reports.find(project, id).await?.ok_or_else(|| anyhow::anyhow!("report vanished").into())
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
        Ok(self.reports.list(project, evaluation, page).await?)
    }

    /// A report that is not deleted.
    pub async fn get(&self, project: ProjectId, id: ReportId) -> Result<Report, ReportError> {
        match self.reports.find(project, id).await? {
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
        let stored = self.reports.find(project, id).await?.ok_or(SaveReportError::NotFound)?;
        if stored.deleted && input.deleted != Some(false) {
            return Err(SaveReportError::NotFound);
        }
        let evaluation_changed = input.evaluation.is_some();
        let settings = settings(input, Some(&stored))?;
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
        if !self.reports.save(&report).await? {
            return Err(SaveReportError::NotFound);
        }
        Ok(report)
    }

    async fn check_evaluation(&self, project: ProjectId, evaluation: EvaluationId) -> Result<(), FieldError> {
        match self.evaluations.find(project, evaluation).await {
            Ok(Some(found)) if !found.deleted => Ok(()),
            _ => Err(FieldError::new("evaluation", Rule::NotAnEvaluationOfProject)),
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
                        let sealed = self.cipher.seal(&secret, &context).map_err(|e| anyhow::anyhow!(e))?;
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
                            FieldError::new(format!("delivery_targets[{index}].secret"), Rule::MaskedSecret)
                        })?;
                        DeliveryTarget::Webhook { url, secret }
                    }
                })
            })
            .collect()
    }

    /// `generate`: a manual run, generated and delivered in the background; calls in the
    /// same minute coalesce into one.
    pub async fn generate(&self, project: ProjectId, id: ReportId, now: DateTime<Utc>) -> Result<(), ReportError> {
        let report = self.get(project, id).await?;
        let key = schedule::manual_run_key(report.id.0, now);
        let payload =
            RunPayload { report: report.id.0, key, trigger: Trigger::Manual, anchor: None, observed_pass_rate: None };
        let job = run_job(project, &payload);
        self.jobs.enqueue(&[job]).await?;
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
        Ok(self.runs.runs(project, report.id, page).await?)
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
