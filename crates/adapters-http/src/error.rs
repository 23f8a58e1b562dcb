//! Every error the API returns (domain errors become these in `answers.rs`).
//!
//! Body: `{"type","code","detail","attr"}`; 5xx bodies never carry internals — the cause
//! is logged inside the request's span (which carries the `x-request-id`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'static str,
    pub detail: String,
    pub attr: Option<String>,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    allow: Option<&'static str>,
    /// `Retry-After` seconds (429, 503).
    retry_after: Option<u64>,
    /// Answer `{"error": detail}` instead of the standard body: the reference's shape on
    /// the endpoints that the spec keeps it for (e.g. offline evaluations).
    error_shape: bool,
    /// Answer `{"error": {attr: [detail]}}`: the reference's validation shape on
    /// `evaluation_runs/`.
    field_error_shape: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody { kind, code, detail: detail.into(), attr: None },
            allow: None,
            retry_after: None,
            error_shape: false,
            field_error_shape: false,
        }
    }

    pub(crate) fn with_attr(mut self, attr: impl Into<String>) -> Self {
        self.body.attr = Some(attr.into());
        self
    }

    /// 400 on one field.
    pub fn invalid_field(attr: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", "invalid_input", detail).with_attr(attr)
    }

    /// 400 for a field that must be sent (DRF's `required` code).
    pub fn required_field(attr: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", "required", detail).with_attr(attr)
    }

    /// 400 about the request as a whole.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", "invalid_input", detail)
    }

    /// 400 for a body that is not JSON.
    pub fn parse_error(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", "parse_error", detail)
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "unsupported_media_type",
            "Unsupported media type: send the body as JSON with `Content-Type: application/json`.",
        )
    }

    /// 415 with a sentence saying what to send.
    pub fn unsupported_media_type_with(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", "unsupported_media_type", detail)
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "payload_too_large",
            format!("The request body is larger than the limit of {limit_bytes} bytes."),
        )
    }

    /// 503 with `Retry-After`: the capture lane's memory budget is taken (the SDKs retry).
    pub fn ingest_memory_busy(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "ingest_memory_busy",
            "The server is holding as many event bodies as its memory budget allows; retry after `Retry-After` seconds.",
        );
        error.retry_after = Some(retry_after_secs);
        error
    }

    /// 408: the body did not arrive within the time allowed for it.
    pub fn body_timeout(seconds: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request",
            "request_timeout",
            format!("The request body did not arrive within {seconds} seconds."),
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request", "not_found", "Not found.")
    }

    /// 404 with a specific sentence (the reference's shape for some endpoints).
    pub fn not_found_with(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request", "not_found", detail)
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "method_not_allowed",
            "Method not allowed on this endpoint.",
        );
        error.allow = Some(allow);
        error
    }

    /// 405 for DELETE on a soft-deleted model (the reference's sentence).
    pub fn hard_delete_not_allowed() -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "method_not_allowed",
            "Hard delete of this model is not allowed. Use a patch API call to set \"deleted\" to true",
        );
        error.allow = Some("GET, PUT, PATCH");
        error
    }

    /// 500: logs the cause, answers nothing about it.
    pub fn internal(cause: &anyhow::Error) -> Self {
        tracing::error!(error = %format!("{cause:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "error",
            "A server error occurred. Quote the x-request-id header when reporting it.",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The same error answered in the reference's `{"error": detail}` shape.
    pub fn in_error_shape(mut self) -> Self {
        self.error_shape = true;
        self
    }

    /// The same error answered as `{"error": {attr: [detail]}}` (or `{"error": detail}`
    /// when it names no field).
    pub fn in_field_error_shape(mut self) -> Self {
        self.field_error_shape = true;
        self
    }

    /// Answers with `Retry-After: seconds`.
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 413 for a compressed body that inflates past the limit.
    pub fn decompressed_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "payload_too_large",
            format!("The decompressed request body is larger than the limit of {limit_bytes} bytes."),
        )
    }

    /// 415 for a `Content-Encoding` other than gzip.
    pub fn unsupported_content_encoding(encoding: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "unsupported_media_type",
            format!("Unsupported Content-Encoding `{encoding}`: send the body as is or gzip-compressed."),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = if self.field_error_shape {
            let error = match &self.body.attr {
                Some(attr) => serde_json::json!({attr.as_str(): [self.body.detail]}),
                None => serde_json::json!(self.body.detail),
            };
            (self.status, Json(serde_json::json!({"error": error}))).into_response()
        } else if self.error_shape {
            (self.status, Json(serde_json::json!({"error": self.body.detail}))).into_response()
        } else {
            (self.status, Json(self.body)).into_response()
        };
        if let Some(allow) = self.allow {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
