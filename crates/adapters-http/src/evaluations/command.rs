//! An evaluation body read into the domain's `EvaluationChanges`, field by field in the
//! reference's order, with the domain's value types; the first refused value is the answer.

use domain::evaluation::{
    ConditionInput, Conditions, EvaluationChanges, EvaluationName, EvaluationType, MaxRunsPerHour,
    ModelConfigurationSpec, ModelName, OutputType, Prompt, PropertyFilterInput, Settling, TargetChange, TargetKind,
};
use domain::provider_key::Provider;
use domain::{FieldError, ProviderKeyId, Rule};
use serde_json::Value;

use super::dto::{ConditionBody, EvaluationBody, ModelConfigurationBody, PropertyFilterBody};

impl EvaluationBody {
    /// A PUT replaces the whole evaluation: `name` and `evaluation_config` must be sent
    /// (checked before any field is read, as the reference does).
    pub fn required_for_replace(&self) -> Result<(), FieldError> {
        if self.name.is_none() {
            return Err(FieldError::new("name", Rule::Required));
        }
        if self.evaluation_config.is_none() {
            return Err(FieldError::new("evaluation_config", Rule::Required));
        }
        Ok(())
    }

    pub fn try_into_domain(self) -> Result<EvaluationChanges, FieldError> {
        let name = self
            .name
            .as_deref()
            .map(EvaluationName::parse)
            .transpose()
            .map_err(|e| FieldError::new("name", e.into()))?;
        let description = self.description.as_deref().map(|d| d.trim().to_owned());
        let evaluation_type = self
            .evaluation_type
            .as_deref()
            .map(|raw| choice("evaluation_type", raw, EvaluationType::parse, EvaluationType::names()))
            .transpose()?;
        // A judge's prompt or a code evaluator's source: the evaluation's text either way.
        let prompt = match &self.evaluation_config {
            None => None,
            Some(config) => {
                let code = evaluation_type == Some(EvaluationType::Hog) || config.prompt.is_none();
                let field = if code { "evaluation_config.source" } else { "evaluation_config.prompt" };
                match config.prompt.as_deref().or(config.source.as_deref()) {
                    None if evaluation_type == Some(EvaluationType::Hog) => {
                        return Err(FieldError::new("evaluation_config.source", Rule::Required));
                    }
                    None => return Err(FieldError::new("evaluation_config.prompt", Rule::Required)),
                    Some(raw) => Some(Prompt::parse(raw).map_err(|e| FieldError::new(field, e.into()))?),
                }
            }
        };
        let output_type = self
            .output_type
            .as_deref()
            .map(|raw| choice("output_type", raw, OutputType::parse, OutputType::names()))
            .transpose()?
            .or_else(|| {
                let allows_na = self.output_config.as_ref()?.allows_na?;
                Some(if allows_na { OutputType::BooleanWithNa } else { OutputType::Boolean })
            });
        let conditions = self
            .conditions
            .map(|conditions| Conditions::parse(&conditions.into_iter().map(ConditionInput::from).collect::<Vec<_>>()))
            .transpose()?;
        let model_configuration = match &self.model_configuration {
            None => None,
            Some(None) => Some(None),
            Some(Some(config)) => Some(Some(model_configuration(config)?)),
        };
        let max_runs_per_hour =
            self.max_runs_per_hour.as_ref().map(|cap| max_runs_per_hour(cap.as_ref())).transpose()?;
        let target = target_change(self.target.as_deref(), self.target_config.as_ref())?;
        Ok(EvaluationChanges {
            name,
            description,
            enabled: self.enabled,
            evaluation_type,
            prompt,
            output_type,
            conditions,
            model_configuration,
            max_runs_per_hour,
            target,
            delete: self.deleted == Some(true),
        })
    }
}

fn choice<T>(field: &str, raw: &str, parse: impl Fn(&str) -> Option<T>, names: String) -> Result<T, FieldError> {
    parse(raw.trim()).ok_or_else(|| FieldError::new(field, Rule::NotAChoice { given: raw.to_owned(), choices: names }))
}

fn model_configuration(body: &ModelConfigurationBody) -> Result<ModelConfigurationSpec, FieldError> {
    let provider = match body.provider.as_deref() {
        None => return Err(FieldError::new("model_configuration.provider", Rule::Required)),
        Some(raw) => {
            Provider::parse(raw).map_err(|_| FieldError::new("model_configuration.provider", Rule::UnknownProvider))?
        }
    };
    let model = match body.model.as_deref() {
        None => return Err(FieldError::new("model_configuration.model", Rule::Required)),
        Some(raw) => ModelName::parse(raw).map_err(|e| FieldError::new("model_configuration.model", e.into()))?,
    };
    let provider_key = match body.provider_key_id.as_deref().map(str::trim).filter(|raw| !raw.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<ProviderKeyId>()
                .map_err(|_| FieldError::new("model_configuration.provider_key_id", Rule::NotAUuid))?,
        ),
    };
    Ok(ModelConfigurationSpec { provider, model, provider_key })
}

/// `max_runs_per_hour`: `None` is the `null` that removes the cap.
fn max_runs_per_hour(sent: Option<&Value>) -> Result<Option<MaxRunsPerHour>, FieldError> {
    const FIELD: &str = "max_runs_per_hour";
    match sent {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(n) => MaxRunsPerHour::parse(n)
                .map(Some)
                .ok_or_else(|| FieldError::new(FIELD, Rule::OutOfRange { min: 1, max: MaxRunsPerHour::MAX })),
            None => Err(FieldError::new(FIELD, Rule::NotAnInteger)),
        },
        Some(_) => Err(FieldError::new(FIELD, Rule::NotAnIntegerOrNull)),
    }
}

/// `target` and `target_config` as sent; `None` when neither was (a `null` config is the
/// default's).
fn target_change(kind: Option<&str>, settling: Option<&Option<Value>>) -> Result<Option<TargetChange>, FieldError> {
    let kind = kind.map(|raw| choice("target", raw, TargetKind::parse, TargetKind::names())).transpose()?;
    let settling = match settling {
        None | Some(None) => None,
        Some(Some(_)) if kind == Some(TargetKind::Generation) => None,
        Some(Some(sent)) => Some(Settling::parse(sent)?),
    };
    Ok((kind.is_some() || settling.is_some()).then_some(TargetChange { kind, settling }))
}

impl From<PropertyFilterBody> for PropertyFilterInput {
    fn from(body: PropertyFilterBody) -> Self {
        Self { key: body.key, operator: body.operator, value: body.value }
    }
}

impl From<ConditionBody> for ConditionInput {
    fn from(body: ConditionBody) -> Self {
        Self {
            id: body.id,
            rollout_percentage: body.rollout_percentage,
            properties: body.properties.map(|filters| filters.into_iter().map(PropertyFilterInput::from).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::extract::parse_json;

    fn body(value: Value) -> EvaluationBody {
        parse_json(value.to_string().as_bytes()).unwrap()
    }

    fn minimal() -> Value {
        json!({"name": " Politeness ", "evaluation_type": "llm_judge",
               "evaluation_config": {"prompt": "Is the answer polite?"}})
    }

    fn with(changes: Value) -> EvaluationBody {
        let mut sent = minimal();
        for (key, value) in changes.as_object().unwrap() {
            sent[key] = value.clone();
        }
        body(sent)
    }

    fn refused(changes: Value) -> FieldError {
        with(changes.clone()).try_into_domain().expect_err(&changes.to_string())
    }

    #[test]
    fn a_body_becomes_its_command_with_trimmed_text_and_provider_aliases() {
        let command = with(json!({"description": " why ", "model_configuration":
            {"provider": " Google ", "model": "gemini-2.5-flash", "provider_key_id": null}}))
        .try_into_domain()
        .unwrap();
        assert_eq!(command.name.unwrap().as_str(), "Politeness");
        assert_eq!(command.description.as_deref(), Some("why"));
        let configuration = command.model_configuration.flatten().unwrap();
        assert_eq!((configuration.provider, configuration.provider_key), (Provider::Gemini, None));
        assert_eq!(
            body(json!({"model_configuration": null})).try_into_domain().unwrap().model_configuration,
            Some(None)
        );
    }

    #[test]
    fn text_fields_are_bounded_and_not_blank() {
        assert_eq!(refused(json!({"name": "x".repeat(401)})), FieldError::new("name", Rule::TooLong { max: 400 }));
        assert_eq!(
            refused(json!({"evaluation_config": {"prompt": " \n "}})),
            FieldError::new("evaluation_config.prompt", Rule::Blank)
        );
        assert_eq!(
            refused(json!({"evaluation_config": {}})),
            FieldError::new("evaluation_config.prompt", Rule::Required)
        );
    }

    #[test]
    fn unknown_choices_are_refused_listing_the_choices() {
        let error = refused(json!({"output_type": "score"}));
        assert_eq!(error.field, "output_type");
        assert!(matches!(&error.rule, Rule::NotAChoice { choices, .. } if choices.contains("boolean_with_na")));
        assert_eq!(refused(json!({"evaluation_type": "python"})).field, "evaluation_type");
    }

    #[test]
    fn conditions_are_checked_by_the_domain_naming_the_value() {
        let conditions = json!([{"properties": [{"key": "$ai_model", "operator": "regex", "value": "gpt-(4"}]}]);
        let error = refused(json!({ "conditions": conditions }));
        assert_eq!(error.field, "conditions[0].properties[0].value");
        assert!(matches!(error.rule, Rule::RegexInvalid { .. }));
    }

    #[test]
    fn the_model_configuration_needs_a_known_provider_a_model_and_a_uuid_key() {
        let config = |value: Value| refused(json!({ "model_configuration": value }));
        assert_eq!(
            config(json!({"provider": "mistral", "model": "m"})),
            FieldError::new("model_configuration.provider", Rule::UnknownProvider)
        );
        assert_eq!(
            config(json!({"provider": "openai", "model": "m", "provider_key_id": "not-a-uuid"})),
            FieldError::new("model_configuration.provider_key_id", Rule::NotAUuid)
        );
        assert_eq!(config(json!({"provider": "openai"})), FieldError::new("model_configuration.model", Rule::Required));
    }

    #[test]
    fn max_runs_per_hour_is_an_integer_from_1_to_a_million_or_null() {
        for (sent, expected) in [
            (json!(1), Ok(Some(1))),
            (json!(1_000_000), Ok(Some(1_000_000))),
            (Value::Null, Ok(None)),
            (json!(0), Err(Rule::OutOfRange { min: 1, max: MaxRunsPerHour::MAX })),
            (json!(1_000_001), Err(Rule::OutOfRange { min: 1, max: MaxRunsPerHour::MAX })),
            (json!(2.5), Err(Rule::NotAnInteger)),
            (json!("10"), Err(Rule::NotAnIntegerOrNull)),
        ] {
            let read = with(json!({ "max_runs_per_hour": sent }))
                .try_into_domain()
                .map(|command| command.max_runs_per_hour.unwrap().map(MaxRunsPerHour::get))
                .map_err(|error| error.rule);
            assert_eq!(read, expected, "{sent}");
        }
    }

    #[test]
    fn targets_take_the_reference_default_and_name_a_bad_setting() {
        let trace = with(json!({"target": "trace"})).try_into_domain().unwrap().target.unwrap();
        assert_eq!(trace, TargetChange { kind: Some(TargetKind::Trace), settling: None });
        assert_eq!(with(json!({})).try_into_domain().unwrap().target, None);
        let ignored = with(json!({"target": "generation", "target_config": {"strategy": "x"}}));
        assert_eq!(ignored.try_into_domain().unwrap().target.unwrap().settling, None);
        assert_eq!(refused(json!({"target": "span"})).field, "target");
        assert_eq!(
            refused(
                json!({"target": "session", "target_config": {"strategy": "inactivity", "quiet_period_seconds": 10}})
            )
            .field,
            "target_config.quiet_period_seconds"
        );
    }

    #[test]
    fn a_replacement_needs_a_name_and_an_evaluation_config() {
        let no_name = body(json!({"evaluation_config": {"prompt": "p"}}));
        assert_eq!(no_name.required_for_replace(), Err(FieldError::new("name", Rule::Required)));
        let no_config = body(json!({"name": "n"}));
        assert_eq!(no_config.required_for_replace(), Err(FieldError::new("evaluation_config", Rule::Required)));
        assert_eq!(body(minimal()).required_for_replace(), Ok(()));
    }
}
