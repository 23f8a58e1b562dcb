//! The router: routes (each with and without the trailing slash), middleware, docs.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{MethodRouter, get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::capture::CAPTURE_BODY_LIMIT_BYTES;
use crate::error::ApiError;
use crate::extract::BODY_LIMIT_BYTES;
use crate::openapi::ApiDoc;
use crate::state::AppState;
use crate::{
    backfills, capture, evaluation_config, evaluation_reports, evaluation_results, evaluation_runs, evaluation_summary,
    evaluations, health, model_prices, models, offline_evaluations, otlp, provider_keys, test_hog,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const LLMA: &str = "/api/environments/{project_id}/llm_analytics";

/// Adds `path` and `path/` for the same handlers.
fn route_both(router: Router<AppState>, path: &str, method_router: MethodRouter<AppState>) -> Router<AppState> {
    router.route(path, method_router.clone()).route(&format!("{path}/"), method_router)
}

fn api_routes() -> Router<AppState> {
    let routes: [(String, MethodRouter<AppState>); 7] = [
        (
            format!("{LLMA}/provider_keys"),
            get(provider_keys::list_provider_keys).post(provider_keys::create_provider_key),
        ),
        (
            format!("{LLMA}/provider_keys/{{id}}"),
            get(provider_keys::retrieve_provider_key)
                .put(provider_keys::replace_provider_key)
                .patch(provider_keys::update_provider_key)
                .delete(provider_keys::delete_provider_key),
        ),
        (format!("{LLMA}/provider_keys/{{id}}/validate"), post(provider_keys::validate_provider_key)),
        (format!("{LLMA}/provider_key_validations"), post(provider_keys::check_provider_key)),
        (format!("{LLMA}/models"), get(models::list_models)),
        (format!("{LLMA}/model_prices"), get(model_prices::list_model_prices).post(model_prices::create_model_price)),
        (
            format!("{LLMA}/model_prices/{{id}}"),
            get(model_prices::retrieve_model_price)
                .put(model_prices::update_model_price)
                .patch(model_prices::update_model_price)
                .delete(model_prices::delete_model_price),
        ),
    ];
    routes.into_iter().fold(Router::new(), |router, (path, method_router)| route_both(router, &path, method_router))
}

const ENV: &str = "/api/environments/{project_id}";

/// Spec section 4 (evaluations, evaluation_config) and the provider-key actions of section 1
/// that act on evaluations. `provider_keys/trial_evaluations` is a static segment, so it
/// takes precedence over `provider_keys/{id}`.
fn evaluation_routes() -> Router<AppState> {
    let routes: [(String, MethodRouter<AppState>); 14] = [
        (format!("{ENV}/evaluations"), get(evaluations::list_evaluations).post(evaluations::create_evaluation)),
        (format!("{ENV}/evaluations/test_hog"), post(test_hog::test_hog)),
        (format!("{ENV}/evaluations/{{id}}/backfills"), get(backfills::list_backfills).post(backfills::start_backfill)),
        (format!("{ENV}/evaluations/{{id}}/backfills/estimate"), post(backfills::estimate_backfill)),
        (format!("{ENV}/evaluations/{{id}}/backfills/{{backfill_id}}"), get(backfills::retrieve_backfill)),
        (format!("{ENV}/evaluations/{{id}}/backfills/{{backfill_id}}/cancel"), post(backfills::cancel_backfill)),
        (
            format!("{ENV}/evaluations/{{id}}"),
            get(evaluations::retrieve_evaluation)
                .put(evaluations::replace_evaluation)
                .patch(evaluations::update_evaluation)
                .delete(evaluations::delete_evaluation),
        ),
        (format!("{LLMA}/evaluation_config"), get(evaluation_config::get_evaluation_config)),
        (format!("{LLMA}/evaluation_config/set_active_key"), post(evaluation_config::set_active_key)),
        (format!("{LLMA}/provider_keys/trial_evaluations"), get(provider_keys::trial_evaluations)),
        (format!("{LLMA}/provider_keys/{{id}}/dependent_configs"), get(provider_keys::dependent_configs)),
        (format!("{LLMA}/provider_keys/{{id}}/assign"), post(provider_keys::assign_provider_key)),
        (format!("{LLMA}/provider_keys/activity"), get(provider_keys::provider_keys_activity)),
        (format!("{LLMA}/provider_keys/{{id}}/activity"), get(provider_keys::provider_key_activity)),
    ];
    routes.into_iter().fold(Router::new(), |router, (path, method_router)| route_both(router, &path, method_router))
}

/// Spec section 8: offline evaluations.
fn offline_evaluation_routes() -> Router<AppState> {
    route_both(
        Router::new(),
        &format!("{LLMA}/offline_evaluations/experiment_items"),
        post(offline_evaluations::experiment_items),
    )
}

/// Spec section 9: manual judge runs and stored judgements (outside `llm_analytics/`,
/// where the reference serves them), and results broken down by any property.
fn judge_routes() -> Router<AppState> {
    let router = route_both(
        Router::new(),
        &format!("{ENV}/evaluation_runs"),
        get(evaluation_runs::list_evaluation_runs).post(evaluation_runs::create_evaluation_run),
    );
    route_both(router, &format!("{LLMA}/evaluation_results"), get(evaluation_results::evaluation_results))
}

/// Spec section 7: evaluation reports, and the signed run page (outside the API prefix).
fn report_routes() -> Router<AppState> {
    let routes: [(String, MethodRouter<AppState>); 5] = [
        (
            format!("{LLMA}/evaluation_reports"),
            get(evaluation_reports::list_reports).post(evaluation_reports::create_report),
        ),
        (
            format!("{LLMA}/evaluation_reports/{{id}}"),
            get(evaluation_reports::retrieve_report)
                .put(evaluation_reports::replace_report)
                .patch(evaluation_reports::update_report)
                .delete(evaluation_reports::delete_report),
        ),
        (format!("{LLMA}/evaluation_reports/{{id}}/generate"), post(evaluation_reports::generate_report)),
        (format!("{LLMA}/evaluation_reports/{{id}}/runs"), get(evaluation_reports::list_runs)),
        ("/reports/runs/{run_id}".to_owned(), get(evaluation_reports::run_page)),
    ];
    routes.into_iter().fold(Router::new(), |router, (path, method_router)| route_both(router, &path, method_router))
}

/// Spec section 6: the evaluation summary.
fn summary_routes() -> Router<AppState> {
    route_both(Router::new(), &format!("{LLMA}/evaluation_summary"), post(evaluation_summary::evaluation_summary))
}

/// Spec section 5: the SDKs' capture endpoints, with their own (larger) body limit.
fn capture_routes() -> Router<AppState> {
    let routes: [(&str, MethodRouter<AppState>); 7] = [
        ("/batch", post(capture::capture_batch)),
        ("/e", post(capture::capture_e)),
        ("/capture", post(capture::capture_capture)),
        ("/i/v0/e", post(capture::capture_i_v0_e)),
        ("/i/v0/ai/batch", post(capture::capture_ai_batch)),
        ("/i/v0/ai/otel", post(otlp::otel_traces)),
        ("/i/v0/ai/otel/v1/traces", post(otlp::otel_traces_v1)),
    ];
    routes.into_iter().fold(Router::new(), |router, (path, method_router)| {
        // The route's own limit is set after (inside) the router-wide JSON limit, so it wins.
        route_both(router, path, method_router.layer(DefaultBodyLimit::max(CAPTURE_BODY_LIMIT_BYTES)))
    })
}

/// Refuses a query string with a NUL before any handler reads it (spec section 0).
async fn refuse_nul_queries(
    request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match crate::extract::refuse_nul_in_query(request.uri().query()) {
        Ok(()) => next.run(request).await,
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let schema = ApiDoc::openapi();
    let router = route_both(Router::new(), "/_health", get(health::health));
    let router = route_both(router, "/_ready", get(health::ready));
    let router = router.merge(api_routes());
    let router = router.merge(evaluation_routes());
    let router = router.merge(offline_evaluation_routes());
    let router = router.merge(summary_routes());
    let router = router.merge(judge_routes());
    let router = router.merge(report_routes());
    let router = router.merge(capture_routes());
    let schema_json = schema.clone();
    let router = route_both(router, "/api/schema", get(move || async move { axum::Json(schema_json) }));

    router
        .route_layer(axum::middleware::from_fn(crate::metrics_layer::note_route))
        .fallback(|| async { ApiError::not_found() })
        .with_state(state)
        .merge(SwaggerUi::new("/api/docs").config(utoipa_swagger_ui::Config::from("/api/schema/")))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn(refuse_nul_queries))
        .layer(axum::middleware::from_fn(crate::metrics_layer::record))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %request_id, method = %request.method(), path = %request.uri().path())
        }).on_response(DefaultOnResponse::new().level(Level::INFO)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
