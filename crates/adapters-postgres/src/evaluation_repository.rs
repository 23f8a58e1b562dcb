//! `EvaluationRepository` on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::evaluation::{
    Conditions, DependentEvaluation, Evaluation, EvaluationListFilter, EvaluationRepository, EvaluationState,
    EvaluationStatus, EvaluationTarget, EvaluationType, JudgeStop, MaxRunsPerHour, ModelConfiguration, OutputType,
    StatusReason, TrialEvaluation,
};
use domain::provider_key::Provider;
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
         e.deleted, e.max_runs_per_hour, e.target, e.target_config, e.status_reason_detail, e.rate_limited_since, m.id AS config_id, m.provider AS config_provider, m.model AS config_model, \
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
    target: String,
    target_config: Option<Value>,
    status_reason_detail: Option<String>,
    rate_limited_since: Option<DateTime<Utc>>,
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

pub(crate) fn parse_state(
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
        let target = EvaluationTarget::from_stored(&row.target, row.target_config.as_ref())
            .ok_or_else(|| corrupt("target", row.id))?;
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
            target,
            status_reason_detail: row.status_reason_detail,
            rate_limited_since: row.rate_limited_since,
            created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted: row.deleted,
        })
    }
}

pub(crate) fn evaluation_config_json(prompt: &str) -> Value {
    json!({ "prompt": prompt })
}

/// The evaluation as stored now, deleted or not (for answers to writes).
pub(crate) async fn fetch_any(
    conn: &mut PgConnection,
    project: ProjectId,
    id: EvaluationId,
) -> Result<Option<Evaluation>, RepositoryError> {
    let row: Option<EvaluationRow> =
        sqlx::query_as(concat!(select_evaluation!(), "WHERE e.project_id = $1 AND e.id = $2"))
            .bind(project.0)
            .bind(id.0)
            .fetch_optional(conn)
            .await
            .map_err(RepositoryError::new)?;
    row.map(Evaluation::try_from).transpose()
}

/// Puts enabled evaluations in `error`: one by id ($3), those whose configuration uses a
/// key ($4), or those without a key of their own ($5).
const STOP_JUDGING: &str = "\
UPDATE evaluations e SET enabled = false, status = 'error', status_reason = $2, status_reason_detail = $6,
  rate_limited_since = NULL,
  updated_at = now()
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

    async fn rate_limited_since(
        &self,
        project: ProjectId,
        id: EvaluationId,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, RepositoryError> {
        let since: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
            "UPDATE evaluations SET rate_limited_since = CASE WHEN $3::timestamptz IS NULL THEN NULL \
             ELSE COALESCE(rate_limited_since, $3) END WHERE project_id = $1 AND id = $2 RETURNING rate_limited_since",
        )
        .bind(project.0)
        .bind(id.0)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(RepositoryError::new)?;
        Ok(since.flatten())
    }

    async fn stop_judging(
        &self,
        project: ProjectId,
        stop: JudgeStop,
        reason: StatusReason,
        detail: Option<String>,
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
            .bind(detail)
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
