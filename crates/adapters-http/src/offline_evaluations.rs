//! `offline_evaluations/experiment_items/` (spec section 8): an experiment's items as
//! positional rows.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::ingestion::parse_iso8601;
use domain::offline_evaluation::{ExperimentId, ExperimentItem, ExperimentItemsQuery, MAX_EXPERIMENT_ITEMS};
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

impl ExperimentItemsBody {
    /// The store's query, or the first refused field (`experiment_id`, `date_from`, `date_to`).
    fn try_into_domain(self) -> Result<ExperimentItemsQuery, ApiError> {
        let experiment_id = match self.experiment_id {
            None | Some(Value::Null) => {
                return Err(ApiError::invalid_field("experiment_id", "`experiment_id` is required."));
            }
            Some(Value::String(id)) => id,
            Some(Value::Number(id)) => id.to_string(),
            Some(_) => return Err(ApiError::invalid_field("experiment_id", "`experiment_id` must be a string.")),
        };
        let experiment_id = ExperimentId::parse(&experiment_id)
            .ok_or_else(|| ApiError::invalid_field("experiment_id", "`experiment_id` may not be blank."))?;
        Ok(ExperimentItemsQuery {
            experiment_id,
            date_from: bound("date_from", self.date_from.as_deref())?,
            date_to: bound("date_to", self.date_to.as_deref())?,
            limit: MAX_EXPERIMENT_ITEMS,
        })
    }
}

/// An optional ISO 8601 bound; blank means none.
fn bound(field: &'static str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => parse_iso8601(raw).map(Some).ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!(
                    "`{field}` is not an ISO 8601 date or date and time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)."
                ),
            )
        }),
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
    let items = app.offline_evaluations.experiment_items(access.project, &body.try_into_domain()?).await?;
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

    fn body(id: Option<Value>, date_from: Option<&str>, date_to: Option<&str>) -> ExperimentItemsBody {
        ExperimentItemsBody {
            experiment_id: id,
            date_from: date_from.map(str::to_owned),
            date_to: date_to.map(str::to_owned),
        }
    }

    fn refused_on(sent: ExperimentItemsBody) -> (u16, String) {
        let error = sent.try_into_domain().unwrap_err();
        let response = axum::response::IntoResponse::into_response(error);
        (response.status().as_u16(), format!("{:?}", response.into_body()))
    }

    #[test]
    fn a_numeric_experiment_id_is_its_text_and_other_types_are_refused() {
        let query = body(Some(json!(12)), None, None).try_into_domain().unwrap();
        assert_eq!(query.experiment_id.as_str(), "12");
        assert!(body(Some(json!(["x"])), None, None).try_into_domain().is_err());
    }

    #[test]
    fn a_missing_or_blank_experiment_id_and_unparsable_dates_are_refused() {
        for sent in [
            body(None, None, None),
            body(Some(Value::Null), None, None),
            body(Some(json!("   ")), None, None),
            body(Some(json!("exp")), Some("last week"), None),
            body(Some(json!("exp")), None, Some("2026-02-30")),
        ] {
            assert_eq!(refused_on(sent).0, 400);
        }
    }

    #[test]
    fn the_query_is_trimmed_bounded_and_blank_dates_are_no_bound() {
        let query = body(Some(json!(" exp-1 ")), Some("2026-01-01"), Some("2026-01-31T12:00:00Z")).try_into_domain();
        let query = query.unwrap();
        assert_eq!(query.experiment_id.as_str(), "exp-1");
        assert_eq!(query.date_from, Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()));
        assert_eq!(query.date_to, Some(Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap()));
        assert_eq!(query.limit, MAX_EXPERIMENT_ITEMS);
        let open = body(Some(json!("exp")), Some(""), Some(" ")).try_into_domain().unwrap();
        assert_eq!((open.date_from, open.date_to), (None, None));
    }
}
