//! Provider-key commands (create and check, read by the adapter that received them) and
//! the update as sent (its checks follow the stored key's lookup), with how its fields are
//! read.

use secrecy::{ExposeSecret, SecretString};

use super::{CredentialField, EndpointInput, KeyName, Provider};
use crate::invalid::{FieldError, Rule};
use crate::llm::KeyCheck;

/// Store a new key. The key's format and the Azure target are checked by the service (the
/// endpoint under the operator's policy), then the provider is asked.
#[derive(Debug, Clone)]
pub struct CreateProviderKey {
    pub provider: Provider,
    pub name: KeyName,
    /// Trimmed, not blank.
    pub api_key: SecretString,
    pub azure_endpoint: Option<String>,
    pub api_version: Option<String>,
    /// An OpenAI-compatible endpoint's settings.
    pub endpoint: EndpointInput,
    pub set_as_active: bool,
}

/// A key's changes (PATCH, and PUT once its required fields are there) as the caller
/// parsed them: the provider sent, which must be the key's own, then the edits. A refused
/// field is answered only once the key is found, the provider first.
#[derive(Debug, Clone)]
pub struct UpdateProviderKey {
    pub provider: Result<Option<Provider>, FieldError>,
    pub edits: Result<KeyEdits, FieldError>,
}

impl UpdateProviderKey {
    /// Edits with no provider sent.
    pub fn edits(edits: KeyEdits) -> Self {
        Self { provider: Ok(None), edits: Ok(edits) }
    }
}

/// What a key update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyEdits {
    pub name: Option<KeyName>,
    /// Trimmed, not blank.
    pub api_key: Option<SecretString>,
    pub azure_endpoint: Option<String>,
    pub api_version: Option<String>,
    /// An OpenAI-compatible endpoint's settings; a new `base_url` needs `api_key` too.
    pub endpoint: EndpointInput,
    pub set_as_active: bool,
}

/// Check a key without storing it (`provider_key_validations`).
#[derive(Debug, Clone)]
pub struct CheckProviderKey {
    pub provider: Provider,
    /// Trimmed, not blank.
    pub api_key: SecretString,
    pub azure_endpoint: Option<String>,
    pub api_version: Option<String>,
    pub endpoint: EndpointInput,
}

/// `provider` as sent: a provider name or an accepted alias.
pub fn parse_provider(raw: &str) -> Result<Provider, FieldError> {
    Provider::parse(raw).map_err(|_| FieldError::new("provider", Rule::UnknownProvider))
}

/// `name` as sent.
pub fn parse_name(raw: &str) -> Result<KeyName, FieldError> {
    KeyName::parse(raw).map_err(|e| FieldError::new("name", e.into()))
}

/// The trimmed key; `missing` is the rule an absent or blank key breaks.
pub fn required_key(api_key: Option<&SecretString>, missing: Rule) -> Result<SecretString, FieldError> {
    match api_key {
        Some(key) if !key.expose_secret().trim().is_empty() => {
            Ok(SecretString::from(key.expose_secret().trim().to_owned()))
        }
        _ => Err(FieldError::new("api_key", missing)),
    }
}

pub(super) fn rejection(check: &KeyCheck) -> FieldError {
    let field = check.field.unwrap_or(CredentialField::ApiKey).as_str();
    FieldError::new(field, Rule::ProviderRejected { reason: check.message.clone() })
}
