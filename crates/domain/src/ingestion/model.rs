//! What ingestion produces: validated AI events ready to store, and what a batch did.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The name of an event this service keeps: starts with `$ai_` (`$ai_generation`,
/// `$ai_trace`, `$ai_span`, `$ai_embedding`, `$ai_evaluation`, `$ai_metric`,
/// `$ai_feedback`, and whatever `$ai_*` kind the SDKs add next), at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AiEventName(String);

impl AiEventName {
    /// The prefix every kept event name has.
    pub const PREFIX: &'static str = "$ai_";
    /// The longest name kept (PostHog's capture has the same bound).
    pub const MAX_CHARS: usize = 200;

    /// `$ai_generation` events: one LLM call.
    pub const GENERATION: &'static str = "$ai_generation";
    /// `$ai_evaluation` events: one judgement of a generation or of an experiment item.
    pub const EVALUATION: &'static str = "$ai_evaluation";
    /// `$ai_embedding` events: one embedding call.
    pub const EMBEDDING: &'static str = "$ai_embedding";
    /// `$ai_trace` events: a whole trace's root, with its total latency.
    pub const TRACE: &'static str = "$ai_trace";

    /// `Some` for an AI event name; `None` for any other event (which ingestion drops).
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.starts_with(Self::PREFIX) && raw.len() > Self::PREFIX.len() && raw.chars().count() <= Self::MAX_CHARS)
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AiEventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One AI event as the SDK sent it, validated, with its timestamp resolved (clock skew
/// corrected, absurd values clamped) and NUL characters removed from every string (they
/// cannot be stored in PostgreSQL's `jsonb`/`text`).
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingEvent {
    /// The SDK's event uuid: the idempotency key within a project.
    pub uuid: Uuid,
    pub event: AiEventName,
    /// The person (or `$process_person_profile=false` id) the event is about; ≤ 200 chars.
    pub distinct_id: String,
    /// When the event happened, in server time.
    pub timestamp: DateTime<Utc>,
    /// Every property as sent (including `$ai_*` ones that later reads filter on).
    pub properties: Map<String, Value>,
}

impl IncomingEvent {
    /// A property that is a non-empty string (or a number, as text): how ids such as
    /// `$ai_trace_id` are read.
    pub fn text_property(&self, key: &str) -> Option<String> {
        match self.properties.get(key)? {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }
}

/// What ingesting one OpenTelemetry export did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpansOutcome {
    /// AI spans stored now as events.
    pub stored: u64,
    /// AI spans stored before (same trace and span id): a re-sent export.
    pub duplicates: u64,
    /// Spans that are not AI calls, ignored by design.
    pub ignored: u64,
    /// Spans dropped as invalid (no valid trace or span id): OTLP's partial success.
    pub rejected: u64,
    /// Stored generations naming a model no price is known for (no cost stamped).
    pub unpriced: u64,
}

/// What ingesting one request did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// AI events stored now.
    pub stored: u64,
    /// AI events already stored before (same project and uuid): a re-sent batch.
    pub duplicates: u64,
    /// Events that are not AI events, dropped by design.
    pub dropped: u64,
    /// Stored generations naming a model no price is known for (no cost stamped).
    pub unpriced: u64,
}
