//! Evaluation handlers: authorise, call one use case, shape the answer.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use domain::EvaluationId;
use domain::evaluation::EvaluationListFilter;

use super::dto::{EvaluationBody, EvaluationDto, EvaluationListItem, EvaluationListQuery};
use crate::authorized::{Authorized, EvaluationRead, EvaluationWrite};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, from_agent_tool};
use crate::pagination::{Paginated, page_request, paginated, query_value};
use crate::state::AppState;

/// A path's evaluation id; anything that is not a UUID is simply not found.
fn evaluation_id(raw: &str) -> Result<EvaluationId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// The list's filters as sent; `enabled` is `true` or `false` (any case), or `1` / `0`.
fn list_filter(query: EvaluationListQuery) -> Result<EvaluationListFilter, ApiError> {
    let enabled = match query.enabled.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(
            domain::invalid::parse_flag(raw)
                .ok_or_else(|| ApiError::invalid_field("enabled", "Must be true or false."))?,
        ),
    };
    let search = query.search.filter(|text| !text.trim().is_empty());
    Ok(EvaluationListFilter { search, enabled })
}

/// List the project's evaluations (not deleted), newest first. With
/// `X-PostHog-Client: mcp` each item is slim: no prompt, conditions, model configuration
/// or creator.
#[utoipa::path(get, path = "/api/environments/{project_id}/evaluations/", tag = "evaluations",
    params(("project_id" = i64, Path), EvaluationListQuery, ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query),
        ("X-PostHog-Client" = Option<String>, Header, description = "`mcp`: the slim list items agent tools expect")),
    responses((status = 200, body = Paginated<EvaluationListItem>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn list_evaluations(
    State(app): State<AppState>,
    access: Authorized<EvaluationRead>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Paginated<EvaluationListItem>>, ApiError> {
    let filter = list_filter(EvaluationListQuery {
        search: query_value(&uri, "search"),
        enabled: query_value(&uri, "enabled"),
    })?;
    let page = app.evaluations.list(access.project, &filter, page_request(&uri)?).await?;
    let slim = from_agent_tool(&headers);
    Ok(Json(paginated(&headers, &uri, page, |evaluation| EvaluationListItem::new(evaluation, slim))))
}

/// Create an evaluation (paused unless `enabled`).
#[utoipa::path(post, path = "/api/environments/{project_id}/evaluations/", tag = "evaluations",
    params(("project_id" = i64, Path)), request_body = EvaluationBody,
    responses((status = 201, body = EvaluationDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn create_evaluation(
    State(app): State<AppState>,
    access: Authorized<EvaluationWrite>,
    ApiJson(body): ApiJson<EvaluationBody>,
) -> Result<(StatusCode, Json<EvaluationDto>), ApiError> {
    let evaluation = app.evaluations.create(access.project, access.user, body.try_into_domain()?).await?;
    Ok((StatusCode::CREATED, Json(evaluation.into())))
}

/// One evaluation (404 once deleted).
#[utoipa::path(get, path = "/api/environments/{project_id}/evaluations/{id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EvaluationDto), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn retrieve_evaluation(
    State(app): State<AppState>,
    access: Authorized<EvaluationRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<EvaluationDto>, ApiError> {
    let evaluation = app.evaluations.get(access.project, evaluation_id(&id)?).await?;
    Ok(Json(evaluation.into()))
}

/// Replace an evaluation's fields (`name` and `evaluation_config` required).
#[utoipa::path(put, path = "/api/environments/{project_id}/evaluations/{id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = EvaluationBody,
    responses((status = 200, body = EvaluationDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn replace_evaluation(
    state: State<AppState>,
    access: Authorized<EvaluationWrite>,
    path: Path<(String, String)>,
    body: ApiJson<EvaluationBody>,
) -> Result<Json<EvaluationDto>, ApiError> {
    // An unknown id answers 404 before a body missing its required fields answers 400.
    evaluation_id(&path.1)?;
    body.0.required_for_replace()?;
    update_evaluation(state, access, path, body).await
}

/// Change some of an evaluation's fields; `deleted: true` soft-deletes it.
#[utoipa::path(patch, path = "/api/environments/{project_id}/evaluations/{id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = EvaluationBody,
    responses((status = 200, body = EvaluationDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn update_evaluation(
    State(app): State<AppState>,
    access: Authorized<EvaluationWrite>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EvaluationBody>,
) -> Result<Json<EvaluationDto>, ApiError> {
    let id = evaluation_id(&id)?;
    let evaluation = app.evaluations.update(access.project, id, body.try_into_domain()?).await?;
    Ok(Json(evaluation.into()))
}

/// Hard delete is not allowed: PATCH `deleted: true` soft-deletes instead.
#[utoipa::path(delete, path = "/api/environments/{project_id}/evaluations/{id}/", tag = "evaluations",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 405, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn delete_evaluation(
    State(_app): State<AppState>,
    _: Authorized<EvaluationWrite>,
    Path((_, _id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    Err(ApiError::hard_delete_not_allowed())
}
