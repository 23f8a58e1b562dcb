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

/// A judge job's payload: one generation, judged by each listed evaluation once.
///
/// Ingestion queues one job per generation listing every evaluation it matched (a third
/// of the rows three jobs would write); a manual run lists one. Payloads of earlier
/// versions named a single `evaluation` and are read as a list of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredJudgePayload")]
pub struct JudgePayload {
    pub evaluations: Vec<EvaluationId>,
    /// The judged event's uuid.
    pub generation: Uuid,
    /// Where the event is (its partition), so reading it touches one month.
    pub generation_timestamp: DateTime<Utc>,
    /// A manual run (`POST evaluation_runs/`): judged even when the evaluation is
    /// disabled, never deduplicated, marked `$ai_evaluation_manual`.
    pub manual: bool,
}

/// A judge payload as stored by this version or an earlier one.
#[derive(Deserialize)]
struct StoredJudgePayload {
    #[serde(default)]
    evaluations: Vec<EvaluationId>,
    #[serde(default)]
    evaluation: Option<EvaluationId>,
    generation: Uuid,
    generation_timestamp: DateTime<Utc>,
    #[serde(default)]
    manual: bool,
}

impl From<StoredJudgePayload> for JudgePayload {
    fn from(stored: StoredJudgePayload) -> Self {
        let mut evaluations = stored.evaluations;
        if let Some(single) = stored.evaluation.filter(|e| !evaluations.contains(e)) {
            evaluations.push(single);
        }
        Self {
            evaluations,
            generation: stored.generation,
            generation_timestamp: stored.generation_timestamp,
            manual: stored.manual,
        }
    }
}

impl JudgePayload {
    /// The natural key of an automatic judge job: one per stored generation, ever (a
    /// generation is stored once, and its job lists every evaluation it matched).
    pub fn unique_key(&self, project: crate::ProjectId) -> Option<String> {
        (!self.manual).then(|| format!("generation:{project}:{}", self.generation))
    }
}

/// A `judge_code` job's payload: the code-judged generations of one stored batch, each
/// with its evaluations (a payload of one generation alone is read as a list of one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeJudgePayload {
    pub generations: Vec<JudgePayload>,
}

impl CodeJudgePayload {
    /// The generations of a stored payload, in either shape.
    pub fn read(payload: &Value) -> Result<Vec<JudgePayload>, serde_json::Error> {
        #[derive(Deserialize)]
        struct Many {
            generations: Vec<JudgePayload>,
        }
        if payload.get("generations").is_some() {
            return Ok(Many::deserialize(payload)?.generations);
        }
        JudgePayload::deserialize(payload).map(|one| vec![one])
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

/// The property a judgement's result copies from the event it judged.
pub(super) const COPIED_BY_RESULTS: &str = "$ai_trace_id";

impl Generation {
    /// Its properties, moved out (so code can have them without a copy); it keeps the one
    /// its results copy.
    pub fn take_properties(&mut self) -> Map<String, Value> {
        let properties = std::mem::take(&mut self.properties);
        if let Some(copied) = properties.get(COPIED_BY_RESULTS) {
            self.properties.insert(COPIED_BY_RESULTS.to_owned(), copied.clone());
        }
        properties
    }
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
/// generation was newly stored, without the evaluations whose hourly cap refused them.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedJob {
    pub generation: Uuid,
    pub job: NewJob,
    /// The reservations its capped evaluations need, one each.
    pub caps: Vec<HourlyCap>,
}

impl PlannedJob {
    /// The job to queue once the caps refused `refused`; `None` when no evaluation is
    /// left to judge.
    pub fn without(&self, refused: &[EvaluationId]) -> Option<std::borrow::Cow<'_, NewJob>> {
        if refused.is_empty() {
            return Some(std::borrow::Cow::Borrowed(&self.job));
        }
        let mut payload: JudgePayload = serde_json::from_value(self.job.payload.clone()).ok()?;
        payload.evaluations.retain(|evaluation| !refused.contains(evaluation));
        if payload.evaluations.is_empty() {
            return None;
        }
        let payload = serde_json::to_value(&payload).ok()?;
        Some(std::borrow::Cow::Owned(NewJob { payload, ..self.job.clone() }))
    }
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
    /// No LLM: a code evaluator's verdict (no key type, key, model or provider is stamped).
    Code,
}

/// The id of the result event of `evaluation` judging `payload`'s generation: for an
/// automatic judgement derived from the evaluation and the generation (as earlier
/// versions did), so a job run twice (a lapsed lease) stores one result.
pub fn result_event_id(payload: &JudgePayload, evaluation: EvaluationId, job: Uuid) -> Uuid {
    let seed = if payload.manual {
        format!("judge-result:manual:{job}")
    } else {
        format!("judge-result:{evaluation}:{}", payload.generation)
    };
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The id of the result event of code `evaluation` judging `payload`'s generation: derived
/// as [`result_event_id`]'s, laid out as a UUIDv7 whose time is the generation's, so results
/// are stored near each other at the end of the id indexes (`ai_event_ids` and the events'
/// `(project_id, uuid)`) rather than each into a random page of them (a tenth of the
/// database's work per code judgement). Code results had no earlier version's id to keep.
pub fn code_result_event_id(payload: &JudgePayload, evaluation: EvaluationId, job: Uuid) -> Uuid {
    let derived = result_event_id(payload, evaluation, job);
    let mut rest = [0u8; 10];
    rest.copy_from_slice(&derived.as_bytes()[6..]);
    let millis = u64::try_from(payload.generation_timestamp.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rest).into_uuid()
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
        if let Some(trace) = self.generation.properties.get(COPIED_BY_RESULTS).filter(|v| !v.is_null()) {
            set(COPIED_BY_RESULTS, trace.clone());
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
            KeyType::Code => {}
        }
        if self.key != KeyType::Code {
            set("$ai_evaluation_model", json!(self.model));
            set("$ai_evaluation_provider", json!(self.provider));
        }
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

    fn payload(evaluations: &[u128]) -> JudgePayload {
        JudgePayload {
            evaluations: evaluations.iter().map(|e| EvaluationId(Uuid::from_u128(*e))).collect(),
            generation: Uuid::from_u128(2),
            generation_timestamp: Utc::now(),
            manual: false,
        }
    }

    #[test]
    fn automatic_results_share_an_id_and_manual_ones_do_not() {
        let payload = payload(&[1, 3]);
        let (first, second) = (payload.evaluations[0], payload.evaluations[1]);
        let (a, b) = (Uuid::from_u128(10), Uuid::from_u128(11));
        assert_eq!(result_event_id(&payload, first, a), result_event_id(&payload, first, b));
        assert_ne!(result_event_id(&payload, first, a), result_event_id(&payload, second, a));
        let manual = JudgePayload { manual: true, ..payload };
        assert_ne!(result_event_id(&manual, first, a), result_event_id(&manual, first, b));
        assert_eq!(manual.unique_key(crate::ProjectId(1)), None);
    }

    #[test]
    fn a_code_result_id_is_derived_and_ordered_by_its_generations_time() {
        let payload = payload(&[1, 3]);
        let (first, second) = (payload.evaluations[0], payload.evaluations[1]);
        let id = code_result_event_id(&payload, first, Uuid::from_u128(10));
        assert_eq!(id, code_result_event_id(&payload, first, Uuid::from_u128(11)), "a job run twice stores one result");
        assert_ne!(id, code_result_event_id(&payload, second, Uuid::from_u128(10)));
        assert_eq!(id.get_version_num(), 7);
        let millis = u64::try_from(payload.generation_timestamp.timestamp_millis()).unwrap();
        assert_eq!(id.get_timestamp().unwrap().to_unix(), (millis / 1000, (millis % 1000) as u32 * 1_000_000));
        let later = JudgePayload {
            generation_timestamp: payload.generation_timestamp + chrono::Duration::seconds(1),
            ..payload.clone()
        };
        assert!(code_result_event_id(&later, first, Uuid::nil()) > id);
    }

    #[test]
    fn a_result_keeps_the_id_an_earlier_version_gave_it() {
        // Earlier versions queued one job per evaluation and derived the result's id
        // from "{evaluation}:{generation}"; a generation judged then is not judged again.
        let payload = payload(&[1]);
        let seed = format!("judge-result:{}:{}", payload.evaluations[0], payload.generation);
        let digest = Sha256::digest(seed.as_bytes());
        let expected = uuid::Builder::from_random_bytes(digest[..16].try_into().unwrap()).into_uuid();
        assert_eq!(result_event_id(&payload, payload.evaluations[0], Uuid::nil()), expected);
    }

    #[test]
    fn payloads_of_earlier_versions_name_one_evaluation() {
        let earlier = json!({
            "evaluation": Uuid::from_u128(1).to_string(),
            "generation": Uuid::from_u128(2).to_string(),
            "generation_timestamp": "2026-03-04T12:00:00Z",
            "manual": false,
        });
        let read: JudgePayload = serde_json::from_value(earlier).unwrap();
        assert_eq!(read.evaluations, vec![EvaluationId(Uuid::from_u128(1))]);
        let again: JudgePayload = serde_json::from_value(serde_json::to_value(&read).unwrap()).unwrap();
        assert_eq!(again, read);
    }

    #[test]
    fn a_job_loses_the_evaluations_its_caps_refused() {
        let payload = payload(&[1, 3]);
        let planned = PlannedJob {
            generation: payload.generation,
            job: crate::judge::judge_job(crate::ProjectId(1), &payload),
            caps: Vec::new(),
        };
        assert!(matches!(planned.without(&[]), Some(std::borrow::Cow::Borrowed(_))));
        let kept = planned.without(&[payload.evaluations[0]]).unwrap().into_owned();
        let kept: JudgePayload = serde_json::from_value(kept.payload).unwrap();
        assert_eq!(kept.evaluations, vec![payload.evaluations[1]]);
        assert_eq!(planned.without(&payload.evaluations), None);
    }

    #[test]
    fn hours_start_on_the_hour() {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 12, 34, 56).unwrap();
        assert_eq!(hour_of(at), Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap());
    }
}
