//! `offline_evaluations/experiment_items/` (spec section 8): an experiment's items as
//! positional rows.

use axum::Json;
use axum::extract::State;
use domain::offline_evaluation::{ExperimentItem, ExperimentItemsRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::authorized::{AnalyticsRead, Authorized};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// The request body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExperimentItemsBody {
    /// `$ai_experiment_id` whose items to return (required, not blank; a number is
    /// taken as its text).
    #[schema(value_type = String)]
    pub experiment_id: Option<Value>,
    /// Inclusive lower bound on the event time (ISO 8601); `""` or null: none.
    pub date_from: Option<String>,
    /// Inclusive upper bound on the event time (ISO 8601); `""` or null: none.
    pub date_to: Option<String>,
}

impl TryFrom<ExperimentItemsBody> for ExperimentItemsRequest {
    type Error = ApiError;

    fn try_from(body: ExperimentItemsBody) -> Result<Self, ApiError> {
        let experiment_id = match body.experiment_id {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id),
            Some(Value::Number(id)) => Some(id.to_string()),
            Some(_) => return Err(ApiError::invalid_field("experiment_id", "`experiment_id` must be a string.")),
        };
        Ok(ExperimentItemsRequest { experiment_id, date_from: body.date_from, date_to: body.date_to })
    }
}

/// The answer: one positional row per (item, metric name, metric version), newest first:
/// 0 item_id, 1 experiment_item_name, 2 experiment_name, 3 metric_name, 4 metric_version,
/// 5 status, 6 score, 7 score_min, 8 score_max, 9 result_type, 10 reasoning, 11 trace_id,
/// 12 dataset_id, 13 dataset_item_id, 14 input, 15 output, 16 expected, 17 last_seen_at.
/// Input and output are JSON text: a string holding the JSON of `$ai_input` / `$ai_output`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentItemsDto {
    #[schema(value_type = Vec<Vec<Object>>)]
    pub results: Vec<Vec<Value>>,
}

fn text(value: Option<String>) -> Value {
    value.map_or(Value::Null, Value::String)
}

fn json(value: Option<Value>) -> Value {
    value.unwrap_or(Value::Null)
}

/// A structured value as the reference's string columns carry it: its JSON text (a
/// string stays itself).
fn json_text(value: Option<Value>) -> Value {
    match value {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(text)) => Value::String(text),
        Some(other) => Value::String(other.to_string()),
    }
}

/// One item as the reference's 18 positional columns.
fn row(item: ExperimentItem) -> Vec<Value> {
    vec![
        Value::String(item.item_id),
        json(item.experiment_item_name),
        json(item.experiment_name),
        text(item.metric_name),
        text(item.metric_version),
        json(item.status),
        json(item.score),
        json(item.score_min),
        json(item.score_max),
        json(item.result_type),
        json(item.reasoning),
        text(item.trace_id),
        json(item.dataset_id),
        json(item.dataset_item_id),
        json_text(item.input),
        json_text(item.output),
        json(item.expected),
        Value::String(item.last_seen_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    ]
}

/// An experiment's offline-evaluation items: the latest result per item and metric.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/offline_evaluations/experiment_items/",
    tag = "offline_evaluations", params(("project_id" = i64, Path)), request_body = ExperimentItemsBody,
    responses(
        (status = 200, body = ExperimentItemsDto),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 500, description = "`{\"error\": \"Failed to fetch offline evaluation items\"}`")),
    security(("personal_api_key" = ["llm_analytics:read"])))]
pub async fn experiment_items(
    State(app): State<AppState>,
    access: Authorized<AnalyticsRead>,
    ApiJson(body): ApiJson<ExperimentItemsBody>,
) -> Result<Json<ExperimentItemsDto>, ApiError> {
    let items = app.offline_evaluations.experiment_items(access.project, body.try_into()?).await?;
    Ok(Json(ExperimentItemsDto { results: items.into_iter().map(row).collect() }))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;

    #[test]
    fn an_item_becomes_eighteen_positional_columns() {
        let item = ExperimentItem {
            item_id: "item-1".into(),
            experiment_item_name: Some(json!("case 1")),
            experiment_name: Some(json!("exp")),
            metric_name: Some("accuracy".into()),
            metric_version: None,
            status: Some(json!("ok")),
            score: Some(json!(0.5)),
            score_min: Some(json!(0)),
            score_max: Some(json!(1)),
            result_type: Some(json!("numeric")),
            reasoning: None,
            trace_id: Some("trace-1".into()),
            dataset_id: None,
            dataset_item_id: None,
            input: Some(json!([{"role": "user", "content": "hi"}])),
            output: Some(json!("hello")),
            expected: None,
            last_seen_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        };

        let row = row(item);

        assert_eq!(row.len(), 18);
        assert_eq!(
            Value::Array(row),
            json!([
                "item-1",
                "case 1",
                "exp",
                "accuracy",
                null,
                "ok",
                0.5,
                0,
                1,
                "numeric",
                null,
                "trace-1",
                null,
                null,
                r#"[{"content":"hi","role":"user"}]"#,
                "hello",
                null,
                "2026-01-02T03:04:05.000000Z"
            ])
        );
    }

    #[test]
    fn a_numeric_experiment_id_is_its_text_and_other_types_are_refused() {
        let body = |id: Value| ExperimentItemsBody { experiment_id: Some(id), date_from: None, date_to: None };
        let request = ExperimentItemsRequest::try_from(body(json!(12))).unwrap();
        assert_eq!(request.experiment_id.as_deref(), Some("12"));
        assert!(ExperimentItemsRequest::try_from(body(json!(["x"]))).is_err());
    }
}
