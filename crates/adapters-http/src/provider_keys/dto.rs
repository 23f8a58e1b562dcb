//! Request and response bodies of the provider-key endpoints.

use chrono::{DateTime, Utc};
use domain::evaluation::{AssignResult, DependentConfigs, TrialEvaluation};
use domain::llm::KeyCheck;
use domain::provider_key::{ProviderKey, UserSummary};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The basic user object.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedByDto {
    pub id: i64,
    pub uuid: uuid::Uuid,
    pub distinct_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub is_email_verified: Option<bool>,
    #[schema(value_type = Object)]
    pub hedgehog_config: serde_json::Value,
    pub role_at_organization: Option<String>,
}

impl From<UserSummary> for CreatedByDto {
    fn from(user: UserSummary) -> Self {
        Self {
            id: user.id.0,
            uuid: user.uuid,
            distinct_id: None,
            first_name: user.first_name,
            last_name: user.last_name,
            email: user.email,
            is_email_verified: None,
            hedgehog_config: serde_json::json!({}),
            role_at_organization: None,
        }
    }
}

/// A provider key as returned: the key itself never, only its mask.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderKeyDto {
    pub id: uuid::Uuid,
    /// One of openai, anthropic, gemini, azure_openai, fireworks, openrouter, together_ai,
    /// openai_compatible.
    pub provider: String,
    pub name: String,
    /// unknown | ok | invalid | error
    pub state: String,
    pub error_message: Option<String>,
    pub api_key_masked: String,
    pub azure_endpoint_display: Option<String>,
    pub api_version_display: Option<String>,
    /// openai_compatible only: the endpoint the key is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// openai_compatible only: header names with masked values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_headers: Option<std::collections::BTreeMap<String, String>>,
    /// openai_compatible only: the models offered when the endpoint lists none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_models: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<CreatedByDto>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ProviderKey> for ProviderKeyDto {
    fn from(key: ProviderKey) -> Self {
        let compatible = key.compatible;
        Self {
            id: key.id.0,
            provider: key.provider.as_str().to_owned(),
            name: key.name,
            state: key.state.as_str().to_owned(),
            error_message: key.error_message,
            api_key_masked: key.api_key_masked,
            azure_endpoint_display: key.azure_endpoint,
            api_version_display: key.api_version,
            base_url: compatible.as_ref().map(|c| c.base_url.clone()),
            extra_headers: compatible.as_ref().map(|c| c.extra_headers.clone()),
            custom_models: compatible.map(|c| c.custom_models),
            created_at: key.created_at,
            created_by: key.created_by.map(CreatedByDto::from),
            last_used_at: key.last_used_at,
        }
    }
}

/// Body of create, update (PUT/PATCH): every field optional at parse time; the use case
/// says which are required.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProviderKeyBody {
    pub provider: Option<String>,
    pub name: Option<String>,
    /// Write-only; never returned.
    #[schema(value_type = Option<String>, write_only)]
    pub api_key: Option<SecretString>,
    #[schema(write_only)]
    pub azure_endpoint: Option<String>,
    #[schema(write_only)]
    pub api_version: Option<String>,
    #[serde(flatten)]
    pub endpoint: EndpointBody,
    #[schema(write_only)]
    pub set_as_active: Option<bool>,
}

/// The fields of an `openai_compatible` key besides the key (ignored for other providers).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct EndpointBody {
    /// `https://host[/path]` the key is bound to; changing it requires `api_key` again.
    /// (Read as any JSON value, checked when the command is made: a flattened field's
    /// type error would not name it.)
    #[schema(value_type = Option<String>)]
    pub base_url: Option<serde_json::Value>,
    /// Up to 20 headers sent with every call; sealed with the key, shown masked.
    #[schema(value_type = Option<Object>, write_only)]
    pub extra_headers: Option<serde_json::Value>,
    /// Up to 200 model names offered when the endpoint has no `/models`.
    #[schema(value_type = Option<Vec<String>>)]
    pub custom_models: Option<serde_json::Value>,
}

/// Body of `provider_key_validations/`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct KeyCheckBody {
    #[schema(value_type = Option<String>, write_only)]
    pub api_key: Option<SecretString>,
    /// Defaults to openai.
    pub provider: Option<String>,
    pub azure_endpoint: Option<String>,
    pub api_version: Option<String>,
    #[serde(flatten)]
    pub endpoint: EndpointBody,
}

/// The outcome of a stateless key check.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCheckDto {
    /// ok | invalid | error
    pub state: String,
    pub error_message: Option<String>,
    /// azure_endpoint | api_key | base_url | null
    pub error_field: Option<String>,
}

impl From<KeyCheck> for KeyCheckDto {
    fn from(check: KeyCheck) -> Self {
        Self {
            state: check.state.as_str().to_owned(),
            error_message: check.message.or_else(|| check.refused.as_ref().map(crate::wording::rule)),
            error_field: check.field.map(|f| f.as_str().to_owned()),
        }
    }
}

/// Query of DELETE.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// Move this key's model configurations to that key (same project and provider).
    pub replacement_key_id: Option<String>,
}

/// An evaluation whose model configuration uses the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct DependentEvaluationDto {
    pub id: uuid::Uuid,
    pub name: String,
    pub model_configuration_id: uuid::Uuid,
}

/// Another key of the project that could replace this one.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlternativeKeyDto {
    pub id: uuid::Uuid,
    pub name: String,
    pub provider: String,
}

/// The answer of `{id}/dependent_configs/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DependentConfigsDto {
    pub evaluations: Vec<DependentEvaluationDto>,
    pub alternative_keys: Vec<AlternativeKeyDto>,
}

impl From<DependentConfigs> for DependentConfigsDto {
    fn from(configs: DependentConfigs) -> Self {
        Self {
            evaluations: configs
                .evaluations
                .into_iter()
                .map(|e| DependentEvaluationDto {
                    id: e.id.0,
                    name: e.name,
                    model_configuration_id: e.model_configuration.0,
                })
                .collect(),
            alternative_keys: configs
                .alternative_keys
                .into_iter()
                .map(|k| AlternativeKeyDto { id: k.id.0, name: k.name, provider: k.provider.as_str().to_owned() })
                .collect(),
        }
    }
}

/// An evaluation running on trial credits.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrialEvaluationDto {
    pub id: uuid::Uuid,
    pub name: String,
    pub enabled: bool,
}

/// The answer of `trial_evaluations/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrialEvaluationsDto {
    pub evaluations: Vec<TrialEvaluationDto>,
}

impl From<Vec<TrialEvaluation>> for TrialEvaluationsDto {
    fn from(evaluations: Vec<TrialEvaluation>) -> Self {
        Self {
            evaluations: evaluations
                .into_iter()
                .map(|e| TrialEvaluationDto { id: e.id.0, name: e.name, enabled: e.enabled })
                .collect(),
        }
    }
}

/// Query of `trial_evaluations/`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct TrialEvaluationsQuery {
    /// The provider whose trial-credit evaluations to list (required).
    pub provider: Option<String>,
}

/// Body of `{id}/assign/`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AssignBody {
    /// The evaluations to point at this key (required, not empty).
    pub evaluation_ids: Option<Vec<String>>,
    /// Also enable them; default false.
    pub enable: Option<bool>,
}

/// The answer of `{id}/assign/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignResultDto {
    /// Model configurations now using the key (moved or created).
    pub configs_updated: u64,
    /// Disabled evaluations that were enabled.
    pub evals_enabled: u64,
}

impl From<AssignResult> for AssignResultDto {
    fn from(result: AssignResult) -> Self {
        Self { configs_updated: result.configs_updated, evals_enabled: result.evals_enabled }
    }
}

/// One changed field of an audit entry (a key appears only as its mask).
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldChangeDto {
    pub field: String,
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
}

/// One entry of a key's audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyActivityDto {
    pub id: uuid::Uuid,
    pub provider_key_id: uuid::Uuid,
    pub provider_key_name: String,
    /// created | updated | validated | assigned | deleted
    pub action: String,
    /// null for the system (e.g. the runner marking a rejected key invalid).
    pub actor: Option<CreatedByDto>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub changes: Vec<FieldChangeDto>,
}

impl From<domain::provider_key::KeyActivity> for KeyActivityDto {
    fn from(activity: domain::provider_key::KeyActivity) -> Self {
        Self {
            id: activity.id,
            provider_key_id: activity.key.0,
            provider_key_name: activity.key_name,
            action: activity.action.as_str().to_owned(),
            actor: activity.actor.map(CreatedByDto::from),
            created_at: activity.created_at,
            changes: activity
                .changes
                .into_iter()
                .map(|c| FieldChangeDto { field: c.field, before: c.before, after: c.after })
                .collect(),
        }
    }
}
