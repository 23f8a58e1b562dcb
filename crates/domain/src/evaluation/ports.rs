//! Storage port for evaluations and their model configurations.

use async_trait::async_trait;

use super::{
    DependentEvaluation, Evaluation, EvaluationChanges, EvaluationListFilter, EvaluationState, EvaluationStatus,
    EvaluationTarget, JudgeStop, ModelConfigurationSpec, NewEvaluation, StatusReason, TrialEvaluation,
};
use crate::provider_key::Provider;
use crate::{EvaluationId, ModelConfigurationId, Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError};

/// Evaluations of a project. Every method is scoped by project: an evaluation (or key) of
/// another project behaves as absent, and so does a soft-deleted evaluation. Errors are
/// `RepositoryError` only (storage failures); refusals are in the outcomes.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EvaluationRepository: Send + Sync + 'static {
    /// The evaluation, unless it is deleted.
    async fn find(&self, project: ProjectId, id: EvaluationId) -> Result<Option<Evaluation>, RepositoryError>;

    /// One page of the project's non-deleted evaluations that pass `filter`, newest first
    /// (ties by id).
    async fn list(
        &self,
        project: ProjectId,
        filter: &EvaluationListFilter,
        page: PageRequest,
    ) -> Result<Page<Evaluation>, RepositoryError>;

    /// The project's enabled, non-deleted evaluations (what the judge runner matches).
    async fn list_enabled(&self, project: ProjectId) -> Result<Vec<Evaluation>, RepositoryError>;

    /// Puts the enabled evaluations `stop` selects in `error` with `reason` and `detail`
    /// (the provider's words; disabled); returns how many changed.
    async fn stop_judging(
        &self,
        project: ProjectId,
        stop: JudgeStop,
        reason: StatusReason,
        detail: Option<String>,
    ) -> Result<u64, RepositoryError>;

    /// With `Some(at)`: notes that a judge job of the evaluation ended rate-limited at `at`
    /// and answers since when they have (the first such `at` since the last verdict); with
    /// `None`: a verdict came, forgets it. `None` answered when there is no such evaluation.
    async fn rate_limited_since(
        &self,
        project: ProjectId,
        id: EvaluationId,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, RepositoryError>;

    /// Marks the evaluation deleted; false when there is no such non-deleted evaluation.
    async fn soft_delete(&self, project: ProjectId, id: EvaluationId) -> Result<bool, RepositoryError>;

    /// Non-deleted evaluations whose model configuration uses `key`, newest first.
    async fn using_key(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
    ) -> Result<Vec<DependentEvaluation>, RepositoryError>;

    /// Up to `limit` non-deleted evaluations, newest first, whose model configuration has
    /// `provider` and no key; with `include_unconfigured`, also those without a model
    /// configuration.
    async fn on_trial_credits(
        &self,
        project: ProjectId,
        provider: Provider,
        include_unconfigured: bool,
        limit: i64,
    ) -> Result<Vec<TrialEvaluation>, RepositoryError>;
}

/// An evaluation as locked for a change.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedEvaluation {
    pub id: EvaluationId,
    pub state: EvaluationState,
    /// Its model configuration and that configuration's provider.
    pub configuration: Option<(ModelConfigurationId, Provider)>,
    pub target: EvaluationTarget,
}

/// A new state (and maybe a first model configuration) for one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    pub id: EvaluationId,
    pub state: EvaluationState,
    /// Set as its configuration; `None` keeps the one it has.
    pub configuration: Option<ModelConfigurationId>,
}

/// Evaluation statements inside a transaction (see [`crate::unit_of_work`]); every one is
/// scoped by project, and a deleted evaluation behaves as absent unless a method says so.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EvaluationStatements: Send {
    /// Inserts the evaluation's row, with `configuration` as its model configuration.
    async fn insert(
        &mut self,
        evaluation: &NewEvaluation,
        configuration: Option<ModelConfigurationId>,
    ) -> Result<(), RepositoryError>;

    /// The evaluation as this transaction sees it, deleted or not.
    async fn fetch(&mut self, project: ProjectId, id: EvaluationId) -> Result<Option<Evaluation>, RepositoryError>;

    /// Locks the listed (non-deleted) evaluations for the transaction, in id order, and
    /// returns them; absent ids are left out.
    async fn lock(
        &mut self,
        project: ProjectId,
        ids: &[EvaluationId],
    ) -> Result<Vec<LockedEvaluation>, RepositoryError>;

    /// Writes the fields `changes` sets (its target as resolved in `target`), `state`, and
    /// when `configuration` is `Some` that model configuration (or none).
    async fn update(
        &mut self,
        project: ProjectId,
        id: EvaluationId,
        changes: &EvaluationChanges,
        state: EvaluationState,
        configuration: Option<Option<ModelConfigurationId>>,
        target: Option<EvaluationTarget>,
    ) -> Result<(), RepositoryError>;

    /// Writes each evaluation's new state (and first configuration).
    async fn update_states(&mut self, project: ProjectId, updates: &[StateUpdate]) -> Result<(), RepositoryError>;

    /// Inserts one model configuration per id, each as `spec` says.
    async fn insert_configurations(
        &mut self,
        project: ProjectId,
        ids: &[ModelConfigurationId],
        spec: &ModelConfigurationSpec,
    ) -> Result<(), RepositoryError>;

    /// Replaces the provider, model and key of a model configuration.
    async fn update_configuration(
        &mut self,
        project: ProjectId,
        id: ModelConfigurationId,
        spec: &ModelConfigurationSpec,
    ) -> Result<(), RepositoryError>;

    /// Deletes a model configuration.
    async fn delete_configuration(
        &mut self,
        project: ProjectId,
        id: ModelConfigurationId,
    ) -> Result<(), RepositoryError>;

    /// Points the listed model configurations at `key`; returns how many changed.
    async fn point_configurations_at(
        &mut self,
        project: ProjectId,
        ids: &[ModelConfigurationId],
        key: ProviderKeyId,
    ) -> Result<u64, RepositoryError>;

    /// Puts the non-deleted evaluations in `only` status whose model configuration uses
    /// `key` in `state`; returns how many changed.
    async fn set_state_of_key_users(
        &mut self,
        project: ProjectId,
        key: ProviderKeyId,
        only: EvaluationStatus,
        state: EvaluationState,
    ) -> Result<u64, RepositoryError>;

    /// Points every model configuration that uses `from` at `to` (or at no key); returns
    /// how many moved.
    async fn move_configurations(
        &mut self,
        project: ProjectId,
        from: ProviderKeyId,
        to: Option<ProviderKeyId>,
    ) -> Result<u64, RepositoryError>;
}
