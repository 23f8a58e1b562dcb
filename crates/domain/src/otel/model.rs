//! A span as OTLP carries it, with attribute values as JSON (strings, numbers, booleans,
//! arrays; OTLP's key-value lists as objects).

use serde::Deserialize;
use serde_json::{Map, Value};

/// One finished span.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Span {
    pub name: String,
    /// 32 lower-case hex characters.
    pub trace_id: String,
    /// 16 lower-case hex characters.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Map<String, Value>,
    /// The resource's attributes (the process that emitted the span).
    pub resource: Map<String, Value>,
    #[serde(default)]
    pub events: Vec<SpanEvent>,
    #[serde(default)]
    pub status: SpanStatus,
}

/// A span event (the older GenAI conventions put messages in them).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct SpanEvent {
    pub name: String,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// Whether the span ended in error, and the status message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SpanStatus {
    pub error: bool,
    #[serde(default)]
    pub message: String,
}
