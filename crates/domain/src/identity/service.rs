//! Authentication/authorisation of API requests, and the operator's identity commands.

use std::sync::Arc;

use super::Credentials;
use super::grant_cache::{DEFAULT_GRANT_TTL, GrantCache};
use super::{
    Access, AccessError, AdminError, CreateUserOutcome, CreatedApiKey, IdentityRepository, MembershipLevel, NewApiKey,
    NewUser, PersonalApiToken, Project, ProjectToken, Scope, Scopes, TokenHash, User,
};
use crate::{ApiKeyId, ProjectId};

/// Decides whether a bearer token may use a scope in a project.
pub struct AccessService {
    repository: Arc<dyn IdentityRepository>,
    grants: GrantCache,
}

impl AccessService {
    /// Grants are reused for [`DEFAULT_GRANT_TTL`].
    pub fn new(repository: Arc<dyn IdentityRepository>) -> Self {
        Self::with_grant_ttl(repository, DEFAULT_GRANT_TTL)
    }

    /// Grants are reused for `ttl` (zero: looked up on every request).
    pub fn with_grant_ttl(repository: Arc<dyn IdentityRepository>, ttl: std::time::Duration) -> Self {
        Self { repository, grants: GrantCache::new(ttl) }
    }

    async fn grant(&self, token: &str, project: ProjectId) -> Result<Option<super::ApiKeyGrant>, AccessError> {
        let hash = TokenHash::of(token);
        if let Some(grant) = self.grants.get(&hash, project) {
            return Ok(Some(grant));
        }
        let grant = self.repository.find_grant(&hash, project).await?;
        if let Some(grant) = &grant {
            self.grants.put(&hash, project, grant);
        }
        Ok(grant)
    }

    /// 401 without a valid token, 403 without the scope, 404 when the key or its user
    /// cannot reach the project (whether or not it exists).
    pub async fn authorize(
        &self,
        bearer: Option<&str>,
        project: ProjectId,
        needed: Scope,
    ) -> Result<Access, AccessError> {
        let token = bearer.ok_or(AccessError::Unauthenticated(Credentials::Missing))?;
        if !TokenHash::looks_like_personal_token(token) {
            return Err(AccessError::Unauthenticated(Credentials::Invalid));
        }
        let grant = self.grant(token, project).await?.ok_or(AccessError::Unauthenticated(Credentials::Invalid))?;
        if !grant.scopes.allows(needed) {
            return Err(AccessError::MissingScope(needed));
        }
        if grant.projects.as_ref().is_some_and(|allowed| !allowed.contains(&project)) {
            return Err(AccessError::ProjectNotFound);
        }
        let level = grant.level.ok_or(AccessError::ProjectNotFound)?;
        Ok(Access { project, user: grant.user, api_key_id: grant.api_key_id, level, scopes: grant.scopes })
    }

    /// As `authorize`, and the caller must be an admin of the project.
    pub async fn authorize_admin(
        &self,
        bearer: Option<&str>,
        project: ProjectId,
        needed: Scope,
    ) -> Result<Access, AccessError> {
        let access = self.authorize(bearer, project, needed).await?;
        if !access.is_admin() {
            return Err(AccessError::NotAdmin);
        }
        Ok(access)
    }
}

/// The operator's commands: create projects, users and API keys.
pub struct AdminService {
    repository: Arc<dyn IdentityRepository>,
}

fn parse_email(raw: &str) -> Result<String, AdminError> {
    let email = raw.trim().to_ascii_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(email) } else { Err(AdminError::Invalid(format!("`{}` is not a valid e-mail address", raw.trim()))) }
}

impl AdminService {
    pub fn new(repository: Arc<dyn IdentityRepository>) -> Self {
        Self { repository }
    }

    /// Creates a project and its public ingestion token.
    pub async fn create_project(&self, name: &str) -> Result<Project, AdminError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AdminError::Invalid("the project name must have 1 to 200 characters".to_owned()));
        }
        Ok(self.repository.create_project(name, &ProjectToken::generate().0).await?)
    }

    /// Creates a user, optionally a member of a project (`level` defaults to member).
    pub async fn create_user(
        &self,
        email: &str,
        project: Option<ProjectId>,
        level: Option<&str>,
    ) -> Result<User, AdminError> {
        let email = parse_email(email)?;
        let level = match level {
            Some(raw) => Some(
                MembershipLevel::parse(raw)
                    .ok_or_else(|| AdminError::Invalid(format!("level must be `admin` or `member`, not `{raw}`")))?,
            ),
            None => None,
        };
        let membership = match (project, level) {
            (Some(project), level) => Some((project, level.unwrap_or(MembershipLevel::Member))),
            (None, Some(_)) => return Err(AdminError::Invalid("--level needs --project".to_owned())),
            (None, None) => None,
        };
        match self.repository.create_user(&NewUser { email: email.clone(), membership }).await? {
            CreateUserOutcome::Created(user) => Ok(user),
            CreateUserOutcome::EmailTaken => Err(AdminError::EmailTaken(email)),
            CreateUserOutcome::ProjectNotFound => {
                Err(AdminError::UnknownProject(project.map(|p| p.to_string()).unwrap_or_default()))
            }
        }
    }

    /// Creates a personal API key for the user with this e-mail; the token is returned once.
    pub async fn create_api_key(
        &self,
        email: &str,
        scopes: &str,
        projects: Option<Vec<ProjectId>>,
        label: Option<&str>,
    ) -> Result<CreatedApiKey, AdminError> {
        let scopes = Scopes::parse(scopes).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let email = parse_email(email)?;
        let user =
            self.repository.find_user_by_email(&email).await?.ok_or_else(|| AdminError::UnknownUser(email.clone()))?;
        if let Some(ids) = projects.as_deref() {
            if ids.is_empty() {
                return Err(AdminError::Invalid("--projects needs at least one project id".to_owned()));
            }
            if !self.repository.projects_exist(ids).await? {
                let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
                return Err(AdminError::UnknownProject(list));
            }
        }
        let token = PersonalApiToken::generate();
        let key = NewApiKey {
            id: ApiKeyId::generate(),
            user: user.id,
            label: label.unwrap_or("").trim().to_owned(),
            scopes: scopes.clone(),
            projects,
            hash: token.hash(),
        };
        self.repository.create_api_key(&key).await?;
        Ok(CreatedApiKey { id: key.id, token: token.secret().clone(), scopes })
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
