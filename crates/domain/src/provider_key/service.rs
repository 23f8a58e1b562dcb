//! Provider-key use cases: create, read, update, validate, delete and stateless check
//! (re-sealing under a new encryption key is in `reseal.rs`).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::input::{CheckProviderKey, CreateProviderKey, UpdateProviderKey, rejection};
use super::{
    ApiVersion, AuditNote, AzureEndpoint, AzureTarget, BaseUrl, CompatibleEndpoint, CompatibleSettings,
    CredentialField, DeleteOutcome, DeleteProviderKeyError, EndpointInput, EndpointRefused, GetProviderKeyError,
    KeyAction, KeyActivity, KeyRemoval, KeyState, KeyWrites, NewProviderKeyRecord, Provider, ProviderCredentials,
    ProviderKey, ProviderKeyChanges, ProviderKeyRepository, SaveProviderKeyError, ValidateStoredKeyError,
    check_key_format,
};
use crate::crypto::{KeyCipher, SealContext};
use crate::invalid::{FieldError, Rule};
use crate::llm::{KeyCheck, LlmGateway};
use crate::{Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError, UserId};

/// Settings the provider-key use cases need from the operator.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProviderKeyServiceConfig {
    /// Accept Azure endpoints on any host and `http://` (tests, private gateways).
    pub allow_private_endpoints: bool,
}

/// The provider-key use cases.
pub struct ProviderKeyService {
    pub(super) repository: Arc<dyn ProviderKeyRepository>,
    writes: Arc<dyn KeyWrites>,
    gateway: Arc<dyn LlmGateway>,
    pub(super) cipher: Arc<dyn KeyCipher>,
    config: ProviderKeyServiceConfig,
}

const SEAL_PURPOSE: &str = "provider_key";

pub(super) fn seal_context(project: ProjectId, id: ProviderKeyId) -> SealContext {
    SealContext { purpose: SEAL_PURPOSE, project, row: id.0 }
}

impl ProviderKeyService {
    pub fn new(
        repository: Arc<dyn ProviderKeyRepository>,
        writes: Arc<dyn KeyWrites>,
        gateway: Arc<dyn LlmGateway>,
        cipher: Arc<dyn KeyCipher>,
        config: ProviderKeyServiceConfig,
    ) -> Self {
        Self { repository, writes, gateway, cipher, config }
    }

    fn azure_target(&self, endpoint: Option<&str>, version: Option<&str>) -> Result<AzureTarget, FieldError> {
        let endpoint = AzureEndpoint::parse(endpoint.unwrap_or(""), self.config.allow_private_endpoints)
            .map_err(|e| FieldError::new("azure_endpoint", Rule::AzureEndpoint(e)))?;
        let api_version = ApiVersion::parse(version).map_err(|rule| FieldError::new("api_version", rule))?;
        Ok(AzureTarget { endpoint, api_version })
    }

    fn base_url(&self, raw: Option<&str>) -> Result<BaseUrl, FieldError> {
        BaseUrl::parse(raw.unwrap_or(""), self.config.allow_private_endpoints)
            .map_err(|rule| FieldError::new("base_url", rule))
    }

    /// Credentials from client input: format checks first, so no bad key reaches the network.
    fn credentials(
        &self,
        provider: Provider,
        api_key: SecretString,
        azure_endpoint: Option<&str>,
        api_version: Option<&str>,
        endpoint: &EndpointInput,
    ) -> Result<ProviderCredentials, FieldError> {
        check_key_format(provider, api_key.expose_secret()).map_err(|rule| FieldError::new("api_key", rule))?;
        let azure = match provider {
            Provider::AzureOpenai => Some(self.azure_target(azure_endpoint, api_version)?),
            _ => None,
        };
        let compatible = match provider {
            Provider::OpenaiCompatible => Some(CompatibleEndpoint {
                base_url: self.base_url(endpoint.base_url.as_deref())?,
                extra_headers: endpoint.extra_headers.clone().unwrap_or_default(),
                custom_models: endpoint.custom_models.clone().unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(ProviderCredentials { provider, api_key, azure, compatible })
    }

    /// Validates the key with its provider and stores it sealed. Nothing is stored when
    /// validation fails.
    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn create(
        &self,
        project: ProjectId,
        actor: UserId,
        request: CreateProviderKey,
    ) -> Result<ProviderKey, SaveProviderKeyError> {
        let CreateProviderKey { provider, name, api_key, .. } = request;
        let credentials = self.credentials(
            provider,
            api_key,
            request.azure_endpoint.as_deref(),
            request.api_version.as_deref(),
            &request.endpoint,
        )?;

        let check = self.gateway.check_key(&credentials).await;
        if check.state != KeyState::Ok {
            return Err(rejection(&check).into());
        }

        let id = ProviderKeyId::generate();
        let sealed_secret = self
            .cipher
            .seal(&credentials.to_secret_config(), &seal_context(project, id))
            .map_err(anyhow::Error::from)?;
        let record = NewProviderKeyRecord {
            id,
            project,
            provider,
            name,
            state: KeyState::Ok,
            error_message: None,
            api_key_masked: credentials.masked_key(),
            azure_endpoint: credentials.azure.as_ref().map(|a| a.endpoint.as_str().to_owned()),
            api_version: credentials.azure.as_ref().map(|a| a.api_version.as_str().to_owned()),
            compatible: credentials.compatible.as_ref().map(CompatibleSettings::of),
            sealed_secret,
            created_by: actor,
            set_as_active: request.set_as_active,
        };
        Ok(self.writes.insert(&record).await?)
    }

    /// One key of the project.
    pub async fn get(&self, project: ProjectId, id: ProviderKeyId) -> Result<ProviderKey, GetProviderKeyError> {
        self.repository.find(project, id).await?.ok_or(GetProviderKeyError::NotFound)
    }

    /// A page of the project's keys, newest first.
    pub async fn list(&self, project: ProjectId, page: PageRequest) -> Result<Page<ProviderKey>, RepositoryError> {
        self.repository.list(project, page).await
    }

    /// The stored credentials of a key, opened; `None` when the key does not exist.
    #[tracing::instrument(skip_all, fields(project = %project, key = %id))]
    pub async fn stored_credentials(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
    ) -> Result<Option<(ProviderKey, ProviderCredentials)>, anyhow::Error> {
        let Some(key) = self.repository.find(project, id).await? else {
            return Ok(None);
        };
        let Some(sealed) = self.repository.find_sealed(project, id).await? else {
            return Ok(None);
        };
        let credentials = self.open(&key, &sealed)?;
        Ok(Some((key, credentials)))
    }

    /// Whether stored credentials may be used now: an endpoint saved while private
    /// endpoints were allowed must not be called once they are not.
    pub fn may_call(&self, credentials: &ProviderCredentials) -> Result<(), EndpointRefused> {
        let allow_private = self.config.allow_private_endpoints;
        if let Some(azure) = &credentials.azure {
            AzureEndpoint::parse(azure.endpoint.as_str(), allow_private).map_err(EndpointRefused::Azure)?;
        }
        if let Some(compatible) = &credentials.compatible {
            BaseUrl::parse(compatible.base_url.as_str(), allow_private).map_err(EndpointRefused::BaseUrl)?;
        }
        Ok(())
    }

    fn open(
        &self,
        key: &ProviderKey,
        sealed: &crate::crypto::SealedSecret,
    ) -> Result<ProviderCredentials, anyhow::Error> {
        let plaintext = self.cipher.open(sealed, &seal_context(key.project, key.id))?;
        let mut credentials = ProviderCredentials::from_secret_config(key.provider, &plaintext)
            .ok_or_else(|| anyhow::anyhow!("stored secret of provider key {} is not a valid configuration", key.id))?;
        if let (Some(endpoint), Some(settings)) = (credentials.compatible.as_mut(), key.compatible.as_ref()) {
            endpoint.custom_models.clone_from(&settings.custom_models);
        }
        Ok(credentials)
    }

    /// Updates name, key or Azure settings. A new key is validated first (nothing changes
    /// when it fails); an endpoint/version change without a new key resets the state to
    /// `unknown`. The provider cannot change.
    #[tracing::instrument(skip_all, fields(project = %project, key = %id))]
    pub async fn update(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        request: UpdateProviderKey,
        actor: UserId,
    ) -> Result<ProviderKey, SaveProviderKeyError> {
        let existing = self.repository.find(project, id).await?.ok_or(SaveProviderKeyError::NotFound)?;
        if request.provider?.is_some_and(|provider| provider != existing.provider) {
            return Err(FieldError::new("provider", Rule::ProviderUnchangeable).into());
        }
        let request = request.edits?;
        let mut changes = ProviderKeyChanges {
            name: request.name,
            set_as_active: request.set_as_active,
            ..ProviderKeyChanges::default()
        };

        let is_azure = existing.provider == Provider::AzureOpenai;
        let azure_changed = is_azure
            && (request
                .azure_endpoint
                .as_deref()
                .is_some_and(|e| Some(e.trim().trim_end_matches('/')) != existing.azure_endpoint.as_deref())
                || request.api_version.as_deref().is_some_and(|v| Some(v.trim()) != existing.api_version.as_deref()));
        let endpoint = request.azure_endpoint.as_deref().or(existing.azure_endpoint.as_deref());
        let version = request.api_version.as_deref().or(existing.api_version.as_deref());
        let compatible = existing.provider == Provider::OpenaiCompatible;
        let sent = if compatible { request.endpoint } else { EndpointInput::default() };
        if let Some(base_url) = &sent.base_url {
            let current = existing.compatible.as_ref().map(|c| c.base_url.as_str());
            let moved = current.is_none_or(|current| !BaseUrl::names(current, base_url));
            if moved && request.api_key.is_none() {
                return Err(FieldError::new("api_key", Rule::EndpointNeedsKey).into());
            }
        }

        // What the stored secret holds is needed when only part of it is replaced.
        let stored = if (azure_changed || !sent.is_empty()) && request.api_key.is_none()
            || compatible && request.api_key.is_some() && sent.extra_headers.is_none()
        {
            let sealed = self.repository.find_sealed(project, id).await?;
            let Some(sealed) = sealed else {
                return Err(FieldError::new("api_key", Rule::NoStoredSecret).into());
            };
            Some(self.open(&existing, &sealed)?)
        } else {
            None
        };
        let stored_endpoint = stored.as_ref().and_then(|c| c.compatible.as_ref());
        // The sealed endpoint is the one calls use; the column only shows it.
        let merged = EndpointInput {
            base_url: sent
                .base_url
                .clone()
                .or_else(|| stored_endpoint.map(|e| e.base_url.as_str().to_owned()))
                .or_else(|| existing.compatible.as_ref().map(|c| c.base_url.clone())),
            extra_headers: sent.extra_headers.clone().or_else(|| stored_endpoint.map(|e| e.extra_headers.clone())),
            custom_models: sent
                .custom_models
                .clone()
                .or_else(|| existing.compatible.as_ref().map(|c| c.custom_models.clone())),
        };

        let new_credentials = if let Some(api_key) = request.api_key {
            let credentials = self.credentials(existing.provider, api_key, endpoint, version, &merged)?;
            let check = self.gateway.check_key(&credentials).await;
            if check.state != KeyState::Ok {
                return Err(rejection(&check).into());
            }
            changes.state = Some(KeyState::Ok);
            changes.error_message = Some(None);
            Some(credentials)
        } else if let Some(mut credentials) = stored.filter(|_| azure_changed || !sent.is_empty()) {
            if azure_changed {
                credentials.azure = Some(self.azure_target(endpoint, version)?);
            }
            if let Some(endpoint) = credentials.compatible.as_mut() {
                endpoint.extra_headers = merged.extra_headers.unwrap_or_default();
                endpoint.custom_models = merged.custom_models.unwrap_or_default();
            }
            // Headers can change what the endpoint answers; a list of models cannot.
            if azure_changed || sent.extra_headers.is_some() {
                changes.state = Some(KeyState::Unknown);
                changes.error_message = Some(None);
            }
            Some(credentials)
        } else {
            None
        };

        if let Some(credentials) = new_credentials {
            changes.sealed_secret = Some(
                self.cipher
                    .seal(&credentials.to_secret_config(), &seal_context(project, id))
                    .map_err(anyhow::Error::from)?,
            );
            changes.api_key_masked = Some(credentials.masked_key());
            changes.azure_endpoint = credentials.azure.as_ref().map(|a| a.endpoint.as_str().to_owned());
            changes.api_version = credentials.azure.as_ref().map(|a| a.api_version.as_str().to_owned());
            changes.compatible = credentials.compatible.as_ref().map(CompatibleSettings::of);
        }

        if changes.is_empty() {
            return Ok(existing);
        }
        changes.audit = Some(AuditNote::by(actor, KeyAction::Updated));
        self.writes.update(project, id, &changes).await?.ok_or(SaveProviderKeyError::NotFound)
    }

    /// Re-checks the stored key with its provider and records the outcome; returns the key
    /// also when the provider rejects it.
    #[tracing::instrument(skip_all, fields(project = %project, key = %id))]
    pub async fn validate(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        actor: UserId,
    ) -> Result<ProviderKey, ValidateStoredKeyError> {
        let existing = self.repository.find(project, id).await?.ok_or(ValidateStoredKeyError::NotFound)?;
        let sealed = self.repository.find_sealed(project, id).await?.ok_or(ValidateStoredKeyError::NoSecret)?;
        let credentials = self.open(&existing, &sealed)?;
        // The gateway refuses an endpoint the operator's policy no longer allows.
        let check = self.gateway.check_key(&credentials).await;
        let changes = ProviderKeyChanges {
            state: Some(check.state),
            error_message: Some(check.message),
            audit: Some(AuditNote::by(actor, KeyAction::Validated)),
            ..ProviderKeyChanges::default()
        };
        self.writes.update(project, id, &changes).await?.ok_or(ValidateStoredKeyError::NotFound)
    }

    /// Marks the key invalid with `message` (its provider rejected it while in use), as
    /// the system, in the audit trail as a validation.
    pub async fn record_rejection(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        message: &str,
    ) -> Result<(), RepositoryError> {
        let changes = ProviderKeyChanges {
            state: Some(KeyState::Invalid),
            error_message: Some(Some(message.to_owned())),
            audit: Some(AuditNote::system(KeyAction::Validated)),
            ..ProviderKeyChanges::default()
        };
        self.writes.update(project, id, &changes).await.map(drop)
    }

    /// Deletes a key; with a replacement, its model configurations move to it; without,
    /// the active evaluations that used it stop with status error (`provider_key_deleted`).
    #[tracing::instrument(skip_all, fields(project = %project, key = %id))]
    pub async fn delete(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        replacement: Option<&str>,
        actor: UserId,
    ) -> Result<(), DeleteProviderKeyError> {
        let replacement = match replacement.map(str::trim).filter(|raw| !raw.is_empty()) {
            Some(raw) => match raw.parse::<ProviderKeyId>() {
                Ok(replacement) => Some(replacement),
                // An unusable replacement id is only worth mentioning for a key that exists.
                Err(_) if self.repository.find(project, id).await?.is_none() => {
                    return Err(DeleteProviderKeyError::NotFound);
                }
                Err(_) => return Err(DeleteProviderKeyError::ReplacementNotFound),
            },
            None => None,
        };
        match self.writes.delete(project, id, KeyRemoval { replacement, actor: Some(actor) }).await? {
            DeleteOutcome::Deleted { moved, disabled } => {
                tracing::info!(moved, disabled, "provider key deleted");
                Ok(())
            }
            DeleteOutcome::NotFound => Err(DeleteProviderKeyError::NotFound),
            DeleteOutcome::ReplacementNotFound => Err(DeleteProviderKeyError::ReplacementNotFound),
            DeleteOutcome::ReplacementProviderMismatch => Err(DeleteProviderKeyError::ReplacementProviderMismatch),
        }
    }

    /// The audit trail of the project's keys, or of one key (also after its delete; an id
    /// that never had activity is simply an empty page).
    pub async fn activity(
        &self,
        project: ProjectId,
        key: Option<ProviderKeyId>,
        page: PageRequest,
    ) -> Result<Page<KeyActivity>, RepositoryError> {
        self.repository.activity(project, key, page).await
    }

    /// Checks a key live without storing anything.
    #[tracing::instrument(skip_all)]
    pub async fn check(&self, request: CheckProviderKey) -> KeyCheck {
        let provider = request.provider;
        let credentials = match self.credentials(
            provider,
            request.api_key,
            request.azure_endpoint.as_deref(),
            request.api_version.as_deref(),
            &request.endpoint,
        ) {
            Ok(credentials) => credentials,
            Err(FieldError { field, rule }) => {
                let field = match (provider, field.as_str()) {
                    (Provider::AzureOpenai, "azure_endpoint") => Some(CredentialField::AzureEndpoint),
                    (Provider::AzureOpenai, "api_version") => Some(CredentialField::ApiVersion),
                    (Provider::AzureOpenai, _) => Some(CredentialField::ApiKey),
                    (Provider::OpenaiCompatible, "base_url") => Some(CredentialField::BaseUrl),
                    (Provider::OpenaiCompatible, _) => Some(CredentialField::ApiKey),
                    _ => None,
                };
                return KeyCheck::refused(rule, field);
            }
        };
        let mut check = self.gateway.check_key(&credentials).await;
        if !matches!(provider, Provider::AzureOpenai | Provider::OpenaiCompatible) {
            check.field = None;
        }
        check
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
pub(super) mod service_tests;

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod endpoint_tests;
