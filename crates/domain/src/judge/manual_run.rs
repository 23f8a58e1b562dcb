//! `POST evaluation_runs/`: the command, checked by the adapter that received it, and the
//! run it queues.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::EvaluationId;
use crate::jobs::JobId;

/// Judge a stored event again now.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRunCommand {
    pub evaluation: EvaluationId,
    pub target_event: Uuid,
    /// When the event happened: its lookup is narrowed to that day.
    pub at: Option<DateTime<Utc>>,
    /// The event's name; `$ai_generation` when none is given.
    pub event: Option<String>,
    /// Narrows the lookup to this person.
    pub distinct_id: Option<String>,
}

/// A queued manual run.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRun {
    pub job: JobId,
    pub evaluation: EvaluationId,
    pub evaluation_name: String,
    pub target_event_id: Uuid,
}
