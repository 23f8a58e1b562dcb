//! The provider-key writes, each one transaction begun here: the key's row, the project's
//! active key, what a delete does to the evaluations that used the key, and the audit entry
//! that records the change.

use std::sync::Arc;

use async_trait::async_trait;

use serde_json::json;

use super::{
    DeleteOutcome, FieldChange, KeyAction, NewKeyActivity, NewProviderKeyRecord, ProviderKey, ProviderKeyChanges,
    changed_fields, created_fields,
};
use crate::evaluation::{EvaluationState, EvaluationStatus, StatusReason};
use crate::unit_of_work::{RowLock, Transaction, UnitOfWork};
use crate::{ProjectId, ProviderKeyId, RepositoryError, UserId};

/// The provider-key use cases' writes (a seam their tests mock; [`KeyTransactions`] is
/// the implementation).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait KeyWrites: Send + Sync + 'static {
    /// Stores the key and, when asked, makes it the project's active key.
    async fn insert(&self, key: &NewProviderKeyRecord) -> Result<ProviderKey, RepositoryError>;

    /// Applies `changes`; `None` when the key does not exist.
    async fn update(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        changes: &ProviderKeyChanges,
    ) -> Result<Option<ProviderKey>, RepositoryError>;

    /// Deletes the key. With a replacement (same project, same provider) every model
    /// configuration using the key moves to it; without, the active evaluations whose
    /// configuration used it become disabled with status error and reason
    /// `provider_key_deleted`, and those configurations lose their key.
    async fn delete(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        removal: KeyRemoval,
    ) -> Result<DeleteOutcome, RepositoryError>;
}

/// How a key is deleted: where its model configurations move (a key of the same project
/// and provider), and who deletes it (the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyRemoval {
    pub replacement: Option<ProviderKeyId>,
    pub actor: Option<UserId>,
}

/// The provider-key writes, each one transaction of the unit of work.
#[derive(Clone)]
pub struct KeyTransactions {
    unit_of_work: Arc<dyn UnitOfWork>,
}

impl KeyTransactions {
    pub fn new(unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self { unit_of_work }
    }
}

#[async_trait]
impl KeyWrites for KeyTransactions {
    async fn insert(&self, key: &NewProviderKeyRecord) -> Result<ProviderKey, RepositoryError> {
        let mut tx = self.unit_of_work.begin().await?;
        tx.provider_keys().insert(key).await?;
        if key.set_as_active {
            tx.provider_keys().set_active(key.project, key.id).await?;
        }
        let stored = tx
            .provider_keys()
            .fetch(key.project, key.id)
            .await?
            .ok_or_else(|| RepositoryError::new(anyhow::anyhow!("inserted provider key {} vanished", key.id)))?;
        let mut changes = created_fields(&stored);
        if key.set_as_active {
            changes.push(FieldChange::outcome("active", json!(true)));
        }
        let entry = activity(&stored, KeyAction::Created, Some(key.created_by), changes);
        tx.provider_keys().record_activity(&entry).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn update(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        changes: &ProviderKeyChanges,
    ) -> Result<Option<ProviderKey>, RepositoryError> {
        let mut tx = self.unit_of_work.begin().await?;
        let updated = update_in(&mut *tx, project, id, changes).await?;
        if updated.is_some() {
            tx.commit().await?;
        }
        Ok(updated)
    }

    async fn delete(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        removal: KeyRemoval,
    ) -> Result<DeleteOutcome, RepositoryError> {
        let KeyRemoval { replacement, actor } = removal;
        let mut tx = self.unit_of_work.begin().await?;
        let Some(key) = tx.provider_keys().lock(project, id, RowLock::Update).await? else {
            return Ok(DeleteOutcome::NotFound);
        };
        if let Some(replacement) = replacement {
            if replacement == id {
                return Ok(DeleteOutcome::ReplacementNotFound);
            }
            match tx.provider_keys().lock(project, replacement, RowLock::Share).await? {
                None => return Ok(DeleteOutcome::ReplacementNotFound),
                Some(other) if other.provider != key.provider => {
                    return Ok(DeleteOutcome::ReplacementProviderMismatch);
                }
                Some(_) => {}
            }
        }
        // Before the configurations lose the key: which evaluations used it is known only now.
        let disabled = match replacement {
            Some(_) => 0,
            None => {
                let stopped = EvaluationState::Error(StatusReason::ProviderKeyDeleted);
                tx.evaluations().set_state_of_key_users(project, id, EvaluationStatus::Active, stopped).await?
            }
        };
        let moved = tx.evaluations().move_configurations(project, id, replacement).await?;
        tx.provider_keys().delete(project, id).await?;
        let changes = vec![
            FieldChange::outcome("replacement_key_id", json!(replacement.map(|r| r.0))),
            FieldChange::outcome("configurations_moved", json!(moved)),
            FieldChange::outcome("evaluations_disabled", json!(disabled)),
        ];
        tx.provider_keys().record_activity(&activity(&key, KeyAction::Deleted, actor, changes)).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted { moved, disabled })
    }
}

/// Applies `changes` inside `tx` and records them in the audit trail when they carry an
/// audit note; `None` when the key does not exist.
pub(crate) async fn update_in(
    tx: &mut dyn Transaction,
    project: ProjectId,
    id: ProviderKeyId,
    changes: &ProviderKeyChanges,
) -> Result<Option<ProviderKey>, RepositoryError> {
    let before = match changes.audit {
        Some(_) => tx.provider_keys().lock(project, id, RowLock::Update).await?,
        None => None,
    };
    if !tx.provider_keys().update(project, id, changes).await? {
        return Ok(None);
    }
    if changes.set_as_active {
        tx.provider_keys().set_active(project, id).await?;
    }
    let stored = tx.provider_keys().fetch(project, id).await?;
    if let (Some(note), Some(before), Some(after)) = (changes.audit, &before, &stored) {
        let mut fields = changed_fields(before, after);
        if changes.set_as_active {
            fields.push(FieldChange::outcome("active", json!(true)));
        }
        tx.provider_keys().record_activity(&activity(after, note.action, note.actor, fields)).await?;
    }
    Ok(stored)
}

fn activity(key: &ProviderKey, action: KeyAction, actor: Option<UserId>, changes: Vec<FieldChange>) -> NewKeyActivity {
    NewKeyActivity { project: key.project, key: key.id, key_name: key.name.clone(), action, actor, changes }
}

#[cfg(test)]
#[path = "writes_tests.rs"]
mod tests;
