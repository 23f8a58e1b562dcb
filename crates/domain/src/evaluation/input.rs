//! An evaluation as the client sent it, and how its fields are read and checked.

use super::{
    ConditionInput, Conditions, EvaluationName, EvaluationType, MaxRunsPerHour, ModelConfigurationSpec, ModelName,
    OutputType, Prompt, TextError,
};
use crate::ProviderKeyId;
use crate::invalid::{FieldError, Rule};
use crate::provider_key::Provider;

/// An evaluation as the client sent it (create, PUT or PATCH); `None` means absent.
#[derive(Debug, Clone, Default)]
pub struct EvaluationInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub evaluation_type: Option<String>,
    pub evaluation_config: Option<JudgeConfigInput>,
    pub output_type: Option<String>,
    pub conditions: Option<Vec<ConditionInput>>,
    /// `Some(None)`: the client sent `null` (no model configuration).
    pub model_configuration: Option<Option<ModelConfigurationInput>>,
    /// `max_runs_per_hour` as sent: `Some(null)` removes the cap.
    pub max_runs_per_hour: Option<serde_json::Value>,
    /// `true` soft-deletes in an update (the reference's clients delete this way).
    pub deleted: Option<bool>,
}

/// `evaluation_config` as sent.
#[derive(Debug, Clone, Default)]
pub struct JudgeConfigInput {
    pub prompt: Option<String>,
}

/// `model_configuration` as sent.
#[derive(Debug, Clone, Default)]
pub struct ModelConfigurationInput {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub provider_key_id: Option<String>,
}

fn text_error(field: &str, error: TextError) -> FieldError {
    FieldError::new(field, error.into())
}

fn choice<T>(field: &str, raw: &str, parse: impl Fn(&str) -> Option<T>, names: String) -> Result<T, FieldError> {
    parse(raw.trim()).ok_or_else(|| FieldError::new(field, Rule::NotAChoice { given: raw.to_owned(), choices: names }))
}

/// The fields every write parses, before the per-mode rules (required fields, defaults).
pub(super) struct ParsedFields {
    pub(super) name: Option<EvaluationName>,
    pub(super) description: Option<String>,
    pub(super) evaluation_type: Option<EvaluationType>,
    pub(super) prompt: Option<Prompt>,
    pub(super) output_type: Option<OutputType>,
    pub(super) conditions: Option<Conditions>,
    pub(super) model_configuration: Option<Option<ModelConfigurationSpec>>,
    pub(super) max_runs_per_hour: Option<Option<MaxRunsPerHour>>,
}

fn parse_max_runs_per_hour(raw: &serde_json::Value) -> Result<Option<MaxRunsPerHour>, FieldError> {
    const FIELD: &str = "max_runs_per_hour";
    match raw {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(n) => MaxRunsPerHour::parse(n)
                .map(Some)
                .ok_or_else(|| FieldError::new(FIELD, Rule::OutOfRange { min: 1, max: MaxRunsPerHour::MAX })),
            None => Err(FieldError::new(FIELD, Rule::NotAnInteger)),
        },
        _ => Err(FieldError::new(FIELD, Rule::NotAnIntegerOrNull)),
    }
}

pub(super) fn parse_fields(input: &EvaluationInput) -> Result<ParsedFields, FieldError> {
    let name = input.name.as_deref().map(EvaluationName::parse).transpose().map_err(|e| text_error("name", e))?;
    let description = input.description.as_deref().map(|d| d.trim().to_owned());
    let evaluation_type = input
        .evaluation_type
        .as_deref()
        .map(|raw| choice("evaluation_type", raw, EvaluationType::parse, EvaluationType::names()))
        .transpose()?;
    let prompt = match &input.evaluation_config {
        None => None,
        Some(config) => match config.prompt.as_deref() {
            None => return Err(FieldError::new("evaluation_config.prompt", Rule::Required)),
            Some(raw) => Some(Prompt::parse(raw).map_err(|e| text_error("evaluation_config.prompt", e))?),
        },
    };
    let output_type = input
        .output_type
        .as_deref()
        .map(|raw| choice("output_type", raw, OutputType::parse, OutputType::names()))
        .transpose()?;
    let conditions = input.conditions.as_deref().map(Conditions::parse).transpose()?;
    let model_configuration = match &input.model_configuration {
        None => None,
        Some(None) => Some(None),
        Some(Some(config)) => Some(Some(parse_model_configuration(config)?)),
    };
    let max_runs_per_hour = input.max_runs_per_hour.as_ref().map(parse_max_runs_per_hour).transpose()?;
    Ok(ParsedFields {
        name,
        description,
        evaluation_type,
        prompt,
        output_type,
        conditions,
        model_configuration,
        max_runs_per_hour,
    })
}

pub(super) fn parse_model_configuration(input: &ModelConfigurationInput) -> Result<ModelConfigurationSpec, FieldError> {
    let provider = match input.provider.as_deref() {
        None => return Err(FieldError::new("model_configuration.provider", Rule::Required)),
        Some(raw) => {
            Provider::parse(raw).map_err(|_| FieldError::new("model_configuration.provider", Rule::UnknownProvider))?
        }
    };
    let model = match input.model.as_deref() {
        None => return Err(FieldError::new("model_configuration.model", Rule::Required)),
        Some(raw) => ModelName::parse(raw).map_err(|e| text_error("model_configuration.model", e))?,
    };
    let provider_key = match input.provider_key_id.as_deref().map(str::trim).filter(|raw| !raw.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<ProviderKeyId>()
                .map_err(|_| FieldError::new("model_configuration.provider_key_id", Rule::NotAUuid))?,
        ),
    };
    Ok(ModelConfigurationSpec { provider, model, provider_key })
}
