//! Storage port for identity.

use async_trait::async_trait;

use super::{ApiKeyGrant, NewApiKey, NewUser, Project, TokenHash, User};
use crate::{ProjectId, RepositoryError};

/// What creating a user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateUserOutcome {
    Created(User),
    EmailTaken,
    ProjectNotFound,
}

/// Projects, users, memberships and personal API keys.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait IdentityRepository: Send + Sync + 'static {
    /// The grant of the API key with this hash, with its owner's membership level in
    /// `project`; `None` when no key has this hash. One round trip: it runs on every request.
    async fn find_grant(&self, hash: &TokenHash, project: ProjectId) -> Result<Option<ApiKeyGrant>, RepositoryError>;

    /// Creates a project with its public token.
    async fn create_project(&self, name: &str, api_token: &str) -> Result<Project, RepositoryError>;

    /// Creates a user and, if asked, their first membership, in one transaction.
    async fn create_user(&self, user: &NewUser) -> Result<CreateUserOutcome, RepositoryError>;

    /// The user with this e-mail (case-insensitive).
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, RepositoryError>;

    /// Whether every project in `ids` exists.
    async fn projects_exist(&self, ids: &[ProjectId]) -> Result<bool, RepositoryError>;

    /// Stores a personal API key (its hash).
    async fn create_api_key(&self, key: &NewApiKey) -> Result<(), RepositoryError>;
}
