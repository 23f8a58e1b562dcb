//! Delivering a run: one delivery per target (per address for e-mail), the run's status
//! from its deliveries, the retry plan, and the error lines users read.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::model::DeliveryStatus;
use crate::ReportRunId;

/// One try and three retries.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 4;
/// The most one target may take.
pub const TARGET_TIMEOUT: Duration = Duration::from_secs(10);

/// The wait before retry `k` (1-based): base × 4^(k-1).
pub fn retry_delay(base: Duration, retry: u32) -> Duration {
    base.saturating_mul(4u32.saturating_pow(retry.saturating_sub(1).min(8)))
}

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Sent,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }
}

/// One delivery of a run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The target's index in the report's `delivery_targets` (the `webhook-id` suffix).
    pub target_index: u32,
    /// The e-mail address, or "" for Slack and webhooks.
    pub recipient: String,
    pub state: DeliveryState,
    /// The error line once failed for good.
    pub error: Option<String>,
}

/// A delivery's end as its job records it: which run, and the delivery's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedDelivery {
    pub run: ReportRunId,
    pub record: DeliveryRecord,
}

/// The run's `delivery_status` and `delivery_errors` from its deliveries: none ⇒
/// pending; any still pending ⇒ pending; all failed ⇒ failed; some ⇒ partial_failure;
/// else delivered.
pub fn run_status(records: &[DeliveryRecord]) -> (DeliveryStatus, Vec<String>) {
    let errors: Vec<String> = records.iter().filter_map(|r| r.error.clone()).collect();
    if records.is_empty() || records.iter().any(|r| r.state == DeliveryState::Pending) {
        return (DeliveryStatus::Pending, errors);
    }
    let failed = records.iter().filter(|r| r.state == DeliveryState::Failed).count();
    let status = match failed {
        0 => DeliveryStatus::Delivered,
        n if n == records.len() => DeliveryStatus::Failed,
        _ => DeliveryStatus::PartialFailure,
    };
    (status, errors)
}

/// A target resolved for sending (its secret opened).
#[derive(Debug, Clone)]
pub enum ResolvedTarget {
    Email { address: String },
    Slack { channel: String, webhook_url: Option<String> },
    Webhook { url: String, secret: SecretString },
}

impl ResolvedTarget {
    /// The line `delivery_errors` shows when this target failed.
    pub fn error_line(&self, cause: &str) -> String {
        match self {
            Self::Email { address } => format!("Failed to send email to {address}: {cause}"),
            Self::Slack { channel, .. } if !channel.is_empty() => {
                format!("Failed to send Slack message to {channel}: {cause}")
            }
            Self::Slack { .. } => format!("Failed to send Slack message: {cause}"),
            Self::Webhook { url, .. } => format!("Failed to deliver webhook to {url}: {cause}"),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Slack { .. } => "slack",
            Self::Webhook { .. } => "webhook",
        }
    }
}

/// Why a send failed: the channel adapter's description of what the far side did (no
/// secrets), shown in `delivery_errors`; `retryable` unless another try would fail the
/// same way (a refused recipient, a 4xx from Slack).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cause}")]
pub struct SendFailure {
    pub cause: String,
    pub retryable: bool,
}

impl SendFailure {
    pub fn retry(cause: impl Into<String>) -> Self {
        Self { cause: cause.into(), retryable: true }
    }

    pub fn permanent(cause: impl Into<String>) -> Self {
        Self { cause: cause.into(), retryable: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: DeliveryState, error: Option<&str>) -> DeliveryRecord {
        DeliveryRecord { target_index: 0, recipient: String::new(), state, error: error.map(str::to_owned) }
    }

    #[test]
    fn status_rules() {
        use DeliveryState::*;
        assert_eq!(run_status(&[]).0, DeliveryStatus::Pending);
        assert_eq!(run_status(&[record(Sent, None), record(Pending, None)]).0, DeliveryStatus::Pending);
        assert_eq!(run_status(&[record(Sent, None), record(Sent, None)]).0, DeliveryStatus::Delivered);
        let (status, errors) =
            run_status(&[record(Sent, None), record(Failed, Some("Failed to send email to a@b.c: no"))]);
        assert_eq!(status, DeliveryStatus::PartialFailure);
        assert_eq!(errors, vec!["Failed to send email to a@b.c: no".to_owned()]);
        assert_eq!(run_status(&[record(Failed, Some("x")), record(Failed, Some("y"))]).0, DeliveryStatus::Failed);
    }

    #[test]
    fn retries_wait_base_times_four_to_the_k_minus_one() {
        let base = Duration::from_secs(30);
        assert_eq!(retry_delay(base, 1), Duration::from_secs(30));
        assert_eq!(retry_delay(base, 2), Duration::from_secs(120));
        assert_eq!(retry_delay(base, 3), Duration::from_secs(480));
    }

    #[test]
    fn error_lines_name_the_target() {
        let email = ResolvedTarget::Email { address: "a@b.io".into() };
        assert_eq!(email.error_line("refused"), "Failed to send email to a@b.io: refused");
        let slack = ResolvedTarget::Slack { channel: "#evals".into(), webhook_url: None };
        assert_eq!(slack.error_line("HTTP 404"), "Failed to send Slack message to #evals: HTTP 404");
    }
}
