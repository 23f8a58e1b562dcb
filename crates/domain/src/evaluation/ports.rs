//! Storage port for evaluations and their model configurations.

use async_trait::async_trait;

use super::{
    AssignOutcome, DependentEvaluation, Evaluation, EvaluationChanges, EvaluationListFilter, JudgeStop, KeyAssignment,
    NewEvaluation, SaveOutcome, StatusReason, TrialEvaluation,
};
use crate::provider_key::Provider;
use crate::{EvaluationId, Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError};

/// Evaluations of a project. Every method is scoped by project: an evaluation (or key) of
/// another project behaves as absent, and so does a soft-deleted evaluation. Errors are
/// `RepositoryError` only (storage failures); refusals are in the outcomes.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EvaluationRepository: Send + Sync + 'static {
    /// Inserts the evaluation and its model configuration in one transaction. Returns
    /// `KeyNotFound` / `KeyProviderMismatch` (and stores nothing) when the configuration's
    /// key is not a key of the project for the configuration's provider.
    async fn insert(&self, evaluation: &NewEvaluation) -> Result<SaveOutcome, RepositoryError>;

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

    /// Applies `changes` to the locked row in one transaction (the model configuration is
    /// updated in place, created or removed). `NotFound` for a missing or deleted
    /// evaluation; key refusals as in `insert`; nothing changes on any refusal.
    async fn update(
        &self,
        project: ProjectId,
        id: EvaluationId,
        changes: &EvaluationChanges,
    ) -> Result<SaveOutcome, RepositoryError>;

    /// The project's enabled, non-deleted evaluations (what the judge runner matches).
    async fn list_enabled(&self, project: ProjectId) -> Result<Vec<Evaluation>, RepositoryError>;

    /// Puts the enabled evaluations `stop` selects in `error` with `reason` (disabled);
    /// returns how many changed.
    async fn stop_judging(
        &self,
        project: ProjectId,
        stop: JudgeStop,
        reason: StatusReason,
    ) -> Result<u64, RepositoryError>;

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

    /// In one transaction: points the listed evaluations' model configurations of the
    /// key's provider at `key`, creates configurations where asked, and moves each listed
    /// evaluation's state by [`super::EvaluationState::after_key_assigned`]. `KeyNotFound`
    /// (nothing changed) when the key is not in the project.
    async fn assign_key(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
        assignment: &KeyAssignment,
    ) -> Result<AssignOutcome, RepositoryError>;
}
