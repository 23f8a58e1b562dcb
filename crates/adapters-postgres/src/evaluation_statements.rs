//! The evaluation statements a domain transaction runs (`EvaluationStatements`).

use async_trait::async_trait;
use domain::evaluation::{
    Conditions, Evaluation, EvaluationChanges, EvaluationState, EvaluationStatements, EvaluationStatus,
    EvaluationTarget, EvaluationType, LockedEvaluation, ModelConfigurationSpec, NewEvaluation, OutputType, Settling,
    StateUpdate, StatusReason,
};
use domain::provider_key::Provider;
use domain::{EvaluationId, ModelConfigurationId, ProjectId, ProviderKeyId, RepositoryError};
use sqlx::FromRow;
use uuid::Uuid;

use crate::evaluation_repository::{evaluation_config_json, fetch_any, parse_state};
use crate::unit_of_work::PgTransaction;

const INSERT: &str = "\
INSERT INTO evaluations (id, project_id, name, description, enabled, status, status_reason, evaluation_type,
                         evaluation_config, output_type, conditions, model_configuration_id, created_by,
                         max_runs_per_hour, target, target_config)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

const LOCK: &str = "\
SELECT e.id, e.enabled, e.status, e.status_reason, e.model_configuration_id, m.provider AS config_provider,
       e.target, e.target_config
FROM evaluations e
LEFT JOIN model_configurations m ON m.project_id = e.project_id AND m.id = e.model_configuration_id
WHERE e.project_id = $1 AND e.id = ANY($2) AND NOT e.deleted
ORDER BY e.id FOR UPDATE OF e";

const UPDATE: &str = "\
UPDATE evaluations SET
  name = COALESCE($3, name),
  description = COALESCE($4, description),
  enabled = $5, status = $6, status_reason = $7,
  status_reason_detail = CASE WHEN $7 IS NOT DISTINCT FROM status_reason THEN status_reason_detail END,
  evaluation_type = COALESCE($8, evaluation_type),
  evaluation_config = COALESCE($9, evaluation_config),
  output_type = COALESCE($10, output_type),
  conditions = COALESCE($11, conditions),
  model_configuration_id = CASE WHEN $12 THEN $13 ELSE model_configuration_id END,
  deleted = deleted OR $14,
  max_runs_per_hour = CASE WHEN $15 THEN $16 ELSE max_runs_per_hour END,
  target = COALESCE($17, target),
  target_config = CASE WHEN $17 IS NULL THEN target_config ELSE $18 END,
  updated_at = now()
WHERE project_id = $1 AND id = $2";

const UPDATE_STATES: &str = "\
UPDATE evaluations e SET enabled = u.enabled, status = u.status, status_reason = u.reason,
  status_reason_detail = CASE WHEN u.reason IS NOT DISTINCT FROM e.status_reason THEN e.status_reason_detail END,
  model_configuration_id = COALESCE(u.configuration, e.model_configuration_id), updated_at = now()
FROM UNNEST($2::uuid[], $3::bool[], $4::text[], $5::text[], $6::uuid[]) AS u(id, enabled, status, reason, configuration)
WHERE e.project_id = $1 AND e.id = u.id";

const INSERT_CONFIGURATIONS: &str = "\
INSERT INTO model_configurations (id, project_id, provider, model, provider_key_id)
SELECT c, $1, $2, $3, $4 FROM UNNEST($5::uuid[]) AS c";

const UPDATE_CONFIGURATION: &str = "\
UPDATE model_configurations SET provider = $3, model = $4, provider_key_id = $5, updated_at = now()
WHERE project_id = $1 AND id = $2";

const POINT_CONFIGURATIONS: &str = "\
UPDATE model_configurations SET provider_key_id = $3, updated_at = now() WHERE project_id = $1 AND id = ANY($2)";

const SET_STATE_OF_KEY_USERS: &str = "\
UPDATE evaluations e SET enabled = $3, status = $4, status_reason = $5,
  status_reason_detail = CASE WHEN $5 IS NOT DISTINCT FROM e.status_reason THEN e.status_reason_detail END,
  updated_at = now()
FROM model_configurations m
WHERE m.project_id = $1 AND m.provider_key_id = $2
  AND e.project_id = $1 AND e.model_configuration_id = m.id AND e.status = $6";

const MOVE_CONFIGURATIONS: &str = "\
UPDATE model_configurations SET provider_key_id = $3, updated_at = now() WHERE project_id = $1 AND provider_key_id = $2";

#[derive(FromRow)]
struct LockedRow {
    id: Uuid,
    enabled: bool,
    status: String,
    status_reason: Option<String>,
    model_configuration_id: Option<Uuid>,
    config_provider: Option<String>,
    target: String,
    target_config: Option<serde_json::Value>,
}

impl TryFrom<LockedRow> for LockedEvaluation {
    type Error = RepositoryError;

    fn try_from(row: LockedRow) -> Result<Self, Self::Error> {
        let state = parse_state(row.id, row.enabled, &row.status, row.status_reason.as_deref())?;
        let configuration = match (row.model_configuration_id, row.config_provider) {
            (Some(id), Some(provider)) => {
                let provider = Provider::parse(&provider).map_err(|_| {
                    RepositoryError::new(anyhow::anyhow!("model configuration {id} has an invalid stored provider"))
                })?;
                Some((ModelConfigurationId(id), provider))
            }
            _ => None,
        };
        let target = EvaluationTarget::from_stored(&row.target, row.target_config.as_ref()).ok_or_else(|| {
            RepositoryError::new(anyhow::anyhow!("evaluation {} has an invalid stored target", row.id))
        })?;
        Ok(Self { id: EvaluationId(row.id), state, configuration, target })
    }
}

#[async_trait]
impl EvaluationStatements for PgTransaction {
    async fn insert(
        &mut self,
        evaluation: &NewEvaluation,
        configuration: Option<ModelConfigurationId>,
    ) -> Result<(), RepositoryError> {
        let state = evaluation.state;
        self.execute(
            sqlx::query(INSERT)
                .bind(evaluation.id.0)
                .bind(evaluation.project.0)
                .bind(evaluation.name.as_str())
                .bind(&evaluation.description)
                .bind(state.enabled())
                .bind(state.status().as_str())
                .bind(state.reason().map(StatusReason::as_str))
                .bind(evaluation.evaluation_type.as_str())
                .bind(evaluation_config_json(evaluation.prompt.as_str()))
                .bind(evaluation.output_type.as_str())
                .bind(evaluation.conditions.to_json())
                .bind(configuration.map(|c| c.0))
                .bind(evaluation.created_by.0)
                .bind(evaluation.max_runs_per_hour.map(|cap| cap.get() as i32))
                .bind(evaluation.target.kind().as_str())
                .bind(evaluation.target.settling().map(Settling::to_json)),
        )
        .await?;
        Ok(())
    }

    async fn fetch(&mut self, project: ProjectId, id: EvaluationId) -> Result<Option<Evaluation>, RepositoryError> {
        fetch_any(self.connection().await?, project, id).await
    }

    async fn lock(
        &mut self,
        project: ProjectId,
        ids: &[EvaluationId],
    ) -> Result<Vec<LockedEvaluation>, RepositoryError> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let rows: Vec<LockedRow> = sqlx::query_as(LOCK)
            .bind(project.0)
            .bind(&ids)
            .fetch_all(self.connection().await?)
            .await
            .map_err(RepositoryError::new)?;
        rows.into_iter().map(LockedEvaluation::try_from).collect()
    }

    async fn update(
        &mut self,
        project: ProjectId,
        id: EvaluationId,
        changes: &EvaluationChanges,
        state: EvaluationState,
        configuration: Option<Option<ModelConfigurationId>>,
        target: Option<EvaluationTarget>,
    ) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query(UPDATE)
                .bind(project.0)
                .bind(id.0)
                .bind(changes.name.as_ref().map(|n| n.as_str()))
                .bind(changes.description.as_deref())
                .bind(state.enabled())
                .bind(state.status().as_str())
                .bind(state.reason().map(StatusReason::as_str))
                .bind(changes.evaluation_type.map(EvaluationType::as_str))
                .bind(changes.prompt.as_ref().map(|p| evaluation_config_json(p.as_str())))
                .bind(changes.output_type.map(OutputType::as_str))
                .bind(changes.conditions.as_ref().map(Conditions::to_json))
                .bind(configuration.is_some())
                .bind(configuration.flatten().map(|c| c.0))
                .bind(changes.delete)
                .bind(changes.max_runs_per_hour.is_some())
                .bind(changes.max_runs_per_hour.flatten().map(|cap| cap.get() as i32))
                .bind(target.map(|target| target.kind().as_str()))
                .bind(target.and_then(EvaluationTarget::settling).map(Settling::to_json)),
        )
        .await?;
        Ok(())
    }

    async fn update_states(&mut self, project: ProjectId, updates: &[StateUpdate]) -> Result<(), RepositoryError> {
        let ids: Vec<Uuid> = updates.iter().map(|u| u.id.0).collect();
        let enabled: Vec<bool> = updates.iter().map(|u| u.state.enabled()).collect();
        let statuses: Vec<&str> = updates.iter().map(|u| u.state.status().as_str()).collect();
        let reasons: Vec<Option<&str>> = updates.iter().map(|u| u.state.reason().map(StatusReason::as_str)).collect();
        let configurations: Vec<Option<Uuid>> = updates.iter().map(|u| u.configuration.map(|c| c.0)).collect();
        self.execute(
            sqlx::query(UPDATE_STATES)
                .bind(project.0)
                .bind(&ids)
                .bind(&enabled)
                .bind(&statuses)
                .bind(&reasons)
                .bind(&configurations),
        )
        .await?;
        Ok(())
    }

    async fn insert_configurations(
        &mut self,
        project: ProjectId,
        ids: &[ModelConfigurationId],
        spec: &ModelConfigurationSpec,
    ) -> Result<(), RepositoryError> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        self.execute(
            sqlx::query(INSERT_CONFIGURATIONS)
                .bind(project.0)
                .bind(spec.provider.as_str())
                .bind(spec.model.as_str())
                .bind(spec.provider_key.map(|k| k.0))
                .bind(&ids),
        )
        .await?;
        Ok(())
    }

    async fn update_configuration(
        &mut self,
        project: ProjectId,
        id: ModelConfigurationId,
        spec: &ModelConfigurationSpec,
    ) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query(UPDATE_CONFIGURATION)
                .bind(project.0)
                .bind(id.0)
                .bind(spec.provider.as_str())
                .bind(spec.model.as_str())
                .bind(spec.provider_key.map(|k| k.0)),
        )
        .await?;
        Ok(())
    }

    async fn delete_configuration(
        &mut self,
        project: ProjectId,
        id: ModelConfigurationId,
    ) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query("DELETE FROM model_configurations WHERE project_id = $1 AND id = $2")
                .bind(project.0)
                .bind(id.0),
        )
        .await?;
        Ok(())
    }

    async fn point_configurations_at(
        &mut self,
        project: ProjectId,
        ids: &[ModelConfigurationId],
        key: ProviderKeyId,
    ) -> Result<u64, RepositoryError> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        self.execute(sqlx::query(POINT_CONFIGURATIONS).bind(project.0).bind(&ids).bind(key.0)).await
    }

    async fn set_state_of_key_users(
        &mut self,
        project: ProjectId,
        key: ProviderKeyId,
        only: EvaluationStatus,
        state: EvaluationState,
    ) -> Result<u64, RepositoryError> {
        self.execute(
            sqlx::query(SET_STATE_OF_KEY_USERS)
                .bind(project.0)
                .bind(key.0)
                .bind(state.enabled())
                .bind(state.status().as_str())
                .bind(state.reason().map(StatusReason::as_str))
                .bind(only.as_str()),
        )
        .await
    }

    async fn move_configurations(
        &mut self,
        project: ProjectId,
        from: ProviderKeyId,
        to: Option<ProviderKeyId>,
    ) -> Result<u64, RepositoryError> {
        self.execute(sqlx::query(MOVE_CONFIGURATIONS).bind(project.0).bind(from.0).bind(to.map(|t| t.0))).await
    }
}
