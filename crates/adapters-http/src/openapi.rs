//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::backfills::{self, BackfillBody, BackfillDto, EstimateDto};
use crate::error::ErrorBody;
use crate::evaluation_config::{self, EvaluationConfigDto, SetActiveKeyBody};
use crate::evaluation_reports::{
    self, EvaluationReportBody, EvaluationReportDto, EvaluationReportListItem, EvaluationReportSummaryDto, ReportRunDto,
};
use crate::evaluation_results::{self, BreakdownValueDto, ResultsDto, TotalsDto, TrendDto};
use crate::evaluation_runs::{self, EvaluationRunDto, ManualRunBody, ManualRunDto, RunEvaluationDto};
use crate::evaluation_summary::{self, PatternDto, SummaryBody, SummaryDto, SummaryStatisticsDto};
use crate::evaluations::{
    self, ConditionBody, ConditionDto, EvaluationBody, EvaluationDto, EvaluationListItem, EvaluationSummaryDto,
    JudgeConfigBody, JudgeConfigDto, ModelConfigurationBody, ModelConfigurationDto, PropertyFilterBody,
    PropertyFilterDto,
};
use crate::model_prices::{self, ModelPriceBody, ModelPriceDto};
use crate::models::{ModelDto, ModelsDto};
use crate::pagination::Paginated;
use crate::provider_keys::{
    self, AlternativeKeyDto, AssignBody, AssignResultDto, CreatedByDto, DependentConfigsDto, DependentEvaluationDto,
    FieldChangeDto, KeyActivityDto, KeyCheckDto, ProviderKeyDto, TrialEvaluationDto, TrialEvaluationsDto,
};
use crate::test_hog::{self, TestHogBody, TestHogDto, TestHogResultDto};
use crate::{capture, health, models, offline_evaluations, otlp};

/// The API's OpenAPI 3.1 document.
#[derive(OpenApi)]
#[openapi(
    info(title = "llm-analytics", description = "LLM analytics management API: provider keys, models, evaluations, judge runs and results, evaluation reports."),
    paths(
        health::health,
        health::ready,
        provider_keys::list_provider_keys,
        provider_keys::create_provider_key,
        provider_keys::retrieve_provider_key,
        provider_keys::replace_provider_key,
        provider_keys::update_provider_key,
        provider_keys::delete_provider_key,
        provider_keys::validate_provider_key,
        provider_keys::check_provider_key,
        provider_keys::dependent_configs,
        provider_keys::trial_evaluations,
        provider_keys::assign_provider_key,
        provider_keys::provider_keys_activity,
        provider_keys::provider_key_activity,
        evaluations::list_evaluations,
        evaluations::create_evaluation,
        evaluations::retrieve_evaluation,
        evaluations::replace_evaluation,
        evaluations::update_evaluation,
        evaluations::delete_evaluation,
        model_prices::list_model_prices,
        model_prices::create_model_price,
        model_prices::retrieve_model_price,
        model_prices::update_model_price,
        model_prices::delete_model_price,
        test_hog::test_hog,
        backfills::estimate_backfill,
        backfills::start_backfill,
        backfills::list_backfills,
        backfills::retrieve_backfill,
        backfills::cancel_backfill,
        evaluation_config::get_evaluation_config,
        evaluation_config::set_active_key,
        models::list_models,
        offline_evaluations::experiment_items,
        evaluation_summary::evaluation_summary,
        evaluation_runs::create_evaluation_run,
        evaluation_runs::list_evaluation_runs,
        evaluation_results::evaluation_results,
        evaluation_reports::list_reports,
        evaluation_reports::create_report,
        evaluation_reports::retrieve_report,
        evaluation_reports::replace_report,
        evaluation_reports::update_report,
        evaluation_reports::delete_report,
        evaluation_reports::generate_report,
        evaluation_reports::list_runs,
        evaluation_reports::run_page,
        capture::capture_batch,
        capture::capture_e,
        capture::capture_capture,
        capture::capture_i_v0_e,
        capture::capture_ai_batch,
        otlp::otel_traces,
        otlp::otel_traces_v1,
    ),
    components(schemas(ErrorBody, TestHogBody, TestHogDto, TestHogResultDto, ModelPriceBody, ModelPriceDto, Paginated<ModelPriceDto>, BackfillBody, BackfillDto, EstimateDto, Paginated<BackfillDto>, ProviderKeyDto, CreatedByDto, KeyCheckDto, ModelsDto, ModelDto, Paginated<ProviderKeyDto>,
        EvaluationDto, EvaluationBody, JudgeConfigDto, JudgeConfigBody, ConditionDto, ConditionBody, PropertyFilterDto,
        PropertyFilterBody, ModelConfigurationDto, ModelConfigurationBody, Paginated<EvaluationDto>,
        EvaluationSummaryDto, EvaluationListItem, Paginated<EvaluationListItem>,
        EvaluationConfigDto, SetActiveKeyBody, DependentConfigsDto, DependentEvaluationDto, AlternativeKeyDto,
        TrialEvaluationsDto, TrialEvaluationDto, AssignBody, AssignResultDto, SummaryBody, SummaryDto, PatternDto,
        SummaryStatisticsDto, ManualRunBody, ManualRunDto, RunEvaluationDto, EvaluationRunDto,
        Paginated<EvaluationRunDto>, ResultsDto, TotalsDto, BreakdownValueDto, TrendDto,
        KeyActivityDto, FieldChangeDto, Paginated<KeyActivityDto>,
        EvaluationReportDto, EvaluationReportBody, ReportRunDto, Paginated<EvaluationReportDto>, Paginated<ReportRunDto>,
        EvaluationReportSummaryDto, EvaluationReportListItem, Paginated<EvaluationReportListItem>)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "personal_api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal API key (`phx_…`) with the scopes the endpoint names."))
                    .build(),
            ),
        );
    }
}
