//! `evaluation_config/`: the project's active provider key and trial credits.

use axum::Json;
use axum::extract::State;
use domain::evaluation_config::EvaluationSettings;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::authorized::{Authorized, EvaluationRead, EvaluationWrite};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::provider_keys::ProviderKeyDto;
use crate::state::AppState;

/// A project's evaluation settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationConfigDto {
    /// The key evaluations without a keyed model configuration use; null: trial credits.
    pub active_provider_key: Option<ProviderKeyDto>,
    pub trial_eval_limit: i64,
    pub trial_evals_used: i64,
    pub trial_evals_remaining: i64,
    pub trial_limit_reached: bool,
}

impl From<EvaluationSettings> for EvaluationConfigDto {
    fn from(settings: EvaluationSettings) -> Self {
        let config = settings.config;
        Self {
            active_provider_key: settings.active_key.map(ProviderKeyDto::from),
            trial_eval_limit: config.trial_eval_limit,
            trial_evals_used: config.trial_evals_used,
            trial_evals_remaining: config.trial_evals_remaining(),
            trial_limit_reached: config.trial_limit_reached(),
        }
    }
}

/// Body of `set_active_key/`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SetActiveKeyBody {
    /// A key of this project.
    pub key_id: Option<String>,
}

/// The project's evaluation settings (defaults when it stored none).
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/evaluation_config/", tag = "evaluation_config",
    params(("project_id" = i64, Path)),
    responses((status = 200, body = EvaluationConfigDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn get_evaluation_config(
    State(app): State<AppState>,
    access: Authorized<EvaluationRead>,
) -> Result<Json<EvaluationConfigDto>, ApiError> {
    let settings = app.evaluation_config.get(access.project).await?;
    Ok(Json(settings.into()))
}

/// Make a key of the project its active key.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/evaluation_config/set_active_key/", tag = "evaluation_config",
    params(("project_id" = i64, Path)), request_body = SetActiveKeyBody,
    responses((status = 200, body = EvaluationConfigDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:write"])))]
pub async fn set_active_key(
    State(app): State<AppState>,
    access: Authorized<EvaluationWrite>,
    ApiJson(body): ApiJson<SetActiveKeyBody>,
) -> Result<Json<EvaluationConfigDto>, ApiError> {
    let settings = app.evaluation_config.set_active_key(access.project, body.key_id.as_deref()).await?;
    Ok(Json(settings.into()))
}
