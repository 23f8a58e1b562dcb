//! The state every handler shares, and the authorisation step each one starts with.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, header};
use domain::ProjectId;
use domain::evaluation::EvaluationService;
use domain::evaluation_config::EvaluationConfigService;
use domain::identity::{Access, AccessService, Scope};
use domain::ingestion::IngestionService;
use domain::judge::JudgeService;
use domain::models::ModelsService;
use domain::offline_evaluation::OfflineEvaluationService;
use domain::provider_key::ProviderKeyService;
use domain::reports::{ReportAdmin, RunPages};
use domain::summary::SummaryService;

use crate::error::ApiError;

/// Whether the service can serve (its database answers), for `/_ready`.
#[async_trait]
pub trait Readiness: Send + Sync + 'static {
    async fn is_ready(&self) -> bool;
}

/// The state every handler gets: one pointer, so that handing it to a request is one
/// reference count rather than one per service.
#[derive(Clone)]
pub struct AppState(Arc<ApiServices>);

impl AppState {
    pub fn new(services: ApiServices) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = ApiServices;

    fn deref(&self) -> &ApiServices {
        &self.0
    }
}

/// The use cases the API exposes.
pub struct ApiServices {
    pub access: Arc<AccessService>,
    pub provider_keys: Arc<ProviderKeyService>,
    pub models: Arc<ModelsService>,
    /// Evaluations, and the provider-key actions that act on them.
    pub evaluations: Arc<EvaluationService>,
    /// The project's active key and trial credits.
    pub evaluation_config: Arc<EvaluationConfigService>,
    /// Capture: SDK payloads in, AI events stored.
    pub ingestion: Arc<IngestionService>,
    /// Offline-evaluation experiment items.
    pub offline_evaluations: Arc<OfflineEvaluationService>,
    /// Evaluation summaries.
    pub summaries: Arc<SummaryService>,
    /// Manual judge runs, stored judgements and results.
    pub judge: Arc<JudgeService>,
    /// The projects' own model prices.
    pub model_prices: Arc<domain::cost::ModelPriceService>,
    /// Evaluations run over past events.
    pub backfills: Arc<domain::backfill::BackfillService>,
    /// Dry runs of code evaluators.
    pub code_trials: Arc<domain::code::CodeTrials>,
    /// Evaluation reports and their runs.
    pub reports: Arc<ReportAdmin>,
    /// The signed run pages and their links.
    pub report_pages: Arc<RunPages>,
    pub readiness: Arc<dyn Readiness>,
    /// The memory capture and OTLP bodies in flight may hold.
    pub ingest_budget: crate::IngestBudget,
    /// Where their bodies are inflated, parsed and decoded.
    pub cpu: crate::CpuPool,
    /// How long a capture or OTLP body may take to arrive in full.
    pub ingest_body_timeout: std::time::Duration,
    /// How long a JSON API body (at most 1 MB) may take to arrive in full.
    pub api_body_timeout: std::time::Duration,
}

/// The bearer token of the request, if it sent one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The `{project_id}` of a path; ids that cannot exist resolve to a project nobody reaches
/// (so authentication still answers first, then 404).
fn project_id(raw: &str) -> ProjectId {
    ProjectId(raw.parse::<i64>().ok().filter(|id| *id > 0).unwrap_or(-1))
}

impl AppState {
    /// 401/403/404 unless the caller may use `scope` in the project.
    pub async fn authorize(&self, headers: &HeaderMap, project: &str, scope: Scope) -> Result<Access, ApiError> {
        Ok(self.access.authorize(bearer(headers), project_id(project), scope).await?)
    }

    /// As `authorize`, for actions that need project admin.
    pub async fn authorize_admin(&self, headers: &HeaderMap, project: &str, scope: Scope) -> Result<Access, ApiError> {
        Ok(self.access.authorize_admin(bearer(headers), project_id(project), scope).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer  phx_abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("phx_abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn impossible_project_ids_reach_no_project() {
        assert_eq!(project_id("12"), ProjectId(12));
        assert_eq!(project_id("abc"), ProjectId(-1));
        assert_eq!(project_id("0"), ProjectId(-1));
    }
}
