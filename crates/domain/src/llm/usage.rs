//! The LLM port's implementation (DESIGN.md "LLM use"): which LLM a purpose gets and who
//! pays (trial credits included), the call itself, its `llm_calls` record and the key
//! bookkeeping (`last_used_at`; a key the provider rejects turns `invalid`).

use crate::cost::{CostSource, ModelPriceStore, PriceTable, price_call};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use async_trait::async_trait;

use super::{
    CompletionError, CompletionRequest, Llm, LlmAnswer, LlmCallLog, LlmCallOutcome, LlmCallRecord, LlmError,
    LlmGateway, LlmPurpose, LlmRequest, PaidBy, StructuredCompletion, TokenUsage, TrialCredits,
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
    /// Required for an OpenAI-compatible endpoint.
    pub compatible: Option<crate::provider_key::CompatibleEndpoint>,
}

/// An LLM chosen for a call.
#[derive(Debug, Clone)]
struct ChosenLlm {
    pub credentials: ProviderCredentials,
    pub model: String,
    /// The project's key, or `None` for the system LLM.
    pub key: Option<ProviderKeyId>,
}

/// The ports LLM use needs.
pub struct LlmUsePorts {
    pub provider_keys: Arc<ProviderKeyService>,
    pub key_repository: Arc<dyn ProviderKeyRepository>,
    pub evaluation_configs: Arc<dyn EvaluationConfigRepository>,
    pub gateway: Arc<dyn LlmGateway>,
    pub completion: Arc<dyn StructuredCompletion>,
    pub llm_calls: Arc<dyn LlmCallLog>,
    pub trial_credits: Arc<dyn TrialCredits>,
    /// What the calls are priced with (spec 5.2's order).
    pub price_table: Arc<dyn PriceTable>,
    pub project_prices: Arc<dyn ModelPriceStore>,
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
                compatible: system.compatible.clone(),
            },
            model: system.model.clone(),
            key: None,
        })
    }

    /// Section 11's order (summary and reports): the evaluation's configured key; the
    /// project's active key with its provider's default model; the system LLM; none.
    async fn choose_for_summary(
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

    /// Section 9's order (the judge): the model configuration's key (its evaluations stop
    /// when it is invalid); else the project's active key (state `ok`); else trial credits
    /// on the system LLM when the evaluation names a trial model (or no model: the system
    /// model), a credit taken here; else not allowed.
    async fn choose_for_judge(
        &self,
        project: ProjectId,
        evaluation: &Evaluation,
    ) -> Result<(ChosenLlm, PaidBy), LlmError> {
        if let Some(configuration) = &evaluation.model_configuration
            && let Some(key_id) = configuration.provider_key
        {
            let credentials = self.usable_key(project, key_id, false).await?.ok_or(LlmError::KeyInvalid(key_id))?;
            let chosen = ChosenLlm { credentials, model: configuration.model.clone(), key: Some(key_id) };
            return Ok((chosen, PaidBy::OwnKey(key_id)));
        }
        if let Some(chosen) = self.active_key(project, evaluation).await?
            && let Some(key_id) = chosen.key
        {
            return Ok((chosen, PaidBy::OwnKey(key_id)));
        }
        let mut system = self.system().ok_or(LlmError::ModelNotAllowed)?;
        if let Some(configuration) = &evaluation.model_configuration {
            if !self.trial_models.includes(configuration.provider, &configuration.model) {
                return Err(LlmError::ModelNotAllowed);
            }
            system.model = configuration.model.clone();
        }
        if !self.ports.trial_credits.reserve(project).await? {
            return Err(LlmError::TrialsUsedUp);
        }
        Ok((system, PaidBy::Trial))
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
    /// provider, else the provider's default; for an OpenAI-compatible endpoint its first
    /// custom model; for Azure and endpoints without one, the first model listed.
    async fn model_for_active_key(&self, evaluation: &Evaluation, credentials: &ProviderCredentials) -> Option<String> {
        if let Some(configuration) = &evaluation.model_configuration
            && configuration.provider == credentials.provider
        {
            return Some(configuration.model.clone());
        }
        if let Some(model) = default_model(credentials.provider) {
            return Some(model.to_owned());
        }
        if let Some(model) = credentials.compatible.as_ref().and_then(|c| c.custom_models.first()) {
            return Some(model.clone());
        }
        match self.ports.gateway.list_models(credentials).await {
            Ok(models) => models.into_iter().next().map(|model| model.id),
            Err(error) => {
                tracing::warn!(%error, "could not list the models of the active key");
                None
            }
        }
    }

    /// Who pays for the purpose, in its order; a trial credit is taken here.
    async fn choose(&self, purpose: LlmPurpose, evaluation: &Evaluation) -> Result<(ChosenLlm, PaidBy), LlmError> {
        let project = evaluation.project;
        if purpose == LlmPurpose::Judge {
            return self.choose_for_judge(project, evaluation).await;
        }
        let llm = self.choose_for_summary(project, evaluation).await?.ok_or(LlmError::NoLlm)?;
        let paid_by = llm.key.map_or(PaidBy::Operator, PaidBy::OwnKey);
        Ok((llm, paid_by))
    }

    /// One structured call within the request's deadline, its answer checked against the
    /// caller's shape (a wrong one is `BadOutput`), recorded in `llm_calls`; the key used
    /// gets `last_used_at`, and turns `invalid` when the provider rejects it.
    async fn complete(
        &self,
        project: ProjectId,
        llm: &ChosenLlm,
        request: LlmRequest,
    ) -> Result<serde_json::Value, CompletionError> {
        let remaining = request.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(CompletionError::Timeout);
        }
        let purpose = request.purpose;
        let accepts = request.accepts;
        let prompt = request.prompt;
        let request = CompletionRequest {
            system: prompt.system,
            user: prompt.user,
            schema_name: prompt.schema_name,
            schema: prompt.schema,
            model: llm.model.clone(),
            max_output_tokens: prompt.max_output_tokens,
        };
        tracing::debug!(prompt = %request.user, purpose = purpose.as_str(), "LLM call");
        let started = Instant::now();
        let completion = self.ports.completion.complete(&llm.credentials, &request, remaining).await;
        let usage = completion.as_ref().map(|c| c.usage).unwrap_or_default();
        let result = completion.and_then(|completion| match accepts(&completion.value) {
            Ok(()) => Ok(completion.value),
            Err(why) => Err(CompletionError::BadOutput(why)),
        });
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
        let cost = self.cost_of(project, llm, usage).await;
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
            cost,
        };
        if let Err(error) = self.ports.llm_calls.record(&record).await {
            tracing::warn!(error = %error.0, "could not record an LLM call");
        }
    }

    /// What a call's tokens cost; `None` when it used none or no price is known.
    async fn cost_of(&self, project: ProjectId, llm: &ChosenLlm, usage: TokenUsage) -> Option<(f64, CostSource)> {
        if usage.input == 0 && usage.output == 0 {
            return None;
        }
        let own = match self.ports.project_prices.all(project).await {
            Ok(own) => own,
            Err(error) => {
                tracing::warn!(error = %error.0, "could not read the project's model prices; the table prices the call");
                Vec::new()
            }
        };
        let provider = llm.credentials.provider.as_str();
        let tokens = (usage.input, usage.output);
        price_call(&llm.model, provider, tokens, chrono::Utc::now(), &own, &*self.ports.price_table)
    }

    async fn mark_rejected(&self, project: ProjectId, key_id: ProviderKeyId) {
        if let Err(error) = self.ports.provider_keys.record_rejection(project, key_id, KEY_REJECTED_MESSAGE).await {
            tracing::warn!(error = %error.0, "could not mark a rejected provider key invalid");
        }
    }
}

#[async_trait]
impl Llm for LlmUse {
    async fn run(&self, evaluation: &Evaluation, request: LlmRequest) -> Result<LlmAnswer, LlmError> {
        let project = evaluation.project;
        let (llm, paid_by) = self.choose(request.purpose, evaluation).await?;
        match self.complete(project, &llm, request).await {
            Ok(value) => Ok(LlmAnswer { value, paid_by, provider: llm.credentials.provider, model: llm.model }),
            Err(error) => {
                self.refund(project, paid_by).await?;
                Err(LlmError::Failed { error, paid_by, model: llm.model })
            }
        }
    }

    async fn judges_on_trial_credits(&self, evaluation: &Evaluation) -> Result<bool, RepositoryError> {
        if evaluation.model_configuration.as_ref().is_some_and(|c| c.provider_key.is_some()) {
            return Ok(false);
        }
        if self.active_key(evaluation.project, evaluation).await?.is_some_and(|chosen| chosen.key.is_some()) {
            return Ok(false);
        }
        Ok(self.system().is_some()
            && evaluation.model_configuration.as_ref().is_none_or(|c| self.trial_models.includes(c.provider, &c.model)))
    }

    async fn refund(&self, project: ProjectId, paid_by: PaidBy) -> Result<(), RepositoryError> {
        match paid_by {
            PaidBy::Trial => self.ports.trial_credits.release(project).await,
            PaidBy::OwnKey(_) | PaidBy::Operator => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
