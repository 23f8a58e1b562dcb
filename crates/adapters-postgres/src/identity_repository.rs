//! `IdentityRepository` (and ingestion's `ProjectTokens`) on PostgreSQL.

use async_trait::async_trait;
use domain::identity::{
    ApiKeyGrant, CreateUserOutcome, IdentityRepository, MembershipLevel, NewApiKey, NewUser, Project, Scopes,
    TokenHash, User,
};
use domain::ingestion::ProjectTokens;
use domain::{ApiKeyId, ProjectId, RepositoryError, UserId};
use futures::FutureExt as _;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::memo::Memo;
use crate::read_connections::ReadConnections;

/// How long a member's grant is reused: a key's scopes, projects and its owner's level
/// change in the database show on every replica within it.
pub(crate) const GRANT_TTL: Duration = Duration::from_secs(5);

/// Identity tables: `projects`, `users`, `memberships`, `personal_api_keys`.
#[derive(Clone)]
pub struct PgIdentityRepository {
    pool: PgPool,
    reads: ReadConnections,
    /// Grants of members, by key and project: every authenticated request reads one.
    grants: Arc<Memo<(TokenHash, ProjectId), ApiKeyGrant>>,
}

impl PgIdentityRepository {
    pub fn new(pool: PgPool, reads: ReadConnections) -> Self {
        Self::remembering_grants_for(pool, reads, GRANT_TTL)
    }

    /// [`PgIdentityRepository::new`] with grants reused for `ttl` (tests shorten it).
    pub fn remembering_grants_for(pool: PgPool, reads: ReadConnections, ttl: Duration) -> Self {
        Self { pool, reads, grants: Arc::new(Memo::new(ttl)) }
    }
}

type GrantRow = (Uuid, i64, Vec<String>, Option<Vec<i64>>, Option<String>);

/// A user and, with a project ($3), their membership at level $4, as one statement: no user
/// when the project does not exist or the e-mail is taken. Returns (project found, new id).
const CREATE_USER: &str = "\
WITH project AS (SELECT $3::bigint IS NULL OR EXISTS (SELECT 1 FROM projects WHERE id = $3) AS found),
user_row AS (
  INSERT INTO users (uuid, email) SELECT $1, $2 FROM project WHERE found
  ON CONFLICT (lower(email)) DO NOTHING RETURNING id),
membership AS (
  INSERT INTO memberships (project_id, user_id, level) SELECT $3, id, $4 FROM user_row WHERE $3 IS NOT NULL)
SELECT (SELECT found FROM project), (SELECT id FROM user_row)";

#[async_trait]
impl IdentityRepository for PgIdentityRepository {
    async fn find_grant(&self, hash: &TokenHash, project: ProjectId) -> Result<Option<ApiKeyGrant>, RepositoryError> {
        let memo_key = (hash.clone(), project);
        if let Some(grant) = self.grants.get(&memo_key) {
            return Ok(Some(grant));
        }
        let row: Option<GrantRow> = self
            .reads
            .read(|connection| {
                sqlx::query_as(
                    "SELECT k.id, k.user_id, k.scopes, k.project_ids, m.level \
                     FROM personal_api_keys k \
                     LEFT JOIN memberships m ON m.user_id = k.user_id AND m.project_id = $2 \
                     WHERE k.token_hash = $1",
                )
                .bind(hash.0.clone())
                .bind(project.0)
                .fetch_optional(connection)
                .boxed()
            })
            .await?;
        let Some((id, user, scopes, projects, level)) = row else {
            return Ok(None);
        };
        let scopes = Scopes::from_strings(scopes.iter().map(String::as_str))
            .map_err(|e| RepositoryError::new(anyhow::anyhow!("stored scopes of API key {id} are invalid: {e}")))?;
        let grant = ApiKeyGrant {
            api_key_id: ApiKeyId(id),
            user: UserId(user),
            scopes,
            projects: projects.map(|ids| ids.into_iter().map(ProjectId).collect()),
            level: level.as_deref().and_then(MembershipLevel::parse),
        };
        // Only members' grants: one who is refused now may be made a member any moment.
        if grant.level.is_some() {
            self.grants.put(memo_key, grant.clone());
        }
        Ok(Some(grant))
    }

    async fn create_project(&self, name: &str, api_token: &str) -> Result<Project, RepositoryError> {
        let (id,): (i64,) = sqlx::query_as("INSERT INTO projects (name, api_token) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(api_token)
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(Project { id: ProjectId(id), name: name.to_owned(), api_token: api_token.to_owned() })
    }

    async fn create_user(&self, user: &NewUser) -> Result<CreateUserOutcome, RepositoryError> {
        let (project, level) = match user.membership {
            Some((project, level)) => (Some(project.0), Some(level.as_str())),
            None => (None, None),
        };
        let uuid = Uuid::now_v7();
        let (project_found, created): (bool, Option<i64>) = sqlx::query_as(CREATE_USER)
            .bind(uuid)
            .bind(&user.email)
            .bind(project)
            .bind(level)
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(match (project_found, created) {
            (false, _) => CreateUserOutcome::ProjectNotFound,
            (true, None) => CreateUserOutcome::EmailTaken,
            (true, Some(id)) => CreateUserOutcome::Created(User { id: UserId(id), uuid, email: user.email.clone() }),
        })
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, RepositoryError> {
        let row: Option<(i64, Uuid, String)> =
            sqlx::query_as("SELECT id, uuid, email FROM users WHERE lower(email) = lower($1)")
                .bind(email)
                .fetch_optional(&self.pool)
                .await
                .map_err(RepositoryError::new)?;
        Ok(row.map(|(id, uuid, email)| User { id: UserId(id), uuid, email }))
    }

    async fn projects_exist(&self, ids: &[ProjectId]) -> Result<bool, RepositoryError> {
        let ids: Vec<i64> = ids.iter().map(|p| p.0).collect();
        let (missing,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM unnest($1::bigint[]) AS wanted(id) \
             WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = wanted.id)",
        )
        .bind(&ids)
        .fetch_one(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(missing == 0)
    }

    async fn create_api_key(&self, key: &NewApiKey) -> Result<(), RepositoryError> {
        let projects: Option<Vec<i64>> = key.projects.as_ref().map(|ids| ids.iter().map(|p| p.0).collect());
        sqlx::query(
            "INSERT INTO personal_api_keys (id, user_id, label, token_hash, scopes, project_ids) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id.0)
        .bind(key.user.0)
        .bind(&key.label)
        .bind(&key.hash.0)
        .bind(key.scopes.to_strings())
        .bind(projects)
        .execute(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(())
    }
}

#[async_trait]
impl ProjectTokens for PgIdentityRepository {
    async fn find_project_by_token(&self, token: &str) -> Result<Option<ProjectId>, RepositoryError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE api_token = $1")
            .bind(token)
            .fetch_optional(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(id.map(ProjectId))
    }
}
