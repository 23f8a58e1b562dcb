//! The evaluation writes, each one transaction begun here: the evaluation and its model
//! configuration, the key check that guards them, and assigning a key to many
//! evaluations with the key's audit entry.

use std::sync::Arc;

use async_trait::async_trait;

use serde_json::json;

use super::{
    AssignOutcome, EvaluationChanges, KeyAssignment, ModelConfigurationSpec, NewEvaluation, SaveOutcome, StateUpdate,
};
use crate::provider_key::{FieldChange, KeyAction, NewKeyActivity};
use crate::unit_of_work::{RowLock, Transaction, UnitOfWork};
use crate::{EvaluationId, ModelConfigurationId, ProjectId, ProviderKeyId, RepositoryError};

/// The evaluation use cases' writes (a seam their tests mock; [`EvaluationTransactions`]
/// is the implementation).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EvaluationWrites: Send + Sync + 'static {
    /// Stores the evaluation and its model configuration. `KeyNotFound` /
    /// `KeyProviderMismatch` (and nothing stored) when the configuration's key is not a key
    /// of the project for the configuration's provider.
    async fn insert(&self, evaluation: &NewEvaluation) -> Result<SaveOutcome, RepositoryError>;

    /// Applies `changes` to the locked evaluation (its model configuration is updated in
    /// place, created or removed). `NotFound` for a missing or deleted evaluation; key
    /// refusals as in `insert`; nothing changes on any refusal.
    async fn update(
        &self,
        project: ProjectId,
        id: EvaluationId,
        changes: &EvaluationChanges,
    ) -> Result<SaveOutcome, RepositoryError>;

    /// Points the listed evaluations' model configurations of the key's provider at `key`,
    /// gives those without one a configuration where asked, moves each listed evaluation's
    /// state by [`super::EvaluationState::after_key_assigned`], and records it in the
    /// key's audit trail. `KeyNotFound` (nothing changed) when the key is not in the project.
    async fn assign_key(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
        assignment: &KeyAssignment,
    ) -> Result<AssignOutcome, RepositoryError>;
}

/// The evaluation writes, each one transaction of the unit of work.
#[derive(Clone)]
pub struct EvaluationTransactions {
    unit_of_work: Arc<dyn UnitOfWork>,
}

impl EvaluationTransactions {
    pub fn new(unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self { unit_of_work }
    }
}

#[async_trait]
impl EvaluationWrites for EvaluationTransactions {
    async fn insert(&self, evaluation: &NewEvaluation) -> Result<SaveOutcome, RepositoryError> {
        let project = evaluation.project;
        let mut tx = self.unit_of_work.begin().await?;
        let configuration = match &evaluation.model_configuration {
            None => None,
            Some(spec) => {
                if let Some(refusal) = key_refusal(&mut *tx, project, spec).await? {
                    return Ok(refusal);
                }
                let id = ModelConfigurationId::generate();
                tx.evaluations().insert_configurations(project, &[id], spec).await?;
                Some(id)
            }
        };
        tx.evaluations().insert(evaluation, configuration).await?;
        let stored = stored(&mut *tx, project, evaluation.id).await?;
        tx.commit().await?;
        Ok(SaveOutcome::Saved(Box::new(stored)))
    }

    async fn update(
        &self,
        project: ProjectId,
        id: EvaluationId,
        changes: &EvaluationChanges,
    ) -> Result<SaveOutcome, RepositoryError> {
        let mut tx = self.unit_of_work.begin().await?;
        // The key before the evaluation: the same lock order as a key's deletion.
        if let Some(Some(spec)) = &changes.model_configuration
            && let Some(refusal) = key_refusal(&mut *tx, project, spec).await?
        {
            return Ok(refusal);
        }
        let Some(locked) = tx.evaluations().lock(project, &[id]).await?.pop() else {
            return Ok(SaveOutcome::NotFound);
        };
        let state = locked.state.after_write(changes.enabled);
        let existing = locked.configuration.map(|(configuration, _)| configuration);
        // (the configuration column's new value when it changes, a configuration left over)
        let (configuration, orphan) = match (&changes.model_configuration, existing) {
            (None, _) => (None, None),
            (Some(None), _) => (Some(None), existing),
            (Some(Some(spec)), Some(current)) => {
                tx.evaluations().update_configuration(project, current, spec).await?;
                (None, None)
            }
            (Some(Some(spec)), None) => {
                let new = ModelConfigurationId::generate();
                tx.evaluations().insert_configurations(project, &[new], spec).await?;
                (Some(Some(new)), None)
            }
        };
        let target = changes.target.map(|change| change.applied_to(locked.target));
        tx.evaluations().update(project, id, changes, state, configuration, target).await?;
        if let Some(orphan) = orphan {
            tx.evaluations().delete_configuration(project, orphan).await?;
        }
        let stored = stored(&mut *tx, project, id).await?;
        tx.commit().await?;
        Ok(SaveOutcome::Saved(Box::new(stored)))
    }

    async fn assign_key(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
        assignment: &KeyAssignment,
    ) -> Result<AssignOutcome, RepositoryError> {
        let mut tx = self.unit_of_work.begin().await?;
        let Some(stored_key) = tx.provider_keys().lock(project, key, RowLock::Share).await? else {
            return Ok(AssignOutcome::KeyNotFound);
        };
        let locked = tx.evaluations().lock(project, &assignment.evaluations).await?;
        let mut repoint = Vec::new();
        let mut created = Vec::new();
        let mut evals_enabled = 0u64;
        let mut updates = Vec::with_capacity(locked.len());
        for evaluation in &locked {
            let after = evaluation.state.after_key_assigned(assignment.enable);
            if after.enabled() && !evaluation.state.enabled() {
                evals_enabled += 1;
            }
            let mut configuration = None;
            match evaluation.configuration {
                Some((current, provider)) if provider == stored_key.provider => repoint.push(current),
                Some(_) => {}
                None if assignment.model_for_unconfigured.is_some() => {
                    let new = ModelConfigurationId::generate();
                    created.push(new);
                    configuration = Some(new);
                }
                None => {}
            }
            updates.push(StateUpdate { id: evaluation.id, state: after, configuration });
        }
        let repointed = tx.evaluations().point_configurations_at(project, &repoint, key).await?;
        if let (Some(model), false) = (&assignment.model_for_unconfigured, created.is_empty()) {
            let spec =
                ModelConfigurationSpec { provider: stored_key.provider, model: model.clone(), provider_key: Some(key) };
            tx.evaluations().insert_configurations(project, &created, &spec).await?;
        }
        tx.evaluations().update_states(project, &updates).await?;
        let configs_updated = repointed + created.len() as u64;
        let evaluation_ids: Vec<_> = updates.iter().map(|u| u.id.0).collect();
        let entry = NewKeyActivity {
            project,
            key,
            key_name: stored_key.name,
            action: KeyAction::Assigned,
            actor: assignment.actor,
            changes: vec![
                FieldChange::outcome("evaluation_ids", json!(evaluation_ids)),
                FieldChange::outcome("configurations_updated", json!(configs_updated)),
                FieldChange::outcome("evaluations_enabled", json!(evals_enabled)),
            ],
        };
        tx.provider_keys().record_activity(&entry).await?;
        tx.commit().await?;
        Ok(AssignOutcome::Assigned { configs_updated, evals_enabled })
    }
}

/// Locks the configuration's key (so it cannot be deleted before commit) and checks it
/// belongs to the project and the configuration's provider; `Some(refusal)` otherwise.
async fn key_refusal(
    tx: &mut dyn Transaction,
    project: ProjectId,
    spec: &ModelConfigurationSpec,
) -> Result<Option<SaveOutcome>, RepositoryError> {
    let Some(key) = spec.provider_key else {
        return Ok(None);
    };
    Ok(match tx.provider_keys().lock(project, key, RowLock::Share).await? {
        None => Some(SaveOutcome::KeyNotFound),
        Some(stored) if stored.provider != spec.provider => {
            Some(SaveOutcome::KeyProviderMismatch { key_provider: stored.provider })
        }
        Some(_) => None,
    })
}

/// The evaluation as written, for the answer.
async fn stored(
    tx: &mut dyn Transaction,
    project: ProjectId,
    id: EvaluationId,
) -> Result<super::Evaluation, RepositoryError> {
    tx.evaluations()
        .fetch(project, id)
        .await?
        .ok_or_else(|| RepositoryError::new(anyhow::anyhow!("evaluation {id} vanished while it was written")))
}

#[cfg(test)]
#[path = "writes_tests.rs"]
mod tests;
