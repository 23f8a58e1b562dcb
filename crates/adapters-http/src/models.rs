//! `models/`: the models a provider (and a key) offers.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use domain::models::ModelEntry;
use serde::Serialize;
use utoipa::ToSchema;

use crate::authorized::{Authorized, EvaluationRead};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// One model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelDto {
    pub id: String,
    /// Runs on the operator's trial credits.
    pub posthog_available: bool,
}

/// The answer of `models/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsDto {
    pub models: Vec<ModelDto>,
}

impl From<ModelEntry> for ModelDto {
    fn from(entry: ModelEntry) -> Self {
        Self { id: entry.id, posthog_available: entry.posthog_available }
    }
}

/// List the models of a provider: live for a key, curated without one.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/models/", tag = "models",
    params(("project_id" = i64, Path), ("provider" = String, Query), ("key_id" = Option<uuid::Uuid>, Query)),
    responses((status = 200, body = ModelsDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn list_models(
    State(app): State<AppState>,
    access: Authorized<EvaluationRead>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ModelsDto>, ApiError> {
    let models = app
        .models
        .list(access.project, query.get("provider").map(String::as_str), query.get("key_id").map(String::as_str))
        .await?;
    Ok(Json(ModelsDto { models: models.into_iter().map(ModelDto::from).collect() }))
}
