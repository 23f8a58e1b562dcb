//! `ProviderKeyRepository` on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::crypto::SealedSecret;
use domain::evaluation::{EvaluationState, EvaluationStatus, StatusReason};
use domain::provider_key::{
    DeleteOutcome, FieldChange, KeyAction, KeyActivity, KeyState, NewProviderKeyRecord, Provider, ProviderKey,
    ProviderKeyChanges, ProviderKeyRepository, SealedKeyRow, changed_fields, created_fields,
};
use domain::{Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError, UserId};
use futures::FutureExt as _;
use serde_json::json;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::key_activity::{self, Entry};
use crate::read_connections::ReadConnections;
use crate::user_summaries::{USER_SUMMARY_TTL, UserSummaries};
use std::sync::Arc;

/// Provider keys in table `provider_keys`; the active key in `evaluation_configs`.
#[derive(Clone)]
pub struct PgProviderKeyRepository {
    pool: PgPool,
    reads: ReadConnections,
    users: Arc<UserSummaries>,
}

impl PgProviderKeyRepository {
    pub fn new(pool: PgPool, reads: ReadConnections) -> Self {
        Self { pool, reads, users: Arc::new(UserSummaries::new(USER_SUMMARY_TTL)) }
    }
}

const SELECT_KEY: &str = "SELECT k.id, k.project_id, k.provider, k.name, k.state, k.error_message, k.api_key_masked, \
     k.azure_endpoint, k.api_version, k.created_at, k.updated_at, k.last_used_at, \
     u.id AS user_id, u.uuid AS user_uuid, u.email AS user_email, u.first_name, u.last_name \
     FROM provider_keys k LEFT JOIN users u ON u.id = k.created_by";

/// A key's own columns.
#[derive(FromRow)]
struct KeyFields {
    id: Uuid,
    project_id: i64,
    provider: String,
    name: String,
    state: String,
    error_message: Option<String>,
    api_key_masked: String,
    azure_endpoint: Option<String>,
    api_version: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

/// A key with its creator joined.
#[derive(FromRow)]
struct KeyRow {
    #[sqlx(flatten)]
    key: KeyFields,
    #[sqlx(flatten)]
    user: crate::user_columns::UserColumns,
}

/// A key with its creator's id only (the hot read: the creator comes from the cache).
#[derive(FromRow)]
struct KeyByIdRow {
    #[sqlx(flatten)]
    key: KeyFields,
    created_by: Option<i64>,
}

fn corrupt(what: &str, id: Uuid) -> RepositoryError {
    RepositoryError::new(anyhow::anyhow!("provider key {id} has an invalid stored {what}"))
}

impl TryFrom<KeyRow> for ProviderKey {
    type Error = RepositoryError;

    fn try_from(row: KeyRow) -> Result<Self, Self::Error> {
        row.key.into_key(row.user.summary())
    }
}

impl KeyFields {
    fn into_key(self, created_by: Option<domain::provider_key::UserSummary>) -> Result<ProviderKey, RepositoryError> {
        let provider = Provider::parse(&self.provider).map_err(|_| corrupt("provider", self.id))?;
        let state = KeyState::parse(&self.state).ok_or_else(|| corrupt("state", self.id))?;
        Ok(ProviderKey {
            id: ProviderKeyId(self.id),
            project: ProjectId(self.project_id),
            provider,
            name: self.name,
            state,
            error_message: self.error_message,
            api_key_masked: self.api_key_masked,
            azure_endpoint: self.azure_endpoint,
            api_version: self.api_version,
            created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// The key as it is before a change, its row locked for the change's transaction.
async fn lock_key(
    conn: &mut PgConnection,
    project: ProjectId,
    id: ProviderKeyId,
) -> Result<Option<ProviderKey>, RepositoryError> {
    sqlx::query("SELECT 1 FROM provider_keys WHERE project_id = $1 AND id = $2 FOR UPDATE")
        .bind(project.0)
        .bind(id.0)
        .execute(&mut *conn)
        .await
        .map_err(RepositoryError::new)?;
    fetch_key(conn, project, id).await
}

async fn fetch_key(
    conn: &mut PgConnection,
    project: ProjectId,
    id: ProviderKeyId,
) -> Result<Option<ProviderKey>, RepositoryError> {
    let sql = key_by_id_sql();
    let row: Option<KeyRow> =
        sqlx::query_as(sql).bind(project.0).bind(id.0).fetch_optional(conn).await.map_err(RepositoryError::new)?;
    row.map(ProviderKey::try_from).transpose()
}

/// The hot read's statement: one index lookup, no join (the creator comes from
/// [`UserSummaries`]).
const KEY_ONLY_BY_ID: &str = "SELECT id, project_id, provider, name, state, error_message, api_key_masked, \
     azure_endpoint, api_version, created_at, updated_at, last_used_at, created_by \
     FROM provider_keys WHERE project_id = $1 AND id = $2";

fn key_by_id_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| format!("{SELECT_KEY} WHERE k.project_id = $1 AND k.id = $2"))
}

fn usable_keys_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "{SELECT_KEY} WHERE k.project_id = $1 AND k.provider = $2 AND k.state = $3 \
             ORDER BY k.created_at DESC, k.id"
        )
    })
}

fn key_page_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!("{SELECT_KEY} WHERE k.project_id = $1 ORDER BY k.created_at DESC, k.id ASC LIMIT $2 OFFSET $3")
    })
}

async fn set_active(conn: &mut PgConnection, project: ProjectId, id: ProviderKeyId) -> Result<(), RepositoryError> {
    sqlx::query(
        "INSERT INTO evaluation_configs (project_id, active_provider_key_id) VALUES ($1, $2) \
         ON CONFLICT (project_id) DO UPDATE SET active_provider_key_id = EXCLUDED.active_provider_key_id, \
         updated_at = now()",
    )
    .bind(project.0)
    .bind(id.0)
    .execute(conn)
    .await
    .map_err(RepositoryError::new)?;
    Ok(())
}

#[async_trait]
impl ProviderKeyRepository for PgProviderKeyRepository {
    async fn insert(&self, key: &NewProviderKeyRecord) -> Result<ProviderKey, RepositoryError> {
        let mut tx = crate::pool::begin(&self.pool).await.map_err(RepositoryError::new)?;
        sqlx::query(
            "INSERT INTO provider_keys (id, project_id, provider, name, state, error_message, api_key_masked, \
             azure_endpoint, api_version, sealed_secret, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(key.id.0)
        .bind(key.project.0)
        .bind(key.provider.as_str())
        .bind(key.name.as_str())
        .bind(key.state.as_str())
        .bind(&key.error_message)
        .bind(&key.api_key_masked)
        .bind(&key.azure_endpoint)
        .bind(&key.api_version)
        .bind(&key.sealed_secret.0)
        .bind(key.created_by.0)
        .execute(&mut *tx)
        .await
        .map_err(RepositoryError::new)?;
        if key.set_as_active {
            set_active(&mut tx, key.project, key.id).await?;
        }
        let stored = fetch_key(&mut tx, key.project, key.id)
            .await?
            .ok_or_else(|| RepositoryError::new(anyhow::anyhow!("inserted provider key {} vanished", key.id)))?;
        let mut changes = created_fields(&stored);
        if key.set_as_active {
            changes.push(FieldChange::outcome("active", json!(true)));
        }
        let entry = Entry {
            project: key.project,
            key: key.id,
            key_name: &stored.name,
            action: KeyAction::Created,
            actor: Some(key.created_by),
            changes,
        };
        key_activity::record(&mut tx, entry).await?;
        tx.commit().await.map_err(RepositoryError::new)?;
        Ok(stored)
    }

    async fn find(&self, project: ProjectId, id: ProviderKeyId) -> Result<Option<ProviderKey>, RepositoryError> {
        let row: Option<KeyByIdRow> = self
            .reads
            .read(move |connection| {
                sqlx::query_as(KEY_ONLY_BY_ID).bind(project.0).bind(id.0).fetch_optional(connection).boxed()
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let created_by = match row.created_by {
            Some(user) => self.users.summary(&self.reads, UserId(user)).await?,
            None => None,
        };
        row.key.into_key(created_by).map(Some)
    }

    async fn find_sealed(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
    ) -> Result<Option<SealedSecret>, RepositoryError> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT sealed_secret FROM provider_keys WHERE project_id = $1 AND id = $2")
                .bind(project.0)
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(RepositoryError::new)?;
        Ok(row.and_then(|(sealed,)| sealed).map(SealedSecret))
    }

    async fn list(&self, project: ProjectId, page: PageRequest) -> Result<Page<ProviderKey>, RepositoryError> {
        let rows: Vec<KeyRow> = sqlx::query_as(key_page_sql())
            .bind(project.0)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        let (total,): (i64,) = sqlx::query_as("SELECT count(*) FROM provider_keys WHERE project_id = $1")
            .bind(project.0)
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        let items = rows.into_iter().map(ProviderKey::try_from).collect::<Result<_, _>>()?;
        Ok(Page { items, total, request: page })
    }

    async fn list_usable(&self, project: ProjectId, provider: Provider) -> Result<Vec<ProviderKey>, RepositoryError> {
        let rows: Vec<KeyRow> = sqlx::query_as(usable_keys_sql())
            .bind(project.0)
            .bind(provider.as_str())
            .bind(KeyState::Ok.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        rows.into_iter().map(ProviderKey::try_from).collect()
    }

    async fn update(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        changes: &ProviderKeyChanges,
    ) -> Result<Option<ProviderKey>, RepositoryError> {
        let mut tx = crate::pool::begin(&self.pool).await.map_err(RepositoryError::new)?;
        let before = match changes.audit {
            Some(_) => lock_key(&mut tx, project, id).await?,
            None => None,
        };
        let updated: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE provider_keys SET \
               name = COALESCE($3, name), \
               state = COALESCE($4, state), \
               error_message = CASE WHEN $5 THEN $6 ELSE error_message END, \
               api_key_masked = COALESCE($7, api_key_masked), \
               azure_endpoint = COALESCE($8, azure_endpoint), \
               api_version = COALESCE($9, api_version), \
               sealed_secret = COALESCE($10, sealed_secret), \
               updated_at = now() \
             WHERE project_id = $1 AND id = $2 RETURNING id",
        )
        .bind(project.0)
        .bind(id.0)
        .bind(changes.name.as_ref().map(|n| n.as_str()))
        .bind(changes.state.map(KeyState::as_str))
        .bind(changes.error_message.is_some())
        .bind(changes.error_message.clone().flatten())
        .bind(&changes.api_key_masked)
        .bind(&changes.azure_endpoint)
        .bind(&changes.api_version)
        .bind(changes.sealed_secret.as_ref().map(|s| s.0.clone()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(RepositoryError::new)?;
        if updated.is_none() {
            return Ok(None);
        }
        if changes.set_as_active {
            set_active(&mut tx, project, id).await?;
        }
        let stored = fetch_key(&mut tx, project, id).await?;
        if let (Some(note), Some(before), Some(after)) = (changes.audit, &before, &stored) {
            let mut fields = changed_fields(before, after);
            if changes.set_as_active {
                fields.push(FieldChange::outcome("active", json!(true)));
            }
            let entry = Entry {
                project,
                key: id,
                key_name: &after.name,
                action: note.action,
                actor: note.actor,
                changes: fields,
            };
            key_activity::record(&mut tx, entry).await?;
        }
        tx.commit().await.map_err(RepositoryError::new)?;
        Ok(stored)
    }

    async fn delete(
        &self,
        project: ProjectId,
        id: ProviderKeyId,
        replacement: Option<ProviderKeyId>,
        actor: Option<UserId>,
    ) -> Result<DeleteOutcome, RepositoryError> {
        let mut tx = crate::pool::begin(&self.pool).await.map_err(RepositoryError::new)?;
        let key: Option<(String, String)> =
            sqlx::query_as("SELECT provider, name FROM provider_keys WHERE project_id = $1 AND id = $2 FOR UPDATE")
                .bind(project.0)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(RepositoryError::new)?;
        let Some((provider, name)) = key else {
            return Ok(DeleteOutcome::NotFound);
        };
        if let Some(replacement) = replacement {
            if replacement == id {
                return Ok(DeleteOutcome::ReplacementNotFound);
            }
            let other: Option<(String,)> =
                sqlx::query_as("SELECT provider FROM provider_keys WHERE project_id = $1 AND id = $2 FOR SHARE")
                    .bind(project.0)
                    .bind(replacement.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(RepositoryError::new)?;
            match other {
                None => return Ok(DeleteOutcome::ReplacementNotFound),
                Some((other_provider,)) if other_provider != provider => {
                    return Ok(DeleteOutcome::ReplacementProviderMismatch);
                }
                Some(_) => {}
            }
        }
        // Before the configurations lose the key: which evaluations used it is known only now.
        let disabled = match replacement {
            Some(_) => 0,
            None => {
                let failed = EvaluationState::Error(StatusReason::ProviderKeyDeleted);
                sqlx::query(
                    "UPDATE evaluations e SET enabled = $3, status = $4, status_reason = $5, updated_at = now() \
                     FROM model_configurations m \
                     WHERE m.project_id = $1 AND m.provider_key_id = $2 \
                       AND e.project_id = $1 AND e.model_configuration_id = m.id AND e.status = $6",
                )
                .bind(project.0)
                .bind(id.0)
                .bind(failed.enabled())
                .bind(failed.status().as_str())
                .bind(failed.reason().map(StatusReason::as_str))
                .bind(EvaluationStatus::Active.as_str())
                .execute(&mut *tx)
                .await
                .map_err(RepositoryError::new)?
                .rows_affected()
            }
        };
        let moved = sqlx::query(
            "UPDATE model_configurations SET provider_key_id = $3, updated_at = now() \
             WHERE project_id = $1 AND provider_key_id = $2",
        )
        .bind(project.0)
        .bind(id.0)
        .bind(replacement.map(|r| r.0))
        .execute(&mut *tx)
        .await
        .map_err(RepositoryError::new)?
        .rows_affected();
        sqlx::query("DELETE FROM provider_keys WHERE project_id = $1 AND id = $2")
            .bind(project.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(RepositoryError::new)?;
        let changes = vec![
            FieldChange::outcome("replacement_key_id", json!(replacement.map(|r| r.0))),
            FieldChange::outcome("configurations_moved", json!(moved)),
            FieldChange::outcome("evaluations_disabled", json!(disabled)),
        ];
        let entry = Entry { project, key: id, key_name: &name, action: KeyAction::Deleted, actor, changes };
        key_activity::record(&mut tx, entry).await?;
        tx.commit().await.map_err(RepositoryError::new)?;
        Ok(DeleteOutcome::Deleted { moved, disabled })
    }

    async fn activity(
        &self,
        project: ProjectId,
        key: Option<ProviderKeyId>,
        page: PageRequest,
    ) -> Result<Page<KeyActivity>, RepositoryError> {
        key_activity::list(&self.pool, project, key, page).await
    }

    async fn touch_last_used(&self, project: ProjectId, id: ProviderKeyId) -> Result<(), RepositoryError> {
        sqlx::query("UPDATE provider_keys SET last_used_at = now() WHERE project_id = $1 AND id = $2")
            .bind(project.0)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(())
    }

    async fn sealed_batch(
        &self,
        after: Option<ProviderKeyId>,
        limit: i64,
    ) -> Result<Vec<SealedKeyRow>, RepositoryError> {
        let rows: Vec<(Uuid, i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, project_id, provider, sealed_secret FROM provider_keys \
             WHERE sealed_secret IS NOT NULL AND ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after.map(|a| a.0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        rows.into_iter()
            .map(|(id, project, provider, sealed)| {
                Ok(SealedKeyRow {
                    id: ProviderKeyId(id),
                    project: ProjectId(project),
                    provider: Provider::parse(&provider).map_err(|_| corrupt("provider", id))?,
                    sealed_secret: SealedSecret(sealed),
                })
            })
            .collect()
    }

    async fn replace_sealed(&self, row: &SealedKeyRow, resealed: &SealedSecret) -> Result<bool, RepositoryError> {
        let result = sqlx::query(
            "UPDATE provider_keys SET sealed_secret = $4 \
             WHERE project_id = $1 AND id = $2 AND sealed_secret = $3",
        )
        .bind(row.project.0)
        .bind(row.id.0)
        .bind(&row.sealed_secret.0)
        .bind(&resealed.0)
        .execute(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(result.rows_affected() == 1)
    }
}
