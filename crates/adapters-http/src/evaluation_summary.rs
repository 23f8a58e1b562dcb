//! `evaluation_summary/` (spec section 6): an LLM's analysis of an evaluation's runs.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use domain::EvaluationId;
use domain::invalid::{FieldError, Rule};
use domain::summary::{
    EvaluationSummary, Frequency, MAX_GENERATION_IDS, Pattern, SummaryFilter, SummaryRequest, SummaryStatistics,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::authorized::{AnalyticsWrite, Authorized};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// The request body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SummaryBody {
    /// The evaluation to summarise (UUID, required).
    pub evaluation_id: Option<String>,
    /// Which runs: `all` (default), `pass`, `fail` or `na`.
    pub filter: Option<String>,
    /// Only runs that judged these generations (at most 250 UUIDs).
    pub generation_ids: Option<Vec<String>>,
    /// Compute anew even when a cached summary exists (default false).
    pub force_refresh: Option<bool>,
}

impl SummaryBody {
    /// The request the body asks for, or its first refused field.
    pub fn try_into_domain(self) -> Result<SummaryRequest, FieldError> {
        let raw_id = self.evaluation_id.as_deref().map(str::trim).unwrap_or("");
        if raw_id.is_empty() {
            return Err(FieldError::new("evaluation_id", Rule::Required));
        }
        let evaluation_id =
            raw_id.parse::<EvaluationId>().map_err(|_| FieldError::new("evaluation_id", Rule::NotAUuid))?;
        let filter = match self.filter.as_deref() {
            None => SummaryFilter::All,
            Some(raw) => SummaryFilter::parse(raw).ok_or_else(|| {
                FieldError::new("filter", Rule::SummaryFilter { given: raw.chars().take(50).collect() })
            })?,
        };
        let generation_ids = self.generation_ids.map(generation_ids).transpose()?;
        Ok(SummaryRequest { evaluation_id, filter, generation_ids, force_refresh: self.force_refresh.unwrap_or(false) })
    }
}

/// At most [`MAX_GENERATION_IDS`] UUIDs; the first that is not one is named by its index.
fn generation_ids(ids: Vec<String>) -> Result<Vec<uuid::Uuid>, FieldError> {
    if ids.len() > MAX_GENERATION_IDS {
        return Err(FieldError::new("generation_ids", Rule::TooManyItems { max: MAX_GENERATION_IDS }));
    }
    ids.iter()
        .enumerate()
        .map(|(index, id)| {
            id.trim().parse().map_err(|_| FieldError::new("generation_ids", Rule::ItemNotAUuid { index }))
        })
        .collect()
}

/// A pattern among the runs, with generations that show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternDto {
    pub title: String,
    pub description: String,
    /// `common`, `occasional` or `rare`.
    pub frequency: &'static str,
    /// 1–5 generations (all among the analysed runs).
    pub example_generation_ids: Vec<String>,
}

/// One kind's patterns, as returned.
fn patterns(patterns: Vec<Pattern>) -> Vec<PatternDto> {
    let frequency = |frequency| match frequency {
        Frequency::Common => "common",
        Frequency::Occasional => "occasional",
        Frequency::Rare => "rare",
    };
    patterns
        .into_iter()
        .map(|pattern| PatternDto {
            title: pattern.title,
            description: pattern.description,
            frequency: frequency(pattern.frequency),
            example_generation_ids: pattern.example_generation_ids,
        })
        .collect()
}

/// Counts of the analysed runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryStatisticsDto {
    pub total_analyzed: u64,
    pub pass_count: u64,
    pub fail_count: u64,
    pub na_count: u64,
}

impl From<SummaryStatistics> for SummaryStatisticsDto {
    fn from(statistics: SummaryStatistics) -> Self {
        SummaryStatisticsDto {
            total_analyzed: statistics.total_analyzed,
            pass_count: statistics.pass_count,
            fail_count: statistics.fail_count,
            na_count: statistics.na_count,
        }
    }
}

/// The summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryDto {
    pub overall_assessment: String,
    pub pass_patterns: Vec<PatternDto>,
    pub fail_patterns: Vec<PatternDto>,
    pub na_patterns: Vec<PatternDto>,
    pub recommendations: Vec<String>,
    pub statistics: SummaryStatisticsDto,
}

impl From<EvaluationSummary> for SummaryDto {
    fn from(summary: EvaluationSummary) -> Self {
        SummaryDto {
            overall_assessment: summary.overall_assessment,
            pass_patterns: patterns(summary.pass_patterns),
            fail_patterns: patterns(summary.fail_patterns),
            na_patterns: patterns(summary.na_patterns),
            recommendations: summary.recommendations,
            statistics: summary.statistics.into(),
        }
    }
}

/// Summarises why an evaluation's runs pass or fail: patterns, recommendations and
/// statistics. Cached for an hour; rate-limited per API key (50/min, 200/h, 500/day).
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/evaluation_summary/",
    tag = "evaluation_summary", params(("project_id" = i64, Path)), request_body = SummaryBody,
    responses(
        (status = 200, body = SummaryDto),
        (status = 400, description = "Invalid body (`attr` names the field), or `{\"error\": \"No evaluation runs found for the specified criteria\"}`"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "`{\"error\": \"Evaluation <id> not found\"}`"),
        (status = 429, body = ErrorBody, description = "Rate-limited; `Retry-After` says when to retry."),
        (status = 502, description = "`{\"error\": \"Failed to generate summary\"}`"),
        (status = 503, description = "`{\"error\": ...}`: no LLM is configured, with how to configure one.")),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn evaluation_summary(
    State(app): State<AppState>,
    access: Authorized<AnalyticsWrite>,
    _headers: HeaderMap,
    ApiJson(body): ApiJson<SummaryBody>,
) -> Result<Json<SummaryDto>, ApiError> {
    let summary = app.summaries.summarize(access.api_key_id, access.project, body.try_into_domain()).await?;
    Ok(Json(summary.into()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::response::IntoResponse;
    use domain::EvaluationId;
    use domain::summary::SummarizeError;

    use super::*;

    async fn answer(error: SummarizeError) -> (u16, Option<String>, serde_json::Value) {
        let response = ApiError::from(error).into_response();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn throttling_is_429_with_retry_after_rounded_up() {
        let (status, retry_after, body) =
            answer(SummarizeError::Throttled { retry_after: Duration::from_millis(41_200) }).await;
        assert_eq!((status, retry_after.as_deref()), (429, Some("42")));
        assert_eq!(body["type"], "throttled_error");
        assert_eq!(body["code"], "throttled");
        assert_eq!(body["attr"], serde_json::Value::Null);
        let (_, retry_after, _) = answer(SummarizeError::Throttled { retry_after: Duration::ZERO }).await;
        assert_eq!(retry_after.as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn the_references_errors_keep_its_shape() {
        let id = EvaluationId::generate();
        assert_eq!(
            answer(SummarizeError::EvaluationNotFound(id)).await,
            (404, None, serde_json::json!({"error": format!("Evaluation {id} not found")}))
        );
        let (status, _, body) = answer(SummarizeError::NoRuns).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("No evaluation runs found for the specified criteria"))
        );
        let (status, _, body) = answer(SummarizeError::LlmFailed).await;
        assert_eq!((status, body), (502, serde_json::json!({"error": "Failed to generate summary"})));
        let (status, _, body) = answer(SummarizeError::NoLlm).await;
        assert_eq!(status, 503);
        assert!(body["error"].as_str().unwrap().contains("LLMA_SYSTEM_LLM_PROVIDER"));
        let refused = domain::FieldError::new("filter", domain::Rule::SummaryFilter { given: "bad".into() });
        let (status, _, body) = answer(SummarizeError::Invalid(refused)).await;
        assert_eq!((status, body["attr"].as_str()), (400, Some("filter")));
        assert_eq!(body["detail"], "\"bad\" is not a valid choice. Choose one of: all, pass, fail, na.");
    }

    #[test]
    fn the_body_is_validated_field_by_field() {
        let body = |evaluation_id: Option<&str>| SummaryBody {
            evaluation_id: evaluation_id.map(str::to_owned),
            filter: None,
            generation_ids: None,
            force_refresh: None,
        };
        let valid = || body(Some("0190c0de-0000-7000-8000-000000000001"));
        let field = |body: SummaryBody| body.try_into_domain().unwrap_err().field;
        assert_eq!(field(body(None)), "evaluation_id");
        assert_eq!(field(body(Some("nope"))), "evaluation_id");
        assert_eq!(field(SummaryBody { filter: Some("maybe".into()), ..valid() }), "filter");
        let too_many = (0..251).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        assert_eq!(field(SummaryBody { generation_ids: Some(too_many), ..valid() }), "generation_ids");
        let not_uuids = SummaryBody { generation_ids: Some(vec!["x".into()]), ..valid() };
        assert_eq!(not_uuids.try_into_domain().unwrap_err().rule, Rule::ItemNotAUuid { index: 0 });
        let request = valid().try_into_domain().unwrap();
        assert_eq!((request.filter, request.force_refresh, request.generation_ids), (SummaryFilter::All, false, None));
    }
}
