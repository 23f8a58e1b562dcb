//! `llm_analytics/evaluation_results/` (spec section 9): one evaluation's results with
//! totals, a breakdown by any property and a trend.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use domain::judge::{ResultCounts, ResultsInput, ResultsReport, parse_results_query};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::authorized::{AnalyticsRead, Authorized};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The query string.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ResultsParams {
    /// Required.
    pub evaluation_id: Option<String>,
    /// ISO 8601 date or date-time, inclusive; default `date_to` − 7 days.
    pub date_from: Option<String>,
    /// ISO 8601 date or date-time, exclusive; default now.
    pub date_to: Option<String>,
    /// Any property name (≤ 200 chars): of the result event, else of the judged generation.
    pub breakdown: Option<String>,
    /// `hour`, `day` (default) or `week`; UTC buckets, weeks from Monday.
    pub interval: Option<String>,
    /// `true`: each group also sums the judged generations' `$ai_total_cost_usd`
    /// (`total_cost_usd`, `costed_runs`); default false.
    pub include_cost: Option<String>,
}

/// The period's totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsDto {
    pub runs: u64,
    pub pass_count: u64,
    pub fail_count: u64,
    pub na_count: u64,
    /// pass / (pass + fail) × 100, 2 decimals; 0 when nothing applies.
    pub pass_rate: f64,
    /// Matches not judged because of `max_runs_per_hour`.
    pub skipped_by_cap: u64,
    /// With `include_cost=true`: what the judged generations cost (USD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cost_usd: Option<f64>,
    /// With `include_cost=true`: how many runs judged a generation with a cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub costed_runs: Option<u64>,
}

/// One breakdown value.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownValueDto {
    /// The property as text; null when absent; `$other` for the values past the 25 largest.
    pub value: Option<String>,
    pub runs: u64,
    pub pass_count: u64,
    pub fail_count: u64,
    pub na_count: u64,
    pub pass_rate: f64,
    /// With `include_cost=true`: what the judged generations of this value cost (USD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cost_usd: Option<f64>,
    /// With `include_cost=true`: how many of its runs judged a generation with a cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub costed_runs: Option<u64>,
}

/// One trend row (bucket × value).
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendDto {
    pub bucket: DateTime<Utc>,
    /// The value and its counts, as in `breakdown_values`.
    #[serde(flatten)]
    pub counts: BreakdownValueDto,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsDto {
    pub evaluation_id: uuid::Uuid,
    pub date_from: DateTime<Utc>,
    pub date_to: DateTime<Utc>,
    pub interval: &'static str,
    pub breakdown: Option<String>,
    pub totals: TotalsDto,
    pub breakdown_values: Vec<BreakdownValueDto>,
    pub trend: Vec<TrendDto>,
}

fn breakdown_value(value: Option<String>, counts: ResultCounts, with_cost: bool) -> BreakdownValueDto {
    BreakdownValueDto {
        value,
        runs: counts.runs(),
        pass_count: counts.pass,
        fail_count: counts.fail,
        na_count: counts.na,
        pass_rate: counts.pass_rate(),
        total_cost_usd: with_cost.then(|| counts.cost.usd()),
        costed_runs: with_cost.then_some(counts.cost.costed_runs),
    }
}

impl From<ResultsReport> for ResultsDto {
    fn from(report: ResultsReport) -> Self {
        let totals = report.totals;
        let with_cost = report.query.include_cost;
        Self {
            evaluation_id: report.query.evaluation.0,
            date_from: report.query.date_from,
            date_to: report.query.date_to,
            interval: report.query.interval.as_str(),
            breakdown: report.query.breakdown,
            totals: TotalsDto {
                runs: totals.runs(),
                pass_count: totals.pass,
                fail_count: totals.fail,
                na_count: totals.na,
                pass_rate: totals.pass_rate(),
                skipped_by_cap: report.skipped_by_cap,
                total_cost_usd: with_cost.then(|| totals.cost.usd()),
                costed_runs: with_cost.then_some(totals.cost.costed_runs),
            },
            breakdown_values: report
                .breakdown_values
                .into_iter()
                .map(|(v, c)| breakdown_value(v, c, with_cost))
                .collect(),
            trend: report
                .trend
                .into_iter()
                .map(|row| TrendDto { bucket: row.bucket, counts: breakdown_value(row.value, row.counts, with_cost) })
                .collect(),
        }
    }
}

/// One evaluation's results in a period: totals, a breakdown by any property (the 25
/// values with most runs, the rest as `$other`) and a trend by hour, day or week.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/evaluation_results/",
    tag = "evaluation_results", params(("project_id" = i64, Path), ResultsParams),
    responses(
        (status = 200, body = ResultsDto),
        (status = 400, body = ErrorBody, description = "A bad parameter (`attr` names it), or too many buckets."),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such evaluation in this project.")),
    security(("personal_api_key" = ["llm_analytics:read"])))]
pub async fn evaluation_results(
    State(app): State<AppState>,
    access: Authorized<AnalyticsRead>,
    Query(params): Query<ResultsParams>,
) -> Result<Json<ResultsDto>, ApiError> {
    let input = ResultsInput {
        evaluation_id: params.evaluation_id,
        date_from: params.date_from,
        date_to: params.date_to,
        breakdown: params.breakdown,
        interval: params.interval,
        include_cost: params.include_cost,
    };
    let report = app.judge.results(access.project, parse_results_query(input, Utc::now())?).await?;
    Ok(Json(report.into()))
}
