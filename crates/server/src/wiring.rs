//! Builds the adapters and services from the configuration.

use std::sync::Arc;

use adapters_crypto::{AesGcmCipher, KeyRing};
use adapters_http::{AppState, Readiness};
use adapters_llm::{HttpLlmGateway, HttpStructuredCompletion};
use adapters_postgres::{
    PgAiEventStore, PgEvaluationConfigRepository, PgEvaluationRepository, PgIdentityRepository, PgLlmCallLog, PgPool,
    PgProviderKeyRepository, PgRateLimiter, PgSummaryCache,
};
use async_trait::async_trait;
use domain::evaluation::EvaluationService;
use domain::evaluation_config::EvaluationConfigService;
use domain::identity::{AccessService, AdminService};
use domain::ingestion::IngestionService;
use domain::models::ModelsService;
use domain::offline_evaluation::OfflineEvaluationService;
use domain::provider_key::{ApiVersion, AzureEndpoint, AzureTarget, ProviderKeyService, ProviderKeyServiceConfig};
use domain::summary::{SummaryConfig, SummaryPorts, SummaryService, SystemLlm};
use secrecy::ExposeSecret;

use crate::config::{Config, ConfigError};

struct DatabaseReadiness(PgPool);

#[async_trait]
impl Readiness for DatabaseReadiness {
    async fn is_ready(&self) -> bool {
        adapters_postgres::ping(&self.0).await
    }
}

/// The cipher from `LLMA_ENCRYPTION_KEYS`.
pub fn cipher(config: &Config) -> Result<AesGcmCipher, ConfigError> {
    let spec = config.require_encryption_keys()?;
    let ring = KeyRing::parse(spec.expose_secret())
        .map_err(|e| ConfigError { variable: "LLMA_ENCRYPTION_KEYS".into(), message: e.to_string() })?;
    Ok(AesGcmCipher::new(ring))
}

/// The provider-key use cases.
pub fn provider_key_service(config: &Config, pool: &PgPool) -> anyhow::Result<Arc<ProviderKeyService>> {
    let gateway = Arc::new(HttpLlmGateway::new(config.llm_gateway.clone())?);
    Ok(Arc::new(ProviderKeyService::new(
        Arc::new(PgProviderKeyRepository::new(pool.clone())),
        gateway,
        Arc::new(cipher(config)?),
        ProviderKeyServiceConfig { allow_private_endpoints: config.allow_private_endpoints },
    )))
}

/// The operator's identity commands.
pub fn admin_service(pool: &PgPool) -> AdminService {
    AdminService::new(Arc::new(PgIdentityRepository::new(pool.clone())))
}

/// The AI event store (ingestion writes it; every event read goes through it).
pub fn ai_event_store(pool: &PgPool) -> PgAiEventStore {
    PgAiEventStore::new(pool.clone())
}

/// The system LLM as the summary use case takes it (the Azure endpoint parsed under the
/// endpoint policy).
fn system_llm(config: &Config) -> Result<Option<SystemLlm>, ConfigError> {
    let Some(system) = &config.system_llm else {
        return Ok(None);
    };
    let azure = match &system.azure_endpoint {
        Some(endpoint) if system.provider == domain::provider_key::Provider::AzureOpenai => Some(AzureTarget {
            endpoint: AzureEndpoint::parse(endpoint, config.allow_private_endpoints).map_err(|e| ConfigError {
                variable: "LLMA_SYSTEM_LLM_AZURE_ENDPOINT".into(),
                message: e.to_string(),
            })?,
            api_version: ApiVersion::parse(None)
                .map_err(|message| ConfigError { variable: "LLMA_SYSTEM_LLM_AZURE_ENDPOINT".into(), message })?,
        }),
        _ => None,
    };
    Ok(Some(SystemLlm {
        provider: system.provider,
        api_key: system.api_key.clone(),
        model: system.model.clone(),
        azure,
    }))
}

/// Everything the HTTP API needs.
pub fn app_state(config: &Config, pool: &PgPool) -> anyhow::Result<AppState> {
    let gateway = Arc::new(HttpLlmGateway::new(config.llm_gateway.clone())?);
    let provider_keys = Arc::new(ProviderKeyService::new(
        Arc::new(PgProviderKeyRepository::new(pool.clone())),
        gateway.clone(),
        Arc::new(cipher(config)?),
        ProviderKeyServiceConfig { allow_private_endpoints: config.allow_private_endpoints },
    ));
    let models = Arc::new(ModelsService::new(
        provider_keys.clone(),
        gateway.clone(),
        Arc::new(PgEvaluationConfigRepository::new(pool.clone())),
        config.trial_models.clone(),
    ));
    let events = Arc::new(ai_event_store(pool));
    let ingestion = Arc::new(IngestionService::new(Arc::new(PgIdentityRepository::new(pool.clone())), events.clone()));
    let offline_evaluations = Arc::new(OfflineEvaluationService::new(events.clone()));
    let key_repository = Arc::new(PgProviderKeyRepository::new(pool.clone()));
    let evaluations =
        Arc::new(EvaluationService::new(Arc::new(PgEvaluationRepository::new(pool.clone())), key_repository.clone()));
    let evaluation_config = Arc::new(EvaluationConfigService::new(
        Arc::new(PgEvaluationConfigRepository::new(pool.clone())),
        key_repository,
    ));
    let summaries = Arc::new(SummaryService::new(
        SummaryPorts {
            evaluations: Arc::new(PgEvaluationRepository::new(pool.clone())),
            events,
            provider_keys: provider_keys.clone(),
            key_repository: Arc::new(PgProviderKeyRepository::new(pool.clone())),
            evaluation_configs: Arc::new(PgEvaluationConfigRepository::new(pool.clone())),
            gateway,
            completion: Arc::new(HttpStructuredCompletion::new(config.llm_gateway.clone())?),
            cache: Arc::new(PgSummaryCache::new(pool.clone())),
            rate_limiter: Arc::new(PgRateLimiter::new(pool.clone())),
            llm_calls: Arc::new(PgLlmCallLog::new(pool.clone())),
        },
        SummaryConfig { system_llm: system_llm(config)?, llm_timeout: config.llm_timeout },
    ));
    Ok(AppState {
        access: Arc::new(AccessService::new(Arc::new(PgIdentityRepository::new(pool.clone())))),
        provider_keys,
        models,
        evaluations,
        evaluation_config,
        ingestion,
        offline_evaluations,
        summaries,
        readiness: Arc::new(DatabaseReadiness(pool.clone())),
    })
}
