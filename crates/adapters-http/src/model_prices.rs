//! `/api/environments/{project_id}/llm_analytics/model_prices/` (spec section 5.2): a
//! project's own per-token prices, which price its generations before the shipped table.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use domain::cost::{ModelPriceInput, ProjectPrice, parse_token_price};
use domain::judge::parse_instant;
use domain::{FieldError, Rule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::authorized::{AnalyticsRead, AnalyticsWrite, Authorized};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::pagination::{Paginated, page_request, paginated};
use crate::state::AppState;

/// A model price as sent (create: `model`, `input_cost_per_token` and
/// `output_cost_per_token` required; PATCH: any of them).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ModelPriceBody {
    /// The model's name (any case), or a regular expression with `match: "regex"`; ≤ 200 chars.
    #[schema(value_type = String)]
    pub model: Option<Value>,
    /// `exact` (the default) or `regex`.
    #[serde(rename = "match")]
    pub matching: Option<String>,
    /// Only generations of this `$ai_provider`; null: any.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    pub provider: Option<Option<String>>,
    /// USD per input token, 0..=1.
    #[schema(value_type = f64)]
    pub input_cost_per_token: Option<Value>,
    /// USD per output token (reasoning tokens included), 0..=1.
    #[schema(value_type = f64)]
    pub output_cost_per_token: Option<Value>,
    /// USD per cached input token read; null: the input price.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<f64>)]
    pub cache_read_cost_per_token: Option<Option<Value>>,
    /// USD per input token written to the cache; null: the input price.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<f64>)]
    pub cache_write_cost_per_token: Option<Option<Value>>,
    /// ISO 8601; generations from then on are priced with it (default now).
    #[schema(value_type = Option<String>)]
    pub valid_from: Option<Value>,
}

impl ModelPriceBody {
    fn into_domain(self) -> Result<ModelPriceInput, FieldError> {
        let regex = match self.matching.as_deref().map(str::trim) {
            None => None,
            Some("exact") => Some(false),
            Some("regex") => Some(true),
            Some(other) => {
                return Err(FieldError::new(
                    "match",
                    Rule::NotAChoice { given: other.to_owned(), choices: "exact, regex".into() },
                ));
            }
        };
        let optional_price = |sent: Option<Option<Value>>, field: &'static str| {
            sent.map(|value| match value {
                None | Some(Value::Null) => Ok(None),
                Some(value) => parse_token_price(field, &value).map(Some),
            })
        };
        Ok(ModelPriceInput {
            model: self.model.map(|value| match value {
                Value::String(model) => Ok(model),
                _ => Err(FieldError::new("model", Rule::NotAString)),
            }),
            regex,
            provider: self.provider,
            input_cost_per_token: self
                .input_cost_per_token
                .map(|value| parse_token_price("input_cost_per_token", &value)),
            output_cost_per_token: self
                .output_cost_per_token
                .map(|value| parse_token_price("output_cost_per_token", &value)),
            cache_read_cost_per_token: optional_price(self.cache_read_cost_per_token, "cache_read_cost_per_token"),
            cache_write_cost_per_token: optional_price(self.cache_write_cost_per_token, "cache_write_cost_per_token"),
            valid_from: self.valid_from.map(|value| {
                value
                    .as_str()
                    .and_then(parse_instant)
                    .ok_or_else(|| FieldError::new("valid_from", Rule::NotADateOrDateTime))
            }),
        })
    }
}

/// A model price as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelPriceDto {
    pub id: uuid::Uuid,
    pub model: String,
    /// exact | regex
    #[serde(rename = "match")]
    pub matching: String,
    pub provider: Option<String>,
    pub input_cost_per_token: f64,
    pub output_cost_per_token: f64,
    pub cache_read_cost_per_token: Option<f64>,
    pub cache_write_cost_per_token: Option<f64>,
    pub valid_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ProjectPrice> for ModelPriceDto {
    fn from(price: ProjectPrice) -> Self {
        Self {
            id: price.id,
            matching: if price.model.is_regex() { "regex" } else { "exact" }.to_owned(),
            model: price.model.pattern().to_owned(),
            provider: price.provider,
            input_cost_per_token: price.prices.input,
            output_cost_per_token: price.prices.output,
            cache_read_cost_per_token: price.prices.cache_read,
            cache_write_cost_per_token: price.prices.cache_write,
            valid_from: price.valid_from,
            created_at: price.created_at,
            updated_at: price.updated_at,
        }
    }
}

fn price_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// The project's model prices, newest `valid_from` first.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/model_prices/", tag = "model_prices",
    params(("project_id" = i64, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Paginated<ModelPriceDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:read"])))]
pub async fn list_model_prices(
    State(app): State<AppState>,
    access: Authorized<AnalyticsRead>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Paginated<ModelPriceDto>>, ApiError> {
    let page = app.model_prices.list(access.project, page_request(&uri)?).await?;
    Ok(Json(paginated(&headers, &uri, page, ModelPriceDto::from)))
}

/// Add a price: generations of the model from `valid_from` on are priced with it.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/model_prices/", tag = "model_prices",
    params(("project_id" = i64, Path)), request_body = ModelPriceBody,
    responses((status = 201, body = ModelPriceDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn create_model_price(
    State(app): State<AppState>,
    access: Authorized<AnalyticsWrite>,
    ApiJson(body): ApiJson<ModelPriceBody>,
) -> Result<(StatusCode, Json<ModelPriceDto>), ApiError> {
    let price = app.model_prices.create(access.project, body.into_domain()?).await?;
    Ok((StatusCode::CREATED, Json(price.into())))
}

/// One model price.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/model_prices/{id}/", tag = "model_prices",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ModelPriceDto), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:read"])))]
pub async fn retrieve_model_price(
    State(app): State<AppState>,
    access: Authorized<AnalyticsRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ModelPriceDto>, ApiError> {
    Ok(Json(app.model_prices.get(access.project, price_id(&id)?).await?.into()))
}

/// Change a model price's fields (PUT and PATCH alike: the fields sent).
#[utoipa::path(patch, path = "/api/environments/{project_id}/llm_analytics/model_prices/{id}/", tag = "model_prices",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = ModelPriceBody,
    responses((status = 200, body = ModelPriceDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn update_model_price(
    State(app): State<AppState>,
    access: Authorized<AnalyticsWrite>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ModelPriceBody>,
) -> Result<Json<ModelPriceDto>, ApiError> {
    let id = price_id(&id)?;
    Ok(Json(app.model_prices.update(access.project, id, body.into_domain()?).await?.into()))
}

/// Delete a model price (its generations keep the cost they were stamped with).
#[utoipa::path(delete, path = "/api/environments/{project_id}/llm_analytics/model_prices/{id}/", tag = "model_prices",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn delete_model_price(
    State(app): State<AppState>,
    access: Authorized<AnalyticsWrite>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.model_prices.delete(access.project, price_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
