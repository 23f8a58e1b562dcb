//! `/api/environments/{project_id}/evaluations/{id}/backfills/` (spec section 4.2): run an
//! evaluation over past events — estimate, start, list, read, cancel.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use domain::backfill::{Backfill, BackfillCommand, BackfillError, Estimate};
use domain::evaluation::{ConditionInput, Conditions};
use domain::judge::parse_instant;
use domain::{BackfillId, EvaluationId, FieldError, Rule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::answers::Answer;
use crate::authorized::{Authorized, EvaluationRead, EvaluationWrite};
use crate::error::{ApiError, ErrorBody};
use crate::evaluations::{ConditionBody, ConditionDto};
use crate::extract::ApiJson;
use crate::pagination::{Paginated, page_request, paginated};
use crate::provider_keys::CreatedByDto;
use crate::state::AppState;

/// What a backfill (or its estimate) covers.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BackfillBody {
    /// ISO 8601 date or date-time; inside event retention; before `window_end`.
    #[schema(value_type = String)]
    pub window_start: Option<Value>,
    /// ISO 8601 date or date-time, not in the future.
    #[schema(value_type = String)]
    pub window_end: Option<Value>,
    /// The targets to judge; the evaluation's own conditions when left out. Matched on
    /// the generations' properties other than their input and output contents.
    pub conditions: Option<Vec<ConditionBody>>,
    /// Judge again what was judged before (a new result each); default false: skip it.
    pub rerun_existing: Option<bool>,
}

impl BackfillBody {
    fn into_domain(self) -> BackfillCommand {
        BackfillCommand {
            window_start: instant(self.window_start.as_ref(), "window_start"),
            window_end: instant(self.window_end.as_ref(), "window_end"),
            conditions: self
                .conditions
                .map(|sent| Conditions::parse(&sent.into_iter().map(ConditionInput::from).collect::<Vec<_>>()))
                .transpose(),
            rerun_existing: self.rerun_existing.unwrap_or(false),
        }
    }
}

fn instant(sent: Option<&Value>, field: &str) -> Result<DateTime<Utc>, FieldError> {
    match sent {
        None | Some(Value::Null) => Err(FieldError::new(field, Rule::Required)),
        Some(Value::String(raw)) => parse_instant(raw).ok_or_else(|| FieldError::new(field, Rule::NotADateOrDateTime)),
        Some(_) => Err(FieldError::new(field, Rule::NotADateOrDateTime)),
    }
}

/// What a backfill would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct EstimateDto {
    /// Targets in the window that the conditions pick.
    pub target_count: u64,
    /// Of those, judged before (skipped unless `rerun_existing`).
    pub already_judged_count: u64,
    /// Judgements it would make.
    pub llm_calls: u64,
    /// Of those, paid with the project's trial credits.
    pub trial_credits_needed: u64,
}

impl From<Estimate> for EstimateDto {
    fn from(estimate: Estimate) -> Self {
        Self {
            target_count: estimate.target_count,
            already_judged_count: estimate.already_judged_count,
            llm_calls: estimate.llm_calls,
            trial_credits_needed: estimate.trial_credits_needed,
        }
    }
}

/// A backfill as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillDto {
    pub id: uuid::Uuid,
    pub evaluation: uuid::Uuid,
    /// queued | running | completed | cancelled | failed
    pub status: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// The conditions it picks targets by; null: the evaluation's own.
    pub conditions: Option<Vec<ConditionDto>>,
    pub rerun_existing: bool,
    /// Targets the conditions pick in the window.
    pub total_count: u64,
    /// Judgements queued so far.
    pub dispatched_count: u64,
    /// Targets judged before, not judged again.
    pub skipped_count: u64,
    pub completed_count: u64,
    pub failed_count: u64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<CreatedByDto>,
}

impl From<Backfill> for BackfillDto {
    fn from(backfill: Backfill) -> Self {
        Self {
            id: backfill.id.0,
            evaluation: backfill.evaluation.0,
            status: backfill.status.as_str().to_owned(),
            window_start: backfill.window_start,
            window_end: backfill.window_end,
            conditions: backfill.conditions.map(|c| c.as_slice().iter().map(ConditionDto::from).collect()),
            rerun_existing: backfill.rerun_existing,
            total_count: backfill.total_count,
            dispatched_count: backfill.dispatched_count,
            skipped_count: backfill.skipped_count,
            completed_count: backfill.completed_count,
            failed_count: backfill.failed_count,
            error: backfill.error,
            created_at: backfill.created_at,
            created_by: backfill.created_by.map(CreatedByDto::from),
        }
    }
}

impl Answer for BackfillError {
    fn particular(self) -> ApiError {
        match self {
            BackfillError::AlreadyRunning => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request",
                "conflict",
                "A backfill is already running for this evaluation.",
            ),
            other => ApiError::internal(&anyhow::anyhow!("a backfill failure without an answer: {other}")),
        }
    }
}

/// A path's id; anything that is not a UUID is simply not found.
fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// How many targets a backfill would judge, and the LLM calls and trial credits that is.
#[utoipa::path(post, path = "/api/environments/{project_id}/evaluations/{id}/backfills/estimate/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = BackfillBody,
    responses((status = 200, body = EstimateDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn estimate_backfill(
    State(app): State<AppState>,
    access: Authorized<EvaluationWrite>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<BackfillBody>,
) -> Result<Json<EstimateDto>, ApiError> {
    let evaluation: EvaluationId = path_id(&id)?;
    let estimate = app.backfills.estimate(access.project, evaluation, body.into_domain()).await?;
    Ok(Json(estimate.into()))
}

/// Start a backfill (202): its targets are judged in the background, below live work.
#[utoipa::path(post, path = "/api/environments/{project_id}/evaluations/{id}/backfills/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = BackfillBody,
    responses((status = 202, body = BackfillDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn start_backfill(
    State(app): State<AppState>,
    access: Authorized<EvaluationWrite>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<BackfillBody>,
) -> Result<(StatusCode, Json<BackfillDto>), ApiError> {
    let evaluation: EvaluationId = path_id(&id)?;
    let backfill = app.backfills.start(access.project, evaluation, access.user, body.into_domain()).await?;
    Ok((StatusCode::ACCEPTED, Json(backfill.into())))
}

/// The evaluation's backfills, newest first.
#[utoipa::path(get, path = "/api/environments/{project_id}/evaluations/{id}/backfills/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Paginated<BackfillDto>), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn list_backfills(
    State(app): State<AppState>,
    access: Authorized<EvaluationRead>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Paginated<BackfillDto>>, ApiError> {
    let evaluation: EvaluationId = path_id(&id)?;
    let page = app.backfills.list(access.project, evaluation, page_request(&uri)?).await?;
    Ok(Json(paginated(&headers, &uri, page, BackfillDto::from)))
}

/// One backfill and its progress.
#[utoipa::path(get, path = "/api/environments/{project_id}/evaluations/{id}/backfills/{backfill_id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path), ("backfill_id" = uuid::Uuid, Path)),
    responses((status = 200, body = BackfillDto), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn retrieve_backfill(
    State(app): State<AppState>,
    access: Authorized<EvaluationRead>,
    Path((_, id, backfill)): Path<(String, String, String)>,
) -> Result<Json<BackfillDto>, ApiError> {
    let evaluation: EvaluationId = path_id(&id)?;
    let backfill: BackfillId = path_id(&backfill)?;
    Ok(Json(app.backfills.get(access.project, evaluation, backfill).await?.into()))
}

/// Cancel a queued or running backfill: its judgements not yet started are dropped.
#[utoipa::path(post, path = "/api/environments/{project_id}/evaluations/{id}/backfills/{backfill_id}/cancel/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path), ("backfill_id" = uuid::Uuid, Path)),
    responses((status = 200, body = BackfillDto), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn cancel_backfill(
    State(app): State<AppState>,
    access: Authorized<EvaluationWrite>,
    Path((_, id, backfill)): Path<(String, String, String)>,
) -> Result<Json<BackfillDto>, ApiError> {
    let evaluation: EvaluationId = path_id(&id)?;
    let backfill: BackfillId = path_id(&backfill)?;
    Ok(Json(app.backfills.cancel(access.project, evaluation, backfill).await?.into()))
}
