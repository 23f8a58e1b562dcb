//! What evaluator code sees of a generation: `input` and `output` as strings (the text, or
//! the JSON text of a structured value, as the reference passes them), `properties`, and
//! `event`; of a trace or session also `target` and `evaluation_events`.

use serde_json::{Map, Value, json};

use super::CodeReads;
use crate::evaluation::TargetKind;
use crate::ingestion::AiEventName;
use crate::judge::Generation;

/// The globals of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeInput {
    pub input: String,
    pub output: String,
    pub properties: Value,
    /// `{uuid, event, distinct_id, timestamp}`: the code's `event` is this with
    /// `properties` added (held once, not copied into both).
    pub event: Value,
    /// Present when a trace or session is judged.
    pub target: Option<CodeTarget>,
}

/// What code judging a whole trace or session sees besides its anchor generation.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeTarget {
    /// `{type, id, total_cost_usd, total_latency}`.
    pub target: Value,
    /// The target's events, oldest first, each `{uuid, event, distinct_id, timestamp,
    /// properties}`.
    pub evaluation_events: Value,
}

/// The globals for a trace or session of `kind` called `id`, made of `events` (oldest
/// first): `input`, `output`, `properties` and `event` are those of `anchor` (its first
/// generation, which its result points at). `total_cost_usd` sums the events' numeric
/// `$ai_total_cost_usd`; `total_latency` is the `$ai_trace` events' `$ai_latency` summed,
/// else the generations'.
pub fn target_code_input(kind: TargetKind, id: &str, anchor: &Generation, events: &[Generation]) -> CodeInput {
    let number = |event: &Generation, name: &str| event.properties.get(name).and_then(Value::as_f64);
    let total_cost: f64 = events.iter().filter_map(|e| number(e, "$ai_total_cost_usd")).sum();
    let latency_of = |name: &str| -> Option<f64> {
        let latencies: Vec<f64> =
            events.iter().filter(|e| e.event == name).filter_map(|e| number(e, "$ai_latency")).collect();
        (!latencies.is_empty()).then(|| latencies.iter().sum())
    };
    let total_latency = latency_of(AiEventName::TRACE).or_else(|| latency_of(AiEventName::GENERATION)).unwrap_or(0.0);
    let mut input = code_input(anchor);
    input.target = Some(CodeTarget {
        target: json!({
            "type": kind.as_str(),
            "id": id,
            "total_cost_usd": total_cost,
            "total_latency": total_latency,
        }),
        evaluation_events: Value::Array(
            events
                .iter()
                .map(|e| {
                    let mut event = event_value(e);
                    event["properties"] = Value::Object(e.properties.clone());
                    event
                })
                .collect(),
        ),
    });
    input
}

/// The globals for `generation`.
pub fn code_input(generation: &Generation) -> CodeInput {
    input_with(generation, generation.properties.clone())
}

/// The globals for `generation`, its properties moved into them (it keeps only what its
/// judgements' results copy, [`Generation::take_properties`]), with the texts of `input`
/// and `output` as the event's carrier gave them (`texts`; made from the properties when
/// not given).
pub fn code_input_taking_with(generation: &mut Generation, texts: StoredTexts) -> CodeInput {
    let properties = generation.take_properties();
    input_with_texts(generation, properties, texts)
}

fn input_with(generation: &Generation, properties: Map<String, Value>) -> CodeInput {
    input_with_texts(generation, properties, StoredTexts::default())
}

fn input_with_texts(generation: &Generation, properties: Map<String, Value>, texts: StoredTexts) -> CodeInput {
    CodeInput {
        input: texts.input.unwrap_or_else(|| as_text(properties.get(INPUT))),
        output: texts
            .output
            .unwrap_or_else(|| as_text(properties.get(OUTPUT_CHOICES).or_else(|| properties.get(OUTPUT)))),
        event: event_value(generation),
        properties: Value::Object(properties),
        target: None,
    }
}

/// The properties code sees as `input` and `output` (the choices first).
const INPUT: &str = "$ai_input";
const OUTPUT_CHOICES: &str = "$ai_output_choices";
const OUTPUT: &str = "$ai_output";

/// The texts code sees as `input` and `output`, made from the JSON text of the properties
/// they come from as it was stored (an attachment's), so those values need not be parsed
/// into the properties when the code cannot read them there (`None`: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredTexts {
    pub input: Option<String>,
    pub output: Option<String>,
    /// Whether `output` came from [`OUTPUT_CHOICES`], which [`OUTPUT`] does not replace.
    output_from_choices: bool,
}

impl StoredTexts {
    /// Takes in the stored JSON text of property `key` if it is what code that `reads`
    /// sees as its `input` or `output`.
    pub fn take_in(&mut self, key: &str, stored: &str, reads: &CodeReads) -> Result<(), serde_json::Error> {
        match key {
            INPUT if reads.input => self.input = Some(text_of_stored(stored)?),
            OUTPUT_CHOICES if reads.output => {
                self.output = Some(text_of_stored(stored)?);
                self.output_from_choices = true;
            }
            OUTPUT if reads.output && !self.output_from_choices => self.output = Some(text_of_stored(stored)?),
            _ => {}
        }
        Ok(())
    }

    /// Whether property `key` is one code sees as `input` or `output`.
    pub fn is_text(key: &str) -> bool {
        matches!(key, INPUT | OUTPUT_CHOICES | OUTPUT)
    }
}

/// [`as_text`] of a value stored as `stored` (JSON text written by `serde_json`, so a
/// structure's or number's text is what writing its parse again gives), without parsing
/// more than a string.
fn text_of_stored(stored: &str) -> Result<String, serde_json::Error> {
    let stored = stored.trim_start();
    Ok(match stored.as_bytes().first() {
        Some(b'"') => serde_json::from_str(stored)?,
        _ if stored == "null" => String::new(),
        _ => stored.to_owned(),
    })
}

/// An event's own fields as code sees them: `{uuid, event, distinct_id, timestamp}`.
fn event_value(event: &Generation) -> Value {
    json!({
        "uuid": event.uuid.to_string(),
        "event": event.event,
        "distinct_id": event.distinct_id,
        "timestamp": event.timestamp.to_rfc3339(),
    })
}

/// A string as it is; anything else as its JSON text; absent or null as empty.
fn as_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn text_stays_text_and_structures_become_their_json_text() {
        let Value::Object(properties) = json!({
            "$ai_input": [{"role": "user", "content": "Hi"}],
            "$ai_output": "Hello",
            "$ai_model": "gpt-5",
        }) else {
            unreachable!()
        };
        let generation = Generation {
            uuid: Uuid::nil(),
            event: "$ai_generation".into(),
            distinct_id: "u".into(),
            timestamp: Utc::now(),
            properties,
        };
        let input = code_input(&generation);
        assert_eq!(input.input, r#"[{"content":"Hi","role":"user"}]"#);
        assert_eq!(input.output, "Hello");
        assert_eq!(input.properties["$ai_model"], "gpt-5");
        assert_eq!(input.event["event"], "$ai_generation");
    }

    #[test]
    fn taking_the_properties_gives_the_same_globals_and_leaves_what_results_copy() {
        let mut generation = event(
            "$ai_generation",
            json!({"$ai_output_choices": [{"role": "assistant", "content": "Hello"}], "$ai_trace_id": "t",
                   "$ai_model": "gpt-5"}),
        );
        let copied = code_input(&generation);
        let taken = code_input_taking_with(&mut generation, StoredTexts::default());
        assert_eq!(taken, copied);
        assert_eq!(Value::Object(generation.properties), json!({"$ai_trace_id": "t"}));
        let mut untraced = event("$ai_generation", json!({"$ai_output": "Hi"}));
        assert_eq!(code_input_taking_with(&mut untraced, StoredTexts::default()).output, "Hi");
        assert!(untraced.properties.is_empty());
    }

    fn event(name: &str, properties: Value) -> Generation {
        let Value::Object(properties) = properties else { unreachable!() };
        Generation {
            uuid: Uuid::new_v4(),
            event: name.into(),
            distinct_id: "u".into(),
            timestamp: Utc::now(),
            properties,
        }
    }

    #[test]
    fn a_trace_adds_its_totals_and_its_events_to_what_its_anchor_gives() {
        let first = event(
            "$ai_generation",
            json!({"$ai_output": "one", "$ai_total_cost_usd": 0.25, "$ai_latency": 1.5, "$ai_trace_id": "t"}),
        );
        let events = vec![
            first.clone(),
            event("$ai_span", json!({"$ai_span_name": "search", "$ai_latency": 9.0})),
            event("$ai_generation", json!({"$ai_total_cost_usd": 0.5, "$ai_latency": 2.0})),
            event("$ai_embedding", json!({"$ai_total_cost_usd": "0.1"})),
        ];
        let input = target_code_input(TargetKind::Trace, "t", &first, &events);
        assert_eq!(input.output, "one", "the anchor's globals stay");
        let target = input.target.expect("a trace's globals");
        assert_eq!(
            target.target,
            json!({"type": "trace", "id": "t", "total_cost_usd": 0.75, "total_latency": 3.5}),
            "numeric costs only; the generations' latency when no $ai_trace event has one"
        );
        let names: Vec<&str> =
            target.evaluation_events.as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(names, ["$ai_generation", "$ai_span", "$ai_generation", "$ai_embedding"]);
        assert_eq!(target.evaluation_events[1]["properties"]["$ai_span_name"], "search");

        let mut with_root = events.clone();
        with_root.push(event("$ai_trace", json!({"$ai_latency": 12.0})));
        let session = target_code_input(TargetKind::Session, "s", &first, &with_root).target.unwrap();
        assert_eq!(
            (session.target["type"].clone(), session.target["total_latency"].clone()),
            (json!("session"), json!(12.0))
        );
        assert_eq!(code_input(&first).target, None, "a generation has no target");
    }
}
