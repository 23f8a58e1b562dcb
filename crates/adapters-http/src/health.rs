//! `/_health` (the process is up) and `/_ready` (the database answers).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// 200 while the process serves.
#[utoipa::path(get, path = "/_health", tag = "operations", responses((status = 200)))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database answers, else 503.
#[utoipa::path(get, path = "/_ready", tag = "operations", responses((status = 200), (status = 503)))]
pub async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    if app.readiness.is_ready().await {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "detail": "The database is not reachable."})),
        )
    }
}
