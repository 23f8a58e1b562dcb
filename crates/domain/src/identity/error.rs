//! Identity errors.

use super::Scope;

/// Why a request may not proceed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No, malformed or unknown token: 401.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The key lacks the scope: 403.
    #[error("API key missing required scope '{0}'")]
    MissingScope(Scope),
    /// The key may not reach this project or it does not exist: 404.
    #[error("Not found.")]
    ProjectNotFound,
    /// The user is a member but the action needs admin: 403.
    #[error("You don't have sufficient permissions in the project.")]
    NotAdmin,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why an operator (admin CLI) command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("a user with e-mail {0} already exists")]
    EmailTaken(String),
    #[error("no user with e-mail {0}")]
    UnknownUser(String),
    #[error("project {0} does not exist")]
    UnknownProject(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(AccessError, AdminError);
