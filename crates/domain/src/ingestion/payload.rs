//! The capture payloads the analytics SDKs send, parsed into [`IncomingEvent`]s.
//!
//! Three shapes reach `/batch/`, `/e/`, `/capture/` and `/i/v0/e/`:
//! - one event: `{"api_key"|"token", "event", "properties", "distinct_id", "timestamp",
//!   "uuid", "offset", "sent_at", ...}`;
//! - a batch: `{"api_key"|"token", "batch": [event, ...], "sent_at"}`;
//! - a bare array of events.
//!
//! The project token is the batch's `api_key`/`token`, else the events' own
//! `api_key`/`token`/`properties.token` (which must then all agree). Parsing is in two
//! steps so that the caller authenticates the token before it validates the events.
//! A batch is all or nothing: one malformed event rejects it whole, naming the event
//! (`batch[3].event`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::model::{AiEventName, IncomingEvent};
use super::timestamp::{ClientTime, parse_iso8601, resolve};

/// The longest `distinct_id` kept; longer ones are cut (as PostHog's capture does).
pub const MAX_DISTINCT_ID_CHARS: usize = 200;

/// Why a payload is refused (400). `attr` names the offending field, e.g. `batch[3].event`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not JSON.
    #[error("malformed JSON at line {line} column {column}")]
    Json { line: usize, column: usize },
    /// JSON, but not a capture payload.
    #[error("{attr:?}: {problem:?}")]
    Invalid { attr: Option<String>, problem: PayloadProblem },
}

/// What is wrong with a JSON body that is not a capture payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadProblem {
    /// Neither an event, a `{api_key, batch}` object nor an array of events.
    NotAPayload,
    BatchNotAnArray,
    EmptyBatch,
    /// The events carry different project tokens.
    MixedTokens,
    EventNotAnObject,
    NameMissing,
    NameNotAString,
    PropertiesNotAnObject,
    DistinctIdMissing,
    UuidInvalid,
    UuidNotAString,
    TimeInvalid,
    TimeNotAString,
    OffsetNotWhole,
}

impl PayloadError {
    fn invalid(attr: &str, problem: PayloadProblem) -> Self {
        Self::Invalid { attr: (!attr.is_empty()).then(|| attr.to_owned()), problem }
    }

    /// The field at fault, if one is.
    pub fn attr(&self) -> Option<&str> {
        match self {
            Self::Json { .. } => None,
            Self::Invalid { attr, .. } => attr.as_deref(),
        }
    }
}

/// Which of the three shapes the payload had; decides how fields are named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Single,
    Batch,
    Array,
}

/// A payload whose structure is known, its events not yet validated.
#[derive(Debug)]
pub struct CapturePayload {
    shape: Shape,
    token: Option<String>,
    sent_at: Option<Value>,
    events: Vec<Value>,
}

/// The events of a payload: the AI ones validated, the others counted.
#[derive(Debug, Default)]
pub struct ParsedEvents {
    pub events: Vec<IncomingEvent>,
    /// Well-formed events that are not AI events.
    pub dropped: u64,
}

fn non_empty_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    }
}

/// An event's own token: `api_key`, `token`, or `properties.token`.
fn event_token(event: &Value) -> Option<String> {
    non_empty_string(event.get("api_key"))
        .or_else(|| non_empty_string(event.get("token")))
        .or_else(|| non_empty_string(event.get("properties").and_then(|p| p.get("token"))))
}

impl CapturePayload {
    /// Parses the JSON and finds the project token. Fails on bytes that are not JSON, on
    /// JSON that is not an object or array, on a `batch` that is not a non-empty array,
    /// and on events that name different tokens.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| PayloadError::Json { line: error.line(), column: error.column() })?;
        let payload = match value {
            Value::Object(mut object) => match object.remove("batch") {
                Some(Value::Array(events)) => {
                    let token =
                        non_empty_string(object.get("api_key")).or_else(|| non_empty_string(object.get("token")));
                    Self { shape: Shape::Batch, token, sent_at: object.remove("sent_at"), events }
                }
                Some(_) => return Err(PayloadError::invalid("batch", PayloadProblem::BatchNotAnArray)),
                None => {
                    let event = Value::Object(object);
                    let token = event_token(&event);
                    Self { shape: Shape::Single, token, sent_at: None, events: vec![event] }
                }
            },
            Value::Array(events) => Self { shape: Shape::Array, token: None, sent_at: None, events },
            _ => {
                return Err(PayloadError::invalid("", PayloadProblem::NotAPayload));
            }
        };
        if payload.events.is_empty() {
            let attr = if payload.shape == Shape::Batch { "batch" } else { "" };
            return Err(PayloadError::invalid(attr, PayloadProblem::EmptyBatch));
        }
        payload.with_event_tokens()
    }

    /// Without a batch-level token, the events' tokens decide; they must agree.
    fn with_event_tokens(mut self) -> Result<Self, PayloadError> {
        if self.token.is_some() {
            return Ok(self);
        }
        let mut found: Option<String> = None;
        for (index, event) in self.events.iter().enumerate() {
            if let Some(token) = event_token(event) {
                match &found {
                    Some(first) if *first != token => {
                        return Err(PayloadError::invalid(&self.event_path(index), PayloadProblem::MixedTokens));
                    }
                    Some(_) => {}
                    None => found = Some(token),
                }
            }
        }
        self.token = found;
        Ok(self)
    }

    /// The project token, if the payload carries one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn event_path(&self, index: usize) -> String {
        event_path(self.shape, index)
    }

    /// Validates every event (all of them, AI or not: a batch is stored whole or not at
    /// all) and keeps the AI ones, their timestamps resolved against `now` (the moment
    /// the request arrived).
    pub fn into_events(self, now: DateTime<Utc>) -> Result<ParsedEvents, PayloadError> {
        let batch_sent_at = match &self.sent_at {
            Some(value) => parse_time(value, "sent_at")?,
            None => None,
        };
        let mut parsed = ParsedEvents { events: Vec::with_capacity(self.events.len()), dropped: 0 };
        for (index, event) in self.events.into_iter().enumerate() {
            match parse_event(event, &event_path(self.shape, index), batch_sent_at, now)? {
                Some(event) => parsed.events.push(event),
                None => parsed.dropped += 1,
            }
        }
        Ok(parsed)
    }
}

/// How an event is named in errors: `batch[3]`, `[3]`, or nothing for a single event.
fn event_path(shape: Shape, index: usize) -> String {
    match shape {
        Shape::Single => String::new(),
        Shape::Batch => format!("batch[{index}]"),
        Shape::Array => format!("[{index}]"),
    }
}

fn field(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

/// An optional ISO 8601 field; `null` counts as absent.
fn parse_time(value: &Value, attr: &str) -> Result<Option<DateTime<Utc>>, PayloadError> {
    match value {
        Value::Null => Ok(None),
        Value::String(raw) => {
            parse_iso8601(raw).map(Some).ok_or_else(|| PayloadError::invalid(attr, PayloadProblem::TimeInvalid))
        }
        _ => Err(PayloadError::invalid(attr, PayloadProblem::TimeNotAString)),
    }
}

/// One event, validated; `None` when it is well formed but not an AI event.
fn parse_event(
    event: Value,
    path: &str,
    batch_sent_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<IncomingEvent>, PayloadError> {
    let Value::Object(mut event) = event else {
        let attr = if path.is_empty() { "" } else { path };
        return Err(PayloadError::invalid(attr, PayloadProblem::EventNotAnObject));
    };

    let name_attr = field(path, "event");
    let name = match event.get("event") {
        None | Some(Value::Null) => {
            return Err(PayloadError::invalid(&name_attr, PayloadProblem::NameMissing));
        }
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        Some(_) => {
            return Err(PayloadError::invalid(&name_attr, PayloadProblem::NameNotAString));
        }
    };

    let properties_attr = field(path, "properties");
    let mut properties = match event.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(properties)) => properties,
        Some(_) => {
            return Err(PayloadError::invalid(&properties_attr, PayloadProblem::PropertiesNotAnObject));
        }
    };

    let distinct_attr = field(path, "distinct_id");
    let distinct_id = [
        event.get("distinct_id"),
        event.get("$distinct_id"),
        properties.get("distinct_id"),
        properties.get("$distinct_id"),
    ]
    .into_iter()
    .flatten()
    .find_map(|value| match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    })
    .ok_or_else(|| PayloadError::invalid(&distinct_attr, PayloadProblem::DistinctIdMissing))?;

    let uuid_attr = field(path, "uuid");
    let uuid = match event.get("uuid") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(
            Uuid::parse_str(raw.trim()).map_err(|_| PayloadError::invalid(&uuid_attr, PayloadProblem::UuidInvalid))?,
        ),
        Some(_) => return Err(PayloadError::invalid(&uuid_attr, PayloadProblem::UuidNotAString)),
    };

    let timestamp = parse_time(event.get("timestamp").unwrap_or(&Value::Null), &field(path, "timestamp"))?;
    let own_sent_at = parse_time(event.get("sent_at").unwrap_or(&Value::Null), &field(path, "sent_at"))?;
    let offset_attr = field(path, "offset");
    let offset_ms = match event.get("offset") {
        None | Some(Value::Null) => None,
        Some(Value::Number(number)) => {
            Some(number.as_i64().ok_or_else(|| PayloadError::invalid(&offset_attr, PayloadProblem::OffsetNotWhole))?)
        }
        Some(_) => return Err(PayloadError::invalid(&offset_attr, PayloadProblem::OffsetNotWhole)),
    };

    let Some(name) = AiEventName::parse(&name) else {
        return Ok(None);
    };

    // `$ignore_sent_at`: the SDK knows its `sent_at` is meaningless (e.g. an import).
    let ignore_sent_at = properties.get("$ignore_sent_at") == Some(&Value::Bool(true));
    let sent_at = if ignore_sent_at { None } else { own_sent_at.or(batch_sent_at) };
    let timestamp = resolve(now, ClientTime { timestamp, sent_at, offset_ms });

    strip_nul_map(&mut properties);
    Ok(Some(IncomingEvent {
        uuid: uuid.unwrap_or_else(Uuid::now_v7),
        event: AiEventName::parse(&strip_nul(name.as_str())).unwrap_or(name),
        distinct_id: strip_nul(&distinct_id).chars().take(MAX_DISTINCT_ID_CHARS).collect(),
        timestamp,
        properties,
    }))
}

/// PostgreSQL cannot store U+0000 in `text` or `jsonb`; it becomes U+FFFD.
pub(crate) fn strip_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

fn strip_nul_value(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('\0') => *text = strip_nul(text),
        Value::Array(items) => items.iter_mut().for_each(strip_nul_value),
        Value::Object(map) => strip_nul_map(map),
        _ => {}
    }
}

pub(crate) fn strip_nul_map(map: &mut Map<String, Value>) {
    if map.keys().any(|key| key.contains('\0')) {
        for (key, mut value) in std::mem::take(map) {
            strip_nul_value(&mut value);
            map.insert(strip_nul(&key), value);
        }
    } else {
        map.values_mut().for_each(strip_nul_value);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        parse_iso8601("2026-03-04T12:00:00Z").unwrap()
    }

    fn parse(body: Value) -> Result<CapturePayload, PayloadError> {
        CapturePayload::parse(body.to_string().as_bytes())
    }

    fn events(body: Value) -> Result<ParsedEvents, PayloadError> {
        parse(body)?.into_events(now())
    }

    fn generation(distinct_id: &str) -> Value {
        json!({"event": "$ai_generation", "distinct_id": distinct_id, "properties": {"$ai_model": "gpt-5-mini"}})
    }

    #[test]
    fn a_single_event_finds_its_token_in_api_key_token_or_properties() {
        for body in [
            json!({"api_key": "phc_a", "event": "$ai_trace", "distinct_id": "u"}),
            json!({"token": "phc_a", "event": "$ai_trace", "distinct_id": "u"}),
            json!({"event": "$ai_trace", "distinct_id": "u", "properties": {"token": "phc_a"}}),
        ] {
            let payload = parse(body.clone()).unwrap();
            assert_eq!(payload.token(), Some("phc_a"), "{body}");
            assert_eq!(payload.into_events(now()).unwrap().events.len(), 1);
        }
        assert_eq!(parse(json!({"event": "$ai_trace", "distinct_id": "u"})).unwrap().token(), None);
        assert_eq!(parse(json!({"api_key": "  ", "event": "$ai_trace", "distinct_id": "u"})).unwrap().token(), None);
    }

    #[test]
    fn a_batch_uses_its_own_token_else_the_events_which_must_agree() {
        let batch = json!({"api_key": "phc_batch", "batch": [generation("a"), generation("b")]});
        assert_eq!(parse(batch).unwrap().token(), Some("phc_batch"));

        let array =
            json!([{"event": "$ai_span", "distinct_id": "u", "properties": {"token": "phc_x"}}, generation("u")]);
        assert_eq!(parse(array).unwrap().token(), Some("phc_x"));

        let mixed = json!([
            {"event": "$ai_span", "distinct_id": "u", "api_key": "phc_x"},
            {"event": "$ai_span", "distinct_id": "u", "api_key": "phc_y"}
        ]);
        let error = parse(mixed).unwrap_err();
        assert_eq!(error, PayloadError::Invalid { attr: Some("[1]".into()), problem: PayloadProblem::MixedTokens });
    }

    #[test]
    fn non_json_and_non_payloads_are_refused() {
        assert!(matches!(CapturePayload::parse(b"{\"batch\": ["), Err(PayloadError::Json { .. })));
        assert!(matches!(CapturePayload::parse(b"\"hello\""), Err(PayloadError::Invalid { attr: None, .. })));
        assert_eq!(parse(json!({"api_key": "k", "batch": {}})).unwrap_err().attr(), Some("batch"));
        assert_eq!(parse(json!({"api_key": "k", "batch": []})).unwrap_err().attr(), Some("batch"));
        assert!(parse(json!([])).is_err());
    }

    #[test]
    fn the_first_malformed_event_is_named_by_its_position() {
        let mut batch: Vec<Value> = (0..5).map(|i| generation(&format!("user-{i}"))).collect();
        batch[3] = json!({"distinct_id": "u", "properties": {}});
        let error = events(json!({"api_key": "k", "batch": batch})).unwrap_err();
        assert_eq!(error.attr(), Some("batch[3].event"));
        assert!(error.to_string().contains("batch[3].event"), "{error}");

        let cases = [
            (json!("not an object"), "batch[0]"),
            (json!({"event": 5, "distinct_id": "u"}), "batch[0].event"),
            (json!({"event": "$ai_span"}), "batch[0].distinct_id"),
            (json!({"event": "$ai_span", "distinct_id": "u", "uuid": "nope"}), "batch[0].uuid"),
            (json!({"event": "$ai_span", "distinct_id": "u", "properties": [1]}), "batch[0].properties"),
            (json!({"event": "$ai_span", "distinct_id": "u", "timestamp": "soon"}), "batch[0].timestamp"),
            (json!({"event": "$ai_span", "distinct_id": "u", "offset": 1.5}), "batch[0].offset"),
            // a malformed non-AI event rejects the batch too: all or nothing
            (json!({"event": "$pageview", "distinct_id": "u", "uuid": "nope"}), "batch[0].uuid"),
        ];
        for (event, attr) in cases {
            let error = events(json!({"api_key": "k", "batch": [event]})).unwrap_err();
            assert_eq!(error.attr(), Some(attr), "{error}");
        }
        let error = events(json!({"api_key": "k", "batch": [generation("u")], "sent_at": "later"})).unwrap_err();
        assert_eq!(error.attr(), Some("sent_at"));
        let error = events(json!({"api_key": "k", "event": "$ai_span"})).unwrap_err();
        assert_eq!(error.attr(), Some("distinct_id"));
    }

    #[test]
    fn only_ai_events_are_kept_and_the_rest_counted() {
        let batch = json!({"api_key": "k", "batch": [
            generation("a"),
            {"event": "$pageview", "distinct_id": "a"},
            {"event": "$ai_evaluation", "distinct_id": "a"},
            {"event": "signed up", "distinct_id": "a"},
            {"event": "$ai", "distinct_id": "a"},
        ]});
        let parsed = events(batch).unwrap();
        let names: Vec<&str> = parsed.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["$ai_generation", "$ai_evaluation"]);
        assert_eq!(parsed.dropped, 3);
    }

    #[test]
    fn fields_are_carried_over() {
        let uuid = Uuid::now_v7();
        let body = json!({"api_key": "k", "batch": [{
            "event": "$ai_generation", "distinct_id": 42, "uuid": uuid.to_string(),
            "timestamp": "2026-03-04T11:00:00Z",
            "properties": {"$ai_trace_id": "t-1", "$ai_model": "gpt-5-mini", "nested": {"a": [1, 2]}}
        }]});
        let event = events(body).unwrap().events.remove(0);
        assert_eq!(event.uuid, uuid);
        assert_eq!(event.distinct_id, "42");
        assert_eq!(event.timestamp, parse_iso8601("2026-03-04T11:00:00Z").unwrap());
        assert_eq!(event.text_property("$ai_trace_id").as_deref(), Some("t-1"));
        assert_eq!(event.properties["nested"], json!({"a": [1, 2]}));
    }

    #[test]
    fn missing_uuids_are_generated_and_distinct_ids_are_cut() {
        let long = "x".repeat(300);
        let parsed = events(json!([{"event": "$ai_span", "distinct_id": long, "api_key": "k"}])).unwrap();
        assert_eq!(parsed.events[0].distinct_id.len(), MAX_DISTINCT_ID_CHARS);
        assert_ne!(parsed.events[0].uuid, Uuid::nil());
        let parsed = events(json!({"event": "$ai_span", "properties": {"distinct_id": "from-properties"}})).unwrap();
        assert_eq!(parsed.events[0].distinct_id, "from-properties");
    }

    #[test]
    fn the_batch_sent_at_corrects_skew_unless_ignored() {
        // The client's clock is one hour fast.
        let event = |extra: Value| {
            let mut event = json!({"event": "$ai_span", "distinct_id": "u", "timestamp": "2026-03-04T12:59:00Z"});
            event["properties"] = extra;
            event
        };
        let body = json!({"api_key": "k", "sent_at": "2026-03-04T13:00:00Z", "batch": [
            event(json!({})),
            event(json!({"$ignore_sent_at": true})),
        ]});
        let parsed = events(body).unwrap();
        assert_eq!(parsed.events[0].timestamp, parse_iso8601("2026-03-04T11:59:00Z").unwrap());
        assert_eq!(parsed.events[1].timestamp, parse_iso8601("2026-03-04T12:59:00Z").unwrap());
        // an event's own sent_at wins over the batch's
        let single = json!({"api_key": "k", "event": "$ai_span", "distinct_id": "u",
            "timestamp": "2026-03-04T12:59:00Z", "sent_at": "2026-03-04T12:59:30Z"});
        assert_eq!(events(single).unwrap().events[0].timestamp, parse_iso8601("2026-03-04T11:59:30Z").unwrap());
    }

    #[test]
    fn nul_characters_are_replaced_everywhere() {
        let body = json!({"api_key": "k", "event": "$ai_span", "distinct_id": "a\u{0}b",
            "properties": {"k\u{0}": ["x\u{0}", {"y": "\u{0}"}]}});
        let event = events(body).unwrap().events.remove(0);
        assert_eq!(event.distinct_id, "a\u{FFFD}b");
        assert_eq!(event.properties["k\u{FFFD}"], json!(["x\u{FFFD}", {"y": "\u{FFFD}"}]));
        assert!(!serde_json::to_string(&event.properties).unwrap().contains("\\u0000"));
    }
}
