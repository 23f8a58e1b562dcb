//! Evaluation-settings use cases: read the settings with the active key, choose the key.

use std::sync::Arc;

use super::{EvaluationConfig, EvaluationConfigRepository};
use crate::provider_key::{KeyState, ProviderKey, ProviderKeyRepository};
use crate::{ProjectId, ProviderKeyId, RepositoryError};

/// A project's settings with its active key resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationSettings {
    pub config: EvaluationConfig,
    pub active_key: Option<ProviderKey>,
}

/// Choosing the active key failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SetActiveKeyError {
    #[error("no key id was sent")]
    MissingKeyId,
    /// Not a key of this project (or not a UUID).
    #[error("key not found")]
    KeyNotFound,
    /// Only a key the provider accepted (`ok`) may run the project's evaluations.
    #[error("the key's state is {}, not ok", .0.as_str())]
    KeyNotUsable(KeyState),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The evaluation-settings use cases.
pub struct EvaluationConfigService {
    configs: Arc<dyn EvaluationConfigRepository>,
    keys: Arc<dyn ProviderKeyRepository>,
}

impl EvaluationConfigService {
    pub fn new(configs: Arc<dyn EvaluationConfigRepository>, keys: Arc<dyn ProviderKeyRepository>) -> Self {
        Self { configs, keys }
    }

    /// The project's settings (defaults when it stored none) and its active key.
    pub async fn get(&self, project: ProjectId) -> Result<EvaluationSettings, RepositoryError> {
        let config = self.configs.get(project).await?;
        let active_key = match config.active_provider_key {
            Some(id) => self.keys.find(project, id).await?,
            None => None,
        };
        Ok(EvaluationSettings { config, active_key })
    }

    /// Makes the key (`key_id` as sent) the project's active key; returns the new settings.
    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn set_active_key(
        &self,
        project: ProjectId,
        key_id: Option<&str>,
    ) -> Result<EvaluationSettings, SetActiveKeyError> {
        let raw = key_id.map(str::trim).filter(|raw| !raw.is_empty()).ok_or(SetActiveKeyError::MissingKeyId)?;
        let key = raw.parse::<ProviderKeyId>().map_err(|_| SetActiveKeyError::KeyNotFound)?;
        let stored = self.keys.find(project, key).await?.ok_or(SetActiveKeyError::KeyNotFound)?;
        if stored.state != KeyState::Ok {
            return Err(SetActiveKeyError::KeyNotUsable(stored.state));
        }
        if !self.configs.set_active_key(project, key).await? {
            return Err(SetActiveKeyError::KeyNotFound);
        }
        Ok(self.get(project).await?)
    }
}

#[cfg(test)]
mod tests {

    use mockall::predicate::eq;

    use super::*;
    use crate::evaluation_config::MockEvaluationConfigRepository;
    use crate::provider_key::MockProviderKeyRepository;

    const PROJECT: ProjectId = ProjectId(4);

    fn key(id: ProviderKeyId) -> ProviderKey {
        ProviderKey { id, ..crate::provider_key::testing::stored_key(PROJECT) }
    }

    fn service(configs: MockEvaluationConfigRepository, keys: MockProviderKeyRepository) -> EvaluationConfigService {
        EvaluationConfigService::new(Arc::new(configs), Arc::new(keys))
    }

    #[tokio::test]
    async fn get_resolves_the_active_key() {
        let id = ProviderKeyId::generate();
        let mut configs = MockEvaluationConfigRepository::new();
        configs.expect_get().returning(move |project| {
            Ok(EvaluationConfig { active_provider_key: Some(id), ..EvaluationConfig::default_for(project) })
        });
        let mut keys = MockProviderKeyRepository::new();
        keys.expect_find().with(eq(PROJECT), eq(id)).returning(move |_, id| Ok(Some(key(id))));

        let settings = service(configs, keys).get(PROJECT).await.unwrap();

        assert_eq!(settings.active_key.map(|k| k.id), Some(id));
        assert_eq!(settings.config.trial_evals_remaining(), 100);
    }

    #[tokio::test]
    async fn get_without_an_active_key_reads_no_key() {
        let mut configs = MockEvaluationConfigRepository::new();
        configs.expect_get().returning(|project| Ok(EvaluationConfig::default_for(project)));
        let mut keys = MockProviderKeyRepository::new();
        keys.expect_find().never();

        assert_eq!(service(configs, keys).get(PROJECT).await.unwrap().active_key, None);
    }

    #[tokio::test]
    async fn set_active_key_needs_a_key_id() {
        let mut configs = MockEvaluationConfigRepository::new();
        configs.expect_set_active_key().never();
        let service = service(configs, MockProviderKeyRepository::new());

        for raw in [None, Some(""), Some("  ")] {
            assert!(matches!(service.set_active_key(PROJECT, raw).await, Err(SetActiveKeyError::MissingKeyId)));
        }
        assert!(matches!(service.set_active_key(PROJECT, Some("nope")).await, Err(SetActiveKeyError::KeyNotFound)));
    }

    #[tokio::test]
    async fn set_active_key_refuses_a_key_outside_the_project() {
        let mut configs = MockEvaluationConfigRepository::new();
        configs.expect_set_active_key().never();
        configs.expect_get().never();
        let mut keys = MockProviderKeyRepository::new();
        keys.expect_find().returning(|_, _| Ok(None));
        let service = service(configs, keys);

        let error = service.set_active_key(PROJECT, Some(&ProviderKeyId::generate().to_string())).await.unwrap_err();

        assert!(matches!(error, SetActiveKeyError::KeyNotFound));
    }

    #[tokio::test]
    async fn set_active_key_stores_it_and_returns_the_settings() {
        let id = ProviderKeyId::generate();
        let mut configs = MockEvaluationConfigRepository::new();
        configs.expect_set_active_key().with(eq(PROJECT), eq(id)).times(1).returning(|_, _| Ok(true));
        configs.expect_get().returning(move |project| {
            Ok(EvaluationConfig { active_provider_key: Some(id), ..EvaluationConfig::default_for(project) })
        });
        let mut keys = MockProviderKeyRepository::new();
        keys.expect_find().returning(|_, id| Ok(Some(key(id))));

        let settings = service(configs, keys).set_active_key(PROJECT, Some(&format!(" {id} "))).await.unwrap();

        assert_eq!(settings.active_key.map(|k| k.id), Some(id));
    }

    #[tokio::test]
    async fn set_active_key_refuses_a_key_that_is_not_ok() {
        for state in [KeyState::Unknown, KeyState::Invalid, KeyState::Error] {
            let mut configs = MockEvaluationConfigRepository::new();
            configs.expect_set_active_key().never();
            let mut keys = MockProviderKeyRepository::new();
            keys.expect_find().returning(move |_, id| Ok(Some(ProviderKey { state, ..key(id) })));

            let error = service(configs, keys)
                .set_active_key(PROJECT, Some(&ProviderKeyId::generate().to_string()))
                .await
                .unwrap_err();

            assert!(matches!(error, SetActiveKeyError::KeyNotUsable(refused) if refused == state), "{state:?}");
        }
    }
}

from_repository_error!(SetActiveKeyError);

use_case_errors!(SetActiveKeyError: [Unexpected]);
