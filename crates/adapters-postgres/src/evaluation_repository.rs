//! `EvaluationRepository` on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::evaluation::{
    AssignOutcome, Conditions, DependentEvaluation, Evaluation, EvaluationChanges, EvaluationListFilter,
    EvaluationRepository, EvaluationState, EvaluationStatus, EvaluationType, JudgeStop, KeyAssignment, MaxRunsPerHour,
    ModelConfiguration, ModelConfigurationSpec, NewEvaluation, OutputType, SaveOutcome, StatusReason, TrialEvaluation,
};
use domain::provider_key::{FieldChange, KeyAction, Provider};
use domain::{EvaluationId, ModelConfigurationId, Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError};
use serde_json::{Value, json};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// Evaluations in table `evaluations`, their model configurations in
/// `model_configurations`.
#[derive(Clone)]
pub struct PgEvaluationRepository {
    pool: PgPool,
}

impl PgEvaluationRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The evaluation columns with its model configuration and creator; callers add the
/// `WHERE` (always `e.project_id = $1` first).
macro_rules! select_evaluation {
    () => {
        "SELECT e.id, e.project_id, e.name, e.description, e.enabled, e.status, e.status_reason, \
         e.evaluation_type, e.evaluation_config, e.output_type, e.conditions, e.created_at, e.updated_at, \
         e.deleted, e.max_runs_per_hour, m.id AS config_id, m.provider AS config_provider, m.model AS config_model, \
         m.provider_key_id AS config_key, u.id AS user_id, u.uuid AS user_uuid, u.email AS user_email, \
         u.first_name, u.last_name \
         FROM evaluations e \
         LEFT JOIN model_configurations m ON m.project_id = e.project_id AND m.id = e.model_configuration_id \
         LEFT JOIN users u ON u.id = e.created_by "
    };
}

/// The list's filters: `$2` an `ILIKE` pattern or null, `$3` enabled or null.
macro_rules! list_filter {
    () => {
        "($2::text IS NULL OR e.name ILIKE $2 OR e.description ILIKE $2) AND ($3::bool IS NULL OR e.enabled = $3) "
    };
}

#[derive(FromRow)]
struct EvaluationRow {
    id: Uuid,
    project_id: i64,
    name: String,
    description: String,
    enabled: bool,
    status: String,
    status_reason: Option<String>,
    evaluation_type: String,
    evaluation_config: Value,
    output_type: String,
    conditions: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted: bool,
    max_runs_per_hour: Option<i32>,
    config_id: Option<Uuid>,
    config_provider: Option<String>,
    config_model: Option<String>,
    config_key: Option<Uuid>,
    #[sqlx(flatten)]
    user: crate::user_columns::UserColumns,
}

fn corrupt(what: &str, id: Uuid) -> RepositoryError {
    RepositoryError::new(anyhow::anyhow!("evaluation {id} has an invalid stored {what}"))
}

fn parse_state(
    id: Uuid,
    enabled: bool,
    status: &str,
    reason: Option<&str>,
) -> Result<EvaluationState, RepositoryError> {
    let status = EvaluationStatus::parse(status).ok_or_else(|| corrupt("status", id))?;
    let reason = reason.map(|r| StatusReason::parse(r).ok_or_else(|| corrupt("status_reason", id))).transpose()?;
    EvaluationState::from_parts(enabled, status, reason).ok_or_else(|| corrupt("status combination", id))
}

impl TryFrom<EvaluationRow> for Evaluation {
    type Error = RepositoryError;

    fn try_from(row: EvaluationRow) -> Result<Self, Self::Error> {
        let state = parse_state(row.id, row.enabled, &row.status, row.status_reason.as_deref())?;
        let evaluation_type =
            EvaluationType::parse(&row.evaluation_type).ok_or_else(|| corrupt("evaluation_type", row.id))?;
        let output_type = OutputType::parse(&row.output_type).ok_or_else(|| corrupt("output_type", row.id))?;
        let prompt = row
            .evaluation_config
            .get("prompt")
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt("evaluation_config", row.id))?
            .to_owned();
        let conditions = Conditions::from_json(&row.conditions).map_err(|_| corrupt("conditions", row.id))?;
        let model_configuration = match (row.config_id, row.config_provider, row.config_model) {
            (Some(id), Some(provider), Some(model)) => Some(ModelConfiguration {
                id: ModelConfigurationId(id),
                provider: Provider::parse(&provider).map_err(|_| corrupt("model configuration provider", row.id))?,
                model,
                provider_key: row.config_key.map(ProviderKeyId),
            }),
            _ => None,
        };
        let created_by = row.user.summary();
        Ok(Evaluation {
            id: EvaluationId(row.id),
            project: ProjectId(row.project_id),
            name: row.name,
            description: row.description,
            state,
            evaluation_type,
            prompt,
            output_type,
            conditions,
            model_configuration,
            max_runs_per_hour: row.max_runs_per_hour.and_then(|n| MaxRunsPerHour::parse(i64::from(n))),
            created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted: row.deleted,
        })
    }
}

fn evaluation_config_json(prompt: &str) -> Value {
    json!({ "prompt": prompt })
}

/// The evaluation as stored now, deleted or not (for answers to writes).
async fn fetch_any(
    conn: &mut PgConnection,
    project: ProjectId,
    id: EvaluationId,
) -> Result<Evaluation, RepositoryError> {
    let row: EvaluationRow = sqlx::query_as(concat!(select_evaluation!(), "WHERE e.project_id = $1 AND e.id = $2"))
        .bind(project.0)
        .bind(id.0)
        .fetch_one(conn)
        .await
        .map_err(RepositoryError::new)?;
    Evaluation::try_from(row)
}

/// Locks the configuration's key (so it cannot be deleted before commit) and checks it
/// belongs to the project and the configuration's provider; `Some(refusal)` otherwise.
async fn check_key(
    conn: &mut PgConnection,
    project: ProjectId,
    spec: &ModelConfigurationSpec,
) -> Result<Option<SaveOutcome>, RepositoryError> {
    let Some(key) = spec.provider_key else {
        return Ok(None);
    };
    let provider: Option<String> =
        sqlx::query_scalar("SELECT provider FROM provider_keys WHERE project_id = $1 AND id = $2 FOR SHARE")
            .bind(project.0)
            .bind(key.0)
            .fetch_optional(conn)
            .await
            .map_err(RepositoryError::new)?;
    Ok(match provider {
        None => Some(SaveOutcome::KeyNotFound),
        Some(stored) if stored != spec.provider.as_str() => Some(SaveOutcome::KeyProviderMismatch {
            key_provider: Provider::parse(&stored).map_err(|_| {
                RepositoryError::new(anyhow::anyhow!("provider key {key} has an invalid stored provider"))
            })?,
        }),
        Some(_) => None,
    })
}

async fn insert_configuration(
    conn: &mut PgConnection,
    project: ProjectId,
    spec: &ModelConfigurationSpec,
) -> Result<ModelConfigurationId, RepositoryError> {
    let id = ModelConfigurationId::generate();
    sqlx::query(
        "INSERT INTO model_configurations (id, project_id, provider, model, provider_key_id) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.0)
    .bind(project.0)
    .bind(spec.provider.as_str())
    .bind(spec.model.as_str())
    .bind(spec.provider_key.map(|k| k.0))
    .execute(conn)
    .await
    .map_err(RepositoryError::new)?;
    Ok(id)
}

#[derive(FromRow)]
struct LockedRow {
    id: Uuid,
    enabled: bool,
    status: String,
    status_reason: Option<String>,
    model_configuration_id: Option<Uuid>,
    config_provider: Option<String>,
}

/// Puts enabled evaluations in `error`: one by id ($3), those whose configuration uses a
/// key ($4), or those without a key of their own ($5).
const STOP_JUDGING: &str = "\
UPDATE evaluations e SET enabled = false, status = 'error', status_reason = $2, updated_at = now()
WHERE e.project_id = $1 AND e.enabled AND NOT e.deleted
  AND (($3::uuid IS NOT NULL AND e.id = $3)
    OR ($4::uuid IS NOT NULL AND EXISTS (
          SELECT 1 FROM model_configurations m
          WHERE m.project_id = e.project_id AND m.id = e.model_configuration_id AND m.provider_key_id = $4))
    OR ($5 AND NOT EXISTS (
          SELECT 1 FROM model_configurations m
          WHERE m.project_id = e.project_id AND m.id = e.model_configuration_id AND m.provider_key_id IS NOT NULL)))";

#[async_trait]
impl EvaluationRepository for PgEvaluationRepository {
    async fn insert(&self, evaluation: &NewEvaluation) -> Result<SaveOutcome, RepositoryError> {
        let project = evaluation.project;
        let mut tx = crate::pool::begin(&self.pool).await.map_err(RepositoryError::new)?;
        let configuration = match &evaluation.model_configuration {
            None => None,
            Some(spec) => {
                if let Some(refusal) = check_key(&mut tx, project, spec).await? {
                    return Ok(refusal);
                }
                Some(insert_configuration(&mut tx, project, spec).await?)
            }
        };
        let state = evaluation.state;
        sqlx::query(
            "INSERT INTO evaluations (id, project_id, name, description, enabled, status, status_reason, \
             evaluation_type, evaluation_config, output_type, conditions, model_configuration_id, created_by, \
             max_runs_per_hour) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(evaluation.id.0)
        .bind(project.0)
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
        .execute(&mut *tx)
        .await
        .map_err(RepositoryError::new)?;
        let stored = fetch_any(&mut tx, project, evaluation.id).await?;
        tx.commit().await.map_err(RepositoryError::new)?;
        Ok(SaveOutcome::Saved(Box::new(stored)))
    }

    async fn find(&self, project: ProjectId, id: EvaluationId) -> Result<Option<Evaluation>, RepositoryError> {
        let row: Option<EvaluationRow> =
            sqlx::query_as(concat!(select_evaluation!(), "WHERE e.project_id = $1 AND e.id = $2 AND NOT e.deleted"))
                .bind(project.0)
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(RepositoryError::new)?;
        row.map(Evaluation::try_from).transpose()
    }

    async fn list(
        &self,
        project: ProjectId,
        filter: &EvaluationListFilter,
        page: PageRequest,
    ) -> Result<Page<Evaluation>, RepositoryError> {
        let pattern = filter.search.as_deref().map(contains_pattern);
        let rows: Vec<EvaluationRow> = sqlx::query_as(concat!(
            select_evaluation!(),
            "WHERE e.project_id = $1 AND NOT e.deleted AND ",
            list_filter!(),
            "ORDER BY e.created_at DESC, e.id LIMIT $4 OFFSET $5"
        ))
        .bind(project.0)
        .bind(pattern.as_deref())
        .bind(filter.enabled)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        let total: i64 = sqlx::query_scalar(concat!(
            "SELECT count(*) FROM evaluations e WHERE e.project_id = $1 AND NOT e.deleted AND ",
            list_filter!()
        ))
        .bind(project.0)
        .bind(pattern.as_deref())
        .bind(filter.enabled)
        .fetch_one(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        let items = rows.into_iter().map(Evaluation::try_from).collect::<Result<_, _>>()?;
        Ok(Page { items, total, request: page })
    }

    async fn update(
        &self,
        project: ProjectId,
        id: EvaluationId,
        changes: &EvaluationChanges,
    ) -> Result<SaveOutcome, RepositoryError> {
        let mut tx = crate::pool::begin(&self.pool).await.map_err(RepositoryError::new)?;
        // The key before the evaluation: the same lock order as a key's deletion.
        if let Some(Some(spec)) = &changes.model_configuration
            && let Some(refusal) = check_key(&mut tx, project, spec).await?
        {
            return Ok(refusal);
        }
        let locked: Option<LockedRow> = sqlx::query_as(
            "SELECT id, enabled, status, status_reason, model_configuration_id, NULL::text AS config_provider \
             FROM evaluations WHERE project_id = $1 AND id = $2 AND NOT deleted FOR UPDATE",
        )
        .bind(project.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(RepositoryError::new)?;
        let Some(locked) = locked else {
            return Ok(SaveOutcome::NotFound);
        };
        let state = parse_state(locked.id, locked.enabled, &locked.status, locked.status_reason.as_deref())?
            .after_write(changes.enabled);

        let existing = locked.model_configuration_id;
        // (whether the column changes, its new value, a configuration to delete afterwards)
        let (set_configuration, configuration, orphan) = match (&changes.model_configuration, existing) {
            (None, _) => (false, existing, None),
            (Some(None), _) => (true, None, existing),
            (Some(Some(spec)), Some(current)) => {
                sqlx::query(
                    "UPDATE model_configurations SET provider = $3, model = $4, provider_key_id = $5, \
                     updated_at = now() WHERE project_id = $1 AND id = $2",
                )
                .bind(project.0)
                .bind(current)
                .bind(spec.provider.as_str())
                .bind(spec.model.as_str())
                .bind(spec.provider_key.map(|k| k.0))
                .execute(&mut *tx)
                .await
                .map_err(RepositoryError::new)?;
                (false, existing, None)
            }
            (Some(Some(spec)), None) => (true, Some(insert_configuration(&mut tx, project, spec).await?.0), None),
        };

        sqlx::query(
            "UPDATE evaluations SET \
               name = COALESCE($3, name), \
               description = COALESCE($4, description), \
               enabled = $5, status = $6, status_reason = $7, \
               evaluation_type = COALESCE($8, evaluation_type), \
               evaluation_config = COALESCE($9, evaluation_config), \
               output_type = COALESCE($10, output_type), \
               conditions = COALESCE($11, conditions), \
               model_configuration_id = CASE WHEN $12 THEN $13 ELSE model_configuration_id END, \
               deleted = deleted OR $14, \
               max_runs_per_hour = CASE WHEN $15 THEN $16 ELSE max_runs_per_hour END, \
               updated_at = now() \
             WHERE project_id = $1 AND id = $2",
        )
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
        .bind(set_configuration)
        .bind(configuration)
        .bind(changes.delete)
        .bind(changes.max_runs_per_hour.is_some())
        .bind(changes.max_runs_per_hour.flatten().map(|cap| cap.get() as i32))
        .execute(&mut *tx)
        .await
        .map_err(RepositoryError::new)?;
        if let Some(orphan) = orphan {
            sqlx::query("DELETE FROM model_configurations WHERE project_id = $1 AND id = $2")
                .bind(project.0)
                .bind(orphan)
                .execute(&mut *tx)
                .await
                .map_err(RepositoryError::new)?;
        }
        let stored = fetch_any(&mut tx, project, id).await?;
        tx.commit().await.map_err(RepositoryError::new)?;
        Ok(SaveOutcome::Saved(Box::new(stored)))
    }

    async fn list_enabled(&self, project: ProjectId) -> Result<Vec<Evaluation>, RepositoryError> {
        let rows: Vec<EvaluationRow> = sqlx::query_as(concat!(
            select_evaluation!(),
            "WHERE e.project_id = $1 AND e.enabled AND NOT e.deleted ORDER BY e.created_at, e.id"
        ))
        .bind(project.0)
        .fetch_all(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        rows.into_iter().map(Evaluation::try_from).collect()
    }

    async fn stop_judging(
        &self,
        project: ProjectId,
        stop: JudgeStop,
        reason: StatusReason,
    ) -> Result<u64, RepositoryError> {
        let (one, key, without_key) = match stop {
            JudgeStop::One(id) => (Some(id.0), None, false),
            JudgeStop::UsingKey(key) => (None, Some(key.0), false),
            JudgeStop::WithoutKey => (None, None, true),
        };
        let result = sqlx::query(STOP_JUDGING)
            .bind(project.0)
            .bind(reason.as_str())
            .bind(one)
            .bind(key)
            .bind(without_key)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(result.rows_affected())
    }

    async fn soft_delete(&self, project: ProjectId, id: EvaluationId) -> Result<bool, RepositoryError> {
        let result = sqlx::query(
            "UPDATE evaluations SET deleted = true, updated_at = now() \
             WHERE project_id = $1 AND id = $2 AND NOT deleted",
        )
        .bind(project.0)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(result.rows_affected() == 1)
    }

    async fn using_key(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
    ) -> Result<Vec<DependentEvaluation>, RepositoryError> {
        let rows: Vec<(Uuid, String, Uuid)> = sqlx::query_as(
            "SELECT e.id, e.name, m.id FROM model_configurations m \
             JOIN evaluations e ON e.project_id = m.project_id AND e.model_configuration_id = m.id \
             WHERE m.project_id = $1 AND m.provider_key_id = $2 AND NOT e.deleted \
             ORDER BY e.created_at DESC, e.id",
        )
        .bind(project.0)
        .bind(key.0)
        .fetch_all(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, configuration)| DependentEvaluation {
                id: EvaluationId(id),
                name,
                model_configuration: ModelConfigurationId(configuration),
            })
            .collect())
    }

    async fn on_trial_credits(
        &self,
        project: ProjectId,
        provider: Provider,
        include_unconfigured: bool,
        limit: i64,
    ) -> Result<Vec<TrialEvaluation>, RepositoryError> {
        let rows: Vec<(Uuid, String, bool)> = sqlx::query_as(
            "SELECT e.id, e.name, e.enabled FROM evaluations e \
             LEFT JOIN model_configurations m ON m.project_id = e.project_id AND m.id = e.model_configuration_id \
             WHERE e.project_id = $1 AND NOT e.deleted \
               AND ((m.id IS NOT NULL AND m.provider = $2 AND m.provider_key_id IS NULL) \
                    OR ($3 AND m.id IS NULL)) \
             ORDER BY e.created_at DESC, e.id LIMIT $4",
        )
        .bind(project.0)
        .bind(provider.as_str())
        .bind(include_unconfigured)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, enabled)| TrialEvaluation { id: EvaluationId(id), name, enabled })
            .collect())
    }

    async fn assign_key(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
        assignment: &KeyAssignment,
    ) -> Result<AssignOutcome, RepositoryError> {
        let mut tx = crate::pool::begin(&self.pool).await.map_err(RepositoryError::new)?;
        let found: Option<(String, String)> =
            sqlx::query_as("SELECT provider, name FROM provider_keys WHERE project_id = $1 AND id = $2 FOR SHARE")
                .bind(project.0)
                .bind(key.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(RepositoryError::new)?;
        let Some((provider, key_name)) = found else {
            return Ok(AssignOutcome::KeyNotFound);
        };
        let ids: Vec<Uuid> = assignment.evaluations.iter().map(|id| id.0).collect();
        let rows: Vec<LockedRow> = sqlx::query_as(
            "SELECT e.id, e.enabled, e.status, e.status_reason, e.model_configuration_id, \
                    m.provider AS config_provider \
             FROM evaluations e \
             LEFT JOIN model_configurations m ON m.project_id = e.project_id AND m.id = e.model_configuration_id \
             WHERE e.project_id = $1 AND e.id = ANY($2) AND NOT e.deleted \
             ORDER BY e.id FOR UPDATE OF e",
        )
        .bind(project.0)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(RepositoryError::new)?;

        let mut repoint = Vec::new();
        let mut created: Vec<Uuid> = Vec::new();
        let mut evals_enabled = 0u64;
        let (mut update_ids, mut enabled, mut statuses, mut reasons, mut configurations) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            let before = parse_state(row.id, row.enabled, &row.status, row.status_reason.as_deref())?;
            let after = before.after_key_assigned(assignment.enable);
            if after.enabled() && !before.enabled() {
                evals_enabled += 1;
            }
            let mut configuration = None;
            match (row.model_configuration_id, row.config_provider.as_deref()) {
                (Some(current), Some(config_provider)) if config_provider == provider => repoint.push(current),
                (Some(_), _) => {}
                (None, _) if assignment.model_for_unconfigured.is_some() => {
                    let new = ModelConfigurationId::generate().0;
                    created.push(new);
                    configuration = Some(new);
                }
                (None, _) => {}
            }
            update_ids.push(row.id);
            enabled.push(after.enabled());
            statuses.push(after.status().as_str());
            reasons.push(after.reason().map(StatusReason::as_str));
            configurations.push(configuration);
        }

        let repointed = sqlx::query(
            "UPDATE model_configurations SET provider_key_id = $3, updated_at = now() \
             WHERE project_id = $1 AND id = ANY($2)",
        )
        .bind(project.0)
        .bind(&repoint)
        .bind(key.0)
        .execute(&mut *tx)
        .await
        .map_err(RepositoryError::new)?
        .rows_affected();
        if let (Some(model), false) = (&assignment.model_for_unconfigured, created.is_empty()) {
            sqlx::query(
                "INSERT INTO model_configurations (id, project_id, provider, model, provider_key_id) \
                 SELECT c, $1, $2, $3, $4 FROM UNNEST($5::uuid[]) AS c",
            )
            .bind(project.0)
            .bind(&provider)
            .bind(model.as_str())
            .bind(key.0)
            .bind(&created)
            .execute(&mut *tx)
            .await
            .map_err(RepositoryError::new)?;
        }
        sqlx::query(
            "UPDATE evaluations e SET enabled = u.enabled, status = u.status, status_reason = u.reason, \
               model_configuration_id = COALESCE(u.configuration, e.model_configuration_id), updated_at = now() \
             FROM UNNEST($2::uuid[], $3::bool[], $4::text[], $5::text[], $6::uuid[]) \
               AS u(id, enabled, status, reason, configuration) \
             WHERE e.project_id = $1 AND e.id = u.id",
        )
        .bind(project.0)
        .bind(&update_ids)
        .bind(&enabled)
        .bind(&statuses)
        .bind(&reasons)
        .bind(&configurations)
        .execute(&mut *tx)
        .await
        .map_err(RepositoryError::new)?;
        let configs_updated = repointed + created.len() as u64;
        let changes = vec![
            FieldChange::outcome("evaluation_ids", json!(update_ids)),
            FieldChange::outcome("configurations_updated", json!(configs_updated)),
            FieldChange::outcome("evaluations_enabled", json!(evals_enabled)),
        ];
        let entry = crate::key_activity::Entry {
            project,
            key,
            key_name: &key_name,
            action: KeyAction::Assigned,
            actor: assignment.actor,
            changes,
        };
        crate::key_activity::record(&mut tx, entry).await?;
        tx.commit().await.map_err(RepositoryError::new)?;
        Ok(AssignOutcome::Assigned { configs_updated, evals_enabled })
    }
}

/// An `ILIKE` pattern matching `text` anywhere, its own `%`, `_` and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
