//! Identity errors.

use super::Scope;

/// What was wrong with the credentials of an unauthenticated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// No bearer token was sent.
    Missing,
    /// A token that is not, or no longer, a personal API key.
    Invalid,
}

/// Why a request may not proceed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No, malformed or unknown token: 401.
    #[error("unauthenticated: {0:?}")]
    Unauthenticated(Credentials),
    /// The key lacks the scope: 403.
    #[error("the key lacks scope {0}")]
    MissingScope(Scope),
    /// The key may not reach this project or it does not exist: 404.
    #[error("project not found")]
    ProjectNotFound,
    /// The user is a member but the action needs admin: 403.
    #[error("the action needs a project admin")]
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

use_case_errors!(AccessError: [Unexpected]);
