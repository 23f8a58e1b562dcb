//! `ProviderKeyRepository` on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::crypto::SealedSecret;
use domain::provider_key::{
    CompatibleSettings, KeyActivity, KeyState, Provider, ProviderKey, ProviderKeyRepository, SealedKeyRow,
};
use domain::{Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError, UserId};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::coalesced_reads::CoalescedReads;
use crate::key_activity;
use crate::read_connections::ReadConnections;
use crate::user_summaries::{USER_SUMMARY_TTL, UserSummaries};
use std::sync::Arc;

/// Provider keys in table `provider_keys`; the active key in `evaluation_configs`.
#[derive(Clone)]
pub struct PgProviderKeyRepository {
    pool: PgPool,
    reads: ReadConnections,
    by_id: Arc<CoalescedReads<KeyAddress, KeyByIdRow>>,
    users: Arc<UserSummaries>,
}

impl PgProviderKeyRepository {
    pub fn new(pool: PgPool, reads: ReadConnections) -> Self {
        let by_id = Arc::new(CoalescedReads::new(reads.clone(), Box::new(keys_by_id)));
        Self { pool, reads, by_id, users: Arc::new(UserSummaries::new(USER_SUMMARY_TTL)) }
    }
}

/// Where a key is asked for: its project and its id.
type KeyAddress = (ProjectId, ProviderKeyId);

/// The keys of `wanted` that exist, each under its (project, id).
fn keys_by_id(
    connection: &mut PgConnection,
    wanted: Vec<KeyAddress>,
) -> BoxFuture<'_, Result<Vec<(KeyAddress, KeyByIdRow)>, sqlx::Error>> {
    async move {
        let ids: Vec<Uuid> = wanted.iter().map(|(_, id)| id.0).collect();
        let rows: Vec<KeyByIdRow> = sqlx::query_as(KEYS_BY_ID).bind(ids).fetch_all(connection).await?;
        Ok(rows.into_iter().map(|row| ((ProjectId(row.key.project_id), ProviderKeyId(row.key.id)), row)).collect())
    }
    .boxed()
}

const SELECT_KEY: &str = "SELECT k.id, k.project_id, k.provider, k.name, k.state, k.error_message, k.api_key_masked, \
     k.azure_endpoint, k.api_version, k.base_url, k.extra_headers_masked, k.custom_models, k.created_at, k.updated_at, k.last_used_at, \
     u.id AS user_id, u.uuid AS user_uuid, u.email AS user_email, u.first_name, u.last_name \
     FROM provider_keys k LEFT JOIN users u ON u.id = k.created_by";

/// A key's own columns.
#[derive(FromRow, Clone)]
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
    base_url: Option<String>,
    extra_headers_masked: Option<sqlx::types::Json<std::collections::BTreeMap<String, String>>>,
    custom_models: Option<sqlx::types::Json<Vec<String>>>,
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
#[derive(FromRow, Clone)]
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
        let compatible = self.base_url.map(|base_url| CompatibleSettings {
            base_url,
            extra_headers: self.extra_headers_masked.map(|headers| headers.0).unwrap_or_default(),
            custom_models: self.custom_models.map(|models| models.0).unwrap_or_default(),
        });
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
            compatible,
            created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_used_at: self.last_used_at,
        })
    }
}

pub(crate) async fn fetch_key(
    conn: &mut PgConnection,
    project: ProjectId,
    id: ProviderKeyId,
) -> Result<Option<ProviderKey>, RepositoryError> {
    let sql = key_by_id_sql();
    let row: Option<KeyRow> =
        sqlx::query_as(sql).bind(project.0).bind(id.0).fetch_optional(conn).await.map_err(RepositoryError::new)?;
    row.map(ProviderKey::try_from).transpose()
}

/// The hot read's statement: the keys of concurrent requests by primary key, no join (the
/// creator comes from [`UserSummaries`]; the project is compared by the caller).
const KEYS_BY_ID: &str = "SELECT id, project_id, provider, name, state, error_message, api_key_masked, \
     azure_endpoint, api_version, base_url, extra_headers_masked, custom_models, created_at, updated_at, \
     last_used_at, created_by \
     FROM provider_keys WHERE id = ANY($1)";

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

#[async_trait]
impl ProviderKeyRepository for PgProviderKeyRepository {
    async fn find(&self, project: ProjectId, id: ProviderKeyId) -> Result<Option<ProviderKey>, RepositoryError> {
        let row = self.by_id.get((project, id)).await?;
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
