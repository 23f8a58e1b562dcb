//! Evaluation handlers: authorise, call one use case, shape the answer.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use domain::EvaluationId;
use domain::identity::Scope;

use super::dto::{EvaluationBody, EvaluationDto};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::pagination::{Paginated, page_request, paginated};
use crate::state::AppState;

/// A path's evaluation id; anything that is not a UUID is simply not found.
fn evaluation_id(raw: &str) -> Result<EvaluationId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// List the project's evaluations (not deleted), newest first.
#[utoipa::path(get, path = "/api/environments/{project_id}/evaluations/", tag = "evaluations",
    params(("project_id" = i64, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Paginated<EvaluationDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn list_evaluations(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(project): Path<String>,
) -> Result<Json<Paginated<EvaluationDto>>, ApiError> {
    let access = app.authorize(&headers, &project, Scope::EVALUATION_READ).await?;
    let page = app.evaluations.list(access.project, page_request(&uri)?).await?;
    Ok(Json(paginated(&headers, &uri, page, EvaluationDto::from)))
}

/// Create an evaluation (paused unless `enabled`).
#[utoipa::path(post, path = "/api/environments/{project_id}/evaluations/", tag = "evaluations",
    params(("project_id" = i64, Path)), request_body = EvaluationBody,
    responses((status = 201, body = EvaluationDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn create_evaluation(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<EvaluationBody>,
) -> Result<(StatusCode, Json<EvaluationDto>), ApiError> {
    let access = app.authorize(&headers, &project, Scope::EVALUATION_WRITE).await?;
    let evaluation = app.evaluations.create(access.project, access.user, body.into()).await?;
    Ok((StatusCode::CREATED, Json(evaluation.into())))
}

/// One evaluation (404 once deleted).
#[utoipa::path(get, path = "/api/environments/{project_id}/evaluations/{id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EvaluationDto), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn retrieve_evaluation(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<EvaluationDto>, ApiError> {
    let access = app.authorize(&headers, &project, Scope::EVALUATION_READ).await?;
    let evaluation = app.evaluations.get(access.project, evaluation_id(&id)?).await?;
    Ok(Json(evaluation.into()))
}

/// Replace an evaluation's fields (`name` and `evaluation_config` required).
#[utoipa::path(put, path = "/api/environments/{project_id}/evaluations/{id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = EvaluationBody,
    responses((status = 200, body = EvaluationDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn replace_evaluation(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EvaluationBody>,
) -> Result<Json<EvaluationDto>, ApiError> {
    let access = app.authorize(&headers, &project, Scope::EVALUATION_WRITE).await?;
    let evaluation = app.evaluations.replace(access.project, evaluation_id(&id)?, body.into()).await?;
    Ok(Json(evaluation.into()))
}

/// Change some of an evaluation's fields; `deleted: true` soft-deletes it.
#[utoipa::path(patch, path = "/api/environments/{project_id}/evaluations/{id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = EvaluationBody,
    responses((status = 200, body = EvaluationDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn update_evaluation(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EvaluationBody>,
) -> Result<Json<EvaluationDto>, ApiError> {
    let access = app.authorize(&headers, &project, Scope::EVALUATION_WRITE).await?;
    let evaluation = app.evaluations.update(access.project, evaluation_id(&id)?, body.into()).await?;
    Ok(Json(evaluation.into()))
}

/// Soft-delete an evaluation: it leaves lists and reads and is never judged again.
#[utoipa::path(delete, path = "/api/environments/{project_id}/evaluations/{id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn delete_evaluation(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = app.authorize(&headers, &project, Scope::EVALUATION_WRITE).await?;
    app.evaluations.delete(access.project, evaluation_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
