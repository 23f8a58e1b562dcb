//! The `models` use case: the live list of a key, or the curated/trial list without one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{TrialModels, curated_models};
use crate::evaluation_config::EvaluationConfigRepository;
use crate::llm::{ListedModel, LlmGateway};
use crate::provider_key::{Provider, ProviderKey, ProviderKeyService};
use crate::{ProjectId, ProviderKeyId};

/// How long a key's live model list is reused.
pub const MODEL_CACHE_TTL: Duration = Duration::from_secs(60);

/// One model in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub id: String,
    /// Runs on the operator's trial credits (and credits remain).
    pub posthog_available: bool,
}

/// Why the model list could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ListModelsError {
    #[error("no provider was named")]
    MissingProvider,
    /// Not a provider name; holds the name as sent.
    #[error("unknown provider `{0}`")]
    InvalidProvider(String),
    #[error("key not found")]
    KeyNotFound,
    #[error("the key's provider {key} is not the requested {requested}")]
    ProviderMismatch { key: Provider, requested: Provider },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

struct CachedList {
    fetched: Instant,
    key_version: DateTime<Utc>,
    models: Vec<ListedModel>,
}

/// Lists models for a provider, live with a key (cached per key for a minute and dropped
/// when the key changes), curated without one.
pub struct ModelsService {
    keys: Arc<ProviderKeyService>,
    gateway: Arc<dyn LlmGateway>,
    evaluation_configs: Arc<dyn EvaluationConfigRepository>,
    trial: TrialModels,
    cache: Mutex<HashMap<ProviderKeyId, CachedList>>,
}

impl ModelsService {
    pub fn new(
        keys: Arc<ProviderKeyService>,
        gateway: Arc<dyn LlmGateway>,
        evaluation_configs: Arc<dyn EvaluationConfigRepository>,
        trial: TrialModels,
    ) -> Self {
        Self { keys, gateway, evaluation_configs, trial, cache: Mutex::new(HashMap::new()) }
    }

    /// The models of `provider` (raw query value), with the key `key_id` when given.
    pub async fn list(
        &self,
        project: ProjectId,
        provider: Option<&str>,
        key_id: Option<&str>,
    ) -> Result<Vec<ModelEntry>, ListModelsError> {
        let provider = match provider.map(str::trim).filter(|p| !p.is_empty()) {
            None => return Err(ListModelsError::MissingProvider),
            Some(raw) => Provider::parse(raw).map_err(|_| ListModelsError::InvalidProvider(raw.to_owned()))?,
        };
        let credits_left = !self.evaluation_configs.get(project).await?.trial_limit_reached();
        let available = |id: &str| credits_left && self.trial.includes(provider, id);

        let Some(raw_key) = key_id.map(str::trim).filter(|k| !k.is_empty()) else {
            let mut ids: Vec<String> = curated_models(provider).iter().map(|m| (*m).to_owned()).collect();
            for model in self.trial.for_provider(provider) {
                if !ids.contains(model) {
                    ids.push(model.clone());
                }
            }
            return Ok(ids.into_iter().map(|id| ModelEntry { posthog_available: available(&id), id }).collect());
        };
        let key_id: ProviderKeyId = raw_key.parse().map_err(|_| ListModelsError::KeyNotFound)?;
        let (key, live) = self.live_models(project, provider, key_id).await?;
        let custom_models = key.compatible.map(|settings| settings.custom_models).unwrap_or_default();
        let ids = match live {
            Some(models) => order_models(provider, models),
            // An OpenAI-compatible endpoint without a model list offers what its key names.
            None if !custom_models.is_empty() => custom_models,
            None => curated_models(provider).iter().map(|m| (*m).to_owned()).collect(),
        };
        Ok(ids.into_iter().map(|id| ModelEntry { posthog_available: available(&id), id }).collect())
    }

    /// The key and its live list; `None` when the provider could not give one.
    async fn live_models(
        &self,
        project: ProjectId,
        provider: Provider,
        key_id: ProviderKeyId,
    ) -> Result<(ProviderKey, Option<Vec<ListedModel>>), ListModelsError> {
        let (key, credentials) =
            self.keys.stored_credentials(project, key_id).await?.ok_or(ListModelsError::KeyNotFound)?;
        if key.provider != provider {
            return Err(ListModelsError::ProviderMismatch { key: key.provider, requested: provider });
        }
        if let Err(reason) = self.keys.may_call(&credentials) {
            tracing::warn!(provider = %provider, %reason, "the key's endpoint may not be called; answering the curated list");
            return Ok((key, None));
        }
        if let Some(cached) = self.cached(key_id, key.updated_at) {
            return Ok((key, Some(cached)));
        }
        match self.gateway.list_models(&credentials).await {
            Ok(models) => {
                let entry = CachedList { fetched: Instant::now(), key_version: key.updated_at, models: models.clone() };
                self.cache.lock().expect("model cache lock").insert(key_id, entry);
                Ok((key, Some(models)))
            }
            Err(error) => {
                tracing::warn!(provider = %provider, %error, "could not list models; answering the curated list");
                Ok((key, None))
            }
        }
    }

    fn cached(&self, key_id: ProviderKeyId, key_version: DateTime<Utc>) -> Option<Vec<ListedModel>> {
        let mut cache = self.cache.lock().expect("model cache lock");
        match cache.get(&key_id) {
            Some(entry) if entry.key_version == key_version && entry.fetched.elapsed() < MODEL_CACHE_TTL => {
                Some(entry.models.clone())
            }
            Some(_) => {
                cache.remove(&key_id);
                None
            }
            None => None,
        }
    }
}

/// Curated models that the key offers first (in curated order), then the rest newest first.
fn order_models(provider: Provider, mut models: Vec<ListedModel>) -> Vec<String> {
    let curated = curated_models(provider);
    let mut ordered: Vec<String> =
        curated.iter().filter(|c| models.iter().any(|m| m.id == **c)).map(|c| (*c).to_owned()).collect();
    models.retain(|m| !curated.contains(&m.id.as_str()));
    models.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    let mut seen = std::collections::HashSet::new();
    ordered.extend(models.into_iter().map(|m| m.id).filter(|id| seen.insert(id.clone())));
    ordered
}

from_repository_error!(ListModelsError);

use_case_errors!(ListModelsError: [Unexpected]);

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
