//! Evaluation use cases: CRUD with soft delete, and the provider-key actions that act on
//! evaluations (dependent configurations, trial evaluations, assigning a key).

use std::sync::Arc;

use super::{
    AssignKeyError, AssignOutcome, DependentConfigsError, DependentEvaluation, EnableRefusal, Evaluation,
    EvaluationChanges, EvaluationListFilter, EvaluationRepository, EvaluationState, EvaluationTarget, EvaluationType,
    EvaluationWrites, GetEvaluationError, KeyAssignment, ModelName, NewEvaluation, OutputType, SaveEvaluationError,
    SaveOutcome, StatusReason, TrialEvaluation, TrialEvaluationsError,
};
use crate::code::CodeEvaluator;
use crate::evaluation_config::EvaluationConfigRepository;
use crate::invalid::{FieldError, Rule};
use crate::models::default_model;
use crate::provider_key::{KeyState, Provider, ProviderKey, ProviderKeyRepository};
use crate::{EvaluationId, Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError, UserId};

/// The most evaluations `trial_evaluations` lists.
pub const TRIAL_EVALUATIONS_LIMIT: i64 = 50;
/// The most evaluation ids one assignment may name.
pub const MAX_ASSIGNED_EVALUATIONS: usize = 1000;

/// `provider_keys/{id}/assign/`: point these evaluations (1 to
/// [`MAX_ASSIGNED_EVALUATIONS`], each once) at the key, and maybe enable them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignKeyCommand {
    pub evaluations: Vec<EvaluationId>,
    pub enable: bool,
}

/// What an assignment changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignResult {
    pub configs_updated: u64,
    pub evals_enabled: u64,
}

/// What depends on a key, and the keys that could replace it.
#[derive(Debug, Clone, PartialEq)]
pub struct DependentConfigs {
    pub evaluations: Vec<DependentEvaluation>,
    /// Other keys of the project with the same provider and state `ok`.
    pub alternative_keys: Vec<ProviderKey>,
}

/// The field error of a key refusal, or the saved evaluation.
fn saved(outcome: SaveOutcome, configured: Option<Provider>) -> Result<Option<Evaluation>, FieldError> {
    const FIELD: &str = "model_configuration.provider_key_id";
    match outcome {
        SaveOutcome::Saved(evaluation) => Ok(Some(*evaluation)),
        SaveOutcome::NotFound => Ok(None),
        SaveOutcome::KeyNotFound => Err(FieldError::new(FIELD, Rule::KeyNotFound)),
        SaveOutcome::KeyProviderMismatch { key_provider } => {
            Err(FieldError::new(FIELD, Rule::KeyOfOtherProvider { key_provider, configured }))
        }
    }
}

/// The evaluation use cases.
pub struct EvaluationService {
    evaluations: Arc<dyn EvaluationRepository>,
    writes: Arc<dyn EvaluationWrites>,
    keys: Arc<dyn ProviderKeyRepository>,
    configs: Arc<dyn EvaluationConfigRepository>,
    code: Arc<dyn CodeEvaluator>,
}

impl EvaluationService {
    pub fn new(
        evaluations: Arc<dyn EvaluationRepository>,
        writes: Arc<dyn EvaluationWrites>,
        keys: Arc<dyn ProviderKeyRepository>,
        configs: Arc<dyn EvaluationConfigRepository>,
        code: Arc<dyn CodeEvaluator>,
    ) -> Self {
        Self { evaluations, writes, keys, configs, code }
    }

    /// Whether a write may make a code evaluator, whose source and target are then checked
    /// ([`Self::check_code`]).
    fn touches_code(fields: &EvaluationChanges) -> bool {
        fields.evaluation_type != Some(EvaluationType::LlmJudge)
            && (fields.evaluation_type.is_some() || fields.prompt.is_some())
    }

    /// A code evaluator's source must compile. Checked against what the write leaves:
    /// `stored`'s type and code where the write does not change them.
    fn check_code(&self, stored: Option<&Evaluation>, fields: &EvaluationChanges) -> Result<(), SaveEvaluationError> {
        if !Self::touches_code(fields) {
            return Ok(());
        }
        let kind = fields.evaluation_type.or(stored.map(|e| e.evaluation_type)).unwrap_or(EvaluationType::LlmJudge);
        if kind != EvaluationType::Hog {
            return Ok(());
        }
        let source = fields.prompt.as_ref().map(|p| p.as_str()).or(stored.map(|e| e.prompt.as_str()));
        if let Some(source) = source {
            self.code.check(source).map_err(|error| {
                FieldError::new(
                    "evaluation_config.source",
                    Rule::CodeSyntax { line: error.line, column: error.column, detail: error.detail },
                )
            })?;
        }
        Ok(())
    }

    /// Whether an evaluation now in `state` may become enabled with `key` as its model
    /// configuration's key (spec section 4, enabling guards).
    async fn enable_refusal(
        &self,
        project: ProjectId,
        state: EvaluationState,
        key: Option<ProviderKeyId>,
    ) -> Result<Option<EnableRefusal>, RepositoryError> {
        if state == EvaluationState::Error(StatusReason::ProviderKeyDeleted) {
            return Ok(key.is_none().then_some(EnableRefusal::ProviderKeyMissing));
        }
        if key.is_some() {
            return Ok(None);
        }
        let config = self.configs.get(project).await?;
        if !config.trial_limit_reached() {
            return Ok(None);
        }
        let active_key_usable = match config.active_provider_key {
            Some(active) => self.keys.find(project, active).await?.is_some_and(|k| k.state == KeyState::Ok),
            None => false,
        };
        Ok((!active_key_usable).then_some(EnableRefusal::TrialLimitReached))
    }

    /// Creates an evaluation (and its model configuration) after validating every field.
    /// `name`, `evaluation_type` and `evaluation_config.prompt` are required; `enabled`
    /// defaults to false (paused), `output_type` to boolean, `conditions` to none.
    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn create(
        &self,
        project: ProjectId,
        actor: UserId,
        fields: EvaluationChanges,
    ) -> Result<Evaluation, SaveEvaluationError> {
        let required = |field: &str| FieldError::new(field, Rule::Required);
        if fields.name.is_some() && fields.evaluation_type.is_some() && fields.prompt.is_some() {
            self.check_code(None, &fields)?;
        }
        let name = fields.name.ok_or_else(|| required("name"))?;
        let evaluation_type = fields.evaluation_type.ok_or_else(|| required("evaluation_type"))?;
        let prompt = fields.prompt.ok_or_else(|| required("evaluation_config"))?;
        let model_configuration = fields.model_configuration.flatten();
        if let Some(configuration) = &model_configuration {
            configuration.check_key_named()?;
        }
        let configured = model_configuration.as_ref().map(|c| c.provider);
        let state = EvaluationState::from_enabled(fields.enabled.unwrap_or(false));
        // Code evaluators call no LLM: neither a key nor trial credits are needed.
        if state.enabled() && evaluation_type != EvaluationType::Hog {
            let key = model_configuration.as_ref().and_then(|c| c.provider_key);
            if let Some(refusal) = self.enable_refusal(project, EvaluationState::Paused, key).await? {
                return Err(SaveEvaluationError::EnableRefused(refusal));
            }
        }
        let record = NewEvaluation {
            id: EvaluationId::generate(),
            project,
            name,
            description: fields.description.unwrap_or_default(),
            state,
            evaluation_type,
            prompt,
            output_type: fields.output_type.unwrap_or(OutputType::Boolean),
            conditions: fields.conditions.unwrap_or_default(),
            model_configuration,
            max_runs_per_hour: fields.max_runs_per_hour.flatten(),
            target: fields.target.map(|change| change.applied_to(EvaluationTarget::Generation)).unwrap_or_default(),
            created_by: actor,
        };
        let outcome = self.writes.insert(&record).await?;
        saved(outcome, configured)?
            .ok_or_else(|| anyhow::anyhow!("inserting evaluation {} reported it missing", record.id).into())
    }

    /// One non-deleted evaluation.
    pub async fn get(&self, project: ProjectId, id: EvaluationId) -> Result<Evaluation, GetEvaluationError> {
        self.evaluations.find(project, id).await?.ok_or(GetEvaluationError::NotFound)
    }

    /// A page of the project's non-deleted evaluations, newest first.
    pub async fn list(
        &self,
        project: ProjectId,
        filter: &EvaluationListFilter,
        page: PageRequest,
    ) -> Result<Page<Evaluation>, RepositoryError> {
        self.evaluations.list(project, filter, page).await
    }

    /// PATCH: changes the fields sent. The state follows `enabled` (enabling clears an
    /// error; disabling pauses); `deleted: true` soft-deletes.
    #[tracing::instrument(skip_all, fields(project = %project, evaluation = %id))]
    pub async fn update(
        &self,
        project: ProjectId,
        id: EvaluationId,
        fields: EvaluationChanges,
    ) -> Result<Evaluation, SaveEvaluationError> {
        let configured = fields.model_configuration.as_ref().and_then(|c| c.as_ref().map(|c| c.provider));
        let changes = fields;
        if let Some(Some(configuration)) = &changes.model_configuration {
            configuration.check_key_named()?;
        }
        if changes == EvaluationChanges::default() {
            return self.evaluations.find(project, id).await?.ok_or(SaveEvaluationError::NotFound);
        }
        let enabling = changes.enabled == Some(true) && !changes.delete;
        // One read serves both the code check and the enabling guards.
        let stored = match enabling || Self::touches_code(&changes) {
            true => Some(self.evaluations.find(project, id).await?.ok_or(SaveEvaluationError::NotFound)?),
            false => None,
        };
        self.check_code(stored.as_ref(), &changes)?;
        if let (true, Some(current)) = (enabling, &stored) {
            let calls_an_llm = changes.evaluation_type.unwrap_or(current.evaluation_type) != EvaluationType::Hog;
            if !current.state.enabled() && calls_an_llm {
                let key = match &changes.model_configuration {
                    Some(configuration) => configuration.as_ref().and_then(|c| c.provider_key),
                    None => current.model_configuration.as_ref().and_then(|c| c.provider_key),
                };
                if let Some(refusal) = self.enable_refusal(project, current.state, key).await? {
                    return Err(SaveEvaluationError::EnableRefused(refusal));
                }
            }
        }
        let outcome = self.writes.update(project, id, &changes).await?;
        saved(outcome, configured)?.ok_or(SaveEvaluationError::NotFound)
    }

    /// The evaluations using a key and the keys that could replace it.
    pub async fn dependent_configs(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
    ) -> Result<DependentConfigs, DependentConfigsError> {
        let key = self.keys.find(project, key).await?.ok_or(DependentConfigsError::NotFound)?;
        let evaluations = self.evaluations.using_key(project, key.id).await?;
        let alternative_keys =
            self.keys.list_usable(project, key.provider).await?.into_iter().filter(|k| k.id != key.id).collect();
        Ok(DependentConfigs { evaluations, alternative_keys })
    }

    /// Up to 50 non-deleted evaluations that run on trial credits for `provider` (raw query
    /// value): their model configuration has that provider and no key; for openai also
    /// those without a model configuration.
    pub async fn trial_evaluations(
        &self,
        project: ProjectId,
        provider: Option<&str>,
    ) -> Result<Vec<TrialEvaluation>, TrialEvaluationsError> {
        let raw =
            provider.map(str::trim).filter(|raw| !raw.is_empty()).ok_or(TrialEvaluationsError::MissingProvider)?;
        let provider = Provider::parse(raw).map_err(|_| TrialEvaluationsError::UnsupportedProvider(raw.to_owned()))?;
        let include_unconfigured = provider == Provider::Openai;
        Ok(self.evaluations.on_trial_credits(project, provider, include_unconfigured, TRIAL_EVALUATIONS_LIMIT).await?)
    }

    /// Points the listed evaluations at the key (one transaction): configurations of the
    /// key's provider move to it; with an openai key, evaluations without a configuration
    /// get one (openai, the default judge model, this key); errors become paused; with
    /// `enable`, disabled evaluations become active. Other projects' ids are ignored.
    #[tracing::instrument(skip_all, fields(project = %project, key = %key))]
    pub async fn assign_key(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
        request: AssignKeyCommand,
        actor: UserId,
    ) -> Result<AssignResult, AssignKeyError> {
        let AssignKeyCommand { evaluations, enable } = request;
        let stored = self.keys.find(project, key).await?.ok_or(AssignKeyError::NotFound)?;
        let model_for_unconfigured = match stored.provider {
            Provider::Openai => default_model(Provider::Openai)
                .map(ModelName::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("the default OpenAI judge model is not a valid model name: {e}"))?,
            _ => None,
        };
        let assignment = KeyAssignment { evaluations, enable, model_for_unconfigured, actor: Some(actor) };
        match self.writes.assign_key(project, key, &assignment).await? {
            AssignOutcome::Assigned { configs_updated, evals_enabled } => {
                Ok(AssignResult { configs_updated, evals_enabled })
            }
            AssignOutcome::KeyNotFound => Err(AssignKeyError::NotFound),
        }
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
