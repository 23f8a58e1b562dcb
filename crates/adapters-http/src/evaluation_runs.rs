//! `/api/environments/{project_id}/evaluation_runs/` (spec section 9): manual judge runs
//! in the reference's shapes, and the stored judgements.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use domain::PageRequest;
use domain::judge::{JudgedRun, ManualRunCommand, RunsQuery, parse_instant};
use domain::{EvaluationId, FieldError, Rule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::authorized::{Authorized, EvaluationRead, EvaluationWrite};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::json_fields::{non_blank, required_uuid, text};
use crate::pagination::{Paginated, page_request, paginated};
use crate::state::AppState;

/// The reference's manual-run body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ManualRunBody {
    /// The evaluation to run (UUID, required).
    #[schema(value_type = String)]
    pub evaluation_id: Option<Value>,
    /// The stored event to judge (UUID, required).
    #[schema(value_type = String)]
    pub target_event_id: Option<Value>,
    /// ISO 8601; narrows the lookup to the event's day (optional here).
    #[schema(value_type = Option<String>)]
    pub timestamp: Option<Value>,
    /// The event's name (default `$ai_generation`).
    #[schema(value_type = Option<String>)]
    pub event: Option<Value>,
    /// Narrows the lookup to this person.
    #[schema(value_type = Option<String>)]
    pub distinct_id: Option<Value>,
}

impl ManualRunBody {
    /// The command, or the first refused field in the reference's order.
    fn try_into_domain(self) -> Result<ManualRunCommand, FieldError> {
        let evaluation = EvaluationId(required_uuid(&self.evaluation_id, "evaluation_id")?);
        let target_event = required_uuid(&self.target_event_id, "target_event_id")?;
        let at = match text(&self.timestamp, "timestamp")? {
            None | Some("") => None,
            Some(raw) => Some(parse_instant(raw).ok_or_else(|| FieldError::new("timestamp", Rule::NotADateTime))?),
        };
        let event = non_blank(&self.event, "event")?;
        let distinct_id = non_blank(&self.distinct_id, "distinct_id")?;
        Ok(ManualRunCommand { evaluation, target_event, at, event, distinct_id })
    }
}

/// `{id, name}` of the evaluation run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunEvaluationDto {
    pub id: uuid::Uuid,
    pub name: String,
}

/// 202: the run is queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManualRunDto {
    /// The job judging it.
    pub workflow_id: String,
    /// Always `started`.
    pub status: &'static str,
    pub evaluation: RunEvaluationDto,
    pub target_event_id: uuid::Uuid,
}

/// One stored judgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationRunDto {
    pub id: uuid::Uuid,
    pub evaluation_id: Option<String>,
    pub evaluation_name: Option<String>,
    pub generation_id: Option<String>,
    pub trace_id: Option<String>,
    /// true pass, false fail, null when not applicable.
    pub result: Option<bool>,
    pub applicable: Option<bool>,
    pub reasoning: Option<String>,
    /// `byok` or `posthog` (trial credits).
    pub key_type: Option<String>,
    pub key_id: Option<String>,
    pub manual: bool,
    pub timestamp: DateTime<Utc>,
}

impl From<JudgedRun> for EvaluationRunDto {
    fn from(run: JudgedRun) -> Self {
        Self {
            id: run.id,
            evaluation_id: run.evaluation_id,
            evaluation_name: run.evaluation_name,
            generation_id: run.generation_id,
            trace_id: run.trace_id,
            result: run.result,
            applicable: run.applicable,
            reasoning: run.reasoning,
            key_type: run.key_type,
            key_id: run.key_id,
            manual: run.manual,
            timestamp: run.timestamp,
        }
    }
}

/// Filters of the list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RunsParams {
    pub evaluation_id: Option<String>,
    /// The judged generation's uuid.
    pub generation_id: Option<String>,
}

impl RunsParams {
    fn try_into_domain(self, page: PageRequest) -> Result<RunsQuery, FieldError> {
        let evaluation = match self.evaluation_id.as_deref().map(str::trim).filter(|raw| !raw.is_empty()) {
            None => None,
            Some(raw) => {
                Some(raw.parse::<EvaluationId>().map_err(|_| FieldError::new("evaluation_id", Rule::NotAUuid))?)
            }
        };
        let generation = self.generation_id.map(|g| g.trim().to_lowercase()).filter(|g| !g.is_empty());
        Ok(RunsQuery { evaluation, generation, page })
    }
}

/// Judges a stored event now, even when the evaluation is disabled or its conditions do
/// not match; every call is a new judgement, marked manual.
#[utoipa::path(post, path = "/api/environments/{project_id}/evaluation_runs/", tag = "evaluation_runs",
    params(("project_id" = i64, Path)), request_body = ManualRunBody,
    responses(
        (status = 202, body = ManualRunDto),
        (status = 400, description = "`{\"error\": {\"<field>\": [\"<message>\"]}}`"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "`{\"error\": \"Evaluation <id> not found\"}` or `{\"error\": \"Event <id> not found\"}`")),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn create_evaluation_run(
    State(app): State<AppState>,
    access: Authorized<EvaluationWrite>,
    ApiJson(body): ApiJson<ManualRunBody>,
) -> Result<(StatusCode, Json<ManualRunDto>), ApiError> {
    let command = body.try_into_domain().map_err(|refused| ApiError::from(refused).in_field_error_shape())?;
    let run = app.judge.manual_run(access.project, command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ManualRunDto {
            workflow_id: run.job.to_string(),
            status: "started",
            evaluation: RunEvaluationDto { id: run.evaluation.0, name: run.evaluation_name },
            target_event_id: run.target_event_id,
        }),
    ))
}

/// The project's stored judgements (judged here or ingested), newest first.
#[utoipa::path(get, path = "/api/environments/{project_id}/evaluation_runs/", tag = "evaluation_runs",
    params(("project_id" = i64, Path), RunsParams, ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses(
        (status = 200, body = Paginated<EvaluationRunDto>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn list_evaluation_runs(
    State(app): State<AppState>,
    access: Authorized<EvaluationRead>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<RunsParams>,
) -> Result<Json<Paginated<EvaluationRunDto>>, ApiError> {
    let page = page_request(&uri)?;
    let runs = app.judge.runs(access.project, &params.try_into_domain(page)?).await?;
    Ok(Json(paginated(&headers, &uri, runs, EvaluationRunDto::from)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: Value) -> ManualRunBody {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_manual_run_body_names_the_first_bad_field_in_the_references_order() {
        let id = uuid::Uuid::now_v7().to_string();
        for (sent, field, rule) in [
            (json!({}), "evaluation_id", Rule::Required),
            (json!({"evaluation_id": "nope", "target_event_id": 5}), "evaluation_id", Rule::NotAUuid),
            (json!({"evaluation_id": id, "target_event_id": ""}), "target_event_id", Rule::Required),
            (
                json!({"evaluation_id": id, "target_event_id": id, "timestamp": "yesterday"}),
                "timestamp",
                Rule::NotADateTime,
            ),
            (json!({"evaluation_id": id, "target_event_id": id, "event": 5}), "event", Rule::NotAString),
        ] {
            assert_eq!(body(sent.clone()).try_into_domain(), Err(FieldError::new(field, rule)), "{sent}");
        }
    }

    #[test]
    fn a_manual_run_body_becomes_its_command() {
        let id = uuid::Uuid::now_v7();
        let sent = json!({"evaluation_id": id.to_string(), "target_event_id": id.to_string(),
                          "timestamp": "2026-03-01", "event": " ", "distinct_id": "u1"});
        let command = body(sent).try_into_domain().unwrap();
        assert_eq!(command.evaluation, EvaluationId(id));
        assert_eq!(command.at, parse_instant("2026-03-01"));
        assert_eq!((command.event, command.distinct_id), (None, Some("u1".into())));
    }
}
