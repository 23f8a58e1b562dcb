//! What the judge runner works on and produces.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::prompt::Verdict;
use crate::evaluation::{Evaluation, MaxRunsPerHour};
use crate::ingestion::{AiEventName, IncomingEvent};
use crate::jobs::NewJob;
use crate::{EvaluationId, ProviderKeyId};

/// A judge job's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgePayload {
    pub evaluation: EvaluationId,
    /// The judged event's uuid.
    pub generation: Uuid,
    /// Where the event is (its partition), so reading it touches one month.
    pub generation_timestamp: DateTime<Utc>,
    /// A manual run (`POST evaluation_runs/`): judged even when the evaluation is
    /// disabled, never deduplicated, marked `$ai_evaluation_manual`.
    pub manual: bool,
}

impl JudgePayload {
    /// The natural key of an automatic judgement: one per evaluation × generation, ever.
    pub fn unique_key(&self) -> Option<String> {
        (!self.manual).then(|| format!("{}:{}", self.evaluation, self.generation))
    }
}

/// A stored event the judge reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub uuid: Uuid,
    pub event: String,
    pub distinct_id: String,
    pub timestamp: DateTime<Utc>,
    pub properties: Map<String, Value>,
}

/// An hourly-cap reservation a queued job needs: one of `max` for `evaluation` in `hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyCap {
    pub evaluation: EvaluationId,
    pub max: MaxRunsPerHour,
    /// The UTC clock hour the job is queued in.
    pub hour: DateTime<Utc>,
}

/// A judge job to queue with the batch that stores its generation: queued only if the
/// generation was newly stored and, with a cap, a reservation was granted.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedJob {
    pub generation: Uuid,
    pub job: NewJob,
    pub cap: Option<HourlyCap>,
}

/// What storing a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredBatch {
    /// Events stored now (not seen before).
    pub stored: u64,
    /// Judge jobs queued.
    pub jobs_queued: u64,
    /// Matches not queued because their evaluation's hourly cap was reached.
    pub skipped_by_cap: u64,
}

/// The start of `instant`'s UTC clock hour.
pub fn hour_of(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.with_nanosecond(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_minute(0)).unwrap_or(instant)
}

/// Who paid for a judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// A key of the project.
    Byok(ProviderKeyId),
    /// The operator's trial credits.
    Posthog,
}

/// The id of an automatic judgement's result event: derived from the evaluation and the
/// generation, so a job run twice (a lapsed lease) stores one result.
pub fn result_event_id(payload: &JudgePayload, job: Uuid) -> Uuid {
    let seed = match payload.unique_key() {
        Some(key) => format!("judge-result:{key}"),
        None => format!("judge-result:manual:{job}"),
    };
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The `$ai_evaluation` event a judgement stores, shaped like an ingested one.
pub struct ResultEvent<'a> {
    pub id: Uuid,
    pub evaluation: &'a Evaluation,
    pub generation: &'a Generation,
    pub verdict: &'a Verdict,
    pub key: KeyType,
    pub provider: &'a str,
    pub model: &'a str,
    pub manual: bool,
    pub at: DateTime<Utc>,
}

impl ResultEvent<'_> {
    pub fn into_event(self) -> IncomingEvent {
        let mut properties = Map::new();
        let mut set = |key: &str, value: Value| {
            properties.insert(key.to_owned(), value);
        };
        set("$ai_evaluation_id", json!(self.evaluation.id.to_string()));
        set("$ai_evaluation_name", json!(self.evaluation.name));
        if let Some(result) = self.verdict.result {
            set("$ai_evaluation_result", json!(result));
        }
        set("$ai_evaluation_applicable", json!(self.verdict.applicable));
        set("$ai_evaluation_reasoning", json!(self.verdict.reasoning));
        set("$ai_target_event_id", json!(self.generation.uuid.to_string()));
        if let Some(trace) = self.generation.properties.get("$ai_trace_id").filter(|v| !v.is_null()) {
            set("$ai_trace_id", trace.clone());
        }
        match self.key {
            KeyType::Byok(key) => {
                set("$ai_evaluation_key_type", json!("byok"));
                set("$ai_evaluation_key_id", json!(key.to_string()));
            }
            KeyType::Posthog => {
                set("$ai_evaluation_key_type", json!("posthog"));
                set("$ai_evaluation_key_id", Value::Null);
            }
        }
        set("$ai_evaluation_model", json!(self.model));
        set("$ai_evaluation_provider", json!(self.provider));
        set("$ai_evaluation_manual", json!(self.manual));
        IncomingEvent {
            uuid: self.id,
            event: AiEventName::parse(AiEventName::EVALUATION).expect("a valid AI event name"),
            distinct_id: self.generation.distinct_id.clone(),
            timestamp: self.at,
            properties,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn automatic_results_share_an_id_and_manual_ones_do_not() {
        let payload = JudgePayload {
            evaluation: EvaluationId(Uuid::from_u128(1)),
            generation: Uuid::from_u128(2),
            generation_timestamp: Utc::now(),
            manual: false,
        };
        let (a, b) = (Uuid::from_u128(10), Uuid::from_u128(11));
        assert_eq!(result_event_id(&payload, a), result_event_id(&payload, b));
        let manual = JudgePayload { manual: true, ..payload };
        assert_ne!(result_event_id(&manual, a), result_event_id(&manual, b));
        assert_eq!(manual.unique_key(), None);
    }

    #[test]
    fn hours_start_on_the_hour() {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 12, 34, 56).unwrap();
        assert_eq!(hour_of(at), Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap());
    }
}
