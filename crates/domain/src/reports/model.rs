//! Evaluation reports and their runs, as the domain holds them (spec section 7).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::SealedSecret;
use crate::provider_key::UserSummary;
use crate::{EvaluationId, ProjectId, ReportId, ReportRunId};

/// Default `max_sample_size`.
pub const DEFAULT_MAX_SAMPLE_SIZE: u32 = 200;
/// Default `trigger_threshold` (every_n).
pub const DEFAULT_TRIGGER_THRESHOLD: u32 = 100;
/// Default `cooldown_minutes`; also its floor.
pub const MIN_COOLDOWN_MINUTES: u32 = 60;
/// Default `daily_run_cap`.
pub const DEFAULT_DAILY_RUN_CAP: u32 = 10;

/// When a report runs by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// On the occurrences of an RFC 5545 rule.
    Scheduled,
    /// Every `trigger_threshold` new evaluation results.
    EveryN,
    /// When the pass rate crosses `alert_condition` (beyond the reference).
    Alert,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::EveryN => "every_n",
            Self::Alert => "alert",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Scheduled, Self::EveryN, Self::Alert].into_iter().find(|f| f.as_str() == raw)
    }
}

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertOperator {
    /// Fire when the pass rate falls below the threshold.
    Lt,
    /// Fire when it rises above (evaluations where passing is the bad case).
    Gt,
}

impl AlertOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "lt",
            Self::Gt => "gt",
        }
    }
}

/// An alert report's condition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertCondition {
    pub operator: AlertOperator,
    /// 0..=100.
    pub pass_rate: f64,
    /// Pass + fail results the window needs before the rate means anything.
    pub min_runs: u32,
    pub window_minutes: u32,
}

/// A webhook secret as stored: sealed, with the mask the API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub sealed: SealedSecret,
    pub masked: String,
}

/// Where a report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryTarget {
    /// One e-mail per address.
    Email { addresses: Vec<String> },
    /// A Slack incoming webhook (an `integration_id` is kept but cannot be sent to here).
    Slack { channel: String, webhook_url: Option<String>, integration_id: Option<String> },
    /// A JSON POST signed the Standard Webhooks way.
    Webhook { url: String, secret: StoredSecret },
}

impl DeliveryTarget {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Slack { .. } => "slack",
            Self::Webhook { .. } => "webhook",
        }
    }
}

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub id: ReportId,
    pub project: ProjectId,
    pub evaluation: EvaluationId,
    pub frequency: Frequency,
    pub alert_condition: Option<AlertCondition>,
    /// "" unless scheduled.
    pub rrule: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub timezone_name: String,
    pub next_delivery_date: Option<DateTime<Utc>>,
    pub delivery_targets: Vec<DeliveryTarget>,
    pub max_sample_size: u32,
    pub enabled: bool,
    pub deleted: bool,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub report_prompt_guidance: String,
    pub trigger_threshold: u32,
    pub cooldown_minutes: u32,
    pub daily_run_cap: u32,
    pub created_by: Option<UserSummary>,
    pub created_at: DateTime<Utc>,
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Scheduled,
    EveryN,
    Alert,
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::EveryN => "every_n",
            Self::Alert => "alert",
            Self::Manual => "manual",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Scheduled, Self::EveryN, Self::Alert, Self::Manual].into_iter().find(|t| t.as_str() == raw)
    }

    /// Automatic runs move the schedule; manual ones move nothing.
    pub fn is_automatic(self) -> bool {
        self != Self::Manual
    }

    pub fn of(frequency: Frequency) -> Self {
        match frequency {
            Frequency::Scheduled => Self::Scheduled,
            Frequency::EveryN => Self::EveryN,
            Frequency::Alert => Self::Alert,
        }
    }
}

/// The numbers of a report, from SQL.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReportMetrics {
    pub total_runs: u64,
    pub pass_count: u64,
    pub fail_count: u64,
    pub na_count: u64,
    /// pass / (pass + fail) × 100, 2 decimals; 0 when nothing applies.
    pub pass_rate: f64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub previous_total_runs: u64,
    pub previous_pass_rate: f64,
}

/// Pass / fail / n/a counts of one stretch of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultCounts {
    pub pass: u64,
    pub fail: u64,
    pub na: u64,
}

impl ResultCounts {
    pub fn total(&self) -> u64 {
        self.pass + self.fail + self.na
    }

    /// pass / (pass + fail) × 100 rounded to 2 decimals; 0 when nothing applies.
    pub fn pass_rate(&self) -> f64 {
        let applicable = self.pass + self.fail;
        if applicable == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = self.pass as f64 / applicable as f64 * 100.0;
        (rate * 100.0).round() / 100.0
    }
}

impl ReportMetrics {
    pub fn of(current: ResultCounts, previous: ResultCounts, period: Period) -> Self {
        Self {
            total_runs: current.total(),
            pass_count: current.pass,
            fail_count: current.fail,
            na_count: current.na,
            pass_rate: current.pass_rate(),
            period_start: period.start,
            period_end: period.end,
            previous_total_runs: previous.total(),
            previous_pass_rate: previous.pass_rate(),
        }
    }
}

/// A half-open stretch of time [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// The period of equal length just before this one.
    pub fn previous(&self) -> Self {
        let length = self.end - self.start;
        Self { start: self.start - length, end: self.start }
    }
}

/// One section of a report (markdown content, untrusted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub content: String,
}

/// A generation the report points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub generation_id: String,
    pub trace_id: String,
    pub reason: String,
}

/// What a report says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportContent {
    pub title: String,
    pub sections: Vec<Section>,
    pub citations: Vec<Citation>,
    pub metrics: ReportMetrics,
}

/// A pass-rate trend point (for the run page's chart).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub bucket: DateTime<Utc>,
    pub pass: u64,
    pub fail: u64,
}

/// How a run's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    PartialFailure,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::PartialFailure => "partial_failure",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::PartialFailure, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRun {
    pub id: ReportRunId,
    pub project: ProjectId,
    pub report: ReportId,
    pub content: ReportContent,
    pub metadata: serde_json::Value,
    pub period: Period,
    pub delivery_status: DeliveryStatus,
    pub delivery_errors: Vec<String>,
    pub trend: Vec<TrendPoint>,
    pub created_at: DateTime<Utc>,
}

impl ReportRun {
    /// What started it (`metadata.trigger`).
    pub fn trigger(&self) -> Option<Trigger> {
        self.metadata.get("trigger").and_then(serde_json::Value::as_str).and_then(Trigger::parse)
    }
}
