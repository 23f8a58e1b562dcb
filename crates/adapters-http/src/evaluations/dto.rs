//! Request and response bodies of the evaluation endpoints.

use chrono::{DateTime, Utc};
use domain::evaluation::{
    Condition, Evaluation, EvaluationType, ModelConfiguration, OutputType, PropertyFilter, Settling,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::provider_keys::CreatedByDto;

/// `evaluation_config`: `{prompt}` of an llm_judge evaluation, `{source}` of a hog one.
#[derive(Debug, Serialize, ToSchema)]
pub struct JudgeConfigDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `output_config`: the reference's newer spelling of `output_type`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputConfigDto {
    /// true for `boolean_with_na`.
    pub allows_na: bool,
}

/// One property filter of a condition.
#[derive(Debug, Serialize, ToSchema)]
pub struct PropertyFilterDto {
    pub key: String,
    /// exact | is_not | icontains | regex | is_set | is_not_set | gt | lt
    pub operator: String,
    #[schema(value_type = Object)]
    pub value: Value,
}

/// One condition: all its filters must match; then `rollout_percentage` of the matching
/// generations (chosen by event uuid) are judged.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionDto {
    pub id: String,
    #[schema(value_type = f64)]
    pub rollout_percentage: serde_json::Number,
    pub properties: Vec<PropertyFilterDto>,
}

/// The provider, model and key an evaluation judges with (no key: trial credits).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelConfigurationDto {
    pub provider: String,
    pub model: String,
    pub provider_key_id: Option<uuid::Uuid>,
}

/// An evaluation as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationDto {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// active | paused | error
    pub status: String,
    /// Why it is in error (e.g. provider_key_deleted); null otherwise.
    pub status_reason: Option<String>,
    /// llm_judge | hog
    pub evaluation_type: String,
    pub evaluation_config: JudgeConfigDto,
    /// boolean | boolean_with_na
    pub output_type: String,
    pub output_config: OutputConfigDto,
    pub conditions: Vec<ConditionDto>,
    pub model_configuration: Option<ModelConfigurationDto>,
    /// The most judgements queued per UTC hour; null: no cap.
    pub max_runs_per_hour: Option<u32>,
    /// generation | trace | session: what one judgement covers.
    pub target: String,
    /// When a trace or session is judged (`{"strategy": "inactivity",
    /// "quiet_period_seconds", "max_age_seconds"}` or `{"strategy": "fixed_window",
    /// "window_seconds"}`); null for generations.
    #[schema(value_type = Option<Object>)]
    pub target_config: Option<Value>,
    /// The provider's own words behind `status_reason`, when it gave some.
    pub status_reason_detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<CreatedByDto>,
    pub deleted: bool,
}

/// An evaluation as the list shows it to agent tools (`X-PostHog-Client: mcp`): no
/// prompt, conditions, model configuration or creator.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationSummaryDto {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub status: String,
    pub status_reason: Option<String>,
    pub evaluation_type: String,
    pub output_type: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One item of the evaluation list: whole, or slim for agent tools.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EvaluationListItem {
    Full(Box<EvaluationDto>),
    Slim(EvaluationSummaryDto),
}

impl EvaluationListItem {
    pub fn new(evaluation: Evaluation, slim: bool) -> Self {
        if !slim {
            return Self::Full(Box::new(evaluation.into()));
        }
        Self::Slim(EvaluationSummaryDto {
            id: evaluation.id.0,
            name: evaluation.name,
            description: evaluation.description,
            enabled: evaluation.state.enabled(),
            status: evaluation.state.status().as_str().to_owned(),
            status_reason: evaluation.state.reason().map(|r| r.as_str().to_owned()),
            evaluation_type: evaluation.evaluation_type.as_str().to_owned(),
            output_type: evaluation.output_type.as_str().to_owned(),
            created_at: evaluation.created_at,
            updated_at: evaluation.updated_at,
        })
    }
}

/// `?search=&enabled=` of the evaluation list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EvaluationListQuery {
    /// Only evaluations whose name or description contains this text (any case).
    pub search: Option<String>,
    /// `true` or `false`: only enabled, or only disabled, evaluations.
    pub enabled: Option<String>,
}

impl From<&PropertyFilter> for PropertyFilterDto {
    fn from(filter: &PropertyFilter) -> Self {
        Self {
            key: filter.key().to_owned(),
            operator: filter.operator().as_str().to_owned(),
            value: filter.value().clone(),
        }
    }
}

impl From<&Condition> for ConditionDto {
    fn from(condition: &Condition) -> Self {
        Self {
            id: condition.id().to_owned(),
            rollout_percentage: condition.rollout_percentage().to_json(),
            properties: condition.properties().iter().map(PropertyFilterDto::from).collect(),
        }
    }
}

impl From<ModelConfiguration> for ModelConfigurationDto {
    fn from(configuration: ModelConfiguration) -> Self {
        Self {
            provider: configuration.provider.as_str().to_owned(),
            model: configuration.model,
            provider_key_id: configuration.provider_key.map(|k| k.0),
        }
    }
}

impl From<Evaluation> for EvaluationDto {
    fn from(evaluation: Evaluation) -> Self {
        Self {
            id: evaluation.id.0,
            name: evaluation.name,
            description: evaluation.description,
            enabled: evaluation.state.enabled(),
            status: evaluation.state.status().as_str().to_owned(),
            status_reason: evaluation.state.reason().map(|r| r.as_str().to_owned()),
            evaluation_type: evaluation.evaluation_type.as_str().to_owned(),
            evaluation_config: match evaluation.evaluation_type {
                EvaluationType::Hog => JudgeConfigDto { prompt: None, source: Some(evaluation.prompt) },
                EvaluationType::LlmJudge => JudgeConfigDto { prompt: Some(evaluation.prompt), source: None },
            },
            output_config: OutputConfigDto { allows_na: evaluation.output_type == OutputType::BooleanWithNa },
            output_type: evaluation.output_type.as_str().to_owned(),
            conditions: evaluation.conditions.as_slice().iter().map(ConditionDto::from).collect(),
            model_configuration: evaluation.model_configuration.map(ModelConfigurationDto::from),
            max_runs_per_hour: evaluation.max_runs_per_hour.map(|cap| cap.get()),
            target: evaluation.target.kind().as_str().to_owned(),
            target_config: evaluation.target.settling().map(Settling::to_json),
            status_reason_detail: evaluation.status_reason_detail,
            created_at: evaluation.created_at,
            updated_at: evaluation.updated_at,
            created_by: evaluation.created_by.map(CreatedByDto::from),
            deleted: evaluation.deleted,
        }
    }
}

/// `evaluation_config` as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct JudgeConfigBody {
    /// llm_judge: what the judge checks; required, not blank.
    pub prompt: Option<String>,
    /// hog: the code, compiled on save (a syntax error is a 400 with line and column).
    pub source: Option<String>,
}

/// `output_config` as sent (the reference's newer spelling; `output_type` wins when both
/// are sent).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OutputConfigBody {
    /// true: `boolean_with_na`; false: `boolean`.
    pub allows_na: Option<bool>,
}

/// A property filter as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PropertyFilterBody {
    pub key: Option<String>,
    /// Defaults to exact.
    pub operator: Option<String>,
    /// A string, number, boolean or list of them (exact, is_not); a string (icontains,
    /// regex); a number (gt, lt); ignored by is_set / is_not_set.
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
}

/// A condition as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ConditionBody {
    /// Generated when absent.
    pub id: Option<String>,
    /// 0..=100; defaults to 100.
    pub rollout_percentage: Option<f64>,
    pub properties: Option<Vec<PropertyFilterBody>>,
}

/// `model_configuration` as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ModelConfigurationBody {
    pub provider: Option<String>,
    pub model: Option<String>,
    /// A key of this project for `provider`; null: the active key, else trial credits.
    pub provider_key_id: Option<String>,
}

/// Body of create, PUT and PATCH. Read-only fields (id, status, status_reason,
/// created_at, updated_at, created_by) are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct EvaluationBody {
    /// Required on create and PUT; ≤ 400 characters.
    pub name: Option<String>,
    pub description: Option<String>,
    /// Defaults to false. Enabling makes the status active (and clears an error);
    /// disabling an active evaluation pauses it.
    pub enabled: Option<bool>,
    /// llm_judge | hog; required on create.
    pub evaluation_type: Option<String>,
    /// Required on create and PUT.
    pub evaluation_config: Option<JudgeConfigBody>,
    /// boolean (the default) or boolean_with_na.
    pub output_type: Option<String>,
    /// `{allows_na}`, the same as `output_type`.
    pub output_config: Option<OutputConfigBody>,
    pub conditions: Option<Vec<ConditionBody>>,
    /// null removes it.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<ModelConfigurationBody>)]
    pub model_configuration: Option<Option<ModelConfigurationBody>>,
    /// 1..=1 000 000 judgements queued per UTC hour at most; null: no cap (the default).
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<u32>)]
    pub max_runs_per_hour: Option<Option<Value>>,
    /// generation (the default) | trace | session.
    pub target: Option<String>,
    /// For a trace or session: `{"strategy": "inactivity", "quiet_period_seconds":
    /// 60..7200 (300), "max_age_seconds": 300..7200 (7200)}` or `{"strategy":
    /// "fixed_window", "window_seconds": 60..7200 (1800)}`; the fixed window of 1800 s
    /// when left out. Ignored for generations.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<Object>)]
    pub target_config: Option<Option<Value>>,
    /// `true` soft-deletes (as DELETE does).
    pub deleted: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_json;

    #[test]
    fn a_null_model_configuration_differs_from_a_missing_one() {
        let missing: EvaluationBody = parse_json(br#"{"name": "x"}"#).unwrap();
        assert!(missing.model_configuration.is_none());
        let null: EvaluationBody = parse_json(br#"{"model_configuration": null}"#).unwrap();
        assert!(matches!(null.model_configuration, Some(None)));
        let set: EvaluationBody =
            parse_json(br#"{"model_configuration": {"provider": "openai", "model": "gpt-5-mini"}}"#).unwrap();
        assert!(matches!(set.model_configuration, Some(Some(_))));
    }

    #[test]
    fn a_wrongly_typed_nested_value_names_its_path() {
        let error = parse_json::<EvaluationBody>(br#"{"conditions": [{"rollout_percentage": "all"}]}"#).unwrap_err();
        assert!(format!("{error:?}").contains("conditions[0].rollout_percentage"), "{error:?}");
    }
}
