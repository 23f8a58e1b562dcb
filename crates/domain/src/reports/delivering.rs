//! Delivering a run to one target (the `report_delivery` job): never sent twice, retried
//! with backoff while the failure is worth retrying, and a delivery given up on ends
//! `failed` with its reason.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use super::delivery::{DeliveryState, MAX_DELIVERY_ATTEMPTS, ResolvedTarget, retry_delay};
use super::model::{DeliveryTarget, ReportRun};
use super::pages::RunPages;
use super::ports::{ReportDelivery, ReportRunStore};
use super::render::{self, RunView};
use super::run_jobs::{DeliveryPayload, SECRET_PURPOSE};
use super::run_writes::RunWrites;
use crate::ReportRunId;
use crate::crypto::{KeyCipher, SealContext};
use crate::jobs::{ClaimedJob, JobEnd, JobHandler, JobKind, JobOutcome};

/// The handler of `report_delivery` jobs.
pub struct RunDeliveries {
    pub(super) runs: Arc<dyn ReportRunStore>,
    pub(super) writes: Arc<dyn RunWrites>,
    pub(super) delivery: Arc<dyn ReportDelivery>,
    pub(super) cipher: Arc<dyn KeyCipher>,
    pub(super) pages: Arc<RunPages>,
    /// `LLMA_DELIVERY_RETRY_BASE_SECS`.
    pub(super) retry_base: Duration,
}

impl RunDeliveries {
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
        let (Some(run), Some(delivery)) =
            (self.runs.run(run_id).await?, self.runs.delivery(run_id, payload.target_index, &payload.recipient).await?)
        else {
            return Ok(JobOutcome::Complete);
        };
        if delivery.record.state != DeliveryState::Pending {
            // Sent (or given up) by an earlier attempt: never twice.
            return Ok(JobOutcome::Complete);
        }
        let finish = |state, error: Option<String>| async move {
            self.writes.finish_delivery(&job.lease, payload.ended(state, error), &JobEnd::Complete).await
        };
        let target = match self.resolve(&run, &delivery.target, &payload.recipient) {
            Ok(target) => target,
            Err(cause) => {
                let line = format!("Failed to deliver to target {}: {cause}", payload.target_index);
                finish(DeliveryState::Failed, Some(line)).await?;
                return Ok(JobOutcome::Finished);
            }
        };
        let name = self.pages.evaluation_name(&run).await;
        let share_url = self.pages.share_url(&run);
        let rendered = render::render(RunView { evaluation_name: &name, run: &run, share_url: &share_url });
        let delivery_id = format!("{}_{}", run.id.0, payload.target_index);
        // The adapter bounds each send by the target timeout.
        let sent = self.delivery.send(&target, &rendered, &delivery_id).await;
        match sent {
            Ok(()) => {
                finish(DeliveryState::Sent, None).await?;
                Ok(JobOutcome::Finished)
            }
            Err(failure) if failure.retryable && job.attempts < MAX_DELIVERY_ATTEMPTS => {
                let delay = retry_delay(self.retry_base, job.attempts);
                Ok(JobOutcome::RetryAfter(delay, target.error_line(&failure.cause)))
            }
            Err(failure) => {
                tracing::warn!(run = %run.id, target = target.type_name(), error = %failure.cause, "a report delivery failed");
                finish(DeliveryState::Failed, Some(target.error_line(&failure.cause))).await?;
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
                    .cipher
                    .open(&secret.sealed, &context)
                    .map_err(|e| format!("the webhook secret cannot be opened ({e})"))?;
                Ok(ResolvedTarget::Webhook { url: url.clone(), secret })
            }
        }
    }
}

#[async_trait]
impl JobHandler for RunDeliveries {
    async fn run(&self, job: &ClaimedJob) -> JobOutcome {
        match job.kind {
            Some(JobKind::ReportDelivery) => self.delivery_job(job).await,
            _ => JobOutcome::Fail("not a report delivery job".into()),
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
            .writes
            .finish_delivery(
                &job.lease,
                payload.ended(DeliveryState::Failed, Some(line)),
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
