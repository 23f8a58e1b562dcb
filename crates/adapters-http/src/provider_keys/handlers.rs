//! Provider-key handlers: authorise, call one use case, shape the answer.

use axum::Json;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use domain::ProviderKeyId;

use super::dto::{
    AssignBody, AssignResultDto, DeleteQuery, DependentConfigsDto, KeyActivityDto, KeyCheckBody, KeyCheckDto,
    ProviderKeyBody, ProviderKeyDto, TrialEvaluationsDto, TrialEvaluationsQuery,
};
use crate::authorized::{Authorized, KeyAdmin, KeyRead};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::pagination::{Paginated, page_request, paginated};
use crate::state::AppState;

/// A path's key id; anything that is not a UUID is simply not found.
fn key_id(raw: &str) -> Result<ProviderKeyId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// List the project's provider keys, newest first.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/provider_keys/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Paginated<ProviderKeyDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:read"])))]
pub async fn list_provider_keys(
    State(app): State<AppState>,
    access: Authorized<KeyRead>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Paginated<ProviderKeyDto>>, ApiError> {
    let page = app.provider_keys.list(access.project, page_request(&uri)?).await?;
    Ok(Json(paginated(&headers, &uri, page, ProviderKeyDto::from)))
}

/// Store a key after validating it live with its provider.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/provider_keys/", tag = "provider_keys",
    params(("project_id" = i64, Path)), request_body = ProviderKeyBody,
    responses((status = 201, body = ProviderKeyDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:write"])))]
pub async fn create_provider_key(
    State(app): State<AppState>,
    access: Authorized<KeyAdmin>,
    ApiJson(body): ApiJson<ProviderKeyBody>,
) -> Result<(StatusCode, Json<ProviderKeyDto>), ApiError> {
    let key = app.provider_keys.create(access.project, access.user, body.try_into_create()?).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// One provider key.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProviderKeyDto), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:read"])))]
pub async fn retrieve_provider_key(
    State(app): State<AppState>,
    access: Authorized<KeyRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ProviderKeyDto>, ApiError> {
    let key = app.provider_keys.get(access.project, key_id(&id)?).await?;
    Ok(Json(key.into()))
}

/// Replace a key's editable fields (`provider` and `name` required; provider cannot change).
#[utoipa::path(put, path = "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = ProviderKeyBody,
    responses((status = 200, body = ProviderKeyDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:write"])))]
pub async fn replace_provider_key(
    State(app): State<AppState>,
    access: Authorized<KeyAdmin>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ProviderKeyBody>,
) -> Result<Json<ProviderKeyDto>, ApiError> {
    let id = key_id(&id)?;
    let key = app.provider_keys.update(access.project, id, body.try_into_replace()?, access.user).await?;
    Ok(Json(key.into()))
}

/// Change some of a key's fields; a new `api_key` is validated live first.
#[utoipa::path(patch, path = "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = ProviderKeyBody,
    responses((status = 200, body = ProviderKeyDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:write"])))]
pub async fn update_provider_key(
    State(app): State<AppState>,
    access: Authorized<KeyAdmin>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ProviderKeyBody>,
) -> Result<Json<ProviderKeyDto>, ApiError> {
    let key = app.provider_keys.update(access.project, key_id(&id)?, body.into_update(), access.user).await?;
    Ok(Json(key.into()))
}

/// Delete a key, optionally moving its model configurations to a replacement key.
#[utoipa::path(delete, path = "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path), DeleteQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:write"])))]
pub async fn delete_provider_key(
    State(app): State<AppState>,
    access: Authorized<KeyAdmin>,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    app.provider_keys.delete(access.project, key_id(&id)?, query.replacement_key_id.as_deref(), access.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-check the stored key with its provider and record the result.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/validate/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProviderKeyDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:write"])))]
pub async fn validate_provider_key(
    State(app): State<AppState>,
    access: Authorized<KeyAdmin>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ProviderKeyDto>, ApiError> {
    let key = app.provider_keys.validate(access.project, key_id(&id)?, access.user).await?;
    Ok(Json(key.into()))
}

/// Check a key live without storing it.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/provider_key_validations/", tag = "provider_keys",
    params(("project_id" = i64, Path)), request_body = KeyCheckBody,
    responses((status = 200, body = KeyCheckDto), (status = 400, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:write"])))]
pub async fn check_provider_key(
    State(app): State<AppState>,
    _: Authorized<KeyAdmin>,
    ApiJson(body): ApiJson<KeyCheckBody>,
) -> Result<Json<KeyCheckDto>, ApiError> {
    let check = app.provider_keys.check(body.try_into_domain()?).await;
    Ok(Json(check.into()))
}

/// The evaluations using this key and the keys that could replace it (before a delete).
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/dependent_configs/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = DependentConfigsDto), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:read"])))]
pub async fn dependent_configs(
    State(app): State<AppState>,
    access: Authorized<KeyRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<DependentConfigsDto>, ApiError> {
    let configs = app.evaluations.dependent_configs(access.project, key_id(&id)?).await?;
    Ok(Json(configs.into()))
}

/// Evaluations (at most 50, enabled or not) that run on trial credits for a provider.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/provider_keys/trial_evaluations/", tag = "provider_keys",
    params(("project_id" = i64, Path), TrialEvaluationsQuery),
    responses((status = 200, body = TrialEvaluationsDto), (status = 400, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:read"])))]
pub async fn trial_evaluations(
    State(app): State<AppState>,
    access: Authorized<KeyRead>,
    Query(query): Query<TrialEvaluationsQuery>,
) -> Result<Json<TrialEvaluationsDto>, ApiError> {
    let evaluations = app.evaluations.trial_evaluations(access.project, query.provider.as_deref()).await?;
    Ok(Json(evaluations.into()))
}

/// Point evaluations at this key (creating OpenAI configurations where missing), clear
/// their errors and optionally enable them, in one transaction.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/assign/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = AssignBody,
    responses((status = 200, body = AssignResultDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:write"])))]
pub async fn assign_provider_key(
    State(app): State<AppState>,
    access: Authorized<KeyAdmin>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<AssignBody>,
) -> Result<Json<AssignResultDto>, ApiError> {
    let key = key_id(&id)?;
    let result = app.evaluations.assign_key(access.project, key, body.try_into_domain()?, access.user).await?;
    Ok(Json(result.into()))
}

/// The audit trail of every key of the project, newest first.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/provider_keys/activity/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Paginated<KeyActivityDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:read"])))]
pub async fn provider_keys_activity(
    State(app): State<AppState>,
    access: Authorized<KeyRead>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Paginated<KeyActivityDto>>, ApiError> {
    let page = app.provider_keys.activity(access.project, None, page_request(&uri)?).await?;
    Ok(Json(paginated(&headers, &uri, page, KeyActivityDto::from)))
}

/// The audit trail of one key (also after it was deleted), newest first.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/activity/", tag = "provider_keys",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Paginated<KeyActivityDto>), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_provider_key:read"])))]
pub async fn provider_key_activity(
    State(app): State<AppState>,
    access: Authorized<KeyRead>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Paginated<KeyActivityDto>>, ApiError> {
    let page = app.provider_keys.activity(access.project, Some(key_id(&id)?), page_request(&uri)?).await?;
    if page.total == 0 && app.provider_keys.get(access.project, key_id(&id)?).await.is_err() {
        return Err(ApiError::not_found());
    }
    Ok(Json(paginated(&headers, &uri, page, KeyActivityDto::from)))
}
