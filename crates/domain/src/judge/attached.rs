//! A `judge_code` job's attachment: the generations of its stored batch as they were
//! stored, so the worker judges them without reading them back (writing each one's JSONB
//! out as text was most of the database's work per code judgement). A job without one
//! (queued by an older build) or with one that does not read has its generations read.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Generation;
use super::model::COPIED_BY_RESULTS;
use crate::code::{CodeReads, StoredTexts};
use crate::ingestion::IncomingEvent;

#[derive(Serialize)]
struct Attaching<'a> {
    uuid: Uuid,
    event: &'a str,
    distinct_id: &'a str,
    timestamp: DateTime<Utc>,
    properties: &'a Map<String, Value>,
}

#[derive(Deserialize)]
struct Attached<'a> {
    uuid: Uuid,
    event: String,
    distinct_id: String,
    timestamp: DateTime<Utc>,
    #[serde(borrow)]
    properties: &'a RawValue,
}

/// A generation an attachment carries, with the texts code sees as its `input` and
/// `output` when it reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct CarriedGeneration {
    pub generation: Generation,
    pub texts: StoredTexts,
}

/// Properties as an attachment carries them, read for code that sees `reads` of them: of
/// the properties code sees as its input and output, the text is made from the text
/// stored (`attach` wrote it with `serde_json` from parsed values, so a structure's text is
/// what writing its parse again would give, without the writing), and the value parsed
/// only if the code can read it as a property; of the others, only those the code can
/// read and the one results copy are parsed. A generation's input and output are most of
/// its size, and parsing them was a fifth of the worker's time per code judgement.
struct CarriedProperties<'r> {
    reads: &'r CodeReads,
}

impl<'de> DeserializeSeed<'de> for CarriedProperties<'_> {
    type Value = (Map<String, Value>, StoredTexts);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CarriedProperties<'_> {
    type Value = (Map<String, Value>, StoredTexts);

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object of properties")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let (mut map, mut texts) = (Map::new(), StoredTexts::default());
        while let Some(key) = access.next_key::<String>()? {
            let parsed = key == COPIED_BY_RESULTS || self.reads.sees_property(&key);
            if StoredTexts::is_text(&key) {
                let stored: &RawValue = access.next_value()?;
                texts.take_in(&key, stored.get(), self.reads).map_err(de::Error::custom)?;
                if parsed {
                    map.insert(key, serde_json::from_str(stored.get()).map_err(de::Error::custom)?);
                }
            } else if parsed {
                let value: Value = access.next_value()?;
                map.insert(key, value);
            } else {
                access.next_value::<IgnoredAny>()?;
            }
        }
        Ok((map, texts))
    }
}

/// `events` as a job's attachment, each timestamp to the microsecond (as stored).
pub(super) fn attach<'a>(events: impl Iterator<Item = &'a IncomingEvent>) -> Option<String> {
    let attaching: Vec<Attaching> = events
        .map(|event| Attaching {
            uuid: event.uuid,
            event: event.event.as_str(),
            distinct_id: &event.distinct_id,
            timestamp: event.timestamp.trunc_subsecs(6),
            properties: &event.properties,
        })
        .collect();
    serde_json::to_string(&attaching).ok()
}

/// The generations an attachment carries, read for code that sees `reads` of them: their
/// properties hold those the code can read and the one results copy.
pub fn attached_generations(text: &str, reads: &CodeReads) -> Result<Vec<CarriedGeneration>, serde_json::Error> {
    let attached: Vec<Attached> = serde_json::from_str(text)?;
    attached
        .into_iter()
        .map(|a| {
            let mut properties = serde_json::Deserializer::from_str(a.properties.get());
            let (properties, texts) = CarriedProperties { reads }.deserialize(&mut properties)?;
            let generation = Generation {
                uuid: a.uuid,
                event: a.event,
                distinct_id: a.distinct_id,
                timestamp: a.timestamp,
                properties,
            };
            Ok(CarriedGeneration { generation, texts })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::ingestion::AiEventName;

    #[test]
    fn an_attachment_gives_back_each_generation_as_stored() {
        let at = Utc.timestamp_opt(1_780_000_000, 123_456_789).unwrap();
        let event = IncomingEvent {
            uuid: Uuid::now_v7(),
            event: AiEventName::parse("$ai_generation").unwrap(),
            distinct_id: "user-1".into(),
            timestamp: at,
            properties: json!({"$ai_output_choices": [{"content": "Ships in 3 days \u{1F69A}"}], "cost": 0.01, "n": 1})
                .as_object()
                .unwrap()
                .clone(),
        };
        let text = attach(std::iter::once(&event)).unwrap();
        let generations: Vec<Generation> =
            attached_generations(&text, &CodeReads::everything()).unwrap().into_iter().map(|c| c.generation).collect();
        assert_eq!(
            generations,
            vec![Generation {
                uuid: event.uuid,
                event: "$ai_generation".into(),
                distinct_id: "user-1".into(),
                timestamp: Utc.timestamp_opt(1_780_000_000, 123_456_000).unwrap(),
                properties: event.properties.clone(),
            }]
        );
        assert!(attached_generations("[{\"uuid\": 1}]", &CodeReads::everything()).is_err());
    }

    fn carried(properties: &Value, reads: &CodeReads) -> CarriedGeneration {
        let event = IncomingEvent {
            uuid: Uuid::now_v7(),
            event: AiEventName::parse("$ai_generation").unwrap(),
            distinct_id: "user-1".into(),
            timestamp: Utc::now(),
            properties: properties.as_object().unwrap().clone(),
        };
        let text = attach(std::iter::once(&event)).unwrap();
        let [carried] = <[CarriedGeneration; 1]>::try_from(attached_generations(&text, reads).unwrap()).unwrap();
        carried
    }

    fn tricky_cases() -> Vec<Value> {
        let tricky = json!([
            {"role": "user", "content": "café 🚚 \u{1} \"quoted\" back\\slash", "b": 1, "a": 2},
            0.1, 1e-7, 1e300, -0.0, 2.5, u64::MAX, i64::MIN, true, null, {"nested": {"z": [], "y": {}}}
        ]);
        vec![
            json!({"$ai_input": tricky, "$ai_output_choices": [{"content": "Hi"}], "$ai_output": "ignored"}),
            json!({"$ai_output": "ignored", "$ai_output_choices": null, "$ai_trace_id": "t"}),
            json!({"$ai_input": "plain \"text\" \u{1F69A}", "$ai_output": {"answer": 42.0}}),
            json!({"$ai_input": 42.5, "$ai_output": true, "other": [1, 2]}),
            json!({"$ai_input": null, "$ai_output": "text", "cost": 0.01}),
            json!({"other": "nothing code reads as text"}),
        ]
    }

    #[test]
    fn the_carried_text_of_what_code_reads_as_text_is_what_writing_it_again_gives() {
        for properties in tricky_cases() {
            let carried = carried(&properties, &CodeReads::everything());
            let (mut with_texts, mut written) = (carried.generation.clone(), carried.generation);
            let from_texts = crate::code::code_input_taking_with(&mut with_texts, carried.texts.clone());
            assert_eq!(
                from_texts,
                crate::code::code_input_taking_with(&mut written, StoredTexts::default()),
                "{properties}"
            );
            assert_eq!(carried.texts.input.is_some(), properties.get("$ai_input").is_some(), "{properties}");
        }
    }

    /// Code that sees less of an event is given the same of what it sees: its input and
    /// output texts, and the properties it can read.
    #[test]
    fn code_that_sees_less_is_given_the_same_of_what_it_sees() {
        let field = |key: &str| Some(std::collections::BTreeSet::from([key.to_owned()]));
        let nothing = CodeReads::nothing();
        let readers = [
            CodeReads { output: true, properties: field("cost"), ..nothing.clone() },
            CodeReads { input: true, properties: field("$ai_output"), ..nothing.clone() },
            CodeReads { input: true, output: true, properties: field("$ai_input"), ..nothing.clone() },
            nothing.clone(),
        ];
        for properties in tricky_cases() {
            let mut whole = carried(&properties, &CodeReads::everything()).generation;
            let whole = crate::code::code_input_taking_with(&mut whole, StoredTexts::default());
            for reads in &readers {
                let carried = carried(&properties, reads);
                let copied = carried.generation.properties.get("$ai_trace_id").cloned();
                assert_eq!(copied, properties.get("$ai_trace_id").cloned(), "what results copy is kept");
                let mut generation = carried.generation;
                let seen = crate::code::code_input_taking_with(&mut generation, carried.texts);
                let Value::Object(all) = &whole.properties else { unreachable!() };
                let expected: Map<String, Value> = all
                    .iter()
                    .filter(|(key, _)| reads.sees_property(key) || key.as_str() == "$ai_trace_id")
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                assert_eq!(seen.properties, Value::Object(expected), "{properties} seen by {reads:?}");
                if reads.input {
                    assert_eq!(seen.input, whole.input, "{properties} seen by {reads:?}");
                }
                if reads.output {
                    assert_eq!(seen.output, whole.output, "{properties} seen by {reads:?}");
                }
            }
        }
    }
}
