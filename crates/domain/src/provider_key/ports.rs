//! Storage port for provider keys.

use async_trait::async_trait;

use super::{NewProviderKeyRecord, Provider, ProviderKey, ProviderKeyChanges};
use crate::crypto::SealedSecret;
use crate::{Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError, UserId};

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
    /// Inserts the key and, when asked, makes it the project's active key, in one
    /// transaction.
    async fn insert(&self, key: &NewProviderKeyRecord) -> Result<ProviderKey, RepositoryError>;

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

    /// Applies `changes` in one transaction; `None` when the key does not exist.
    async fn update(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        changes: &ProviderKeyChanges,
    ) -> Result<Option<ProviderKey>, RepositoryError>;

    /// Deletes the key in one transaction. With a replacement (same project, same
    /// provider) every model configuration using the key moves to it; without, the active
    /// evaluations whose configuration used it become disabled with status error and reason
    /// `provider_key_deleted`, and those configurations lose their key. The project's
    /// active key is cleared if it was this.
    async fn delete(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        replacement: Option<ProviderKeyId>,
        actor: Option<UserId>,
    ) -> Result<DeleteOutcome, RepositoryError>;

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
