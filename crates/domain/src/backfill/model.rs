//! Backfills as stored and asked for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::evaluation::Conditions;
use crate::provider_key::UserSummary;
use crate::{BackfillId, EvaluationId, ProjectId, UserId};

/// Where a backfill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackfillStatus {
    /// Created; its first page is not dispatched yet.
    Queued,
    /// Dispatching, or waiting for the judgements it dispatched.
    Running,
    /// Every target was dispatched and every judgement ended.
    Completed,
    Cancelled,
    /// It could not go on (its evaluation was deleted).
    Failed,
}

impl BackfillStatus {
    pub const ALL: &'static [BackfillStatus] =
        &[Self::Queued, Self::Running, Self::Completed, Self::Cancelled, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|status| status.as_str() == raw)
    }

    /// Queued or running: at most one such backfill per evaluation.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// A stored backfill.
#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    pub id: BackfillId,
    pub project: ProjectId,
    pub evaluation: EvaluationId,
    pub status: BackfillStatus,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// The conditions targets are picked by; `None`: the evaluation's own.
    pub conditions: Option<Conditions>,
    pub rerun_existing: bool,
    /// Targets the conditions pick in the window, counted when it started.
    pub total_count: u64,
    pub dispatched_count: u64,
    /// Already judged, so not dispatched.
    pub skipped_count: u64,
    pub completed_count: u64,
    pub failed_count: u64,
    /// The last target id looked at (targets are dispatched in id order).
    pub cursor: Option<String>,
    pub dispatched_all: bool,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<UserSummary>,
}

impl Backfill {
    /// Every target was looked at and every judgement dispatched has ended.
    pub fn is_done(&self) -> bool {
        self.dispatched_all && self.completed_count + self.failed_count >= self.dispatched_count
    }
}

/// What a backfill (or its estimate) covers: validated by the service.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillRequest {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub conditions: Option<Conditions>,
    pub rerun_existing: bool,
}

/// A backfill to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBackfill {
    pub id: BackfillId,
    pub project: ProjectId,
    pub evaluation: EvaluationId,
    pub request: BackfillRequest,
    /// The targets it will look at (its estimate's `target_count`).
    pub total_count: u64,
    pub created_by: UserId,
}

/// What a backfill would do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Targets in the window that the conditions pick.
    pub target_count: u64,
    /// Of those, judged before.
    pub already_judged_count: u64,
    /// Judgements it would make (the already judged ones aside unless rerun).
    pub llm_calls: u64,
    /// Of those, paid with trial credits.
    pub trial_credits_needed: u64,
}

/// One target a backfill may judge: its id and the properties of its generations in the
/// window (a trace qualifies when any of them matches).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub generations: Vec<Map<String, Value>>,
}

/// How one dispatched judgement ended, for the backfill's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetOutcome {
    /// Judged (or found judged meanwhile).
    Completed,
    Failed,
}

/// What one dispatched page adds to a backfill.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchedPage {
    pub status: BackfillStatus,
    pub cursor: Option<String>,
    pub dispatched_all: bool,
    pub dispatched: u64,
    pub skipped: u64,
}

/// A dispatcher job's payload: one page of one backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchPayload {
    pub backfill: BackfillId,
    pub page: u64,
}
