//! `llm_analytics/evaluation_reports/` (spec section 7): CRUD with soft delete,
//! `generate`, run history; and the signed run page at `/reports/runs/{id}`.

use axum::Json;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::ReportId;
use domain::invalid::{FieldError, Rule};
use domain::reports::input::{parse_alert, parse_evaluation, parse_frequency, parse_recurrence, parse_timezone};
use domain::reports::targets::{TargetPolicy, parse_targets};
use domain::reports::{DeliveryTarget, Report, ReportInput, ReportRun};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::authorized::{AnalyticsRead, AnalyticsWrite, Authorized};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, from_agent_tool};
use crate::pagination::{Paginated, page_request, paginated};
use crate::provider_keys::CreatedByDto;
use crate::state::AppState;

/// A report as returned. A webhook target's secret is masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationReportDto {
    pub id: uuid::Uuid,
    pub evaluation: uuid::Uuid,
    /// scheduled | every_n | alert
    pub frequency: String,
    /// Alert reports: `{operator: lt|gt, pass_rate, min_runs, window_minutes}`.
    #[schema(value_type = Option<Object>)]
    pub alert_condition: Option<Value>,
    /// RFC 5545 RRULE without DTSTART ("" unless scheduled).
    pub rrule: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub timezone_name: String,
    pub next_delivery_date: Option<DateTime<Utc>>,
    #[schema(value_type = Vec<Object>)]
    pub delivery_targets: Vec<Value>,
    pub max_sample_size: u32,
    pub enabled: bool,
    pub deleted: bool,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub report_prompt_guidance: String,
    pub trigger_threshold: u32,
    pub cooldown_minutes: u32,
    pub daily_run_cap: u32,
    pub created_by: Option<CreatedByDto>,
    pub created_at: DateTime<Utc>,
}

/// A report as the list shows it to agent tools (`X-PostHog-Client: mcp`): no schedule
/// rule, targets, guidance, limits or creator.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationReportSummaryDto {
    pub id: uuid::Uuid,
    pub evaluation: uuid::Uuid,
    pub frequency: String,
    #[schema(value_type = Option<Object>)]
    pub alert_condition: Option<Value>,
    pub next_delivery_date: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub trigger_threshold: u32,
    pub created_at: DateTime<Utc>,
}

/// One item of the report list: whole, or slim for agent tools.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EvaluationReportListItem {
    Full(Box<EvaluationReportDto>),
    Slim(EvaluationReportSummaryDto),
}

impl EvaluationReportListItem {
    fn new(report: Report, slim: bool) -> Self {
        if !slim {
            return Self::Full(Box::new(report.into()));
        }
        Self::Slim(EvaluationReportSummaryDto {
            id: report.id.0,
            evaluation: report.evaluation.0,
            frequency: report.frequency.as_str().to_owned(),
            alert_condition: report.alert_condition.map(|c| serde_json::to_value(c).unwrap_or(Value::Null)),
            next_delivery_date: report.next_delivery_date,
            enabled: report.enabled,
            last_delivered_at: report.last_delivered_at,
            trigger_threshold: report.trigger_threshold,
            created_at: report.created_at,
        })
    }
}

fn target_dto(target: &DeliveryTarget) -> Value {
    match target {
        DeliveryTarget::Email { addresses } => json!({"type": "email", "value": addresses.join(", ")}),
        DeliveryTarget::Slack { channel, webhook_url, integration_id } => {
            let mut value = json!({"type": "slack", "channel": channel});
            if let Some(url) = webhook_url {
                value["webhook_url"] = json!(url);
            }
            if let Some(id) = integration_id {
                value["integration_id"] = json!(id);
            }
            value
        }
        DeliveryTarget::Webhook { url, secret } => json!({"type": "webhook", "url": url, "secret": secret.masked}),
    }
}

impl From<Report> for EvaluationReportDto {
    fn from(report: Report) -> Self {
        Self {
            id: report.id.0,
            evaluation: report.evaluation.0,
            frequency: report.frequency.as_str().to_owned(),
            alert_condition: report.alert_condition.map(|c| serde_json::to_value(c).unwrap_or(Value::Null)),
            rrule: report.rrule,
            starts_at: report.starts_at,
            timezone_name: report.timezone_name,
            next_delivery_date: report.next_delivery_date,
            delivery_targets: report.delivery_targets.iter().map(target_dto).collect(),
            max_sample_size: report.max_sample_size,
            enabled: report.enabled,
            deleted: report.deleted,
            last_delivered_at: report.last_delivered_at,
            report_prompt_guidance: report.report_prompt_guidance,
            trigger_threshold: report.trigger_threshold,
            cooldown_minutes: report.cooldown_minutes,
            daily_run_cap: report.daily_run_cap,
            created_by: report.created_by.map(CreatedByDto::from),
            created_at: report.created_at,
        }
    }
}

/// Body of create, PUT and PATCH; read-only fields are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct EvaluationReportBody {
    /// The evaluation's id (same project); required on create.
    pub evaluation: Option<String>,
    /// scheduled | every_n (default) | alert
    pub frequency: Option<String>,
    /// Required for alert reports, null otherwise.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<Object>)]
    pub alert_condition: Option<Option<Value>>,
    /// Required when scheduled; no DTSTART.
    pub rrule: Option<String>,
    /// Required when scheduled.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// IANA zone (default UTC).
    pub timezone_name: Option<String>,
    /// `{type: email, value}`, `{type: slack, channel, webhook_url|integration_id}`,
    /// `{type: webhook, url, secret}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub delivery_targets: Option<Value>,
    pub max_sample_size: Option<i64>,
    pub enabled: Option<bool>,
    /// `true` soft-deletes; `false` restores.
    pub deleted: Option<bool>,
    pub report_prompt_guidance: Option<String>,
    /// every_n: 10..=10000 (default 100).
    pub trigger_threshold: Option<i64>,
    /// ≥ 60 (default 60).
    pub cooldown_minutes: Option<i64>,
    /// Default 10.
    pub daily_run_cap: Option<i64>,
}

impl EvaluationReportBody {
    /// Each sent field parsed with the domain's parsers (targets under the operator's
    /// `policy`); a refused one is carried for the use case to answer in its order.
    pub fn into_domain(self, policy: &TargetPolicy) -> ReportInput {
        ReportInput {
            evaluation: self.evaluation.as_deref().map(parse_evaluation),
            frequency: self.frequency.as_deref().map(parse_frequency),
            alert_condition: self.alert_condition.map(|sent| sent.filter(|c| !c.is_null()).map(|c| parse_alert(&c))),
            rrule: self.rrule.as_deref().map(parse_recurrence),
            starts_at: self.starts_at,
            timezone: self.timezone_name.as_deref().map(parse_timezone),
            delivery_targets: self.delivery_targets.map(|targets| parse_targets(&targets, policy)),
            max_sample_size: self.max_sample_size,
            enabled: self.enabled,
            deleted: self.deleted,
            report_prompt_guidance: self.report_prompt_guidance,
            trigger_threshold: self.trigger_threshold,
            cooldown_minutes: self.cooldown_minutes,
            daily_run_cap: self.daily_run_cap,
        }
    }
}

/// One run of a report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportRunDto {
    pub id: uuid::Uuid,
    pub report: uuid::Uuid,
    /// `{title, sections, citations, metrics}`.
    #[schema(value_type = Object)]
    pub content: Value,
    /// `{trigger: scheduled|every_n|alert|manual, ...}`.
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// pending | delivered | partial_failure | failed
    pub delivery_status: String,
    pub delivery_errors: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The run's page (signed; valid 30 days).
    pub share_url: String,
}

fn run_dto(app: &AppState, run: ReportRun) -> ReportRunDto {
    let share_url = app.report_pages.share_url(&run);
    ReportRunDto {
        id: run.id.0,
        report: run.report.0,
        content: serde_json::to_value(&run.content).unwrap_or(Value::Null),
        metadata: run.metadata,
        period_start: run.period.start,
        period_end: run.period.end,
        delivery_status: run.delivery_status.as_str().to_owned(),
        delivery_errors: run.delivery_errors,
        created_at: run.created_at,
        share_url,
    }
}

/// A path's report id; anything that is not a UUID is simply not found.
fn report_id(raw: &str) -> Result<ReportId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// `?evaluation=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportFilter {
    /// Only the reports of this evaluation.
    pub evaluation: Option<String>,
}

/// List the project's reports (not deleted), newest first. With `X-PostHog-Client: mcp`
/// each item is slim: no schedule rule, targets, guidance, limits or creator.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/evaluation_reports/", tag = "evaluation_reports",
    params(("project_id" = i64, Path), ReportFilter, ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query),
        ("X-PostHog-Client" = Option<String>, Header, description = "`mcp`: the slim list items agent tools expect")),
    responses((status = 200, body = Paginated<EvaluationReportListItem>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:read"])))]
pub async fn list_reports(
    State(app): State<AppState>,
    access: Authorized<AnalyticsRead>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(filter): Query<ReportFilter>,
) -> Result<Json<Paginated<EvaluationReportListItem>>, ApiError> {
    let page = app.reports.list(access.project, filter.evaluation.as_deref(), page_request(&uri)?).await?;
    let slim = from_agent_tool(&headers);
    Ok(Json(paginated(&headers, &uri, page, |report| EvaluationReportListItem::new(report, slim))))
}

/// Create a report.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/evaluation_reports/", tag = "evaluation_reports",
    params(("project_id" = i64, Path)), request_body = EvaluationReportBody,
    responses((status = 201, body = EvaluationReportDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn create_report(
    State(app): State<AppState>,
    access: Authorized<AnalyticsWrite>,
    ApiJson(body): ApiJson<EvaluationReportBody>,
) -> Result<(StatusCode, Json<EvaluationReportDto>), ApiError> {
    let input = body.into_domain(app.reports.target_policy());
    let report = app.reports.create(access.project, access.user, input, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(report.into())))
}

/// One report (404 once deleted).
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/evaluation_reports/{id}/", tag = "evaluation_reports",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EvaluationReportDto), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:read"])))]
pub async fn retrieve_report(
    State(app): State<AppState>,
    access: Authorized<AnalyticsRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<EvaluationReportDto>, ApiError> {
    Ok(Json(app.reports.get(access.project, report_id(&id)?).await?.into()))
}

/// Replace a report's fields.
#[utoipa::path(put, path = "/api/environments/{project_id}/llm_analytics/evaluation_reports/{id}/", tag = "evaluation_reports",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = EvaluationReportBody,
    responses((status = 200, body = EvaluationReportDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn replace_report(
    State(app): State<AppState>,
    access: Authorized<AnalyticsWrite>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EvaluationReportBody>,
) -> Result<Json<EvaluationReportDto>, ApiError> {
    if body.evaluation.is_none() {
        return Err(FieldError::new("evaluation", Rule::Required).into());
    }
    let input = body.into_domain(app.reports.target_policy());
    Ok(Json(app.reports.update(access.project, report_id(&id)?, input, Utc::now()).await?.into()))
}

/// Change some of a report's fields; `deleted: true` soft-deletes, `false` restores.
#[utoipa::path(patch, path = "/api/environments/{project_id}/llm_analytics/evaluation_reports/{id}/", tag = "evaluation_reports",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)), request_body = EvaluationReportBody,
    responses((status = 200, body = EvaluationReportDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn update_report(
    State(app): State<AppState>,
    access: Authorized<AnalyticsWrite>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EvaluationReportBody>,
) -> Result<Json<EvaluationReportDto>, ApiError> {
    let input = body.into_domain(app.reports.target_policy());
    Ok(Json(app.reports.update(access.project, report_id(&id)?, input, Utc::now()).await?.into()))
}

/// Hard delete is not allowed: PATCH `deleted: true` instead.
#[utoipa::path(delete, path = "/api/environments/{project_id}/llm_analytics/evaluation_reports/{id}/", tag = "evaluation_reports",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 405, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn delete_report(
    State(_app): State<AppState>,
    _: Authorized<AnalyticsWrite>,
    Path((_, _id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    Err(ApiError::hard_delete_not_allowed())
}

/// Generate and deliver a run now (in the background); calls within a minute coalesce.
#[utoipa::path(post, path = "/api/environments/{project_id}/llm_analytics/evaluation_reports/{id}/generate/", tag = "evaluation_reports",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 202), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:write"])))]
pub async fn generate_report(
    State(app): State<AppState>,
    access: Authorized<AnalyticsWrite>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.reports
        .generate(access.project, report_id(&id)?, Utc::now())
        .await
        .map_err(|e| ApiError::from(e).in_error_shape())?;
    Ok(StatusCode::ACCEPTED)
}

/// The report's runs, newest first.
#[utoipa::path(get, path = "/api/environments/{project_id}/llm_analytics/evaluation_reports/{id}/runs/", tag = "evaluation_reports",
    params(("project_id" = i64, Path), ("id" = uuid::Uuid, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Paginated<ReportRunDto>), (status = 404, body = ErrorBody)),
    security(("personal_api_key" = ["llm_analytics:read"])))]
pub async fn list_runs(
    State(app): State<AppState>,
    access: Authorized<AnalyticsRead>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Paginated<ReportRunDto>>, ApiError> {
    let page = app.reports.runs(access.project, report_id(&id)?, page_request(&uri)?).await?;
    Ok(Json(paginated(&headers, &uri, page, |run| run_dto(&app, run))))
}

/// The run page's query.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RunPageQuery {
    pub expires: Option<String>,
    pub signature: Option<String>,
}

/// The whole run as a page: signed, expiring; no script, nothing loaded from elsewhere.
#[utoipa::path(get, path = "/reports/runs/{run_id}", tag = "evaluation_reports",
    params(("run_id" = uuid::Uuid, Path), RunPageQuery),
    responses((status = 200, content_type = "text/html"), (status = 404)))]
pub async fn run_page(
    State(app): State<AppState>,
    Path(run): Path<String>,
    Query(query): Query<RunPageQuery>,
) -> Response {
    let page = app.report_pages.page(&run, query.expires.as_deref(), query.signature.as_deref(), Utc::now()).await;
    let (status, body) = match page {
        Ok(html) => (StatusCode::OK, html),
        Err(domain::reports::ReportError::NotFound) => (StatusCode::NOT_FOUND, "Not found.".to_owned()),
        Err(domain::reports::ReportError::Unexpected(cause)) => {
            return ApiError::internal(&cause).into_response();
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    let content_type = if status == StatusCode::OK { "text/html; charset=utf-8" } else { "text/plain; charset=utf-8" };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use domain::reports::input::settings;
    use serde_json::json;

    use super::*;

    /// The field a create body is refused on, as the API answers it.
    fn refused_field(body: Value) -> String {
        let body: EvaluationReportBody = serde_json::from_value(body).unwrap();
        settings(body.into_domain(&TargetPolicy::default()), None).unwrap_err().field
    }

    #[test]
    fn every_bad_field_of_a_body_is_named() {
        let evaluation = uuid::Uuid::now_v7().to_string();
        let with = |extra: Value| {
            let mut body = json!({"evaluation": evaluation});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            body
        };
        let cases = [
            (json!({}), "evaluation"),
            (json!({"evaluation": "nope"}), "evaluation"),
            (with(json!({"frequency": "daily"})), "frequency"),
            (with(json!({"frequency": "scheduled"})), "rrule"),
            (with(json!({"frequency": "scheduled", "rrule": "FREQ=DAILY"})), "starts_at"),
            (
                with(json!({"frequency": "scheduled", "rrule": "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY",
                            "starts_at": "2026-01-01T00:00:00Z"})),
                "rrule",
            ),
            (with(json!({"timezone_name": "Mars/Olympus"})), "timezone_name"),
            (with(json!({"trigger_threshold": 9})), "trigger_threshold"),
            (with(json!({"trigger_threshold": 10_001})), "trigger_threshold"),
            (with(json!({"cooldown_minutes": 59})), "cooldown_minutes"),
            (with(json!({"daily_run_cap": 0})), "daily_run_cap"),
            (with(json!({"max_sample_size": 0})), "max_sample_size"),
            (with(json!({"frequency": "alert"})), "alert_condition"),
            (with(json!({"frequency": "alert", "alert_condition": null})), "alert_condition"),
            (
                with(json!({"frequency": "alert", "alert_condition": {"operator": "eq", "pass_rate": 50}})),
                "alert_condition",
            ),
            (
                with(json!({"frequency": "alert",
                            "alert_condition": {"operator": "lt", "pass_rate": 50, "window_minutes": 10}})),
                "alert_condition",
            ),
            (with(json!({"alert_condition": {"operator": "lt", "pass_rate": 5}})), "alert_condition"),
            (with(json!({"delivery_targets": [{"type": "fax"}]})), "delivery_targets[0].type"),
            (with(json!({"report_prompt_guidance": "x".repeat(5_001)})), "report_prompt_guidance"),
        ];
        for (body, field) in cases {
            assert_eq!(refused_field(body.clone()), field, "{body}");
        }
    }

    #[test]
    fn an_rrule_is_only_judged_on_a_scheduled_report_and_null_clears_a_condition() {
        let evaluation = uuid::Uuid::now_v7().to_string();
        let body: EvaluationReportBody =
            serde_json::from_value(json!({"evaluation": evaluation, "rrule": "nonsense", "alert_condition": null}))
                .unwrap();
        let settings = settings(body.into_domain(&TargetPolicy::default()), None).unwrap();
        assert_eq!((settings.rrule.as_str(), settings.alert_condition), ("", None));
    }
}
