//! LLM use, shared by the summary, reports and the judge (DESIGN.md "LLM use"): which LLM
//! a purpose gets, the call itself, its `llm_calls` record and the key bookkeeping
//! (`last_used_at`; a key the provider rejects turns `invalid`). None of the callers
//! repeats a step of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use serde::de::DeserializeOwned;

use super::{
    CompletionError, CompletionRequest, LlmCallLog, LlmCallOutcome, LlmCallRecord, LlmGateway, LlmPurpose,
    StructuredCompletion, TokenUsage, parse_completion,
};
use crate::evaluation::Evaluation;
use crate::evaluation_config::EvaluationConfigRepository;
use crate::models::{TrialModels, default_model};
use crate::provider_key::{
    AzureTarget, KeyState, Provider, ProviderCredentials, ProviderKeyRepository, ProviderKeyService,
};
use crate::{ProjectId, ProviderKeyId, RepositoryError};

/// The message stored on a key that a provider rejected when it was used.
pub const KEY_REJECTED_MESSAGE: &str = "The provider rejected this key when it was used. Replace it with a valid key.";

/// The operator's LLM (`LLMA_SYSTEM_LLM_*`): trial credits for the judge, the last resort
/// for summaries and reports.
#[derive(Debug, Clone)]
pub struct SystemLlm {
    pub provider: Provider,
    pub api_key: SecretString,
    pub model: String,
    /// Required for Azure OpenAI.
    pub azure: Option<AzureTarget>,
}

/// An LLM chosen for a call.
#[derive(Debug, Clone)]
pub struct ChosenLlm {
    pub credentials: ProviderCredentials,
    pub model: String,
    /// The project's key, or `None` for the system LLM.
    pub key: Option<ProviderKeyId>,
}

/// What the judge runs with (spec section 9's order).
#[derive(Debug, Clone)]
pub enum JudgeLlm {
    /// A key of the project (`$ai_evaluation_key_type: byok`).
    OwnKey(ChosenLlm),
    /// The operator's system LLM on trial credits (`posthog`).
    Trial(ChosenLlm),
    /// The evaluation's configured key is marked invalid.
    KeyInvalid(ProviderKeyId),
    /// No key, and the model is not a trial model (or there is no system LLM).
    ModelNotAllowed,
}

/// The ports LLM use needs.
pub struct LlmUsePorts {
    pub provider_keys: Arc<ProviderKeyService>,
    pub key_repository: Arc<dyn ProviderKeyRepository>,
    pub evaluation_configs: Arc<dyn EvaluationConfigRepository>,
    pub gateway: Arc<dyn LlmGateway>,
    pub completion: Arc<dyn StructuredCompletion>,
    pub llm_calls: Arc<dyn LlmCallLog>,
}

/// Choosing and calling LLMs for every purpose.
pub struct LlmUse {
    ports: LlmUsePorts,
    system_llm: Option<SystemLlm>,
    trial_models: TrialModels,
}

impl LlmUse {
    pub fn new(ports: LlmUsePorts, system_llm: Option<SystemLlm>, trial_models: TrialModels) -> Self {
        Self { ports, system_llm, trial_models }
    }

    fn system(&self) -> Option<ChosenLlm> {
        self.system_llm.as_ref().map(|system| ChosenLlm {
            credentials: ProviderCredentials {
                provider: system.provider,
                api_key: system.api_key.clone(),
                azure: system.azure.clone(),
            },
            model: system.model.clone(),
            key: None,
        })
    }

    /// Section 11's order (summary and reports): the evaluation's configured key; the
    /// project's active key with its provider's default model; the system LLM; none.
    pub async fn choose_for_summary(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
    ) -> Result<Option<ChosenLlm>, RepositoryError> {
        if let Some(configuration) = &evaluation.model_configuration
            && let Some(key_id) = configuration.provider_key
            && let Some(credentials) = self.usable_key(project, key_id, false).await?
        {
            return Ok(Some(ChosenLlm { credentials, model: configuration.model.clone(), key: Some(key_id) }));
        }
        if let Some(chosen) = self.active_key(project, evaluation).await? {
            return Ok(Some(chosen));
        }
        Ok(self.system())
    }

    /// Section 9's order (the judge): the model configuration's key; else the project's
    /// active key (state `ok`); else trial credits on the system LLM when the evaluation
    /// names a trial model (or no model: the system model); else not allowed.
    pub async fn choose_for_judge(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
    ) -> Result<JudgeLlm, RepositoryError> {
        if let Some(configuration) = &evaluation.model_configuration
            && let Some(key_id) = configuration.provider_key
        {
            return Ok(match self.usable_key(project, key_id, false).await? {
                Some(credentials) => {
                    JudgeLlm::OwnKey(ChosenLlm { credentials, model: configuration.model.clone(), key: Some(key_id) })
                }
                None => JudgeLlm::KeyInvalid(key_id),
            });
        }
        if let Some(chosen) = self.active_key(project, evaluation).await? {
            return Ok(JudgeLlm::OwnKey(chosen));
        }
        let Some(mut system) = self.system() else {
            return Ok(JudgeLlm::ModelNotAllowed);
        };
        match &evaluation.model_configuration {
            None => Ok(JudgeLlm::Trial(system)),
            Some(configuration) if self.trial_models.includes(configuration.provider, &configuration.model) => {
                system.model = configuration.model.clone();
                Ok(JudgeLlm::Trial(system))
            }
            Some(_) => Ok(JudgeLlm::ModelNotAllowed),
        }
    }

    /// The project's active key when it is `ok`, with the model to use on it.
    async fn active_key(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
    ) -> Result<Option<ChosenLlm>, RepositoryError> {
        let settings = self.ports.evaluation_configs.get(project).await?;
        if let Some(key_id) = settings.active_provider_key
            && let Some(credentials) = self.usable_key(project, key_id, true).await?
            && let Some(model) = self.model_for_active_key(evaluation, &credentials).await
        {
            return Ok(Some(ChosenLlm { credentials, model, key: Some(key_id) }));
        }
        Ok(None)
    }

    /// A key's credentials when it may be called: not rejected (with `require_ok`, checked
    /// `ok`), and its endpoint allowed by the current policy.
    async fn usable_key(
        &self,
        project: ProjectId,
        key_id: ProviderKeyId,
        require_ok: bool,
    ) -> Result<Option<ProviderCredentials>, RepositoryError> {
        let Some((key, credentials)) = self.ports.provider_keys.stored_credentials(project, key_id).await? else {
            return Ok(None);
        };
        let state_ok = if require_ok { key.state == KeyState::Ok } else { key.state != KeyState::Invalid };
        if !state_ok || self.ports.provider_keys.may_call(&credentials).is_err() {
            return Ok(None);
        }
        Ok(Some(credentials))
    }

    /// The model used with the active key: the evaluation's model when it names the key's
    /// provider, else the provider's default; for Azure without one, the resource's first
    /// deployment.
    async fn model_for_active_key(&self, evaluation: &Evaluation, credentials: &ProviderCredentials) -> Option<String> {
        if let Some(configuration) = &evaluation.model_configuration
            && configuration.provider == credentials.provider
        {
            return Some(configuration.model.clone());
        }
        if credentials.provider != Provider::AzureOpenai {
            return default_model(credentials.provider).map(str::to_owned);
        }
        match self.ports.gateway.list_models(credentials).await {
            Ok(models) => models.into_iter().next().map(|model| model.id),
            Err(error) => {
                tracing::warn!(%error, "could not list the Azure deployments of the active key");
                None
            }
        }
    }

    /// One structured call within `deadline`, parsed into `T` (a wrong shape is
    /// `BadOutput`), recorded in `llm_calls`; the key used gets `last_used_at`, and turns
    /// `invalid` when the provider rejects it.
    pub async fn complete<T: DeserializeOwned>(
        &self,
        project: ProjectId,
        purpose: LlmPurpose,
        llm: &ChosenLlm,
        request: &CompletionRequest,
        deadline: Instant,
    ) -> Result<T, CompletionError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(CompletionError::Timeout);
        }
        tracing::debug!(prompt = %request.user, purpose = purpose.as_str(), "LLM call");
        let started = Instant::now();
        let completion = self.ports.completion.complete(&llm.credentials, request, remaining).await;
        let usage = completion.as_ref().map(|c| c.usage).unwrap_or_default();
        let result = completion.and_then(|completion| parse_completion::<T>(&completion));
        self.record(project, purpose, llm, result.as_ref().err(), usage, started.elapsed()).await;
        if let Some(key_id) = llm.key {
            if let Err(error) = self.ports.key_repository.touch_last_used(project, key_id).await {
                tracing::warn!(error = %error.0, "could not mark a provider key as used");
            }
            if matches!(result, Err(CompletionError::KeyRejected)) {
                self.mark_rejected(project, key_id).await;
            }
        }
        result
    }

    async fn record(
        &self,
        project: ProjectId,
        purpose: LlmPurpose,
        llm: &ChosenLlm,
        error: Option<&CompletionError>,
        usage: TokenUsage,
        latency: Duration,
    ) {
        let outcome = error.map_or(LlmCallOutcome::Ok, LlmCallOutcome::of_error);
        let record = LlmCallRecord {
            project,
            purpose,
            provider: llm.credentials.provider,
            model: llm.model.clone(),
            key: llm.key,
            input_tokens: usage.input,
            output_tokens: usage.output,
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            outcome,
        };
        if let Err(error) = self.ports.llm_calls.record(&record).await {
            tracing::warn!(error = %error.0, "could not record an LLM call");
        }
    }

    async fn mark_rejected(&self, project: ProjectId, key_id: ProviderKeyId) {
        if let Err(error) = self.ports.provider_keys.record_rejection(project, key_id, KEY_REJECTED_MESSAGE).await {
            tracing::warn!(error = %error.0, "could not mark a rejected provider key invalid");
        }
    }
}
