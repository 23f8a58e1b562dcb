//! `EvaluationConfigRepository` on PostgreSQL.

use async_trait::async_trait;
use domain::evaluation_config::{EvaluationConfig, EvaluationConfigRepository};
use domain::{ProjectId, ProviderKeyId, RepositoryError};
use sqlx::PgPool;
use uuid::Uuid;

/// Evaluation settings in table `evaluation_configs`.
#[derive(Clone)]
pub struct PgEvaluationConfigRepository {
    pool: PgPool,
}

impl PgEvaluationConfigRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl EvaluationConfigRepository for PgEvaluationConfigRepository {
    async fn get(&self, project: ProjectId) -> Result<EvaluationConfig, RepositoryError> {
        let row: Option<(Option<Uuid>, i32, i32)> = sqlx::query_as(
            "SELECT active_provider_key_id, trial_eval_limit, trial_evals_used \
             FROM evaluation_configs WHERE project_id = $1",
        )
        .bind(project.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(match row {
            None => EvaluationConfig::default_for(project),
            Some((active, limit, used)) => EvaluationConfig {
                project,
                active_provider_key: active.map(ProviderKeyId),
                trial_eval_limit: i64::from(limit),
                trial_evals_used: i64::from(used),
            },
        })
    }

    async fn set_active_key(&self, project: ProjectId, key: ProviderKeyId) -> Result<bool, RepositoryError> {
        // One statement: the row is written only when the key is one of the project's.
        let written: Option<i64> = sqlx::query_scalar(
            "INSERT INTO evaluation_configs (project_id, active_provider_key_id) \
             SELECT project_id, id FROM provider_keys WHERE project_id = $1 AND id = $2 \
             ON CONFLICT (project_id) DO UPDATE SET active_provider_key_id = EXCLUDED.active_provider_key_id, \
             updated_at = now() \
             RETURNING project_id",
        )
        .bind(project.0)
        .bind(key.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(written.is_some())
    }
}
