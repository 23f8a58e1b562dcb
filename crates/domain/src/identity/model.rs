//! Identity entities.

use secrecy::SecretString;

use super::{Scope, Scopes, TokenHash};
use crate::{ApiKeyId, ProjectId, UserId};

/// A project: the unit of isolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    /// The public ingestion token (`phc_…`).
    pub api_token: String,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub uuid: uuid::Uuid,
    pub email: String,
}

/// A user's level in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MembershipLevel {
    Member,
    Admin,
}

impl MembershipLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipLevel::Member => "member",
            MembershipLevel::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "member" => Some(MembershipLevel::Member),
            "admin" => Some(MembershipLevel::Admin),
            _ => None,
        }
    }
}

/// What a presented personal API key grants, with the owner's level in the requested
/// project (`None` when not a member or the project does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyGrant {
    pub api_key_id: ApiKeyId,
    pub user: UserId,
    pub scopes: Scopes,
    /// `None`: every project the user belongs to.
    pub projects: Option<Vec<ProjectId>>,
    pub level: Option<MembershipLevel>,
}

/// An authorised caller in one project, for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub project: ProjectId,
    pub user: UserId,
    pub api_key_id: ApiKeyId,
    pub level: MembershipLevel,
    pub scopes: Scopes,
}

impl Access {
    /// Whether this caller also has `scope` (for endpoints that need two).
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.allows(scope)
    }

    pub fn is_admin(&self) -> bool {
        self.level == MembershipLevel::Admin
    }
}

/// A user to create, with an optional first membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub membership: Option<(ProjectId, MembershipLevel)>,
}

/// A personal API key to store (hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub user: UserId,
    pub label: String,
    pub scopes: Scopes,
    pub projects: Option<Vec<ProjectId>>,
    pub hash: TokenHash,
}

/// A created personal API key and its token, shown once.
pub struct CreatedApiKey {
    pub id: ApiKeyId,
    pub token: SecretString,
    pub scopes: Scopes,
}
