//! The provider-key statements a domain transaction runs (`ProviderKeyStatements`).

use async_trait::async_trait;
use domain::provider_key::{
    KeyState, NewKeyActivity, NewProviderKeyRecord, ProviderKey, ProviderKeyChanges, ProviderKeyStatements,
};
use domain::unit_of_work::RowLock;
use domain::{ProjectId, ProviderKeyId, RepositoryError};
use sqlx::types::Json;
use uuid::Uuid;

use crate::provider_key_repository::fetch_key;
use crate::unit_of_work::PgTransaction;

const INSERT: &str = "\
INSERT INTO provider_keys (id, project_id, provider, name, state, error_message, api_key_masked,
                           azure_endpoint, api_version, sealed_secret, created_by,
                           base_url, extra_headers_masked, custom_models)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

const UPDATE: &str = "\
UPDATE provider_keys SET
  name = COALESCE($3, name),
  state = COALESCE($4, state),
  error_message = CASE WHEN $5 THEN $6 ELSE error_message END,
  api_key_masked = COALESCE($7, api_key_masked),
  azure_endpoint = COALESCE($8, azure_endpoint),
  api_version = COALESCE($9, api_version),
  sealed_secret = COALESCE($10, sealed_secret),
  base_url = CASE WHEN $11 THEN $12 ELSE base_url END,
  extra_headers_masked = CASE WHEN $11 THEN $13 ELSE extra_headers_masked END,
  custom_models = CASE WHEN $11 THEN $14 ELSE custom_models END,
  updated_at = now()
WHERE project_id = $1 AND id = $2 RETURNING id";

const SET_ACTIVE: &str = "\
INSERT INTO evaluation_configs (project_id, active_provider_key_id) VALUES ($1, $2)
ON CONFLICT (project_id) DO UPDATE SET active_provider_key_id = EXCLUDED.active_provider_key_id, updated_at = now()";

const LOCK_FOR_UPDATE: &str = "SELECT 1 FROM provider_keys WHERE project_id = $1 AND id = $2 FOR UPDATE";
const LOCK_FOR_SHARE: &str = "SELECT 1 FROM provider_keys WHERE project_id = $1 AND id = $2 FOR SHARE";

#[async_trait]
impl ProviderKeyStatements for PgTransaction {
    async fn insert(&mut self, key: &NewProviderKeyRecord) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query(INSERT)
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
                .bind(key.compatible.as_ref().map(|c| c.base_url.as_str()))
                .bind(key.compatible.as_ref().map(|c| Json(&c.extra_headers)))
                .bind(key.compatible.as_ref().map(|c| Json(&c.custom_models))),
        )
        .await?;
        Ok(())
    }

    async fn lock(
        &mut self,
        project: ProjectId,
        id: ProviderKeyId,
        lock: RowLock,
    ) -> Result<Option<ProviderKey>, RepositoryError> {
        let statement = match lock {
            RowLock::Update => LOCK_FOR_UPDATE,
            RowLock::Share => LOCK_FOR_SHARE,
        };
        self.execute(sqlx::query(statement).bind(project.0).bind(id.0)).await?;
        fetch_key(self.connection().await?, project, id).await
    }

    async fn fetch(&mut self, project: ProjectId, id: ProviderKeyId) -> Result<Option<ProviderKey>, RepositoryError> {
        fetch_key(self.connection().await?, project, id).await
    }

    async fn update(
        &mut self,
        project: ProjectId,
        id: ProviderKeyId,
        changes: &ProviderKeyChanges,
    ) -> Result<bool, RepositoryError> {
        let updated: Option<(Uuid,)> = sqlx::query_as(UPDATE)
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
            .bind(changes.compatible.is_some())
            .bind(changes.compatible.as_ref().map(|c| c.base_url.as_str()))
            .bind(changes.compatible.as_ref().map(|c| Json(&c.extra_headers)))
            .bind(changes.compatible.as_ref().map(|c| Json(&c.custom_models)))
            .fetch_optional(self.connection().await?)
            .await
            .map_err(RepositoryError::new)?;
        Ok(updated.is_some())
    }

    async fn set_active(&mut self, project: ProjectId, id: ProviderKeyId) -> Result<(), RepositoryError> {
        self.execute(sqlx::query(SET_ACTIVE).bind(project.0).bind(id.0)).await?;
        Ok(())
    }

    async fn delete(&mut self, project: ProjectId, id: ProviderKeyId) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query("DELETE FROM provider_keys WHERE project_id = $1 AND id = $2").bind(project.0).bind(id.0),
        )
        .await?;
        Ok(())
    }

    async fn record_activity(&mut self, entry: &NewKeyActivity) -> Result<(), RepositoryError> {
        crate::key_activity::record(self.connection().await?, entry).await
    }
}
