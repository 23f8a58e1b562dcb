//! An experiment's items: the request, the validated query, and one answer row.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The most (item, metric, version) groups one answer holds, as in the reference.
pub const MAX_EXPERIMENT_ITEMS: u32 = 20_000;

/// An experiment id (`$ai_experiment_id`): trimmed, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentId(String);

impl ExperimentId {
    /// `None` when blank.
    pub fn parse(raw: &str) -> Option<Self> {
        let id = raw.trim();
        (!id.is_empty()).then(|| Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which items to list, as the event store runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentItemsQuery {
    pub experiment_id: ExperimentId,
    /// Inclusive lower bound on the event time.
    pub date_from: Option<DateTime<Utc>>,
    /// Inclusive upper bound on the event time.
    pub date_to: Option<DateTime<Utc>>,
    /// The most groups to return.
    pub limit: u32,
}

/// One (item, metric name, metric version) group with the latest non-null value of each
/// column. Values are the JSON the SDK sent (a score stays a number); names and ids
/// that group or join are text.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentItem {
    pub item_id: String,
    pub experiment_item_name: Option<Value>,
    pub experiment_name: Option<Value>,
    pub metric_name: Option<String>,
    pub metric_version: Option<String>,
    pub status: Option<Value>,
    pub score: Option<Value>,
    pub score_min: Option<Value>,
    pub score_max: Option<Value>,
    pub result_type: Option<Value>,
    pub reasoning: Option<Value>,
    pub trace_id: Option<String>,
    pub dataset_id: Option<Value>,
    pub dataset_item_id: Option<Value>,
    /// The latest `$ai_input` of the trace (see `AiEventStore::experiment_items`).
    pub input: Option<Value>,
    /// The latest `$ai_output` of the trace.
    pub output: Option<Value>,
    pub expected: Option<Value>,
    /// The group's newest event.
    pub last_seen_at: DateTime<Utc>,
}
