//! The HTTP adapter: axum router, request/response bodies, authentication, error mapping
//! and the OpenAPI document. Handlers are thin: authorise, call one use case, answer.

mod answers;
mod authorized;
mod backfills;
mod capture;
mod cpu_pool;
mod error;
mod evaluation_config;
mod evaluation_reports;
mod evaluation_results;
mod evaluation_runs;
mod evaluation_summary;
mod evaluations;
mod extract;
mod health;
mod ingest_budget;
mod json_fields;
mod metrics_layer;
mod model_prices;
mod models;
mod offline_evaluations;
mod openapi;
mod otlp;
mod pagination;
mod provider_keys;
mod router;
mod state;
mod test_hog;
mod wording;

pub use capture::CAPTURE_BODY_LIMIT_BYTES;
pub use cpu_pool::CpuPool;
pub use error::{ApiError, ErrorBody};
pub use ingest_budget::IngestBudget;
pub use openapi::ApiDoc;
pub use router::router;
pub use state::{ApiServices, AppState, Readiness};
