//! Where a project's model prices are kept.

use async_trait::async_trait;

use super::{ModelPriceId, ModelPriceSpec, ProjectPrice};
use crate::{Page, PageRequest, ProjectId, RepositoryError};

/// A project's model prices. Every method is scoped by project; errors are
/// `RepositoryError` only.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ModelPriceStore: Send + Sync + 'static {
    /// Every price of the project (what ingestion matches events against).
    async fn all(&self, project: ProjectId) -> Result<Vec<ProjectPrice>, RepositoryError>;

    /// One page, newest `valid_from` first.
    async fn list(&self, project: ProjectId, page: PageRequest) -> Result<Page<ProjectPrice>, RepositoryError>;

    async fn get(&self, project: ProjectId, id: ModelPriceId) -> Result<Option<ProjectPrice>, RepositoryError>;

    /// Stores a new price (valid from now when the spec names no time).
    async fn insert(
        &self,
        project: ProjectId,
        id: ModelPriceId,
        spec: &ModelPriceSpec,
    ) -> Result<ProjectPrice, RepositoryError>;

    /// Replaces a price's fields; `None` when there is no such price.
    async fn update(
        &self,
        project: ProjectId,
        id: ModelPriceId,
        spec: &ModelPriceSpec,
    ) -> Result<Option<ProjectPrice>, RepositoryError>;

    /// False when there was no such price.
    async fn delete(&self, project: ProjectId, id: ModelPriceId) -> Result<bool, RepositoryError>;
}
