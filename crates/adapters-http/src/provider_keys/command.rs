//! Provider-key bodies read into the domain's commands (create, check), in the reference's
//! order of checks; the first refused field is the answer.

use domain::evaluation::{AssignKeyCommand, MAX_ASSIGNED_EVALUATIONS};
use domain::provider_key::{
    CheckProviderKey, CreateProviderKey, EndpointInput, ExtraHeaders, KeyEdits, Provider, UpdateProviderKey,
    parse_custom_models, parse_name, parse_provider, required_key,
};
use domain::{EvaluationId, FieldError, Rule};
use secrecy::SecretString;
use serde_json::Value;

use super::dto::{AssignBody, EndpointBody, KeyCheckBody, ProviderKeyBody};

impl EndpointBody {
    /// The endpoint's fields, each checked for its shape (the base URL is checked by the
    /// service, under the operator's policy).
    fn try_into_domain(self) -> Result<EndpointInput, FieldError> {
        let extra_headers = match self.extra_headers {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(ExtraHeaders::parse(
                map.into_iter()
                    .map(|(name, value)| {
                        let value = match value {
                            Value::String(text) => Some(SecretString::from(text)),
                            _ => None,
                        };
                        (name, value)
                    })
                    .collect(),
            )?),
            Some(_) => return Err(FieldError::new("extra_headers", Rule::NotAnObject)),
        };
        let custom_models = match self.custom_models {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(parse_custom_models(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(name) => Some(name),
                        _ => None,
                    })
                    .collect(),
            )?),
            Some(_) => return Err(FieldError::new("custom_models", Rule::NotAList)),
        };
        let base_url = match self.base_url {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) => Some(url),
            Some(_) => return Err(FieldError::new("base_url", Rule::NotAString)),
        };
        Ok(EndpointInput { base_url, extra_headers, custom_models })
    }
}

impl ProviderKeyBody {
    pub fn try_into_create(self) -> Result<CreateProviderKey, FieldError> {
        let provider = match self.provider.as_deref() {
            Some(raw) => parse_provider(raw)?,
            None => return Err(FieldError::new("provider", Rule::Required)),
        };
        let name = parse_name(self.name.as_deref().unwrap_or(""))?;
        let api_key = required_key(self.api_key.as_ref(), Rule::Required)?;
        let endpoint = self.endpoint.try_into_domain()?;
        Ok(CreateProviderKey {
            provider,
            name,
            api_key,
            azure_endpoint: self.azure_endpoint,
            api_version: self.api_version,
            endpoint,
            set_as_active: self.set_as_active.unwrap_or(false),
        })
    }
}

impl ProviderKeyBody {
    /// A PATCH: every field optional; a sent `api_key` must not be blank.
    pub fn into_update(self) -> UpdateProviderKey {
        let provider = self.provider.as_deref().map(parse_provider).transpose();
        UpdateProviderKey { provider, edits: self.into_edits() }
    }

    fn into_edits(self) -> Result<KeyEdits, FieldError> {
        Ok(KeyEdits {
            name: self.name.as_deref().map(parse_name).transpose()?,
            api_key: self.api_key.as_ref().map(|key| required_key(Some(key), Rule::Blank)).transpose()?,
            azure_endpoint: self.azure_endpoint,
            api_version: self.api_version,
            endpoint: self.endpoint.try_into_domain()?,
            set_as_active: self.set_as_active.unwrap_or(false),
        })
    }

    /// A PUT: `provider` and `name` are required (answered before the key is looked
    /// up), the rest as in PATCH.
    pub fn try_into_replace(self) -> Result<UpdateProviderKey, FieldError> {
        for (field, sent) in [("provider", self.provider.is_some()), ("name", self.name.is_some())] {
            if !sent {
                return Err(FieldError::new(field, Rule::Required));
            }
        }
        Ok(self.into_update())
    }
}

impl KeyCheckBody {
    pub fn try_into_domain(self) -> Result<CheckProviderKey, FieldError> {
        let api_key = required_key(self.api_key.as_ref(), Rule::ApiKeyRequired)?;
        let provider = match self.provider.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(raw) => parse_provider(raw)?,
            None => Provider::Openai,
        };
        Ok(CheckProviderKey {
            provider,
            api_key,
            azure_endpoint: self.azure_endpoint,
            api_version: self.api_version,
            endpoint: self.endpoint.try_into_domain()?,
        })
    }
}

impl AssignBody {
    /// The evaluations once each, in the order sent.
    pub fn try_into_domain(self) -> Result<AssignKeyCommand, FieldError> {
        let ids = self.evaluation_ids.unwrap_or_default();
        if ids.is_empty() {
            return Err(FieldError::new("evaluation_ids", Rule::EvaluationIdsRequired));
        }
        if ids.len() > MAX_ASSIGNED_EVALUATIONS {
            return Err(FieldError::new("evaluation_ids", Rule::TooManyAssigned { max: MAX_ASSIGNED_EVALUATIONS }));
        }
        let mut evaluations = Vec::with_capacity(ids.len());
        for (n, raw) in ids.iter().enumerate() {
            let id = raw
                .parse::<EvaluationId>()
                .map_err(|_| FieldError::new(format!("evaluation_ids[{n}]"), Rule::NotAUuid))?;
            if !evaluations.contains(&id) {
                evaluations.push(id);
            }
        }
        Ok(AssignKeyCommand { evaluations, enable: self.enable.unwrap_or(false) })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use super::*;

    fn create(provider: Option<&str>, name: Option<&str>, key: Option<&str>) -> ProviderKeyBody {
        ProviderKeyBody {
            provider: provider.map(str::to_owned),
            name: name.map(str::to_owned),
            api_key: key.map(|k| SecretString::from(k.to_owned())),
            ..ProviderKeyBody::default()
        }
    }

    #[test]
    fn a_create_body_names_each_missing_or_bad_field_in_order() {
        for (body, field, rule) in [
            (create(None, Some("n"), Some("sk-x")), "provider", Rule::Required),
            (create(Some("mistral"), Some("n"), Some("sk-x")), "provider", Rule::UnknownProvider),
            (create(Some("openai"), Some("  "), Some("sk-x")), "name", Rule::Blank),
            (create(Some("openai"), None, Some("sk-x")), "name", Rule::Blank),
            (create(Some("openai"), Some("n"), None), "api_key", Rule::Required),
            (create(Some("openai"), Some("n"), Some("  ")), "api_key", Rule::Required),
        ] {
            assert_eq!(body.try_into_create().map(|_| ()), Err(FieldError::new(field, rule)));
        }
    }

    #[test]
    fn a_create_body_reads_aliases_and_trims() {
        let command = create(Some("OpenAI"), Some(" prod "), Some(" sk-test-1 ")).try_into_create().unwrap();
        assert_eq!((command.provider, command.name.as_str()), (Provider::Openai, "prod"));
        assert_eq!(command.api_key.expose_secret(), "sk-test-1");
    }

    #[test]
    fn an_assignment_needs_ids_that_are_uuids_and_lists_each_once() {
        let assign = |ids: Option<Vec<String>>| AssignBody { evaluation_ids: ids, enable: None }.try_into_domain();
        for ids in [None, Some(vec![])] {
            assert_eq!(assign(ids), Err(FieldError::new("evaluation_ids", Rule::EvaluationIdsRequired)));
        }
        let id = EvaluationId::generate();
        assert_eq!(
            assign(Some(vec![id.to_string(), "nope".into()])),
            Err(FieldError::new("evaluation_ids[1]", Rule::NotAUuid))
        );
        let twice = assign(Some(vec![id.to_string(), id.to_string().to_uppercase()])).unwrap();
        assert_eq!(twice, AssignKeyCommand { evaluations: vec![id], enable: false });
        let too_many = assign(Some(vec![id.to_string(); MAX_ASSIGNED_EVALUATIONS + 1]));
        assert_eq!(too_many.unwrap_err().rule, Rule::TooManyAssigned { max: MAX_ASSIGNED_EVALUATIONS });
    }

    #[test]
    fn a_check_needs_a_key_first_and_defaults_to_openai() {
        let missing = KeyCheckBody { provider: Some("mistral".into()), ..KeyCheckBody::default() };
        assert_eq!(missing.try_into_domain().map(|_| ()), Err(FieldError::new("api_key", Rule::ApiKeyRequired)));
        let plain = KeyCheckBody { api_key: Some(SecretString::from("sk-abc")), ..KeyCheckBody::default() };
        assert_eq!(plain.try_into_domain().unwrap().provider, Provider::Openai);
    }

    #[test]
    fn an_update_body_keeps_the_provider_apart_from_the_edits_and_a_replace_needs_both_fields() {
        let patch = ProviderKeyBody {
            provider: Some("anthropic".into()),
            name: Some("   ".into()),
            api_key: Some(SecretString::from(" sk-new-123456 ".to_owned())),
            ..ProviderKeyBody::default()
        };
        let update = patch.into_update();
        assert_eq!(update.provider.unwrap(), Some(Provider::Anthropic));
        assert_eq!(update.edits.unwrap_err().field, "name", "a blank name is refused after the provider");

        let blank_key = ProviderKeyBody { api_key: Some(SecretString::from("  ".to_owned())), ..Default::default() };
        let refused = blank_key.into_update().edits.unwrap_err();
        assert_eq!((refused.field.as_str(), refused.rule), ("api_key", Rule::Blank));
        let unknown = ProviderKeyBody { provider: Some("mistral".into()), ..Default::default() };
        assert_eq!(unknown.into_update().provider.unwrap_err().field, "provider");

        let key =
            ProviderKeyBody { api_key: Some(SecretString::from(" sk-new-123456 ".to_owned())), ..Default::default() };
        let edits = key.into_update().edits.unwrap();
        assert_eq!(edits.api_key.unwrap().expose_secret(), "sk-new-123456");

        for (body, field) in [
            (ProviderKeyBody { name: Some("k".into()), ..Default::default() }, "provider"),
            (ProviderKeyBody { provider: Some("openai".into()), ..Default::default() }, "name"),
        ] {
            let refused = body.try_into_replace().unwrap_err();
            assert_eq!((refused.field.as_str(), refused.rule), (field, Rule::Required));
        }
    }
}
