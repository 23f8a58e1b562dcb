//! A `judge_code` job's attachment: the generations of its stored batch as they were
//! stored, so the worker judges them without reading them back (writing each one's JSONB
//! out as text was most of the database's work per code judgement). A job without one
//! (queued by an older build) or with one that does not read has its generations read.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Generation;
use crate::code::StoredTexts;
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
struct Attached {
    uuid: Uuid,
    event: String,
    distinct_id: String,
    timestamp: DateTime<Utc>,
    properties: CarriedProperties,
}

/// A generation an attachment carries, with the stored JSON text of what code sees as its
/// `input` and `output`.
#[derive(Debug, Clone, PartialEq)]
pub struct CarriedGeneration {
    pub generation: Generation,
    pub texts: StoredTexts,
}

/// Properties as an attachment carries them: parsed, and the text of each value code sees
/// as text kept as written. `attach` wrote it with `serde_json` from parsed values, so that
/// text is what writing the parsed value again would give (keys in order, numbers as
/// `serde_json` writes them), without the writing: a tenth of the worker's time per code
/// judgement was spent writing a 2 KB output out again.
#[derive(Default)]
struct CarriedProperties {
    map: Map<String, Value>,
    texts: StoredTexts,
}

impl<'de> Deserialize<'de> for CarriedProperties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CarriedPropertiesVisitor)
    }
}

struct CarriedPropertiesVisitor;

impl<'de> Visitor<'de> for CarriedPropertiesVisitor {
    type Value = CarriedProperties;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object of properties")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<CarriedProperties, A::Error> {
        let mut carried = CarriedProperties::default();
        while let Some(key) = access.next_key::<String>()? {
            let value = match carried.texts.slot(&key) {
                Some(slot) => {
                    let raw: Box<RawValue> = access.next_value()?;
                    let value: Value = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                    *slot = StoredTexts::keeps_text_of(&value).then(|| String::from(Box::<str>::from(raw)));
                    value
                }
                None => access.next_value()?,
            };
            carried.map.insert(key, value);
        }
        Ok(carried)
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

/// The generations an attachment carries.
pub fn attached_generations(text: &str) -> Result<Vec<CarriedGeneration>, serde_json::Error> {
    let attached: Vec<Attached> = serde_json::from_str(text)?;
    Ok(attached
        .into_iter()
        .map(|a| CarriedGeneration {
            generation: Generation {
                uuid: a.uuid,
                event: a.event,
                distinct_id: a.distinct_id,
                timestamp: a.timestamp,
                properties: a.properties.map,
            },
            texts: a.properties.texts,
        })
        .collect())
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
            attached_generations(&text).unwrap().into_iter().map(|carried| carried.generation).collect();
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
        assert!(attached_generations("[{\"uuid\": 1}]").is_err());
    }

    #[test]
    fn the_carried_text_of_what_code_reads_as_text_is_what_writing_it_again_gives() {
        let tricky = json!([
            {"role": "user", "content": "café 🚚 \u{1} \"quoted\" back\\slash", "b": 1, "a": 2},
            0.1, 1e-7, 1e300, -0.0, 2.5, u64::MAX, i64::MIN, true, null, {"nested": {"z": [], "y": {}}}
        ]);
        let cases = [
            json!({"$ai_input": tricky, "$ai_output_choices": [{"content": "Hi"}], "$ai_output": "ignored"}),
            json!({"$ai_input": "plain text", "$ai_output": {"answer": 42.0}}),
            json!({"$ai_input": 42.5, "$ai_output": true, "other": [1, 2]}),
            json!({"$ai_input": null, "$ai_output": "text"}),
            json!({"other": "nothing code reads as text"}),
        ];
        for properties in cases {
            let event = IncomingEvent {
                uuid: Uuid::now_v7(),
                event: AiEventName::parse("$ai_generation").unwrap(),
                distinct_id: "user-1".into(),
                timestamp: Utc::now(),
                properties: properties.as_object().unwrap().clone(),
            };
            let text = attach(std::iter::once(&event)).unwrap();
            let [carried] = <[CarriedGeneration; 1]>::try_from(attached_generations(&text).unwrap()).unwrap();
            let (mut with_texts, mut written) = (carried.generation.clone(), carried.generation);
            let from_texts = crate::code::code_input_taking_with(&mut with_texts, carried.texts.clone());
            assert_eq!(from_texts, crate::code::code_input_taking(&mut written), "{properties}");
            let structured = |key: &str| properties.get(key).is_some_and(|v| !v.is_string() && !v.is_null());
            assert_eq!(carried.texts.input.is_some(), structured("$ai_input"), "{properties}");
            assert_eq!(carried.texts.output.is_some(), structured("$ai_output"), "{properties}");
        }
    }
}
