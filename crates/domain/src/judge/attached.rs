//! A `judge_code` job's attachment: the generations of its stored batch as they were
//! stored, so the worker judges them without reading them back (writing each one's JSONB
//! out as text was most of the database's work per code judgement). A job without one
//! (queued by an older build) or with one that does not read has its generations read.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Generation;
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
    properties: Map<String, Value>,
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
pub fn attached_generations(text: &str) -> Result<Vec<Generation>, serde_json::Error> {
    let attached: Vec<Attached> = serde_json::from_str(text)?;
    Ok(attached
        .into_iter()
        .map(|a| Generation {
            uuid: a.uuid,
            event: a.event,
            distinct_id: a.distinct_id,
            timestamp: a.timestamp,
            properties: a.properties,
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
        let generations = attached_generations(&text).unwrap();
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
}
