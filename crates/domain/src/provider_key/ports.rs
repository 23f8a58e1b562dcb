//! Storage port for provider keys.

use async_trait::async_trait;

use super::{NewKeyActivity, NewProviderKeyRecord, Provider, ProviderKey, ProviderKeyChanges};
use crate::crypto::SealedSecret;
use crate::unit_of_work::RowLock;
use crate::{Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError};

/// What a delete did (or why it did nothing). Decided inside the delete's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The key is gone; `moved` model configurations now use the replacement (or no key);
    /// without a replacement, `disabled` active evaluations that used it are now in error
    /// (`provider_key_deleted`).
    Deleted { moved: u64, disabled: u64 },
    /// No such key in this project.
    NotFound,
    /// The replacement is not a key of this project (or is the key itself).
    ReplacementNotFound,
    /// The replacement belongs to another provider.
    ReplacementProviderMismatch,
}

/// One stored secret, for re-sealing under a new encryption key.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedKeyRow {
    pub id: ProviderKeyId,
    pub project: ProjectId,
    pub provider: Provider,
    pub sealed_secret: SealedSecret,
}

/// Provider keys of a project. Every method is scoped by project: a key of another
/// project behaves as absent. Errors are `RepositoryError` only (storage failures).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ProviderKeyRepository: Send + Sync + 'static {
    /// The key, without its secret.
    async fn find(&self, project: ProjectId, id: ProviderKeyId) -> Result<Option<ProviderKey>, RepositoryError>;

    /// The sealed secret of the key, if the key exists and has one.
    async fn find_sealed(&self, project: ProjectId, id: ProviderKeyId)
    -> Result<Option<SealedSecret>, RepositoryError>;

    /// One page of the project's keys, newest first.
    async fn list(&self, project: ProjectId, page: PageRequest) -> Result<Page<ProviderKey>, RepositoryError>;

    /// The project's keys of `provider` whose state is `ok`, newest first (candidates to
    /// replace a key).
    async fn list_usable(&self, project: ProjectId, provider: Provider) -> Result<Vec<ProviderKey>, RepositoryError>;

    /// The audit trail of the project's keys (or of one, also once deleted), newest first.
    async fn activity(
        &self,
        project: ProjectId,
        key: Option<ProviderKeyId>,
        page: PageRequest,
    ) -> Result<Page<super::KeyActivity>, RepositoryError>;

    /// Marks the key as used now (by the runner, a summary or a report).
    async fn touch_last_used(&self, project: ProjectId, id: ProviderKeyId) -> Result<(), RepositoryError>;

    /// Up to `limit` stored secrets of every project with ids after `after`, in id order.
    async fn sealed_batch(
        &self,
        after: Option<ProviderKeyId>,
        limit: i64,
    ) -> Result<Vec<SealedKeyRow>, RepositoryError>;

    /// Replaces a secret if it is still the one read (compare-and-swap); false when it
    /// changed meanwhile.
    async fn replace_sealed(&self, row: &SealedKeyRow, resealed: &SealedSecret) -> Result<bool, RepositoryError>;
}

/// Provider-key statements inside a transaction (see [`crate::unit_of_work`]); every one is
/// scoped by project.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ProviderKeyStatements: Send {
    /// Inserts the key's row.
    async fn insert(&mut self, key: &NewProviderKeyRecord) -> Result<(), RepositoryError>;

    /// The key as this transaction sees it, its row locked as `lock` says.
    async fn lock(
        &mut self,
        project: ProjectId,
        id: ProviderKeyId,
        lock: RowLock,
    ) -> Result<Option<ProviderKey>, RepositoryError>;

    /// The key as this transaction sees it.
    async fn fetch(&mut self, project: ProjectId, id: ProviderKeyId) -> Result<Option<ProviderKey>, RepositoryError>;

    /// Writes the columns `changes` sets (its `set_as_active` and `audit` are not columns);
    /// false when there is no such key.
    async fn update(
        &mut self,
        project: ProjectId,
        id: ProviderKeyId,
        changes: &ProviderKeyChanges,
    ) -> Result<bool, RepositoryError>;

    /// Makes the key the project's active key.
    async fn set_active(&mut self, project: ProjectId, id: ProviderKeyId) -> Result<(), RepositoryError>;

    /// Deletes the key's row.
    async fn delete(&mut self, project: ProjectId, id: ProviderKeyId) -> Result<(), RepositoryError>;

    /// Appends an entry to the keys' audit trail.
    async fn record_activity(&mut self, entry: &NewKeyActivity) -> Result<(), RepositoryError>;
}
